/* log.h: one-line log records to stderr: time, level, subsystem, message.
 *
 * The level and format are process-wide settings made once by main.c (the one piece of global
 * state, as in every daemon's logger). Never pass a secret to these functions: callers log the
 * user name, never the password, key or token.
 */
#ifndef SB_CORE_LOG_H
#define SB_CORE_LOG_H

typedef enum sb_log_level {
    SB_LOG_DEBUG,
    SB_LOG_INFO,
    SB_LOG_WARN,
    SB_LOG_ERROR,
} sb_log_level;

/* Sets the lowest level written (default INFO) and the format (json: one JSON object per line). */
void sb_log_setup(sb_log_level min, int json);
/* Parses "debug", "info", "warn", "error"; returns 0 or -1. */
int sb_log_level_parse(const char *s, sb_log_level *out);
int sb_log_enabled(sb_log_level lvl);
void sb_log(sb_log_level lvl, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SB_DEBUG(sub, ...)                                                                         \
    do {                                                                                           \
        if (sb_log_enabled(SB_LOG_DEBUG))                                                          \
            sb_log(SB_LOG_DEBUG, sub, __VA_ARGS__);                                                \
    } while (0)
#define SB_INFO(sub, ...) sb_log(SB_LOG_INFO, sub, __VA_ARGS__)
#define SB_WARN(sub, ...) sb_log(SB_LOG_WARN, sub, __VA_ARGS__)
#define SB_ERROR(sub, ...) sb_log(SB_LOG_ERROR, sub, __VA_ARGS__)

#endif
