/*
 * The rating matrix WALS trains on, built from a PMI result. The seed
 * trains BigQuery ML on RATING_COL = score = cooc·pmi over every row of
 * item_cooc (mirrored pairs and the diagonal); that is the default here.
 * Other targets are offered for the quality study (docs/quality.md).
 */
#ifndef ITEMVEC_ML_RATING_H
#define ITEMVEC_ML_RATING_H

#include "ml/cooc.h"

enum rating_target {
    RATING_SCORE = 0, /* cooc·pmi: the seed's rating */
    RATING_PMI,       /* pmi */
    RATING_COOC,      /* cooc */
};

struct rating_params {
    enum rating_target target;
    int include_diagonal; /* the seed's item_cooc includes cooc(i,i) = freq(i) */
};

void rating_params_init(struct rating_params *p);

/* Parses "score" | "pmi" | "cooc". Returns 0 or -EINVAL. */
int rating_target_parse(const char *name, enum rating_target *out);

/* Writes the rating of every stored entry of r into val (r->nnz floats,
 * caller-owned), in the CSR order of r; entries left out (the diagonal
 * when !include_diagonal) get 0, which WALS treats as unobserved-like
 * (p = 0, c = 1). Returns 0 or -EINVAL. */
int rating_values(const struct cooc_result *r, const struct rating_params *p, float *val);

#endif
