/*
 * The daemon's shared state, owned by the loop thread: configuration, the
 * loop, storage handles, the writer, and the HTTP server. Handlers in api/
 * reach the rest of the process through this struct; worker threads never
 * touch it (they get their own buffers).
 */
#ifndef ITEMVEC_CONF_APP_H
#define ITEMVEC_CONF_APP_H

#include <stdint.h>
#include <uv.h>

#include "conf/config.h"
#include "conf/tokens.h"

struct store;
struct writer;
struct api_server;
struct jobs;

struct app {
    uv_loop_t *loop;
    struct config cfg;
    struct tokens file_tokens; /* from auth.token_file */
    size_t auth_tokens_loaded; /* tokens of cfg and file_tokens; 0: /v1 open (loopback only) */
    struct store *store;   /* loop-thread reads */
    struct writer *writer; /* all writes */
    struct api_server *server;
    struct jobs *jobs;
    void *serving; /* serving/serving.c */
    void *replica; /* serving/replica.c: set when running with --replica-of */
    int ready;    /* storage open, recovery done, listener up */
    int draining; /* SIGTERM received */
    uint64_t upload_memory; /* bytes uploads in flight hold (api/route_upload.c) */
    uint64_t started_ms;
};

#endif
