/*
 * Private to storage/: the layout of struct store, the prepared-statement
 * cache and small helpers shared by the files of the module (store.c,
 * migrate.c, commit.c, playlists.c, items.c, snapshot.c, counts.c). Nothing
 * outside storage/ includes this header, so SQLite types stay inside.
 *
 * Statements: every SQL text the module runs with values is listed once in
 * the store__sql table (store.c) and prepared lazily, once per handle, with
 * SQLITE_PREPARE_PERSISTENT. store__stmt() hands one out reset and with
 * cleared bindings; the user must sqlite3_reset() it when done (an
 * unreset SELECT keeps its read transaction open and blocks checkpoints).
 */
#ifndef ITEMVEC_STORAGE_STORE_INTERNAL_H
#define ITEMVEC_STORAGE_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"

enum store__stmt_id {
    STORE__BEGIN,           /* deferred: read snapshots */
    STORE__BEGIN_IMMEDIATE, /* writes: take the write lock up front */
    STORE__COMMIT,
    STORE__ROLLBACK,
    STORE__COUNTERS_GET,
    STORE__COUNTERS_ADD,
    STORE__ITEM_MAX_KEY,
    STORE__ITEM_INSERT_NEW,
    STORE__ITEM_INSERT_ROWS, /* STORE__INSERT_ROWS new items */
    STORE__ITEM_KEY_BY_ID,
    STORE__ITEM_UPDATE,
    STORE__ITEM_ADD_PLAYLISTS,
    STORE__ITEM_GET_BY_ID,
    STORE__ITEM_GET_BY_KEY,
    STORE__ITEM_NAMES,
    STORE__PL_INSERT_NEW,
    STORE__PL_INSERT_ROWS, /* STORE__INSERT_ROWS new playlists */
    STORE__PL_GET_BY_ID,
    STORE__PL_SIZE_BY_ID, /* key and n_items, no blob: paged reads open the blob */
    STORE__PL_UPDATE,
    STORE__PL_DELETE,
    STORE__PL_LIST,
    STORE__PL_ALL_ITEMS,
    STORE__CHECK_ITEMS,
    STORE__CHECK_PLAYLISTS,
    STORE__JOB_INSERT,
    STORE__JOB_UPDATE,
    STORE__JOB_GET,
    STORE__JOB_LIST,
    STORE__JOB_MAX_SEQ,
    STORE__JOB_LATEST,
    STORE__JOB_DELETE,
    STORE__MODEL_INSERT,
    STORE__MODEL_DEACTIVATE_ALL,
    STORE__MODEL_SET_ACTIVE,
    STORE__MODEL_GET,
    STORE__MODEL_ACTIVE,
    STORE__MODEL_LIST,
    STORE__MODEL_DELETE,
    STORE__ITEM_SEARCH, /* items_search.c */
    STORE__ITEM_SEARCH_ID_BINARY,
    STORE__ITEM_SEARCH_ALL,
    STORE__ITEM_SEARCH_STALE,
    STORE__STMT_COUNT
};

/* Rows per multi-row INSERT of new items or new playlists (commit.c): a
 * statement step per row was over half the cost of inserting them (the
 * top of commit.c has the numbers). The SQL texts in store.c repeat their
 * row this many times. */
#define STORE__INSERT_ROWS 64

struct store {
    sqlite3 *db;
    int schema_version;
    sqlite3_stmt *stmt[STORE__STMT_COUNT];
    char errmsg[256]; /* last error not coming from sqlite3_errmsg */
};

/* Returns the cached statement id, prepared on first use, reset and with
 * bindings cleared; NULL on error (message in store_errmsg). */
sqlite3_stmt *store__stmt(struct store *s, enum store__stmt_id id);

/* Maps a SQLite result code to a negative errno and remembers the message:
 * BUSY/LOCKED -> -EBUSY, NOMEM -> -ENOMEM, FULL -> -ENOSPC, else -EIO. */
int store__error(struct store *s, int rc);

/* Runs a statement that returns no rows (BEGIN, COMMIT, ...). */
int store__exec_stmt(struct store *s, enum store__stmt_id id);

/* Transactions. store__rollback is safe to call in any state (it is a no-op
 * when SQLite already rolled back, e.g. after SQLITE_FULL). */
int store__begin_write(struct store *s);
int store__begin_read(struct store *s);
int store__commit(struct store *s);
void store__rollback(struct store *s);

/* Migrates the open database to the latest schema (migrate.c). Fills err on
 * failure; a file from a newer itemvec gives -EPROTO. */
int store__migrate(struct store *s, struct store_error *err);
int store__schema_version_read(struct store *s, int *out);

/* Playlist blobs: n_items uint32 item keys, little-endian, sorted, unique.
 * On little-endian hosts these are plain memcpy. */
static inline void store__keys_encode(void *dst, const uint32_t *keys, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n > 0)
        memcpy(dst, keys, n * sizeof(uint32_t));
#else
    unsigned char *p = dst;
    for (size_t i = 0; i < n; i++) {
        p[4 * i + 0] = (unsigned char)(keys[i]);
        p[4 * i + 1] = (unsigned char)(keys[i] >> 8);
        p[4 * i + 2] = (unsigned char)(keys[i] >> 16);
        p[4 * i + 3] = (unsigned char)(keys[i] >> 24);
    }
#endif
}

static inline void store__keys_decode(uint32_t *keys, const void *src, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n > 0)
        memcpy(keys, src, n * sizeof(uint32_t));
#else
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++)
        keys[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                  (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
#endif
}

/* Reads a playlist row's blob (column col) into a malloc'ed key array after
 * checking its length against n_items (column col_n). On success *out is
 * the array (NULL when n is 0) and *n_out its length. -EIO on a malformed
 * blob, -ENOMEM. */
int store__blob_keys(struct store *s, sqlite3_stmt *st, int col_n, int col, uint32_t **out,
                     size_t *n_out);

/* Reads the stored playlist id (id_len bytes, or -1 for NUL-terminated;
 * borrowed) in the caller's transaction: its key and its item keys (*keys malloc'ed, the caller's to
 * free; NULL when *n is 0). Returns 0, -ENOENT when no such playlist,
 * -EIO on a malformed row or a missing statement, -ENOMEM, or a SQLite
 * error (store__error). playlists.c (get, delete) and the commit use it. */
int store__playlist_read(struct store *s, const char *id, int id_len, sqlite3_int64 *key,
                         uint32_t **keys, size_t *n);

/* Fills it from a row (key, id, title, artist, playlists) of
 * STORE__ITEM_GET_BY_*; strings are malloc'ed (-ENOMEM; the caller clears). */
int store__item_fill(sqlite3_stmt *st, struct store_item *it);

/* Binds s as text (borrowed until the statement is reset); NULL binds SQL
 * NULL. */
static inline void store__bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* A malloc'd copy of text column i (caller frees), NULL for SQL NULL. */
static inline char *store__column_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

/* The largest item key (0 when there are no items), read in the caller's
 * transaction. Returns 0 or a negative errno. */
int store__max_item_key(struct store *s, sqlite3_int64 *out);

#endif
