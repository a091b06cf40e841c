/*
 * The persisted result of a pmi job: one struct cooc_result (ml/cooc.h) in
 * a binary file of the state dir, written atomically (temp file, fsync,
 * rename, fsync of the directory) and read back with read() straight into
 * the arrays, so a train job loads ~19 M nonzeros in a fraction of a
 * second. Not SQLite: the matrix is big, written once and read whole.
 *
 * Layout (little-endian, native on every platform itemvec builds for; the
 * header carries a byte-order mark and a file from another byte order is
 * refused):
 *   header, 128 bytes:
 *     0  magic "IVCOOC\r\n" (8)      8  version u32 (1 or 2)   12 header size u32 (128)
 *     16 byte-order mark u32 0x01020304                    20 flags u32 (version 2:
 *        bit 0 = the groups follow; version 1: 0)
 *     24 n u64   32 nnz u64   40 total u64   48 valid_items u64
 *     56 valid_groups u64   64 min_item_frequency i64   72 max_group_size i64
 *     80 payload size u64   88 payload CRC32 u32   92 header CRC32 u32
 *        (CRC of the 128 header bytes with this field zero)   96..127 zero
 *   payload, right after the header, each array packed:
 *     keys u32[n], freq u32[n], row_ptr u64[n+1], col u32[nnz], cooc u32[nnz]
 *     and, with flag bit 0 (version 2), the valid groups (ml/cooc.h):
 *     group_ptr u64[valid_groups+1], group_items u32[total]
 * A result with groups is written as version 2, one without (an imported
 * table) as version 1, byte for byte what earlier versions wrote; both are
 * read.
 * CRC32 is zlib's crc32 (the ISO-HDLC polynomial, as gzip and PNG).
 */
#ifndef ITEMVEC_STORAGE_COOC_FILE_H
#define ITEMVEC_STORAGE_COOC_FILE_H

#include "ml/cooc.h"

#define COOC_FILE_VERSION 2 /* the newest version read and written */

/* Writes r to <dir>/<name> atomically: the data goes to a temporary file
 * in dir (".<name>.tmp.<pid>.<n>"), which is fsynced and renamed over name,
 * then dir is fsynced. A reader sees either the old file or the complete
 * new one, also after a crash. name is a plain file name (no '/', not "."
 * or ".."). r is borrowed and must satisfy cooc_result's invariants.
 *
 * Errors: -EINVAL (bad name or r), or the negative errno of the failing
 * system call (-ENOENT if dir is missing, -ENOSPC, -EIO, ...); the
 * temporary file is removed on failure and an existing file is untouched.
 * Threading: reentrant; concurrent writers of the same name each produce
 * a complete file, the last rename wins. */
int cooc_file_write(const char *dir, const char *name, const struct cooc_result *r);

/* Reads <dir>/<name> into *out (overwritten; zeroed on failure). The
 * caller owns the arrays and frees them with cooc_result_deinit.
 *
 * Checks: magic, version, byte order, header CRC, that the file size is
 * exactly header + payload, the payload CRC, and the matrix structure
 * (row_ptr from 0 to nnz, non-decreasing; columns < n and strictly
 * ascending within a row; keys ascending; groups, when present: bounds
 * from 0 to total, 2+ items each, strictly ascending, < n, and every
 * item's count of groups equal to its freq).
 *
 * Errors: -ENOENT (no such file), -EBADMSG (not a cooc file, truncated,
 * corrupted, or a checksum mismatch), -EPROTONOSUPPORT (a newer version),
 * -ENOMEM, or the errno of a failing read. Threading: reentrant. */
int cooc_file_read(const char *dir, const char *name, struct cooc_result *out);

/* Reads only the 128-byte header of <dir>/<name>, with the same checks of
 * the header (magic, version, flags, byte order, header CRC, sizes against
 * the file's size) but not of the payload: fills *out's counts (n, nnz,
 * total, valid_*, the parameters) with every array NULL, and
 * *payload_bytes (may be NULL) with the bytes cooc_file_read would
 * allocate for the arrays, so a caller can size what a job will need
 * without loading the matrix. Errors as cooc_file_read (no -ENOMEM); *out
 * is zeroed on failure. Reentrant. */
int cooc_file_stat(const char *dir, const char *name, struct cooc_result *out,
                   uint64_t *payload_bytes);

/* Removes <dir>/<name> (and fsyncs dir). -ENOENT when absent. */
int cooc_file_remove(const char *dir, const char *name);

#endif
