/*
 * store_batch_commit: applies a batch (batch.c) to items, playlists and
 * counters in one BEGIN IMMEDIATE transaction; any error rolls it all back.
 *
 * Algorithm (rows = batch rows, P = batch playlists, I = batch items):
 *  0. Without touching the database, count for every batch item the
 *     number of distinct batch playlists naming it (npl), with a per-item
 *     "last playlist seen" stamp: O(rows).
 *  1. Find which batch items exist (their keys, and whether their stored
 *     title/artist differ from the batch's): when the items table is at
 *     most 8x the batch, one scan of it, each stored id looked up in the
 *     batch's hash table; else one index probe per batch item. Then insert
 *     the new ones in id order (BINARY collation) with playlists = npl,
 *     which is exact: a new item is in no stored playlist. Id order makes
 *     the inserts into the UNIQUE(id) index and the rowid table both
 *     sequential: in bench/bench_store.c this halves the CPU time of the
 *     step compared with random order. So a batch's new items get their
 *     keys in id order. Existing items wait for step 3.
 *  2. Find the stored playlists the same way (scan of ids or probes). Per
 *     batch playlist, in id order: map indices to keys, sort, dedupe -> S.
 *     A new one is one INSERT. Otherwise read the stored set O and write
 *     O u S (MERGE) or S (REPLACE) back if it changed. For each key of
 *     S n O, npl counted a membership that is not new: corr[item]++.
 *     REPLACE also records each key of O \ S (a membership dropped).
 *  3. Per existing item touched (batch items that existed, sorted by key,
 *     merged with the sorted REPLACE drops): one UPDATE with the latest
 *     title/artist and playlists += npl - corr - drops, only when the count
 *     or a text changes (none does on an idempotent re-upload). Then the
 *     counters row.
 * Statements avoid RETURNING, which runs a temp-trigger program per row
 * and doubled the commit time in bench/bench_store.c.
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

struct commit_u64 {
    uint64_t *v;
    size_t n, cap;
};

static int commit_u64_push(struct commit_u64 *b, uint64_t x)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        uint64_t *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return 0;
}

static int commit_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
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

/* commit_state.flags[i] for batch item i */
#define COMMIT_STORED 1u    /* the item existed before this commit */
#define COMMIT_TEXT_DIFF 2u /* its stored title/artist differ from the batch's */

struct commit_state {
    struct store *s;
    const struct batch *b;
    enum store_commit_mode mode;
    uint32_t *keys;   /* batch item index -> item key (0 = not resolved yet) */
    uint32_t *npl;    /* batch item index -> distinct batch playlists */
    uint32_t *corr;   /* batch item index -> stored playlists of the batch
                         that already held it (npl counted them as new) */
    unsigned char *flags;  /* batch item index -> COMMIT_* */
    uint32_t *pl_keys;     /* batch playlist index -> stored key, 0 = new */
    uint32_t *set_idx;     /* batch item index of each set.v[] key */
    size_t set_cap;        /* entries allocated in set_idx */
    struct commit_buf set, merged, corrections;
    struct commit_u64 existing; /* key << 32 | batch index of items that existed */
    struct commit_blob blob;
    int64_t new_items, new_playlists, memberships, stored, removed;
};

static int commit_bind_text_or_null(sqlite3_stmt *st, int col, const struct batch__strtab *t,
                                    uint32_t idx1)
{
    if (!idx1)
        return sqlite3_bind_null(st, col);
    return sqlite3_bind_text(st, col, t->str[idx1 - 1], (int)t->len[idx1 - 1], SQLITE_STATIC);
}

/* Sort entry: the first 8 bytes of an id, big-endian, zero-padded, so most
 * comparisons touch only this array; ties compare the whole ids. */
struct commit_order {
    uint64_t prefix;
    uint32_t idx;
};

static int commit_order_cmp(const void *a, const void *b, void *arg)
{
    const struct commit_order *x = a, *y = b;
    const struct batch__strtab *t = arg;
    uint32_t lx, ly;
    int r;

    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    lx = t->len[x->idx];
    ly = t->len[y->idx];
    r = memcmp(t->str[x->idx], t->str[y->idx], lx < ly ? lx : ly);
    if (r != 0)
        return r;
    return (lx > ly) - (lx < ly);
}

/* Returns the indices of t's strings in the order SQLite's BINARY collation
 * sorts them (memcmp, then length). NULL on ENOMEM. */
