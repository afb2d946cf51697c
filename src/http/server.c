/* server.c: accepting connections, reading and parsing requests with libhttp-parser under the
 * configured limits, dispatching one request at a time per connection, timers, writes and the
 * orderly close of a connection.
 *
 * Each connection has one timer whose meaning follows its phase (internal.h): idle keep-alive,
 * request deadline, long-poll hold, stream heartbeat, or linger while closing. Parsing pauses at
 * the end of every request (http_parser_pause), so pipelined bytes wait in the input buffer until
 * the answer is queued; that keeps answers in order and lets a handler answer later. */
#include "http/internal.h"

#include "core/error.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define PIPELINE_STASH_MAX 65536 /* input kept while a request is handled before reads pause */
#define REJECTING_MAX 256        /* connections answered 503 at once before we just close */

struct write_req {
    uv_write_t w;
    char *owned;
    unsigned nmsgs;
    http_msg *msgs[]; /* references held until the write is done */
};

static void on_timer(uv_timer_t *t);
static void on_resume(uv_timer_t *t);
static void conn_process(http_conn *c);
static void conn_read_start(http_conn *c);

/* ---- writes ---- */

static void write_release(char *owned, http_msg **msgs, unsigned nmsgs)
{
    unsigned i;
    free(owned);
    for (i = 0; i < nmsgs; i++)
        http_msg_unref(msgs[i]);
}

static void on_write(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    http_conn *c = w->data;
    c->pending_writes--;
    write_release(wr->owned, wr->msgs, wr->nmsgs);
    free(wr);
    if (status < 0 && status != UV_ECANCELED)
        http_conn_close(c, SB_EDISCONN);
}

int http_conn_writev(http_conn *c, uv_buf_t *bufs, unsigned nbufs, char *owned, http_msg **msgs,
                     unsigned nmsgs)
{
    struct write_req *wr;
    size_t total = 0;
    unsigned i;
    int r;
    if (c->phase == PH_CLOSED || c->phase == PH_DRAINING) {
        write_release(owned, msgs, nmsgs);
        return SB_EDISCONN;
    }
    for (i = 0; i < nbufs; i++)
        total += bufs[i].len;
    /* The cheap path: when nothing is queued, hand the bytes to the kernel right now (one writev);
     * only what it does not take is queued, and only then does the write allocate. */
    if (c->pending_writes == 0 && total) {
        r = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (r >= 0 && (size_t)r == total) {
            write_release(owned, msgs, nmsgs);
            return 0;
        }
        if (r > 0) {
            size_t done = (size_t)r;
            while (done && done >= bufs->len) {
                done -= bufs->len;
                bufs++;
                nbufs--;
            }
            bufs->base += done;
            bufs->len -= done;
        } else if (r != UV_EAGAIN) {
            write_release(owned, msgs, nmsgs);
            return r;
        }
    }
    wr = malloc(sizeof(*wr) + nmsgs * sizeof(http_msg *));
    if (!wr) {
        write_release(owned, msgs, nmsgs);
        return SB_ENOMEM;
    }
    wr->owned = owned;
    wr->nmsgs = nmsgs;
    for (i = 0; i < nmsgs; i++)
        wr->msgs[i] = msgs[i];
    wr->w.data = c;
    r = uv_write(&wr->w, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write);
    if (r) {
        write_release(owned, msgs, nmsgs);
        free(wr);
        return r;
    }
    c->pending_writes++;
    return 0;
}

int http_conn_write(http_conn *c, const char *data, size_t len, char *owned, http_msg *msg)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    /* Pushed messages still waiting for the end of the loop iteration go first. */
    if (c->is_stream && c->stream.npend)
        http_stream_flush(c);
    return http_conn_writev(c, &buf, 1, owned, msg ? &msg : NULL, msg ? 1 : 0);
}

