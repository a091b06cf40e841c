/*
 * Co-occurrence / PMI kernel: the seed's sp_ComputePMI as a sparse matrix
 * product. See ml/cooc.h for the contract and docs/algorithms.md for the
 * SQL-to-code map.
 *
 * Stages (one thread unless noted):
 *   1. frequencies: validate the input and count groups per item over ALL
 *      groups; items with count >= min_item_frequency are valid_items.
 *   2. groups: count valid items per group; BETWEEN 2 AND max_group_size
 *      makes a valid group; recount item frequencies on valid_item_groups.
 *   3. transpose: number the surviving items densely in key order, copy the
 *      valid groups with dense indices (G, group -> items) and build the
 *      transpose (T, item -> spans of its groups in G).
 *   4. count (threads): for each item i, the number of distinct j > i that
 *      share a group with i; each such j also gains one entry below its
 *      diagonal. Row sizes give row_ptr; the output is allocated once.
 *   5. fill (threads): Gustavson's row-wise A·Aᵀ: for each item i, walk its
 *      groups, accumulate every co-item j (i itself included, which gives
 *      the diagonal = frequency) in a dense per-thread counter, and emit the
 *      touched columns in ascending order from a two-level bitmap (no sort).
 */
#include "ml/cooc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rows handed to a worker at a time; small enough for balance at the end,
 * large enough that the shared counter is not contended. */
#define COOC_CHUNK_ROWS 32
/* Progress is reported at most this often (the contract promises ~100 ms). */
#define COOC_REPORT_NS (50 * 1000 * 1000LL)

/* Fractions at which each stage ends (the pair passes dominate). */
#define FRAC_FREQ 0.04
#define FRAC_GROUPS 0.08
#define FRAC_TRANSPOSE 0.12
#define FRAC_COUNT 0.40
#define FRAC_FILL 1.0

/* A valid group as seen from one of its items: where its dense items start
 * in g_items and how many there are. Stored per (item, group) rather than
 * as a group index so the pair passes make one dependent memory access per
 * group, not two (they are latency bound: groups are visited in random
 * order). */
struct span {
    uint32_t start;
    uint32_t len;
};

/* The intermediate tables, dense: G = valid_item_groups by group, T = by item. */
struct prep {
    uint32_t n;
    uint64_t total;
    uint32_t *g_items;   /* [total] dense item indices, ascending per group */
    uint64_t *t_ptr;     /* [n + 1] */
    struct span *t_span; /* [total] the groups of each item, in group order */
};

/* Spans this far ahead are prefetched: the next groups' first cache lines
 * load while the current group is accumulated. */
#define COOC_PREFETCH 16

/* Progress bookkeeping on the calling thread. */
struct reporter {
    cooc_progress_cb cb;
    void *userdata;
    struct cooc_progress p;
    int64_t last_ns;
};

enum pass_kind { PASS_COUNT, PASS_FILL };

/* One parallel pass over the matrix rows; shared by its workers. */
struct pass {
    enum pass_kind kind;
    const struct prep *pr;
    atomic_uint_fast64_t next_row;
    atomic_uint_fast64_t rows_done;
    atomic_uint_fast64_t work_done; /* T entries of finished rows */
    atomic_uint_fast64_t pairs;     /* entries emitted (fill) */
    atomic_int stop;                /* set on cancel or error */
    atomic_int err;
    uint32_t *upper;         /* count: [n] entries right of the diagonal */
    const uint64_t *row_ptr; /* fill */
    uint32_t *col;           /* fill */
    uint32_t *cooc;          /* fill */
};

/* Per-thread scratch: a dense accumulator and a two-level bitmap of the
 * touched columns (bit j of bits; bit w of sum marks a non-zero bits[w]),
 * so a row's columns come out in ascending order in O(nnz + n/4096). */
