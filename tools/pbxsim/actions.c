/* actions.c: answers AMI actions the way Asterisk 22.10.1 does in the recorded fixtures:
 * "Response: Success/Error" with the ActionID echoed right after it when the action had one, list
 * actions as "EventList: start" + items + "...Complete" (EventList: Complete, ListItems), the
 * write-class check of manager.c (an action needs ANY one of its classes; 0 = no check), and
 * the exact message texts of fixtures 01-14.
 *
 * Permission mapping (the authority each action is registered with in Asterisk 22):
 *   none: Login Logoff Challenge Ping Events QueueStatus QueueSummary PbxsimStream
 *   system|reporting: CoreSettings CoreStatus CoreShowChannels
 *   system|call|reporting: Status       call|reporting: Getvar ExtensionState(List) DeviceStateList
 *   agent: QueueAdd QueueRemove QueuePause     originate: Originate     call: Redirect
 *   system|call: Hangup     command: Command     system: Filter PJSIPShowEndpoints
 */
#include "internal.h"

#include "core/error.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* ---- message helpers ---- */

static void copy_value(const ami_packet *p, const char *key, char *dst, size_t size)
{
    sb_slice v = ami_packet_value(p, key);
    sb_slice_copy(v, dst, size);
}

static bool has_value(const ami_packet *p, const char *key)
{
    return ami_packet_value(p, key).len > 0;
}

static void add_actionid(ami_msg *m, const ami_packet *p)
{
    /* echoed only when the action carried a non-empty one (manager.c's idText) */
    const sb_slice *id = ami_packet_get(p, "ActionID");
    if (id && id->len)
        ami_msg_addn(m, "ActionID", *id);
}

static void resp_begin(ami_msg *m, const ami_packet *p, const char *status)
{
    ami_msg_init(m, "Response", status);
    add_actionid(m, p);
}

static void send_msg(sim_session *s, ami_msg *m)
{
    const char *data;
    size_t len;
    if (ami_msg_finish(m, &data, &len) == 0)
        sim_send(s, data, len);
    ami_msg_free(m);
}

static void emit_msg(pbxsim *sim, ami_msg *m)
{
    const char *data;
    size_t len;
    if (ami_msg_finish(m, &data, &len) == 0)
        sim_emit(sim, data, len);
    ami_msg_free(m);
}

static void send_simple(sim_session *s, const ami_packet *p, const char *status, const char *msg)
{
    ami_msg m;
    resp_begin(&m, p, status);
    ami_msg_add(&m, "Message", msg);
    send_msg(s, &m);
}

static void send_error(sim_session *s, const ami_packet *p, const char *msg)
{
    send_simple(s, p, "Error", msg);
}

static void send_ack(sim_session *s, const ami_packet *p, const char *msg)
{
    send_simple(s, p, "Success", msg);
}

static void send_listack(sim_session *s, const ami_packet *p, const char *msg)
{
    ami_msg m;
    resp_begin(&m, p, "Success");
    ami_msg_add(&m, "EventList", "start");
    ami_msg_add(&m, "Message", msg);
    send_msg(s, &m);
}

static void send_list_complete(sim_session *s, const ami_packet *p, const char *event, int items)
{
    ami_msg m;
    ami_msg_init(&m, "Event", event);
    add_actionid(&m, p);
    ami_msg_add(&m, "EventList", "Complete");
    ami_msg_addf(&m, "ListItems", "%d", items);
    send_msg(s, &m);
}

/* ---- login ---- */

static void md5_hex(const char *a, const char *b, char out[33])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    out[0] = '\0';
    if (!ctx)
        return;
    if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(ctx, a, strlen(a)) == 1 &&
        EVP_DigestUpdate(ctx, b, strlen(b)) == 1 && EVP_DigestFinal_ex(ctx, d, &n) == 1) {
        for (unsigned i = 0; i < n && i < 16; i++)
            snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
    EVP_MD_CTX_free(ctx);
}

static void session_tv_now(char *buf, size_t size)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    sim_fmt_tv(tv.tv_sec, (long)(tv.tv_usec / 1000), buf, size);
}

static void act_login(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char user[64], secret[128], key[64];
    copy_value(p, "Username", user, sizeof user);
    copy_value(p, "Secret", secret, sizeof secret);
    copy_value(p, "Key", key, sizeof key);
    bool md5 = ami_packet_is(p, "AuthType", "MD5");
    const sim_user *u = NULL;
    for (size_t i = 0; i < sim->nusers; i++)
        if (strcmp(sim->users[i].username, user) == 0)
            u = &sim->users[i];
    bool ok = false;
    if (u && md5) {
        char expect[33];
        md5_hex(s->challenge, u->secret, expect);
        ok = s->challenge[0] && strcasecmp(expect, key) == 0;
    } else if (u) {
        ok = strcmp(u->secret, secret) == 0;
    }
    if (!ok) {
        /* Asterisk answers once and closes the session (fixture 02) */
        sim->stats.logins_failed++;
        send_error(s, p, "Authentication failed");
        sim_session_close(s, true);
        return;
    }
    sim->stats.logins_ok++;
    s->authed = true;
    s->user = u;
    const sb_slice *ev = ami_packet_get(p, "Events");
    s->event_mask = ev ? sim_class_parse(*ev) : SIM_CLASS_ALL;
    session_tv_now(s->session_tv, sizeof s->session_tv);
    send_ack(s, p, "Authentication accepted");
    if (u->read & s->event_mask & SIM_CLASS_SYSTEM) {
        /* sent to this session only, right after the login answer (fixture 05) */
        long up = (long)(time(NULL) - sim->started);
        ami_msg m;
        ami_msg_init(&m, "Event", "FullyBooted");
        ami_msg_add(&m, "Privilege", "system,all");
        ami_msg_addf(&m, "Uptime", "%ld", up);
        ami_msg_addf(&m, "LastReload", "%ld", up);
        ami_msg_add(&m, "Status", "Fully Booted");
        send_msg(s, &m);
    }
    ami_msg m;
    ami_msg_init(&m, "Event", "SuccessfulAuth");
    ami_msg_add(&m, "Privilege", "security,all");
    ami_msg_add(&m, "EventTV", s->session_tv);
    ami_msg_add(&m, "Severity", "Informational");
    ami_msg_add(&m, "Service", "AMI");
    ami_msg_add(&m, "EventVersion", "1");
    ami_msg_add(&m, "AccountID", u->username);
    ami_msg_addf(&m, "SessionID", "0x%llx", (unsigned long long)(0x7feb00000000ull + s->id));
    ami_msg_addf(&m, "LocalAddress", "IPV4/TCP/%s/%d", sim->host, sim->port);
    ami_msg_add(&m, "RemoteAddress", s->remote);
    ami_msg_add(&m, "UsingPassword", "0");
    ami_msg_add(&m, "SessionTV", s->session_tv);
    emit_msg(sim, &m);
}

