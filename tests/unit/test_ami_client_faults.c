/* test_ami_client_faults.c: the AMI client when things go wrong.
 *
 * Bad secret (reported once, retried with back-off, never a tight loop), refused and silent
 * servers, timeouts, dropped connections (pending actions fail at once, the client reconnects
 * and says so), stalls, garbage and oversized packets mid-stream, stop, and callbacks that stop
 * or free the client under its own feet. Secrets never reach the log.
 */
#include "ami_fake_server.h"

static int log_level_count(const char *log, const char *level, const char *needle)
{
    int n = 0;
    char lv[16];
    snprintf(lv, sizeof lv, " %-5s ", level);
    for (const char *line = log; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[2048];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 1 ? len : sizeof buf - 1), line);
        if (strstr(buf, lv) && strstr(buf, needle))
            n++;
        line = nl ? nl + 1 : NULL;
    }
    return n;
}

/* Fixture 02: Response: Error / Authentication failed, then the server closes. */
static void test_bad_secret_reported_once_and_backs_off(void **state)
{
    tc t;
    capture cp;
    (void)state;
    tc_init(&t);
    fs_load_fixture(&t.srv, "02-login-bad-secret.ami");
    t.srv.raw = true;
    t.srv.on_action = fs_replay;
    t.srv.close_after_replay = true;
    ami_client_config cfg = tc_config(&t);
    cfg.secret = "wrong-Secret-XYZ";
    cfg.reconnect_min_ms = 50;
    cfg.reconnect_max_ms = 200;
    capture_begin(&cp);
    tc_client(&t, &cfg);
    RUN_FOR(&t, 800);
    char *log = capture_end(&cp);
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    print_message("accepts %d, logins_failed %llu, reports %d\n", t.srv.accepts,
                  (unsigned long long)st.logins_failed, t.auth_failed_reports);
    /* 0, ~50, +50..100, +100..200, +100..200 ...: a handful, never hundreds. */
    assert_true(t.srv.accepts >= 3);
    assert_true(t.srv.accepts <= 9);
    assert_true(st.logins_failed >= (uint64_t)t.srv.accepts - 1);
    assert_true(st.logins_failed <= (uint64_t)t.srv.accepts);
    /* One state report per failed attempt, one ERROR line for the whole streak. */
    assert_int_equal(t.auth_failed_reports, (int)st.logins_failed);
    assert_int_equal(log_level_count(log, "error", "authentication failed"), 1);
    assert_int_equal(count_substr(log, "connection closed"), 0);
    assert_null(strstr(log, "wrong-Secret-XYZ"));
    assert_int_equal(t.ready, 0);
    assert_int_not_equal(ami_client_get_state(t.c), AMI_STATE_READY);
    assert_true(st.reconnects >= 2);
    free(log);
    tc_fini(&t);
}

/* After a bad secret the client keeps trying; once the server accepts, the streak ends. */
static void test_login_succeeds_after_failures(void **state)
{
    tc t;
    (void)state;
    tc_init(&t);
    t.srv.secret = "right";
    ami_client_config cfg = tc_config(&t);
    cfg.secret = "right";
    cfg.reconnect_min_ms = 20;
    t.srv.secret = "other"; /* refuse for now */
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.srv.logins >= 2, 2000);
    assert_true(t.srv.logins >= 2);
    assert_int_equal(t.ready, 0);
    t.srv.secret = "right";
    RUN_UNTIL(&t, t.ready == 1, 2000);
    assert_int_equal(t.ready, 1);
    assert_int_equal(t.ready_reconnected, 0); /* first READY since start */
    tc_fini(&t);
}

static void test_connect_refused_retries_with_backoff(void **state)
{
    tc t;
    capture cp;
    (void)state;
    tc_init(&t);
    ami_client_config cfg = tc_config(&t);
    fs_stop(&t.srv); /* nothing listens on that port any more */
    RUN_FOR(&t, 10);
    cfg.reconnect_min_ms = 20;
    cfg.reconnect_max_ms = 80;
    capture_begin(&cp);
    tc_client(&t, &cfg);
    RUN_FOR(&t, 400);
    char *log = capture_end(&cp);
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_int_equal(ami_client_get_state(t.c), AMI_STATE_CONNECTING);
    assert_non_null(strstr(t.last_why, "refused"));
    assert_true(st.reconnects >= 3);
    assert_true(st.reconnects <= 20);
    assert_int_equal(log_level_count(log, "warn", "refused"), 1); /* repeats at debug */
    assert_int_equal(t.ready, 0);
    free(log);
    tc_fini(&t);
}

