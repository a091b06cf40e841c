/*
 * Unit tests for storage/cooc_file.c: round trip, detection of corrupted
 * and truncated files, structural checks behind a valid checksum, version
 * refusal, and atomic replacement (no temporary file left behind).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ml/cooc.h"
#include "storage/cooc_file.h"

#define HDR 128

static char dir[256];

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof(dir), "%s/test_cooc_file.XXXXXX", base);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

/* A result from ml: 60 random groups over 40 keys. */
static void make_result(struct cooc_result *r, uint64_t seed, int64_t min_freq)
{
    enum { G = 300, L = 12 };
    uint64_t off[G + 1];
    uint32_t items[G * L];
    size_t n = 0;
    off[0] = 0;
    for (int g = 0; g < G; g++) {
        uint32_t last = 0;
        for (int k = 0; k < L; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t step = 1 + (uint32_t)(seed >> 61);
            if (last + step > 40)
                break;
            last += step;
            items[n++] = last;
        }
        off[g + 1] = n;
    }
    struct cooc_groups groups = {.n_groups = G, .offsets = off, .items = items, .max_item_key = 40};
    struct cooc_params p;
    cooc_params_init(&p);
    p.min_item_frequency = min_freq;
    p.max_group_size = 8;
    assert_int_equal(cooc_compute(&groups, &p, NULL, NULL, r), 0);
}

static void assert_same(const struct cooc_result *a, const struct cooc_result *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->nnz, b->nnz);
    assert_int_equal(a->total, b->total);
    assert_int_equal(a->valid_items, b->valid_items);
    assert_int_equal(a->valid_groups, b->valid_groups);
    assert_int_equal(a->min_item_frequency, b->min_item_frequency);
    assert_int_equal(a->max_group_size, b->max_group_size);
    assert_non_null(b->row_ptr);
    assert_memory_equal(a->row_ptr, b->row_ptr, ((size_t)a->n + 1) * 8);
    if (a->n) {
        assert_memory_equal(a->keys, b->keys, (size_t)a->n * 4);
        assert_memory_equal(a->freq, b->freq, (size_t)a->n * 4);
    }
    if (a->nnz) {
        assert_memory_equal(a->col, b->col, a->nnz * 4);
        assert_memory_equal(a->cooc, b->cooc, a->nnz * 4);
    }
    assert_int_equal(!a->group_ptr, !b->group_ptr);
    if (a->group_ptr) {
        assert_memory_equal(a->group_ptr, b->group_ptr, (a->valid_groups + 1) * 8);
        if (a->total)
            assert_memory_equal(a->group_items, b->group_items, a->total * 4);
    }
}

/* A result as an imported table or a version-1 file has it: no groups. */
static void drop_groups(struct cooc_result *r)
{
    free(r->group_ptr);
    free(r->group_items);
    r->group_ptr = NULL;
    r->group_items = NULL;
}

