/*
 * The import stages (see import_run.h). Loop-thread callbacks chain the
 * pool work and the writer op; the worker hooks touch only the import's
 * own buffers and open their own store handle.
 */
#include "jobs/import_run.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/thread.h"
#include "conf/app.h"
#include "storage/items_import.h"
#include "storage/store.h"

#define RUN_OF(w) ((struct import_run *)(void *)((char *)(w)-offsetof(struct import_run, work)))

void import_error_item(struct import_error *err, int which, const char *id, size_t len)
{
    char *dst = which == 1 ? err->item1 : err->item2;
    size_t cap = which == 1 ? sizeof err->item1 : sizeof err->item2;
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, id, len);
    dst[len] = '\0';
}

char *import_short_id(char *dst, size_t cap, const char *id, size_t len)
{
    if (len < cap) {
        memcpy(dst, id, len);
        dst[len] = '\0';
        return dst;
    }
    size_t n = cap - 4;
    while (n > 0 && ((unsigned char)id[n] & 0xc0) == 0x80)
        n--; /* id[n] starts the first character left out */
    memcpy(dst, id, n);
    memcpy(dst + n, "...", 4);
    return dst;
}

void import_keys_deinit(struct import_keys *k)
{
    free(k->ids);
    free(k->lens);
    free(k->keys);
    free(k->new_ids);
    free(k->new_lens);
    free(k->new_local);
    memset(k, 0, sizeof *k);
}

static int keys_alloc(struct import_keys *k, uint32_t n)
{
    k->n = n;
    k->ids = malloc(sizeof *k->ids * ((size_t)n + 1));
    k->lens = malloc(sizeof *k->lens * ((size_t)n + 1));
    k->keys = malloc(sizeof *k->keys * ((size_t)n + 1));
    k->new_ids = malloc(sizeof *k->new_ids * ((size_t)n + 1));
    k->new_lens = malloc(sizeof *k->new_lens * ((size_t)n + 1));
    k->new_local = malloc(sizeof *k->new_local * ((size_t)n + 1));
    return k->ids && k->lens && k->keys && k->new_ids && k->new_lens && k->new_local ? 0 : -ENOMEM;
}

/* Looks ids[0..n) up; fills keys (0 = not stored) and max_key. */
static int keys_lookup(struct import_run *r, const char *const *ids, const uint32_t *lens,
                       uint32_t n, uint32_t *keys, uint32_t *max_key)
{
    struct store_error serr;
    struct store *s = store_open(r->state_dir, &serr);
    if (!s) {
        snprintf(r->err.message, sizeof r->err.message, "cannot open storage: %.200s",
                 serr.message);
        return -EIO;
    }
    int rc = store_items_lookup(s, ids, lens, n, keys, max_key);
    if (rc != 0)
        snprintf(r->err.message, sizeof r->err.message, "cannot read item keys: %.200s",
                 store_errmsg(s));
    store_close(s);
    return rc;
}

int import_keys_predict(struct import_run *r)
{
    ASSERT_WORKER_THREAD();
    struct import_keys *k = &r->keys;
    import_keys_deinit(k);
    if (keys_alloc(k, r->ids->n) < 0)
        return -ENOMEM;
    for (uint32_t i = 0; i < k->n; i++) {
        k->ids[i] = strtab_str(r->ids, i);
        k->lens[i] = strtab_len(r->ids, i);
    }
    int rc = keys_lookup(r, k->ids, k->lens, k->n, k->keys, &k->max_key);
    if (rc != 0)
        return rc;
    if ((uint64_t)k->max_key + k->n > UINT32_MAX) {
        snprintf(r->err.message, sizeof r->err.message, "item keys would exceed 2^32 - 1");
        return -EOVERFLOW;
    }
    k->n_new = 0;
    for (uint32_t i = 0; i < k->n; i++) {
        if (k->keys[i])
            continue;
        k->keys[i] = k->max_key + 1 + k->n_new;
        k->new_ids[k->n_new] = k->ids[i];
        k->new_lens[k->n_new] = k->lens[i];
        k->new_local[k->n_new++] = i;
    }
    return 0;
}

