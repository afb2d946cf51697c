/* test_ami_client_actions.c: ActionID correlation under pressure.
 *
 * Lists whose items interleave with each other and with unrelated events (EventList spelled in
 * any case, cancelled lists, failed lists), an OriginateResponse that overtakes its Response,
 * 1,000 actions of every kind in flight answered in random order, two clients on one loop,
 * send errors that must never call back, Filter setup before READY, host name resolution and a
 * rebranded banner.
 */
#include "ami_fake_server.h"

#include "ami/internal.h" /* AMI_LIST_MAX_ITEMS */

#include <time.h>

/* ---- interleaved lists ------------------------------------------------------------------- */

static void lists_action(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    (void)s, (void)a;
    if (idx < 6) /* Login, then five list actions A..E: answer once all have arrived */
        return;
    const char *A = fc->ids[1], *B = fc->ids[2], *C = fc->ids[3], *D = fc->ids[4], *E = fc->ids[5];
    fs_sendf(fc,
             "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/1001-1\r\n\r\n"
             "Response: Success\r\nActionID: %s\r\nEventList: start\r\nMessage: Queue status "
             "will follow\r\n\r\n"
             "Event: QueueParams\r\nQueue: sales\r\nActionID: %s\r\n\r\n"
             "Response: Success\r\nActionID: %s\r\nEventlist: Start\r\nMessage: Channels will "
             "follow\r\n\r\n"
             "Response: Error\r\nActionID: %s\r\nMessage: Permission denied\r\n\r\n"
             "Event: CoreShowChannel\r\nActionID: %s\r\nChannel: PJSIP/1001-1\r\n\r\n"
             "Event: Hangup\r\nActionID: sb-someone-else-99\r\nChannel: X\r\n\r\n",
             A, A, B, D, B);
    fs_sendf(fc,
             "Response: Success\r\nActionID: %s\r\nEventList: start\r\n\r\n"
             "Event: QueueMember\r\nQueue: sales\r\nActionID: %s\r\n\r\n"
             "Event: DeviceStateChange\r\nActionID: %s\r\nDevice: PJSIP/1001\r\n\r\n"
             "Event: CoreShowChannelsComplete\r\nActionID: %s\r\nEVENTLIST: complete\r\n"
             "ListItems: 1\r\n\r\n"
             "Event: VarSet\r\nVariable: X\r\nValue: 1\r\n\r\n"
             "Response: Error\r\nActionID: %s\r\nMessage: No such queue\r\n\r\n"
             "Event: DeviceStateListComplete\r\nActionID: %s\r\nEventList: cancelled\r\n\r\n"
             "Event: QueueStatusComplete\r\nActionID: %s\r\nEventList: Complete\r\n"
             "ListItems: 2\r\n\r\n",
             C, A, C, B, E, C, A);
}

static void test_lists_interleaved_with_each_other_and_events(void **state)
{
    tc t;
    res r[5];
    const char *names[5] = {"QueueStatus", "CoreShowChannels", "DeviceStateList", "Status",
                            "QueueSummary"};
    (void)state;
    memset(r, 0, sizeof r);
    tc_init(&t);
    t.srv.on_action = lists_action;
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tc_send(&t, names[i], AMI_ACTION_LIST, 0, &r[i], NULL, NULL), 0);
    RUN_UNTIL(&t, r[0].calls && r[1].calls && r[2].calls && r[3].calls && r[4].calls, 2000);
    RUN_FOR(&t, 20);
    /* A: two items around everything else, then Complete. */
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].status, 0);
    assert_int_equal(r[0].nitems, 2);
    assert_string_equal(r[0].first_item, "QueueParams");
    assert_string_equal(r[0].complete_name, "QueueStatusComplete");
    assert_string_equal(r[0].response_msg, "Queue status will follow");
    /* B: "Eventlist: Start" and "EVENTLIST: complete" (any case). */
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[1].status, 0);
    assert_int_equal(r[1].nitems, 1);
    assert_string_equal(r[1].complete_name, "CoreShowChannelsComplete");
    /* C: cancelled list. */
    assert_int_equal(r[2].calls, 1);
    assert_int_equal(r[2].status, SB_EFAILED);
    assert_int_equal(r[2].nitems, 1);
    assert_string_equal(r[2].complete_name, "DeviceStateListComplete");
    /* D: permission denied; E: error. */
    assert_int_equal(r[3].calls, 1);
    assert_int_equal(r[3].status, SB_EDENIED);
    assert_int_equal(r[3].nitems, 0);
    assert_false(r[3].has_complete);
    assert_int_equal(r[4].calls, 1);
    assert_int_equal(r[4].status, SB_EFAILED);
    assert_string_equal(r[4].response_msg, "No such queue");
    /* Newchannel, the Hangup with a stranger's ActionID, VarSet. */
    assert_int_equal(t.events, 3);
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.events, 3 + 7);
    tc_fini(&t);
}

