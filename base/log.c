/*
 * Logging to stderr with syslog priority prefixes (see log.h). The level is
 * an atomic so SIGHUP can change it while workers log.
 */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level_min = LOG_LEVEL_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* syslog priorities: debug 7, info 6, warning 4, err 3 */
static const int level_prio[] = {7, 6, 4, 3};

/* journald adds its own timestamps; JOURNAL_STREAM tells we write to it. */
static int log_to_journal(void)
{
    static atomic_int cached = -1;
    int v = atomic_load(&cached);
    if (v < 0) {
        v = getenv("JOURNAL_STREAM") != NULL;
        atomic_store(&cached, v);
    }
    return v;
}

void log_set_level(enum log_level level)
{
    atomic_store(&log_level_min, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&log_level_min);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "?";
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load(&log_level_min))
        return;
    char buf[4096];
    size_t n = 0;
    n += (size_t)snprintf(buf, sizeof buf, "<%d>", level_prio[level]);
    if (!log_to_journal()) {
        /* the date part changes once a second: format it once a second */
        static __thread time_t cached_sec = -1;
        static __thread char cached[32];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (ts.tv_sec != cached_sec) {
            struct tm tm;
            gmtime_r(&ts.tv_sec, &tm);
            strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
            cached_sec = ts.tv_sec;
        }
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s.%03ldZ ", cached,
                              ts.tv_nsec / 1000000);
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s ", level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
}
