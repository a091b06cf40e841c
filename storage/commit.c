/*
 * store_batch_commit: applies a batch (batch.c) to items, playlists and
 * counters in one BEGIN IMMEDIATE transaction; any error rolls it all back.
 *
 * Algorithm (rows = batch rows, P = batch playlists, I = batch items):
 *  0. Without touching the database, count for every batch item the
 *     number of distinct batch playlists naming it (npl), with a per-item
 *     "last playlist seen" stamp: O(rows).
 *  1. Upsert every batch item once: INSERT ... ON CONFLICT DO UPDATE
 *     (title/artist: coalesce, latest wins, NULL keeps) RETURNING key, and
 *     add npl to items.playlists right there. npl is the playlist-count
 *     delta when none of those memberships existed yet, which is the
 *     common case (new playlists), so no second pass over the items is
 *     needed; step 2 records the exceptions. A returned key above the
 *     max(key) read at the start is a new item.
 *  2. Per batch playlist: map indices to keys, sort, dedupe -> S. Try to
 *     insert it as a new playlist (ON CONFLICT DO NOTHING RETURNING key):
 *     one statement for a new one. Otherwise read the stored set O and
 *     write O u S (MERGE) or S (REPLACE) back if it changed; every key of
 *     S n O (MERGE) or of O (REPLACE) gets a -1 correction because step 1
 *     counted it as a new membership.
 *  3. Apply the corrections per key (sorted, summed) and add the totals to
 *     the counters row.
 *
 * Counts: rows_stored = memberships that did not exist before (|S \ O|
 * summed), rows_duplicate = rows - rows_stored, i.e. rows already stored
 * plus rows repeated inside the batch. The same definitions hold for
 * REPLACE, which also reports rows_removed = |O \ S| summed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/batch_internal.h"
#include "storage/store_internal.h"

struct commit_buf {
    uint32_t *v;
    size_t n, cap;
};

static int commit_buf_reserve(struct commit_buf *b, size_t n)
{
    if (n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        uint32_t *v;
        while (cap < n)
            cap *= 2;
        v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        b->v = v;
        b->cap = cap;
    }
    return 0;
}

static int commit_buf_push(struct commit_buf *b, uint32_t x)
{
    if (b->n == b->cap && commit_buf_reserve(b, b->n + 1) < 0)
        return -ENOMEM;
    b->v[b->n++] = x;
    return 0;
}

static int commit_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts v (short arrays are the norm: insertion sort below 24). */
static void commit_sort(uint32_t *v, size_t n)
{
    size_t i;

    for (i = 1; i < n && v[i - 1] <= v[i]; i++)
        ;
    if (i >= n)
        return; /* already sorted: keys of new items come in batch order */
    if (n > 24) {
        qsort(v, n, sizeof *v, commit_u32_cmp);
        return;
    }
    for (i = 1; i < n; i++) {
        uint32_t x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Bytes buffer for blob parameters. */
struct commit_blob {
    unsigned char *p;
    size_t cap;
};

static int commit_blob_bind(struct commit_blob *bl, sqlite3_stmt *st, int col, const uint32_t *keys,
                            size_t n)
{
    size_t bytes = n * sizeof(uint32_t);

    if (bytes > (size_t)0x7fffffff)
        return -E2BIG;
    if (bytes > bl->cap) {
        unsigned char *p = realloc(bl->p, bytes);
        if (!p)
            return -ENOMEM;
        bl->p = p;
        bl->cap = bytes;
    }
    store__keys_encode(bl->p, keys, n);
    /* A zero-length blob must still be a blob, not NULL (items NOT NULL). */
    if (n == 0)
        return sqlite3_bind_zeroblob(st, col, 0) == SQLITE_OK ? 0 : -EIO;
    return sqlite3_bind_blob(st, col, bl->p, (int)bytes, SQLITE_STATIC) == SQLITE_OK ? 0 : -EIO;
}

struct commit_state {
    struct store *s;
    const struct batch *b;
    enum store_commit_mode mode;
    uint32_t *keys;   /* batch item index -> item key */
    uint32_t *npl;    /* batch item index -> distinct batch playlists */
    struct commit_buf set, merged, corrections;
    struct commit_blob blob;
    int64_t new_items, new_playlists, memberships, stored, removed;
};

static int commit_items(struct commit_state *c)
{
    struct store *s = c->s;
    const struct batch *b = c->b;
    sqlite3_stmt *st;
    sqlite3_int64 max_before;
    int rc, ret = 0;

    st = store__stmt(s, STORE__ITEM_MAX_KEY);
    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = store__error(s, rc);
        sqlite3_reset(st);
        return ret;
    }
    max_before = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);

    st = store__stmt(s, STORE__ITEM_UPSERT);
    if (!st)
        return -EIO;
    for (uint32_t i = 0; i < b->items.n; i++) {
        sqlite3_int64 key;
        uint32_t t = b->title[i], a = b->artist[i];

        sqlite3_reset(st);
        rc = sqlite3_bind_text(st, 1, b->items.str[i], (int)b->items.len[i], SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = t ? sqlite3_bind_text(st, 2, b->texts.str[t - 1], (int)b->texts.len[t - 1],
                                       SQLITE_STATIC)
                   : sqlite3_bind_null(st, 2);
        if (rc == SQLITE_OK)
            rc = a ? sqlite3_bind_text(st, 3, b->texts.str[a - 1], (int)b->texts.len[a - 1],
                                       SQLITE_STATIC)
                   : sqlite3_bind_null(st, 3);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 4, c->npl[i]);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            ret = store__error(s, rc);
            goto out;
        }
        key = sqlite3_column_int64(st, 0);
        if (key < 1 || key > (sqlite3_int64)UINT32_MAX) {
            snprintf(s->errmsg, sizeof s->errmsg, "item key %lld out of range", (long long)key);
            ret = -EOVERFLOW;
            goto out;
        }
        c->keys[i] = (uint32_t)key;
        if (key > max_before)
            c->new_items++;
    }
