/*
 * PMI results: GET /v1/pmi/pairs (the seed's "explore the co-occurrence
 * data" query: ordered pairs item1 != item2 by score = cooc·pmi) and
 * GET /v1/items/{id}/cooccurrences (one item's row of item_cooc by score).
 * Both read a PMI job's matrix through the cache (loaded off the loop); a
 * row too long to rank in a bounded slice of the loop is ranked on the pool
 * (api/work.h) with the matrix held.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "api/work.h"
#include "conf/app.h"
#include "jobs/jobs.h"
#include "serving/pmi_cache.h"
#include "storage/store.h"

void api__pmi_get(struct api_req *req, const char *job, pmi_cache_cb cb, void *arg)
{
    struct app *app = req->app;
    char id[32];
    if (!job || !*job) {
        if (jobs_latest_succeeded(app->jobs, "pmi", id, sizeof id) != 0) {
            cb(arg, NULL, -ENOENT);
            return;
        }
        job = id;
    } else if (!jobs_is_succeeded(app->jobs, job, "pmi")) {
        cb(arg, NULL, -ENOENT);
        return;
    }
    pmi_cache_get(app, job, cb, arg);
}

/* Row entries sorted by score (desc), ties by item id (rank: the item's
 * position in id order, pmi_matrix.id_rank). */
struct scored {
    uint64_t e;
    double score;
    uint32_t rank;
};

struct pmi_req {
    struct api_req *req;
    int64_t limit;
    int64_t item_key; /* cooccurrences: the item's key */
    char *item_id;
    const char *job;
    /* cooccurrences: the ranked row (on the pool when long, api/work.h),
     * with the matrix held meanwhile */
    struct api_work work;
    struct pmi_matrix *m;
    int64_t i;        /* the item's row, -1 when not in the matrix */
    struct scored *s; /* the row's entries, ranked */
    size_t n;
    int oom;
};

static void pmi_req_destroy(void *p)
{
    struct pmi_req *pr = p;
    free(pr->item_id);
    free(pr->s);
    if (pr->m)
        pmi_matrix_unref(pr->m);
    free(pr);
}

static json_t *pair_json(const struct pmi_matrix *m, uint32_t i, uint64_t e, int names)
{
    const struct cooc_result *r = &m->res;
    uint32_t j = r->col[e];
    uint32_t k1 = r->keys[i], k2 = r->keys[j];
    const char *id1 = k1 <= m->names.max_key ? m->names.id[k1] : NULL;
    const char *id2 = k2 <= m->names.max_key ? m->names.id[k2] : NULL;
    json_t *o = json_pack("{s:o,s:o,s:I,s:I,s:I,s:f,s:f}", "item1", api_json_str(id1), "item2",
                          api_json_str(id2), "freq1", (json_int_t)r->freq[i], "freq2",
                          (json_int_t)r->freq[j], "cooc", (json_int_t)r->cooc[e], "pmi",
                          cooc_pmi(r, i, e), "score", cooc_score(r, i, e));
    if (names && k2 <= m->names.max_key) {
        json_object_set_new(o, "title", api_json_str(m->names.title[k2]));
        json_object_set_new(o, "artist", api_json_str(m->names.artist[k2]));
    }
    return o;
}

static int reply_no_matrix(struct api_req *req, const char *job, int rc)
{
    if (rc == -ENOENT && (!job || !*job))
        api_reply_problem(req, 409, "no-pmi-job", "Conflict", NULL,
                          "no succeeded pmi job yet: POST /v1/jobs {\"type\":\"pmi\"} first");
    else if (rc == -ENOENT)
        api_reply_problem(req, 404, "not-found", "Not Found", NULL,
                          "no succeeded pmi job %s (or its result file is gone)", job);
    else
        api_reply_problem(req, 500, "pmi-load", "Internal Server Error", NULL,
                          "cannot load the PMI result: %s", strerror(-rc));
    return rc;
}

static void pairs_ready(void *arg, struct pmi_matrix *m, int rc)
{
    struct pmi_req *pr = arg;
    struct api_req *req = pr->req;
    if (!m) {
        reply_no_matrix(req, pr->job, rc);
    } else {
        json_t *arr = json_array();
        for (uint32_t t = 0; t < m->n_top && (int64_t)t < pr->limit; t++)
            json_array_append_new(arr, pair_json(m, m->top[t].i, m->top[t].idx, 0));
        api_reply_json(req, 200, json_pack("{s:s,s:o}", "job", m->job, "pairs", arr));
        pmi_matrix_unref(m);
    }
    api_req_resume(req);
}

