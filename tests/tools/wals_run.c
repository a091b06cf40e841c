/*
 * wals_run: test-only command line front end of ml/wals, used by
 * tests/oracle/test_wals_numpy.py (and handy for experiments).
 *
 *   wals_run --matrix FILE [--init FILE] [--solver cg|cholesky] [--dims F]
 *            [--alpha A] [--l2 L] [--iters K] [--cg-steps S] [--threads T]
 *            [--seed N] [--early-stop] [--min-rel-progress P]
 *            [--loss-out FILE] [--factors-out FILE]
 *
 * Matrix file ("WALSCSR1", little-endian): 8-byte magic, u32 n_rows,
 * u32 n_cols, u64 nnz, u64 row_ptr[n_rows+1], u32 col[nnz], f32 val[nnz].
 * It must be square (R symmetric: the same matrix serves both half-steps).
 * Factor files (--init, --factors-out): raw f32, X (n_rows × F) then
 * Y (n_cols × F), row-major.
 *
 * Output: one loss per iteration, "%d %.17g\n" (iteration, loss), to
 * --loss-out or stdout. Exit status 0, 1 on a training error, 2 on bad
 * usage or unreadable input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml/wals.h"

static int read_matrix(const char *path, struct wals_csr *m, uint64_t **rp, uint32_t **col,
                       float **val)
{
    FILE *fp = fopen(path, "rb");
    char magic[8];
    uint32_t nr, nc;
    uint64_t nnz;
    int rc = -EINVAL;
    if (!fp)
        return -errno;
    if (fread(magic, 1, 8, fp) != 8 || memcmp(magic, "WALSCSR1", 8) != 0 ||
        fread(&nr, 4, 1, fp) != 1 || fread(&nc, 4, 1, fp) != 1 || fread(&nnz, 8, 1, fp) != 1)
        goto out;
    if (nnz > (1ull << 36) || nr > (1u << 30) || nc > (1u << 30))
        goto out;
    *rp = malloc(((size_t)nr + 1) * sizeof(uint64_t));
    *col = malloc((nnz + 1) * sizeof(uint32_t));
    *val = malloc((nnz + 1) * sizeof(float));
    if (!*rp || !*col || !*val) {
        rc = -ENOMEM;
        goto out;
    }
    if (fread(*rp, 8, (size_t)nr + 1, fp) != (size_t)nr + 1 || fread(*col, 4, nnz, fp) != nnz ||
        fread(*val, 4, nnz, fp) != nnz || (*rp)[nr] != nnz)
        goto out;
    *m = (struct wals_csr){nr, nc, *rp, *col, *val};
    rc = 0;
out:
    fclose(fp);
    return rc;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --matrix FILE [--init FILE] [--solver cg|cholesky] [--dims F] "
            "[--alpha A] [--l2 L] [--iters K] [--cg-steps S] [--threads T] [--seed N] "
            "[--early-stop] [--min-rel-progress P] [--loss-out FILE] [--factors-out FILE]\n",
            argv0);
}

int main(int argc, char **argv)
{
    const char *mpath = NULL, *ipath = NULL, *lpath = NULL, *fpath = NULL;
    struct wals_params p;
    struct wals_csr m;
    struct wals_model model = {0};
    uint64_t *rp = NULL;
    uint32_t *col = NULL;
    float *val = NULL, *init = NULL;
    int status = 2, rc;
    FILE *lf = NULL;

    wals_params_init(&p);
    p.early_stop = false;
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(o, "--early-stop")) {
            p.early_stop = true;
            continue;
        }
        if (!v) {
            usage(argv[0]);
            return 2;
        }
        a++;
        if (!strcmp(o, "--matrix"))
            mpath = v;
        else if (!strcmp(o, "--init"))
            ipath = v;
        else if (!strcmp(o, "--loss-out"))
            lpath = v;
        else if (!strcmp(o, "--factors-out"))
            fpath = v;
        else if (!strcmp(o, "--solver")) {
            if (wals_solver_parse(v, &p.solver) < 0) {
                usage(argv[0]);
                return 2;
            }
        } else if (!strcmp(o, "--dims"))
            p.dimensions = atoi(v);
        else if (!strcmp(o, "--alpha"))
            p.alpha = strtod(v, NULL);
        else if (!strcmp(o, "--l2"))
            p.l2_reg = strtod(v, NULL);
        else if (!strcmp(o, "--iters"))
            p.max_iterations = atoi(v);
        else if (!strcmp(o, "--cg-steps"))
            p.cg_steps = atoi(v);
        else if (!strcmp(o, "--threads"))
            p.threads = atoi(v);
        else if (!strcmp(o, "--seed"))
            p.seed = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--min-rel-progress"))
            p.min_rel_progress = strtod(v, NULL);
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (!mpath) {
        usage(argv[0]);
        return 2;
    }
    rc = read_matrix(mpath, &m, &rp, &col, &val);
    if (rc < 0) {
        fprintf(stderr, "wals_run: %s: %s\n", mpath, strerror(-rc));
        goto out;
    }
    if (ipath) {
        if (p.dimensions < 1) {
            fprintf(stderr, "wals_run: bad --dims\n");
            goto out;
        }
        size_t n = ((size_t)m.n_rows + m.n_cols) * (size_t)p.dimensions;
        FILE *fp = fopen(ipath, "rb");
        init = malloc((n + 1) * sizeof(float));
        if (!fp || !init || fread(init, sizeof(float), n, fp) != n) {
            fprintf(stderr, "wals_run: %s: cannot read %zu floats\n", ipath, n);
            if (fp)
                fclose(fp);
            goto out;
        }
        fclose(fp);
    }
    rc = wals_train(&m, NULL, &p, init, init ? init + (size_t)m.n_rows * p.dimensions : NULL, NULL,
                    NULL, &model);
    if (rc < 0) {
        fprintf(stderr, "wals_run: wals_train: %s\n", strerror(-rc));
        status = 1;
        goto out;
    }
    lf = lpath ? fopen(lpath, "w") : stdout;
    if (!lf) {
        perror(lpath);
        goto out;
    }
    for (int k = 0; k < model.iterations; k++)
        fprintf(lf, "%d %.17g\n", k, model.loss[k]);
    if (lf != stdout)
        fclose(lf);
    if (fpath) {
        FILE *fp = fopen(fpath, "wb");
        size_t nx = (size_t)model.n_rows * model.dimensions;
        size_t ny = (size_t)model.n_cols * model.dimensions;
        if (!fp || fwrite(model.x, sizeof(float), nx, fp) != nx ||
            fwrite(model.y, sizeof(float), ny, fp) != ny) {
            perror(fpath);
            if (fp)
                fclose(fp);
            goto out;
        }
        fclose(fp);
    }
    status = 0;
out:
    wals_model_deinit(&model);
    free(rp);
    free(col);
    free(val);
    free(init);
    return status;
}
