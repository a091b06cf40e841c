/*
 * Upload body parsers, part 1: the format-independent driver (create, feed,
 * finish, BOM skipping, row emission, content-type mapping) and the CSV/TSV
 * push parser. NDJSON/JSON live in upload_json.c; both share the parser
 * struct through the private ingest/upload_internal.h.
 *
 * CSV/TSV design: a byte-level state machine over RFC 4180 (quotes may
 * appear in TSV too). Field contents are copied (unquoted) into the one
 * record buffer while scanning; a row is emitted when its line ends. The hot
 * path (unquoted fields) is a tight scan for the separator or LF followed by
 * one memcpy, which keeps TSV well above 200 MB/s on one core. Line and
 * column are derived from absolute body offsets, so they are right however
 * the body was chunked.
 *
 * Record bound: a record's raw bytes (quotes included, line ending excluded)
 * may not exceed max_record. While scanning we allow max_record + 1 bytes so
 * that the CR of a CRLF ending fits; the exact check is done when the record
 * ends.
 */
#include "ingest/upload_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    CSV_FIELD_START,    /* before the first byte of a field */
    CSV_LEAD_SPACE,     /* only spaces so far: a quote may still open it */
    CSV_UNQUOTED,       /* inside an unquoted field */
    CSV_QUOTED,         /* inside a quoted field */
    CSV_QUOTE,          /* saw a '"' inside a quoted field: escape or end */
    CSV_AFTER_QUOTE,    /* spaces after the closing quote */
    CSV_AFTER_QUOTE_CR, /* CR after the closing quote: LF must follow */
};

/* The fields of a record the parser keeps (upload_internal.h, cf[]). */
enum {
    CF_PLAYLIST, /* the four known columns, in col_* order */
    CF_ITEM,
    CF_TITLE,
    CF_ARTIST,
    CF_EXTRA, /* the first field past the header's count: error position */
    CF_N,
};
_Static_assert(CF_N == sizeof(((struct upload_parser *)0)->cf) /
                           sizeof(((struct upload_parser *)0)->cf[0]),
               "cf[] holds one slot per CF_*");

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

int upload__fail(struct upload_parser *p, struct upload_error *err, int code,
                 unsigned long line, unsigned long column, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->line = line;
        err->column = column;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    p->failed = code;
    return code;
}

int upload__buf_append(struct upload_parser *p, const char *data, size_t n)
{
    size_t need = p->len + n;

    if (need > p->cap) {
        /* Double, but never far beyond what the record bound allows: a
         * hostile body must not make us reserve more than max_record. */
        size_t cap = p->cap ? p->cap * 2 : 256;
        size_t ceiling = p->max_record < SIZE_MAX - 2 ? p->max_record + 2 : SIZE_MAX;
        char *nb;

        if (cap > ceiling)
            cap = ceiling;
        if (cap < need)
            cap = need;
        nb = realloc(p->buf, cap);
        if (!nb)
            return -ENOMEM;
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, n);
    p->len = need;
    return 0;
}

int upload__emit(struct upload_parser *p, const struct upload_row *row,
                 unsigned long column, struct upload_error *err)
{
    int rc;

    err->line = 0;
    err->column = 0;
    err->message[0] = '\0';
    p->rows++;
    rc = p->cb(p->userdata, row, err);
    if (rc >= 0)
        return 0;
    /* The callback knows what is wrong, we know where. */
    if (err->line == 0) {
        err->line = row->line;
        err->column = column;
    }
    if (err->message[0] == '\0')
        snprintf(err->message, sizeof err->message, "row rejected");
    p->failed = rc;
    return rc;
}

size_t upload__utf8_check(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;

        /* ASCII fast path, 8 bytes at a time: no high bit, no NUL byte. */
        if (c >= 0x01 && c < 0x80) {
            while (i + 8 <= n) {
                uint64_t v;
                memcpy(&v, s + i, 8);
                uint64_t zero = (v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL;
                if ((v & 0x8080808080808080ULL) || zero)
                    break;
                i += 8;
            }
            if (i < n && s[i] >= 0x01 && s[i] < 0x80)
                i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* UTF-16 surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* beyond U+10FFFF */
        } else {
            return i; /* NUL, stray continuation, C0/C1, F5..FF */
        }
        if (n - i <= need)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += need + 1;
    }
    return n;
}

