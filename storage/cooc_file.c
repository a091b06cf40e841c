/*
 * Binary file for a cooc_result (a pmi job's matrix): atomic write with
 * CRC32 checksums, fast read() back. Format in storage/cooc_file.h.
 *
 * Why not SQLite: ~19 M nonzeros as rows would cost seconds to insert and
 * to read; the matrix is immutable once computed and always read whole, so
 * a flat file of packed arrays loads at memory bandwidth. The job's row in
 * the database refers to the file by name.
 */
#include "storage/cooc_file.h"
#include "storage/file_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define HDR_SIZE 128
#define BOM 0x01020304u
static const char MAGIC[8] = {'I', 'V', 'C', 'O', 'O', 'C', '\r', '\n'};

/* Offsets of the header fields (see the layout in cooc_file.h). */
enum {
    H_MAGIC = 0,
    H_VERSION = 8,
    H_HDR_SIZE = 12,
    H_BOM = 16,
    H_FLAGS = 20,
    H_N = 24,
    H_NNZ = 32,
    H_TOTAL = 40,
    H_VALID_ITEMS = 48,
    H_VALID_GROUPS = 56,
    H_MIN_FREQ = 64,
    H_MAX_SIZE = 72,
    H_PAYLOAD_SIZE = 80,
    H_PAYLOAD_CRC = 88,
    H_HDR_CRC = 92,
};

static void put32(unsigned char *h, int off, uint32_t v)
{
    memcpy(h + off, &v, sizeof(v));
}

static void put64(unsigned char *h, int off, uint64_t v)
{
    memcpy(h + off, &v, sizeof(v));
}

static uint32_t get32(const unsigned char *h, int off)
{
    uint32_t v;
    memcpy(&v, h + off, sizeof(v));
    return v;
}

static uint64_t get64(const unsigned char *h, int off)
{
    uint64_t v;
    memcpy(&v, h + off, sizeof(v));
    return v;
}

#define FLAG_GROUPS 1u

/* Payload size in bytes for n items, nnz entries and, with groups, the
 * groups' bounds and items; false on overflow. */
static bool payload_size(uint64_t n, uint64_t nnz, int groups, uint64_t n_groups,
                         uint64_t total, uint64_t *out)
{
    if (n > UINT32_MAX || nnz > (UINT64_MAX / 16))
        return false;
    *out = 4 * n + 4 * n + 8 * (n + 1) + 4 * nnz + 4 * nnz;
    if (groups) {
        if (n_groups > UINT32_MAX || total > UINT32_MAX)
            return false; /* cooc_compute's own limits */
        *out += 8 * (n_groups + 1) + 4 * total;
    }
    return true;
}

struct header_ctx {
    const struct cooc_result *r;
    uint64_t psize;
};

static void finish_header(void *header, uint32_t crc, uint64_t size, void *ud)
{
    struct header_ctx *c = ud;
    const struct cooc_result *r = c->r;
    unsigned char *hdr = header;
    memcpy(hdr + H_MAGIC, MAGIC, sizeof(MAGIC));
    put32(hdr, H_VERSION, r->group_ptr ? 2 : 1);
    put32(hdr, H_FLAGS, r->group_ptr ? FLAG_GROUPS : 0);
    put32(hdr, H_HDR_SIZE, HDR_SIZE);
    put32(hdr, H_BOM, BOM);
    put64(hdr, H_N, r->n);
    put64(hdr, H_NNZ, r->nnz);
    put64(hdr, H_TOTAL, r->total);
    put64(hdr, H_VALID_ITEMS, r->valid_items);
    put64(hdr, H_VALID_GROUPS, r->valid_groups);
    put64(hdr, H_MIN_FREQ, (uint64_t)r->min_item_frequency);
    put64(hdr, H_MAX_SIZE, (uint64_t)r->max_group_size);
    put64(hdr, H_PAYLOAD_SIZE, c->psize);
    put32(hdr, H_PAYLOAD_CRC, crc);
    put32(hdr, H_HDR_CRC, file_crc32(0, hdr, HDR_SIZE));
}

