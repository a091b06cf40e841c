/*
 * Step 2 of store_batch_commit (the algorithm is at the top of commit.c):
 * per batch playlist in id order, its sorted key set; a new playlist is
 * queued for a multi-row INSERT, an existing one merged with its stored
 * set (MERGE) or replaced (REPLACE), with the corrections step 3 needs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/commit_internal.h"

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
    if (commit__use_scan(stored, b->playlists.n)) {
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
            p = batch__find(b, &b->playlists, id, (size_t)sqlite3_column_bytes(st, 1));
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
            ret = commit__insert_step(s, st, 1, "playlist", c->b->playlists.str[np->p[q]]);
    }
    if (ret == 0 && full)
        ret = commit__insert_step(s, st, np->n, "playlist", c->b->playlists.str[np->p[0]]);
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

/* Probing mode: tries to insert batch playlist p with set S (m keys) as
 * new, which is one statement for a new playlist. *inserted tells whether
 * it was new; if not, it exists and the caller merges. */
static int commit_playlist_try_insert(struct commit_state *c, uint32_t p, const uint32_t *S,
                                      size_t m, int *inserted)
{
    struct store *s = c->s;
    const struct batch *b = c->b;
    sqlite3_stmt *st = store__stmt(s, STORE__PL_INSERT_NEW);
    int rc, ret;

    *inserted = 0;
    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, b->playlists.str[p], (int)b->playlists.len[p], SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)m);
    ret = rc == SQLITE_OK ? commit__blob_bind(&c->blob, st, 3, S, m) : store__error(s, rc);
    if (ret == 0) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            ret = store__error(s, rc);
        } else if (sqlite3_changes64(s->db) == 1) {
            /* New playlist: every member is a new membership. */
            *inserted = 1;
            c->new_playlists++;
            c->memberships += (int64_t)m;
            c->stored += (int64_t)m;
        }
    }
    sqlite3_reset(st);
    return ret;
}

/* Reads the stored key and set of batch playlist p, which exists. *old is
 * the caller's to free. */
static int commit_playlist_read(struct commit_state *c, uint32_t p, sqlite3_int64 *key,
                                uint32_t **old, size_t *n_old)
{
    const struct batch *b = c->b;
    int ret =
        store__playlist_read(c->s, b->playlists.str[p], (int)b->playlists.len[p], key, old, n_old);

    return ret == -ENOENT ? -EIO : ret;
}

/* Merges the stored set old (n_old keys) with S = c->set into c->merged
 * and counts: a key of both sets is a membership npl counted as new (one
 * correction for its batch item); under REPLACE an old key the batch
 * drops is recorded for step 3. Sets *changed (0: nothing to write) and
 * *write, *n_write to the set to store (may be NULL when empty). */
static int commit_playlist_merge(struct commit_state *c, const uint32_t *old, size_t n_old,
                                 int *changed, const uint32_t **write, size_t *n_write)
{
    const uint32_t *S = c->set.v;
    size_t m = c->set.n, nu = 0, common = 0, i = 0, j = 0;
    uint32_t *u;
    int ret = commit__buf_reserve(&c->merged, n_old + m);

    if (ret < 0)
        return ret;
    u = c->merged.v;
    while (i < n_old || j < m) {
        if (j == m || (i < n_old && old[i] < S[j])) {
            if (c->mode == STORE_COMMIT_REPLACE &&
                (ret = commit__buf_push(&c->corrections, old[i])) < 0)
                return ret;
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
        *changed = !(common == m && common == n_old); /* same set: nothing */
        *write = S;
        *n_write = m;
    } else {
        c->memberships += (int64_t)(nu - n_old);
        *changed = nu != n_old; /* nothing new */
        *write = u;
        *n_write = nu;
    }
    return 0;
}

/* Stores set S (m keys) as playlist key's members. */
static int commit_playlist_update(struct commit_state *c, sqlite3_int64 key, const uint32_t *S,
                                  size_t m)
{
    struct store *s = c->s;
    sqlite3_stmt *st = store__stmt(s, STORE__PL_UPDATE);
    int rc, ret;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, key);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)m);
    ret = rc == SQLITE_OK ? commit__blob_bind(&c->blob, st, 3, S, m) : store__error(s, rc);
    if (ret == 0) {
        rc = sqlite3_step(st);
        ret = rc == SQLITE_DONE ? 0 : store__error(s, rc);
    }
    sqlite3_reset(st);
    return ret;
}

/* Writes one batch playlist; S = c->set (sorted, unique), with the batch
 * item index of each key in c->set_idx. A new one is queued for a
 * multi-row INSERT; an unknown one (probing mode) is tried as new first;
 * an existing one is read, merged and written back if it changed. */
static int commit_playlist(struct commit_state *c, uint32_t p)
{
    const uint32_t *write = NULL;
    uint32_t *old = NULL;
    size_t n_old = 0, n_write = 0;
    sqlite3_int64 key = 0;
    int ret, inserted, changed = 0;

    if (c->pl_keys[p] == 0)
        return commit_new_pl_queue(c, p, c->set.v, c->set.n);
    if (c->pl_keys[p] == UINT32_MAX) {
        ret = commit_playlist_try_insert(c, p, c->set.v, c->set.n, &inserted);
        if (ret < 0 || inserted)
            return ret;
    }
    ret = commit_playlist_read(c, p, &key, &old, &n_old);
    if (ret == 0)
        ret = commit_playlist_merge(c, old, n_old, &changed, &write, &n_write);
    if (ret == 0 && changed)
        ret = commit_playlist_update(c, key, write, n_write);
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
        qsort(v, n, sizeof *v, commit__u64_cmp);
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
int commit__playlists(struct commit_state *c, int64_t stored)
{
    const struct batch *b = c->b;
    uint32_t *order = commit__order(&b->playlists);
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
        ret = commit__buf_reserve(&c->set, l->n);
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
