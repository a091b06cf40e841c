/*
 * Upload body parsers, part 3: the fast path for JSON playlist records
 * (NDJSON lines, JSON array elements, the single top-level object).
 *
 * jansson (upload_json.c) builds a DOM per record and then a walker finds
 * where each value sits; for the common record shape that costs far more
 * than the rows are worth. This file recognises that shape directly:
 *   {"id": <string|integer>, "items": [<item>, ...]}   (keys in any order)
 *   item = <string> | <integer> | {"id": .., "title": .., "artist": ..}
 * where item object keys are only id/title/artist, title/artist are strings
 * or null, and strings have no backslash escape. Strings are handed out as
 * slices of the record text (zero-copy), UTF-8 checked like jansson does.
 *
 * Anything else (another key, a duplicate key, an escape, a float, an
 * integer outside int64, a syntax error, ...) makes upload__json_fast
 * return UPLOAD__JSON_FALLBACK before any row is emitted, and the caller
 * parses the record with jansson, which keeps today's errors and messages.
 * So the whole record is validated first, and only then are the rows
 * emitted. The validating scan keeps a descriptor (72 bytes) for each of
 * the first UPLOAD__JF_WINDOW items, in a fixed array of the parser; the
 * items past it (long playlists only) are scanned a second time when they
 * are emitted, from the scanner state saved where the window ended. So a
 * record costs fixed memory however many items it has (before, a 1 MB
 * record of `1,1,1,...` held 36 MB of descriptors per connection).
 *
 * Rows and columns: the same as the jansson path's jpos gives for the same
 * offsets (the first byte of each item, after whitespace). Newlines can
 * only occur in whitespace here (raw control characters inside strings are
 * refused), so the scanner counts them as it skips whitespace.
 */
#include "ingest/upload_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { JF_ABSENT, JF_NULL, JF_STR };

/* One item of the record being scanned; offsets are into the record text. */
struct upload__jf_item {
    size_t id, id_len;
    size_t title, title_len;
    size_t artist, artist_len;
    unsigned long line, col; /* body position of the item's first byte */
    unsigned char title_kind, artist_kind;
};

const size_t upload__jf_item_size = sizeof(struct upload__jf_item);

struct jf {
    const char *s;
    size_t n;
    size_t i;        /* next byte */
    size_t nl;       /* newlines before i */
    size_t line_off; /* offset of the first byte of i's line */
};

/* Skips JSON whitespace; returns the next byte, or -1 at the end. */
static int jf_ws(struct jf *f)
{
    while (f->i < f->n) {
        unsigned char c = (unsigned char)f->s[f->i];
        if (c > ' ')
            return c;
        if (c == '\n') {
            f->nl++;
            f->line_off = f->i + 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            return c;
        }
        f->i++;
    }
    return -1;
}

/* Scans the string at s[i] == '"'; sets its content slice [*a, *a + *len)
 * and moves past the closing quote. Returns -1 (fall back) for an escape,
 * a raw control character, invalid UTF-8 or a missing closing quote. The
 * common case, printable ASCII, is tested eight bytes at a time. */
static int jf_string(struct jf *f, size_t *a, size_t *len)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const char *s = f->s;
    size_t i = f->i + 1, n = f->n, start = i;
    unsigned high = 0;

    while (i < n) {
        size_t end;
        if (i + 8 <= n) {
            uint64_t v, q, b;
            memcpy(&v, s + i, 8);
            q = v ^ (ones * '"');
            b = v ^ (ones * '\\');
            /* a quote, a backslash, a byte < 0x20 or >= 0x80 in the word */
            if (!((((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v) | v) &
                  highs)) {
                i += 8;
                continue;
            }
        }
        end = n - i > 8 ? i + 8 : n;
        for (; i < end; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"')
                goto closed;
            if (c == '\\' || c < 0x20)
                return -1;
            high |= c;
        }
    }
    return -1;
closed:
    if ((high & 0x80) && upload__utf8_check(s + start, i - start) != i - start)
        return -1;
    *a = start;
    *len = i - start;
    f->i = i + 1;
    return 0;
}

