/*
 * The storage handle: opening <dir>/itemvec.db with the connection settings
 * the rest of storage/ relies on, the prepared-statement cache, error
 * mapping and transaction helpers. Schema changes live in migrate.c; each
 * table family has its own file (commit.c, playlists.c, items.c,
 * snapshot.c, counts.c).
 *
 * Connection settings and why:
 *   journal_mode=WAL    readers (GET, jobs' snapshots) never block the
 *                       writer and the writer never blocks them.
 *   synchronous=FULL    fsync the WAL at every commit: a 200 answer means
 *                       the upload survives power loss (NORMAL would only
 *                       survive a process crash).
 *   foreign_keys=ON     later tables (jobs, models) reference each other.
 *   busy_timeout 10 s   writers from several connections queue on the lock
 *                       instead of failing at once with SQLITE_BUSY.
 *   temp_store=MEMORY   sorter/temp b-trees of big statements stay in RAM.
 *   cache_size 64 MiB   a 3 M-row upload touches ~50 MB of b-tree pages;
 *                       with them in cache a commit writes each page once.
 *   journal_size_limit  64 MiB: a big upload grows the WAL to ~100 MB; a
 *                       checkpoint truncates it back rather than keeping it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_internal.h"

#define STORE_DB_NAME "itemvec.db"
#define STORE_BUSY_TIMEOUT_MS 10000
#define STORE_CACHE_KIB 65536
#define STORE_WAL_LIMIT 67108864
#define STORE_STR2(x) #x
#define STORE_STRINGIFY(x) STORE_STR2(x)

/* The rows of the multi-row INSERTs, comma-separated: anonymous '?'
 * parameters number on, so row r's first parameter is r * columns + 1. */
#define STORE_ROWS4(r) r "," r "," r "," r
#define STORE_ROWS64(r) STORE_ROWS4(STORE_ROWS4(STORE_ROWS4(r)))
_Static_assert(STORE__INSERT_ROWS == 64, "STORE_ROWS64 writes 64 rows");

/* One entry per enum store__stmt_id, in the same order. */
#define MODEL_COLS\
    "SELECT seq, id, job, pmi_job, created_ms, dimensions, items, params, loss, file, crc, active FROM models "