/* ---- CSV/TSV ---------------------------------------------------------- */

/* Raw bytes the current record may still take from abs on (see the top
 * comment for the +1). */
static size_t rec_room(const struct upload_parser *p, uint64_t abs)
{
    uint64_t used = abs - p->rec_start;
    uint64_t lim = p->max_record < SIZE_MAX ? (uint64_t)p->max_record + 1 : SIZE_MAX;

    return used >= lim ? 0 : (size_t)(lim - used);
}

static int too_big(struct upload_parser *p, struct upload_error *err)
{
    return upload__fail(p, err, -E2BIG, p->rec_line, p->rec_col,
                        "record longer than %zu bytes", p->max_record);
}

static const char *trim(const char *s, size_t *n)
{
    size_t len = *n;

    while (len && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
                   s[len - 1] == '\n'))
        len--;
    *n = len;
    return s;
}

static void csv_record_begin(struct upload_parser *p, uint64_t abs)
{
    p->in_record = 1;
    p->rec_start = abs;
    p->rec_line = p->line;
    p->rec_col = upload__col_at(p, abs);
    p->len = 0;
    p->nfields = 0;
    p->ended_cr = 0;
    p->first_blank = 0;
}

static void csv_field_begin(struct upload_parser *p, uint64_t abs)
{
    p->field_start = p->len;
    p->cur_line = p->line;
    p->cur_col = upload__col_at(p, abs);
}

/* Header names and their synonyms from the seed (list_Id, track_Id, ...). */
static int header_match(const char *name, size_t n, const char *a, const char *b)
{
    return (strlen(a) == n && strncasecmp(name, a, n) == 0) ||
           (strlen(b) == n && strncasecmp(name, b, n) == 0);
}

static long *csv_col(struct upload_parser *p, int c)
{
    long *cols[4] = {&p->col_playlist, &p->col_item, &p->col_title, &p->col_artist};
    return cols[c];
}

static const char *const csv_canon[4] = {"playlist_id", "item_id", "title", "artist"};

/* A header field (number k, bytes buf[field_start..len)) just ended: if it
 * names a known column, remember where that column is. */
static int csv_header_field(struct upload_parser *p, size_t k, struct upload_error *err)
{
    static const char *const synonym[4] = {"list_id", "track_id", "track_title", "track_artist"};
    size_t n = p->len - p->field_start;
    const char *name = n ? trim(p->buf + p->field_start, &n) : "";

    for (int c = 0; c < 4; c++) {
        if (!header_match(name, n, csv_canon[c], synonym[c]))
            continue;
        if (*csv_col(p, c) >= 0)
            return upload__fail(p, err, -EINVAL, p->cur_line, p->cur_col, "duplicate column %s",
                                csv_canon[c]);
        *csv_col(p, c) = (long)k;
    }
    return 0;
}

/* The cf[] slot of data field k >= 16 (slot_of[] has the others), or -1
 * when a row does not need it. */
static int csv_slot_of_far(const struct upload_parser *p, size_t k)
{
    const long cols[4] = {p->col_playlist, p->col_item, p->col_title, p->col_artist};

    for (int c = 0; c < 4; c++)
        if (cols[c] == (long)k)
            return CF_PLAYLIST + c;
    return -1;
}

/* The current field ended (a line-ending CR already dropped). Keeps it if
 * a row needs it, else drops its bytes: memory per record is its kept
 * bytes plus a fixed set of slots, however many fields it has. */
static int csv_field_end(struct upload_parser *p, struct upload_error *err)
{
    size_t k = p->nfields++;
    struct upload__csv_field *f;
    int slot, rc;

    if (__builtin_expect(k == 0, 0)) {
        size_t n = p->len - p->field_start;
        if (n)
            trim(p->buf + p->field_start, &n);
        p->first_blank = n == 0;
    }
    if (__builtin_expect(!p->header_done, 0)) {
        if ((rc = csv_header_field(p, k, err)) < 0)
            return rc;
        p->len = p->field_start;
        return 0;
    }
    slot = k < sizeof p->slot_of ? p->slot_of[k] : csv_slot_of_far(p, k);
    if (slot < 0) {
        if (k == p->ncols) {
            p->cf[CF_EXTRA].line = p->cur_line;
            p->cf[CF_EXTRA].col = p->cur_col;
        }
        p->len = p->field_start;
        return 0;
    }
    f = &p->cf[slot];
    f->ofs = p->field_start;
    f->len = p->len - p->field_start;
    f->line = p->cur_line;
    f->col = p->cur_col;
    return 0;
}

