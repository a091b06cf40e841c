/*
 * Declarative validation of job parameters: each job type lists its
 * parameters with kind, range and default; the validator rejects unknown
 * keys, wrong types and out-of-range values with a JSON pointer naming the
 * field (→ 422), and returns the parameters with every default filled in,
 * which is what the job object shows and what the job runs with.
 */
#ifndef ITEMVEC_DAEMON_JOB_PARAMS_H
#define ITEMVEC_DAEMON_JOB_PARAMS_H

#include <jansson.h>
#include <stddef.h>

struct job_error;

enum job_param_kind { JOB_PARAM_INT, JOB_PARAM_NUMBER, JOB_PARAM_BOOL, JOB_PARAM_STRING };

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

/* Typed getters on a validated object. */
long long job_param_int(json_t *params, const char *name);
double job_param_number(json_t *params, const char *name);
int job_param_bool(json_t *params, const char *name);
const char *job_param_string(json_t *params, const char *name); /* NULL for null */

#endif
