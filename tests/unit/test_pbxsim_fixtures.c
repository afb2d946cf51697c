/* test_pbxsim_fixtures.c: for each scenario, the events the simulator sends to a session are
 * compared with the matching recording in fixtures/asterisk-22.10.1: the same event names in the
 * same order, and for each event the same set of field names. Values that must differ (times,
 * Uniqueids, channel numbers, bridge ids) are not compared. Each scenario is started the way the
 * recording started it (the Originate from the .sent file) or with pbxsim_play(). */
#include "test_pbxsim_client.h"
#include "testutil.h"

#include "core/buf.h"

static uv_loop_t loop;

typedef struct pkt_list {
    ami_packet **p;
    size_t n, cap;
} pkt_list;

static void list_push(pkt_list *l, ami_packet *p)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->p = realloc(l->p, l->cap * sizeof *l->p);
    }
    l->p[l->n++] = p;
}

static void list_free(pkt_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        ami_packet_free(l->p[i]);
    free(l->p);
    memset(l, 0, sizeof *l);
}

/* Every packet of a fixture, parsed with the project's codec. */
static void load_fixture(const char *name, pkt_list *out)
{
    size_t len = 0;
    char *data = tu_read_file(tu_fixture(name), &len);
    assert_non_null(data);
    ami_codec codec;
    assert_int_equal(ami_codec_init(&codec, AMI_LIMITS_DEFAULT, true), 0);
    size_t off = 0;
    for (int guard = 0; guard < 100000; guard++) {
        ami_packet p;
        int rc = ami_codec_next(&codec, &p);
        if (rc == AMI_PACKET) {
            list_push(out, ami_packet_dup(&p));
            continue;
        }
        if (rc < 0)
            continue;
        if (off == len)
            break;
        off += ami_codec_feed(&codec, data + off, len - off);
    }
    ami_codec_free(&codec);
    free(data);
}

static bool mentions(const ami_packet *p, const char *text)
{
    size_t tl = strlen(text);
    for (size_t i = 0; i < p->count; i++) {
        sb_slice v = p->headers[i].value;
        for (size_t k = 0; k + tl <= v.len; k++)
            if (memcmp(v.ptr + k, text, tl) == 0)
                return true;
    }
    return false;
}

static size_t response_index(const pkt_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->p[i]->kind == AMI_PACKET_RESPONSE && ami_packet_is(l->p[i], "ActionID", id))
            return i;
    fail_msg("no response %s in the fixture", id);
    return 0;
}

typedef struct fcase {
    const char *scenario;
    const char *fixture;
    const char *after_id; /* events after the Response with this ActionID (NULL: from start) */
    size_t skip;          /* events to skip first (the login's FullyBooted, SuccessfulAuth) */
    const char *until_id; /* up to the Response with this ActionID (NULL: to the end) */
    const char *mention;  /* keep only events mentioning this, or ... */
    const char *keep_id;  /* ... carrying this ActionID */
    const char *trigger;  /* actions that start it (NULL: pbxsim_play) */
    const char *prelude;  /* a scenario played (to its end) first */
    size_t extra_tail;    /* simulator events at the end that the recording lacks (documented) */
} fcase;

/* The recorded events of a case (borrowed from all). */
static void expected_events(const fcase *fc, const pkt_list *all, pkt_list *out)
{
    size_t from = fc->after_id ? response_index(all, fc->after_id) + 1 : 0;
    size_t to = fc->until_id ? response_index(all, fc->until_id) : all->n;
    size_t skipped = 0;
    for (size_t i = from; i < to; i++) {
        const ami_packet *p = all->p[i];
        if (p->kind != AMI_PACKET_EVENT)
            continue;
        if (skipped < fc->skip) {
            skipped++;
            continue;
        }
        if (fc->mention || fc->keep_id) {
            bool keep = (fc->mention && mentions(p, fc->mention)) ||
                        (fc->keep_id && ami_packet_is(p, "ActionID", fc->keep_id));
            if (!keep)
                continue;
        }
        list_push(out, (ami_packet *)p);
    }
}

static bool same_field_names(const ami_packet *a, const ami_packet *b)
{
    for (size_t i = 0; i < a->count; i++) {
        bool found = false;
        for (size_t j = 0; j < b->count && !found; j++)
            found = sb_slice_eq(a->headers[i].key, b->headers[j].key);
        if (!found)
            return false;
    }
    for (size_t j = 0; j < b->count; j++) {
        bool found = false;
        for (size_t i = 0; i < a->count && !found; i++)
            found = sb_slice_eq(a->headers[i].key, b->headers[j].key);
        if (!found)
            return false;
    }
    return true;
}

static bool sim_idle(void *arg)
{
    pbxsim_stats st;
    pbxsim_get_stats(arg, &st);
    return st.calls_active == 0;
}

