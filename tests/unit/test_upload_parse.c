/*
 * Unit tests for the upload push parsers (ingest/upload_parse.h): CSV, TSV,
 * NDJSON, JSON. Rows are serialized to one text line each
 * ("line:playlist|item|title|artist|has_title", NULL shown as ~) so that
 * expectations are readable and results from different chunkings can be
 * compared as strings. Every case is run whole, byte by byte, at every
 * single split point and in random chunk sizes, and must give the same rows
 * and the same error (code, line, column, message) each time. NDJSON/JSON
 * cases are also run with the JSON fast path (ingest/upload_json_fast.c)
 * switched off, through the test-only flag of upload_internal.h: jansson
 * alone is the reference the fast path must match exactly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/upload_internal.h"
#include "ingest/upload_parse.h"

struct collect {
    char *out;
    size_t len, cap;
    unsigned long fail_at; /* row number (1-based) whose callback fails */
};

static void out_add(struct collect *c, const char *s, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        c->cap = (c->len + n + 1) * 2;
        c->out = realloc(c->out, c->cap);
        assert_non_null(c->out);
    }
    memcpy(c->out + c->len, s, n);
    c->len += n;
    c->out[c->len] = '\0';
}

static void out_str(struct collect *c, const char *s, size_t n)
{
    if (!s)
        out_add(c, "~", 1);
    else
        out_add(c, s, n);
}

static int collect_cb(void *ud, const struct upload_row *r, struct upload_error *err)
{
    struct collect *c = ud;
    char head[64];
    int k;

    assert_non_null(r->playlist);
    assert_non_null(r->item);
    k = snprintf(head, sizeof head, "%lu:", r->line);
    out_add(c, head, (size_t)k);
    out_str(c, r->playlist, r->playlist_len);
    out_add(c, "|", 1);
    out_str(c, r->item, r->item_len);
    out_add(c, "|", 1);
    out_str(c, r->title, r->title_len);
    out_add(c, "|", 1);
    out_str(c, r->artist, r->artist_len);
    k = snprintf(head, sizeof head, "|%d\n", r->has_title);
    out_add(c, head, (size_t)k);
    if (c->fail_at) {
        /* count rows by newlines */
        unsigned long n = 0;
        for (size_t i = 0; i < c->len; i++)
            n += c->out[i] == '\n';
        if (n == c->fail_at) {
            snprintf(err->message, sizeof err->message, "rejected by test");
            return -ECANCELED;
        }
    }
    return 0;
}

/* 1: parsers made by run() send every JSON record to jansson. */
static int g_fast_off;

struct result {
    int rc;
    char *rows;
    struct upload_error err;
};

/* Parses body with chunk sizes chosen by next_chunk (NULL = whole body). */
static struct result run(enum upload_format fmt, const char *body, size_t len, size_t max_record,
                         size_t (*next_chunk)(void *, size_t), void *state,
                         unsigned long fail_at)
{
    struct collect c = {.fail_at = fail_at};
    struct result res;
    struct upload_parser *p = upload_parser_create(fmt, max_record, collect_cb, &c);
    size_t off = 0;

    assert_non_null(p);
    p->j_fast_off = g_fast_off;
    memset(&res, 0, sizeof res);
    out_add(&c, "", 0);
    while (off < len) {
        size_t n = next_chunk ? next_chunk(state, len - off) : len - off;
        if (n == 0)
            n = 1;
        if (n > len - off)
            n = len - off;
        res.rc = upload_parser_feed(p, body + off, n, &res.err);
        off += n;
        if (res.rc < 0)
            break;
        /* An empty chunk must change nothing. */
        assert_int_equal(upload_parser_feed(p, body + off, 0, &res.err), 0);
    }
    if (res.rc == 0)
        res.rc = upload_parser_finish(p, &res.err);
    if (res.rc == 0)
        memset(&res.err, 0, sizeof res.err);
    res.rows = c.out;
    upload_parser_destroy(p);
    return res;
}

static size_t chunk_one(void *st, size_t left)
{
    (void)st;
    (void)left;
    return 1;
}

struct split {
    size_t at;
    int first;
};

static size_t chunk_split(void *st, size_t left)
{
    struct split *s = st;
    if (s->first) {
        s->first = 0;
        return s->at;
    }
    return left;
}

static size_t chunk_random(void *st, size_t left)
{
    unsigned *seed = st;
    *seed = *seed * 1103515245u + 12345u;
    size_t n = ((*seed >> 16) % 7 == 0) ? ((*seed >> 8) % 4096) : ((*seed >> 16) % 9);
    return n ? n : 1;
    (void)left;
}

static void same_result(const struct result *a, const struct result *b, const char *how)
{
    if (a->rc != b->rc || strcmp(a->rows, b->rows) != 0 || a->err.line != b->err.line ||
        a->err.column != b->err.column || strcmp(a->err.message, b->err.message) != 0) {
        print_error("%s differs: rc %d vs %d, err %lu:%lu '%s' vs %lu:%lu '%s'\nrows:\n%s---\n%s",
                    how, a->rc, b->rc, a->err.line, a->err.column, a->err.message, b->err.line,
                    b->err.column, b->err.message, a->rows, b->rows);
        fail();
    }
}

/* Runs body whole and in every chunking; checks rc, rows, error position and
 * (if msg) that the message contains msg. */
static void check_ex(enum upload_format fmt, const char *body, size_t len, size_t max_record,
                     int rc, const char *rows, unsigned long line, unsigned long col,
                     const char *msg)
{
    struct result whole = run(fmt, body, len, max_record, NULL, NULL, 0);

    if (whole.rc != rc || strcmp(whole.rows, rows) != 0) {
        print_error("body: [%s]\nrc %d (want %d) err %lu:%lu '%s'\nrows:\n%s---want:\n%s", body,
                    whole.rc, rc, whole.err.line, whole.err.column, whole.err.message,
                    whole.rows, rows);
        fail();
    }
    if (rc != 0) {
        if (whole.err.line != line || whole.err.column != col ||
            (msg && !strstr(whole.err.message, msg))) {
            print_error("body: [%s]\nerror at %lu:%lu '%s', want %lu:%lu '%s'\n", body,
                        whole.err.line, whole.err.column, whole.err.message, line, col,
                        msg ? msg : "");
            fail();
        }
    }
    struct result r;
    if (fmt == UPLOAD_FORMAT_NDJSON || fmt == UPLOAD_FORMAT_JSON) {
        g_fast_off = 1;
        r = run(fmt, body, len, max_record, NULL, NULL, 0);
        g_fast_off = 0;
        same_result(&whole, &r, "jansson only");
        free(r.rows);
    }
    r = run(fmt, body, len, max_record, chunk_one, NULL, 0);
    same_result(&whole, &r, "byte-by-byte");
    free(r.rows);
    for (size_t at = 1; at < len; at++) {
        struct split s = {at, 1};
        r = run(fmt, body, len, max_record, chunk_split, &s, 0);
        char how[64];
        snprintf(how, sizeof how, "split at %zu", at);
        same_result(&whole, &r, how);
        free(r.rows);
    }
    for (unsigned seed = 1; seed <= 20; seed++) {
        unsigned st = seed;
        r = run(fmt, body, len, max_record, chunk_random, &st, 0);
        same_result(&whole, &r, "random chunks");
        free(r.rows);
    }
    free(whole.rows);
}

