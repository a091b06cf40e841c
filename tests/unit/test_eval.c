/*
 * Unit tests for ml/eval (hold-out metrics and rankers) and ml/rating (the
 * rating matrix WALS trains on), on hand-made inputs whose answers are
 * worked out in the comments:
 *   - eval_score with a fixed table ranker: hit/recall/coverage at several
 *     k (given out of order), lists with fewer than two items ignored, the
 *     min(k, |R|) denominator (also when the ranker returns fewer than k),
 *     argument errors, ranker errors and cancellation;
 *   - eval_rank_matrix: value order, tie rule (index or tie_rank), the
 *     diagonal skipped, truncation at k;
 *   - eval_rank_dot: inner-product order (not cosine), ties, truncation;
 *   - eval_order_by_count / eval_rank_order: popularity order and ties;
 *   - eval_is_heldout: edges, and the held-out share over many hashes;
 *   - rating_values: every target and transform on a 3-item PMI result
 *     whose PMIs are exact in binary (powers of two), and the default
 *     bit-identical to (float)cooc_score().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/cooc.h"
#include "ml/eval.h"
#include "ml/rating.h"

/* ---- a fixed ranker: q's list is table[q][0..len[q]) ---- */

struct table_ranker {
    const uint32_t (*table)[3];
    const uint32_t *len;
    int calls;
    int fail_at; /* call number that returns -EIO; 0: never */
};

static int rank_table(void *ud, uint32_t q, uint32_t k, uint32_t *out)
{
    struct table_ranker *t = ud;
    if (++t->calls == t->fail_at)
        return -EIO;
    uint32_t n = t->len[q] < k ? t->len[q] : k;
    memcpy(out, t->table[q], sizeof *out * n);
    return (int)n;
}

/* Six items. Lists: {0,1,2}, {3,4}, {5} (ignored: < 2 items), {} (ignored).
 * Queries and their R:  q0 R={1,2}  q1 R={0,2}  q2 R={0,1}  q3 R={4}  q4 R={3}
 *   q   top-3      found@1 @2 @3   recall@1  @2     @3
 *   0   1 3 4      1       1  1    1/1       1/2    1/2
 *   1   5 2 0      0       1  2    0         1/2    2/2
 *   2   3 4 5      0       0  0    0         0      0
 *   3   4 0 1      1       1  1    1/1       1/1    1/1   (|R| = 1)
 *   4   0 1 2      0       0  0    0         0      0
 * hit@1 = 2/5, recall@1 = 2/5; hit@2 = 3/5, recall@2 = 2/5;
 * hit@3 = 3/5, recall@3 = 2.5/5.
 * coverage@1: {1,5,3,4,0} = 5/6; @2 and @3: all six. */
static const uint32_t list_off[] = {0, 3, 5, 6, 6};
static const uint32_t list_items_u32[] = {0, 1, 2, 3, 4, 5};
static const uint32_t table6[6][3] = {{1, 3, 4}, {5, 2, 0}, {3, 4, 5},
                                      {4, 0, 1}, {0, 1, 2}, {0, 1, 2}};
static const uint32_t len6[6] = {3, 3, 3, 3, 3, 3};

static void lists_init(struct eval_lists *l, uint64_t *off)
{
    for (int i = 0; i < 5; i++)
        off[i] = list_off[i];
    l->n = 4;
    l->offsets = off;
    l->items = list_items_u32;
}

