/* test_sink_sqs.c: the SQS sink against a local fake of the SQS JSON protocol (http_receiver.h
 * plus jansson): chunks of 10 in order with a SigV4 signature that verifies, FIFO group and
 * deduplication ids, standard queues without them, per-entry failures (SenderFault = dead, else
 * retry and stop), a whole-batch refusal narrowed down to the culprit, throttling, oversized
 * messages. */
#include "testutil.h"

#include "core/error.h"
#include "sinks/sqs.h"

#include "http_receiver.h"
#define MAXEV 40
#include "sink_test_harness.h"
#include "sigv4_verify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char reply_body[8192];

/* Answers like SQS: per entry by the content of its MessageBody. */
static void handler(rx_server *s, const rx_request *req, rx_reply *rep, void *ud)
{
    json_t *root = json_loads(req->body, 0, NULL), *entries, *e;
    size_t i;
    sb_buf ok, failed;
    const char *q = json_string_value(json_object_get(root, "QueueUrl"));
    char target[64] = "";
    (void)s;
    (void)ud;
    rx_header(req, "X-Amz-Target", target, sizeof target);
    if (!strcmp(target, "AmazonSQS.GetQueueAttributes")) {
        rep->body = "{\"Attributes\":{\"MaximumMessageSize\":\"1024\"}}";
        json_decref(root);
        return;
    }
    entries = json_object_get(root, "Entries");
    if (q && strstr(q, "throttled")) {
        rep->status = 400;
        rep->body = "{\"__type\":\"com.amazonaws.sqs#RequestThrottled\",\"message\":\"slow down\"}";
        json_decref(root);
        return;
    }
    json_array_foreach(entries, i, e)
    {
        const char *b = json_string_value(json_object_get(e, "MessageBody"));
        if (b && strstr(b, "poison") && json_array_size(entries) > 1) {
            rep->status = 400;
            rep->body = "{\"__type\":\"com.amazonaws.sqs#InvalidMessageContents\","
                        "\"message\":\"bad chars\"}";
            json_decref(root);
            return;
        }
    }
    sb_buf_init(&ok, 4096);
    sb_buf_init(&failed, 4096);
    json_array_foreach(entries, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "Id"));
        const char *b = json_string_value(json_object_get(e, "MessageBody"));
        if (b && strstr(b, "poison")) {
            sb_buf_printf(&failed,
                          "%s{\"Id\":\"%s\",\"SenderFault\":true,\"Code\":"
                          "\"InvalidMessageContents\",\"Message\":\"bad\"}",
                          failed.len ? "," : "", id);
        } else if (b && strstr(b, "sender-fault")) {
            sb_buf_printf(
                &failed,
                "%s{\"Id\":\"%s\",\"SenderFault\":true,\"Code\":\"InvalidParameterValue\","
                "\"Message\":\"no\"}",
                failed.len ? "," : "", id);
        } else if (b && strstr(b, "server-fault")) {
            sb_buf_printf(&failed,
                          "%s{\"Id\":\"%s\",\"SenderFault\":false,\"Code\":\"InternalError\","
                          "\"Message\":\"later\"}",
                          failed.len ? "," : "", id);
        } else {
            sb_buf_printf(&ok, "%s{\"Id\":\"%s\",\"MessageId\":\"m-%s\"}", ok.len ? "," : "", id,
                          id);
        }
    }
    snprintf(reply_body, sizeof reply_body, "{\"Successful\":[%s],\"Failed\":[%s]}",
             ok.data ? ok.data : "", failed.data ? failed.data : "");
    rep->body = reply_body;
    sb_buf_free(&ok);
    sb_buf_free(&failed);
    json_decref(root);
}

static int setup(void **state)
{
    (void)state;
    return sink_test_setup(handler);
}

typedef struct evset {
    outbox_event ev[MAXEV];
    const outbox_event *ptr[MAXEV];
    char id[MAXEV][64], key[MAXEV][32], payload[MAXEV][4096];
    size_t n;
} evset;

static void ev_add(evset *s, const char *word, const char *call_key)
{
    size_t i = s->n++;
    snprintf(s->id[i], sizeof s->id[i], "id-%zu", i);
    snprintf(s->key[i], sizeof s->key[i], "%s", call_key);
    snprintf(s->payload[i], sizeof s->payload[i], "{\"id\":\"id-%zu\",\"note\":\"%s\"}", i, word);
    s->ev[i] = (outbox_event){.seq = (int64_t)i + 1,
                              .id = s->id[i],
                              .type = "call.progress",
                              .pbx = "pbx1",
                              .call_key = s->key[i],
                              .time_ms = 1764000000000LL,
                              .payload = s->payload[i],
                              .payload_len = strlen(s->payload[i]),
                              .attempt = 1};
    s->ptr[i] = &s->ev[i];
}

