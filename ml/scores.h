/*
 * Item-to-item scores of the matrix sources, computed exactly from a PMI
 * result (ml/cooc.h) — the co-occurrence counts, the item frequencies and,
 * for the random walk, the valid groups themselves:
 *
 *   cooc(γ)    s(q, j) = cooc(q, j) · freq(j)^γ   ("pop_weight" γ; γ = 0 is
 *              the plain count, exactly (double)cooc)
 *   pmi        s(q, j) = cooc(q, j) · pmi(q, j), the seed's score
 *              (cooc_score)
 *   rp3(α, β)  s(q, j) = freq(q)^-α · Σ_{u ∋ q, j} |u|^-α · freq(j)^-β
 *              The random walk item → group → item with each step's
 *              transition probability raised to α (P³α, Cooper et al.
 *              2014: p(u|q) = 1/freq(q), p(j|u) = 1/|u| over the valid
 *              groups, |u| = the group's valid items) and the target
 *              divided by freq(j)^β (RP³β, Paudel et al. 2017). α = 0 gives
 *              cooc(q, j)·freq(j)^-β, i.e. cooc with γ = -β, exactly.
 *
 * Only pairs that share a valid group have a score: the candidates of q
 * are the entries of q's matrix row (the diagonal excluded). Ranking uses
 * ml/rank.h's order (score descending, ties by the caller's id rank).
 * A recommendation for a set of items scores a candidate by the sum of
 * its scores against every input item (docs/quality.md, "Playlist
 * continuation"), summed in input order.
 *
 * Every score is evaluated in double in one fixed order, so the same
 * query gives bit-identical scores whether or not a struct score_prep
 * (precomputed powers, for the evaluate job's many queries) is given.
 *
 * Pure math, no I/O. Functions are reentrant; the structs are read-only
 * once built and may be shared by threads.
 */
#ifndef ITEMVEC_ML_SCORES_H
#define ITEMVEC_ML_SCORES_H

#include <stddef.h>
#include <stdint.h>

#include "ml/cooc.h"

enum score_source { SCORE_COOC, SCORE_PMI, SCORE_RP3 };

/* Bounds of the parameters (the API checks them; ml rejects others). */
#define SCORE_POP_WEIGHT_MIN (-2.0)
#define SCORE_POP_WEIGHT_MAX 2.0
#define SCORE_ALPHA_MIN 0.0
#define SCORE_ALPHA_MAX 2.0
#define SCORE_BETA_MIN (-2.0)
#define SCORE_BETA_MAX 2.0
/* rp3's defaults, from the sweeps in docs/quality.md. */
#define SCORE_RP3_DEFAULT_ALPHA 0.5
#define SCORE_RP3_DEFAULT_BETA (-0.3)

struct score_params {
    enum score_source source;
    double pop_weight; /* cooc: γ */
    double alpha;      /* rp3 */
    double beta;       /* rp3 */
};

/* Fills p with source's defaults (γ = 0; α, β as above). */
void score_params_init(struct score_params *p, enum score_source source);

/* 0 when p's source is known and its parameters are finite and within the
 * bounds above, else -EINVAL. */
int score_params_check(const struct score_params *p);

/* Items → groups: the transpose of r's groups, built once per result for
 * rp3. item i's groups are item_groups[item_ptr[i] .. item_ptr[i+1]-1],
 * ascending. Owned; embedded in the caller's struct. */
struct score_walk {
    uint32_t n;
    uint64_t *item_ptr;    /* [n + 1] */
    uint32_t *item_groups; /* [r->total] */
};

/* Builds w from r (borrowed; r must carry its groups). Returns 0,
 * -ENODATA (r has no groups: an imported table or an old file), -ENOMEM.
 * On error w is zeroed. */
int score_walk_init(struct score_walk *w, const struct cooc_result *r);

/* Frees what w owns and zeroes it; a zeroed w is a no-op. */
void score_walk_deinit(struct score_walk *w);

/* Precomputed tables for one parameter set (optional, a speed-up only:
 * the scores are the same without them): item_pow[j] = freq(j)^γ (cooc)
 * or freq(j)^-β (rp3); for rp3 also query_pow[q] = freq(q)^-α, group_pow[u]
 * = |u|^-α and walk[x] = Σ_{u ∋ q, col[x]} |u|^-α for every entry x of
 * every row q (r->nnz doubles), summed exactly as score_row sums it.
 * Owned; embedded; zero it before the first score_prep_update. */
struct score_prep {
    double *item_pow;
    double *query_pow;
    double *group_pow;
    double *walk;
    int have_alpha; /* the α tables and walk hold alpha's */
    double alpha;
};

/* Fills prep for p over r (borrowed) and w (rp3 only; borrowed), or
 * refreshes it from the last call: the α tables and the walk sums are
 * kept when α is unchanged, so a sweep over β costs one walk per α.
 * Returns 0, -EINVAL (bad p, rp3 without w), -ENODATA (rp3 and r has no
 * groups), -ENOMEM; on error prep is released (zeroed). */
int score_prep_update(struct score_prep *prep, const struct cooc_result *r,
                      const struct score_walk *w, const struct score_params *p);

void score_prep_deinit(struct score_prep *prep);

/* The scores of row q: out[x - r->row_ptr[q]] = s(q, col[x]) for every
 * entry x of the row (caller-owned, the row's length in doubles); the
 * diagonal slot gets 0. w is needed for rp3 (else may be NULL); prep (may
 * be NULL) must have been built for the same r and p. Returns 0, -EINVAL
 * (q >= n, bad p, rp3 without w), -ENODATA (rp3 and r has no groups). */
int score_row(const struct cooc_result *r, const struct score_walk *w, const struct score_params *p,
              const struct score_prep *prep, uint32_t q, double *out);

/* The k best neighbours of q (q excluded) by s(q, ·), ranked by
 * ml/rank.h's order with tie (may be NULL). Writes up to k (index, score)
 * pairs best first to out_idx / out_score (caller-owned, k entries each);
 * returns their number (the row may hold fewer than k), or -EINVAL,
 * -ENODATA as score_row, -ENOMEM. */
int score_similar(const struct cooc_result *r, const struct score_walk *w,
                  const struct score_params *p, const struct score_prep *prep, uint32_t q,
                  uint32_t k, const uint32_t *tie, uint32_t *out_idx, double *out_score);

/* The k best items for the set in[0..n_in) by Σ_{q ∈ in} s(q, ·) (each
 * distinct input counted once, summed in input order), leaving out the
 * inputs and exclude[0..n_exclude) (indices >= n there are ignored);
 * candidates are the items sharing a group with some input. Output and
 * errors as score_similar (-EINVAL also for an input >= n). */
int score_recommend(const struct cooc_result *r, const struct score_walk *w,
                    const struct score_params *p, const struct score_prep *prep, const uint32_t *in,
                    size_t n_in, const uint32_t *exclude, size_t n_exclude, uint32_t k,
                    const uint32_t *tie, uint32_t *out_idx, double *out_score);

#endif
