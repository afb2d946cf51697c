/* test_ami_sim.c: the AMI client against the PBX simulator (tools/pbxsim), on one loop.
 *
 * Issue 2 §6 asks for each of these as an integration test: login both ways, bad secret,
 * 1,000 concurrent actions (Ping, lists, originates), event lists, async Originate success and
 * failure, permission denied, reconnect after a dropped connection and after a stall, garbage
 * bytes mid-stream. The test context and result helpers come from the unit tests' fake-server
 * header (its fake server simply stays idle here).
 */
#include "../unit/ami_fake_server.h"

#include "pbxsim.h"

#include <time.h>

typedef struct sim_ctx {
    tc t;
    pbxsim *sim;
    int port;
} sim_ctx;

static void sim_setup(sim_ctx *x)
{
    pbxsim_config cfg;
    tc_init(&x->t);
    pbxsim_config_default(&cfg);
    cfg.time_scale = 0.001; /* scenario delays 1000x faster */
    assert_int_equal(pbxsim_new(&x->t.loop, &cfg, &x->sim), 0);
    assert_int_equal(pbxsim_start(x->sim), 0);
    x->port = pbxsim_port(x->sim);
    assert_true(x->port > 0);
}

static ami_client_config sim_config(sim_ctx *x)
{
    ami_client_config cfg = tc_config(&x->t);
    cfg.port = x->port;
    return cfg;
}

static void sim_teardown(sim_ctx *x)
{
    if (x->t.c)
        ami_client_free(x->t.c);
    x->t.c = NULL;
    pbxsim_free(x->sim);
    tc_fini(&x->t);
}

static pbxsim_stats sim_stats(sim_ctx *x)
{
    pbxsim_stats st;
    pbxsim_get_stats(x->sim, &st);
    return st;
}

static void test_login_plain_and_md5(void **state)
{
    sim_ctx x;
    (void)state;
    sim_setup(&x);
    for (int md5 = 0; md5 < 2; md5++) {
        res r = {0};
        ami_client_config cfg = sim_config(&x);
        cfg.md5 = md5;
        x.t.ready = 0;
        tc_client(&x.t, &cfg);
        RUN_UNTIL(&x.t, x.t.ready == 1, 3000);
        assert_int_equal(x.t.ready, 1);
        assert_string_equal(ami_client_ami_version(x.t.c), "11.0.0");
        r.want = "Ping";
        assert_int_equal(tc_send(&x.t, "Ping", AMI_ACTION_SIMPLE, 0, &r, NULL, NULL), 0);
        RUN_UNTIL(&x.t, r.calls, 2000);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.status, 0);
        assert_string_equal(r.value, "Pong");
        ami_client_free(x.t.c);
        x.t.c = NULL;
        RUN_FOR(&x.t, 20);
    }
    pbxsim_stats st = sim_stats(&x);
    assert_int_equal(st.logins_ok, 2);
    assert_int_equal(st.logins_failed, 0);
    sim_teardown(&x);
}

static void test_bad_secret_backs_off(void **state)
{
    sim_ctx x;
    capture cp;
    (void)state;
    sim_setup(&x);
    ami_client_config cfg = sim_config(&x);
    cfg.secret = "Not-The-Secret-7";
    cfg.md5 = true;
    cfg.reconnect_min_ms = 50;
    cfg.reconnect_max_ms = 200;
    capture_begin(&cp);
    tc_client(&x.t, &cfg);
    RUN_FOR(&x.t, 800);
    char *log = capture_end(&cp);
    pbxsim_stats st = sim_stats(&x);
    ami_client_stats cs;
    ami_client_get_stats(x.t.c, &cs);
    print_message("sim saw %llu failed logins in 800 ms\n", (unsigned long long)st.logins_failed);
    assert_true(st.logins_failed >= 3);
    assert_true(st.logins_failed <= 9); /* back-off, not a tight loop */
    assert_true(cs.logins_failed >= st.logins_failed - 1 && cs.logins_failed <= st.logins_failed);
    assert_int_equal(x.t.auth_failed_reports, (int)cs.logins_failed);
    assert_int_equal(x.t.ready, 0);
    assert_int_equal(count_substr(log, "authentication failed"), 1);
    assert_null(strstr(log, "Not-The-Secret-7"));
    free(log);
    sim_teardown(&x);
}

