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
 *     keys in id order: we give them explicitly, max(key) + 1 on, which is
 *     what the rowid would be, and insert them 64 rows to an INSERT
 *     (STORE__INSERT_ROWS; the last < 64 one by one). A statement step per
 *     row was over half the cost: in a standalone test, 300 k such rows
 *     took 0.68-0.71 s CPU one per INSERT and 0.32-0.40 s 64 per INSERT
 *     (best of 5-8 runs, twice; 16, 32 and 128 rows were within the noise
 *     of 64). Their column values are gathered from the batch before
 *     binding (commit_items_gather): in id order they are random accesses
 *     into the batch, and gathering them in tight loops took another
 *     ~0.14 s CPU off the 300 k items of bench_store. Existing items wait
 *     for step 3.
 *  2. Find the stored playlists the same way (scan of ids or probes). Per
 *     batch playlist, in id order: map indices to keys, sort, dedupe -> S.
 *     A playlist the scan did not find is queued, its blob copied, and
 *     the queue inserted 64 to an INSERT (keys are the next rowids, so in
 *     id order still): 158 k new playlists took 0.25-0.46 s CPU one per
 *     INSERT and 0.12-0.20 s 64 per INSERT standalone; binding the blobs
 *     SQLITE_STATIC from the queue beat SQLITE_TRANSIENT (0.12 vs 0.18 s).
 *     In probing mode a playlist is unknown until one INSERT ... DO
 *     NOTHING tries it. Otherwise read the stored set O and write O u S
 *     (MERGE) or S (REPLACE) back if it changed. For each key of S n O,
 *     npl counted a membership that is not new: corr[item]++. REPLACE also
 *     records each key of O \ S (a membership dropped).
 *  3. Per existing item touched (batch items that existed, sorted by key,
 *     merged with the sorted REPLACE drops): one UPDATE with the latest
 *     title/artist and playlists += npl - corr - drops, only when the count
 *     or a text changes (none does on an idempotent re-upload). Then the
 *     counters row.
 * Statements avoid RETURNING, which runs a temp-trigger program per row
 * and doubled the commit time in bench/bench_store.c. The multi-row
 * INSERTs have no ON CONFLICT clause: a row that exists after step 1 or 2
 * said it did not is a bug, and fails the statement and so the upload.
 *
 * bench_store 3000000 300000 (3 M rows, 300 k new items, 158 k new
 * playlists, a fresh database; the shared 2-core VM, 5 runs interleaved
 * with the old code): one INSERT per new row took 1.48 s best, 1.94 s
 * median (1.36 s / 1.76 s CPU); with the multi-row INSERTs, the gathering
 * and SQLite's memory statistics off (store.c) 0.94 s best, 1.29 s median
 * (0.78 s / 1.12 s CPU). An idempotent re-commit (none of this runs) was
 * 0.85-1.3 s either way.
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

/* New playlists waiting for a multi-row INSERT (step 2): their batch
 * indices, sizes, and blobs one after the other in bytes, which grows only
 * between two INSERTs, so the blobs bound SQLITE_STATIC stay put while the
 * statement runs. */
struct commit_new_pl {
    uint32_t p[STORE__INSERT_ROWS];
    uint32_t m[STORE__INSERT_ROWS];
    size_t off[STORE__INSERT_ROWS];
    size_t n;
    unsigned char *bytes;
    size_t used, cap;
};

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
    struct commit_new_pl new_pl;
    int64_t new_items, new_playlists, memberships, stored, removed;
};

/* Binds v (len bytes, borrowed until the statement is reset) as text, or
 * NULL when v is. */
static int commit_bind_opt_text(sqlite3_stmt *st, int col, const char *v, uint32_t len)
{
    if (!v)
        return sqlite3_bind_null(st, col);
    return sqlite3_bind_text(st, col, v, (int)len, SQLITE_STATIC);
}

