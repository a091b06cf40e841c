/*
 * Item co-occurrence and PMI: the seed's stored procedure sp_ComputePMI
 * (../shared/seed/, "Compute item co-occurence") as a sparse matrix kernel.
 *
 * Input is the membership snapshot as groups in CSR form (the same shape as
 * storage's struct store_groups, but ml/ depends on nothing of ours
 * beyond base/array.h, so it has its own borrowed view). Output is the
 * seed's final item_cooc table as a symmetric sparse matrix with its
 * diagonal, in CSR form over dense item indices, plus the seed's
 * item_frequency and total:
 *
 *   valid_items        items in >= min_item_frequency groups (all groups)
 *   valid_groups       groups with BETWEEN 2 AND max_group_size valid items
 *   valid_item_groups  (item, group) with a valid item in a valid group
 *   item_frequency     groups per item, recounted on valid_item_groups
 *                      (may end below min_item_frequency: kept, as the SQL)
 *   total              SUM(frequency) = rows of valid_item_groups
 *   item_cooc          cooc(i,j) = groups holding both, both orders, plus
 *                      the diagonal cooc(i,i) = frequency(i)
 *   pmi                log2(cooc) - log2(freq1) - log2(freq2) + log2(total)
 *
 * Algorithm: Gustavson's row-wise sparse product C = A·Aᵀ of the
 * item × valid-group incidence matrix A, in two passes (count, then fill)
 * so the output arrays are allocated once at their exact size. See
 * docs/algorithms.md, "Co-occurrence and PMI".
 *
 * No I/O. Threads: plain pthreads, created and joined inside cooc_compute.
 */
#ifndef ITEMVEC_ML_COOC_H
#define ITEMVEC_ML_COOC_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* The seed's defaults: CALL sp_ComputePMI(15, 100). */
#define COOC_DEFAULT_MIN_ITEM_FREQUENCY 15
#define COOC_DEFAULT_MAX_GROUP_SIZE 100
#define COOC_MAX_THREADS 64

/* Borrowed view of the memberships. Group g holds the item keys
 * items[offsets[g] .. offsets[g+1]-1], strictly increasing (a set), each in
 * 1..max_item_key. offsets[0] must be 0; offsets has n_groups + 1 entries.
 * (storage's struct store_groups has exactly these fields.) */
struct cooc_groups {
    size_t n_groups;
    const uint64_t *offsets;
    const uint32_t *items;
    uint32_t max_item_key;
};

struct cooc_params {
    /* sp_ComputePMI's IN parameters, INT64 as in the seed; any value is
     * accepted and behaves as the SQL would (e.g. max_group_size < 2 keeps
     * no group, min_item_frequency <= 1 keeps every item present). Range
     * checks for users belong to the API layer. */
    int64_t min_item_frequency;
    int64_t max_group_size;
    /* Worker threads for the pair passes: < 1 means 1; capped at
     * COOC_MAX_THREADS. The result does not depend on it. */
    int threads;
};

/* Fills p with the seed's defaults and 2 threads. */
void cooc_params_init(struct cooc_params *p);

/* Progress report. Counters are monotonic within a stage. */
struct cooc_progress {
    double fraction;     /* 0..1 over the whole computation */
    const char *stage;   /* "frequencies", "groups", "transpose", "count", "fill" (static) */
    uint64_t rows_read;  /* memberships scanned in the current scan */
    uint64_t rows_total; /* memberships in the input */
    uint64_t items_done; /* matrix rows finished in the current pair pass */
    uint64_t items_total;
    uint64_t pairs; /* cooc entries emitted so far (fill pass), diagonal included */
};

/* Returns 0 to go on; anything else cancels (cooc_compute returns -ECANCELED). */
typedef int (*cooc_progress_cb)(void *userdata, const struct cooc_progress *p);

/* The seed's item_cooc + item_frequency + total as a symmetric CSR matrix.
 * Dense index d in 0..n-1 stands for item key keys[d]; keys ascend, so the
 * dense order is the key order. Row d holds columns col[row_ptr[d] ..
 * row_ptr[d+1]-1], strictly ascending, with cooc > 0 in the same slots; the
 * diagonal entry is always present and equals freq[d]. nnz = row_ptr[n] is
 * the row count of the seed's final item_cooc table (2·pairs + n).
 * cooc_compute also fills group_ptr / group_items. */
