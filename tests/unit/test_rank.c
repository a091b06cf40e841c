/*
 * Unit tests for ml/rank (the one ranking order and its top-k selection):
 *   - rank_before / rank_compare: score descending, then tie ascending,
 *     then index; tie NULL;
 *   - rank_top against a full qsort under rank_compare, on random rows
 *     with many equal scores (small integer scores), for every k from 0
 *     past n, with and without a tie array;
 *   - rank_top on float scores widened to double keeps the float order;
 *   - rank_dot: inner products (not cosine), q excluded, ties, k > n - 1,
 *     errors; rank_row: the diagonal skipped, ties by tie.
 * Single-threaded; no I/O.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ml/rank.h"

static void test_order(void **state)
{
    (void)state;
    const uint32_t tie[] = {2, 0, 1};
    assert_true(rank_before(2.0, 0, 1.0, 1, tie)); /* score first */
    assert_false(rank_before(1.0, 0, 2.0, 1, tie));
    assert_true(rank_before(1.0, 1, 1.0, 0, tie)); /* tie[1] = 0 < tie[0] = 2 */
    assert_true(rank_before(1.0, 2, 1.0, 0, tie));
    assert_true(rank_before(1.0, 0, 1.0, 1, NULL)); /* no tie array: index */
    assert_true(rank_compare(1.0, 1, 1.0, 0, tie) < 0);
    assert_true(rank_compare(1.0, 0, 1.0, 1, tie) > 0);
    assert_int_equal(rank_compare(1.0, 1, 1.0, 1, tie), 0);
    assert_true(rank_compare(-1.0, 1, -2.0, 0, NULL) < 0);
}

/* ---- rank_top against a full sort ---- */

struct pair {
    double s;
    uint32_t j;
};

static const uint32_t *sort_tie;

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    return rank_compare(x->s, x->j, y->s, y->j, sort_tie);
}

static uint64_t rng = 88172645463325252ull;

static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void check_against_sort(uint32_t n, uint32_t levels, const uint32_t *tie)
{
    struct pair *all = malloc(sizeof *all * n);
    uint32_t *idx = malloc(sizeof *idx * (n + 3));
    double *score = malloc(sizeof *score * (n + 3));
    assert_non_null(all);
    assert_non_null(idx);
    assert_non_null(score);
    for (uint32_t j = 0; j < n; j++)
        all[j] = (struct pair){(double)(next_u32() % levels) - 2.0, j};
    struct pair *sorted = malloc(sizeof *sorted * n);
    assert_non_null(sorted);
    memcpy(sorted, all, sizeof *all * n);
    sort_tie = tie;
    qsort(sorted, n, sizeof *sorted, pair_cmp);
    for (uint32_t k = 0; k <= n + 2; k++) {
        struct rank_top t;
        rank_top_init(&t, idx, score, k, tie);
        for (uint32_t j = 0; j < n; j++)
            rank_top_push(&t, all[j].s, all[j].j);
        uint32_t got = rank_top_sort(&t);
        assert_int_equal(got, k < n ? k : n);
        for (uint32_t r = 0; r < got; r++) {
            assert_int_equal(idx[r], sorted[r].j);
            assert_true(score[r] == sorted[r].s);
        }
    }
    free(all);
    free(sorted);
    free(idx);
    free(score);
}

static void test_top_matches_sort(void **state)
{
    (void)state;
    const uint32_t n = 97;
    uint32_t tie[97];
    /* a permutation: tie = position in a shuffled order */
    for (uint32_t j = 0; j < n; j++)
        tie[j] = j;
    for (uint32_t j = n - 1; j > 0; j--) {
        uint32_t r = next_u32() % (j + 1), t = tie[j];
        tie[j] = tie[r];
        tie[r] = t;
    }
    for (uint32_t levels = 1; levels <= 40; levels += 13) {
        check_against_sort(n, levels, NULL);
        check_against_sort(n, levels, tie);
    }
    check_against_sort(1, 3, NULL);
}

