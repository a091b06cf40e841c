/*
 * Implicit-feedback weighted alternating least squares (WALS): the model
 * BigQuery ML trains for MODEL_TYPE='matrix_factorization',
 * FEEDBACK_TYPE='implicit' (the seed's sp_TrainItemMatchingModel), on the
 * sparse matrix R of scores r = cooc·pmi (ml/cooc.h), n_rows × n_cols.
 *
 * Model (Hu, Koren, Volinsky 2008, "Collaborative Filtering for Implicit
 * Feedback Datasets", eq. 3): over ALL cells (i, j), observed or not,
 *
 *   L = Σ_ij c_ij (p_ij − x_i·y_j)² + λ (Σ_i ‖x_i‖² + Σ_j ‖y_j‖²)
 *
 * with p = 1 if r > 0 else 0 and c = 1 + α·|r| (|r| so that negative PMI
 * gives a confident "no", as Spark ALS and `implicit` do); unobserved
 * cells have p = 0, c = 1. λ = l2_reg, not scaled by counts. No biases.
 * X (row factors) and Y (column factors) are trained separately even when
 * R is symmetric, as BigQuery ML does; the embedding of item i is
 * x_i + y_i (the seed's sp_ExractEmbeddings sums both factor vectors).
 *
 * Each half-step solves every row exactly (Cholesky of the normal
 * equations) or approximately with a few warm-started conjugate-gradient
 * steps (Takács, Pilászy, Tikk 2011, "Applications of the conjugate
 * gradient method for implicit feedback collaborative filtering").
 * See docs/algorithms.md, "Implicit WALS".
 *
 * Pure math, no I/O. Threads: plain pthreads created and joined inside
 * wals_train. BLAS: the daemon is expected to run OpenBLAS single-threaded
 * (OPENBLAS_NUM_THREADS=1, as the test environment sets it); wals_train
 * also calls openblas_set_num_threads(1) (process-wide in OpenBLAS's
 * pthread build) so the per-row BLAS calls of its own threads never fan
 * out into OpenBLAS's thread pool on top of them.
 */
#ifndef ITEMVEC_ML_WALS_H
#define ITEMVEC_ML_WALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* BigQuery ML's defaults (CREATE MODEL ... matrix_factorization). */
#define WALS_DEFAULT_DIMENSIONS 50
#define WALS_DEFAULT_ALPHA 1.0
#define WALS_DEFAULT_L2_REG 1.0
#define WALS_DEFAULT_MAX_ITERATIONS 20
#define WALS_DEFAULT_MIN_REL_PROGRESS 0.01
#define WALS_DEFAULT_CG_STEPS 3
#define WALS_MAX_DIMENSIONS 1024
#define WALS_MAX_THREADS 64

/* Borrowed view of a sparse matrix in CSR form. Row i holds columns
 * col[row_ptr[i] .. row_ptr[i+1]-1] (each < n_cols, unique within the row;
 * order does not matter) with values val[same slots] = r. row_ptr has
 * n_rows + 1 entries and row_ptr[0] == 0. */
struct wals_csr {
    uint32_t n_rows;
    uint32_t n_cols;
    const uint64_t *row_ptr;
    const uint32_t *col;
    const float *val;
};

enum wals_solver {
    WALS_SOLVER_CG = 0,       /* Takács et al. 2011, warm-started, cg_steps per row */
    WALS_SOLVER_CHOLESKY = 1, /* exact normal equations (Hu et al. 2008) */
};

struct wals_params {
    int dimensions;          /* f, 1..WALS_MAX_DIMENSIONS */
    double alpha;            /* confidence slope, >= 0 */
    double l2_reg;           /* λ, >= 0 */
    int max_iterations;      /* >= 1 */
    bool early_stop;         /* stop when (L_prev − L)/L_prev < min_rel_progress */
    double min_rel_progress; /* >= 0 */
    uint64_t seed;           /* initial factors; same seed → same result */
    enum wals_solver solver; /* default WALS_SOLVER_CG (measured faster, see docs) */
    int cg_steps;            /* CG steps per row and half-step, >= 1 */
    int threads;             /* worker threads, 1..WALS_MAX_THREADS; the result
                                does not depend on it (bit-identical) */
};

/* Fills p with BigQuery ML's defaults, seed 0, the CG solver, 2 threads. */
void wals_params_init(struct wals_params *p);

/* "cg" / "cholesky" ↔ enum. parse returns 0 or -EINVAL; name returns a
 * static string ("?" for an unknown value). */
