/*
 * Request metrics tables (loop thread only), read by the /metrics handler.
 */
#ifndef ITEMVEC_API_METRICS_H
#define ITEMVEC_API_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_BUCKETS 14
#define METRICS_MAX_COUNTERS 512
#define METRICS_MAX_ROUTES 64

struct metrics_counter {
    const char *route_key; /* the route table's string: identity */
    char route[64];
    char method[16];
    int code;
    uint64_t count;
};

struct metrics_histogram {
    const char *route_key;
    char route[64];
    uint64_t buckets[METRICS_BUCKETS]; /* cumulative: le bound */
    uint64_t count;
    double sum;
};

const struct metrics_counter *metrics_counters(size_t *n);
const struct metrics_histogram *metrics_histograms(size_t *n, const double **bounds);

#endif