#define MAXREC 4096
#define OK(fmt, body, rows) check_ex(fmt, body, sizeof(body) - 1, MAXREC, 0, rows, 0, 0, NULL)
#define ERR(fmt, body, rc, line, col, msg)                                                    \
    check_ex(fmt, body, sizeof(body) - 1, MAXREC, rc, "", line, col, msg)
#define ERR_ROWS(fmt, body, rows, rc, line, col, msg)                                         \
    check_ex(fmt, body, sizeof(body) - 1, MAXREC, rc, rows, line, col, msg)
#define CHECKN(fmt, body, max, rc, rows, line, col, msg) \
    check_ex(fmt, body, sizeof(body) - 1, max, rc, rows, line, col, msg)
#define CSV UPLOAD_FORMAT_CSV
#define TSV UPLOAD_FORMAT_TSV
#define NDJSON UPLOAD_FORMAT_NDJSON
#define JSON UPLOAD_FORMAT_JSON

/* ---- CSV / TSV -------------------------------------------------------- */

static void test_csv_basic(void **state)
{
    (void)state;
    OK(CSV, "playlist_id,item_id,title,artist\np1,a,Song A,Art\np1,b,Song B,\n",
       "2:p1|a|Song A|Art|1\n3:p1|b|Song B||1\n");
    /* No title column: has_title 0, title/artist NULL. */
    OK(CSV, "playlist_id,item_id\np1,a\np2,b", "2:p1|a|~|~|0\n3:p2|b|~|~|0\n");
    /* Header only, no rows. */
    OK(CSV, "playlist_id,item_id\n", "");
    /* Title kept as is (inner and surrounding spaces). */
    OK(CSV, "playlist_id,item_id,title\np, a , A  Title \n", "2:p|a| A  Title |~|1\n");
}

static void test_csv_quotes(void **state)
{
    (void)state;
    OK(CSV,
       "playlist_id,item_id,title,artist\n"
       "\"p 1\",\"a,b\",\"He said \"\"hi\"\"\",\"x\ny\"\n"
       "p2,\"\",\"\"\"\",\"\"\n",
       "2:p 1|a,b|He said \"hi\"|x\ny|1\n4:p2||\"||1\n");
    /* Quoted CRLF inside a field is content. */
    OK(CSV, "playlist_id,item_id,title\r\np,a,\"l1\r\nl2\"\r\np,b,t\r\n",
       "2:p|a|l1\r\nl2|~|1\n4:p|b|t|~|1\n");
    /* Spaces after a closing quote are tolerated; ids trimmed. */
    OK(CSV, "playlist_id,item_id\n\" p \" , \"a\"  \n", "2:p|a|~|~|0\n");
    /* A quote inside an unquoted field is data. */
    OK(CSV, "playlist_id,item_id,title\np,a,5\" vinyl\n", "2:p|a|5\" vinyl|~|1\n");
    /* Quoted header names. */
    OK(CSV, "\"playlist_id\",\"item_id\"\np,a\n", "2:p|a|~|~|0\n");
}

static void test_csv_line_endings(void **state)
{
    (void)state;
    OK(CSV, "playlist_id,item_id\r\np1,a\r\np2,b\r\n", "2:p1|a|~|~|0\n3:p2|b|~|~|0\n");
    OK(CSV, "playlist_id,item_id,title\r\np1,a,t\r", "2:p1|a|t|~|1\n");
    OK(CSV, "playlist_id,item_id,title\r\np1,a,\"t\"\r\np1,b,\"u\"\r",
       "2:p1|a|t|~|1\n3:p1|b|u|~|1\n");
    /* Empty and blank lines anywhere are ignored; lines still counted. */
    OK(CSV, "\n\r\nplaylist_id,item_id\n\n  \np,a\n\n\r\np,b", "6:p|a|~|~|0\n9:p|b|~|~|0\n");
    /* BOM, split or not (every split is tried). */
    OK(CSV, "\xEF\xBB\xBFplaylist_id,item_id\np,a\n", "2:p|a|~|~|0\n");
    /* A partial BOM is data: the header is then wrong. */
    ERR(CSV, "\xEF\xBBplaylist_id,item_id\np,a\n", -EINVAL, 1, 1,
        "missing required column playlist_id");
}

static void test_csv_trim_ids(void **state)
{
    (void)state;
    OK(CSV, "playlist_id , item_id ,title\n  p1  ,\ta\t, t \n", "2:p1|a| t |~|1\n");
    OK(TSV, "playlist_id\titem_id\n  p1  \t a  \r\n", "2:p1|a|~|~|0\n");
}

static void test_csv_header(void **state)
{
    (void)state;
    /* Seed synonyms, case-insensitive, with unknown columns ignored. */
    OK(TSV, "x\tLIST_ID\ttrack_Id\tTrack_Title\ttrack_artist\ty\n1\tp\ta\tT\tA\t2\n",
       "2:p|a|T|A|1\n");
    OK(CSV, "Playlist_ID,ITEM_ID,Title,ARTIST\np,a,t,r\n", "2:p|a|t|r|1\n");
    ERR(CSV, "playlist_id,title\np,t\n", -EINVAL, 1, 1, "missing required column item_id");
    ERR(CSV, "\n\nitem_id,title\np,t\n", -EINVAL, 3, 1, "missing required column playlist_id");
    ERR(CSV, "playlist_id,item_id,list_id\n", -EINVAL, 1, 21, "duplicate column playlist_id");
    ERR(CSV, "", -EINVAL, 1, 1, "missing header line");
    ERR(CSV, "\n\r\n\n", -EINVAL, 4, 1, "missing header line");
}