static void act_challenge(sim_session *s, const ami_packet *p)
{
    if (!ami_packet_is(p, "AuthType", "MD5")) {
        send_error(s, p, "Must specify AuthType");
        return;
    }
    if (!s->challenge[0])
        snprintf(s->challenge, sizeof s->challenge, "%09ld", (long)(random() % 1000000000L));
    ami_msg m;
    resp_begin(&m, p, "Success");
    ami_msg_add(&m, "Challenge", s->challenge);
    send_msg(s, &m);
}

static void act_logoff(sim_session *s, const ami_packet *p)
{
    send_simple(s, p, "Goodbye", "Thanks for all the fish.");
    sim_session_close(s, true);
}

static void act_ping(sim_session *s, const ami_packet *p)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    ami_msg m;
    resp_begin(&m, p, "Success");
    ami_msg_add(&m, "Ping", "Pong");
    ami_msg_addf(&m, "Timestamp", "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    send_msg(s, &m);
}

static void act_events(sim_session *s, const ami_packet *p)
{
    const sb_slice *mask = ami_packet_get(p, "EventMask");
    if (!mask) {
        send_error(s, p, "Invalid event mask");
        return;
    }
    s->event_mask = sim_class_parse(*mask);
    ami_msg m;
    resp_begin(&m, p, "Success");
    ami_msg_add(&m, "Events", s->event_mask ? "On" : "Off");
    send_msg(s, &m);
}

static void act_filter(sim_session *s, const ami_packet *p)
{
    char filter[512];
    if (!ami_packet_is(p, "Operation", "Add")) {
        send_error(s, p, "Unknown operation");
        return;
    }
    copy_value(p, "Filter", filter, sizeof filter);
    if (!filter[0]) {
        send_error(s, p, "No filter specified");
        return;
    }
    if (s->nfilters == SIM_MAX_FILTERS) {
        send_error(s, p, "Allocation failure");
        return;
    }
    bool exclude = filter[0] == '!';
    if (regcomp(&s->filters[s->nfilters], filter + (exclude ? 1 : 0), REG_EXTENDED | REG_NOSUB)) {
        send_error(s, p, "Filter did not compile");
        return;
    }
    s->filter_exclude[s->nfilters++] = exclude;
    send_ack(s, p, "Success");
}

/* ---- core ---- */

static void act_coresettings(sim_session *s, const ami_packet *p)
{
    ami_msg m;
    resp_begin(&m, p, "Success");
    ami_msg_add(&m, "AMIversion", "11.0.0");
    ami_msg_add(&m, "AsteriskVersion", "22.10.1");
    ami_msg_add(&m, "SystemName", "");
    ami_msg_add(&m, "CoreMaxCalls", "0");
    ami_msg_add(&m, "CoreMaxLoadAvg", "0.000000");
    ami_msg_add(&m, "CoreRunUser", "");
    ami_msg_add(&m, "CoreRunGroup", "");
    ami_msg_add(&m, "CoreMaxFilehandles", "0");
    ami_msg_add(&m, "CoreRealTimeEnabled", "No");
    ami_msg_add(&m, "CoreCDRenabled", "Yes");
    ami_msg_add(&m, "CoreHTTPenabled", "No");
    ami_msg_add(&m, "SoundsSearchCustomDir", "No");
    send_msg(s, &m);
}

static int active_calls(const pbxsim *sim)
{
    int n = 0;
    for (const sim_call *c = sim->calls; c; c = c->next)
        n++;
    return n;
}

static void act_corestatus(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    struct tm tm;
    char d[16], t[16];
    gmtime_r(&sim->started, &tm);
    strftime(d, sizeof d, "%Y-%m-%d", &tm);
    strftime(t, sizeof t, "%H:%M:%S", &tm);
    ami_msg m;
    resp_begin(&m, p, "Success");
    ami_msg_add(&m, "CoreStartupDate", d);
    ami_msg_add(&m, "CoreStartupTime", t);
    ami_msg_add(&m, "CoreReloadDate", d);
    ami_msg_add(&m, "CoreReloadTime", t);
    ami_msg_addf(&m, "CoreCurrentCalls", "%d", active_calls(sim));
    ami_msg_addf(&m, "CoreProcessedCalls", "%llu", (unsigned long long)sim->stats.calls_started);
    send_msg(s, &m);
}

static void fmt_duration(uint64_t secs, char *buf, size_t size)
{
    snprintf(buf, size, "%02llu:%02llu:%02llu", (unsigned long long)(secs / 3600),
             (unsigned long long)(secs / 60 % 60), (unsigned long long)(secs % 60));
}

static uint64_t chan_age(const pbxsim *sim, const sim_channel *c)
{
    return (sim_now_ms(sim) - c->created_ms) / 1000;
}

static void act_coreshowchannels(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    send_listack(s, p, "Channels will follow");
    int n = 0;
    for (size_t i = sim->state.nchans; i-- > 0;) {
        const sim_channel *c = &sim->state.chans[i];
        char dur[32];
        fmt_duration(chan_age(sim, c), dur, sizeof dur);
        ami_msg m;
        ami_msg_init(&m, "Event", "CoreShowChannel");
        add_actionid(&m, p);
        sim_msg_channel(&m, c, "");
        ami_msg_add(&m, "Application", c->app);
        ami_msg_add(&m, "ApplicationData", c->appdata);
        ami_msg_add(&m, "Duration", dur);
        ami_msg_add(&m, "BridgeId", c->bridge);
        send_msg(s, &m);
        n++;
    }
    send_list_complete(s, p, "CoreShowChannelsComplete", n);
}