/* A server that accepts and never sends the banner: the connect deadline ends the attempt. */
static void test_silent_server_times_out(void **state)
{
    tc t;
    (void)state;
    tc_init(&t);
    t.srv.no_banner = true;
    ami_client_config cfg = tc_config(&t);
    cfg.connect_timeout_ms = 100;
    cfg.reconnect_min_ms = 500;
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, strstr(t.last_why, "timed out") != NULL, 1000);
    assert_non_null(strstr(t.last_why, "connect timed out"));
    assert_int_equal(t.srv.accepts, 1);
    assert_int_equal(t.ready, 0);
    tc_fini(&t);
}

/* ---- timeouts ---------------------------------------------------------------------------- */

static int seq_counter;
typedef struct ordered {
    res r;
    int order;
} ordered;

static void ordered_cb(ami_client *c, const ami_result *r, void *ud)
{
    ordered *o = ud;
    res_cb(c, r, &o->r);
    o->order = ++seq_counter;
}

static void ignore_action(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    (void)s, (void)fc, (void)a, (void)idx;
}

static void test_timeouts_fire_once_in_deadline_order(void **state)
{
    tc t;
    ordered o[3];
    uint32_t to[3] = {300, 100, 200};
    char ids[3][32];
    (void)state;
    memset(o, 0, sizeof o);
    seq_counter = 0;
    tc_init(&t);
    t.srv.on_action = ignore_action;
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    uv_update_time(&t.loop);
    uint64_t t0 = uv_now(&t.loop);
    for (int i = 0; i < 3; i++) {
        ami_msg m;
        ami_msg_init(&m, "Action", "Slow");
        assert_int_equal(ami_client_send(t.c, &m, AMI_ACTION_SIMPLE, to[i], ordered_cb, &o[i],
                                         ids[i], sizeof ids[i]),
                         0);
    }
    RUN_UNTIL(&t, o[0].r.calls && o[1].r.calls && o[2].r.calls, 2000);
    uint64_t elapsed = uv_now(&t.loop) - t0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o[i].r.calls, 1);
        assert_int_equal(o[i].r.status, SB_ETIMEDOUT);
        assert_false(o[i].r.has_response);
    }
    assert_int_equal(o[1].order, 1);
    assert_int_equal(o[2].order, 2);
    assert_int_equal(o[0].order, 3);
    assert_true(elapsed >= 300 && elapsed < 1000);
    /* The late answer is ignored: nothing runs twice. */
    fs_conn *fc = fs_current(&t.srv);
    assert_non_null(fc);
    fs_sendf(fc, "Response: Success\r\nActionID: %s\r\n\r\n", ids[0]);
    RUN_FOR(&t, 50);
    assert_int_equal(o[0].r.calls, 1);
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.actions_failed, 3);
    assert_int_equal(t.srv.accepts, 1);
    tc_fini(&t);
}

/* ---- dropped connections ----------------------------------------------------------------- */

static int sends_in_cb_rc = 1;
static void send_from_cb(ami_client *c, const ami_result *r, void *ud)
{
    ami_msg m;
    res_cb(c, r, ud);
    ami_msg_init(&m, "Action", "Ping");
    sends_in_cb_rc = ami_client_send(c, &m, AMI_ACTION_SIMPLE, 0, res_cb, ud, NULL, 0);
}

