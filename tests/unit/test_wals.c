/*
 * Unit tests for ml/wals: implicit WALS (Hu, Koren, Volinsky 2008) with
 * the Cholesky and CG (Takács et al. 2011) solvers. Everything the trainer
 * computes is re-derived here independently in double on small random
 * symmetric problems: the per-row normal equations, the O(n²) loss over
 * all cells, plus determinism, threads, early stop, cancel, edge cases.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ml/wals.h"
#include "ml/wals_internal.h"

struct prob {
    uint32_t n;
    uint64_t *row_ptr;
    uint32_t *col;
    float *val;
    double *dense; /* n × n, r (0 where unobserved) */
    char *mask;    /* n × n, 1 where observed */
    struct wals_csr csr;
};

static uint64_t rng_state;

static double rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

/* Random symmetric problem: density d, diagonal observed, ~15% negative
 * values, and the last `empty` rows/columns without observations. */
static void prob_make(struct prob *p, uint32_t n, double d, uint32_t empty, uint64_t seed)
{
    memset(p, 0, sizeof(*p));
    rng_state = seed;
    p->n = n;
    p->dense = calloc((size_t)n * n + 1, sizeof(double));
    p->mask = calloc((size_t)n * n + 1, 1);
    assert_non_null(p->dense);
    assert_non_null(p->mask);
    for (uint32_t i = 0; i + empty < n; i++) {
        for (uint32_t j = i; j + empty < n; j++) {
            if (i != j && rnd() >= d)
                continue;
            double v = rnd() < 0.15 ? -3.0 * rnd() : 0.1 + 8.0 * rnd() * rnd();
            p->dense[(size_t)i * n + j] = p->dense[(size_t)j * n + i] = (float)v;
            p->mask[(size_t)i * n + j] = p->mask[(size_t)j * n + i] = 1;
        }
    }
    uint64_t nnz = 0;
    for (size_t k = 0; k < (size_t)n * n; k++)
        nnz += p->mask[k];
    p->row_ptr = calloc((size_t)n + 1, sizeof(uint64_t));
    p->col = calloc(nnz + 1, sizeof(uint32_t));
    p->val = calloc(nnz + 1, sizeof(float));
    uint64_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++) {
            if (p->mask[(size_t)i * n + j]) {
                p->col[k] = j;
                p->val[k++] = (float)p->dense[(size_t)i * n + j];
            }
        }
        p->row_ptr[i + 1] = k;
    }
    p->csr = (struct wals_csr){n, n, p->row_ptr, p->col, p->val};
}

static void prob_deinit(struct prob *p)
{
    free(p->row_ptr);
    free(p->col);
    free(p->val);
    free(p->dense);
    free(p->mask);
}

/* L over all n² cells, in double, straight from the definition. */
static double brute_loss(const struct prob *p, const float *x, const float *y, size_t stride, int f,
                         double alpha, double lambda)
{
    double l = 0.0;
    for (uint32_t i = 0; i < p->n; i++) {
        for (uint32_t j = 0; j < p->n; j++) {
            double s = 0.0;
            for (int a = 0; a < f; a++)
                s += (double)x[i * stride + a] * y[j * stride + a];
            double r = p->dense[(size_t)i * p->n + j];
            int obs = p->mask[(size_t)i * p->n + j];
            double c = obs ? 1.0 + alpha * fabs(r) : 1.0;
            double pr = obs && r > 0.0 ? 1.0 : 0.0;
            l += c * (pr - s) * (pr - s);
        }
    }
    for (uint32_t i = 0; i < p->n; i++)
        for (int a = 0; a < f; a++)
            l += lambda * ((double)x[i * stride + a] * x[i * stride + a] +
                           (double)y[i * stride + a] * y[i * stride + a]);
    return l;
}

/* Max over rows of ‖A x_i − b_i‖ / ‖b_i‖ (absolute ‖A x_i‖ when b_i = 0)
 * for the normal equations of the side just solved (x) against y. */
