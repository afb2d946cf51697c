/* test_streams_fanout.c: the live fan-out of a hub (decision 0015): the events gathered during
 * one flush leave as ONE shared message per client, in order, with live_flush_ms and without;
 * a client that joins while events are gathered, and one that resumes, see no gap and no
 * duplicate; the sweep cut in slices. Everything runs on one loop (test_streams_harness.h).
 */
#include "test_streams_harness.h"

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

/* Every event from index from on has seq = first, first + 1, ... and the SSE id equals it. */
static void assert_contiguous(const hc *c, size_t from, long long first)
{
    long long want = first;
    for (size_t i = from; i < c->nev; i++) {
        assert_non_null(c->ev[i].id);
        assert_int_equal(hc_seq(&c->ev[i]), want);
        assert_int_equal(atoll(c->ev[i].id), want);
        want++;
    }
}

static void run_batches(uint32_t flush_ms)
{
    sh h;
    streams_stats st0, st;
    sh_start(&h, &(sh_opts){.live_flush_ms = flush_ms});
    char *tok = sh_subscribe(&h, "/v1/agents/700/subscriptions", "sup-tok", NULL, 201);
    hc *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = sh_sse(&h, "700", tok, NULL);
    SH_RUN_UNTIL(&h, c[0]->nev >= 1 && c[1]->nev >= 1 && c[2]->nev >= 1, 2000);
    SH_RUN_FOR(&h, 50); /* all three on the live list */
    for (int i = 0; i < 3; i++)
        assert_int_equal(c[i]->nev, 1); /* the snapshot */
    long long first = hc_seq(&c[0]->ev[0]) + 1;
    streams_get_stats(h.st, &st0);

    publish(&h, "700", 40); /* in one go: one flush, one batch for the three clients */
    SH_RUN_UNTIL(&h, c[0]->nev == 41 && c[1]->nev == 41 && c[2]->nev == 41, 3000);
    streams_get_stats(h.st, &st);
    assert_int_equal(st.batches - st0.batches, 1);
    assert_int_equal(st.pushes - st0.pushes, 3 * 40);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i]->nev, 41);
        assert_contiguous(c[i], 1, first);
    }

    /* A client resuming from the middle while more events are being gathered. */
    char hdr[64];
    snprintf(hdr, sizeof hdr, "Last-Event-ID: %lld\r\n", first + 19);
    hc *r = sh_sse(&h, "700", tok, hdr);
    publish(&h, "700", 10);
    SH_RUN_UNTIL(&h, r->nev == 30 && c[0]->nev == 51, 3000);
    publish(&h, "700", 5);
    SH_RUN_UNTIL(&h, r->nev == 35 && c[2]->nev == 56, 3000);
    assert_int_equal(r->nev, 35); /* 20 + 10 + 5: none missing, none twice */
    assert_contiguous(r, 0, first + 20);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i]->nev, 56);
        assert_contiguous(c[i], 1, first);
    }
    streams_get_stats(h.st, &st);
    assert_int_equal(st.clients, 4);
    assert_int_equal(st.overflows, 0);

    hc_free(r);
    for (int i = 0; i < 3; i++)
        hc_free(c[i]);
    free(tok);
    sh_stop(&h);
}

static void test_live_batch_per_iteration(void **state)
{
    (void)state;
    run_batches(0);
}

static void test_live_batch_with_flush_interval(void **state)
{
    (void)state;
    run_batches(30);
}

/* Slices of 2 clients: a pass over 6 clients takes three loop iterations, events published
 * between slices join the pass under way, and a client leaving mid-pass breaks nothing. */
static void test_live_sweep_in_slices(void **state)
{
    sh h;
    streams_stats st0, st;
    (void)state;
    sh_start(&h, &(sh_opts){.live_slice = 2});
    char *tok = sh_subscribe(&h, "/v1/agents/700/subscriptions", "sup-tok", NULL, 201);
    hc *c[6];
    for (int i = 0; i < 6; i++)
        c[i] = sh_sse(&h, "700", tok, NULL);
    SH_RUN_FOR(&h, 100);
    for (int i = 0; i < 6; i++)
        assert_int_equal(c[i]->nev, 1); /* the snapshot */
    long long first = hc_seq(&c[0]->ev[0]) + 1;
    streams_get_stats(h.st, &st0);

    publish(&h, "700", 20);
    uv_run(&h.loop, UV_RUN_NOWAIT); /* one iteration: one slice (2 clients) is served */
    streams_get_stats(h.st, &st);
    assert_int_equal(st.pushes - st0.pushes, 2 * 20);
    assert_int_equal(st.batches - st0.batches, 1);
    publish(&h, "700", 5); /* joins the pass under way */
    hc_free(c[5]);         /* leaves while the pass is under way */
    c[5] = NULL;
    SH_RUN_UNTIL(&h,
                 c[0]->nev == 26 && c[1]->nev == 26 && c[2]->nev == 26 && c[3]->nev == 26 &&
                     c[4]->nev == 26,
                 3000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(c[i]->nev, 26);
        assert_contiguous(c[i], 1, first);
    }
    streams_get_stats(h.st, &st);
    /* 5 or 6 clients times 25 events, in at least two batches (the first pass started before
     * the last 5 events existed), and at most one per client turn. */
    assert_true(st.pushes - st0.pushes >= 5 * 25 && st.pushes - st0.pushes <= 6 * 25);
    assert_true(st.batches - st0.batches >= 2 && st.batches - st0.batches <= 12);
    assert_int_equal(st.overflows, 0);
    SH_RUN_FOR(&h, 50);
    streams_get_stats(h.st, &st);
    assert_int_equal(st.clients, 5);
    for (int i = 0; i < 5; i++)
        hc_free(c[i]);
    free(tok);
    sh_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_batch_per_iteration),
        cmocka_unit_test(test_live_batch_with_flush_interval),
        cmocka_unit_test(test_live_sweep_in_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
