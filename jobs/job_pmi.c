/*
 * Job type "pmi": the seed's sp_ComputePMI over a consistent snapshot of
 * the stored memberships. The worker opens its own store handle, reads the
 * groups in one read transaction (uploads may go on meanwhile), runs the
 * co-occurrence kernel (ml/cooc.c) and persists the matrix as a
 * checksummed file <state>/pmi/<job>.cooc that training and the PMI
 * endpoints load. The result object carries the seed's counts and timings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "conf/app.h"
#include "jobs/job_params.h"
#include "jobs/jobs.h"
#include "ml/cooc.h"
#include "storage/cooc_file.h"
#include "storage/store.h"

struct pmi_ctx {
    int64_t min_item_frequency, max_group_size;
    /* summary of the result, filled by the worker */
    uint64_t memberships, groups;
    uint32_t n;
    uint64_t total, valid_items, valid_groups, nnz;
    double t_load, t_compute, t_write;
    uint64_t bytes;
};

static json_t *pmi_validate(struct app *app, json_t *params, struct job_error *err)
{
    return job_params_validate_tables(params, &job_pmi_param_table, 1, err);
}

static int pmi_start(struct job *j, struct job_error *err)
{
    struct pmi_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->min_item_frequency = job_param_int(j->params, "min_item_frequency");
    c->max_group_size = job_param_int(j->params, "max_group_size");
    j->ctx = c;
    return 0;
}

struct pmi_progress {
    struct job *job;
    double started;
};

static int on_progress(void *ud, const struct cooc_progress *p)
{
    struct pmi_progress *pp = ud;
    static const char *const keys[] = {"rows_read", "rows_total", "items_done", "items_total",
                                       "pairs_counted"};
    double vals[] = {(double)p->rows_read, (double)p->rows_total, (double)p->items_done,
                     (double)p->items_total, (double)p->pairs};
    /* loading took ~5% of the time, writing ~10%: the kernel is the rest */
    double f = 0.05 + 0.85 * p->fraction;
    double el = clock_mono_s() - pp->started;
    double eta = p->fraction > 0.05 ? el * (1 - p->fraction) / p->fraction : -1;
    job_progress_set(pp->job, f, p->stage, 5, keys, vals, eta);
    return job_cancelled(pp->job);
}

static int pmi_run(struct job *j, struct job_error *err)
{
    struct pmi_ctx *c = j->ctx;
    struct store_error serr;
    struct store_groups g = {0};
    struct cooc_result res = {0};
    int rc;
    double t0 = clock_mono_s();
    job_progress_set(j, 0.0, "load", 0, NULL, NULL, -1);
    struct store *s = store_open(j->state_dir, &serr);
    if (!s) {
        snprintf(err->message, sizeof err->message, "cannot open storage: %.200s", serr.message);
        return -EIO;
    }
    rc = store_groups_load(s, &g);
    store_close(s);
    if (rc != 0) {
        snprintf(err->message, sizeof err->message, "cannot read memberships: %s",
                 strerror(-rc));
        return rc;
    }
    c->memberships = g.n_groups ? g.offsets[g.n_groups] : 0;
    c->groups = g.n_groups;
    double t1 = clock_mono_s();
    c->t_load = t1 - t0;
    if (job_cancelled(j)) {
        rc = -ECANCELED;
        goto out;
    }
    struct cooc_groups in = {g.n_groups, g.offsets, g.items, g.max_item_key};
    struct cooc_params params;
    cooc_params_init(&params);
    params.min_item_frequency = c->min_item_frequency;
    params.max_group_size = c->max_group_size;
    params.threads = j->threads;
    struct pmi_progress pp = {j, t1};
    rc = cooc_compute(&in, &params, on_progress, &pp, &res);
    store_groups_deinit(&g);
    if (rc != 0) {
        if (rc != -ECANCELED)
            snprintf(err->message, sizeof err->message, "co-occurrence failed: %s",
                     strerror(-rc));
        goto out;
    }
    double t2 = clock_mono_s();
    c->t_compute = t2 - t1;
    job_progress_set(j, 0.9, "write", 0, NULL, NULL, -1);
    char dir[1100], name[64];
    snprintf(dir, sizeof dir, "%s/pmi", j->state_dir);
    mkdir(dir, 0750);
    snprintf(name, sizeof name, "%s.cooc", j->id);
    rc = cooc_file_write(dir, name, &res);
    if (rc != 0) {
        snprintf(err->message, sizeof err->message, "cannot write %.120s/%.40s: %.60s", dir, name,
                 strerror(-rc));
        goto out;
    }
    c->t_write = clock_mono_s() - t2;
    c->n = res.n;
    c->total = res.total;
    c->valid_items = res.valid_items;
    c->valid_groups = res.valid_groups;
    c->nnz = res.nnz;
    c->bytes = (uint64_t)res.n * 8 + (res.n + 1) * 8 + res.nnz * 8;
out:
    store_groups_deinit(&g);
    cooc_result_deinit(&res);
    return rc;
}

static json_t *pmi_finish(struct job *j, struct job_error *err)
{
    struct pmi_ctx *c = j->ctx;
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:{s:f,s:f,s:f,s:f},s:s++}",
                     "valid_items", (json_int_t)c->valid_items, "valid_groups",
                     (json_int_t)c->valid_groups, "total", (json_int_t)c->total, "cooc_rows",
                     (json_int_t)c->nnz, "matrix_items", (json_int_t)c->n, "pairs",
                     (json_int_t)((c->nnz - c->n) / 2), "memberships",
                     (json_int_t)c->memberships, "groups", (json_int_t)c->groups, "timings",
                     "load_seconds", c->t_load, "compute_seconds", c->t_compute,
                     "write_seconds", c->t_write, "total_seconds",
                     c->t_load + c->t_compute + c->t_write, "file", "pmi/", j->id, ".cooc");
}

const struct job_type job_type_pmi = {
    .name = "pmi",
    .validate = pmi_validate,
    .start = pmi_start,
    .run = pmi_run,
    .finish = pmi_finish,
    .free_ctx = free,
};
