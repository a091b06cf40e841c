/*
 * The route table: every path of the HTTP API (../shared/API.md), its
 * method, how its body is read, and its handler. Patterns double as the
 * route names in logs and metrics, so raw ids never become label values.
 */
#include "api/api.h"

const struct api_route api_routes[] = {
    {"GET", "/healthz", API_BODY_NONE, api_health_get, NULL, NULL},
    {"GET", "/readyz", API_BODY_NONE, api_ready_get, NULL, NULL},
    {"GET", "/v1/info", API_BODY_NONE, api_info_get, NULL, NULL},
    {"POST", "/v1/playlists", API_BODY_STREAM, NULL, api_upload_begin, api_upload_chunk},
    {"GET", "/v1/playlists", API_BODY_NONE, api_playlists_list, NULL, NULL},
    {"GET", "/v1/playlists/{id}", API_BODY_NONE, api_playlist_get, NULL, NULL},
    {"PUT", "/v1/playlists/{id}", API_BODY_JSON, api_playlist_put, NULL, NULL},
    {"DELETE", "/v1/playlists/{id}", API_BODY_NONE, api_playlist_delete, NULL, NULL},
    {"GET", "/v1/items/{id}", API_BODY_NONE, api_item_get, NULL, NULL},
    {"GET", "/v1/items/{id}/cooccurrences", API_BODY_NONE, api_item_cooccurrences, NULL, NULL},
    {"GET", "/v1/pmi/pairs", API_BODY_NONE, api_pmi_pairs, NULL, NULL},
    {"POST", "/v1/jobs", API_BODY_JSON, api_jobs_post, NULL, NULL},
    {"GET", "/v1/jobs", API_BODY_NONE, api_jobs_list, NULL, NULL},
    {"GET", "/v1/jobs/{id}", API_BODY_NONE, api_job_get, NULL, NULL},
    {"POST", "/v1/jobs/{id}/cancel", API_BODY_NONE, api_job_cancel, NULL, NULL},
};

const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];
