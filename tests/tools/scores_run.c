/*
 * Test tool for tests/oracle/test_scores_numpy.py: computes the PMI result
 * of the groups on stdin (ml/cooc.c) and answers similar / recommend
 * queries of the matrix sources with ml/scores.c, printing item keys and
 * scores in full precision, so the oracle can compare them with numpy.
 *
 * stdin (whitespace-separated numbers):
 *   MIN_ITEM_FREQUENCY MAX_GROUP_SIZE
 *   G, then G groups: n key_1 .. key_n (keys ascending)
 *   Q, then Q queries:
 *     0 SOURCE GAMMA ALPHA BETA K ITEM_KEY                  (similar)
 *     1 SOURCE GAMMA ALPHA BETA K N_IN keys.. N_EX keys..   (recommend)
 *   SOURCE: 0 cooc, 1 pmi, 2 rp3.
 * stdout: one line per query, "key:score" pairs best first (ties by index
 * = key order, no id rank), or "error N". Exit 1 on malformed input.
 * Single-threaded; owns everything it allocates.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ml/cooc.h"
#include "ml/scores.h"

static int64_t dense_of(const struct cooc_result *r, long key)
{
    for (uint32_t d = 0; d < r->n; d++)
        if (r->keys[d] == (uint32_t)key)
            return d;
    return -1;
}

static int read_keys(const struct cooc_result *r, uint32_t *out, size_t *n)
{
    long cnt, key;
    if (scanf("%ld", &cnt) != 1 || cnt < 0 || cnt > 1000)
        return -1;
    *n = 0;
    for (long t = 0; t < cnt; t++) {
        if (scanf("%ld", &key) != 1)
            return -1;
        int64_t d = dense_of(r, key);
        if (d >= 0)
            out[(*n)++] = (uint32_t)d;
    }
    return 0;
}

int main(void)
{
    long min_freq, max_size, ng;
    if (scanf("%ld %ld %ld", &min_freq, &max_size, &ng) != 3 || ng < 0 || ng > 100000)
        return 1;
    uint64_t *off = malloc(sizeof *off * ((size_t)ng + 1));
    uint32_t *items = malloc(sizeof *items * ((size_t)ng * 100 + 1));
    uint32_t max_key = 0;
    off[0] = 0;
    for (long g = 0; g < ng; g++) {
        long n, key;
        if (scanf("%ld", &n) != 1 || n < 0 || n > 100)
            return 1;
        off[g + 1] = off[g];
        for (long t = 0; t < n; t++) {
            if (scanf("%ld", &key) != 1 || key < 1)
                return 1;
            items[off[g + 1]++] = (uint32_t)key;
            max_key = (uint32_t)key > max_key ? (uint32_t)key : max_key;
        }
    }
    struct cooc_groups groups = {(size_t)ng, off, items, max_key};
    struct cooc_params cp;
    cooc_params_init(&cp);
    cp.min_item_frequency = min_freq;
    cp.max_group_size = max_size;
    struct cooc_result r;
    struct score_walk w;
    if (cooc_compute(&groups, &cp, NULL, NULL, &r) != 0 || score_walk_init(&w, &r) != 0)
        return 1;
    long nq;
    if (scanf("%ld", &nq) != 1)
        return 1;
    uint32_t in[1000], ex[1000], idx[1000];
    double score[1000];
    for (long t = 0; t < nq; t++) {
        long kind, source, k, item;
        struct score_params p;
        if (scanf("%ld %ld %lf %lf %lf %ld", &kind, &source, &p.pop_weight, &p.alpha, &p.beta,
                  &k) != 6 ||
            k < 1 || k > 1000)
            return 1;
        p.source = source == 0 ? SCORE_COOC : source == 1 ? SCORE_PMI : SCORE_RP3;
        int got;
        if (kind == 0) {
            if (scanf("%ld", &item) != 1)
                return 1;
            int64_t q = dense_of(&r, item);
            got = q < 0
                      ? -1000
                      : score_similar(&r, &w, &p, NULL, (uint32_t)q, (uint32_t)k, NULL, idx, score);
        } else {
            size_t ni, ne;
            if (read_keys(&r, in, &ni) != 0 || read_keys(&r, ex, &ne) != 0)
                return 1;
            got = score_recommend(&r, &w, &p, NULL, in, ni, ex, ne, (uint32_t)k, NULL, idx, score);
        }
        if (got < 0) {
            printf("error %d\n", got);
            continue;
        }
        for (int x = 0; x < got; x++)
            printf("%s%u:%.17g", x ? " " : "", r.keys[idx[x]], score[x]);
        printf("\n");
    }
    score_walk_deinit(&w);
    cooc_result_deinit(&r);
    free(off);
    free(items);
    return 0;
}
