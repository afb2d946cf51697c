/* test_sink_webhook.c: the webhook sink against a real HTTP receiver on 127.0.0.1 port 0:
 * the HMAC-SHA256 signature checked with an independently computed HMAC, idempotency and
 * timestamp headers, the status -> verdict mapping (2xx, 4xx dead, 408/429/5xx retry, Retry-After
 * in seconds and as a date), per-order lanes (stop at a retry, continue after a dead letter),
 * batch mode (one JSON array), timeouts and closed connections, filters, cancel. */
#include "testutil.h"

#include "core/error.h"
#include "sinks/webhook.h"

#include "http_receiver.h"
#define MAXEV 16
#include "sink_test_harness.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECRET "whsec_test_0123456789"

/* The receiver answers by the event id (X-Switchboard-Event-Id), or by the URL path in batch
 * mode. */
static void handler(rx_server *s, const rx_request *req, rx_reply *rep, void *ud)
{
    char id[128] = "";
    (void)s;
    (void)ud;
    rx_header(req, "X-Switchboard-Event-Id", id, sizeof id);
    if (strstr(req->url, "/fail500"))
        rep->status = 500;
    else if (strstr(id, "-s201"))
        rep->status = 201;
    else if (strstr(id, "-s400"))
        rep->status = 400;
    else if (strstr(id, "-s404")) {
        rep->status = 404;
        rep->body = "no such hook";
    } else if (strstr(id, "-s408"))
        rep->status = 408;
    else if (strstr(id, "-s429")) {
        rep->status = 429;
        snprintf(rep->headers, sizeof rep->headers, "Retry-After: 3\r\n");
    } else if (strstr(id, "-s500"))
        rep->status = 500;
    else if (strstr(id, "-s302"))
        rep->status = 302;
    else if (strstr(id, "-s503date")) {
        rep->status = 503;
        /* 40 s from now as an IMF-fixdate */
        time_t t = time(NULL) + 40;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(rep->headers, sizeof rep->headers, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n",
                 &tm);
    } else if (strstr(id, "-stall"))
        rep->action = RX_STALL;
    else if (strstr(id, "-close"))
        rep->action = RX_CLOSE;
}

static int setup(void **state)
{
    (void)state;
    return sink_test_setup(handler);
}

typedef struct evset {
    outbox_event ev[MAXEV];
    const outbox_event *ptr[MAXEV];
    char id[MAXEV][64], key[MAXEV][32], payload[MAXEV][256];
    size_t n;
} evset;

static void ev_add(evset *s, const char *id, const char *type, const char *call_key)
{
    size_t i = s->n++;
    snprintf(s->id[i], sizeof s->id[i], "%s", id);
    snprintf(s->key[i], sizeof s->key[i], "%s", call_key);
    snprintf(s->payload[i], sizeof s->payload[i],
             "{\"id\":\"%s\",\"seq\":%zu,\"type\":\"%s\",\"pbx\":\"pbx1\",\"queue\":\"sales\"}", id,
             i + 1, type);
    s->ev[i] = (outbox_event){.seq = (int64_t)i + 1,
                              .id = s->id[i],
                              .type = type,
                              .pbx = "pbx1",
                              .call_key = s->key[i],
                              .time_ms = 1764000000000,
                              .payload = s->payload[i],
                              .payload_len = strlen(s->payload[i]),
                              .attempt = 1};
    s->ptr[i] = &s->ev[i];
}

/* Request timeout of the sinks make() builds: generous (slow runs under valgrind), short only
 * where a test waits for it. */
static long mk_timeout_ms = 5000;

static sink_webhook *make(const char *path, const char *secret, bool batch, bool partitioned)
{
    char url[128];
    sink_webhook *w = NULL;
    const char *extra[] = {"X-Tenant: acme", NULL};
    snprintf(url, sizeof url, "%s%s", srv->url_base, path);
    assert_int_equal(sink_webhook_new(http,
                                      &(sink_webhook_config){.url = url,
                                                             .secret = secret,
                                                             .is_batch = batch,
                                                             .is_partitioned = partitioned,
                                                             .timeout_ms = mk_timeout_ms,
                                                             .headers = extra},
                                      &w),
                     0);
    return w;
}

