/*
 * Embedding JSONL parser (see emb_parse.h). The "embedding" array is
 * scanned number by number straight into a float buffer (one pass, the
 * exact fast path of lex_double for the usual 9-digit values), which is
 * what makes a 1 M x 64 file import at disk speed rather than at a JSON
 * library's.
 */
#include "ingest/emb_parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "ingest/import_lex.h"

struct emb_parser {
    emb_row_cb cb;
    void *userdata;
    struct lex_records rec;
    uint32_t max_dims;
    float *vals;
    uint32_t vcap;
    uint64_t rows;
    struct lex_buf scratch;
};

struct emb_parser *emb_parser_create(size_t max_record, uint32_t max_dims, emb_row_cb cb,
                                     void *userdata)
{
    if (!cb || max_dims == 0)
        return NULL;
    struct emb_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cb = cb;
    p->userdata = userdata;
    p->max_dims = max_dims;
    lex_records_init(&p->rec, 0, max_record);
    return p;
}

void emb_parser_destroy(struct emb_parser *p)
{
    if (!p)
        return;
    lex_records_deinit(&p->rec);
    lex_buf_deinit(&p->scratch);
    free(p->vals);
    free(p);
}

uint64_t emb_parser_rows(const struct emb_parser *p)
{
    return p->rows;
}

/* Parses the array at s[*i] == '[' into p->vals; *dims its length. */
static int parse_array(struct emb_parser *p, const char *s, size_t n, size_t *i, uint32_t *dims,
                       unsigned long line, struct upload_error *err)
{
    uint32_t d = 0;
    const char *why = NULL;
    (*i)++;
    lexj_ws(s, n, i);
    if (*i < n && s[*i] == ']') {
        lex_error(err, line, *i + 1, "embedding is empty");
        return -EINVAL;
    }
    for (;;) {
        lexj_ws(s, n, i);
        size_t col = *i + 1;
        const char *tok;
        size_t tl;
        int is_int;
        if (*i >= n || !(s[*i] == '-' || (s[*i] >= '0' && s[*i] <= '9'))) {
            lex_error(err, line, col, "embedding values must be numbers%s",
                      *i < n && (s[*i] == 'N' || s[*i] == 'n' || s[*i] == 'I')
                          ? " (NaN, Infinity and null are not allowed)"
                          : "");
            return -EINVAL;
        }
        if (lexj_number(s, n, i, &tok, &tl, &is_int, &why) < 0) {
            lex_error(err, line, *i + 1, "%s", why);
            return -EINVAL;
        }
        double v;
        int rc = lex_double(tok, tl, &v);
        if (rc == -ENOMEM)
            return rc;
        float f = (float)v;
        if (rc < 0 || !isfinite(f)) {
            lex_error(err, line, col, "embedding value %.*s is not finite as a float32",
                      (int)(tl > 40 ? 40 : tl), tok);
            return -EINVAL;
        }
        if (d >= p->max_dims) {
            lex_error(err, line, col, "embedding longer than %u values", p->max_dims);
            return -EINVAL;
        }
        if (d >= p->vcap) {
            uint32_t cap = p->vcap ? p->vcap * 2 : 64;
            if (cap > p->max_dims)
                cap = p->max_dims;
            float *nv = realloc(p->vals, sizeof *nv * cap);
            if (!nv)
                return -ENOMEM;
            p->vals = nv;
            p->vcap = cap;
        }
        p->vals[d++] = f;
        lexj_ws(s, n, i);
        if (*i < n && s[*i] == ',') {
            (*i)++;
            continue;
        }
        if (*i < n && s[*i] == ']') {
            (*i)++;
            *dims = d;
            return 0;
        }
        lex_error(err, line, *i + 1, "expected ',' or ']' in embedding");
        return -EINVAL;
    }
}

/* What a record's keys held, filled by emb_field. */
struct emb_fields {
    struct emb_parser *p;
    const char *id;
    size_t id_len, id_col;
    uint32_t dims;
    int have_id, have_emb;
};

static int emb_field(void *ud, const char *key, size_t klen, size_t kcol, const char *s, size_t n,
                     size_t *i, unsigned long line, struct upload_error *err, const char **why)
{
    struct emb_fields *f = ud;
    int which = klen == 2 && memcmp(key, "id", 2) == 0          ? 1
                : klen == 9 && memcmp(key, "embedding", 9) == 0 ? 2
                                                                : 0;
    if ((which == 1 && f->have_id) || (which == 2 && f->have_emb)) {
        lex_error(err, line, kcol, "duplicate key \"%s\"", which == 1 ? "id" : "embedding");
        return -EINVAL;
    }
    if (which == 1) {
        f->have_id = 1;
        f->id_col = *i + 1;
        int kind, rc = lexj_scalar(s, n, i, &f->p->scratch, &f->id, &f->id_len, &kind, why);
        if (rc != 0)
            return rc;
        if (kind != 's' && kind != 'i') {
            lex_error(err, line, f->id_col, "id must be a string or an integer");
            return -EINVAL;
        }
        return 0;
    }
    if (which == 2) {
        f->have_emb = 1;
        if (*i >= n || s[*i] != '[') {
            lex_error(err, line, *i + 1, "embedding must be an array of numbers");
            return -EINVAL;
        }
        return parse_array(f->p, s, n, i, &f->dims, line, err);
    }
    return lexj_skip(s, n, i, why) < 0 ? LEXJ_SYNTAX : 0;
}

static int on_record(void *ud, const char *s, size_t n, unsigned long line,
                     struct upload_error *err)
{
    struct emb_parser *p = ud;
    struct emb_fields f = {.p = p};
    int rc = lexj_object(s, n, line, "{\"id\": ..., \"embedding\": [...]}", emb_field, &f, err);
    if (rc != 0)
        return rc > 0 ? 0 : rc; /* a blank line, or an error */
    if (!f.have_id || !f.have_emb) {
        lex_error(err, line, 1, "missing key \"%s\"", f.have_id ? "embedding" : "id");
        return -EINVAL;
    }
    const char *bad = text_id_invalid(f.id, f.id_len);
    if (bad) {
        lex_error(err, line, f.id_col, "id %s", bad);
        return -EINVAL;
    }
    struct emb_row row = {f.id, f.id_len, p->vals, f.dims, line};
    p->rows++;
    err->line = line;
    return p->cb(p->userdata, &row, err);
}

int emb_parser_feed(struct emb_parser *p, const char *data, size_t len, struct upload_error *err)
{
    return lex_records_feed(&p->rec, data, len, on_record, p, err);
}

int emb_parser_finish(struct emb_parser *p, struct upload_error *err)
{
    return lex_records_finish(&p->rec, on_record, p, err);
}
