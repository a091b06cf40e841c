/*
 * Playlist reads and deletes: GET /v1/playlists/{id}, GET /v1/playlists
 * (key-ordered pages) and DELETE /v1/playlists/{id}, and the by-id lookup
 * of a playlist's key and items they share with the commit
 * (store__playlist_read). Writes of memberships are in commit.c, item
 * reads in items.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_internal.h"

int store__playlist_read(struct store *s, const char *id, int id_len, sqlite3_int64 *key,
                         uint32_t **keys, size_t *n)
{
    sqlite3_stmt *st = store__stmt(s, STORE__PL_GET_BY_ID);
    int rc, ret;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, id, id_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *key = sqlite3_column_int64(st, 0);
        ret = store__blob_keys(s, st, 1, 2, keys, n);
    } else {
        ret = rc == SQLITE_DONE ? -ENOENT : store__error(s, rc);
    }
    sqlite3_reset(st);
    return ret;
}

int store_playlist_get(struct store *s, const char *id, struct store_playlist *out)
{
    sqlite3_stmt *st;
    sqlite3_int64 key;
    uint32_t *keys = NULL;
    size_t n = 0;
    int rc, ret;

    if (!s || !id || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    /* One read transaction: the items read below match the blob. */
    ret = store__begin_read(s);
    if (ret < 0)
        return ret;
    ret = store__playlist_read(s, id, -1, &key, &keys, &n);
    if (ret < 0)
        goto fail;
    out->key = key;
    out->id = strdup(id);
    out->items = calloc(n ? n : 1, sizeof *out->items);
    if (!out->id || !out->items) {
        ret = -ENOMEM;
        goto fail;
    }
    st = store__stmt(s, STORE__ITEM_GET_BY_KEY);
    if (!st) {
        ret = -EIO;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        rc = sqlite3_bind_int64(st, 1, keys[i]);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            ret = rc == SQLITE_DONE ? -EIO : store__error(s, rc);
            sqlite3_reset(st);
            goto fail;
        }
        out->n_items = i + 1; /* so that clear frees a partial fill */
        ret = store__item_fill(st, &out->items[i]);
        if (ret < 0) {
            sqlite3_reset(st);
            goto fail;
        }
    }
    sqlite3_reset(st);
    out->n_items = n;
    free(keys);
    ret = store__commit(s);
    if (ret < 0) {
        store_playlist_deinit(out);
        store__rollback(s);
    }
    return ret;

fail:
    free(keys);
    store_playlist_deinit(out);
    store__rollback(s);
    return ret;
}

void store_playlist_deinit(struct store_playlist *pl)
{
    if (!pl)
        return;
    for (size_t i = 0; i < pl->n_items; i++)
        store_item_deinit(&pl->items[i]);
    free(pl->items);
    free(pl->id);
    memset(pl, 0, sizeof *pl);
}

int store_playlist_delete(struct store *s, const char *id)
{
    sqlite3_stmt *st;
    uint32_t *keys = NULL;
    size_t n = 0;
    sqlite3_int64 key;
    int rc, ret;

    if (!s || !id)
        return -EINVAL;
    ret = store__begin_write(s);
    if (ret < 0)
        return ret;
    ret = store__playlist_read(s, id, -1, &key, &keys, &n);
    if (ret < 0)
        goto fail;

    st = store__stmt(s, STORE__ITEM_ADD_PLAYLISTS);
    if (!st) {
        ret = -EIO;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        rc = sqlite3_bind_int64(st, 1, keys[i]);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 2, -1);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            ret = store__error(s, rc);
            sqlite3_reset(st);
            goto fail;
        }
    }
    sqlite3_reset(st);

    st = store__stmt(s, STORE__PL_DELETE);
    if (!st) {
        ret = -EIO;
        goto fail;
    }
    rc = sqlite3_bind_int64(st, 1, key);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        ret = store__error(s, rc);
        goto fail;
    }

    st = store__stmt(s, STORE__COUNTERS_ADD);
    if (!st) {
        ret = -EIO;
        goto fail;
    }
    rc = sqlite3_bind_int64(st, 1, -1);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, -(sqlite3_int64)n);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        ret = store__error(s, rc);
        goto fail;
    }
    ret = store__commit(s);
    if (ret < 0)
        goto fail;
    free(keys);
    return 0;

fail:
    free(keys);
    store__rollback(s);
    return ret;
}

int store_playlists_list(struct store *s, int64_t after_key, int limit,
                         store_playlist_list_cb cb, void *userdata)
{
    sqlite3_stmt *st;
    int rc, ret = 0;

    if (!s || !cb || limit < 0)
        return -EINVAL;
    st = store__stmt(s, STORE__PL_LIST);
    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, after_key);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 2, limit);
    if (rc != SQLITE_OK) {
        ret = store__error(s, rc);
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ret = cb(userdata, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
                 sqlite3_column_int64(st, 2));
        if (ret != 0)
            goto out;
    }
    if (rc != SQLITE_DONE)
        ret = store__error(s, rc);
out:
    sqlite3_reset(st);
    return ret;
}
