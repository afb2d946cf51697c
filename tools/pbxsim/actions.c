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

void sim_copy_value(const ami_packet *p, const char *key, char *dst, size_t size)
{
    sb_slice v = ami_packet_value(p, key);
    sb_slice_copy(v, dst, size);
}

bool sim_has_value(const ami_packet *p, const char *key)
{
    return ami_packet_value(p, key).len > 0;
}

void sim_add_actionid(ami_msg *m, const ami_packet *p)
{
    /* echoed only when the action carried a non-empty one (manager.c's idText) */
    const sb_slice *id = ami_packet_get(p, "ActionID");
    if (id && id->len)
        ami_msg_addn(m, "ActionID", *id);
}

void sim_resp_begin(ami_msg *m, const ami_packet *p, const char *status)
{
    ami_msg_init(m, "Response", status);
    sim_add_actionid(m, p);
}

void sim_send_msg(sim_session *s, ami_msg *m)
{
    const char *data;
    size_t len;
    if (ami_msg_finish(m, &data, &len) == 0)
        sim_send(s, data, len);
    ami_msg_free(m);
}

void sim_emit_msg(pbxsim *sim, ami_msg *m)
{
    const char *data;
    size_t len;
    if (ami_msg_finish(m, &data, &len) == 0)
        sim_emit(sim, data, len);
    ami_msg_free(m);
}

void sim_send_simple(sim_session *s, const ami_packet *p, const char *status, const char *msg)
{
    ami_msg m;
    sim_resp_begin(&m, p, status);
    ami_msg_add(&m, "Message", msg);
    sim_send_msg(s, &m);
}

void sim_send_error(sim_session *s, const ami_packet *p, const char *msg)
{
    sim_send_simple(s, p, "Error", msg);
}

void sim_send_ack(sim_session *s, const ami_packet *p, const char *msg)
{
    sim_send_simple(s, p, "Success", msg);
}

void sim_send_listack(sim_session *s, const ami_packet *p, const char *msg)
{
    ami_msg m;
    sim_resp_begin(&m, p, "Success");
    ami_msg_add(&m, "EventList", "start");
    ami_msg_add(&m, "Message", msg);
    sim_send_msg(s, &m);
}

void sim_send_list_complete(sim_session *s, const ami_packet *p, const char *event, int items)
{
    ami_msg m;
    ami_msg_init(&m, "Event", event);
    sim_add_actionid(&m, p);
    ami_msg_add(&m, "EventList", "Complete");
    ami_msg_addf(&m, "ListItems", "%d", items);
    sim_send_msg(s, &m);
}

bool sim_truthy(sb_slice v)
{
    return sb_slice_eq_ci(v, "true") || sb_slice_eq_ci(v, "yes") || sb_slice_eq_ci(v, "1") ||
           sb_slice_eq_ci(v, "on");
}

uint64_t sim_chan_age(const pbxsim *sim, const sim_channel *c)
{
    return (sim_now_ms(sim) - c->created_ms) / 1000;
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
    sim_copy_value(p, "Username", user, sizeof user);
    sim_copy_value(p, "Secret", secret, sizeof secret);
    sim_copy_value(p, "Key", key, sizeof key);
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
        sim_send_error(s, p, "Authentication failed");
        sim_session_close(s, true);
        return;
    }
    sim->stats.logins_ok++;
    s->authed = true;
    s->user = u;
    const sb_slice *ev = ami_packet_get(p, "Events");
    s->event_mask = ev ? sim_class_parse(*ev) : SIM_CLASS_ALL;
    session_tv_now(s->session_tv, sizeof s->session_tv);
    sim_send_ack(s, p, "Authentication accepted");
    if (u->read & s->event_mask & SIM_CLASS_SYSTEM) {
        /* sent to this session only, right after the login answer (fixture 05) */
        long up = (long)(time(NULL) - sim->started);
        ami_msg m;
        ami_msg_init(&m, "Event", "FullyBooted");
        ami_msg_add(&m, "Privilege", "system,all");
        ami_msg_addf(&m, "Uptime", "%ld", up);
        ami_msg_addf(&m, "LastReload", "%ld", up);
        ami_msg_add(&m, "Status", "Fully Booted");
        sim_send_msg(s, &m);
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
    sim_emit_msg(sim, &m);
}

static void act_challenge(sim_session *s, const ami_packet *p)
{
    if (!ami_packet_is(p, "AuthType", "MD5")) {
        sim_send_error(s, p, "Must specify AuthType");
        return;
    }
    if (!s->challenge[0])
        snprintf(s->challenge, sizeof s->challenge, "%09ld", (long)(random() % 1000000000L));
    ami_msg m;
    sim_resp_begin(&m, p, "Success");
    ami_msg_add(&m, "Challenge", s->challenge);
    sim_send_msg(s, &m);
}

