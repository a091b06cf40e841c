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
#include "serving/loader.h"
#include "storage/models.h"
#include "storage/store.h"

/* What a load needs from the loop thread's config, copied when it starts
 * (the config may reload meanwhile). */
struct load_params {
    char state_dir[1024];
    int activate; /* the active model: precompute its lists (when not too big) */
    uint32_t topk;
    int64_t precompute_max;
    int threads;
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
};

static const struct loader_ops model_ops;

static struct serving *serving_of(struct app *app)
{
    if (!app->serving) {
        struct serving *sv = calloc(1, sizeof(struct serving));
        if (!sv)
            return NULL;
        loader_init(&sv->active, app->loop, &model_ops, NULL);
        loader_init(&sv->other, app->loop, &model_ops, NULL);
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
    for (uint32_t i = 0; i < m->data.n; i++)
        b += strlen(m->ids[i]) + 1 + (m->titles[i] ? strlen(m->titles[i]) + 1 : 0) +
             (m->artists[i] ? strlen(m->artists[i]) + 1 : 0);
    return b;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int serving_model_build(struct store *s, const char *id, const char *pmi_job,
                        struct model_data *data, uint32_t topk, int threads, int precompute,
                        struct served_model **out)
{
    struct store_item_names names = {0};
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
    if ((rc = store_item_names_load(s, &names)) != 0)
        goto out;
    uint32_t n = m->data.n;
    m->ids = calloc(n + 1, sizeof(char *));
    m->titles = calloc(n + 1, sizeof(char *));
    m->artists = calloc(n + 1, sizeof(char *));
    m->by_id = malloc(sizeof(uint32_t) * (n + 1));
    m->rank = malloc(sizeof(uint32_t) * (n + 1));
    uint32_t *rank = m->rank;
    rc = -ENOMEM;
    if (!m->ids || !m->titles || !m->artists || !m->by_id || !m->rank)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = m->data.keys[i];
        const char *iid = k <= names.max_key ? names.id[k] : NULL;
        if (!iid) { /* an item vanished from storage: cannot happen, items are never deleted */
            rc = -EBADMSG;
            goto out;
        }
        m->ids[i] = strdup(iid);
        m->titles[i] = dup_or_null(names.title[k]);
        m->artists[i] = dup_or_null(names.artist[k]);
        m->by_id[i] = i;
    }
    /* ties in similarity are broken by id: rank = position in id order */
    qsort_r(m->by_id, n, sizeof *m->by_id, by_id_cmp, m);
    for (uint32_t r = 0; r < n; r++)
        rank[m->by_id[r]] = r;
    m->load_seconds = clock_mono_s() - t0;
    rc = 0;
    if (n > 0) {
        int err = 0;
        m->index = knn_index_create(m->data.embedding, n, m->data.dimensions,
                                    m->data.dimensions, rank, &err);
        if (!m->index) {
            rc = err ? err : -ENOMEM;
            goto out;
        }
        if (precompute) {
            double t1 = clock_mono_s();
            struct knn_params kp;
            knn_params_init(&kp);
            kp.k = topk;
            kp.threads = threads;
            if ((rc = knn_index_precompute(m->index, &kp, NULL, NULL)) != 0)
                goto out;
            m->precomputed = 1;
            m->precompute_seconds = clock_mono_s() - t1;
        }
    }
out:
    store_item_names_deinit(&names);
    if (rc != 0) {
        served_model_unref(m);
        return rc;
    }
    m->bytes = served_model_bytes(m); /* here, off the loop: it walks every name */
    *out = m;
    return 0;
}

static void params_of(struct app *app, int activate, struct load_params *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->state_dir, sizeof p->state_dir, "%s", app->cfg.state_dir);
    p->activate = activate;
    p->topk = (uint32_t)app->cfg.serving_topk;
    p->precompute_max = app->cfg.serving_precompute_max_items;
    p->threads = (int)app->cfg.jobs_threads;
}

/* Pool thread (or start-up): reads the model's record and file, then
 * builds it. */
static int model_build(const char *id, const struct load_params *p, struct served_model **out)
{
    struct store_error serr;
    struct store_model rec = {0};
    struct model_data data = {0};
    int rc;
    struct store *s = store_open(p->state_dir, &serr);
    if (!s)
        return -EIO;
    if ((rc = store_model_get(s, id, &rec)) != 0)
        goto out;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/models", p->state_dir);
    double t0 = clock_mono_s();
    if ((rc = model_file_read(dir, rec.file, &data)) != 0)
        goto out;
    double file_seconds = clock_mono_s() - t0;
    int precompute = p->activate && (int64_t)data.n <= p->precompute_max;
    rc = serving_model_build(s, id, rec.pmi_job, &data, p->topk, p->threads, precompute, out);
    if (rc == 0)
        (*out)->load_seconds += file_seconds;
out:
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
    log_info("serving: model %s active (%u items x %u dims, loaded in %.2fs, top-%u lists "
             "in %.2fs, %.1f MiB)",
             m->id, m->data.n, m->data.dimensions, m->load_seconds, topk, m->precompute_seconds,
             (double)m->bytes / 1048576.0);
}

static void model_loaded(void *ud, const char *id, const void *params, void *obj, int rc)
{
    const struct load_params *p = params;
    if (rc != 0)
        log_warn("serving: cannot load model %s: %s", id, strerror(-rc));
    else if (p->activate)
        log_active(obj, p->topk);
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

int serving_load_active_sync(struct app *app)
{
    struct store_model rec;
    int rc = store_model_active(app->store, &rec);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    struct serving *sv = serving_of(app);
    if (!sv) {
        store_model_deinit(&rec);
        return -ENOMEM;
    }
    struct load_params p;
    params_of(app, 1, &p);
    struct served_model *m = NULL;
    rc = model_build(rec.id, &p, &m);
    store_model_deinit(&rec);
    if (rc != 0)
        return rc;
    loader_put(&sv->active, m->id, m);
    log_active(m, p.topk);
    return 0;
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
        cb(arg, NULL, -ENODATA);
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
    free(sv);
    app->serving = NULL;
}
