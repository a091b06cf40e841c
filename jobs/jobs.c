/*
 * Job queue, scheduling, persistence and recovery (see jobs.h). All
 * functions here run on the loop thread except work_cb (a pool thread) and
 * job_progress_set (any worker). Progress is pulled: a 500 ms timer reads
 * each running job's progress under its mutex and persists it when it
 * changed and was last saved over a second ago, so GET shows live progress
 * from memory and a restart shows the last saved one.
 */
#include "jobs/jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "conf/app.h"
#include "base/log.h"
#include "storage/jobs.h"
#include "storage/store.h"

static const struct job_type *const job_types[] = {&job_type_pmi, &job_type_train,
                                                   &job_type_evaluate};

struct jobs {
    struct app *app;
    struct job *head; /* in seq order */
    int64_t max_seq;
    unsigned running;
    unsigned writes;
    int shutting_down;
    uv_timer_t timer;
    struct jobs_duration durations[8];
    size_t n_durations;
};

static const double duration_bounds[JOBS_DURATION_BUCKETS] = {0.1, 0.25, 0.5, 1,   2.5, 5,
                                                              10,  30,   60,  300, 900, 3600};

const double *jobs_duration_bounds(void)
{
    return duration_bounds;
}

size_t jobs_durations(const struct jobs *js, const struct jobs_duration **out)
{
    *out = js->durations;
    return js->n_durations;
}

static void observe_duration(struct jobs *js, const char *type, double seconds)
{
    size_t i;
    for (i = 0; i < js->n_durations; i++)
        if (strcmp(js->durations[i].type, type) == 0)
            break;
    if (i == js->n_durations) {
        if (i == sizeof js->durations / sizeof js->durations[0])
            return;
        js->durations[i].type = type;
        js->n_durations++;
    }
    struct jobs_duration *d = &js->durations[i];
    for (int b = 0; b < JOBS_DURATION_BUCKETS; b++)
        if (seconds <= duration_bounds[b])
            d->buckets[b]++;
    d->count++;
    d->sum += seconds;
}

int jobs_running_value(struct jobs *js, const char *type, const char *key, double *out)
{
    for (struct job *j = js->head; j; j = j->next) {
        if (j->state != JOB_RUNNING || strcmp(j->type->name, type) != 0)
            continue;
        int found = 0;
        uv_mutex_lock(&j->mu);
        for (int i = 0; i < j->progress.n; i++)
            if (strcmp(j->progress.key[i], key) == 0) {
                *out = j->progress.value[i];
                found = 1;
            }
        uv_mutex_unlock(&j->mu);
        if (found)
            return 0;
    }
    return -ENOENT;
}

static const char *const state_names[] = {"queued", "running", "succeeded", "failed",
                                          "cancelled"};

int64_t jobs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void jobs_format_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0) {
        buf[0] = '\0';
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}

static json_t *time_json(int64_t ms)
{
    char buf[40];
    if (ms <= 0)
        return json_null();
    jobs_format_time(ms, buf, sizeof buf);
    return json_string(buf);
}

static const struct job_type *type_find(const char *name)
{
    for (size_t i = 0; i < sizeof job_types / sizeof job_types[0]; i++)
        if (strcmp(job_types[i]->name, name) == 0)
            return job_types[i];
    return NULL;
}

static int state_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

/* ---- JSON views ---- */

static enum job_state job_visible_state(const struct job *j)
{
    return j->settling ? j->shown_state : j->state;
}

static json_t *progress_json(struct job *j)
{
    struct job_progress p;
    uv_mutex_lock(&j->mu);
    p = j->progress;
    uv_mutex_unlock(&j->mu);
    json_t *o = json_object();
    json_object_set_new(o, "fraction", json_real(p.fraction));
    json_object_set_new(o, "stage", json_string(p.stage[0] ? p.stage : state_names[j->state]));
    for (int i = 0; i < p.n; i++) {
        double v = p.value[i];
        if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
            json_object_set_new(o, p.key[i], json_integer((json_int_t)v));
        else
            json_object_set_new(o, p.key[i], json_real(v));
    }
    if (j->state == JOB_RUNNING && p.eta_seconds >= 0)
        json_object_set_new(o, "eta_seconds", json_real(p.eta_seconds));
    if (j->state == JOB_RUNNING && j->type->progress_json)
        j->type->progress_json(j, o);
    if (atomic_load(&j->cancel) == 1 && j->state == JOB_RUNNING)
        json_object_set_new(o, "cancel_requested", json_true());
    return o;
}

