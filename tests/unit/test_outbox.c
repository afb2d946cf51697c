/* test_outbox.c: the outbox with scripted test sinks: order, retries with back-off, dead letters,
 * a down sink not holding back another, per-call order for partitioned sinks, filters, restart
 * from the stored cursor, retry/replay operations, retention and the size watch. */
#include "testutil.h"

#include "core/error.h"
#include "outbox/outbox.h"
#include "outbox_test_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

typedef struct fx {
    char dir[64];
    char db[128];
    uv_loop_t loop;
    outbox *ob;
    int durable, durable_err, exist, closed;
    int64_t last_seq;
    bool is_ordered;
} fx;

/* Every test runs three times (main): sinks reading the outbox's memory tail (the default), the
 * store only (no tail), and a tail so small that reads switch between the two. */
static int64_t g_tail_bytes;

static void fx_open_outbox(fx *f, const outbox_options *o)
{
    outbox_options opt = o ? *o : (outbox_options){0};
    opt.path = f->db;
    if (!opt.tail_bytes)
        opt.tail_bytes = g_tail_bytes;
    assert_int_equal(outbox_open(&f->loop, &opt, &f->ob), 0);
}

static void fx_init(fx *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sb-outbox-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/store.db", f->dir);
    uv_loop_init(&f->loop);
    f->is_ordered = true;
}

static void on_tick(uv_timer_t *t) {}

/* Runs the loop until pred(ud) or timeout; returns whether pred became true. */
static bool run_until(fx *f, bool (*pred)(void *), void *ud, int timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    uv_timer_start(&tick, on_tick, 2, 2);
    uint64_t end = uv_now(&f->loop) + (uint64_t)timeout_ms;
    bool ok;
    while (!(ok = pred(ud)) && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return ok;
}

static void run_ms(fx *f, int ms)
{
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    uv_timer_start(&tick, on_tick, 2, 2);
    uint64_t end = uv_now(&f->loop) + (uint64_t)ms;
    while (uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void on_closed(void *ud)
{
    fx *f = ud;
    f->closed++;
}

static bool is_closed(void *ud)
{
    return ((fx *)ud)->closed > 0;
}

static void fx_close_outbox(fx *f)
{
    int before = f->closed;
    outbox_close(f->ob, on_closed, f);
    assert_true(run_until(f, is_closed, f, 5000));
    assert_int_equal(f->closed, before + 1);
    f->closed = 0;
    f->ob = NULL;
}

static void fx_fini(fx *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    const char *suffix[] = {"", "-wal", "-shm"};
    char p[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->db, suffix[i]);
        unlink(p);
    }
    assert_int_equal(rmdir(f->dir), 0);
}

static void on_durable(int status, int64_t seq, void *ud)
{
    fx *f = ud;
    if (status == SB_EEXIST)
        f->exist++;
    else if (status)
        f->durable_err++;
    else {
        if (seq <= f->last_seq)
            f->is_ordered = false;
        f->last_seq = seq;
        f->durable++;
    }
}

/* Appends n events "prefix-i" with call keys key(i); time increases 1 ms per event from t0. */
static void append_n(fx *f, const char *prefix, int n, int nkeys, int64_t t0)
{
    char id[64], key[24], payload[128];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        snprintf(key, sizeof key, "call-%d", nkeys ? i % nkeys : 0);
        int len =
            snprintf(payload, sizeof payload, "{\"id\":\"%s\",\"type\":\"call.started\"}", id);
        store_event ev = {0, id, "call.started", "pbx1", key, t0 + i, payload, (size_t)len};
        assert_int_equal(outbox_append(f->ob, &ev, on_durable, f), 0);
    }
}

/* Every seq 1..n was accepted, and the LAST acceptance of each seq comes after the last one of
 * every smaller seq: what a receiver that keeps the latest copy sees is in order. */
static bool final_order_ok(const tsink *t, int64_t n)
{
    int64_t *last = calloc((size_t)n + 1, sizeof *last);
    for (int i = 0; i < t->ok && i < TS_MAX; i++)
        if (t->ok_seq[i] >= 1 && t->ok_seq[i] <= n)
            last[t->ok_seq[i]] = i + 1;
    bool ok = true;
    for (int64_t s = 1; s <= n; s++)
        if (!last[s] || (s > 1 && last[s] < last[s - 1]))
            ok = false;
    free(last);
    return ok;
}

typedef struct waitok {
    tsink *t;
    int want;
} waitok;

static bool has_ok(void *ud)
{
    waitok *w = ud;
    return w->t->ok >= w->want;
}

static bool has_durable_ud(void *ud)
{
    fx *f = ((void **)ud)[0];
    int want = *(int *)((void **)ud)[1];
    return f->durable + f->exist + f->durable_err >= want;
}

static void wait_durable(fx *f, int want)
{
    void *arg[2] = {f, &want};
    assert_true(run_until(f, has_durable_ud, arg, 10000));
}

static bool backlog_empty(void *ud)
{
    outbox_stats os;
    outbox_stats_get(ud, &os);
    return os.backlog == 0;
}

typedef struct sinkat {
    outbox *ob;
    const char *name;
    int64_t cursor;
} sinkat;

static bool sink_at(void *ud)
{
    sinkat *a = ud;
    outbox_sink_stats st;
    return outbox_sink_stats_get(a->ob, a->name, &st) == 0 && st.cursor >= a->cursor;
}

static void test_outbox_delivers_in_order_once(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    tsink t;
    ts_init(&t, &f.loop, NULL);
    t.is_async = true;
    outbox_sink_config cfg = {.name = "hook", .batch_max = 50};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), SB_EEXIST);
    append_n(&f, "a", 3000, 7, 1000);
    assert_int_equal(f.durable, 0); /* durable only once the writer committed */
    waitok w = {&t, 3000};
    assert_true(run_until(&f, has_ok, &w, 10000));
    assert_int_equal(f.durable, 3000);
    assert_true(f.is_ordered);
    run_ms(&f, 20);
    assert_int_equal(t.ok, 3000); /* exactly once: nothing more came */
    assert_int_equal(t.attempts, 3000);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(t.ok_seq[i], i + 1);
    assert_true(t.max_batch_seen <= 50);
    assert_true(t.deliver_calls >= 3000 / 50);
    outbox_sink_stats st;
    assert_int_equal(outbox_sink_stats_get(f.ob, "hook", &st), 0);
    assert_int_equal(st.cursor, 3000);
    assert_int_equal(st.delivered, 3000);
    if (g_tail_bytes == 0) { /* a sink that keeps up reads nothing back from the store */
        assert_int_equal(st.from_tail, 3000);
        assert_int_equal(st.from_store, 0);
    } else if (g_tail_bytes < 0) {
        assert_int_equal(st.from_tail, 0);
        assert_int_equal(st.from_store, 3000);
    } else {
        assert_int_equal(st.from_tail + st.from_store, 3000);
    }
    assert_int_equal(outbox_sink_stats_get(f.ob, "nope", &st), SB_ENOTFOUND);
    outbox_stats os;
    outbox_stats_get(f.ob, &os);
    assert_int_equal(os.appended, 3000);
    assert_int_equal(os.durable, 3000);
    assert_int_equal(os.failed, 0);
    assert_int_equal(os.committed, 3000);
    /* The writer catches up with the sink's cursor updates. */
    assert_true(run_until(&f, backlog_empty, f.ob, 5000));
    outbox_stats_get(f.ob, &os);
    assert_int_equal(os.backlog, 0);
    assert_true(os.store_bytes > 0);
    assert_false(os.is_over_warn);
    fx_close_outbox(&f);
    assert_int_equal(t.free_calls, 1);
    /* The cursor reached the store. */
    store_sink_status ss;
    assert_int_equal(outbox_admin_status(f.db, "hook", &ss), 0);
    assert_int_equal(ss.cursor, 3000);
    assert_int_equal(ss.pending, 0);
    assert_int_equal(ss.dead, 0);
    ts_fini(&t);
    fx_fini(&f);
}

