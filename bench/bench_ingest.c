/*
 * Ingest hot path in-process: a file is read into memory once, then fed to
 * the upload parser in 64 KiB chunks (what the HTTP layer hands over) with
 * the daemon's row callback (upload_rows_accept: validation, cleaning,
 * batch_add), K times, each into a fresh batch. No HTTP, no commit: this is
 * the loop thread's work for one upload, the part keyed hashing and the
 * parser bounds touch. Prints the CPU time of each run, then best and
 * median, rows and batch bytes. Never fails on a time (STYLE.md).
 *
 * usage: bench_ingest FILE [tsv|csv|ndjson|json] [runs]   (defaults tsv, 5)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/upload.h"
#include "ingest/upload_parse.h"
#include "storage/batch.h"

#define CHUNK 65536

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int on_row(void *ud, const struct upload_row *row, struct upload_error *err)
{
    return upload_rows_accept(ud, row, err);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *fmt = argc > 2 ? argv[2] : "tsv";
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    enum upload_format f = UPLOAD_FORMAT_TSV;
    double t[64];
    char *data;
    size_t len = 0, cap = 1 << 20, n;
    FILE *in;

    if (argc < 2 || runs < 1 || runs > 64) {
        fprintf(stderr, "usage: bench_ingest FILE [tsv|csv|ndjson|json] [runs<=64]\n");
        return 2;
    }
    if (strcmp(fmt, "csv") == 0)
        f = UPLOAD_FORMAT_CSV;
    else if (strcmp(fmt, "ndjson") == 0)
        f = UPLOAD_FORMAT_NDJSON;
    else if (strcmp(fmt, "json") == 0)
        f = UPLOAD_FORMAT_JSON;
    in = fopen(argv[1], "rb");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    data = malloc(cap);
    while (data && (n = fread(data + len, 1, cap - len, in)) > 0) {
        len += n;
        if (len == cap)
            data = realloc(data, cap *= 2);
    }
    fclose(in);
    if (!data)
        return 1;
    for (int r = 0; r < runs; r++) {
        struct batch *b = batch_create();
        struct upload_rows rows = {.batch = b};
        struct upload_parser *p = upload_parser_create(f, 1 << 20, on_row, &rows);
        struct upload_error err = {0};
        double c0 = cpu_now();
        int rc = 0;

        for (size_t off = 0; rc == 0 && off < len; off += CHUNK)
            rc = upload_parser_feed(p, data + off, len - off < CHUNK ? len - off : CHUNK, &err);
        if (rc == 0)
            rc = upload_parser_finish(p, &err);
        if (rc == 0)
            rc = batch_flush(b);
        t[r] = cpu_now() - c0;
        if (rc < 0) {
            fprintf(stderr, "line %lu: %s (%d)\n", err.line, err.message, rc);
            return 1;
        }
        printf("run %d: %.3f s CPU, %llu rows (%.2f M rows/s), batch %.1f MB\n", r + 1, t[r],
               (unsigned long long)rows.received, (double)rows.received / t[r] / 1e6,
               (double)batch_memory(b) / 1e6);
        upload_parser_destroy(p);
        batch_destroy(b);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    printf("best %.3f s, median %.3f s CPU (parse + batch, %s, %zu bytes)\n", t[0], t[runs / 2],
           fmt, len);
    free(data);
    return 0;
}
