/* test_model.c: the call model's behaviour beyond the golden files: state restore after a
 * reconnect emits exactly the differences, unchanged states are not re-announced, the query API,
 * originate failures reaching the right agent, and the model feeding the bus (an agent's stream
 * sees only its events, gap-free). */
#include "model_feed.h"

#include "core/error.h"

#include <stdio.h>

#define CRLF "\r\n"

static void feed_str_events(feed *f, const char *text)
{
    feed_text(f, "pbx1", text, strlen(text), false);
}

/* A queue member, a two-leg call A (1000.1/1000.2) and a one-leg call B (2000.1). */
static const char *const setup =
    "Event: QueueMemberStatus" CRLF "Queue: sales" CRLF "MemberName: Agent Ann" CRLF
    "Interface: Local/501@agents/n" CRLF "StateInterface: Local/501@agents" CRLF
    "Membership: static" CRLF "Penalty: 0" CRLF "CallsTaken: 0" CRLF "InCall: 0" CRLF
    "Status: 1" CRLF "Paused: 0" CRLF "PausedReason: " CRLF CRLF "Event: Newchannel" CRLF
    "Channel: PJSIP/carrier-00000001" CRLF "ChannelState: 6" CRLF "CallerIDNum: 34911000111" CRLF
    "Exten: 34911222333" CRLF "Uniqueid: 1000.1" CRLF "Linkedid: 1000.1" CRLF CRLF
    "Event: Newchannel" CRLF "Channel: PJSIP/1001-00000002" CRLF "ChannelState: 6" CRLF
    "CallerIDNum: 1001" CRLF "Exten: s" CRLF "Uniqueid: 1000.2" CRLF "Linkedid: 1000.1" CRLF CRLF
    "Event: Newchannel" CRLF "Channel: Local/600@from-internal-00000003;1" CRLF
    "ChannelState: 6" CRLF "CallerIDNum: 1002" CRLF "Exten: 600" CRLF "Uniqueid: 2000.1" CRLF
    "Linkedid: 2000.1" CRLF CRLF;

/* While disconnected: call B ended, call C (3000.1) began, Ann was paused for lunch. */
static const char *const lists =
    "Event: CoreShowChannel" CRLF "ActionID: r1" CRLF "Channel: PJSIP/1001-00000002" CRLF
    "ChannelState: 6" CRLF "CallerIDNum: 1001" CRLF "Uniqueid: 1000.2" CRLF "Linkedid: 1000.1" CRLF
    "Duration: 00:00:10" CRLF "BridgeId: " CRLF CRLF "Event: CoreShowChannel" CRLF
    "ActionID: r1" CRLF "Channel: PJSIP/carrier-00000001" CRLF "ChannelState: 6" CRLF
    "CallerIDNum: 34911000111" CRLF "Uniqueid: 1000.1" CRLF "Linkedid: 1000.1" CRLF
    "Duration: 00:00:10" CRLF "BridgeId: " CRLF CRLF "Event: CoreShowChannel" CRLF
    "ActionID: r1" CRLF "Channel: PJSIP/1003-00000009" CRLF "ChannelState: 6" CRLF
    "CallerIDNum: 1003" CRLF "Exten: 100" CRLF "Uniqueid: 3000.1" CRLF "Linkedid: 3000.1" CRLF
    "Duration: 00:00:05" CRLF "BridgeId: " CRLF CRLF "Event: CoreShowChannelsComplete" CRLF
    "ActionID: r1" CRLF "EventList: Complete" CRLF "ListItems: 3" CRLF CRLF
    "Event: QueueParams" CRLF "ActionID: r2" CRLF "Queue: sales" CRLF "Strategy: ringall" CRLF
    "Calls: 0" CRLF CRLF "Event: QueueMember" CRLF "ActionID: r2" CRLF "Queue: sales" CRLF
    "Name: Agent Ann" CRLF "Location: Local/501@agents/n" CRLF
    "StateInterface: Local/501@agents" CRLF "Membership: static" CRLF "Penalty: 0" CRLF
    "CallsTaken: 0" CRLF "InCall: 0" CRLF "Status: 1" CRLF "Paused: 1" CRLF
    "PausedReason: lunch" CRLF CRLF "Event: QueueStatusComplete" CRLF "ActionID: r2" CRLF
    "EventList: Complete" CRLF "ListItems: 2" CRLF CRLF;

