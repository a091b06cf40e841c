/*
 * libmicrohttpd driven from the libuv loop (see server.h and
 * docs/architecture.md). MHD runs in external mode with its own epoll set;
 * a uv_poll watches that epoll fd and a uv_timer follows MHD_get_timeout,
 * so MHD_run() is only called on the loop thread. Requests are routed on
 * their first callback, bodies streamed or buffered per route, and replies
 * queued on the last callback (or after a resume, for async handlers).
 *
 * Connection budget (slowloris): every connection is tracked from accept
 * (MHD_OPTION_NOTIFY_CONNECTION). One waiting for request headers, fresh
 * or kept alive between requests, sits in a FIFO; it must deliver complete
 * headers within server.header_timeout or is shut down (MHD's own timeout
 * counts inactivity only, so a byte every few seconds would hold it
 * forever). When a new connection takes its address over
 * server.max_connections_per_ip, or the total over server.max_connections,
 * the oldest header-waiting connection (of that address, or of anyone) is
 * closed to make room; only when every connection is busy with a request
 * is the new one refused. So idle and trickling connections can never lock
 * out a client that sends a whole request. All of it on the loop thread.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "api/work.h"
#include "base/clock.h"
#include "base/thread.h"
#include "conf/app.h"
#include "base/log.h"

/* libmicrohttpd's per-connection pool: it holds the request line and
 * headers and the read buffer that body chunks come from, and MHD clears it
 * for every request on a kept-alive connection, so its size is a per-request
 * cost (256 KiB cost ~30% of a similar-items request). 16 KiB allows ~8 KiB
 * of headers (more is 431, as common proxies do) and ~8 KiB body chunks. */
#define SERVER_CONNECTION_MEMORY (16 * 1024)

/* MHD's own connection limits sit this far above ours: a connection we
 * shut down counts for MHD until the run after next closes it, and MHD
 * accepts up to 10 connections per run. */
#define SERVER_LIMIT_SLACK 64

/* How often the summary of closed/refused connections may be logged. */
#define SERVER_SUMMARY_MS 10000

/* One open connection (owned by the server, freed on MHD's CLOSED). */
struct api_conn {
    struct api_conn *prev, *next;   /* all open connections */
    struct api_conn *wprev, *wnext; /* the header-waiting FIFO */
    struct MHD_Connection *mhd;
    int fd;
    int waiting;            /* in the FIFO: no request headers yet */
    int closing;            /* shut down by us; MHD closes it on its next run */
    uint64_t waiting_since; /* uv_now when the header wait began */
    unsigned char addr[16]; /* client address, IPv4 as ::ffff:a.b.c.d */
};

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
    /* connection budget */
    struct api_conn *conns;                          /* all open connections */
    struct api_conn *wait_head, *wait_tail;          /* header-waiting, oldest first */
    unsigned live;                                   /* open and not being closed by us */
    uint64_t n_header_timeout, n_evicted, n_refused; /* since start */
    uint64_t logged_timeout, logged_evicted, logged_refused;
    uint64_t last_summary;
    struct api_work_queue work; /* request steps on the pool (api/work.h) */
};

struct api_work_queue *api__work_queue(struct app *app)
{
    return &app->server->work;
}

static void server__run(struct api_server *s);

static void on_timer(uv_timer_t *t)
{
    server__run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    server__run(p->data);
}

/* ---- connection budget ---- */

static void wait_push(struct api_server *s, struct api_conn *c)
{
    if (c->waiting || c->closing)
        return;
    c->waiting = 1;
    c->waiting_since = uv_now(s->app->loop);
    c->wnext = NULL;
    c->wprev = s->wait_tail;
    if (s->wait_tail)
        s->wait_tail->wnext = c;
    else
        s->wait_head = c;
    s->wait_tail = c;
}

static void wait_remove(struct api_server *s, struct api_conn *c)
{
    if (!c->waiting)
        return;
    c->waiting = 0;
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        s->wait_head = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    else
        s->wait_tail = c->wprev;
    c->wprev = c->wnext = NULL;
}

/* Closes a connection from our side: shutdown() wakes MHD's epoll, and
 * MHD's next run sees end-of-file and closes it. */
static void conn_close(struct api_server *s, struct api_conn *c)
{
    if (c->closing)
        return;
    wait_remove(s, c);
    c->closing = 1;
    s->live--;
    shutdown(c->fd, SHUT_RDWR);
}

/* Oldest header-waiting connection other than except, of address addr
 * (NULL: any address). */
static struct api_conn *oldest_waiting(struct api_server *s, const unsigned char *addr,
                                       const struct api_conn *except)
{
    for (struct api_conn *c = s->wait_head; c; c = c->wnext)
        if (c != except && (!addr || memcmp(c->addr, addr, 16) == 0))
            return c;
    return NULL;
}

