/*
 * Unit tests for the streaming gzip decoder (ingest/gunzip.h): round trips at
 * every chunking, concatenated members, truncation, corruption, trailing
 * garbage, the output bound (zip bomb) and sink errors. Test data is
 * compressed here with zlib's deflate in gzip mode.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "ingest/gunzip.h"

struct sink {
    unsigned char *out;
    size_t len, cap;
    size_t max_piece;
    size_t fail_after; /* fail once this many bytes were received (0 = never) */
};

static int sink_cb(void *ud, const char *data, size_t len)
{
    struct sink *s = ud;

    assert_true(len > 0);
    assert_true(len <= 65536);
    if (len > s->max_piece)
        s->max_piece = len;
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2;
        s->out = realloc(s->out, s->cap);
        assert_non_null(s->out);
    }
    memcpy(s->out + s->len, data, len);
    s->len += len;
    if (s->fail_after && s->len >= s->fail_after)
        return -ECANCELED;
    return 0;
}

/* gzip-compresses in[0..n) into a malloc'd buffer. */
static unsigned char *gz(const void *in, size_t n, size_t *outlen)
{
    z_stream zs;
    size_t cap = compressBound((uLong)n) + 64;
    unsigned char *out = malloc(cap);

    assert_non_null(out);
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *outlen = zs.total_out;
    deflateEnd(&zs);
    return out;
}

/* Decodes in chunks of `chunk` bytes (0 = whole); returns feed/finish rc. */
static int decode(const unsigned char *in, size_t n, size_t chunk, uint64_t max, struct sink *s)
{
    struct gunzip *g = gunzip_create(max, sink_cb, s);
    size_t off = 0;
    int rc = 0;

    assert_non_null(g);
    while (off < n) {
        size_t k = chunk ? chunk : n;
        if (k > n - off)
            k = n - off;
        rc = gunzip_feed(g, in + off, k);
        off += k;
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = gunzip_finish(g);
    if (rc == 0)
        assert_int_equal(gunzip_total_out(g), s->len);
    gunzip_destroy(g);
    return rc;
}

static char *text(size_t n)
{
    char *t = malloc(n + 1);
    unsigned seed = 7;

    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        t[i] = "abcdefgh,\n\t \"xyz0123"[(seed >> 16) % 20];
    }
    t[n] = '\0';
    return t;
}

static void test_roundtrip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 100, 65535, 65536, 65537, 300000};
    static const size_t chunks[] = {0, 1, 7, 4096, 65536};

    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++) {
        char *t = text(sizes[a]);
        size_t zn;
        unsigned char *z = gz(t, sizes[a], &zn);
        for (size_t b = 0; b < sizeof chunks / sizeof chunks[0]; b++) {
            if (chunks[b] == 1 && sizes[a] > 70000)
                continue;
            struct sink s = {0};
            assert_int_equal(decode(z, zn, chunks[b], 0, &s), 0);
            assert_int_equal(s.len, sizes[a]);
            assert_true(sizes[a] == 0 || memcmp(s.out, t, sizes[a]) == 0);
            free(s.out);
        }
        free(z);
        free(t);
    }
}

static void test_every_split(void **state)
{
    (void)state;
    const char *t = "playlist_id,item_id\np1,a\np1,b\n";
    size_t zn;
    unsigned char *z = gz(t, strlen(t), &zn);

    for (size_t at = 0; at <= zn; at++) {
        struct sink s = {0};
        struct gunzip *g = gunzip_create(0, sink_cb, &s);
        assert_int_equal(gunzip_feed(g, z, at), 0);
        assert_int_equal(gunzip_feed(g, z + at, zn - at), 0);
        assert_int_equal(gunzip_finish(g), 0);
        assert_int_equal(s.len, strlen(t));
        assert_memory_equal(s.out, t, s.len);
        gunzip_destroy(g);
        free(s.out);
    }
    free(z);
}

static void test_concatenated(void **state)
{
    (void)state;
    size_t n1, n2, n3;
    unsigned char *z1 = gz("hello ", 6, &n1);
    unsigned char *z2 = gz("", 0, &n2);
    unsigned char *z3 = gz("world\n", 6, &n3);
    unsigned char *all = malloc(n1 + n2 + n3);

    memcpy(all, z1, n1);
    memcpy(all + n1, z2, n2);
    memcpy(all + n1 + n2, z3, n3);
    for (size_t chunk = 0; chunk <= 5; chunk++) {
        struct sink s = {0};
        assert_int_equal(decode(all, n1 + n2 + n3, chunk, 0, &s), 0);
        assert_int_equal(s.len, 12);
        assert_memory_equal(s.out, "hello world\n", 12);
        free(s.out);
    }
    /* Each member split exactly at its end: feed() sees a boundary. */
    struct sink s = {0};
    struct gunzip *g = gunzip_create(0, sink_cb, &s);
    assert_int_equal(gunzip_feed(g, z1, n1), 0);
    assert_int_equal(gunzip_feed(g, z3, n3), 0);
    assert_int_equal(gunzip_finish(g), 0);
    assert_int_equal(gunzip_total_out(g), 12);
    gunzip_destroy(g);
    free(s.out);
    free(all);
    free(z1);
    free(z2);
    free(z3);
}

