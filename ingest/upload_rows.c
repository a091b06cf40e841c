/*
 * The seed's cleaning rules applied to incoming rows (see upload.h). The
 * seed copies the public table with
 *     WHERE tracks_data_title IS NOT NULL AND tracks_data_id > 0
 * so a row failing either test is skipped, not an error; the title test is
 * checked first, as in that WHERE clause, and each skipped row is counted
 * once.
 *
 * Cost: this runs once per uploaded row on the loop thread. Ids, titles
 * and artists are nearly always plain ASCII, so each is first tested eight
 * bytes at a time (rows_plain); only a string with a byte outside the
 * plain range takes the byte-wise checks of text_id_invalid /
 * text_utf8_valid, which keep their messages. Every format still gets the
 * same validation here (the CSV/TSV parser also checks UTF-8, jansson
 * does for JSON, but PUT and future callers build rows too).
 */
#include "ingest/upload.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/text.h"
#include "storage/batch.h"

/* 1 when every byte of s is printable ASCII (0x20..0x7e): such a string
 * is valid UTF-8 and holds no control character. SWAR: a byte b is outside
 * the range when b < 0x20, b >= 0x80 or b == 0x7f, tested on eight at once. */
static int rows_plain(const char *s, size_t len)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t bad = 0;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        /* high bit set, or (v - 0x20) borrowed (b < 0x20), or b == 0x7f */
        uint64_t del = v ^ (ones * 0x7f); /* zero bytes where b == 0x7f */
        bad |= v | ((v - ones * 0x20) & ~v) | ((del - ones) & ~del);
    }
    if (bad & highs)
        return 0;
    for (; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* The plain-ASCII fast paths of text_id_invalid and text_utf8_valid. */
static const char *rows_id_invalid(const char *s, size_t len)
{
    if (len >= 1 && len <= 256 && rows_plain(s, len))
        return NULL;
    return text_id_invalid(s, len);
}

static int rows_utf8_valid(const char *s, size_t len)
{
    return rows_plain(s, len) || text_utf8_valid(s, len);
}

int upload_id_non_positive(const char *s, size_t len)
{
    size_t i = 0;
    int neg = 0;
    if (len && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return 0;
    int nonzero = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        if (s[i] != '0')
            nonzero = 1;
    }
    return neg || !nonzero;
}

int upload_rows_accept(struct upload_rows *u, const struct upload_row *row,
                       struct upload_error *err)
{
    const char *why;
    u->received++;
    if (u->max_rows && u->received > u->max_rows) {
        snprintf(err->message, sizeof err->message,
                 "more than limits.max_upload_rows (%llu) rows", (unsigned long long)u->max_rows);
        return -EFBIG;
    }
    const char *pl = u->force_playlist ? u->force_playlist : row->playlist;
    size_t pl_len = u->force_playlist ? u->force_playlist_len : row->playlist_len;
    if ((why = rows_id_invalid(pl, pl_len)) != NULL) {
        snprintf(err->message, sizeof err->message, "playlist id %s", why);
        return -EINVAL;
    }
    if ((why = rows_id_invalid(row->item, row->item_len)) != NULL) {
        snprintf(err->message, sizeof err->message, "item id %s", why);
        return -EINVAL;
    }
    if (row->title && !rows_utf8_valid(row->title, row->title_len)) {
        snprintf(err->message, sizeof err->message, "title is not valid UTF-8");
        return -EINVAL;
    }
    if (row->artist && !rows_utf8_valid(row->artist, row->artist_len)) {
        snprintf(err->message, sizeof err->message, "artist is not valid UTF-8");
        return -EINVAL;
    }
    if (row->has_title && (!row->title || row->title_len == 0)) {
        u->skipped_title++;
        return 0;
    }
    if (upload_id_non_positive(row->item, row->item_len)) {
        u->skipped_id++;
        return 0;
    }
    /* an empty artist is "not given", like a missing one */
    const char *artist = row->artist && row->artist_len ? row->artist : NULL;
    const char *title = row->title && row->title_len ? row->title : NULL;
    return batch_add(u->batch, pl, pl_len, row->item, row->item_len, title,
                     title ? row->title_len : 0, artist, artist ? row->artist_len : 0);
}
