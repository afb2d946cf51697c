/* test_pbxsim.c: the PBX simulator against the behaviour recorded in the Asterisk fixtures:
 * login both ways, a bad secret closing the session, permission denied, every list action,
 * queue actions and their errors, Originate outcomes, Events/Filter, Redirect/Hangup, each
 * fault, load and streaming. The client and the simulator share one loop. */
#include "test_pbxsim_client.h"
#include "testutil.h"

#include "core/error.h"

#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static uv_loop_t loop;

static int setup(void **state)
{
    uv_loop_init(&loop);
    return 0;
}

static int teardown(void **state)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return 0;
}

static void test_banner_login_ping(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    assert_int_equal(c.connected, 1);
    assert_true(c.n >= 1);
    assert_int_equal(c.pkts[0]->kind, AMI_PACKET_BANNER);
    assert_true(sb_slice_eq(c.pkts[0]->name, SB_SLICE_LIT("Asterisk Call Manager/11.0.0")));
    const ami_packet *r = tc_login(&c, "admin", "admin-secret", "on");
    assert_non_null(r);
    assert_string_equal(tc_val(r, "Response"), "Success");
    assert_string_equal(tc_val(r, "Message"), "Authentication accepted");
    /* ActionID comes right after Response, as in fixture 01 */
    assert_true(sb_slice_eq_ci(r->headers[1].key, "ActionID"));
    assert_true(tc_wait_events(&c, "SuccessfulAuth", NULL, NULL, 1, 2000));
    assert_non_null(tc_event(&c, "FullyBooted", "Status", "Fully Booted"));
    tc_send(&c, "Action: Ping\nActionID: p1\n\n");
    r = tc_wait_response(&c, "p1", 2000);
    assert_string_equal(tc_val(r, "Ping"), "Pong");
    assert_true(strchr(tc_val(r, "Timestamp"), '.') != NULL);
    /* a Ping without ActionID is answered without one (fixture 04) */
    size_t before = c.n;
    tc_send(&c, "Action: Ping\n\n");
    tc_send(&c, "Action: Ping\nActionID: p2\n\n");
    tc_wait_response(&c, "p2", 2000);
    assert_int_equal(c.n, before + 2);
    assert_null(ami_packet_get(c.pkts[before], "ActionID"));
    assert_string_equal(tc_val(c.pkts[before], "Ping"), "Pong");
    tc_send(&c, "Action: Logoff\nActionID: bye\n\n");
    r = tc_wait_response(&c, "bye", 2000);
    assert_string_equal(tc_val(r, "Response"), "Goodbye");
    assert_string_equal(tc_val(r, "Message"), "Thanks for all the fish.");
    assert_true(tc_run_until(&loop, tc_has_closed, &c, 2000));
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.logins_ok, 1);
    assert_int_equal(st.logins_failed, 0);
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static void md5hex(const char *a, const char *b, char out[33])
{
    unsigned char d[16];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    EVP_DigestUpdate(ctx, a, strlen(a));
    EVP_DigestUpdate(ctx, b, strlen(b));
    EVP_DigestFinal_ex(ctx, d, &n);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_login_md5_and_bad_key(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_send(&c, "Action: Challenge\nActionID: ch\nAuthType: MD5\n\n");
    const ami_packet *r = tc_wait_response(&c, "ch", 2000);
    assert_string_equal(tc_val(r, "Response"), "Success");
    char challenge[64], key[33], buf[256];
    snprintf(challenge, sizeof challenge, "%s", tc_val(r, "Challenge"));
    assert_true(strlen(challenge) >= 6);
    md5hex(challenge, "admin-secret", key);
    snprintf(buf, sizeof buf,
             "Action: Login\nActionID: l\nAuthType: MD5\nUsername: admin\nKey: %s\nEvents: off\n\n",
             key);
    tc_send(&c, buf);
    r = tc_wait_response(&c, "l", 2000);
    assert_string_equal(tc_val(r, "Message"), "Authentication accepted");
    /* Events: off: neither FullyBooted nor SuccessfulAuth (fixture 01/03) */
    tc_send(&c, "Action: Ping\nActionID: p\n\n");
    tc_wait_response(&c, "p", 2000);
    assert_null(tc_event(&c, "FullyBooted", NULL, NULL));
    assert_null(tc_event(&c, "SuccessfulAuth", NULL, NULL));
    tc_free(&c);

    tclient d;
    tc_connect(&d, &loop, pbxsim_port(sim));
    tc_send(&d, "Action: Challenge\nActionID: ch\nAuthType: MD5\n\n");
    tc_wait_response(&d, "ch", 2000);
    tc_send(&d, "Action: Login\nActionID: l\nAuthType: MD5\nUsername: admin\n"
                "Key: 00000000000000000000000000000000\n\n");
    r = tc_wait_response(&d, "l", 2000);
    assert_string_equal(tc_val(r, "Response"), "Error");
    assert_string_equal(tc_val(r, "Message"), "Authentication failed");
    assert_true(tc_run_until(&loop, tc_has_closed, &d, 2000));
    tc_free(&d);
    tc_sim_free(&loop, sim);
}

static void test_bad_secret_closes(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    /* before login only Login, Logoff and Challenge are allowed */
    tc_send(&c, "Action: Ping\nActionID: early\n\n");
    const ami_packet *r = tc_wait_response(&c, "early", 2000);
    assert_string_equal(tc_val(r, "Response"), "Error");
    assert_string_equal(tc_val(r, "Message"), "Permission denied");
    r = tc_login(&c, "admin", "wrong", "on");
    assert_string_equal(tc_val(r, "Response"), "Error");
    assert_string_equal(tc_val(r, "Message"), "Authentication failed");
    assert_true(tc_run_until(&loop, tc_has_closed, &c, 2000));
    /* nothing after the failure answer */
    assert_ptr_equal(c.pkts[c.n - 1], r);
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.logins_failed, 1);
    assert_int_equal(st.logins_ok, 0);
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static void test_permission_denied_limited_user(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    const ami_packet *r = tc_login(&c, "limited", "limited-secret", "on");
    assert_string_equal(tc_val(r, "Message"), "Authentication accepted");
    tc_send(&c, "Action: CoreShowChannels\nActionID: a\n\n"
                "Action: QueueStatus\nActionID: b\n\n"
                "Action: NoSuchAction\nActionID: c\n\n"
                "Action: Command\nActionID: d\nCommand: core show uptime\n\n");
    r = tc_wait_response(&c, "a", 2000);
    assert_string_equal(tc_val(r, "Response"), "Error");
    assert_string_equal(tc_val(r, "Message"), "Permission denied");
    assert_true(tc_wait_events(&c, "QueueStatusComplete", "ActionID", "b", 1, 2000));
    assert_string_equal(tc_val(tc_event(&c, "QueueStatusComplete", NULL, NULL), "ListItems"), "5");
    r = tc_wait_response(&c, "c", 2000);
    assert_string_equal(tc_val(r, "Message"), "Invalid/unknown command: NoSuchAction. Use "
                                              "Action: ListCommands to show available commands.");
    r = tc_wait_response(&c, "d", 2000);
    assert_string_equal(tc_val(r, "Message"), "Permission denied");
    /* read = call,agent: no system (FullyBooted) or security events */
    assert_null(tc_event(&c, "FullyBooted", NULL, NULL));
    assert_null(tc_event(&c, "SuccessfulAuth", NULL, NULL));
    assert_null(tc_event(&c, "RequestBadFormat", NULL, NULL));
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.denied, 2);
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static int done_calls;
static int done_status;

static void on_done(void *arg, int status)
{
    done_calls++;
    done_status = status;
}

static void test_list_actions(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.1); /* the 20 s Wait lasts 2 s */
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "off");
    /* a long call (Local/600, Wait 20) so that channel lists have something */
    tc_send(&c, "Action: Originate\nActionID: o\nChannel: Local/600@from-internal\n"
                "Application: Wait\nData: 20\nAsync: true\n\n");
    const ami_packet *r = tc_wait_response(&c, "o", 2000);
    assert_string_equal(tc_val(r, "Message"), "Originate successfully queued");
    tc_run_until(&loop, NULL, NULL, 50);
    tc_send(&c, "Action: CoreShowChannels\nActionID: csc\n\n"
                "Action: Status\nActionID: st\n\n"
                "Action: DeviceStateList\nActionID: dsl\n\n"
                "Action: ExtensionStateList\nActionID: esl\n\n"
                "Action: QueueSummary\nActionID: qs\n\n"
                "Action: ExtensionState\nActionID: es\nExten: 1001\nContext: from-internal\n\n"
                "Action: Getvar\nActionID: gv\nVariable: CALLERID(num)\nChannel: nosuch\n\n"
                "Action: CoreStatus\nActionID: cs\n\n"
                "Action: PJSIPShowEndpoints\nActionID: ep\n\n"
                "Action: Command\nActionID: cmd\nCommand: core show channels concise\n\n");
    assert_true(tc_wait_events(&c, "CoreShowChannelsComplete", NULL, NULL, 1, 2000));
    r = tc_wait_response(&c, "csc", 10);
    assert_string_equal(tc_val(r, "EventList"), "start");
    assert_string_equal(tc_val(r, "Message"), "Channels will follow");
    assert_int_equal(tc_count(&c, "CoreShowChannel", "ActionID", "csc"), 2);
    const ami_packet *e = tc_event(&c, "CoreShowChannel", NULL, NULL);
    assert_true(sb_slice_eq_ci(e->headers[1].key, "ActionID"));
    assert_string_equal(tc_val(tc_event(&c, "CoreShowChannelsComplete", NULL, NULL), "ListItems"),
                        "2");
    assert_true(tc_wait_events(&c, "StatusComplete", NULL, NULL, 1, 2000));
    assert_int_equal(tc_count(&c, "Status", "ActionID", "st"), 2);
    assert_string_equal(tc_val(tc_event(&c, "StatusComplete", NULL, NULL), "Items"), "2");
    assert_true(tc_wait_events(&c, "DeviceStateListComplete", NULL, NULL, 1, 2000));
    /* the 11 devices at boot; Local/600@from-internal is not cached (fixture 10) */
    assert_string_equal(tc_val(tc_event(&c, "DeviceStateListComplete", NULL, NULL), "ListItems"),
                        "11");
    assert_null(tc_event(&c, "DeviceStateChange", "Device", "Local/600@from-internal"));
    assert_non_null(tc_event(&c, "DeviceStateChange", "Device", "PJSIP/carrier"));
    assert_true(tc_wait_events(&c, "ExtensionStateListComplete", NULL, NULL, 1, 2000));
    assert_int_equal(tc_count(&c, "ExtensionStatus", "StatusText", "Unavailable"), 3);
    assert_true(tc_wait_events(&c, "QueueSummaryComplete", NULL, NULL, 1, 2000));
    assert_string_equal(tc_val(tc_event(&c, "QueueSummary", "Queue", "sales"), "LoggedIn"), "2");
    r = tc_wait_response(&c, "es", 2000);
    assert_string_equal(tc_val(r, "Message"), "Extension Status");
    assert_string_equal(tc_val(r, "Hint"), "PJSIP/1001");
    assert_string_equal(tc_val(r, "Status"), "4");
    r = tc_wait_response(&c, "gv", 2000);
    assert_string_equal(tc_val(r, "Response"), "Error");
    assert_string_equal(tc_val(r, "Message"), "No such channel");
    r = tc_wait_response(&c, "cs", 2000);
    assert_string_equal(tc_val(r, "CoreCurrentCalls"), "1");
    assert_true(tc_wait_events(&c, "EndpointListComplete", NULL, NULL, 1, 2000));
    assert_int_equal(tc_count(&c, "EndpointList", "ActionID", "ep"), 4);
    assert_string_equal(
        tc_val(tc_event(&c, "EndpointList", "ObjectName", "carrier"), "DeviceState"), "Not in use");
    assert_string_equal(tc_val(tc_event(&c, "EndpointList", "ObjectName", "1001"), "DeviceState"),
                        "Unavailable");
    r = tc_wait_response(&c, "cmd", 2000);
    size_t outputs = 0;
    for (size_t i = 0; i < r->count; i++)
        if (sb_slice_eq_ci(r->headers[i].key, "Output"))
            outputs++;
    assert_int_equal(outputs, 2);
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.channels, 2);
    /* no ActionID on the list action: none on its items either */
    size_t before = c.n;
    tc_send(&c, "Action: ExtensionStateList\n\n");
    assert_true(tc_wait_events(&c, "ExtensionStateListComplete", NULL, NULL, 2, 2000));
    for (size_t i = before; i < c.n; i++)
        assert_null(ami_packet_get(c.pkts[i], "ActionID"));
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static void test_queue_actions(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "on");
    tc_send(&c, "Action: QueueAdd\nActionID: a1\nQueue: sales\nInterface: Local/504@agents/n\n"
                "MemberName: Agent Dee\nStateInterface: Local/504@agents\nPenalty: 1\n"
                "Paused: true\nReason: training\n\n"
                "Action: QueueAdd\nActionID: a2\nQueue: sales\nInterface: Local/504@agents/n\n\n"
                "Action: QueuePause\nActionID: a3\nInterface: Local/504@agents/n\nPaused: false\n\n"
                "Action: QueueStatus\nActionID: a4\nQueue: sales\n\n");
    const ami_packet *r = tc_wait_response(&c, "a1", 2000);
    assert_string_equal(tc_val(r, "Message"), "Added interface to queue");
    assert_true(tc_wait_events(&c, "QueueMemberAdded", NULL, NULL, 1, 2000));
    const ami_packet *e = tc_event(&c, "QueueMemberAdded", NULL, NULL);
    assert_string_equal(tc_val(e, "Membership"), "dynamic");
    assert_string_equal(tc_val(e, "Paused"), "1");
    assert_string_equal(tc_val(e, "PausedReason"), "training");
    assert_non_null(
        tc_event(&c, "DeviceStateChange", "Device", "Queue:sales_pause_Local/504@agents/n"));
    r = tc_wait_response(&c, "a2", 2000);
    assert_string_equal(tc_val(r, "Message"), "Unable to add interface: Already there");
    r = tc_wait_response(&c, "a3", 2000);
    assert_string_equal(tc_val(r, "Message"), "Interface unpaused successfully");
    assert_true(tc_wait_events(&c, "QueueMemberPause", NULL, NULL, 1, 2000));
    assert_string_equal(tc_val(tc_event(&c, "QueueMemberPause", NULL, NULL), "Paused"), "0");
    assert_true(tc_wait_events(&c, "QueueStatusComplete", NULL, NULL, 1, 2000));
    /* QueueParams + Dee, Ben, Ann; the state follows the events */
    assert_string_equal(tc_val(tc_event(&c, "QueueStatusComplete", NULL, NULL), "ListItems"), "4");
    e = tc_event(&c, "QueueMember", "Name", "Agent Dee");
    assert_string_equal(tc_val(e, "Paused"), "0");
    assert_string_equal(tc_val(e, "Penalty"), "1");
    tc_send(&c,
            "Action: QueueRemove\nActionID: r1\nQueue: sales\nInterface: Local/504@agents/n\n\n"
            "Action: QueueRemove\nActionID: r2\nQueue: sales\nInterface: Local/504@agents/n\n\n"
            "Action: QueueRemove\nActionID: r3\nQueue: nosuchqueue\nInterface: x\n\n"
            "Action: QueuePause\nActionID: p1\nQueue: support\nInterface: Local/503@agents/n\n"
            "Paused: true\nReason: lunch\n\n"
            "Action: QueuePause\nActionID: p2\nInterface: Local/999@agents/n\nPaused: true\n\n");
    r = tc_wait_response(&c, "r1", 2000);
    assert_string_equal(tc_val(r, "Message"), "Removed interface from queue");
    r = tc_wait_response(&c, "r2", 2000);
    assert_string_equal(tc_val(r, "Message"), "Unable to remove interface: Not there");
    r = tc_wait_response(&c, "r3", 2000);
    assert_string_equal(tc_val(r, "Message"),
                        "Unable to remove interface from queue: No such queue");
    r = tc_wait_response(&c, "p1", 2000);
    assert_string_equal(tc_val(r, "Message"), "Interface paused successfully");
    r = tc_wait_response(&c, "p2", 2000);
    assert_string_equal(tc_val(r, "Response"), "Error");
    assert_true(tc_wait_events(&c, "QueueMemberRemoved", NULL, NULL, 1, 2000));
    assert_true(tc_wait_events(&c, "QueueMemberPause", "PausedReason", "lunch", 1, 2000));
    tc_send(&c, "Action: QueueSummary\nActionID: qs\n\n");
    assert_true(tc_wait_events(&c, "QueueSummaryComplete", NULL, NULL, 1, 2000));
    assert_string_equal(tc_val(tc_event(&c, "QueueSummary", "Queue", "support"), "Available"), "0");
    assert_string_equal(tc_val(tc_event(&c, "QueueSummary", "Queue", "sales"), "LoggedIn"), "2");
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