static char *path_of(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

static long file_size(const char *name)
{
    struct stat st;
    assert_int_equal(stat(path_of(name), &st), 0);
    return (long)st.st_size;
}

static unsigned char *slurp(const char *name, long *len)
{
    *len = file_size(name);
    unsigned char *buf = malloc((size_t)*len);
    FILE *f = fopen(path_of(name), "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, (size_t)*len, f), (size_t)*len);
    fclose(f);
    return buf;
}

static void spit(const char *name, const unsigned char *buf, long len)
{
    /* A new inode each time: truncating a just-written file makes ext4
     * (auto_da_alloc) flush it on close, which makes the loops crawl. */
    unlink(path_of(name));
    FILE *f = fopen(path_of(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
}

static int count_entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct cooc_result a, b;
    make_result(&a, 1, 3);
    assert_true(a.nnz > 100);
    assert_int_equal(cooc_file_write(dir, "rt.cooc", &a), 0);
    long v1_size = HDR + 8L * a.n + 8L * (a.n + 1) + 8L * (long)a.nnz;
    assert_non_null(a.group_ptr); /* cooc_compute keeps the groups: version 2 */
    assert_int_equal(file_size("rt.cooc"),
                     v1_size + 8L * (long)(a.valid_groups + 1) + 4L * (long)a.total);
    assert_int_equal(cooc_file_read(dir, "rt.cooc", &b), 0);
    assert_same(&a, &b);
    cooc_result_deinit(&b);

    /* without groups: version 1, the layout earlier versions wrote */
    drop_groups(&a);
    assert_int_equal(cooc_file_write(dir, "v1.cooc", &a), 0);
    assert_int_equal(file_size("v1.cooc"), v1_size);
    long len;
    unsigned char *buf = slurp("v1.cooc", &len);
    uint32_t version;
    memcpy(&version, buf + 8, 4);
    assert_int_equal(version, 1);
    free(buf);
    assert_int_equal(cooc_file_read(dir, "v1.cooc", &b), 0);
    assert_same(&a, &b);
    assert_null(b.group_ptr);
    cooc_result_deinit(&b);

    /* the empty result (everything filtered out) round-trips too */
    struct cooc_result e;
    make_result(&e, 1, 1000000);
    assert_int_equal(e.n, 0);
    assert_int_equal(cooc_file_write(dir, "empty.cooc", &e), 0);
    assert_int_equal(file_size("empty.cooc"), HDR + 8 + 8); /* row_ptr, group_ptr */
    assert_int_equal(cooc_file_read(dir, "empty.cooc", &b), 0);
    assert_same(&e, &b);
    cooc_result_deinit(&b);
    cooc_result_deinit(&e);
    cooc_result_deinit(&a);
}

static void test_missing_and_bad_args(void **state)
{
    (void)state;
    struct cooc_result a, b;
    memset(&b, 0x5A, sizeof(b));
    assert_int_equal(cooc_file_read(dir, "nope.cooc", &b), -ENOENT);
    assert_null(b.row_ptr); /* zeroed on failure */
    assert_int_equal(cooc_file_read("/nonexistent-dir-xyz", "x", &b), -ENOENT);
    make_result(&a, 2, 3);
    assert_int_equal(cooc_file_write("/nonexistent-dir-xyz", "x", &a), -ENOENT);
    assert_int_equal(cooc_file_write(dir, "a/b", &a), -EINVAL);
    assert_int_equal(cooc_file_write(dir, "..", &a), -EINVAL);
    assert_int_equal(cooc_file_write(dir, "", &a), -EINVAL);
    assert_int_equal(cooc_file_read(dir, "../x", &b), -EINVAL);
    assert_int_equal(cooc_file_remove(dir, "nope.cooc"), -ENOENT);
    assert_int_equal(cooc_file_write(dir, "rm.cooc", &a), 0);
    assert_int_equal(cooc_file_remove(dir, "rm.cooc"), 0);
    assert_int_equal(cooc_file_read(dir, "rm.cooc", &b), -ENOENT);
    cooc_result_deinit(&a);
}

/* Every flipped byte, anywhere in a small file, is detected. */
static void test_corruption_detected(void **state)
{
    (void)state;
    struct cooc_result a, b;
    make_result(&a, 3, 3);
    assert_int_equal(cooc_file_write(dir, "c.cooc", &a), 0);
    long len;
    unsigned char *orig = slurp("c.cooc", &len);
    unsigned char *buf = malloc((size_t)len);
    for (long off = 0; off < len; off += (off < 2 * HDR ? 1 : 7)) {
        memcpy(buf, orig, (size_t)len);
        buf[off] ^= 0x10;
        spit("bad.cooc", buf, len);
        int rc = cooc_file_read(dir, "bad.cooc", &b);
        if (rc != -EBADMSG)
            fail_msg("flip at offset %ld: rc %d", off, rc);
        assert_null(b.row_ptr);
    }
    /* the last byte too */
    memcpy(buf, orig, (size_t)len);
    buf[len - 1] ^= 0x01;
    spit("bad.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "bad.cooc", &b), -EBADMSG);
    free(buf);
    free(orig);
    cooc_result_deinit(&a);
}

static void test_truncated(void **state)
{
    (void)state;
    struct cooc_result a, b;
    make_result(&a, 4, 3);
    assert_int_equal(cooc_file_write(dir, "t.cooc", &a), 0);
    long len;
    unsigned char *orig = slurp("t.cooc", &len);
    long cuts[] = {0, 1, 8, HDR - 1, HDR, HDR + 1, len / 2, len - 4, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        spit("trunc.cooc", orig, cuts[i]);
        assert_int_equal(cooc_file_read(dir, "trunc.cooc", &b), -EBADMSG);
    }
    /* and a file with trailing garbage */
    unsigned char *longer = calloc(1, (size_t)len + 16);
    memcpy(longer, orig, (size_t)len);
    spit("trunc.cooc", longer, len + 16);
    assert_int_equal(cooc_file_read(dir, "trunc.cooc", &b), -EBADMSG);
    free(longer);
    free(orig);
    cooc_result_deinit(&a);
}

/* Rewrites the payload and header CRCs after an edit, so only the
 * structural checks (or the version check) can catch it. */
static void fix_crcs(unsigned char *buf, long len)
{
    uint32_t crc = (uint32_t)crc32_z(crc32(0, NULL, 0), buf + HDR, (size_t)(len - HDR));
    memcpy(buf + 88, &crc, 4);
    memset(buf + 92, 0, 4);
    uint32_t hcrc = (uint32_t)crc32(crc32(0, NULL, 0), buf, HDR);
    memcpy(buf + 92, &hcrc, 4);
}

static void test_structure_and_version(void **state)
{
    (void)state;
    struct cooc_result a, b;
    make_result(&a, 5, 3);
    assert_true(a.n > 2);
    assert_int_equal(cooc_file_write(dir, "s.cooc", &a), 0);
    long len;
    unsigned char *orig = slurp("s.cooc", &len);
    unsigned char *buf = malloc((size_t)len);
    long col_off = HDR + 8L * a.n + 8L * (a.n + 1);

    /* sanity: fix_crcs on an unmodified file keeps it valid */
    memcpy(buf, orig, (size_t)len);
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), 0);
    cooc_result_deinit(&b);

    /* a column index out of range, with valid checksums */
    memcpy(buf, orig, (size_t)len);
    uint32_t bad = a.n + 5;
    memcpy(buf + col_off, &bad, 4);
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), -EBADMSG);

    /* columns not ascending within a row */
    memcpy(buf, orig, (size_t)len);
    uint32_t c0, c1;
    memcpy(&c0, buf + col_off, 4);
    memcpy(&c1, buf + col_off + 4, 4);
    memcpy(buf + col_off, &c1, 4);
    memcpy(buf + col_off + 4, &c0, 4);
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), -EBADMSG);

    /* a total that is not the sum of the frequencies */
    memcpy(buf, orig, (size_t)len);
    buf[40] ^= 1;
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), -EBADMSG);

    /* a huge nnz in the header must not be allocated */
    memcpy(buf, orig, (size_t)len);
    uint64_t huge = UINT64_MAX / 32;
    memcpy(buf + 32, &huge, 8);
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), -EBADMSG);

    /* the groups: an item out of order within a group */
    long grp_items_off = len - 4L * (long)a.total;
    assert_true(a.group_ptr[1] - a.group_ptr[0] >= 2);
    memcpy(buf, orig, (size_t)len);
    memcpy(&c0, buf + grp_items_off, 4);
    memcpy(&c1, buf + grp_items_off + 4, 4);
    memcpy(buf + grp_items_off, &c1, 4);
    memcpy(buf + grp_items_off + 4, &c0, 4);
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), -EBADMSG);

    /* ... an item that is not in the matrix */
    memcpy(buf, orig, (size_t)len);
    memcpy(buf + grp_items_off, &bad, 4);
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), -EBADMSG);

    /* ... a flag version 1 does not have, or an unknown flag */
    memcpy(buf, orig, (size_t)len);
    uint32_t one = 1, flags = 3;
    memcpy(buf + 8, &one, 4);
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), -EBADMSG);
    memcpy(buf, orig, (size_t)len);
    memcpy(buf + 20, &flags, 4);
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), -EBADMSG);

    /* a newer version is refused as such */
    memcpy(buf, orig, (size_t)len);
    uint32_t v = COOC_FILE_VERSION + 1;
    memcpy(buf + 8, &v, 4);
    fix_crcs(buf, len);
    spit("s2.cooc", buf, len);
    assert_int_equal(cooc_file_read(dir, "s2.cooc", &b), -EPROTONOSUPPORT);

    free(buf);
    free(orig);
    cooc_result_deinit(&a);
}

