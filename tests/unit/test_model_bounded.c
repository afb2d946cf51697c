/* test_model_bounded.c: memory is bounded. 100,000 synthetic calls go through the model, one in
 * ten shaped like fixture 16 (trunk caller, queue, two ringing agents, one answers, bridge,
 * AgentComplete, hangups, CDR), the others like fixture 05 (an Originate that answers).
 * Afterwards no channel, call, bridge or waiting caller is left and exactly 100,000 call.ended
 * events were emitted. Packets are built directly (no codec) to keep the test fast under the
 * sanitizers. */
#include "testutil.h"

#include "ami/codec.h"
#include "model/model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct counts {
    size_t total, started, ended, answered_disp, agent_complete, phone, phone_clear;
} counts;

static void count_emit(void *ud, bus_event *ev)
{
    counts *c = ud;
    const char *t = bus_event_type(ev);
    const char *text = bus_event_text(ev, NULL);
    c->total++;
    if (strcmp(t, "call.started") == 0)
        c->started++;
    else if (strcmp(t, "call.ended") == 0) {
        c->ended++;
        if (strstr(text, "\"disposition\":\"ANSWERED\""))
            c->answered_disp++;
    } else if (strcmp(t, "agentComplete") == 0)
        c->agent_complete++;
    else if (strcmp(t, "phoneNumber") == 0) {
        if (strstr(text, "\"number\":null"))
            c->phone_clear++;
        else
            c->phone++;
    }
}

/* Builds one event packet from "Key", "value" pairs (NULL-terminated) and hands it over. */
static void send(model *m, const char *name, ...)
{
    ami_header h[32];
    size_t n = 0;
    va_list ap;
    h[n].key = SB_SLICE_LIT("Event");
    h[n++].value = sb_slice_cstr(name);
    va_start(ap, name);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        h[n].key = sb_slice_cstr(k);
        h[n++].value = sb_slice_cstr(v);
    }
    va_end(ap);
    ami_packet p = {
        .kind = AMI_PACKET_EVENT, .name = sb_slice_cstr(name), .headers = h, .count = n};
    assert_int_equal(model_handle_event(m, "pbx1", &p), 0);
}

static int64_t fake_now;
static int64_t clock_cb(void *ud)
{
    (void)ud;
    return fake_now += 7;
}

