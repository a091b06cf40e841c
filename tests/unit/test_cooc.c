/*
 * Unit tests for ml/cooc.c: known answers worked out by hand from the
 * seed's sp_ComputePMI, the filters' exact boundaries, the corners of the
 * SQL (recomputed frequencies, empty results), a brute-force cross-check
 * on random inputs, thread-count independence and cancellation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml/cooc.h"

/* Groups parsed from a spec such as "1 2 3 | 1 2 | | 4": '|' separates
 * groups, items are decimal keys (sorted and made unique here). */
struct tgroups {
    struct cooc_groups g;
    uint64_t *offsets;
    uint32_t *items;
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void tg_finish_group(struct tgroups *t, size_t *n_items, size_t start)
{
    qsort(t->items + start, *n_items - start, sizeof(uint32_t), cmp_u32);
    size_t w = start;
    for (size_t k = start; k < *n_items; k++)
        if (w == start || t->items[k] != t->items[w - 1])
            t->items[w++] = t->items[k];
    *n_items = w;
    t->offsets[++t->g.n_groups] = *n_items;
}

static void tg_parse(struct tgroups *t, const char *spec)
{
    size_t len = strlen(spec);
    memset(t, 0, sizeof(*t));
    t->offsets = calloc(len + 2, sizeof(*t->offsets));
    t->items = calloc(len + 1, sizeof(*t->items));
    assert_non_null(t->offsets);
    assert_non_null(t->items);
    size_t n_items = 0, start = 0;
    const char *p = spec;
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p == '|' || *p == '\0') {
            tg_finish_group(t, &n_items, start);
            start = n_items;
            if (*p == '\0')
                break;
            p++;
            continue;
        }
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        assert_true(end != p);
        t->items[n_items++] = (uint32_t)v;
        if (v > t->g.max_item_key)
            t->g.max_item_key = (uint32_t)v;
        p = end;
    }
    t->g.offsets = t->offsets;
    t->g.items = t->items;
}

static void tg_deinit(struct tgroups *t)
{
    free(t->offsets);
    free(t->items);
}

static struct cooc_params params_of(int64_t min_freq, int64_t max_size, int threads)
{
    struct cooc_params p;
    cooc_params_init(&p);
    p.min_item_frequency = min_freq;
    p.max_group_size = max_size;
    p.threads = threads;
    return p;
}

static int compute(const char *spec, int64_t min_freq, int64_t max_size, struct cooc_result *r)
{
    struct tgroups t;
    tg_parse(&t, spec);
    struct cooc_params p = params_of(min_freq, max_size, 2);
    int rc = cooc_compute(&t.g, &p, NULL, NULL, r);
    tg_deinit(&t);
    return rc;
}

static int64_t dense_of(const struct cooc_result *r, uint32_t key)
{
    for (uint32_t d = 0; d < r->n; d++)
        if (r->keys[d] == key)
            return d;
    return -1;
}

/* cooc of (key1, key2) in the result, 0 when absent; idx gets the slot. */
static uint32_t cooc_of(const struct cooc_result *r, uint32_t key1, uint32_t key2, uint64_t *idx)
{
    int64_t a = dense_of(r, key1), b = dense_of(r, key2);
    if (a < 0 || b < 0)
        return 0;
    for (uint64_t k = r->row_ptr[a]; k < r->row_ptr[a + 1]; k++)
        if (r->col[k] == (uint32_t)b) {
            if (idx)
                *idx = k;
            return r->cooc[k];
        }
    return 0;
}

/* Invariants every result must satisfy (cooc_result's contract). */
static void check_invariants(const struct cooc_result *r)
{
    assert_non_null(r->row_ptr);
    assert_int_equal(r->row_ptr[0], 0);
    assert_int_equal(r->row_ptr[r->n], r->nnz);
    uint64_t total = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        if (i)
            assert_true(r->keys[i] > r->keys[i - 1]);
        total += r->freq[i];
        int diag = 0;
        for (uint64_t k = r->row_ptr[i]; k < r->row_ptr[i + 1]; k++) {
            uint32_t j = r->col[k];
            assert_true(j < r->n);
            if (k > r->row_ptr[i])
                assert_true(j > r->col[k - 1]);
            assert_true(r->cooc[k] > 0);
            assert_true(r->cooc[k] <= r->freq[i] && r->cooc[k] <= r->freq[j]);
            if (j == i) {
                diag = 1;
                assert_int_equal(r->cooc[k], r->freq[i]); /* diagonal = frequency */
            }
            /* symmetry: (j, i) holds the same count */
            int found = 0;
            for (uint64_t m = r->row_ptr[j]; m < r->row_ptr[j + 1]; m++)
                if (r->col[m] == i) {
                    assert_int_equal(r->cooc[m], r->cooc[k]);
                    found = 1;
                }
            assert_true(found);
        }
        assert_true(diag);
    }
    assert_int_equal(total, r->total);
    assert_int_equal((r->nnz - r->n) % 2, 0);
}