/* Compares got[from..] with want; prints the first difference. */
static void compare(const char *scenario, const pkt_list *want, tclient *c, size_t from,
                    size_t extra_tail)
{
    size_t got = 0;
    for (size_t i = from; i < c->n; i++)
        if (c->pkts[i]->kind == AMI_PACKET_EVENT)
            got++;
    size_t k = 0;
    for (size_t i = from; i < c->n && k < want->n; i++) {
        const ami_packet *g = c->pkts[i];
        if (g->kind != AMI_PACKET_EVENT)
            continue;
        const ami_packet *w = want->p[k];
        if (!sb_slice_eq(g->name, w->name))
            fail_msg("%s: event %zu is %.*s, the recording has %.*s", scenario, k, (int)g->name.len,
                     g->name.ptr, (int)w->name.len, w->name.ptr);
        if (!same_field_names(g, w))
            fail_msg("%s: event %zu (%.*s) has other field names than the recording", scenario, k,
                     (int)w->name.len, w->name.ptr);
        k++;
    }
    if (got != want->n + extra_tail)
        fail_msg("%s: %zu events, the recording has %zu (+%zu documented extra)", scenario, got,
                 want->n, extra_tail);
}

static void run_case(const fcase *fc, double scale)
{
    pkt_list all = {0}, want = {0};
    load_fixture(fc->fixture, &all);
    expected_events(fc, &all, &want);
    assert_true(want.n > 0);
    pbxsim *sim = tc_sim(&loop, scale);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "on");
    assert_true(tc_wait_events(&c, "SuccessfulAuth", NULL, NULL, 1, 2000));
    if (fc->prelude) {
        assert_int_equal(pbxsim_play(sim, fc->prelude, NULL), 0);
        tc_run_until(&loop, NULL, NULL, 5);
        assert_true(tc_run_until(&loop, sim_idle, sim, 5000));
        tc_run_until(&loop, NULL, NULL, 20);
    }
    size_t from = c.n;
    if (fc->trigger)
        tc_send(&c, fc->trigger);
    else
        assert_int_equal(pbxsim_play(sim, fc->scenario, NULL), 0);
    tc_run_until(&loop, NULL, NULL, 20);
    assert_true(tc_run_until(&loop, sim_idle, sim, 10000));
    tc_run_until(&loop, NULL, NULL, 50);
    compare(fc->scenario, &want, &c, from, fc->extra_tail);
    tc_free(&c);
    tc_sim_free(&loop, sim);
    free(want.p);
    list_free(&all);
}

static const fcase cases[] = {
    {"internal-call", "05-originate-success-full-call.ami", "rec-2", 0, NULL, NULL, NULL,
     "Action: Originate\nActionID: rec-2\nChannel: Local/100@from-internal\nContext: hello\n"
     "Exten: s\nPriority: 1\nCallerID: \"Web Caller\" <5551234>\nAsync: true\n"
     "Variable: SB_JOB=job-42\nVariable: SB_TAG=demo\n\n",
     NULL, 0},
    {"originate-app", "06-originate-failures.ami", "rec-5", 0, NULL, "Local/100@from-internal",
     NULL,
     "Action: Originate\nActionID: rec-5\nChannel: Local/100@from-internal\nApplication: Wait\n"
     "Data: 1\n\n",
     NULL, 0},
    {"originate-busy", "06-originate-failures.ami", NULL, 0, NULL, "Local/999@from-internal",
     "rec-3",
     "Action: Originate\nActionID: rec-3\nChannel: Local/999@from-internal\nApplication: Wait\n"
     "Data: 2\nAsync: true\n\n",
     NULL, 0},
    {"originate-nocontext", "06-originate-failures.ami", NULL, 0, NULL, "nosuchcontext", "rec-4",
     "Action: Originate\nActionID: rec-4\nChannel: Local/12345@nosuchcontext\n"
     "Application: Wait\nData: 2\nAsync: true\n\n",
     NULL, 0},
    {"originate-unregistered", "06-originate-failures.ami", NULL, 0, NULL, NULL, "rec-2",
     "Action: Originate\nActionID: rec-2\nChannel: PJSIP/1003\nContext: hello\nExten: s\n"
     "Priority: 1\nAsync: true\nTimeout: 5000\n\n",
     NULL, 0},
    {"queue-call-answered", "07-queue-call-answered-agent-complete.ami", "rec-2", 0, NULL, NULL,
     NULL,
     "Action: Originate\nActionID: rec-2\nChannel: Local/200@from-internal\nApplication: Wait\n"
     "Data: 30\nCallerID: \"Customer\" <34600111222>\nAsync: true\n\n",
     NULL, 0},
    {"queue-call-abandoned", "08-queue-call-abandoned.ami", "rec-3", 0, "rec-4", NULL, NULL,
     "Action: Originate\nActionID: rec-3\nChannel: Local/201@from-internal\nApplication: Wait\n"
     "Data: 3\nCallerID: \"Impatient\" <34600999888>\nAsync: true\n\n",
     NULL, 0},
    {"inbound-trunk-queue", "16-pjsip-trunk-inbound-to-fastagi-queue.ami", NULL, 2, NULL, NULL,
     NULL, NULL, NULL, 0},
    /* the recording caught a re-registration; the simulator's registration also sends the
     * DeviceStateChange and ExtensionStatus of a first one (docs/pbxsim.md) */
    {"register-phone", "15-pjsip-phone-register-and-call.ami", NULL, 2, "rec-2", NULL, NULL, NULL,
     NULL, 2},
    {"originate-phone", "15-pjsip-phone-register-and-call.ami", "rec-3", 0, NULL, NULL, NULL,
     "Action: Originate\nActionID: rec-3\nChannel: PJSIP/1001\nContext: hello\nExten: s\n"
     "Priority: 1\nCallerID: \"Click2Dial\" <200>\nAsync: true\nTimeout: 15000\n\n",
     "register-phone", 0},
};

