/* async.c: AsyncAGI calls over AMI (see async.h).
 *
 * One async_call per channel in AsyncAGI, found by channel name. A command's result is matched
 * by CommandID: ours are "sb-N", unique per process, and only the command in flight is awaited,
 * so a late AsyncAGIExec (after a timeout) is recognised and dropped. Each call has a timer for
 * its command's timeout; the call's memory is released in the timer's close callback.
 */
#include "agi/async.h"

#include "agi/proto.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "agi"

struct agi_async {
    uv_loop_t *loop;
    route_engine *engine;
    sb_strmap calls; /* channel -> async_call */
    unsigned long long seq;
};

typedef struct async_call {
    agi_async *a;
    ami_client *client;
    route_call *rc;
    uv_timer_t timer;
    char channel[160];
    char cmdid[32];
    bool is_waiting;
    bool is_ending; /* AsyncAGIEnd arrived or the connection was lost: no BREAK */
} async_call;

static void call_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Forgets the call (the route_call is already gone). */
static void call_remove(async_call *ac)
{
    sb_strmap_del(&ac->a->calls, sb_slice_cstr(ac->channel));
    uv_timer_stop(&ac->timer);
    uv_close((uv_handle_t *)&ac->timer, call_closed);
}

static void on_break_ack(ami_client *c, const ami_result *r, void *ud)
{
    (void)c;
    (void)r;
    (void)ud;
}

static void as_finish(void *chan)
{
    async_call *ac = chan;
    route_call *rc = ac->rc;
    ac->rc = NULL;
    if (!ac->is_ending) {
        /* Give the channel back to the dialplan. */
        ami_msg m;
        ami_msg_init(&m, "Action", "AGI");
        ami_msg_add(&m, "Channel", ac->channel);
        ami_msg_add(&m, "Command", "ASYNCAGI BREAK");
        ami_msg_addf(&m, "CommandID", "sb-%llu", ++ac->a->seq);
        if (ami_client_send(ac->client, &m, AMI_ACTION_SIMPLE, 0, on_break_ack, NULL, NULL, 0) < 0)
            SB_WARN(SUB, "%s: cannot send ASYNCAGI BREAK", ac->channel);
    }
    call_remove(ac);
    route_call_gone(rc);
}

typedef struct ack_ctx {
    agi_async *a;
    char channel[160];
    char cmdid[32];
} ack_ctx;

static async_call *find(agi_async *a, sb_slice channel)
{
    return sb_strmap_get(&a->calls, channel);
}

/* The reply to the command in flight, or its failure. */
static void deliver(async_call *ac, int status, const agi_reply *r)
{
    ac->is_waiting = false;
    uv_timer_stop(&ac->timer);
    route_call_reply(ac->rc, status, r);
}

static void on_ack(ami_client *c, const ami_result *r, void *ud)
{
    ack_ctx *k = ud;
    (void)c;
    if (r->status != 0) {
        async_call *ac = find(k->a, sb_slice_cstr(k->channel));
        if (ac && ac->is_waiting && strcmp(ac->cmdid, k->cmdid) == 0) {
            /* No such channel (it hung up) or the connection dropped. */
            deliver(ac, r->status == SB_EFAILED ? SB_EDISCONN : r->status, NULL);
        }
    }
    free(k);
}

static void on_timeout(uv_timer_t *t)
{
    async_call *ac = t->data;
    if (ac->is_waiting)
        deliver(ac, SB_ETIMEDOUT, NULL);
}

static int as_send(void *chan, route_call *rc, sb_slice line, unsigned timeout_ms)
{
    async_call *ac = chan;
    (void)rc;
    if (line.len && line.ptr[line.len - 1] == '\n')
        line.len--;
    ack_ctx *k = calloc(1, sizeof *k);
    if (!k)
        return SB_ENOMEM;
    snprintf(ac->cmdid, sizeof ac->cmdid, "sb-%llu", ++ac->a->seq);
    k->a = ac->a;
    snprintf(k->channel, sizeof k->channel, "%s", ac->channel);
    snprintf(k->cmdid, sizeof k->cmdid, "%s", ac->cmdid);
    ami_msg m;
    ami_msg_init(&m, "Action", "AGI");
    ami_msg_add(&m, "Channel", ac->channel);
    ami_msg_addn(&m, "Command", line);
    ami_msg_add(&m, "CommandID", ac->cmdid);
    int rc2 = ami_client_send(ac->client, &m, AMI_ACTION_SIMPLE, 0, on_ack, k, NULL, 0);
    if (rc2 < 0) {
        free(k);
        return rc2;
    }
    ac->is_waiting = true;
    if (timeout_ms)
        uv_timer_start(&ac->timer, on_timeout, timeout_ms, 0);
    return 0;
}

static const route_chan_ops async_ops = {as_send, as_finish};

int agi_async_new(uv_loop_t *loop, route_engine *engine, agi_async **out)
{
    agi_async *a = calloc(1, sizeof *a);
    if (!a)
        return SB_ENOMEM;
    a->loop = loop;
    a->engine = engine;
    sb_strmap_init(&a->calls);
    *out = a;
    return 0;
}

