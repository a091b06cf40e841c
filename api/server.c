/*
 * libmicrohttpd driven from the libuv loop (see server.h and
 * docs/architecture.md). MHD runs in external mode with its own epoll set;
 * a uv_poll watches that epoll fd and a uv_timer follows MHD_get_timeout,
 * so MHD_run() is only called on the loop thread. Requests are routed on
 * their first callback, bodies streamed or buffered per route, and replies
 * queued on the last callback (or after a resume, for async handlers).
 */
#include "api/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "base/clock.h"
#include "conf/app.h"
#include "base/log.h"

/* libmicrohttpd's per-connection pool: it holds the request line and
 * headers and the read buffer that body chunks come from, and MHD clears it
 * for every request on a kept-alive connection, so its size is a per-request
 * cost (256 KiB cost ~30% of a similar-items request). 16 KiB allows ~8 KiB
 * of headers (more is 431, as common proxies do) and ~8 KiB body chunks. */
#define SERVER_CONNECTION_MEMORY (16 * 1024)

struct api_server {
    struct app *app;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int port;
    int quiesced;
    unsigned suspended;
    unsigned active; /* requests between first callback and completion */
    uint64_t next_id;
    uint32_t id_salt;
};

static void server__run(struct api_server *s);

static void on_timer(uv_timer_t *t)
{
    server__run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    server__run(p->data);
}

/* Runs MHD once and re-arms the timer from MHD's next timeout. */
static void server__run(struct api_server *s)
{
    if (!s->mhd)
        return;
    MHD_run(s->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
        uv_timer_start(&s->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&s->timer);
}

/* ---- request ids ---- */

static int request_id_valid(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return 0;
    }
    return 1;
}

/* ---- routing ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 32;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %XX in [s, s+len) into a new string; '+' is a space when
 * plus_space. Returns NULL on a bad escape or an embedded NUL. */
char *api__percent_decode(const char *s, size_t len, int plus_space)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                goto bad;
            int hi = s[i + 1], lo = s[i + 2];
            int h = hexval(hi), l = hexval(lo);
            if (h < 0 || l < 0)
                goto bad;
            c = (char)(h * 16 + l);
            if (c == '\0')
                goto bad;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        out[j++] = c;
    }
    out[j] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* Matches url against pattern, filling params. Returns 1 on match, 0 on
 * no match, -1 on a matching shape with an undecodable parameter. */
static int route_match(const char *pattern, const char *url, struct api_req *req)
{
    const char *p = pattern, *u = url;
    int n = 0;
    char *params[API_MAX_PARAMS] = {0};
    int rc = 1;
    while (*p && *u) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *ue = strchr(u, '/');
            if (!ue)
                ue = u + strlen(u);
            if (ue == u || n == API_MAX_PARAMS) {
                rc = 0;
                goto out;
            }
            params[n] = api__percent_decode(u, (size_t)(ue - u), 0);
            if (!params[n]) {
                rc = -1;
                goto out;
            }
            n++;
            p = pe + 1;
            u = ue;
        } else if (*p == *u) {
            p++;
            u++;
        } else {
            rc = 0;
            goto out;
        }
    }
    if (*p || *u)
        rc = 0;
out:
    if (rc == 1) {
        memcpy(req->params, params, sizeof params);
        req->n_params = n;
    } else {
        for (int i = 0; i < n; i++)
            free(params[i]);
    }
    return rc;
}

static void route_request(struct api_req *req)
{
    const char *m = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    char allow[128] = "";
    int path_matched = 0;
    for (size_t i = 0; i < api_routes_count; i++) {
        const struct api_route *r = &api_routes[i];
        struct api_req probe = {0};
        int rc = route_match(r->pattern, req->url, &probe);
        if (rc == 0)
            continue;
        if (rc < 0) {
            req->route_name = r->pattern;
            api_reply_problem(req, 400, "bad-path", "Bad Request", NULL,
                              "the path has an invalid percent-escape");
            return;
        }
        path_matched = 1;
        if (strcmp(r->method, m) == 0) {
            req->route = r;
            req->route_name = r->pattern;
            memcpy(req->params, probe.params, sizeof probe.params);
            req->n_params = probe.n_params;
            return;
        }
        if (!strstr(allow, r->method)) {
            if (allow[0])
                strcat(allow, ", ");
            strcat(allow, r->method);
            if (strcmp(r->method, "GET") == 0)
                strcat(allow, ", HEAD");
        }
        req->route_name = r->pattern;
        for (int k = 0; k < probe.n_params; k++)
            free(probe.params[k]);
    }
    if (path_matched) {
        api_add_header(req, "Allow", allow);
        api_reply_problem(req, 405, "method-not-allowed", "Method Not Allowed", NULL,
                          "%s is not allowed on this path; allowed: %s", req->method, allow);
        return;
    }
    req->route_name = "unmatched";
    api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no such route: %s",
                      req->url);
}