void http_conn_set_timer(http_conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

size_t http_conn_queued(const http_conn *c)
{
    return c->tcp.write_queue_size + (c->is_stream ? c->stream.pend_bytes : 0);
}

/* ---- closing ---- */

void http_server_maybe_free(http_server *s)
{
    if (s->is_freed && !s->conns && !s->open_handles)
        free(s);
}

static void conn_free(http_conn *c)
{
    http_server *s = c->srv;
    if (c->is_stream) {
        int reason = c->stream.close_reason ? c->stream.close_reason : c->close_reason;
        s->stats.streams--;
        http_stream_unlink(c);
        if (c->stream.cb.on_close)
            c->stream.cb.on_close(&c->stream, reason, c->stream.ud);
        http_stream_release(c);
    }
    http_request_release(&c->req);
    sb_buf_free(&c->in);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->is_rejected)
        s->nrejecting--;
    else
        s->stats.connections--;
    free(c);
    http_server_maybe_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    http_conn *c = h->data;
    if (--c->open_handles == 0)
        conn_free(c);
}

void http_conn_close(http_conn *c, int reason)
{
    if (c->phase == PH_CLOSED)
        return;
    c->phase = PH_CLOSED;
    if (!c->close_reason)
        c->close_reason = reason;
    if (c->req.state == REQ_HELD && c->req.hold_cb) {
        http_hold_cb cb = c->req.hold_cb;
        c->req.hold_cb = NULL;
        cb(&c->req, reason == SB_ECANCELED ? SB_ECANCELED : SB_EDISCONN, c->req.hold_ud);
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *sh, int status)
{
    http_conn *c = sh->data;
    if (status < 0)
        http_conn_close(c, c->close_reason);
}

void http_conn_finish(http_conn *c, int reason)
{
    if (c->phase == PH_CLOSED || c->phase == PH_DRAINING)
        return;
    if (c->is_stream && c->stream.npend)
        http_stream_flush(c); /* gathered pushes still leave before the half-close */
    if (c->phase == PH_CLOSED)
        return;
    c->phase = PH_DRAINING;
    c->close_reason = reason;
    /* Half-close after the queued bytes and read until the peer closes, so that an unread request
     * body does not turn our last answer into a reset; the linger timer bounds the wait. */
    uv_timer_start(&c->timer, on_timer, c->srv->cfg.linger_ms, 0);
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown)) {
        http_conn_close(c, reason);
        return;
    }
    conn_read_start(c);
}

/* ---- the request cycle ---- */

void http_conn_request_done(http_conn *c)
{
    http_request *req = &c->req;
    bool keep = req->keep_alive && !req->parser.upgrade && !c->srv->is_stopping;
    uv_timer_stop(&c->timer);
    http_request_reset(req);
    if (c->phase == PH_CLOSED || c->phase == PH_DRAINING)
        return;
    if (!keep) {
        http_conn_finish(c, 0);
        return;
    }
    c->phase = PH_IDLE;
    conn_read_start(c);
    uv_timer_start(&c->timer, on_timer, c->srv->cfg.idle_timeout_ms, 0);
    /* Outside the handler (a later answer) the next pipelined request starts from the loop, not
     * from inside the caller of http_respond, which may be walking its own lists. */
    if (!c->in_dispatch && c->in.len)
        uv_timer_start(&c->timer, on_resume, 0, 0);
}

static void conn_dispatch(http_conn *c)
{
    http_request *req = &c->req;
    uv_timer_stop(&c->timer);
    c->phase = PH_HANDLING;
    req->state = REQ_DISPATCHED;
    c->srv->stats.requests++;
    c->in_dispatch = true;
    c->srv->cfg.handler(req, c->srv->cfg.handler_ud);
    c->in_dispatch = false;
    if (c->phase == PH_HANDLING && req->state == REQ_DISPATCHED) {
        SB_WARN("http", "handler for %.*s answered nothing", (int)req->path.len, req->path.ptr);
        http_respond_error(req, 500, "internal", "the handler did not answer");
    }
}

static const char *reject_code(int status)
{
    switch (status) {
    case 408:
        return "request_timeout";
    case 413:
        return "payload_too_large";
    case 414:
        return "uri_too_long";
    case 431:
        return "header_too_large";
    case 503:
        return "unavailable";
    case 500:
        return "internal";
    default:
        return "bad_request";
    }
}

