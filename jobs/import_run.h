/*
 * The stages every import goes through after its body was read (private
 * to jobs/import_*.c): prepare on the worker pool (checks, key
 * prediction, the file), record on the loop (the JSON of the record), one
 * writer transaction (new items + record, store_items_import), and on
 * -EAGAIN (items created meanwhile) a bounded retry that shifts the new
 * items' keys and rewrites the file. The importer embeds a struct
 * import_run and fills the hooks.
 */
#ifndef ITEMVEC_JOBS_IMPORT_RUN_H
#define ITEMVEC_JOBS_IMPORT_RUN_H

#include <stdint.h>
#include <uv.h>

#include "base/strtab.h"
#include "jobs/import.h"
#include "storage/writer.h"

#define IMPORT_ATTEMPTS 3

struct store;

/* Item keys of an import's ids (strtab order = local index). */
struct import_keys {
    uint32_t n;
    const char **ids; /* [n] borrowed from the strtab */
    uint32_t *lens;   /* [n] */
    uint32_t *keys;   /* [n] stored or predicted key */
    uint32_t max_key; /* the snapshot's largest key */
    uint32_t n_new;
    const char **new_ids; /* [n_new] the ids not stored, local order */
    uint32_t *new_lens;
    uint32_t *new_local; /* [n_new] their local indices */
};

struct import_run {
    struct app *app;
    uv_work_t work;
    struct writer_op op;
    int attempts;
    int rc;
    struct import_error err;
    const struct strtab *ids;
    struct import_keys keys;
    char state_dir[1024];
    /* hooks */
    int (*prepare)(struct import_run *r); /* worker: check, predict (import_keys_predict), file */
    int (*rewrite)(struct import_run *r); /* worker: keys shifted, write the file again */
    int (*record)(struct import_run *r);  /* loop: build the record's text */
    int (*insert)(struct store *s, void *r);   /* writer: insert the record */
    void (*remove_file)(struct import_run *r); /* any thread: drop the file */
    void (*finished)(struct import_run *r);    /* loop: the end, rc in r->rc */
};

/* Loop thread: runs the stages; r->finished is called exactly once. */
void import_run_start(struct import_run *r);

/* Worker: looks up every id of r->ids in storage (own handle) and
 * predicts the keys of new ones: max_key + 1, + 2, ... in local order.
 * Fills r->keys; 0 or a negative errno (r->err.message set). */
int import_keys_predict(struct import_run *r);

void import_keys_deinit(struct import_keys *k);

/* Copies id (len bytes) into err->item1 (which 1) or err->item2 (2). */
void import_error_item(struct import_error *err, int which, const char *id, size_t len);

/* Copies id into dst (cap >= 8 bytes) for a message: whole when it fits,
 * else cut on a UTF-8 character boundary and followed by "...". Returns dst. */
char *import_short_id(char *dst, size_t cap, const char *id, size_t len);
#endif
