/*
 * Serving: GET /v1/items/{id}/similar and POST /v1/recommend.
 * source=embedding (default) answers from the active (or ?model=) model in
 * memory: cosine similarity of its embeddings, i.e. dot products of the
 * L2-normalised vectors, as the blueprint's ANN index ranks; ties by id.
 * With k <= serving.topk it is a lookup in the precomputed lists.
 * source=cooc|pmi|rp3 answers from a PMI job's matrix instead: neighbours
 * by co-occurrence count (times freq^pop_weight), by the seed's score
 * cooc·pmi, or by the random walk rp3 (alpha, beta); ml/scores.h.
 * source=auto serves what the newest succeeded evaluate job with a sweep
 * chose ("best" for similar, "best_continuation" for recommend), else
 * the config's serving.default_source; the answer names what it served.
 * POST /v1/recommend takes every source: a matrix source scores a
 * candidate by the sum of its scores against the input items.
 * When the model (or matrix) is in memory the answer is computed in the
 * handler; otherwise the request waits, suspended, for the load. A cheap
 * query (a lookup in the precomputed lists, a short matrix row: at most
 * QUERY_INLINE_COST scores, serving_neighbours_cost) runs right there on
 * the loop; an expensive one (an exact scan: k beyond the lists,
 * metric=dot, recommend; a long row, an rp3 walk through big playlists, a
 * matrix recommend over many inputs) runs on the pool (api/work.h) holding
 * a reference to its model or matrix, and the answer is written back on
 * the loop. Every ranking is serving/neighbours.c's (the evaluate job
 * ranks through it too); its only runtime error, out of memory, answers
 * 503.
 */
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/jbuf.h"
#include "api/server_internal.h"
#include "api/work.h"
#include "conf/app.h"
#include "jobs/jobs.h"
#include "jobs/sweep.h"
#include "serving/neighbours.h"
#include "serving/pmi_cache.h"
#include "serving/serving.h"
#include "storage/store.h"

#define MAX_K SERVING_MAX_K
#define MAX_INPUT_ITEMS 1000
/* Queries costing more scores than this leave the loop: 65536 is a scan of
 * ~1300 items of 50 dimensions, tens of microseconds; a precomputed lookup
 * costs k <= 1000. */
#define QUERY_INLINE_COST (UINT64_C(1) << 16)

/* How source=auto decided (the answer's "auto" member). */
enum auto_from { AUTO_NONE, AUTO_EVALUATE, AUTO_CONFIG };

struct sim_req {
    struct api_req *req;
    enum serving_source source;
    enum serving_metric metric; /* dot: inner product of the raw embeddings */
    struct score_params sp;     /* a matrix source's params */
    int show_params;            /* the answer names the params (rp3, auto, or given) */
    enum auto_from auto_from;
    char auto_job[32];          /* AUTO_EVALUATE: the evaluate job */
    const char *job;            /* ?job= / "job": the PMI job (NULL: newest) */
    uint32_t k;
    int in_handler; /* the callback ran before the handler returned */
    int answered;
    char *item;     /* similar: the item id */
    char *job_copy; /* recommend: the body's "job", owned */
    int64_t item_key;
    const char *model;
    /* recommend */
    json_t *items, *exclude;
    int exact; /* ?exact=true: the exact path even when the model has an ANN index */
    uint32_t *in, *ex; /* their indices in the model or matrix (owned) */
    size_t n_in, n_ex;
    json_t *unknown; /* the items not in it */
    /* the query, run here or on the pool; its model or matrix is held (one
     * reference) while it runs there */
    struct api_work work;
    struct served_model *m;
    struct pmi_matrix *pm;
    struct serving_items src;
    struct serving_query q;
    int n; /* the query's result: neighbours written, or -errno */
    uint32_t idx[MAX_K];
    double score[MAX_K];
};

static void sim_destroy(void *p)
{
    struct sim_req *s = p;
    free(s->item);
    free(s->job_copy);
    json_decref(s->items);
    json_decref(s->exclude);
    json_decref(s->unknown);
    free(s->in);
    free(s->ex);
    served_model_unref(s->m); /* only set while a query runs: not here */
    if (s->pm)
        pmi_matrix_unref(s->pm);
    free(s);
}

static struct sim_req *sim_of(struct api_work *w)
{
    return (struct sim_req *)((char *)w - offsetof(struct sim_req, work));
}

