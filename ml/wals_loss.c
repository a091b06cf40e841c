/*
 * The implicit-WALS loss (Hu, Koren, Volinsky 2008, eq. 3) without
 * visiting the n_rows × n_cols cells:
 *
 *   L = Σ_all c (p − s)² + λ(‖X‖² + ‖Y‖²),  s_ij = x_i·y_j
 *     = Σ_all s²                       (every cell as if unobserved: c=1, p=0)
 *     + Σ_obs [c (p − s)² − s²]          (observed cells corrected)
 *     + λ (trace XᵀX + trace YᵀY)
 *
 * and Σ_all s² = Σ_ij (x_iᵀ y_j)² = trace((XᵀX)(YᵀY)). Cost O(n·f²) for
 * the two Gram matrices plus O(nnz·f) for the observed cells; sums are
 * accumulated in double.
 */
#include "ml/wals_internal.h"

#include <math.h>
#include <stdlib.h>

double wals__loss_rows(const uint64_t *row_ptr, const uint32_t *col, const float *val,
                       uint32_t row_begin, uint32_t row_end, const float *x, const float *y,
                       size_t stride, int f, double alpha)
{
    (void)f;
    double sum = 0.0;
    for (uint32_t i = row_begin; i < row_end; i++) {
        const float *xi = x + (size_t)i * stride;
        double row = 0.0;
        for (uint64_t k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
            const double s = wals__dot(xi, y + (size_t)col[k] * stride, stride);
            const double r = val[k];
            const double c = 1.0 + alpha * fabs(r);
            const double p = r > 0.0 ? 1.0 : 0.0;
            row += c * (p - s) * (p - s) - s * s;
        }
        sum += row;
    }
    return sum;
}

double wals__loss_combine(const double *gx, const double *gy, int f, double correction,
                          double l2_reg)
{
    double all = 0.0, tx = 0.0, ty = 0.0;
    for (int a = 0; a < f; a++) {
        for (int b = 0; b < f; b++)
            all += gx[(size_t)a * f + b] * gy[(size_t)a * f + b];
        tx += gx[(size_t)a * f + a];
        ty += gy[(size_t)a * f + a];
    }
    return all + correction + l2_reg * (tx + ty);
}

double wals_loss(const struct wals_csr *r, const float *x, const float *y, size_t stride,
                 int dimensions, double alpha, double l2_reg)
{
    double *gx = NULL, *gy = NULL;
    double loss = NAN;

    if (!r || (r->n_rows && (!x || !r->row_ptr)) || (r->n_cols && !y) || dimensions < 1 ||
        stride < (size_t)dimensions)
        return NAN;
    gx = malloc((size_t)dimensions * dimensions * sizeof(double));
    gy = malloc((size_t)dimensions * dimensions * sizeof(double));
    if (!gx || !gy)
        goto out;
    if (wals__gram(x, r->n_rows, stride, dimensions, gx) < 0 ||
        wals__gram(y, r->n_cols, stride, dimensions, gy) < 0)
        goto out;
    /* Exact double dots here (the caller's padding, if any, is not ours to
     * trust); the trainer uses the same formula with its float kernels. */
    double corr = 0.0;
    for (uint32_t i = 0; i < r->n_rows; i++) {
        const float *xi = x + (size_t)i * stride;
        for (uint64_t k = r->row_ptr[i]; k < r->row_ptr[i + 1]; k++) {
            const float *yj = y + (size_t)r->col[k] * stride;
            double s = 0.0;
            for (int a = 0; a < dimensions; a++)
                s += (double)xi[a] * yj[a];
            const double v = r->val[k];
            const double c = 1.0 + alpha * fabs(v);
            const double p = v > 0.0 ? 1.0 : 0.0;
            corr += c * (p - s) * (p - s) - s * s;
        }
    }
    loss = wals__loss_combine(gx, gy, dimensions, corr, l2_reg);
out:
    free(gx);
    free(gy);
    return loss;
}