size_t agi_async_active(const agi_async *a)
{
    return sb_strmap_count(&a->calls);
}

static void on_start(agi_async *a, ami_client *c, const ami_packet *ev)
{
    sb_slice channel = ami_packet_value(ev, "Channel");
    sb_slice env = ami_packet_value(ev, "Env");
    sb_buf dec;
    agi_header_parser hp;
    agi_request req = {0};
    size_t used = 0;
    if (!channel.len || channel.len >= sizeof((async_call *)0)->channel || find(a, channel))
        return;
    sb_buf_init(&dec, AGI_HEADER_MAX_DEFAULT);
    agi_header_init(&hp, 0, 0);
    int rc = agi_url_decode(env, &dec);
    if (rc == 0)
        rc = agi_header_feed(&hp, dec.data ? dec.data : "", dec.len, &used, &req);
    agi_header_free(&hp);
    sb_buf_free(&dec);
    if (rc != AGI_DONE) {
        SB_WARN(SUB, "%.*s: AsyncAGIStart with an unreadable Env (%s)", (int)channel.len,
                channel.ptr, rc < 0 ? sb_strerror(rc) : "incomplete");
        if (rc == AGI_DONE)
            agi_request_free(&req);
        return;
    }
    async_call *ac = calloc(1, sizeof *ac);
    if (!ac) {
        agi_request_free(&req);
        return;
    }
    ac->a = a;
    ac->client = c;
    sb_slice_copy(channel, ac->channel, sizeof ac->channel);
    uv_timer_init(a->loop, &ac->timer);
    ac->timer.data = ac;
    ac->rc = route_call_new(a->engine, &async_ops, ac, &req);
    agi_request_free(&req);
    if (!ac->rc || sb_strmap_put(&a->calls, sb_slice_cstr(ac->channel), ac) < 0) {
        if (ac->rc)
            route_call_gone(ac->rc);
        uv_close((uv_handle_t *)&ac->timer, call_closed);
        return;
    }
    route_call_set_pbx(ac->rc, ami_client_name(c));
    route_call_run(ac->rc);
}

static void on_exec(agi_async *a, const ami_packet *ev)
{
    async_call *ac = find(a, ami_packet_value(ev, "Channel"));
    sb_slice id = ami_packet_value(ev, "CommandId");
    if (!ac || !ac->is_waiting || !sb_slice_eq(id, sb_slice_cstr(ac->cmdid)))
        return; /* a BREAK's result, a late one, or another application's command */
    sb_buf dec;
    agi_reply_parser rp;
    agi_reply r;
    sb_buf_init(&dec, AGI_REPLY_MAX_DEFAULT);
    agi_reply_init(&rp, 0);
    int rc = agi_url_decode(ami_packet_value(ev, "Result"), &dec);
    if (rc == 0)
        rc = agi_reply_feed(&rp, dec.data ? dec.data : "", dec.len);
    while (rc == 0 && (rc = agi_reply_next(&rp, &r)) == AGI_HANGUP) {
        route_call_hangup(ac->rc);
        rc = 0;
    }
    if (rc == AGI_REPLY)
        deliver(ac, r.code / 100 == 2 ? 0 : SB_EFAILED, &r);
    else
        deliver(ac, SB_EPROTO, NULL);
    agi_reply_free(&rp);
    sb_buf_free(&dec);
}

/* The channel left AsyncAGI (hung up) or the connection is gone. */
static void end_call(agi_async *a, async_call *ac)
{
    char channel[160];
    snprintf(channel, sizeof channel, "%s", ac->channel);
    ac->is_ending = true;
    route_call_hangup(ac->rc);
    if (ac->is_waiting)
        deliver(ac, SB_EDISCONN, NULL); /* the runner finishes: as_finish removes the call */
    ac = find(a, sb_slice_cstr(channel));
    if (ac) {
        route_call *rc = ac->rc;
        ac->rc = NULL;
        call_remove(ac);
        route_call_gone(rc);
    }
}

bool agi_async_on_event(agi_async *a, ami_client *c, const ami_packet *ev)
{
    if (ami_packet_is(ev, "Event", "AsyncAGIStart")) {
        on_start(a, c, ev);
        return true;
    }
    if (ami_packet_is(ev, "Event", "AsyncAGIExec")) {
        on_exec(a, ev);
        return true;
    }
    if (ami_packet_is(ev, "Event", "AsyncAGIEnd")) {
        async_call *ac = find(a, ami_packet_value(ev, "Channel"));
        if (ac)
            end_call(a, ac);
        return true;
    }
    return false;
}

void agi_async_client_lost(agi_async *a, ami_client *c)
{
    for (;;) {
        sb_strmap_iter it;
        const char *k;
        void *v;
        async_call *found = NULL;
        sb_strmap_iter_init(&it, &a->calls);
        while (sb_strmap_iter_next(&it, &k, &v))
            if (!c || ((async_call *)v)->client == c) {
                found = v;
                break;
            }
        if (!found)
            return;
        end_call(a, found);
    }
}

void agi_async_free(agi_async *a)
{
    if (!a)
        return;
    agi_async_client_lost(a, NULL);
    sb_strmap_free(&a->calls);
    free(a);
}
