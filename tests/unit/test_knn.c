/*
 * Unit tests for ml/knn: every precomputed list and every scan against a
 * brute-force top-k computed here (all n scores, full sort), on random
 * matrices with planted exact duplicates (ties), power-of-two multiples
 * (ties after normalisation), near-duplicates and zero rows; both tie
 * rules (index order and a rank array); block and tile sizes that do
 * not divide n; rows with more ties than the streamed selection keeps;
 * thread-count independence; the corners (n = 1, K >= n - 1, zero
 * queries, exclusions) and cancellation.
 *
 * Two oracles: "exact" recomputes knn.h's score definition from the
 * index's stored rows (double sum rounded to float) and must match
 * bit for bit; "independent" is the double-precision cosine of the raw
 * input and must match to 1e-5 with the same order wherever its scores
 * are not within 1e-6 of each other.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml/knn.h"

/* ---- data ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t x = (rng_state += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double rng_unit(void)
{
    return ((double)(rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double rng_gauss(void)
{
    return sqrt(-2.0 * log(rng_unit())) * cos(6.283185307179586 * rng_unit());
}

/* n × d Gaussian rows with row stride `stride`, and planted structure:
 * rows 10, 20, 30 identical; 41 = 2·40 and 42 = 0.5·40 (exact multiples:
 * equal after normalisation); 51 = 50 + 1e-3 noise; 60 and 61 zero. */
static float *make_matrix(uint32_t n, uint32_t d, size_t stride, uint64_t seed)
{
    float *m = calloc((size_t)n * stride, sizeof(float));
    assert_non_null(m);
    rng_state = seed;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t t = 0; t < d; t++)
            m[i * stride + t] = (float)rng_gauss();
    if (n > 61) {
        for (uint32_t t = 0; t < d; t++) {
            m[20 * stride + t] = m[30 * stride + t] = m[10 * stride + t];
            m[41 * stride + t] = 2.0f * m[40 * stride + t];
            m[42 * stride + t] = 0.5f * m[40 * stride + t];
            m[51 * stride + t] = m[50 * stride + t] + (float)(1e-3 * rng_gauss());
            m[60 * stride + t] = 0.0f;
            m[61 * stride + t] = 0.0f;
        }
    }
    return m;
}

/* rank[j] = j·7919 mod n: a permutation when gcd(7919, n) = 1. */
static uint32_t *make_rank(uint32_t n)
{
    uint32_t *r = malloc(n * sizeof(*r));
    assert_non_null(r);
    for (uint32_t j = 0; j < n; j++)
        r[j] = (uint32_t)(((uint64_t)j * 7919u) % n);
    return r;
}

/* ---- oracles ---- */

