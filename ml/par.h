/*
 * A tiny fork-join pool of pthreads for ml/ kernels: par_for runs tasks
 * 0..n-1 on the pool's threads plus the calling thread, handing out task
 * indices from an atomic counter, and calls a tick callback on the calling
 * thread between its own tasks (progress reports, cancellation).
 *
 * Results never depend on which thread ran a task: callers write each
 * task's output to its own slot and reduce slots in index order. ml/
 * depends on nothing of ours but base/array.h; this is plain pthreads +
 * C11 atomics.
 */
#ifndef ITEMVEC_ML_PAR_H
#define ITEMVEC_ML_PAR_H

#include <stddef.h>

struct par;

/* Runs task `task` (0..n-1); worker is 0..threads-1, stable for the call
 * (0 is the calling thread), so it can index per-thread scratch. */
typedef void (*par_task_fn)(void *ctx, size_t task, int worker);

/* Called on the calling thread between its tasks, at most every
 * tick_ms. Returns 0 to go on; non-zero stops handing out tasks. */
typedef int (*par_tick_fn)(void *ctx);

/* Creates a pool that runs par_for on `threads` threads in all (threads - 1
 * are started here; < 1 means 1). Returns NULL with *err = -ENOMEM or
 * -EAGAIN on failure. The caller owns the pool (par_destroy). */
struct par *par_create(int threads, int *err);

/* Stops and joins the pool's threads and frees it. NULL is a no-op. Must
 * not be called while a par_for on the pool is running. */
void par_destroy(struct par *p);

/* Number of threads (>= 1), the range of the worker argument. */
int par_threads(const struct par *p);

/* Runs fn(ctx, t, worker) for t in 0..n-1 and returns when all started
 * tasks finished: 0, or -ECANCELED when tick returned non-zero (tasks not
 * yet started are skipped). tick may be NULL. One par_for at a time per
 * pool (not reentrant); the pool may be used from any one thread. */
int par_for(struct par *p, size_t n, par_task_fn fn, void *ctx, par_tick_fn tick, void *tick_ctx,
            unsigned tick_ms);

#endif
