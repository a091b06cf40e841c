/*
 * Streaming exact top-k for the precompute (knn_internal.h, struct
 * knn__stream): a row's float BLAS scores arrive one column tile at a
 * time, and the stream keeps, with their item indices, the scores at or
 * above lo = thr - eps, where at least k kept scores are >= thr (set at
 * the last compaction of the full buffer). Finishing finds the row's k-th
 * largest float score t among the kept scores and rescores exactly the
 * items >= t - eps: the set knn__select's pass 2 rescores, so a streamed
 * row and a whole-row selection give the same list.
 *
 * Why it is correct: thr is always <= t (k scores of the row are >= thr),
 * so an item dropped or never kept has a score < thr - eps <= t - eps, and
 * knn__select would not rescore it either (the shortlist bound is
 * docs/algorithms.md's, "Exact scores and the tie rule"). The kept scores
 * include every score >= t, so their k-th largest is t.
 *
 * Why it is faster than knn__select over whole rows: each score is read
 * once (one 16-wide compare against lo) instead of twice (pass 1 finding
 * t, pass 2 gathering), from a tile SGEMM just wrote; compactions mostly
 * use a sampled threshold (see compact); and the tiles let the precompute
 * call SGEMM on blocks that amortise OpenBLAS's packing.
 */
#include "ml/knn_internal.h"

#include <float.h>
#include <string.h>

void knn__stream_reset(struct knn__stream *s, float *val, uint32_t *idx, uint32_t cap, uint32_t kf,
                       uint32_t d)
{
    s->val = val;
    s->idx = idx;
    s->m = 0;
    s->cap = cap;
    s->kf = kf;
    /* every finite score; the excluded item itself is -INFINITY */
    s->lo = -FLT_MAX;
    s->eps = knn__eps(d);
    s->overflow = 0;
}

/* Keeps the entries >= lo, in order, without a data-dependent branch
 * (about half the entries go either way, so a branch would mispredict). */
static void filter(struct knn__stream *s, float lo)
{
    uint32_t keep = 0;
    for (uint32_t t = 0; t < s->m; t++) {
        const float v = s->val[t];
        s->val[keep] = v;
        s->idx[keep] = s->idx[t];
        keep += v >= lo;
    }
    s->m = keep;
    s->lo = lo;
}

/* Number of kept scores >= v. */
static uint32_t count_ge(const struct knn__stream *s, float v)
{
    uint32_t cnt = 0, t = 0;
    for (; t + KNN_CHUNK <= s->m; t += KNN_CHUNK)
        cnt += (uint32_t)__builtin_popcount(knn__chunk_mask(s->val + t, v, 1));
    for (; t < s->m; t++)
        cnt += s->val[t] >= v;
    return cnt;
}

/* Frees room in a full buffer by raising lo. Any v with at least kf kept
 * scores >= v is <= the row's final kf-th largest, so v - eps is a valid
 * lo. First try v from a sample of the buffer (the sample's order
 * statistic for about 4/3·kf survivors): a count and a branch-free filter
 * cost about two cheap passes, where an exact quickselect of the buffer
 * costs several mispredicted ones (it was 20 % of the precompute's time,
 * perf at 20 k items). If the sample's v is too high (fewer than kf
 * above it) or frees too little, the exact kf-th largest is used. When
 * near-ties (duplicate items, zero rows) still leave fewer than kf free
 * slots, compactions would no longer pay for themselves: the row is
 * marked overflowed and its caller selects it from a whole row. */
static void compact(struct knn__stream *s, float *tmp)
{
    const uint32_t m = s->m, kf = s->kf;
    if (m >= 32) {
        const uint32_t ns = m / 2 < 64 ? m / 2 : 64;
        for (uint32_t u = 0; u < ns; u++)
            tmp[u] = s->val[(size_t)u * m / ns];
        uint32_t r = (uint32_t)(((uint64_t)ns * kf * 4 + 3 * (uint64_t)m - 1) / (3 * (uint64_t)m));
        r = r < 1 ? 1 : r > ns ? ns : r;
        const float v = knn__kth(tmp, ns, r);
        if (v - s->eps > s->lo && count_ge(s, v) >= kf) {
            filter(s, v - s->eps);
            if (s->cap - s->m >= kf)
                return;
        }
    }
    memcpy(tmp, s->val, (size_t)s->m * sizeof(float));
    const float lo = knn__kth(tmp, s->m, kf) - s->eps;
    if (lo > s->lo)
        filter(s, lo);
    if (s->cap - s->m < kf)
        s->overflow = 1;
}

void knn__stream_feed(struct knn__stream *s, const float *c, uint32_t j0, uint32_t cols, float *tmp)
{
    if (s->overflow)
        return;
    float lo = s->lo;
    uint32_t m = s->m;
    uint32_t j = 0;
    for (; j + KNN_CHUNK <= cols; j += KNN_CHUNK) {
        unsigned mask = knn__chunk_mask(c + j, lo, 1);
        while (mask) {
            const unsigned q = (unsigned)__builtin_ctz(mask);
            mask &= mask - 1;
            s->val[m] = c[j + q];
            s->idx[m] = j0 + j + q;
            if (++m == s->cap) {
                s->m = m;
                compact(s, tmp);
                if (s->overflow)
                    return;
                m = s->m;
                lo = s->lo;
                /* re-test the lanes not yet visited against the new lo */
                mask &= knn__chunk_mask(c + j, lo, 1);
            }
        }
    }
    for (; j < cols; j++)
        if (c[j] >= lo) {
            s->val[m] = c[j];
            s->idx[m] = j0 + j;
            if (++m == s->cap) {
                s->m = m;
                compact(s, tmp);
                if (s->overflow)
                    return;
                m = s->m;
                lo = s->lo;
            }
        }
    s->m = m;
}

int knn__stream_finish(struct knn__stream *s, const struct knn_index *idx, const float *q,
                       float *tmp, double *hbuf, uint32_t *out_idx, float *out_score)
{
    if (s->overflow)
        return 1;
    /* s->m >= kf: compaction keeps >= kf, and before the first one every
     * finite score offered is kept */
    memcpy(tmp, s->val, (size_t)s->m * sizeof(float));
    const float lo = knn__kth(tmp, s->m, s->kf) - s->eps;
    uint32_t nc = 0;
    for (uint32_t t = 0; t < s->m; t++)
        if (s->val[t] >= lo)
            s->idx[nc++] = s->idx[t];
    knn__rescore_top(idx, q, s->idx, nc, s->kf, hbuf, out_idx, out_score);
    return 0;
}