/* Scans a JSON integer at s[i] and sets the slice json_id() would print
 * for it ("%lld" of the value: the text itself, except "-0" → "0").
 * Returns -1 for anything else: no digit, a fraction or exponent, a
 * leading zero, or a value outside int64 (jansson then says why). */
static int jf_int(struct jf *f, size_t *a, size_t *len)
{
    const char *s = f->s;
    size_t i = f->i, n = f->n, start = i, d0, nd;
    int neg = 0;

    if (i < n && s[i] == '-') {
        neg = 1;
        i++;
    }
    d0 = i;
    if (i >= n || s[i] < '0' || s[i] > '9')
        return -1;
    if (s[i] == '0')
        i++;
    else
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    if (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
        return -1;
    nd = i - d0;
    if (nd > 19 ||
        (nd == 19 && memcmp(s + d0, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0))
        return -1;
    if (neg && nd == 1 && s[d0] == '0')
        start = d0;
    *a = start;
    *len = i - start;
    f->i = i;
    return 0;
}

/* An id value: a string (non-empty when nonempty is set) or an integer. */
static int jf_id(struct jf *f, int c, int nonempty, size_t *a, size_t *len)
{
    if (c == '"')
        return jf_string(f, a, len) < 0 || (nonempty && *len == 0) ? -1 : 0;
    return jf_int(f, a, len);
}

/* A title/artist value: a string or null. */
static int jf_text(struct jf *f, int c, size_t *a, size_t *len, unsigned char *kind)
{
    if (c == '"') {
        *kind = JF_STR;
        return jf_string(f, a, len);
    }
    if (f->n - f->i >= 4 && memcmp(f->s + f->i, "null", 4) == 0) {
        *kind = JF_NULL;
        f->i += 4;
        return 0;
    }
    return -1;
}

/* Reads `"key" :` and returns the first byte of the value (after
 * whitespace), or -2 when there is no such key. *ka, *kl: the key. */
static int jf_key(struct jf *f, size_t *ka, size_t *kl)
{
    if (jf_ws(f) != '"' || jf_string(f, ka, kl) < 0 || jf_ws(f) != ':')
        return -2;
    f->i++;
    return jf_ws(f);
}

/* After a member or element: ',' (returns 1) or the closing byte (0). */
static int jf_next(struct jf *f, int close)
{
    int c = jf_ws(f);
    f->i++;
    if (c == ',')
        return 1;
    return c == close ? 0 : -1;
}

static int key_is(const struct jf *f, size_t ka, size_t kl, const char *key, size_t len)
{
    return kl == len && memcmp(f->s + ka, key, len) == 0;
}

/* An item object at s[i] == '{'. */
static int jf_item_object(struct jf *f, struct upload__jf_item *it)
{
    int have_id = 0, c, more;

    f->i++;
    do {
        size_t ka, kl;
        if ((c = jf_key(f, &ka, &kl)) == -2)
            return -1;
        if (key_is(f, ka, kl, "id", 2) && !have_id) {
            have_id = 1;
            if (jf_id(f, c, 0, &it->id, &it->id_len) < 0)
                return -1;
        } else if (key_is(f, ka, kl, "title", 5) && it->title_kind == JF_ABSENT) {
            if (jf_text(f, c, &it->title, &it->title_len, &it->title_kind) < 0)
                return -1;
        } else if (key_is(f, ka, kl, "artist", 6) && it->artist_kind == JF_ABSENT) {
            if (jf_text(f, c, &it->artist, &it->artist_len, &it->artist_kind) < 0)
                return -1;
        } else {
            return -1;
        }
        if ((more = jf_next(f, '}')) < 0)
            return -1;
    } while (more);
    return have_id ? 0 : -1;
}

/* One item, whitespace before it included, into *it. */
static int jf_item(const struct upload_parser *p, struct jf *f, struct upload__jf_item *it)
{
    int c = jf_ws(f);

    it->line = p->rec_line + (unsigned long)f->nl;
    it->col = f->nl ? (unsigned long)(f->i - f->line_off + 1) : p->rec_col + (unsigned long)f->i;
    it->title_kind = it->artist_kind = JF_ABSENT;
    if (c == '{')
        return jf_item_object(f, it);
    return jf_id(f, c, 0, &it->id, &it->id_len);
}

/* Validates the "items" array at s[i] == '['; sets *count, fills the
 * window p->jf_items, and saves in *rest the scanner state at the start
 * of item UPLOAD__JF_WINDOW (when there is one). */
static int jf_items(struct upload_parser *p, struct jf *f, size_t *count, struct jf *rest)
{
    size_t k = 0;
    int more;

    f->i++;
    if (jf_ws(f) == ']') {
        f->i++;
        *count = 0;
        return 0;
    }
    if (!p->jf_items) {
        p->jf_items = malloc(UPLOAD__JF_WINDOW * sizeof *p->jf_items);
        if (!p->jf_items)
            return -1; /* jansson's path then says "out of memory" or parses */
    }
    do {
        struct upload__jf_item scratch;

        if (k == UPLOAD__JF_WINDOW)
            *rest = *f;
        if (jf_item(p, f, k < UPLOAD__JF_WINDOW ? &p->jf_items[k] : &scratch) < 0)
            return -1;
        k++;
        if ((more = jf_next(f, ']')) < 0)
            return -1;
    } while (more);
    *count = k;
    return 0;
}

int upload__json_fast(struct upload_parser *p, const char *text, size_t len,
                      struct upload_error *err)
{
    struct jf f = {.s = text, .n = len}, rest = f;
    size_t pl = 0, pl_len = 0, nitems = 0;
    int have_id = 0, have_items = 0, c, more, rc;

    if (jf_ws(&f) != '{')
        return UPLOAD__JSON_FALLBACK;
    f.i++;
    do {
        size_t ka, kl;
        if ((c = jf_key(&f, &ka, &kl)) == -2)
            return UPLOAD__JSON_FALLBACK;
        if (key_is(&f, ka, kl, "id", 2) && !have_id) {
            have_id = 1;
            if (jf_id(&f, c, 1, &pl, &pl_len) < 0)
                return UPLOAD__JSON_FALLBACK;
        } else if (key_is(&f, ka, kl, "items", 5) && !have_items) {
            have_items = 1;
            if (c != '[' || jf_items(p, &f, &nitems, &rest) < 0)
                return UPLOAD__JSON_FALLBACK;
        } else {
            return UPLOAD__JSON_FALLBACK;
        }
        if ((more = jf_next(&f, '}')) < 0)
            return UPLOAD__JSON_FALLBACK;
    } while (more);
    if (!have_id || !have_items || jf_ws(&f) != -1)
        return UPLOAD__JSON_FALLBACK;

    /* Valid: emit, as json_items() would. */
    for (size_t k = 0; k < nitems; k++) {
        struct upload__jf_item again;
        const struct upload__jf_item *it = &p->jf_items[k];
        if (k >= UPLOAD__JF_WINDOW) {
            /* Past the window: scan the item again; it was valid a moment
             * ago, so this cannot fail. */
            if (k > UPLOAD__JF_WINDOW && jf_next(&rest, ']') != 1)
                return upload__fail(p, err, -EINVAL, p->rec_line, p->rec_col,
                                    "internal error: item %zu changed", k);
            if (jf_item(p, &rest, &again) < 0)
                return upload__fail(p, err, -EINVAL, p->rec_line, p->rec_col,
                                    "internal error: item %zu changed", k);
            it = &again;
        }
        struct upload_row row = {
            .playlist = text + pl,
            .playlist_len = pl_len,
            .item = text + it->id,
            .item_len = it->id_len,
            .has_title = it->title_kind != JF_ABSENT,
            .line = it->line,
        };
        if (it->title_kind == JF_STR) {
            row.title = text + it->title;
            row.title_len = it->title_len;
        }
        if (it->artist_kind == JF_STR) {
            row.artist = text + it->artist;
            row.artist_len = it->artist_len;
        }
        if ((rc = upload__emit(p, &row, it->col, err)) < 0)
            return rc;
    }
    return 0;
}