/* A caller waiting in a queue is listed by QueueStatus (QueueEntry) until it leaves. */
static void test_queue_entry_while_waiting(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.2); /* the caller hangs up after 3 s: 600 ms */
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "on");
    assert_int_equal(pbxsim_play(sim, "queue-call-abandoned", NULL), 0);
    assert_true(tc_wait_events(&c, "QueueCallerJoin", NULL, NULL, 1, 2000));
    tc_send(&c, "Action: QueueStatus\nActionID: q1\nQueue: support\n\n"
                "Action: QueueSummary\nActionID: q2\nQueue: support\n\n");
    assert_true(tc_wait_events(&c, "QueueSummaryComplete", NULL, NULL, 1, 2000));
    const ami_packet *e = tc_event(&c, "QueueEntry", "ActionID", "q1");
    assert_non_null(e);
    assert_string_equal(tc_val(e, "Position"), "1");
    assert_string_equal(tc_val(e, "CallerIDNum"), "34600999888");
    assert_string_equal(tc_val(e, "Channel"),
                        tc_val(tc_event(&c, "QueueCallerJoin", NULL, NULL), "Channel"));
    assert_string_equal(tc_val(tc_event(&c, "QueueParams", NULL, NULL), "Calls"), "1");
    assert_string_equal(tc_val(tc_event(&c, "QueueSummary", NULL, NULL), "Callers"), "1");
    assert_true(tc_wait_events(&c, "QueueCallerAbandon", NULL, NULL, 1, 3000));
    tc_send(&c, "Action: QueueStatus\nActionID: q3\nQueue: support\n\n");
    assert_true(tc_wait_events(&c, "QueueStatusComplete", NULL, NULL, 2, 2000));
    assert_null(tc_event(&c, "QueueEntry", "ActionID", "q3"));
    assert_non_null(tc_event(&c, "QueueParams", "Abandoned", "1"));
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static const ami_packet *originate_response(tclient *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->pkts[i]->kind == AMI_PACKET_EVENT &&
            sb_slice_eq_ci(c->pkts[i]->name, "OriginateResponse") &&
            ami_packet_is(c->pkts[i], "ActionID", id))
            return c->pkts[i];
    return NULL;
}

