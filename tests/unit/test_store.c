/*
 * Unit tests for storage/ (store.c, migrate.c, commit.c, playlists.c,
 * items.c, snapshot.c, counts.c) against real SQLite files in mkdtemp
 * directories: migrations and version refusal, idempotent uploads,
 * duplicates, latest-wins titles, all-or-nothing rollback, REPLACE and
 * DELETE bookkeeping, pagination, the job snapshot, and a randomized model
 * test against an in-memory reference, recounted by store_integrity_check.
 *
 * The tests never include sqlite3.h: a "future" file is made by patching
 * the user_version field of the database header (offset 60, big-endian).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/batch.h"
#include "storage/store.h"

struct fixture {
    char dir[64];
    struct store *s;
};

static void rm_state_dir(const char *dir)
{
    const char *names[] = {"itemvec.db", "itemvec.db-wal", "itemvec.db-shm", "itemvec.db-journal"};
    char path[256];

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct store_error err;

    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->s = store_open(f->dir, &err);
    if (!f->s) {
        fprintf(stderr, "store_open: %s\n", err.message);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    store_close(f->s);
    rm_state_dir(f->dir);
    free(f);
    return 0;
}

static int add(struct batch *b, const char *pl, const char *it, const char *title,
               const char *artist)
{
    return batch_add(b, pl, strlen(pl), it, strlen(it), title, title ? strlen(title) : 0, artist,
                     artist ? strlen(artist) : 0);
}

static void assert_counts(struct store *s, int64_t playlists, int64_t items, int64_t memberships)
{
    struct store_counts c, real;

    assert_int_equal(store_counts_get(s, &c), 0);
    assert_int_equal(c.playlists, playlists);
    assert_int_equal(c.items, items);
    assert_int_equal(c.memberships, memberships);
    assert_int_equal(store_integrity_check(s, &real), 0);
    assert_int_equal(real.playlists, playlists);
    assert_int_equal(real.items, items);
    assert_int_equal(real.memberships, memberships);
}

static int64_t item_playlists(struct store *s, const char *id)
{
    struct store_item it;
    int64_t n;

    if (store_item_get(s, id, &it) < 0)
        return -1;
    n = it.playlists;
    store_item_deinit(&it);
    return n;
}

/* Patches a 4-byte big-endian field of the (checkpointed) database header. */
static void patch_header(const char *dir, long offset, uint32_t value)
{
    char path[256];
    unsigned char be[4] = {(unsigned char)(value >> 24), (unsigned char)(value >> 16),
                           (unsigned char)(value >> 8), (unsigned char)value};
    int fd;

    snprintf(path, sizeof path, "%s/itemvec.db", dir);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, be, 4, offset), 4);
    close(fd);
}

static void test_migrations(void **state)
{
    struct fixture *f = *state;
    struct store_error err;
    struct batch *b = batch_create();

    assert_true(store_schema_version_latest() >= 1);
    assert_int_equal(store_schema_version(f->s), store_schema_version_latest());
    assert_counts(f->s, 0, 0, 0);
    assert_int_equal(add(b, "p", "i", "t", NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);

    /* Reopen: no migration runs, data is kept. */
    store_close(f->s);
    f->s = store_open(f->dir, &err);
    assert_non_null(f->s);
    assert_int_equal(store_schema_version(f->s), store_schema_version_latest());
    assert_counts(f->s, 1, 1, 1);

    /* A file from a newer itemvec is refused. */
    store_close(f->s);
    f->s = NULL;
    patch_header(f->dir, 60, (uint32_t)store_schema_version_latest() + 1);
    assert_null(store_open(f->dir, &err));
    assert_int_equal(err.code, -EPROTO);
    assert_non_null(strstr(err.message, "newer"));

    /* So is another application's SQLite file. */
    patch_header(f->dir, 60, (uint32_t)store_schema_version_latest());
    patch_header(f->dir, 68, 0x12345678);
    assert_null(store_open(f->dir, &err));
    assert_int_equal(err.code, -EPROTO);

    patch_header(f->dir, 68, 0x49564543);
    f->s = store_open(f->dir, &err);
    assert_non_null(f->s);
    assert_counts(f->s, 1, 1, 1);

    /* A missing directory is an error, not a crash. */
    assert_null(store_open("/nonexistent/itemvec-test", &err));
    assert_true(err.code < 0);
}

static void test_idempotent(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    struct store_commit_result r;

    assert_int_equal(add(b, "p1", "a", "A", "X"), 0);
    assert_int_equal(add(b, "p1", "b", "B", "Y"), 0);
    assert_int_equal(add(b, "p2", "a", NULL, NULL), 0);
    assert_int_equal(add(b, "p2", "c", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, &r), 0);
    assert_int_equal(r.playlists, 2);
    assert_int_equal(r.rows_stored, 4);
    assert_int_equal(r.rows_duplicate, 0);
    assert_counts(f->s, 2, 3, 4);

    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, &r), 0);
    assert_int_equal(r.playlists, 2);
    assert_int_equal(r.rows_stored, 0);
    assert_int_equal(r.rows_duplicate, 4);
    assert_int_equal(r.rows_removed, 0);
    assert_counts(f->s, 2, 3, 4);
    assert_int_equal(item_playlists(f->s, "a"), 2);
    assert_int_equal(item_playlists(f->s, "b"), 1);
    batch_destroy(b);

    /* A partly new upload: only the new rows are stored. */
    b = batch_create();
    assert_int_equal(add(b, "p1", "a", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "d", NULL, NULL), 0);
    assert_int_equal(add(b, "p3", "a", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, &r), 0);
    assert_int_equal(r.rows_stored, 2);
    assert_int_equal(r.rows_duplicate, 1);
    assert_counts(f->s, 3, 4, 6);
    assert_int_equal(item_playlists(f->s, "a"), 3);
    assert_int_equal(item_playlists(f->s, "d"), 1);
    batch_destroy(b);
}