static void test_csv_field_count(void **state)
{
    (void)state;
    ERR_ROWS(CSV, "playlist_id,item_id,title\np,a,t\np,a\n", "2:p|a|t|~|1\n", -EINVAL, 3, 4,
             "expected 3 fields, found 2");
    ERR(CSV, "playlist_id,item_id\np,a,x\n", -EINVAL, 2, 5, "expected 2 fields, found 3");
    ERR(CSV, "playlist_id,item_id\np,a,\n", -EINVAL, 2, 5, "expected 2 fields, found 3");
    ERR(CSV, "playlist_id,item_id\np,a,", -EINVAL, 2, 5, "expected 2 fields, found 3");
    ERR(CSV, "playlist_id,item_id\r\np\r\n", -EINVAL, 2, 2, "expected 2 fields, found 1");
    ERR(TSV, "playlist_id\titem_id\np\ta\tb\tc\n", -EINVAL, 2, 5, "expected 2 fields, found 4");
    /* The column of the extra field on a later line of a multi-line row. */
    ERR(CSV, "playlist_id,item_id\n\"p\nq\",a,x\n", -EINVAL, 3, 6, "expected 2 fields, found 3");
}

static void test_csv_quote_errors(void **state)
{
    (void)state;
    ERR(CSV, "playlist_id,item_id\np,\"abc\n", -EINVAL, 2, 3, "unterminated quoted field");
    ERR(CSV, "playlist_id,item_id\np,\"abc\"\"\n", -EINVAL, 2, 3, "unterminated quoted field");
    ERR(CSV, "playlist_id,item_id\np,\"a\"x\n", -EINVAL, 2, 6,
        "unexpected character after closing quote");
    ERR(CSV, "playlist_id,item_id\np,\"a\"\rx\n", -EINVAL, 2, 6,
        "unexpected character after closing quote");
    ERR(CSV, "playlist_id,item_id\np,\"a\" \"\n", -EINVAL, 2, 7,
        "unexpected character after closing quote");
}

static void test_csv_tsv_quotes(void **state)
{
    (void)state;
    OK(TSV, "playlist_id\titem_id\ttitle\np\t\"a\tb\"\t\"t\"\"x\"\n", "2:p|a\tb|t\"x|~|1\n");
    /* Commas are plain data in TSV. */
    OK(TSV, "playlist_id\titem_id\ttitle\np,1\ta\tx, y\n", "2:p,1|a|x, y|~|1\n");
}

static void test_csv_utf8(void **state)
{
    (void)state;
    OK(CSV, "playlist_id,item_id,title\np,a,Beyonc\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xB5\n",
       "2:p|a|Beyonc\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xB5|~|1\n");
    ERR(CSV, "playlist_id,item_id,title\np,a,x\xFFy\n", -EINVAL, 2, 5,
        "invalid UTF-8 in column title");
    ERR(CSV, "playlist_id,item_id\np,\xC0\xAF\n", -EINVAL, 2, 3, "invalid UTF-8 in column item_id");
    ERR(CSV, "playlist_id,item_id\n\xED\xA0\x80,a\n", -EINVAL, 2, 1, "invalid UTF-8");
    /* Unused columns are not checked. */
    OK(CSV, "playlist_id,item_id,junk\np,a,\xFF\n", "2:p|a|~|~|0\n");
    /* NUL bytes are refused. */
    check_ex(CSV, "playlist_id,item_id\np,a\0b\n", 26, MAXREC, -EINVAL, "", 2, 3,
             "NUL byte in column item_id");
}