static void test_originate_outcomes(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "on");
    tc_send(&c, "Action: Originate\nActionID: ok\nChannel: Local/100@from-internal\n"
                "Context: hello\nExten: s\nPriority: 1\nCallerID: \"Web Caller\" <5551234>\n"
                "Async: true\nVariable: SB_JOB=job-42\n\n"
                "Action: Originate\nActionID: unreg\nChannel: PJSIP/1003\nContext: hello\n"
                "Exten: s\nPriority: 1\nAsync: true\n\n"
                "Action: Originate\nActionID: busy\nChannel: Local/999@from-internal\n"
                "Application: Wait\nData: 2\nAsync: true\n\n"
                "Action: Originate\nActionID: noctx\nChannel: Local/12345@nosuchcontext\n"
                "Application: Wait\nData: 2\nAsync: true\n\n"
                "Action: Originate\nActionID: sync\nChannel: Local/100@from-internal\n"
                "Application: Wait\nData: 1\n\n"
                "Action: Originate\nActionID: bogus\nChannel: Bogus/thing\nApplication: Wait\n"
                "Data: 1\n\n"
                "Action: Originate\nActionID: syncbusy\nChannel: Local/999@from-internal\n"
                "Application: Wait\nData: 1\n\n"
                "Action: Originate\nActionID: nochan\nApplication: Wait\n\n");
    assert_true(tc_wait_events(&c, "OriginateResponse", NULL, NULL, 4, 3000));
    const ami_packet *e = originate_response(&c, "ok");
    assert_string_equal(tc_val(e, "Response"), "Success");
    assert_string_equal(tc_val(e, "Reason"), "4");
    assert_string_equal(tc_val(e, "Context"), "hello");
    assert_string_equal(tc_val(e, "CallerIDName"), "Web Caller");
    assert_non_null(tc_event(&c, "VarSet", "Value", "job-42"));
    e = originate_response(&c, "unreg");
    assert_string_equal(tc_val(e, "Response"), "Failure");
    assert_string_equal(tc_val(e, "Reason"), "0");
    assert_string_equal(tc_val(e, "Channel"), "PJSIP/1003");
    e = originate_response(&c, "busy");
    assert_string_equal(tc_val(e, "Reason"), "5");
    assert_string_equal(tc_val(e, "Application"), "Wait");
    e = originate_response(&c, "noctx");
    assert_string_equal(tc_val(e, "Response"), "Failure");
    assert_string_equal(tc_val(e, "Reason"), "0");
    assert_string_equal(tc_val(e, "Channel"), "Local/12345@nosuchcontext");
    assert_string_equal(tc_val(tc_response(&c, "sync"), "Message"),
                        "Originate successfully queued");
    assert_string_equal(tc_val(tc_response(&c, "bogus"), "Message"), "Originate failed");
    assert_string_equal(tc_val(tc_response(&c, "syncbusy"), "Message"), "Originate failed");
    assert_string_equal(tc_val(tc_response(&c, "nochan"), "Response"), "Error");
    assert_null(originate_response(&c, "sync")); /* a sync Originate sends none */
    /* after registering, PJSIP/1001 answers (fixture 15) */
    assert_int_equal(pbxsim_play(sim, "register-phone", NULL), 0);
    assert_true(tc_wait_events(&c, "ExtensionStatus", "StatusText", "Idle", 1, 2000));
    tc_send(&c, "Action: Originate\nActionID: phone\nChannel: PJSIP/1001\nContext: hello\n"
                "Exten: s\nPriority: 1\nCallerID: \"Click2Dial\" <200>\nAsync: true\n\n");
    assert_true(tc_wait_events(&c, "OriginateResponse", "ActionID", "phone", 1, 3000));
    e = originate_response(&c, "phone");
    assert_string_equal(tc_val(e, "Response"), "Success");
    assert_true(strncmp(tc_val(e, "Channel"), "PJSIP/1001-", 11) == 0);
    /* every call ends: no channel left in the state */
    pbxsim_stats st;
    for (int i = 0; i < 200; i++) {
        pbxsim_get_stats(sim, &st);
        if (st.calls_active == 0)
            break;
        tc_run_until(&loop, NULL, NULL, 10);
    }
    assert_int_equal(st.calls_active, 0);
    assert_int_equal(st.channels, 0);
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static void test_events_and_filter(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c, all;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_connect(&all, &loop, pbxsim_port(sim));
    tc_login(&all, "admin", "admin-secret", "on");
    const ami_packet *r = tc_login(&c, "admin", "admin-secret", "call,agent");
    assert_string_equal(tc_val(r, "Message"), "Authentication accepted");
    tc_send(&c, "Action: Filter\nActionID: f1\nOperation: Add\nFilter: Event: Hangup\n\n"
                "Action: Filter\nActionID: f2\nOperation: Add\nFilter: Event: Newchannel\n\n"
                "Action: Events\nActionID: ev\nEventMask: call\n\n");
    r = tc_wait_response(&c, "f2", 2000);
    assert_string_equal(tc_val(r, "Message"), "Success");
    r = tc_wait_response(&c, "ev", 2000);
    assert_string_equal(tc_val(r, "Events"), "On");
    assert_int_equal(pbxsim_play(sim, "internal-call", NULL), 0);
    assert_true(tc_wait_events(&all, "Cdr", NULL, NULL, 2, 2000));
    assert_true(tc_wait_events(&c, "Hangup", NULL, NULL, 2, 2000));
    tc_run_until(&loop, NULL, NULL, 30);
    /* fixture 13: Newchannel x2, HangupRequest (matches "Event: Hangup"), Hangup x2 */
    size_t events = 0;
    for (size_t i = 0; i < c.n; i++)
        if (c.pkts[i]->kind == AMI_PACKET_EVENT) {
            events++;
            assert_true(sb_slice_eq_ci(c.pkts[i]->name, "Newchannel") ||
                        sb_slice_eq_ci(c.pkts[i]->name, "Hangup") ||
                        sb_slice_eq_ci(c.pkts[i]->name, "HangupRequest"));
        }
    assert_int_equal(tc_count(&c, "Newchannel", NULL, NULL), 2);
    assert_int_equal(tc_count(&c, "Hangup", NULL, NULL), 2);
    assert_true(events >= 5);
    assert_true(tc_count(&all, "Newexten", NULL, NULL) > 0);
    /* exclusion filter and Events: off */
    tc_send(&all, "Action: Filter\nActionID: f3\nOperation: Add\nFilter: !Event: Newexten\n\n");
    tc_wait_response(&all, "f3", 2000);
    tc_send(&c, "Action: Events\nActionID: off\nEventMask: off\n\n");
    r = tc_wait_response(&c, "off", 2000);
    assert_string_equal(tc_val(r, "Events"), "Off");
    size_t c_before = c.n, newexten_before = tc_count(&all, "Newexten", NULL, NULL);
    assert_int_equal(pbxsim_play(sim, "internal-call", NULL), 0);
    assert_true(tc_wait_events(&all, "Cdr", NULL, NULL, 4, 2000));
    tc_run_until(&loop, NULL, NULL, 30);
    assert_int_equal(c.n, c_before);
    assert_int_equal(tc_count(&all, "Newexten", NULL, NULL), newexten_before);
    tc_free(&c);
    tc_free(&all);
    tc_sim_free(&loop, sim);
}

