/* fastagi.c: FastAGI sessions routed by the engine: each agi_session becomes a route_call whose
 * commands go out with agi_session_send() and whose replies, HANGUP and end come back to the
 * runner. The session pointer is the transport handle; the call is the session's user data.
 */
#include "routing/fastagi.h"

#include "agi/session.h"
#include "core/error.h"

#include <stdlib.h>

struct route_fastagi {
    agi_server *srv;
    route_engine *engine;
};

static void on_reply(agi_session *s, int status, const agi_reply *r, void *user)
{
    (void)s;
    route_call_reply(user, status, r);
}

static int fa_send(void *chan, route_call *c, sb_slice line, unsigned timeout_ms)
{
    return agi_session_send(chan, line, timeout_ms, on_reply, c);
}

static void fa_finish(void *chan)
{
    agi_session_close(chan);
}

static const route_chan_ops fastagi_ops = {fa_send, fa_finish};

static void on_hangup(agi_session *s, void *user)
{
    (void)s;
    route_call_hangup(user);
}

static void on_end(agi_session *s, int reason, void *user)
{
    (void)s;
    (void)reason;
    route_call_gone(user);
}

static void on_session(agi_session *s, const agi_request *req, void *user)
{
    route_fastagi *f = user;
    route_call *c = route_call_new(f->engine, &fastagi_ops, s, req);
    if (!c) {
        agi_session_close(s);
        return;
    }
    agi_session_set_handlers(s, on_hangup, on_end, c);
    route_call_run(c);
}

int route_fastagi_new(uv_loop_t *loop, const agi_server_config *cfg, route_engine *engine,
                      route_fastagi **out)
{
    route_fastagi *f = calloc(1, sizeof *f);
    if (!f)
        return SB_ENOMEM;
    f->engine = engine;
    int rc = agi_server_new(loop, cfg, on_session, f, &f->srv);
    if (rc < 0) {
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int route_fastagi_start(route_fastagi *f)
{
    return agi_server_start(f->srv);
}

int route_fastagi_port(const route_fastagi *f)
{
    return agi_server_port(f->srv);
}

void route_fastagi_stop(route_fastagi *f)
{
    agi_server_stop(f->srv);
}

void route_fastagi_free(route_fastagi *f)
{
    if (!f)
        return;
    agi_server_free(f->srv);
    free(f);
}

agi_server *route_fastagi_server(route_fastagi *f)
{
    return f->srv;
}
