/* asyncagi.c: AsyncAGI on the simulator's AMI server, as fixture 11-asyncagi.ami records it:
 * AsyncAGIStart with the URL-encoded agi_* header in Env; each `Action: AGI` answered
 * "Added AGI command to queue", then its result as AsyncAGIExec (Result URL-encoded, CommandId
 * echoed); ASYNCAGI BREAK or the caller hanging up ends with AsyncAGIEnd. Commands are answered
 * by the same responder as FastAGI (agi_client.c).
 *
 * The channels in AsyncAGI live in a list of this file (keyed by simulator), so the simulator's
 * own structures need no field for them; everything runs on the simulator's loop thread.
 */
#include "agi_client.h"
#include "internal.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct async_chan {
    pbxsim *sim;
    char name[96];
    char uniqueid[48];
    pbxsim_agi_call call;
    pbxsim_agi_chan ch;
    pbxsim_agi_done_cb done;
    void *ud;
    uint64_t t0;
    struct async_chan *next;
} async_chan;

static async_chan *async_chans;
static unsigned async_seq;

/* ast_uri_encode() with the HTTP rules: unreserved characters stay, the rest is %XX. */
static int uri_encode(const char *p, size_t n, sb_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-_.!~*'()", ch)) {
            rc = sb_buf_append(out, p + i, 1);
        } else {
            char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            rc = sb_buf_append(out, esc, 3);
        }
    }
    return rc;
}

static void add_common(ami_msg *m, const async_chan *a)
{
    const pbxsim_agi_call *k = &a->call;
    ami_msg_add(m, "Privilege", "agi,all");
    ami_msg_add(m, "Channel", a->name);
    ami_msg_add(m, "ChannelState", "6");
    ami_msg_add(m, "ChannelStateDesc", "Up");
    ami_msg_add(m, "CallerIDNum", k->callerid ? k->callerid : "300");
    ami_msg_add(m, "CallerIDName", k->calleridname ? k->calleridname : "Sim Caller");
    ami_msg_add(m, "Language", "en");
    ami_msg_add(m, "Context", "from-internal");
    ami_msg_add(m, "Exten", k->extension ? k->extension : "100");
    ami_msg_add(m, "Priority", "2");
    ami_msg_add(m, "Uniqueid", a->uniqueid);
    ami_msg_add(m, "Linkedid", a->uniqueid);
}

static void async_end(async_chan *a, int status)
{
    ami_msg m;
    ami_msg_init(&m, "Event", "AsyncAGIEnd");
    add_common(&m, a);
    sim_emit_msg(a->sim, &m);
    for (async_chan **pp = &async_chans; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    pbxsim_agi_result res = {.status = status,
                             .commands = a->ch.commands,
                             .ncommands = a->ch.ncommands,
                             .count = a->ch.count,
                             .is_hung_up = a->ch.is_hung_up,
                             .elapsed_ns = uv_hrtime() - a->t0};
    a->done(&res, a->ud);
    pbxsim_agi_chan_free(&a->ch);
    free(a);
}

int pbxsim_asyncagi_start(pbxsim *sim, const pbxsim_agi_call *call, pbxsim_agi_done_cb done,
                          void *ud)
{
    async_chan *a = calloc(1, sizeof *a);
    sb_buf env, enc;
    if (!a)
        return SB_ENOMEM;
    a->sim = sim;
    a->call = *call;
    a->ch.call = &a->call;
    a->done = done;
    a->ud = ud;
    a->t0 = uv_hrtime();
    unsigned n = ++async_seq;
    const char *ext = call->extension ? call->extension : "100";
    if (call->channel)
        snprintf(a->name, sizeof a->name, "%s", call->channel);
    else
        snprintf(a->name, sizeof a->name, "Local/%s@from-internal-%08x;2", ext, n);
    sim_new_uniqueid(sim, a->uniqueid, sizeof a->uniqueid);
    sb_buf_init(&env, 8192);
    sb_buf_init(&enc, 32768);
    int rc = sb_buf_printf(
        &env,
        "agi_request: async\nagi_channel: %s\nagi_language: en\nagi_type: Local\n"
        "agi_uniqueid: %s\nagi_version: 22.10.1\nagi_callerid: %s\nagi_calleridname: %s\n"
        "agi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\n"
        "agi_dnid: unknown\nagi_rdnis: unknown\nagi_context: from-internal\nagi_extension: %s\n"
        "agi_priority: 2\nagi_enhanced: 0.0\nagi_accountcode: \n"
        "agi_threadid: 140650091218624\n",
        a->name, a->uniqueid, call->callerid ? call->callerid : "300",
        call->calleridname ? call->calleridname : "Sim Caller", ext);
    /* AGI(agi:async,SCRIPT): the argument names the route set. */
    if (rc == 0 && call->script)
        rc = sb_buf_printf(&env, "agi_arg_1: %s\n", call->script);
    if (rc == 0)
        rc = sb_buf_puts(&env, "\n");
    if (rc == 0)
        rc = uri_encode(env.data, env.len, &enc);
    if (rc < 0) {
        sb_buf_free(&env);
        sb_buf_free(&enc);
        free(a);
        return rc;
    }
    a->next = async_chans;
    async_chans = a;
    ami_msg m;
    ami_msg_init(&m, "Event", "AsyncAGIStart");
    add_common(&m, a);
    ami_msg_add(&m, "Env", enc.data);
    sim_emit_msg(sim, &m);
    sb_buf_free(&env);
    sb_buf_free(&enc);
    return 0;
}

size_t pbxsim_asyncagi_active(const pbxsim *sim)
{
    size_t n = 0;
    for (async_chan *a = async_chans; a; a = a->next)
        n += a->sim == sim;
    return n;
}

void sim_act_agi(sim_session *s, const ami_packet *p)
{
    char chan[128], cmdid[64];
    sim_copy_value(p, "Channel", chan, sizeof chan);
    sim_copy_value(p, "CommandID", cmdid, sizeof cmdid);
    sb_slice cmd = ami_packet_value(p, "Command");
    async_chan *a = async_chans;
    while (a && !(a->sim == s->sim && strcmp(a->name, chan) == 0))
        a = a->next;
    if (!a) {
        char msg[200];
        snprintf(msg, sizeof msg, "Channel %s does not exist.", chan);
        sim_send_error(s, p, msg);
        return;
    }
    if (!cmd.ptr || cmd.len == 0) {
        sim_send_error(s, p, "No command specified");
        return;
    }
    sim_send_ack(s, p, "Added AGI command to queue");
    if (a->call.hangup_after && a->ch.count >= a->call.hangup_after) {
        /* The caller hangs up: Asterisk leaves AsyncAGI with AsyncAGIEnd. */
        a->ch.is_hung_up = true;
        async_end(a, 0);
        return;
    }
    sb_buf out, enc;
    sb_buf_init(&out, 1 << 16);
    sb_buf_init(&enc, 1 << 18);
    if (pbxsim_agi_respond(&a->ch, cmd, &out) == 0 && uri_encode(out.data, out.len, &enc) == 0) {
        ami_msg m;
        ami_msg_init(&m, "Event", "AsyncAGIExec");
        add_common(&m, a);
        ami_msg_add(&m, "Result", enc.data);
        ami_msg_add(&m, "CommandId", cmdid);
        sim_emit_msg(s->sim, &m);
    }
    sb_buf_free(&out);
    sb_buf_free(&enc);
    if (a->ch.is_break)
        async_end(a, 0);
}
