/*
 * Text checks shared by every layer that takes ids and strings from clients
 * (api/ path parameters and bodies, ingest/ rows): UTF-8 validity and the
 * opaque-id rule of the contract (1..256 bytes, valid UTF-8, no control
 * bytes). Pure functions of their arguments; any thread.
 */
#include <stddef.h>

#include "base/text.h"

int text_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + len;
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned min;
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            min = 0x80;
            c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            min = 0x800;
            c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            min = 0x10000;
            c &= 0x07;
        } else {
            return 0;
        }
        if ((size_t)(e - p) <= n)
            return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (p[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        p += n + 1;
    }
    return 1;
}

const char *text_id_invalid(const char *s, size_t len)
{
    if (len == 0)
        return "is empty";
    if (len > 256)
        return "is longer than 256 bytes";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "contains a control character";
    if (!text_utf8_valid(s, len))
        return "is not valid UTF-8";
    return NULL;
}
