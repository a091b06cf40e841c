/*
 * Unit tests for serving/neighbours (the one neighbour-query interface of
 * the HTTP handlers and the evaluate job) on five hand-made items whose
 * ids sort differently from their indices ("10" < "9" < "a" < "b" < "c"
 * byte-wise), so every tie shows the id rule:
 *   - embedding cosine (precomputed lists and scan), dot, recommend;
 *   - cooc and pmi rows against the rule the handler used before
 *     (qsort by score descending, then strcmp of the ids), every row and k;
 *   - the eval ranker answers as the query; argument errors;
 *   - allocation failure (malloc wrapped at link time, see
 *     tests/CMakeLists.txt): the cosine scan and recommend fail with
 *     -ENOMEM, which the handler turns into 503, never an empty 200; the
 *     precomputed lookup, dot, cooc and pmi need no allocation at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/cooc.h"
#include "ml/knn.h"
#include "serving/neighbours.h"

/* ---- allocation failure hook (-Wl,--wrap=malloc) ---- */

static int fail_malloc;
static int malloc_calls;
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_malloc(size_t size)
{
    malloc_calls++;
    return fail_malloc ? NULL : __real_malloc(size);
}

/* ---- fixture ---- */

#define N 5
static const char *const ids[N] = {"b", "a", "10", "9", "c"};
static const uint32_t tie[N] = {3, 2, 0, 1, 4}; /* position in strcmp order */
/* cosine from item 0: items 1 and 3 score 1 (tie: "9" before "a"), 4
 * 0.707, 2 0.447. dot from 0: 3 → 3, 1 and 2 → 2 (tie: "10" before "a"),
 * 4 → 1. */
static const float emb[N * 2] = {1, 0, 2, 0, 2, -4, 3, 0, 1, 1};

/* Symmetric counts with diagonals; row 0 ties 1, 2, 3 at 2. */
static const uint64_t row_ptr[N + 1] = {0, 5, 7, 9, 11, 13};
static const uint32_t col[] = {0, 1, 2, 3, 4, 0, 1, 0, 2, 0, 3, 0, 4};
static const uint32_t cnt[] = {4, 2, 2, 2, 5, 2, 3, 2, 2, 2, 2, 5, 5};
static const uint32_t keys[N] = {10, 11, 12, 13, 14};
static const uint32_t freq[N] = {10, 10, 10, 10, 50};

static struct cooc_result matrix(void)
{
    struct cooc_result r = {0};
    r.n = N;
    r.keys = (uint32_t *)keys;
    r.freq = (uint32_t *)freq;
    r.total = 100;
    r.nnz = row_ptr[N];
    r.row_ptr = (uint64_t *)row_ptr;
    r.col = (uint32_t *)col;
    r.cooc = (uint32_t *)cnt;
    return r;
}

/* ---- the handler's former rule, as an oracle ---- */

struct scored {
    uint32_t col;
    double score;
    const char *id;
};

static int scored_cmp(const void *a, const void *b)
{
    const struct scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return strcmp(x->id, y->id);
}

static void check_rows(enum serving_source source)
{
    struct cooc_result r = matrix();
    struct serving_items src = {.n = N, .tie = tie, .cooc = &r};
    for (uint32_t i = 0; i < N; i++) {
        struct scored sc[N];
        size_t n = 0;
        for (uint64_t x = row_ptr[i]; x < row_ptr[i + 1]; x++)
            if (col[x] != i)
                sc[n++] = (struct scored){
                    col[x], source == SERVING_SOURCE_COOC ? (double)cnt[x] : cooc_score(&r, i, x),
                    ids[col[x]]};
        qsort(sc, n, sizeof *sc, scored_cmp);
        for (uint32_t k = 1; k <= N + 1; k++) {
            struct serving_query q = {.source = source, .k = k, .item = i};
            uint32_t idx[N + 1];
            double score[N + 1];
            int got = serving_neighbours_query(&src, &q, idx, score);
            assert_int_equal(got, k < n ? k : n);
            for (int t = 0; t < got; t++) {
                assert_int_equal(idx[t], sc[t].col);
                assert_true(score[t] == sc[t].score);
            }
        }
    }
}

