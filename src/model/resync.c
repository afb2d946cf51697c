/* resync.c: state restore after a (re)connect.
 *
 * model_begin_resync() marks every channel, queue member, waiting caller, hint and device of the
 * PBX unconfirmed. The list items that follow go through the ordinary handlers, which confirm what
 * they name and announce what changed (a member paused meanwhile -> queueMemberStatus; a call
 * that began meanwhile -> call.started with "restored": true). model_end_resync() then removes
 * what a *completed* list did not confirm: channels hang up (so calls that ended meanwhile end,
 * marked "endedWhileDisconnected"), members leave, callers leave the queue, devices vanish. A
 * list whose ...Complete event never arrived (the action failed or was not sent) sweeps nothing.
 */
#include "model/internal.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

void resync_list_complete(model_pbx *p, sb_slice name)
{
    if (!p->resyncing)
        return;
    if (sb_slice_eq_ci(name, "CoreShowChannelsComplete"))
        p->got_channels = true;
    else if (sb_slice_eq_ci(name, "QueueStatusComplete"))
        p->got_queues = true;
    else if (sb_slice_eq_ci(name, "ExtensionStateListComplete"))
        p->got_hints = true;
    else if (sb_slice_eq_ci(name, "DeviceStateListComplete"))
        p->got_devices = true;
}

int model_begin_resync(model *m, const char *pbx)
{
    model_pbx *p = model_pbx_get(m, pbx, true);
    sb_strmap_iter it, qit;
    void *v, *qv;
    if (!p)
        return SB_ENOMEM;
    p->resyncing = true;
    p->got_channels = p->got_queues = p->got_hints = p->got_devices = false;
    sb_strmap_iter_init(&it, &p->channels);
    while (sb_strmap_iter_next(&it, NULL, &v))
        ((mchan *)v)->seen = false;
    sb_strmap_iter_init(&it, &p->hints);
    while (sb_strmap_iter_next(&it, NULL, &v))
        ((mhint *)v)->seen = false;
    sb_strmap_iter_init(&it, &p->devices);
    while (sb_strmap_iter_next(&it, NULL, &v))
        ((mdevice *)v)->seen = false;
    sb_strmap_iter_init(&it, &p->queues);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        mqueue *q = v;
        q->seen = false;
        sb_strmap_iter_init(&qit, &q->members);
        while (sb_strmap_iter_next(&qit, NULL, &qv))
            ((mmember *)qv)->seen = false;
        sb_strmap_iter_init(&qit, &q->callers);
        while (sb_strmap_iter_next(&qit, NULL, &qv))
            ((mcaller *)qv)->seen = false;
    }
    return 0;
}

/* Values of map whose "seen" flag (read by is_seen) is false, copied into an owned array. */
static void **unseen(const sb_strmap *map, bool (*is_seen)(const void *), size_t *n)
{
    sb_strmap_iter it;
    void *v;
    void **out = calloc(sb_strmap_count(map) + 1, sizeof *out);
    *n = 0;
    if (!out)
        return NULL;
    sb_strmap_iter_init(&it, map);
    while (sb_strmap_iter_next(&it, NULL, &v))
        if (!is_seen(v))
            out[(*n)++] = v;
    return out;
}

static bool chan_seen(const void *v)
{
    return ((const mchan *)v)->seen;
}
static bool member_seen(const void *v)
{
    return ((const mmember *)v)->seen;
}
static bool caller_seen(const void *v)
{
    return ((const mcaller *)v)->seen;
}
static bool device_seen(const void *v)
{
    return ((const mdevice *)v)->seen;
}

int model_end_resync(model *m, const char *pbx)
{
    model_pbx *p = model_pbx_get(m, pbx, false);
    sb_strmap_iter it;
    void *v;
    void **gone;
    size_t n;
    int rc = 0;
    if (!p || !p->resyncing)
        return SB_EINVAL;
    m->ev_time = model_clock(m);
    if (p->got_channels) {
        /* Channels are hung up in call order of the map; each call ends with its last one. */
        gone = unseen(&p->channels, chan_seen, &n);
        if (!gone)
            rc = SB_ENOMEM;
        for (size_t i = 0; gone && i < n; i++)
            chan_hangup(m, p, gone[i], true);
        free(gone);
        /* Bridges left empty by channels that vanished (their BridgeDestroy was missed). */
        gone = calloc(sb_strmap_count(&p->bridges) + 1, sizeof *gone);
        n = 0;
        sb_strmap_iter_init(&it, &p->bridges);
        while (gone && sb_strmap_iter_next(&it, NULL, &v))
            if (((mbridge *)v)->n == 0)
                gone[n++] = v;
        for (size_t i = 0; gone && i < n; i++) {
            sb_strmap_del(&p->bridges, sb_slice_cstr(((mbridge *)gone[i])->id));
            bridge_free(gone[i]);
        }
        free(gone);
    }
    if (p->got_queues) {
        sb_strmap_iter_init(&it, &p->queues);
        while (sb_strmap_iter_next(&it, NULL, &v)) {
            mqueue *q = v;
            /* Only queues the list named (QueueParams): a QueueStatus filtered to one queue
             * must not empty the others. */
            if (!q->seen)
                continue;
            gone = unseen(&q->members, member_seen, &n);
            for (size_t i = 0; gone && i < n; i++)
                queue_member_remove(m, p, q, gone[i]);
            free(gone);
            gone = unseen(&q->callers, caller_seen, &n);
            for (size_t i = 0; gone && i < n; i++)
                queue_caller_remove(p, q, gone[i]);
            free(gone);
        }
    }
    if (p->got_devices) {
        gone = unseen(&p->devices, device_seen, &n);
        for (size_t i = 0; gone && i < n; i++) {
            sb_strmap_del(&p->devices, sb_slice_cstr(((mdevice *)gone[i])->name));
            device_free(gone[i]);
        }
        free(gone);
    }
    /* Hints are configuration: one missing from the list is kept with its last status. */
    p->resyncing = false;
    sb_strmap_iter_init(&it, &p->queues);
    while (sb_strmap_iter_next(&it, NULL, &v))
        queue_announce_count(m, p, v);
    return rc;
}
