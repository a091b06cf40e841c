/*
 * Serving models (see serving.h). Loop-thread state: two cached loaders
 * (serving/loader.c), one whose cached model is the active one and one
 * for other models (an LRU bounded in bytes), with their loads in flight.
 */
#include "base/thread.h"
#include "serving/serving.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/clock.h"
#include "conf/app.h"
#include "base/log.h"
#include "ml/knn.h"
#include "serving/ann_index.h"
#include "serving/loader.h"
#include "storage/models.h"
#include "storage/store.h"

/* What a load needs from the loop thread's config, copied when it starts
 * (the config may reload meanwhile). */
struct load_params {
    char state_dir[1024];
    int activate; /* the active model: precompute its lists (when not too big) or ANN */
    int64_t precompute_max;
    struct serving_build_opts opts; /* its file names and progress are set on the pool */
    struct serving_status *status;  /* where an activation reports progress */
};

/* Two loaders (serving/loader.c): the active model is the `active`
 * loader's cached object, so activating is a load whose completion swaps
 * the cached pointer; `other` caches more models for ?model= queries and
 * exports, least recently used evicted first beyond
 * serving.model_cache_bytes (before, one other model was cached, and two
 * clients alternating ?model= between two models reloaded the whole file
 * on every request). */
struct serving {
    struct loader active;
    struct loader other;
    struct serving_status *status;
    /* the start-up load of the stored active model (serving_start_active):
     * its id while it runs on the pool, "" otherwise */
    char starting[40];
    unsigned generation; /* bumped by every activation: a start-up load
                            that ends after one is dropped */
    atomic_int cancel;   /* shutdown: builds in flight stop (serving_cancel_builds) */
};

/* The progress of the model being activated, written by the pool thread
 * that builds it and read by GET /v1/models/{id} on the loop (mutex).
 * Allocated with struct serving and freed with it (no load in flight). */
struct serving_status {
    uv_mutex_t mu;
    char id[40];
    char stage[24];
    double fraction;
    int busy;
};

static void status_progress(void *ud, const char *stage, double fraction)
{
    struct serving_status *st = ud;
    uv_mutex_lock(&st->mu);
    snprintf(st->stage, sizeof st->stage, "%s", stage);
    st->fraction = fraction;
    uv_mutex_unlock(&st->mu);
}

static void status_begin(struct serving_status *st, const char *id, int busy)
{
    uv_mutex_lock(&st->mu);
    snprintf(st->id, sizeof st->id, "%s", id);
    snprintf(st->stage, sizeof st->stage, "read");
    st->fraction = 0;
    st->busy = busy;
    uv_mutex_unlock(&st->mu);
}

int serving_loading(struct app *app, const char *model_id, double *fraction, char *stage,
                    size_t stage_size)
{
    ASSERT_LOOP_THREAD();
    struct serving *sv = app->serving;
    if (!sv || !sv->status)
        return 0;
    struct serving_status *st = sv->status;
    uv_mutex_lock(&st->mu);
    int hit = st->busy && strcmp(st->id, model_id) == 0;
    if (hit) {
        *fraction = st->fraction;
        snprintf(stage, stage_size, "%s", st->stage);
    }
    uv_mutex_unlock(&st->mu);
    return hit;
}

static const struct loader_ops model_ops;

static struct serving *serving_of(struct app *app)
{
    if (!app->serving) {
        struct serving *sv = calloc(1, sizeof(struct serving));
        struct serving_status *st = calloc(1, sizeof *st);
        if (!sv || !st || uv_mutex_init(&st->mu) != 0) {
            free(sv);
            free(st);
            return NULL;
        }
        sv->status = st;
        loader_init(&sv->active, app->loop, &model_ops, sv);
        loader_init(&sv->other, app->loop, &model_ops, sv);
        app->serving = sv;
    }
    return app->serving;
}

void served_model_ref(struct served_model *m)
{
    if (m)
        m->refs++;
}

void served_model_unref(struct served_model *m)
{
    if (!m || --m->refs > 0)
        return;
    for (uint32_t i = 0; m->ids && i < m->data.n; i++) {
        free(m->ids[i]);
        free(m->titles[i]);
        free(m->artists[i]);
    }
    free(m->ids);
    free(m->titles);
    free(m->artists);
    free(m->by_id);
    free(m->rank);
    knn_index_destroy(m->index);
    ann_index_destroy(m->ann);
    model_data_deinit(&m->data);
    free(m);
}

