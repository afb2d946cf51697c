/* stream_poll.c: the long-poll transport of the streams (docs/streams.md): GET .../poll?after=SEQ&
 * timeout=S answers {"events":[...],"last":N} with the events after SEQ at once (at most
 * poll_max_events), or holds the request until the next event of the stream or the timeout;
 * without after it answers the snapshot, beyond the window a resync. A held poll is a short-lived
 * bus subscription and holds no buffer.
 */
#include "api/streams_internal.h"

#include "core/error.h"

#include <inttypes.h>
#include <stdlib.h>

typedef struct poller {
    streams *s;
    http_request *req;
    stream_hub *hub;
    stream_token *tok;
    bus_sub *sub;
    sb_buf body; /* {"events":[ ... */
    size_t n;
    uint64_t last;
} poller;

static void poller_free(poller *p)
{
    bus_unsubscribe(p->sub);
    stream_release_hub(p->s, p->hub, p->tok);
    sb_buf_free(&p->body);
    free(p);
}

static void poll_collect(void *ud, const bus_entry *e)
{
    poller *p = ud;
    size_t before = p->body.len;
    if (p->n >= p->s->cfg.poll_max_events)
        return;
    if ((p->n && sb_buf_puts(&p->body, ",") < 0) || bus_entry_format(e, &p->body) < 0) {
        p->body.len = before;
        return;
    }
    p->n++;
    p->last = e->seq;
}

static void poll_answer(poller *p)
{
    /* A token in the URL, no cookies: any page the application serves may poll (as with SSE). */
    static const http_header cors[] = {{"Access-Control-Allow-Origin", "*"}};
    if (sb_buf_printf(&p->body, "],\"last\":%" PRIu64 "}", p->last) < 0)
        http_respond_error(p->req, 500, "internal", "out of memory");
    else
        http_respond(p->req, 200, "application/json", cors, 1,
                     (sb_slice){p->body.data, p->body.len});
}

/* A held poll: the first live event answers it (the caller polls again from "last"). */
static void poll_live(void *ud, const bus_entry *e)
{
    poller *p = ud;
    poll_collect(p, e);
    if (p->s->st.polls_held)
        p->s->st.polls_held--;
    poll_answer(p);
    poller_free(p); /* unsubscribing inside the delivery is allowed */
}

static void poll_on_hold(http_request *req, int reason, void *ud)
{
    poller *p = ud;
    (void)req;
    if (p->s->st.polls_held)
        p->s->st.polls_held--;
    if (reason == SB_ETIMEDOUT)
        poll_answer(p);
    poller_free(p);
}

static int poll_state(poller *p, const char *type, uint64_t at)
{
    char *text = stream_state_event(p->s, p->hub, type, at);
    int rc;
    if (!text)
        return SB_ENOMEM;
    rc = sb_buf_puts(&p->body, text);
    free(text);
    p->n = 1;
    p->last = at;
    if (type[0] == 's')
        p->s->st.snapshots++;
    else
        p->s->st.resyncs++;
    return rc;
}

void stream_poll_handle(http_request *req, streams *s, bool global)
{
    long long timeout_s = 25;
    uint64_t after = 0;
    int has_after = stream_resume_point(req, false, &after), rc;
    poller *p;
    rc = http_request_query_ll(req, "timeout", &timeout_s);
    if (has_after < 0 || (rc < 0 && rc != SB_ENOTFOUND) || timeout_s < 0) {
        http_respond_error(req, 400, "bad_request",
                           "after must be a sequence number and timeout a number of seconds");
        return;
    }
    if ((uint64_t)timeout_s * 1000 > s->cfg.poll_max_timeout_ms)
        timeout_s = s->cfg.poll_max_timeout_ms / 1000;
    p = calloc(1, sizeof *p);
    if (!p || stream_request_hub(s, req, global, &p->hub, &p->tok) < 0) {
        free(p);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    p->s = s;
    p->req = req;
    p->last = after;
    sb_buf_init(&p->body, 64u << 20);
    rc = sb_buf_puts(&p->body, "{\"events\":[");
    if (rc == 0 && !has_after) {
        rc = poll_state(p, "snapshot", bus_stream_last_seq(p->hub->bs));
    } else if (rc == 0) {
        rc = bus_replay(p->hub->bs, after, poll_collect, p);
        if (rc == BUS_GAP)
            rc = poll_state(p, "resync", bus_stream_last_seq(p->hub->bs));
        else if (p->n)
            s->st.resumes++;
    }
    if (rc < 0) {
        http_respond_error(req, 500, "internal", "out of memory");
        poller_free(p);
        return;
    }
    if (p->n || timeout_s == 0) {
        poll_answer(p);
        poller_free(p);
        return;
    }
    /* Nothing newer: wait for the next event of the stream (replay found none, so the live
     * subscription starts exactly after `after`). */
    p->sub = bus_subscribe(p->hub->bs, poll_live, p);
    if (!p->sub || http_request_hold(req, (uint32_t)timeout_s * 1000, poll_on_hold, p) < 0) {
        http_respond_error(req, 500, "internal", "cannot hold the request");
        poller_free(p);
        return;
    }
    s->st.polls_held++;
}