static void test_scenarios_match_fixtures(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], 0.001);
}

/* Fixture 14: a long call, then a Redirect of its ;2 leg into hello,s. */
static void test_long_call_and_redirect_match_fixture_14(void **state)
{
    pkt_list all = {0}, want = {0};
    load_fixture("14-redirect-and-hangup-actions.ami", &all);
    fcase part1 = {.after_id = "rec-2", .until_id = "rec-3"};
    fcase part2 = {.after_id = "rec-4", .until_id = "rec-5"};
    expected_events(&part1, &all, &want);
    size_t n1 = want.n;
    expected_events(&part2, &all, &want);
    pbxsim *sim = tc_sim(&loop, 0.05); /* the 20 s Wait lasts 1 s */
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "on");
    assert_true(tc_wait_events(&c, "SuccessfulAuth", NULL, NULL, 1, 2000));
    size_t from = c.n;
    tc_send(&c, "Action: Originate\nActionID: rec-2\nChannel: Local/600@from-internal\n"
                "Application: Wait\nData: 20\nAsync: true\n\n");
    assert_true(tc_wait_events(&c, "Newexten", NULL, NULL, 3, 2000));
    /* all of the call's start has arrived once the third Newexten (;2 Wait) is in */
    const ami_packet *resp = NULL;
    for (size_t i = 0; i < c.n; i++)
        if (ami_packet_is(c.pkts[i], "Event", "OriginateResponse"))
            resp = c.pkts[i];
    assert_non_null(resp);
    char buf[256];
    snprintf(buf, sizeof buf,
             "Action: Redirect\nActionID: rec-4\nChannel: %.*s2\nContext: hello\nExten: s\n"
             "Priority: 1\n\n",
             (int)(ami_packet_value(resp, "Channel").len - 1),
             ami_packet_value(resp, "Channel").ptr);
    size_t events_before = 0;
    for (size_t i = from; i < c.n; i++)
        if (c.pkts[i]->kind == AMI_PACKET_EVENT)
            events_before++;
    assert_int_equal(events_before, n1);
    tc_send(&c, buf);
    assert_true(tc_run_until(&loop, sim_idle, sim, 5000));
    tc_run_until(&loop, NULL, NULL, 50);
    assert_string_equal(tc_val(tc_response(&c, "rec-4"), "Message"), "Redirect successful");
    compare("long-call + long-call-redirect", &want, &c, from, 0);
    tc_free(&c);
    tc_sim_free(&loop, sim);
    free(want.p);
    list_free(&all);
}

/* ---- answers to actions: the recorded sessions replayed ---- */

/* The key sequence of two packets is the same (names and order). */
static bool same_keys(const ami_packet *a, const ami_packet *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (!sb_slice_eq(a->headers[i].key, b->headers[i].key))
            return false;
    return true;
}

static const ami_packet *find_response(const pkt_list *l, sb_slice id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->p[i]->kind == AMI_PACKET_RESPONSE &&
            sb_slice_eq(ami_packet_value(l->p[i], "ActionID"), id))
            return l->p[i];
    return NULL;
}

/* Sends the actions of NN-name.sent one by one (each awaited by its ActionID), then checks that
 * every recorded response has the same keys in the same order, and that every list item the
 * simulator sent has the keys, in order, of a recorded item of the same event. */
