/* test_sink_s3.c: the S3 sink against a local HTTP receiver: the dated key layout, NDJSON
 * objects and CDR objects PUT path-style with a SigV4 signature that verifies independently,
 * splitting by object size, batching by time (a small delivery waits for the interval), and the
 * verdicts of failed PUTs (the worst of an event's object and CDR). */
#include "testutil.h"

#include "core/error.h"
#include "sinks/s3.h"

#include "http_receiver.h"
#define MAXEV 64
#include "sink_test_harness.h"
#include "sigv4_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void handler(rx_server *s, const rx_request *req, rx_reply *rep, void *ud)
{
    (void)s;
    (void)ud;
    if (strstr(req->url, "/fail500/") && strstr(req->url, "/cdr/"))
        rep->status = 500;
    else if (strstr(req->url, "/fail400/"))
        rep->status = 400;
    else if (strstr(req->url, "/fail403/"))
        rep->status = 403;
}

static int setup(void **state)
{
    (void)state;
    return sink_test_setup(handler);
}

typedef struct evset {
    outbox_event ev[MAXEV];
    const outbox_event *ptr[MAXEV];
    char id[MAXEV][64], payload[MAXEV][128];
    size_t n;
} evset;

/* 2025-11-24T16:00:00Z + i seconds */
static void ev_add(evset *s, const char *type, const char *call_key)
{
    size_t i = s->n++;
    snprintf(s->id[i], sizeof s->id[i], "ev-%zu", i + 1);
    snprintf(s->payload[i], sizeof s->payload[i], "{\"id\":\"ev-%zu\",\"seq\":%zu,\"type\":\"%s\"}",
             i + 1, i + 1, type);
    s->ev[i] = (outbox_event){.seq = (int64_t)i + 1,
                              .id = s->id[i],
                              .type = type,
                              .pbx = "pbx1",
                              .call_key = call_key,
                              .time_ms = 1764000000000LL + (int64_t)i * 1000,
                              .payload = s->payload[i],
                              .payload_len = strlen(s->payload[i]),
                              .attempt = 1};
    s->ptr[i] = &s->ev[i];
}

static sink_s3 *make(const char *bucket, size_t max_bytes, uint32_t interval_ms)
{
    sink_s3 *s = NULL;
    assert_int_equal(sink_s3_new(&loop, http,
                                 &(sink_s3_config){.bucket = bucket,
                                                   .endpoint = srv->url_base,
                                                   .prefix = "sb/",
                                                   .region = "eu-central-1",
                                                   .access_key = "AKIDS3",
                                                   .secret_key = "s3-secret",
                                                   .max_object_bytes = max_bytes,
                                                   .flush_interval_ms = interval_ms,
                                                   .timeout_ms = 2000},
                                 &s),
                     0);
    return s;
}

static const rx_request *find_req(const char *url_part)
{
    for (size_t i = 0; i < srv->nreqs; i++)
        if (strstr(srv->reqs[i].url, url_part))
            return &srv->reqs[i];
    return NULL;
}

static void test_key_layout(void **state)
{
    sb_buf b;
    (void)state;
    sb_buf_init(&b, 1024);
    assert_int_equal(sink_s3_key(&b, "switchboard/", false, 1764000000123LL, 42, NULL), 0);
    assert_string_equal(b.data, "switchboard/events/2025/11/24/16/00000000000000000042.ndjson");
    sb_buf_reset(&b);
    assert_int_equal(sink_s3_key(&b, "", true, 1764000000123LL, 42, "1764000000.17 x"), 0);
    assert_string_equal(b.data, "cdr/2025/11/24/1764000000.17%20x.json");
    sb_buf_free(&b);
}

