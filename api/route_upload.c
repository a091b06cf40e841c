/*
 * POST /v1/playlists: streamed upload. Body chunks go (through the gzip
 * decoder when Content-Encoding: gzip) into the format's push parser on the
 * loop thread, a few KiB at a time, so other requests interleave; valid
 * rows accumulate in a compact storage batch. At the end of the body the
 * batch is committed by the writer in one transaction while the connection
 * is suspended, and the answer (200 with counts) is sent only after the
 * commit returned: an acknowledged upload is durable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "api/api.h"
#include "ingest/gunzip.h"
#include "ingest/upload.h"
#include "ingest/upload_parse.h"
#include "conf/app.h"
#include "base/log.h"
#include "storage/writer.h"
#include "storage/batch.h"
#include "storage/store.h"

struct upload {
    struct api_req *req;
    struct upload_parser *parser;
    struct gunzip *gz;
    struct batch *batch;
    struct upload_rows rows;
    uint64_t decoded;
    struct writer_op op;
    struct store_commit_result result;
    uint64_t t_begin, t_parsed; /* uv_hrtime() */
};

static void upload_free(void *p)
{
    struct upload *u = p;
    upload_parser_destroy(u->parser);
    gunzip_destroy(u->gz);
    batch_destroy(u->batch);
    free(u);
}

static int on_row(void *ud, const struct upload_row *row, struct upload_error *err)
{
    struct upload *u = ud;
    return upload_rows_accept(&u->rows, row, err);
}

/* Turns a parser/row error into the answer. */
static void reply_parse_error(struct api_req *req, int rc, const struct upload_error *err)
{
    if (rc == -EFBIG || rc == -E2BIG) {
        json_t *extra = err->line ? json_pack("{s:I}", "line", (json_int_t)err->line) : NULL;
        api_reply_problem(req, 413, "upload-too-large", "Payload Too Large", extra, "%s",
                          err->message[0] ? err->message : "record over limits.max_record_size");
        return;
    }
    if (rc == -ENOMEM) {
        api_reply_problem(req, 503, "out-of-memory", "Service Unavailable", NULL,
                          "not enough memory to hold the upload");
        return;
    }
    json_t *extra = json_pack("{s:I,s:I}", "line", (json_int_t)err->line, "column",
                              (json_int_t)err->column);
    api_reply_problem(req, 400, "parse-error", "Bad Request", extra, "line %lu, column %lu: %s",
                      err->line, err->column, err->message);
}

static int feed_parser(void *ud, const char *data, size_t len)
{
    struct upload *u = ud;
    struct api_req *req = u->req;
    u->decoded += len;
    if ((int64_t)u->decoded > req->app->cfg.max_body_size) {
        api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                          "body over limits.max_body_size (%lld bytes)",
                          (long long)req->app->cfg.max_body_size);
        return -EFBIG;
    }
    struct upload_error err = {0};
    int rc = upload_parser_feed(u->parser, data, len, &err);
    if (rc < 0) {
        reply_parse_error(req, rc, &err);
        return rc == -E2BIG ? -EFBIG : rc;
    }
    return 0;
}

int api_upload_begin(struct api_req *req)
{
    struct app *app = req->app;
    if (app->draining) {
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 503, "draining", "Service Unavailable", NULL,
                          "itemvecd is shutting down");
        return -ESHUTDOWN;
    }
    const char *ct = api_header(req, "Content-Type");
    enum upload_format fmt;
    if (!ct || upload_format_from_content_type(ct, &fmt) != 0) {
        api_add_header(req, "Accept-Post",
                       "text/csv, text/tab-separated-values, application/x-ndjson, "
                       "application/json");
        api_reply_problem(req, 415, "unsupported-media-type", "Unsupported Media Type", NULL,
                          "Content-Type %s%s%s is not an upload format; use text/csv, "
                          "text/tab-separated-values, application/x-ndjson or "
                          "application/json",
                          ct ? "\"" : "", ct ? ct : "(missing)", ct ? "\"" : "");
        return -ENOTSUP;
    }
    const char *ce = api_header(req, "Content-Encoding");
    int gz = 0;
    if (ce && (strcasecmp(ce, "gzip") == 0 || strcasecmp(ce, "x-gzip") == 0)) {
        gz = 1;
    } else if (ce && strcasecmp(ce, "identity") != 0) {
        api_reply_problem(req, 415, "unsupported-encoding", "Unsupported Media Type", NULL,
                          "Content-Encoding \"%s\" is not supported; use gzip or none", ce);
        return -ENOTSUP;
    }
    const char *cl = api_header(req, "Content-Length");
    if (!gz && cl && strtoll(cl, NULL, 10) > app->cfg.max_body_size) {
        api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                          "body of %s bytes is over limits.max_body_size (%lld bytes)", cl,
                          (long long)app->cfg.max_body_size);
        return -EFBIG;
    }
    struct upload *u = calloc(1, sizeof *u);
    if (!u)
        goto nomem;
    req->state = u;
    req->state_free = upload_free;
    u->req = req;
    u->batch = batch_create();
    u->parser = upload_parser_create(fmt, (size_t)app->cfg.max_record_size, on_row, u);
    if (gz)
        u->gz = gunzip_create((uint64_t)app->cfg.max_body_size + 1, feed_parser, u);
    if (!u->batch || !u->parser || (gz && !u->gz))
        goto nomem;
    u->rows.batch = u->batch;
    u->rows.max_rows = (uint64_t)app->cfg.max_upload_rows;
    u->t_begin = uv_hrtime();
    return 0;
