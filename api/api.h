/*
 * Internal interface of the HTTP layer: the request object every handler
 * gets, the route table entry, and the reply helpers. Only api/ files include
 * this (and only they include microhttpd.h).
 *
 * Lifecycle of a request (all on the loop thread):
 *   1. headers arrive → a struct api_req is created and routed;
 *   2. a route with a body gets body_begin, then body_chunk per chunk;
 *   3. at the end of the body handle() runs. It either replies now
 *      (api_reply_*), or calls api_req_suspend() and replies later from a
 *      writer/job callback, which resumes the connection;
 *   4. when MHD reports completion, the access log line is written and the
 *      request (and its handler state) freed.
 */
#ifndef ITEMVEC_API_API_H
#define ITEMVEC_API_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/text.h"

struct app;
struct api_req;
struct MHD_Connection;
struct MHD_Response;
struct api_work;

enum api_body {
    API_BODY_NONE,   /* a body is refused with 400 unless empty */
    API_BODY_JSON,   /* buffered up to limits.max_json_body, parsed by handle() */
    API_BODY_STREAM, /* body_begin/body_chunk see it as it arrives */
};

struct api_route {
    const char *method;  /* "GET" (also serves HEAD), "POST", "PUT", "DELETE" */
    const char *pattern; /* "/v1/playlists/{id}": {..} matches one segment */
    enum api_body body;
    void (*handle)(struct api_req *req);
    /* API_BODY_STREAM only. Return 0 to go on; on error reply (api_reply_*)
     * and return a negative errno: the rest of the body is discarded. */
    int (*body_begin)(struct api_req *req);
    int (*body_chunk)(struct api_req *req, const char *data, size_t len);
    /* 1: the route only reads, so read-only tokens may use it: every GET
     * (and its HEAD), and POST /v1/recommend, a query sent as a body. */
    int is_read;
    /* API_BODY_JSON only: the largest body in bytes (413 beyond), capped by
     * limits.max_json_body; 0 = limits.max_json_body. Bodies are small for
     * most routes, so a tight bound keeps parsing them cheap. */
    int64_t json_max;
};

/* JSON bodies up to this size are parsed on the loop thread (well under a
 * millisecond); larger ones on the pool (api/work.h) while the connection
 * waits, so no body stalls other requests. */
#define API_JSON_INLINE_MAX (64 * 1024)

#define API_MAX_PARAMS 4

struct api_req {
    struct app *app;
    struct MHD_Connection *conn;
    const char *method; /* as sent; HEAD routed as GET */
    const char *url;    /* raw path, not decoded */
    const struct api_route *route;
    const char *route_name; /* template for logs/metrics, e.g. "/v1/playlists/{id}" */
    int route_label;        /* metrics label index: a route pattern, or "unmatched" */
    int auth_read_only;     /* authenticated with a read-only token */
    char *params[API_MAX_PARAMS]; /* decoded path parameters, owned */
    int n_params;
    char request_id[64];
    uint64_t start_ns;

    /* body */
    char *body; /* API_BODY_JSON: the buffered body, NUL-terminated */
    size_t body_len, body_cap;
    uint64_t body_bytes; /* bytes received */
    int body_failed;     /* a reply is ready; discard the rest */
    int json_parsed;     /* the body was parsed off the loop: json / json_err */
    json_t *json;        /* that parse's document (owned until api_body_json) */
    json_error_t json_err;
    struct api_work *json_work;

    /* reply */
    int status;
    struct MHD_Response *response;
    struct api_header *headers; /* to add to the response */
    struct api_strnode *query_copies; /* decoded query values, owned */
    int suspended;     /* the handler answers later */
    int mhd_suspended; /* the MHD connection is suspended */
    int handled;

    /* handler state, freed with the request */
    void *state;
    void (*state_destroy)(void *state);
};

/* Path parameter i (decoded, NUL-terminated), borrowed. */
const char *api_param(struct api_req *req, int i);

/* Query argument, percent-decoded into a request-owned copy; NULL when
 * absent. */
const char *api_query(struct api_req *req, const char *key);

/* Request header value (borrowed), NULL when absent. */
const char *api_header(struct api_req *req, const char *name);

/* Parses an integer query argument. Returns 0 (absent: *out = def), or
 * replies 400 naming the parameter and returns -EINVAL. */
int api_query_int(struct api_req *req, const char *key, int64_t def, int64_t min, int64_t max,
                  int64_t *out);

