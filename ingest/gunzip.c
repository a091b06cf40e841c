/*
 * Streaming gzip decoder for Content-Encoding: gzip bodies (see gunzip.h).
 * zlib's inflate with windowBits 16+MAX_WBITS accepts exactly the gzip
 * wrapper (no raw deflate, no zlib header), so a body that is not gzip is
 * refused rather than guessed at.
 *
 * Output goes to the sink in pieces of at most 64 KiB from a fixed buffer,
 * so memory stays constant whatever the compression ratio. The total is
 * checked against max_output before each piece reaches the sink: a zip bomb
 * costs us at most 64 KiB of inflate work beyond the bound.
 *
 * Concatenated members (what `cat a.gz b.gz` or pigz produce) are decoded
 * one after another, as gunzip(1) does; anything after a member that is not
 * another gzip member is corrupt data.
 */
#include "ingest/gunzip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define GUNZIP_OUT 65536

struct gunzip {
    z_stream zs;
    uint64_t max_output;
    uint64_t total_out;
    gunzip_sink sink;
    void *userdata;
    int member_done; /* the last member ended cleanly at the input's end */
    int started;     /* at least one input byte seen */
    int failed;      /* sticky error */
    unsigned char out[GUNZIP_OUT];
};

struct gunzip *gunzip_create(uint64_t max_output, gunzip_sink sink, void *userdata)
{
    struct gunzip *g = calloc(1, sizeof *g);

    if (!g)
        return NULL;
    g->max_output = max_output;
    g->sink = sink;
    g->userdata = userdata;
    if (inflateInit2(&g->zs, 16 + MAX_WBITS) != Z_OK) {
        free(g);
        return NULL;
    }
    return g;
}

/* Hands n decoded bytes to the sink after the size check. */
static int gunzip_emit(struct gunzip *g, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    if (g->max_output && (g->total_out + n > g->max_output || g->total_out + n < g->total_out))
        return -EFBIG;
    g->total_out += n;
    if (g->sink && (rc = g->sink(g->userdata, (const char *)g->out, n)) < 0)
        return rc;
    return 0;
}

int gunzip_feed(struct gunzip *g, const void *data, size_t len)
{
    const unsigned char *in = data;
    int rc = 0;

    if (g->failed)
        return g->failed;
    while (len > 0) {
        /* zlib counts input in uInt; feed huge chunks in slices. */
        uInt slice = len > (size_t)UINT32_MAX ? UINT32_MAX : (uInt)len;

        g->started = 1;
        if (g->member_done) {
            /* More input after a finished member: the next member. */
            if (inflateReset(&g->zs) != Z_OK) {
                rc = -EINVAL;
                goto fail;
            }
            g->member_done = 0;
        }
        g->zs.next_in = (Bytef *)(uintptr_t)in;
        g->zs.avail_in = slice;
        for (;;) {
            int zr;
            size_t have;

            g->zs.next_out = g->out;
            g->zs.avail_out = GUNZIP_OUT;
            zr = inflate(&g->zs, Z_NO_FLUSH);
            if (zr == Z_MEM_ERROR) {
                rc = -ENOMEM;
                goto fail;
            }
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
                rc = -EINVAL; /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
                goto fail;
            }
            have = GUNZIP_OUT - g->zs.avail_out;
            if ((rc = gunzip_emit(g, have)) < 0)
                goto fail;
            if (zr == Z_STREAM_END) {
                if (g->zs.avail_in == 0) {
                    g->member_done = 1;
                    break;
                }
                if (inflateReset(&g->zs) != Z_OK) {
                    rc = -EINVAL;
                    goto fail;
                }
                continue;
            }
            /* Output buffer not full: inflate took all it could. */
            if (g->zs.avail_out != 0 || (zr == Z_BUF_ERROR && have == 0))
                break;
        }
        in += slice - g->zs.avail_in;
        len -= slice - g->zs.avail_in;
        if (g->zs.avail_in != 0) {
            /* Cannot happen with a full consumption loop; be safe. */
            rc = -EINVAL;
            goto fail;
        }
    }
    return 0;
fail:
    g->failed = rc;
    return rc;
}

int gunzip_finish(struct gunzip *g)
{
    if (g->failed)
        return g->failed;
    if (!g->started || !g->member_done)
        return -EINVAL; /* empty or truncated */
    return 0;
}

size_t gunzip_memory(const struct gunzip *g)
{
    /* zlib's inflate: a ~7 KiB state plus a 2^windowBits window. */
    return sizeof *g + 7 * 1024 + ((size_t)1 << MAX_WBITS);
}

uint64_t gunzip_total_out(const struct gunzip *g)
{
    return g->total_out;
}

void gunzip_destroy(struct gunzip *g)
{
    if (!g)
        return;
    inflateEnd(&g->zs);
    free(g);
}
