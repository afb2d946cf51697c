/* test_streams_harness.h: the daemon's event path on one libuv loop for the stream tests:
 * pbxsim (in-process) -> AMI client -> model (with the state restore after every login) -> bus ->
 * HTTP server + router + streams, plus small HTTP/SSE/WebSocket clients that live on the same
 * loop, so a test can drive everything step by step with RUN_UNTIL and assert afterwards.
 *
 * The bearer tokens of the fake API: "admin-tok", "sup-tok", "svc-tok" and "agent-EXT" (an agent
 * token of extension EXT).
 */
#ifndef TEST_STREAMS_HARNESS_H
#define TEST_STREAMS_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strndup */
#endif

#include "testutil.h"

#include "ami/client.h"
#include "api/streams.h"
#include "bus/bus.h"
#include "core/buf.h"
#include "core/error.h"
#include "http/router.h"
#include "http/server.h"
#include "model/model.h"
#include "pbxsim.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* Not every test program uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define SH_RUN_UNTIL(h, cond, ms)                                                                  \
    do {                                                                                           \
        uv_update_time(&(h)->loop);                                                                \
        uint64_t end_ = uv_now(&(h)->loop) + (ms);                                                 \
        while (!(cond) && uv_now(&(h)->loop) < end_)                                               \
            uv_run(&(h)->loop, UV_RUN_ONCE);                                                       \
    } while (0)
#define SH_RUN_FOR(h, ms) SH_RUN_UNTIL(h, 0, ms)

typedef struct sh_opts {
    double time_scale;        /* 0 -> 0.1 */
    size_t window_events;     /* 0 -> bus default */
    size_t stream_max_queued; /* 0 -> server default */
    uint32_t token_ttl_ms;    /* 0 -> streams default */
    uint32_t ws_resume_wait_ms;
    size_t max_tokens;
    uint32_t live_flush_ms; /* 0 -> streams default (end of the loop iteration) */
    size_t live_slice;      /* 0 -> streams default */
} sh_opts;

typedef struct sh {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps UV_RUN_ONCE from sleeping long */
    pbxsim *sim;
    ami_client *ami;
    model *m;
    bus *b;
    http_server *srv;
    http_router *router;
    streams *st;
    int port;
    int64_t fake_now; /* 0: real clock for streams; else this */
    int logins;
    int resyncs; /* completed state restores */
    int lists_pending;
    uint64_t published;
    int bearer_calls;
} sh;