static void test_csv_record_bound(void **state)
{
    (void)state;
    /* The header is 19 bytes; "p," + 17 x is 19 bytes: both fit exactly,
     * with LF, CRLF or no line ending. */
    CHECKN(CSV, "playlist_id,item_id\np,xxxxxxxxxxxxxxxxx\n", 19, 0,
           "2:p|xxxxxxxxxxxxxxxxx|~|~|0\n", 0, 0, NULL);
    CHECKN(CSV, "playlist_id,item_id\r\np,xxxxxxxxxxxxxxxxx\r\n", 19, 0,
           "2:p|xxxxxxxxxxxxxxxxx|~|~|0\n", 0, 0, NULL);
    CHECKN(CSV, "playlist_id,item_id\np,xxxxxxxxxxxxxxxxx", 19, 0,
           "2:p|xxxxxxxxxxxxxxxxx|~|~|0\n", 0, 0, NULL);
    CHECKN(CSV, "playlist_id,item_id\np,xxxxxxxxxxxxxxxxx\r", 19, 0,
           "2:p|xxxxxxxxxxxxxxxxx|~|~|0\n", 0, 0, NULL);
    CHECKN(CSV, "playlist_id,item_id\np,xxxxxxxxxxxxxxxxxx\n", 19, -E2BIG, "", 2, 1,
           "record longer than 19 bytes");
    CHECKN(CSV, "playlist_id,item_id\np,xxxxxxxxxxxxxxxxxx\r\n", 19, -E2BIG, "", 2, 1, NULL);
    CHECKN(CSV, "playlist_id,item_id\np,xxxxxxxxxxxxxxxxxx", 19, -E2BIG, "", 2, 1, NULL);
    CHECKN(CSV, "playlist_id,item_id\np,\"xxxxxxxxxxxxxxx\"\n", 19, 0,
           "2:p|xxxxxxxxxxxxxxx|~|~|0\n", 0, 0, NULL);
    CHECKN(CSV, "playlist_id,item_id\np,\"xxxxxxxxxxxxxxxx\"\n", 19, -E2BIG, "", 2, 1, NULL);
    CHECKN(CSV, "playlist_id,item_id\np,\"xxxxxxxxxxxxxxxx\"", 19, -E2BIG, "", 2, 1, NULL);
    CHECKN(CSV, "playlist_id,item_id\np,\"x\"                    \n", 19, -E2BIG, "", 2, 1,
           NULL);
    CHECKN(CSV, "playlist_id,item_id\np,\"x\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\"\n", 19, -E2BIG, "", 2, 1,
           NULL);
    /* The header is a record too. */
    CHECKN(CSV, "playlist_id,item_id\np,a\n", 18, -E2BIG, "", 1, 1, NULL);

    /* A huge field in a big body, fed in big chunks. */
    size_t n = 3u << 20;
    char *big = malloc(n + 64);
    assert_non_null(big);
    int k = sprintf(big, "playlist_id,item_id\np,");
    memset(big + k, 'x', n);
    memcpy(big + k + n, "\n", 2);
    struct result r = run(CSV, big, (size_t)k + n + 1, 1 << 20, NULL, NULL, 0);
    assert_int_equal(r.rc, -E2BIG);
    assert_int_equal(r.err.line, 2);
    free(r.rows);
    r = run(CSV, big, (size_t)k + n + 1, 4 << 20, NULL, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(strlen(r.rows), n + 11);
    free(r.rows);
    free(big);
}

static void test_csv_callback_error(void **state)
{
    (void)state;
    const char *body = "playlist_id,item_id\np,a\np,b\np,c\n";
    struct result r = run(CSV, body, strlen(body), MAXREC, NULL, NULL, 2);
    assert_int_equal(r.rc, -ECANCELED);
    assert_int_equal(r.err.line, 3);
    assert_int_equal(r.err.column, 1);
    assert_string_equal(r.err.message, "rejected by test");
    assert_string_equal(r.rows, "2:p|a|~|~|0\n3:p|b|~|~|0\n");
    free(r.rows);
}

/* Generated bodies compared across all chunkings, plus a sample of row
 * contents checked against what was generated. */
static void test_csv_random_bodies(void **state)
{
    (void)state;
    unsigned seed = 42;
    static const char *pieces[] = {"a",  "bc", " ",  "\"", "\"\"", ",", "\t", "\n",
                                   "\r\n", "é", "x y", "\r", "12345", "\"q,\nq\""};

    for (int t = 0; t < 200; t++) {
        char body[512];
        size_t len = (size_t)sprintf(body, "playlist_id,item_id,title\n");
        int np = (int)(seed % 40);
        for (int i = 0; i < np; i++) {
            seed = seed * 1103515245u + 12345u;
            const char *pc = pieces[(seed >> 16) % (sizeof pieces / sizeof pieces[0])];
            memcpy(body + len, pc, strlen(pc));
            len += strlen(pc);
        }
        body[len] = '\0';
        struct result whole = run(t & 1 ? TSV : CSV, body, len, 64, NULL, NULL, 0);
        struct result one = run(t & 1 ? TSV : CSV, body, len, 64, chunk_one, NULL, 0);
        same_result(&whole, &one, "random body byte-by-byte");
        for (size_t at = 1; at < len; at++) {
            struct split s = {at, 1};
            struct result r = run(t & 1 ? TSV : CSV, body, len, 64, chunk_split, &s, 0);
            same_result(&whole, &r, "random body split");
            free(r.rows);
        }
        free(whole.rows);
        free(one.rows);
    }
}

/* ---- NDJSON / JSON ---------------------------------------------------- */

static void test_ndjson_items(void **state)
{
    (void)state;
    OK(NDJSON,
       "{\"id\":\"p1\",\"items\":[\"a\",2,0,-5,{\"id\":\"c\",\"title\":\"T\",\"artist\":\"A\"},"
       "{\"id\":\"d\"},{\"id\":7,\"title\":null},{\"id\":\"e\",\"title\":\"\",\"artist\":null}]}\n"
       "\n"
       "{\"id\":42,\"items\":[]}\r\n"
       "  {\"items\":[\"z\"], \"id\":\"p3\", \"extra\":{\"x\":[1,2]}}  ",
       "1:p1|a|~|~|0\n1:p1|2|~|~|0\n1:p1|0|~|~|0\n1:p1|-5|~|~|0\n1:p1|c|T|A|1\n"
       "1:p1|d|~|~|0\n1:p1|7|~|~|1\n1:p1|e||~|1\n4:p3|z|~|~|0\n");
    OK(NDJSON, "", "");
    OK(NDJSON, "\n\r\n  \n", "");
    OK(NDJSON, "\xEF\xBB\xBF{\"id\":\"p\",\"items\":[\"\xC3\xA9\\u00e9\\n\"]}",
       "1:p|\xC3\xA9\xC3\xA9\n|~|~|0\n");
    OK(NDJSON, "{\"id\":-9223372036854775808,\"items\":[9223372036854775807]}\n",
       "1:-9223372036854775808|9223372036854775807|~|~|0\n");
}

static void test_ndjson_errors(void **state)
{
    (void)state;
    ERR_ROWS(NDJSON, "{\"id\":\"p\",\"items\":[\"a\"]}\n{\"id\":\"p\",\"items\":[\"a\",]}\n",
             "1:p|a|~|~|0\n", -EINVAL, 2, 24, "invalid JSON");
    ERR(NDJSON, "{\"id\":1.5,\"items\":[]}", -EINVAL, 1, 7,
        "playlist \"id\" must be a string or an integer, not a fractional number");
    ERR(NDJSON, "{\"id\":true,\"items\":[]}", -EINVAL, 1, 7, "not a boolean");
    ERR(NDJSON, "{\"id\":null,\"items\":[]}", -EINVAL, 1, 7, "not null");
    ERR(NDJSON, "\n {\"id\":{},\"items\":[]}", -EINVAL, 2, 8, "not an object");
    ERR(NDJSON, "{\"id\":\"\",\"items\":[]}", -EINVAL, 1, 7, "playlist \"id\" must not be empty");
    ERR(NDJSON, "{\"items\":[]}", -EINVAL, 1, 1, "playlist is missing \"id\"");
    ERR(NDJSON, "{\"id\":\"p\"}", -EINVAL, 1, 1, "playlist is missing \"items\"");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":\"a\"}", -EINVAL, 1, 19,
        "playlist \"items\" must be an array, not a string");
    ERR(NDJSON, "[{\"id\":\"p\",\"items\":[]}]", -EINVAL, 1, 1,
        "a playlist must be a JSON object, not an array");
    ERR(NDJSON, "  42", -EINVAL, 1, 3, "a playlist must be a JSON object");
    ERR_ROWS(NDJSON, "{\"id\":\"p\",\"items\":[\"a\", true]}", "1:p|a|~|~|0\n", -EINVAL, 1, 25,
             "item must be a string, an integer or an object, not a boolean");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[{\"title\":\"t\"}]}", -EINVAL, 1, 20,
        "item is missing \"id\"");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[{\"id\":[1]}]}", -EINVAL, 1, 20,
        "item \"id\" must be a string or an integer, not an array");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[{\"id\":1,\"title\":5}]}", -EINVAL, 1, 20,
        "item \"title\" must be a string or null, not an integer");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[{\"id\":1,\"artist\":false}]}", -EINVAL, 1, 20,
        "item \"artist\" must be a string or null");
    /* Invalid UTF-8 inside a string. */
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[\"a\xFF\"]}", -EINVAL, 1, 21, "invalid JSON");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[\"\xED\xA0\x80\"]}", -EINVAL, 1, 20, "invalid JSON");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[\"\\u0000\"]}", -EINVAL, 1, 27, "invalid JSON");
    ERR(NDJSON, "{\"id\":\"p\",\"id\":\"q\",\"items\":[]}", -EINVAL, 1, 14, "duplicate");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[]} x", -EINVAL, 1, 23, "invalid JSON");
    /* A line split inside a string: jansson says where. */
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[\"a\nb\"]}", -EINVAL, 1, 21, "invalid JSON");
    CHECKN(NDJSON, "{\"id\":\"p\",\"items\":[\"aaaaaaaaaa\"]}\n", 32, -E2BIG, "", 1, 1,
             "record longer than 32 bytes");
    CHECKN(NDJSON, "{\"id\":\"p\",\"items\":[\"aaaaaaaaa\"]}\r\n", 32, 0,
             "1:p|aaaaaaaaa|~|~|0\n", 0, 0, NULL);
}

static void test_json_array(void **state)
{
    (void)state;
    /* Pretty-printed: every row carries its item's line. */
    OK(JSON,
       "[\n"
       "  {\"id\": \"p1\",\n"
       "   \"items\": [\n"
       "     \"a\",\n"
       "     {\"id\": 5, \"title\": \"T \\\"q\\\" ]}\"},\n"
       "     -3]},\n"
       "  {\"id\": 0, \"items\": [\"x\"]}\n"
       "]\n",
       "4:p1|a|~|~|0\n5:p1|5|T \"q\" ]}|~|1\n6:p1|-3|~|~|0\n7:0|x|~|~|0\n");
    OK(JSON, "[]", "");
    OK(JSON, " \r\n [ \n ] \n", "");
    OK(JSON, "\xEF\xBB\xBF[{\"id\":\"p\",\"items\":[]}]", "");
    /* Top-level single object. */
    OK(JSON, "{\"id\":\"p\",\"items\":[\"a\",{\"id\":\"b\",\"artist\":\"Z\"}]}\n",
       "1:p|a|~|~|0\n1:p|b|~|Z|0\n");
    /* Items before id, keys with escapes. */
    OK(JSON, "[{\"it\\u0065ms\":[\n\"a\"],\"\\u0069d\":\"p\"}]", "2:p|a|~|~|0\n");
}

static void test_json_errors(void **state)
{
    (void)state;
    ERR(JSON, "", -EINVAL, 1, 1, "empty body");
    ERR(JSON, "  \n ", -EINVAL, 2, 2, "empty body");
    ERR(JSON, "\"x\"", -EINVAL, 1, 1, "expected a JSON object or array");
    ERR(JSON, "[1]", -EINVAL, 1, 2, "array element must be a playlist object");
    ERR(JSON, "[\n  \"p\"]", -EINVAL, 2, 3, "array element must be a playlist object");
    ERR(JSON, "[[]]", -EINVAL, 1, 2, "array element must be a playlist object");
    ERR(JSON, "[{\"id\":\"p\",\"items\":[]},]", -EINVAL, 1, 24,
        "array element must be a playlist object");
    ERR(JSON, "[{\"id\":\"p\",\"items\":[]} {}]", -EINVAL, 1, 24, "expected ',' or ']'");
    ERR(JSON, "[{\"id\":\"p\",\"items\":[]}", -EINVAL, 1, 23, "unclosed JSON array");
    ERR(JSON, "[", -EINVAL, 1, 2, "unclosed JSON array");
    ERR(JSON, "[]]", -EINVAL, 1, 3, "unexpected data after the JSON value");
    ERR(JSON, "{\"id\":\"p\",\"items\":[]}{}", -EINVAL, 1, 22, "unexpected data");
    /* Nested syntax error: line and column in body coordinates. */
    ERR_ROWS(JSON,
        "[\n"
        "  {\"id\": \"p\", \"items\": [\"a\"]},\n"
        "  {\"id\": \"q\",\n"
        "   \"items\": [\"a\",\n"
        "     tru]}\n"
        "]",
        "2:p|a|~|~|0\n", -EINVAL, 5, 8, "invalid JSON: invalid token near 'tru'");
    ERR_ROWS(JSON,
             "[{\"id\": \"p\", \"items\": [\"a\"]},\n"
             " {\"id\": \"q\", \"items\": [\"a\",\n"
             "    {\"id\": 1.0}]}]",
             "1:p|a|~|~|0\n2:q|a|~|~|0\n", -EINVAL, 3, 5,
             "item \"id\" must be a string or an integer, not a fractional number");
    ERR(JSON, "[{\"id\":\"p\",\n\"items\":[\"a\"", -EINVAL, 2, 12, "invalid JSON");
    ERR(JSON, "[{\"id\":\"p\",\"items\":[\"a]}]", -EINVAL, 1, 25, "invalid JSON");
    ERR(JSON, "[{\"id\":\"p\",\"items\":{}}]", -EINVAL, 1, 20, "must be an array, not an object");
    ERR(JSON, "[{\"id\":\"p\",\"items\":[\"\xC3\"]}]", -EINVAL, 1, 21, "invalid JSON");
    CHECKN(JSON, "[{\"id\":\"p\",\"items\":[\"aaa\"]},{\"id\":\"p\",\"items\":[\"aaaa\"]}]", 26,
             -E2BIG, "1:p|aaa|~|~|0\n", 1, 29, "record longer than 26 bytes");
}

/* ---- JSON fast path ---------------------------------------------------- */

struct probe {
    const char *lo, *hi;
    int inside; /* every row's strings point into the body */
    unsigned long rows;
};

static int probe_cb(void *ud, const struct upload_row *r, struct upload_error *err)
{
    struct probe *pr = ud;
    (void)err;
    pr->rows++;
    if (r->playlist < pr->lo || r->playlist >= pr->hi || r->item < pr->lo || r->item >= pr->hi)
        pr->inside = 0;
    return 0;
}

/* 'F' when the body (fed whole, with a final newline so that no NDJSON
 * line waits in the parser's buffer) gave rows that all borrow the body's
 * own bytes, which only the fast path does (jansson hands out its copies
 * and prints integers into a buffer); 'J' otherwise. */
static char path_of_max(enum upload_format fmt, const char *body, size_t max_record);

static char path_of(enum upload_format fmt, const char *body)
{
    return path_of_max(fmt, body, MAXREC);
}

static char path_of_max(enum upload_format fmt, const char *body, size_t max_record)
{
    size_t len = strlen(body);
    char *copy = malloc(len + 2);
    struct probe pr = {0};
    struct upload_error err;
    struct upload_parser *p = upload_parser_create(fmt, max_record, probe_cb, &pr);

    assert_non_null(p);
    assert_non_null(copy);
    memcpy(copy, body, len);
    copy[len++] = '\n';
    pr.lo = copy;
    pr.hi = copy + len;
    pr.inside = 1;
    if (upload_parser_feed(p, copy, len, &err) == 0)
        (void)upload_parser_finish(p, &err);
    upload_parser_destroy(p);
    free(copy);
    return pr.rows && pr.inside ? 'F' : 'J';
}

#define FAST(fmt, body, rows)                                                                 \
    do {                                                                                      \
        OK(fmt, body, rows);                                                                  \
        assert_int_equal(path_of(fmt, body), 'F');                                            \
    } while (0)
#define SLOW(fmt, body, rows)                                                                 \
    do {                                                                                      \
        OK(fmt, body, rows);                                                                  \
        assert_int_equal(path_of(fmt, body), 'J');                                            \
    } while (0)

static void test_json_fast_shapes(void **state)
{
    (void)state;
    /* ids as strings and integers, negative, -0 (jansson prints "0") */
    FAST(NDJSON, "{\"id\":-7,\"items\":[\"a\",12,-3,-0,{\"id\":-0},{\"id\":99}]}\n"
                 "{\"id\":\"p\",\"items\":[-9223372036854775808,9223372036854775807]}\n",
         "1:-7|a|~|~|0\n1:-7|12|~|~|0\n1:-7|-3|~|~|0\n1:-7|0|~|~|0\n1:-7|0|~|~|0\n"
         "1:-7|99|~|~|0\n2:p|-9223372036854775808|~|~|0\n2:p|9223372036854775807|~|~|0\n");
    /* title null / "" / missing, artist null / "", any key order */
    FAST(NDJSON,
         "{\"id\":\"p\",\"items\":[{\"id\":\"a\",\"title\":null},{\"id\":\"b\",\"title\":\"\"},"
         "{\"id\":\"c\"},{\"id\":\"d\",\"artist\":null},{\"artist\":\"\",\"id\":\"e\"},"
         "{\"title\":\"T\",\"artist\":\"A\",\"id\":\"f\"},{\"id\":\"\"}]}",
         "1:p|a|~|~|1\n1:p|b||~|1\n1:p|c|~|~|0\n1:p|d|~|~|0\n1:p|e|~||0\n1:p|f|T|A|1\n"
         "1:p||~|~|0\n");
    /* id after items, whitespace everywhere, CRLF, blank lines */
    FAST(NDJSON,
         " \t{ \"items\" : [ \"a\" , { \"id\" : 1 , \"title\" : null } ] , \"id\" : \"p\" } \r\n"
         "\r\n"
         "{\"id\":\"q\",\"items\":[]}\r\n"
         "{\"items\":[\"b\"],\"id\":\"q\"}",
         "1:p|a|~|~|0\n1:p|1|~|~|1\n4:q|b|~|~|0\n");
    /* UTF-8 in ids, titles and artists */
    FAST(NDJSON,
         "{\"id\":\"\xC3\xA9\",\"items\":[{\"id\":\"a\",\"title\":\"Caf\xC3\xA9 \xE2\x82\xAC "
         "\xF0\x9F\x8E\xB5 long enough for the word loop\",\"artist\":\"\xE6\x97\xA5\xE6\x9C\xAC\"},"
         "\"\xF4\x8F\xBF\xBF\x7F\"]}",
         "1:\xC3\xA9|a|Caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xB5 long enough for the word loop|"
         "\xE6\x97\xA5\xE6\x9C\xAC|1\n1:\xC3\xA9|\xF4\x8F\xBF\xBF\x7F|~|~|0\n");
    /* JSON array, pretty-printed: rows carry their item's line */
    FAST(JSON,
         "[\n"
         "  {\"id\": \"p1\",\n"
         "   \"items\": [\n"
         "     \"a\",\n"
         "     {\"id\": 5,\r\n"
         "      \"title\": \"T\"},\n"
         "     -3]},\n"
         "  {\"items\": [\"x\"], \"id\": 0}\n"
         "]\n",
         "4:p1|a|~|~|0\n5:p1|5|T|~|1\n7:p1|-3|~|~|0\n8:0|x|~|~|0\n");
    FAST(JSON, "{\"id\":\"p\",\"items\":[\"a\",{\"id\":\"b\",\"artist\":\"Z\"}]}\n",
         "1:p|a|~|~|0\n1:p|b|~|Z|0\n");
}

/* A record longer than a feed chunk: check_ex splits it everywhere. */
static void test_json_fast_long(void **state)
{
    char body[3600], rows[8192];
    size_t n = 0, m = 0;
    (void)state;
    n += (size_t)sprintf(body + n, "{\"id\":\"long\",\"items\":[");
    for (int k = 0; k < 150; k++) {
        if (k % 3 == 0)
            n += (size_t)sprintf(body + n, "%s{\"id\":%d,\"title\":\"Song %d\",\"artist\":\"A\"}",
                                 k ? "," : "", k, k);
        else
            n += (size_t)sprintf(body + n, "%s\"i%d\"", k ? "," : "", k);
        m += (size_t)(k % 3 == 0 ? sprintf(rows + m, "2:long|%d|Song %d|A|1\n", k, k)
                                 : sprintf(rows + m, "2:long|i%d|~|~|0\n", k));
    }
    n += (size_t)sprintf(body + n, "]}\n");
    assert_true(n < sizeof body);
    char nd[3700];
    snprintf(nd, sizeof nd, "\n%s", body);
    check_ex(NDJSON, nd, strlen(nd), MAXREC, 0, rows, 0, 0, NULL);
    assert_int_equal(path_of(NDJSON, nd), 'F');
    snprintf(nd, sizeof nd, "[\n%s]", body);
    check_ex(JSON, nd, strlen(nd), MAXREC, 0, rows, 0, 0, NULL);
}

/* Shapes the fast path leaves to jansson: same rows, errors and messages. */
/* Records with more items than the fast path's descriptor window
 * (UPLOAD__JF_WINDOW): the items past it are scanned again when emitted and
 * must come out exactly as the jansson path gives them (check_ex compares
 * both, in every chunking), lines and columns included. */
static void test_json_fast_window(void **state)
{
    size_t cap = 64 * 1024, n = 0, m = 0;
    char *body = malloc(cap), *rows = malloc(cap), *nd = malloc(cap + 8);
    const int items = 2 * UPLOAD__JF_WINDOW + 37;

    (void)state;
    n += (size_t)sprintf(body + n, "{\"items\":[");
    for (int k = 0; k < items; k++) {
        const char *sep = k ? (k % 50 == 0 ? ",\n  " : ", ") : "";
        if (k % 5 == 0)
            n += (size_t)sprintf(body + n, "%s{\"title\":\"S%d\",\"id\":%d}", sep, k, k);
        else if (k % 5 == 1)
            n += (size_t)sprintf(body + n, "%s%d", sep, -k);
        else
            n += (size_t)sprintf(body + n, "%s\"i%d\"", sep, k);
    }
    n += (size_t)sprintf(body + n, "],\n \"id\":\"w\"}");
    assert_true(n < cap - 16);
    /* As a pretty-printed JSON array element: rows carry their item's line. */
    snprintf(nd, cap + 8, "[%s]", body);
    for (int k = 0; k < items; k++) {
        int line = 1 + k / 50;
        if (k % 5 == 0)
            m += (size_t)sprintf(rows + m, "%d:w|%d|S%d|~|1\n", line, k, k);
        else if (k % 5 == 1)
            m += (size_t)sprintf(rows + m, "%d:w|%d|~|~|0\n", line, -k);
        else
            m += (size_t)sprintf(rows + m, "%d:w|i%d|~|~|0\n", line, k);
    }
    struct result r = run(JSON, nd, strlen(nd), 1 << 20, NULL, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.rows, rows);
    free(r.rows);
    g_fast_off = 1;
    r = run(JSON, nd, strlen(nd), 1 << 20, NULL, NULL, 0);
    g_fast_off = 0;
    assert_string_equal(r.rows, rows);
    free(r.rows);
    for (unsigned seed = 1; seed <= 5; seed++) {
        unsigned st = seed;
        r = run(JSON, nd, strlen(nd), 1 << 20, chunk_random, &st, 0);
        assert_string_equal(r.rows, rows);
        free(r.rows);
    }
    assert_int_equal(path_of_max(JSON, nd, 1 << 20), 'F');
    /* A callback error on an item past the window stops there, as jansson's
     * path does. */
    r = run(JSON, nd, strlen(nd), 1 << 20, NULL, NULL, UPLOAD__JF_WINDOW + 10);
    g_fast_off = 1;
    struct result j = run(JSON, nd, strlen(nd), 1 << 20, NULL, NULL, UPLOAD__JF_WINDOW + 10);
    g_fast_off = 0;
    assert_true(r.rc < 0);
    same_result(&r, &j, "callback error past the window");
    free(r.rows);
    free(j.rows);
    free(body);
    free(rows);
    free(nd);
}

static int count_cb(void *ud, const struct upload_row *r, struct upload_error *err)
{
    (void)r;
    (void)err;
    ++*(unsigned long *)ud;
    return 0;
}

/* What a parser holds does not grow with the number of fields or items
 * in a record (issue 12, finding 3: a record of 1 MB of commas held 32
 * bytes per comma; one of 1 MB of `1,` 72 bytes per item): only the
 * record buffer, at most twice what the record needs, plus a fixed part. */
static void test_memory_per_record(void **state)
{
    const size_t fields = 200000;
    size_t len = 0;
    char *body = malloc(8 * fields + 64);
    unsigned long rows = 0;
    struct upload_error err;
    struct upload_parser *p;

    (void)state;
    /* CSV: 200 k columns in the header and in the one row. */
    len += (size_t)sprintf(body, "playlist_id,item_id");
    for (size_t k = 0; k < fields; k++)
        body[len++] = ',';
    len += (size_t)sprintf(body + len, "\np,i");
    for (size_t k = 0; k < fields; k++)
        body[len++] = ',';
    body[len++] = '\n';
    p = upload_parser_create(CSV, 1 << 20, count_cb, &rows);
    for (size_t off = 0; off < len; off += 4096)
        assert_int_equal(upload_parser_feed(p, body + off, len - off < 4096 ? len - off : 4096,
                                            &err), 0);
    assert_int_equal(upload_parser_finish(p, &err), 0);
    assert_int_equal(rows, 1);
    assert_true(upload_parser_memory(p) < 4096);
    upload_parser_destroy(p);

    /* NDJSON: one line of 200 k items, fast path and jansson path. */
    for (int fast_off = 0; fast_off <= 1; fast_off++) {
        len = (size_t)sprintf(body, "{\"id\":\"p\",\"items\":[1");
        for (size_t k = 1; k < fields; k++) {
            body[len++] = ',';
            body[len++] = '1';
        }
        len += (size_t)sprintf(body + len, "]}\n");
        rows = 0;
        p = upload_parser_create(NDJSON, 1 << 20, count_cb, &rows);
        p->j_fast_off = fast_off;
        for (size_t off = 0; off < len; off += 4096)
            assert_int_equal(upload_parser_feed(p, body + off,
                                                len - off < 4096 ? len - off : 4096, &err), 0);
        assert_int_equal(upload_parser_finish(p, &err), 0);
        assert_int_equal(rows, fields);
        assert_true(upload_parser_memory(p) <= 2 * len + 64 * 1024);
        upload_parser_destroy(p);
    }
    free(body);
}

static void test_json_fast_fallback(void **state)
{
    (void)state;
    /* escapes */
    SLOW(NDJSON, "{\"id\":\"p\\u0031\",\"items\":[\"a\"]}", "1:p1|a|~|~|0\n");
    SLOW(NDJSON, "{\"id\":\"p\",\"items\":[{\"id\":\"a\",\"title\":\"x\\\"y\\/\"}]}",
         "1:p|a|x\"y/|~|1\n");
    SLOW(NDJSON, "{\"id\":\"p\",\"items\":[\"a\\nb\"]}", "1:p|a\nb|~|~|0\n");
    SLOW(NDJSON, "{\"i\\u0064\":\"p\",\"items\":[\"a\"]}", "1:p|a|~|~|0\n");
    /* unknown keys, in the playlist and in an item */
    SLOW(NDJSON, "{\"id\":\"p\",\"items\":[\"a\"],\"extra\":{\"x\":[1,2]}}", "1:p|a|~|~|0\n");
    SLOW(NDJSON, "{\"id\":\"p\",\"items\":[{\"id\":\"a\",\"album\":\"x\"}]}", "1:p|a|~|~|0\n");
    /* duplicate keys */
    ERR(NDJSON, "{\"items\":[],\"id\":\"p\",\"items\":[\"a\"]}", -EINVAL, 1, 28,
        "invalid JSON: duplicate object key near '\"items\"'");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[{\"id\":\"a\",\"id\":\"b\"}]}", -EINVAL, 1, 33,
        "duplicate");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[{\"id\":\"a\",\"title\":null,\"title\":\"t\"}]}", -EINVAL,
        1, 49, "duplicate");
    /* numbers outside the integer grammar or int64 */
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[1.5]}", -EINVAL, 1, 20,
        "item must be a string, an integer or an object, not a fractional number");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[1e3]}", -EINVAL, 1, 20, "not a fractional number");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[01]}", -EINVAL, 1, 20, "invalid token near '0'");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[9223372036854775808]}", -EINVAL, 1, 38,
        "invalid JSON: too big integer");
    ERR(NDJSON, "{\"id\":-9223372036854775809,\"items\":[]}", -EINVAL, 1, 26,
        "invalid JSON: too big negative integer");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[-]}", -EINVAL, 1, 20, "invalid token near '-'");
    /* nested junk and other value types */
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[[\"a\"]]}", -EINVAL, 1, 20, "not an array");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[{\"id\":{\"x\":1}}]}", -EINVAL, 1, 20, "not an object");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[{\"id\":\"a\",\"title\":true}]}", -EINVAL, 1, 20,
        "item \"title\" must be a string or null, not a boolean");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[null]}", -EINVAL, 1, 20, "not null");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[{}]}", -EINVAL, 1, 20, "item is missing \"id\"");
    ERR(NDJSON, "{\"id\":\"\",\"items\":[\"a\"]}", -EINVAL, 1, 7, "must not be empty");
    /* raw control character, nul byte, trailing data */
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[\"a\tb\"]}", -EINVAL, 1, 21, "control character 0x9");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[\"a\"]}\0", -EINVAL, 1, 25, "invalid JSON");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[\"a\"]}}", -EINVAL, 1, 25, "invalid JSON");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[\"a\",]}", -EINVAL, 1, 24, "invalid JSON");
    ERR(NDJSON, "{\"id\":\"p\",\"items\":[\"a\"],}", -EINVAL, 1, 25, "invalid JSON");
    /* A valid prefix is never emitted twice: jansson emits a, b, then fails. */
    ERR_ROWS(NDJSON, "{\"id\":\"p\",\"items\":[\"a\",\"b\",1.5]}", "1:p|a|~|~|0\n1:p|b|~|~|0\n",
             -EINVAL, 1, 28, "not a fractional number");
    ERR_ROWS(JSON, "[{\"id\":\"p\",\"items\":[\"a\"]},\n {\"id\":\"q\",\"items\":[\"b\",\"c\\u0000\"]}]",
             "1:p|a|~|~|0\n", -EINVAL, 2, 33, "\\u0000 is not allowed");
}