static void conn_process(http_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    while ((c->phase == PH_IDLE || c->phase == PH_READING) && c->in.len) {
        size_t n = 0;
        int st = http_request_parse(&c->req, c->in.data, c->in.len, &n);
        if (c->req.is_started && c->phase == PH_IDLE) {
            c->phase = PH_READING;
            uv_timer_start(&c->timer, on_timer, c->srv->cfg.request_timeout_ms, 0);
        }
        if (st >= 400) {
            const char *why = st == 400 ? http_errno_description(HTTP_PARSER_ERRNO(&c->req.parser))
                                        : http_status_text(st);
            SB_DEBUG("http", "refusing a request: %d %s", st, why);
            http_conn_reject(c, st, reject_code(st), why);
            return;
        }
        /* curl and others wait for "100 Continue" before sending a large body (RFC 9110
         * 10.1.1); not needed when the body is here already. */
        if (c->req.wants_continue) {
            c->req.wants_continue = false;
            if (st != HTTP_PARSE_READY && http_conn_write(c, cont, sizeof(cont) - 1, NULL, NULL)) {
                http_conn_close(c, SB_EDISCONN);
                return;
            }
        }
        sb_buf_consume(&c->in, n);
        if (st == HTTP_PARSE_READY)
            conn_dispatch(c);
        else if (n == 0)
            break;
    }
    if (c->phase == PH_HANDLING && c->in.len >= PIPELINE_STASH_MAX && c->is_reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->is_reading = false;
    }
}

static void on_resume(uv_timer_t *t)
{
    http_conn *c = t->data;
    uv_timer_start(&c->timer, on_timer, c->srv->cfg.idle_timeout_ms, 0);
    conn_process(c);
}

static void on_timer(uv_timer_t *t)
{
    http_conn *c = t->data;
    switch (c->phase) {
    case PH_IDLE:
        http_conn_close(c, 0);
        break;
    case PH_READING:
        http_conn_reject(c, 408, "request_timeout", "the request took too long");
        break;
    case PH_HANDLING:
        if (c->req.state == REQ_HELD && c->req.hold_cb) {
            http_hold_cb cb = c->req.hold_cb;
            c->req.hold_cb = NULL;
            cb(&c->req, SB_ETIMEDOUT, c->req.hold_ud);
            if (c->phase == PH_HANDLING && c->req.state == REQ_HELD)
                http_respond(&c->req, 204, NULL, NULL, 0, (sb_slice){"", 0});
        }
        break;
    case PH_DRAINING:
        http_conn_close(c, c->close_reason);
        break;
    default:
        break;
    }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http_conn *c = st->data;
    if (nread < 0) {
        int reason = nread == UV_EOF ? 0 : SB_EDISCONN;
        if (c->phase == PH_DRAINING)
            reason = c->close_reason;
        else if (c->phase == PH_HANDLING || c->phase == PH_READING)
            reason = SB_EDISCONN;
        http_conn_close(c, reason);
        return;
    }
    if (nread == 0)
        return;
    switch (c->phase) {
    case PH_DRAINING:
    case PH_CLOSED:
        return;
    case PH_STREAM:
        if (c->stream.kind != HTTP_STREAM_WS)
            return; /* an SSE client has nothing to say */
        if (sb_buf_append(&c->in, buf->base, (size_t)nread)) {
            http_conn_close(c, SB_EPROTO);
            return;
        }
        http_ws_on_input(c);
        return;
    default:
        break;
    }
    if (sb_buf_append(&c->in, buf->base, (size_t)nread)) {
        http_conn_reject(c, 400, "bad_request", "too much pipelined input");
        return;
    }
    if (c->phase != PH_HANDLING)
        conn_process(c);
    else if (c->in.len >= PIPELINE_STASH_MAX && c->is_reading) {
        uv_read_stop(st);
        c->is_reading = false;
    }
}

static void conn_read_start(http_conn *c)
{
    if (c->is_reading || c->phase == PH_CLOSED)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->is_reading = true;
}

/* ---- accepting ---- */

