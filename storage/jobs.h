/*
 * Durable job records (schema v2): one row per job with its parameters,
 * progress, result and error as JSON text, so GET /v1/jobs/{id} works after
 * a restart and a job interrupted by a crash is found again. The JSON is
 * opaque here; jobs/jobs.c owns its shape.
 */
#ifndef ITEMVEC_STORAGE_JOBS_H
#define ITEMVEC_STORAGE_JOBS_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_job {
    int64_t seq;  /* creation order, 1.. */
    char *id;     /* "j<seq>" */
    char *type;
    char *state;  /* queued, running, succeeded, failed, cancelled */
    char *params;   /* JSON text */
    char *progress; /* JSON text or NULL */
    char *result;   /* JSON text or NULL */
    char *error;    /* JSON text (a problem) or NULL */
    int64_t created_ms, started_ms, finished_ms; /* Unix ms; 0 = not yet */
    int64_t attempts; /* times it was started */
};

/* Inserts a new job (all fields as given). Returns 0 or a negative errno. */
int store_job_insert(struct store *s, const struct store_job *j);

/* Overwrites the mutable fields (state, progress, result, error, times,
 * attempts) of job j->id. -ENOENT if absent. */
int store_job_update(struct store *s, const struct store_job *j);

/* Like store_job_update, but in one transaction with extra(s, arg) run
 * first (e.g. inserting the model a train job produced): both are stored
 * or neither. extra returns 0 or a negative errno (then nothing is). */
int store_job_update_with(struct store *s, const struct store_job *j,
                          int (*extra)(struct store *s, void *arg), void *arg);

/* Reads one job (caller frees with store_job_deinit). -ENOENT if absent. */
int store_job_get(struct store *s, const char *id, struct store_job *out);
void store_job_deinit(struct store_job *j);

/* Calls cb for up to limit jobs with seq < before_seq (0: no bound),
 * newest first, filtered by state and type when non-NULL. cb borrows the
 * record; a non-zero return stops and is returned. */
typedef int (*store_job_cb)(void *userdata, const struct store_job *j);
int store_jobs_list(struct store *s, const char *state, const char *type, int64_t before_seq,
                    int limit, store_job_cb cb, void *userdata);

/* Largest seq in use (0 when none). */
int store_jobs_max_seq(struct store *s, int64_t *out);

/* Id of the newest job (highest seq) of a type in a state, copied into
 * id. -ENOENT when there is none. */
int store_job_latest(struct store *s, const char *type, const char *state, char *id,
                     size_t size);

/* Id of the newest job of a type in a state whose result has a top-level
 * member key (e.g. an evaluate job's "best"), copied into id. -ENOENT when
 * there is none, -EINVAL for a key that is not a plain member name. */
int store_job_latest_with(struct store *s, const char *type, const char *state, const char *key,
                          char *id, size_t size);

/* Calls cb(type, state, count) for each (type, state) with jobs. */
typedef void (*store_job_count_cb)(void *userdata, const char *type, const char *state,
                                   int64_t count);
int store_jobs_count(struct store *s, store_job_count_cb cb, void *userdata);

/* Deletes a job record (for cleanup of old jobs). -ENOENT if absent. */
int store_job_delete(struct store *s, const char *id);

#endif