json_t *job_to_json(const struct job *cj)
{
    struct job *j = (struct job *)cj;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "type", json_string(j->type->name));
    enum job_state shown = job_visible_state(j);
    json_object_set_new(o, "state", json_string(state_names[shown]));
    json_object_set(o, "params", j->params);
    json_object_set_new(o, "created_at", time_json(j->created_ms));
    json_object_set_new(o, "started_at", time_json(j->started_ms));
    json_object_set_new(o, "finished_at", time_json(j->settling ? 0 : j->finished_ms));
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_object_set_new(o, "progress", progress_json(j));
    json_object_set(o, "result", j->result && !j->settling ? j->result : json_null());
    json_object_set(o, "error", j->error && !j->settling ? j->error : json_null());
    return o;
}

static json_t *parse_or_null(const char *text)
{
    if (!text)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}

json_t *jobs_record_to_json(const struct store_job *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "type", json_string(r->type));
    json_object_set_new(o, "state", json_string(r->state));
    json_object_set_new(o, "params", parse_or_null(r->params));
    json_object_set_new(o, "created_at", time_json(r->created_ms));
    json_object_set_new(o, "started_at", time_json(r->started_ms));
    json_object_set_new(o, "finished_at", time_json(r->finished_ms));
    json_object_set_new(o, "attempts", json_integer(r->attempts));
    json_t *p = parse_or_null(r->progress);
    if (!json_is_object(p)) {
        json_decref(p);
        p = json_pack("{s:f,s:s}", "fraction", 0.0, "stage", r->state);
    }
    json_object_set_new(o, "progress", p);
    json_object_set_new(o, "result", parse_or_null(r->result));
    json_object_set_new(o, "error", parse_or_null(r->error));
    return o;
}

/* ---- persistence ---- */

struct job_write {
    struct writer_op op;
    struct store_job rec;
    int insert;
    int with_commit; /* the terminal success write: run type->commit too */
    int terminal;    /* writes a terminal state */
    struct job *job;
    void (*done)(void *arg, int rc);
    void *arg;
};

static char *dump_or_null(json_t *v)
{
    return v && !json_is_null(v) ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static int commit_extra(struct store *s, void *arg)
{
    struct job *j = arg;
    return j->type->commit(j, s);
}

static int write_fn(struct store *s, void *arg)
{
    struct job_write *w = arg;
    if (w->insert)
        return store_job_insert(s, &w->rec);
    if (w->with_commit)
        return store_job_update_with(s, &w->rec, commit_extra, w->job);
    return store_job_update(s, &w->rec);
}

static void jobs__persist(struct job *j, int insert, void (*done)(void *, int), void *arg);
static json_t *error_problem(int status, const char *title, const char *detail);

static void job_destroy(struct job *j)
{
    if (j->ctx && j->type->free_ctx)
        j->type->free_ctx(j->ctx);
    json_decref(j->params);
    json_decref(j->result);
    json_decref(j->error);
    uv_mutex_destroy(&j->mu);
    free(j);
}

static void jobs__unlink(struct jobs *js, struct job *j)
{
    for (struct job **pp = &js->head; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            return;
        }
    }
}

static void write_done(void *arg, int rc)
{
    struct job_write *w = arg;
    struct job *j = w->job;
    struct jobs *js = j->jobs;
    if (rc != 0)
        log_error("job %s: cannot persist state %s: %s", j->id, w->rec.state, strerror(-rc));
    if (w->with_commit && rc != 0) {
        /* the result could not be stored: the job fails instead */
        char msg[200];
        snprintf(msg, sizeof msg, "cannot store the job's result: %s", strerror(-rc));
        j->state = JOB_FAILED;
        json_decref(j->result);
        j->result = NULL;
        j->error = error_problem(500, "Job failed", msg);
        jobs__persist(j, 0, NULL, NULL);
    } else if (w->with_commit && j->type->committed) {
        j->type->committed(j);
    }
    if (w->terminal && !(w->with_commit && rc != 0))
        j->settling = 0;
    if (w->done)
        w->done(w->arg, rc);
    free(w->rec.params);
    free(w->rec.progress);
    free(w->rec.result);
    free(w->rec.error);
    free(w);
    js->writes--;
    j->writes_pending--;
    if (j->gone && j->writes_pending == 0) {
        jobs__unlink(js, j);
        job_destroy(j);
    }
}

