/*
 * Reply helpers for handlers: JSON and problem+json bodies, extra headers,
 * query and header access. (The id/UTF-8 checks live in base/text.c.)
 * Every response gets X-Request-Id here, so no path can forget it.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "conf/app.h"

struct api_header {
    char *name, *value;
    struct api_header *next;
};

struct api_strnode {
    char *s;
    struct api_strnode *next;
};

const char *api_param(struct api_req *req, int i)
{
    return i < req->n_params ? req->params[i] : NULL;
}

const char *api_header(struct api_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *api_query(struct api_req *req, const char *key)
{
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
    if (!raw)
        return NULL;
    char *dec = api__percent_decode(raw, strlen(raw), 1);
    if (!dec)
        return NULL;
    struct api_strnode *n = malloc(sizeof *n);
    if (!n) {
        free(dec);
        return NULL;
    }
    n->s = dec;
    n->next = req->query_copies;
    req->query_copies = n;
    return dec;
}

void api__query_deinit(struct api_req *req)
{
    while (req->query_copies) {
        struct api_strnode *n = req->query_copies;
        req->query_copies = n->next;
        free(n->s);
        free(n);
    }
}

int api_query_int(struct api_req *req, const char *key, int64_t def, int64_t min, int64_t max,
                  int64_t *out)
{
    const char *v = api_query(req, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    /* digits with an optional '-': no '+', no spaces, nothing after */
    long long x = (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) ? strtoll(v, &end, 10) : 0;
    if (!(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) || end == v || *end || errno == ERANGE ||
        x < min || x > max) {
        json_t *extra = json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", key, "detail",
                                  "must be an integer in range");
        api_reply_problem(req, 400, "bad-parameter", "Bad Request", extra,
                          "query parameter %s must be an integer in %lld..%lld", key,
                          (long long)min, (long long)max);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

void api_add_header(struct api_req *req, const char *name, const char *value)
{
    struct api_header *h = malloc(sizeof *h);
    if (!h)
        return;
    h->name = strdup(name);
    h->value = strdup(value);
    h->next = req->headers;
    req->headers = h;
}

void api__headers_deinit(struct api_req *req)
{
    while (req->headers) {
        struct api_header *h = req->headers;
        req->headers = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
}

void api_reply_response(struct api_req *req, int status, struct MHD_Response *resp)
{
    if (req->response) /* a second reply replaces the first */
        MHD_destroy_response(req->response);
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    for (struct api_header *h = req->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    req->response = resp;
    req->status = status;
}

static void reply_text(struct api_req *req, int status, const char *ctype, char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    api_reply_response(req, status, resp);
}

void api_reply_json(struct api_req *req, int status, json_t *body)
{
    api_reply_json_flags(req, status, body, 0);
}

void api_reply_json_flags(struct api_req *req, int status, json_t *body, size_t flags)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | flags) : NULL;
    json_decref(body);
    if (!text) {
        text = strdup("{\"type\":\"urn:itemvec:problem:internal\",\"title\":\"Internal Server "
                      "Error\",\"status\":500,\"detail\":\"cannot encode the answer\"}");
        reply_text(req, 500, "application/problem+json", text);
        return;
    }
    size_t n = strlen(text);
    char *nl = realloc(text, n + 2); /* newline-terminated: nicer for curl users */
    if (nl) {
        nl[n] = '\n';
        nl[n + 1] = '\0';
        text = nl;
    }
    reply_text(req, status, "application/json", text);
}

void api_reply_problem(struct api_req *req, int status, const char *slug, const char *title,
                       json_t *extra, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    char type[128];
    snprintf(type, sizeof type, "urn:itemvec:problem:%s", slug);
    json_t *p = json_object();
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(title));
    json_object_set_new(p, "status", json_integer(status));
    json_t *d = api_json_str(detail);
    json_object_set_new(p, "detail", json_is_null(d) ? json_string("(detail not UTF-8)") : d);
    if (d && json_is_null(d))
        json_decref(d);
    json_object_set_new(p, "instance", api_json_str(req->url));
    if (extra) {
        json_object_update(p, extra);
        json_decref(extra);
    }
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (!text)
        text = strdup("{\"title\":\"Internal Server Error\",\"status\":500}");
    size_t n = strlen(text);
    char *nl = realloc(text, n + 2);
    if (nl) {
        nl[n] = '\n';
        nl[n + 1] = '\0';
        text = nl;
    }
    reply_text(req, status, "application/problem+json", text);
}

void api_reply_empty(struct api_req *req, int status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    api_reply_response(req, status, resp);
}

json_t *api_json_str(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    return j ? j : json_null();
}

void api_reply_oom(struct api_req *req)
{
    api_add_header(req, "Retry-After", "1"); /* a transient condition: try again */
    api_reply_problem(req, 503, "out-of-memory", "Service Unavailable", NULL, "out of memory");
}

json_t *api_body_json(struct api_req *req)
{
    json_error_t jerr;
    json_t *doc;
    if (req->json_parsed) { /* on the pool, by server.c */
        doc = req->json;
        req->json = NULL;
        jerr = req->json_err;
    } else {
        doc = json_loadb(req->body ? req->body : "", req->body_len, 0, &jerr);
    }
    if (!doc)
        api_reply_problem(req, 400, "parse-error", "Bad Request",
                          json_pack("{s:i,s:i}", "line", jerr.line, "column", jerr.column),
                          "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                          jerr.text);
    return doc;
}

void *api_state_create(struct api_req *req, size_t size, void (*free_fn)(void *))
{
    void *st = calloc(1, size);
    if (!st) {
        api_reply_oom(req);
        return NULL;
    }
    req->state = st;
    req->state_destroy = free_fn ? free_fn : free;
    return st;
}

int api_body_encoding(struct api_req *req, int *gz)
{
    const char *ce = api_header(req, "Content-Encoding");
    *gz = 0;
    if (ce && (strcasecmp(ce, "gzip") == 0 || strcasecmp(ce, "x-gzip") == 0)) {
        *gz = 1;
    } else if (ce && strcasecmp(ce, "identity") != 0) {
        api_reply_problem(req, 415, "unsupported-encoding", "Unsupported Media Type", NULL,
                          "Content-Encoding \"%.60s\" is not supported; use gzip or none", ce);
        return -ENOTSUP;
    }
    const char *cl = api_header(req, "Content-Length");
    if (!*gz && cl && strtoll(cl, NULL, 10) > req->app->cfg.max_body_size) {
        api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                          "body of %.30s bytes is over limits.max_body_size (%lld bytes)", cl,
                          (long long)req->app->cfg.max_body_size);
        return -EFBIG;
    }
    return 0;
}