static void test_permission_denied(void **state)
{
    sim_ctx x;
    res r = {0}, ok = {0};
    (void)state;
    sim_setup(&x);
    ami_client_config cfg = sim_config(&x);
    cfg.username = "limited";
    cfg.secret = "limited-secret";
    tc_client(&x.t, &cfg);
    RUN_UNTIL(&x.t, x.t.ready == 1, 3000);
    assert_int_equal(tc_send(&x.t, "CoreShowChannels", AMI_ACTION_LIST, 0, &r, NULL, NULL), 0);
    assert_int_equal(tc_send(&x.t, "Ping", AMI_ACTION_SIMPLE, 0, &ok, NULL, NULL), 0);
    RUN_UNTIL(&x.t, r.calls && ok.calls, 2000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, SB_EDENIED);
    assert_string_equal(r.response_msg, "Permission denied");
    assert_int_equal(r.nitems, 0);
    assert_int_equal(ok.status, 0);
    assert_true(sim_stats(&x).denied >= 1);
    sim_teardown(&x);
}

typedef struct listres {
    res r;
    long long list_items; /* ListItems of the Complete event */
} listres;

static void list_cb(ami_client *c, const ami_result *r, void *ud)
{
    listres *l = ud;
    res_cb(c, r, &l->r);
    l->list_items = -1;
    if (r->complete)
        sb_slice_to_ll(ami_packet_value(r->complete, "ListItems"), &l->list_items);
}

static void test_event_lists(void **state)
{
    sim_ctx x;
    const char *names[] = {"QueueStatus", "QueueSummary", "CoreShowChannels", "DeviceStateList",
                           "ExtensionStateList"};
    listres l[5];
    (void)state;
    memset(l, 0, sizeof l);
    sim_setup(&x);
    ami_client_config cfg = sim_config(&x);
    tc_client(&x.t, &cfg);
    RUN_UNTIL(&x.t, x.t.ready == 1, 3000);
    /* A call in progress makes CoreShowChannels non-empty. */
    res orig = {0};
    assert_int_equal(tc_send(&x.t, "Originate", AMI_ACTION_ORIGINATE, 0, &orig, NULL, "Channel",
                             "Local/600@from-internal", "Application", "Wait", "Data", "15",
                             "Async", "true", NULL),
                     0);
    RUN_UNTIL(&x.t, orig.calls, 3000);
    assert_int_equal(orig.status, 0);
    for (int i = 0; i < 5; i++) {
        ami_msg m;
        ami_msg_init(&m, "Action", names[i]);
        assert_int_equal(ami_client_send(x.t.c, &m, AMI_ACTION_LIST, 0, list_cb, &l[i], NULL, 0),
                         0);
    }
    RUN_UNTIL(&x.t, l[0].r.calls && l[1].r.calls && l[2].r.calls && l[3].r.calls && l[4].r.calls,
              3000);
    for (int i = 0; i < 5; i++) {
        print_message("%s: %zu items, complete %s\n", names[i], l[i].r.nitems,
                      l[i].r.complete_name);
        assert_int_equal(l[i].r.calls, 1);
        assert_int_equal(l[i].r.status, 0);
        assert_true(l[i].r.has_complete);
        assert_int_equal((long long)l[i].r.nitems, l[i].list_items);
    }
    assert_string_equal(l[0].r.complete_name, "QueueStatusComplete");
    assert_true(l[0].r.nitems > 0);
    assert_true(l[2].r.nitems > 0);
    assert_true(x.t.events > 0); /* the call's own events reached on_event */
    sim_teardown(&x);
}