static uint32_t *commit_order(const struct batch__strtab *t)
{
    struct commit_order *o = malloc((t->n ? t->n : 1) * sizeof *o);
    uint32_t *perm = malloc((t->n ? t->n : 1) * sizeof *perm);

    if (!o || !perm) {
        free(o);
        free(perm);
        return NULL;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        const unsigned char *s = (const unsigned char *)t->str[i];
        uint64_t pfx = 0;
        for (uint32_t k = 0; k < 8; k++)
            pfx = pfx << 8 | (k < t->len[i] ? s[k] : 0);
        o[i].prefix = pfx;
        o[i].idx = i;
    }
    /* qsort_r (glibc, POSIX.1-2024): the comparator needs the batch. */
    if (t->n > 0)
        qsort_r(o, t->n, sizeof *o, commit_order_cmp, (void *)t);
    for (uint32_t i = 0; i < t->n; i++)
        perm[i] = o[i].idx;
    free(o);
    return perm;
}

/* Whether the stored text (column col of st) differs from batch text idx1
 * in a way the update would change: a given batch text that is not the
 * stored one. 0 (not given) never differs: NULL keeps the stored value. */
static int commit_text_differs(const struct batch *b, sqlite3_stmt *st, int col, uint32_t idx1)
{
    const unsigned char *v;
    uint32_t len;

    if (!idx1)
        return 0;
    v = sqlite3_column_text(st, col);
    len = b->texts.len[idx1 - 1];
    if (!v)
        return 1; /* NULL stored (or out of memory: then update, harmless) */
    return (uint32_t)sqlite3_column_bytes(st, col) != len ||
           memcmp(v, b->texts.str[idx1 - 1], len) != 0;
}

/* Records that batch item i exists with key, from a row of st whose
 * columns title_col and title_col + 1 are its stored title and artist. */
static int commit_item_found(struct commit_state *c, uint32_t i, sqlite3_int64 key,
                             sqlite3_stmt *st, int title_col)
{
    const struct batch *b = c->b;

    if (key < 1 || key > (sqlite3_int64)UINT32_MAX) {
        snprintf(c->s->errmsg, sizeof c->s->errmsg, "item key %lld out of range",
                 (long long)key);
        return -EOVERFLOW;
    }
    c->keys[i] = (uint32_t)key;
    c->flags[i] = COMMIT_STORED;
    if (commit_text_differs(b, st, title_col, b->item[i].title) ||
        commit_text_differs(b, st, title_col + 1, b->item[i].artist))
        c->flags[i] |= COMMIT_TEXT_DIFF;
    return 0;
}

/* Whether to find a batch's stored rows by scanning the whole table (and
 * looking each stored id up in the batch's hash table) rather than by one
 * index probe per batch string. A probe costs a b-tree descent and a
 * statement step, several times a scanned row, and a failed INSERT then a
 * SELECT (what a probe-less insert of an existing item costs) twice that:
 * scan when the table is at most 8 times the batch. */
static int commit_use_scan(int64_t stored, uint32_t batch_n)
{
    return stored <= (int64_t)batch_n * 8;
}

/* Step 1a: which batch items exist, with their keys, and whether their
 * stored title/artist differ from the batch's. On a re-upload this is all
 * the item work there is; before it, every existing item cost a failed
 * INSERT, a SELECT and an UPDATE that wrote nothing. */
static int commit_resolve_items(struct commit_state *c, int64_t stored, const uint32_t *order)
{
    struct store *s = c->s;
    const struct batch *b = c->b;
    sqlite3_stmt *st;
    int rc = SQLITE_DONE, ret = 0;

    if (stored == 0 || b->items.n == 0)
        return 0;
    if (commit_use_scan(stored, b->items.n)) {
        /* key, id, title, artist; in key order, i.e. file order */
        st = store__stmt(s, STORE__ITEM_NAMES);
        if (!st)
            return -EIO;
        while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 1);
            uint32_t i;
            if (!id) {
                rc = SQLITE_NOMEM;
                break;
            }
            i = batch__find(&b->items, id, (size_t)sqlite3_column_bytes(st, 1));
            if (i != UINT32_MAX)
                ret = commit_item_found(c, i, sqlite3_column_int64(st, 0), st, 2);
        }
        if (ret == 0 && rc != SQLITE_DONE)
            ret = store__error(s, rc);
        sqlite3_reset(st);
        return ret;
    }
    /* key, id, title, artist, playlists; probes in id order for locality */
    st = store__stmt(s, STORE__ITEM_GET_BY_ID);
    if (!st)
        return -EIO;
    for (uint32_t q = 0; q < b->items.n && ret == 0; q++) {
        uint32_t i = order[q];
        sqlite3_reset(st);
        rc = sqlite3_bind_text(st, 1, b->items.str[i], (int)b->items.len[i], SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            ret = commit_item_found(c, i, sqlite3_column_int64(st, 0), st, 2);
        else if (rc != SQLITE_DONE)
            ret = store__error(s, rc);
    }
    sqlite3_reset(st);
    return ret;
}

