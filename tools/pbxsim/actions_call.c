/* actions_call.c: actions about channels, devices and hints: Originate (which scenario a
 * Channel plays, fixtures 05-08, 10, 14, 15), Hangup, Redirect, Getvar, ExtensionState(List),
 * DeviceStateList, PJSIPShowEndpoints. */
#include "internal.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

void sim_act_extensionstatelist(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    sim_send_listack(s, p, "Extension Statuses will follow");
    for (int i = 0; i < sim->state.nhints; i++) {
        const sim_hint *h = &sim->state.hints[i];
        ami_msg m;
        ami_msg_init(&m, "Event", "ExtensionStatus");
        sim_add_actionid(&m, p);
        ami_msg_add(&m, "Exten", h->exten);
        ami_msg_add(&m, "Context", h->context);
        ami_msg_add(&m, "Hint", h->device);
        ami_msg_addf(&m, "Status", "%d", h->status);
        ami_msg_add(&m, "StatusText", hint_text(h->status));
        sim_send_msg(s, &m);
    }
    sim_send_list_complete(s, p, "ExtensionStateListComplete", sim->state.nhints);
}

void sim_act_extensionstate(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char exten[32], context[64];
    sim_copy_value(p, "Exten", exten, sizeof exten);
    sim_copy_value(p, "Context", context, sizeof context);
    if (!context[0])
        snprintf(context, sizeof context, "default");
    const sim_hint *h = NULL;
    for (int i = 0; i < sim->state.nhints; i++)
        if (strcmp(sim->state.hints[i].exten, exten) == 0 &&
            strcmp(sim->state.hints[i].context, context) == 0)
            h = &sim->state.hints[i];
    ami_msg m;
    sim_resp_begin(&m, p, "Success");
    ami_msg_add(&m, "Message", "Extension Status");
    ami_msg_add(&m, "Exten", exten);
    ami_msg_add(&m, "Context", context);
    ami_msg_add(&m, "Hint", h ? h->device : "");
    ami_msg_addf(&m, "Status", "%d", h ? h->status : -1);
    ami_msg_add(&m, "StatusText", h ? hint_text(h->status) : "Unknown");
    sim_send_msg(s, &m);
}

void sim_act_devicestatelist(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    sim_send_listack(s, p, "Device State Changes will follow");
    for (int i = 0; i < sim->state.ndevices; i++) {
        ami_msg m;
        ami_msg_init(&m, "Event", "DeviceStateChange");
        sim_add_actionid(&m, p);
        ami_msg_add(&m, "Device", sim->state.devices[i].name);
        ami_msg_add(&m, "State", sim->state.devices[i].state);
        sim_send_msg(s, &m);
    }
    sim_send_list_complete(s, p, "DeviceStateListComplete", sim->state.ndevices);
}