static void test_redirect_and_hangup(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.1); /* the 20 s Wait lasts 2 s */
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "on");
    tc_send(&c, "Action: Originate\nActionID: o\nChannel: Local/600@from-internal\n"
                "Application: Wait\nData: 20\nAsync: true\n\n");
    assert_true(tc_wait_events(&c, "OriginateResponse", NULL, NULL, 1, 2000));
    char chan2[128], chan1[128], buf[512];
    snprintf(chan1, sizeof chan1, "%s", tc_val(originate_response(&c, "o"), "Channel"));
    snprintf(chan2, sizeof chan2, "%s", chan1);
    chan2[strlen(chan2) - 1] = '2';
    snprintf(buf, sizeof buf,
             "Action: Redirect\nActionID: rd\nChannel: %s\nContext: hello\nExten: s\n"
             "Priority: 1\n\nAction: Redirect\nActionID: rd2\nChannel: nosuch\nContext: x\n"
             "Exten: s\nPriority: 1\n\n",
             chan2);
    tc_send(&c, buf);
    const ami_packet *r = tc_wait_response(&c, "rd", 2000);
    assert_string_equal(tc_val(r, "Message"), "Redirect successful");
    r = tc_wait_response(&c, "rd2", 2000);
    assert_string_equal(tc_val(r, "Message"), "Channel does not exist: nosuch");
    /* fixture 14: ;2 plays hello-world in context hello and both legs hang up */
    assert_true(tc_wait_events(&c, "Hangup", NULL, NULL, 2, 2000));
    assert_non_null(tc_event(&c, "Newexten", "Context", "hello"));
    snprintf(buf, sizeof buf, "Action: Hangup\nActionID: h\nChannel: %s\nCause: 16\n\n", chan1);
    tc_send(&c, buf);
    r = tc_wait_response(&c, "h", 2000);
    assert_string_equal(tc_val(r, "Message"), "No such channel");
    /* Hangup of a live call: every channel of it goes, with the Cause given */
    size_t hangups = tc_count(&c, "Hangup", NULL, NULL);
    tc_send(&c, "Action: Originate\nActionID: o2\nChannel: Local/600@from-internal\n"
                "Application: Wait\nData: 20\nAsync: true\n\n");
    assert_true(tc_wait_events(&c, "OriginateResponse", "ActionID", "o2", 1, 2000));
    snprintf(buf, sizeof buf, "Action: Hangup\nActionID: h2\nChannel: %s\nCause: 17\n\n",
             tc_val(originate_response(&c, "o2"), "Channel"));
    tc_send(&c, buf);
    r = tc_wait_response(&c, "h2", 2000);
    assert_string_equal(tc_val(r, "Message"), "Channel Hungup");
    assert_true(tc_wait_events(&c, "Hangup", NULL, NULL, hangups + 2, 2000));
    assert_int_equal(tc_count(&c, "Hangup", "Cause", "17"), 2);
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.channels, 0);
    assert_int_equal(st.calls_active, 0);
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static void test_fault_drop_and_restart(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "on");
    assert_int_equal(pbxsim_command(sim, "fault drop"), 0);
    assert_true(tc_run_until(&loop, tc_has_closed, &c, 2000));
    tc_free(&c);
    /* the listener survives a drop */
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "on");
    assert_int_equal(pbxsim_play(sim, "internal-call", NULL), 0);
    assert_true(tc_wait_events(&c, "Newchannel", NULL, NULL, 1, 2000));
    char uid1[64];
    snprintf(uid1, sizeof uid1, "%s", tc_val(tc_event(&c, "Newchannel", NULL, NULL), "Uniqueid"));
    assert_int_equal(pbxsim_command(sim, "fault restart"), 0);
    assert_true(tc_run_until(&loop, tc_has_closed, &c, 2000));
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.calls_active, 0);
    assert_int_equal(st.channels, 0);
    tc_free(&c);
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "on");
    assert_int_equal(pbxsim_play(sim, "internal-call", NULL), 0);
    assert_true(tc_wait_events(&c, "Newchannel", NULL, NULL, 1, 2000));
    const char *uid2 = tc_val(tc_event(&c, "Newchannel", NULL, NULL), "Uniqueid");
    /* a restarted Asterisk starts its counter again, with a later epoch: no id repeats */
    assert_string_not_equal(uid1, uid2);
    assert_true(strtod(uid2, NULL) > strtod(uid1, NULL) - 1);
    assert_true(strcmp(strchr(uid2, '.'), ".1") == 0);
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static int local_port(tclient *c)
{
    struct sockaddr_in sa;
    int len = sizeof sa;
    uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&sa, &len);
    return ntohs(sa.sin_port);
}

