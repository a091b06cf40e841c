/*
 * Bearer-token authorisation for /v1 (API.md, Conventions): read-write
 * tokens may use every method, read-only tokens the reads (GET/HEAD, and
 * POST /v1/recommend, a query sent as a body). /healthz and /readyz are
 * always open, /metrics unless auth.metrics_open is false. Authentication
 * runs before routing (401 before any 404/405), authorisation after it.
 * With no token loaded /v1 is open, which tokens_validate allows only on
 * a loopback listen address. Loop thread only.
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

/* Whether the path needs a token: everything under /v1, and /metrics
 * unless auth.metrics_open. Decided on the raw path, before routing, so a
 * client without a token learns nothing about which routes exist. */
static int path_protected(const struct api_req *req)
{
    const char *u = req->url;
    if (strncmp(u, "/v1", 3) == 0 && (u[3] == '/' || u[3] == '\0' || u[3] == '?'))
        return 1;
    return strcmp(u, "/metrics") == 0 && !req->app->cfg.auth_metrics_open;
}

int api__auth_authenticate(struct api_req *req)
{
    const struct config *c = &req->app->cfg;
    req->auth_read_only = 0;
    if (!path_protected(req))
        return 0;
    if (req->app->auth_tokens_loaded == 0)
        return 0; /* no token: open, allowed on loopback only (tokens_validate) */
    const struct tokens *ft = &req->app->file_tokens;
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
    req->auth_read_only = !rw;
    return 0;
}

int api__auth_authorize(struct api_req *req)
{
    if (!req->auth_read_only || !req->route)
        return 0;
    if (req->route->is_read)
        return 0;
    api_reply_problem(req, 403, "forbidden", "Forbidden", NULL,
                      "a read-only token may only read (GET, HEAD, POST /v1/recommend)");
    return -EACCES;
}