/* The header record ended: the required columns must be there. */
static int csv_header(struct upload_parser *p, struct upload_error *err)
{
    for (int c = 0; c < 2; c++)
        if (*csv_col(p, c) < 0)
            return upload__fail(p, err, -EINVAL, p->rec_line, p->rec_col,
                                "missing required column %s", csv_canon[c]);
    p->ncols = p->nfields;
    p->header_done = 1;
    for (size_t k = 0; k < sizeof p->slot_of; k++) {
        p->slot_of[k] = -1;
        for (int c = 0; c < 4; c++)
            if (*csv_col(p, c) == (long)k)
                p->slot_of[k] = (signed char)(CF_PLAYLIST + c);
    }
    return 0;
}

static int csv_check_utf8(struct upload_parser *p, struct upload_error *err, int slot,
                          const char *name)
{
    const struct upload__csv_field *f = &p->cf[slot];
    const char *s = p->buf + f->ofs;
    size_t n = f->len;
    size_t bad = upload__utf8_check(s, n);

    if (bad == n)
        return 0;
    return upload__fail(p, err, -EINVAL, f->line, f->col,
                        s[bad] == '\0' ? "NUL byte in column %s" : "invalid UTF-8 in column %s",
                        name);
}

/* Index of the first sep or LF in data[i..lim), or lim. Eight bytes at a
 * time (SWAR): the hot loop of the TSV/CSV parser. The zero-byte test can
 * flag a byte above a real match, never below, so the lowest flag is exact. */
static size_t scan_field(const char *data, size_t i, size_t lim, char sep)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const uint64_t vsep = ones * (unsigned char)sep, vnl = ones * (unsigned char)'\n';

    while (i + 8 <= lim) {
        uint64_t v, a, b, m;

        memcpy(&v, data + i, 8);
        a = v ^ vsep;
        b = v ^ vnl;
        m = ((a - ones) & ~a & highs) | ((b - ones) & ~b & highs);
        if (m) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + (size_t)(__builtin_ctzll(m) >> 3);
#else
            break;
#endif
        }
        i += 8;
    }
    while (i < lim && data[i] != sep && data[i] != '\n')
        i++;
    return i;
}

/* Whether buf is plain ASCII without NUL, the common case that lets a row
 * skip the per-field UTF-8 checks. */
static int all_ascii(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        if ((v & highs) || ((v - ones) & ~v & highs))
            return 0;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] - 1u >= 0x7Fu)
            return 0;
    return 1;
}

/* Ends the current record; eol is the body offset of the terminating LF (or
 * of the end of the body). Emits the header or a row. */
