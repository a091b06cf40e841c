/*
 * The training step that the train and evaluate jobs share: a PMI result
 * → the rating matrix (ml/rating.h, the seed's score = cooc·pmi by default)
 * → implicit WALS (ml/wals.h, sp_TrainItemMatchingModel) → one embedding
 * per item, e_i = x_i + y_i (sp_ExractEmbeddings). Both jobs call this one
 * function, so an evaluation measures exactly what a train job would serve.
 *
 * Runs on the job's worker thread. No I/O, no jansson, no SQLite: the
 * caller loads the PMI result and keeps what it needs of the output.
 * Progress and cancellation go through the caller's WALS callback, plus one
 * job_cancelled() checkpoint between the ratings and WALS.
 */
#ifndef ITEMVEC_JOBS_PIPELINE_H
#define ITEMVEC_JOBS_PIPELINE_H

#include "ml/cooc.h"
#include "ml/rating.h"
#include "ml/spectral.h"
#include "ml/wals.h"

struct job;

/* What pipeline_run produced. Embedded in the caller's frame: zero it
 * before the call and release it with pipeline_out_deinit. */
struct pipeline_out {
    /* Factors and the loss of every iteration (owned). */
    struct wals_model model;
    /* model.n_rows × dimensions floats, row-major (owned; a caller may take
     * it and set the field to NULL). */
    float *emb;
    /* clock_mono_s() when WALS started: the progress callback may read it
     * (same thread) for an ETA. */
    double wals_started;
    /* Wall time of each stage. */
    double rating_seconds, wals_seconds, embed_seconds;
};

/* Trains embeddings on res with the ratings rp and the WALS parameters wp.
 *
 * j (borrowed) is only polled with job_cancelled() between the ratings and
 * WALS; NULL skips that checkpoint (unit tests). res is borrowed, but
 * res->cooc is freed and set to NULL once the ratings are built: WALS does
 * not need the counts and they take as much memory as the ratings, so a
 * caller must be done with them (the evaluate job ranks by counts before).
 * res must be square (a PMI result is). cb/userdata (cb may be NULL) get
 * WALS's progress reports, on this thread; a non-zero return cancels.
 *
 * Returns 0 with *out filled, or -ECANCELED, -ENOMEM, or an error of
 * rating_values() / wals_train() (-EINVAL, -EDOM, -EAGAIN); on error *out
 * holds nothing to use but must still be released with
 * pipeline_out_deinit. Deterministic: same inputs and wp->seed give
 * bit-identical embeddings for any wp->threads.
 */
int pipeline_run(struct job *j, struct cooc_result *res, const struct rating_params *rp,
                 const struct wals_params *wp, wals_progress_cb cb, void *userdata,
                 struct pipeline_out *out);

/* The same with "method": "eigen": the ratings' spectral embeddings
 * (ml/spectral.h, sp) instead of WALS. out->model then holds no factors
 * and no loss (iterations 0); out->emb is n × sp->dimensions; the WALS
 * time fields count the eigen solve. cb gets one WALS_EVENT_TICK report
 * per product (fraction in 0..1) and may cancel. Errors as pipeline_run,
 * or spectral_embed's. */
int pipeline_run_eigen(struct job *j, struct cooc_result *res, const struct rating_params *rp,
                       const struct spectral_params *sp, wals_progress_cb cb, void *userdata,
                       struct pipeline_out *out);

/* Frees what out owns and zeroes it. A zeroed out is a no-op. */
void pipeline_out_deinit(struct pipeline_out *out);

#endif
