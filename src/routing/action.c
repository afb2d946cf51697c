/* action.c: an action as the dialplan application it runs (Dial, Queue, VoiceMail, ConfBridge,
 * Playback) with its argument built from templates; caller-ID map lookups. Shared by the runner
 * (EXEC over AGI) and `switchboard route test` (printed), so both always show the same thing.
 */
#include "routing/route.h"

#include "core/error.h"

#include <string.h>

int route_action_app(const route_action *a, const route_vars *v, const char **app, sb_buf *data)
{
    size_t before = data->len;
    int rc = 0;
    switch (a->kind) {
    case ROUTE_ACT_DIAL:
        *app = "Dial";
        for (size_t i = 0; rc == 0 && i < a->nargs; i++) {
            if (i)
                rc = sb_buf_puts(data, "&");
            if (rc == 0)
                rc = route_expand(a->args[i], v, data);
        }
        if (rc == 0 && (a->timeout_ms || a->options))
            rc = a->timeout_ms ? sb_buf_printf(data, ",%u", (a->timeout_ms + 999) / 1000)
                               : sb_buf_puts(data, ",");
        if (rc == 0 && a->options)
            rc = sb_buf_printf(data, ",%s", a->options);
        break;
    case ROUTE_ACT_QUEUE:
        *app = "Queue";
        rc = route_expand(a->args[0], v, data);
        if (rc == 0 && (a->options || a->timeout_ms))
            rc = sb_buf_printf(data, ",%s", a->options ? a->options : "");
        if (rc == 0 && a->timeout_ms)
            rc = sb_buf_printf(data, ",,,%u", (a->timeout_ms + 999) / 1000);
        break;
    case ROUTE_ACT_VOICEMAIL:
        *app = "VoiceMail";
        rc = route_expand(a->args[0], v, data);
        if (rc == 0 && a->options)
            rc = sb_buf_printf(data, ",%s", a->options);
        break;
    case ROUTE_ACT_CONFERENCE:
        *app = "ConfBridge";
        rc = route_expand(a->args[0], v, data);
        break;
    case ROUTE_ACT_PLAYBACK:
        *app = "Playback";
        for (size_t i = 0; rc == 0 && i < a->nargs; i++) {
            if (i)
                rc = sb_buf_puts(data, "&");
            if (rc == 0)
                rc = route_expand(a->args[i], v, data);
        }
        break;
    default:
        return SB_ENOTFOUND;
    }
    if (rc < 0) {
        data->len = before;
        if (data->data)
            data->data[before] = 0;
    }
    return rc;
}

const char *route_cidmap_lookup(const route_cidmap *m, sb_slice caller)
{
    for (size_t i = 0; i < m->nmap; i++)
        if (sb_slice_eq(sb_slice_cstr(m->map[i].name), caller))
            return m->map[i].value;
    return m->def;
}
