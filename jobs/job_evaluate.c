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
 *
 * Every method is also scored on playlist continuation (ml/eval.h's
 * eval_continue: half of each held-out playlist in, the rest to find),
 * ranked like POST /v1/recommend ("continuation" in the result;
 * embedding_dot has no recommend and is left out there).
 *
 * With "sweep" (jobs/sweep.h) the matrix sources are evaluated for every
 * candidate source and params, on both tasks; the result lists them all
 * and names the "best" (highest recall at the first k; the earliest
 * candidate on a tie) and the "best_continuation", which source=auto
 * serves (docs/quality.md, "The sweep").
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
#include "jobs/sweep.h"
#include "ml/cooc.h"
#include "ml/eval.h"
#include "ml/knn.h"
#include "ml/rating.h"
#include "ml/scores.h"
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
    struct spectral_params sp; /* "method": "eigen" */
    int eigen;
    struct score_params cand[SWEEP_MAX_CANDIDATES];
    size_t n_cand;
    /* results, filled by the worker */
    struct eval_metrics m[N_METHODS][EVAL_MAX_KS];
    struct eval_metrics cont[N_METHODS][EVAL_MAX_KS]; /* continuation */
    struct eval_metrics cand_m[SWEEP_MAX_CANDIDATES][EVAL_MAX_KS];
    struct eval_metrics cand_cont[SWEEP_MAX_CANDIDATES][EVAL_MAX_KS];
    size_t cand_done;
    size_t train_groups, heldout_groups, scored_lists;
    uint32_t items;
    uint64_t queries;
    int iterations;
    double final_loss;
    double t_load, t_pmi, t_train, t_score, t_sweep;
};

