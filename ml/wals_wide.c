/*
 * AVX2/FMA kernels of the WALS solvers for wide factors: stride > 64
 * floats (f > 64). wals_solve.c keeps a whole factor vector in ymm
 * registers for f <= 64 (its REP8 kernels); beyond that there are not
 * enough registers (16 ymm), and before these kernels existed f > 64 fell
 * back to the portable loops, which gcc -O2 does not vectorise: CG at 65
 * dims was 6× slower per iteration than at 64 (yes_small, 2 threads:
 * 0.335 s vs 0.055 s; see docs/benchmarks.md, "Training").
 *
 * Here vectors live in L1 and the kernels are register-blocked over rows
 * instead of columns:
 * - dots: 4 rows at a time share each load of v, 2 accumulators per row
 *   (8 independent FMA chains, enough to cover the FMA latency).
 * - zpass (acc += Σ_k (z_k·v) z_k): a group of 4 rows is dotted, then
 *   added to acc in a second sweep over the same 4 rows, which are still
 *   in L1 (4 × 800 B at f = 200); acc is loaded and stored once per 4 rows.
 * - gemv (G·v, G symmetric): the dots of v with G's rows, 4 at a time.
 * - gather: one sweep per nonzero, b (in L1) updated in place.
 *
 * Every result depends only on the inputs (fixed order of operations), so
 * rows are computed identically whatever thread runs them. Only compiled
 * with AVX2 and FMA; wals_solve.c uses its portable loops otherwise.
 */
#include "ml/wals_internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#ifndef WALS__PREFETCH
#define WALS__PREFETCH 12
#endif

/* d[0..3] = z_q·v for the 4 rows z0..z3 of stride floats, each lane in the
 * order of wals__dot_avx2 (so a row's dot does not depend on whether it fell
 * in a group of 4 or in the tail). */
static inline __attribute__((always_inline)) void dot4(const float *z0, const float *z1,
                                                       const float *z2, const float *z3,
                                                       const float *v, size_t stride, float *d)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(),
           b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    size_t l = 0;
    for (; l + 16 <= stride; l += 16) {
        const __m256 va = _mm256_loadu_ps(v + l), vb = _mm256_loadu_ps(v + l + 8);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(z0 + l), va, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(z1 + l), va, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(z2 + l), va, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(z3 + l), va, a3);
        b0 = _mm256_fmadd_ps(_mm256_loadu_ps(z0 + l + 8), vb, b0);
        b1 = _mm256_fmadd_ps(_mm256_loadu_ps(z1 + l + 8), vb, b1);
        b2 = _mm256_fmadd_ps(_mm256_loadu_ps(z2 + l + 8), vb, b2);
        b3 = _mm256_fmadd_ps(_mm256_loadu_ps(z3 + l + 8), vb, b3);
    }
    if (l < stride) {
        const __m256 va = _mm256_loadu_ps(v + l);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(z0 + l), va, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(z1 + l), va, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(z2 + l), va, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(z3 + l), va, a3);
    }
    d[0] = wals__hsum8(_mm256_add_ps(a0, b0));
    d[1] = wals__hsum8(_mm256_add_ps(a1, b1));
    d[2] = wals__hsum8(_mm256_add_ps(a2, b2));
    d[3] = wals__hsum8(_mm256_add_ps(a3, b3));
}

void wals__wide_dots(const float *z, size_t m, size_t stride, const float *v, float *dots)
{
    size_t k = 0;
    for (; k + 4 <= m; k += 4, z += 4 * stride)
        dot4(z, z + stride, z + 2 * stride, z + 3 * stride, v, stride, dots + k);
    for (; k < m; k++, z += stride)
        dots[k] = wals__dot_avx2(z, v, stride);
}

void wals__wide_gemv(const float *g, const float *v, float *out, size_t stride, int f)
{
    /* G is symmetric with zero padding: (G·v)_a = G_a·v. */
    wals__wide_dots(g, (size_t)f, stride, v, out);
    memset(out + f, 0, (stride - (size_t)f) * sizeof(float));
}