/* Pool thread: the query over borrowed, immutable views (the model or
 * matrix is held by s). */
static void query_run(struct api_work *w)
{
    struct sim_req *s = sim_of(w);
    s->n = serving_neighbours_query(&s->src, &s->q, s->idx, s->score);
}

/* Runs s->q over s->src: in place when cheap (then reply(s) at once), else
 * on the pool with reply as the work's done callback. The caller has set
 * s->m or s->pm (the reference reply releases). Returns 1 when the answer
 * comes later, 0 when it is set. */
static int query_start(struct sim_req *s, api_work_fn reply)
{
    if (serving_neighbours_cost(&s->src, &s->q) <= QUERY_INLINE_COST) {
        s->n = serving_neighbours_query(&s->src, &s->q, s->idx, s->score);
        reply(&s->work);
        return 0;
    }
    if (api_work_submit(s->req, &s->work, query_run, reply) != 0) {
        served_model_unref(s->m); /* answered 503: queue full */
        s->m = NULL;
        if (s->pm)
            pmi_matrix_unref(s->pm);
        s->pm = NULL;
        return 0;
    }
    return 1;
}

static void finish(struct sim_req *s)
{
    s->answered = 1;
    if (!s->in_handler)
        api_req_resume(s->req);
}

static json_t *neighbor_json(const char *id, double score, const char *title, const char *artist)
{
    return json_pack("{s:o,s:f,s:o,s:o}", "id", api_json_str(id), "score", score, "title",
                     api_json_str(title), "artist", api_json_str(artist));
}

static int reply_no_model(struct api_req *req, const char *model, int rc)
{
    if (rc == -ENODATA) {
        api_reply_problem(req, 409, "no-active-model", "Conflict", NULL,
                          "no model is active: run a train job, or POST "
                          "/v1/models/{id}/activate");
    } else if (rc == -EAGAIN) {
        const char *starting = serving_starting(req->app);
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 503, "loading-model", "Service Unavailable", NULL,
                          "the active model %s is still being loaded after the start "
                          "(GET /v1/models/%s shows the progress)",
                          starting ? starting : "", starting ? starting : "{id}");
    } else if (rc == -ENOENT) {
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no model %s", model);
    } else {
        api_reply_problem(req, 500, "model-load", "Internal Server Error", NULL,
                          "cannot load the model: %s", strerror(-rc));
    }
    return rc;
}

/* A failed neighbour query: out of memory (503), else a bug (500). */
static void reply_query_error(struct api_req *req, int rc)
{
    if (rc == -ENOMEM)
        api_reply_oom(req);
    else
        api_reply_problem(req, 500, "internal", "Internal Server Error", NULL,
                          "the neighbour query failed: %s", strerror(-rc));
}

/* ---- sources, their params and source=auto ---- */

static enum serving_source serving_of(enum score_source s)
{
    return s == SCORE_COOC ? SERVING_SOURCE_COOC
           : s == SCORE_PMI ? SERVING_SOURCE_PMI
                            : SERVING_SOURCE_RP3;
}

static enum score_source score_of(enum serving_source s)
{
    return s == SERVING_SOURCE_COOC ? SCORE_COOC : s == SERVING_SOURCE_PMI ? SCORE_PMI : SCORE_RP3;
}

/* The answer's "auto" member: what decided the source. */
static json_t *auto_json(const struct sim_req *s)
{
    if (s->auto_from == AUTO_EVALUATE)
        return json_pack("{s:s,s:s}", "from", "evaluate", "job", s->auto_job);
    return json_pack("{s:s,s:s}", "from", "config", "key", "serving.default_source");
}

/* Adds "params" and "auto" to a matrix source's answer, as they apply. */
static void describe_json(const struct sim_req *s, json_t *o)
{
    if (s->show_params)
        json_object_set_new(o, "params", sweep_params_json(&s->sp));
    if (s->auto_from != AUTO_NONE)
        json_object_set_new(o, "auto", auto_json(s));
}

/* source=auto: the newest succeeded evaluate job's choice under key
 * ("best" or "best_continuation"), else serving.default_source with its
 * default params. */