static fake_delivery *deliver(sink_webhook *w, evset *s)
{
    fake_delivery *f = calloc(1, sizeof *f);
    f->n = s->n;
    assert_int_equal(sink_webhook_ops.deliver(w, s->ptr, s->n, on_done, (outbox_delivery *)f), 0);
    assert_true(run_until(&f->calls, 1, 5000));
    run_until(&f->calls, 2, 50); /* exactly once */
    assert_int_equal(f->calls, 1);
    return f;
}

/* HMAC-SHA256(secret, ts "." body) computed here with OpenSSL's one-shot HMAC(). */
static void expect_signature(const rx_request *r, const char *secret)
{
    char ts[32], sig[128], msg[8192], want[80];
    unsigned char md[32];
    unsigned int mdlen = 32;
    long long t;
    assert_true(rx_header(r, "X-Switchboard-Timestamp", ts, sizeof ts));
    t = atoll(ts);
    assert_true(llabs((long long)time(NULL) - t) <= 5);
    assert_true(rx_header(r, "X-Switchboard-Signature", sig, sizeof sig));
    snprintf(msg, sizeof msg, "%s.%s", ts, r->body);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, strlen(msg), md,
         &mdlen);
    memcpy(want, "v1=", 4);
    for (int i = 0; i < 32; i++)
        snprintf(want + 3 + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(sig, want);
}

static void test_single_events_signed_in_order(void **state)
{
    evset s = {0};
    char v[256];
    sink_webhook *w = make("/hook", SECRET, false, false);
    fake_delivery *f;
    (void)state;
    ev_add(&s, "ev-a", "call.started", "L1");
    ev_add(&s, "ev-b", "call.answered", "L1");
    ev_add(&s, "ev-c", "queueCount", "");
    f = deliver(w, &s);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(f->res[i].verdict, OUTBOX_OK);
        assert_null(f->res[i].error);
    }
    assert_int_equal(srv->nreqs, 3);
    for (size_t i = 0; i < 3; i++) {
        const rx_request *r = &srv->reqs[i];
        assert_string_equal(r->method, "POST");
        assert_string_equal(r->url, "/hook");
        assert_string_equal(r->body, s.payload[i]); /* in batch order */
        expect_signature(r, SECRET);
        assert_true(rx_header(r, "Idempotency-Key", v, sizeof v));
        assert_string_equal(v, s.id[i]);
        assert_true(rx_header(r, "X-Switchboard-Event-Type", v, sizeof v));
        assert_string_equal(v, s.ev[i].type);
        assert_true(rx_header(r, "Content-Type", v, sizeof v));
        assert_string_equal(v, "application/json");
        assert_true(rx_header(r, "X-Tenant", v, sizeof v));
        assert_string_equal(v, "acme");
        assert_true(rx_header(r, "X-Switchboard-Attempt", v, sizeof v));
        assert_string_equal(v, "1");
    }
    /* a tampered body does not verify against the same header */
    {
        char sig[128], tampered[80];
        rx_header(&srv->reqs[0], "X-Switchboard-Signature", sig, sizeof sig);
        assert_int_equal(sink_webhook_sign(SECRET, 1764000000, "{}", 2, tampered, sizeof tampered),
                         0);
        assert_string_not_equal(sig, tampered);
    }
    free(f);
    sink_webhook_ops.free(w);
}

static void test_status_mapping(void **state)
{
    static const char *ids[] = {"e-s201", "e-s400", "e-s404",     "e-s408", "e-s429",
                                "e-s500", "e-s302", "e-s503date", "e-ok"};
    evset s = {0};
    fake_delivery *f;
    sink_webhook *w = make("/hook", SECRET, false, true);
    (void)state;
    for (size_t i = 0; i < 9; i++) {
        char key[8];
        snprintf(key, sizeof key, "L%zu", i); /* one lane each: all sent */
        ev_add(&s, ids[i], "call.ended", key);
    }
    f = deliver(w, &s);
    assert_int_equal(srv->nreqs, 9);
    assert_int_equal(f->res[0].verdict, OUTBOX_OK);
    assert_int_equal(f->res[1].verdict, OUTBOX_DEAD);
    assert_non_null(strstr(f->why[1], "HTTP 400"));
    assert_int_equal(f->res[2].verdict, OUTBOX_DEAD);
    assert_string_equal(f->why[2], "HTTP 404: no such hook");
    assert_int_equal(f->res[3].verdict, OUTBOX_RETRY);
    assert_int_equal(f->res[3].retry_after_ms, 0);
    assert_int_equal(f->res[4].verdict, OUTBOX_RETRY);
    assert_int_equal(f->res[4].retry_after_ms, 3000);
    assert_int_equal(f->res[5].verdict, OUTBOX_RETRY);
    assert_non_null(strstr(f->why[5], "HTTP 500"));
    assert_int_equal(f->res[6].verdict, OUTBOX_RETRY);
    assert_int_equal(f->res[7].verdict, OUTBOX_RETRY);
    assert_in_range(f->res[7].retry_after_ms, 37000, 41000);
    assert_int_equal(f->res[8].verdict, OUTBOX_OK);
    free(f);
    sink_webhook_ops.free(w);
}

