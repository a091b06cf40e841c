/*
 * /healthz, /readyz and /v1/info: liveness, readiness and what the daemon
 * holds. /v1/info reports the BLAS in use so users can tell an OpenBLAS
 * build (and its threading) from the reference BLAS.
 */
#include <cblas.h>

#include "api/api.h"
#include "serving/replica.h"
#include "api/server_internal.h"
#include "serving/serving.h"
#include "conf/app.h"
#include "storage/store.h"
#include "version.h"

void api_health_get(struct api_req *req)
{
    api_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void api_ready_get(struct api_req *req)
{
    struct app *app = req->app;
    if (app->draining) {
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 503, "draining", "Service Unavailable", NULL,
                          "itemvecd is shutting down");
        return;
    }
    if (!app->ready) {
        api_add_header(req, "Retry-After", "1");
        api_reply_problem(req, 503, "starting", "Service Unavailable", NULL,
                          "itemvecd is starting");
        return;
    }
    const char *starting = serving_starting(app);
    if (starting) {
        double frac = 0;
        char stage[32] = "read";
        serving_loading(app, starting, &frac, stage, sizeof stage);
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 503, "loading-model", "Service Unavailable", NULL,
                          "loading the active model %s for serving: %s, %.0f%% (GET "
                          "/v1/models/%s shows the progress)",
                          starting, stage, 100.0 * frac, starting);
        return;
    }
    struct replica_status rs;
    if (replica_status_get(app, &rs) == 0 && !serving_active(app)) {
        api_add_header(req, "Retry-After", "1");
        api_reply_problem(req, 503, "replica-syncing", "Service Unavailable", NULL,
                          "replica of %s: no model mirrored yet%s%s", rs.of,
                          rs.last_error[0] ? ": " : "", rs.last_error);
        return;
    }
    api_reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
}

void api_info_get(struct api_req *req)
{
    struct store_counts c;
    int rc = store_counts_get(req->app->store, &c);
    if (rc != 0) {
        api__reply_storage_error(req, rc);
        return;
    }
    json_t *build = json_pack("{s:s,s:s,s:s,s:s,s:i}", "type", ITEMVEC_BUILD_TYPE, "compiler",
                              ITEMVEC_COMPILER, "blas", openblas_get_config(), "blas_core",
                              openblas_get_corename(), "blas_threads",
                              openblas_get_num_threads());
    json_t *counts = json_pack("{s:I,s:I,s:I}", "playlists", (json_int_t)c.playlists, "items",
                               (json_int_t)c.items, "memberships", (json_int_t)c.memberships);
    struct served_model *m = serving_active(req->app);
    json_t *active = m ? json_pack("{s:s,s:I,s:I}", "id", m->id, "items", (json_int_t)m->data.n,
                                   "dimensions", (json_int_t)m->data.dimensions)
                       : json_null();
    json_t *body = json_pack("{s:s,s:o,s:o,s:o,s:I}", "version", ITEMVEC_VERSION, "build", build,
                             "counts", counts, "active_model", active, "uptime_seconds",
                             (json_int_t)((uv_now(req->app->loop) - req->app->started_ms) / 1000));
    struct replica_status rs;
    if (replica_status_get(req->app, &rs) == 0)
        json_object_set_new(body, "replica",
                            json_pack("{s:s,s:s?,s:o,s:I,s:I,s:s?}", "of", rs.of, "model",
                                      rs.model[0] ? rs.model : NULL, "lag_seconds",
                                      rs.lag_seconds < 0 ? json_null() : json_real(rs.lag_seconds),
                                      "syncs", (json_int_t)rs.syncs, "failures",
                                      (json_int_t)rs.failures, "last_error",
                                      rs.last_error[0] ? rs.last_error : NULL));
    api_reply_json(req, 200, body);
}
