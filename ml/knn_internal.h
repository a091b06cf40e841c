/*
 * Inside of struct knn_index and the helpers shared by knn.c (create,
 * queries), knn_precompute.c (blocked SGEMM lists) and knn_select.c (the
 * exact top-k selection both use). Not for use outside ml/knn*.c.
 */
#ifndef ITEMVEC_ML_KNN_INTERNAL_H
#define ITEMVEC_ML_KNN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ml/knn.h"

struct knn_index {
    uint32_t n;
    uint32_t d;
    float *u;           /* [n·d] row-major, rows L2-normalised (or zero) */
    uint32_t *rank;     /* [n] tie-break keys, or NULL: index order */
    uint32_t k;         /* neighbours per item in the lists, 0: no lists */
    uint32_t *nbr_idx;  /* [n·k] best first, or NULL */
    float *nbr_score;   /* [n·k] */
};

/* dst = src / ‖src‖ (norm and quotient in double, stored as float); a zero
 * src gives a zero dst. Returns 0, or -EINVAL for a non-finite value. */
int knn__normalise(const float *src, uint32_t d, float *dst);

/* The ranking score of two stored rows: products in double, summed in
 * four interleaved partial sums (t mod 4, each in index order) combined as
 * (s0 + s1) + (s2 + s3), rounded once to float (see knn.h). */
float knn__score(const float *a, const float *b, uint32_t d);

/* Exact top-kf of query row q (normalised, d floats) over all items, given
 * float shortlist scores c[0..n) (BLAS q·u_j, excluded items set to
 * -INFINITY). avail is the number of items not excluded, kf <= avail.
 * Writes kf items best first (score desc, rank asc, index asc) to
 * out_idx / out_score; tbuf is 2·kf floats of scratch. */
void knn__select(const struct knn_index *idx, const float *q, const float *c, uint32_t avail,
                 uint32_t kf, float *tbuf, uint32_t *out_idx, float *out_score);

#endif
