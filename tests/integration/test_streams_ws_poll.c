/* test_streams_ws_poll.c: the same agent stream over WebSocket and long-poll (issue 3 §3): a
 * WebSocket client resumes with {"resume":SEQ} or ?after=SEQ, or gets a snapshot; long-poll
 * answers the events after SEQ at once, or waits up to timeout seconds; beyond the window both
 * get a resync; driven by the simulator, both see exactly what an SSE client sees.
 */
#include "test_streams_golden.h"

static void publish(sh *h, const char *agent, int n)
{
    for (int i = 0; i < n; i++) {
        bus_event *ev =
            bus_event_new(json_pack("{s:s,s:{s:i}}", "type", "test", "details", "n", i));
        assert_non_null(ev);
        assert_int_equal(bus_event_add_agent(ev, agent), 0);
        assert_int_equal(bus_publish(h->b, ev, NULL), 0);
        bus_event_unref(ev);
    }
}

static void assert_seqs(const hc *c, size_t from, long long first, size_t n)
{
    assert_int_equal(c->nev - from, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(hc_seq(&c->ev[from + i]), first + (long long)i);
}

static void test_ws_snapshot_resume_and_after(void **state)
{
    sh h;
    char t[64];
    (void)state;
    sh_start(&h, &(sh_opts){.ws_resume_wait_ms = 150, .window_events = 8});
    char *tok = sh_subscribe(&h, "/v1/agents/700/subscriptions", "admin-tok", NULL, 201);

    /* Silent client: a snapshot after the resume wait, then live events. */
    hc *a = sh_ws(&h, "700", tok, NULL);
    SH_RUN_UNTIL(&h, a->status == 101, 2000);
    assert_int_equal(a->status, 101);
    SH_RUN_FOR(&h, 60);
    assert_int_equal(a->nev, 0); /* still waiting for a resume message */
    SH_RUN_UNTIL(&h, a->nev == 1, 2000);
    assert_string_equal(hc_type(&a->ev[0], t, sizeof t), "snapshot");
    assert_int_equal(hc_seq(&a->ev[0]), 0);
    publish(&h, "700", 4);
    SH_RUN_UNTIL(&h, a->nev == 5, 2000);
    assert_seqs(a, 1, 1, 4);

    /* {"resume":2}: events 3 and 4, no snapshot, then live. */
    hc *b = sh_ws(&h, "700", tok, NULL);
    SH_RUN_UNTIL(&h, b->status == 101, 2000);
    hc_ws_send(b, "{\"resume\":2}");
    SH_RUN_UNTIL(&h, b->nev == 2, 2000);
    assert_seqs(b, 0, 3, 2);
    publish(&h, "700", 1);
    SH_RUN_UNTIL(&h, b->nev == 3, 2000);
    SH_RUN_FOR(&h, 200); /* the resume wait has passed: no late snapshot */
    assert_seqs(b, 0, 3, 3);

    /* ?after=4: event 5 at once. */
    hc *c = sh_ws(&h, "700", tok, "&after=4");
    SH_RUN_UNTIL(&h, c->nev == 1, 2000);
    assert_seqs(c, 0, 5, 1);

    /* {"resume":null}: a snapshot right away. */
    hc *d = sh_ws(&h, "700", tok, NULL);
    SH_RUN_UNTIL(&h, d->status == 101, 2000);
    hc_ws_send(d, "{\"resume\":null}");
    SH_RUN_UNTIL(&h, d->nev == 1, 100);
    assert_int_equal(d->nev, 1);
    assert_string_equal(hc_type(&d->ev[0], t, sizeof t), "snapshot");
    assert_int_equal(hc_seq(&d->ev[0]), 5);

    /* Beyond the window (8 kept): resync, then live. */
    publish(&h, "700", 10);
    hc *e = sh_ws(&h, "700", tok, NULL);
    SH_RUN_UNTIL(&h, e->status == 101, 2000);
    hc_ws_send(e, "{\"resume\":1}");
    SH_RUN_UNTIL(&h, e->nev == 1, 2000);
    assert_string_equal(hc_type(&e->ev[0], t, sizeof t), "resync");
    assert_int_equal(hc_seq(&e->ev[0]), 15);
    publish(&h, "700", 1);
    SH_RUN_UNTIL(&h, e->nev == 2, 2000);
    assert_int_equal(hc_seq(&e->ev[1]), 16);
    /* Every live client saw all 16 in order. */
    SH_RUN_UNTIL(&h, a->nev == 17, 2000);
    assert_seqs(a, 1, 1, 16);

    streams_stats st;
    streams_get_stats(h.st, &st);
    assert_int_equal(st.snapshots, 2);
    assert_int_equal(st.resyncs, 1);
    assert_int_equal(st.resumes, 2);
    assert_int_equal(st.clients, 5);
    hc_free(a);
    hc_free(b);
    hc_free(c);
    hc_free(d);
    hc_free(e);
    SH_RUN_FOR(&h, 30);
    streams_get_stats(h.st, &st);
    assert_int_equal(st.clients, 0);
    free(tok);
    sh_stop(&h);
}

/* A WebSocket client that stops reading is closed with 1008 "slow consumer" and resumes with
 * ?after= from the last seq it got, without a gap. */
static void test_ws_slow_consumer_closed_and_resumes(void **state)
{
    sh h;
    char q[64];
    (void)state;
    sh_start(&h, &(sh_opts){.stream_max_queued = 32 * 1024});
    char *tok = sh_subscribe(&h, "/v1/agents/700/subscriptions", "admin-tok", NULL, 201);
    hc *c = sh_ws(&h, "700", tok, "&after=0");
    SH_RUN_UNTIL(&h, c->status == 101, 2000);
    assert_int_equal(c->status, 101);
    uv_read_stop((uv_stream_t *)&c->tcp);
    streams_stats st = {0};
    int total = 0;
    char *pad = malloc(2001);
    memset(pad, 'y', 2000);
    pad[2000] = '\0';
    for (int round = 0; round < 400 && st.overflows == 0; round++) {
        for (int i = 0; i < 20; i++, total++) {
            bus_event *ev =
                bus_event_new(json_pack("{s:s,s:{s:s}}", "type", "test", "details", "pad", pad));
            assert_int_equal(bus_event_add_agent(ev, "700"), 0);
            assert_int_equal(bus_publish(h.b, ev, NULL), 0);
            bus_event_unref(ev);
        }
        SH_RUN_FOR(&h, 2);
        streams_get_stats(h.st, &st);
    }
    free(pad);
    assert_int_equal(st.overflows, 1);
    uv_read_start((uv_stream_t *)&c->tcp, hc_alloc, hc_on_read);
    SH_RUN_UNTIL(&h, c->nev > 0 && c->ev[c->nev - 1].event, 5000);
    hc_event *last = &c->ev[c->nev - 1];
    assert_non_null(last->event);
    assert_string_equal(last->event, "close");
    assert_string_equal(last->data, "slow consumer");
    long long got = c->nev >= 2 ? hc_seq(&c->ev[c->nev - 2]) : 0;
    assert_int_equal(c->nev - 1, got); /* 1..got in order, then the close */
    for (long long i = 0; i < got; i++)
        assert_int_equal(hc_seq(&c->ev[i]), i + 1);
    assert_true(got < total);
    snprintf(q, sizeof q, "&after=%lld", got);
    hc *r = sh_ws(&h, "700", tok, q);
    SH_RUN_UNTIL(&h, r->nev == (size_t)(total - got), 5000);
    assert_seqs(r, 0, got + 1, (size_t)(total - got));
    hc_free(r);
    hc_free(c);
    free(tok);
    sh_stop(&h);
}

/* GET .../poll with the given query; returns the parsed answer (owned) after checking 200. */
static json_t *poll(sh *h, const char *tok, const char *query, uint64_t *elapsed_ms)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/agents/700/stream/poll?token=%s%s", tok, query);
    uv_update_time(&h->loop);
    uint64_t t0 = uv_now(&h->loop);
    hc *c = hc_open(h, "GET", path, NULL, NULL);
    hc_wait_eof(c, 5000);
    uv_update_time(&h->loop);
    if (elapsed_ms)
        *elapsed_ms = uv_now(&h->loop) - t0;
    assert_int_equal(c->status, 200);
    assert_non_null(strstr(c->in.data, "\r\nAccess-Control-Allow-Origin: *\r\n"));
    json_t *j = json_loads(hc_body(c), 0, NULL);
    assert_non_null(j);
    hc_free(c);
    return j;
}

