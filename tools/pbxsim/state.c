/* state.c: what the simulated Asterisk knows — channels, queues and members, device states,
 * hints — kept as a projection of the events the simulator emits. Newchannel adds a channel,
 * Newstate/Newexten/NewCallerid/NewConnectedLine update it, Hangup removes it; QueueMember*,
 * QueueCaller*, AgentComplete update queues; DeviceStateChange and ExtensionStatus update
 * devices and hints. The list actions answer from here, so lists always agree with the events.
 *
 * The initial configuration is the one the fixtures were recorded with (fixtures README).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_member(sim_queue *q, const char *name, const char *iface, int ringinuse,
                       long long login)
{
    sim_member *m = &q->members[q->nmembers++];
    memset(m, 0, sizeof *m);
    sim_copy(m->name, sizeof m->name, name);
    sim_copy(m->iface, sizeof m->iface, iface);
    /* StateInterface of Local/501@agents/n is Local/501@agents */
    sim_copy(m->state_iface, sizeof m->state_iface, iface);
    char *slash = strrchr(m->state_iface, '/');
    if (slash && strcmp(slash, "/n") == 0)
        *slash = '\0';
    m->status = 1;
    m->ringinuse = ringinuse;
    m->login_time = login;
}

void sim_state_init(sim_state *st, time_t now)
{
    memset(st, 0, sizeof *st);
    /* queues.conf of the recordings; listed newest-first like app_queue's container */
    sim_queue *sales = &st->queues[st->nqueues++];
    snprintf(sales->name, sizeof sales->name, "sales");
    snprintf(sales->strategy, sizeof sales->strategy, "ringall");
    add_member(sales, "Agent Ann", "Local/501@agents/n", 0, (long long)now);
    add_member(sales, "Agent Ben", "Local/502@agents/n", 0, (long long)now);
    sim_queue *support = &st->queues[st->nqueues++];
    snprintf(support->name, sizeof support->name, "support");
    snprintf(support->strategy, sizeof support->strategy, "rrmemory");
    add_member(support, "Agent Cid", "Local/503@agents/n", 1, (long long)now);
    /* DeviceStateList of fixture 10 (before any phone registered) */
    static const char *const devs[][2] = {
        {"Queue:sales_pause_Local/502@agents/n", "NOT_INUSE"},
        {"PJSIP/carrier", "NOT_INUSE"},
        {"Queue:sales", "NOT_INUSE"},
        {"Queue:support_avail", "NOT_INUSE"},
        {"Queue:sales_pause_Local/501@agents/n", "NOT_INUSE"},
        {"Queue:support", "NOT_INUSE"},
        {"Queue:support_pause_Local/503@agents/n", "NOT_INUSE"},
        {"PJSIP/1001", "UNAVAILABLE"},
        {"PJSIP/1002", "UNAVAILABLE"},
        {"PJSIP/1003", "UNAVAILABLE"},
        {"Queue:sales_avail", "NOT_INUSE"},
    };
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
        sim_device *d = &st->devices[st->ndevices++];
        sim_copy(d->name, sizeof d->name, devs[i][0]);
        sim_copy(d->state, sizeof d->state, devs[i][1]);
    }
    for (int i = 0; i < 3; i++) {
        sim_hint *h = &st->hints[st->nhints++];
        snprintf(h->exten, sizeof h->exten, "100%d", i + 1);
        snprintf(h->context, sizeof h->context, "from-internal");
        snprintf(h->device, sizeof h->device, "PJSIP/100%d", i + 1);
        h->status = 4; /* Unavailable */
    }
}

void sim_state_free(sim_state *st)
{
    for (size_t i = 0; i < st->nslots; i++)
        free(st->chans[i]);
    free(st->chans);
    free(st->buckets);
    st->chans = NULL;
    st->buckets = NULL;
    st->nslots = st->capslots = st->nchans = st->nbuckets = 0;
}

static const char *const state_desc[] = {
    "Down",    "Rsrvd", "OffHook", "Dialing",         "Ring",
    "Ringing", "Up",    "Busy",    "Dialing Offhook", "Pre-ring"};

