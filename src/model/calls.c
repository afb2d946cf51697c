/* calls.c: calls by Linkedid (every leg of a call shares it), their progress and their summary.
 *
 * A call starts with its first channel and ends when its last channel hangs up; then call.ended
 * carries the summary and the call leaves the model. Progress only moves forward and each step
 * is announced once: call.started, call.ringing (first dial or a channel ringing), call.answered
 * (first channel up), call.bridged (two parties joined; again only when the parties change).
 * docs/events.md explains how from, to, direction and disposition are inferred.
 */
#include "model/internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const step_names[] = {"started", "ringing", "answered", "bridged"};

static const char *direction(const mcall *call)
{
    if (call->master_is_trunk)
        return "inbound";
    if (call->has_trunk_leg)
        return "outbound";
    return "internal";
}

/* The number a dial string aims at: "Local/501@agents/n" -> 501, "PJSIP/1001" -> 1001,
 * "100@from-internal" -> 100, "PJSIP/34600111222@carrier" -> 34600111222. */
static char *dial_target(sb_slice ds)
{
    const char *p = ds.ptr, *end = ds.ptr + ds.len;
    const char *slash = memchr(p, '/', ds.len);
    if (slash)
        p = slash + 1;
    const char *q = p;
    while (q < end && *q != '@' && *q != '/' && *q != '&' && *q != ',')
        q++;
    return mdup((sb_slice){p, (size_t)(q - p)});
}

static void add_agent(mcall *call, const char *agent)
{
    if (!agent || call->agent)
        return;
    call->agent = strdup(agent);
}

void call_free(mcall *call)
{
    if (!call)
        return;
    free(call->id);
    free(call->from);
    free(call->from_name);
    free(call->to);
    free(call->queue);
    free(call->agent);
    free(call->recording);
    free(call->cdr_disposition);
    free(call->bridged_key);
    free(call->cause_text);
    for (size_t i = 0; i < call->nagents_seen; i++)
        free(call->agents_seen[i]);
    free(call);
}

void call_note_agent(mcall *call, const char *agent)
{
    if (!agent || call->nagents_seen == sizeof call->agents_seen / sizeof call->agents_seen[0])
        return;
    for (size_t i = 0; i < call->nagents_seen; i++)
        if (strcmp(call->agents_seen[i], agent) == 0)
            return;
    char *a = strdup(agent);
    if (a)
        call->agents_seen[call->nagents_seen++] = a;
}

static size_t add_unique(const char **out, size_t n, size_t max, const char *agent)
{
    if (!agent || n >= max)
        return n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(out[i], agent) == 0)
            return n;
    out[n] = agent;
    return n + 1;
}

/* Agents to target with a call event: the call's agent and every agent that had a channel in
 * it (a ring-all loser too: it saw the call ring). */
static size_t call_agents(const mcall *call, const char **out, size_t max)
{
    size_t n = add_unique(out, 0, max, call->agent);
    for (size_t i = 0; i < call->nagents_seen; i++)
        n = add_unique(out, n, max, call->agents_seen[i]);
    for (const mchan *c = call->chans; c; c = c->call_next)
        n = add_unique(out, n, max, c->agent);
    return n;
}

json_t *call_json(const mcall *call, bool with_channels)
{
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:o, s:o, s:s?, s:s?, s:s?}", "callId",
                          call->id, "state", step_names[call->step], "from", call->from, "fromName",
                          call->from_name, "to", call->to, "direction", direction(call), "start",
                          mev_time_json(call->start_ms), "answer", mev_time_json(call->answer_ms),
                          "queue", call->queue, "agent", call->agent, "recording", call->recording);
    if (o && call->restored)
        json_object_set_new(o, "restored", json_true());
    if (o && with_channels) {
        json_t *a = json_array();
        for (const mchan *c = call->chans; c; c = c->call_next)
            json_array_append_new(a, chan_json(c));
        json_object_set_new(o, "channels", a);
    }
    return o;
}

static const char *disposition(const mcall *call)
{
    if (call->answer_ms)
        return "ANSWERED";
    if (call->cdr_disposition)
        return call->cdr_disposition;
    if (call->busy)
        return "BUSY";
    if (call->dialed || call->step >= CALL_RINGING)
        return "NO ANSWER";
    return "FAILED";
}

