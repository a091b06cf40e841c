/*
 * The job system: asynchronous PMI, training and evaluation jobs that users
 * submit with POST /v1/jobs and poll. Jobs run on libuv's worker pool
 * (uv_queue_work); the loop thread owns every job's state and all storage
 * writes (through the writer). A worker touches only its job's own
 * buffers: it reports progress through job_progress_set (a mutex-guarded
 * struct plus uv_async_send) and polls job_cancelled() at checkpoints.
 *
 * States: queued → running → succeeded | failed | cancelled; terminal
 * states never change. Every transition is persisted (storage/jobs.h).
 * After a crash, a job found "running" is requeued (up to
 * JOBS_MAX_ATTEMPTS starts, then failed with a reason); "queued" ones stay
 * queued. Two starts, not more: a job that dies with the daemon is most
 * likely what killed it (the kernel's OOM killer takes the whole process),
 * and every retry would take the daemon down again. SIGTERM stops running jobs at their next checkpoint and puts them
 * back to "queued" so the next start resumes them.
 */
#ifndef ITEMVEC_JOBS_JOBS_H
#define ITEMVEC_JOBS_JOBS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "storage/writer.h"

#define JOBS_MAX_ATTEMPTS 2
#define JOB_PROGRESS_MAX_COUNTERS 8

struct app;
struct store;
struct jobs;
struct job;

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED };

/* A validation or run error: where (a JSON pointer into params, or "") and
 * why, plus the HTTP-ish status the API should answer with (422, 409). */
struct job_error {
    int status;
    char pointer[64];
    char message[256];
    /* set (non-zero) when a job is refused for memory: its estimated peak
     * and the budget, in bytes (jobs/job_memory.h) */
    uint64_t memory_estimate, memory_budget;
};

/* Progress as the worker reports it (copied under the job's mutex). */
struct job_progress {
    double fraction;
    char stage[32];
    int n;
    char key[JOB_PROGRESS_MAX_COUNTERS][32];
    double value[JOB_PROGRESS_MAX_COUNTERS];
    double eta_seconds; /* < 0: unknown */
};

struct job_type {
    const char *name;
    /* Loop thread. Checks params (an object, borrowed) and returns a new
     * object with every parameter filled (defaults applied), or NULL with
     * err filled (status 422, pointer naming the field; 409 when a
     * dependency such as a pmi job is missing). */
    json_t *(*validate)(struct app *app, json_t *params, struct job_error *err);
    /* Loop thread, when the job is about to run: build j->ctx from params.
     * Returns 0, or a negative errno with err filled (the job fails). */
    int (*start)(struct job *j, struct job_error *err);
    /* Worker thread: the work. Returns 0, -ECANCELED, or an error with err
     * filled. No jansson, no shared SQLite handle. */
    int (*run)(struct job *j, struct job_error *err);
    /* Loop thread after a successful run: the result object (new
     * reference); may also apply loop-side effects (e.g. activate a model).
     * NULL = fail with err. */
    json_t *(*finish)(struct job *j, struct job_error *err);
    /* Writer thread, optional: stores what a succeeded job produced (e.g.
     * the model row) in the same transaction that marks it succeeded.
     * Returns 0 or a negative errno (then the job fails instead). */
    int (*commit)(struct job *j, struct store *s);
    /* Loop thread, optional: after the success is durable (e.g. activate
     * the new model for serving). */
    void (*committed)(struct job *j);
    /* Frees j->ctx (any thread state is gone by then). */
    void (*free_ctx)(void *ctx);
    /* Extra fields for the progress object of a running job (loop thread;
     * may be NULL), e.g. the loss per iteration so far. */
    void (*progress_json)(struct job *j, json_t *progress);
};

struct job {
    uv_work_t work; /* embedded: container_of(work) gets the job back */
    struct jobs *jobs;
    struct app *app;
    const struct job_type *type;
    int64_t seq;
    char id[32];
    enum job_state state;
    json_t *params;
    json_t *result;
    json_t *error;
    int64_t created_ms, started_ms, finished_ms;
    int64_t attempts;
    atomic_int cancel;   /* 1: user cancel, 2: shutdown */
    void *ctx;           /* type's state */
    struct job_error run_err;
    int run_rc;
    uv_mutex_t mu;       /* guards progress */
    struct job_progress progress;
    uint64_t progress_sent_ms;
    uint64_t progress_saved_ms;
    int writes_pending;  /* persistence ops in flight */
    int gone;            /* terminal and persisted: free when writes done */
    int committing;      /* the success write (with type->commit) was issued */
    int settling;        /* terminal state set, not yet durable */
    enum job_state shown_state; /* what views show while settling */
    struct job *next;    /* in the jobs list */
    char state_dir[1024];
    int threads;
    int test_delay_ms;
};

