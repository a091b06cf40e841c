/*
 * The dashboard's files (GET /ui/, /ui/{file}; /ui redirects to /ui/) and
 * the API description (GET /v1/openapi.json), served from the table that
 * the build embeds into the binary (api/assets.h): no file is read at run
 * time and nothing is fetched from elsewhere. Each answer carries a strong
 * ETag (If-None-Match → 304) and Cache-Control: no-cache, so a browser
 * revalidates and gets a new build's files at once; gzip when the client
 * accepts it. Loop thread; the bytes are static, nothing is allocated but
 * the MHD response.
 *
 * Auth: /ui/ is the page's code, the same for every itemvecd of a version
 * and holding no data, so it is served without a token (a browser cannot
 * send a bearer token when it navigates); everything the page shows comes
 * from /v1 with the token the page asks for (docs/dashboard.md).
 * /v1/openapi.json is a /v1 route and takes the token like the others.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/assets.h"

/* The page's only sources are itself: no inline script, no third party. */
#define UI_CSP                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "        \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"

static const struct api_asset *asset_find(const char *path)
{
    for (size_t i = 0; i < api_assets_count; i++)
        if (strcmp(api_assets[i].path, path) == 0)
            return &api_assets[i];
    return NULL;
}

/* Whether a comma-separated header list names token (case-insensitive),
 * ignoring parameters; with quality, a token given q=0 does not count. */
static int list_has(const char *list, const char *token)
{
    size_t tn = strlen(token);
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",;");
        size_t m = n;
        while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        const char *end = p + strcspn(p, ",");
        if (m == tn && strncasecmp(p, token, tn) == 0) {
            const char *q = p + n;
            int zero = 0;
            if (*q == ';') { /* e.g. "gzip;q=0" or "gzip; q=0.000" */
                q++;
                while (*q == ' ')
                    q++;
                if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=')
                    zero = strtod(q + 2, NULL) <= 0.0;
            }
            if (!zero)
                return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* If-None-Match (RFC 9110 13.1.2: weak comparison): "*" or any listed tag
 * equal to etag, a W/ prefix ignored. */
static int etag_matches(const char *inm, const char *etag)
{
    size_t en = strlen(etag);
    const char *p = inm;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t n = strcspn(p, ", \t");
        if (n == en && memcmp(p, etag, en) == 0)
            return 1;
        p += n;
    }
    return 0;
}

static void reply_asset(struct api_req *req, const struct api_asset *a, int ui)
{
    const char *ae = api_header(req, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    int gz = a->gz && ae && (list_has(ae, "gzip") || list_has(ae, "x-gzip"));
    const char *etag = gz ? a->etag_gz : a->etag;
    const char *inm = api_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
    api_add_header(req, MHD_HTTP_HEADER_ETAG, etag);
    api_add_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    api_add_header(req, "X-Content-Type-Options", "nosniff");
    if (a->gz)
        api_add_header(req, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (ui) {
        api_add_header(req, "Content-Security-Policy", UI_CSP);
        api_add_header(req, "Referrer-Policy", "no-referrer");
        api_add_header(req, "X-Frame-Options", "DENY");
    }
    if (inm && etag_matches(inm, etag)) {
        api_reply_empty(req, 304);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        gz ? a->gz_len : a->len, (void *)(gz ? a->gz : a->data), MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        api_reply_oom(req);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
    if (gz)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    api_reply_response(req, 200, resp);
}

void api_ui_redirect(struct api_req *req)
{
    api_add_header(req, MHD_HTTP_HEADER_LOCATION, "/ui/");
    api_reply_empty(req, 308);
}

void api_ui_get(struct api_req *req)
{
    const char *file = api_param(req, 0);
    char path[300];
    if (!file)
        file = "index.html";
    snprintf(path, sizeof path, "/ui/%.250s", file);
    const struct api_asset *a = strlen(file) <= 250 ? asset_find(path) : NULL;
    if (!a) {
        api_reply_problem(req, 404, "not-found", "Not Found", NULL,
                          "no such dashboard file; the dashboard is at /ui/");
        return;
    }
    reply_asset(req, a, 1);
}

void api_openapi_get(struct api_req *req)
{
    const struct api_asset *a = asset_find("/v1/openapi.json");
    if (!a) {
        api_reply_problem(req, 404, "not-found", "Not Found", NULL,
                          "this build has no API description");
        return;
    }
    reply_asset(req, a, 0);
}
