/* test_store.c: the store API on SQLite (migrations, events, cursors, retry state, dead letters,
 * pruning) and the writer thread (group commit, callbacks on the loop, in order). */
#include "testutil.h"

#include "core/error.h"
#include "store/store.h"
#include "store/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static store_event mkev(int64_t seq, const char *id, const char *key, int64_t t)
{
    static const char payload[] = "{\"type\":\"call.started\"}";
    return (store_event){seq, id, "call.started", "pbx1", key, t, payload, sizeof payload - 1};
}

static void test_store_migrates_once_and_reopens(void **state)
{
    tu_tmpdb t;
    tu_tmpdb_make(&t, "store");
    store_conn *c = NULL;
    int v = -1;
    assert_int_equal(store_open(t.db, STORE_OPEN_WRITE, NULL, &c), 0);
    assert_int_equal(store_schema_version(c, &v), 0);
    assert_int_equal(v, store_schema_latest());
    assert_true(v >= 1);
    store_close(c);
    /* Reopening applies nothing twice (a second CREATE TABLE would fail). */
    assert_int_equal(store_open(t.db, STORE_OPEN_WRITE, NULL, &c), 0);
    assert_int_equal(store_schema_version(c, &v), 0);
    assert_int_equal(v, store_schema_latest());
    store_close(c);
    /* A reader opens a migrated store, but not a missing one. */
    assert_int_equal(store_open(t.db, STORE_OPEN_READ, NULL, &c), 0);
    store_close(c);
    tu_tmpdb_remove(&t);
    c = NULL;
    assert_int_not_equal(store_open("/tmp/sb-no-such-dir/x.db", STORE_OPEN_READ, NULL, &c), 0);
    assert_null(c);
}

static int collect_seq(const store_event *ev, void *ud)
{
    int64_t *v = ud;
    v[++v[0]] = ev->seq;
    return 0;
}

