/*
 * Helpers shared by the steps of store_batch_commit (commit_internal.h):
 * blob binding, text binding, the BINARY-collation order of a batch's
 * strings, and the checked step of a multi-row INSERT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/commit_internal.h"

int commit__u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int commit__u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int commit__blob_bind(struct commit_blob *bl, sqlite3_stmt *st, int col, const uint32_t *keys,
                      size_t n)
{
    size_t bytes = n * sizeof(uint32_t);

    if (bytes > (size_t)0x7fffffff)
        return -E2BIG;
    if (bytes > bl->cap) {
        unsigned char *p = realloc(bl->p, bytes);
        if (!p)
            return -ENOMEM;
        bl->p = p;
        bl->cap = bytes;
    }
    store__keys_encode(bl->p, keys, n);
    /* A zero-length blob must still be a blob, not NULL (items NOT NULL). */
    if (n == 0)
        return sqlite3_bind_zeroblob(st, col, 0) == SQLITE_OK ? 0 : -EIO;
    return sqlite3_bind_blob(st, col, bl->p, (int)bytes, SQLITE_STATIC) == SQLITE_OK ? 0 : -EIO;
}

int commit__bind_text_or_null(sqlite3_stmt *st, int col, const struct batch__strtab *t,
                              uint32_t idx1)
{
    if (!idx1)
        return sqlite3_bind_null(st, col);
    return commit__bind_opt_text(st, col, t->str[idx1 - 1], t->len[idx1 - 1]);
}

/* Sort entry: the first 8 bytes of an id, big-endian, zero-padded, so most
 * comparisons touch only this array; ties compare the whole ids. */
struct commit_order_entry {
    uint64_t prefix;
    uint32_t idx;
};

static int commit_order_cmp(const void *a, const void *b, void *arg)
{
    const struct commit_order_entry *x = a, *y = b;
    const struct batch__strtab *t = arg;
    uint32_t lx, ly;
    int r;

    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    lx = t->len[x->idx];
    ly = t->len[y->idx];
    r = memcmp(t->str[x->idx], t->str[y->idx], lx < ly ? lx : ly);
    if (r != 0)
        return r;
    return (lx > ly) - (lx < ly);
}

/* Returns the indices of t's strings in the order SQLite's BINARY collation
 * sorts them (memcmp, then length). NULL on ENOMEM. */
uint32_t *commit__order(const struct batch__strtab *t)
{
    struct commit_order_entry *o = malloc((t->n ? t->n : 1) * sizeof *o);
    uint32_t *perm = malloc((t->n ? t->n : 1) * sizeof *perm);

    if (!o || !perm) {
        free(o);
        free(perm);
        return NULL;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        const unsigned char *s = (const unsigned char *)t->str[i];
        uint64_t pfx = 0;
        for (uint32_t k = 0; k < 8; k++)
            pfx = pfx << 8 | (k < t->len[i] ? s[k] : 0);
        o[i].prefix = pfx;
        o[i].idx = i;
    }
    /* qsort_r (glibc, POSIX.1-2024): the comparator needs the batch. */
    if (t->n > 0)
        qsort_r(o, t->n, sizeof *o, commit_order_cmp, (void *)t);
    for (uint32_t i = 0; i < t->n; i++)
        perm[i] = o[i].idx;
    free(o);
    return perm;
}

/* Runs an INSERT of n rows, bound, and resets it. The statements have no
 * ON CONFLICT clause, so a conflict is already an error; the count check
 * guards the invariant anyway (what = "item" or "playlist", first_id the
 * id of the first row, for the message). */
int commit__insert_step(struct store *s, sqlite3_stmt *st, size_t n, const char *what,
                        const char *first_id)
{
    int rc = sqlite3_step(st);
    sqlite3_int64 changes = sqlite3_changes64(s->db);
    int ret = 0;

    if (rc != SQLITE_DONE)
        ret = store__error(s, rc);
    else if (changes != (sqlite3_int64)n) {
        snprintf(s->errmsg, sizeof s->errmsg,
                 "inserting %zu new %ss from %.64s stored %lld: one existed but was not found", n,
                 what, first_id, (long long)changes);
        ret = -EIO;
    }
    sqlite3_reset(st);
    return ret;
}
