/*
 * itemvecd: flags, configuration, state directory, the libuv loop, signals
 * and sd_notify. Everything else lives in the static library; this file
 * only wires the process together and owns its lifecycle:
 *   start:  config → storage → writer → jobs recovered → the active model
 *           loading on the pool → HTTP listener → READY=1 (/readyz 200 once
 *           the model serves)
 *   SIGTERM/SIGINT: stop accepting, let in-flight requests and queued
 *           writes finish (bounded by server.shutdown_timeout), close
 *           storage cleanly, exit 0
 *   SIGHUP: reload log level, tokens and limits from the config file.
 * Files are created private (umask 077) and temp files left by a killed
 * predecessor are removed at start.
 */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uv.h>

#include "api/server.h"
#include "conf/config.h"
#include "conf/app.h"
#include "jobs/jobs.h"
#include "base/log.h"
#include "base/thread.h"
#include "serving/pmi_cache.h"
#include "serving/replica.h"
#include "serving/serving.h"
#include "storage/file_util.h"
#include "storage/store.h"
#include "storage/writer.h"
#include "version.h"

struct flags {
    const char *config;
    const char *listen;
    const char *state_dir;
    const char *log_level;
    const char *replica_of;
    const char *replica_token_file;
    int check_config;
};

static struct app g_app;
static struct flags g_flags;
static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t drain_timer;
static uv_timer_t status_timer;
static uint64_t drain_deadline;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: itemvecd [--config FILE] [--listen HOST:PORT] [--state-dir DIR]\n"
            "                [--log-level debug|info|warn|error]\n"
            "                [--replica-of URL [--replica-token-file FILE]]\n"
            "       itemvecd --version | --help | --check-config [--config FILE]\n"
            "\n"
            "Serves item embeddings and item-to-item recommendations over HTTP.\n"
            "Flags override the config file (default %s when it exists),\n"
            "which overrides built-in defaults. See docs/configuration.md.\n",
            CONFIG_PATH_DEFAULT);
}

/* Exits 2 with one line, as API.md asks for bad flags and config values. */
static void die_config(const char *msg)
{
    fprintf(stderr, "itemvecd: %s\n", msg);
    exit(2);
}

static void parse_flags(int argc, char **argv, struct flags *f)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"listen", required_argument, NULL, 'l'},
        {"state-dir", required_argument, NULL, 's'}, {"log-level", required_argument, NULL, 'L'},
        {"version", no_argument, NULL, 'V'},         {"help", no_argument, NULL, 'h'},
        {"check-config", no_argument, NULL, 'C'},    {"replica-of", required_argument, NULL, 'R'},
        {"replica-token-file", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': f->config = optarg; break;
        case 'l': f->listen = optarg; break;
        case 's': f->state_dir = optarg; break;
        case 'L': f->log_level = optarg; break;
        case 'C': f->check_config = 1; break;
        case 'R': f->replica_of = optarg; break;
        case 'T': f->replica_token_file = optarg; break;
        case 'V':
            printf("itemvecd %s (%s, %s)\n", ITEMVEC_VERSION, ITEMVEC_BUILD_TYPE, ITEMVEC_COMPILER);
            exit(0);
        case 'h': usage(stdout); exit(0);
        default: {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown or incomplete flag %s (see --help)",
                     argv[optind - 1]);
            die_config(msg);
        }
        }
    }
    if (optind < argc) {
        char msg[256];
        snprintf(msg, sizeof msg, "unexpected argument %s (see --help)", argv[optind]);
        die_config(msg);
    }
}

/* Builds the configuration from defaults, file and flags. Returns 0 or
 * -EINVAL with err filled. */
static int load_config(const struct flags *f, struct config *c, struct config_error *err)
{
    config_defaults(c);
    const char *path = f->config ? f->config : CONFIG_PATH_DEFAULT;
    int rc = config_load_file(c, path, err);
    if (rc == -ENOENT && f->config) {
        snprintf(err->message, sizeof err->message, "--config: %s does not exist", path);
        return -EINVAL;
    }
    if (rc != 0 && rc != -ENOENT)
        return rc;
    if ((f->listen && config_set(c, "server", "listen", f->listen, err) != 0) ||
        (f->state_dir && config_set(c, "server", "state_dir", f->state_dir, err) != 0) ||
        (f->log_level && config_set(c, "server", "log_level", f->log_level, err) != 0)) {
        /* name the flag rather than the key it maps to */
        char tmp[sizeof err->message];
        snprintf(tmp, sizeof tmp, "%s", err->message);
        snprintf(err->message, sizeof err->message, "--%.400s", strchr(tmp, '.') + 1);
        for (char *p = err->message; *p && *p != ':'; p++)
            if (*p == '_')
                *p = '-';
        return -EINVAL;
    }
    return config_validate(c, err);
}

/* Loads auth.token_file (if set) into t and applies the fail-closed rules
 * (tokens_validate). Returns 0 or -EINVAL with t empty. */