/* A tail of about 8 KB: a sink added after 100 events (more than the tail holds) reads them all
 * from the store; 20 more arrive while it keeps up and come from the tail; the events are the
 * same either way, and a restarted outbox (empty tail) reads from the store. */
static void test_outbox_tail_then_store(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, &(outbox_options){.tail_bytes = 8000});
    append_n(&f, "t", 100, 3, 1000);
    wait_durable(&f, 100);
    tsink t;
    ts_init(&t, &f.loop, NULL);
    outbox_sink_config cfg = {.name = "late", .batch_max = 30};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    waitok w = {&t, 100};
    assert_true(run_until(&f, has_ok, &w, 10000));
    outbox_sink_stats st;
    assert_int_equal(outbox_sink_stats_get(f.ob, "late", &st), 0);
    assert_int_equal(st.from_store, 100);
    assert_int_equal(st.from_tail, 0);
    append_n(&f, "u", 20, 3, 2000);
    w.want = 120;
    assert_true(run_until(&f, has_ok, &w, 10000));
    assert_int_equal(outbox_sink_stats_get(f.ob, "late", &st), 0);
    assert_int_equal(st.from_store, 100);
    assert_int_equal(st.from_tail, 20);
    json_t *j = outbox_status_json(f.ob);
    assert_non_null(j);
    assert_true(json_integer_value(json_object_get(j, "tailEvents")) >= 20);
    assert_true(json_integer_value(json_object_get(j, "tailBytes")) <= 8000);
    json_t *sj = json_array_get(json_object_get(j, "sinks"), 0);
    assert_int_equal(json_integer_value(json_object_get(sj, "fromTail")), 20);
    json_decref(j);
    run_ms(&f, 20);
    assert_int_equal(t.ok, 120);
    for (int i = 0; i < 120; i++)
        assert_int_equal(t.ok_seq[i], i + 1);
    fx_close_outbox(&f);
    ts_fini(&t);
    run_ms(&f, 5); /* the timer's close */
    /* Restart: the cursor is at 120; 5 new events come from the (new) tail. */
    fx_open_outbox(&f, &(outbox_options){.tail_bytes = 8000});
    ts_init(&t, &f.loop, NULL);
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    run_ms(&f, 50);
    append_n(&f, "v", 5, 3, 3000);
    w.want = 5;
    assert_true(run_until(&f, has_ok, &w, 10000));
    run_ms(&f, 20);
    assert_int_equal(t.ok, 5);
    assert_int_equal(t.ok_seq[0], 121);
    assert_int_equal(outbox_sink_stats_get(f.ob, "late", &st), 0);
    assert_int_equal(st.from_tail + st.from_store, 5);
    fx_close_outbox(&f);
    ts_fini(&t);
    fx_fini(&f);
}

/* Event seq 3 fails until its 3rd attempt; strict order: seq 4.. wait for it. */
static outbox_result fail_seq3_twice(tsink *t, const outbox_event *ev)
{
    if (ev->seq == 3 && ev->attempt < 3)
        return (outbox_result){OUTBOX_RETRY, 0, "HTTP 503"};
    return (outbox_result){OUTBOX_OK, 0, NULL};
}