static void test_model_resync_emits_exactly_the_difference(void **state)
{
    feed f;
    model_stats st;
    feed_init(&f);
    feed_str_events(&f, setup);
    assert_int_equal(feed_count(&f, "call.started"), 2);
    feed_clear(&f);

    assert_int_equal(model_begin_resync(f.m, "pbx1"), 0);
    feed_str_events(&f, lists);
    assert_int_equal(model_end_resync(f.m, "pbx1"), 0);

    /* Exactly: C started (restored), Ann paused, B ended while we were away. */
    assert_int_equal(f.n, 3);
    long i = feed_find(&f, "call.started", 0);
    assert_true(i >= 0);
    assert_string_equal(feed_str(&f, (size_t)i, "callId"), "3000.1");
    assert_true(json_is_true(json_object_get(feed_details(&f, (size_t)i), "restored")));
    i = feed_find(&f, "queueMemberStatus", 0);
    assert_true(i >= 0);
    assert_true(json_is_true(json_object_get(feed_details(&f, (size_t)i), "paused")));
    assert_string_equal(feed_str(&f, (size_t)i, "pausedReason"), "lunch");
    i = feed_find(&f, "call.ended", 0);
    assert_true(i >= 0);
    assert_string_equal(feed_str(&f, (size_t)i, "callId"), "2000.1");
    assert_true(
        json_is_true(json_object_get(feed_details(&f, (size_t)i), "endedWhileDisconnected")));
    model_stats_get(f.m, &st);
    assert_int_equal(st.calls, 2);
    assert_int_equal(st.channels, 3);

    /* The same lists again: nothing changed, nothing is said. */
    feed_clear(&f);
    assert_int_equal(model_begin_resync(f.m, "pbx1"), 0);
    feed_str_events(&f, lists);
    assert_int_equal(model_end_resync(f.m, "pbx1"), 0);
    assert_int_equal(f.n, 0);
    feed_free(&f);
}

static void test_model_resync_without_complete_sweeps_nothing(void **state)
{
    feed f;
    model_stats st;
    feed_init(&f);
    feed_str_events(&f, setup);
    feed_clear(&f);
    assert_int_equal(model_begin_resync(f.m, "pbx1"), 0);
    /* CoreShowChannels failed: no items, no Complete. Nothing may end. */
    assert_int_equal(model_end_resync(f.m, "pbx1"), 0);
    assert_int_equal(f.n, 0);
    model_stats_get(f.m, &st);
    assert_int_equal(st.calls, 2);
    /* An empty but complete channel list ends every call. */
    assert_int_equal(model_begin_resync(f.m, "pbx1"), 0);
    feed_str_events(&f, "Event: CoreShowChannelsComplete" CRLF "ActionID: r9" CRLF
                        "EventList: Complete" CRLF "ListItems: 0" CRLF CRLF);
    assert_int_equal(model_end_resync(f.m, "pbx1"), 0);
    assert_int_equal(feed_count(&f, "call.ended"), 2);
    assert_int_equal(f.n, 2);
    model_stats_get(f.m, &st);
    assert_int_equal(st.calls, 0);
    assert_int_equal(st.channels, 0);
    assert_int_equal(model_end_resync(f.m, "pbx1"), SB_EINVAL); /* not resyncing */
    /* A list item for a channel whose Hangup we already saw does not resurrect it. */
    feed_clear(&f);
    assert_int_equal(model_begin_resync(f.m, "pbx1"), 0);
    feed_str_events(&f, "Event: CoreShowChannel" CRLF "Channel: Local/600@from-internal-3;1" CRLF
                        "ChannelState: 6" CRLF "Uniqueid: 2000.1" CRLF "Linkedid: 2000.1" CRLF CRLF
                        "Event: CoreShowChannelsComplete" CRLF "EventList: Complete" CRLF CRLF);
    assert_int_equal(model_end_resync(f.m, "pbx1"), 0);
    assert_int_equal(f.n, 0);
    model_stats_get(f.m, &st);
    assert_int_equal(st.channels, 0);
    feed_free(&f);
}

