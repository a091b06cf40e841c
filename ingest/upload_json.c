/*
 * Upload body parsers, part 2: NDJSON and JSON (see upload_parse.h for the
 * accepted shapes). jansson does the parsing proper, one record at a time:
 * an NDJSON line, the single top-level object, or one element of the
 * top-level array. The array is split into elements by a small streaming
 * scanner here that only tracks strings, escapes and bracket depth; it never
 * holds more than one element, so a 100 MB array streams in bounded memory.
 *
 * jansson does not report where values sit, but rows carry the line of
 * their item and schema errors should point at the offending value. So
 * after jansson has validated a record, a tiny walker over the (now known
 * to be valid) text finds the offsets of the "id" and "items" values and of
 * each item; those offsets are turned into body line/column.
 *
 * Records of the common plain shape never reach jansson: upload_json_fast.c
 * parses them directly and falls back to json_record's jansson path for
 * anything else, so errors keep jansson's positions and messages.
 *
 * Title semantics (has_title): an item object with a "title" key sets
 * has_title = 1. "title": null gives title = NULL; "title": "" gives a
 * non-NULL title with title_len = 0. Both mean "missing" to the caller,
 * which should test title_len == 0. Plain string/integer items have
 * has_title = 0 and title = artist = NULL.
 */
#include "ingest/upload_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    J_TOP,          /* before the top-level value */
    J_BEFORE_FIRST, /* after '[': an element or ']' */
    J_BEFORE_ELEM,  /* after ',': an element */
    J_ELEM,         /* inside an element (or the single object) */
    J_AFTER_ELEM,   /* after an element: ',' or ']' */
    J_DONE,         /* after the top-level value: whitespace only */
    J_NDJSON,       /* NDJSON: line mode */
};

/* Turns record offsets into body line/column; offsets must be asked for in
 * increasing order (items come in order), so this is linear overall. */
struct jpos {
    const char *text;
    size_t off;             /* scanned up to here */
    unsigned long line;     /* body line at off */
    size_t line_off;        /* record offset of that line's start */
    int first_line;         /* still on the record's first line */
    unsigned long rec_line; /* body line/column of the record's first byte */
    unsigned long rec_col;
};

static void jpos_init(struct jpos *jp, const struct upload_parser *p, const char *text)
{
    jp->text = text;
    jp->off = 0;
    jp->line = p->rec_line;
    jp->line_off = 0;
    jp->first_line = 1;
    jp->rec_line = p->rec_line;
    jp->rec_col = p->rec_col;
}