static const char *ev_type(json_t *j, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(j, "events"), i), "type"));
}

static size_t nevents(json_t *j)
{
    return json_array_size(json_object_get(j, "events"));
}

static long long last_of(json_t *j)
{
    return (long long)json_integer_value(json_object_get(j, "last"));
}

typedef struct later {
    uv_timer_t t;
    sh *h;
    int fired;
} later;

static void on_later(uv_timer_t *t)
{
    later *l = t->data;
    l->fired++;
    publish(l->h, "700", 1);
}

static void test_long_poll_after_and_timeout(void **state)
{
    sh h;
    uint64_t ms;
    (void)state;
    sh_start(&h, &(sh_opts){.window_events = 8});
    char *tok = sh_subscribe(&h, "/v1/agents/700/subscriptions", "admin-tok", NULL, 201);

    /* No after: the snapshot and the seq to continue from. */
    json_t *j = poll(&h, tok, "", NULL);
    assert_int_equal(nevents(j), 1);
    assert_string_equal(ev_type(j, 0), "snapshot");
    assert_int_equal(last_of(j), 0);
    json_decref(j);

    /* Events after SEQ at once. */
    publish(&h, "700", 3);
    j = poll(&h, tok, "&after=1&timeout=5", &ms);
    assert_int_equal(nevents(j), 2);
    assert_int_equal(last_of(j), 3);
    assert_true(ms < 1000);
    json_decref(j);

    /* Nothing newer and timeout=0: an empty answer at once. */
    j = poll(&h, tok, "&after=3&timeout=0", &ms);
    assert_int_equal(nevents(j), 0);
    assert_int_equal(last_of(j), 3);
    assert_true(ms < 1000);
    json_decref(j);

    /* Nothing newer: held until the next event (published 100 ms later). */
    later l = {.h = &h};
    assert_int_equal(uv_timer_init(&h.loop, &l.t), 0);
    l.t.data = &l;
    uv_timer_start(&l.t, on_later, 100, 0);
    j = poll(&h, tok, "&after=3&timeout=5", &ms);
    assert_int_equal(l.fired, 1);
    assert_int_equal(nevents(j), 1);
    assert_int_equal(last_of(j), 4);
    assert_true(ms >= 90 && ms < 2000);
    json_decref(j);
    uv_close((uv_handle_t *)&l.t, NULL);

    /* Nothing at all: the empty answer after the timeout. */
    j = poll(&h, tok, "&after=4&timeout=1", &ms);
    assert_int_equal(nevents(j), 0);
    assert_int_equal(last_of(j), 4);
    assert_true(ms >= 900);
    json_decref(j);

    /* Beyond the window: a resync carrying the state. */
    publish(&h, "700", 10);
    j = poll(&h, tok, "&after=2&timeout=0", NULL);
    assert_int_equal(nevents(j), 1);
    assert_string_equal(ev_type(j, 0), "resync");
    assert_int_equal(last_of(j), 14);
    assert_non_null(json_object_get(
        json_object_get(json_array_get(json_object_get(j, "events"), 0), "details"), "queues"));
    json_decref(j);

    /* Bad arguments. */
    char path[256];
    snprintf(path, sizeof path, "/v1/agents/700/stream/poll?token=%s&after=-1", tok);
    hc *bad = hc_open(&h, "GET", path, NULL, NULL);
    hc_wait_eof(bad, 2000);
    assert_int_equal(bad->status, 400);
    hc_free(bad);

    streams_stats st;
    streams_get_stats(h.st, &st);
    assert_int_equal(st.polls_held, 0);
    assert_int_equal(st.snapshots, 1);
    assert_int_equal(st.resyncs, 1);
    free(tok);
    sh_stop(&h);
}

