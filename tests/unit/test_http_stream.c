/* test_http_stream.c: the streaming transports over a live server: SSE framing, Last-Event-ID and
 * heartbeats; the WebSocket handshake, echo, ping/pong, pushed frames, close and the message-size
 * cap; slow SSE and WebSocket clients dropped with a reason; long-poll answered later, on timeout,
 * by default, and abandoned by its client; and what a server stop does to open streams. */
#include "http_test_util.h"

#include "core/error.h"

#include <openssl/rand.h>

static ht_fixture fx;

/* ---- message framing (no server) ---- */

static void test_msg_framing(void **state)
{
    http_msg *m, *big;
    sb_slice f;
    char *data = malloc(70000);
    (void)state;
    m = http_msg_new(SB_SLICE_LIT("7"), SB_SLICE_LIT("queueCount"), SB_SLICE_LIT("a\nb\r\nc"));
    assert_non_null(m);
    f = http_msg_framing(m, HTTP_STREAM_SSE);
    assert_true(
        sb_slice_eq(f, SB_SLICE_LIT("id: 7\nevent: queueCount\ndata: a\ndata: b\ndata: c\n\n")));
    f = http_msg_framing(m, HTTP_STREAM_WS);
    assert_int_equal(f.len, 2 + 6);
    assert_int_equal((unsigned char)f.ptr[0], 0x81);
    assert_int_equal((unsigned char)f.ptr[1], 6);
    assert_memory_equal(f.ptr + 2, "a\nb\r\nc", 6);
    assert_ptr_equal(http_msg_ref(m), m);
    http_msg_unref(m);
    http_msg_unref(m);
    /* No id, no event: data only; empty data still makes an event. */
    m = http_msg_new((sb_slice){NULL, 0}, (sb_slice){NULL, 0}, (sb_slice){NULL, 0});
    assert_true(sb_slice_eq(http_msg_framing(m, HTTP_STREAM_SSE), SB_SLICE_LIT("data: \n\n")));
    http_msg_unref(m);
    /* A newline in the id or event would forge fields: refused. */
    assert_null(http_msg_new(SB_SLICE_LIT("1\ndata: x"), (sb_slice){NULL, 0}, SB_SLICE_LIT("y")));
    assert_null(http_msg_new((sb_slice){NULL, 0}, SB_SLICE_LIT("a\rb"), SB_SLICE_LIT("y")));
    /* WebSocket length forms: 16-bit and 64-bit. */
    memset(data, 'x', 70000);
    big = http_msg_new((sb_slice){NULL, 0}, (sb_slice){NULL, 0}, (sb_slice){data, 300});
    f = http_msg_framing(big, HTTP_STREAM_WS);
    assert_int_equal((unsigned char)f.ptr[1], 126);
    assert_int_equal(((unsigned char)f.ptr[2] << 8) | (unsigned char)f.ptr[3], 300);
    http_msg_unref(big);
    big = http_msg_new((sb_slice){NULL, 0}, (sb_slice){NULL, 0}, (sb_slice){data, 70000});
    f = http_msg_framing(big, HTTP_STREAM_WS);
    assert_int_equal((unsigned char)f.ptr[1], 127);
    assert_int_equal(f.len, 10 + 70000);
    assert_int_equal(((unsigned char)f.ptr[7] << 16) | ((unsigned char)f.ptr[8] << 8) |
                         (unsigned char)f.ptr[9],
                     70000);
    http_msg_unref(big);
    free(data);
}

/* ---- server handlers ---- */

static int n_open, n_close, n_message, last_reason, push_rc_overflow, push_rc_after, n_pushed;
static int n_hold_cb, hold_reasons[4];
static char last_event_id[64];
static http_msg *shared_msg;
static http_request *late_req;
static uv_timer_t late_timer;

static void on_close(http_stream *s, int reason, void *ud)
{
    (void)s;
    (void)ud;
    n_close++;
    last_reason = reason;
}

static void on_message(http_stream *s, sb_slice text, void *ud)
{
    char buf[128];
    int n;
    (void)ud;
    n_message++;
    if (sb_slice_eq(text, SB_SLICE_LIT("push"))) {
        assert_int_equal(http_stream_push(s, shared_msg), 0);
        return;
    }
    if (sb_slice_eq(text, SB_SLICE_LIT("bye"))) {
        http_stream_close(s, 1000, "as you wish");
        return;
    }
    n = snprintf(buf, sizeof(buf), "echo:%.*s", (int)text.len, text.ptr);
    assert_int_equal(http_stream_send_text(s, (sb_slice){buf, (size_t)n}), 0);
}