static void act_status(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    sb_slice only = ami_packet_value(p, "Channel");
    if (only.len && !sim_state_channel(&sim->state, only)) {
        send_error(s, p, "No such channel");
        return;
    }
    send_listack(s, p, "Channel status will follow");
    int n = 0;
    for (size_t i = sim->state.nchans; i-- > 0;) {
        const sim_channel *c = &sim->state.chans[i];
        if (only.len && !sb_slice_eq(only, sb_slice_cstr(c->name)))
            continue;
        char type[32];
        sim_copy(type, sizeof type, c->name);
        char *slash = strchr(type, '/');
        if (slash)
            *slash = '\0';
        ami_msg m;
        ami_msg_init(&m, "Event", "Status");
        ami_msg_add(&m, "Privilege", "Call");
        sim_msg_channel(&m, c, "");
        ami_msg_add(&m, "Type", type);
        ami_msg_add(&m, "DNID", "");
        ami_msg_add(&m, "EffectiveConnectedLineNum", c->conn_num);
        ami_msg_add(&m, "EffectiveConnectedLineName", c->conn_name);
        ami_msg_add(&m, "TimeToHangup", "0");
        ami_msg_add(&m, "BridgeID", c->bridge);
        ami_msg_add(&m, "Application", c->app);
        ami_msg_add(&m, "Data", c->appdata);
        ami_msg_add(&m, "Nativeformats", "(slin)");
        ami_msg_add(&m, "Readformat", "slin");
        ami_msg_add(&m, "Readtrans", "");
        ami_msg_add(&m, "Writeformat", "slin");
        ami_msg_add(&m, "Writetrans", "");
        ami_msg_add(&m, "Callgroup", "0");
        ami_msg_add(&m, "Pickupgroup", "0");
        ami_msg_addf(&m, "Seconds", "%llu", (unsigned long long)chan_age(sim, c));
        add_actionid(&m, p);
        send_msg(s, &m);
        n++;
    }
    ami_msg m;
    ami_msg_init(&m, "Event", "StatusComplete");
    add_actionid(&m, p);
    ami_msg_add(&m, "EventList", "Complete");
    ami_msg_addf(&m, "ListItems", "%d", n);
    ami_msg_addf(&m, "Items", "%d", n);
    send_msg(s, &m);
}

/* ---- queues ---- */

static void act_queuestatus(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    sb_slice only = ami_packet_value(p, "Queue");
    sb_slice member = ami_packet_value(p, "Member");
    send_listack(s, p, "Queue status will follow");
    int n = 0;
    for (int qi = sim->state.nqueues; qi-- > 0;) {
        const sim_queue *q = &sim->state.queues[qi];
        if (only.len && !sb_slice_eq(only, sb_slice_cstr(q->name)))
            continue;
        ami_msg m;
        ami_msg_init(&m, "Event", "QueueParams");
        ami_msg_add(&m, "Queue", q->name);
        ami_msg_add(&m, "Max", "0");
        ami_msg_add(&m, "Strategy", q->strategy);
        ami_msg_addf(&m, "Calls", "%d", q->calls);
        ami_msg_addf(&m, "Holdtime", "%d", q->holdtime);
        ami_msg_addf(&m, "TalkTime", "%d", q->talktime);
        ami_msg_addf(&m, "Completed", "%d", q->completed);
        ami_msg_addf(&m, "Abandoned", "%d", q->abandoned);
        ami_msg_add(&m, "ServiceLevel", "0");
        ami_msg_add(&m, "ServicelevelPerf", "0.0");
        ami_msg_add(&m, "ServicelevelPerf2", "0.0");
        ami_msg_add(&m, "Weight", "0");
        add_actionid(&m, p);
        send_msg(s, &m);
        n++;
        for (int mi = q->nmembers; mi-- > 0;) {
            const sim_member *mb = &q->members[mi];
            if (member.len && !sb_slice_eq(member, sb_slice_cstr(mb->iface)) &&
                !sb_slice_eq(member, sb_slice_cstr(mb->name)))
                continue;
            ami_msg_init(&m, "Event", "QueueMember");
            ami_msg_add(&m, "Queue", q->name);
            ami_msg_add(&m, "Name", mb->name);
            ami_msg_add(&m, "Location", mb->iface);
            ami_msg_add(&m, "StateInterface", mb->state_iface);
            ami_msg_add(&m, "Membership", mb->dynamic ? "dynamic" : "static");
            ami_msg_addf(&m, "Penalty", "%d", mb->penalty);
            ami_msg_addf(&m, "CallsTaken", "%d", mb->calls_taken);
            ami_msg_addf(&m, "LastCall", "%lld", mb->last_call);
            ami_msg_addf(&m, "LastPause", "%lld", mb->last_pause);
            ami_msg_addf(&m, "LoginTime", "%lld", mb->login_time);
            ami_msg_addf(&m, "InCall", "%d", mb->in_call);
            ami_msg_addf(&m, "Status", "%d", mb->status);
            ami_msg_addf(&m, "Paused", "%d", mb->paused ? 1 : 0);
            ami_msg_add(&m, "PausedReason", mb->reason);
            ami_msg_add(&m, "Wrapuptime", "0");
            add_actionid(&m, p);
            send_msg(s, &m);
            n++;
        }
        for (int ci = 0; ci < q->ncallers; ci++) {
            const sim_caller *cl = &q->callers[ci];
            ami_msg_init(&m, "Event", "QueueEntry");
            ami_msg_add(&m, "Queue", q->name);
            ami_msg_addf(&m, "Position", "%d", ci + 1);
            ami_msg_add(&m, "Channel", cl->channel);
            ami_msg_add(&m, "Uniqueid", cl->uniqueid);
            ami_msg_add(&m, "CallerIDNum", cl->cid_num);
            ami_msg_add(&m, "CallerIDName", cl->cid_name);
            ami_msg_add(&m, "ConnectedLineNum", cl->conn_num);
            ami_msg_add(&m, "ConnectedLineName", cl->conn_name);
            ami_msg_addf(&m, "Wait", "%llu",
                         (unsigned long long)((sim_now_ms(sim) - cl->joined_ms) / 1000));
            ami_msg_add(&m, "Priority", "0");
            add_actionid(&m, p);
            send_msg(s, &m);
            n++;
        }
    }
    send_list_complete(s, p, "QueueStatusComplete", n);
}

static void act_queuesummary(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    sb_slice only = ami_packet_value(p, "Queue");
    send_listack(s, p, "Queue summary will follow");
    int n = 0;
    for (int qi = sim->state.nqueues; qi-- > 0;) {
        const sim_queue *q = &sim->state.queues[qi];
        if (only.len && !sb_slice_eq(only, sb_slice_cstr(q->name)))
            continue;
        int logged = 0, avail = 0;
        for (int i = 0; i < q->nmembers; i++) {
            const sim_member *mb = &q->members[i];
            if (mb->status != 5 && mb->status != 4) { /* not unavailable / invalid */
                logged++;
                if (!mb->paused && (mb->status == 1 || mb->status == 0))
                    avail++;
            }
        }
        ami_msg m;
        ami_msg_init(&m, "Event", "QueueSummary");
        ami_msg_add(&m, "Queue", q->name);
        ami_msg_addf(&m, "LoggedIn", "%d", logged);
        ami_msg_addf(&m, "Available", "%d", avail);
        ami_msg_addf(&m, "Callers", "%d", q->calls);
        ami_msg_addf(&m, "HoldTime", "%d", q->holdtime);
        ami_msg_addf(&m, "TalkTime", "%d", q->talktime);
        uint64_t longest = 0;
        for (int ci = 0; ci < q->ncallers; ci++) {
            uint64_t w = (sim_now_ms(sim) - q->callers[ci].joined_ms) / 1000;
            if (w > longest)
                longest = w;
        }
        ami_msg_addf(&m, "LongestHoldTime", "%llu", (unsigned long long)longest);
        add_actionid(&m, p);
        send_msg(s, &m);
        n++;
    }
    send_list_complete(s, p, "QueueSummaryComplete", n);
}

