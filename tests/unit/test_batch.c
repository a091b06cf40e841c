/*
 * Unit tests for the in-memory write batch (storage/batch.c): counting of
 * rows, playlists and distinct items, interning (same string -> one entry,
 * strings not NUL-terminated, ids with embedded bytes), growth past the
 * hash table's first sizes, and memory accounting. What a batch stores is
 * checked end to end through store_batch_commit in test_store.c; the
 * look-ahead (rows staged, applied later, long rows applied at once) is
 * checked here against the batch's internal layout (batch_internal.h),
 * since its mistakes would be wrong membership lists or a stale title.
 * Hash flooding: under a known key (batch__set_key) ids built to share a
 * slot make the table grow and then refuse (-EOVERFLOW) instead of probing
 * quadratically, and a batch's random key really places the slots.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/siphash.h"
#include "storage/batch.h"
#include "storage/batch_internal.h"

static int add(struct batch *b, const char *pl, const char *it, const char *title,
               const char *artist)
{
    return batch_add(b, pl, strlen(pl), it, strlen(it), title, title ? strlen(title) : 0, artist,
                     artist ? strlen(artist) : 0);
}

static void test_empty(void **state)
{
    struct batch *b = batch_create();

    (void)state;
    assert_non_null(b);
    assert_int_equal(batch_rows(b), 0);
    assert_int_equal(batch_playlists(b), 0);
    assert_int_equal(batch_items(b), 0);
    assert_true(batch_memory(b) > 0);
    batch_destroy(b);
    batch_destroy(NULL);
}

static void test_counts(void **state)
{
    struct batch *b = batch_create();

    (void)state;
    assert_int_equal(add(b, "p1", "a", "A", NULL), 0);
    assert_int_equal(add(b, "p1", "b", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "a", NULL, "X"), 0); /* repeat in playlist: still a row */
    assert_int_equal(add(b, "p2", "a", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "c", NULL, NULL), 0); /* back to p1, not adjacent */
    assert_int_equal(batch_add_playlist(b, "p3", 2), 0);
    assert_int_equal(batch_add_playlist(b, "p1", 2), 0);
    assert_int_equal(batch_rows(b), 5);
    assert_int_equal(batch_playlists(b), 3);
    assert_int_equal(batch_items(b), 3);
    batch_destroy(b);
}

static void test_not_nul_terminated(void **state)
{
    struct batch *b = batch_create();
    const char buf[] = "p1p2itemXitemY";

    (void)state;
    /* Same bytes from different buffers and lengths intern correctly. */
    assert_int_equal(batch_add(b, buf, 2, buf + 4, 5, buf, 3, NULL, 0), 0);
    assert_int_equal(batch_add(b, buf + 2, 2, buf + 9, 5, NULL, 0, NULL, 0), 0);
    assert_int_equal(batch_add(b, "p1", 2, "itemX", 5, NULL, 0, NULL, 0), 0);
    assert_int_equal(batch_add(b, "p1", 2, "item", 4, NULL, 0, NULL, 0), 0); /* prefix: new */
    assert_int_equal(batch_playlists(b), 2);
    assert_int_equal(batch_items(b), 3);
    /* Embedded NUL bytes are part of the id. */
    assert_int_equal(batch_add(b, "p1", 2, "a\0b", 3, NULL, 0, NULL, 0), 0);
    assert_int_equal(batch_add(b, "p1", 2, "a\0c", 3, NULL, 0, NULL, 0), 0);
    assert_int_equal(batch_items(b), 5);
    /* An empty title is a given (empty) title, distinct from NULL. */
    assert_int_equal(batch_add(b, "p1", 2, "z", 1, "", 0, "", 0), 0);
    batch_destroy(b);
}

static void test_many(void **state)
{
    struct batch *b = batch_create();
    char pl[32], it[32], title[48];
    size_t mem_small;

    (void)state;
    mem_small = batch_memory(b);
    /* 200 k rows over 5 k playlists and 50 k items: several table growths. */
    for (int r = 0; r < 200000; r++) {
        int pn = snprintf(pl, sizeof pl, "playlist-%d", r / 40);
        int in = snprintf(it, sizeof it, "%d", (r * 7919) % 50000);
        int tn = snprintf(title, sizeof title, "title of %d", (r * 7919) % 50000);
        assert_int_equal(batch_add(b, pl, (size_t)pn, it, (size_t)in, title, (size_t)tn, "art", 3),
                         0);
    }
    assert_int_equal(batch_rows(b), 200000);
    assert_int_equal(batch_playlists(b), 5000);
    assert_int_equal(batch_items(b), 50000);
    /* ~4 B/row + strings: well under 40 B/row for this shape. */
    assert_true(batch_memory(b) > mem_small + 200000 * 4);
    assert_true(batch_memory(b) < 200000 * 40);
    batch_destroy(b);
}

