/*
 * POST /v1/models/import behind the HTTP layer (see import.h): embeddings
 * from another trainer (BigQuery ML's ML.WEIGHTS as the seed exports them,
 * Spark ALS factors, ...) become a model exactly like a train job's: the
 * same <state>/models/<model>.emb file (storage/model_file.h: keys
 * ascending, float32 rows) and model row, then, when asked, activation by
 * the same path as POST /v1/models/{id}/activate (serving_activate). The
 * model id is "m<seq>" with a seq reserved from the job sequence, so it
 * never collides with a trained model's id; its row has no job and
 * params.source = "import".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/array.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/strtab.h"
#include "base/thread.h"
#include "conf/app.h"
#include "jobs/import.h"
#include "jobs/import_run.h"
#include "jobs/jobs.h"
#include "serving/serving.h"
#include "storage/model_file.h"
#include "storage/models.h"

struct model_import {
    struct import_run run;
    struct app *app;
    struct strtab ids;
    unsigned long *first_line; /* [ids] line of each id, for duplicate messages */
    uint64_t lines_cap;
    float *values; /* [ids × dims], local order until prepare sorts by key */
    uint64_t values_cap;
    uint32_t dims;
    uint32_t max_dims;
    uint64_t max_rows;
    struct model_data data; /* the file's content (prepare) */
    int activate;
    char format[16];
    int64_t seq;
    char model[40];
    char file[64];
    int64_t created_ms;
    double t_begin, t_commit, t_sort, t_write;
    int file_written;
    struct store_model rec;
    json_t *answer;
    char location[64];
    import_done_cb done;
    void *arg;
};

static int model_imports_running; /* loop thread */

int model_import_create(struct app *app, uint64_t max_rows, uint32_t max_dims,
                        struct model_import **out)
{
    ASSERT_LOOP_THREAD();
    *out = NULL;
    if (model_imports_running > 0)
        return -EBUSY;
    struct model_import *im = calloc(1, sizeof *im);
    if (!im)
        return -ENOMEM;
    int rc = jobs_reserve_id(app->jobs, &im->seq, im->file, sizeof im->file);
    if (rc != 0) {
        free(im);
        return rc;
    }
    snprintf(im->model, sizeof im->model, "m%lld", (long long)im->seq);
    snprintf(im->file, sizeof im->file, "%s.emb", im->model);
    im->app = app;
    im->max_rows = max_rows;
    im->max_dims = max_dims;
    strtab_init(&im->ids, max_rows > 0 && max_rows < UINT32_MAX ? (uint32_t)max_rows : 0);
    im->created_ms = jobs_now_ms();
    im->t_begin = clock_mono_s();
    model_imports_running++;
    *out = im;
    return 0;
}

void model_import_destroy(struct model_import *im)
{
    if (!im)
        return;
    strtab_deinit(&im->ids);
    free(im->first_line);
    free(im->values);
    model_data_deinit(&im->data);
    import_keys_deinit(&im->run.keys);
    free(im->rec.params);
    json_decref(im->answer);
    model_imports_running--;
    free(im);
}

uint64_t model_import_rows(const struct model_import *im)
{
    return im->ids.n;
}

