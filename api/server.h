/*
 * The HTTP server: libmicrohttpd in "external epoll" mode driven by the
 * libuv loop (a uv_poll on MHD's epoll fd plus a uv_timer for MHD's
 * timeouts), so every request callback runs on the loop thread and no
 * thread is spawned per connection. See docs/architecture.md for why.
 */
#ifndef ITEMVEC_API_SERVER_H
#define ITEMVEC_API_SERVER_H

struct app;
struct api_server;

/* Binds app->cfg.listen and starts serving on app->loop. Returns NULL and
 * logs the reason on failure (address in use, bad host). */
struct api_server *api_server_start(struct app *app);

/* The bound port (useful with port 0). */
int api_server_port(const struct api_server *s);

/* Stops accepting new connections; in-flight requests go on. */
void api_server_quiesce(struct api_server *s);

/* Connections currently open. */
unsigned api_server_connections(const struct api_server *s);

/* The connection budget's counters (docs/operations.md, Security). */
struct api_server_stats {
    unsigned open;                      /* connections open, not being closed by us */
    unsigned long long header_timeouts; /* closed: no headers within header_timeout */
    unsigned long long evicted;         /* closed: oldest header-waiting, to make room */
    unsigned long long refused;         /* closed: at a limit with every connection busy */
};
void api_server_stats(const struct api_server *s, struct api_server_stats *out);

/* Requests in progress (received, not yet completed). */
unsigned api_server_active(const struct api_server *s);

/* Requests suspended waiting for the writer or a job. */
unsigned api_server_suspended(const struct api_server *s);

/* Stops MHD (closing any remaining connection) and frees. NULL no-op. */
void api_server_stop(struct api_server *s);

#endif
