/*
 * /v1/models (list), /v1/models/{id} (get, delete), activation, and the
 * embeddings export in the seed's JSONL format:
 *   {"id":"2114406","embedding":[...]}   one item a line
 * streamed from the model held in memory (no body is built whole), with a
 * strong ETag (model id + file checksum + encoding), If-None-Match → 304,
 * Accept-Encoding: gzip, and HEAD.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "api/api.h"
#include "api/jbuf.h"
#include "api/server_internal.h"
#include "conf/app.h"
#include "jobs/jobs.h"
#include "serving/ann_index.h"
#include "serving/serving.h"
#include "storage/writer.h"
#include "storage/models.h"

json_t *api__index_json(const struct served_model *sm)
{
    if (!sm->ann)
        return json_pack("{s:s,s:b}", "kind", "exact", "precomputed", sm->precomputed);
    const struct ann_index_stats *st = ann_index_stats(sm->ann);
    return json_pack("{s:s,s:s,s:b,s:f,s:f,s:I,s:{s:f,s:f},s:i,s:i,s:{s:i,s:i,s:i}}", "kind",
                     "ann", "library", "hnswlib", "loaded_from_file", st->loaded, "build_seconds",
                     st->build_seconds, "load_seconds", st->load_seconds, "memory_bytes",
                     (json_int_t)ann_index_bytes(sm->ann), "recall_at_10", "cosine",
                     st->recall_cosine, "dot", st->recall_dot, "recall_sample", (int)st->sample,
                     "lists", (int)st->list_k, "params", "m", (int)st->params.m,
                     "ef_construction", (int)st->params.ef_construction, "ef_search",
                     (int)st->params.ef_search);
}

static json_t *model_json(const struct store_model *m, int details)
{
    char t[40];
    jobs_format_time(m->created_ms, t, sizeof t);
    /* imported models (jobs/import_model.c) have no job and params.source */
    json_t *pj = m->params ? json_loads(m->params, 0, NULL) : NULL;
    const char *src = json_string_value(json_object_get(pj, "source"));
    json_t *o = json_pack("{s:s,s:o,s:s,s:s,s:I,s:I,s:b}", "id", m->id, "job",
                          m->job && *m->job ? json_string(m->job) : json_null(), "source",
                          src ? src : "train", "created_at", t, "dimensions",
                          (json_int_t)m->dimensions, "items", (json_int_t)m->items, "active",
                          m->active);
    json_decref(pj);
    if (details) {
        json_object_set_new(o, "pmi_job", api_json_str(m->pmi_job));
        json_t *p = m->params ? json_loads(m->params, 0, NULL) : NULL;
        json_object_set_new(o, "params", p ? p : json_null());
        json_t *l = m->loss ? json_loads(m->loss, 0, NULL) : NULL;
        json_object_set_new(o, "loss", l ? l : json_array());
    }
    return o;
}

struct list_ctx {
    json_t *arr;
    int64_t last;
    int n;
};

static int list_cb(void *ud, const struct store_model *m)
{
    struct list_ctx *c = ud;
    json_array_append_new(c->arr, model_json(m, 0));
    c->last = m->seq;
    c->n++;
    return 0;
}

void api_models_list(struct api_req *req)
{
    int64_t size;
    if (api_query_int(req, "page_size", 100, 1, 1000, &size) != 0)
        return;
    int64_t before = 0;
    const char *tok = api_query(req, "page_token");
    if (tok && *tok) {
        char *end;
        before = tok[0] == 'm' ? strtoll(tok + 1, &end, 10) : -1;
        if (tok[0] != 'm' || *end || before <= 0) {
            api_reply_problem(req, 400, "bad-page-token", "Bad Request", NULL,
                              "page_token is not valid");
            return;
        }
    }
    struct list_ctx c = {json_array(), 0, 0};
    int rc = store_models_list(req->app->store, before, (int)size, list_cb, &c);
    if (rc != 0) {
        json_decref(c.arr);
        api__reply_storage_error(req, rc);
        return;
    }
    json_t *next = json_null();
    if (c.n == size && c.last > 1) {
        char t[32];
        snprintf(t, sizeof t, "m%lld", (long long)c.last);
        next = json_string(t);
    }
    api_reply_json(req, 200, json_pack("{s:o,s:o}", "models", c.arr, "next_page_token", next));
}

/* Reads the model named in the path; replies 404 when absent. */
static int model_from_path(struct api_req *req, struct store_model *m)
{
    int rc = store_model_get(req->app->store, api_param(req, 0), m);
    if (rc == -ENOENT)
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no model with this id");
    else if (rc != 0)
        api__reply_storage_error(req, rc);
    return rc;
}