static void act_logoff(sim_session *s, const ami_packet *p)
{
    sim_send_simple(s, p, "Goodbye", "Thanks for all the fish.");
    sim_session_close(s, true);
}

static void act_ping(sim_session *s, const ami_packet *p)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    ami_msg m;
    sim_resp_begin(&m, p, "Success");
    ami_msg_add(&m, "Ping", "Pong");
    ami_msg_addf(&m, "Timestamp", "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    sim_send_msg(s, &m);
}

static void act_events(sim_session *s, const ami_packet *p)
{
    const sb_slice *mask = ami_packet_get(p, "EventMask");
    if (!mask) {
        sim_send_error(s, p, "Invalid event mask");
        return;
    }
    s->event_mask = sim_class_parse(*mask);
    ami_msg m;
    sim_resp_begin(&m, p, "Success");
    ami_msg_add(&m, "Events", s->event_mask ? "On" : "Off");
    sim_send_msg(s, &m);
}

static void act_filter(sim_session *s, const ami_packet *p)
{
    char filter[512];
    if (!ami_packet_is(p, "Operation", "Add")) {
        sim_send_error(s, p, "Unknown operation");
        return;
    }
    sim_copy_value(p, "Filter", filter, sizeof filter);
    if (!filter[0]) {
        sim_send_error(s, p, "No filter specified");
        return;
    }
    if (s->nfilters == SIM_MAX_FILTERS) {
        sim_send_error(s, p, "Allocation failure");
        return;
    }
    bool exclude = filter[0] == '!';
    if (regcomp(&s->filters[s->nfilters], filter + (exclude ? 1 : 0), REG_EXTENDED | REG_NOSUB)) {
        sim_send_error(s, p, "Filter did not compile");
        return;
    }
    s->filter_exclude[s->nfilters++] = exclude;
    sim_send_ack(s, p, "Success");
}

/* ---- core ---- */

static void act_coresettings(sim_session *s, const ami_packet *p)
{
    ami_msg m;
    sim_resp_begin(&m, p, "Success");
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
    sim_send_msg(s, &m);
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
    sim_resp_begin(&m, p, "Success");
    ami_msg_add(&m, "CoreStartupDate", d);
    ami_msg_add(&m, "CoreStartupTime", t);
    ami_msg_add(&m, "CoreReloadDate", d);
    ami_msg_add(&m, "CoreReloadTime", t);
    ami_msg_addf(&m, "CoreCurrentCalls", "%d", active_calls(sim));
    ami_msg_addf(&m, "CoreProcessedCalls", "%llu", (unsigned long long)sim->stats.calls_started);
    sim_send_msg(s, &m);
}

static void fmt_duration(uint64_t secs, char *buf, size_t size)
{
    snprintf(buf, size, "%02llu:%02llu:%02llu", (unsigned long long)(secs / 3600),
             (unsigned long long)(secs / 60 % 60), (unsigned long long)(secs % 60));
}

static void act_coreshowchannels(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    sim_send_listack(s, p, "Channels will follow");
    int n = 0;
    for (size_t i = sim->state.nslots; i-- > 0;) {
        const sim_channel *c = sim->state.chans[i];
        if (!c)
            continue;
        char dur[32];
        fmt_duration(sim_chan_age(sim, c), dur, sizeof dur);
        ami_msg m;
        ami_msg_init(&m, "Event", "CoreShowChannel");
        sim_add_actionid(&m, p);
        sim_msg_channel(&m, c, "");
        ami_msg_add(&m, "Application", c->app);
        ami_msg_add(&m, "ApplicationData", c->appdata);
        ami_msg_add(&m, "Duration", dur);
        ami_msg_add(&m, "BridgeId", c->bridge);
        sim_send_msg(s, &m);
        n++;
    }
    sim_send_list_complete(s, p, "CoreShowChannelsComplete", n);
}