struct cooc_result {
    uint32_t n;                 /* matrix items = rows of item_frequency */
    uint32_t *keys;             /* [n] original item keys, ascending */
    uint32_t *freq;             /* [n] item_frequency recomputed on valid_item_groups */
    uint64_t total;             /* SUM(frequency) = rows of valid_item_groups */
    uint64_t valid_items;       /* rows of the valid_items CTE */
    uint64_t valid_groups;      /* rows of the valid_groups CTE */
    uint64_t nnz;               /* = row_ptr[n] = cooc_rows */
    uint64_t *row_ptr;          /* [n + 1] */
    uint32_t *col;              /* [nnz] dense indices */
    uint32_t *cooc;             /* [nnz] */
    int64_t min_item_frequency; /* the parameters that produced it */
    int64_t max_group_size;
    /* The valid groups themselves (valid_item_groups by group), for the
     * random-walk scores that need playlist sizes (ml/scores.h): group g
     * (0 <= g < valid_groups, in input order) holds the dense indices
     * group_items[group_ptr[g] .. group_ptr[g+1]-1], ascending, at least 2;
     * group_ptr has valid_groups + 1 entries, group_ptr[valid_groups] =
     * total. Both NULL when the result does not carry them (a file written
     * before version 2 of storage/cooc_file.h, or an imported table). */
    uint64_t *group_ptr;
    uint32_t *group_items;
};

/* Computes the seed's co-occurrence matrix for groups with params.
 *
 * Ownership: groups and params are borrowed (only read, may be shared with
 * other readers); *out is overwritten (not freed first) and, on success,
 * owned by the caller, who releases it with cooc_result_deinit. On failure
 * *out is left zeroed.
 *
 * Progress: cb (may be NULL) is called on the calling thread, about every
 * 50 ms while work proceeds and once at the end of each stage; a non-zero
 * return stops the workers at their next chunk and the function returns
 * -ECANCELED after freeing everything.
 *
 * Errors: -EINVAL (NULL arguments, offsets not starting at 0 or
 * decreasing, an item key outside 1..max_item_key, a group not strictly
 * increasing), -EOVERFLOW (more than UINT32_MAX groups or memberships, or
 * a count that would not fit uint32), -ENOMEM, -EAGAIN (thread creation
 * failed), -ECANCELED.
 *
 * Threading: reentrant; runs params->threads worker threads and joins them
 * before returning. Memory: about the output (8 bytes per nonzero + 16 per
 * matrix item) plus 12 bytes per valid membership, 8 bytes per possible
 * item key (freed before the pair passes), 4 bytes per group, and ~4 bytes
 * per matrix item per thread; never groups × items.
 */
int cooc_compute(const struct cooc_groups *groups, const struct cooc_params *params,
                 cooc_progress_cb cb, void *userdata, struct cooc_result *out);

/* Frees the arrays of r and zeroes it. NULL or a zeroed result is a no-op. */
void cooc_result_deinit(struct cooc_result *r);

/* Number of distinct unordered pairs (i < j): the row count of the seed's
 * first item_cooc table, before mirroring. */
static inline uint64_t cooc_result_pairs(const struct cooc_result *r)
{
    return (r->nnz - r->n) / 2;
}

/* The seed's PMI of entry idx (row_ptr[row] <= idx < row_ptr[row+1]):
 *   LOG(a.cooc, 2) - LOG(b.frequency, 2) - LOG(c.frequency, 2) + LOG(total, 2)
 * evaluated left to right in double, as the SQL does. */
static inline double cooc_pmi(const struct cooc_result *r, uint32_t row, uint64_t idx)
{
    return log2((double)r->cooc[idx]) - log2((double)r->freq[row]) -
           log2((double)r->freq[r->col[idx]]) + log2((double)r->total);
}

/* score = cooc * pmi, the rating the seed trains on (sp_TrainItemMatchingModel). */
static inline double cooc_score(const struct cooc_result *r, uint32_t row, uint64_t idx)
{
    return (double)r->cooc[idx] * cooc_pmi(r, row, idx);
}

#endif
