/*
 * Job type "evaluate": hold-out quality of the neighbours (docs/quality.md).
 * Playlists are split by a seeded hash of their id; PMI and training run
 * on the training part only, in memory (no stored PMI result, model or
 * active model is touched); then every method ranks, for each item q of a
 * held-out playlist with at least two items known to the model, q's top-k
 * neighbours, scored against the rest of that playlist (ml/eval.c):
 *   embedding  cosine of the trained embeddings (as served)
 *   cooc       co-occurrence count on the training part
 *   pmi        the seed's score cooc·pmi
 *   popularity item frequency (the same list for every query)
 *   embedding_dot  inner product of the same embeddings (not served; the
 *              study's diagnostic, opt-in: what cosine normalisation costs)
 * Ties are broken by item id, as the serving endpoints do: every method
 * but popularity ranks through serving/neighbours.c, the code the
 * endpoints answer with.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "conf/app.h"
#include "jobs/job_params.h"
#include "jobs/jobs.h"
#include "jobs/pipeline.h"
#include "ml/cooc.h"
#include "ml/eval.h"
#include "ml/knn.h"
#include "ml/rating.h"
#include "ml/wals.h"
#include "serving/neighbours.h"
#include "storage/store.h"

enum { M_EMBEDDING, M_COOC, M_PMI, M_POPULARITY, M_EMBEDDING_DOT, N_METHODS };
static const char *const method_names[] = {"embedding",  "cooc",          "pmi",
                                           "popularity", "embedding_dot", NULL};

static const struct job_param_def eval_params[] = {
    {"holdout_fraction", JOB_PARAM_NUMBER, 0.001, 0.9, "0.1", NULL},
    {"k", JOB_PARAM_INT_LIST, 1, EVAL_MAX_K, "10", NULL},
    {"methods", JOB_PARAM_STRING_LIST, 0, 0, "[\"embedding\",\"cooc\",\"pmi\",\"popularity\"]",
     method_names},
};

struct eval_ctx {
    double holdout;
    uint64_t seed;
    uint32_t ks[EVAL_MAX_KS];
    int n_ks;
    int use[N_METHODS];
    int64_t min_item_frequency, max_group_size;
    struct wals_params wp;
    struct rating_params rp;
    /* results, filled by the worker */
    struct eval_metrics m[N_METHODS][EVAL_MAX_KS];
    size_t train_groups, heldout_groups, scored_lists;
    uint32_t items;
    uint64_t queries;
    int iterations;
    double final_loss;
    double t_load, t_pmi, t_train, t_score;
};

static json_t *eval_validate(struct app *app, json_t *params, struct job_error *err)
{
    const struct job_param_table tables[] = {
        {eval_params, sizeof eval_params / sizeof eval_params[0]},
        job_pmi_param_table,
        job_model_param_table,
    };
    return job_params_validate_tables(params, tables, 3, err);
}

static int eval_start(struct job *j, struct job_error *err)
{
    struct eval_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    json_t *p = j->params;
    c->holdout = job_param_number(p, "holdout_fraction");
    c->seed = (uint64_t)job_param_int(p, "seed");
    json_t *ks = json_object_get(p, "k");
    c->n_ks = (int)json_array_size(ks);
    for (int i = 0; i < c->n_ks; i++)
        c->ks[i] = (uint32_t)json_integer_value(json_array_get(ks, (size_t)i));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(p, "methods"), i, v)
    {
        for (int m = 0; m < N_METHODS; m++)
            if (strcmp(json_string_value(v), method_names[m]) == 0)
                c->use[m] = 1;
    }
    c->min_item_frequency = job_param_int(p, "min_item_frequency");
    c->max_group_size = job_param_int(p, "max_group_size");
    job_model_params_apply(p, j->threads, &c->wp, &c->rp);
    j->ctx = c;
    return 0;
}

/* ---- progress plumbing: each stage maps to a slice of the fraction ---- */

struct stage {
    struct job *job;
    const char *name;
    double from, to;
};

