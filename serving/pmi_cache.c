/*
 * PMI matrix cache (see pmi_cache.h): a serving/loader.c loader of
 * matrices keyed by job id. State is loop-thread only; the load itself
 * runs on the pool with its own store handle.
 */
#include "base/thread.h"
#include "serving/pmi_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/app.h"
#include "base/log.h"
#include "serving/loader.h"
#include "storage/cooc_file.h"

struct pmi_load_params {
    char state_dir[1024];
};

static struct loader pmi_loader; /* loop thread */
static int pmi_loader_ready;

void pmi_matrix_unref(struct pmi_matrix *m)
{
    if (!m || --m->refs > 0)
        return;
    cooc_result_deinit(&m->res);
    store_item_names_deinit(&m->names);
    free(m->id_rank);
    free(m->by_id);
    score_walk_deinit(&m->walk);
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
 * order: item1's id, then item2's; rank = position in id order) so the
 * weakest is at the root. */
static int pair_worse(const struct pmi_pair *a, const struct pmi_pair *b, const uint32_t *rank)
{
    if (a->score != b->score)
        return a->score < b->score;
    if (a->i != b->i)
        return rank[a->i] > rank[b->i];
    return rank[a->j] > rank[b->j];
}

static void heap_down(struct pmi_pair *h, uint32_t n, uint32_t i, const uint32_t *rank)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && pair_worse(&h[l], &h[w], rank))
            w = l;
        if (r < n && pair_worse(&h[r], &h[w], rank))
            w = r;
        if (w == i)
            return;
        struct pmi_pair t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static int pair_cmp_desc(const void *a, const void *b, void *rank)
{
    const struct pmi_pair *x = a, *y = b;
    if (pair_worse(x, y, rank))
        return 1;
    if (pair_worse(y, x, rank))
        return -1;
    return 0;
}

/* The seed's exploration query: WHERE item1 != item2 ORDER BY score DESC,
 * ties by the ids (needs id_ranks first). */
static int top_pairs(struct pmi_matrix *m)
{
    const uint32_t *rank = m->id_rank;
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
                        heap_down(m->top, n, k, rank);
            } else if (pair_worse(&m->top[0], &p, rank)) {
                m->top[0] = p;
                heap_down(m->top, n, 0, rank);
            }
        }
    }
    qsort_r(m->top, n, sizeof *m->top, pair_cmp_desc, (void *)rank);
    m->n_top = n;
    return 0;
}

static const char *item_id(const struct pmi_matrix *m, uint32_t i)
{
    uint32_t key = m->res.keys[i];
    const char *id = key <= m->names.max_key ? m->names.id[key] : NULL;
    return id ? id : ""; /* cannot happen: items are never deleted */
}

static int by_id(const void *a, const void *b, void *arg)
{
    return strcmp(item_id(arg, *(const uint32_t *)a), item_id(arg, *(const uint32_t *)b));
}

/* id_rank: ties in a neighbour list are broken by item id (strcmp), as
 * the served model's rank array does (serving.c). */
static int id_ranks(struct pmi_matrix *m)
{
    uint32_t n = m->res.n;
    uint32_t *order = malloc(sizeof *order * ((size_t)n + 1));
    m->id_rank = malloc(sizeof *m->id_rank * ((size_t)n + 1));
    if (!order || !m->id_rank) {
        free(order);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, by_id, m);
    for (uint32_t r = 0; r < n; r++)
        m->id_rank[order[r]] = r;
    m->by_id = order;
    return 0;
}

int64_t pmi_matrix_find(const struct pmi_matrix *m, const char *id)
{
    uint32_t lo = 0, hi = m->res.n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (strcmp(item_id(m, m->by_id[mid]), id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->res.n && strcmp(item_id(m, m->by_id[lo]), id) == 0 ? (int64_t)m->by_id[lo]
                                                                       : -1;
}

/* Pool thread: the job's .cooc file, the item names, the top pairs, the
 * id order and, when the file has the playlists, rp3's walk index. */
static int pmi_load(const char *job, const void *params, void **out)
{
    const struct pmi_load_params *p = params;
    struct pmi_matrix *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->refs = 1;
    snprintf(m->job, sizeof m->job, "%s", job);
    char dir[1100], name[LOADER_KEY_MAX + 8];
    snprintf(dir, sizeof dir, "%s/pmi", p->state_dir);
    snprintf(name, sizeof name, "%s.cooc", job);
    int rc = cooc_file_read(dir, name, &m->res);
    if (rc == 0) {
        struct store_error err;
        struct store *s = store_open(p->state_dir, &err);
        rc = s ? store_item_names_load(s, &m->names) : -EIO;
        store_close(s);
    }
    if (rc == 0)
        rc = id_ranks(m);
    if (rc == 0)
        rc = top_pairs(m);
    if (rc == 0 && m->res.group_ptr) {
        rc = score_walk_init(&m->walk, &m->res);
    }
    if (rc != 0) {
        pmi_matrix_unref(m);
        return rc;
    }
    *out = m;
    return 0;
}

static void pmi_ref(void *m)
{
    ((struct pmi_matrix *)m)->refs++;
}

static void pmi_unref(void *m)
{
    pmi_matrix_unref(m);
}

static void pmi_call(loader_fn fn, void *arg, void *m, int rc)
{
    ((pmi_cache_cb)fn)(arg, m, rc);
}

static void pmi_loaded(void *ud, const char *job, const void *params, void *obj, int rc)
{
    const struct pmi_matrix *m = obj;
    if (m)
        log_info("pmi: loaded matrix of job %s (%u items, %llu entries)", job, m->res.n,
                 (unsigned long long)m->res.nnz);
    else
        log_warn("pmi: cannot load matrix of job %s: %s", job, strerror(-rc));
}

static const struct loader_ops pmi_ops = {
    .params_size = sizeof(struct pmi_load_params),
    .load = pmi_load,
    .ref = pmi_ref,
    .unref = pmi_unref,
    .call = pmi_call,
    .loaded = pmi_loaded,
};

void pmi_cache_get(struct app *app, const char *job_id, pmi_cache_cb cb, void *arg)
{
    ASSERT_LOOP_THREAD();
    if (!pmi_loader_ready) {
        loader_init(&pmi_loader, app->loop, &pmi_ops, NULL);
        pmi_loader_ready = 1;
    }
    struct pmi_load_params p;
    snprintf(p.state_dir, sizeof p.state_dir, "%s", app->cfg.state_dir);
    loader_get(&pmi_loader, job_id, &p, (loader_fn)cb, arg);
}

void pmi_cache_deinit(void)
{
    if (pmi_loader_ready)
        loader_deinit(&pmi_loader);
    pmi_loader_ready = 0;
}