/* Worker, on a retry: the ids this import adds must still be absent (else
 * the order of the file would change: -EBUSY); then every new key moves
 * up to follow the new largest key. */
static int keys_shift(struct import_run *r)
{
    struct import_keys *k = &r->keys;
    uint32_t *now = malloc(sizeof *now * ((size_t)k->n_new + 1));
    uint32_t max_now = 0;
    if (!now)
        return -ENOMEM;
    int rc = keys_lookup(r, k->new_ids, k->new_lens, k->n_new, now, &max_now);
    for (uint32_t i = 0; rc == 0 && i < k->n_new; i++) {
        if (now[i]) {
            char x[88];
            import_error_item(&r->err, 1, k->new_ids[i], k->new_lens[i]);
            snprintf(r->err.message, sizeof r->err.message,
                     "item \"%s\" was created by another request while this import was "
                     "being stored; send the import again",
                     import_short_id(x, sizeof x, k->new_ids[i], k->new_lens[i]));
            rc = -EBUSY;
        }
    }
    free(now);
    if (rc != 0)
        return rc;
    if ((uint64_t)max_now + k->n_new > UINT32_MAX)
        return -EOVERFLOW;
    for (uint32_t i = 0; i < k->n_new; i++)
        k->keys[k->new_local[i]] = max_now + 1 + i;
    k->max_key = max_now;
    return 0;
}

static void finish(struct import_run *r, int rc)
{
    r->rc = rc;
    if (rc != 0 && r->remove_file)
        r->remove_file(r);
    r->finished(r);
}

static void submit(struct import_run *r);

static void work_prepare(uv_work_t *w)
{
    struct import_run *r = RUN_OF(w);
    r->rc = r->prepare(r);
}

static void work_retry(uv_work_t *w)
{
    struct import_run *r = RUN_OF(w);
    int rc = keys_shift(r);
    if (rc == 0)
        rc = r->rewrite(r);
    r->rc = rc;
}

static void after_work(uv_work_t *w, int status)
{
    struct import_run *r = RUN_OF(w);
    int rc = status < 0 ? status : r->rc;
    if (rc == 0 && r->attempts == 1)
        rc = r->record(r);
    if (rc != 0) {
        finish(r, rc);
        return;
    }
    submit(r);
}

static int write_fn(struct store *s, void *arg)
{
    struct import_run *r = arg;
    return store_items_import(s, r->keys.max_key, r->keys.new_ids, r->keys.new_lens, r->keys.n_new,
                              r->insert, r);
}

static void write_done(void *arg, int rc)
{
    struct import_run *r = arg;
    if (rc == -EAGAIN && r->attempts < IMPORT_ATTEMPTS) {
        log_info("import: items were added meanwhile; shifting the new keys (attempt %d)",
                 r->attempts + 1);
        r->attempts++;
        if (uv_queue_work(r->app->loop, &r->work, work_retry, after_work) != 0)
            finish(r, -EIO);
        return;
    }
    if (rc == -EAGAIN) {
        snprintf(r->err.message, sizeof r->err.message,
                 "items kept being added while the import was stored; send it again");
        rc = -EBUSY;
    } else if (rc != 0 && !r->err.message[0]) {
        snprintf(r->err.message, sizeof r->err.message, "the import was not stored: %s",
                 strerror(-rc));
    }
    finish(r, rc);
}

static void submit(struct import_run *r)
{
    writer_submit(r->app->writer, &r->op, write_fn, write_done, r);
}

void import_run_start(struct import_run *r)
{
    ASSERT_LOOP_THREAD();
    snprintf(r->state_dir, sizeof r->state_dir, "%s", r->app->cfg.state_dir);
    r->attempts = 1;
    r->rc = 0;
    if (uv_queue_work(r->app->loop, &r->work, work_prepare, after_work) != 0)
        finish(r, -EIO);
}