void api_model_get(struct api_req *req)
{
    struct store_model m;
    if (model_from_path(req, &m) != 0)
        return;
    json_t *o = model_json(&m, 1);
    struct served_model *sm = serving_active(req->app);
    if (sm && strcmp(sm->id, m.id) == 0) {
        json_object_set_new(o, "serving",
                            json_pack("{s:b,s:f,s:f,s:I}", "precomputed", sm->precomputed,
                                      "load_seconds", sm->load_seconds, "precompute_seconds",
                                      sm->precompute_seconds, "memory_bytes",
                                      (json_int_t)sm->bytes));
        json_object_set_new(json_object_get(o, "serving"), "index", api__index_json(sm));
    }
    double frac;
    char stage[32];
    if (serving_loading(req->app, m.id, &frac, stage, sizeof stage))
        json_object_set_new(o, "loading", json_pack("{s:f,s:s}", "fraction", frac, "stage", stage));
    store_model_deinit(&m);
    api_reply_json(req, 200, o);
}

/* ---- activate and delete: a write on the model named in the path ---- */

struct model_op {
    struct api_req *req;
    struct writer_op op;
    char id[40];
};

/* Queues fn(store, op) on the writer for the path's model; done answers. */
static void model_write(struct api_req *req, writer_fn fn, writer_done_fn done)
{
    struct model_op *st = api_state_create(req, sizeof *st, NULL);
    if (!st)
        return;
    st->req = req;
    snprintf(st->id, sizeof st->id, "%s", api_param(req, 0));
    api_req_suspend(req);
    writer_submit(req->app->writer, &st->op, fn, done, st);
}

static int activate_fn(struct store *s, void *arg)
{
    struct model_op *st = arg;
    return store_model_activate(s, st->id);
}

static void activated(void *arg, struct served_model *m, int rc)
{
    struct model_op *st = arg;
    struct api_req *req = st->req;
    if (!m) {
        api_reply_problem(req, 500, "model-load", "Internal Server Error", NULL,
                          "model %s is marked active but cannot be loaded: %s", st->id,
                          strerror(-rc));
    } else {
        struct store_model rec;
        if (store_model_get(req->app->store, st->id, &rec) == 0) {
            api_reply_json(req, 200, model_json(&rec, 0));
            store_model_deinit(&rec);
        } else {
            api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no model with this id");
        }
        served_model_unref(m);
    }
    api_req_resume(req);
}

static void activate_stored(void *arg, int rc)
{
    struct model_op *st = arg;
    if (rc != 0) {
        api__reply_storage_error(st->req, rc);
        api_req_resume(st->req);
        return;
    }
    serving_activate(st->req->app, st->id, activated, st);
}

void api_model_activate(struct api_req *req)
{
    struct store_model m;
    if (model_from_path(req, &m) != 0)
        return;
    store_model_deinit(&m);
    model_write(req, activate_fn, activate_stored);
}

static int delete_fn(struct store *s, void *arg)
{
    struct model_op *st = arg;
    return store_model_delete(s, st->id);
}

static void deleted(void *arg, int rc)
{
    struct model_op *st = arg;
    struct api_req *req = st->req;
    if (rc == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/models/%s.emb", req->app->cfg.state_dir, st->id);
        unlink(path);
        api_reply_empty(req, 204);
    } else if (rc == -EBUSY) {
        api_reply_problem(req, 409, "model-active", "Conflict", NULL,
                          "model %s is the active model; activate another one first", st->id);
    } else if (rc == -ENOENT) {
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no model with this id");
    } else {
        api__reply_storage_error(req, rc);
    }
    api_req_resume(req);
}

void api_model_delete(struct api_req *req)
{
    model_write(req, delete_fn, deleted);
}

/* ---- embeddings export ---- */

struct export {
    struct served_model *m;
    uint32_t row;
    int gzip;
    int flushed;
    z_stream zs;
    char *plain; /* gzip: lines waiting to be deflated */
    size_t plain_len, plain_off;
    struct jbuf line; /* the current line; grows to the longest (id + dimensions) */
    size_t line_off;
};

static void export_destroy(void *p)
{
    struct export *x = p;
    if (x->gzip)
        deflateEnd(&x->zs);
    served_model_unref(x->m);
    free(x->plain);
    free(x->line.p);
    free(x);
}

/* Formats row x->row into x->line, however long (a 1024-dimension row of
 * small floats passes 16 KiB). Returns 0, or -ENOMEM: the stream is then
 * aborted rather than sent with a truncated row. */
static int format_line(struct export *x)
{
    const struct model_data *d = &x->m->data;
    struct jbuf *l = &x->line;
    l->len = 0;
    JBUF_LIT(l, "{\"id\":");
    jbuf_str(l, x->m->ids[x->row]);
    JBUF_LIT(l, ",\"embedding\":[");
    const float *e = d->embedding + (size_t)x->row * d->dimensions;
    char num[40];
    for (uint32_t k = 0; k < d->dimensions; k++) {
        int n = snprintf(num, sizeof num, k ? ",%.9g" : "%.9g", (double)e[k]);
        jbuf_raw(l, num, (size_t)n);
    }
    JBUF_LIT(l, "]}\n");
    x->line_off = 0;
    x->row++;
    return l->failed ? -ENOMEM : 0;
}