static void one_call(model *m, unsigned i)
{
    char lid[32], a1[32], a2[32], b1[32], b2[32], trunk[48], l1a[48], l1b[48], l2a[48], l2b[48];
    char bridge[48];
    snprintf(lid, sizeof lid, "1795478510.%u", i * 5);
    snprintf(a1, sizeof a1, "1795478511.%u", i * 5 + 1);
    snprintf(a2, sizeof a2, "1795478511.%u", i * 5 + 2);
    snprintf(b1, sizeof b1, "1795478511.%u", i * 5 + 3);
    snprintf(b2, sizeof b2, "1795478511.%u", i * 5 + 4);
    snprintf(trunk, sizeof trunk, "PJSIP/carrier-%08x", i);
    snprintf(l1a, sizeof l1a, "Local/501@agents-%08x;1", i);
    snprintf(l1b, sizeof l1b, "Local/501@agents-%08x;2", i);
    snprintf(l2a, sizeof l2a, "Local/502@agents-%08x;1", i);
    snprintf(l2b, sizeof l2b, "Local/502@agents-%08x;2", i);
    snprintf(bridge, sizeof bridge, "bridge-%u", i);
    const char *cid = "34911222333";

    send(m, "Newchannel", "Channel", trunk, "ChannelState", "4", "CallerIDNum", cid, "Exten",
         "34911222333", "Uniqueid", lid, "Linkedid", lid, NULL);
    send(m, "Newstate", "Channel", trunk, "ChannelState", "6", "CallerIDNum", cid, "Uniqueid", lid,
         "Linkedid", lid, NULL);
    send(m, "QueueCallerJoin", "Channel", trunk, "CallerIDNum", cid, "Uniqueid", lid, "Linkedid",
         lid, "Queue", "sales", "Position", "1", "Count", "1", NULL);
    send(m, "Newchannel", "Channel", l1a, "ChannelState", "0", "Exten", "501", "Uniqueid", a1,
         "Linkedid", lid, NULL);
    send(m, "Newchannel", "Channel", l1b, "ChannelState", "4", "Exten", "501", "Uniqueid", a2,
         "Linkedid", lid, NULL);
    send(m, "AgentCalled", "Uniqueid", lid, "Linkedid", lid, "DestUniqueid", a1, "Queue", "sales",
         "Interface", "Local/501@agents/n", "MemberName", "Agent Ann", NULL);
    send(m, "DialBegin", "Uniqueid", lid, "DestUniqueid", a1, "DialString", "Local/501@agents/n",
         NULL);
    send(m, "Newchannel", "Channel", l2a, "ChannelState", "0", "Exten", "502", "Uniqueid", b1,
         "Linkedid", lid, NULL);
    send(m, "Newchannel", "Channel", l2b, "ChannelState", "4", "Exten", "502", "Uniqueid", b2,
         "Linkedid", lid, NULL);
    send(m, "AgentCalled", "Uniqueid", lid, "Linkedid", lid, "DestUniqueid", b1, "Queue", "sales",
         "Interface", "Local/502@agents/n", "MemberName", "Agent Ben", NULL);
    send(m, "DialBegin", "Uniqueid", lid, "DestUniqueid", b1, "DialString", "Local/502@agents/n",
         NULL);
    send(m, "Newstate", "Channel", l2a, "ChannelState", "6", "CallerIDNum", cid, "ConnectedLineNum",
         cid, "Uniqueid", b1, "Linkedid", lid, NULL);
    send(m, "DialEnd", "Uniqueid", lid, "DestUniqueid", b1, "DialStatus", "ANSWER", NULL);
    send(m, "DialEnd", "Uniqueid", lid, "DestUniqueid", a1, "DialStatus", "CANCEL", NULL);
    send(m, "Hangup", "Channel", l1a, "Uniqueid", a1, "Linkedid", lid, "Cause", "26", NULL);
    send(m, "QueueCallerLeave", "Channel", trunk, "Uniqueid", lid, "Linkedid", lid, "Queue",
         "sales", "Position", "1", "Count", "0", NULL);
    send(m, "AgentConnect", "Channel", trunk, "CallerIDNum", cid, "Uniqueid", lid, "Linkedid", lid,
         "DestUniqueid", b1, "Queue", "sales", "Interface", "Local/502@agents/n", "MemberName",
         "Agent Ben", "HoldTime", "1", "RingTime", "1", NULL);
    send(m, "BridgeCreate", "BridgeUniqueid", bridge, NULL);
    send(m, "BridgeEnter", "BridgeUniqueid", bridge, "Channel", l2a, "Uniqueid", b1, NULL);
    send(m, "BridgeEnter", "BridgeUniqueid", bridge, "Channel", trunk, "Uniqueid", lid, NULL);
    send(m, "Hangup", "Channel", l1b, "Uniqueid", a2, "Linkedid", lid, "Cause", "26", NULL);
    send(m, "AgentComplete", "Channel", trunk, "CallerIDNum", cid, "Uniqueid", lid, "Linkedid", lid,
         "DestUniqueid", b1, "Queue", "sales", "Interface", "Local/502@agents/n", "HoldTime", "1",
         "TalkTime", "4", "Reason", "agent", NULL);
    send(m, "Hangup", "Channel", l2b, "Uniqueid", b2, "Linkedid", lid, "Cause", "16", NULL);
    send(m, "BridgeLeave", "BridgeUniqueid", bridge, "Channel", l2a, "Uniqueid", b1, NULL);
    send(m, "Hangup", "Channel", l2a, "Uniqueid", b1, "Linkedid", lid, "Cause", "16", NULL);
    send(m, "BridgeLeave", "BridgeUniqueid", bridge, "Channel", trunk, "Uniqueid", lid, NULL);
    send(m, "BridgeDestroy", "BridgeUniqueid", bridge, NULL);
    send(m, "Hangup", "Channel", trunk, "Uniqueid", lid, "Linkedid", lid, "Cause", "16", NULL);
    send(m, "Cdr", "UniqueID", lid, "Disposition", "ANSWERED", NULL);
}

