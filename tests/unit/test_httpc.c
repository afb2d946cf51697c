/* test_httpc.c: the libcurl-on-libuv HTTP client against a real HTTP server on 127.0.0.1 port 0
 * on the same loop (http_receiver.h): answers, Retry-After, stalls and timeouts, connections
 * closed mid-request, 200 requests in flight at once, the in-flight limit and its queue, the
 * body cap, cancel on free (also from inside a callback), keep-alive reuse, and SigV4 headers
 * checked by an independent signature computation. Every test counts callbacks per request. */
#include "testutil.h"

#include "core/error.h"
#include "net/httpc.h"

#include "http_receiver.h"
#include "sigv4_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rx_server *srv;
static uv_loop_t loop;

typedef struct result {
    int calls;
    int err;
    long status;
    char error[256];
    char body[2048];
    size_t body_len;
    bool truncated;
    long retry_after;
    char xhdr[128];
    double total_s;
    uint64_t done_at; /* uv_now */
} result;

static void on_resp(const httpc_resp *r, void *ud)
{
    result *res = ud;
    sb_slice x;
    res->calls++;
    res->err = r->err;
    res->status = r->status;
    snprintf(res->error, sizeof res->error, "%s", r->error);
    res->body_len = r->body.len;
    snprintf(res->body, sizeof res->body, "%.*s", (int)r->body.len, r->body.ptr);
    res->truncated = r->truncated;
    res->retry_after = httpc_retry_after_ms(r);
    x = httpc_resp_header(r, "X-Test");
    snprintf(res->xhdr, sizeof res->xhdr, "%.*s", x.ptr ? (int)x.len : 0, x.ptr ? x.ptr : "");
    res->total_s = r->total_s;
    res->done_at = uv_now(&loop);
}

/* The handler picks its answer from the request path. */
static void handler(rx_server *s, const rx_request *req, rx_reply *rep, void *ud)
{
    (void)s;
    (void)ud;
    if (strncmp(req->url, "/ok", 3) == 0) {
        rep->body = "hello";
        snprintf(rep->headers, sizeof rep->headers, "X-Test:  value here \r\n");
    } else if (strncmp(req->url, "/echo", 5) == 0) {
        rep->body = "echoed";
    } else if (strncmp(req->url, "/500", 4) == 0) {
        rep->status = 500;
        rep->body = "broken";
    } else if (strncmp(req->url, "/429", 4) == 0) {
        rep->status = 429;
        snprintf(rep->headers, sizeof rep->headers, "Retry-After: 7\r\n");
    } else if (strncmp(req->url, "/503date", 8) == 0) {
        rep->status = 503;
        snprintf(rep->headers, sizeof rep->headers,
                 "Retry-After: Fri, 31 Dec 2100 23:59:59 GMT\r\n");
    } else if (strncmp(req->url, "/stall", 6) == 0) {
        rep->action = RX_STALL;
    } else if (strncmp(req->url, "/close", 6) == 0) {
        rep->action = RX_CLOSE;
    } else if (strncmp(req->url, "/hold", 5) == 0) {
        rep->action = RX_HOLD;
        rep->body = "held";
    } else if (strncmp(req->url, "/big", 4) == 0) {
        rep->body = "0123456789012345678901234567890123456789012345678901234567890123456789"
                    "012345678901234567890123456789";
    } else {
        rep->status = 404;
    }
}

static void guard_cb(uv_timer_t *t)
{
    (void)t;
}

static uv_timer_t guard;

static int setup(void **state)
{
    (void)state;
    srv = calloc(1, sizeof *srv);
    if (!srv || uv_loop_init(&loop) != 0)
        return -1;
    if (rx_start(srv, &loop, handler, NULL) != 0)
        return -1;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, guard_cb, 5, 5); /* wakes run_until */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rx_stop(srv);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0); /* no handle leaked */
    free(srv);
    return 0;
}

/* Runs the loop until *count >= want or limit_ms passes; returns whether it got there. */
static bool run_until(const int *count, int want, uint64_t limit_ms)
{
    uint64_t end = uv_hrtime() + limit_ms * 1000000ull;
    while (*count < want && uv_hrtime() < end)
        uv_run(&loop, UV_RUN_ONCE);
    return *count >= want;
}