/* Makes room for the new connection c under limit: closes the oldest
 * waiting connection of the same kind, or c itself when all are busy. */
static void conn_make_room(struct api_server *s, struct api_conn *c, const unsigned char *addr)
{
    struct api_conn *victim = oldest_waiting(s, addr, c);
    if (victim) {
        s->n_evicted++;
        conn_close(s, victim);
    } else {
        s->n_refused++;
        conn_close(s, c);
    }
}

static unsigned conns_from(const struct api_server *s, const unsigned char *addr)
{
    unsigned n = 0;
    for (const struct api_conn *c = s->conns; c; c = c->next)
        n += !c->closing && memcmp(c->addr, addr, 16) == 0;
    return n;
}

static void conn_started(struct api_server *s, struct MHD_Connection *mc, void **ctx)
{
    const union MHD_ConnectionInfo *fdi =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct api_conn *c = calloc(1, sizeof *c);
    if (!c) {
        if (fdi)
            shutdown(fdi->connect_fd, SHUT_RDWR);
        return;
    }
    c->mhd = mc;
    c->fd = fdi ? fdi->connect_fd : -1;
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ai ? ai->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        c->addr[10] = c->addr[11] = 0xff;
        memcpy(c->addr + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        memcpy(c->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    *ctx = c;
    s->live++;
    wait_push(s, c);
    const struct config *cfg = &s->app->cfg;
    /* per address first: room made there is room in the total as well;
     * counting only pays when an address could be over its limit */
    if (s->live > (unsigned)cfg->max_connections_per_ip &&
        conns_from(s, c->addr) > (unsigned)cfg->max_connections_per_ip)
        conn_make_room(s, c, c->addr);
    if (!c->closing && s->live > (unsigned)cfg->max_connections)
        conn_make_room(s, c, NULL);
}

static void conn_closed(struct api_server *s, struct api_conn *c)
{
    wait_remove(s, c);
    if (!c->closing)
        s->live--;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct api_server *s = cls;
    ASSERT_LOOP_THREAD();
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        conn_started(s, mc, socket_context);
    else if (*socket_context)
        conn_closed(s, *socket_context);
    if (code != MHD_CONNECTION_NOTIFY_STARTED)
        *socket_context = NULL;
}

static struct api_conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

/* Shuts down connections whose header wait is over server.header_timeout;
 * returns the ms until the next one is due (UINT64_MAX: none waits). */
static uint64_t sweep_waiting(struct api_server *s)
{
    uint64_t now = uv_now(s->app->loop);
    uint64_t limit = (uint64_t)s->app->cfg.header_timeout * 1000;
    while (s->wait_head && now - s->wait_head->waiting_since >= limit) {
        s->n_header_timeout++;
        conn_close(s, s->wait_head);
    }
    if (now - s->last_summary >= SERVER_SUMMARY_MS &&
        (s->n_header_timeout != s->logged_timeout || s->n_evicted != s->logged_evicted ||
         s->n_refused != s->logged_refused)) {
        /* one line per period, however hard the flood */
        log_warn("server: in the last %llus closed %llu connection(s) without request headers "
                 "after %llds, closed %llu waiting connection(s) to make room, refused %llu "
                 "(limits: %lld total, %lld per address)",
                 (unsigned long long)((now - s->last_summary) / 1000),
                 (unsigned long long)(s->n_header_timeout - s->logged_timeout),
                 (long long)s->app->cfg.header_timeout,
                 (unsigned long long)(s->n_evicted - s->logged_evicted),
                 (unsigned long long)(s->n_refused - s->logged_refused),
                 (long long)s->app->cfg.max_connections,
                 (long long)s->app->cfg.max_connections_per_ip);
        s->logged_timeout = s->n_header_timeout;
        s->logged_evicted = s->n_evicted;
        s->logged_refused = s->n_refused;
        s->last_summary = now;
    }
    if (!s->wait_head)
        return UINT64_MAX;
    return s->wait_head->waiting_since + limit - now;
}

/* Runs MHD once, enforces the header deadline, and re-arms the timer for
 * whichever comes first: MHD's next timeout or the next header deadline. */
static void server__run(struct api_server *s)
{
    if (!s->mhd)
        return;
    ASSERT_LOOP_THREAD();
    MHD_run(s->mhd);
    uint64_t due = sweep_waiting(s);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(s->mhd, &ms) == MHD_YES && ms < due)
        due = ms;
    if (due != UINT64_MAX)
        uv_timer_start(&s->timer, on_timer, due, 0);
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

/* The metrics label of each route: the index of the first route with the
 * same pattern (GET and POST /v1/playlists share one), api_routes_count
 * for "unmatched". Filled once, on the loop thread. */
static int route_labels[64];

static int route_label_of(size_t i)
{
    static int ready;
    if (!ready) {
        for (size_t r = 0; r < api_routes_count && r < 64; r++) {
            route_labels[r] = (int)r;
            for (size_t q = 0; q < r; q++)
                if (strcmp(api_routes[q].pattern, api_routes[r].pattern) == 0) {
                    route_labels[r] = (int)q;
                    break;
                }
        }
        ready = 1;
    }
    return i < 64 ? route_labels[i] : (int)api_routes_count;
}

enum route_outcome { ROUTE_FOUND, ROUTE_BAD_PATH, ROUTE_NOT_ALLOWED, ROUTE_NOT_FOUND };

/* Finds the route of req (req->route and its parameters on ROUTE_FOUND),
 * without answering: authentication comes first. allow gets the methods of
 * a path that matched with another method. */
static enum route_outcome route_find(struct api_req *req, char *allow, size_t allow_size)
{
    const char *m = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    int path_matched = -1;
    allow[0] = '\0';
    for (size_t i = 0; i < api_routes_count; i++) {
        const struct api_route *r = &api_routes[i];
        struct api_req probe = {0};
        int rc = route_match(r->pattern, req->url, &probe);
        if (rc == 0)
            continue;
        if (rc < 0)
            return ROUTE_BAD_PATH;
        if (strcmp(r->method, m) == 0) {
            req->route = r;
            req->route_name = r->pattern;
            req->route_label = route_label_of(i);
            memcpy(req->params, probe.params, sizeof probe.params);
            req->n_params = probe.n_params;
            return ROUTE_FOUND;
        }
        if (path_matched < 0)
            path_matched = (int)i;
        if (!strstr(allow, r->method) && strlen(allow) + 16 < allow_size) {
            if (allow[0])
                strcat(allow, ", ");
            strcat(allow, r->method);
            if (strcmp(r->method, "GET") == 0)
                strcat(allow, ", HEAD");
        }
        for (int k = 0; k < probe.n_params; k++)
            free(probe.params[k]);
    }
    if (path_matched >= 0) {
        /* an authenticated client's 405 counts under the route it named */
        req->route_name = api_routes[path_matched].pattern;
        req->route_label = route_label_of((size_t)path_matched);
        return ROUTE_NOT_ALLOWED;
    }
    return ROUTE_NOT_FOUND;
}

/* Answers a routing failure found by route_find. */
static void route_reply_error(struct api_req *req, enum route_outcome o, const char *allow)
{
    switch (o) {
    case ROUTE_BAD_PATH:
        api_reply_problem(req, 400, "bad-path", "Bad Request", NULL,
                          "the path has an invalid percent-escape");
        break;
    case ROUTE_NOT_ALLOWED:
        api_add_header(req, "Allow", allow);
        api_reply_problem(req, 405, "method-not-allowed", "Method Not Allowed", NULL,
                          "%.32s is not allowed on this path; allowed: %s", req->method, allow);
        break;
    default:
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no such route: %.300s",
                          req->url);
    }
}

/* A route without a body takes none (API.md: GET, HEAD, DELETE and the
 * bodiless POSTs): a declared one is refused before any of it is read,
 * rather than silently ignored. */
static void check_no_body(struct api_req *req)
{
    const char *cl =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if ((cl && strspn(cl, "0 \t") != strlen(cl)) || te)
        api_reply_problem(req, 400, "body-not-allowed", "Bad Request", NULL,
                          "%.16s %.200s takes no request body (got %s%.32s)", req->method,
                          req->route_name,
                          cl ? "Content-Length: " : "Transfer-Encoding: ", cl ? cl : te);
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
    req->route_label = (int)api_routes_count;
    s->active++;
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && request_id_valid(rid))
        snprintf(req->request_id, sizeof req->request_id, "%s", rid);
    else
        snprintf(req->request_id, sizeof req->request_id, "%08x%08llx", s->id_salt,
                 (unsigned long long)++s->next_id);
    return req;
}

