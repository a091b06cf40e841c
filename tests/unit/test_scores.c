/*
 * Unit tests for ml/scores.c: the groups cooc_compute keeps, hand-checked
 * scores of every matrix source on a tiny matrix, the identities the docs
 * promise (γ = 0 is the plain count; rp3 at α = 0 is cooc with γ = -β; a
 * one-item recommendation is the item's similar list; the precomputed
 * tables change nothing, bit for bit), the recommendation's exclusions and
 * the errors. tests/oracle/test_scores_numpy.py checks the same scores
 * against numpy on a larger hand-made matrix.
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
#include "ml/scores.h"

#define assert_close(a, b, eps) assert_true(fabs((a) - (b)) <= (eps))

/* Keys 1..5; key 5 is in one group only and min_item_frequency 2 drops
 * it, which leaves group {5, 1} with one valid item: not a valid group.
 * Valid groups (dense index = key - 1):
 *   g0 {0,1,2} g1 {0,1} g2 {1,2,3} g3 {0,3}
 * freq: 0:3 1:3 2:2 3:2 */
static const uint64_t off[] = {0, 3, 5, 8, 10, 12};
static const uint32_t items[] = {1, 2, 3, 1, 2, 2, 3, 4, 1, 4, 1, 5};

static void make(struct cooc_result *r)
{
    struct cooc_groups g = {5, off, items, 5};
    struct cooc_params p;
    cooc_params_init(&p);
    p.min_item_frequency = 2;
    assert_int_equal(cooc_compute(&g, &p, NULL, NULL, r), 0);
    assert_int_equal(r->n, 4);
}

static void test_groups_kept(void **state)
{
    (void)state;
    struct cooc_result r;
    make(&r);
    assert_int_equal(r.valid_groups, 4);
    assert_non_null(r.group_ptr);
    const uint64_t ptr[] = {0, 3, 5, 8, 10};
    const uint32_t gi[] = {0, 1, 2, 0, 1, 1, 2, 3, 0, 3};
    assert_memory_equal(r.group_ptr, ptr, sizeof ptr);
    assert_int_equal(r.total, 10);
    assert_memory_equal(r.group_items, gi, sizeof gi);
    struct score_walk w;
    assert_int_equal(score_walk_init(&w, &r), 0);
    /* item 0 is in g0, g1, g3; item 3 in g2, g3 */
    assert_int_equal(w.item_ptr[1] - w.item_ptr[0], 3);
    assert_int_equal(w.item_groups[w.item_ptr[0] + 2], 3);
    assert_int_equal(w.item_groups[w.item_ptr[3]], 2);
    score_walk_deinit(&w);
    cooc_result_deinit(&r);
}

/* The scores of q's neighbours j = 0..3 (q's own slot ignored). */
static void scores_of(const struct cooc_result *r, const struct score_walk *w,
                      const struct score_params *p, uint32_t q, double out[4])
{
    double row[4];
    for (int j = 0; j < 4; j++)
        out[j] = NAN;
    assert_int_equal(score_row(r, w, p, NULL, q, row), 0);
    for (uint64_t x = r->row_ptr[q]; x < r->row_ptr[q + 1]; x++)
        out[r->col[x]] = row[x - r->row_ptr[q]];
}