int cooc_file_write(const char *dir, const char *name, const struct cooc_result *r)
{
    unsigned char hdr[HDR_SIZE];
    uint64_t psize;

    if (!dir || !file_name_ok(name) || !r ||
        !payload_size(r->n, r->nnz, r->group_ptr != NULL, r->valid_groups, r->total, &psize) ||
        !r->row_ptr || r->row_ptr[r->n] != r->nnz || (r->n && (!r->keys || !r->freq)) ||
        (r->nnz && (!r->col || !r->cooc)) || (!r->group_ptr != !r->group_items) ||
        (r->group_ptr && r->group_ptr[r->valid_groups] != r->total))
        return -EINVAL;
    const struct file_part parts[] = {
        {r->keys, (size_t)r->n * 4},
        {r->freq, (size_t)r->n * 4},
        {r->row_ptr, ((size_t)r->n + 1) * 8},
        {r->col, (size_t)r->nnz * 4},
        {r->cooc, (size_t)r->nnz * 4},
        {r->group_ptr, ((size_t)r->valid_groups + 1) * 8},
        {r->group_items, (size_t)r->total * 4},
    };
    size_t n_parts = sizeof(parts) / sizeof(parts[0]) - (r->group_ptr ? 0 : 2);
    struct header_ctx c = {r, psize};
    return file_write_atomic(dir, name, hdr, HDR_SIZE, parts, n_parts, finish_header, &c);
}

/* The groups' structure: bounds from 0 to total, each group 2+ strictly
 * ascending items < n, and each item in exactly freq of them (so a walk
 * over them agrees with the matrix's frequencies). */
static int check_groups(const struct cooc_result *r)
{
    int rc = 0;
    uint32_t *count = calloc((size_t)r->n + 1, sizeof *count);
    if (!count)
        return -ENOMEM;
    if (r->group_ptr[0] != 0 || r->group_ptr[r->valid_groups] != r->total)
        rc = -EBADMSG;
    for (uint64_t g = 0; rc == 0 && g < r->valid_groups; g++) {
        uint64_t b = r->group_ptr[g], e = r->group_ptr[g + 1];
        if (e < b + 2 || e > r->total) {
            rc = -EBADMSG;
            break;
        }
        for (uint64_t k = b; k < e; k++) {
            uint32_t d = r->group_items[k];
            if (d >= r->n || (k > b && d <= r->group_items[k - 1])) {
                rc = -EBADMSG;
                break;
            }
            count[d]++;
        }
    }
    for (uint32_t i = 0; rc == 0 && i < r->n; i++)
        if (count[i] != r->freq[i])
            rc = -EBADMSG;
    free(count);
    return rc;
}

/* Structure checks that the CRC alone cannot give (a file written by a
 * buggy or hostile writer with a valid checksum). */
static int check_structure(const struct cooc_result *r)
{
    uint64_t total = 0;
    if (r->row_ptr[0] != 0 || r->row_ptr[r->n] != r->nnz)
        return -EBADMSG;
    for (uint32_t i = 0; i < r->n; i++) {
        if (i && r->keys[i] <= r->keys[i - 1])
            return -EBADMSG;
        if (r->freq[i] == 0)
            return -EBADMSG;
        total += r->freq[i];
        uint64_t b = r->row_ptr[i], e = r->row_ptr[i + 1];
        if (e < b || e > r->nnz)
            return -EBADMSG;
        uint32_t prev = 0;
        for (uint64_t k = b; k < e; k++) {
            uint32_t c = r->col[k];
            if (c >= r->n || (k > b && c <= prev) || r->cooc[k] == 0)
                return -EBADMSG;
            prev = c;
        }
    }
    if (total != r->total)
        return -EBADMSG;
    return r->group_ptr ? check_groups(r) : 0;
}

/* Checks a header read from a file of file_size bytes (zeroing its CRC
 * field on the way) and fills r's counts, not its arrays, and *psize, the
 * payload's size. */
static int header_parse(unsigned char *hdr, uint64_t file_size, struct cooc_result *r,
                        uint64_t *psize)
{
    if (memcmp(hdr + H_MAGIC, MAGIC, sizeof(MAGIC)) != 0 || get32(hdr, H_BOM) != BOM ||
        get32(hdr, H_HDR_SIZE) != HDR_SIZE || get32(hdr, H_VERSION) == 0)
        return -EBADMSG;
    uint32_t want = get32(hdr, H_HDR_CRC);
    put32(hdr, H_HDR_CRC, 0);
    if (file_crc32(0, hdr, HDR_SIZE) != want)
        return -EBADMSG;
    if (get32(hdr, H_VERSION) > COOC_FILE_VERSION)
        return -EPROTONOSUPPORT;
    uint32_t version = get32(hdr, H_VERSION), flags = get32(hdr, H_FLAGS);
    if ((version == 1 && flags != 0) || (flags & ~FLAG_GROUPS) != 0)
        return -EBADMSG;
    int groups = (flags & FLAG_GROUPS) != 0;
    uint64_t n = get64(hdr, H_N), nnz = get64(hdr, H_NNZ);
    uint64_t n_groups = get64(hdr, H_VALID_GROUPS), total = get64(hdr, H_TOTAL);
    /* Sizes come from the file: check them against the file before allocating. */
    if (!payload_size(n, nnz, groups, n_groups, total, psize) ||
        *psize != get64(hdr, H_PAYLOAD_SIZE) || file_size != HDR_SIZE + *psize)
        return -EBADMSG;
    r->n = (uint32_t)n;
    r->nnz = nnz;
    r->total = total;
    r->valid_items = get64(hdr, H_VALID_ITEMS);
    r->valid_groups = n_groups;
    r->min_item_frequency = (int64_t)get64(hdr, H_MIN_FREQ);
    r->max_group_size = (int64_t)get64(hdr, H_MAX_SIZE);
    return 0;
}

