/*
 * Job type "train": BigQuery ML's implicit matrix factorisation (WALS) on
 * the seed's rating score = cooc·pmi of a PMI job's matrix
 * (sp_TrainItemMatchingModel), then one embedding per item = x_i + y_i
 * (sp_ExractEmbeddings). The worker loads the .cooc file, runs the shared
 * ratings → WALS → embeddings step (jobs/pipeline.c, as the evaluate job
 * does) reporting loss per iteration, and writes the embeddings file <state>/models/<model>.emb; the model row is inserted in
 * the same transaction that marks the job succeeded, and the model is
 * activated for serving afterwards unless "activate": false.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "conf/app.h"
#include "jobs/job_memory.h"
#include "jobs/job_params.h"
#include "jobs/jobs.h"
#include "jobs/pipeline.h"
#include "base/log.h"
#include "serving/serving.h"
#include "ml/cooc.h"
#include "ml/rating.h"
#include "ml/wals.h"
#include "storage/cooc_file.h"
#include "storage/jobs.h"
#include "storage/model_file.h"
#include "storage/models.h"
#include "storage/store.h"

static const struct job_param_def train_own_params[] = {
    {"pmi_job", JOB_PARAM_STRING, 0, 0, "null", NULL},
    {"activate", JOB_PARAM_BOOL, 0, 0, "true", NULL},
};

struct train_ctx {
    struct wals_params wp;
    struct rating_params rp;
    struct spectral_params sp; /* "method": "eigen" */
    int eigen;
    char pmi_job[32];
    char model_id[40];
    int activate;
    /* filled by the worker */
    double *loss; /* [max_iterations], guarded by the job's mutex */
    int n_loss;
    int early_stopped;
    uint32_t n;
    uint64_t nnz;
    uint32_t crc;
    double t_load, t_train, t_write;
    json_t *params_json; /* borrowed from the job */
    struct serving_build_opts sopts; /* serving settings copied at start (config may reload) */
    int64_t precompute_max;
    struct served_model *built; /* activation: built by the worker, installed on commit */
    double t_activate;
    int64_t seq;
    char job_id[32];
};

/* Refuses (422) a job whose estimated peak memory is over the budget
 * (jobs/job_memory.h). The PMI matrix's size comes from its file's 128-byte
 * header; when the file cannot be read the job is let through and its run
 * reports the error. Loop thread (reads the config and the item count). */
static int train_memory_check(struct app *app, json_t *p, struct job_error *err)
{
    char dir[1100], name[64], est_s[32], budget_s[32];
    struct cooc_result m;
    uint64_t matrix_bytes;
    struct store_counts sc = {0};
    snprintf(dir, sizeof dir, "%s/pmi", app->cfg.state_dir);
    snprintf(name, sizeof name, "%s.cooc", job_param_string(p, "pmi_job"));
    if (cooc_file_stat(dir, name, &m, &matrix_bytes) != 0)
        return 0;
    store_counts_get(app->store, &sc);
    struct job_memory_train t = {
        .items = m.n,
        .nnz = m.nnz,
        .matrix_bytes = matrix_bytes,
        .dimensions = (uint32_t)job_param_int(p, "dimensions"),
        .threads = (uint32_t)app->cfg.jobs_threads,
        .activate = job_param_bool(p, "activate"),
        .precompute = (int64_t)m.n <= app->cfg.serving_precompute_max_items,
        .topk = (uint32_t)app->cfg.serving_topk,
        .catalog_items = sc.items > 0 ? (uint64_t)sc.items : 0,
    };
    uint64_t est = job_memory_train(&t), budget = job_memory_budget(&app->cfg);
    if (est <= budget)
        return 0;
    err->status = 422;
    err->memory_estimate = est;
    err->memory_budget = budget;
    snprintf(err->pointer, sizeof err->pointer, "/params/dimensions");
    snprintf(err->message, sizeof err->message,
             "estimated peak memory %s (%u items x %u dimensions, %llu nonzeros) is over "
             "jobs.memory_budget %s: lower dimensions, or train on a pmi job with fewer items",
             job_memory_format(est, est_s, sizeof est_s), m.n, t.dimensions,
             (unsigned long long)m.nnz, job_memory_format(budget, budget_s, sizeof budget_s));
    return -E2BIG;
}

