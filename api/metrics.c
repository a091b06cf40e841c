/*
 * Request metrics, recorded on the loop thread when a request completes:
 * counts by (route template, method, status) and a duration histogram by
 * route. Route templates (not raw paths) keep the label set bounded.
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

static struct metrics_counter counters[METRICS_MAX_COUNTERS];
static size_t n_counters;
static struct metrics_histogram hists[METRICS_MAX_ROUTES];
static size_t n_hists;

void api__metrics_observe(struct api_req *req, int status, double seconds)
{
    ASSERT_LOOP_THREAD();
    const char *route = req->route_name;
    const char *method = req->method;
    size_t i;
    /* route names are the route table's own strings (or one literal), so a
     * pointer compare finds the row without strcmp on the hot path */
    for (i = 0; i < n_counters; i++)
        if (counters[i].code == status && counters[i].route_key == route &&
            strcmp(counters[i].method, method) == 0)
            break;
    if (i == n_counters && n_counters < METRICS_MAX_COUNTERS) {
        snprintf(counters[i].route, sizeof counters[i].route, "%s", route);
        counters[i].route_key = route;
        snprintf(counters[i].method, sizeof counters[i].method, "%s", method);
        counters[i].code = status;
        n_counters++;
    }
    if (i < n_counters)
        counters[i].count++;
    for (i = 0; i < n_hists; i++)
        if (hists[i].route_key == route)
            break;
    if (i == n_hists && n_hists < METRICS_MAX_ROUTES) {
        snprintf(hists[i].route, sizeof hists[i].route, "%s", route);
        hists[i].route_key = route;
        n_hists++;
    }
    if (i < n_hists) {
        struct metrics_histogram *h = &hists[i];
        for (int b = 0; b < METRICS_BUCKETS; b++)
            if (seconds <= bucket_bounds[b])
                h->buckets[b]++;
        h->count++;
        h->sum += seconds;
    }
}

const struct metrics_counter *metrics_counters(size_t *n)
{
    *n = n_counters;
    return counters;
}

const struct metrics_histogram *metrics_histograms(size_t *n, const double **bounds)
{
    *n = n_hists;
    *bounds = bucket_bounds;
    return hists;
}
