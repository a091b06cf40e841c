/*
 * Static files compiled into the binary (the dashboard under ui/ and
 * docs/openapi.json): the table is generated at build time by
 * scripts/embed_assets.py into <build>/api_assets.c. Read-only data, safe
 * from any thread; served by api/route_ui.c.
 */
#ifndef ITEMVEC_API_ASSETS_H
#define ITEMVEC_API_ASSETS_H

#include <stddef.h>

struct api_asset {
    const char *path;         /* the URL path, e.g. "/ui/app.js" */
    const char *content_type; /* from the file's extension */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* gzip of data, NULL when it would not be smaller */
    size_t gz_len;
    const char *etag;    /* strong ETag of data, quoted */
    const char *etag_gz; /* strong ETag of gz, quoted; NULL without gz */
};

/* Sorted by path. */
extern const struct api_asset api_assets[];
extern const size_t api_assets_count;

#endif
