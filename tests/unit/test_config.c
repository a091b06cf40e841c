/*
 * Unit tests of conf/: defaults, INI loading, per-key validation with the
 * key named in the message, cross-field rules, the fail-closed token rules
 * and the exact loopback test, and that the shipped
 * conf/itemvecd.conf documents every key with its built-in default.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/config.h"
#include "conf/tokens.h"

static char *write_temp(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/itemvec-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    struct config c;
    unsetenv("STATE_DIRECTORY");
    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.state_dir, "/var/lib/itemvec");
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.max_body_size, 1LL << 30);
    assert_int_equal(c.max_upload_rows, 20000000);
    assert_int_equal(c.max_upload_memory, 512LL << 20);
    assert_int_equal(c.max_upload_memory_total, 1LL << 30);
    assert_int_equal(c.max_gzip_ratio, 32);
    assert_int_equal(c.max_writer_queue, 32);
    assert_int_equal(c.max_writer_queue_bytes, 512LL << 20);
    assert_int_equal(c.max_json_body, 16LL << 20);
    assert_int_equal(c.jobs_concurrency, 1);
    assert_int_equal(c.auth_metrics_open, 1);
    struct config_error err;
    assert_int_equal(config_validate(&c, &err), 0);
    /* One upload may not be allowed more than all uploads together. */
    c.max_upload_memory = 2LL << 30;
    assert_int_equal(config_validate(&c, &err), -EINVAL);
    assert_non_null(strstr(err.message, "limits.max_upload_memory"));
    c.max_upload_memory = 512LL << 20;
    setenv("STATE_DIRECTORY", "/var/lib/itemvec-a:/var/lib/other", 1);
    config_defaults(&c);
    assert_string_equal(c.state_dir, "/var/lib/itemvec-a");
    unsetenv("STATE_DIRECTORY");
}

static void test_load_file(void **state)
{
    struct config c;
    struct config_error err;
    config_defaults(&c);
    char *p = write_temp("; comment\n[server]\nlisten = 127.0.0.1:9999\nlog_level = debug\n"
                         "[limits]\nmax_body_size = 64M\nmax_record_size = 2k\n"
                         "[jobs]\nconcurrency = 2\n[auth]\nmetrics_open = no\n");
    assert_int_equal(config_load_file(&c, p, &err), 0);
    unlink(p);
    assert_string_equal(c.listen, "127.0.0.1:9999");
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.max_body_size, 64LL << 20);
    assert_int_equal(c.max_record_size, 2048);
    assert_int_equal(c.jobs_concurrency, 2);
    assert_int_equal(c.auth_metrics_open, 0);
    assert_int_equal(config_load_file(&c, "/nonexistent/itemvecd.conf", &err), -ENOENT);
}

static void expect_bad(const char *text, const char *key)
{
    struct config c;
    struct config_error err = {{0}};
    config_defaults(&c);
    char *p = write_temp(text);
    assert_int_equal(config_load_file(&c, p, &err), -EINVAL);
    unlink(p);
    if (!strstr(err.message, key))
        fail_msg("message \"%s\" does not name %s", err.message, key);
    assert_null(strchr(err.message, '\n'));
}

static void test_bad_values_name_the_key(void **state)
{
    expect_bad("[server]\nlisten = nonsense\n", "server.listen");
    expect_bad("[server]\nlisten = 127.0.0.1:70000\n", "server.listen");
    expect_bad("[server]\nlog_level = loud\n", "server.log_level");
    expect_bad("[server]\nmax_connections = 0\n", "server.max_connections");
    expect_bad("[limits]\nmax_body_size = 12Q\n", "limits.max_body_size");
    expect_bad("[limits]\nmax_upload_rows = lots\n", "limits.max_upload_rows");
    expect_bad("[limits]\nmax_gzip_ratio = 1\n", "limits.max_gzip_ratio");
    expect_bad("[jobs]\nconcurrency = 99999\n", "jobs.concurrency");
    expect_bad("[auth]\nmetrics_open = maybe\n", "auth.metrics_open");
    expect_bad("[server]\nbogus = 1\n", "server.bogus");
    expect_bad("[nosuch]\nkey = 1\n", "nosuch.key");
}

