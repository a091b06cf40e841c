/*
 * Playlist reads and deletes: GET /v1/playlists/{id} (one page of items by
 * item key, read from the blob with SQLite's incremental blob I/O so a page
 * costs the same in a 1 M-item playlist as in a small one), GET
 * /v1/playlists (key-ordered pages) and DELETE /v1/playlists/{id}, and the
 * by-id lookup of a playlist's key and items that delete shares with the
 * commit (store__playlist_read). Writes of memberships are in commit.c,
 * item reads in items.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
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

/* Index of the first of the n keys in the blob greater than after (n when
 * none): a binary search reading 4 bytes per probe, so a page deep into a
 * big playlist costs ~log2(n) small reads, not the blob. */
static int blob_lower_bound(struct store *s, sqlite3_blob *b, size_t n, int64_t after,
                            size_t *out)
{
    size_t lo = 0, hi = n;
    if (after <= 0) {
        *out = 0;
        return 0;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        unsigned char raw[4];
        uint32_t k;
        int rc = sqlite3_blob_read(b, raw, 4, (int)(mid * 4));
        if (rc != SQLITE_OK)
            return store__error(s, rc);
        store__keys_decode(&k, raw, 1);
        if ((int64_t)k <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    *out = lo;
    return 0;
}

/* Reads keys [first, first + count) of playlist row key's blob into a new
 * array (*keys, NULL when count is 0) after checking the blob against
 * n_items; *first is found from after (the page start). */
static int page_keys(struct store *s, int64_t key, size_t n, int64_t after, size_t limit,
                     uint32_t **keys, size_t *count, size_t *first)
{
    sqlite3_blob *b = NULL;
    void *raw = NULL;
    int ret = 0;
    *keys = NULL;
    *count = 0;
    *first = 0;
    if (n == 0)
        return 0;
    int rc = sqlite3_blob_open(s->db, "main", "playlists", "items", key, 0, &b);
    if (rc != SQLITE_OK) {
        ret = store__error(s, rc);
        goto out;
    }
    if ((size_t)sqlite3_blob_bytes(b) != n * 4) {
        snprintf(s->errmsg, sizeof s->errmsg,
                 "malformed playlist row: n_items %zu, blob of %d bytes", n,
                 sqlite3_blob_bytes(b));
        ret = -EIO;
        goto out;
    }
    if ((ret = blob_lower_bound(s, b, n, after, first)) < 0)
        goto out;
    size_t c = n - *first < limit ? n - *first : limit;
    if (c == 0)
        goto out;
    raw = malloc(c * 4);
    *keys = malloc(c * sizeof **keys);
    if (!raw || !*keys) {
        ret = -ENOMEM;
        goto out;
    }
    rc = sqlite3_blob_read(b, raw, (int)(c * 4), (int)(*first * 4));
    if (rc != SQLITE_OK) {
        ret = store__error(s, rc);
        goto out;
    }
    store__keys_decode(*keys, raw, c);
    *count = c;
out:
    if (ret < 0) {
        free(*keys);
        *keys = NULL;
    }
    free(raw);
    sqlite3_blob_close(b); /* a NULL handle is a no-op */
    return ret;
}

/* Fills out->items from the item keys, one indexed lookup each. */
static int page_items(struct store *s, const uint32_t *keys, size_t n, struct store_playlist *out)
{
    sqlite3_stmt *st;
    int rc, ret = 0;
    out->items = calloc(n ? n : 1, sizeof *out->items);
    if (!out->items)
        return -ENOMEM;
    st = store__stmt(s, STORE__ITEM_GET_BY_KEY);
    if (!st)
        return -EIO;
    for (size_t i = 0; i < n && ret == 0; i++) {
        sqlite3_reset(st);
        rc = sqlite3_bind_int64(st, 1, keys[i]);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            ret = rc == SQLITE_DONE ? -EIO : store__error(s, rc);
            break;
        }
        out->n_items = i + 1; /* so that clear frees a partial fill */
        ret = store__item_fill(st, &out->items[i]);
    }
    sqlite3_reset(st);
    return ret;
}

int store_playlist_page(struct store *s, const char *id, int64_t after_key, size_t limit,
                        struct store_playlist *out)
{
    sqlite3_stmt *st;
    uint32_t *keys = NULL;
    size_t count = 0, first = 0;
    int rc, ret;

    if (!s || !id || !out || limit == 0)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    /* One read transaction: the items read below match the blob. */
    ret = store__begin_read(s);
    if (ret < 0)
        return ret;
    st = store__stmt(s, STORE__PL_SIZE_BY_ID);
    if (!st) {
        ret = -EIO;
        goto fail;
    }
    rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = rc == SQLITE_DONE ? -ENOENT : store__error(s, rc);
        sqlite3_reset(st);
        goto fail;
    }
    out->key = sqlite3_column_int64(st, 0);
    sqlite3_int64 n = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    if (n < 0) {
        snprintf(s->errmsg, sizeof s->errmsg, "malformed playlist row: n_items %lld",
                 (long long)n);
        ret = -EIO;
        goto fail;
    }
    out->total = (size_t)n;
    if (!(out->id = strdup(id))) {
        ret = -ENOMEM;
        goto fail;
    }
    if ((ret = page_keys(s, out->key, (size_t)n, after_key, limit, &keys, &count, &first)) < 0 ||
        (ret = page_items(s, keys, count, out)) < 0)
        goto fail;
    out->n_items = count;
    out->next_after = first + count < (size_t)n ? (int64_t)keys[count - 1] : 0;
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

int store_playlist_get(struct store *s, const char *id, struct store_playlist *out)
{
    return store_playlist_page(s, id, 0, SIZE_MAX, out);
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
