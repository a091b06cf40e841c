/*
 * WALS driver: parameters, validation, initialisation, the iteration loop
 * (X half-step, Y half-step, loss, early stop), threads and progress.
 * The per-row math is in wals_solve.c, the loss in wals_loss.c; the model
 * and its contract are in wals.h, the derivation in docs/algorithms.md.
 *
 * Thread model: one par pool per wals_train (the calling thread is worker
 * 0). A half-step is cut into chunks of rows of similar cost (~16 k
 * nonzeros); each chunk writes only its own rows and reads the other
 * side's factors, so the result does not depend on the schedule. The
 * Gram matrices are computed on the calling thread in a fixed blocking
 * and the loss partials are reduced in chunk order: bit-identical results
 * for any thread count.
 */
#include "ml/wals.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ml/par.h"
#include "ml/wals_internal.h"

#define CHUNK_COST 16384u
#define TICK_MS 50u

void wals_params_init(struct wals_params *p)
{
    memset(p, 0, sizeof(*p));
    p->dimensions = WALS_DEFAULT_DIMENSIONS;
    p->alpha = WALS_DEFAULT_ALPHA;
    p->l2_reg = WALS_DEFAULT_L2_REG;
    p->max_iterations = WALS_DEFAULT_MAX_ITERATIONS;
    p->early_stop = true;
    p->min_rel_progress = WALS_DEFAULT_MIN_REL_PROGRESS;
    p->seed = 0;
    p->solver = WALS_SOLVER_CG;
    p->cg_steps = WALS_DEFAULT_CG_STEPS;
    p->threads = 2;
}

int wals_solver_parse(const char *name, enum wals_solver *out)
{
    if (!name || !out)
        return -EINVAL;
    if (strcmp(name, "cg") == 0)
        *out = WALS_SOLVER_CG;
    else if (strcmp(name, "cholesky") == 0)
        *out = WALS_SOLVER_CHOLESKY;
    else
        return -EINVAL;
    return 0;
}

const char *wals_solver_name(enum wals_solver s)
{
    switch (s) {
    case WALS_SOLVER_CG:
        return "cg";
    case WALS_SOLVER_CHOLESKY:
        return "cholesky";
    }
    return "?";
}

void wals_model_deinit(struct wals_model *m)
{
    if (!m)
        return;
    free(m->x);
    free(m->y);
    free(m->loss);
    memset(m, 0, sizeof(*m));
}

int wals_model_embeddings(const struct wals_model *m, float *out)
{
    if (!m || !out || m->n_rows != m->n_cols)
        return -EINVAL;
    const size_t n = (size_t)m->n_rows * (size_t)m->dimensions;
    for (size_t k = 0; k < n; k++)
        out[k] = m->x[k] + m->y[k];
    return 0;
}

/* ------------------------------------------------------------ helpers */

static int check_params(const struct wals_params *p)
{
    if (p->dimensions < 1 || p->dimensions > WALS_MAX_DIMENSIONS)
        return -EINVAL;
    if (!(p->alpha >= 0.0) || !isfinite(p->alpha) || !(p->l2_reg >= 0.0) || !isfinite(p->l2_reg))
        return -EINVAL;
    if (p->max_iterations < 1 || !(p->min_rel_progress >= 0.0))
        return -EINVAL;
    if (p->solver != WALS_SOLVER_CG && p->solver != WALS_SOLVER_CHOLESKY)
        return -EINVAL;
    if (p->cg_steps < 1 || p->threads < 1 || p->threads > WALS_MAX_THREADS)
        return -EINVAL;
    return 0;
}

static int check_csr(const struct wals_csr *m, uint32_t rows, uint32_t cols)
{
    if (m->n_rows != rows || m->n_cols != cols)
        return -EINVAL;
    if (!m->row_ptr || m->row_ptr[0] != 0)
        return -EINVAL;
    for (uint32_t i = 0; i < rows; i++)
        if (m->row_ptr[i + 1] < m->row_ptr[i])
            return -EINVAL;
    const uint64_t nnz = m->row_ptr[rows];
    if (nnz && (!m->col || !m->val))
        return -EINVAL;
    for (uint64_t k = 0; k < nnz; k++)
        if (m->col[k] >= cols || !isfinite(m->val[k]))
            return -EINVAL;
    return 0;
}

