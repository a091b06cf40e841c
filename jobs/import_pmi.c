/*
 * POST /v1/pmi/import behind the HTTP layer (see import.h): rows are
 * interned (ids → local indices) and kept by ml/cooc_import.c; the commit
 * checks them, predicts item keys, builds the seed's matrix and writes it
 * as <state>/pmi/<job>.cooc exactly as the pmi job does (jobs/job_pmi.c),
 * then inserts the new items and a succeeded job record of type "pmi"
 * (params.source = "import") in one transaction. Everything that reads a
 * pmi job's result finds the file by the job id, so nothing else changes.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strtab.h"
#include "base/thread.h"
#include "conf/app.h"
#include "jobs/import.h"
#include "jobs/import_run.h"
#include "jobs/jobs.h"
#include "ml/cooc_import.h"
#include "storage/cooc_file.h"
#include "storage/jobs.h"

struct pmi_import {
    struct import_run run;
    struct app *app;
    struct strtab ids;
    struct cooc_import ci;
    struct cooc_result res;
    struct pmi_import_params params;
    char format[16];
    int64_t seq;
    char job[32];
    int64_t created_ms;
    double t_begin, t_commit, t_check, t_build, t_write;
    uint64_t rows;
    size_t peak_bytes;
    uint64_t budget; /* bytes the rows and ids may take (see pmi_import_create) */
    int file_written;
    struct store_job rec; /* texts built on the loop for the writer */
    json_t *answer;
    char location[64];
    import_done_cb done;
    void *arg;
};

static int pmi_imports_running; /* loop thread */

int pmi_import_create(struct app *app, uint64_t max_rows, struct pmi_import **out)
{
    ASSERT_LOOP_THREAD();
    *out = NULL;
    if (pmi_imports_running > 0)
        return -EBUSY;
    struct pmi_import *im = calloc(1, sizeof *im);
    if (!im)
        return -ENOMEM;
    int rc = jobs_reserve_id(app->jobs, &im->seq, im->job, sizeof im->job);
    if (rc != 0) {
        free(im);
        return rc;
    }
    im->app = app;
    strtab_init(&im->ids, 0);
    cooc_import_init(&im->ci, max_rows);
    /* A real table names each item on many rows (2 per pair + its diagonal),
     * so ~14 bytes per row dominate; a hostile one naming two new ids per
     * row would cost ~100 bytes per ~10 bytes of body. Bound the whole: 48
     * bytes per allowed row (rows + ids + per-item arrays of a sparse real
     * table fit) plus 1 MiB. */
    im->budget = (max_rows ? max_rows : 100000000) * 48 + (1ULL << 20);
    im->created_ms = jobs_now_ms();
    im->t_begin = clock_mono_s();
    pmi_imports_running++;
    *out = im;
    return 0;
}

void pmi_import_destroy(struct pmi_import *im)
{
    if (!im)
        return;
    strtab_deinit(&im->ids);
    cooc_import_deinit(&im->ci);
    cooc_result_deinit(&im->res);
    import_keys_deinit(&im->run.keys);
    free(im->rec.params);
    free(im->rec.result);
    free(im->rec.progress);
    json_decref(im->answer);
    pmi_imports_running--;
    free(im);
}

uint64_t pmi_import_rows(const struct pmi_import *im)
{
    return im->rows;
}

size_t pmi_import_bytes(const struct pmi_import *im)
{
    return cooc_import_bytes(&im->ci) + strtab_bytes(&im->ids);
}

