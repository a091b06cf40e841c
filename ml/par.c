/*
 * Fork-join pthread pool for ml/ kernels (see par.h). Workers sleep on a
 * condition variable between par_for calls; a generation counter tells
 * them a new batch is ready. Tasks are handed out by an atomic counter, so
 * load balances itself when callers cut work into chunks of similar cost.
 */
#include "ml/par.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

struct par_worker {
    struct par *pool;
    int index;
    pthread_t thread;
};

struct par {
    int threads;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* workers wait here for a new generation */
    pthread_cond_t done; /* the caller waits here for busy == 0 */
    uint64_t generation;
    int busy; /* workers still inside the current batch */
    bool shutdown;

    /* current batch */
    size_t n;
    par_task_fn fn;
    void *ctx;
    atomic_size_t next;
    atomic_int stop;

    struct par_worker *workers; /* [threads - 1] */
    int started;
};

static void run_tasks(struct par *p, int worker)
{
    for (;;) {
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            break;
        size_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n)
            break;
        p->fn(p->ctx, t, worker);
    }
}

static void *worker_main(void *arg)
{
    struct par_worker *w = arg;
    struct par *p = w->pool;
    uint64_t seen = 0;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->shutdown && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->shutdown)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);

        run_tasks(p, w->index);

        pthread_mutex_lock(&p->lock);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct par *par_create(int threads, int *err)
{
    struct par *p = NULL;
    int rc = 0;

    if (threads < 1)
        threads = 1;
    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = -ENOMEM;
        goto fail;
    }
    p->threads = threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    atomic_init(&p->stop, 0);
    if (threads > 1) {
        p->workers = calloc((size_t)threads - 1, sizeof(*p->workers));
        if (!p->workers) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    for (int i = 0; i < threads - 1; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i + 1;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            rc = -EAGAIN;
            goto fail;
        }
        p->started++;
    }
    return p;

fail:
    par_destroy(p);
    if (err)
        *err = rc;
    return NULL;
}

void par_destroy(struct par *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p);
}

int par_threads(const struct par *p)
{
    return p->threads;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int par_for(struct par *p, size_t n, par_task_fn fn, void *ctx, par_tick_fn tick, void *tick_ctx,
            unsigned tick_ms)
{
    int cancelled = 0;

    if (n == 0)
        return 0;
    pthread_mutex_lock(&p->lock);
    p->n = n;
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->next, 0);
    atomic_store(&p->stop, 0);
    p->busy = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    /* The calling thread is worker 0; it ticks between its own tasks. */
    uint64_t last = now_ms();
    for (;;) {
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            break;
        size_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= n)
            break;
        fn(ctx, t, 0);
        if (tick) {
            uint64_t now = now_ms();
            if (now - last >= tick_ms) {
                last = now;
                if (tick(tick_ctx) != 0) {
                    cancelled = 1;
                    atomic_store(&p->stop, 1);
                }
            }
        }
    }

    pthread_mutex_lock(&p->lock);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return cancelled ? -ECANCELED : 0;
}
