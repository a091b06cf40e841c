/*
 * /v1/playlists (list), /v1/playlists/{id} (GET, PUT, DELETE). Reads use
 * the loop thread's store handle; PUT and DELETE go through the writer, so
 * they are ordered with uploads and durable when answered.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api/api.h"
#include "api/jbuf.h"
#include "api/server_internal.h"
#include "api/work.h"
#include "ingest/upload.h"
#include "base/log.h"
#include "conf/app.h"
#include "storage/writer.h"
#include "storage/batch.h"
#include "storage/store.h"

void api__reply_storage_error(struct api_req *req, int rc)
{
    /* SQLite's message may name tables, columns or paths: the log gets
     * it, the client the errno and the request id to quote */
    log_error("storage error rid=%s: %s (%s)", req->request_id, strerror(-rc),
              store_errmsg(req->app->store));
    if (rc == -EBUSY)
        api_add_header(req, "Retry-After", "1");
    api_reply_problem(req, rc == -EBUSY ? 503 : 500, "storage", "Storage Error", NULL,
                      "storage failed: %s (the server log has the details under request id %s)",
                      strerror(-rc), req->request_id);
}

/* Checks the {id} path parameter; replies 400 when invalid. */
const char *api__path_id(struct api_req *req)
{
    const char *id = api_param(req, 0);
    const char *why = text_id_invalid(id, strlen(id));
    if (why) {
        api_reply_problem(req, 400, "bad-id", "Bad Request", NULL, "the id in the path %s", why);
        return NULL;
    }
    return id;
}

/* ---- GET /v1/playlists ---- */

struct list_ctx {
    json_t *arr;
    int64_t last_key;
    int n;
};

static int list_cb(void *ud, int64_t key, const char *id, int64_t n_items)
{
    struct list_ctx *c = ud;
    json_array_append_new(c->arr, json_pack("{s:o,s:I}", "id", api_json_str(id), "items",
                                            (json_int_t)n_items));
    c->last_key = key;
    c->n++;
    return 0;
}

/* Page tokens are a letter + the last key seen, opaque to users: "p" for
 * the playlist list, "i" for a playlist's items, so a token of one is
 * refused by the other. */
static int parse_page_token(struct api_req *req, char kind, int64_t *after)
{
    const char *t = api_query(req, "page_token");
    *after = 0;
    if (!t || !*t)
        return 0;
    char *end = NULL;
    long long k = t[0] == kind && t[1] >= '0' && t[1] <= '9' ? strtoll(t + 1, &end, 10) : -1;
    if (k <= 0 || *end || k >= INT64_MAX) {
        api_reply_problem(req, 400, "bad-page-token", "Bad Request",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "page_token",
                                    "detail", "not a token from next_page_token"),
                          "page_token is not valid");
        return -EINVAL;
    }
    *after = k;
    return 0;
}

void api_playlists_list(struct api_req *req)
{
    int64_t size, after;
    if (api_query_int(req, "page_size", 100, 1, 1000, &size) != 0 ||
        parse_page_token(req, 'p', &after) != 0)
        return;
    struct list_ctx c = {json_array(), after, 0};
    int rc = store_playlists_list(req->app->store, after, (int)size, list_cb, &c);
    if (rc != 0) {
        json_decref(c.arr);
        api__reply_storage_error(req, rc);
        return;
    }
    json_t *next = json_null();
    if (c.n == size) { /* maybe more: look one ahead */
        struct list_ctx probe = {json_array(), c.last_key, 0};
        if (store_playlists_list(req->app->store, c.last_key, 1, list_cb, &probe) == 0 &&
            probe.n > 0) {
            char tok[32];
            snprintf(tok, sizeof tok, "p%lld", (long long)c.last_key);
            json_decref(next);
            next = json_string(tok);
        }
        json_decref(probe.arr);
    }
    api_reply_json(req, 200, json_pack("{s:o,s:o}", "playlists", c.arr, "next_page_token", next));
}