static double max_residual(const struct prob *p, const float *x, const float *y, size_t stride,
                           int f, double alpha, double lambda)
{
    double worst = 0.0;
    double *a = malloc((size_t)f * f * sizeof(double)), *b = malloc((size_t)f * sizeof(double));
    for (uint32_t i = 0; i < p->n; i++) {
        for (int u = 0; u < f; u++) {
            b[u] = 0.0;
            for (int v = 0; v < f; v++)
                a[u * f + v] = u == v ? lambda : 0.0;
        }
        for (uint32_t j = 0; j < p->n; j++) {
            const float *yj = y + j * stride;
            double r = p->dense[(size_t)i * p->n + j];
            int obs = p->mask[(size_t)i * p->n + j];
            double c = obs ? 1.0 + alpha * fabs(r) : 1.0;
            double pr = obs && r > 0.0 ? 1.0 : 0.0;
            for (int u = 0; u < f; u++) {
                b[u] += c * pr * yj[u];
                for (int v = 0; v < f; v++)
                    a[u * f + v] += c * (double)yj[u] * yj[v];
            }
        }
        double num = 0.0, den = 0.0;
        for (int u = 0; u < f; u++) {
            double t = -b[u];
            for (int v = 0; v < f; v++)
                t += a[u * f + v] * x[i * stride + v];
            num += t * t;
            den += b[u] * b[u];
        }
        double res = den > 0.0 ? sqrt(num / den) : sqrt(num);
        if (res > worst)
            worst = res;
    }
    free(a);
    free(b);
    return worst;
}

struct watch {
    const struct prob *p;
    const struct wals_params *params;
    int half_steps;
    int iterations;
    int ticks;
    double last_half_loss;
    int increases;
    double max_res;
    double max_loss_err; /* relative, reported loss vs brute force */
    int cancel_at;       /* cancel on this half-step (-1 never) */
};

static int watch_cb(void *ud, const struct wals_progress *pr)
{
    struct watch *w = ud;
    const int f = w->params->dimensions;
    assert_true(pr->fraction >= 0.0 && pr->fraction <= 1.0);
    if (pr->event == WALS_EVENT_TICK) {
        w->ticks++;
        return 0;
    }
    if (pr->event == WALS_EVENT_HALF_STEP) {
        double l =
            brute_loss(w->p, pr->x, pr->y, pr->stride, f, w->params->alpha, w->params->l2_reg);
        if (w->half_steps > 0 && l > w->last_half_loss * (1.0 + 1e-6))
            w->increases++;
        w->last_half_loss = l;
        if (w->params->solver == WALS_SOLVER_CHOLESKY) {
            /* Side 0 solved X against Y; side 1 solved Y against X (R symmetric). */
            double res = pr->half_step == 0 ? max_residual(w->p, pr->x, pr->y, pr->stride, f,
                                                           w->params->alpha, w->params->l2_reg)
                                            : max_residual(w->p, pr->y, pr->x, pr->stride, f,
                                                           w->params->alpha, w->params->l2_reg);
            if (res > w->max_res)
                w->max_res = res;
        }
        w->half_steps++;
        return w->cancel_at >= 0 && w->half_steps > w->cancel_at;
    }
    if (pr->event == WALS_EVENT_ITERATION) {
        double l =
            brute_loss(w->p, pr->x, pr->y, pr->stride, f, w->params->alpha, w->params->l2_reg);
        double e = fabs(pr->loss - l) / l;
        if (e > w->max_loss_err)
            w->max_loss_err = e;
        w->iterations++;
    }
    return 0;
}

static void small_params(struct wals_params *p, enum wals_solver s)
{
    wals_params_init(p);
    p->dimensions = 8;
    p->max_iterations = 6;
    p->early_stop = false;
    p->seed = 7;
    p->solver = s;
    p->threads = 2;
}

static void test_defaults(void **state)
{
    (void)state;
    struct wals_params p;
    enum wals_solver s;
    wals_params_init(&p);
    assert_int_equal(p.dimensions, 50);
    assert_true(p.alpha == 1.0 && p.l2_reg == 1.0);
    assert_int_equal(p.max_iterations, 20);
    assert_true(p.early_stop);
    assert_true(p.min_rel_progress == 0.01);
    assert_int_equal(p.cg_steps, 3);
    assert_int_equal(wals_solver_parse("cg", &s), 0);
    assert_int_equal(s, WALS_SOLVER_CG);
    assert_int_equal(wals_solver_parse("cholesky", &s), 0);
    assert_int_equal(s, WALS_SOLVER_CHOLESKY);
    assert_int_equal(wals_solver_parse("lu", &s), -EINVAL);
    assert_string_equal(wals_solver_name(WALS_SOLVER_CG), "cg");
}

