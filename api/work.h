/*
 * Request work off the loop: a handler hands an expensive, self-contained
 * step of a request (an exact neighbour scan, parsing a large JSON body,
 * turning a large PUT body into a batch) to libuv's pool while the
 * connection stays suspended, and answers from the loop when it is done.
 * At most one step per CPU core but one (at least one, at most
 * API_WORK_SLOTS_MAX) runs at once, so readers never hold more than that
 * many pool threads (the writer and jobs keep theirs) and always leave a
 * core to the loop thread: on the 2-core reference machine two scans in
 * parallel starved the loop of CPU and /healthz's p99 tripled. Further
 * steps wait in a FIFO of at most API_WORK_QUEUE, beyond which a request
 * is answered 503 with Retry-After.
 *
 * Threads: api_work_submit and the done callbacks run on the loop thread;
 * run callbacks run on a pool thread and may touch only what the request
 * handed over for the duration (its own buffers, borrowed immutable data
 * such as a referenced served model): no MHD, no struct app, no shared
 * SQLite handle. A request's jansson tree may be built or read there
 * because no other thread holds it meanwhile (jansson keeps no global
 * state beyond its hash seed, set on the loop when the server starts, and
 * its reference counts are atomic: JSON_HAVE_ATOMIC_BUILTINS). This is the
 * one exception to "no jansson on workers" (the house style; jobs/jobs.h),
 * made so that parsing a large body never runs on the loop
 * (docs/architecture.md, "Threads").
 *
 * Ownership: the struct api_work is the caller's (usually embedded in the
 * request's handler state) and must stay valid until done has run.
 */
#ifndef ITEMVEC_API_WORK_H
#define ITEMVEC_API_WORK_H

#include <uv.h>

#define API_WORK_SLOTS_MAX 4 /* steps on the pool at once, at most */
#define API_WORK_QUEUE 256   /* steps waiting for a slot; more → 503 */

struct api_req;
struct api_work;
typedef void (*api_work_fn)(struct api_work *w);

struct api_work {
    uv_work_t uv;
    struct api_req *req;
    api_work_fn run;  /* pool thread */
    api_work_fn done; /* loop thread: replies, or suspends the request again */
    struct api_work *next;
};

/* The queue of one server (embedded in struct api_server). */
struct api_work_queue {
    uv_loop_t *loop;
    unsigned slots; /* cores - 1, in 1..API_WORK_SLOTS_MAX */
    unsigned running, waiting;
    unsigned long long done_total, refused_total;
    struct api_work *head, **tail;
};

void api_work_queue_init(struct api_work_queue *q, uv_loop_t *loop);

/* Loop thread. Suspends req and runs run(w) on the pool as soon as a slot
 * is free, then done(w) on the loop. After done returns: when a reply is
 * set the connection is resumed; when done suspended the request again
 * (api_req_suspend, e.g. to submit more work or a write) it stays
 * suspended; when neither, the request is answered 500. Returns 0, or
 * -EAGAIN when API_WORK_QUEUE steps already wait: then req has been
 * answered 503 with Retry-After and neither callback will run. */
int api_work_submit(struct api_req *req, struct api_work *w, api_work_fn run, api_work_fn done);

#endif