static const http_stream_callbacks stream_cb = {on_message, on_close};

static void h_events(http_request *req, void *ud)
{
    http_stream *s;
    (void)ud;
    sb_slice_copy(http_request_last_event_id(req), last_event_id, sizeof(last_event_id));
    s = http_sse_start(req, &stream_cb, NULL);
    assert_non_null(s);
    n_open++;
    assert_int_equal(http_stream_get_kind(s), HTTP_STREAM_SSE);
    assert_ptr_equal(http_stream_request(s), req);
    assert_int_equal(http_stream_push(s, shared_msg), 0);
    assert_int_equal(http_stream_send_text(s, SB_SLICE_LIT("line1\nline2")), 0);
}

static void h_ws(http_request *req, void *ud)
{
    http_stream *s;
    (void)ud;
    s = http_ws_accept(req, &stream_cb, NULL);
    if (s) {
        n_open++;
        assert_int_equal(http_stream_get_kind(s), HTTP_STREAM_WS);
    }
}

static void flood(http_stream *s)
{
    static char block[16384];
    http_msg *m;
    int i, rc = 0;
    memset(block, 'f', sizeof(block));
    m = http_msg_new((sb_slice){NULL, 0}, (sb_slice){NULL, 0}, (sb_slice){block, sizeof(block)});
    for (i = 0; i < 20000 && rc == 0; i++) {
        rc = http_stream_push(s, m);
        if (!rc)
            n_pushed++;
    }
    push_rc_overflow = rc;
    push_rc_after = http_stream_push(s, m);
    http_msg_unref(m);
}

static void h_flood_sse(http_request *req, void *ud)
{
    http_stream *s = http_sse_start(req, &stream_cb, NULL);
    (void)ud;
    n_open++;
    flood(s);
}

static void h_flood_ws(http_request *req, void *ud)
{
    http_stream *s = http_ws_accept(req, &stream_cb, NULL);
    (void)ud;
    n_open++;
    flood(s);
}

static void hold_cb(http_request *req, int reason, void *ud)
{
    const char *mode = ud;
    if (n_hold_cb < 4)
        hold_reasons[n_hold_cb] = reason;
    n_hold_cb++;
    if (reason == SB_ETIMEDOUT && !strcmp(mode, "timeout"))
        http_respond(req, 200, "application/json", NULL, 0, SB_SLICE_LIT("[]"));
}

static void late_answer(uv_timer_t *t)
{
    (void)t;
    assert_int_equal(http_respond(late_req, 200, "text/plain", NULL, 0, SB_SLICE_LIT("late")), 0);
    /* Answering twice is refused (the request is gone). */
    late_req = NULL;
}

static void h_poll(http_request *req, void *ud)
{
    sb_slice mode = http_request_query(req, "mode");
    (void)ud;
    if (sb_slice_eq(mode, SB_SLICE_LIT("complete"))) {
        late_req = req;
        assert_int_equal(http_request_hold(req, 5000, hold_cb, "complete"), 0);
        uv_timer_start(&late_timer, late_answer, 30, 0);
    } else if (sb_slice_eq(mode, SB_SLICE_LIT("timeout"))) {
        assert_int_equal(http_request_hold(req, 100, hold_cb, "timeout"), 0);
    } else if (sb_slice_eq(mode, SB_SLICE_LIT("silent"))) {
        assert_int_equal(http_request_hold(req, 100, hold_cb, "silent"), 0);
    } else {
        assert_int_equal(http_request_hold(req, 0, hold_cb, "forever"), 0);
    }
}

static uint32_t flush_ms, hb_ms;

/* 40 pushes in one go: more than a batch (16), so batches are flushed inline and at the end. */
static void h_burst(http_request *req, void *ud)
{
    http_stream *s = http_sse_start(req, &stream_cb, NULL);
    size_t expect = 0;
    int i;
    (void)ud;
    n_open++;
    for (i = 1; i <= 40; i++) {
        char id[8], data[16];
        int a = snprintf(id, sizeof(id), "%d", i), b = snprintf(data, sizeof(data), "n=%d", i);
        http_msg *m = http_msg_new((sb_slice){id, (size_t)a}, (sb_slice){NULL, 0},
                                   (sb_slice){data, (size_t)b});
        assert_int_equal(http_stream_push(s, m), 0);
        http_msg_unref(m);
        /* Gathered, not yet written: counted as queued until the end of the iteration. */
        expect += 15 + 2 * (size_t)a;
        if (i <= 16)
            assert_int_equal(http_stream_queued(s), expect);
    }
}