/* Fixture 05's shape: an Originate of Local/100 that answers, plays and hangs up. */
static void simple_call(model *m, unsigned i)
{
    char lid[32], u2[32], c1[48], c2[48], dev[48];
    snprintf(dev, sizeof dev, "Local/3460%07u@outbound", i);
    snprintf(lid, sizeof lid, "1795478322.%u", i * 2);
    snprintf(u2, sizeof u2, "1795478322.%u", i * 2 + 1);
    snprintf(c1, sizeof c1, "Local/100@from-internal-%08x;1", i);
    snprintf(c2, sizeof c2, "Local/100@from-internal-%08x;2", i);
    send(m, "Newchannel", "Channel", c1, "ChannelState", "0", "Exten", "100", "Uniqueid", lid,
         "Linkedid", lid, NULL);
    send(m, "Newchannel", "Channel", c2, "ChannelState", "4", "Exten", "100", "Uniqueid", u2,
         "Linkedid", lid, NULL);
    send(m, "NewCallerid", "Channel", c1, "CallerIDNum", "5551234", "CallerIDName", "Web Caller",
         "Uniqueid", lid, "Linkedid", lid, NULL);
    send(m, "DialBegin", "DestUniqueid", lid, "DialString", "100@from-internal", NULL);
    send(m, "Newstate", "Channel", c1, "ChannelState", "6", "CallerIDNum", "5551234", "Uniqueid",
         lid, "Linkedid", lid, NULL);
    send(m, "Newstate", "Channel", c2, "ChannelState", "6", "CallerIDNum", "5551234", "Uniqueid",
         u2, "Linkedid", lid, NULL);
    send(m, "DialEnd", "DestUniqueid", lid, "DialStatus", "ANSWER", NULL);
    send(m, "DeviceStateChange", "Device", dev, "State", "INUSE", NULL);
    send(m, "Hangup", "Channel", c1, "Uniqueid", lid, "Linkedid", lid, "Cause", "16", NULL);
    send(m, "Cdr", "UniqueID", lid, "Disposition", "ANSWERED", NULL);
    send(m, "Hangup", "Channel", c2, "Uniqueid", u2, "Linkedid", lid, "Cause", "16", NULL);
    send(m, "Cdr", "UniqueID", u2, "Disposition", "ANSWERED", NULL);
    send(m, "DeviceStateChange", "Device", dev, "State", "NOT_INUSE", NULL);
}

static void test_model_100k_calls_leave_the_model_empty(void **state)
{
    enum { N = 100000 };
    counts c = {0};
    model_config cfg = {.emit = count_emit, .emit_ud = &c, .now_ms = clock_cb, .id_seed = 1};
    model_stats st;
    model *m = model_new(&cfg);
    assert_non_null(m);
    fake_now = 1795478320000LL;
    /* One call in ten is a queue call (fixture 16), the rest originates (fixture 05). */
    for (unsigned i = 0; i < N; i++) {
        if (i % 10 == 0)
            one_call(m, i);
        else
            simple_call(m, i);
        if (i == N / 2) {
            /* Mid-run the model holds nothing but configuration-like state. */
            model_stats_get(m, &st);
            assert_int_equal(st.calls, 0);
        }
    }
    model_stats_get(m, &st);
    assert_int_equal(st.channels, 0);
    assert_int_equal(st.calls, 0);
    assert_int_equal(st.bridges, 0);
    assert_int_equal(st.callers, 0);
    assert_int_equal(st.devices, 0); /* 90,000 Local/<number>@outbound devices came and went */
    assert_int_equal(st.queues, 1);
    assert_int_equal(st.agents, 2); /* 501 and 502, learnt from AgentCalled */
    assert_int_equal(c.started, N);
    assert_int_equal(c.ended, N);
    assert_int_equal(c.answered_disp, N);
    assert_int_equal(c.agent_complete, N / 10);
    assert_int_equal(c.phone, N / 10);       /* 502 gets the caller once per queue call... */
    assert_int_equal(c.phone_clear, N / 10); /* ...and loses it once */
    assert_int_equal(st.events_out, c.total);
    fprintf(stderr, "100000 calls: %llu AMI events in, %llu normalized events out\n",
            (unsigned long long)st.events_in, (unsigned long long)st.events_out);
    model_free(m);
}

/* ---- chaos: fixtures with packets dropped and reordered ---- */

static size_t chaos_started, chaos_ended;
static void chaos_emit(void *ud, bus_event *ev)
{
    (void)ud;
    if (strcmp(bus_event_type(ev), "call.started") == 0)
        chaos_started++;
    else if (strcmp(bus_event_type(ev), "call.ended") == 0)
        chaos_ended++;
}

static size_t load_packets(const char *name, ami_packet **out, size_t max)
{
    size_t len, n = 0;
    char *data = tu_read_file(tu_fixture(name), &len);
    ami_codec c;
    ami_packet p;
    assert_non_null(data);
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, true), 0);
    assert_int_equal(ami_codec_feed(&c, data, len), len);
    int rc;
    while ((rc = ami_codec_next(&c, &p)) != AMI_NEED_MORE)
        if (rc == AMI_PACKET && p.kind == AMI_PACKET_EVENT && n < max)
            assert_non_null(out[n++] = ami_packet_dup(&p));
    ami_codec_free(&c);
    free(data);
    return n;
}

/* Whatever is lost, reordered or garbled, the model never crashes or leaks (ASan), and a resync
 * that finds nothing live leaves it empty with every started call ended. */
