/*
 * /v1/jobs: submit (202 + Location once the job record is durable), get,
 * list (newest first, filter by state and type) and cancel. The job system
 * (jobs/jobs.c) owns the jobs; this file only maps HTTP to it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "conf/app.h"
#include "jobs/jobs.h"
#include "storage/jobs.h"

static void reply_job_error(struct api_req *req, const struct job_error *err)
{
    int status = err->status ? err->status : 422;
    json_t *extra = json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", err->pointer, "detail",
                              err->message);
    if (err->memory_budget) { /* refused for memory: both figures, machine-readable */
        json_object_set_new(extra, "memory_estimate_bytes",
                            json_integer((json_int_t)err->memory_estimate));
        json_object_set_new(extra, "memory_budget_bytes",
                            json_integer((json_int_t)err->memory_budget));
    }
    api_reply_problem(req, status,
                      err->memory_budget ? "memory-budget"
                      : status == 409    ? "conflict"
                                         : "invalid-job",
                      status == 409 ? "Conflict" : "Unprocessable Content", extra, "%s%s%s",
                      err->pointer, err->pointer[0] ? ": " : "", err->message);
}

struct submit_state {
    struct api_req *req;
    struct job *job;
};

static void submit_done(void *arg, int rc)
{
    struct submit_state *st = arg;
    struct api_req *req = st->req;
    if (rc != 0) {
        api__reply_storage_error(req, rc);
    } else {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/jobs/%s", st->job->id);
        api_add_header(req, "Location", loc);
        api_reply_json(req, 202, job_to_json(st->job));
    }
    api_req_resume(req);
}

void api_jobs_post(struct api_req *req)
{
    json_t *doc = api_body_json(req);
    if (!doc)
        return;
    struct job_error err = {0};
    if (!json_is_object(doc)) {
        json_decref(doc);
        err.status = 422;
        snprintf(err.message, sizeof err.message, "the body must be an object {\"type\", \"params\"}");
        reply_job_error(req, &err);
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "type") != 0 && strcmp(key, "params") != 0) {
            err.status = 422;
            snprintf(err.pointer, sizeof err.pointer, "/%.60s", key);
            snprintf(err.message, sizeof err.message, "unknown field (expected type, params)");
            json_decref(doc);
            reply_job_error(req, &err);
            return;
        }
    }
    json_t *type = json_object_get(doc, "type");
    if (type && !json_is_string(type)) {
        json_decref(doc);
        err.status = 422;
        snprintf(err.pointer, sizeof err.pointer, "/type");
        snprintf(err.message, sizeof err.message, "must be a string");
        reply_job_error(req, &err);
        return;
    }
    struct submit_state *st = calloc(1, sizeof *st);
    if (!st) {
        json_decref(doc);
        api_reply_oom(req);
        return;
    }
    st->req = req;
    req->state = st;
    req->state_destroy = free;
    int rc = jobs_submit(req->app->jobs, json_string_value(type), json_object_get(doc, "params"),
                         &err, &st->job, submit_done, st);
    json_decref(doc);
    if (rc == -EINVAL) {
        reply_job_error(req, &err);
    } else if (rc == -EAGAIN) {
        api_add_header(req, "Retry-After", "10");
        api_reply_problem(req, 429, "queue-full", "Too Many Requests", NULL,
                          "the job queue is full (jobs.queue_size = %lld); retry later",
                          (long long)req->app->cfg.jobs_queue_size);
    } else if (rc == -ESHUTDOWN) {
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 503, "draining", "Service Unavailable", NULL,
                          "itemvecd is shutting down");
    } else if (rc != 0) {
        api_reply_problem(req, 503, "out-of-memory", "Service Unavailable", NULL, "%s",
                          strerror(-rc));
    } else {
        api_req_suspend(req);
    }
}

void api_job_get(struct api_req *req)
{
    json_t *o = jobs_get_json(req->app->jobs, api_param(req, 0));
    if (!o) {
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no job with this id");
        return;
    }
    api_reply_json(req, 200, o);
}