/* ---- GET /v1/playlists/{id} ---- */

/* One page of the playlist's items (page_size, default 100, at most 1000;
 * page_token from the previous page's next_page_token). A page costs
 * O(page_size + log n) whatever the playlist's size n (storage reads only
 * the page), so even a 1 M-item playlist answers in a bounded slice of the
 * loop. */
void api_playlist_get(struct api_req *req)
{
    const char *id = api__path_id(req);
    int64_t size, after;
    if (!id || api_query_int(req, "page_size", 100, 1, 1000, &size) != 0 ||
        parse_page_token(req, 'i', &after) != 0)
        return;
    struct store_playlist pl;
    int rc = store_playlist_page(req->app->store, id, after, (size_t)size, &pl);
    if (rc == -ENOENT) {
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no playlist with this id");
        return;
    }
    if (rc != 0) {
        api__reply_storage_error(req, rc);
        return;
    }
    /* written directly (no jansson tree): a page of 1000 items costs well
     * under a millisecond to format */
    struct jbuf b = {0};
    JBUF_LIT(&b, "{\"id\":");
    jbuf_str(&b, pl.id);
    JBUF_LIT(&b, ",\"items\":[");
    for (size_t i = 0; i < pl.n_items; i++) {
        if (i)
            JBUF_LIT(&b, ",");
        JBUF_LIT(&b, "{\"id\":");
        jbuf_str(&b, pl.items[i].id);
        JBUF_LIT(&b, ",\"title\":");
        jbuf_str(&b, pl.items[i].title);
        JBUF_LIT(&b, ",\"artist\":");
        jbuf_str(&b, pl.items[i].artist);
        JBUF_LIT(&b, "}");
    }
    JBUF_LIT(&b, "],\"next_page_token\":");
    if (pl.next_after > 0) {
        char tok[32];
        snprintf(tok, sizeof tok, "\"i%lld\"", (long long)pl.next_after);
        jbuf_lit(&b, tok);
    } else {
        JBUF_LIT(&b, "null");
    }
    JBUF_LIT(&b, "}\n");
    store_playlist_deinit(&pl);
    if (b.failed) {
        free(b.p);
        api_reply_oom(req);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    api_reply_response(req, 200, resp);
}

/* ---- PUT /v1/playlists/{id} ---- */

/* A PUT body becomes a batch in put_prepare: on the loop for a body of at
 * most API_JSON_INLINE_MAX bytes (a few thousand items, under a
 * millisecond), else on the pool (api/work.h), where the body was parsed
 * too, so neither a large body's parse, its conversion nor freeing its
 * jansson tree runs on the loop. */
struct put_state {
    struct api_req *req;
    struct batch *batch;
    struct upload_rows rows;
    struct writer_op op;
    struct store_commit_result result;
    char *id;
    json_t *doc;          /* the body, owned until put_prepare */
    struct api_work work; /* put_prepare on the pool */
    int rc; /* put_prepare's outcome: 0, -EINVAL (422), -EFBIG, -EOVERFLOW, -ENOMEM */
    char pointer[80];     /* for -EINVAL: where */
    char why[256];        /* for -EINVAL: the errors[] detail */
    char detail[400];     /* the problem's detail */
};

static void put_destroy(void *p)
{
    struct put_state *st = p;
    batch_destroy(st->batch);
    json_decref(st->doc);
    free(st->id);
    free(st);
}

static int put_commit(struct store *s, void *arg)
{
    struct put_state *st = arg;
    return store_batch_commit(s, st->batch, STORE_COMMIT_REPLACE, &st->result);
}

static void put_done(void *arg, int rc)
{
    struct put_state *st = arg;
    struct api_req *req = st->req;
    if (rc != 0) {
        api__reply_storage_error(req, rc);
    } else {
        json_t *body = json_pack(
            "{s:o,s:I,s:I,s:I,s:I,s:{s:I,s:I}}", "id", api_json_str(st->id), "items",
            (json_int_t)batch_items(st->batch), "rows_received", (json_int_t)st->rows.received,
            "rows_stored", (json_int_t)st->result.rows_stored, "rows_skipped",
            (json_int_t)(st->rows.skipped_title + st->rows.skipped_id), "skipped",
            "missing_title", (json_int_t)st->rows.skipped_title, "non_positive_id",
            (json_int_t)st->rows.skipped_id);
        api_reply_json(req, 200, body);
    }
    api_req_resume(req);
}

/* Converts one JSON item (string, integer or object) into a row. */
static int put_item(struct put_state *st, json_t *it, size_t index, char *pointer, size_t psize,
                    struct upload_error *err)
{
    struct upload_row row = {0};
    char num[32];
    json_t *idv = it, *title = NULL, *artist = NULL;
    snprintf(pointer, psize, "/items/%zu", index);
    if (json_is_object(it)) {
        idv = json_object_get(it, "id");
        title = json_object_get(it, "title");
        artist = json_object_get(it, "artist");
        row.has_title = title != NULL;
        snprintf(pointer, psize, "/items/%zu/id", index);
        if ((title && !json_is_string(title) && !json_is_null(title)) ||
            (artist && !json_is_string(artist) && !json_is_null(artist))) {
            snprintf(pointer, psize, "/items/%zu/%s", index,
                     title && !json_is_string(title) && !json_is_null(title) ? "title"
                                                                              : "artist");
            snprintf(err->message, sizeof err->message, "must be a string or null");
            return -EINVAL;
        }
    }
    if (json_is_string(idv)) {
        row.item = json_string_value(idv);
        row.item_len = json_string_length(idv);
    } else if (json_is_integer(idv)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(idv));
        row.item = num;
        row.item_len = strlen(num);
    } else {
        snprintf(err->message, sizeof err->message, "an item id must be a string or an integer");
        return -EINVAL;
    }
    if (json_is_string(title)) {
        row.title = json_string_value(title);
        row.title_len = json_string_length(title);
    }
    if (json_is_string(artist)) {
        row.artist = json_string_value(artist);
        row.artist_len = json_string_length(artist);
    }
    row.line = 1;
    return upload_rows_accept(&st->rows, &row, err);
}