static void url(char *out, size_t n, const char *path)
{
    snprintf(out, n, "%s%s", srv->url_base, path);
}

static void test_get_200_with_header_and_body(void **state)
{
    char u[128];
    result r = {0};
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    url(u, sizeof u, "/ok");
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u}, on_resp, &r), 0);
    assert_int_equal(r.calls, 0); /* never from inside httpc_request */
    assert_int_equal(httpc_pending(c), 1);
    assert_true(run_until(&r.calls, 1, 3000));
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_string_equal(r.error, "");
    assert_string_equal(r.xhdr, "value here");
    assert_int_equal(r.retry_after, -1);
    assert_int_equal(httpc_pending(c), 0);
    assert_int_equal(srv->nreqs, 1);
    assert_string_equal(srv->reqs[0].method, "GET");
    httpc_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 1);
}

static void test_post_sends_body_and_headers(void **state)
{
    char u[128], v[128];
    result r = {0};
    const char *hdrs[] = {"Content-Type: application/json", "X-One: 1", NULL};
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    url(u, sizeof u, "/echo");
    assert_int_equal(
        httpc_request(c, &(httpc_req){.url = u, .headers = hdrs, .body = SB_SLICE_LIT("{\"a\":1}")},
                      on_resp, &r),
        0);
    assert_true(run_until(&r.calls, 1, 3000));
    assert_int_equal(r.status, 200);
    assert_string_equal(srv->reqs[0].method, "POST");
    assert_string_equal(srv->reqs[0].body, "{\"a\":1}");
    assert_true(rx_header(&srv->reqs[0], "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    assert_true(rx_header(&srv->reqs[0], "X-One", v, sizeof v));
    assert_string_equal(v, "1");
    assert_false(rx_header(&srv->reqs[0], "Expect", v, sizeof v));
    assert_true(rx_header(&srv->reqs[0], "User-Agent", v, sizeof v));
    assert_memory_equal(v, "switchboard/", 12);
    httpc_free(c);
    assert_int_equal(r.calls, 1);
}

/* A given body is sent as it is and freed by httpc: when the request completes, and when
 * httpc_request refuses it (ASan reports a leak or a double free otherwise). */
static void test_given_body_is_sent_and_freed(void **state)
{
    char u[128];
    result r = {0};
    const char *bad[] = {"NoColonHere", NULL};
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    url(u, sizeof u, "/echo");
    char *body = malloc(7);
    memcpy(body, "[1,2,3]", 7);
    assert_int_equal(httpc_request(c,
                                   &(httpc_req){.url = u, .body = {body, 7}, .is_body_given = true},
                                   on_resp, &r),
                     0);
    body[1] = '9'; /* taken, not copied: a change before the send is what goes out */
    assert_true(run_until(&r.calls, 1, 3000));
    assert_int_equal(r.status, 200);
    assert_string_equal(srv->reqs[0].body, "[9,2,3]");
    /* Refused requests free it too. */
    char *b2 = malloc(4), *b3 = malloc(4);
    memcpy(b2, "abcd", 4);
    memcpy(b3, "abcd", 4);
    assert_int_equal(
        httpc_request(
            c, &(httpc_req){.url = u, .headers = bad, .body = {b2, 4}, .is_body_given = true},
            on_resp, &r),
        SB_EINVAL);
    assert_int_equal(
        httpc_request(c, &(httpc_req){.url = NULL, .body = {b3, 4}, .is_body_given = true}, on_resp,
                      &r),
        SB_EINVAL);
    run_until(&r.calls, 2, 100);
    httpc_free(c);
    assert_int_equal(r.calls, 1);
    assert_int_equal(srv->nreqs, 1);
}

static void test_put_and_delete_methods(void **state)
{
    char u[128];
    result r1 = {0}, r2 = {0};
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    url(u, sizeof u, "/echo");
    assert_int_equal(
        httpc_request(c, &(httpc_req){.method = "PUT", .url = u, .body = SB_SLICE_LIT("x\ny")},
                      on_resp, &r1),
        0);
    assert_true(run_until(&r1.calls, 1, 3000));
    assert_int_equal(httpc_request(c, &(httpc_req){.method = "DELETE", .url = u}, on_resp, &r2), 0);
    assert_true(run_until(&r2.calls, 1, 3000));
    assert_string_equal(srv->reqs[0].method, "PUT");
    assert_string_equal(srv->reqs[0].body, "x\ny");
    assert_string_equal(srv->reqs[1].method, "DELETE");
    assert_int_equal(srv->reqs[1].body_len, 0);
    httpc_free(c);
}

static void test_error_statuses_and_retry_after(void **state)
{
    char u1[128], u2[128], u3[128];
    result r1 = {0}, r2 = {0}, r3 = {0};
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    url(u1, sizeof u1, "/500");
    url(u2, sizeof u2, "/429");
    url(u3, sizeof u3, "/503date");
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u1}, on_resp, &r1), 0);
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u2}, on_resp, &r2), 0);
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u3}, on_resp, &r3), 0);
    assert_true(run_until(&r3.calls, 1, 3000));
    assert_true(run_until(&r1.calls, 1, 3000));
    assert_true(run_until(&r2.calls, 1, 3000));
    /* an HTTP error status is still a complete response: err 0 */
    assert_int_equal(r1.err, 0);
    assert_int_equal(r1.status, 500);
    assert_string_equal(r1.body, "broken");
    assert_int_equal(r2.status, 429);
    assert_int_equal(r2.retry_after, 7000);
    assert_int_equal(r3.status, 503);
    assert_int_equal(r3.retry_after, 24L * 3600 * 1000); /* far future date: capped at a day */
    httpc_free(c);
    assert_int_equal(r1.calls + r2.calls + r3.calls, 3);
}