/* The current title of item id in b, "" when none. */
static const char *title_of(struct batch *b, const char *id)
{
    uint32_t i = batch__find(b, &b->items, id, strlen(id));
    assert_true(i != UINT32_MAX);
    return b->item[i].title ? b->texts.str[b->item[i].title - 1] : "";
}

/* The batch item indices of playlist pl, as ids joined by ','. */
static void members_of(struct batch *b, const char *pl, char *out, size_t cap)
{
    uint32_t p = batch__find(b, &b->playlists, pl, strlen(pl));
    size_t n = 0;

    assert_true(p != UINT32_MAX);
    out[0] = '\0';
    for (uint32_t r = 0; r < b->lists[p].n; r++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", r ? "," : "",
                              b->items.str[b->lists[p].idx[r]]);
}

static void test_lookahead_order(void **state)
{
    struct batch *b = batch_create();
    char longt[300], got[256];

    (void)state;
    memset(longt, 'L', sizeof longt - 1);
    longt[sizeof longt - 1] = '\0';
    /* Short rows are staged, a row with 299 bytes of title is applied at
     * once: the latest title must still win in row order, both ways. */
    assert_int_equal(add(b, "p1", "x", "first", NULL), 0);
    assert_int_equal(add(b, "p1", "x", longt, NULL), 0);
    assert_int_equal(add(b, "p1", "y", longt, NULL), 0);
    assert_int_equal(add(b, "p1", "y", "short", NULL), 0);
    assert_int_equal(add(b, "p2", "x", "third", "art"), 0);
    /* Playlists interleaved within the look-ahead window. */
    assert_int_equal(add(b, "p1", "z", NULL, NULL), 0);
    assert_int_equal(add(b, "p2", "z", NULL, NULL), 0);
    assert_int_equal(add(b, "p1", "w", NULL, NULL), 0);
    assert_int_equal(batch_rows(b), 8); /* staged rows count at once */
    assert_int_equal(batch_flush(b), 0);
    assert_string_equal(title_of(b, "x"), "third");
    assert_string_equal(title_of(b, "y"), "short");
    assert_string_equal(title_of(b, "z"), "");
    members_of(b, "p1", got, sizeof got);
    assert_string_equal(got, "x,x,y,y,z,w");
    members_of(b, "p2", got, sizeof got);
    assert_string_equal(got, "x,z");
    /* Back to the first title after another, in a later window. */
    for (int i = 0; i < 40; i++)
        assert_int_equal(add(b, "p3", i % 2 ? "x" : "v", i % 2 ? "first" : "vee", NULL), 0);
    assert_int_equal(batch_items(b), 5);
    assert_string_equal(title_of(b, "x"), "first");
    batch_destroy(b);
}

/* Rows staged but never flushed are freed with the batch (ASan checks
 * that nothing leaks), and batch_add_playlist keeps row order. */
static void test_lookahead_unflushed(void **state)
{
    struct batch *b = batch_create();
    char got[64];

    (void)state;
    assert_int_equal(add(b, "p1", "a", "A", NULL), 0);
    assert_int_equal(add(b, "p1", "b", "B", NULL), 0);
    assert_int_equal(batch_add_playlist(b, "p0", 2), 0);
    assert_int_equal(add(b, "p1", "c", NULL, NULL), 0);
    assert_int_equal(batch_playlists(b), 2);
    members_of(b, "p1", got, sizeof got);
    assert_string_equal(got, "a,b,c");
    assert_int_equal(add(b, "p9", "d", NULL, NULL), 0); /* staged, dropped */
    batch_destroy(b);
}

/* Writes into out (>= 16 bytes) the k-th id whose SipHash-1-3 under key
 * has its low `bits` bits zero, searching from *next. */
