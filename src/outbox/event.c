/* event.c: turns a normalized event (docs/events.md) into the outbox's stored form: the envelope
 * fields become columns (id, type, pbx, time) and details.callId (the Linkedid) the order key. */
#include "outbox/outbox.h"

#include "core/error.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int outbox_parse_time(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return SB_EINVAL;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        while (digits > 0 && digits < 3) {
            frac *= 10;
            digits++;
        }
    }
    if (*p != 'Z' || p[1] != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return SB_EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 0;
}

static const char *str_field(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int outbox_event_from_json(const json_t *obj, const char *text, size_t len, store_event *out)
{
    if (!json_is_object(obj) || !text)
        return SB_EINVAL;
    const char *id = str_field(obj, "id"), *type = str_field(obj, "type");
    const char *time = str_field(obj, "time"), *pbx = str_field(obj, "pbx");
    if (!id || !*id || !type || !*type)
        return SB_EINVAL;
    int64_t ms = 0;
    if (time && outbox_parse_time(time, &ms))
        return SB_EINVAL;
    const char *key = str_field(json_object_get(obj, "details"), "callId");
    *out = (store_event){0, id, type, pbx ? pbx : "", key ? key : "", ms, text, len};
    return 0;
}
