/*
 * Spectral embeddings: the top eigenpairs of a symmetric rating matrix T
 * (ml/rating.h's values on the co-occurrence pattern), e_i = v_i·√λ over
 * the f largest positive eigenvalues, so that e_i·e_j is the best rank-f
 * approximation of T_ij that an inner product of one vector per item can
 * give (Eckart–Young on T's positive part). An alternative to WALS for
 * users who rank the exported vectors by inner product (docs/quality.md,
 * "Embeddings for an inner-product index").
 *
 * Computed by randomized subspace iteration (Halko, Martinsson, Tropp 2011,
 * "Finding structure with randomness", Alg. 4.4 with the symmetric
 * Rayleigh–Ritz step of §5.3): a seeded Gaussian block of f + oversample
 * columns, iterations products with T, each followed by an
 * orthonormalisation (modified Gram–Schmidt, twice), then the eigenpairs
 * of the small projected matrix (LAPACK dsyev). Cost O(iterations · nnz ·
 * (f + oversample) + iterations · n · (f + oversample)²), memory 3 blocks
 * of n × (f + oversample) doubles. Deterministic: every sum has a fixed
 * order, and dsyev runs on the small matrix only.
 *
 * Pure math, no I/O; single-threaded; reentrant.
 */
#ifndef ITEMVEC_ML_SPECTRAL_H
#define ITEMVEC_ML_SPECTRAL_H

#include <stdint.h>

#include "ml/wals.h"

#define SPECTRAL_MAX_DIMENSIONS 1000

struct spectral_params {
    int dimensions; /* f, 1..SPECTRAL_MAX_DIMENSIONS */
    int oversample; /* extra columns of the block, >= 0 (default 10) */
    int iterations; /* products with T after the first, >= 0 (default 8) */
    uint64_t seed;  /* the Gaussian start; same seed → same result */
};

/* Fills p with 50 dimensions, oversample 10, 8 iterations, seed 0. */
void spectral_params_init(struct spectral_params *p);

/* Returns non-zero to cancel (spectral_embed then returns -ECANCELED). */
typedef int (*spectral_progress_cb)(void *userdata, double fraction);

/* Writes the embeddings of the symmetric matrix t (t->n_rows == n_cols;
 * only its stored entries count; borrowed) to out, n × p->dimensions
 * floats, row-major, caller-owned. Columns whose eigenvalue is not
 * positive (below 1e-9 of the largest magnitude: rounding), or beyond the
 * block when n is small, are zero. lambda (may be
 * NULL) receives the p->dimensions eigenvalues used, largest first (0 for
 * a zero column). cb (may be NULL) is called after each product.
 * Returns 0, -EINVAL (bad arguments), -ENOMEM, -ECANCELED, -EDOM (dsyev
 * failed). */
int spectral_embed(const struct wals_csr *t, const struct spectral_params *p,
                   spectral_progress_cb cb, void *userdata, float *out, double *lambda);

#endif
