/* tz.c: local time in a named IANA zone from the system tz database (/usr/share/zoneinfo).
 *
 * glibc converts to local time only in the process's own zone (TZ), so the conversion switches
 * TZ under a mutex, asks localtime_r() for the UTC offset, and restores TZ. That is a file read
 * (tzset) per switch, so the offset is cached per zone for the current 15-minute UTC slot: every
 * real zone changes offset only at instants aligned to 15 minutes, so within a slot the offset
 * is constant. The common call is a cache hit: gmtime_r(t + offset), no lock on the tz database.
 * Caveat (docs/routing.md): setenv() is not safe against getenv() on other threads; switchboard
 * reads the environment only at start-up and on the loop thread, which is where routing runs.
 */
#include "routing/route.h"

#include "core/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TZ_CACHE 16
#define TZ_SLOT 900

typedef struct tz_cache_entry {
    char name[64];
    time_t slot;
    long gmtoff;
} tz_cache_entry;

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static tz_cache_entry tz_cache[TZ_CACHE];
static unsigned tz_next;

static bool tz_name_ok(const char *tz)
{
    size_t n = strlen(tz);
    if (n == 0 || n >= 64 || tz[0] == '/' || strstr(tz, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = tz[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '+' || c == '/'))
            return false;
    }
    return true;
}

bool route_tz_is_valid(const char *tz)
{
    if (!tz || !tz[0] || strcmp(tz, "UTC") == 0)
        return true;
    if (!tz_name_ok(tz))
        return false;
    const char *dir = getenv("TZDIR");
    char path[256], magic[4];
    snprintf(path, sizeof path, "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", tz);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    bool ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
    fclose(f);
    return ok;
}

/* The UTC offset of tz at t, through glibc with TZ switched. Caller holds tz_lock. */
static long tz_offset_slow(const char *tz, time_t t)
{
    char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    char val[80];
    struct tm tm;
    snprintf(val, sizeof val, ":%s", tz);
    setenv("TZ", val, 1);
    tzset();
    long off = localtime_r(&t, &tm) ? tm.tm_gmtoff : 0;
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
    return off;
}

int route_tz_localtime(const char *tz, time_t t, struct tm *out)
{
    long off = 0;
    if (tz && tz[0] && strcmp(tz, "UTC") != 0) {
        if (!tz_name_ok(tz))
            return SB_EINVAL;
        time_t slot = t / TZ_SLOT;
        bool hit = false;
        pthread_mutex_lock(&tz_lock);
        for (unsigned i = 0; i < TZ_CACHE; i++) {
            if (tz_cache[i].slot == slot && strcmp(tz_cache[i].name, tz) == 0) {
                off = tz_cache[i].gmtoff;
                hit = true;
                break;
            }
        }
        if (!hit) {
            off = tz_offset_slow(tz, t);
            tz_cache_entry *e = &tz_cache[tz_next++ % TZ_CACHE];
            snprintf(e->name, sizeof e->name, "%s", tz);
            e->slot = slot;
            e->gmtoff = off;
        }
        pthread_mutex_unlock(&tz_lock);
    }
    time_t local = t + off;
    if (!gmtime_r(&local, out))
        return SB_EINVAL;
    out->tm_gmtoff = off;
    return 0;
}
