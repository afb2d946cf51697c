/* test_bus.c: the event bus: per-stream sequence numbers, replay windows (count and age),
 * gaps, queue watches, subscriber lifetimes and event reference counts. */
#include "testutil.h"

#include "bus/bus.h"
#include "core/error.h"
#include "core/strmap.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t fake_now;
static int64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static bus *make_bus(size_t events, int64_t ms)
{
    bus_config cfg = {.window_events = events, .window_ms = ms, .now_ms = fake_clock};
    fake_now = 1000000;
    bus *b = bus_new(&cfg);
    assert_non_null(b);
    return b;
}

static bus_event *make_event(const char *type, int n, const char *agent, const char *queue)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:i}}", "id", "x", "type", type, "details", "n", n);
    bus_event *ev = bus_event_new(o);
    assert_non_null(ev);
    if (agent)
        assert_int_equal(bus_event_add_agent(ev, agent), 0);
    if (queue)
        assert_int_equal(bus_event_set_queue(ev, queue), 0);
    return ev;
}

static void publish(bus *b, const char *type, int n, const char *agent, const char *queue)
{
    bus_event *ev = make_event(type, n, agent, queue);
    assert_int_equal(bus_publish(b, ev, NULL), 0);
    bus_event_unref(ev);
}

typedef struct rec {
    int calls;
    uint64_t seqs[64];
    int ns[64];
    bus_sub *self;
    bus_sub **selfp; /* alternative handle (set by bus_subscribe_from) */
    bool unsubscribe_self;
    bus *pub_bus; /* publish from inside the callback once */
} rec;

static void rec_cb(void *ud, const bus_entry *e)
{
    rec *r = ud;
    json_t *o = bus_event_parse(e->ev);
    assert_non_null(o);
    if (r->calls < 64) {
        r->seqs[r->calls] = e->seq;
        r->ns[r->calls] =
            (int)json_integer_value(json_object_get(json_object_get(o, "details"), "n"));
    }
    json_decref(o);
    r->calls++;
    if (r->unsubscribe_self) {
        bus_unsubscribe(r->selfp ? *r->selfp : r->self);
        r->self = NULL;
        r->unsubscribe_self = false;
    }
    if (r->pub_bus) {
        bus *b = r->pub_bus;
        r->pub_bus = NULL;
        publish(b, "nested", 999, "501", NULL);
    }
}

static void test_bus_sequences_are_per_stream_and_gap_free(void **state)
{
    bus *b = make_bus(100, 60000);
    bus_stream *s501, *s502;
    rec r = {0};
    uint64_t seq = 0;
    assert_int_equal(bus_stream_open(b, "501", &s501), 0);
    assert_int_equal(bus_stream_open(b, "502", &s502), 0);
    for (int i = 1; i <= 10; i++)
        publish(b, "queueMemberStatus", i, (i % 2) ? "501" : "502", NULL);
    bus_event *ev = make_event("call.started", 11, NULL, NULL);
    assert_int_equal(bus_publish(b, ev, &seq), 0);
    bus_event_unref(ev);
    assert_int_equal(seq, 11);
    assert_int_equal(bus_stream_last_seq(bus_global(b)), 11);
    assert_int_equal(bus_stream_last_seq(s501), 5);
    assert_int_equal(bus_stream_last_seq(s502), 5);
    assert_int_equal(bus_replay(s501, 0, rec_cb, &r), 0);
    assert_int_equal(r.calls, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r.seqs[i], (uint64_t)i + 1);
        assert_int_equal(r.ns[i], 2 * i + 1); /* only agent 501's events, in order */
    }
    bus_stream_close(s501);
    bus_stream_close(s502);
    bus_free(b);
}