static void replay_session(const char *base, const char *user, const char *secret)
{
    char name[128];
    snprintf(name, sizeof name, "%s.sent", base);
    size_t len = 0;
    char *sent = tu_read_file(tu_fixture(name), &len);
    assert_non_null(sent);
    snprintf(name, sizeof name, "%s.ami", base);
    pkt_list want = {0};
    load_fixture(name, &want);

    pbxsim *sim = tc_sim(&loop, 0.05);
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    (void)user;
    (void)secret;
    /* each action is preceded by a "# +SECONDS" line */
    char *save = NULL;
    sb_buf action;
    sb_buf_init(&action, 65536);
    char *p = sent;
    while (p && *p) {
        char *next = strstr(p + 1, "\n# +");
        size_t n = next ? (size_t)(next + 1 - p) : strlen(p);
        char *nl = memchr(p, '\n', n);
        if (!nl)
            break;
        sb_buf_reset(&action);
        for (const char *q = nl + 1; q < p + n; q++)
            if (*q != '\r') /* the .sent files have CRLF; tc_send adds the CR back */
                sb_buf_append(&action, q, 1);
        char id[64] = "";
        const char *aid = strstr(action.data, "ActionID: ");
        if (aid)
            sscanf(aid + 10, "%63s", id);
        bool originate = strstr(action.data, "Action: Originate") != NULL;
        tc_send(&c, action.data);
        if (id[0] && !tc_wait_response(&c, id, 2000))
            fail_msg("%s: no answer to %s", base, id);
        else
            tc_run_until(&loop, NULL, NULL, 50);
        if (originate)
            tc_run_until(&loop, NULL, NULL, 30); /* the call gets going */
        p = next ? next + 1 : NULL;
    }
    (void)save;
    tc_run_until(&loop, NULL, NULL, 30);
    pkt_list got = {0};
    for (size_t i = 0; i < c.n; i++)
        list_push(&got, c.pkts[i]);
    for (size_t i = 0; i < want.n; i++) {
        const ami_packet *w = want.p[i];
        sb_slice id = ami_packet_value(w, "ActionID");
        if (w->kind != AMI_PACKET_RESPONSE || id.len == 0)
            continue;
        const ami_packet *g = find_response(&got, id);
        if (!g)
            fail_msg("%s: no answer to %.*s", base, (int)id.len, id.ptr);
        if (!same_keys(w, g))
            fail_msg("%s: the answer to %.*s has other keys or order than the recording", base,
                     (int)id.len, id.ptr);
        if (!sb_slice_eq(ami_packet_value(w, "Message"), ami_packet_value(g, "Message")) &&
            !sb_slice_eq(id, SB_SLICE_LIT("rec-5")) /* 04: our Originate answers at once */)
            fail_msg("%s: %.*s answers \"%.*s\", the recording \"%.*s\"", base, (int)id.len, id.ptr,
                     (int)ami_packet_value(g, "Message").len, ami_packet_value(g, "Message").ptr,
                     (int)ami_packet_value(w, "Message").len, ami_packet_value(w, "Message").ptr);
    }
    for (size_t i = 0; i < got.n; i++) {
        const ami_packet *g = got.p[i];
        sb_slice id = ami_packet_value(g, "ActionID");
        if (g->kind != AMI_PACKET_EVENT || id.len == 0 ||
            sb_slice_eq_ci(g->name, "OriginateResponse"))
            continue;
        const ami_packet *w = NULL;
        for (size_t k = 0; k < want.n && !w; k++)
            if (want.p[k]->kind == AMI_PACKET_EVENT && sb_slice_eq(want.p[k]->name, g->name) &&
                sb_slice_eq(ami_packet_value(want.p[k], "ActionID"), id))
                w = want.p[k];
        if (!w)
            fail_msg("%s: %.*s item %.*s is not in the recording", base, (int)id.len, id.ptr,
                     (int)g->name.len, g->name.ptr);
        if (!same_keys(w, g))
            fail_msg("%s: %.*s item %.*s has other keys or order than the recording", base,
                     (int)id.len, id.ptr, (int)g->name.len, g->name.ptr);
    }
    free(got.p);
    sb_buf_free(&action);
    tc_free(&c);
    tc_sim_free(&loop, sim);
    list_free(&want);
    free(sent);
}

static void test_action_answers_match_fixtures(void **state)
{
    static const char *const sessions[] = {
        "01-login-ping-logoff",
        "02-login-bad-secret",
        "04-permission-denied-and-unknown-action",
        "05-originate-success-full-call",
        "06-originate-failures",
        "07-queue-call-answered-agent-complete",
        "08-queue-call-abandoned",
        "09-queue-actions-and-lists",
        "10-event-lists-during-call",
        "13-filter-and-events-mask",
        "15-pjsip-phone-register-and-call",
    };
    for (size_t i = 0; i < sizeof sessions / sizeof sessions[0]; i++)
        replay_session(sessions[i], NULL, NULL);
}

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scenarios_match_fixtures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_call_and_redirect_match_fixture_14, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_action_answers_match_fixtures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