static void test_cooc_and_pmi_rows(void **state)
{
    (void)state;
    check_rows(SERVING_SOURCE_COOC);
    check_rows(SERVING_SOURCE_PMI);
    /* the worked answers: row 0 by count 4 (5), then the tie at 2 by id:
     * "10", "9", "a"; by cooc·pmi item 4 scores 0 (pmi 0), so it is last */
    struct cooc_result r = matrix();
    struct serving_items src = {.n = N, .tie = tie, .cooc = &r};
    uint32_t idx[4];
    double score[4];
    struct serving_query q = {.source = SERVING_SOURCE_COOC, .k = 4, .item = 0};
    assert_int_equal(serving_neighbours_query(&src, &q, idx, score), 4);
    const uint32_t want_cooc[] = {4, 2, 3, 1};
    assert_memory_equal(idx, want_cooc, sizeof want_cooc);
    q.source = SERVING_SOURCE_PMI;
    assert_int_equal(serving_neighbours_query(&src, &q, idx, score), 4);
    const uint32_t want_pmi[] = {2, 3, 1, 4};
    assert_memory_equal(idx, want_pmi, sizeof want_pmi);
    assert_true(score[0] == 2.0 && score[3] == 0.0);
}

static struct knn_index *make_index(int precompute)
{
    int err = 0;
    struct knn_index *index = knn_index_create(emb, N, 2, 2, tie, &err);
    assert_non_null(index);
    if (precompute) {
        struct knn_params kp;
        knn_params_init(&kp);
        kp.k = 3;
        kp.threads = 1;
        assert_int_equal(knn_index_precompute(index, &kp, NULL, NULL), 0);
    }
    return index;
}

static void test_embedding(void **state)
{
    (void)state;
    struct knn_index *index = make_index(0);
    struct serving_items src = {.n = N, .tie = tie, .index = index, .emb = emb, .dim = 2};
    uint32_t idx[N];
    double score[N];
    struct serving_query q = {.source = SERVING_SOURCE_EMBEDDING, .k = 4, .item = 0};
    assert_int_equal(serving_neighbours_query(&src, &q, idx, score), 4);
    const uint32_t want_cos[] = {3, 1, 4, 2};
    assert_memory_equal(idx, want_cos, sizeof want_cos);
    assert_true(score[0] == 1.0 && score[1] == 1.0);
    assert_true(fabs(score[2] - sqrt(0.5)) < 1e-6);
    /* the scores are the index's floats, widened */
    for (int t = 0; t < 4; t++)
        assert_true(score[t] == (double)knn_index_score(index, 0, idx[t]));

    q.metric = SERVING_METRIC_DOT;
    assert_int_equal(serving_neighbours_query(&src, &q, idx, score), 4);
    const uint32_t want_dot[] = {3, 2, 1, 4};
    const double want_dot_s[] = {3, 2, 2, 1};
    assert_memory_equal(idx, want_dot, sizeof want_dot);
    assert_memory_equal(score, want_dot_s, sizeof want_dot_s);

    /* recommend: the sum of items 1 and 4's unit vectors, both left out,
     * and item 2 excluded: the knn index's own answer */
    const uint32_t in[] = {1, 4}, ex[] = {2};
    struct serving_query r = {.source = SERVING_SOURCE_EMBEDDING,
                              .k = 5,
                              .items = in,
                              .n_items = 2,
                              .exclude = ex,
                              .n_exclude = 1};
    uint32_t kidx[N];
    float ks[N];
    int kn = knn_index_recommend(index, in, 2, ex, 1, 5, kidx, ks);
    assert_int_equal(kn, 2);
    assert_int_equal(serving_neighbours_query(&src, &r, idx, score), kn);
    for (int t = 0; t < kn; t++) {
        assert_int_equal(idx[t], kidx[t]);
        assert_true(score[t] == ks[t]);
    }
    knn_index_destroy(index);
}

static void test_eval_ranker_is_the_query(void **state)
{
    (void)state;
    struct knn_index *index = make_index(0);
    struct cooc_result m = matrix();
    struct serving_ranker *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->items = (struct serving_items){
        .n = N, .tie = tie, .index = index, .emb = emb, .dim = 2, .cooc = &m};
    const enum serving_source sources[] = {SERVING_SOURCE_EMBEDDING, SERVING_SOURCE_EMBEDDING,
                                           SERVING_SOURCE_COOC, SERVING_SOURCE_PMI};
    const enum serving_metric metrics[] = {SERVING_METRIC_COSINE, SERVING_METRIC_DOT,
                                           SERVING_METRIC_COSINE, SERVING_METRIC_COSINE};
    for (int s = 0; s < 4; s++)
        for (uint32_t i = 0; i < N; i++) {
            r->query.source = sources[s];
            r->query.metric = metrics[s];
            uint32_t a[N], b[N];
            double score[N];
            int na = serving_neighbours_rank(r, i, 3, a);
            struct serving_query q = {
                .source = sources[s], .metric = metrics[s], .k = 3, .item = i};
            int nb = serving_neighbours_query(&r->items, &q, b, score);
            assert_int_equal(na, nb);
            assert_true(na >= 0);
            assert_memory_equal(a, b, sizeof *a * (size_t)na);
        }
    free(r);
    knn_index_destroy(index);
}