static int csv_record_end(struct upload_parser *p, uint64_t eol, struct upload_error *err)
{
    uint64_t raw = eol - p->rec_start - (p->ended_cr ? 1 : 0);
    struct upload_row row;
    int rc;

    p->in_record = 0;
    if (raw > p->max_record)
        return too_big(p, err);

    /* Empty (or blank) lines are not records. */
    if (p->nfields == 1 && !p->cur_quoted && p->first_blank)
        return 0;
    if (!p->header_done)
        return csv_header(p, err);

    if (p->nfields != p->ncols) {
        if (p->nfields < p->ncols)
            return upload__fail(p, err, -EINVAL, p->line, upload__col_at(p, eol - p->ended_cr),
                                "expected %zu fields, found %zu", p->ncols, p->nfields);
        return upload__fail(p, err, -EINVAL, p->cf[CF_EXTRA].line, p->cf[CF_EXTRA].col,
                            "expected %zu fields, found %zu", p->ncols, p->nfields);
    }

    if (all_ascii(p->buf, p->len))
        goto valid;
    if ((rc = csv_check_utf8(p, err, CF_PLAYLIST, "playlist_id")) < 0 ||
        (rc = csv_check_utf8(p, err, CF_ITEM, "item_id")) < 0)
        return rc;
    if (p->col_title >= 0 && (rc = csv_check_utf8(p, err, CF_TITLE, "title")) < 0)
        return rc;
    if (p->col_artist >= 0 && (rc = csv_check_utf8(p, err, CF_ARTIST, "artist")) < 0)
        return rc;
valid:
    memset(&row, 0, sizeof row);
    row.playlist_len = p->cf[CF_PLAYLIST].len;
    row.playlist = trim(p->buf + p->cf[CF_PLAYLIST].ofs, &row.playlist_len);
    row.item_len = p->cf[CF_ITEM].len;
    row.item = trim(p->buf + p->cf[CF_ITEM].ofs, &row.item_len);
    if (p->col_title >= 0) {
        row.title = p->buf + p->cf[CF_TITLE].ofs;
        row.title_len = p->cf[CF_TITLE].len;
        row.has_title = 1;
    }
    if (p->col_artist >= 0) {
        row.artist = p->buf + p->cf[CF_ARTIST].ofs;
        row.artist_len = p->cf[CF_ARTIST].len;
    }
    row.line = p->rec_line;
    return upload__emit(p, &row, p->rec_col, err);
}

static int csv_feed(struct upload_parser *p, const char *data, size_t n, struct upload_error *err)
{
    const uint64_t base = p->pos;
    const char sep = p->sep;
    size_t i = 0;
    int rc;

    while (i < n) {
        uint64_t abs = base + i;
        char c;

        /* Bounds the states that consume bytes one at a time (e.g. endless
         * spaces after a closing quote); the runs below bound themselves. */
        if (p->in_record && data[i] != '\n' && rec_room(p, abs) == 0)
            return too_big(p, err);

        switch (p->cst) {
        case CSV_FIELD_START:
            if (!p->in_record)
                csv_record_begin(p, abs);
            csv_field_begin(p, abs);
            if (data[i] == '"') {
                p->cur_quoted = 1;
                p->quote_line = p->line;
                p->quote_col = upload__col_at(p, abs);
                p->cst = CSV_QUOTED;
                i++;
                continue;
            }
            p->cur_quoted = 0;
            p->cst = CSV_UNQUOTED;
            if (data[i] == ' ') {
                p->cst = CSV_LEAD_SPACE;
                continue;
            }
            goto unquoted;
        case CSV_LEAD_SPACE:
            /* `a, "b c"` is common in hand-written files: spaces before an
             * opening quote are dropped; otherwise they are data. */
            if (data[i] == ' ') {
                if (upload__buf_append(p, " ", 1) < 0)
                    return upload__fail(p, err, -ENOMEM, p->line, 0, "out of memory");
                i++;
                continue;
            }
            if (data[i] == '"') {
                p->len = p->field_start;
                p->cur_quoted = 1;
                p->quote_line = p->line;
                p->quote_col = upload__col_at(p, abs);
                p->cst = CSV_QUOTED;
                i++;
                continue;
            }
            p->cst = CSV_UNQUOTED;
            /* fall through */
        case CSV_UNQUOTED:
        unquoted: {
            size_t room = rec_room(p, base + i);
            size_t lim = n - i > room ? i + room + 1 : n;
            size_t j = i;

            j = scan_field(data, j, lim, sep);
            if (j == lim && j - i > room)
                return too_big(p, err);
            if (j > i && upload__buf_append(p, data + i, j - i) < 0)
                return upload__fail(p, err, -ENOMEM, p->line, 0, "out of memory");
            i = j;
            if (j == lim)
                continue; /* field goes on in the next chunk */
            /* LF: a CR just before it belongs to the line ending. */
            if (data[j] == '\n' && p->len > p->field_start && p->buf[p->len - 1] == '\r') {
                p->len--;
                p->ended_cr = 1;
            }
            if ((rc = csv_field_end(p, err)) < 0)
                return rc;
            i++;
            p->cst = CSV_FIELD_START;
            if (data[j] == sep)
                continue;
            if ((rc = csv_record_end(p, base + j, err)) < 0)
                return rc;
            upload__newline_at(p, base + j);
            continue;
        }
        case CSV_QUOTED: {
            size_t room = rec_room(p, abs);
            size_t lim = n - i > room ? i + room + 1 : n;
            const char *q = memchr(data + i, '"', lim - i);
            size_t j = q ? (size_t)(q - data) : lim;
            const char *nl = data + i;

            if (!q && j - i > room)
                return too_big(p, err);
            /* Quoted newlines are content but still move the line count. */
            while ((nl = memchr(nl, '\n', (size_t)(data + j - nl))) != NULL) {
                upload__newline_at(p, base + (uint64_t)(nl - data));
                nl++;
            }
            if (j > i && upload__buf_append(p, data + i, j - i) < 0)
                return upload__fail(p, err, -ENOMEM, p->line, 0, "out of memory");
            i = j;
            if (q) {
                p->cst = CSV_QUOTE;
                i++;
            }
            continue;
        }
        case CSV_QUOTE:
        case CSV_AFTER_QUOTE:
            c = data[i];
            if (c == '"' && p->cst == CSV_QUOTE) {
                if (upload__buf_append(p, "\"", 1) < 0)
                    return upload__fail(p, err, -ENOMEM, p->line, 0, "out of memory");
                p->cst = CSV_QUOTED;
            } else if (c == sep) {
                if ((rc = csv_field_end(p, err)) < 0)
                    return rc;
                p->cst = CSV_FIELD_START;
            } else if (c == '\n') {
                if ((rc = csv_field_end(p, err)) < 0 ||
                    (rc = csv_record_end(p, abs, err)) < 0)
                    return rc;
                upload__newline_at(p, abs);
                p->cst = CSV_FIELD_START;
            } else if (c == '\r') {
                p->cst = CSV_AFTER_QUOTE_CR;
            } else if (c == ' ' || c == '\t') {
                /* Tolerated: "id" , "x" is common in hand-written files. */
                p->cst = CSV_AFTER_QUOTE;
            } else {
                return upload__fail(p, err, -EINVAL, p->line, upload__col_at(p, abs),
                                    "unexpected character after closing quote");
            }
            i++;
            continue;
        case CSV_AFTER_QUOTE_CR:
            if (data[i] != '\n')
                return upload__fail(p, err, -EINVAL, p->line, upload__col_at(p, abs - 1),
                                    "unexpected character after closing quote");
            p->ended_cr = 1;
            if ((rc = csv_field_end(p, err)) < 0 || (rc = csv_record_end(p, abs, err)) < 0)
                return rc;
            upload__newline_at(p, abs);
            p->cst = CSV_FIELD_START;
            i++;
            continue;
        }
    }
    p->pos = base + n;
    return 0;
}

