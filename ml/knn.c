/*
 * ml/knn: the index (a normalised copy of the embeddings), lookups in the
 * precomputed lists, and exact scans for larger k and for arbitrary query
 * vectors ("recommend"). The lists themselves are built in
 * knn_precompute.c; both paths share knn_select.c so a lookup and a scan
 * give the same answer. Contracts in knn.h.
 */
#include "ml/knn.h"
#include "ml/knn_internal.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void knn_params_init(struct knn_params *p)
{
    p->k = KNN_DEFAULT_K;
    p->threads = 2;
    p->block_rows = 0;
}

struct knn_index *knn_index_create(const float *emb, uint32_t n, uint32_t d, size_t stride,
                                   const uint32_t *rank, int *err)
{
    struct knn_index *idx = NULL;
    int rc = 0;

    if (!emb || n == 0 || n > INT32_MAX || d == 0 || d > KNN_MAX_DIMENSIONS || stride < d) {
        rc = -EINVAL;
        goto fail;
    }
    if ((size_t)n > SIZE_MAX / sizeof(float) / d) {
        rc = -EOVERFLOW;
        goto fail;
    }
    idx = calloc(1, sizeof(*idx));
    if (!idx) {
        rc = -ENOMEM;
        goto fail;
    }
    idx->n = n;
    idx->d = d;
    idx->u = malloc((size_t)n * d * sizeof(float));
    if (!idx->u) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        rc = knn__normalise(emb + (size_t)i * stride, d, idx->u + (size_t)i * d);
        if (rc < 0)
            goto fail;
    }
    if (rank) {
        idx->rank = malloc((size_t)n * sizeof(uint32_t));
        if (!idx->rank) {
            rc = -ENOMEM;
            goto fail;
        }
        memcpy(idx->rank, rank, (size_t)n * sizeof(uint32_t));
    }
    return idx;

fail:
    knn_index_destroy(idx);
    if (err)
        *err = rc;
    return NULL;
}

void knn_index_destroy(struct knn_index *idx)
{
    if (!idx)
        return;
    free(idx->u);
    free(idx->rank);
    free(idx->nbr_idx);
    free(idx->nbr_score);
    free(idx);
}

/* Exact scan: scores of the normalised query qn against every row by
 * SGEMV, exclusions (two lists and an optional self index) set to
 * -INFINITY, then the shared selection. Returns the count or -errno. */
static int scan(const struct knn_index *idx, const float *qn, uint32_t k, const uint32_t *ex1,
                size_t n1, const uint32_t *ex2, size_t n2, uint32_t self, uint32_t *out_idx,
                float *out_score)
{
    const uint32_t n = idx->n, d = idx->d;
    const uint32_t kmax = k < n ? k : n;
    double *hbuf = NULL;
    int rc = 0;

    if (kmax == 0)
        return 0;
    /* one block: the selection heap's scores (kmax doubles, first for
     * alignment), then the float scores, the pass-1 buffer (2·kmax) and
     * the output scores if the caller wants none */
    hbuf = malloc((size_t)kmax * sizeof(double) + ((size_t)n + 3 * (size_t)kmax) * sizeof(float));
    if (!hbuf)
        return -ENOMEM;
    float *c = (float *)(hbuf + kmax);
    float *tbuf = c + n;
    float *scores = out_score ? out_score : tbuf + 2 * (size_t)kmax;

    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0f, idx->u, (int)d, qn, 1, 0.0f,
                c, 1);
    uint32_t excluded = 0;
    const uint32_t *lists[2] = {ex1, ex2};
    const size_t counts[2] = {n1, n2};
    for (int l = 0; l < 2; l++)
        for (size_t t = 0; t < counts[l]; t++) {
            uint32_t j = lists[l][t];
            if (j >= n) {
                rc = -EINVAL;
                goto out;
            }
            if (c[j] != -INFINITY) {
                c[j] = -INFINITY;
                excluded++;
            }
        }
    if (self < n && c[self] != -INFINITY) {
        c[self] = -INFINITY;
        excluded++;
    }
    const uint32_t avail = n - excluded;
    const uint32_t kf = kmax < avail ? kmax : avail;
    knn__select(idx, qn, c, avail, kf, tbuf, hbuf, out_idx, scores);
    rc = (int)kf;

out:
    free(hbuf);
    return rc;
}

