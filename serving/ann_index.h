/*
 * A served model's ANN index (issue 14): two HNSW graphs (serving/ann.h),
 * one for cosine over the kNN index's unit rows and one for inner product
 * (metric=dot) over the raw rows lifted to equal norm (the "MIPS to
 * nearest neighbour" reduction of Bachrach et al. 2014: row x becomes
 * [x/M, sqrt(1 - |x|²/M²)] with M the largest norm, the query [q, 0], so
 * the largest inner product is the largest cosine of the lifted rows).
 * Candidates from a graph are re-scored with the exact score of the exact
 * path and ranked by ml/rank.h's order, so an ANN answer differs from the
 * exact one only by items the graph missed, never by a score or a tie.
 *
 * Persistence: next to the model file <name> in the models directory,
 *   <name>.ann      manifest: the model's payload CRC, shape, parameters,
 *                   build statistics, the size and CRC32 of both graphs
 *                   (64-bit little-endian fields, a header CRC);
 *   <name>.ann-cos, <name>.ann-dot   the graphs (hnswlib's format).
 * Graphs are written under temporary names and renamed, the manifest last
 * (atomically), so a manifest names only complete graphs. Loading checks
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

struct ann_index_stats {
    double build_seconds; /* of the build (also when loaded: as recorded) */
    double load_seconds;  /* reading and checking the files; 0 when built here */
    int loaded;           /* 1: read from the files, 0: built in this process */
    double recall_cosine; /* recall@10 against exact on the sample */
    double recall_dot;
    uint32_t sample; /* queries in that sample */
    struct ann_params params;
};

struct ann_index;

/* Progress of obtain: stage is "ann-load", "ann-build" or "ann-recall"
 * with its fraction 0..1; non-zero return cancels (-ECANCELED). */
typedef int (*ann_index_progress_fn)(void *ud, const char *stage, double fraction);

/* Returns the index of a model: read from <dir>/<name>.ann* when the
 * manifest matches model_crc, n and d and every CRC checks; else built
 * over idx (unit rows) and emb (raw rows, n × d, borrowed), its recall
 * measured, and written there (dir NULL: not persisted; a failed write
 * is logged and the index served anyway). Returns NULL with *err =
 * -EINVAL, -ENOMEM, -ECANCELED. Worker thread. */
struct ann_index *ann_index_obtain(const char *dir, const char *name, uint32_t model_crc,
                                   const struct knn_index *idx, const float *emb, uint32_t n,
                                   uint32_t d, const struct ann_params *p,
                                   ann_index_progress_fn progress, void *ud, int *err);

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

/* The three file names of the index of model file name, in order
 * manifest, cosine graph, dot graph: writes "<name><suffix>" to out. */
extern const char *const ann_index_suffixes[3];

/* Checks the graphs in dir against the manifest <dir>/<name>.ann (model
 * payload CRC model_crc): 0 when everything matches, -ENOENT (a file is
 * missing), -EBADMSG. Any thread. Used by replicas after a download. */
int ann_index_verify(const char *dir, const char *name, uint32_t model_crc);

#endif
