/*
 * Exact nearest neighbours by cosine similarity over a model's item
 * embeddings: the kernel behind GET /v1/items/{id}/similar and POST
 * /v1/recommend (docs/API.md "Similar items"; issue 5).
 *
 * A struct knn_index holds n items × d dims as one contiguous row-major
 * float matrix of L2-normalised rows, so cosine similarity is a dot product
 * (the blueprint's ANN index ranks by dot product on unit vectors: the same
 * ranking). knn_index_precompute then stores every item's top-K neighbours
 * (tiled SGEMM + streaming per-row selection, on a pthread pool), so
 * "similar" with k <= K is a copy; larger k and arbitrary query vectors
 * ("recommend") are answered by an exact scan (SGEMV + the same exact
 * selection over one whole row).
 *
 * Exactness and ties. The score of items i, j is the cosine of their stored
 * normalised rows, accumulated in double and rounded once to float:
 * score(i, j) = (float) Σ_t (double)u_i[t]·(double)u_j[t], the sum taken in
 * a fixed order (four partial sums over t mod 4, then (s0 + s1) + (s2 + s3);
 * knn_index_score computes it). Results are
 * the top k by (score descending, rank[j] ascending, j ascending) — the
 * order of the floats the caller sees, with visible ties broken by rank
 * (the API breaks ties by item id: pass rank = id order, or NULL when index
 * order already is id order). Float BLAS only shortlists candidates, with a
 * margin that covers its rounding error, so results do not depend on BLAS
 * blocking, block size or thread count, and a lookup equals a scan.
 *
 * Zero rows: an item whose embedding has norm 0 stays a zero row; its score
 * with every item is 0 (it ranks among items by rank when scores tie at 0).
 * A zero query vector likewise scores 0 with everything.
 *
 * Pure math, no I/O. Threading: after knn_index_create and (optionally)
 * knn_index_precompute return, the index is immutable and every const
 * function may be called from any number of threads concurrently.
 * See docs/algorithms.md, "Nearest neighbours".
 */
#ifndef ITEMVEC_ML_KNN_H
#define ITEMVEC_ML_KNN_H

#include <stddef.h>
#include <stdint.h>

#define KNN_MAX_DIMENSIONS 65536
#define KNN_MAX_THREADS 64
#define KNN_DEFAULT_K 100

struct knn_index;

/* Precompute parameters. */
struct knn_params {
    uint32_t k;          /* neighbours stored per item, >= 1 (clamped to n - 1) */
    int threads;         /* worker threads, 1..KNN_MAX_THREADS; results do not depend on it */
    uint32_t block_rows; /* rows per task and SGEMM tile, 0 = automatic (256);
                            any value >= 1 gives the same results */
    uint32_t block_cols; /* columns per SGEMM tile, 0 = automatic (1024); any
                            value >= 1 gives the same results */
};

/* Fills p with K = KNN_DEFAULT_K, 2 threads, automatic blocks. */
void knn_params_init(struct knn_params *p);

struct knn_progress {
    double fraction;     /* 0..1 */
    uint64_t rows_done;  /* items whose lists are finished */
    uint64_t rows_total; /* n */
};

/* Returns 0 to go on; anything else cancels (-ECANCELED). */
typedef int (*knn_progress_cb)(void *userdata, const struct knn_progress *p);

/* Builds an index over n items of d dims: row i of the input is the d
 * floats at emb + i·stride (stride >= d, in floats). Each row is
 * normalised in double and stored as float; zero rows stay zero.
 *
 * rank (may be NULL) gives n tie-break keys: among equal scores, lower
 * rank[j] comes first, then lower j. NULL means index order.
 *
 * Ownership: emb and rank are borrowed for the call only; the index owns
 * copies. The caller owns the result (knn_index_destroy).
 *
 * Errors: returns NULL with *err (if err is not NULL) = -EINVAL (emb NULL,
 * n == 0 or n > INT32_MAX (BLAS takes int sizes), d outside 1..KNN_MAX_DIMENSIONS, stride < d, a
 * non-finite value), -EOVERFLOW (n·d does not fit in memory sizes),
 * -ENOMEM. Reentrant.
 */
struct knn_index *knn_index_create(const float *emb, uint32_t n, uint32_t d, size_t stride,
                                   const uint32_t *rank, int *err);

/* Frees the index. NULL is a no-op. No query may be running on it. */
void knn_index_destroy(struct knn_index *idx);