/* Groups {1,2,3} {1,2} {2,3} {} {1,2,3} {4}, min 1: every hand value. */
static void test_hand_small(void **state)
{
    (void)state;
    struct cooc_result r;
    assert_int_equal(compute("1 2 3 | 1 2 | 2 3 | | 3 2 1 | 4", 1, 100, &r), 0);
    check_invariants(&r);
    assert_int_equal(r.valid_items, 4);  /* 1, 2, 3, 4 all in >= 1 group */
    assert_int_equal(r.valid_groups, 4); /* {} and {4} have < 2 valid items */
    assert_int_equal(r.total, 10);       /* 3 + 2 + 2 + 3 */
    assert_int_equal(r.n, 3);            /* item 4 is in no valid group */
    assert_int_equal(r.nnz, 9);          /* 3 pairs mirrored + 3 diagonal */
    assert_int_equal(cooc_result_pairs(&r), 3);
    assert_int_equal(r.keys[0], 1);
    assert_int_equal(r.keys[2], 3);
    assert_int_equal(r.freq[0], 3);
    assert_int_equal(r.freq[1], 4);
    assert_int_equal(r.freq[2], 3);
    assert_int_equal(cooc_of(&r, 1, 2, NULL), 3);
    assert_int_equal(cooc_of(&r, 2, 1, NULL), 3);
    assert_int_equal(cooc_of(&r, 1, 3, NULL), 2);
    assert_int_equal(cooc_of(&r, 2, 3, NULL), 3);
    assert_int_equal(cooc_of(&r, 2, 2, NULL), 4);
    assert_int_equal(cooc_of(&r, 1, 4, NULL), 0);

    /* pmi = log2(cooc) - log2(f1) - log2(f2) + log2(total) = log2(cooc·total / (f1·f2)) */
    uint64_t k;
    cooc_of(&r, 1, 2, &k);
    assert_float_equal(cooc_pmi(&r, 0, k), log2(3.0 * 10 / (3 * 4)), 1e-12);
    assert_float_equal(cooc_score(&r, 0, k), 3 * log2(2.5), 1e-12);
    cooc_of(&r, 1, 3, &k);
    assert_float_equal(cooc_pmi(&r, 0, k), log2(2.0 * 10 / (3 * 3)), 1e-12);
    cooc_of(&r, 1, 1, &k);
    assert_float_equal(cooc_pmi(&r, 0, k), log2(10.0 / 3), 1e-12);
    cooc_of(&r, 2, 2, &k);
    assert_float_equal(cooc_pmi(&r, 1, k), log2(10.0 / 4), 1e-12);
    /* exactly the seed's left-to-right evaluation */
    cooc_of(&r, 3, 2, &k);
    assert_true(cooc_pmi(&r, 2, k) == log2(3.0) - log2(3.0) - log2(4.0) + log2(10.0));
    cooc_result_deinit(&r);
    cooc_result_deinit(&r); /* a zeroed result is a no-op */
}