out:
    sqlite3_reset(st);
    return ret;
}

/* Writes one batch playlist; S = c->set (sorted, unique). */
static int commit_playlist(struct commit_state *c, uint32_t p)
{
    struct store *s = c->s;
    const struct batch *b = c->b;
    const uint32_t *S = c->set.v;
    size_t m = c->set.n, n_old = 0, i, j;
    uint32_t *old = NULL;
    sqlite3_int64 key;
    sqlite3_stmt *st;
    int rc, ret;

    st = store__stmt(s, STORE__PL_INSERT_NEW);
    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, b->playlists.str[p], (int)b->playlists.len[p], SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)m);
    if (rc != SQLITE_OK) {
        ret = store__error(s, rc);
        goto out;
    }
    ret = commit_blob_bind(&c->blob, st, 3, S, m);
    if (ret < 0)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        /* New playlist: every member is a new membership, as step 1 assumed. */
        c->new_playlists++;
        c->memberships += (int64_t)m;
        c->stored += (int64_t)m;
        ret = 0;
        goto out;
    }
    if (rc != SQLITE_DONE) {
        ret = store__error(s, rc);
        goto out;
    }
    sqlite3_reset(st);

    /* Existing playlist: read its set. */
    st = store__stmt(s, STORE__PL_GET_BY_ID);
    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, b->playlists.str[p], (int)b->playlists.len[p], SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = rc == SQLITE_DONE ? -EIO : store__error(s, rc);
        goto out;
    }
    key = sqlite3_column_int64(st, 0);
    ret = store__blob_keys(s, st, 1, 2, &old, &n_old);
    if (ret < 0)
        goto out;
    sqlite3_reset(st);

    /* Merge walk: union into c->merged, corrections for the overlap. */
    ret = commit_buf_reserve(&c->merged, n_old + m);
    if (ret < 0)
        goto out;
    {
        uint32_t *u = c->merged.v;
        size_t nu = 0, common = 0;
        for (i = 0, j = 0; i < n_old || j < m;) {
            if (j == m || (i < n_old && old[i] < S[j])) {
                u[nu++] = old[i++];
            } else if (i == n_old || S[j] < old[i]) {
                u[nu++] = S[j++];
            } else {
                common++;
                if (c->mode == STORE_COMMIT_MERGE) {
                    ret = commit_buf_push(&c->corrections, S[j]);
                    if (ret < 0)
                        goto out;
                }
                u[nu++] = S[j++];
                i++;
            }
        }
        c->merged.n = nu;
        c->stored += (int64_t)(m - common);
        if (c->mode == STORE_COMMIT_REPLACE) {
            /* Every old member loses the +1 step 1 did not give it, or is
             * gone: -1 each (net 0 for the ones kept). */
            for (i = 0; i < n_old; i++) {
                ret = commit_buf_push(&c->corrections, old[i]);
                if (ret < 0)
                    goto out;
            }
            c->removed += (int64_t)(n_old - common);
            c->memberships += (int64_t)m - (int64_t)n_old;
            if (common == m && common == n_old) {
                ret = 0; /* same set: nothing to write */
                goto out;
            }
        } else {
            c->memberships += (int64_t)(nu - n_old);
            if (nu == n_old) {
                ret = 0; /* nothing new */
                goto out;
            }
            S = u;
            m = nu;
        }
    }

    st = store__stmt(s, STORE__PL_UPDATE);
    if (!st) {
        ret = -EIO;
        goto out;
    }
    rc = sqlite3_bind_int64(st, 1, key);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)m);
    if (rc != SQLITE_OK) {
        ret = store__error(s, rc);
        goto out;
    }
    ret = commit_blob_bind(&c->blob, st, 3, S, m);
    if (ret < 0)
        goto out;
    rc = sqlite3_step(st);
    ret = rc == SQLITE_DONE ? 0 : store__error(s, rc);