int model_import_add(struct model_import *im, const char *id, size_t len, const float *values,
                     uint32_t dims, unsigned long line, struct import_error *err)
{
    uint32_t idx;
    int added, rc;
    err->line = line;
    if (im->dims == 0) {
        im->dims = dims;
    } else if (dims != im->dims) {
        char x[88];
        import_error_item(err, 1, id, len);
        snprintf(err->message, sizeof err->message,
                 "the embedding of \"%s\" has %u values; the first line's has %u: every "
                 "item needs the same number of dimensions",
                 import_short_id(x, sizeof x, id, len), dims, im->dims);
        return -EDOM;
    }
    if (im->max_rows && im->ids.n >= im->max_rows) {
        snprintf(err->message, sizeof err->message, "more lines than limits.max_import_rows (%llu)",
                 (unsigned long long)im->max_rows);
        return -E2BIG;
    }
    rc = strtab_intern(&im->ids, id, len, &idx, &added);
    if (rc == -E2BIG) {
        snprintf(err->message, sizeof err->message, "too many items");
        return -E2BIG;
    }
    if (rc < 0)
        return rc;
    if (!added) {
        char x[88];
        import_error_item(err, 1, id, len);
        snprintf(err->message, sizeof err->message,
                 "id \"%s\" appears again (first on line %lu): ids must be unique",
                 import_short_id(x, sizeof x, id, len), im->first_line[idx]);
        return -EDOM;
    }
    if ((rc = array_grow((void **)&im->first_line, &im->lines_cap, (uint64_t)idx + 1,
                         sizeof *im->first_line, 1024)) < 0 ||
        (rc = array_grow((void **)&im->values, &im->values_cap, ((uint64_t)idx + 1) * dims,
                         sizeof *im->values, 1024)) < 0) {
        snprintf(err->message, sizeof err->message, "cannot hold the embeddings");
        return rc;
    }
    im->first_line[idx] = line;
    memcpy(im->values + (uint64_t)idx * dims, values, sizeof *values * dims);
    return 0;
}

/* ---- worker stages ---- */

struct keyed {
    uint32_t key, local;
};

static int keyed_cmp(const void *x, const void *y)
{
    const struct keyed *a = x, *b = y;
    return (a->key > b->key) - (a->key < b->key);
}

static int write_file(struct model_import *im)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/models", im->run.state_dir);
    mkdir(dir, 0750);
    int rc = model_file_write(dir, im->file, &im->data);
    if (rc != 0)
        snprintf(im->run.err.message, sizeof im->run.err.message, "cannot write %.300s/%s: %s", dir,
                 im->file, strerror(-rc));
    else
        im->file_written = 1;
    return rc;
}

/* Puts the rows in ascending key order in place: row d of the result is
 * row order[d].local of the input; each cycle of the permutation is
 * followed once with one spare row. */
static int permute_rows(float *v, uint32_t n, uint32_t dims, const struct keyed *order)
{
    unsigned char *done = calloc((size_t)n / 8 + 1, 1);
    float *tmp = malloc(sizeof *tmp * dims);
    size_t row = sizeof *v * dims;
    if (!done || !tmp) {
        free(done);
        free(tmp);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (done[i / 8] & (1u << (i % 8)) || order[i].local == i) {
            done[i / 8] |= (unsigned char)(1u << (i % 8));
            continue;
        }
        memcpy(tmp, v + (size_t)i * dims, row);
        uint32_t d = i;
        for (;;) {
            uint32_t s = order[d].local;
            done[d / 8] |= (unsigned char)(1u << (d % 8));
            if (s == i) {
                memcpy(v + (size_t)d * dims, tmp, row);
                break;
            }
            memcpy(v + (size_t)d * dims, v + (size_t)s * dims, row);
            d = s;
        }
    }
    free(done);
    free(tmp);
    return 0;
}