int knn_index_neighbors(const struct knn_index *idx, uint32_t i, uint32_t k, uint32_t *out_idx,
                        float *out_score)
{
    if (!idx || !out_idx || i >= idx->n)
        return -EINVAL;
    const uint32_t all = idx->n - 1;
    const uint32_t want = k < all ? k : all;
    if (want == 0)
        return 0;
    if (idx->nbr_idx && (want <= idx->k)) {
        memcpy(out_idx, idx->nbr_idx + (size_t)i * idx->k, (size_t)want * sizeof(uint32_t));
        if (out_score)
            memcpy(out_score, idx->nbr_score + (size_t)i * idx->k, (size_t)want * sizeof(float));
        return (int)want;
    }
    return scan(idx, idx->u + (size_t)i * idx->d, want, NULL, 0, NULL, 0, i, out_idx, out_score);
}

/* Normalises q into a malloc'ed buffer (*qn, caller frees). */
static int normalised_copy(const struct knn_index *idx, const float *q, float **qn)
{
    *qn = malloc((size_t)idx->d * sizeof(float));
    if (!*qn)
        return -ENOMEM;
    return knn__normalise(q, idx->d, *qn);
}

int knn_index_query_vector(const struct knn_index *idx, const float *q, uint32_t k,
                           const uint32_t *exclude, size_t n_exclude, uint32_t *out_idx,
                           float *out_score)
{
    float *qn = NULL;
    int rc;

    if (!idx || !q || !out_idx || (n_exclude > 0 && !exclude))
        return -EINVAL;
    rc = normalised_copy(idx, q, &qn);
    if (rc < 0)
        goto out;
    rc = scan(idx, qn, k, exclude, n_exclude, NULL, 0, UINT32_MAX, out_idx, out_score);
out:
    free(qn);
    return rc;
}

int knn_index_sum_normalised(const struct knn_index *idx, const uint32_t *items, size_t n_items,
                             float *out)
{
    double *acc = NULL;
    int rc = 0;

    if (!idx || !out || (n_items > 0 && !items))
        return -EINVAL;
    acc = calloc(idx->d, sizeof(double));
    if (!acc)
        return -ENOMEM;
    for (size_t t = 0; t < n_items; t++) {
        if (items[t] >= idx->n) {
            rc = -EINVAL;
            goto out;
        }
        const float *row = idx->u + (size_t)items[t] * idx->d;
        for (uint32_t c = 0; c < idx->d; c++)
            acc[c] += row[c];
    }
    for (uint32_t c = 0; c < idx->d; c++)
        out[c] = (float)acc[c];
out:
    free(acc);
    return rc;
}

int knn_index_recommend(const struct knn_index *idx, const uint32_t *items, size_t n_items,
                        const uint32_t *exclude, size_t n_exclude, uint32_t k, uint32_t *out_idx,
                        float *out_score)
{
    float *q = NULL;
    int rc;

    if (!idx || !out_idx || (n_items > 0 && !items) || (n_exclude > 0 && !exclude))
        return -EINVAL;
    q = malloc((size_t)idx->d * sizeof(float));
    if (!q)
        return -ENOMEM;
    rc = knn_index_sum_normalised(idx, items, n_items, q);
    if (rc < 0)
        goto out;
    /* q is finite: a sum of at most n unit vectors. Normalised in place. */
    rc = knn__normalise(q, idx->d, q);
    if (rc < 0)
        goto out;
    rc = scan(idx, q, k, items, n_items, exclude, n_exclude, UINT32_MAX, out_idx, out_score);
out:
    free(q);
    return rc;
}

uint32_t knn_index_n(const struct knn_index *idx)
{
    return idx->n;
}

uint32_t knn_index_dims(const struct knn_index *idx)
{
    return idx->d;
}

uint32_t knn_index_k(const struct knn_index *idx)
{
    return idx->k;
}

const float *knn_index_row(const struct knn_index *idx, uint32_t i)
{
    return i < idx->n ? idx->u + (size_t)i * idx->d : NULL;
}

float knn_index_score(const struct knn_index *idx, uint32_t i, uint32_t j)
{
    if (i >= idx->n || j >= idx->n)
        return NAN;
    return knn__score(idx->u + (size_t)i * idx->d, idx->u + (size_t)j * idx->d, idx->d);
}

size_t knn_index_bytes(const struct knn_index *idx)
{
    if (!idx)
        return 0;
    size_t b = sizeof(*idx) + (size_t)idx->n * idx->d * sizeof(float);
    if (idx->rank)
        b += (size_t)idx->n * sizeof(uint32_t);
    if (idx->nbr_idx)
        b += (size_t)idx->n * idx->k * (sizeof(uint32_t) + sizeof(float));
    return b;
}