/* HAVING group_size BETWEEN 2 AND max_group_size, inclusive at both ends. */
static void test_group_size_bounds(void **state)
{
    (void)state;
    struct cooc_result r;
    /* sizes 1, 2, 3 (= max), 4 (= max + 1) */
    assert_int_equal(compute("1 | 2 3 | 4 5 6 | 7 8 9 10", 1, 3, &r), 0);
    check_invariants(&r);
    assert_int_equal(r.valid_items, 10);
    assert_int_equal(r.valid_groups, 2);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.keys[0], 2);
    assert_int_equal(r.keys[4], 6);
    assert_int_equal(r.total, 5);
    assert_int_equal(r.nnz, 5 + 2 * (1 + 3));
    cooc_result_deinit(&r);

    /* The size counts valid items only: {1 2 3 9} has 3 valid items (9 is
     * in one group, below min 2) and is kept with max 3, without item 9. */
    assert_int_equal(compute("1 2 3 9 | 1 2 3 | 8 7 | 8 6", 2, 3, &r), 0);
    check_invariants(&r);
    assert_int_equal(r.valid_items, 4); /* 1 2 3 8 */
    assert_int_equal(r.valid_groups, 2);
    assert_int_equal(r.n, 3);
    assert_int_equal(dense_of(&r, 9), -1);
    assert_int_equal(dense_of(&r, 8), -1); /* in {8 7} and {8 6}: 1 valid item each */
    assert_int_equal(cooc_of(&r, 1, 3, NULL), 2);
    cooc_result_deinit(&r);

    /* max_group_size below 2 keeps nothing. */
    assert_int_equal(compute("1 2 | 1 2", 1, 1, &r), 0);
    assert_int_equal(r.valid_groups, 0);
    assert_int_equal(r.n, 0);
    cooc_result_deinit(&r);
}

/* An item valid over all groups whose groups mostly get dropped ends with a
 * recomputed frequency below min_item_frequency and stays, as in the SQL
 * (item_frequency is recounted on valid_item_groups, not filtered again). */
static void test_recomputed_frequency(void **state)
{
    (void)state;
    struct cooc_result r;
    /* freq over all groups: 1:3 2:5 3:4 4:4; the two 4-item groups exceed max 3. */
    assert_int_equal(compute("1 2 | 1 2 3 4 | 1 2 3 4 | 2 3 | 3 4 | 2 4", 3, 3, &r), 0);
    check_invariants(&r);
    assert_int_equal(r.valid_items, 4);
    assert_int_equal(r.valid_groups, 4);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.freq[0], 1); /* item 1: below the minimum of 3, kept */
    assert_int_equal(r.freq[1], 3);
    assert_int_equal(r.freq[2], 2);
    assert_int_equal(r.freq[3], 2);
    assert_int_equal(r.total, 8);
    assert_int_equal(r.nnz, 4 + 2 * 4);
    assert_int_equal(cooc_of(&r, 1, 2, NULL), 1);
    assert_int_equal(cooc_of(&r, 1, 3, NULL), 0);
    uint64_t k;
    cooc_of(&r, 1, 2, &k);
    assert_float_equal(cooc_pmi(&r, 0, k), log2(1.0 * 8 / (1 * 3)), 1e-12);
    cooc_result_deinit(&r);
}