out:
    if (st)
        sqlite3_reset(st);
    free(old);
    return ret;
}

static int commit_playlists(struct commit_state *c)
{
    const struct batch *b = c->b;
    int ret;

    for (uint32_t p = 0; p < b->playlists.n; p++) {
        const struct batch__list *l = &b->lists[p];
        size_t n = 0;

        ret = commit_buf_reserve(&c->set, l->n);
        if (ret < 0)
            return ret;
        for (uint32_t r = 0; r < l->n; r++)
            c->set.v[r] = c->keys[l->idx[r]];
        commit_sort(c->set.v, l->n);
        for (uint32_t r = 0; r < l->n; r++)
            if (n == 0 || c->set.v[n - 1] != c->set.v[r])
                c->set.v[n++] = c->set.v[r];
        c->set.n = n;
        ret = commit_playlist(c, p);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* Applies the -1 corrections of step 2, one UPDATE per distinct key. */
static int commit_corrections(struct commit_state *c)
{
    struct commit_buf *k = &c->corrections;
    sqlite3_stmt *st;
    int rc, ret = 0;

    if (k->n == 0)
        return 0;
    qsort(k->v, k->n, sizeof *k->v, commit_u32_cmp);
    st = store__stmt(c->s, STORE__ITEM_ADD_PLAYLISTS);
    if (!st)
        return -EIO;
    for (size_t i = 0; i < k->n;) {
        size_t j = i;
        while (j < k->n && k->v[j] == k->v[i])
            j++;
        sqlite3_reset(st);
        rc = sqlite3_bind_int64(st, 1, k->v[i]);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 2, -(sqlite3_int64)(j - i));
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            ret = store__error(c->s, rc);
            break;
        }
        i = j;
    }
    sqlite3_reset(st);
    return ret;
}

static int commit_counters(struct commit_state *c)
{
    sqlite3_stmt *st = store__stmt(c->s, STORE__COUNTERS_ADD);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, c->new_playlists);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, c->new_items);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, c->memberships);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store__error(c->s, rc);
}

int store_batch_commit(struct store *s, const struct batch *b, enum store_commit_mode mode,
                       struct store_commit_result *out)
{
    struct commit_state c = {.s = s, .b = b, .mode = mode};
    uint32_t *stamp = NULL;
    int ret;

    if (!s || !b || (mode != STORE_COMMIT_MERGE && mode != STORE_COMMIT_REPLACE))
        return -EINVAL;
    s->errmsg[0] = '\0';
    /* Step 0 (no database): distinct batch playlists per item. */
    c.keys = malloc((b->items.n ? b->items.n : 1) * sizeof *c.keys);
    c.npl = calloc(b->items.n ? b->items.n : 1, sizeof *c.npl);
    stamp = calloc(b->items.n ? b->items.n : 1, sizeof *stamp);
    if (!c.keys || !c.npl || !stamp) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint32_t p = 0; p < b->playlists.n; p++) {
        const struct batch__list *l = &b->lists[p];
        for (uint32_t r = 0; r < l->n; r++) {
            uint32_t it = l->idx[r];
            if (stamp[it] != p + 1) {
                stamp[it] = p + 1;
                c.npl[it]++;
            }
        }
    }
    free(stamp);
    stamp = NULL;

    ret = store__begin_write(s);
    if (ret < 0)
        goto out;
    ret = commit_items(&c);
    if (ret == 0)
        ret = commit_playlists(&c);
    if (ret == 0)
        ret = commit_corrections(&c);
    if (ret == 0)
        ret = commit_counters(&c);
    if (ret == 0)
        ret = store__commit(s);
    if (ret < 0) {
        store__rollback(s);
        goto out;
    }
    if (out) {
        out->playlists = (int64_t)b->playlists.n;
        out->rows_stored = c.stored;
        out->rows_duplicate = (int64_t)b->rows - c.stored;
        out->rows_removed = c.removed;
    }
out:
    free(stamp);
    free(c.keys);
    free(c.npl);
    free(c.set.v);
    free(c.merged.v);
    free(c.corrections.v);
    free(c.blob.p);
    return ret;
}
