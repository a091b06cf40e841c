/*
 * Unit tests for the SQL generator of GET /v1/pmi/sql (jobs/pmi_sql.h):
 * the identifier and URI grammars that keep client text from changing the
 * SQL, and the shape of each dialect's script (parameters in place, names
 * quoted and qualified, the export last).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/pmi_sql.h"

static void test_table_grammar(void **state)
{
    const char *ok[] = {"t", "_t1", "db.t", "a.b.c", "T_2.x_Y"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_null(pmi_sql_table_invalid(PMI_SQL_DUCKDB, ok[i]));
    const char *bad[] = {"",   "1t",  "t;", "t x", "a.b.c.d", "a..b", ".a", "a.",
                         "t'", "t\"", "t`", "t-1", "t/*",     "é",    "t\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_non_null(pmi_sql_table_invalid(PMI_SQL_DUCKDB, bad[i]));
        assert_non_null(pmi_sql_table_invalid(PMI_SQL_SPARK, bad[i]));
    }
    assert_null(pmi_sql_table_invalid(PMI_SQL_BIGQUERY, "my-proj-1.ds.t"));
    assert_null(pmi_sql_table_invalid(PMI_SQL_BIGQUERY, "ds.t"));
    assert_non_null(pmi_sql_table_invalid(PMI_SQL_BIGQUERY, "t"));
    assert_non_null(pmi_sql_table_invalid(PMI_SQL_BIGQUERY, "ds.t-1"));
    assert_non_null(pmi_sql_table_invalid(PMI_SQL_BIGQUERY, "p.d-s.t"));
    char longp[200];
    memset(longp, 'a', 129);
    longp[129] = '\0';
    assert_non_null(pmi_sql_table_invalid(PMI_SQL_DUCKDB, longp));
    longp[128] = '\0';
    assert_null(pmi_sql_table_invalid(PMI_SQL_DUCKDB, longp));
    assert_null(pmi_sql_out_invalid(PMI_SQL_DUCKDB, "/tmp/x y.csv"));
    assert_non_null(pmi_sql_out_invalid(PMI_SQL_DUCKDB, "x');DROP TABLE t;--"));
    assert_non_null(pmi_sql_out_invalid(PMI_SQL_DUCKDB, "a\\b"));
    assert_non_null(pmi_sql_out_invalid(PMI_SQL_DUCKDB, ""));
    assert_null(pmi_sql_out_invalid(PMI_SQL_BIGQUERY, "gs://b/p-*.csv"));
    assert_non_null(pmi_sql_out_invalid(PMI_SQL_BIGQUERY, "gs://b/p.csv"));
    assert_non_null(pmi_sql_out_invalid(PMI_SQL_BIGQUERY, "/tmp/*.csv"));
}

static char *gen(enum pmi_sql_dialect d, const char *table, const char *out)
{
    struct pmi_sql_params p = {d, table, out, 15, 100};
    char *text;
    size_t len;
    const char *why;
    int rc = pmi_sql_generate(&p, &text, &len, &why);
    if (rc != 0)
        return NULL;
    assert_int_equal(strlen(text), len);
    return text;
}

static void test_dialects(void **state)
{
    char *s = gen(PMI_SQL_DUCKDB, "main.rows", NULL);
    assert_non_null(s);
    assert_non_null(strstr(s, "FROM \"main\".\"rows\""));
    assert_non_null(strstr(s, "CREATE OR REPLACE TABLE \"main\".\"item_cooc\""));
    assert_non_null(strstr(s, "HAVING COUNT(group_Id) >= 15"));
    assert_non_null(strstr(s, "BETWEEN 2 AND 100"));
    assert_non_null(strstr(s, "TO 'item_cooc.csv' (FORMAT csv, HEADER);\n"));
    assert_null(strstr(s, "CALL "));
    assert_null(strstr(s, "PROCEDURE"));
    free(s);
    s = gen(PMI_SQL_SPARK, "rows", "/data/out");
    assert_non_null(s);
    assert_non_null(
        strstr(s, "DROP TABLE IF EXISTS `item_cooc`;\nCREATE TABLE `item_cooc` USING parquet"));
    assert_non_null(strstr(s, "INSERT OVERWRITE DIRECTORY '/data/out'"));
    assert_non_null(strstr(s, "item_id RLIKE"));
    free(s);
    s = gen(PMI_SQL_BIGQUERY, "p.ds.rows", "gs://b/*.csv");
    assert_non_null(s);
    assert_non_null(strstr(s, "CREATE OR REPLACE PROCEDURE `p.ds.sp_ComputePMI`("));
    assert_non_null(strstr(s, "CALL `p.ds.sp_ComputePMI`(15, 100);"));
    assert_non_null(strstr(s, "FROM `p.ds.rows`"));
    assert_non_null(strstr(s, "DECLARE total INT64;"));
    free(s);
    assert_null(gen(PMI_SQL_BIGQUERY, "ds.rows", NULL)); /* out is required */
    assert_null(gen(PMI_SQL_DUCKDB, "rows;x", NULL));
    struct pmi_sql_params p = {PMI_SQL_DUCKDB, "t", NULL, 0, 100};
    char *text;
    size_t len;
    const char *why;
    assert_int_equal(pmi_sql_generate(&p, &text, &len, &why), -EINVAL);
    enum pmi_sql_dialect d;
    assert_int_equal(pmi_sql_dialect_parse("spark", &d), 0);
    assert_int_equal(d, PMI_SQL_SPARK);
    assert_int_equal(pmi_sql_dialect_parse("Spark", &d), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_grammar),
        cmocka_unit_test(test_dialects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
