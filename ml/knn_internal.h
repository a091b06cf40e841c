/*
 * Inside of struct knn_index and the helpers shared by knn.c (create,
 * queries), knn_precompute.c (tiled SGEMM lists), knn_select.c (the exact
 * top-k selection of a whole row, used by scans) and knn_stream.c (the
 * same selection fed one column tile at a time, used by the precompute).
 * Not for use outside ml/knn*.c.
 */
#ifndef ITEMVEC_ML_KNN_INTERNAL_H
#define ITEMVEC_ML_KNN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ml/knn.h"

/* Bit q set when c[q] > thr (ge == 0) or c[q] >= thr (ge != 0), q in
 * 0..KNN_CHUNK-1: 16 scores tested per call with SIMD compares and a
 * movemask (AVX, else SSE2, else scalar). The project builds with -O2,
 * where GCC 12 does not vectorise such loops by itself. */
#if defined(__AVX__)
#include <immintrin.h>
#define KNN_CHUNK 16
static inline unsigned knn__chunk_mask(const float *c, float thr, int ge)
{
    const __m256 v = _mm256_set1_ps(thr);
    __m256 a = _mm256_loadu_ps(c), b = _mm256_loadu_ps(c + 8);
    __m256 ma = ge ? _mm256_cmp_ps(a, v, _CMP_GE_OQ) : _mm256_cmp_ps(a, v, _CMP_GT_OQ);
    __m256 mb = ge ? _mm256_cmp_ps(b, v, _CMP_GE_OQ) : _mm256_cmp_ps(b, v, _CMP_GT_OQ);
    return (unsigned)_mm256_movemask_ps(ma) | (unsigned)_mm256_movemask_ps(mb) << 8;
}
#elif defined(__SSE2__)
#include <emmintrin.h>
#define KNN_CHUNK 16
static inline unsigned knn__chunk_mask(const float *c, float thr, int ge)
{
    const __m128 v = _mm_set1_ps(thr);
    unsigned m = 0;
    for (int q = 0; q < 4; q++) {
        __m128 a = _mm_loadu_ps(c + 4 * q);
        __m128 r = ge ? _mm_cmpge_ps(a, v) : _mm_cmpgt_ps(a, v);
        m |= (unsigned)_mm_movemask_ps(r) << (4 * q);
    }
    return m;
}
#else
#define KNN_CHUNK 16
static inline unsigned knn__chunk_mask(const float *c, float thr, int ge)
{
    unsigned m = 0;
    for (int q = 0; q < KNN_CHUNK; q++)
        m |= (unsigned)(ge ? c[q] >= thr : c[q] > thr) << q;
    return m;
}
#endif

struct knn_index {
    uint32_t n;
    uint32_t d;
    float *u;           /* [n·d] row-major, rows L2-normalised (or zero) */
    uint32_t *rank;     /* [n] tie-break keys, or NULL: index order */
    uint32_t k;         /* neighbours per item in the lists, 0: no lists */
    uint32_t *nbr_idx;  /* [n·k] best first, or NULL */
    float *nbr_score;   /* [n·k] */
};

/* dst = src / ‖src‖ (norm and quotient in double, stored as float); a zero
 * src gives a zero dst. Returns 0, or -EINVAL for a non-finite value. */
int knn__normalise(const float *src, uint32_t d, float *dst);

/* The ranking score of two stored rows: products in double, summed in
 * four interleaved partial sums (t mod 4, each in index order) combined as
 * (s0 + s1) + (s2 + s3), rounded once to float (see knn.h). */
float knn__score(const float *a, const float *b, uint32_t d);

/* Exact top-kf of query row q (normalised, d floats) over all items, given
 * float shortlist scores c[0..n) (BLAS q·u_j, excluded items set to
 * -INFINITY). avail is the number of items not excluded, kf <= avail.
 * Writes kf items best first (score desc, rank asc, index asc: ml/rank.h)
 * to out_idx / out_score; tbuf is 2·kf floats and hbuf kf doubles of
 * scratch (hbuf holds the heap's scores). */
void knn__select(const struct knn_index *idx, const float *q, const float *c, uint32_t avail,
                 uint32_t kf, float *tbuf, double *hbuf, uint32_t *out_idx, float *out_score);

/* The k-th largest of a[0..m) (k in 1..m); reorders a. Quickselect with a
 * three-way partition, so runs of equal values stay linear. */
float knn__kth(float *a, uint32_t m, uint32_t k);

/* Exact top-kf (score desc, rank asc, index asc) of query q over the
 * candidate items cand[0..nc) (distinct, nc >= kf): each is rescored with
 * knn__score; writes kf entries best first to out_idx / out_score. hbuf
 * is kf doubles of scratch. */
void knn__rescore_top(const struct knn_index *idx, const float *q, const uint32_t *cand,
                      uint32_t nc, uint32_t kf, double *hbuf, uint32_t *out_idx, float *out_score);

/* The shortlist margin: every item of the exact top kf has a float BLAS
 * score >= (the kf-th largest float score) - eps, eps = (4d + 16)·2^-24 >
 * 2·gamma_d (knn_select.c; proof in docs/algorithms.md). */
static inline float knn__eps(uint32_t d)
{
    return (float)(4.0 * d + 16.0) * 0x1p-24f;
}

/* Streaming top-kf of one row whose float BLAS scores arrive in column
 * tiles (knn_stream.c): the precompute computes a block of rows against
 * one tile of columns at a time, so no row is ever held whole. The stream
 * keeps every item whose float score is >= lo = thr - eps, where thr (set
 * when a full buffer is compacted) has at least kf kept scores >= it, so
 * it is a lower bound of the row's final kf-th largest; so the kept set
 * always holds every item the one-row selection (knn__select) would
 * rescore, and finishing gives the same exact top-kf. Storage is the
 * caller's: val / idx have cap entries, cap > kf (rows overflow unless
 * cap >= 2·kf; knn_precompute.c uses 3·kf + 16). */
struct knn__stream {
    float *val;    /* [cap] float scores kept */
    uint32_t *idx; /* [cap] their items */
    uint32_t m;    /* entries kept */
    uint32_t cap;
    uint32_t kf;
    float lo; /* keep scores >= lo; -FLT_MAX until the first compaction */
    float eps;
    int overflow; /* too many near-ties to keep: the caller selects this row from a whole row */
};

/* Empties s for a new row. */
void knn__stream_reset(struct knn__stream *s, float *val, uint32_t *idx, uint32_t cap, uint32_t kf,
                       uint32_t d);

/* Offers the scores c[0..cols) of items j0..j0+cols-1 (an excluded item
 * is -INFINITY). tmp holds cap floats of scratch. */
void knn__stream_feed(struct knn__stream *s, const float *c, uint32_t j0, uint32_t cols,
                      float *tmp);

/* Writes the exact top-kf of query row q (best first) from the kept items
 * and returns 0, or returns 1 without writing when s overflowed. At least
 * kf finite scores must have been offered. tmp holds cap floats, hbuf kf
 * doubles. */
int knn__stream_finish(struct knn__stream *s, const struct knn_index *idx, const float *q,
                       float *tmp, double *hbuf, uint32_t *out_idx, float *out_score);

#endif
