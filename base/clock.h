/*
 * Clock readings for durations, progress ETAs and benchmarks: the one copy
 * of "read CLOCK_MONOTONIC (or a CPU-time clock) and convert it", which job
 * types, serving, the HTTP server and the benches used to define each for
 * themselves. Header only (static inline), libc only, callable from any
 * thread. Not for timestamps shown to people or stored: those are
 * CLOCK_REALTIME (jobs_now_ms in jobs/jobs.h, the log prefix in base/log.c).
 * ml/ keeps its own two readings (ml/cooc.c, ml/par.c): it includes nothing
 * of ours, base/ included.
 */
#ifndef ITEMVEC_BASE_CLOCK_H
#define ITEMVEC_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* A reading of clock id as a timespec (clock_gettime cannot fail for the
 * clocks below). */
static inline struct timespec clock__read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts;
}

static inline double clock__seconds(clockid_t id)
{
    struct timespec ts = clock__read(id);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds on CLOCK_MONOTONIC (arbitrary origin): subtract two readings. */
static inline double clock_mono_s(void)
{
    return clock__seconds(CLOCK_MONOTONIC);
}

/* Whole milliseconds on CLOCK_MONOTONIC (arbitrary origin). */
static inline uint64_t clock_mono_ms(void)
{
    struct timespec ts = clock__read(CLOCK_MONOTONIC);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Nanoseconds on CLOCK_MONOTONIC (arbitrary origin). */
static inline uint64_t clock_mono_ns(void)
{
    struct timespec ts = clock__read(CLOCK_MONOTONIC);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU seconds used by the whole process (all threads) so far. */
static inline double clock_cpu_s(void)
{
    return clock__seconds(CLOCK_PROCESS_CPUTIME_ID);
}

/* CPU seconds used by the calling thread so far. */
static inline double clock_thread_cpu_s(void)
{
    return clock__seconds(CLOCK_THREAD_CPUTIME_ID);
}

#endif
