/*
 * Lexing for the import parsers (see import_lex.h).
 */
#include "ingest/import_lex.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

void lex_error(struct upload_error *err, unsigned long line, size_t column, const char *fmt, ...)
{
    va_list ap;
    err->line = line;
    err->column = (unsigned long)column;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* ---- records ---- */

void lex_records_init(struct lex_records *r, int quotes, size_t max_record)
{
    memset(r, 0, sizeof *r);
    r->quotes = quotes;
    r->max_record = max_record;
    r->line = 1;
    r->rec_line = 1;
}

void lex_records_deinit(struct lex_records *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

static int rec_append(struct lex_records *r, const char *p, size_t n, struct upload_error *err)
{
    if (r->len + n > r->max_record + 1) { /* +1: a CR that may precede LF */
        lex_error(err, r->rec_line, 0, "record over limits.max_record_size (%zu bytes)",
                  r->max_record);
        return -E2BIG;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        char *nb = realloc(r->buf, cap);
        if (!nb)
            return -ENOMEM;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

/* First byte in [p, end) that is '\n' or '"', or end: eight bytes at a
 * time (records are short; two memchr calls per record cost more). */
static const char *find_nl_or_quote(const char *p, const char *end)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        uint64_t a = v ^ (ones * '\n'), b = v ^ (ones * '"');
        uint64_t hit = ((a - ones) & ~a & highs) | ((b - ones) & ~b & highs);
        if (hit)
            return p + (__builtin_ctzll(hit) >> 3);
        p += 8;
    }
    while (p < end && *p != '\n' && *p != '"')
        p++;
    return p;
}

static int rec_emit(struct lex_records *r, const char *rec, size_t len, lex_record_cb cb, void *ud,
                    struct upload_error *err)
{
    if (len && rec[len - 1] == '\r')
        len--;
    if (len > r->max_record) {
        lex_error(err, r->rec_line, 0, "record over limits.max_record_size (%zu bytes)",
                  r->max_record);
        return -E2BIG;
    }
    return cb(ud, rec, len, r->rec_line, err);
}

int lex_records_feed(struct lex_records *r, const char *data, size_t len, lex_record_cb cb,
                     void *ud, struct upload_error *err)
{
    static const unsigned char BOM[3] = {0xef, 0xbb, 0xbf};
    int rc = 0;
    if (r->failed)
        return r->failed;
    /* a UTF-8 BOM at the very start is skipped, even split over chunks */
    while (!r->bom_done && len > 0) {
        if ((unsigned char)*data != BOM[r->bom_len]) {
            r->bom_done = 1;
            if (r->bom_len &&
                (rc = lex_records_feed(r, (const char *)BOM, r->bom_len, cb, ud, err)) < 0)
                return rc;
            break;
        }
        r->bom_len++;
        data++;
        len--;
        if (r->bom_len == 3)
            r->bom_done = 1;
    }
    if (!r->bom_done)
        return 0;
    size_t off = 0;
    while (off < len) {
        const char *p = data + off, *end = data + len;
        const char *nl;
        int in = r->in_quotes;
        unsigned long inner = 0; /* newlines inside quotes before the end */
        if (!r->quotes) {
            nl = memchr(p, '\n', (size_t)(end - p));
        } else {
            for (;;) {
                const char *q = find_nl_or_quote(p, end);
                if (q == end) {
                    nl = NULL;
                    break;
                }
                if (*q == '"') {
                    in = !in;
                } else if (in) {
                    inner++;
                } else {
                    nl = q;
                    break;
                }
                p = q + 1;
            }
        }
        if (!nl) { /* the record goes on in the next chunk */
            if ((rc = rec_append(r, data + off, len - off, err)) < 0)
                goto fail;
            r->in_quotes = in;
            r->line += inner;
            break;
        }
        size_t n = (size_t)(nl - (data + off));
        if (r->len == 0) {
            rc = rec_emit(r, data + off, n, cb, ud, err);
        } else {
            if ((rc = rec_append(r, data + off, n, err)) < 0)
                goto fail;
            rc = rec_emit(r, r->buf, r->len, cb, ud, err);
            r->len = 0;
        }
        if (rc < 0)
            goto fail;
        r->in_quotes = 0;
        r->line += inner + 1;
        r->rec_line = r->line;
        off += n + 1;
    }
    return 0;
fail:
    r->failed = rc;
    return rc;
}

int lex_records_finish(struct lex_records *r, lex_record_cb cb, void *ud, struct upload_error *err)
{
    int rc;
    if (r->failed)
        return r->failed;
    if (!r->bom_done && r->bom_len) {
        static const unsigned char BOM[3] = {0xef, 0xbb, 0xbf};
        size_t n = r->bom_len;
        r->bom_done = 1;
        r->bom_len = 0;
        if ((rc = lex_records_feed(r, (const char *)BOM, n, cb, ud, err)) < 0)
            return rc;
    }
    if (r->in_quotes) {
        lex_error(err, r->rec_line, 0, "unterminated quoted field at the end of the body");
        return r->failed = -EINVAL;
    }
    if (r->len == 0)
        return 0;
    rc = rec_emit(r, r->buf, r->len, cb, ud, err);
    r->len = 0;
    if (rc < 0)
        r->failed = rc;
    return rc;
}

/* ---- numbers ---- */

void lex_trim(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    *s = p;
    *len = n;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int lex_number(const char *s, size_t len, double *out, int approx)
{
    size_t i = 0;
    int neg = 0;
    uint64_t mant = 0;
    int digits = 0, sig = 0, frac = 0, dropped = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)(s[i] - '0');
            sig += mant != 0;
        } else {
            dropped = 1; /* beyond 19 significant digits: strtod decides */
        }
    }
    if (i < len && s[i] == '.') {
        i++;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(s[i] - '0');
                sig += mant != 0;
                frac++;
            } else {
                dropped = 1;
            }
        }
    }
    if (digits == 0)
        return -EINVAL;
    long exp10 = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0, ed = 0;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, ed++)
            if (exp10 < 100000)
                exp10 = exp10 * 10 + (s[i] - '0');
        if (ed == 0)
            return -EINVAL;
        if (eneg)
            exp10 = -exp10;
    }
    if (i != len)
        return -EINVAL;
    long e = exp10 - frac;
    if (approx && !dropped && e >= -22 && e <= 22) {
        double v = (double)mant; /* rounds once when mant > 2^53 */
        v = e < 0 ? v / pow10_exact[-e] : v * pow10_exact[e];
        *out = neg ? -v : v;
        return 0;
    }
    if (!dropped && mant <= (1ULL << 53) && e >= -22 && e <= 22) {
        double v = (double)mant;
        v = e < 0 ? v / pow10_exact[-e] : v * pow10_exact[e];
        *out = neg ? -v : v;
        return 0;
    }
    /* slow path: strtod on a NUL-terminated copy */
    char tmp[128];
    char *buf = len < sizeof tmp ? tmp : malloc(len + 1);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    char *endp;
    double v = strtod(buf, &endp);
    int bad = endp != buf + len;
    int range = errno == ERANGE && isinf(v);
    if (buf != tmp)
        free(buf);
    if (bad)
        return -EINVAL;
    if (range || !isfinite(v))
        return -ERANGE;
    *out = v; /* underflow to a subnormal or zero is fine */
    return 0;
}

