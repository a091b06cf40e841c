/*
 * Storage: the only module that talks to SQLite (the .c files in storage/ are the only
 * files that include sqlite3.h). One database file, <state_dir>/itemvec.db,
 * in WAL mode with synchronous=FULL so a commit that returned survives
 * kill -9 and power loss. Schema changes are versioned migrations keyed on
 * PRAGMA user_version (storage/migrate.c).
 *
 * Data model: items and playlists have opaque string ids (1..256 bytes)
 * mapped to dense integer keys (items 1..n, never reused or deleted, as the
 * math needs dense indices). A playlist's memberships are stored as one
 * sorted array of item keys (a set), so an upload of 3 M rows writes
 * ~150 k playlist rows rather than 3 M membership rows.
 *
 * Threading: a struct store is one SQLite connection, used by one thread at
 * a time. Open one per thread that needs it (the loop thread, the writer,
 * each job). Writers serialise on SQLite's lock (busy_timeout); the daemon
 * additionally funnels writes through one writer so readers never wait.
 *
 * Errors: functions return 0 or a negative errno: -ENOENT (no such row),
 * -EINVAL (bad argument), -ENOMEM, -EIO (SQLite error; the message is
 * available from store_errmsg), -EBUSY (locked beyond the timeout).
 */
#ifndef ITEMVEC_STORAGE_STORE_H
#define ITEMVEC_STORAGE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct batch;

struct store_error {
    int code; /* negative errno */
    char message[256];
};

/* Opens (creating the file if needed) <dir>/itemvec.db and migrates it to
 * the current schema. dir must exist. Returns NULL and fills err on
 * failure (e.g. a database from a newer itemvec: -EPROTO). The caller owns
 * the handle and closes it with store_close. */
struct store *store_open(const char *dir, struct store_error *err);

/* Closes the connection (checkpointing the WAL when it is the last one).
 * NULL is a no-op. */
void store_close(struct store *s);

/* Schema version the code migrates to, and the one the file has. */
int store_schema_version_latest(void);
int store_schema_version(struct store *s);

/* Message of the last SQLite error on this handle (borrowed). */
const char *store_errmsg(struct store *s);

/* --- counts (O(1): maintained counters, not COUNT(*)) --- */
struct store_counts {
    int64_t playlists;
    int64_t items;
    int64_t memberships;
};
int store_counts_get(struct store *s, struct store_counts *out);

/* --- writes --- */
enum store_commit_mode {
    STORE_COMMIT_MERGE,   /* POST /v1/playlists: add rows to the stored sets */
    STORE_COMMIT_REPLACE, /* PUT /v1/playlists/{id}: each batch playlist's set
                             becomes exactly the batch's set */
};

struct store_commit_result {
    int64_t playlists;      /* distinct playlists in the batch */
    int64_t rows_stored;    /* memberships that were not stored before */
    int64_t rows_duplicate; /* rows already stored, or repeated in the batch */
    int64_t rows_removed;   /* REPLACE only: stored memberships dropped (else 0) */
};

/* Applies a batch (storage/batch.h) in ONE transaction: all or nothing.
 * Item titles/artists given in the batch overwrite the stored ones (latest
 * wins); NULL ones leave them. Counters are updated in the same
 * transaction. Returns 0 or a negative errno (nothing stored then; the
 * handle stays usable). Besides the codes above: -ENOSPC (disk full),
 * -EOVERFLOW (more than 2^32-1 items).
 *
 * Counts, for both modes: rows_stored = memberships the playlists did not
 * have before; rows_duplicate = batch_rows - rows_stored (rows already
 * stored plus rows repeated inside the batch). REPLACE also reports
 * rows_removed = memberships the playlists had and the batch left out; a
 * REPLACE with an empty set (batch_add_playlist only) creates or empties
 * the playlist. The batch is borrowed; the commit only applies its staged
 * rows (batch_flush) and does not otherwise modify it. */
int store_batch_commit(struct store *s, struct batch *b, enum store_commit_mode mode,
                       struct store_commit_result *out);

/* Deletes a playlist and its memberships, in one transaction that also
 * decrements the playlist counts of its items and the counters. Items
 * themselves stay (their keys are never reused). -ENOENT if absent. */