static void test_truncated_and_corrupt(void **state)
{
    (void)state;
    char *t = text(5000);
    size_t zn;
    unsigned char *z = gz(t, 5000, &zn);

    /* Every proper prefix is truncated (or, at worst, corrupt). */
    for (size_t at = 0; at < zn; at++) {
        struct sink s = {0};
        assert_int_equal(decode(z, at, 0, 0, &s), -EINVAL);
        free(s.out);
    }
    /* Not gzip at all: plain text, a zlib stream. */
    struct sink s = {0};
    assert_int_equal(decode((const unsigned char *)"playlist_id,item_id\n", 20, 0, 0, &s), -EINVAL);
    unsigned char zl[64];
    uLongf zln = sizeof zl;
    assert_int_equal(compress(zl, &zln, (const Bytef *)"abc", 3), Z_OK);
    assert_int_equal(decode(zl, zln, 0, 0, &s), -EINVAL);
    /* A flipped byte in the data or the CRC. */
    z[zn / 2] ^= 0x55;
    assert_int_equal(decode(z, zn, 0, 0, &s), -EINVAL);
    z[zn / 2] ^= 0x55;
    z[zn - 6] ^= 0x01;
    assert_int_equal(decode(z, zn, 0, 0, &s), -EINVAL);
    z[zn - 6] ^= 0x01;
    free(s.out);
    /* Trailing garbage after a complete member. */
    unsigned char *zz = malloc(zn + 4);
    memcpy(zz, z, zn);
    memcpy(zz + zn, "junk", 4);
    memset(&s, 0, sizeof s);
    assert_int_equal(decode(zz, zn + 4, 0, 0, &s), -EINVAL);
    free(s.out);
    memset(&s, 0, sizeof s);
    assert_int_equal(decode(zz, zn + 4, 3, 0, &s), -EINVAL);
    free(s.out);
    free(zz);
    /* Empty input is not a gzip stream. */
    struct gunzip *g = gunzip_create(0, sink_cb, &s);
    assert_int_equal(gunzip_feed(g, "", 0), 0);
    assert_int_equal(gunzip_finish(g), -EINVAL);
    gunzip_destroy(g);
    free(z);
    free(t);
}

static void test_bomb(void **state)
{
    (void)state;
    size_t n = 20u << 20, zn;
    char *zeros = calloc(1, n);
    unsigned char *z = gz(zeros, n, &zn);
    struct sink s = {0};

    assert_true(zn < 100000); /* ~1000:1 */
    assert_int_equal(decode(z, zn, 0, 1u << 20, &s), -EFBIG);
    assert_true(s.len <= 1u << 20);
    free(s.out);
    /* Sticky: more input gives the same error. */
    memset(&s, 0, sizeof s);
    struct gunzip *g = gunzip_create(1000, sink_cb, &s);
    assert_int_equal(gunzip_feed(g, z, zn), -EFBIG);
    assert_int_equal(gunzip_feed(g, z, 1), -EFBIG);
    assert_int_equal(gunzip_finish(g), -EFBIG);
    gunzip_destroy(g);
    free(s.out);
    /* Exactly at the bound is fine; one byte less is not. */
    size_t z2n;
    unsigned char *z2 = gz(zeros, 100000, &z2n);
    memset(&s, 0, sizeof s);
    assert_int_equal(decode(z2, z2n, 0, 100000, &s), 0);
    free(s.out);
    memset(&s, 0, sizeof s);
    assert_int_equal(decode(z2, z2n, 0, 99999, &s), -EFBIG);
    free(s.out);
    memset(&s, 0, sizeof s);
    assert_int_equal(decode(z, zn, 0, 0, &s), 0); /* 0 = unbounded */
    assert_int_equal(s.len, n);
    assert_int_equal(s.max_piece, 65536);
    free(s.out);
    free(z2);
    free(z);
    free(zeros);
}

static void test_sink_error(void **state)
{
    (void)state;
    char *t = text(200000);
    size_t zn;
    unsigned char *z = gz(t, 200000, &zn);
    struct sink s = {.fail_after = 70000};

    assert_int_equal(decode(z, zn, 1000, 0, &s), -ECANCELED);
    free(s.out);
    free(z);
    free(t);
    gunzip_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_concatenated), cmocka_unit_test(test_truncated_and_corrupt),
        cmocka_unit_test(test_bomb),        cmocka_unit_test(test_sink_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