json_t *call_summary_json(model *m, const mcall *call, int64_t end_ms)
{
    (void)m;
    long long duration = call->start_ms ? (end_ms - call->start_ms) / 1000 : 0;
    long long billable = call->answer_ms ? (end_ms - call->answer_ms) / 1000 : 0;
    json_t *o = json_pack(
        "{s:s, s:s?, s:s?, s:s?, s:s, s:o, s:o, s:o, s:I, s:I, s:s, s:s?, s:s?, s:o, s:o, s:I, "
        "s:s?, s:b, s:b}",
        "callId", call->id, "from", call->from, "fromName", call->from_name, "to", call->to,
        "direction", direction(call), "start", mev_time_json(call->start_ms), "answer",
        mev_time_json(call->answer_ms), "end", mev_time_json(end_ms), "duration",
        (json_int_t)(duration < 0 ? 0 : duration), "billableSeconds",
        (json_int_t)(billable < 0 ? 0 : billable), "disposition", disposition(call), "queue",
        call->queue, "agent", call->agent, "holdTime",
        call->hold_time >= 0 ? json_integer(call->hold_time) : json_null(), "talkTime",
        call->talk_time >= 0 ? json_integer(call->talk_time) : json_null(), "onHoldTime",
        (json_int_t)(call->on_hold_ms / 1000), "recording", call->recording, "abandoned",
        call->abandoned, "transferred", call->transferred);
    if (o) {
        json_object_set_new(o, "hangupCause",
                            call->cause >= 0 ? json_integer(call->cause) : json_null());
        json_object_set_new(o, "hangupCauseText",
                            call->cause_text ? json_string(call->cause_text) : json_null());
    }
    if (o && call->restored)
        json_object_set_new(o, "restored", json_true());
    if (o && call->lost)
        json_object_set_new(o, "endedWhileDisconnected", json_true());
    return o;
}

void call_emit(model *m, model_pbx *p, mcall *call, const char *type, json_t *extra)
{
    const char *agents[16];
    size_t n = call_agents(call, agents, 16);
    json_t *d = call_json(call, false);
    if (d && extra)
        json_object_update(d, extra);
    json_decref(extra);
    mev_emit_multi(m, p, type, NULL, call->queue, agents, n, d);
}

mcall *call_attach(model *m, model_pbx *p, mchan *c)
{
    mcall *call = sb_strmap_get(&p->calls, sb_slice_cstr(c->linkedid));
    bool is_master = strcmp(c->uniqueid, c->linkedid) == 0;
    bool created = false;
    if (!call) {
        call = calloc(1, sizeof *call);
        if (!call)
            return NULL;
        call->id = strdup(c->linkedid);
        call->hold_time = call->talk_time = call->cause = -1;
        call->start_ms = c->created_ms;
        call->restored = p->resyncing;
        if (!call->id || sb_strmap_put(&p->calls, sb_slice_cstr(call->id), call) < 0) {
            call_free(call);
            return NULL;
        }
        created = true;
    }
    c->call = call;
    call_note_agent(call, c->agent);
    c->call_next = call->chans;
    call->chans = c;
    call->nchans++;
    if (c->is_trunk)
        call->has_trunk_leg = true;
    if (is_master || created) {
        /* The first channel (Uniqueid == Linkedid) says who calls whom. */
        call->master_is_trunk = c->is_trunk;
        mset_str(&call->from, c->cid_num);
        mset_str(&call->from_name, c->cid_name);
        if (c->exten && strcmp(c->exten, "s") != 0)
            mset_str(&call->to, c->exten);
        if (c->created_ms && (!call->start_ms || c->created_ms < call->start_ms))
            call->start_ms = c->created_ms;
    }
    if (created && p->resyncing) {
        /* Found by a resync: call.started alone tells how far it got meanwhile. */
        if (c->state == CH_UP) {
            call->step = CALL_ANSWERED;
            call->answer_ms = c->answered_ms;
        } else if (c->state == CH_RINGING) {
            call->step = CALL_RINGING;
        }
    }
    if (created)
        call_emit(m, p, call, "call.started", NULL);
    return call;
}

void call_on_state(model *m, model_pbx *p, mchan *c)
{
    mcall *call = c->call;
    if (!call)
        return;
    if (strcmp(c->uniqueid, c->linkedid) == 0 && call->step < CALL_ANSWERED) {
        /* An Originate sets the caller id after Newchannel (NewCallerid). */
        mset_str(&call->from, c->cid_num);
        mset_str(&call->from_name, c->cid_name);
    }
    if (c->state == CH_UP && !c->answered_ms)
        c->answered_ms = m->ev_time;
    if (c->state == CH_BUSY)
        call->busy = true;
    if (c->state == CH_RINGING && call->step < CALL_RINGING) {
        call->step = CALL_RINGING;
        call_emit(m, p, call, "call.ringing",
                  json_pack("{s:s, s:s?}", "ringing", c->name, "ringingAgent", c->agent));
    }
    if (c->state == CH_UP && call->step < CALL_ANSWERED) {
        call->step = CALL_ANSWERED;
        call->answer_ms = c->answered_ms;
        call_emit(m, p, call, "call.answered",
                  json_pack("{s:s, s:s?}", "answeredBy", c->name, "answeredAgent", c->agent));
    }
}