static void test_outbox_retries_with_backoff_in_order(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    tsink t;
    ts_init(&t, &f.loop, fail_seq3_twice);
    outbox_sink_config cfg = {
        .name = "hook", .batch_max = 4, .backoff_base_ms = 40, .backoff_max_ms = 1000};
    /* Everything committed before the sink starts, so the batches are the same every run. */
    append_n(&f, "r", 10, 1, 1000);
    wait_durable(&f, 10);
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    waitok w = {&t, 10};
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 20);
    /* 4 was taken in the batches where 3 failed, and sent again after 3: 3 copies. */
    int n4 = 0;
    for (int i = 0; i < t.ok; i++)
        n4 += t.ok_seq[i] == 4;
    assert_int_equal(n4, 3);
    assert_true(final_order_ok(&t, 10));
    assert_int_equal(t.ok_seq[t.ok - 1], 10);
    /* Attempts of seq 3: numbered 1, 2, 3, spaced by the back-off (>= half the delay: jitter). */
    uint64_t at[3];
    int k = 0;
    for (int i = 0; i < t.attempts && i < TS_MAX; i++)
        if (t.att_seq[i] == 3) {
            assert_true(k < 3);
            assert_int_equal(t.att_no[i], (uint32_t)k + 1);
            at[k++] = t.att_ms[i];
        }
    assert_int_equal(k, 3);
    assert_true(at[1] - at[0] >= 20);
    assert_true(at[2] - at[1] >= 40); /* doubled */
    outbox_sink_stats st;
    assert_int_equal(outbox_sink_stats_get(f.ob, "hook", &st), 0);
    assert_int_equal(st.retried, 2);
    assert_int_equal(st.dead, 0);
    assert_string_equal(st.last_error, "HTTP 503");
    json_t *js = outbox_status_json(f.ob);
    assert_non_null(js);
    assert_int_equal(json_integer_value(json_object_get(js, "durable")), 10);
    json_t *js0 = json_array_get(json_object_get(js, "sinks"), 0);
    assert_string_equal(json_string_value(json_object_get(js0, "name")), "hook");
    assert_string_equal(json_string_value(json_object_get(js0, "kind")), "test");
    assert_int_equal(json_integer_value(json_object_get(js0, "cursor")), 10);
    assert_int_equal(json_integer_value(json_object_get(js0, "retried")), 2);
    assert_string_equal(json_string_value(json_object_get(js0, "lastError")), "HTTP 503");
    json_decref(js);
    fx_close_outbox(&f);
    store_sink_status ss;
    assert_int_equal(outbox_admin_status(f.db, "hook", &ss), 0);
    assert_int_equal(ss.cursor, 10);
    assert_int_equal(ss.retrying, 0); /* cleared after success */
    ts_fini(&t);
    fx_fini(&f);
}

typedef struct opres {
    int calls, status;
    int64_t count;
} opres;

static void on_op(int status, int64_t count, void *ud)
{
    opres *o = ud;
    o->calls++;
    o->status = status;
    o->count = count;
}

static bool op_done(void *ud)
{
    return ((opres *)ud)->calls > 0;
}

static outbox_result always_fail_seq2(tsink *t, const outbox_event *ev)
{
    if (ev->seq == 2)
        return (outbox_result){OUTBOX_RETRY, 0, "connection refused"};
    if (ev->seq == 4)
        return (outbox_result){OUTBOX_DEAD, 0, "HTTP 400 bad event"};
    return (outbox_result){OUTBOX_OK, 0, NULL};
}

static int count_dead(const store_dead *d, void *ud)
{
    int *n = ud;
    n[0]++;
    n[1 + (n[0] - 1) % 4] = (int)d->ev.seq;
    return 0;
}

static void test_outbox_dead_letters_then_retry_op(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    tsink t;
    ts_init(&t, &f.loop, always_fail_seq2);
    outbox_sink_config cfg = {.name = "hook",
                              .batch_max = 10,
                              .max_attempts = 3,
                              .backoff_base_ms = 5,
                              .backoff_max_ms = 10};
    append_n(&f, "d", 6, 1, 1000);
    wait_durable(&f, 6);
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    outbox_sink_stats st;
    waitok w = {&t, 4}; /* 1, 3, 5, 6 (3, 5, 6 also in the batches where 2 failed) */
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 50);
    assert_int_equal(t.ok_seq[t.ok - 1], 6);
    assert_int_equal(t.ok_seq[t.ok - 2], 5);
    assert_int_equal(t.ok_seq[t.ok - 3], 3); /* after 2 was given up */
    int before_retry = t.ok;
    int tries2 = 0, tries4 = 0;
    for (int i = 0; i < t.attempts; i++) {
        tries2 += t.att_seq[i] == 2;
        tries4 += t.att_seq[i] == 4;
    }
    assert_int_equal(tries2, 3); /* max_attempts */
    /* 4 was offered only alongside 2 (its verdicts were void while 2 failed before it); once 2
     * was given up, its DEAD verdict counted and it was never offered again. */
    assert_int_equal(tries4, 3);
    assert_int_equal(outbox_sink_stats_get(f.ob, "hook", &st), 0);
    assert_int_equal(st.dead, 2);
    assert_int_equal(st.cursor, 6);

    /* The dead letters are in the store with their last error. */
    store_sink_status ss;
    assert_int_equal(outbox_admin_status(f.db, "hook", &ss), 0);
    assert_int_equal(ss.dead, 2);

    /* The receiver is fixed; `outbox retry` delivers both, then the dead letters are gone. */
    t.decide = ts_ok;
    opres op = {0};
    assert_int_equal(outbox_retry(f.ob, "nope", 0, on_op, &op), SB_ENOTFOUND);
    assert_int_equal(outbox_retry(f.ob, "hook", 0, on_op, &op), 0);
    assert_true(run_until(&f, op_done, &op, 5000));
    assert_int_equal(op.calls, 1);
    assert_int_equal(op.status, 0);
    assert_int_equal(op.count, 2);
    w.want = before_retry + 2;
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 30);
    assert_int_equal(t.ok, before_retry + 2);
    assert_int_equal(t.ok_seq[before_retry], 2);
    assert_int_equal(t.ok_seq[before_retry + 1], 4);
    fx_close_outbox(&f);
    assert_int_equal(outbox_admin_status(f.db, "hook", &ss), 0);
    assert_int_equal(ss.dead, 0);
    store_conn *c = NULL;
    assert_int_equal(store_open(f.db, STORE_OPEN_READ, NULL, &c), 0);
    int dn[5] = {0};
    assert_int_equal(store_dead_scan(c, "hook", 0, false, 0, count_dead, dn), 0);
    assert_int_equal(dn[0], 0);
    store_close(c);
    ts_fini(&t);
    fx_fini(&f);
}

