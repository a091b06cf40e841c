/*
 * The rating matrix WALS trains on, built from a PMI result. The seed
 * trains BigQuery ML on RATING_COL = score = cooc·pmi over every row of
 * item_cooc (mirrored pairs and the diagonal); that is the default here,
 * and with the default parameters the values are bit-identical to
 * (float)cooc_score(). Other targets and transforms come from the quality
 * study (docs/quality.md):
 *
 *   target    score = cooc·pmi (seed), pmi, cooc, or
 *             sppmi = max(pmi − shift, 0): the shifted positive PMI of
 *             Levy & Goldberg 2014 ("Neural Word Embedding as Implicit
 *             Matrix Factorization", §3.3, SPPMI_k = max(PMI − log k, 0));
 *             here in the seed's base-2 units, shift = log2 k.
 *   min_cooc  entries with cooc < min_cooc are left out (rating 0).
 *   negative  "keep" (seed): a negative rating stays, and WALS reads it as
 *             a confident "no" (p = 0, c = 1 + α|r|); "drop": it is left
 *             out (rating 0, c = 1), like an unobserved cell.
 *   scale     "linear" (seed): r as is; "log": r' = sign(r)·log(1 + |r|/ε),
 *             so WALS's confidence c = 1 + α|r'| = 1 + α·log(1 + |r|/ε), the
 *             log scaling of Hu, Koren, Volinsky 2008 (§4, eq. after (1));
 *             "sqrt": r' = sign(r)·√|r| (the spectral embeddings' best
 *             target with cooc, docs/quality.md).
 *
 * Pure math, no I/O.
 */
#ifndef ITEMVEC_ML_RATING_H
#define ITEMVEC_ML_RATING_H

#include <stdint.h>

#include "ml/cooc.h"

enum rating_target {
    RATING_SCORE = 0, /* cooc·pmi: the seed's rating */
    RATING_PMI,       /* pmi */
    RATING_COOC,      /* cooc */
    RATING_SPPMI,     /* max(pmi − shift, 0) */
};

enum rating_scale {
    RATING_SCALE_LINEAR = 0, /* r */
    RATING_SCALE_LOG,        /* sign(r)·log(1 + |r|/ε) */
    RATING_SCALE_SQRT,       /* sign(r)·√|r| */
};

struct rating_params {
    enum rating_target target;
    int include_diagonal; /* the seed's item_cooc includes cooc(i,i) = freq(i) */
    double shift;         /* sppmi only, >= 0 (log2 units) */
    uint32_t min_cooc;    /* entries with cooc < min_cooc get 0; 0 or 1: none */
    int drop_negative;    /* negative ratings get 0 */
    enum rating_scale scale;
    double epsilon; /* log scale, > 0 */
};

/* Fills p with the seed's rating: score, diagonal, no transform. */
void rating_params_init(struct rating_params *p);

/* Parses "score" | "pmi" | "cooc" | "sppmi". Returns 0 or -EINVAL. */
int rating_target_parse(const char *name, enum rating_target *out);

/* Parses "linear" | "log" | "sqrt". Returns 0 or -EINVAL. */
int rating_scale_parse(const char *name, enum rating_scale *out);

/* Writes the rating of every stored entry of r into val (r->nnz floats,
 * caller-owned), in the CSR order of r. The value is the target's, then
 * entries left out (the diagonal when !include_diagonal, cooc < min_cooc,
 * negatives when drop_negative) get 0, which WALS treats as
 * unobserved-like (p = 0, c = 1), then the scale is applied (it maps 0 to
 * 0). Computed in double, stored as float. Returns 0, or -EINVAL for NULL
 * arguments, a negative or non-finite shift, or a non-positive epsilon
 * with the log scale. Reentrant. */
int rating_values(const struct cooc_result *r, const struct rating_params *p, float *val);

#endif