/* ---- originate --------------------------------------------------------------------------- */

static void originate_action(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    (void)s, (void)idx;
    sb_slice id = ami_packet_value(a, "ActionID");
    sb_slice ch = ami_packet_value(a, "Channel");
    if (sb_slice_eq_ci(ch, "Local/early@x")) {
        /* The result overtakes the acknowledgement. */
        fs_sendf(fc,
                 "Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: %.*s\r\n"
                 "Response: Success\r\nReason: 4\r\n\r\n",
                 (int)id.len, id.ptr);
        fs_respond(fc, a, "Success", "Message: Originate successfully queued\r\n");
    } else if (sb_slice_eq_ci(ch, "Bogus/thing")) {
        fs_respond(fc, a, "Error", "Message: Originate failed\r\n");
    } else {
        fs_respond(fc, a, "Success", "Message: Originate successfully queued\r\n");
        fs_sendf(fc,
                 "Event: Newchannel\r\nChannel: %.*s\r\n\r\n"
                 "Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: %.*s\r\n"
                 "Response: Success\r\nChannel: %.*s\r\nReason: 4\r\nUniqueid: 1.1\r\n\r\n",
                 (int)ch.len, ch.ptr, (int)id.len, id.ptr, (int)ch.len, ch.ptr);
    }
}

static void test_originate_success_failure_and_early_result(void **state)
{
    tc t;
    res r[3];
    (void)state;
    memset(r, 0, sizeof r);
    tc_init(&t);
    t.srv.on_action = originate_action;
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    assert_int_equal(tc_send(&t, "Originate", AMI_ACTION_ORIGINATE, 0, &r[0], NULL, "Channel",
                             "Local/100@from-internal", "Async", "true", NULL),
                     0);
    assert_int_equal(tc_send(&t, "Originate", AMI_ACTION_ORIGINATE, 0, &r[1], NULL, "Channel",
                             "Bogus/thing", "Async", "true", NULL),
                     0);
    assert_int_equal(tc_send(&t, "Originate", AMI_ACTION_ORIGINATE, 0, &r[2], NULL, "Channel",
                             "Local/early@x", "Async", "yes", NULL),
                     0);
    RUN_UNTIL(&t, r[0].calls && r[1].calls && r[2].calls, 2000);
    RUN_FOR(&t, 30);
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].status, 0);
    assert_true(r[0].has_response);
    assert_string_equal(r[0].complete_name, "OriginateResponse");
    assert_string_equal(r[0].complete_reason, "4");
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[1].status, SB_EFAILED);
    assert_false(r[1].has_complete);
    assert_string_equal(r[1].response_msg, "Originate failed");
    assert_int_equal(r[2].calls, 1); /* completed on the event; the late Response is ignored */
    assert_int_equal(r[2].status, 0);
    assert_string_equal(r[2].complete_name, "OriginateResponse");
    assert_int_equal(t.events, 1); /* only the Newchannel; OriginateResponses went to callers */
    tc_fini(&t);
}

