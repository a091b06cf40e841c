/*
 * Rating matrices from PMI results (see rating.h).
 */
#include "ml/rating.h"

#include <errno.h>
#include <math.h>
#include <string.h>

void rating_params_init(struct rating_params *p)
{
    p->target = RATING_SCORE;
    p->include_diagonal = 1;
    p->shift = 0;
    p->min_cooc = 0;
    p->drop_negative = 0;
    p->scale = RATING_SCALE_LINEAR;
    p->epsilon = 1;
}

static int parse_name(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (name && strcmp(name, names[i]) == 0)
            return i;
    return -EINVAL;
}

int rating_target_parse(const char *name, enum rating_target *out)
{
    static const char *const names[] = {"score", "pmi", "cooc", "sppmi"};
    int i = parse_name(name, names, 4);
    if (i < 0)
        return i;
    *out = (enum rating_target)i;
    return 0;
}

int rating_scale_parse(const char *name, enum rating_scale *out)
{
    static const char *const names[] = {"linear", "log", "sqrt"};
    int i = parse_name(name, names, 3);
    if (i < 0)
        return i;
    *out = (enum rating_scale)i;
    return 0;
}

/* The target's value of entry e in row i, before any transform. */
static double target_value(const struct cooc_result *r, const struct rating_params *p, uint32_t i,
                           uint64_t e)
{
    switch (p->target) {
    case RATING_PMI:
        return cooc_pmi(r, i, e);
    case RATING_COOC:
        return (double)r->cooc[e];
    case RATING_SPPMI:
        return fmax(cooc_pmi(r, i, e) - p->shift, 0.0);
    default:
        return cooc_score(r, i, e);
    }
}

int rating_values(const struct cooc_result *r, const struct rating_params *p, float *val)
{
    if (!r || !p || (!val && r->nnz))
        return -EINVAL;
    if (!(p->shift >= 0) || !isfinite(p->shift))
        return -EINVAL;
    if (p->scale == RATING_SCALE_LOG && (!(p->epsilon > 0) || !isfinite(p->epsilon)))
        return -EINVAL;
    for (uint32_t i = 0; i < r->n; i++) {
        for (uint64_t e = r->row_ptr[i]; e < r->row_ptr[i + 1]; e++) {
            if ((r->col[e] == i && !p->include_diagonal) || r->cooc[e] < p->min_cooc) {
                val[e] = 0;
                continue;
            }
            double v = target_value(r, p, i, e);
            if (v < 0 && p->drop_negative)
                v = 0;
            if (p->scale == RATING_SCALE_LOG)
                v = copysign(log1p(fabs(v) / p->epsilon), v);
            else if (p->scale == RATING_SCALE_SQRT)
                v = copysign(sqrt(fabs(v)), v);
            val[e] = (float)v;
        }
    }
    return 0;
}
