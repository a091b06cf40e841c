/*
 * One asynchronous cached loader for the things serving/ keeps in memory
 * (models: serving.c, PMI matrices: pmi_cache.c). A get for a key that is
 * cached calls back at once; otherwise the object is loaded once on the
 * libuv pool while every get for the same key waits in a queue, and all
 * of them are called back on the loop thread when the load ends (with the
 * object or the load's error). The cache keeps the object most recently
 * used (loaded, put or got) and, when given a budget in bytes
 * (loader_set_budget), older ones too, least recently used evicted first,
 * while their sizes (ops->bytes) add up to at most the budget; with no
 * budget it keeps that one object only. Objects are reference-counted
 * through the ops, so evicting one never frees one a caller still holds.
 *
 * Threads: every function here runs on the loop thread; only ops->load
 * runs on the pool, and it touches nothing but its key, its copy of the
 * params and what it allocates. A struct loader is embedded in its owner
 * (loader_init / loader_deinit).
 */
#ifndef ITEMVEC_SERVING_LOADER_H
#define ITEMVEC_SERVING_LOADER_H

#include <stddef.h>
#include <uv.h>

#define LOADER_KEY_MAX 64 /* keys are shorter (bytes, with the NUL) */

/* A waiter's callback, in the owner's own typed form (e.g. serving_cb)
 * cast to this generic type; ops->call casts it back and calls it (a
 * function pointer converted to another function pointer type and back
 * compares equal to the original: C11 6.3.2.3p8). */
typedef void (*loader_fn)(void);

struct loader_ops {
    /* Bytes of parameters loader_get copies when it starts a load (e.g.
     * settings read on the loop thread; config may reload meanwhile). */
    size_t params_size;
    /* Pool thread: builds key's object from params (the load's own copy).
     * Returns 0 with *out = one reference (handed to the loader), or a
     * negative errno. */
    int (*load)(const char *key, const void *params, void **out);
    void (*ref)(void *obj);
    void (*unref)(void *obj);
    /* Loop thread: calls the waiter's callback fn (as given to loader_get)
     * with arg and a new reference to obj (the callee releases it), or NULL
     * and a negative errno. */
    void (*call)(loader_fn fn, void *arg, void *obj, int rc);
    /* Loop thread, may be NULL: after a load and the cache update, before
     * the waiters are called. obj is borrowed, NULL when rc < 0. */
    void (*loaded)(void *ud, const char *key, const void *params, void *obj, int rc);
    /* Loop thread, may be NULL (then the cache keeps one object whatever
     * the budget): the bytes obj holds, for the budget. Called once, when
     * obj enters the cache. */
    size_t (*bytes)(const void *obj);
};

struct loader__load;
struct loader__entry;

struct loader {
    uv_loop_t *loop;
    const struct loader_ops *ops;    /* borrowed, outlives the loader */
    void *ud;                        /* passed to ops->loaded */
    size_t budget;                   /* bytes the cached objects may hold */
    size_t bytes;                    /* bytes they hold */
    unsigned cached;                 /* objects cached */
    unsigned long long loads_done;   /* loads that ended, for metrics */
    unsigned long long evictions;    /* objects dropped for the budget */
    struct loader__entry *entries;   /* most recently used first */
    struct loader__load *loads;      /* in flight */
};

/* Sets up an empty loader on loop. */
void loader_init(struct loader *l, uv_loop_t *loop, const struct loader_ops *ops, void *ud);

/* Drops the cached objects. No load may be in flight (the loop has run to
 * its end). */
void loader_deinit(struct loader *l);

/* Lets the cache keep, besides its most recently used object (always
 * kept, whatever its size, so one object larger than the budget is not
 * reloaded on every get), older objects while all of them together hold at
 * most budget bytes; evicts least recently used ones now if needed. 0 (the
 * default) keeps the most recent object only. */
void loader_set_budget(struct loader *l, size_t budget);

/* Gets key's object: calls cb before returning when it is cached (it
 * becomes the most recently used; or
 * when the get fails at once: -ENAMETOOLONG for a key of LOADER_KEY_MAX
 * bytes or more, -ENOMEM, -EIO when the pool refuses the work), else once
 * the load ends; gets of the same key in flight share one load. params
 * (ops->params_size bytes, borrowed) is copied only when a load starts.
 * cb may be NULL (load and cache, nobody to tell). */
void loader_get(struct loader *l, const char *key, const void *params, loader_fn cb, void *arg);

/* The cached object of key (NULL: the most recently used one), borrowed:
 * valid until control returns to the loop; NULL when not cached. Does not
 * change the recency order. */
void *loader_peek(const struct loader *l, const char *key);

/* Caches obj (a reference, taken) under key as the most recently used
 * object, releasing the one cached under key before, then evicts for the
 * budget; obj NULL empties the whole cache. Returns 0, or -ENAMETOOLONG
 * (obj is then released). */
int loader_put(struct loader *l, const char *key, void *obj);

/* Number of loads in flight (tests, metrics). */
unsigned loader_loading(const struct loader *l);

#endif
