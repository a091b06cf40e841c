/*
 * Job parameter validation (see job_params.h), and the parameter tables
 * that several job types share: PMI (pmi, evaluate) and model training
 * (train, evaluate). A job's own parameters stay in its job_<type>.c.
 * Loop thread (validation, job start); the tables are constant.
 */
#include "jobs/job_params.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jobs/jobs.h"
#include "ml/spectral.h"
#include "ml/rating.h"
#include "ml/wals.h"

static json_t *fail(struct job_error *err, const char *name, const char *fmt, const char *a)
{
    err->status = 422;
    snprintf(err->pointer, sizeof err->pointer, "/params/%s", name);
    snprintf(err->message, sizeof err->message, fmt, a);
    return NULL;
}

static json_t *check(const struct job_param_def *d, json_t *v, struct job_error *err)
{
    char range[96];
    switch (d->kind) {
    case JOB_PARAM_INT: {
        double x;
        if (json_is_integer(v))
            x = (double)json_integer_value(v);
        else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)))
            x = json_real_value(v);
        else
            return fail(err, d->name, "%s must be an integer", d->name);
        if (x < d->min || x > d->max) {
            snprintf(range, sizeof range, "%s must be in %.0f..%.0f", d->name, d->min, d->max);
            return fail(err, d->name, "%s", range);
        }
        return json_integer((json_int_t)x);
    }
    case JOB_PARAM_NUMBER: {
        if (!json_is_number(v))
            return fail(err, d->name, "%s must be a number", d->name);
        double x = json_number_value(v);
        if (!isfinite(x) || x < d->min || x > d->max) {
            snprintf(range, sizeof range, "%s must be in %g..%g", d->name, d->min, d->max);
            return fail(err, d->name, "%s", range);
        }
        return json_real(x);
    }
    case JOB_PARAM_BOOL:
        if (!json_is_boolean(v))
            return fail(err, d->name, "%s must be true or false", d->name);
        return json_incref(v);
    case JOB_PARAM_INT_LIST: {
        json_t *arr = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
        size_t n = json_array_size(arr), i;
        json_t *e, *out = json_array();
        struct job_param_def one = *d;
        one.kind = JOB_PARAM_INT;
        if (n < 1 || n > 8) {
            json_decref(arr);
            json_decref(out);
            return fail(err, d->name, "%s must be an integer or a list of 1..8 integers",
                        d->name);
        }
        json_array_foreach(arr, i, e)
        {
            json_t *ok = check(&one, e, err);
            if (!ok) {
                json_decref(arr);
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, ok);
        }
        json_decref(arr);
        return out;
    }
    case JOB_PARAM_STRING_LIST: {
        size_t i, k;
        json_t *e;
        if (!json_is_array(v) || json_array_size(v) == 0)
            return fail(err, d->name, "%s must be a non-empty list", d->name);
        struct job_param_def one = *d;
        one.kind = JOB_PARAM_STRING;
        json_array_foreach(v, i, e)
        {
            json_t *ok = json_is_string(e) ? check(&one, e, err) : NULL;
            if (!ok)
                return err->message[0] ? NULL : fail(err, d->name, "%s must list strings", d->name);
            json_decref(ok);
            for (k = 0; k < i; k++)
                if (json_equal(json_array_get(v, k), e))
                    return fail(err, d->name, "%s lists a value twice", d->name);
        }
        return json_incref(v);
    }
    case JOB_PARAM_STRING:
        if (json_is_null(v))
            return json_null();
        if (!json_is_string(v))
            return fail(err, d->name, "%s must be a string", d->name);
        if (d->choices) {
            for (const char *const *c = d->choices; *c; c++)
                if (strcmp(*c, json_string_value(v)) == 0)
                    return json_incref(v);
            char list[160] = "";
            for (const char *const *c = d->choices; *c; c++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         c == d->choices ? "" : ", ", *c);
            return fail(err, d->name, "must be one of: %s", list);
        }
        return json_incref(v);
    }
    return NULL;
}

