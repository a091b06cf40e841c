/*
 * Request metrics, recorded on the loop thread when a request completes:
 * counts by (route template, method, status) and a duration histogram by
 * route. The tables are indexed by the request's route label (set by the
 * router: a pattern of the route table or "unmatched") and by a method
 * from a fixed set, so their size is fixed at build time and unauthenticated
 * junk (made-up methods, random paths) lands in "unmatched"/"other" rows
 * instead of crowding out real series.
 */
#include <stdio.h>
#include <string.h>

#include "base/thread.h"
#include "api/api.h"
#include "api/metrics.h"
#include "api/server_internal.h"

static const double bucket_bounds[METRICS_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                                      5,      10};

static const char *const methods[METRICS_METHODS] = {"GET", "HEAD",   "POST",
                                                     "PUT", "DELETE", "other"};

struct cell {
    unsigned n;
    int code[METRICS_CODES_PER_CELL];
    uint64_t count[METRICS_CODES_PER_CELL];
    uint64_t dropped; /* codes beyond the cell's room (a bug if ever seen) */
};

static struct cell cells[METRICS_MAX_ROUTES][METRICS_METHODS];
static struct metrics_histogram hists[METRICS_MAX_ROUTES];

static int method_index(const char *m)
{
    for (int i = 0; i < METRICS_METHODS - 1; i++)
        if (strcmp(m, methods[i]) == 0)
            return i;
    return METRICS_METHODS - 1;
}

const char *metrics_method_label(const char *method)
{
    return methods[method_index(method)];
}

static const char *route_name_of(int label)
{
    return label >= 0 && (size_t)label < api_routes_count ? api_routes[label].pattern : "unmatched";
}

static int label_index(const struct api_req *req)
{
    int l = req->route_label;
    if (l < 0 || (size_t)l > api_routes_count || l >= METRICS_MAX_ROUTES)
        l = (int)api_routes_count < METRICS_MAX_ROUTES ? (int)api_routes_count
                                                       : METRICS_MAX_ROUTES - 1;
    return l;
}

void api__metrics_observe(struct api_req *req, int status, double seconds)
{
    ASSERT_LOOP_THREAD();
    int r = label_index(req);
    struct cell *c = &cells[r][method_index(req->method)];
    unsigned i;
    for (i = 0; i < c->n; i++)
        if (c->code[i] == status)
            break;
    if (i == c->n && c->n < METRICS_CODES_PER_CELL) {
        c->code[i] = status;
        c->count[i] = 0;
        c->n++;
    }
    if (i < c->n)
        c->count[i]++;
    else
        c->dropped++;
    struct metrics_histogram *h = &hists[r];
    h->route = route_name_of(r);
    for (int b = 0; b < METRICS_BUCKETS; b++)
        if (seconds <= bucket_bounds[b])
            h->buckets[b]++;
    h->count++;
    h->sum += seconds;
}

void metrics_counters_foreach(void (*fn)(void *ud, const char *route, const char *method, int code,
                                         uint64_t count),
                              void *ud)
{
    ASSERT_LOOP_THREAD();
    for (int r = 0; r < METRICS_MAX_ROUTES; r++)
        for (int m = 0; m < METRICS_METHODS; m++)
            for (unsigned i = 0; i < cells[r][m].n; i++)
                fn(ud, route_name_of(r), methods[m], cells[r][m].code[i], cells[r][m].count[i]);
}

void metrics_histograms_foreach(void (*fn)(void *ud, const struct metrics_histogram *h,
                                           const double *bounds),
                                void *ud)
{
    ASSERT_LOOP_THREAD();
    for (int r = 0; r < METRICS_MAX_ROUTES; r++)
        if (hists[r].count)
            fn(ud, &hists[r], bucket_bounds);
}