/* A fault aimed at one session leaves the others alone. */
static void test_fault_one_session(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient a, b;
    tc_connect(&a, &loop, pbxsim_port(sim));
    tc_connect(&b, &loop, pbxsim_port(sim));
    tc_login(&a, "admin", "admin-secret", "off");
    tc_login(&b, "admin", "admin-secret", "off");
    assert_int_equal(pbxsim_inject_peer(sim, PBXSIM_FAULT_DROP, 0, local_port(&a)), 0);
    assert_true(tc_run_until(&loop, tc_has_closed, &a, 2000));
    tc_send(&b, "Action: Ping\nActionID: alive\n\n");
    assert_non_null(tc_wait_response(&b, "alive", 2000));
    assert_int_equal(b.closed, 0);
    assert_int_equal(pbxsim_inject_peer(sim, PBXSIM_FAULT_DROP, 0, 1), SB_ENOTFOUND);
    assert_int_equal(pbxsim_inject_peer(sim, PBXSIM_FAULT_RESTART, 0, local_port(&b)), SB_EINVAL);
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.sessions_open, 1);
    tc_free(&a);
    tc_free(&b);
    tc_sim_free(&loop, sim);
}

static void test_fault_stall_and_garbage(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "off");
    assert_int_equal(pbxsim_inject(sim, PBXSIM_FAULT_STALL, 300), 0);
    tc_send(&c, "Action: Ping\nActionID: s1\n\n");
    /* no answer while stalled ... */
    assert_null(tc_wait_response(&c, "s1", 150));
    /* ... and the answer once the stall is over */
    assert_non_null(tc_wait_response(&c, "s1", 2000));
    assert_int_equal(c.closed, 0);
    assert_int_equal(pbxsim_command(sim, "fault garbage"), 0);
    tc_send(&c, "Action: Ping\nActionID: g1\n\n");
    assert_non_null(tc_wait_response(&c, "g1", 2000));
    assert_true(c.errors >= 1 || c.codec.stats.syntax >= 1);
    assert_int_equal(c.closed, 0);
    assert_int_equal(pbxsim_command(sim, "fault nonsense"), SB_EINVAL);
    assert_int_equal(pbxsim_command(sim, "play no-such-scenario"), SB_ENOTFOUND);
    assert_int_equal(pbxsim_command(sim, "play ../etc"), SB_EINVAL);
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static void test_play_done_and_load(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    done_calls = 0;
    done_status = 1;
    pbxsim_play_opts o = {.on_done = on_done, .arg = NULL};
    assert_int_equal(pbxsim_play(sim, "queue-call-answered", &o), 0);
    for (int i = 0; i < 300 && done_calls == 0; i++)
        tc_run_until(&loop, NULL, NULL, 10);
    assert_int_equal(done_calls, 1);
    assert_int_equal(done_status, 0);
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_true(st.events_emitted > 150); /* 173 in queue-call-answered.scn */
    assert_int_equal(st.channels, 0);
    /* AgentComplete and the final QueueMemberStatus reached the queue state */
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "off");
    tc_send(&c, "Action: QueueStatus\nActionID: q\nQueue: sales\n\n");
    assert_true(tc_wait_events(&c, "QueueStatusComplete", NULL, NULL, 1, 2000));
    assert_string_equal(tc_val(tc_event(&c, "QueueParams", NULL, NULL), "Completed"), "1");
    assert_string_equal(tc_val(tc_event(&c, "QueueMember", "Name", "Agent Ben"), "CallsTaken"),
                        "1");
    /* load: 100 calls per second for 200 ms = 20 calls (plus the one above) */
    assert_int_equal(pbxsim_command(sim, "load 100 0.2 internal-call"), 0);
    for (int i = 0; i < 300; i++) {
        pbxsim_get_stats(sim, &st);
        if (st.calls_started >= 21)
            break;
        tc_run_until(&loop, NULL, NULL, 10);
    }
    tc_run_until(&loop, NULL, NULL, 100);
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.calls_started, 21);
    assert_int_equal(pbxsim_command(sim, "load 0 1 internal-call"), SB_EINVAL);
    assert_int_equal(pbxsim_command(sim, "load 5 1 no-such"), SB_ENOTFOUND);
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static bool stream_done(void *arg)
{
    tclient *c = arg;
    return c->n >= 2 + 1 + 5000; /* banner, login, stream ack, events */
}