/* Finds name in the tables. */
static const struct job_param_def *find_def(const struct job_param_table *t, size_t nt,
                                            const char *name)
{
    for (size_t i = 0; i < nt; i++)
        for (size_t k = 0; k < t[i].n; k++)
            if (strcmp(t[i].defs[k].name, name) == 0)
                return &t[i].defs[k];
    return NULL;
}

json_t *job_params_validate_tables(json_t *params, const struct job_param_table *tables,
                                   size_t n_tables, struct job_error *err)
{
    if (params && !json_is_object(params) && !json_is_null(params)) {
        err->status = 422;
        snprintf(err->pointer, sizeof err->pointer, "/params");
        snprintf(err->message, sizeof err->message, "params must be an object");
        return NULL;
    }
    const char *key;
    json_t *v;
    if (json_is_object(params)) {
        json_object_foreach(params, key, v)
        {
            if (find_def(tables, n_tables, key))
                continue;
            char known[600] = "";
            for (size_t t = 0; t < n_tables; t++)
                for (size_t k = 0; k < tables[t].n; k++)
                    snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                             known[0] ? ", " : "", tables[t].defs[k].name);
            err->status = 422;
            snprintf(err->pointer, sizeof err->pointer, "/params/%.50s", key);
            snprintf(err->message, sizeof err->message, "unknown parameter \"%.50s\" (known: %.150s)",
                     key, known);
            return NULL;
        }
    }
    json_t *out = json_object();
    for (size_t t = 0; t < n_tables; t++) {
        for (size_t i = 0; i < tables[t].n; i++) {
            const struct job_param_def *d = &tables[t].defs[i];
            v = json_is_object(params) ? json_object_get(params, d->name) : NULL;
            json_t *def = NULL;
            if (!v) {
                def = json_loads(d->def, JSON_DECODE_ANY, NULL);
                v = def;
            }
            json_t *ok = json_is_null(v) && strcmp(d->def, "null") == 0 ? json_null()
                                                                        : check(d, v, err);
            json_decref(def);
            if (!ok) {
                json_decref(out);
                return NULL;
            }
            json_object_set_new(out, d->name, ok);
        }
    }
    return out;
}

json_t *job_params_validate(json_t *params, const struct job_param_def *defs, size_t n,
                            struct job_error *err)
{
    struct job_param_table t = {defs, n};
    return job_params_validate_tables(params, &t, 1, err);
}

/* ---- the tables shared between job types (job_params.h) ---- */

/* The seed's sp_ComputePMI(min_item_frequency = 15, max_group_size = 100). */
static const struct job_param_def pmi_params[] = {
    {"min_item_frequency", JOB_PARAM_INT, 1, 1e9, "15", NULL},
    {"max_group_size", JOB_PARAM_INT, 2, 1e9, "100", NULL},
};

const struct job_param_table job_pmi_param_table = {pmi_params,
                                                    sizeof pmi_params / sizeof pmi_params[0]};

static const char *const solvers[] = {"cg", "cholesky", NULL};
static const char *const targets[] = {"score", "pmi", "cooc", "sppmi", NULL};
static const char *const scales[] = {"linear", "log", "sqrt", NULL};
static const char *const methods[] = {"wals", "eigen", NULL};
static const char *const negatives[] = {"keep", "drop", NULL};

/* BigQuery ML's defaults for matrix_factorization (implicit), with the
 * seed's NUM_FACTORS = 50 and WALS_ALPHA = 1; the last two are itemvec's
 * extensions for the quality study (docs/quality.md). */