struct worker {
    struct pass *ps;
    struct reporter *rep; /* non-NULL only for the calling thread */
    double frac_lo, frac_hi;
    uint32_t *acc;   /* fill: [n] */
    uint32_t *lower; /* count: [n] entries left of the diagonal, this thread's share */
    uint64_t *bits;  /* [ceil(n/64)] */
    uint64_t *sum;   /* [ceil(n/4096)] */
    pthread_t tid;
    bool started;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Calls the callback if forced or if COOC_REPORT_NS passed. Returns
 * -ECANCELED when the callback asks to stop. */
static int reporter_tick(struct reporter *rep, bool force)
{
    if (!rep->cb)
        return 0;
    int64_t t = now_ns();
    if (!force && t - rep->last_ns < COOC_REPORT_NS)
        return 0;
    rep->last_ns = t;
    return rep->cb(rep->userdata, &rep->p) ? -ECANCELED : 0;
}

static void reporter_stage(struct reporter *rep, const char *stage)
{
    rep->p.stage = stage;
    rep->p.rows_read = 0;
    rep->p.items_done = 0;
}

/* Marks column j in a worker's two-level bitmap. */
static inline void bits_mark(uint64_t *restrict bits, uint64_t *restrict sum, uint32_t j)
{
    bits[j >> 6] |= 1ULL << (j & 63);
    sum[j >> 12] |= 1ULL << ((j >> 6) & 63);
}

/* Pass 4 for row i: mark every j > i sharing a group with i. Groups list
 * their items ascending, so walking each group from its end and stopping
 * at i visits exactly the pairs (i, j > i) of the seed's a.item_Id <
 * b.item_Id: half of A·Aᵀ's work. Each such j also gets one entry left of
 * its diagonal (the mirror), counted in this thread's `lower`. */
static void row_count(struct worker *w, uint32_t i)
{
    const struct prep *pr = w->ps->pr;
    const uint32_t *g_items = pr->g_items;
    const struct span *spans = pr->t_span;
    uint64_t *restrict bits = w->bits, *restrict sum = w->sum;
    uint32_t *restrict lower = w->lower;
    const uint64_t t_end = pr->t_ptr[i + 1], total = pr->total;
    uint32_t hi = i;
    for (uint64_t t = pr->t_ptr[i]; t < t_end; t++) {
        if (t + COOC_PREFETCH < total) {
            const struct span *f = &spans[t + COOC_PREFETCH];
            __builtin_prefetch(g_items + f->start + f->len - 1);
        }
        const uint32_t *lo = g_items + spans[t].start;
        const uint32_t *p = lo + spans[t].len;
        if (p[-1] > hi)
            hi = p[-1];
        while (p > lo && *--p > i)
            bits_mark(bits, sum, *p);
    }
    uint32_t upper = 0;
    if (hi > i) {
        for (size_t sw = ((size_t)i + 1) >> 12; sw <= (size_t)(hi >> 12); sw++) {
            uint64_t sm = sum[sw];
            sum[sw] = 0;
            while (sm) {
                size_t wi = sw * 64 + (size_t)__builtin_ctzll(sm);
                sm &= sm - 1;
                uint64_t b = bits[wi];
                bits[wi] = 0;
                upper += (uint32_t)__builtin_popcountll(b);
                while (b) {
                    lower[wi * 64 + (size_t)__builtin_ctzll(b)]++;
                    b &= b - 1;
                }
            }
        }
    }
    w->ps->upper[i] = upper;
}

/* Pass 5 for row i (Gustavson): SUM(cooc) per co-item, diagonal included,
 * written at row_ptr[i] in ascending column order. Marking is branch-free
 * (a first-touch test would mispredict about once per output entry).
 * Returns the entries written, or -EPROTO if the count pass disagreed (a
 * bug, never data). */
static int64_t row_fill(struct worker *w, uint32_t i)
{
    const struct prep *pr = w->ps->pr;
    const uint32_t *g_items = pr->g_items;
    const struct span *spans = pr->t_span;
    uint32_t *restrict acc = w->acc;
    uint64_t *restrict bits = w->bits, *restrict sum = w->sum;
    const uint64_t t_end = pr->t_ptr[i + 1], total = pr->total;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint64_t t = pr->t_ptr[i]; t < t_end; t++) {
        if (t + COOC_PREFETCH < total)
            __builtin_prefetch(g_items + spans[t + COOC_PREFETCH].start);
        const uint32_t *p = g_items + spans[t].start;
        const uint32_t *end = p + spans[t].len;
        if (p[0] < lo)
            lo = p[0];
        if (end[-1] > hi)
            hi = end[-1];
        for (; p < end; p++) {
            uint32_t j = *p;
            acc[j]++;
            bits_mark(bits, sum, j);
        }
    }
    const uint64_t first = w->ps->row_ptr[i], last = w->ps->row_ptr[i + 1];
    uint64_t pos = first;
    uint32_t *restrict col = w->ps->col, *restrict cooc = w->ps->cooc;
    bool overflow = false;
    for (size_t sw = lo >> 12; lo <= hi && sw <= (size_t)(hi >> 12); sw++) {
        uint64_t sm = sum[sw];
        sum[sw] = 0;
        while (sm) {
            size_t wi = sw * 64 + (size_t)__builtin_ctzll(sm);
            sm &= sm - 1;
            uint64_t b = bits[wi];
            bits[wi] = 0;
            while (b) {
                uint32_t j = (uint32_t)(wi * 64 + (size_t)__builtin_ctzll(b));
                b &= b - 1;
                if (pos < last) {
                    col[pos] = j;
                    cooc[pos] = acc[j];
                    pos++;
                } else {
                    overflow = true;
                }
                acc[j] = 0;
            }
        }
    }
    if (overflow || pos != last)
        return -EPROTO;
    return (int64_t)(last - first);
}