static void test_stream_mode(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "off");
    tc_send(&c, "Action: PbxsimStream\nActionID: s\nCount: 5000\n\n");
    assert_true(tc_run_until(&loop, stream_done, &c, 5000));
    tc_run_until(&loop, NULL, NULL, 30);
    assert_int_equal(c.n, 2 + 1 + 5000);
    assert_int_equal(c.errors, 0);
    size_t events = 0;
    for (size_t i = 0; i < c.n; i++)
        if (c.pkts[i]->kind == AMI_PACKET_EVENT)
            events++;
    assert_int_equal(events, 5000);
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.events_sent, 5000);
    tc_free(&c);
    tc_sim_free(&loop, sim);
}

static int tap_calls;
static int tap_bad;
static int tap_did;

static void tap(void *arg, const char *data, size_t len)
{
    tap_calls++;
    if (len < 11 || memcmp(data, "Event: ", 7) != 0 || memcmp(data + len - 4, "\r\n\r\n", 4) != 0)
        tap_bad++;
    for (size_t i = 0; i + 11 <= len; i++)
        if (memcmp(data + i, "34900000001", 11) == 0) {
            tap_did++;
            break;
        }
}

/* The on_event tap sees every emitted event once, whole, whoever is connected. */
static void test_event_tap(void **state)
{
    pbxsim_config cfg;
    pbxsim_config_default(&cfg);
    cfg.time_scale = 0.001;
    cfg.on_event = tap;
    pbxsim *sim = NULL;
    assert_int_equal(pbxsim_new(&loop, &cfg, &sim), 0);
    assert_int_equal(pbxsim_start(sim), 0);
    tap_calls = tap_bad = tap_did = 0;
    done_calls = 0;
    pbxsim_play_opts o = {.vars = (const char *const[]){"DID=34900000001", NULL},
                          .on_done = on_done};
    assert_int_equal(pbxsim_play(sim, "inbound-trunk-queue", &o), 0);
    for (int i = 0; i < 300 && done_calls == 0; i++)
        tc_run_until(&loop, NULL, NULL, 10);
    assert_int_equal(done_calls, 1);
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal((uint64_t)tap_calls, st.events_emitted);
    assert_int_equal(tap_bad, 0);
    assert_int_equal(st.events_sent, 0); /* nobody connected */
    assert_true(tap_calls > 100);
    assert_true(tap_did > 10); /* the DID given to play replaced the recorded one */
    tc_sim_free(&loop, sim);
}