static void test_model_unchanged_states_are_not_reannounced(void **state)
{
    feed f;
    const char *ext = "Event: ExtensionStatus" CRLF "Exten: 1001" CRLF "Context: from-internal" CRLF
                      "Hint: PJSIP/1001" CRLF "Status: 0" CRLF "StatusText: Idle" CRLF CRLF;
    const char *dev =
        "Event: DeviceStateChange" CRLF "Device: PJSIP/1001" CRLF "State: NOT_INUSE" CRLF CRLF;
    feed_init(&f);
    feed_str_events(&f, setup);
    feed_str_events(&f, setup); /* same member status, same Newchannels */
    assert_int_equal(feed_count(&f, "queueMemberStatus"), 1);
    assert_int_equal(feed_count(&f, "call.started"), 2);
    feed_clear(&f);
    feed_str_events(&f, ext);
    feed_str_events(&f, ext);
    feed_str_events(&f, dev);
    feed_str_events(&f, dev);
    assert_int_equal(f.n, 1);
    assert_int_equal(feed_count(&f, "extensionStatus"), 1);
    feed_free(&f);
}

static void test_model_queries_after_fixtures(void **state)
{
    feed f;
    feed_init(&f);
    feed_fixture(&f, "pbx1", "09-queue-actions-and-lists.ami");
    json_t *q = model_queue_json(f.m, NULL, "sales");
    assert_non_null(q);
    /* Agent Dee (504) was added then removed; Ann and Ben remain from the QueueStatus list. */
    assert_int_equal(json_array_size(json_object_get(q, "members")), 2);
    assert_int_equal(json_integer_value(json_object_get(q, "waiting")), 0);
    assert_string_equal(json_string_value(json_object_get(q, "strategy")), "ringall");
    json_decref(q);
    assert_null(model_queue_json(f.m, NULL, "nosuchqueue"));
    assert_null(model_queue_json(f.m, "otherpbx", "sales"));
    json_t *qs = model_queues_json(f.m, "pbx1");
    assert_int_equal(json_array_size(qs), 2);
    json_decref(qs);

    feed_fixture(&f, "pbx1", "07-queue-call-answered-agent-complete.ami");
    json_t *a = model_agent_json(f.m, NULL, "502");
    assert_non_null(a);
    json_t *last = json_object_get(a, "lastCall");
    assert_string_equal(json_string_value(json_object_get(last, "callId")), "1795478344.10");
    assert_string_equal(json_string_value(json_object_get(last, "disposition")), "ANSWERED");
    assert_true(json_is_null(json_object_get(a, "phoneNumber"))); /* the call is over */
    json_t *aq = json_object_get(a, "queues");
    assert_int_equal(json_array_size(aq), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(aq, 0), "status")),
                        "notInUse");
    json_decref(a);
    assert_null(model_agent_json(f.m, NULL, "999"));
    json_t *calls = model_calls_json(f.m, NULL);
    assert_int_equal(json_array_size(calls), 0);
    json_decref(calls);

    feed_fixture(&f, "pbx1", "15-pjsip-phone-register-and-call.ami");
    a = model_agent_json(f.m, "pbx1", "1001");
    assert_non_null(a);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a, "extensionStatus"), "status")),
        "idle");
    json_decref(a);
    json_t *all = model_agents_json(f.m, NULL);
    assert_int_equal(json_array_size(all), 7); /* 501-504 (queues), 1001-1003 (hints) */
    json_decref(all);
    json_t *snap = model_snapshot_json(f.m, "502");
    assert_int_equal(json_array_size(json_object_get(snap, "agents")), 1);
    json_decref(snap);
    feed_free(&f);
}

static void test_model_call_query_during_a_call(void **state)
{
    feed f;
    feed_init(&f);
    feed_str_events(&f, setup);
    json_t *c = model_call_json(f.m, NULL, "1000.1");
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "direction")), "inbound");
    assert_string_equal(json_string_value(json_object_get(c, "from")), "34911000111");
    assert_string_equal(json_string_value(json_object_get(c, "to")), "34911222333");
    assert_int_equal(json_array_size(json_object_get(c, "channels")), 2);
    json_decref(c);
    assert_null(model_call_json(f.m, NULL, "nosuch"));
    json_t *all = model_calls_json(f.m, "pbx1");
    assert_int_equal(json_array_size(all), 2);
    json_decref(all);
    json_t *pbxs = model_pbxs_json(f.m);
    assert_int_equal(json_array_size(pbxs), 1);
    json_decref(pbxs);
    feed_free(&f);
}

