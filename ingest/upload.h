/*
 * Row acceptance shared by POST /v1/playlists (streamed uploads) and
 * PUT /v1/playlists/{id}: the seed's cleaning rules (rows with a missing or
 * empty title where the format carries titles, and rows whose item id is
 * an integer <= 0, are skipped and counted), id validation, and the
 * append into a storage batch.
 */
#ifndef ITEMVEC_INGEST_UPLOAD_H
#define ITEMVEC_INGEST_UPLOAD_H

#include <stdint.h>

#include "ingest/upload_parse.h"

struct batch;

struct upload_rows {
    struct batch *batch;     /* borrowed */
    uint64_t max_rows;       /* 0 = unbounded */
    uint64_t received;       /* every data row seen */
    uint64_t skipped_title;  /* missing/empty title */
    uint64_t skipped_id;     /* item id an integer <= 0 */
    const char *force_playlist; /* PUT: rows belong to this playlist */
    size_t force_playlist_len;
};

/* Applies the rules to one row. Returns 0 (stored in the batch or
 * skipped), -EINVAL (bad id/title: err filled), -EFBIG (over max_rows),
 * or -ENOMEM. */
int upload_rows_accept(struct upload_rows *u, const struct upload_row *row,
                       struct upload_error *err);

/* 1 when s is an integer (optional sign, digits only) with value <= 0. */
int upload_id_non_positive(const char *s, size_t len);

#endif