static void test_lane_stops_at_retry_and_continues_after_dead(void **state)
{
    evset s = {0};
    fake_delivery *f;
    sink_webhook *w = make("/hook", SECRET, false, false);
    (void)state;
    ev_add(&s, "a-ok", "call.started", "L1");
    ev_add(&s, "b-s404", "call.started", "L2"); /* dead: the lane goes on */
    ev_add(&s, "c-ok", "call.started", "L1");
    ev_add(&s, "d-s429", "call.started", "L3"); /* retry: the lane stops */
    ev_add(&s, "e-ok", "call.started", "L1");
    ev_add(&s, "f-ok", "call.started", "L4");
    f = deliver(w, &s);
    assert_int_equal(srv->nreqs, 4);
    assert_int_equal(f->res[0].verdict, OUTBOX_OK);
    assert_int_equal(f->res[1].verdict, OUTBOX_DEAD);
    assert_int_equal(f->res[2].verdict, OUTBOX_OK);
    assert_int_equal(f->res[3].verdict, OUTBOX_RETRY);
    assert_int_equal(f->res[3].retry_after_ms, 3000);
    assert_int_equal(f->res[4].verdict, OUTBOX_RETRY);
    assert_int_equal(f->res[4].retry_after_ms, 3000);
    assert_non_null(strstr(f->why[4], "not sent"));
    assert_int_equal(f->res[5].verdict, OUTBOX_RETRY);
    free(f);
    sink_webhook_ops.free(w);
}

static void test_partitioned_lanes_are_independent(void **state)
{
    evset s = {0};
    fake_delivery *f;
    sink_webhook *w = make("/hook", SECRET, false, true);
    (void)state;
    ev_add(&s, "a-s500", "call.started", "L1");
    ev_add(&s, "b-ok", "call.started", "L2");
    ev_add(&s, "c-ok", "call.answered", "L1"); /* behind a failure of its call: not sent */
    ev_add(&s, "d-ok", "call.answered", "L2");
    f = deliver(w, &s);
    assert_int_equal(srv->nreqs, 3);
    assert_int_equal(f->res[0].verdict, OUTBOX_RETRY);
    assert_int_equal(f->res[1].verdict, OUTBOX_OK);
    assert_int_equal(f->res[2].verdict, OUTBOX_RETRY);
    assert_int_equal(f->res[3].verdict, OUTBOX_OK);
    /* within a call the order holds: b before d */
    {
        size_t ib = 99, id = 99;
        for (size_t i = 0; i < srv->nreqs; i++) {
            char v[64];
            rx_header(&srv->reqs[i], "Idempotency-Key", v, sizeof v);
            if (!strcmp(v, "b-ok"))
                ib = i;
            if (!strcmp(v, "d-ok"))
                id = i;
        }
        assert_true(ib < id && id < 99);
    }
    free(f);
    sink_webhook_ops.free(w);
}

static void test_batch_mode_posts_one_array(void **state)
{
    evset s = {0};
    fake_delivery *f;
    json_t *arr;
    char v[64];
    sink_webhook *w = make("/hook", SECRET, true, false);
    sink_webhook *w500 = make("/fail500", SECRET, true, false);
    (void)state;
    ev_add(&s, "a", "call.started", "L1");
    ev_add(&s, "b", "call.ended", "L1");
    ev_add(&s, "c", "queueCount", "");
    f = deliver(w, &s);
    assert_int_equal(srv->nreqs, 1);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(f->res[i].verdict, OUTBOX_OK);
    expect_signature(&srv->reqs[0], SECRET);
    assert_true(rx_header(&srv->reqs[0], "X-Switchboard-Batch-Size", v, sizeof v));
    assert_string_equal(v, "3");
    assert_false(rx_header(&srv->reqs[0], "Idempotency-Key", v, sizeof v));
    arr = json_loads(srv->reqs[0].body, 0, NULL);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "id")), "b");
    json_decref(arr);
    free(f);
    f = deliver(w500, &s);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(f->res[i].verdict, OUTBOX_RETRY);
        assert_non_null(strstr(f->why[i], "HTTP 500"));
    }
    free(f);
    sink_webhook_ops.free(w);
    sink_webhook_ops.free(w500);
}