static void test_normal_equations_cholesky(void **state)
{
    (void)state;
    struct prob p;
    struct wals_params params;
    struct wals_model m;
    prob_make(&p, 60, 0.2, 2, 11);
    small_params(&params, WALS_SOLVER_CHOLESKY);
    params.alpha = 0.7;
    params.l2_reg = 0.3;
    struct watch w = {.p = &p, .params = &params, .cancel_at = -1};
    assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, watch_cb, &w, &m), 0);
    assert_int_equal(w.half_steps, 12);
    assert_int_equal(w.iterations, 6);
    assert_true(w.max_res < 1e-4);
    assert_int_equal(w.increases, 0);
    assert_true(w.max_loss_err < 1e-6);
    /* Rows without observations: b = 0, so the exact solution is 0. */
    for (int a = 0; a < params.dimensions; a++) {
        assert_true(m.x[59 * 8 + a] == 0.0f);
        assert_true(m.y[58 * 8 + a] == 0.0f);
    }
    wals_model_deinit(&m);
    prob_deinit(&p);
}

static void test_loss_monotone_cg(void **state)
{
    (void)state;
    struct prob p;
    struct wals_params params;
    struct wals_model m;
    prob_make(&p, 60, 0.25, 1, 12);
    small_params(&params, WALS_SOLVER_CG);
    params.max_iterations = 10;
    struct watch w = {.p = &p, .params = &params, .cancel_at = -1};
    assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, watch_cb, &w, &m), 0);
    assert_int_equal(w.half_steps, 20);
    assert_int_equal(w.increases, 0);
    assert_true(w.max_loss_err < 1e-6);
    for (int k = 1; k < m.iterations; k++)
        assert_true(m.loss[k] <= m.loss[k - 1] * (1.0 + 1e-6));
    wals_model_deinit(&m);
    prob_deinit(&p);
}

static void test_loss_function(void **state)
{
    (void)state;
    struct prob p;
    prob_make(&p, 60, 0.3, 0, 13);
    const int f = 8;
    float *x = malloc(60 * 11 * sizeof(float)), *y = malloc(60 * 11 * sizeof(float));
    for (int k = 0; k < 60 * 11; k++) {
        x[k] = (float)(rnd() - 0.4);
        y[k] = (float)(rnd() - 0.4);
    }
    /* Odd stride with garbage padding: wals_loss must use only f floats. */
    double l = wals_loss(&p.csr, x, y, 11, f, 1.3, 0.5);
    double b = brute_loss(&p, x, y, 11, f, 1.3, 0.5);
    assert_true(fabs(l - b) / b < 1e-6);
    assert_true(isnan(wals_loss(&p.csr, x, y, 4, f, 1.0, 1.0)));
    free(x);
    free(y);
    prob_deinit(&p);
}

static void test_cg_converges_to_cholesky(void **state)
{
    (void)state;
    struct prob p;
    struct wals_params pc, pg;
    struct wals_model mc, mg;
    prob_make(&p, 60, 0.2, 1, 14);
    small_params(&pc, WALS_SOLVER_CHOLESKY);
    small_params(&pg, WALS_SOLVER_CG);
    pc.max_iterations = pg.max_iterations = 2;
    pg.cg_steps = 60;
    assert_int_equal(wals_train(&p.csr, NULL, &pc, NULL, NULL, NULL, NULL, &mc), 0);
    assert_int_equal(wals_train(&p.csr, NULL, &pg, NULL, NULL, NULL, NULL, &mg), 0);
    double num = 0.0, den = 0.0;
    for (int k = 0; k < 60 * 8; k++) {
        num += (double)(mc.x[k] - mg.x[k]) * (mc.x[k] - mg.x[k]) +
               (double)(mc.y[k] - mg.y[k]) * (mc.y[k] - mg.y[k]);
        den += (double)mc.x[k] * mc.x[k] + (double)mc.y[k] * mc.y[k];
    }
    assert_true(sqrt(num / den) < 1e-3);
    assert_true(fabs(mc.loss[1] - mg.loss[1]) / mc.loss[1] < 1e-5);
    wals_model_deinit(&mc);
    wals_model_deinit(&mg);
    prob_deinit(&p);
}

static void same_model(const struct wals_model *a, const struct wals_model *b)
{
    assert_int_equal(a->iterations, b->iterations);
    size_t nx = (size_t)a->n_rows * a->dimensions, ny = (size_t)a->n_cols * a->dimensions;
    assert_memory_equal(a->x, b->x, nx * sizeof(float));
    assert_memory_equal(a->y, b->y, ny * sizeof(float));
    assert_memory_equal(a->loss, b->loss, (size_t)a->iterations * sizeof(double));
}