static void test_empty_input(void **state)
{
    (void)state;
    struct cooc_result r;
    struct cooc_groups g = {0};
    struct cooc_params p = params_of(15, 100, 2);
    assert_int_equal(cooc_compute(&g, &p, NULL, NULL, &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.nnz, 0);
    assert_int_equal(r.total, 0);
    assert_int_equal(r.valid_items, 0);
    assert_int_equal(r.valid_groups, 0);
    assert_non_null(r.row_ptr);
    assert_int_equal(r.row_ptr[0], 0);
    cooc_result_deinit(&r);

    /* groups that are all empty */
    assert_int_equal(compute(" | | ", 1, 100, &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.nnz, 0);
    cooc_result_deinit(&r);
}

static void test_all_filtered(void **state)
{
    (void)state;
    struct cooc_result r;
    /* no item reaches the minimum */
    assert_int_equal(compute("1 2 3 | 1 2 | 2 3", 15, 100, &r), 0);
    check_invariants(&r);
    assert_int_equal(r.valid_items, 0);
    assert_int_equal(r.valid_groups, 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.nnz, 0);
    assert_int_equal(r.total, 0);
    cooc_result_deinit(&r);
    /* items valid, but every group has a single valid item */
    assert_int_equal(compute("1 | 1 | 2 | 2", 2, 100, &r), 0);
    check_invariants(&r);
    assert_int_equal(r.valid_items, 2);
    assert_int_equal(r.valid_groups, 0);
    assert_int_equal(r.n, 0);
    cooc_result_deinit(&r);
    /* min_item_frequency <= 1 keeps every present item (keys never seen are not items) */
    assert_int_equal(compute("1 5 | 9", -7, 100, &r), 0);
    assert_int_equal(r.valid_items, 3);
    assert_int_equal(r.n, 2);
    cooc_result_deinit(&r);
}

static char *giant_spec(uint32_t size)
{
    char *s = malloc((size_t)size * 8 + 1), *p = s;
    for (uint32_t i = 1; i <= size; i++)
        p += sprintf(p, "%u ", i);
    *p = '\0';
    return s;
}

/* One group over max_group_size is dropped; exactly max is kept. */
static void test_giant_group(void **state)
{
    (void)state;
    struct cooc_result r;
    char *spec = giant_spec(101);
    assert_int_equal(compute(spec, 1, 100, &r), 0);
    assert_int_equal(r.valid_items, 101);
    assert_int_equal(r.valid_groups, 0);
    assert_int_equal(r.n, 0);
    cooc_result_deinit(&r);
    free(spec);

    spec = giant_spec(100);
    assert_int_equal(compute(spec, 1, 100, &r), 0);
    check_invariants(&r);
    assert_int_equal(r.valid_groups, 1);
    assert_int_equal(r.n, 100);
    assert_int_equal(r.total, 100);
    assert_int_equal(r.nnz, 100 * 100); /* a clique with its diagonal */
    for (uint64_t k = 0; k < r.nnz; k++)
        assert_int_equal(r.cooc[k], 1);
    /* log2(1) - log2(1) - log2(1) + log2(100) */
    assert_float_equal(cooc_pmi(&r, 7, r.row_ptr[7] + 3), log2(100.0), 1e-12);
    cooc_result_deinit(&r);
    free(spec);

    /* a large clique across chunk and bitmap-word boundaries (> 4096 items) */
    spec = giant_spec(4100);
    assert_int_equal(compute(spec, 1, 4100, &r), 0);
    assert_int_equal(r.n, 4100);
    assert_int_equal(r.nnz, 4100ULL * 4100ULL);
    for (uint32_t i = 0; i < r.n; i += 1000)
        for (uint32_t j = 0; j < r.n; j++)
            assert_int_equal(r.col[r.row_ptr[i] + j], j);
    cooc_result_deinit(&r);
    free(spec);
}

/* --- brute force on random inputs ------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random sets: n_groups groups of 0..max_len keys drawn from 1..n_keys
 * with a skew toward small keys (so some are frequent). */
static void random_groups(struct tgroups *t, uint64_t seed, size_t n_groups, uint32_t n_keys,
                          uint32_t max_len)
{
    memset(t, 0, sizeof(*t));
    t->offsets = calloc(n_groups + 1, sizeof(uint64_t));
    t->items = calloc(n_groups * (size_t)max_len + 1, sizeof(uint32_t));
    size_t n_items = 0;
    for (size_t g = 0; g < n_groups; g++) {
        size_t start = n_items;
        uint32_t len = (uint32_t)(rng_next(&seed) % (max_len + 1));
        for (uint32_t k = 0; k < len; k++) {
            uint64_t a = rng_next(&seed) % n_keys, b = rng_next(&seed) % n_keys;
            t->items[n_items++] = (uint32_t)(a < b ? a : b) + 1;
        }
        tg_finish_group(t, &n_items, start);
    }
    t->g.max_item_key = n_keys;
    t->g.offsets = t->offsets;
    t->g.items = t->items;
}

/* The SQL evaluated naively with dense arrays, compared entry by entry. */
static void check_brute_force(const struct tgroups *t, const struct cooc_params *p,
                              const struct cooc_result *r)
{
    const struct cooc_groups *g = &t->g;
    uint32_t K = g->max_item_key + 1;
    uint32_t *fall = calloc(K, sizeof(uint32_t)), *f = calloc(K, sizeof(uint32_t));
    uint32_t *m = calloc((size_t)K * K, sizeof(uint32_t));
    uint64_t valid_items = 0, valid_groups = 0, total = 0;
    for (size_t i = 0; i < g->n_groups; i++)
        for (uint64_t k = g->offsets[i]; k < g->offsets[i + 1]; k++)
            fall[g->items[k]]++;
    for (uint32_t k = 1; k < K; k++)
        valid_items += fall[k] && (int64_t)fall[k] >= p->min_item_frequency;
    for (size_t i = 0; i < g->n_groups; i++) {
        uint32_t vi[1024];
        int64_t c = 0;
        for (uint64_t k = g->offsets[i]; k < g->offsets[i + 1]; k++)
            if ((int64_t)fall[g->items[k]] >= p->min_item_frequency)
                vi[c++] = g->items[k];
        if (c < 2 || c > p->max_group_size)
            continue;
        valid_groups++;
        total += (uint64_t)c;
        for (int64_t a = 0; a < c; a++) {
            f[vi[a]]++;
            for (int64_t b = 0; b < c; b++)
                m[(size_t)vi[a] * K + vi[b]]++;
        }
    }
    assert_int_equal(r->valid_items, valid_items);
    assert_int_equal(r->valid_groups, valid_groups);
    assert_int_equal(r->total, total);
    uint32_t n = 0;
    uint64_t nnz = 0;
    for (uint32_t a = 1; a < K; a++) {
        if (!f[a])
            continue;
        assert_true(n < r->n);
        assert_int_equal(r->keys[n], a);
        assert_int_equal(r->freq[n], f[a]);
        uint64_t k = r->row_ptr[n];
        for (uint32_t b = 1; b < K; b++) {
            uint32_t c = m[(size_t)a * K + b];
            if (!c)
                continue;
            assert_true(k < r->row_ptr[n + 1]);
            assert_int_equal(r->keys[r->col[k]], b);
            assert_int_equal(r->cooc[k], c);
            k++;
            nnz++;
        }
        assert_int_equal(k, r->row_ptr[n + 1]);
        n++;
    }
    assert_int_equal(r->n, n);
    assert_int_equal(r->nnz, nnz);
    free(fall);
    free(f);
    free(m);
}

static void assert_same_result(const struct cooc_result *a, const struct cooc_result *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->nnz, b->nnz);
    assert_int_equal(a->total, b->total);
    assert_int_equal(a->valid_items, b->valid_items);
    assert_int_equal(a->valid_groups, b->valid_groups);
    assert_memory_equal(a->keys, b->keys, a->n * sizeof(uint32_t) + 1 * (a->n == 0));
    assert_memory_equal(a->freq, b->freq, a->n * sizeof(uint32_t) + 1 * (a->n == 0));
    assert_memory_equal(a->row_ptr, b->row_ptr, (a->n + 1) * sizeof(uint64_t));
    if (a->nnz) {
        assert_memory_equal(a->col, b->col, a->nnz * sizeof(uint32_t));
        assert_memory_equal(a->cooc, b->cooc, a->nnz * sizeof(uint32_t));
    }
}

static void test_random_vs_brute_force(void **state)
{
    (void)state;
    static const struct {
        size_t groups;
        uint32_t keys, max_len;
        int64_t min_freq, max_size;
    } cases[] = {
        {200, 50, 8, 3, 5},   {500, 300, 20, 5, 10},  {1000, 120, 40, 15, 30},
        {50, 20, 20, 1, 100}, {300, 5000, 30, 2, 25}, {400, 80, 12, 0, 2},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct tgroups t;
        random_groups(&t, 0x9E3779B97F4A7C15ULL + c, cases[c].groups, cases[c].keys,
                      cases[c].max_len);
        struct cooc_params p = params_of(cases[c].min_freq, cases[c].max_size, 2);
        struct cooc_result r;
        assert_int_equal(cooc_compute(&t.g, &p, NULL, NULL, &r), 0);
        check_invariants(&r);
        check_brute_force(&t, &p, &r);
        cooc_result_deinit(&r);
        tg_deinit(&t);
    }
}

/* The result does not depend on the thread count. */
static void test_threads_identical(void **state)
{
    (void)state;
    struct tgroups t;
    random_groups(&t, 12345, 20000, 3000, 60);
    struct cooc_params p1 = params_of(10, 50, 1);
    struct cooc_result r1, r;
    assert_int_equal(cooc_compute(&t.g, &p1, NULL, NULL, &r1), 0);
    assert_true(r1.nnz > 100000);
    static const int threads[] = {2, 3, 8, 0, 1000};
    for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
        struct cooc_params p = params_of(10, 50, threads[i]);
        assert_int_equal(cooc_compute(&t.g, &p, NULL, NULL, &r), 0);
        assert_same_result(&r1, &r);
        cooc_result_deinit(&r);
    }
    cooc_result_deinit(&r1);
    tg_deinit(&t);
}