/* ---- request lifecycle ---- */

static struct api_req *req_create(struct api_server *s, struct MHD_Connection *conn,
                                  const char *url, const char *method)
{
    struct api_req *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->app = s->app;
    req->conn = conn;
    req->url = url;
    req->method = method;
    req->start_ns = clock_mono_ns();
    req->route_name = "unmatched";
    s->active++;
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && request_id_valid(rid))
        snprintf(req->request_id, sizeof req->request_id, "%s", rid);
    else
        snprintf(req->request_id, sizeof req->request_id, "%08x%08llx", s->id_salt,
                 (unsigned long long)++s->next_id);
    return req;
}

static void req_free(struct api_req *req)
{
    if (req->state_free && req->state)
        req->state_free(req->state);
    for (int i = 0; i < req->n_params; i++)
        free(req->params[i]);
    api__headers_free(req);
    api__query_free(req);
    if (req->response)
        MHD_destroy_response(req->response);
    free(req->body);
    free(req);
}

static enum MHD_Result queue(struct api_req *req)
{
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)req->status, req->response);
    MHD_destroy_response(req->response);
    req->response = NULL;
    return r;
}

static int body_append(struct api_req *req, const char *data, size_t len)
{
    int64_t limit = req->app->cfg.max_json_body;
    if ((int64_t)(req->body_len + len) > limit) {
        api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                          "JSON body over limits.max_json_body (%lld bytes)", (long long)limit);
        return -EFBIG;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        char *nb = realloc(req->body, cap);
        if (!nb) {
            api_reply_problem(req, 503, "out-of-memory", "Service Unavailable", NULL,
                              "cannot buffer the body");
            return -ENOMEM;
        }
        req->body = nb;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

/* Query values are decoded lazily by api_query; refuse the request up
 * front when one cannot be decoded (bad escape, NUL, invalid UTF-8), so no
 * handler mistakes it for an absent parameter. */
static enum MHD_Result query_value_ok(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct api_req *req = cls;
    const char *bad = NULL;
    char *dec = value ? api__percent_decode(value, strlen(value), 1) : NULL;
    if (value && !dec)
        bad = "is not valid percent-encoding";
    else if (dec && !text_utf8_valid(dec, strlen(dec)))
        bad = "is not valid UTF-8";
    free(dec);
    if (!bad)
        return MHD_YES;
    char name[64];
    snprintf(name, sizeof name, "%s", key ? key : "");
    api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                      json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", name, "detail", bad),
                      "query parameter %s %s", name, bad);
    return MHD_NO; /* stop iterating */
}

static void check_query(struct api_req *req)
{
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_value_ok, req);
}

/* JSON bodies must say so: application/json or any +json type (parameters
 * such as charset are fine). Anything else, or none, is 415. */
static void check_json_type(struct api_req *req)
{
    const char *ct = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct) {
        size_t n = strcspn(ct, ";");
        while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
            n--;
        if ((n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
            (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0))
            return;
    }
    api_add_header(req, "Accept", "application/json");
    api_reply_problem(req, 415, "unsupported-media-type", "Unsupported Media Type", NULL,
                      "this route takes a JSON body: send Content-Type: application/json "
                      "(got %s%.60s%s)",
                      ct ? "\"" : "", ct ? ct : "none", ct ? "\"" : "");
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct api_server *s = cls;
    struct api_req *req = *con_cls;
    if (!req) {
        req = req_create(s, conn, url, method);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        route_request(req);
        if (!req->response && api__auth_check(req) != 0)
            return queue(req);
        if (!req->response && api__replica_refuse(req) != 0)
            return queue(req);
        if (!req->response)
            check_query(req);
        if (!req->response && req->route->body == API_BODY_JSON)
            check_json_type(req);
        if (!req->response && req->route->body == API_BODY_JSON) {
            const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoll(cl, NULL, 10) > req->app->cfg.max_json_body)
                api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                                  "JSON body over limits.max_json_body (%lld bytes)",
                                  (long long)req->app->cfg.max_json_body);
        }
        if (!req->response && req->route->body == API_BODY_STREAM)
            req->route->body_begin(req);
        if (req->response)
            return queue(req); /* early answer: MHD drops the unread body */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        req->body_bytes += n;
        if (req->response || req->body_failed) {
            /* Discarding after an error; MHD only lets us answer once the
             * body is in. A client that keeps sending far past the limit is
             * disconnected instead. */
            if (req->body_bytes > (uint64_t)req->app->cfg.max_body_size * 2 + (64u << 20))
                return MHD_NO;
            return MHD_YES;
        }
        int rc = 0;
        if (req->route->body == API_BODY_JSON)
            rc = body_append(req, upload_data, n);
        else if (req->route->body == API_BODY_STREAM)
            rc = req->route->body_chunk(req, upload_data, n);
        if (rc < 0)
            req->body_failed = 1;
        return MHD_YES;
    }
    if (req->response)
        return queue(req);
    if (req->suspended)
        return MHD_YES;
    if (!req->handled) {
        req->handled = 1;
        if (req->route->body == API_BODY_STREAM)
            api_upload_finish(req);
        else
            req->route->handle(req);
    }
    if (req->response) {
        req->suspended = 0;
        return queue(req);
    }
    if (req->suspended) {
        req->mhd_suspended = 1;
        s->suspended++;
        MHD_suspend_connection(conn);
        return MHD_YES;
    }
    api_reply_problem(req, 500, "internal", "Internal Server Error", NULL,
                      "the handler produced no answer");
    return queue(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_req *req = *con_cls;
    if (!req)
        return;
    double ms = (double)(clock_mono_ns() - req->start_ns) / 1e6;
    int status = req->status ? req->status : 0;
    const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                      : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timeout)"
                      : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " (client closed)"
                                                                   : " (aborted)";
    log_info("http %s %s %d %.3fms rid=%s in=%llu%s", req->method, req->route_name, status, ms,
             req->request_id, (unsigned long long)req->body_bytes, how);
    api__metrics_observe(req, status, ms / 1000.0);
    req_free(req);
    ((struct api_server *)cls)->active--;
    *con_cls = NULL;
}