int store_playlist_delete(struct store *s, const char *id);

/* --- reads --- */
struct store_item {
    int64_t key;
    char *id;
    char *title;  /* NULL when never given */
    char *artist; /* NULL when never given */
    int64_t playlists; /* number of playlists containing it */
};
/* Fills out (caller frees with store_item_deinit). -ENOENT if absent. */
int store_item_get(struct store *s, const char *id, struct store_item *out);
void store_item_deinit(struct store_item *it);

/* --- item search (GET /v1/items?q=PREFIX; storage/items_search.c) --- */

/* The phases of a search, in the order results come: items whose id
 * starts with the prefix (by id), then those whose title does (by title),
 * then those whose artist does (by artist); an item is listed once, in the
 * first phase it matches. STORE_SEARCH_ALL lists every item by key (an
 * empty prefix). Within a phase the order is (value folded, key). */
enum store_search_field {
    STORE_SEARCH_ID,
    STORE_SEARCH_TITLE,
    STORE_SEARCH_ARTIST,
    STORE_SEARCH_ALL,
    STORE_SEARCH_DONE,
};

/* Where a search resumes: after the item `key` in phase `field` (key 0:
 * from the start of the phase). */
struct store_search_pos {
    enum store_search_field field;
    int64_t key;
};

/* Longest prefix accepted, in bytes (an id is at most 256). */
#define STORE_SEARCH_PREFIX_MAX 256

/* Called for each item found; it is borrowed for the call only. A non-zero
 * return stops the search and is returned. cb must not use the store. */
typedef int (*store_item_cb)(void *userdata, const struct store_item *it);

/* The position a search for prefix starts at: {ID, 0}, or {ALL, 0} for ""
 * (every item). */
void store_items_search_start(const char *prefix, struct store_search_pos *pos);

/* Whether the search table lags the items (new items, or items renamed
 * since the last store_items_search_sync): 1 yes, 0 no, or a negative
 * errno. Two index lookups; for the loop thread before each search. */
int store_items_search_stale(struct store *s);

/* Brings the search table up to date with the items, in one write
 * transaction (for the writer): O(new and renamed items). 0 or a negative
 * errno (nothing changed then). */
int store_items_search_sync(struct store *s);

/* Finds up to limit (1..1000) items whose id, title or artist starts with
 * prefix, case-insensitively for ASCII letters (SQLite's NOCASE; other
 * characters must match exactly), resuming at *pos, and calls cb for each,
 * in one read transaction. It sees the items as of the last
 * store_items_search_sync (sync first when store_items_search_stale). The work is bounded: at most 4 * limit + 64
 * index rows are read per call, so a page may hold fewer than limit items
 * (even none) while more remain. On return *pos is where the next page
 * starts, STORE_SEARCH_DONE when nothing is left. A title or artist changed
 * between pages may move its item across the cursor (listed twice or not
 * at all), as with any keyset pagination over mutable values.
 * Returns 0; cb's non-zero value (then *pos is unchanged); -EINVAL for a
 * bad argument or a position whose item does not exist or whose phase does
 * not go with the prefix (a tampered token); or another negative errno. */
int store_items_search(struct store *s, const char *prefix, struct store_search_pos *pos,
                       int limit, store_item_cb cb, void *userdata);

struct store_playlist {
    int64_t key;
    char *id;
    size_t n_items;
    struct store_item *items; /* ordered by item key: items first stored by
                                 earlier uploads first; one upload's new
                                 items in id (byte) order */
    size_t total;       /* items in the whole playlist */
    int64_t next_after; /* more items follow: the key of the last one in
                           items (pass it as after_key); 0 on the last page */
};

/* Reads one page of playlist id: its items with item key > after_key (0:
 * from the start), in key order, at most limit (>= 1) of them, plus the
 * playlist's key and total size, in one read transaction. Only the page's
 * part of the membership blob is read (incremental blob I/O: a binary
 * search of ~log2(total) 4-byte reads, then the page), and one item lookup
 * per item, so the cost is O(limit + log total) whatever the playlist's
 * size. Fills out (caller frees with store_playlist_deinit). Returns 0,
 * -ENOENT when there is no such playlist, -EINVAL (NULL arguments, limit 0),
 * -EIO on a malformed row, -ENOMEM, or a SQLite error. */