static void test_disconnect_fails_pending_fast_and_reconnects(void **state)
{
    tc t;
    res r[20];
    (void)state;
    memset(r, 0, sizeof r);
    tc_init(&t);
    t.srv.on_action = ignore_action;
    ami_client_config cfg = tc_config(&t);
    cfg.action_timeout_ms = 5000;
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    for (int i = 0; i < 20; i++) {
        ami_msg m;
        ami_msg_init(&m, "Action", "Hold");
        assert_int_equal(ami_client_send(t.c, &m, i % 2 ? AMI_ACTION_LIST : AMI_ACTION_SIMPLE, 0,
                                         i == 0 ? send_from_cb : res_cb, &r[i], NULL, 0),
                         0);
    }
    RUN_UNTIL(&t, t.srv.ngot >= 21, 1000);
    uv_update_time(&t.loop);
    uint64_t t0 = uv_now(&t.loop);
    fs_drop_all(&t.srv);
    bool all = false;
    while (!all && uv_now(&t.loop) - t0 < 1000) {
        RUN_FOR(&t, 5);
        all = true;
        for (int i = 0; i < 20; i++)
            all = all && r[i].calls;
    }
    uint64_t took = uv_now(&t.loop) - t0;
    print_message("20 pending actions failed %llu ms after the drop\n", (unsigned long long)took);
    assert_true(took < 500);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, SB_EDISCONN);
    }
    /* A send from inside the failure callback is refused, and its callback never runs. */
    assert_int_equal(sends_in_cb_rc, SB_EDISCONN);
    assert_int_not_equal(ami_client_get_state(t.c), AMI_STATE_READY);
    res late = {0};
    assert_int_equal(tc_send(&t, "Ping", AMI_ACTION_SIMPLE, 0, &late, NULL, NULL), SB_EDISCONN);
    RUN_UNTIL(&t, t.ready == 2, 2000);
    assert_int_equal(t.ready, 2);
    assert_int_equal(t.ready_reconnected, 1);
    assert_int_equal(t.srv.accepts, 2);
    assert_int_equal(late.calls, 0);
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_int_equal(st.reconnects, 1);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.actions_failed, 20);
    /* The new session works. */
    t.srv.on_action = NULL;
    res ok = {0};
    assert_int_equal(tc_send(&t, "Ping", AMI_ACTION_SIMPLE, 0, &ok, NULL, NULL), 0);
    RUN_UNTIL(&t, ok.calls, 1000);
    assert_int_equal(ok.status, 0);
    tc_fini(&t);
}

static void test_stall_detected_and_reconnects(void **state)
{
    tc t;
    res r = {0};
    (void)state;
    tc_init(&t);
    t.srv.ignore_ping = true;
    t.srv.on_action = ignore_action;
    ami_client_config cfg = tc_config(&t);
    cfg.ping_interval_ms = 40;
    cfg.stall_timeout_ms = 150;
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    uv_update_time(&t.loop);
    uint64_t t0 = uv_now(&t.loop);
    assert_int_equal(tc_send(&t, "Hold", AMI_ACTION_SIMPLE, 0, &r, NULL, NULL), 0);
    RUN_UNTIL(&t, r.calls, 2000);
    uint64_t took = uv_now(&t.loop) - t0;
    print_message("stall detected after %llu ms (stall_timeout 150)\n", (unsigned long long)took);
    assert_int_equal(r.status, SB_EDISCONN);
    assert_true(took >= 140 && took < 400);
    assert_true(t.srv.pings >= 2); /* keepalive tried first */
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_int_equal(st.stalls, 1);
    assert_non_null(strstr(t.last_why, "stalled"));
    RUN_UNTIL(&t, t.ready == 2, 2000);
    assert_int_equal(t.ready_reconnected, 1);
    assert_int_equal(t.srv.accepts, 2);
    tc_fini(&t);
}

static void test_keepalive_keeps_a_quiet_connection(void **state)
{
    tc t;
    (void)state;
    tc_init(&t);
    ami_client_config cfg = tc_config(&t);
    cfg.ping_interval_ms = 30;
    cfg.stall_timeout_ms = 100;
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    RUN_FOR(&t, 400);
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_true(t.srv.pings >= 5);
    assert_true(t.srv.pings <= 20);
    assert_int_equal(st.stalls, 0);
    assert_int_equal(t.srv.accepts, 1);
    assert_int_equal(t.ready, 1);
    assert_int_equal(st.actions_sent, 0); /* keepalive is not a user action */
    tc_fini(&t);
}

/* ---- garbage ----------------------------------------------------------------------------- */