static json_t *eval_validate(struct app *app, json_t *params, struct job_error *err)
{
    const struct job_param_table tables[] = {
        {eval_params, sizeof eval_params / sizeof eval_params[0]},
        job_pmi_param_table,
        job_model_param_table,
    };
    /* "sweep" has its own shape (jobs/sweep.h): validated apart */
    json_t *rest = json_is_object(params) ? json_deep_copy(params) : json_incref(params);
    json_t *sweep = NULL;
    if (json_is_object(rest)) {
        sweep = sweep_validate(json_object_get(rest, "sweep"), err);
        if (!sweep) {
            json_decref(rest);
            return NULL;
        }
        json_object_del(rest, "sweep");
    }
    json_t *out = job_params_validate_tables(rest, tables, 3, err);
    json_decref(rest);
    if (out)
        json_object_set_new(out, "sweep", sweep ? sweep : json_false());
    else
        json_decref(sweep);
    return out;
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
    c->eigen = job_model_params_apply(p, j->threads, &c->wp, &c->rp, &c->sp);
    c->n_cand = sweep_candidates(json_object_get(p, "sweep"), c->cand, SWEEP_MAX_CANDIDATES);
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

/* Scores one ranker on both tasks: similar items (eval_score) and
 * playlist continuation (eval_continue; skipped when rec is NULL). */
static int score_both(struct eval_ctx *c, const struct eval_lists *lists, uint32_t n,
                      eval_rank_fn rank, eval_recommend_fn rec, void *ud, struct stage *st,
                      struct eval_metrics *sim, struct eval_metrics *cont)
{
    double from = st->from, to = st->to, mid = from + (to - from) * 0.8;
    st->to = mid;
    int rc = eval_score(lists, n, c->ks, c->n_ks, rank, ud, on_eval, st, sim);
    st->from = mid;
    st->to = to;
    if (rc == 0 && rec)
        rc = eval_continue(lists, n, c->ks, c->n_ks, c->seed, rec, ud, on_eval, st, cont);
    return rc;
}

/* The sweep: every candidate source and params on both tasks, ranked by
 * serving/neighbours.c exactly as served (the precomputed tables only
 * save time: ml/scores.h gives the same scores without them; the walk's
 * sums are reused across the grid's β for one α). */
static int sweep_run(struct eval_ctx *c, struct job *j, const struct cooc_result *res,
                     const uint32_t *rank, const struct eval_lists *lists,
                     struct serving_ranker *sr)
{
    struct score_walk walk = {0};
    struct score_prep prep = {0};
    int rc = 0;
    for (size_t i = 0; i < c->n_cand && rc == 0; i++)
        if (c->cand[i].source == SCORE_RP3 && !walk.item_ptr)
            rc = score_walk_init(&walk, res);
    for (size_t i = 0; i < c->n_cand && rc == 0; i++) {
        const struct score_params *p = &c->cand[i];
        if ((rc = score_prep_update(&prep, res, &walk, p)) != 0)
            break;
        sr->items = (struct serving_items){
            .n = res->n, .tie = rank, .cooc = res, .walk = walk.item_ptr ? &walk : NULL};
        sr->query = (struct serving_query){
            .source = p->source == SCORE_COOC  ? SERVING_SOURCE_COOC
                      : p->source == SCORE_PMI ? SERVING_SOURCE_PMI
                                               : SERVING_SOURCE_RP3,
            .pop_weight = p->pop_weight,
            .alpha = p->alpha,
            .beta = p->beta,
            .prep = &prep,
        };
        double w = 0.2 / (double)c->n_cand;
        struct stage st = {j, "sweep", 0.3 + w * (double)i, 0.3 + w * (double)(i + 1)};
        rc = score_both(c, lists, res->n, serving_neighbours_rank, serving_neighbours_recommend, sr,
                        &st, c->cand_m[i], c->cand_cont[i]);
        if (rc == 0)
            c->cand_done = i + 1;
    }
    score_prep_deinit(&prep);
    score_walk_deinit(&walk);
    return rc;
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
        sr->query = (struct serving_query){
            .source = m == M_COOC ? SERVING_SOURCE_COOC : SERVING_SOURCE_PMI};
        st = (struct stage){j, method_names[m], slice, slice + 0.05};
        slice += 0.05;
        rc = score_both(c, &lists, res.n, serving_neighbours_rank, serving_neighbours_recommend,
                        sr, &st, c->m[m], c->cont[m]);
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
        rc = score_both(c, &lists, res.n, eval_rank_order, eval_recommend_order, &orr, &st,
                        c->m[M_POPULARITY], c->cont[M_POPULARITY]);
        if (rc != 0)
            goto out;
    }
    c->t_score = clock_mono_s() - ts;
    if (c->n_cand) {
        double tw = clock_mono_s();
        rc = sweep_run(c, j, &res, rank, &lists, sr);
        if (rc != 0)
            goto out;
        c->t_sweep = clock_mono_s() - tw;
    }

    if ((c->use[M_EMBEDDING] || c->use[M_EMBEDDING_DOT]) && res.n > 0) {
        st = (struct stage){j, "train", 0.5, 0.9};
        rc = c->eigen ? pipeline_run_eigen(j, &res, &c->rp, &c->sp, on_wals, &st, &po)
                     : pipeline_run(j, &res, &c->rp, &c->wp, on_wals, &st, &po);
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
            sr->query = (struct serving_query){.source = SERVING_SOURCE_EMBEDDING,
                                               .metric = SERVING_METRIC_DOT};
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
        sr->query = (struct serving_query){.source = SERVING_SOURCE_EMBEDDING,
                                           .metric = SERVING_METRIC_COSINE};
        st = (struct stage){j, "embedding", 0.95, 1.0};
        rc = score_both(c, &lists, res.n, serving_neighbours_rank, serving_neighbours_recommend,
                        sr, &st, c->m[M_EMBEDDING], c->cont[M_EMBEDDING]);
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
    cooc_result_deinit(&res);
    store_groups_deinit(&g);
    store_item_names_deinit(&names);
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

/* {"hit@k", "recall@k", "coverage@k"} for every k into o. */
static void metrics_json(json_t *o, const struct eval_ctx *c, const struct eval_metrics *m)
{
    for (int i = 0; i < c->n_ks; i++) {
        char key[32];
        snprintf(key, sizeof key, "hit@%u", c->ks[i]);
        json_object_set_new(o, key, json_real(m[i].hit));
        snprintf(key, sizeof key, "recall@%u", c->ks[i]);
        json_object_set_new(o, key, json_real(m[i].recall));
        snprintf(key, sizeof key, "coverage@%u", c->ks[i]);
        json_object_set_new(o, key, json_real(m[i].coverage));
    }
}

/* {"source", "params", "k", metrics...} of candidate i under metrics m. */
static json_t *choice_json(const struct eval_ctx *c, size_t i, const struct eval_metrics *m)
{
    json_t *o = json_pack("{s:s,s:o,s:I}", "source", sweep_source_name(c->cand[i].source),
                          "params", sweep_params_json(&c->cand[i]), "k", (json_int_t)c->ks[0]);
    metrics_json(o, c, m);
    return o;
}

/* The candidate with the highest recall at the first k; the earliest on a
 * tie. */
static size_t best_of(const struct eval_ctx *c, const struct eval_metrics (*m)[EVAL_MAX_KS])
{
    size_t best = 0;
    for (size_t i = 1; i < c->cand_done; i++)
        if (m[i][0].recall > m[best][0].recall)
            best = i;
    return best;
}

/* The sweep's part of the result: "candidates", "best", "best_continuation". */
static void sweep_json(json_t *out, const struct eval_ctx *c)
{
    json_t *cands = json_array();
    for (size_t i = 0; i < c->cand_done; i++) {
        json_t *o = choice_json(c, i, c->cand_m[i]);
        json_object_del(o, "k");
        json_t *cont = json_object();
        metrics_json(cont, c, c->cand_cont[i]);
        json_object_set_new(o, "continuation", cont);
        json_array_append_new(cands, o);
    }
    json_object_set_new(out, "candidates", cands);
    size_t b = best_of(c, c->cand_m), bc = best_of(c, c->cand_cont);
    json_object_set_new(out, "best", choice_json(c, b, c->cand_m[b]));
    json_object_set_new(out, "best_continuation", choice_json(c, bc, c->cand_cont[bc]));
}

static json_t *eval_finish(struct job *j, struct job_error *err)
{
    struct eval_ctx *c = j->ctx;
    json_t *methods = json_object(), *cont = json_object();
    for (int m = 0; m < N_METHODS; m++) {
        if (!c->use[m])
            continue;
        json_t *o = json_object();
        metrics_json(o, c, c->m[m]);
        json_object_set_new(methods, method_names[m], o);
        if (m == M_EMBEDDING_DOT)
            continue; /* no recommend by inner product */
        o = json_object();
        metrics_json(o, c, c->cont[m]);
        json_object_set_new(cont, method_names[m], o);
    }
    json_t *ks = json_array();
    for (int i = 0; i < c->n_ks; i++)
        json_array_append_new(ks, json_integer(c->ks[i]));
    json_t *out = json_pack(
        "{s:f,s:{s:I,s:I,s:I},s:I,s:I,s:o,s:o,s:o,s:{s:i,s:f},s:{s:f,s:f,s:f,s:f,s:f}}",
        "holdout_fraction", c->holdout, "playlists", "train", (json_int_t)c->train_groups,
        "heldout", (json_int_t)c->heldout_groups, "scored", (json_int_t)c->scored_lists, "queries",
        (json_int_t)c->queries, "items", (json_int_t)c->items, "k", ks, "methods", methods,
        "continuation", cont, "train", "iterations", c->iterations, "final_loss", c->final_loss,
        "timings", "load_seconds", c->t_load, "pmi_seconds", c->t_pmi, "train_seconds",
        c->t_train, "score_seconds", c->t_score, "sweep_seconds", c->t_sweep);
    if (out && c->cand_done)
        sweep_json(out, c);
    return out;
}

const struct job_type job_type_evaluate = {
    .name = "evaluate",
    .validate = eval_validate,
    .start = eval_start,
    .run = eval_run,
    .finish = eval_finish,
    .free_ctx = free,
};
