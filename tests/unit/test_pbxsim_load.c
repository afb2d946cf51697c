/* test_pbxsim_load.c: the simulator under load (docs/pbxsim.md, "Load"; docs/delivery.md, "Chaos
 * test"). An ASan pbxsim offered 1,000 calls/s next to the daemon stopped answering for minutes:
 * every event looked its channel up by a linear scan (and each finished call scanned every
 * channel), so a simulator that fell behind had more channels live, got slower per event and fell
 * further behind; and a late load timer started every overdue call in one loop turn. These tests
 * pin the two properties that broke that spiral:
 *   - an event costs the same whether 0 or 16,000 channels are live (CPU time, not wall time, so
 *     a busy machine does not make it flaky; the linear scan made the second batch >10x dearer);
 *   - a load whose loop ran late starts at most 100 ms worth of calls per tick, and still plays
 *     exactly rate x duration calls.
 * The simulator runs on the test's loop without clients. */
#include "test_pbxsim_client.h"
#include "testutil.h"

#include "core/error.h"

#include <time.h>
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

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static pbxsim_stats stats(pbxsim *sim)
{
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    return st;
}

/* Plays n long-call instances (2 channels each, live for 20 s at time scale 1) and runs the loop
 * until their first events (those before the Wait) are out. Returns the CPU milliseconds that took.
 */
static double play_long_calls(pbxsim *sim, int n)
{
    uint64_t want = stats(sim).channels + 2u * (uint64_t)n;
    double t0 = cpu_ms();
    for (int i = 0; i < n; i++)
        assert_int_equal(pbxsim_play(sim, "long-call", NULL), 0);
    for (int i = 0; i < 20000 && stats(sim).channels < want; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    double spent = cpu_ms() - t0;
    assert_int_equal(stats(sim).channels, want);
    return spent;
}

static void test_event_cost_does_not_grow_with_live_channels(void **state)
{
    pbxsim *sim = tc_sim(&loop, 1.0);
    /* warm up: scenario file parsed, buffers grown */
    play_long_calls(sim, 100);
    uint64_t per_call = stats(sim).events_emitted / 100; /* before the 20 s Wait */
    assert_true(per_call >= 10);
    double few = play_long_calls(sim, 400); /* 200 .. 1,000 channels live */
    play_long_calls(sim, 8000);
    uint64_t live = stats(sim).channels;
    assert_int_equal(live, 2 * 8500);
    double many = play_long_calls(sim, 400); /* 17,000 .. 17,800 channels live */
    pbxsim_stats st = stats(sim);
    print_message("400 calls: %.1f ms CPU with ~600 channels live, %.1f ms with ~17,400\n", few,
                  many);
    assert_int_equal(st.calls_started, 8900);
    assert_int_equal(st.calls_active, 8900);
    assert_int_equal(st.events_emitted, 8900u * per_call);
    /* a linear scan per event made this 11x (ASan) to 13x (release) dearer; now ~1-1.5x */
    assert_true(many < 4.0 * few + 30.0);
    /* Hangup by action still finds the call's other channel through its owner (by id), and the
     * index forgets both: 2 Hangup events, 2 channels fewer */
    tclient c;
    tc_connect(&c, &loop, pbxsim_port(sim));
    tc_login(&c, "admin", "admin-secret", "call");
    tc_send(&c, "Action: CoreShowChannels\nActionID: l1\n\n");
    assert_true(tc_wait_events(&c, "CoreShowChannelsComplete", NULL, NULL, 1, 10000));
    const ami_packet *done = tc_event(&c, "CoreShowChannelsComplete", NULL, NULL);
    assert_string_equal(tc_val(done, "ListItems"), "17800");
    /* newest first: the last call's ;2 then ;1 */
    const ami_packet *first = tc_event(&c, "CoreShowChannel", NULL, NULL);
    char victim[128];
    snprintf(victim, sizeof victim, "%s", tc_val(first, "Channel"));
    assert_non_null(strstr(victim, ";2"));
    char act[256];
    snprintf(act, sizeof act, "Action: Hangup\nActionID: h1\nChannel: %s\n\n", victim);
    tc_send(&c, act);
    const ami_packet *r = tc_wait_response(&c, "h1", 5000);
    assert_non_null(r);
    assert_string_equal(tc_val(r, "Message"), "Channel Hungup");
    assert_true(tc_wait_events(&c, "Hangup", NULL, NULL, 2, 5000));
    assert_int_equal(tc_count(&c, "Hangup", NULL, NULL), 2);
    st = stats(sim);
    assert_int_equal(st.channels, 17798);
    assert_int_equal(st.calls_active, 8899);
    tc_free(&c);
    double t0 = cpu_ms();
    tc_sim_free(&loop, sim); /* cancels 8,899 calls */
    print_message("freeing with 8,899 calls live: %.1f ms CPU\n", cpu_ms() - t0);
}

static void test_late_load_catches_up_in_bounded_bursts(void **state)
{
    pbxsim *sim = tc_sim(&loop, 0.001); /* a call lasts ~1 ms */
    assert_int_equal(pbxsim_command(sim, "load 1000 2 internal-call"), 0);
    tc_run_until(&loop, NULL, NULL, 50);
    pbxsim_stats before = stats(sim);
    assert_true(before.calls_started >= 1);
    /* the loop runs late: 600 ms in which nothing runs */
    usleep(600 * 1000);
    uv_run(&loop, UV_RUN_NOWAIT);
    pbxsim_stats after = stats(sim);
    uint64_t burst = after.calls_started - before.calls_started;
    print_message("one tick after a 600 ms stall started %llu calls; %llu still behind\n",
                  (unsigned long long)burst, (unsigned long long)after.load_behind);
    assert_true(burst >= 1);
    assert_true(burst <= 101); /* 100 ms worth at 1,000/s (+1) */
    /* at least 600 ms more were due, and at most 101 of them started: >= 499 behind */
    assert_true(after.load_behind >= 400);
    /* every call is still played: exactly 1,000/s x 2 s, and the lag is made up */
    for (int i = 0; i < 1500; i++) {
        pbxsim_stats st = stats(sim);
        if (st.calls_started == 2000 && st.calls_active == 0 && st.load_behind == 0)
            break;
        tc_run_until(&loop, NULL, NULL, 10);
    }
    pbxsim_stats st = stats(sim);
    assert_int_equal(st.calls_started, 2000);
    assert_int_equal(st.calls_active, 0);
    assert_int_equal(st.load_behind, 0);
    assert_int_equal(st.channels, 0);
    tc_run_until(&loop, NULL, NULL, 100);
    assert_int_equal(stats(sim).calls_started, 2000);
    tc_sim_free(&loop, sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_event_cost_does_not_grow_with_live_channels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_late_load_catches_up_in_bounded_bursts, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