/* ---- 1,000 in flight --------------------------------------------------------------------- */

#define N_FLIGHT 1000

typedef struct flight {
    const ami_packet *acts[N_FLIGHT];
    int n;
} flight;

static int kind_of(int seq)
{
    return seq % 3; /* 0 SIMPLE, 1 LIST, 2 ORIGINATE */
}

static void shuffle(int *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(tu_rand() % (uint32_t)(i + 1));
        int x = v[i];
        v[i] = v[j];
        v[j] = x;
    }
}

static void flight_action(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    flight *f = s->ud;
    (void)a;
    (void)idx;
    f->acts[f->n++] = s->got[s->ngot - 1];
    if (f->n < N_FLIGHT)
        return;
    int order[N_FLIGHT];
    sb_buf b;
    sb_buf_init(&b, 64u << 20);
    for (int i = 0; i < N_FLIGHT; i++)
        order[i] = i;
    /* Pass 1, random order: every Response, plus the first list item; unrelated events. */
    shuffle(order, N_FLIGHT);
    for (int i = 0; i < N_FLIGHT; i++) {
        const ami_packet *p = f->acts[order[i]];
        sb_slice id = ami_packet_value(p, "ActionID");
        sb_slice seq = ami_packet_value(p, "Seq");
        long long n = 0;
        sb_slice_to_ll(seq, &n);
        bool fail = n % 7 == 0;
        int k = kind_of((int)n);
        sb_buf_printf(&b, "Response: %s\r\nActionID: %.*s\r\nEcho: %lld\r\n%s%s\r\n",
                      fail ? "Error" : "Success", (int)id.len, id.ptr, n,
                      k == 1 && !fail ? "EventList: start\r\n" : "",
                      k == 2 && !fail ? "Message: Originate successfully queued\r\n" : "");
        if (k == 1 && !fail)
            sb_buf_printf(&b, "Event: Item\r\nActionID: %.*s\r\nN: 1\r\n\r\n", (int)id.len, id.ptr);
        if (i % 10 == 0)
            sb_buf_printf(&b, "Event: Newstate\r\nChannel: PJSIP/%d\r\n\r\n", i);
    }
    /* Pass 2, another order: second items, Complete events, OriginateResponses. */
    shuffle(order, N_FLIGHT);
    for (int i = 0; i < N_FLIGHT; i++) {
        const ami_packet *p = f->acts[order[i]];
        sb_slice id = ami_packet_value(p, "ActionID");
        long long n = 0;
        sb_slice_to_ll(ami_packet_value(p, "Seq"), &n);
        if (n % 7 == 0)
            continue;
        if (kind_of((int)n) == 1)
            sb_buf_printf(&b,
                          "Event: Item\r\nActionID: %.*s\r\nN: 2\r\n\r\n"
                          "Event: ItemsComplete\r\nActionID: %.*s\r\nEventList: Complete\r\n"
                          "ListItems: 2\r\n\r\n",
                          (int)id.len, id.ptr, (int)id.len, id.ptr);
        else if (kind_of((int)n) == 2)
            sb_buf_printf(&b,
                          "Event: OriginateResponse\r\nActionID: %.*s\r\nResponse: %s\r\n"
                          "Reason: %s\r\n\r\n",
                          (int)id.len, id.ptr, n % 5 == 0 ? "Failure" : "Success",
                          n % 5 == 0 ? "5" : "4");
    }
    /* Arbitrary chunking: the client must not care where reads split. */
    for (size_t off = 0; off < b.len;) {
        size_t chunk = 1 + tu_rand() % 3000;
        if (chunk > b.len - off)
            chunk = b.len - off;
        fs_send(fc, b.data + off, chunk);
        off += chunk;
    }
    sb_buf_free(&b);
}

