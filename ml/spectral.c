/*
 * Randomized subspace iteration for the top eigenpairs of a sparse
 * symmetric matrix (see spectral.h). Blocks are n × l doubles: row-major
 * for the sparse products (one pass over the matrix, the inner loop over
 * the l contiguous columns), column-major for the orthonormalisation
 * (contiguous columns). No I/O.
 */
#include "ml/spectral.h"

#include <errno.h>
#include <lapack.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void spectral_params_init(struct spectral_params *p)
{
    *p = (struct spectral_params){.dimensions = 50, .oversample = 10, .iterations = 8, .seed = 0};
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A standard normal (Box–Muller) from the stream. */
static double gauss(uint64_t *s)
{
    double u1 = ((double)(splitmix(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* y = T·q over row-major n × l blocks. */
static void product(const struct wals_csr *t, const double *q, size_t l, double *y)
{
    for (uint32_t i = 0; i < t->n_rows; i++) {
        double *yi = y + (size_t)i * l;
        memset(yi, 0, sizeof *yi * l);
        for (uint64_t x = t->row_ptr[i]; x < t->row_ptr[i + 1]; x++) {
            const double v = t->val[x];
            const double *qj = q + (size_t)t->col[x] * l;
            for (size_t c = 0; c < l; c++)
                yi[c] += v * qj[c];
        }
    }
}

/* Row-major a (n × l) ↔ column-major b. */
static void to_columns(const double *a, size_t n, size_t l, double *b)
{
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < l; c++)
            b[c * n + i] = a[i * l + c];
}

static void to_rows(const double *b, size_t n, size_t l, double *a)
{
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < l; c++)
            a[i * l + c] = b[c * n + i];
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Orthonormalises the l columns of the column-major block (modified
 * Gram–Schmidt, each column twice: "twice is enough"); a column that
 * vanishes (dependent) becomes zero. */
static void orthonormalise(double *b, size_t n, size_t l)
{
    for (size_t c = 0; c < l; c++) {
        double *v = b + c * n;
        double before = sqrt(dot(v, v, n));
        for (int pass = 0; pass < 2; pass++)
            for (size_t p = 0; p < c; p++) {
                const double *u = b + p * n;
                double r = dot(u, v, n);
                for (size_t i = 0; i < n; i++)
                    v[i] -= r * u[i];
            }
        double norm = sqrt(dot(v, v, n));
        double scale = norm > 1e-10 * before && norm > 0 ? 1.0 / norm : 0.0;
        for (size_t i = 0; i < n; i++)
            v[i] *= scale;
    }
}

int spectral_embed(const struct wals_csr *t, const struct spectral_params *p,
                   spectral_progress_cb cb, void *userdata, float *out, double *lambda)
{
    if (!t || !p || !out || t->n_rows != t->n_cols || p->dimensions < 1 ||
        p->dimensions > SPECTRAL_MAX_DIMENSIONS || p->oversample < 0 || p->iterations < 0 ||
        (t->n_rows && (!t->row_ptr || !t->val || !t->col)))
        return -EINVAL;
    const size_t n = t->n_rows, f = (size_t)p->dimensions;
    size_t l = f + (size_t)p->oversample;
    if (l > n)
        l = n;
    memset(out, 0, sizeof *out * n * f);
    if (lambda)
        memset(lambda, 0, sizeof *lambda * f);
    if (n == 0 || l == 0)
        return 0;
    int rc = 0;
    double *q = malloc(sizeof *q * n * l), *y = malloc(sizeof *y * n * l);
    double *col = malloc(sizeof *col * n * l), *bm = malloc(sizeof *bm * l * l);
    double *w = malloc(sizeof *w * l), *work = NULL;
    if (!q || !y || !col || !bm || !w) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t s = p->seed ^ 0x5bd1e9955bd1e995ULL;
    for (size_t x = 0; x < n * l; x++)
        q[x] = gauss(&s);
    /* Y = T·Ω, then orthonormalise and multiply again, iterations times */
    for (int it = 0; it <= p->iterations; it++) {
        product(t, q, l, y);
        to_columns(y, n, l, col);
        orthonormalise(col, n, l);
        to_rows(col, n, l, q); /* q: the basis, row-major */
        if (cb && cb(userdata, (double)(it + 1) / (double)(p->iterations + 2))) {
            rc = -ECANCELED;
            goto out;
        }
    }
    /* Rayleigh–Ritz: B = Qᵀ·T·Q (l × l, symmetrised), B = U Λ Uᵀ */
    product(t, q, l, y);
    for (size_t a = 0; a < l; a++)
        for (size_t b = 0; b <= a; b++) {
            double sum = 0, sum2 = 0;
            for (size_t i = 0; i < n; i++) {
                sum += q[i * l + a] * y[i * l + b];
                sum2 += q[i * l + b] * y[i * l + a];
            }
            bm[a * l + b] = bm[b * l + a] = 0.5 * (sum + sum2);
        }
    lapack_int ln = (lapack_int)l, lwork = -1, info = 0;
    double wq;
    LAPACK_dsyev("V", "U", &ln, bm, &ln, w, &wq, &lwork, &info);
    lwork = info == 0 ? (lapack_int)wq : 3 * ln;
    work = malloc(sizeof *work * (size_t)(lwork > 1 ? lwork : 1));
    if (!work) {
        rc = -ENOMEM;
        goto out;
    }
    LAPACK_dsyev("V", "U", &ln, bm, &ln, w, work, &lwork, &info);
    if (info != 0) {
        rc = -EDOM;
        goto out;
    }
    /* eigenvalues ascend; column k of the column-major bm is u_k. The
     * embedding's column t is the t-th largest positive pair: Q·u·√λ.
     * Ritz values at rounding level (a null space) count as zero. */
    double big = fmax(fabs(w[0]), fabs(w[l - 1]));
    for (size_t c = 0; c < f && c < l; c++) {
        size_t k = l - 1 - c;
        if (!(w[k] > 1e-9 * big))
            break;
        const double sq = sqrt(w[k]);
        const double *u = bm + k * l;
        for (size_t i = 0; i < n; i++)
            out[i * f + c] = (float)(dot(q + i * l, u, l) * sq);
        if (lambda)
            lambda[c] = w[k];
    }
    if (cb && cb(userdata, 1.0))
        rc = -ECANCELED;
out:
    free(q);
    free(y);
    free(col);
    free(bm);
    free(w);
    free(work);
    return rc;
}