static void test_model_originate_failure_goes_to_the_expected_agent(void **state)
{
    feed f;
    feed_init(&f);
    assert_int_equal(model_expect_originate(f.m, "pbx1", "rec-3", "1001"), 0);
    feed_fixture(&f, "pbx1", "06-originate-failures.ami");
    assert_int_equal(feed_count(&f, "originateFailed"), 3);
    long i = feed_find(&f, "originateFailed", 0);
    /* rec-2: PJSIP/1003 unregistered, no expectation: the dialled phone's extension. */
    assert_string_equal(json_string_value(json_object_get(f.json[i], "agent")), "1003");
    assert_string_equal(feed_str(&f, (size_t)i, "actionId"), "rec-2");
    i = feed_find(&f, "originateFailed", (size_t)i + 1);
    assert_string_equal(feed_str(&f, (size_t)i, "actionId"), "rec-3");
    assert_string_equal(json_string_value(json_object_get(f.json[i], "agent")), "1001");
    assert_string_equal(feed_str(&f, (size_t)i, "reason"), "busy");
    i = feed_find(&f, "originateFailed", (size_t)i + 1);
    assert_null(json_object_get(f.json[i], "agent")); /* Local/12345@...: nobody */
    feed_free(&f);
}

/* An agent's click-to-dial out through the trunk, recorded, put on hold for 30 s, transferred. */
static const char *const outbound =
    "Event: ExtensionStatus" CRLF "Exten: 1001" CRLF "Context: from-internal" CRLF
    "Hint: PJSIP/1001" CRLF "Status: 0" CRLF CRLF "Event: Newchannel" CRLF
    "Timestamp: 1795478400.000" CRLF "Channel: PJSIP/1001-00000001" CRLF "ChannelState: 6" CRLF
    "CallerIDNum: 1001" CRLF "Exten: s" CRLF "Uniqueid: 5000.1" CRLF "Linkedid: 5000.1" CRLF CRLF
    "Event: VarSet" CRLF "Uniqueid: 5000.1" CRLF "Variable: MIXMONITOR_FILENAME" CRLF
    "Value: /var/spool/asterisk/monitor/5000.1.wav" CRLF CRLF "Event: DialBegin" CRLF
    "Timestamp: 1795478401.000" CRLF "Uniqueid: 5000.1" CRLF "DestUniqueid: 5000.2" CRLF
    "DialString: 34600111222@carrier" CRLF CRLF "Event: Newchannel" CRLF
    "Timestamp: 1795478401.000" CRLF "Channel: PJSIP/carrier-00000002" CRLF "ChannelState: 0" CRLF
    "CallerIDNum: 1001" CRLF "Exten: 34600111222" CRLF "Uniqueid: 5000.2" CRLF
    "Linkedid: 5000.1" CRLF CRLF "Event: Newstate" CRLF "Timestamp: 1795478405.000" CRLF
    "Channel: PJSIP/carrier-00000002" CRLF "ChannelState: 6" CRLF "Uniqueid: 5000.2" CRLF
    "Linkedid: 5000.1" CRLF CRLF "Event: NewConnectedLine" CRLF "Timestamp: 1795478405.000" CRLF
    "Uniqueid: 5000.1" CRLF "Channel: PJSIP/1001-00000001" CRLF "ChannelState: 6" CRLF
    "CallerIDNum: 1001" CRLF "ConnectedLineNum: 34600111222" CRLF
    "ConnectedLineName: Customer" CRLF CRLF "Event: BridgeCreate" CRLF
    "BridgeUniqueid: b-1" CRLF CRLF "Event: BridgeEnter" CRLF "BridgeUniqueid: b-1" CRLF
    "Uniqueid: 5000.1" CRLF CRLF "Event: BridgeEnter" CRLF "BridgeUniqueid: b-1" CRLF
    "Uniqueid: 5000.2" CRLF CRLF "Event: Hold" CRLF "Timestamp: 1795478410.000" CRLF
    "Uniqueid: 5000.2" CRLF CRLF "Event: Unhold" CRLF "Timestamp: 1795478440.000" CRLF
    "Uniqueid: 5000.2" CRLF CRLF "Event: BlindTransfer" CRLF "Timestamp: 1795478450.000" CRLF
    "Result: Success" CRLF "TransfererChannel: PJSIP/1001-00000001" CRLF
    "TransfererUniqueid: 5000.1" CRLF "TransfererLinkedid: 5000.1" CRLF
    "TransfereeChannel: PJSIP/carrier-00000002" CRLF "Extension: 200" CRLF
    "Context: from-internal" CRLF CRLF "Event: BridgeLeave" CRLF "BridgeUniqueid: b-1" CRLF
    "Uniqueid: 5000.1" CRLF CRLF "Event: Hangup" CRLF "Timestamp: 1795478450.500" CRLF
    "Uniqueid: 5000.1" CRLF CRLF "Event: BridgeLeave" CRLF "BridgeUniqueid: b-1" CRLF
    "Uniqueid: 5000.2" CRLF CRLF "Event: BridgeDestroy" CRLF "BridgeUniqueid: b-1" CRLF CRLF
    "Event: Hangup" CRLF "Timestamp: 1795478465.250" CRLF "Uniqueid: 5000.2" CRLF CRLF;