static void test_stalled_server_times_out(void **state)
{
    char u[128];
    result r = {0};
    uint64_t t0;
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    url(u, sizeof u, "/stall");
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u, .timeout_ms = 300}, on_resp, &r), 0);
    assert_true(run_until(&r.calls, 1, 3000));
    assert_int_equal(r.err, SB_ETIMEDOUT);
    assert_int_equal(r.status, 0);
    assert_true(strlen(r.error) > 0);
    assert_in_range(r.done_at - t0, 290, 1500);
    /* nothing more arrives later */
    run_until(&r.calls, 2, 200);
    assert_int_equal(r.calls, 1);
    httpc_free(c);
}

static void test_close_mid_request_and_refused(void **state)
{
    char u[128], dead[64];
    result r1 = {0}, r2 = {0};
    uv_tcp_t tmp;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    url(u, sizeof u, "/close");
    /* a port that was just free: bind, read it back, close it */
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &tmp);
    uv_tcp_bind(&tmp, (const struct sockaddr *)&a, 0);
    uv_tcp_getsockname(&tmp, (struct sockaddr *)&got, &len);
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/x",
             ntohs(((struct sockaddr_in *)&got)->sin_port));
    uv_close((uv_handle_t *)&tmp, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);

    assert_int_equal(
        httpc_request(c, &(httpc_req){.url = u, .body = SB_SLICE_LIT("{}")}, on_resp, &r1), 0);
    assert_int_equal(httpc_request(c, &(httpc_req){.url = dead}, on_resp, &r2), 0);
    assert_true(run_until(&r1.calls, 1, 3000));
    assert_true(run_until(&r2.calls, 1, 3000));
    assert_int_equal(r1.err, SB_EDISCONN);
    assert_int_equal(r1.status, 0);
    assert_int_equal(r2.err, SB_EDISCONN);
    assert_true(strlen(r2.error) > 0);
    httpc_free(c);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
}

#define NCONC 200
static result many[NCONC];