/* Step 1b: inserts the new items in id order; queues the existing ones for
 * step 3. */
static int commit_items(struct commit_state *c, int64_t stored)
{
    struct store *s = c->s;
    const struct batch *b = c->b;
    sqlite3_stmt *ins;
    uint32_t *order = commit_order(&b->items);
    int rc, ret;

    if (!order)
        return -ENOMEM;
    ret = commit_resolve_items(c, stored, order);
    if (ret < 0)
        goto out;
    ins = store__stmt(s, STORE__ITEM_INSERT_NEW);
    if (!ins) {
        ret = -EIO;
        goto out;
    }
    for (uint32_t q = 0; q < b->items.n; q++) {
        uint32_t i = order[q];
        sqlite3_int64 key;

        /* The rows of the next items are random accesses into the batch:
         * start fetching them while this one is inserted. */
        if (q + 4 < b->items.n) {
            uint32_t nx = order[q + 4];
            __builtin_prefetch(&b->item[nx]);
            __builtin_prefetch(&b->items.str[nx]);
            __builtin_prefetch(&c->npl[nx]);
            __builtin_prefetch(&c->flags[nx]);
        }
        if (c->flags[i] & COMMIT_STORED) {
            ret = commit_u64_push(&c->existing, (uint64_t)c->keys[i] << 32 | i);
            if (ret < 0)
                goto out;
            continue;
        }
        sqlite3_reset(ins);
        rc = sqlite3_bind_text(ins, 1, b->items.str[i], (int)b->items.len[i], SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = commit_bind_text_or_null(ins, 2, &b->texts, b->item[i].title);
        if (rc == SQLITE_OK)
            rc = commit_bind_text_or_null(ins, 3, &b->texts, b->item[i].artist);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(ins, 4, c->npl[i]);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(ins);
        if (rc != SQLITE_DONE) {
            ret = store__error(s, rc);
            goto out;
        }
        if (sqlite3_changes64(s->db) != 1) {
            /* Step 1a saw every stored item, in this same transaction. */
            snprintf(s->errmsg, sizeof s->errmsg, "item %.64s exists but was not found",
                     b->items.str[i]);
            ret = -EIO;
            goto out;
        }
        key = sqlite3_last_insert_rowid(s->db);
        if (key < 1 || key > (sqlite3_int64)UINT32_MAX) {
            snprintf(s->errmsg, sizeof s->errmsg, "item key %lld out of range", (long long)key);
            ret = -EOVERFLOW;
            goto out;
        }
        c->keys[i] = (uint32_t)key;
        c->new_items++;
    }
    ret = 0;
out:
    free(order);
    return ret;
}

/* Step 2a: the stored key of every batch playlist that exists (pl_keys),
 * by a scan of the ids or by probes, as for items. */
static int commit_resolve_playlists(struct commit_state *c, int64_t stored)
{
    struct store *s = c->s;
    const struct batch *b = c->b;
    sqlite3_stmt *st;
    int rc = SQLITE_DONE, ret = 0;

    if (stored == 0 || b->playlists.n == 0)
        return 0;
    if (commit_use_scan(stored, b->playlists.n)) {
        /* key, id, n_items for key > ?1, by key, at most ?2 (-1: all) */
        st = store__stmt(s, STORE__PL_LIST);
        if (!st)
            return -EIO;
        rc = sqlite3_bind_int64(st, 1, 0);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 2, -1);
        if (rc != SQLITE_OK) {
            ret = store__error(s, rc);
            goto out;
        }
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 1);
            sqlite3_int64 key = sqlite3_column_int64(st, 0);
            uint32_t p;
            if (!id) {
                rc = SQLITE_NOMEM;
                break;
            }
            p = batch__find(&b->playlists, id, (size_t)sqlite3_column_bytes(st, 1));
            if (p == UINT32_MAX)
                continue;
            if (key < 1 || key > (sqlite3_int64)UINT32_MAX) {
                snprintf(s->errmsg, sizeof s->errmsg, "playlist key %lld out of range",
                         (long long)key);
                ret = -EOVERFLOW;
                goto out;
            }
            c->pl_keys[p] = (uint32_t)key;
        }
        if (rc != SQLITE_DONE)
            ret = store__error(s, rc);
        goto out;
    }
    /* Few batch playlists against a big table: commit_playlist probes. */
    for (uint32_t p = 0; p < b->playlists.n; p++)
        c->pl_keys[p] = UINT32_MAX; /* unknown */
    st = NULL;
