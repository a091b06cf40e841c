/*
 * Growth of a heap array by doubling, shared by every growable array that
 * keeps (pointer, capacity) itself (the string table, the import
 * builders). Header-only; any thread (it touches only its arguments).
 */
#ifndef ITEMVEC_BASE_ARRAY_H
#define ITEMVEC_BASE_ARRAY_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Makes *p (elements of elem bytes, *cap of them) hold at least need:
 * capacity doubles from first (or from *cap); untouched capacity costs no
 * resident memory, so doubling does not double the RSS. 0, or -ENOMEM
 * with *p and *cap unchanged. */
static inline int array_grow(void **p, uint64_t *cap, uint64_t need, size_t elem, uint64_t first)
{
    if (need <= *cap)
        return 0;
    uint64_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    if (c > SIZE_MAX / elem)
        return -ENOMEM;
    void *np = realloc(*p, (size_t)c * elem);
    if (!np)
        return -ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

#endif
