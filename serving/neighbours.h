/*
 * Neighbour queries for every source behind one interface: the k items
 * nearest to an item (or, for recommend, to a set of items) by
 *   embedding, metric cosine  the model's ANN index when it has one
 *                             (serving/ann_index.h), else the kNN index
 *                             (ml/knn.h): precomputed lists or an exact scan;
 *   embedding, metric dot     the ANN index's inner-product graph, else the
 *                             exact inner-product scan (ml/rank.h);
 *   cooc                      co-occurrence count, one matrix row, times
 *                             freq(j)^pop_weight (ml/scores.h);
 *   pmi                       the seed's score cooc·pmi, one matrix row;
 *   rp3                       the random walk item → playlist → item
 *                             (P³α / RP³β, ml/scores.h) over the PMI
 *                             result's valid playlists;
 * all ranked by ml/rank.h's one order (score descending, ties by item id).
 * A recommendation (a set of items) ranks by the sum of the inputs'
 * vectors (embedding) or of their scores (cooc, pmi, rp3).
 * The HTTP handlers (api/route_similar.c) and the evaluate job
 * (jobs/job_evaluate.c) both rank through here, so what is evaluated is
 * what is served.
 *
 * Pure computation on borrowed, immutable data: any thread, no state.
 * Allocations are scratch only (the cosine scan's, a matrix row's, a
 * recommendation's accumulator), so the runtime errors are -ENOMEM, which
 * callers must pass on (HTTP: 503), and -ENODATA for rp3 on a PMI result
 * without its playlists (an imported table or a file from an older
 * version).
 */
#ifndef ITEMVEC_SERVING_NEIGHBOURS_H
#define ITEMVEC_SERVING_NEIGHBOURS_H

#include <stddef.h>
#include <stdint.h>

#define SERVING_MAX_K 1000

struct knn_index;
struct ann_index;
struct cooc_result;
struct score_walk;
struct score_prep;
struct served_model;
struct pmi_matrix;

enum serving_source {
    SERVING_SOURCE_EMBEDDING,
    SERVING_SOURCE_COOC,
    SERVING_SOURCE_PMI,
    SERVING_SOURCE_RP3,
};
enum serving_metric { SERVING_METRIC_COSINE, SERVING_METRIC_DOT };

/* What queries rank over: borrowed views of one item numbering 0..n-1
 * (a model's, or a co-occurrence matrix's dense indices). Fill it with
 * serving_items_of_model / serving_items_of_pmi, or by hand (the evaluate
 * job's in-memory model). A view a source does not need may stay NULL. */
struct serving_items {
    uint32_t n;
    const uint32_t *tie;           /* [n] position in id (strcmp) order: the tie-break */
    const struct knn_index *index; /* embedding cosine (it holds its own copy of tie) */
    const float *emb;              /* embedding dot: n rows of dim floats */
    uint32_t dim;
    const struct cooc_result *cooc; /* cooc, pmi, rp3: the matrix, n = its items */
    const struct score_walk *walk;  /* rp3: items → playlists (NULL: none kept) */
    const struct ann_index *ann;    /* embedding: the ANN index, NULL when exact */
};

struct serving_query {
    enum serving_source source;
    enum serving_metric metric; /* embedding only; the matrix sources take cosine (the default) */
    uint32_t k;                 /* 1..SERVING_MAX_K */
    uint32_t item;              /* the query item (its index), itself left out */
    double pop_weight;          /* cooc: γ, 0 = the plain count */
    double alpha, beta;         /* rp3 */
    const struct score_prep *prep; /* matrix sources: precomputed powers of
                                      these params (ml/scores.h), or NULL */
    /* recommend when items is not NULL (embedding cosine or a matrix
     * source): rank by the sum of these items' normalised vectors
     * (ml/knn.h) or of their scores (ml/scores.h), leaving out the items
     * and exclude[0..n_exclude); item is then unused */
    const uint32_t *items;
    size_t n_items;
    const uint32_t *exclude;
    size_t n_exclude;
    int exact; /* embedding similar: the exact path even when there is an ANN index */
};

/* Which index serving_neighbours_query uses for q over src: "ann" (the
 * ANN index: embedding similar, cosine or dot, src->ann set, q->exact 0)
 * or "exact" (everything else). */
const char *serving_neighbours_index(const struct serving_items *src, const struct serving_query *q);

/* Runs query q over src: writes up to q->k (index, score) pairs best
 * first to out_idx / out_score (caller-owned, q->k entries each); a
 * cosine score is the float the index ranks by, widened exactly to
 * double. Returns the number written (fewer than k when the source has
 * fewer neighbours: a matrix row holds only co-occurring items), or
 * -EINVAL (k outside 1..SERVING_MAX_K, the source's view missing, an index
 * >= n, a metric or recommend the source does not have, params out of
 * ml/scores.h's bounds), -ENODATA (rp3 without the walk), -ENOMEM. */
int serving_neighbours_query(const struct serving_items *src, const struct serving_query *q,
                             uint32_t *out_idx, double *out_score);

/* What q costs over src, in scores computed (each a dim-long dot product
 * for the embedding scans, one multiply for a matrix row): k for a cosine
 * lookup in precomputed lists, n·dim (+ n_items·dim for recommend) for an
 * exact scan (cosine beyond the lists, dot, recommend); for the matrix
 * sources the row's length, plus for rp3 the sizes of the playlists the
 * walk goes through, summed over the inputs of a recommend; 0 for a query
 * serving_neighbours_query refuses. Lets a caller run cheap queries in
 * place and move expensive ones off a latency-sensitive thread. Any
 * thread; O(1), O(inputs), or O(the item's playlists) for rp3. An ANN
 * query costs about ef · 2M · dim (the graph's candidates and their links),
 * a cosine one answered from the index's kept lists k · dim. */
uint64_t serving_neighbours_cost(const struct serving_items *src, const struct serving_query *q);

/* The views of a served model (embeddings, index, id order), borrowed
 * from m. */
void serving_items_of_model(const struct served_model *m, struct serving_items *out);

/* The views of a PMI matrix (matrix, id order), borrowed from m. */
void serving_items_of_pmi(const struct pmi_matrix *m, struct serving_items *out);

/* A ranker for ml/eval.h's eval_score (an eval_rank_fn): ud is a struct
 * serving_ranker; ranks q's neighbours like a similar query with the
 * ranker's source, metric and params (query.source/metric/pop_weight/
 * alpha/beta/prep; its k, item and items are set per call). Not reentrant
 * (score is its scratch). */
struct serving_ranker {
    struct serving_items items;
    struct serving_query query;
    double score[SERVING_MAX_K];
};
int serving_neighbours_rank(void *ud, uint32_t q, uint32_t k, uint32_t *out);

/* The same for ml/eval.h's eval_continue (an eval_recommend_fn): ranks
 * like a recommend query for the set in[0..n_in). */
int serving_neighbours_recommend(void *ud, const uint32_t *in, size_t n_in, uint32_t k,
                                 uint32_t *out);

#endif
