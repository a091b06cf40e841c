/*
 * The seed's cleaning rules applied to incoming rows (see upload.h). The
 * seed copies the public table with
 *     WHERE tracks_data_title IS NOT NULL AND tracks_data_id > 0
 * so a row failing either test is skipped, not an error; the title test is
 * checked first, as in that WHERE clause, and each skipped row is counted
 * once.
 */
#include "api/upload.h"

#include <errno.h>
#include <stdio.h>

#include "api/api.h"
#include "storage/batch.h"

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
    if ((why = api_id_invalid(pl, pl_len)) != NULL) {
        snprintf(err->message, sizeof err->message, "playlist id %s", why);
        return -EINVAL;
    }
    if ((why = api_id_invalid(row->item, row->item_len)) != NULL) {
        snprintf(err->message, sizeof err->message, "item id %s", why);
        return -EINVAL;
    }
    if (row->title && !api_utf8_valid(row->title, row->title_len)) {
        snprintf(err->message, sizeof err->message, "title is not valid UTF-8");
        return -EINVAL;
    }
    if (row->artist && !api_utf8_valid(row->artist, row->artist_len)) {
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