static void test_determinism(void **state)
{
    (void)state;
    /* Big enough for several chunks per half-step, so threads matter. */
    struct prob p;
    prob_make(&p, 1500, 0.03, 3, 15);
    for (int s = 0; s < 2; s++) {
        struct wals_params params;
        struct wals_model m1, m2, m3, m4;
        small_params(&params, s ? WALS_SOLVER_CHOLESKY : WALS_SOLVER_CG);
        params.dimensions = 12;
        params.max_iterations = 3;
        params.threads = 1;
        assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, NULL, NULL, &m1), 0);
        assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, NULL, NULL, &m2), 0);
        same_model(&m1, &m2);
        params.threads = 2;
        assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, NULL, NULL, &m3), 0);
        same_model(&m1, &m3);
        params.threads = 3;
        params.seed = 8;
        assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, NULL, NULL, &m4), 0);
        assert_memory_not_equal(m1.x, m4.x, 12 * sizeof(float));
        wals_model_deinit(&m1);
        wals_model_deinit(&m2);
        wals_model_deinit(&m3);
        wals_model_deinit(&m4);
    }
    prob_deinit(&p);
}

static void test_initial_factors(void **state)
{
    (void)state;
    struct prob p;
    struct wals_params params;
    struct wals_model m1, m2;
    prob_make(&p, 40, 0.3, 0, 16);
    small_params(&params, WALS_SOLVER_CHOLESKY);
    float *x0 = malloc(40 * 8 * sizeof(float)), *y0 = malloc(40 * 8 * sizeof(float));
    for (int k = 0; k < 40 * 8; k++) {
        x0[k] = (float)(0.1 * rnd());
        y0[k] = (float)(0.1 * rnd());
    }
    assert_int_equal(wals_train(&p.csr, NULL, &params, x0, y0, NULL, NULL, &m1), 0);
    params.seed = 999; /* ignored when factors are given */
    assert_int_equal(wals_train(&p.csr, NULL, &params, x0, y0, NULL, NULL, &m2), 0);
    same_model(&m1, &m2);
    wals_model_deinit(&m2);
    assert_int_equal(wals_train(&p.csr, NULL, &params, x0, NULL, NULL, NULL, &m2), -EINVAL);
    wals_model_deinit(&m1);
    free(x0);
    free(y0);
    prob_deinit(&p);
}

static void test_early_stop(void **state)
{
    (void)state;
    struct prob p;
    struct wals_params params;
    struct wals_model m;
    prob_make(&p, 60, 0.2, 0, 17);
    small_params(&params, WALS_SOLVER_CHOLESKY);
    params.max_iterations = 100;
    params.early_stop = true;
    params.min_rel_progress = 0.01;
    assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, NULL, NULL, &m), 0);
    assert_true(m.early_stopped);
    assert_true(m.iterations >= 2 && m.iterations < 100);
    int k = m.iterations - 1;
    assert_true((m.loss[k - 1] - m.loss[k]) / m.loss[k - 1] < 0.01);
    for (int j = 1; j < k; j++)
        assert_true((m.loss[j - 1] - m.loss[j]) / m.loss[j - 1] >= 0.01);
    wals_model_deinit(&m);
    params.early_stop = false;
    params.max_iterations = 7;
    assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, NULL, NULL, &m), 0);
    assert_false(m.early_stopped);
    assert_int_equal(m.iterations, 7);
    wals_model_deinit(&m);
    prob_deinit(&p);
}

static int cancel_now(void *ud, const struct wals_progress *pr)
{
    (void)pr;
    int *calls = ud;
    return ++*calls >= 1;
}

static void test_cancel(void **state)
{
    (void)state;
    struct prob p;
    struct wals_params params;
    struct wals_model m;
    prob_make(&p, 60, 0.2, 0, 18);
    for (int s = 0; s < 2; s++) {
        small_params(&params, s ? WALS_SOLVER_CHOLESKY : WALS_SOLVER_CG);
        struct watch w = {.p = &p, .params = &params, .cancel_at = 3};
        assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, watch_cb, &w, &m),
                         -ECANCELED);
        assert_int_equal(w.half_steps, 4);
        assert_null(m.x);
        assert_null(m.loss);
        int calls = 0;
        assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, cancel_now, &calls, &m),
                         -ECANCELED);
        assert_int_equal(calls, 1);
    }
    prob_deinit(&p);
}

