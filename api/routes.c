/*
 * The route table: every path of the HTTP API (../shared/API.md), its
 * method, how its body is read, its handler, whether it only reads
 * (read-only tokens may use those), and a JSON body's size bound (a job's
 * parameters fit in 64 KiB; a recommend body's 2 × 1000 ids of at most 256
 * bytes in 2 MiB even when every byte is escaped as \uXXXX by an
 * ASCII-only encoder, 3 bytes per byte of UTF-8; a PUT playlist is as
 * large as limits.max_json_body allows; 0 = that). Patterns double as the
 * route names in logs and metrics, so raw ids never become label values.
 */
#include "api/api.h"

const struct api_route api_routes[] = {
    {"GET", "/healthz", API_BODY_NONE, api_health_get, NULL, NULL, 1, 0},
    {"GET", "/readyz", API_BODY_NONE, api_ready_get, NULL, NULL, 1, 0},
    {"GET", "/metrics", API_BODY_NONE, api_metrics_get, NULL, NULL, 1, 0},
    {"GET", "/v1/info", API_BODY_NONE, api_info_get, NULL, NULL, 1, 0},
    {"POST", "/v1/admin/backup", API_BODY_NONE, api_admin_backup, NULL, NULL, 0, 0},
    {"POST", "/v1/playlists", API_BODY_STREAM, NULL, api_upload_begin, api_upload_chunk, 0, 0},
    {"GET", "/v1/playlists", API_BODY_NONE, api_playlists_list, NULL, NULL, 1, 0},
    {"GET", "/v1/playlists/{id}", API_BODY_NONE, api_playlist_get, NULL, NULL, 1, 0},
    {"PUT", "/v1/playlists/{id}", API_BODY_JSON, api_playlist_put, NULL, NULL, 0, 0},
    {"DELETE", "/v1/playlists/{id}", API_BODY_NONE, api_playlist_delete, NULL, NULL, 0, 0},
    {"GET", "/v1/items/{id}", API_BODY_NONE, api_item_get, NULL, NULL, 1, 0},
    {"GET", "/v1/items/{id}/cooccurrences", API_BODY_NONE, api_item_cooccurrences, NULL, NULL, 1,
     0},
    {"GET", "/v1/pmi/pairs", API_BODY_NONE, api_pmi_pairs, NULL, NULL, 1, 0},
    {"GET", "/v1/pmi/sql", API_BODY_NONE, api_pmi_sql, NULL, NULL, 1, 0},
    {"POST", "/v1/pmi/import", API_BODY_STREAM, api_import_finish, api_pmi_import_begin,
     api_import_chunk, 0, 0},
    {"POST", "/v1/jobs", API_BODY_JSON, api_jobs_post, NULL, NULL, 0, 64 << 10},
    {"GET", "/v1/jobs", API_BODY_NONE, api_jobs_list, NULL, NULL, 1, 0},
    {"GET", "/v1/jobs/{id}", API_BODY_NONE, api_job_get, NULL, NULL, 1, 0},
    {"POST", "/v1/jobs/{id}/cancel", API_BODY_NONE, api_job_cancel, NULL, NULL, 0, 0},
    {"GET", "/v1/items/{id}/similar", API_BODY_NONE, api_item_similar, NULL, NULL, 1, 0},
    {"POST", "/v1/recommend", API_BODY_JSON, api_recommend, NULL, NULL, 1, 2 << 20},
    {"GET", "/v1/models", API_BODY_NONE, api_models_list, NULL, NULL, 1, 0},
    {"POST", "/v1/models/import", API_BODY_STREAM, api_import_finish, api_model_import_begin,
     api_import_chunk, 0, 0},
    {"GET", "/v1/models/{id}", API_BODY_NONE, api_model_get, NULL, NULL, 1, 0},
    {"DELETE", "/v1/models/{id}", API_BODY_NONE, api_model_delete, NULL, NULL, 0, 0},
    {"POST", "/v1/models/{id}/activate", API_BODY_NONE, api_model_activate, NULL, NULL, 0, 0},
    {"GET", "/v1/models/{id}/embeddings", API_BODY_NONE, api_model_embeddings, NULL, NULL, 1, 0},
    {"GET", "/v1/embeddings", API_BODY_NONE, api_embeddings, NULL, NULL, 1, 0},
    /* Last, so that matching the routes above (the serving path) does not
     * get longer: the table is scanned in order. */
    {"GET", "/v1/items", API_BODY_NONE, api_items_search, NULL, NULL, 1, 0},
    {"GET", "/v1/openapi.json", API_BODY_NONE, api_openapi_get, NULL, NULL, 1, 0},
    {"GET", "/ui", API_BODY_NONE, api_ui_redirect, NULL, NULL, 1, 0},
    {"GET", "/ui/", API_BODY_NONE, api_ui_get, NULL, NULL, 1, 0},
    {"GET", "/ui/{file}", API_BODY_NONE, api_ui_get, NULL, NULL, 1, 0},
    {"GET", "/v1/replication/active", API_BODY_NONE, api_replication_active, NULL, NULL, 1, 0},
    {"GET", "/v1/replication/files/{id}", API_BODY_NONE, api_replication_file, NULL, NULL, 1, 0},
};

const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];