static void jpos_at(struct jpos *jp, size_t off, unsigned long *line, unsigned long *col)
{
    if (off < jp->off) { /* out of order: rescan from the start */
        jp->off = 0;
        jp->line = jp->rec_line;
        jp->line_off = 0;
        jp->first_line = 1;
    }
    for (; jp->off < off; jp->off++) {
        if (jp->text[jp->off] == '\n') {
            jp->line++;
            jp->line_off = jp->off + 1;
            jp->first_line = 0;
        }
    }
    *line = jp->line;
    *col = jp->first_line ? jp->rec_col + (unsigned long)off
                          : (unsigned long)(off - jp->line_off + 1);
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- walker over validated JSON text ---------------------------------- */

static size_t jw_ws(const char *s, size_t n, size_t i)
{
    while (i < n && is_ws(s[i]))
        i++;
    return i;
}

static size_t jw_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

static size_t jw_value(const char *s, size_t n, size_t i)
{
    size_t depth = 0;

    if (i >= n)
        return n;
    if (s[i] == '"')
        return jw_string(s, n, i);
    if (s[i] != '{' && s[i] != '[') {
        while (i < n && !is_ws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']')
            i++;
        return i;
    }
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            i = jw_string(s, n, i);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return n;
}

/* Compares the JSON string literal s[a..b) (quotes included) to key. */
static int jw_key_is(const char *s, size_t a, size_t b, const char *key)
{
    size_t klen = strlen(key);
    int same = 0;

    if (b - a < 2)
        return 0;
    if (!memchr(s + a, '\\', b - a))
        return b - a - 2 == klen && memcmp(s + a + 1, key, klen) == 0;
    /* Escaped key (rare): let jansson decode it. */
    json_t *k = json_loadb(s + a, b - a, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (k && json_is_string(k))
        same = json_string_length(k) == klen && memcmp(json_string_value(k), key, klen) == 0;
    json_decref(k);
    return same;
}

/* Finds the offsets of the top-level "id" and "items" values of an object.
 * Offsets not found stay at 0 (the record start); *have_items tells
 * whether an "items" array was found. */
static void jw_playlist(const char *s, size_t n, size_t *id_off, size_t *items_off,
                        int *have_items)
{
    size_t i = jw_ws(s, n, 0);

    *id_off = *items_off = 0;
    *have_items = 0;
    if (i >= n || s[i] != '{')
        return;
    for (i++;;) {
        size_t ka, kb, voff;

        i = jw_ws(s, n, i);
        if (i >= n || s[i] != '"')
            break;
        ka = i;
        i = kb = jw_string(s, n, i);
        i = jw_ws(s, n, i);
        if (i >= n || s[i] != ':')
            break;
        voff = jw_ws(s, n, i + 1);
        i = jw_value(s, n, voff);
        if (jw_key_is(s, ka, kb, "id")) {
            *id_off = voff;
        } else if (jw_key_is(s, ka, kb, "items")) {
            *items_off = voff;
            *have_items = 1;
        }
        i = jw_ws(s, n, i);
        if (i >= n || s[i] != ',')
            break;
        i++;
    }
    if (*have_items && (*items_off >= n || s[*items_off] != '['))
        *have_items = 0;
}

/* Walks the elements of the (valid) "items" array in step with jansson's
 * array: the offset of each element in turn, 0 once none is left. An
 * incremental cursor, so no per-item array is held. */
struct jw_items {
    const char *s;
    size_t n;
    size_t next; /* offset of the next element; 0 = no more */
};

static void jw_items_init(struct jw_items *w, const char *s, size_t n, size_t items_off,
                          int have_items)
{
    w->s = s;
    w->n = n;
    w->next = 0;
    if (have_items) {
        size_t i = jw_ws(s, n, items_off + 1);
        if (i < n && s[i] != ']')
            w->next = i;
    }
}

static size_t jw_items_next(struct jw_items *w)
{
    size_t at = w->next, i;

    if (!at)
        return 0;
    i = jw_ws(w->s, w->n, jw_value(w->s, w->n, at));
    w->next = 0;
    if (i < w->n && w->s[i] == ',') {
        i = jw_ws(w->s, w->n, i + 1);
        if (i < w->n && w->s[i] != ']')
            w->next = i;
    }
    return at;
}

/* ---- one record ------------------------------------------------------- */

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a fractional number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

/* An id may be a string or an integer (turned into its decimal string,
 * in the caller-provided buffer). Returns 0, or -EINVAL if of another type. */
static int json_id(const json_t *v, char *num, size_t numsz, const char **s, size_t *n)
{
    if (json_is_string(v)) {
        *s = json_string_value(v);
        *n = json_string_length(v);
        return 0;
    }
    if (json_is_integer(v)) {
        int k = snprintf(num, numsz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *s = num;
        *n = (size_t)k;
        return 0;
    }
    return -EINVAL;
}

/* Maps a jansson error (line, character column) inside the record to a
 * byte offset: jansson counts columns in characters, the API in bytes. */
static size_t jansson_err_offset(const char *text, size_t len, const json_error_t *je)
{
    size_t i = 0;
    int line = 1, col = 0;

    while (i < len && line < je->line) {
        if (text[i++] == '\n')
            line++;
    }
    if (je->column <= 0)
        return i;
    for (; i < len && text[i] != '\n'; i++) {
        if (((unsigned char)text[i] & 0xC0) != 0x80 && ++col == je->column)
            return i;
    }
    return i;
}

static int json_syntax_error(struct upload_parser *p, const char *text, size_t len,
                             const json_error_t *je, struct upload_error *err)
{
    struct jpos jp;
    unsigned long line, col;

    jpos_init(&jp, p, text);
    jpos_at(&jp, jansson_err_offset(text, len, je), &line, &col);
    return upload__fail(p, err, -EINVAL, line, col, "invalid JSON: %s", je->text);
}

static int json_items(struct upload_parser *p, const json_t *items, const char *pl,
                      size_t pl_len, struct jw_items *walk, struct jpos *jp,
                      struct upload_error *err)
{
    size_t k;
    const json_t *it;
    char num[32];
    int rc;

    json_array_foreach(items, k, it) {
        struct upload_row row;
        unsigned long line, col;
        const json_t *v;

        jpos_at(jp, jw_items_next(walk), &line, &col);
        memset(&row, 0, sizeof row);
        row.playlist = pl;
        row.playlist_len = pl_len;
        row.line = line;
        if (json_is_object(it)) {
            v = json_object_get(it, "id");
            if (!v)
                return upload__fail(p, err, -EINVAL, line, col, "item is missing \"id\"");
            if (json_id(v, num, sizeof num, &row.item, &row.item_len) < 0)
                return upload__fail(p, err, -EINVAL, line, col,
                                    "item \"id\" must be a string or an integer, not %s",
                                    json_kind(v));
            if ((v = json_object_get(it, "title")) != NULL) {
                row.has_title = 1;
                if (json_is_string(v)) {
                    row.title = json_string_value(v);
                    row.title_len = json_string_length(v);
                } else if (!json_is_null(v)) {
                    return upload__fail(p, err, -EINVAL, line, col,
                                        "item \"title\" must be a string or null, not %s",
                                        json_kind(v));
                }
            }
            if ((v = json_object_get(it, "artist")) != NULL) {
                if (json_is_string(v)) {
                    row.artist = json_string_value(v);
                    row.artist_len = json_string_length(v);
                } else if (!json_is_null(v)) {
                    return upload__fail(p, err, -EINVAL, line, col,
                                        "item \"artist\" must be a string or null, not %s",
                                        json_kind(v));
                }
            }
        } else if (json_id(it, num, sizeof num, &row.item, &row.item_len) < 0) {
            return upload__fail(p, err, -EINVAL, line, col,
                                "item must be a string, an integer or an object, not %s",
                                json_kind(it));
        }
        if ((rc = upload__emit(p, &row, col, err)) < 0)
            return rc;
    }
    return 0;
}

/* Parses one playlist record text[0..len) whose first byte is at
 * (p->rec_line, p->rec_col), and emits its rows. */
static int json_record(struct upload_parser *p, const char *text, size_t len,
                       struct upload_error *err)
{
    json_error_t je;
    json_t *root;
    const json_t *id, *items;
    struct jpos jp;
    struct jw_items walk;
    size_t id_off, items_off;
    unsigned long line, col;
    const char *pl;
    size_t pl_len;
    char num[32];
    int have_items, rc;

    /* Most records have the plain shape upload_json_fast.c handles. */
    if (!p->j_fast_off) {
        rc = upload__json_fast(p, text, len, err);
        if (rc != UPLOAD__JSON_FALLBACK)
            return rc;
    }
    /* DECODE_ANY so that a non-object line gets our message, not jansson's;
     * duplicate keys are refused so "which id wins" never comes up. */
    root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return json_syntax_error(p, text, len, &je, err);

    jpos_init(&jp, p, text);
    if (!json_is_object(root)) {
        jpos_at(&jp, jw_ws(text, len, 0), &line, &col);
        rc = upload__fail(p, err, -EINVAL, line, col,
                          "a playlist must be a JSON object, not %s", json_kind(root));
        goto out;
    }
    jw_playlist(text, len, &id_off, &items_off, &have_items);
    id = json_object_get(root, "id");
    items = json_object_get(root, "items");
    if (!id) {
        rc = upload__fail(p, err, -EINVAL, p->rec_line, p->rec_col,
                          "playlist is missing \"id\"");
        goto out;
    }
    jpos_at(&jp, id_off, &line, &col);
    if (json_id(id, num, sizeof num, &pl, &pl_len) < 0) {
        rc = upload__fail(p, err, -EINVAL, line, col,
                          "playlist \"id\" must be a string or an integer, not %s",
                          json_kind(id));
        goto out;
    }
    if (pl_len == 0) {
        rc = upload__fail(p, err, -EINVAL, line, col, "playlist \"id\" must not be empty");
        goto out;
    }
    if (!items) {
        rc = upload__fail(p, err, -EINVAL, p->rec_line, p->rec_col,
                          "playlist is missing \"items\"");
        goto out;
    }
    if (!json_is_array(items)) {
        jpos_init(&jp, p, text); /* items may come before id */
        jpos_at(&jp, items_off, &line, &col);
        rc = upload__fail(p, err, -EINVAL, line, col,
                          "playlist \"items\" must be an array, not %s", json_kind(items));
        goto out;
    }
    jpos_init(&jp, p, text);
    jw_items_init(&walk, text, len, items_off, have_items);
    rc = json_items(p, items, pl, pl_len, &walk, &jp, err);
out:
    json_decref(root);
    return rc;
}

/* ---- streaming -------------------------------------------------------- */

static void record_begin(struct upload_parser *p, uint64_t abs)
{
    p->in_record = 1;
    p->rec_start = abs;
    p->rec_line = p->line;
    p->rec_col = upload__col_at(p, abs);
    p->len = 0;
}

static int too_big(struct upload_parser *p, struct upload_error *err)
{
    return upload__fail(p, err, -E2BIG, p->rec_line, p->rec_col,
                        "record longer than %zu bytes", p->max_record);
}

static int is_blank(const char *s, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!is_ws(s[k]))
            return 0;
    return 1;
}

/* NDJSON: split on LF (a CR before it is dropped), one record per line. */
static int ndjson_feed(struct upload_parser *p, const char *data, size_t n,
                       struct upload_error *err)
{
    const uint64_t base = p->pos;
    size_t i = 0;
    int rc;

    while (i < n) {
        uint64_t abs = base + i;
        uint64_t used, lim64;
        size_t room, lim, j, rlen;
        const char *q, *rec;

        if (!p->in_record)
            record_begin(p, abs);
        /* max_record + 1 so that the CR of a CRLF ending fits. */
        used = abs - p->rec_start;
        lim64 = p->max_record < SIZE_MAX ? (uint64_t)p->max_record + 1 : SIZE_MAX;
        room = used >= lim64 ? 0 : (size_t)(lim64 - used);
        lim = n - i > room ? i + room + 1 : n;
        q = memchr(data + i, '\n', lim - i);
        if (!q) {
            if (lim - i > room)
                return too_big(p, err);
            if (upload__buf_append(p, data + i, lim - i) < 0)
                return upload__fail(p, err, -ENOMEM, p->line, 0, "out of memory");
            i = lim;
            continue;
        }
        j = (size_t)(q - data);
        if (p->len == 0) { /* whole line in this chunk: no copy */
            rec = data + i;
            rlen = j - i;
        } else {
            if (upload__buf_append(p, data + i, j - i) < 0)
                return upload__fail(p, err, -ENOMEM, p->line, 0, "out of memory");
            rec = p->buf;
            rlen = p->len;
        }
        if (rlen && rec[rlen - 1] == '\r')
            rlen--;
        if (rlen > p->max_record)
            return too_big(p, err);
        if (!is_blank(rec, rlen) && (rc = json_record(p, rec, rlen, err)) < 0)
            return rc;
        p->in_record = 0;
        p->len = 0;
        upload__newline_at(p, base + j);
        i = j + 1;
    }
    p->pos = base + n;
    return 0;
}

static int unexpected(struct upload_parser *p, uint64_t abs, const char *what,
                      struct upload_error *err)
{
    return upload__fail(p, err, -EINVAL, p->line, upload__col_at(p, abs), "%s", what);
}

/* Scans an element (or the single object) from data[i]; on its closing
 * bracket parses it. Returns the index after what was consumed, or a
 * negative errno (as a long). */
static long elem_scan(struct upload_parser *p, const char *data, size_t n, size_t i,
                      struct upload_error *err)
{
    const uint64_t base = p->pos;
    uint64_t used = base + i - p->rec_start;
    size_t room = used >= p->max_record ? 0 : (size_t)(p->max_record - used);
    size_t lim = n - i > room ? i + room : n;
    size_t start = i, j;
    int done = 0, rc;

    for (j = i; j < lim; j++) {
        char c = data[j];

        if (p->j_in_string) {
            if (p->j_escape)
                p->j_escape = 0;
            else if (c == '\\')
                p->j_escape = 1;
            else if (c == '"')
                p->j_in_string = 0;
            else if (c == '\n')
                upload__newline_at(p, base + j); /* invalid; jansson will say so */
            continue;
        }
        if (c == '"') {
            p->j_in_string = 1;
        } else if (c == '{' || c == '[') {
            p->j_depth++;
        } else if (c == '}' || c == ']') {
            if (--p->j_depth == 0) {
                done = 1;
                j++;
                break;
            }
        } else if (c == '\n') {
            upload__newline_at(p, base + j);
        }
    }
    if (!done) {
        if (lim < n)
            return too_big(p, err);
        if (upload__buf_append(p, data + start, j - start) < 0)
            return upload__fail(p, err, -ENOMEM, p->line, 0, "out of memory");
        return (long)j;
    }
    if (p->len == 0) {
        rc = json_record(p, data + start, j - start, err);
    } else {
        if (upload__buf_append(p, data + start, j - start) < 0)
            return upload__fail(p, err, -ENOMEM, p->line, 0, "out of memory");
        rc = json_record(p, p->buf, p->len, err);
    }
    if (rc < 0)
        return rc;
    p->in_record = 0;
    p->len = 0;
    p->jst = p->j_single ? J_DONE : J_AFTER_ELEM;
    return (long)j;
}

static int json_feed(struct upload_parser *p, const char *data, size_t n,
                     struct upload_error *err)
{
    const uint64_t base = p->pos;
    size_t i = 0;

    while (i < n) {
        uint64_t abs = base + i;
        char c = data[i];
        long r;

        if (p->jst == J_ELEM) {
            if ((r = elem_scan(p, data, n, i, err)) < 0)
                return (int)r;
            i = (size_t)r;
            continue;
        }
        if (is_ws(c)) {
            if (c == '\n')
                upload__newline_at(p, abs);
            i++;
            continue;
        }
        switch (p->jst) {
        case J_TOP:
            if (c == '{') {
                p->j_single = 1;
            } else if (c == '[') {
                p->jst = J_BEFORE_FIRST;
                i++;
                continue;
            } else {
                return unexpected(p, abs, "expected a JSON object or array", err);
            }
            break;
        case J_BEFORE_FIRST:
            if (c == ']') {
                p->jst = J_DONE;
                i++;
                continue;
            }
            /* fall through */
        case J_BEFORE_ELEM:
            if (c != '{')
                return unexpected(p, abs, "array element must be a playlist object", err);
            break;
        case J_AFTER_ELEM:
            if (c == ',')
                p->jst = J_BEFORE_ELEM;
            else if (c == ']')
                p->jst = J_DONE;
            else
                return unexpected(p, abs, "expected ',' or ']' after array element", err);
            i++;
            continue;
        default: /* J_DONE */
            return unexpected(p, abs, "unexpected data after the JSON value", err);
        }
        /* c == '{': an element (or the single object) starts here. */
        record_begin(p, abs);
        p->j_depth = 0;
        p->j_in_string = 0;
        p->j_escape = 0;
        p->jst = J_ELEM;
    }
    p->pos = base + n;
    return 0;
}

int upload__json_feed(struct upload_parser *p, const char *data, size_t len,
                      struct upload_error *err)
{
    if (p->format == UPLOAD_FORMAT_NDJSON)
        return ndjson_feed(p, data, len, err);
    return json_feed(p, data, len, err);
}

int upload__json_finish(struct upload_parser *p, struct upload_error *err)
{
    json_error_t je;
    json_t *v;
    size_t rlen = p->len;

    if (p->format == UPLOAD_FORMAT_NDJSON) {
        if (!p->in_record)
            return 0;
        if (rlen && p->buf[rlen - 1] == '\r')
            rlen--;
        p->in_record = 0;
        if (rlen > p->max_record)
            return too_big(p, err);
        return is_blank(p->buf, rlen) ? 0 : json_record(p, p->buf, rlen, err);
    }
    switch (p->jst) {
    case J_DONE:
        return 0;
    case J_TOP:
        return upload__fail(p, err, -EINVAL, p->line, upload__col_at(p, p->pos),
                            "empty body: expected a JSON object or array");
    case J_ELEM:
        /* Let jansson say what is missing and where. */
        v = json_loadb(p->buf ? p->buf : "", p->len, JSON_DECODE_ANY, &je);
        if (!v)
            return json_syntax_error(p, p->buf ? p->buf : "", p->len, &je, err);
        json_decref(v);
        return upload__fail(p, err, -EINVAL, p->rec_line, p->rec_col,
                            "unexpected end of body inside a JSON value");
    default:
        return upload__fail(p, err, -EINVAL, p->line, upload__col_at(p, p->pos),
                            "unexpected end of body: unclosed JSON array");
    }
}

void upload__json_deinit(struct upload_parser *p)
{
    free(p->jf_items);
    p->jf_items = NULL;
}
