/*
 * Configuration table and loaders (see config.h). Each key is one row of
 * config_keys: its type, bounds and default. The INI loader, the flag
 * setter and --check-config all go through config_set, so a key is
 * validated the same way wherever it comes from.
 */
#include "conf/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"

enum key_type {
    KEY_STRING,
    KEY_INT,      /* plain integer */
    KEY_SIZE,     /* integer with optional K/M/G (binary) suffix */
    KEY_BOOL,     /* true/false/yes/no/on/off/1/0 */
    KEY_LOGLEVEL, /* debug|info|warn|error */
    KEY_LISTEN,   /* HOST:PORT */
    KEY_SOURCE,   /* embedding|cooc|pmi|rp3: a neighbour source */
};

struct key_def {
    const char *section;
    const char *key;
    enum key_type type;
    size_t offset;
    size_t size; /* for strings: buffer size */
    int64_t min, max;
    const char *def;
};

#define STR(sec, k, field, d)                                                                      \
    {sec, k, KEY_STRING, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0, d}
#define NUM(sec, k, ty, field, lo, hi, d)                                                          \
    {sec, k, ty, offsetof(struct config, field), 0, lo, hi, d}

static const struct key_def config_keys[] = {
    {"server", "listen", KEY_LISTEN, offsetof(struct config, listen),
     sizeof(((struct config *)0)->listen), 0, 0, "127.0.0.1:8080"},
    STR("server", "state_dir", state_dir, CONFIG_STATE_DIR_DEFAULT),
    {"server", "log_level", KEY_LOGLEVEL, offsetof(struct config, log_level),
     sizeof(((struct config *)0)->log_level), 0, 0, "info"},
    NUM("server", "max_connections", KEY_INT, max_connections, 1, 100000, "1024"),
    NUM("server", "connection_timeout", KEY_INT, connection_timeout, 1, 86400, "60"),
    NUM("server", "shutdown_timeout", KEY_INT, shutdown_timeout, 0, 3600, "10"),
    NUM("server", "max_connections_per_ip", KEY_INT, max_connections_per_ip, 1, 100000, "256"),
    NUM("server", "header_timeout", KEY_INT, header_timeout, 1, 3600, "10"),
    NUM("limits", "max_body_size", KEY_SIZE, max_body_size, 1024, INT64_C(1) << 40, "1G"),
    NUM("limits", "max_json_body", KEY_SIZE, max_json_body, 1024, INT64_C(1) << 32, "16M"),
    NUM("limits", "max_upload_rows", KEY_INT, max_upload_rows, 1, INT64_C(1) << 40, "20000000"),
    NUM("limits", "max_import_rows", KEY_INT, max_import_rows, 1, INT64_C(1) << 40, "100000000"),
    NUM("limits", "max_record_size", KEY_SIZE, max_record_size, 1024, INT64_C(1) << 30, "1M"),
    NUM("limits", "max_upload_memory", KEY_SIZE, max_upload_memory, INT64_C(1) << 20,
        INT64_C(1) << 40, "512M"),
    NUM("limits", "max_upload_memory_total", KEY_SIZE, max_upload_memory_total,
        INT64_C(1) << 20, INT64_C(1) << 42, "1G"),
    NUM("limits", "max_gzip_ratio", KEY_INT, max_gzip_ratio, 2, 100000, "32"),
    NUM("limits", "max_writer_queue", KEY_INT, max_writer_queue, 1, 100000, "32"),
    NUM("limits", "max_writer_queue_bytes", KEY_SIZE, max_writer_queue_bytes, INT64_C(1) << 20,
        INT64_C(1) << 42, "512M"),
    NUM("jobs", "concurrency", KEY_INT, jobs_concurrency, 1, 64, "1"),
    NUM("jobs", "queue_size", KEY_INT, jobs_queue_size, 0, 100000, "16"),
    NUM("jobs", "threads", KEY_INT, jobs_threads, 1, 256, "2"),
    NUM("jobs", "memory_budget", KEY_SIZE, jobs_memory_budget, 0, INT64_C(1) << 50, "0"),
    NUM("serving", "topk", KEY_INT, serving_topk, 1, 1000, "100"),
    NUM("serving", "precompute_max_items", KEY_INT, serving_precompute_max_items, 0,
        INT64_C(100000000), "2000000"),
    STR("serving", "index", serving_index, "auto"),
    NUM("serving", "ann_min_items", KEY_INT, serving_ann_min_items, 1, INT64_C(4000000000),
        "200000"),
    NUM("serving", "ann_ef_search", KEY_INT, serving_ann_ef_search, 10, 4096, "64"),
    NUM("serving", "model_cache_bytes", KEY_SIZE, serving_model_cache_bytes, 0, INT64_C(1) << 50,
        "512M"),
    {"serving", "default_source", KEY_SOURCE, offsetof(struct config, serving_default_source),
     sizeof(((struct config *)0)->serving_default_source), 0, 0, "cooc"},
    STR("auth", "tokens", auth_tokens, ""),
    STR("auth", "read_tokens", auth_read_tokens, ""),
    STR("auth", "token_file", auth_token_file, ""),
    NUM("auth", "metrics_open", KEY_BOOL, auth_metrics_open, 0, 1, "true"),
    NUM("auth", "allow_insecure_listen", KEY_BOOL, auth_allow_insecure, 0, 1, "false"),
    NUM("backup", "keep", KEY_INT, backup_keep, 0, 100000, "7"),
};

