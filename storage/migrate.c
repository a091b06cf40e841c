/*
 * Schema migrations, keyed on PRAGMA user_version.
 *
 * The file's user_version is the number of the last migration applied (0 =
 * empty file). store_open runs every migration above it, in order, each in
 * its own BEGIN IMMEDIATE transaction that also sets user_version, so a
 * crash leaves the file at a whole version and the next open continues.
 * Two processes opening a fresh file at once are safe: the version is
 * re-read inside the write transaction and a migration already applied by
 * the other one is skipped. A file whose version is above the latest known
 * here comes from a newer itemvec and is refused with -EPROTO (never
 * "downgraded"), as is a SQLite file that is not an itemvec database.
 *
 * HOW TO ADD A MIGRATION (e.g. v2: jobs):
 *   append one entry { 2, "jobs", "CREATE TABLE jobs (...); ..." } to
 *   store_migrations[] below. Versions are consecutive; never edit or
 *   reorder an entry that has shipped (files in the field already ran it);
 *   fix mistakes with a new entry. The SQL is run with sqlite3_exec, so one
 *   entry may hold several statements; it must not contain BEGIN/COMMIT or
 *   set user_version (done here). Then add its tables to docs/storage.md.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/store_internal.h"

/* 'IVEC': marks the file as ours, so pointing --state-dir at some other
 * application's SQLite file fails loudly instead of adding tables to it. */
#define STORE_APPLICATION_ID 0x49564543

struct store_migration {
    int version;
    const char *name;
    const char *sql;
};

static const struct store_migration store_migrations[] = {
    {1, "items, playlists, counters",
     /* Items get dense keys 1..n (rowid = max+1; items are never deleted)
      * because the math indexes arrays by them. playlists counts the
      * playlists containing the item, maintained by every write. */
     "CREATE TABLE items ("
     "  key INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE CHECK (length(id) BETWEEN 1 AND 256),"
     "  title TEXT,"
     "  artist TEXT,"
     "  playlists INTEGER NOT NULL DEFAULT 0 CHECK (playlists >= 0)"
     ");"
     /* A playlist's items: sorted unique uint32 little-endian item keys,
      * one row per playlist instead of one per membership (docs/storage.md
      * explains the trade-off). */
     "CREATE TABLE playlists ("
     "  key INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE CHECK (length(id) BETWEEN 1 AND 256),"
     "  n_items INTEGER NOT NULL CHECK (n_items >= 0),"
     "  items BLOB NOT NULL CHECK (length(items) = 4 * n_items)"
     ");"
     /* One row of totals so /v1/info and /metrics are O(1). */
     "CREATE TABLE counters ("
     "  id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  playlists INTEGER NOT NULL,"
     "  items INTEGER NOT NULL,"
     "  memberships INTEGER NOT NULL"
     ");"
     "INSERT INTO counters(id, playlists, items, memberships) VALUES (1, 0, 0, 0);"},
    {2, "jobs",
     /* Job records (storage/jobs.c): params/progress/result/error are JSON
      * text owned by jobs/jobs.c. The index serves listing by state and
      * recovery at start-up. */
     "CREATE TABLE jobs ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  type TEXT NOT NULL,"
     "  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed',"
     "                                       'cancelled')),"
     "  params TEXT NOT NULL DEFAULT '{}',"
     "  progress TEXT,"
     "  result TEXT,"
     "  error TEXT,"
     "  created_ms INTEGER NOT NULL,"
     "  started_ms INTEGER NOT NULL DEFAULT 0,"
     "  finished_ms INTEGER NOT NULL DEFAULT 0,"
     "  attempts INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE INDEX jobs_by_state ON jobs(state, seq);"
     "CREATE INDEX jobs_by_type ON jobs(type, state, seq);"},
    {3, "models",
     /* Trained models (storage/models.c); the embeddings live in a file
      * (storage/model_file.c). The partial unique index allows at most
      * one active model. */
     "CREATE TABLE models ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  job TEXT NOT NULL,"
     "  pmi_job TEXT,"
     "  created_ms INTEGER NOT NULL,"
     "  dimensions INTEGER NOT NULL,"
     "  items INTEGER NOT NULL,"
     "  params TEXT NOT NULL,"
     "  loss TEXT NOT NULL,"
     "  file TEXT NOT NULL,"
     "  crc INTEGER NOT NULL,"
     "  active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))"
     ");"
     "CREATE UNIQUE INDEX models_one_active ON models(active) WHERE active = 1;"},
    {4, "item search",
     /* GET /v1/items?q=PREFIX (storage/items_search.c). Not indexes on
      * items: those would be maintained inside every upload's commit (a
      * fresh 3 M-row upload's commit took ~1.8x as long with three NOCASE
      * indexes). item_search is filled after the fact, by
      * store_items_search_sync, for the items above indexed_key and those
      * the trigger saw renamed (with the values they were indexed under).
      * value is NOCASE: the (field, value, key) key orders a page of one
      * field's prefix range with no sort. field: 0 id (only ids with an
      * ASCII letter), 1 title, 2 artist. */
     "CREATE TABLE item_search ("
     "  field INTEGER NOT NULL,"
     "  value TEXT NOT NULL COLLATE NOCASE,"
     "  key INTEGER NOT NULL,"
     "  PRIMARY KEY (field, value, key)"
     ") WITHOUT ROWID;"
     "CREATE TABLE item_search_state ("
     "  id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  indexed_key INTEGER NOT NULL"
     ");"
     "INSERT INTO item_search_state(id, indexed_key) VALUES (1, 0);"
     "CREATE TABLE item_search_dirty ("
     "  key INTEGER PRIMARY KEY,"
     "  old_title TEXT,"
     "  old_artist TEXT"
     ");"
     /* Only a real change of title or artist: an upload's playlist-count
      * UPDATE names the columns but keeps their values. OR IGNORE keeps
      * the values of the first change, the ones item_search holds. */
     "CREATE TRIGGER item_search_renamed AFTER UPDATE OF title, artist ON items "
     "WHEN OLD.title IS NOT NEW.title OR OLD.artist IS NOT NEW.artist "
     "BEGIN "
     "  INSERT OR IGNORE INTO item_search_dirty(key, old_title, old_artist) "
     "  VALUES (OLD.key, OLD.title, OLD.artist); "
     "END;"},
};

