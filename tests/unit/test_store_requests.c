/* test_store_requests.c: the outbox_requests table (migration 4) through the store API: a
 * request's life (queued -> running -> done | failed, queued -> canceled), claims and cancels
 * that lose the race, the abandon of running requests and the pruning of finished ones. */
#include "testutil.h"

#include "core/error.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A copy of the last request a callback saw, and how many it saw. */
typedef struct seen {
    int calls;
    store_request r;
    char sink[64], error[128];
    int64_t ids[8];
} seen;

static int on_request(const store_request *r, void *ud)
{
    seen *s = ud;
    if (s->calls < 8)
        s->ids[s->calls] = r->id;
    s->calls++;
    s->r = *r;
    snprintf(s->sink, sizeof s->sink, "%s", r->sink);
    snprintf(s->error, sizeof s->error, "%s", r->error);
    s->r.sink = s->sink;
    s->r.error = s->error;
    return 0;
}

static int stop_at_first(const store_request *r, void *ud)
{
    on_request(r, ud);
    return 7;
}

static void get(store_conn *c, int64_t id, seen *s)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(store_request_get(c, id, on_request, s), 0);
    assert_int_equal(s->calls, 1);
}

static void test_store_request_life(void **state)
{
    (void)state;
    tu_tmpdb t;
    tu_tmpdb_make(&t, "storereq");
    store_conn *c = NULL;
    int v = 0;
    seen s;
    int64_t a = 0, b = 0, n = -1;
    assert_int_equal(store_open(t.db, STORE_OPEN_WRITE, NULL, &c), 0);
    assert_int_equal(store_schema_version(c, &v), 0);
    assert_true(v >= 4);

    assert_int_equal(store_request_add(c, STORE_REQ_RETRY, "hook", 0, 1000, 11000, &a), 0);
    assert_int_equal(store_request_add(c, STORE_REQ_REPLAY, "s3", 5000, 1001, 11001, &b), 0);
    assert_true(b > a);
    get(c, a, &s);
    assert_int_equal(s.r.id, a);
    assert_int_equal(s.r.op, STORE_REQ_RETRY);
    assert_string_equal(s.r.sink, "hook");
    assert_int_equal(s.r.from_ms, 0);
    assert_int_equal(s.r.created_ms, 1000);
    assert_int_equal(s.r.deadline_ms, 11000);
    assert_int_equal(s.r.state, STORE_REQ_QUEUED);
    assert_int_equal(s.r.done_ms, 0);
    assert_int_equal(s.r.status, 0);
    assert_string_equal(s.r.error, "");
    get(c, b, &s);
    assert_int_equal(s.r.op, STORE_REQ_REPLAY);
    assert_int_equal(s.r.from_ms, 5000);

    /* Both queued, oldest first; limit and a callback's stop value are honoured. */
    memset(&s, 0, sizeof s);
    assert_int_equal(store_requests_queued(c, 0, on_request, &s), 0);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.ids[0], a);
    assert_int_equal(s.ids[1], b);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_requests_queued(c, 1, on_request, &s), 0);
    assert_int_equal(s.calls, 1);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_requests_queued(c, 0, stop_at_first, &s), 7);
    assert_int_equal(s.calls, 1);

    /* a: claimed once (a second claim loses), then done with its count; no longer cancelable. */
    assert_int_equal(store_request_start(c, a, 1100), 0);
    assert_int_equal(store_request_start(c, a, 1100), SB_ENOTFOUND);
    get(c, a, &s);
    assert_int_equal(s.r.state, STORE_REQ_RUNNING);
    assert_int_equal(store_request_cancel(c, a, 1150), SB_ENOTFOUND);
    assert_int_equal(store_request_finish(c, a, 0, 50, "ignored when done", 1200), 0);
    get(c, a, &s);
    assert_int_equal(s.r.state, STORE_REQ_DONE);
    assert_int_equal(s.r.result, 50);
    assert_int_equal(s.r.done_ms, 1200);
    assert_string_equal(s.r.error, "");
    assert_int_equal(store_request_finish(c, a, 0, 51, NULL, 1300), SB_ENOTFOUND);

    /* b: canceled while queued; the daemon's claim and finish then lose. */
    assert_int_equal(store_request_cancel(c, b, 1400), 0);
    assert_int_equal(store_request_start(c, b, 1500), SB_ENOTFOUND);
    assert_int_equal(store_request_finish(c, b, 0, 1, NULL, 1500), SB_ENOTFOUND);
    get(c, b, &s);
    assert_int_equal(s.r.state, STORE_REQ_CANCELED);
    assert_int_equal(s.r.done_ms, 1400);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_requests_queued(c, 0, on_request, &s), 0);
    assert_int_equal(s.calls, 0);

    /* A failure keeps its code and text; a queued request may be failed directly (expired). */
    int64_t d = 0, e = 0, f = 0;
    assert_int_equal(store_request_add(c, STORE_REQ_REPLAY, "nope", 0, 2000, 3000, &d), 0);
    assert_int_equal(store_request_finish(c, d, SB_ENOTFOUND, 0, "no sink 'nope'", 2100), 0);
    get(c, d, &s);
    assert_int_equal(s.r.state, STORE_REQ_FAILED);
    assert_int_equal(s.r.status, SB_ENOTFOUND);
    assert_string_equal(s.r.error, "no sink 'nope'");

    /* Running requests of a daemon that went away are failed; queued ones are left alone. */
    assert_int_equal(store_request_add(c, STORE_REQ_RETRY, "hook", 0, 2200, 9000, &e), 0);
    assert_int_equal(store_request_add(c, STORE_REQ_RETRY, "hook", 0, 2300, 9000, &f), 0);
    assert_int_equal(store_request_start(c, e, 2400), 0);
    assert_int_equal(store_requests_abandon(c, "daemon stopped", 2500, &n), 0);
    assert_int_equal(n, 1);
    get(c, e, &s);
    assert_int_equal(s.r.state, STORE_REQ_FAILED);
    assert_int_equal(s.r.status, SB_ECANCELED);
    assert_string_equal(s.r.error, "daemon stopped");
    get(c, f, &s);
    assert_int_equal(s.r.state, STORE_REQ_QUEUED);

    /* Pruning removes finished requests older than the limit, never queued ones. */
    assert_int_equal(store_requests_prune(c, 2200, &n), 0);
    assert_int_equal(n, 3); /* a (1200), b (1400), d (2100) */
    assert_int_equal(store_request_get(c, a, on_request, &s), SB_ENOTFOUND);
    assert_int_equal(store_request_get(c, d, on_request, &s), SB_ENOTFOUND);
    get(c, e, &s);
    assert_int_equal(store_requests_prune(c, 1000000, &n), 0);
    assert_int_equal(n, 1); /* e */
    get(c, f, &s);
    assert_int_equal(s.r.state, STORE_REQ_QUEUED);
    store_close(c);

    /* Another connection (the CLI) sees what this one wrote. */
    assert_int_equal(store_open(t.db, STORE_OPEN_READ, NULL, &c), 0);
    get(c, f, &s);
    assert_int_equal(s.r.created_ms, 2300);
    store_close(c);
    tu_tmpdb_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_request_life),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
