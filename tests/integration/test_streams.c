/* test_streams.c: an agent's SSE stream against the simulator (issue 3 §3, §5): the exact events
 * of a queue call (golden file), a client that drops mid-call and resumes with Last-Event-ID (no
 * gap, no duplicate), the same across a forced AMI reconnect, and the supervisor stream.
 * Everything runs on one loop (test_streams_harness.h).
 */
#include "test_streams_golden.h"

/* Runs until c received an event of type (after index from) or ms passed; its index or -1. */
static long wait_type(hc *c, size_t from, const char *type, uint64_t ms)
{
    long i = -1;
    SH_RUN_UNTIL(c->h, (i = hc_find(c, from, type)) >= 0, ms);
    return i;
}

/* The end of queue-call-answered for agent 502: its call ended and it has no caller any more. */
static bool call_done(const hc *c)
{
    return hc_find(c, 0, "call.ended") >= 0 && hc_find(c, 0, "agentComplete") >= 0;
}

/* Every event after the snapshot has seq = previous + 1, and the SSE id equals the seq. */
static void assert_contiguous(const hc *c, size_t from, long long first)
{
    long long want = first;
    for (size_t i = from; i < c->nev; i++) {
        if (c->ev[i].event)
            continue; /* the transport's own close event */
        assert_int_equal(hc_seq(&c->ev[i]), want);
        assert_non_null(c->ev[i].id);
        assert_int_equal(atoll(c->ev[i].id), want);
        want++;
    }
}

static void test_sse_golden_queue_call(void **state)
{
    sh h;
    (void)state;
    sh_start(&h, &(sh_opts){0});
    char *tok = sh_subscribe(&h, "/v1/agents/502/subscriptions", "svc-tok",
                             "{\"queues\":[\"sales\"]}", 201);
    assert_non_null(tok);
    hc *c = sh_sse(&h, "502", tok, NULL);
    assert_true(wait_type(c, 0, "snapshot", 2000) == 0);
    assert_int_equal(c->status, 200);
    assert_int_equal(pbxsim_play(h.sim, "queue-call-answered", NULL), 0);
    SH_RUN_UNTIL(&h, call_done(c), 5000);
    SH_RUN_FOR(&h, 100); /* nothing else may follow */
    assert_true(call_done(c));
    assert_contiguous(c, 1, hc_seq(&c->ev[0]) + 1);
    char *got = norm_events(c, 0);
    golden_check("streams-queue-call-answered-502", got);
    free(got);

    streams_stats st;
    streams_get_stats(h.st, &st);
    assert_int_equal(st.snapshots, 1);
    assert_int_equal(st.resyncs, 0);
    assert_int_equal(st.tokens_issued, 1);
    assert_int_equal(st.clients, 1);
    hc_free(c);
    SH_RUN_FOR(&h, 20);
    streams_get_stats(h.st, &st);
    assert_int_equal(st.clients, 0);
    free(tok);
    sh_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_golden_queue_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
