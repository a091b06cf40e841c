/*
 * The evaluate job's sweep over the matrix sources (docs/quality.md,
 * "The sweep"): the candidate list ("sweep": true gives the built-in grid,
 * or the user lists candidates), its validation and its JSON — the one
 * spelling of a source and its params shared by the job's result and by
 * the API that serves the chosen one (source=auto).
 *
 * A candidate's JSON: {"source": "cooc", "pop_weight": 0.4} (as a user
 * lists it) or, in results, {"source": "cooc", "params": {"pop_weight":
 * 0.4}}. Sources: cooc (pop_weight), pmi (none), rp3 (alpha, beta); params
 * left out take ml/scores.h's defaults.
 *
 * Pure data and jansson; any thread (the worker reads its own copy).
 */
#ifndef ITEMVEC_JOBS_SWEEP_H
#define ITEMVEC_JOBS_SWEEP_H

#include <jansson.h>
#include <stddef.h>

#include "ml/scores.h"

#define SWEEP_MAX_CANDIDATES 64

struct job_error;

/* The source's name ("cooc", "pmi", "rp3"). */
const char *sweep_source_name(enum score_source s);

/* Parses a source name; 0 or -EINVAL. */
int sweep_source_parse(const char *name, enum score_source *out);

/* Validates the evaluate job's "sweep" value (borrowed): false, true, or
 * a list of 1..SWEEP_MAX_CANDIDATES distinct candidate objects. Returns
 * the normalised value (new reference: false, true, or the list with
 * every param filled in) or NULL with err filled (422, a pointer under
 * /params/sweep). */
json_t *sweep_validate(json_t *v, struct job_error *err);

/* The candidates of a validated "sweep" value: the built-in grid for true
 * (cooc γ = 0 first, then pmi, then the rest), the list's for a list,
 * none for false. Writes up to max to out; returns their number. */
size_t sweep_candidates(json_t *v, struct score_params *out, size_t max);

/* {"pop_weight": γ} / {} / {"alpha": α, "beta": β}: p's params as JSON
 * (new reference). */
json_t *sweep_params_json(const struct score_params *p);

/* Reads {"source": S, "params": {...}} (a result's "best", borrowed) into
 * *out; params left out take their defaults. Returns 0, or -EINVAL for
 * an unknown source or params outside ml/scores.h's bounds. */
int sweep_choice_parse(json_t *choice, struct score_params *out);

#endif
