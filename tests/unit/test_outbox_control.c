/* test_outbox_control.c: the store lock (one daemon per store) and the daemon's poller of
 * operator requests (src/app/outbox_control.c) against a real outbox with a scripted sink:
 * requests queued through the store (as `switchboard outbox retry|replay` does) are carried out
 * and their outcomes written back: a retry with its count (and the events delivered), a replay
 * with its cursor, an unknown sink, an expired request, a canceled one never run, delivery not
 * running, and running rows of a previous run failed at start. */
#include "testutil.h"

#include "app/outbox_control.h"
#include "core/error.h"
#include "outbox/outbox.h"
#include "outbox_test_sink.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

typedef struct fx {
    char dir[64], db[128], lock[140];
    uv_loop_t loop;
    outbox *ob;
    bool is_delivering; /* what get() answers */
    int get_calls, closed;
} fx;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static outbox *get_ob(void *ud)
{
    fx *f = ud;
    f->get_calls++;
    return f->is_delivering ? f->ob : NULL;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static bool run_until(fx *f, bool (*pred)(fx *, void *), void *ud, int timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t end = uv_now(&f->loop) + (uint64_t)timeout_ms;
    bool ok;
    while (!(ok = pred(f, ud)) && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return ok;
}

/* ---- reading a request row (the CLI's view) ---- */

typedef struct row {
    store_request_state state;
    int status;
    int64_t result;
    char error[256];
} row;

static int on_row(const store_request *r, void *ud)
{
    row *w = ud;
    w->state = r->state;
    w->status = r->status;
    w->result = r->result;
    snprintf(w->error, sizeof w->error, "%s", r->error);
    return 0;
}

static row get_row(fx *f, int64_t id)
{
    row w = {0};
    store_conn *c = NULL;
    assert_int_equal(store_open(f->db, STORE_OPEN_READ, NULL, &c), 0);
    assert_int_equal(store_request_get(c, id, on_row, &w), 0);
    store_close(c);
    return w;
}

static int64_t add(fx *f, store_request_op op, const char *sink, int64_t from, int64_t deadline)
{
    store_conn *c = NULL;
    int64_t id = 0;
    assert_int_equal(store_open(f->db, STORE_OPEN_WRITE, NULL, &c), 0);
    assert_int_equal(store_request_add(c, op, sink, from, wall_ms(), deadline, &id), 0);
    store_close(c);
    return id;
}

typedef struct ids {
    int64_t v[8];
    size_t n;
} ids;

static bool all_finished(fx *f, void *ud)
{
    ids *x = ud;
    for (size_t i = 0; i < x->n; i++) {
        row w = get_row(f, x->v[i]);
        if (w.state != STORE_REQ_DONE && w.state != STORE_REQ_FAILED)
            return false;
    }
    return true;
}

typedef struct want_ok {
    tsink *t;
    int n;
} want_ok;

static bool has_ok(fx *f, void *ud)
{
    (void)f;
    want_ok *w = ud;
    return w->t->ok >= w->n;
}

static void on_closed(void *ud)
{
    ((fx *)ud)->closed++;
}

static bool is_closed(fx *f, void *ud)
{
    (void)ud;
    return f->closed > 0;
}

/* seq 1..3 are never deliverable at first: dead letters. */
static outbox_result dead_up_to_3(tsink *t, const outbox_event *ev)
{
    (void)t;
    if (ev->seq <= 3)
        return (outbox_result){OUTBOX_DEAD, 0, "HTTP 422"};
    return (outbox_result){OUTBOX_OK, 0, NULL};
}

static bool dead_is_3(fx *f, void *ud)
{
    (void)ud;
    store_sink_status ss;
    return outbox_admin_status(f->db, "hook", &ss) == 0 && ss.dead == 3 && ss.cursor == 5;
}

static void fx_init(fx *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sb-obctl-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/store.db", f->dir);
    snprintf(f->lock, sizeof f->lock, "%s.lock", f->db);
    assert_int_equal(uv_loop_init(&f->loop), 0);
}

static void fx_fini(fx *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    const char *suffix[] = {"", "-wal", "-shm", ".lock"};
    char p[160];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", f->db, suffix[i]);
        unlink(p);
    }
    assert_int_equal(rmdir(f->dir), 0);
}

static void test_store_lock_is_exclusive(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    int a = -1, b = -1;
    assert_int_equal(app_store_lock(f.db, &a), 0);
    assert_true(a >= 0);
    assert_int_equal(access(f.lock, F_OK), 0);
    /* flock is per open file: a second opener, even in this process, is refused. */
    assert_int_equal(app_store_lock(f.db, &b), SB_EEXIST);
    assert_int_equal(b, -1);
    app_store_unlock(a);
    assert_int_equal(app_store_lock(f.db, &b), 0);
    app_store_unlock(b);
    assert_int_equal(app_store_lock("/nonexistent-dir/x.db", &b), SB_EIO);
    assert_int_equal(b, -1);
    app_store_unlock(-1); /* harmless */
    fx_fini(&f);
}

static void test_control_carries_out_requests(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    tsink t;
    ts_init(&t, &f.loop, dead_up_to_3);
    outbox_options opt = {0};
    opt.path = f.db;
    assert_int_equal(outbox_open(&f.loop, &opt, &f.ob), 0);
    outbox_sink_config cfg = {.name = "hook", .max_attempts = 1};
    assert_int_equal(outbox_add_sink(f.ob, &cfg, &ts_ops, &t, NULL), 0);
    char id[16];
    for (int i = 1; i <= 5; i++) {
        snprintf(id, sizeof id, "ev-%d", i);
        store_event ev = {0, id, "call.started", "pbx1", "", 1000 * i, "{}", 2};
        assert_int_equal(outbox_append(f.ob, &ev, NULL, NULL), 0);
    }
    assert_true(run_until(&f, dead_is_3, NULL, 5000));
    assert_int_equal(t.ok, 2);
    t.decide = ts_ok; /* the receiver is fixed */

    /* A request of a previous run left running is failed when the poller starts. */
    int64_t stale = add(&f, STORE_REQ_RETRY, "hook", 0, wall_ms() + 60000);
    store_conn *c = NULL;
    assert_int_equal(store_open(f.db, STORE_OPEN_WRITE, NULL, &c), 0);
    assert_int_equal(store_request_start(c, stale, wall_ms()), 0);
    store_close(c);

    /* Queued before the poller starts: a retry, an unknown sink, an expired one, a canceled one. */
    int64_t now = wall_ms();
    int64_t r_retry = add(&f, STORE_REQ_RETRY, "hook", 0, now + 60000);
    int64_t r_nope = add(&f, STORE_REQ_REPLAY, "nope", 0, now + 60000);
    int64_t r_expired = add(&f, STORE_REQ_RETRY, "hook", 0, now - 1);
    int64_t r_cancel = add(&f, STORE_REQ_REPLAY, "hook", 0, now + 60000);
    assert_int_equal(store_open(f.db, STORE_OPEN_WRITE, NULL, &c), 0);
    assert_int_equal(store_request_cancel(c, r_cancel, now), 0);
    store_close(c);

    app_outbox_control *oc = NULL;
    f.is_delivering = true;
    assert_int_equal(app_outbox_control_start(&f.loop, f.db, get_ob, &f, &oc), 0);
    row w = get_row(&f, stale);
    assert_int_equal(w.state, STORE_REQ_FAILED);
    assert_int_equal(w.status, SB_ECANCELED);

    ids batch = {{r_retry, r_nope, r_expired}, 3};
    assert_true(run_until(&f, all_finished, &batch, 5000));
    w = get_row(&f, r_retry);
    assert_int_equal(w.state, STORE_REQ_DONE);
    assert_int_equal(w.result, 3);
    want_ok wo = {&t, 5};
    assert_true(run_until(&f, has_ok, &wo, 5000)); /* the dead letters were delivered */
    w = get_row(&f, r_nope);
    assert_int_equal(w.state, STORE_REQ_FAILED);
    assert_int_equal(w.status, SB_ENOTFOUND);
    assert_non_null(strstr(w.error, "no sink 'nope'"));
    w = get_row(&f, r_expired);
    assert_int_equal(w.state, STORE_REQ_FAILED);
    assert_int_equal(w.status, SB_ETIMEDOUT);
    w = get_row(&f, r_cancel);
    assert_int_equal(w.state, STORE_REQ_CANCELED); /* never run */
    assert_int_equal(f.get_calls, 2);              /* retry and nope; not the expired one */
    assert_int_equal(app_outbox_control_finished(oc), 3);

    /* A replay while running: the new cursor comes back and everything is delivered again. */
    int64_t r_replay = add(&f, STORE_REQ_REPLAY, "hook", 0, wall_ms() + 60000);
    ids one = {{r_replay}, 1};
    assert_true(run_until(&f, all_finished, &one, 5000));
    w = get_row(&f, r_replay);
    assert_int_equal(w.state, STORE_REQ_DONE);
    assert_int_equal(w.result, 0);
    wo.n = 10;
    assert_true(run_until(&f, has_ok, &wo, 5000));
    assert_int_equal(t.ok, 10);

    /* Delivery not running: an error outcome, nothing delivered. */
    f.is_delivering = false;
    int64_t r_off = add(&f, STORE_REQ_RETRY, "hook", 0, wall_ms() + 60000);
    one.v[0] = r_off;
    assert_true(run_until(&f, all_finished, &one, 5000));
    w = get_row(&f, r_off);
    assert_int_equal(w.state, STORE_REQ_FAILED);
    assert_int_equal(w.status, SB_ECANCELED);
    assert_non_null(strstr(w.error, "not running"));
    assert_int_equal(app_outbox_control_finished(oc), 5);
    assert_int_equal(t.ok, 10);

    /* Shutdown order of the daemon: stop the poller, close the outbox, then free. */
    app_outbox_control_stop(oc);
    outbox_close(f.ob, on_closed, &f);
    assert_true(run_until(&f, is_closed, NULL, 5000));
    uv_run(&f.loop, UV_RUN_DEFAULT);
    app_outbox_control_free(oc);
    assert_int_equal(t.free_calls, 1);
    ts_fini(&t);
    fx_fini(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_lock_is_exclusive),
        cmocka_unit_test(test_control_carries_out_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