void call_on_dial(model *m, model_pbx *p, mcall *call, mchan *dest, sb_slice dialstring)
{
    call->dialed = true;
    if (!call->to && dialstring.len) {
        free(call->to);
        call->to = dial_target(dialstring);
    }
    if (call->step < CALL_RINGING) {
        char *ds = mdup(dialstring);
        call->step = CALL_RINGING;
        call_emit(m, p, call, "call.ringing",
                  json_pack("{s:s?, s:s?, s:s?}", "ringing", dest ? dest->name : NULL,
                            "ringingAgent", dest ? dest->agent : NULL, "dialString", ds));
        free(ds);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void call_on_bridge(model *m, model_pbx *p, mbridge *b)
{
    const char *uids[32];
    size_t n = b->n < 32 ? b->n : 32;
    size_t klen = 1;
    char *key;
    if (b->n < 2)
        return;
    for (size_t i = 0; i < n; i++) {
        uids[i] = b->chans[i]->uniqueid;
        klen += strlen(uids[i]) + 1;
    }
    qsort(uids, n, sizeof uids[0], cmp_str);
    key = malloc(klen);
    if (!key)
        return;
    key[0] = '\0';
    for (size_t i = 0, off = 0; i < n; i++) {
        size_t l = strlen(uids[i]);
        memcpy(key + off, uids[i], l);
        off += l;
        key[off++] = i + 1 < n ? ',' : '\0';
    }
    /* Agents in the bridge now talk to the other party: phoneNumber. */
    for (size_t i = 0; i < b->n; i++) {
        mchan *c = b->chans[i];
        magent *a = c->agent ? agent_get(p, c->agent, false) : NULL;
        const char *num = c->conn_num, *name = c->conn_name;
        if (!a || !c->call)
            continue;
        add_agent(c->call, c->agent);
        if (!num) {
            for (size_t j = 0; j < b->n; j++)
                if (b->chans[j] != c && b->chans[j]->cid_num) {
                    num = b->chans[j]->cid_num;
                    name = b->chans[j]->cid_name;
                    break;
                }
        }
        if (num)
            agent_set_remote(m, p, a, num, name, c->call->id, c->call->queue);
    }
    for (size_t i = 0; i < b->n; i++) {
        mcall *call = b->chans[i]->call;
        bool done = false;
        if (!call)
            continue;
        for (size_t j = 0; j < i; j++)
            if (b->chans[j]->call == call)
                done = true; /* several legs of one call in the bridge: once */
        if (done || (call->bridged_key && strcmp(call->bridged_key, key) == 0))
            continue;
        mset_str(&call->bridged_key, key);
        if (call->step < CALL_BRIDGED)
            call->step = CALL_BRIDGED;
        json_t *parties = json_array();
        for (size_t j = 0; j < b->n; j++) {
            const mchan *c = b->chans[j];
            json_array_append_new(parties, json_pack("{s:s, s:s?, s:s?, s:s?}", "channel", c->name,
                                                     "callerIdNum", c->cid_num, "callerIdName",
                                                     c->cid_name, "agent", c->agent));
        }
        call_emit(m, p, call, "call.bridged",
                  json_pack("{s:s, s:o}", "bridgeId", b->id, "parties", parties));
    }
    free(key);
}

void call_transferred(model *m, model_pbx *p, mcall *call, json_t *details)
{
    call->transferred = true;
    call_emit(m, p, call, "call.transferred", details);
}

void call_detach(model *m, model_pbx *p, mchan *c)
{
    mcall *call = c->call;
    bool agent_still_in = false;
    if (!call)
        return;
    for (mchan **pc = &call->chans; *pc; pc = &(*pc)->call_next) {
        if (*pc == c) {
            *pc = c->call_next;
            break;
        }
    }
    call->nchans--;
    c->call = NULL;
    if (c->hold_start_ms) {
        call->on_hold_ms += m->ev_time - c->hold_start_ms;
        c->hold_start_ms = 0;
    }
    if (c->agent) {
        for (mchan *o = call->chans; o; o = o->call_next)
            if (o->agent && strcmp(o->agent, c->agent) == 0)
                agent_still_in = true;
        if (!agent_still_in) {
            magent *a = agent_get(p, c->agent, false);
            if (a)
                agent_clear_remote(m, p, a, call->id);
        }
    }
    if (call->nchans > 0)
        return;
    /* Last channel gone: the call ends and leaves the model. */
    const char *agents[16];
    size_t n = call_agents(call, agents, 16);
    json_t *summary = call_summary_json(m, call, m->ev_time);
    if (call->agent) {
        magent *a = agent_get(p, call->agent, false);
        if (a)
            agent_clear_remote(m, p, a, call->id);
        if (a && summary)
            agent_call_completed(a, json_deep_copy(summary));
    }
    mev_emit_multi(m, p, "call.ended", NULL, call->queue, agents, n, summary);
    sb_strmap_del(&p->calls, sb_slice_cstr(call->id));
    call_free(call);
}
