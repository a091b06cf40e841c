/*
 * Atomic, durable binary files (see file_util.h). The data is fsynced
 * before the rename makes it visible, and the directory after, so a crash
 * at any point leaves either the old file or the complete new one.
 */
#include "storage/file_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/log.h"

static atomic_uint tmp_counter;

int file_name_ok(const char *name)
{
    return name && name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < 200;
}

uint32_t file_crc32(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len) { /* zlib's crc32 takes a uInt length */
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return crc;
}

int file_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int file_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t r = read(fd, p, chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EBADMSG;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

int file_write_atomic(const char *dir, const char *name, void *header, size_t header_size,
                      const struct file_part *parts, size_t n_parts, file_header_fn finish,
                      void *userdata)
{
    char tmp[256];
    int dfd = -1, fd = -1, rc = 0, created = 0;
    if (!dir || !file_name_ok(name))
        return -EINVAL;
    snprintf(tmp, sizeof tmp, ".%s.tmp.%ld.%u", name, (long)getpid(),
             atomic_fetch_add(&tmp_counter, 1));
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = -errno;
        goto out;
    }
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    created = 1;
    /* placeholder header; the real one, with the checksum, at the end */
    memset(header, 0, header_size);
    if ((rc = file_write_all(fd, header, header_size)) < 0)
        goto out;
    uint32_t crc = file_crc32(0, NULL, 0);
    uint64_t size = 0;
    for (size_t i = 0; i < n_parts; i++) {
        if (!parts[i].len)
            continue;
        crc = file_crc32(crc, parts[i].data, parts[i].len);
        size += parts[i].len;
        if ((rc = file_write_all(fd, parts[i].data, parts[i].len)) < 0)
            goto out;
    }
    finish(header, crc, size, userdata);
    if (pwrite(fd, header, header_size, 0) != (ssize_t)header_size) {
        rc = errno ? -errno : -EIO;
        goto out;
    }
    if (fsync(fd) < 0) {
        rc = -errno;
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        goto out;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, name) < 0) {
        rc = -errno;
        goto out;
    }
    created = 0;
    if (fsync(dfd) < 0)
        rc = -errno;
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlinkat(dfd, tmp, 0);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* The writer's pid in a temp name ".<name>.tmp.<pid>.<n>", or 0 when the
 * name is not one of ours. */
static long temp_owner(const char *name)
{
    if (name[0] != '.')
        return 0;
    const char *t = strstr(name, ".tmp.");
    if (!t)
        return 0;
    const char *last = NULL;
    for (const char *p = t + 5; (p = strstr(p, ".tmp.")) != NULL; p += 5)
        last = p; /* a name may itself contain ".tmp." */
    if (last)
        t = last;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (end == t + 5 || *end != '.' || pid <= 0)
        return 0;
    strtoul(end + 1, &end, 10);
    return *end ? 0 : pid;
}

int file_remove_stale_temps(const char *dir, const char *label)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int removed = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = temp_owner(e->d_name);
        /* our own pid is a dead predecessor's (pid reuse in containers):
         * nothing of ours is writing yet */
        int alive = pid && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
        if (!pid || alive)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
            log_warn("startup: removed stale temp file %s%s (left by an interrupted write of "
                     "process %ld)",
                     label, e->d_name, pid);
            removed++;
        } else if (errno != ENOENT) {
            rc = -errno;
        }
    }
    closedir(d);
    return rc ? rc : removed;
}