static void test_200_requests_in_flight(void **state)
{
    char u[128];
    int done = 0;
    httpc_opts o = {.max_inflight = 256};
    httpc *c = httpc_new(&loop, &o);
    uint64_t end;
    (void)state;
    memset(many, 0, sizeof many);
    url(u, sizeof u, "/hold");
    for (int i = 0; i < NCONC; i++)
        assert_int_equal(httpc_request(c, &(httpc_req){.url = u}, on_resp, &many[i]), 0);
    assert_int_equal(httpc_pending(c), NCONC);
    /* every request reaches the server before any is answered */
    end = uv_hrtime() + 5000000000ull;
    while (srv->nheld < NCONC && uv_hrtime() < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(srv->nheld, NCONC);
    for (int i = 0; i < NCONC; i++)
        assert_int_equal(many[i].calls, 0);
    rx_release(srv);
    end = uv_hrtime() + 5000000000ull;
    while (httpc_pending(c) > 0 && uv_hrtime() < end)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < NCONC; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_int_equal(many[i].status, 200);
        assert_string_equal(many[i].body, "held");
        done += many[i].calls;
    }
    assert_int_equal(done, NCONC);
    assert_int_equal(srv->nconns_total, NCONC);
    httpc_free(c);
}

static void test_inflight_limit_queues_in_order(void **state)
{
    char u[128];
    httpc_opts o = {.max_inflight = 4};
    httpc *c = httpc_new(&loop, &o);
    uint64_t end = uv_hrtime() + 5000000000ull;
    size_t max_held = 0;
    (void)state;
    memset(many, 0, sizeof many);
    url(u, sizeof u, "/hold");
    for (int i = 0; i < 20; i++)
        assert_int_equal(httpc_request(c, &(httpc_req){.url = u}, on_resp, &many[i]), 0);
    while (httpc_pending(c) > 0 && uv_hrtime() < end) {
        uv_run(&loop, UV_RUN_ONCE);
        if (srv->nheld > max_held)
            max_held = srv->nheld;
        if (srv->nheld == 4 || (srv->nheld > 0 && httpc_pending(c) == srv->nheld))
            rx_release(srv);
    }
    assert_int_equal(httpc_pending(c), 0);
    assert_int_equal(max_held, 4);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_int_equal(many[i].status, 200);
        if (i >= 4) /* FIFO: a request never finishes before one queued ahead of it started */
            assert_true(many[i].done_at >= many[i - 4].done_at);
    }
    httpc_free(c);
}

static void test_queued_request_expires(void **state)
{
    char u[128];
    result r1 = {0}, r2 = {0}, r3 = {0};
    httpc_opts o = {.max_inflight = 1, .max_queued = 1};
    httpc *c = httpc_new(&loop, &o);
    uint64_t t0;
    (void)state;
    url(u, sizeof u, "/stall");
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u, .timeout_ms = 1500}, on_resp, &r1), 0);
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u, .timeout_ms = 200}, on_resp, &r2), 0);
    /* queue full: refused at once, its callback never runs */
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u}, on_resp, &r3), SB_ETOOBIG);
    assert_true(run_until(&r2.calls, 1, 3000));
    assert_int_equal(r1.calls, 0);
    assert_int_equal(r2.err, SB_ETIMEDOUT);
    assert_non_null(strstr(r2.error, "slot"));
    assert_in_range(r2.done_at - t0, 190, 1000);
    assert_true(run_until(&r1.calls, 1, 3000));
    assert_int_equal(r1.err, SB_ETIMEDOUT);
    {
        httpc_stats st;
        httpc_stats_get(c, &st);
        assert_int_equal(st.requests, 2); /* the refused one is not counted */
        assert_int_equal(st.errors, 2);
        assert_int_equal(st.timeouts, 2);
        assert_int_equal(st.responses, 0);
        assert_int_equal(st.running + st.queued, 0);
    }
    httpc_free(c);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r3.calls, 0);
    assert_int_equal(srv->nreqs, 1); /* the expired one never reached the server */
}

static void test_body_cap_truncates(void **state)
{
    char u[128];
    result r = {0};
    httpc *c = httpc_new(&loop, &(httpc_opts){.max_body = 16});
    (void)state;
    url(u, sizeof u, "/big");
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u}, on_resp, &r), 0);
    assert_true(run_until(&r.calls, 1, 3000));
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 16);
    assert_true(r.truncated);
    assert_string_equal(r.body, "0123456789012345");
    httpc_free(c);
}