struct cand {
    float s;
    uint32_t rank;
    uint32_t j;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

/* Exact oracle: top k of qn (already normalised as the index does) over
 * the index's rows, skipping j with skip[j]; returns the count. */
static uint32_t oracle_exact(const struct knn_index *idx, const float *qn, const uint32_t *rank,
                             const unsigned char *skip, uint32_t k, uint32_t *oi, float *os)
{
    uint32_t n = knn_index_n(idx), d = knn_index_dims(idx), m = 0;
    struct cand *c = malloc(n * sizeof(*c));
    assert_non_null(c);
    for (uint32_t j = 0; j < n; j++) {
        if (skip && skip[j])
            continue;
        const float *u = knn_index_row(idx, j);
        /* knn.h's order: partial sums over t mod 4, then (s0 + s1) + (s2 + s3) */
        double s[4] = {0, 0, 0, 0};
        for (uint32_t t = 0; t < d; t++)
            s[t % 4] += (double)qn[t] * (double)u[t];
        c[m].s = (float)((s[0] + s[1]) + (s[2] + s[3]));
        c[m].rank = rank ? rank[j] : j;
        c[m].j = j;
        m++;
    }
    qsort(c, m, sizeof(*c), cmp_cand);
    uint32_t cnt = k < m ? k : m;
    for (uint32_t t = 0; t < cnt; t++) {
        oi[t] = c[t].j;
        os[t] = c[t].s;
    }
    free(c);
    return cnt;
}

static void normalise_like_index(const float *src, uint32_t d, float *dst)
{
    double ss = 0.0;
    for (uint32_t t = 0; t < d; t++)
        ss += (double)src[t] * src[t];
    double nr = sqrt(ss);
    for (uint32_t t = 0; t < d; t++)
        dst[t] = nr > 0 ? (float)(src[t] / nr) : 0.0f;
}

/* Independent oracle: double cosine of raw vectors (0 when a norm is 0). */
static double cos_raw(const float *a, const float *b, uint32_t d)
{
    double ab = 0, aa = 0, bb = 0;
    for (uint32_t t = 0; t < d; t++) {
        ab += (double)a[t] * b[t];
        aa += (double)a[t] * a[t];
        bb += (double)b[t] * b[t];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

static void check_exact(const uint32_t *gi, const float *gs, const uint32_t *oi, const float *os,
                        uint32_t cnt, const char *what, uint32_t item)
{
    for (uint32_t t = 0; t < cnt; t++) {
        if (gi[t] != oi[t] || gs[t] != os[t]) {
            print_error("%s item %u pos %u: got %u (%.9g) want %u (%.9g)\n", what, item, t, gi[t],
                        (double)gs[t], oi[t], (double)os[t]);
            fail();
        }
    }
}

/* Scores within 1e-5 of the raw double cosine; order equal except among
 * raw scores within 1e-6 (float storage cannot order those). */
static void check_independent(const float *raw, size_t stride, uint32_t d, const float *q,
                              const uint32_t *gi, const float *gs, const uint32_t *oi,
                              uint32_t cnt, uint32_t item)
{
    for (uint32_t t = 0; t < cnt; t++) {
        double got = cos_raw(q, raw + gi[t] * stride, d);
        double want = cos_raw(q, raw + oi[t] * stride, d);
        assert_true(fabs((double)gs[t] - got) < 1e-5);
        if (gi[t] != oi[t] && fabs(got - want) >= 1e-6) {
            print_error("independent item %u pos %u: got %u (%.12g) want %u (%.12g)\n", item, t,
                        gi[t], got, oi[t], want);
            fail();
        }
    }
}

/* Independent top-k by raw double cosine, ties by (rank, j). */
static uint32_t oracle_independent(const float *raw, size_t stride, uint32_t n, uint32_t d,
                                   const float *q, const uint32_t *rank,
                                   const unsigned char *skip, uint32_t k, uint32_t *oi)
{
    struct cand *c = malloc(n * sizeof(*c));
    double *s = malloc(n * sizeof(*s));
    assert_non_null(c);
    assert_non_null(s);
    uint32_t m = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (skip && skip[j])
            continue;
        s[j] = cos_raw(q, raw + j * stride, d);
        c[m].s = 0; /* sorted below by the double score */
        c[m].rank = rank ? rank[j] : j;
        c[m].j = j;
        m++;
    }
    /* insertion-free: selection by repeated max (n is small here) */
    uint32_t cnt = k < m ? k : m;
    for (uint32_t t = 0; t < cnt; t++) {
        uint32_t best = t;
        for (uint32_t u = t + 1; u < m; u++) {
            double a = s[c[u].j], b = s[c[best].j];
            if (a > b || (a == b && (c[u].rank < c[best].rank ||
                                     (c[u].rank == c[best].rank && c[u].j < c[best].j))))
                best = u;
        }
        struct cand tmp = c[t];
        c[t] = c[best];
        c[best] = tmp;
        oi[t] = c[t].j;
    }
    free(c);
    free(s);
    return cnt;
}

/* ---- helpers ---- */

static struct knn_index *build(const float *m, uint32_t n, uint32_t d, size_t stride,
                               const uint32_t *rank, uint32_t k, int threads, uint32_t block)
{
    int err = 0;
    struct knn_index *idx = knn_index_create(m, n, d, stride, rank, &err);
    assert_non_null(idx);
    struct knn_params p;
    knn_params_init(&p);
    p.k = k;
    p.threads = threads;
    p.block_rows = block;
    assert_int_equal(knn_index_precompute(idx, &p, NULL, NULL), 0);
    return idx;
}

/* Every item's neighbors(k) against both oracles. */
static void check_all_items(const struct knn_index *idx, const float *raw, size_t stride,
                            const uint32_t *rank, uint32_t k)
{
    uint32_t n = knn_index_n(idx), d = knn_index_dims(idx);
    uint32_t *gi = malloc(k * sizeof(*gi)), *oi = malloc(k * sizeof(*oi));
    uint32_t *ii = malloc(k * sizeof(*ii));
    float *gs = malloc(k * sizeof(*gs)), *os = malloc(k * sizeof(*os));
    unsigned char *skip = calloc(n, 1);
    assert_true(gi && oi && gs && os && skip && ii);
    for (uint32_t i = 0; i < n; i++) {
        int got = knn_index_neighbors(idx, i, k, gi, gs);
        skip[i] = 1;
        uint32_t want = oracle_exact(idx, knn_index_row(idx, i), rank, skip, k, oi, os);
        assert_int_equal(got, (int)want);
        check_exact(gi, gs, oi, os, want, "neighbors", i);
        uint32_t w2 = oracle_independent(raw, stride, n, d, raw + i * stride, rank, skip, k, ii);
        assert_int_equal(w2, want);
        check_independent(raw, stride, d, raw + i * stride, gi, gs, ii, want, i);
        skip[i] = 0;
    }
    free(gi);
    free(oi);
    free(ii);
    free(gs);
    free(os);
    free(skip);
}

/* ---- tests ---- */

static void test_precompute_matches_bruteforce(void **state)
{
    const uint32_t n = 500, d = 16, K = 10;
    float *m = make_matrix(n, d, d, 1);
    struct knn_index *idx = build(m, n, d, d, NULL, K, 2, 37); /* 37 does not divide 500 */
    assert_int_equal(knn_index_k(idx), K);
    check_all_items(idx, m, d, NULL, K);

    /* planted ties come out in index order */
    uint32_t gi[K];
    float gs[K];
    assert_int_equal(knn_index_neighbors(idx, 10, K, gi, gs), (int)K);
    assert_int_equal(gi[0], 20);
    assert_int_equal(gi[1], 30);
    assert_true(gs[0] == gs[1]);
    assert_int_equal(knn_index_neighbors(idx, 40, K, gi, gs), (int)K);
    assert_int_equal(gi[0], 41);
    assert_int_equal(gi[1], 42);
    assert_true(gs[0] == gs[1]);
    assert_int_equal(knn_index_neighbors(idx, 50, K, gi, gs), (int)K);
    assert_int_equal(gi[0], 51);
    knn_index_destroy(idx);
    free(m);
}

static void test_rank_tie_rule(void **state)
{
    const uint32_t n = 500, d = 16, K = 12;
    const size_t stride = 19; /* padded input rows */
    float *m = make_matrix(n, d, stride, 2);
    uint32_t *rank = make_rank(n);
    struct knn_index *idx = build(m, n, d, stride, rank, K, 2, 64);
    check_all_items(idx, m, stride, rank, K);

    /* rank(10) = 190, rank(20) = 380, rank(30) = 70: item 10's twins come
     * out as 30 then 20 */
    uint32_t gi[K];
    float gs[K];
    assert_int_equal(knn_index_neighbors(idx, 10, K, gi, gs), (int)K);
    assert_int_equal(gi[0], 30);
    assert_int_equal(gi[1], 20);
    knn_index_destroy(idx);
    free(rank);
    free(m);
}

static void test_threads_and_blocks_identical(void **state)
{
    const uint32_t n = 500, d = 16, K = 25;
    float *m = make_matrix(n, d, d, 3);
    struct knn_index *a = build(m, n, d, d, NULL, K, 1, 0);
    const uint32_t blocks[] = {1, 7, 37, 128, 500, 1000};
    uint32_t ia[25], ib[25];
    float sa[25], sb[25];
    for (size_t bl = 0; bl < sizeof(blocks) / sizeof(blocks[0]); bl++)
        for (int th = 1; th <= 2; th++) {
            struct knn_index *b = build(m, n, d, d, NULL, K, th, blocks[bl]);
            for (uint32_t i = 0; i < n; i++) {
                assert_int_equal(knn_index_neighbors(a, i, K, ia, sa), (int)K);
                assert_int_equal(knn_index_neighbors(b, i, K, ib, sb), (int)K);
                assert_memory_equal(ia, ib, sizeof(ia));
                assert_memory_equal(sa, sb, sizeof(sa));
            }
            knn_index_destroy(b);
        }
    knn_index_destroy(a);
    free(m);
}

/* The precompute walks rows in blocks and columns in tiles, keeping per
 * row only the scores near its running k-th best (ml/knn_stream.c); a row
 * with too many near-ties falls back to a whole-row selection. Every
 * tiling and thread count must give the brute-force lists bit for bit,
 * and the same lists as the whole-row scan the queries use (neighbors
 * with k > K): n = 1001 is a multiple of no block or tile size tried;
 * d = 13 leaves a partial group of four in the exact score; 300 copies of
 * one row overflow their streams (K = 20 keeps at most 3·20 + 16); 6
 * copies of another and 3 zero rows tie without overflowing. */
static void test_precompute_tiles_ties_threads(void **state)
{
    const uint32_t n = 1001, d = 13, K = 20;
    float *m = make_matrix(n, d, d, 11);
    for (uint32_t i = 101; i < 400; i++)
        memcpy(m + (size_t)i * d, m + 100 * (size_t)d, d * sizeof(float));
    for (uint32_t i = 501; i < 506; i++)
        memcpy(m + (size_t)i * d, m + 500 * (size_t)d, d * sizeof(float));
    memset(m + 700 * (size_t)d, 0, 3 * d * sizeof(float));
    uint32_t *rank = make_rank(n);
    const struct {
        uint32_t rows, cols;
        int threads;
    } cfg[] = {{0, 0, 1},     {0, 0, 2},   {0, 0, 3},    {1, 1, 2},   {7, 13, 3},
               {64, 1001, 2}, {33, 17, 1}, {1001, 5, 2}, {2, 2000, 3}};
    uint32_t li[K + 1], si[K + 1];
    float ls[K + 1], ss[K + 1];
    for (int use_rank = 0; use_rank < 2; use_rank++) {
        const uint32_t *rk = use_rank ? rank : NULL;
        for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
            int err = 0;
            struct knn_index *idx = knn_index_create(m, n, d, d, rk, &err);
            assert_non_null(idx);
            struct knn_params p;
            knn_params_init(&p);
            p.k = K;
            p.threads = cfg[c].threads;
            p.block_rows = cfg[c].rows;
            p.block_cols = cfg[c].cols;
            assert_int_equal(knn_index_precompute(idx, &p, NULL, NULL), 0);
            check_all_items(idx, m, d, rk, K);
            for (uint32_t i = 0; i < n; i++) {
                assert_int_equal(knn_index_neighbors(idx, i, K, li, ls), (int)K);
                assert_int_equal(knn_index_neighbors(idx, i, K + 1, si, ss), (int)K + 1);
                check_exact(li, ls, si, ss, K, "list vs scan", i);
            }
            /* the 299 twins of item 100 come first, in tie order */
            assert_int_equal(knn_index_neighbors(idx, 100, K, li, ls), (int)K);
            assert_true(ls[0] == ls[K - 1]);
            if (!use_rank)
                for (uint32_t t = 0; t < K; t++)
                    assert_int_equal(li[t], 101 + t);
            knn_index_destroy(idx);
        }
    }
    free(rank);
    free(m);
}

/* The serving default K = 100 at d = 50 (the buffer then takes its
 * sampled compactions from 64 entries, which K = 20 above does not reach):
 * every list against the whole-row scan, and a sample of rows against the
 * brute-force oracle. 40 copies of one row tie without overflowing; 200
 * copies of another overflow. */
static void test_precompute_default_k(void **state)
{
    const uint32_t n = 3001, d = 50, K = 100;
    float *m = make_matrix(n, d, d, 12);
    for (uint32_t i = 1001; i < 1040; i++)
        memcpy(m + (size_t)i * d, m + 1000 * (size_t)d, d * sizeof(float));
    for (uint32_t i = 2001; i < 2200; i++)
        memcpy(m + (size_t)i * d, m + 2000 * (size_t)d, d * sizeof(float));
    const uint32_t tiles[][2] = {{0, 0}, {77, 333}};
    uint32_t *li = malloc((K + 1) * sizeof(*li)), *si = malloc((K + 1) * sizeof(*si));
    uint32_t *oi = malloc(K * sizeof(*oi));
    float *ls = malloc((K + 1) * sizeof(*ls)), *ss = malloc((K + 1) * sizeof(*ss));
    float *os = malloc(K * sizeof(*os));
    unsigned char *skip = calloc(n, 1);
    assert_true(li && si && oi && ls && ss && os && skip);
    for (size_t t = 0; t < 2; t++) {
        int err = 0;
        struct knn_index *idx = knn_index_create(m, n, d, d, NULL, &err);
        assert_non_null(idx);
        struct knn_params p;
        knn_params_init(&p);
        p.k = K;
        p.block_rows = tiles[t][0];
        p.block_cols = tiles[t][1];
        assert_int_equal(knn_index_precompute(idx, &p, NULL, NULL), 0);
        for (uint32_t i = 0; i < n; i++) {
            assert_int_equal(knn_index_neighbors(idx, i, K, li, ls), (int)K);
            assert_int_equal(knn_index_neighbors(idx, i, K + 1, si, ss), (int)K + 1);
            check_exact(li, ls, si, ss, K, "K = 100 list vs scan", i);
            if (i % 97 == 0 || i == 1000 || i == 2000) {
                skip[i] = 1;
                assert_int_equal(oracle_exact(idx, knn_index_row(idx, i), NULL, skip, K, oi, os),
                                 K);
                check_exact(li, ls, oi, os, K, "K = 100 list vs brute force", i);
                skip[i] = 0;
            }
        }
        knn_index_destroy(idx);
    }
    free(li);
    free(si);
    free(oi);
    free(ls);
    free(ss);
    free(os);
    free(skip);
    free(m);
}

static void test_scan_fallback(void **state)
{
    const uint32_t n = 500, d = 16, K = 10, k = 60;
    float *m = make_matrix(n, d, d, 4);
    uint32_t *rank = make_rank(n);
    struct knn_index *idx = build(m, n, d, d, rank, K, 2, 0);
    check_all_items(idx, m, d, rank, k); /* k > K: every call scans */

    /* the scan's first K equal the lookup */
    uint32_t li[10], si[60];
    float ls[10], ss[60];
    for (uint32_t i = 0; i < n; i += 7) {
        assert_int_equal(knn_index_neighbors(idx, i, K, li, ls), (int)K);
        assert_int_equal(knn_index_neighbors(idx, i, k, si, ss), (int)k);
        assert_memory_equal(li, si, sizeof(li));
        assert_memory_equal(ls, ss, sizeof(ls));
    }
    /* no lists at all: scans too, same answers */
    int err = 0;
    struct knn_index *raw = knn_index_create(m, n, d, d, rank, &err);
    assert_non_null(raw);
    assert_int_equal(knn_index_k(raw), 0);
    check_all_items(raw, m, d, rank, K);
    knn_index_destroy(raw);
    knn_index_destroy(idx);
    free(rank);
    free(m);
}

static void test_query_vector(void **state)
{
    const uint32_t n = 500, d = 16, k = 30;
    float *m = make_matrix(n, d, d, 5);
    struct knn_index *idx = build(m, n, d, d, NULL, 10, 1, 0);
    uint32_t gi[30], oi[30], ii[30];
    float gs[30], os[30], q[16], qn[16];
    unsigned char skip[500];

    rng_state = 99;
    for (int rep = 0; rep < 50; rep++) {
        for (uint32_t t = 0; t < d; t++)
            q[t] = (float)(3.0 * rng_gauss()); /* unnormalised */
        /* unsorted exclusions with a duplicate, including the best item */
        uint32_t ex[6];
        memset(skip, 0, sizeof(skip));
        normalise_like_index(q, d, qn);
        uint32_t best[1];
        float bs[1];
        assert_int_equal(oracle_exact(idx, qn, NULL, NULL, 1, best, bs), 1);
        ex[0] = best[0];
        for (int e = 1; e < 5; e++)
            ex[e] = (uint32_t)(rng_next() % n);
        ex[5] = ex[2];
        size_t n_ex = rep % 2 ? 6 : 0;
        for (size_t e = 0; e < n_ex; e++)
            skip[ex[e]] = 1;

        int got = knn_index_query_vector(idx, q, k, ex, n_ex, gi, gs);
        uint32_t want = oracle_exact(idx, qn, NULL, skip, k, oi, os);
        assert_int_equal(got, (int)want);
        check_exact(gi, gs, oi, os, want, "query", (uint32_t)rep);
        oracle_independent(m, d, n, d, q, NULL, skip, k, ii);
        check_independent(m, d, d, q, gi, gs, ii, want, (uint32_t)rep);
        for (size_t e = 0; e < n_ex; e++)
            for (uint32_t t = 0; t < want; t++)
                assert_int_not_equal(gi[t], ex[e]);
        /* out_score may be NULL */
        uint32_t gi2[30];
        assert_int_equal(knn_index_query_vector(idx, q, k, ex, n_ex, gi2, NULL), got);
        assert_memory_equal(gi, gi2, want * sizeof(uint32_t));
    }

    /* a raw row with itself excluded is exactly neighbors(i) */
    for (uint32_t i = 0; i < n; i += 11) {
        assert_int_equal(knn_index_query_vector(idx, m + i * d, k, &i, 1, gi, gs), (int)k);
        assert_int_equal(knn_index_neighbors(idx, i, k, oi, os), (int)k);
        assert_memory_equal(gi, oi, sizeof(gi));
        assert_memory_equal(gs, os, sizeof(gs));
    }

    /* excluding everything leaves nothing; excluding all but 3 leaves 3 */
    uint32_t *all = malloc(n * sizeof(*all));
    for (uint32_t j = 0; j < n; j++)
        all[j] = j;
    assert_int_equal(knn_index_query_vector(idx, q, k, all, n, gi, gs), 0);
    assert_int_equal(knn_index_query_vector(idx, q, k, all + 3, n - 3, gi, gs), 3);
    assert_int_equal(gi[0] + gi[1] + gi[2], 0 + 1 + 2);
    free(all);

    /* errors */
    uint32_t bad = n;
    assert_int_equal(knn_index_query_vector(idx, q, k, &bad, 1, gi, gs), -EINVAL);
    q[3] = NAN;
    assert_int_equal(knn_index_query_vector(idx, q, k, NULL, 0, gi, gs), -EINVAL);
    assert_int_equal(knn_index_query_vector(idx, NULL, k, NULL, 0, gi, gs), -EINVAL);
    assert_int_equal(knn_index_query_vector(idx, q, 0, NULL, 0, gi, gs), -EINVAL);
    q[3] = 1.0f;
    assert_int_equal(knn_index_query_vector(idx, q, 0, NULL, 0, gi, gs), 0);
    knn_index_destroy(idx);
    free(m);
}

static void test_recommend(void **state)
{
    const uint32_t n = 500, d = 16, k = 20;
    float *m = make_matrix(n, d, d, 6);
    uint32_t *rank = make_rank(n);
    struct knn_index *idx = build(m, n, d, d, rank, 10, 2, 0);
    const uint32_t items[] = {3, 77, 200, 3}; /* 3 twice: counts twice */
    const uint32_t ex[] = {400, 5, 400};
    float sum[16], qn[16];
    uint32_t gi[20], oi[20];
    float gs[20], os[20];
    unsigned char skip[500] = {0};

    assert_int_equal(knn_index_sum_normalised(idx, items, 4, sum), 0);
    for (uint32_t t = 0; t < d; t++) {
        double s = 0;
        for (int a = 0; a < 4; a++)
            s += knn_index_row(idx, items[a])[t];
        assert_true(sum[t] == (float)s);
    }
    skip[3] = skip[77] = skip[200] = skip[400] = skip[5] = 1;
    normalise_like_index(sum, d, qn);
    uint32_t want = oracle_exact(idx, qn, rank, skip, k, oi, os);
    assert_int_equal(knn_index_recommend(idx, items, 4, ex, 3, k, gi, gs), (int)want);
    check_exact(gi, gs, oi, os, want, "recommend", 0);

    /* same as the two-step path */
    const uint32_t both[] = {3, 77, 200, 400, 5};
    uint32_t gi2[20];
    float gs2[20];
    assert_int_equal(knn_index_query_vector(idx, sum, k, both, 5, gi2, gs2), (int)want);
    assert_memory_equal(gi, gi2, sizeof(gi));
    assert_memory_equal(gs, gs2, sizeof(gs));

    /* no items: zero query, every score 0, order by rank */
    assert_int_equal(knn_index_sum_normalised(idx, NULL, 0, sum), 0);
    for (uint32_t t = 0; t < d; t++)
        assert_true(sum[t] == 0.0f);
    assert_int_equal(knn_index_recommend(idx, NULL, 0, NULL, 0, k, gi, gs), (int)k);
    for (uint32_t t = 0; t < k; t++) {
        assert_true(gs[t] == 0.0f);
        assert_int_equal(rank[gi[t]], t); /* rank is a permutation of 0..n-1 */
    }
    uint32_t bad = n;
    assert_int_equal(knn_index_sum_normalised(idx, &bad, 1, sum), -EINVAL);
    assert_int_equal(knn_index_recommend(idx, &bad, 1, NULL, 0, k, gi, gs), -EINVAL);
    knn_index_destroy(idx);
    free(rank);
    free(m);
}

static void test_zero_rows(void **state)
{
    const uint32_t n = 500, d = 16, K = 15;
    float *m = make_matrix(n, d, d, 7);
    struct knn_index *idx = build(m, n, d, d, NULL, K, 2, 50);
    uint32_t gi[40];
    float gs[40];

    /* a zero row scores 0 with everything: its list is the first K items
     * in tie order (index order here), itself skipped */
    for (uint32_t t = 0; t < d; t++)
        assert_true(knn_index_row(idx, 60)[t] == 0.0f);
    assert_int_equal(knn_index_neighbors(idx, 60, K, gi, gs), (int)K);
    for (uint32_t t = 0; t < K; t++) {
        assert_int_equal(gi[t], t);
        assert_true(gs[t] == 0.0f && !signbit(gs[t]));
    }
    assert_true(knn_index_score(idx, 60, 61) == 0.0f);
    assert_true(knn_index_score(idx, 5, 61) == 0.0f);
    assert_true(isnan(knn_index_score(idx, 5, n)));
    /* the all-zero matrix */
    float *z = calloc((size_t)n * d, sizeof(float));
    struct knn_index *zi = build(z, n, d, d, NULL, K, 2, 0);
    assert_int_equal(knn_index_neighbors(zi, 0, K, gi, gs), (int)K);
    for (uint32_t t = 0; t < K; t++)
        assert_int_equal(gi[t], t + 1);
    assert_int_equal(knn_index_neighbors(zi, 499, 40, gi, NULL), 40); /* scan path */
    for (uint32_t t = 0; t < 40; t++)
        assert_int_equal(gi[t], t);
    knn_index_destroy(zi);
    free(z);
    check_all_items(idx, m, d, NULL, K);
    knn_index_destroy(idx);
    free(m);
}

static void test_single_item(void **state)
{
    float v[3] = {1, 2, 3};
    uint32_t gi[4];
    float gs[4];
    struct knn_index *idx = build(v, 1, 3, 3, NULL, 10, 2, 0);
    assert_int_equal(knn_index_k(idx), 0);
    assert_int_equal(knn_index_neighbors(idx, 0, 4, gi, gs), 0);
    assert_int_equal(knn_index_neighbors(idx, 1, 4, gi, gs), -EINVAL);
    assert_int_equal(knn_index_query_vector(idx, v, 4, NULL, 0, gi, gs), 1);
    assert_int_equal(gi[0], 0);
    assert_float_equal(gs[0], 1.0, 1e-6);
    uint32_t self = 0;
    assert_int_equal(knn_index_query_vector(idx, v, 4, &self, 1, gi, gs), 0);
    knn_index_destroy(idx);
}

static void test_k_at_least_n_minus_1(void **state)
{
    const uint32_t n = 20, d = 4;
    float *m = make_matrix(n, d, d, 8);
    uint32_t *rank = make_rank(n);
    const uint32_t ks[] = {18, 19, 51};
    for (size_t a = 0; a < 3; a++) {
        const uint32_t K = ks[a];
        struct knn_index *idx = build(m, n, d, d, rank, K, 2, 3);
        assert_int_equal(knn_index_k(idx), K < n - 1 ? K : n - 1);
        check_all_items(idx, m, d, rank, 100); /* k > n - 1: all others */
        check_all_items(idx, m, d, rank, K);
        knn_index_destroy(idx);
    }
    free(rank);
    free(m);
}

struct cancel_state {
    int calls;
    int cancel_at;
    double last;
};

static int progress_cb(void *ud, const struct knn_progress *p)
{
    struct cancel_state *s = ud;
    assert_true(p->fraction >= s->last && p->fraction <= 1.0);
    assert_int_equal(p->rows_total, 500);
    s->last = p->fraction;
    return ++s->calls >= s->cancel_at;
}

static void test_cancel_and_progress(void **state)
{
    const uint32_t n = 500, d = 16;
    float *m = make_matrix(n, d, d, 9);
    int err = 0;
    struct knn_index *idx = knn_index_create(m, n, d, d, NULL, &err);
    assert_non_null(idx);
    struct knn_params p;
    knn_params_init(&p);
    p.k = 10;

    struct cancel_state cs = {.cancel_at = 1};
    assert_int_equal(knn_index_precompute(idx, &p, progress_cb, &cs), -ECANCELED);
    assert_int_equal(knn_index_k(idx), 0);

    cs = (struct cancel_state){.cancel_at = 1000000};
    assert_int_equal(knn_index_precompute(idx, &p, progress_cb, &cs), 0);
    assert_true(cs.calls >= 2);
    assert_true(cs.last == 1.0);
    assert_int_equal(knn_index_k(idx), 10);

    /* a cancelled recompute keeps the previous lists */
    size_t bytes = knn_index_bytes(idx);
    p.k = 20;
    cs = (struct cancel_state){.cancel_at = 1};
    assert_int_equal(knn_index_precompute(idx, &p, progress_cb, &cs), -ECANCELED);
    assert_int_equal(knn_index_k(idx), 10);
    assert_int_equal(knn_index_bytes(idx), bytes);
    check_all_items(idx, m, d, NULL, 10);
    knn_index_destroy(idx);
    free(m);
}

static void test_errors_and_bytes(void **state)
{
    float v[8] = {1, 0, 0, 1, 1, 1, 0, 0};
    int err = 0;
    assert_null(knn_index_create(NULL, 2, 4, 4, NULL, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(knn_index_create(v, 0, 4, 4, NULL, &err));
    assert_null(knn_index_create(v, 2, 0, 4, NULL, &err));
    assert_null(knn_index_create(v, 2, 4, 3, NULL, &err));
    assert_null(knn_index_create(v, 2, 4, 3, NULL, NULL));
    v[5] = INFINITY;
    err = 0;
    assert_null(knn_index_create(v, 2, 4, 4, NULL, &err));
    assert_int_equal(err, -EINVAL);
    v[5] = 1;

    struct knn_index *idx = knn_index_create(v, 2, 4, 4, NULL, &err);
    assert_non_null(idx);
    assert_int_equal(knn_index_bytes(idx), knn_index_bytes(idx)); /* stable */
    size_t before = knn_index_bytes(idx);
    assert_true(before >= 2 * 4 * sizeof(float));
    struct knn_params p;
    knn_params_init(&p);
    assert_int_equal(p.k, KNN_DEFAULT_K);
    p.k = 0;
    assert_int_equal(knn_index_precompute(idx, &p, NULL, NULL), -EINVAL);
    p.k = 5;
    p.threads = 0;
    assert_int_equal(knn_index_precompute(idx, &p, NULL, NULL), -EINVAL);
    p.threads = KNN_MAX_THREADS + 1;
    assert_int_equal(knn_index_precompute(idx, &p, NULL, NULL), -EINVAL);
    p.threads = 2;
    assert_int_equal(knn_index_precompute(NULL, &p, NULL, NULL), -EINVAL);
    assert_int_equal(knn_index_precompute(idx, &p, NULL, NULL), 0);
    assert_int_equal(knn_index_k(idx), 1);
    assert_int_equal(knn_index_bytes(idx), before + 2 * 1 * 8);
    uint32_t gi[5];
    assert_int_equal(knn_index_neighbors(idx, 0, 5, gi, NULL), 1);
    assert_int_equal(gi[0], 1);
    assert_int_equal(knn_index_neighbors(NULL, 0, 5, gi, NULL), -EINVAL);
    assert_int_equal(knn_index_neighbors(idx, 0, 5, NULL, NULL), -EINVAL);
    assert_int_equal(knn_index_neighbors(idx, 0, 0, gi, NULL), 0);
    assert_null(knn_index_row(idx, 2));
    assert_int_equal(knn_index_bytes(NULL), 0);
    knn_index_destroy(idx);
    knn_index_destroy(NULL);
}

/* Concurrent readers get the same answers as a single reader. */
struct reader {
    const struct knn_index *idx;
    uint32_t *out; /* n × 40 */
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    uint32_t n = knn_index_n(r->idx);
    for (uint32_t i = 0; i < n; i++)
        if (knn_index_neighbors(r->idx, i, i % 2 ? 40 : 10, r->out + i * 40, NULL) < 0)
            return arg;
    return NULL;
}

static void test_concurrent_queries(void **state)
{
    const uint32_t n = 300, d = 8;
    float *m = make_matrix(n, d, d, 10);
    struct knn_index *idx = build(m, n, d, d, NULL, 20, 2, 0);
    struct reader r[3];
    pthread_t th[3];
    for (int t = 0; t < 3; t++) {
        r[t].idx = idx;
        r[t].out = calloc((size_t)n * 40, sizeof(uint32_t));
        assert_non_null(r[t].out);
    }
    for (int t = 1; t < 3; t++)
        assert_int_equal(pthread_create(&th[t], NULL, reader_main, &r[t]), 0);
    assert_null(reader_main(&r[0]));
    for (int t = 1; t < 3; t++) {
        void *ret;
        pthread_join(th[t], &ret);
        assert_null(ret);
        assert_memory_equal(r[0].out, r[t].out, (size_t)n * 40 * sizeof(uint32_t));
    }
    for (int t = 0; t < 3; t++)
        free(r[t].out);
    knn_index_destroy(idx);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precompute_matches_bruteforce),
        cmocka_unit_test(test_rank_tie_rule),
        cmocka_unit_test(test_threads_and_blocks_identical),
        cmocka_unit_test(test_precompute_tiles_ties_threads),
        cmocka_unit_test(test_precompute_default_k),
        cmocka_unit_test(test_scan_fallback),
        cmocka_unit_test(test_query_vector),
        cmocka_unit_test(test_recommend),
        cmocka_unit_test(test_zero_rows),
        cmocka_unit_test(test_single_item),
        cmocka_unit_test(test_k_at_least_n_minus_1),
        cmocka_unit_test(test_cancel_and_progress),
        cmocka_unit_test(test_errors_and_bytes),
        cmocka_unit_test(test_concurrent_queries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
