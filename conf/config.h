/*
 * Configuration: built-in defaults, overridden by the INI file (libinih),
 * overridden by command-line flags. Every key lives in one table
 * (conf/config.c) that also drives validation, --check-config and the
 * documentation test: conf/itemvecd.conf must document every key with its
 * default. A bad value is reported as "section.key: problem" and makes the
 * daemon exit with status 2.
 */
#ifndef ITEMVEC_CONF_CONFIG_H
#define ITEMVEC_CONF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_PATH_DEFAULT "/etc/itemvec/itemvecd.conf"
#define CONFIG_STATE_DIR_DEFAULT "/var/lib/itemvec"

struct config {
    /* [server] */
    char listen[300];     /* HOST:PORT */
    char state_dir[1024];
    char log_level[16];
    int64_t max_connections;
    int64_t connection_timeout; /* seconds of inactivity before a client is dropped */
    int64_t shutdown_timeout;   /* seconds SIGTERM waits for in-flight requests */
    int64_t max_connections_per_ip; /* connections one client address may hold */
    int64_t header_timeout; /* seconds a connection has to deliver complete request headers */
    /* [limits] */
    int64_t max_body_size;    /* bytes of a request body (after gzip decoding for uploads) */
    int64_t max_json_body;    /* bytes of a buffered JSON body (PUT, jobs) */
    int64_t max_upload_rows;  /* rows in one upload */
    int64_t max_import_rows;  /* item_cooc rows / embedding lines in one import */
    int64_t max_record_size;  /* bytes of one CSV row / NDJSON line / JSON element */
    int64_t max_upload_memory;       /* bytes one upload may hold (write set + parser) → 413 */
    int64_t max_upload_memory_total; /* bytes all uploads may hold at once → 503 */
    int64_t max_gzip_ratio;          /* decoded bytes per encoded byte of a gzip body → 413 */
    int64_t max_writer_queue;        /* client writes waiting for the writer → 503 */
    int64_t max_writer_queue_bytes;  /* bytes of write sets waiting for the writer → 503 */
    /* [jobs] */
    int64_t jobs_concurrency; /* jobs running at once */
    int64_t jobs_queue_size;  /* jobs waiting; beyond → 429 */
    int64_t jobs_threads;     /* math threads per running job */
    int64_t jobs_memory_budget; /* bytes a job may need (estimated at POST); 0 = auto */
    /* [serving] */
    int64_t serving_topk;         /* neighbours precomputed per item at activation */
    int64_t serving_precompute_max_items; /* above this, queries scan instead */
    char serving_index[8];               /* auto | exact | ann (issue 14) */
    int64_t serving_ann_min_items;       /* auto: ANN from this many items on */
    int64_t serving_ann_ef_search;       /* HNSW candidate list per query */
    int64_t serving_model_cache_bytes; /* other models kept for ?model= (LRU) */
    char serving_default_source[16]; /* what source=auto serves before any evaluate
                                        job chose: embedding|cooc|pmi|rp3 */
    /* [auth] */
    char auth_tokens[4096];      /* comma-separated read-write tokens */
    char auth_read_tokens[4096]; /* comma-separated read-only tokens */
    char auth_token_file[1024];
    int64_t auth_metrics_open;   /* 1: /metrics needs no token */
    int64_t auth_allow_insecure; /* 1: allow non-loopback listen without tokens */
    /* [backup] */
    int64_t backup_keep; /* online backups kept in <state>/backups (0: all) */
};

/* Error filled by the loaders: "section.key: problem". */
struct config_error {
    char message[512];
};

/* Fills c with the built-in defaults ($STATE_DIRECTORY for state_dir when
 * systemd sets it). */
void config_defaults(struct config *c);

/* Reads an INI file over c. Unknown sections/keys and bad values are
 * errors. Returns 0, -ENOENT when the file does not exist, or -EINVAL with
 * err filled. */
int config_load_file(struct config *c, const char *path, struct config_error *err);

/* Sets one value by "section.key" name (flags use this). Returns 0 or
 * -EINVAL with err filled. */
int config_set(struct config *c, const char *section, const char *key, const char *value,
               struct config_error *err);

/* Cross-field checks after all sources are applied (listen address form,
 * state dir). The auth rule for non-loopback addresses needs the loaded
 * tokens and lives in tokens_validate. Returns 0 or -EINVAL with err
 * filled. */
int config_validate(const struct config *c, struct config_error *err);

/* Whether a listen host is a loopback address: "localhost", an IPv4
 * address in 127.0.0.0/8, "::1" or ::ffff:127.x.y.z, parsed exactly (so
 * "127.evil.example" is not). Any other name may resolve anywhere: 0. */
int config_host_is_loopback(const char *host);

/* Splits c->listen into host and port. Returns 0 or -EINVAL. */
int config_listen_split(const char *listen, char *host, size_t host_size, int *port);

/* Iterates over the documented keys: returns the i-th "section.key" and its
 * default as text, or NULL past the end. For tests and --check-config. */
const char *config_key_name(size_t i, const char **default_text);

/* Writes the effective configuration as INI text to a FILE* (void* keeps
 * stdio out of this header). Tokens are masked. */
void config_dump(const struct config *c, void *file);

#endif
