/*
 * String table (see strtab.h). Hash: 64-bit FNV-1a over 8-byte words
 * with a final mix; ids are short, so the hash is a few multiplies.
 */
#include "base/strtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"

void strtab_init(struct strtab *t, uint32_t max_strings)
{
    memset(t, 0, sizeof *t);
    t->max_strings = max_strings ? max_strings : UINT32_MAX - 1;
}

void strtab_deinit(struct strtab *t)
{
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

static uint64_t strtab_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, s + i, len - i);
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    return h ^ (h >> 32);
}

static int strtab_eq(const struct strtab *t, uint32_t i, const char *s, size_t len)
{
    return t->len[i] == len && memcmp(t->arena + t->off[i], s, len) == 0;
}

int64_t strtab_find(const struct strtab *t, const char *s, size_t len)
{
    if (!t->slot)
        return -1;
    for (uint64_t p = strtab_hash(s, len) & t->mask;; p = (p + 1) & t->mask) {
        uint32_t v = t->slot[p];
        if (!v)
            return -1;
        if (strtab_eq(t, v - 1, s, len))
            return v - 1;
    }
}

/* Doubles the hash (or creates it) and reinserts every string. */
static int strtab_rehash(struct strtab *t)
{
    uint64_t nslots = t->slot ? ((uint64_t)t->mask + 1) * 2 : 1024;
    if (nslots > (1ULL << 32))
        return -E2BIG;
    uint32_t *slot = calloc(nslots, sizeof *slot);
    if (!slot)
        return -ENOMEM;
    uint32_t mask = (uint32_t)(nslots - 1);
    for (uint32_t i = 0; i < t->n; i++) {
        uint64_t p = strtab_hash(t->arena + t->off[i], t->len[i]) & mask;
        while (slot[p])
            p = (p + 1) & mask;
        slot[p] = i + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->mask = mask;
    return 0;
}

int strtab_intern(struct strtab *t, const char *s, size_t len, uint32_t *index, int *added)
{
    int rc;
    if (added)
        *added = 0;
    if (len > UINT32_MAX - 1)
        return -E2BIG;
    if (t->slot) {
        uint64_t h = strtab_hash(s, len);
        for (uint64_t p = h & t->mask;; p = (p + 1) & t->mask) {
            uint32_t v = t->slot[p];
            if (!v)
                break;
            if (strtab_eq(t, v - 1, s, len)) {
                *index = v - 1;
                return 0;
            }
        }
    }
    if (t->n >= t->max_strings)
        return -E2BIG;
    /* room first, so a failure leaves the table as it was */
    uint64_t cap = t->cap;
    if ((rc = array_grow((void **)&t->off, &cap, (uint64_t)t->n + 1, sizeof *t->off, 256)) < 0)
        return rc;
    cap = t->cap;
    if ((rc = array_grow((void **)&t->len, &cap, (uint64_t)t->n + 1, sizeof *t->len, 256)) < 0)
        return rc;
    t->cap = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
    if ((rc = array_grow((void **)&t->arena, &t->arena_cap, t->arena_len + len + 1, 1, 1 << 16)) <
        0)
        return rc;
    if ((!t->slot || ((uint64_t)t->n + 1) * 2 > (uint64_t)t->mask + 1) &&
        (rc = strtab_rehash(t)) < 0)
        return rc;
    uint32_t i = t->n++;
    t->off[i] = t->arena_len;
    t->len[i] = (uint32_t)len;
    memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = '\0';
    t->arena_len += len + 1;
    uint64_t p = strtab_hash(s, len) & t->mask;
    while (t->slot[p])
        p = (p + 1) & t->mask;
    t->slot[p] = i + 1;
    *index = i;
    if (added)
        *added = 1;
    return 0;
}

size_t strtab_bytes(const struct strtab *t)
{
    return (size_t)t->arena_cap + (size_t)t->cap * (sizeof *t->off + sizeof *t->len) +
           (t->slot ? ((size_t)t->mask + 1) * sizeof *t->slot : 0);
}
