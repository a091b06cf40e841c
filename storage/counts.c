/*
 * Totals: the O(1) counters row (kept up to date by every write, in the
 * same transaction) and a full recount that checks it and every other
 * invariant the writes maintain (store_integrity_check); and the largest
 * item key, which sizes the arrays of snapshots and name tables.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_internal.h"

int store_counts_get(struct store *s, struct store_counts *out)
{
    sqlite3_stmt *st;
    int rc, ret = 0;

    if (!s || !out)
        return -EINVAL;
    st = store__stmt(s, STORE__COUNTERS_GET);
    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->playlists = sqlite3_column_int64(st, 0);
        out->items = sqlite3_column_int64(st, 1);
        out->memberships = sqlite3_column_int64(st, 2);
    } else {
        ret = rc == SQLITE_DONE ? -EIO : store__error(s, rc);
    }
    sqlite3_reset(st);
    return ret;
}

static int counts_bad(struct store *s, const char *what)
{
    snprintf(s->errmsg, sizeof s->errmsg, "integrity check: %s", what);
    return -EUCLEAN;
}

int store_integrity_check(struct store *s, struct store_counts *out)
{
    struct store_counts stored, real = {0, 0, 0};
    sqlite3_stmt *st;
    uint32_t *refs = NULL; /* item key -> number of playlists holding it */
    size_t n_refs = 0;
    int rc, ret;

    if (!s)
        return -EINVAL;
    ret = store__begin_read(s);
    if (ret < 0)
        return ret;
    ret = store_counts_get(s, &stored);
    if (ret < 0)
        goto out;

    /* Items: dense keys 1..n (the math relies on it). */
    st = store__stmt(s, STORE__CHECK_ITEMS);
    if (!st) {
        ret = -EIO;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        real.items++;
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        ret = store__error(s, rc);
        goto out;
    }
    refs = calloc((size_t)real.items + 1, sizeof *refs);
    if (!refs) {
        ret = -ENOMEM;
        goto out;
    }
    n_refs = (size_t)real.items + 1;

    st = store__stmt(s, STORE__CHECK_PLAYLISTS);
    if (!st) {
        ret = -EIO;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t *keys = NULL;
        size_t n = 0;
        ret = store__blob_keys(s, st, 0, 1, &keys, &n);
        if (ret < 0)
            break;
        real.playlists++;
        real.memberships += (int64_t)n;
        for (size_t i = 0; i < n && ret == 0; i++) {
            if (keys[i] < 1 || keys[i] >= n_refs)
                ret = counts_bad(s, "item key out of range in a playlist");
            else if (i > 0 && keys[i - 1] >= keys[i])
                ret = counts_bad(s, "playlist items not sorted and unique");
            else
                refs[keys[i]]++;
        }
        free(keys);
        if (ret < 0)
            break;
    }
    sqlite3_reset(st);
    if (ret < 0)
        goto out;
    if (rc != SQLITE_DONE) {
        ret = store__error(s, rc);
        goto out;
    }

    st = store__stmt(s, STORE__CHECK_ITEMS);
    if (!st) {
        ret = -EIO;
        goto out;
    }
    {
        sqlite3_int64 expect = 1;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && ret == 0) {
            sqlite3_int64 key = sqlite3_column_int64(st, 0);
            if (key != expect++)
                ret = counts_bad(s, "item keys are not dense");
            else if (sqlite3_column_int64(st, 1) != (sqlite3_int64)refs[key])
                ret = counts_bad(s, "an item's playlist count is wrong");
        }
        sqlite3_reset(st);
        if (ret < 0)
            goto out;
        if (rc != SQLITE_DONE) {
            ret = store__error(s, rc);
            goto out;
        }
    }
    if (stored.playlists != real.playlists || stored.items != real.items ||
        stored.memberships != real.memberships)
        ret = counts_bad(s, "counters differ from a recount");
    if (out)
        *out = real;
out:
    free(refs);
    if (ret == 0 || ret == -EUCLEAN) {
        int r2 = store__commit(s);
        if (r2 < 0 && ret == 0)
            ret = r2;
    }
    store__rollback(s);
    return ret;
}

int store__max_item_key(struct store *s, sqlite3_int64 *out)
{
    sqlite3_stmt *st = store__stmt(s, STORE__ITEM_MAX_KEY);
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : store__error(s, rc);
}
