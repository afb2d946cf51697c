/* agents.c: agents by extension — the people behind queue members and hinted phones — with the
 * events that belong to one agent: phoneNumber (the remote party now patched through to the
 * agent, or null when that call leaves), originateFailed, and the agent's current view (extension
 * status, queues with status and pause, remote number, last completed call).
 *
 * An agent's extension comes from a member interface (Local/501@agents/n -> 501, PJSIP/1001 ->
 * 1001) or a hint (ExtensionStatus Exten). Devices (PJSIP/1001, Local/501@agents) are mapped to
 * agents so that a channel on such a device is known to be that agent's.
 */
#include "model/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void agent_free(magent *a)
{
    if (!a)
        return;
    free(a->ext);
    free(a->remote_num);
    free(a->remote_name);
    free(a->remote_call);
    json_decref(a->last_call);
    free(a);
}

magent *agent_get(model_pbx *p, const char *ext, bool create)
{
    magent *a;
    if (!ext || !*ext)
        return NULL;
    a = sb_strmap_get(&p->agents, sb_slice_cstr(ext));
    if (a || !create)
        return a;
    a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->ext = strdup(ext);
    if (!a->ext || sb_strmap_put(&p->agents, sb_slice_cstr(ext), a) < 0) {
        agent_free(a);
        return NULL;
    }
    return a;
}

char *agent_ext_from_interface(sb_slice iface)
{
    const char *p = iface.ptr, *end = iface.ptr + iface.len;
    const char *slash = iface.len ? memchr(p, '/', iface.len) : NULL;
    if (slash)
        p = slash + 1;
    const char *q = p;
    while (q < end && *q != '@' && *q != '/' && *q != ';')
        q++;
    return mdup((sb_slice){p, (size_t)(q - p)});
}

void agent_map_device(model_pbx *p, sb_slice device, magent *a)
{
    if (device.len && sb_strmap_get(&p->devagent, device) != a)
        sb_strmap_put(&p->devagent, device, a);
}

magent *agent_of_device(model_pbx *p, const char *device)
{
    return device ? sb_strmap_get(&p->devagent, sb_slice_cstr(device)) : NULL;
}

static bool eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

void agent_set_remote(model *m, model_pbx *p, magent *a, const char *num, const char *name,
                      const char *call_id, const char *queue)
{
    if (a->has_remote && eq(a->remote_num, num) && eq(a->remote_call, call_id))
        return;
    a->has_remote = true;
    mset_str(&a->remote_num, num);
    mset_str(&a->remote_name, name);
    mset_str(&a->remote_call, call_id);
    mev_emit(m, p, "phoneNumber", a->ext, NULL,
             json_pack("{s:s?, s:s?, s:s?, s:s?}", "number", num, "name", name, "callId", call_id,
                       "queue", queue));
}

void agent_clear_remote(model *m, model_pbx *p, magent *a, const char *call_id)
{
    if (!a->has_remote || (call_id && a->remote_call && strcmp(call_id, a->remote_call) != 0))
        return;
    a->has_remote = false;
    mev_emit(m, p, "phoneNumber", a->ext, NULL,
             json_pack("{s:n, s:n, s:s?}", "number", "name", "callId", a->remote_call));
    mset_str(&a->remote_num, NULL);
    mset_str(&a->remote_name, NULL);
    mset_str(&a->remote_call, NULL);
}

void agent_call_completed(magent *a, json_t *summary)
{
    if (!summary)
        return;
    json_decref(a->last_call);
    a->last_call = summary;
}