static int model_prepare(struct import_run *r)
{
    struct model_import *im = (struct model_import *)r;
    uint32_t n = im->ids.n;
    double t0 = clock_mono_s();
    if (n == 0) {
        snprintf(r->err.message, sizeof r->err.message, "the body has no embeddings");
        return -EDOM;
    }
    int rc = import_keys_predict(r);
    if (rc != 0)
        return rc;
    struct keyed *order = malloc(sizeof *order * n);
    uint32_t *keys = malloc(sizeof *keys * n);
    if (!order || !keys) {
        free(order);
        free(keys);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = (struct keyed){r->keys.keys[i], i};
    qsort(order, n, sizeof *order, keyed_cmp);
    for (uint32_t d = 0; d < n; d++)
        keys[d] = order[d].key;
    rc = permute_rows(im->values, n, im->dims, order);
    free(order);
    if (rc != 0) {
        free(keys);
        return rc;
    }
    im->data.n = n;
    im->data.dimensions = im->dims;
    im->data.keys = keys;
    im->data.embedding = im->values; /* moved */
    im->values = NULL;
    double t1 = clock_mono_s();
    im->t_sort = t1 - t0;
    rc = write_file(im);
    im->t_write = clock_mono_s() - t1;
    return rc;
}

static int model_rewrite(struct import_run *r)
{
    struct model_import *im = (struct model_import *)r;
    struct import_keys *k = &r->keys;
    uint32_t base = im->data.n - k->n_new;
    for (uint32_t i = 0; i < k->n_new; i++)
        im->data.keys[base + i] = k->keys[k->new_local[i]];
    return write_file(im);
}

static void model_remove_file(struct import_run *r)
{
    struct model_import *im = (struct model_import *)r;
    if (!im->file_written)
        return;
    char path[1200];
    snprintf(path, sizeof path, "%s/models/%s", im->run.state_dir, im->file);
    unlink(path);
    im->file_written = 0;
}

/* ---- loop and writer stages ---- */

static int model_record(struct import_run *r)
{
    struct model_import *im = (struct model_import *)r;
    json_t *params =
        json_pack("{s:s,s:s,s:I,s:I,s:{s:f,s:f,s:f}}", "source", "import", "format", im->format,
                  "rows_received", (json_int_t)im->data.n, "new_items", (json_int_t)r->keys.n_new,
                  "timings", "receive_seconds", im->t_commit - im->t_begin, "sort_seconds",
                  im->t_sort, "write_seconds", im->t_write);
    if (!params)
        return -ENOMEM;
    im->rec.params = json_dumps(params, JSON_COMPACT);
    json_decref(params);
    im->rec.seq = im->seq;
    im->rec.id = im->model;
    im->rec.job = "";
    im->rec.pmi_job = NULL;
    im->rec.created_ms = im->created_ms;
    im->rec.dimensions = im->dims;
    im->rec.items = im->data.n;
    im->rec.loss = "[]";
    im->rec.file = im->file;
    im->answer = json_pack("{s:s,s:I,s:i,s:I,s:b}", "model", im->model, "items",
                           (json_int_t)im->data.n, "dimensions", (int)im->dims, "new_items",
                           (json_int_t)r->keys.n_new, "active", im->activate);
    snprintf(im->location, sizeof im->location, "/v1/models/%s", im->model);
    return im->rec.params && im->answer ? 0 : -ENOMEM;
}

static int model_insert(struct store *s, void *arg)
{
    struct model_import *im = arg;
    im->rec.crc = im->data.crc; /* set by the last write of the file */
    return store_model_insert(s, &im->rec, im->activate);
}

static void reply(struct model_import *im, int rc)
{
    im->done(im->arg, rc, &im->run.err, im->answer, im->location);
}

static void activated(void *arg, struct served_model *m, int rc)
{
    struct model_import *im = arg;
    if (!m) {
        /* stored and marked active, but not loadable: say so */
        snprintf(im->run.err.message, sizeof im->run.err.message,
                 "model %s was stored but cannot be loaded for serving: %s", im->model,
                 strerror(-rc));
        reply(im, rc ? rc : -EIO);
        return;
    }
    served_model_unref(m);
    reply(im, 0);
}

static void model_finished(struct import_run *r)
{
    struct model_import *im = (struct model_import *)r;
    uint32_t n = im->data.n;
    model_data_deinit(&im->data); /* the file has it */
    if (r->rc != 0) {
        reply(im, r->rc);
        return;
    }
    log_info("model import %s: %u items x %u dims (%u new items) in %.2fs%s", im->model, n,
             im->dims, r->keys.n_new, clock_mono_s() - im->t_begin, im->activate ? ", activating" : "");
    if (im->activate)
        serving_activate(im->app, im->model, activated, im);
    else
        reply(im, 0);
}

void model_import_commit(struct model_import *im, int activate, const char *format,
                         import_done_cb done, void *arg)
{
    ASSERT_LOOP_THREAD();
    im->activate = activate;
    snprintf(im->format, sizeof im->format, "%s", format ? format : "jsonl");
    im->done = done;
    im->arg = arg;
    im->t_commit = clock_mono_s();
    struct import_run *r = &im->run;
    r->app = im->app;
    r->ids = &im->ids;
    r->prepare = model_prepare;
    r->rewrite = model_rewrite;
    r->record = model_record;
    r->insert = model_insert;
    r->remove_file = model_remove_file;
    r->finished = model_finished;
    import_run_start(r);
}
