/* test_sink_factory.c: [sink NAME] sections to sinks: every kind builds with its outbox settings,
 * nats included, and each kind of mistake gives one "FILE:LINE: [sink NAME] key:
 * problem" line that never contains a secret. */
#include "testutil.h"

#include "core/error.h"
#include "sinks/factory.h"
#include "sinks/lambda.h"
#include "sinks/nats.h"
#include "sinks/s3.h"
#include "sinks/sqs.h"
#include "sinks/webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uv_loop_t loop;
static httpc *http;

static int setup(void **state)
{
    (void)state;
    if (uv_loop_init(&loop) != 0)
        return -1;
    http = httpc_new(&loop, NULL);
    return http ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    httpc_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* Parses text and builds sink NAME; returns the code, the message in err. */
static int build(const char *text, const char *name, sink_built *b, char *err, size_t n)
{
    sb_config *cfg = NULL;
    char perr[256];
    int rc = sb_config_parse(text, strlen(text), "sb.conf", &cfg, perr, sizeof perr);
    if (rc)
        fail_msg("config: %s", perr);
    rc = sink_from_section(&loop, http, cfg, sb_config_section_find(cfg, "sink", name), b, err, n);
    if (rc == 0)
        b->ocfg.name = NULL; /* borrowed from cfg, freed next */
    sb_config_free(cfg);
    return rc;
}

static void test_every_kind_builds(void **state)
{
    const char *text = "[sink hooks]\n"
                       "kind = webhook\n"
                       "url = https://example.com/hook\n"
                       "secret = topsecret\n"
                       "types = call.*\n"
                       "partitioned = yes\n"
                       "max_inflight = 8\n"
                       "batch_max = 50\n"
                       "max_attempts = 20\n"
                       "max_age = 7d\n"
                       "backoff_base = 250ms\n"
                       "header = X-Tenant: acme\n"
                       "timeout = 5s\n"
                       "[sink archive]\n"
                       "kind = s3\n"
                       "bucket = calls\n"
                       "region = eu-west-1\n"
                       "access_key = AKID\n"
                       "secret_key = s3secret\n"
                       "max_object_size = 4M\n"
                       "flush_interval = 30s\n"
                       "[sink queue]\n"
                       "kind = sqs\n"
                       "queue_url = https://sqs.eu-west-1.amazonaws.com/1/q.fifo\n"
                       "region = eu-west-1\n"
                       "[sink fn]\n"
                       "kind = lambda\n"
                       "function = on-call\n"
                       "invocation = async\n"
                       "region = us-east-1\n"
                       "[sink bus]\n"
                       "kind = nats\n";
    sink_built b;
    char err[256];
    (void)state;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(build(text, "hooks", &b, err, sizeof err), 0);
    assert_ptr_equal(b.ops, &sink_webhook_ops);
    assert_true(b.ocfg.is_partitioned);
    assert_int_equal(b.ocfg.max_inflight, 8);
    assert_int_equal(b.ocfg.batch_max, 50);
    assert_int_equal(b.ocfg.max_attempts, 20);
    assert_int_equal(b.ocfg.max_age_ms, 7LL * 86400 * 1000);
    assert_int_equal(b.ocfg.backoff_base_ms, 250);
    b.ops->free(b.impl);

    assert_int_equal(build(text, "archive", &b, err, sizeof err), 0);
    assert_ptr_equal(b.ops, &sink_s3_ops);
    assert_int_equal(b.ocfg.batch_max, 1000);
    b.ops->free(b.impl);

    assert_int_equal(build(text, "queue", &b, err, sizeof err), 0);
    assert_ptr_equal(b.ops, &sink_sqs_ops);
    b.ops->free(b.impl);

    assert_int_equal(build(text, "fn", &b, err, sizeof err), 0);
    assert_ptr_equal(b.ops, &sink_lambda_ops);
    b.ops->free(b.impl);

    assert_int_equal(build(text, "bus", &b, err, sizeof err), 0);
    assert_ptr_equal(b.ops, &sink_nats_ops);
    b.ops->free(b.impl);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void expect(const char *text, const char *msg)
{
    sink_built b;
    char err[256];
    assert_int_equal(build(text, "x", &b, err, sizeof err), SB_ECONFIG);
    assert_string_equal(err, msg);
    assert_null(strstr(err, "topsecret"));
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_mistakes_name_file_line_and_key(void **state)
{
    (void)state;
    unsetenv("SB_TEST_NO_SUCH_VAR");
    expect("[sink x]\nurl = http://a\n",
           "sb.conf:1: [sink x] kind: missing (webhook, s3, sqs, lambda or nats)");
    expect("[sink x]\nkind = carrier-pigeon\n",
           "sb.conf:2: [sink x] kind: 'carrier-pigeon' is not webhook, s3, sqs, lambda or nats");
    expect("[sink x]\nkind = webhook\n", "sb.conf:1: [sink x] url: missing (required for kind "
                                         "webhook)");
    expect("[sink x]\nkind = webhook\nurl = http://a\nbucket = b\n",
           "sb.conf:4: [sink x] bucket: unknown key for this kind of sink");
    expect("[sink x]\nkind = webhook\nurl = http://a\nbatch = maybe\n",
           "sb.conf:4: [sink x] batch: 'maybe' is not yes or no");
    expect("[sink x]\nkind = webhook\nurl = http://a\ntimeout = soon\n",
           "sb.conf:4: [sink x] timeout: 'soon' is not a duration (e.g. 500ms, 10s, 2m)");
    expect("[sink x]\nkind = webhook\nurl = http://a\nsecret = topsecret\nsecret_env = X\n",
           "sb.conf:5: [sink x] secret_env: give only one of secret, secret_file, secret_env");
    expect("[sink x]\nkind = webhook\nurl = http://a\nsecret_env = SB_TEST_NO_SUCH_VAR\n",
           "sb.conf:4: [sink x] secret_env: environment variable SB_TEST_NO_SUCH_VAR is not set");
    expect("[sink x]\nkind = webhook\nurl = ftp://a\nsecret = topsecret\n",
           "sb.conf:1: [sink x]: bad url (http:// or https://), header or filter");
    expect("[sink x]\nkind = s3\nbucket = b\nregion = r\naccess_key = A\n",
           "sb.conf:1: [sink x]: AWS credentials need both access_key and secret_key (or "
           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and a region");
    expect("[sink x]\nkind = lambda\nregion = r\n",
           "sb.conf:1: [sink x] function: give exactly one of function and url");
    expect("[sink x]\nkind = webhook\nurl = http://a\nmax_inflight = 4\n",
           "sb.conf:1: [sink x] max_inflight: needs partitioned = yes");
}

static void test_secret_from_env(void **state)
{
    sink_built b;
    char err[256];
    (void)state;
    setenv("SB_TEST_HOOK_SECRET", "from-env", 1);
    assert_int_equal(build("[sink x]\nkind = webhook\nurl = http://a\n"
                           "secret_env = SB_TEST_HOOK_SECRET\n",
                           "x", &b, err, sizeof err),
                     0);
    b.ops->free(b.impl);
    unsetenv("SB_TEST_HOOK_SECRET");
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static void test_add_all_to_a_real_outbox(void **state)
{
    const char *text = "[sink a]\nkind = webhook\nurl = http://127.0.0.1:9/a\nsecret = x\n"
                       "[sink b]\nkind = sqs\nqueue_url = https://sqs.r.amazonaws.com/1/q\n"
                       "region = r\n"
                       "[sink c]\nkind = nats\n"
                       "[sink d]\nkind = s3\nbucket = b\nendpoint = http://127.0.0.1:9\n";
    const char *bad = "[sink a]\nkind = webhook\nurl = http://127.0.0.1:9/a\n"
                      "[sink z]\nkind = s3\n";
    sb_config *cfg = NULL;
    char err[256], dir[64], db[128], p[160];
    size_t nother = 99;
    outbox *ob = NULL;
    outbox_sink_stats st;
    int closed = 0;
    (void)state;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(sb_config_parse(text, strlen(text), "sb.conf", &cfg, err, sizeof err), 0);
    /* check only */
    assert_int_equal(sink_add_all(&loop, http, cfg, NULL, &nother, err, sizeof err), 0);
    assert_int_equal(nother, 0);
    /* into a real outbox */
    snprintf(dir, sizeof dir, "/tmp/sb-sinkfx-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/store.db", dir);
    assert_int_equal(outbox_open(&loop, &(outbox_options){.path = db}, &ob), 0);
    assert_int_equal(sink_add_all(&loop, http, cfg, ob, &nother, err, sizeof err), 0);
    assert_int_equal(outbox_sink_stats_get(ob, "a", &st), 0);
    assert_int_equal(outbox_sink_stats_get(ob, "b", &st), 0);
    assert_int_equal(outbox_sink_stats_get(ob, "d", &st), 0);
    assert_int_equal(outbox_sink_stats_get(ob, "c", &st), 0);
    /* adding the same names again fails, naming the section */
    assert_int_equal(sink_add_all(&loop, http, cfg, ob, NULL, err, sizeof err), SB_EEXIST);
    assert_string_equal(err, "sb.conf:1: [sink a]: cannot add the sink: already exists");
    outbox_close(ob, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    sb_config_free(cfg);
    assert_int_equal(sb_config_parse(bad, strlen(bad), "sb.conf", &cfg, err, sizeof err), 0);
    assert_int_equal(sink_add_all(&loop, http, cfg, NULL, NULL, err, sizeof err), SB_ECONFIG);
    assert_string_equal(err, "sb.conf:4: [sink z] bucket: missing (required for kind s3)");
    sb_config_free(cfg);
    uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db, i == 0 ? "" : i == 1 ? "-wal" : "-shm");
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_kind_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mistakes_name_file_line_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_all_to_a_real_outbox, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
