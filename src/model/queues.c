/* queues.c: app_queue state — queues, their waiting callers and their members — and the agent
 * events it produces: queueMemberStatus (a member's status, pause, reason, penalty or membership
 * changed), queueCount (the number of waiting callers changed), phoneNumber at AgentConnect and
 * agentComplete. The list events of QueueStatus (QueueParams, QueueMember, QueueEntry) update
 * the same state, so a resync announces only real differences.
 *
 * QueueMember list items name the member "Name"/"Location" where the live events say
 * "MemberName"/"Interface" (fixture 09); both are accepted.
 */
#include "model/internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const member_status[] = {"unknown", "notInUse",  "inUse",
                                            "busy",    "invalid",   "unavailable",
                                            "ringing", "ringInUse", "onHold"};

static const char *status_word(int st)
{
    return (st >= 0 && st <= 8) ? member_status[st] : "unknown";
}

static void member_free(mmember *mb)
{
    if (!mb)
        return;
    free(mb->interface);
    free(mb->name);
    free(mb->state_interface);
    free(mb->membership);
    free(mb->agent);
    free(mb->reason);
    free(mb);
}

static void caller_free(mcaller *c)
{
    if (!c)
        return;
    free(c->uniqueid);
    free(c->channel);
    free(c->cid_num);
    free(c->cid_name);
    free(c);
}

void queue_free(mqueue *q)
{
    sb_strmap_iter it;
    void *v;
    if (!q)
        return;
    sb_strmap_iter_init(&it, &q->members);
    while (sb_strmap_iter_next(&it, NULL, &v))
        member_free(v);
    sb_strmap_free(&q->members);
    sb_strmap_iter_init(&it, &q->callers);
    while (sb_strmap_iter_next(&it, NULL, &v))
        caller_free(v);
    sb_strmap_free(&q->callers);
    free(q->name);
    free(q->strategy);
    free(q);
}

static mqueue *queue_get(model_pbx *p, sb_slice name, bool create)
{
    mqueue *q = sb_strmap_get(&p->queues, name);
    if (q || !create || name.len == 0)
        return q;
    q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->name = mdup(name);
    sb_strmap_init(&q->members);
    sb_strmap_init(&q->callers);
    if (!q->name || sb_strmap_put(&p->queues, name, q) < 0) {
        queue_free(q);
        return NULL;
    }
    return q;
}

const char **queue_member_agents(const mqueue *q, size_t *n)
{
    sb_strmap_iter it;
    void *v;
    const char **out = calloc(sb_strmap_count(&q->members) + 1, sizeof *out);
    *n = 0;
    if (!out)
        return NULL;
    sb_strmap_iter_init(&it, &q->members);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        const mmember *mb = v;
        if (mb->agent)
            out[(*n)++] = mb->agent;
    }
    return out;
}

json_t *member_json(const mmember *mb, const char *queue)
{
    return json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:i, s:b, s:s?, s:i, s:I, s:b, s:b, s:s?, s:I}",
                     "queue", queue, "interface", mb->interface, "memberName", mb->name, "agent",
                     mb->agent, "status", status_word(mb->status), "statusCode", mb->status,
                     "paused", mb->paused, "pausedReason", mstr_or_null(mb->reason), "penalty",
                     mb->penalty, "callsTaken", (json_int_t)mb->calls_taken, "inCall", mb->in_call,
                     "loggedIn", true, "membership", mb->membership, "lastCall",
                     (json_int_t)mb->last_call);
}

json_t *queue_json(const mqueue *q, bool with_members)
{
    sb_strmap_iter it;
    void *v;
    json_t *callers = json_array();
    json_t *o;
    int64_t oldest = 0;
    sb_strmap_iter_init(&it, &q->callers);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        const mcaller *c = v;
        if (c->joined_ms && (!oldest || c->joined_ms < oldest))
            oldest = c->joined_ms;
        json_array_append_new(callers,
                              json_pack("{s:s, s:s?, s:s?, s:s?, s:i, s:o}", "uniqueId",
                                        c->uniqueid, "channel", c->channel, "callerIdNum",
                                        c->cid_num, "callerIdName", c->cid_name, "position",
                                        c->position, "joined", mev_time_json(c->joined_ms)));
    }
    o = json_pack("{s:s, s:s?, s:I, s:o, s:o, s:I, s:I, s:I, s:I}", "name", q->name, "strategy",
                  q->strategy, "waiting", (json_int_t)sb_strmap_count(&q->callers), "callers",
                  callers, "longestWaitSince", mev_time_json(oldest), "completed",
                  (json_int_t)q->completed, "abandoned", (json_int_t)q->abandoned, "holdTime",
                  (json_int_t)q->holdtime, "talkTime", (json_int_t)q->talktime);
    if (o && with_members) {
        json_t *members = json_array();
        sb_strmap_iter_init(&it, &q->members);
        while (sb_strmap_iter_next(&it, NULL, &v))
            json_array_append_new(members, member_json(v, q->name));
        json_object_set_new(o, "members", members);
    }
    return o;
}