static void on_connection(uv_stream_t *listener, int status)
{
    http_server *s = listener->data;
    http_conn *c;
    if (status < 0) {
        SB_WARN("http", "accept: %s", uv_strerror(status));
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    http_request_init(&c->req, c, &s->cfg);
    sb_buf_init(&c->in, s->cfg.max_url_bytes + s->cfg.max_header_bytes + s->cfg.max_body_bytes +
                            PIPELINE_STASH_MAX * 2);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (s->stats.connections >= s->cfg.max_connections) {
        c->is_rejected = true;
        s->nrejecting++;
    } else {
        s->stats.connections++;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) {
        http_conn_close(c, 0);
        return;
    }
    s->stats.accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->is_rejected) {
        s->stats.rejected_busy++;
        if (s->nrejecting > REJECTING_MAX)
            http_conn_close(c, 0);
        else
            http_conn_reject(c, 503, "unavailable", "too many connections");
        return;
    }
    c->phase = PH_IDLE;
    uv_timer_start(&c->timer, on_timer, s->cfg.idle_timeout_ms, 0);
    conn_read_start(c);
}

/* ---- the server ---- */

int http_server_init(http_server **out, uv_loop_t *loop, const http_server_config *cfg)
{
    http_server *s;
    const char *host;
    *out = NULL;
    if (!loop || !cfg || !cfg->handler || cfg->port < 0 || cfg->port > 65535)
        return SB_EINVAL;
    host = cfg->host && *cfg->host ? cfg->host : "127.0.0.1";
    if (strlen(host) >= sizeof(s->host))
        return SB_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return SB_ENOMEM;
    s->loop = loop;
    s->cfg = *cfg;
    memcpy(s->host, host, strlen(host) + 1);
    s->cfg.host = s->host;
    s->port = -1;
#define DEFAULT(f, v)                                                                              \
    if (!s->cfg.f)                                                                                 \
    s->cfg.f = (v)
    DEFAULT(max_url_bytes, 4096);
    DEFAULT(max_header_bytes, 16384);
    DEFAULT(max_headers, 64);
    DEFAULT(max_body_bytes, 1024 * 1024);
    DEFAULT(max_connections, 4096);
    DEFAULT(idle_timeout_ms, 60000);
    DEFAULT(request_timeout_ms, 30000);
    DEFAULT(stream_max_queued, 256 * 1024);
    DEFAULT(heartbeat_ms, 15000);
    DEFAULT(ws_max_message, 64 * 1024);
    DEFAULT(linger_ms, 2000);
#undef DEFAULT
    http_streams_init(s);
    *out = s;
    return 0;
}

int http_server_start(http_server *s)
{
    struct sockaddr_storage ss;
    int namelen = sizeof(ss);
    int r;
    if (s->is_listening || s->is_stopping)
        return SB_EINVAL;
    if (strchr(s->host, ':'))
        r = uv_ip6_addr(s->host, s->cfg.port, (struct sockaddr_in6 *)&ss);
    else
        r = uv_ip4_addr(s->host, s->cfg.port, (struct sockaddr_in *)&ss);
    if (r)
        return SB_ECONFIG;
    r = uv_tcp_init(s->loop, &s->listener);
    if (r)
        return r;
    s->listener.data = s;
    s->listener_open = true;
    s->open_handles++;
    r = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (!r)
        r = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (!r)
        r = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &namelen);
    if (r) {
        SB_ERROR("http", "listen on %s:%d: %s", s->host, s->cfg.port, uv_strerror(r));
        http_server_stop(s); /* the server stays stopped: free it */
        return r;
    }
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    s->is_listening = true;
    SB_INFO("http", "listening on %s port %d", s->host, s->port);
    return 0;
}

int http_server_port(const http_server *s)
{
    return s->is_listening ? s->port : -1;
}

static void on_listener_closed(uv_handle_t *h)
{
    http_server *s = h->data;
    s->listener_open = false;
    s->open_handles--;
    http_server_maybe_free(s);
}

void http_server_stop(http_server *s)
{
    http_conn *c, *next;
    if (s->is_stopping)
        return;
    s->is_stopping = true;
    s->is_listening = false;
    if (s->listener_open && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    for (c = s->conns; c; c = next) {
        next = c->next;
        http_conn_close(c, SB_ECANCELED);
    }
    http_streams_close(s);
}

void http_server_free(http_server *s)
{
    if (!s)
        return;
    http_server_stop(s);
    s->is_freed = true;
    http_server_maybe_free(s);
}

void http_server_get_stats(const http_server *s, http_server_stats *out)
{
    *out = s->stats;
}
