/* test_pbxsim_agents.c: load mode with an agent range (`load RATE SECONDS NAME AGENTS=LO-HI`,
 * pbxsim_load_agents()) and the queue-call-agent scenario: call k is answered by agent LO+k%n and
 * rings LO+(k+1)%n too; without a range the scenario is queue-call-answered (agents 502/501).
 * Events are counted through the on_event tap. */
#include "test_pbxsim_client.h"
#include "testutil.h"

#include "core/error.h"

#include <stdlib.h>

static uv_loop_t loop;

enum { NAGENTS = 5, BASE = 10000 };

static int connect_by[NAGENTS]; /* AgentConnect per agent of the range */
static int called_by[NAGENTS];  /* AgentCalled per agent of the range */
static int connect_other;       /* AgentConnect/AgentCalled naming an agent outside the range */
static int old_agents;          /* events naming Local/501@ or Local/502@ */
static int connect_502;         /* AgentConnect naming Local/502@agents/n */
static int events;

static bool has(const char *data, size_t len, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(data + i, s, n) == 0)
            return true;
    return false;
}

/* The agent number in "Interface: Local/NNN@agents/n", or -1. */
static long iface_agent(const char *data, size_t len)
{
    static const char key[] = "\r\nInterface: Local/";
    size_t n = sizeof key - 1;
    for (size_t i = 0; i + n < len; i++)
        if (memcmp(data + i, key, n) == 0) {
            char num[16];
            size_t j = 0;
            for (size_t k = i + n;
                 k < len && j + 1 < sizeof num && data[k] >= '0' && data[k] <= '9'; k++)
                num[j++] = data[k];
            num[j] = '\0';
            return j ? strtol(num, NULL, 10) : -1;
        }
    return -1;
}

static void tap(void *arg, const char *data, size_t len)
{
    (void)arg;
    events++;
    if (has(data, len, "Local/501@") || has(data, len, "Local/502@"))
        old_agents++;
    bool connect = len > 20 && memcmp(data, "Event: AgentConnect\r", 20) == 0;
    bool called = len > 19 && memcmp(data, "Event: AgentCalled\r", 19) == 0;
    if (!connect && !called)
        return;
    long a = iface_agent(data, len);
    if (connect && a == 502)
        connect_502++;
    if (a >= BASE && a < BASE + NAGENTS) {
        if (connect)
            connect_by[a - BASE]++;
        else
            called_by[a - BASE]++;
    } else if (a != 502 && a != 501) {
        connect_other++;
    }
}

static int setup(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    memset(connect_by, 0, sizeof connect_by);
    memset(called_by, 0, sizeof called_by);
    connect_other = old_agents = connect_502 = events = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return 0;
}

static pbxsim *sim_with_tap(void)
{
    pbxsim_config cfg;
    pbxsim_config_default(&cfg);
    cfg.time_scale = 0.001;
    cfg.on_event = tap;
    pbxsim *sim = NULL;
    assert_int_equal(pbxsim_new(&loop, &cfg, &sim), 0);
    assert_int_equal(pbxsim_start(sim), 0);
    return sim;
}

/* Waits until calls_started reaches want and every call has ended (bounded). */
static void wait_calls(pbxsim *sim, uint64_t want)
{
    pbxsim_stats st;
    for (int i = 0; i < 500; i++) {
        pbxsim_get_stats(sim, &st);
        if (st.calls_started >= want && st.calls_active == 0)
            break;
        tc_run_until(&loop, NULL, NULL, 10);
    }
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.calls_started, want);
    assert_int_equal(st.calls_active, 0);
}

/* 10 calls over agents 10000-10004: each answers exactly 2 (calls k and k+5) and is rung
 * 4 times (as AGENT twice and as AGENT2 twice); the recorded agents never appear. */
static void test_load_agent_range(void **state)
{
    (void)state;
    pbxsim *sim = sim_with_tap();
    assert_int_equal(pbxsim_command(sim, "load 100 0.1 queue-call-agent AGENTS=10000-10004"), 0);
    wait_calls(sim, 10);
    for (int i = 0; i < NAGENTS; i++) {
        assert_int_equal(connect_by[i], 2);
        assert_int_equal(called_by[i], 4);
    }
    assert_int_equal(connect_other, 0);
    assert_int_equal(connect_502, 0);
    assert_int_equal(old_agents, 0);
    tc_sim_free(&loop, sim);
}

/* The C entry point with a range of one: every call goes to that agent. */
static void test_load_agents_api_single(void **state)
{
    (void)state;
    pbxsim *sim = sim_with_tap();
    assert_int_equal(pbxsim_load_agents(sim, 100, 50, "queue-call-agent", BASE + 3, BASE + 3), 0);
    wait_calls(sim, 5);
    for (int i = 0; i < NAGENTS; i++) {
        assert_int_equal(connect_by[i], i == 3 ? 5 : 0);
        assert_int_equal(called_by[i], i == 3 ? 10 : 0);
    }
    assert_int_equal(connect_other, 0);
    assert_int_equal(old_agents, 0);
    tc_sim_free(&loop, sim);
}

/* Without a range queue-call-agent is queue-call-answered: same events, agent 502 answers; a
 * plain load after a ranged one forgets the range. */
static void test_defaults_and_plain_load(void **state)
{
    (void)state;
    pbxsim *sim = sim_with_tap();
    assert_int_equal(pbxsim_play(sim, "queue-call-answered", NULL), 0);
    wait_calls(sim, 1);
    int recorded = events;
    assert_true(recorded > 150);
    assert_int_equal(connect_502, 1);
    events = 0;
    assert_int_equal(pbxsim_play(sim, "queue-call-agent", NULL), 0);
    wait_calls(sim, 2);
    assert_int_equal(events, recorded);
    assert_int_equal(connect_502, 2);
    assert_int_equal(pbxsim_load_agents(sim, 100, 20, "queue-call-agent", BASE, BASE + 4), 0);
    assert_int_equal(pbxsim_command(sim, "load 100 0.02 queue-call-agent"), 0);
    wait_calls(sim, 4);
    assert_int_equal(connect_502, 4);
    for (int i = 0; i < NAGENTS; i++)
        assert_int_equal(connect_by[i], 0);
    tc_sim_free(&loop, sim);
}

static void test_bad_ranges(void **state)
{
    (void)state;
    pbxsim *sim = sim_with_tap();
    assert_int_equal(pbxsim_command(sim, "load 10 1 queue-call-agent AGENTS=10-5"), SB_EINVAL);
    assert_int_equal(pbxsim_command(sim, "load 10 1 queue-call-agent AGENTS=10"), SB_EINVAL);
    assert_int_equal(pbxsim_command(sim, "load 10 1 queue-call-agent AGENTS=x-5"), SB_EINVAL);
    assert_int_equal(pbxsim_command(sim, "load 10 1 queue-call-agent AGENTS=5-"), SB_EINVAL);
    assert_int_equal(pbxsim_command(sim, "load 10 1 queue-call-agent AGENTS=1-9999999999"),
                     SB_EINVAL);
    assert_int_equal(pbxsim_command(sim, "load 10 1 no-such AGENTS=1-5"), SB_ENOTFOUND);
    assert_int_equal(pbxsim_load_agents(sim, 10, 1000, "queue-call-agent", 9, 8), SB_EINVAL);
    tc_run_until(&loop, NULL, NULL, 50);
    pbxsim_stats st;
    pbxsim_get_stats(sim, &st);
    assert_int_equal(st.calls_started, 0);
    assert_int_equal(events, 0);
    tc_sim_free(&loop, sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_agent_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_agents_api_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_and_plain_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ranges, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
