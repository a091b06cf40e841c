/*
 * POST /v1/pmi/import and POST /v1/models/import: results computed
 * elsewhere, streamed in. As for uploads (route_upload.c), body chunks go
 * through the gzip decoder into the format's push parser on the loop
 * thread, a chunk at a time, and each row is handed to the importer
 * (jobs/import.h), which keeps it compactly; at the end of the body the
 * importer checks and stores on the worker pool and the writer while the
 * connection is suspended, and the answer (201 + Location) comes once the
 * result is durable. Errors: 400 with line/column for what is wrong where
 * it stands, 422 naming the pair or item for an inconsistent table, 413
 * over the limits, 415 for a wrong Content-Type/-Encoding, 429 while
 * another import of the kind runs; nothing is stored on any error.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "conf/app.h"
#include "ingest/cooc_parse.h"
#include "ingest/emb_parse.h"
#include "ingest/gunzip.h"
#include "jobs/import.h"

/* Largest embedding accepted: the most dimensions train produces (ml/wals.h
 * WALS_MAX_DIMENSIONS, which api/ may not include) times 4. */
#define IMPORT_MAX_DIMS 4096

enum kind { KIND_PMI, KIND_MODEL };

struct import_req {
    struct api_req *req;
    enum kind kind;
    enum upload_format format;
    struct gunzip *gz;
    struct cooc_parser *cp;
    struct emb_parser *ep;
    struct pmi_import *pi;
    struct model_import *mi;
    uint64_t decoded;
    struct import_error ierr; /* from the importer, via a row callback */
    int irc;
    struct pmi_import_params params;
    int activate;
};

static void import_req_destroy(void *p)
{
    struct import_req *ir = p;
    gunzip_destroy(ir->gz);
    cooc_parser_destroy(ir->cp);
    emb_parser_destroy(ir->ep);
    pmi_import_destroy(ir->pi);
    model_import_destroy(ir->mi);
    free(ir);
}

/* ---- errors ---- */

/* The answer for an importer error (jobs/import.h's codes). */
static void reply_import_error(struct api_req *req, int rc, const struct import_error *e)
{
    json_t *extra = json_object();
    if (e->line)
        json_object_set_new(extra, "line", json_integer((json_int_t)e->line));
    if (e->column)
        json_object_set_new(extra, "column", json_integer((json_int_t)e->column));
    if (e->item1[0] && e->item2[0])
        json_object_set_new(extra, "pair",
                            json_pack("[o,o]", api_json_str(e->item1), api_json_str(e->item2)));
    else if (e->item1[0] || e->item2[0])
        json_object_set_new(extra, "item", api_json_str(e->item1[0] ? e->item1 : e->item2));
    const char *msg = e->message[0] ? e->message : strerror(-rc);
    switch (rc) {
    case -EINVAL:
        api_reply_problem(req, 400, "parse-error", "Bad Request", extra, "%s", msg);
        break;
    case -EDOM:
        api_reply_problem(req, 422, "inconsistent-import", "Unprocessable Content", extra, "%s",
                          msg);
        break;
    case -E2BIG:
    case -EFBIG:
        api_reply_problem(req, 413, "import-too-large", "Payload Too Large", extra, "%s", msg);
        break;
    case -ENOMEM:
        json_decref(extra);
        api_reply_problem(req, 503, "out-of-memory", "Service Unavailable", NULL,
                          "not enough memory to hold the import");
        break;
    case -EBUSY:
    case -ESHUTDOWN:
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 503, rc == -EBUSY ? "import-conflict" : "draining",
                          "Service Unavailable", extra, "%s",
                          rc == -EBUSY ? msg : "itemvecd is shutting down");
        break;
    default:
        api_reply_problem(req, 500, "storage", "Storage Error", extra, "%s", msg);
    }
}

/* The answer for a parser error (line/column from the parser), or for the
 * importer's error that a row callback returned. */
static void reply_parse_error(struct import_req *ir, int rc, const struct upload_error *err)
{
    if (ir->irc && rc == ir->irc) {
        struct import_error e = ir->ierr;
        if (!e.line)
            e.line = err->line;
        reply_import_error(ir->req, rc, &e);
        return;
    }
    struct import_error e = {0};
    e.line = err->line;
    e.column = err->column;
    snprintf(e.message, sizeof e.message, "line %lu, column %lu: %s", err->line, err->column,
             err->message);
    if (rc == -E2BIG)
        snprintf(e.message, sizeof e.message, "line %lu: %s", err->line, err->message);
    reply_import_error(ir->req, rc == -E2BIG ? -E2BIG : rc, &e);
}

/* ---- rows ---- */

