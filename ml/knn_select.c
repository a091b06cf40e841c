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
 * docs/algorithms.md). Pass 1 finds t (threshold buffer + quickselect);
 * pass 2 rescores only the items above t − eps exactly and keeps the best
 * k in ml/rank.c's bounded heap (the project's one ranking order; indices
 * in the output array, scores in the caller's double scratch: a float
 * score converts to double exactly, so the order is the float order).
 * Typically k + a few items are rescored; ties (zero rows, duplicates) are
 * all rescored.
 *
 * Both passes first test 16 scores at a time against the threshold
 * (knn__chunk_mask): after the heap fills, almost every chunk is rejected
 * whole. The precompute streams column tiles instead of whole rows
 * (knn_stream.c) and shares knn__kth and knn__rescore_top from here.
 */
#include "ml/knn_internal.h"
#include "ml/rank.h"

#include <errno.h>
#include <float.h>
#include <math.h>

#define BATCH 64


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
    /* Four partial sums break the add-latency chain (~4x faster than one);
     * the order is fixed, so the score is a function of (a, b) only.
     * Products of floats are exact in double, so FMA contraction by the
     * compiler cannot change the result either. */
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    uint32_t t = 0;
#if defined(__AVX__)
    /* The same four sums as the scalar loop below, one per lane: each lane
     * adds the same exact products in the same order, so the result is
     * bit-identical (tests/unit/test_knn.c's oracle is the scalar rule);
     * a third of the instructions of the scalar loop. */
    __m256d acc = _mm256_setzero_pd();
    for (; t + 4 <= d; t += 4) {
        const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(a + t));
        const __m256d y = _mm256_cvtps_pd(_mm_loadu_ps(b + t));
        acc = _mm256_add_pd(acc, _mm256_mul_pd(x, y));
    }
    double lane[4];
    _mm256_storeu_pd(lane, acc);
    s0 = lane[0];
    s1 = lane[1];
    s2 = lane[2];
    s3 = lane[3];
#else
    for (; t + 4 <= d; t += 4) {
        s0 += (double)a[t] * (double)b[t];
        s1 += (double)a[t + 1] * (double)b[t + 1];
        s2 += (double)a[t + 2] * (double)b[t + 2];
        s3 += (double)a[t + 3] * (double)b[t + 3];
    }
#endif
    if (t < d)
        s0 += (double)a[t] * (double)b[t];
    if (t + 1 < d)
        s1 += (double)a[t + 1] * (double)b[t + 1];
    if (t + 2 < d)
        s2 += (double)a[t + 2] * (double)b[t + 2];
    return (float)((s0 + s1) + (s2 + s3));
}

/* ---- pass 1: k-th largest float score ---- */

static inline void swapf(float *a, uint32_t i, uint32_t j)
{
    float t = a[i];
    a[i] = a[j];
    a[j] = t;
}

/* Rearranges a[0..m) so that a[0..k) are its k largest values (k in
 * 1..m) and returns the k-th largest. Quickselect with a median-of-three
 * pivot and a three-way partition, so runs of equal scores (zero rows,
 * duplicates) cost one pass instead of degrading to O(m²). */
float knn__kth(float *a, uint32_t m, uint32_t k)
{
    uint32_t lo = 0, hi = m; /* the answer's position k - 1 is in [lo, hi) */
    for (;;) {
        if (hi - lo <= 1)
            return a[k - 1];
        uint32_t mid = lo + (hi - lo) / 2;
        float x = a[lo], y = a[mid], z = a[hi - 1];
        float pv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        /* descending: [lo, gt) > pv, [gt, i) == pv, [lt, hi) < pv */
        uint32_t gt = lo, i = lo, lt = hi;
        while (i < lt) {
            if (a[i] > pv)
                swapf(a, gt++, i++);
            else if (a[i] < pv)
                swapf(a, i, --lt);
            else
                i++;
        }
        if (k - 1 < gt)
            hi = gt;
        else if (k - 1 >= lt)
            lo = lt;
        else
            return pv;
    }
}

/* The kf-th largest of c[0..n) (kf < number of finite entries). buf holds
 * 2·kf floats: every score above the running threshold is appended, and
 * when the buffer is full the kf-th largest of it becomes the threshold
 * and only the kf largest are kept. Cheaper than a bounded heap: appends
 * are branch-light and each compaction is O(kf) for kf new entries. */
