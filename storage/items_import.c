/*
 * Item keys for imports (see items_import.h). New items go in with the
 * multi-row INSERT the upload commit uses (STORE__INSERT_ROWS a statement).
 */
#include "storage/items_import.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/store_internal.h"

int store_items_lookup(struct store *s, const char *const *ids, const uint32_t *lens, uint32_t n,
                       uint32_t *keys, uint32_t *max_key)
{
    sqlite3_int64 mk = 0;
    int rc = store__begin_read(s);
    if (rc != 0)
        return rc;
    if ((rc = store__max_item_key(s, &mk)) != 0)
        goto out;
    if (mk > (sqlite3_int64)UINT32_MAX) {
        rc = -EOVERFLOW;
        goto out;
    }
    *max_key = (uint32_t)mk;
    sqlite3_stmt *st = store__stmt(s, STORE__ITEM_KEY_BY_ID);
    if (!st) {
        rc = -EIO;
        goto out;
    }
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        sqlite3_bind_text(st, 1, ids[i], (int)lens[i], SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            keys[i] = (uint32_t)sqlite3_column_int64(st, 0);
        else if (r == SQLITE_DONE)
            keys[i] = 0;
        else
            rc = store__error(s, r);
        sqlite3_reset(st);
    }
out:
    store__rollback(s); /* ends the read transaction */
    return rc;
}

/* Inserts ids[from .. from+count) with keys first + (from ..): one
 * multi-row statement when count is STORE__INSERT_ROWS, else row by row. */
static int insert_rows(struct store *s, const char *const *ids, const uint32_t *lens, uint32_t from,
                       uint32_t count, sqlite3_int64 first)
{
    int full = count == STORE__INSERT_ROWS;
    sqlite3_stmt *st = store__stmt(s, full ? STORE__ITEM_INSERT_ROWS : STORE__ITEM_INSERT_NEW);
    if (!st)
        return -EIO;
    for (uint32_t r = 0; r < count; r++) {
        int col = full ? 5 * (int)r + 1 : 1;
        uint32_t i = from + r;
        sqlite3_bind_int64(st, col, first + i);
        sqlite3_bind_text(st, col + 1, ids[i], (int)lens[i], SQLITE_STATIC);
        sqlite3_bind_null(st, col + 2);
        sqlite3_bind_null(st, col + 3);
        sqlite3_bind_int64(st, col + 4, 0);
        if (!full || r == count - 1) {
            int rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE)
                return store__error(s, rc);
        }
    }
    return 0;
}

int store_items_import(struct store *s, uint32_t expect_max, const char *const *ids,
                       const uint32_t *lens, uint32_t n_new,
                       int (*then)(struct store *s, void *arg), void *arg)
{
    sqlite3_int64 mk = 0;
    int rc = store__begin_write(s);
    if (rc != 0)
        return rc;
    if ((rc = store__max_item_key(s, &mk)) != 0)
        goto fail;
    if (mk != (sqlite3_int64)expect_max) {
        rc = -EAGAIN;
        goto fail;
    }
    if ((uint64_t)expect_max + n_new > UINT32_MAX) {
        snprintf(s->errmsg, sizeof s->errmsg, "item key %llu out of range",
                 (unsigned long long)expect_max + n_new);
        rc = -EOVERFLOW;
        goto fail;
    }
    uint32_t done = 0;
    while (done < n_new) {
        uint32_t count = n_new - done >= STORE__INSERT_ROWS ? STORE__INSERT_ROWS : 1;
        if ((rc = insert_rows(s, ids, lens, done, count, (sqlite3_int64)expect_max + 1)) != 0)
            goto fail;
        done += count;
    }
    if (n_new) {
        sqlite3_stmt *st = store__stmt(s, STORE__COUNTERS_ADD);
        if (!st) {
            rc = -EIO;
            goto fail;
        }
        sqlite3_bind_int64(st, 1, 0);
        sqlite3_bind_int64(st, 2, n_new);
        sqlite3_bind_int64(st, 3, 0);
        int r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE) {
            rc = store__error(s, r);
            goto fail;
        }
    }
    if (then && (rc = then(s, arg)) != 0)
        goto fail;
    return store__commit(s);
fail:
    store__rollback(s);
    return rc;
}
