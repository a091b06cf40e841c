/*
 * JSON text builder (see jbuf.h).
 */
#include "api/jbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int jbuf_reserve(struct jbuf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void jbuf_raw(struct jbuf *b, const char *s, size_t n)
{
    if (jbuf_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jbuf_lit(struct jbuf *b, const char *s)
{
    jbuf_raw(b, s, strlen(s));
}

size_t jbuf_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

void jbuf_str(struct jbuf *b, const char *s)
{
    if (!s) {
        jbuf_raw(b, "null", 4);
        return;
    }
    size_t need = strlen(s) * 6 + 2; /* worst case: every byte \u00XX */
    if (jbuf_reserve(b, need) != 0)
        return;
    b->p[b->len++] = '"';
    b->len += jbuf_escape(b->p + b->len, need, s);
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

void jbuf_float(struct jbuf *b, double v)
{
    if (jbuf_reserve(b, 32) != 0)
        return;
    b->len += (size_t)snprintf(b->p + b->len, 32, "%.9g", v);
}
