/*
 * A write set: the valid membership rows of one upload (or one PUT), held
 * compactly in memory until store_batch_commit applies them in a single
 * transaction. Strings are interned once per distinct id; each playlist
 * keeps a growing array of batch-local item indices. Memory is about
 * 4 bytes per row plus each distinct id/title/artist once, never the body.
 *
 * Threading: built by one thread, then handed to the writer; not shared.
 */
#ifndef ITEMVEC_STORAGE_BATCH_H
#define ITEMVEC_STORAGE_BATCH_H

#include <stddef.h>

struct batch;

/* NULL on ENOMEM. Caller owns; free with batch_destroy. */
struct batch *batch_create(void);
void batch_destroy(struct batch *b);

/* Adds one valid row. Strings are copied (need not be NUL-terminated);
 * title/artist NULL = not given (stored value kept), else the latest given
 * in the batch wins. Ids must be 1..256 bytes (checked by the caller; a
 * longer id makes store_batch_commit fail as a whole). Returns 0,
 * -ENOMEM, or -EOVERFLOW when the keyed hash table saw runs of slots far
 * longer than random keys make even after growing (only crafted input with
 * a leaked key could do that; see batch.c); after an error the batch may
 * hold part of the row and should only be destroyed. */
int batch_add(struct batch *b, const char *playlist, size_t playlist_len, const char *item,
              size_t item_len, const char *title, size_t title_len, const char *artist,
              size_t artist_len);

/* Rows are applied to the batch's tables a few rows after batch_add
 * returns (batch.c: look-ahead), so an -ENOMEM may surface on a later call.
 * batch_flush applies every staged row; it returns 0 or the first error,
 * which is sticky: after an error the batch should only be destroyed.
 * store_batch_commit, batch_playlists and batch_items flush first. */
int batch_flush(struct batch *b);

/* Declares a playlist even if it gets no rows (PUT with "items": []).
 * Returns 0, -ENOMEM or -EOVERFLOW (as batch_add). */
int batch_add_playlist(struct batch *b, const char *playlist, size_t playlist_len);

size_t batch_rows(const struct batch *b); /* rows added */
size_t batch_playlists(struct batch *b);  /* distinct playlists (flushes) */
size_t batch_items(struct batch *b);      /* distinct items (flushes) */
size_t batch_memory(const struct batch *b);    /* bytes allocated (all of it,
                                                  strings and tables included) */

#endif
