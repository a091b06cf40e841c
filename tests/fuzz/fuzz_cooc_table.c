/*
 * libFuzzer target for the co-occurrence table parser (ingest/cooc_parse.h)
 * and the checks behind POST /v1/pmi/import (ml/cooc_import.h). Input
 * layout: byte 0 picks the format (CSV, TSV, NDJSON) and the record bound,
 * byte 1 seeds the chunking; the rest is the body. The body is parsed
 * whole and in data-dependent chunks: both runs must agree on the return
 * code, the error position and every row (through a hash). Each row must
 * hold what the parser promises (ids 1..256 bytes without NUL, cooc > 0,
 * finite pmi, line within the body). The rows of the whole run then go
 * through cooc_import_add / check, and when the check passes, build with
 * keys 1..n: the matrix must be well formed (the structure cooc_file_read
 * insists on) with total = the sum of the diagonal.
 * Corpus: tests/fuzz/corpus/cooc_table/.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strtab.h"
#include "ingest/cooc_parse.h"
#include "ml/cooc_import.h"

#include "fuzz_feed.h"

struct run {
    uint64_t hash;
    unsigned long rows, lines;
    struct strtab ids;
    struct cooc_import ci;
    int import_rc;
};

static void hash(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ s[i]) * 0x100000001b3ULL;
}

static int on_row(void *ud, const struct cooc_row *r, struct upload_error *err)
{
    struct run *x = ud;
    if (r->item1_len < 1 || r->item1_len > 256 || r->item2_len < 1 || r->item2_len > 256 ||
        memchr(r->item1, 0, r->item1_len) || memchr(r->item2, 0, r->item2_len) || r->cooc == 0 ||
        (r->has_pmi && !isfinite(r->pmi)) || r->line < 1 || r->line > x->lines)
        abort();
    hash(&x->hash, r->item1, r->item1_len);
    hash(&x->hash, "|", 1);
    hash(&x->hash, r->item2, r->item2_len);
    hash(&x->hash, &r->cooc, sizeof r->cooc);
    hash(&x->hash, &r->has_pmi, sizeof r->has_pmi);
    if (r->has_pmi)
        hash(&x->hash, &r->pmi, sizeof r->pmi);
    hash(&x->hash, &r->line, sizeof r->line);
    x->rows++;
    if (x->import_rc == 0) {
        uint32_t a, b;
        int rc = strtab_intern(&x->ids, r->item1, r->item1_len, &a, NULL);
        if (rc == 0)
            rc = strtab_intern(&x->ids, r->item2, r->item2_len, &b, NULL);
        if (rc == 0)
            rc = cooc_import_add(&x->ci, a, b, r->cooc, r->has_pmi, r->pmi);
        x->import_rc = rc;
    }
    return 0;
}

static int parse(enum upload_format f, size_t max_record, const uint8_t *body, size_t len,
                 unsigned seed, struct run *x, struct upload_error *err)
{
    struct cooc_parser *p = cooc_parser_create(f, max_record, on_row, x);
    if (!p)
        abort();
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off < len) {
        size_t n = fuzz_chunk(&seed, body, off, len);
        rc = cooc_parser_feed(p, (const char *)body + off, n, err);
        off += n;
    }
    if (rc == 0)
        rc = cooc_parser_finish(p, err);
    cooc_parser_destroy(p);
    return rc;
}

static void check_matrix(const struct cooc_result *r)
{
    uint64_t total = 0;
    if (r->row_ptr[0] != 0 || r->row_ptr[r->n] != r->nnz)
        abort();
    for (uint32_t i = 0; i < r->n; i++) {
        if ((i && r->keys[i] <= r->keys[i - 1]) || r->freq[i] == 0)
            abort();
        total += r->freq[i];
        int diag = 0;
        for (uint64_t e = r->row_ptr[i]; e < r->row_ptr[i + 1]; e++) {
            if (r->col[e] >= r->n || (e > r->row_ptr[i] && r->col[e] <= r->col[e - 1]) ||
                r->cooc[e] == 0)
                abort();
            diag |= r->col[e] == i && r->cooc[e] == r->freq[i];
        }
        if (!diag)
            abort();
    }
    if (total != r->total)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const enum upload_format formats[] = {UPLOAD_FORMAT_CSV, UPLOAD_FORMAT_TSV,
                                                 UPLOAD_FORMAT_NDJSON};
    enum upload_format f = formats[data[0] % 3];
    size_t max_record = 8 + (size_t)(data[0] / 3) * 8;
    const uint8_t *body = data + 2;
    size_t len = size - 2;
    struct run a = {0}, b = {0};
    a.lines = b.lines = 1;
    for (size_t i = 0; i < len; i++)
        a.lines += body[i] == '\n';
    b.lines = a.lines;
    strtab_init(&a.ids, 0);
    strtab_init(&b.ids, 0);
    cooc_import_init(&a.ci, 1000);
    cooc_import_init(&b.ci, 1000);
    b.import_rc = -1; /* the chunked run only parses */
    struct upload_error ea = {0}, eb = {0};
    int ra = parse(f, max_record, body, len, 0, &a, &ea);
    int rb = parse(f, max_record, body, len, data[1] | 1u, &b, &eb);
    if (ra != rb || a.hash != b.hash || a.rows != b.rows || ea.line != eb.line ||
        ea.column != eb.column || strcmp(ea.message, eb.message) != 0)
        abort();
    if (ra == 0 && a.import_rc == 0) {
        struct cooc_import_issue is;
        int rc = cooc_import_check(&a.ci, COOC_IMPORT_PMI_TOLERANCE, &is);
        if (rc == 0) {
            uint32_t *keys = malloc(sizeof *keys * (a.ci.n + 1));
            for (uint32_t i = 0; i < a.ci.n; i++)
                keys[i] = a.ci.n - i; /* reversed: the re-sorting path */
            struct cooc_result r;
            if (cooc_import_build(&a.ci, keys, 0, 0, &r) == 0) {
                check_matrix(&r);
                cooc_result_deinit(&r);
            }
            free(keys);
        } else if (rc != -EDOM || is.problem == COOC_IMPORT_OK) {
            abort();
        }
    }
    cooc_import_deinit(&a.ci);
    cooc_import_deinit(&b.ci);
    strtab_deinit(&a.ids);
    strtab_deinit(&b.ids);
    return 0;
}