static void test_store_events_cursor_attempts_dead(void **state)
{
    tu_tmpdb t;
    tu_tmpdb_make(&t, "store");
    store_conn *c = NULL;
    assert_int_equal(store_open(t.db, STORE_OPEN_WRITE, NULL, &c), 0);
    int64_t last = -1;
    assert_int_equal(store_last_seq(c, &last), 0);
    assert_int_equal(last, 0);

    assert_int_equal(store_begin(c), 0);
    assert_true(store_in_transaction(c));
    char id[32];
    for (int i = 1; i <= 10; i++) {
        snprintf(id, sizeof id, "ev-%d", i);
        store_event ev = mkev(i, id, i % 2 ? "A" : "B", 1000 * i);
        assert_int_equal(store_event_insert(c, &ev), 0);
    }
    store_event dup = mkev(11, "ev-3", "A", 11000);
    assert_int_equal(store_event_insert(c, &dup), SB_EEXIST);
    assert_int_equal(store_set_last_seq(c, 10), 0);
    assert_int_equal(store_commit(c), 0);
    assert_false(store_in_transaction(c));

    int64_t seqs[16] = {0};
    assert_int_equal(store_events_scan(c, 2, 8, 4, collect_seq, seqs), 0);
    assert_int_equal(seqs[0], 4);
    assert_int_equal(seqs[1], 3);
    assert_int_equal(seqs[4], 6);

    int64_t seq = 0;
    assert_int_equal(store_seq_before_time(c, 4500, &seq), 0);
    assert_int_equal(seq, 4); /* first event at/after 4.5 s is seq 5 */
    assert_int_equal(store_seq_before_time(c, 999999, &seq), 0);
    assert_int_equal(seq, 10);

    /* Cursors: a new sink starts where told and keeps it. */
    int64_t cur = -1;
    assert_int_equal(store_sink_cursor(c, "hook", 3, &cur), 0);
    assert_int_equal(cur, 3);
    assert_int_equal(store_sink_cursor(c, "hook", 7, &cur), 0);
    assert_int_equal(cur, 3);
    assert_int_equal(store_sink_set_cursor(c, "hook", 6, 123), 0);
    assert_int_equal(store_sink_cursor(c, "hook", 0, &cur), 0);
    assert_int_equal(cur, 6);

    store_attempt a = {8, 2, 100, 200, "HTTP 500"};
    assert_int_equal(store_attempt_put(c, "hook", &a), 0);
    a.attempts = 3;
    assert_int_equal(store_attempt_put(c, "hook", &a), 0); /* replaces */
    store_event ev9 = mkev(9, "ev-9", "A", 9000);
    assert_int_equal(store_dead_put(c, "hook", &ev9, 10, "HTTP 400", 5000), 0);

    store_sink_status st;
    assert_int_equal(store_sink_status_get(c, "hook", &st), 0);
    assert_int_equal(st.cursor, 6);
    assert_int_equal(st.last_seq, 10);
    assert_int_equal(st.pending, 4);
    assert_int_equal(st.oldest_pending_ms, 7000);
    assert_int_equal(st.retrying, 1);
    assert_int_equal(st.dead, 1);
    assert_int_equal(st.updated_ms, 123);
    assert_int_equal(store_sink_status_get(c, "nope", &st), SB_ENOTFOUND);

    int64_t n = 0;
    assert_int_equal(store_dead_request_retry(c, "hook", 9500, &n), 0);
    assert_int_equal(n, 0); /* event time 9000 is before 9500 */
    assert_int_equal(store_dead_request_retry(c, "hook", 0, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_sink_status_get(c, "hook", &st), 0);
    assert_int_equal(st.dead, 0);

    /* Pruning: only up to the given seq and older than the given time. */
    int64_t deleted = 0;
    assert_int_equal(store_events_prune(c, 6, 5500, 0, &deleted), 0);
    assert_int_equal(deleted, 5);
    memset(seqs, 0, sizeof seqs);
    assert_int_equal(store_events_scan(c, 0, 100, 0, collect_seq, seqs), 0);
    assert_int_equal(seqs[0], 5);
    assert_int_equal(seqs[1], 6);
    /* Even with every event gone, seq never restarts. */
    assert_int_equal(store_events_prune(c, 100, 999999, 3, &deleted), 0);
    assert_int_equal(deleted, 3); /* the limit */
    memset(seqs, 0, sizeof seqs);
    assert_int_equal(store_events_scan(c, 0, 100, 0, collect_seq, seqs), 0);
    assert_int_equal(seqs[0], 2);
    assert_int_equal(seqs[1], 9); /* the oldest went first */
    assert_int_equal(store_events_prune(c, 100, 999999, 0, &deleted), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(store_last_seq(c, &last), 0);
    assert_int_equal(last, 10);

    int64_t bytes = 0;
    assert_int_equal(store_size_bytes(c, &bytes), 0);
    assert_true(bytes > 4096);
    assert_int_equal(store_checkpoint(c), 0);
    store_close(c);
    tu_tmpdb_remove(&t);
}

/* --- writer thread ------------------------------------------------------------------------- */

typedef struct wctx {
    int n_cb, n_err, n_exist, n_fn, n_done, n_commit;
    int64_t last_seq;
    bool is_ordered;
    int fn_thread_ok;
    uv_thread_t loop_thread;
} wctx;

static void on_event(int status, int64_t seq, void *ud)
{
    wctx *w = ud;
    w->n_cb++;
    if (status == SB_EEXIST) {
        w->n_exist++;
        return;
    }
    if (status) {
        w->n_err++;
        return;
    }
    if (seq != w->last_seq + 1)
        w->is_ordered = false;
    w->last_seq = seq;
}

static int fn_count(store_conn *c, void *arg)
{
    wctx *w = arg;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &w->loop_thread))
        w->fn_thread_ok++;
    int64_t last = 0;
    return store_last_seq(c, &last);
}

static void on_fn_done(int status, void *arg)
{
    wctx *w = arg;
    if (status == 0)
        w->n_done++;
}

static void on_fn_done_int(int status, void *arg)
{
    if (status == 0)
        (*(int *)arg)++;
}

static void on_commit(int64_t seq, void *ud)
{
    wctx *w = ud;
    w->n_commit++;
}