const char *sim_state_desc(int state)
{
    if (state < 0 || state >= (int)(sizeof state_desc / sizeof state_desc[0]))
        return "Unknown";
    return state_desc[state];
}

/* ---- channels: creation-order slots plus a name index ----
 * A load of 1,000 calls/s keeps ~2,000 channels live, and every event looks its channel up: a
 * linear scan made each event O(live channels), so a simulator that fell behind (more calls in
 * flight) got slower per event and never caught up (docs/pbxsim.md, "Load"). */

static uint32_t name_hash(sb_slice name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < name.len; i++) {
        h ^= (unsigned char)name.ptr[i];
        h *= 16777619u;
    }
    return h;
}

sim_channel *sim_state_channel(sim_state *st, sb_slice name)
{
    if (!st->nbuckets)
        return NULL;
    uint32_t h = name_hash(name);
    for (sim_channel *c = st->buckets[h & (st->nbuckets - 1)]; c; c = c->hnext)
        if (c->hash == h && sb_slice_eq(sb_slice_cstr(c->name), name))
            return c;
    return NULL;
}

/* Keeps the index at most one channel per bucket on average. Returns false when out of memory. */
static bool index_grow(sim_state *st)
{
    if (st->nchans + 1 <= st->nbuckets)
        return true;
    size_t n = st->nbuckets ? st->nbuckets * 2 : 256;
    sim_channel **b = calloc(n, sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < st->nslots; i++) {
        sim_channel *c = st->chans[i];
        if (!c)
            continue;
        c->hnext = b[c->hash & (n - 1)];
        b[c->hash & (n - 1)] = c;
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = n;
    return true;
}

/* Closes the holes left by removed channels, keeping the order (amortized O(1) per removal). */
static void slots_compact(sim_state *st)
{
    size_t j = 0;
    for (size_t i = 0; i < st->nslots; i++)
        if (st->chans[i]) {
            st->chans[j] = st->chans[i];
            st->chans[j]->slot = j;
            j++;
        }
    st->nslots = j;
}

/* Adds a zeroed channel named name (not yet present) at the newest slot; NULL when out of
 * memory. */
static sim_channel *channel_new(sim_state *st, sb_slice name)
{
    if (st->nslots == st->capslots) {
        if (st->nslots > 2 * st->nchans + 64) {
            slots_compact(st);
        } else {
            size_t cap = st->capslots ? st->capslots * 2 : 64;
            sim_channel **n = realloc(st->chans, cap * sizeof *n);
            if (!n)
                return NULL;
            st->chans = n;
            st->capslots = cap;
        }
    }
    if (!index_grow(st))
        return NULL;
    sim_channel *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    sb_slice_copy(name, c->name, sizeof c->name);
    c->hash = name_hash(sb_slice_cstr(c->name));
    c->slot = st->nslots;
    st->chans[st->nslots++] = c;
    size_t b = c->hash & (st->nbuckets - 1);
    c->hnext = st->buckets[b];
    st->buckets[b] = c;
    st->nchans++;
    return c;
}

static void channel_remove(sim_state *st, sb_slice name)
{
    sim_channel *c = sim_state_channel(st, name);
    if (!c)
        return;
    for (sim_channel **pp = &st->buckets[c->hash & (st->nbuckets - 1)]; *pp; pp = &(*pp)->hnext)
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    st->chans[c->slot] = NULL;
    st->nchans--;
    free(c);
    /* trailing holes cost nothing to drop; others wait for slots_compact */
    while (st->nslots && !st->chans[st->nslots - 1])
        st->nslots--;
    if (st->nslots > 2 * st->nchans + 64)
        slots_compact(st);
}

sim_queue *sim_state_queue(sim_state *st, sb_slice name)
{
    for (int i = 0; i < st->nqueues; i++)
        if (sb_slice_eq(sb_slice_cstr(st->queues[i].name), name))
            return &st->queues[i];
    return NULL;
}

sim_member *sim_queue_member(sim_queue *q, sb_slice iface)
{
    for (int i = 0; i < q->nmembers; i++)
        if (sb_slice_eq(sb_slice_cstr(q->members[i].iface), iface))
            return &q->members[i];
    return NULL;
}

sim_device *sim_state_device(sim_state *st, const char *name)
{
    for (int i = 0; i < st->ndevices; i++)
        if (strcmp(st->devices[i].name, name) == 0)
            return &st->devices[i];
    if (st->ndevices == SIM_MAX_DEVICES)
        return NULL;
    sim_device *d = &st->devices[st->ndevices++];
    sim_copy(d->name, sizeof d->name, name);
    snprintf(d->state, sizeof d->state, "UNKNOWN");
    return d;
}

typedef struct hdrs {
    const ami_header *h;
    size_t n;
} hdrs;

static sb_slice get(hdrs e, const char *key)
{
    for (size_t i = 0; i < e.n; i++)
        if (sb_slice_eq_ci(e.h[i].key, key))
            return e.h[i].value;
    return (sb_slice){"", 0};
}

static bool has(hdrs e, const char *key)
{
    for (size_t i = 0; i < e.n; i++)
        if (sb_slice_eq_ci(e.h[i].key, key))
            return true;
    return false;
}

static long long num(sb_slice s)
{
    long long v = 0;
    if (sb_slice_to_ll(s, &v) < 0)
        return 0;
    return v;
}

#define COPY(dst, s) sb_slice_copy((s), (dst), sizeof(dst))

static void channel_update(sim_channel *c, hdrs e)
{
    if (has(e, "ChannelState"))
        c->state = (int)num(get(e, "ChannelState"));
    if (has(e, "CallerIDNum"))
        COPY(c->cid_num, get(e, "CallerIDNum"));
    if (has(e, "CallerIDName"))
        COPY(c->cid_name, get(e, "CallerIDName"));
    if (has(e, "ConnectedLineNum"))
        COPY(c->conn_num, get(e, "ConnectedLineNum"));
    if (has(e, "ConnectedLineName"))
        COPY(c->conn_name, get(e, "ConnectedLineName"));
    if (has(e, "Context"))
        COPY(c->context, get(e, "Context"));
    if (has(e, "Exten"))
        COPY(c->exten, get(e, "Exten"));
    if (has(e, "Priority"))
        c->priority = (int)num(get(e, "Priority"));
    if (has(e, "Linkedid"))
        COPY(c->linkedid, get(e, "Linkedid"));
}

static void channel_add(pbxsim *sim, hdrs e)
{
    sim_state *st = &sim->state;
    sb_slice name = get(e, "Channel");
    if (sim_state_channel(st, name))
        return;
    sim_channel *c = channel_new(st, name);
    if (!c)
        return;
    COPY(c->uniqueid, get(e, "Uniqueid"));
    channel_update(c, e);
    c->created_ms = sim_now_ms(sim);
    c->owner_id = sim->emitting ? sim->emitting->id : 0;
}

static void member_update(pbxsim *sim, hdrs e, bool added, bool removed)
{
    sim_queue *q = sim_state_queue(&sim->state, get(e, "Queue"));
    if (!q)
        return;
    sim_member *m = sim_queue_member(q, get(e, "Interface"));
    if (removed) {
        if (m) {
            int i = (int)(m - q->members);
            memmove(&q->members[i], &q->members[i + 1], (size_t)(q->nmembers - i - 1) * sizeof *m);
            q->nmembers--;
        }
        return;
    }
    if (!m) {
        if (!added || q->nmembers == SIM_MAX_MEMBERS)
            return;
        m = &q->members[q->nmembers++];
        memset(m, 0, sizeof *m);
        COPY(m->iface, get(e, "Interface"));
    }
    COPY(m->name, get(e, "MemberName"));
    COPY(m->state_iface, get(e, "StateInterface"));
    m->dynamic = sb_slice_eq_ci(get(e, "Membership"), "dynamic");
    m->penalty = (int)num(get(e, "Penalty"));
    m->calls_taken = (int)num(get(e, "CallsTaken"));
    m->last_call = num(get(e, "LastCall"));
    m->last_pause = num(get(e, "LastPause"));
    m->login_time = num(get(e, "LoginTime"));
    m->in_call = (int)num(get(e, "InCall"));
    m->status = (int)num(get(e, "Status"));
    m->paused = num(get(e, "Paused")) != 0;
    COPY(m->reason, get(e, "PausedReason"));
    m->ringinuse = (int)num(get(e, "Ringinuse"));
}

static void caller_remove(sim_queue *q, sb_slice channel)
{
    for (int i = 0; i < q->ncallers; i++)
        if (sb_slice_eq(sb_slice_cstr(q->callers[i].channel), channel)) {
            memmove(&q->callers[i], &q->callers[i + 1],
                    (size_t)(q->ncallers - i - 1) * sizeof q->callers[0]);
            q->ncallers--;
            return;
        }
}

static void caller_add(pbxsim *sim, sim_queue *q, hdrs e)
{
    caller_remove(q, get(e, "Channel"));
    if (q->ncallers == SIM_MAX_CALLERS)
        return;
    sim_caller *c = &q->callers[q->ncallers++];
    memset(c, 0, sizeof *c);
    COPY(c->channel, get(e, "Channel"));
    COPY(c->uniqueid, get(e, "Uniqueid"));
    COPY(c->cid_num, get(e, "CallerIDNum"));
    COPY(c->cid_name, get(e, "CallerIDName"));
    COPY(c->conn_num, get(e, "ConnectedLineNum"));
    COPY(c->conn_name, get(e, "ConnectedLineName"));
    c->joined_ms = sim_now_ms(sim);
}

void sim_state_apply(pbxsim *sim, const ami_header *h, size_t n)
{
    if (n == 0 || !sb_slice_eq_ci(h[0].key, "Event"))
        return;
    hdrs e = {h, n};
    sb_slice ev = h[0].value;
    sim_state *st = &sim->state;
    if (sb_slice_eq_ci(ev, "Newchannel")) {
        channel_add(sim, e);
    } else if (sb_slice_eq_ci(ev, "Hangup")) {
        channel_remove(st, get(e, "Channel"));
    } else if (sb_slice_eq_ci(ev, "Newstate") || sb_slice_eq_ci(ev, "NewCallerid") ||
               sb_slice_eq_ci(ev, "NewConnectedLine") || sb_slice_eq_ci(ev, "Newexten")) {
        sim_channel *c = sim_state_channel(st, get(e, "Channel"));
        if (c) {
            channel_update(c, e);
            if (has(e, "Application")) {
                COPY(c->app, get(e, "Application"));
                COPY(c->appdata, get(e, "AppData"));
            }
        }
    } else if (sb_slice_eq_ci(ev, "BridgeEnter")) {
        sim_channel *c = sim_state_channel(st, get(e, "Channel"));
        if (c)
            COPY(c->bridge, get(e, "BridgeUniqueid"));
    } else if (sb_slice_eq_ci(ev, "BridgeLeave")) {
        sim_channel *c = sim_state_channel(st, get(e, "Channel"));
        if (c)
            c->bridge[0] = '\0';
    } else if (sb_slice_eq_ci(ev, "QueueMemberStatus") || sb_slice_eq_ci(ev, "QueueMemberPause")) {
        member_update(sim, e, false, false);
    } else if (sb_slice_eq_ci(ev, "QueueMemberAdded")) {
        member_update(sim, e, true, false);
    } else if (sb_slice_eq_ci(ev, "QueueMemberRemoved")) {
        member_update(sim, e, false, true);
    } else if (sb_slice_eq_ci(ev, "QueueCallerJoin")) {
        sim_queue *q = sim_state_queue(st, get(e, "Queue"));
        if (q) {
            q->calls = (int)num(get(e, "Count"));
            caller_add(sim, q, e);
        }
    } else if (sb_slice_eq_ci(ev, "QueueCallerLeave")) {
        sim_queue *q = sim_state_queue(st, get(e, "Queue"));
        if (q) {
            q->calls = (int)num(get(e, "Count"));
            caller_remove(q, get(e, "Channel"));
        }
    } else if (sb_slice_eq_ci(ev, "QueueCallerAbandon")) {
        sim_queue *q = sim_state_queue(st, get(e, "Queue"));
        if (q) {
            q->abandoned++;
            caller_remove(q, get(e, "Channel"));
        }
    } else if (sb_slice_eq_ci(ev, "AgentComplete")) {
        sim_queue *q = sim_state_queue(st, get(e, "Queue"));
        if (q) {
            /* app_queue keeps running averages; the recordings show one call each */
            int hold = (int)num(get(e, "HoldTime")), talk = (int)num(get(e, "TalkTime"));
            q->holdtime = (q->holdtime * q->completed + hold) / (q->completed + 1);
            q->talktime = (q->talktime * q->completed + talk) / (q->completed + 1);
            q->completed++;
        }
    } else if (sb_slice_eq_ci(ev, "DeviceStateChange")) {
        char name[96];
        COPY(name, get(e, "Device"));
        /* Local channels' device states are not cached: DeviceStateList never shows them
         * (fixture 10 lists none during a Local/600 call) */
        if (strncmp(name, "Local/", 6) == 0)
            return;
        sim_device *d = sim_state_device(st, name);
        if (d)
            COPY(d->state, get(e, "State"));
    } else if (sb_slice_eq_ci(ev, "ExtensionStatus")) {
        for (int i = 0; i < st->nhints; i++)
            if (sb_slice_eq(sb_slice_cstr(st->hints[i].exten), get(e, "Exten")))
                st->hints[i].status = (int)num(get(e, "Status"));
    }
}

void sim_msg_channel(ami_msg *m, const sim_channel *c, const char *prefix)
{
    char k[64];
#define ADD(key, val)                                                                              \
    do {                                                                                           \
        snprintf(k, sizeof k, "%s%s", prefix, key);                                                \
        ami_msg_add(m, k, val);                                                                    \
    } while (0)
    ADD("Channel", c->name);
    snprintf(k, sizeof k, "%sChannelState", prefix);
    ami_msg_addf(m, k, "%d", c->state);
    ADD("ChannelStateDesc", sim_state_desc(c->state));
    ADD("CallerIDNum", c->cid_num);
    ADD("CallerIDName", c->cid_name);
    ADD("ConnectedLineNum", c->conn_num);
    ADD("ConnectedLineName", c->conn_name);
    ADD("Language", "en");
    ADD("AccountCode", "");
    ADD("Context", c->context);
    ADD("Exten", c->exten);
    snprintf(k, sizeof k, "%sPriority", prefix);
    ami_msg_addf(m, k, "%d", c->priority);
    ADD("Uniqueid", c->uniqueid);
    ADD("Linkedid", c->linkedid);
#undef ADD
}

void sim_msg_member(ami_msg *m, const sim_queue *q, const sim_member *mb)
{
    ami_msg_add(m, "Queue", q->name);
    ami_msg_add(m, "MemberName", mb->name);
    ami_msg_add(m, "Interface", mb->iface);
    ami_msg_add(m, "StateInterface", mb->state_iface);
    ami_msg_add(m, "Membership", mb->dynamic ? "dynamic" : "static");
    ami_msg_addf(m, "Penalty", "%d", mb->penalty);
    ami_msg_addf(m, "CallsTaken", "%d", mb->calls_taken);
    ami_msg_addf(m, "LastCall", "%lld", mb->last_call);
    ami_msg_addf(m, "LastPause", "%lld", mb->last_pause);
    ami_msg_addf(m, "LoginTime", "%lld", mb->login_time);
    ami_msg_addf(m, "InCall", "%d", mb->in_call);
    ami_msg_addf(m, "Status", "%d", mb->status);
    ami_msg_addf(m, "Paused", "%d", mb->paused ? 1 : 0);
    ami_msg_add(m, "PausedReason", mb->reason);
    ami_msg_addf(m, "Ringinuse", "%d", mb->ringinuse);
    ami_msg_add(m, "Wrapuptime", "0");
}