static void test_hand_checked(void **state)
{
    (void)state;
    struct cooc_result r;
    make(&r);
    struct score_walk w;
    assert_int_equal(score_walk_init(&w, &r), 0);
    struct score_params p;
    double s[4];

    /* cooc(0, ·) = 2, 1, 1 */
    score_params_init(&p, SCORE_COOC);
    scores_of(&r, &w, &p, 0, s);
    assert_true(s[1] == 2 && s[2] == 1 && s[3] == 1);
    /* γ = 1: times freq(j) = 3, 2, 2 */
    p.pop_weight = 1;
    scores_of(&r, &w, &p, 0, s);
    assert_true(s[1] == 6 && s[2] == 2 && s[3] == 2);

    /* pmi(0,1) = log2(2) - log2(3) - log2(3) + log2(10) */
    score_params_init(&p, SCORE_PMI);
    scores_of(&r, &w, &p, 0, s);
    assert_close(s[1], 2 * (1 - 2 * log2(3) + log2(10)), 1e-12);

    /* rp3, α = 1, β = 0, from item 0 (freq 3):
     *   to 1: (1/3)(1/3 + 1/2)   via g0 (size 3) and g1 (size 2)
     *   to 2: (1/3)(1/3)         via g0
     *   to 3: (1/3)(1/2)         via g3 */
    score_params_init(&p, SCORE_RP3);
    p.alpha = 1;
    p.beta = 0;
    scores_of(&r, &w, &p, 0, s);
    assert_close(s[1], (1.0 / 3) * (1.0 / 3 + 1.0 / 2), 1e-15);
    assert_close(s[2], 1.0 / 9, 1e-15);
    assert_close(s[3], 1.0 / 6, 1e-15);
    /* β = 1 divides by the target's frequency: 3, 2, 2 */
    p.beta = 1;
    scores_of(&r, &w, &p, 0, s);
    assert_close(s[1], (1.0 / 3) * (5.0 / 6) / 3, 1e-15);
    assert_close(s[3], 1.0 / 12, 1e-15);
    /* α = 0.5: each step's probability to the power 0.5 */
    p.alpha = 0.5;
    p.beta = 0;
    scores_of(&r, &w, &p, 2, s); /* item 2: freq 2, in g0 (3) and g2 (3) */
    assert_close(s[0], pow(2, -0.5) * pow(3, -0.5), 1e-15);
    assert_close(s[1], pow(2, -0.5) * 2 * pow(3, -0.5), 1e-15);
    assert_close(s[3], pow(2, -0.5) * pow(3, -0.5), 1e-15);

    score_walk_deinit(&w);
    cooc_result_deinit(&r);
}

/* All (index, score) lists of every query item under p, with and without
 * the precomputed tables: the same bits. */
static void assert_prep_changes_nothing(const struct cooc_result *r, const struct score_walk *w,
                                        const struct score_params *p)
{
    struct score_prep prep = {0};
    assert_int_equal(score_prep_update(&prep, r, w, p), 0);
    for (uint32_t q = 0; q < r->n; q++) {
        uint32_t a[8], b[8];
        double sa[8], sb[8];
        int na = score_similar(r, w, p, NULL, q, 8, NULL, a, sa);
        int nb = score_similar(r, w, p, &prep, q, 8, NULL, b, sb);
        assert_true(na >= 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, sizeof *a * (size_t)na);
        assert_memory_equal(sa, sb, sizeof *sa * (size_t)na);
    }
    score_prep_deinit(&prep);
}

static void test_identities(void **state)
{
    (void)state;
    struct cooc_result r;
    make(&r);
    struct score_walk w;
    assert_int_equal(score_walk_init(&w, &r), 0);
    struct score_params cooc, rp3, pmi;
    score_params_init(&cooc, SCORE_COOC);
    score_params_init(&rp3, SCORE_RP3);
    score_params_init(&pmi, SCORE_PMI);
    uint32_t a[4], b[4];
    double sa[4], sb[4];
    for (uint32_t q = 0; q < r.n; q++) {
        /* γ = 0: exactly the count */
        int n = score_similar(&r, &w, &cooc, NULL, q, 4, NULL, a, sa);
        for (int t = 0; t < n; t++) {
            uint64_t x = r.row_ptr[q];
            while (r.col[x] != a[t])
                x++;
            assert_true(sa[t] == (double)r.cooc[x]);
        }
        /* rp3 at α = 0 is cooc with γ = -β, bit for bit */
        rp3.alpha = 0;
        rp3.beta = -0.4;
        cooc.pop_weight = 0.4;
        n = score_similar(&r, &w, &cooc, NULL, q, 4, NULL, a, sa);
        assert_int_equal(score_similar(&r, &w, &rp3, NULL, q, 4, NULL, b, sb), n);
        assert_memory_equal(a, b, sizeof *a * (size_t)n);
        assert_memory_equal(sa, sb, sizeof *sa * (size_t)n);
        cooc.pop_weight = 0;
        /* one input: recommend is similar */
        rp3.alpha = 0.7;
        rp3.beta = 0.2;
        n = score_similar(&r, &w, &rp3, NULL, q, 4, NULL, a, sa);
        assert_int_equal(score_recommend(&r, &w, &rp3, NULL, &q, 1, NULL, 0, 4, NULL, b, sb), n);
        assert_memory_equal(a, b, sizeof *a * (size_t)n);
        assert_memory_equal(sa, sb, sizeof *sa * (size_t)n);
    }
    const struct score_params *all[] = {&cooc, &rp3, &pmi};
    for (int t = 0; t < 3; t++)
        assert_prep_changes_nothing(&r, &w, all[t]);
    cooc.pop_weight = -1.5;
    assert_prep_changes_nothing(&r, &w, &cooc);
    score_walk_deinit(&w);
    cooc_result_deinit(&r);
}

