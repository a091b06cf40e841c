/*
 * Job parameter validation (see job_params.h).
 */
#include "jobs/job_params.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jobs/jobs.h"

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
