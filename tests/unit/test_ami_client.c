/* test_ami_client.c: the AMI client against recorded Asterisk 22 sessions.
 *
 * A fake server (ami_fake_server.h) replays each fixture's bytes; the test sends the same actions
 * the recording's .sent file shows, all at once, and checks every completion against what the
 * fixture itself says: status (Success, Error, Permission denied, OriginateResponse Failure),
 * list item counts and Complete events, events delivered to on_event, the login the client sent
 * (plain Secret, or the MD5 Key recorded in fixture 03).
 */
#include "ami_fake_server.h"

/* ---- the recorded actions ---------------------------------------------------------------- */

#define MAX_SENT 32
#define MAX_HDRS 16

typedef struct sent_action {
    char name[64];
    char keys[MAX_HDRS][64];
    char vals[MAX_HDRS][256];
    int n;
    int rec; /* N of its ActionID rec-N */
} sent_action;

static const char *sent_get(const sent_action *a, const char *key)
{
    for (int i = 0; i < a->n; i++)
        if (strcasecmp(a->keys[i], key) == 0)
            return a->vals[i];
    return NULL;
}

/* Parses NN-name.sent: blocks of "Key: Value" lines, each after a "# +SECONDS" line. */
static int load_sent(const char *name, sent_action *out, int max)
{
    size_t len;
    char *text = tu_read_file(tu_fixture(name), &len);
    int n = -1;
    assert_non_null(text);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        if (line[0] == '#') {
            assert_true(n + 1 < max);
            n++;
            memset(&out[n], 0, sizeof out[n]);
            continue;
        }
        char *colon = strstr(line, ": ");
        if (!colon || n < 0)
            continue;
        *colon = '\0';
        sent_action *a = &out[n];
        if (strcasecmp(line, "Action") == 0) {
            snprintf(a->name, sizeof a->name, "%s", colon + 2);
        } else if (strcasecmp(line, "ActionID") == 0) {
            a->rec = atoi(colon + 2 + 4);
        } else {
            assert_true(a->n < MAX_HDRS);
            snprintf(a->keys[a->n], sizeof a->keys[0], "%s", line);
            snprintf(a->vals[a->n], sizeof a->vals[0], "%s", colon + 2);
            a->n++;
        }
    }
    free(text);
    return n + 1;
}

/* ---- what the fixture says each action's completion must be -------------------------------- */

typedef struct expect {
    ami_action_kind kind;
    int status;
    size_t nitems;
    char complete[64];
    char first_item[64];
    bool answered;
} expect;

static bool pkt_has(const fs_pkt *k, const char *text)
{
    size_t n = strlen(text);
    for (size_t i = 0; i + n <= k->len; i++)
        if (memcmp(k->p + i, text, n) == 0)
            return true;
    return false;
}

static void pkt_event_name(const fs_pkt *k, char *out, size_t size)
{
    const char *e = memchr(k->p, '\r', k->len);
    size_t n = e ? (size_t)(e - k->p) - 7 : 0;
    snprintf(out, size, "%.*s", (int)n, k->p + 7);
}

static expect expect_for(const fake_srv *s, const sent_action *a)
{
    expect e = {0};
    const char *async = sent_get(a, "Async");
    bool is_async = async && strcasecmp(async, "true") == 0;
    if (a->rec == 0) {
        /* Sent without ActionID (fixture 04's last Ping): the answer cannot be correlated. */
        e.status = SB_ETIMEDOUT;
        return e;
    }
    for (size_t i = 0; i < s->npk; i++) {
        const fs_pkt *k = &s->pk[i];
        if (k->rec != a->rec || k->is_event)
            continue;
        e.answered = true;
        if (pkt_has(k, "EventList: start"))
            e.kind = AMI_ACTION_LIST;
        else if (strcasecmp(a->name, "Originate") == 0 && is_async &&
                 pkt_has(k, "Response: Success"))
            e.kind = AMI_ACTION_ORIGINATE;
        if (pkt_has(k, "Response: Error"))
            e.status = pkt_has(k, "Message: Permission denied\r\n") ? SB_EDENIED : SB_EFAILED;
        break;
    }
    if (!e.answered) {
        e.status = SB_ETIMEDOUT;
        return e;
    }
    for (size_t i = 0; i < s->npk; i++) {
        const fs_pkt *k = &s->pk[i];
        if (k->rec != a->rec || !k->is_event)
            continue;
        if (e.kind == AMI_ACTION_LIST) {
            if (pkt_has(k, "EventList: Complete")) {
                pkt_event_name(k, e.complete, sizeof e.complete);
            } else {
                if (e.nitems++ == 0)
                    pkt_event_name(k, e.first_item, sizeof e.first_item);
            }
        } else if (e.kind == AMI_ACTION_ORIGINATE && pkt_has(k, "Event: OriginateResponse")) {
            snprintf(e.complete, sizeof e.complete, "OriginateResponse");
            if (!pkt_has(k, "Response: Success"))
                e.status = SB_EFAILED;
        }
    }
    return e;
}

