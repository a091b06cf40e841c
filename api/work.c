/*
 * Bounded request work on the libuv pool (see work.h). The queue is the
 * server's, touched only on the loop thread; a pool thread sees only the
 * struct api_work it runs.
 */
#include "api/work.h"

#include <errno.h>
#include <stddef.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "base/log.h"
#include "base/thread.h"

void api_work_queue_init(struct api_work_queue *q, uv_loop_t *loop)
{
    unsigned cores = uv_available_parallelism();
    *q = (struct api_work_queue){.loop = loop};
    q->slots = cores > 1 ? cores - 1 : 1;
    if (q->slots > API_WORK_SLOTS_MAX)
        q->slots = API_WORK_SLOTS_MAX;
    q->tail = &q->head;
}

static void work_run(uv_work_t *u)
{
    struct api_work *w = (struct api_work *)u; /* uv is the first member */
    ASSERT_WORKER_THREAD();
    w->run(w);
}

static void work_start(struct api_work_queue *q, struct api_work *w);

static void work_after(uv_work_t *u, int status)
{
    struct api_work *w = (struct api_work *)u;
    struct api_req *req = w->req;
    struct api_work_queue *q = api__work_queue(req->app);
    ASSERT_LOOP_THREAD();
    q->running--;
    q->done_total++;
    req->suspended = 0; /* done may suspend again */
    w->done(w);         /* may free w (e.g. with the handler state): not used below */
    if (req->response)
        api_req_resume(req);
    else if (!req->suspended) {
        api_reply_problem(req, 500, "internal", "Internal Server Error", NULL,
                          "the handler produced no answer");
        api_req_resume(req);
    }
    if (q->head) {
        struct api_work *next = q->head;
        q->head = next->next;
        if (!q->head)
            q->tail = &q->head;
        q->waiting--;
        work_start(q, next);
    }
}

static void work_start(struct api_work_queue *q, struct api_work *w)
{
    q->running++;
    if (uv_queue_work(q->loop, &w->uv, work_run, work_after) != 0) {
        /* cannot happen with valid arguments; answer rather than hang */
        q->running--;
        struct api_req *req = w->req;
        req->suspended = 0;
        api_reply_problem(req, 500, "internal", "Internal Server Error", NULL,
                          "cannot queue work");
        api_req_resume(req);
    }
}

int api_work_submit(struct api_req *req, struct api_work *w, api_work_fn run, api_work_fn done)
{
    struct api_work_queue *q = api__work_queue(req->app);
    ASSERT_LOOP_THREAD();
    if (q->running >= q->slots && q->waiting >= API_WORK_QUEUE) {
        q->refused_total++;
        api_add_header(req, "Retry-After", "1");
        api_reply_problem(req, 503, "overloaded", "Service Unavailable", NULL,
                          "too many expensive requests in progress (%u running, %u waiting); "
                          "retry later",
                          q->running, q->waiting);
        return -EAGAIN;
    }
    w->req = req;
    w->run = run;
    w->done = done;
    w->next = NULL;
    api_req_suspend(req);
    if (q->running < q->slots) {
        work_start(q, w);
    } else {
        *q->tail = w;
        q->tail = &w->next;
        q->waiting++;
    }
    return 0;
}
