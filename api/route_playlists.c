/*
 * /v1/playlists (list), /v1/playlists/{id} (GET, PUT, DELETE). Reads use
 * the loop thread's store handle; PUT and DELETE go through the writer, so
 * they are ordered with uploads and durable when answered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/server_internal.h"
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

/* Page tokens are "p" + the last key seen, opaque to users. */
static int parse_page_token(struct api_req *req, int64_t *after)
{
    const char *t = api_query(req, "page_token");
    *after = 0;
    if (!t || !*t)
        return 0;
    char *end;
    long long k = t[0] == 'p' ? strtoll(t + 1, &end, 10) : -1;
    if (t[0] != 'p' || *end || k < 0) {
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
        parse_page_token(req, &after) != 0)
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

static json_t *item_json(const struct store_item *it)
{
    return json_pack("{s:o,s:o,s:o}", "id", api_json_str(it->id), "title",
                     api_json_str(it->title), "artist", api_json_str(it->artist));
}

void api_playlist_get(struct api_req *req)
{
    const char *id = api__path_id(req);
    if (!id)
        return;
    struct store_playlist pl;
    int rc = store_playlist_get(req->app->store, id, &pl);
    if (rc == -ENOENT) {
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no playlist with this id");
        return;
    }
    if (rc != 0) {
        api__reply_storage_error(req, rc);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < pl.n_items; i++)
        json_array_append_new(items, item_json(&pl.items[i]));
    json_t *body = json_pack("{s:o,s:o}", "id", api_json_str(pl.id), "items", items);
    store_playlist_deinit(&pl);
    api_reply_json(req, 200, body);
}

/* ---- PUT /v1/playlists/{id} ---- */

struct put_state {
    struct api_req *req;
    struct batch *batch;
    struct upload_rows rows;
    struct writer_op op;
    struct store_commit_result result;
    char *id;
};

static void put_destroy(void *p)
{
    struct put_state *st = p;
    batch_destroy(st->batch);
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

void api_playlist_put(struct api_req *req)
{
    const char *id = api__path_id(req);
    if (!id)
        return;
    json_t *doc = api_body_json(req);
    if (!doc)
        return;
    const char *key;
    json_t *v;
    json_object_foreach(json_is_object(doc) ? doc : NULL, key, v)
    {
        if (strcmp(key, "items") != 0 && strcmp(key, "id") != 0) {
            char pointer[80];
            snprintf(pointer, sizeof pointer, "/%.60s", key);
            json_decref(doc);
            api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                              json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", pointer,
                                        "detail", "unknown field (expected items)"),
                              "%s: unknown field; the body is {\"items\": [...]}", pointer);
            return;
        }
    }
    json_t *items = json_is_object(doc) ? json_object_get(doc, "items") : NULL;
    if (!json_is_array(items)) {
        json_decref(doc);
        api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "/items", "detail",
                                    "required: an array of item ids or item objects"),
                          "the body must be an object with an \"items\" array");
        return;
    }
    struct put_state *st = calloc(1, sizeof *st);
    if (!st || !(st->batch = batch_create()) || !(st->id = strdup(id))) {
        if (st)
            put_destroy(st);
        json_decref(doc);
        api_reply_oom(req);
        return;
    }
    req->state = st;
    req->state_destroy = put_destroy;
    st->req = req;
    st->rows.batch = st->batch;
    st->rows.max_rows = (uint64_t)req->app->cfg.max_upload_rows;
    st->rows.force_playlist = st->id;
    st->rows.force_playlist_len = strlen(st->id);
    int rc = batch_add_playlist(st->batch, st->id, strlen(st->id));
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
    json_decref(doc);
    if (rc == 0)
        rc = batch_flush(st->batch);
    if (rc == -EINVAL) {
        api_reply_problem(req, 422, "invalid-body", "Unprocessable Content",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", pointer, "detail",
                                    err.message),
                          "%s: %s", pointer, err.message);
        return;
    }
    if (rc == -EOVERFLOW) { /* storage/batch.c: slot runs far beyond chance */
        api_reply_problem(req, 400, "hash-collisions", "Bad Request", NULL,
                          "the body's item ids collide in the hash table far beyond chance");
        return;
    }
    if (rc != 0) {
        api_reply_problem(req, rc == -EFBIG ? 413 : 503,
                          rc == -EFBIG ? "upload-too-large" : "out-of-memory",
                          rc == -EFBIG ? "Payload Too Large" : "Service Unavailable", NULL, "%s",
                          rc == -EFBIG ? err.message : "out of memory");
        return;
    }
    api_req_suspend(req);
    (void)api__writer_submit(req, &st->op, batch_memory(st->batch), put_commit, put_done, st);
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
