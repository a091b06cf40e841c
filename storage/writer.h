/*
 * The single writer: every mutation of the database (upload commits,
 * playlist replace/delete, job state) runs through this FIFO, one at a time,
 * on libuv's worker pool with the writer's own store handle. The loop
 * thread never waits on SQLite's write lock, readers (WAL) never wait on
 * the writer, and writes are applied in submission order.
 */
#ifndef ITEMVEC_STORAGE_WRITER_H
#define ITEMVEC_STORAGE_WRITER_H

#include <uv.h>

struct store;
struct writer;

/* Runs on a pool thread with exclusive use of the writer's store. Returns
 * 0 or a negative errno, handed to the done callback. */
typedef int (*writer_fn)(struct store *s, void *arg);
/* Runs on the loop thread after fn. */
typedef void (*writer_done_fn)(void *arg, int rc);

/* An operation; embed it in the caller's struct (no allocation). */
struct writer_op {
    uv_work_t work;
    writer_fn fn;
    writer_done_fn done;
    void *arg;
    int rc;
    struct writer *w;
    struct writer_op *next;
};

/* Opens the writer's own store handle on state_dir. Returns NULL and logs
 * on failure. Loop thread only. */
struct writer *writer_create(uv_loop_t *loop, const char *state_dir);

/* Queues op (caller-owned memory that must live until done runs). */
void writer_submit(struct writer *w, struct writer_op *op, writer_fn fn, writer_done_fn done,
                   void *arg);

/* Operations queued or running. */
unsigned writer_pending(const struct writer *w);

/* Closes the store; the queue must be empty (wait until writer_pending
 * is 0). NULL is a no-op. */
void writer_destroy(struct writer *w);

#endif
