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
 * Files: this one runs the steps; commit_items.c holds steps 1 and 3,
 * commit_playlists.c step 2, commit_util.c the shared helpers, and
 * commit_internal.h the state they share.
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

#include "storage/commit_internal.h"

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
    /* Table sizes pick scans or probes (commit__use_scan). */
    ret = store_counts_get(s, &before);
    if (ret == 0)
        ret = commit__items(&c, before.items);
    if (ret == 0)
        ret = commit__playlists(&c, before.playlists);
    if (ret == 0)
        ret = commit__existing_items(&c);
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