int lex_double(const char *s, size_t len, double *out)
{
    return lex_number(s, len, out, 0);
}

int lex_double_approx(const char *s, size_t len, double *out)
{
    return lex_number(s, len, out, 1);
}

int lex_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    if (len && s[0] == '+')
        i = 1;
    if (i == len)
        return -EINVAL;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ---- JSON ---- */

void lex_buf_deinit(struct lex_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int buf_reserve(struct lex_buf *b, size_t need)
{
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np)
        return -ENOMEM;
    b->p = np;
    b->cap = cap;
    return 0;
}

void lexj_ws(const char *s, size_t n, size_t *i)
{
    size_t k = *i;
    while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n'))
        k++;
    *i = k;
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int lexj_string(const char *s, size_t n, size_t *i, struct lex_buf *scratch, const char **out,
                size_t *out_len, const char **why)
{
    size_t k = *i + 1, start = k;
    int escapes = 0;
    for (;; k++) {
        if (k >= n) {
            *i = n;
            *why = "unterminated string";
            return -EINVAL;
        }
        unsigned char c = (unsigned char)s[k];
        if (c == '"')
            break;
        if (c < 0x20) {
            *i = k;
            *why = "control character in a string";
            return -EINVAL;
        }
        if (c == '\\') {
            escapes = 1;
            k++;
            if (k >= n)
                continue; /* reported as unterminated */
        }
    }
    size_t end = k;
    if (!escapes) {
        if (!text_utf8_valid(s + start, end - start)) {
            *i = start;
            *why = "string is not valid UTF-8";
            return -EINVAL;
        }
        *out = s + start;
        *out_len = end - start;
        *i = end + 1;
        return 0;
    }
    if (buf_reserve(scratch, end - start + 1) < 0) {
        *why = "out of memory";
        return -ENOMEM;
    }
    char *o = scratch->p;
    size_t m = 0;
    for (k = start; k < end; k++) {
        char c = s[k];
        if (c != '\\') {
            o[m++] = c;
            continue;
        }
        char e = s[++k];
        switch (e) {
        case '"':
            o[m++] = '"';
            break;
        case '\\':
            o[m++] = '\\';
            break;
        case '/':
            o[m++] = '/';
            break;
        case 'b':
            o[m++] = '\b';
            break;
        case 'f':
            o[m++] = '\f';
            break;
        case 'n':
            o[m++] = '\n';
            break;
        case 'r':
            o[m++] = '\r';
            break;
        case 't':
            o[m++] = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (k + 5 > end || hex4(s + k + 1, &cp) < 0) {
                *i = k - 1;
                *why = "bad \\u escape";
                return -EINVAL;
            }
            k += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (k + 7 > end || s[k + 1] != '\\' || s[k + 2] != 'u' ||
                    hex4(s + k + 3, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
                    *i = k - 5;
                    *why = "unpaired UTF-16 surrogate in a \\u escape";
                    return -EINVAL;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                k += 6;
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                *i = k - 5;
                *why = "unpaired UTF-16 surrogate in a \\u escape";
                return -EINVAL;
            }
            if (cp == 0) {
                *i = k - 5;
                *why = "\\u0000 is not allowed";
                return -EINVAL;
            }
            m += utf8_put(o + m, cp);
            break;
        }
        default:
            *i = k - 1;
            *why = "bad escape in a string";
            return -EINVAL;
        }
    }
    if (!text_utf8_valid(o, m)) {
        *i = start;
        *why = "string is not valid UTF-8";
        return -EINVAL;
    }
    scratch->len = m;
    *out = o;
    *out_len = m;
    *i = end + 1;
    return 0;
}

int lexj_number(const char *s, size_t n, size_t *i, const char **tok, size_t *tok_len, int *is_int,
                const char **why)
{
    size_t k = *i, start = k;
    *is_int = 1;
    if (k < n && s[k] == '-')
        k++;
    if (k < n && s[k] == '0') {
        k++;
    } else if (k < n && s[k] >= '1' && s[k] <= '9') {
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    } else {
        *i = k;
        *why = "expected a number";
        return -EINVAL;
    }
    if (k < n && s[k] == '.') {
        *is_int = 0;
        k++;
        if (k >= n || s[k] < '0' || s[k] > '9') {
            *i = k;
            *why = "expected a digit after '.'";
            return -EINVAL;
        }
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        *is_int = 0;
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        if (k >= n || s[k] < '0' || s[k] > '9') {
            *i = k;
            *why = "expected a digit in the exponent";
            return -EINVAL;
        }
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    }
    *tok = s + start;
    *tok_len = k - start;
    *i = k;
    return 0;
}

static int lit(const char *s, size_t n, size_t *i, const char *word, const char **why)
{
    size_t l = strlen(word);
    if (*i + l > n || memcmp(s + *i, word, l) != 0) {
        *why = "unexpected character";
        return -EINVAL;
    }
    *i += l;
    return 0;
}

static int skip_depth(const char *s, size_t n, size_t *i, int depth, const char **why)
{
    const char *t;
    size_t tl;
    int is_int;
    if (depth > 64) {
        *why = "nesting deeper than 64 levels";
        return -EINVAL;
    }
    lexj_ws(s, n, i);
    if (*i >= n) {
        *why = "unexpected end of record";
        return -EINVAL;
    }
    char c = s[*i];
    if (c == '"') {
        /* validate without decoding: escapes checked, no copy kept */
        size_t k = *i + 1;
        for (; k < n && s[k] != '"'; k++) {
            if ((unsigned char)s[k] < 0x20) {
                *i = k;
                *why = "control character in a string";
                return -EINVAL;
            }
            if (s[k] == '\\')
                k++;
        }
        if (k >= n) {
            *i = n;
            *why = "unterminated string";
            return -EINVAL;
        }
        *i = k + 1;
        return 0;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        (*i)++;
        lexj_ws(s, n, i);
        if (*i < n && s[*i] == close) {
            (*i)++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                lexj_ws(s, n, i);
                if (*i >= n || s[*i] != '"') {
                    *why = "expected a key";
                    return -EINVAL;
                }
                if (skip_depth(s, n, i, depth + 1, why) < 0)
                    return -EINVAL;
                lexj_ws(s, n, i);
                if (*i >= n || s[*i] != ':') {
                    *why = "expected ':'";
                    return -EINVAL;
                }
                (*i)++;
            }
            if (skip_depth(s, n, i, depth + 1, why) < 0)
                return -EINVAL;
            lexj_ws(s, n, i);
            if (*i < n && s[*i] == ',') {
                (*i)++;
                continue;
            }
            if (*i < n && s[*i] == close) {
                (*i)++;
                return 0;
            }
            *why = c == '{' ? "expected ',' or '}'" : "expected ',' or ']'";
            return -EINVAL;
        }
    }
    if (c == 't')
        return lit(s, n, i, "true", why);
    if (c == 'f')
        return lit(s, n, i, "false", why);
    if (c == 'n')
        return lit(s, n, i, "null", why);
    return lexj_number(s, n, i, &t, &tl, &is_int, why);
}