static void test_duplicates_in_batch(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    struct store_commit_result r;
    struct store_playlist pl;

    for (int k = 0; k < 3; k++) {
        assert_int_equal(add(b, "p1", "x", NULL, NULL), 0);
        assert_int_equal(add(b, "p1", "y", NULL, NULL), 0);
    }
    assert_int_equal(add(b, "p2", "x", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, &r), 0);
    assert_int_equal(r.rows_stored, 3);
    assert_int_equal(r.rows_duplicate, 4);
    assert_int_equal(r.rows_stored + r.rows_duplicate, (int64_t)batch_rows(b));
    assert_counts(f->s, 2, 2, 3);
    assert_int_equal(item_playlists(f->s, "x"), 2);
    assert_int_equal(store_playlist_get(f->s, "p1", &pl), 0);
    assert_int_equal(pl.n_items, 2);
    assert_string_equal(pl.id, "p1");
    assert_string_equal(pl.items[0].id, "x"); /* a batch's new items: id order */
    assert_string_equal(pl.items[1].id, "y");
    assert_int_equal(pl.items[0].playlists, 2);
    store_playlist_deinit(&pl);
    batch_destroy(b);
}

static void assert_item(struct store *s, const char *id, const char *title, const char *artist)
{
    struct store_item it;

    assert_int_equal(store_item_get(s, id, &it), 0);
    assert_string_equal(it.id, id);
    if (title)
        assert_string_equal(it.title, title);
    else
        assert_null(it.title);
    if (artist)
        assert_string_equal(it.artist, artist);
    else
        assert_null(it.artist);
    store_item_deinit(&it);
}

