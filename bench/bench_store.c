/*
 * Storage benchmark: builds a synthetic upload in a batch (default 3 M rows,
 * ~158 k playlists of 1..37 rows, 300 k distinct items with Zipf-like
 * popularity, a title and artist on every row as a CSV upload has), commits
 * it durably into a fresh temp dir, commits it again (the idempotent
 * re-upload path), then loads the job snapshot. Prints rows/s, seconds,
 * batch bytes and peak RSS. Never fails on a time.
 *
 * usage: bench_store [rows] [items] [dir]
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/clock.h"
#include "storage/batch.h"
#include "storage/store.h"

static uint64_t bench_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t bench_rand(void)
{
    /* xorshift64*: reproducible across runs and platforms. */
    bench_rng ^= bench_rng >> 12;
    bench_rng ^= bench_rng << 25;
    bench_rng ^= bench_rng >> 27;
    return bench_rng * 2685821657736338717ULL;
}

/* CPU seconds of this process: the machine is shared, so wall time alone
 * says more about the neighbours than about the code. */
static double bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static long bench_peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void bench_rm_tree(const char *dir)
{
    const char *names[] = {"itemvec.db", "itemvec.db-wal", "itemvec.db-shm"};
    char path[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 3000000;
    size_t n_items = argc > 2 ? strtoull(argv[2], NULL, 10) : 300000;
    char tmpl[] = "/tmp/bench_store.XXXXXX";
    const char *dir = argc > 3 ? argv[3] : NULL;
    struct store_error err;
    struct store_commit_result res;
    struct store_counts counts;
    struct store_groups groups;
    struct store *s = NULL;
    struct batch *b = NULL;
    uint32_t *row_item = NULL;
    double *cdf = NULL, t0, c0, t_build, c_build, t_commit, c_commit, t_again, c_again, t_groups;
    int ret = 1, made_dir = 0;

    if (rows < n_items || n_items == 0) {
        fprintf(stderr, "need rows >= items > 0\n");
        return 2;
    }
    if (!dir) {
        dir = mkdtemp(tmpl);
        if (!dir) {
            perror("mkdtemp");
            return 1;
        }
        made_dir = 1;
    }

    /* Rows' items: every item once (so there are exactly n_items distinct),
     * the rest drawn from Zipf(s = 0.9) by inverse CDF, then shuffled so
     * popular and rare items mix in every playlist. */
    row_item = malloc(rows * sizeof *row_item);
    cdf = malloc(n_items * sizeof *cdf);
    if (!row_item || !cdf)
        goto out;
    {
        double sum = 0;
        for (size_t i = 0; i < n_items; i++)
            cdf[i] = (sum += 1.0 / pow((double)(i + 1), 0.9));
        for (size_t i = 0; i < n_items; i++)
            cdf[i] /= sum;
    }
    for (size_t r = 0; r < rows; r++) {
        if (r < n_items) {
            row_item[r] = (uint32_t)r;
            continue;
        }
        double u = (double)(bench_rand() >> 11) * 0x1.0p-53;
        size_t lo = 0, hi = n_items - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        row_item[r] = (uint32_t)lo;
    }
    for (size_t r = rows - 1; r > 0; r--) {
        size_t j = bench_rand() % (r + 1);
        uint32_t t = row_item[r];
        row_item[r] = row_item[j];
        row_item[j] = t;
    }
    free(cdf);
    cdf = NULL;

    t0 = clock_mono_s();
    c0 = bench_cpu();
    b = batch_create();
    if (!b)
        goto out;
    {
        size_t r = 0, p = 0;
        char pid[32], iid[32], title[48], artist[32];
        while (r < rows) {
            size_t len = 1 + bench_rand() % 37; /* mean 19: ~158 k playlists */
            int pl = snprintf(pid, sizeof pid, "pl%zu", p++);
            for (size_t k = 0; k < len && r < rows; k++, r++) {
                uint32_t it = row_item[r];
                int il = snprintf(iid, sizeof iid, "%u", 1000000 + it);
                int tl = snprintf(title, sizeof title, "Song number %u", it);
                int al = snprintf(artist, sizeof artist, "Artist %u", it / 12);
                if (batch_add(b, pid, (size_t)pl, iid, (size_t)il, title, (size_t)tl, artist,
                              (size_t)al) < 0) {
                    fprintf(stderr, "batch_add: out of memory\n");
                    goto out;
                }
            }
        }
    }
    t_build = clock_mono_s() - t0;
    c_build = bench_cpu() - c0;
    free(row_item);
    row_item = NULL;

    s = store_open(dir, &err);
    if (!s) {
        fprintf(stderr, "store_open: %s (%d)\n", err.message, err.code);
        goto out;
    }
    t0 = clock_mono_s();
    c0 = bench_cpu();
    if (store_batch_commit(s, b, STORE_COMMIT_MERGE, &res) < 0) {
        fprintf(stderr, "commit: %s\n", store_errmsg(s));
        goto out;
    }
    t_commit = clock_mono_s() - t0;
    c_commit = bench_cpu() - c0;
    printf("batch: %zu rows, %zu playlists, %zu items, %.1f MB (%.1f B/row), "
           "built in %.2f s (%.2f s CPU, incl. snprintf)\n",
           batch_rows(b), batch_playlists(b), batch_items(b), batch_memory(b) / 1e6,
           (double)batch_memory(b) / (double)batch_rows(b), t_build, c_build);
    printf("commit (fresh db, durable): %.3f s (%.3f s CPU), %.0f rows/s; stored %lld, "
           "duplicate %lld\n",
           t_commit, c_commit, (double)rows / t_commit, (long long)res.rows_stored,
           (long long)res.rows_duplicate);

    t0 = clock_mono_s();
    c0 = bench_cpu();
    if (store_batch_commit(s, b, STORE_COMMIT_MERGE, &res) < 0) {
        fprintf(stderr, "commit: %s\n", store_errmsg(s));
        goto out;
    }
    t_again = clock_mono_s() - t0;
    c_again = bench_cpu() - c0;
    printf("commit again (idempotent): %.3f s (%.3f s CPU), %.0f rows/s; stored %lld, "
           "duplicate %lld\n",
           t_again, c_again, (double)rows / t_again, (long long)res.rows_stored,
           (long long)res.rows_duplicate);

    t0 = clock_mono_s();
    if (store_groups_load(s, &groups) < 0) {
        fprintf(stderr, "groups: %s\n", store_errmsg(s));
        goto out;
    }
    t_groups = clock_mono_s() - t0;
    printf("groups snapshot: %zu groups, %llu memberships, max key %u in %.3f s\n",
           groups.n_groups, (unsigned long long)groups.offsets[groups.n_groups],
           groups.max_item_key, t_groups);
    store_groups_deinit(&groups);
    if (store_counts_get(s, &counts) == 0)
        printf("counts: playlists %lld, items %lld, memberships %lld\n",
               (long long)counts.playlists, (long long)counts.items,
               (long long)counts.memberships);
    printf("peak RSS: %.1f MB\n", bench_peak_rss_kib() / 1024.0);
    ret = 0;
out:
    free(cdf);
    free(row_item);
    batch_destroy(b);
    store_close(s);
    if (made_dir)
        bench_rm_tree(dir);
    return ret;
}