static void test_model_outbound_call_with_hold_recording_and_transfer(void **state)
{
    feed f;
    model_stats st;
    feed_init(&f);
    feed_str_events(&f, outbound);
    long i = feed_find(&f, "phoneNumber", 0);
    assert_true(i >= 0);
    assert_string_equal(json_string_value(json_object_get(f.json[i], "agent")), "1001");
    assert_string_equal(feed_str(&f, (size_t)i, "number"), "34600111222");
    assert_int_equal(feed_count(&f, "call.bridged"), 1);
    assert_int_equal(feed_count(&f, "call.transferred"), 1);
    i = feed_find(&f, "call.transferred", 0);
    assert_string_equal(feed_str(&f, (size_t)i, "kind"), "blind");
    assert_string_equal(feed_str(&f, (size_t)i, "extension"), "200");
    /* The agent's phone leaves: phoneNumber null, before the call ends. */
    long clear = feed_find(&f, "phoneNumber", (size_t)i);
    assert_true(clear > i);
    assert_true(json_is_null(json_object_get(feed_details(&f, (size_t)clear), "number")));
    i = feed_find(&f, "call.ended", 0);
    assert_true(i > clear);
    const json_t *d = feed_details(&f, (size_t)i);
    assert_string_equal(json_string_value(json_object_get(d, "direction")), "outbound");
    assert_string_equal(json_string_value(json_object_get(d, "from")), "1001");
    assert_string_equal(json_string_value(json_object_get(d, "to")), "34600111222");
    assert_string_equal(json_string_value(json_object_get(d, "start")), "2026-11-24T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(d, "end")), "2026-11-24T00:01:05.250Z");
    assert_int_equal(json_integer_value(json_object_get(d, "duration")), 65);
    /* Answered when the far end picked up (Newstate Up at :05), not when the phone was rung. */
    assert_string_equal(json_string_value(json_object_get(d, "answer")),
                        "2026-11-24T00:00:05.000Z");
    assert_int_equal(json_integer_value(json_object_get(d, "billableSeconds")), 60);
    assert_int_equal(json_integer_value(json_object_get(d, "onHoldTime")), 30);
    assert_string_equal(json_string_value(json_object_get(d, "recording")),
                        "/var/spool/asterisk/monitor/5000.1.wav");
    assert_string_equal(json_string_value(json_object_get(d, "agent")), "1001");
    assert_true(json_is_true(json_object_get(d, "transferred")));
    model_stats_get(f.m, &st);
    assert_int_equal(st.calls, 0);
    assert_int_equal(st.bridges, 0);
    feed_free(&f);
}

/* Builds the CoreShowChannel items Asterisk would list for the model's live channels. */
static void list_live_channels(feed *f, sb_buf *out)
{
    json_t *calls = model_calls_json(f->m, NULL);
    size_t i, j;
    json_t *call, *ch;
    json_array_foreach(calls, i, call)
    {
        json_array_foreach(json_object_get(call, "channels"), j, ch)
        {
            const char *cid = json_string_value(json_object_get(ch, "callerIdNum"));
            const char *bid = json_string_value(json_object_get(ch, "bridgeId"));
            assert_int_equal(
                sb_buf_printf(out,
                              "Event: CoreShowChannel\r\nActionID: rs\r\nChannel: %s\r\n"
                              "ChannelState: %d\r\nCallerIDNum: %s\r\nUniqueid: %s\r\n"
                              "Linkedid: %s\r\nDuration: 00:00:01\r\nBridgeId: %s\r\n\r\n",
                              json_string_value(json_object_get(ch, "channel")),
                              (int)json_integer_value(json_object_get(ch, "stateCode")),
                              cid ? cid : "<unknown>",
                              json_string_value(json_object_get(ch, "uniqueId")),
                              json_string_value(json_object_get(call, "callId")), bid ? bid : ""),
                0);
        }
    }
    json_decref(calls);
    assert_int_equal(sb_buf_puts(out, "Event: CoreShowChannelsComplete\r\nActionID: rs\r\n"
                                      "EventList: Complete\r\nListItems: 0\r\n\r\n"),
                     0);
}

static void test_model_reconnect_mid_queue_call_changes_nothing(void **state)
{
    feed straight, split;
    size_t len;
    char *data = tu_read_file(tu_fixture("07-queue-call-answered-agent-complete.ami"), &len);
    assert_non_null(data);
    const char *cut = strstr(data, "Event: AgentComplete");
    assert_non_null(cut);
    size_t head = (size_t)(cut - data);

    feed_init(&straight);
    feed_text(&straight, "pbx1", data, len, true);

    feed_init(&split);
    feed_text(&split, "pbx1", data, head, true);
    size_t before = split.n;
    /* The connection drops while agent 502 talks; the new session lists what is live. */
    sb_buf relist;
    sb_buf_init(&relist, 1 << 20);
    list_live_channels(&split, &relist);
    assert_int_equal(model_begin_resync(split.m, "pbx1"), 0);
    feed_text(&split, "pbx1", relist.data, relist.len, false);
    assert_int_equal(model_end_resync(split.m, "pbx1"), 0);
    assert_int_equal(split.n, before); /* nothing changed, nothing said */
    feed_text(&split, "pbx1", data + head, len - head, false);

    /* The same events in the same order as without the reconnect. */
    assert_int_equal(split.n, straight.n);
    for (size_t i = 0; i < split.n; i++)
        assert_string_equal(bus_event_type(split.evs[i]), bus_event_type(straight.evs[i]));
    assert_int_equal(feed_count(&split, "call.ended"), 1);
    sb_buf_free(&relist);
    free(data);
    feed_free(&straight);
    feed_free(&split);
}

static void test_model_resync_of_waiting_callers(void **state)
{
    feed f;
    feed_init(&f);
    feed_str_events(&f, "Event: QueueCallerJoin" CRLF "Queue: sales" CRLF "Uniqueid: 7.1" CRLF
                        "Linkedid: 7.1" CRLF "Channel: PJSIP/carrier-1" CRLF "Position: 1" CRLF
                        "Count: 1" CRLF CRLF);
    assert_int_equal(feed_count(&f, "queueCount"), 1);
    feed_clear(&f);
    /* Reconnect: the caller is gone, another one waits since 42 s. */
    assert_int_equal(model_begin_resync(f.m, "pbx1"), 0);
    feed_str_events(&f, "Event: QueueParams" CRLF "Queue: sales" CRLF "Calls: 1" CRLF CRLF
                        "Event: QueueEntry" CRLF "Queue: sales" CRLF "Position: 1" CRLF
                        "Channel: PJSIP/carrier-2" CRLF "Uniqueid: 8.1" CRLF
                        "CallerIDNum: 34600000002" CRLF "Wait: 42" CRLF CRLF
                        "Event: QueueStatusComplete" CRLF "EventList: Complete" CRLF CRLF);
    assert_int_equal(model_end_resync(f.m, "pbx1"), 0);
    /* Still one caller: the count did not change, so nothing is said about it. */
    assert_int_equal(f.n, 0);
    json_t *q = model_queue_json(f.m, "pbx1", "sales");
    json_t *callers = json_object_get(q, "callers");
    assert_int_equal(json_array_size(callers), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(callers, 0), "uniqueId")),
                        "8.1");
    json_decref(q);
    /* A QueueStatus filtered to another queue leaves sales alone. */
    assert_int_equal(model_begin_resync(f.m, "pbx1"), 0);
    feed_str_events(&f, "Event: QueueParams" CRLF "Queue: support" CRLF "Calls: 0" CRLF CRLF
                        "Event: QueueStatusComplete" CRLF "EventList: Complete" CRLF CRLF);
    assert_int_equal(model_end_resync(f.m, "pbx1"), 0);
    assert_int_equal(f.n, 0);
    /* Next reconnect: nobody waits any more. */
    assert_int_equal(model_begin_resync(f.m, "pbx1"), 0);
    feed_str_events(&f, "Event: QueueParams" CRLF "Queue: sales" CRLF "Calls: 0" CRLF CRLF
                        "Event: QueueStatusComplete" CRLF "EventList: Complete" CRLF CRLF);
    assert_int_equal(model_end_resync(f.m, "pbx1"), 0);
    assert_int_equal(f.n, 1);
    assert_string_equal(bus_event_type(f.evs[0]), "queueCount");
    assert_int_equal(json_integer_value(json_object_get(feed_details(&f, 0), "count")), 0);
    feed_free(&f);
}

