/*
 * WALS per-row solvers and Gram matrices (see wals.h for the model).
 *
 * For row i with observed set S_i, Hu, Koren, Volinsky (2008, eq. 4) give
 *
 *   (YᵀY + Σ_{j∈S_i} (c_ij − 1) y_j y_jᵀ + λI) x_i = Σ_{j∈S_i} c_ij p_ij y_j
 *
 * where YᵀY covers the unobserved cells (c = 1, p = 0) and is computed once
 * per half-step, so a row costs O(|S_i|·f²) instead of O(n·f²).
 *
 * - Cholesky: gathers sqrt(c−1)·y_j into a small matrix Z and adds ZᵀZ with
 *   ssyrk (batched rank-k updates), then factors YᵀY + λI + ZᵀZ in double.
 * - CG (Takács, Pilászy, Tikk 2011, Algorithm 2): a few conjugate-gradient
 *   steps warm-started at the current x_i, matrix-free:
 *     A·v = (YᵀY + λI)·v + Σ_{j∈S_i} (c_ij − 1)(y_j·v) y_j,
 *   one pass over S_i per step (a dot and an axpy per nonzero, fused so
 *   y_j is loaded once) plus one for the initial residual b − A·x_i.
 *
 * A row's result depends only on its inputs, never on the thread that
 * runs it: results are identical for any thread count.
 */
#include "ml/wals_internal.h"

#include <cblas.h>
#include <errno.h>
#include <lapack.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define WALS_AVX2 1
#endif

/* ---------------------------------------------------------------- dots */

#ifndef WALS__PREFETCH
#define WALS__PREFETCH 12
#endif
#ifndef WALS__PF_HINT
#define WALS__PF_HINT 3
#endif

#ifdef WALS_AVX2
/* Register blocking for f <= 64: the AVX2 kernels name up to 8 vectors
 * explicitly (v0..v7, a0..a7) and guard each with `b < nb`; nb is a
 * compile-time constant after inlining, so unused ones vanish and the rest
 * live in registers (arrays of __m256 indexed in loops stay in registers
 * with gcc but are spilled by clang). Wider strides go to wals_wide.c. */
#define REP8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define DECL_V(b) __m256 v##b = _mm256_setzero_ps();
#define DECL_A(b) __m256 a##b = _mm256_setzero_ps();
#define LOAD_V(b)                                                                                  \
    if (b < nb)                                                                                    \
        v##b = _mm256_loadu_ps(v + 8 * b);
#define LOAD_A(b)                                                                                  \
    if (b < nb)                                                                                    \
        a##b = _mm256_loadu_ps(acc_out + 8 * b);
#define STORE_A(b)                                                                                 \
    if (b < nb)                                                                                    \
        _mm256_storeu_ps(acc_out + 8 * b, a##b);
#define DOT(b)                                                                                     \
    if (b < nb) {                                                                                  \
        if (b & 1)                                                                                 \
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 8 * b), v##b, s1);                            \
        else                                                                                       \
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 8 * b), v##b, s0);                            \
    }
#define AXPY(b)                                                                                    \
    if (b < nb)                                                                                    \
        a##b = _mm256_fmadd_ps(cb, _mm256_loadu_ps(y + 8 * b), a##b);

/* The one dispatch on the factor width, shared by every kernel below: for
 * stride / 8 = NB in 1..8 it runs kernel(NB, ...) and returns from the
 * calling function; NB is a compile-time constant there, so each
 * always_inline kernel is specialised per width with its vectors in
 * registers. Any other stride falls through to the statement after it (the
 * wide kernels of wals_wide.c, or the portable loop). */
