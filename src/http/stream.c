/* stream.c: what SSE and WebSocket clients share: the reference-counted message built once for
 * all clients, the bounded per-client queue and the slow-consumer cut-off, the heartbeat timer,
 * and closing with a reason. SSE framing lives here too (it is only text); the WebSocket side is
 * in ws.c. */
#include "http/internal.h"

#include "core/error.h"
#include "core/log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct http_msg {
    unsigned refs;
    sb_slice data;
    sb_slice sse; /* "id: ..\nevent: ..\ndata: ..\n\n" */
    sb_slice ws;  /* an unmasked text frame: server frames are never masked (RFC 6455 5.1) */
    char bytes[]; /* data, then sse, then ws */
};

static bool has_newline(sb_slice s)
{
    return memchr(s.ptr ? s.ptr : "", '\n', s.len) || memchr(s.ptr ? s.ptr : "", '\r', s.len);
}

static size_t ws_header(uint8_t *h, size_t len)
{
    h[0] = 0x81; /* FIN + text */
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

http_msg *http_msg_new(sb_slice id, sb_slice event, sb_slice data)
{
    size_t lines = 1, i, sse_len, ws_len, hlen;
    uint8_t wh[10];
    http_msg *m;
    char *p;
    if (has_newline(id) || has_newline(event))
        return NULL;
    for (i = 0; i < data.len; i++)
        lines += data.ptr[i] == '\n';
    sse_len =
        (id.len ? id.len + 5 : 0) + (event.len ? event.len + 8 : 0) + data.len + 7 * lines + 1;
    hlen = ws_header(wh, data.len);
    ws_len = hlen + data.len;
    m = malloc(sizeof(*m) + data.len + sse_len + ws_len);
    if (!m)
        return NULL;
    m->refs = 1;
    p = m->bytes;
    if (data.len)
        memcpy(p, data.ptr, data.len);
    m->data = (sb_slice){p, data.len};
    p += data.len;
    m->sse.ptr = p;
    if (id.len) {
        memcpy(p, "id: ", 4);
        memcpy(p + 4, id.ptr, id.len);
        p[4 + id.len] = '\n';
        p += id.len + 5;
    }
    if (event.len) {
        memcpy(p, "event: ", 7);
        memcpy(p + 7, event.ptr, event.len);
        p[7 + event.len] = '\n';
        p += event.len + 8;
    }
    /* One "data:" line per line of data; a CR before the LF is dropped (the SSE parser would take
     * it as a line end of its own). */
    for (i = 0;;) {
        const char *nl = data.len > i ? memchr(data.ptr + i, '\n', data.len - i) : NULL;
        size_t n = (nl ? (size_t)(nl - data.ptr) : data.len) - i;
        size_t keep = (n && data.ptr[i + n - 1] == '\r') ? n - 1 : n;
        memcpy(p, "data: ", 6);
        if (keep)
            memcpy(p + 6, data.ptr + i, keep);
        p[6 + keep] = '\n';
        p += 7 + keep;
        if (!nl)
            break;
        i += n + 1;
    }
    *p++ = '\n';
    m->sse.len = (size_t)(p - m->sse.ptr);
    m->ws.ptr = p;
    memcpy(p, wh, hlen);
    if (data.len)
        memcpy(p + hlen, data.ptr, data.len);
    m->ws.len = ws_len;
    return m;
}

http_msg *http_msg_concat(http_msg *const *msgs, size_t n)
{
    size_t i, sse_len = 0, ws_len = 0;
    http_msg *m;
    char *p;
    if (n == 0)
        return NULL;
    for (i = 0; i < n; i++) {
        sse_len += msgs[i]->sse.len;
        ws_len += msgs[i]->ws.len;
    }
    m = malloc(sizeof(*m) + sse_len + ws_len);
    if (!m)
        return NULL;
    m->refs = 1;
    p = m->bytes;
    m->data = (sb_slice){p, 0};
    m->sse = (sb_slice){p, sse_len};
    for (i = 0; i < n; i++) {
        memcpy(p, msgs[i]->sse.ptr, msgs[i]->sse.len);
        p += msgs[i]->sse.len;
    }
    m->ws = (sb_slice){p, ws_len};
    for (i = 0; i < n; i++) {
        memcpy(p, msgs[i]->ws.ptr, msgs[i]->ws.len);
        p += msgs[i]->ws.len;
    }
    return m;
}

http_msg *http_msg_ref(http_msg *m)
{
    m->refs++;
    return m;
}

void http_msg_unref(http_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

sb_slice http_msg_data(const http_msg *m)
{
    return m->data;
}

sb_slice http_msg_framing(const http_msg *m, http_stream_kind kind)
{
    return kind == HTTP_STREAM_SSE ? m->sse : m->ws;
}

/* ---- the stream ---- */

static void on_heartbeat(uv_timer_t *t)
{
    http_conn *c = t->data;
    static const char comment[] = ":\n\n"; /* an SSE comment keeps proxies and clients awake */
    if (c->phase != PH_STREAM)
        return;
    if (c->stream.kind == HTTP_STREAM_WS) {
        http_ws_ping(c);
        return;
    }
    if (http_conn_queued(c) > c->srv->cfg.stream_max_queued) {
        http_stream_overflow(c);
        return;
    }
    if (http_conn_write(c, comment, sizeof(comment) - 1, NULL, NULL))
        http_conn_close(c, SB_EDISCONN);
}

static void on_kick(uv_timer_t *t)
{
    http_conn *c = t->data;
    uint64_t hb = c->srv->cfg.heartbeat_ms;
    if (c->phase != PH_STREAM)
        return;
    uv_timer_start(&c->timer, on_heartbeat, hb, hb);
    if (c->stream.kind == HTTP_STREAM_WS && c->in.len)
        http_ws_on_input(c);
}

void http_stream_kick(http_conn *c)
{
    uv_timer_start(&c->timer, on_kick, 0, 0);
}

void http_stream_begin(http_conn *c, http_stream_kind kind, const http_stream_callbacks *cb,
                       void *ud)
{
    http_stream *s = &c->stream;
    uint64_t hb = c->srv->cfg.heartbeat_ms;
    s->kind = kind;
    if (cb)
        s->cb = *cb;
    s->ud = ud;
    s->close_reason = 0;
    sb_buf_init(&s->ws_out, c->srv->cfg.stream_max_queued + c->srv->cfg.ws_max_message + 1024);
    c->req.state = REQ_STREAM;
    c->phase = PH_STREAM;
    c->is_stream = true;
    c->srv->stats.streams++;
    uv_timer_start(&c->timer, on_heartbeat, hb, hb);
}

void http_stream_release(http_conn *c)
{
    unsigned i;
    for (i = 0; i < c->stream.npend; i++)
        http_msg_unref(c->stream.pend[i]);
    c->stream.npend = 0;
    c->stream.pend_bytes = 0;
    if (c->stream.kind == HTTP_STREAM_WS)
        http_ws_release(c);
    sb_buf_free(&c->stream.ws_out);
}

/* ---- pushing: gathered per client, flushed once per loop iteration (or stream_flush_ms) ---- */

void http_stream_flush(http_conn *c)
{
    http_stream *s = &c->stream;
    uv_buf_t bufs[HTTP_STREAM_BATCH];
    http_msg *msgs[HTTP_STREAM_BATCH];
    unsigned i, n = s->npend;
    if (!n)
        return;
    for (i = 0; i < n; i++) {
        sb_slice f = http_msg_framing(s->pend[i], s->kind);
        bufs[i] = uv_buf_init((char *)f.ptr, (unsigned)f.len);
        msgs[i] = s->pend[i];
    }
    s->npend = 0;
    s->pend_bytes = 0;
    if (http_conn_writev(c, bufs, n, NULL, msgs, n))
        http_conn_close(c, SB_EDISCONN);
}

void http_stream_unlink(http_conn *c)
{
    http_stream *s = &c->stream;
    if (!s->is_dirty)
        return;
    if (s->dirty_prev)
        s->dirty_prev->stream.dirty_next = s->dirty_next;
    else
        c->srv->dirty = s->dirty_next;
    if (s->dirty_next)
        s->dirty_next->stream.dirty_prev = s->dirty_prev;
    s->dirty_prev = s->dirty_next = NULL;
    s->is_dirty = false;
}

static void flush_all(http_server *srv)
{
    while (srv->dirty) {
        http_conn *c = srv->dirty;
        http_stream_unlink(c);
        http_stream_flush(c);
    }
    srv->is_flush_armed = false;
    uv_prepare_stop(&srv->flush_prepare);
    uv_check_stop(&srv->flush_check);
}

static void on_flush_prepare(uv_prepare_t *h)
{
    flush_all(h->data);
}

static void on_flush_check(uv_check_t *h)
{
    flush_all(h->data);
}

static void on_flush_timer(uv_timer_t *h)
{
    flush_all(h->data);
}

static void mark_dirty(http_conn *c)
{
    http_server *srv = c->srv;
    http_stream *s = &c->stream;
    if (!s->is_dirty) {
        s->is_dirty = true;
        s->dirty_prev = NULL;
        s->dirty_next = srv->dirty;
        if (srv->dirty)
            srv->dirty->stream.dirty_prev = c;
        srv->dirty = c;
    }
    if (srv->is_flush_armed || srv->is_stopping)
        return;
    srv->is_flush_armed = true;
    if (srv->cfg.stream_flush_ms) {
        uv_timer_start(&srv->flush_timer, on_flush_timer, srv->cfg.stream_flush_ms, 0);
    } else {
        uv_prepare_start(&srv->flush_prepare, on_flush_prepare);
        uv_check_start(&srv->flush_check, on_flush_check);
    }
}

static void on_flush_handle_closed(uv_handle_t *h)
{
    http_server *srv = h->data;
    srv->open_handles--;
    http_server_maybe_free(srv);
}

void http_streams_init(http_server *srv)
{
    uv_prepare_init(srv->loop, &srv->flush_prepare);
    uv_check_init(srv->loop, &srv->flush_check);
    uv_timer_init(srv->loop, &srv->flush_timer);
    srv->flush_prepare.data = srv;
    srv->flush_check.data = srv;
    srv->flush_timer.data = srv;
    srv->open_handles += 3;
}

void http_streams_close(http_server *srv)
{
    uv_close((uv_handle_t *)&srv->flush_prepare, on_flush_handle_closed);
    uv_close((uv_handle_t *)&srv->flush_check, on_flush_handle_closed);
    uv_close((uv_handle_t *)&srv->flush_timer, on_flush_handle_closed);
}

/* 0 when len more bytes may be queued; otherwise drops the client. A client with nothing unsent
 * is never refused, whatever the size: the kernel takes what it can. */
static int stream_admit(http_conn *c, size_t len)
{
    size_t queued;
    if (c->phase != PH_STREAM)
        return SB_EDISCONN;
    if (c->stream.kind == HTTP_STREAM_WS && http_ws_is_closing(c))
        return SB_EDISCONN;
    queued = http_conn_queued(c);
    /* Gathered pushes are not the client's fault: hand them to the kernel before judging. */
    if (c->stream.npend && queued + len > c->srv->cfg.stream_max_queued) {
        http_stream_flush(c);
        if (c->phase != PH_STREAM)
            return SB_EDISCONN;
        queued = http_conn_queued(c);
    }
    if (queued && queued + len > c->srv->cfg.stream_max_queued) {
        http_stream_overflow(c);
        return SB_ETOOBIG;
    }
    return 0;
}

void http_stream_overflow(http_conn *c)
{
    SB_INFO("http", "dropping a slow %s client (%zu bytes unsent)",
            c->stream.kind == HTTP_STREAM_SSE ? "SSE" : "WebSocket", http_conn_queued(c));
    c->srv->stats.stream_overflows++;
    c->stream.close_reason = SB_ETOOBIG;
    http_stream_close(&c->stream, 1008, "slow consumer");
}

int http_stream_push(http_stream *s, http_msg *m)
{
    http_conn *c = HTTP_CONN_OF_STREAM(s);
    sb_slice f = http_msg_framing(m, s->kind);
    int rc = stream_admit(c, f.len);
    if (rc)
        return rc;
    if (s->npend == HTTP_STREAM_BATCH) {
        http_stream_flush(c);
        if (c->phase != PH_STREAM)
            return SB_EDISCONN;
    }
    s->pend[s->npend++] = http_msg_ref(m);
    s->pend_bytes += f.len;
    mark_dirty(c);
    return 0;
}

int http_stream_send_text(http_stream *s, sb_slice text)
{
    http_conn *c = HTTP_CONN_OF_STREAM(s);
    http_msg *m;
    int rc = stream_admit(c, text.len);
    if (rc)
        return rc;
    if (s->kind == HTTP_STREAM_WS)
        return http_ws_send_text(c, text);
    m = http_msg_new((sb_slice){NULL, 0}, (sb_slice){NULL, 0}, text);
    if (!m)
        return SB_ENOMEM;
    rc = http_stream_push(s, m);
    http_msg_unref(m);
    return rc;
}

void http_stream_close(http_stream *s, uint16_t code, const char *reason)
{
    http_conn *c = HTTP_CONN_OF_STREAM(s);
    if (c->phase != PH_STREAM)
        return;
    if (s->kind == HTTP_STREAM_WS) {
        http_ws_close(c, code, reason);
    } else {
        json_t *j = json_pack("{s:i,s:s}", "code", (int)code, "reason", reason ? reason : "");
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        http_msg *m =
            text ? http_msg_new((sb_slice){NULL, 0}, SB_SLICE_LIT("close"), sb_slice_cstr(text))
                 : NULL;
        /* The final event goes out whatever the queue holds: it is small and the last one. */
        if (m)
            http_conn_write(c, m->sse.ptr, m->sse.len, NULL, m);
        json_decref(j);
        free(text);
    }
    http_conn_finish(c, s->close_reason);
}

http_stream_kind http_stream_get_kind(const http_stream *s)
{
    return s->kind;
}

http_request *http_stream_request(http_stream *s)
{
    return &HTTP_CONN_OF_STREAM(s)->req;
}

size_t http_stream_queued(const http_stream *s)
{
    return http_conn_queued(HTTP_CONN_OF_STREAM((http_stream *)s));
}

void http_stream_set_user(http_stream *s, void *ud)
{
    s->user = ud;
}

void *http_stream_user(const http_stream *s)
{
    return s->user;
}
