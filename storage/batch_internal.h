/*
 * Private to storage/: the layout of struct batch (batch.c builds it,
 * commit.c reads it). Not for use outside storage/.
 *
 * A batch holds three intern tables (playlist ids, item ids, and "texts":
 * titles and artists share one table because the same artist name repeats
 * across many items) whose strings live in a chunked arena so they never
 * move. Each interned string has a dense index in its table (first-seen
 * order; commit.c assigns new items their keys in id order). Per playlist a
 * growing array of item indices; per item the index of the latest
 * title/artist given (+1, 0 = not given).
 */
#ifndef ITEMVEC_STORAGE_BATCH_INTERNAL_H
#define ITEMVEC_STORAGE_BATCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/siphash.h"
#include "storage/batch.h"

struct batch__chunk {
    struct batch__chunk *next;
    size_t used, size;
    char data[];
};

/* Open addressing slot, 16 bytes, so that a probe touches one cache line
 * and, for the common short ids, never the string: tag holds the bytes
 * themselves (zero-padded) when len <= 8, which makes the comparison exact
 * from the slot alone; for longer strings it holds their 64-bit keyed hash
 * (SipHash-1-3 under the batch's key) and a match is confirmed with
 * memcmp. The slot's position is that keyed hash modulo the table size,
 * for short strings too. Ids carry no NUL bytes, but texts may be
 * anything, so the length takes part in every comparison. */
struct batch__slot {
    uint64_t tag;
    uint32_t len;
    uint32_t idx1; /* index + 1, 0 = empty */
};

struct batch__strtab {
    const char **str;          /* [n]: bytes, NUL-terminated; length in len[] */
    uint32_t *len;             /* [n] */
    struct batch__slot *slots; /* [mask + 1] */
    struct batch__texthash *aux; /* [mask + 1], the items table only */
    uint32_t n, cap;           /* entries used / allocated */
    uint32_t mask;             /* slot count - 1 (power of two) */
};

struct batch__list {
    uint32_t *idx; /* item indices in row order, repeats kept */
    uint32_t n, cap;
};

/* Per batch item: its latest title/artist (texts index + 1, 0 = none).
 * Only read when a row brings a different text (see batch__texthash) and
 * by commit.c. */
struct batch__item {
    uint32_t title, artist;
};

/* The 64-bit hashes of an item's current title and artist (0 = none; a
 * real hash of 0 is stored as 1), kept beside the item table's slots, at
 * the same position: the probe that finds a row's item brings the line
 * that tells whether the row repeats the item's texts, which it nearly
 * always does. One cache miss per row instead of two (see batch.c). */
struct batch__texthash {
    uint64_t title, artist;
};

/* A row staged by batch_add, waiting for its turn (batch.c explains the
 * look-ahead). Its strings are copied into bytes[] (title and artist
 * absent when the *_len is UINT32_MAX); the hashes and tags are computed
 * at staging, when the row's slots are prefetched. */
#define BATCH__LOOKAHEAD 16
#define BATCH__PENDING_BYTES 200
struct batch__pending {
    uint64_t pl_tag, item_tag, pl_hash, item_hash, title_hash, artist_hash;
    uint32_t pl_len, item_len, title_len, artist_len;
    int same_playlist; /* same playlist as the row staged before it */
    char bytes[BATCH__PENDING_BYTES];
};

struct batch {
    struct batch__chunk *chunks;
    struct batch__strtab playlists, items, texts;
    struct batch__list *lists;  /* [playlists.cap] */
    struct batch__item *item;   /* [items.cap] */
    uint32_t last_playlist;     /* index + 1 of the previous row's playlist */
    struct batch__pending pending[BATCH__LOOKAHEAD]; /* ring of staged rows */
    uint32_t pending_head, pending_n;
    int error;   /* first error of a staged row's processing: sticky */
    size_t rows; /* rows added, staged ones included */
    size_t memory; /* bytes allocated, kept up to date by batch.c */
    struct siphash_key key; /* this batch's random hash key (batch_create) */
};

/* Index of the string s (len bytes) in t, or UINT32_MAX when t does not
 * hold it. For commit.c, which joins stored rows against the batch. */
uint32_t batch__find(const struct batch *b, const struct batch__strtab *t, const char *s,
                     size_t len);

/* Test-only: replaces the batch's random key, so that a test can build
 * strings that collide under a known key. Only on an empty batch. */
void batch__set_key(struct batch *b, uint64_t k0, uint64_t k1);

#endif