/* clang-format off */
#define WALS_DISPATCH_NB(stride, kernel, ...)                                                      \
    do {                                                                                           \
        switch ((stride) / 8) {                                                                    \
        case 1: kernel(1, __VA_ARGS__); return;                                                    \
        case 2: kernel(2, __VA_ARGS__); return;                                                    \
        case 3: kernel(3, __VA_ARGS__); return;                                                    \
        case 4: kernel(4, __VA_ARGS__); return;                                                    \
        case 5: kernel(5, __VA_ARGS__); return;                                                    \
        case 6: kernel(6, __VA_ARGS__); return;                                                    \
        case 7: kernel(7, __VA_ARGS__); return;                                                    \
        case 8: kernel(8, __VA_ARGS__); return;                                                    \
        default: break;                                                                            \
        }                                                                                          \
    } while (0)
/* clang-format on */

#endif

float wals__dot(const float *a, const float *b, size_t stride)
{
#ifdef WALS_AVX2
    return wals__dot_avx2(a, b, stride);
#else
    float s[8] = {0};
    for (size_t k = 0; k < stride; k += 8)
        for (int l = 0; l < 8; l++)
            s[l] += a[k + l] * b[k + l];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
#endif
}

static double dot_d(const double *a, const double *b, int n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < n; k++)
        s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

/* ---------------------------------------------------- the sparse pass */

/*
 * acc += Σ_k coef_k·y_k over the row's nonzeros, with d_k = y_k·v,
 * w_k = α|r_k| = c_k − 1 and
 *   resid: coef_k = c_k·p_k − w_k·d_k   (b − Σ (c−1)(y·v) y, initial residual)
 *   else:  coef_k = w_k·d_k             (the sparse part of A·v)
 * The AVX2 version keeps v and acc in registers (nb ≤ 8 vectors, f ≤ 64).
 */
#ifdef WALS_AVX2
static inline __attribute__((always_inline)) void
pass_avx(const int nb, const int resid, const uint32_t *col, const float *val, size_t m,
         const float *fac, size_t stride, float alpha, const float *v, float *acc_out, float *zout)
{
    REP8(DECL_V)
    REP8(DECL_A)
    REP8(LOAD_V)
    REP8(LOAD_A)
    for (size_t k = 0; k < m; k++) {
        const float *y = fac + (size_t)col[k] * stride;
        /* The gathers are the bottleneck: fetch a row WALS__PREFETCH ahead. */
        const size_t kp = k + WALS__PREFETCH < m ? k + WALS__PREFETCH : m - 1;
        const char *yp = (const char *)(fac + (size_t)col[kp] * stride);
        for (int b = 0; b < (nb * 32 + 63) / 64; b++)
            __builtin_prefetch(yp + 64 * b, 0, WALS__PF_HINT);
        __builtin_prefetch(yp + 32 * nb - 1, 0, WALS__PF_HINT);
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        REP8(DOT)
        float d = wals__hsum8(_mm256_add_ps(s0, s1));
        float r = val[k];
        float w = alpha * fabsf(r);
        float coef = resid ? (r > 0.0f ? 1.0f + w : 0.0f) - w * d : w * d;
        __m256 cb = _mm256_set1_ps(coef);
        REP8(AXPY)
        if (resid && zout) {
            const __m256 sq = _mm256_set1_ps(sqrtf(w));
            float *zk = zout + k * (size_t)(8 * nb);
#define ZST(b)                                                                                     \
    if (b < nb)                                                                                    \
        _mm256_storeu_ps(zk + 8 * b, _mm256_mul_ps(sq, _mm256_loadu_ps(y + 8 * b)));
            REP8(ZST)
#undef ZST
        }
    }
    REP8(STORE_A)
}
#endif

#ifdef WALS_AVX2
/* pass_avx with resid a compile-time constant too (zout only matters then). */
static inline __attribute__((always_inline)) void
pass_avx_resid(const int nb, int resid, const uint32_t *col, const float *val, size_t m,
               const float *fac, size_t stride, float alpha, const float *v, float *acc,
               float *zout)
{
    if (resid)
        pass_avx(nb, 1, col, val, m, fac, stride, alpha, v, acc, zout);
    else
        pass_avx(nb, 0, col, val, m, fac, stride, alpha, v, acc, NULL);
}
#endif

