/*
 * The cached asynchronous loader (see loader.h). All state is the loop
 * thread's; a load record carries its key, waiters and params copy to the
 * pool and back, and the work callback touches only that record.
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

void loader_deinit(struct loader *l)
{
    ASSERT_LOOP_THREAD();
    if (l->cached)
        l->ops->unref(l->cached);
    l->cached = NULL;
    l->key[0] = '\0';
}

void *loader_peek(const struct loader *l, const char *key)
{
    ASSERT_LOOP_THREAD();
    if (!l->cached || (key && strcmp(l->key, key) != 0))
        return NULL;
    return l->cached;
}

int loader_put(struct loader *l, const char *key, void *obj)
{
    ASSERT_LOOP_THREAD();
    if (strlen(key) >= sizeof l->key) {
        if (obj)
            l->ops->unref(obj);
        return -ENAMETOOLONG;
    }
    if (l->cached)
        l->ops->unref(l->cached);
    l->cached = obj;
    memcpy(l->key, key, strlen(key) + 1);
    if (!obj)
        l->key[0] = '\0';
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
    void *hit = loader_peek(l, key);
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
