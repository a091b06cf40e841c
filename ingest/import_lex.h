/*
 * Lexing shared by the import parsers (ingest/cooc_parse.c for
 * POST /v1/pmi/import, ingest/emb_parse.c for POST /v1/models/import):
 *
 * - a record splitter that turns body chunks into whole records (lines;
 *   for CSV/TSV a newline inside "..." does not end a record), zero-copy
 *   when a record lies inside one chunk, else through one buffer bounded by
 *   max_record; it skips a leading UTF-8 BOM and strips a CR before LF;
 * - strict decimal number parsing (no NaN/Infinity/hex, whole field);
 * - a small JSON scanner for flat NDJSON records (strings with escapes,
 *   numbers, skipping any other value).
 *
 * Bytes in, tokens out; no HTTP, no SQLite. Errors are 0 or a negative
 * errno with a struct upload_error (line, column, message) filled, as the
 * playlist parsers do (ingest/upload_parse.h), so api/ answers both alike.
 * Threading: one thread at a time per object.
 */
#ifndef ITEMVEC_INGEST_IMPORT_LEX_H
#define ITEMVEC_INGEST_IMPORT_LEX_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/upload_parse.h"

/* A whole record: rec[0..len) without its line ending (borrowed for the
 * call). line is the 1-based line where it starts. Return 0 to go on or a
 * negative errno (with err filled) to stop. */
typedef int (*lex_record_cb)(void *userdata, const char *rec, size_t len, unsigned long line,
                             struct upload_error *err);

struct lex_records {
    int quotes;        /* CSV/TSV: quoted newlines stay in the record */
    size_t max_record; /* raw bytes of one record, line ending excluded */
    char *buf;         /* the record being assembled across chunks */
    size_t len, cap;
    int in_quotes;          /* quote state at the end of buf */
    unsigned long line;     /* line of the next byte */
    unsigned long rec_line; /* line where buf's record started */
    unsigned char bom[3];
    size_t bom_len;
    int bom_done;
    int failed;
};

/* Initialises r (embedded). quotes: see above. */
void lex_records_init(struct lex_records *r, int quotes, size_t max_record);
void lex_records_deinit(struct lex_records *r);

/* Splits data into records and calls cb for each complete one. Returns 0,
 * -E2BIG (a record over max_record: err->line set), -ENOMEM, or cb's
 * error. After an error only deinit is allowed. */
int lex_records_feed(struct lex_records *r, const char *data, size_t len, lex_record_cb cb,
                     void *userdata, struct upload_error *err);

/* End of body: passes a last record without line ending; -EINVAL when a
 * quoted field is still open. */
int lex_records_finish(struct lex_records *r, lex_record_cb cb, void *userdata,
                       struct upload_error *err);

/* Parses the whole of s[0..len) as a decimal number:
 * [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?
 * Correctly rounded (exact fast path, strtod otherwise). Returns 0, or
 * -EINVAL (not such a number, e.g. "NaN", "inf", "0x1p3", "") or -ERANGE
 * (finite text whose value overflows a double). */
int lex_double(const char *s, size_t len, double *out);

/* The same grammar and errors, but up to 19 significant digits are
 * converted without strtod (two roundings: within 2 ulp of the correctly
 * rounded value). For values that are only compared within a tolerance
 * (an imported pmi), where strtod on 17-digit exports was a tenth of the
 * import's time. */
int lex_double_approx(const char *s, size_t len, double *out);

/* Parses s[0..len) as an unsigned decimal integer (digits only, an
 * optional leading '+') no larger than max. -EINVAL, -ERANGE. */
int lex_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Trims ASCII spaces and tabs from both ends of *s and *len. */
void lex_trim(const char **s, size_t *len);

/* A growable scratch buffer for decoded strings. */
struct lex_buf {
    char *p;
    size_t len, cap;
};
void lex_buf_deinit(struct lex_buf *b);

/* JSON scanning over one record s[0..n); *i is the position, moved past
 * what was read. Each returns 0 or -EINVAL with *why set to a short reason
 * (static text) and *i at the offending byte. */
void lexj_ws(const char *s, size_t n, size_t *i);
/* A string at s[*i] == '"'. *out and *out_len: the decoded bytes, pointing
 * into s when there was no escape, else into scratch (overwritten). The
 * result is valid UTF-8 without NUL (\u0000 is refused). */
int lexj_string(const char *s, size_t n, size_t *i, struct lex_buf *scratch, const char **out,
                size_t *out_len, const char **why);
/* A number token (JSON grammar); *tok and *tok_len its text; *is_int when it
 * has neither fraction nor exponent. */
int lexj_number(const char *s, size_t n, size_t *i, const char **tok, size_t *tok_len, int *is_int,
                const char **why);
/* Skips any value (nesting up to 64 levels). */
int lexj_skip(const char *s, size_t n, size_t *i, const char **why);

/* One field of a JSON object, for lexj_object: key (decoded, klen bytes,
 * at 1-based column kcol) with *i at its value, which the callback reads
 * or skips (lexj_skip). Returns 0, LEXJ_SYNTAX with *why set and *i at the
 * offending byte, or a negative errno with err filled (-EINVAL) or not
 * (-ENOMEM). */
#define LEXJ_SYNTAX 1
typedef int (*lexj_field_fn)(void *ud, const char *key, size_t klen, size_t kcol, const char *s,
                             size_t n, size_t *i, unsigned long line, struct upload_error *err,
                             const char **why);

/* Reads record s[0..n) as one JSON object and nothing after it, calling
 * field for each key in order. Returns 0, 1 for a blank record (nothing
 * called), or -EINVAL with err filled (what names the object expected,
 * for the message when the record is not an object), -ENOMEM. */
int lexj_object(const char *s, size_t n, unsigned long line, const char *what,
                lexj_field_fn field, void *ud, struct upload_error *err);

/* A scalar value that may be an id: a string (decoded into scratch when it
 * has escapes) or a number token. *kind: 's' string, 'i' integer, 'n'
 * another number, 0 when the value is neither (*i not moved; the caller
 * says what it wanted). Returns 0, LEXJ_SYNTAX with *why, or -ENOMEM. */
int lexj_scalar(const char *s, size_t n, size_t *i, struct lex_buf *scratch, const char **out,
                size_t *out_len, int *kind, const char **why);

/* Fills err with line, a 1-based column and a formatted message. */
void lex_error(struct upload_error *err, unsigned long line, size_t column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
