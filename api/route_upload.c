/*
 * POST /v1/playlists: streamed upload. Body chunks go (through the gzip
 * decoder when Content-Encoding: gzip) into the format's push parser on the
 * loop thread, a few KiB at a time, so other requests interleave; valid
 * rows accumulate in a compact storage batch. At the end of the body the
 * batch is committed by the writer in one transaction while the connection
 * is suspended, and the answer (200 with counts) is sent only after the
 * commit returned: an acknowledged upload is durable.
 *
 * Budgets (issue 12, finding 4; docs/operations.md "Upload limits"): what
 * an upload holds (write set, parser buffers, gzip state) is counted after
 * every chunk against limits.max_upload_memory (over it: 413, nothing
 * stored) and, summed over every upload in flight in app->upload_memory,
 * against limits.max_upload_memory_total (over it: 503 + Retry-After). A
 * gzip body may not decode to more than limits.max_gzip_ratio bytes per
 * byte received (+64 KiB): a zip bomb is refused after little work. The
 * commit goes through the writer's bounded queue (503 when full). A refused
 * upload frees its memory at once, not when the client stops sending.
 *
 * Threading: loop thread only (MHD callbacks and the writer's done).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "ingest/gunzip.h"
#include "ingest/upload.h"
#include "ingest/upload_parse.h"
#include "conf/app.h"
#include "base/log.h"
#include "storage/writer.h"
#include "storage/batch.h"
#include "storage/store.h"

/* Decoded bytes a gzip body may always reach, whatever its ratio: small
 * bodies compress far better than big ones (headers, repeats). */
#define UPLOAD_GZIP_ALLOWANCE (64u << 10)

struct upload {
    struct api_req *req;
    struct app *app;
    struct upload_parser *parser;
    struct gunzip *gz;
    struct batch *batch;
    struct upload_rows rows;
    uint64_t decoded;
    uint64_t encoded; /* gzip bytes received */
    size_t charged;   /* this upload's share of app->upload_memory */
    struct writer_op op;
    struct store_commit_result result;
    uint64_t t_begin, t_parsed; /* uv_hrtime() */
};

/* Bytes the upload holds now. */
static size_t upload_memory(const struct upload *u)
{
    return sizeof *u + (u->batch ? batch_memory(u->batch) : 0) +
           (u->parser ? upload_parser_memory(u->parser) : 0) +
           (u->gz ? gunzip_memory(u->gz) : 0);
}

/* Brings the upload's share of app->upload_memory up to date. */
static void upload_account(struct upload *u)
{
    size_t now = upload_memory(u);

    u->app->upload_memory = u->app->upload_memory - u->charged + now;
    u->charged = now;
}

/* Frees the parser and the decoder (the body is in, or refused). */
static void upload_drop_input(struct upload *u)
{
    upload_parser_destroy(u->parser);
    u->parser = NULL;
    gunzip_destroy(u->gz);
    u->gz = NULL;
    upload_account(u);
}

/* Frees everything the upload holds and gives its memory back. */
static void upload_release(struct upload *u)
{
    upload_parser_destroy(u->parser);
    u->parser = NULL;
    gunzip_destroy(u->gz);
    u->gz = NULL;
    batch_destroy(u->batch);
    u->batch = NULL;
    u->app->upload_memory -= u->charged;
    u->charged = 0;
}

static void upload_destroy(void *p)
{
    struct upload *u = p;
    upload_release(u);
    free(u);
}

/* Answers 503 + Retry-After: the uploads in flight hold the global budget. */
static void reply_budget_busy(struct api_req *req)
{
    api_add_header(req, "Retry-After", "5");
    api_reply_problem(req, 503, "upload-memory-busy", "Service Unavailable", NULL,
                      "uploads in progress hold limits.max_upload_memory_total (%lld bytes); "
                      "retry later",
                      (long long)req->app->cfg.max_upload_memory_total);
}

/* Checks the upload's memory against both budgets after it grew. Returns
 * 0, or -EFBIG (413 sent) / -EBUSY (503 sent). */
