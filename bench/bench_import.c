/*
 * bench_import: the CPU side of POST /v1/pmi/import and /v1/models/import
 * without HTTP, storage or the file: a file is read into memory, then
 * parsed in 256 KiB chunks (as libmicrohttpd hands them over), the rows
 * interned and kept (ml/cooc_import.c), checked and built into the matrix;
 * or, with --embeddings, parsed. Prints wall and CPU seconds per stage, so
 * the numbers mean something on a shared machine too.
 *
 *   bench_import FILE.csv            (gen_cooc output)
 *   bench_import --embeddings FILE.jsonl
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/strtab.h"
#include "ingest/cooc_parse.h"
#include "ingest/emb_parse.h"
#include "ml/cooc_import.h"

struct ctx {
    struct strtab ids;
    struct cooc_import ci;
    uint64_t rows, values;
};

static double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int on_cooc(void *ud, const struct cooc_row *r, struct upload_error *err)
{
    struct ctx *c = ud;
    uint32_t a, b;
    int rc = strtab_intern(&c->ids, r->item1, r->item1_len, &a, NULL);
    if (rc == 0)
        rc = strtab_intern(&c->ids, r->item2, r->item2_len, &b, NULL);
    if (rc == 0)
        rc = cooc_import_add(&c->ci, a, b, r->cooc, r->has_pmi, r->pmi);
    c->rows++;
    return rc;
}

static int on_emb(void *ud, const struct emb_row *r, struct upload_error *err)
{
    struct ctx *c = ud;
    c->rows++;
    c->values += r->dims;
    return 0;
}

int main(int argc, char **argv)
{
    int emb = argc > 2 && strcmp(argv[1], "--embeddings") == 0;
    const char *path = argv[argc - 1];
    if (argc < 2) {
        fprintf(stderr, "usage: bench_import [--embeddings] FILE\n");
        return 2;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *body = malloc(len);
    if (!body || fread(body, 1, len, f) != len)
        return 1;
    fclose(f);
    struct ctx c = {0};
    strtab_init(&c.ids, 0);
    cooc_import_init(&c.ci, 0);
    struct upload_error err = {0};
    struct cooc_parser *cp =
        emb ? NULL : cooc_parser_create(UPLOAD_FORMAT_CSV, 1 << 20, on_cooc, &c);
    struct emb_parser *ep = emb ? emb_parser_create(1 << 20, 4096, on_emb, &c) : NULL;
    double w0 = wall(), c0 = cpu();
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < len; off += 256 * 1024) {
        size_t n = len - off < 256 * 1024 ? len - off : 256 * 1024;
        rc = emb ? emb_parser_feed(ep, body + off, n, &err)
                 : cooc_parser_feed(cp, body + off, n, &err);
    }
    if (rc == 0)
        rc = emb ? emb_parser_finish(ep, &err) : cooc_parser_finish(cp, &err);
    double w1 = wall(), c1 = cpu();
    if (rc != 0) {
        fprintf(stderr, "parse error %d at %lu:%lu: %s\n", rc, err.line, err.column, err.message);
        return 1;
    }
    printf("parse+keep: %llu rows, %.0f MB in %.2f s wall, %.2f s CPU = %.2f M rows/s, %.0f MB/s "
           "(CPU)\n",
           (unsigned long long)c.rows, len / 1e6, w1 - w0, c1 - c0, c.rows / (c1 - c0) / 1e6,
           len / (c1 - c0) / 1e6);
    if (emb)
        return 0;
    printf("  held: %.0f MB (%.1f bytes/row)\n", cooc_import_bytes(&c.ci) / 1048576.0,
           (double)cooc_import_bytes(&c.ci) / (double)c.rows);
    struct cooc_import_issue is;
    rc = cooc_import_check(&c.ci, COOC_IMPORT_PMI_TOLERANCE, &is);
    double w2 = wall(), c2 = cpu();
    if (rc != 0) {
        fprintf(stderr, "check: %d problem %d\n", rc, is.problem);
        return 1;
    }
    uint32_t *keys = malloc(sizeof *keys * c.ci.n);
    for (uint32_t i = 0; i < c.ci.n; i++)
        keys[i] = c.ci.n - i; /* reversed: the re-sorting path */
    struct cooc_result r;
    rc = cooc_import_build(&c.ci, keys, 0, 0, &r);
    double w3 = wall(), c3 = cpu();
    printf("check: %.2f s wall, %.2f s CPU; build (re-sort): %.2f s wall, %.2f s CPU; rc %d, "
           "%u items, %llu nnz\n",
           w2 - w1, c2 - c1, w3 - w2, c3 - c2, rc, r.n, (unsigned long long)r.nnz);
    printf("total CPU %.2f s = %.2f M rows/s\n", c3 - c0, c.rows / (c3 - c0) / 1e6);
    cooc_result_deinit(&r);
    return 0;
}