/* A rejecting callback gets the item's line and column from the fast path
 * as from jansson. */
static void test_json_fast_callback_error(void **state)
{
    (void)state;
    const char *body = "[{\"id\":\"p\",\"items\":[\"a\",\n    {\"id\":\"b\"}, 3]}]";
    for (int off = 0; off <= 1; off++) {
        g_fast_off = off;
        struct result r = run(JSON, body, strlen(body), MAXREC, NULL, NULL, 2);
        g_fast_off = 0;
        assert_int_equal(r.rc, -ECANCELED);
        assert_int_equal(r.err.line, 2);
        assert_int_equal(r.err.column, 5);
        assert_string_equal(r.err.message, "rejected by test");
        assert_string_equal(r.rows, "1:p|a|~|~|0\n2:p|b|~|~|0\n");
        free(r.rows);
    }
    body = "  {\"id\":\"p\",\"items\":[\"a\", 7]}";
    for (int off = 0; off <= 1; off++) {
        g_fast_off = off;
        struct result r = run(NDJSON, body, strlen(body), MAXREC, NULL, NULL, 2);
        g_fast_off = 0;
        assert_int_equal(r.rc, -ECANCELED);
        assert_int_equal(r.err.line, 1);
        assert_int_equal(r.err.column, 27);
        free(r.rows);
    }
}

