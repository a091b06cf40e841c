/*
 * A co-occurrence table computed elsewhere (the seed's item_cooc from a
 * warehouse, POST /v1/pmi/import) turned into the same struct cooc_result
 * a pmi job produces (ml/cooc.h), after checking that it is one.
 *
 * Items are dense local indices 0..n-1 given by the caller (ingest order);
 * rows arrive one by one (cooc_import_add) and are kept compactly: a row
 * whose item1 < item2 (local order) as 16 bytes with its pmi, the mirror
 * orientation as 12 bytes without it, the diagonal per item. So memory
 * while streaming is ~14 bytes per row (the result itself is 8 per row).
 *
 * cooc_import_check then sorts both halves in place (bucket sort by the
 * first item, no extra copy) and checks the table is the seed's: every
 * item has its diagonal row (= its frequency, > 0); every off-diagonal
 * pair comes in both orientations with equal cooc, once; cooc(i,j) <=
 * min(freq i, freq j); and, when the table has pmi, that it equals
 *   log2(cooc) - log2(freq1) - log2(freq2) + log2(total),
 *   total = the sum of the diagonal (the seed's SUM(frequency)),
 * within a tolerance: exactly per row for the stored orientation and the
 * diagonal, as a per-item sum for the mirror rows (whose pmi is not kept;
 * see docs/algorithms.md "Imported PMI results"). The pmi stored in the
 * result is not the imported one: like every consumer of a cooc_result it
 * is recomputed from cooc, frequencies and total (cooc_pmi).
 *
 * cooc_import_build maps local items to item keys and writes the CSR.
 * No I/O. Threads: none; one thread at a time per object (the loop adds,
 * a worker checks and builds).
 */
#ifndef ITEMVEC_ML_COOC_IMPORT_H
#define ITEMVEC_ML_COOC_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "ml/cooc.h"

/* Default tolerance of the pmi check: |given - recomputed| <= tol *
 * max(1, |recomputed|). 1e-6 passes float32 exports (relative error
 * 6e-8) and any engine's log2; it fails a natural log, a wrong total, a
 * filtered table (frequencies that do not match the pairs). */
#define COOC_IMPORT_PMI_TOLERANCE 1e-6

struct cooc_import_upper { /* item1 = a < item2 = b (local order) */
    uint32_t a, b, cooc;
    float pmi;
};
struct cooc_import_lower { /* the row (item1 = b, item2 = a), a < b */
    uint32_t a, b, cooc;
};

struct cooc_import {
    uint32_t n, ncap;  /* items seen (local indices 0..n-1) */
    uint32_t *diag;    /* [n] diagonal cooc = frequency; 0 = no row yet */
    double *diag_pmi;  /* [n] */
    double *lower_pmi; /* [n] sum of the pmi of lower rows by their a */
    struct cooc_import_upper *up;
    uint64_t n_up, cap_up;
    struct cooc_import_lower *lo;
    uint64_t n_lo, cap_lo;
    int pmi_mode; /* -1 before the first row, 0 no pmi, 1 every row has one */
    uint64_t rows, max_rows;
    uint64_t total; /* set by cooc_import_check */
};

/* Initialises ci (embedded) for at most max_rows rows (0: no bound). */
void cooc_import_init(struct cooc_import *ci, uint64_t max_rows);
void cooc_import_deinit(struct cooc_import *ci);

/* Adds the row (item1 = a, item2 = b, cooc > 0, pmi when has_pmi). Items
 * may be new (a, b >= n grows the table; indices must be dense). Returns
 * 0, -EEXIST (a second diagonal row for a), -EPROTO (has_pmi differs from
 * the earlier rows), -E2BIG (over max_rows), -EINVAL (cooc 0), -ENOMEM. */
int cooc_import_add(struct cooc_import *ci, uint32_t a, uint32_t b, uint32_t cooc, int has_pmi,
                    double pmi);

enum cooc_import_problem {
    COOC_IMPORT_OK,
    COOC_IMPORT_EMPTY,            /* no rows */
    COOC_IMPORT_MISSING_DIAGONAL, /* item1 has off-diagonal rows but no (item1, item1) */
    COOC_IMPORT_DUPLICATE,        /* the row (item1, item2) appears twice */
    COOC_IMPORT_MISSING_MIRROR,   /* (item1, item2) present, (item2, item1) absent */
    COOC_IMPORT_COOC_MISMATCH,    /* cooc(item1,item2) = value1 != cooc(item2,item1) = value2 */
    COOC_IMPORT_COOC_OVER_FREQ,   /* cooc = value1 > the frequency value2 of one item */
    COOC_IMPORT_PMI_MISMATCH,     /* pmi given value1, recomputed value2 (row item1, item2) */
    COOC_IMPORT_PMI_SUM_MISMATCH, /* rows (x, item2) with x after item2: sum given value1,
                                     recomputed value2, over count rows */
    COOC_IMPORT_TOO_BIG,          /* total or nnz beyond what a cooc_result holds */
};

/* What cooc_import_check found: the first problem in a deterministic
 * order (diagonals, then pairs by first item), with local indices. */
struct cooc_import_issue {
    enum cooc_import_problem problem;
    uint32_t item1, item2;
    double value1, value2;
    uint64_t count;
};

/* Sorts and checks (see the top of this file) with pmi tolerance tol.
 * Returns 0, -EDOM with *issue filled, or -ENOMEM; ci->total (the sum of
 * the diagonal) is set once every item has its diagonal. The
 * rows stay (sorted) for cooc_import_build; the mirror half is freed. */
int cooc_import_check(struct cooc_import *ci, double tol, struct cooc_import_issue *issue);

/* After a successful check: builds *out, the seed's symmetric matrix with
 * its diagonal over item keys keys[local] (n distinct values >= 1; the
 * dense order of the result is ascending key, as cooc_compute's). The
 * rows are consumed (freed) as they are written, so the peak is about the
 * result plus 6 bytes per row. min_item_frequency and max_group_size are
 * recorded as given (the parameters the table was computed with, when
 * known; 0 otherwise); valid_items = n and valid_groups = 0 (unknown).
 * Returns 0, -EINVAL (keys not distinct or zero), -ENOMEM. *out is owned
 * by the caller (cooc_result_deinit); zeroed on failure. */
int cooc_import_build(struct cooc_import *ci, const uint32_t *keys, int64_t min_item_frequency,
                      int64_t max_group_size, struct cooc_result *out);

/* Bytes held now (for memory accounting in logs and the bench). */
size_t cooc_import_bytes(const struct cooc_import *ci);

#endif