out:
    if (st)
        sqlite3_reset(st);
    return ret;
}

/* Writes one batch playlist; S = c->set (sorted, unique), with the batch
 * item index of each key in c->set_idx. */
static int commit_playlist(struct commit_state *c, uint32_t p)
{
    struct store *s = c->s;
    const struct batch *b = c->b;
    const uint32_t *S = c->set.v;
    size_t m = c->set.n, n_old = 0, i, j;
    uint32_t *old = NULL;
    sqlite3_int64 key;
    sqlite3_stmt *st = NULL;
    int rc, ret;

    if (c->pl_keys[p] == 0 || c->pl_keys[p] == UINT32_MAX) {
        /* New (or unknown: probing mode tries the insert first, which is
         * one statement for a new playlist). */
        st = store__stmt(s, STORE__PL_INSERT_NEW);
        if (!st)
            return -EIO;
        rc = sqlite3_bind_text(st, 1, b->playlists.str[p], (int)b->playlists.len[p],
                               SQLITE_STATIC);
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
        if (rc == SQLITE_DONE && sqlite3_changes64(s->db) == 1) {
            /* New playlist: every member is a new membership. */
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
        if (c->pl_keys[p] == 0) {
            snprintf(s->errmsg, sizeof s->errmsg, "playlist %.64s exists but was not found",
                     b->playlists.str[p]);
            ret = -EIO;
            goto out;
        }
        sqlite3_reset(st);
    }

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

    /* Merge walk: union into c->merged; a key of both sets is a membership
     * npl counted as new: one correction for its batch item. */
    ret = commit_buf_reserve(&c->merged, n_old + m);
    if (ret < 0)
        goto out;
    {
        uint32_t *u = c->merged.v;
        size_t nu = 0, common = 0;
        for (i = 0, j = 0; i < n_old || j < m;) {
            if (j == m || (i < n_old && old[i] < S[j])) {
                /* REPLACE: an old member the batch drops, -1 in step 3 */
                if (c->mode == STORE_COMMIT_REPLACE) {
                    ret = commit_buf_push(&c->corrections, old[i]);
                    if (ret < 0)
                        goto out;
                }
                u[nu++] = old[i++];
            } else if (i == n_old || S[j] < old[i]) {
                u[nu++] = S[j++];
            } else {
                common++;
                c->corr[c->set_idx[j]]++;
                u[nu++] = S[j++];
                i++;
            }
        }
        c->merged.n = nu;
        c->stored += (int64_t)(m - common);
        if (c->mode == STORE_COMMIT_REPLACE) {
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

/* Sorts v (key << 32 | batch index); short arrays are the norm. */
static void commit_sort64(uint64_t *v, size_t n)
{
    size_t i;

    for (i = 1; i < n && v[i - 1] <= v[i]; i++)
        ;
    if (i >= n)
        return; /* already sorted: keys of new items come in batch order */
    if (n > 64) {
        qsort(v, n, sizeof *v, commit_u64_cmp);
        return;
    }
    for (i = 1; i < n; i++) {
        uint64_t x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Step 2, in playlist id order for the same reason as step 1: new
 * playlists get their keys (and their place in listings) in id order. */
static int commit_playlists(struct commit_state *c, int64_t stored)
{
    const struct batch *b = c->b;
    uint32_t *order = commit_order(&b->playlists);
    struct commit_u64 pairs = {0};
    int ret;

    if (!order)
        return -ENOMEM;
    ret = commit_resolve_playlists(c, stored);
    for (uint32_t q = 0; q < b->playlists.n && ret == 0; q++) {
        uint32_t p = order[q];
        const struct batch__list *l = &b->lists[p];
        size_t n = 0;

        /* (key, batch index) pairs sorted by key: the set, and which batch
         * item each member is, for the corrections of the merge. */
        if (l->n > pairs.cap) {
            uint64_t *v = realloc(pairs.v, l->n * sizeof *v);
            if (!v) {
                ret = -ENOMEM;
                break;
            }
            pairs.v = v;
            pairs.cap = l->n;
        }
        ret = commit_buf_reserve(&c->set, l->n);
        if (ret < 0)
            break;
        if (l->n > c->set_cap) {
            uint32_t *v = realloc(c->set_idx, l->n * sizeof *v);
            if (!v) {
                ret = -ENOMEM;
                break;
            }
            c->set_idx = v;
            c->set_cap = l->n;
        }
        for (uint32_t r = 0; r < l->n; r++)
            pairs.v[r] = (uint64_t)c->keys[l->idx[r]] << 32 | l->idx[r];
        commit_sort64(pairs.v, l->n);
        for (uint32_t r = 0; r < l->n; r++) {
            uint32_t key = (uint32_t)(pairs.v[r] >> 32);
            if (n == 0 || c->set.v[n - 1] != key) {
                c->set.v[n] = key;
                c->set_idx[n++] = (uint32_t)pairs.v[r];
            }
        }
        c->set.n = n;
        ret = commit_playlist(c, p);
    }
    free(pairs.v);
    free(order);
    return ret;
}

static int commit_item_update(struct commit_state *c, sqlite3_stmt *st, uint32_t key,
                              int64_t delta, uint32_t title, uint32_t artist)
{
    int rc;

    sqlite3_reset(st);
    rc = sqlite3_bind_int64(st, 1, key);
    if (rc == SQLITE_OK)
        rc = commit_bind_text_or_null(st, 2, &c->b->texts, title);
    if (rc == SQLITE_OK)
        rc = commit_bind_text_or_null(st, 3, &c->b->texts, artist);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, delta);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : store__error(c->s, rc);
}

/* Step 3: updates existing items (title/artist, playlists += npl - corr -
 * REPLACE drops) and items only named by REPLACE drops. An item whose count
 * and texts do not change is skipped without a statement: on a re-upload,
 * that is every item. */
static int commit_existing_items(struct commit_state *c)
{
    struct commit_buf *k = &c->corrections;
    struct commit_u64 *e = &c->existing;
    const struct batch *b = c->b;
    sqlite3_stmt *st = NULL;
    size_t i = 0, j = 0;
    int ret = 0;

    if (k->n == 0 && e->n == 0)
        return 0;
    if (k->n > 0)
        qsort(k->v, k->n, sizeof *k->v, commit_u32_cmp);
    if (e->n > 0)
        qsort(e->v, e->n, sizeof *e->v, commit_u64_cmp);
    while (ret == 0 && (i < k->n || j < e->n)) {
        uint32_t key = j < e->n ? (uint32_t)(e->v[j] >> 32) : UINT32_MAX;
        size_t run = i;
        int64_t delta;
        uint32_t title = 0, artist = 0;

        if (i < k->n && k->v[i] < key)
            key = k->v[i];
        while (run < k->n && k->v[run] == key)
            run++;
        delta = -(int64_t)(run - i);
        if (j < e->n && (uint32_t)(e->v[j] >> 32) == key) {
            uint32_t idx = (uint32_t)e->v[j];
            delta += (int64_t)c->npl[idx] - (int64_t)c->corr[idx];
            if (c->flags[idx] & COMMIT_TEXT_DIFF) {
                title = b->item[idx].title;
                artist = b->item[idx].artist;
            }
            j++;
        }
        i = run;
        if (delta == 0 && title == 0 && artist == 0)
            continue;
        if (!st) {
            st = store__stmt(c->s, STORE__ITEM_UPDATE);
            if (!st)
                return -EIO;
        }
        ret = commit_item_update(c, st, key, delta, title, artist);
    }
    if (st)
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
    struct store_counts before;
    uint32_t *stamp = NULL;
    size_t n_it = b && b->items.n ? b->items.n : 1;
    int ret;

    if (!s || !b || (mode != STORE_COMMIT_MERGE && mode != STORE_COMMIT_REPLACE))
        return -EINVAL;
    s->errmsg[0] = '\0';
    /* Step 0 (no database): distinct batch playlists per item. */
    c.keys = calloc(n_it, sizeof *c.keys);
    c.npl = calloc(n_it, sizeof *c.npl);
    c.corr = calloc(n_it, sizeof *c.corr);
    c.flags = calloc(n_it, sizeof *c.flags);
    c.pl_keys = calloc(b->playlists.n ? b->playlists.n : 1, sizeof *c.pl_keys);
    stamp = calloc(n_it, sizeof *stamp);
    if (!c.keys || !c.npl || !c.corr || !c.flags || !c.pl_keys || !stamp) {
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
    /* Table sizes pick scans or probes (commit_use_scan). */
    ret = store_counts_get(s, &before);
    if (ret == 0)
        ret = commit_items(&c, before.items);
    if (ret == 0)
        ret = commit_playlists(&c, before.playlists);
    if (ret == 0)
        ret = commit_existing_items(&c);
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
    free(c.corr);
    free(c.flags);
    free(c.pl_keys);
    free(c.set_idx);
    free(c.set.v);
    free(c.merged.v);
    free(c.corrections.v);
    free(c.existing.v);
    free(c.blob.p);
    return ret;
}