/* Events that must reach on_event: every event except list items and OriginateResponse
 * events that complete an action. */
static int expected_on_event(const fake_srv *s, const sent_action *acts, int nacts)
{
    int n = 0;
    for (size_t i = 0; i < s->npk; i++) {
        const fs_pkt *k = &s->pk[i];
        if (!k->is_event)
            continue;
        bool consumed = false;
        for (int j = 0; j < nacts; j++) {
            if (acts[j].rec != k->rec || k->rec == 0)
                continue;
            expect e = expect_for(s, &acts[j]);
            consumed = e.kind == AMI_ACTION_LIST ||
                       (e.kind == AMI_ACTION_ORIGINATE && pkt_has(k, "Event: OriginateResponse"));
        }
        n += !consumed;
    }
    return n;
}

static int count_events(const fake_srv *s)
{
    int n = 0;
    for (size_t i = 0; i < s->npk; i++)
        n += s->pk[i].is_event;
    return n;
}

/* Replays fixture NAME: logs in as its .sent file did, sends every later action at once and
 * checks each completion against the recording. */
static void replay_fixture(const char *name)
{
    char path[128];
    sent_action acts[MAX_SENT];
    res results[MAX_SENT];
    expect exp[MAX_SENT];
    char ids[MAX_SENT][32];
    tc t;

    snprintf(path, sizeof path, "%s.sent", name);
    int nacts = load_sent(path, acts, MAX_SENT);
    tc_init(&t);
    snprintf(path, sizeof path, "%s.ami", name);
    fs_load_fixture(&t.srv, path);
    t.srv.raw = true;
    t.srv.on_action = fs_replay;

    ami_client_config cfg = tc_config(&t);
    int first = 0;
    bool md5 = false;
    const sent_action *login = NULL;
    for (; first < nacts; first++) {
        if (strcasecmp(acts[first].name, "Challenge") == 0)
            md5 = true;
        else if (strcasecmp(acts[first].name, "Login") == 0)
            login = &acts[first];
        else
            break;
    }
    assert_non_null(login);
    cfg.username = sent_get(login, "Username");
    cfg.secret = sent_get(login, "Secret") ? sent_get(login, "Secret") : "admin-secret";
    cfg.events = sent_get(login, "Events");
    cfg.md5 = md5;
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 3000);
    assert_int_equal(t.ready, 1);
    assert_int_equal(t.ready_reconnected, 0);
    assert_string_equal(ami_client_ami_version(t.c), "11.0.0");

    /* The login exactly as recorded (the MD5 Key of fixture 03 included). */
    const ami_packet *got = fs_got(&t.srv, "Login", 0);
    assert_non_null(got);
    for (int i = 0; i < login->n; i++) {
        char v[256];
        sb_slice_copy(ami_packet_value(got, login->keys[i]), v, sizeof v);
        assert_string_equal(v, login->vals[i]);
    }
    assert_int_equal(fs_count(&t.srv, "Challenge"), md5 ? 1 : 0);

    int failures = 0;
    for (int i = first; i < nacts; i++) {
        ami_msg m;
        exp[i] = expect_for(&t.srv, &acts[i]);
        memset(&results[i], 0, sizeof results[i]);
        ami_msg_init(&m, "Action", acts[i].name);
        for (int h = 0; h < acts[i].n; h++)
            ami_msg_add(&m, acts[i].keys[h], acts[i].vals[h]);
        assert_int_equal(ami_client_send(t.c, &m, exp[i].kind, exp[i].answered ? 5000 : 300, res_cb,
                                         &results[i], ids[i], sizeof ids[i]),
                         0);
        assert_int_equal(strncmp(ids[i], "sb-pbx1-", 8), 0);
        failures += exp[i].status != 0;
    }
    bool all = false;
    for (int round = 0; round < 400 && !all; round++) {
        RUN_FOR(&t, 10);
        all = true;
        for (int i = first; i < nacts; i++)
            all = all && results[i].calls > 0;
    }
    RUN_FOR(&t, 20); /* nothing may run twice */
    for (int i = first; i < nacts; i++) {
        const res *r = &results[i];
        const expect *e = &exp[i];
        print_message("%s %s (rec-%d): status %d items %zu complete %s\n", name, acts[i].name,
                      acts[i].rec, r->status, r->nitems, r->complete_name);
        assert_int_equal(r->calls, 1);
        assert_int_equal(r->status, e->status);
        if (e->answered) {
            assert_true(r->has_response);
            assert_string_equal(r->response_id, ids[i]);
        }
        assert_int_equal(r->nitems, e->nitems);
        assert_string_equal(r->complete_name, e->complete);
        assert_string_equal(r->first_item, e->first_item);
    }
    ami_client_stats st;
    ami_client_get_stats(t.c, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.actions_sent, nacts - first);
    assert_int_equal(st.actions_failed, failures);
    assert_int_equal(st.events, count_events(&t.srv));
    assert_int_equal(t.events, expected_on_event(&t.srv, acts, nacts));
    assert_int_equal(st.logins_failed, 0);
    assert_int_equal(st.reconnects, 0);
    assert_int_equal(t.srv.accepts, 1);
    tc_fini(&t);
}