static void test_key_order(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    /* BINARY collation order, long shared prefixes included. */
    const char *sorted[] = {"A", "abcdefgh", "abcdefghA", "abcdefghZ", "b", "\xc3\xa9"};
    const char *given[] = {"abcdefghZ", "\xc3\xa9", "abcdefgh", "b", "abcdefghA", "A"};
    struct store_item it;

    for (int i = 0; i < 6; i++)
        assert_int_equal(add(b, "p", given[i], NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(store_item_get(f->s, sorted[i], &it), 0);
        assert_int_equal(it.key, i + 1);
        store_item_deinit(&it);
    }
}

static void test_titles(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    struct store_item it;

    /* Inside a batch: latest given wins; NULL does not erase. */
    assert_int_equal(add(b, "p1", "a", "first", "art1"), 0);
    assert_int_equal(add(b, "p2", "a", "second", NULL), 0);
    assert_int_equal(add(b, "p3", "a", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "b", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_item(f->s, "a", "second", "art1");
    assert_item(f->s, "b", NULL, NULL);

    /* Across uploads: the latest upload that gives them wins. */
    b = batch_create();
    assert_int_equal(add(b, "p1", "a", NULL, "art2"), 0);
    assert_int_equal(add(b, "p1", "b", "bee", NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_item(f->s, "a", "second", "art2");
    assert_item(f->s, "b", "bee", NULL);

    /* An empty title is a value, kept as such. */
    b = batch_create();
    assert_int_equal(add(b, "p1", "b", "", NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_item(f->s, "b", "", NULL);

    assert_int_equal(store_item_get(f->s, "nope", &it), -ENOENT);
    assert_counts(f->s, 3, 2, 4);
}

static void test_rollback(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    struct store_commit_result r = {0};
    struct store_item it;
    struct store_playlist pl;
    char long_id[301];

    assert_int_equal(add(b, "p1", "a", "A", NULL), 0);
    assert_int_equal(add(b, "p1", "b", "B", NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);

    /* Fails late: items are upserted and p1/p2 written before the playlist
     * with an over-long id violates the table's CHECK constraint. */
    memset(long_id, 'z', 300);
    long_id[300] = '\0';
    b = batch_create();
    assert_int_equal(add(b, "p1", "a", "changed", "changed"), 0);
    assert_int_equal(add(b, "p1", "c", "C", NULL), 0);
    assert_int_equal(add(b, "p2", "d", NULL, NULL), 0);
    assert_int_equal(add(b, long_id, "e", NULL, NULL), 0);
    assert_true(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, &r) < 0);
    assert_true(strlen(store_errmsg(f->s)) > 0);
    batch_destroy(b);
    assert_counts(f->s, 1, 2, 2);
    assert_item(f->s, "a", "A", NULL);
    assert_int_equal(store_item_get(f->s, "c", &it), -ENOENT);
    assert_int_equal(store_item_get(f->s, "e", &it), -ENOENT);
    assert_int_equal(store_playlist_get(f->s, "p2", &pl), -ENOENT);
    assert_int_equal(store_playlist_get(f->s, "p1", &pl), 0);
    assert_int_equal(pl.n_items, 2);
    store_playlist_deinit(&pl);
    assert_int_equal(item_playlists(f->s, "a"), 1);

    /* Fails in the item phase (over-long item id), same outcome. */
    b = batch_create();
    assert_int_equal(add(b, "p1", "f", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", long_id, NULL, NULL), 0);
    assert_true(store_batch_commit(f->s, b, STORE_COMMIT_REPLACE, &r) < 0);
    batch_destroy(b);
    assert_counts(f->s, 1, 2, 2);
    assert_int_equal(store_item_get(f->s, "f", &it), -ENOENT);

    /* The handle stays usable. */
    b = batch_create();
    assert_int_equal(add(b, "p2", "d", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, &r), 0);
    assert_int_equal(r.rows_stored, 1);
    batch_destroy(b);
    assert_counts(f->s, 2, 3, 3);
}

static void test_replace(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    struct store_commit_result r;
    struct store_playlist pl;

    assert_int_equal(add(b, "p1", "a", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "b", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "c", NULL, NULL), 0);
    assert_int_equal(add(b, "p2", "a", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);

    /* p1 := {c, d, d}: a and b leave, d is new, c stays. */
    b = batch_create();
    assert_int_equal(add(b, "p1", "c", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "d", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "d", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_REPLACE, &r), 0);
    assert_int_equal(r.playlists, 1);
    assert_int_equal(r.rows_stored, 1);
    assert_int_equal(r.rows_duplicate, 2);
    assert_int_equal(r.rows_removed, 2);
    /* Same again: nothing changes. */
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_REPLACE, &r), 0);
    assert_int_equal(r.rows_stored, 0);
    assert_int_equal(r.rows_duplicate, 3);
    assert_int_equal(r.rows_removed, 0);
    batch_destroy(b);
    assert_counts(f->s, 2, 4, 3);
    assert_int_equal(item_playlists(f->s, "a"), 1);
    assert_int_equal(item_playlists(f->s, "b"), 0);
    assert_int_equal(item_playlists(f->s, "c"), 1);
    assert_int_equal(item_playlists(f->s, "d"), 1);
    assert_int_equal(store_playlist_get(f->s, "p1", &pl), 0);
    assert_int_equal(pl.n_items, 2);
    assert_string_equal(pl.items[0].id, "c");
    assert_string_equal(pl.items[1].id, "d");
    store_playlist_deinit(&pl);

    /* PUT with "items": [] empties an existing playlist and creates a new
     * empty one. */
    b = batch_create();
    assert_int_equal(batch_add_playlist(b, "p2", 2), 0);
    assert_int_equal(batch_add_playlist(b, "p9", 2), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_REPLACE, &r), 0);
    assert_int_equal(r.playlists, 2);
    assert_int_equal(r.rows_stored, 0);
    assert_int_equal(r.rows_duplicate, 0);
    assert_int_equal(r.rows_removed, 1);
    batch_destroy(b);
    assert_counts(f->s, 3, 4, 2);
    assert_int_equal(item_playlists(f->s, "a"), 0);
    assert_int_equal(store_playlist_get(f->s, "p9", &pl), 0);
    assert_int_equal(pl.n_items, 0);
    store_playlist_deinit(&pl);
}

static void test_delete(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    struct store_playlist pl;

    assert_int_equal(add(b, "p1", "a", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "b", NULL, NULL), 0);
    assert_int_equal(add(b, "p2", "a", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_counts(f->s, 2, 2, 3);

    assert_int_equal(store_playlist_delete(f->s, "p1"), 0);
    assert_counts(f->s, 1, 2, 1);
    assert_int_equal(item_playlists(f->s, "a"), 1);
    assert_int_equal(item_playlists(f->s, "b"), 0); /* items stay */
    assert_int_equal(store_playlist_get(f->s, "p1", &pl), -ENOENT);
    assert_int_equal(store_playlist_delete(f->s, "p1"), -ENOENT);
    assert_int_equal(store_playlist_delete(f->s, "never"), -ENOENT);
    assert_counts(f->s, 1, 2, 1);

    /* Re-creating it works and counts again. */
    b = batch_create();
    assert_int_equal(add(b, "p1", "b", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_counts(f->s, 2, 2, 2);
    assert_int_equal(item_playlists(f->s, "b"), 1);
}

struct list_acc {
    int n;
    int64_t keys[64];
    char ids[64][16];
    int64_t sizes[64];
    int stop_after;
};

static int list_cb(void *userdata, int64_t key, const char *id, int64_t n_items)
{
    struct list_acc *a = userdata;

    a->keys[a->n] = key;
    snprintf(a->ids[a->n], sizeof a->ids[0], "%s", id);
    a->sizes[a->n] = n_items;
    a->n++;
    if (a->stop_after && a->n == a->stop_after)
        return 42;
    return 0;
}

static void test_list(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    struct list_acc a;
    char pl[16], it[16];
    int64_t after = 0;
    int total = 0;

    for (int p = 0; p < 25; p++) {
        snprintf(pl, sizeof pl, "pl%02d", p);
        for (int k = 0; k <= p % 4; k++) {
            snprintf(it, sizeof it, "i%d", k);
            assert_int_equal(add(b, pl, it, NULL, NULL), 0);
        }
    }
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);

    /* Pages of 10: 10, 10, 5, then empty; keys increasing, ids in order. */
    for (int page = 0; page < 4; page++) {
        memset(&a, 0, sizeof a);
        assert_int_equal(store_playlists_list(f->s, after, 10, list_cb, &a), 0);
        assert_int_equal(a.n, page < 2 ? 10 : page == 2 ? 5 : 0);
        for (int i = 0; i < a.n; i++) {
            char want[16];
            snprintf(want, sizeof want, "pl%02d", total);
            assert_string_equal(a.ids[i], want);
            assert_int_equal(a.sizes[i], total % 4 + 1);
            assert_true(a.keys[i] > after);
            after = a.keys[i];
            total++;
        }
    }
    assert_int_equal(total, 25);

    /* A callback's non-zero return stops the listing and is returned. */
    memset(&a, 0, sizeof a);
    a.stop_after = 3;
    assert_int_equal(store_playlists_list(f->s, 0, 10, list_cb, &a), 42);
    assert_int_equal(a.n, 3);
    memset(&a, 0, sizeof a);
    assert_int_equal(store_playlists_list(f->s, 0, 0, list_cb, &a), 0);
    assert_int_equal(a.n, 0);
    assert_int_equal(store_playlists_list(f->s, 0, -1, list_cb, &a), -EINVAL);
}

static void test_snapshot(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    struct store_groups g;
    struct store_item_names n;

    /* A batch's new items get keys in id order: a=1, c=2 (batch 1), then
     * b=3, d=4 (batch 2; a and c exist). */
    assert_int_equal(add(b, "p1", "c", "Cee", NULL), 0);
    assert_int_equal(add(b, "p1", "a", "Ay", "Art"), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    b = batch_create();
    assert_int_equal(add(b, "p2", "d", NULL, NULL), 0);
    assert_int_equal(add(b, "p2", "c", NULL, NULL), 0);
    assert_int_equal(batch_add_playlist(b, "empty", 5), 0);
    assert_int_equal(add(b, "p3", "d", NULL, NULL), 0);
    assert_int_equal(add(b, "p3", "a", NULL, NULL), 0);
    assert_int_equal(add(b, "p3", "b", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_REPLACE, NULL), 0);
    batch_destroy(b);

    assert_int_equal(store_groups_load(f->s, &g), 0);
    /* p1 = {a, c}, p2 = {c, d}, empty left out, p3 = {a, b, d}. */
    assert_int_equal(g.n_groups, 3);
    assert_int_equal(g.max_item_key, 4);
    {
        const uint64_t offsets[] = {0, 2, 4, 7};
        const uint32_t items[] = {1, 2, 2, 4, 1, 3, 4};
        for (int i = 0; i < 4; i++)
            assert_int_equal(g.offsets[i], offsets[i]);
        for (int i = 0; i < 7; i++)
            assert_int_equal(g.items[i], items[i]);
    }
    store_groups_deinit(&g);
    assert_null(g.items);
    store_groups_deinit(&g);

    assert_int_equal(store_item_names_load(f->s, &n), 0);
    assert_int_equal(n.max_key, 4);
    assert_null(n.id[0]);
    assert_string_equal(n.id[1], "a");
    assert_string_equal(n.title[1], "Ay");
    assert_string_equal(n.artist[1], "Art");
    assert_string_equal(n.id[2], "c");
    assert_string_equal(n.title[2], "Cee");
    assert_null(n.artist[2]);
    assert_string_equal(n.id[3], "b");
    assert_null(n.title[3]);
    assert_string_equal(n.id[4], "d");
    store_item_names_deinit(&n);
}

static void test_snapshot_empty(void **state)
{
    struct fixture *f = *state;
    struct store_groups g;
    struct store_item_names n;

    assert_int_equal(store_groups_load(f->s, &g), 0);
    assert_int_equal(g.n_groups, 0);
    assert_int_equal(g.offsets[0], 0);
    assert_int_equal(g.max_item_key, 0);
    store_groups_deinit(&g);
    assert_int_equal(store_item_names_load(f->s, &n), 0);
    assert_int_equal(n.max_key, 0);
    store_item_names_deinit(&n);
}

/* Randomized model test: MERGE/REPLACE/DELETE on a small id space, checked
 * after every step against a reference kept in plain arrays. */
#define M_PL 9
#define M_IT 17

struct model {
    unsigned char mem[M_PL][M_IT];
    unsigned char pl_exists[M_PL];
    unsigned char it_exists[M_IT];
    int title[M_IT]; /* -1 = none */
};

static uint64_t rng_state = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

static void model_check(struct store *s, const struct model *m)
{
    int64_t pls = 0, its = 0, mems = 0;
    char id[16], want[16];

    for (int p = 0; p < M_PL; p++) {
        struct store_playlist pl;
        int rc;
        snprintf(id, sizeof id, "p%d", p);
        rc = store_playlist_get(s, id, &pl);
        if (!m->pl_exists[p]) {
            assert_int_equal(rc, -ENOENT);
            continue;
        }
        assert_int_equal(rc, 0);
        pls++;
        {
            size_t n = 0;
            for (int i = 0; i < M_IT; i++)
                n += m->mem[p][i];
            assert_int_equal(pl.n_items, n);
            mems += (int64_t)n;
        }
        for (size_t k = 0; k < pl.n_items; k++) {
            int i = atoi(pl.items[k].id + 1);
            assert_true(m->mem[p][i]);
            if (k > 0)
                assert_true(pl.items[k - 1].key < pl.items[k].key);
        }
        store_playlist_deinit(&pl);
    }
    for (int i = 0; i < M_IT; i++) {
        struct store_item it;
        int rc;
        int64_t n = 0;
        snprintf(id, sizeof id, "i%d", i);
        rc = store_item_get(s, id, &it);
        if (!m->it_exists[i]) {
            assert_int_equal(rc, -ENOENT);
            continue;
        }
        assert_int_equal(rc, 0);
        its++;
        for (int p = 0; p < M_PL; p++)
            n += m->mem[p][i];
        assert_int_equal(it.playlists, n);
        if (m->title[i] < 0) {
            assert_null(it.title);
        } else {
            snprintf(want, sizeof want, "t%d", m->title[i]);
            assert_string_equal(it.title, want);
        }
        store_item_deinit(&it);
    }
    assert_counts(s, pls, its, mems);
}

static void test_model(void **state)
{
    struct fixture *f = *state;
    struct model m;
    char pl[16], it[16], title[16];

    memset(&m, 0, sizeof m);
    for (int i = 0; i < M_IT; i++)
        m.title[i] = -1;
    for (int step = 0; step < 400; step++) {
        unsigned op = rnd(10);
        if (op < 6) {
            /* MERGE or REPLACE batch over 1..3 playlists with repeats. */
            enum store_commit_mode mode = op < 4 ? STORE_COMMIT_MERGE : STORE_COMMIT_REPLACE;
            struct batch *b = batch_create();
            struct store_commit_result r;
            unsigned char in_batch[M_PL][M_IT] = {{0}}, touched[M_PL] = {0};
            int64_t expect_stored = 0, expect_removed = 0;
            int n_rows = (int)rnd(12), pending_title[M_IT];
            for (int i = 0; i < M_IT; i++)
                pending_title[i] = -2;
            for (unsigned k = 0, np = 1 + rnd(3); k < np; k++) {
                int p = (int)rnd(M_PL);
                snprintf(pl, sizeof pl, "p%d", p);
                if (!touched[p] && rnd(4) == 0) {
                    assert_int_equal(batch_add_playlist(b, pl, strlen(pl)), 0);
                    touched[p] = 1;
                }
                for (int r2 = 0; r2 < n_rows; r2++) {
                    int i = (int)rnd(M_IT), t = rnd(3) == 0 ? (int)rnd(5) : -1;
                    snprintf(it, sizeof it, "i%d", i);
                    snprintf(title, sizeof title, "t%d", t);
                    assert_int_equal(add(b, pl, it, t >= 0 ? title : NULL, NULL), 0);
                    in_batch[p][i] = 1;
                    touched[p] = 1;
                    if (t >= 0)
                        pending_title[i] = t;
                    else if (pending_title[i] == -2)
                        pending_title[i] = -3; /* named, no title */
                }
            }
            for (int p = 0; p < M_PL; p++) {
                if (!touched[p])
                    continue;
                for (int i = 0; i < M_IT; i++) {
                    if (in_batch[p][i] && !m.mem[p][i])
                        expect_stored++;
                    if (mode == STORE_COMMIT_REPLACE && !in_batch[p][i] && m.mem[p][i])
                        expect_removed++;
                }
            }
            assert_int_equal(store_batch_commit(f->s, b, mode, &r), 0);
            assert_int_equal(r.rows_stored, expect_stored);
            assert_int_equal(r.rows_duplicate, (int64_t)batch_rows(b) - expect_stored);
            assert_int_equal(r.rows_removed, expect_removed);
            batch_destroy(b);
            for (int p = 0; p < M_PL; p++) {
                if (!touched[p])
                    continue;
                m.pl_exists[p] = 1;
                for (int i = 0; i < M_IT; i++) {
                    if (mode == STORE_COMMIT_REPLACE)
                        m.mem[p][i] = in_batch[p][i];
                    else
                        m.mem[p][i] |= in_batch[p][i];
                }
            }
            for (int i = 0; i < M_IT; i++) {
                if (pending_title[i] == -2)
                    continue;
                m.it_exists[i] = 1;
                if (pending_title[i] >= 0)
                    m.title[i] = pending_title[i];
            }
        } else if (op < 8) {
            int p = (int)rnd(M_PL);
            snprintf(pl, sizeof pl, "p%d", p);
            assert_int_equal(store_playlist_delete(f->s, pl), m.pl_exists[p] ? 0 : -ENOENT);
            m.pl_exists[p] = 0;
            memset(m.mem[p], 0, sizeof m.mem[p]);
        } else if (op == 8) {
            /* A failing batch changes nothing. */
            struct batch *b = batch_create();
            char bad[300];
            memset(bad, 'q', sizeof bad - 1);
            bad[sizeof bad - 1] = '\0';
            assert_int_equal(add(b, "p0", "i0", "t4", NULL), 0);
            assert_int_equal(add(b, bad, "i1", NULL, NULL), 0);
            assert_true(store_batch_commit(f->s, b, rnd(2) ? STORE_COMMIT_MERGE
                                                           : STORE_COMMIT_REPLACE,
                                           NULL) < 0);
            batch_destroy(b);
        } else {
            /* Reopen: the state is durable and the counters persist. */
            struct store_error err;
            store_close(f->s);
            f->s = store_open(f->dir, &err);
            assert_non_null(f->s);
        }
        model_check(f->s, &m);
    }
}

/* Multi-row inserts (commit.c inserts new items and new playlists
 * STORE__INSERT_ROWS = 64 to a statement, the rest of a batch one by one):
 * batches whose new items and playlists are 2 * 64 + 3, 64 + 1, 1 and
 * exactly 64, added in scrambled row order, against a model. Items are
 * "it%04d" and playlists "pl%04d" and every batch's new ones number above
 * all stored ones, so dense keys in id order mean: key = number + 1. */
#define MR_CHUNK 64 /* STORE__INSERT_ROWS in storage/store_internal.h */
#define MR_IT 400
#define MR_PL 400
#define MR_BAD (-1) /* the over-long id (CHECK constraint) */

struct mr_model {
    unsigned char mem[MR_PL][MR_IT];
    int title[MR_IT]; /* stage that gave the item's title, -1 none */
    int n_it, n_pl;   /* it0000.., pl0000.. exist below these */
};

struct mr_row {
    int p, k;
};

static char mr_bad_it[300], mr_bad_pl[300];

static const char *mr_it_id(char *buf, size_t len, int k)
{
    if (k == MR_BAD)
        return mr_bad_it;
    snprintf(buf, len, "it%04d", k);
    return buf;
}

static const char *mr_pl_id(char *buf, size_t len, int p)
{
    if (p == MR_BAD)
        return mr_bad_pl;
    snprintf(buf, len, "pl%04d", p);
    return buf;
}

/* Titles on items not divisible by 5, naming the stage; artists on
 * multiples of 3, never changing. */
static void mr_texts(int k, int stage, char *title, char *artist, const char **t, const char **a)
{
    snprintf(title, 16, "t%d.%d", k, stage);
    snprintf(artist, 16, "a%d", k);
    *t = k % 5 != 0 ? title : NULL;
    *a = k % 3 == 0 ? artist : NULL;
}

/* Rows of a stage: every new item k in [i0, i1) once in a playlist of P
 * (all but empty_p, which gets no row), then per playlist one row naming
 * an older or new item, repeated (a duplicate) for every sixth. */
static size_t mr_rows(struct mr_row *rows, int i0, int i1, const int *P, int nP, int empty_p)
{
    int live[MR_PL], nl = 0;
    size_t n = 0;

    for (int j = 0; j < nP; j++)
        if (P[j] != empty_p)
            live[nl++] = P[j];
    for (int k = i0; k < i1; k++)
        rows[n++] = (struct mr_row){live[(k * 13) % nl], k};
    for (int j = 0; j < nl; j++) {
        int k = (live[j] * 5 + 1) % i1;
        rows[n++] = (struct mr_row){live[j], k};
        if (live[j] % 6 == 0)
            rows[n++] = (struct mr_row){live[j], k};
    }
    return n;
}

static int mr_seen; /* playlists listed so far */

static int mr_list_cb(void *userdata, int64_t key, const char *id, int64_t n_items)
{
    const struct mr_model *m = userdata;
    char want[16];
    int64_t n = 0;

    assert_int_equal(key, mr_seen + 1);
    assert_string_equal(id, mr_pl_id(want, sizeof want, mr_seen));
    for (int k = 0; k < m->n_it; k++)
        n += m->mem[mr_seen][k];
    assert_int_equal(n_items, n);
    mr_seen++;
    return 0;
}

static void mr_check(struct store *s, const struct mr_model *m)
{
    char id[16], title[16], artist[16];
    int64_t mems = 0;

    for (int k = 0; k < m->n_it; k++) {
        struct store_item it;
        const char *t, *a;
        int64_t n = 0;
        assert_int_equal(store_item_get(s, mr_it_id(id, sizeof id, k), &it), 0);
        assert_int_equal(it.key, k + 1);
        for (int p = 0; p < m->n_pl; p++)
            n += m->mem[p][k];
        assert_int_equal(it.playlists, n);
        mr_texts(k, m->title[k], title, artist, &t, &a);
        if (t)
            assert_string_equal(it.title, t);
        else
            assert_null(it.title);
        if (a)
            assert_string_equal(it.artist, a);
        else
            assert_null(it.artist);
        store_item_deinit(&it);
    }
    {
        struct store_item it;
        struct store_playlist pl;
        assert_int_equal(store_item_get(s, mr_it_id(id, sizeof id, m->n_it), &it), -ENOENT);
        assert_int_equal(store_playlist_get(s, mr_pl_id(id, sizeof id, m->n_pl), &pl), -ENOENT);
    }
    for (int p = 0; p < m->n_pl; p++) {
        struct store_playlist pl;
        size_t j = 0;
        assert_int_equal(store_playlist_get(s, mr_pl_id(id, sizeof id, p), &pl), 0);
        assert_int_equal(pl.key, p + 1);
        for (int k = 0; k < m->n_it; k++) {
            if (!m->mem[p][k])
                continue;
            assert_true(j < pl.n_items);
            assert_int_equal(pl.items[j].key, k + 1);
            assert_string_equal(pl.items[j].id, mr_it_id(id, sizeof id, k));
            j++;
        }
        assert_int_equal(pl.n_items, j);
        mems += (int64_t)j;
        store_playlist_deinit(&pl);
    }
    mr_seen = 0;
    assert_int_equal(store_playlists_list(s, 0, MR_PL + 10, mr_list_cb, (void *)m), 0);
    assert_int_equal(mr_seen, m->n_pl);
    assert_counts(s, m->n_pl, m->n_it, mems);
}

/* Commits the rows (in a scrambled order) and the empty playlist empty_p
 * (-2: none) as one batch of the given stage; checks the result numbers
 * against the model and, when it succeeds, updates the model. */
static void mr_commit(struct store *s, struct mr_model *m, const struct mr_row *rows, size_t n,
                      int empty_p, int stage, enum store_commit_mode mode, int expect_ok)
{
    static unsigned char in_batch[MR_PL][MR_IT], touched[MR_PL];
    struct batch *b = batch_create();
    struct store_commit_result r;
    int64_t stored = 0, removed = 0, n_pl = 0;
    int max_p = -1, max_k = -1;
    char pid[16], iid[16], title[16], artist[16];

    memset(in_batch, 0, sizeof in_batch);
    memset(touched, 0, sizeof touched);
    /* 37 is prime to n unless n is a multiple of 37. */
    assert_true(n % 37 != 0);
    for (size_t j = 0; j < n; j++) {
        const struct mr_row *row = &rows[(j * 37) % n];
        const char *t, *a;
        mr_texts(row->k, stage, title, artist, &t, &a);
        assert_int_equal(
            add(b, mr_pl_id(pid, sizeof pid, row->p), mr_it_id(iid, sizeof iid, row->k), t, a), 0);
        if (row->p >= 0 && row->k >= 0) {
            in_batch[row->p][row->k] = 1;
            touched[row->p] = 1;
        }
    }
    if (empty_p >= 0) {
        assert_int_equal(batch_add_playlist(b, mr_pl_id(pid, sizeof pid, empty_p), 6), 0);
        touched[empty_p] = 1;
    }
    for (int p = 0; p < MR_PL; p++) {
        if (!touched[p])
            continue;
        n_pl++;
        if (p > max_p)
            max_p = p;
        for (int k = 0; k < MR_IT; k++) {
            stored += in_batch[p][k] && !m->mem[p][k];
            removed += mode == STORE_COMMIT_REPLACE && !in_batch[p][k] && m->mem[p][k];
            if (in_batch[p][k] && k > max_k)
                max_k = k;
        }
    }
    if (!expect_ok) {
        assert_true(store_batch_commit(s, b, mode, &r) < 0);
        assert_true(strlen(store_errmsg(s)) > 0);
        batch_destroy(b);
        return;
    }
    assert_int_equal(store_batch_commit(s, b, mode, &r), 0);
    assert_int_equal(r.playlists, n_pl);
    assert_int_equal(r.rows_stored, stored);
    assert_int_equal(r.rows_duplicate, (int64_t)n - stored);
    assert_int_equal(r.rows_removed, removed);
    batch_destroy(b);
    for (int p = 0; p < MR_PL; p++) {
        if (!touched[p])
            continue;
        for (int k = 0; k < MR_IT; k++) {
            if (mode == STORE_COMMIT_REPLACE)
                m->mem[p][k] = in_batch[p][k];
            else
                m->mem[p][k] |= in_batch[p][k];
            if (in_batch[p][k] && k % 5 != 0)
                m->title[k] = stage;
        }
    }
    if (max_p + 1 > m->n_pl)
        m->n_pl = max_p + 1;
    if (max_k + 1 > m->n_it)
        m->n_it = max_k + 1;
}

static void test_multirow(void **state)
{
    struct fixture *f = *state;
    struct mr_model *m = calloc(1, sizeof *m);
    struct mr_row *rows = calloc(4 * MR_IT, sizeof *rows);
    int P[MR_PL];
    size_t n;

    assert_non_null(m);
    assert_non_null(rows);
    for (int k = 0; k < MR_IT; k++)
        m->title[k] = -1;
    memset(mr_bad_it, 'z', sizeof mr_bad_it - 1);
    memcpy(mr_bad_it, "it0331", 6); /* sorts 72nd of stage 5's new items */
    memset(mr_bad_pl, 'z', sizeof mr_bad_pl - 1);
    memcpy(mr_bad_pl, "pl0362", 6); /* 102nd of stage 6's new playlists */

    /* 1: a fresh store, 2 * 64 + 3 new items and new playlists. */
    for (int j = 0; j < 2 * MR_CHUNK + 3; j++)
        P[j] = j;
    n = mr_rows(rows, 0, 2 * MR_CHUNK + 3, P, 2 * MR_CHUNK + 3, -2);
    mr_commit(f->s, m, rows, n, -2, 1, STORE_COMMIT_MERGE, 1);
    assert_int_equal(m->n_it, 131);
    assert_int_equal(m->n_pl, 131);
    mr_check(f->s, m);

    /* 2: 64 + 1 new of each, with stored items and playlists (scans). */
    P[0] = 0;
    P[1] = 7;
    for (int j = 0; j < MR_CHUNK + 1; j++)
        P[2 + j] = 131 + j;
    n = mr_rows(rows, 131, 196, P, MR_CHUNK + 3, -2);
    mr_commit(f->s, m, rows, n, -2, 2, STORE_COMMIT_MERGE, 1);
    assert_int_equal(m->n_it, 196);
    assert_int_equal(m->n_pl, 196);
    mr_check(f->s, m);

    /* 3: a small batch against the bigger tables: probes, and the
     * playlists' insert-first path. */
    P[0] = 5;
    P[1] = 196;
    P[2] = 197;
    n = mr_rows(rows, 196, 197, P, 3, -2);
    mr_commit(f->s, m, rows, n, -2, 3, STORE_COMMIT_MERGE, 1);
    assert_int_equal(m->n_it, 197);
    assert_int_equal(m->n_pl, 198);
    mr_check(f->s, m);

    /* 4: REPLACE with exactly 64 new items and 64 new playlists, one of
     * them empty (a zero-length blob inside a multi-row INSERT). */
    P[0] = 3;
    for (int j = 0; j < MR_CHUNK; j++)
        P[1 + j] = 198 + j;
    n = mr_rows(rows, 197, 261, P, MR_CHUNK + 1, 200);
    mr_commit(f->s, m, rows, n, 200, 4, STORE_COMMIT_REPLACE, 1);
    assert_int_equal(m->n_it, 261);
    assert_int_equal(m->n_pl, 262);
    mr_check(f->s, m);

    /* 5: an over-long item id inside the second multi-row INSERT of items
     * fails the upload; nothing of it stays, not even a key. */
    for (int j = 0; j < 2 * MR_CHUNK + 3; j++)
        P[j] = 262 + j;
    n = mr_rows(rows, 261, 392, P, 2 * MR_CHUNK + 3, -2);
    rows[n++] = (struct mr_row){262, MR_BAD};
    mr_commit(f->s, m, rows, n, -2, 5, STORE_COMMIT_MERGE, 0);
    mr_check(f->s, m);

    /* 6: the same with an over-long playlist id in the second multi-row
     * INSERT of playlists, after all the items were inserted. */
    n = mr_rows(rows, 261, 392, P, 2 * MR_CHUNK + 3, -2);
    rows[n++] = (struct mr_row){MR_BAD, 3};
    mr_commit(f->s, m, rows, n, -2, 6, STORE_COMMIT_MERGE, 0);
    mr_check(f->s, m);

    /* 7: the handle stays usable and keys continue densely. */
    n = mr_rows(rows, 261, 392, P, 2 * MR_CHUNK + 3, -2);
    mr_commit(f->s, m, rows, n, -2, 7, STORE_COMMIT_MERGE, 1);
    assert_int_equal(m->n_it, 392);
    assert_int_equal(m->n_pl, 393);
    mr_check(f->s, m);

    /* Idempotent: the same upload again stores nothing. */
    mr_commit(f->s, m, rows, n, -2, 7, STORE_COMMIT_MERGE, 1);
    mr_check(f->s, m);
    free(rows);
    free(m);
}

/* ---- item search (storage/items_search.c) ---- */

struct search_acc {
    char ids[64][32];
    int n;
};

static int search_cb(void *ud, const struct store_item *it)
{
    struct search_acc *a = ud;
    if (a->n < 64)
        snprintf(a->ids[a->n], sizeof a->ids[0], "%s", it->id);
    a->n++;
    return 0;
}

/* Runs a whole search in pages of limit; returns the ids joined by ' '
 * into out, the number of pages in *pages and the smallest page size. */
static int search_all(struct store *s, const char *q, int limit, char *out, size_t size,
                      int *pages, int *shortest)
{
    struct store_search_pos pos;
    int total = 0;
    store_items_search_start(q, &pos);
    out[0] = '\0';
    *pages = 0;
    *shortest = 1 << 30;
    while (pos.field != STORE_SEARCH_DONE) {
        struct search_acc a = {.n = 0};
        int rc = store_items_search(s, q, &pos, limit, search_cb, &a);
        if (rc != 0)
            return rc;
        assert_true(a.n <= limit);
        for (int i = 0; i < a.n && i < 64; i++) {
            size_t len = strlen(out);
            snprintf(out + len, size - len, "%s%s", len ? " " : "", a.ids[i]);
        }
        total += a.n;
        (*pages)++;
        if (pos.field != STORE_SEARCH_DONE && a.n < *shortest)
            *shortest = a.n;
        assert_true(*pages < 1000);
    }
    return total;
}

static void test_search(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    char got[4096];
    int pages, shortest;

    assert_int_equal(add(b, "p1", "A1", "Beat It", "Michael Jackson"), 0);
    assert_int_equal(add(b, "p1", "b2", "beatles song", "The Beatles"), 0);
    assert_int_equal(add(b, "p1", "beat3", "Other", "Beat Boys"), 0);
    assert_int_equal(add(b, "p1", "x4", "BEAT", "beat"), 0);
    assert_int_equal(add(b, "p1", "x5", "Beaz", "x"), 0);
    assert_int_equal(add(b, "p2", "e6", "\xc3\x89" "clair", "z"), 0); /* "Éclair" */
    assert_int_equal(add(b, "p2", "50%_off", "t", "a"), 0);
    assert_int_equal(add(b, "p2", "50x", "t", "a"), 0);
    assert_int_equal(add(b, "p2", "notitle", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    /* the search table lags until synced */
    assert_int_equal(store_items_search_stale(f->s), 1);
    assert_int_equal(search_all(f->s, "beat", 100, got, sizeof got, &pages, &shortest), 0);
    assert_int_equal(store_items_search_sync(f->s), 0);
    assert_int_equal(store_items_search_stale(f->s), 0);

    /* ids first, then titles (folded order), then artists; each item once */
    assert_int_equal(search_all(f->s, "beat", 100, got, sizeof got, &pages, &shortest), 4);
    assert_string_equal(got, "beat3 x4 A1 b2");
    assert_int_equal(pages, 1);
    /* case-insensitive for ASCII, in every field */
    assert_int_equal(search_all(f->s, "BEAT", 100, got, sizeof got, &pages, &shortest), 4);
    assert_string_equal(got, "beat3 x4 A1 b2");
    assert_int_equal(search_all(f->s, "michael j", 100, got, sizeof got, &pages, &shortest), 1);
    assert_string_equal(got, "A1");
    assert_int_equal(search_all(f->s, "a1", 100, got, sizeof got, &pages, &shortest), 1);
    /* pages of one give the same sequence */
    assert_int_equal(search_all(f->s, "beat", 1, got, sizeof got, &pages, &shortest), 4);
    assert_string_equal(got, "beat3 x4 A1 b2");
    assert_int_equal(pages, 4);
    /* NOCASE folds ASCII only: "é" does not find "É"; "É" does */
    assert_int_equal(search_all(f->s, "\xc3\xa9", 100, got, sizeof got, &pages, &shortest), 0);
    assert_int_equal(search_all(f->s, "\xc3\x89" "c", 100, got, sizeof got, &pages, &shortest),
                     1);
    assert_string_equal(got, "e6");
    /* LIKE wildcards are plain characters */
    assert_int_equal(search_all(f->s, "50%", 100, got, sizeof got, &pages, &shortest), 1);
    assert_string_equal(got, "50%_off");
    assert_int_equal(search_all(f->s, "nomatch", 100, got, sizeof got, &pages, &shortest), 0);
    /* the empty prefix lists every item by key, in pages */
    assert_int_equal(search_all(f->s, "", 4, got, sizeof got, &pages, &shortest), 9);
    assert_int_equal(pages, 3);

    /* A rename (the latest upload's title wins) reaches the search after a
     * sync: the new title is found, the old one no more; a playlist-count
     * change alone does not make the table stale. */
    b = batch_create();
    assert_int_equal(add(b, "p3", "x5", "Zebra", NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_int_equal(store_items_search_stale(f->s), 1);
    assert_int_equal(store_items_search_sync(f->s), 0);
    assert_int_equal(search_all(f->s, "zeb", 100, got, sizeof got, &pages, &shortest), 1);
    assert_string_equal(got, "x5");
    assert_int_equal(search_all(f->s, "beaz", 100, got, sizeof got, &pages, &shortest), 0);
    b = batch_create();
    assert_int_equal(add(b, "p4", "x5", "Zebra", NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_int_equal(store_items_search_stale(f->s), 0);
    /* renamed twice before a sync: the first old value is the indexed one */
    b = batch_create();
    assert_int_equal(add(b, "p5", "x5", "Yak", "Artie"), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    b = batch_create();
    assert_int_equal(add(b, "p5", "x5", "Xylophone", NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_int_equal(store_items_search_sync(f->s), 0);
    assert_int_equal(search_all(f->s, "zeb", 100, got, sizeof got, &pages, &shortest), 0);
    assert_int_equal(search_all(f->s, "yak", 100, got, sizeof got, &pages, &shortest), 0);
    assert_int_equal(search_all(f->s, "xylo", 100, got, sizeof got, &pages, &shortest), 1);
    assert_int_equal(search_all(f->s, "artie", 100, got, sizeof got, &pages, &shortest), 1);
    assert_int_equal(search_all(f->s, "", 100, got, sizeof got, &pages, &shortest), 9);

    /* Ids without letters are found through items' own id index (a prefix
     * without letters), ids with letters through the search table too. */
    b = batch_create();
    assert_int_equal(add(b, "p6", "123", "Numbers", NULL), 0);
    assert_int_equal(add(b, "p6", "1234", NULL, NULL), 0);
    assert_int_equal(add(b, "p6", "12AB", NULL, NULL), 0);
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_int_equal(store_items_search_sync(f->s), 0);
    assert_int_equal(search_all(f->s, "12", 100, got, sizeof got, &pages, &shortest), 3);
    assert_string_equal(got, "123 1234 12AB");
    assert_int_equal(search_all(f->s, "12", 1, got, sizeof got, &pages, &shortest), 3);
    assert_string_equal(got, "123 1234 12AB");
    assert_int_equal(search_all(f->s, "12a", 100, got, sizeof got, &pages, &shortest), 1);
    assert_string_equal(got, "12AB");
    assert_int_equal(search_all(f->s, "123", 100, got, sizeof got, &pages, &shortest), 2);

    /* bad arguments and tampered positions */
    struct search_acc a = {.n = 0};
    struct store_search_pos pos = {STORE_SEARCH_TITLE, 99999};
    assert_int_equal(store_items_search(f->s, "beat", &pos, 10, search_cb, &a), -EINVAL);
    pos = (struct store_search_pos){STORE_SEARCH_ALL, 0};
    assert_int_equal(store_items_search(f->s, "beat", &pos, 10, search_cb, &a), -EINVAL);
    pos = (struct store_search_pos){STORE_SEARCH_ID, 0};
    assert_int_equal(store_items_search(f->s, "", &pos, 10, search_cb, &a), -EINVAL);
    assert_int_equal(store_items_search(f->s, "beat", &pos, 0, search_cb, &a), -EINVAL);
    assert_int_equal(store_items_search(f->s, "beat", &pos, 1001, search_cb, &a), -EINVAL);
    char longq[STORE_SEARCH_PREFIX_MAX + 2];
    memset(longq, 'a', sizeof longq - 1);
    longq[sizeof longq - 1] = '\0';
    assert_int_equal(store_items_search(f->s, longq, &pos, 10, search_cb, &a), -EINVAL);
    assert_int_equal(a.n, 0);
}

/* Items matching in title and artist are skipped in the artist phase; the
 * scan per call is bounded, so such pages come back short (even empty)
 * with a position to go on from, and the whole search still lists each
 * item exactly once. */
static void test_search_bounded(void **state)
{
    struct fixture *f = *state;
    struct batch *b = batch_create();
    char it[32], title[32], got[4096];
    int pages, shortest;

    for (int i = 0; i < 300; i++) {
        snprintf(it, sizeof it, "i%03d", i);
        snprintf(title, sizeof title, "zz%03d", i);
        assert_int_equal(add(b, "p", it, title, title), 0);
    }
    assert_int_equal(store_batch_commit(f->s, b, STORE_COMMIT_MERGE, NULL), 0);
    batch_destroy(b);
    assert_int_equal(store_items_search_sync(f->s), 0);
    assert_int_equal(search_all(f->s, "zz", 10, got, sizeof got, &pages, &shortest), 300);
    assert_int_equal(shortest, 0); /* the artist phase skips 300 rows, 104 a call */
    assert_true(pages >= 30 + 2);
    assert_int_equal(search_all(f->s, "ZZ1", 1000, got, sizeof got, &pages, &shortest), 100);
    assert_int_equal(pages, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_in_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_titles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multirow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