static outbox_result dead_up_to_6(tsink *t, const outbox_event *ev)
{
    if (ev->seq <= 6)
        return (outbox_result){OUTBOX_DEAD, 0, "HTTP 422"};
    return (outbox_result){OUTBOX_OK, 0, NULL};
}

/* More dead letters to retry than the window holds, while new events keep coming. */
static void test_outbox_retry_more_dead_letters_than_window(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    tsink t;
    ts_init(&t, &f.loop, dead_up_to_6);
    t.is_async = true;
    outbox_sink_config cfg = {.name = "hook", .batch_max = 2, .window = 2};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    append_n(&f, "m", 10, 1, 1000);
    waitok w = {&t, 4};
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 20);
    outbox_sink_stats st;
    assert_int_equal(outbox_sink_stats_get(f.ob, "hook", &st), 0);
    assert_int_equal(st.dead, 6);
    assert_int_equal(st.cursor, 10);
    t.decide = ts_ok;
    opres op = {0};
    assert_int_equal(outbox_retry(f.ob, "hook", 0, on_op, &op), 0);
    append_n(&f, "n", 5, 1, 2000);
    assert_true(run_until(&f, op_done, &op, 5000));
    assert_int_equal(op.count, 6);
    w.want = 15;
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 30);
    assert_int_equal(t.ok, 15);
    char seen[16] = {0};
    for (int i = 0; i < t.ok; i++) {
        assert_true(t.ok_seq[i] >= 1 && t.ok_seq[i] <= 15);
        assert_int_equal(seen[t.ok_seq[i]], 0);
        seen[t.ok_seq[i]] = 1;
    }
    assert_int_equal(outbox_sink_stats_get(f.ob, "hook", &st), 0);
    assert_int_equal(st.cursor, 15);
    fx_close_outbox(&f);
    store_sink_status ss;
    assert_int_equal(outbox_admin_status(f.db, "hook", &ss), 0);
    assert_int_equal(ss.dead, 0);
    ts_fini(&t);
    fx_fini(&f);
}

static bool has_deliver_call(void *ud)
{
    return ((tsink *)ud)->deliver_calls > 0;
}

/* deliver() failing outright counts as a retry; closing waits for the batch at the sink. */
static void test_outbox_close_waits_for_inflight_and_failed_deliver_retries(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    tsink t;
    ts_init(&t, &f.loop, NULL);
    t.fail_deliver_calls = 1;
    t.is_async = true;
    t.flush_ms = 50;
    outbox_sink_config cfg = {.name = "hook", .batch_max = 1000, .backoff_base_ms = 20};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    append_n(&f, "c", 20, 1, 1000);
    wait_durable(&f, 20);
    assert_true(run_until(&f, has_deliver_call, &t, 5000));
    assert_int_equal(t.attempts, 0); /* the failed call saw nothing */
    t.deliver_calls = 0;
    assert_true(run_until(&f, has_deliver_call, &t, 5000)); /* the retry, after the back-off */
    assert_int_equal(t.attempts, 20);
    assert_int_equal(t.att_no[0], 2);
    assert_int_equal(t.pending != NULL, 1); /* the answer is 50 ms away */
    outbox_close(f.ob, on_closed, &f);
    assert_int_equal(t.cancel_calls, 1);
    assert_int_equal(f.closed, 0);
    assert_true(run_until(&f, is_closed, &f, 5000));
    assert_int_equal(t.free_calls, 1);
    assert_null(t.pending);
    f.closed = 0;
    store_sink_status ss;
    assert_int_equal(outbox_admin_status(f.db, "hook", &ss), 0);
    assert_int_equal(ss.cursor, 20); /* the answer that came during close was persisted */
    assert_int_equal(ss.retrying, 0);
    ts_fini(&t);
    fx_fini(&f);
}

static outbox_result always_retry(tsink *t, const outbox_event *ev)
{
    return (outbox_result){OUTBOX_RETRY, 0, "down"};
}

