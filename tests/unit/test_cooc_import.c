/*
 * Unit tests for imported co-occurrence tables (ml/cooc_import.h) and the
 * string table they are keyed by (base/strtab.h): the rows of a matrix
 * computed by cooc_compute, fed back in shuffled order with shuffled local
 * ids, must check clean and build the very same matrix (keys in key order,
 * rows sorted, diagonal, total), along both build paths (keys in the rows'
 * order or not); each kind of inconsistency is found and named; and the
 * in-place sort copes with one item that pairs with every other (a hub).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/strtab.h"
#include "ml/cooc.h"
#include "ml/cooc_import.h"

struct row {
    uint32_t a, b, cooc;
    double pmi;
};

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* Random groups over items 1..max_key (a hub item 1 in most groups). */
static void make_result(uint32_t n_groups, uint32_t max_key, struct cooc_result *res)
{
    uint64_t *off = malloc(sizeof *off * (n_groups + 1));
    uint32_t *items = malloc(sizeof *items * n_groups * 12);
    uint64_t m = 0;
    off[0] = 0;
    for (uint32_t g = 0; g < n_groups; g++) {
        uint32_t k = 2 + rnd(8);
        uint32_t set[12], ns = 0;
        if (rnd(10) < 8)
            set[ns++] = 1;
        while (ns < k) {
            uint32_t x = 1 + rnd(max_key), dup = 0;
            for (uint32_t i = 0; i < ns; i++)
                dup |= set[i] == x;
            if (!dup)
                set[ns++] = x;
        }
        for (uint32_t i = 1; i < ns; i++) /* sort */
            for (uint32_t j = i; j > 0 && set[j - 1] > set[j]; j--) {
                uint32_t t = set[j];
                set[j] = set[j - 1];
                set[j - 1] = t;
            }
        memcpy(items + m, set, sizeof *set * ns);
        m += ns;
        off[g + 1] = m;
    }
    struct cooc_groups gr = {n_groups, off, items, max_key};
    struct cooc_params p;
    cooc_params_init(&p);
    p.min_item_frequency = 3;
    assert_int_equal(cooc_compute(&gr, &p, NULL, NULL, res), 0);
    free(off);
    free(items);
}

/* The rows of res (dense indices remapped by perm[dense] = local), shuffled. */
static struct row *rows_of(const struct cooc_result *r, const uint32_t *perm, uint64_t *count)
{
    struct row *v = malloc(sizeof *v * r->nnz);
    uint64_t k = 0;
    for (uint32_t i = 0; i < r->n; i++)
        for (uint64_t e = r->row_ptr[i]; e < r->row_ptr[i + 1]; e++)
            v[k++] = (struct row){perm[i], perm[r->col[e]], r->cooc[e], cooc_pmi(r, i, e)};
    for (uint64_t i = k; i > 1; i--) {
        uint64_t j = rnd((uint32_t)i);
        struct row t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
    *count = k;
    return v;
}

static void feed(struct cooc_import *ci, const struct row *v, uint64_t n, int with_pmi)
{
    cooc_import_init(ci, 0);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(cooc_import_add(ci, v[i].a, v[i].b, v[i].cooc, with_pmi, v[i].pmi), 0);
}

static void assert_same(const struct cooc_result *x, const struct cooc_result *y)
{
    assert_int_equal(x->n, y->n);
    assert_int_equal(x->nnz, y->nnz);
    assert_int_equal(x->total, y->total);
    assert_memory_equal(x->keys, y->keys, sizeof *x->keys * x->n);
    assert_memory_equal(x->freq, y->freq, sizeof *x->freq * x->n);
    assert_memory_equal(x->row_ptr, y->row_ptr, sizeof *x->row_ptr * (x->n + 1));
    assert_memory_equal(x->col, y->col, sizeof *x->col * x->nnz);
    assert_memory_equal(x->cooc, y->cooc, sizeof *x->cooc * x->nnz);
}

static void roundtrip(int shuffle_locals, int with_pmi)
{
    struct cooc_result res = {0}, back = {0};
    make_result(3000, 400, &res);
    uint32_t n = res.n;
    uint32_t *perm = malloc(sizeof *perm * n), *keys = malloc(sizeof *keys * n);
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    if (shuffle_locals)
        for (uint32_t i = n; i > 1; i--) {
            uint32_t j = rnd(i), t = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = t;
        }
    for (uint32_t i = 0; i < n; i++)
        keys[perm[i]] = res.keys[i];
    uint64_t count;
    struct row *v = rows_of(&res, perm, &count);
    struct cooc_import ci;
    struct cooc_import_issue is;
    feed(&ci, v, count, with_pmi);
    assert_int_equal(cooc_import_check(&ci, COOC_IMPORT_PMI_TOLERANCE, &is), 0);
    assert_int_equal(ci.total, res.total);
    assert_int_equal(cooc_import_build(&ci, keys, 3, 100, &back), 0);
    assert_same(&res, &back);
    assert_int_equal(back.min_item_frequency, 3);
    cooc_import_deinit(&ci);
    cooc_result_deinit(&res);
    cooc_result_deinit(&back);
    free(v);
    free(perm);
    free(keys);
}

static void test_roundtrip_sorted_keys(void **state)
{
    roundtrip(0, 1);
}

static void test_roundtrip_shuffled(void **state)
{
    roundtrip(1, 1);
    roundtrip(1, 0);
}

/* Builds a small consistent table and applies one change; returns the issue. */
static int check_changed(void (*change)(struct row *v, uint64_t *n), struct cooc_import_issue *is)
{
    struct cooc_result res = {0};
    make_result(300, 40, &res);
    uint32_t *perm = malloc(sizeof *perm * res.n);
    for (uint32_t i = 0; i < res.n; i++)
        perm[i] = i;
    uint64_t n;
    struct row *v = rows_of(&res, perm, &n);
    v = realloc(v, sizeof *v * (n + 2));
    change(v, &n);
    struct cooc_import ci;
    cooc_import_init(&ci, 0);
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++)
        rc = cooc_import_add(&ci, v[i].a, v[i].b, v[i].cooc, 1, v[i].pmi);
    if (rc == 0)
        rc = cooc_import_check(&ci, COOC_IMPORT_PMI_TOLERANCE, is);
    cooc_import_deinit(&ci);
    cooc_result_deinit(&res);
    free(v);
    free(perm);
    return rc;
}