int cooc_file_stat(const char *dir, const char *name, struct cooc_result *out,
                   uint64_t *payload_bytes)
{
    unsigned char hdr[HDR_SIZE];
    int dfd = -1, fd = -1, rc;
    struct stat st;
    uint64_t psize = 0;

    if (out)
        memset(out, 0, sizeof(*out));
    if (payload_bytes)
        *payload_bytes = 0;
    if (!dir || !file_name_ok(name) || !out)
        return -EINVAL;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fd = dfd < 0 ? -1 : openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0)
        rc = -errno;
    else if (st.st_size < HDR_SIZE)
        rc = -EBADMSG;
    else if ((rc = file_read_all(fd, hdr, HDR_SIZE)) == 0)
        rc = header_parse(hdr, (uint64_t)st.st_size, out, &psize);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    else if (payload_bytes)
        *payload_bytes = psize;
    return rc;
}

int cooc_file_read(const char *dir, const char *name, struct cooc_result *out)
{
    unsigned char hdr[HDR_SIZE];
    struct cooc_result r = {0};
    int dfd = -1, fd = -1, rc = 0;
    struct stat st;
    uint64_t psize;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!dir || !file_name_ok(name) || !out)
        return -EINVAL;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = -errno;
        goto out;
    }
    fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (st.st_size < HDR_SIZE) {
        rc = -EBADMSG;
        goto out;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if ((rc = file_read_all(fd, hdr, HDR_SIZE)) < 0)
        goto out;
    if ((rc = header_parse(hdr, (uint64_t)st.st_size, &r, &psize)) < 0)
        goto out;
    int groups = (get32(hdr, H_FLAGS) & FLAG_GROUPS) != 0;
    uint64_t n = r.n, nnz = r.nnz, n_groups = r.valid_groups, total = r.total;
    r.keys = malloc(n ? n * 4 : 1);
    r.freq = malloc(n ? n * 4 : 1);
    r.row_ptr = malloc((n + 1) * 8);
    r.col = malloc(nnz ? nnz * 4 : 1);
    r.cooc = malloc(nnz ? nnz * 4 : 1);
    if (groups) {
        r.group_ptr = malloc((n_groups + 1) * 8);
        r.group_items = malloc(total ? total * 4 : 1);
    }
    if (!r.keys || !r.freq || !r.row_ptr || !r.col || !r.cooc ||
        (groups && (!r.group_ptr || !r.group_items))) {
        rc = -ENOMEM;
        goto out;
    }
    struct {
        void *p;
        size_t len;
    } parts[] = {
        {r.keys, n * 4},
        {r.freq, n * 4},
        {r.row_ptr, (n + 1) * 8},
        {r.col, nnz * 4},
        {r.cooc, nnz * 4},
        {r.group_ptr, groups ? (n_groups + 1) * 8 : 0},
        {r.group_items, groups ? total * 4 : 0},
    };
    uint32_t crc = file_crc32(0, NULL, 0);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (!parts[i].len)
            continue;
        if ((rc = file_read_all(fd, parts[i].p, parts[i].len)) < 0)
            goto out;
        crc = file_crc32(crc, parts[i].p, parts[i].len);
    }
    if (crc != get32(hdr, H_PAYLOAD_CRC)) {
        rc = -EBADMSG;
        goto out;
    }
    if ((rc = check_structure(&r)) < 0)
        goto out;
    *out = r;
    memset(&r, 0, sizeof(r));
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    cooc_result_deinit(&r);
    return rc;
}

int cooc_file_remove(const char *dir, const char *name)
{
    int dfd, rc = 0;
    if (!dir || !file_name_ok(name))
        return -EINVAL;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    if (unlinkat(dfd, name, 0) < 0)
        rc = -errno;
    else if (fsync(dfd) < 0)
        rc = -errno;
    close(dfd);
    return rc;
}
