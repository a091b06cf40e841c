/*
 * Unit tests for the import parsers (ingest/cooc_parse.h, ingest/emb_parse.h)
 * and their lexing (ingest/import_lex.h). Rows are serialised to one text
 * line each so expectations read plainly; every case runs whole, byte by
 * byte and split at every point, and must give the same rows and the same
 * error (code, line, column) each time. lex_double's exact fast path is
 * checked against strtod on many generated numbers.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/cooc_parse.h"
#include "ingest/emb_parse.h"
#include "ingest/import_lex.h"

struct out {
    char buf[8192];
    size_t len;
};

static int on_cooc(void *ud, const struct cooc_row *r, struct upload_error *err)
{
    struct out *o = ud;
    int n = snprintf(o->buf + o->len, sizeof o->buf - o->len, "%lu:%.*s|%.*s|%u|%s\n", r->line,
                     (int)r->item1_len, r->item1, (int)r->item2_len, r->item2, r->cooc,
                     r->has_pmi ? "" : "-");
    if (r->has_pmi)
        n += snprintf(o->buf + o->len + n - 1, sizeof o->buf - o->len - n + 1, "%.17g\n", r->pmi) -
             1;
    o->len += (size_t)n;
    return 0;
}

static int on_emb(void *ud, const struct emb_row *r, struct upload_error *err)
{
    struct out *o = ud;
    o->len += (size_t)snprintf(o->buf + o->len, sizeof o->buf - o->len, "%lu:%.*s|", r->line,
                               (int)r->id_len, r->id);
    for (uint32_t k = 0; k < r->dims; k++)
        o->len += (size_t)snprintf(o->buf + o->len, sizeof o->buf - o->len, "%s%.7g", k ? "," : "",
                                   (double)r->values[k]);
    o->len += (size_t)snprintf(o->buf + o->len, sizeof o->buf - o->len, "\n");
    return 0;
}

/* Runs body through a fresh parser fed in pieces of at most step bytes
 * (0: whole; split > 0: two pieces at that offset). Appends "!rc@line:col"
 * for an error. */
static void run_one(int emb, enum upload_format fmt, const char *body, size_t len, size_t step,
                    size_t split, struct out *o)
{
    struct upload_error err = {0};
    memset(o, 0, sizeof *o);
    struct cooc_parser *cp = emb ? NULL : cooc_parser_create(fmt, 64, on_cooc, o);
    struct emb_parser *ep = emb ? emb_parser_create(200, 4, on_emb, o) : NULL;
    int rc = 0;
    size_t off = 0;
    while (rc == 0 && off < len) {
        size_t n = split ? (off < split ? split : len - off) : step ? step : len;
        if (n > len - off)
            n = len - off;
        rc = emb ? emb_parser_feed(ep, body + off, n, &err)
                 : cooc_parser_feed(cp, body + off, n, &err);
        off += n;
    }
    if (rc == 0)
        rc = emb ? emb_parser_finish(ep, &err) : cooc_parser_finish(cp, &err);
    if (rc != 0)
        o->len += (size_t)snprintf(o->buf + o->len, sizeof o->buf - o->len, "!%d@%lu:%lu", rc,
                                   err.line, err.column);
    cooc_parser_destroy(cp);
    emb_parser_destroy(ep);
}

static int mismatches;

static void check(int emb, enum upload_format fmt, const char *body, const char *want)
{
    size_t len = strlen(body);
    struct out whole, o;
    run_one(emb, fmt, body, len, 0, 0, &whole);
    if (strcmp(whole.buf, want) != 0) {
        print_error("body:\n%s\ngot:  %s\nwant: %s\n", body, whole.buf, want);
        mismatches++;
        return;
    }
    run_one(emb, fmt, body, len, 1, 0, &o);
    assert_string_equal(o.buf, want);
    for (size_t s = 1; s < len; s++) {
        run_one(emb, fmt, body, len, 0, s, &o);
        if (strcmp(o.buf, want) != 0)
            fail_msg("split at %zu:\n%s\nwant:\n%s", s, o.buf, want);
    }
}