static void test_thread_mode(void **state)
{
    pbxsim_config cfg;
    pbxsim_config_default(&cfg);
    cfg.time_scale = 0.001;
    pbxsim_thread *t = NULL;
    assert_int_equal(pbxsim_thread_start(&cfg, &t), 0);
    assert_true(pbxsim_thread_port(t) > 0);
    tclient c;
    tc_connect(&c, &loop, pbxsim_thread_port(t));
    const ami_packet *r = tc_login(&c, "admin", "admin-secret", "on");
    assert_string_equal(tc_val(r, "Message"), "Authentication accepted");
    assert_int_equal(pbxsim_thread_command(t, "play internal-call"), 0);
    assert_true(tc_wait_events(&c, "Hangup", NULL, NULL, 2, 3000));
    pbxsim_stats st = {0};
    for (int i = 0; i < 100 && st.calls_started == 0; i++) {
        tc_run_until(&loop, NULL, NULL, 10);
        pbxsim_thread_stats(t, &st);
    }
    assert_int_equal(st.calls_started, 1);
    assert_int_equal(st.logins_ok, 1);
    tc_free(&c);
    pbxsim_thread_stop(t);
}

/* ---- the pbxsim program ---- */

typedef struct child {
    pid_t pid;
    int in;  /* its stdin */
    int out; /* its stdout */
} child;