static int on_cooc_row(void *ud, const struct cooc_row *row, struct upload_error *err)
{
    struct import_req *ir = ud;
    int rc = pmi_import_add(ir->pi, row->item1, row->item1_len, row->item2, row->item2_len,
                            row->cooc, row->has_pmi, row->pmi, row->line, &ir->ierr);
    if (rc < 0)
        ir->irc = rc;
    return rc;
}

static int on_emb_row(void *ud, const struct emb_row *row, struct upload_error *err)
{
    struct import_req *ir = ud;
    int rc = model_import_add(ir->mi, row->id, row->id_len, row->values, row->dims, row->line,
                              &ir->ierr);
    if (rc < 0)
        ir->irc = rc;
    return rc;
}

static int feed_parser(void *ud, const char *data, size_t len)
{
    struct import_req *ir = ud;
    struct api_req *req = ir->req;
    ir->decoded += len;
    if ((int64_t)ir->decoded > req->app->cfg.max_body_size) {
        api_reply_problem(req, 413, "body-too-large", "Payload Too Large", NULL,
                          "body over limits.max_body_size (%lld bytes)",
                          (long long)req->app->cfg.max_body_size);
        return -EFBIG;
    }
    struct upload_error err = {0};
    int rc = ir->kind == KIND_PMI ? cooc_parser_feed(ir->cp, data, len, &err)
                                  : emb_parser_feed(ir->ep, data, len, &err);
    if (rc < 0) {
        reply_parse_error(ir, rc, &err);
        return rc == -E2BIG ? -EFBIG : rc;
    }
    return 0;
}

/* ---- begin ---- */

static int parse_bool(const char *s, int *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = 0;
    else
        return -EINVAL;
    return 0;
}

static int bad_param(struct api_req *req, const char *name, const char *detail)
{
    api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                      json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", name, "detail", detail),
                      "query parameter %s %s", name, detail);
    return -EINVAL;
}

/* Content-Type for each kind; 0 and the format, or replies 415. */
static int content_type(struct import_req *ir)
{
    struct api_req *req = ir->req;
    const char *ct = api_header(req, "Content-Type");
    if (ir->kind == KIND_PMI) {
        if (ct && upload_format_from_content_type(ct, &ir->format) == 0 &&
            ir->format != UPLOAD_FORMAT_JSON)
            return 0;
        api_add_header(req, "Accept-Post",
                       "text/csv, text/tab-separated-values, application/x-ndjson");
        api_reply_problem(req, 415, "unsupported-media-type", "Unsupported Media Type", NULL,
                          "Content-Type %s%.80s%s is not a co-occurrence table format; use "
                          "text/csv, text/tab-separated-values or application/x-ndjson",
                          ct ? "\"" : "", ct ? ct : "(missing)", ct ? "\"" : "");
        return -ENOTSUP;
    }
    if (ct) {
        size_t n = strcspn(ct, ";");
        while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
            n--;
        static const char *const ok[] = {"application/x-ndjson", "application/jsonl",
                                         "application/json", "application/x-jsonlines"};
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
            if (strlen(ok[i]) == n && strncasecmp(ct, ok[i], n) == 0) {
                ir->format = UPLOAD_FORMAT_NDJSON;
                return 0;
            }
    }
    api_add_header(req, "Accept-Post", "application/x-ndjson");
    api_reply_problem(req, 415, "unsupported-media-type", "Unsupported Media Type", NULL,
                      "Content-Type %s%.80s%s is not an embeddings format; send JSON lines "
                      "{\"id\",\"embedding\"} as application/x-ndjson",
                      ct ? "\"" : "", ct ? ct : "(missing)", ct ? "\"" : "");
    return -ENOTSUP;
}

static int query_params(struct import_req *ir)
{
    struct api_req *req = ir->req;
    if (ir->kind == KIND_MODEL) {
        const char *a = api_query(req, "activate");
        ir->activate = 0;
        if (a && parse_bool(a, &ir->activate) != 0)
            return bad_param(req, "activate", "must be true or false");
        return 0;
    }
    if (api_query_int(req, "min_item_frequency", 0, 1, 1000000000,
                      &ir->params.min_item_frequency) != 0 ||
        api_query_int(req, "max_group_size", 0, 2, 1000000000, &ir->params.max_group_size) != 0)
        return -EINVAL;
    ir->params.pmi_tolerance = -1;
    const char *t = api_query(req, "pmi_tolerance");
    if (t) {
        char *end;
        double v = strtod(t, &end);
        if (!*t || *end || !(v >= 0 && v <= 1))
            return bad_param(req, "pmi_tolerance", "must be a number in 0..1");
        ir->params.pmi_tolerance = v;
    }
    return 0;
}

