/*
 * Model embedding files (see model_file.h).
 */
#include "storage/model_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/file_util.h"

#define HDR 64
static const char MAGIC[8] = {'I', 'V', 'M', 'O', 'D', 'E', 'L', '\n'};

struct hdr_fields {
    uint64_t n;
    uint32_t dims;
    uint32_t *crc_out;
};

static void put32(unsigned char *h, int off, uint32_t v)
{
    memcpy(h + off, &v, 4);
}

static void put64(unsigned char *h, int off, uint64_t v)
{
    memcpy(h + off, &v, 8);
}

static uint32_t get32(const unsigned char *h, int off)
{
    uint32_t v;
    memcpy(&v, h + off, 4);
    return v;
}

static uint64_t get64(const unsigned char *h, int off)
{
    uint64_t v;
    memcpy(&v, h + off, 8);
    return v;
}

static void finish_header(void *header, uint32_t crc, uint64_t size, void *ud)
{
    struct hdr_fields *f = ud;
    unsigned char *h = header;
    memcpy(h, MAGIC, 8);
    put32(h, 8, MODEL_FILE_VERSION);
    put32(h, 12, HDR);
    put64(h, 16, f->n);
    put32(h, 24, f->dims);
    put64(h, 32, size);
    put32(h, 40, crc);
    put32(h, 44, file_crc32(0, h, HDR));
    *f->crc_out = crc;
}

int model_file_write(const char *dir, const char *name, struct model_data *m)
{
    unsigned char header[HDR];
    if (!m || (m->n && (!m->keys || !m->embedding)) || m->dimensions == 0)
        return -EINVAL;
    struct file_part parts[] = {
        {m->keys, (size_t)m->n * 4},
        {m->embedding, (size_t)m->n * m->dimensions * sizeof(float)},
    };
    struct hdr_fields f = {m->n, m->dimensions, &m->crc};
    return file_write_atomic(dir, name, header, HDR, parts, 2, finish_header, &f);
}

/* Opens and validates the header; returns the fd (>= 0) or an error. */
static int open_checked(const char *dir, const char *name, unsigned char *h, struct model_data *m)
{
    char path[1400];
    if (!file_name_ok(name))
        return -EINVAL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? file_read_all(fd, h, HDR) : -errno;
    if (rc < 0)
        goto fail;
    uint32_t hcrc = get32(h, 44);
    put32(h, 44, 0);
    rc = -EBADMSG;
    if (memcmp(h, MAGIC, 8) != 0 || get32(h, 8) != MODEL_FILE_VERSION || get32(h, 12) != HDR ||
        file_crc32(0, h, HDR) != hcrc)
        goto fail;
    uint64_t n = get64(h, 16), dims = get32(h, 24), size = get64(h, 32);
    if (n > UINT32_MAX || dims == 0 || dims > 65536 || size != n * 4 + n * dims * 4 ||
        (uint64_t)st.st_size != HDR + size)
        goto fail;
    m->n = (uint32_t)n;
    m->dimensions = (uint32_t)dims;
    m->crc = get32(h, 40);
    return fd;
fail:
    close(fd);
    return rc;
}

int model_file_stat(const char *dir, const char *name, struct model_data *out)
{
    unsigned char h[HDR];
    memset(out, 0, sizeof *out);
    int fd = open_checked(dir, name, h, out);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

int model_file_read(const char *dir, const char *name, struct model_data *out)
{
    unsigned char h[HDR];
    memset(out, 0, sizeof *out);
    int fd = open_checked(dir, name, h, out);
    if (fd < 0)
        return fd;
    int rc = -ENOMEM;
    size_t ne = (size_t)out->n * out->dimensions;
    out->keys = malloc((size_t)out->n * 4 + 1);
    out->embedding = malloc(ne * sizeof(float) + 1);
    if (!out->keys || !out->embedding)
        goto fail;
    if ((rc = file_read_all(fd, out->keys, (size_t)out->n * 4)) < 0 ||
        (rc = file_read_all(fd, out->embedding, ne * sizeof(float))) < 0)
        goto fail;
    uint32_t crc = file_crc32(0, NULL, 0);
    crc = file_crc32(crc, out->keys, (size_t)out->n * 4);
    crc = file_crc32(crc, out->embedding, ne * sizeof(float));
    rc = -EBADMSG;
    if (crc != out->crc)
        goto fail;
    for (uint32_t i = 1; i < out->n; i++)
        if (out->keys[i] <= out->keys[i - 1])
            goto fail;
    close(fd);
    return 0;
fail:
    close(fd);
    model_data_deinit(out);
    return rc;
}

void model_data_deinit(struct model_data *m)
{
    free(m->keys);
    free(m->embedding);
    memset(m, 0, sizeof *m);
}