static void resolve_auto(struct sim_req *s, const char *key)
{
    struct app *app = s->req->app;
    json_t *choice =
        jobs_latest_result_member(app->jobs, "evaluate", key, s->auto_job, sizeof s->auto_job);
    enum score_source ss;
    if (choice && sweep_choice_parse(choice, &s->sp) == 0) {
        s->source = serving_of(s->sp.source);
        s->auto_from = AUTO_EVALUATE;
    } else {
        s->auto_from = AUTO_CONFIG;
        if (sweep_source_parse(app->cfg.serving_default_source, &ss) == 0) {
            score_params_init(&s->sp, ss);
            s->source = serving_of(ss);
        } else {
            s->source = SERVING_SOURCE_EMBEDDING;
        }
    }
    json_decref(choice);
    s->show_params = s->source != SERVING_SOURCE_EMBEDDING;
}

static const char *const param_names[] = {"pop_weight", "alpha", "beta"};

/* Whether param p (an index into param_names) belongs to source. */
static int param_applies(int p, enum serving_source source)
{
    return (p == 0 && source == SERVING_SOURCE_COOC) || (p > 0 && source == SERVING_SOURCE_RP3);
}

static double *param_slot(struct score_params *sp, int p)
{
    return p == 0 ? &sp->pop_weight : p == 1 ? &sp->alpha : &sp->beta;
}

static void param_bounds(int p, double *lo, double *hi)
{
    *lo = p == 0 ? SCORE_POP_WEIGHT_MIN : p == 1 ? SCORE_ALPHA_MIN : SCORE_BETA_MIN;
    *hi = p == 0 ? SCORE_POP_WEIGHT_MAX : p == 1 ? SCORE_ALPHA_MAX : SCORE_BETA_MAX;
}

/* Sets s->source from a source name (NULL or "": embedding); -EINVAL for
 * an unknown one. "auto" sets auto_from to AUTO_CONFIG as a marker, the
 * caller resolves it once the params are checked. */
static int source_from_name(struct sim_req *s, const char *src)
{
    enum score_source ss;
    if (!src || !*src || strcmp(src, "embedding") == 0) {
        s->source = SERVING_SOURCE_EMBEDDING;
    } else if (strcmp(src, "auto") == 0) {
        s->auto_from = AUTO_CONFIG;
    } else if (sweep_source_parse(src, &ss) == 0) {
        score_params_init(&s->sp, ss);
        s->source = serving_of(ss);
        s->show_params = ss == SCORE_RP3;
    } else {
        return -EINVAL;
    }
    return 0;
}

/* Checks a source param's value (text from the query string, or a JSON
 * number) and stores it; the detail of the refusal in why. */
static int param_set(struct sim_req *s, int p, const char *text, json_t *num, char *why,
                     size_t size)
{
    if (s->auto_from != AUTO_NONE || s->source == SERVING_SOURCE_EMBEDDING ||
        !param_applies(p, s->source)) {
        snprintf(why, size, "%s applies to source=%s only%s", param_names[p],
                 p == 0 ? "cooc" : "rp3",
                 s->auto_from != AUTO_NONE ? " (source=auto serves its own choice's params)" : "");
        return -EINVAL;
    }
    double lo, hi, x;
    char *end = NULL;
    param_bounds(p, &lo, &hi);
    if (text) {
        x = strtod(text, &end);
        if (!*text || *end)
            x = NAN;
    } else {
        x = json_is_number(num) ? json_number_value(num) : NAN;
    }
    if (!isfinite(x) || x < lo || x > hi) {
        snprintf(why, size, "%s must be a number in %g..%g", param_names[p], lo, hi);
        return -EINVAL;
    }
    *param_slot(&s->sp, p) = x;
    s->show_params = 1;
    return 0;
}

/* A PMI result that cannot be had: 409 (none) or 500. */
static void reply_no_pmi(struct api_req *req, int rc)
{
    if (rc == -ENOENT)
        api_reply_problem(req, 409, "no-pmi-job", "Conflict", NULL,
                          "no succeeded pmi job (or not the one named by ?job=)");
    else
        api_reply_problem(req, 500, "pmi-load", "Internal Server Error", NULL,
                          "cannot load the PMI result: %s", strerror(-rc));
}

/* A failed matrix query: rp3 on a result without playlists is the
 * caller's conflict (409); else as reply_query_error. */
