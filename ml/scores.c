/*
 * Scores of the matrix sources (see scores.h). A row is scored in place
 * over the row's own entries: cooc and pmi read each entry once; rp3 walks
 * q's groups in ascending order and adds |u|^-α to the slot of every
 * co-member (found by binary search in the row, whose columns ascend), so
 * each slot's sum has one fixed order. Recommendations accumulate rows in
 * a dense array over the items. No I/O.
 */
#include "ml/scores.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/rank.h"

void score_params_init(struct score_params *p, enum score_source source)
{
    *p = (struct score_params){.source = source,
                               .pop_weight = 0,
                               .alpha = SCORE_RP3_DEFAULT_ALPHA,
                               .beta = SCORE_RP3_DEFAULT_BETA};
}

static int within(double x, double lo, double hi)
{
    return isfinite(x) && x >= lo && x <= hi;
}

int score_params_check(const struct score_params *p)
{
    if (!p)
        return -EINVAL;
    switch (p->source) {
    case SCORE_COOC:
        return within(p->pop_weight, SCORE_POP_WEIGHT_MIN, SCORE_POP_WEIGHT_MAX) ? 0 : -EINVAL;
    case SCORE_PMI:
        return 0;
    case SCORE_RP3:
        return within(p->alpha, SCORE_ALPHA_MIN, SCORE_ALPHA_MAX) &&
                       within(p->beta, SCORE_BETA_MIN, SCORE_BETA_MAX)
                   ? 0
                   : -EINVAL;
    }
    return -EINVAL;
}

int score_walk_init(struct score_walk *w, const struct cooc_result *r)
{
    memset(w, 0, sizeof *w);
    if (!r->group_ptr || !r->group_items)
        return -ENODATA;
    w->n = r->n;
    w->item_ptr = calloc((size_t)r->n + 1, sizeof *w->item_ptr);
    w->item_groups = malloc(sizeof *w->item_groups * ((size_t)r->total + 1));
    if (!w->item_ptr || !w->item_groups) {
        score_walk_deinit(w);
        return -ENOMEM;
    }
    const uint64_t ng = r->valid_groups;
    for (uint64_t x = 0; x < r->total; x++)
        w->item_ptr[r->group_items[x] + 1]++;
    for (uint32_t i = 0; i < r->n; i++)
        w->item_ptr[i + 1] += w->item_ptr[i];
    /* fill in group order, so each item's groups ascend; item_ptr is the
     * cursor, shifted back after */
    for (uint64_t g = 0; g < ng; g++)
        for (uint64_t x = r->group_ptr[g]; x < r->group_ptr[g + 1]; x++)
            w->item_groups[w->item_ptr[r->group_items[x]]++] = (uint32_t)g;
    for (uint32_t i = r->n; i > 0; i--)
        w->item_ptr[i] = w->item_ptr[i - 1];
    w->item_ptr[0] = 0;
    return 0;
}

void score_walk_deinit(struct score_walk *w)
{
    if (!w)
        return;
    free(w->item_ptr);
    free(w->item_groups);
    memset(w, 0, sizeof *w);
}

/* The powers, one definition for the prepared tables and the on-the-fly
 * path (pow is deterministic: the same arguments give the same double). */
static double item_pow(const struct cooc_result *r, const struct score_params *p, uint32_t j)
{
    return p->source == SCORE_COOC ? pow((double)r->freq[j], p->pop_weight)
                                   : pow((double)r->freq[j], -p->beta);
}

static double query_pow(const struct cooc_result *r, const struct score_params *p, uint32_t q)
{
    return pow((double)r->freq[q], -p->alpha);
}

static double group_pow(const struct cooc_result *r, const struct score_params *p, uint64_t g)
{
    return pow((double)(r->group_ptr[g + 1] - r->group_ptr[g]), -p->alpha);
}

void score_prep_deinit(struct score_prep *prep)
{
    if (!prep)
        return;
    free(prep->item_pow);
    free(prep->query_pow);
    free(prep->group_pow);
    free(prep->walk);
    memset(prep, 0, sizeof *prep);
}

/* Slot of column j in row [b, e) of r (present: j shares a group with
 * the row's item). */