static void junk_action(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    (void)s, (void)idx;
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fs_sendf(fc, "this is not AMI\r\n\x01\x02\xff garbage\r\n\r\n");
    fs_sendf(fc, "Event: Good1\r\nPrivilege: call,all\r\n\r\n");
    fs_sendf(fc, "Event: Big\r\nData: %s\r\nMore: %s\r\n\r\n", big, big);
    fs_sendf(fc, "Event: Good2\r\nPrivilege: call,all\r\n\r\n");
    fs_respond(fc, a, "Success", "Message: survived\r\n");
}

static void test_garbage_and_oversized_packets_mid_stream(void **state)
{
    tc t;
    capture cp;
    res r[5];
    (void)state;
    memset(r, 0, sizeof r);
    tc_init(&t);
    t.srv.on_action = junk_action;
    ami_client_config cfg = tc_config(&t);
    cfg.limits.max_packet = 4096;
    cfg.limits.max_line = 2048;
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    capture_begin(&cp);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tc_send(&t, "Junk", AMI_ACTION_SIMPLE, 0, &r[i], NULL, NULL), 0);
    RUN_UNTIL(&t, r[4].calls, 2000);
    char *log = capture_end(&cp);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
        assert_string_equal(r[i].response_msg, "survived");
    }
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_int_equal(t.events, 10); /* Good1 and Good2, five times; Big dropped */
    assert_string_equal(t.last_event, "Good2");
    assert_true(st.codec.syntax >= 5);
    assert_true(st.codec.too_big >= 5);
    assert_int_equal(t.srv.accepts, 1);
    assert_int_equal(ami_client_get_state(t.c), AMI_STATE_READY);
    /* Ten or more errors in well under a second: logged once. */
    assert_int_equal(count_substr(log, "bad AMI input"), 1);
    free(log);
    tc_fini(&t);
}

/* ---- stop, and callbacks that stop or free ------------------------------------------------ */

static void test_stop_cancels_pending_once(void **state)
{
    tc t;
    res r[5];
    (void)state;
    memset(r, 0, sizeof r);
    tc_init(&t);
    t.srv.on_action = ignore_action;
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            tc_send(&t, "Hold", AMI_ACTION_ORIGINATE, 0, &r[i], NULL, "Async", "true", NULL), 0);
    RUN_UNTIL(&t, t.srv.ngot >= 6, 1000);
    ami_client_stop(t.c);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].calls, 1); /* synchronously, from stop */
        assert_int_equal(r[i].status, SB_ECANCELED);
    }
    assert_int_equal(ami_client_get_state(t.c), AMI_STATE_STOPPED);
    assert_string_equal(t.last_why, "stopped");
    RUN_FOR(&t, 150);
    assert_int_equal(t.srv.accepts, 1); /* no reconnect after stop */
    for (int i = 0; i < 5; i++)
        assert_int_equal(r[i].calls, 1);
    /* Start again: a fresh session, not a "reconnect". */
    assert_int_equal(ami_client_start(t.c), 0);
    RUN_UNTIL(&t, t.ready == 2, 2000);
    assert_int_equal(t.ready_reconnected, 0);
    assert_int_equal(t.srv.accepts, 2);
    tc_fini(&t);
}

static void answer_three(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    (void)s, (void)a;
    if (idx < 4) /* Login is 1; wait for the three actions, then answer all in one write */
        return;
    fs_sendf(fc,
             "Response: Success\r\nActionID: %s\r\n\r\nResponse: Success\r\nActionID: %s\r\n\r\n"
             "Event: After\r\n\r\nResponse: Success\r\nActionID: %s\r\n\r\n",
             fc->ids[1], fc->ids[2], fc->ids[3]);
}

static void stop_in_cb(ami_client *c, const ami_result *r, void *ud)
{
    res_cb(c, r, ud);
    ami_client_stop(c);
}

