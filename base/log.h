/*
 * Logging: one line per event on stderr, prefixed with a syslog priority
 * ("<6>") so journald keeps levels when itemvecd runs under systemd. Outside
 * journald (JOURNAL_STREAM unset) lines also carry a UTC timestamp.
 * Thread-safe: each line is formatted into a local buffer and written with
 * one write(2).
 */
#ifndef ITEMVEC_BASE_LOG_H
#define ITEMVEC_BASE_LOG_H

enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
};

/* Sets the minimum level written (atomic; may be called on SIGHUP). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "debug|info|warn|error". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* printf-style; a newline is appended. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