void queue_announce_count(model *m, model_pbx *p, mqueue *q)
{
    long count = (long)sb_strmap_count(&q->callers);
    size_t n = 0;
    const char **agents;
    /* During a resync the count is told once, at the end, so that a caller who left and
     * one who joined meanwhile do not produce a transient count. */
    if (count == q->announced_count || p->resyncing)
        return;
    q->announced_count = count;
    agents = queue_member_agents(q, &n);
    mev_emit_multi(m, p, "queueCount", NULL, q->name, agents, n,
                   json_pack("{s:s, s:i}", "queue", q->name, "count", (int)count));
    free(agents);
}

void queue_caller_remove(model_pbx *p, mqueue *q, mcaller *c)
{
    (void)p;
    sb_strmap_del(&q->callers, sb_slice_cstr(c->uniqueid));
    caller_free(c);
}

static void member_announce(model *m, model_pbx *p, mqueue *q, mmember *mb, bool logged_in)
{
    json_t *d = member_json(mb, q->name);
    if (d && !logged_in)
        json_object_set_new(d, "loggedIn", json_false());
    mb->announced = true;
    mev_emit(m, p, "queueMemberStatus", mb->agent, q->name, d);
}

void queue_member_remove(model *m, model_pbx *p, mqueue *q, mmember *mb)
{
    sb_strmap_del(&q->members, sb_slice_cstr(mb->interface));
    member_announce(m, p, q, mb, false);
    member_free(mb);
}

/* QueueMemberStatus/Added/Pause/Penalty/Ringinuse and QueueMember list items. */
static void member_upsert(model *m, model_pbx *p, const ami_packet *ev)
{
    const sb_slice *iface = ami_packet_get(ev, "Interface");
    const sb_slice *name = ami_packet_get(ev, "MemberName");
    mqueue *q = queue_get(p, ami_packet_value(ev, "Queue"), true);
    mmember *mb;
    bool changed = false;
    if (!iface)
        iface = ami_packet_get(ev, "Location");
    if (!name)
        name = ami_packet_get(ev, "Name");
    if (!q || !iface || iface->len == 0)
        return;
    mb = sb_strmap_get(&q->members, *iface);
    if (!mb) {
        mb = calloc(1, sizeof *mb);
        if (!mb)
            return;
        mb->interface = mdup(*iface);
        mb->agent = agent_ext_from_interface(*iface);
        if (!mb->interface || sb_strmap_put(&q->members, *iface, mb) < 0) {
            member_free(mb);
            return;
        }
        changed = true;
    }
    mb->seen = true;
    if (name)
        mset(&mb->name, *name);
    mset(&mb->state_interface, ami_packet_value(ev, "StateInterface"));
    mset(&mb->membership, ami_packet_value(ev, "Membership"));
    if (mb->agent) {
        magent *a = agent_get(p, mb->agent, true);
        if (a) {
            sb_slice dev = *iface;
            if (dev.len > 2 && dev.ptr[dev.len - 2] == '/' && dev.ptr[dev.len - 1] == 'n')
                dev.len -= 2; /* Local/501@agents/n: the device is Local/501@agents */
            agent_map_device(p, dev, a);
            if (mb->state_interface)
                agent_map_device(p, sb_slice_cstr(mb->state_interface), a);
        }
    }
    int status = (int)mget_long(ev, "Status", mb->status);
    int penalty = (int)mget_long(ev, "Penalty", mb->penalty);
    bool paused = mget_long(ev, "Paused", mb->paused) != 0;
    bool in_call = mget_long(ev, "InCall", mb->in_call) != 0;
    changed |= status != mb->status || penalty != mb->penalty || paused != mb->paused ||
               in_call != mb->in_call;
    const sb_slice *reason = ami_packet_get(ev, "PausedReason");
    if (!reason)
        reason = ami_packet_get(ev, "Reason");
    if (reason)
        changed |= mset(&mb->reason, *reason);
    mb->status = status;
    mb->penalty = penalty;
    mb->paused = paused;
    mb->in_call = in_call;
    mb->calls_taken = mget_long(ev, "CallsTaken", mb->calls_taken);
    mb->last_call = mget_long(ev, "LastCall", (long)mb->last_call);
    if (changed || !mb->announced)
        member_announce(m, p, q, mb, true);
}

