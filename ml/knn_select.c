/*
 * Exact top-k selection for ml/knn: turns one row of float BLAS scores
 * into the exact top-k under knn.h's ranking (double-accumulated score
 * rounded to float, then rank, then index).
 *
 * Float SGEMM/SGEMV scores differ from the exact score by at most
 * γ_d = d·u/(1 − d·u) (u = 2⁻²⁴; unit vectors, Cauchy–Schwarz; any
 * summation order, FMA or not — Higham, "Accuracy and Stability of
 * Numerical Algorithms", §3.1). So with t the k-th largest float score,
 * every true top-k item has a float score >= t − 2γ_d (proof in
 * docs/algorithms.md). Pass 1 finds t with a bounded min-heap of floats;
 * pass 2 rescores only the items above t − eps exactly and keeps the best
 * k in a bounded heap stored in the output arrays. Typically k + a few
 * items are rescored; ties (zero rows, duplicates) are all rescored.
 *
 * Both passes first test 16 scores at a time against the threshold with a
 * branch-free loop the compiler vectorises: after the heap fills, almost
 * every chunk is rejected whole.
 */
#include "ml/knn_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>

#define CHUNK 16

int knn__normalise(const float *src, uint32_t d, float *dst)
{
    double ss = 0.0;
    for (uint32_t t = 0; t < d; t++) {
        if (!isfinite(src[t]))
            return -EINVAL;
        ss += (double)src[t] * (double)src[t];
    }
    double norm = sqrt(ss);
    for (uint32_t t = 0; t < d; t++)
        dst[t] = norm > 0.0 ? (float)((double)src[t] / norm) : 0.0f;
    return 0;
}

float knn__score(const float *a, const float *b, uint32_t d)
{
    /* Products of floats are exact in double, so contraction into FMA by
     * the compiler cannot change the result: it is a function of (a, b). */
    double s = 0.0;
    for (uint32_t t = 0; t < d; t++)
        s += (double)a[t] * (double)b[t];
    return (float)s;
}

/* ---- pass 1: k-th largest float score (min-heap of floats) ---- */

static void fheap_down(float *h, uint32_t size, uint32_t p)
{
    float v = h[p];
    for (;;) {
        uint32_t c = 2 * p + 1;
        if (c >= size)
            break;
        if (c + 1 < size && h[c + 1] < h[c])
            c++;
        if (!(h[c] < v))
            break;
        h[p] = h[c];
        p = c;
    }
    h[p] = v;
}

static float kth_largest(const float *c, uint32_t n, uint32_t kf, float *h)
{
    for (uint32_t j = 0; j < kf; j++)
        h[j] = c[j];
    for (uint32_t p = kf / 2; p-- > 0;)
        fheap_down(h, kf, p);
    float root = h[0];
    uint32_t j = kf;
    for (; j + CHUNK <= n; j += CHUNK) {
        int any = 0;
        for (int q = 0; q < CHUNK; q++)
            any |= c[j + q] > root;
        if (!any)
            continue;
        for (int q = 0; q < CHUNK; q++)
            if (c[j + q] > root) {
                h[0] = c[j + q];
                fheap_down(h, kf, 0);
                root = h[0];
            }
    }
    for (; j < n; j++)
        if (c[j] > root) {
            h[0] = c[j];
            fheap_down(h, kf, 0);
            root = h[0];
        }
    return root;
}

/* ---- pass 2: exact top-k (heap with the worst entry at the root) ---- */

struct sel {
    const uint32_t *rank;
    uint32_t *idx;
    float *score;
    uint32_t size;
};

/* Is (sa, a) ranked before (sb, b)? A total order: indices are distinct. */
static inline bool better(const struct sel *s, float sa, uint32_t a, float sb, uint32_t b)
{
    if (sa != sb)
        return sa > sb;
    if (s->rank && s->rank[a] != s->rank[b])
        return s->rank[a] < s->rank[b];
    return a < b;
}

static void sel_down(struct sel *s, uint32_t size, uint32_t p)
{
    float v = s->score[p];
    uint32_t vi = s->idx[p];
    for (;;) {
        uint32_t c = 2 * p + 1;
        if (c >= size)
            break;
        /* pick the worse child */
        if (c + 1 < size && better(s, s->score[c], s->idx[c], s->score[c + 1], s->idx[c + 1]))
            c++;
        if (!better(s, v, vi, s->score[c], s->idx[c]))
            break;
        s->score[p] = s->score[c];
        s->idx[p] = s->idx[c];
        p = c;
    }
    s->score[p] = v;
    s->idx[p] = vi;
}

static void sel_up(struct sel *s, uint32_t p)
{
    float v = s->score[p];
    uint32_t vi = s->idx[p];
    while (p > 0) {
        uint32_t parent = (p - 1) / 2;
        if (!better(s, s->score[parent], s->idx[parent], v, vi))
            break;
        s->score[p] = s->score[parent];
        s->idx[p] = s->idx[parent];
        p = parent;
    }
    s->score[p] = v;
    s->idx[p] = vi;
}

static void sel_push(struct sel *s, uint32_t cap, float sc, uint32_t j)
{
    if (s->size < cap) {
        s->score[s->size] = sc;
        s->idx[s->size] = j;
        sel_up(s, s->size++);
    } else if (better(s, sc, j, s->score[0], s->idx[0])) {
        s->score[0] = sc;
        s->idx[0] = j;
        sel_down(s, s->size, 0);
    }
}

/* Heapsort in place: repeatedly moving the worst to the end leaves the
 * array best first. */
static void sel_sort(struct sel *s)
{
    for (uint32_t end = s->size; end-- > 1;) {
        float ts = s->score[0];
        uint32_t ti = s->idx[0];
        s->score[0] = s->score[end];
        s->idx[0] = s->idx[end];
        s->score[end] = ts;
        s->idx[end] = ti;
        sel_down(s, end, 0);
    }
}

void knn__select(const struct knn_index *idx, const float *q, const float *c, uint32_t avail,
                 uint32_t kf, float *fheap, uint32_t *out_idx, float *out_score)
{
    const uint32_t n = idx->n, d = idx->d;
    struct sel s = {.rank = idx->rank, .idx = out_idx, .score = out_score, .size = 0};
    float lo;

    if (kf == 0)
        return;
    if (kf >= avail) {
        /* everything not excluded: -INFINITY (excluded) < -FLT_MAX <= any score */
        lo = -FLT_MAX;
    } else {
        /* kf < avail real scores exist, so the k-th largest is finite. */
        const float eps = (float)(4.0 * d + 16.0) * 0x1p-24f;
        lo = kth_largest(c, n, kf, fheap) - eps;
    }

    uint32_t j = 0;
    for (; j + CHUNK <= n; j += CHUNK) {
        int any = 0;
        for (int t = 0; t < CHUNK; t++)
            any |= c[j + t] >= lo;
        if (!any)
            continue;
        for (uint32_t t = j; t < j + CHUNK; t++)
            if (c[t] >= lo)
                sel_push(&s, kf, knn__score(q, idx->u + (size_t)t * d, d), t);
    }
    for (; j < n; j++)
        if (c[j] >= lo)
            sel_push(&s, kf, knn__score(q, idx->u + (size_t)j * d, d), j);
    sel_sort(&s);
}
