/*
 * Upload parser throughput: generates a synthetic body in memory (TSV, CSV,
 * NDJSON), then times upload_parser_feed over it in 64 KiB chunks (what the
 * HTTP layer hands over) with a callback that only touches the row. Prints
 * MB/s and rows/s per format (per CPU-second of this thread, best of 3);
 * never fails on a time. NDJSON/JSON are timed twice: as the daemon parses
 * them, and with the JSON fast path switched off (jansson only, the
 * test-only flag of ingest/upload_internal.h) for comparison.
 *
 * usage: bench_parse [MB]   (default 64)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "ingest/upload_internal.h"
#include "ingest/upload_parse.h"

static int count_cb(void *ud, const struct upload_row *r, struct upload_error *err)
{
    unsigned long *sum = ud;

    (void)err;
    *sum += r->item_len + r->playlist_len + r->title_len;
    return 0;
}

static char *make_body(enum upload_format f, size_t target, size_t *len)
{
    char *b = malloc(target + 256);
    size_t n = 0;
    unsigned long row = 0;

    if (!b)
        return NULL;
    if (f == UPLOAD_FORMAT_TSV)
        n = (size_t)sprintf(b, "playlist_id\titem_id\ttitle\tartist\n");
    else if (f == UPLOAD_FORMAT_CSV)
        n = (size_t)sprintf(b, "playlist_id,item_id,title,artist\n");
    if (f == UPLOAD_FORMAT_JSON)
        b[n++] = '[';
    while (n < target) {
        unsigned long pl = row / 20, item = row * 7919 % 100000;
        if (f == UPLOAD_FORMAT_TSV)
            n += (size_t)sprintf(b + n, "pl%lu\t%lu\tSome Song Title %lu\tThe Artist\n", pl,
                                 item, item % 977);
        else if (f == UPLOAD_FORMAT_CSV)
            n += (size_t)sprintf(b + n, "pl%lu,%lu,\"Some Song, Title %lu\",The Artist\n", pl,
                                 item, item % 977);
        else
            n += (size_t)sprintf(b + n,
                                 "%s{\"id\":\"pl%lu\",\"items\":[\"%lu\",{\"id\":\"%lu\",\"title\":"
                                 "\"Some Song Title\",\"artist\":\"The Artist\"},%lu]}\n",
                                 f == UPLOAD_FORMAT_JSON && row ? "," : "", row, item, item + 1,
                                 item + 2);
        row++;
    }
    if (f == UPLOAD_FORMAT_JSON)
        b[n++] = ']';
    *len = n;
    return b;
}

static void bench(const char *name, enum upload_format f, size_t mb, int fast_off)
{
    size_t len;
    char *body = make_body(f, mb << 20, &len);
    double best = 1e9;
    unsigned long rows = 0;

    if (!body)
        return;
    for (int rep = 0; rep < 3; rep++) {
        unsigned long sum = 0;
        struct upload_error err;
        struct upload_parser *p = upload_parser_create(f, 1 << 20, count_cb, &sum);
        p->j_fast_off = fast_off;
        /* CPU time of this thread: the box may be shared (CI, other
         * builds), and the figure we want is the parser's cost per core. */
        double t0 = clock_thread_cpu_s();
        int rc = 0;

        for (size_t off = 0; off < len && rc == 0; off += 65536)
            rc = upload_parser_feed(p, body + off, len - off < 65536 ? len - off : 65536, &err);
        if (rc == 0)
            rc = upload_parser_finish(p, &err);
        double dt = clock_thread_cpu_s() - t0;
        if (rc != 0)
            fprintf(stderr, "%s: error %d at %lu:%lu: %s\n", name, rc, err.line, err.column,
                    err.message);
        rows = upload_parser_rows(p);
        upload_parser_destroy(p);
        if (dt < best)
            best = dt;
    }
    printf("%-14s %6.1f MB  %8.1f MB/s  %6.2f M rows/s\n", name, (double)len / 1e6,
           (double)len / 1e6 / best, (double)rows / 1e6 / best);
    free(body);
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 64;

    if (mb == 0)
        mb = 64;
    bench("tsv", UPLOAD_FORMAT_TSV, mb, 0);
    bench("csv", UPLOAD_FORMAT_CSV, mb, 0);
    bench("ndjson", UPLOAD_FORMAT_NDJSON, mb, 0);
    bench("json", UPLOAD_FORMAT_JSON, mb, 0);
    bench("ndjson-jansson", UPLOAD_FORMAT_NDJSON, mb / 4 ? mb / 4 : 1, 1);
    bench("json-jansson", UPLOAD_FORMAT_JSON, mb / 4 ? mb / 4 : 1, 1);
    return 0;
}