static bool truthy(sb_slice v)
{
    return sb_slice_eq_ci(v, "true") || sb_slice_eq_ci(v, "yes") || sb_slice_eq_ci(v, "1") ||
           sb_slice_eq_ci(v, "on");
}

static void emit_member_event(pbxsim *sim, const char *event, const sim_queue *q,
                              const sim_member *mb)
{
    ami_msg m;
    ami_msg_init(&m, "Event", event);
    ami_msg_add(&m, "Privilege", "agent,all");
    sim_msg_member(&m, q, mb);
    emit_msg(sim, &m);
}

static void emit_device(pbxsim *sim, const char *device, const char *state)
{
    ami_msg m;
    ami_msg_init(&m, "Event", "DeviceStateChange");
    ami_msg_add(&m, "Privilege", "call,all");
    ami_msg_add(&m, "Device", device);
    ami_msg_add(&m, "State", state);
    emit_msg(sim, &m);
}

static void act_queueadd(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    if (!has_value(p, "Queue")) {
        send_error(s, p, "'Queue' not specified.");
        return;
    }
    if (!has_value(p, "Interface")) {
        send_error(s, p, "'Interface' not specified.");
        return;
    }
    sim_queue *q = sim_state_queue(&sim->state, ami_packet_value(p, "Queue"));
    if (!q) {
        send_error(s, p, "Unable to add interface to queue: No such queue");
        return;
    }
    if (sim_queue_member(q, ami_packet_value(p, "Interface"))) {
        send_error(s, p, "Unable to add interface: Already there");
        return;
    }
    if (q->nmembers == SIM_MAX_MEMBERS) {
        send_error(s, p, "Out of memory");
        return;
    }
    sim_member mb;
    memset(&mb, 0, sizeof mb);
    copy_value(p, "Interface", mb.iface, sizeof mb.iface);
    copy_value(p, "MemberName", mb.name, sizeof mb.name);
    if (!mb.name[0])
        sim_copy(mb.name, sizeof mb.name, mb.iface);
    copy_value(p, "StateInterface", mb.state_iface, sizeof mb.state_iface);
    if (!mb.state_iface[0])
        sim_copy(mb.state_iface, sizeof mb.state_iface, mb.iface);
    long long pen = 0;
    sb_slice_to_ll(ami_packet_value(p, "Penalty"), &pen);
    mb.penalty = (int)pen;
    mb.dynamic = true;
    mb.status = 1;
    mb.paused = truthy(ami_packet_value(p, "Paused"));
    mb.login_time = (long long)time(NULL);
    if (mb.paused) {
        mb.last_pause = mb.login_time;
        copy_value(p, "Reason", mb.reason, sizeof mb.reason);
    }
    mb.ringinuse = q->nmembers ? q->members[0].ringinuse : 0;
    send_ack(s, p, "Added interface to queue");
    char dev[160];
    snprintf(dev, sizeof dev, "Queue:%s_pause_%s", q->name, mb.iface);
    emit_device(sim, dev, mb.paused ? "INUSE" : "NOT_INUSE");
    emit_member_event(sim, "QueueMemberAdded", q, &mb);
}

static void act_queueremove(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    if (!has_value(p, "Queue") || !has_value(p, "Interface")) {
        send_error(s, p, "Need 'Queue' and 'Interface' parameters.");
        return;
    }
    sim_queue *q = sim_state_queue(&sim->state, ami_packet_value(p, "Queue"));
    if (!q) {
        send_error(s, p, "Unable to remove interface from queue: No such queue");
        return;
    }
    sim_member *mb = sim_queue_member(q, ami_packet_value(p, "Interface"));
    if (!mb) {
        send_error(s, p, "Unable to remove interface: Not there");
        return;
    }
    if (!mb->dynamic) {
        send_error(s, p, "Member not dynamic");
        return;
    }
    sim_member copy = *mb;
    send_ack(s, p, "Removed interface from queue");
    emit_member_event(sim, "QueueMemberRemoved", q, &copy);
}

static void act_queuepause(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    if (!has_value(p, "Interface") || !ami_packet_get(p, "Paused")) {
        send_error(s, p, "Need 'Interface' and 'Paused' parameters.");
        return;
    }
    sb_slice only = ami_packet_value(p, "Queue");
    sb_slice iface = ami_packet_value(p, "Interface");
    bool paused = truthy(ami_packet_value(p, "Paused"));
    int found = 0;
    for (int qi = 0; qi < sim->state.nqueues; qi++) {
        sim_queue *q = &sim->state.queues[qi];
        if (only.len && !sb_slice_eq(only, sb_slice_cstr(q->name)))
            continue;
        if (sim_queue_member(q, iface))
            found++;
    }
    if (!found) {
        send_error(s, p, "Interface not found");
        return;
    }
    send_ack(s, p, paused ? "Interface paused successfully" : "Interface unpaused successfully");
    for (int qi = sim->state.nqueues; qi-- > 0;) {
        sim_queue *q = &sim->state.queues[qi];
        if (only.len && !sb_slice_eq(only, sb_slice_cstr(q->name)))
            continue;
        sim_member *cur = sim_queue_member(q, iface);
        if (!cur)
            continue;
        sim_member mb = *cur;
        mb.paused = paused;
        if (paused) {
            mb.last_pause = (long long)time(NULL);
            copy_value(p, "Reason", mb.reason, sizeof mb.reason);
        } else {
            mb.reason[0] = '\0';
        }
        char dev[160];
        snprintf(dev, sizeof dev, "Queue:%s_pause_%s", q->name, mb.iface);
        emit_device(sim, dev, paused ? "INUSE" : "NOT_INUSE");
        emit_member_event(sim, "QueueMemberPause", q, &mb);
    }
}

/* ---- devices, hints, variables ---- */

static const char *hint_text(int status)
{
    switch (status) {
    case 0:
        return "Idle";
    case 1:
        return "InUse";
    case 2:
        return "Busy";
    case 4:
        return "Unavailable";
    case 8:
        return "Ringing";
    case 9:
        return "InUse&Ringing";
    case 16:
        return "Hold";
    case 17:
        return "InUse&Hold";
    default:
        return "Unknown";
    }
}

static void act_extensionstatelist(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    send_listack(s, p, "Extension Statuses will follow");
    for (int i = 0; i < sim->state.nhints; i++) {
        const sim_hint *h = &sim->state.hints[i];
        ami_msg m;
        ami_msg_init(&m, "Event", "ExtensionStatus");
        add_actionid(&m, p);
        ami_msg_add(&m, "Exten", h->exten);
        ami_msg_add(&m, "Context", h->context);
        ami_msg_add(&m, "Hint", h->device);
        ami_msg_addf(&m, "Status", "%d", h->status);
        ami_msg_add(&m, "StatusText", hint_text(h->status));
        send_msg(s, &m);
    }
    send_list_complete(s, p, "ExtensionStateListComplete", sim->state.nhints);
}

