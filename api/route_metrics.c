/*
 * GET /metrics: Prometheus text exposition (format 0.0.4), itemvecd_
 * prefix. Request counts and duration histograms by route template come
 * from api/metrics.c; jobs by type and state from storage plus the job
 * system; stored rows from the O(1) counters; the active model's size;
 * process metrics from /proc; build info.
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/api.h"
#include "api/metrics.h"
#include "api/server.h"
#include "api/server_internal.h"
#include "conf/app.h"
#include "jobs/jobs.h"
#include "serving/replica.h"
#include "serving/serving.h"
#include "storage/jobs.h"
#include "storage/models.h"
#include "storage/store.h"
#include "version.h"

struct text {
    char *buf;
    size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 16384;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb)
            return;
        t->buf = nb;
        t->cap = cap;
    }
}

static void help(struct text *t, const char *name, const char *type, const char *text)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static const char *const job_types[] = {"pmi", "train", "evaluate"};
static const char *const job_states[] = {"queued", "running", "succeeded", "failed",
                                         "cancelled"};

struct job_counts {
    int64_t n[3][5];
};

static void count_cb(void *ud, const char *type, const char *state, int64_t count)
{
    struct job_counts *c = ud;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 5; k++)
            if (strcmp(type, job_types[i]) == 0 && strcmp(state, job_states[k]) == 0)
                c->n[i][k] = count;
}

static void process_metrics(struct text *t)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    help(t, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    put(t, "process_cpu_seconds_total %.3f\n", cpu);
    long rss_pages = 0, vm_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &vm_pages, &rss_pages) != 2)
            vm_pages = rss_pages = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    help(t, "process_resident_memory_bytes", "gauge", "Resident memory size.");
    put(t, "process_resident_memory_bytes %ld\n", rss_pages * page);
    help(t, "process_virtual_memory_bytes", "gauge", "Virtual memory size.");
    put(t, "process_virtual_memory_bytes %ld\n", vm_pages * page);
    help(t, "process_max_resident_memory_bytes", "gauge", "Peak resident memory size.");
    put(t, "process_max_resident_memory_bytes %ld\n", ru.ru_maxrss * 1024L);
    int fds = 0;
    char path[64];
    for (int fd = 0; fd < 65536 && fds >= 0; fd++) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (access(path, F_OK) == 0)
            fds++;
        else if (fd > 1024 && fds < fd / 8)
            break;
    }
    help(t, "process_open_fds", "gauge", "Open file descriptors.");
    put(t, "process_open_fds %d\n", fds);
}

static void put_counter(void *ud, const char *route, const char *method, int code, uint64_t count)
{
    put(ud, "itemvecd_http_requests_total{route=\"%s\",method=\"%s\",code=\"%d\"} %llu\n", route,
        method, code, (unsigned long long)count);
}

static void put_histogram(void *ud, const struct metrics_histogram *h, const double *bounds)
{
    struct text *t = ud;
    for (int b = 0; b < METRICS_BUCKETS; b++)
        put(t, "itemvecd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
            h->route, bounds[b], (unsigned long long)h->buckets[b]);
    put(t, "itemvecd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
        h->route, (unsigned long long)h->count);
    put(t, "itemvecd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", h->route, h->sum);
    put(t, "itemvecd_http_request_duration_seconds_count{route=\"%s\"} %llu\n", h->route,
        (unsigned long long)h->count);
}

void api_metrics_get(struct api_req *req)
{
    struct app *app = req->app;
    struct text t = {0};
    size_t n;

    help(&t, "itemvecd_build_info", "gauge", "Build information (always 1).");
    put(&t, "itemvecd_build_info{version=\"%s\",build=\"%s\",compiler=\"%s\",blas_core=\"%s\"} 1\n",
        ITEMVEC_VERSION, ITEMVEC_BUILD_TYPE, ITEMVEC_COMPILER, openblas_get_corename());
    help(&t, "itemvecd_up", "gauge", "1 while serving, 0 while starting or draining.");
    put(&t, "itemvecd_up %d\n", app->ready && !app->draining);

    help(&t, "itemvecd_http_requests_total", "counter",
         "HTTP requests by route template, method and status code.");
    metrics_counters_foreach(put_counter, &t);
    help(&t, "itemvecd_http_request_duration_seconds", "histogram",
         "Time from request start to completion, by route template.");
    metrics_histograms_foreach(put_histogram, &t);

    struct api_server_stats ss = {0};
    if (app->server)
        api_server_stats(app->server, &ss);
    help(&t, "itemvecd_http_connections", "gauge", "Open HTTP connections.");
    put(&t, "itemvecd_http_connections %u\n", ss.open);
    help(&t, "itemvecd_http_connections_closed_total", "counter",
         "Connections closed by the connection budget: header_timeout (no complete request "
         "headers within server.header_timeout), evicted (the oldest header-waiting connection, "
         "closed to make room at a limit), refused (a limit reached with every connection busy).");
    put(&t, "itemvecd_http_connections_closed_total{reason=\"header_timeout\"} %llu\n",
        (unsigned long long)ss.header_timeouts);
    put(&t, "itemvecd_http_connections_closed_total{reason=\"evicted\"} %llu\n",
        (unsigned long long)ss.evicted);
    put(&t, "itemvecd_http_connections_closed_total{reason=\"refused\"} %llu\n",
        (unsigned long long)ss.refused);

    struct job_counts jc = {{{0}}};
    store_jobs_count(app->store, count_cb, &jc);
    /* queued/running live in memory; storage may lag by one write */
    unsigned queued, running;
    jobs_counts(app->jobs, &queued, &running);
    help(&t, "itemvecd_jobs", "gauge", "Jobs by type and state.");
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 5; k++)
            put(&t, "itemvecd_jobs{type=\"%s\",state=\"%s\"} %lld\n", job_types[i],
                job_states[k], (long long)jc.n[i][k]);
    help(&t, "itemvecd_jobs_queued", "gauge", "Jobs waiting to run (all types).");
    put(&t, "itemvecd_jobs_queued %u\n", queued);
    help(&t, "itemvecd_jobs_running", "gauge", "Jobs running (all types).");
    put(&t, "itemvecd_jobs_running %u\n", running);

    const struct jobs_duration *d;
    n = jobs_durations(app->jobs, &d);
    const double *jb = jobs_duration_bounds();
    help(&t, "itemvecd_job_duration_seconds", "histogram",
         "Run time of jobs finished since the daemon started, by type.");
    for (size_t i = 0; i < n; i++) {
        for (int b = 0; b < JOBS_DURATION_BUCKETS; b++)
            put(&t, "itemvecd_job_duration_seconds_bucket{type=\"%s\",le=\"%g\"} %llu\n",
                d[i].type, jb[b], (unsigned long long)d[i].buckets[b]);
        put(&t, "itemvecd_job_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} %llu\n", d[i].type,
            (unsigned long long)d[i].count);
        put(&t, "itemvecd_job_duration_seconds_sum{type=\"%s\"} %.3f\n", d[i].type, d[i].sum);
        put(&t, "itemvecd_job_duration_seconds_count{type=\"%s\"} %llu\n", d[i].type,
            (unsigned long long)d[i].count);
    }

    /* training loss: the running train job's, else the active model's last */
    double loss = NAN;
    if (jobs_running_value(app->jobs, "train", "loss", &loss) != 0 || loss < 0) {
        loss = NAN;
        struct store_model m;
        if (store_model_active(app->store, &m) == 0) {
            json_t *l = m.loss ? json_loads(m.loss, 0, NULL) : NULL;
            if (json_array_size(l))
                loss = json_number_value(json_array_get(l, json_array_size(l) - 1));
            json_decref(l);
            store_model_deinit(&m);
        }
    }
    help(&t, "itemvecd_training_loss", "gauge",
         "Loss of the running train job's last iteration, else of the active model.");
    if (isnan(loss))
        put(&t, "itemvecd_training_loss NaN\n");
    else
        put(&t, "itemvecd_training_loss %.6g\n", loss);

    struct replica_status rs;
    if (replica_status_get(app, &rs) == 0) {
        help(&t, "itemvecd_replica_lag_seconds", "gauge",
             "Seconds since this replica last confirmed it serves the primary's model (-1: never).");
        put(&t, "itemvecd_replica_lag_seconds %.3f\n", rs.lag_seconds);
        help(&t, "itemvecd_replica_syncs_total", "counter", "Models mirrored from the primary.");
        put(&t, "itemvecd_replica_syncs_total %llu\n", (unsigned long long)rs.syncs);
        help(&t, "itemvecd_replica_sync_failures_total", "counter",
             "Failed polls and downloads from the primary.");
        put(&t, "itemvecd_replica_sync_failures_total %llu\n", (unsigned long long)rs.failures);
    }

    struct store_counts sc = {0};
    store_counts_get(app->store, &sc);
    help(&t, "itemvecd_playlists", "gauge", "Playlists stored.");
    put(&t, "itemvecd_playlists %lld\n", (long long)sc.playlists);
    help(&t, "itemvecd_items", "gauge", "Items stored.");
    put(&t, "itemvecd_items %lld\n", (long long)sc.items);
    help(&t, "itemvecd_memberships", "gauge", "Playlist memberships (rows) stored.");
    put(&t, "itemvecd_memberships %lld\n", (long long)sc.memberships);

    struct served_model *m = serving_active(app);
    help(&t, "itemvecd_active_model_items", "gauge", "Items in the active model (0: none).");
    put(&t, "itemvecd_active_model_items %u\n", m ? m->data.n : 0);
    help(&t, "itemvecd_active_model_dimensions", "gauge", "Dimensions of the active model.");
    put(&t, "itemvecd_active_model_dimensions %u\n", m ? m->data.dimensions : 0);
    help(&t, "itemvecd_active_model_bytes", "gauge", "Memory held by the active model.");
    put(&t, "itemvecd_active_model_bytes %zu\n", m ? m->bytes : 0);
    struct serving_cache_stats cs;
    serving_cache_stats(app, &cs);
    help(&t, "itemvecd_model_cache_models", "gauge",
         "Other models cached for ?model= queries and exports.");
    put(&t, "itemvecd_model_cache_models %u\n", cs.models);
    help(&t, "itemvecd_model_cache_bytes", "gauge",
         "Memory held by those models (bounded by serving.model_cache_bytes, but the most "
         "recently used model always stays).");
    put(&t, "itemvecd_model_cache_bytes %zu\n", cs.bytes);
    help(&t, "itemvecd_model_cache_loads_total", "counter",
         "Loads of other models from their files (a cache miss each).");
    put(&t, "itemvecd_model_cache_loads_total %llu\n", cs.loads);
    help(&t, "itemvecd_model_cache_evictions_total", "counter",
         "Models evicted from the cache for its byte budget.");
    put(&t, "itemvecd_model_cache_evictions_total %llu\n", cs.evictions);
    process_metrics(&t);

    if (!t.buf) {
        api_reply_problem(req, 503, "out-of-memory", "Service Unavailable", NULL, "out of memory");
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(t.len, t.buf, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    api_reply_response(req, 200, resp);
}