static int by_id_cmp(const void *a, const void *b, void *arg)
{
    const struct served_model *m = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return strcmp(m->ids[x], m->ids[y]);
}

int64_t served_model_find(const struct served_model *m, const char *id)
{
    uint32_t lo = 0, hi = m->data.n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->ids[m->by_id[mid]], id);
        if (c == 0)
            return m->by_id[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

size_t served_model_bytes(const struct served_model *m)
{
    size_t b = sizeof *m + (size_t)m->data.n * (4 + 4 + 4 + 3 * sizeof(char *)) +
               (size_t)m->data.n * m->data.dimensions * sizeof(float);
    if (m->index)
        b += knn_index_bytes(m->index);
    b += ann_index_bytes(m->ann);
    for (uint32_t i = 0; i < m->data.n; i++)
        b += strlen(m->ids[i]) + 1 + (m->titles[i] ? strlen(m->titles[i]) + 1 : 0) +
             (m->artists[i] ? strlen(m->artists[i]) + 1 : 0);
    return b;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void serving_build_opts_init(struct app *app, struct serving_build_opts *o)
{
    const struct config *c = &app->cfg;
    *o = (struct serving_build_opts){
        .topk = (uint32_t)c->serving_topk,
        .threads = (int)c->jobs_threads,
        .precompute = 1,
        .mode = strcmp(c->serving_index, "ann") == 0     ? SERVING_INDEX_ANN
                : strcmp(c->serving_index, "exact") == 0 ? SERVING_INDEX_EXACT
                                                         : SERVING_INDEX_AUTO,
        .ann_min_items = c->serving_ann_min_items,
        .ann_ef_search = (uint32_t)c->serving_ann_ef_search,
    };
}

int serving_build_wants_ann(const struct serving_build_opts *o, uint32_t n)
{
    if (n < 2)
        return 0; /* nothing to search */
    return o->mode == SERVING_INDEX_ANN ||
           (o->mode == SERVING_INDEX_AUTO && (int64_t)n >= o->ann_min_items);
}

const char *served_model_index_kind(const struct served_model *m)
{
    return m->ann ? "ann" : "exact";
}

static void report(const struct serving_build_opts *o, const char *stage, double f)
{
    if (o->progress)
        o->progress(o->progress_ud, stage, f);
}

static int cancelled(const struct serving_build_opts *o)
{
    return o->cancel && atomic_load(o->cancel);
}

/* Progress of the precompute: 0.1..1 of the build. */
static int on_precompute(void *ud, const struct knn_progress *p)
{
    report(ud, "precompute", 0.1 + 0.9 * p->fraction);
    return cancelled(ud);
}

/* Progress of the ANN load or graph build (0.1..0.6), its lists
 * (0.6..0.9) and recall sample (0.9..1). */
static int on_ann(void *ud, const char *stage, double f)
{
    report(ud, stage,
           strcmp(stage, "ann-recall") == 0  ? 0.9 + 0.1 * f
           : strcmp(stage, "ann-lists") == 0 ? 0.6 + 0.3 * f
                                             : 0.1 + 0.5 * f);
    return cancelled(ud);
}

/* The index of m as o says: ANN, precomputed lists, or plain scans. */
static int build_index(struct served_model *m, const struct serving_build_opts *o)
{
    int rc = 0;
    uint32_t n = m->data.n;
    report(o, "normalise", 0.1);
    m->index = knn_index_create(m->data.embedding, n, m->data.dimensions, m->data.dimensions,
                                m->rank, &rc);
    if (!m->index)
        return rc ? rc : -ENOMEM;
    double t1 = clock_mono_s();
    if (serving_build_wants_ann(o, n)) {
        struct ann_params ap;
        ann_params_init(&ap);
        ap.threads = o->threads;
        if (o->ann_ef_search)
            ap.ef_search = o->ann_ef_search;
        /* lists as long as the exact path's, within the graph's candidate
         * pool (a longer list would need a wider search than a query's) */
        uint32_t list_k = o->topk < ap.ef_search ? o->topk : ap.ef_search;
        m->ann = ann_index_obtain(o->file ? o->models_dir : NULL, o->file, m->data.crc, m->index,
                                  m->data.embedding, m->rank, n, m->data.dimensions, list_k, &ap,
                                  on_ann, (void *)o, &rc);
        return m->ann ? 0 : rc;
    }
    if (o->precompute) {
        struct knn_params kp;
        knn_params_init(&kp);
        kp.k = o->topk;
        kp.threads = o->threads;
        if ((rc = knn_index_precompute(m->index, &kp, on_precompute, (void *)o)) != 0)
            return rc;
        m->precomputed = 1;
        m->precompute_seconds = clock_mono_s() - t1;
    }
    return 0;
}

/* Builds m's names and id order from names (borrowed), then its index. */
static int build_names(struct served_model *m, const struct store_item_names *names)
{
    uint32_t n = m->data.n;
    m->ids = calloc(n + 1, sizeof(char *));
    m->titles = calloc(n + 1, sizeof(char *));
    m->artists = calloc(n + 1, sizeof(char *));
    m->by_id = malloc(sizeof(uint32_t) * (n + 1));
    m->rank = malloc(sizeof(uint32_t) * (n + 1));
    if (!m->ids || !m->titles || !m->artists || !m->by_id || !m->rank)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = m->data.keys[i];
        const char *iid = k <= names->max_key ? names->id[k] : NULL;
        if (!iid) /* an item vanished from storage: cannot happen, items are never deleted */
            return -EBADMSG;
        m->ids[i] = strdup(iid);
        m->titles[i] = dup_or_null(names->title[k]);
        m->artists[i] = dup_or_null(names->artist[k]);
        if (!m->ids[i])
            return -ENOMEM;
        m->by_id[i] = i;
    }
    /* ties in similarity are broken by id: rank = position in id order */
    qsort_r(m->by_id, n, sizeof *m->by_id, by_id_cmp, m);
    for (uint32_t r = 0; r < n; r++)
        m->rank[m->by_id[r]] = r;
    return 0;
}

int serving_model_build_names(const struct store_item_names *names, const char *id,
                              const char *pmi_job, struct model_data *data,
                              const struct serving_build_opts *o, struct served_model **out)
{
    int rc;
    double t0 = clock_mono_s();
    *out = NULL;
    struct served_model *m = calloc(1, sizeof *m);
    if (!m) {
        model_data_deinit(data);
        return -ENOMEM;
    }
    m->refs = 1;
    m->data = *data; /* taken */
    memset(data, 0, sizeof *data);
    snprintf(m->id, sizeof m->id, "%s", id);
    snprintf(m->pmi_job, sizeof m->pmi_job, "%s", pmi_job ? pmi_job : "");
    report(o, "names", 0.05);
    if ((rc = build_names(m, names)) != 0)
        goto out;
    m->load_seconds = clock_mono_s() - t0;
    if (m->data.n > 0)
        rc = build_index(m, o);
    report(o, "ready", 1.0);
out:
    if (rc != 0) {
        served_model_unref(m);
        return rc;
    }
    m->bytes = served_model_bytes(m); /* here, off the loop: it walks every name */
    *out = m;
    return 0;
}

int serving_model_build(struct store *s, const char *id, const char *pmi_job,
                        struct model_data *data, const struct serving_build_opts *o,
                        struct served_model **out)
{
    struct store_item_names names = {0};
    *out = NULL;
    int rc = store_item_names_load(s, &names);
    if (rc != 0) {
        model_data_deinit(data);
        return rc;
    }
    rc = serving_model_build_names(&names, id, pmi_job, data, o, out);
    store_item_names_deinit(&names);
    return rc;
}

static void params_of(struct app *app, int activate, struct load_params *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->state_dir, sizeof p->state_dir, "%s", app->cfg.state_dir);
    p->activate = activate;
    p->precompute_max = app->cfg.serving_precompute_max_items;
    serving_build_opts_init(app, &p->opts);
    if (!activate) /* ?model= loads: exact scans, no index to build for one query */
        p->opts.mode = SERVING_INDEX_EXACT;
    p->status = app->serving ? ((struct serving *)app->serving)->status : NULL;
    /* the loads' params live until they end, and struct serving outlives them */
    p->opts.cancel = app->serving ? &((struct serving *)app->serving)->cancel : NULL;
}