static void test_originate_success_and_failures(void **state)
{
    sim_ctx x;
    res ok = {0}, busy = {0}, unreg = {0}, bogus = {0};
    (void)state;
    sim_setup(&x);
    ami_client_config cfg = sim_config(&x);
    tc_client(&x.t, &cfg);
    RUN_UNTIL(&x.t, x.t.ready == 1, 3000);
    assert_int_equal(tc_send(&x.t, "Originate", AMI_ACTION_ORIGINATE, 0, &ok, NULL, "Channel",
                             "Local/100@from-internal", "Application", "Wait", "Data", "1", "Async",
                             "true", NULL),
                     0);
    assert_int_equal(tc_send(&x.t, "Originate", AMI_ACTION_ORIGINATE, 0, &busy, NULL, "Channel",
                             "Local/999@from-internal", "Application", "Wait", "Data", "2", "Async",
                             "true", NULL),
                     0);
    assert_int_equal(tc_send(&x.t, "Originate", AMI_ACTION_ORIGINATE, 0, &unreg, NULL, "Channel",
                             "PJSIP/1003", "Context", "hello", "Exten", "s", "Priority", "1",
                             "Async", "true", NULL),
                     0);
    assert_int_equal(tc_send(&x.t, "Originate", AMI_ACTION_ORIGINATE, 0, &bogus, NULL, "Channel",
                             "Bogus/thing", "Application", "Wait", "Data", "1", NULL),
                     0);
    RUN_UNTIL(&x.t, ok.calls && busy.calls && unreg.calls && bogus.calls, 5000);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.status, 0);
    assert_string_equal(ok.complete_name, "OriginateResponse");
    assert_string_equal(ok.response_msg, "Originate successfully queued");
    assert_int_equal(busy.calls, 1);
    assert_int_equal(busy.status, SB_EFAILED);
    assert_string_equal(busy.complete_name, "OriginateResponse");
    assert_string_equal(busy.complete_reason, "5");
    assert_int_equal(unreg.calls, 1);
    assert_int_equal(unreg.status, SB_EFAILED);
    assert_string_equal(unreg.complete_name, "OriginateResponse");
    assert_int_equal(bogus.calls, 1);
    assert_int_equal(bogus.status, SB_EFAILED);
    assert_false(bogus.has_complete);
    assert_string_equal(bogus.response_msg, "Originate failed");
    sim_teardown(&x);
}

#define N_MIX 1000