static void *alloc_aligned(size_t bytes)
{
    bytes = (bytes + WALS__ALIGN - 1) / WALS__ALIGN * WALS__ALIGN;
    if (bytes == 0)
        bytes = WALS__ALIGN;
    void *p = aligned_alloc(WALS__ALIGN, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

#ifndef WALS__HUGE
#define WALS__HUGE 1
#endif
#define HUGE_PAGE (2u << 20)

/* Large arrays that the kernels gather from at random (the factors, the CG
 * buffers): 2 MB aligned and advised as huge pages, which cuts TLB misses
 * on the gathers (transparent huge pages are often in "madvise" mode). */
static void *alloc_big(size_t bytes)
{
    if (!WALS__HUGE || bytes < HUGE_PAGE)
        return alloc_aligned(bytes);
    bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, bytes);
    if (!p)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    memset(p, 0, bytes);
    return p;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Counter-based start: value (side, i, a) is a pure function of the seed,
 * uniform in ±1/sqrt(f). */
static void init_factors(float *fac, uint32_t n, size_t stride, int f, uint64_t seed, int side,
                         const float *given)
{
    const uint64_t key = splitmix64(seed ^ (side ? 0x5851f42d4c957f2dull : 0));
    const float scale = 1.0f / sqrtf((float)f);
    for (uint32_t i = 0; i < n; i++) {
        float *row = fac + (size_t)i * stride;
        for (int a = 0; a < f; a++) {
            if (given) {
                row[a] = given[(size_t)i * f + a];
            } else {
                uint64_t h = splitmix64(key + (uint64_t)i * (uint64_t)f + (uint64_t)a);
                float u = (float)(h >> 40) * (1.0f / 16777216.0f); /* [0, 1) */
                row[a] = (2.0f * u - 1.0f) * scale;
            }
        }
    }
}

/* Row boundaries of chunks of ~CHUNK_COST (nonzeros + per-row overhead). */
static int build_chunks(const uint64_t *row_ptr, uint32_t n, int f, uint32_t **out, size_t *n_out)
{
    size_t cap = 16, cnt = 0;
    uint32_t *c = malloc(cap * sizeof(*c));
    uint64_t acc = 0;

    if (!c)
        return -ENOMEM;
    c[cnt++] = 0;
    for (uint32_t i = 0; i < n; i++) {
        acc += row_ptr[i + 1] - row_ptr[i] + (uint64_t)f;
        if (acc >= CHUNK_COST || i + 1 == n) {
            if (cnt == cap) {
                uint32_t *t = realloc(c, 2 * cap * sizeof(*c));
                if (!t) {
                    free(c);
                    return -ENOMEM;
                }
                c = t;
                cap *= 2;
            }
            c[cnt++] = i + 1;
            acc = 0;
        }
    }
    *out = c;
    *n_out = cnt - 1;
    return 0;
}

/* G + λI as the float padded matrix (CG) and the double f × f (Cholesky). */
static void set_gram(const double *g, int f, size_t stride, double l2_reg, float *gf, double *gd)
{
    memset(gf, 0, stride * stride * sizeof(float));
    for (int a = 0; a < f; a++) {
        for (int b = 0; b < f; b++) {
            double v = g[(size_t)a * f + b] + (a == b ? l2_reg : 0.0);
            gd[(size_t)a * f + b] = v;
            gf[(size_t)a * stride + b] = (float)v;
        }
    }
}

struct tick_ctx {
    wals_progress_cb cb;
    void *userdata;
    struct wals_progress prog;
    const struct wals__half *half; /* NULL outside a half-step */
    size_t n_chunks;
    int max_iterations;
};

static int tick(void *ctx)
{
    struct tick_ctx *t = ctx;
    double part = 0.0;
    if (t->half && t->n_chunks)
        part = (double)atomic_load(&t->half->done) / (double)t->n_chunks;
    t->prog.event = WALS_EVENT_TICK;
    t->prog.fraction = ((double)t->prog.iteration + 0.5 * ((double)t->prog.half_step + part)) /
                       (double)t->max_iterations;
    if (t->prog.fraction > 1.0)
        t->prog.fraction = 1.0;
    return t->cb(t->userdata, &t->prog);
}

static int report(struct tick_ctx *t, enum wals_event ev, double fraction)
{
    if (!t->cb)
        return 0;
    t->prog.event = ev;
    t->prog.fraction = fraction > 1.0 ? 1.0 : fraction;
    return t->cb(t->userdata, &t->prog);
}

/* ------------------------------------------------------------- train */

int wals_train(const struct wals_csr *r, const struct wals_csr *rt,
               const struct wals_params *params, const float *init_x, const float *init_y,
               wals_progress_cb cb, void *userdata, struct wals_model *out)
{
    struct par *pool = NULL;
    float *x = NULL, *y = NULL, *gf = NULL;
    double *gx = NULL, *gy = NULL, *gd = NULL, *partial = NULL, *losses = NULL;
    uint32_t *chunks_r = NULL, *chunks_t = NULL;
    size_t n_chunks_r = 0, n_chunks_t = 0;
    struct wals__scratch *scratch = NULL;
    int threads = 0, iterations = 0, rc = 0;
    bool stopped = false;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!r || !params || !out)
        return -EINVAL;
    rc = check_params(params);
    if (rc < 0)
        return rc;
    if (!rt) {
        if (r->n_rows != r->n_cols)
            return -EINVAL;
        rt = r;
    }
    rc = check_csr(r, r->n_rows, r->n_cols);
    if (rc == 0 && rt != r)
        rc = check_csr(rt, r->n_cols, r->n_rows);
    if (rc < 0)
        return rc;
    if ((init_x == NULL) != (init_y == NULL))
        return -EINVAL;

    const int f = params->dimensions;
    const size_t st = ((size_t)f + 7) / 8 * 8;
    const uint32_t nr = r->n_rows, nc = r->n_cols;
    const double lambda = params->l2_reg;

    /* Our workers run small BLAS calls concurrently: keep OpenBLAS from
     * starting its own threads on top of ours (process-wide in the pthread
     * build; the daemon runs with OPENBLAS_NUM_THREADS=1 anyway). */
    openblas_set_num_threads(1);

    x = alloc_big((size_t)nr * st * sizeof(float));
    y = alloc_big((size_t)nc * st * sizeof(float));
    gf = alloc_aligned(st * st * sizeof(float));
    gx = alloc_aligned((size_t)f * f * sizeof(double));
    gy = alloc_aligned((size_t)f * f * sizeof(double));
    gd = alloc_aligned((size_t)f * f * sizeof(double));
    losses = calloc((size_t)params->max_iterations, sizeof(double));
    if (!x || !y || !gf || !gx || !gy || !gd || !losses) {
        rc = -ENOMEM;
        goto fail;
    }
    init_factors(x, nr, st, f, params->seed, 0, init_x);
    init_factors(y, nc, st, f, params->seed, 1, init_y);

    if ((rc = build_chunks(r->row_ptr, nr, f, &chunks_r, &n_chunks_r)) < 0 ||
        (rc = build_chunks(rt->row_ptr, nc, f, &chunks_t, &n_chunks_t)) < 0)
        goto fail;
    partial = calloc(n_chunks_t + 1, sizeof(double));
    if (!partial) {
        rc = -ENOMEM;
        goto fail;
    }

    size_t max_row = 0;
    for (uint32_t i = 0; i < nr; i++)
        if (r->row_ptr[i + 1] - r->row_ptr[i] > max_row)
            max_row = (size_t)(r->row_ptr[i + 1] - r->row_ptr[i]);
    for (uint32_t j = 0; j < nc; j++)
        if (rt->row_ptr[j + 1] - rt->row_ptr[j] > max_row)
            max_row = (size_t)(rt->row_ptr[j + 1] - rt->row_ptr[j]);

    threads = params->threads;
    pool = par_create(threads, &rc);
    if (!pool)
        goto fail;
    scratch = calloc((size_t)threads, sizeof(*scratch));
    if (!scratch) {
        rc = -ENOMEM;
        goto fail;
    }
    for (int t = 0; t < threads; t++) {
        struct wals__scratch *s = &scratch[t];
        s->r = alloc_aligned(st * sizeof(float));
        s->p = alloc_aligned(st * sizeof(float));
        s->ap = alloc_aligned(st * sizeof(float));
        if (params->solver == WALS_SOLVER_CG) {
            s->cgz_rows = max_row < WALS__CG_GATHER_MAX ? max_row : WALS__CG_GATHER_MAX;
            s->cgz = alloc_big((s->cgz_rows ? s->cgz_rows : 1) * st * sizeof(float));
            s->dots = alloc_aligned((s->cgz_rows ? s->cgz_rows : 1) * sizeof(float));
        }
        if (!s->r || !s->p || !s->ap ||
            (params->solver == WALS_SOLVER_CG && (!s->cgz || !s->dots))) {
            rc = -ENOMEM;
            goto fail;
        }
        if (params->solver == WALS_SOLVER_CHOLESKY) {
            s->z = alloc_aligned((size_t)WALS__BATCH * st * sizeof(float));
            s->af = alloc_aligned(st * st * sizeof(float));
            s->bf = alloc_aligned(st * sizeof(float));
            s->ad = alloc_aligned((size_t)f * f * sizeof(double));
            s->bd = alloc_aligned((size_t)f * sizeof(double));
            if (!s->z || !s->af || !s->bf || !s->ad || !s->bd) {
                rc = -ENOMEM;
                goto fail;
            }
        }
    }

    struct tick_ctx tc = {.cb = cb, .userdata = userdata, .max_iterations = params->max_iterations};
    tc.prog.loss = NAN;
    tc.prog.stride = st;
    tc.prog.x = x;
    tc.prog.y = y;

    if ((rc = wals__gram(y, nc, st, f, gy)) < 0)
        goto fail;

    for (int it = 0; it < params->max_iterations && !stopped; it++) {
        tc.prog.iteration = it;
        for (int side = 0; side < 2; side++) {
            const struct wals_csr *m = side == 0 ? r : rt;
            struct wals__half h = {
                .row_ptr = m->row_ptr,
                .col = m->col,
                .val = m->val,
                .fixed = side == 0 ? y : x,
                .out = side == 0 ? x : y,
                .gram = gf,
                .gram_d = gd,
                .chunks = side == 0 ? chunks_r : chunks_t,
                .stride = st,
                .f = f,
                .alpha = (float)params->alpha,
                .cg_steps = params->cg_steps,
                .solver = params->solver,
                .scratch = scratch,
                .loss_partial = side == 1 ? partial : NULL,
            };
            atomic_init(&h.failed, 0);
            atomic_init(&h.done, 0);
            set_gram(side == 0 ? gy : gx, f, st, lambda, gf, gd);
            tc.prog.half_step = side;
            tc.half = &h;
            tc.n_chunks = side == 0 ? n_chunks_r : n_chunks_t;
            rc = par_for(pool, tc.n_chunks, wals__solve_task, &h, cb ? tick : NULL, &tc, TICK_MS);
            tc.half = NULL;
            if (rc < 0)
                goto fail;
            rc = atomic_load(&h.failed);
            if (rc < 0)
                goto fail;
            /* The other side's next solve needs this side's Gram matrix. */
            if ((rc = wals__gram(side == 0 ? x : y, side == 0 ? nr : nc, st, f,
                                 side == 0 ? gx : gy)) < 0)
                goto fail;
            if (report(&tc, WALS_EVENT_HALF_STEP,
                       ((double)it + 0.5 * (side + 1)) / params->max_iterations) != 0) {
                rc = -ECANCELED;
                goto fail;
            }
        }

        /* Loss: trace(GX·GY) + observed correction + λ(trace GX + trace GY);
         * the correction was summed by the Y half-step's tasks (in order). */
        double corr = 0.0;
        for (size_t t = 0; t < n_chunks_t; t++)
            corr += partial[t];
        double loss = wals__loss_combine(gx, gy, f, corr, lambda);
        losses[it] = loss;
        iterations = it + 1;
        tc.prog.loss = loss;
        if (params->early_stop && it > 0) {
            double prev = losses[it - 1];
            if (prev != 0.0 && (prev - loss) / prev < params->min_rel_progress)
                stopped = true;
        }
        if (report(&tc, WALS_EVENT_ITERATION,
                   stopped ? 1.0 : (double)(it + 1) / params->max_iterations) != 0) {
            rc = -ECANCELED;
            goto fail;
        }
    }

    out->n_rows = nr;
    out->n_cols = nc;
    out->dimensions = f;
    out->iterations = iterations;
    out->early_stopped = stopped;
    out->x = malloc(((size_t)nr * f + 1) * sizeof(float));
    out->y = malloc(((size_t)nc * f + 1) * sizeof(float));
    out->loss = losses;
    losses = NULL;
    if (!out->x || !out->y) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < nr; i++)
        memcpy(out->x + (size_t)i * f, x + (size_t)i * st, (size_t)f * sizeof(float));
    for (uint32_t j = 0; j < nc; j++)
        memcpy(out->y + (size_t)j * f, y + (size_t)j * st, (size_t)f * sizeof(float));
    rc = 0;
    goto out;

fail:
    wals_model_deinit(out);
out:
    par_destroy(pool);
    if (scratch) {
        for (int t = 0; t < threads; t++) {
            free(scratch[t].r);
            free(scratch[t].p);
            free(scratch[t].ap);
            free(scratch[t].cgz);
            free(scratch[t].dots);
            free(scratch[t].z);
            free(scratch[t].af);
            free(scratch[t].bf);
            free(scratch[t].ad);
            free(scratch[t].bd);
        }
        free(scratch);
    }
    free(chunks_r);
    free(chunks_t);
    free(partial);
    free(losses);
    free(x);
    free(y);
    free(gf);
    free(gx);
    free(gy);
    free(gd);
    return rc;
}
