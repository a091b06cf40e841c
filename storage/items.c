/*
 * Item reads: GET /v1/items/{id} (with its playlist count) and the bulk
 * load of all item ids/titles/artists by key that jobs and the model
 * loader use to label results. Item writes happen in commit.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_internal.h"

static char *items_strdup(const unsigned char *s)
{
    return s ? strdup((const char *)s) : NULL;
}

int store__item_fill(sqlite3_stmt *st, struct store_item *it)
{
    it->key = sqlite3_column_int64(st, 0);
    it->id = items_strdup(sqlite3_column_text(st, 1));
    it->title = items_strdup(sqlite3_column_text(st, 2));
    it->artist = items_strdup(sqlite3_column_text(st, 3));
    it->playlists = sqlite3_column_int64(st, 4);
    if (!it->id || (!it->title && sqlite3_column_type(st, 2) != SQLITE_NULL) ||
        (!it->artist && sqlite3_column_type(st, 3) != SQLITE_NULL))
        return -ENOMEM;
    return 0;
}

int store_item_get(struct store *s, const char *id, struct store_item *out)
{
    sqlite3_stmt *st;
    int rc, ret;

    if (!s || !id || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    st = store__stmt(s, STORE__ITEM_GET_BY_ID);
    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ret = store__item_fill(st, out);
    else if (rc == SQLITE_DONE)
        ret = -ENOENT;
    else
        ret = store__error(s, rc);
    sqlite3_reset(st);
    if (ret < 0)
        store_item_deinit(out);
    return ret;
}

void store_item_deinit(struct store_item *it)
{
    if (!it)
        return;
    free(it->id);
    free(it->title);
    free(it->artist);
    memset(it, 0, sizeof *it);
}

/* Appends s (+NUL) to the growing block; returns its offset + 1 (0 = NULL)
 * in *off. Offsets, not pointers, because the block moves while growing. */
static int items_block_append(char **block, size_t *used, size_t *cap, const unsigned char *s,
                              int len, uintptr_t *off)
{
    size_t need;

    if (!s) {
        *off = 0;
        return 0;
    }
    need = *used + (size_t)len + 1;
    if (need > *cap) {
        size_t cap2 = *cap ? *cap : 1 << 16;
        char *p;
        while (cap2 < need)
            cap2 *= 2;
        p = realloc(*block, cap2);
        if (!p)
            return -ENOMEM;
        *block = p;
        *cap = cap2;
    }
    memcpy(*block + *used, s, (size_t)len);
    (*block)[*used + (size_t)len] = '\0';
    *off = *used + 1;
    *used = need;
    return 0;
}

int store_item_names_load(struct store *s, struct store_item_names *out)
{
    sqlite3_stmt *st = NULL;
    sqlite3_int64 max_key;
    size_t used = 0, cap = 0, n;
    int rc, ret;

    if (!s || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    ret = store__begin_read(s);
    if (ret < 0)
        return ret;
    ret = store__max_item_key(s, &max_key);
    if (ret < 0)
        goto fail;
    if (max_key < 0 || max_key > (sqlite3_int64)UINT32_MAX - 1) {
        ret = -EOVERFLOW;
        goto fail;
    }
    n = (size_t)max_key + 1;
    out->max_key = (uint32_t)max_key;
    out->id = calloc(n, sizeof *out->id);
    out->title = calloc(n, sizeof *out->title);
    out->artist = calloc(n, sizeof *out->artist);
    if (!out->id || !out->title || !out->artist) {
        ret = -ENOMEM;
        goto fail;
    }
    st = store__stmt(s, STORE__ITEM_NAMES);
    if (!st) {
        ret = -EIO;
        goto fail;
    }
    /* Pointers hold offset+1 into out->strings until the block is final. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 key = sqlite3_column_int64(st, 0);
        uintptr_t o[3];
        if (key < 1 || key > max_key) {
            ret = -EIO;
            break;
        }
        for (int c = 0; c < 3 && ret == 0; c++)
            ret = items_block_append(&out->strings, &used, &cap, sqlite3_column_text(st, c + 1),
                                     sqlite3_column_bytes(st, c + 1), &o[c]);
        if (ret < 0)
            break;
        out->id[key] = (char *)o[0];
        out->title[key] = (char *)o[1];
        out->artist[key] = (char *)o[2];
    }
    sqlite3_reset(st);
    if (ret == 0 && rc != SQLITE_DONE)
        ret = store__error(s, rc);
    if (ret < 0) {
        /* Entries are offsets, not pointers: drop them before freeing. */
        memset(out->id, 0, n * sizeof *out->id);
        memset(out->title, 0, n * sizeof *out->title);
        memset(out->artist, 0, n * sizeof *out->artist);
        goto fail;
    }
    for (size_t k = 0; k < n; k++) {
        char **cols[3] = {&out->id[k], &out->title[k], &out->artist[k]};
        for (int c = 0; c < 3; c++)
            if (*cols[c])
                *cols[c] = out->strings + ((uintptr_t)*cols[c] - 1);
    }
    ret = store__commit(s);
    if (ret < 0)
        goto fail;
    return 0;

fail:
    store__rollback(s);
    store_item_names_deinit(out);
    return ret;
}

void store_item_names_deinit(struct store_item_names *n)
{
    if (!n)
        return;
    free(n->id);
    free(n->title);
    free(n->artist);
    free(n->strings);
    memset(n, 0, sizeof *n);
}