static const char *const store__sql[STORE__STMT_COUNT] = {
    [STORE__BEGIN] = "BEGIN",
    [STORE__BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [STORE__COMMIT] = "COMMIT",
    [STORE__ROLLBACK] = "ROLLBACK",
    [STORE__COUNTERS_GET] = "SELECT playlists, items, memberships FROM counters WHERE id = 1",
    [STORE__COUNTERS_ADD] = "UPDATE counters SET playlists = playlists + ?1, items = items + ?2, "
                            "memberships = memberships + ?3 WHERE id = 1",
    [STORE__ITEM_MAX_KEY] = "SELECT coalesce(max(key), 0) FROM items",
    /* New items only (a new item can be in no stored playlist, so the
     * last value is its exact playlist count), with the key commit.c gave
     * it. No ON CONFLICT: commit.c found every stored item first, so a
     * conflict is a bug and must fail the statement (and the upload). */
    [STORE__ITEM_INSERT_NEW] = "INSERT INTO items(key, id, title, artist, playlists) "
                               "VALUES (?1, ?2, ?3, ?4, ?5)",
    [STORE__ITEM_INSERT_ROWS] = "INSERT INTO items(key, id, title, artist, playlists) "
                                "VALUES " STORE_ROWS64("(?,?,?,?,?)"),
    [STORE__ITEM_KEY_BY_ID] = "SELECT key FROM items WHERE id = ?1",
    /* Existing items: latest title/artist wins, NULL keeps; the WHERE
     * skips the write (and its dirty page) when nothing changes, as on an
     * idempotent re-upload. */
    [STORE__ITEM_UPDATE] = "UPDATE items SET title = coalesce(?2, title), "
                           "artist = coalesce(?3, artist), playlists = playlists + ?4 "
                           "WHERE key = ?1 AND (?4 != 0 OR title IS NOT coalesce(?2, title) "
                           "OR artist IS NOT coalesce(?3, artist))",
    [STORE__ITEM_ADD_PLAYLISTS] = "UPDATE items SET playlists = playlists + ?2 WHERE key = ?1",
    [STORE__ITEM_GET_BY_ID] =
        "SELECT key, id, title, artist, playlists FROM items WHERE id = ?1",
    [STORE__ITEM_GET_BY_KEY] =
        "SELECT key, id, title, artist, playlists FROM items WHERE key = ?1",
    [STORE__ITEM_NAMES] = "SELECT key, id, title, artist FROM items ORDER BY key",
    /* DO NOTHING: commit.c's probing mode tries the insert first and
     * learns from sqlite3_changes whether the playlist existed. */
    [STORE__PL_INSERT_NEW] = "INSERT INTO playlists(id, n_items, items) VALUES (?1, ?2, ?3) "
                             "ON CONFLICT(id) DO NOTHING",
    /* Playlists known to be new; the key is the next rowid, row by row, so
     * they get keys in the order of the rows. A conflict fails it. */
    [STORE__PL_INSERT_ROWS] = "INSERT INTO playlists(id, n_items, items) "
                              "VALUES " STORE_ROWS64("(?,?,?)"),
    [STORE__PL_GET_BY_ID] = "SELECT key, n_items, items FROM playlists WHERE id = ?1",
    [STORE__PL_SIZE_BY_ID] = "SELECT key, n_items FROM playlists WHERE id = ?1",
    [STORE__PL_UPDATE] = "UPDATE playlists SET n_items = ?2, items = ?3 WHERE key = ?1",
    [STORE__PL_DELETE] = "DELETE FROM playlists WHERE key = ?1",
    [STORE__PL_LIST] =
        "SELECT key, id, n_items FROM playlists WHERE key > ?1 ORDER BY key LIMIT ?2",
    [STORE__PL_ALL_ITEMS] =
        "SELECT n_items, items FROM playlists WHERE n_items > 0 ORDER BY key",
    [STORE__CHECK_ITEMS] = "SELECT key, playlists FROM items ORDER BY key",
    [STORE__CHECK_PLAYLISTS] = "SELECT n_items, items FROM playlists ORDER BY key",
    /* jobs (storage/jobs.c); the columns of GET and LIST match row_read() */
    [STORE__JOB_INSERT] = "INSERT INTO jobs(seq, id, state, progress, result, error, started_ms, "
                          "finished_ms, attempts, type, params, created_ms) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    /* terminal states never change, even if a caller tried */
    [STORE__JOB_UPDATE] = "UPDATE jobs SET state = ?3, progress = ?4, result = ?5, error = ?6, "
                          "started_ms = ?7, finished_ms = ?8, attempts = ?9 WHERE id = ?2 "
                          "AND state NOT IN ('succeeded', 'failed', 'cancelled')",
    [STORE__JOB_GET] = "SELECT seq, id, type, state, params, progress, result, error, created_ms, "
                       "started_ms, finished_ms, attempts FROM jobs WHERE id = ?1",
    [STORE__JOB_LIST] = "SELECT seq, id, type, state, params, progress, result, error, "
                        "created_ms, started_ms, finished_ms, attempts FROM jobs "
                        "WHERE seq < ?1 AND (?2 IS NULL OR state = ?2) "
                        "AND (?3 IS NULL OR type = ?3) ORDER BY seq DESC LIMIT ?4",
    [STORE__JOB_MAX_SEQ] = "SELECT max(seq) FROM jobs",
    [STORE__JOB_LATEST] =
        "SELECT id FROM jobs WHERE type = ?1 AND state = ?2 ORDER BY seq DESC LIMIT 1",
    [STORE__JOB_DELETE] = "DELETE FROM jobs WHERE id = ?1",
    /* models (storage/models.c); SELECT columns match its row_read() */
    [STORE__MODEL_INSERT] = "INSERT INTO models(seq, id, job, pmi_job, created_ms, dimensions, "
                            "items, params, loss, file, crc, active) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [STORE__MODEL_DEACTIVATE_ALL] = "UPDATE models SET active = 0 WHERE active = 1",
    [STORE__MODEL_SET_ACTIVE] = "UPDATE models SET active = 1 WHERE id = ?1",
    [STORE__MODEL_GET] = MODEL_COLS "WHERE id = ?1",
    [STORE__MODEL_ACTIVE] = MODEL_COLS "WHERE active = 1",
    [STORE__MODEL_LIST] = MODEL_COLS "WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
    [STORE__MODEL_DELETE] = "DELETE FROM models WHERE id = ?1",
    /* item search (storage/items_search.c): ?1 the prefix, ?2 the prefix
     * followed by a 0xFF byte (above any UTF-8 byte), so the range
     * [?1, ?2) under NOCASE holds exactly the values starting with the
     * prefix; (?3, ?4) the position to resume after; ?5 the rows to read;
     * ?6 the field. One range scan of item_search's key (migration v4). */
    [STORE__ITEM_SEARCH] =
        "SELECT i.key, i.id, i.title, i.artist, i.playlists FROM item_search s "
        "JOIN items i ON i.key = s.key WHERE s.field = ?6 AND s.value >= ?1 AND s.value < ?2 "
        "AND (s.value, s.key) > (?3, ?4) ORDER BY s.value, s.key LIMIT ?5",
    /* ids by a prefix without ASCII letters, where case does not matter:
     * the unique index on items.id, so item_search holds only the ids that
     * have letters (a third of its rows fewer for numeric ids) */
    [STORE__ITEM_SEARCH_ID_BINARY] =
        "SELECT key, id, title, artist, playlists FROM items WHERE id >= ?1 AND id < ?2 "
        "AND (id, key) > (?3, ?4) ORDER BY id, key LIMIT ?5",
    [STORE__ITEM_SEARCH_ALL] = "SELECT key, id, title, artist, playlists FROM items "
                               "WHERE key > ?4 ORDER BY key LIMIT ?5",
    [STORE__ITEM_SEARCH_STALE] =
        "SELECT (SELECT coalesce(max(key), 0) FROM items) > indexed_key "
        "OR EXISTS (SELECT 1 FROM item_search_dirty) FROM item_search_state WHERE id = 1",
};

int store__error(struct store *s, int rc)
{
    int prim = rc & 0xff;

    if (s && s->db)
        snprintf(s->errmsg, sizeof s->errmsg, "%s", sqlite3_errmsg(s->db));
    switch (prim) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    default:
        return -EIO;
    }
}