int pmi_import_add(struct pmi_import *im, const char *item1, size_t len1, const char *item2,
                   size_t len2, uint32_t cooc, int has_pmi, double pmi, unsigned long line,
                   struct import_error *err)
{
    uint32_t a, b;
    int rc = strtab_intern(&im->ids, item1, len1, &a, NULL);
    if (rc == 0)
        rc = strtab_intern(&im->ids, item2, len2, &b, NULL);
    if (rc == 0)
        rc = cooc_import_add(&im->ci, a, b, cooc, has_pmi, pmi);
    if (rc == 0 && (im->rows & 1023) == 0 && pmi_import_bytes(im) > im->budget) {
        err->line = line;
        snprintf(err->message, sizeof err->message,
                 "the table needs more than %llu MiB to import (48 bytes per row of "
                 "limits.max_import_rows + 1 MiB): too many distinct item ids for its rows",
                 (unsigned long long)(im->budget >> 20));
        return -E2BIG;
    }
    if (rc == 0) {
        im->rows++;
        return 0;
    }
    err->line = line;
    switch (rc) {
    case -EEXIST: {
        char x[88];
        import_error_item(err, 1, item1, len1);
        import_error_item(err, 2, item2, len2);
        snprintf(err->message, sizeof err->message,
                 "a second diagonal row for item \"%s\": an item's frequency is given once",
                 import_short_id(x, sizeof x, item1, len1));
        return -EDOM;
    }
    case -EPROTO:
        snprintf(err->message, sizeof err->message,
                 has_pmi ? "this row has a pmi but the rows before it have none"
                         : "this row has no pmi but the rows before it have one");
        return -EINVAL;
    case -E2BIG:
        snprintf(err->message, sizeof err->message, "more rows than limits.max_import_rows (%llu)",
                 (unsigned long long)im->ci.max_rows);
        return -E2BIG;
    default:
        snprintf(err->message, sizeof err->message, "cannot hold the table: %s", strerror(-rc));
        return rc;
    }
}

/* ---- worker stages ---- */

static const char *id_of(const struct pmi_import *im, uint32_t i)
{
    return i < im->ids.n ? strtab_str(&im->ids, i) : "";
}

/* Turns a failed check into the answer's message and pair. */
static int issue_error(struct pmi_import *im, const struct cooc_import_issue *is)
{
    struct import_error *err = &im->run.err;
    const char *fx = id_of(im, is->item1), *fy = id_of(im, is->item2);
    char x[88], y[88];
    import_short_id(x, sizeof x, fx, strlen(fx));
    import_short_id(y, sizeof y, fy, strlen(fy));
    if (is->problem != COOC_IMPORT_EMPTY && is->problem != COOC_IMPORT_TOO_BIG &&
        is->problem != COOC_IMPORT_PMI_SUM_MISMATCH) {
        import_error_item(err, 1, fx, strlen(fx));
        import_error_item(err, 2, fy, strlen(fy));
    }
    char *m = err->message;
    size_t cap = sizeof err->message;
    switch (is->problem) {
    case COOC_IMPORT_EMPTY:
        snprintf(m, cap, "the table has no rows");
        return -EDOM;
    case COOC_IMPORT_MISSING_DIAGONAL:
        snprintf(m, cap,
                 "item \"%.120s\" has no diagonal row (\"%.120s\", \"%.120s\"): the seed's "
                 "item_cooc carries each item's frequency as cooc(item, item)",
                 x, x, x);
        return -EDOM;
    case COOC_IMPORT_DUPLICATE:
        snprintf(m, cap, "the row (\"%.120s\", \"%.120s\") appears more than once", x, y);
        return -EDOM;
    case COOC_IMPORT_MISSING_MIRROR:
        snprintf(m, cap,
                 "the row (\"%.120s\", \"%.120s\") has no mirror row (\"%.120s\", \"%.120s\"): "
                 "the seed's item_cooc holds every pair in both orientations",
                 x, y, y, x);
        return -EDOM;
    case COOC_IMPORT_COOC_MISMATCH:
        snprintf(m, cap,
                 "cooc differs between (\"%.120s\", \"%.120s\") = %.0f and (\"%.120s\", "
                 "\"%.120s\") = %.0f",
                 x, y, is->value1, y, x, is->value2);
        return -EDOM;
    case COOC_IMPORT_COOC_OVER_FREQ:
        snprintf(m, cap,
                 "cooc(\"%.120s\", \"%.120s\") = %.0f is larger than the frequency of "
                 "\"%.120s\" (%.0f, its diagonal row)",
                 x, y, is->value1, x, is->value2);
        return -EDOM;
    case COOC_IMPORT_PMI_MISMATCH:
        snprintf(m, cap,
                 "pmi of (\"%.120s\", \"%.120s\") is %.17g; recomputed from cooc, the two "
                 "frequencies and total = %llu (the sum of the diagonal) it is %.17g: is this "
                 "the seed's item_cooc (log base 2, unfiltered)?",
                 x, y, is->value1, (unsigned long long)im->ci.total, is->value2);
        return -EDOM;
    case COOC_IMPORT_PMI_SUM_MISMATCH:
        import_error_item(err, 2, fy, strlen(fy));
        snprintf(m, cap,
                 "the pmi values of the %llu rows (x, \"%.120s\") whose item x first appears "
                 "later in the body add up to %.17g; recomputed from cooc, frequencies and "
                 "total they add up to %.17g: at least one of those rows has a wrong pmi",
                 (unsigned long long)is->count, y, is->value1, is->value2);
        return -EDOM;
    case COOC_IMPORT_TOO_BIG:
        snprintf(m, cap, "the table is too large for one matrix (total %.0f over 2^53)",
                 is->value1);
        return -E2BIG;
    default:
        snprintf(m, cap, "the table is inconsistent");
        return -EDOM;
    }
}