int wals_solver_parse(const char *name, enum wals_solver *out);
const char *wals_solver_name(enum wals_solver s);

/* What a progress report is about. */
enum wals_event {
    WALS_EVENT_TICK = 0,      /* periodic, mid-half-step (factors being written) */
    WALS_EVENT_HALF_STEP = 1, /* a half-step just finished: x and y are consistent */
    WALS_EVENT_ITERATION = 2, /* an iteration finished; loss is its loss */
};

struct wals_progress {
    enum wals_event event;
    int iteration;   /* 0-based iteration in progress / just finished */
    int half_step;   /* 0: solving X (rows), 1: solving Y (columns) */
    double fraction; /* 0..1 of max_iterations */
    double loss;     /* loss of the last finished iteration, NAN before the first */
    /* Factors, borrowed for the duration of the callback: row i of X at
     * x + i·stride, first `dimensions` floats meaningful. Only consistent
     * for WALS_EVENT_HALF_STEP and WALS_EVENT_ITERATION. */
    const float *x;
    const float *y;
    size_t stride;
};

/* Returns 0 to go on; anything else cancels (wals_train returns -ECANCELED). */
typedef int (*wals_progress_cb)(void *userdata, const struct wals_progress *p);

/* A trained model. x is n_rows × dimensions, y is n_cols × dimensions,
 * row-major, unpadded; loss[k] is the loss after iteration k. */
struct wals_model {
    uint32_t n_rows;
    uint32_t n_cols;
    int dimensions;
    float *x;
    float *y;
    double *loss;   /* [iterations] */
    int iterations; /* iterations run */
    bool early_stopped;
};

/* Trains the model on r with params.
 *
 * rt is the transpose of r (n_cols × n_rows) used for the Y half-step;
 * NULL means r is symmetric (n_rows == n_cols) and serves both. init_x /
 * init_y (may be NULL, both or neither) are initial factors, n × dimensions
 * row-major; NULL draws them from params->seed (uniform in ±1/sqrt(f), from
 * a counter-based hash of (seed, side, index), so the start is independent
 * of threads).
 *
 * Ownership: every input is borrowed and only read. On success *out is
 * overwritten (not freed first) and owned by the caller (wals_model_deinit);
 * on failure it is left zeroed.
 *
 * Progress: cb (may be NULL) runs on the calling thread, at least every
 * ~50 ms while work proceeds (mid-half-step too) and at every half-step
 * and iteration end; a non-zero return stops the workers within a chunk
 * of rows (milliseconds) and wals_train returns -ECANCELED.
 *
 * Errors: -EINVAL (NULL r/params/out, a parameter out of range, rt needed
 * but NULL with n_rows != n_cols, malformed CSR: row_ptr not starting at 0
 * or decreasing, a column out of range, a non-finite value), -ENOMEM,
 * -EAGAIN (thread creation failed), -EDOM (normal equations not positive
 * definite: only possible with l2_reg == 0), -ECANCELED.
 *
 * Threading: reentrant; runs params->threads threads (the caller's among
 * them) and joins them before returning. Deterministic: same inputs and
 * seed give bit-identical factors and losses for any thread count.
 * Memory: 2·(n_rows + n_cols)·f floats plus small per-thread buffers.
 */
int wals_train(const struct wals_csr *r, const struct wals_csr *rt,
               const struct wals_params *params, const float *init_x, const float *init_y,
               wals_progress_cb cb, void *userdata, struct wals_model *out);

/* Frees m's arrays and zeroes it. NULL or a zeroed model is a no-op. */
void wals_model_deinit(struct wals_model *m);

/* Writes the embeddings e_i = x_i + y_i (factors in order, as the seed's
 * sp_ExractEmbeddings) to out, n_rows × dimensions floats, caller-owned.
 * Returns 0, or -EINVAL when m is not square (n_rows != n_cols) or NULL. */
int wals_model_embeddings(const struct wals_model *m, float *out);

/* The loss L above for factors x (r->n_rows rows) and y (r->n_cols rows),
 * row i at x + i·stride (stride >= dimensions), in O(nnz·f + n·f²):
 * Σ_all (x_i·y_j)² = trace((XᵀX)(YᵀY)), observed cells corrected, double
 * accumulation. Single-threaded, deterministic. Returns the loss, or NAN
 * on bad arguments / out of memory. */
double wals_loss(const struct wals_csr *r, const float *x, const float *y, size_t stride,
                 int dimensions, double alpha, double l2_reg);

#endif