static void pass_generic(int resid, const uint32_t *col, const float *val, size_t m,
                         const float *fac, size_t stride, float alpha, const float *v, float *acc,
                         float *zout)
{
    for (size_t k = 0; k < m; k++) {
        const float *y = fac + (size_t)col[k] * stride;
        float d = wals__dot(y, v, stride);
        float r = val[k];
        float w = alpha * fabsf(r);
        float coef = resid ? (r > 0.0f ? 1.0f + w : 0.0f) - w * d : w * d;
        for (size_t l = 0; l < stride; l += 8)
            for (int q = 0; q < 8; q++)
                acc[l + q] += coef * y[l + q];
        if (resid && zout) {
            const float sq = sqrtf(w);
            for (size_t l = 0; l < stride; l++)
                zout[k * stride + l] = sq * y[l];
        }
    }
}

static void sparse_pass(int resid, const uint32_t *col, const float *val, size_t m,
                        const float *fac, size_t stride, float alpha, const float *v, float *acc,
                        float *zout)
{
#ifdef WALS_AVX2
    WALS_DISPATCH_NB(stride, pass_avx_resid, resid, col, val, m, fac, stride, alpha, v, acc, zout);
    if (!zout) {
        wals__wide_sparse_pass(resid, col, val, m, fac, stride, alpha, v, acc);
        return;
    }
#endif
    pass_generic(resid, col, val, m, fac, stride, alpha, v, acc, zout);
}

/* dots[k] = z_k·v over the contiguous gathered rows. */
#ifdef WALS_AVX2
static inline __attribute__((always_inline)) void zdots_avx(const int nb, const float *z, size_t m,
                                                            const float *v, float *dots)
{
    REP8(DECL_V)
    REP8(LOAD_V)
    for (size_t k = 0; k < m; k++, z += 8 * nb) {
        const float *y = z;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        REP8(DOT)
        dots[k] = wals__hsum8(_mm256_add_ps(s0, s1));
    }
}
#endif

static void zdots(const float *z, size_t m, size_t stride, const float *v, float *dots)
{
#ifdef WALS_AVX2
    WALS_DISPATCH_NB(stride, zdots_avx, z, m, v, dots);
    wals__wide_dots(z, m, stride, v, dots);
    return;
#endif
    for (size_t k = 0; k < m; k++, z += stride)
        dots[k] = wals__dot(z, v, stride);
}

/*
 * The gather pass of a row (or a batch of its nonzeros): z_k =
 * sqrt(c_k − 1)·y_k stored contiguously and b += Σ_k c_k p_k y_k, the
 * right-hand side. No dot products here, so the (cache-missing) loads of
 * y_k are independent of each other and overlap freely.
 */
#ifdef WALS_AVX2
static inline __attribute__((always_inline)) void gather_avx(const int nb, const uint32_t *col,
                                                             const float *val, size_t m,
                                                             const float *fac, size_t stride,
                                                             float alpha, float *z, float *acc_out)
{
    REP8(DECL_A)
    REP8(LOAD_A)
    for (size_t k = 0; k < m; k++, z += 8 * nb) {
        const float *y = fac + (size_t)col[k] * stride;
        const size_t kp = k + WALS__PREFETCH < m ? k + WALS__PREFETCH : m - 1;
        const char *yp = (const char *)(fac + (size_t)col[kp] * stride);
        for (int b = 0; b < (nb * 32 + 63) / 64; b++)
            __builtin_prefetch(yp + 64 * b, 0, WALS__PF_HINT);
        __builtin_prefetch(yp + 32 * nb - 1, 0, WALS__PF_HINT);
        const float r = val[k];
        const float w = alpha * fabsf(r);
        const __m256 cb = _mm256_set1_ps(r > 0.0f ? 1.0f + w : 0.0f);
        const __m256 sq = _mm256_set1_ps(sqrtf(w));
#define GST(b)                                                                                     \
    if (b < nb) {                                                                                  \
        const __m256 yb = _mm256_loadu_ps(y + 8 * b);                                              \
        a##b = _mm256_fmadd_ps(cb, yb, a##b);                                                      \
        _mm256_storeu_ps(z + 8 * b, _mm256_mul_ps(sq, yb));                                        \
    }
        REP8(GST)
#undef GST
    }
    REP8(STORE_A)
}
#endif