static void on_caller_join(model *m, model_pbx *p, const ami_packet *ev, bool list_item)
{
    mqueue *q = queue_get(p, ami_packet_value(ev, "Queue"), true);
    sb_slice uid = ami_packet_value(ev, "Uniqueid");
    mcaller *c;
    mchan *ch = sb_strmap_get(&p->channels, uid);
    if (!q || uid.len == 0)
        return;
    c = sb_strmap_get(&q->callers, uid);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return;
        c->uniqueid = mdup(uid);
        c->joined_ms = m->ev_time;
        if (list_item)
            c->joined_ms -= mget_long(ev, "Wait", 0) * 1000L;
        if (!c->uniqueid || sb_strmap_put(&q->callers, uid, c) < 0) {
            caller_free(c);
            return;
        }
    }
    c->seen = true;
    mset(&c->channel, ami_packet_value(ev, "Channel"));
    mset_cid(&c->cid_num, ami_packet_value(ev, "CallerIDNum"));
    mset_cid(&c->cid_name, ami_packet_value(ev, "CallerIDName"));
    c->position = (int)mget_long(ev, "Position", c->position);
    if (ch && ch->call)
        mset_str(&ch->call->queue, q->name);
    queue_announce_count(m, p, q);
}

static mcall *call_of(model_pbx *p, const ami_packet *ev)
{
    mcall *call = sb_strmap_get(&p->calls, ami_packet_value(ev, "Linkedid"));
    if (!call) {
        mchan *c = sb_strmap_get(&p->channels, ami_packet_value(ev, "Uniqueid"));
        call = c ? c->call : NULL;
    }
    return call;
}

/* AgentCalled/AgentConnect name the member's interface and its channel (Dest*): from then on
 * that device and channel are the agent's, even before any QueueMemberStatus told us. */
static void learn_member_channel(model_pbx *p, const ami_packet *ev, magent *a)
{
    sb_slice iface = ami_packet_value(ev, "Interface");
    mchan *c = sb_strmap_get(&p->channels, ami_packet_value(ev, "DestUniqueid"));
    if (!a)
        return;
    if (iface.len > 2 && iface.ptr[iface.len - 2] == '/' && iface.ptr[iface.len - 1] == 'n')
        iface.len -= 2;
    agent_map_device(p, iface, a);
    if (c && !c->agent)
        c->agent = strdup(a->ext);
    if (c && c->call)
        call_note_agent(c->call, a->ext);
    /* The other half of a Local pair (;2) belongs to the agent too. */
    if (c && c->device && c->call) {
        for (mchan *o = c->call->chans; o; o = o->call_next)
            if (o != c && !o->agent && o->device && strcmp(o->device, c->device) == 0)
                o->agent = strdup(a->ext);
    }
}

static void on_agent_called(model *m, model_pbx *p, const ami_packet *ev)
{
    char *ext = agent_ext_from_interface(ami_packet_value(ev, "Interface"));
    (void)m;
    learn_member_channel(p, ev, ext ? agent_get(p, ext, true) : NULL);
    free(ext);
}

static void on_agent_connect(model *m, model_pbx *p, const ami_packet *ev)
{
    mcall *call = call_of(p, ev);
    char *ext = agent_ext_from_interface(ami_packet_value(ev, "Interface"));
    char *num = mdup_cid(ami_packet_value(ev, "CallerIDNum"));
    char *name = mdup_cid(ami_packet_value(ev, "CallerIDName"));
    char *queue = mdup(ami_packet_value(ev, "Queue"));
    magent *a = ext ? agent_get(p, ext, true) : NULL;
    learn_member_channel(p, ev, a);
    if (call) {
        if (ext && !call->agent)
            mset_str(&call->agent, ext);
        if (queue)
            mset_str(&call->queue, queue);
        call->hold_time = mget_long(ev, "HoldTime", call->hold_time);
    }
    if (a && num)
        agent_set_remote(m, p, a, num, name, call ? call->id : NULL, queue);
    free(ext);
    free(num);
    free(name);
    free(queue);
}