/* Queues a durable copy of j's current state. */
static void jobs__persist(struct job *j, int insert, void (*done)(void *, int), void *arg)
{
    struct job_write *w = calloc(1, sizeof *w);
    if (!w) {
        log_error("job %s: out of memory persisting state", j->id);
        if (done)
            done(arg, -ENOMEM);
        return;
    }
    json_t *prog = progress_json(j);
    w->rec.seq = j->seq;
    w->rec.id = j->id;
    w->rec.type = (char *)j->type->name;
    w->rec.state = (char *)state_names[j->state];
    w->rec.params = dump_or_null(j->params);
    w->rec.progress = dump_or_null(prog);
    w->rec.result = dump_or_null(j->result);
    w->rec.error = dump_or_null(j->error);
    w->rec.created_ms = j->created_ms;
    w->rec.started_ms = j->started_ms;
    w->rec.finished_ms = j->finished_ms;
    w->rec.attempts = j->attempts;
    json_decref(prog);
    w->insert = insert;
    w->terminal = j->state >= JOB_SUCCEEDED;
    w->with_commit = !insert && j->state == JOB_SUCCEEDED && j->type->commit && !j->committing;
    if (w->with_commit)
        j->committing = 1;
    w->job = j;
    w->done = done;
    w->arg = arg;
    j->writes_pending++;
    j->jobs->writes++;
    writer_submit(j->jobs->app->writer, &w->op, write_fn, write_done, w);
}

/* ---- scheduling ---- */

static void schedule(struct jobs *js);

static struct job *job_new(struct jobs *js, const struct job_type *t)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->jobs = js;
    j->app = js->app;
    j->type = t;
    uv_mutex_init(&j->mu);
    j->progress.eta_seconds = -1;
    snprintf(j->state_dir, sizeof j->state_dir, "%s", js->app->cfg.state_dir);
    j->threads = (int)js->app->cfg.jobs_threads;
    const char *delay = getenv("ITEMVEC_TEST_JOB_DELAY_MS");
    j->test_delay_ms = delay ? atoi(delay) : 0;
    return j;
}

static void jobs__append(struct jobs *js, struct job *j)
{
    struct job **pp = &js->head;
    while (*pp && (*pp)->seq < j->seq)
        pp = &(*pp)->next;
    j->next = *pp;
    *pp = j;
}

static json_t *error_problem(int status, const char *title, const char *detail)
{
    return json_pack("{s:s,s:s,s:i,s:s}", "type", "urn:itemvec:problem:job-failed", "title",
                     title, "status", status, "detail", detail);
}

/* Moves j to a terminal state and persists it; the job leaves memory once
 * the write is durable. */
static void job_terminate_then(struct job *j, enum job_state st, void (*done)(void *, int),
                               void *arg)
{
    /* Until the terminal state is durable, views keep showing the old one
     * (a client that sees "succeeded" can rely on the model/result being
     * stored, and on it surviving a crash). */
    j->shown_state = j->state;
    j->settling = 1;
    j->state = st;
    if (j->started_ms > 0)
        observe_duration(j->jobs, j->type->name,
                         (double)(jobs_now_ms() - j->started_ms) / 1000.0);
    j->finished_ms = jobs_now_ms();
    if (st == JOB_SUCCEEDED) {
        uv_mutex_lock(&j->mu);
        j->progress.fraction = 1.0;
        j->progress.eta_seconds = -1;
        snprintf(j->progress.stage, sizeof j->progress.stage, "done");
        uv_mutex_unlock(&j->mu);
    }
    /* ctx lives until the job is freed: type->commit may still need it */
    j->gone = 1;
    jobs__persist(j, 0, done, arg);
    log_info("job %s (%s) %s", j->id, j->type->name, state_names[st]);
}

static void job_terminate(struct job *j, enum job_state st)
{
    job_terminate_then(j, st, NULL, NULL);
}

