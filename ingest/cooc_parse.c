/*
 * Co-occurrence table parser (see cooc_parse.h): records come from the
 * shared splitter (import_lex.c); this file splits CSV/TSV fields or scans
 * one flat NDJSON object per record and checks the values. Every check
 * that needs only the row itself is made here, with the row's position;
 * checks across rows (both orientations, the diagonal, pmi against the
 * frequencies) belong to ml/cooc_import.c.
 */
#include "ingest/cooc_parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/text.h"
#include "ingest/import_lex.h"

enum { ROLE_ITEM1, ROLE_ITEM2, ROLE_COOC, ROLE_PMI, N_ROLES };

static const char *const role_names[N_ROLES] = {"item1_Id", "item2_Id", "cooc", "pmi"};

struct cooc_parser {
    enum upload_format format;
    char sep;
    cooc_row_cb cb;
    void *userdata;
    struct lex_records rec;
    uint64_t rows;
    int has_pmi;
    /* CSV/TSV */
    int header_done;
    size_t ncols;
    long col[N_ROLES]; /* column of each role, -1 = absent */
    char *header;      /* raw header record, to skip repeats */
    size_t header_len;
    /* decoded strings (quoted fields with "" or JSON escapes), per role */
    struct lex_buf scratch[N_ROLES];
};

struct cooc_parser *cooc_parser_create(enum upload_format format, size_t max_record, cooc_row_cb cb,
                                       void *userdata)
{
    if (!cb || (format != UPLOAD_FORMAT_CSV && format != UPLOAD_FORMAT_TSV &&
                format != UPLOAD_FORMAT_NDJSON))
        return NULL;
    struct cooc_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->format = format;
    p->sep = format == UPLOAD_FORMAT_TSV ? '\t' : ',';
    p->cb = cb;
    p->userdata = userdata;
    lex_records_init(&p->rec, format != UPLOAD_FORMAT_NDJSON, max_record);
    for (int r = 0; r < N_ROLES; r++)
        p->col[r] = -1;
    return p;
}

void cooc_parser_destroy(struct cooc_parser *p)
{
    if (!p)
        return;
    lex_records_deinit(&p->rec);
    free(p->header);
    for (int r = 0; r < N_ROLES; r++)
        lex_buf_deinit(&p->scratch[r]);
    free(p);
}

uint64_t cooc_parser_rows(const struct cooc_parser *p)
{
    return p->rows;
}