typedef struct stream_rec {
    int calls;
    uint64_t last_seq;
    bool gap;
    bool foreign; /* saw an event not meant for the agent */
} stream_rec;

static void on_entry(void *ud, const bus_entry *e)
{
    stream_rec *r = ud;
    if (e->seq != r->last_seq + 1)
        r->gap = true;
    r->last_seq = e->seq;
    r->calls++;
    bool mine = false;
    for (size_t i = 0; i < bus_event_agent_count(e->ev); i++)
        if (strcmp(bus_event_agent(e->ev, i), "502") == 0)
            mine = true;
    if (!mine)
        r->foreign = true;
}

static void test_model_feeds_the_bus_agent_stream(void **state)
{
    feed f;
    bus *b = bus_new(NULL);
    bus_stream *s;
    stream_rec r = {0};
    uint64_t seq = 0;
    assert_non_null(b);
    assert_int_equal(bus_stream_open(b, "502", &s), 0);
    bus_sub *sub = bus_subscribe(s, on_entry, &r);
    assert_non_null(sub);
    feed_init(&f);
    feed_fixture(&f, "pbx1", "16-pjsip-trunk-inbound-to-fastagi-queue.ami");
    for (size_t i = 0; i < f.n; i++)
        assert_int_equal(bus_publish(b, f.evs[i], &seq), 0);
    assert_int_equal(seq, f.n);
    /* 502 sees its phoneNumber (set, cleared), member statuses, agentComplete and the call
     * events of the call it took; never another agent's events; gap-free. */
    assert_true(r.calls >= 6);
    assert_true((size_t)r.calls < f.n);
    assert_false(r.gap);
    assert_false(r.foreign);
    assert_int_equal(bus_stream_last_seq(s), (uint64_t)r.calls);
    bus_unsubscribe(sub);
    bus_stream_close(s);
    bus_free(b);
    feed_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_resync_emits_exactly_the_difference),
        cmocka_unit_test(test_model_resync_without_complete_sweeps_nothing),
        cmocka_unit_test(test_model_unchanged_states_are_not_reannounced),
        cmocka_unit_test(test_model_queries_after_fixtures),
        cmocka_unit_test(test_model_call_query_during_a_call),
        cmocka_unit_test(test_model_originate_failure_goes_to_the_expected_agent),
        cmocka_unit_test(test_model_feeds_the_bus_agent_stream),
        cmocka_unit_test(test_model_outbound_call_with_hold_recording_and_transfer),
        cmocka_unit_test(test_model_reconnect_mid_queue_call_changes_nothing),
        cmocka_unit_test(test_model_resync_of_waiting_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