sqlite3_stmt *store__stmt(struct store *s, enum store__stmt_id id)
{
    sqlite3_stmt *st = s->stmt[id];

    if (!st) {
        int rc = sqlite3_prepare_v3(s->db, store__sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st,
                                    NULL);
        if (rc != SQLITE_OK) {
            store__error(s, rc);
            return NULL;
        }
        s->stmt[id] = st;
        return st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

int store__exec_stmt(struct store *s, enum store__stmt_id id)
{
    sqlite3_stmt *st = store__stmt(s, id);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store__error(s, rc);
    return 0;
}

int store__begin_write(struct store *s)
{
    return store__exec_stmt(s, STORE__BEGIN_IMMEDIATE);
}

int store__begin_read(struct store *s)
{
    return store__exec_stmt(s, STORE__BEGIN);
}

int store__commit(struct store *s)
{
    return store__exec_stmt(s, STORE__COMMIT);
}

void store__rollback(struct store *s)
{
    /* SQLite rolls back by itself on some errors (FULL, IOERR, NOMEM); a
     * ROLLBACK then would fail with "no transaction is active". */
    if (!sqlite3_get_autocommit(s->db)) {
        char saved[sizeof s->errmsg];
        /* Keep the message of the error that caused the rollback. */
        memcpy(saved, s->errmsg, sizeof saved);
        store__exec_stmt(s, STORE__ROLLBACK);
        memcpy(s->errmsg, saved, sizeof saved);
    }
}

int store__blob_keys(struct store *s, sqlite3_stmt *st, int col_n, int col, uint32_t **out,
                     size_t *n_out)
{
    sqlite3_int64 n = sqlite3_column_int64(st, col_n);
    const void *blob = sqlite3_column_blob(st, col);
    int bytes = sqlite3_column_bytes(st, col);
    uint32_t *keys = NULL;

    *out = NULL;
    *n_out = 0;
    if (n < 0 || (sqlite3_int64)bytes != n * 4 || (n > 0 && !blob)) {
        snprintf(s->errmsg, sizeof s->errmsg,
                 "malformed playlist row: n_items %lld, blob of %d bytes", (long long)n, bytes);
        return -EIO;
    }
    if (n > 0) {
        keys = malloc((size_t)n * sizeof *keys);
        if (!keys)
            return -ENOMEM;
        store__keys_decode(keys, blob, (size_t)n);
    }
    *out = keys;
    *n_out = (size_t)n;
    return 0;
}

static int store_pragma_exec(struct store *s, const char *sql, struct store_error *err)
{
    /* Fixed pragma texts from this file only: no user values in them. */
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        err->code = store__error(s, rc);
        snprintf(err->message, sizeof err->message, "%.60s: %.180s", sql, msg ? msg : "error");
        sqlite3_free(msg);
        return err->code;
    }
    return 0;
}

static int store_wal_enable(struct store *s, struct store_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc, ret = 0;
    const unsigned char *mode;

    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = store__error(s, rc);
        snprintf(err->message, sizeof err->message, "cannot enable WAL: %.200s", s->errmsg);
        goto out;
    }
    mode = sqlite3_column_text(st, 0);
    /* journal_mode answers the mode in effect; a file system without shared
     * memory support (some network mounts) leaves it at "delete". */
    if (!mode || strcmp((const char *)mode, "wal") != 0) {
        ret = -EIO;
        snprintf(err->message, sizeof err->message,
                 "cannot enable WAL journal mode (got '%s'); is the state dir on a local file "
                 "system?",
                 mode ? (const char *)mode : "?");
    }
out:
    sqlite3_finalize(st);
    err->code = ret;
    return ret;
}