static void gather(const uint32_t *col, const float *val, size_t m, const float *fac, size_t stride,
                   float alpha, float *z, float *b)
{
#ifdef WALS_AVX2
    WALS_DISPATCH_NB(stride, gather_avx, col, val, m, fac, stride, alpha, z, b);
    wals__wide_gather(col, val, m, fac, stride, alpha, z, b);
    return;
#endif
    for (size_t k = 0; k < m; k++, z += stride) {
        const float *y = fac + (size_t)col[k] * stride;
        const float r = val[k];
        const float w = alpha * fabsf(r);
        const float cp = r > 0.0f ? 1.0f + w : 0.0f, sq = sqrtf(w);
        for (size_t l = 0; l < stride; l += 8) {
            for (int q = 0; q < 8; q++) {
                b[l + q] += cp * y[l + q];
                z[l + q] = sq * y[l + q];
            }
        }
    }
}

/*
 * acc += Σ_k (z_k·v) z_k over the row's gathered z_k = sqrt(c_k − 1)·y_k,
 * contiguous (m × stride): the sparse part of A·v without the gathers, so
 * the CG steps after the first pass stream from cache.
 */
#ifdef WALS_AVX2
static inline __attribute__((always_inline)) void zpass_avx(const int nb, const float *z, size_t m,
                                                            const float *v, float *acc_out)
{
    REP8(DECL_V)
    REP8(DECL_A)
    REP8(LOAD_V)
    REP8(LOAD_A)
    for (size_t k = 0; k < m; k++, z += 8 * nb) {
        const float *y = z;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        REP8(DOT)
        const __m256 cb = _mm256_set1_ps(wals__hsum8(_mm256_add_ps(s0, s1)));
        REP8(AXPY)
    }
    REP8(STORE_A)
}
#endif

static void zpass(const float *z, size_t m, size_t stride, const float *v, float *acc)
{
#ifdef WALS_AVX2
    WALS_DISPATCH_NB(stride, zpass_avx, z, m, v, acc);
    wals__wide_zpass(z, m, stride, v, acc);
    return;
#endif
    for (size_t k = 0; k < m; k++, z += stride) {
        const float d = wals__dot(z, v, stride);
        for (size_t l = 0; l < stride; l += 8)
            for (int q = 0; q < 8; q++)
                acc[l + q] += d * z[l + q];
    }
}

/* out = G·v for the symmetric padded stride × stride G (row b = column b),
 * accumulated as Σ_b v_b·G_b so it vectorises over the output. */
#ifdef WALS_AVX2
static inline __attribute__((always_inline)) void
gemv_avx(const int nb, const float *g, const float *vin, float *acc_out, size_t stride, int f)
{
    REP8(DECL_A)
    for (int c = 0; c < f; c++) {
        const __m256 cb = _mm256_set1_ps(vin[c]);
        const float *y = g + (size_t)c * stride;
        REP8(AXPY)
    }
    REP8(STORE_A)
}
#endif

static void gemv_sym(const float *restrict g, const float *restrict v, float *restrict out,
                     size_t stride, int f)
{
#ifdef WALS_AVX2
    WALS_DISPATCH_NB(stride, gemv_avx, g, v, out, stride, f);
    wals__wide_gemv(g, v, out, stride, f);
    return;
#endif
    memset(out, 0, stride * sizeof(float));
    for (int c = 0; c < f; c++) {
        const float vc = v[c];
        const float *gc = g + (size_t)c * stride;
        for (size_t l = 0; l < stride; l += 8)
            for (int k = 0; k < 8; k++)
                out[l + k] += vc * gc[l + k];
    }
}

