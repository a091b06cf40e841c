/*
 * Nearest-neighbour benchmark (ml/knn.h): time to precompute every item's
 * top-K list (blocked SGEMM + exact selection) with 1 and 2 threads, the
 * index's memory, and per-query latency of the three serving paths:
 *   lookup   knn_index_neighbors, k <= K (GET .../similar?k=10)
 *   scan     knn_index_neighbors, k > K (exact SGEMV fallback)
 *   recommend knn_index_recommend of 5 random items, k = 10 (SGEMV scan)
 *
 * Input: a clustered random embedding built here deterministically —
 * n/50 Gaussian centres, each item a centre plus Gaussian noise at 0.6 of
 * its scale, in d dims (default 23 000 × 50, the seed-shaped model the
 * 3 M-row generator table trains, then 100 000 × 50).
 *
 *   bench_knn [--items 23000,100000] [--dims 50] [--k 100] [--threads 1,2]
 *             [--block B] [--cols C] [--repeat R] [--queries Q] [--scan-queries S]
 *
 * --block and --cols set the precompute's tile (knn_params block_rows and
 * block_cols; 0 = automatic). Precompute is repeated R times per thread
 * count (default 3 below 50 k items, 1 above) and reported as best and
 * median wall time, with the process CPU time of the best and median runs
 * (on a shared machine the wall time includes waiting for a core; CPU time
 * does not). Prints numbers only; never fails on time.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "ml/knn.h"

static uint64_t rng = 12345;

static uint64_t rnd(void)
{
    uint64_t x = (rng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double gauss(void)
{
    double u1 = ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(rnd() >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

struct run {
    double wall, cpu;
};

static int cmp_run(const void *a, const void *b)
{
    double x = ((const struct run *)a)->wall, y = ((const struct run *)b)->wall;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t parse_list(const char *s, long *out, size_t cap)
{
    size_t n = 0;
    while (*s && n < cap) {
        char *end;
        out[n++] = strtol(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s)
            break;
    }
    return n;
}

static float *make_embeddings(uint32_t n, uint32_t d)
{
    uint32_t nc = n / 50 ? n / 50 : 1;
    float *c = malloc((size_t)nc * d * sizeof(float));
    float *m = malloc((size_t)n * d * sizeof(float));
    if (!c || !m) {
        free(c);
        free(m);
        return NULL;
    }
    for (size_t t = 0; t < (size_t)nc * d; t++)
        c[t] = (float)gauss();
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(rnd() % nc);
        for (uint32_t t = 0; t < d; t++)
            m[(size_t)i * d + t] = c[(size_t)k * d + t] + 0.6f * (float)gauss();
    }
    free(c);
    return m;
}

/* Precompute scratch per thread in bytes (knn.h's formula; automatic
 * tile 256 × 1024). */
static double scratch_bytes(uint32_t n, uint32_t K, uint32_t block, uint32_t cols)
{
    double r = block ? block : 256, c = cols ? cols : 1024;
    r = r < n ? r : n;
    c = c < n ? c : n;
    return 4 * r * c + 8 * r * (3.0 * K + 16) + 4.0 * n;
}

/* Prints mean, p50 and p99 of lat[0..q) (seconds) in µs. */
static void report_latency(const char *what, double *lat, size_t q)
{
    double sum = 0;
    for (size_t t = 0; t < q; t++)
        sum += lat[t];
    qsort(lat, q, sizeof(*lat), cmp_double);
    printf("  %-28s %6zu queries  mean %8.2f us  p50 %8.2f us  p99 %8.2f us  max %8.2f us\n",
           what, q, 1e6 * sum / (double)q, 1e6 * lat[q / 2], 1e6 * lat[(size_t)(0.99 * (double)q)],
           1e6 * lat[q - 1]);
}

