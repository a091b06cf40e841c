/*
 * WALS benchmark: seconds per iteration and µs per nonzero per iteration
 * of wals_train for both solvers, 50 and 64 dimensions, 1 and 2 threads.
 *
 * Input: a seed-shaped synthetic matrix built here deterministically
 * (default ~23.4 k items, ~18.8 M nonzeros: the PMI matrix of the seed's
 * 3 M-row playlist table), or a matrix file in the wals_run binary format
 * (tests/tools/wals_run.c: "WALSCSR1", u32 n_rows, u32 n_cols, u64 nnz,
 * u64 row_ptr[n_rows+1], u32 col[nnz], f32 val[nnz], little-endian), or a
 * pmi job's result file (--cooc, storage/cooc_file.h) turned into scores.
 *
 * Synthetic shape: Zipf-like item popularity w_i = (i + 30)^-0.85 and
 * P(i,j co-occur) = min(1, K·w_i·w_j) with K chosen for the target nnz, so
 * popular rows are nearly dense and tail rows hold a few hundred entries;
 * values r = cooc·pmi with cooc ≈ max(1, freq_i·freq_j/total · lift) and
 * pmi = log2(cooc·total/(freq_i·freq_j)), lift spread around 1.2 (negative
 * only for popular pairs with lift < 1, as in real data); freq sums to ~3 M
 * (the seed-shaped table), and the diagonal cooc = frequency, pmi =
 * log2(total/freq).
 *
 *   bench_wals [--items N] [--nnz M] [--matrix FILE | --cooc FILE] [--save FILE] [--iters K]
 *              [--solver cg|cholesky|both] [--dims 50,64] [--threads 1,2]
 *              [--cg-steps S]
 *
 * --save writes the matrix (same format) for other tools, e.g. to time the
 * `implicit` library on the very same input.
 *
 * Prints numbers only; never fails on time.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "ml/cooc.h"
#include "ml/wals.h"
#include "storage/cooc_file.h"

struct mat {
    uint32_t n;
    uint64_t nnz;
    uint64_t *row_ptr;
    uint32_t *col;
    float *val;
};

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double unit(uint64_t h)
{
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* Expected nonzeros (mirrored + diagonal) for scale K, sampled over j. */
static double expected_nnz(const double *w, uint32_t n, double k)
{
    double s = 0.0;
    const uint32_t step = 7;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j += step) {
            double p = k * w[i] * w[j];
            s += p < 1.0 ? p : 1.0;
        }
    return 2.0 * s * step + n;
}