static void test_outbox_down_sink_does_not_hold_back_others(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    tsink down, up;
    ts_init(&down, &f.loop, always_retry);
    ts_init(&up, &f.loop, NULL);
    up.is_async = true;
    outbox_sink_config cd = {.name = "down", .backoff_base_ms = 60000};
    outbox_sink_config cu = {.name = "up"};
    assert_int_equal(outbox_add_sink(f.ob, &cd, &ts_ops, &down, NULL), 0);
    assert_int_equal(outbox_add_sink(f.ob, &cu, &ts_ops, &up, NULL), 0);
    append_n(&f, "x", 500, 3, 1000);
    waitok w = {&up, 500};
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 20);
    assert_int_equal(down.ok, 0);
    /* One batch (what was committed then, at most 100), then waiting a minute. */
    assert_true(down.attempts >= 1 && down.attempts <= 100);
    assert_int_equal(down.deliver_calls, 1);
    assert_int_equal(down.att_seq[0], 1);
    outbox_sink_stats st;
    assert_int_equal(outbox_sink_stats_get(f.ob, "down", &st), 0);
    assert_int_equal(st.cursor, 0);
    assert_int_equal(st.waiting, 1); /* strict order: only the head waits, the rest is queued */
    assert_int_equal(outbox_sink_stats_get(f.ob, "up", &st), 0);
    assert_int_equal(st.cursor, 500);
    fx_close_outbox(&f);
    assert_int_equal(down.free_calls, 1);
    assert_int_equal(up.free_calls, 1);
    /* The down sink's retry state survived: attempt 1 recorded for seq 1. */
    store_conn *c = NULL;
    assert_int_equal(store_open(f.db, STORE_OPEN_READ, NULL, &c), 0);
    store_sink_status ss;
    assert_int_equal(store_sink_status_get(c, "down", &ss), 0);
    assert_int_equal(ss.cursor, 0);
    assert_int_equal(ss.pending, 500);
    assert_int_equal(ss.retrying, 1);
    store_close(c);
    ts_fini(&down);
    ts_fini(&up);
    fx_fini(&f);
}

/* Partitioned: the first event of call-0 fails twice; other calls flow meanwhile. */
static outbox_result fail_first_of_call0(tsink *t, const outbox_event *ev)
{
    if (ev->seq == 1 && ev->attempt < 3)
        return (outbox_result){OUTBOX_RETRY, 0, "busy"};
    return (outbox_result){OUTBOX_OK, 0, NULL};
}

static void test_outbox_partitioned_keeps_order_per_call(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    tsink t;
    ts_init(&t, &f.loop, fail_first_of_call0);
    t.is_async = true;
    outbox_sink_config cfg = {.name = "sqs",
                              .is_partitioned = true,
                              .batch_max = 8,
                              .max_inflight = 4,
                              .window = 40,
                              .backoff_base_ms = 30,
                              .backoff_max_ms = 60};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    enum { N = 400, KEYS = 5 };
    append_n(&f, "p", N, KEYS, 1000);
    waitok w = {&t, N};
    assert_true(run_until(&f, has_ok, &w, 10000));
    run_ms(&f, 20);
    /* Per call: the last acceptance of each event comes after those of the earlier events of the
     * same call (events taken in a batch where an earlier event of their call failed are sent
     * again). Every event was accepted. */
    int *last_at = calloc(N + 1, sizeof *last_at);
    for (int i = 0; i < t.ok; i++)
        last_at[t.ok_seq[i]] = i + 1;
    for (int s = 1; s <= N; s++) {
        assert_true(last_at[s] > 0);
        if (s > KEYS)
            assert_true(last_at[s] > last_at[s - KEYS]); /* same call: seq s - KEYS */
    }
    /* Other calls did not wait for call-0's retries: more of their events went before call-0's
     * first one than the window holds (finished events held behind it do not count). */
    int others_before = 0;
    for (int i = 0; i < last_at[1] - 1; i++)
        others_before += strcmp(t.ok_key[i], "call-0") != 0;
    assert_true(others_before > 40);
    free(last_at);
    fx_close_outbox(&f);
    store_sink_status ss;
    assert_int_equal(outbox_admin_status(f.db, "sqs", &ss), 0);
    assert_int_equal(ss.cursor, N);
    ts_fini(&t);
    fx_fini(&f);
}

/* --- a random sink: answers each batch after its own random delay (so batches finish out of
 * order), a few events RETRY; checks at every offer that no earlier event of the same call is
 * outstanding (in flight in another batch, or waiting for its retry) -----------------------------
 */

enum { RS_N = 3000, RS_KEYS = 37 };

typedef struct rsink rsink;
typedef struct rs_batch {
    uv_timer_t timer;
    rsink *r;
    outbox_delivery *d;
    outbox_done_cb done;
    size_t n;
    int64_t seq[16];
    outbox_result res[16];
} rs_batch;

struct rsink {
    uint64_t rng;
    int state[RS_N + 1]; /* 0 never offered, 1 in flight, 2 accepted, 3 answered RETRY */
    int violations, offers, batches, open_batches, max_open;
    int64_t last_ok[RS_N + 1]; /* order number of the last acceptance */
    int64_t n_ok;
    uv_loop_t *loop;
};

static uint64_t rs_rand(rsink *r, uint64_t n)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng % n;
}

static void rs_closed(uv_handle_t *h)
{
    free(h->data);
}

static void rs_answer(uv_timer_t *t)
{
    rs_batch *b = t->data;
    rsink *r = b->r;
    for (size_t i = 0; i < b->n; i++) {
        int64_t sq = b->seq[i];
        if (b->res[i].verdict == OUTBOX_OK) {
            r->state[sq] = 2;
            r->last_ok[sq] = ++r->n_ok;
        } else {
            r->state[sq] = 3;
        }
    }
    r->open_batches--;
    b->done(b->d, b->res);
    uv_close((uv_handle_t *)&b->timer, rs_closed);
}