static int stage_report(struct stage *s, double f)
{
    job_progress_set(s->job, s->from + (s->to - s->from) * f, s->name, 0, NULL, NULL, -1);
    return job_cancelled(s->job);
}

static int on_cooc(void *ud, const struct cooc_progress *p)
{
    return stage_report(ud, p->fraction);
}

static int on_wals(void *ud, const struct wals_progress *p)
{
    return stage_report(ud, p->fraction);
}

static int on_eval(void *ud, double f)
{
    return stage_report(ud, f);
}

static int by_name(const void *a, const void *b, void *arg)
{
    char **names = arg;
    return strcmp(names[*(const uint32_t *)a], names[*(const uint32_t *)b]);
}

static int eval_run(struct job *j, struct job_error *err)
{
    struct eval_ctx *c = j->ctx;
    struct store_error serr;
    struct store_groups g = {0};
    struct store_item_names names = {0};
    struct cooc_result res = {0};
    struct pipeline_out po = {0};
    struct knn_index *idx = NULL;
    uint64_t *toff = NULL, *hoff = NULL;
    uint32_t *titems = NULL, *hitems = NULL, *rank = NULL, *order = NULL, *tmp = NULL;
    int32_t *dense = NULL;
    float *val = NULL;
    float *emb = NULL; /* po.emb, borrowed */
    struct serving_ranker *sr = NULL; /* the served rankers' scratch */
    int rc;
    double t0 = clock_mono_s();
    struct stage st = {j, "load", 0, 0.05};
    stage_report(&st, 0);

    struct store *s = store_open(j->state_dir, &serr);
    if (!s) {
        snprintf(err->message, sizeof err->message, "cannot open storage: %.200s", serr.message);
        return -EIO;
    }
    rc = store_groups_load_hashed(s, c->seed, &g);
    if (rc == 0)
        rc = store_item_names_load(s, &names);
    store_close(s);
    if (rc != 0) {
        snprintf(err->message, sizeof err->message, "cannot read memberships: %s", strerror(-rc));
        goto out;
    }
    /* split: training groups keep their items; held-out ones are kept
     * aside as item keys */
    size_t n_rows = g.n_groups ? g.offsets[g.n_groups] : 0;
    toff = malloc(sizeof *toff * (g.n_groups + 1));
    hoff = malloc(sizeof *hoff * (g.n_groups + 1));
    titems = malloc(sizeof *titems * (n_rows + 1));
    hitems = malloc(sizeof *hitems * (n_rows + 1));
    if (!toff || !hoff || !titems || !hitems) {
        rc = -ENOMEM;
        goto out;
    }
    size_t nt = 0, nh = 0, ut = 0, uh = 0;
    toff[0] = hoff[0] = 0;
    for (size_t x = 0; x < g.n_groups; x++) {
        uint64_t b = g.offsets[x], e = g.offsets[x + 1];
        int held = eval_is_heldout(g.id_hash[x], c->holdout);
        uint32_t *dst = held ? hitems + uh : titems + ut;
        memcpy(dst, g.items + b, sizeof *dst * (e - b));
        if (held) {
            uh += e - b;
            hoff[++nh] = uh;
        } else {
            ut += e - b;
            toff[++nt] = ut;
        }
    }
    c->train_groups = nt;
    c->heldout_groups = nh;
    c->t_load = clock_mono_s() - t0;

    /* PMI on the training part */
    double t1 = clock_mono_s();
    st = (struct stage){j, "pmi", 0.05, 0.15};
    struct cooc_groups in = {nt, toff, titems, g.max_item_key};
    struct cooc_params cp;
    cooc_params_init(&cp);
    cp.min_item_frequency = c->min_item_frequency;
    cp.max_group_size = c->max_group_size;
    cp.threads = j->threads;
    rc = cooc_compute(&in, &cp, on_cooc, &st, &res);
    if (rc != 0)
        goto out;
    c->items = res.n;
    c->t_pmi = clock_mono_s() - t1;

    /* held-out lists over dense indices of the items known to the model */
    dense = malloc(sizeof *dense * ((size_t)g.max_item_key + 1));
    rank = malloc(sizeof *rank * (res.n + 1));
    tmp = malloc(sizeof *tmp * (res.n + 1));
    if (!dense || !rank || !tmp) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t k = 0; k <= g.max_item_key; k++)
        dense[k] = -1;
    for (uint32_t d = 0; d < res.n; d++)
        dense[res.keys[d]] = (int32_t)d;
    size_t nl = 0, used = 0;
    uint64_t next_begin = 0; /* compacting in place: keep the original bounds */
    for (size_t l = 0; l < nh; l++) {
        size_t start = used;
        uint64_t b = next_begin, e = hoff[l + 1];
        next_begin = e;
        for (uint64_t x = b; x < e; x++)
            if (dense[hitems[x]] >= 0)
                hitems[used++] = (uint32_t)dense[hitems[x]];
        if (used - start >= 2)
            hoff[++nl] = used;
        else
            used = start;
    }
    c->scored_lists = nl;
    struct eval_lists lists = {nl, hoff, hitems};
    /* ties by item id, like the serving endpoints */
    char **ids = calloc(res.n + 1, sizeof *ids);
    if (!ids) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t d = 0; d < res.n; d++) {
        ids[d] = names.id[res.keys[d]];
        tmp[d] = d;
    }
    qsort_r(tmp, res.n, sizeof *tmp, by_name, ids);
    free(ids);
    for (uint32_t r = 0; r < res.n; r++)
        rank[tmp[r]] = r;

    double ts = clock_mono_s();
    double slice = 0.15;
    sr = calloc(1, sizeof *sr);
    if (!sr) {
        rc = -ENOMEM;
        goto out;
    }
    /* co-occurrence and PMI rankers: the served cooc and pmi sources */
    for (int m = M_COOC; m <= M_PMI; m++) {
        if (!c->use[m])
            continue;
        sr->items = (struct serving_items){.n = res.n, .tie = rank, .cooc = &res};
        sr->source = m == M_COOC ? SERVING_SOURCE_COOC : SERVING_SOURCE_PMI;
        sr->metric = SERVING_METRIC_COSINE;
        st = (struct stage){j, method_names[m], slice, slice + 0.1};
        slice += 0.1;
        rc = eval_score(&lists, res.n, c->ks, c->n_ks, serving_neighbours_rank, sr, on_eval, &st,
                        c->m[m]);
        if (rc != 0)
            goto out;
    }
    if (c->use[M_POPULARITY]) {
        order = malloc(sizeof *order * (res.n + 1));
        if (!order || (rc = eval_order_by_count(res.freq, rank, res.n, order)) != 0) {
            rc = rc ? rc : -ENOMEM;
            goto out;
        }
        struct eval_order_ranker orr = {order, res.n};
        st = (struct stage){j, "popularity", slice, slice + 0.05};
        rc = eval_score(&lists, res.n, c->ks, c->n_ks, eval_rank_order, &orr, on_eval, &st,
                        c->m[M_POPULARITY]);
        if (rc != 0)
            goto out;
    }
    c->t_score = clock_mono_s() - ts;

    if ((c->use[M_EMBEDDING] || c->use[M_EMBEDDING_DOT]) && res.n > 0) {
        st = (struct stage){j, "train", 0.5, 0.9};
        rc = pipeline_run(j, &res, &c->rp, &c->wp, on_wals, &st, &po);
        if (rc != 0)
            goto out;
        c->iterations = po.model.iterations;
        c->final_loss = po.model.iterations ? po.model.loss[po.model.iterations - 1] : 0;
        c->t_train = po.rating_seconds + po.wals_seconds;
        emb = po.emb;
        if (c->use[M_EMBEDDING_DOT]) {
            double t4 = clock_mono_s();
            sr->items = (struct serving_items){
                .n = res.n, .tie = rank, .emb = emb, .dim = (uint32_t)c->wp.dimensions};
            sr->source = SERVING_SOURCE_EMBEDDING;
            sr->metric = SERVING_METRIC_DOT;
            st = (struct stage){j, "embedding_dot", 0.9, 0.95};
            rc = eval_score(&lists, res.n, c->ks, c->n_ks, serving_neighbours_rank, sr, on_eval,
                            &st, c->m[M_EMBEDDING_DOT]);
            if (rc != 0)
                goto out;
            c->t_score += clock_mono_s() - t4;
        }
        if (!c->use[M_EMBEDDING])
            goto done;
        int kerr = 0;
        idx = knn_index_create(emb, res.n, (uint32_t)c->wp.dimensions, (size_t)c->wp.dimensions,
                               rank, &kerr);
        if (!idx) {
            rc = kerr ? kerr : -ENOMEM;
            goto out;
        }
        double t3 = clock_mono_s();
        sr->items = (struct serving_items){.n = res.n, .tie = rank, .index = idx};
        sr->source = SERVING_SOURCE_EMBEDDING;
        sr->metric = SERVING_METRIC_COSINE;
        st = (struct stage){j, "embedding", 0.9, 1.0};
        rc = eval_score(&lists, res.n, c->ks, c->n_ks, serving_neighbours_rank, sr, on_eval, &st,
                        c->m[M_EMBEDDING]);
        if (rc != 0)
            goto out;
        c->t_score += clock_mono_s() - t3;
    }
