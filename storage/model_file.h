/*
 * A trained model's embeddings as a checksummed binary file in
 * <state>/models/<model id>.emb, written atomically by the train job and
 * read by model activation and the embeddings export.
 *
 * Layout (little-endian): a 64-byte header
 *   0 magic "IVMODEL\n" | 8 version u32 | 12 header size u32 | 16 n u64 |
 *   24 dimensions u32 | 28 reserved u32 | 32 payload size u64 |
 *   40 payload crc32 u32 | 44 header crc32 u32 (over the header with this
 *   field zero) | 48..63 zero
 * then the payload: item keys u32[n] (ascending) and embeddings
 * f32[n × dimensions], row-major (embedding = x_i + y_i).
 */
#ifndef ITEMVEC_STORAGE_MODEL_FILE_H
#define ITEMVEC_STORAGE_MODEL_FILE_H

#include <stdint.h>

#define MODEL_FILE_VERSION 1

struct model_data {
    uint32_t n;
    uint32_t dimensions;
    uint32_t *keys;   /* [n] */
    float *embedding; /* [n * dimensions] */
    uint32_t crc;     /* payload checksum (also the export's ETag) */
};

/* Writes m (borrowed) to <dir>/<name>; sets m->crc. 0 or negative errno. */
int model_file_write(const char *dir, const char *name, struct model_data *m);

/* Reads <dir>/<name> into *out (caller frees with model_data_deinit).
 * -ENOENT when missing, -EBADMSG when corrupt. */
int model_file_read(const char *dir, const char *name, struct model_data *out);

/* Reads only the header: n, dimensions, crc. */
int model_file_stat(const char *dir, const char *name, struct model_data *out);

void model_data_deinit(struct model_data *m);

#endif