static pthread_once_t store_once = PTHREAD_ONCE_INIT;

/* Process-wide SQLite settings, made before SQLite initialises (it does on
 * the first sqlite3_open_v2, i.e. the first store_open of the process).
 * MEMSTATUS off: SQLite otherwise takes a global mutex around every malloc
 * and free to keep statistics we never read (nothing here calls
 * sqlite3_memory_used or sets a heap limit); the inserts of a 3 M-row
 * commit took ~10 % less CPU without it (bench_store: new items 0.41 ->
 * 0.35 s, new playlists 0.24 -> 0.21 s, best of 8). If something else in
 * the process initialised SQLite first, sqlite3_config answers
 * SQLITE_MISUSE and the defaults stay: slower, not wrong, so the answer is
 * ignored. pthread_once: sqlite3_config must not race other SQLite calls,
 * and every connection of ours is opened here, after it. */
static void store_global_init(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct store *store_open(const char *dir, struct store_error *err)
{
    struct store_error dummy;
    struct store *s = NULL;
    char *path = NULL;
    int rc;

    if (!err)
        err = &dummy;
    err->code = 0;
    err->message[0] = '\0';
    if (!dir || !*dir) {
        err->code = -EINVAL;
        snprintf(err->message, sizeof err->message, "no state directory given");
        return NULL;
    }
    pthread_once(&store_once, store_global_init);
    s = calloc(1, sizeof *s);
    if (!s || asprintf(&path, "%s/%s", dir, STORE_DB_NAME) < 0) {
        path = NULL;
        err->code = -ENOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
        goto fail;
    }
    /* FULLMUTEX is not needed: a handle is used by one thread at a time. */
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err->code = store__error(s, rc);
        snprintf(err->message, sizeof err->message, "cannot open %.120s: %.100s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* Set before anything else touches the file so that opening while
     * another process migrates waits instead of failing. */
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

    if (store_wal_enable(s, err) < 0)
        goto fail;
    if (store_pragma_exec(s, "PRAGMA synchronous=FULL", err) < 0 ||
        store_pragma_exec(s, "PRAGMA foreign_keys=ON", err) < 0 ||
        store_pragma_exec(s, "PRAGMA temp_store=MEMORY", err) < 0 ||
        store_pragma_exec(s, "PRAGMA journal_size_limit=" STORE_STRINGIFY(STORE_WAL_LIMIT), err) <
            0 ||
        store_pragma_exec(s, "PRAGMA cache_size=-" STORE_STRINGIFY(STORE_CACHE_KIB), err) < 0)
        goto fail;
    if (store__migrate(s, err) < 0)
        goto fail;
    free(path);
    return s;

fail:
    if (err->code == 0)
        err->code = -EIO;
    free(path);
    store_close(s);
    return NULL;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < STORE__STMT_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    /* The last connection to close checkpoints the WAL and removes it. */
    sqlite3_close_v2(s->db);
    free(s);
}

int store_schema_version(struct store *s)
{
    return s ? s->schema_version : -EINVAL;
}

const char *store_errmsg(struct store *s)
{
    if (!s)
        return "no store";
    return s->errmsg[0] ? s->errmsg : "not an error";
}