done:
    for (int m = 0; m < N_METHODS; m++)
        if (c->use[m] && c->m[m][0].queries)
            c->queries = c->m[m][0].queries;
out:
    if (rc != 0 && rc != -ECANCELED && !err->message[0])
        snprintf(err->message, sizeof err->message, "evaluation failed: %s", strerror(-rc));
    knn_index_destroy(idx);
    pipeline_out_deinit(&po);
    cooc_result_free(&res);
    store_groups_free(&g);
    store_item_names_free(&names);
    free(toff);
    free(hoff);
    free(titems);
    free(hitems);
    free(rank);
    free(order);
    free(tmp);
    free(dense);
    free(val);
    free(sr);
    return rc;
}

static json_t *eval_finish(struct job *j, struct job_error *err)
{
    struct eval_ctx *c = j->ctx;
    json_t *methods = json_object();
    for (int m = 0; m < N_METHODS; m++) {
        if (!c->use[m])
            continue;
        json_t *o = json_object();
        for (int i = 0; i < c->n_ks; i++) {
            char key[32];
            snprintf(key, sizeof key, "hit@%u", c->ks[i]);
            json_object_set_new(o, key, json_real(c->m[m][i].hit));
            snprintf(key, sizeof key, "recall@%u", c->ks[i]);
            json_object_set_new(o, key, json_real(c->m[m][i].recall));
            snprintf(key, sizeof key, "coverage@%u", c->ks[i]);
            json_object_set_new(o, key, json_real(c->m[m][i].coverage));
        }
        json_object_set_new(methods, method_names[m], o);
    }
    json_t *ks = json_array();
    for (int i = 0; i < c->n_ks; i++)
        json_array_append_new(ks, json_integer(c->ks[i]));
    return json_pack("{s:f,s:{s:I,s:I,s:I},s:I,s:I,s:o,s:o,s:{s:i,s:f},s:{s:f,s:f,s:f,s:f}}",
                     "holdout_fraction", c->holdout, "playlists", "train",
                     (json_int_t)c->train_groups, "heldout", (json_int_t)c->heldout_groups,
                     "scored", (json_int_t)c->scored_lists, "queries", (json_int_t)c->queries,
                     "items", (json_int_t)c->items, "k", ks, "methods", methods, "train",
                     "iterations", c->iterations, "final_loss", c->final_loss, "timings",
                     "load_seconds", c->t_load, "pmi_seconds", c->t_pmi, "train_seconds",
                     c->t_train, "score_seconds", c->t_score);
}

const struct job_type job_type_evaluate = {
    .name = "evaluate",
    .validate = eval_validate,
    .start = eval_start,
    .run = eval_run,
    .finish = eval_finish,
    .free_ctx = free,
};