static int load_tokens(const struct config *c, struct tokens *t, struct config_error *err)
{
    memset(t, 0, sizeof *t);
    if (c->auth_token_file[0] && tokens_load_file(c->auth_token_file, t, err) != 0)
        return -EINVAL;
    if (tokens_validate(c, t, err) != 0) {
        tokens_deinit(t);
        return -EINVAL;
    }
    return 0;
}

/* Removes temp files of interrupted atomic writes (kill -9, OOM kill) from
 * the directories that hold them. */
static void remove_stale_temps(const char *state_dir)
{
    static const char *const subs[] = {"", "pmi/", "models/"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/%s", state_dir, subs[i]);
        int rc = file_remove_stale_temps(dir, subs[i]);
        if (rc < 0)
            log_warn("startup: cannot scan %s for stale temp files: %s", dir, strerror(-rc));
    }
}

static int mkdir_p(const char *dir)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* ---- shutdown ---- */

static void on_walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish_shutdown(void)
{
    uv_timer_stop(&drain_timer);
    api_server_stop(g_app.server);
    uv_walk(g_app.loop, on_walk_close, NULL);
}

static void on_drain_tick(uv_timer_t *t)
{
    unsigned active = g_app.server ? api_server_active(g_app.server) : 0;
    unsigned writes = writer_pending(g_app.writer);
    unsigned suspended = g_app.server ? api_server_suspended(g_app.server) : 0;
    unsigned jobs = g_app.jobs ? jobs_busy(g_app.jobs) : 0;
    /* Queued writes always finish (each is one short transaction whose
     * client is waiting for its acknowledgement), and running jobs reach
     * their next checkpoint (well under a second); other requests get
     * until the deadline. */
    if (writes == 0 && suspended == 0 && jobs == 0 &&
        (active == 0 || uv_now(g_app.loop) >= drain_deadline)) {
        if (active)
            log_warn("shutdown: closing %u request(s) still in progress after %llds", active,
                     (long long)g_app.cfg.shutdown_timeout);
        finish_shutdown();
    }
}

static void begin_shutdown(const char *why)
{
    if (g_app.draining)
        return;
    g_app.draining = 1;
    replica_stop(&g_app); /* no more polls; a transfer in flight aborts */
    serving_cancel_builds(&g_app); /* a model build in flight stops */
    log_info("%s: stopping (draining requests, up to %llds)", why,
             (long long)g_app.cfg.shutdown_timeout);
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
    if (g_app.server)
        api_server_quiesce(g_app.server);
    if (g_app.jobs)
        jobs_shutdown(g_app.jobs);
    drain_deadline = uv_now(g_app.loop) + (uint64_t)g_app.cfg.shutdown_timeout * 1000;
    uv_timer_start(&drain_timer, on_drain_tick, 0, 20);
}

static void reload_config(void)
{
    struct config c;
    struct config_error err;
    sd_notify(0, "RELOADING=1");
    struct tokens tk;
    if (load_config(&g_flags, &c, &err) != 0 || load_tokens(&c, &tk, &err) != 0) {
        log_error("reload: REFUSED, keeping the old configuration and tokens: %s", err.message);
    } else {
        size_t before = g_app.auth_tokens_loaded;
        tokens_deinit(&g_app.file_tokens);
        g_app.file_tokens = tk;
        g_app.auth_tokens_loaded = tokens_loaded(&c, &tk);
        if (before && !g_app.auth_tokens_loaded)
            log_warn("reload: no token is configured any more: /v1 is open to every client "
                     "that reaches %s",
                     g_app.cfg.listen);
        /* listen and state_dir need a restart; everything else applies now */
        if (strcmp(c.listen, g_app.cfg.listen) != 0 || strcmp(c.state_dir, g_app.cfg.state_dir))
            log_warn("reload: server.listen and server.state_dir change only on restart");
        snprintf(c.listen, sizeof c.listen, "%s", g_app.cfg.listen);
        snprintf(c.state_dir, sizeof c.state_dir, "%s", g_app.cfg.state_dir);
        g_app.cfg = c;
        enum log_level lvl;
        if (log_level_parse(c.log_level, &lvl) == 0)
            log_set_level(lvl);
        log_info("reload: configuration reloaded (log level %s, %zu token(s))", c.log_level,
                 g_app.auth_tokens_loaded);
    }
    sd_notify(0, "READY=1");
}

/* STATUS= for systemctl status, and WATCHDOG=1 when WatchdogSec is set:
 * the loop timer only fires if the loop is alive, which is the point. */
static void on_status(uv_timer_t *t)
{
    unsigned queued = 0, running = 0;
    if (g_app.jobs)
        jobs_counts(g_app.jobs, &queued, &running);
    struct served_model *m = serving_active(&g_app);
    const char *starting = serving_starting(&g_app);
    sd_notifyf(0, "WATCHDOG=1\nSTATUS=%s: %u job(s) running, %u queued; model %s%s",
               g_app.draining ? "draining" : "serving", running, queued,
               m ? m->id : starting ? starting : "none",
               m ? "" : starting ? " (loading)" : " (train one)");
}

