/* test_ami_codec.c: the AMI codec against every recorded transcript, fed in every way. */
#include "testutil.h"

#include "ami/codec.h"
#include "core/buf.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fixtures[] = {
    "01-login-ping-logoff.ami",
    "02-login-bad-secret.ami",
    "03-login-md5-challenge.ami",
    "04-permission-denied-and-unknown-action.ami",
    "05-originate-success-full-call.ami",
    "06-originate-failures.ami",
    "07-queue-call-answered-agent-complete.ami",
    "08-queue-call-abandoned.ami",
    "09-queue-actions-and-lists.ami",
    "10-event-lists-during-call.ami",
    "11-asyncagi.ami",
    "12-fastagi-call-events.ami",
    "13-filter-and-events-mask.ami",
    "14-redirect-and-hangup-actions.ami",
    "15-pjsip-phone-register-and-call.ami",
    "16-pjsip-trunk-inbound-to-fastagi-queue.ami",
};
#define NFIXTURES (sizeof fixtures / sizeof *fixtures)

/* Appends a canonical text form of p to out, so that two parses can be compared exactly. */
static void describe(sb_buf *out, const ami_packet *p)
{
    assert_int_equal(sb_buf_printf(out, "[%d:%.*s]", (int)p->kind, (int)p->name.len, p->name.ptr),
                     0);
    for (size_t i = 0; i < p->count; i++)
        sb_buf_printf(out, "<%.*s=%.*s>", (int)p->headers[i].key.len, p->headers[i].key.ptr,
                      (int)p->headers[i].value.len, p->headers[i].value.ptr);
    sb_buf_puts(out, "\n");
}

/* Parses data fed in chunks of 1..maxchunk bytes (maxchunk 0: all at once). Returns packets. */
static size_t parse_all(const char *data, size_t len, size_t maxchunk, bool banner, sb_buf *out,
                        size_t *errors)
{
    ami_codec c;
    ami_packet p;
    size_t off = 0, packets = 0;
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, banner), 0);
    while (off < len) {
        size_t want = maxchunk ? 1 + tu_rand() % maxchunk : len - off;
        if (want > len - off)
            want = len - off;
        size_t took = ami_codec_feed(&c, data + off, want);
        off += took;
        int rc;
        while ((rc = ami_codec_next(&c, &p)) != AMI_NEED_MORE) {
            if (rc < 0) {
                if (errors)
                    (*errors)++;
                continue;
            }
            packets++;
            describe(out, &p);
        }
    }
    assert_int_equal(c.end - c.start, 0); /* every fixture ends on a packet boundary */
    ami_codec_free(&c);
    return packets;
}

/* Packets in a transcript counted independently: the banner plus one per blank line. */
static size_t count_terminators(const char *data, size_t len)
{
    size_t n = 1;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(data + i, "\r\n\r\n", 4) == 0)
            n++;
    return n;
}

static void test_codec_parses_every_fixture_in_random_chunks(void **state)
{
    (void)state;
    for (size_t f = 0; f < NFIXTURES; f++) {
        size_t len, errors = 0;
        char *data = tu_read_file(tu_fixture(fixtures[f]), &len);
        assert_non_null(data);
        sb_buf whole, chunked;
        sb_buf_init(&whole, 1 << 24);
        sb_buf_init(&chunked, 1 << 24);
        size_t n = parse_all(data, len, 0, true, &whole, &errors);
        assert_int_equal(errors, 0);
        assert_int_equal(n, count_terminators(data, len));
        for (uint64_t seed = 1; seed <= 40; seed++) {
            tu_seed(seed * 7919 + f);
            sb_buf_reset(&chunked);
            size_t maxchunk = seed < 10 ? seed : 1 + tu_rand() % 4096;
            assert_int_equal(parse_all(data, len, maxchunk, true, &chunked, &errors), n);
            assert_int_equal(errors, 0);
            assert_int_equal(chunked.len, whole.len);
            assert_memory_equal(chunked.data, whole.data, whole.len);
        }
        sb_buf_free(&whole);
        sb_buf_free(&chunked);
        free(data);
    }
}

