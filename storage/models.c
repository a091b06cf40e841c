/*
 * Model records (see models.h).
 */
#include "storage/models.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_internal.h"

static int step_done(struct store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store__error(s, rc);
}

int store_model_insert(struct store *s, const struct store_model *m, int activate)
{
    sqlite3_stmt *st;
    int rc;
    if (activate) {
        if (!(st = store__stmt(s, STORE__MODEL_DEACTIVATE_ALL)))
            return -EIO;
        if ((rc = step_done(s, st)) != 0)
            return rc;
    }
    if (!(st = store__stmt(s, STORE__MODEL_INSERT)))
        return -EIO;
    sqlite3_bind_int64(st, 1, m->seq);
    store__bind_text(st, 2, m->id);
    store__bind_text(st, 3, m->job);
    store__bind_text(st, 4, m->pmi_job);
    sqlite3_bind_int64(st, 5, m->created_ms);
    sqlite3_bind_int64(st, 6, m->dimensions);
    sqlite3_bind_int64(st, 7, m->items);
    store__bind_text(st, 8, m->params);
    store__bind_text(st, 9, m->loss);
    store__bind_text(st, 10, m->file);
    sqlite3_bind_int64(st, 11, m->crc);
    sqlite3_bind_int(st, 12, activate ? 1 : 0);
    return step_done(s, st);
}

/* Column order shared by every SELECT of models. */
static void row_read(sqlite3_stmt *st, struct store_model *m)
{
    m->seq = sqlite3_column_int64(st, 0);
    m->id = store__column_dup(st, 1);
    m->job = store__column_dup(st, 2);
    m->pmi_job = store__column_dup(st, 3);
    m->created_ms = sqlite3_column_int64(st, 4);
    m->dimensions = sqlite3_column_int64(st, 5);
    m->items = sqlite3_column_int64(st, 6);
    m->params = store__column_dup(st, 7);
    m->loss = store__column_dup(st, 8);
    m->file = store__column_dup(st, 9);
    m->crc = sqlite3_column_int64(st, 10);
    m->active = sqlite3_column_int(st, 11);
}

void store_model_deinit(struct store_model *m)
{
    free(m->id);
    free(m->job);
    free(m->pmi_job);
    free(m->params);
    free(m->loss);
    free(m->file);
    memset(m, 0, sizeof *m);
}

static int get_one(struct store *s, sqlite3_stmt *st, struct store_model *out)
{
    memset(out, 0, sizeof *out);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        row_read(st, out);
        sqlite3_reset(st);
        return out->id ? 0 : -ENOMEM;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? -ENOENT : store__error(s, rc);
}

int store_model_get(struct store *s, const char *id, struct store_model *out)
{
    sqlite3_stmt *st = store__stmt(s, STORE__MODEL_GET);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return get_one(s, st, out);
}

int store_model_active(struct store *s, struct store_model *out)
{
    sqlite3_stmt *st = store__stmt(s, STORE__MODEL_ACTIVE);
    if (!st)
        return -EIO;
    return get_one(s, st, out);
}

int store_models_list(struct store *s, int64_t before_seq, int limit, store_model_cb cb,
                      void *userdata)
{
    sqlite3_stmt *st = store__stmt(s, STORE__MODEL_LIST);
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, before_seq > 0 ? before_seq : INT64_MAX);
    sqlite3_bind_int(st, 2, limit);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_model m;
        row_read(st, &m);
        ret = cb(userdata, &m);
        store_model_deinit(&m);
        if (ret)
            break;
    }
    sqlite3_reset(st);
    if (ret)
        return ret;
    return rc == SQLITE_DONE ? 0 : store__error(s, rc);
}

int store_model_activate(struct store *s, const char *id)
{
    int rc = store__begin_write(s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = store__stmt(s, STORE__MODEL_DEACTIVATE_ALL);
    if (!st || (rc = step_done(s, st)) != 0)
        goto fail;
    st = store__stmt(s, STORE__MODEL_SET_ACTIVE);
    if (!st) {
        rc = -EIO;
        goto fail;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if ((rc = step_done(s, st)) != 0)
        goto fail;
    if (sqlite3_changes(s->db) != 1) {
        rc = -ENOENT;
        goto fail;
    }
    return store__commit(s);
fail:
    store__rollback(s);
    return rc ? rc : -EIO;
}

int store_model_delete(struct store *s, const char *id)
{
    struct store_model m;
    int rc = store_model_get(s, id, &m);
    if (rc != 0)
        return rc;
    int active = m.active;
    store_model_deinit(&m);
    if (active)
        return -EBUSY;
    sqlite3_stmt *st = store__stmt(s, STORE__MODEL_DELETE);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return step_done(s, st);
}
