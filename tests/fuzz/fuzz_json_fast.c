/*
 * Differential libFuzzer target for the JSON record fast path
 * (ingest/upload_json_fast.c): each input is parsed with the fast path on and
 * off (the jansson path alone is the reference), whole and in chunks, and
 * the runs must agree on the return code, the error (line, column,
 * message) and every row (all fields, line included, in order).
 *
 * Input layout: byte 0: bit 0 picks NDJSON or JSON, bits 1-2 the record
 * bound, bit 3 a callback that rejects the third row; byte 1 seeds the
 * chunking; the rest is the body. Corpus: tests/fuzz/corpus/json_fast/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/upload_internal.h"
#include "fuzz_feed.h"

struct jff_run {
    char *rows; /* every field of every row, serialized */
    size_t len, cap;
    unsigned long nrows;
    int reject_third;
};

static void jff_add(struct jff_run *r, const void *s, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = (r->len + n) * 2 + 256;
        char *b = realloc(r->rows, cap);
        if (!b)
            abort();
        r->rows = b;
        r->cap = cap;
    }
    memcpy(r->rows + r->len, s, n);
    r->len += n;
}

static void jff_str(struct jff_run *r, const char *s, size_t n)
{
    unsigned char null = s == NULL;
    jff_add(r, &null, 1);
    jff_add(r, &n, sizeof n);
    if (s)
        jff_add(r, s, n);
}

static int jff_cb(void *ud, const struct upload_row *row, struct upload_error *err)
{
    struct jff_run *r = ud;

    jff_str(r, row->playlist, row->playlist_len);
    jff_str(r, row->item, row->item_len);
    jff_str(r, row->title, row->title_len);
    jff_str(r, row->artist, row->artist_len);
    jff_add(r, &row->has_title, sizeof row->has_title);
    jff_add(r, &row->line, sizeof row->line);
    if (++r->nrows == 3 && r->reject_third) {
        snprintf(err->message, sizeof err->message, "third row rejected");
        return -ECANCELED;
    }
    return 0;
}

static int jff_parse(enum upload_format fmt, const uint8_t *body, size_t len, size_t max_record,
                     unsigned seed, int fast_off, struct jff_run *r, struct upload_error *err)
{
    struct upload_parser *p = upload_parser_create(fmt, max_record, jff_cb, r);
    if (!p)
        abort();
    p->j_fast_off = fast_off;
    memset(err, 0, sizeof *err);
    int rc = fuzz_feed_chunked(p, body, len, seed, err);

    if (upload_parser_rows(p) != r->nrows)
        abort();
    upload_parser_destroy(p);
    if (rc == 0)
        memset(err, 0, sizeof *err);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t bounds[4] = {16, 64, 1024, 1 << 20};
    struct jff_run a = {0}, b = {0};
    struct upload_error ea, eb;
    enum upload_format fmt;
    size_t max_record;
    unsigned seed;
    int ra, rb;

    if (size < 2)
        return 0;
    fmt = data[0] & 1 ? UPLOAD_FORMAT_JSON : UPLOAD_FORMAT_NDJSON;
    max_record = bounds[(data[0] >> 1) & 3];
    a.reject_third = b.reject_third = (data[0] >> 3) & 1;
    seed = data[1] | 1u;
    data += 2;
    size -= 2;

    /* Reference: jansson only, whole body. Candidate: fast path, chunked
     * (the whole-vs-chunked agreement is fuzz_json/fuzz_ndjson's job). */
    ra = jff_parse(fmt, data, size, max_record, 0, 1, &a, &ea);
    rb = jff_parse(fmt, data, size, max_record, seed, 0, &b, &eb);
    if (ra != rb || a.nrows != b.nrows || a.len != b.len ||
        (a.len && memcmp(a.rows, b.rows, a.len) != 0) || ea.line != eb.line ||
        ea.column != eb.column || strcmp(ea.message, eb.message) != 0) {
        fprintf(stderr,
                "jansson: rc %d rows %lu err %lu:%lu %s\nfast: rc %d rows %lu err %lu:%lu %s\n", ra,
                a.nrows, ea.line, ea.column, ea.message, rb, b.nrows, eb.line, eb.column,
                eb.message);
        abort();
    }
    free(a.rows);
    free(b.rows);
    return 0;
}