static void test_thousand_actions_in_flight(void **state)
{
    static res r[N_FLIGHT];
    static char ids[N_FLIGHT][32];
    static flight f;
    tc t;
    (void)state;
    memset(r, 0, sizeof r);
    memset(&f, 0, sizeof f);
    tu_seed(20261125);
    tc_init(&t);
    t.srv.on_action = flight_action;
    t.srv.ud = &f;
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N_FLIGHT; i++) {
        char seq[16];
        snprintf(seq, sizeof seq, "%d", i);
        r[i].want = "Echo";
        int k = kind_of(i);
        assert_int_equal(tc_send(&t,
                                 k == 2   ? "Originate"
                                 : k == 1 ? "QueueStatus"
                                          : "CoreStatus",
                                 k == 2   ? AMI_ACTION_ORIGINATE
                                 : k == 1 ? AMI_ACTION_LIST
                                          : AMI_ACTION_SIMPLE,
                                 0, &r[i], ids[i], "Seq", seq, "Async", "true", NULL),
                         0);
    }
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_int_equal(st.pending, N_FLIGHT);
    int done = 0;
    for (int round = 0; round < 1000 && done < N_FLIGHT; round++) {
        RUN_FOR(&t, 5);
        done = 0;
        for (int i = 0; i < N_FLIGHT; i++)
            done += r[i].calls > 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("%d actions (simple, list, originate) completed in %.1f ms (server saw %d)\n",
                  N_FLIGHT, ms, f.n);
    RUN_FOR(&t, 20);
    int failures = 0;
    for (int i = 0; i < N_FLIGHT; i++) {
        char want[16];
        bool fail = i % 7 == 0;
        int k = kind_of(i);
        snprintf(want, sizeof want, "%d", i);
        assert_int_equal(r[i].calls, 1);
        assert_string_equal(r[i].value, want); /* its own response, not a neighbour's */
        assert_string_equal(r[i].response_id, ids[i]);
        int status = fail ? SB_EFAILED : (k == 2 && i % 5 == 0) ? SB_EFAILED : 0;
        assert_int_equal(r[i].status, status);
        failures += status != 0;
        if (k == 1 && !fail) {
            assert_int_equal(r[i].nitems, 2);
            assert_string_equal(r[i].complete_name, "ItemsComplete");
        } else if (k == 2 && !fail) {
            assert_string_equal(r[i].complete_name, "OriginateResponse");
        } else {
            assert_int_equal(r[i].nitems, 0);
        }
    }
    ami_client_get_stats(t.c, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.actions_sent, N_FLIGHT);
    assert_int_equal(st.actions_failed, failures);
    assert_int_equal(t.events, N_FLIGHT / 10);
    assert_int_equal(t.srv.accepts, 1);
    tc_fini(&t);
}

/* ---- two clients on one loop ------------------------------------------------------------- */

static void emit_named(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    (void)idx;
    fs_sendf(fc, "Event: From\r\nServer: %s\r\n\r\n", (const char *)s->ud);
    fs_respond(fc, a, "Success", "");
}

typedef struct tagged {
    int events;
    char last_name[32];
    char last_server[32];
} tagged;

static void on_tagged(ami_client *c, const ami_packet *ev, void *ud)
{
    tagged *x = ud;
    x->events++;
    snprintf(x->last_name, sizeof x->last_name, "%s", ami_client_name(c));
    sb_slice_copy(ami_packet_value(ev, "Server"), x->last_server, sizeof x->last_server);
}

