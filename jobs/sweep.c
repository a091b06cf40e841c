/*
 * Sweep candidates and their JSON (see sweep.h).
 */
#include "jobs/sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jobs/jobs.h"

/* The built-in grid, from docs/quality.md's measurements: cooc's
 * popularity weight from 0 (the plain count) to 1, and rp3 over the α, β
 * that won on some public dataset, with their neighbours. */
static const double grid_gamma[] = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0};
static const double grid_alpha[] = {0.25, 0.5, 0.75, 1.0};
static const double grid_beta[] = {-0.5, -0.3, -0.1, 0, 0.1, 0.25, 0.5};

const char *sweep_source_name(enum score_source s)
{
    switch (s) {
    case SCORE_COOC:
        return "cooc";
    case SCORE_PMI:
        return "pmi";
    case SCORE_RP3:
        return "rp3";
    }
    return "?";
}

int sweep_source_parse(const char *name, enum score_source *out)
{
    if (!name)
        return -EINVAL;
    if (strcmp(name, "cooc") == 0)
        *out = SCORE_COOC;
    else if (strcmp(name, "pmi") == 0)
        *out = SCORE_PMI;
    else if (strcmp(name, "rp3") == 0)
        *out = SCORE_RP3;
    else
        return -EINVAL;
    return 0;
}

json_t *sweep_params_json(const struct score_params *p)
{
    switch (p->source) {
    case SCORE_COOC:
        return json_pack("{s:f}", "pop_weight", p->pop_weight);
    case SCORE_RP3:
        return json_pack("{s:f,s:f}", "alpha", p->alpha, "beta", p->beta);
    case SCORE_PMI:
        break;
    }
    return json_object();
}

static json_t *bad(struct job_error *err, const char *pointer, const char *msg)
{
    err->status = 422;
    snprintf(err->pointer, sizeof err->pointer, "/params/sweep%.40s", pointer);
    snprintf(err->message, sizeof err->message, "%s", msg);
    return NULL;
}

/* Reads number field name of o into *x when present; -1 when it is not a
 * number in [lo, hi]. */
static int number_field(json_t *o, const char *name, double lo, double hi, double *x)
{
    json_t *v = json_object_get(o, name);
    if (!v)
        return 0;
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < lo ||
        json_number_value(v) > hi)
        return -1;
    *x = json_number_value(v);
    return 0;
}

/* One candidate object of a user's list → normalised {"source", params...}. */
static json_t *candidate_validate(json_t *o, size_t i, struct job_error *err)
{
    char ptr[64], msg[200];
    snprintf(ptr, sizeof ptr, "/%zu", i);
    if (!json_is_object(o))
        return bad(err, ptr, "a sweep candidate must be an object {\"source\": ..., params}");
    struct score_params p;
    json_t *src = json_object_get(o, "source");
    enum score_source s;
    if (!json_is_string(src) || sweep_source_parse(json_string_value(src), &s) != 0) {
        snprintf(ptr, sizeof ptr, "/%zu/source", i);
        return bad(err, ptr, "source must be one of: cooc, pmi, rp3");
    }
    score_params_init(&p, s);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        int ok = strcmp(key, "source") == 0 ||
                 (s == SCORE_COOC && strcmp(key, "pop_weight") == 0) ||
                 (s == SCORE_RP3 && (strcmp(key, "alpha") == 0 || strcmp(key, "beta") == 0));
        if (!ok) {
            snprintf(ptr, sizeof ptr, "/%zu/%.40s", i, key);
            snprintf(msg, sizeof msg, "unknown parameter \"%.40s\" for source %s", key,
                     sweep_source_name(s));
            return bad(err, ptr, msg);
        }
    }
    struct {
        const char *name;
        double lo, hi, *x;
    } f[] = {
        {"pop_weight", SCORE_POP_WEIGHT_MIN, SCORE_POP_WEIGHT_MAX, &p.pop_weight},
        {"alpha", SCORE_ALPHA_MIN, SCORE_ALPHA_MAX, &p.alpha},
        {"beta", SCORE_BETA_MIN, SCORE_BETA_MAX, &p.beta},
    };
    for (size_t t = 0; t < sizeof f / sizeof f[0]; t++) {
        if (number_field(o, f[t].name, f[t].lo, f[t].hi, f[t].x) != 0) {
            snprintf(ptr, sizeof ptr, "/%zu/%s", i, f[t].name);
            snprintf(msg, sizeof msg, "%s must be a number in %g..%g", f[t].name, f[t].lo, f[t].hi);
            return bad(err, ptr, msg);
        }
    }
    json_t *out = sweep_params_json(&p);
    json_object_set_new(out, "source", json_string(sweep_source_name(s)));
    return out;
}

json_t *sweep_validate(json_t *v, struct job_error *err)
{
    if (!v || json_is_boolean(v))
        return v ? json_incref(v) : json_false();
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n < 1 || n > SWEEP_MAX_CANDIDATES)
        return bad(err, "",
                   "sweep must be true, false or a list of 1..64 candidates "
                   "{\"source\": \"cooc\"|\"pmi\"|\"rp3\", params}");
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *c = candidate_validate(json_array_get(v, i), i, err);
        if (!c) {
            json_decref(out);
            return NULL;
        }
        for (size_t t = 0; t < i; t++) {
            if (json_equal(json_array_get(out, t), c)) {
                char ptr[32];
                snprintf(ptr, sizeof ptr, "/%zu", i);
                json_decref(c);
                json_decref(out);
                return bad(err, ptr, "sweep lists a candidate twice");
            }
        }
        json_array_append_new(out, c);
    }
    return out;
}

size_t sweep_candidates(json_t *v, struct score_params *out, size_t max)
{
    size_t n = 0;
    if (json_is_true(v)) {
        for (size_t g = 0; g < sizeof grid_gamma / sizeof grid_gamma[0] && n < max; g++) {
            score_params_init(&out[n], SCORE_COOC);
            out[n++].pop_weight = grid_gamma[g];
            if (g == 0 && n < max)
                score_params_init(&out[n++], SCORE_PMI);
        }
        for (size_t a = 0; a < sizeof grid_alpha / sizeof grid_alpha[0]; a++)
            for (size_t b = 0; b < sizeof grid_beta / sizeof grid_beta[0] && n < max; b++) {
                score_params_init(&out[n], SCORE_RP3);
                out[n].alpha = grid_alpha[a];
                out[n++].beta = grid_beta[b];
            }
        return n;
    }
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c)
    {
        if (n >= max || sweep_choice_parse(c, &out[n]) != 0)
            continue;
        n++;
    }
    return n;
}

int sweep_choice_parse(json_t *choice, struct score_params *out)
{
    enum score_source s;
    if (!json_is_object(choice) ||
        sweep_source_parse(json_string_value(json_object_get(choice, "source")), &s) != 0)
        return -EINVAL;
    score_params_init(out, s);
    /* a result's {"source", "params": {...}} or a list's flat object */
    json_t *p = json_object_get(choice, "params");
    if (!json_is_object(p))
        p = choice;
    json_t *v;
    if ((v = json_object_get(p, "pop_weight")) && json_is_number(v))
        out->pop_weight = json_number_value(v);
    if ((v = json_object_get(p, "alpha")) && json_is_number(v))
        out->alpha = json_number_value(v);
    if ((v = json_object_get(p, "beta")) && json_is_number(v))
        out->beta = json_number_value(v);
    return score_params_check(out);
}