static int rs_deliver(void *impl, const outbox_event *const *batch, size_t n, outbox_done_cb done,
                      outbox_delivery *d)
{
    rsink *r = impl;
    rs_batch *b = calloc(1, sizeof *b);
    assert_non_null(b);
    assert_true(n <= 16);
    *b = (rs_batch){.r = r, .d = d, .done = done, .n = n};
    for (size_t i = 0; i < n; i++) {
        int64_t sq = batch[i]->seq;
        b->seq[i] = sq;
        /* Every earlier event of the call (seq - k * RS_KEYS) is accepted or in this batch. */
        for (int64_t e = sq - RS_KEYS; e >= 1; e -= RS_KEYS) {
            bool in_batch = false;
            for (size_t k = 0; k < i; k++)
                in_batch |= b->seq[k] == e;
            if (!in_batch && r->state[e] != 2)
                r->violations++;
        }
        r->state[sq] = 1;
        b->res[i] = rs_rand(r, 100) < 7 ? (outbox_result){OUTBOX_RETRY, 0, "random"}
                                        : (outbox_result){OUTBOX_OK, 0, NULL};
        r->offers++;
    }
    r->batches++;
    if (++r->open_batches > r->max_open)
        r->max_open = r->open_batches;
    uv_timer_init(r->loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, rs_answer, rs_rand(r, 4), 0);
    return 0;
}

static const outbox_sink_ops rs_ops = {"random", NULL, rs_deliver, NULL, NULL};

static bool rs_all_ok(void *ud)
{
    rsink *r = ud;
    if (r->open_batches)
        return false;
    for (int s = 1; s <= RS_N; s++)
        if (r->state[s] != 2)
            return false;
    return true;
}

/* Many calls, several batches in flight finishing in random order, random retries: an event is
 * never offered while an earlier event of its call is outstanding, every event arrives, the last
 * copies are in per-call order and the cursor ends at the end. */
static void test_outbox_partitioned_random_answers_keep_call_order(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    rsink *r = calloc(1, sizeof *r);
    r->rng = 0x9e3779b97f4a7c15ULL;
    r->loop = &f.loop;
    outbox_sink_config cfg = {.name = "rnd",
                              .is_partitioned = true,
                              .batch_max = 16,
                              .max_inflight = 6,
                              .window = 300,
                              .max_attempts = 1000,
                              .backoff_base_ms = 2,
                              .backoff_max_ms = 8};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &rs_ops, r, NULL), 0);
    append_n(&f, "r", RS_N, RS_KEYS, 1000);
    assert_true(run_until(&f, rs_all_ok, r, 30000));
    assert_int_equal(r->violations, 0);
    assert_true(r->max_open > 1);       /* batches overlapped */
    assert_true(r->offers > RS_N + 50); /* retries happened */
    for (int s = RS_KEYS + 1; s <= RS_N; s++)
        assert_true(r->last_ok[s] > r->last_ok[s - RS_KEYS]);
    sinkat at = {f.ob, "rnd", RS_N};
    assert_true(run_until(&f, sink_at, &at, 5000));
    fx_close_outbox(&f);
    store_sink_status ss;
    assert_int_equal(outbox_admin_status(f.db, "rnd", &ss), 0);
    assert_int_equal(ss.cursor, RS_N);
    free(r);
    fx_fini(&f);
}

static bool wants_even(void *impl, const outbox_event *ev)
{
    return ev->seq % 2 == 0;
}

static void test_outbox_filter_skips_and_restart_resumes(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    tsink t;
    ts_init(&t, &f.loop, NULL);
    outbox_sink_ops ops = ts_ops;
    ops.wants = wants_even;
    outbox_sink_config cfg = {.name = "even"};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ops, &t, NULL), 0);
    append_n(&f, "f", 100, 1, 1000);
    waitok w = {&t, 50};
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 20);
    assert_int_equal(t.attempts, 50);
    for (int i = 0; i < 50; i++)
        assert_int_equal(t.ok_seq[i], 2 * (i + 1));
    /* A duplicate id is durable already and is not stored twice. */
    append_n(&f, "f", 1, 1, 1000);
    wait_durable(&f, 101);
    assert_int_equal(f.exist, 1);
    fx_close_outbox(&f);
    assert_int_equal(f.durable, 100);

    /* Restart: nothing old is delivered again, new events are. */
    fx_open_outbox(&f, NULL);
    tsink t2;
    ts_init(&t2, &f.loop, NULL);
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ops, &t2, NULL), 0);
    append_n(&f, "g", 10, 1, 5000);
    w = (waitok){&t2, 5};
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 20);
    assert_int_equal(t2.attempts, 5);
    assert_int_equal(t2.ok_seq[0], 102);
    /* A new sink that starts at the end gets only what comes after it. */
    tsink t3;
    ts_init(&t3, &f.loop, NULL);
    outbox_sink_config c3 = {.name = "late", .is_start_at_end = true};
    assert_int_equal(outbox_add_sink(f.ob, &c3, &ts_ops, &t3, NULL), 0);
    run_ms(&f, 20);
    append_n(&f, "h", 3, 1, 6000);
    w = (waitok){&t3, 3};
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 20);
    assert_int_equal(t3.ok, 3);
    assert_int_equal(t3.ok_seq[0], 111);
    fx_close_outbox(&f);
    ts_fini(&t);
    ts_fini(&t2);
    ts_fini(&t3);
    fx_fini(&f);
}