static void test_score_known_answers(void **state)
{
    (void)state;
    uint64_t off[5];
    struct eval_lists l;
    lists_init(&l, off);
    struct table_ranker t = {table6, len6, 0, 0};
    const uint32_t ks[] = {3, 1, 2};
    struct eval_metrics m[3];
    assert_int_equal(eval_score(&l, 6, ks, 3, rank_table, &t, NULL, NULL, m), 0);
    assert_int_equal(t.calls, 5); /* one ranking per query, at the largest k */
    /* out[i] follows ks[i] */
    assert_int_equal(m[0].k, 3);
    assert_int_equal(m[1].k, 1);
    assert_int_equal(m[2].k, 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(m[i].queries, 5);
    assert_float_equal(m[1].hit, 0.4, 1e-12);
    assert_float_equal(m[1].recall, 0.4, 1e-12);
    assert_float_equal(m[1].coverage, 5.0 / 6.0, 1e-12);
    assert_float_equal(m[2].hit, 0.6, 1e-12);
    assert_float_equal(m[2].recall, 0.4, 1e-12);
    assert_float_equal(m[2].coverage, 1.0, 1e-12);
    assert_float_equal(m[0].hit, 0.6, 1e-12);
    assert_float_equal(m[0].recall, 0.5, 1e-12);
    assert_float_equal(m[0].coverage, 1.0, 1e-12);
}

/* A ranker that returns fewer than k items: the denominator stays
 * min(k, |R|). q1 returns only [2] (found 1 of R={0,2}): recall@3 = 1/2,
 * not 1/1; everything else as above, so recall@3 = 2/5 and hit@3 = 3/5. */
static void test_short_lists_keep_denominator(void **state)
{
    (void)state;
    uint64_t off[5];
    struct eval_lists l;
    lists_init(&l, off);
    uint32_t table[6][3];
    memcpy(table, table6, sizeof table);
    table[1][0] = 2;
    uint32_t len[6] = {3, 1, 3, 3, 3, 3};
    struct table_ranker t = {(const uint32_t(*)[3])table, len, 0, 0};
    const uint32_t ks[] = {3};
    struct eval_metrics m;
    assert_int_equal(eval_score(&l, 6, ks, 1, rank_table, &t, NULL, NULL, &m), 0);
    assert_float_equal(m.recall, 2.0 / 5.0, 1e-12);
    assert_float_equal(m.hit, 3.0 / 5.0, 1e-12);
}

/* No scorable list: zero queries and zero metrics, not NaN. */
static void test_no_queries(void **state)
{
    (void)state;
    const uint64_t off[] = {0, 1, 1};
    const uint32_t items[] = {4};
    struct eval_lists l = {2, off, items};
    struct table_ranker t = {table6, len6, 0, 0};
    const uint32_t ks[] = {10};
    struct eval_metrics m;
    assert_int_equal(eval_score(&l, 6, ks, 1, rank_table, &t, NULL, NULL, &m), 0);
    assert_int_equal(m.queries, 0);
    assert_int_equal(t.calls, 0);
    assert_float_equal(m.recall, 0, 0);
    assert_float_equal(m.hit, 0, 0);
    assert_float_equal(m.coverage, 0, 0);
}

static int cancel_now(void *ud, double f)
{
    (void)f;
    ++*(int *)ud;
    return 1;
}

static void test_score_errors(void **state)
{
    (void)state;
    uint64_t off[5];
    struct eval_lists l;
    lists_init(&l, off);
    struct table_ranker t = {table6, len6, 0, 0};
    struct eval_metrics m[EVAL_MAX_KS + 1];
    uint32_t ks[EVAL_MAX_KS + 1];
    for (int i = 0; i <= EVAL_MAX_KS; i++)
        ks[i] = 1;
    assert_int_equal(eval_score(&l, 6, ks, 0, rank_table, &t, NULL, NULL, m), -EINVAL);
    assert_int_equal(eval_score(&l, 6, ks, EVAL_MAX_KS + 1, rank_table, &t, NULL, NULL, m),
                     -EINVAL);
    assert_int_equal(eval_score(NULL, 6, ks, 1, rank_table, &t, NULL, NULL, m), -EINVAL);
    assert_int_equal(eval_score(&l, 6, ks, 1, NULL, &t, NULL, NULL, m), -EINVAL);
    ks[0] = 0;
    assert_int_equal(eval_score(&l, 6, ks, 1, rank_table, &t, NULL, NULL, m), -EINVAL);
    ks[0] = EVAL_MAX_K + 1;
    assert_int_equal(eval_score(&l, 6, ks, 1, rank_table, &t, NULL, NULL, m), -EINVAL);
    ks[0] = EVAL_MAX_K;
    assert_int_equal(eval_score(&l, 6, ks, 1, rank_table, &t, NULL, NULL, m), 0);
    /* a list item outside 0..n_items-1, caught before anything is ranked
     * (and before the list's R is marked: no write out of bounds) */
    const uint64_t off_bad[] = {0, 3};
    const uint32_t items_bad[] = {0, 9, 1};
    struct eval_lists lb = {1, off_bad, items_bad};
    t.calls = 0;
    assert_int_equal(eval_score(&lb, 6, ks, 1, rank_table, &t, NULL, NULL, m), -EINVAL);
    assert_int_equal(t.calls, 0);
    /* a ranker answering an item outside the catalog */
    uint32_t bad_table[6][3];
    memcpy(bad_table, table6, sizeof bad_table);
    bad_table[0][0] = 6;
    struct table_ranker bad = {(const uint32_t(*)[3])bad_table, len6, 0, 0};
    assert_int_equal(eval_score(&l, 6, ks, 1, rank_table, &bad, NULL, NULL, m), -ERANGE);
    /* the ranker's error comes back */
    t.fail_at = 2;
    t.calls = 0;
    assert_int_equal(eval_score(&l, 6, ks, 1, rank_table, &t, NULL, NULL, m), -EIO);
    /* cancellation from the progress callback */
    t.fail_at = 0;
    int calls = 0;
    assert_int_equal(eval_score(&l, 6, ks, 1, rank_table, &t, cancel_now, &calls, m), -ECANCELED);
    assert_int_equal(calls, 1);
}

/* ---- matrix ranker ---- */

/* Row 0: diag 9 (skipped), col 1 → 2, col 2 → 5, col 3 → 2 (tie with 1).
 * Row 1: only its diagonal. Rows 2, 3: empty. */
static void test_rank_matrix(void **state)
{
    (void)state;
    const uint64_t row_ptr[] = {0, 4, 5, 5, 5};
    const uint32_t col[] = {3, 0, 2, 1, 1};
    const double value[] = {2, 9, 5, 2, 7};
    struct eval_matrix_ranker r = {row_ptr, col, value, NULL};
    uint32_t out[4];
    assert_int_equal(eval_rank_matrix(&r, 0, 4, out), 3);
    assert_int_equal(out[0], 2);
    assert_int_equal(out[1], 1); /* tie 2 = 2: lower index first */
    assert_int_equal(out[2], 3);
    assert_int_equal(eval_rank_matrix(&r, 0, 2, out), 2);
    assert_int_equal(out[0], 2);
    assert_int_equal(out[1], 1);
    const uint32_t tie_rank[] = {0, 3, 1, 2}; /* item 3 ranks before item 1 */
    r.tie_rank = tie_rank;
    assert_int_equal(eval_rank_matrix(&r, 0, 4, out), 3);
    assert_int_equal(out[0], 2);
    assert_int_equal(out[1], 3);
    assert_int_equal(out[2], 1);
    /* a row holding only the diagonal, and an empty row */
    assert_int_equal(eval_rank_matrix(&r, 1, 4, out), 0);
    assert_int_equal(eval_rank_matrix(&r, 2, 4, out), 0);
}

/* ---- inner-product ranker ---- */

/* q = item 0 = (1, 0). Item 1 = (3, 3): dot 3 (cosine 0.71); item 2 =
 * (1, 0): dot 1 (cosine 1); item 3 = (1, −7): dot 1, ties with item 2;
 * item 4 = (−1, 0): dot −1. By dot: 1, 2, 3, 4 (2 before 3 by index). */
static void test_rank_dot(void **state)
{
    (void)state;
    const float emb[] = {1, 0, 3, 3, 1, 0, 1, -7, -1, 0};
    char scratch[4096];
    assert_true(eval_dot_scratch_size(5) <= sizeof scratch);
    struct eval_dot_ranker d = {emb, 5, 2, NULL, scratch};
    uint32_t out[8];
    assert_int_equal(eval_rank_dot(&d, 0, 8, out), 4);
    const uint32_t want[] = {1, 2, 3, 4};
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(eval_rank_dot(&d, 0, 2, out), 2);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    const uint32_t tie_rank[] = {0, 1, 3, 2, 4}; /* item 3 before item 2 */
    d.tie_rank = tie_rank;
    assert_int_equal(eval_rank_dot(&d, 0, 3, out), 3);
    assert_int_equal(out[1], 3);
    assert_int_equal(out[2], 2);
    /* q = item 4 = (−1, 0): dots 0 → −1, 1 → −3, 2 → −1, 3 → −1; the tie
     * at −1 by rank: 0, 3, 2; then 1 */
    assert_int_equal(eval_rank_dot(&d, 4, 4, out), 4);
    const uint32_t want4[] = {0, 3, 2, 1};
    assert_memory_equal(out, want4, sizeof want4);
    assert_int_equal(eval_rank_dot(&d, 5, 2, out), -EINVAL);
    d.scratch = NULL;
    assert_int_equal(eval_rank_dot(&d, 0, 2, out), -EINVAL);
}

/* ---- popularity ---- */

static void test_popularity_order(void **state)
{
    (void)state;
    const uint32_t count[] = {3, 5, 5, 1};
    uint32_t order[4];
    assert_int_equal(eval_order_by_count(count, NULL, 4, order), 0);
    const uint32_t want[] = {1, 2, 0, 3};
    assert_memory_equal(order, want, sizeof want);
    const uint32_t tie_rank[] = {3, 2, 1, 0}; /* reverse id order: 2 before 1 */
    assert_int_equal(eval_order_by_count(count, tie_rank, 4, order), 0);
    const uint32_t want2[] = {2, 1, 0, 3};
    assert_memory_equal(order, want2, sizeof want2);
    assert_int_equal(eval_order_by_count(NULL, NULL, 4, order), -EINVAL);

    struct eval_order_ranker o = {want, 4};
    uint32_t out[4];
    assert_int_equal(eval_rank_order(&o, 2, 2, out), 2); /* q = 2 skipped */
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 0);
    assert_int_equal(eval_rank_order(&o, 0, 10, out), 3);
    assert_int_equal(out[2], 3);
}