static void act_status(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    sb_slice only = ami_packet_value(p, "Channel");
    if (only.len && !sim_state_channel(&sim->state, only)) {
        sim_send_error(s, p, "No such channel");
        return;
    }
    sim_send_listack(s, p, "Channel status will follow");
    int n = 0;
    for (size_t i = sim->state.nslots; i-- > 0;) {
        const sim_channel *c = sim->state.chans[i];
        if (!c)
            continue;
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
        ami_msg_addf(&m, "Seconds", "%llu", (unsigned long long)sim_chan_age(sim, c));
        sim_add_actionid(&m, p);
        sim_send_msg(s, &m);
        n++;
    }
    ami_msg m;
    ami_msg_init(&m, "Event", "StatusComplete");
    sim_add_actionid(&m, p);
    ami_msg_add(&m, "EventList", "Complete");
    ami_msg_addf(&m, "ListItems", "%d", n);
    ami_msg_addf(&m, "Items", "%d", n);
    sim_send_msg(s, &m);
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
    for (size_t i = sim->state.nslots; i-- > 0;) {
        const sim_channel *c = sim->state.chans[i];
        if (!c)
            continue;
        char line[600];
        snprintf(line, sizeof line, "%s!%s!%s!%d!%s!%s!%s!%s!!!3!%llu!%s!%s", c->name, c->context,
                 c->exten, c->priority, sim_state_desc(c->state), c->app, c->appdata, c->cid_num,
                 (unsigned long long)sim_chan_age(sim, c), c->bridge, c->uniqueid);
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
    sim_copy_value(p, "Command", cmd, sizeof cmd);
    ami_msg m;
    if (strcmp(cmd, "core show uptime") == 0) {
        sim_resp_begin(&m, p, "Success");
        ami_msg_add(&m, "Message", "Command output follows");
        cmd_uptime(sim, &m);
    } else if (strcmp(cmd, "core show channels concise") == 0) {
        sim_resp_begin(&m, p, "Success");
        ami_msg_add(&m, "Message", "Command output follows");
        cmd_channels_concise(sim, &m);
    } else if (strcmp(cmd, "queue show") == 0 || strncmp(cmd, "queue show ", 11) == 0) {
        sim_resp_begin(&m, p, "Success");
        ami_msg_add(&m, "Message", "Command output follows");
        cmd_queue_show(sim, &m, cmd[10] ? cmd + 11 : NULL);
    } else if (strcmp(cmd, "core show version") == 0) {
        sim_resp_begin(&m, p, "Success");
        ami_msg_add(&m, "Message", "Command output follows");
        out_line(&m, "Asterisk 22.10.1 built by pbxsim");
    } else {
        char line[600];
        snprintf(line, sizeof line,
                 "No such command '%s' (type 'core show help %s' for other possible commands)", cmd,
                 cmd);
        sim_resp_begin(&m, p, "Error");
        ami_msg_add(&m, "Message", "Command output follows");
        out_line(&m, line);
    }
    sim_send_msg(s, &m);
}

/* Simulator-only: the raw streaming mode on request of the client itself. */
static void act_stream(sim_session *s, const ami_packet *p)
{
    long long count = 0;
    if (sb_slice_to_ll(ami_packet_value(p, "Count"), &count) < 0 || count < 0) {
        sim_send_error(s, p, "Count must be a number");
        return;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "Streaming %lld events", count);
    sim_send_ack(s, p, msg);
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
    {"QueueStatus", 0, sim_act_queuestatus},
    {"QueueSummary", 0, sim_act_queuesummary},
    {"QueueAdd", SIM_CLASS_AGENT, sim_act_queueadd},
    {"QueueRemove", SIM_CLASS_AGENT, sim_act_queueremove},
    {"QueuePause", SIM_CLASS_AGENT, sim_act_queuepause},
    {"ExtensionStateList", CALL | REP, sim_act_extensionstatelist},
    {"ExtensionState", CALL | REP, sim_act_extensionstate},
    {"DeviceStateList", CALL | REP, sim_act_devicestatelist},
    {"PJSIPShowEndpoints", SYS, sim_act_pjsipshowendpoints},
    {"Getvar", CALL | REP, sim_act_getvar},
    {"Originate", SIM_CLASS_ORIGINATE, sim_act_originate},
    {"Redirect", CALL, sim_act_redirect},
    {"Hangup", SYS | CALL, sim_act_hangup},
    {"Command", SIM_CLASS_COMMAND, act_command},
    {"AGI", SIM_CLASS_AGI, sim_act_agi},
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
    sim_emit_msg(sim, &m);
}

void sim_action(sim_session *s, const ami_packet *p)
{
    const sb_slice *name = ami_packet_get(p, "Action");
    if (!name || name->len == 0) {
        sim_send_error(s, p, "Missing action in request");
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
        sim_send_error(s, p, "Permission denied");
        return;
    }
    if (!def) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Invalid/unknown command: %.*s. Use Action: ListCommands to show available "
                 "commands.",
                 (int)(name->len > 100 ? 100 : name->len), name->ptr);
        sim_send_error(s, p, msg);
        emit_bad_format(s, *name);
        return;
    }
    if (def->authority && s->user && !(s->user->write & def->authority)) {
        s->sim->stats.denied++;
        sim_send_error(s, p, "Permission denied");
        return;
    }
    def->fn(s, p);
}