static void act_extensionstate(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char exten[32], context[64];
    copy_value(p, "Exten", exten, sizeof exten);
    copy_value(p, "Context", context, sizeof context);
    if (!context[0])
        snprintf(context, sizeof context, "default");
    const sim_hint *h = NULL;
    for (int i = 0; i < sim->state.nhints; i++)
        if (strcmp(sim->state.hints[i].exten, exten) == 0 &&
            strcmp(sim->state.hints[i].context, context) == 0)
            h = &sim->state.hints[i];
    ami_msg m;
    resp_begin(&m, p, "Success");
    ami_msg_add(&m, "Message", "Extension Status");
    ami_msg_add(&m, "Exten", exten);
    ami_msg_add(&m, "Context", context);
    ami_msg_add(&m, "Hint", h ? h->device : "");
    ami_msg_addf(&m, "Status", "%d", h ? h->status : -1);
    ami_msg_add(&m, "StatusText", h ? hint_text(h->status) : "Unknown");
    send_msg(s, &m);
}

static void act_devicestatelist(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    send_listack(s, p, "Device State Changes will follow");
    for (int i = 0; i < sim->state.ndevices; i++) {
        ami_msg m;
        ami_msg_init(&m, "Event", "DeviceStateChange");
        add_actionid(&m, p);
        ami_msg_add(&m, "Device", sim->state.devices[i].name);
        ami_msg_add(&m, "State", sim->state.devices[i].state);
        send_msg(s, &m);
    }
    send_list_complete(s, p, "DeviceStateListComplete", sim->state.ndevices);
}

static void act_getvar(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    if (!has_value(p, "Variable")) {
        send_error(s, p, "No variable specified");
        return;
    }
    const sim_channel *c = NULL;
    if (has_value(p, "Channel")) {
        c = sim_state_channel(&sim->state, ami_packet_value(p, "Channel"));
        if (!c) {
            send_error(s, p, "No such channel");
            return;
        }
    }
    sb_slice var = ami_packet_value(p, "Variable");
    const char *value = "";
    if (c && sb_slice_eq_ci(var, "CALLERID(num)"))
        value = c->cid_num;
    else if (c && sb_slice_eq_ci(var, "CALLERID(name)"))
        value = c->cid_name;
    else if (c && sb_slice_eq_ci(var, "UNIQUEID"))
        value = c->uniqueid;
    ami_msg m;
    resp_begin(&m, p, "Success");
    ami_msg_addn(&m, "Variable", var);
    ami_msg_add(&m, "Value", value);
    send_msg(s, &m);
}

static const char *device_text(const char *state)
{
    static const char *const map[][2] = {
        {"NOT_INUSE", "Not in use"},
        {"INUSE", "In use"},
        {"BUSY", "Busy"},
        {"INVALID", "Invalid"},
        {"UNAVAILABLE", "Unavailable"},
        {"RINGING", "Ringing"},
        {"RINGINUSE", "Ring+Inuse"},
        {"ONHOLD", "On Hold"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], state) == 0)
            return map[i][1];
    return "Unknown";
}

/* PJSIPShowEndpoints (fixture 10): the recordings' endpoints 1001-1003 and the trunk. */
static void act_pjsipshowendpoints(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    static const char *const eps[] = {"1001", "1002", "1003", "carrier"};
    send_listack(s, p, "A listing of Endpoints follows, presented as EndpointList events");
    for (size_t i = 0; i < 4; i++) {
        char dev[32], contacts[96], prefix[40];
        snprintf(dev, sizeof dev, "PJSIP/%s", eps[i]);
        snprintf(prefix, sizeof prefix, "PJSIP/%s-", eps[i]);
        const sim_device *d = sim_state_device(&sim->state, dev);
        const char *state = d ? d->state : "UNKNOWN";
        bool trunk = strcmp(eps[i], "carrier") == 0;
        bool registered = strcmp(state, "UNAVAILABLE") != 0 && strcmp(state, "INVALID") != 0;
        if (trunk)
            snprintf(contacts, sizeof contacts, "carrier/sip:127.0.0.1:5070,");
        else if (registered)
            snprintf(contacts, sizeof contacts, "%s/sip:%s@127.0.0.1:5062,", eps[i], eps[i]);
        else
            contacts[0] = '\0';
        int active = 0;
        for (size_t c = 0; c < sim->state.nchans; c++)
            if (strncmp(sim->state.chans[c].name, prefix, strlen(prefix)) == 0)
                active++;
        ami_msg m;
        ami_msg_init(&m, "Event", "EndpointList");
        add_actionid(&m, p);
        ami_msg_add(&m, "ObjectType", "endpoint");
        ami_msg_add(&m, "ObjectName", eps[i]);
        ami_msg_add(&m, "Transport", "");
        ami_msg_add(&m, "Aor", eps[i]);
        ami_msg_add(&m, "Auths", trunk ? "" : eps[i]);
        ami_msg_add(&m, "OutboundAuths", "");
        ami_msg_add(&m, "Contacts", contacts);
        ami_msg_add(&m, "DeviceState", device_text(state));
        ami_msg_addf(&m, "ActiveChannels", "%d", active);
        send_msg(s, &m);
    }
    send_list_complete(s, p, "EndpointListComplete", 4);
}

/* ---- calls ---- */

static void add_var(char vars[][160], size_t *n, const char *name, sb_slice value)
{
    char v[128];
    sb_slice_copy(value, v, sizeof v);
    snprintf(vars[*n], 160, "%s=%s", name, v);
    (*n)++;
}

/* Splits `"Name" <num>`, `Name <num>` or `num` into its parts. */
static void parse_callerid(sb_slice cid, char *name, size_t nsize, char *num, size_t numsize)
{
    char buf[160];
    sb_slice_copy(cid, buf, sizeof buf);
    name[0] = num[0] = '\0';
    char *lt = strchr(buf, '<');
    char *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt) {
        *gt = '\0';
        sim_copy(num, numsize, lt + 1);
        *lt = '\0';
        char *n = buf;
        while (*n == ' ' || *n == '"')
            n++;
        size_t l = strlen(n);
        while (l && (n[l - 1] == ' ' || n[l - 1] == '"'))
            n[--l] = '\0';
        sim_copy(name, nsize, n);
    } else {
        sim_copy(num, numsize, buf);
    }
}

