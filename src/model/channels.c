/* channels.c: channels by Uniqueid, from Newchannel to Hangup, and the per-channel events that
 * feed the calls (state, caller id, connected line, dials, CDRs, recordings, hold, transfers).
 *
 * Only Newchannel (and a CoreShowChannel item during a resync) creates a channel. Events for an
 * unknown Uniqueid are ignored: Asterisk sends some after the Hangup (a NewConnectedLine follows
 * the Hangup of a ring-all loser in fixture 07), and adopting them would resurrect dead channels.
 */
#include "model/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

char *chan_device_of(sb_slice name)
{
    size_t n = name.len;
    /* Local/100@ctx-00000001;1: drop ";1", then "-00000001". */
    if (n > 2 && name.ptr[n - 2] == ';')
        n -= 2;
    for (size_t i = n; i > 0; i--) {
        if (name.ptr[i - 1] == '-') {
            bool hex = i < n;
            for (size_t j = i; j < n; j++)
                if (!isxdigit((unsigned char)name.ptr[j]))
                    hex = false;
            if (hex)
                n = i - 1;
            break;
        }
        if (name.ptr[i - 1] == '/')
            break;
    }
    return mdup((sb_slice){name.ptr, n});
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* A trunk: an endpoint declared with model_set_trunks(), or (nothing declared) a SIP-like
 * endpoint whose name is not all digits (PJSIP/carrier is a trunk, PJSIP/1001 a phone). */
static bool device_is_trunk(const model_pbx *p, const char *device)
{
    const char *slash;
    if (!device)
        return false;
    slash = strchr(device, '/');
    if (!slash || strncasecmp(device, "Local/", 6) == 0)
        return false;
    const char *ep = slash + 1;
    if (p->trunks_set) {
        for (size_t i = 0; i < p->ntrunks; i++)
            if (strcmp(p->trunks[i], ep) == 0 || strcmp(p->trunks[i], device) == 0)
                return true;
        return false;
    }
    if (strncasecmp(device, "PJSIP/", 6) != 0 && strncasecmp(device, "SIP/", 4) != 0 &&
        strncasecmp(device, "IAX2/", 5) != 0)
        return false;
    return !all_digits(ep, strlen(ep));
}

void chan_free(mchan *c)
{
    if (!c)
        return;
    free(c->uniqueid);
    free(c->linkedid);
    free(c->name);
    free(c->device);
    free(c->agent);
    free(c->cid_num);
    free(c->cid_name);
    free(c->conn_num);
    free(c->conn_name);
    free(c->context);
    free(c->exten);
    free(c->recording);
    free(c);
}

/* Every channel event repeats the caller id fields; an absent header changes nothing. */
static void update_if_present(char **dst, const ami_packet *ev, const char *key)
{
    const sb_slice *v = ami_packet_get(ev, key);
    if (v)
        mset_cid(dst, *v);
}

static void chan_update_ids(mchan *c, const ami_packet *ev)
{
    update_if_present(&c->cid_num, ev, "CallerIDNum");
    update_if_present(&c->cid_name, ev, "CallerIDName");
    update_if_present(&c->conn_num, ev, "ConnectedLineNum");
    update_if_present(&c->conn_name, ev, "ConnectedLineName");
}

mchan *chan_new_from(model *m, model_pbx *p, const ami_packet *ev, int64_t created_ms)
{
    sb_slice uid = ami_packet_value(ev, "Uniqueid");
    sb_slice lid = ami_packet_value(ev, "Linkedid");
    sb_slice name = ami_packet_value(ev, "Channel");
    mchan *c;
    magent *a;
    if (uid.len == 0 || name.len == 0)
        return NULL;
    if (lid.len == 0)
        lid = uid;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->uniqueid = mdup(uid);
    c->linkedid = mdup(lid);
    c->name = mdup(name);
    c->device = chan_device_of(name);
    c->state = (int)mget_long(ev, "ChannelState", 0);
    c->context = mdup(ami_packet_value(ev, "Context"));
    c->exten = mdup(ami_packet_value(ev, "Exten"));
    c->created_ms = created_ms;
    c->seen = true;
    chan_update_ids(c, ev);
    if (!c->uniqueid || !c->linkedid || !c->name || !c->device)
        goto fail;
    c->is_trunk = device_is_trunk(p, c->device);
    a = agent_of_device(p, c->device);
    if (a && !(c->agent = strdup(a->ext)))
        goto fail;
    if (c->state == CH_UP)
        c->answered_ms = created_ms;
    if (sb_strmap_put(&p->channels, uid, c) < 0)
        goto fail;
    if (!call_attach(m, p, c)) {
        sb_strmap_del(&p->channels, uid);
        goto fail;
    }
    return c;
fail:
    chan_free(c);
    return NULL;
}

void chan_remember_gone(model_pbx *p, const char *uniqueid)
{
    size_t slot = p->gone_head++ % (sizeof p->gone_ring / sizeof p->gone_ring[0]);
    char *key = strdup(uniqueid);
    if (!key)
        return;
    if (p->gone_ring[slot]) {
        sb_strmap_del(&p->gone, sb_slice_cstr(p->gone_ring[slot]));
        free(p->gone_ring[slot]);
    }
    p->gone_ring[slot] = key;
    if (sb_strmap_put(&p->gone, sb_slice_cstr(key), key) < 0) {
        p->gone_ring[slot] = NULL;
        free(key);
    }
}

void chan_hangup(model *m, model_pbx *p, mchan *c, bool lost)
{
    chan_remember_gone(p, c->uniqueid);
    if (lost && c->call)
        c->call->lost = true;
    if (c->bridge)
        bridge_leave(m, p, c);
    sb_strmap_del(&p->channels, sb_slice_cstr(c->uniqueid));
    call_detach(m, p, c); /* may end the call */
    chan_free(c);
}

json_t *chan_json(const mchan *c)
{
    static const char *const states[] = {"down",    "reserved", "offhook", "dialing",
                                         "ring",    "ringing",  "up",      "busy",
                                         "dialing", "prering",  "unknown"};
    int st = c->state;
    return json_pack("{s:s, s:s, s:s, s:i, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b}",
                     "uniqueId", c->uniqueid, "channel", c->name, "device", c->device, "stateCode",
                     st, "state", (st >= 0 && st <= 10) ? states[st] : "unknown", "callerIdNum",
                     c->cid_num, "callerIdName", c->cid_name, "connectedLineNum", c->conn_num,
                     "connectedLineName", c->conn_name, "agent", c->agent, "bridgeId",
                     c->bridge ? c->bridge->id : NULL, "trunk", c->is_trunk);
}

static mchan *find(model_pbx *p, const ami_packet *ev, const char *key)
{
    const sb_slice *v = ami_packet_get(ev, key);
    return v ? sb_strmap_get(&p->channels, *v) : NULL;
}

/* Duration "HH:MM:SS" of a CoreShowChannel item, in ms (0 when unparsable). */
static int64_t parse_duration(sb_slice s)
{
    long long h = 0, mi = 0, se = 0;
    char buf[32];
    sb_slice_copy(s, buf, sizeof buf);
    if (sscanf(buf, "%lld:%lld:%lld", &h, &mi, &se) != 3)
        return 0;
    return ((h * 60 + mi) * 60 + se) * 1000;
}

static void on_core_show_channel(model *m, model_pbx *p, const ami_packet *ev)
{
    mchan *c = find(p, ev, "Uniqueid");
    sb_slice bid = ami_packet_value(ev, "BridgeId");
    if (c) {
        c->seen = true;
        chan_update_ids(c, ev);
        int st = (int)mget_long(ev, "ChannelState", c->state);
        if (st != c->state) {
            c->state = st;
            call_on_state(m, p, c);
        }
    } else {
        int64_t age = parse_duration(ami_packet_value(ev, "Duration"));
        if (sb_strmap_get(&p->gone, ami_packet_value(ev, "Uniqueid")))
            return; /* listed before its Hangup was written, read after it */
        c = chan_new_from(m, p, ev, m->ev_time - age);
        if (!c)
            return;
        if (c->state != CH_DOWN)
            call_on_state(m, p, c);
    }
    if (bid.len && (!c->bridge || !sb_slice_eq(sb_slice_cstr(c->bridge->id), bid))) {
        mbridge *b = bridge_get(p, bid, true);
        if (b)
            bridge_enter(m, p, b, c);
    } else if (!bid.len && c->bridge) {
        bridge_leave(m, p, c);
    }
}

static void on_transfer(model *m, model_pbx *p, const ami_packet *ev, bool blind)
{
    const char *pre = blind ? "Transferer" : "OrigTransferer";
    char key[64];
    snprintf(key, sizeof key, "%sLinkedid", pre);
    const sb_slice *lid = ami_packet_get(ev, key);
    mcall *call = lid ? sb_strmap_get(&p->calls, *lid) : NULL;
    json_t *d;
    char *result, *ext, *target, *from;
    if (!call)
        return;
    snprintf(key, sizeof key, "%sChannel", pre);
    from = mdup(ami_packet_value(ev, key));
    result = mdup(ami_packet_value(ev, "Result"));
    ext = mdup(ami_packet_value(ev, blind ? "Extension" : "TransferTargetChannel"));
    target = mdup(ami_packet_value(ev, blind ? "TransfereeChannel" : "SecondTransfererChannel"));
    d = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?}", "kind", blind ? "blind" : "attended", "result",
                  result, "transferer", from, blind ? "extension" : "target", ext,
                  blind ? "transferee" : "secondTransferer", target);
    free(from);
    free(result);
    free(ext);
    free(target);
    call_transferred(m, p, call, d);
}

