/*
 * Imported co-occurrence tables (see cooc_import.h).
 *
 * Sorting: rows are ordered by (a, b) in place: a counting pass by a, an
 * in-place bucket permutation (American flag sort: each row moves to its
 * bucket along cycles, O(rows), no second buffer), then each bucket by b
 * with an introsort (quicksort, heapsort when it degenerates, insertion
 * sort below 16). glibc's qsort would allocate a copy of the array, which
 * is what the import's memory bound forbids.
 */
#include "ml/cooc_import.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"

void cooc_import_init(struct cooc_import *ci, uint64_t max_rows)
{
    memset(ci, 0, sizeof *ci);
    ci->pmi_mode = -1;
    ci->max_rows = max_rows;
}

void cooc_import_deinit(struct cooc_import *ci)
{
    free(ci->diag);
    free(ci->diag_pmi);
    free(ci->lower_pmi);
    free(ci->up);
    free(ci->lo);
    memset(ci, 0, sizeof *ci);
}

size_t cooc_import_bytes(const struct cooc_import *ci)
{
    return (size_t)ci->ncap * (4 + 8 + 8) + (size_t)ci->n_up * sizeof *ci->up +
           (size_t)ci->n_lo * sizeof *ci->lo;
}

static int items_reserve(struct cooc_import *ci, uint32_t need)
{
    if (need <= ci->ncap)
        return 0;
    uint64_t c = ci->ncap ? ci->ncap : 1024;
    while (c < need)
        c *= 2;
    if (c > UINT32_MAX)
        c = UINT32_MAX;
    uint32_t *d = realloc(ci->diag, (size_t)c * sizeof *d);
    if (d)
        ci->diag = d;
    double *dp = realloc(ci->diag_pmi, (size_t)c * sizeof *dp);
    if (dp)
        ci->diag_pmi = dp;
    double *lp = realloc(ci->lower_pmi, (size_t)c * sizeof *lp);
    if (lp)
        ci->lower_pmi = lp;
    if (!d || !dp || !lp)
        return -ENOMEM;
    for (uint64_t i = ci->ncap; i < c; i++) {
        ci->diag[i] = 0;
        ci->diag_pmi[i] = 0;
        ci->lower_pmi[i] = 0;
    }
    ci->ncap = (uint32_t)c;
    return 0;
}

int cooc_import_add(struct cooc_import *ci, uint32_t a, uint32_t b, uint32_t cooc, int has_pmi,
                    double pmi)
{
    int rc;
    if (cooc == 0 || a == UINT32_MAX || b == UINT32_MAX)
        return -EINVAL;
    if (ci->max_rows && ci->rows >= ci->max_rows)
        return -E2BIG;
    if (ci->pmi_mode < 0)
        ci->pmi_mode = has_pmi ? 1 : 0;
    else if (ci->pmi_mode != (has_pmi ? 1 : 0))
        return -EPROTO;
    uint32_t top = (a > b ? a : b) + 1;
    if ((rc = items_reserve(ci, top)) < 0)
        return rc;
    if (top > ci->n)
        ci->n = top;
    if (a == b) {
        if (ci->diag[a])
            return -EEXIST;
        ci->diag[a] = cooc;
        ci->diag_pmi[a] = has_pmi ? pmi : 0;
    } else if (a < b) {
        if ((rc = array_grow((void **)&ci->up, &ci->cap_up, ci->n_up + 1, sizeof *ci->up,
                             1024)) < 0)
            return rc;
        ci->up[ci->n_up++] = (struct cooc_import_upper){a, b, cooc, has_pmi ? (float)pmi : 0};
    } else {
        if ((rc = array_grow((void **)&ci->lo, &ci->cap_lo, ci->n_lo + 1, sizeof *ci->lo,
                             1024)) < 0)
            return rc;
        ci->lo[ci->n_lo++] = (struct cooc_import_lower){b, a, cooc};
        if (has_pmi)
            ci->lower_pmi[b] += pmi;
    }
    ci->rows++;
    return 0;
}

/* ---- in-place sort by (a, b) for both row types ---- */