/* Computes and stores every item's top-min(k, n-1) neighbours (the item
 * itself excluded), best first, replacing lists from an earlier call.
 * Cost: n²·d multiply-adds in float SGEMM, tiles of block_rows ×
 * block_cols scores per thread; selection O(n) per item, one streaming
 * pass. OpenBLAS is set to 1 thread (openblas_set_num_threads(1),
 * process-wide) because our workers call it concurrently; the daemon runs
 * with OPENBLAS_NUM_THREADS=1 anyway.
 *
 * Progress: cb (may be NULL) runs on the calling thread, once before any
 * work (fraction 0), about every 50 ms, and once at the end (fraction 1,
 * its return value then ignored); a non-zero return stops the workers
 * within one block and the call returns -ECANCELED.
 *
 * On any error the index keeps its previous lists (or none).
 * Errors: -EINVAL (idx or p NULL, p->k == 0, threads out of range),
 * -EOVERFLOW (n·k too large), -ENOMEM, -EAGAIN (thread creation failed),
 * -ECANCELED.
 *
 * Threading: not concurrent with any other call on idx (it writes the
 * lists); runs p->threads threads, the caller's among them, joined before
 * returning. Memory: 8·n·K bytes of lists plus per thread
 * 4·block_rows·block_cols + 8·block_rows·(3K + 16) + 4·n + 16·K bytes of scratch
 * (2 MB at the automatic sizes, K = 100, 92.7 k items).
 */
int knn_index_precompute(struct knn_index *idx, const struct knn_params *p, knn_progress_cb cb,
                         void *userdata);

/* Item i's k nearest neighbours (i excluded), best first: writes up to k
 * indices and scores to out_idx / out_score (caller-owned, k entries each;
 * out_score may be NULL). Uses the precomputed lists when k <= K (or when
 * they hold all n - 1 items), else an exact scan; both give the same
 * answer. Returns the number written, min(k, n - 1), or -EINVAL (NULL idx /
 * out_idx, i >= n), -ENOMEM (scan scratch: n + 3k floats and k doubles).
 * Thread-safe.
 */
int knn_index_neighbors(const struct knn_index *idx, uint32_t i, uint32_t k, uint32_t *out_idx,
                        float *out_score);

/* The k items most similar to the vector q (d floats, any norm; it is
 * normalised like the rows, and a zero q scores 0 with everything), by
 * exact scan, best first, skipping the n_exclude indices in exclude (any
 * order, duplicates allowed; may be NULL when n_exclude is 0). Writes up
 * to k entries to out_idx / out_score (out_score may be NULL). Returns the
 * number written, min(k, n - excluded items), or -EINVAL (NULL idx / q /
 * out_idx, a non-finite q, an exclude index >= n), -ENOMEM. Thread-safe;
 * allocates n + 3k floats and k doubles of scratch per call.
 */
int knn_index_query_vector(const struct knn_index *idx, const float *q, uint32_t k,
                           const uint32_t *exclude, size_t n_exclude, uint32_t *out_idx,
                           float *out_score);

/* out (d floats, caller-owned) = Σ over items[0..n_items) of the items'
 * normalised rows (accumulated in double; a repeated item counts again;
 * n_items == 0 gives the zero vector). This is the "recommend" query: the
 * sum of unit vectors weighs each input equally, whatever its norm.
 * Returns 0 or -EINVAL (NULL arguments, an index >= n). Thread-safe.
 */
int knn_index_sum_normalised(const struct knn_index *idx, const uint32_t *items, size_t n_items,
                             float *out);

/* "recommend" in one call: query_vector of the sum of the items'
 * normalised rows, excluding the items themselves and exclude[0..n_exclude)
 * (any order, duplicates allowed). Returns as knn_index_query_vector.
 */
int knn_index_recommend(const struct knn_index *idx, const uint32_t *items, size_t n_items,
                        const uint32_t *exclude, size_t n_exclude, uint32_t k, uint32_t *out_idx,
                        float *out_score);

/* Accessors (thread-safe). row returns the stored normalised row i (d
 * floats, borrowed from the index; NULL when i >= n). k is the number of
 * neighbours stored per item, 0 before a successful precompute. */
uint32_t knn_index_n(const struct knn_index *idx);
uint32_t knn_index_dims(const struct knn_index *idx);
uint32_t knn_index_k(const struct knn_index *idx);
const float *knn_index_row(const struct knn_index *idx, uint32_t i);

/* The score knn ranks by for items i and j (see the top of this file);
 * NAN when i or j >= n. Thread-safe. */
float knn_index_score(const struct knn_index *idx, uint32_t i, uint32_t j);

/* Bytes held by the index: matrix, rank copy, lists, the struct. */
size_t knn_index_bytes(const struct knn_index *idx);

#endif