static int csv_finish(struct upload_parser *p, struct upload_error *err)
{
    int rc;

    if (p->in_record) {
        switch (p->cst) {
        case CSV_QUOTED:
            return upload__fail(p, err, -EINVAL, p->quote_line, p->quote_col,
                                "unterminated quoted field");
        case CSV_FIELD_START:
            csv_field_begin(p, p->pos);
            p->cur_quoted = 0;
            break;
        case CSV_UNQUOTED:
            if (p->len > p->field_start && p->buf[p->len - 1] == '\r') {
                p->len--;
                p->ended_cr = 1;
            }
            break;
        case CSV_AFTER_QUOTE_CR:
            p->ended_cr = 1;
            break;
        default:
            break;
        }
        if ((rc = csv_field_end(p, err)) < 0 || (rc = csv_record_end(p, p->pos, err)) < 0)
            return rc;
    }
    if (!p->header_done)
        return upload__fail(p, err, -EINVAL, p->line, upload__col_at(p, p->pos),
                            "missing header line");
    return 0;
}

/* ---- driver ----------------------------------------------------------- */

struct upload_parser *upload_parser_create(enum upload_format format, size_t max_record,
                                           upload_row_cb cb, void *userdata)
{
    struct upload_parser *p;

    if (!cb || format < UPLOAD_FORMAT_CSV || format > UPLOAD_FORMAT_JSON)
        return NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->format = format;
    p->max_record = max_record;
    p->cb = cb;
    p->userdata = userdata;
    p->line = 1;
    p->sep = format == UPLOAD_FORMAT_TSV ? '\t' : ',';
    p->cst = CSV_FIELD_START;
    p->col_playlist = p->col_item = p->col_title = p->col_artist = -1;
    return p;
}

