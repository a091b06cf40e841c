/*
 * The cached asynchronous loader (see loader.h). All state is the loop
 * thread's; a load record carries its key, waiters and params copy to the
 * pool and back, and the work callback touches only that record. The cache
 * is a list in recency order (a handful of entries: a linear search is
 * cheaper than a hash table here).
 */
#include "serving/loader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/thread.h"

struct waiter {
    loader_fn cb;
    void *arg;
    struct waiter *next;
};

struct loader__entry {
    char key[LOADER_KEY_MAX];
    void *obj; /* one reference */
    size_t bytes;
    struct loader__entry *next;
};

struct loader__load {
    uv_work_t work;
    struct loader *owner;
    char key[LOADER_KEY_MAX];
    void *obj; /* the result: one reference */
    int rc;
    struct waiter *waiters, **tail; /* called in the order they came */
    struct loader__load *next;
    union { /* params copy, aligned for any type */
        max_align_t align;
        unsigned char bytes[1];
    } params[];
};

void loader_init(struct loader *l, uv_loop_t *loop, const struct loader_ops *ops, void *ud)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->ops = ops;
    l->ud = ud;
}

static void entry_drop(struct loader *l, struct loader__entry *e)
{
    l->bytes -= e->bytes;
    l->cached--;
    l->ops->unref(e->obj);
    free(e);
}

/* Drops least recently used entries (never the first) while over budget;
 * without a budget or a size function only the first stays. */
static void evict(struct loader *l)
{
    while (l->cached > 1 && (l->bytes > l->budget || l->budget == 0 || !l->ops->bytes)) {
        struct loader__entry **pp = &l->entries;
        while ((*pp)->next)
            pp = &(*pp)->next;
        struct loader__entry *last = *pp;
        *pp = NULL;
        l->evictions++;
        entry_drop(l, last);
    }
}

void loader_deinit(struct loader *l)
{
    ASSERT_LOOP_THREAD();
    while (l->entries) {
        struct loader__entry *e = l->entries;
        l->entries = e->next;
        entry_drop(l, e);
    }
}

void loader_set_budget(struct loader *l, size_t budget)
{
    ASSERT_LOOP_THREAD();
    l->budget = budget;
    evict(l);
}

/* The link to key's entry (NULL key: the first); *link is NULL when there
 * is none. */
static struct loader__entry **entry_link(struct loader *l, const char *key)
{
    struct loader__entry **pp = &l->entries;
    while (*pp && key && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

void *loader_peek(const struct loader *l, const char *key)
{
    ASSERT_LOOP_THREAD();
    for (const struct loader__entry *e = l->entries; e; e = e->next)
        if (!key || strcmp(e->key, key) == 0)
            return e->obj;
    return NULL;
}

/* Moves key's entry to the front; returns it, or NULL. */
static struct loader__entry *touch(struct loader *l, const char *key)
{
    struct loader__entry **link = entry_link(l, key), *e = *link;
    if (!e)
        return NULL;
    *link = e->next;
    e->next = l->entries;
    l->entries = e;
    return e;
}

int loader_put(struct loader *l, const char *key, void *obj)
{
    ASSERT_LOOP_THREAD();
    size_t klen = strlen(key);
    if (klen >= LOADER_KEY_MAX) {
        if (obj)
            l->ops->unref(obj);
        return -ENAMETOOLONG;
    }
    if (!obj) {
        loader_deinit(l); /* empties the cache; the loader stays usable */
        return 0;
    }
    struct loader__entry *e = touch(l, key);
    if (e) { /* replace the object cached under key */
        l->bytes -= e->bytes;
        l->ops->unref(e->obj);
    } else if ((e = calloc(1, sizeof *e))) {
        memcpy(e->key, key, klen + 1);
        e->next = l->entries;
        l->entries = e;
        l->cached++;
    } else {
        l->ops->unref(obj); /* cannot cache it: its callers hold their own references */
        return 0;
    }
    e->obj = obj;
    e->bytes = l->ops->bytes ? l->ops->bytes(obj) : 0;
    l->bytes += e->bytes;
    evict(l);
    return 0;
}

unsigned loader_loading(const struct loader *l)
{
    unsigned n = 0;
    for (const struct loader__load *d = l->loads; d; d = d->next)
        n++;
    return n;
}

static void load_work(uv_work_t *w)
{
    struct loader__load *d = (struct loader__load *)w;
    ASSERT_WORKER_THREAD();
    d->obj = NULL;
    d->rc = d->owner->ops->load(d->key, d->params, &d->obj);
    if (d->rc == 0 && !d->obj)
        d->rc = -EIO; /* a load function's bug: success without an object */
}

static void load_done(uv_work_t *w, int status)
{
    struct loader__load *d = (struct loader__load *)w;
    struct loader *l = d->owner;
    const struct loader_ops *ops = l->ops;
    ASSERT_LOOP_THREAD();
    for (struct loader__load **pp = &l->loads; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    if (status != 0 && d->rc == 0) { /* cancelled: cannot happen, we never cancel */
        if (d->obj)
            ops->unref(d->obj);
        d->obj = NULL;
        d->rc = status;
    }
    l->loads_done++;
    if (d->rc == 0) {
        ops->ref(d->obj);
        loader_put(l, d->key, d->obj); /* the key fits: checked in loader_get */
    }
    if (ops->loaded)
        ops->loaded(l->ud, d->key, d->params, d->rc == 0 ? d->obj : NULL, d->rc);
    while (d->waiters) {
        struct waiter *wt = d->waiters;
        d->waiters = wt->next;
        if (wt->cb) {
            if (d->rc == 0)
                ops->ref(d->obj);
            ops->call(wt->cb, wt->arg, d->rc == 0 ? d->obj : NULL, d->rc);
        }
        free(wt);
    }
    if (d->rc == 0)
        ops->unref(d->obj); /* the load's own reference */
    free(d);
}

void loader_get(struct loader *l, const char *key, const void *params, loader_fn cb, void *arg)
{
    const struct loader_ops *ops = l->ops;
    ASSERT_LOOP_THREAD();
    size_t klen = strlen(key);
    if (klen >= LOADER_KEY_MAX) {
        if (cb)
            ops->call(cb, arg, NULL, -ENAMETOOLONG);
        return;
    }
    struct loader__entry *e = touch(l, key);
    void *hit = e ? e->obj : NULL;
    if (hit) {
        if (cb) {
            ops->ref(hit);
            ops->call(cb, arg, hit, 0);
        }
        return;
    }
    struct waiter *wt = calloc(1, sizeof *wt);
    if (!wt) {
        if (cb)
            ops->call(cb, arg, NULL, -ENOMEM);
        return;
    }
    wt->cb = cb;
    wt->arg = arg;
    for (struct loader__load *d = l->loads; d; d = d->next)
        if (strcmp(d->key, key) == 0) {
            *d->tail = wt;
            d->tail = &wt->next;
            return;
        }
    struct loader__load *d = calloc(1, sizeof *d + ops->params_size);
    if (!d) {
        free(wt);
        if (cb)
            ops->call(cb, arg, NULL, -ENOMEM);
        return;
    }
    d->owner = l;
    memcpy(d->key, key, klen + 1);
    if (ops->params_size)
        memcpy(d->params, params, ops->params_size);
    d->waiters = wt;
    d->tail = &wt->next;
    d->next = l->loads;
    l->loads = d;
    if (uv_queue_work(l->loop, &d->work, load_work, load_done) != 0) {
        l->loads = d->next;
        free(d);
        free(wt);
        if (cb)
            ops->call(cb, arg, NULL, -EIO);
    }
}