/* ---- split ---- */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void test_heldout_fraction(void **state)
{
    (void)state;
    assert_true(eval_is_heldout(0, 0.1));
    assert_false(eval_is_heldout(0, 0.0));
    assert_false(eval_is_heldout(UINT64_MAX, 0.5));
    assert_true(eval_is_heldout(UINT64_MAX, 1.0));
    assert_true(eval_is_heldout(UINT64_MAX / 2 - 4096, 0.5));
    assert_false(eval_is_heldout(UINT64_MAX / 2 + 4096, 0.5));
    const double fr[] = {0.01, 0.1, 0.5, 0.9};
    for (int f = 0; f < 4; f++) {
        int held = 0, n = 200000;
        for (int i = 0; i < n; i++)
            held += eval_is_heldout(splitmix((uint64_t)i), fr[f]);
        /* binomial sd <= sqrt(0.25/n) ≈ 0.0011; allow 5 sd */
        assert_float_equal((double)held / n, fr[f], 0.0056);
    }
}

/* ---- rating ---- */

/* Three items, freq {8, 4, 2}, total 16, so every log2 is an integer:
 *   entry   cooc  pmi = log2 c − log2 f1 − log2 f2 + 4   score = cooc·pmi
 *   (0,0)   8     3 − 3 − 3 + 4 =  1                      8
 *   (0,1)   1     0 − 3 − 2 + 4 = −1                     −1
 *   (0,2)   2     1 − 3 − 1 + 4 =  1                      2
 *   (1,1)   4     2 − 2 − 2 + 4 =  2                      8
 *   (1,2)   2     1 − 2 − 1 + 4 =  2                      4
 *   (2,2)   2     1 − 1 − 1 + 4 =  3                      6            */
