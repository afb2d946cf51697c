/* test_routing.c: routed calls end to end over FastAGI: the simulator's AGI client connects
 * like Asterisk, the routing engine drives the call, and the exact command dialogue and the
 * reported decision are checked: the classic router table, PIN (right on the second try, three
 * wrong, rate-limited), caller-ID map, closed hours, IVR, decide (answers, times out, garbage)
 * and the caller hanging up mid-dialogue. */
#include "routing_fixture.h"

static const char *const pin_prompt = "GET DATA agent-pass 5000 10";

static void test_routing_classic_table(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    rf_call(&f, "300", "31", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE sip", "EXEC Dial PJSIP/31,20");
    assert_string_equal(rf_last(&f)->rule, "sip");
    assert_string_equal(rf_last(&f)->outcome, "routed");
    rf_call(&f, "300", "25", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE iax", "EXEC Dial IAX2/25");
    rf_call(&f, "300", "91234567", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE CDR(userfield) trunk", "SET VARIABLE __SB_ROUTE trunk",
              "EXEC Dial PJSIP/1234567@carrier");
    rf_call(&f, "300", "66", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE GREETING \"say \\\"hi\\\" now\"", "SET VARIABLE __SB_ROUTE vm",
              "EXEC VoiceMail 66@default");
    rf_call(&f, "300", "71", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE conf", "ANSWER", "EXEC ConfBridge room71");
    /* No rule: the call goes back to the dialplan untouched. */
    rf_call(&f, "300", "4", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)");
    assert_string_equal(rf_last(&f)->outcome, "no-route");
    assert_int_equal(f.ndecided, 6);
    rf_teardown(&f);
}

static void test_routing_pin_right_on_second_try(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    /* 300 is allowed (_3XX): no PIN. */
    rf_call(&f, "300", "0044123", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE intl", "EXEC Dial PJSIP/0044123@carrier");
    static const char *const keys[] = {"1111", "4321"};
    rf_call(&f, "400", "0044123", keys, 2, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)", "ANSWER", pin_prompt,
              "STREAM FILE auth-incorrect \"\"", pin_prompt, "SET VARIABLE __SB_ROUTE intl",
              "EXEC Dial PJSIP/0044123@carrier");
    assert_string_equal(rf_last(&f)->outcome, "routed");
    assert_non_null(strstr(rf_last(&f)->detail, "PIN accepted on try 2"));
    rf_teardown(&f);
}

static void test_routing_three_wrong_pins_then_hangup_and_lockout(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    static const char *const keys[] = {"1", "22", ""};
    rf_call(&f, "401", "0044123", keys, 3, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)", "ANSWER", pin_prompt,
              "STREAM FILE auth-incorrect \"\"", pin_prompt, "STREAM FILE auth-incorrect \"\"",
              pin_prompt, "STREAM FILE auth-incorrect \"\"", "STREAM FILE vm-goodbye \"\"",
              "HANGUP");
    assert_string_equal(rf_last(&f)->outcome, "pin-failed");
    assert_true(f.is_hung_up);
    /* Two more wrong PINs from the same caller reach the limit (5): locked out. */
    rf_call(&f, "401", "0044123", keys, 3, 0);
    assert_string_equal(rf_last(&f)->outcome, "pin-failed");
    rf_call(&f, "401", "0044123", keys, 3, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)", "ANSWER",
              "STREAM FILE vm-goodbye \"\"", "HANGUP");
    assert_string_equal(rf_last(&f)->outcome, "pin-locked");
    /* Another caller is not affected, and the right PIN still works for them. */
    static const char *const good[] = {"4321"};
    rf_call(&f, "402", "0044123", good, 1, 0);
    assert_string_equal(rf_last(&f)->outcome, "routed");
    rf_teardown(&f);
}

static void test_routing_callerid_map_hit_and_default(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    rf_call(&f, "5551234", "900", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE vip", "EXEC Dial PJSIP/201");
    rf_call(&f, "5559999", "900", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE vip", "EXEC Dial PJSIP/300");
    rf_teardown(&f);
}

static void test_routing_closed_hours(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    rf_call(&f, "300", "500", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE holiday", "ANSWER", "EXEC Playback closed-today", "HANGUP");
    assert_true(rf_last(&f)->is_closed);
    rf_call(&f, "300", "501", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE open", "EXEC Queue support");
    assert_false(rf_last(&f)->is_closed);
    rf_teardown(&f);
}

static void test_routing_ivr_invalid_then_valid_digit(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    static const char *const keys[] = {"7", "", "2", "1"};
    rf_call(&f, "300", "800", keys, 4, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE menu", "ANSWER", "GET DATA welcome 2000 1",
              "STREAM FILE no-such-option \"\"", "GET DATA welcome 2000 1",
              "GET DATA welcome 2000 1", "GET DATA sub-menu 5000 1", "EXEC VoiceMail 200@default");
    assert_non_null(strstr(rf_last(&f)->detail, "main:2 sub:1"));
    /* Out of retries (1 try + 2 retries): hang up. */
    static const char *const bad[] = {"9", "9", "9"};
    rf_call(&f, "300", "800", bad, 3, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE menu", "ANSWER", "GET DATA welcome 2000 1",
              "STREAM FILE no-such-option \"\"", "GET DATA welcome 2000 1",
              "STREAM FILE no-such-option \"\"", "GET DATA welcome 2000 1", "HANGUP");
    rf_teardown(&f);
}

static void test_routing_decide_answers(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    rf_call(&f, "300", "901", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE ask", "EXEC Dial PJSIP/sales-901,15");
    assert_false(rf_last(&f)->used_fallback);
    assert_int_equal(f.rx->nreqs, 1);
    assert_string_equal(f.rx->reqs[0].method, "POST");
    json_t *body = json_loads(f.rx->reqs[0].body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "to")), "901");
    assert_string_equal(json_string_value(json_object_get(body, "from")), "300");
    assert_string_equal(json_string_value(json_object_get(body, "pbx")), "main");
    assert_string_equal(json_string_value(json_object_get(body, "rule")), "ask");
    json_decref(body);
    rf_teardown(&f);
}

static void test_routing_decide_timeout_takes_fallback_in_time(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    uint64_t t0 = uv_hrtime();
    rf_call(&f, "300", "902", NULL, 0, 0);
    uint64_t took_ms = (uv_hrtime() - t0) / 1000000;
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE slow", "EXEC Dial PJSIP/operator");
    assert_true(rf_last(&f)->used_fallback);
    /* The endpoint never answers: the fallback runs when the 300 ms are up, not later. */
    assert_true(rf_last(&f)->elapsed_us >= 290000);
    assert_true(rf_last(&f)->elapsed_us < 800000);
    assert_true(took_ms < 1500);
    assert_int_equal(f.rx->nreqs, 1);
    rf_teardown(&f);
}

static void test_routing_decide_garbage_takes_fallback(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    rf_call(&f, "300", "903", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE junk", "EXEC Dial PJSIP/operator");
    assert_true(rf_last(&f)->used_fallback);
    assert_non_null(strstr(rf_last(&f)->detail, "not {\"action\""));
    rf_teardown(&f);
}

static void test_routing_caller_hangs_up_mid_dialogue(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    /* The caller hangs up while the IVR menu plays (the 5th command gets HANGUP + 511). */
    static const char *const keys[] = {"1"};
    rf_call(&f, "300", "800", keys, 1, 4);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE menu", "ANSWER", "GET DATA welcome 2000 1");
    assert_string_equal(rf_last(&f)->outcome, "hangup");
    assert_true(f.is_hung_up);
    /* While asking for the PIN. */
    static const char *const pins[] = {"1111"};
    rf_call(&f, "450", "0044123", pins, 1, 3);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)", "ANSWER",
              pin_prompt);
    assert_string_equal(rf_last(&f)->outcome, "hangup");
    rf_teardown(&f);
}

static void test_routing_denied_without_pin(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    rf_call(&f, "400", "909", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)", "ANSWER",
              "STREAM FILE vm-goodbye \"\"", "HANGUP");
    assert_string_equal(rf_last(&f)->outcome, "denied");
    rf_call(&f, "301", "909", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE premium", "EXEC Dial PJSIP/premium");
    rf_teardown(&f);
}

static void test_routing_menu_loop_is_bounded(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    static const char *const ones[] = {"1", "1", "1", "1", "1", "1", "1", "1", "1", "1",
                                       "1", "1", "1", "1", "1", "1", "1", "1", "1", "1"};
    rf_call(&f, "300", "808", ones, 20, 0);
    /* 16 chained actions at most: the 17th hangs up. */
    assert_int_equal(f.ncmds, 3 + 1 + 16 + 1);
    assert_string_equal(f.cmds[f.ncmds - 1], "HANGUP");
    assert_string_equal(rf_last(&f)->outcome, "error");
    rf_teardown(&f);
}

/* Routes replaced while a call waits for its decide endpoint: the call finishes with the routes
 * it started with (they are freed after it), the next call uses the new ones. */
static void test_routing_reload_during_a_call(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    pbxsim_agi_call call = {
        .script = "route", .callerid = "300", .extension = "902", .is_recording = true};
    assert_int_equal(
        pbxsim_agi_connect(&f.loop, "127.0.0.1", route_fastagi_port(f.fa), &call, rf_call_done, &f),
        0);
    uint64_t t0 = uv_hrtime();
    while (f.rx->nreqs == 0 && uv_hrtime() - t0 < 3000000000ull)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_int_equal(f.rx->nreqs, 1);
    static const char text[] = "[route route]\n[rule all]\nmatch = _X.\naction = hangup\n";
    route_db *db = NULL;
    assert_int_equal(route_db_parse(text, strlen(text), "new", &db, NULL, 0), 0);
    route_engine_set_db(f.engine, db);
    rf_run_until(&f, &f.is_done);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE slow", "EXEC Dial PJSIP/operator");
    for (int i = 0; i < 20 && route_engine_active(f.engine); i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    rf_call(&f, "300", "902", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE all", "HANGUP");
    rf_teardown(&f);
}

/* agi://host/route?pbx=madrid names the PBX; a rule may be for one PBX only. */
static void test_routing_pbx_condition_from_the_url(void **state)
{
    (void)state;
    rf f;
    rf_setup(&f);
    rf_script = "route?pbx=madrid";
    rf_call(&f, "300", "600", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE madrid-only", "EXEC Dial PJSIP/madrid");
    rf_script = "route"; /* the engine's default PBX is "main" */
    rf_call(&f, "300", "600", NULL, 0, 0);
    RF_EXPECT(&f, "GET VARIABLE CALLERID(num)", "GET VARIABLE CALLERID(name)",
              "SET VARIABLE __SB_ROUTE any-600", "EXEC Dial PJSIP/elsewhere");
    rf_script = "nosuchset";
    rf_call(&f, "300", "600", NULL, 0, 0);
    assert_int_equal(f.ncmds, 0);
    assert_string_equal(rf_last(&f)->outcome, "no-route");
    rf_script = "route";
    rf_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_classic_table),
        cmocka_unit_test(test_routing_pin_right_on_second_try),
        cmocka_unit_test(test_routing_three_wrong_pins_then_hangup_and_lockout),
        cmocka_unit_test(test_routing_callerid_map_hit_and_default),
        cmocka_unit_test(test_routing_closed_hours),
        cmocka_unit_test(test_routing_ivr_invalid_then_valid_digit),
        cmocka_unit_test(test_routing_decide_answers),
        cmocka_unit_test(test_routing_decide_timeout_takes_fallback_in_time),
        cmocka_unit_test(test_routing_decide_garbage_takes_fallback),
        cmocka_unit_test(test_routing_caller_hangs_up_mid_dialogue),
        cmocka_unit_test(test_routing_denied_without_pin),
        cmocka_unit_test(test_routing_menu_loop_is_bounded),
        cmocka_unit_test(test_routing_reload_during_a_call),
        cmocka_unit_test(test_routing_pbx_condition_from_the_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