void chan_handle(model *m, model_pbx *p, const ami_packet *ev, sb_slice name)
{
    mchan *c;
    if (sb_slice_eq_ci(name, "VarSet")) {
        /* The busiest event: only the recording file name matters here. */
        if (!ami_packet_is(ev, "Variable", "MIXMONITOR_FILENAME"))
            return;
        c = find(p, ev, "Uniqueid");
        if (c && mset(&c->recording, ami_packet_value(ev, "Value")) && c->call && c->recording)
            mset_str(&c->call->recording, c->recording);
    } else if (sb_slice_eq_ci(name, "Newchannel")) {
        if (!find(p, ev, "Uniqueid"))
            chan_new_from(m, p, ev, m->ev_time);
    } else if (sb_slice_eq_ci(name, "Newstate")) {
        c = find(p, ev, "Uniqueid");
        if (!c)
            return;
        chan_update_ids(c, ev);
        c->state = (int)mget_long(ev, "ChannelState", c->state);
        call_on_state(m, p, c);
    } else if (sb_slice_eq_ci(name, "NewCallerid")) {
        c = find(p, ev, "Uniqueid");
        if (!c)
            return;
        chan_update_ids(c, ev);
        call_on_state(m, p, c);
    } else if (sb_slice_eq_ci(name, "NewConnectedLine")) {
        c = find(p, ev, "Uniqueid");
        if (!c)
            return;
        chan_update_ids(c, ev);
        if (c->agent && c->bridge && c->bridge->n >= 2 && c->conn_num && c->call) {
            magent *a = agent_get(p, c->agent, false);
            if (a)
                agent_set_remote(m, p, a, c->conn_num, c->conn_name, c->call->id, c->call->queue);
        }
    } else if (sb_slice_eq_ci(name, "DialBegin")) {
        mchan *dest = find(p, ev, "DestUniqueid");
        mchan *src = find(p, ev, "Uniqueid");
        mcall *call = src ? src->call : dest ? dest->call : NULL;
        if (call)
            call_on_dial(m, p, call, dest, ami_packet_value(ev, "DialString"));
    } else if (sb_slice_eq_ci(name, "DialEnd")) {
        mchan *dest = find(p, ev, "DestUniqueid");
        if (dest && dest->call && ami_packet_is(ev, "DialStatus", "BUSY"))
            dest->call->busy = true;
    } else if (sb_slice_eq_ci(name, "Hangup")) {
        c = find(p, ev, "Uniqueid");
        if (c && c->call && strcmp(c->uniqueid, c->linkedid) == 0) {
            /* The first channel's cause says why the call ended (16 Normal Clearing, 17 User
             * busy, 26 Answered elsewhere...). */
            c->call->cause = (int)mget_long(ev, "Cause", -1);
            mset(&c->call->cause_text, ami_packet_value(ev, "Cause-txt"));
        }
        if (c)
            chan_hangup(m, p, c, false);
    } else if (sb_slice_eq_ci(name, "Cdr")) {
        /* The CDR of the call's first channel carries Asterisk's own disposition (BUSY, NO
         * ANSWER, FAILED) for calls nobody answered; it often arrives before the Hangup. */
        c = find(p, ev, "UniqueID");
        if (c && c->call && strcmp(c->uniqueid, c->linkedid) == 0)
            mset(&c->call->cdr_disposition, ami_packet_value(ev, "Disposition"));
    } else if (sb_slice_eq_ci(name, "CoreShowChannel")) {
        on_core_show_channel(m, p, ev);
    } else if (sb_slice_eq_ci(name, "Hold")) {
        c = find(p, ev, "Uniqueid");
        if (c && !c->hold_start_ms)
            c->hold_start_ms = m->ev_time;
    } else if (sb_slice_eq_ci(name, "Unhold")) {
        c = find(p, ev, "Uniqueid");
        if (c && c->hold_start_ms) {
            if (c->call)
                c->call->on_hold_ms += m->ev_time - c->hold_start_ms;
            c->hold_start_ms = 0;
        }
    } else if (sb_slice_eq_ci(name, "BlindTransfer")) {
        on_transfer(m, p, ev, true);
    } else if (sb_slice_eq_ci(name, "AttendedTransfer")) {
        on_transfer(m, p, ev, false);
    }
}