int cooc_parser_has_pmi(const struct cooc_parser *p)
{
    return p->has_pmi;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

/* ---- values shared by both formats ---- */

static int check_id(int role, const char *s, size_t n, unsigned long line, size_t col,
                    struct upload_error *err)
{
    const char *why = text_id_invalid(s, n);
    if (why) {
        lex_error(err, line, col, "%s %s", role_names[role], why);
        return -EINVAL;
    }
    return 0;
}

static int parse_cooc(const char *s, size_t n, unsigned long line, size_t col, uint32_t *out,
                      struct upload_error *err)
{
    uint64_t v = 0;
    int rc = lex_uint(s, n, UINT32_MAX, &v);
    if (rc == 0 && v > 0) {
        *out = (uint32_t)v;
        return 0;
    }
    lex_error(err, line, col, "cooc must be an integer in 1..4294967295 (got \"%.*s\")",
              (int)(n > 40 ? 40 : n), s);
    return -EINVAL;
}

static int parse_pmi(const char *s, size_t n, unsigned long line, size_t col, double *out,
                     struct upload_error *err)
{
    int rc = lex_double_approx(s, n, out); /* only checked within a tolerance */
    if (rc == 0)
        return 0;
    if (rc == -ENOMEM)
        return rc;
    lex_error(err, line, col, "pmi must be a finite decimal number (got \"%.*s\")",
              (int)(n > 40 ? 40 : n), s);
    return -EINVAL;
}

/* ---- CSV / TSV ---- */

struct field {
    const char *p;
    size_t len;
    size_t col;  /* 1-based byte column of the field's first byte */
    int escaped; /* quoted with "" inside: needs unescaping */
};

/* Splits rec into fields; those whose index is in want[0..nwant) are
 * stored in out[role] (nwant < 0: every field in out[index]). Returns the
 * number of fields, or -EINVAL with err filled. */
static long split_fields(const struct cooc_parser *p, const char *rec, size_t len,
                         unsigned long line, const long *want, int nwant, struct field *out,
                         struct upload_error *err)
{
    size_t k = 0;
    long idx = 0;
    for (;;) {
        size_t fstart = k, q = k;
        while (q < len && (rec[q] == ' ' || rec[q] == '\t') && rec[q] != p->sep)
            q++;
        struct field f = {rec + k, 0, fstart + 1, 0};
        size_t end;
        if (q < len && rec[q] == '"') {
            size_t c = q + 1;
            for (;;) {
                const char *qq = memchr(rec + c, '"', len - c);
                if (!qq) {
                    lex_error(err, line, q + 1, "unterminated quoted field");
                    return -EINVAL;
                }
                c = (size_t)(qq - rec);
                if (c + 1 < len && rec[c + 1] == '"') {
                    f.escaped = 1;
                    c += 2;
                    continue;
                }
                break;
            }
            f.p = rec + q + 1;
            f.len = c - (q + 1);
            f.col = q + 2;
            end = c + 1;
            while (end < len && (rec[end] == ' ' || rec[end] == '\t') && rec[end] != p->sep)
                end++;
            if (end < len && rec[end] != p->sep) {
                lex_error(err, line, end + 1, "unexpected character after a closing quote");
                return -EINVAL;
            }
        } else {
            /* fields are short: a plain loop beats memchr's call */
            end = k;
            while (end < len && rec[end] != p->sep)
                end++;
            f.len = end - k;
        }
        if (nwant < 0 && out)
            out[idx] = f; /* every field, by index */
        for (int r = 0; r < nwant; r++)
            if (want[r] == idx)
                out[r] = f;
        idx++;
        if (end >= len)
            return idx;
        k = end + 1;
    }
}

/* The text of field f, unescaped into scratch when needed. */
static int field_text(struct field *f, struct lex_buf *scratch)
{
    if (!f->escaped)
        return 0;
    if (scratch->cap < f->len + 1) {
        char *np = realloc(scratch->p, f->len + 1);
        if (!np)
            return -ENOMEM;
        scratch->p = np;
        scratch->cap = f->len + 1;
    }
    size_t m = 0;
    for (size_t i = 0; i < f->len; i++) {
        scratch->p[m++] = f->p[i];
        if (f->p[i] == '"')
            i++; /* "" → " */
    }
    f->p = scratch->p;
    f->len = m;
    f->escaped = 0;
    return 0;
}

static int role_of(const char *name, size_t n)
{
    static const struct {
        const char *name;
        int role;
    } names[] = {{"item1_id", ROLE_ITEM1}, {"item1", ROLE_ITEM1}, {"item2_id", ROLE_ITEM2},
                 {"item2", ROLE_ITEM2},    {"cooc", ROLE_COOC},   {"pmi", ROLE_PMI}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && strncasecmp(names[i].name, name, n) == 0)
            return names[i].role;
    return -1;
}

static int csv_header(struct cooc_parser *p, const char *rec, size_t len, unsigned long line,
                      struct upload_error *err)
{
    long n = split_fields(p, rec, len, line, NULL, 0, NULL, err);
    if (n < 0)
        return (int)n;
    struct field *fs = calloc((size_t)n, sizeof *fs);
    struct lex_buf tmp = {0};
    int rc = 0;
    if (!fs) {
        rc = -ENOMEM;
        goto out;
    }
    split_fields(p, rec, len, line, NULL, -1, fs, err);
    for (long idx = 0; idx < n; idx++) {
        if ((rc = field_text(&fs[idx], &tmp)) < 0)
            goto out;
        const char *name = fs[idx].p;
        size_t nl = fs[idx].len;
        lex_trim(&name, &nl);
        int role = role_of(name, nl);
        if (role < 0)
            continue;
        if (p->col[role] >= 0) {
            lex_error(err, line, fs[idx].col, "column %s appears twice in the header",
                      role_names[role]);
            rc = -EINVAL;
            goto out;
        }
        p->col[role] = idx;
    }
    for (int r = ROLE_ITEM1; r <= ROLE_COOC; r++) {
        if (p->col[r] < 0) {
            lex_error(err, line, 1,
                      "the header must name the columns item1_Id, item2_Id and cooc (and "
                      "optionally pmi) of the seed's item_cooc table; %s is missing (header: "
                      "\"%.*s\")",
                      role_names[r], (int)(len > 100 ? 100 : len), rec);
            rc = -EINVAL;
            goto out;
        }
    }
    p->ncols = (size_t)n;
    p->has_pmi = p->col[ROLE_PMI] >= 0;
    p->header = malloc(len ? len : 1);
    if (!p->header) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(p->header, rec, len);
    p->header_len = len;
    p->header_done = 1;
out:
    free(fs);
    lex_buf_deinit(&tmp);
    return rc;
}

static int csv_record(struct cooc_parser *p, const char *rec, size_t len, unsigned long line,
                      struct upload_error *err)
{
    if (blank(rec, len))
        return 0;
    if (!p->header_done)
        return csv_header(p, rec, len, line, err);
    if (len == p->header_len && memcmp(rec, p->header, len) == 0)
        return 0; /* the header of a concatenated shard */
    struct field f[N_ROLES] = {{0}};
    int nwant = p->has_pmi ? N_ROLES : ROLE_PMI;
    long n = split_fields(p, rec, len, line, p->col, nwant, f, err);
    if (n < 0)
        return (int)n;
    if ((size_t)n != p->ncols) {
        lex_error(err, line, 1, "expected %zu fields as in the header, found %ld", p->ncols, n);
        return -EINVAL;
    }
    int rc;
    for (int r = 0; r < nwant; r++)
        if ((rc = field_text(&f[r], &p->scratch[r])) < 0)
            return rc;
    struct cooc_row row = {0};
    row.line = line;
    for (int r = ROLE_ITEM1; r <= ROLE_ITEM2; r++) {
        const char *s = f[r].p;
        size_t n2 = f[r].len;
        lex_trim(&s, &n2);
        if ((rc = check_id(r, s, n2, line, f[r].col, err)) < 0)
            return rc;
        if (r == ROLE_ITEM1) {
            row.item1 = s;
            row.item1_len = n2;
        } else {
            row.item2 = s;
            row.item2_len = n2;
        }
    }
    const char *s = f[ROLE_COOC].p;
    size_t n2 = f[ROLE_COOC].len;
    lex_trim(&s, &n2);
    if ((rc = parse_cooc(s, n2, line, f[ROLE_COOC].col, &row.cooc, err)) < 0)
        return rc;
    if (p->has_pmi) {
        s = f[ROLE_PMI].p;
        n2 = f[ROLE_PMI].len;
        lex_trim(&s, &n2);
        if ((rc = parse_pmi(s, n2, line, f[ROLE_PMI].col, &row.pmi, err)) < 0)
            return rc;
        row.has_pmi = 1;
    }
    p->rows++;
    err->line = line;
    return p->cb(p->userdata, &row, err);
}

/* ---- NDJSON ---- */

/* What a record's keys held, filled by json_field. */
struct json_fields {
    struct cooc_parser *p;
    int seen[N_ROLES];
    const char *val[N_ROLES];
    size_t vlen[N_ROLES], vcol[N_ROLES];
};

static int json_field(void *ud, const char *key, size_t klen, size_t kcol, const char *s, size_t n,
                      size_t *i, unsigned long line, struct upload_error *err, const char **why)
{
    struct json_fields *f = ud;
    int role = role_of(key, klen);
    if (role < 0)
        return lexj_skip(s, n, i, why) < 0 ? LEXJ_SYNTAX : 0;
    if (f->seen[role]) {
        lex_error(err, line, kcol, "duplicate key %s", role_names[role]);
        return -EINVAL;
    }
    f->seen[role] = 1;
    f->vcol[role] = *i + 1;
    int kind, rc = lexj_scalar(s, n, i, &f->p->scratch[role], &f->val[role], &f->vlen[role], &kind,
                               why);
    if (rc != 0)
        return rc;
    if (kind == 0 || (kind == 'n' && role <= ROLE_ITEM2)) {
        lex_error(err, line, f->vcol[role], "%s must be a %s", role_names[role],
                  role <= ROLE_ITEM2 ? "string or an integer" : "number");
        return -EINVAL;
    }
    return 0;
}

static int json_record(struct cooc_parser *p, const char *s, size_t n, unsigned long line,
                       struct upload_error *err)
{
    struct json_fields f = {.p = p};
    int rc = lexj_object(s, n, line, "({\"item1_Id\", \"item2_Id\", \"cooc\", \"pmi\"})",
                         json_field, &f, err);
    if (rc != 0)
        return rc > 0 ? 0 : rc; /* a blank line, or an error */
    const char **val = f.val;
    const size_t *vlen = f.vlen, *vcol = f.vcol;
    for (int r = ROLE_ITEM1; r <= ROLE_COOC; r++) {
        if (!f.seen[r]) {
            lex_error(err, line, 1, "missing key \"%s\" (also accepted: \"%s\")", role_names[r],
                      r == ROLE_ITEM1   ? "item1"
                      : r == ROLE_ITEM2 ? "item2"
                                        : "cooc");
            return -EINVAL;
        }
    }
    struct cooc_row row = {0};
    row.line = line;
    if ((rc = check_id(ROLE_ITEM1, val[ROLE_ITEM1], vlen[ROLE_ITEM1], line, vcol[ROLE_ITEM1],
                       err)) < 0 ||
        (rc = check_id(ROLE_ITEM2, val[ROLE_ITEM2], vlen[ROLE_ITEM2], line, vcol[ROLE_ITEM2],
                       err)) < 0)
        return rc;
    row.item1 = val[ROLE_ITEM1];
    row.item1_len = vlen[ROLE_ITEM1];
    row.item2 = val[ROLE_ITEM2];
    row.item2_len = vlen[ROLE_ITEM2];
    if ((rc = parse_cooc(val[ROLE_COOC], vlen[ROLE_COOC], line, vcol[ROLE_COOC], &row.cooc, err)) <
        0)
        return rc;
    if (f.seen[ROLE_PMI]) {
        if ((rc = parse_pmi(val[ROLE_PMI], vlen[ROLE_PMI], line, vcol[ROLE_PMI], &row.pmi, err)) <
            0)
            return rc;
        row.has_pmi = 1;
        p->has_pmi = 1;
    }
    p->rows++;
    err->line = line;
    return p->cb(p->userdata, &row, err);
}

static int on_record(void *ud, const char *rec, size_t len, unsigned long line,
                     struct upload_error *err)
{
    struct cooc_parser *p = ud;
    if (p->format == UPLOAD_FORMAT_NDJSON)
        return json_record(p, rec, len, line, err);
    return csv_record(p, rec, len, line, err);
}

int cooc_parser_feed(struct cooc_parser *p, const char *data, size_t len, struct upload_error *err)
{
    return lex_records_feed(&p->rec, data, len, on_record, p, err);
}

int cooc_parser_finish(struct cooc_parser *p, struct upload_error *err)
{
    int rc = lex_records_finish(&p->rec, on_record, p, err);
    if (rc < 0)
        return rc;
    if (p->format != UPLOAD_FORMAT_NDJSON && !p->header_done) {
        lex_error(err, p->rec.line, 1,
                  "no header: the body must start with a header line naming item1_Id, "
                  "item2_Id, cooc (and optionally pmi)");
        p->rec.failed = -EINVAL;
        return -EINVAL;
    }
    return 0;
}
