/*
 * Request metrics tables (loop thread only), read by the /metrics handler.
 * Every label comes from a fixed set: the route table's patterns plus
 * "unmatched", the methods GET HEAD POST PUT DELETE plus "other", and the
 * status code (each route × method cell holds its own few codes). No
 * client can add a label value or fill a table another series needs.
 */
#ifndef ITEMVEC_API_METRICS_H
#define ITEMVEC_API_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_BUCKETS 14
#define METRICS_MAX_ROUTES 64 /* route table entries + "unmatched" */
#define METRICS_METHODS 6
#define METRICS_CODES_PER_CELL 16 /* status codes one route × method returns */

/* The method label of a request method: itself when it is one of the
 * fixed set, else "other". */
const char *metrics_method_label(const char *method);

/* Calls fn for every (route, method, code) counter recorded so far, in a
 * stable order. route and method are static strings. */
void metrics_counters_foreach(void (*fn)(void *ud, const char *route, const char *method, int code,
                                         uint64_t count),
                              void *ud);

struct metrics_histogram {
    const char *route;                 /* static: a route pattern or "unmatched" */
    uint64_t buckets[METRICS_BUCKETS]; /* cumulative: le bound */
    uint64_t count;
    double sum;
};

/* Calls fn for every route with at least one observation. */
void metrics_histograms_foreach(void (*fn)(void *ud, const struct metrics_histogram *h,
                                           const double *bounds),
                                void *ud);

#endif