static bool endpoint_registered(pbxsim *sim, const char *endpoint)
{
    char dev[96];
    snprintf(dev, sizeof dev, "PJSIP/%s", endpoint);
    for (int i = 0; i < sim->state.ndevices; i++)
        if (strcmp(sim->state.devices[i].name, dev) == 0)
            return strcmp(sim->state.devices[i].state, "UNAVAILABLE") != 0 &&
                   strcmp(sim->state.devices[i].state, "INVALID") != 0;
    return false;
}

/* Picks the scenario an Originate plays, from the dialplan of the recordings. *ok tells
 * whether the call is answered (a failed sync Originate answers "Originate failed"). */
static const char *originate_plan(pbxsim *sim, const char *tech, const char *data, bool app,
                                  bool *ok, char *exten, size_t esize, char *ctx, size_t csize)
{
    exten[0] = ctx[0] = '\0';
    if (strcasecmp(tech, "Local") == 0) {
        char buf[128];
        sim_copy(buf, sizeof buf, data);
        char *slash = strchr(buf, '/');
        if (slash)
            *slash = '\0';
        char *at = strchr(buf, '@');
        if (at) {
            *at = '\0';
            sim_copy(ctx, csize, at + 1);
        } else {
            snprintf(ctx, csize, "default");
        }
        sim_copy(exten, esize, buf);
        *ok = true;
        if (strcmp(ctx, "from-internal") == 0) {
            if (strcmp(exten, "100") == 0)
                return app ? "originate-app" : "internal-call";
            if (strcmp(exten, "200") == 0)
                return "queue-call-answered";
            if (strcmp(exten, "201") == 0)
                return "queue-call-abandoned";
            if (strcmp(exten, "600") == 0)
                return "long-call";
            if (strcmp(exten, "999") == 0) {
                *ok = false;
                return "originate-busy";
            }
        }
        *ok = false;
        return "originate-nocontext";
    }
    if (strcasecmp(tech, "PJSIP") == 0) {
        sim_copy(exten, esize, data);
        if (endpoint_registered(sim, data)) {
            *ok = true;
            return "originate-phone";
        }
    }
    *ok = false;
    return "originate-unregistered";
}

static void act_originate(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char channel[128], tech[32];
    copy_value(p, "Channel", channel, sizeof channel);
    if (!channel[0]) {
        send_error(s, p, "Channel not specified");
        return;
    }
    bool app = has_value(p, "Application");
    if (!app && !has_value(p, "Exten")) {
        send_error(s, p, "Exten not specified");
        return;
    }
    if (has_value(p, "Priority")) {
        long long prio;
        if (sb_slice_to_ll(ami_packet_value(p, "Priority"), &prio) < 0) {
            send_error(s, p, "Invalid priority");
            return;
        }
    }
    char *slash = strchr(channel, '/');
    if (!slash) {
        send_error(s, p, "Invalid channel");
        return;
    }
    snprintf(tech, sizeof tech, "%.*s", (int)(slash - channel), channel);
    bool async = truthy(ami_packet_value(p, "Async"));
    bool known_tech = strcasecmp(tech, "Local") == 0 || strcasecmp(tech, "PJSIP") == 0;
    if (!known_tech && !async) {
        /* a bogus technology fails at once (fixture 06, rec-6) */
        send_error(s, p, "Originate failed");
        return;
    }
    bool ok = false;
    char exten[64], ctx[64];
    const char *scn_name =
        originate_plan(sim, tech, slash + 1, app, &ok, exten, sizeof exten, ctx, sizeof ctx);
    int err = 0;
    const scenario *scn = sim_scenario_get(sim, scn_name, &err);
    if (!scn) {
        send_error(s, p, "Originate failed");
        return;
    }
    char vars[16][160];
    size_t nv = 0;
    add_var(vars, &nv, "ORIG_CHANNEL", sb_slice_cstr(channel));
    add_var(vars, &nv, "EXTEN", sb_slice_cstr(exten));
    add_var(vars, &nv, "CONTEXT", sb_slice_cstr(ctx));
    add_var(vars, &nv, "ENDPOINT", sb_slice_cstr(exten));
    if (app) {
        add_var(vars, &nv, "APP", SB_SLICE_LIT("1"));
        add_var(vars, &nv, "ORIG_APP", ami_packet_value(p, "Application"));
        add_var(vars, &nv, "ORIG_DATA", ami_packet_value(p, "Data"));
    } else {
        add_var(vars, &nv, "ORIG_CONTEXT", ami_packet_value(p, "Context"));
        add_var(vars, &nv, "ORIG_EXTEN", ami_packet_value(p, "Exten"));
    }
    if (async) {
        add_var(vars, &nv, "ASYNC", SB_SLICE_LIT("1"));
        add_var(vars, &nv, "ACTIONID", ami_packet_value(p, "ActionID"));
    }
    if (has_value(p, "CallerID")) {
        char name[80], num[80];
        parse_callerid(ami_packet_value(p, "CallerID"), name, sizeof name, num, sizeof num);
        add_var(vars, &nv, "CALLERNUM", sb_slice_cstr(num));
        add_var(vars, &nv, "CALLERNAME", sb_slice_cstr(name));
        add_var(vars, &nv, "CALLERID", SB_SLICE_LIT("1"));
    } else {
        add_var(vars, &nv, "CALLERNUM", SB_SLICE_LIT("<unknown>"));
        add_var(vars, &nv, "CALLERNAME", SB_SLICE_LIT("<unknown>"));
        add_var(vars, &nv, "CALLERID", SB_SLICE_LIT(""));
    }
    const char *vp[16];
    for (size_t i = 0; i < nv; i++)
        vp[i] = vars[i];
    /* originate Variable: headers, in order */
    char *ov[32];
    size_t nov = 0;
    for (size_t i = 0; i < p->count && nov < 32; i++)
        if (sb_slice_eq_ci(p->headers[i].key, "Variable")) {
            ov[nov] = sb_slice_dup(p->headers[i].value);
            if (ov[nov])
                nov++;
        }
    if (async || ok)
        send_ack(s, p, "Originate successfully queued");
    sim_call *c = NULL;
    sim_call_start(sim, scn, vp, nv, (const char *const *)ov, nov, &c);
    for (size_t i = 0; i < nov; i++)
        free(ov[i]);
    if (!async && !ok)
        send_error(s, p, "Originate failed");
}

static const char *cause_text(int cause)
{
    switch (cause) {
    case 16:
        return "Normal Clearing";
    case 17:
        return "User busy";
    case 18:
        return "No user responding";
    case 19:
        return "User alerting, no answer";
    case 21:
        return "Call Rejected";
    default:
        return "Unknown";
    }
}