static int dispatch(struct upload_parser *p, const char *data, size_t len,
                    struct upload_error *err)
{
    if (len == 0)
        return 0;
    if (p->format == UPLOAD_FORMAT_CSV || p->format == UPLOAD_FORMAT_TSV)
        return csv_feed(p, data, len, err);
    return upload__json_feed(p, data, len, err);
}

/* Holds back bytes while they match the UTF-8 BOM, which may itself be
 * split across chunks; replays them as data when they turn out not to be
 * one. Returns how many bytes of data were consumed into the BOM state. */
static int bom_feed(struct upload_parser *p, const char **data, size_t *len,
                    struct upload_error *err)
{
    size_t k = 0;
    unsigned char held[3];
    size_t nheld;

    while (k < *len && p->bom_len < 3 && (unsigned char)(*data)[k] == utf8_bom[p->bom_len])
        p->bom[p->bom_len++] = (unsigned char)(*data)[k++];
    *data += k;
    *len -= k;
    if (p->bom_len == 3) {
        p->bom_done = 1;
        return 0;
    }
    if (*len == 0)
        return 0; /* still a possible BOM prefix */
    p->bom_done = 1;
    nheld = p->bom_len;
    memcpy(held, p->bom, nheld);
    return dispatch(p, (const char *)held, nheld, err);
}

int upload_parser_feed(struct upload_parser *p, const char *data, size_t len,
                       struct upload_error *err)
{
    struct upload_error scratch;
    int rc;

    if (!err)
        err = &scratch;
    if (p->failed)
        return upload__fail(p, err, p->failed, 0, 0, "parser already failed");
    if (!p->bom_done && len > 0 && (rc = bom_feed(p, &data, &len, err)) < 0)
        return rc;
    return dispatch(p, data, len, err);
}

int upload_parser_finish(struct upload_parser *p, struct upload_error *err)
{
    struct upload_error scratch;
    int rc;

    if (!err)
        err = &scratch;
    if (p->failed)
        return upload__fail(p, err, p->failed, 0, 0, "parser already failed");
    if (!p->bom_done) {
        unsigned char held[3];
        size_t nheld = p->bom_len;

        memcpy(held, p->bom, nheld);
        p->bom_done = 1;
        if ((rc = dispatch(p, (const char *)held, nheld, err)) < 0)
            return rc;
    }
    if (p->format == UPLOAD_FORMAT_CSV || p->format == UPLOAD_FORMAT_TSV)
        return csv_finish(p, err);
    return upload__json_finish(p, err);
}

size_t upload_parser_memory(const struct upload_parser *p)
{
    return sizeof *p + p->cap +
           (p->jf_items ? UPLOAD__JF_WINDOW * upload__jf_item_size : 0);
}

unsigned long upload_parser_rows(const struct upload_parser *p)
{
    return p->rows;
}

void upload_parser_destroy(struct upload_parser *p)
{
    if (!p)
        return;
    upload__json_deinit(p);
    free(p->buf);
    free(p);
}

int upload_format_from_content_type(const char *content_type, enum upload_format *out)
{
    static const struct {
        const char *name;
        enum upload_format format;
    } types[] = {
        {"text/csv", UPLOAD_FORMAT_CSV},
        {"text/tab-separated-values", UPLOAD_FORMAT_TSV},
        {"application/x-ndjson", UPLOAD_FORMAT_NDJSON},
        {"application/ndjson", UPLOAD_FORMAT_NDJSON},
        {"application/jsonl", UPLOAD_FORMAT_NDJSON},
        {"application/x-jsonlines", UPLOAD_FORMAT_NDJSON},
        {"application/json", UPLOAD_FORMAT_JSON},
    };
    const char *s = content_type;
    size_t n;

    if (!s)
        return -ENOTSUP;
    while (*s == ' ' || *s == '\t')
        s++;
    n = strcspn(s, "; \t");
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        if (strlen(types[k].name) == n && strncasecmp(s, types[k].name, n) == 0) {
            *out = types[k].format;
            return 0;
        }
    }
    return -ENOTSUP;
}