static void test_two_clients_on_one_loop(void **state)
{
    tc t;
    fake_srv s2;
    tagged e1 = {0}, e2 = {0};
    ami_client *c2 = NULL;
    res r1 = {0}, r2 = {0};
    char id1[32], id2[32];
    (void)state;
    tc_init(&t);
    memset(&s2, 0, sizeof s2);
    fs_start(&s2, &t.loop);
    t.srv.on_action = emit_named;
    t.srv.ud = "one";
    s2.on_action = emit_named;
    s2.ud = "two";
    ami_client_config cfg1 = tc_config(&t);
    ami_client_config cfg2 = tc_config(&t);
    cfg2.name = "pbx2";
    cfg2.port = s2.port;
    ami_client_callbacks cb1 = {on_tagged, tc_on_state, tc_on_ready, &t};
    ami_client_callbacks cb2 = {on_tagged, NULL, NULL, &e2};
    cb1.on_event = on_tagged;
    cb1.ud = &e1;
    cb1.on_ready = NULL;
    cb1.on_state = NULL;
    assert_int_equal(ami_client_new(&t.loop, &cfg1, &cb1, &t.c), 0);
    assert_int_equal(ami_client_new(&t.loop, &cfg2, &cb2, &c2), 0);
    assert_int_equal(ami_client_start(t.c), 0);
    assert_int_equal(ami_client_start(c2), 0);
    RUN_UNTIL(&t,
              ami_client_get_state(t.c) == AMI_STATE_READY &&
                  ami_client_get_state(c2) == AMI_STATE_READY,
              2000);
    ami_msg m;
    ami_msg_init(&m, "Action", "Go");
    assert_int_equal(ami_client_send(t.c, &m, AMI_ACTION_SIMPLE, 0, res_cb, &r1, id1, 32), 0);
    ami_msg_init(&m, "Action", "Go");
    assert_int_equal(ami_client_send(c2, &m, AMI_ACTION_SIMPLE, 0, res_cb, &r2, id2, 32), 0);
    RUN_UNTIL(&t, r1.calls && r2.calls, 2000);
    assert_int_equal(r1.status, 0);
    assert_int_equal(r2.status, 0);
    assert_int_equal(strncmp(id1, "sb-pbx1-", 8), 0);
    assert_int_equal(strncmp(id2, "sb-pbx2-", 8), 0);
    assert_int_equal(e1.events, 1);
    assert_string_equal(e1.last_name, "pbx1");
    assert_string_equal(e1.last_server, "one");
    assert_int_equal(e2.events, 1);
    assert_string_equal(e2.last_name, "pbx2");
    assert_string_equal(e2.last_server, "two");
    /* Dropping one server's connection leaves the other client alone. */
    fs_drop_all(&t.srv);
    RUN_FOR(&t, 20);
    assert_int_equal(ami_client_get_state(c2), AMI_STATE_READY);
    RUN_UNTIL(&t, t.srv.accepts == 2 && ami_client_get_state(t.c) == AMI_STATE_READY, 2000);
    assert_int_equal(ami_client_get_state(t.c), AMI_STATE_READY);
    assert_int_equal(s2.accepts, 1);
    ami_client_stats st1, st2;
    ami_client_get_stats(t.c, &st1);
    ami_client_get_stats(c2, &st2);
    assert_int_equal(st1.reconnects, 1);
    assert_int_equal(st2.reconnects, 0);
    ami_client_free(c2);
    fs_stop(&s2);
    tc_fini(&t);
    assert_int_equal(s2.handles, 0);
    fs_free(&s2);
}

/* ---- refusals that never call back ------------------------------------------------------- */