static int put_invalid(struct put_state *st, const char *pointer, const char *why,
                       const char *detail)
{
    snprintf(st->pointer, sizeof st->pointer, "%s", pointer);
    snprintf(st->why, sizeof st->why, "%s", why);
    snprintf(st->detail, sizeof st->detail, "%s", detail);
    return -EINVAL;
}

/* Any thread (the request is the caller's alone meanwhile): checks st->doc
 * and turns its items into st->batch, then frees the document. Sets
 * st->rc, and on -EINVAL the pointer and messages. */
static void put_prepare(struct put_state *st)
{
    json_t *doc = st->doc, *v;
    const char *key;
    int rc = 0;
    json_object_foreach(json_is_object(doc) ? doc : NULL, key, v)
    {
        if (strcmp(key, "items") != 0 && strcmp(key, "id") != 0) {
            char pointer[80], detail[200];
            snprintf(pointer, sizeof pointer, "/%.60s", key);
            snprintf(detail, sizeof detail, "%s: unknown field; the body is {\"items\": [...]}",
                     pointer);
            rc = put_invalid(st, pointer, "unknown field (expected items)", detail);
            goto out;
        }
    }
    json_t *items = json_is_object(doc) ? json_object_get(doc, "items") : NULL;
    if (!json_is_array(items)) {
        rc = put_invalid(st, "/items", "required: an array of item ids or item objects",
                         "the body must be an object with an \"items\" array");
        goto out;
    }
    if (!(st->batch = batch_create())) {
        rc = -ENOMEM;
        goto out;
    }
    st->rows.batch = st->batch;
    st->rows.force_playlist = st->id;
    st->rows.force_playlist_len = strlen(st->id);
    rc = batch_add_playlist(st->batch, st->id, strlen(st->id));
    size_t i;
    json_t *it;
    char pointer[64] = "";
    struct upload_error err = {0};
    json_array_foreach(items, i, it)
    {
        if (rc != 0)
            break;
        rc = put_item(st, it, i, pointer, sizeof pointer, &err);
    }
    if (rc == 0)
        rc = batch_flush(st->batch);
    if (rc == -EINVAL) {
        char detail[400];
        snprintf(detail, sizeof detail, "%s: %s", pointer, err.message);
        put_invalid(st, pointer, err.message, detail);
    } else if (rc == -EFBIG) {
        snprintf(st->detail, sizeof st->detail, "%s", err.message);
    }
out:
    json_decref(doc);
    st->doc = NULL;
    st->rc = rc;
}