static void test_ndjson_and_cdr_objects_signed(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    sigv4_info info;
    const rx_request *r;
    char v[128];
    sink_s3 *k = make("calls", 0, 0);
    (void)state;
    ev_add(&s, "call.started", "1764000000.1");
    ev_add(&s, "call.answered", "1764000000.1");
    ev_add(&s, "call.ended", "1764000000.1");
    f.n = s.n;
    assert_int_equal(sink_s3_ops.deliver(k, s.ptr, s.n, on_done, (outbox_delivery *)&f), 0);
    assert_true(run_until(&f.calls, 1, 3000));
    run_until(&f.calls, 2, 50);
    assert_int_equal(f.calls, 1);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(f.res[i].verdict, OUTBOX_OK);
    assert_int_equal(srv->nreqs, 2);
    r = find_req("/calls/sb/events/2025/11/24/16/00000000000000000001.ndjson");
    assert_non_null(r);
    assert_string_equal(r->method, "PUT");
    assert_string_equal(r->body, "{\"id\":\"ev-1\",\"seq\":1,\"type\":\"call.started\"}\n"
                                 "{\"id\":\"ev-2\",\"seq\":2,\"type\":\"call.answered\"}\n"
                                 "{\"id\":\"ev-3\",\"seq\":3,\"type\":\"call.ended\"}\n");
    assert_true(rx_header(r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/x-ndjson");
    if (!sigv4_verify(r, "s3-secret", &info))
        fail_msg("%s", info.why);
    assert_string_equal(info.service, "s3");
    assert_string_equal(info.region, "eu-central-1");
    r = find_req("/calls/sb/cdr/2025/11/24/1764000000.1.json");
    assert_non_null(r);
    assert_string_equal(r->body, s.payload[2]);
    if (!sigv4_verify(r, "s3-secret", &info))
        fail_msg("%s", info.why);
    sink_s3_ops.free(k);
}

static void test_split_by_object_size(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    size_t lines = 0;
    sink_s3 *k = make("calls", 200, 0); /* about 4 events per object */
    (void)state;
    for (int i = 0; i < 20; i++)
        ev_add(&s, "queueCount", "");
    f.n = s.n;
    assert_int_equal(sink_s3_ops.deliver(k, s.ptr, s.n, on_done, (outbox_delivery *)&f), 0);
    assert_true(run_until(&f.calls, 1, 3000));
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(f.res[i].verdict, OUTBOX_OK);
    assert_true(srv->nreqs >= 5);
    /* every object within the limit; all lines, in order, exactly once */
    for (size_t i = 0; i < srv->nreqs; i++) {
        const rx_request *r = &srv->reqs[i];
        char want[64];
        const char *p = r->body;
        long long first = atoll(strrchr(r->url, '/') + 1);
        assert_true(r->body_len <= 200);
        for (long long seq = first; *p; seq++) {
            snprintf(want, sizeof want, "{\"id\":\"ev-%lld\",", seq);
            assert_memory_equal(p, want, strlen(want));
            p = strchr(p, '\n') + 1;
            lines++;
        }
    }
    assert_int_equal(lines, 20);
    sink_s3_ops.free(k);
}

static void test_small_delivery_waits_for_the_interval(void **state)
{
    evset a = {0}, b = {0};
    fake_delivery fa = {0}, fb = {0};
    uint64_t t0;
    sink_s3 *k = make("calls", 0, 400);
    (void)state;
    ev_add(&a, "queueCount", "");
    ev_add(&b, "queueCount", "");
    b.ev[0].seq = 2;
    fa.n = fb.n = 1;
    assert_int_equal(sink_s3_ops.deliver(k, a.ptr, 1, on_done, (outbox_delivery *)&fa), 0);
    assert_true(run_until(&fa.calls, 1, 3000)); /* the first write goes at once */
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    assert_int_equal(sink_s3_ops.deliver(k, b.ptr, 1, on_done, (outbox_delivery *)&fb), 0);
    run_until(&fb.calls, 1, 150);
    assert_int_equal(fb.calls, 0); /* held */
    assert_int_equal(srv->nreqs, 1);
    assert_true(run_until(&fb.calls, 1, 3000));
    uv_update_time(&loop);
    assert_true(uv_now(&loop) - t0 >= 250);
    assert_int_equal(fb.res[0].verdict, OUTBOX_OK);
    assert_int_equal(srv->nreqs, 2);
    sink_s3_ops.free(k);
}

static void test_cancel_writes_a_held_delivery(void **state)
{
    evset a = {0}, b = {0};
    fake_delivery fa = {0}, fb = {0};
    sink_s3 *k = make("calls", 0, 60000);
    (void)state;
    ev_add(&a, "queueCount", "");
    ev_add(&b, "queueCount", "");
    fa.n = fb.n = 1;
    assert_int_equal(sink_s3_ops.deliver(k, a.ptr, 1, on_done, (outbox_delivery *)&fa), 0);
    assert_true(run_until(&fa.calls, 1, 3000));
    assert_int_equal(sink_s3_ops.deliver(k, b.ptr, 1, on_done, (outbox_delivery *)&fb), 0);
    run_until(&fb.calls, 1, 50);
    assert_int_equal(fb.calls, 0);
    sink_s3_ops.cancel(k);
    assert_true(run_until(&fb.calls, 1, 3000));
    assert_int_equal(fb.res[0].verdict, OUTBOX_OK);
    sink_s3_ops.free(k);
}

static void test_failed_puts_map_to_verdicts(void **state)
{
    evset s = {0};
    fake_delivery f1 = {0}, f2 = {0}, f3 = {0};
    sink_s3 *k500 = make("fail500", 0, 0), *k400 = make("fail400", 0, 0),
            *k403 = make("fail403", 0, 0);
    (void)state;
    ev_add(&s, "call.started", "L1");
    ev_add(&s, "call.ended", "L1");
    f1.n = f2.n = f3.n = s.n;
    assert_int_equal(sink_s3_ops.deliver(k500, s.ptr, s.n, on_done, (outbox_delivery *)&f1), 0);
    assert_int_equal(sink_s3_ops.deliver(k400, s.ptr, s.n, on_done, (outbox_delivery *)&f2), 0);
    assert_int_equal(sink_s3_ops.deliver(k403, s.ptr, s.n, on_done, (outbox_delivery *)&f3), 0);
    assert_true(run_until(&f1.calls, 1, 3000));
    assert_true(run_until(&f2.calls, 1, 3000));
    assert_true(run_until(&f3.calls, 1, 3000));
    /* the CDR failed with 500: only the call.ended event is retried */
    assert_int_equal(f1.res[0].verdict, OUTBOX_OK);
    assert_int_equal(f1.res[1].verdict, OUTBOX_RETRY);
    assert_non_null(strstr(f1.res[1].error, "HTTP 500"));
    assert_int_equal(f2.res[0].verdict, OUTBOX_DEAD);
    assert_int_equal(f2.res[1].verdict, OUTBOX_DEAD);
    /* 403: credentials may be fixed; retried */
    assert_int_equal(f3.res[0].verdict, OUTBOX_RETRY);
    assert_int_equal(f3.res[1].verdict, OUTBOX_RETRY);
    sink_s3_ops.free(k500);
    sink_s3_ops.free(k400);
    sink_s3_ops.free(k403);
}

static void test_bad_config(void **state)
{
    sink_s3 *k = (sink_s3 *)1;
    (void)state;
    assert_int_equal(sink_s3_new(&loop, http, &(sink_s3_config){.bucket = NULL}, &k), SB_EINVAL);
    assert_null(k);
    assert_int_equal(
        sink_s3_new(&loop, http, &(sink_s3_config){.bucket = "b", .endpoint = "ftp://x"}, &k),
        SB_EINVAL);
    assert_int_equal(sink_s3_new(&loop, http,
                                 &(sink_s3_config){.bucket = "b",
                                                   .endpoint = "http://x",
                                                   .region = "r",
                                                   .access_key = "only-half"},
                                 &k),
                     SB_ECONFIG);
    uv_run(&loop, UV_RUN_NOWAIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_layout),
        cmocka_unit_test_setup_teardown(test_ndjson_and_cdr_objects_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_by_object_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_delivery_waits_for_the_interval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_writes_a_held_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_puts_map_to_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