static void test_negative_only(void **state)
{
    (void)state;
    /* All r < 0: p = 0 everywhere, so the exact optimum is X = Y = 0 and
     * Cholesky reaches it in one half-step each; c = 1 + α|r| only weighs. */
    uint64_t rp[4] = {0, 2, 3, 5};
    uint32_t col[5] = {0, 2, 1, 0, 2};
    float val[5] = {-1.0f, -2.5f, -0.5f, -2.5f, -4.0f};
    struct wals_csr r = {3, 3, rp, col, val};
    struct wals_params params;
    struct wals_model m;
    small_params(&params, WALS_SOLVER_CHOLESKY);
    params.max_iterations = 2;
    assert_int_equal(wals_train(&r, NULL, &params, NULL, NULL, NULL, NULL, &m), 0);
    for (int k = 0; k < 3 * 8; k++)
        assert_true(m.x[k] == 0.0f && m.y[k] == 0.0f);
    assert_true(m.loss[1] == 0.0);
    wals_model_deinit(&m);

    /* One positive and one negative cell in a 1 × 2 matrix (rt given):
     * compare with brute-force normal equations by hand. */
    uint64_t rp1[2] = {0, 2};
    uint32_t col1[2] = {0, 1};
    float val1[2] = {2.0f, -3.0f};
    uint64_t rpt[3] = {0, 1, 2};
    uint32_t colt[2] = {0, 0};
    float valt[2] = {2.0f, -3.0f};
    struct wals_csr r1 = {1, 2, rp1, col1, val1}, r1t = {2, 1, rpt, colt, valt};
    params.dimensions = 1;
    params.alpha = 0.5;
    params.l2_reg = 0.25;
    params.max_iterations = 1;
    float x0[1] = {0.3f}, y0[2] = {0.5f, -0.2f};
    assert_int_equal(wals_train(&r1, NULL, &params, x0, y0, NULL, NULL, &m), -EINVAL);
    assert_int_equal(wals_train(&r1, &r1t, &params, x0, y0, NULL, NULL, &m), 0);
    /* X half-step: c = (2, 2.5), p = (1, 0):
     * x = c1·y1 / (c1·y1² + c2·y2² + λ) */
    double y1 = 0.5, y2 = -0.2;
    double x = 2.0 * y1 / (2.0 * y1 * y1 + 2.5 * y2 * y2 + 0.25);
    /* Y half-step: y1 = c1·x/(c1 x² + λ), y2 = 0 (p = 0). */
    double ny1 = 2.0 * x / (2.0 * x * x + 0.25);
    assert_true(fabs(m.x[0] - x) < 1e-6);
    assert_true(fabs(m.y[0] - ny1) < 1e-6);
    assert_true(fabs(m.y[1]) < 1e-7);
    double loss = 2.0 * (1 - x * ny1) * (1 - x * ny1) + 0.25 * (x * x + ny1 * ny1);
    assert_true(fabs(m.loss[0] - loss) / loss < 1e-6);
    wals_model_deinit(&m);
}

static void test_embeddings(void **state)
{
    (void)state;
    struct prob p;
    struct wals_params params;
    struct wals_model m;
    prob_make(&p, 30, 0.3, 0, 19);
    small_params(&params, WALS_SOLVER_CG);
    assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, NULL, NULL, &m), 0);
    float *e = malloc(30 * 8 * sizeof(float));
    assert_int_equal(wals_model_embeddings(&m, e), 0);
    for (int k = 0; k < 30 * 8; k++)
        assert_true(e[k] == m.x[k] + m.y[k]);
    assert_int_equal(wals_model_embeddings(NULL, e), -EINVAL);
    free(e);
    wals_model_deinit(&m);
    wals_model_deinit(&m); /* zeroed: no-op */
    wals_model_deinit(NULL);
    prob_deinit(&p);
}