static int begin(struct api_req *req, enum kind kind)
{
    struct app *app = req->app;
    if (app->draining) {
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 503, "draining", "Service Unavailable", NULL,
                          "itemvecd is shutting down");
        return -ESHUTDOWN;
    }
    struct import_req *ir = calloc(1, sizeof *ir);
    if (!ir) {
        api_reply_oom(req);
        return -ENOMEM;
    }
    req->state = ir;
    req->state_destroy = import_req_destroy;
    ir->req = req;
    ir->kind = kind;
    int rc;
    if ((rc = content_type(ir)) != 0 || (rc = query_params(ir)) != 0)
        return rc;
    int gz = 0;
    int rc_enc = api_body_encoding(req, &gz);
    if (rc_enc != 0)
        return rc_enc;
    uint64_t max_rows = (uint64_t)app->cfg.max_import_rows;
    size_t max_record = (size_t)app->cfg.max_record_size;
    if (kind == KIND_PMI) {
        rc = pmi_import_create(app, max_rows, &ir->pi);
        if (rc == 0 && !(ir->cp = cooc_parser_create(ir->format, max_record, on_cooc_row, ir)))
            rc = -ENOMEM;
    } else {
        rc = model_import_create(app, max_rows, IMPORT_MAX_DIMS, &ir->mi);
        if (rc == 0 && !(ir->ep = emb_parser_create(max_record, IMPORT_MAX_DIMS, on_emb_row, ir)))
            rc = -ENOMEM;
    }
    if (rc == 0 && gz &&
        !(ir->gz = gunzip_create((uint64_t)app->cfg.max_body_size + 1, feed_parser, ir)))
        rc = -ENOMEM;
    if (rc == -EBUSY) {
        api_add_header(req, "Retry-After", "10");
        api_reply_problem(req, 429, "import-running", "Too Many Requests", NULL,
                          "another %s import is running; try again when it has finished",
                          kind == KIND_PMI ? "co-occurrence" : "model");
    } else if (rc == -ESHUTDOWN) {
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 503, "draining", "Service Unavailable", NULL,
                          "itemvecd is shutting down");
    } else if (rc != 0) {
        api_reply_oom(req);
    }
    return rc;
}

int api_pmi_import_begin(struct api_req *req)
{
    return begin(req, KIND_PMI);
}

int api_model_import_begin(struct api_req *req)
{
    return begin(req, KIND_MODEL);
}

int api_import_chunk(struct api_req *req, const char *data, size_t len)
{
    struct import_req *ir = req->state;
    if (!ir->gz)
        return feed_parser(ir, data, len);
    int rc = gunzip_feed(ir->gz, data, len);
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

/* ---- end of body ---- */

static void import_done(void *arg, int rc, const struct import_error *err, json_t *answer,
                        const char *location)
{
    struct import_req *ir = arg;
    struct api_req *req = ir->req;
    if (rc == 0) {
        api_add_header(req, "Location", location);
        json_incref(answer);
        api_reply_json(req, 201, answer);
    } else {
        reply_import_error(req, rc, err);
    }
    /* the rows are gone; free the importer now, not when the client reads */
    pmi_import_destroy(ir->pi);
    model_import_destroy(ir->mi);
    ir->pi = NULL;
    ir->mi = NULL;
    api_req_resume(req);
}

void api_import_finish(struct api_req *req)
{
    struct import_req *ir = req->state;
    if (req->response || req->body_failed || !ir)
        return;
    int rc = ir->gz ? gunzip_finish(ir->gz) : 0;
    if (rc < 0) {
        api_reply_problem(req, 400, "bad-gzip", "Bad Request", NULL,
                          "the gzip-encoded body is truncated");
        return;
    }
    struct upload_error err = {0};
    rc = ir->kind == KIND_PMI ? cooc_parser_finish(ir->cp, &err) : emb_parser_finish(ir->ep, &err);
    if (rc < 0) {
        reply_parse_error(ir, rc, &err);
        return;
    }
    /* the parsers' buffers are no longer needed */
    cooc_parser_destroy(ir->cp);
    emb_parser_destroy(ir->ep);
    ir->cp = NULL;
    ir->ep = NULL;
    api_req_suspend(req);
    if (ir->kind == KIND_PMI) {
        ir->params.format = ir->format == UPLOAD_FORMAT_CSV   ? "csv"
                            : ir->format == UPLOAD_FORMAT_TSV ? "tsv"
                                                              : "ndjson";
        pmi_import_commit(ir->pi, &ir->params, import_done, ir);
    } else {
        model_import_commit(ir->mi, ir->activate, "jsonl", import_done, ir);
    }
}