static void test_recommend(void **state)
{
    (void)state;
    struct cooc_result r;
    make(&r);
    struct score_walk w;
    assert_int_equal(score_walk_init(&w, &r), 0);
    struct score_params p;
    score_params_init(&p, SCORE_COOC);
    uint32_t idx[4];
    double sc[4];
    /* inputs 2 and 3 (repeated): candidates 0 (1 + 1) and 1 (2 + 1) */
    const uint32_t in[] = {2, 3, 2};
    assert_int_equal(score_recommend(&r, &w, &p, NULL, in, 3, NULL, 0, 4, NULL, idx, sc), 2);
    assert_int_equal(idx[0], 1);
    assert_true(sc[0] == 3);
    assert_int_equal(idx[1], 0);
    assert_true(sc[1] == 2);
    /* exclusions, and indices out of range there are ignored */
    const uint32_t ex[] = {1, 99};
    assert_int_equal(score_recommend(&r, &w, &p, NULL, in, 3, ex, 2, 4, NULL, idx, sc), 1);
    assert_int_equal(idx[0], 0);
    /* ties by the caller's rank: from input 3, items 0, 1 and 2 each
     * co-occur once */
    const uint32_t three[] = {3};
    const uint32_t tie[] = {3, 2, 1, 0}; /* reverse */
    assert_int_equal(score_recommend(&r, &w, &p, NULL, three, 1, NULL, 0, 4, tie, idx, sc), 3);
    assert_int_equal(idx[0], 2);
    assert_int_equal(idx[1], 1);
    assert_int_equal(idx[2], 0);
    score_walk_deinit(&w);
    cooc_result_deinit(&r);
}

static void test_errors(void **state)
{
    (void)state;
    struct cooc_result r;
    make(&r);
    struct score_walk w;
    assert_int_equal(score_walk_init(&w, &r), 0);
    struct score_params p;
    uint32_t idx[4];
    double sc[4];
    score_params_init(&p, SCORE_COOC);
    p.pop_weight = 2.5;
    assert_int_equal(score_params_check(&p), -EINVAL);
    assert_int_equal(score_similar(&r, &w, &p, NULL, 0, 4, NULL, idx, sc), -EINVAL);
    p.pop_weight = NAN;
    assert_int_equal(score_params_check(&p), -EINVAL);
    score_params_init(&p, SCORE_RP3);
    p.alpha = -0.1;
    assert_int_equal(score_params_check(&p), -EINVAL);
    p.alpha = 1;
    p.beta = 3;
    assert_int_equal(score_params_check(&p), -EINVAL);
    p.beta = 0;
    assert_int_equal(score_similar(&r, &w, &p, NULL, 4, 4, NULL, idx, sc), -EINVAL);
    assert_int_equal(score_similar(&r, NULL, &p, NULL, 0, 4, NULL, idx, sc), -EINVAL);
    const uint32_t bad[] = {7};
    assert_int_equal(score_recommend(&r, &w, &p, NULL, bad, 1, NULL, 0, 4, NULL, idx, sc), -EINVAL);
    /* a result without its groups (an imported table, a version-1 file) */
    free(r.group_ptr);
    free(r.group_items);
    r.group_ptr = NULL;
    r.group_items = NULL;
    struct score_walk none;
    assert_int_equal(score_walk_init(&none, &r), -ENODATA);
    assert_null(none.item_ptr);
    assert_int_equal(score_similar(&r, &w, &p, NULL, 0, 4, NULL, idx, sc), -ENODATA);
    struct score_prep prep = {0};
    assert_int_equal(score_prep_update(&prep, &r, &w, &p), -ENODATA);
    score_params_init(&p, SCORE_PMI); /* the other sources do not need them */
    assert_int_equal(score_similar(&r, NULL, &p, NULL, 0, 4, NULL, idx, sc), 3);
    score_walk_deinit(&w);
    cooc_result_deinit(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_kept), cmocka_unit_test(test_hand_checked),
        cmocka_unit_test(test_identities),  cmocka_unit_test(test_recommend),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
