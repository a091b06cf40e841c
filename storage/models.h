/*
 * Model records (schema v3): one row per trained model with its source
 * jobs, shape, parameters and loss curve (JSON text), the name of its
 * embedding file (storage/model_file.h), and which model is active (at
 * most one, enforced by a partial unique index).
 */
#ifndef ITEMVEC_STORAGE_MODELS_H
#define ITEMVEC_STORAGE_MODELS_H

#include <stdint.h>

struct store;

struct store_model {
    int64_t seq;
    char *id;      /* "m<seq of its train job>" */
    char *job;     /* the train job */
    char *pmi_job; /* the pmi job it was trained on */
    int64_t created_ms;
    int64_t dimensions;
    int64_t items;
    char *params; /* JSON text */
    char *loss;   /* JSON array text */
    char *file;   /* file name in <state>/models */
    int64_t crc;  /* payload checksum of the file */
    int active;
};

/* Inserts a model; when activate, it becomes the only active one. Runs in
 * the caller's transaction when there is one (see store_job_finish). */
int store_model_insert(struct store *s, const struct store_model *m, int activate);

int store_model_get(struct store *s, const char *id, struct store_model *out);
/* The active model, -ENOENT when none. */
int store_model_active(struct store *s, struct store_model *out);
void store_model_deinit(struct store_model *m);

/* Newest first, seq < before_seq (0: no bound). */
typedef int (*store_model_cb)(void *userdata, const struct store_model *m);
int store_models_list(struct store *s, int64_t before_seq, int limit, store_model_cb cb,
                      void *userdata);

/* Makes id the only active model (one transaction). -ENOENT if absent. */
int store_model_activate(struct store *s, const char *id);

/* Deletes a model record: -ENOENT if absent, -EBUSY if it is active. */
int store_model_delete(struct store *s, const char *id);

#endif
