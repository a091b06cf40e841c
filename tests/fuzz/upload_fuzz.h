/*
 * Shared body of the upload parser fuzz targets (fuzz_csv.c, fuzz_tsv.c,
 * fuzz_ndjson.c, fuzz_json.c): each defines UPLOAD_FUZZ_FORMAT and includes
 * this file, which defines LLVMFuzzerTestOneInput. UPLOAD_FUZZ_TEXT is 1 for
 * CSV/TSV (enum constants cannot be tested by #if).
 *
 * Input layout: byte 0 picks the record bound, byte 1 seeds the chunking;
 * the rest is the body. The body is parsed twice, whole and in
 * data-dependent chunks (1 byte up to a few KiB), and both runs must agree
 * on the return code, the error (line, column, message) and every row
 * (compared through a hash). Each row is checked for invariants: borrowed
 * strings readable and within the record bound, line within the body,
 * title/has_title consistency, CSV/TSV ids trimmed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/upload_parse.h"
#include "fuzz_feed.h"

struct uf_run {
    uint64_t hash;
    unsigned long rows;
    unsigned long lines; /* lines in the body (LF count + 1) */
    size_t max_record;
};

static void uf_hash(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ s[i]) * 0x100000001b3ULL;
}

static void uf_str(struct uf_run *r, const char *s, size_t n, int may_be_null)
{
    if (!s) {
        if (!may_be_null)
            abort();
        uf_hash(&r->hash, "\x01", 1);
        return;
    }
    /* JSON integers become at most 20 digits; strings are within the record. */
    if (n > r->max_record && n > 20)
        abort();
    uf_hash(&r->hash, &n, sizeof n);
    uf_hash(&r->hash, s, n); /* reads every byte: ASan checks bounds */
}

static int uf_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int uf_cb(void *ud, const struct upload_row *row, struct upload_error *err)
{
    struct uf_run *r = ud;
    (void)err;

    if (row->line < 1 || row->line > r->lines)
        abort();
    if (row->has_title != 0 && row->has_title != 1)
        abort();
#if UPLOAD_FUZZ_TEXT
    /* A title column gives every row a non-NULL title. */
    if (row->has_title != (row->title != NULL))
        abort();
    if (row->playlist_len &&
        (uf_is_space(row->playlist[0]) || uf_is_space(row->playlist[row->playlist_len - 1])))
        abort();
    if (row->item_len && (uf_is_space(row->item[0]) || uf_is_space(row->item[row->item_len - 1])))
        abort();
#else
    if (!row->has_title && row->title)
        abort();
    if (row->playlist_len == 0)
        abort(); /* empty playlist ids are refused in JSON */
    (void)uf_is_space;
#endif
    uf_str(r, row->playlist, row->playlist_len, 0);
    uf_str(r, row->item, row->item_len, 0);
    uf_str(r, row->title, row->title_len, 1);
    uf_str(r, row->artist, row->artist_len, 1);
    uf_hash(&r->hash, &row->has_title, sizeof row->has_title);
    uf_hash(&r->hash, &row->line, sizeof row->line);
    r->rows++;
    return 0;
}

static int uf_parse(const uint8_t *body, size_t len, size_t max_record, unsigned seed,
                    struct uf_run *r, struct upload_error *err)
{
    struct upload_parser *p = upload_parser_create(UPLOAD_FUZZ_FORMAT, max_record, uf_cb, r);
    if (!p)
        abort();
    memset(err, 0, sizeof *err);
    int rc = fuzz_feed_chunked(p, body, len, seed, err);

    if (upload_parser_rows(p) != r->rows)
        abort();
    upload_parser_destroy(p);
    if (rc == 0) {
        memset(err, 0, sizeof *err);
    } else {
        if (rc != -EINVAL && rc != -E2BIG)
            abort();
        if (memchr(err->message, '\0', sizeof err->message) == NULL || err->message[0] == '\0')
            abort();
        if (err->line < 1 || err->line > r->lines || err->column < 1)
            abort();
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t bounds[4] = {16, 64, 1024, 1 << 20};
    struct uf_run a = {.hash = 0xcbf29ce484222325ULL}, b;
    struct upload_error ea, eb;
    size_t max_record;
    unsigned seed;
    int ra, rb;

    if (size < 2)
        return 0;
    max_record = bounds[data[0] & 3];
    seed = data[1] | 1u;
    data += 2;
    size -= 2;
    a.max_record = max_record;
    a.lines = 1;
    for (size_t i = 0; i < size; i++)
        a.lines += data[i] == '\n';
    b = a;

    ra = uf_parse(data, size, max_record, 0, &a, &ea);
    rb = uf_parse(data, size, max_record, seed, &b, &eb);
    if (ra != rb || a.rows != b.rows || a.hash != b.hash || ea.line != eb.line ||
        ea.column != eb.column || strcmp(ea.message, eb.message) != 0) {
        fprintf(stderr,
                "whole: rc %d rows %lu err %lu:%lu %s\nchunked: rc %d rows %lu err %lu:%lu %s\n",
                ra, a.rows, ea.line, ea.column, ea.message, rb, b.rows, eb.line, eb.column,
                eb.message);
        abort();
    }
    return 0;
}