static sink_sqs *make(const char *queue, size_t max_msg)
{
    char url[256];
    sink_sqs *q = NULL;
    snprintf(url, sizeof url, "https://sqs.eu-west-1.amazonaws.com/123456789012/%s", queue);
    assert_int_equal(
        sink_sqs_new(http,
                     &(sink_sqs_config){.queue_url = url,
                                        .endpoint = srv->url_base,
                                        .region = "eu-west-1",
                                        .access_key = "AKIDSQS",
                                        .secret_key = "sqs-secret",
                                        .max_message_bytes = max_msg ? max_msg : 256 * 1024},
                     &q),
        0);
    return q;
}

static void run(sink_sqs *q, evset *s, fake_delivery *f)
{
    f->n = s->n;
    assert_int_equal(sink_sqs_ops.deliver(q, s->ptr, s->n, on_done, (outbox_delivery *)f), 0);
    assert_true(run_until(&f->calls, 1, 5000));
    run_until(&f->calls, 2, 30);
    assert_int_equal(f->calls, 1);
}

static void test_fifo_batches_in_order_signed(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    sigv4_info info;
    size_t next = 0;
    char v[128];
    sink_sqs *q = make("calls.fifo", 0);
    (void)state;
    for (int i = 0; i < 25; i++)
        ev_add(&s, "fine", i % 2 ? "1764000000.7" : "");
    run(q, &s, &f);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(f.res[i].verdict, OUTBOX_OK);
    assert_int_equal(srv->nreqs, 3);
    for (size_t r = 0; r < 3; r++) {
        const rx_request *rq = &srv->reqs[r];
        json_t *root = json_loads(rq->body, 0, NULL), *entries, *e;
        size_t i;
        assert_non_null(root);
        if (!sigv4_verify(rq, "sqs-secret", &info))
            fail_msg("%s", info.why);
        assert_string_equal(info.service, "sqs");
        assert_string_equal(info.region, "eu-west-1");
        assert_non_null(strstr(info.signed_headers, "x-amz-target"));
        assert_string_equal(rq->url, "/");
        assert_true(rx_header(rq, "X-Amz-Target", v, sizeof v));
        assert_string_equal(v, "AmazonSQS.SendMessageBatch");
        assert_true(rx_header(rq, "Content-Type", v, sizeof v));
        assert_string_equal(v, "application/x-amz-json-1.0");
        assert_string_equal(json_string_value(json_object_get(root, "QueueUrl")),
                            "https://sqs.eu-west-1.amazonaws.com/123456789012/calls.fifo");
        entries = json_object_get(root, "Entries");
        assert_int_equal(json_array_size(entries), r < 2 ? 10 : 5);
        json_array_foreach(entries, i, e)
        {
            char want_id[32];
            snprintf(want_id, sizeof want_id, "e%zu", i);
            assert_string_equal(json_string_value(json_object_get(e, "Id")), want_id);
            assert_string_equal(json_string_value(json_object_get(e, "MessageBody")),
                                s.payload[next]);
            assert_string_equal(json_string_value(json_object_get(e, "MessageDeduplicationId")),
                                s.id[next]);
            /* group = the call; the PBX name for events without one */
            assert_string_equal(json_string_value(json_object_get(e, "MessageGroupId")),
                                s.key[next][0] ? s.key[next] : "pbx1");
            assert_string_equal(
                json_string_value(json_object_get(
                    json_object_get(json_object_get(e, "MessageAttributes"), "type"),
                    "StringValue")),
                "call.progress");
            next++;
        }
        json_decref(root);
    }
    assert_int_equal(next, 25);
    sink_sqs_ops.free(q);
}

static void test_standard_queue_has_no_fifo_fields(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    json_t *root;
    sink_sqs *q = make("calls", 0);
    (void)state;
    ev_add(&s, "fine", "L1");
    run(q, &s, &f);
    assert_int_equal(f.res[0].verdict, OUTBOX_OK);
    root = json_loads(srv->reqs[0].body, 0, NULL);
    assert_null(
        json_object_get(json_array_get(json_object_get(root, "Entries"), 0), "MessageGroupId"));
    json_decref(root);
    sink_sqs_ops.free(q);
}

static void test_partial_failures_map_per_event(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    sink_sqs *q = make("calls.fifo", 0);
    (void)state;
    ev_add(&s, "fine", "L");
    ev_add(&s, "sender-fault", "L");
    ev_add(&s, "fine", "L");
    ev_add(&s, "server-fault", "L");
    ev_add(&s, "fine", "L");
    for (int i = 0; i < 10; i++) /* the next chunk: never sent after a retry */
        ev_add(&s, "fine", "L");
    run(q, &s, &f);
    assert_int_equal(srv->nreqs, 1);
    assert_int_equal(f.res[0].verdict, OUTBOX_OK);
    assert_int_equal(f.res[1].verdict, OUTBOX_DEAD);
    assert_non_null(strstr(f.why[1], "InvalidParameterValue"));
    assert_int_equal(f.res[2].verdict, OUTBOX_OK);
    assert_int_equal(f.res[3].verdict, OUTBOX_RETRY);
    assert_non_null(strstr(f.why[3], "InternalError"));
    assert_int_equal(f.res[4].verdict, OUTBOX_OK);
    for (size_t i = 10; i < s.n; i++) {
        assert_int_equal(f.res[i].verdict, OUTBOX_RETRY);
        assert_non_null(strstr(f.why[i], "not sent"));
    }
    sink_sqs_ops.free(q);
}