static int synth(uint32_t n, uint64_t target, struct mat *m)
{
    double *w = malloc(n * sizeof(double));
    uint64_t *deg = calloc((size_t)n + 1, sizeof(uint64_t));
    uint64_t *fill = NULL;
    int rc = -ENOMEM;
    if (!w || !deg)
        goto out;
    for (uint32_t i = 0; i < n; i++)
        w[i] = pow((double)i + 30.0, -0.85);
    double lo = 1e-3, hi = 1e9;
    for (int it = 0; it < 60; it++) {
        double mid = sqrt(lo * hi);
        if (expected_nnz(w, n, mid) < (double)target)
            lo = mid;
        else
            hi = mid;
    }
    const double k = sqrt(lo * hi);
    /* Pass 1: degrees. */
    for (uint32_t i = 0; i < n; i++) {
        deg[i]++;
        for (uint32_t j = i + 1; j < n; j++) {
            double p = k * w[i] * w[j];
            if (p >= 1.0 || unit(mix(((uint64_t)i << 32) | j)) < p) {
                deg[i]++;
                deg[j]++;
            }
        }
    }
    m->n = n;
    m->row_ptr = malloc(((size_t)n + 1) * sizeof(uint64_t));
    fill = malloc((size_t)n * sizeof(uint64_t));
    if (!m->row_ptr || !fill)
        goto out;
    m->row_ptr[0] = 0;
    for (uint32_t i = 0; i < n; i++)
        m->row_ptr[i + 1] = m->row_ptr[i] + deg[i];
    m->nnz = m->row_ptr[n];
    m->col = malloc(m->nnz * sizeof(uint32_t));
    m->val = malloc(m->nnz * sizeof(float));
    if (!m->col || !m->val)
        goto out;
    memcpy(fill, m->row_ptr, (size_t)n * sizeof(uint64_t));
    /* Frequencies ∝ popularity; total = Σ freq. */
    double total = 0.0;
    for (uint32_t i = 0; i < n; i++)
        total += 15.0 + 1.4e5 * w[i];
    /* Pass 2: fill, rows come out sorted by column. */
    for (uint32_t i = 0; i < n; i++) {
        const double fi = 15.0 + 1.4e5 * w[i];
        m->col[fill[i]] = i;
        m->val[fill[i]++] = (float)(fi * log2(total / fi));
        for (uint32_t j = i + 1; j < n; j++) {
            double p = k * w[i] * w[j];
            uint64_t h = mix(((uint64_t)i << 32) | j);
            if (p >= 1.0 || unit(h) < p) {
                const double fj = 15.0 + 1.4e5 * w[j];
                double lift = exp(0.2 + 1.3 * (unit(mix(h)) * 2.0 - 1.0));
                double cooc = floor(fi * fj / total * lift) + 1.0;
                double pmi = log2(cooc) - log2(fi) - log2(fj) + log2(total);
                float r = (float)(cooc * pmi);
                m->col[fill[i]] = j;
                m->val[fill[i]++] = r;
                m->col[fill[j]] = i;
                m->val[fill[j]++] = r;
            }
        }
    }
    rc = 0;
out:
    free(w);
    free(deg);
    free(fill);
    return rc;
}

/* A pmi job's result file (storage/cooc_file.h): r = cooc·pmi, the seed's
 * score, exactly as the train job will see it. */
static int load_cooc(const char *path, struct mat *m)
{
    struct cooc_result r;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    int rc;

    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t len = (size_t)(slash - path);
        if (len >= sizeof(dir))
            return -ENAMETOOLONG;
        memcpy(dir, path, len);
        dir[len ? len : 1] = '\0';
        if (!len)
            dir[0] = '/';
    }
    rc = cooc_file_read(dir, name, &r);
    if (rc < 0)
        return rc;
    m->n = r.n;
    m->nnz = r.nnz;
    m->row_ptr = r.row_ptr;
    r.row_ptr = NULL;
    m->col = r.col;
    r.col = NULL;
    m->val = malloc((r.nnz + 1) * sizeof(float));
    if (!m->val) {
        cooc_result_deinit(&r);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < r.n; i++)
        for (uint64_t k = m->row_ptr[i]; k < m->row_ptr[i + 1]; k++) {
            const double pmi = log2((double)r.cooc[k]) - log2((double)r.freq[i]) -
                               log2((double)r.freq[m->col[k]]) + log2((double)r.total);
            m->val[k] = (float)((double)r.cooc[k] * pmi);
        }
    cooc_result_deinit(&r);
    return 0;
}

static int load(const char *path, struct mat *m)
{
    FILE *fp = fopen(path, "rb");
    char magic[8];
    uint32_t nr, nc;
    int rc = -EIO;
    if (!fp)
        return -errno;
    if (fread(magic, 1, 8, fp) != 8 || memcmp(magic, "WALSCSR1", 8) != 0 ||
        fread(&nr, 4, 1, fp) != 1 || fread(&nc, 4, 1, fp) != 1 || nr != nc ||
        fread(&m->nnz, 8, 1, fp) != 1)
        goto out;
    m->n = nr;
    m->row_ptr = malloc(((size_t)nr + 1) * 8);
    m->col = malloc(m->nnz * 4 + 4);
    m->val = malloc(m->nnz * 4 + 4);
    if (!m->row_ptr || !m->col || !m->val) {
        rc = -ENOMEM;
        goto out;
    }
    if (fread(m->row_ptr, 8, (size_t)nr + 1, fp) != (size_t)nr + 1 ||
        fread(m->col, 4, m->nnz, fp) != m->nnz || fread(m->val, 4, m->nnz, fp) != m->nnz)
        goto out;
    rc = 0;
out:
    fclose(fp);
    return rc;
}

