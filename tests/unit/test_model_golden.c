/* test_model_golden.c: each fixture with calls, fed through the codec into the model, must emit
 * exactly the normalized events of tests/golden/NN-name.jsonl (one JSON object per line, in
 * order, without the "id" field, plus the bus targets as "_agents" and "_queue"; times come from
 * the fake clock of model_feed.h).
 *
 * To regenerate after an intended change: SB_UPDATE_GOLDEN=1 ctest -R test_model_golden, then
 * review `git diff tests/golden/` (docs/events.md, "Golden files"). */
#include "model_feed.h"

#include <stdio.h>

static const char *const fixtures[] = {
    "05-originate-success-full-call",
    "06-originate-failures",
    "07-queue-call-answered-agent-complete",
    "08-queue-call-abandoned",
    "12-fastagi-call-events",
    "14-redirect-and-hangup-actions",
    "15-pjsip-phone-register-and-call",
    "16-pjsip-trunk-inbound-to-fastagi-queue",
};

static char *render(const feed *f)
{
    sb_buf out;
    sb_buf_init(&out, 16 << 20);
    for (size_t i = 0; i < f->n; i++) {
        json_t *o = json_deep_copy(f->json[i]);
        assert_non_null(o);
        json_object_del(o, "id");
        /* Who receives it is part of the contract too: the bus targets, as "_agents"/"_queue". */
        json_t *targets = json_array();
        for (size_t a = 0; a < bus_event_agent_count(f->evs[i]); a++)
            json_array_append_new(targets, json_string(bus_event_agent(f->evs[i], a)));
        json_object_set_new(o, "_agents", targets);
        if (bus_event_queue(f->evs[i]))
            json_object_set_new(o, "_queue", json_string(bus_event_queue(f->evs[i])));
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_non_null(line);
        assert_int_equal(sb_buf_puts(&out, line), 0);
        assert_int_equal(sb_buf_puts(&out, "\n"), 0);
        free(line);
        json_decref(o);
    }
    char *s = sb_buf_steal(&out);
    return s ? s : strdup("");
}

static void golden_path(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/tests/golden/%s.jsonl", SB_SOURCE_DIR, name);
}

/* Reports the first differing line, which is what a reviewer needs. */
static void compare(const char *name, const char *want, const char *got)
{
    size_t line = 1;
    const char *w = want, *g = got;
    if (strcmp(want, got) == 0)
        return;
    while (*w && *g && *w == *g) {
        if (*w == '\n')
            line++;
        w++;
        g++;
    }
    const char *wl = w, *gl = g;
    while (wl > want && wl[-1] != '\n')
        wl--;
    while (gl > got && gl[-1] != '\n')
        gl--;
    fprintf(stderr, "%s.jsonl differs at line %zu\n  want: %.*s\n  got:  %.*s\n", name, line,
            (int)strcspn(wl, "\n"), wl, (int)strcspn(gl, "\n"), gl);
    fail_msg("golden mismatch for %s (SB_UPDATE_GOLDEN=1 regenerates; review the diff)", name);
}

static void check_golden(const char *name, const feed *f)
{
    char path[4096];
    char *got = render(f);
    golden_path(name, path, sizeof path);
    const char *update = getenv("SB_UPDATE_GOLDEN");
    if (update && strcmp(update, "1") == 0) {
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(got, 1, strlen(got), fp), strlen(got));
        fclose(fp);
        fprintf(stderr, "rewrote %s (%zu events)\n", path, f->n);
    } else {
        size_t len;
        char *want = tu_read_file(path, &len);
        if (!want)
            fail_msg("missing %s (SB_UPDATE_GOLDEN=1 creates it)", path);
        compare(name, want, got);
        free(want);
    }
    free(got);
}

static void run_one(const char *name)
{
    feed f;
    char fixture[256];
    model_stats st;
    feed_init(&f);
    snprintf(fixture, sizeof fixture, "%s.ami", name);
    feed_fixture(&f, "pbx1", fixture);
    assert_true(f.n > 0);
    check_golden(name, &f);
    /* Every call in these transcripts ends: nothing may be left behind. */
    model_stats_get(f.m, &st);
    assert_int_equal(st.calls, 0);
    assert_int_equal(st.channels, 0);
    assert_int_equal(feed_count(&f, "call.started"), feed_count(&f, "call.ended"));
    feed_free(&f);
}

static void test_model_golden_fixtures(void **state)
{
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        run_one(fixtures[i]);
}

/* Fixture 07 until the agent talks; then the connection drops and the call ends unseen. The
 * resync lists (no channels; members as QueueStatus shows them afterwards) must end the call,
 * free the agent's phone and update its member status. */
static const char *const away_lists =
    "Event: CoreShowChannelsComplete\r\nEventList: Complete\r\nListItems: 0\r\n\r\n"
    "Event: QueueParams\r\nQueue: sales\r\nStrategy: ringall\r\nCalls: 0\r\n\r\n"
    "Event: QueueMember\r\nQueue: sales\r\nName: Agent Ben\r\nLocation: Local/502@agents/n\r\n"
    "StateInterface: Local/502@agents\r\nMembership: static\r\nPenalty: 0\r\n"
    "CallsTaken: 1\r\nLastCall: 1795478349\r\nInCall: 0\r\nStatus: 1\r\nPaused: 0\r\n"
    "PausedReason: \r\n\r\n"
    "Event: QueueMember\r\nQueue: sales\r\nName: Agent Ann\r\nLocation: Local/501@agents/n\r\n"
    "StateInterface: Local/501@agents\r\nMembership: static\r\nPenalty: 0\r\n"
    "CallsTaken: 0\r\nInCall: 0\r\nStatus: 1\r\nPaused: 0\r\nPausedReason: \r\n\r\n"
    "Event: QueueStatusComplete\r\nEventList: Complete\r\nListItems: 3\r\n\r\n";

static void test_model_golden_call_ended_while_disconnected(void **state)
{
    feed f;
    size_t len;
    model_stats st;
    char *data = tu_read_file(tu_fixture("07-queue-call-answered-agent-complete.ami"), &len);
    assert_non_null(data);
    const char *cut = strstr(data, "Event: AgentComplete");
    assert_non_null(cut);
    feed_init(&f);
    feed_text(&f, "pbx1", data, (size_t)(cut - data), true);
    assert_int_equal(model_begin_resync(f.m, "pbx1"), 0);
    feed_text(&f, "pbx1", away_lists, strlen(away_lists), false);
    assert_int_equal(model_end_resync(f.m, "pbx1"), 0);
    check_golden("07-reconnect-call-ended-while-away", &f);
    model_stats_get(f.m, &st);
    assert_int_equal(st.calls, 0);
    assert_int_equal(st.channels, 0);
    assert_int_equal(st.bridges, 0);
    free(data);
    feed_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_golden_fixtures),
        cmocka_unit_test(test_model_golden_call_ended_while_disconnected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