static int64_t sh_clock(void *ud)
{
    sh *h = ud;
    if (h->fake_now)
        return h->fake_now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sh_emit(void *ud, bus_event *ev)
{
    sh *h = ud;
    assert_int_equal(bus_publish(h->b, ev, NULL), 0);
    h->published++;
}

static void sh_on_event(ami_client *c, const ami_packet *ev, void *ud)
{
    sh *h = ud;
    (void)c;
    model_handle_event(h->m, "pbx1", ev);
}

static void sh_on_list(ami_client *c, const ami_result *r, void *ud)
{
    sh *h = ud;
    (void)c;
    for (size_t i = 0; i < r->nitems; i++)
        model_handle_event(h->m, "pbx1", r->items[i]);
    if (r->complete)
        model_handle_event(h->m, "pbx1", r->complete);
    if (--h->lists_pending == 0) {
        model_end_resync(h->m, "pbx1");
        h->resyncs++;
    }
}

static void sh_on_ready(ami_client *c, bool reconnected, void *ud)
{
    static const char *const lists[] = {"CoreShowChannels", "QueueStatus", "ExtensionStateList",
                                        "DeviceStateList"};
    sh *h = ud;
    (void)reconnected;
    h->logins++;
    model_begin_resync(h->m, "pbx1");
    h->lists_pending = 4;
    for (int i = 0; i < 4; i++) {
        ami_msg msg;
        ami_msg_init(&msg, "Action", lists[i]);
        if (ami_client_send(c, &msg, AMI_ACTION_LIST, 5000, sh_on_list, h, NULL, 0) < 0)
            h->lists_pending--;
    }
}

static int sh_bearer(void *ud, http_request *req, sb_slice token, streams_role *role, char *ext,
                     size_t ext_size)
{
    sh *h = ud;
    (void)req;
    h->bearer_calls++;
    ext[0] = '\0';
    if (sb_slice_eq(token, SB_SLICE_LIT("admin-tok")))
        *role = STREAMS_ROLE_ADMIN;
    else if (sb_slice_eq(token, SB_SLICE_LIT("sup-tok")))
        *role = STREAMS_ROLE_SUPERVISOR;
    else if (sb_slice_eq(token, SB_SLICE_LIT("svc-tok")))
        *role = STREAMS_ROLE_SERVICE;
    else if (token.len > 6 && memcmp(token.ptr, "agent-", 6) == 0 && token.len - 6 < ext_size) {
        *role = STREAMS_ROLE_AGENT;
        memcpy(ext, token.ptr + 6, token.len - 6);
        ext[token.len - 6] = '\0';
    } else
        return SB_EAUTH;
    return 0;
}

static void sh_tick(uv_timer_t *t)
{
    (void)t;
}

static void sh_start(sh *h, const sh_opts *o)
{
    pbxsim_config pc;
    memset(h, 0, sizeof *h);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->tick), 0);
    assert_int_equal(uv_timer_start(&h->tick, sh_tick, 5, 5), 0);

    pbxsim_config_default(&pc);
    pc.time_scale = o->time_scale > 0 ? o->time_scale : 0.1;
    assert_int_equal(pbxsim_new(&h->loop, &pc, &h->sim), 0);
    assert_int_equal(pbxsim_start(h->sim), 0);

    h->b = bus_new(&(bus_config){.window_events = o->window_events});
    assert_non_null(h->b);
    h->m = model_new(&(model_config){.emit = sh_emit, .emit_ud = h, .id_seed = 42});
    assert_non_null(h->m);

    ami_client_config ac = {.name = "pbx1",
                            .host = "127.0.0.1",
                            .port = pbxsim_port(h->sim),
                            .username = "admin",
                            .secret = "admin-secret",
                            .reconnect_min_ms = 20,
                            .reconnect_max_ms = 100};
    ami_client_callbacks cb = {sh_on_event, NULL, sh_on_ready, h};
    assert_int_equal(ami_client_new(&h->loop, &ac, &cb, &h->ami), 0);
    assert_int_equal(ami_client_start(h->ami), 0);

    assert_int_equal(http_router_init(&h->router), 0);
    streams_config sc = {.loop = &h->loop,
                         .bus = h->b,
                         .model = h->m,
                         .bearer = sh_bearer,
                         .bearer_ud = h,
                         .token_ttl_ms = o->token_ttl_ms,
                         .ws_resume_wait_ms = o->ws_resume_wait_ms,
                         .catchup_chunk_bytes = o->stream_max_queued / 2,
                         .max_tokens = o->max_tokens,
                         .live_flush_ms = o->live_flush_ms,
                         .live_slice_clients = o->live_slice,
                         .base_url = "http://127.0.0.1:1",
                         .now_ms = sh_clock,
                         .clock_ud = h};
    assert_int_equal(streams_new(&sc, &h->st), 0);
    assert_int_equal(streams_add_routes(h->st, h->router), 0);
    http_server_config hc = {.host = "127.0.0.1",
                             .port = 0,
                             .stream_max_queued = o->stream_max_queued,
                             .handler = http_router_handle,
                             .handler_ud = h->router};
    assert_int_equal(http_server_init(&h->srv, &h->loop, &hc), 0);
    assert_int_equal(http_server_start(h->srv), 0);
    h->port = http_server_port(h->srv);
    SH_RUN_UNTIL(h, h->resyncs >= 1, 5000);
    assert_int_equal(h->resyncs, 1);
}

static void sh_stop(sh *h)
{
    http_server_free(h->srv);
    streams_stop(h->st);
    ami_client_stop(h->ami);
    ami_client_free(h->ami);
    pbxsim_free(h->sim);
    uv_close((uv_handle_t *)&h->tick, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    streams_free(h->st);
    http_router_free(h->router);
    model_free(h->m);
    bus_free(h->b);
    assert_int_equal(uv_loop_close(&h->loop), 0);
}

/* ---- a client on the loop: raw HTTP, SSE and WebSocket parsing ---- */

#define HC_MAX_EVENTS 16384

typedef struct hc_event {
    char *id;    /* SSE id, or NULL */
    char *event; /* SSE event name / "close" for a WebSocket close frame, or NULL */
    char *data;
} hc_event;

typedef struct hc {
    sh *h;
    uv_tcp_t tcp;
    uv_connect_t conn;
    char *request;
    bool ws;
    bool connected, eof, closed, closing, reading;
    int status;       /* HTTP status, 0 until the head arrived */
    size_t body_off;  /* where the body starts in in */
    size_t parse_off; /* body bytes parsed into events */
    sb_buf in;
    hc_event ev[HC_MAX_EVENTS];
    size_t nev;
} hc;

static void hc_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    (void)hd;
    buf->base = malloc(sz);
    buf->len = buf->base ? sz : 0;
}