#define STORE_N_MIGRATIONS ((int)(sizeof store_migrations / sizeof store_migrations[0]))

int store_schema_version_latest(void)
{
    return store_migrations[STORE_N_MIGRATIONS - 1].version;
}

static int store_pragma_int(struct store *s, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int ret = store__error(s, rc);
        sqlite3_finalize(st);
        return ret;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

int store__schema_version_read(struct store *s, int *out)
{
    return store_pragma_int(s, "PRAGMA user_version", out);
}

static int store_exec(struct store *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        int ret = store__error(s, rc);
        if (msg)
            snprintf(s->errmsg, sizeof s->errmsg, "%s", msg);
        sqlite3_free(msg);
        return ret;
    }
    return 0;
}

static int store_migration_apply(struct store *s, const struct store_migration *m,
                                 struct store_error *err)
{
    char sql[64];
    int version = 0, ret;

    ret = store__begin_write(s);
    if (ret < 0)
        goto fail;
    /* Another process may have migrated while we waited for the lock. */
    ret = store__schema_version_read(s, &version);
    if (ret < 0)
        goto fail;
    if (version >= m->version) {
        store__rollback(s);
        return 0;
    }
    if (version != m->version - 1) {
        ret = -EPROTO;
        snprintf(s->errmsg, sizeof s->errmsg, "schema version %d found, %d expected", version,
                 m->version - 1);
        goto fail;
    }
    ret = store_exec(s, m->sql);
    if (ret < 0)
        goto fail;
    if (m->version == 1) {
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d", STORE_APPLICATION_ID);
        ret = store_exec(s, sql);
        if (ret < 0)
            goto fail;
    }
    /* PRAGMA takes no bound parameters; the value is our own constant. */
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", m->version);
    ret = store_exec(s, sql);
    if (ret < 0)
        goto fail;
    ret = store__commit(s);
    if (ret < 0)
        goto fail;
    return 0;

fail:
    store__rollback(s);
    err->code = ret;
    snprintf(err->message, sizeof err->message, "migration to schema v%d (%s) failed: %.180s",
             m->version, m->name, store_errmsg(s));
    return ret;
}

int store__migrate(struct store *s, struct store_error *err)
{
    int version = 0, app_id = 0, latest = store_schema_version_latest(), ret;

    ret = store__schema_version_read(s, &version);
    if (ret == 0)
        ret = store_pragma_int(s, "PRAGMA application_id", &app_id);
    if (ret < 0) {
        err->code = ret;
        snprintf(err->message, sizeof err->message, "cannot read the schema version: %.180s",
                 store_errmsg(s));
        return ret;
    }
    if (app_id != 0 && app_id != STORE_APPLICATION_ID) {
        err->code = -EPROTO;
        snprintf(err->message, sizeof err->message,
                 "not an itemvec database (application_id 0x%x)", (unsigned)app_id);
        return err->code;
    }
    if (version > latest) {
        err->code = -EPROTO;
        snprintf(err->message, sizeof err->message,
                 "database schema v%d is newer than this itemvecd supports (v%d); "
                 "run a newer itemvecd or restore a backup",
                 version, latest);
        return err->code;
    }
    for (int i = 0; i < STORE_N_MIGRATIONS; i++) {
        if (store_migrations[i].version <= version)
            continue;
        ret = store_migration_apply(s, &store_migrations[i], err);
        if (ret < 0)
            return ret;
    }
    ret = store__schema_version_read(s, &s->schema_version);
    if (ret == 0 && s->schema_version != latest)
        ret = -EPROTO;
    if (ret < 0) {
        err->code = ret;
        snprintf(err->message, sizeof err->message,
                 "schema version %d after migration, %d expected", s->schema_version, latest);
        return ret;
    }
    return 0;
}
