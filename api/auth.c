/*
 * Bearer-token authorisation for /v1 (API.md, Conventions): read-write
 * tokens may use every method, read-only tokens GET/HEAD only. /healthz and
 * /readyz are always open, /metrics unless auth.metrics_open is false.
 * Tokens are compared in constant time (no early exit on the first
 * differing byte, no length shortcut) and never logged.
 */
#include <errno.h>
#include <string.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "conf/app.h"

/* Constant-time equality of a presented token with one configured token. */
static int token_equal(const char *given, size_t glen, const char *tok, size_t tlen)
{
    unsigned char diff = (unsigned char)(glen != tlen);
    size_t n = glen > tlen ? glen : tlen;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = i < glen ? (unsigned char)given[i] : 0;
        unsigned char b = i < tlen ? (unsigned char)tok[i] : 0;
        diff |= a ^ b;
    }
    return diff == 0;
}

/* Whether the comma-separated list holds the token; every entry is
 * compared so the time does not depend on which one matches. */
static int list_has(const char *list, const char *given, size_t glen)
{
    int found = 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if (t > p)
            found |= token_equal(given, glen, p, (size_t)(t - p));
        p = e;
    }
    return found;
}

int api__auth_check(struct api_req *req)
{
    const struct config *c = &req->app->cfg;
    if (!req->route)
        return 0;
    const char *path = req->route->pattern;
    if (strncmp(path, "/v1/", 4) != 0 && !(strcmp(path, "/metrics") == 0 && !c->auth_metrics_open))
        return 0;
    const struct tokens *ft = &req->app->file_tokens;
    if (!c->auth_tokens[0] && !c->auth_read_tokens[0] && !ft->rw && !ft->ro)
        return 0; /* no tokens configured: open (loopback-only, see config_validate) */
    const char *h = api_header(req, "Authorization");
    int rw = 0, ro = 0;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tok = h + 7;
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        rw = list_has(c->auth_tokens, tok, len) | list_has(ft->rw ? ft->rw : "", tok, len);
        ro = list_has(c->auth_read_tokens, tok, len) | list_has(ft->ro ? ft->ro : "", tok, len);
    }
    if (!rw && !ro) {
        api_add_header(req, "WWW-Authenticate", "Bearer realm=\"itemvec\"");
        api_reply_problem(req, 401, "unauthorized", "Unauthorized", NULL,
                          h ? "the bearer token is not valid" : "a bearer token is required");
        return -EACCES;
    }
    int read_method = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (!rw && !read_method) {
        api_reply_problem(req, 403, "forbidden", "Forbidden", NULL,
                          "a read-only token may only GET or HEAD");
        return -EACCES;
    }
    return 0;
}
