/* test_sink_lambda.c: the Lambda sink against a local fake of the Invoke API and of a function
 * URL: the invocation path and qualifier, InvocationType, a SigV4 signature that verifies, one
 * invocation at a time in order, function errors (200 + X-Amz-Function-Error) retried, 413 dead,
 * async batch invocations (202), unsigned function URLs. */
#include "testutil.h"

#include "core/error.h"
#include "sinks/lambda.h"

#include "http_receiver.h"
#define MAXEV 16
#include "sink_test_harness.h"
#include "sigv4_verify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void handler(rx_server *s, const rx_request *req, rx_reply *rep, void *ud)
{
    char v[64] = "";
    (void)s;
    (void)ud;
    rx_header(req, "X-Amz-Invocation-Type", v, sizeof v);
    if (strstr(req->body, "boom")) {
        rep->body = "{\"errorMessage\":\"kaboom\",\"errorType\":\"Error\"}";
        snprintf(rep->headers, sizeof rep->headers, "X-Amz-Function-Error: Unhandled\r\n");
    } else if (strstr(req->body, "huge")) {
        rep->status = 413;
        rep->body = "{\"Type\":\"User\",\"message\":\"Request must be smaller\"}";
    } else if (!strcmp(v, "Event")) {
        rep->status = 202;
    } else {
        rep->body = "null";
    }
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

static void ev_add(evset *s, const char *word)
{
    size_t i = s->n++;
    snprintf(s->id[i], sizeof s->id[i], "id-%zu", i);
    snprintf(s->payload[i], sizeof s->payload[i], "{\"id\":\"id-%zu\",\"note\":\"%s\"}", i, word);
    s->ev[i] = (outbox_event){.seq = (int64_t)i + 1,
                              .id = s->id[i],
                              .type = "call.ended",
                              .pbx = "pbx1",
                              .call_key = "L1",
                              .time_ms = 1764000000000LL,
                              .payload = s->payload[i],
                              .payload_len = strlen(s->payload[i]),
                              .attempt = 1};
    s->ptr[i] = &s->ev[i];
}

static void run(sink_lambda *l, evset *s, fake_delivery *f)
{
    f->n = s->n;
    assert_int_equal(sink_lambda_ops.deliver(l, s->ptr, s->n, on_done, (outbox_delivery *)f), 0);
    assert_true(run_until(&f->calls, 1, 5000));
    run_until(&f->calls, 2, 30);
    assert_int_equal(f->calls, 1);
}

static sink_lambda *make_invoke(bool async, bool batch)
{
    sink_lambda *l = NULL;
    assert_int_equal(sink_lambda_new(http,
                                     &(sink_lambda_config){.function = "call-events",
                                                           .qualifier = "live",
                                                           .endpoint = srv->url_base,
                                                           .is_async = async,
                                                           .is_batch = batch,
                                                           .region = "us-west-2",
                                                           .access_key = "AKIDLAMBDA",
                                                           .secret_key = "lambda-secret"},
                                     &l),
                     0);
    return l;
}

static void test_invoke_api_in_order_signed(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    sigv4_info info;
    char v[64];
    sink_lambda *l = make_invoke(false, false);
    (void)state;
    ev_add(&s, "a");
    ev_add(&s, "b");
    ev_add(&s, "c");
    run(l, &s, &f);
    assert_int_equal(srv->nreqs, 3);
    for (size_t i = 0; i < 3; i++) {
        const rx_request *r = &srv->reqs[i];
        assert_int_equal(f.res[i].verdict, OUTBOX_OK);
        assert_string_equal(r->method, "POST");
        assert_string_equal(r->url, "/2015-03-31/functions/call-events/invocations?Qualifier=live");
        assert_string_equal(r->body, s.payload[i]);
        assert_true(rx_header(r, "X-Amz-Invocation-Type", v, sizeof v));
        assert_string_equal(v, "RequestResponse");
        if (!sigv4_verify(r, "lambda-secret", &info))
            fail_msg("%s", info.why);
        assert_string_equal(info.service, "lambda");
        assert_string_equal(info.region, "us-west-2");
    }
    sink_lambda_ops.free(l);
}

static void test_function_error_retries_and_stops(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    sink_lambda *l = make_invoke(false, false);
    (void)state;
    ev_add(&s, "huge"); /* 413: dead, the next one still goes */
    ev_add(&s, "fine");
    ev_add(&s, "boom"); /* function error: retry and stop */
    ev_add(&s, "fine");
    run(l, &s, &f);
    assert_int_equal(srv->nreqs, 3);
    assert_int_equal(f.res[0].verdict, OUTBOX_DEAD);
    assert_non_null(strstr(f.why[0], "HTTP 413"));
    assert_int_equal(f.res[1].verdict, OUTBOX_OK);
    assert_int_equal(f.res[2].verdict, OUTBOX_RETRY);
    assert_non_null(strstr(f.why[2], "function error Unhandled"));
    assert_non_null(strstr(f.why[2], "kaboom"));
    assert_int_equal(f.res[3].verdict, OUTBOX_RETRY);
    assert_non_null(strstr(f.why[3], "not sent"));
    sink_lambda_ops.free(l);
}

static void test_async_batch_invocation(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    json_t *root;
    char v[64];
    sink_lambda *l = make_invoke(true, true);
    (void)state;
    ev_add(&s, "a");
    ev_add(&s, "b");
    run(l, &s, &f);
    assert_int_equal(srv->nreqs, 1);
    assert_int_equal(f.res[0].verdict, OUTBOX_OK);
    assert_int_equal(f.res[1].verdict, OUTBOX_OK);
    assert_true(rx_header(&srv->reqs[0], "X-Amz-Invocation-Type", v, sizeof v));
    assert_string_equal(v, "Event");
    root = json_loads(srv->reqs[0].body, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(root, "events")), 2);
    json_decref(root);
    sink_lambda_ops.free(l);
}

static void test_function_url_unsigned(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    char url[128], v[64];
    sink_lambda *l = NULL;
    (void)state;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    snprintf(url, sizeof url, "%s/", srv->url_base);
    assert_int_equal(sink_lambda_new(http, &(sink_lambda_config){.url = url}, &l), 0);
    ev_add(&s, "a");
    run(l, &s, &f);
    assert_int_equal(f.res[0].verdict, OUTBOX_OK);
    assert_string_equal(srv->reqs[0].url, "/");
    assert_false(rx_header(&srv->reqs[0], "Authorization", v, sizeof v));
    assert_false(rx_header(&srv->reqs[0], "X-Amz-Invocation-Type", v, sizeof v));
    sink_lambda_ops.free(l);
}

static void test_bad_config(void **state)
{
    sink_lambda *l = (sink_lambda *)1;
    (void)state;
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    assert_int_equal(sink_lambda_new(http, &(sink_lambda_config){0}, &l), SB_EINVAL);
    assert_null(l);
    assert_int_equal(
        sink_lambda_new(http, &(sink_lambda_config){.function = "f", .url = "https://x/"}, &l),
        SB_EINVAL);
    /* a name, not an ARN */
    assert_int_equal(
        sink_lambda_new(
            http, &(sink_lambda_config){.function = "arn:aws:lambda:r:1:function:f", .region = "r"},
            &l),
        SB_EINVAL);
    /* the Invoke API needs a region */
    assert_int_equal(sink_lambda_new(http, &(sink_lambda_config){.function = "f"}, &l), SB_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invoke_api_in_order_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_error_retries_and_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_batch_invocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_url_unsigned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
