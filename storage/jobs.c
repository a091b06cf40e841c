/*
 * Job records (schema v2, see jobs.h and migrate.c): plain rows with JSON
 * text columns, written only by the writer and read by the loop thread.
 */
#include "storage/jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_internal.h"

/* Columns 3..11 of insert/update share one binding order. */
static void bind_mutable(sqlite3_stmt *st, const struct store_job *j)
{
    store__bind_text(st, 3, j->state);
    store__bind_text(st, 4, j->progress);
    store__bind_text(st, 5, j->result);
    store__bind_text(st, 6, j->error);
    sqlite3_bind_int64(st, 7, j->started_ms);
    sqlite3_bind_int64(st, 8, j->finished_ms);
    sqlite3_bind_int64(st, 9, j->attempts);
}

int store_job_insert(struct store *s, const struct store_job *j)
{
    sqlite3_stmt *st = store__stmt(s, STORE__JOB_INSERT);
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, j->seq);
    store__bind_text(st, 2, j->id);
    bind_mutable(st, j);
    store__bind_text(st, 10, j->type);
    store__bind_text(st, 11, j->params);
    sqlite3_bind_int64(st, 12, j->created_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store__error(s, rc);
}

int store_job_update(struct store *s, const struct store_job *j)
{
    sqlite3_stmt *st = store__stmt(s, STORE__JOB_UPDATE);
    if (!st)
        return -EIO;
    store__bind_text(st, 2, j->id);
    bind_mutable(st, j);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store__error(s, rc);
    return sqlite3_changes(s->db) == 1 ? 0 : -ENOENT;
}

int store_job_update_with(struct store *s, const struct store_job *j,
                          int (*extra)(struct store *s, void *arg), void *arg)
{
    int rc = store__begin_write(s);
    if (rc != 0)
        return rc;
    if ((rc = extra(s, arg)) != 0 || (rc = store_job_update(s, j)) != 0) {
        store__rollback(s);
        return rc;
    }
    return store__commit(s);
}

/* Column order of STORE__JOB_GET and STORE__JOB_LIST. */
static void row_read(sqlite3_stmt *st, struct store_job *j)
{
    j->seq = sqlite3_column_int64(st, 0);
    j->id = store__column_dup(st, 1);
    j->type = store__column_dup(st, 2);
    j->state = store__column_dup(st, 3);
    j->params = store__column_dup(st, 4);
    j->progress = store__column_dup(st, 5);
    j->result = store__column_dup(st, 6);
    j->error = store__column_dup(st, 7);
    j->created_ms = sqlite3_column_int64(st, 8);
    j->started_ms = sqlite3_column_int64(st, 9);
    j->finished_ms = sqlite3_column_int64(st, 10);
    j->attempts = sqlite3_column_int64(st, 11);
}

void store_job_deinit(struct store_job *j)
{
    free(j->id);
    free(j->type);
    free(j->state);
    free(j->params);
    free(j->progress);
    free(j->result);
    free(j->error);
    memset(j, 0, sizeof *j);
}

int store_job_get(struct store *s, const char *id, struct store_job *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store__stmt(s, STORE__JOB_GET);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        row_read(st, out);
        sqlite3_reset(st);
        return out->id ? 0 : -ENOMEM;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? -ENOENT : store__error(s, rc);
}

int store_jobs_list(struct store *s, const char *state, const char *type, int64_t before_seq,
                    int limit, store_job_cb cb, void *userdata)
{
    sqlite3_stmt *st = store__stmt(s, STORE__JOB_LIST);
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, before_seq > 0 ? before_seq : INT64_MAX);
    store__bind_text(st, 2, state);
    store__bind_text(st, 3, type);
    sqlite3_bind_int(st, 4, limit);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_job j;
        row_read(st, &j);
        ret = cb(userdata, &j);
        store_job_deinit(&j);
        if (ret)
            break;
    }
    sqlite3_reset(st);
    if (ret)
        return ret;
    return rc == SQLITE_DONE ? 0 : store__error(s, rc);
}

/* Runs a one-row, one-column query and copies the value. */
static int scalar(struct store *s, sqlite3_stmt *st, int64_t *num, char *text, size_t size)
{
    int rc = sqlite3_step(st);
    int ret = -ENOENT;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        if (num)
            *num = sqlite3_column_int64(st, 0);
        if (text)
            snprintf(text, size, "%s", (const char *)sqlite3_column_text(st, 0));
        ret = 0;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = store__error(s, rc);
    }
    sqlite3_reset(st);
    return ret;
}

int store_jobs_max_seq(struct store *s, int64_t *out)
{
    sqlite3_stmt *st = store__stmt(s, STORE__JOB_MAX_SEQ);
    if (!st)
        return -EIO;
    *out = 0;
    int rc = scalar(s, st, out, NULL, 0);
    return rc == -ENOENT ? 0 : rc;
}

int store_job_latest(struct store *s, const char *type, const char *state, char *id, size_t size)
{
    sqlite3_stmt *st = store__stmt(s, STORE__JOB_LATEST);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    return scalar(s, st, NULL, id, size);
}

int store_job_latest_with(struct store *s, const char *type, const char *state, const char *key,
                          char *id, size_t size)
{
    char path[64];
    for (const char *c = key; *c; c++)
        if (!(*c == '_' || (*c >= 'a' && *c <= 'z')))
            return -EINVAL; /* a JSON path must not be built from anything else */
    if (!*key || snprintf(path, sizeof path, "$.%s", key) >= (int)sizeof path)
        return -EINVAL;
    /* rare (source=auto without a cached choice): prepared per call */
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT id FROM jobs WHERE type = ?1 AND state = ?2 AND "
                                "json_extract(result, ?3) IS NOT NULL ORDER BY seq DESC LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__error(s, rc);
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
    int ret = scalar(s, st, NULL, id, size);
    sqlite3_finalize(st);
    return ret;
}

int store_job_delete(struct store *s, const char *id)
{
    sqlite3_stmt *st = store__stmt(s, STORE__JOB_DELETE);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store__error(s, rc);
    return sqlite3_changes(s->db) == 1 ? 0 : -ENOENT;
}

int store_jobs_count(struct store *s, store_job_count_cb cb, void *userdata)
{
    /* rare (metrics scrapes): prepared per call rather than cached */
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        s->db, "SELECT type, state, count(*) FROM jobs GROUP BY type, state", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__error(s, rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(userdata, (const char *)sqlite3_column_text(st, 0),
           (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store__error(s, rc);
}