static int spawn(child *ch, const char *const *argv)
{
    int in[2], out[2];
    if (pipe(in) || pipe(out))
        return -1;
    ch->pid = fork();
    if (ch->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    ch->in = in[1];
    ch->out = out[0];
    return ch->pid > 0 ? 0 : -1;
}

/* Reads one line of the child's stdout (bounded in time) while running the loop. */
static bool child_line(child *ch, char *buf, size_t size, int ms)
{
    size_t n = 0;
    for (int waited = 0; waited < ms && n + 1 < size;) {
        struct pollfd p = {.fd = ch->out, .events = POLLIN};
        if (poll(&p, 1, 5) == 1) {
            char c;
            if (read(ch->out, &c, 1) != 1)
                break;
            if (c == '\n') {
                buf[n] = '\0';
                return true;
            }
            buf[n++] = c;
        } else {
            waited += 5;
            uv_run(&loop, UV_RUN_NOWAIT);
        }
    }
    buf[n] = '\0';
    return false;
}

static void child_say(child *ch, const char *line)
{
    assert_int_equal(write(ch->in, line, strlen(line)), (ssize_t)strlen(line));
}

static int child_wait(child *ch)
{
    int status = 0;
    for (int i = 0; i < 400; i++) {
        if (waitpid(ch->pid, &status, WNOHANG) == ch->pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        usleep(5000);
    }
    kill(ch->pid, SIGKILL);
    waitpid(ch->pid, &status, 0);
    return -1;
}

static void test_program_control_channel(void **state)
{
    char path[512], line[512];
    snprintf(path, sizeof path, "%s/pbxsim", SB_BINARY_DIR);
    if (access(path, X_OK) != 0)
        fail_msg("%s not built", path);
    const char *argv[] = {path, "--port", "0", "--time-scale", "0.001", NULL};
    child ch;
    assert_int_equal(spawn(&ch, argv), 0);
    assert_true(child_line(&ch, line, sizeof line, 3000));
    int port = 0;
    assert_int_equal(sscanf(line, "listening 127.0.0.1:%d", &port), 1);
    assert_true(port > 0);
    tclient c;
    tc_connect(&c, &loop, port);
    tc_login(&c, "admin", "admin-secret", "on");
    child_say(&ch, "play internal-call\n");
    assert_true(child_line(&ch, line, sizeof line, 2000));
    assert_string_equal(line, "ok");
    assert_true(tc_wait_events(&c, "Hangup", NULL, NULL, 2, 3000));
    child_say(&ch, "play nosuch\nfault bogus\nstats\n");
    assert_true(child_line(&ch, line, sizeof line, 2000));
    assert_true(strncmp(line, "error: ", 7) == 0);
    assert_true(child_line(&ch, line, sizeof line, 2000));
    assert_true(strncmp(line, "error: ", 7) == 0);
    assert_true(child_line(&ch, line, sizeof line, 2000));
    assert_non_null(strstr(line, "sessions_open=1 "));
    assert_non_null(strstr(line, "calls_started=1 "));
    child_say(&ch, "fault drop\n");
    assert_true(child_line(&ch, line, sizeof line, 2000));
    assert_string_equal(line, "ok");
    assert_true(tc_run_until(&loop, tc_has_closed, &c, 2000));
    tc_free(&c);
    child_say(&ch, "quit\n");
    assert_true(child_line(&ch, line, sizeof line, 2000));
    assert_string_equal(line, "ok");
    assert_int_equal(child_wait(&ch), 0);
    close(ch.in);
    close(ch.out);

    /* a bad option: one clear line on stderr, exit status 2 */
    const char *bad[] = {path, "--bogus", "1", NULL};
    assert_int_equal(spawn(&ch, bad), 0);
    assert_int_equal(child_wait(&ch), 2);
    close(ch.in);
    close(ch.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_banner_login_ping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_md5_and_bad_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_secret_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permission_denied_limited_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_entry_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_originate_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_and_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_and_hangup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_drop_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_stall_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_one_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_play_done_and_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_tap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_program_control_channel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
