/*
 * The seed's PMI in the user's SQL engine (GET /v1/pmi/sql): the data
 * preparation (the seed's cleaned `playlist` table and `vw_item_groups`
 * view) and sp_ComputePMI with the given parameters, as SQL text for
 * BigQuery (the seed's own statements), Spark SQL or DuckDB, ending with
 * the statement that exports item_cooc (item1_Id, item2_Id, cooc, pmi;
 * CSV with a header) for POST /v1/pmi/import. Pure text generation: no
 * I/O; the table name and output URI are client-controlled text pasted
 * into SQL, so both are checked against a strict grammar first.
 */
#ifndef ITEMVEC_JOBS_PMI_SQL_H
#define ITEMVEC_JOBS_PMI_SQL_H

#include <stddef.h>
#include <stdint.h>

enum pmi_sql_dialect { PMI_SQL_BIGQUERY, PMI_SQL_SPARK, PMI_SQL_DUCKDB };

struct pmi_sql_params {
    enum pmi_sql_dialect dialect;
    const char *table; /* source rows: playlist_id, item_id, title, artist */
    const char *out;   /* export destination; NULL: the dialect's default */
    int64_t min_item_frequency;
    int64_t max_group_size;
};

/* Parses "bigquery", "spark", "duckdb". 0 or -EINVAL. */
int pmi_sql_dialect_parse(const char *s, enum pmi_sql_dialect *out);

/* Checks a table name: 1 to 3 dot-separated parts (BigQuery: table must
 * be qualified by its dataset, 2 or 3 parts), each a letter or '_' then
 * letters, digits or '_' (a BigQuery project, the first of 3 parts, may
 * also hold '-'), at most 128 bytes a part. Returns NULL when valid, else
 * a reason (static text). */
const char *pmi_sql_table_invalid(enum pmi_sql_dialect d, const char *table);

/* Checks an output URI/path: 1..1024 printable ASCII bytes without quotes,
 * backslash, backtick or ';' (BigQuery: gs://... with exactly one '*').
 * NULL when valid, else a reason. */
const char *pmi_sql_out_invalid(enum pmi_sql_dialect d, const char *out);

/* Generates the script. *out is a malloc'ed NUL-terminated text (caller
 * frees), *len its length. Returns 0, -EINVAL (invalid table or out, or
 * parameters outside min_item_frequency >= 1, max_group_size >= 2; *why
 * says which), -ENOMEM. */
int pmi_sql_generate(const struct pmi_sql_params *p, char **out, size_t *len, const char **why);

#endif
