/*
 * Serving models (see serving.h). Loop-thread state: the active model, one
 * other cached model, and loads in flight with their waiters.
 */
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
#include "storage/models.h"
#include "storage/store.h"

struct waiter {
    serving_cb cb;
    void *arg;
    struct waiter *next;
};

struct load {
    uv_work_t work;
    struct app *app;
    char id[40];
    char state_dir[1024];
    int activate; /* make it the active model when loaded */
    uint32_t topk;
    int64_t precompute_max;
    int threads;
    struct served_model *m;
    int rc;
    struct waiter *waiters;
    struct load *next;
};

struct serving {
    struct served_model *active;
    struct served_model *other;
    struct load *loads;
};

static struct serving *serving_of(struct app *app)
{
    if (!app->serving)
        app->serving = calloc(1, sizeof(struct serving));
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
    model_data_free(&m->data);
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
        model_data_free(data);
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
    store_item_names_free(&names);
    if (rc != 0) {
        served_model_unref(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* Pool thread (or start-up): reads the model's record and file, then
 * builds it. */
static int model_build(struct load *l)
{
    struct store_error serr;
    struct store_model rec = {0};
    struct model_data data = {0};
    int rc;
    struct store *s = store_open(l->state_dir, &serr);
    if (!s)
        return -EIO;
    if ((rc = store_model_get(s, l->id, &rec)) != 0)
        goto out;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/models", l->state_dir);
    double t0 = clock_mono_s();
    if ((rc = model_file_read(dir, rec.file, &data)) != 0)
        goto out;
    double file_seconds = clock_mono_s() - t0;
    int precompute = l->activate && (int64_t)data.n <= l->precompute_max;
    rc = serving_model_build(s, l->id, rec.pmi_job, &data, l->topk, l->threads, precompute, &l->m);
    if (rc == 0)
        l->m->load_seconds += file_seconds;
out:
    store_model_clear(&rec);
    store_close(s);
    return rc;
}

static void load_work(uv_work_t *w)
{
    struct load *l = (struct load *)w;
    l->rc = model_build(l);
}

static void install(struct serving *sv, struct load *l)
{
    if (!l->m)
        return;
    if (l->activate) {
        struct served_model *old = sv->active;
        sv->active = l->m; /* the swap: queries run on this thread */
        served_model_unref(old);
        log_info("serving: model %s active (%u items x %u dims, loaded in %.2fs, top-%u lists "
                 "in %.2fs, %.1f MiB)",
                 l->m->id, l->m->data.n, l->m->data.dimensions, l->m->load_seconds, l->topk,
                 l->m->precompute_seconds, (double)served_model_bytes(l->m) / 1048576.0);
    } else {
        served_model_unref(sv->other);
        sv->other = l->m;
    }
}

static void load_done(uv_work_t *w, int status)
{
    struct load *l = (struct load *)w;
    struct serving *sv = serving_of(l->app);
    for (struct load **pp = &sv->loads; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    if (l->rc != 0)
        log_warn("serving: cannot load model %s: %s", l->id, strerror(-l->rc));
    install(sv, l);
    while (l->waiters) {
        struct waiter *wt = l->waiters;
        l->waiters = wt->next;
        served_model_ref(l->m);
        if (wt->cb)
            wt->cb(wt->arg, l->m, l->m ? 0 : l->rc);
        else
            served_model_unref(l->m);
        free(wt);
    }
    free(l);
}

static void start_load(struct app *app, const char *id, int activate, serving_cb cb, void *arg)
{
    struct serving *sv = serving_of(app);
    struct waiter *wt = calloc(1, sizeof *wt);
    if (!wt) {
        if (cb)
            cb(arg, NULL, -ENOMEM);
        return;
    }
    wt->cb = cb;
    wt->arg = arg;
    for (struct load *l = sv->loads; l; l = l->next) {
        if (strcmp(l->id, id) == 0 && l->activate == activate) {
            wt->next = l->waiters;
            l->waiters = wt;
            return;
        }
    }
    struct load *l = calloc(1, sizeof *l);
    if (!l) {
        free(wt);
        if (cb)
            cb(arg, NULL, -ENOMEM);
        return;
    }
    l->app = app;
    snprintf(l->id, sizeof l->id, "%s", id);
    snprintf(l->state_dir, sizeof l->state_dir, "%s", app->cfg.state_dir);
    l->activate = activate;
    l->topk = (uint32_t)app->cfg.serving_topk;
    l->precompute_max = app->cfg.serving_precompute_max_items;
    l->threads = (int)app->cfg.jobs_threads;
    l->waiters = wt;
    l->next = sv->loads;
    sv->loads = l;
    if (uv_queue_work(app->loop, &l->work, load_work, load_done) != 0) {
        sv->loads = l->next;
        free(l);
        free(wt);
        if (cb)
            cb(arg, NULL, -EIO);
    }
}

void serving_install_active(struct app *app, struct served_model *m)
{
    struct load l = {0};
    l.activate = 1;
    l.m = m;
    l.topk = (uint32_t)app->cfg.serving_topk;
    install(serving_of(app), &l);
}

void serving_activate(struct app *app, const char *model_id, serving_cb cb, void *arg)
{
    struct serving *sv = serving_of(app);
    if (sv->active && strcmp(sv->active->id, model_id) == 0) {
        served_model_ref(sv->active);
        if (cb)
            cb(arg, sv->active, 0);
        else
            served_model_unref(sv->active);
        return;
    }
    start_load(app, model_id, 1, cb, arg);
}

int serving_load_active_sync(struct app *app)
{
    struct store_model rec;
    int rc = store_model_active(app->store, &rec);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    struct load l = {0};
    l.app = app;
    snprintf(l.id, sizeof l.id, "%s", rec.id);
    store_model_clear(&rec);
    snprintf(l.state_dir, sizeof l.state_dir, "%s", app->cfg.state_dir);
    l.activate = 1;
    l.topk = (uint32_t)app->cfg.serving_topk;
    l.precompute_max = app->cfg.serving_precompute_max_items;
    l.threads = (int)app->cfg.jobs_threads;
    rc = model_build(&l);
    if (rc != 0)
        return rc;
    install(serving_of(app), &l);
    return 0;
}

struct served_model *serving_active(struct app *app)
{
    return app->serving ? ((struct serving *)app->serving)->active : NULL;
}

void serving_get(struct app *app, const char *model_id, serving_cb cb, void *arg)
{
    struct serving *sv = serving_of(app);
    struct served_model *m = NULL;
    if (!model_id || !*model_id)
        m = sv->active;
    else if (sv->active && strcmp(sv->active->id, model_id) == 0)
        m = sv->active;
    else if (sv->other && strcmp(sv->other->id, model_id) == 0)
        m = sv->other;
    if (m) {
        served_model_ref(m);
        cb(arg, m, 0);
        return;
    }
    if (!model_id || !*model_id) {
        cb(arg, NULL, -ENODATA);
        return;
    }
    start_load(app, model_id, 0, cb, arg);
}

void serving_clear(struct app *app)
{
    struct serving *sv = app->serving;
    if (!sv)
        return;
    served_model_unref(sv->active);
    served_model_unref(sv->other);
    free(sv);
    app->serving = NULL;
}