static int bench_one(uint32_t n, uint32_t d, uint32_t K, const long *threads, size_t n_threads,
                     uint32_t block, uint32_t cols, int repeat, size_t queries, size_t scan_queries)
{
    int rc = 0, err = 0;
    struct knn_index *idx = NULL;
    float *m = NULL;
    double *lat = NULL;
    uint32_t *oi = NULL;
    float *os = NULL;

    printf("n = %u items, d = %u, K = %u: %.1f GFlop per precompute (2·n²·d)\n", n, d, K,
           2.0 * n * (double)n * d / 1e9);
    m = make_embeddings(n, d);
    if (!m) {
        rc = -ENOMEM;
        goto out;
    }
    double t0 = clock_mono_s();
    idx = knn_index_create(m, n, d, d, NULL, &err);
    if (!idx) {
        rc = err;
        goto out;
    }
    printf("  create (copy + normalise)    %8.3f s, %.1f MB\n", clock_mono_s() - t0,
           (double)knn_index_bytes(idx) / 1e6);

    for (size_t ti = 0; ti < n_threads; ti++) {
        struct knn_params p;
        knn_params_init(&p);
        p.k = K;
        p.threads = (int)threads[ti];
        p.block_rows = block;
        p.block_cols = cols;
        struct run runs[16];
        int reps = repeat < 16 ? repeat : 16;
        for (int r = 0; r < reps; r++) {
            t0 = clock_mono_s();
            double c0 = clock_cpu_s();
            rc = knn_index_precompute(idx, &p, NULL, NULL);
            runs[r].wall = clock_mono_s() - t0;
            runs[r].cpu = clock_cpu_s() - c0;
            if (rc < 0)
                goto out;
        }
        qsort(runs, (size_t)reps, sizeof(runs[0]), cmp_run);
        printf("  precompute %d thread%s        best %7.3f s  median %7.3f s  (%d runs)  "
               "%.1f GFlop/s best  cpu %.3f / %.3f s\n",
               p.threads, p.threads > 1 ? "s" : " ", runs[0].wall, runs[reps / 2].wall, reps,
               2.0 * n * (double)n * d / 1e9 / runs[0].wall, runs[0].cpu, runs[reps / 2].cpu);
    }
    printf("  memory: index %.1f MB (matrix %.1f MB + lists %.1f MB); precompute scratch "
           "per thread ~%.1f MB\n",
           (double)knn_index_bytes(idx) / 1e6, (double)n * d * 4 / 1e6,
           (double)n * knn_index_k(idx) * 8 / 1e6, scratch_bytes(n, K, block, cols) / 1e6);

    const uint32_t kmax = 2 * K + 10;
    lat = malloc((queries > scan_queries ? queries : scan_queries) * sizeof(double));
    oi = malloc(kmax * sizeof(uint32_t));
    os = malloc(kmax * sizeof(float));
    if (!lat || !oi || !os) {
        rc = -ENOMEM;
        goto out;
    }
    volatile uint32_t sink = 0;
    for (size_t q = 0; q < queries; q++) {
        uint32_t i = (uint32_t)(rnd() % n);
        t0 = clock_mono_s();
        int got = knn_index_neighbors(idx, i, 10, oi, os);
        lat[q] = clock_mono_s() - t0;
        sink += got > 0 ? oi[0] : 0;
    }
    report_latency("lookup  neighbors k=10", lat, queries);
    for (size_t q = 0; q < scan_queries; q++) {
        uint32_t i = (uint32_t)(rnd() % n);
        t0 = clock_mono_s();
        int got = knn_index_neighbors(idx, i, 2 * K, oi, os);
        lat[q] = clock_mono_s() - t0;
        sink += got > 0 ? oi[0] : 0;
    }
    char what[64];
    snprintf(what, sizeof(what), "scan    neighbors k=%u", 2 * K);
    report_latency(what, lat, scan_queries);
    for (size_t q = 0; q < scan_queries; q++) {
        uint32_t items[5];
        for (int a = 0; a < 5; a++)
            items[a] = (uint32_t)(rnd() % n);
        t0 = clock_mono_s();
        int got = knn_index_recommend(idx, items, 5, NULL, 0, 10, oi, os);
        lat[q] = clock_mono_s() - t0;
        sink += got > 0 ? oi[0] : 0;
    }
    report_latency("scan    recommend 5 items k=10", lat, scan_queries);
    (void)sink;

out:
    if (rc < 0)
        fprintf(stderr, "bench_knn: n = %u: error %d (%s)\n", n, rc, strerror(-rc));
    knn_index_destroy(idx);
    free(m);
    free(lat);
    free(oi);
    free(os);
    return rc;
}

int main(int argc, char **argv)
{
    long items[8] = {23000, 100000}, threads[8] = {1, 2};
    size_t n_items = 2, n_threads = 2;
    long dims = 50, K = 100, block = 0, cols = 0, repeat = 0;
    long queries = 10000, scan_queries = 2000;

    for (int a = 1; a < argc; a += 2) {
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_knn: %s needs a value\n", argv[a]);
            return 2;
        }
        if (!strcmp(argv[a], "--items"))
            n_items = parse_list(v, items, 8);
        else if (!strcmp(argv[a], "--threads"))
            n_threads = parse_list(v, threads, 8);
        else if (!strcmp(argv[a], "--dims"))
            dims = atol(v);
        else if (!strcmp(argv[a], "--k"))
            K = atol(v);
        else if (!strcmp(argv[a], "--block"))
            block = atol(v);
        else if (!strcmp(argv[a], "--cols"))
            cols = atol(v);
        else if (!strcmp(argv[a], "--repeat"))
            repeat = atol(v);
        else if (!strcmp(argv[a], "--queries"))
            queries = atol(v);
        else if (!strcmp(argv[a], "--scan-queries"))
            scan_queries = atol(v);
        else {
            fprintf(stderr, "bench_knn: unknown option %s\n", argv[a]);
            return 2;
        }
    }
    if (dims < 1 || K < 1 || block < 0 || cols < 0 || queries < 1 || scan_queries < 1) {
        fprintf(stderr, "bench_knn: bad arguments\n");
        return 2;
    }
    for (size_t t = 0; t < n_items; t++) {
        if (items[t] < 2) {
            fprintf(stderr, "bench_knn: --items must be >= 2\n");
            return 2;
        }
        int reps = repeat > 0 ? (int)repeat : items[t] < 50000 ? 3 : 1;
        if (bench_one((uint32_t)items[t], (uint32_t)dims, (uint32_t)K, threads, n_threads,
                      (uint32_t)block, (uint32_t)cols, reps, (size_t)queries,
                      (size_t)scan_queries) < 0)
            return 1;
    }
    return 0;
}
