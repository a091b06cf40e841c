/*
 * Shared between the WALS files only (the wals__ prefix): wals.c (driver),
 * wals_solve.c (per-row CG and Cholesky solvers, Gram matrices),
 * wals_wide.c (their AVX2 kernels for f > 64) and wals_loss.c (the O(nnz·f + n·f²) loss). Not a public interface.
 *
 * Factor matrices are float, row-major with a padded stride (a multiple
 * of 8 floats, padding kept at zero) and 32-byte aligned rows so the AVX2
 * kernels load whole vectors; every kernel has a portable fallback.
 */
#ifndef ITEMVEC_ML_WALS_INTERNAL_H
#define ITEMVEC_ML_WALS_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ml/wals.h"

#define WALS__ALIGN 64
/* Rows of y_j gathered per ssyrk call in the Cholesky solver. */
#define WALS__BATCH 256
/* CG: rows up to this many nonzeros (and at most the longest row) are
 * gathered into a per-thread buffer once per half-step. */
#define WALS__CG_GATHER_MAX 65536

/* Per-thread scratch, allocated once per wals_train. */
struct wals__scratch {
    float *r, *p, *ap; /* CG vectors [stride] */
    float *cgz;        /* CG: a row's gathered sqrt(c−1)·y_j, [cgz_rows × stride] */
    size_t cgz_rows;
    float *dots; /* CG: z_k·x for the loss, [cgz_rows] */
    float *z;    /* Cholesky: gathered sqrt(c−1)·y_j, [BATCH × stride] */
    float *af;   /* Cholesky: Σ (c−1) y yᵀ, [stride × stride] */
    float *bf;   /* Cholesky: Σ c·p·y, [stride] */
    double *ad;  /* Cholesky: full matrix, [f × f] */
    double *bd;  /* [f] */
};

/* One half-step: solve every row of a sparse matrix against fixed factors. */
struct wals__half {
    const uint64_t *row_ptr;
    const uint32_t *col;
    const float *val;
    const float *fixed;     /* the other side's factors, [n_fixed × stride] */
    float *out;             /* this side's factors (warm start for CG) */
    const float *gram;      /* FᵀF + λI as float, [stride × stride], zero padding */
    const double *gram_d;   /* FᵀF + λI as double, [f × f] */
    const uint32_t *chunks; /* row boundaries of task t: chunks[t]..chunks[t+1] */
    size_t stride;
    int f;
    float alpha;
    int cg_steps;
    enum wals_solver solver;
    struct wals__scratch *scratch; /* [threads] */
    double *loss_partial;          /* non-NULL: task t stores its rows' observed-cell
                                      loss correction (after solving) in [t] */
    atomic_int failed;             /* set to a negative errno by a failing row */
    atomic_size_t done;            /* chunks finished, for progress */
};

/* par_task_fn: solves rows chunks[task]..chunks[task+1]-1 of h. */
void wals__solve_task(void *h, size_t task, int worker);

/* G = FᵀF over n rows of f (first f of stride floats), double, full
 * symmetric f × f. Deterministic (fixed blocking, single-threaded). */
int wals__gram(const float *fac, uint32_t n, size_t stride, int f, double *g);

/* Observed-cell correction of the loss for one range of rows:
 * Σ_obs [c (p − s)² − s²], s = x_i·y_j, accumulated in double. */
double wals__loss_rows(const uint64_t *row_ptr, const uint32_t *col, const float *val,
                       uint32_t row_begin, uint32_t row_end, const float *x, const float *y,
                       size_t stride, int f, double alpha);

/* Loss from the Gram matrices and the observed correction:
 * trace(GX·GY) + correction + λ (trace GX + trace GY). */
double wals__loss_combine(const double *gx, const double *gy, int f, double correction,
                          double l2_reg);

/* Float dot product over stride floats (padding is zero). */
float wals__dot(const float *a, const float *b, size_t stride);

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* Sum of the 8 lanes of v, in the one fixed order every AVX2 kernel uses. */
static inline float wals__hsum8(__m256 v)
{
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 0x1));
    return _mm_cvtss_f32(lo);
}

/* a·b over stride floats (a multiple of 8) with two FMA chains: the order
 * of wals__dot and of one lane of wals_wide.c's 4-row dots, so a row's dot
 * does not depend on the kernel that computes it. */
static inline float wals__dot_avx2(const float *a, const float *b, size_t stride)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 16 <= stride; k += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
    }
    if (k < stride)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
    return wals__hsum8(_mm256_add_ps(s0, s1));
}
#endif

/* AVX2 kernels for stride > 64 (wals_wide.c; only with AVX2 and FMA).
 * All vectors are stride floats with zero padding; acc and b are updated
 * in place. dots: dots[k] = z_k·v over m contiguous rows. gemv: out = G·v
 * for the symmetric stride × stride G. zpass: acc += Σ_k (z_k·v) z_k.
 * gather: z_k = sqrt(α|r_k|)·y_k, b += Σ_k c_k p_k y_k. sparse_pass: as
 * wals_solve.c's sparse_pass, gathering y_k on the fly. */
#if defined(__AVX2__) && defined(__FMA__)
void wals__wide_dots(const float *z, size_t m, size_t stride, const float *v, float *dots);
void wals__wide_gemv(const float *g, const float *v, float *out, size_t stride, int f);
void wals__wide_zpass(const float *z, size_t m, size_t stride, const float *v, float *acc);
void wals__wide_gather(const uint32_t *col, const float *val, size_t m, const float *fac,
                       size_t stride, float alpha, float *z, float *b);
void wals__wide_sparse_pass(int resid, const uint32_t *col, const float *val, size_t m,
                            const float *fac, size_t stride, float alpha, const float *v,
                            float *acc);
#endif

#endif