/* Adds a header to the reply (copied). Call before api_reply_*. */
void api_add_header(struct api_req *req, const char *name, const char *value);

/* Replies with JSON (takes the reference to body). */
void api_reply_json(struct api_req *req, int status, json_t *body);

/* The same with extra json_dumps flags, e.g. JSON_REAL_PRECISION(9) for
 * float32 scores (9 significant digits round-trip a float and print
 * faster and shorter than jansson's default 17). */
void api_reply_json_flags(struct api_req *req, int status, json_t *body, size_t flags);

/* Replies with an RFC 9457 problem: type "urn:itemvec:problem:<slug>",
 * the given title and formatted detail. extra (taken, may be NULL) is
 * merged into the object (e.g. "errors", "line", "column"). */
void api_reply_problem(struct api_req *req, int status, const char *slug, const char *title,
                       json_t *extra, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Replies with no body (204, 304). */
void api_reply_empty(struct api_req *req, int status);

/* Replies with a prepared MHD response (taken). Content-Type must be set by
 * the caller; X-Request-Id and the queued headers are added. */
void api_reply_response(struct api_req *req, int status, struct MHD_Response *resp);

/* Marks the request as answered later; api_req_resume must follow once a
 * reply was set. */
void api_req_suspend(struct api_req *req);
void api_req_resume(struct api_req *req);

/* The buffered JSON body, parsed (on the pool already when it was over
 * API_JSON_INLINE_MAX, else here). On a syntax error replies 400 with line
 * and column and returns NULL. The caller owns the result. */
json_t *api_body_json(struct api_req *req);

/* Allocates zeroed handler state of size bytes, freed with the request by
 * free_fn (NULL: free). On ENOMEM replies 503 and returns NULL. */
void *api_state_create(struct api_req *req, size_t size, void (*free_fn)(void *));

/* The encoding checks every streamed body shares: Content-Encoding must be
 * gzip (or x-gzip), identity or absent, else 415; an uncompressed body whose
 * Content-Length passes limits.max_body_size is refused at once (413; a gzip
 * body is bounded while it is decoded). Returns 0 with *gz set, or
 * -ENOTSUP / -EFBIG after replying. Loop thread. */
int api_body_encoding(struct api_req *req, int *gz);

/* Replies 503 "out of memory" with Retry-After: 1. */
void api_reply_oom(struct api_req *req);

/* JSON helpers. A UTF-8-checked string (jansson refuses invalid UTF-8);
 * NULL → JSON null. */
json_t *api_json_str(const char *s);

/* The route table (api/routes.c). */
extern const struct api_route api_routes[];
extern const size_t api_routes_count;

/* Handlers, one file per resource. */
void api_health_get(struct api_req *req);
void api_ready_get(struct api_req *req);
void api_info_get(struct api_req *req);
void api_metrics_get(struct api_req *req);
void api_admin_backup(struct api_req *req);
void api_playlists_list(struct api_req *req);
void api_playlist_get(struct api_req *req);
void api_playlist_put(struct api_req *req);
void api_playlist_delete(struct api_req *req);
void api_item_get(struct api_req *req);
void api_ui_redirect(struct api_req *req);
void api_ui_get(struct api_req *req);
void api_openapi_get(struct api_req *req);
void api_items_search(struct api_req *req);
void api_jobs_post(struct api_req *req);
void api_jobs_list(struct api_req *req);
void api_job_get(struct api_req *req);
void api_job_cancel(struct api_req *req);
void api_pmi_pairs(struct api_req *req);
void api_item_cooccurrences(struct api_req *req);
void api_models_list(struct api_req *req);
void api_model_get(struct api_req *req);
void api_model_activate(struct api_req *req);
void api_model_delete(struct api_req *req);
void api_model_embeddings(struct api_req *req);
void api_embeddings(struct api_req *req);
void api_replication_active(struct api_req *req);
void api_replication_file(struct api_req *req);
void api_item_similar(struct api_req *req);
void api_recommend(struct api_req *req);
int api_upload_begin(struct api_req *req);
int api_upload_chunk(struct api_req *req, const char *data, size_t len);
void api_upload_finish(struct api_req *req);
int api_pmi_import_begin(struct api_req *req);
int api_model_import_begin(struct api_req *req);
int api_import_chunk(struct api_req *req, const char *data, size_t len);
void api_import_finish(struct api_req *req);
void api_pmi_sql(struct api_req *req);

#endif