static void on_tick(uv_timer_t *t) {}

static void run_until(uv_loop_t *loop, int *counter, int want, int timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t end = uv_now(loop) + (uint64_t)timeout_ms;
    while (*counter < want && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void test_writer_group_commits_in_order(void **state)
{
    tu_tmpdb t;
    tu_tmpdb_make(&t, "store");
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_writer *w = NULL;
    wctx ctx = {.is_ordered = true, .loop_thread = uv_thread_self()};
    assert_int_equal(store_writer_start(&loop, t.db, NULL, NULL, &w), 0);
    store_writer_on_commit(w, on_commit, &ctx);
    enum { N = 20000 };
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "w-%d", i);
        store_event ev = mkev(0, id, "K", 1000 + i);
        assert_int_equal(store_writer_append(w, &ev, on_event, &ctx), 0);
        if (i == N / 2)
            assert_int_equal(store_writer_submit(w, fn_count, on_fn_done, &ctx), 0);
    }
    store_event dup = mkev(0, "w-5", "K", 1);
    assert_int_equal(store_writer_append(w, &dup, on_event, &ctx), 0);
    /* No callback runs before the loop does. */
    assert_int_equal(ctx.n_cb, 0);
    run_until(&loop, &ctx.n_cb, N + 1, 20000);
    assert_int_equal(ctx.n_cb, N + 1);
    assert_int_equal(ctx.n_err, 0);
    assert_int_equal(ctx.n_exist, 1);
    assert_true(ctx.is_ordered);
    assert_int_equal(ctx.last_seq, N);
    assert_int_equal(ctx.n_done, 1);
    assert_int_equal(ctx.fn_thread_ok, 1);
    assert_int_equal(store_writer_committed_seq(w), N);
    assert_int_equal(store_writer_backlog(w), 0);
    /* Grouped: far fewer commits than events. */
    assert_true(ctx.n_commit >= 1);
    assert_true(ctx.n_commit < N / 10);
    store_writer_stats ws;
    store_writer_stats_get(w, &ws);
    assert_int_equal(ws.events_ok, N);
    assert_int_equal(ws.events_exist, 1);
    assert_int_equal(ws.events_failed, 0);
    assert_true(ws.groups >= (uint64_t)ctx.n_commit && ws.groups < N / 10);

    /* Work queued right before stop is committed by stop, and its callbacks run. */
    store_event late = mkev(0, "late", "K", 1);
    assert_int_equal(store_writer_append(w, &late, on_event, &ctx), 0);
    store_writer_stop(w);
    assert_int_equal(ctx.n_cb, N + 2);
    assert_int_equal(ctx.last_seq, N + 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* What the callbacks acknowledged is in the file. */
    store_conn *c = NULL;
    assert_int_equal(store_open(t.db, STORE_OPEN_READ, NULL, &c), 0);
    int64_t last = 0;
    assert_int_equal(store_last_seq(c, &last), 0);
    assert_int_equal(last, N + 1);
    store_close(c);
    tu_tmpdb_remove(&t);
}

static void test_writer_refuses_when_queue_full(void **state)
{
    tu_tmpdb t;
    tu_tmpdb_make(&t, "store");
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_writer *w = NULL;
    store_writer_options o = {.max_queued = 4};
    wctx ctx = {.is_ordered = true};
    assert_int_equal(store_writer_start(&loop, t.db, NULL, &o, &w), 0);
    int accepted = 0, refused = 0;
    char id[32];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "q-%d", i);
        store_event ev = mkev(0, id, "", 1);
        int err = store_writer_append(w, &ev, on_event, &ctx);
        if (err == 0)
            accepted++;
        else if (err == SB_ETOOBIG)
            refused++;
    }
    assert_true(refused > 0);
    assert_int_equal(accepted + refused, 200);
    run_until(&loop, &ctx.n_cb, accepted, 5000);
    assert_int_equal(ctx.n_cb, accepted); /* refused ones never call back */
    store_writer_stop(w);
    assert_int_equal(ctx.n_cb, accepted);
    store_event ev = mkev(0, "after-stop", "", 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    (void)ev;
    tu_tmpdb_remove(&t);
}