/* Creates the job system and recovers jobs left queued or running by a
 * previous process (synchronously, before the daemon reports ready).
 * Returns NULL and logs on failure. */
struct jobs *jobs_create(struct app *app);

/* Validates and queues a job; on success *out is the job (borrowed, owned
 * by the job system) and it is being persisted: done(arg, 0) runs once the
 * record is durable. Returns 0, -EINVAL (err: 422/409), -EAGAIN (queue
 * full: 429), -ESHUTDOWN (draining: 503). */
int jobs_submit(struct jobs *js, const char *type, json_t *params, struct job_error *err,
                struct job **out, void (*done)(void *arg, int rc), void *arg);

/* The job object as API.md defines it (new reference). */
json_t *job_to_json(const struct job *j);

/* A job still in memory (queued, running, or being persisted). NULL when
 * the job is only in storage (then read it with jobs_load_json). */
struct job *jobs_find(struct jobs *js, const char *id);

/* Job object of a job from memory or storage (new reference), NULL with
 * -ENOENT semantics when unknown. */
json_t *jobs_get_json(struct jobs *js, const char *id);

/* Converts a stored record into the job object (new reference). */
struct store_job;
json_t *jobs_record_to_json(const struct store_job *r);

/* Requests cancellation. Returns 1 when a queued job is being cancelled
 * (done(arg, rc) runs once that is durable), 0 when a running job was asked
 * to stop at its next checkpoint (done is not called), -ENOENT, or
 * -EALREADY (already terminal). */
int jobs_cancel(struct jobs *js, const char *id, void (*done)(void *arg, int rc), void *arg);

/* Counts for status lines and metrics. */
void jobs_counts(const struct jobs *js, unsigned *queued, unsigned *running);

/* The newest succeeded job of a type, from storage; id copied into out.
 * Returns 0 or -ENOENT. */
int jobs_latest_succeeded(struct jobs *js, const char *type, char *out, size_t size);

/* Durations of finished jobs since start, by type (a Prometheus histogram
 * with jobs_duration_bounds() upper bounds, cumulative buckets). */
#define JOBS_DURATION_BUCKETS 12
struct jobs_duration {
    const char *type;
    uint64_t buckets[JOBS_DURATION_BUCKETS];
    uint64_t count;
    double sum;
};
const double *jobs_duration_bounds(void);
size_t jobs_durations(const struct jobs *js, const struct jobs_duration **out);

/* The latest value of progress counter key of a running job of type, if
 * any (e.g. the loss of a running train job). Returns 0 or -ENOENT. */
int jobs_running_value(struct jobs *js, const char *type, const char *key, double *out);

/* The member key (e.g. "best") of the result of the newest succeeded job
 * of type whose result has it, from memory or storage: a new reference,
 * with that job's id copied into id; NULL when no such job exists (or its
 * stored result cannot be read). Loop thread. */
json_t *jobs_latest_result_member(struct jobs *js, const char *type, const char *key, char *id,
                                  size_t size);

/* Whether job id exists, is of type and succeeded (memory, then storage). */
int jobs_is_succeeded(struct jobs *js, const char *id, const char *type);

/* Reserves the next job sequence number for a result made outside the
 * queue (an import, jobs/import.h): *seq gets it and id "j<seq>". The
 * caller stores a record with that seq, or nothing (a gap is harmless).
 * -ESHUTDOWN while draining. Loop thread. */
int jobs_reserve_id(struct jobs *js, int64_t *seq, char *id, size_t size);

/* Begins shutdown: no new jobs start; running ones are asked to stop at a
 * checkpoint and are put back to queued. */
void jobs_shutdown(struct jobs *js);

/* Jobs running or with persistence in flight (shutdown waits for 0). */
unsigned jobs_busy(const struct jobs *js);

void jobs_destroy(struct jobs *js);

/* --- for job types (worker thread) --- */

/* Replaces the progress (copied under the mutex) and wakes the loop at
 * most every 200 ms. n counters from keys/values. */
void job_progress_set(struct job *j, double fraction, const char *stage, int n,
                      const char *const *keys, const double *values, double eta_seconds);

/* A checkpoint: non-zero when the job should stop here. (With the test
 * hook ITEMVEC_TEST_JOB_DELAY_MS set, each checkpoint first waits that
 * long, so tests can catch a job while it runs; see docs/operations.md.) */
int job_cancelled(struct job *j);

/* Job types (jobs/job_*.c). */
extern const struct job_type job_type_pmi;
extern const struct job_type job_type_train;
extern const struct job_type job_type_evaluate;

/* Milliseconds since the Unix epoch. */
int64_t jobs_now_ms(void);

/* RFC 3339 UTC with milliseconds; "" for 0. */
void jobs_format_time(int64_t ms, char *buf, size_t size);

#endif
