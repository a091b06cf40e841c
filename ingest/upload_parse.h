/*
 * Push parsers for the playlist upload formats of POST /v1/playlists:
 * CSV (RFC 4180), TSV, NDJSON and JSON (one playlist object or an array of
 * them). The HTTP layer feeds body bytes in whatever chunks they arrive;
 * the parser calls back once per (playlist, item) row. No I/O, no HTTP: the
 * parser never holds more than one record (CSV/TSV row, NDJSON line, or one
 * top-level JSON array element) in memory, so a 100 MB body streams through
 * in bounded memory.
 *
 * Format rules (docs/api.md is the user-facing version):
 * - CSV/TSV: first non-empty line is the header; required columns
 *   playlist_id,item_id; optional title,artist. Synonyms from the seed:
 *   list_Id, track_Id, track_title, track_artist (matched case-insensitively,
 *   surrounding spaces ignored). Unknown columns are ignored. A UTF-8 BOM
 *   is skipped, CRLF and LF both end a record, empty lines are ignored,
 *   fields may be quoted with RFC 4180 "" escapes in both CSV and TSV
 *   (quoted fields may contain the separator and newlines). Unquoted
 *   fields keep inner spaces; leading/trailing spaces of ids are trimmed.
 *   A row with the wrong number of fields is an error.
 * - NDJSON: one playlist object per line: {"id":"p1","items":[...]} where an
 *   item is a string, an integer (turned into its decimal string) or an
 *   object {"id":..., "title":..., "artist":...}. Blank lines are ignored.
 * - JSON: one such object, or an array of them.
 *
 * Details fixed by the implementation (ingest/upload_parse.c, upload_json.c):
 * - CSV/TSV: lines holding only spaces/tabs count as empty. Spaces before
 *   an opening quote and after a closing quote are dropped. A CR just before
 *   LF belongs to the line ending. The playlist_id, item_id, title and
 *   artist fields must be valid UTF-8 without NUL bytes (other columns are
 *   not checked). title/artist are passed as found (non-NULL, possibly
 *   empty) whenever their column exists.
 * - JSON: unknown keys are ignored, duplicate keys are an error. A playlist
 *   "id" must be a non-empty string or an integer. An item object's "title"
 *   sets has_title; "title": null gives title == NULL, "title": "" gives a
 *   non-NULL title with title_len == 0: callers test title_len == 0 for
 *   "missing". Strings are UTF-8 checked by jansson; \u0000 is refused.
 * - Columns count bytes from 1 at the start of the line; a skipped BOM is
 *   not counted. JSON syntax errors carry jansson's position (the last
 *   character it read) converted to bytes.
 *
 * Threading: a parser is used by one thread at a time.
 */
#ifndef ITEMVEC_INGEST_UPLOAD_PARSE_H
#define ITEMVEC_INGEST_UPLOAD_PARSE_H

#include <stddef.h>

enum upload_format {
    UPLOAD_FORMAT_CSV,
    UPLOAD_FORMAT_TSV,
    UPLOAD_FORMAT_NDJSON,
    UPLOAD_FORMAT_JSON,
};

/* One membership row as found in the body. Strings are NOT NUL-terminated
 * and are borrowed: valid only during the callback. title/artist are NULL
 * when the row has no such column/field; has_title tells whether the format
 * of this row carries a title (a title column exists, or the JSON item is an
 * object with a "title" key), which is when the seed's missing-title rule
 * applies. line is the 1-based line where the row (or its JSON item) starts. */
struct upload_row {
    const char *playlist;
    size_t playlist_len;
    const char *item;
    size_t item_len;
    const char *title;
    size_t title_len;
    const char *artist;
    size_t artist_len;
    int has_title;
    unsigned long line;
};

/* Where and why parsing failed. line/column are 1-based (column counts
 * bytes); 0 when not applicable. */
struct upload_error {
    unsigned long line;
    unsigned long column;
    char message[256];
};

/* Row callback. Return 0 to go on; a negative errno aborts parsing and is
 * returned by upload_parser_feed/finish unchanged (the callback fills the
 * error itself if it wants a message; the parser fills line/column). */
typedef int (*upload_row_cb)(void *userdata, const struct upload_row *row,
                             struct upload_error *err);

struct upload_parser;

/* Creates a parser. max_record bounds one record's bytes (a CSV row, an
 * NDJSON line or a JSON array element, or the whole body when it is a single
 * JSON object), counted raw (quotes included) without the line ending;
 * longer → -E2BIG. Returns NULL on allocation failure or when cb is NULL.
 * The caller owns the parser. */
struct upload_parser *upload_parser_create(enum upload_format format, size_t max_record,
                                           upload_row_cb cb, void *userdata);

/* Feeds the next len bytes. Returns 0, -EINVAL for a syntax/schema error
 * (err filled with line, column, message), -E2BIG for a record over the
 * bound, -ENOMEM, or the callback's negative return. After an error the
 * parser must only be destroyed. */
int upload_parser_feed(struct upload_parser *p, const char *data, size_t len,
                       struct upload_error *err);

/* Signals end of body: flushes a last record without newline and checks
 * completeness (missing header, unterminated quote, unclosed JSON).
 * Same returns as upload_parser_feed. */
int upload_parser_finish(struct upload_parser *p, struct upload_error *err);

/* Bytes the parser holds now: the struct, its record buffer (at most
 * max_record + 2, however the body is chunked) and the JSON fast path's
 * fixed descriptor window. Independent of the number of fields or items in
 * a record. For memory budgets (api/route_upload.c). */
size_t upload_parser_memory(const struct upload_parser *p);

/* Number of data rows passed to the callback so far. */
unsigned long upload_parser_rows(const struct upload_parser *p);

void upload_parser_destroy(struct upload_parser *p);

/* Maps a Content-Type header value (parameters such as charset ignored,
 * case-insensitive) to a format. Returns 0 and sets *out, or -ENOTSUP. */
int upload_format_from_content_type(const char *content_type, enum upload_format *out);

#endif