static void work_cb(uv_work_t *w)
{
    struct job *j = (struct job *)w; /* work is the first member */
    j->run_rc = j->type->run(j, &j->run_err);
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct job *j = (struct job *)w;
    struct jobs *js = j->jobs;
    js->running--;
    int rc = status < 0 ? status : j->run_rc;
    if (rc == 0) {
        struct job_error err = {0};
        json_t *res = j->type->finish(j, &err);
        if (res) {
            j->result = res;
            job_terminate(j, JOB_SUCCEEDED);
        } else {
            j->error = error_problem(500, "Job failed", err.message);
            job_terminate(j, JOB_FAILED);
        }
    } else if (rc == -ECANCELED && atomic_load(&j->cancel) == 2) {
        /* shutdown: back to queued, resumed by the next start */
        j->state = JOB_QUEUED;
        j->started_ms = 0;
        if (j->ctx && j->type->free_ctx) {
            j->type->free_ctx(j->ctx);
            j->ctx = NULL;
        }
        uv_mutex_lock(&j->mu);
        memset(&j->progress, 0, sizeof j->progress);
        j->progress.eta_seconds = -1;
        snprintf(j->progress.stage, sizeof j->progress.stage, "requeued at shutdown");
        uv_mutex_unlock(&j->mu);
        jobs__persist(j, 0, NULL, NULL);
        log_info("job %s (%s) stopped at a checkpoint for shutdown; requeued", j->id,
                 j->type->name);
    } else if (rc == -ECANCELED) {
        job_terminate(j, JOB_CANCELLED);
    } else {
        log_warn("job %s (%s) failed: %s", j->id, j->type->name, j->run_err.message);
        j->error = error_problem(500, "Job failed",
                                 j->run_err.message[0] ? j->run_err.message : strerror(-rc));
        job_terminate(j, JOB_FAILED);
    }
    schedule(js);
}

static void job_start(struct jobs *js, struct job *j)
{
    struct job_error err = {0};
    atomic_store(&j->cancel, 0);
    j->started_ms = jobs_now_ms();
    j->attempts++;
    int rc = j->type->start(j, &err);
    if (rc != 0) {
        j->error = error_problem(err.status ? err.status : 500, "Job failed", err.message);
        job_terminate(j, JOB_FAILED);
        return;
    }
    j->state = JOB_RUNNING;
    j->progress_saved_ms = clock_mono_ms();
    jobs__persist(j, 0, NULL, NULL);
    js->running++;
    log_info("job %s (%s) started (attempt %lld)", j->id, j->type->name, (long long)j->attempts);
    rc = uv_queue_work(js->app->loop, &j->work, work_cb, after_work_cb);
    if (rc != 0) {
        js->running--;
        j->error = error_problem(500, "Job failed", "cannot queue work");
        job_terminate(j, JOB_FAILED);
    }
}

static void schedule(struct jobs *js)
{
    if (js->shutting_down)
        return;
    for (struct job *j = js->head; j && js->running < (unsigned)js->app->cfg.jobs_concurrency;) {
        struct job *next = j->next;
        if (j->state == JOB_QUEUED && !j->gone)
            job_start(js, j);
        j = next;
    }
}

/* Persists progress of running jobs that changed and were last saved over
 * a second ago. */
static void on_timer(uv_timer_t *t)
{
    struct jobs *js = t->data;
    uint64_t now = clock_mono_ms();
    for (struct job *j = js->head; j; j = j->next) {
        if (j->state != JOB_RUNNING || now - j->progress_saved_ms < 1000)
            continue;
        j->progress_saved_ms = now;
        if (j->writes_pending < 2) /* don't pile up behind a long upload commit */
            jobs__persist(j, 0, NULL, NULL);
    }
}

/* ---- public ---- */

static int recover_cb(void *ud, const struct store_job *r)
{
    struct jobs *js = ud;
    const struct job_type *t = type_find(r->type);
    int st = state_parse(r->state);
    if (!t || (st != JOB_QUEUED && st != JOB_RUNNING))
        return 0;
    struct job *j = job_new(js, t);
    if (!j)
        return -ENOMEM;
    j->seq = r->seq;
    snprintf(j->id, sizeof j->id, "%s", r->id);
    j->params = json_loads(r->params ? r->params : "{}", 0, NULL);
    if (!j->params)
        j->params = json_object();
    j->created_ms = r->created_ms;
    j->attempts = r->attempts;
    j->state = JOB_QUEUED;
    jobs__append(js, j);
    if (st == JOB_RUNNING) {
        if (j->attempts >= JOBS_MAX_ATTEMPTS) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "interrupted by a daemon crash or kill after %lld starts; not retried "
                     "again (an out-of-memory kill is the usual cause: see jobs.memory_budget)",
                     (long long)j->attempts);
            log_error("job %s (%s) failed: %s", j->id, r->type, msg);
            j->error = error_problem(500, "Job interrupted", msg);
            job_terminate(j, JOB_FAILED);
            /* Shown at once, not after the write settles: a crash before
             * the write lands re-derives the same failure at the next
             * start, so no client can see a state that is later undone. */
            j->settling = 0;
        } else {
            snprintf(j->progress.stage, sizeof j->progress.stage,
                     "requeued after daemon restart");
            log_warn("job %s (%s) was running when the daemon stopped; requeued", j->id, r->type);
            jobs__persist(j, 0, NULL, NULL);
        }
    }
    return 0;
}