static uint64_t r_row_ptr[] = {0, 3, 6, 9};
static uint32_t r_col[] = {0, 1, 2, 0, 1, 2, 0, 1, 2};
static uint32_t r_cooc[] = {8, 1, 2, 1, 4, 2, 2, 2, 2};
static uint32_t r_freq[] = {8, 4, 2};
static uint32_t r_keys[] = {10, 20, 30};

static struct cooc_result toy(void)
{
    struct cooc_result r = {0};
    r.n = 3;
    r.keys = r_keys;
    r.freq = r_freq;
    r.total = 16;
    r.nnz = 9;
    r.row_ptr = r_row_ptr;
    r.col = r_col;
    r.cooc = r_cooc;
    return r;
}

static void expect_vals(const struct rating_params *p, const double *want)
{
    struct cooc_result r = toy();
    float val[9];
    assert_int_equal(rating_values(&r, p, val), 0);
    for (int e = 0; e < 9; e++)
        assert_float_equal(val[e], want[e], 1e-6);
}

static void test_rating_targets(void **state)
{
    (void)state;
    struct rating_params p;
    rating_params_init(&p);
    assert_int_equal(p.target, RATING_SCORE);
    assert_true(p.include_diagonal);
    const double score[] = {8, -1, 2, -1, 8, 4, 2, 4, 6};
    expect_vals(&p, score);
    p.target = RATING_PMI;
    const double pmi[] = {1, -1, 1, -1, 2, 2, 1, 2, 3};
    expect_vals(&p, pmi);
    p.target = RATING_COOC;
    const double cooc[] = {8, 1, 2, 1, 4, 2, 2, 2, 2};
    expect_vals(&p, cooc);
    p.target = RATING_SPPMI; /* shift 0: positive PMI */
    const double ppmi[] = {1, 0, 1, 0, 2, 2, 1, 2, 3};
    expect_vals(&p, ppmi);
    p.shift = 1;
    const double sppmi1[] = {0, 0, 0, 0, 1, 1, 0, 1, 2};
    expect_vals(&p, sppmi1);

    /* diagonal left out */
    rating_params_init(&p);
    p.include_diagonal = 0;
    const double nodiag[] = {0, -1, 2, -1, 0, 4, 2, 4, 0};
    expect_vals(&p, nodiag);
}

