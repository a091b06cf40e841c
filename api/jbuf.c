/*
 * JSON text builder (see jbuf.h).
 */
#include "api/jbuf.h"

#include <math.h>
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
    size_t len = strlen(s);
    /* fast path: nothing to escape (ids and titles almost never need it) */
    size_t i = 0;
    while (i < len && (unsigned char)s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    if (i == len) {
        if (jbuf_reserve(b, len + 2) != 0)
            return;
        b->p[b->len++] = '"';
        memcpy(b->p + b->len, s, len);
        b->len += len;
        b->p[b->len++] = '"';
        b->p[b->len] = '\0';
        return;
    }
    size_t need = len * 6 + 2; /* worst case: every byte \u00XX */
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
    char *out = b->p + b->len;
    double a = fabs(v);
    if (a < 1.0 && a >= 1e-3) {
        /* Fast path for similarity scores: 9 decimals by integer
         * arithmetic (printf's %g costs ~10% of a similar-items request).
         * Absolute error <= 5e-10, below float precision here; the text is
         * plain JSON. */
        long long x = llround(a * 1e9);
        if (x < 1000000000LL) {
            size_t n = 0;
            if (v < 0)
                out[n++] = '-';
            out[n++] = '0';
            out[n++] = '.';
            char digits[9];
            for (int i = 8; i >= 0; i--) {
                digits[i] = (char)('0' + x % 10);
                x /= 10;
            }
            int last = 8;
            while (last > 0 && digits[last] == '0')
                last--;
            memcpy(out + n, digits, (size_t)last + 1);
            n += (size_t)last + 1;
            out[n] = '\0';
            b->len += n;
            return;
        }
    }
    b->len += (size_t)snprintf(out, 32, "%.9g", v);
}