static void worker_loop(struct worker *w)
{
    struct pass *ps = w->ps;
    const struct prep *pr = ps->pr;
    while (!atomic_load_explicit(&ps->stop, memory_order_relaxed)) {
        uint64_t start = atomic_fetch_add(&ps->next_row, COOC_CHUNK_ROWS);
        if (start >= pr->n)
            break;
        uint64_t end = start + COOC_CHUNK_ROWS < pr->n ? start + COOC_CHUNK_ROWS : pr->n;
        uint64_t emitted = 0;
        for (uint64_t i = start; i < end; i++) {
            if (ps->kind == PASS_COUNT) {
                row_count(w, (uint32_t)i);
            } else {
                int64_t k = row_fill(w, (uint32_t)i);
                if (k < 0) {
                    atomic_store(&ps->err, (int)k);
                    atomic_store(&ps->stop, 1);
                    return;
                }
                emitted += (uint64_t)k;
            }
        }
        atomic_fetch_add(&ps->rows_done, end - start);
        atomic_fetch_add(&ps->work_done, pr->t_ptr[end] - pr->t_ptr[start]);
        atomic_fetch_add(&ps->pairs, emitted);
        if (w->rep) {
            struct reporter *rep = w->rep;
            double f = pr->total ? (double)atomic_load(&ps->work_done) / (double)pr->total : 1.0;
            rep->p.fraction = w->frac_lo + (w->frac_hi - w->frac_lo) * f;
            rep->p.items_done = atomic_load(&ps->rows_done);
            rep->p.pairs = atomic_load(&ps->pairs);
            if (reporter_tick(rep, false) < 0) {
                atomic_store(&ps->err, -ECANCELED);
                atomic_store(&ps->stop, 1);
            }
        }
    }
}

static void *worker_main(void *arg)
{
    worker_loop(arg);
    return NULL;
}

static void worker_deinit(struct worker *w)
{
    free(w->acc);
    free(w->lower);
    free(w->bits);
    free(w->sum);
    w->acc = w->lower = NULL;
    w->bits = w->sum = NULL;
}

/* Runs one pass on nthreads threads, the calling thread being worker 0 (and
 * the only one that reports). Per-thread `lower` counts are summed into
 * lower_total (count pass). Returns 0, -ENOMEM, -EAGAIN, -ECANCELED or
 * -EPROTO. */