static void req_destroy(struct api_req *req)
{
    if (req->state_destroy && req->state)
        req->state_destroy(req->state);
    for (int i = 0; i < req->n_params; i++)
        free(req->params[i]);
    api__headers_deinit(req);
    api__query_deinit(req);
    if (req->response)
        MHD_destroy_response(req->response);
    json_decref(req->json);
    free(req->json_work);
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

/* The largest JSON body the route takes: its own bound, capped by
 * limits.max_json_body. */
static int64_t json_limit(const struct api_req *req)
{
    int64_t cfg = req->app->cfg.max_json_body, own = req->route->json_max;
    return own > 0 && own < cfg ? own : cfg;
}

static void reply_json_too_large(struct api_req *req)
{
    int64_t limit = json_limit(req);
    api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                      "JSON body over %lld bytes, the limit of %s %s%s", (long long)limit,
                      req->route->method, req->route->pattern,
                      limit == req->app->cfg.max_json_body ? " (limits.max_json_body)" : "");
}

static int body_append(struct api_req *req, const char *data, size_t len)
{
    if ((int64_t)(req->body_len + len) > json_limit(req)) {
        reply_json_too_large(req);
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

/* ---- JSON bodies over API_JSON_INLINE_MAX: parsed on the pool ---- */

static void json_parse_run(struct api_work *w)
{
    struct api_req *req = w->req; /* suspended: only this thread touches it */
    req->json = json_loadb(req->body ? req->body : "", req->body_len, 0, &req->json_err);
    req->json_parsed = 1;
}

static void json_parse_done(struct api_work *w)
{
    struct api_req *req = w->req;
    free(req->body); /* parsed: the text is no longer needed (body_len stays) */
    req->body = NULL;
    req->body_cap = 0;
    req->route->handle(req); /* api_body_json hands over req->json */
}

static void json_parse_offload(struct api_req *req)
{
    req->json_work = calloc(1, sizeof *req->json_work);
    if (!req->json_work) {
        api_reply_oom(req);
        return;
    }
    api_work_submit(req, req->json_work, json_parse_run, json_parse_done);
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
        struct api_conn *c = conn_of(conn);
        if (c)
            wait_remove(s, c); /* headers complete: the header deadline is met */
        char allow[128];
        enum route_outcome o = route_find(req, allow, sizeof allow);
        if (api__auth_authenticate(req) != 0) {
            if (o != ROUTE_FOUND) { /* unauthenticated junk is not counted per route */
                req->route_name = "unmatched";
                req->route_label = (int)api_routes_count;
            }
            return queue(req);
        }
        if (o != ROUTE_FOUND)
            route_reply_error(req, o, allow);
        if (!req->response && api__auth_authorize(req) != 0)
            return queue(req);
        if (!req->response && api__replica_refuse(req) != 0)
            return queue(req);
        if (!req->response && req->route->body == API_BODY_NONE)
            check_no_body(req);
        if (!req->response)
            check_query(req);
        if (!req->response && req->route->body == API_BODY_JSON)
            check_json_type(req);
        if (!req->response && req->route->body == API_BODY_JSON) {
            const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
            /* Over limits.max_json_body: refused at once. Over the route's
             * own, lower bound: refused at the end of the body, which is
             * discarded as it comes (not buffered), so a client still
             * sending gets the 413 rather than a reset connection. */
            if (cl && strtoll(cl, NULL, 10) > req->app->cfg.max_json_body)
                reply_json_too_large(req);
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
        else {
            api_reply_problem(req, 400, "body-not-allowed", "Bad Request", NULL,
                              "%.16s %.200s takes no request body", req->method, req->route_name);
            rc = -EINVAL;
        }
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
        if (req->route->body == API_BODY_STREAM && !req->route->handle)
            api_upload_finish(req);
        else if (req->route->body == API_BODY_JSON && req->body_len > API_JSON_INLINE_MAX)
            json_parse_offload(req);
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
    log_info("http %.32s %s %d %.3fms rid=%s in=%llu%s", req->method, req->route_name, status, ms,
             req->request_id, (unsigned long long)req->body_bytes, how);
    api__metrics_observe(req, status, ms / 1000.0);
    req_destroy(req);
    struct api_server *s = cls;
    s->active--;
    *con_cls = NULL;
    struct api_conn *c = conn_of(conn);
    if (c && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        wait_push(s, c); /* kept alive: the next request's headers are due */
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
    api_work_queue_init(&s->work, app->loop);
    /* jansson's one global, its hash seed, is set here on the loop before
     * any request can parse a body on the pool (api/work.h); a no-op when
     * an object was created before */
    json_object_seed(0);
    app->server = s;
    /* TURBO: optimistic reads and fewer syscalls per request (epoll only) */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->last_summary = uv_now(app->loop);
    /* MHD's limits are the backstop; ours (conn_started) close the oldest
     * header-waiting connection first, which MHD's cannot */
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)app->cfg.max_connections + SERVER_LIMIT_SLACK, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)app->cfg.max_connections_per_ip + SERVER_LIMIT_SLACK,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_TIMEOUT,
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

void api_server_stats(const struct api_server *s, struct api_server_stats *out)
{
    out->open = s->live;
    out->header_timeouts = s->n_header_timeout;
    out->evicted = s->n_evicted;
    out->refused = s->n_refused;
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