static void test_callback_stops_client_mid_read(void **state)
{
    tc t;
    res r[3];
    (void)state;
    memset(r, 0, sizeof r);
    tc_init(&t);
    t.srv.on_action = answer_three;
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    ami_msg m;
    ami_msg_init(&m, "Action", "A");
    assert_int_equal(ami_client_send(t.c, &m, AMI_ACTION_SIMPLE, 0, stop_in_cb, &r[0], NULL, 0), 0);
    assert_int_equal(tc_send(&t, "B", AMI_ACTION_SIMPLE, 0, &r[1], NULL, NULL), 0);
    assert_int_equal(tc_send(&t, "C", AMI_ACTION_SIMPLE, 0, &r[2], NULL, NULL), 0);
    RUN_UNTIL(&t, r[0].calls && r[1].calls && r[2].calls, 2000);
    RUN_FOR(&t, 50);
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].status, 0);
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[1].status, SB_ECANCELED); /* its answer came after the stop */
    assert_int_equal(r[2].calls, 1);
    assert_int_equal(r[2].status, SB_ECANCELED);
    assert_int_equal(t.events, 0); /* nothing dispatched after stop */
    assert_int_equal(ami_client_get_state(t.c), AMI_STATE_STOPPED);
    tc_fini(&t);
}

static void free_on_event(tc *t, const ami_packet *ev)
{
    (void)ev;
    ami_client_free(t->c);
    t->c = NULL;
}

static void events_then_more(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    (void)s, (void)idx;
    fs_sendf(fc, "Event: First\r\n\r\nEvent: Second\r\n\r\n");
    fs_respond(fc, a, "Success", "");
}

static void test_free_from_event_callback(void **state)
{
    tc t;
    res r = {0};
    (void)state;
    tc_init(&t);
    t.srv.on_action = events_then_more;
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    t.on_event_hook = free_on_event;
    assert_int_equal(tc_send(&t, "Go", AMI_ACTION_SIMPLE, 0, &r, NULL, NULL), 0);
    RUN_UNTIL(&t, t.c == NULL, 2000);
    RUN_FOR(&t, 30);
    assert_null(t.c);
    assert_int_equal(t.events, 1); /* Second never dispatched */
    assert_int_equal(r.calls, 1);  /* cancelled by the free, exactly once */
    assert_int_equal(r.status, SB_ECANCELED);
    tc_fini(&t); /* proves every handle closed and the memory went (ASan) */
}

/* ---- secrets ----------------------------------------------------------------------------- */

static void test_secrets_never_logged(void **state)
{
    capture cp;
    (void)state;
    sb_log_setup(SB_LOG_DEBUG, 0);
    capture_begin(&cp);
    for (int mode = 0; mode < 3; mode++) {
        tc t;
        char key[33];
        tc_init(&t);
        t.srv.secret = mode == 2 ? "not-it" : "Top-Secret-42";
        ami_client_config cfg = tc_config(&t);
        cfg.secret = "Top-Secret-42";
        cfg.md5 = mode != 0;
        tc_client(&t, &cfg);
        if (mode == 2)
            RUN_UNTIL(&t, t.srv.logins >= 2, 2000);
        else
            RUN_UNTIL(&t, t.ready == 1, 2000);
        fs_md5_hex("120265474", "Top-Secret-42", key);
        tc_fini(&t);
        fflush(stderr);
        char *log = tu_read_file(cp.path, NULL);
        assert_non_null(log);
        assert_null(strstr(log, "Top-Secret-42"));
        assert_null(strstr(log, key));
        assert_null(strstr(log, "Secret:"));
        free(log);
    }
    char *log = capture_end(&cp);
    sb_log_setup(SB_LOG_INFO, 0);
    assert_non_null(strstr(log, "logged in")); /* the capture did see the client's lines */
    assert_null(strstr(log, "Top-Secret-42"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_secret_reported_once_and_backs_off),
        cmocka_unit_test(test_login_succeeds_after_failures),
        cmocka_unit_test(test_connect_refused_retries_with_backoff),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_timeouts_fire_once_in_deadline_order),
        cmocka_unit_test(test_disconnect_fails_pending_fast_and_reconnects),
        cmocka_unit_test(test_stall_detected_and_reconnects),
        cmocka_unit_test(test_keepalive_keeps_a_quiet_connection),
        cmocka_unit_test(test_garbage_and_oversized_packets_mid_stream),
        cmocka_unit_test(test_stop_cancels_pending_once),
        cmocka_unit_test(test_callback_stops_client_mid_read),
        cmocka_unit_test(test_free_from_event_callback),
        cmocka_unit_test(test_secrets_never_logged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
