/*
 * Durable binary files in the state directory (PMI matrices, models):
 * atomic replace (temp file, fsync, rename, fsync dir) and exact
 * reads/writes. Shared by storage/cooc_file.c and storage/model_file.c.
 */
#ifndef ITEMVEC_STORAGE_FILE_UTIL_H
#define ITEMVEC_STORAGE_FILE_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct file_part {
    const void *data;
    size_t len;
};

/* Fills the header once the payload is written: crc is the zlib CRC32 of
 * all parts in order, size their total length. */
typedef void (*file_header_fn)(void *header, uint32_t crc, uint64_t size, void *userdata);

/* Writes header (header_size bytes, completed by finish) followed by the
 * parts to <dir>/<name> so that readers see either the old file or the
 * whole new one, durable when this returns 0. name must be a plain file
 * name (no '/', not starting with '.'). Returns 0 or a negative errno. */
int file_write_atomic(const char *dir, const char *name, void *header, size_t header_size,
                      const struct file_part *parts, size_t n_parts, file_header_fn finish,
                      void *userdata);

/* Exact write/read of len bytes (EINTR retried). A read hitting end of
 * file returns -EBADMSG (a truncated file). */
int file_write_all(int fd, const void *buf, size_t len);
int file_read_all(int fd, void *buf, size_t len);

/* Removes the temp files ".<name>.tmp.<pid>.<n>" that file_write_atomic
 * leaves in dir when its process dies mid-write (kill -9, OOM), except
 * those of a process that is still alive (another itemvecd on the same
 * state dir). Each removal is logged with label (e.g. "models/"). Call at
 * start, before any writer runs. Returns the number removed (a missing dir
 * is 0) or a negative errno. */
int file_remove_stale_temps(const char *dir, const char *label);

/* Whether name is acceptable for file_write_atomic. */
int file_name_ok(const char *name);

/* CRC32 (zlib) continuing from crc (start with 0). */
uint32_t file_crc32(uint32_t crc, const void *buf, size_t len);

#endif