static void test_errors(void **state)
{
    (void)state;
    struct knn_index *index = make_index(0);
    struct cooc_result m = matrix();
    struct serving_items full = {
        .n = N, .tie = tie, .index = index, .emb = emb, .dim = 2, .cooc = &m};
    struct serving_items none = {.n = N, .tie = tie};
    uint32_t idx[SERVING_MAX_K + 1];
    double score[SERVING_MAX_K + 1];
    struct serving_query q = {.source = SERVING_SOURCE_EMBEDDING, .k = 0, .item = 0};
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -EINVAL);
    q.k = SERVING_MAX_K + 1;
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -EINVAL);
    q.k = SERVING_MAX_K; /* clamped to the items there are */
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), N - 1);
    q.k = 2;
    assert_int_equal(serving_neighbours_query(&none, &q, idx, score), -EINVAL);
    q.item = N;
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -EINVAL);
    q.metric = SERVING_METRIC_DOT;
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -EINVAL);
    q.item = 0;
    assert_int_equal(serving_neighbours_query(&none, &q, idx, score), -EINVAL);
    const uint32_t in[] = {1};
    q.items = in; /* recommend is cosine only */
    q.n_items = 1;
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -EINVAL);
    q.source = SERVING_SOURCE_COOC; /* the matrix sources recommend by their sums */
    q.metric = SERVING_METRIC_COSINE;
    assert_true(serving_neighbours_query(&full, &q, idx, score) > 0);
    q.metric = SERVING_METRIC_DOT;
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -EINVAL);
    q.source = SERVING_SOURCE_RP3; /* no walk in full: the matrix has no playlists */
    q.metric = SERVING_METRIC_COSINE;
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -ENODATA);
    q.source = SERVING_SOURCE_COOC;
    q.pop_weight = 3; /* outside ml/scores.h's bounds */
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -EINVAL);
    q.pop_weight = 0;
    q.items = NULL;
    q.metric = SERVING_METRIC_DOT; /* dot is an embedding metric */
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -EINVAL);
    q.metric = SERVING_METRIC_COSINE;
    assert_int_equal(serving_neighbours_query(&none, &q, idx, score), -EINVAL);
    q.item = N;
    assert_int_equal(serving_neighbours_query(&full, &q, idx, score), -EINVAL);
    q.item = 0;
    assert_int_equal(serving_neighbours_query(&full, &q, NULL, score), -EINVAL);
    assert_int_equal(serving_neighbours_query(NULL, &q, idx, score), -EINVAL);
    knn_index_destroy(index);
}

static void test_allocation_failure(void **state)
{
    (void)state;
    struct knn_index *scan = make_index(0), *lists = make_index(1);
    struct cooc_result m = matrix();
    struct serving_items src = {
        .n = N, .tie = tie, .index = scan, .emb = emb, .dim = 2, .cooc = &m};
    uint32_t idx[N];
    double score[N];
    const uint32_t in[] = {1, 4};
    struct serving_query cos = {.source = SERVING_SOURCE_EMBEDDING, .k = 2, .item = 0};
    struct serving_query rec = {
        .source = SERVING_SOURCE_EMBEDDING, .k = 2, .items = in, .n_items = 2};
    struct serving_query dot = {
        .source = SERVING_SOURCE_EMBEDDING, .metric = SERVING_METRIC_DOT, .k = 2, .item = 0};
    struct serving_query cooc = {.source = SERVING_SOURCE_COOC, .k = 2, .item = 0};
    struct serving_query pmi = {.source = SERVING_SOURCE_PMI, .k = 2, .item = 0};

    fail_malloc = 1;
    malloc_calls = 0;
    assert_int_equal(serving_neighbours_query(&src, &cos, idx, score), -ENOMEM);
    assert_int_equal(serving_neighbours_query(&src, &rec, idx, score), -ENOMEM);
    assert_true(malloc_calls >= 2); /* the hook is live */
    malloc_calls = 0;
    assert_int_equal(serving_neighbours_query(&src, &dot, idx, score), 2);
    assert_int_equal(serving_neighbours_query(&src, &cooc, idx, score), 2);
    assert_int_equal(serving_neighbours_query(&src, &pmi, idx, score), 2);
    src.index = lists; /* k <= K: a lookup in the precomputed lists */
    assert_int_equal(serving_neighbours_query(&src, &cos, idx, score), 2);
    assert_int_equal(malloc_calls, 0);
    fail_malloc = 0;
    knn_index_destroy(scan);
    knn_index_destroy(lists);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cooc_and_pmi_rows),        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_eval_ranker_is_the_query), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
