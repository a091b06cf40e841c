/*
 * Text checks shared by every layer that takes ids and strings from clients.
 * Pure functions; any thread; the bytes are borrowed.
 */
#ifndef ITEMVEC_BASE_TEXT_H
#define ITEMVEC_BASE_TEXT_H

#include <stddef.h>

/* 1 when the len bytes at s are valid UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), else 0. */
int text_utf8_valid(const char *s, size_t len);

/* Validates an opaque id: 1..256 bytes, valid UTF-8, no NUL/control bytes.
 * Returns NULL when valid, else a short reason ("is empty", ...) that reads
 * after the field's name. */
const char *text_id_invalid(const char *s, size_t len);

#endif