json_t *agent_json(model_pbx *p, const magent *a)
{
    sb_strmap_iter it, mit;
    void *v, *mv;
    json_t *queues = json_array(), *ext_status = json_null(), *calls = json_array();
    json_t *o;
    sb_strmap_iter_init(&it, &p->queues);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        const mqueue *q = v;
        sb_strmap_iter_init(&mit, &q->members);
        while (sb_strmap_iter_next(&mit, NULL, &mv)) {
            const mmember *mb = mv;
            if (mb->agent && strcmp(mb->agent, a->ext) == 0) {
                json_t *j = member_json(mb, q->name);
                if (j)
                    json_object_set_new(j, "waiting",
                                        json_integer((json_int_t)sb_strmap_count(&q->callers)));
                json_array_append_new(queues, j);
            }
        }
    }
    sb_strmap_iter_init(&it, &p->hints);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        const mhint *h = v;
        if (h->exten && strcmp(h->exten, a->ext) == 0) {
            json_decref(ext_status);
            ext_status = hint_json(h);
            break;
        }
    }
    sb_strmap_iter_init(&it, &p->channels);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        const mchan *c = v;
        if (c->agent && strcmp(c->agent, a->ext) == 0 && c->call) {
            bool dup = false;
            for (size_t i = 0; i < json_array_size(calls); i++)
                if (strcmp(json_string_value(json_array_get(calls, i)), c->call->id) == 0)
                    dup = true;
            if (!dup)
                json_array_append_new(calls, json_string(c->call->id));
        }
    }
    o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:O?}", "extension", a->ext, "pbx", p->name,
                  "extensionStatus", ext_status, "queues", queues, "phoneNumber",
                  a->has_remote ? json_pack("{s:s?, s:s?, s:s?}", "number", a->remote_num, "name",
                                            a->remote_name, "callId", a->remote_call)
                                : json_null(),
                  "calls", calls, "lastCall", a->last_call);
    return o;
}

/* OriginateResponse: Reason is the last control frame seen on the dialled channel
 * (protocol-facts.md §1.9), not a hangup cause. */
static const char *originate_reason(long code)
{
    switch (code) {
    case 0:
        return "failed: the channel could not be created or reached";
    case 1:
        return "hung up or rejected by the far end";
    case 3:
        return "no answer: rang until the timeout";
    case 4:
        return "answered";
    case 5:
        return "busy";
    case 8:
        return "congestion";
    default:
        return "failed: unknown reason";
    }
}

void agent_handle_originate(model *m, model_pbx *p, const ami_packet *ev)
{
    sb_slice aid = ami_packet_value(ev, "ActionID");
    char *agent = NULL;
    const char *target;
    long code;
    if (!ami_packet_is(ev, "Response", "Failure")) {
        if (aid.len)
            free(sb_strmap_del(&p->originates, aid)); /* the ring slot frees its key later */
        return;
    }
    target = aid.len ? sb_strmap_get(&p->originates, aid) : NULL;
    if (target) {
        agent = strdup(target);
    } else {
        /* Not registered: the agent whose device was dialled (PJSIP/1003), if any. */
        sb_slice ch = ami_packet_value(ev, "Channel");
        char *dev = mdup(ch);
        magent *a = agent_of_device(p, dev);
        if (a) {
            agent = strdup(a->ext);
        } else if (ch.len && !(ch.len > 6 && strncasecmp(ch.ptr, "Local/", 6) == 0)) {
            /* PJSIP/1003 names a phone; Local/999@ctx names dialplan, not a person. */
            char *ext = agent_ext_from_interface(ch);
            bool digits = ext && *ext;
            for (const char *s = ext; s && *s; s++)
                if (!isdigit((unsigned char)*s))
                    digits = false;
            if (digits)
                agent = ext;
            else
                free(ext);
        }
        free(dev);
    }
    code = mget_long(ev, "Reason", -1);
    char *ch = mdup(ami_packet_value(ev, "Channel"));
    char *ctx = mdup(ami_packet_value(ev, "Context"));
    char *exten = mdup(ami_packet_value(ev, "Exten"));
    char *app = mdup(ami_packet_value(ev, "Application"));
    char *data = mdup(ami_packet_value(ev, "Data"));
    char *id = mdup(aid);
    mev_emit(m, p, "originateFailed", agent, NULL,
             json_pack("{s:s?, s:s, s:I, s:s?, s:s?, s:s?, s:s?, s:s?}", "actionId", id, "reason",
                       originate_reason(code), "reasonCode", (json_int_t)code, "channel", ch,
                       "context", ctx, "exten", exten, "application", app, "data", data));
    if (aid.len)
        free(sb_strmap_del(&p->originates, aid));
    free(agent);
    free(ch);
    free(ctx);
    free(exten);
    free(app);
    free(data);
    free(id);
}
