/* log.c: the stderr logger of log.h. */
#include "core/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static sb_log_level log_min = SB_LOG_INFO;
static int log_json;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sb_log_setup(sb_log_level min, int json)
{
    log_min = min;
    log_json = json;
}

int sb_log_level_parse(const char *s, sb_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (sb_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = SB_LOG_WARN;
        return 0;
    }
    return -1;
}

int sb_log_enabled(sb_log_level lvl)
{
    return lvl >= log_min;
}

void sb_log(sb_log_level lvl, const char *subsystem, const char *fmt, ...)
{
    char msg[2048], ts[64];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    if (lvl < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    if (log_json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "time", ts, "level", level_names[lvl],
                              "subsystem", subsystem, "message", msg);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(o);
        return;
    }
    fprintf(stderr, "%s %-5s %s: %s\n", ts, level_names[lvl], subsystem, msg);
}
