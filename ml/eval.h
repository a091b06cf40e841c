/*
 * Hold-out evaluation of item-to-item neighbours (the evaluate job,
 * docs/quality.md). For each held-out playlist with at least two items
 * known to the model, and each such item q, the method's top-k
 * neighbours of q (q excluded) are compared with R = the rest of that
 * playlist's known items:
 *   hit@k    = share of queries with |top-k ∩ R| > 0
 *   recall@k = mean over queries of |top-k ∩ R| / min(k, |R|)
 *   coverage@k = share of the n items that appear in some query's top-k
 * Methods plug in as ranking callbacks; rankers for a sparse matrix row
 * (co-occurrence count, cooc·pmi score), for popularity and for a kNN
 * index are provided. No I/O.
 */
#ifndef ITEMVEC_ML_EVAL_H
#define ITEMVEC_ML_EVAL_H

#include <stddef.h>
#include <stdint.h>

#define EVAL_MAX_KS 8
#define EVAL_MAX_K 1000

/* Held-out playlists over dense item indices 0..n-1: list l holds
 * items[offsets[l] .. offsets[l+1]-1], unique (order free). Items unknown
 * to the model must already be left out. Borrowed. */
struct eval_lists {
    size_t n;
    const uint64_t *offsets;
    const uint32_t *items;
};

/* Writes q's best k items (q excluded), best first, to out; returns how
 * many (<= k) or a negative errno. Called from one thread. */
typedef int (*eval_rank_fn)(void *userdata, uint32_t q, uint32_t k, uint32_t *out);

/* Return non-zero to cancel (eval_score then returns -ECANCELED). */
typedef int (*eval_progress_fn)(void *userdata, double fraction);

struct eval_metrics {
    uint32_t k;
    uint64_t queries;
    double hit;      /* hit@k */
    double recall;   /* recall@k */
    double coverage; /* coverage@k */
};

/* Scores one method for each k in ks[0..n_ks) (each 1..EVAL_MAX_K) with
 * one ranking per query (at the largest k). out has n_ks entries. Returns
 * 0, -EINVAL (bad arguments, a list item >= n_items), -ENOMEM, -ECANCELED,
 * -ERANGE (the ranker returned an item >= n_items) or the ranker's error.
 * A query with no result scores 0; no query at all gives zero metrics. */
int eval_score(const struct eval_lists *test, uint32_t n_items, const uint32_t *ks, int n_ks,
               eval_rank_fn rank, void *rank_ud, eval_progress_fn progress, void *progress_ud,
               struct eval_metrics *out);

/* Playlist continuation (POST /v1/recommend's task): each held-out list
 * of n >= 2 items is split once, deterministically, into an input half
 * (floor(n/2) items) and the rest R to find; the recommender ranks the k
 * best items for the input (inputs left out), and
 *   hit@k    = share of lists with |top-k ∩ R| > 0
 *   recall@k = mean over lists of |top-k ∩ R| / min(k, |R|)
 *   coverage@k = share of the n items in some list's top-k.
 * The split orders a list's items by a seeded hash of the item
 * (eval_split_key) and takes the first half, so it does not depend on the
 * order of the lists' items nor on the method. */
typedef int (*eval_recommend_fn)(void *userdata, const uint32_t *in, size_t n_in, uint32_t k,
                                 uint32_t *out);

/* Scores one recommender like eval_score (queries = lists scored).
 * Errors as eval_score. */
int eval_continue(const struct eval_lists *test, uint32_t n_items, const uint32_t *ks, int n_ks,
                  uint64_t seed, eval_recommend_fn rec, void *rec_ud, eval_progress_fn progress,
                  void *progress_ud, struct eval_metrics *out);

/* The key that orders item i of a list for the continuation split. */
uint64_t eval_split_key(uint64_t seed, uint32_t item);

/* --- rankers: all select with ml/rank.h, the order the serving
 * endpoints answer in (score descending, ties by tie_rank, then index) ---
 */

/* By the values of q's row of a sparse matrix (CSR over dense indices,
 * borrowed): value[e] for entry e, higher first; ties by tie_rank[j]
 * ascending (NULL: by index). The diagonal is skipped. Allocates k
 * doubles per call (-ENOMEM). */
struct eval_matrix_ranker {
    const uint64_t *row_ptr;
    const uint32_t *col;
    const double *value;
    const uint32_t *tie_rank;
};
int eval_rank_matrix(void *ranker, uint32_t q, uint32_t k, uint32_t *out);

/* By the inner product e_q·e_j of dense embeddings (n rows of dim floats,
 * row i at emb + i·dim, borrowed), accumulated in double, higher first;
 * ties by tie_rank[j] ascending (NULL: by index); q excluded. A brute-force
 * scan (O(n·dim) per query) for the study's "embedding_dot" method: what
 * the factors score before the serving rule's cosine normalisation.
 * scratch: caller-owned, eval_dot_scratch_size(n) bytes, suitably aligned
 * for doubles (malloc); the ranker is not reentrant. */
struct eval_dot_ranker {
    const float *emb;
    uint32_t n, dim;
    const uint32_t *tie_rank;
    void *scratch;
};
int eval_rank_dot(void *ranker, uint32_t q, uint32_t k, uint32_t *out);
/* Bytes of scratch eval_rank_dot needs for n items. */
size_t eval_dot_scratch_size(uint32_t n);

/* By a global order (e.g. items by frequency, most frequent first),
 * skipping q. */
struct eval_order_ranker {
    const uint32_t *order; /* all n items, best first */
    uint32_t n;
};
int eval_rank_order(void *ranker, uint32_t q, uint32_t k, uint32_t *out);
/* The same order as a recommender (eval_recommend_fn), skipping the
 * inputs. */
int eval_recommend_order(void *ranker, const uint32_t *in, size_t n_in, uint32_t k,
                         uint32_t *out);

/* Orders items by a count (higher first), ties by tie_rank: the
 * popularity baseline's order. order is caller-owned, n entries. */
int eval_order_by_count(const uint32_t *count, const uint32_t *tie_rank, uint32_t n,
                        uint32_t *order);

/* Deterministic split: a playlist with id hash h is held out when
 * h / 2^64 < fraction. */
int eval_is_heldout(uint64_t id_hash, double fraction);

#endif
