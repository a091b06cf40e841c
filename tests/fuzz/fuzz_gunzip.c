/*
 * libFuzzer target for the streaming gzip decoder (ingest/gunzip.h).
 * Byte 0 picks the mode and the output bound, byte 1 seeds the chunking.
 * Mode A: the rest is taken as a gzip body and decoded whole and in
 * data-dependent chunks; both must agree on the result, the output (hash)
 * and its size, and stay within the bound. Mode B: the rest is gzip-
 * compressed here (as one or two members) and must decode back exactly.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ingest/gunzip.h"

struct gz_out {
    uint64_t hash;
    uint64_t len;
    const uint8_t *expect; /* mode B: the original bytes */
    size_t expect_len;
};

static int gz_sink(void *ud, const char *data, size_t len)
{
    struct gz_out *o = ud;

    if (len == 0 || len > 65536)
        abort();
    if (o->expect) {
        if (o->len + len > o->expect_len || memcmp(o->expect + o->len, data, len) != 0)
            abort();
    }
    for (size_t i = 0; i < len; i++)
        o->hash = (o->hash ^ (unsigned char)data[i]) * 0x100000001b3ULL;
    o->len += len;
    return 0;
}

static int gz_decode(const uint8_t *in, size_t n, uint64_t max, unsigned seed, struct gz_out *o)
{
    struct gunzip *g = gunzip_create(max, gz_sink, o);
    size_t off = 0;
    int rc = 0;

    if (!g)
        abort();
    while (off < n) {
        size_t k = n - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u + in[off];
            k = (seed >> 16) % 4 == 0 ? 1 + (seed >> 4) % 8192 : 1 + (seed >> 16) % 7;
            if (k > n - off)
                k = n - off;
        }
        rc = gunzip_feed(g, in + off, k);
        off += k;
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = gunzip_finish(g);
    if (gunzip_total_out(g) != o->len)
        abort();
    if (max && o->len > max)
        abort();
    if (rc != 0 && rc != -EINVAL && rc != -EFBIG)
        abort();
    gunzip_destroy(g);
    return rc;
}

/* gzip-compresses in[0..n) appending to out; returns bytes written. */
static size_t gz_compress(const uint8_t *in, size_t n, uint8_t *out, size_t cap, int level)
{
    z_stream zs;
    size_t len;

    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        abort();
    len = zs.total_out;
    deflateEnd(&zs);
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t bounds[4] = {0, 1, 4096, 1 << 20};
    struct gz_out a = {.hash = 0xcbf29ce484222325ULL}, b;
    uint64_t max;
    unsigned seed;
    int ra, rb;

    if (size < 2)
        return 0;
    max = bounds[data[0] & 3];
    seed = data[1] | 1u;
    if (data[0] & 4) {
        /* Mode B: round trip, possibly as two members split mid-input. */
        const uint8_t *in = data + 2;
        size_t n = size - 2, cut = (data[0] & 8) ? n / 2 : n;
        size_t cap = 2 * (compressBound((uLong)n) + 64);
        uint8_t *z = malloc(cap);
        size_t zn;

        if (!z)
            return 0;
        zn = gz_compress(in, cut, z, cap, data[1] % 10);
        if (cut < n)
            zn += gz_compress(in + cut, n - cut, z + zn, cap - zn, data[1] % 10);
        a.expect = in;
        a.expect_len = n;
        b = a;
        ra = gz_decode(z, zn, 0, 0, &a);
        rb = gz_decode(z, zn, 0, seed, &b);
        if (ra != 0 || rb != 0 || a.len != n || b.len != n)
            abort();
        free(z);
        return 0;
    }
    b = a;
    ra = gz_decode(data + 2, size - 2, max, 0, &a);
    rb = gz_decode(data + 2, size - 2, max, seed, &b);
    /* A success must not depend on chunking. Failures may differ in kind:
     * with corrupt data past the bound, one chunking can hit the bound
     * first and the other the corruption (inflate reports it before the
     * piece that would cross the bound is handed out). */
    if ((ra == 0) != (rb == 0))
        abort();
    if (ra == 0 && (a.len != b.len || a.hash != b.hash))
        abort();
    return 0;
}
