/*
 * In-memory copy of one PMI job's co-occurrence matrix, for the PMI
 * endpoints (top pairs, an item's co-occurrences) and the cooc/pmi sources
 * of similar-items queries. Loading (the .cooc file plus item names) runs
 * on the worker pool; requests wait (suspended) and are called back on the
 * loop thread (serving/loader.c). One matrix is cached: the most recently
 * loaded. Matrices are reference-counted so a reload never frees one in
 * use. Which job's matrix to serve (the newest succeeded pmi job, or the
 * one a request names) is the caller's business: serving/ does not know
 * the job system.
 */
#ifndef ITEMVEC_SERVING_PMI_CACHE_H
#define ITEMVEC_SERVING_PMI_CACHE_H

#include <stdint.h>

#include "ml/cooc.h"
#include "ml/scores.h"
#include "storage/store.h"

struct app;

/* One precomputed ordered pair of the seed's exploration query. */
struct pmi_pair {
    uint32_t i, j; /* dense indices */
    uint64_t idx;  /* entry index in the CSR */
    double score;
};

#define PMI_TOP_PAIRS 2000 /* ordered pairs kept: limit <= 1000 unordered */

struct pmi_matrix {
    int refs;
    char job[32];
    struct cooc_result res;
    struct store_item_names names; /* by item key */
    uint32_t *id_rank;             /* [res.n] each item's position in id (strcmp)
                                      order: the tie-break of ml/rank.h */
    uint32_t *by_id;               /* [res.n] dense indices in id order (the
                                      inverse of id_rank): lookups by id */
    struct score_walk walk;        /* items → playlists for rp3; zeroed when the
                                      result has no playlists (imported, or a
                                      file from before version 2) */
    struct pmi_pair *top;          /* best first */
    uint32_t n_top;
};

/* Called on the loop thread with a referenced matrix (release it with
 * pmi_matrix_unref) or NULL and a negative errno: -ENOENT (the job's file
 * is gone), -EBADMSG (corrupt file), -ENOMEM, -EIO. */
typedef void (*pmi_cache_cb)(void *arg, struct pmi_matrix *m, int rc);

/* Gets the matrix of job_id, a succeeded pmi job the caller has resolved
 * (jobs_latest_succeeded / jobs_is_succeeded). Calls cb before returning
 * when the matrix is cached or the get fails at once (-ENOMEM, -EIO,
 * -ENAMETOOLONG for an id that cannot be a job's), else on the loop thread
 * when the load (on the pool) ends: -ENOENT when the job's file is gone.
 * Loop thread. */
void pmi_cache_get(struct app *app, const char *job_id, pmi_cache_cb cb, void *arg);

void pmi_matrix_unref(struct pmi_matrix *m);

/* The item key of dense index i (< m->res.n). */
static inline uint32_t pmi_matrix_key(const struct pmi_matrix *m, uint32_t i)
{
    return m->res.keys[i];
}

/* Dense index of an item key, or -1 (binary search: keys ascend). */
int64_t pmi_matrix_index(const struct pmi_matrix *m, uint32_t key);

/* Dense index of an item id, or -1 (binary search in id order). */
int64_t pmi_matrix_find(const struct pmi_matrix *m, const char *id);

/* Drops the cached matrix (shutdown). */
void pmi_cache_deinit(void);

#endif