static void test_send_errors_never_call_back(void **state)
{
    tc t;
    res r = {0};
    (void)state;
    tc_init(&t);
    ami_client_config cfg = tc_config(&t);
    ami_client_callbacks cbs = {tc_on_event, tc_on_state, tc_on_ready, &t};
    assert_int_equal(ami_client_new(&t.loop, &cfg, &cbs, &t.c), 0);
    assert_int_equal(ami_client_get_state(t.c), AMI_STATE_STOPPED);
    assert_string_equal(ami_client_ami_version(t.c), "");
    /* Not started. */
    assert_int_equal(tc_send(&t, "Ping", AMI_ACTION_SIMPLE, 0, &r, NULL, NULL), SB_EDISCONN);
    assert_int_equal(ami_client_start(t.c), 0);
    /* Connecting (or logging in): still refused. */
    assert_int_equal(tc_send(&t, "Ping", AMI_ACTION_SIMPLE, 0, &r, NULL, NULL), SB_EDISCONN);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    /* A value with CR LF would inject a header: refused, nothing sent. */
    size_t before = t.srv.ngot;
    assert_int_equal(
        tc_send(&t, "Ping", AMI_ACTION_SIMPLE, 0, &r, NULL, "X", "a\r\nSecret: b", NULL),
        SB_EINVAL);
    assert_int_equal(tc_send(&t, "Ping", (ami_action_kind)42, 0, &r, NULL, NULL), SB_EINVAL);
    char small[4];
    ami_msg m;
    ami_msg_init(&m, "Action", "Ping");
    assert_int_equal(
        ami_client_send(t.c, &m, AMI_ACTION_SIMPLE, 0, res_cb, &r, small, sizeof small), SB_EINVAL);
    /* m was freed by that call: sending it again is refused, not an "Action"-less packet. */
    assert_int_equal(ami_client_send(t.c, &m, AMI_ACTION_SIMPLE, 0, res_cb, &r, NULL, 0),
                     SB_EINVAL);
    RUN_FOR(&t, 50);
    assert_int_equal(t.srv.ngot, before);
    assert_int_equal(r.calls, 0);
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.actions_sent, 0);
    assert_int_equal(ami_client_new(&t.loop, NULL, &cbs, &t.c), SB_EINVAL);
    tc_fini(&t);
}

/* ---- login details ----------------------------------------------------------------------- */

static int filters_at_ready = -1;
static void check_filters_at_ready(tc *t, bool reconnected)
{
    (void)reconnected;
    filters_at_ready = t->srv.filters;
}

static void test_events_mask_and_filters_before_ready(void **state)
{
    const char *filters[] = {"Event: Hangup", "Event: Newchannel"};
    (void)state;
    for (int deny = 0; deny < 2; deny++) {
        tc t;
        tc_init(&t);
        t.srv.deny_filter = deny;
        t.on_ready_hook = check_filters_at_ready;
        filters_at_ready = -1;
        ami_client_config cfg = tc_config(&t);
        cfg.events = "call,agent";
        cfg.filters = filters;
        cfg.nfilters = 2;
        tc_client(&t, &cfg);
        RUN_UNTIL(&t, t.ready == 1, 2000);
        assert_int_equal(t.ready, 1); /* a refused Filter is logged, not fatal */
        assert_int_equal(filters_at_ready, 2);
        const ami_packet *login = fs_got(&t.srv, "Login", 0);
        assert_true(ami_packet_is(login, "Events", "call,agent"));
        for (int i = 0; i < 2; i++) {
            const ami_packet *f = fs_got(&t.srv, "Filter", i);
            assert_non_null(f);
            assert_true(ami_packet_is(f, "Operation", "Add"));
            assert_true(ami_packet_is(f, "Filter", filters[i]));
        }
        assert_true(sb_slice_eq_ci(t.srv.got[0]->name, "Login"));
        tc_fini(&t);
    }
}

static void test_host_name_is_resolved(void **state)
{
    tc t;
    (void)state;
    tc_init(&t);
    ami_client_config cfg = tc_config(&t);
    cfg.host = "localhost"; /* may resolve to ::1 first: the client tries the next address */
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 3000);
    assert_int_equal(t.ready, 1);
    tc_fini(&t);
}

static void test_rebranded_banner_is_tolerated(void **state)
{
    tc t;
    (void)state;
    tc_init(&t);
    t.srv.banner = "PBX Call Manager/9.1.2";
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    assert_int_equal(t.ready, 1);
    assert_string_equal(ami_client_ami_version(t.c), "9.1.2");
    tc_fini(&t);
}