static void test_free_cancels_everything(void **state)
{
    char u[128];
    httpc *c = httpc_new(&loop, &(httpc_opts){.max_inflight = 3});
    uint64_t end = uv_hrtime() + 3000000000ull;
    (void)state;
    memset(many, 0, sizeof many);
    url(u, sizeof u, "/stall");
    for (int i = 0; i < 10; i++) /* 3 running, 7 queued */
        assert_int_equal(httpc_request(c, &(httpc_req){.url = u}, on_resp, &many[i]), 0);
    while (srv->nreqs < 3 && uv_hrtime() < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(srv->nreqs, 3);
    httpc_free(c);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_int_equal(many[i].err, SB_ECANCELED);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 10; i++)
        assert_int_equal(many[i].calls, 1);
}

/* A callback that frees the client: the other pending request is cancelled, nothing leaks. */
static httpc *freeing_client;
static result fr_first, fr_other;
static int fr_request_after_free_rc;

static void free_in_cb(const httpc_resp *r, void *ud)
{
    on_resp(r, ud);
    httpc_free(freeing_client);
    httpc_free(freeing_client); /* twice is harmless while it is being freed */
}

/* The cancelled request's callback tries to start another: refused, no callback for it. */
static void cancelled_cb(const httpc_resp *r, void *ud)
{
    char u[128];
    on_resp(r, ud);
    url(u, sizeof u, "/ok");
    fr_request_after_free_rc = httpc_request(freeing_client, &(httpc_req){.url = u}, on_resp, ud);
}

static void test_free_from_inside_callback(void **state)
{
    char u1[128], u2[128];
    (void)state;
    memset(&fr_first, 0, sizeof fr_first);
    memset(&fr_other, 0, sizeof fr_other);
    freeing_client = httpc_new(&loop, NULL);
    url(u1, sizeof u1, "/ok");
    url(u2, sizeof u2, "/stall");
    assert_int_equal(
        httpc_request(freeing_client, &(httpc_req){.url = u2}, cancelled_cb, &fr_other), 0);
    assert_int_equal(httpc_request(freeing_client, &(httpc_req){.url = u1}, free_in_cb, &fr_first),
                     0);
    assert_true(run_until(&fr_first.calls, 1, 3000));
    assert_int_equal(fr_first.status, 200);
    assert_int_equal(fr_other.calls, 1);
    assert_int_equal(fr_other.err, SB_ECANCELED);
    assert_int_equal(fr_request_after_free_rc, SB_ECANCELED);
    run_until(&fr_other.calls, 2, 100);
    assert_int_equal(fr_other.calls, 1);
}

/* Callbacks that chain a new request each time: 5 in sequence over one kept-alive connection. */
typedef struct chain {
    httpc *c;
    int calls;
    int statuses_ok;
    char url[128];
} chain;

static void chain_cb(const httpc_resp *r, void *ud)
{
    chain *ch = ud;
    ch->calls++;
    if (r->status == 200)
        ch->statuses_ok++;
    if (ch->calls < 5)
        assert_int_equal(httpc_request(ch->c, &(httpc_req){.url = ch->url}, chain_cb, ch), 0);
}

static void test_request_from_callback_reuses_connection(void **state)
{
    chain ch = {0};
    (void)state;
    ch.c = httpc_new(&loop, NULL);
    url(ch.url, sizeof ch.url, "/ok");
    assert_int_equal(httpc_request(ch.c, &(httpc_req){.url = ch.url}, chain_cb, &ch), 0);
    assert_true(run_until(&ch.calls, 5, 3000));
    run_until(&ch.calls, 6, 100);
    assert_int_equal(ch.calls, 5);
    assert_int_equal(ch.statuses_ok, 5);
    assert_int_equal(srv->nreqs, 5);
    assert_int_equal(srv->nconns_total, 1);
    httpc_free(ch.c);
}

static void test_bad_requests_are_refused_without_callback(void **state)
{
    char u[128];
    result r = {0};
    const char *bad1[] = {"NoColonHere", NULL};
    const char *bad2[] = {"X-Evil: a\r\nX-Injected: b", NULL};
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    url(u, sizeof u, "/ok");
    assert_int_equal(httpc_request(c, &(httpc_req){.url = NULL}, on_resp, &r), SB_EINVAL);
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u, .headers = bad1}, on_resp, &r),
                     SB_EINVAL);
    assert_int_equal(httpc_request(c, &(httpc_req){.url = u, .headers = bad2}, on_resp, &r),
                     SB_EINVAL);
    assert_int_equal(
        httpc_request(c, &(httpc_req){.url = u, .aws = &(httpc_aws){.region = "x"}}, on_resp, &r),
        SB_EINVAL);
    assert_int_equal(httpc_pending(c), 0);
    run_until(&r.calls, 1, 100);
    httpc_free(c);
    assert_int_equal(r.calls, 0);
    assert_int_equal(srv->nreqs, 0);
}