static void test_rating_transforms(void **state)
{
    (void)state;
    struct rating_params p;
    rating_params_init(&p);
    p.min_cooc = 2; /* (0,1) and (1,0) have cooc 1 */
    const double minc[] = {8, 0, 2, 0, 8, 4, 2, 4, 6};
    expect_vals(&p, minc);
    rating_params_init(&p);
    p.target = RATING_PMI;
    p.drop_negative = 1;
    const double dropped[] = {1, 0, 1, 0, 2, 2, 1, 2, 3};
    expect_vals(&p, dropped);
    rating_params_init(&p);
    p.scale = RATING_SCALE_LOG;
    p.epsilon = 2; /* sign(r)·log(1 + |r|/2) */
    const double logs[] = {log(5), -log(1.5), log(2), -log(1.5), log(5),
                           log(3), log(2),    log(3), log(4)};
    expect_vals(&p, logs);
    /* the log scale after the cut: dropped entries stay 0 */
    p.min_cooc = 2;
    const double logcut[] = {log(5), 0, log(2), 0, log(5), log(3), log(2), log(3), log(4)};
    expect_vals(&p, logcut);
}

/* The default is the seed's score, bit for bit, on a real-looking matrix
 * (non-power-of-two counts). */
static void test_rating_default_bit_identical(void **state)
{
    (void)state;
    uint32_t cooc[9] = {17, 3, 5, 3, 11, 7, 5, 7, 13};
    uint32_t freq[3] = {17, 11, 13};
    struct cooc_result r = toy();
    r.cooc = cooc;
    r.freq = freq;
    r.total = 41;
    struct rating_params p;
    rating_params_init(&p);
    float val[9];
    assert_int_equal(rating_values(&r, &p, val), 0);
    for (uint32_t i = 0; i < 3; i++)
        for (uint64_t e = r.row_ptr[i]; e < r.row_ptr[i + 1]; e++) {
            float want = (float)cooc_score(&r, i, e);
            assert_memory_equal(&val[e], &want, sizeof want);
        }
}

static void test_rating_parse_and_errors(void **state)
{
    (void)state;
    enum rating_target t;
    enum rating_scale s;
    const char *names[] = {"score", "pmi", "cooc", "sppmi"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rating_target_parse(names[i], &t), 0);
        assert_int_equal(t, i);
    }
    assert_int_equal(rating_target_parse("Score", &t), -EINVAL);
    assert_int_equal(rating_target_parse(NULL, &t), -EINVAL);
    assert_int_equal(rating_scale_parse("linear", &s), 0);
    assert_int_equal(s, RATING_SCALE_LINEAR);
    assert_int_equal(rating_scale_parse("log", &s), 0);
    assert_int_equal(s, RATING_SCALE_LOG);
    assert_int_equal(rating_scale_parse("ln", &s), -EINVAL);

    struct cooc_result r = toy();
    struct rating_params p;
    float val[9];
    rating_params_init(&p);
    assert_int_equal(rating_values(NULL, &p, val), -EINVAL);
    assert_int_equal(rating_values(&r, NULL, val), -EINVAL);
    assert_int_equal(rating_values(&r, &p, NULL), -EINVAL);
    p.shift = -1;
    assert_int_equal(rating_values(&r, &p, val), -EINVAL);
    p.shift = NAN;
    assert_int_equal(rating_values(&r, &p, val), -EINVAL);
    rating_params_init(&p);
    p.scale = RATING_SCALE_LOG;
    p.epsilon = 0;
    assert_int_equal(rating_values(&r, &p, val), -EINVAL);
    p.scale = RATING_SCALE_LINEAR; /* epsilon only matters with the log scale */
    assert_int_equal(rating_values(&r, &p, val), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_known_answers),
        cmocka_unit_test(test_short_lists_keep_denominator),
        cmocka_unit_test(test_no_queries),
        cmocka_unit_test(test_score_errors),
        cmocka_unit_test(test_rank_matrix),
        cmocka_unit_test(test_rank_dot),
        cmocka_unit_test(test_popularity_order),
        cmocka_unit_test(test_heldout_fraction),
        cmocka_unit_test(test_rating_targets),
        cmocka_unit_test(test_rating_transforms),
        cmocka_unit_test(test_rating_default_bit_identical),
        cmocka_unit_test(test_rating_parse_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