/* A batch body of 16 KiB or more is built and signed on the thread pool: the same body (an
 * array of the payloads, in order), the same signature scheme (checked with OpenSSL's one-shot
 * HMAC over timestamp "." body), the same verdicts; cancel while it is being prepared sends
 * nothing and reports "shutting down". */
static void test_large_batch_signed_off_the_loop(void **state)
{
    enum { N = 16, PAY = 1500 };
    static outbox_event ev[N];
    static const outbox_event *ptr[N];
    static char pay[N][PAY + 64], id[N][16];
    (void)state;
    for (int i = 0; i < N; i++) {
        snprintf(id[i], sizeof id[i], "big-%d", i);
        int n = snprintf(pay[i], sizeof pay[i], "{\"id\":\"%s\",\"pad\":\"", id[i]);
        memset(pay[i] + n, 'a' + i, PAY);
        snprintf(pay[i] + n + PAY, sizeof pay[i] - (size_t)(n + PAY), "\"}");
        ev[i] = (outbox_event){.seq = i + 1,
                               .id = id[i],
                               .type = "call.ended",
                               .pbx = "pbx1",
                               .call_key = "L9",
                               .payload = pay[i],
                               .payload_len = strlen(pay[i]),
                               .attempt = 1};
        ptr[i] = &ev[i];
    }
    sink_webhook *w = make("/hook", SECRET, true, true);
    fake_delivery *f = calloc(1, sizeof *f);
    f->n = N;
    assert_int_equal(sink_webhook_ops.deliver(w, ptr, N, on_done, (outbox_delivery *)f), 0);
    assert_int_equal(f->calls, 0); /* not answered inside deliver */
    assert_true(run_until(&f->calls, 1, 5000));
    run_until(&f->calls, 2, 50);
    assert_int_equal(f->calls, 1);
    for (int i = 0; i < N; i++)
        assert_int_equal(f->res[i].verdict, OUTBOX_OK);
    assert_int_equal(srv->nreqs, 1);
    const rx_request *r = &srv->reqs[0];
    assert_true(strlen(r->body) > 16 * 1024);
    char ts[32], sig[128], want[80];
    assert_true(rx_header(r, "X-Switchboard-Timestamp", ts, sizeof ts));
    assert_true(rx_header(r, "X-Switchboard-Signature", sig, sizeof sig));
    size_t mlen = strlen(ts) + 1 + strlen(r->body);
    char *msg = malloc(mlen + 1);
    snprintf(msg, mlen + 1, "%s.%s", ts, r->body);
    unsigned char md[32];
    unsigned int mdlen = 32;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)msg, mlen, md, &mdlen);
    free(msg);
    memcpy(want, "v1=", 4);
    for (int i = 0; i < 32; i++)
        snprintf(want + 3 + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(sig, want);
    json_t *arr = json_loads(r->body, 0, NULL);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), N);
    for (int i = 0; i < N; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(arr, i), "id")),
                            id[i]);
    json_decref(arr);
    /* Canceled while the body is being prepared: nothing sent, every event retried. */
    memset(f, 0, sizeof *f);
    f->n = N;
    assert_int_equal(sink_webhook_ops.deliver(w, ptr, N, on_done, (outbox_delivery *)f), 0);
    sink_webhook_ops.cancel(w);
    assert_true(run_until(&f->calls, 1, 5000));
    assert_int_equal(f->calls, 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(f->res[i].verdict, OUTBOX_RETRY);
        assert_non_null(strstr(f->why[i], "shutting down"));
    }
    assert_int_equal(srv->nreqs, 1);
    free(f);
    sink_webhook_ops.free(w);
}