static uint64_t row_slot(const struct cooc_result *r, uint64_t b, uint64_t e, uint32_t j)
{
    uint64_t lo = b, hi = e;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (r->col[mid] < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* out[x - b] = Σ_{u ∋ q, col[x]} gw(u) over row q's entries [b, e): q's
 * groups in ascending order, each adding its weight to its co-members'
 * slots. gw from group_pow when given, else computed. */
static void walk_row(const struct cooc_result *r, const struct score_walk *w,
                     const struct score_params *p, const double *group_pw, uint32_t q, double *out)
{
    const uint64_t b = r->row_ptr[q], e = r->row_ptr[q + 1];
    memset(out, 0, sizeof *out * (e - b));
    for (uint64_t t = w->item_ptr[q]; t < w->item_ptr[q + 1]; t++) {
        uint32_t g = w->item_groups[t];
        double gw = group_pw ? group_pw[g] : group_pow(r, p, g);
        for (uint64_t x = r->group_ptr[g]; x < r->group_ptr[g + 1]; x++) {
            uint32_t j = r->group_items[x];
            if (j != q)
                out[row_slot(r, b, e, j) - b] += gw;
        }
    }
}

static void rp3_row(const struct cooc_result *r, const struct score_walk *w,
                    const struct score_params *p, const struct score_prep *prep, uint32_t q,
                    double *out)
{
    const uint64_t b = r->row_ptr[q], e = r->row_ptr[q + 1];
    if (prep)
        memcpy(out, prep->walk + b, sizeof *out * (e - b));
    else
        walk_row(r, w, p, NULL, q, out);
    double qw = prep ? prep->query_pow[q] : query_pow(r, p, q);
    for (uint64_t x = b; x < e; x++) {
        uint32_t j = r->col[x];
        if (j != q)
            out[x - b] = out[x - b] * qw * (prep ? prep->item_pow[j] : item_pow(r, p, j));
    }
}

int score_prep_update(struct score_prep *prep, const struct cooc_result *r,
                      const struct score_walk *w, const struct score_params *p)
{
    int rc = -EINVAL;
    if (!prep || !r || score_params_check(p) != 0)
        goto fail;
    if (p->source == SCORE_RP3 && !r->group_ptr) {
        rc = -ENODATA;
        goto fail;
    }
    if (p->source == SCORE_RP3 && (!w || w->n != r->n))
        goto fail;
    rc = -ENOMEM;
    if (!prep->item_pow && !(prep->item_pow = malloc(sizeof(double) * ((size_t)r->n + 1))))
        goto fail;
    for (uint32_t j = 0; j < r->n; j++)
        prep->item_pow[j] = p->source == SCORE_PMI ? 0 : item_pow(r, p, j);
    if (p->source != SCORE_RP3 || (prep->have_alpha && prep->alpha == p->alpha))
        return 0;
    prep->have_alpha = 0;
    if (!prep->query_pow && !(prep->query_pow = malloc(sizeof(double) * ((size_t)r->n + 1))))
        goto fail;
    if (!prep->group_pow &&
        !(prep->group_pow = malloc(sizeof(double) * ((size_t)r->valid_groups + 1))))
        goto fail;
    if (!prep->walk && !(prep->walk = malloc(sizeof(double) * ((size_t)r->nnz + 1))))
        goto fail;
    for (uint32_t q = 0; q < r->n; q++)
        prep->query_pow[q] = query_pow(r, p, q);
    for (uint64_t g = 0; g < r->valid_groups; g++)
        prep->group_pow[g] = group_pow(r, p, g);
    for (uint32_t q = 0; q < r->n; q++)
        walk_row(r, w, p, prep->group_pow, q, prep->walk + r->row_ptr[q]);
    prep->have_alpha = 1;
    prep->alpha = p->alpha;
    return 0;
fail:
    score_prep_deinit(prep);
    return rc;
}

/* s(q, col[x]) for cooc and pmi: one entry, no scratch. */
static double entry_score(const struct cooc_result *r, const struct score_params *p,
                          const struct score_prep *prep, uint32_t q, uint64_t x)
{
    if (p->source == SCORE_PMI)
        return cooc_score(r, q, x);
    double c = (double)r->cooc[x];
    if (p->pop_weight == 0)
        return c; /* today's answers, bit for bit */
    return c * (prep ? prep->item_pow[r->col[x]] : item_pow(r, p, r->col[x]));
}

int score_row(const struct cooc_result *r, const struct score_walk *w, const struct score_params *p,
              const struct score_prep *prep, uint32_t q, double *out)
{
    if (!r || !p || !out || q >= r->n || score_params_check(p) != 0)
        return -EINVAL;
    const uint64_t b = r->row_ptr[q], e = r->row_ptr[q + 1];
    if (p->source != SCORE_RP3) {
        for (uint64_t x = b; x < e; x++)
            out[x - b] = r->col[x] == q ? 0 : entry_score(r, p, prep, q, x);
        return 0;
    }
    if (!r->group_ptr)
        return -ENODATA;
    if (!w || w->n != r->n)
        return -EINVAL;
    rp3_row(r, w, p, prep, q, out);
    return 0;
}

int score_similar(const struct cooc_result *r, const struct score_walk *w,
                  const struct score_params *p, const struct score_prep *prep, uint32_t q,
                  uint32_t k, const uint32_t *tie, uint32_t *out_idx, double *out_score)
{
    if (!r || !p || !out_idx || !out_score || q >= r->n || score_params_check(p) != 0)
        return -EINVAL;
    const uint64_t b = r->row_ptr[q], e = r->row_ptr[q + 1];
    struct rank_top top;
    rank_top_init(&top, out_idx, out_score, k, tie);
    if (p->source != SCORE_RP3) { /* no scratch: the serving hot path */
        for (uint64_t x = b; x < e; x++)
            if (r->col[x] != q)
                rank_top_push(&top, entry_score(r, p, prep, q, x), r->col[x]);
        return (int)rank_top_sort(&top);
    }
    double *row = malloc(sizeof *row * (e - b + 1));
    if (!row)
        return -ENOMEM;
    int rc = score_row(r, w, p, prep, q, row);
    if (rc == 0) {
        for (uint64_t x = b; x < e; x++)
            if (r->col[x] != q)
                rank_top_push(&top, row[x - b], r->col[x]);
        rc = (int)rank_top_sort(&top);
    }
    free(row);
    return rc;
}

int score_recommend(const struct cooc_result *r, const struct score_walk *w,
                    const struct score_params *p, const struct score_prep *prep, const uint32_t *in,
                    size_t n_in, const uint32_t *exclude, size_t n_exclude, uint32_t k,
                    const uint32_t *tie, uint32_t *out_idx, double *out_score)
{
    if (!r || !out_idx || !out_score || (n_in && !in) || (n_exclude && !exclude))
        return -EINVAL;
    for (size_t t = 0; t < n_in; t++)
        if (in[t] >= r->n)
            return -EINVAL;
    /* mark: 0 untouched, 1 candidate, 2 excluded, 3 input */
    const size_t n = r->n;
    double *acc = calloc(n + 1, sizeof *acc);
    unsigned char *mark = calloc(n + 1, 1);
    uint32_t *touched = malloc(sizeof *touched * (n + 1));
    uint64_t widest = 0;
    for (size_t t = 0; t < n_in; t++) {
        uint64_t len = r->row_ptr[in[t] + 1] - r->row_ptr[in[t]];
        widest = len > widest ? len : widest;
    }
    double *row = malloc(sizeof *row * (widest + 1));
    int rc = 0;
    size_t n_touched = 0;
    if (!acc || !mark || !touched || !row) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t t = 0; t < n_exclude; t++)
        if (exclude[t] < n)
            mark[exclude[t]] = 2;
    for (size_t t = 0; t < n_in; t++) {
        uint32_t q = in[t];
        if (mark[q] == 3)
            continue; /* a repeated input counts once */
        mark[q] = 3;
        if ((rc = score_row(r, w, p, prep, q, row)) != 0)
            goto out;
        const uint64_t b = r->row_ptr[q], e = r->row_ptr[q + 1];
        for (uint64_t x = b; x < e; x++) {
            uint32_t j = r->col[x];
            if (j == q)
                continue;
            if (mark[j] == 0) {
                mark[j] = 1;
                touched[n_touched++] = j;
            }
            acc[j] += row[x - b];
        }
    }
    struct rank_top top;
    rank_top_init(&top, out_idx, out_score, k, tie);
    for (size_t t = 0; t < n_touched; t++)
        if (mark[touched[t]] == 1)
            rank_top_push(&top, acc[touched[t]], touched[t]);
    rc = (int)rank_top_sort(&top);
out:
    free(acc);
    free(mark);
    free(touched);
    free(row);
    return rc;
}