static void on_signal(uv_signal_t *h, int signum)
{
    if (signum == SIGHUP)
        reload_config();
    else
        begin_shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* libuv's pool runs jobs and the writer: size it before first use. */
static void size_threadpool(const struct config *c)
{
    if (getenv("UV_THREADPOOL_SIZE"))
        return;
    char n[32];
    snprintf(n, sizeof n, "%lld", (long long)(c->jobs_concurrency + 3));
    setenv("UV_THREADPOOL_SIZE", n, 1);
}

int main(int argc, char **argv)
{
    struct config_error err;
    parse_flags(argc, argv, &g_flags);
    if (load_config(&g_flags, &g_app.cfg, &err) != 0)
        die_config(err.message);
    if (load_tokens(&g_app.cfg, &g_app.file_tokens, &err) != 0)
        die_config(err.message);
    g_app.auth_tokens_loaded = tokens_loaded(&g_app.cfg, &g_app.file_tokens);
    if (g_flags.check_config) {
        config_dump(&g_app.cfg, stdout);
        return 0;
    }
    enum log_level lvl = LOG_LEVEL_INFO;
    log_level_parse(g_app.cfg.log_level, &lvl);
    log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);
    /* the database, its WAL, results and backups hold users' data: private
     * to the service user whatever the caller's umask (systemd's UMask=
     * says the same) */
    umask(077);
    size_threadpool(&g_app.cfg);
    openblas_set_num_threads(1); /* jobs parallelise over rows themselves */

    int rc = mkdir_p(g_app.cfg.state_dir);
    if (rc != 0) {
        log_error("server.state_dir: cannot create %s: %s", g_app.cfg.state_dir, strerror(-rc));
        return 1;
    }
    remove_stale_temps(g_app.cfg.state_dir);
    thread_loop_register(); /* this thread runs the loop: base/thread.h checks it */
    g_app.loop = uv_default_loop();
    g_app.started_ms = uv_now(g_app.loop);
    struct store_error serr;
    g_app.store = store_open(g_app.cfg.state_dir, &serr);
    if (!g_app.store) {
        log_error("storage: cannot open %s: %s", g_app.cfg.state_dir, serr.message);
        return 1;
    }
    g_app.writer = writer_create(g_app.loop, g_app.cfg.state_dir);
    if (!g_app.writer)
        return 1;
    g_app.jobs = jobs_create(&g_app);
    if (!g_app.jobs)
        return 1;
    if (g_flags.replica_of) {
        rc = replica_start(&g_app, g_flags.replica_of, g_flags.replica_token_file);
        if (rc != 0)
            die_config("--replica-of needs an http(s):// URL and a readable "
                       "--replica-token-file (first line: the token)");
    }
    rc = g_flags.replica_of ? 0 : serving_start_active(&g_app);
    if (rc != 0) /* serve without a model rather than not at all */
        log_error("serving: cannot load the active model: %s; similar-items answers 409 until "
                  "a model is activated",
                  strerror(-rc));
    if (!api_server_start(&g_app))
        return 1;
    uv_timer_init(g_app.loop, &drain_timer);
    uv_signal_init(g_app.loop, &sig_term);
    uv_signal_init(g_app.loop, &sig_int);
    uv_signal_init(g_app.loop, &sig_hup);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);

    uint64_t wd_usec = 0;
    uint64_t status_ms = 2000;
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec / 2000 < status_ms)
        status_ms = wd_usec / 2000 ? wd_usec / 2000 : 1;
    uv_timer_init(g_app.loop, &status_timer);
    uv_timer_start(&status_timer, on_status, status_ms, status_ms);
    uv_unref((uv_handle_t *)&status_timer);
    g_app.ready = 1;
    struct store_counts counts = {0};
    store_counts_get(g_app.store, &counts);
    log_info("itemvecd %s listening on %s (port %d), state %s, %lld playlists, %lld items",
             ITEMVEC_VERSION, g_app.cfg.listen, api_server_port(g_app.server),
             g_app.cfg.state_dir, (long long)counts.playlists, (long long)counts.items);
    if (g_app.auth_tokens_loaded)
        log_info("auth: %zu token(s) loaded; /v1 needs a bearer token", g_app.auth_tokens_loaded);
    else if (g_app.cfg.auth_allow_insecure)
        log_warn("auth: no token configured and auth.allow_insecure_listen = true: /v1 is "
                 "open to every client that reaches %s",
                 g_app.cfg.listen);
    else
        log_info("auth: no token configured; /v1 is open on the loopback address %s",
                 g_app.cfg.listen);
    sd_notifyf(0, "READY=1\nSTATUS=serving %lld playlists, %lld items; model %s%s",
               (long long)counts.playlists, (long long)counts.items,
               serving_starting(&g_app) ? serving_starting(&g_app) : "none",
               serving_starting(&g_app) ? " (loading)" : "");

    uv_run(g_app.loop, UV_RUN_DEFAULT);

    replica_destroy(&g_app);
    serving_deinit(&g_app);
    tokens_deinit(&g_app.file_tokens);
    pmi_cache_deinit();
    jobs_destroy(g_app.jobs);
    writer_destroy(g_app.writer);
    store_close(g_app.store);
    uv_loop_close(g_app.loop);
    log_info("stopped");
    return 0;
}
