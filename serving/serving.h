/*
 * Models in memory for serving: the active model (its embeddings, a
 * normalised kNN index with precomputed top-K neighbour lists, and item
 * ids/titles/artists) plus other models on demand (for ?model= queries and
 * exports), kept in a least-recently-used cache bounded by
 * serving.model_cache_bytes. Loading runs on the worker pool; the swap to a new active
 * model happens on the loop thread in one pointer assignment, so queries
 * (which run on the loop thread) see the old model or the new one, never a
 * half-loaded one. Models are reference-counted: a streaming export keeps
 * its model alive after a swap; memory is freed when the last user goes.
 */
#ifndef ITEMVEC_SERVING_SERVING_H
#define ITEMVEC_SERVING_SERVING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/model_file.h"

struct app;
struct knn_index;
struct ann_index;

/* Which index answers a model's similar queries ([serving] index). */
enum serving_index_mode { SERVING_INDEX_AUTO, SERVING_INDEX_EXACT, SERVING_INDEX_ANN };

struct served_model {
    int refs;
    char id[40];
    char pmi_job[32];
    struct model_data data;    /* keys (ascending) and raw embeddings */
    struct knn_index *index;   /* normalised rows; lists when precomputed */
    char **ids, **titles, **artists; /* [n], owned */
    uint32_t *by_id;           /* [n] indices sorted by id (lookup) */
    uint32_t *rank;            /* [n] position of each item in id order (tie-break) */
    int precomputed;
    double load_seconds, precompute_seconds;
    struct ann_index *ann;     /* when the model is served from an ANN index, else NULL */
    size_t bytes; /* served_model_bytes, taken when the build ends */
};

/* Progress of a long step of serving_model_build: stage ("read", "names",
 * "normalise", "precompute", "ann-load", "ann-build", "ann-lists", "ann-recall") and the
 * fraction of the whole build done, 0..1. Called on the building thread. */
typedef void (*serving_progress_fn)(void *ud, const char *stage, double fraction);

/* How serving_model_build prepares a model. */
struct serving_build_opts {
    uint32_t topk;                 /* neighbours per precomputed list */
    int threads;                   /* math threads (precompute, ANN build) */
    int precompute;                /* precompute the lists when the index is exact */
    enum serving_index_mode mode;  /* auto: ANN from ann_min_items items on */
    int64_t ann_min_items;
    uint32_t ann_ef_search;
    const char *models_dir;        /* where the model file is: the ANN index is kept */
    const char *file;              /* beside it (NULL: built, not kept) */
    serving_progress_fn progress;  /* may be NULL */
    void *progress_ud;
    const atomic_int *cancel;      /* may be NULL; non-zero: the build stops at its next
                                      progress report with -ECANCELED (shutdown) */
};

/* Fills o from the config: topk, threads, index mode, ANN settings;
 * precompute 1, no files, no progress. Loop thread (reads app->cfg). */
void serving_build_opts_init(struct app *app, struct serving_build_opts *o);

/* Whether a model of n items is served from an ANN index under o. */
int serving_build_wants_ann(const struct serving_build_opts *o, uint32_t n);

/* The index kind a model's similar answers come from ("exact" or "ann"). */
const char *served_model_index_kind(const struct served_model *m);

/* Loop thread: the progress of the model being loaded for serving, when
 * model_id is loading: 1 with *fraction and stage (stage_size bytes)
 * filled, else 0. */
int serving_loading(struct app *app, const char *model_id, double *fraction, char *stage,
                    size_t stage_size);

typedef void (*serving_cb)(void *arg, struct served_model *m, int rc);

/* Loads model_id (a stored model) and makes it the active one; cb (may be
 * NULL) gets the model (a reference) or an error: -ENOENT (no such model
 * or file), -EBADMSG (corrupt file). Loop thread. */
void serving_activate(struct app *app, const char *model_id, serving_cb cb, void *arg);

/* Any thread (a job's worker): builds a served model from data (taken,
 * zeroed) with item names read through s (the caller's own handle), then
 * its index as o says: an ANN index (read from beside the model file when
 * it is there and matches, else built and saved there), or, when
 * o->precompute, the top-topk neighbour lists. *out is a new reference.
 * Returns 0 or a negative errno. */
struct store;
int serving_model_build(struct store *s, const char *id, const char *pmi_job,
                        struct model_data *data, const struct serving_build_opts *o,
                        struct served_model **out);

/* As serving_model_build, with the item names given (borrowed; indexed by
 * item key) instead of read from storage: a replica's mirrored names. */
struct store_item_names;
int serving_model_build_names(const struct store_item_names *names, const char *id,
                              const char *pmi_job, struct model_data *data,
                              const struct serving_build_opts *o, struct served_model **out);

/* Loop thread: makes m (reference taken) the active model, swapping it in
 * atomically for queries. */
void serving_install_active(struct app *app, struct served_model *m);

/* At start-up: starts loading the stored active model on the worker pool
 * (file, names, then the precomputed lists or the ANN index: minutes for
 * a big catalogue whose index is not on disk yet), so the daemon listens
 * meanwhile; the load reports progress like an activation
 * (serving_loading) and installs the model when done, unless another was
 * activated first. Returns 0 (also when there is no active model) or an
 * error starting it. Loop thread. */
int serving_start_active(struct app *app);

/* Shutdown: the builds of served models in flight (start-up load,
 * activations) stop at their next progress report (-ECANCELED), so a
 * drain does not wait minutes for an index nobody will query. Loop
 * thread. */
void serving_cancel_builds(struct app *app);

/* The id of the active model the start-up load is still building, or NULL
 * (/readyz is 503 meanwhile; queries of the active model get -EAGAIN). */
const char *serving_starting(struct app *app);

/* The active model (borrowed; valid until control returns to the loop) or
 * NULL. */
struct served_model *serving_active(struct app *app);

/* Gets model_id (NULL/"" = active): from memory, or loaded on the pool
 * (without precomputed lists unless it is the active one) into the cache
 * of other models: least recently used ones are evicted while the cached
 * models hold more than serving.model_cache_bytes (read at each get, so a
 * reload applies; the most recent one always stays). cb gets a reference
 * or -ENOENT (no active model → -ENODATA; the active one still loading at
 * start-up → -EAGAIN). */
void serving_get(struct app *app, const char *model_id, serving_cb cb, void *arg);

void served_model_ref(struct served_model *m);
void served_model_unref(struct served_model *m);

/* Index of an item id in the model, or -1. */
int64_t served_model_find(const struct served_model *m, const char *id);

/* Bytes held by the model (embeddings, index, lists, names). */
size_t served_model_bytes(const struct served_model *m);

/* The cache of other models, for /metrics. Loop thread. */
struct serving_cache_stats {
    unsigned models;             /* cached */
    size_t bytes;                /* they hold */
    size_t budget;               /* serving.model_cache_bytes as last applied */
    unsigned long long loads;    /* loads that ended (hits do not load) */
    unsigned long long evictions;
};
void serving_cache_stats(struct app *app, struct serving_cache_stats *out);

/* Drops the cached models (shutdown). */
void serving_deinit(struct app *app);

#endif