/* A held poll whose client goes away is released (no answer, no leak). */
static void test_long_poll_client_leaves(void **state)
{
    sh h;
    char path[256];
    (void)state;
    sh_start(&h, &(sh_opts){0});
    char *tok = sh_subscribe(&h, "/v1/agents/700/subscriptions", "admin-tok", NULL, 201);
    snprintf(path, sizeof path, "/v1/agents/700/stream/poll?token=%s&after=0&timeout=30", tok);
    hc *c = hc_open(&h, "GET", path, NULL, NULL);
    streams_stats st = {0};
    SH_RUN_UNTIL(&h, (streams_get_stats(h.st, &st), st.polls_held == 1), 2000);
    assert_int_equal(st.polls_held, 1);
    hc_free(c);
    SH_RUN_UNTIL(&h, (streams_get_stats(h.st, &st), st.polls_held == 0), 2000);
    assert_int_equal(st.polls_held, 0);
    publish(&h, "700", 1); /* nobody to answer: must not crash or answer a dead request */
    SH_RUN_FOR(&h, 20);
    free(tok);
    sh_stop(&h);
}

static bool done(const hc *c)
{
    return hc_find(c, 0, "call.ended") >= 0 && hc_find(c, 0, "agentComplete") >= 0;
}

/* The simulator's queue call over the three transports at once: WebSocket and a long-poll loop
 * receive exactly the events (same seq, same text) the SSE client receives. */