static void reply_matrix_error(struct api_req *req, const struct pmi_matrix *m, int rc)
{
    if (rc == -ENODATA)
        api_reply_problem(req, 409, "no-playlists-in-pmi-job", "Conflict", NULL,
                          "source=rp3 needs the playlists of the pmi job, and pmi job %s has "
                          "none (an imported table, or computed by an older version): run a "
                          "pmi job",
                          m->job);
    else
        reply_query_error(req, rc);
}

/* ---- similar from a model ---- */

/* The hot path's answer, written directly (no jansson tree):
 * {<lead><value>,"model":..,"source":"embedding","neighbors":[...](,<tail>)}
 * lead is "\"item\":" with a string value; tail (may be NULL) is raw JSON
 * text to add, e.g. the unknown items of recommend. */
static void reply_neighbors(struct api_req *req, const char *lead, const char *value,
                            const struct served_model *m, const char *index,
                            const uint32_t *idx, const double *score, int n, const char *tail)
{
    struct jbuf b = {0};
    JBUF_LIT(&b, "{");
    jbuf_lit(&b, lead);
    if (value)
        jbuf_str(&b, value);
    JBUF_LIT(&b, ",\"model\":");
    jbuf_str(&b, m->id);
    JBUF_LIT(&b, ",\"source\":\"embedding\",\"index\":");
    jbuf_str(&b, index);
    JBUF_LIT(&b, ",\"neighbors\":[");
    for (int t = 0; t < n; t++) {
        if (t)
            JBUF_LIT(&b, ",");
        JBUF_LIT(&b, "{\"id\":");
        jbuf_str(&b, m->ids[idx[t]]);
        JBUF_LIT(&b, ",\"score\":");
        jbuf_float(&b, (float)score[t]); /* the float the index ranks by */
        JBUF_LIT(&b, ",\"title\":");
        jbuf_str(&b, m->titles[idx[t]]);
        JBUF_LIT(&b, ",\"artist\":");
        jbuf_str(&b, m->artists[idx[t]]);
        JBUF_LIT(&b, "}");
    }
    JBUF_LIT(&b, "]");
    if (tail) {
        JBUF_LIT(&b, ",");
        jbuf_lit(&b, tail);
    }
    JBUF_LIT(&b, "}\n");
    if (b.failed) {
        free(b.p);
        api_reply_oom(req);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    api_reply_response(req, 200, resp);
}

/* Loop thread: the answer of a similar query over s->m, which it releases. */
static void similar_model_reply(struct api_work *w)
{
    struct sim_req *s = sim_of(w);
    struct api_req *req = s->req;
    char *tail = NULL;
    if (s->auto_from != AUTO_NONE) {
        json_t *a = json_pack("{s:o}", "auto", auto_json(s));
        tail = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        if (tail) {
            tail[strlen(tail) - 1] = '\0'; /* spliced in without its braces */
            memmove(tail, tail + 1, strlen(tail));
        }
    }
    if (s->n < 0)
        reply_query_error(req, s->n);
    else if (s->auto_from != AUTO_NONE && !tail)
        api_reply_oom(req);
    else
        reply_neighbors(req, "\"item\":", s->item, s->m,
                        serving_neighbours_index(&s->src, &s->q), s->idx, s->score, s->n,
                        s->metric == SERVING_METRIC_DOT ? "\"metric\":\"dot\"" : tail);
    free(tail);
    served_model_unref(s->m);
    s->m = NULL;
}

static void similar_model_ready(void *arg, struct served_model *m, int rc)
{
    struct sim_req *s = arg;
    struct api_req *req = s->req;
    if (!m) {
        reply_no_model(req, s->model, rc);
        finish(s);
        return;
    }
    int64_t i = served_model_find(m, s->item);
    if (i < 0) {
        api_reply_problem(req, 404, "item-not-in-model", "Not Found", NULL,
                          "item %s is not in model %s (unknown, or filtered out by the pmi "
                          "job's min_item_frequency / max_group_size)",
                          s->item, m->id);
        served_model_unref(m);
        finish(s);
        return;
    }
    /* metric=dot: the k items with the largest inner product x_q·x_j of
     * the raw (unnormalised) embeddings, an exact scan. Vector length
     * carries popularity, which cosine divides out; docs/quality.md
     * measures the difference. */
    s->m = m; /* taken: released by similar_model_reply */
    serving_items_of_model(m, &s->src);
    s->q = (struct serving_query){.source = SERVING_SOURCE_EMBEDDING,
                                  .metric = s->metric,
                                  .k = s->k,
                                  .item = (uint32_t)i,
                                  .exact = s->exact};
    if (!query_start(s, similar_model_reply))
        finish(s);
}

/* ---- similar from the PMI matrix ---- */

/* Loop thread: the answer of a matrix query over s->pm (similar, or
 * recommend when s->items is set), which it releases. */
static void matrix_reply(struct api_work *w)
{
    struct sim_req *s = sim_of(w);
    struct api_req *req = s->req;
    struct pmi_matrix *m = s->pm;
    if (s->n < 0) {
        reply_matrix_error(req, m, s->n);
    } else {
        json_t *arr = json_array();
        for (int t = 0; t < s->n; t++) {
            uint32_t key = pmi_matrix_key(m, s->idx[t]);
            json_array_append_new(arr, neighbor_json(m->names.id[key], s->score[t],
                                                     m->names.title[key], m->names.artist[key]));
        }
        json_t *o = s->items ? json_pack("{s:O}", "items", s->items)
                             : json_pack("{s:s}", "item", s->item);
        json_object_set_new(o, "model", json_null());
        json_object_set_new(o, "source", json_string(sweep_source_name(score_of(s->source))));
        json_object_set_new(o, "job", json_string(m->job));
        if (!s->items)
            json_object_set_new(o, "index", json_string("exact"));
        describe_json(s, o);
        json_object_set_new(o, "neighbors", arr);
        if (s->items)
            json_object_set(o, "unknown_items", s->unknown);
        api_reply_json(req, 200, o);
    }
    pmi_matrix_unref(m);
    s->pm = NULL;
}

static void similar_pmi_ready(void *arg, struct pmi_matrix *m, int rc)
{
    struct sim_req *s = arg;
    struct api_req *req = s->req;
    if (!m) {
        reply_no_pmi(req, rc);
        finish(s);
        return;
    }
    int64_t i = pmi_matrix_index(m, (uint32_t)s->item_key);
    if (i < 0) {
        api_reply_problem(req, 404, "item-not-in-matrix", "Not Found", NULL,
                          "item %s is not in the co-occurrence matrix of pmi job %s", s->item,
                          m->job);
        pmi_matrix_unref(m);
        finish(s);
        return;
    }
    s->pm = m; /* taken: released by matrix_reply */
    serving_items_of_pmi(m, &s->src);
    s->q = (struct serving_query){.source = s->source,
                                  .k = s->k,
                                  .item = (uint32_t)i,
                                  .pop_weight = s->sp.pop_weight,
                                  .alpha = s->sp.alpha,
                                  .beta = s->sp.beta};
    if (!query_start(s, matrix_reply))
        finish(s);
}

/* source, pop_weight, alpha, beta of the query string; replies 400. */
static int parse_source(struct sim_req *s)
{
    struct api_req *req = s->req;
    char why[160];
    if (source_from_name(s, api_query(req, "source")) != 0) {
        api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "source", "detail",
                                    "embedding, cooc, pmi, rp3 or auto"),
                          "source must be embedding, cooc, pmi, rp3 or auto");
        return -EINVAL;
    }
    for (int p = 0; p < 3; p++) {
        const char *v = api_query(req, param_names[p]);
        if (v && param_set(s, p, v, NULL, why, sizeof why) != 0) {
            api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                              json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", param_names[p],
                                        "detail", why),
                              "%s", why);
            return -EINVAL;
        }
    }
    if (s->auto_from != AUTO_NONE)
        resolve_auto(s, "best");
    return 0;
}