static void test_codec_splits_at_every_byte(void **state)
{
    (void)state;
    size_t len;
    char *data = tu_read_file(tu_fixture("07-queue-call-answered-agent-complete.ami"), &len);
    assert_non_null(data);
    sb_buf whole, split;
    sb_buf_init(&whole, 1 << 24);
    sb_buf_init(&split, 1 << 24);
    size_t n = parse_all(data, len, 0, true, &whole, NULL);
    size_t m = parse_all(data, len, 1, true, &split, NULL); /* one byte at a time */
    assert_int_equal(n, m);
    assert_int_equal(n, count_terminators(data, len));
    assert_memory_equal(whole.data, split.data, whole.len);
    sb_buf_free(&whole);
    sb_buf_free(&split);
    free(data);
}

/* Finds the first packet in a fixture for which pred holds. */
static ami_packet *find_packet(const char *fixture, bool (*pred)(const ami_packet *))
{
    size_t len;
    char *data = tu_read_file(tu_fixture(fixture), &len);
    ami_codec c;
    ami_packet p, *found = NULL;
    assert_non_null(data);
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, true), 0);
    assert_int_equal(ami_codec_feed(&c, data, len), len);
    while (!found && ami_codec_next(&c, &p) == AMI_PACKET)
        if (pred(&p))
            found = ami_packet_dup(&p);
    ami_codec_free(&c);
    free(data);
    assert_non_null(found);
    return found;
}

static bool is_banner(const ami_packet *p)
{
    return p->kind == AMI_PACKET_BANNER;
}
static bool is_uptime(const ami_packet *p)
{
    return ami_packet_is(p, "ActionID", "rec-5");
}
static bool is_concise(const ami_packet *p)
{
    return ami_packet_is(p, "ActionID", "rec-6");
}
static bool is_settings(const ami_packet *p)
{
    return ami_packet_is(p, "ActionID", "rec-3");
}
static bool is_auth_event(const ami_packet *p)
{
    return p->kind == AMI_PACKET_EVENT && sb_slice_eq_ci(p->name, "SuccessfulAuth");
}
static bool is_queue_complete(const ami_packet *p)
{
    return p->kind == AMI_PACKET_EVENT && sb_slice_eq_ci(p->name, "QueueStatusComplete");
}

static void test_codec_fields_of_login_ping_logoff(void **state)
{
    (void)state;
    ami_packet *b = find_packet("01-login-ping-logoff.ami", is_banner);
    assert_true(sb_slice_eq(b->name, SB_SLICE_LIT("Asterisk Call Manager/11.0.0")));
    ami_packet_free(b);

    /* Command output as Asterisk 22 sends it: repeated Output headers, in order. */
    ami_packet *up = find_packet("01-login-ping-logoff.ami", is_uptime);
    assert_int_equal(up->kind, AMI_PACKET_RESPONSE);
    assert_true(sb_slice_eq(up->name, SB_SLICE_LIT("Success")));
    assert_int_equal(up->count, 5);
    assert_true(sb_slice_eq(up->headers[3].value, SB_SLICE_LIT("System uptime: 1 second")));
    assert_true(sb_slice_eq(up->headers[4].value, SB_SLICE_LIT("Last reload: 1 second")));
    assert_true(sb_slice_eq_ci(up->headers[4].key, "output"));
    ami_packet_free(up);

    /* An empty Output value is a header with an empty value. */
    ami_packet *cc = find_packet("01-login-ping-logoff.ami", is_concise);
    assert_int_equal(cc->count, 4);
    assert_int_equal(ami_packet_get(cc, "Output")->len, 0);
    ami_packet_free(cc);

    /* Lookup ignores case; "Key: " with nothing after it is an empty value. */
    ami_packet *st = find_packet("01-login-ping-logoff.ami", is_settings);
    assert_true(sb_slice_eq(ami_packet_value(st, "asteriskversion"), SB_SLICE_LIT("22.10.1")));
    assert_non_null(ami_packet_get(st, "SYSTEMNAME"));
    assert_int_equal(ami_packet_get(st, "SystemName")->len, 0);
    assert_null(ami_packet_get(st, "NoSuchHeader"));
    ami_packet_free(st);
}

static void test_codec_values_keep_colons_and_list_fields(void **state)
{
    (void)state;
    ami_packet *ev = find_packet("06-originate-failures.ami", is_auth_event);
    assert_true(
        sb_slice_eq(ami_packet_value(ev, "EventTV"), SB_SLICE_LIT("2026-11-23T23:58:55.280+0000")));
    assert_true(
        sb_slice_eq(ami_packet_value(ev, "LocalAddress"), SB_SLICE_LIT("IPV4/TCP/127.0.0.1/5038")));
    ami_packet_free(ev);

    ami_packet *qc = find_packet("04-permission-denied-and-unknown-action.ami", is_queue_complete);
    assert_true(ami_packet_is(qc, "EventList", "complete"));
    assert_true(sb_slice_eq(ami_packet_value(qc, "ListItems"), SB_SLICE_LIT("5")));
    ami_packet_free(qc);
}