struct progress_log {
    int calls;
    double last_fraction;
    int monotonic;
    int saw_fill;
    int cancel_at_call;       /* 0: never */
    const char *cancel_stage; /* cancel at the first report of this stage */
    uint64_t last_pairs;
};

static int progress_cb(void *userdata, const struct cooc_progress *p)
{
    struct progress_log *log = userdata;
    log->calls++;
    if (p->fraction + 1e-12 < log->last_fraction || p->fraction < 0 || p->fraction > 1)
        log->monotonic = 0;
    log->last_fraction = p->fraction;
    if (strcmp(p->stage, "fill") == 0) {
        log->saw_fill = 1;
        log->last_pairs = p->pairs;
    }
    if (log->cancel_at_call && log->calls >= log->cancel_at_call)
        return 1;
    if (log->cancel_stage && strcmp(p->stage, log->cancel_stage) == 0)
        return 1;
    return 0;
}

static void test_progress_and_cancel(void **state)
{
    (void)state;
    struct tgroups t;
    random_groups(&t, 777, 5000, 800, 40);
    struct cooc_params p = params_of(5, 40, 2);
    struct cooc_result r;

    struct progress_log log = {.monotonic = 1};
    assert_int_equal(cooc_compute(&t.g, &p, progress_cb, &log, &r), 0);
    assert_true(log.calls >= 5); /* at least once per stage */
    assert_true(log.monotonic);
    assert_true(log.saw_fill);
    assert_float_equal(log.last_fraction, 1.0, 0);
    assert_int_equal(log.last_pairs, r.nnz);
    cooc_result_deinit(&r);

    /* cancel at the first report, and at the very last one */
    for (int mode = 0; mode < 3; mode++) {
        struct progress_log c = {.monotonic = 1};
        if (mode == 0)
            c.cancel_at_call = 1;
        else if (mode == 1)
            c.cancel_stage = "count";
        else
            c.cancel_stage = "fill";
        memset(&r, 0xAB, sizeof(r));
        assert_int_equal(cooc_compute(&t.g, &p, progress_cb, &c, &r), -ECANCELED);
        assert_null(r.row_ptr); /* zeroed, nothing to free */
        assert_null(r.col);
        assert_int_equal(r.n, 0);
    }
    tg_deinit(&t);
}