/* ?exact=true|false (absent: false). */
static int parse_exact(struct api_req *req, int *out)
{
    const char *v = api_query(req, "exact");
    *out = 0;
    if (!v || !*v || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        return 0;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
        return 0;
    }
    api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                      json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "exact", "detail",
                                "true or false"),
                      "exact must be true or false");
    return -EINVAL;
}

void api_item_similar(struct api_req *req)
{
    const char *id = api__path_id(req);
    if (!id)
        return;
    int64_t k;
    if (api_query_int(req, "k", 10, 1, MAX_K, &k) != 0)
        return;
    struct sim_req *s = calloc(1, sizeof *s);
    if (!s || !(s->item = strdup(id))) {
        free(s);
        api_reply_oom(req);
        return;
    }
    s->req = req;
    s->k = (uint32_t)k;
    s->model = api_query(req, "model");
    s->job = api_query(req, "job");
    req->state = s;
    req->state_destroy = sim_destroy;
    if (parse_source(s) != 0)
        return;
    enum serving_source src = s->source;
    if (parse_exact(req, &s->exact) != 0)
        return;
    const char *metric = api_query(req, "metric");
    if (metric && *metric && strcmp(metric, "cosine") != 0) {
        if (strcmp(metric, "dot") != 0 || src != SERVING_SOURCE_EMBEDDING ||
            s->auto_from != AUTO_NONE) {
            api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                              json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "metric",
                                        "detail", "cosine or dot (source=embedding only)"),
                              "metric must be cosine or dot (dot with source=embedding)");
            return;
        }
        s->metric = SERVING_METRIC_DOT;
    }
    s->in_handler = 1;
    if (src == SERVING_SOURCE_EMBEDDING) {
        serving_get(req->app, s->model, similar_model_ready, s);
    } else {
        struct store_item it;
        if (api__item_get(req, id, &it) != 0)
            return;
        s->item_key = it.key;
        store_item_deinit(&it);
        api__pmi_get(req, s->job, similar_pmi_ready, s);
    }
    s->in_handler = 0;
    if (!s->answered)
        api_req_suspend(req);
}