#define DEFINE_SORT(NAME, T)                                                                       \
    static void NAME##_isort(T *v, uint64_t n)                                                     \
    {                                                                                              \
        for (uint64_t i = 1; i < n; i++) {                                                         \
            T x = v[i];                                                                            \
            uint64_t j = i;                                                                        \
            while (j > 0 && v[j - 1].b > x.b) {                                                    \
                v[j] = v[j - 1];                                                                   \
                j--;                                                                               \
            }                                                                                      \
            v[j] = x;                                                                              \
        }                                                                                          \
    }                                                                                              \
    static void NAME##_sift(T *v, uint64_t n, uint64_t i)                                          \
    {                                                                                              \
        for (;;) {                                                                                 \
            uint64_t l = 2 * i + 1, r = l + 1, m = i;                                              \
            if (l < n && v[l].b > v[m].b)                                                          \
                m = l;                                                                             \
            if (r < n && v[r].b > v[m].b)                                                          \
                m = r;                                                                             \
            if (m == i)                                                                            \
                return;                                                                            \
            T t = v[i];                                                                            \
            v[i] = v[m];                                                                           \
            v[m] = t;                                                                              \
            i = m;                                                                                 \
        }                                                                                          \
    }                                                                                              \
    static void NAME##_heapsort(T *v, uint64_t n)                                                  \
    {                                                                                              \
        for (uint64_t i = n / 2; i-- > 0;)                                                         \
            NAME##_sift(v, n, i);                                                                  \
        for (uint64_t e = n; e-- > 1;) {                                                           \
            T t = v[0];                                                                            \
            v[0] = v[e];                                                                           \
            v[e] = t;                                                                              \
            NAME##_sift(v, e, 0);                                                                  \
        }                                                                                          \
    }                                                                                              \
    static void NAME##_qsort(T *v, uint64_t n, int depth)                                          \
    {                                                                                              \
        while (n > 16) {                                                                           \
            if (depth-- <= 0) {                                                                    \
                NAME##_heapsort(v, n);                                                             \
                return;                                                                            \
            }                                                                                      \
            uint32_t x = v[0].b, y = v[n / 2].b, z = v[n - 1].b;                                   \
            uint32_t piv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));  \
            uint64_t i = 0, j = n - 1;                                                             \
            for (;;) {                                                                             \
                while (v[i].b < piv)                                                               \
                    i++;                                                                           \
                while (v[j].b > piv)                                                               \
                    j--;                                                                           \
                if (i >= j)                                                                        \
                    break;                                                                         \
                T t = v[i];                                                                        \
                v[i] = v[j];                                                                       \
                v[j] = t;                                                                          \
                i++;                                                                               \
                j--;                                                                               \
            }                                                                                      \
            uint64_t left = j + 1;                                                                 \
            if (left < n - left) {                                                                 \
                NAME##_qsort(v, left, depth);                                                      \
                v += left;                                                                         \
                n -= left;                                                                         \
            } else {                                                                               \
                NAME##_qsort(v + left, n - left, depth);                                           \
                n = left;                                                                          \
            }                                                                                      \
        }                                                                                          \
        NAME##_isort(v, n);                                                                        \
    }                                                                                              \
    /* start: [nb + 1] (out: bucket starts), next: [nb] scratch. */                                \
    static void NAME##_sort(T *v, uint64_t n, uint32_t nb, uint64_t *start, uint64_t *next)        \
    {                                                                                              \
        memset(start, 0, sizeof *start *((size_t)nb + 1));                                         \
        for (uint64_t i = 0; i < n; i++)                                                           \
            start[v[i].a + 1]++;                                                                   \
        for (uint32_t k = 0; k < nb; k++)                                                          \
            start[k + 1] += start[k];                                                              \
        memcpy(next, start, sizeof *next *nb);                                                     \
        for (uint32_t k = 0; k < nb; k++) {                                                        \
            while (next[k] < start[k + 1]) {                                                       \
                T x = v[next[k]];                                                                  \
                while (x.a != k) {                                                                 \
                    T y = v[next[x.a]];                                                            \
                    v[next[x.a]++] = x;                                                            \
                    x = y;                                                                         \
                }                                                                                  \
                v[next[k]++] = x;                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (uint32_t k = 0; k < nb; k++) {                                                        \
            uint64_t len = start[k + 1] - start[k];                                                \
            int depth = 2;                                                                         \
            for (uint64_t m = len; m > 1; m >>= 1)                                                 \
                depth += 2;                                                                        \
            if (len > 1)                                                                           \
                NAME##_qsort(v + start[k], len, depth);                                            \
        }                                                                                          \
    }

DEFINE_SORT(up, struct cooc_import_upper)
DEFINE_SORT(lo, struct cooc_import_lower)

struct triple { /* a compacted pair for the build: a < b */
    uint32_t a, b, cooc;
};
DEFINE_SORT(tri, struct triple)

/* ---- check ---- */

static int pmi_ok(double given, double want, double tol)
{
    double scale = fabs(want) > 1 ? fabs(want) : 1;
    return fabs(given - want) <= tol * scale;
}

static int issue(struct cooc_import_issue *is, enum cooc_import_problem p, uint32_t i1, uint32_t i2,
                 double v1, double v2, uint64_t count)
{
    *is = (struct cooc_import_issue){p, i1, i2, v1, v2, count};
    return -EDOM;
}

int cooc_import_check(struct cooc_import *ci, double tol, struct cooc_import_issue *is)
{
    uint64_t *start_up = NULL, *start_lo = NULL, *next = NULL;
    double *lf = NULL; /* log2 of each frequency */
    int rc = 0;
    memset(is, 0, sizeof *is);
    if (ci->rows == 0)
        return issue(is, COOC_IMPORT_EMPTY, 0, 0, 0, 0, 0);
    uint64_t total = 0;
    for (uint32_t i = 0; i < ci->n; i++) {
        if (ci->diag[i] == 0)
            return issue(is, COOC_IMPORT_MISSING_DIAGONAL, i, i, 0, 0, 0);
        total += ci->diag[i];
    }
    ci->total = total; /* also for the caller's message when a check fails */
    /* nnz and every count must fit the result's types */
    if (ci->n_up > (UINT64_MAX - ci->n) / 2 || total > (1ULL << 53))
        return issue(is, COOC_IMPORT_TOO_BIG, 0, 0, (double)total, 0, ci->rows);
    lf = malloc(sizeof *lf * ((size_t)ci->n + 1));
    start_up = malloc(sizeof *start_up * ((size_t)ci->n + 1));
    start_lo = malloc(sizeof *start_lo * ((size_t)ci->n + 1));
    next = malloc(sizeof *next * ((size_t)ci->n + 1));
    if (!lf || !start_up || !start_lo || !next) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < ci->n; i++)
        lf[i] = log2((double)ci->diag[i]);
    up_sort(ci->up, ci->n_up, ci->n, start_up, next);
    lo_sort(ci->lo, ci->n_lo, ci->n, start_lo, next);
    int with_pmi = ci->pmi_mode == 1;
    double lt = log2((double)total);
    for (uint32_t a = 0; a < ci->n; a++) {
        uint32_t fa = ci->diag[a];
        if (with_pmi) {
            double want = lf[a] - lf[a] - lf[a] + lt;
            if (!pmi_ok(ci->diag_pmi[a], want, tol)) {
                rc = issue(is, COOC_IMPORT_PMI_MISMATCH, a, a, ci->diag_pmi[a], want, 1);
                goto out;
            }
        }
        uint64_t u = start_up[a], ue = start_up[a + 1];
        uint64_t l = start_lo[a], le = start_lo[a + 1];
        double sum_want = 0, allowed = 0, sum_abs = 0;
        uint64_t count = 0;
        while (u < ue || l < le) {
            const struct cooc_import_upper *U = u < ue ? &ci->up[u] : NULL;
            const struct cooc_import_lower *L = l < le ? &ci->lo[l] : NULL;
            if (U && u + 1 < ue && ci->up[u + 1].b == U->b) {
                rc = issue(is, COOC_IMPORT_DUPLICATE, a, U->b, U->cooc, ci->up[u + 1].cooc, 2);
                goto out;
            }
            if (L && l + 1 < le && ci->lo[l + 1].b == L->b) {
                rc = issue(is, COOC_IMPORT_DUPLICATE, L->b, a, L->cooc, ci->lo[l + 1].cooc, 2);
                goto out;
            }
            if (U && (!L || U->b < L->b)) {
                rc = issue(is, COOC_IMPORT_MISSING_MIRROR, a, U->b, U->cooc, 0, 0);
                goto out;
            }
            if (L && (!U || L->b < U->b)) {
                rc = issue(is, COOC_IMPORT_MISSING_MIRROR, L->b, a, L->cooc, 0, 0);
                goto out;
            }
            uint32_t b = U->b, fb = ci->diag[b];
            if (U->cooc != L->cooc) {
                rc = issue(is, COOC_IMPORT_COOC_MISMATCH, a, b, U->cooc, L->cooc, 0);
                goto out;
            }
            if (U->cooc > fa || U->cooc > fb) {
                rc = issue(is, COOC_IMPORT_COOC_OVER_FREQ, fa < fb ? a : b, fa < fb ? b : a,
                           U->cooc, fa < fb ? fa : fb, 0);
                goto out;
            }
            if (with_pmi) {
                /* the seed's expression, left to right, as cooc_pmi evaluates it */
                double lc = log2((double)U->cooc);
                double want = lc - lf[a] - lf[b] + lt;
                if (!pmi_ok((double)U->pmi, want, tol)) {
                    rc = issue(is, COOC_IMPORT_PMI_MISMATCH, a, b, U->pmi, want, 1);
                    goto out;
                }
                double mirror = lc - lf[b] - lf[a] + lt;
                sum_want += mirror;
                sum_abs += fabs(mirror);
                allowed += tol * (fabs(mirror) > 1 ? fabs(mirror) : 1);
                count++;
            }
            u++;
            l++;
        }
        /* the mirror rows' pmi, as their sum (their values were not kept) */
        if (with_pmi && count &&
            fabs(ci->lower_pmi[a] - sum_want) > allowed + 1e-12 * (sum_abs + 1) * count) {
            rc = issue(is, COOC_IMPORT_PMI_SUM_MISMATCH, 0, a, ci->lower_pmi[a], sum_want, count);
            goto out;
        }
    }
    /* the mirror half has served: give its memory back now */
    free(ci->lo);
    ci->lo = NULL;
    ci->n_lo = ci->cap_lo = 0;
out:
    free(lf);
    free(start_up);
    free(start_lo);
    free(next);
    return rc;
}

/* ---- build ---- */

struct keyed {
    uint32_t key, local;
};

static int keyed_cmp(const void *x, const void *y)
{
    const struct keyed *a = x, *b = y;
    return (a->key > b->key) - (a->key < b->key);
}

int cooc_import_build(struct cooc_import *ci, const uint32_t *keys, int64_t min_item_frequency,
                      int64_t max_group_size, struct cooc_result *out)
{
    struct cooc_result r = {0};
    struct keyed *order = NULL;
    uint32_t *rank = NULL, *below = NULL, *above = NULL;
    uint64_t *lo_cur = NULL, *hi_cur = NULL, *start = NULL;
    uint32_t n = ci->n;
    int rc = 0;
    memset(out, 0, sizeof *out);
    order = malloc(sizeof *order * ((size_t)n + 1));
    rank = malloc(sizeof *rank * ((size_t)n + 1));
    if (!order || !rank) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = (struct keyed){keys[i], i};
    qsort(order, n, sizeof *order, keyed_cmp); /* n items: small next to the rows */
    for (uint32_t d = 0; d < n; d++) {
        if (order[d].key == 0 || (d && order[d].key == order[d - 1].key)) {
            rc = -EINVAL;
            goto out;
        }
        rank[order[d].local] = d;
    }
    /* Compact the rows to 12-byte (a, b, cooc) triples in place, relabelled
     * to dense ranks with a < b, and give the rest back. Writing triple k
     * at byte 12k only overwrites rows already read (16k >= 12k). */
    struct triple *t = (struct triple *)(void *)ci->up;
    uint64_t np = ci->n_up;
    int sorted = 1;
    for (uint64_t k = 0; k < np; k++) {
        struct cooc_import_upper u = ci->up[k];
        uint32_t x = rank[u.a], y = rank[u.b];
        struct triple tr = {x < y ? x : y, x < y ? y : x, u.cooc};
        if (k && (tr.a < t[k - 1].a || (tr.a == t[k - 1].a && tr.b < t[k - 1].b)))
            sorted = 0;
        t[k] = tr;
    }
    ci->up = NULL;
    ci->n_up = ci->cap_up = 0;
    if (np) {
        struct triple *shrunk = realloc(t, sizeof *t * np);
        if (shrunk)
            t = shrunk;
    } else {
        free(t);
        t = NULL;
    }
    below = calloc((size_t)n + 1, sizeof *below);
    above = calloc((size_t)n + 1, sizeof *above);
    if (!below || !above) {
        rc = -ENOMEM;
        goto out_t;
    }
    if (!sorted) { /* keys not in the rows' order: sort again by (rank a, rank b) */
        start = malloc(sizeof *start * ((size_t)n + 1));
        lo_cur = malloc(sizeof *lo_cur * ((size_t)n + 1));
        if (!start || !lo_cur) {
            rc = -ENOMEM;
            goto out_t;
        }
        tri_sort(t, np, n, start, lo_cur);
        free(start);
        free(lo_cur);
        start = lo_cur = NULL;
    }
    for (uint64_t k = 0; k < np; k++) {
        above[t[k].a]++;
        below[t[k].b]++;
    }
    r.n = n;
    r.nnz = 2 * np + n;
    r.keys = malloc(sizeof *r.keys * ((size_t)n + 1));
    r.freq = malloc(sizeof *r.freq * ((size_t)n + 1));
    r.row_ptr = malloc(sizeof *r.row_ptr * ((size_t)n + 1));
    r.col = malloc(sizeof *r.col * (size_t)(r.nnz ? r.nnz : 1));
    r.cooc = malloc(sizeof *r.cooc * (size_t)(r.nnz ? r.nnz : 1));
    lo_cur = malloc(sizeof *lo_cur * ((size_t)n + 1));
    hi_cur = malloc(sizeof *hi_cur * ((size_t)n + 1));
    if (!r.keys || !r.freq || !r.row_ptr || !r.col || !r.cooc || !lo_cur || !hi_cur) {
        rc = -ENOMEM;
        goto out_t;
    }
    r.row_ptr[0] = 0;
    for (uint32_t d = 0; d < n; d++) {
        uint32_t l = order[d].local;
        r.keys[d] = order[d].key;
        r.freq[d] = ci->diag[l];
        uint64_t b = r.row_ptr[d];
        r.row_ptr[d + 1] = b + below[d] + 1 + above[d];
        lo_cur[d] = b;                /* columns < d, filled in ascending order */
        uint64_t dpos = b + below[d]; /* the diagonal */
        r.col[dpos] = d;
        r.cooc[dpos] = r.freq[d];
        hi_cur[d] = dpos + 1; /* columns > d */
    }
    /* Rows sorted by (a, b): row a receives b ascending; row b receives a
     * ascending (a is the primary order). So every row comes out sorted. */
    for (uint64_t k = 0; k < np; k++) {
        uint32_t a = t[k].a, b = t[k].b;
        uint64_t p = hi_cur[a]++;
        r.col[p] = b;
        r.cooc[p] = t[k].cooc;
        p = lo_cur[b]++;
        r.col[p] = a;
        r.cooc[p] = t[k].cooc;
    }
    r.total = ci->total;
    r.valid_items = n;
    r.valid_groups = 0;
    r.min_item_frequency = min_item_frequency;
    r.max_group_size = max_group_size;
    *out = r;
    memset(&r, 0, sizeof r);
out_t:
    free(t);
out:
    free(order);
    free(rank);
    free(below);
    free(above);
    free(lo_cur);
    free(hi_cur);
    free(start);
    cooc_result_deinit(&r);
    return rc;
}