struct jobs *jobs_create(struct app *app)
{
    struct jobs *js = calloc(1, sizeof *js);
    if (!js)
        return NULL;
    js->app = app;
    if (store_jobs_max_seq(app->store, &js->max_seq) != 0) {
        log_error("jobs: cannot read job records: %s", store_errmsg(app->store));
        free(js);
        return NULL;
    }
    /* Running ones first: they were started before anything still queued.
     * The queue is bounded by jobs.queue_size, so one page holds them all. */
    static const char *const active[] = {"running", "queued"};
    for (int i = 0; i < 2; i++) {
        if (store_jobs_list(app->store, active[i], NULL, 0, 1000000, recover_cb, js) != 0) {
            log_error("jobs: recovery failed: %s", store_errmsg(app->store));
            free(js);
            return NULL;
        }
    }
    uv_timer_init(app->loop, &js->timer);
    js->timer.data = js;
    uv_timer_start(&js->timer, on_timer, 500, 500);
    uv_unref((uv_handle_t *)&js->timer);
    schedule(js);
    return js;
}

int jobs_submit(struct jobs *js, const char *type, json_t *params, struct job_error *err,
                struct job **out, void (*done)(void *arg, int rc), void *arg)
{
    if (js->shutting_down || js->app->draining)
        return -ESHUTDOWN;
    const struct job_type *t = type ? type_find(type) : NULL;
    if (!t) {
        err->status = 422;
        snprintf(err->pointer, sizeof err->pointer, "/type");
        snprintf(err->message, sizeof err->message,
                 type ? "unknown job type \"%.64s\" (known: pmi, train, evaluate)"
                      : "required: the job type",
                 type);
        return -EINVAL;
    }
    json_t *norm = t->validate(js->app, params, err);
    if (!norm) {
        if (!err->status)
            err->status = 422;
        return -EINVAL;
    }
    unsigned queued = 0;
    for (struct job *j = js->head; j; j = j->next)
        queued += j->state == JOB_QUEUED;
    if (queued >= (unsigned)js->app->cfg.jobs_queue_size) {
        json_decref(norm);
        return -EAGAIN;
    }
    struct job *j = job_new(js, t);
    if (!j) {
        json_decref(norm);
        return -ENOMEM;
    }
    j->seq = ++js->max_seq;
    snprintf(j->id, sizeof j->id, "j%lld", (long long)j->seq);
    j->params = norm;
    j->created_ms = jobs_now_ms();
    j->state = JOB_QUEUED;
    jobs__append(js, j);
    jobs__persist(j, 1, done, arg);
    log_info("job %s (%s) queued", j->id, t->name);
    *out = j;
    schedule(js);
    return 0;
}