static void test_bus_replay_window_edges(void **state)
{
    bus *b = make_bus(5, 60000);
    rec r = {0};
    bus_stream *g = bus_global(b);
    for (int i = 1; i <= 8; i++)
        publish(b, "t", i, NULL, NULL);
    /* Window holds 4..8. */
    assert_int_equal(bus_stream_first_seq(g), 4);
    assert_int_equal(bus_stream_window_count(g), 5);
    assert_int_equal(bus_replay(g, 3, rec_cb, &r), 0); /* oldest kept is the next one: fine */
    assert_int_equal(r.calls, 5);
    assert_int_equal(r.seqs[0], 4);
    assert_int_equal(r.seqs[4], 8);
    memset(&r, 0, sizeof r);
    assert_int_equal(bus_replay(g, 2, rec_cb, &r), BUS_GAP); /* 3 was dropped */
    assert_int_equal(r.calls, 0);
    assert_int_equal(bus_replay(g, 0, rec_cb, &r), BUS_GAP);
    assert_int_equal(bus_replay(g, 8, rec_cb, &r), 0); /* up to date: nothing */
    assert_int_equal(r.calls, 0);
    assert_int_equal(bus_replay(g, 9, rec_cb, &r), BUS_GAP); /* from the future (restart) */
    assert_int_equal(r.calls, 0);
    assert_int_equal(bus_replay(g, 7, rec_cb, &r), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.seqs[0], 8);
    bus_free(b);
}

static void test_bus_replay_window_by_age(void **state)
{
    bus *b = make_bus(1000, 10000);
    rec r = {0};
    bus_stream *g = bus_global(b);
    publish(b, "t", 1, NULL, NULL); /* t = 0 */
    fake_now += 4000;
    publish(b, "t", 2, NULL, NULL); /* t = 4 s */
    fake_now += 6000;               /* now 10 s: entry 1 is exactly window_ms old: kept */
    assert_int_equal(bus_replay(g, 0, rec_cb, &r), 0);
    assert_int_equal(r.calls, 2);
    fake_now += 1; /* entry 1 is now older than the window */
    memset(&r, 0, sizeof r);
    assert_int_equal(bus_replay(g, 0, rec_cb, &r), BUS_GAP);
    assert_int_equal(bus_replay(g, 1, rec_cb, &r), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.ns[0], 2);
    fake_now += 100000; /* everything aged out: empty window */
    bus_expire(b);
    assert_int_equal(bus_stream_window_count(g), 0);
    assert_int_equal(bus_stream_first_seq(g), 3);
    memset(&r, 0, sizeof r);
    assert_int_equal(bus_replay(g, 2, rec_cb, &r), 0); /* was up to date: still fine */
    assert_int_equal(bus_replay(g, 1, rec_cb, &r), BUS_GAP);
    assert_int_equal(r.calls, 0);
    bus_free(b);
}

static void test_bus_event_refcounts(void **state)
{
    bus *b = make_bus(2, 60000);
    bus_stream *s;
    assert_int_equal(bus_stream_open(b, "501", &s), 0);
    bus_event *ev = make_event("agentComplete", 1, "501", NULL);
    assert_int_equal(bus_event_refcount(ev), 1);
    assert_int_equal(bus_publish(b, ev, NULL), 0);
    assert_int_equal(bus_event_refcount(ev), 3);                 /* ours + global + agent 501 */
    assert_int_equal(bus_event_add_agent(ev, "502"), SB_EINVAL); /* frozen once published */
    publish(b, "t", 2, NULL, NULL);
    assert_int_equal(bus_event_refcount(ev), 3);
    publish(b, "t", 3, NULL, NULL); /* pushes ev out of the global window (2 entries) */
    assert_int_equal(bus_event_refcount(ev), 2);
    bus_stream_close(s); /* last open: the agent stream and its window go */
    assert_int_equal(bus_event_refcount(ev), 1);
    bus_event_unref(ev);
    bus_free(b);
}

static void test_bus_text_is_shared_and_formatted_with_seq(void **state)
{
    bus *b = make_bus(10, 60000);
    bus_stream *s;
    sb_buf out;
    assert_int_equal(bus_stream_open(b, "501", &s), 0);
    publish(b, "t", 0, NULL, NULL);
    bus_event *ev = make_event("phoneNumber", 7, "501", NULL);
    assert_int_equal(bus_publish(b, ev, NULL), 0);
    rec r = {0};
    sb_buf_init(&out, 4096);
    /* Both streams hold the very same event object and text. */
    size_t len;
    const char *text = bus_event_text(ev, &len);
    assert_string_equal(text, "{\"id\":\"x\",\"type\":\"phoneNumber\",\"details\":{\"n\":7}}");
    assert_int_equal(bus_replay(s, 0, rec_cb, &r), 0);
    assert_int_equal(r.calls, 1);
    bus_entry e = {.seq = 1, .ev = ev};
    assert_int_equal(bus_entry_format(&e, &out), 0);
    assert_string_equal(out.data,
                        "{\"seq\":1,\"id\":\"x\",\"type\":\"phoneNumber\",\"details\":{\"n\":7}}");
    sb_buf_free(&out);
    bus_event_unref(ev);
    bus_stream_close(s);
    bus_free(b);
}