int lexj_skip(const char *s, size_t n, size_t *i, const char **why)
{
    return skip_depth(s, n, i, 0, why);
}

int lexj_object(const char *s, size_t n, unsigned long line, const char *what,
                lexj_field_fn field, void *ud, struct upload_error *err)
{
    size_t i = 0;
    const char *why = NULL;
    int rc;
    lexj_ws(s, n, &i);
    if (i == n)
        return 1; /* blank line */
    if (s[i] != '{') {
        lex_error(err, line, i + 1, "expected a JSON object %s on each line", what);
        return -EINVAL;
    }
    i++;
    lexj_ws(s, n, &i);
    if (i < n && s[i] == '}') {
        i++;
        goto end;
    }
    for (;;) {
        lexj_ws(s, n, &i);
        if (i >= n || s[i] != '"') {
            why = "expected a key";
            goto syntax;
        }
        size_t kcol = i + 1;
        const char *key;
        size_t klen;
        struct lex_buf kscratch = {0};
        rc = lexj_string(s, n, &i, &kscratch, &key, &klen, &why);
        if (rc < 0) {
            lex_buf_deinit(&kscratch);
            if (rc == -ENOMEM)
                return rc;
            goto syntax;
        }
        lexj_ws(s, n, &i);
        if (i >= n || s[i] != ':') {
            lex_buf_deinit(&kscratch);
            why = "expected ':'";
            goto syntax;
        }
        i++;
        lexj_ws(s, n, &i);
        rc = field(ud, key, klen, kcol, s, n, &i, line, err, &why);
        lex_buf_deinit(&kscratch);
        if (rc == LEXJ_SYNTAX)
            goto syntax;
        if (rc < 0)
            return rc;
        lexj_ws(s, n, &i);
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < n && s[i] == '}') {
            i++;
            break;
        }
        why = "expected ',' or '}'";
        goto syntax;
    }
end:
    lexj_ws(s, n, &i);
    if (i != n) {
        lex_error(err, line, i + 1, "unexpected text after the object");
        return -EINVAL;
    }
    return 0;
syntax:
    lex_error(err, line, i + 1, "%s", why ? why : "syntax error");
    return -EINVAL;
}

int lexj_scalar(const char *s, size_t n, size_t *i, struct lex_buf *scratch, const char **out,
                size_t *out_len, int *kind, const char **why)
{
    *kind = 0;
    if (*i < n && s[*i] == '"') {
        int rc = lexj_string(s, n, i, scratch, out, out_len, why);
        if (rc < 0)
            return rc == -ENOMEM ? rc : LEXJ_SYNTAX;
        *kind = 's';
    } else if (*i < n && (s[*i] == '-' || (s[*i] >= '0' && s[*i] <= '9'))) {
        int is_int;
        if (lexj_number(s, n, i, out, out_len, &is_int, why) < 0)
            return LEXJ_SYNTAX;
        *kind = is_int ? 'i' : 'n';
    }
    return 0;
}
