/*
 * Private to the upload parsers (ingest/upload_parse.c for the driver and
 * CSV/TSV, ingest/upload_json.c for NDJSON/JSON, ingest/upload_json_fast.c for
 * the JSON fast path). Not for use outside those files, except by the
 * parser tests and fuzz targets: the parser struct is opaque everywhere
 * else (upload_parse.h).
 *
 * Positions: every format tracks where the next input byte sits in the body
 * (absolute offset after a skipped BOM, 1-based line, offset of that line's
 * first byte), so that errors and rows carry body coordinates whatever the
 * chunking was.
 */
#ifndef ITEMVEC_INGEST_UPLOAD_INTERNAL_H
#define ITEMVEC_INGEST_UPLOAD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/upload_parse.h"

struct upload_parser {
    enum upload_format format;
    size_t max_record;
    upload_row_cb cb;
    void *userdata;
    unsigned long rows;
    int failed; /* sticky negative errno after the first error */

    /* Body position of the next byte to be parsed (BOM excluded). */
    uint64_t pos;
    unsigned long line;
    uint64_t line_start;

    /* UTF-8 BOM detection: bytes held back while they still match it. */
    unsigned char bom[3];
    size_t bom_len;
    int bom_done;

    /* The one buffered record (NDJSON line, JSON element; for CSV/TSV
     * the unquoted bytes of the fields that matter, see below). Never
     * grows beyond max_record + 2 bytes. */
    char *buf;
    size_t len;
    size_t cap;
    int in_record;
    uint64_t rec_start; /* absolute offset of the record's first byte */
    unsigned long rec_line;
    unsigned long rec_col;

    /* CSV/TSV state (upload_parse.c). */
    char sep;
    int cst;
    int header_done;
    int cur_quoted;
    int ended_cr;         /* the record's line ending was CRLF */
    size_t field_start;   /* offset in buf of the current field */
    size_t nfields;       /* fields completed in this record */
    /* Only the fields a row needs are kept (a fixed set, whatever the
     * number of columns: a record of 1 MB of commas must not cost 32 bytes
     * per comma): the four known columns and the position of the first
     * field past the header's count (for its error). The bytes of other
     * fields leave buf when the field ends. */
    struct upload__csv_field {
        size_t ofs, len;          /* in buf */
        unsigned long line, col;  /* body position of its first byte */
    } cf[5];
    signed char slot_of[16]; /* field k < 16 → its cf[] slot, -1: not kept */
    int first_blank;      /* field 0 is empty or only spaces */
    unsigned long cur_line, cur_col;     /* current field's start */
    unsigned long quote_line, quote_col; /* opening quote of current field */
    size_t ncols;
    long col_playlist, col_item, col_title, col_artist;

    /* JSON/NDJSON state (upload_json.c). */
    int jst;
    int j_single;      /* body is one top-level object, not an array */
    int j_in_string;
    int j_escape;
    size_t j_depth;

    /* JSON fast path (upload_json_fast.c): descriptors of the first
     * UPLOAD__JF_WINDOW items of the record being scanned (a fixed array:
     * a record of a million items must not cost 72 bytes per item); items
     * past the window are scanned again when emitted. */
    struct upload__jf_item *jf_items;
    /* Test-only: 1 sends every record to jansson (the differential fuzz
     * target compares both paths). Never set outside tests. */
    int j_fast_off;
};

/* Body column (1-based) of the byte at absolute offset abs on the current
 * line. */
static inline unsigned long upload__col_at(const struct upload_parser *p, uint64_t abs)
{
    return (unsigned long)(abs - p->line_start + 1);
}

/* Counts the line ending at absolute offset abs: the next line starts at
 * abs + 1. */
static inline void upload__newline_at(struct upload_parser *p, uint64_t abs)
{
    p->line++;
    p->line_start = abs + 1;
}

/* The JSON fast path's descriptor window (items per record kept from the
 * validating scan; see upload_json_fast.c). */
#define UPLOAD__JF_WINDOW 256

/* sizeof(struct upload__jf_item), which only upload_json_fast.c sees. */
extern const size_t upload__jf_item_size;

/* Records an error: fills err (if not NULL), marks the parser failed and
 * returns code. fmt is printf-style. */
int upload__fail(struct upload_parser *p, struct upload_error *err, int code,
                 unsigned long line, unsigned long column, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Appends n bytes to the record buffer. The callers have checked the record
 * bound already, so growth is bounded by max_record. 0 or -ENOMEM. */
int upload__buf_append(struct upload_parser *p, const char *data, size_t n);

/* Hands one row to the callback, counts it, and fills err's line/column
 * (row start) when the callback fails without setting them. */
int upload__emit(struct upload_parser *p, const struct upload_row *row,
                 unsigned long column, struct upload_error *err);

/* Returns the offset of the first byte of s[0..n) that is not part of valid
 * UTF-8 (overlongs, surrogates and NUL are invalid too), or n if all valid. */
size_t upload__utf8_check(const char *s, size_t n);

/* Format entry points of upload_json.c; same contracts as
 * upload_parser_feed/finish, data already stripped of a BOM. */
int upload__json_feed(struct upload_parser *p, const char *data, size_t len,
                      struct upload_error *err);
int upload__json_finish(struct upload_parser *p, struct upload_error *err);
void upload__json_deinit(struct upload_parser *p);

/* upload__json_fast's answer for a record outside the shape it handles. */
#define UPLOAD__JSON_FALLBACK 1

/* Fast path for one JSON playlist record text[0..len) whose first byte is
 * at (p->rec_line, p->rec_col): a record of the common shape (see
 * upload_json_fast.c) is validated whole, then its rows are emitted with
 * the same fields, lines and columns the jansson path gives. Returns 0,
 * the callback's negative errno (rows up to that one emitted), or
 * UPLOAD__JSON_FALLBACK with nothing emitted: the caller must then parse
 * the record with jansson. Rows borrow text. */
int upload__json_fast(struct upload_parser *p, const char *text, size_t len,
                      struct upload_error *err);

#endif
