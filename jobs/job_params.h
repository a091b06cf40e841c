/*
 * Declarative validation of job parameters: each job type lists its
 * parameters with kind, range and default; the validator rejects unknown
 * keys, wrong types and out-of-range values with a JSON pointer naming the
 * field (→ 422), and returns the parameters with every default filled in,
 * which is what the job object shows and what the job runs with.
 */
#ifndef ITEMVEC_JOBS_JOB_PARAMS_H
#define ITEMVEC_JOBS_JOB_PARAMS_H

#include <jansson.h>
#include <stddef.h>

struct job_error;

enum job_param_kind {
    JOB_PARAM_INT,
    JOB_PARAM_NUMBER,
    JOB_PARAM_BOOL,
    JOB_PARAM_STRING,
    JOB_PARAM_INT_LIST,    /* an integer or an array of 1..8 integers → array */
    JOB_PARAM_STRING_LIST, /* an array of distinct strings from choices → array */
};

struct job_param_def {
    const char *name;
    enum job_param_kind kind;
    double min, max;     /* inclusive, for INT and NUMBER */
    const char *def;     /* default as JSON text ("15", "true", "null", "\"cg\"") */
    const char *const *choices; /* STRING: allowed values, NULL-terminated (NULL = any) */
};

/* Validates params (borrowed; NULL = {}). Returns a new object with every
 * defined parameter, or NULL with err filled (status 422). */
json_t *job_params_validate(json_t *params, const struct job_param_def *defs, size_t n,
                            struct job_error *err);

/* The same over several tables (e.g. a job's own parameters plus the
 * shared PMI and training ones). */
struct job_param_table {
    const struct job_param_def *defs;
    size_t n;
};
json_t *job_params_validate_tables(json_t *params, const struct job_param_table *tables,
                                   size_t n_tables, struct job_error *err);

/* Parameter tables shared between job types (defined in job_params.c):
 * the PMI parameters (pmi, evaluate) and the model-training parameters
 * (train, evaluate). */
extern const struct job_param_table job_pmi_param_table;
extern const struct job_param_table job_model_param_table;

struct wals_params;
struct rating_params;
struct spectral_params;
/* Fills wp, rp and sp from validated parameters holding the model table;
 * returns 1 when "method" is "eigen" (train with sp instead of WALS). */
int job_model_params_apply(json_t *params, int threads, struct wals_params *wp,
                           struct rating_params *rp, struct spectral_params *sp);

/* Typed getters on a validated object. */
long long job_param_int(json_t *params, const char *name);
double job_param_number(json_t *params, const char *name);
int job_param_bool(json_t *params, const char *name);
const char *job_param_string(json_t *params, const char *name); /* NULL for null */

#endif