static float kth_largest(const float *c, uint32_t n, uint32_t kf, float *buf)
{
    const uint32_t cap = 2 * kf;
    float thr = -INFINITY; /* excluded items are -INFINITY and never enter */
    uint32_t m = 0, j = 0;

    for (; j + KNN_CHUNK <= n; j += KNN_CHUNK) {
        /* visit only the lanes above thr; after a compaction raised thr,
         * re-test the lanes not yet visited */
        unsigned mask = knn__chunk_mask(c + j, thr, 0);
        while (mask) {
            unsigned q = (unsigned)__builtin_ctz(mask);
            mask &= mask - 1;
            buf[m++] = c[j + q];
            if (m == cap) {
                thr = knn__kth(buf, m, kf);
                m = kf;
                mask &= knn__chunk_mask(c + j, thr, 0);
            }
        }
    }
    for (; j < n; j++)
        if (c[j] > thr) {
            buf[m++] = c[j];
            if (m == cap) {
                thr = knn__kth(buf, m, kf);
                m = kf;
            }
        }
    /* m >= kf: at least kf finite scores entered and compaction keeps kf */
    return knn__kth(buf, m, kf);
}

/* ---- pass 2: exact top-k (ml/rank.c's bounded heap) ---- */

/* Copies the sorted heap's double scores (exact floats) to out_score. */
static void scores_out(const struct rank_top *t, float *out_score)
{
    for (uint32_t r = 0; r < t->size; r++)
        out_score[r] = (float)t->score[r];
}

/* Rescores cand[0..nc) exactly into the top-kf t, BATCH at a time:
 * candidates are scattered over the matrix (L2 misses), and prefetching a
 * batch's rows before scoring lets those misses overlap. */
static void push_rescored(const struct knn_index *idx, const float *q, struct rank_top *t,
                          const uint32_t *cand, uint32_t nc)
{
    const uint32_t d = idx->d;
    for (uint32_t b0 = 0; b0 < nc; b0 += BATCH) {
        const uint32_t b1 = nc - b0 < BATCH ? nc : b0 + BATCH;
        for (uint32_t b = b0; b < b1; b++) {
            const char *row = (const char *)(idx->u + (size_t)cand[b] * d);
            for (size_t off = 0; off < (size_t)d * sizeof(float); off += 64)
                __builtin_prefetch(row + off);
        }
        for (uint32_t b = b0; b < b1; b++)
            rank_top_push(t, knn__score(q, idx->u + (size_t)cand[b] * d, d), cand[b]);
    }
}

void knn__rescore_top(const struct knn_index *idx, const float *q, const uint32_t *cand,
                      uint32_t nc, uint32_t kf, double *hbuf, uint32_t *out_idx, float *out_score)
{
    struct rank_top t;

    rank_top_init(&t, out_idx, hbuf, kf, idx->rank);
    push_rescored(idx, q, &t, cand, nc);
    rank_top_sort(&t);
    scores_out(&t, out_score);
}

void knn__select(const struct knn_index *idx, const float *q, const float *c, uint32_t avail,
                 uint32_t kf, float *tbuf, double *hbuf, uint32_t *out_idx, float *out_score)
{
    const uint32_t n = idx->n, d = idx->d;
    struct rank_top top;
    float lo;

    if (kf == 0)
        return;
    if (kf >= avail) {
        /* everything not excluded: -INFINITY (excluded) < -FLT_MAX <= any score */
        lo = -FLT_MAX;
    } else {
        /* kf < avail real scores exist, so the k-th largest is finite. */
        const float eps = knn__eps(d);
        lo = kth_largest(c, n, kf, tbuf) - eps;
    }

    rank_top_init(&top, out_idx, hbuf, kf, idx->rank);
    uint32_t batch[BATCH], nb = 0;
    for (uint32_t j = 0; j < n; j += KNN_CHUNK) {
        if (j + KNN_CHUNK <= n) {
            for (unsigned m = knn__chunk_mask(c + j, lo, 1); m; m &= m - 1)
                batch[nb++] = j + (uint32_t)__builtin_ctz(m);
        } else {
            for (uint32_t t = j; t < n; t++)
                if (c[t] >= lo)
                    batch[nb++] = t;
        }
        if (nb > BATCH - KNN_CHUNK || j + KNN_CHUNK >= n) {
            push_rescored(idx, q, &top, batch, nb);
            nb = 0;
        }
    }
    rank_top_sort(&top);
    scores_out(&top, out_score);
}