static void test_empty_and_invalid(void **state)
{
    (void)state;
    struct wals_params params;
    struct wals_model m;
    uint64_t rp0[1] = {0};
    struct wals_csr empty = {0, 0, rp0, NULL, NULL};
    for (int s = 0; s < 2; s++) {
        small_params(&params, s ? WALS_SOLVER_CHOLESKY : WALS_SOLVER_CG);
        params.max_iterations = 3;
        assert_int_equal(wals_train(&empty, NULL, &params, NULL, NULL, NULL, NULL, &m), 0);
        assert_int_equal(m.n_rows, 0);
        assert_int_equal(m.iterations, 3);
        assert_true(m.loss[2] == 0.0);
        wals_model_deinit(&m);
    }

    /* Rows with no observations at all (a 4 × 4 zero matrix). */
    uint64_t rpz[5] = {0, 0, 0, 0, 0};
    struct wals_csr zero = {4, 4, rpz, NULL, NULL};
    small_params(&params, WALS_SOLVER_CG);
    assert_int_equal(wals_train(&zero, NULL, &params, NULL, NULL, NULL, NULL, &m), 0);
    assert_int_equal(m.n_rows, 4);
    wals_model_deinit(&m);

    /* Invalid inputs. */
    uint64_t rp[3] = {0, 1, 2};
    uint32_t col[2] = {0, 5};
    float val[2] = {1.0f, 1.0f};
    struct wals_csr bad = {2, 2, rp, col, val};
    assert_int_equal(wals_train(&bad, NULL, &params, NULL, NULL, NULL, NULL, &m), -EINVAL);
    col[1] = 1;
    val[1] = NAN;
    assert_int_equal(wals_train(&bad, NULL, &params, NULL, NULL, NULL, NULL, &m), -EINVAL);
    val[1] = 1.0f;
    uint64_t rpd[3] = {0, 2, 1};
    struct wals_csr dec = {2, 2, rpd, col, val};
    assert_int_equal(wals_train(&dec, NULL, &params, NULL, NULL, NULL, NULL, &m), -EINVAL);
    struct wals_csr ok = {2, 2, rp, col, val};
    params.dimensions = 0;
    assert_int_equal(wals_train(&ok, NULL, &params, NULL, NULL, NULL, NULL, &m), -EINVAL);
    small_params(&params, WALS_SOLVER_CG);
    params.threads = 0;
    assert_int_equal(wals_train(&ok, NULL, &params, NULL, NULL, NULL, NULL, &m), -EINVAL);
    small_params(&params, WALS_SOLVER_CG);
    params.alpha = -1.0;
    assert_int_equal(wals_train(&ok, NULL, &params, NULL, NULL, NULL, NULL, &m), -EINVAL);
    small_params(&params, WALS_SOLVER_CG);
    assert_int_equal(wals_train(NULL, NULL, &params, NULL, NULL, NULL, NULL, &m), -EINVAL);
    assert_int_equal(wals_train(&ok, NULL, &params, NULL, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(wals_train(&ok, NULL, &params, NULL, NULL, NULL, NULL, &m), 0);
    wals_model_deinit(&m);
}

static void test_dims_variants(void **state)
{
    (void)state;
    /* Strides 8..72 cover every AVX2 kernel width and the generic path. */
    struct prob p;
    prob_make(&p, 50, 0.3, 1, 20);
    int dims[] = {1, 7, 16, 33, 50, 64, 70};
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        for (int s = 0; s < 2; s++) {
            struct wals_params params;
            struct wals_model m;
            small_params(&params, s ? WALS_SOLVER_CHOLESKY : WALS_SOLVER_CG);
            params.dimensions = dims[d];
            params.max_iterations = 3;
            struct watch w = {.p = &p, .params = &params, .cancel_at = -1};
            assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, watch_cb, &w, &m), 0);
            assert_int_equal(w.increases, 0);
            assert_true(w.max_loss_err < 1e-6);
            if (s)
                assert_true(w.max_res < 1e-4);
            wals_model_deinit(&m);
        }
    }
    prob_deinit(&p);
}

/* Dimensions above 64 run the wide kernels (ml/wals_wide.c) and, for
 * Cholesky, LAPACK's dpotrf: strides 72..136, not multiples of 64, f both a
 * multiple of 8 and not. Checked end to end against the double references
 * above: normal equations (Cholesky), loss never increasing and the
 * reported loss (both solvers), CG with many steps reaching the Cholesky
 * solution, and thread-count independence. */