static void test_outbox_replay_from_time(void **state)
{
    fx f;
    fx_init(&f);
    fx_open_outbox(&f, NULL);
    tsink t;
    ts_init(&t, &f.loop, NULL);
    t.is_async = true;
    outbox_sink_config cfg = {.name = "hook", .batch_max = 7};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    append_n(&f, "y", 100, 1, 10000); /* seq i+1 at time 10000 + i */
    waitok w = {&t, 100};
    assert_true(run_until(&f, has_ok, &w, 5000));
    opres o = {0};
    assert_int_equal(outbox_replay(f.ob, "nope", 0, on_op, &o), SB_ENOTFOUND);
    assert_int_equal(outbox_replay(f.ob, "hook", 10049, on_op, &o), 0);
    assert_int_equal(outbox_replay(f.ob, "hook", 10049, on_op, &o), SB_EINVAL);
    assert_true(run_until(&f, op_done, &o, 5000));
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.count, 49);
    w.want = 151;
    assert_true(run_until(&f, has_ok, &w, 5000));
    run_ms(&f, 20);
    assert_int_equal(t.ok, 151);
    for (int i = 0; i < 51; i++)
        assert_int_equal(t.ok_seq[100 + i], 50 + i);
    fx_close_outbox(&f);
    assert_int_equal(o.calls, 1);

    /* Offline replay (daemon stopped) moves the stored cursor back, never forwards. */
    int64_t cur = -1;
    assert_int_equal(outbox_admin_replay(f.db, "hook", 10090, &cur), 0);
    assert_int_equal(cur, 90);
    assert_int_equal(outbox_admin_replay(f.db, "hook", 99999, &cur), 0);
    assert_int_equal(cur, 90);
    ts_fini(&t);
    fx_fini(&f);
}

typedef struct sizes {
    int calls;
    bool warn, max;
    int64_t bytes;
} sizes;

static void on_size(int64_t bytes, bool is_over_warn, bool is_over_max, void *ud)
{
    sizes *s = ud;
    s->calls++;
    s->bytes = bytes;
    s->warn = is_over_warn;
    s->max = is_over_max;
}

static void test_outbox_prunes_delivered_and_watches_size(void **state)
{
    fx f;
    fx_init(&f);
    sizes sz = {0};
    outbox_options o = {.retention_ms = 1,
                        .prune_chunk = 30,
                        .size_warn_bytes = 1,
                        .size_max_bytes = 1LL << 40,
                        .on_size = on_size,
                        .on_size_ud = &sz};
    fx_open_outbox(&f, &o);
    tsink t, slow;
    ts_init(&t, &f.loop, NULL);
    ts_init(&slow, &f.loop, always_retry);
    outbox_sink_config cfg = {.name = "hook"};
    outbox_sink_config cs = {.name = "slow", .backoff_base_ms = 60000};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    assert_int_equal(outbox_add_sink(f.ob, &cs, &ts_ops, &slow, NULL), 0);
    append_n(&f, "z", 200, 1, 1000);
    waitok w = {&t, 200};
    assert_true(run_until(&f, has_ok, &w, 5000));
    /* The slow sink has delivered nothing: nothing may be pruned. */
    opres op = {0};
    assert_int_equal(outbox_prune_now(f.ob, on_op, &op), 0);
    assert_true(run_until(&f, op_done, &op, 5000));
    assert_int_equal(op.status, 0);
    assert_int_equal(op.count, 0);
    assert_true(sz.calls >= 1);
    assert_true(sz.warn);
    assert_false(sz.max);
    fx_close_outbox(&f);

    /* Without the slow sink, everything delivered and older than the retention goes. */
    sz = (sizes){0};
    o.size_max_bytes = 2; /* tiny: appends are refused once the check ran */
    fx_open_outbox(&f, &o);
    tsink t2;
    ts_init(&t2, &f.loop, NULL);
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t2, NULL), 0);
    op = (opres){0};
    sinkat sa = {f.ob, "hook", 200};
    assert_true(run_until(&f, sink_at, &sa, 5000)); /* started: its stored cursor is known */
    assert_int_equal(outbox_prune_now(f.ob, on_op, &op), 0);
    assert_true(run_until(&f, op_done, &op, 5000));
    assert_int_equal(op.count, 200);
    assert_true(sz.calls >= 1);
    assert_true(sz.max);
    store_event ev = {0, "refused", "t", "", "", 1, "{}", 2};
    assert_int_equal(outbox_append(f.ob, &ev, on_durable, &f), SB_ETOOBIG);
    outbox_stats os;
    outbox_stats_get(f.ob, &os);
    assert_int_equal(os.refused, 1);
    assert_true(os.is_over_max);
    assert_int_equal(t2.attempts, 0);
    fx_close_outbox(&f);
    assert_int_equal(outbox_append == NULL, 0);
    ts_fini(&t);
    ts_fini(&slow);
    ts_fini(&t2);
    fx_fini(&f);
}

