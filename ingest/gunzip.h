/*
 * Streaming gzip decoder for Content-Encoding: gzip request bodies (zlib).
 * Input arrives in chunks; decoded bytes are handed to a sink in chunks of
 * at most 64 KiB, so a compressed body is never inflated whole in memory.
 * Concatenated gzip members are accepted (as gunzip does).
 */
#ifndef ITEMVEC_INGEST_GUNZIP_H
#define ITEMVEC_INGEST_GUNZIP_H

#include <stddef.h>
#include <stdint.h>

/* Receives decoded bytes (borrowed for the call). Return 0 to go on or a
 * negative errno to stop; that value is returned by gunzip_feed. */
typedef int (*gunzip_sink)(void *userdata, const char *data, size_t len);

struct gunzip;

/* max_output bounds the total decoded size (0 = no bound); beyond it
 * gunzip_feed returns -EFBIG (a "zip bomb" guard). NULL on ENOMEM. */
struct gunzip *gunzip_create(uint64_t max_output, gunzip_sink sink, void *userdata);

/* Returns 0, -EINVAL for corrupt data, -EFBIG, -ENOMEM, or the sink's error. */
int gunzip_feed(struct gunzip *g, const void *data, size_t len);

/* Returns 0 if the stream ended cleanly, -EINVAL if it was truncated. */
int gunzip_finish(struct gunzip *g);

uint64_t gunzip_total_out(const struct gunzip *g);

/* Bytes a decoder holds: its output buffer and zlib's inflate state and
 * window (fixed; for memory budgets). */
size_t gunzip_memory(const struct gunzip *g);

void gunzip_destroy(struct gunzip *g);

#endif