static void test_bus_queue_watch_and_dedup(void **state)
{
    bus *b = make_bus(10, 60000);
    bus_stream *s501, *s503;
    rec r = {0};
    assert_int_equal(bus_stream_open(b, "501", &s501), 0);
    assert_int_equal(bus_stream_open(b, "503", &s503), 0);
    assert_int_equal(bus_stream_watch_queue(s501, "sales"), 0);
    assert_int_equal(bus_stream_watch_queue(s501, "sales"), 0);
    assert_int_equal(bus_stream_watch_queue(bus_global(b), "sales"), SB_EINVAL);
    publish(b, "queueCount", 1, NULL, "sales");    /* 501 via its watch */
    publish(b, "queueCount", 2, "501", "sales");   /* target and watch: once */
    publish(b, "queueCount", 3, NULL, "support");  /* nobody watches support */
    publish(b, "queueCount", 4, "503", "support"); /* 503 as target */
    assert_int_equal(bus_stream_last_seq(s501), 2);
    assert_int_equal(bus_stream_last_seq(s503), 1);
    assert_int_equal(bus_replay(s501, 0, rec_cb, &r), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.ns[0], 1);
    assert_int_equal(r.ns[1], 2);
    bus_stream_close(s501);
    /* After the close, sales watchers are gone; a new open starts a fresh stream. */
    publish(b, "queueCount", 5, NULL, "sales");
    assert_int_equal(bus_stream_open(b, "501", &s501), 0);
    assert_int_equal(bus_stream_last_seq(s501), 0);
    bus_stream_close(s501);
    bus_stream_close(s503);
    assert_int_equal(bus_stream_last_seq(bus_global(b)), 5);
    bus_free(b);
}

static void test_bus_live_subscribers_and_unsubscribe_in_callback(void **state)
{
    bus *b = make_bus(100, 60000);
    bus_stream *s;
    rec a = {0}, c = {0};
    assert_int_equal(bus_stream_open(b, "501", &s), 0);
    a.self = bus_subscribe(s, rec_cb, &a);
    c.self = bus_subscribe(s, rec_cb, &c);
    assert_non_null(a.self);
    assert_non_null(c.self);
    bus_stream_close(s); /* subscriptions keep the stream open */
    publish(b, "t", 1, "501", NULL);
    a.unsubscribe_self = true;
    publish(b, "t", 2, "501", NULL); /* a sees it and leaves inside the callback */
    publish(b, "t", 3, "501", NULL);
    assert_int_equal(a.calls, 2);
    assert_int_equal(c.calls, 3);
    assert_int_equal(c.seqs[2], 3);
    bus_unsubscribe(c.self); /* last holder: the stream goes away */
    publish(b, "t", 4, "501", NULL);
    assert_int_equal(c.calls, 3);
    assert_int_equal(bus_stream_open(b, "501", &s), 0);
    assert_int_equal(bus_stream_last_seq(s), 0);
    bus_stream_close(s);
    bus_free(b);
}

static void test_bus_subscribe_from_has_no_gap_and_no_duplicate(void **state)
{
    bus *b = make_bus(100, 60000);
    bus_stream *g = bus_global(b);
    bus_sub *sub = NULL;
    rec r = {0};
    for (int i = 1; i <= 5; i++)
        publish(b, "t", i, NULL, NULL);
    r.pub_bus = b; /* the first replayed event triggers a publish of seq 6 */
    assert_int_equal(bus_subscribe_from(g, 2, rec_cb, &r, &sub), 0);
    assert_non_null(sub);
    publish(b, "t", 7, NULL, NULL);
    assert_int_equal(r.calls, 5); /* 3,4,5 replayed, 6 and 7 live: each once */
    for (int i = 0; i < 5; i++)
        assert_int_equal(r.seqs[i], (uint64_t)i + 3);
    bus_unsubscribe(sub);
    memset(&r, 0, sizeof r);
    assert_int_equal(bus_subscribe_from(g, 100, rec_cb, &r, &sub), BUS_GAP);
    assert_null(sub);
    assert_int_equal(r.calls, 0);
    /* Unsubscribing during the replay part: no live delivery afterwards. */
    r.unsubscribe_self = true;
    r.selfp = &sub;
    assert_int_equal(bus_subscribe_from(g, 0, rec_cb, &r, &sub), 0);
    assert_null(sub);
    publish(b, "t", 8, NULL, NULL);
    assert_int_equal(r.calls, 1);
    bus_free(b);
}