static void test_outbox_event_from_json(void **state)
{
    const char *text =
        "{\"id\":\"e-1\",\"type\":\"call.ended\",\"time\":\"2026-11-23T23:58:41.150Z\","
        "\"pbx\":\"pbx1\",\"details\":{\"callId\":\"1732406321.7\"}}";
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    assert_non_null(o);
    store_event ev;
    assert_int_equal(outbox_event_from_json(o, text, strlen(text), &ev), 0);
    assert_string_equal(ev.id, "e-1");
    assert_string_equal(ev.type, "call.ended");
    assert_string_equal(ev.pbx, "pbx1");
    assert_string_equal(ev.call_key, "1732406321.7");
    assert_int_equal(ev.time_ms, 1795478321150LL);
    assert_ptr_equal(ev.payload, text);
    json_decref(o);
    /* Agent events have no call: one key for all of them. */
    o = json_pack("{s:s, s:s, s:s, s:{}}", "id", "e-2", "type", "queueCount", "time",
                  "2026-11-23T23:58:41Z", "details");
    assert_int_equal(outbox_event_from_json(o, "{}", 2, &ev), 0);
    assert_string_equal(ev.call_key, "");
    assert_string_equal(ev.pbx, "");
    assert_int_equal(ev.time_ms, 1795478321000LL);
    json_decref(o);
    o = json_pack("{s:s}", "type", "x"); /* no id */
    assert_int_equal(outbox_event_from_json(o, "{}", 2, &ev), SB_EINVAL);
    json_decref(o);
    o = json_pack("{s:s, s:s, s:s}", "id", "e", "type", "x", "time", "yesterday");
    assert_int_equal(outbox_event_from_json(o, "{}", 2, &ev), SB_EINVAL);
    json_decref(o);
    int64_t ms = 0;
    assert_int_equal(outbox_parse_time("1970-01-01T00:00:01.5Z", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(outbox_parse_time("2026-11-23T23:58:41+01:00", &ms), SB_EINVAL);
}

static void test_outbox_config_sections(void **state)
{
    const char *text = "[store]\npath = /var/lib/sb/x.db\nsynchronous = normal\nretention = 3d\n"
                       "size_warn = 512M\nsize_max = 2G\nprune_interval = 30s\n"
                       "memory_tail = 16M\n"
                       "[sink crm]\nkind = webhook\nurl = http://x\n";
    sb_config *cfg = NULL;
    char err[256] = "";
    int rc = sb_config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof err);
    if (rc)
        print_message("config: %s\n", err);
    assert_int_equal(rc, 0);
    outbox_options o;
    assert_int_equal(outbox_options_from_config(cfg, &o, err, sizeof err), 0);
    assert_string_equal(o.path, "/var/lib/sb/x.db");
    assert_int_equal(o.store.sync, STORE_SYNC_NORMAL);
    assert_int_equal(o.retention_ms, 3LL * 86400000);
    assert_int_equal(o.size_warn_bytes, 512LL << 20);
    assert_int_equal(o.size_max_bytes, 2LL << 30);
    assert_int_equal(o.prune_interval_ms, 30000);
    assert_int_equal(o.tail_bytes, 16LL << 20);
    sb_config_free(cfg);

    /* Bad values name the file, line, section and key. */
    text = "[store]\nretention = forever\n";
    assert_int_equal(sb_config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof err), 0);
    assert_int_equal(outbox_options_from_config(cfg, &o, err, sizeof err), SB_ECONFIG);
    assert_string_equal(err, "t.conf:2: [store] retention: expected a duration like 7d, 12h, 30m");
    sb_config_free(cfg);
    text = "[store]\nmemory_tail = off\n";
    assert_int_equal(sb_config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof err), 0);
    assert_int_equal(outbox_options_from_config(cfg, &o, err, sizeof err), 0);
    assert_true(o.tail_bytes < 0);
    sb_config_free(cfg);
    text = "[store]\nmemory_tail = lots\n";
    assert_int_equal(sb_config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof err), 0);
    assert_int_equal(outbox_options_from_config(cfg, &o, err, sizeof err), SB_ECONFIG);
    assert_string_equal(
        err, "t.conf:2: [store] memory_tail: expected a size like 64M (at most 16G), or off");
    sb_config_free(cfg);
    text = "[store]\ncolour = blue\n";
    assert_int_equal(sb_config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof err), 0);
    assert_int_equal(outbox_options_from_config(cfg, &o, err, sizeof err), SB_ECONFIG);
    assert_non_null(strstr(err, "unknown key"));
    sb_config_free(cfg);
    /* No [store] at all: defaults. */
    cfg = sb_config_new_default();
    assert_int_equal(outbox_options_from_config(cfg, &o, err, sizeof err), 0);
    assert_string_equal(o.path, "switchboard.db");
    assert_int_equal(o.retention_ms, 0); /* outbox_open applies 7 days */
    sb_config_free(cfg);
    int64_t v = 0;
    assert_int_equal(outbox_parse_ms("90", &v), 0);
    assert_int_equal(v, 90000);
    assert_int_equal(outbox_parse_ms("-1s", &v), SB_EINVAL);
    assert_int_equal(outbox_parse_bytes("64MiB", &v), 0);
    assert_int_equal(v, 64LL << 20);
    assert_int_equal(outbox_parse_bytes("12X", &v), SB_EINVAL);
    assert_int_equal(outbox_parse_from("2h", 10000000, &v), 0);
    assert_int_equal(v, 10000000 - 7200000);
    assert_int_equal(outbox_parse_from("1970-01-01T00:00:02Z", 10000000, &v), 0);
    assert_int_equal(v, 2000);
    assert_int_equal(outbox_parse_from("yesterday", 10000000, &v), SB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox_event_from_json),
        cmocka_unit_test(test_outbox_config_sections),
        cmocka_unit_test(test_outbox_delivers_in_order_once),
        cmocka_unit_test(test_outbox_tail_then_store),
        cmocka_unit_test(test_outbox_retries_with_backoff_in_order),
        cmocka_unit_test(test_outbox_dead_letters_then_retry_op),
        cmocka_unit_test(test_outbox_retry_more_dead_letters_than_window),
        cmocka_unit_test(test_outbox_close_waits_for_inflight_and_failed_deliver_retries),
        cmocka_unit_test(test_outbox_down_sink_does_not_hold_back_others),
        cmocka_unit_test(test_outbox_partitioned_keeps_order_per_call),
        cmocka_unit_test(test_outbox_partitioned_random_answers_keep_call_order),
        cmocka_unit_test(test_outbox_filter_skips_and_restart_resumes),
        cmocka_unit_test(test_outbox_replay_from_time),
        cmocka_unit_test(test_outbox_prunes_delivered_and_watches_size),
    };
    int failed = 0;
    g_tail_bytes = 0;
    failed += cmocka_run_group_tests_name("memory tail", tests, NULL, NULL);
    g_tail_bytes = -1;
    failed += cmocka_run_group_tests_name("store only", tests, NULL, NULL);
    g_tail_bytes = 3000; /* a few events */
    failed += cmocka_run_group_tests_name("small tail", tests, NULL, NULL);
    return failed;
}