#define FAN_CLIENTS 400
#define FAN_EVENTS 25
static http_stream *fan[FAN_CLIENTS];
static int nfan;

static void h_fan(http_request *req, void *ud)
{
    (void)ud;
    fan[nfan] = http_sse_start(req, &stream_cb, NULL);
    assert_non_null(fan[nfan]);
    nfan++;
    n_open++;
}

static void start(size_t max_queued, size_t ws_max)
{
    static const http_route routes[] = {
        {"GET", "/events", h_events, NULL, NULL, NULL},
        {"GET", "/ws", h_ws, NULL, NULL, NULL},
        {"GET", "/flood/sse", h_flood_sse, NULL, NULL, NULL},
        {"GET", "/flood/ws", h_flood_ws, NULL, NULL, NULL},
        {"GET", "/poll", h_poll, NULL, NULL, NULL},
        {"GET", "/burst", h_burst, NULL, NULL, NULL},
        {"GET", "/fan", h_fan, NULL, NULL, NULL},
    };
    http_server_config cfg = {0};
    cfg.heartbeat_ms = hb_ms ? hb_ms : 50;
    cfg.stream_max_queued = max_queued;
    cfg.ws_max_message = ws_max;
    cfg.linger_ms = 3000;
    cfg.stream_flush_ms = flush_ms;
    n_open = n_close = n_message = n_pushed = n_hold_cb = 0;
    last_reason = push_rc_overflow = push_rc_after = 12345;
    memset(hold_reasons, 0, sizeof(hold_reasons));
    memset(last_event_id, 0, sizeof(last_event_id));
    shared_msg = http_msg_new(SB_SLICE_LIT("42"), SB_SLICE_LIT("queueMemberStatus"),
                              SB_SLICE_LIT("{\"status\":\"paused\"}"));
    ht_start(&fx, &cfg);
    uv_timer_init(&fx.loop, &late_timer);
    assert_int_equal(http_router_add_table(fx.router, routes, 7), 0);
}

static void stop(void)
{
    uv_close((uv_handle_t *)&late_timer, NULL);
    ht_stop(&fx);
    http_msg_unref(shared_msg);
}

/* ---- SSE ---- */

typedef struct raw_out {
    char buf[65536];
    size_t len;
    char extra[4096];
    int fd1, fd2;
    size_t total;
} raw_out;

/* Reads into o->buf until needle appears (or EOF/timeout). */
static void read_until(int fd, raw_out *o, const char *needle)
{
    while (o->len + 1 < sizeof(o->buf) && !strstr(o->buf, needle)) {
        ssize_t n = recv(fd, o->buf + o->len, sizeof(o->buf) - 1 - o->len, 0);
        if (n <= 0)
            break;
        o->len += (size_t)n;
        o->buf[o->len] = '\0';
    }
}