void serving_cancel_builds(struct app *app)
{
    ASSERT_LOOP_THREAD();
    struct serving *sv = app->serving;
    if (sv)
        atomic_store(&sv->cancel, 1);
}

/* Pool thread (or start-up): reads the model's record and file, then
 * builds it, reporting progress to p->status when activating. */
static int model_build(const char *id, const struct load_params *p, struct served_model **out)
{
    struct store_error serr;
    struct store_model rec = {0};
    struct model_data data = {0};
    struct serving_build_opts o = p->opts;
    char dir[1100];
    int rc;
    if (p->activate && p->status) {
        status_begin(p->status, id, 1);
        o.progress = status_progress;
        o.progress_ud = p->status;
    }
    struct store *s = store_open(p->state_dir, &serr);
    if (!s) {
        rc = -EIO;
        goto out;
    }
    if ((rc = store_model_get(s, id, &rec)) != 0)
        goto out;
    snprintf(dir, sizeof dir, "%s/models", p->state_dir);
    double t0 = clock_mono_s();
    if ((rc = model_file_read(dir, rec.file, &data)) != 0)
        goto out;
    double file_seconds = clock_mono_s() - t0;
    o.precompute = p->activate && (int64_t)data.n <= p->precompute_max;
    o.models_dir = dir;
    o.file = rec.file;
    rc = serving_model_build(s, id, rec.pmi_job, &data, &o, out);
    if (rc == 0)
        (*out)->load_seconds += file_seconds;
out:
    if (p->activate && p->status)
        status_begin(p->status, "", 0);
    store_model_deinit(&rec);
    store_close(s);
    return rc;
}

