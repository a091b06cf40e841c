/*
 * Top-k selection under itemvec's one ranking order, shared by everything
 * that ranks items: the kNN index (ml/knn_select.c), the serving
 * neighbour queries (serving/neighbours.c: cosine, dot, cooc, pmi) and the
 * hold-out evaluation (ml/eval.c, jobs/job_evaluate.c), so that what is
 * evaluated is ranked exactly as what is served.
 *
 * The order (docs/algorithms.md, "Exact scores and the tie rule"):
 *   1. score descending (compared as double; a float score converts
 *      exactly, so float callers keep their order);
 *   2. among equal scores, tie[j] ascending, where tie[j] is item j's
 *      position in the byte-wise (strcmp) order of the item ids — "ties
 *      by id" as the API documents it; the caller computes it once per
 *      model or matrix (NULL: skip this step);
 *   3. then the index j ascending (decides only when tie is NULL).
 * Indices are distinct, so this is a total order on finite scores and the
 * top k is unique: a heap, an insertion list or a full sort all give the
 * same list. NaN scores have no place in it (callers never produce them:
 * model files, PMI results and the kNN index reject or cannot hold them).
 *
 * Pure math, no I/O, no allocation: storage is the caller's. A struct
 * rank_top is used by one thread at a time.
 */
#ifndef ITEMVEC_ML_RANK_H
#define ITEMVEC_ML_RANK_H

#include <stddef.h>
#include <stdint.h>

/* Is (sa, a) ranked before (sb, b)? tie may be NULL. */
static inline int rank_before(double sa, uint32_t a, double sb, uint32_t b, const uint32_t *tie)
{
    if (sa != sb)
        return sa > sb;
    if (tie && tie[a] != tie[b])
        return tie[a] < tie[b];
    return a < b;
}

/* qsort-style comparison under the order: < 0 when (sa, a) comes first,
 * > 0 when (sb, b) does, 0 only for the same index. */
int rank_compare(double sa, uint32_t a, double sb, uint32_t b, const uint32_t *tie);

/* A bounded top-k: the best cap (index, score) pairs pushed so far, kept
 * as a heap with the worst at the root in the caller's arrays. Fill with
 * rank_top_push, then rank_top_sort leaves them best first. */
struct rank_top {
    uint32_t *idx;       /* [cap], borrowed */
    double *score;       /* [cap], borrowed */
    const uint32_t *tie; /* borrowed, may be NULL */
    uint32_t cap;
    uint32_t size; /* pairs held, <= cap */
};

/* Starts an empty top-cap in idx / score (cap entries each, caller-owned;
 * cap may be 0). tie (may be NULL) must cover every index pushed. */
void rank_top_init(struct rank_top *t, uint32_t *idx, double *score, uint32_t cap,
                   const uint32_t *tie);

void rank__top_replace_root(struct rank_top *t, double score, uint32_t j);
void rank__top_append(struct rank_top *t, double score, uint32_t j);

/* Offers item j with score; j must not have been pushed before. Keeps it
 * when there is room or when it ranks before the current worst. */
static inline void rank_top_push(struct rank_top *t, double score, uint32_t j)
{
    if (t->size < t->cap)
        rank__top_append(t, score, j);
    else if (t->cap > 0 && rank_before(score, j, t->score[0], t->idx[0], t->tie))
        rank__top_replace_root(t, score, j);
}

/* Sorts the pairs held best first (in place, O(size log size)) and returns
 * their number. Push nothing after it. */
uint32_t rank_top_sort(struct rank_top *t);

/* The best k (q excluded) of the inner products e_q·e_j of n dense rows of
 * dim floats (row i at emb + i·dim, borrowed), each accumulated in double
 * in index order: an exact O(n·dim) scan. Writes up to k pairs best first
 * to out_idx / out_score (caller-owned, k entries each; the score is the
 * double sum). Returns the number written, min(k, n - 1), or -EINVAL (emb,
 * out_idx or out_score NULL, q >= n). Thread-safe; allocates nothing. */
int rank_dot(const float *emb, uint32_t n, uint32_t dim, uint32_t q, uint32_t k,
             const uint32_t *tie, uint32_t *out_idx, double *out_score);

/* The best k entries of row q of a CSR matrix (row_ptr[q]..row_ptr[q+1]
 * of col / value, borrowed) by value, the diagonal (col == q) skipped.
 * Writes up to k pairs (column, value) best first; returns their number.
 * Thread-safe; allocates nothing. */
int rank_row(const uint64_t *row_ptr, const uint32_t *col, const double *value, uint32_t q,
             uint32_t k, const uint32_t *tie, uint32_t *out_idx, double *out_score);

#endif
