/* session.c: one FastAGI connection on the loop: header, command queue, replies, timeouts and
 * the end of the session (see session.h).
 *
 * A session is a state machine: HEADER (reading agi_* lines, under the header timeout), RUNNING
 * (one command in flight at a time, each under its own timeout) and ENDING (callbacks flushed,
 * handles closing). Memory is released only in the close callbacks, so a session stays valid
 * for the whole of any callback that ends it.
 */
#include "agi/session_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct write_req {
    uv_write_t req;
    char data[];
} write_req;

static void pump(agi_session *s);

static void on_handle_closed(uv_handle_t *h)
{
    agi_session *s = h->data;
    if (--s->open_handles > 0)
        return;
    agi_header_free(&s->hp);
    agi_request_free(&s->req);
    agi_reply_free(&s->rp);
    agi_server_session_released(s->srv, s);
}

void agi_session_end(agi_session *s, int reason, int inflight_status)
{
    int was = s->phase;
    if (was == SESSION_ENDING)
        return;
    s->phase = SESSION_ENDING;
    uv_timer_stop(&s->timer);
    uv_read_stop((uv_stream_t *)&s->tcp);
    while (s->head) {
        agi_cmd *c = s->head;
        int status = s->inflight ? inflight_status : SB_ECANCELED;
        s->head = c->next;
        s->inflight = false;
        s->pending--;
        if (c->cb)
            c->cb(s, status, NULL, c->user);
        free(c);
    }
    s->tail = NULL;
    if (was == SESSION_RUNNING && s->on_end)
        s->on_end(s, reason, s->user);
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    agi_session *s = t->data;
    if (s->phase == SESSION_HEADER)
        s->srv->stats.failed++;
    /* A late reply would be taken for the next command's: the stream is lost, end it. */
    agi_session_end(s, SB_ETIMEDOUT, SB_ETIMEDOUT);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    agi_session *s = h->data;
    buf->base = s->srv->readbuf;
    buf->len = sizeof s->srv->readbuf;
}

static void process_replies(agi_session *s)
{
    while (s->phase == SESSION_RUNNING) {
        agi_reply r;
        int rc = agi_reply_next(&s->rp, &r);
        if (rc == AGI_NEED_MORE)
            return;
        if (rc < 0) {
            agi_session_end(s, rc, rc);
            return;
        }
        if (rc == AGI_HANGUP) {
            s->hung_up = true;
            if (s->on_hangup)
                s->on_hangup(s, s->user);
            continue;
        }
        agi_cmd *c = s->head;
        if (!c || !s->inflight) {
            agi_session_end(s, SB_EPROTO, SB_EPROTO); /* a reply nobody asked for */
            return;
        }
        s->head = c->next;
        if (!s->head)
            s->tail = NULL;
        s->inflight = false;
        s->pending--;
        uv_timer_stop(&s->timer);
        if (c->cb)
            c->cb(s, r.code / 100 == 2 ? 0 : SB_EFAILED, &r, c->user);
        free(c);
        if (r.code == 511) {
            /* The channel is dead: the dialplan goes on once we let go of it. */
            agi_session_end(s, SB_EFAILED, SB_ECANCELED);
            return;
        }
        pump(s);
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    agi_session *s = stream->data;
    const char *data = buf->base;
    size_t len = nread > 0 ? (size_t)nread : 0;
    int rc;

    if (s->phase == SESSION_ENDING)
        return;
    if (nread < 0) {
        if (s->phase == SESSION_HEADER)
            s->srv->stats.failed++;
        agi_session_end(s, nread == UV_EOF ? 0 : (int)nread, SB_EDISCONN);
        return;
    }
    if (len == 0)
        return;
    if (s->phase == SESSION_HEADER) {
        size_t used = 0;
        rc = agi_header_feed(&s->hp, data, len, &used, &s->req);
        if (rc < 0) {
            s->srv->stats.failed++;
            agi_session_end(s, rc, rc);
            return;
        }
        if (rc == AGI_NEED_MORE)
            return;
        agi_header_free(&s->hp);
        uv_timer_stop(&s->timer);
        s->phase = SESSION_RUNNING;
        s->srv->stats.accepted++;
        data += used;
        len -= used;
        s->srv->on_session(s, &s->req, s->srv->user);
        if (s->phase != SESSION_RUNNING)
            return;
    }
    if (len > 0) {
        rc = agi_reply_feed(&s->rp, data, len);
        if (rc < 0) {
            agi_session_end(s, rc, rc);
            return;
        }
    }
    process_replies(s);
}

int agi_session_start(agi_server *srv, agi_session *s)
{
    int rc;
    s->srv = srv;
    s->phase = SESSION_HEADER;
    s->tcp.data = s;
    agi_header_init(&s->hp, srv->header_max, srv->vars_max);
    agi_reply_init(&s->rp, srv->reply_max);
    rc = uv_timer_init(srv->loop, &s->timer);
    if (rc)
        return rc;
    s->timer.data = s;
    s->open_handles = 2;
    uv_tcp_nodelay(&s->tcp, 1); /* one small command per round trip: never wait for Nagle */
    uv_timer_start(&s->timer, on_timeout, srv->header_timeout_ms, 0);
    rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (rc) {
        agi_session_end(s, rc, rc);
        return 0; /* the close callbacks release it */
    }
    return 0;
}

static void on_written(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    agi_session *s = req->handle->data;
    free(w);
    if (status < 0 && s->phase != SESSION_ENDING)
        agi_session_end(s, status, status);
}

static void pump(agi_session *s)
{
    agi_cmd *c = s->head;
    if (s->phase != SESSION_RUNNING || s->inflight || !c)
        return;
    write_req *w = malloc(sizeof *w + c->len);
    if (!w) {
        agi_session_end(s, SB_ENOMEM, SB_ENOMEM);
        return;
    }
    memcpy(w->data, c->line, c->len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)c->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_written);
    if (rc) {
        free(w);
        agi_session_end(s, rc, rc);
        return;
    }
    s->inflight = true;
    if (c->timeout_ms)
        uv_timer_start(&s->timer, on_timeout, c->timeout_ms, 0);
}