static void hc_add(hc *c, const char *id, size_t idl, const char *evn, size_t evl, const char *d,
                   size_t dl)
{
    if (c->nev >= HC_MAX_EVENTS)
        return;
    hc_event *e = &c->ev[c->nev++];
    e->id = id ? strndup(id, idl) : NULL;
    e->event = evn ? strndup(evn, evl) : NULL;
    e->data = strndup(d ? d : "", dl);
}

static void hc_parse_sse(hc *c)
{
    for (;;) {
        const char *base = c->in.data + c->body_off + c->parse_off;
        size_t avail = c->in.len - c->body_off - c->parse_off;
        const char *end = avail ? memmem(base, avail, "\n\n", 2) : NULL;
        if (!end)
            return;
        const char *id = NULL, *evn = NULL, *d = NULL;
        size_t idl = 0, evl = 0, dl = 0;
        for (const char *p = base; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (n > 4 && memcmp(p, "id: ", 4) == 0)
                id = p + 4, idl = n - 4;
            else if (n > 7 && memcmp(p, "event: ", 7) == 0)
                evn = p + 7, evl = n - 7;
            else if (n >= 6 && memcmp(p, "data: ", 6) == 0)
                d = p + 6, dl = n - 6;
            p += n + 1;
        }
        if (d)
            hc_add(c, id, idl, evn, evl, d, dl);
        c->parse_off += (size_t)(end - base) + 2;
    }
}

static void hc_parse_ws(hc *c)
{
    for (;;) {
        const uint8_t *p = (const uint8_t *)c->in.data + c->body_off + c->parse_off;
        size_t avail = c->in.len - c->body_off - c->parse_off, hl = 2, len;
        if (avail < 2)
            return;
        len = p[1] & 0x7f;
        if (len == 126) {
            if (avail < 4)
                return;
            len = ((size_t)p[2] << 8) | p[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                return;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | p[2 + i];
            hl = 10;
        }
        if (avail < hl + len)
            return;
        int op = p[0] & 0x0f;
        if (op == 1)
            hc_add(c, NULL, 0, NULL, 0, (const char *)p + hl, len);
        else if (op == 8 && len >= 2)
            hc_add(c, NULL, 0, "close", 5, (const char *)p + hl + 2, len - 2);
        c->parse_off += hl + len;
    }
}

static void hc_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    hc *c = s->data;
    if (n > 0)
        assert_int_equal(sb_buf_append(&c->in, buf->base, (size_t)n), 0);
    free(buf->base);
    if (n < 0)
        c->eof = true;
    if (!c->status && c->in.len) {
        const char *e = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
        if (e) {
            c->status = atoi(c->in.data + 9);
            c->body_off = (size_t)(e - c->in.data) + 4;
        }
    }
    if (c->status == 200 && !c->ws)
        hc_parse_sse(c);
    else if (c->status == 101)
        hc_parse_ws(c);
}

static void hc_on_write(uv_write_t *w, int st)
{
    (void)st;
    free(w);
}

static void hc_write(hc *c, const void *p, size_t n)
{
    uv_write_t *w = malloc(sizeof *w + n);
    assert_non_null(w);
    memcpy(w + 1, p, n);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
    assert_int_equal(uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, hc_on_write), 0);
}

static void hc_on_connect(uv_connect_t *r, int st)
{
    hc *c = r->data;
    assert_int_equal(st, 0);
    c->connected = true;
    hc_write(c, c->request, strlen(c->request));
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->tcp, hc_alloc, hc_on_read);
}

/* Opens a connection and sends "METHOD path HTTP/1.1" with extra header lines (each ending in
 * \r\n, may be NULL) and body (may be NULL). */
static hc *hc_open(sh *h, const char *method, const char *path, const char *headers,
                   const char *body)
{
    hc *c = calloc(1, sizeof *c);
    struct sockaddr_in sa;
    sb_buf r;
    assert_non_null(c);
    c->h = h;
    sb_buf_init(&c->in, 64 << 20);
    sb_buf_init(&r, 1 << 20);
    c->ws = headers && strstr(headers, "Upgrade: websocket");
    sb_buf_printf(&r, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s", method, path,
                  c->ws ? "" : "Connection: close\r\n", headers ? headers : "");
    if (body)
        sb_buf_printf(&r, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    else
        sb_buf_puts(&r, "\r\n");
    c->request = sb_buf_steal(&r);
    assert_int_equal(uv_tcp_init(&h->loop, &c->tcp), 0);
    c->tcp.data = c;
    c->conn.data = c;
    uv_ip4_addr("127.0.0.1", h->port, &sa);
    assert_int_equal(uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&sa, hc_on_connect), 0);
    return c;
}

