/*
 * Private to storage/: the layout of struct batch (batch.c builds it,
 * commit.c reads it). Not for use outside storage/.
 *
 * A batch holds three intern tables (playlist ids, item ids, and "texts":
 * titles and artists share one table because the same artist name repeats
 * across many items) whose strings live in a chunked arena so they never
 * move. Each interned string has a dense index in its table (first-seen
 * order; commit.c assigns new items their keys in id order). Per playlist a growing array of item indices; per item the index
 * of the latest title/artist given (+1, 0 = not given).
 */
#ifndef ITEMVEC_STORAGE_BATCH_INTERNAL_H
#define ITEMVEC_STORAGE_BATCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "storage/batch.h"

struct batch__chunk {
    struct batch__chunk *next;
    size_t used, size;
    char data[];
};

/* Open addressing slot: the hash is kept next to the index so that a probe
 * touches one cache line until the hashes match. */
struct batch__slot {
    uint32_t hash;
    uint32_t idx1; /* index + 1, 0 = empty */
};

struct batch__strtab {
    const char **str;          /* [n]: bytes, NUL-terminated; length in len[] */
    uint32_t *len;             /* [n] */
    struct batch__slot *slots; /* [mask + 1] */
    uint32_t n, cap;           /* entries used / allocated */
    uint32_t mask;             /* slot count - 1 (power of two) */
};

struct batch__list {
    uint32_t *idx; /* item indices in row order, repeats kept */
    uint32_t n, cap;
};

struct batch {
    struct batch__chunk *chunks;
    struct batch__strtab playlists, items, texts;
    struct batch__list *lists; /* [playlists.cap] */
    uint32_t *title;           /* [items.cap]: texts index + 1, 0 = none */
    uint32_t *artist;          /* [items.cap] */
    uint32_t last_playlist; /* index + 1 of the previous row's playlist */
    size_t rows;
    size_t memory; /* bytes allocated, kept up to date by batch.c */
};

#endif
