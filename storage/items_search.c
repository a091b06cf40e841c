/*
 * Item search by prefix (GET /v1/items?q=): id, then title, then artist,
 * each a range scan of the item_search table's (field, value, key) key in
 * NOCASE order (migration v4), keyset-paginated by store_search_pos; and
 * the upkeep of that table. Thread: the caller's (a struct store is used
 * by one thread at a time); the daemon searches on the loop thread and
 * syncs on the writer. No state is kept between calls.
 *
 * Ids are in item_search only when they have an ASCII letter: a prefix
 * without letters matches the same ids whatever the case, so its id phase
 * is a range of items' own unique index (in byte order), and catalogs with
 * numeric ids (the seed's) index a third fewer rows.
 *
 * Why a table filled after the fact rather than indexes on items: indexes
 * are maintained inside each upload's commit, which they made ~1.8x as
 * long for a fresh 3 M-row upload (300 k new items, three NOCASE b-tree
 * inserts each, in random order). store_items_search_sync adds the new
 * items (keys above item_search_state.indexed_key) in one sorted insert
 * and re-indexes the items a trigger saw renamed; the API runs it through
 * the writer before a search whenever store_items_search_stale says so, so
 * uploads pay nothing and a search is never behind the data.
 *
 * Why bounded scans: an item found in an earlier phase is skipped in the
 * later ones (its title and artist may both start with the prefix), so a
 * page could otherwise read many rows to find a few new items. Each call
 * reads at most SEARCH_SCAN(limit) rows and hands back the position it
 * reached; the caller's next page goes on from there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_internal.h"

#define SEARCH_SCAN(limit) (4 * (int64_t)(limit) + 64)

static unsigned char search_fold(char c)
{
    unsigned char a = (unsigned char)c;
    return a >= 'A' && a <= 'Z' ? (unsigned char)(a + 32) : a;
}

/* Compares s with prefix over the prefix's length, folding ASCII letters
 * as SQLite's NOCASE does (and only those): 0 when s starts with prefix,
 * else the sign of NOCASE's order of s against it. */
static int search_prefix_cmp(const char *s, const char *prefix)
{
    for (; *prefix; prefix++, s++) {
        unsigned char a = search_fold(*s), b = search_fold(*prefix);
        if (a != b)
            return a < b ? -1 : 1; /* a == 0 (s ended first) sorts first */
    }
    return 0;
}

static int search_has_prefix(const char *s, const char *prefix)
{
    return s && search_prefix_cmp(s, prefix) == 0;
}

/* Whether the item was already listed in an earlier phase than field. */
static int search_seen_before(const struct store_item *it, enum store_search_field field,
                              const char *prefix)
{
    if (field >= STORE_SEARCH_TITLE && search_has_prefix(it->id, prefix))
        return 1;
    if (field >= STORE_SEARCH_ARTIST && search_has_prefix(it->title, prefix))
        return 1;
    return 0;
}

/* The value of the resume item's field (the lower bound of the rest of
 * the phase), malloc'ed into *out. -EINVAL when the item does not exist or
 * no longer has a value there. */
static int search_resume_value(struct store *s, enum store_search_field f, int64_t key, char **out)
{
    sqlite3_stmt *st = store__stmt(s, STORE__ITEM_GET_BY_KEY);
    int rc, ret = 0;

    *out = NULL;
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int col = f == STORE_SEARCH_ID ? 1 : f == STORE_SEARCH_TITLE ? 2 : 3;
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
            ret = -EINVAL;
        else if (!(*out = store__column_dup(st, col)))
            ret = -ENOMEM;
    } else {
        ret = rc == SQLITE_DONE ? -EINVAL : store__error(s, rc);
    }
    sqlite3_reset(st);
    return ret;
}

struct search_run {
    const char *prefix;
    char upper[STORE_SEARCH_PREFIX_MAX + 2]; /* prefix + 0xFF */
    int limit;
    int found;
    int64_t budget;                  /* index rows left to read */
    struct store_search_pos last;    /* after the last item handed to cb */
    struct store_search_pos scanned; /* after the last row read */
    int lookahead;                   /* one more match exists after last */
    store_item_cb cb;
    void *userdata;
    int cb_ret;     /* the callback's non-zero value that stopped the search */
    int has_letter; /* the prefix has an ASCII letter (else case cannot matter) */
};