static void test_content_type(void **state)
{
    (void)state;
    enum upload_format f;
    assert_int_equal(upload_format_from_content_type("text/csv", &f), 0);
    assert_int_equal(f, CSV);
    assert_int_equal(upload_format_from_content_type("Text/CSV; charset=utf-8", &f), 0);
    assert_int_equal(f, CSV);
    assert_int_equal(upload_format_from_content_type("text/tab-separated-values", &f), 0);
    assert_int_equal(f, TSV);
    assert_int_equal(upload_format_from_content_type("application/x-ndjson", &f), 0);
    assert_int_equal(f, NDJSON);
    assert_int_equal(upload_format_from_content_type(" application/ndjson ;x=y", &f), 0);
    assert_int_equal(f, NDJSON);
    assert_int_equal(upload_format_from_content_type("application/jsonl", &f), 0);
    assert_int_equal(f, NDJSON);
    assert_int_equal(upload_format_from_content_type("APPLICATION/JSON;charset=UTF-8", &f), 0);
    assert_int_equal(f, JSON);
    assert_int_equal(upload_format_from_content_type("application/jsonx", &f), -ENOTSUP);
    assert_int_equal(upload_format_from_content_type("text/plain", &f), -ENOTSUP);
    assert_int_equal(upload_format_from_content_type("", &f), -ENOTSUP);
    assert_int_equal(upload_format_from_content_type(NULL, &f), -ENOTSUP);
}

