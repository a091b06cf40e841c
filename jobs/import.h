/*
 * Results made elsewhere, stored as if itemvecd had made them:
 *  - a co-occurrence table (the seed's item_cooc from BigQuery, Spark,
 *    DuckDB...) becomes a succeeded job of type "pmi" with params.source
 *    "import" and the same <state>/pmi/<job>.cooc file a pmi job writes,
 *    so train's pmi_job, /v1/pmi/pairs, cooccurrences and the cooc/pmi
 *    similar-items sources use it unchanged (POST /v1/pmi/import);
 *  - embeddings in the seed's JSONL export format become a model
 *    (<state>/models/<model>.emb and its row, "source":"import"), served
 *    like a trained one (POST /v1/models/import).
 *
 * The HTTP layer parses the body (ingest/cooc_parse.h, ingest/emb_parse.h)
 * and hands each row to *_add on the loop thread, a chunk at a time; the
 * rows are kept compactly here. At the end of the body *_commit runs the
 * heavy part on the worker pool (checks, sorting, the file), then one
 * writer transaction inserts the new item ids and the record together,
 * and done() is called on the loop thread. Bad input stores nothing: the
 * checks come before anything is written, and a failure after the file
 * was written removes it.
 *
 * Errors (rc, with struct import_error filled): -EINVAL a value or row
 * that is wrong where it stands (line, column); -EDOM a table or file
 * that is inconsistent across rows (the pair or item, and a line when
 * known); -E2BIG over the row bound; -EBUSY another import of the kind is
 * running, or items the import adds were created meanwhile; -ESHUTDOWN
 * draining; -ENOMEM; other negative errnos from storage or files.
 * api/ maps them to HTTP statuses.
 *
 * Threading: create, add, commit and destroy on the loop thread; one
 * import of each kind at a time (a second gets -EBUSY), which bounds the
 * memory two large bodies could take.
 */
#ifndef ITEMVEC_JOBS_IMPORT_H
#define ITEMVEC_JOBS_IMPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct app;

struct import_error {
    unsigned long line, column;  /* 0 when not applicable */
    char item1[260], item2[260]; /* the offending pair or item, "" when none */
    char message[1400];
};

/* Called once on the loop thread when a commit ends: rc 0 with answer (a
 * borrowed JSON object for the 201 body) and location (the new
 * resource's path), or a negative errno with err filled. */
typedef void (*import_done_cb)(void *arg, int rc, const struct import_error *err, json_t *answer,
                               const char *location);

/* ---- co-occurrence tables ---- */

struct pmi_import;

struct pmi_import_params {
    double pmi_tolerance;       /* see COOC_IMPORT_PMI_TOLERANCE */
    int64_t min_item_frequency; /* recorded in params when > 0 (provenance) */
    int64_t max_group_size;     /* likewise */
    const char *format;         /* "csv", "tsv", "ndjson" (recorded) */
};

/* Starts an import of at most max_rows rows. Returns 0 and *out (owned:
 * pmi_import_destroy), -EBUSY (one is running), -ESHUTDOWN, -ENOMEM. */
int pmi_import_create(struct app *app, uint64_t max_rows, struct pmi_import **out);

/* One row (ids borrowed). Returns 0, -EDOM (a second diagonal row for an
 * item), -EINVAL (pmi on some rows only), -E2BIG, -ENOMEM; err filled
 * with line (and the item). */
int pmi_import_add(struct pmi_import *im, const char *item1, size_t len1, const char *item2,
                   size_t len2, uint32_t cooc, int has_pmi, double pmi, unsigned long line,
                   struct import_error *err);

/* Rows and bytes held so far. */
uint64_t pmi_import_rows(const struct pmi_import *im);
size_t pmi_import_bytes(const struct pmi_import *im);

/* Checks and stores the table (see the top of this file); done(arg, ...)
 * follows on the loop thread. params is copied. im must stay alive until
 * done was called, and be destroyed after. */
void pmi_import_commit(struct pmi_import *im, const struct pmi_import_params *params,
                       import_done_cb done, void *arg);

void pmi_import_destroy(struct pmi_import *im);

/* ---- embeddings ---- */

struct model_import;

/* max_rows bounds the lines (items), max_dims each embedding. */
int model_import_create(struct app *app, uint64_t max_rows, uint32_t max_dims,
                        struct model_import **out);

/* One item (id and values borrowed). -EDOM: a repeated id or another
 * number of dimensions than the first line (err: line, item); -E2BIG,
 * -ENOMEM. */
int model_import_add(struct model_import *im, const char *id, size_t len, const float *values,
                     uint32_t dims, unsigned long line, struct import_error *err);

uint64_t model_import_rows(const struct model_import *im);

/* Stores the model; when activate, it becomes the active model (loaded
 * for serving) before done is called. Same contract as pmi_import_commit. */
void model_import_commit(struct model_import *im, int activate, const char *format,
                         import_done_cb done, void *arg);

void model_import_destroy(struct model_import *im);

#endif
