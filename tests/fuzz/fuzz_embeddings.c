/*
 * libFuzzer target for the embeddings JSONL parser (ingest/emb_parse.h,
 * POST /v1/models/import). Input layout: byte 0 picks the record bound and
 * the largest dimension count, byte 1 seeds the chunking; the rest is the
 * body. Parsed whole and in data-dependent chunks, both runs must agree on
 * the return code, the error position and every row (through a hash);
 * each row must hold a 1..256-byte id without NUL and 1..max_dims finite
 * values. Corpus: tests/fuzz/corpus/embeddings/.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/emb_parse.h"

#include "fuzz_feed.h"

struct run {
    uint64_t hash;
    unsigned long rows;
    uint32_t max_dims;
};

static void hash(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ s[i]) * 0x100000001b3ULL;
}

static int on_row(void *ud, const struct emb_row *r, struct upload_error *err)
{
    struct run *x = ud;
    if (r->id_len < 1 || r->id_len > 256 || memchr(r->id, 0, r->id_len) || r->dims < 1 ||
        r->dims > x->max_dims)
        abort();
    for (uint32_t k = 0; k < r->dims; k++)
        if (!isfinite(r->values[k]))
            abort();
    hash(&x->hash, r->id, r->id_len);
    hash(&x->hash, r->values, sizeof *r->values * r->dims);
    hash(&x->hash, &r->line, sizeof r->line);
    x->rows++;
    return 0;
}

static int parse(size_t max_record, const uint8_t *body, size_t len, unsigned seed, struct run *x,
                 struct upload_error *err)
{
    struct emb_parser *p = emb_parser_create(max_record, x->max_dims, on_row, x);
    if (!p)
        abort();
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off < len) {
        size_t n = fuzz_chunk(&seed, body, off, len);
        rc = emb_parser_feed(p, (const char *)body + off, n, err);
        off += n;
    }
    if (rc == 0)
        rc = emb_parser_finish(p, err);
    emb_parser_destroy(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_record = 16 + (size_t)(data[0] & 0x0f) * 32;
    uint32_t max_dims = 1 + (data[0] >> 4);
    struct run a = {0, 0, max_dims}, b = {0, 0, max_dims};
    struct upload_error ea = {0}, eb = {0};
    int ra = parse(max_record, data + 2, size - 2, 0, &a, &ea);
    int rb = parse(max_record, data + 2, size - 2, data[1] | 1u, &b, &eb);
    if (ra != rb || a.hash != b.hash || a.rows != b.rows || ea.line != eb.line ||
        ea.column != eb.column || strcmp(ea.message, eb.message) != 0)
        abort();
    return 0;
}
