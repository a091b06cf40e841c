/*
 * The read side for jobs: every playlist's item keys as CSR groups, read in
 * one read transaction so that a job sees one consistent state of the data
 * while uploads keep committing (WAL readers see the snapshot of their
 * first read).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_internal.h"

int store_groups_load(struct store *s, struct store_groups *out)
{
    sqlite3_stmt *st;
    struct store_counts c;
    size_t cap_groups, cap_items, g = 0, used = 0;
    sqlite3_int64 max_key;
    int rc, ret;

    if (!s || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    ret = store__begin_read(s);
    if (ret < 0)
        return ret;
    /* Counters and max key of the same snapshot size the arrays exactly. */
    ret = store_counts_get(s, &c);
    if (ret < 0)
        goto fail;
    st = store__stmt(s, STORE__ITEM_MAX_KEY);
    if (!st) {
        ret = -EIO;
        goto fail;
    }
    rc = sqlite3_step(st);
    max_key = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        ret = store__error(s, rc);
        goto fail;
    }
    if (max_key < 0 || max_key > (sqlite3_int64)UINT32_MAX || c.playlists < 0 ||
        c.memberships < 0) {
        ret = -EIO;
        goto fail;
    }
    out->max_item_key = (uint32_t)max_key;
    cap_groups = (size_t)c.playlists;
    cap_items = (size_t)c.memberships;
    out->offsets = malloc((cap_groups + 1) * sizeof *out->offsets);
    out->items = malloc((cap_items ? cap_items : 1) * sizeof *out->items);
    if (!out->offsets || !out->items) {
        ret = -ENOMEM;
        goto fail;
    }
    out->offsets[0] = 0;
    st = store__stmt(s, STORE__PL_ALL_ITEMS);
    if (!st) {
        ret = -EIO;
        goto fail;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 n = sqlite3_column_int64(st, 0);
        const void *blob = sqlite3_column_blob(st, 1);
        int bytes = sqlite3_column_bytes(st, 1);
        /* The counters are maintained in the same transactions as the rows;
         * a mismatch means a damaged file, not a race. */
        if (n <= 0 || (sqlite3_int64)bytes != 4 * n || g >= cap_groups ||
            (size_t)n > cap_items - used) {
            snprintf(s->errmsg, sizeof s->errmsg,
                     "playlists do not match the counters; run an integrity check");
            ret = -EIO;
            break;
        }
        store__keys_decode(out->items + used, blob, (size_t)n);
        used += (size_t)n;
        out->offsets[++g] = used;
    }
    sqlite3_reset(st);
    if (ret == 0 && rc != SQLITE_DONE)
        ret = store__error(s, rc);
    if (ret < 0)
        goto fail;
    out->n_groups = g;
    ret = store__commit(s);
    if (ret < 0)
        goto fail;
    return 0;

fail:
    store__rollback(s);
    store_groups_free(out);
    return ret;
}

void store_groups_free(struct store_groups *g)
{
    if (!g)
        return;
    free(g->offsets);
    free(g->items);
    memset(g, 0, sizeof *g);
}