/* Copies plain NDJSON into buf; returns bytes (0 at the end, -1 when a
 * line cannot be formatted). */
static ssize_t fill_plain(struct export *x, char *buf, size_t max)
{
    size_t out = 0;
    while (out < max) {
        if (x->line_off == x->line.len) {
            if (x->row >= x->m->data.n)
                break;
            if (format_line(x) != 0)
                return -1;
        }
        size_t take = x->line.len - x->line_off;
        if (take > max - out)
            take = max - out;
        memcpy(buf + out, x->line.p + x->line_off, take);
        x->line_off += take;
        out += take;
    }
    return (ssize_t)out;
}

static ssize_t export_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct export *x = cls;
    if (!x->gzip) {
        ssize_t n = fill_plain(x, buf, max);
        if (n < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        return n ? n : MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (x->flushed)
        return MHD_CONTENT_READER_END_OF_STREAM;
    x->zs.next_out = (Bytef *)buf;
    x->zs.avail_out = (uInt)max;
    while (x->zs.avail_out > 0) {
        if (x->plain_off == x->plain_len) {
            ssize_t n = fill_plain(x, x->plain, 65536);
            if (n < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            x->plain_len = (size_t)n;
            x->plain_off = 0;
        }
        int finish = x->plain_len == 0;
        x->zs.next_in = (Bytef *)x->plain + x->plain_off;
        x->zs.avail_in = (uInt)(x->plain_len - x->plain_off);
        int zrc = deflate(&x->zs, finish ? Z_FINISH : Z_NO_FLUSH);
        x->plain_off = x->plain_len - x->zs.avail_in;
        if (zrc == Z_STREAM_END) {
            x->flushed = 1;
            break;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = max - x->zs.avail_out;
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static int accepts_gzip(struct api_req *req)
{
    const char *ae = api_header(req, "Accept-Encoding");
    if (!ae)
        return 0;
    const char *g = strstr(ae, "gzip");
    if (!g)
        return 0;
    const char *q = strstr(g, "q=0");
    const char *comma = strchr(g, ',');
    return !(q && (!comma || q < comma) && !strstr(g, "q=0."));
}

static int etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    return strstr(inm, etag) != NULL;
}

struct export_req {
    struct api_req *req;
    char model[40];
};

static void export_ready(void *arg, struct served_model *m, int rc)
{
    struct export_req *er = arg;
    struct api_req *req = er->req;
    if (!m) {
        if (rc == -ENODATA) {
            api_reply_problem(req, 404, "no-active-model", "Not Found", NULL,
                              "no model is active: train one or activate one");
        } else if (rc == -EAGAIN) {
            api_add_header(req, "Retry-After", "5");
            api_reply_problem(req, 503, "loading-model", "Service Unavailable", NULL,
                              "the active model is still being loaded after the start");
        } else if (rc == -ENOENT) {
            api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no model with this id");
        } else {
            api_reply_problem(req, 500, "model-load", "Internal Server Error", NULL,
                              "cannot load the model: %s", strerror(-rc));
        }
        api_req_resume(req);
        return;
    }
    int gz = accepts_gzip(req);
    char etag[96];
    snprintf(etag, sizeof etag, "\"%s-%08x%s\"", m->id, m->data.crc, gz ? "-gz" : "");
    api_add_header(req, "ETag", etag);
    api_add_header(req, "Vary", "Accept-Encoding");
    api_add_header(req, "X-Model-Id", m->id);
    if (etag_matches(api_header(req, "If-None-Match"), etag)) {
        served_model_unref(m);
        api_reply_empty(req, 304);
        api_req_resume(req);
        return;
    }
    struct export *x = calloc(1, sizeof *x);
    if (!x || (gz && !(x->plain = malloc(65536)))) {
        free(x);
        served_model_unref(m);
        api_reply_oom(req);
        api_req_resume(req);
        return;
    }
    x->m = m;
    x->gzip = gz;
    if (gz && deflateInit2(&x->zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        x->gzip = 0;
        export_destroy(x);
        api_reply_problem(req, 500, "gzip", "Internal Server Error", NULL, "deflateInit failed");
        api_req_resume(req);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 64 * 1024, export_reader, x, export_destroy);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    if (gz)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    api_reply_response(req, 200, resp);
    api_req_resume(req);
}

static void export_start(struct api_req *req, const char *model)
{
    struct export_req *er = calloc(1, sizeof *er);
    if (!er) {
        api_reply_oom(req);
        return;
    }
    er->req = req;
    snprintf(er->model, sizeof er->model, "%s", model ? model : "");
    req->state = er;
    req->state_destroy = free;
    api_req_suspend(req);
    serving_get(req->app, er->model, export_ready, er);
}

void api_model_embeddings(struct api_req *req)
{
    struct store_model m;
    if (model_from_path(req, &m) != 0)
        return;
    store_model_deinit(&m);
    export_start(req, api_param(req, 0));
}

void api_embeddings(struct api_req *req)
{
    export_start(req, NULL);
}