enum { PHASE_END, PHASE_SETTLED, PHASE_STOPPED };

/* Scans one phase from pos. Returns PHASE_SETTLED when the page is settled
 * (full and a further match seen, or the budget spent), PHASE_END when the
 * phase ran out, PHASE_STOPPED when the callback stopped it, or a negative
 * errno. */
static int search_phase(struct store *s, struct search_run *r, struct store_search_pos pos)
{
    char *value = NULL;
    sqlite3_stmt *st;
    int rc, ret = 0;

    if (pos.field != STORE_SEARCH_ALL) {
        if (pos.key > 0) {
            ret = search_resume_value(s, pos.field, pos.key, &value);
            if (ret < 0)
                return ret;
            /* The item's value moved out of the prefix's range since the
             * last page (a later upload renamed it): resume where the
             * range starts or, if it moved past it, after the phase. */
            int c = search_prefix_cmp(value, r->prefix);
            if (c != 0) {
                free(value);
                value = NULL;
                if (c > 0)
                    return PHASE_END;
                pos.key = 0;
            }
        }
    }
    st = store__stmt(s, pos.field == STORE_SEARCH_ALL ? STORE__ITEM_SEARCH_ALL
                        : pos.field == STORE_SEARCH_ID && !r->has_letter
                            ? STORE__ITEM_SEARCH_ID_BINARY
                            : STORE__ITEM_SEARCH);
    if (!st) {
        free(value);
        return -EIO;
    }
    if (pos.field != STORE_SEARCH_ALL) {
        sqlite3_bind_text(st, 1, r->prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->upper, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, pos.key > 0 ? value : r->prefix, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, (int)pos.field);
    }
    sqlite3_bind_int64(st, 4, pos.key > 0 ? pos.key : -1);
    sqlite3_bind_int64(st, 5, r->budget);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_item it = {
            .key = sqlite3_column_int64(st, 0),
            .id = (char *)sqlite3_column_text(st, 1),
            .title = (char *)sqlite3_column_text(st, 2),
            .artist = (char *)sqlite3_column_text(st, 3),
            .playlists = sqlite3_column_int64(st, 4),
        };
        r->budget--;
        r->scanned = (struct store_search_pos){pos.field, it.key};
        if (!it.id) {
            ret = -ENOMEM;
            break;
        }
        if (pos.field != STORE_SEARCH_ALL && search_seen_before(&it, pos.field, r->prefix)) {
            /* listed in an earlier phase */
        } else if (r->found == r->limit) {
            r->lookahead = 1;
            ret = PHASE_SETTLED;
            break;
        } else {
            r->cb_ret = r->cb(r->userdata, &it);
            if (r->cb_ret != 0) {
                ret = PHASE_STOPPED;
                break;
            }
            r->found++;
            r->last = r->scanned;
        }
        if (r->budget == 0) {
            ret = PHASE_SETTLED;
            break;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = store__error(s, rc);
    sqlite3_reset(st);
    free(value);
    return ret;
}

void store_items_search_start(const char *prefix, struct store_search_pos *pos)
{
    pos->field = prefix && *prefix ? STORE_SEARCH_ID : STORE_SEARCH_ALL;
    pos->key = 0;
}

int store_items_search(struct store *s, const char *prefix, struct store_search_pos *pos, int limit,
                       store_item_cb cb, void *userdata)
{
    struct search_run r = {.prefix = prefix, .limit = limit, .cb = cb, .userdata = userdata};
    struct store_search_pos at;
    size_t n;
    int ret;

    if (!s || !prefix || !pos || !cb || limit < 1 || limit > 1000 || pos->key < 0)
        return -EINVAL;
    n = strlen(prefix);
    if (n > STORE_SEARCH_PREFIX_MAX)
        return -EINVAL;
    /* ALL goes with the empty prefix only, the three phases with a prefix */
    if (pos->field == STORE_SEARCH_DONE)
        return 0;
    if ((pos->field == STORE_SEARCH_ALL) != (n == 0) || (int)pos->field < 0 ||
        pos->field > STORE_SEARCH_ALL)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        r.has_letter |= search_fold(prefix[i]) != (unsigned char)prefix[i] ||
                        (prefix[i] >= 'a' && prefix[i] <= 'z');
    memcpy(r.upper, prefix, n);
    r.upper[n] = '\xff';
    r.upper[n + 1] = '\0';
    r.budget = SEARCH_SCAN(limit);
    r.last = r.scanned = *pos;
    ret = store__begin_read(s);
    if (ret < 0)
        return ret;
    at = *pos;
    while ((ret = search_phase(s, &r, at)) == PHASE_END) {
        if (at.field == STORE_SEARCH_ALL || at.field == STORE_SEARCH_ARTIST) {
            at.field = STORE_SEARCH_DONE;
            break;
        }
        at = (struct store_search_pos){at.field + 1, 0};
        r.scanned = at;
    }
    if (ret < 0) {
        store__rollback(s);
        return ret;
    }
    store__commit(s);
    if (ret == PHASE_STOPPED)
        return r.cb_ret; /* *pos left as it was */
    *pos = ret == PHASE_END ? at : r.lookahead ? r.last : r.scanned;
    return 0;
}

int store_items_search_stale(struct store *s)
{
    sqlite3_stmt *st;
    int rc, ret;

    if (!s)
        return -EINVAL;
    st = store__stmt(s, STORE__ITEM_SEARCH_STALE);
    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ret = sqlite3_column_int(st, 0) != 0;
    else
        ret = rc == SQLITE_DONE ? -EIO : store__error(s, rc);
    sqlite3_reset(st);
    return ret;
}

/* One transaction: drop what renamed items were indexed under, add the
 * values of new and renamed items (sorted, so the b-tree is appended to
 * rather than written at random places), move the mark. Fixed SQL with no
 * user values, hence sqlite3_exec. */
static const char search_sync_sql[] =
    "DELETE FROM item_search WHERE (field, value, key) IN ("
    "  SELECT 1, old_title, key FROM item_search_dirty WHERE old_title IS NOT NULL"
    "  UNION ALL SELECT 2, old_artist, key FROM item_search_dirty WHERE old_artist IS NOT NULL);"
    "WITH mark(k) AS (SELECT indexed_key FROM item_search_state WHERE id = 1),"
    " todo(key) AS (SELECT key FROM items WHERE key > (SELECT k FROM mark)"
    "               UNION SELECT key FROM item_search_dirty)"
    "INSERT OR IGNORE INTO item_search(field, value, key)"
    " SELECT f, v, key FROM ("
    "  SELECT 0 AS f, id AS v, key FROM items WHERE key > (SELECT k FROM mark)"
    "   AND id GLOB '*[A-Za-z]*'"
    "  UNION ALL SELECT 1, i.title, i.key FROM todo JOIN items i ON i.key = todo.key"
    "   WHERE i.title IS NOT NULL"
    "  UNION ALL SELECT 2, i.artist, i.key FROM todo JOIN items i ON i.key = todo.key"
    "   WHERE i.artist IS NOT NULL)"
    " ORDER BY f, v COLLATE NOCASE, key;"
    "DELETE FROM item_search_dirty;"
    "UPDATE item_search_state SET indexed_key = (SELECT coalesce(max(key), 0) FROM items)"
    " WHERE id = 1;";

int store_items_search_sync(struct store *s)
{
    char *msg = NULL;
    int rc, ret;

    if (!s)
        return -EINVAL;
    ret = store__begin_write(s);
    if (ret < 0)
        return ret;
    rc = sqlite3_exec(s->db, search_sync_sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        ret = store__error(s, rc);
        if (msg)
            snprintf(s->errmsg, sizeof s->errmsg, "item search sync: %s", msg);
        sqlite3_free(msg);
        store__rollback(s);
        return ret;
    }
    ret = store__commit(s);
    if (ret < 0)
        store__rollback(s);
    return ret;
}
