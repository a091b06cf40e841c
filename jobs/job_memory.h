/*
 * Memory of the train job, estimated before it runs, and the budget it is
 * checked against (jobs.memory_budget). A job whose estimate is over the
 * budget is refused at POST /v1/jobs (422 naming both), so a request can
 * no longer start a training that the kernel's OOM killer ends by killing
 * the whole daemon.
 *
 * Pure arithmetic plus one read of the machine's memory limit
 * (base/sysmem.h); any thread.
 */
#ifndef ITEMVEC_JOBS_JOB_MEMORY_H
#define ITEMVEC_JOBS_JOB_MEMORY_H

#include <stdint.h>

struct config;

/* What a train job's memory depends on. */
struct job_memory_train {
    uint64_t items;         /* the PMI matrix's items n (the model's rows) */
    uint64_t nnz;           /* its nonzeros */
    uint64_t matrix_bytes;  /* the matrix's arrays in memory (its file's payload,
                               cooc_file_stat); 0: 16·n + 8·nnz */
    uint32_t dimensions;    /* f */
    uint32_t threads;       /* jobs.threads: per-thread WALS and kNN scratch */
    int activate;           /* the model is prepared for serving in the job */
    int precompute;         /* ... with top-topk lists (n <= serving.precompute_max_items) */
    uint32_t topk;          /* serving.topk */
    uint64_t catalog_items; /* items stored: serving loads every item's names */
};

/* An upper bound of the train job's peak memory in bytes, from the sizes of
 * every buffer the job holds (jobs/job_train.c, ml/wals.c, ml/knn*.c,
 * serving/serving.c), counted as if all were alive at once (some are freed
 * before others are allocated, so the true peak is lower):
 *   PMI matrix    matrix_bytes, or 16·n + 8·nnz (keys, frequencies, row
 *                 pointers, columns, counts; a version-2 file adds its groups)
 *   ratings       4·nnz
 *   WALS          16·n·s + 8·n·f (X and Y at stride s = f rounded up to 8,
 *                 and their copies in the result), per thread
 *                 4·s·min(n, 65536) + 8·256·f (CG gather, Gram block)
 *   embeddings    4·n·f
 *   serving       (activate) the normalised index 4·n·f + 16·n, names
 *                 ~176 bytes per catalog item (three strings and pointers,
 *                 loaded for the whole catalog, copied for the model's
 *                 items), lists 8·n·topk and per thread
 *                 4·256·1024 + 8·256·(3·topk + 16) + 4·n (precompute)
 * Saturates at UINT64_MAX instead of overflowing. */
uint64_t job_memory_train(const struct job_memory_train *t);

/* The budget jobs are checked against: jobs.memory_budget when set, else
 * (0, the default) three quarters of the memory this process may use
 * (sysmem_limit_bytes: physical memory or a lower cgroup limit) divided by
 * jobs.concurrency, so the jobs that may run at once fit together. */
uint64_t job_memory_budget(const struct config *cfg);

/* Formats bytes as "123 MiB" / "4.5 GiB" into buf. Returns buf. */
const char *job_memory_format(uint64_t bytes, char *buf, unsigned size);

#endif