int store_playlist_page(struct store *s, const char *id, int64_t after_key, size_t limit,
                        struct store_playlist *out);

/* The whole playlist as one page (store_playlist_page with no limit): for
 * tests and tools; HTTP reads pages. */
int store_playlist_get(struct store *s, const char *id, struct store_playlist *out);
void store_playlist_deinit(struct store_playlist *pl);

/* Calls cb for up to limit playlists with key > after_key, by key. cb gets
 * borrowed strings; a non-zero return stops the listing and is returned.
 * cb must not call store functions on s (the listing statement is live).
 * The next page starts after the last key seen; -EINVAL if limit < 0. */
typedef int (*store_playlist_list_cb)(void *userdata, int64_t key, const char *id,
                                      int64_t n_items);
int store_playlists_list(struct store *s, int64_t after_key, int limit,
                         store_playlist_list_cb cb, void *userdata);

/* Recounts everything by full scans, in one read transaction, and checks
 * the invariants the writes maintain: counters == COUNT(*)/SUM(n_items),
 * every blob sorted, unique and within 1..max item key, and each item's
 * playlists == the number of blobs holding it. Fills out with the recounted
 * numbers (may be NULL). 0 when consistent, -EUCLEAN when not (message in
 * store_errmsg), or another negative errno. O(database size): for tests,
 * an operator's check, never a request path. */
int store_integrity_check(struct store *s, struct store_counts *out);

/* --- WAL checkpoints --- */

/* Turns SQLite's automatic checkpoint (at commit, by the committing
 * connection) on (pages > 0) or off (0) for this handle. The writer turns
 * it off and checkpoints when idle instead, so a big commit's reply does
 * not wait for copying the WAL into the database. */
int store_autocheckpoint(struct store *s, int pages);

/* Copies what it can from the WAL into the database without blocking
 * readers or writers (PRAGMA wal_checkpoint(PASSIVE)). */
int store_checkpoint(struct store *s);

/* --- backup --- */

/* Writes a consistent, compact copy of the database to dest_path (which
 * must not exist) while other connections keep reading and writing.
 * Use a handle of its own (it runs a long read transaction). Returns 0 or
 * a negative errno (-EIO with the message in store_errmsg). */
int store_backup(struct store *s, const char *dest_path);

/* --- snapshot for jobs --- */

/* All memberships as groups in CSR form, read in one read transaction (a
 * consistent snapshot even while uploads commit). Group g holds item keys
 * items[offsets[g] .. offsets[g+1]-1], sorted and unique. Item keys are in
 * 1..max_item_key. Groups are the non-empty playlists in playlist-key order
 * (empty playlists are left out). max_item_key is the largest item key in
 * the snapshot (items in no playlist included). Free with
 * store_groups_deinit (safe on a zeroed struct; zeroes it). */
struct store_groups {
    size_t n_groups;
    uint64_t *offsets; /* n_groups + 1 */
    uint32_t *items;
    uint32_t max_item_key;
    uint64_t *id_hash; /* store_groups_load_hashed only: [n_groups], else NULL */
};
int store_groups_load(struct store *s, struct store_groups *out);

/* Like store_groups_load, and also a seeded 64-bit hash of each group's
 * playlist id (for deterministic hold-out splits that do not depend on
 * storage order or keys). */
int store_groups_load_hashed(struct store *s, uint64_t seed, struct store_groups *out);
void store_groups_deinit(struct store_groups *g);

/* Item ids (and titles/artists) for keys 1..max_key, indexed by key
 * (index 0 unused, NULL). Free with store_item_names_deinit. Used by jobs to
 * label results and by the model loader. */
struct store_item_names {
    uint32_t max_key;
    char **id;     /* [max_key + 1] */
    char **title;  /* [max_key + 1], entries may be NULL */
    char **artist; /* [max_key + 1], entries may be NULL */
    char *strings; /* private: one block holding all the strings above */
};
int store_item_names_load(struct store *s, struct store_item_names *out);
void store_item_names_deinit(struct store_item_names *n);

#endif
