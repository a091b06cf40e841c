/*
 * Push parser for co-occurrence tables (POST /v1/pmi/import): the seed's
 * item_cooc table as a warehouse exports it, one row per ordered pair
 * (item1, item2) with its cooc count and pmi, the diagonal (item, item)
 * carrying the item's frequency. Bytes in, rows out; no HTTP, no SQLite;
 * the parser holds at most one record (bounded by max_record).
 *
 * Formats (docs/api.md is the user-facing version):
 * - CSV / TSV with a header naming the columns, case-insensitively:
 *   item1_Id or item1, item2_Id or item2, cooc, and optionally pmi (the
 *   seed's names and itemvecd's own, as /v1/pmi/pairs prints them). Other
 *   columns are ignored. RFC 4180 quotes in both; CRLF or LF; a UTF-8 BOM
 *   and blank lines are skipped; ids are trimmed of spaces. A later line
 *   equal to the header line is skipped, so shards that each carry a
 *   header (BigQuery's EXPORT DATA, Spark's part files) can be sent
 *   concatenated.
 * - NDJSON: one object a line with the same keys ("item1_Id", ... as in
 *   BigQuery's JSON export); ids are strings or integers; unknown keys are
 *   ignored; duplicate keys are an error.
 * Values: cooc is an integer in 1..4294967295 (0 or negative is an error:
 *   the seed's table has no zero counts), pmi a finite decimal number (no
 *   NaN/Infinity), ids 1..256 bytes of UTF-8 without control characters.
 *
 * Threading: one thread at a time per parser.
 */
#ifndef ITEMVEC_INGEST_COOC_PARSE_H
#define ITEMVEC_INGEST_COOC_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/upload_parse.h"

/* One row as found. Strings are borrowed for the callback only and not
 * NUL-terminated. pmi is meaningful when has_pmi. */
struct cooc_row {
    const char *item1;
    size_t item1_len;
    const char *item2;
    size_t item2_len;
    uint32_t cooc;
    int has_pmi;
    double pmi;
    unsigned long line;
};

/* Return 0 to go on; a negative errno stops the parse and is returned by
 * feed/finish (fill err to give a message; line is preset to the row's). */
typedef int (*cooc_row_cb)(void *userdata, const struct cooc_row *row, struct upload_error *err);

struct cooc_parser;

/* format: UPLOAD_FORMAT_CSV, _TSV or _NDJSON (others: NULL). max_record
 * bounds one record's bytes. NULL on ENOMEM or a bad argument. */
struct cooc_parser *cooc_parser_create(enum upload_format format, size_t max_record, cooc_row_cb cb,
                                       void *userdata);

/* Feeds len bytes. Returns 0, -EINVAL (syntax or value error: err has
 * line, column, message), -E2BIG (record over max_record), -ENOMEM, or
 * the callback's error. After an error only destroy is allowed. */
int cooc_parser_feed(struct cooc_parser *p, const char *data, size_t len, struct upload_error *err);

/* End of body: the last record, and a header must have been seen (CSV,
 * TSV). Same returns as feed. */
int cooc_parser_finish(struct cooc_parser *p, struct upload_error *err);

/* Rows passed to the callback so far; whether the table has a pmi column
 * (CSV/TSV header; for NDJSON: whether any row had one). */
uint64_t cooc_parser_rows(const struct cooc_parser *p);
int cooc_parser_has_pmi(const struct cooc_parser *p);

void cooc_parser_destroy(struct cooc_parser *p);

#endif