/* ---- recommend ---- */

static const char *item_string(json_t *v, char *num, size_t size)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(num, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return num;
    }
    return NULL;
}

/* Loop thread: the answer of a recommend query over s->m, which it
 * releases. */
static void recommend_reply(struct api_work *w)
{
    struct sim_req *s = sim_of(w);
    struct api_req *req = s->req;
    char *items = json_dumps(s->items, JSON_COMPACT);
    json_t *tail_obj = json_pack("{s:O}", "unknown_items", s->unknown);
    if (s->auto_from != AUTO_NONE)
        json_object_set_new(tail_obj, "auto", auto_json(s));
    char *tail = json_dumps(tail_obj, JSON_COMPACT);
    json_decref(tail_obj);
    if (s->n < 0) {
        reply_query_error(req, s->n);
    } else if (!items || !tail) {
        api_reply_oom(req);
    } else {
        tail[strlen(tail) - 1] = '\0'; /* drop the closing brace: spliced in */
        struct jbuf lb = {0};          /* "items": the request's list, as sent */
        jbuf_lit(&lb, "\"items\":");
        jbuf_lit(&lb, items);
        reply_neighbors(req, lb.failed ? "\"items\":null" : lb.p, NULL, s->m,
                        serving_neighbours_index(&s->src, &s->q), s->idx, s->score,
                        s->n, tail + 1);
        free(lb.p);
    }
    free(items);
    free(tail);
    served_model_unref(s->m);
    s->m = NULL;
}

/* Turns s->items and s->exclude into indices (s->in, s->ex) by find, the
 * unknown inputs into s->unknown. Returns 0 or -ENOMEM. */
static int recommend_inputs(struct sim_req *s, int64_t (*find)(const void *, const char *),
                            const void *m)
{
    size_t n_in = json_array_size(s->items), n_ex = json_array_size(s->exclude);
    s->in = malloc(sizeof *s->in * (n_in + 1));
    s->ex = malloc(sizeof *s->ex * (n_ex + 1));
    s->unknown = json_array();
    if (!s->in || !s->ex || !s->unknown)
        return -ENOMEM;
    char num[32];
    for (size_t t = 0; t < n_in; t++) {
        const char *id = item_string(json_array_get(s->items, t), num, sizeof num);
        int64_t i = find(m, id);
        if (i >= 0)
            s->in[s->n_in++] = (uint32_t)i;
        else
            json_array_append_new(s->unknown, api_json_str(id));
    }
    for (size_t t = 0; t < n_ex; t++) {
        int64_t i = find(m, item_string(json_array_get(s->exclude, t), num, sizeof num));
        if (i >= 0)
            s->ex[s->n_ex++] = (uint32_t)i;
    }
    return 0;
}

static int64_t model_find(const void *m, const char *id)
{
    return served_model_find(m, id);
}

static int64_t matrix_find(const void *m, const char *id)
{
    return pmi_matrix_find(m, id);
}