static void test_unsupported_scheme_fails_in_callback(void **state)
{
    result r = {0};
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    assert_int_equal(httpc_request(c, &(httpc_req){.url = "file:///etc/passwd"}, on_resp, &r), 0);
    assert_true(run_until(&r.calls, 1, 3000));
    assert_int_equal(r.err, SB_EINVAL);
    assert_int_equal(r.body_len, 0);
    httpc_free(c);
}

static void test_sigv4_signature_verifies(void **state)
{
    char u[256], v[128];
    result r1 = {0}, r2 = {0};
    sigv4_info info;
    const char *hdrs[] = {"X-Amz-Target: AmazonSQS.SendMessageBatch",
                          "Content-Type: application/x-amz-json-1.0", NULL};
    httpc_aws sqs = {.region = "eu-west-1",
                     .service = "sqs",
                     .access_key = "AKIDEXAMPLE",
                     .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                     .session_token = "FQoGZXIvYXdzEXAMPLETOKEN"};
    httpc_aws s3 = {
        .region = "us-east-1", .service = "s3", .access_key = "AKID2", .secret_key = "s3secret"};
    httpc *c = httpc_new(&loop, NULL);
    (void)state;
    url(u, sizeof u, "/echo");
    assert_int_equal(httpc_request(c,
                                   &(httpc_req){.url = u,
                                                .headers = hdrs,
                                                .body = SB_SLICE_LIT("{\"QueueUrl\":\"q\"}"),
                                                .aws = &sqs},
                                   on_resp, &r1),
                     0);
    assert_true(run_until(&r1.calls, 1, 3000));
    url(u, sizeof u, "/echo/bucket/2026/11/25/key%20one.ndjson?x-id=PutObject");
    assert_int_equal(
        httpc_request(
            c,
            &(httpc_req){.method = "PUT",
                         .url = u,
                         .body = SB_SLICE_LIT("{\"id\":1}\n"),
                         .headers = (const char *[]){"Content-Type: application/x-ndjson", NULL},
                         .aws = &s3},
            on_resp, &r2),
        0);
    assert_true(run_until(&r2.calls, 1, 3000));
    assert_int_equal(srv->nreqs, 2);

    if (!sigv4_verify(&srv->reqs[0], sqs.secret_key, &info))
        fail_msg("sqs: %s", info.why);
    assert_string_equal(info.access_key, "AKIDEXAMPLE");
    assert_string_equal(info.region, "eu-west-1");
    assert_string_equal(info.service, "sqs");
    assert_non_null(strstr(info.signed_headers, "host"));
    assert_non_null(strstr(info.signed_headers, "x-amz-date"));
    assert_non_null(strstr(info.signed_headers, "x-amz-security-token"));
    assert_non_null(strstr(info.signed_headers, "x-amz-target"));
    assert_true(rx_header(&srv->reqs[0], "X-Amz-Security-Token", v, sizeof v));
    assert_string_equal(v, "FQoGZXIvYXdzEXAMPLETOKEN");
    /* the secret never travels */
    assert_null(strstr(srv->reqs[0].headers, sqs.secret_key));

    if (!sigv4_verify(&srv->reqs[1], s3.secret_key, &info))
        fail_msg("s3: %s", info.why);
    assert_string_equal(srv->reqs[1].method, "PUT");
    assert_string_equal(info.service, "s3");
    assert_string_equal(info.region, "us-east-1");
    assert_true(rx_header(&srv->reqs[1], "x-amz-content-sha256", v, sizeof v));
    {
        char want[65];
        sv_sha256_hex("{\"id\":1}\n", 9, want);
        assert_string_equal(v, want);
    }
    assert_non_null(strstr(info.signed_headers, "x-amz-content-sha256"));
    /* a wrong secret does not verify: the check is real */
    assert_false(sigv4_verify(&srv->reqs[1], "other", &info));
    httpc_free(c);
}