static void test_model_survives_lost_and_reordered_events(void **state)
{
    static const char *const names[] = {"05-originate-success-full-call.ami",
                                        "06-originate-failures.ami",
                                        "07-queue-call-answered-agent-complete.ami",
                                        "08-queue-call-abandoned.ami",
                                        "12-fastagi-call-events.ami",
                                        "14-redirect-and-hangup-actions.ami",
                                        "15-pjsip-phone-register-and-call.ami",
                                        "16-pjsip-trunk-inbound-to-fastagi-queue.ami"};
    static const char *const empty_lists[] = {"CoreShowChannelsComplete", "QueueStatusComplete"};
    static char longval[3000];
    static const char *const nasty[] = {"",
                                        "<unknown>",
                                        "-1",
                                        "99999999999999999999999",
                                        "Local/;",
                                        ";2",
                                        "-",
                                        "a&b&&c",
                                        "1795478344.10",
                                        "1795478510.31",
                                        "6d13c4a7-29c0-4781-96d5-127571911e6f",
                                        "00:00:xx",
                                        longval};
    memset(longval, 'x', sizeof longval - 1);
    ami_packet *pk[512];
    const ami_packet *order[512];
    model_config cfg = {.emit = chaos_emit, .id_seed = 7};
    tu_seed(2026);
    for (size_t fi = 0; fi < sizeof names / sizeof names[0]; fi++) {
        size_t n = load_packets(names[fi], pk, 512);
        for (int round = 0; round < 40; round++) {
            model *m = model_new(&cfg);
            model_stats st;
            size_t k = 0;
            assert_non_null(m);
            chaos_started = chaos_ended = 0;
            for (size_t i = 0; i < n; i++)
                if (tu_rand() % 100 >= 15) /* drop 15 % */
                    order[k++] = pk[i];
            for (size_t i = 0; i + 1 < k; i++) {
                if (tu_rand() % 100 < 10) { /* swap 10 % of neighbours */
                    const ami_packet *t = order[i];
                    order[i] = order[i + 1];
                    order[i + 1] = t;
                }
            }
            for (size_t i = 0; i < k; i++) {
                /* One packet in five gets a header value replaced by something nasty. */
                ami_header h[64];
                ami_packet mut = *order[i];
                if (tu_rand() % 5 == 0 && mut.count > 1 && mut.count <= 64) {
                    memcpy(h, mut.headers, mut.count * sizeof h[0]);
                    h[1 + tu_rand() % (mut.count - 1)].value =
                        sb_slice_cstr(nasty[tu_rand() % (sizeof nasty / sizeof nasty[0])]);
                    mut.headers = h;
                }
                assert_int_equal(model_handle_event(m, "pbx1", &mut), 0);
            }
            assert_int_equal(model_begin_resync(m, "pbx1"), 0);
            /* Asterisk lists every queue it has (QueueParams), none with members or callers. */
            json_t *qs = model_queues_json(m, "pbx1");
            size_t qi;
            json_t *q;
            json_array_foreach(qs, qi, q)
            {
                ami_header h[2] = {{SB_SLICE_LIT("Event"), SB_SLICE_LIT("QueueParams")},
                                   {SB_SLICE_LIT("Queue"),
                                    sb_slice_cstr(json_string_value(json_object_get(q, "name")))}};
                ami_packet p = {.kind = AMI_PACKET_EVENT,
                                .name = SB_SLICE_LIT("QueueParams"),
                                .headers = h,
                                .count = 2};
                assert_int_equal(model_handle_event(m, "pbx1", &p), 0);
            }
            json_decref(qs);
            for (size_t i = 0; i < 2; i++) {
                ami_header h = {SB_SLICE_LIT("Event"), sb_slice_cstr(empty_lists[i])};
                ami_packet p = {.kind = AMI_PACKET_EVENT,
                                .name = sb_slice_cstr(empty_lists[i]),
                                .headers = &h,
                                .count = 1};
                assert_int_equal(model_handle_event(m, "pbx1", &p), 0);
            }
            assert_int_equal(model_end_resync(m, "pbx1"), 0);
            model_stats_get(m, &st);
            assert_int_equal(st.channels, 0);
            assert_int_equal(st.calls, 0);
            assert_int_equal(st.bridges, 0);
            assert_int_equal(st.callers, 0);
            assert_int_equal(st.members, 0);
            assert_int_equal(chaos_started, chaos_ended);
            model_free(m);
        }
        for (size_t i = 0; i < n; i++)
            ami_packet_free(pk[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_100k_calls_leave_the_model_empty),
        cmocka_unit_test(test_model_survives_lost_and_reordered_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
