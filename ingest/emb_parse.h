/*
 * Push parser for embedding files (POST /v1/models/import): JSON lines in
 * the seed's export format, one item a line,
 *     {"id":"2114406","embedding":[0.12,-0.5,...]}
 * as BigQuery's NEWLINE_DELIMITED_JSON export of the seed's item_embeddings
 * table writes it (and as GET /v1/models/{id}/embeddings serves it). The
 * id is a string or an integer; other keys are ignored; duplicate keys
 * are an error; every value of "embedding" is a finite number that fits a
 * float32 (the precision models are stored and served in). Bytes in, rows
 * out; no HTTP, no SQLite; at most one line is held (max_record).
 * Checks across lines (equal dimensions, unique ids) are the caller's.
 *
 * Threading: one thread at a time per parser.
 */
#ifndef ITEMVEC_INGEST_EMB_PARSE_H
#define ITEMVEC_INGEST_EMB_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/upload_parse.h"

/* One line: id (borrowed, not NUL-terminated), its dims values (borrowed;
 * valid for the call only). */
struct emb_row {
    const char *id;
    size_t id_len;
    const float *values;
    uint32_t dims;
    unsigned long line;
};

typedef int (*emb_row_cb)(void *userdata, const struct emb_row *row, struct upload_error *err);

struct emb_parser;

/* max_record bounds one line's bytes, max_dims the length of an
 * "embedding" array (longer: -EINVAL naming the line). NULL on ENOMEM. */
struct emb_parser *emb_parser_create(size_t max_record, uint32_t max_dims, emb_row_cb cb,
                                     void *userdata);

/* Same contract as cooc_parser_feed/finish (ingest/cooc_parse.h). */
int emb_parser_feed(struct emb_parser *p, const char *data, size_t len, struct upload_error *err);
int emb_parser_finish(struct emb_parser *p, struct upload_error *err);
uint64_t emb_parser_rows(const struct emb_parser *p);
void emb_parser_destroy(struct emb_parser *p);

#endif
