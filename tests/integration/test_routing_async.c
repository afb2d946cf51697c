/* test_routing_async.c: the same routes over AsyncAGI: the simulator's AMI server plays
 * channels in AGI(agi:async,route) (AsyncAGIStart, Action: AGI, AsyncAGIExec, AsyncAGIEnd as in
 * fixture 11), switchboard's AMI client feeds the events to agi_async, and the dialogue is the
 * FastAGI one followed by ASYNCAGI BREAK. */
#include "routing_fixture.h"

#include "agi/async.h"
#include "ami/client.h"
#include "pbxsim.h"

typedef struct af {
    rf f;
    pbxsim *sim;
    ami_client *client;
    agi_async *async;
    bool is_ready;
    unsigned async_events, other_events;
} af;

static void on_event(ami_client *c, const ami_packet *ev, void *ud)
{
    af *x = ud;
    if (agi_async_on_event(x->async, c, ev))
        x->async_events++;
    else
        x->other_events++;
}

static void on_ready(ami_client *c, bool reconnected, void *ud)
{
    af *x = ud;
    (void)c;
    (void)reconnected;
    x->is_ready = true;
}

static void af_setup(af *x)
{
    memset(x, 0, sizeof *x);
    rf_setup(&x->f);
    pbxsim_config sc;
    pbxsim_config_default(&sc);
    sc.port = 0;
    assert_int_equal(pbxsim_new(&x->f.loop, &sc, &x->sim), 0);
    assert_int_equal(pbxsim_start(x->sim), 0);
    assert_int_equal(agi_async_new(&x->f.loop, x->f.engine, &x->async), 0);
    ami_client_config cc = {.name = "sim",
                            .host = "127.0.0.1",
                            .port = pbxsim_port(x->sim),
                            .username = "admin",
                            .secret = "admin-secret"};
    ami_client_callbacks cb = {.on_event = on_event, .on_ready = on_ready, .ud = x};
    assert_int_equal(ami_client_new(&x->f.loop, &cc, &cb, &x->client), 0);
    assert_int_equal(ami_client_start(x->client), 0);
    rf_run_until(&x->f, &x->is_ready);
}

static void af_teardown(af *x)
{
    ami_client_stop(x->client);
    ami_client_free(x->client);
    agi_async_free(x->async);
    pbxsim_stop(x->sim);
    pbxsim_free(x->sim);
    rf_teardown(&x->f);
}

