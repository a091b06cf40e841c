/*
 * Maintenance of the database file: checkpoints and online backup.
 *
 * Online backup of the database: VACUUM INTO a new file, from a read
 * transaction of the caller's own connection, so it is a consistent
 * snapshot taken while uploads and jobs go on (WAL readers never block
 * writers), and the copy is compact and self-contained (no -wal file).
 */
#include <errno.h>
#include <stdio.h>

#include "storage/store.h"
#include "storage/store_internal.h"

int store_backup(struct store *s, const char *dest_path)
{
    sqlite3_stmt *st = NULL;
    if (!s || !dest_path || !*dest_path)
        return -EINVAL;
    /* rare: prepared per call; the file name is a bound value, never
     * spliced into the SQL */
    int rc = sqlite3_prepare_v2(s->db, "VACUUM INTO ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__error(s, rc);
    sqlite3_bind_text(st, 1, dest_path, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store__error(s, rc);
}

/* Runs one maintenance statement that returns at most a row. */
static int run_pragma(struct store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__error(s, rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store__error(s, rc);
}

int store_autocheckpoint(struct store *s, int pages)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint=%d", pages < 0 ? 0 : pages);
    return run_pragma(s, sql);
}

int store_checkpoint(struct store *s)
{
    return run_pragma(s, "PRAGMA wal_checkpoint(PASSIVE)");
}