static void pmi_dir(const struct pmi_import *im, char *dir, size_t size, char *name, size_t nsize)
{
    snprintf(dir, size, "%s/pmi", im->run.state_dir);
    snprintf(name, nsize, "%s.cooc", im->job);
}

static int write_file(struct pmi_import *im)
{
    char dir[1100], name[64];
    pmi_dir(im, dir, sizeof dir, name, sizeof name);
    mkdir(dir, 0750);
    int rc = cooc_file_write(dir, name, &im->res);
    if (rc != 0)
        snprintf(im->run.err.message, sizeof im->run.err.message, "cannot write %.300s/%s: %s", dir,
                 name, strerror(-rc));
    else
        im->file_written = 1;
    return rc;
}

static int pmi_prepare(struct import_run *r)
{
    struct pmi_import *im = (struct pmi_import *)r;
    struct cooc_import_issue is;
    double t0 = clock_mono_s();
    size_t bytes = pmi_import_bytes(im);
    if (bytes > im->peak_bytes)
        im->peak_bytes = bytes;
    int rc = cooc_import_check(&im->ci, im->params.pmi_tolerance, &is);
    if (rc == -EDOM)
        rc = issue_error(im, &is);
    if (rc != 0) {
        cooc_import_deinit(&im->ci); /* GBs at scale: free them here, not on the loop */
        return rc;
    }
    double t1 = clock_mono_s();
    im->t_check = t1 - t0;
    if ((rc = import_keys_predict(r)) != 0)
        return rc;
    rc = cooc_import_build(&im->ci, r->keys.keys, im->params.min_item_frequency,
                           im->params.max_group_size, &im->res);
    if (rc != 0) {
        snprintf(r->err.message, sizeof r->err.message, "cannot build the matrix: %s",
                 strerror(-rc));
        return rc;
    }
    cooc_import_deinit(&im->ci);
    double t2 = clock_mono_s();
    im->t_build = t2 - t1;
    rc = write_file(im);
    im->t_write = clock_mono_s() - t2;
    return rc;
}

static int pmi_rewrite(struct import_run *r)
{
    struct pmi_import *im = (struct pmi_import *)r;
    struct import_keys *k = &r->keys;
    /* new items are the last n_new of the key order, in local order */
    uint32_t base = im->res.n - k->n_new;
    for (uint32_t i = 0; i < k->n_new; i++)
        im->res.keys[base + i] = k->keys[k->new_local[i]];
    return write_file(im);
}

static void pmi_remove_file(struct import_run *r)
{
    struct pmi_import *im = (struct pmi_import *)r;
    char dir[1100], name[64];
    if (!im->file_written)
        return;
    pmi_dir(im, dir, sizeof dir, name, sizeof name);
    cooc_file_remove(dir, name);
    im->file_written = 0;
}

/* ---- loop and writer stages ---- */

static json_t *opt_int(int64_t v)
{
    return v > 0 ? json_integer((json_int_t)v) : json_null();
}