static uint64_t find_off(const struct row *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (v[i].a != v[i].b)
            return i;
    fail();
    return 0;
}

static uint64_t find_mirror(const struct row *v, uint64_t n, uint64_t i)
{
    for (uint64_t j = 0; j < n; j++)
        if (v[j].a == v[i].b && v[j].b == v[i].a)
            return j;
    fail();
    return 0;
}

static void drop_mirror(struct row *v, uint64_t *n)
{
    uint64_t j = find_mirror(v, *n, find_off(v, *n));
    v[j] = v[--*n];
}

static void cooc_differs(struct row *v, uint64_t *n)
{
    v[find_mirror(v, *n, find_off(v, *n))].cooc += 1;
}

static void duplicate(struct row *v, uint64_t *n)
{
    uint64_t i = find_off(v, *n);
    v[*n] = v[i];
    (*n)++;
}

static void drop_diagonal(struct row *v, uint64_t *n)
{
    uint64_t i = find_off(v, *n);
    for (uint64_t j = 0; j < *n; j++)
        if (v[j].a == v[i].a && v[j].b == v[i].a) {
            v[j] = v[--*n];
            return;
        }
    fail();
}

static void over_freq(struct row *v, uint64_t *n)
{
    uint64_t i = find_off(v, *n), j = find_mirror(v, *n, i);
    v[i].cooc = v[j].cooc = 1000000;
}

static void pmi_upper(struct row *v, uint64_t *n)
{
    for (uint64_t i = 0; i < *n; i++)
        v[i].pmi += v[i].a < v[i].b && i % 7 == 3 ? 0.01 : 0;
}

static void pmi_lower(struct row *v, uint64_t *n)
{
    uint64_t i;
    for (i = 0; i < *n && !(v[i].a > v[i].b); i++)
        ;
    v[i].pmi += 0.01;
}

static void pmi_ln(struct row *v, uint64_t *n)
{
    for (uint64_t i = 0; i < *n; i++)
        v[i].pmi *= log(2);
}

static void pmi_float32(struct row *v, uint64_t *n)
{
    for (uint64_t i = 0; i < *n; i++)
        v[i].pmi = (float)v[i].pmi;
}