static int model_load(const char *id, const void *params, void **out)
{
    struct served_model *m = NULL;
    int rc = model_build(id, params, &m);
    *out = m;
    return rc;
}

static void model_ref(void *m)
{
    served_model_ref(m);
}

static void model_unref(void *m)
{
    served_model_unref(m);
}

static size_t model_bytes(const void *m)
{
    return ((const struct served_model *)m)->bytes;
}

static void model_call(loader_fn fn, void *arg, void *m, int rc)
{
    serving_cb cb = (serving_cb)fn;
    if (cb)
        cb(arg, m, rc);
    else
        served_model_unref(m);
}

static void log_active(const struct served_model *m, uint32_t topk)
{
    if (m->ann) {
        const struct ann_index_stats *st = ann_index_stats(m->ann);
        log_info("serving: model %s active (%u items x %u dims, loaded in %.2fs, ANN index %s "
                 "in %.2fs, recall@10 cosine %.3f dot %.3f, %.1f MiB)",
                 m->id, m->data.n, m->data.dimensions, m->load_seconds,
                 st->loaded ? "read" : "built", st->loaded ? st->load_seconds : st->build_seconds,
                 st->recall_cosine, st->recall_dot, (double)served_model_bytes(m) / 1048576.0);
        return;
    }
    log_info("serving: model %s active (%u items x %u dims, loaded in %.2fs, top-%u lists "
             "in %.2fs, %.1f MiB)",
             m->id, m->data.n, m->data.dimensions, m->load_seconds, topk, m->precompute_seconds,
             (double)m->bytes / 1048576.0);
}

static void model_loaded(void *ud, const char *id, const void *params, void *obj, int rc)
{
    const struct load_params *p = params;
    struct serving *sv = ud;
    if (rc != 0) {
        log_warn("serving: cannot load model %s: %s", id, strerror(-rc));
    } else if (p->activate) {
        sv->generation++;
        log_active(obj, p->opts.topk);
    }
}

static const struct loader_ops model_ops = {
    .params_size = sizeof(struct load_params),
    .load = model_load,
    .ref = model_ref,
    .unref = model_unref,
    .call = model_call,
    .loaded = model_loaded,
    .bytes = model_bytes,
};

/* Model ids are short ("m12"); a longer one names no model. */
static int id_fits(const char *id)
{
    return strlen(id) < sizeof(((struct served_model *)0)->id);
}

void serving_install_active(struct app *app, struct served_model *m)
{
    ASSERT_LOOP_THREAD();
    struct serving *sv = serving_of(app);
    if (!sv) { /* cannot happen after start-up, which created it */
        served_model_unref(m);
        return;
    }
    loader_put(&sv->active, m->id, m); /* the swap: queries run on this thread */
    sv->generation++;
    log_active(m, (uint32_t)app->cfg.serving_topk);
}

void serving_activate(struct app *app, const char *model_id, serving_cb cb, void *arg)
{
    ASSERT_LOOP_THREAD();
    struct serving *sv = serving_of(app);
    if (!sv || !id_fits(model_id)) {
        if (cb)
            cb(arg, NULL, sv ? -ENOENT : -ENOMEM);
        return;
    }
    struct load_params p;
    params_of(app, 1, &p);
    loader_get(&sv->active, model_id, &p, (loader_fn)cb, arg);
}

