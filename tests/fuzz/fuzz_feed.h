/*
 * The chunked feed shared by the parser fuzz targets: fuzz_chunk gives the
 * size of the next chunk of body from seed and the data itself (mostly
 * 1..5 bytes, sometimes up to 4 KiB; seed 0 = one chunk), so every target
 * splits its input the same way; fuzz_feed_chunked feeds an upload parser
 * with it (upload_fuzz.h, fuzz_json_fast.c), then finishes unless a feed
 * failed, and returns the parser's code (err as the parser filled it).
 */
#ifndef ITEMVEC_TESTS_FUZZ_FEED_H
#define ITEMVEC_TESTS_FUZZ_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/upload_parse.h"

static inline size_t fuzz_chunk(unsigned *seed, const uint8_t *body, size_t off, size_t len)
{
    size_t n = len - off;
    if (*seed) {
        *seed = *seed * 1103515245u + 12345u + body[off];
        n = (*seed >> 16) % 8 == 0 ? 1 + (*seed >> 4) % 4096 : 1 + (*seed >> 16) % 5;
        if (n > len - off)
            n = len - off;
    }
    return n;
}

static inline int fuzz_feed_chunked(struct upload_parser *p, const uint8_t *body, size_t len,
                                    unsigned seed, struct upload_error *err)
{
    size_t off = 0;
    int rc = 0;

    while (off < len) {
        size_t n = fuzz_chunk(&seed, body, off, len);
        rc = upload_parser_feed(p, (const char *)body + off, n, err);
        off += n;
        if (rc < 0)
            return rc;
    }
    return upload_parser_finish(p, err);
}

#endif