static void test_problems(void **state)
{
    struct cooc_import_issue is;
    assert_int_equal(check_changed(drop_mirror, &is), -EDOM);
    assert_int_equal(is.problem, COOC_IMPORT_MISSING_MIRROR);
    assert_int_equal(check_changed(cooc_differs, &is), -EDOM);
    assert_int_equal(is.problem, COOC_IMPORT_COOC_MISMATCH);
    assert_int_not_equal(is.value1, is.value2);
    assert_int_equal(check_changed(duplicate, &is), -EDOM);
    assert_int_equal(is.problem, COOC_IMPORT_DUPLICATE);
    assert_int_equal(check_changed(drop_diagonal, &is), -EDOM);
    assert_int_equal(is.problem, COOC_IMPORT_MISSING_DIAGONAL);
    assert_int_equal(check_changed(over_freq, &is), -EDOM);
    assert_int_equal(is.problem, COOC_IMPORT_COOC_OVER_FREQ);
    assert_int_equal(check_changed(pmi_upper, &is), -EDOM);
    assert_int_equal(is.problem, COOC_IMPORT_PMI_MISMATCH);
    assert_int_equal(check_changed(pmi_lower, &is), -EDOM);
    assert_int_equal(is.problem, COOC_IMPORT_PMI_SUM_MISMATCH);
    assert_int_equal(check_changed(pmi_ln, &is), -EDOM);
    assert_int_equal(check_changed(pmi_float32, &is), 0); /* within the tolerance */

    struct cooc_import ci;
    cooc_import_init(&ci, 2);
    assert_int_equal(cooc_import_check(&ci, 1e-6, &is), -EDOM);
    assert_int_equal(is.problem, COOC_IMPORT_EMPTY);
    assert_int_equal(cooc_import_add(&ci, 0, 0, 0, 0, 0), -EINVAL);
    assert_int_equal(cooc_import_add(&ci, 0, 0, 2, 0, 0), 0);
    assert_int_equal(cooc_import_add(&ci, 0, 0, 2, 0, 0), -EEXIST);
    assert_int_equal(cooc_import_add(&ci, 1, 1, 2, 1, 0.5), -EPROTO);
    assert_int_equal(cooc_import_add(&ci, 1, 1, 2, 0, 0), 0);
    assert_int_equal(cooc_import_add(&ci, 0, 1, 2, 0, 0), -E2BIG);
    cooc_import_deinit(&ci);
}

static void test_build_refuses_bad_keys(void **state)
{
    struct cooc_import ci;
    struct cooc_import_issue is;
    struct cooc_result r;
    cooc_import_init(&ci, 0);
    assert_int_equal(cooc_import_add(&ci, 0, 0, 1, 0, 0), 0);
    assert_int_equal(cooc_import_add(&ci, 1, 1, 1, 0, 0), 0);
    assert_int_equal(cooc_import_check(&ci, 1e-6, &is), 0);
    uint32_t keys[2] = {5, 5};
    assert_int_equal(cooc_import_build(&ci, keys, 0, 0, &r), -EINVAL);
    cooc_import_deinit(&ci);
}

static void test_strtab(void **state)
{
    struct strtab t;
    strtab_init(&t, 5000);
    char buf[32];
    for (int i = 0; i < 5000; i++) {
        uint32_t idx;
        int added;
        int n = snprintf(buf, sizeof buf, "id-%d", i * 7919 % 100003);
        assert_int_equal(strtab_intern(&t, buf, (size_t)n, &idx, &added), 0);
        assert_int_equal(idx, (uint32_t)i);
        assert_true(added);
    }
    for (int i = 0; i < 5000; i++) {
        uint32_t idx;
        int added;
        int n = snprintf(buf, sizeof buf, "id-%d", i * 7919 % 100003);
        assert_int_equal(strtab_intern(&t, buf, (size_t)n, &idx, &added), 0);
        assert_int_equal(idx, (uint32_t)i);
        assert_false(added);
        assert_string_equal(strtab_str(&t, idx), buf);
        assert_int_equal(strtab_find(&t, buf, (size_t)n), i);
    }
    uint32_t idx;
    assert_int_equal(strtab_intern(&t, "new", 3, &idx, NULL), -E2BIG);
    assert_int_equal(strtab_find(&t, "new", 3), -1);
    assert_int_equal(strtab_intern(&t, "", 0, &idx, NULL), -E2BIG);
    strtab_deinit(&t);
    strtab_init(&t, 0);
    assert_int_equal(strtab_intern(&t, "a\0b", 3, &idx, NULL), 0);
    assert_int_equal(strtab_intern(&t, "a", 1, &idx, NULL), 0);
    assert_int_equal(idx, 1);
    strtab_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_sorted_keys),
        cmocka_unit_test(test_roundtrip_shuffled),
        cmocka_unit_test(test_problems),
        cmocka_unit_test(test_build_refuses_bad_keys),
        cmocka_unit_test(test_strtab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
