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

/* A seeded 64-bit hash of a playlist id: FNV-1a, then splitmix64's
 * finaliser so nearby ids and seeds spread over the whole range. */
static uint64_t id_hash(const unsigned char *id, int len, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (int i = 0; i < len; i++) {
        h ^= id[i];
        h *= 0x100000001b3ULL;
    }
    h += 0x9e3779b97f4a7c15ULL;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

static int groups_load(struct store *s, struct store_groups *out, int hashed, uint64_t seed);

int store_groups_load(struct store *s, struct store_groups *out)
{
    return groups_load(s, out, 0, 0);
}

int store_groups_load_hashed(struct store *s, uint64_t seed, struct store_groups *out)
{
    return groups_load(s, out, 1, seed);
}

static int groups_load(struct store *s, struct store_groups *out, int hashed, uint64_t seed)
{
    sqlite3_stmt *own = NULL;
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
    ret = store__max_item_key(s, &max_key);
    if (ret < 0)
        goto fail;
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
    if (hashed)
        out->id_hash = malloc((cap_groups + 1) * sizeof *out->id_hash);
    if (!out->offsets || !out->items || (hashed && !out->id_hash)) {
        ret = -ENOMEM;
        goto fail;
    }
    out->offsets[0] = 0;
    if (hashed) {
        /* rare (evaluation jobs): prepared per call; same rows and order as
         * STORE__PL_ALL_ITEMS, plus the id */
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT n_items, items, id FROM playlists WHERE n_items > 0 "
                                "ORDER BY key",
                                -1, &own, NULL);
        if (rc != SQLITE_OK) {
            ret = store__error(s, rc);
            goto fail;
        }
        st = own;
    } else {
        st = store__stmt(s, STORE__PL_ALL_ITEMS);
    }
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
        if (hashed)
            out->id_hash[g] = id_hash(sqlite3_column_text(st, 2), sqlite3_column_bytes(st, 2), seed);
        used += (size_t)n;
        out->offsets[++g] = used;
    }
    if (own)
        sqlite3_finalize(own);
    else
        sqlite3_reset(st);
    own = NULL;
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
    if (own)
        sqlite3_finalize(own);
    store__rollback(s);
    store_groups_deinit(out);
    return ret;
}

void store_groups_deinit(struct store_groups *g)
{
    if (!g)
        return;
    free(g->offsets);
    free(g->items);
    free(g->id_hash);
    memset(g, 0, sizeof *g);
}