static json_t *train_validate(struct app *app, json_t *params, struct job_error *err)
{
    const struct job_param_table tables[] = {
        job_model_param_table, {train_own_params, sizeof train_own_params / sizeof train_own_params[0]}};
    json_t *p = job_params_validate_tables(params, tables, 2, err);
    if (!p)
        return NULL;
    const char *pmi = job_param_string(p, "pmi_job");
    if (!pmi) {
        char id[32];
        if (jobs_latest_succeeded(app->jobs, "pmi", id, sizeof id) != 0) {
            json_decref(p);
            err->status = 409;
            snprintf(err->pointer, sizeof err->pointer, "/params/pmi_job");
            snprintf(err->message, sizeof err->message,
                     "no succeeded pmi job to train on: run {\"type\":\"pmi\"} first");
            return NULL;
        }
        json_object_set_new(p, "pmi_job", json_string(id));
    } else {
        int ok = jobs_is_succeeded(app->jobs, pmi, "pmi");
        if (!ok) {
            json_decref(p);
            err->status = 422;
            snprintf(err->pointer, sizeof err->pointer, "/params/pmi_job");
            snprintf(err->message, sizeof err->message, "no succeeded pmi job \"%.40s\"", pmi);
            return NULL;
        }
    }
    if (train_memory_check(app, p, err) != 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static void ctx_destroy(void *p)
{
    struct train_ctx *c = p;
    served_model_unref(c->built);
    free(c->loss);
    free(c);
}

/* The activation's own progress (index build or precompute) inside the
 * job's last 3 %: stage "activate:<step>". */
static void on_activate_progress(void *ud, const char *stage, double fraction)
{
    char st[48];
    snprintf(st, sizeof st, "activate:%s", stage);
    job_progress_set(ud, 0.97 + 0.03 * fraction, st, 0, NULL, NULL, -1);
}

static int train_start(struct job *j, struct job_error *err)
{
    struct train_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    json_t *p = j->params;
    c->eigen = job_model_params_apply(p, j->threads, &c->wp, &c->rp, &c->sp);
    snprintf(c->pmi_job, sizeof c->pmi_job, "%s", job_param_string(p, "pmi_job"));
    c->activate = job_param_bool(p, "activate");
    snprintf(c->model_id, sizeof c->model_id, "m%lld", (long long)j->seq);
    snprintf(c->job_id, sizeof c->job_id, "%s", j->id);
    c->seq = j->seq;
    c->params_json = p;
    serving_build_opts_init(j->app, &c->sopts);
    c->sopts.threads = c->wp.threads;
    c->precompute_max = j->app->cfg.serving_precompute_max_items;
    c->loss = calloc((size_t)c->wp.max_iterations, sizeof *c->loss);
    if (!c->loss) {
        free(c);
        return -ENOMEM;
    }
    j->ctx = c;
    return 0;
}

struct train_progress {
    struct job *job;
    struct train_ctx *c;
    const struct pipeline_out *po;
};

static int on_progress(void *ud, const struct wals_progress *p)
{
    struct train_progress *tp = ud;
    struct train_ctx *c = tp->c;
    if (p->event == WALS_EVENT_ITERATION && p->iteration < c->wp.max_iterations) {
        uv_mutex_lock(&tp->job->mu);
        c->loss[p->iteration] = p->loss;
        c->n_loss = p->iteration + 1;
        uv_mutex_unlock(&tp->job->mu);
    }
    double el = clock_mono_s() - tp->po->wals_started;
    double frac = p->fraction;
    double eta = frac > 0.01 ? el * (1 - frac) / frac : -1;
    static const char *const keys[] = {"iteration", "half_step", "loss", "items", "nnz"};
    double vals[] = {p->iteration + 1, p->half_step, isnan(p->loss) ? -1 : p->loss, c->n,
                     (double)c->nnz};
    job_progress_set(tp->job, 0.05 + 0.9 * frac, "train", isnan(p->loss) ? 2 : 5, keys, vals,
                     eta);
    return job_cancelled(tp->job);
}

static int train_run(struct job *j, struct job_error *err)
{
    struct train_ctx *c = j->ctx;
    struct cooc_result res = {0};
    struct pipeline_out po = {0};
    char dir[1100], name[64];
    int rc;
    double t0 = clock_mono_s();
    job_progress_set(j, 0.0, "load", 0, NULL, NULL, -1);
    snprintf(dir, sizeof dir, "%s/pmi", j->state_dir);
    snprintf(name, sizeof name, "%s.cooc", c->pmi_job);
    rc = cooc_file_read(dir, name, &res);
    if (rc != 0) {
        snprintf(err->message, sizeof err->message, "cannot read the result of pmi job %s: %s",
                 c->pmi_job, strerror(-rc));
        goto out;
    }
    c->n = res.n;
    c->nnz = res.nnz;
    struct train_progress tp = {j, c, &po};
    rc = c->eigen ? pipeline_run_eigen(j, &res, &c->rp, &c->sp, on_progress, &tp, &po)
                 : pipeline_run(j, &res, &c->rp, &c->wp, on_progress, &tp, &po);
    if (rc != 0) {
        if (rc != -ECANCELED)
            snprintf(err->message, sizeof err->message, "training failed: %s", strerror(-rc));
        goto out;
    }
    double t2 = clock_mono_s();
    /* load_seconds includes the ratings; write_seconds the embeddings */
    c->t_load = po.wals_started - t0;
    c->t_train = po.wals_seconds;
    uv_mutex_lock(&j->mu);
    for (int k = 0; k < po.model.iterations && k < c->wp.max_iterations; k++)
        c->loss[k] = po.model.loss[k];
    c->n_loss = po.model.iterations;
    uv_mutex_unlock(&j->mu);
    c->early_stopped = po.model.early_stopped;
    job_progress_set(j, 0.95, "write", 0, NULL, NULL, -1);
    snprintf(dir, sizeof dir, "%s/models", j->state_dir);
    mkdir(dir, 0750);
    snprintf(name, sizeof name, "%s.emb", c->model_id);
    struct model_data md = {res.n, (uint32_t)c->wp.dimensions, res.keys, po.emb, 0};
    rc = model_file_write(dir, name, &md);
    if (rc != 0) {
        snprintf(err->message, sizeof err->message, "cannot write the model file: %s",
                 strerror(-rc));
        goto out;
    }
    c->crc = md.crc;
    c->t_write = po.embed_seconds + (clock_mono_s() - t2);
    if (c->activate) {
        /* build what serving needs (names, normalised index, top-K lists)
         * here, off the loop; the swap happens once the model is stored */
        double t3 = clock_mono_s();
        job_progress_set(j, 0.97, "activate", 0, NULL, NULL, -1);
        struct store_error serr;
        struct store *s = store_open(j->state_dir, &serr);
        if (!s) {
            rc = -EIO;
            snprintf(err->message, sizeof err->message, "cannot open storage: %.200s",
                     serr.message);
            goto out;
        }
        struct model_data owned = {md.n, md.dimensions, res.keys, po.emb, md.crc};
        res.keys = NULL; /* now owned by the served model */
        po.emb = NULL;
        struct serving_build_opts o = c->sopts;
        o.precompute = (int64_t)owned.n <= c->precompute_max;
        o.models_dir = dir; /* the ANN index, if any, is saved beside the model file */
        o.file = name;
        o.progress = on_activate_progress;
        o.progress_ud = j;
        rc = serving_model_build(s, c->model_id, c->pmi_job, &owned, &o, &c->built);
        store_close(s);
        if (rc != 0) {
            snprintf(err->message, sizeof err->message, "cannot prepare the model for serving: %s",
                     strerror(-rc));
            goto out;
        }
        c->t_activate = clock_mono_s() - t3;
    }
out:
    pipeline_out_deinit(&po);
    cooc_result_deinit(&res);
    return rc;
}

static json_t *loss_json(struct train_ctx *c)
{
    json_t *a = json_array();
    for (int k = 0; k < c->n_loss; k++)
        json_array_append_new(a, json_real(c->loss[k]));
    return a;
}

static json_t *train_finish(struct job *j, struct job_error *err)
{
    struct train_ctx *c = j->ctx;
    int it = c->n_loss;
    double per_iter = it ? c->t_train / it : 0;
    return json_pack("{s:s,s:s,s:I,s:i,s:i,s:o,s:f,s:b,s:I,s:f,s:{s:f,s:f,s:f,s:f,s:f}}", "model",
                     c->model_id, "pmi_job", c->pmi_job, "items", (json_int_t)c->n,
                     "dimensions", c->wp.dimensions, "iterations", it, "loss", loss_json(c),
                     "final_loss", it ? c->loss[it - 1] : 0.0, "early_stopped",
                     c->early_stopped, "nnz", (json_int_t)c->nnz, "us_per_nnz_iteration",
                     c->nnz ? per_iter * 1e6 / (double)c->nnz : 0.0, "timings", "load_seconds",
                     c->t_load, "train_seconds", c->t_train, "write_seconds", c->t_write,
                     "seconds_per_iteration", per_iter, "activate_seconds", c->t_activate);
}

/* Writer thread: the model row, in the job's success transaction. */
static int train_commit(struct job *j, struct store *s)
{
    struct train_ctx *c = j->ctx;
    char *params = json_dumps(j->params, JSON_COMPACT);
    json_t *lj = loss_json(c);
    char *loss = json_dumps(lj, JSON_COMPACT);
    json_decref(lj);
    char file[64];
    snprintf(file, sizeof file, "%s.emb", c->model_id);
    struct store_model m = {.seq = c->seq,
                            .id = c->model_id,
                            .job = c->job_id,
                            .pmi_job = c->pmi_job,
                            .created_ms = jobs_now_ms(),
                            .dimensions = c->wp.dimensions,
                            .items = c->n,
                            .params = params,
                            .loss = loss,
                            .file = file,
                            .crc = c->crc};
    int rc = params && loss ? store_model_insert(s, &m, c->activate) : -ENOMEM;
    free(params);
    free(loss);
    return rc;
}

static void train_committed(struct job *j)
{
    struct train_ctx *c = j->ctx;
    log_info("job %s: model %s stored (%u items x %d dims)%s", j->id, c->model_id, c->n,
             c->wp.dimensions, c->activate ? ", activating" : "");
    if (c->built) {
        serving_install_active(j->app, c->built);
        c->built = NULL;
    }
}

static void train_progress_json(struct job *j, json_t *progress)
{
    struct train_ctx *c = j->ctx;
    if (!c)
        return;
    uv_mutex_lock(&j->mu);
    json_object_set_new(progress, "loss_per_iteration", loss_json(c));
    uv_mutex_unlock(&j->mu);
}

const struct job_type job_type_train = {
    .name = "train",
    .validate = train_validate,
    .start = train_start,
    .run = train_run,
    .finish = train_finish,
    .commit = train_commit,
    .committed = train_committed,
    .free_ctx = ctx_destroy,
    .progress_json = train_progress_json,
};
