/* test_http_server.c: the HTTP/1.1 server end to end on 127.0.0.1: keep-alive reuse (libcurl),
 * pipelining order, every limit's status code (raw sockets), idle and request timeouts, the
 * connection cap, malformed input, and a handler that forgets to answer. */
#include "http_test_util.h"

#include "core/error.h"

/* ---- handlers ---- */

static int n_hello, n_echo, n_slow, n_silent;

static void h_hello(http_request *req, void *ud)
{
    (void)ud;
    n_hello++;
    http_respond(req, 200, "text/plain", NULL, 0, SB_SLICE_LIT("hello"));
}

static void h_echo(http_request *req, void *ud)
{
    (void)ud;
    n_echo++;
    http_respond(req, 200, "application/octet-stream", NULL, 0, http_request_body(req));
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void slow_answer(uv_timer_t *t)
{
    http_request *req = t->data;
    http_respond(req, 200, "text/plain", NULL, 0, SB_SLICE_LIT("slow"));
    uv_close((uv_handle_t *)t, free_handle);
}

static void slow_hold(http_request *req, int reason, void *ud)
{
    (void)req;
    (void)reason;
    (void)ud;
}

/* Answers 50 ms later, from a timer: the pipelined request behind it must wait. */
static void h_slow(http_request *req, void *ud)
{
    uv_timer_t *t = malloc(sizeof(*t));
    (void)ud;
    n_slow++;
    uv_timer_init(&((ht_fixture *)ud)->loop, t);
    t->data = req;
    uv_timer_start(t, slow_answer, 50, 0);
    assert_int_equal(http_request_hold(req, 0, slow_hold, NULL), 0);
    /* Holding twice is refused. */
    assert_int_equal(http_request_hold(req, 0, slow_hold, NULL), SB_EINVAL);
}

static int inject_rc, peer_rc;
static char peer[64];

static void h_inject(http_request *req, void *ud)
{
    static const http_header bad[] = {{"X-A", "b\r\nSet-Cookie: x=1"}};
    static const http_header good[] = {{"X-A", "b"}};
    (void)ud;
    peer_rc = http_request_peer(req, peer, sizeof(peer));
    inject_rc = http_respond(req, 200, "text/plain", bad, 1, SB_SLICE_LIT("no"));
    http_respond(req, 200, "text/plain", good, 1, SB_SLICE_LIT("yes"));
}

static void h_silent(http_request *req, void *ud)
{
    (void)req;
    (void)ud;
    n_silent++;
}

static ht_fixture fx;

static void setup_routes(ht_fixture *f)
{
    static const http_route routes[] = {
        {"GET", "/hello", h_hello, NULL, NULL, NULL},
        {"POST", "/echo", h_echo, NULL, NULL, NULL},
        {"GET", "/silent", h_silent, NULL, NULL, NULL},
        {"GET", "/inject", h_inject, NULL, NULL, NULL},
    };
    http_route slow = {"GET", "/slow", h_slow, f, NULL, NULL};
    assert_int_equal(http_router_add_table(f->router, routes, 4), 0);
    assert_int_equal(http_router_add(f->router, &slow), 0);
}

static void start_small(void)
{
    http_server_config cfg = {0};
    cfg.max_url_bytes = 256;
    cfg.max_header_bytes = 1024;
    cfg.max_headers = 16;
    cfg.max_body_bytes = 1000;
    cfg.request_timeout_ms = 300;
    cfg.idle_timeout_ms = 300;
    cfg.max_connections = 3;
    cfg.linger_ms = 500;
    n_hello = n_echo = n_slow = n_silent = 0;
    ht_start(&fx, &cfg);
    setup_routes(&fx);
}

/* ---- keep-alive ---- */

typedef struct ka_result {
    ht_resp a, b, c;
} ka_result;

static void ka_client(void *arg)
{
    ka_result *r = arg;
    CURL *h = curl_easy_init();
    ht_curl(h, fx.port, "GET", "/hello", NULL, NULL, &r->a);
    ht_curl(h, fx.port, "POST", "/echo", NULL, "ping-body", &r->b);
    ht_curl(h, fx.port, "HEAD", "/hello", NULL, NULL, &r->c);
    curl_easy_cleanup(h);
}

static void test_keep_alive_reuses_the_connection(void **state)
{
    static ka_result r;
    http_server_stats st;
    (void)state;
    start_small();
    ht_run_client(&fx, ka_client, &r);
    assert_int_equal(r.a.rc, CURLE_OK);
    assert_int_equal(r.a.status, 200);
    assert_string_equal(r.a.body, "hello");
    assert_int_equal(r.a.connects, 1);
    assert_non_null(strstr(r.a.head, " GMT\r\n"));
    assert_non_null(strstr(r.a.head, "\r\nDate: "));
    assert_non_null(strstr(r.a.head, "Content-Type: text/plain\r\n"));
    assert_int_equal(r.b.status, 200);
    assert_string_equal(r.b.body, "ping-body");
    assert_int_equal(r.b.connects, 0); /* reused */
    assert_int_equal(r.c.status, 200);
    assert_int_equal(r.c.body_len, 0); /* HEAD: no body */
    assert_non_null(strstr(r.c.head, "Content-Length: 5"));
    assert_int_equal(r.c.connects, 0);
    assert_int_equal(n_hello, 2);
    assert_int_equal(n_echo, 1);
    http_server_get_stats(fx.srv, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.requests, 3);
    ht_stop(&fx);
}

/* ---- pipelining ---- */

typedef struct raw_result {
    char buf[16384];
    size_t len;
    int status;
    uint64_t elapsed;
    int fds_ok;
    char extra[4096];
} raw_result;

static void pipeline_client(void *arg)
{
    raw_result *r = arg;
    int fd = ht_connect(fx.port, 0);
    if (fd < 0)
        return;
    /* Three requests in one write: the slow one first. */
    ht_sends(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    r->len = ht_recv_all(fd, r->buf, sizeof(r->buf));
    close(fd);
}

static void test_pipelined_answers_stay_in_order(void **state)
{
    static raw_result r;
    char *a, *b, *c;
    (void)state;
    start_small();
    memset(&r, 0, sizeof(r));
    ht_run_client(&fx, pipeline_client, &r);
    a = strstr(r.buf, "\r\n\r\nslow");
    b = a ? strstr(a, "\r\n\r\nhello") : NULL;
    c = b ? strstr(b + 4, "\r\n\r\nhello") : NULL;
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(strstr(c - 40, "Connection: close"));
    assert_int_equal(n_slow, 1);
    assert_int_equal(n_hello, 2);
    ht_stop(&fx);
}

/* ---- limits ---- */

typedef struct limit_case {
    const char *name;
    char *request; /* owned */
    int expect;
    const char *code;
    int sleep_ms; /* send the request, then wait (timeouts) */
    char resp[8192];
    int got;
} limit_case;

static limit_case cases[8];
static size_t ncases;

static char *repeat(const char *pre, char ch, size_t n, const char *post)
{
    size_t a = strlen(pre), b = strlen(post);
    char *s = malloc(a + n + b + 1);
    memcpy(s, pre, a);
    memset(s + a, ch, n);
    memcpy(s + a + n, post, b + 1);
    return s;
}

static char *dupz(const char *s)
{
    return repeat(s, 'x', 0, "");
}

static void limits_client(void *arg)
{
    size_t i;
    (void)arg;
    for (i = 0; i < ncases; i++) {
        limit_case *lc = &cases[i];
        int fd = ht_connect(fx.port, 0);
        if (fd < 0)
            continue;
        ht_sends(fd, lc->request);
        ht_recv_all(fd, lc->resp, sizeof(lc->resp));
        lc->got = ht_status(lc->resp);
        close(fd);
    }
}

static void add_case(const char *name, char *req, int expect, const char *code)
{
    limit_case *lc = &cases[ncases++];
    memset(lc, 0, sizeof(*lc));
    lc->name = name;
    lc->request = req;
    lc->expect = expect;
    lc->code = code;
}

static void test_every_limit_answers_its_status(void **state)
{
    size_t i;
    char *many = malloc(4096);
    size_t off = 0;
    (void)state;
    start_small();
    ncases = 0;
    add_case("header bytes",
             repeat("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ", 'a', 2000, "\r\n\r\n"), 431,
             "header_too_large");
    off += (size_t)snprintf(many + off, 4096 - off, "GET /hello HTTP/1.1\r\n");
    for (i = 0; i < 20; i++)
        off += (size_t)snprintf(many + off, 4096 - off, "X-H%zu: v\r\n", i);
    snprintf(many + off, 4096 - off, "\r\n");
    add_case("header count", many, 431, "header_too_large");
    add_case("url", repeat("GET /", 'u', 300, " HTTP/1.1\r\nHost: x\r\n\r\n"), 414, "uri_too_long");
    add_case("declared body",
             dupz("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"), 413,
             "payload_too_large");
    add_case("chunked body",
             repeat("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "7d0\r\n",
                    'b', 2000, "\r\n0\r\n\r\n"),
             413, "payload_too_large");
    add_case("malformed", dupz("GARBAGE / NOPE\r\n\r\n"), 400, "bad_request");
    add_case("bad header", dupz("GET / HTTP/1.1\r\nBad Header\r\n\r\n"), 400, "bad_request");
    add_case("request timeout", dupz("GET /hello HTTP/1.1\r\nHost: x\r\n"), 408, "request_timeout");
    ht_run_client(&fx, limits_client, NULL);
    for (i = 0; i < ncases; i++) {
        limit_case *lc = &cases[i];
        if (lc->got != lc->expect || !strstr(lc->resp, lc->code) ||
            !strstr(lc->resp, "Connection: close") ||
            !strstr(lc->resp, "Content-Type: application/json"))
            fail_msg("%s: expected %d %s, got: %.200s", lc->name, lc->expect, lc->code, lc->resp);
        free(lc->request);
    }
    assert_int_equal(n_hello, 0);
    assert_int_equal(n_echo, 0);
    ht_stop(&fx);
}

/* A body just under the limit passes; the limits are not off by one. */
static void under_limit_client(void *arg)
{
    ht_resp *r = arg;
    char body[1001];
    CURL *h = curl_easy_init();
    memset(body, 'z', 1000);
    body[1000] = '\0';
    ht_curl(h, fx.port, "POST", "/echo", NULL, body, r);
    curl_easy_cleanup(h);
}

static void test_body_at_the_limit_is_accepted(void **state)
{
    static ht_resp r;
    (void)state;
    start_small();
    ht_run_client(&fx, under_limit_client, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1000);
    assert_int_equal(n_echo, 1);
    ht_stop(&fx);
}

/* ---- idle timeout and connection cap ---- */

static void idle_client(void *arg)
{
    raw_result *r = arg;
    uint64_t t0 = ht_now_ms();
    int fd = ht_connect(fx.port, 0);
    if (fd < 0)
        return;
    r->len = ht_recv_all(fd, r->buf, sizeof(r->buf)); /* sends nothing: the server must close */
    r->elapsed = ht_now_ms() - t0;
    close(fd);
}

static void test_idle_connection_is_closed_silently(void **state)
{
    static raw_result r;
    (void)state;
    start_small();
    memset(&r, 0, sizeof(r));
    ht_run_client(&fx, idle_client, &r);
    assert_int_equal(r.len, 0); /* closed without a word */
    assert_true(r.elapsed >= 250 && r.elapsed < 3000);
    ht_stop(&fx);
}

static void cap_client(void *arg)
{
    raw_result *r = arg;
    int a = ht_connect(fx.port, 0), b = ht_connect(fx.port, 0), c = ht_connect(fx.port, 0);
    int d = ht_connect(fx.port, 0), e;
    if (a < 0 || b < 0 || c < 0 || d < 0)
        return;
    r->fds_ok = 1;
    /* The fourth connection is over the cap of 3: 503 and close. */
    ht_sends(d, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ht_recv_all(d, r->buf, sizeof(r->buf));
    close(d);
    /* The first three still work. */
    ht_sends(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ht_recv_response(a, r->extra, sizeof(r->extra));
    r->status = ht_status(r->extra);
    close(a);
    close(b);
    /* A slot is free again once the server has seen the close (bounded retries). */
    for (int i = 0; i < 40; i++) {
        usleep(50 * 1000);
        e = ht_connect(fx.port, 0);
        ht_sends(e, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        ht_recv_all(e, r->extra, sizeof(r->extra));
        close(e);
        r->len = (size_t)ht_status(r->extra);
        if (r->len == 200)
            break;
    }
    close(c);
}

static void test_connection_cap_answers_503(void **state)
{
    static raw_result r;
    http_server_stats st;
    (void)state;
    start_small();
    memset(&r, 0, sizeof(r));
    ht_run_client(&fx, cap_client, &r);
    assert_int_equal(r.fds_ok, 1);
    assert_int_equal(ht_status(r.buf), 503);
    assert_non_null(strstr(r.buf, "\"unavailable\""));
    assert_non_null(strstr(r.buf, "Retry-After: 1"));
    assert_int_equal(r.status, 200);
    assert_int_equal((int)r.len, 200);
    http_server_get_stats(fx.srv, &st);
    assert_true(st.rejected_busy >= 1);
    assert_int_equal(n_hello, 2);
    ht_stop(&fx);
}

/* ---- a handler that answers nothing ---- */

static void silent_client(void *arg)
{
    ht_resp *r = arg;
    CURL *h = curl_easy_init();
    ht_curl(h, fx.port, "GET", "/silent", NULL, NULL, &r[0]);
    ht_curl(h, fx.port, "GET", "/inject", NULL, NULL, &r[1]);
    curl_easy_cleanup(h);
}

static void test_handler_without_answer_gets_500(void **state)
{
    static ht_resp r[2];
    (void)state;
    start_small();
    ht_run_client(&fx, silent_client, r);
    assert_int_equal(r[0].status, 500);
    assert_non_null(strstr(r[0].body, "\"internal\""));
    assert_int_equal(n_silent, 1);
    /* A header with CRLF is refused whole; the handler's second answer goes out. */
    assert_int_equal(inject_rc, SB_EINVAL);
    assert_int_equal(r[1].status, 200);
    assert_string_equal(r[1].body, "yes");
    assert_null(strstr(r[1].head, "Set-Cookie"));
    assert_non_null(strstr(r[1].head, "X-A: b\r\n"));
    assert_int_equal(peer_rc, 0);
    assert_string_equal(peer, "127.0.0.1");
    ht_stop(&fx);
}

/* ---- HTTP/1.0, chunked bodies, Expect: 100-continue, an ignored Upgrade ---- */

typedef struct misc_out {
    char r10[2048], chunked[2048], cont[256], after[2048], upgrade[2048];
} misc_out;

static void misc_client(void *arg)
{
    misc_out *o = arg;
    int fd = ht_connect(fx.port, 0);
    ht_sends(fd, "GET /hello HTTP/1.0\r\n\r\n");
    ht_recv_all(fd, o->r10, sizeof(o->r10)); /* HTTP/1.0 without keep-alive: closed after */
    close(fd);
    fd = ht_connect(fx.port, 0);
    ht_sends(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    ht_recv_all(fd, o->chunked, sizeof(o->chunked));
    close(fd);
    fd = ht_connect(fx.port, 0);
    ht_sends(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 "Expect: 100-continue\r\nConnection: close\r\n\r\n");
    {
        size_t n = 0;
        while (n + 1 < sizeof(o->cont) && !strstr(o->cont, "\r\n\r\n")) {
            ssize_t k = recv(fd, o->cont + n, 1, 0);
            if (k <= 0)
                break;
            n++;
            o->cont[n] = '\0';
        }
    }
    ht_sends(fd, "hello");
    ht_recv_all(fd, o->after, sizeof(o->after));
    close(fd);
    fd = ht_connect(fx.port, 0);
    ht_sends(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
    ht_recv_all(fd, o->upgrade, sizeof(o->upgrade));
    close(fd);
}

static void test_http10_chunked_expect_and_upgrade(void **state)
{
    static misc_out o;
    (void)state;
    start_small();
    ht_run_client(&fx, misc_client, &o);
    assert_int_equal(ht_status(o.r10), 200);
    assert_non_null(strstr(o.r10, "Connection: close\r\n\r\nhello"));
    assert_int_equal(ht_status(o.chunked), 200);
    assert_non_null(strstr(o.chunked, "\r\n\r\nhello world"));
    assert_string_equal(o.cont, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(ht_status(o.after), 200);
    assert_non_null(strstr(o.after, "\r\n\r\nhello"));
    /* An Upgrade nobody accepts is answered as plain HTTP, then the connection closes. */
    assert_int_equal(ht_status(o.upgrade), 200);
    assert_non_null(strstr(o.upgrade, "Connection: close\r\n"));
    assert_int_equal(n_hello, 2);
    assert_int_equal(n_echo, 2);
    ht_stop(&fx);
}

static void test_config_is_checked(void **state)
{
    uv_loop_t loop;
    http_server *s = NULL;
    http_server_config cfg = {0};
    (void)state;
    uv_loop_init(&loop);
    assert_int_equal(http_server_init(&s, &loop, &cfg), SB_EINVAL); /* no handler */
    cfg.handler = h_hello;
    cfg.port = 70000;
    assert_int_equal(http_server_init(&s, &loop, &cfg), SB_EINVAL);
    cfg.port = 0;
    cfg.host = "not-an-address";
    assert_int_equal(http_server_init(&s, &loop, &cfg), 0);
    assert_int_equal(http_server_start(s), SB_ECONFIG);
    assert_int_equal(http_server_port(s), -1);
    http_server_free(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive_reuses_the_connection),
        cmocka_unit_test(test_pipelined_answers_stay_in_order),
        cmocka_unit_test(test_every_limit_answers_its_status),
        cmocka_unit_test(test_body_at_the_limit_is_accepted),
        cmocka_unit_test(test_idle_connection_is_closed_silently),
        cmocka_unit_test(test_connection_cap_answers_503),
        cmocka_unit_test(test_handler_without_answer_gets_500),
        cmocka_unit_test(test_http10_chunked_expect_and_upgrade),
        cmocka_unit_test(test_config_is_checked),
    };
    int rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