static void test_csv(void **state)
{
    check(0, UPLOAD_FORMAT_CSV, "item1_Id,item2_Id,cooc,pmi\na,b,3,1.5\nb,a,3,1.5\n",
          "2:a|b|3|1.5\n3:b|a|3|1.5\n");
    /* itemvecd's names, any case, other columns ignored, spaces, CRLF, BOM, no final newline */
    check(0, UPLOAD_FORMAT_CSV,
          "\xef\xbb\xbfScore, ITEM2 ,item1,Cooc\r\n9, b , a ,7\r\n\r\n1,x,y,2",
          "2:a|b|7|-\n4:y|x|2|-\n");
    /* quotes: separators and "" inside ids; a repeated header is skipped */
    check(0, UPLOAD_FORMAT_CSV,
          "item1,item2,cooc\n\"a,1\",\"say \"\"hi\"\"\",2\nitem1,item2,cooc\n \"q\" ,r,1\n",
          "2:a,1|say \"hi\"|2|-\n4:q|r|1|-\n");
    check(0, UPLOAD_FORMAT_TSV, "item1_id\titem2_id\tcooc\tpmi\nx y\tz\t1\t-2e-3\n",
          "2:x y|z|1|-0.002\n");
    /* errors: line and column of the field */
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc\na,b,-1\n", "!-22@2:5");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc\na,b,0\n", "!-22@2:5");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc\na,b,4294967296\n", "!-22@2:5");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc,pmi\na,b,1,NaN\n", "!-22@2:7");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc,pmi\na,b,1,inf\n", "!-22@2:7");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc,pmi\na,b,1,1e999\n", "!-22@2:7");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc,pmi\na,b,1,\n", "!-22@2:7");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc\na,,1\n", "!-22@2:3");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc\na,b\n", "!-22@2:1");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc\n\"a,b,1\n", "!-22@2:0");
    check(0, UPLOAD_FORMAT_CSV, "item1,item2,cooc\n\"a\"x,b,1\n", "!-22@2:4");
    check(0, UPLOAD_FORMAT_CSV, "a,b,cooc\nx,y,1\n", "!-22@1:1");
    check(0, UPLOAD_FORMAT_CSV, "item1,item1_id,item2,cooc\n", "!-22@1:7");
    check(0, UPLOAD_FORMAT_CSV, "", "!-22@1:1");
    check(0, UPLOAD_FORMAT_CSV,
          "item1,item2,cooc\n0123456789012345678901234567890123456789012345"
          "678901234567890123456789,b,1\n",
          "!-7@2:0");
}

static void test_ndjson(void **state)
{
    check(0, UPLOAD_FORMAT_NDJSON,
          "{\"item1_Id\":\"a\",\"item2_Id\":\"b\",\"cooc\":3,\"pmi\":1.25}\n"
          "\n{\"cooc\":\"2\", \"item2\":7, \"item1\":\"\\u00e9\\\"\", \"x\":[1,{\"y\":null}]}\n",
          "1:a|b|3|1.25\n3:\xc3\xa9\"|7|2|-\n");
    check(0, UPLOAD_FORMAT_NDJSON, "{\"item1\":\"a\",\"item2\":\"b\",\"cooc\":-2}\n", "!-22@1:33");
    check(0, UPLOAD_FORMAT_NDJSON, "{\"item1\":\"a\",\"item2\":\"b\",\"cooc\":1,\"pmi\":null}\n",
          "!-22@1:41");
    check(0, UPLOAD_FORMAT_NDJSON, "{\"item1\":\"a\",\"item1\":\"b\",\"cooc\":1}\n", "!-22@1:14");
    check(0, UPLOAD_FORMAT_NDJSON, "{\"item1\":\"a\",\"cooc\":1}\n", "!-22@1:1");
    check(0, UPLOAD_FORMAT_NDJSON, "{\"item1\":1.5,\"item2\":\"b\",\"cooc\":1}\n", "!-22@1:10");
    check(0, UPLOAD_FORMAT_NDJSON, "{\"item1\":\"a\",\"item2\":\"b\",\"cooc\":1} x\n", "!-22@1:36");
    check(0, UPLOAD_FORMAT_NDJSON, "[1]\n", "!-22@1:1");
    check(0, UPLOAD_FORMAT_NDJSON, "{\"item1\":\"\\u0000\",\"item2\":\"b\",\"cooc\":1}\n",
          "!-22@1:11");
    check(0, UPLOAD_FORMAT_NDJSON, "{\"item1\":\"\\ud800\",\"item2\":\"b\",\"cooc\":1}\n",
          "!-22@1:11");
}

