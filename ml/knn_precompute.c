/*
 * ml/knn: precomputed top-K neighbour lists for every item (knn.h,
 * knn_index_precompute). The score matrix U·Uᵀ is n × n (2 GB of floats
 * at 23 k items, 40 GB at 100 k), so it is never held: each task computes
 * one block of rows with SGEMM (block_rows × n floats, a few MB, reused
 * per worker) and reduces every row to its K best with knn__select before
 * the next block. Tasks are row blocks on the ml/par.h pool; each writes
 * only its own rows of the lists, so results do not depend on threads.
 */
#include "ml/knn.h"
#include "ml/knn_internal.h"
#include "ml/par.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Automatic block: about 4 MB of float scores per worker (n = 23 k →
 * 45 rows), so a block plus the matrix stay in L3 on this class of
 * machine, with at least 8 rows to give SGEMM some width (measured in
 * bench/bench_knn.c; docs/algorithms.md). */
#define AUTO_BLOCK_FLOATS (1u << 20)
#define MIN_AUTO_BLOCK 8u
#define MAX_AUTO_BLOCK 1024u
#define TICK_MS 50u

struct pc_ctx {
    const struct knn_index *idx;
    uint32_t kf;
    uint32_t block;
    float **scores; /* [threads] block × n */
    float **tbuf;   /* [threads] 2·kf */
    uint32_t *nbr_idx;
    float *nbr_score;
    atomic_uint_least64_t done;
    knn_progress_cb cb;
    void *userdata;
};

static void pc_task(void *vctx, size_t task, int worker)
{
    struct pc_ctx *ctx = vctx;
    const struct knn_index *idx = ctx->idx;
    const uint32_t n = idx->n, d = idx->d;
    const uint32_t r0 = (uint32_t)(task * ctx->block);
    const uint32_t rows = n - r0 < ctx->block ? n - r0 : ctx->block;
    float *c = ctx->scores[worker];

    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)n, (int)d, 1.0f,
                idx->u + (size_t)r0 * d, (int)d, idx->u, (int)d, 0.0f, c, (int)n);
    for (uint32_t r = 0; r < rows; r++) {
        const uint32_t i = r0 + r;
        float *row = c + (size_t)r * n;
        row[i] = -INFINITY; /* the item itself is never its own neighbour */
        knn__select(idx, idx->u + (size_t)i * d, row, n - 1, ctx->kf, ctx->tbuf[worker],
                    ctx->nbr_idx + (size_t)i * ctx->kf, ctx->nbr_score + (size_t)i * ctx->kf);
    }
    atomic_fetch_add_explicit(&ctx->done, rows, memory_order_relaxed);
}

static int pc_report(struct pc_ctx *ctx, uint64_t done)
{
    struct knn_progress pr = {
        .fraction = (double)done / (double)ctx->idx->n,
        .rows_done = done,
        .rows_total = ctx->idx->n,
    };
    return ctx->cb(ctx->userdata, &pr);
}

static int pc_tick(void *vctx)
{
    struct pc_ctx *ctx = vctx;
    return pc_report(ctx, atomic_load_explicit(&ctx->done, memory_order_relaxed));
}

int knn_index_precompute(struct knn_index *idx, const struct knn_params *p, knn_progress_cb cb,
                         void *userdata)
{
    struct pc_ctx ctx = {0};
    struct par *pool = NULL;
    int threads = 0;
    int rc = 0;

    if (!idx || !p || p->k == 0 || p->threads < 1 || p->threads > KNN_MAX_THREADS)
        return -EINVAL;
    const uint32_t n = idx->n;
    const uint32_t kf = p->k < n - 1 ? p->k : n - 1;
    uint32_t block = p->block_rows;
    if (block == 0) {
        block = AUTO_BLOCK_FLOATS / n;
        block = block < MIN_AUTO_BLOCK ? MIN_AUTO_BLOCK : block;
        block = block > MAX_AUTO_BLOCK ? MAX_AUTO_BLOCK : block;
    }
    if (block > n)
        block = n;
    if ((size_t)n * kf > SIZE_MAX / sizeof(float) / 2 ||
        (size_t)block * n > SIZE_MAX / sizeof(float) / KNN_MAX_THREADS)
        return -EOVERFLOW;
    threads = p->threads;

    ctx.idx = idx;
    ctx.kf = kf;
    ctx.block = block;
    ctx.cb = cb;
    ctx.userdata = userdata;
    atomic_init(&ctx.done, 0);

    if (cb && pc_report(&ctx, 0) != 0) {
        rc = -ECANCELED;
        goto out;
    }
    if (kf > 0) {
        ctx.nbr_idx = malloc((size_t)n * kf * sizeof(uint32_t));
        ctx.nbr_score = malloc((size_t)n * kf * sizeof(float));
        ctx.scores = calloc((size_t)threads, sizeof(float *));
        ctx.tbuf = calloc((size_t)threads, sizeof(float *));
        if (!ctx.nbr_idx || !ctx.nbr_score || !ctx.scores || !ctx.tbuf) {
            rc = -ENOMEM;
            goto out;
        }
        for (int w = 0; w < threads; w++) {
            ctx.scores[w] = malloc((size_t)block * n * sizeof(float));
            ctx.tbuf[w] = malloc(2 * (size_t)kf * sizeof(float));
            if (!ctx.scores[w] || !ctx.tbuf[w]) {
                rc = -ENOMEM;
                goto out;
            }
        }
        pool = par_create(threads, &rc);
        if (!pool)
            goto out;

        /* Our workers each run a single-threaded SGEMM; OpenBLAS's own
         * threads on top would oversubscribe the cores (process-wide). */
        openblas_set_num_threads(1);
        const size_t tasks = (n + (size_t)block - 1) / block;
        rc = par_for(pool, tasks, pc_task, &ctx, cb ? pc_tick : NULL, &ctx, TICK_MS);
        if (rc < 0)
            goto out;
    }
    if (cb)
        (void)pc_report(&ctx, n);

    /* Success: swap the new lists in (the old ones are freed below). */
    uint32_t *old_idx = idx->nbr_idx;
    float *old_score = idx->nbr_score;
    idx->nbr_idx = ctx.nbr_idx;
    idx->nbr_score = ctx.nbr_score;
    idx->k = kf;
    ctx.nbr_idx = old_idx;
    ctx.nbr_score = old_score;

out:
    par_destroy(pool);
    if (ctx.scores)
        for (int w = 0; w < threads; w++)
            free(ctx.scores[w]);
    if (ctx.tbuf)
        for (int w = 0; w < threads; w++)
            free(ctx.tbuf[w]);
    free(ctx.scores);
    free(ctx.tbuf);
    free(ctx.nbr_idx);
    free(ctx.nbr_score);
    return rc;
}