static void test_wide_dims(void **state)
{
    (void)state;
    struct prob p;
    prob_make(&p, 40, 0.35, 1, 21);
    int dims[] = {65, 72, 100, 128, 130};
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        struct wals_params pc, pg;
        struct wals_model mc, mg;
        small_params(&pc, WALS_SOLVER_CHOLESKY);
        small_params(&pg, WALS_SOLVER_CG);
        pc.dimensions = pg.dimensions = dims[d];
        pc.max_iterations = pg.max_iterations = 2;
        struct watch wc = {.p = &p, .params = &pc, .cancel_at = -1};
        struct watch wg = {.p = &p, .params = &pg, .cancel_at = -1};
        assert_int_equal(wals_train(&p.csr, NULL, &pc, NULL, NULL, watch_cb, &wc, &mc), 0);
        assert_int_equal(wals_train(&p.csr, NULL, &pg, NULL, NULL, watch_cb, &wg, &mg), 0);
        assert_int_equal(wc.increases, 0);
        assert_int_equal(wg.increases, 0);
        assert_true(wc.max_res < 1e-4);
        assert_true(wc.max_loss_err < 1e-6);
        assert_true(wg.max_loss_err < 1e-6);
        wals_model_deinit(&mg);

        /* Enough CG steps to solve each row: the Cholesky factors. */
        pg.cg_steps = 60;
        assert_int_equal(wals_train(&p.csr, NULL, &pg, NULL, NULL, NULL, NULL, &mg), 0);
        const size_t n = (size_t)p.n * (size_t)dims[d];
        double num = 0.0, den = 0.0;
        for (size_t k = 0; k < n; k++) {
            num += (double)(mc.x[k] - mg.x[k]) * (mc.x[k] - mg.x[k]) +
                   (double)(mc.y[k] - mg.y[k]) * (mc.y[k] - mg.y[k]);
            den += (double)mc.x[k] * mc.x[k] + (double)mc.y[k] * mc.y[k];
        }
        assert_true(sqrt(num / den) < 1e-3);
        assert_true(fabs(mc.loss[1] - mg.loss[1]) / mc.loss[1] < 1e-5);
        wals_model_deinit(&mc);
        wals_model_deinit(&mg);
    }
    prob_deinit(&p);

    /* Several chunks per half-step; 1 and 3 threads give the same bits. */
    prob_make(&p, 1200, 0.03, 3, 22);
    for (int s = 0; s < 2; s++) {
        struct wals_params params;
        struct wals_model m1, m3;
        small_params(&params, s ? WALS_SOLVER_CHOLESKY : WALS_SOLVER_CG);
        params.dimensions = 100;
        params.max_iterations = 1;
        params.threads = 1;
        assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, NULL, NULL, &m1), 0);
        params.threads = 3;
        assert_int_equal(wals_train(&p.csr, NULL, &params, NULL, NULL, NULL, NULL, &m3), 0);
        same_model(&m1, &m3);
        wals_model_deinit(&m1);
        wals_model_deinit(&m3);
    }
    prob_deinit(&p);
}

#if defined(__AVX2__) && defined(__FMA__)
/* |got − want| within tol of the scale of the terms summed (float rounding). */
static void near(double got, double want, double scale)
{
    if (!(fabs(got - want) <= 1e-5 * (scale + 1e-30)))
        fail_msg("got %.9g, want %.9g (scale %.3g)", got, want, scale);
}

/* The wide kernels one by one against plain double loops, for strides
 * 72, 104, 136 (f = 65, 100, 130, zero padding) and row counts that leave
 * every remainder of the groups of 4. */