static void on_agent_complete(model *m, model_pbx *p, const ami_packet *ev)
{
    mcall *call = call_of(p, ev);
    char *ext = agent_ext_from_interface(ami_packet_value(ev, "Interface"));
    mchan *caller = sb_strmap_get(&p->channels, ami_packet_value(ev, "Uniqueid"));
    mchan *member = sb_strmap_get(&p->channels, ami_packet_value(ev, "DestUniqueid"));
    const char *rec = caller && caller->recording   ? caller->recording
                      : member && member->recording ? member->recording
                      : call                        ? call->recording
                                                    : NULL;
    long hold = mget_long(ev, "HoldTime", -1), talk = mget_long(ev, "TalkTime", -1);
    char *queue = mdup(ami_packet_value(ev, "Queue"));
    char *uid = mdup(ami_packet_value(ev, "Uniqueid"));
    char *lid = mdup(ami_packet_value(ev, "Linkedid"));
    char *mname = mdup(ami_packet_value(ev, "MemberName"));
    char *iface = mdup(ami_packet_value(ev, "Interface"));
    char *reason = mdup(ami_packet_value(ev, "Reason"));
    char *num = mdup_cid(ami_packet_value(ev, "CallerIDNum"));
    if (call) {
        if (talk >= 0)
            call->talk_time = talk;
        if (hold >= 0)
            call->hold_time = hold;
    }
    if (ext)
        agent_get(p, ext, true);
    mev_emit(m, p, "agentComplete", ext, queue,
             json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:o, s:o, s:s?, s:s?}", "queue", queue,
                       "uniqueId", uid, "callId", lid, "memberName", mname, "interface", iface,
                       "callerIdNum", num, "holdTime", hold >= 0 ? json_integer(hold) : json_null(),
                       "talkTime", talk >= 0 ? json_integer(talk) : json_null(), "reason", reason,
                       "recording", rec));
    free(ext);
    free(queue);
    free(uid);
    free(lid);
    free(mname);
    free(iface);
    free(reason);
    free(num);
}

void queue_handle(model *m, model_pbx *p, const ami_packet *ev, sb_slice name)
{
    if (sb_slice_eq_ci(name, "QueueCallerJoin")) {
        on_caller_join(m, p, ev, false);
    } else if (sb_slice_eq_ci(name, "QueueEntry")) {
        on_caller_join(m, p, ev, true);
    } else if (sb_slice_eq_ci(name, "QueueCallerLeave")) {
        mqueue *q = queue_get(p, ami_packet_value(ev, "Queue"), false);
        mcaller *c = q ? sb_strmap_get(&q->callers, ami_packet_value(ev, "Uniqueid")) : NULL;
        if (c)
            queue_caller_remove(p, q, c);
        if (q)
            queue_announce_count(m, p, q);
    } else if (sb_slice_eq_ci(name, "QueueCallerAbandon")) {
        mcall *call = call_of(p, ev);
        mqueue *q = queue_get(p, ami_packet_value(ev, "Queue"), false);
        if (q)
            q->abandoned++;
        if (call) {
            call->abandoned = true;
            call->hold_time = mget_long(ev, "HoldTime", call->hold_time);
        }
    } else if (sb_slice_eq_ci(name, "AgentCalled")) {
        on_agent_called(m, p, ev);
    } else if (sb_slice_eq_ci(name, "AgentConnect")) {
        on_agent_connect(m, p, ev);
    } else if (sb_slice_eq_ci(name, "AgentComplete")) {
        on_agent_complete(m, p, ev);
    } else if (sb_slice_eq_ci(name, "QueueMemberRemoved")) {
        mqueue *q = queue_get(p, ami_packet_value(ev, "Queue"), false);
        mmember *mb = q ? sb_strmap_get(&q->members, ami_packet_value(ev, "Interface")) : NULL;
        if (mb)
            queue_member_remove(m, p, q, mb);
    } else if (sb_slice_eq_ci(name, "QueueMember") || sb_slice_eq_ci(name, "QueueMemberStatus") ||
               sb_slice_eq_ci(name, "QueueMemberAdded") ||
               sb_slice_eq_ci(name, "QueueMemberPause") ||
               sb_slice_eq_ci(name, "QueueMemberPaused") ||
               sb_slice_eq_ci(name, "QueueMemberPenalty") ||
               sb_slice_eq_ci(name, "QueueMemberRinginuse")) {
        member_upsert(m, p, ev);
    } else if (sb_slice_eq_ci(name, "QueueParams")) {
        mqueue *q = queue_get(p, ami_packet_value(ev, "Queue"), true);
        if (!q)
            return;
        q->seen = true;
        mset(&q->strategy, ami_packet_value(ev, "Strategy"));
        q->max = mget_long(ev, "Max", q->max);
        q->completed = mget_long(ev, "Completed", q->completed);
        q->abandoned = mget_long(ev, "Abandoned", q->abandoned);
        q->holdtime = mget_long(ev, "Holdtime", q->holdtime);
        q->talktime = mget_long(ev, "TalkTime", q->talktime);
    }
}