static int pass_run(struct pass *ps, int nthreads, struct reporter *rep, double frac_lo,
                    double frac_hi, uint32_t *lower_total)
{
    const uint32_t n = ps->pr->n;
    const size_t n_bits = ((size_t)n + 63) / 64;
    const size_t n_sum = (n_bits + 63) / 64;
    struct worker ws[COOC_MAX_THREADS];
    int rc = 0;
    memset(ws, 0, sizeof(ws));
    if ((uint64_t)nthreads > (uint64_t)n / COOC_CHUNK_ROWS + 1)
        nthreads = (int)(n / COOC_CHUNK_ROWS + 1);

    for (int t = 0; t < nthreads; t++) {
        struct worker *w = &ws[t];
        w->ps = ps;
        w->frac_lo = frac_lo;
        w->frac_hi = frac_hi;
        w->bits = calloc(n_bits ? n_bits : 1, sizeof(*w->bits));
        w->sum = calloc(n_sum ? n_sum : 1, sizeof(*w->sum));
        if (ps->kind == PASS_FILL)
            w->acc = calloc(n ? n : 1, sizeof(*w->acc));
        else
            w->lower = calloc(n ? n : 1, sizeof(*w->lower));
        if (!w->bits || !w->sum || (!w->acc && !w->lower)) {
            rc = -ENOMEM;
            goto out;
        }
    }
    ws[0].rep = rep;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0) {
            atomic_store(&ps->stop, 1);
            rc = -EAGAIN;
            break;
        }
        ws[t].started = true;
    }
    if (rc == 0)
        worker_loop(&ws[0]);
    for (int t = 1; t < nthreads; t++)
        if (ws[t].started)
            pthread_join(ws[t].tid, NULL);
    if (rc == 0)
        rc = atomic_load(&ps->err);
    if (rc == 0 && lower_total) {
        for (int t = 0; t < nthreads; t++)
            for (uint32_t i = 0; i < n; i++)
                lower_total[i] += ws[t].lower[i];
    }
out:
    for (int t = 0; t < nthreads; t++)
        worker_deinit(&ws[t]);
    return rc;
}

static void prep_deinit(struct prep *pr)
{
    free(pr->g_items);
    free(pr->t_ptr);
    free(pr->t_span);
    memset(pr, 0, sizeof(*pr));
}

/* malloc that never returns NULL for a zero size (so "allocated" means
 * non-NULL for every array of a result) and checks n * size. */
static void *xmalloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return malloc(n && size ? n * size : 1);
}

static void *xcalloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

void cooc_params_init(struct cooc_params *p)
{
    p->min_item_frequency = COOC_DEFAULT_MIN_ITEM_FREQUENCY;
    p->max_group_size = COOC_DEFAULT_MAX_GROUP_SIZE;
    p->threads = 2;
}

void cooc_result_deinit(struct cooc_result *r)
{
    if (!r)
        return;
    free(r->keys);
    free(r->freq);
    free(r->row_ptr);
    free(r->col);
    free(r->cooc);
    free(r->group_ptr);
    free(r->group_items);
    memset(r, 0, sizeof(*r));
}