static void test_wide_kernels(void **state)
{
    (void)state;
    const int fs[] = {65, 100, 130};
    const size_t ms[] = {0, 1, 3, 4, 5, 7, 13};
    rng_state = 23;
    for (size_t fi = 0; fi < sizeof(fs) / sizeof(fs[0]); fi++) {
        const int f = fs[fi];
        const size_t st = ((size_t)f + 7) / 8 * 8;
        const uint32_t n_fac = 17;
        float *fac = calloc(n_fac * st, sizeof(float)), *z = calloc(13 * st + 1, sizeof(float));
        float *zref = calloc(13 * st + 1, sizeof(float)), *v = calloc(st, sizeof(float));
        float *acc = calloc(st, sizeof(float)), *dots = calloc(st, sizeof(float));
        float *g = calloc(st * st, sizeof(float));
        double *ref = calloc(st, sizeof(double)), *scale = calloc(st, sizeof(double));
        uint32_t col[13];
        float val[13];
        for (uint32_t j = 0; j < n_fac; j++)
            for (int a = 0; a < f; a++)
                fac[j * st + a] = (float)(rnd() - 0.5);
        for (int a = 0; a < f; a++)
            v[a] = (float)(rnd() - 0.5);
        for (int a = 0; a < f; a++)
            for (int b = a; b < f; b++)
                g[a * st + b] = g[b * st + a] = (float)(rnd() - 0.5);
        for (int k = 0; k < 13; k++) {
            col[k] = (uint32_t)(rnd() * n_fac);
            val[k] = rnd() < 0.3 ? -(float)(3.0 * rnd()) : (float)(0.1 + 5.0 * rnd());
        }
        const float alpha = 0.8f;

        /* gemv: out = G v */
        wals__wide_gemv(g, v, acc, st, f);
        for (size_t a = 0; a < st; a++) {
            double s = 0.0, sc = 0.0;
            for (int b = 0; b < f; b++) {
                s += (double)g[a * st + b] * v[b];
                sc += fabs((double)g[a * st + b] * v[b]);
            }
            near(acc[a], s, sc);
        }

        for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++) {
            const size_t m = ms[mi];
            /* gather: z_k = sqrt(α|r|) y_k, b += c p y_k (b starts non-zero) */
            for (size_t a = 0; a < st; a++) {
                acc[a] = a < (size_t)f ? (float)(rnd() - 0.5) : 0.0f;
                ref[a] = acc[a];
                scale[a] = fabs(ref[a]);
            }
            wals__wide_gather(col, val, m, fac, st, alpha, z, acc);
            for (size_t k = 0; k < m; k++) {
                const double w = alpha * fabs((double)val[k]);
                const double cp = val[k] > 0.0f ? 1.0 + w : 0.0;
                for (size_t a = 0; a < st; a++) {
                    const double y = fac[col[k] * st + a];
                    zref[k * st + a] = (float)(sqrt(w) * y);
                    near(z[k * st + a], sqrt(w) * y, fabs(sqrt(w) * y));
                    ref[a] += cp * y;
                    scale[a] += fabs(cp * y);
                }
            }
            for (size_t a = 0; a < st; a++)
                near(acc[a], ref[a], scale[a]);

            /* dots and zpass over the gathered rows */
            wals__wide_dots(z, m, st, v, dots);
            for (size_t a = 0; a < st; a++) {
                acc[a] = a < (size_t)f ? (float)(rnd() - 0.5) : 0.0f;
                ref[a] = acc[a];
                scale[a] = fabs(ref[a]);
            }
            wals__wide_zpass(z, m, st, v, acc);
            for (size_t k = 0; k < m; k++) {
                double d = 0.0, sc = 0.0;
                for (size_t a = 0; a < st; a++) {
                    d += (double)zref[k * st + a] * v[a];
                    sc += fabs((double)zref[k * st + a] * v[a]);
                }
                near(dots[k], d, sc);
                for (size_t a = 0; a < st; a++) {
                    ref[a] += d * zref[k * st + a];
                    scale[a] += sc * fabs((double)zref[k * st + a]);
                }
            }
            for (size_t a = 0; a < st; a++)
                near(acc[a], ref[a], scale[a]);

            /* sparse_pass, both forms, gathering on the fly */
            for (int resid = 0; resid < 2; resid++) {
                for (size_t a = 0; a < st; a++) {
                    acc[a] = a < (size_t)f ? (float)(rnd() - 0.5) : 0.0f;
                    ref[a] = acc[a];
                    scale[a] = fabs(ref[a]);
                }
                wals__wide_sparse_pass(resid, col, val, m, fac, st, alpha, v, acc);
                for (size_t k = 0; k < m; k++) {
                    const float *y = fac + col[k] * st;
                    double d = 0.0, sc = 0.0;
                    for (size_t a = 0; a < st; a++) {
                        d += (double)y[a] * v[a];
                        sc += fabs((double)y[a] * v[a]);
                    }
                    const double w = alpha * fabs((double)val[k]);
                    const double cp = val[k] > 0.0f ? 1.0 + w : 0.0;
                    const double coef = resid ? cp - w * d : w * d;
                    const double csc = resid ? cp + w * sc : w * sc;
                    for (size_t a = 0; a < st; a++) {
                        ref[a] += coef * y[a];
                        scale[a] += csc * fabs((double)y[a]);
                    }
                }
                for (size_t a = 0; a < st; a++)
                    near(acc[a], ref[a], scale[a]);
            }
        }
        for (size_t a = (size_t)f; a < st; a++)
            assert_true(acc[a] == 0.0f);
        free(fac);
        free(z);
        free(zref);
        free(v);
        free(acc);
        free(dots);
        free(g);
        free(ref);
        free(scale);
    }
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_normal_equations_cholesky),
        cmocka_unit_test(test_loss_monotone_cg),
        cmocka_unit_test(test_loss_function),
        cmocka_unit_test(test_cg_converges_to_cholesky),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_initial_factors),
        cmocka_unit_test(test_early_stop),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_negative_only),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_empty_and_invalid),
        cmocka_unit_test(test_dims_variants),
        cmocka_unit_test(test_wide_dims),
#if defined(__AVX2__) && defined(__FMA__)
        cmocka_unit_test(test_wide_kernels),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