static void test_embeddings(void **state)
{
    check(1, UPLOAD_FORMAT_NDJSON,
          "{\"id\":\"2114406\",\"embedding\":[0.5,-1e-3,3]}\n{\"embedding\":[1],\"x\":{},\"id\":7}",
          "1:2114406|0.5,-0.001,3\n2:7|1\n");
    check(1, UPLOAD_FORMAT_NDJSON, "{\"id\":\"a\",\"embedding\":[1,NaN]}\n", "!-22@1:26");
    check(1, UPLOAD_FORMAT_NDJSON, "{\"id\":\"a\",\"embedding\":[1,1e39]}\n", "!-22@1:26");
    check(1, UPLOAD_FORMAT_NDJSON, "{\"id\":\"a\",\"embedding\":[1,2,3,4,5]}\n", "!-22@1:32");
    check(1, UPLOAD_FORMAT_NDJSON, "{\"id\":\"a\",\"embedding\":[]}\n", "!-22@1:24");
    check(1, UPLOAD_FORMAT_NDJSON, "{\"id\":\"a\",\"embedding\":[1],\"id\":\"b\"}\n", "!-22@1:27");
    check(1, UPLOAD_FORMAT_NDJSON, "{\"id\":\"\",\"embedding\":[1]}\n", "!-22@1:7");
    check(1, UPLOAD_FORMAT_NDJSON, "{\"id\":\"a\",\"embedding\":[1,2}\n", "!-22@1:27");
    check(1, UPLOAD_FORMAT_NDJSON, "{\"id\":\"a\"}\n", "!-22@1:1");
}

static void test_numbers(void **state)
{
    double v;
    const char *bad[] = {"",    "+",        "-",    ".",     "e5", "1e", "1e+", "NaN", "nan",
                         "inf", "Infinity", "0x10", "1.2.3", "1 ", " 1", "1,5", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(lex_double(bad[i], strlen(bad[i]), &v), -EINVAL);
    assert_int_equal(lex_double("1e400", 5, &v), -ERANGE);
    assert_int_equal(lex_double("-1e400", 6, &v), -ERANGE);
    assert_int_equal(lex_double("1e-400", 6, &v), 0);
    assert_true(v == 0.0);
    /* the fast path must round exactly as strtod */
    srand(7);
    char buf[64];
    for (int i = 0; i < 200000; i++) {
        int digits = 1 + rand() % 19, point = rand() % (digits + 1), e = rand() % 60 - 30;
        size_t n = 0;
        if (rand() % 2)
            buf[n++] = '-';
        for (int k = 0; k < digits; k++) {
            if (k == point && k)
                buf[n++] = '.';
            buf[n++] = (char)('0' + rand() % 10);
        }
        if (rand() % 3 == 0)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "e%d", e);
        buf[n] = '\0';
        assert_int_equal(lex_double(buf, n, &v), 0);
        double want = strtod(buf, NULL);
        if (memcmp(&v, &want, sizeof v) != 0)
            fail_msg("%s: %.17g, strtod %.17g", buf, v, want);
    }
    uint64_t u;
    assert_int_equal(lex_uint("4294967295", 10, UINT32_MAX, &u), 0);
    assert_int_equal(u, 4294967295u);
    assert_int_equal(lex_uint("4294967296", 10, UINT32_MAX, &u), -ERANGE);
    assert_int_equal(lex_uint("+7", 2, UINT32_MAX, &u), 0);
    assert_int_equal(lex_uint("-7", 2, UINT32_MAX, &u), -EINVAL);
    assert_int_equal(lex_uint("1.0", 3, UINT32_MAX, &u), -EINVAL);
}

static void test_no_mismatch(void **state)
{
    assert_int_equal(mismatches, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv),         cmocka_unit_test(test_ndjson),
        cmocka_unit_test(test_embeddings),  cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_no_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
