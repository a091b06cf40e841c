/*
 * GET /v1/pmi/sql?dialect=bigquery|spark|duckdb&table=T[&out=URI]
 *     [&min_item_frequency=15&max_group_size=100]
 * The seed's data preparation and sp_ComputePMI for the user's engine
 * (jobs/pmi_sql.c), as application/sql text ending with the export of
 * item_cooc for POST /v1/pmi/import. table and out are pasted into SQL:
 * both are checked against a strict grammar and refused (400 naming the
 * parameter) otherwise.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "jobs/pmi_sql.h"

static void bad(struct api_req *req, const char *name, const char *why)
{
    api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                      json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", name, "detail", why),
                      "query parameter %s %s", name, why);
}

void api_pmi_sql(struct api_req *req)
{
    struct pmi_sql_params p = {0};
    const char *d = api_query(req, "dialect");
    if (!d || pmi_sql_dialect_parse(d, &p.dialect) != 0) {
        bad(req, "dialect", "must be bigquery, spark or duckdb");
        return;
    }
    if (api_query_int(req, "min_item_frequency", 15, 1, 1000000000, &p.min_item_frequency) != 0 ||
        api_query_int(req, "max_group_size", 100, 2, 1000000000, &p.max_group_size) != 0)
        return;
    p.table = api_query(req, "table");
    const char *why = pmi_sql_table_invalid(p.dialect, p.table);
    if (why) {
        bad(req, "table", why);
        return;
    }
    p.out = api_query(req, "out");
    if (p.out && (why = pmi_sql_out_invalid(p.dialect, p.out)) != NULL) {
        bad(req, "out", why);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = pmi_sql_generate(&p, &text, &len, &why);
    if (rc == -EINVAL) {
        bad(req, p.dialect == PMI_SQL_BIGQUERY && !p.out ? "out" : "table", why);
        return;
    }
    if (rc != 0) {
        api_reply_oom(req);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        api_reply_oom(req);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/sql; charset=utf-8");
    char disp[80];
    snprintf(disp, sizeof disp, "inline; filename=\"itemvec-pmi-%s.sql\"", d);
    MHD_add_response_header(resp, "Content-Disposition", disp);
    api_reply_response(req, 200, resp);
}