static size_t colliding_id(const struct siphash_key *key, unsigned bits, uint64_t *next,
                           char *out)
{
    for (;; (*next)++) {
        int n = snprintf(out, 16, "c%llu", (unsigned long long)*next);
        if ((siphash13(key, out, (size_t)n) & ((UINT64_C(1) << bits) - 1)) == 0) {
            (*next)++;
            return (size_t)n;
        }
    }
}

/* The longest run of occupied slots in t. */
static size_t longest_run(const struct batch__strtab *t)
{
    size_t best = 0, run = 0;

    for (size_t i = 0; i <= (size_t)t->mask; i++) {
        run = t->slots[i].idx1 ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

/* 700 ids that share a slot under the batch's (known) key: a run longer
 * than the probe bound (512) makes the table grow past what its load needs,
 * and once it is sparse the batch refuses with -EOVERFLOW; the control
 * (700 other ids) goes in with short runs. The old fixed hash let such
 * ids in with one probe more per id: n^2/2 probes. */
static void test_collisions_bounded(void **state)
{
    const struct siphash_key key = {UINT64_C(0x1234567890abcdef), UINT64_C(0x0fedcba987654321)};
    struct batch *b = batch_create(), *ctl = batch_create();
    uint64_t next = 0;
    char id[16];
    int rc = 0, i;

    (void)state;
    batch__set_key(b, key.k0, key.k1);
    batch__set_key(ctl, key.k0, key.k1);
    for (i = 0; i < 700 && rc == 0; i++) {
        size_t n = colliding_id(&key, 14, &next, id);
        rc = batch_add(b, "p", 1, id, n, NULL, 0, NULL, 0);
        if (rc == 0)
            rc = batch_flush(b);
        /* Never a run much past the bound, whatever the table size. */
        if (b->items.slots)
            assert_true(longest_run(&b->items) <= 512 + 1);
    }
    assert_int_equal(rc, -EOVERFLOW);
    assert_true(i > 512); /* refused only past the bound */
    /* It grew past the 1024 slots its load needed before refusing. */
    assert_true((size_t)b->items.mask + 1 >= 4096);
    assert_int_equal(batch_add(b, "p", 1, "x", 1, NULL, 0, NULL, 0), -EOVERFLOW); /* sticky */

    for (i = 0; i < 700; i++) {
        int n = snprintf(id, sizeof id, "r%d", i);
        assert_int_equal(batch_add(ctl, "p", 1, id, (size_t)n, NULL, 0, NULL, 0), 0);
    }
    assert_int_equal(batch_items(ctl), 700);
    assert_int_equal((size_t)ctl->items.mask + 1, 1024);
    assert_true(longest_run(&ctl->items) < 64);
    batch_destroy(b);
    batch_destroy(ctl);
}

/* Each batch draws its own key, and the key decides the slots: the same
 * ids land in different places in two batches. */
static void test_key_places_slots(void **state)
{
    struct batch *a = batch_create(), *b = batch_create();
    char id[16];
    size_t same = 0;

    (void)state;
    assert_false(a->key.k0 == b->key.k0 && a->key.k1 == b->key.k1);
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(id, sizeof id, "%d", i);
        assert_int_equal(batch_add(a, "p", 1, id, (size_t)n, NULL, 0, NULL, 0), 0);
        assert_int_equal(batch_add(b, "p", 1, id, (size_t)n, NULL, 0, NULL, 0), 0);
    }
    assert_int_equal(batch_items(a), 1000);
    assert_int_equal(batch_items(b), 1000);
    assert_int_equal(a->items.mask, b->items.mask);
    for (size_t s = 0; s <= a->items.mask; s++)
        same += a->items.slots[s].idx1 && a->items.slots[s].idx1 == b->items.slots[s].idx1;
    assert_true(same < 100); /* ~1000/2048 expected by chance for the same item */
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(id, sizeof id, "%d", i);
        assert_true(batch__find(a, &a->items, id, (size_t)n) == (uint32_t)i);
        assert_true(batch__find(b, &b->items, id, (size_t)n) == (uint32_t)i);
    }
    batch_destroy(a);
    batch_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_lookahead_order),
        cmocka_unit_test(test_lookahead_unflushed),
        cmocka_unit_test(test_collisions_bounded),
        cmocka_unit_test(test_key_places_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
