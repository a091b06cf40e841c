/*
 * SQL for the seed's PMI in other engines (see pmi_sql.h).
 *
 * Translation notes (also in docs/scale-out.md):
 * - The preparation keeps one row per (playlist, item), as itemvecd
 *   stores memberships as a set (the seed's SELECT DISTINCT over four
 *   columns would count an item twice in a playlist if two rows gave it
 *   different titles), and applies itemvecd's cleaning rules: a missing
 *   or empty title, or an item id that is an integer <= 0, skips the row.
 * - BigQuery gets the seed's statements, procedure and CALL unchanged but
 *   for the dataset. Spark SQL and DuckDB have no procedures: the body
 *   follows with the parameters in place, the DECLAREd total becomes a
 *   one-row table, and each CREATE OR REPLACE that read its own table
 *   writes a new name (item_cooc_pairs, item_cooc_sym), since neither
 *   engine may overwrite a table it is reading. LOG(x, 2) is LOG2(x) on
 *   a DOUBLE, evaluated in the seed's order (cooc_pmi in ml/cooc.h).
 * - Ids are strings: a.item_Id < b.item_Id orders them as strings, which
 *   only decides which orientation the first item_cooc holds before the
 *   mirror rows are added; the result is the same.
 */
#include "jobs/pmi_sql.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pmi_sql_dialect_parse(const char *s, enum pmi_sql_dialect *out)
{
    if (!s)
        return -EINVAL;
    if (strcmp(s, "bigquery") == 0)
        *out = PMI_SQL_BIGQUERY;
    else if (strcmp(s, "spark") == 0)
        *out = PMI_SQL_SPARK;
    else if (strcmp(s, "duckdb") == 0)
        *out = PMI_SQL_DUCKDB;
    else
        return -EINVAL;
    return 0;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

const char *pmi_sql_table_invalid(enum pmi_sql_dialect d, const char *t)
{
    if (!t || !*t)
        return "is required: the table holding the playlist rows";
    if (strlen(t) > 400)
        return "is longer than 400 bytes";
    int parts = 1;
    for (const char *p = t; *p; p++)
        parts += *p == '.';
    if (parts > 3)
        return "has more than 3 dot-separated parts";
    if (d == PMI_SQL_BIGQUERY && parts < 2)
        return "must name the dataset for BigQuery: dataset.table or project.dataset.table";
    int part = 0;
    const char *p = t;
    while (1) {
        const char *s = p;
        int project = d == PMI_SQL_BIGQUERY && parts == 3 && part == 0;
        if (!is_alpha(*p) && !(project && is_digit(*p)))
            return "parts must start with a letter or '_' (allowed: letters, digits, '_', "
                   "and '-' in a BigQuery project)";
        while (is_alpha(*p) || is_digit(*p) || (project && *p == '-'))
            p++;
        if (p - s > 128)
            return "has a part longer than 128 bytes";
        if (*p == '\0')
            return NULL;
        if (*p != '.')
            return "may only hold letters, digits, '_' and '.' between parts (and '-' in a "
                   "BigQuery project)";
        p++;
        part++;
    }
}

const char *pmi_sql_out_invalid(enum pmi_sql_dialect d, const char *out)
{
    size_t n = strlen(out), stars = 0;
    if (n == 0 || n > 1024)
        return "must be 1..1024 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c > 0x7e || c == '\'' || c == '"' || c == '\\' || c == '`' || c == ';')
            return "may hold printable ASCII only, without quotes, backslash, backtick or ';'";
        stars += c == '*';
    }
    if (d == PMI_SQL_BIGQUERY && (strncmp(out, "gs://", 5) != 0 || stars != 1))
        return "must be a gs:// URI with exactly one '*' for BigQuery's EXPORT DATA (e.g. "
               "gs://bucket/item_cooc/part-*.csv)";
    return NULL;
}

struct sb {
    char *p;
    size_t len, cap;
    int failed;
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* Quoted name: `a.b.c` for BigQuery (one pair of backticks around the
 * path), `a`.`b` for Spark, "a"."b" for DuckDB. prefix_only: the table's
 * qualifier followed by name (an intermediate table next to the source). */
static void name(struct sb *b, enum pmi_sql_dialect d, const char *table, const char *obj)
{
    const char *last = strrchr(table, '.');
    size_t qlen = last ? (size_t)(last - table) : 0;
    char q = d == PMI_SQL_DUCKDB ? '"' : '`';
    if (d == PMI_SQL_BIGQUERY) {
        if (obj)
            sb_printf(b, "`%.*s.%s`", (int)qlen, table, obj);
        else
            sb_printf(b, "`%s`", table);
        return;
    }
    const char *s = table, *end = obj ? table + qlen : table + strlen(table);
    while (s < end) {
        const char *dot = memchr(s, '.', (size_t)(end - s));
        const char *e = dot ? dot : end;
        sb_printf(b, "%c%.*s%c.", q, (int)(e - s), s, q);
        s = e + 1;
    }
    if (obj)
        sb_printf(b, "%c%s%c", q, obj, q);
    else
        b->len--; /* the last '.' */
}

static const char *default_out(enum pmi_sql_dialect d)
{
    return d == PMI_SQL_SPARK ? "item_cooc_csv" : "item_cooc.csv";
}

static void header(struct sb *b, const struct pmi_sql_params *p, const char *out)
{
    static const char *const engine[] = {"BigQuery (the seed's own engine)", "Spark SQL", "DuckDB"};
    static const char *const run[] = {"bq query --use_legacy_sql=false < pmi.sql",
                                      "spark-sql -f pmi.sql", "duckdb DB < pmi.sql"};
    sb_printf(b,
              "-- itemvecd: the seed's data preparation and sp_ComputePMI for %s.\n"
              "-- Source rows: %s (playlist_id, item_id, title, artist; ids as strings), as an\n"
              "-- upload to POST /v1/playlists carries them. Parameters: min_item_frequency = "
              "%lld,\n"
              "-- max_group_size = %lld. Run it whole, e.g.: %s\n"
              "-- It ends by exporting item_cooc (item1_Id, item2_Id, cooc, pmi; CSV with a "
              "header)\n-- to %s; then load that into itemvecd (shards may be concatenated):\n"
              "--   cat <files> | curl -X POST -H 'Content-Type: text/csv' -T - \\\n"
              "--     'http://HOST/v1/pmi/import?min_item_frequency=%lld&max_group_size=%lld'\n\n",
              engine[p->dialect], p->table, (long long)p->min_item_frequency,
              (long long)p->max_group_size, run[p->dialect], out, (long long)p->min_item_frequency,
              (long long)p->max_group_size);
}

/* itemvecd's cleaning rules (ingest/upload_rows.c) in each dialect. */
static void preparation(struct sb *b, const struct pmi_sql_params *p)
{
    enum pmi_sql_dialect d = p->dialect;
    const char *any = d == PMI_SQL_SPARK ? "first" : "ANY_VALUE";
    const char *re = d == PMI_SQL_BIGQUERY ? "REGEXP_CONTAINS(item_id, r'^(-[0-9]+|[+]?0+)$')"
                     : d == PMI_SQL_SPARK  ? "item_id RLIKE '^(-[0-9]+|[+]?0+)$'"
                                           : "regexp_matches(item_id, '^(-[0-9]+|[+]?0+)$')";
    sb_printf(b, "-- The seed's cleaned copy of the playlists: one row per (playlist, item), "
                 "rows with\n-- a missing or empty title or an item id <= 0 left out.\n");
    if (d == PMI_SQL_SPARK) {
        sb_printf(b, "DROP TABLE IF EXISTS ");
        name(b, d, p->table, "playlist");
        sb_printf(b, ";\nCREATE TABLE ");
        name(b, d, p->table, "playlist");
        sb_printf(b, " USING parquet\n");
    } else {
        sb_printf(b, "CREATE OR REPLACE TABLE ");
        name(b, d, p->table, "playlist");
        sb_printf(b, "\n");
    }
    sb_printf(b,
              "AS\nSELECT\n    playlist_id AS list_Id,\n    item_id AS track_Id,\n"
              "    %s(title) AS track_title,\n    %s(artist) AS track_artist\nFROM ",
              any, any);
    name(b, d, p->table, NULL);
    sb_printf(b,
              "\nWHERE title IS NOT NULL AND title <> '' AND NOT %s\n"
              "GROUP BY playlist_id, item_id;\n\n",
              re);
    sb_printf(b, "CREATE OR REPLACE %sVIEW ", d == PMI_SQL_SPARK ? "TEMPORARY " : "");
    name(b, d, p->table, "vw_item_groups");
    sb_printf(b, "\nAS\nSELECT\n  list_Id AS group_Id,\n  track_Id AS item_Id\nFROM\n  ");
    name(b, d, p->table, "playlist");
    sb_printf(b, ";\n\n");
}

static void bigquery(struct sb *b, const struct pmi_sql_params *p, const char *out)
{
    const char *t = p->table;
#define N(obj) name(b, PMI_SQL_BIGQUERY, t, obj)
    sb_printf(b, "-- sp_ComputePMI exactly as the seed creates it.\nCREATE OR REPLACE PROCEDURE ");
    N("sp_ComputePMI");
    sb_printf(b, "(\nIN min_item_frequency INT64,\nIN max_group_size INT64\n)\n\nBEGIN\n\n"
                 "DECLARE total INT64;\n\n# Get items with minimum frequency\n"
                 "CREATE OR REPLACE TABLE ");
    N("valid_item_groups");
    sb_printf(b, "\nAS\n\n# Create valid item set\nWITH \nvalid_items AS (\n"
                 "    SELECT item_Id, COUNT(group_Id) AS item_frequency\n    FROM ");
    N("vw_item_groups");
    sb_printf(b, "\n    GROUP BY item_Id\n    HAVING item_frequency >= min_item_frequency\n),\n\n"
                 "# Create valid group set\nvalid_groups AS (\n"
                 "    SELECT group_Id, COUNT(item_Id) AS group_size\n    FROM ");
    N("vw_item_groups");
    sb_printf(b, "\n    WHERE item_Id IN (SELECT item_Id FROM valid_items)\n    GROUP BY group_Id\n"
                 "    HAVING group_size BETWEEN 2 AND max_group_size\n)\n\n"
                 "SELECT item_Id, group_Id\nFROM ");
    N("vw_item_groups");
    sb_printf(b, "\nWHERE item_Id IN (SELECT item_Id FROM valid_items)\n"
                 "AND group_Id IN (SELECT group_Id FROM valid_groups);\n\n"
                 "# Compute pairwise cooc\nCREATE OR REPLACE TABLE ");
    N("item_cooc");
    sb_printf(b, "\nAS\nSELECT item1_Id, item2_Id, SUM(cooc) AS cooc\nFROM\n(\n    SELECT\n"
                 "    a.item_Id item1_Id,\n    b.item_Id item2_Id,\n    1 as cooc\n    FROM ");
    N("valid_item_groups");
    sb_printf(b, " a\n    JOIN ");
    N("valid_item_groups");
    sb_printf(b, " b\n    ON a.group_Id = b.group_Id\n    AND a.item_Id < b.item_Id\n)\n"
                 "GROUP BY  item1_Id, item2_Id;\n\n"
                 "# Compute item frequencies\nCREATE OR REPLACE TABLE ");
    N("item_frequency");
    sb_printf(b, "\nAS\nSELECT item_Id, COUNT(group_Id) AS frequency\nFROM ");
    N("valid_item_groups");
    sb_printf(b, "\nGROUP BY item_Id;\n\n# Compute total frequency |D|\nSET total = (\n"
                 "    SELECT SUM(frequency)  AS total\n    FROM ");
    N("item_frequency");
    sb_printf(b, "\n);\n\n# Add mirror item-pair cooc and same item frequency as cooc\n"
                 "CREATE OR REPLACE TABLE ");
    N("item_cooc");
    sb_printf(b, "\nAS\nSELECT item1_Id, item2_Id, cooc\nFROM ");
    N("item_cooc");
    sb_printf(b, "\nUNION ALL\nSELECT item2_Id as item1_Id, item1_Id AS item2_Id, cooc\nFROM ");
    N("item_cooc");
    sb_printf(b, "\nUNION ALL\nSELECT item_Id as item1_Id, item_Id AS item2_Id, frequency as cooc\n"
                 "FROM ");
    N("item_frequency");
    sb_printf(b, ";\n\n# Compute PMI\nCREATE OR REPLACE TABLE ");
    N("item_cooc");
    sb_printf(b, "\nAS\nSELECT\n    a.item1_Id,\n    a.item2_Id,\n    a.cooc,\n"
                 "    LOG(a.cooc, 2) - LOG(b.frequency, 2) - LOG(c.frequency, 2) + LOG(total, 2) "
                 "AS pmi\nFROM ");
    N("item_cooc");
    sb_printf(b, " a\nJOIN ");
    N("item_frequency");
    sb_printf(b, " b\nON a.item1_Id = b.item_Id\nJOIN ");
    N("item_frequency");
    sb_printf(b, " c\nON a.item2_Id = c.item_Id;\nEND;\n\nCALL ");
    N("sp_ComputePMI");
    sb_printf(b,
              "(%lld, %lld);\n\n-- The export for POST /v1/pmi/import.\n"
              "EXPORT DATA OPTIONS (uri = '%s', format = 'CSV', overwrite = true, "
              "header = true)\nAS\nSELECT item1_Id, item2_Id, cooc, pmi\nFROM ",
              (long long)p->min_item_frequency, (long long)p->max_group_size, out);
    N("item_cooc");
    sb_printf(b, ";\n");
#undef N
}

/* Spark SQL and DuckDB: the procedure's body with the parameters in place. */
static void inline_body(struct sb *b, const struct pmi_sql_params *p, const char *out)
{
    enum pmi_sql_dialect d = p->dialect;
    const char *t = p->table;
#define N(obj) name(b, d, t, obj)
#define CREATE(obj)                                                                                \
    do {                                                                                           \
        if (d == PMI_SQL_SPARK) {                                                                  \
            sb_printf(b, "DROP TABLE IF EXISTS ");                                                 \
            N(obj);                                                                                \
            sb_printf(b, ";\nCREATE TABLE ");                                                      \
            N(obj);                                                                                \
            sb_printf(b, " USING parquet\n");                                                      \
        } else {                                                                                   \
            sb_printf(b, "CREATE OR REPLACE TABLE ");                                              \
            N(obj);                                                                                \
            sb_printf(b, "\n");                                                                    \
        }                                                                                          \
    } while (0)
    sb_printf(b,
              "-- sp_ComputePMI(%lld, %lld): the seed's procedure body with its parameters "
              "in place.\n\n-- Get items with minimum frequency\n",
              (long long)p->min_item_frequency, (long long)p->max_group_size);
    CREATE("valid_item_groups");
    sb_printf(b,
              "AS\nWITH\nvalid_items AS (\n    SELECT item_Id, COUNT(group_Id) AS item_frequency\n"
              "    FROM ");
    N("vw_item_groups");
    sb_printf(b,
              "\n    GROUP BY item_Id\n    HAVING COUNT(group_Id) >= %lld\n),\n"
              "valid_groups AS (\n    SELECT group_Id, COUNT(item_Id) AS group_size\n    FROM ",
              (long long)p->min_item_frequency);
    N("vw_item_groups");
    sb_printf(b,
              "\n    WHERE item_Id IN (SELECT item_Id FROM valid_items)\n    GROUP BY group_Id\n"
              "    HAVING COUNT(item_Id) BETWEEN 2 AND %lld\n)\nSELECT item_Id, group_Id\nFROM ",
              (long long)p->max_group_size);
    N("vw_item_groups");
    sb_printf(b, "\nWHERE item_Id IN (SELECT item_Id FROM valid_items)\n"
                 "AND group_Id IN (SELECT group_Id FROM valid_groups);\n\n"
                 "-- Compute pairwise cooc\n");
    CREATE("item_cooc_pairs");
    sb_printf(b,
              "AS\nSELECT item1_Id, item2_Id, SUM(cooc) AS cooc\nFROM\n(\n    SELECT\n"
              "    a.item_Id AS item1_Id,\n    b.item_Id AS item2_Id,\n    1 AS cooc\n    FROM ");
    N("valid_item_groups");
    sb_printf(b, " a\n    JOIN ");
    N("valid_item_groups");
    sb_printf(b, " b\n    ON a.group_Id = b.group_Id\n    AND a.item_Id < b.item_Id\n) pairs\n"
                 "GROUP BY item1_Id, item2_Id;\n\n-- Compute item frequencies\n");
    CREATE("item_frequency");
    sb_printf(b, "AS\nSELECT item_Id, COUNT(group_Id) AS frequency\nFROM ");
    N("valid_item_groups");
    sb_printf(b, "\nGROUP BY item_Id;\n\n-- Compute total frequency |D| (the procedure's "
                 "variable, as a one-row table)\n");
    CREATE("item_total");
    sb_printf(b, "AS\nSELECT SUM(frequency) AS total\nFROM ");
    N("item_frequency");
    sb_printf(b, ";\n\n-- Add mirror item-pair cooc and same item frequency as cooc\n");
    CREATE("item_cooc_sym");
    sb_printf(b, "AS\nSELECT item1_Id, item2_Id, cooc\nFROM ");
    N("item_cooc_pairs");
    sb_printf(b, "\nUNION ALL\nSELECT item2_Id AS item1_Id, item1_Id AS item2_Id, cooc\nFROM ");
    N("item_cooc_pairs");
    sb_printf(b, "\nUNION ALL\nSELECT item_Id AS item1_Id, item_Id AS item2_Id, frequency AS cooc\n"
                 "FROM ");
    N("item_frequency");
    sb_printf(b, ";\n\n-- Compute PMI\n");
    CREATE("item_cooc");
    sb_printf(b, "AS\nSELECT\n    a.item1_Id,\n    a.item2_Id,\n    a.cooc,\n"
                 "    LOG2(CAST(a.cooc AS DOUBLE)) - LOG2(CAST(b.frequency AS DOUBLE))"
                 " - LOG2(CAST(c.frequency AS DOUBLE))\n      + LOG2(CAST(t.total AS DOUBLE)) "
                 "AS pmi\nFROM ");
    N("item_cooc_sym");
    sb_printf(b, " a\nJOIN ");
    N("item_frequency");
    sb_printf(b, " b\nON a.item1_Id = b.item_Id\nJOIN ");
    N("item_frequency");
    sb_printf(b, " c\nON a.item2_Id = c.item_Id\nCROSS JOIN ");
    N("item_total");
    sb_printf(b, " t;\n\n-- The export for POST /v1/pmi/import.\n");
    if (d == PMI_SQL_SPARK) {
        sb_printf(b,
                  "INSERT OVERWRITE DIRECTORY '%s'\nUSING csv OPTIONS (header 'true')\n"
                  "SELECT item1_Id, item2_Id, cooc, pmi\nFROM ",
                  out);
        N("item_cooc");
        sb_printf(b, ";\n");
    } else {
        sb_printf(b, "COPY (SELECT item1_Id, item2_Id, cooc, pmi FROM ");
        N("item_cooc");
        sb_printf(b, ") TO '%s' (FORMAT csv, HEADER);\n", out);
    }
#undef CREATE
#undef N
}

int pmi_sql_generate(const struct pmi_sql_params *p, char **out_text, size_t *len, const char **why)
{
    *out_text = NULL;
    *why = NULL;
    if ((*why = pmi_sql_table_invalid(p->dialect, p->table)) != NULL)
        return -EINVAL;
    const char *out = p->out ? p->out : NULL;
    if (!out && p->dialect == PMI_SQL_BIGQUERY) {
        *why = "out is required for BigQuery: a gs:// URI with one '*'";
        return -EINVAL;
    }
    if (!out)
        out = default_out(p->dialect);
    if ((*why = pmi_sql_out_invalid(p->dialect, out)) != NULL)
        return -EINVAL;
    if (p->min_item_frequency < 1 || p->max_group_size < 2) {
        *why = "min_item_frequency must be >= 1 and max_group_size >= 2";
        return -EINVAL;
    }
    struct sb b = {malloc(8192), 0, 8192, 0};
    if (!b.p)
        return -ENOMEM;
    header(&b, p, out);
    preparation(&b, p);
    if (p->dialect == PMI_SQL_BIGQUERY)
        bigquery(&b, p, out);
    else
        inline_body(&b, p, out);
    if (b.failed) {
        free(b.p);
        return -ENOMEM;
    }
    *out_text = b.p;
    *len = b.len;
    return 0;
}
