/*
 * Ratings → WALS → embeddings for the train and evaluate jobs (see
 * pipeline.h). Worker thread; owns only the ratings buffer it allocates
 * and what it hands back in struct pipeline_out.
 */
#include "jobs/pipeline.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "jobs/jobs.h"

int pipeline_run(struct job *j, struct cooc_result *res, const struct rating_params *rp,
                 const struct wals_params *wp, wals_progress_cb cb, void *userdata,
                 struct pipeline_out *out)
{
    float *val = NULL;
    int rc;
    double t0 = clock_mono_s();

    val = malloc(sizeof *val * (res->nnz ? res->nnz : 1));
    if (!val) {
        rc = -ENOMEM;
        goto out;
    }
    rc = rating_values(res, rp, val);
    if (rc != 0)
        goto out;
    free(res->cooc); /* the ratings replace the counts */
    res->cooc = NULL;
    out->wals_started = clock_mono_s();
    out->rating_seconds = out->wals_started - t0;
    if (j && job_cancelled(j)) {
        rc = -ECANCELED;
        goto out;
    }
    struct wals_csr csr = {res->n, res->n, res->row_ptr, res->col, val};
    rc = wals_train(&csr, NULL, wp, NULL, NULL, cb, userdata, &out->model);
    if (rc != 0)
        goto out;
    double t1 = clock_mono_s();
    out->wals_seconds = t1 - out->wals_started;
    out->emb = malloc(sizeof *out->emb * ((size_t)res->n * (size_t)wp->dimensions + 1));
    if (!out->emb) {
        rc = -ENOMEM;
        goto out;
    }
    rc = wals_model_embeddings(&out->model, out->emb);
    out->embed_seconds = clock_mono_s() - t1;
out:
    free(val);
    return rc;
}

struct eigen_progress {
    wals_progress_cb cb;
    void *userdata;
};

static int on_eigen(void *ud, double fraction)
{
    struct eigen_progress *e = ud;
    struct wals_progress p = {.event = WALS_EVENT_TICK, .fraction = fraction, .loss = NAN};
    return e->cb ? e->cb(e->userdata, &p) : 0;
}

int pipeline_run_eigen(struct job *j, struct cooc_result *res, const struct rating_params *rp,
                       const struct spectral_params *sp, wals_progress_cb cb, void *userdata,
                       struct pipeline_out *out)
{
    float *val = NULL;
    int rc;
    double t0 = clock_mono_s();
    val = malloc(sizeof *val * (res->nnz ? res->nnz : 1));
    out->emb = malloc(sizeof *out->emb * ((size_t)res->n * (size_t)sp->dimensions + 1));
    if (!val || !out->emb) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = rating_values(res, rp, val)) != 0)
        goto out;
    free(res->cooc); /* as pipeline_run: the ratings replace the counts */
    res->cooc = NULL;
    out->wals_started = clock_mono_s();
    out->rating_seconds = out->wals_started - t0;
    if (j && job_cancelled(j)) {
        rc = -ECANCELED;
        goto out;
    }
    struct wals_csr csr = {res->n, res->n, res->row_ptr, res->col, val};
    struct eigen_progress ep = {cb, userdata};
    rc = spectral_embed(&csr, sp, on_eigen, &ep, out->emb, NULL);
    out->model.n_rows = out->model.n_cols = res->n;
    out->model.dimensions = sp->dimensions;
    out->wals_seconds = clock_mono_s() - out->wals_started;
out:
    free(val);
    return rc;
}

void pipeline_out_deinit(struct pipeline_out *out)
{
    wals_model_deinit(&out->model);
    free(out->emb);
    memset(out, 0, sizeof *out);
}