static void put_prepare_run(struct api_work *w)
{
    put_prepare((struct put_state *)((char *)w - offsetof(struct put_state, work)));
}

/* Loop thread: answers put_prepare's error, or submits the batch to the
 * writer (put_done answers). */
static void put_prepared(struct api_work *w)
{
    struct put_state *st = (struct put_state *)((char *)w - offsetof(struct put_state, work));
    struct api_req *req = st->req;
    if (st->rc == -EINVAL) {
        api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", st->pointer,
                                    "detail", st->why),
                          "%s", st->detail);
    } else if (st->rc == -EFBIG) {
        api_reply_problem(req, 413, "upload-too-large", "Payload Too Large", NULL, "%s",
                          st->detail);
    } else if (st->rc == -EOVERFLOW) { /* storage/batch.c: slot runs far beyond chance */
        api_reply_problem(req, 400, "hash-collisions", "Bad Request", NULL,
                          "the body's item ids collide in the hash table far beyond chance");
    } else if (st->rc != 0) {
        api_reply_oom(req);
    } else {
        api_req_suspend(req);
        (void)api__writer_submit(req, &st->op, batch_memory(st->batch), put_commit, put_done,
                                 st);
    }
}

void api_playlist_put(struct api_req *req)
{
    const char *id = api__path_id(req);
    if (!id)
        return;
    struct put_state *st = calloc(1, sizeof *st);
    if (!st || !(st->id = strdup(id))) {
        free(st);
        api_reply_oom(req);
        return;
    }
    req->state = st;
    req->state_destroy = put_destroy;
    st->req = req;
    st->rows.max_rows = (uint64_t)req->app->cfg.max_upload_rows; /* read here: config reloads */
    if (!(st->doc = api_body_json(req)))
        return;
    if (!req->json_parsed) { /* a small body: parsed here, converted here */
        put_prepare(st);
        put_prepared(&st->work);
        return;
    }
    api_work_submit(req, &st->work, put_prepare_run, put_prepared);
}

/* ---- DELETE /v1/playlists/{id} ---- */

struct delete_state {
    struct api_req *req;
    struct writer_op op;
    char *id;
};

static void delete_destroy(void *p)
{
    struct delete_state *st = p;
    free(st->id);
    free(st);
}

static int delete_fn(struct store *s, void *arg)
{
    struct delete_state *st = arg;
    return store_playlist_delete(s, st->id);
}

static void delete_done(void *arg, int rc)
{
    struct delete_state *st = arg;
    if (rc == 0)
        api_reply_empty(st->req, 204);
    else if (rc == -ENOENT)
        api_reply_problem(st->req, 404, "not-found", "Not Found", NULL, "no playlist with this id");
    else
        api__reply_storage_error(st->req, rc);
    api_req_resume(st->req);
}

void api_playlist_delete(struct api_req *req)
{
    const char *id = api__path_id(req);
    if (!id)
        return;
    struct delete_state *st = calloc(1, sizeof *st);
    if (!st || !(st->id = strdup(id))) {
        free(st);
        api_reply_oom(req);
        return;
    }
    st->req = req;
    req->state = st;
    req->state_destroy = delete_destroy;
    api_req_suspend(req);
    (void)api__writer_submit(req, &st->op, 0, delete_fn, delete_done, st);
}
