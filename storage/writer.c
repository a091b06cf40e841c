/*
 * Single-writer FIFO over uv_queue_work (see writer.h). Only one op is on
 * the pool at a time, so the writer's SQLite handle is used by one thread
 * at a time even though that thread may change between ops. The queue
 * counts what waits (ops and their write sets' bytes) for
 * writer_try_submit's bound.
 */
#include "base/thread.h"
#include "storage/writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "storage/store.h"

struct writer {
    uv_loop_t *loop;
    struct store *store;
    struct writer_op *head, *tail;
    int running;
    unsigned pending;
    unsigned waiting;       /* queued, not running */
    uint64_t waiting_bytes; /* their bytes */
    unsigned since_checkpoint; /* writes since the last checkpoint */
    struct writer_op checkpoint;
    int checkpoint_queued;
};

#define WRITER_CHECKPOINT_EVERY 16

static int checkpoint_fn(struct store *s, void *arg)
{
    return store_checkpoint(s);
}

static void checkpoint_done(void *arg, int rc)
{
    struct writer *w = arg;
    w->checkpoint_queued = 0;
    if (rc != 0)
        log_warn("writer: WAL checkpoint failed: %s", strerror(-rc));
}

static void writer__start(struct writer *w);

static void on_work(uv_work_t *req)
{
    ASSERT_WORKER_THREAD();
    struct writer_op *op = (struct writer_op *)req;
    op->rc = op->fn(op->w->store, op->arg);
}

static void on_after_work(uv_work_t *req, int status)
{
    struct writer_op *op = (struct writer_op *)req;
    struct writer *w = op->w;
    w->running = 0;
    w->pending--;
    if (op != &w->checkpoint)
        w->since_checkpoint++;
    op->done(op->arg, status < 0 ? status : op->rc);
    /* Checkpoint the WAL when idle (or every few writes under steady
     * load) rather than inside a commit, so replies don't wait for it. */
    if (w->since_checkpoint > 0 && !w->checkpoint_queued &&
        (!w->head || w->since_checkpoint >= WRITER_CHECKPOINT_EVERY)) {
        w->since_checkpoint = 0;
        w->checkpoint_queued = 1;
        writer_submit(w, &w->checkpoint, checkpoint_fn, checkpoint_done, w);
    }
    writer__start(w);
}

static void writer__start(struct writer *w)
{
    if (w->running || !w->head)
        return;
    struct writer_op *op = w->head;
    w->head = op->next;
    if (!w->head)
        w->tail = NULL;
    w->waiting--;
    w->waiting_bytes -= op->bytes;
    w->running = 1;
    int rc = uv_queue_work(w->loop, &op->work, on_work, on_after_work);
    if (rc != 0) { /* cannot happen with a valid loop; fail the op rather than hang */
        w->running = 0;
        w->pending--;
        op->done(op->arg, rc);
        writer__start(w);
    }
}

struct writer *writer_create(uv_loop_t *loop, const char *state_dir)
{
    struct writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    struct store_error err;
    w->loop = loop;
    w->store = store_open(state_dir, &err);
    if (!w->store) {
        log_error("writer: cannot open store: %s", err.message);
        free(w);
        return NULL;
    }
    store_autocheckpoint(w->store, 0);
    return w;
}

static void writer__queue(struct writer *w, struct writer_op *op, uint64_t bytes, writer_fn fn,
                          writer_done_fn done, void *arg)
{
    ASSERT_LOOP_THREAD();
    op->bytes = bytes;
    op->fn = fn;
    op->done = done;
    op->arg = arg;
    op->rc = 0;
    op->w = w;
    op->next = NULL;
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    w->pending++;
    w->waiting++;
    w->waiting_bytes += op->bytes;
    writer__start(w);
}

void writer_submit(struct writer *w, struct writer_op *op, writer_fn fn, writer_done_fn done,
                   void *arg)
{
    writer__queue(w, op, 0, fn, done, arg);
}

int writer_try_submit(struct writer *w, struct writer_op *op, uint64_t bytes,
                      const struct writer_limits *lim, writer_fn fn, writer_done_fn done,
                      void *arg)
{
    if (lim && lim->max_waiting && w->waiting >= lim->max_waiting)
        return -EBUSY;
    if (lim && lim->max_waiting_bytes && w->waiting > 0 &&
        (w->waiting_bytes + bytes > lim->max_waiting_bytes ||
         w->waiting_bytes + bytes < bytes))
        return -EBUSY;
    writer__queue(w, op, bytes, fn, done, arg);
    return 0;
}

unsigned writer_waiting(const struct writer *w)
{
    return w->waiting;
}

uint64_t writer_waiting_bytes(const struct writer *w)
{
    return w->waiting_bytes;
}

unsigned writer_pending(const struct writer *w)
{
    ASSERT_LOOP_THREAD();
    return w->pending;
}

void writer_destroy(struct writer *w)
{
    if (!w)
        return;
    store_close(w->store);
    free(w);
}