struct timing {
    double t0, last, cpu_last;
    double secs[256];
    double cpus[256];
    double loss[256];
    int n;
};

static int on_progress(void *ud, const struct wals_progress *p)
{
    struct timing *t = ud;
    if (p->event == WALS_EVENT_ITERATION && t->n < 256) {
        double now = clock_mono_s();
        double cpu = clock_cpu_s();
        t->secs[t->n] = now - t->last;
        t->cpus[t->n] = cpu - t->cpu_last;
        t->cpu_last = cpu;
        t->loss[t->n] = p->loss;
        t->n++;
        t->last = now;
    }
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        out[n++] = atoi(s);
        const char *c = strchr(s, ',');
        if (!c)
            break;
        s = c + 1;
    }
    return n;
}

int main(int argc, char **argv)
{
    uint32_t items = 23400;
    uint64_t target = 18800000;
    const char *path = NULL, *cooc = NULL, *save = NULL, *solvers = "both";
    int iters = 3, cg_steps = WALS_DEFAULT_CG_STEPS;
    int dims[8] = {50, 64}, nd = 2, thr[8] = {1, 2}, nt = 2;
    struct mat m = {0};

    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--items") && a + 1 < argc)
            items = (uint32_t)strtoul(argv[++a], NULL, 10);
        else if (!strcmp(argv[a], "--nnz") && a + 1 < argc)
            target = strtoull(argv[++a], NULL, 10);
        else if (!strcmp(argv[a], "--matrix") && a + 1 < argc)
            path = argv[++a];
        else if (!strcmp(argv[a], "--cooc") && a + 1 < argc)
            cooc = argv[++a];
        else if (!strcmp(argv[a], "--save") && a + 1 < argc)
            save = argv[++a];
        else if (!strcmp(argv[a], "--iters") && a + 1 < argc)
            iters = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--solver") && a + 1 < argc)
            solvers = argv[++a];
        else if (!strcmp(argv[a], "--dims") && a + 1 < argc)
            nd = parse_list(argv[++a], dims, 8);
        else if (!strcmp(argv[a], "--threads") && a + 1 < argc)
            nt = parse_list(argv[++a], thr, 8);
        else if (!strcmp(argv[a], "--cg-steps") && a + 1 < argc)
            cg_steps = atoi(argv[++a]);
        else {
            fprintf(stderr,
                    "usage: %s [--items N] [--nnz M] [--matrix FILE | --cooc FILE] [--save FILE] "
                    "[--iters K] "
                    "[--solver cg|cholesky|both] [--dims 50,64] [--threads 1,2] "
                    "[--cg-steps S]\n",
                    argv[0]);
            return 2;
        }
    }

    double t0 = clock_mono_s();
    int rc = cooc ? load_cooc(cooc, &m) : path ? load(path, &m) : synth(items, target, &m);
    if (cooc)
        path = cooc;
    if (rc < 0) {
        fprintf(stderr, "bench_wals: cannot %s matrix: %s\n", path ? "load" : "build",
                strerror(-rc));
        return 1;
    }
    {
        uint64_t mx = 0, *len = malloc(m.n * sizeof(uint64_t));
        for (uint32_t i = 0; i < m.n; i++) {
            len[i] = m.row_ptr[i + 1] - m.row_ptr[i];
            mx = len[i] > mx ? len[i] : mx;
        }
        uint64_t neg = 0;
        for (uint64_t k = 0; k < m.nnz; k++)
            neg += m.val[k] < 0;
        double *d = malloc(m.n * sizeof(double));
        for (uint32_t i = 0; i < m.n; i++)
            d[i] = (double)len[i];
        qsort(d, m.n, sizeof(double), cmp_d);
        printf("matrix: %s, n=%u nnz=%llu (%.1f s to %s); row length median %.0f p90 %.0f "
               "max %llu; negative values %.1f%%\n",
               path ? path : "synthetic", m.n, (unsigned long long)m.nnz, clock_mono_s() - t0,
               path ? "load" : "build", m.n ? d[m.n / 2] : 0.0, m.n ? d[m.n * 9 / 10] : 0.0,
               (unsigned long long)mx, m.nnz ? 100.0 * (double)neg / (double)m.nnz : 0.0);
        free(d);
        free(len);
    }
    if (save) {
        FILE *fp = fopen(save, "wb");
        uint32_t n32 = m.n;
        if (!fp || fwrite("WALSCSR1", 1, 8, fp) != 8 || fwrite(&n32, 4, 1, fp) != 1 ||
            fwrite(&n32, 4, 1, fp) != 1 || fwrite(&m.nnz, 8, 1, fp) != 1 ||
            fwrite(m.row_ptr, 8, (size_t)m.n + 1, fp) != (size_t)m.n + 1 ||
            fwrite(m.col, 4, m.nnz, fp) != m.nnz || fwrite(m.val, 4, m.nnz, fp) != m.nnz) {
            fprintf(stderr, "bench_wals: cannot write %s\n", save);
            if (fp)
                fclose(fp);
            return 1;
        }
        fclose(fp);
    }
    struct wals_csr csr = {m.n, m.n, m.row_ptr, m.col, m.val};

    printf("%-9s %5s %7s %5s %10s %10s %12s %12s %12s  %s\n", "solver", "dims", "threads", "iters",
           "best_s", "median_s", "best_us_nnz", "med_us_nnz", "cpu_us_nnz", "loss per iteration");
    for (int s = 0; s < 2; s++) {
        enum wals_solver sv = s == 0 ? WALS_SOLVER_CG : WALS_SOLVER_CHOLESKY;
        if (strcmp(solvers, "both") != 0 && strcmp(solvers, wals_solver_name(sv)) != 0)
            continue;
        for (int di = 0; di < nd; di++) {
            for (int ti = 0; ti < nt; ti++) {
                struct wals_params p;
                struct wals_model model;
                struct timing t = {0};
                wals_params_init(&p);
                p.dimensions = dims[di];
                p.threads = thr[ti];
                p.solver = sv;
                p.max_iterations = iters;
                p.early_stop = false;
                p.cg_steps = cg_steps;
                p.seed = 42;
                t.t0 = t.last = clock_mono_s();
                t.cpu_last = clock_cpu_s();
                rc = wals_train(&csr, NULL, &p, NULL, NULL, on_progress, &t, &model);
                if (rc < 0) {
                    printf("%-9s %5d %7d  failed: %s\n", wals_solver_name(sv), dims[di], thr[ti],
                           strerror(-rc));
                    continue;
                }
                double sorted[256];
                memcpy(sorted, t.secs, (size_t)t.n * sizeof(double));
                qsort(sorted, (size_t)t.n, sizeof(double), cmp_d);
                double best = sorted[0], med = sorted[t.n / 2];
                memcpy(sorted, t.cpus, (size_t)t.n * sizeof(double));
                qsort(sorted, (size_t)t.n, sizeof(double), cmp_d);
                double cpu_best = sorted[0];
                printf("%-9s %5d %7d %5d %10.3f %10.3f %12.4f %12.4f %12.4f ", wals_solver_name(sv),
                       dims[di], thr[ti], t.n, best, med, best * 1e6 / (double)m.nnz,
                       med * 1e6 / (double)m.nnz, cpu_best * 1e6 / (double)m.nnz);
                for (int k = 0; k < t.n; k++)
                    printf(" %.6g", t.loss[k]);
                printf("\n");
                fflush(stdout);
                wals_model_deinit(&model);
            }
        }
    }
    free(m.row_ptr);
    free(m.col);
    free(m.val);
    return 0;
}