/* Writing over an existing file replaces it whole and leaves no temporary
 * file; a write that fails leaves the old file as it was. */
static void test_atomic_replace(void **state)
{
    (void)state;
    struct cooc_result a, c, b;
    make_result(&a, 6, 3);
    make_result(&c, 7, 2);
    int before = count_entries();
    assert_int_equal(cooc_file_write(dir, "r.cooc", &a), 0);
    assert_int_equal(count_entries(), before + 1);
    assert_int_equal(cooc_file_write(dir, "r.cooc", &c), 0);
    assert_int_equal(count_entries(), before + 1); /* replaced, no temp left */
    assert_int_equal(cooc_file_read(dir, "r.cooc", &b), 0);
    assert_same(&c, &b);
    cooc_result_deinit(&b);

    /* an invalid result is refused before anything is written */
    struct cooc_result broken = c;
    broken.nnz = c.nnz + 1;
    assert_int_equal(cooc_file_write(dir, "r.cooc", &broken), -EINVAL);
    assert_int_equal(count_entries(), before + 1);
    assert_int_equal(cooc_file_read(dir, "r.cooc", &b), 0);
    assert_same(&c, &b);
    cooc_result_deinit(&b);

    /* a reader holding the old file keeps reading the old bytes */
    int fd = open(path_of("r.cooc"), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(cooc_file_write(dir, "r.cooc", &a), 0);
    unsigned char h[HDR];
    assert_int_equal(pread(fd, h, HDR, 0), HDR);
    uint64_t nnz_old;
    memcpy(&nnz_old, h + 32, 8);
    assert_int_equal(nnz_old, c.nnz);
    close(fd);
    assert_int_equal(cooc_file_read(dir, "r.cooc", &b), 0);
    assert_same(&a, &b);
    cooc_result_deinit(&b);
    cooc_result_deinit(&a);
    cooc_result_deinit(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_structure_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