struct job *jobs_find(struct jobs *js, const char *id)
{
    for (struct job *j = js->head; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

json_t *jobs_get_json(struct jobs *js, const char *id)
{
    struct job *j = jobs_find(js, id);
    if (j)
        return job_to_json(j);
    struct store_job r;
    if (store_job_get(js->app->store, id, &r) != 0)
        return NULL;
    json_t *o = jobs_record_to_json(&r);
    store_job_deinit(&r);
    return o;
}

int jobs_cancel(struct jobs *js, const char *id, void (*done)(void *arg, int rc), void *arg)
{
    struct job *j = jobs_find(js, id);
    if (!j) {
        struct store_job r;
        if (store_job_get(js->app->store, id, &r) != 0)
            return -ENOENT;
        store_job_deinit(&r);
        return -EALREADY; /* only terminal jobs live in storage alone */
    }
    if (j->gone)
        return -EALREADY;
    if (j->state == JOB_QUEUED) {
        job_terminate_then(j, JOB_CANCELLED, done, arg);
        return 1; /* done runs once the cancellation is durable */
    }
    if (j->state == JOB_RUNNING) {
        atomic_store(&j->cancel, 1);
        log_info("job %s (%s) cancel requested", j->id, j->type->name);
        return 0;
    }
    return -EALREADY;
}

void jobs_counts(const struct jobs *js, unsigned *queued, unsigned *running)
{
    *queued = 0;
    *running = js->running;
    for (struct job *j = js->head; j; j = j->next)
        *queued += j->state == JOB_QUEUED && !j->gone;
}

int jobs_latest_succeeded(struct jobs *js, const char *type, char *out, size_t size)
{
    /* a job that just succeeded may still be on its way to storage */
    const struct job *best = NULL;
    for (const struct job *j = js->head; j; j = j->next)
        if (job_visible_state(j) == JOB_SUCCEEDED && strcmp(j->type->name, type) == 0)
            best = j; /* the list is in seq order */
    if (best) {
        snprintf(out, size, "%s", best->id);
        return 0;
    }
    return store_job_latest(js->app->store, type, "succeeded", out, size);
}

json_t *jobs_latest_result_member(struct jobs *js, const char *type, const char *key, char *id,
                                  size_t size)
{
    /* a job that just succeeded may not be stored yet: memory, then
     * storage, the higher seq wins (the list is in seq order) */
    const struct job *mem = NULL;
    for (const struct job *j = js->head; j; j = j->next)
        if (job_visible_state(j) == JOB_SUCCEEDED && strcmp(j->type->name, type) == 0 &&
            json_object_get(j->result, key))
            mem = j;
    char stored[32];
    long long seq = 0;
    int have_stored =
        store_job_latest_with(js->app->store, type, "succeeded", key, stored, sizeof stored) == 0 &&
        sscanf(stored, "j%lld", &seq) == 1;
    if (mem && (!have_stored || mem->seq >= seq)) {
        snprintf(id, size, "%s", mem->id);
        return json_incref(json_object_get(mem->result, key));
    }
    if (!have_stored)
        return NULL;
    struct store_job r;
    if (store_job_get(js->app->store, stored, &r) != 0)
        return NULL;
    json_t *result = r.result ? json_loads(r.result, 0, NULL) : NULL;
    store_job_deinit(&r);
    json_t *out = json_incref(json_object_get(result, key));
    json_decref(result);
    if (out)
        snprintf(id, size, "%s", stored);
    return out;
}

int jobs_is_succeeded(struct jobs *js, const char *id, const char *type)
{
    const struct job *j = jobs_find(js, id);
    if (j)
        return job_visible_state(j) == JOB_SUCCEEDED && strcmp(j->type->name, type) == 0;
    struct store_job r;
    if (store_job_get(js->app->store, id, &r) != 0)
        return 0;
    int ok = strcmp(r.type, type) == 0 && strcmp(r.state, "succeeded") == 0;
    store_job_deinit(&r);
    return ok;
}

int jobs_reserve_id(struct jobs *js, int64_t *seq, char *id, size_t size)
{
    if (js->shutting_down || js->app->draining)
        return -ESHUTDOWN;
    *seq = ++js->max_seq;
    snprintf(id, size, "j%lld", (long long)*seq);
    return 0;
}

void jobs_shutdown(struct jobs *js)
{
    js->shutting_down = 1;
    for (struct job *j = js->head; j; j = j->next)
        if (j->state == JOB_RUNNING)
            atomic_store(&j->cancel, 2);
}

unsigned jobs_busy(const struct jobs *js)
{
    return js->running + js->writes;
}

void jobs_destroy(struct jobs *js)
{
    if (!js)
        return;
    /* the timer handle was closed with every other handle at shutdown */
    while (js->head) {
        struct job *j = js->head;
        js->head = j->next;
        job_destroy(j);
    }
    free(js);
}

int job_cancelled(struct job *j)
{
    for (int waited = 0; waited < j->test_delay_ms; waited += 10) {
        if (atomic_load_explicit(&j->cancel, memory_order_relaxed))
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load_explicit(&j->cancel, memory_order_relaxed) != 0;
}

void job_progress_set(struct job *j, double fraction, const char *stage, int n,
                      const char *const *keys, const double *values, double eta_seconds)
{
    if (n > JOB_PROGRESS_MAX_COUNTERS)
        n = JOB_PROGRESS_MAX_COUNTERS;
    uv_mutex_lock(&j->mu);
    j->progress.fraction = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
    snprintf(j->progress.stage, sizeof j->progress.stage, "%s", stage);
    j->progress.n = n;
    for (int i = 0; i < n; i++) {
        snprintf(j->progress.key[i], sizeof j->progress.key[i], "%s", keys[i]);
        j->progress.value[i] = values[i];
    }
    j->progress.eta_seconds = eta_seconds;
    uv_mutex_unlock(&j->mu);
}