static void test_three_transports_same_stream(void **state)
{
    sh h;
    char path[256];
    (void)state;
    sh_start(&h, &(sh_opts){.time_scale = 0.1});
    char *tok = sh_subscribe(&h, "/v1/agents/502/subscriptions", "agent-502",
                             "{\"queues\":[\"sales\"]}", 201);
    hc *sse = sh_sse(&h, "502", tok, NULL);
    hc *ws = sh_ws(&h, "502", tok, "&after=0");
    SH_RUN_UNTIL(&h, sse->nev == 1 && ws->status == 101, 2000);
    /* Any origin may open the stream: the token is in the URL, there are no cookies. */
    assert_non_null(strstr(sse->in.data, "\r\nAccess-Control-Allow-Origin: *\r\n"));
    assert_int_equal(hc_seq(&sse->ev[0]), 0);
    assert_int_equal(pbxsim_play(h.sim, "queue-call-answered", NULL), 0);
    /* The long-poll client polls in a loop, each time from the last seq it got, until it has
     * caught up with the SSE client at the end of the call. */
    json_t *polled = json_array();
    long long after = 0;
    for (int i = 0; i < 100; i++) {
        if (done(sse) && after == hc_seq(&sse->ev[sse->nev - 1]))
            break;
        snprintf(path, sizeof path, "/v1/agents/502/stream/poll?token=%s&after=%lld&timeout=1", tok,
                 after);
        hc *p = hc_open(&h, "GET", path, NULL, NULL);
        hc_wait_eof(p, 3000);
        assert_int_equal(p->status, 200);
        json_t *j = json_loads(hc_body(p), 0, NULL);
        assert_non_null(j);
        json_array_extend(polled, json_object_get(j, "events"));
        after = last_of(j);
        json_decref(j);
        hc_free(p);
    }
    SH_RUN_UNTIL(&h, done(sse) && ws->nev == sse->nev - 1, 3000);
    assert_true(done(sse));
    assert_int_equal(ws->nev, sse->nev - 1);
    assert_int_equal(json_array_size(polled), sse->nev - 1);
    for (size_t i = 1; i < sse->nev; i++) {
        /* WebSocket carries the very same text; long-poll the same object. */
        assert_string_equal(sse->ev[i].data, ws->ev[i - 1].data);
        json_t *want = json_loads(sse->ev[i].data, 0, NULL);
        assert_true(json_equal(want, json_array_get(polled, i - 1)));
        json_decref(want);
    }
    json_decref(polled);
    hc_free(sse);
    hc_free(ws);
    free(tok);
    sh_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_snapshot_resume_and_after),
        cmocka_unit_test(test_ws_slow_consumer_closed_and_resumes),
        cmocka_unit_test(test_long_poll_after_and_timeout),
        cmocka_unit_test(test_long_poll_client_leaves),
        cmocka_unit_test(test_three_transports_same_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
