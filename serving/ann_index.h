/*
 * A served model's ANN index (issue 14): one HNSW graph (serving/ann.h)
 * over the kNN index's unit rows. It answers cosine queries directly and
 * inner-product ones (metric=dot) as candidates: the query's
 * ANN_DOT_CANDIDATES x ef_search nearest rows by cosine, re-scored by
 * their exact inner product (q·j = |q| |j| cos: an item ranks high by dot
 * when its cosine is high and its norm large, so the candidates hold the
 * dot top-k unless a row of a low cosine has a far larger norm than the
 * rest), and the max(1024, n / 256) rows of largest norm, re-scored too,
 * so such rows are not missed (at 1 M x 64 planted clusters with
 * log-normal norms, recall@10 of dot was 0.88 from the cosine candidates
 * alone); the build-time recall sample measures what is left.
 * Candidates are re-scored with the exact score of the exact path and
 * ranked by ml/rank.h's order, so an ANN answer differs from the exact
 * one only by items the graph missed, never by a score or a tie.
 *
 * A second graph over rows lifted to equal norm for inner product (the
 * "MIPS to nearest neighbour" reduction of Bachrach et al. 2014) was
 * tried first: it doubled the build time and memory and its recall@10
 * fell to 0.63 at 1 M x 64 (docs/algorithms.md "ANN index").
 *
 * Lists: after the graph, every item's list_k cosine neighbours are
 * searched once through it (on the build threads) and kept, ranked, as
 * item indices: a cosine query with k <= list_k is then a copy plus k
 * exact scores, the same answer a graph search gives (the search's
 * candidate pool is ef_search whatever k <= ef_search), at the cost of a
 * lookup instead of a search (a graph search at 1 M x 64 costs ~150 µs,
 * most of it cache misses).
 *
 * Persistence: next to the model file <name> in the models directory,
 *   <name>.ann        manifest: the model's payload CRC, shape, parameters,
 *                     build statistics, the size and CRC32 of the graph
 *                     and of the lists (64-bit little-endian fields, a
 *                     header CRC);
 *   <name>.ann-cos    the graph (hnswlib's format);
 *   <name>.ann-lists  n x list_k u32 item indices (little-endian),
 *                     UINT32_MAX after the last neighbour of a short list.
 * Parts are written under temporary names and renamed, the manifest last
 * (atomically), so a manifest names only complete parts. Loading checks
 * every CRC and the model's; any mismatch means "rebuild".
 *
 * Threads: ann_index_obtain runs on a worker (it builds with p->threads
 * threads); the result is immutable and queried from any thread.
 */
#ifndef ITEMVEC_SERVING_ANN_INDEX_H
#define ITEMVEC_SERVING_ANN_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "serving/ann.h"

struct knn_index;

#define ANN_INDEX_RECALL_SAMPLE 200 /* queries the build-time recall@10 is measured on */
#define ANN_DOT_CANDIDATES 8        /* metric=dot re-scores 8 x ef_search cosine candidates */
#define ANN_INDEX_PARTS 3           /* files: the manifest, the graph, the lists */
#define ANN_INDEX_MAX_LIST_K 1000   /* neighbours kept per item at most */

struct ann_index_stats {
    double build_seconds; /* of the build (also when loaded: as recorded) */
    double load_seconds;  /* reading and checking the files; 0 when built here */
    int loaded;           /* 1: read from the files, 0: built in this process */
    double recall_cosine; /* recall@10 against exact on the sample */
    double recall_dot;
    uint32_t sample; /* queries in that sample */
    uint32_t list_k; /* neighbours kept per item (0: none, every query searches) */
    double lists_seconds; /* of the lists, included in build_seconds */
    struct ann_params params;
};

struct ann_index;

/* Progress of obtain: stage is "ann-load", "ann-build", "ann-lists" or "ann-recall"
 * with its fraction 0..1; non-zero return cancels (-ECANCELED). */
typedef int (*ann_index_progress_fn)(void *ud, const char *stage, double fraction);

/* Returns the index of a model: read from <dir>/<name>.ann* when the
 * manifest matches model_crc, n and d and every CRC checks; else built
 * over idx (unit rows) and emb (raw rows, n × d, borrowed) with lists of
 * list_k neighbours (at most n - 1 and ANN_INDEX_MAX_LIST_K; 0: none)
 * ranked with tie (borrowed, may be NULL: as ann_index_neighbors), its
 * recall measured, and written there (dir NULL: not persisted; a failed
 * write is logged and the index served anyway). Returns NULL with *err =
 * -EINVAL, -ENOMEM, -ECANCELED. Worker thread. */
struct ann_index *ann_index_obtain(const char *dir, const char *name, uint32_t model_crc,
                                   const struct knn_index *idx, const float *emb,
                                   const uint32_t *tie, uint32_t n, uint32_t d, uint32_t list_k,
                                   const struct ann_params *p, ann_index_progress_fn progress,
                                   void *ud, int *err);

/* Item q's k neighbours (q excluded) by cosine (dot = 0) or inner product
 * (dot = 1) from the graph, re-scored exactly (cosine: knn_index_score;
 * dot: the double sum of rank_dot) and ranked with tie (borrowed, may be
 * NULL). Writes up to k pairs to out_idx / out_score. Returns the number
 * written or -EINVAL, -ENOMEM. Thread-safe. */
int ann_index_neighbors(const struct ann_index *a, const struct knn_index *idx, const float *emb,
                        const uint32_t *tie, int dot, uint32_t q, uint32_t k, uint32_t *out_idx,
                        double *out_score);

const struct ann_index_stats *ann_index_stats(const struct ann_index *a);
size_t ann_index_bytes(const struct ann_index *a);
void ann_index_destroy(struct ann_index *a);

/* The suffixes of the index files of model file name, in order
 * manifest, graph: "<name><suffix>". */
extern const char *const ann_index_suffixes[ANN_INDEX_PARTS];

/* Checks the graphs in dir against the manifest <dir>/<name>.ann (model
 * payload CRC model_crc): 0 when everything matches, -ENOENT (a file is
 * missing), -EBADMSG. Any thread. Used by replicas after a download. */
int ann_index_verify(const char *dir, const char *name, uint32_t model_crc);

#endif