static void recommend_ready(void *arg, struct served_model *m, int rc)
{
    struct sim_req *s = arg;
    struct api_req *req = s->req;
    if (!m) {
        reply_no_model(req, s->model, rc);
        finish(s);
        return;
    }
    if (recommend_inputs(s, model_find, m) != 0) {
        api_reply_oom(req);
    } else if (s->n_in == 0) {
        api_reply_problem(req, 404, "items-not-in-model", "Not Found",
                          json_pack("{s:O}", "unknown_items", s->unknown),
                          "none of the items is in model %s", m->id);
    } else {
        s->m = m; /* taken: released by recommend_reply */
        serving_items_of_model(m, &s->src);
        s->q = (struct serving_query){.source = SERVING_SOURCE_EMBEDDING,
                                      .k = s->k,
                                      .items = s->in,
                                      .n_items = s->n_in,
                                      .exclude = s->ex,
                                      .n_exclude = s->n_ex};
        if (!query_start(s, recommend_reply))
            finish(s);
        return;
    }
    served_model_unref(m);
    finish(s);
}

/* Recommend from the PMI matrix: the sum of the inputs' scores. */
static void recommend_pmi_ready(void *arg, struct pmi_matrix *m, int rc)
{
    struct sim_req *s = arg;
    struct api_req *req = s->req;
    if (!m) {
        reply_no_pmi(req, rc);
        finish(s);
        return;
    }
    if (recommend_inputs(s, matrix_find, m) != 0) {
        api_reply_oom(req);
    } else if (s->n_in == 0) {
        api_reply_problem(req, 404, "items-not-in-matrix", "Not Found",
                          json_pack("{s:O}", "unknown_items", s->unknown),
                          "none of the items is in the co-occurrence matrix of pmi job %s", m->job);
    } else {
        s->pm = m; /* taken: released by matrix_reply */
        serving_items_of_pmi(m, &s->src);
        s->q = (struct serving_query){.source = s->source,
                                      .k = s->k,
                                      .items = s->in,
                                      .n_items = s->n_in,
                                      .exclude = s->ex,
                                      .n_exclude = s->n_ex,
                                      .pop_weight = s->sp.pop_weight,
                                      .alpha = s->sp.alpha,
                                      .beta = s->sp.beta};
        if (!query_start(s, matrix_reply))
            finish(s);
        return;
    }
    pmi_matrix_unref(m);
    finish(s);
}

/* The source fields of a recommend body: source, pop_weight, alpha, beta,
 * job; replies 422 naming the field. */
static int parse_body_source(struct sim_req *s, json_t *doc)
{
    struct api_req *req = s->req;
    char why[160], pointer[32];
    json_t *src = json_object_get(doc, "source"), *job = json_object_get(doc, "job");
    if ((src && !json_is_string(src) && !json_is_null(src)) ||
        source_from_name(s, json_is_string(src) ? json_string_value(src) : NULL) != 0) {
        api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "/source", "detail",
                                    "embedding, cooc, pmi, rp3 or auto"),
                          "source must be embedding, cooc, pmi, rp3 or auto");
        return -EINVAL;
    }
    for (int p = 0; p < 3; p++) {
        json_t *v = json_object_get(doc, param_names[p]);
        if (v && param_set(s, p, NULL, v, why, sizeof why) != 0) {
            snprintf(pointer, sizeof pointer, "/%s", param_names[p]);
            api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                              json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", pointer, "detail",
                                        why),
                              "%s", why);
            return -EINVAL;
        }
    }
    if (job && !json_is_string(job) && !json_is_null(job)) {
        api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "/job", "detail",
                                    "a pmi job id"),
                          "job must be a string");
        return -EINVAL;
    }
    if (json_is_string(job) && !(s->job_copy = strdup(json_string_value(job)))) {
        api_reply_oom(req);
        return -ENOMEM;
    }
    s->job = s->job_copy;
    if (s->auto_from != AUTO_NONE)
        resolve_auto(s, "best_continuation");
    return 0;
}