/* Throughput on loopback with keep-alive: 5000 requests, 64 at a time. Prints the rate. */
typedef struct counter {
    int calls, ok;
} counter;

static void count_cb(const httpc_resp *r, void *ud)
{
    counter *k = ud;
    k->calls++;
    if (r->err == 0 && r->status == 200)
        k->ok++;
}

static void test_throughput_5000_requests(void **state)
{
    char u[128];
    counter k = {0};
    uint64_t t0;
    double secs;
    httpc *c = httpc_new(&loop, &(httpc_opts){.max_inflight = 64});
    (void)state;
    url(u, sizeof u, "/ok");
    t0 = uv_hrtime();
    for (int i = 0; i < 5000; i++) /* the timeout counts queueing: generous for slow runs */
        assert_int_equal(
            httpc_request(c, &(httpc_req){.url = u, .timeout_ms = 120000}, count_cb, &k), 0);
    assert_true(run_until(&k.calls, 5000, 120000));
    secs = (double)(uv_hrtime() - t0) / 1e9;
    assert_int_equal(k.ok, 5000);
    {
        httpc_stats st;
        httpc_stats_get(c, &st);
        assert_int_equal(st.requests, 5000);
        assert_int_equal(st.responses, 5000);
        assert_int_equal(st.errors, 0);
    }
    assert_true(srv->nconns_total <= 64); /* connections are reused */
    printf("httpc: 5000 requests, 64 in flight, %zu connections: %.3f s (%.0f requests/s)\n",
           srv->nconns_total, secs, 5000 / secs);
    httpc_free(c);
    assert_int_equal(k.calls, 5000);
}

static void test_parse_retry_after(void **state)
{
    long ms = -5;
    time_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
    (void)state;
    assert_int_equal(httpc_parse_retry_after(SB_SLICE_LIT("120"), now, &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(httpc_parse_retry_after(SB_SLICE_LIT(" 0 "), now, &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(
        httpc_parse_retry_after(SB_SLICE_LIT("Wed, 21 Oct 2015 07:28:30 GMT"), now, &ms), 0);
    assert_int_equal(ms, 30000);
    /* RFC 850 and asctime forms are accepted too (RFC 9110 §5.6.7) */
    assert_int_equal(
        httpc_parse_retry_after(SB_SLICE_LIT("Wednesday, 21-Oct-15 07:29:00 GMT"), now, &ms), 0);
    assert_int_equal(ms, 60000);
    assert_int_equal(httpc_parse_retry_after(SB_SLICE_LIT("Wed Oct 21 07:28:10 2015"), now, &ms),
                     0);
    assert_int_equal(ms, 10000);
    /* a date in the past means now */
    assert_int_equal(
        httpc_parse_retry_after(SB_SLICE_LIT("Wed, 21 Oct 2015 07:00:00 GMT"), now, &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(httpc_parse_retry_after(SB_SLICE_LIT("99999999999"), now, &ms), 0);
    assert_int_equal(ms, 24L * 3600 * 1000);
    ms = -5;
    assert_int_equal(httpc_parse_retry_after(SB_SLICE_LIT("soon"), now, &ms), SB_EINVAL);
    assert_int_equal(httpc_parse_retry_after(SB_SLICE_LIT("-3"), now, &ms), SB_EINVAL);
    assert_int_equal(httpc_parse_retry_after(SB_SLICE_LIT("12abc"), now, &ms), SB_EINVAL);
    assert_int_equal(httpc_parse_retry_after(SB_SLICE_LIT(""), now, &ms), SB_EINVAL);
    assert_int_equal(ms, -5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_200_with_header_and_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_sends_body_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_given_body_is_sent_and_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_and_delete_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_statuses_and_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_mid_request_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_200_requests_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflight_limit_queues_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_request_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_cap_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_from_callback_reuses_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_are_refused_without_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_scheme_fails_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigv4_signature_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput_5000_requests, setup, teardown),
        cmocka_unit_test(test_parse_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
