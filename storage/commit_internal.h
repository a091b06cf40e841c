/*
 * Private to storage/commit*.c: the state of one store_batch_commit and the
 * helpers its steps share. commit.c runs the steps (its top comment is the
 * algorithm); commit_items.c is steps 1 and 3 (items), commit_playlists.c
 * step 2 (playlists), commit_util.c the buffers, binding and ordering
 * helpers. Not for use outside storage/.
 */
#ifndef ITEMVEC_STORAGE_COMMIT_INTERNAL_H
#define ITEMVEC_STORAGE_COMMIT_INTERNAL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "storage/batch_internal.h"
#include "storage/store_internal.h"

struct commit_buf {
    uint32_t *v;
    size_t n, cap;
};

static inline int commit__buf_reserve(struct commit_buf *b, size_t n)
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

static inline int commit__buf_push(struct commit_buf *b, uint32_t x)
{
    if (b->n == b->cap && commit__buf_reserve(b, b->n + 1) < 0)
        return -ENOMEM;
    b->v[b->n++] = x;
    return 0;
}

struct commit_u64 {
    uint64_t *v;
    size_t n, cap;
};

static inline int commit__u64_push(struct commit_u64 *b, uint64_t x)
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

/* Bytes buffer for blob parameters. */
struct commit_blob {
    unsigned char *p;
    size_t cap;
};

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
    uint32_t *keys;       /* batch item index -> item key (0 = not resolved yet) */
    uint32_t *npl;        /* batch item index -> distinct batch playlists */
    uint32_t *corr;       /* batch item index -> stored playlists of the batch
                             that already held it (npl counted them as new) */
    unsigned char *flags; /* batch item index -> COMMIT_* */
    uint32_t *pl_keys;    /* batch playlist index -> stored key, 0 = new */
    uint32_t *set_idx;    /* batch item index of each set.v[] key */
    size_t set_cap;       /* entries allocated in set_idx */
    struct commit_buf set, merged, corrections;
    struct commit_u64 existing; /* key << 32 | batch index of items that existed */
    struct commit_blob blob;
    struct commit_new_pl new_pl;
    int64_t new_items, new_playlists, memberships, stored, removed;
};

/* Binds v (len bytes, borrowed until the statement is reset) as text, or
 * NULL when v is. */
static inline int commit__bind_opt_text(sqlite3_stmt *st, int col, const char *v, uint32_t len)
{
    if (!v)
        return sqlite3_bind_null(st, col);
    return sqlite3_bind_text(st, col, v, (int)len, SQLITE_STATIC);
}

/* Whether to find a batch's stored rows by scanning the whole table (and
 * looking each stored id up in the batch's hash table) rather than by one
 * index probe per batch string. A probe costs a b-tree descent and a
 * statement step, several times a scanned row, and a failed INSERT then a
 * SELECT (what a probe-less insert of an existing item costs) twice that:
 * scan when the table is at most 8 times the batch. */
static inline int commit__use_scan(int64_t stored, uint32_t batch_n)
{
    return stored <= (int64_t)batch_n * 8;
}

/* commit_util.c */
/* qsort comparators of uint32_t / uint64_t. */
int commit__u32_cmp(const void *a, const void *b);
int commit__u64_cmp(const void *a, const void *b);

/* Binds keys[0..n-1] as a playlist blob (bl is the reused buffer). */
int commit__blob_bind(struct commit_blob *bl, sqlite3_stmt *st, int col, const uint32_t *keys,
                      size_t n);

/* Binds batch text idx1 (texts index + 1) of t, or NULL when 0. */
int commit__bind_text_or_null(sqlite3_stmt *st, int col, const struct batch__strtab *t,
                              uint32_t idx1);

/* Returns the indices of t's strings in the order SQLite's BINARY collation
 * sorts them (memcmp, then length). NULL on ENOMEM. */
uint32_t *commit__order(const struct batch__strtab *t);

/* Runs an INSERT of n rows, bound, and resets it. The statements have no
 * ON CONFLICT clause, so a conflict is already an error; the count check
 * guards the invariant anyway (what = "item" or "playlist", first_id the
 * id of the first row, for the message). */
int commit__insert_step(struct store *s, sqlite3_stmt *st, size_t n, const char *what,
                        const char *first_id);

/* Step 1 (commit_items.c): finds the batch's stored items, inserts the new
 * ones with their keys; queues the existing ones for step 3. */
int commit__items(struct commit_state *c, int64_t stored);

/* Step 2 (commit_playlists.c): writes every batch playlist. */
int commit__playlists(struct commit_state *c, int64_t stored);

/* Step 3 (commit_items.c): updates the existing items touched. */
int commit__existing_items(struct commit_state *c);

#endif
