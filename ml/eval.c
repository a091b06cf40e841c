/*
 * Hold-out metrics and rankers (see eval.h). The metric loop ranks each
 * query once at the largest k and scores every requested k on prefixes of
 * that list; set membership of R is a per-call stamp array, so a query
 * costs O(|R| + k) beyond the ranking. The rankers select with ml/rank.c,
 * the order the serving endpoints answer in.
 */
#include "ml/eval.h"
#include "ml/rank.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int eval_is_heldout(uint64_t id_hash, double fraction)
{
    /* top 53 bits as a uniform double in [0, 1) */
    return (double)(id_hash >> 11) * (1.0 / 9007199254740992.0) < fraction;
}

/* The metrics of a run, query by query: hits and recall per k, the
 * smallest position each item was recommended at (coverage). */
struct acc {
    const uint32_t *ks;
    int n_ks;
    uint32_t n_items;
    uint32_t *covered; /* [n_items] min position reaching the item, UINT32_MAX: never */
    double hits[EVAL_MAX_KS], recall[EVAL_MAX_KS];
    uint64_t queries;
};

static int acc_init(struct acc *a, uint32_t n_items, const uint32_t *ks, int n_ks)
{
    memset(a, 0, sizeof *a);
    a->ks = ks;
    a->n_ks = n_ks;
    a->n_items = n_items;
    a->covered = malloc(sizeof *a->covered * ((size_t)n_items + 1));
    if (!a->covered)
        return -ENOMEM;
    for (uint32_t i = 0; i < n_items; i++)
        a->covered[i] = UINT32_MAX;
    return 0;
}

/* Adds one query's ranked list top[0..got): R is the items stamped with
 * epoch (r_size of them), skip an item never counted as found (the query
 * itself, or UINT32_MAX). -ERANGE when the ranker returned a bad item. */
static int acc_add(struct acc *a, const uint32_t *top, int got, const uint32_t *stamp,
                   uint32_t epoch, uint32_t r_size, uint32_t skip)
{
    for (int t = 0; t < got; t++)
        if (top[t] >= a->n_items)
            return -ERANGE; /* a ranker bug, not the caller's input */
    for (int t = 0; t < got; t++)
        if ((uint32_t)t < a->covered[top[t]])
            a->covered[top[t]] = (uint32_t)t;
    for (int i = 0; i < a->n_ks; i++) {
        uint32_t found = 0, lim = a->ks[i] < (uint32_t)got ? a->ks[i] : (uint32_t)got;
        for (uint32_t t = 0; t < lim; t++)
            found += stamp[top[t]] == epoch && top[t] != skip;
        a->hits[i] += found > 0;
        a->recall[i] += (double)found / (double)(a->ks[i] < r_size ? a->ks[i] : r_size);
    }
    a->queries++;
    return 0;
}

static void acc_finish(struct acc *a, struct eval_metrics *out)
{
    for (int i = 0; i < a->n_ks; i++) {
        uint32_t cov = 0;
        for (uint32_t j = 0; j < a->n_items; j++)
            cov += a->covered[j] < a->ks[i];
        out[i].k = a->ks[i];
        out[i].queries = a->queries;
        out[i].hit = a->queries ? a->hits[i] / (double)a->queries : 0;
        out[i].recall = a->queries ? a->recall[i] / (double)a->queries : 0;
        out[i].coverage = a->n_items ? (double)cov / a->n_items : 0;
    }
}

int eval_score(const struct eval_lists *test, uint32_t n_items, const uint32_t *ks, int n_ks,
               eval_rank_fn rank, void *rank_ud, eval_progress_fn progress, void *progress_ud,
               struct eval_metrics *out)
{
    if (!test || !ks || n_ks < 1 || n_ks > EVAL_MAX_KS || !rank || !out)
        return -EINVAL;
    uint32_t kmax = 0;
    for (int i = 0; i < n_ks; i++) {
        if (ks[i] < 1 || ks[i] > EVAL_MAX_K)
            return -EINVAL;
        if (ks[i] > kmax)
            kmax = ks[i];
    }
    struct acc acc;
    int rc = acc_init(&acc, n_items, ks, n_ks);
    uint32_t *stamp = calloc((size_t)n_items + 1, sizeof *stamp); /* R membership */
    uint32_t *top = malloc(sizeof *top * kmax);
    uint32_t epoch = 0;
    if (rc != 0 || !stamp || !top) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t l = 0; l < test->n; l++) {
        uint64_t b = test->offsets[l], e = test->offsets[l + 1];
        if (e - b < 2)
            continue;
        /* the whole list before any of it is stamped */
        for (uint64_t x = b; x < e; x++)
            if (test->items[x] >= n_items) {
                rc = -EINVAL;
                goto out;
            }
        for (uint64_t x = b; x < e; x++) {
            uint32_t q = test->items[x];
            /* R = the playlist without q */
            if (++epoch == 0) {
                memset(stamp, 0, sizeof *stamp * n_items);
                epoch = 1;
            }
            for (uint64_t y = b; y < e; y++)
                if (y != x)
                    stamp[test->items[y]] = epoch;
            uint32_t r_size = (uint32_t)(e - b - 1);
            int got = rank(rank_ud, q, kmax, top);
            if (got < 0 || (rc = acc_add(&acc, top, got, stamp, epoch, r_size, q)) != 0) {
                rc = got < 0 ? got : rc;
                goto out;
            }
        }
        if (progress && (l & 255) == 0 && progress(progress_ud, (double)l / (double)test->n)) {
            rc = -ECANCELED;
            goto out;
        }
    }
    acc_finish(&acc, out);
out:
    free(stamp);
    free(acc.covered);
    free(top);
    return rc;
}

