/*
 * PMI matrix cache (see pmi_cache.h). State is loop-thread only; the load
 * itself runs in uv_queue_work with its own store handle.
 */
#include "serving/pmi_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/app.h"
#include "jobs/jobs.h"
#include "base/log.h"
#include "storage/cooc_file.h"
#include "storage/jobs.h"

struct waiter {
    pmi_cache_cb cb;
    void *arg;
    struct waiter *next;
};

struct load {
    uv_work_t work;
    char job[32];
    char dir[1100];
    char state_dir[1024];
    struct pmi_matrix *m;
    int rc;
    struct waiter *waiters;
    struct load *next;
};

static struct pmi_matrix *cached;
static struct load *loading; /* loads in flight */

void pmi_matrix_unref(struct pmi_matrix *m)
{
    if (!m || --m->refs > 0)
        return;
    cooc_result_free(&m->res);
    store_item_names_free(&m->names);
    free(m->top);
    free(m);
}

int64_t pmi_matrix_index(const struct pmi_matrix *m, uint32_t key)
{
    uint32_t lo = 0, hi = m->res.n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->res.keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->res.n && m->res.keys[lo] == key ? (int64_t)lo : -1;
}

/* Heap of the best ordered pairs: a min-heap by (score, then reverse id
 * order) so the weakest is at the root. */
static int pair_worse(const struct pmi_pair *a, const struct pmi_pair *b)
{
    if (a->score != b->score)
        return a->score < b->score;
    if (a->i != b->i)
        return a->i > b->i;
    return a->j > b->j;
}

static void heap_down(struct pmi_pair *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && pair_worse(&h[l], &h[w]))
            w = l;
        if (r < n && pair_worse(&h[r], &h[w]))
            w = r;
        if (w == i)
            return;
        struct pmi_pair t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static int pair_cmp_desc(const void *a, const void *b)
{
    const struct pmi_pair *x = a, *y = b;
    if (pair_worse(x, y))
        return 1;
    if (pair_worse(y, x))
        return -1;
    return 0;
}

/* The seed's exploration query: WHERE item1 != item2 ORDER BY score DESC. */
static int top_pairs(struct pmi_matrix *m)
{
    const struct cooc_result *r = &m->res;
    m->top = malloc(sizeof *m->top * PMI_TOP_PAIRS);
    if (!m->top)
        return -ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        for (uint64_t e = r->row_ptr[i]; e < r->row_ptr[i + 1]; e++) {
            if (r->col[e] == i)
                continue;
            struct pmi_pair p = {i, r->col[e], e, cooc_score(r, i, e)};
            if (n < PMI_TOP_PAIRS) {
                m->top[n++] = p;
                if (n == PMI_TOP_PAIRS)
                    for (uint32_t k = n / 2; k-- > 0;)
                        heap_down(m->top, n, k);
            } else if (pair_worse(&m->top[0], &p)) {
                m->top[0] = p;
                heap_down(m->top, n, 0);
            }
        }
    }
    qsort(m->top, n, sizeof *m->top, pair_cmp_desc);
    m->n_top = n;
    return 0;
}

static void load_work(uv_work_t *w)
{
    struct load *l = (struct load *)w;
    struct pmi_matrix *m = calloc(1, sizeof *m);
    if (!m) {
        l->rc = -ENOMEM;
        return;
    }
    m->refs = 1;
    snprintf(m->job, sizeof m->job, "%s", l->job);
    char name[64];
    snprintf(name, sizeof name, "%s.cooc", l->job);
    l->rc = cooc_file_read(l->dir, name, &m->res);
    if (l->rc == 0) {
        struct store_error err;
        struct store *s = store_open(l->state_dir, &err);
        l->rc = s ? store_item_names_load(s, &m->names) : -EIO;
        store_close(s);
    }
    if (l->rc == 0)
        l->rc = top_pairs(m);
    if (l->rc != 0) {
        pmi_matrix_unref(m);
        return;
    }
    l->m = m;
}

static void load_done(uv_work_t *w, int status)
{
    struct load *l = (struct load *)w;
    for (struct load **pp = &loading; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    if (l->m) {
        pmi_matrix_unref(cached);
        cached = l->m;
        log_info("pmi: loaded matrix of job %s (%u items, %llu entries)", l->job, l->m->res.n,
                 (unsigned long long)l->m->res.nnz);
    } else {
        log_warn("pmi: cannot load matrix of job %s: %s", l->job, strerror(-l->rc));
    }
    while (l->waiters) {
        struct waiter *wt = l->waiters;
        l->waiters = wt->next;
        if (l->m)
            l->m->refs++;
        wt->cb(wt->arg, l->m, l->m ? 0 : l->rc);
        free(wt);
    }
    free(l);
}

void pmi_cache_get(struct app *app, const char *job, pmi_cache_cb cb, void *arg)
{
    char id[32];
    if (!job || !*job) {
        if (jobs_latest_succeeded(app->jobs, "pmi", id, sizeof id) != 0) {
            cb(arg, NULL, -ENOENT);
            return;
        }
    } else {
        if (!jobs_is_succeeded(app->jobs, job, "pmi")) {
            cb(arg, NULL, -ENOENT);
            return;
        }
        snprintf(id, sizeof id, "%s", job);
    }
    if (cached && strcmp(cached->job, id) == 0) {
        cached->refs++;
        cb(arg, cached, 0);
        return;
    }
    struct waiter *wt = malloc(sizeof *wt);
    if (!wt) {
        cb(arg, NULL, -ENOMEM);
        return;
    }
    wt->cb = cb;
    wt->arg = arg;
    for (struct load *l = loading; l; l = l->next) {
        if (strcmp(l->job, id) == 0) {
            wt->next = l->waiters;
            l->waiters = wt;
            return;
        }
    }
    struct load *l = calloc(1, sizeof *l);
    if (!l) {
        free(wt);
        cb(arg, NULL, -ENOMEM);
        return;
    }
    wt->next = NULL;
    l->waiters = wt;
    snprintf(l->job, sizeof l->job, "%s", id);
    snprintf(l->state_dir, sizeof l->state_dir, "%s", app->cfg.state_dir);
    snprintf(l->dir, sizeof l->dir, "%s/pmi", app->cfg.state_dir);
    l->next = loading;
    loading = l;
    if (uv_queue_work(app->loop, &l->work, load_work, load_done) != 0) {
        loading = l->next;
        free(wt);
        free(l);
        cb(arg, NULL, -EIO);
    }
}

void pmi_cache_clear(void)
{
    pmi_matrix_unref(cached);
    cached = NULL;
}