static size_t unescape_none(void *cls, struct MHD_Connection *c, char *uri)
{
    /* Keep the path raw: ids may contain %2F; route_match decodes per
     * segment and api_query decodes query values. */
    return strlen(uri);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    log_debug("mhd: %s", buf);
}

/* ---- suspend / resume ---- */

void api_req_suspend(struct api_req *req)
{
    /* Only marked here: on_access suspends the MHD connection after the
     * handler returns, unless the answer came synchronously meanwhile
     * (e.g. the model was already in memory). */
    req->suspended = 1;
}

void api_req_resume(struct api_req *req)
{
    struct api_server *s = req->app->server;
    req->suspended = 0;
    if (!req->mhd_suspended)
        return;
    req->mhd_suspended = 0;
    s->suspended--;
    MHD_resume_connection(req->conn);
    /* MHD picks resumed connections up in its next run; run it from the
     * loop soon (a zero timer) rather than from here, which may be inside
     * another MHD callback. */
    uv_timer_start(&s->timer, on_timer, 0, 0);
}

/* ---- start / stop ---- */

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

struct api_server *api_server_start(struct app *app)
{
    char host[256];
    int port;
    if (config_listen_split(app->cfg.listen, host, sizeof host, &port) != 0)
        return NULL;
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (resolve(host, port, &ss, &sslen) != 0) {
        log_error("server.listen: cannot resolve host %s", host);
        return NULL;
    }
    struct api_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->app = app;
    s->id_salt = (uint32_t)(clock_mono_ns() ^ (uint64_t)getpid() << 16);
    app->server = s;
    /* TURBO: optimistic reads and fewer syscalls per request (epoll only) */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)app->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)app->cfg.connection_timeout, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)SERVER_CONNECTION_MEMORY, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!s->mhd) {
        log_error("server.listen: cannot listen on %s: %s", app->cfg.listen, strerror(errno));
        app->server = NULL;
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    uv_poll_init(app->loop, &s->poll, info->epoll_fd);
    s->poll.data = s;
    uv_poll_start(&s->poll, UV_READABLE, on_poll);
    uv_timer_init(app->loop, &s->timer);
    s->timer.data = s;
    server__run(s);
    return s;
}

int api_server_port(const struct api_server *s)
{
    return s->port;
}

void api_server_quiesce(struct api_server *s)
{
    if (s->quiesced || !s->mhd)
        return;
    s->quiesced = 1;
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    server__run(s);
}

unsigned api_server_connections(const struct api_server *s)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

unsigned api_server_active(const struct api_server *s)
{
    return s->active;
}

unsigned api_server_suspended(const struct api_server *s)
{
    return s->suspended;
}

static void on_close_free(uv_handle_t *h)
{
    struct api_server *s = h->data;
    if (h == (uv_handle_t *)&s->timer)
        free(s);
}

void api_server_stop(struct api_server *s)
{
    if (!s)
        return;
    uv_poll_stop(&s->poll);
    uv_timer_stop(&s->timer);
    MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
    if (s->app->server == s)
        s->app->server = NULL;
    uv_close((uv_handle_t *)&s->poll, NULL);
    uv_close((uv_handle_t *)&s->timer, on_close_free);
}
