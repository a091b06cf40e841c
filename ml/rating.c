/*
 * Rating matrices from PMI results (see rating.h).
 */
#include "ml/rating.h"

#include <errno.h>
#include <string.h>

void rating_params_init(struct rating_params *p)
{
    p->target = RATING_SCORE;
    p->include_diagonal = 1;
}

int rating_target_parse(const char *name, enum rating_target *out)
{
    static const char *const names[] = {"score", "pmi", "cooc"};
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (enum rating_target)i;
            return 0;
        }
    return -EINVAL;
}

int rating_values(const struct cooc_result *r, const struct rating_params *p, float *val)
{
    if (!r || !p || (!val && r->nnz))
        return -EINVAL;
    for (uint32_t i = 0; i < r->n; i++) {
        for (uint64_t e = r->row_ptr[i]; e < r->row_ptr[i + 1]; e++) {
            double v;
            if (r->col[e] == i && !p->include_diagonal) {
                val[e] = 0;
                continue;
            }
            switch (p->target) {
            case RATING_PMI: v = cooc_pmi(r, i, e); break;
            case RATING_COOC: v = (double)r->cooc[e]; break;
            default: v = cooc_score(r, i, e); break;
            }
            val[e] = (float)v;
        }
    }
    return 0;
}
