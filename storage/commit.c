/*
 * store_batch_commit: applies a batch (batch.c) to items, playlists and
 * counters in one BEGIN IMMEDIATE transaction; any error rolls it all back.
 *
 * Algorithm (rows = batch rows, P = batch playlists, I = batch items):
 *  0. Without touching the database, count for every batch item the
 *     number of distinct batch playlists naming it (npl), with a per-item
 *     "last playlist seen" stamp: O(rows).
 *  1. In id order (BINARY collation), insert every batch item that is new
 *     (ON CONFLICT DO NOTHING; key = last_insert_rowid) with playlists =
 *     npl, which is exact: a new item is in no stored playlist. For an item
 *     that exists, only look its key up; its update waits for step 3, when
 *     its delta is known. Id order makes the inserts into the UNIQUE(id)
 *     index and the rowid table both sequential: in bench/bench_store.c
 *     this halves the CPU time of the step compared with random order. So
 *     a batch's new items get their keys in id order.
 *  2. Per batch playlist, in id order: map indices to keys, sort, dedupe -> S. Try to
 *     insert it as a new playlist (one statement for a new one). Otherwise
 *     read the stored set O and write O u S (MERGE) or S (REPLACE) back if
 *     it changed. Each key of S n O (MERGE) or of O (REPLACE) is recorded
 *     as a correction: npl counted it as a new membership, or (REPLACE) it
 *     is one no more.
 *  3. Per existing item touched (batch items that existed, sorted by key,
 *     merged with the sorted corrections): one UPDATE with the latest
 *     title/artist and playlists += npl - corrections; it writes nothing
 *     when nothing changes (idempotent re-upload). Then the counters row.
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

/* Sorts v (short arrays are the norm: insertion sort up to 64). */
static void commit_sort(uint32_t *v, size_t n)
{
    size_t i;

    for (i = 1; i < n && v[i - 1] <= v[i]; i++)
        ;
    if (i >= n)
        return; /* already sorted: keys of new items come in batch order */
    if (n > 64) {
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

static int commit_items(struct commit_state *c)
{
    struct store *s = c->s;
    const struct batch *b = c->b;
    sqlite3_stmt *ins, *sel = NULL;
    uint32_t *order = commit_order(&b->items);
    int rc, ret = 0;

    if (!order)
        return -ENOMEM;
    ins = store__stmt(s, STORE__ITEM_INSERT_NEW);
    if (!ins) {
        free(order);
        return -EIO;
    }
    for (uint32_t q = 0; q < b->items.n; q++) {
        uint32_t i = order[q];
        sqlite3_int64 key;
        int is_new;

        sqlite3_reset(ins);
        rc = sqlite3_bind_text(ins, 1, b->items.str[i], (int)b->items.len[i], SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = commit_bind_text_or_null(ins, 2, &b->texts, b->title[i]);
        if (rc == SQLITE_OK)
            rc = commit_bind_text_or_null(ins, 3, &b->texts, b->artist[i]);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(ins, 4, c->npl[i]);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(ins);
        if (rc != SQLITE_DONE) {
            ret = store__error(s, rc);
            goto out;
        }
        is_new = sqlite3_changes64(s->db) == 1;
        if (is_new) {
            key = sqlite3_last_insert_rowid(s->db);
            c->new_items++;
        } else {
            if (!sel) {
                sel = store__stmt(s, STORE__ITEM_KEY_BY_ID);
                if (!sel) {
                    ret = -EIO;
                    goto out;
                }
            }
            sqlite3_reset(sel);
            rc = sqlite3_bind_text(sel, 1, b->items.str[i], (int)b->items.len[i],
                                   SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = sqlite3_step(sel);
            if (rc != SQLITE_ROW) {
                ret = rc == SQLITE_DONE ? -EIO : store__error(s, rc);
                goto out;
            }
            key = sqlite3_column_int64(sel, 0);
            sqlite3_reset(sel);
        }
        if (key < 1 || key > (sqlite3_int64)UINT32_MAX) {
            snprintf(s->errmsg, sizeof s->errmsg, "item key %lld out of range", (long long)key);
            ret = -EOVERFLOW;
            goto out;
        }
        c->keys[i] = (uint32_t)key;
        if (!is_new) {
            ret = commit_u64_push(&c->existing, (uint64_t)key << 32 | i);
            if (ret < 0)
                goto out;
        }
    }
out:
    free(order);
    sqlite3_reset(ins);
    if (sel)
        sqlite3_reset(sel);
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

/* Step 2, in playlist id order for the same reason as step 1: new
 * playlists get their keys (and their place in listings) in id order. */
static int commit_playlists(struct commit_state *c)
{
    const struct batch *b = c->b;
    uint32_t *order = commit_order(&b->playlists);
    int ret = 0;

    if (!order)
        return -ENOMEM;
    for (uint32_t q = 0; q < b->playlists.n && ret == 0; q++) {
        uint32_t p = order[q];
        const struct batch__list *l = &b->lists[p];
        size_t n = 0;

        ret = commit_buf_reserve(&c->set, l->n);
        if (ret < 0)
            break;
        for (uint32_t r = 0; r < l->n; r++)
            c->set.v[r] = c->keys[l->idx[r]];
        commit_sort(c->set.v, l->n);
        for (uint32_t r = 0; r < l->n; r++)
            if (n == 0 || c->set.v[n - 1] != c->set.v[r])
                c->set.v[n++] = c->set.v[r];
        c->set.n = n;
        ret = commit_playlist(c, p);
    }
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

/* Step 3: updates existing items (title/artist, playlists += npl -
 * corrections) and items only named by corrections (REPLACE removals). */
static int commit_existing_items(struct commit_state *c)
{
    struct commit_buf *k = &c->corrections;
    struct commit_u64 *e = &c->existing;
    const struct batch *b = c->b;
    sqlite3_stmt *st;
    size_t i = 0, j = 0;
    int ret = 0;

    if (k->n == 0 && e->n == 0)
        return 0;
    if (k->n > 0)
        qsort(k->v, k->n, sizeof *k->v, commit_u32_cmp);
    if (e->n > 0)
        qsort(e->v, e->n, sizeof *e->v, commit_u64_cmp);
    st = store__stmt(c->s, STORE__ITEM_UPDATE);
    if (!st)
        return -EIO;
    while (ret == 0 && (i < k->n || j < e->n)) {
        uint32_t key = j < e->n ? (uint32_t)(e->v[j] >> 32) : UINT32_MAX;
        size_t run = i;

        if (i < k->n && k->v[i] < key)
            key = k->v[i];
        while (run < k->n && k->v[run] == key)
            run++;
        if (j < e->n && (uint32_t)(e->v[j] >> 32) == key) {
            uint32_t idx = (uint32_t)e->v[j];
            ret = commit_item_update(c, st, key, (int64_t)c->npl[idx] - (int64_t)(run - i),
                                     b->title[idx], b->artist[idx]);
            j++;
        } else {
            ret = commit_item_update(c, st, key, -(int64_t)(run - i), 0, 0);
        }
        i = run;
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
    free(c.set.v);
    free(c.merged.v);
    free(c.corrections.v);
    free(c.existing.v);
    free(c.blob.p);
    return ret;
}
