/*
 * An approximate-nearest-neighbour graph over n rows of d floats, ranked
 * by inner product: the C face of the one C++ file in the project
 * (serving/ann_hnsw.cpp, a shim over hnswlib's HNSW, Malkov & Yashunin
 * 2018; docs/algorithms.md "ANN index" says why hnswlib and not FAISS).
 * Callers give it unit rows for cosine, or rows made equal-norm for inner
 * product (serving/index.c does both); this file knows nothing of models.
 *
 * Threads: ann_build runs its own threads (the caller's among them) and
 * returns a finished graph; after that the graph is immutable and
 * ann_search may run on any number of threads at once. Ownership: the
 * caller owns what _build/_load return (ann_destroy).
 */
#ifndef ITEMVEC_SERVING_ANN_H
#define ITEMVEC_SERVING_ANN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ann;

struct ann_params {
    uint32_t m;               /* links per node (HNSW M), 4..64 */
    uint32_t ef_construction; /* candidate list while building, >= m */
    uint32_t ef_search;       /* candidate list per query (at least k is used) */
    int threads;              /* build threads, 1..64 */
    uint64_t seed;            /* level generator seed: same input, same graph per thread count */
};

/* Fills p with the defaults measured in docs/benchmarks.md: m 16,
 * ef_construction 100, ef_search 64, 2 threads, seed 100. */
void ann_params_init(struct ann_params *p);

/* Called on the building thread about every 1 % of the rows with the
 * fraction done; a non-zero return cancels the build (-ECANCELED). */
typedef int (*ann_progress_fn)(void *ud, double fraction);

/* Builds a graph over rows (n × d floats, row-major, borrowed for the
 * call; the graph keeps its own copy). Returns NULL with *err = -EINVAL
 * (n == 0, d == 0, bad params), -ENOMEM, -ECANCELED. */
struct ann *ann_build(const float *rows, uint32_t n, uint32_t d, const struct ann_params *p,
                      ann_progress_fn progress, void *ud, int *err);

/* The k rows with the largest inner product with q (d floats), best
 * first: writes up to k row indices to out (caller-owned, k entries).
 * Returns the number written, or -EINVAL, -ENOMEM. Thread-safe. */
int ann_search(const struct ann *a, const float *q, uint32_t k, uint32_t *out);

/* Writes the graph to path (replaced atomically by the caller: write a
 * temporary name, then rename). 0 or -EIO. */
int ann_save(const struct ann *a, const char *path);

/* Reads a graph of d-float rows written by ann_save, with ef_search ef.
 * NULL with *err = -ENOENT, -EBADMSG (not such a graph, or another d),
 * -ENOMEM. */
struct ann *ann_load(const char *path, uint32_t d, uint32_t ef, int *err);

uint32_t ann_count(const struct ann *a);
/* Bytes the graph holds (vectors, links, visited lists). */
size_t ann_bytes(const struct ann *a);
void ann_destroy(struct ann *a);

#ifdef __cplusplus
}
#endif
#endif