int agi_session_send(agi_session *s, sb_slice line, unsigned timeout_ms, agi_reply_cb cb,
                     void *user)
{
    agi_cmd *c;
    if (s->phase == SESSION_ENDING)
        return SB_ECANCELED;
    if (line.len == 0 || line.len > AGI_COMMAND_MAX || line.ptr[line.len - 1] != '\n' ||
        memchr(line.ptr, '\n', line.len - 1) || memchr(line.ptr, '\r', line.len) ||
        memchr(line.ptr, '\0', line.len))
        return SB_EINVAL;
    if (s->pending >= AGI_SESSION_QUEUE_MAX)
        return SB_ETOOBIG;
    c = malloc(sizeof *c + line.len);
    if (!c)
        return SB_ENOMEM;
    c->next = NULL;
    c->cb = cb;
    c->user = user;
    c->timeout_ms = timeout_ms;
    c->len = line.len;
    memcpy(c->line, line.ptr, line.len);
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    s->pending++;
    pump(s);
    return 0;
}

int agi_session_command(agi_session *s, unsigned timeout_ms, agi_reply_cb cb, void *user,
                        const char *verb, const sb_slice *args, size_t nargs)
{
    sb_buf b;
    int rc;
    if (s->phase == SESSION_ENDING)
        return SB_ECANCELED;
    sb_buf_init(&b, AGI_COMMAND_MAX + 1);
    rc = agi_command_format(&b, verb, args, nargs);
    if (rc == 0)
        rc = agi_session_send(s, (sb_slice){b.data, b.len}, timeout_ms, cb, user);
    sb_buf_free(&b);
    return rc;
}

void agi_session_set_handlers(agi_session *s, agi_hangup_cb on_hangup, agi_end_cb on_end,
                              void *user)
{
    s->on_hangup = on_hangup;
    s->on_end = on_end;
    s->user = user;
}

const agi_request *agi_session_request(const agi_session *s)
{
    return &s->req;
}

bool agi_session_is_hung_up(const agi_session *s)
{
    return s->hung_up;
}

size_t agi_session_pending(const agi_session *s)
{
    return s->pending;
}

void agi_session_close(agi_session *s)
{
    agi_session_end(s, 0, SB_ECANCELED);
}