static struct pmi_req *pmi_req_new(struct api_req *req, int64_t limit)
{
    struct pmi_req *pr = calloc(1, sizeof *pr);
    if (!pr) {
        api_reply_oom(req);
        return NULL;
    }
    pr->req = req;
    pr->limit = limit;
    pr->job = api_query(req, "job");
    req->state = pr;
    req->state_destroy = pmi_req_destroy;
    return pr;
}

void api_pmi_pairs(struct api_req *req)
{
    int64_t limit;
    if (api_query_int(req, "limit", 10, 1, PMI_TOP_PAIRS / 2, &limit) != 0)
        return;
    struct pmi_req *pr = pmi_req_new(req, limit);
    if (!pr)
        return;
    api_req_suspend(req);
    api__pmi_get(req, pr->job, pairs_ready, pr);
}

static int scored_cmp(const void *a, const void *b)
{
    const struct scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Any thread: ranks row pr->i of pr->m (held) into pr->s. */
static void cooc_rank(struct pmi_req *pr)
{
    const struct cooc_result *r = &pr->m->res;
    uint64_t b = r->row_ptr[pr->i], e = r->row_ptr[pr->i + 1];
    pr->s = malloc(sizeof *pr->s * (e - b + 1));
    pr->oom = !pr->s;
    for (uint64_t x = b; pr->s && x < e; x++)
        if (r->col[x] != (uint32_t)pr->i)
            pr->s[pr->n++] = (struct scored){x, cooc_score(r, (uint32_t)pr->i, x),
                                             pr->m->id_rank[r->col[x]]};
    if (pr->s)
        qsort(pr->s, pr->n, sizeof *pr->s, scored_cmp);
}

static struct pmi_req *pmi_req_of(struct api_work *w)
{
    return (struct pmi_req *)((char *)w - offsetof(struct pmi_req, work));
}

static void cooc_rank_run(struct api_work *w)
{
    cooc_rank(pmi_req_of(w));
}

/* Loop thread: the answer from the ranked row; releases the matrix. */
static void cooc_reply(struct api_work *w)
{
    struct pmi_req *pr = pmi_req_of(w);
    struct api_req *req = pr->req;
    if (pr->oom) {
        api_reply_oom(req); /* not a 200 with an empty list */
    } else {
        json_t *arr = json_array();
        for (size_t t = 0; pr->s && t < pr->n && (int64_t)t < pr->limit; t++)
            json_array_append_new(arr, pair_json(pr->m, (uint32_t)pr->i, pr->s[t].e, 1));
        api_reply_json(req, 200,
                       json_pack("{s:s,s:s,s:b,s:o}", "job", pr->m->job, "item", pr->item_id,
                                 "in_matrix", pr->i >= 0, "pairs", arr));
    }
    pmi_matrix_unref(pr->m);
    pr->m = NULL;
}

/* A row of up to this many entries is ranked here (well under a
 * millisecond); a longer one on the pool. */
#define COOC_INLINE_ROW 65536

static void cooc_ready(void *arg, struct pmi_matrix *m, int rc)
{
    struct pmi_req *pr = arg;
    struct api_req *req = pr->req;
    if (!m) {
        reply_no_matrix(req, pr->job, rc);
        api_req_resume(req);
        return;
    }
    pr->m = m; /* taken: released by cooc_reply */
    pr->i = pmi_matrix_index(m, (uint32_t)pr->item_key);
    uint64_t len = pr->i >= 0 ? m->res.row_ptr[pr->i + 1] - m->res.row_ptr[pr->i] : 0;
    if (len > COOC_INLINE_ROW) {
        if (api_work_submit(req, &pr->work, cooc_rank_run, cooc_reply) == 0)
            return; /* answered from the pool's done callback */
        pmi_matrix_unref(pr->m); /* answered 503: queue full */
        pr->m = NULL;
    } else {
        if (pr->i >= 0)
            cooc_rank(pr);
        cooc_reply(&pr->work);
    }
    api_req_resume(req);
}

void api_item_cooccurrences(struct api_req *req)
{
    const char *id = api__path_id(req);
    if (!id)
        return;
    int64_t k;
    if (api_query_int(req, "k", 10, 1, 1000, &k) != 0)
        return;
    struct store_item it;
    if (api__item_get(req, id, &it) != 0)
        return;
    struct pmi_req *pr = pmi_req_new(req, k);
    if (!pr) {
        store_item_deinit(&it);
        return;
    }
    pr->item_key = it.key;
    pr->item_id = it.id;
    it.id = NULL;
    store_item_deinit(&it);
    api_req_suspend(req);
    api__pmi_get(req, pr->job, cooc_ready, pr);
}
