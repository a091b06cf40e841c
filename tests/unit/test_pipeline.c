/*
 * Unit tests for jobs/pipeline.c, the ratings → WALS → embeddings step the
 * train and evaluate jobs share. The reference is the sequence both jobs
 * ran inline before they shared it (rating_values, wals_train,
 * wals_model_embeddings), written out here: the pipeline must give the
 * same bytes, for the narrow (f ≤ 64) and wide kernels and both solvers.
 * Also: the counts are released once the ratings exist, a cancel from the
 * progress callback, and a rating error. Single-threaded test; the WALS
 * runs use 2 threads.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/pipeline.h"

/* A PMI result over random playlists: 400 groups of 2..12 of 80 items. */
static void make_result(struct cooc_result *res)
{
    enum { GROUPS = 400, ITEMS = 80 };
    uint64_t rng = 12345, off[GROUPS + 1];
    uint32_t items[GROUPS * 12];
    size_t n = 0;
    off[0] = 0;
    for (size_t g = 0; g < GROUPS; g++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = 2 + (rng >> 33) % 11;
        for (size_t k = 0; k < len; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t it = 1 + (uint32_t)((rng >> 33) % ITEMS);
            size_t q = off[g];
            while (q < n && items[q] < it)
                q++;
            if (q < n && items[q] == it)
                continue; /* a set, ascending, as stored */
            memmove(items + q + 1, items + q, sizeof *items * (n - q));
            items[q] = it;
            n++;
        }
        off[g + 1] = n;
    }
    struct cooc_groups in = {GROUPS, off, items, ITEMS};
    struct cooc_params cp;
    cooc_params_init(&cp);
    cp.min_item_frequency = 1;
    cp.max_group_size = 100;
    cp.threads = 1;
    assert_int_equal(cooc_compute(&in, &cp, NULL, NULL, res), 0);
    assert_true(res->n > 10);
}

static void params(struct wals_params *wp, struct rating_params *rp, int dims,
                   enum wals_solver solver)
{
    wals_params_init(wp);
    rating_params_init(rp);
    wp->dimensions = dims;
    wp->max_iterations = 4;
    wp->early_stop = false;
    wp->solver = solver;
    wp->threads = 2;
    wp->seed = 7;
}

/* The sequence as the jobs wrote it before jobs/pipeline.c. */
static float *reference(const struct cooc_result *res, const struct rating_params *rp,
                        const struct wals_params *wp, struct wals_model *model)
{
    float *val = malloc(sizeof *val * (res->nnz + 1));
    float *emb = malloc(sizeof *emb * ((size_t)res->n * (size_t)wp->dimensions + 1));
    assert_non_null(val);
    assert_non_null(emb);
    assert_int_equal(rating_values(res, rp, val), 0);
    struct wals_csr csr = {res->n, res->n, res->row_ptr, res->col, val};
    assert_int_equal(wals_train(&csr, NULL, wp, NULL, NULL, NULL, NULL, model), 0);
    assert_int_equal(wals_model_embeddings(model, emb), 0);
    free(val);
    return emb;
}

static int count_reports(void *ud, const struct wals_progress *p)
{
    (*(int *)ud)++;
    return 0;
}

static void same_as_reference(int dims, enum wals_solver solver, enum rating_scale scale)
{
    struct cooc_result a = {0}, b = {0};
    struct wals_params wp;
    struct rating_params rp;
    struct wals_model ref = {0};
    struct pipeline_out po = {0};
    int reports = 0;
    make_result(&a);
    make_result(&b);
    params(&wp, &rp, dims, solver);
    rp.scale = scale;
    float *emb = reference(&a, &rp, &wp, &ref);

    assert_int_equal(pipeline_run(NULL, &b, &rp, &wp, count_reports, &reports, &po), 0);
    assert_true(reports > 0);
    assert_null(b.cooc); /* the counts are released for WALS */
    assert_non_null(b.row_ptr);
    assert_int_equal(po.model.iterations, ref.iterations);
    assert_memory_equal(po.model.loss, ref.loss, sizeof(double) * (size_t)ref.iterations);
    assert_memory_equal(po.emb, emb, sizeof(float) * (size_t)a.n * (size_t)dims);
    assert_true(po.wals_started > 0 && po.rating_seconds >= 0 && po.wals_seconds >= 0 &&
                po.embed_seconds >= 0);

    pipeline_out_deinit(&po);
    assert_null(po.emb);
    pipeline_out_deinit(&po); /* zeroed: a no-op */
    wals_model_deinit(&ref);
    free(emb);
    cooc_result_deinit(&a);
    cooc_result_deinit(&b);
}

static void test_narrow_cg(void **state)
{
    same_as_reference(16, WALS_SOLVER_CG, RATING_SCALE_LINEAR);
}

static void test_narrow_cholesky_log(void **state)
{
    same_as_reference(24, WALS_SOLVER_CHOLESKY, RATING_SCALE_LOG);
}

static void test_wide_cg(void **state)
{
    same_as_reference(72, WALS_SOLVER_CG, RATING_SCALE_LINEAR);
}

static int cancel_at_once(void *ud, const struct wals_progress *p)
{
    return 1;
}

/* Runs the pipeline on a small problem (8 dims) with the seed's ratings,
 * or the log scale with epsilon 0 (which rating_values refuses) when
 * bad_rating; returns its code, after checking that nothing is handed back
 * on failure and whether the counts were kept. */
static int run_failing(wals_progress_cb cb, int bad_rating, int counts_kept)
{
    struct cooc_result res = {0};
    struct wals_params wp;
    struct rating_params rp;
    struct pipeline_out po = {0};
    make_result(&res);
    params(&wp, &rp, 8, WALS_SOLVER_CG);
    if (bad_rating) {
        rp.scale = RATING_SCALE_LOG;
        rp.epsilon = 0;
    }
    int rc = pipeline_run(NULL, &res, &rp, &wp, cb, NULL, &po);
    assert_null(po.emb);
    assert_int_equal(res.cooc != NULL, counts_kept);
    pipeline_out_deinit(&po);
    cooc_result_deinit(&res);
    return rc;
}

static void test_cancel(void **state)
{
    assert_int_equal(run_failing(cancel_at_once, 0, 0), -ECANCELED);
}

static void test_bad_rating(void **state)
{
    assert_int_equal(run_failing(NULL, 1, 1), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_narrow_cg),  cmocka_unit_test(test_narrow_cholesky_log),
        cmocka_unit_test(test_wide_cg),    cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_bad_rating),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