static int pmi_record(struct import_run *r)
{
    struct pmi_import *im = (struct pmi_import *)r;
    const struct cooc_result *res = &im->res;
    double total_s = clock_mono_s() - im->t_begin;
    json_t *params = json_pack("{s:s,s:s,s:f,s:o,s:o}", "source", "import", "format", im->format,
                               "pmi_tolerance", im->params.pmi_tolerance, "min_item_frequency",
                               opt_int(im->params.min_item_frequency), "max_group_size",
                               opt_int(im->params.max_group_size));
    json_t *result = json_pack(
        "{s:s,s:I,s:I,s:I,s:I,s:I,s:n,s:n,s:n,s:I,s:I,s:{s:f,s:f,s:f,s:f,s:f},s:I,s:s++}", "source",
        "import", "total", (json_int_t)res->total, "cooc_rows", (json_int_t)res->nnz,
        "matrix_items", (json_int_t)res->n, "pairs", (json_int_t)cooc_result_pairs(res),
        "valid_items", (json_int_t)res->n, "valid_groups", "memberships", "groups", "rows_received",
        (json_int_t)im->rows, "new_items", (json_int_t)r->keys.n_new, "timings", "receive_seconds",
        im->t_commit - im->t_begin, "check_seconds", im->t_check, "build_seconds", im->t_build,
        "write_seconds", im->t_write, "total_seconds", total_s, "memory_bytes",
        (json_int_t)im->peak_bytes, "file", "pmi/", im->job, ".cooc");
    json_t *progress = json_pack("{s:f,s:s}", "fraction", 1.0, "stage", "done");
    if (!params || !result || !progress) {
        json_decref(params);
        json_decref(result);
        json_decref(progress);
        return -ENOMEM;
    }
    im->rec.params = json_dumps(params, JSON_COMPACT | JSON_REAL_PRECISION(15));
    im->rec.result = json_dumps(result, JSON_COMPACT);
    im->rec.progress = json_dumps(progress, JSON_COMPACT);
    json_decref(params);
    json_decref(result);
    json_decref(progress);
    im->rec.seq = im->seq;
    im->rec.id = im->job;
    im->rec.type = "pmi";
    im->rec.state = "succeeded";
    im->rec.created_ms = im->created_ms;
    im->rec.started_ms = im->created_ms;
    im->rec.finished_ms = jobs_now_ms();
    im->rec.attempts = 1;
    im->answer =
        json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "job", im->job, "matrix_items",
                  (json_int_t)res->n, "cooc_rows", (json_int_t)res->nnz, "total",
                  (json_int_t)res->total, "pairs", (json_int_t)cooc_result_pairs(res),
                  "rows_received", (json_int_t)im->rows, "new_items", (json_int_t)r->keys.n_new);
    snprintf(im->location, sizeof im->location, "/v1/jobs/%s", im->job);
    return im->rec.params && im->rec.result && im->rec.progress && im->answer ? 0 : -ENOMEM;
}

static int pmi_insert(struct store *s, void *arg)
{
    struct pmi_import *im = arg;
    return store_job_insert(s, &im->rec);
}

static void pmi_finished(struct import_run *r)
{
    struct pmi_import *im = (struct pmi_import *)r;
    if (r->rc == 0) {
        log_info("pmi import %s: %llu rows, %u items (%u new), %llu cooc rows, total %llu in "
                 "%.2fs (check %.2fs, build %.2fs, write %.2fs)",
                 im->job, (unsigned long long)im->rows, im->res.n, r->keys.n_new,
                 (unsigned long long)im->res.nnz, (unsigned long long)im->res.total,
                 clock_mono_s() - im->t_begin, im->t_check, im->t_build, im->t_write);
    }
    cooc_result_deinit(&im->res); /* the file has it; free the memory before the reply */
    im->done(im->arg, r->rc, &r->err, im->answer, im->location);
}

void pmi_import_commit(struct pmi_import *im, const struct pmi_import_params *params,
                       import_done_cb done, void *arg)
{
    ASSERT_LOOP_THREAD();
    im->params = *params;
    if (!(im->params.pmi_tolerance >= 0))
        im->params.pmi_tolerance = COOC_IMPORT_PMI_TOLERANCE;
    snprintf(im->format, sizeof im->format, "%s", params->format ? params->format : "");
    im->params.format = im->format;
    im->done = done;
    im->arg = arg;
    im->t_commit = clock_mono_s();
    struct import_run *r = &im->run;
    r->app = im->app;
    r->ids = &im->ids;
    r->prepare = pmi_prepare;
    r->rewrite = pmi_rewrite;
    r->record = pmi_record;
    r->insert = pmi_insert;
    r->remove_file = pmi_remove_file;
    r->finished = pmi_finished;
    import_run_start(r);
}