static void test_timeout_and_close_are_retried(void **state)
{
    evset s = {0};
    fake_delivery *f;
    sink_webhook *w;
    (void)state;
    mk_timeout_ms = 300;
    w = make("/hook", SECRET, false, true);
    mk_timeout_ms = 5000;
    ev_add(&s, "a-stall", "call.started", "L1");
    ev_add(&s, "b-close", "call.started", "L2");
    f = deliver(w, &s);
    assert_int_equal(f->res[0].verdict, OUTBOX_RETRY);
    assert_non_null(strstr(f->why[0], "imed out"));
    assert_int_equal(f->res[1].verdict, OUTBOX_RETRY);
    assert_true(strlen(f->why[1]) > 0);
    free(f);
    sink_webhook_ops.free(w);
}

static void test_unsigned_without_secret(void **state)
{
    evset s = {0};
    fake_delivery *f;
    char v[128];
    sink_webhook *w = make("/hook", NULL, false, false);
    (void)state;
    ev_add(&s, "a", "call.started", "L1");
    f = deliver(w, &s);
    assert_int_equal(f->res[0].verdict, OUTBOX_OK);
    assert_false(rx_header(&srv->reqs[0], "X-Switchboard-Signature", v, sizeof v));
    assert_true(rx_header(&srv->reqs[0], "X-Switchboard-Timestamp", v, sizeof v));
    free(f);
    sink_webhook_ops.free(w);
}

static void test_cancel_stops_lanes(void **state)
{
    evset s = {0};
    fake_delivery *f = calloc(1, sizeof *f);
    sink_webhook *w = make("/hook", SECRET, false, false);
    (void)state;
    ev_add(&s, "a", "call.started", "L1");
    ev_add(&s, "b", "call.started", "L1");
    f->n = 2;
    assert_int_equal(sink_webhook_ops.deliver(w, s.ptr, 2, on_done, (outbox_delivery *)f), 0);
    sink_webhook_ops.cancel(w);
    assert_true(run_until(&f->calls, 1, 3000));
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->res[0].verdict, OUTBOX_OK); /* already on its way */
    assert_int_equal(f->res[1].verdict, OUTBOX_RETRY);
    assert_non_null(strstr(f->why[1], "shutting down"));
    assert_int_equal(srv->nreqs, 1);
    free(f);
    sink_webhook_ops.free(w);
}

static void test_filters_and_bad_config(void **state)
{
    evset s = {0};
    sink_webhook *w = NULL;
    (void)state;
    ev_add(&s, "a", "call.started", "L1");
    ev_add(&s, "b", "queueCount", "");
    assert_int_equal(
        sink_webhook_new(http,
                         &(sink_webhook_config){.url = "http://127.0.0.1:1/x",
                                                .filter = {.types = "call.*, agentComplete",
                                                           .pbxs = "pbx1",
                                                           .queues = "sales,support"}},
                         &w),
        0);
    assert_true(sink_webhook_ops.wants(w, &s.ev[0]));
    assert_false(sink_webhook_ops.wants(w, &s.ev[1])); /* type not listed */
    s.ev[0].pbx = "pbx2";
    assert_false(sink_webhook_ops.wants(w, &s.ev[0]));
    s.ev[0].pbx = "pbx1";
    s.ev[0].payload = "{\"queue\":\"billing\"}";
    s.ev[0].payload_len = strlen(s.ev[0].payload);
    assert_false(sink_webhook_ops.wants(w, &s.ev[0]));
    sink_webhook_ops.free(w);
    w = (sink_webhook *)1;
    assert_int_equal(sink_webhook_new(http, &(sink_webhook_config){.url = "ftp://x"}, &w),
                     SB_EINVAL);
    assert_null(w);
    assert_int_equal(
        sink_webhook_new(
            http, &(sink_webhook_config){.url = "http://x", .filter = {.types = "a,,b"}}, &w),
        SB_EINVAL);
    assert_int_equal(
        sink_webhook_new(http,
                         &(sink_webhook_config){.url = "http://x",
                                                .headers = (const char *[]){"X: a\r\nY: b", NULL}},
                         &w),
        SB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single_events_signed_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lane_stops_at_retry_and_continues_after_dead, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partitioned_lanes_are_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_mode_posts_one_array, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_batch_signed_off_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_close_are_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_without_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_stops_lanes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters_and_bad_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