void wals__wide_zpass(const float *z, size_t m, size_t stride, const float *v, float *acc)
{
    size_t k = 0;
    for (; k + 4 <= m; k += 4, z += 4 * stride) {
        const float *z0 = z, *z1 = z + stride, *z2 = z + 2 * stride, *z3 = z + 3 * stride;
        float d[4];
        dot4(z0, z1, z2, z3, v, stride, d);
        const __m256 d0 = _mm256_set1_ps(d[0]), d1 = _mm256_set1_ps(d[1]),
                     d2 = _mm256_set1_ps(d[2]), d3 = _mm256_set1_ps(d[3]);
        for (size_t l = 0; l < stride; l += 8) {
            __m256 a = _mm256_loadu_ps(acc + l);
            a = _mm256_fmadd_ps(d0, _mm256_loadu_ps(z0 + l), a);
            a = _mm256_fmadd_ps(d1, _mm256_loadu_ps(z1 + l), a);
            a = _mm256_fmadd_ps(d2, _mm256_loadu_ps(z2 + l), a);
            a = _mm256_fmadd_ps(d3, _mm256_loadu_ps(z3 + l), a);
            _mm256_storeu_ps(acc + l, a);
        }
    }
    for (; k < m; k++, z += stride) {
        const __m256 d = _mm256_set1_ps(wals__dot_avx2(z, v, stride));
        for (size_t l = 0; l < stride; l += 8)
            _mm256_storeu_ps(acc + l,
                             _mm256_fmadd_ps(d, _mm256_loadu_ps(z + l), _mm256_loadu_ps(acc + l)));
    }
}

/* Software prefetch of row kp of fac, every cache line of its stride. */
static inline void prefetch_row(const float *fac, const uint32_t *col, size_t kp, size_t stride)
{
    const char *yp = (const char *)(fac + (size_t)col[kp] * stride);
    for (size_t b = 0; b < stride * sizeof(float); b += 64)
        __builtin_prefetch(yp + b, 0, 3);
    __builtin_prefetch(yp + stride * sizeof(float) - 1, 0, 3);
}

void wals__wide_gather(const uint32_t *col, const float *val, size_t m, const float *fac,
                       size_t stride, float alpha, float *z, float *b)
{
    for (size_t k = 0; k < m; k++, z += stride) {
        const float *y = fac + (size_t)col[k] * stride;
        prefetch_row(fac, col, k + WALS__PREFETCH < m ? k + WALS__PREFETCH : m - 1, stride);
        const float r = val[k];
        const float w = alpha * fabsf(r);
        const __m256 cb = _mm256_set1_ps(r > 0.0f ? 1.0f + w : 0.0f);
        const __m256 sq = _mm256_set1_ps(sqrtf(w));
        for (size_t l = 0; l < stride; l += 8) {
            const __m256 yl = _mm256_loadu_ps(y + l);
            _mm256_storeu_ps(b + l, _mm256_fmadd_ps(cb, yl, _mm256_loadu_ps(b + l)));
            _mm256_storeu_ps(z + l, _mm256_mul_ps(sq, yl));
        }
    }
}

void wals__wide_sparse_pass(int resid, const uint32_t *col, const float *val, size_t m,
                            const float *fac, size_t stride, float alpha, const float *v,
                            float *acc)
{
    for (size_t k = 0; k < m; k++) {
        const float *y = fac + (size_t)col[k] * stride;
        prefetch_row(fac, col, k + WALS__PREFETCH < m ? k + WALS__PREFETCH : m - 1, stride);
        const float d = wals__dot_avx2(y, v, stride);
        const float r = val[k];
        const float w = alpha * fabsf(r);
        const __m256 cb =
            _mm256_set1_ps(resid ? (r > 0.0f ? 1.0f + w : 0.0f) - w * d : w * d);
        for (size_t l = 0; l < stride; l += 8)
            _mm256_storeu_ps(acc + l,
                             _mm256_fmadd_ps(cb, _mm256_loadu_ps(y + l), _mm256_loadu_ps(acc + l)));
    }
}

#endif
