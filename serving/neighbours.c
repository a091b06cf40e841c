/*
 * Neighbour queries (see neighbours.h): one dispatch over the sources,
 * each ranked with ml/rank.h's order. Stateless; any thread.
 */
#include "serving/neighbours.h"

#include <errno.h>

#include "ml/cooc.h"
#include "ml/knn.h"
#include "ml/rank.h"
#include "serving/ann_index.h"
#include "serving/pmi_cache.h"
#include "serving/serving.h"

/* Cosine through the kNN index: its own selection (float scores, the
 * same order), widened to double. */
static int cosine(const struct serving_items *src, const struct serving_query *q, uint32_t *out_idx,
                  double *out_score)
{
    float fs[SERVING_MAX_K];
    int n;
    if (!src->index)
        return -EINVAL;
    if (q->items)
        n = knn_index_recommend(src->index, q->items, q->n_items, q->exclude, q->n_exclude, q->k,
                                out_idx, fs);
    else
        n = knn_index_neighbors(src->index, q->item, q->k, out_idx, fs);
    for (int t = 0; t < n; t++)
        out_score[t] = fs[t];
    return n;
}

/* One row of the co-occurrence matrix by count or by cooc·pmi. */
static int matrix_row(const struct serving_items *src, const struct serving_query *q,
                      uint32_t *out_idx, double *out_score)
{
    const struct cooc_result *r = src->cooc;
    const uint32_t i = q->item;
    if (!r || i >= r->n || q->items || q->metric != SERVING_METRIC_COSINE)
        return -EINVAL;
    struct rank_top top;
    rank_top_init(&top, out_idx, out_score, q->k, src->tie);
    for (uint64_t x = r->row_ptr[i]; x < r->row_ptr[i + 1]; x++) {
        if (r->col[x] == i)
            continue;
        double v = q->source == SERVING_SOURCE_COOC ? (double)r->cooc[x] : cooc_score(r, i, x);
        rank_top_push(&top, v, r->col[x]);
    }
    return (int)rank_top_sort(&top);
}

static int use_ann(const struct serving_items *src, const struct serving_query *q)
{
    return src->ann && !q->exact && !q->items && q->source == SERVING_SOURCE_EMBEDDING &&
           src->index && src->emb && q->item < src->n;
}

const char *serving_neighbours_index(const struct serving_items *src, const struct serving_query *q)
{
    return use_ann(src, q) ? "ann" : "exact";
}

int serving_neighbours_query(const struct serving_items *src, const struct serving_query *q,
                             uint32_t *out_idx, double *out_score)
{
    if (!src || !q || !out_idx || !out_score || q->k < 1 || q->k > SERVING_MAX_K)
        return -EINVAL;
    switch (q->source) {
    case SERVING_SOURCE_EMBEDDING:
        if (use_ann(src, q) &&
            (q->metric == SERVING_METRIC_COSINE || q->metric == SERVING_METRIC_DOT))
            return ann_index_neighbors(src->ann, src->index, src->emb, src->tie,
                                       q->metric == SERVING_METRIC_DOT, q->item, q->k, out_idx,
                                       out_score);
        if (q->metric == SERVING_METRIC_COSINE)
            return cosine(src, q, out_idx, out_score);
        if (q->metric != SERVING_METRIC_DOT || q->items || !src->emb)
            return -EINVAL;
        return rank_dot(src->emb, src->n, src->dim, q->item, q->k, src->tie, out_idx, out_score);
    case SERVING_SOURCE_COOC:
    case SERVING_SOURCE_PMI:
        return matrix_row(src, q, out_idx, out_score);
    }
    return -EINVAL;
}

void serving_items_of_model(const struct served_model *m, struct serving_items *out)
{
    *out = (struct serving_items){
        .n = m->data.n,
        .tie = m->rank,
        .index = m->index,
        .emb = m->data.embedding,
        .dim = m->data.dimensions,
        .ann = m->ann,
    };
}

void serving_items_of_pmi(const struct pmi_matrix *m, struct serving_items *out)
{
    *out = (struct serving_items){.n = m->res.n, .tie = m->id_rank, .cooc = &m->res};
}

int serving_neighbours_rank(void *ud, uint32_t q, uint32_t k, uint32_t *out)
{
    struct serving_ranker *r = ud;
    struct serving_query sq = {.source = r->source, .metric = r->metric, .k = k, .item = q};
    return serving_neighbours_query(&r->items, &sq, out, r->score);
}
