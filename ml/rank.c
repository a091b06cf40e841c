/*
 * Top-k selection under the ranking order (see rank.h): a bounded heap
 * with the worst pair at the root, sorted best first at the end by
 * heapsort, plus the two exact scans built on it (dense inner products,
 * one sparse row). Pure math; any thread, one struct rank_top per thread.
 */
#include "ml/rank.h"

#include <errno.h>

int rank_compare(double sa, uint32_t a, double sb, uint32_t b, const uint32_t *tie)
{
    if (rank_before(sa, a, sb, b, tie))
        return -1;
    return rank_before(sb, b, sa, a, tie) ? 1 : 0;
}

void rank_top_init(struct rank_top *t, uint32_t *idx, double *score, uint32_t cap,
                   const uint32_t *tie)
{
    t->idx = idx;
    t->score = score;
    t->tie = tie;
    t->cap = cap;
    t->size = 0;
}

/* Moves the pair at p down until both children rank before it (the worst
 * is at the root). */
static void sift_down(struct rank_top *t, uint32_t size, uint32_t p)
{
    const double v = t->score[p];
    const uint32_t vi = t->idx[p];
    for (;;) {
        uint32_t c = 2 * p + 1;
        if (c >= size)
            break;
        /* the worse child */
        if (c + 1 < size &&
            rank_before(t->score[c], t->idx[c], t->score[c + 1], t->idx[c + 1], t->tie))
            c++;
        if (!rank_before(v, vi, t->score[c], t->idx[c], t->tie))
            break;
        t->score[p] = t->score[c];
        t->idx[p] = t->idx[c];
        p = c;
    }
    t->score[p] = v;
    t->idx[p] = vi;
}

void rank__top_append(struct rank_top *t, double score, uint32_t j)
{
    uint32_t p = t->size++;
    while (p > 0) {
        uint32_t parent = (p - 1) / 2;
        if (!rank_before(t->score[parent], t->idx[parent], score, j, t->tie))
            break;
        t->score[p] = t->score[parent];
        t->idx[p] = t->idx[parent];
        p = parent;
    }
    t->score[p] = score;
    t->idx[p] = j;
}

void rank__top_replace_root(struct rank_top *t, double score, uint32_t j)
{
    t->score[0] = score;
    t->idx[0] = j;
    sift_down(t, t->size, 0);
}

uint32_t rank_top_sort(struct rank_top *t)
{
    /* heapsort: moving the worst to the end each time leaves best first */
    for (uint32_t end = t->size; end-- > 1;) {
        double ts = t->score[0];
        uint32_t ti = t->idx[0];
        t->score[0] = t->score[end];
        t->idx[0] = t->idx[end];
        t->score[end] = ts;
        t->idx[end] = ti;
        sift_down(t, end, 0);
    }
    return t->size;
}

int rank_dot(const float *emb, uint32_t n, uint32_t dim, uint32_t q, uint32_t k,
             const uint32_t *tie, uint32_t *out_idx, double *out_score)
{
    if (!emb || !out_idx || !out_score || q >= n)
        return -EINVAL;
    struct rank_top t;
    rank_top_init(&t, out_idx, out_score, k < n - 1 ? k : n - 1, tie);
    const float *eq = emb + (size_t)q * dim;
    for (uint32_t j = 0; j < n; j++) {
        if (j == q)
            continue;
        const float *ej = emb + (size_t)j * dim;
        double s = 0;
        for (uint32_t x = 0; x < dim; x++)
            s += (double)eq[x] * ej[x];
        rank_top_push(&t, s, j);
    }
    return (int)rank_top_sort(&t);
}

int rank_row(const uint64_t *row_ptr, const uint32_t *col, const double *value, uint32_t q,
             uint32_t k, const uint32_t *tie, uint32_t *out_idx, double *out_score)
{
    struct rank_top t;
    rank_top_init(&t, out_idx, out_score, k, tie);
    for (uint64_t e = row_ptr[q]; e < row_ptr[q + 1]; e++)
        if (col[e] != q)
            rank_top_push(&t, value[e], col[e]);
    return (int)rank_top_sort(&t);
}