static void hc_on_close(uv_handle_t *hd)
{
    hc *c = hd->data;
    c->closed = true;
}

/* Closes abruptly (a dropped browser) and waits for the handle. */
static void hc_close(hc *c)
{
    if (!c->closing) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, hc_on_close);
    }
    SH_RUN_UNTIL(c->h, c->closed, 2000);
}

static void hc_free(hc *c)
{
    if (!c)
        return;
    hc_close(c);
    for (size_t i = 0; i < c->nev; i++) {
        free(c->ev[i].id);
        free(c->ev[i].event);
        free(c->ev[i].data);
    }
    sb_buf_free(&c->in);
    free(c->request);
    free(c);
}

/* Sends a masked WebSocket text frame. */
static void hc_ws_send(hc *c, const char *text)
{
    size_t n = strlen(text);
    uint8_t f[256];
    assert_true(n < 126 && n + 6 <= sizeof f);
    f[0] = 0x81;
    f[1] = 0x80 | (uint8_t)n;
    f[2] = 1, f[3] = 2, f[4] = 3, f[5] = 4;
    for (size_t i = 0; i < n; i++)
        f[6 + i] = (uint8_t)text[i] ^ f[2 + i % 4];
    hc_write(c, f, n + 6);
}

/* The body after the head (long-poll and JSON answers), NUL-terminated. */
static const char *hc_body(hc *c)
{
    return c->in.data ? c->in.data + c->body_off : "";
}

/* Runs until the whole answer (Connection: close) arrived. */
static void hc_wait_eof(hc *c, uint64_t ms)
{
    SH_RUN_UNTIL(c->h, c->eof, ms);
}

/* POSTs a subscription and returns the stream token (owned) or NULL when the status differs. */
static char *sh_subscribe(sh *h, const char *path, const char *bearer, const char *body,
                          int want_status)
{
    char hdr[256];
    char *tok = NULL;
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", bearer);
    hc *c = hc_open(h, "POST", path, bearer ? hdr : NULL, body);
    hc_wait_eof(c, 3000);
    assert_int_equal(c->status, want_status);
    if (want_status == 201) {
        json_t *j = json_loads(hc_body(c), 0, NULL);
        assert_non_null(j);
        tok = strdup(json_string_value(json_object_get(j, "token")));
        json_decref(j);
    }
    hc_free(c);
    return tok;
}

/* Opens an agent's (ext) or the supervisor's (ext NULL) SSE stream with a stream token; extra
 * header lines may be NULL. */
static hc *sh_sse(sh *h, const char *ext, const char *token, const char *headers)
{
    char path[256];
    if (ext)
        snprintf(path, sizeof path, "/v1/agents/%s/stream?token=%s", ext, token);
    else
        snprintf(path, sizeof path, "/v1/stream?token=%s", token);
    return hc_open(h, "GET", path, headers, NULL);
}

#define SH_WS_HEADERS                                                                              \
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"                   \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

/* Opens an agent's WebSocket stream with a stream token; query may add "&after=N". */
static hc *sh_ws(sh *h, const char *ext, const char *token, const char *query)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/agents/%s/stream/ws?token=%s%s", ext, token,
             query ? query : "");
    return hc_open(h, "GET", path, SH_WS_HEADERS, NULL);
}

/* Field of an event's data (json), as a string into buf ("" when absent). */
static const char *hc_type(const hc_event *e, char *buf, size_t size)
{
    json_t *j = json_loads(e->data, 0, NULL);
    const char *t = j ? json_string_value(json_object_get(j, "type")) : NULL;
    snprintf(buf, size, "%s", t ? t : "");
    json_decref(j);
    return buf;
}

static long long hc_seq(const hc_event *e)
{
    json_t *j = json_loads(e->data, 0, NULL);
    long long s = j ? (long long)json_integer_value(json_object_get(j, "seq")) : -1;
    json_decref(j);
    return s;
}

/* Index of the first event of type after from, or -1. */
static long hc_find(const hc *c, size_t from, const char *type)
{
    char t[64];
    for (size_t i = from; i < c->nev; i++)
        if (strcmp(hc_type(&c->ev[i], t, sizeof t), type) == 0)
            return (long)i;
    return -1;
}

#endif
