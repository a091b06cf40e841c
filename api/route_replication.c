/*
 * Replication (issue 14), both sides of it in HTTP:
 *   primary  GET /v1/replication/active        what a replica mirrors: the
 *            active model, its payload CRC, whether it has an ANN index;
 *            ETag "<model>-<crc>-<ann 0|1>", If-None-Match → 304
 *            GET /v1/replication/files/{part}?model=ID   the bytes: part
 *            model (the .emb file), names (replica.h's names blob), ann,
 *            ann-cos, ann-lists (the index files); 409 when ID is no longer
 *            the active model (the replica retries on its next poll)
 *   replica  writes (routes that are not is_read) refused with 403 naming
 *            the primary (api__replica_refuse)
 * Loop thread; files are sent with MHD's sendfile path, not read here.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "conf/app.h"
#include "serving/ann_index.h"
#include "serving/replica.h"
#include "serving/serving.h"
#include "storage/models.h"
#include "storage/store.h"

int api__replica_refuse(struct api_req *req)
{
    struct replica_status st;
    if ((req->route && req->route->is_read) || strcmp(req->method, "GET") == 0 ||
        strcmp(req->method, "HEAD") == 0 || replica_status_get(req->app, &st) != 0)
        return 0; /* reads, POST /v1/recommend among them, are served */
    api_reply_problem(
        req, 403, "read-only-replica", "Forbidden", json_pack("{s:s}", "primary", st.of),
        "this daemon is a read-only replica of %s: send writes to the primary", st.of);
    return -EPERM;
}

/* The stored file of the active model, or NULL after replying. */
static struct served_model *active_or_reply(struct api_req *req)
{
    struct served_model *m = serving_active(req->app);
    if (!m)
        api_reply_problem(req, 409, "no-active-model", "Conflict", NULL, "no model is active");
    return m;
}

static int has_ann_files(struct api_req *req, const struct served_model *m, const char *file)
{
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/models/%s%s", req->app->cfg.state_dir, file,
             ann_index_suffixes[0]);
    return m->ann && stat(path, &st) == 0;
}

void api_replication_active(struct api_req *req)
{
    struct served_model *m = active_or_reply(req);
    struct store_model rec;
    if (!m)
        return;
    if (store_model_get(req->app->store, m->id, &rec) != 0) {
        api_reply_problem(req, 409, "no-active-model", "Conflict", NULL,
                          "the active model %s has no record", m->id);
        return;
    }
    int ann = has_ann_files(req, m, rec.file);
    char etag[96];
    snprintf(etag, sizeof etag, "\"%s-%u-%d\"", m->id, (unsigned)m->data.crc, ann);
    api_add_header(req, "ETag", etag);
    api_add_header(req, "Cache-Control", "no-cache");
    const char *inm = api_header(req, "If-None-Match");
    if (inm && strcmp(inm, etag) == 0)
        api_reply_empty(req, 304);
    else
        api_reply_json(req, 200,
                       json_pack("{s:s,s:I,s:I,s:I,s:b,s:s}", "model", m->id, "crc",
                                 (json_int_t)m->data.crc, "items", (json_int_t)m->data.n,
                                 "dimensions", (json_int_t)m->data.dimensions, "ann", ann, "index",
                                 served_model_index_kind(m)));
    store_model_deinit(&rec);
}

static void reply_fd_file(struct api_req *req, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "this file is not there");
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    api_reply_response(req, 200, resp);
}

void api_replication_file(struct api_req *req)
{
    const char *part = api_param(req, 0), *model = api_query(req, "model");
    struct served_model *m = active_or_reply(req);
    struct store_model rec;
    if (!m)
        return;
    if (!model || strcmp(model, m->id) != 0) {
        api_reply_problem(req, 409, "not-active", "Conflict", NULL,
                          "model %.40s is not the active model (%s)", model ? model : "(none)",
                          m->id);
        return;
    }
    if (strcmp(part, "names") == 0) {
        unsigned char *b;
        size_t len;
        if (replica_names_encode(m, &b, &len) != 0) {
            api_reply_oom(req);
            return;
        }
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, b, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
        api_reply_response(req, 200, resp);
        return;
    }
    if (store_model_get(req->app->store, m->id, &rec) != 0) {
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no record of %s", m->id);
        return;
    }
    char path[1200];
    int ok = 1;
    if (strcmp(part, "model") == 0)
        snprintf(path, sizeof path, "%s/models/%s", req->app->cfg.state_dir, rec.file);
    else if (strcmp(part, "ann") == 0 || strcmp(part, "ann-cos") == 0 ||
             strcmp(part, "ann-lists") == 0)
        snprintf(path, sizeof path, "%s/models/%s.%s", req->app->cfg.state_dir, rec.file, part);
    else
        ok = 0;
    store_model_deinit(&rec);
    if (!ok)
        api_reply_problem(req, 404, "not-found", "Not Found", NULL,
                          "part must be model, names, ann, ann-cos or ann-lists");
    else
        reply_fd_file(req, path);
}
