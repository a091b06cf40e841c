/*
 * The train job's memory estimate and the jobs' memory budget (see
 * job_memory.h). The constants mirror the allocations of ml/wals.c
 * (WALS__CG_GATHER_MAX rows of gathered factors, GRAM_BLOCK) and
 * ml/knn_precompute.c (its automatic 256 × 1024 tiles); a change there
 * should be reflected here (tests/unit/test_job_memory.c checks the sums).
 */
#include "jobs/job_memory.h"

#include <stdio.h>

#include "base/sysmem.h"
#include "conf/config.h"

#define CG_GATHER_MAX 65536  /* ml/wals_internal.h WALS__CG_GATHER_MAX */
#define GRAM_BLOCK 256       /* ml/wals_solve.c */
#define KNN_BLOCK_ROWS 256   /* ml/knn_precompute.c AUTO_BLOCK_ROWS */
#define KNN_BLOCK_COLS 1024  /* ml/knn_precompute.c AUTO_BLOCK_COLS */
#define NAME_BYTES 176       /* per item: 3 pointers + 3 strings with malloc overhead */

/* Saturating arithmetic: an absurd request must not wrap to a small number. */
static uint64_t add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t mul(uint64_t a, uint64_t b)
{
    return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

uint64_t job_memory_train(const struct job_memory_train *t)
{
    const uint64_t n = t->items, f = t->dimensions, s = (f + 7) / 8 * 8;
    const uint64_t threads = t->threads ? t->threads : 1;
    uint64_t b = 0;
    b = add(b, t->matrix_bytes ? t->matrix_bytes : add(mul(16, n), mul(8, t->nnz))); /* matrix */
    b = add(b, mul(4, t->nnz));                  /* ratings */
    b = add(b, add(mul(mul(16, n), s), mul(mul(8, n), f))); /* X, Y and their copies */
    uint64_t per_thread = add(mul(mul(4, s), n < CG_GATHER_MAX ? n : CG_GATHER_MAX),
                              mul(8 * GRAM_BLOCK, f));
    b = add(b, mul(threads, per_thread));
    b = add(b, mul(mul(4, n), f)); /* embeddings */
    if (t->activate) {
        b = add(b, add(mul(mul(4, n), f), mul(16, n))); /* normalised index, rank, by_id */
        b = add(b, mul(NAME_BYTES, add(t->catalog_items, n)));
        if (t->precompute) {
            b = add(b, mul(mul(8, n), t->topk));
            uint64_t scratch = add(add(4 * KNN_BLOCK_ROWS * KNN_BLOCK_COLS,
                                       mul(8 * KNN_BLOCK_ROWS, add(mul(3, t->topk), 16))),
                                   mul(4, n));
            b = add(b, mul(threads, scratch));
        }
    }
    return b;
}

uint64_t job_memory_budget(const struct config *cfg)
{
    if (cfg->jobs_memory_budget > 0)
        return (uint64_t)cfg->jobs_memory_budget;
    uint64_t limit = sysmem_limit_bytes();
    uint64_t jobs = cfg->jobs_concurrency > 0 ? (uint64_t)cfg->jobs_concurrency : 1;
    return limit / 4 * 3 / jobs;
}

const char *job_memory_format(uint64_t bytes, char *buf, unsigned size)
{
    if (bytes >= (UINT64_C(1) << 30))
        snprintf(buf, size, "%.1f GiB", (double)bytes / (double)(UINT64_C(1) << 30));
    else
        snprintf(buf, size, "%.1f MiB", (double)bytes / (double)(UINT64_C(1) << 20));
    return buf;
}