static void test_misc(void **state)
{
    (void)state;
    struct collect c = {0};
    struct upload_error err;
    struct upload_parser *p = upload_parser_create(CSV, 100, collect_cb, &c);
    assert_non_null(p);
    /* err may be NULL. */
    assert_int_equal(upload_parser_feed(p, "playlist_id,item_id\np,a\n", 24, NULL), 0);
    assert_int_equal(upload_parser_rows(p), 1);
    assert_int_equal(upload_parser_feed(p, "p,\"", 3, &err), 0);
    assert_int_equal(upload_parser_finish(p, &err), -EINVAL);
    /* Sticky after an error. */
    assert_int_equal(upload_parser_feed(p, "x", 1, &err), -EINVAL);
    upload_parser_destroy(p);
    upload_parser_destroy(NULL);
    free(c.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_basic),        cmocka_unit_test(test_csv_quotes),
        cmocka_unit_test(test_csv_line_endings), cmocka_unit_test(test_csv_trim_ids),
        cmocka_unit_test(test_csv_header),       cmocka_unit_test(test_csv_field_count),
        cmocka_unit_test(test_csv_quote_errors), cmocka_unit_test(test_csv_tsv_quotes),
        cmocka_unit_test(test_csv_utf8),         cmocka_unit_test(test_csv_record_bound),
        cmocka_unit_test(test_csv_callback_error), cmocka_unit_test(test_csv_random_bodies),
        cmocka_unit_test(test_ndjson_items),     cmocka_unit_test(test_ndjson_errors),
        cmocka_unit_test(test_json_array),       cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_fast_shapes), cmocka_unit_test(test_json_fast_long),
        cmocka_unit_test(test_json_fast_fallback), cmocka_unit_test(test_json_fast_window),
        cmocka_unit_test(test_memory_per_record),
        cmocka_unit_test(test_json_fast_callback_error),
        cmocka_unit_test(test_content_type),     cmocka_unit_test(test_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
