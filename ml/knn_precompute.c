/*
 * ml/knn: precomputed top-K neighbour lists for every item (knn.h,
 * knn_index_precompute). The score matrix U·Uᵀ is n × n (2 GB of floats
 * at 23 k items, 34 GB at 92.7 k), so it is never held. Each task takes a
 * block of rows and walks the columns in tiles: SGEMM computes one
 * rows × cols tile of scores (1 MB), and every row's streaming
 * selection (knn_stream.c) takes the tile's scores before the next tile.
 * Tasks are row blocks on the ml/par.h pool; each writes only its own rows
 * of the lists, from its worker's own scratch, so results do not depend on
 * threads, and the exact rescoring makes them independent of the tiling.
 *
 * Why tiles (measured, bench/bench_knn.c, docs/benchmarks.md "Precompute
 * with column tiles"): the earlier one-SGEMM-per-row-block layout had to
 * keep 4 MB blocks of whole rows, i.e. 11 rows at 92.7 k items, so
 * OpenBLAS repacked all of U (18.5 MB) for every 11 rows and zeroed and
 * re-read 4 MB of scores from L3 twice per block (two selection passes).
 */
#include "ml/knn.h"
#include "ml/knn_internal.h"
#include "ml/par.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Automatic tile: 256 rows × 1024 columns (1 MB of scores, L2 and L3) and
 * 256 rows of kept candidates (0.6 MB at K = 100). Measured one thread,
 * 50 k items (cpu s, docs/benchmarks.md): 64 × 1024 9.0-9.8, 128 × 512
 * 9.3-9.8, 256 × 256 8.2-8.9, 256 × 1024 7.9-8.1, 512 × 1024 8.0; smaller
 * row blocks repack the column tile for fewer rows. */
#define AUTO_BLOCK_ROWS 256u
#define AUTO_BLOCK_COLS 1024u
#define TICK_MS 50u

/* One worker's scratch, reused by its tasks. */
struct pc_scratch {
    float *tile;            /* block × cols scores */
    float *val;             /* block × cap kept scores */
    uint32_t *vidx;         /* block × cap kept items */
    struct knn__stream *st; /* [block] */
    float *tmp;             /* cap */
    float *row;             /* n: whole-row fallback for an overflowed stream */
    float *tbuf;            /* 2·kf, for knn__select */
    double *hbuf;           /* kf: the selection heap's scores */
};

struct pc_ctx {
    const struct knn_index *idx;
    uint32_t kf;
    uint32_t block;
    uint32_t cols;
    uint32_t cap;
    struct pc_scratch *w; /* [threads] */
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
    const uint32_t n = idx->n, d = idx->d, kf = ctx->kf, cap = ctx->cap;
    const uint32_t r0 = (uint32_t)(task * ctx->block);
    const uint32_t rows = n - r0 < ctx->block ? n - r0 : ctx->block;
    struct pc_scratch *w = &ctx->w[worker];

    for (uint32_t r = 0; r < rows; r++)
        knn__stream_reset(&w->st[r], w->val + (size_t)r * cap, w->vidx + (size_t)r * cap, cap, kf,
                          d);
    for (uint32_t j0 = 0; j0 < n; j0 += ctx->cols) {
        const uint32_t cols = n - j0 < ctx->cols ? n - j0 : ctx->cols;
        /* beta = 1 on a tile we zero ourselves: OpenBLAS 0.3.21's own
         * beta = 0 pass (sgemm_beta) took 11-12 % of the precompute, memset
         * 4 %; 92.7 k items, 2 threads, three interleaved runs: 11.6-12.1 s
         * against 12.7-13.1 s. */
        memset(w->tile, 0, (size_t)rows * ctx->cols * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)d, 1.0f,
                    idx->u + (size_t)r0 * d, (int)d, idx->u + (size_t)j0 * d, (int)d, 1.0f, w->tile,
                    (int)ctx->cols);
        for (uint32_t r = 0; r < rows; r++) {
            const uint32_t i = r0 + r;
            float *c = w->tile + (size_t)r * ctx->cols;
            if (i >= j0 && i - j0 < cols)
                c[i - j0] = -INFINITY; /* the item itself is never its own neighbour */
            knn__stream_feed(&w->st[r], c, j0, cols, w->tmp);
        }
    }
    for (uint32_t r = 0; r < rows; r++) {
        const uint32_t i = r0 + r;
        const float *q = idx->u + (size_t)i * d;
        uint32_t *oi = ctx->nbr_idx + (size_t)i * kf;
        float *os = ctx->nbr_score + (size_t)i * kf;
        if (knn__stream_finish(&w->st[r], idx, q, w->tmp, w->hbuf, oi, os) == 0)
            continue;
        /* Many near-ties (duplicates, zero rows): the whole row, as a scan. */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0f, idx->u, (int)d, q, 1, 0.0f,
                    w->row, 1);
        w->row[i] = -INFINITY;
        knn__select(idx, q, w->row, n - 1, kf, w->tbuf, w->hbuf, oi, os);
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
    uint32_t block = p->block_rows ? p->block_rows : AUTO_BLOCK_ROWS;
    uint32_t cols = p->block_cols ? p->block_cols : AUTO_BLOCK_COLS;
    block = block > n ? n : block;
    cols = cols > n ? n : cols;
    const uint32_t cap = 3 * kf + 16;
    if ((size_t)n * kf > SIZE_MAX / sizeof(float) / 2 || kf > (UINT32_MAX - 16) / 3 ||
        (size_t)block * cols > SIZE_MAX / sizeof(float) ||
        (size_t)block * cap > SIZE_MAX / sizeof(float))
        return -EOVERFLOW;
    threads = p->threads;

    ctx.idx = idx;
    ctx.kf = kf;
    ctx.block = block;
    ctx.cols = cols;
    ctx.cap = cap;
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
        ctx.w = calloc((size_t)threads, sizeof(*ctx.w));
        if (!ctx.nbr_idx || !ctx.nbr_score || !ctx.w) {
            rc = -ENOMEM;
            goto out;
        }
        for (int t = 0; t < threads; t++) {
            struct pc_scratch *w = &ctx.w[t];
            w->tile = malloc((size_t)block * cols * sizeof(float));
            w->val = malloc((size_t)block * cap * sizeof(float));
            w->vidx = malloc((size_t)block * cap * sizeof(uint32_t));
            w->st = malloc((size_t)block * sizeof(*w->st));
            w->tmp = malloc((size_t)cap * sizeof(float));
            w->row = malloc((size_t)n * sizeof(float));
            w->tbuf = malloc(2 * (size_t)kf * sizeof(float));
            w->hbuf = malloc((size_t)kf * sizeof(double));
            if (!w->tile || !w->val || !w->vidx || !w->st || !w->tmp || !w->row || !w->tbuf ||
                !w->hbuf) {
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
    if (ctx.w)
        for (int t = 0; t < threads; t++) {
            struct pc_scratch *w = &ctx.w[t];
            free(w->tile);
            free(w->val);
            free(w->vidx);
            free(w->st);
            free(w->tmp);
            free(w->row);
            free(w->tbuf);
            free(w->hbuf);
        }
    free(ctx.w);
    free(ctx.nbr_idx);
    free(ctx.nbr_score);
    return rc;
}