static void test_codec_keeps_duplicate_headers_in_order(void **state)
{
    (void)state;
    static const char in[] =
        "Event: VarSet\r\nVariable: A=1\r\nvariable: B=2\r\nVARIABLE: C=\r\n\r\n";
    ami_codec c;
    ami_packet p;
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, false), 0);
    ami_codec_feed(&c, in, sizeof in - 1);
    assert_int_equal(ami_codec_next(&c, &p), AMI_PACKET);
    assert_int_equal(p.count, 4);
    assert_true(sb_slice_eq(p.headers[1].value, SB_SLICE_LIT("A=1")));
    assert_true(sb_slice_eq(p.headers[2].value, SB_SLICE_LIT("B=2")));
    assert_true(sb_slice_eq(p.headers[3].value, SB_SLICE_LIT("C=")));
    assert_true(sb_slice_eq(ami_packet_value(&p, "variable"), SB_SLICE_LIT("A=1")));
    assert_int_equal(ami_codec_next(&c, &p), AMI_NEED_MORE);
    ami_codec_free(&c);
}

static void test_codec_turns_legacy_follows_into_output(void **state)
{
    (void)state;
    /* Pre-14 Command answer: raw text (here with a colon) up to --END COMMAND--. */
    static const char in[] = "Response: Follows\r\nPrivilege: Command\r\nActionID: x1\r\n"
                             "System uptime: 1 second\nLast reload: 1 second\n\n"
                             "--END COMMAND--\r\n\r\n"
                             "Response: Success\r\nActionID: x2\r\n\r\n";
    ami_codec c;
    ami_packet p;
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, false), 0);
    ami_codec_feed(&c, in, sizeof in - 1);
    assert_int_equal(ami_codec_next(&c, &p), AMI_PACKET);
    assert_true(sb_slice_eq(p.name, SB_SLICE_LIT("Follows")));
    assert_true(sb_slice_eq(ami_packet_value(&p, "ActionID"), SB_SLICE_LIT("x1")));
    assert_int_equal(p.count, 6);
    assert_true(sb_slice_eq_ci(p.headers[3].key, "Output"));
    assert_true(sb_slice_eq(p.headers[3].value, SB_SLICE_LIT("System uptime: 1 second")));
    assert_true(sb_slice_eq(p.headers[4].value, SB_SLICE_LIT("Last reload: 1 second")));
    assert_int_equal(p.headers[5].value.len, 0);
    assert_int_equal(ami_codec_next(&c, &p), AMI_PACKET);
    assert_true(sb_slice_eq(ami_packet_value(&p, "ActionID"), SB_SLICE_LIT("x2")));
    ami_codec_free(&c);
}

/* Feeds text and collects results: 'P' per packet (with its ActionID), 'E' per error. */
static void run_script(ami_limits lim, const char *in, size_t len, size_t chunk, sb_buf *log)
{
    ami_codec c;
    ami_packet p;
    size_t off = 0;
    assert_int_equal(ami_codec_init(&c, lim, false), 0);
    while (off < len) {
        size_t want = chunk && chunk < len - off ? chunk : len - off;
        off += ami_codec_feed(&c, in + off, want);
        int rc;
        while ((rc = ami_codec_next(&c, &p)) != AMI_NEED_MORE) {
            if (rc < 0) {
                sb_buf_printf(log, "E%s ", rc == SB_ETOOBIG ? "big" : "proto");
            } else {
                sb_slice id = ami_packet_value(&p, "ActionID");
                sb_buf_printf(log, "P%.*s ", (int)id.len, id.ptr);
            }
        }
    }
    ami_codec_free(&c);
}

static void expect_script(ami_limits lim, const char *in, const char *want)
{
    size_t chunks[] = {0, 1, 2, 3, 7, 64};
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        sb_buf log;
        sb_buf_init(&log, 1 << 20);
        run_script(lim, in, strlen(in), chunks[i], &log);
        bool same = strcmp(log.data ? log.data : "", want) == 0;
        if (!same)
            print_error("chunk %zu: got '%s' want '%s'\n", chunks[i], log.data, want);
        sb_buf_free(&log);
        assert_true(same);
    }
}