static void test_whole_batch_refusal_finds_the_culprit(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    sink_sqs *q = make("calls", 0);
    (void)state;
    ev_add(&s, "fine", "L");
    ev_add(&s, "poison", "L");
    ev_add(&s, "fine", "L");
    run(q, &s, &f);
    assert_int_equal(srv->nreqs, 4); /* the refused chunk, then one by one */
    assert_int_equal(f.res[0].verdict, OUTBOX_OK);
    assert_int_equal(f.res[1].verdict, OUTBOX_DEAD);
    assert_int_equal(f.res[2].verdict, OUTBOX_OK);
    sink_sqs_ops.free(q);
}

static void test_throttling_is_retried(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    sink_sqs *q = make("throttled", 0);
    (void)state;
    ev_add(&s, "fine", "L");
    ev_add(&s, "fine", "L");
    run(q, &s, &f);
    assert_int_equal(srv->nreqs, 1);
    assert_int_equal(f.res[0].verdict, OUTBOX_RETRY);
    assert_non_null(strstr(f.why[0], "RequestThrottled"));
    assert_int_equal(f.res[1].verdict, OUTBOX_RETRY);
    sink_sqs_ops.free(q);
}

static void test_oversized_message_is_dead(void **state)
{
    evset s = {0};
    fake_delivery f = {0};
    char big[2048];
    sink_sqs *q = make("calls", 1024);
    (void)state;
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ev_add(&s, "fine", "L");
    ev_add(&s, big, "L");
    ev_add(&s, "fine", "L");
    run(q, &s, &f);
    assert_int_equal(f.res[0].verdict, OUTBOX_OK);
    assert_int_equal(f.res[1].verdict, OUTBOX_DEAD);
    assert_non_null(strstr(f.why[1], "message limit"));
    assert_int_equal(f.res[2].verdict, OUTBOX_OK);
    sink_sqs_ops.free(q);
}

/* Without max_message_size the first delivery asks the queue (GetQueueAttributes) and waits. */
static void test_message_size_read_from_the_queue(void **state)
{
    evset s = {0};
    fake_delivery f = {0}, f2 = {0};
    char big[2048], v[64];
    sigv4_info info;
    json_t *root;
    sink_sqs *q = NULL;
    (void)state;
    assert_int_equal(
        sink_sqs_new(http,
                     &(sink_sqs_config){.queue_url = "https://sqs.eu-west-1.amazonaws.com/1/small",
                                        .endpoint = srv->url_base,
                                        .region = "eu-west-1",
                                        .access_key = "AKIDSQS",
                                        .secret_key = "sqs-secret"},
                     &q),
        0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(srv->nreqs, 0); /* nothing at creation (config check builds sinks too) */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ev_add(&s, big, "L");
    ev_add(&s, "fine", "L");
    run(q, &s, &f);
    assert_int_equal(f.res[0].verdict, OUTBOX_DEAD); /* 2 KiB > the queue's 1024 */
    assert_int_equal(f.res[1].verdict, OUTBOX_OK);
    assert_int_equal(srv->nreqs, 2);
    assert_true(rx_header(&srv->reqs[0], "X-Amz-Target", v, sizeof v));
    assert_string_equal(v, "AmazonSQS.GetQueueAttributes");
    if (!sigv4_verify(&srv->reqs[0], "sqs-secret", &info))
        fail_msg("%s", info.why);
    root = json_loads(srv->reqs[0].body, 0, NULL);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(root, "AttributeNames"), 0)),
        "MaximumMessageSize");
    json_decref(root);
    /* asked once only */
    run(q, &s, &f2);
    assert_int_equal(srv->nreqs, 3);
    sink_sqs_ops.free(q);
}

static void test_bad_config(void **state)
{
    sink_sqs *q = (sink_sqs *)1;
    (void)state;
    assert_int_equal(sink_sqs_new(http, &(sink_sqs_config){.queue_url = NULL}, &q), SB_EINVAL);
    assert_null(q);
    assert_int_equal(sink_sqs_new(http, &(sink_sqs_config){.queue_url = "sqs://x/y"}, &q),
                     SB_EINVAL);
    assert_int_equal(sink_sqs_new(http, &(sink_sqs_config){.queue_url = "https://host-only"}, &q),
                     SB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_batches_in_order_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_standard_queue_has_no_fifo_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_failures_map_per_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_batch_refusal_finds_the_culprit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_throttling_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_message_is_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_size_read_from_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