nomem:
    api_reply_problem(req, 503, "out-of-memory", "Service Unavailable", NULL,
                      "cannot start the upload");
    return -ENOMEM;
}

int api_upload_chunk(struct api_req *req, const char *data, size_t len)
{
    struct upload *u = req->state;
    if (!u->gz)
        return feed_parser(u, data, len);
    int rc = gunzip_feed(u->gz, data, len);
    if (rc < 0 && !req->response) {
        if (rc == -EFBIG)
            api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                              "decoded body over limits.max_body_size (%lld bytes)",
                              (long long)req->app->cfg.max_body_size);
        else
            api_reply_problem(req, 400, "bad-gzip", "Bad Request", NULL,
                              "the gzip-encoded body is corrupt");
    }
    return rc;
}

static int commit_fn(struct store *s, void *arg)
{
    struct upload *u = arg;
    return store_batch_commit(s, u->batch, STORE_COMMIT_MERGE, &u->result);
}

static json_t *counts_json(const struct upload *u, const struct store_commit_result *r)
{
    uint64_t skipped = u->rows.skipped_title + u->rows.skipped_id;
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I}}", "playlists", (json_int_t)r->playlists,
                     "rows_received", (json_int_t)u->rows.received, "rows_stored",
                     (json_int_t)r->rows_stored, "rows_duplicate", (json_int_t)r->rows_duplicate,
                     "rows_skipped", (json_int_t)skipped, "skipped", "missing_title",
                     (json_int_t)u->rows.skipped_title, "non_positive_id",
                     (json_int_t)u->rows.skipped_id);
}

static void commit_done(void *arg, int rc)
{
    struct upload *u = arg;
    struct api_req *req = u->req;
    if (rc != 0) {
        log_error("upload commit failed rid=%s: %s", req->request_id, strerror(-rc));
        if (rc == -EBUSY)
            api_add_header(req, "Retry-After", "1");
        api_reply_problem(req, rc == -EBUSY ? 503 : 500, "storage", "Storage Error", NULL,
                          "the upload was not stored: %s", strerror(-rc));
    } else {
        uint64_t now = uv_hrtime();
        log_info("upload rid=%s: %llu rows (%llu stored) in %.3fs: parse %.3fs, commit %.3fs, "
                 "batch %zu KiB",
                 req->request_id, (unsigned long long)u->rows.received,
                 (unsigned long long)u->result.rows_stored, (double)(now - u->t_begin) / 1e9,
                 (double)(u->t_parsed - u->t_begin) / 1e9, (double)(now - u->t_parsed) / 1e9,
                 batch_memory(u->batch) / 1024);
        api_reply_json(req, 200, counts_json(u, &u->result));
    }
    batch_destroy(u->batch); /* free the rows now, not when the client reads */
    u->batch = NULL;
    api_req_resume(req);
}

void api_upload_finish(struct api_req *req)
{
    struct upload *u = req->state;
    if (req->response || req->body_failed || !u)
        return;
    struct upload_error err = {0};
    int rc = 0;
    if (u->gz)
        rc = gunzip_finish(u->gz);
    if (rc < 0) {
        api_reply_problem(req, 400, "bad-gzip", "Bad Request", NULL,
                          "the gzip-encoded body is truncated");
        return;
    }
    rc = upload_parser_finish(u->parser, &err);
    if (rc == 0)
        rc = batch_flush(u->batch); /* the last rows are applied here */
    if (rc < 0) {
        reply_parse_error(req, rc, &err);
        return;
    }
    if (batch_rows(u->batch) == 0) {
        struct store_commit_result none = {0};
        api_reply_json(req, 200, counts_json(u, &none));
        return;
    }
    u->t_parsed = uv_hrtime();
    api_req_suspend(req);
    writer_submit(req->app->writer, &u->op, commit_fn, commit_done, u);
}