static void test_codec_resyncs_after_garbage(void **state)
{
    (void)state;
    ami_limits lim = AMI_LIMITS_DEFAULT;
    /* A stray line between packets costs only itself. */
    expect_script(lim,
                  "Response: Success\r\nActionID: 1\r\n\r\n\x01\xfe garbage\r\n"
                  "Response: Success\r\nActionID: 2\r\n\r\n",
                  "P1 Eproto P2 ");
    /* A broken line inside a packet drops that packet, up to its blank line. */
    expect_script(lim,
                  "Response: Success\r\nActionID: 1\r\nno colon here\r\nMore: x\r\n\r\n"
                  "Response: Success\r\nActionID: 2\r\n\r\n",
                  "Eproto P2 ");
    /* Blank lines between packets are harmless; bare LF line ends are accepted. */
    expect_script(lim, "\r\n\r\nResponse: Success\nActionID: 3\n\n\r\n", "P3 ");
}

static void test_codec_enforces_limits_and_continues(void **state)
{
    (void)state;
    ami_limits lim = {256, 4, 64};
    sb_buf in;
    sb_buf_init(&in, 1 << 20);
    /* Too many headers. */
    sb_buf_puts(&in, "Event: A\r\nActionID: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n");
    sb_buf_puts(&in, "Response: Success\r\nActionID: 2\r\n\r\n");
    /* A line over 64 bytes. */
    sb_buf_puts(&in, "Event: A\r\nLong: ");
    for (int i = 0; i < 100; i++)
        sb_buf_puts(&in, "x");
    sb_buf_puts(&in, "\r\n\r\n");
    sb_buf_puts(&in, "Response: Success\r\nActionID: 3\r\n\r\n");
    expect_script(lim, in.data, "Ebig P2 Ebig P3 ");

    /* A packet over 256 bytes made of short lines. */
    ami_limits lim2 = {256, 16, 64};
    sb_buf_reset(&in);
    sb_buf_puts(&in, "Event: A\r\n");
    for (int i = 0; i < 5; i++)
        sb_buf_puts(&in, "K: vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n");
    sb_buf_puts(&in, "\r\n");
    sb_buf_puts(&in, "Response: Success\r\nActionID: 4\r\n\r\n");
    expect_script(lim2, in.data, "Ebig P4 ");

    /* A line that never ends is reported once, then skipped until the next blank line. */
    sb_buf_reset(&in);
    sb_buf_puts(&in, "Event: A\r\nX: ");
    for (int i = 0; i < 5000; i++)
        sb_buf_puts(&in, "y");
    sb_buf_puts(&in, "\r\n\r\nResponse: Success\r\nActionID: 5\r\n\r\n");
    expect_script(lim, in.data, "Ebig P5 ");
    sb_buf_free(&in);
}

static void test_codec_counts_errors(void **state)
{
    (void)state;
    static const char in[] = "junk\r\nResponse: Success\r\nActionID: 1\r\n\r\n";
    ami_codec c;
    ami_packet p;
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, false), 0);
    ami_codec_feed(&c, in, sizeof in - 1);
    assert_int_equal(ami_codec_next(&c, &p), SB_EPROTO);
    assert_int_equal(ami_codec_next(&c, &p), AMI_PACKET);
    assert_int_equal(ami_codec_next(&c, &p), AMI_NEED_MORE);
    assert_int_equal(c.stats.syntax, 1);
    assert_int_equal(c.stats.too_big, 0);
    assert_int_equal(c.stats.packets, 1);
    assert_int_equal(c.stats.bytes, sizeof in - 1);
    ami_codec_free(&c);
    ami_limits bad = {0, 1, 1};
    assert_int_equal(ami_codec_init(&c, bad, false), SB_EINVAL);
}

static void test_codec_space_never_empty_after_need_more(void **state)
{
    (void)state;
    ami_limits lim = {128, 8, 128};
    ami_codec c;
    ami_packet p;
    char *ptr;
    size_t room, fed = 0;
    assert_int_equal(ami_codec_init(&c, lim, false), 0);
    /* An endless packet with no line ends: the buffer must never wedge full. */
    for (int i = 0; i < 1000; i++) {
        ami_codec_space(&c, &ptr, &room);
        assert_true(room > 0);
        memset(ptr, 'z', room);
        ami_codec_commit(&c, room);
        fed += room;
        while (ami_codec_next(&c, &p) != AMI_NEED_MORE)
            ;
    }
    assert_true(fed > 1000);
    assert_int_equal(c.stats.too_big, 1);
    static const char tail[] = "\r\n\r\nResponse: Success\r\n\r\n";
    ami_codec_feed(&c, tail, sizeof tail - 1);
    assert_int_equal(ami_codec_next(&c, &p), AMI_PACKET);
    ami_codec_free(&c);
}