static void test_bus_many_agents_each_gap_free(void **state)
{
    bus *b = make_bus(10000, 600000);
    enum { NA = 200, NE = 5000 };
    bus_stream *s[NA];
    char name[16];
    for (int i = 0; i < NA; i++) {
        snprintf(name, sizeof name, "%d", 1000 + i);
        assert_int_equal(bus_stream_open(b, name, &s[i]), 0);
    }
    tu_seed(42);
    uint64_t expect[NA] = {0};
    for (int n = 0; n < NE; n++) {
        int a = (int)(tu_rand() % NA);
        snprintf(name, sizeof name, "%d", 1000 + a);
        publish(b, "t", n, name, NULL);
        expect[a]++;
    }
    for (int i = 0; i < NA; i++) {
        assert_int_equal(bus_stream_last_seq(s[i]), expect[i]);
        assert_int_equal(bus_stream_first_seq(s[i]), 1);
        bus_stream_close(s[i]);
    }
    assert_int_equal(bus_stream_last_seq(bus_global(b)), NE);
    bus_free(b);
}

typedef struct seqlog {
    int calls;
    uint64_t first, last;
    bool disorder;
} seqlog;

static void seqlog_cb(void *ud, const bus_entry *e)
{
    seqlog *l = ud;
    if (l->calls == 0)
        l->first = e->seq;
    else if (e->seq != l->last + 1)
        l->disorder = true;
    l->last = e->seq;
    l->calls++;
}

/* Random publishes, clock jumps and replays against a reference: a replay after x returns
 * exactly x+1..last when x+1 is still in the window (by count and by age), BUS_GAP otherwise. */
static void test_bus_window_matches_a_reference(void **state)
{
    enum { MAXN = 4000 };
    static int64_t born[MAXN + 1]; /* publish time of each global seq */
    bus *b = make_bus(50, 5000);
    bus_stream *g = bus_global(b);
    uint64_t n = 0;
    tu_seed(99);
    for (int step = 0; step < 20000 && n < MAXN; step++) {
        uint32_t r = tu_rand() % 100;
        if (r < 45) {
            publish(b, "t", (int)n, NULL, NULL);
            born[++n] = fake_now;
        } else if (r < 55) {
            fake_now += tu_rand() % 700;
        } else {
            uint64_t after = n ? tu_rand() % (n + 2) : tu_rand() % 2;
            /* Reference: the oldest seq kept is the newest of (n-49) and the first seq younger
             * than the window. */
            uint64_t first = n > 50 ? n - 49 : 1;
            while (first <= n && fake_now - born[first] > 5000)
                first++;
            seqlog l = {0};
            int rc = bus_replay(g, after, seqlog_cb, &l);
            bool gap = after > n || after + 1 < first;
            assert_int_equal(rc, gap ? BUS_GAP : 0);
            if (gap) {
                assert_int_equal(l.calls, 0);
            } else {
                assert_int_equal((uint64_t)l.calls, n - after);
                assert_false(l.disorder);
                if (l.calls) {
                    assert_int_equal(l.first, after + 1);
                    assert_int_equal(l.last, n);
                }
            }
        }
    }
    assert_true(n > 1000);
    bus_free(b);
}

/* A callback that publishes: every subscriber still sees every entry once, in order. */
static bus *nest_bus;
static int nest_done;
static void nest_cb(void *ud, const bus_entry *e)
{
    rec *r = ud;
    rec_cb(ud, e);
    if (r == NULL || nest_done++)
        return;
    publish(nest_bus, "nested", 2, "502", NULL);
}

