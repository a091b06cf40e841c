/*
 * String table: interns byte strings (ids from an import body) and gives
 * each distinct one a dense index 0, 1, 2, ... in order of first insertion.
 * An open-addressing hash over one growing arena of the strings, so an
 * import of 10^8 rows naming 10^5..10^6 distinct ids costs two hash probes
 * per row and the ids once.
 *
 * Memory: each string once (+1 NUL byte) in the arena, 8 bytes of offset
 * and 4 of length per string, and 4 bytes per hash slot at a load <= 1/2
 * (so 8..16 bytes per string).
 * Sizes are bounded by the caller (max_strings at create): beyond it
 * strtab_intern returns -E2BIG, so a hostile body cannot grow it without
 * limit. Strings may hold any bytes (no NUL check here; callers validate).
 *
 * Threading: not synchronised. One thread at a time; a table handed to
 * another thread (uv_queue_work) may be read there while its owner leaves
 * it alone.
 */
#ifndef ITEMVEC_BASE_STRTAB_H
#define ITEMVEC_BASE_STRTAB_H

#include <stddef.h>
#include <stdint.h>

struct strtab {
    char *arena; /* the strings, each NUL-terminated */
    uint64_t arena_len, arena_cap;
    uint64_t *off;   /* [n] offset of string i in arena */
    uint32_t *len;   /* [n] its length */
    uint32_t n, cap; /* strings, capacity of off/len */
    uint32_t *slot;  /* [mask + 1] index + 1, 0 = empty */
    uint32_t mask;
    uint32_t max_strings;
};

/* Initialises an empty table (embedded struct) that accepts at most
 * max_strings distinct strings (0: UINT32_MAX - 1). No allocation yet. */
void strtab_init(struct strtab *t, uint32_t max_strings);

/* Frees everything t holds and zeroes it. Safe on a zeroed struct. */
void strtab_deinit(struct strtab *t);

/* Looks s (len bytes, borrowed) up and inserts it when new. *index gets
 * its dense index; *added is 1 when it was new (may be NULL). Returns 0,
 * -E2BIG (a new string over max_strings, or longer than UINT32_MAX), or
 * -ENOMEM. On error the table is unchanged. */
int strtab_intern(struct strtab *t, const char *s, size_t len, uint32_t *index, int *added);

/* Index of s, or -1 when absent. */
int64_t strtab_find(const struct strtab *t, const char *s, size_t len);

/* String i (NUL-terminated, borrowed until the next intern or deinit). */
static inline const char *strtab_str(const struct strtab *t, uint32_t i)
{
    return t->arena + t->off[i];
}

static inline uint32_t strtab_len(const struct strtab *t, uint32_t i)
{
    return t->len[i];
}

/* Bytes held (arena, arrays, hash slots). */
size_t strtab_bytes(const struct strtab *t);

#endif