/* ---- legacy Command output, and the list cap ------------------------------------------- */

static void legacy_command(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    (void)s, (void)idx;
    sb_slice id = ami_packet_value(a, "ActionID");
    if (sb_slice_eq_ci(a->name, "Command")) {
        /* Pre-14 form: raw text up to --END COMMAND-- (protocol-facts §1.8). */
        fs_sendf(fc,
                 "Response: Follows\r\nPrivilege: Command\r\nActionID: %.*s\r\n"
                 "System uptime: 1 second\nLast reload: 1 second\n"
                 "--END COMMAND--\r\n\r\n",
                 (int)id.len, id.ptr);
        return;
    }
    /* A list one item longer than the client keeps. */
    sb_buf b;
    sb_buf_init(&b, 64u << 20);
    sb_buf_printf(&b, "Response: Success\r\nActionID: %.*s\r\nEventList: start\r\n\r\n",
                  (int)id.len, id.ptr);
    for (int i = 0; i <= AMI_LIST_MAX_ITEMS; i++)
        sb_buf_printf(&b, "Event: Item\r\nActionID: %.*s\r\n\r\n", (int)id.len, id.ptr);
    sb_buf_printf(&b, "Event: ItemsComplete\r\nActionID: %.*s\r\nEventList: Complete\r\n\r\n",
                  (int)id.len, id.ptr);
    fs_send(fc, b.data, b.len);
    sb_buf_free(&b);
}

typedef struct outres {
    res r;
    int outputs;
    char first[64];
} outres;

static void output_cb(ami_client *c, const ami_result *r, void *ud)
{
    outres *o = ud;
    res_cb(c, r, &o->r);
    for (size_t i = 0; r->response && i < r->response->count; i++) {
        if (!sb_slice_eq_ci(r->response->headers[i].key, "Output"))
            continue;
        if (o->outputs++ == 0)
            sb_slice_copy(r->response->headers[i].value, o->first, sizeof o->first);
    }
}

static void test_legacy_follows_and_list_cap(void **state)
{
    tc t;
    outres o = {0};
    res big = {0};
    (void)state;
    tc_init(&t);
    t.srv.on_action = legacy_command;
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 2000);
    ami_msg m;
    ami_msg_init(&m, "Action", "Command");
    ami_msg_add(&m, "Command", "core show uptime");
    assert_int_equal(ami_client_send(t.c, &m, AMI_ACTION_SIMPLE, 0, output_cb, &o, NULL, 0), 0);
    assert_int_equal(tc_send(&t, "Huge", AMI_ACTION_LIST, 0, &big, NULL, NULL), 0);
    RUN_UNTIL(&t, o.r.calls && big.calls, 10000);
    assert_int_equal(o.r.calls, 1);
    assert_int_equal(o.r.status, 0);
    assert_true(o.outputs >= 2);
    assert_string_equal(o.first, "System uptime: 1 second");
    assert_int_equal(big.calls, 1);
    assert_int_equal(big.status, SB_ETOOBIG);
    assert_int_equal(big.nitems, AMI_LIST_MAX_ITEMS);
    assert_string_equal(big.complete_name, "ItemsComplete");
    assert_int_equal(ami_client_get_state(t.c), AMI_STATE_READY);
    tc_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_interleaved_with_each_other_and_events),
        cmocka_unit_test(test_originate_success_failure_and_early_result),
        cmocka_unit_test(test_thousand_actions_in_flight),
        cmocka_unit_test(test_two_clients_on_one_loop),
        cmocka_unit_test(test_send_errors_never_call_back),
        cmocka_unit_test(test_events_mask_and_filters_before_ready),
        cmocka_unit_test(test_host_name_is_resolved),
        cmocka_unit_test(test_rebranded_banner_is_tolerated),
        cmocka_unit_test(test_legacy_follows_and_list_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
