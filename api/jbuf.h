/*
 * A small JSON text builder for hot paths (similar-items answers, the
 * embeddings export): appends into one growing buffer without building a
 * jansson tree. Strings must be valid UTF-8 (ids and titles are validated
 * at upload); they are escaped as JSON requires.
 */
#ifndef ITEMVEC_API_JBUF_H
#define ITEMVEC_API_JBUF_H

#include <stddef.h>

struct jbuf {
    char *p;
    size_t len, cap;
    int failed; /* an allocation failed: the text is incomplete */
};

void jbuf_raw(struct jbuf *b, const char *s, size_t n);
void jbuf_lit(struct jbuf *b, const char *s); /* NUL-terminated raw text */
/* A string literal: its length is known at compile time (no strlen). */
#define JBUF_LIT(b, lit) jbuf_raw((b), "" lit, sizeof(lit) - 1)
void jbuf_str(struct jbuf *b, const char *s); /* "escaped", or null for NULL */
/* A number: %.9g (round-trips a float); values with 1e-3 <= |v| < 1 (the
 * usual similarity scores) get 9 decimals by a fast path instead. */
void jbuf_float(struct jbuf *b, double v);

/* Escapes s into out (at most cap bytes, no quotes); returns bytes written.
 * Stops early rather than overflow. */
size_t jbuf_escape(char *out, size_t cap, const char *s);

#endif
