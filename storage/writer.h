/*
 * The single writer: every mutation of the database (upload commits,
 * playlist replace/delete, job state) runs through this FIFO, one at a time,
 * on libuv's worker pool with the writer's own store handle. The loop
 * thread never waits on SQLite's write lock, readers (WAL) never wait on
 * the writer, and writes are applied in submission order.
 *
 * Bounded for clients: writes a client asks for (uploads, playlist PUT and
 * DELETE) go through writer_try_submit, which refuses (-EBUSY, the API
 * answers 503 + Retry-After) when too many operations, or too many bytes of
 * write sets, already wait; the daemon's own writes (job states, the WAL
 * checkpoint) use writer_submit and are never refused.
 */
#ifndef ITEMVEC_STORAGE_WRITER_H
#define ITEMVEC_STORAGE_WRITER_H

#include <stdint.h>
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
    uint64_t bytes; /* memory its write set holds (writer_try_submit) */
    struct writer *w;
    struct writer_op *next;
};

/* Bounds on what may wait (not counting the operation running): 0 means
 * no bound. */
struct writer_limits {
    unsigned max_waiting;        /* operations */
    uint64_t max_waiting_bytes;  /* sum of their bytes */
};

/* Opens the writer's own store handle on state_dir. Returns NULL and logs
 * on failure. Loop thread only. */
struct writer *writer_create(uv_loop_t *loop, const char *state_dir);

/* Queues op (caller-owned memory that must live until done runs). */
void writer_submit(struct writer *w, struct writer_op *op, writer_fn fn, writer_done_fn done,
                   void *arg);

/* Queues op like writer_submit unless the queue is at lim: max_waiting
 * operations already wait, or bytes would take the waiting bytes past
 * max_waiting_bytes (one operation is always let in when none waits, so a
 * single large write set is never starved). bytes is the memory op's
 * write set holds, for the byte bound. Returns 0 (queued; done will run)
 * or -EBUSY (not queued; done will not run). Loop thread only. */
int writer_try_submit(struct writer *w, struct writer_op *op, uint64_t bytes,
                      const struct writer_limits *lim, writer_fn fn, writer_done_fn done,
                      void *arg);

/* Operations queued or running. */
unsigned writer_pending(const struct writer *w);

/* Operations queued and not yet running, and the sum of their bytes. */
unsigned writer_waiting(const struct writer *w);
uint64_t writer_waiting_bytes(const struct writer *w);

/* Closes the store; the queue must be empty (wait until writer_pending
 * is 0). NULL is a no-op. */
void writer_destroy(struct writer *w);

#endif