static const struct job_param_def model_params[] = {
    {"dimensions", JOB_PARAM_INT, 1, WALS_MAX_DIMENSIONS, "50", NULL},
    {"alpha", JOB_PARAM_NUMBER, 0, 1e9, "1.0", NULL},
    {"l2_reg", JOB_PARAM_NUMBER, 0, 1e9, "1.0", NULL},
    {"max_iterations", JOB_PARAM_INT, 1, 1000, "20", NULL},
    {"early_stop", JOB_PARAM_BOOL, 0, 0, "true", NULL},
    {"min_rel_progress", JOB_PARAM_NUMBER, 0, 1, "0.01", NULL},
    {"seed", JOB_PARAM_INT, 0, 9007199254740991.0, "0", NULL},
    {"solver", JOB_PARAM_STRING, 0, 0, "\"cg\"", solvers},
    {"cg_steps", JOB_PARAM_INT, 1, 100, "3", NULL},
    {"target", JOB_PARAM_STRING, 0, 0, "\"score\"", targets},
    {"diagonal", JOB_PARAM_BOOL, 0, 0, "true", NULL},
    {"shift", JOB_PARAM_NUMBER, 0, 64, "0", NULL},
    {"min_cooc", JOB_PARAM_INT, 0, 4294967295.0, "0", NULL},
    {"negative", JOB_PARAM_STRING, 0, 0, "\"keep\"", negatives},
    {"scale", JOB_PARAM_STRING, 0, 0, "\"linear\"", scales},
    {"epsilon", JOB_PARAM_NUMBER, 1e-9, 1e9, "1.0", NULL},
    /* "eigen": spectral embeddings of the ratings (ml/spectral.h) instead of
     * WALS; the WALS params above are then unused */
    {"method", JOB_PARAM_STRING, 0, 0, "\"wals\"", methods},
    {"eigen_iterations", JOB_PARAM_INT, 0, 100, "8", NULL},
};

const struct job_param_table job_model_param_table = {model_params,
                                                      sizeof model_params / sizeof model_params[0]};

int job_model_params_apply(json_t *p, int threads, struct wals_params *wp,
                           struct rating_params *rp, struct spectral_params *sp)
{
    spectral_params_init(sp);
    sp->dimensions = (int)job_param_int(p, "dimensions");
    sp->iterations = (int)job_param_int(p, "eigen_iterations");
    sp->seed = (uint64_t)job_param_int(p, "seed");
    wals_params_init(wp);
    rating_params_init(rp);
    wp->dimensions = (int)job_param_int(p, "dimensions");
    wp->alpha = job_param_number(p, "alpha");
    wp->l2_reg = job_param_number(p, "l2_reg");
    wp->max_iterations = (int)job_param_int(p, "max_iterations");
    wp->early_stop = job_param_bool(p, "early_stop");
    wp->min_rel_progress = job_param_number(p, "min_rel_progress");
    wp->seed = (uint64_t)job_param_int(p, "seed");
    wals_solver_parse(job_param_string(p, "solver"), &wp->solver);
    wp->cg_steps = (int)job_param_int(p, "cg_steps");
    wp->threads = threads;
    rating_target_parse(job_param_string(p, "target"), &rp->target);
    rp->include_diagonal = job_param_bool(p, "diagonal");
    rp->shift = job_param_number(p, "shift");
    rp->min_cooc = (uint32_t)job_param_int(p, "min_cooc");
    /* params stored by an older version may lack a newer field: its default */
    const char *negative = job_param_string(p, "negative");
    rp->drop_negative = negative && strcmp(negative, "drop") == 0;
    rating_scale_parse(job_param_string(p, "scale"), &rp->scale);
    rp->epsilon = job_param_number(p, "epsilon");
    /* absent in the params of a job queued by an older version: WALS */
    const char *method = job_param_string(p, "method");
    return method && strcmp(method, "eigen") == 0;
}

long long job_param_int(json_t *params, const char *name)
{
    return (long long)json_integer_value(json_object_get(params, name));
}

double job_param_number(json_t *params, const char *name)
{
    return json_number_value(json_object_get(params, name));
}

int job_param_bool(json_t *params, const char *name)
{
    return json_is_true(json_object_get(params, name));
}

const char *job_param_string(json_t *params, const char *name)
{
    return json_string_value(json_object_get(params, name));
}