static void af_call(af *x, const char *caller, const char *dialed, const char *const *dtmf,
                    size_t ndtmf, unsigned hangup_after)
{
    rf *f = &x->f;
    rf_clear_call(f);
    pbxsim_agi_call call = {.script = "route",
                            .callerid = caller,
                            .extension = dialed,
                            .dtmf = dtmf,
                            .ndtmf = ndtmf,
                            .hangup_after = hangup_after,
                            .is_recording = true};
    assert_int_equal(pbxsim_asyncagi_start(x->sim, &call, rf_call_done, f), 0);
    rf_run_until(f, &f->is_done);
    assert_int_equal(f->status, 0);
    for (int i = 0; i < 50 && (agi_async_active(x->async) || route_engine_active(f->engine)); i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(agi_async_active(x->async), 0);
    assert_int_equal(route_engine_active(f->engine), 0);
}

static void test_routing_async_classic_table(void **state)
{
    (void)state;
    af x;
    af_setup(&x);
    af_call(&x, "300", "31", NULL, 0, 0);
    RF_EXPECT(&x.f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE sip", "EXEC Dial PJSIP/31,20", "ASYNCAGI BREAK");
    assert_string_equal(rf_last(&x.f)->rule, "sip");
    af_call(&x, "300", "91234567", NULL, 0, 0);
    RF_EXPECT(&x.f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE CDR(userfield) trunk", "SET VARIABLE __SB_ROUTE trunk",
              "EXEC Dial PJSIP/1234567@carrier", "ASYNCAGI BREAK");
    af_call(&x, "300", "66", NULL, 0, 0);
    RF_EXPECT(&x.f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE GREETING \"say \\\"hi\\\" now\"", "SET VARIABLE __SB_ROUTE vm",
              "EXEC VoiceMail 66@default", "ASYNCAGI BREAK");
    af_call(&x, "5551234", "900", NULL, 0, 0);
    RF_EXPECT(&x.f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE vip", "EXEC Dial PJSIP/201", "ASYNCAGI BREAK");
    /* Start, one Exec per command, End: every AsyncAGI event reached agi_async. */
    assert_true(x.async_events >= 4 * 6);
    af_teardown(&x);
}

static void test_routing_async_pin_ivr_and_decide(void **state)
{
    (void)state;
    af x;
    af_setup(&x);
    static const char *const keys[] = {"1111", "4321"};
    af_call(&x, "400", "0044123", keys, 2, 0);
    RF_EXPECT(&x.f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)", "ANSWER",
              "GET DATA agent-pass 5000 10", "STREAM FILE auth-incorrect \"\"",
              "GET DATA agent-pass 5000 10", "SET VARIABLE __SB_ROUTE intl",
              "EXEC Dial PJSIP/0044123@carrier", "ASYNCAGI BREAK");
    static const char *const menu[] = {"7", "1"};
    af_call(&x, "300", "800", menu, 2, 0);
    RF_EXPECT(&x.f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE menu", "ANSWER", "GET DATA welcome 2000 1",
              "STREAM FILE no-such-option \"\"", "GET DATA welcome 2000 1",
              "EXEC Queue sales,,,,20", "ASYNCAGI BREAK");
    af_call(&x, "300", "902", NULL, 0, 0);
    RF_EXPECT(&x.f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE slow", "EXEC Dial PJSIP/operator", "ASYNCAGI BREAK");
    assert_true(rf_last(&x.f)->used_fallback);
    assert_true(rf_last(&x.f)->elapsed_us < 800000);
    af_teardown(&x);
}

static void test_routing_async_caller_hangs_up(void **state)
{
    (void)state;
    af x;
    af_setup(&x);
    /* AsyncAGIEnd arrives instead of the 5th command's result: no BREAK, the call just ends. */
    af_call(&x, "300", "800", NULL, 0, 4);
    RF_EXPECT(&x.f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE menu", "ANSWER");
    assert_string_equal(rf_last(&x.f)->outcome, "hangup");
    af_teardown(&x);
}

static void test_routing_async_fixture_env(void **state)
{
    (void)state;
    /* The Env of fixture 11 parses into the header the runner reads. */
    size_t len;
    char *text = tu_read_file(tu_fixture("11-asyncagi.ami"), &len);
    assert_non_null(text);
    const char *env = strstr(text, "Env: ");
    assert_non_null(env);
    env += 5;
    const char *eol = strstr(env, "\r\n") ? strstr(env, "\r\n") : strchr(env, '\n');
    sb_buf dec;
    sb_buf_init(&dec, 8192);
    assert_int_equal(agi_url_decode((sb_slice){env, (size_t)(eol - env)}, &dec), 0);
    agi_header_parser hp;
    agi_request req = {0};
    size_t used;
    agi_header_init(&hp, 0, 0);
    assert_int_equal(agi_header_feed(&hp, dec.data, dec.len, &used, &req), AGI_DONE);
    sb_slice v;
    assert_true(agi_request_get(&req, "agi_extension", &v));
    assert_true(sb_slice_eq(v, sb_slice_cstr("301")));
    assert_true(agi_request_get(&req, "agi_callerid", &v));
    assert_true(sb_slice_eq(v, sb_slice_cstr("5557777")));
    agi_request_free(&req);
    agi_header_free(&hp);
    sb_buf_free(&dec);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_async_classic_table),
        cmocka_unit_test(test_routing_async_pin_ivr_and_decide),
        cmocka_unit_test(test_routing_async_caller_hangs_up),
        cmocka_unit_test(test_routing_async_fixture_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