/* Float scores widened to double keep their order and come back exact. */
static void test_float_scores(void **state)
{
    (void)state;
    const float f[] = {0.1f, 0.30000001f, 0.3f, -0.0f, 0.0f, 1e-30f, 0.3f};
    uint32_t idx[7];
    double score[7];
    struct rank_top t;
    rank_top_init(&t, idx, score, 7, NULL);
    for (uint32_t j = 0; j < 7; j++)
        rank_top_push(&t, f[j], j);
    assert_int_equal(rank_top_sort(&t), 7);
    /* 0.30000001f and 0.3f are the same float: a tie, by index (1, 2, 6);
     * -0.0 == 0.0: a tie, by index (3, 4) */
    const uint32_t want[] = {1, 2, 6, 0, 5, 3, 4};
    assert_memory_equal(idx, want, sizeof want);
    for (uint32_t r = 0; r < 7; r++)
        assert_true((float)score[r] == f[idx[r]]);
}

/* ---- rank_dot ---- */

/* q = item 0 = (1, 0). Item 1 = (3, 3): dot 3 (cosine 0.71); item 2 =
 * (1, 0): dot 1 (cosine 1); item 3 = (1, −7): dot 1, ties with item 2;
 * item 4 = (−1, 0): dot −1. By dot: 1, 2, 3, 4 (2 before 3 by index). */
static void test_dot(void **state)
{
    (void)state;
    const float emb[] = {1, 0, 3, 3, 1, 0, 1, -7, -1, 0};
    uint32_t idx[8];
    double score[8];
    assert_int_equal(rank_dot(emb, 5, 2, 0, 8, NULL, idx, score), 4);
    const uint32_t want[] = {1, 2, 3, 4};
    const double want_s[] = {3, 1, 1, -1};
    assert_memory_equal(idx, want, sizeof want);
    assert_memory_equal(score, want_s, sizeof want_s);
    const uint32_t tie[] = {0, 1, 3, 2, 4}; /* item 3's id sorts before item 2's */
    assert_int_equal(rank_dot(emb, 5, 2, 0, 3, tie, idx, score), 3);
    assert_int_equal(idx[1], 3);
    assert_int_equal(idx[2], 2);
    assert_int_equal(rank_dot(emb, 5, 2, 0, 0, tie, idx, score), 0);
    assert_int_equal(rank_dot(emb, 1, 2, 0, 5, NULL, idx, score), 0); /* alone */
    assert_int_equal(rank_dot(emb, 5, 2, 5, 2, NULL, idx, score), -EINVAL);
    assert_int_equal(rank_dot(NULL, 5, 2, 0, 2, NULL, idx, score), -EINVAL);
    assert_int_equal(rank_dot(emb, 5, 2, 0, 2, NULL, idx, NULL), -EINVAL);
}

/* ---- rank_row ---- */

/* Row 0: diag 9 (skipped), col 1 → 2, col 2 → 5, col 3 → 2 (tie with 1).
 * Row 1: only its diagonal. */
static void test_row(void **state)
{
    (void)state;
    const uint64_t row_ptr[] = {0, 4, 5, 5, 5};
    const uint32_t col[] = {3, 0, 2, 1, 1};
    const double value[] = {2, 9, 5, 2, 7};
    uint32_t idx[4];
    double score[4];
    assert_int_equal(rank_row(row_ptr, col, value, 0, 4, NULL, idx, score), 3);
    const uint32_t want[] = {2, 1, 3};
    assert_memory_equal(idx, want, sizeof want);
    assert_true(score[0] == 5 && score[1] == 2 && score[2] == 2);
    const uint32_t tie[] = {0, 3, 1, 2}; /* item 3 before item 1 */
    assert_int_equal(rank_row(row_ptr, col, value, 0, 2, tie, idx, score), 2);
    assert_int_equal(idx[0], 2);
    assert_int_equal(idx[1], 3);
    assert_int_equal(rank_row(row_ptr, col, value, 1, 4, tie, idx, score), 0);
    assert_int_equal(rank_row(row_ptr, col, value, 2, 4, tie, idx, score), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),        cmocka_unit_test(test_top_matches_sort),
        cmocka_unit_test(test_float_scores), cmocka_unit_test(test_dot),
        cmocka_unit_test(test_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
