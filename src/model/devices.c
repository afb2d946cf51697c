/* devices.c: device states (DeviceStateChange, live or as DeviceStateList items) and extension
 * hints (ExtensionStatus, live or as ExtensionStateList items). A hint's status change is the
 * agent event extensionStatus; device states are kept for the state queries only (an agent's
 * phone already shows through its hint, and Queue:* pseudo-devices would only add noise).
 * Idle Local/... devices are forgotten (see on_device_state). */
#include "model/internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

void device_free(mdevice *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->state);
    free(d);
}

void hint_free(mhint *h)
{
    if (!h)
        return;
    free(h->exten);
    free(h->context);
    free(h->hint);
    free(h);
}

/* ExtensionStatus Status values are bit flags: InUse 1, Busy 2, Unavailable 4, Ringing 8,
 * OnHold 16 (protocol-facts.md §1.12); 9 and 17 are combinations. */
const char *hint_status_text(int status)
{
    switch (status) {
    case -2:
        return "removed";
    case -1:
        return "deactivated";
    case 0:
        return "idle";
    case 1:
        return "inUse";
    case 2:
        return "busy";
    case 4:
        return "unavailable";
    case 8:
        return "ringing";
    case 9:
        return "inUseRinging";
    case 16:
        return "onHold";
    case 17:
        return "inUseOnHold";
    default:
        return "unknown";
    }
}

json_t *hint_json(const mhint *h)
{
    return json_pack("{s:s, s:s?, s:s?, s:s, s:i}", "extension", h->exten, "context", h->context,
                     "hint", h->hint, "status", hint_status_text(h->status), "statusCode",
                     h->status);
}

static void on_extension_status(model *m, model_pbx *p, const ami_packet *ev)
{
    sb_slice exten = ami_packet_value(ev, "Exten");
    sb_slice ctx = ami_packet_value(ev, "Context");
    char key[256];
    mhint *h;
    magent *a;
    int status;
    if (exten.len == 0 || exten.len + ctx.len + 2 > sizeof key)
        return;
    memcpy(key, exten.ptr, exten.len);
    key[exten.len] = '@';
    if (ctx.len)
        memcpy(key + exten.len + 1, ctx.ptr, ctx.len);
    key[exten.len + 1 + ctx.len] = '\0';
    h = sb_strmap_get(&p->hints, sb_slice_cstr(key));
    if (!h) {
        h = calloc(1, sizeof *h);
        if (!h)
            return;
        h->exten = mdup(exten);
        h->context = mdup(ctx);
        h->status = INT_MIN;
        if (!h->exten || sb_strmap_put(&p->hints, sb_slice_cstr(key), h) < 0) {
            hint_free(h);
            return;
        }
    }
    h->seen = true;
    mset(&h->hint, ami_packet_value(ev, "Hint"));
    a = agent_get(p, h->exten, true);
    if (a && h->hint) {
        /* A hint may name several devices: PJSIP/1001&Custom:DND1001. */
        const char *s = h->hint;
        while (*s) {
            const char *e = strchr(s, '&');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            agent_map_device(p, (sb_slice){s, n}, a);
            s += n;
            if (*s == '&')
                s++;
        }
    }
    status = (int)mget_long(ev, "Status", INT_MIN);
    if (status == INT_MIN || status == h->status)
        return;
    h->status = status;
    mev_emit(m, p, "extensionStatus", h->exten, NULL, hint_json(h));
}

static void on_device_state(model_pbx *p, const ami_packet *ev)
{
    sb_slice name = ami_packet_value(ev, "Device");
    mdevice *d;
    if (name.len == 0)
        return;
    d = sb_strmap_get(&p->devices, name);
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d)
            return;
        d->name = mdup(name);
        if (!d->name || sb_strmap_put(&p->devices, name, d) < 0) {
            device_free(d);
            return;
        }
    }
    d->seen = true;
    mset(&d->state, ami_packet_value(ev, "State"));
    /* Local/<number>@<context> devices come and go with each dialled number (a click-to-dial to
     * a thousand numbers makes a thousand devices): keep them only while in use, or memory
     * would grow without bound. */
    if (strncmp(d->name, "Local/", 6) == 0 && d->state &&
        (strcmp(d->state, "NOT_INUSE") == 0 || strcmp(d->state, "INVALID") == 0 ||
         strcmp(d->state, "UNKNOWN") == 0)) {
        sb_strmap_del(&p->devices, name);
        device_free(d);
    }
}

void device_handle(model *m, model_pbx *p, const ami_packet *ev, sb_slice name)
{
    if (sb_slice_eq_ci(name, "ExtensionStatus"))
        on_extension_status(m, p, ev);
    else
        on_device_state(p, ev);
}