uint64_t eval_split_key(uint64_t seed, uint32_t item)
{
    /* splitmix64's finaliser of seed and item */
    uint64_t h = seed ^ ((uint64_t)item * 0x9e3779b97f4a7c15ULL);
    h += 0x9e3779b97f4a7c15ULL;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

struct split_item {
    uint64_t key;
    uint32_t item;
};

static int by_split_key(const void *a, const void *b)
{
    const struct split_item *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

int eval_continue(const struct eval_lists *test, uint32_t n_items, const uint32_t *ks, int n_ks,
                  uint64_t seed, eval_recommend_fn rec, void *rec_ud, eval_progress_fn progress,
                  void *progress_ud, struct eval_metrics *out)
{
    if (!test || !ks || n_ks < 1 || n_ks > EVAL_MAX_KS || !rec || !out)
        return -EINVAL;
    uint32_t kmax = 0;
    size_t longest = 0;
    for (int i = 0; i < n_ks; i++) {
        if (ks[i] < 1 || ks[i] > EVAL_MAX_K)
            return -EINVAL;
        if (ks[i] > kmax)
            kmax = ks[i];
    }
    for (size_t l = 0; l < test->n; l++) {
        uint64_t len = test->offsets[l + 1] - test->offsets[l];
        longest = len > longest ? (size_t)len : longest;
    }
    struct acc acc;
    int rc = acc_init(&acc, n_items, ks, n_ks);
    uint32_t *stamp = calloc((size_t)n_items + 1, sizeof *stamp);
    uint32_t *top = malloc(sizeof *top * kmax);
    uint32_t *in = malloc(sizeof *in * (longest + 1));
    struct split_item *sp = malloc(sizeof *sp * (longest + 1));
    uint32_t epoch = 0;
    if (rc != 0 || !stamp || !top || !in || !sp) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t l = 0; l < test->n; l++) {
        uint64_t b = test->offsets[l], e = test->offsets[l + 1];
        size_t len = (size_t)(e - b);
        if (len < 2)
            continue;
        for (size_t x = 0; x < len; x++) {
            uint32_t it = test->items[b + x];
            if (it >= n_items) {
                rc = -EINVAL;
                goto out;
            }
            sp[x] = (struct split_item){eval_split_key(seed, it), it};
        }
        qsort(sp, len, sizeof *sp, by_split_key);
        size_t half = len / 2;
        if (++epoch == 0) {
            memset(stamp, 0, sizeof *stamp * n_items);
            epoch = 1;
        }
        for (size_t x = 0; x < len; x++) {
            if (x < half)
                in[x] = sp[x].item;
            else
                stamp[sp[x].item] = epoch; /* R */
        }
        uint32_t r_size = (uint32_t)(len - half);
        int got = rec(rec_ud, in, half, kmax, top);
        if (got < 0 || (rc = acc_add(&acc, top, got, stamp, epoch, r_size, UINT32_MAX)) != 0) {
            rc = got < 0 ? got : rc;
            goto out;
        }
        if (progress && (l & 255) == 0 && progress(progress_ud, (double)l / (double)test->n)) {
            rc = -ECANCELED;
            goto out;
        }
    }
    acc_finish(&acc, out);
out:
    free(stamp);
    free(acc.covered);
    free(top);
    free(in);
    free(sp);
    return rc;
}

/* ---- rankers: ml/rank.c's selection under the one ranking order ---- */

int eval_rank_matrix(void *ranker, uint32_t q, uint32_t k, uint32_t *out)
{
    const struct eval_matrix_ranker *m = ranker;
    double *score = malloc(sizeof *score * ((size_t)k + 1));
    if (!score)
        return -ENOMEM;
    int got = rank_row(m->row_ptr, m->col, m->value, q, k, m->tie_rank, out, score);
    free(score);
    return got;
}

int eval_rank_dot(void *ranker, uint32_t q, uint32_t k, uint32_t *out)
{
    const struct eval_dot_ranker *d = ranker;
    if (!d->scratch || q >= d->n)
        return -EINVAL;
    /* the scratch holds n + 1 >= min(k, n - 1) scores */
    return rank_dot(d->emb, d->n, d->dim, q, k, d->tie_rank, out, d->scratch);
}

size_t eval_dot_scratch_size(uint32_t n)
{
    return sizeof(double) * ((size_t)n + 1);
}

int eval_rank_order(void *ranker, uint32_t q, uint32_t k, uint32_t *out)
{
    const struct eval_order_ranker *o = ranker;
    uint32_t got = 0;
    for (uint32_t t = 0; t < o->n && got < k; t++)
        if (o->order[t] != q)
            out[got++] = o->order[t];
    return (int)got;
}

int eval_recommend_order(void *ranker, const uint32_t *in, size_t n_in, uint32_t k,
                         uint32_t *out)
{
    const struct eval_order_ranker *o = ranker;
    uint32_t got = 0;
    for (uint32_t t = 0; t < o->n && got < k; t++) {
        size_t x = 0;
        while (x < n_in && in[x] != o->order[t])
            x++;
        if (x == n_in)
            out[got++] = o->order[t];
    }
    return (int)got;
}

struct count_order {
    const uint32_t *count, *rank;
};

static int by_count(const void *a, const void *b, void *arg)
{
    const struct count_order *o = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return rank_compare(o->count[x], x, o->count[y], y, o->rank);
}

int eval_order_by_count(const uint32_t *count, const uint32_t *tie_rank, uint32_t n,
                        uint32_t *order)
{
    if (!count || !order)
        return -EINVAL;
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    struct count_order o = {count, tie_rank};
    qsort_r(order, n, sizeof *order, by_count, &o);
    return 0;
}
