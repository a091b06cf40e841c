/*
 * Online backup of the database: VACUUM INTO a new file, from a read
 * transaction of the caller's own connection, so it is a consistent
 * snapshot taken while uploads and jobs go on (WAL readers never block
 * writers), and the copy is compact and self-contained (no -wal file).
 */
#include <errno.h>

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