static int upload_check_memory(struct upload *u)
{
    const struct config *cfg = &u->app->cfg;

    upload_account(u);
    if ((int64_t)u->charged > cfg->max_upload_memory) {
        api_reply_problem(u->req, 413, "upload-too-large", "Payload Too Large", NULL,
                          "the upload needs more than limits.max_upload_memory (%lld bytes) "
                          "after %llu rows; split it into several uploads (they merge)",
                          (long long)cfg->max_upload_memory,
                          (unsigned long long)u->rows.received);
        return -EFBIG;
    }
    if (u->app->upload_memory > (uint64_t)cfg->max_upload_memory_total) {
        reply_budget_busy(u->req);
        return -EBUSY;
    }
    return 0;
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
    if (rc == -EOVERFLOW) {
        /* storage/batch.c: slot runs far longer than a random key makes. */
        api_reply_problem(req, 400, "hash-collisions", "Bad Request", NULL,
                          "the upload's ids collide in the upload's hash table far beyond "
                          "chance; refused");
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
    const struct config *cfg = &req->app->cfg;
    u->decoded += len;
    if ((int64_t)u->decoded > cfg->max_body_size) {
        api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                          "body over limits.max_body_size (%lld bytes)",
                          (long long)cfg->max_body_size);
        return -EFBIG;
    }
    if (u->gz &&
        u->decoded > (uint64_t)cfg->max_gzip_ratio * u->encoded + UPLOAD_GZIP_ALLOWANCE) {
        api_reply_problem(req, 413, "gzip-ratio", "Payload Too Large", NULL,
                          "the gzip-encoded body expands more than limits.max_gzip_ratio "
                          "(%lld) times (%llu bytes from %llu)",
                          (long long)cfg->max_gzip_ratio, (unsigned long long)u->decoded,
                          (unsigned long long)u->encoded);
        return -EFBIG;
    }
    struct upload_error err = {0};
    int rc = upload_parser_feed(u->parser, data, len, &err);
    if (rc < 0) {
        reply_parse_error(req, rc, &err);
        return rc == -E2BIG ? -EFBIG : rc;
    }
    return upload_check_memory(u);
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
    int gz = 0;
    int rc_enc = api_body_encoding(req, &gz);
    if (rc_enc != 0)
        return rc_enc;
    /* Refuse before reading the body while the budget is taken. */
    if (app->upload_memory >= (uint64_t)app->cfg.max_upload_memory_total) {
        reply_budget_busy(req);
        return -EBUSY;
    }
    struct upload *u = calloc(1, sizeof *u);
    if (!u)
        goto nomem;
    req->state = u;
    req->state_destroy = upload_destroy;
    u->req = req;
    u->app = app;
    u->batch = batch_create();
    u->parser = upload_parser_create(fmt, (size_t)app->cfg.max_record_size, on_row, u);
    if (gz)
        u->gz = gunzip_create((uint64_t)app->cfg.max_body_size + 1, feed_parser, u);
    if (!u->batch || !u->parser || (gz && !u->gz))
        goto nomem;
    u->rows.batch = u->batch;
    u->rows.max_rows = (uint64_t)app->cfg.max_upload_rows;
    u->t_begin = uv_hrtime();
    upload_account(u);
    return 0;
nomem:
    api_reply_problem(req, 503, "out-of-memory", "Service Unavailable", NULL,
                      "cannot start the upload");
    return -ENOMEM;
}

int api_upload_chunk(struct api_req *req, const char *data, size_t len)
{
    struct upload *u = req->state;
    int rc;
    if (!u->gz) {
        rc = feed_parser(u, data, len);
    } else {
        u->encoded += len;
        rc = gunzip_feed(u->gz, data, len);
        if (rc < 0 && !req->response) {
            if (rc == -EFBIG)
                api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                                  "decoded body over limits.max_body_size (%lld bytes)",
                                  (long long)req->app->cfg.max_body_size);
            else
                api_reply_problem(req, 400, "bad-gzip", "Bad Request", NULL,
                                  "the gzip-encoded body is corrupt");
        }
    }
    /* Refused: the rest of the body is discarded (server.c), so free the
     * rows now rather than when the client is done sending. */
    if (rc < 0)
        upload_release(u);
    return rc;
}

int api__writer_submit(struct api_req *req, struct writer_op *op, uint64_t bytes,
                       int (*fn)(struct store *, void *), void (*done)(void *, int), void *arg)
{
    const struct config *cfg = &req->app->cfg;
    const struct writer_limits lim = {(unsigned)cfg->max_writer_queue,
                                      (uint64_t)cfg->max_writer_queue_bytes};
    int rc = writer_try_submit(req->app->writer, op, bytes, &lim, fn, done, arg);

    if (rc == -EBUSY) {
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 503, "writer-busy", "Service Unavailable", NULL,
                          "%u writes (%llu bytes) already wait for the database writer "
                          "(limits.max_writer_queue %lld, limits.max_writer_queue_bytes %lld); "
                          "retry later",
                          writer_waiting(req->app->writer),
                          (unsigned long long)writer_waiting_bytes(req->app->writer),
                          (long long)cfg->max_writer_queue,
                          (long long)cfg->max_writer_queue_bytes);
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
    upload_release(u); /* free the rows now, not when the client reads */
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
        upload_release(u);
        return;
    }
    rc = upload_parser_finish(u->parser, &err);
    if (rc == 0)
        rc = batch_flush(u->batch); /* the last rows are applied here */
    if (rc < 0) {
        reply_parse_error(req, rc, &err);
        upload_release(u);
        return;
    }
    upload_drop_input(u);
    if (upload_check_memory(u) < 0) {
        upload_release(u);
        return;
    }
    if (batch_rows(u->batch) == 0) {
        struct store_commit_result none = {0};
        api_reply_json(req, 200, counts_json(u, &none));
        upload_release(u);
        return;
    }
    u->t_parsed = uv_hrtime();
    api_req_suspend(req);
    if (api__writer_submit(req, &u->op, batch_memory(u->batch), commit_fn, commit_done, u) < 0)
        upload_release(u);
}