/* Hangs up every live channel of the call that owns `target` (or just target), newest first. */
static void hangup_call(pbxsim *sim, const char *target, int cause)
{
    sim_channel *t = sim_state_channel(&sim->state, sb_slice_cstr(target));
    if (!t)
        return;
    sim_call *owner = t->owner;
    char names[16][96];
    int n = 0;
    for (size_t i = sim->state.nchans; i-- > 0 && n < 16;) {
        const sim_channel *c = &sim->state.chans[i];
        if (c == t || (owner && c->owner == owner))
            sim_copy(names[n++], sizeof names[0], c->name);
    }
    if (owner)
        sim_call_cancel(owner); /* clears the owner pointers */
    t = sim_state_channel(&sim->state, sb_slice_cstr(target));
    ami_msg m;
    ami_msg_init(&m, "Event", "HangupRequest");
    ami_msg_add(&m, "Privilege", "call,all");
    sim_msg_channel(&m, t, "");
    ami_msg_addf(&m, "Cause", "%d", cause);
    emit_msg(sim, &m);
    for (int i = 0; i < n; i++) {
        const sim_channel *victim = sim_state_channel(&sim->state, sb_slice_cstr(names[i]));
        if (!victim)
            continue;
        ami_msg_init(&m, "Event", "Hangup");
        ami_msg_add(&m, "Privilege", "call,all");
        sim_msg_channel(&m, victim, "");
        ami_msg_addf(&m, "Cause", "%d", cause);
        ami_msg_add(&m, "Cause-txt", cause_text(cause));
        emit_msg(sim, &m); /* removes the channel from the state */
    }
}

static void act_hangup(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char channel[128];
    copy_value(p, "Channel", channel, sizeof channel);
    if (!channel[0]) {
        send_error(s, p, "No channel specified");
        return;
    }
    if (!sim_state_channel(&sim->state, sb_slice_cstr(channel))) {
        send_error(s, p, "No such channel");
        return;
    }
    long long cause = 16;
    if (has_value(p, "Cause") && sb_slice_to_ll(ami_packet_value(p, "Cause"), &cause) < 0)
        cause = 16;
    send_ack(s, p, "Channel Hungup");
    hangup_call(sim, channel, (int)cause);
}

static void act_redirect(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char channel[128];
    copy_value(p, "Channel", channel, sizeof channel);
    if (!channel[0]) {
        send_error(s, p, "Channel not specified");
        return;
    }
    sim_channel *c = sim_state_channel(&sim->state, sb_slice_cstr(channel));
    if (!c) {
        char msg[192];
        snprintf(msg, sizeof msg, "Channel does not exist: %s", channel);
        send_error(s, p, msg);
        return;
    }
    send_ack(s, p, "Redirect successful");
    char vars[3][160];
    size_t nv = 0;
    add_var(vars, &nv, "REDIRECT_CONTEXT", ami_packet_value(p, "Context"));
    add_var(vars, &nv, "REDIRECT_EXTEN", ami_packet_value(p, "Exten"));
    add_var(vars, &nv, "REDIRECT_PRIORITY", ami_packet_value(p, "Priority"));
    const char *vp[3] = {vars[0], vars[1], vars[2]};
    /* A scenario may say what the redirected call does next: NAME-redirect.scn, played with
     * the call's own variables (fixture 14); otherwise the channel just moves. */
    if (c->owner) {
        char name[160];
        snprintf(name, sizeof name, "%s-redirect", c->owner->scn->name);
        int err = 0;
        const scenario *next = sim_scenario_get(sim, name, &err);
        if (next) {
            sim_call_switch(c->owner, next, vp, nv);
            return;
        }
    }
    ami_msg m;
    ami_msg_init(&m, "Event", "Newexten");
    ami_msg_add(&m, "Privilege", "dialplan,all");
    sim_channel moved = *c;
    copy_value(p, "Context", moved.context, sizeof moved.context);
    copy_value(p, "Exten", moved.exten, sizeof moved.exten);
    moved.priority = 1;
    sim_msg_channel(&m, &moved, "");
    ami_msg_add(&m, "Extension", moved.exten);
    ami_msg_add(&m, "Application", "");
    ami_msg_add(&m, "AppData", "");
    emit_msg(sim, &m);
}

/* ---- Command ---- */

static void out_line(ami_msg *m, const char *line)
{
    ami_msg_add(m, "Output", line);
}

static void cmd_uptime(pbxsim *sim, ami_msg *m)
{
    long up = (long)(time(NULL) - sim->started);
    char line[96];
    if (up < 60)
        snprintf(line, sizeof line, "System uptime: %ld second%s", up, up == 1 ? "" : "s");
    else
        snprintf(line, sizeof line, "System uptime: %ld minute%s, %ld second%s", up / 60,
                 up / 60 == 1 ? "" : "s", up % 60, up % 60 == 1 ? "" : "s");
    out_line(m, line);
    char *colon = strchr(line, ':');
    char last[110];
    snprintf(last, sizeof last, "Last reload:%s", colon ? colon + 1 : "");
    out_line(m, last);
}

static void cmd_channels_concise(pbxsim *sim, ami_msg *m)
{
    if (sim->state.nchans == 0) {
        out_line(m, ""); /* fixture 01: an empty Output line */
        return;
    }
    for (size_t i = sim->state.nchans; i-- > 0;) {
        const sim_channel *c = &sim->state.chans[i];
        char line[600];
        snprintf(line, sizeof line, "%s!%s!%s!%d!%s!%s!%s!%s!!!3!%llu!%s!%s", c->name, c->context,
                 c->exten, c->priority, sim_state_desc(c->state), c->app, c->appdata, c->cid_num,
                 (unsigned long long)chan_age(sim, c), c->bridge, c->uniqueid);
        out_line(m, line);
    }
}

static const char *member_status_text(int status)
{
    static const char *const t[] = {"Unknown",     "Not in use", "In use",     "Busy",   "Invalid",
                                    "Unavailable", "Ringing",    "Ring+Inuse", "On Hold"};
    return status >= 0 && status < 9 ? t[status] : "Unknown";
}

static void cmd_queue_show(pbxsim *sim, ami_msg *m, const char *only)
{
    char line[512];
    for (int qi = sim->state.nqueues; qi-- > 0;) {
        const sim_queue *q = &sim->state.queues[qi];
        if (only && only[0] && strcmp(only, q->name) != 0)
            continue;
        snprintf(line, sizeof line,
                 "%s has %d calls (max unlimited) in '%s' strategy (%ds holdtime, %ds talktime), "
                 "W:0, C:%d, A:%d, SL:0.0%%, SL2:0.0%% within 0s",
                 q->name, q->calls, q->strategy, q->holdtime, q->talktime, q->completed,
                 q->abandoned);
        out_line(m, line);
        out_line(m, q->nmembers ? "   Members: " : "   No Members");
        for (int mi = q->nmembers; mi-- > 0;) {
            const sim_member *mb = &q->members[mi];
            char taken[64];
            if (mb->calls_taken)
                snprintf(taken, sizeof taken, "has taken %d calls (last was %lld secs ago)",
                         mb->calls_taken, (long long)time(NULL) - mb->last_call);
            else
                snprintf(taken, sizeof taken, "has taken no calls yet");
            snprintf(line, sizeof line, "      %s (%s from %s) (ringinuse %s) (%s)%s%s%s (%s) %s",
                     mb->name, mb->iface, mb->state_iface, mb->ringinuse ? "enabled" : "disabled",
                     mb->dynamic ? "dynamic" : "static", mb->paused ? " (paused:" : "",
                     mb->paused ? mb->reason : "", mb->paused ? ")" : "",
                     member_status_text(mb->status), taken);
            out_line(m, line);
        }
        out_line(m, q->calls ? "   Callers: " : "   No Callers");
        out_line(m, "");
    }
}