static void test_thousand_concurrent_actions(void **state)
{
    static res r[N_MIX];
    static char ids[N_MIX][32];
    sim_ctx x;
    (void)state;
    memset(r, 0, sizeof r);
    sim_setup(&x);
    ami_client_config cfg = sim_config(&x);
    cfg.action_timeout_ms = 20000;
    tc_client(&x.t, &cfg);
    RUN_UNTIL(&x.t, x.t.ready == 1, 3000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* 700 Pings, 200 lists, 100 originates (half of them fail: busy) */
    for (int i = 0; i < N_MIX; i++) {
        int rc;
        if (i % 10 == 9) {
            rc = tc_send(&x.t, "Originate", AMI_ACTION_ORIGINATE, 0, &r[i], ids[i], "Channel",
                         i % 20 == 9 ? "Local/999@from-internal" : "Local/100@from-internal",
                         "Application", "Wait", "Data", "1", "Async", "true", NULL);
        } else if (i % 5 == 2) {
            rc = tc_send(&x.t, i % 10 == 2 ? "QueueStatus" : "CoreShowChannels", AMI_ACTION_LIST, 0,
                         &r[i], ids[i], NULL);
        } else {
            r[i].want = "Ping";
            rc = tc_send(&x.t, "Ping", AMI_ACTION_SIMPLE, 0, &r[i], ids[i], NULL);
        }
        assert_int_equal(rc, 0);
    }
    int done = 0;
    for (int round = 0; round < 2000 && done < N_MIX; round++) {
        RUN_FOR(&x.t, 5);
        done = 0;
        for (int i = 0; i < N_MIX; i++)
            done += r[i].calls > 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("%d concurrent actions against pbxsim completed in %.1f ms\n", done, ms);
    RUN_FOR(&x.t, 20);
    for (int i = 0; i < N_MIX; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_string_equal(r[i].response_id, ids[i]);
        if (i % 10 == 9) {
            assert_string_equal(r[i].complete_name, "OriginateResponse");
            assert_int_equal(r[i].status, i % 20 == 9 ? SB_EFAILED : 0);
        } else if (i % 5 == 2) {
            assert_int_equal(r[i].status, 0);
            assert_true(r[i].has_complete);
            assert_non_null(strstr(r[i].complete_name, "Complete"));
        } else {
            assert_int_equal(r[i].status, 0);
            assert_string_equal(r[i].value, "Pong");
        }
    }
    ami_client_stats st;
    ami_client_get_stats(x.t.c, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.actions_sent, N_MIX);
    assert_int_equal(st.actions_failed, N_MIX / 20);
    assert_int_equal(st.reconnects, 0);
    sim_teardown(&x);
}

static void test_reconnect_after_drop(void **state)
{
    sim_ctx x;
    res r[50];
    (void)state;
    memset(r, 0, sizeof r);
    sim_setup(&x);
    ami_client_config cfg = sim_config(&x);
    tc_client(&x.t, &cfg);
    RUN_UNTIL(&x.t, x.t.ready == 1, 3000);
    /* Written, not yet read by the simulator: the drop must fail them at once. */
    for (int i = 0; i < 50; i++)
        assert_int_equal(tc_send(&x.t, "Ping", AMI_ACTION_SIMPLE, 0, &r[i], NULL, NULL), 0);
    assert_int_equal(pbxsim_inject(x.sim, PBXSIM_FAULT_DROP, 0), 0);
    RUN_UNTIL(&x.t, x.t.ready == 2, 3000);
    assert_int_equal(x.t.ready, 2);
    assert_int_equal(x.t.ready_reconnected, 1);
    int disconn = 0;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(r[i].calls, 1);
        disconn += r[i].status == SB_EDISCONN;
    }
    assert_int_equal(disconn, 50);
    assert_int_equal(sim_stats(&x).sessions_accepted, 2);
    res ok = {0};
    assert_int_equal(tc_send(&x.t, "Ping", AMI_ACTION_SIMPLE, 0, &ok, NULL, NULL), 0);
    RUN_UNTIL(&x.t, ok.calls, 2000);
    assert_int_equal(ok.status, 0);
    sim_teardown(&x);
}

static void test_reconnect_after_stall(void **state)
{
    sim_ctx x;
    res r = {0};
    (void)state;
    sim_setup(&x);
    ami_client_config cfg = sim_config(&x);
    cfg.ping_interval_ms = 50;
    cfg.stall_timeout_ms = 200;
    tc_client(&x.t, &cfg);
    RUN_UNTIL(&x.t, x.t.ready == 1, 3000);
    RUN_FOR(&x.t, 300); /* keepalive holds a quiet connection */
    ami_client_stats st;
    ami_client_get_stats(x.t.c, &st);
    assert_int_equal(st.stalls, 0);
    assert_int_equal(pbxsim_inject(x.sim, PBXSIM_FAULT_STALL, 5000), 0);
    uv_update_time(&x.t.loop);
    uint64_t t0 = uv_now(&x.t.loop);
    assert_int_equal(tc_send(&x.t, "Ping", AMI_ACTION_SIMPLE, 0, &r, NULL, NULL), 0);
    RUN_UNTIL(&x.t, x.t.ready == 2, 3000);
    uint64_t took = uv_now(&x.t.loop) - t0;
    print_message("stalled simulator: reconnected after %llu ms\n", (unsigned long long)took);
    assert_int_equal(x.t.ready, 2);
    assert_int_equal(x.t.ready_reconnected, 1);
    assert_true(took < 1500);
    ami_client_get_stats(x.t.c, &st);
    assert_int_equal(st.stalls, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, SB_EDISCONN);
    sim_teardown(&x);
}

static void test_garbage_mid_stream(void **state)
{
    sim_ctx x;
    res r = {0};
    (void)state;
    sim_setup(&x);
    ami_client_config cfg = sim_config(&x);
    tc_client(&x.t, &cfg);
    RUN_UNTIL(&x.t, x.t.ready == 1, 3000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pbxsim_inject(x.sim, PBXSIM_FAULT_GARBAGE, 0), 0);
    assert_int_equal(pbxsim_play(x.sim, "internal-call", NULL), 0);
    r.want = "Ping";
    assert_int_equal(tc_send(&x.t, "Ping", AMI_ACTION_SIMPLE, 0, &r, NULL, NULL), 0);
    RUN_UNTIL(&x.t, r.calls && x.t.events > 0, 3000);
    RUN_FOR(&x.t, 100);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.value, "Pong");
    ami_client_stats st;
    ami_client_get_stats(x.t.c, &st);
    assert_true(st.codec.syntax >= 1);
    assert_true(x.t.events > 0);
    assert_int_equal(ami_client_get_state(x.t.c), AMI_STATE_READY);
    assert_int_equal(sim_stats(&x).sessions_accepted, 1);
    sim_teardown(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_plain_and_md5),
        cmocka_unit_test(test_bad_secret_backs_off),
        cmocka_unit_test(test_permission_denied),
        cmocka_unit_test(test_event_lists),
        cmocka_unit_test(test_originate_success_and_failures),
        cmocka_unit_test(test_thousand_concurrent_actions),
        cmocka_unit_test(test_reconnect_after_drop),
        cmocka_unit_test(test_reconnect_after_stall),
        cmocka_unit_test(test_garbage_mid_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