static void sse_client(void *arg)
{
    raw_out *o = arg;
    int fd = ht_connect(fx.port, 0);
    if (fd < 0)
        return;
    ht_sends(fd, "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                 "Last-Event-ID: 41\r\n\r\n");
    /* Both events, then at least one heartbeat comment. */
    read_until(fd, o, "data: line2\n\n:\n\n");
    close(fd);
}

static void test_sse_framing_last_event_id_and_heartbeat(void **state)
{
    static raw_out o;
    const char *body;
    (void)state;
    memset(&o, 0, sizeof(o));
    start(0, 0);
    ht_run_client(&fx, sse_client, &o);
    assert_string_equal(last_event_id, "41");
    assert_int_equal(ht_status(o.buf), 200);
    assert_non_null(strstr(o.buf, "Content-Type: text/event-stream\r\n"));
    assert_non_null(strstr(o.buf, "Cache-Control: no-cache\r\n"));
    body = strstr(o.buf, "\r\n\r\n");
    assert_non_null(body);
    {
        static const char expect[] =
            "id: 42\nevent: queueMemberStatus\ndata: {\"status\":\"paused\"}"
            "\n\ndata: line1\ndata: line2\n\n:\n\n";
        /* More heartbeats may follow on a slow machine: compare the beginning. */
        if (strncmp(body + 4, expect, sizeof(expect) - 1))
            fail_msg("SSE body: %s", body + 4);
    }
    ht_spin(&fx, 100); /* the server sees the client leave */
    assert_int_equal(n_open, 1);
    assert_int_equal(n_close, 1);
    assert_int_equal(last_reason, 0);
    stop();
}

static uint64_t burst_ms;

static void burst_client(void *arg)
{
    raw_out *o = arg;
    uint64_t t0;
    int fd = ht_connect(fx.port, 0);
    if (fd < 0)
        return;
    ht_sends(fd, "GET /burst HTTP/1.1\r\nHost: x\r\n\r\n");
    read_until(fd, o, "\r\n\r\n");
    t0 = ht_now_ms();
    read_until(fd, o, "data: n=40\n\n");
    burst_ms = ht_now_ms() - t0;
    close(fd);
}

static void check_burst(const raw_out *o)
{
    const char *p = strstr(o->buf, "\r\n\r\n");
    int i;
    assert_non_null(p);
    p += 4;
    for (i = 1; i <= 40; i++) {
        char ev[64];
        int n = snprintf(ev, sizeof(ev), "id: %d\ndata: n=%d\n\n", i, i);
        /* Heartbeats (":\n\n") may sit between events, never inside one. */
        while (!strncmp(p, ":\n\n", 3))
            p += 3;
        if (strncmp(p, ev, (size_t)n))
            fail_msg("event %d: expected '%s', got '%.40s'", i, ev, p);
        p += n;
    }
}

static void test_pushes_are_batched_in_order(void **state)
{
    static raw_out o;
    (void)state;
    memset(&o, 0, sizeof(o));
    flush_ms = 0;
    start(0, 0);
    ht_run_client(&fx, burst_client, &o);
    check_burst(&o);
    ht_spin(&fx, 50);
    assert_int_equal(n_close, 1);
    stop();
    /* With stream_flush_ms the last partial batch waits for the flush timer. */
    memset(&o, 0, sizeof(o));
    flush_ms = 60;
    start(0, 0);
    ht_run_client(&fx, burst_client, &o);
    flush_ms = 0;
    check_burst(&o);
    assert_true(burst_ms >= 40);
    ht_spin(&fx, 50);
    assert_int_equal(n_close, 1);
    stop();
}

/* ---- fan-out: one message object, many clients ---- */

typedef struct fan_out {
    int fds[FAN_CLIENTS];
    int connected;
    int complete; /* clients that received every event, in order */
} fan_out;

static void fan_connect(void *arg)
{
    static const char head[] = "HTTP/1.1 200 OK\r\n"
                               "Server: switchboard\r\n"
                               "Content-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\n"
                               "X-Accel-Buffering: no\r\n"
                               "Access-Control-Allow-Origin: *\r\n"
                               "Connection: close\r\n"
                               "\r\n";
    fan_out *o = arg;
    char buf[sizeof(head)];
    int i;
    for (i = 0; i < FAN_CLIENTS; i++) {
        o->fds[i] = ht_connect(fx.port, 0);
        if (o->fds[i] < 0)
            return;
        ht_sends(o->fds[i], "GET /fan HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    for (i = 0; i < FAN_CLIENTS; i++)
        if (recv(o->fds[i], buf, sizeof(head) - 1, MSG_WAITALL) == (ssize_t)sizeof(head) - 1 &&
            !memcmp(buf, head, sizeof(head) - 1))
            o->connected++;
}

static void fan_read(void *arg)
{
    fan_out *o = arg;
    char expect[FAN_EVENTS * 32], buf[sizeof(expect) + 1];
    size_t elen = 0;
    int i;
    for (i = 0; i < FAN_EVENTS; i++)
        elen +=
            (size_t)snprintf(expect + elen, sizeof(expect) - elen, "id: %d\ndata: ev%d\n\n", i, i);
    for (i = 0; i < FAN_CLIENTS; i++) {
        if (recv(o->fds[i], buf, elen, MSG_WAITALL) == (ssize_t)elen && !memcmp(buf, expect, elen))
            o->complete++;
        close(o->fds[i]);
    }
}

static void test_fanout_to_many_clients(void **state)
{
    static fan_out o;
    http_server_stats st;
    http_msg *msgs[FAN_EVENTS];
    int i, j;
    (void)state;
    memset(&o, 0, sizeof(o));
    nfan = 0;
    hb_ms = 60000; /* no heartbeat comments between the exact bytes compared below */
    start(0, 0);
    hb_ms = 0;
    ht_run_client(&fx, fan_connect, &o);
    assert_int_equal(o.connected, FAN_CLIENTS);
    assert_int_equal(nfan, FAN_CLIENTS);
    http_server_get_stats(fx.srv, &st);
    assert_int_equal(st.streams, FAN_CLIENTS);
    /* Each event built once and pushed to every client: one object, FAN_CLIENTS references. */
    for (i = 0; i < FAN_EVENTS; i++) {
        char id[8], data[16];
        int a = snprintf(id, sizeof(id), "%d", i), b = snprintf(data, sizeof(data), "ev%d", i);
        msgs[i] = http_msg_new((sb_slice){id, (size_t)a}, (sb_slice){NULL, 0},
                               (sb_slice){data, (size_t)b});
        for (j = 0; j < FAN_CLIENTS; j++)
            assert_int_equal(http_stream_push(fan[j], msgs[i]), 0);
    }
    for (i = 0; i < FAN_EVENTS; i++)
        http_msg_unref(msgs[i]); /* the clients' references keep them alive until written */
    ht_run_client(&fx, fan_read, &o);
    assert_int_equal(o.complete, FAN_CLIENTS);
    ht_spin(&fx, 100);
    assert_int_equal(n_close, FAN_CLIENTS);
    assert_int_equal(last_reason, 0);
    http_server_get_stats(fx.srv, &st);
    assert_int_equal(st.streams, 0);
    assert_int_equal(st.stream_overflows, 0);
    stop();
}

/* ---- WebSocket ---- */

/* opcode | 0x100 sends the frame without FIN (a fragment that more will follow). */
static void ws_send_frame(int fd, int opcode, const char *payload, size_t len)
{
    unsigned char f[256];
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t i, h = 2;
    f[0] = (unsigned char)((opcode & 0x100 ? 0 : 0x80) | (opcode & 0x0f));
    if (len < 126) {
        f[1] = (unsigned char)(0x80 | len);
    } else {
        f[1] = 0x80 | 126;
        f[2] = (unsigned char)(len >> 8);
        f[3] = (unsigned char)len;
        h = 4;
    }
    memcpy(f + h, mask, 4);
    ht_send(fd, f, h + 4);
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)(payload[i] ^ mask[i % 4]);
        ht_send(fd, &ch, 1);
    }
}

static int recv_exact(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = recv(fd, c, n, 0);
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads one server frame; keeps up to cap payload bytes in out. Returns the opcode or -1. */
static int ws_read_frame(int fd, char *out, size_t cap, size_t *len)
{
    unsigned char h[10];
    uint64_t n;
    size_t i, kept = 0, total;
    if (recv_exact(fd, h, 2))
        return -1;
    n = h[1] & 0x7f;
    total = (size_t)n;
    if (n == 126) {
        if (recv_exact(fd, h + 2, 2))
            return -1;
        n = ((uint64_t)h[2] << 8) | h[3];
        total = (size_t)n;
    } else if (n == 127) {
        if (recv_exact(fd, h + 2, 8))
            return -1;
        n = 0;
        for (i = 0; i < 8; i++)
            n = (n << 8) | h[2 + i];
    }
    total = (size_t)n;
    while (n) {
        char chunk[8192];
        size_t take = n < sizeof(chunk) ? (size_t)n : sizeof(chunk);
        if (recv_exact(fd, chunk, take))
            return -1;
        for (i = 0; i < take && kept + 1 < cap; i++)
            out[kept++] = chunk[i];
        n -= take;
    }
    out[kept] = '\0';
    *len = total;
    return h[0] & 0x0f;
}

/* Reads a response head byte by byte, so that frames behind it stay in the socket. */
static void recv_head(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size && recv(fd, buf + n, 1, 0) == 1) {
        n++;
        buf[n] = '\0';
        if (n >= 4 && !memcmp(buf + n - 4, "\r\n\r\n", 4))
            break;
    }
    buf[n] = '\0';
}

typedef struct ws_out {
    char head[2048];
    int op[6];
    char payload[6][256];
    size_t plen[6];
    int eof;
    char bad1[2048], bad2[2048], big_close[256];
    char frag[64];
    int frag_pong;
    int big_op;
} ws_out;

static const char HANDSHAKE[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                "Connection: keep-alive, Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n";

static void ws_client(void *arg)
{
    ws_out *o = arg;
    char tmp[16];
    int fd = ht_connect(fx.port, 0), i = 0;
    size_t n;
    if (fd < 0)
        return;
    ht_sends(fd, HANDSHAKE);
    recv_head(fd, o->head, sizeof(o->head));
    ws_send_frame(fd, 1, "hello", 5);
    o->op[i] = ws_read_frame(fd, o->payload[i], 256, &o->plen[i]);
    i++;
    /* A message in two fragments, with a ping between them (RFC 6455 5.4 allows it). */
    ws_send_frame(fd, 0x100 | 1, "fr", 2);
    ws_send_frame(fd, 9, "mid", 3);
    ws_send_frame(fd, 0, "ag", 2);
    for (int k = 0; k < 2; k++) {
        int op;
        size_t flen;
        char fp[64];
        do
            op = ws_read_frame(fd, fp, sizeof(fp), &flen);
        while (op == 9);
        if (op == 10 && !strcmp(fp, "mid"))
            o->frag_pong = 1;
        else if (op == 1)
            snprintf(o->frag, sizeof(o->frag), "%s", fp);
    }
    ws_send_frame(fd, 9, "p1", 2); /* ping */
    /* Heartbeat pings (every 50 ms) may come in between: skip them. */
    do
        o->op[i] = ws_read_frame(fd, o->payload[i], 256, &o->plen[i]);
    while (o->op[i] == 9);
    i++;
    ws_send_frame(fd, 1, "push", 4);
    do
        o->op[i] = ws_read_frame(fd, o->payload[i], 256, &o->plen[i]);
    while (o->op[i] == 9);
    i++;
    ws_send_frame(fd, 8, "\x03\xe8", 2); /* close 1000 */
    do
        o->op[i] = ws_read_frame(fd, o->payload[i], 256, &o->plen[i]);
    while (o->op[i] == 9);
    o->eof = recv(fd, tmp, sizeof(tmp), 0) == 0;
    close(fd);
    (void)n;
}

static void test_ws_handshake_echo_ping_push_close(void **state)
{
    static ws_out o;
    (void)state;
    memset(&o, 0, sizeof(o));
    start(0, 0);
    ht_run_client(&fx, ws_client, &o);
    assert_int_equal(ht_status(o.head), 101);
    /* RFC 6455 1.3's own example key and answer. */
    assert_non_null(strstr(o.head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_non_null(strstr(o.head, "Upgrade: websocket\r\n"));
    assert_int_equal(o.op[0], 1);
    assert_string_equal(o.payload[0], "echo:hello");
    assert_string_equal(o.frag, "echo:frag");
    assert_int_equal(o.frag_pong, 1);
    assert_int_equal(o.op[1], 10); /* pong */
    assert_string_equal(o.payload[1], "p1");
    assert_int_equal(o.op[2], 1);
    assert_string_equal(o.payload[2], "{\"status\":\"paused\"}");
    assert_int_equal(o.op[3], 8);
    assert_int_equal(o.plen[3], 2);
    assert_int_equal(((unsigned char)o.payload[3][0] << 8) | (unsigned char)o.payload[3][1], 1000);
    assert_int_equal(o.eof, 1);
    ht_spin(&fx, 100);
    assert_int_equal(n_open, 1);
    assert_int_equal(n_message, 3); /* "hello", "frag", "push"; pings and close are not messages */
    assert_int_equal(n_close, 1);
    assert_int_equal(last_reason, 0);
    stop();
}

static void ws_bad_client(void *arg)
{
    ws_out *o = arg;
    char tmp[16];
    size_t n;
    int fd = ht_connect(fx.port, 0);
    ht_sends(fd, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n");
    ht_recv_response(fd, o->bad1, sizeof(o->bad1));
    close(fd);
    fd = ht_connect(fx.port, 0);
    ht_sends(fd, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    ht_recv_response(fd, o->bad2, sizeof(o->bad2));
    close(fd);
    /* A message over ws_max_message (100 bytes here): closed with 1009. */
    fd = ht_connect(fx.port, 0);
    ht_sends(fd, HANDSHAKE);
    recv_head(fd, o->head, sizeof(o->head));
    {
        char big[200];
        memset(big, 'B', sizeof(big));
        ws_send_frame(fd, 1, big, sizeof(big));
    }
    do
        o->big_op = ws_read_frame(fd, o->big_close, sizeof(o->big_close), &n);
    while (o->big_op == 9);
    o->eof = recv(fd, tmp, sizeof(tmp), 0) == 0;
    close(fd);
}

static void test_ws_bad_handshakes_and_oversized_message(void **state)
{
    static ws_out o;
    (void)state;
    memset(&o, 0, sizeof(o));
    start(0, 100);
    ht_run_client(&fx, ws_bad_client, &o);
    assert_int_equal(ht_status(o.bad1), 400);
    assert_non_null(strstr(o.bad1, "Sec-WebSocket-Key"));
    assert_int_equal(ht_status(o.bad2), 426);
    assert_non_null(strstr(o.bad2, "Sec-WebSocket-Version: 13\r\n"));
    assert_int_equal(ht_status(o.head), 101);
    assert_int_equal(o.big_op, 8);
    assert_int_equal(((unsigned char)o.big_close[0] << 8) | (unsigned char)o.big_close[1], 1009);
    assert_int_equal(o.eof, 1);
    ht_spin(&fx, 100);
    assert_int_equal(n_open, 1); /* the two bad handshakes never became streams */
    assert_int_equal(n_message, 0);
    assert_int_equal(n_close, 1);
    assert_int_equal(last_reason, SB_EPROTO);
    stop();
}

/* ---- slow clients ---- */

static void slow_sse_client(void *arg)
{
    raw_out *o = arg;
    char chunk[65536];
    int fd = ht_connect(fx.port, 4096);
    if (fd < 0)
        return;
    ht_sends(fd, "GET /flood/sse HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(300 * 1000); /* read nothing meanwhile: the server floods */
    /* Now drain everything, keeping the last bytes. */
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0)
            break;
        o->total += (size_t)n;
        if ((size_t)n >= sizeof(o->extra) - 1) {
            memcpy(o->extra, chunk + n - (sizeof(o->extra) - 1), sizeof(o->extra) - 1);
            o->extra[sizeof(o->extra) - 1] = '\0';
        } else {
            size_t keep = strlen(o->extra), room = sizeof(o->extra) - 1;
            if (keep + (size_t)n > room) {
                memmove(o->extra, o->extra + (keep + (size_t)n - room), room - (size_t)n);
                keep = room - (size_t)n;
            }
            memcpy(o->extra + keep, chunk, (size_t)n);
            o->extra[keep + (size_t)n] = '\0';
        }
    }
    close(fd);
}

static void test_slow_sse_client_is_dropped_with_a_reason(void **state)
{
    static raw_out o;
    static const char last[] =
        "event: close\ndata: {\"code\":1008,\"reason\":\"slow consumer\"}\n\n";
    http_server_stats st;
    size_t tl;
    (void)state;
    memset(&o, 0, sizeof(o));
    start(65536, 0);
    ht_run_client(&fx, slow_sse_client, &o);
    ht_spin(&fx, 100);
    assert_int_equal(push_rc_overflow, SB_ETOOBIG);
    assert_int_equal(push_rc_after, SB_EDISCONN);
    assert_true(n_pushed > 0 && n_pushed < 20000);
    tl = strlen(o.extra);
    assert_true(tl > sizeof(last));
    assert_string_equal(o.extra + tl - (sizeof(last) - 1), last);
    /* Everything pushed before the cut arrived, whole. */
    assert_true(o.total >= (size_t)n_pushed * (16384 + 8));
    assert_int_equal(n_close, 1);
    assert_int_equal(last_reason, SB_ETOOBIG);
    http_server_get_stats(fx.srv, &st);
    assert_int_equal(st.stream_overflows, 1);
    assert_int_equal(st.streams, 0);
    stop();
}

typedef struct slow_ws_out {
    char head[2048];
    int frames, close_op;
    char close_payload[256];
    size_t close_len;
} slow_ws_out;

static void slow_ws_client(void *arg)
{
    slow_ws_out *o = arg;
    char p[64];
    size_t n;
    int op, fd = ht_connect(fx.port, 4096);
    if (fd < 0)
        return;
    ht_sends(fd,
             "GET /flood/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    usleep(300 * 1000);
    recv_head(fd, o->head, sizeof(o->head));
    while ((op = ws_read_frame(fd, p, sizeof(p), &n)) == 1)
        o->frames++;
    o->close_op = op;
    if (op == 8) {
        memcpy(o->close_payload, p, sizeof(p));
        o->close_len = n;
    }
    close(fd);
}

static void test_slow_ws_client_is_dropped_with_a_close_frame(void **state)
{
    static slow_ws_out o;
    (void)state;
    memset(&o, 0, sizeof(o));
    start(65536, 0);
    ht_run_client(&fx, slow_ws_client, &o);
    ht_spin(&fx, 100);
    assert_int_equal(ht_status(o.head), 101);
    assert_int_equal(push_rc_overflow, SB_ETOOBIG);
    assert_int_equal(o.frames, n_pushed);
    assert_int_equal(o.close_op, 8);
    assert_int_equal(o.close_len, 2 + 13);
    assert_int_equal(((unsigned char)o.close_payload[0] << 8) | (unsigned char)o.close_payload[1],
                     1008);
    assert_memory_equal(o.close_payload + 2, "slow consumer", 13);
    assert_int_equal(n_close, 1);
    assert_int_equal(last_reason, SB_ETOOBIG);
    stop();
}

/* ---- long-poll ---- */

typedef struct poll_out {
    ht_resp r[3];
    uint64_t ms[3];
} poll_out;

static void poll_client(void *arg)
{
    poll_out *o = arg;
    CURL *h = curl_easy_init();
    uint64_t t0 = ht_now_ms();
    ht_curl(h, fx.port, "GET", "/poll?mode=complete", NULL, NULL, &o->r[0]);
    o->ms[0] = ht_now_ms() - t0;
    t0 = ht_now_ms();
    ht_curl(h, fx.port, "GET", "/poll?mode=timeout", NULL, NULL, &o->r[1]);
    o->ms[1] = ht_now_ms() - t0;
    t0 = ht_now_ms();
    ht_curl(h, fx.port, "GET", "/poll?mode=silent", NULL, NULL, &o->r[2]);
    o->ms[2] = ht_now_ms() - t0;
    curl_easy_cleanup(h);
}

static void test_long_poll_completion_timeout_and_default(void **state)
{
    static poll_out o;
    (void)state;
    start(0, 0);
    ht_run_client(&fx, poll_client, &o);
    assert_int_equal(o.r[0].status, 200);
    assert_string_equal(o.r[0].body, "late");
    assert_true(o.ms[0] >= 25 && o.ms[0] < 2000);
    assert_null(late_req);
    assert_int_equal(o.r[1].status, 200);
    assert_string_equal(o.r[1].body, "[]");
    assert_true(o.ms[1] >= 90 && o.ms[1] < 2000);
    assert_int_equal(o.r[2].status, 204);
    assert_int_equal(o.r[2].body_len, 0);
    /* One connection for all three: a held answer keeps the connection alive. */
    assert_int_equal(o.r[1].connects, 0);
    assert_int_equal(o.r[2].connects, 0);
    /* The hold callback ran for the two timeouts, not for the request answered in time. */
    assert_int_equal(n_hold_cb, 2);
    assert_int_equal(hold_reasons[0], SB_ETIMEDOUT);
    assert_int_equal(hold_reasons[1], SB_ETIMEDOUT);
    stop();
}

static void abandon_client(void *arg)
{
    raw_out *o = arg;
    int fd = ht_connect(fx.port, 0);
    if (fd < 0)
        return;
    ht_sends(fd, "GET /poll?mode=forever HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50 * 1000);
    close(fd);
    /* Leave one SSE stream and one held request open for the server stop. */
    o->fd1 = ht_connect(fx.port, 0);
    ht_sends(o->fd1, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    read_until(o->fd1, o, "line2");
    o->fd2 = ht_connect(fx.port, 0);
    ht_sends(o->fd2, "GET /poll?mode=forever HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50 * 1000);
}

static void test_abandoned_poll_and_server_stop(void **state)
{
    static raw_out o;
    (void)state;
    memset(&o, 0, sizeof(o));
    start(0, 0);
    ht_run_client(&fx, abandon_client, &o);
    ht_spin(&fx, 50);
    assert_int_equal(n_hold_cb, 1);
    assert_int_equal(hold_reasons[0], SB_EDISCONN);
    assert_int_equal(n_open, 1);
    assert_int_equal(n_close, 0);
    stop();
    assert_int_equal(n_hold_cb, 2);
    assert_int_equal(hold_reasons[1], SB_ECANCELED);
    assert_int_equal(n_close, 1);
    assert_int_equal(last_reason, SB_ECANCELED);
    close(o.fd1);
    close(o.fd2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_framing),
        cmocka_unit_test(test_sse_framing_last_event_id_and_heartbeat),
        cmocka_unit_test(test_pushes_are_batched_in_order),
        cmocka_unit_test(test_fanout_to_many_clients),
        cmocka_unit_test(test_ws_handshake_echo_ping_push_close),
        cmocka_unit_test(test_ws_bad_handshakes_and_oversized_message),
        cmocka_unit_test(test_slow_sse_client_is_dropped_with_a_reason),
        cmocka_unit_test(test_slow_ws_client_is_dropped_with_a_close_frame),
        cmocka_unit_test(test_long_poll_completion_timeout_and_default),
        cmocka_unit_test(test_abandoned_poll_and_server_stop),
    };
    int rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