static void test_msg_serializes_with_crlf_and_rejects_injection(void **state)
{
    (void)state;
    ami_msg m;
    const char *data;
    size_t len;
    ami_msg_init(&m, "Action", "Originate");
    ami_msg_add(&m, "Channel", "Local/100@from-internal");
    ami_msg_add(&m, "Variable", "SB_JOB=job-42");
    ami_msg_add(&m, "Variable", "SB_TAG=demo");
    ami_msg_addf(&m, "Timeout", "%d", 5000);
    assert_int_equal(ami_msg_finish(&m, &data, &len), 0);
    static const char want[] = "Action: Originate\r\nChannel: Local/100@from-internal\r\n"
                               "Variable: SB_JOB=job-42\r\nVariable: SB_TAG=demo\r\n"
                               "Timeout: 5000\r\n\r\n";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(data, want, len);
    ami_msg_free(&m);

    ami_msg_init(&m, "Action", "Originate");
    ami_msg_add(&m, "Channel", "Local/100\r\nAction: Hangup");
    ami_msg_add(&m, "Exten", "100");
    assert_int_equal(ami_msg_finish(&m, &data, &len), SB_EINVAL);
    ami_msg_free(&m);

    ami_msg_init(&m, "Action", "Ping");
    ami_msg_add(&m, "Bad: Key", "x");
    assert_int_equal(ami_msg_finish(&m, &data, &len), SB_EINVAL);
    ami_msg_free(&m);

    ami_msg_init(&m, "Action", "Ping");
    ami_msg_add(&m, "Lf", "a\nb");
    assert_int_equal(ami_msg_finish(&m, &data, &len), SB_EINVAL);
    ami_msg_free(&m);
}

static void test_msg_round_trips_through_codec(void **state)
{
    (void)state;
    ami_msg m;
    const char *data;
    size_t len;
    ami_codec c;
    ami_packet p;
    ami_msg_init(&m, "Action", "Filter");
    ami_msg_add(&m, "Filter", "Event: Hangup");
    ami_msg_add(&m, "Empty", "");
    assert_int_equal(ami_msg_finish(&m, &data, &len), 0);
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, false), 0);
    ami_codec_feed(&c, data, len);
    assert_int_equal(ami_codec_next(&c, &p), AMI_PACKET);
    assert_int_equal(p.kind, AMI_PACKET_ACTION);
    assert_true(sb_slice_eq(p.name, SB_SLICE_LIT("Filter")));
    assert_true(sb_slice_eq(ami_packet_value(&p, "Filter"), SB_SLICE_LIT("Event: Hangup")));
    assert_int_equal(ami_packet_get(&p, "Empty")->len, 0);
    ami_packet *d = ami_packet_dup(&p);
    ami_codec_free(&c); /* the copy must not depend on the codec's buffer */
    assert_true(sb_slice_eq(ami_packet_value(d, "filter"), SB_SLICE_LIT("Event: Hangup")));
    assert_true(sb_slice_eq(d->name, SB_SLICE_LIT("Filter")));
    ami_packet_free(d);
    ami_msg_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_parses_every_fixture_in_random_chunks),
        cmocka_unit_test(test_codec_splits_at_every_byte),
        cmocka_unit_test(test_codec_fields_of_login_ping_logoff),
        cmocka_unit_test(test_codec_values_keep_colons_and_list_fields),
        cmocka_unit_test(test_codec_keeps_duplicate_headers_in_order),
        cmocka_unit_test(test_codec_turns_legacy_follows_into_output),
        cmocka_unit_test(test_codec_resyncs_after_garbage),
        cmocka_unit_test(test_codec_enforces_limits_and_continues),
        cmocka_unit_test(test_codec_counts_errors),
        cmocka_unit_test(test_codec_space_never_empty_after_need_more),
        cmocka_unit_test(test_msg_serializes_with_crlf_and_rejects_injection),
        cmocka_unit_test(test_msg_round_trips_through_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