static int commit_bind_text_or_null(sqlite3_stmt *st, int col, const struct batch__strtab *t,
                                    uint32_t idx1)
{
    if (!idx1)
        return sqlite3_bind_null(st, col);
    return commit_bind_opt_text(st, col, t->str[idx1 - 1], t->len[idx1 - 1]);
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

/* One new item's column values, gathered from the batch. */
struct commit_item_row {
    const char *id, *title, *artist; /* title/artist NULL: not given */
    uint32_t id_len, title_len, artist_len;
    uint32_t key, npl;
};

/* Fills rows[r] for the new items idx[0..n-1]. In id order these are
 * random accesses into the batch, whose tables are in first-seen order.
 * One tight loop per level of indirection (item -> text index -> text
 * pointer -> bytes) keeps many cache misses in flight at once; binding
 * straight from the batch met them one after another, and prefetch
 * instructions ahead of the walk did not help. In bench_store, binding
 * 300 k items took ~0.25 s CPU that way, ~0.11 s gathered first. */
static void commit_items_gather(const struct commit_state *c, const uint32_t *idx, size_t n,
                                struct commit_item_row *rows)
{
    const struct batch *b = c->b;
    const struct batch__strtab *t = &b->texts;
    uint32_t title[STORE__INSERT_ROWS], artist[STORE__INSERT_ROWS];
    unsigned touch = 0;

    for (size_t r = 0; r < n; r++) {
        uint32_t i = idx[r];
        rows[r].id = b->items.str[i];
        rows[r].id_len = b->items.len[i];
        rows[r].key = c->keys[i];
        rows[r].npl = c->npl[i];
        title[r] = b->item[i].title;
        artist[r] = b->item[i].artist;
    }
    for (size_t r = 0; r < n; r++) {
        rows[r].title = title[r] ? t->str[title[r] - 1] : NULL;
        rows[r].title_len = title[r] ? t->len[title[r] - 1] : 0;
        rows[r].artist = artist[r] ? t->str[artist[r] - 1] : NULL;
        rows[r].artist_len = artist[r] ? t->len[artist[r] - 1] : 0;
    }
    /* The bytes themselves, which the INSERT copies into its records. */
    for (size_t r = 0; r < n; r++) {
        touch += (unsigned char)rows[r].id[0];
        if (rows[r].title)
            touch += (unsigned char)rows[r].title[0];
        if (rows[r].artist)
            touch += (unsigned char)rows[r].artist[0];
    }
    {
        volatile unsigned sink = touch; /* keeps the loads */
        (void)sink;
    }
}

/* Binds row as row r of an item INSERT (5 parameters a row: key, id,
 * title, artist, playlists). The strings are the batch's. */
static int commit_item_bind(sqlite3_stmt *st, int r, const struct commit_item_row *row)
{
    int col = 5 * r + 1;
    int rc = sqlite3_bind_int64(st, col, row->key);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, col + 1, row->id, (int)row->id_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = commit_bind_opt_text(st, col + 2, row->title, row->title_len);
    if (rc == SQLITE_OK)
        rc = commit_bind_opt_text(st, col + 3, row->artist, row->artist_len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, col + 4, row->npl);
    return rc;
}

/* Runs an INSERT of n rows, bound, and resets it. The statements have no
 * ON CONFLICT clause, so a conflict is already an error; the count check
 * guards the invariant anyway (what = "item" or "playlist", first_id the
 * id of the first row, for the message). */
static int commit_insert_step(struct store *s, sqlite3_stmt *st, size_t n, const char *what,
                              const char *first_id)
{
    int rc = sqlite3_step(st);
    sqlite3_int64 changes = sqlite3_changes64(s->db);
    int ret = 0;

    if (rc != SQLITE_DONE)
        ret = store__error(s, rc);
    else if (changes != (sqlite3_int64)n) {
        snprintf(s->errmsg, sizeof s->errmsg,
                 "inserting %zu new %ss from %.64s stored %lld: one existed but was not found", n,
                 what, first_id, (long long)changes);
        ret = -EIO;
    }
    sqlite3_reset(st);
    return ret;
}

/* Inserts the new batch items idx[0..n-1], whose keys are set: one
 * multi-row INSERT when n is STORE__INSERT_ROWS, else one INSERT each
 * (the last, partial chunk of a batch). */
static int commit_items_insert(struct commit_state *c, const uint32_t *idx, size_t n)
{
    struct store *s = c->s;
    struct commit_item_row rows[STORE__INSERT_ROWS];
    int full = n == STORE__INSERT_ROWS;
    sqlite3_stmt *st;
    int rc, ret = 0;

    if (n == 0)
        return 0;
    st = store__stmt(s, full ? STORE__ITEM_INSERT_ROWS : STORE__ITEM_INSERT_NEW);
    if (!st)
        return -EIO;
    commit_items_gather(c, idx, n, rows);
    for (size_t r = 0; r < n && ret == 0; r++) {
        rc = commit_item_bind(st, full ? (int)r : 0, &rows[r]);
        if (rc != SQLITE_OK)
            ret = store__error(s, rc);
        else if (!full)
            ret = commit_insert_step(s, st, 1, "item", rows[r].id);
    }
    if (ret == 0 && full)
        ret = commit_insert_step(s, st, n, "item", rows[0].id);
    sqlite3_reset(st);
    if (ret == 0)
        c->new_items += (int64_t)n;
    return ret;
}

/* Step 1b: gives the new items their keys, next after the largest stored
 * key in id order, and inserts them STORE__INSERT_ROWS at a time; queues
 * the existing ones for step 3. Explicit keys: the keys are known without
 * asking SQLite after each row, and they are what the rowid would have
 * been (max + 1 each time; items are never deleted), so keys stay dense. */
static int commit_items(struct commit_state *c, int64_t stored)
{
    struct store *s = c->s;
    const struct batch *b = c->b;
    uint32_t *order = commit_order(&b->items);
    uint32_t chunk[STORE__INSERT_ROWS];
    sqlite3_int64 next;
    size_t n = 0;
    int ret;

    if (!order)
        return -ENOMEM;
    ret = commit_resolve_items(c, stored, order);
    if (ret == 0)
        ret = store__max_item_key(s, &next);
    if (ret < 0)
        goto out;
    next++;
    for (uint32_t q = 0; q < b->items.n; q++) {
        uint32_t i = order[q];

        /* The walk is in id order, random in the batch's arrays. */
        if (q + 8 < b->items.n) {
            __builtin_prefetch(&c->flags[order[q + 8]]);
            __builtin_prefetch(&c->keys[order[q + 8]]);
        }
        if (c->flags[i] & COMMIT_STORED) {
            ret = commit_u64_push(&c->existing, (uint64_t)c->keys[i] << 32 | i);
            if (ret < 0)
                goto out;
            continue;
        }
        if (next > (sqlite3_int64)UINT32_MAX) {
            snprintf(s->errmsg, sizeof s->errmsg, "item key %lld out of range", (long long)next);
            ret = -EOVERFLOW;
            goto out;
        }
        c->keys[i] = (uint32_t)next++;
        chunk[n++] = i;
        if (n == STORE__INSERT_ROWS) {
            ret = commit_items_insert(c, chunk, n);
            if (ret < 0)
                goto out;
            n = 0;
        }
    }
    ret = commit_items_insert(c, chunk, n);
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

/* Binds new playlist q of the queue as row r of a playlist INSERT (3
 * parameters a row: id, n_items, items). */
static int commit_new_pl_bind(struct commit_state *c, sqlite3_stmt *st, int r, size_t q)
{
    const struct commit_new_pl *np = &c->new_pl;
    uint32_t p = np->p[q];
    int col = 3 * r + 1;
    int rc = sqlite3_bind_text(st, col, c->b->playlists.str[p], (int)c->b->playlists.len[p],
                               SQLITE_STATIC);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, col + 1, np->m[q]);
    if (rc != SQLITE_OK)
        return rc;
    /* A zero-length blob must still be a blob, not NULL (items NOT NULL). */
    if (np->m[q] == 0)
        return sqlite3_bind_zeroblob(st, col + 2, 0);
    return sqlite3_bind_blob(st, col + 2, np->bytes + np->off[q], (int)(np->m[q] * 4),
                             SQLITE_STATIC);
}

/* Inserts the queued new playlists: one multi-row INSERT for a full
 * queue, else one INSERT each (the last, partial chunk). Every member of a
 * new playlist is a new membership. */
static int commit_new_pl_flush(struct commit_state *c)
{
    struct commit_new_pl *np = &c->new_pl;
    struct store *s = c->s;
    int full = np->n == STORE__INSERT_ROWS;
    sqlite3_stmt *st;
    int rc, ret = 0;

    if (np->n == 0)
        return 0;
    /* PL_INSERT_NEW has DO NOTHING (for probing): the count check turns a
     * conflict into an error all the same. */
    st = store__stmt(s, full ? STORE__PL_INSERT_ROWS : STORE__PL_INSERT_NEW);
    if (!st)
        return -EIO;
    for (size_t q = 0; q < np->n && ret == 0; q++) {
        rc = commit_new_pl_bind(c, st, full ? (int)q : 0, q);
        if (rc != SQLITE_OK)
            ret = store__error(s, rc);
        else if (!full)
            ret = commit_insert_step(s, st, 1, "playlist", c->b->playlists.str[np->p[q]]);
    }
    if (ret == 0 && full)
        ret = commit_insert_step(s, st, np->n, "playlist", c->b->playlists.str[np->p[0]]);
    sqlite3_reset(st);
    if (ret < 0)
        return ret;
    for (size_t q = 0; q < np->n; q++) {
        c->memberships += np->m[q];
        c->stored += np->m[q];
    }
    c->new_playlists += (int64_t)np->n;
    np->n = 0;
    np->used = 0;
    return 0;
}

/* Queues batch playlist p, known to be new, with its set S (m keys) for a
 * multi-row INSERT; inserts the queue when it is full. */
static int commit_new_pl_queue(struct commit_state *c, uint32_t p, const uint32_t *S, size_t m)
{
    struct commit_new_pl *np = &c->new_pl;
    size_t bytes = m * sizeof(uint32_t);

    if (bytes > (size_t)0x7fffffff)
        return -E2BIG;
    if (np->used + bytes > np->cap) {
        size_t cap = np->cap ? np->cap : 4096;
        unsigned char *v;
        while (cap < np->used + bytes)
            cap *= 2;
        v = realloc(np->bytes, cap);
        if (!v)
            return -ENOMEM;
        np->bytes = v;
        np->cap = cap;
    }
    if (m > 0) /* bytes is still NULL while every queued set is empty */
        store__keys_encode(np->bytes + np->used, S, m);
    np->p[np->n] = p;
    np->m[np->n] = (uint32_t)m;
    np->off[np->n] = np->used;
    np->used += bytes;
    np->n++;
    return np->n == STORE__INSERT_ROWS ? commit_new_pl_flush(c) : 0;
}

/* Playlists per commit_playlists_touch. */
#define COMMIT_PL_TOUCH 32

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

    if (c->pl_keys[p] == 0)
        return commit_new_pl_queue(c, p, S, m);
    if (c->pl_keys[p] == UINT32_MAX) {
        /* Unknown: probing mode tries the insert first, which is one
         * statement for a new playlist. */
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

/* Loads, in tight loops, the batch data the playlists order[q..q+n-1]
 * will need: in id order these are random accesses (see
 * commit_items_gather), met one after another otherwise. */
static void commit_playlists_touch(const struct batch *b, const uint32_t *order, size_t n)
{
    uint32_t first[COMMIT_PL_TOUCH];
    unsigned touch = 0;

    for (size_t q = 0; q < n; q++) {
        const struct batch__list *l = &b->lists[order[q]];
        first[q] = l->n ? l->idx[0] : 0;
        touch += b->playlists.len[order[q]];
        touch += (unsigned char)b->playlists.str[order[q]][0];
    }
    for (size_t q = 0; q < n; q++)
        touch += first[q];
    {
        volatile unsigned sink = touch; /* keeps the loads */
        (void)sink;
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

        if (q % COMMIT_PL_TOUCH == 0)
            commit_playlists_touch(b, order + q,
                                   b->playlists.n - q < COMMIT_PL_TOUCH ? b->playlists.n - q
                                                                        : COMMIT_PL_TOUCH);

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
    if (ret == 0)
        ret = commit_new_pl_flush(c);
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

static int commit_batch(struct store *s, const struct batch *b, enum store_commit_mode mode,
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
    free(c.new_pl.bytes);
    return ret;
}

int store_batch_commit(struct store *s, struct batch *b, enum store_commit_mode mode,
                       struct store_commit_result *out)
{
    /* Rows still staged in the batch's look-ahead are applied first. */
    int ret = b ? batch_flush(b) : -EINVAL;

    return ret < 0 ? ret : commit_batch(s, b, mode, out);
}