static void act_command(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char cmd[256];
    copy_value(p, "Command", cmd, sizeof cmd);
    ami_msg m;
    if (strcmp(cmd, "core show uptime") == 0) {
        resp_begin(&m, p, "Success");
        ami_msg_add(&m, "Message", "Command output follows");
        cmd_uptime(sim, &m);
    } else if (strcmp(cmd, "core show channels concise") == 0) {
        resp_begin(&m, p, "Success");
        ami_msg_add(&m, "Message", "Command output follows");
        cmd_channels_concise(sim, &m);
    } else if (strcmp(cmd, "queue show") == 0 || strncmp(cmd, "queue show ", 11) == 0) {
        resp_begin(&m, p, "Success");
        ami_msg_add(&m, "Message", "Command output follows");
        cmd_queue_show(sim, &m, cmd[10] ? cmd + 11 : NULL);
    } else if (strcmp(cmd, "core show version") == 0) {
        resp_begin(&m, p, "Success");
        ami_msg_add(&m, "Message", "Command output follows");
        out_line(&m, "Asterisk 22.10.1 built by pbxsim");
    } else {
        char line[600];
        snprintf(line, sizeof line,
                 "No such command '%s' (type 'core show help %s' for other possible commands)", cmd,
                 cmd);
        resp_begin(&m, p, "Error");
        ami_msg_add(&m, "Message", "Command output follows");
        out_line(&m, line);
    }
    send_msg(s, &m);
}

/* Simulator-only: the raw streaming mode on request of the client itself. */
static void act_stream(sim_session *s, const ami_packet *p)
{
    long long count = 0;
    if (sb_slice_to_ll(ami_packet_value(p, "Count"), &count) < 0 || count < 0) {
        send_error(s, p, "Count must be a number");
        return;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "Streaming %lld events", count);
    send_ack(s, p, msg);
    if (sim_session_stream(s, (uint64_t)count) < 0)
        sim_session_close(s, true);
}

/* ---- dispatch ---- */

typedef struct action_def {
    const char *name;
    uint32_t authority;
    void (*fn)(sim_session *s, const ami_packet *p);
} action_def;

#define SYS SIM_CLASS_SYSTEM
#define CALL SIM_CLASS_CALL
#define REP SIM_CLASS_REPORTING

static const action_def actions[] = {
    {"Login", 0, act_login},
    {"Logoff", 0, act_logoff},
    {"Challenge", 0, act_challenge},
    {"Ping", 0, act_ping},
    {"Events", 0, act_events},
    {"Filter", SYS, act_filter},
    {"CoreSettings", SYS | REP, act_coresettings},
    {"CoreStatus", SYS | REP, act_corestatus},
    {"CoreShowChannels", SYS | REP, act_coreshowchannels},
    {"Status", SYS | CALL | REP, act_status},
    {"QueueStatus", 0, act_queuestatus},
    {"QueueSummary", 0, act_queuesummary},
    {"QueueAdd", SIM_CLASS_AGENT, act_queueadd},
    {"QueueRemove", SIM_CLASS_AGENT, act_queueremove},
    {"QueuePause", SIM_CLASS_AGENT, act_queuepause},
    {"ExtensionStateList", CALL | REP, act_extensionstatelist},
    {"ExtensionState", CALL | REP, act_extensionstate},
    {"DeviceStateList", CALL | REP, act_devicestatelist},
    {"PJSIPShowEndpoints", SYS, act_pjsipshowendpoints},
    {"Getvar", CALL | REP, act_getvar},
    {"Originate", SIM_CLASS_ORIGINATE, act_originate},
    {"Redirect", CALL, act_redirect},
    {"Hangup", SYS | CALL, act_hangup},
    {"Command", SIM_CLASS_COMMAND, act_command},
    {"PbxsimStream", 0, act_stream},
};

static void emit_bad_format(sim_session *s, sb_slice action)
{
    pbxsim *sim = s->sim;
    char tv[40];
    session_tv_now(tv, sizeof tv);
    ami_msg m;
    ami_msg_init(&m, "Event", "RequestBadFormat");
    ami_msg_add(&m, "Privilege", "security,all");
    ami_msg_add(&m, "EventTV", tv);
    ami_msg_add(&m, "Severity", "Error");
    ami_msg_add(&m, "Service", "AMI");
    ami_msg_add(&m, "EventVersion", "1");
    ami_msg_addf(&m, "SessionID", "0x%llx", (unsigned long long)(0x7feb00000000ull + s->id));
    ami_msg_addf(&m, "LocalAddress", "IPV4/TCP/%s/%d", sim->host, sim->port);
    ami_msg_add(&m, "RemoteAddress", s->remote);
    ami_msg_addf(&m, "RequestType", "Action: %.*s", (int)action.len, action.ptr);
    ami_msg_add(&m, "SessionTV", s->session_tv);
    ami_msg_add(&m, "AccountID", s->user ? s->user->username : "");
    emit_msg(sim, &m);
}

void sim_action(sim_session *s, const ami_packet *p)
{
    const sb_slice *name = ami_packet_get(p, "Action");
    if (!name || name->len == 0) {
        send_error(s, p, "Missing action in request");
        return;
    }
    const action_def *def = NULL;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (sb_slice_eq_ci(*name, actions[i].name)) {
            def = &actions[i];
            break;
        }
    /* only Login, Logoff and Challenge before authentication (manager.c) */
    if (!s->authed &&
        !(def && (def->fn == act_login || def->fn == act_logoff || def->fn == act_challenge))) {
        s->sim->stats.denied++;
        send_error(s, p, "Permission denied");
        return;
    }
    if (!def) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Invalid/unknown command: %.*s. Use Action: ListCommands to show available "
                 "commands.",
                 (int)(name->len > 100 ? 100 : name->len), name->ptr);
        send_error(s, p, msg);
        emit_bad_format(s, *name);
        return;
    }
    if (def->authority && s->user && !(s->user->write & def->authority)) {
        s->sim->stats.denied++;
        send_error(s, p, "Permission denied");
        return;
    }
    def->fn(s, p);
}
