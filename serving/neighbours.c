/*
 * Neighbour queries (see neighbours.h): one dispatch over the sources,
 * each ranked with ml/rank.h's order. Stateless; any thread.
 */
#include "serving/neighbours.h"

#include <errno.h>

#include "ml/cooc.h"
#include "ml/knn.h"
#include "ml/rank.h"
#include "ml/scores.h"
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

/* A matrix source: one scored row (similar) or the sum of the inputs'
 * rows (recommend), ml/scores.c. */
static int matrix(const struct serving_items *src, const struct serving_query *q,
                  uint32_t *out_idx, double *out_score)
{
    const struct cooc_result *r = src->cooc;
    if (!r || q->metric != SERVING_METRIC_COSINE)
        return -EINVAL;
    struct score_params p = {.pop_weight = q->pop_weight, .alpha = q->alpha, .beta = q->beta};
    p.source = q->source == SERVING_SOURCE_COOC  ? SCORE_COOC
               : q->source == SERVING_SOURCE_PMI ? SCORE_PMI
                                                 : SCORE_RP3;
    if (p.source == SCORE_RP3 && !src->walk)
        return -ENODATA;
    if (q->items)
        return score_recommend(r, src->walk, &p, q->prep, q->items, q->n_items, q->exclude,
                               q->n_exclude, q->k, src->tie, out_idx, out_score);
    return score_similar(r, src->walk, &p, q->prep, q->item, q->k, src->tie, out_idx, out_score);
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
    case SERVING_SOURCE_RP3:
        return matrix(src, q, out_idx, out_score);
    }
    return -EINVAL;
}

/* Scores a matrix query computes for input i: its row, and for rp3 the
 * walk through the playlists holding it (ml/scores.c rp3_row). */
static uint64_t matrix_row_cost(const struct serving_items *src, const struct serving_query *q,
                                uint32_t i)
{
    const struct cooc_result *r = src->cooc;
    if (!r || i >= r->n)
        return 0;
    uint64_t c = r->row_ptr[i + 1] - r->row_ptr[i];
    const struct score_walk *w = src->walk;
    if (q->source == SERVING_SOURCE_RP3 && w && r->group_ptr && i < w->n)
        for (uint64_t g = w->item_ptr[i]; g < w->item_ptr[i + 1]; g++)
            c += r->group_ptr[w->item_groups[g] + 1] - r->group_ptr[w->item_groups[g]];
    return c;
}

uint64_t serving_neighbours_cost(const struct serving_items *src, const struct serving_query *q)
{
    if (!src || !q)
        return 0;
    if (q->source != SERVING_SOURCE_EMBEDDING) {
        if (!q->items)
            return matrix_row_cost(src, q, q->item);
        uint64_t c = 0;
        for (size_t t = 0; t < q->n_items; t++)
            c += matrix_row_cost(src, q, q->items[t]);
        return c;
    }
    if (use_ann(src, q)) {
        /* a graph search visits about ef candidates (ANN_DOT_CANDIDATES x
         * ef for dot, as ann_index_neighbors searches), each with its 2·M
         * links scored */
        const struct ann_index_stats *st = ann_index_stats(src->ann);
        if (q->metric == SERVING_METRIC_COSINE && q->k <= st->list_k)
            return (uint64_t)q->k * src->dim; /* a kept list: k exact scores */
        uint64_t ef = st->params.ef_search > q->k ? st->params.ef_search : q->k;
        if (q->metric == SERVING_METRIC_DOT)
            ef *= ANN_DOT_CANDIDATES;
        return ef * 2 * st->params.m * (uint64_t)src->dim;
    }
    if (q->metric == SERVING_METRIC_COSINE && !q->items && src->index) {
        /* the same rule as knn_index_neighbors: lists hold min(K, n - 1) */
        uint32_t lists = knn_index_k(src->index);
        uint64_t want = src->n > 0 && q->k > src->n - 1 ? src->n - 1 : q->k;
        if (lists > 0 && want <= lists)
            return want;
    }
    uint64_t dim = src->index ? knn_index_dims(src->index) : src->dim;
    return (uint64_t)src->n * dim + (q->items ? (uint64_t)q->n_items * dim : 0);
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
    *out = (struct serving_items){.n = m->res.n,
                                  .tie = m->id_rank,
                                  .cooc = &m->res,
                                  .walk = m->walk.item_ptr ? &m->walk : NULL};
}

int serving_neighbours_rank(void *ud, uint32_t q, uint32_t k, uint32_t *out)
{
    struct serving_ranker *r = ud;
    struct serving_query sq = r->query;
    sq.k = k;
    sq.item = q;
    sq.items = NULL;
    return serving_neighbours_query(&r->items, &sq, out, r->score);
}

int serving_neighbours_recommend(void *ud, const uint32_t *in, size_t n_in, uint32_t k,
                                 uint32_t *out)
{
    struct serving_ranker *r = ud;
    struct serving_query sq = r->query;
    sq.k = k;
    sq.items = in;
    sq.n_items = n_in;
    sq.exclude = NULL;
    sq.n_exclude = 0;
    return serving_neighbours_query(&r->items, &sq, out, r->score);
}