/* ------------------------------------------------------------------ CG */

static double cg_row(struct wals__half *h, struct wals__scratch *s, uint32_t i)
{
    const size_t st = h->stride;
    const uint64_t lo = h->row_ptr[i], hi = h->row_ptr[i + 1];
    const size_t m = (size_t)(hi - lo);
    /* no pointer arithmetic on the NULL arrays of an empty matrix (UB) */
    const uint32_t *col = m ? h->col + lo : h->col;
    const float *val = m ? h->val + lo : h->val;
    float *restrict x = h->out + (size_t)i * st;
    float *restrict r = s->r, *restrict p = s->p, *restrict ap = s->ap;

    /* r = b − A·x = Σ_k (c_k p_k − (c_k − 1)(y_k·x)) y_k − (YᵀY + λI) x.
     * Rows that fit the per-thread buffer gather z_k = sqrt(c_k−1)·y_k once
     * here, so this residual and the CG steps read them contiguously. */
    float *z = m <= s->cgz_rows ? s->cgz : NULL;
    if (z) {
        memset(r, 0, st * sizeof(float));
        gather(col, val, m, h->fixed, st, h->alpha, z, r);
        gemv_sym(h->gram, x, ap, st, h->f);
        zpass(z, m, st, x, ap);
        for (size_t l = 0; l < st; l += 8)
            for (int q = 0; q < 8; q++)
                r[l + q] -= ap[l + q];
    } else {
        gemv_sym(h->gram, x, ap, st, h->f);
        for (size_t l = 0; l < st; l += 8)
            for (int q = 0; q < 8; q++)
                r[l + q] = -ap[l + q];
        sparse_pass(1, col, val, m, h->fixed, st, h->alpha, x, r, NULL);
    }
    memcpy(p, r, st * sizeof(float));
    float rs = wals__dot(r, r, st);

    for (int step = 0; step < h->cg_steps; step++) {
        if (rs < 1e-20f)
            break;
        gemv_sym(h->gram, p, ap, st, h->f);
        if (z)
            zpass(z, m, st, p, ap);
        else
            sparse_pass(0, col, val, m, h->fixed, st, h->alpha, p, ap, NULL);
        float pap = wals__dot(p, ap, st);
        if (!(pap > 0.0f))
            break;
        float a = rs / pap;
        for (size_t l = 0; l < st; l += 8) {
            for (int q = 0; q < 8; q++) {
                x[l + q] += a * p[l + q];
                r[l + q] -= a * ap[l + q];
            }
        }
        float rs_new = wals__dot(r, r, st);
        float beta = rs_new / rs;
        for (size_t l = 0; l < st; l += 8)
            for (int q = 0; q < 8; q++)
                p[l + q] = r[l + q] + beta * p[l + q];
        rs = rs_new;
    }
    if (!h->loss_partial)
        return 0.0;
    if (!z)
        return wals__loss_rows(h->row_ptr, h->col, h->val, i, i + 1, h->out, h->fixed, st, h->f,
                               h->alpha);
    /* Loss correction Σ [c (p − s)² − s²] for this row, s = x·y_k, from the
     * gathered z_k = sqrt(w_k)·y_k while they are still in cache. Cells
     * with w = 0 (c = 1, p = 0) contribute (0 − s)² − s² = 0. */
    float *dots = s->dots;
    zdots(z, m, st, x, dots);
    double c0 = 0.0, c1 = 0.0;
    size_t k = 0;
    for (; k + 2 <= m; k += 2) {
        const float w0 = h->alpha * fabsf(val[k]), w1 = h->alpha * fabsf(val[k + 1]);
        if (w0 > 0.0f) {
            const double sv = dots[k] / sqrtf(w0), pk = val[k] > 0.0f ? 1.0 : 0.0;
            c0 += (1.0 + (double)w0) * (pk - sv) * (pk - sv) - sv * sv;
        }
        if (w1 > 0.0f) {
            const double sv = dots[k + 1] / sqrtf(w1), pk = val[k + 1] > 0.0f ? 1.0 : 0.0;
            c1 += (1.0 + (double)w1) * (pk - sv) * (pk - sv) - sv * sv;
        }
    }
    if (k < m) {
        const float w0 = h->alpha * fabsf(val[k]);
        if (w0 > 0.0f) {
            const double sv = dots[k] / sqrtf(w0), pk = val[k] > 0.0f ? 1.0 : 0.0;
            c0 += (1.0 + (double)w0) * (pk - sv) * (pk - sv) - sv * sv;
        }
    }
    const double corr = c0 + c1;
    return corr;
}