static void test_invalid_input(void **state)
{
    (void)state;
    struct cooc_params p = params_of(1, 100, 2);
    struct cooc_result r;
    uint64_t off[] = {0, 3};
    uint32_t unsorted[] = {1, 3, 2}, dup[] = {1, 2, 2}, zero[] = {0, 1, 2}, big[] = {1, 2, 9};
    struct cooc_groups g = {.n_groups = 1, .offsets = off, .items = unsorted, .max_item_key = 5};
    assert_int_equal(cooc_compute(&g, &p, NULL, NULL, &r), -EINVAL);
    g.items = dup;
    assert_int_equal(cooc_compute(&g, &p, NULL, NULL, &r), -EINVAL);
    g.items = zero;
    assert_int_equal(cooc_compute(&g, &p, NULL, NULL, &r), -EINVAL);
    g.items = big;
    assert_int_equal(cooc_compute(&g, &p, NULL, NULL, &r), -EINVAL);
    uint64_t bad_off[] = {1, 3};
    g.items = unsorted;
    g.offsets = bad_off;
    assert_int_equal(cooc_compute(&g, &p, NULL, NULL, &r), -EINVAL);
    uint64_t decreasing[] = {0, 3, 2, 3};
    uint32_t ok[] = {1, 2, 3};
    struct cooc_groups g3 = {.n_groups = 3, .offsets = decreasing, .items = ok, .max_item_key = 5};
    assert_int_equal(cooc_compute(&g3, &p, NULL, NULL, &r), -EINVAL);
    assert_int_equal(cooc_compute(NULL, &p, NULL, NULL, &r), -EINVAL);
    assert_int_equal(cooc_compute(&g3, NULL, NULL, NULL, &r), -EINVAL);
    assert_int_equal(cooc_compute(&g3, &p, NULL, NULL, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_small),
        cmocka_unit_test(test_group_size_bounds),
        cmocka_unit_test(test_recomputed_frequency),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_all_filtered),
        cmocka_unit_test(test_giant_group),
        cmocka_unit_test(test_random_vs_brute_force),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_progress_and_cancel),
        cmocka_unit_test(test_invalid_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