void sim_act_getvar(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    if (!sim_has_value(p, "Variable")) {
        sim_send_error(s, p, "No variable specified");
        return;
    }
    const sim_channel *c = NULL;
    if (sim_has_value(p, "Channel")) {
        c = sim_state_channel(&sim->state, ami_packet_value(p, "Channel"));
        if (!c) {
            sim_send_error(s, p, "No such channel");
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
    sim_resp_begin(&m, p, "Success");
    ami_msg_addn(&m, "Variable", var);
    ami_msg_add(&m, "Value", value);
    sim_send_msg(s, &m);
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
void sim_act_pjsipshowendpoints(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    static const char *const eps[] = {"1001", "1002", "1003", "carrier"};
    sim_send_listack(s, p, "A listing of Endpoints follows, presented as EndpointList events");
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
        for (size_t c = 0; c < sim->state.nslots; c++)
            if (sim->state.chans[c] &&
                strncmp(sim->state.chans[c]->name, prefix, strlen(prefix)) == 0)
                active++;
        ami_msg m;
        ami_msg_init(&m, "Event", "EndpointList");
        sim_add_actionid(&m, p);
        ami_msg_add(&m, "ObjectType", "endpoint");
        ami_msg_add(&m, "ObjectName", eps[i]);
        ami_msg_add(&m, "Transport", "");
        ami_msg_add(&m, "Aor", eps[i]);
        ami_msg_add(&m, "Auths", trunk ? "" : eps[i]);
        ami_msg_add(&m, "OutboundAuths", "");
        ami_msg_add(&m, "Contacts", contacts);
        ami_msg_add(&m, "DeviceState", device_text(state));
        ami_msg_addf(&m, "ActiveChannels", "%d", active);
        sim_send_msg(s, &m);
    }
    sim_send_list_complete(s, p, "EndpointListComplete", 4);
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

void sim_act_originate(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char channel[128], tech[32];
    sim_copy_value(p, "Channel", channel, sizeof channel);
    if (!channel[0]) {
        sim_send_error(s, p, "Channel not specified");
        return;
    }
    bool app = sim_has_value(p, "Application");
    if (!app && !sim_has_value(p, "Exten")) {
        sim_send_error(s, p, "Exten not specified");
        return;
    }
    if (sim_has_value(p, "Priority")) {
        long long prio;
        if (sb_slice_to_ll(ami_packet_value(p, "Priority"), &prio) < 0) {
            sim_send_error(s, p, "Invalid priority");
            return;
        }
    }
    char *slash = strchr(channel, '/');
    if (!slash) {
        sim_send_error(s, p, "Invalid channel");
        return;
    }
    snprintf(tech, sizeof tech, "%.*s", (int)(slash - channel), channel);
    bool async = sim_truthy(ami_packet_value(p, "Async"));
    bool known_tech = strcasecmp(tech, "Local") == 0 || strcasecmp(tech, "PJSIP") == 0;
    if (!known_tech && !async) {
        /* a bogus technology fails at once (fixture 06, rec-6) */
        sim_send_error(s, p, "Originate failed");
        return;
    }
    bool ok = false;
    char exten[64], ctx[64];
    const char *scn_name =
        originate_plan(sim, tech, slash + 1, app, &ok, exten, sizeof exten, ctx, sizeof ctx);
    int err = 0;
    const scenario *scn = sim_scenario_get(sim, scn_name, &err);
    if (!scn) {
        sim_send_error(s, p, "Originate failed");
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
    if (sim_has_value(p, "CallerID")) {
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
        sim_send_ack(s, p, "Originate successfully queued");
    sim_call *c = NULL;
    sim_call_start(sim, scn, vp, nv, (const char *const *)ov, nov, &c);
    for (size_t i = 0; i < nov; i++)
        free(ov[i]);
    if (!async && !ok)
        sim_send_error(s, p, "Originate failed");
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
    sim_call *owner = sim_call_find(sim, t->owner_id);
    char names[16][96];
    int n = 0;
    for (size_t i = sim->state.nslots; i-- > 0 && n < 16;) {
        const sim_channel *c = sim->state.chans[i];
        if (c && (c == t || (owner && c->owner_id == owner->id)))
            sim_copy(names[n++], sizeof names[0], c->name);
    }
    if (owner)
        sim_call_cancel(owner);
    t = sim_state_channel(&sim->state, sb_slice_cstr(target));
    ami_msg m;
    ami_msg_init(&m, "Event", "HangupRequest");
    ami_msg_add(&m, "Privilege", "call,all");
    sim_msg_channel(&m, t, "");
    ami_msg_addf(&m, "Cause", "%d", cause);
    sim_emit_msg(sim, &m);
    for (int i = 0; i < n; i++) {
        const sim_channel *victim = sim_state_channel(&sim->state, sb_slice_cstr(names[i]));
        if (!victim)
            continue;
        ami_msg_init(&m, "Event", "Hangup");
        ami_msg_add(&m, "Privilege", "call,all");
        sim_msg_channel(&m, victim, "");
        ami_msg_addf(&m, "Cause", "%d", cause);
        ami_msg_add(&m, "Cause-txt", cause_text(cause));
        sim_emit_msg(sim, &m); /* removes the channel from the state */
    }
}

void sim_act_hangup(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char channel[128];
    sim_copy_value(p, "Channel", channel, sizeof channel);
    if (!channel[0]) {
        sim_send_error(s, p, "No channel specified");
        return;
    }
    if (!sim_state_channel(&sim->state, sb_slice_cstr(channel))) {
        sim_send_error(s, p, "No such channel");
        return;
    }
    long long cause = 16;
    if (sim_has_value(p, "Cause") && sb_slice_to_ll(ami_packet_value(p, "Cause"), &cause) < 0)
        cause = 16;
    sim_send_ack(s, p, "Channel Hungup");
    hangup_call(sim, channel, (int)cause);
}

void sim_act_redirect(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    char channel[128];
    sim_copy_value(p, "Channel", channel, sizeof channel);
    if (!channel[0]) {
        sim_send_error(s, p, "Channel not specified");
        return;
    }
    sim_channel *c = sim_state_channel(&sim->state, sb_slice_cstr(channel));
    if (!c) {
        char msg[192];
        snprintf(msg, sizeof msg, "Channel does not exist: %s", channel);
        sim_send_error(s, p, msg);
        return;
    }
    sim_send_ack(s, p, "Redirect successful");
    char vars[3][160];
    size_t nv = 0;
    add_var(vars, &nv, "REDIRECT_CONTEXT", ami_packet_value(p, "Context"));
    add_var(vars, &nv, "REDIRECT_EXTEN", ami_packet_value(p, "Exten"));
    add_var(vars, &nv, "REDIRECT_PRIORITY", ami_packet_value(p, "Priority"));
    const char *vp[3] = {vars[0], vars[1], vars[2]};
    /* A scenario may say what the redirected call does next: NAME-redirect.scn, played with
     * the call's own variables (fixture 14); otherwise the channel just moves. */
    sim_call *owner = sim_call_find(sim, c->owner_id);
    if (owner) {
        char name[160];
        snprintf(name, sizeof name, "%s-redirect", owner->scn->name);
        int err = 0;
        const scenario *next = sim_scenario_get(sim, name, &err);
        if (next) {
            sim_call_switch(owner, next, vp, nv);
            return;
        }
    }
    ami_msg m;
    ami_msg_init(&m, "Event", "Newexten");
    ami_msg_add(&m, "Privilege", "dialplan,all");
    sim_channel moved = *c;
    sim_copy_value(p, "Context", moved.context, sizeof moved.context);
    sim_copy_value(p, "Exten", moved.exten, sizeof moved.exten);
    moved.priority = 1;
    sim_msg_channel(&m, &moved, "");
    ami_msg_add(&m, "Extension", moved.exten);
    ami_msg_add(&m, "Application", "");
    ami_msg_add(&m, "AppData", "");
    sim_emit_msg(sim, &m);
}