static void test_replay_01_plain_login_ping_command(void **state)
{
    (void)state;
    replay_fixture("01-login-ping-logoff");
}

static void test_replay_03_md5_login(void **state)
{
    (void)state;
    replay_fixture("03-login-md5-challenge");
}

static void test_replay_04_permission_denied_list_and_bare_ping(void **state)
{
    (void)state;
    replay_fixture("04-permission-denied-and-unknown-action");
}

static void test_replay_05_originate_success(void **state)
{
    (void)state;
    replay_fixture("05-originate-success-full-call");
}

static void test_replay_06_originate_failures(void **state)
{
    (void)state;
    replay_fixture("06-originate-failures");
}

static void test_replay_09_queue_lists(void **state)
{
    (void)state;
    replay_fixture("09-queue-actions-and-lists");
}

static void test_replay_10_lists_during_call(void **state)
{
    (void)state;
    replay_fixture("10-event-lists-during-call");
}

/* ---- focused checks on the recordings ---------------------------------------------------- */

/* Fixture 03's Key is md5("120265474" + "admin-secret"): the client must compute the same. */
static void test_md5_key_matches_recording_and_openssl(void **state)
{
    char key[33];
    tc t;
    (void)state;
    fs_md5_hex("120265474", "admin-secret", key);
    assert_string_equal(key, "4b9b9387f9ec3e04aadaa19141699387");
    tc_init(&t);
    t.srv.secret = "s3cr3t-md5";
    t.srv.challenge = "987654321";
    ami_client_config cfg = tc_config(&t);
    cfg.secret = "s3cr3t-md5";
    cfg.md5 = true;
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 3000);
    assert_int_equal(t.ready, 1);
    const ami_packet *login = fs_got(&t.srv, "Login", 0);
    assert_non_null(login);
    fs_md5_hex("987654321", "s3cr3t-md5", key);
    assert_true(ami_packet_is(login, "Key", key));
    assert_true(ami_packet_is(login, "AuthType", "MD5"));
    assert_null(ami_packet_get(login, "Secret"));
    assert_int_equal(t.srv.challenges, 1);
    tc_fini(&t);
}

/* Fixture 06 in detail: each Originate's own OriginateResponse, Reason included. */
static void test_originate_results_carry_reason(void **state)
{
    res r[3] = {{0}};
    tc t;
    (void)state;
    tc_init(&t);
    fs_load_fixture(&t.srv, "06-originate-failures.ami");
    t.srv.raw = true;
    t.srv.on_action = fs_replay;
    ami_client_config cfg = tc_config(&t);
    tc_client(&t, &cfg);
    RUN_UNTIL(&t, t.ready == 1, 3000);
    assert_int_equal(tc_send(&t, "Originate", AMI_ACTION_ORIGINATE, 0, &r[0], NULL, "Channel",
                             "PJSIP/1003", "Context", "hello", "Exten", "s", "Priority", "1",
                             "Async", "true", "Timeout", "5000", NULL),
                     0);
    assert_int_equal(tc_send(&t, "Originate", AMI_ACTION_ORIGINATE, 0, &r[1], NULL, "Channel",
                             "Local/999@from-internal", "Application", "Wait", "Data", "2", "Async",
                             "true", NULL),
                     0);
    RUN_UNTIL(&t, r[0].calls && r[1].calls, 3000);
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].status, SB_EFAILED);
    assert_string_equal(r[0].response_msg, "Originate successfully queued");
    assert_string_equal(r[0].complete_name, "OriginateResponse");
    assert_string_equal(r[0].complete_reason, "0");
    assert_int_equal(r[1].calls, 1);
    assert_string_equal(r[1].complete_reason, "5");
    tc_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_01_plain_login_ping_command),
        cmocka_unit_test(test_replay_03_md5_login),
        cmocka_unit_test(test_replay_04_permission_denied_list_and_bare_ping),
        cmocka_unit_test(test_replay_05_originate_success),
        cmocka_unit_test(test_replay_06_originate_failures),
        cmocka_unit_test(test_replay_09_queue_lists),
        cmocka_unit_test(test_replay_10_lists_during_call),
        cmocka_unit_test(test_md5_key_matches_recording_and_openssl),
        cmocka_unit_test(test_originate_results_carry_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