#define N_KEYS (sizeof config_keys / sizeof config_keys[0])

static const struct key_def *config__find(const char *section, const char *key)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].key, key) == 0)
            return &config_keys[i];
    return NULL;
}

static int parse_bool(const char *v, int64_t *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

/* Parses a decimal integer with an optional binary size suffix. */
static int parse_int(const char *v, int allow_suffix, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || errno == ERANGE)
        return -EINVAL;
    int64_t mult = 1;
    if (allow_suffix && *end) {
        switch (toupper((unsigned char)*end)) {
        case 'K': mult = INT64_C(1) << 10; break;
        case 'M': mult = INT64_C(1) << 20; break;
        case 'G': mult = INT64_C(1) << 30; break;
        case 'T': mult = INT64_C(1) << 40; break;
        default: return -EINVAL;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
    }
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -EINVAL;
    if (x < 0 ? x < INT64_MIN / mult : x > INT64_MAX / mult)
        return -EINVAL;
    *out = (int64_t)x * mult;
    return 0;
}

int config_listen_split(const char *listen, char *host, size_t host_size, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return -EINVAL;
    const char *h = listen;
    size_t hlen = (size_t)(colon - listen);
    if (h[0] == '[') { /* [::1]:8080 */
        if (hlen < 3 || h[hlen - 1] != ']')
            return -EINVAL;
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_size)
        return -EINVAL;
    int64_t p;
    if (parse_int(colon + 1, 0, &p) != 0 || p < 0 || p > 65535)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static int set_value(struct config *c, const struct key_def *k, const char *value,
                     struct config_error *err)
{
    char *base = (char *)c + k->offset;
    int64_t num = 0;
    const char *why = NULL;
    switch (k->type) {
    case KEY_STRING:
    case KEY_LOGLEVEL:
    case KEY_LISTEN:
    case KEY_SOURCE:
        if (strlen(value) >= k->size) {
            why = "value too long";
            break;
        }
        if (k->type == KEY_SOURCE && strcmp(value, "embedding") != 0 &&
            strcmp(value, "cooc") != 0 && strcmp(value, "pmi") != 0 && strcmp(value, "rp3") != 0) {
            why = "must be one of embedding, cooc, pmi, rp3";
            break;
        }
        if (k->type == KEY_LOGLEVEL) {
            enum log_level l;
            if (log_level_parse(value, &l) != 0) {
                why = "must be one of debug, info, warn, error";
                break;
            }
        }
        if (k == config__find("serving", "index") && strcmp(value, "auto") != 0 &&
            strcmp(value, "exact") != 0 && strcmp(value, "ann") != 0) {
            why = "must be one of auto, exact, ann";
            break;
        }
        if (k->type == KEY_LISTEN) {
            char host[256];
            int port;
            if (config_listen_split(value, host, sizeof host, &port) != 0) {
                why = "must be HOST:PORT (port 0..65535)";
                break;
            }
        }
        strcpy(base, value);
        return 0;
    case KEY_BOOL:
        if (parse_bool(value, &num) != 0)
            why = "must be true or false";
        break;
    case KEY_INT:
    case KEY_SIZE:
        if (parse_int(value, k->type == KEY_SIZE, &num) != 0)
            why = k->type == KEY_SIZE ? "must be an integer with an optional K/M/G suffix"
                                      : "must be an integer";
        else if (num < k->min || num > k->max)
            why = "out of range";
        break;
    }
    if (why) {
        if (why[0] == 'o')
            snprintf(err->message, sizeof err->message,
                     "%s.%s: %s (got \"%.64s\", allowed %lld..%lld)", k->section, k->key, why,
                     value, (long long)k->min, (long long)k->max);
        else
            snprintf(err->message, sizeof err->message, "%s.%s: %s (got \"%.64s\")", k->section,
                     k->key, why, value);
        return -EINVAL;
    }
    memcpy(base, &num, sizeof num);
    return 0;
}

int config_set(struct config *c, const char *section, const char *key, const char *value,
               struct config_error *err)
{
    const struct key_def *k = config__find(section, key);
    if (!k) {
        snprintf(err->message, sizeof err->message, "%s.%s: unknown key", section, key);
        return -EINVAL;
    }
    return set_value(c, k, value, err);
}

void config_defaults(struct config *c)
{
    struct config_error err;
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_KEYS; i++)
        if (set_value(c, &config_keys[i], config_keys[i].def, &err) != 0)
            abort(); /* a bad built-in default is a programming error */
    const char *sd = getenv("STATE_DIRECTORY");
    if (sd && *sd && strlen(sd) < sizeof c->state_dir) {
        /* systemd may pass several dirs separated by ':'; the first is ours */
        strcpy(c->state_dir, sd);
        char *colon = strchr(c->state_dir, ':');
        if (colon)
            *colon = '\0';
    }
}

struct ini_ctx {
    struct config *c;
    struct config_error *err;
    int failed;
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *ctx = user;
    if (ctx->failed)
        return 0;
    if (config_set(ctx->c, section, name, value, ctx->err) != 0) {
        ctx->failed = 1;
        return 0;
    }
    return 1;
}

int config_load_file(struct config *c, const char *path, struct config_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return -ENOENT;
        snprintf(err->message, sizeof err->message, "%s: %s", path, strerror(errno));
        return -EINVAL;
    }
    struct ini_ctx ctx = {c, err, 0};
    int rc = ini_parse_file(f, on_ini, &ctx);
    fclose(f);
    if (ctx.failed) {
        char tmp[sizeof err->message];
        snprintf(tmp, sizeof tmp, "%s", err->message);
        snprintf(err->message, sizeof err->message, "%.200s: %.300s", path, tmp);
        return -EINVAL;
    }
    if (rc != 0) {
        snprintf(err->message, sizeof err->message, "%s: line %d: syntax error", path, rc);
        return -EINVAL;
    }
    return 0;
}