struct list_ctx {
    struct jobs *jobs;
    json_t *arr;
    int64_t last_seq;
    int n;
};

static int list_cb(void *ud, const struct store_job *r)
{
    struct list_ctx *c = ud;
    struct job *live = jobs_find(c->jobs, r->id);
    json_array_append_new(c->arr, live ? job_to_json(live) : jobs_record_to_json(r));
    c->last_seq = r->seq;
    c->n++;
    return 0;
}

void api_jobs_list(struct api_req *req)
{
    static const char *const states[] = {"queued", "running", "succeeded", "failed", "cancelled",
                                         NULL};
    int64_t size;
    if (api_query_int(req, "page_size", 100, 1, 1000, &size) != 0)
        return;
    const char *state = api_query(req, "state");
    const char *type = api_query(req, "type");
    if (state && !*state)
        state = NULL;
    if (type && !*type)
        type = NULL;
    if (type && strcmp(type, "pmi") != 0 && strcmp(type, "train") != 0 &&
        strcmp(type, "evaluate") != 0) {
        api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "type", "detail",
                                    "pmi, train or evaluate"),
                          "type must be one of pmi, train, evaluate");
        return;
    }
    if (state) {
        int ok = 0;
        for (int i = 0; states[i]; i++)
            ok |= strcmp(states[i], state) == 0;
        if (!ok) {
            api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                              json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "state", "detail",
                                        "queued, running, succeeded, failed or cancelled"),
                              "state must be one of queued, running, succeeded, failed, "
                              "cancelled");
            return;
        }
    }
    int64_t before = 0;
    const char *tok = api_query(req, "page_token");
    if (tok && *tok) {
        char *end;
        before = tok[0] == 'j' ? strtoll(tok + 1, &end, 10) : -1;
        if (tok[0] != 'j' || *end || before <= 0) {
            api_reply_problem(req, 400, "bad-page-token", "Bad Request", NULL,
                              "page_token is not valid");
            return;
        }
    }
    struct list_ctx c = {req->app->jobs, json_array(), 0, 0};
    int rc = store_jobs_list(req->app->store, state, type, before, (int)size, list_cb, &c);
    if (rc != 0) {
        json_decref(c.arr);
        api__reply_storage_error(req, rc);
        return;
    }
    json_t *next = json_null();
    if (c.n == size && c.last_seq > 1) {
        char t[32];
        snprintf(t, sizeof t, "j%lld", (long long)c.last_seq);
        json_decref(next);
        next = json_string(t);
    }
    api_reply_json(req, 200, json_pack("{s:o,s:o}", "jobs", c.arr, "next_page_token", next));
}

struct cancel_state {
    struct api_req *req;
    char id[32];
};

static void cancel_durable(void *arg, int rc)
{
    struct cancel_state *st = arg;
    if (rc != 0)
        api__reply_storage_error(st->req, rc);
    else
        api_reply_json(st->req, 200, jobs_get_json(st->req->app->jobs, st->id));
    api_req_resume(st->req);
}

void api_job_cancel(struct api_req *req)
{
    const char *id = api_param(req, 0);
    struct cancel_state *st = calloc(1, sizeof *st);
    if (!st) {
        api_reply_oom(req);
        return;
    }
    st->req = req;
    snprintf(st->id, sizeof st->id, "%s", id);
    req->state = st;
    req->state_destroy = free;
    int rc = jobs_cancel(req->app->jobs, id, cancel_durable, st);
    if (rc == -ENOENT) {
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no job with this id");
    } else if (rc == -EALREADY) {
        json_t *o = jobs_get_json(req->app->jobs, id);
        const char *state = o ? json_string_value(json_object_get(o, "state")) : "terminal";
        api_reply_problem(req, 409, "job-terminal", "Conflict", NULL,
                          "the job is already %s; terminal states never change", state);
        json_decref(o);
    } else if (rc == 1) {
        api_req_suspend(req);
    } else {
        api_reply_json(req, 200, jobs_get_json(req->app->jobs, id));
    }
}
