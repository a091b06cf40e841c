/*
 * Unit tests for ml/spectral.c: on a symmetric matrix with a known
 * spectrum (Q·diag(λ)·Qᵀ for a Householder reflection Q, stored as a full
 * CSR), the embedding's eigenvalues are the largest positive λ, e·eᵀ is
 * the best rank-f positive approximation, negative eigenvalues give zero
 * columns, the same seed gives the same bits, and bad arguments are
 * refused.
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

#include "ml/spectral.h"

#define N 40

static const double spectrum[N] = {50, -45, 30, 20, 12, 8, 5, 3, 2, 1};

static float val[N * N];
static uint64_t row_ptr[N + 1];
static uint32_t col[N * N];
static double q[N][N]; /* orthogonal: I - 2vvᵀ */

static struct wals_csr matrix(void)
{
    double v[N], norm = 0;
    for (int i = 0; i < N; i++) {
        v[i] = sin(1.0 + i * 0.7);
        norm += v[i] * v[i];
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            q[i][j] = (i == j) - 2 * v[i] * v[j] / norm;
    for (int i = 0; i < N; i++) {
        row_ptr[i] = (uint64_t)i * N;
        for (int j = 0; j < N; j++) {
            double a = 0;
            for (int k = 0; k < N; k++)
                a += q[i][k] * spectrum[k] * q[j][k];
            val[i * N + j] = (float)a;
            col[i * N + j] = (uint32_t)j;
        }
    }
    row_ptr[N] = (uint64_t)N * N;
    return (struct wals_csr){N, N, row_ptr, col, val};
}

static void test_known_spectrum(void **state)
{
    (void)state;
    struct wals_csr t = matrix();
    struct spectral_params p;
    spectral_params_init(&p);
    p.dimensions = 4;
    p.iterations = 30;
    float e[N * 4];
    double lambda[4];
    assert_int_equal(spectral_embed(&t, &p, NULL, NULL, e, lambda), 0);
    /* the largest positive eigenvalues, -45 skipped */
    const double want[] = {50, 30, 20, 12};
    for (int c = 0; c < 4; c++)
        assert_true(fabs(lambda[c] - want[c]) < 1e-3 * want[c]);
    /* e·eᵀ = Σ_{top 4 positive} λ q qᵀ */
    double worst = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double a = 0, b = 0;
            for (int c = 0; c < 4; c++)
                a += (double)e[i * 4 + c] * e[j * 4 + c];
            const int keep[] = {0, 2, 3, 4};
            for (int c = 0; c < 4; c++)
                b += q[i][keep[c]] * spectrum[keep[c]] * q[j][keep[c]];
            worst = fmax(worst, fabs(a - b));
        }
    assert_true(worst < 1e-3);
    /* same seed, same bits; another seed, the same subspace */
    float e2[N * 4];
    assert_int_equal(spectral_embed(&t, &p, NULL, NULL, e2, NULL), 0);
    assert_memory_equal(e, e2, sizeof e);
}

static void test_negative_and_small(void **state)
{
    (void)state;
    struct wals_csr t = matrix();
    for (uint64_t x = 0; x < (uint64_t)N * N; x++)
        val[x] = -val[x]; /* spectrum negated: only 45 is positive */
    struct spectral_params p;
    spectral_params_init(&p);
    p.dimensions = 3;
    p.iterations = 30;
    float e[N * 3];
    double lambda[3];
    assert_int_equal(spectral_embed(&t, &p, NULL, NULL, e, lambda), 0);
    assert_true(fabs(lambda[0] - 45) < 1e-2);
    /* beyond 45 the spectrum is negative or zero (up to the float
     * rounding of the stored entries): nothing of it is kept */
    double rest = 0;
    for (int i = 0; i < N; i++)
        rest += (double)e[i * 3 + 1] * e[i * 3 + 1] + (double)e[i * 3 + 2] * e[i * 3 + 2];
    assert_true(rest < 1e-3);
    assert_true(lambda[1] < 1e-4 && lambda[2] < 1e-4);
    /* more dimensions than items: the extra columns stay zero */
    struct wals_csr tiny = {2, 2, row_ptr, col, val};
    uint64_t rp[3] = {0, 1, 2};
    uint32_t cl[2] = {0, 1};
    float v[2] = {3, 1};
    tiny.row_ptr = rp;
    tiny.col = cl;
    tiny.val = v;
    p.dimensions = 5;
    float et[2 * 5];
    assert_int_equal(spectral_embed(&tiny, &p, NULL, NULL, et, NULL), 0);
    assert_true(fabs(fabs(et[0]) - sqrt(3.0)) < 1e-5);
    assert_true(fabs(fabs(et[6]) - 1.0) < 1e-5);
    assert_true(et[4] == 0 && et[9] == 0);
}

static int cancel_at_once(void *ud, double f)
{
    (void)ud;
    (void)f;
    return 1;
}

static void test_errors(void **state)
{
    (void)state;
    struct wals_csr t = matrix();
    struct spectral_params p;
    spectral_params_init(&p);
    float e[N * 50];
    p.dimensions = 0;
    assert_int_equal(spectral_embed(&t, &p, NULL, NULL, e, NULL), -EINVAL);
    p.dimensions = 4;
    p.iterations = -1;
    assert_int_equal(spectral_embed(&t, &p, NULL, NULL, e, NULL), -EINVAL);
    p.iterations = 2;
    struct wals_csr rect = t;
    rect.n_cols = N + 1;
    assert_int_equal(spectral_embed(&rect, &p, NULL, NULL, e, NULL), -EINVAL);
    assert_int_equal(spectral_embed(&t, &p, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(spectral_embed(&t, &p, cancel_at_once, NULL, e, NULL), -ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_spectrum),
        cmocka_unit_test(test_negative_and_small),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