/* ------------------------------------------------------------ Cholesky */

/* In-place Cholesky of the lower triangle of the row-major n × n a
 * (a = L·Lᵀ), then solves L·Lᵀ·x = b into b. Returns 0 or -EDOM. */
static int chol_solve(double *a, double *b, int n)
{
    for (int j = 0; j < n; j++) {
        double *lj = a + (size_t)j * n;
        double d = lj[j] - dot_d(lj, lj, j);
        if (!(d > 0.0))
            return -EDOM;
        d = sqrt(d);
        lj[j] = d;
        const double inv = 1.0 / d;
        for (int i = j + 1; i < n; i++) {
            double *li = a + (size_t)i * n;
            li[j] = (li[j] - dot_d(li, lj, j)) * inv;
        }
    }
    for (int i = 0; i < n; i++) { /* L z = b */
        const double *li = a + (size_t)i * n;
        b[i] = (b[i] - dot_d(li, b, i)) / li[i];
    }
    for (int i = n - 1; i >= 0; i--) { /* Lᵀ x = z */
        double t = b[i];
        for (int k = i + 1; k < n; k++)
            t -= a[(size_t)k * n + i] * b[k];
        b[i] = t / a[(size_t)i * n + i];
    }
    return 0;
}

/*
 * From this many dimensions on, the factorisation and the solves go to
 * LAPACK/BLAS. chol_solve's dot-product Cholesky does f³/6 short,
 * latency-bound dot products, and its back substitution walks columns of
 * a row-major matrix (a cache line per element once f·8 bytes exceed a
 * line's reach): at f = 200 they took 46 % + ~10 % of a Cholesky iteration
 * on yes_small (perf, one thread), more than the rank-k updates. Below 65
 * chol_solve is kept, so results there are unchanged bit for bit.
 */
#ifndef WALS__LAPACK_MIN_F
#define WALS__LAPACK_MIN_F 65
#endif

/* The same as chol_solve for the upper triangle of the row-major a
 * (a = UᵀU; the column-major lower factor of LAPACK's dpotrf is that U),
 * with every access along rows: dpotrf, then Uᵀz = b and U x = z with
 * dtrsv. OpenBLAS runs single-threaded inside wals_train, so the result is
 * a pure function of a and b. Returns 0 or -EDOM. */
static int chol_solve_upper(double *a, double *b, int n)
{
    int info = 0;
    LAPACK_dpotrf("L", &n, a, &n, &info);
    if (info != 0)
        return -EDOM;
    cblas_dtrsv(CblasRowMajor, CblasUpper, CblasTrans, CblasNonUnit, n, a, n, b, 1);
    cblas_dtrsv(CblasRowMajor, CblasUpper, CblasNoTrans, CblasNonUnit, n, a, n, b, 1);
    return 0;
}