/* Checks an array of ids; replies 422 naming the field when bad. */
static int check_ids(struct api_req *req, json_t *arr, const char *field, int required)
{
    char pointer[64];
    if (!arr && !required)
        return 0;
    if (!json_is_array(arr) || (required && json_array_size(arr) == 0) ||
        json_array_size(arr) > MAX_INPUT_ITEMS) {
        snprintf(pointer, sizeof pointer, "/%s", field);
        api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", pointer, "detail",
                                    "an array of 1..1000 item ids"),
                          "%s must be an array of 1..%d item ids", field, MAX_INPUT_ITEMS);
        return -EINVAL;
    }
    size_t i;
    json_t *v;
    char num[32];
    json_array_foreach(arr, i, v)
    {
        const char *id = item_string(v, num, sizeof num);
        if (!id || text_id_invalid(id, strlen(id))) {
            snprintf(pointer, sizeof pointer, "/%s/%zu", field, i);
            api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                              json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", pointer,
                                        "detail", "an item id: a string of 1..256 bytes"),
                              "%s is not a valid item id", pointer);
            return -EINVAL;
        }
    }
    return 0;
}

/* Refuses a field recommend does not know (a typo such as "exlude" would
 * otherwise be ignored silently and change the answer): 400 naming it.
 * The source fields are checked by parse_body_source. */
static int check_fields(struct api_req *req, json_t *doc)
{
    static const char *const known[] = {"items", "k",     "exclude", "model", "source",
                                        "job",   "alpha", "beta",    "pop_weight"};
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(key, known[i]) != 0)
            i++;
        if (i == sizeof known / sizeof known[0]) {
            /* RFC 6901 pointer (~ → ~0, / → ~1), cut at 64 bytes on a
             * character boundary */
            char pointer[160];
            size_t n = 0;
            pointer[n++] = '/';
            for (size_t j = 0; key[j]; j++) { /* n <= 1 + 2 * 67 */
                if (j >= 64 && ((unsigned char)key[j] & 0xC0) != 0x80)
                    break;
                if (key[j] == '~' || key[j] == '/') {
                    pointer[n++] = '~';
                    pointer[n++] = key[j] == '~' ? '0' : '1';
                } else {
                    pointer[n++] = key[j];
                }
            }
            pointer[n] = '\0';
            api_reply_problem(req, 400, "unknown-field", "Bad Request",
                              json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", pointer, "detail",
                                        "unknown field"),
                              "unknown field %s (expected items, k, exclude, model, source, "
                              "job, pop_weight, alpha, beta)",
                              pointer);
            return -EINVAL;
        }
    }
    return 0;
}

void api_recommend(struct api_req *req)
{
    json_t *doc = api_body_json(req);
    if (!doc)
        return;
    if (json_is_object(doc) && check_fields(req, doc) != 0) {
        json_decref(doc);
        return;
    }
    struct sim_req *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(doc);
        api_reply_oom(req);
        return;
    }
    s->req = req;
    req->state = s;
    req->state_destroy = sim_destroy;
    json_t *k = json_is_object(doc) ? json_object_get(doc, "k") : NULL;
    json_t *model = json_is_object(doc) ? json_object_get(doc, "model") : NULL;
    if (!json_is_object(doc) || check_ids(req, json_object_get(doc, "items"), "items", 1) != 0 ||
        check_ids(req, json_object_get(doc, "exclude"), "exclude", 0) != 0) {
        if (!req->response)
            api_reply_problem(req, 422, "invalid-body", "Unprocessable Content", NULL,
                              "the body must be an object {\"items\": [...], \"k\", \"exclude\"}");
        json_decref(doc);
        return;
    }
    if (k && (!json_is_integer(k) || json_integer_value(k) < 1 ||
              json_integer_value(k) > MAX_K)) {
        json_decref(doc);
        api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "/k", "detail",
                                    "an integer in 1..1000"),
                          "k must be an integer in 1..%d", MAX_K);
        return;
    }
    if (model && !json_is_string(model) && !json_is_null(model)) {
        json_decref(doc);
        api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "/model", "detail",
                                    "a model id"),
                          "model must be a string");
        return;
    }
    if (parse_body_source(s, doc) != 0) {
        json_decref(doc);
        return;
    }
    s->k = k ? (uint32_t)json_integer_value(k) : 10;
    s->items = json_incref(json_object_get(doc, "items"));
    s->exclude = json_incref(json_object_get(doc, "exclude"));
    s->item = json_is_string(model) ? strdup(json_string_value(model)) : NULL;
    s->model = s->item;
    json_decref(doc);
    s->in_handler = 1;
    if (s->source == SERVING_SOURCE_EMBEDDING)
        serving_get(req->app, s->model, recommend_ready, s);
    else
        api__pmi_get(req, s->job, recommend_pmi_ready, s);
    s->in_handler = 0;
    if (!s->answered)
        api_req_suspend(req);
}