static int fn_cap_small(store_conn *c, void *arg)
{
    return store_set_max_bytes(c, 96 * 1024);
}

static int fn_cap_none(store_conn *c, void *arg)
{
    return store_set_max_bytes(c, 0);
}

typedef struct fullctx {
    int n_cb, n_ok, n_full, n_other;
    int64_t ok_seq[512];
    int ok_idx[512];
} fullctx;

typedef struct fullev {
    fullctx *ctx;
    int idx;
} fullev;

static void on_full_event(int status, int64_t seq, void *ud)
{
    fullev *e = ud;
    fullctx *c = e->ctx;
    c->n_cb++;
    if (status == 0) {
        c->ok_seq[c->n_ok] = seq;
        c->ok_idx[c->n_ok++] = e->idx;
    } else if (status == SB_ETOOBIG) {
        c->n_full++;
    } else {
        c->n_other++;
    }
}

static int count_ids(const store_event *ev, void *ud)
{
    (*(int *)ud)++;
    return 0;
}

/* A full disk (here: the store's size cap) fails the appends that did not fit, tells their
 * callers, keeps what was acknowledged, and the writer goes on once there is room again. */
static void test_writer_reports_full_store_and_recovers(void **state)
{
    tu_tmpdb t;
    tu_tmpdb_make(&t, "store");
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_writer *w = NULL;
    store_writer_options o = {.max_batch = 8};
    assert_int_equal(store_writer_start(&loop, t.db, NULL, &o, &w), 0);
    int fn_ok = 0;
    assert_int_equal(store_writer_submit(w, fn_cap_small, on_fn_done_int, &fn_ok), 0);
    static char big[4000];
    memset(big, 'x', sizeof big - 1);
    static fullev evs[300];
    fullctx ctx = {0};
    char id[32];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "big-%d", i);
        store_event ev = {0, id, "t", "", "", 1, big, sizeof big - 1};
        evs[i] = (fullev){&ctx, i};
        assert_int_equal(store_writer_append(w, &ev, on_full_event, &evs[i]), 0);
    }
    run_until(&loop, &ctx.n_cb, 200, 10000);
    assert_int_equal(fn_ok, 1);
    assert_int_equal(ctx.n_cb, 200);
    assert_true(ctx.n_ok > 0);
    assert_true(ctx.n_full > 0);
    assert_int_equal(ctx.n_other, 0);
    int acked_before = ctx.n_ok;
    /* Room again: appends succeed and seq goes on without reusing a number. */
    assert_int_equal(store_writer_submit(w, fn_cap_none, on_fn_done_int, &fn_ok), 0);
    for (int i = 200; i < 210; i++) {
        snprintf(id, sizeof id, "big-%d", i);
        store_event ev = {0, id, "t", "", "", 1, big, sizeof big - 1};
        evs[i] = (fullev){&ctx, i};
        assert_int_equal(store_writer_append(w, &ev, on_full_event, &evs[i]), 0);
    }
    run_until(&loop, &ctx.n_cb, 210, 10000);
    assert_int_equal(ctx.n_ok, acked_before + 10);
    for (int i = 1; i < ctx.n_ok; i++)
        assert_true(ctx.ok_seq[i] == ctx.ok_seq[i - 1] + 1);
    store_writer_stop(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* Exactly the acknowledged events are stored. */
    store_conn *c = NULL;
    assert_int_equal(store_open(t.db, STORE_OPEN_READ, NULL, &c), 0);
    int n = 0;
    assert_int_equal(store_events_scan(c, 0, 1000000, 0, count_ids, &n), 0);
    assert_int_equal(n, ctx.n_ok);
    store_close(c);
    tu_tmpdb_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_migrates_once_and_reopens),
        cmocka_unit_test(test_store_events_cursor_attempts_dead),
        cmocka_unit_test(test_writer_group_commits_in_order),
        cmocka_unit_test(test_writer_refuses_when_queue_full),
        cmocka_unit_test(test_writer_reports_full_store_and_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