static int chol_row(struct wals__half *h, struct wals__scratch *s, uint32_t i)
{
    const size_t st = h->stride;
    const int f = h->f;
    const uint64_t lo = h->row_ptr[i], hi = h->row_ptr[i + 1];
    float *x = h->out + (size_t)i * st;
    float *restrict z = s->z, *restrict af = s->af, *restrict bf = s->bf;
    double *ad = s->ad, *bd = s->bd;

    memset(af, 0, (size_t)f * st * sizeof(float));
    memset(bf, 0, st * sizeof(float));
    /* Batched rank-k updates: gather WALS__BATCH rows sqrt(c−1)·y_j, ssyrk. */
    for (uint64_t k0 = lo; k0 < hi; k0 += WALS__BATCH) {
        const int kb = hi - k0 < WALS__BATCH ? (int)(hi - k0) : WALS__BATCH;
        gather(h->col + k0, h->val + k0, (size_t)kb, h->fixed, st, h->alpha, z, bf);
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, f, kb, 1.0f, z, (int)st, 1.0f, af,
                    (int)st);
    }

    int rc;
    if (f >= WALS__LAPACK_MIN_F) {
        /* A = YᵀY + λI + ZᵀZ: upper triangle in ad, row by row. */
        for (int a = 0; a < f; a++) {
            const double *ga = h->gram_d + (size_t)a * f;
            const float *fa = af + (size_t)a * st;
            double *da = ad + (size_t)a * f;
            for (int b = a; b < f; b++)
                da[b] = ga[b] + (double)fa[b];
            bd[a] = bf[a];
        }
        rc = chol_solve_upper(ad, bd, f);
    } else {
        /* A = YᵀY + λI + ZᵀZ: lower triangle in ad from the upper of af. */
        for (int a = 0; a < f; a++) {
            for (int b = a; b < f; b++)
                ad[(size_t)b * f + a] =
                    h->gram_d[(size_t)a * f + b] + (double)af[(size_t)a * st + b];
            bd[a] = bf[a];
        }
        rc = chol_solve(ad, bd, f);
    }
    if (rc < 0)
        return rc;
    for (int a = 0; a < f; a++)
        x[a] = (float)bd[a];
    return 0;
}

/* --------------------------------------------------------------- tasks */

void wals__solve_task(void *ctx, size_t task, int worker)
{
    struct wals__half *h = ctx;
    struct wals__scratch *s = &h->scratch[worker];
    const uint32_t begin = h->chunks[task], end = h->chunks[task + 1];

    double corr = 0.0;
    if (atomic_load_explicit(&h->failed, memory_order_relaxed))
        return;
    for (uint32_t i = begin; i < end; i++) {
        if (h->solver == WALS_SOLVER_CHOLESKY) {
            int rc = chol_row(h, s, i);
            if (rc < 0) {
                atomic_store(&h->failed, rc);
                return;
            }
            if (h->loss_partial)
                corr += wals__loss_rows(h->row_ptr, h->col, h->val, i, i + 1, h->out, h->fixed,
                                        h->stride, h->f, h->alpha);
        } else {
            corr += cg_row(h, s, i);
        }
    }
    if (h->loss_partial)
        h->loss_partial[task] = corr;
    atomic_fetch_add_explicit(&h->done, 1, memory_order_relaxed);
}

/* --------------------------------------------------------------- Gram */

#define GRAM_BLOCK 256

int wals__gram(const float *fac, uint32_t n, size_t stride, int f, double *g)
{
    double *buf = NULL;
    int rc = 0;

    memset(g, 0, (size_t)f * f * sizeof(double));
    if (n == 0 || f == 0)
        goto out;
    buf = malloc((size_t)GRAM_BLOCK * f * sizeof(double));
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t r0 = 0; r0 < n; r0 += GRAM_BLOCK) {
        uint32_t rows = n - r0 < GRAM_BLOCK ? n - r0 : GRAM_BLOCK;
        for (uint32_t r = 0; r < rows; r++)
            for (int a = 0; a < f; a++)
                buf[(size_t)r * f + a] = fac[(size_t)(r0 + r) * stride + a];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, f, (int)rows, 1.0, buf, f, 1.0, g, f);
    }
    for (int a = 0; a < f; a++)
        for (int b = a + 1; b < f; b++)
            g[(size_t)b * f + a] = g[(size_t)a * f + b];
out:
    free(buf);
    return rc;
}