int cooc_compute(const struct cooc_groups *groups, const struct cooc_params *params,
                 cooc_progress_cb cb, void *userdata, struct cooc_result *out)
{
    struct prep pr = {0};
    struct reporter rep = {.cb = cb, .userdata = userdata, .last_ns = now_ns()};
    uint32_t *freq_all = NULL; /* [max_key + 1] groups per item, all groups */
    uint32_t *map = NULL;      /* [max_key + 1] recomputed frequency, then dense + 1 */
    uint32_t *gcount = NULL;   /* [n_groups] valid items of a valid group, else 0 */
    uint32_t *lower = NULL;
    struct cooc_result res = {0};
    int rc = 0;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!groups || !params || !out)
        return -EINVAL;
    const size_t n_groups = groups->n_groups;
    const uint64_t *off = groups->offsets;
    const uint32_t *items = groups->items;
    const uint32_t max_key = groups->max_item_key;
    const int64_t min_freq = params->min_item_frequency;
    const int64_t max_size = params->max_group_size;
    int nthreads = params->threads < 1 ? 1 : params->threads;
    if (nthreads > COOC_MAX_THREADS)
        nthreads = COOC_MAX_THREADS;
    if (n_groups > UINT32_MAX)
        return -EOVERFLOW;
    if (n_groups && (!off || off[0] != 0))
        return -EINVAL;
    const uint64_t rows = n_groups ? off[n_groups] : 0;
    if (rows && !items)
        return -EINVAL;
    res.min_item_frequency = min_freq;
    res.max_group_size = max_size;
    rep.p.rows_total = rows;

    /* 1. valid_items AS (SELECT item_Id, COUNT(group_Id) AS item_frequency
     *    FROM vw_item_groups GROUP BY item_Id
     *    HAVING item_frequency >= min_item_frequency) */
    reporter_stage(&rep, "frequencies");
    freq_all = xcalloc((size_t)max_key + 1, sizeof(*freq_all));
    if (!freq_all) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t g = 0; g < n_groups; g++) {
        uint64_t b = off[g], e = off[g + 1];
        if (e < b || e > rows) {
            rc = -EINVAL;
            goto out;
        }
        uint32_t prev = 0;
        for (uint64_t k = b; k < e; k++) {
            uint32_t key = items[k];
            if (key <= prev || key > max_key) { /* also rejects key 0 */
                rc = -EINVAL;
                goto out;
            }
            prev = key;
            freq_all[key]++;
        }
        if ((g & 4095) == 0) {
            rep.p.rows_read = e;
            rep.p.fraction = rows ? FRAC_FREQ * (double)e / (double)rows : 0;
            if ((rc = reporter_tick(&rep, false)) < 0)
                goto out;
        }
    }
    for (uint32_t key = 1; key <= max_key && max_key; key++)
        if (freq_all[key] > 0 && (int64_t)freq_all[key] >= min_freq)
            res.valid_items++;
    rep.p.rows_read = rows;
    rep.p.fraction = FRAC_FREQ;
    if ((rc = reporter_tick(&rep, true)) < 0)
        goto out;

    /* 2. valid_groups AS (SELECT group_Id, COUNT(item_Id) AS group_size
     *    FROM vw_item_groups WHERE item_Id IN (SELECT item_Id FROM valid_items)
     *    GROUP BY group_Id HAVING group_size BETWEEN 2 AND max_group_size)
     * and, on the resulting valid_item_groups, item_frequency AS
     *    (SELECT item_Id, COUNT(group_Id) AS frequency ... GROUP BY item_Id). */
    reporter_stage(&rep, "groups");
    map = xcalloc((size_t)max_key + 1, sizeof(*map));
    gcount = xcalloc(n_groups, sizeof(*gcount));
    if (!map || !gcount) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t g = 0; g < n_groups; g++) {
        uint64_t c = 0;
        for (uint64_t k = off[g]; k < off[g + 1]; k++)
            c += (int64_t)freq_all[items[k]] >= min_freq;
        if (c >= 2 && (int64_t)c <= max_size) {
            gcount[g] = (uint32_t)c;
            res.valid_groups++;
            res.total += c;
            for (uint64_t k = off[g]; k < off[g + 1]; k++)
                if ((int64_t)freq_all[items[k]] >= min_freq)
                    map[items[k]]++;
        }
        if ((g & 4095) == 0) {
            rep.p.rows_read = off[g + 1];
            rep.p.fraction = FRAC_FREQ + (FRAC_GROUPS - FRAC_FREQ) *
                                             (rows ? (double)off[g + 1] / (double)rows : 0);
            if ((rc = reporter_tick(&rep, false)) < 0)
                goto out;
        }
    }
    free(freq_all);
    freq_all = NULL;
    rep.p.rows_read = rows;
    rep.p.fraction = FRAC_GROUPS;
    if ((rc = reporter_tick(&rep, true)) < 0)
        goto out;

    /* 3. Dense numbering (rows of item_frequency, in key order), then
     * valid_item_groups twice: by group (G) and by item (T). */
    reporter_stage(&rep, "transpose");
    uint32_t n = 0;
    for (uint32_t key = 1; key <= max_key && max_key; key++)
        n += map[key] > 0;
    res.n = n;
    res.keys = xmalloc(n, sizeof(*res.keys));
    res.freq = xmalloc(n, sizeof(*res.freq));
    pr.n = n;
    pr.total = res.total;
    if (pr.total > UINT32_MAX) {
        rc = -EOVERFLOW; /* span.start is 32-bit: 4 G valid memberships */
        goto out;
    }
    pr.g_items = xmalloc(pr.total, sizeof(*pr.g_items));
    pr.t_ptr = xmalloc((size_t)n + 1, sizeof(*pr.t_ptr));
    pr.t_span = xmalloc(pr.total, sizeof(*pr.t_span));
    res.group_ptr = xmalloc(res.valid_groups + 1, sizeof(*res.group_ptr));
    if (!res.keys || !res.freq || !pr.g_items || !pr.t_ptr || !pr.t_span || !res.group_ptr) {
        rc = -ENOMEM;
        goto out;
    }
    {
        uint32_t d = 0;
        uint64_t acc = 0;
        for (uint32_t key = 1; key <= max_key && max_key; key++) {
            if (!map[key])
                continue;
            res.keys[d] = key;
            res.freq[d] = map[key];
            pr.t_ptr[d] = acc;
            acc += map[key];
            map[key] = ++d; /* dense index + 1; 0 stays "not in the matrix" */
        }
        pr.t_ptr[n] = acc;
    }
    {
        /* t_ptr doubles as the fill cursor, then is restored by shifting. */
        uint64_t gi = 0, vg = 0;
        for (size_t g = 0; g < n_groups; g++) {
            if (!gcount[g])
                continue;
            res.group_ptr[vg++] = gi;
            struct span sp = {.start = (uint32_t)gi, .len = gcount[g]};
            for (uint64_t k = off[g]; k < off[g + 1]; k++) {
                uint32_t m = map[items[k]];
                if (!m)
                    continue; /* not a valid item */
                uint32_t d = m - 1;
                pr.g_items[gi++] = d;
                pr.t_span[pr.t_ptr[d]++] = sp;
            }
            if ((g & 4095) == 0) {
                rep.p.rows_read = off[g + 1];
                rep.p.fraction = FRAC_GROUPS +
                                 (FRAC_TRANSPOSE - FRAC_GROUPS) * (double)off[g + 1] / (double)rows;
                if ((rc = reporter_tick(&rep, false)) < 0)
                    goto out;
            }
        }
        res.group_ptr[vg] = gi;
        for (uint32_t d = n; d > 0; d--)
            pr.t_ptr[d] = pr.t_ptr[d - 1];
        pr.t_ptr[0] = 0;
    }
    free(map);
    map = NULL;
    free(gcount);
    gcount = NULL;
    rep.p.fraction = FRAC_TRANSPOSE;
    if ((rc = reporter_tick(&rep, true)) < 0)
        goto out;

    /* 4. Count pass: sizes of the rows of the mirrored item_cooc. */
    reporter_stage(&rep, "count");
    rep.p.items_total = n;
    {
        struct pass ps = {.kind = PASS_COUNT, .pr = &pr};
        ps.upper = xmalloc(n, sizeof(*ps.upper));
        lower = xcalloc(n, sizeof(*lower));
        res.row_ptr = xmalloc((size_t)n + 1, sizeof(*res.row_ptr));
        if (!ps.upper || !lower || !res.row_ptr) {
            free(ps.upper);
            rc = -ENOMEM;
            goto out;
        }
        rc = pass_run(&ps, nthreads, &rep, FRAC_TRANSPOSE, FRAC_COUNT, lower);
        if (rc == 0) {
            /* UNION ALL of (i<j), its mirror (j>i) and the diagonal. */
            uint64_t acc = 0;
            for (uint32_t i = 0; i < n; i++) {
                res.row_ptr[i] = acc;
                acc += (uint64_t)lower[i] + 1 + ps.upper[i];
            }
            res.row_ptr[n] = acc;
            res.nnz = acc;
        }
        free(ps.upper);
        free(lower);
        lower = NULL;
        if (rc < 0)
            goto out;
    }
    rep.p.items_done = n;
    rep.p.fraction = FRAC_COUNT;
    if ((rc = reporter_tick(&rep, true)) < 0)
        goto out;

    /* 5. Fill pass: item_cooc = SUM(cooc) over a JOIN b ON a.group_Id =
     * b.group_Id, per row. */
    reporter_stage(&rep, "fill");
    res.col = xmalloc(res.nnz, sizeof(*res.col));
    res.cooc = xmalloc(res.nnz, sizeof(*res.cooc));
    if (!res.col || !res.cooc) {
        rc = -ENOMEM;
        goto out;
    }
    {
        struct pass ps = {
            .kind = PASS_FILL, .pr = &pr, .row_ptr = res.row_ptr, .col = res.col, .cooc = res.cooc};
        rc = pass_run(&ps, nthreads, &rep, FRAC_COUNT, FRAC_FILL, NULL);
        if (rc < 0)
            goto out;
    }
    rep.p.items_done = n;
    rep.p.pairs = res.nnz;
    rep.p.fraction = 1.0;
    if ((rc = reporter_tick(&rep, true)) < 0)
        goto out;

    /* G becomes the result's groups (bounds filled in stage 3). */
    res.group_items = pr.g_items;
    pr.g_items = NULL;

    *out = res;
    memset(&res, 0, sizeof(res));
out:
    free(freq_all);
    free(map);
    free(gcount);
    free(lower);
    prep_deinit(&pr);
    cooc_result_deinit(&res);
    return rc;
}