static void test_bus_publish_from_a_callback_keeps_order(void **state)
{
    bus *b = make_bus(100, 60000);
    bus_stream *s1, *s2;
    rec r1 = {0}, r2 = {0};
    nest_bus = b;
    nest_done = 0;
    assert_int_equal(bus_stream_open(b, "501", &s1), 0);
    assert_int_equal(bus_stream_open(b, "502", &s2), 0);
    bus_sub *a = bus_subscribe(s1, nest_cb, &r1);
    bus_sub *c = bus_subscribe(s2, rec_cb, &r2);
    bus_event *ev = make_event("t", 1, "501", NULL);
    assert_int_equal(bus_event_add_agent(ev, "502"), 0);
    assert_int_equal(bus_publish(b, ev, NULL), 0); /* 501's callback publishes to 502 */
    bus_event_unref(ev);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 2);
    assert_int_equal(r2.seqs[0], 1);
    assert_int_equal(r2.ns[0], 1);
    assert_int_equal(r2.seqs[1], 2);
    assert_int_equal(r2.ns[1], 2);
    bus_unsubscribe(a);
    bus_unsubscribe(c);
    bus_stream_close(s1);
    bus_stream_close(s2);
    bus_free(b);
}

/* The string map under the bus and the model (src/core/strmap.c): growth, replacement, slices
 * as keys, deleting the current entry while iterating. */
static void test_bus_strmap_basics(void **state)
{
    sb_strmap m;
    char key[32];
    static int vals[5000];
    sb_strmap_init(&m);
    assert_null(sb_strmap_get(&m, SB_SLICE_LIT("x")));
    assert_null(sb_strmap_del(&m, SB_SLICE_LIT("x")));
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "1795478344.%d", i);
        vals[i] = i;
        assert_int_equal(sb_strmap_put(&m, sb_slice_cstr(key), &vals[i]), 0);
    }
    assert_int_equal(sb_strmap_count(&m), 5000);
    assert_int_equal(sb_strmap_put(&m, SB_SLICE_LIT("1795478344.7"), &vals[9]), 0);
    assert_int_equal(sb_strmap_count(&m), 5000); /* replaced, not added */
    assert_ptr_equal(sb_strmap_get(&m, SB_SLICE_LIT("1795478344.7")), &vals[9]);
    /* A slice into a longer buffer finds the key without copying. */
    const char *wire = "Uniqueid: 1795478344.42\r\n";
    assert_ptr_equal(sb_strmap_get(&m, (sb_slice){wire + 10, 13}), &vals[42]);
    sb_strmap_iter it;
    const char *k;
    void *v;
    int seen = 0, deleted = 0;
    sb_strmap_iter_init(&it, &m);
    while (sb_strmap_iter_next(&it, &k, &v)) {
        seen++;
        if (*(int *)v % 2 == 0) {
            assert_ptr_equal(sb_strmap_del(&m, sb_slice_cstr(k)), v);
            deleted++;
        }
    }
    assert_int_equal(seen, 5000);
    assert_int_equal(sb_strmap_count(&m), (size_t)(5000 - deleted));
    assert_null(sb_strmap_get(&m, SB_SLICE_LIT("1795478344.42")));
    assert_ptr_equal(sb_strmap_get(&m, SB_SLICE_LIT("1795478344.43")), &vals[43]);
    sb_strmap_free(&m);
    assert_int_equal(sb_strmap_count(&m), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bus_sequences_are_per_stream_and_gap_free),
        cmocka_unit_test(test_bus_replay_window_edges),
        cmocka_unit_test(test_bus_replay_window_by_age),
        cmocka_unit_test(test_bus_event_refcounts),
        cmocka_unit_test(test_bus_text_is_shared_and_formatted_with_seq),
        cmocka_unit_test(test_bus_queue_watch_and_dedup),
        cmocka_unit_test(test_bus_live_subscribers_and_unsubscribe_in_callback),
        cmocka_unit_test(test_bus_subscribe_from_has_no_gap_and_no_duplicate),
        cmocka_unit_test(test_bus_many_agents_each_gap_free),
        cmocka_unit_test(test_bus_window_matches_a_reference),
        cmocka_unit_test(test_bus_publish_from_a_callback_keeps_order),
        cmocka_unit_test(test_bus_strmap_basics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