int config_host_is_loopback(const char *host)
{
    unsigned char a[16];
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127; /* 127.0.0.0/8 */
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char v6_loop[16] = {[15] = 1};
        static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(a, v6_loop, 16) == 0 || (memcmp(a, v4_mapped, 12) == 0 && a[12] == 127);
    }
    return 0; /* a name other than localhost may resolve anywhere */
}

int config_validate(const struct config *c, struct config_error *err)
{
    char host[256];
    int port;
    if (config_listen_split(c->listen, host, sizeof host, &port) != 0) {
        snprintf(err->message, sizeof err->message, "server.listen: must be HOST:PORT");
        return -EINVAL;
    }
    if (!c->state_dir[0]) {
        snprintf(err->message, sizeof err->message, "server.state_dir: must not be empty");
        return -EINVAL;
    }
    /* Whether a non-loopback listen has tokens is checked once the tokens
     * are loaded (tokens_validate): a token file that exists is not a
     * token. */
    if (c->max_upload_memory > c->max_upload_memory_total) {
        /* else an upload between the two could only ever get 503 */
        snprintf(err->message, sizeof err->message,
                 "limits.max_upload_memory: must not exceed limits.max_upload_memory_total");
        return -EINVAL;
    }
    return 0;
}

const char *config_key_name(size_t i, const char **default_text)
{
    static __thread char name[96];
    if (i >= N_KEYS)
        return NULL;
    snprintf(name, sizeof name, "%s.%s", config_keys[i].section, config_keys[i].key);
    if (default_text)
        *default_text = config_keys[i].def;
    return name;
}

void config_dump(const struct config *c, void *file)
{
    FILE *f = file;
    const char *section = "";
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key_def *k = &config_keys[i];
        if (strcmp(section, k->section) != 0) {
            fprintf(f, "%s[%s]\n", i ? "\n" : "", k->section);
            section = k->section;
        }
        const char *base = (const char *)c + k->offset;
        int64_t num;
        switch (k->type) {
        case KEY_STRING:
        case KEY_LOGLEVEL:
        case KEY_LISTEN:
        case KEY_SOURCE:
            if (strcmp(k->section, "auth") == 0 && strstr(k->key, "tokens") && base[0])
                fprintf(f, "%s = ********\n", k->key);
            else
                fprintf(f, "%s = %s\n", k->key, base);
            break;
        case KEY_BOOL:
            memcpy(&num, base, sizeof num);
            fprintf(f, "%s = %s\n", k->key, num ? "true" : "false");
            break;
        default:
            memcpy(&num, base, sizeof num);
            fprintf(f, "%s = %lld\n", k->key, (long long)num);
        }
    }
}