/* The start-up load: built on the pool like an activation (with its
 * progress), installed on the loop unless an activation came first. */
struct start_load {
    uv_work_t work;
    struct app *app;
    struct load_params p;
    char id[40];
    unsigned generation;
    struct served_model *m;
    int rc;
};

static void start_work(uv_work_t *w)
{
    struct start_load *sl = w->data;
    sl->rc = model_build(sl->id, &sl->p, &sl->m);
}

static void start_done(uv_work_t *w, int status)
{
    struct start_load *sl = w->data;
    struct serving *sv = sl->app->serving;
    int rc = status < 0 ? status : sl->rc;
    sv->starting[0] = '\0';
    if (rc == -ECANCELED) {
        log_info("serving: loading model %s stopped by the shutdown", sl->id);
    } else if (rc != 0) {
        log_error("serving: cannot load the active model %s: %s; similar-items answers 409 "
                  "until a model is activated",
                  sl->id, strerror(-rc));
    } else if (sv->generation != sl->generation) {
        log_info("serving: model %s loaded at start-up, but another was activated meanwhile; "
                 "dropped",
                 sl->id);
        served_model_unref(sl->m);
    } else {
        loader_put(&sv->active, sl->m->id, sl->m);
        sv->generation++;
        log_active(sl->m, sl->p.opts.topk);
    }
    free(sl);
}

int serving_start_active(struct app *app)
{
    ASSERT_LOOP_THREAD();
    struct store_model rec;
    int rc = store_model_active(app->store, &rec);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    struct serving *sv = serving_of(app);
    struct start_load *sl = sv && id_fits(rec.id) ? calloc(1, sizeof *sl) : NULL;
    if (!sl) {
        store_model_deinit(&rec);
        return sv && !id_fits(rec.id) ? -ENOENT : -ENOMEM;
    }
    sl->app = app;
    snprintf(sl->id, sizeof sl->id, "%s", rec.id);
    store_model_deinit(&rec);
    params_of(app, 1, &sl->p);
    sl->generation = sv->generation;
    sl->work.data = sl;
    rc = uv_queue_work(app->loop, &sl->work, start_work, start_done);
    if (rc != 0) {
        free(sl);
        return rc;
    }
    snprintf(sv->starting, sizeof sv->starting, "%s", sl->id);
    log_info("serving: loading the active model %s on the worker pool (/readyz is 503 until "
             "it serves)",
             sl->id);
    return 0;
}

const char *serving_starting(struct app *app)
{
    ASSERT_LOOP_THREAD();
    struct serving *sv = app->serving;
    return sv && sv->starting[0] ? sv->starting : NULL;
}

struct served_model *serving_active(struct app *app)
{
    ASSERT_LOOP_THREAD();
    return app->serving ? loader_peek(&((struct serving *)app->serving)->active, NULL) : NULL;
}

void serving_get(struct app *app, const char *model_id, serving_cb cb, void *arg)
{
    ASSERT_LOOP_THREAD();
    struct serving *sv = serving_of(app);
    if (!sv) {
        cb(arg, NULL, -ENOMEM);
        return;
    }
    struct served_model *m = loader_peek(&sv->active, model_id && *model_id ? model_id : NULL);
    if (m) {
        served_model_ref(m);
        cb(arg, m, 0);
        return;
    }
    if (!model_id || !*model_id) {
        cb(arg, NULL, sv->starting[0] ? -EAGAIN : -ENODATA);
        return;
    }
    if (!id_fits(model_id)) {
        cb(arg, NULL, -ENOENT);
        return;
    }
    struct load_params p;
    params_of(app, 0, &p);
    loader_set_budget(&sv->other, (size_t)app->cfg.serving_model_cache_bytes);
    loader_get(&sv->other, model_id, &p, (loader_fn)cb, arg);
}

void serving_cache_stats(struct app *app, struct serving_cache_stats *out)
{
    struct serving *sv = app->serving;
    memset(out, 0, sizeof *out);
    if (!sv)
        return;
    out->models = sv->other.cached;
    out->bytes = sv->other.bytes;
    out->budget = sv->other.budget;
    out->loads = sv->other.loads_done;
    out->evictions = sv->other.evictions;
}

void serving_deinit(struct app *app)
{
    struct serving *sv = app->serving;
    if (!sv)
        return;
    loader_deinit(&sv->active);
    loader_deinit(&sv->other);
    uv_mutex_destroy(&sv->status->mu);
    free(sv->status);
    free(sv);
    app->serving = NULL;
}