static void test_validate_rules(void **state)
{
    struct config c;
    struct config_error err;
    struct tokens none = {0};
    config_defaults(&c);
    assert_int_equal(config_set(&c, "server", "listen", "0.0.0.0:8080", &err), 0);
    assert_int_equal(config_validate(&c, &err), 0);
    assert_int_equal(tokens_validate(&c, &none, &err), -EINVAL);
    assert_non_null(strstr(err.message, "server.listen"));
    /* a credentials directory is not a token (it used to count as one) */
    setenv("CREDENTIALS_DIRECTORY", "/tmp", 1);
    assert_int_equal(tokens_validate(&c, &none, &err), -EINVAL);
    unsetenv("CREDENTIALS_DIRECTORY");
    /* a list of separators holds no token */
    assert_int_equal(config_set(&c, "auth", "tokens", " , ,", &err), 0);
    assert_int_equal(tokens_validate(&c, &none, &err), -EINVAL);
    assert_int_equal(config_set(&c, "auth", "tokens", "secret", &err), 0);
    assert_int_equal(tokens_validate(&c, &none, &err), 0);
    assert_int_equal(tokens_loaded(&c, &none), 1);
    config_defaults(&c);
    assert_int_equal(config_set(&c, "server", "listen", "0.0.0.0:8080", &err), 0);
    assert_int_equal(config_set(&c, "auth", "allow_insecure_listen", "true", &err), 0);
    assert_int_equal(tokens_validate(&c, &none, &err), 0);
    config_defaults(&c);
    assert_int_equal(config_set(&c, "server", "listen", "[::1]:8080", &err), 0);
    assert_int_equal(config_validate(&c, &err), 0);
    assert_int_equal(tokens_validate(&c, &none, &err), 0);
    char host[64];
    int port;
    assert_int_equal(config_listen_split("[::1]:81", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 81);
    assert_int_equal(config_listen_split(":81", host, sizeof host, &port), -EINVAL);
}

static void test_loopback_is_exact(void **state)
{
    static const char *const yes[] = {
        "127.0.0.1", "127.1.2.3", "127.255.255.254",  "::1",
        "localhost", "LocalHost", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"};
    static const char *const no[] = {"127.evil.example",
                                     "127.0.0.1.nip.io",
                                     "127.",
                                     "1270.0.0.1",
                                     "0.0.0.0",
                                     "::",
                                     "128.0.0.1",
                                     "10.0.0.1",
                                     "localhost.evil",
                                     "::ffff:10.0.0.1",
                                     "::2",
                                     "",
                                     "127.0.0.1 "};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!config_host_is_loopback(yes[i]))
            fail_msg("%s should be loopback", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (config_host_is_loopback(no[i]))
            fail_msg("%s should not be loopback", no[i]);
}

static void test_token_file_edge_cases(void **state)
{
    struct config c;
    struct config_error err;
    struct tokens t;
    config_defaults(&c);
    /* only comments and blank lines: zero tokens, refused even on loopback */
    char *p = write_temp("# tokens go here\n\n   \n#ro:nothing\n");
    assert_int_equal(tokens_load_file(p, &t, &err), 0);
    assert_null(t.rw);
    assert_null(t.ro);
    snprintf(c.auth_token_file, sizeof c.auth_token_file, "%s", p);
    assert_int_equal(tokens_validate(&c, &t, &err), -EINVAL);
    assert_non_null(strstr(err.message, "auth.token_file"));
    unlink(p);
    /* one token: fine */
    p = write_temp("# a comment\nro:reader\n");
    assert_int_equal(tokens_load_file(p, &t, &err), 0);
    assert_int_equal(tokens_validate(&c, &t, &err), 0);
    assert_int_equal(tokens_loaded(&c, &t), 1);
    tokens_deinit(&t);
    unlink(p);
    /* a line too long for the reader is refused, not split into two tokens */
    static char big[6000];
    memset(big, 'a', sizeof big - 2);
    big[sizeof big - 2] = '\n';
    p = write_temp(big);
    assert_int_equal(tokens_load_file(p, &t, &err), -EINVAL);
    assert_non_null(strstr(err.message, "longer"));
    unlink(p);
}

/* Every key must appear in the shipped file as ";key = default". */
static void test_shipped_file_documents_every_key(void **state)
{
    const char *src = getenv("ITEMVEC_SRC");
    if (!src)
        skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/conf/itemvecd.conf", src);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *def;
    const char *name;
    int keys = 0;
    for (size_t i = 0; (name = config_key_name(i, &def)) != NULL; i++) {
        const char *dot = strchr(name, '.');
        char section[64], line[256];
        snprintf(section, sizeof section, "[%.*s]", (int)(dot - name), name);
        if (def[0])
            snprintf(line, sizeof line, ";%s = %s\n", dot + 1, def);
        else
            snprintf(line, sizeof line, ";%s =\n", dot + 1);
        if (!strstr(text, section))
            fail_msg("conf/itemvecd.conf lacks section %s", section);
        if (!strstr(text, line))
            fail_msg("conf/itemvecd.conf lacks \"%s\" (key %s)", line, name);
        keys++;
    }
    assert_true(keys >= 15);
    /* and the shipped file loads cleanly */
    struct config c;
    struct config_error err;
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_bad_values_name_the_key),
        cmocka_unit_test(test_validate_rules),
        cmocka_unit_test(test_loopback_is_exact),
        cmocka_unit_test(test_token_file_edge_cases),
        cmocka_unit_test(test_shipped_file_documents_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
