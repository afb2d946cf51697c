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

/* Copies the events of c after index from (the data texts) into one string, for comparing. */
static char *joined(const hc *c, size_t from)
{
    sb_buf b;
    sb_buf_init(&b, 16 << 20);
    for (size_t i = from; i < c->nev; i++) {
        if (c->ev[i].event)
            continue;
        sb_buf_puts(&b, c->ev[i].data);
        sb_buf_puts(&b, "\n");
    }
    char *s = sb_buf_steal(&b);
    return s ? s : strdup("");
}

/* A client that drops mid-call and comes back with Last-Event-ID receives exactly what a client
 * that never left received: no gap, no duplicate. ami_drop also forces an AMI reconnect while
 * the client is away (the state restore's events must reach it too). */
static void drop_and_resume(bool ami_drop)
{
    sh h;
    char hdr[128];
    sh_start(&h, &(sh_opts){.time_scale = 0.4}); /* talk time 1.6 s: the AMI reconnect fits in it */
    char *tok = sh_subscribe(&h, "/v1/agents/502/subscriptions", "agent-502", NULL, 201);
    hc *ref = sh_sse(&h, "502", tok, NULL);
    hc *c = sh_sse(&h, "502", tok, NULL);
    assert_true(wait_type(ref, 0, "snapshot", 2000) == 0);
    assert_true(wait_type(c, 0, "snapshot", 2000) == 0);
    assert_int_equal(pbxsim_play(h.sim, "queue-call-answered", NULL), 0);
    /* Drop once the agent has the caller (first phoneNumber), i.e. in the middle of the call. */
    assert_true(wait_type(c, 1, "phoneNumber", 5000) > 0);
    size_t before = c->nev;
    const char *last_id = c->ev[before - 1].id;
    snprintf(hdr, sizeof hdr, "Last-Event-ID: %s\r\n", last_id);
    hc_close(c);
    size_t ref_at_drop = ref->nev;
    if (ami_drop) {
        assert_int_equal(pbxsim_inject(h.sim, PBXSIM_FAULT_DROP, 0), 0);
        SH_RUN_UNTIL(&h, h.resyncs == 2, 3000);
        assert_int_equal(h.resyncs, 2);
        assert_int_equal(h.logins, 2);
    }
    /* Let the call go on without the client: it must miss something. */
    SH_RUN_UNTIL(&h, ref->nev >= ref_at_drop + 2, 3000);
    assert_true(ref->nev >= ref_at_drop + 2);
    hc *r = sh_sse(&h, "502", tok, hdr);
    SH_RUN_UNTIL(&h, call_done(ref) && r->nev + before >= ref->nev, 5000);
    SH_RUN_FOR(&h, 100);
    assert_true(call_done(ref));
    /* The resumed stream starts right after the last id the client saw: no snapshot. */
    assert_true(r->nev > 0);
    assert_int_equal(hc_seq(&r->ev[0]), atoll(last_id) + 1);
    assert_contiguous(r, 0, atoll(last_id) + 1);
    assert_contiguous(ref, 1, hc_seq(&ref->ev[0]) + 1);
    /* Together the two connections saw exactly the reference's events. */
    /* (Each snapshot carries its own time: compare from the first event after it.) */
    char *a = joined(c, 1), *b = joined(r, 0), *want = joined(ref, 1);
    sb_buf both;
    sb_buf_init(&both, 16 << 20);
    sb_buf_puts(&both, a);
    sb_buf_puts(&both, b);
    assert_string_equal(both.data, want);
    if (ami_drop) {
        char *got = norm_events(ref, 0);
        golden_check("streams-queue-call-ami-reconnect-502", got);
        free(got);
    }
    streams_stats st;
    streams_get_stats(h.st, &st);
    assert_int_equal(st.snapshots, 2);
    assert_int_equal(st.resumes, 1);
    assert_int_equal(st.resyncs, 0);
    sb_buf_free(&both);
    free(a);
    free(b);
    free(want);
    hc_free(c);
    hc_free(r);
    hc_free(ref);
    free(tok);
    sh_stop(&h);
}

static void test_sse_drop_and_resume(void **state)
{
    (void)state;
    drop_and_resume(false);
}

static void test_sse_resume_across_ami_reconnect(void **state)
{
    (void)state;
    drop_and_resume(true);
}

/* Publishes n test events of about size bytes targeted at agent. */
static void publish(sh *h, const char *agent, int n, size_t size)
{
    char *pad = malloc(size + 1);
    assert_non_null(pad);
    memset(pad, 'x', size);
    pad[size] = '\0';
    for (int i = 0; i < n; i++) {
        bus_event *ev = bus_event_new(
            json_pack("{s:s,s:{s:i,s:s}}", "type", "test", "details", "n", i, "pad", pad));
        assert_non_null(ev);
        if (agent)
            assert_int_equal(bus_event_add_agent(ev, agent), 0);
        assert_int_equal(bus_publish(h->b, ev, NULL), 0);
        bus_event_unref(ev);
    }
    free(pad);
}

/* Beyond the replay window a resuming client gets one "resync" event with the full state (seq =
 * the stream's last), then the live flow. */
static void test_sse_beyond_window_resync(void **state)
{
    sh h;
    char hdr[128];
    (void)state;
    sh_start(&h, &(sh_opts){.window_events = 5});
    char *tok = sh_subscribe(&h, "/v1/agents/777/subscriptions", "admin-tok", NULL, 201);
    hc *c = sh_sse(&h, "777", tok, NULL);
    assert_true(wait_type(c, 0, "snapshot", 2000) == 0);
    publish(&h, "777", 3, 10);
    SH_RUN_UNTIL(&h, c->nev == 4, 2000);
    assert_int_equal(c->nev, 4);
    assert_contiguous(c, 1, 1);
    hc_close(c);
    /* Within the window (3 -> 5 of 5 kept): every missed event. */
    publish(&h, "777", 2, 10);
    snprintf(hdr, sizeof hdr, "Last-Event-ID: 3\r\n");
    hc *r1 = sh_sse(&h, "777", tok, hdr);
    SH_RUN_UNTIL(&h, r1->nev == 2, 2000);
    SH_RUN_FOR(&h, 30);
    assert_int_equal(r1->nev, 2);
    assert_contiguous(r1, 0, 4);
    hc_free(r1);
    /* 10 more: seq 4 left the window (6..15 kept, only 5 of them). */
    publish(&h, "777", 10, 10);
    hc *r2 = sh_sse(&h, "777", tok, hdr);
    assert_true(wait_type(r2, 0, "resync", 2000) == 0);
    assert_int_equal(hc_seq(&r2->ev[0]), 15);
    assert_int_equal(atoll(r2->ev[0].id), 15);
    json_t *j = json_loads(r2->ev[0].data, 0, NULL);
    assert_true(json_is_object(json_object_get(j, "details")));
    assert_non_null(json_object_get(json_object_get(j, "details"), "queues"));
    json_decref(j);
    publish(&h, "777", 2, 10);
    SH_RUN_UNTIL(&h, r2->nev == 3, 2000);
    assert_int_equal(r2->nev, 3);
    assert_contiguous(r2, 1, 16);
    /* A resume point ahead of the stream (the daemon restarted) is a resync too. */
    hc *r3 = sh_sse(&h, "777", tok, "Last-Event-ID: 9999\r\n");
    assert_true(wait_type(r3, 0, "resync", 2000) == 0);
    assert_int_equal(hc_seq(&r3->ev[0]), 17);
    /* A malformed one is refused. */
    hc *bad = sh_sse(&h, "777", tok, "Last-Event-ID: x1\r\n");
    hc_wait_eof(bad, 2000);
    assert_int_equal(bad->status, 400);
    streams_stats st;
    streams_get_stats(h.st, &st);
    assert_int_equal(st.resyncs, 2);
    assert_int_equal(st.resumes, 1);
    assert_int_equal(st.snapshots, 1);
    hc_free(bad);
    hc_free(r3);
    hc_free(r2);
    hc_free(c);
    free(tok);
    sh_stop(&h);
}

/* A client that does not read is dropped with a reason it can see ("slow consumer"), the daemon
 * keeps going, and the client resumes from its last id without a gap. */
static void test_sse_slow_client_dropped_and_resumes(void **state)
{
    sh h;
    (void)state;
    sh_start(&h, &(sh_opts){.stream_max_queued = 32 * 1024});
    char *tok = sh_subscribe(&h, "/v1/agents/700/subscriptions", "sup-tok", NULL, 201);
    hc *fast = sh_sse(&h, "700", tok, NULL);
    hc *slow = sh_sse(&h, "700", tok, NULL);
    assert_true(wait_type(fast, 0, "snapshot", 2000) == 0);
    assert_true(wait_type(slow, 0, "snapshot", 2000) == 0);
    uv_read_stop((uv_stream_t *)&slow->tcp); /* the browser tab froze */
    int total = 0;
    streams_stats st = {0};
    for (int round = 0; round < 400 && st.overflows == 0; round++) {
        publish(&h, "700", 20, 2000);
        total += 20;
        SH_RUN_FOR(&h, 2);
        streams_get_stats(h.st, &st);
    }
    assert_int_equal(st.overflows, 1);
    SH_RUN_UNTIL(&h, fast->nev == (size_t)total + 1, 5000);
    assert_int_equal(fast->nev, total + 1); /* the reader got everything, in order */
    assert_contiguous(fast, 1, 1);
    /* The slow one now reads what was sent before the cut and the reason. */
    uv_read_start((uv_stream_t *)&slow->tcp, hc_alloc, hc_on_read);
    hc_wait_eof(slow, 5000);
    assert_true(slow->eof);
    assert_true(slow->nev >= 2);
    hc_event *last = &slow->ev[slow->nev - 1];
    assert_non_null(last->event);
    assert_string_equal(last->event, "close");
    assert_non_null(strstr(last->data, "slow consumer"));
    assert_true(slow->nev - 2 < (size_t)total); /* it was cut before the end */
    long long got = hc_seq(&slow->ev[slow->nev - 2]);
    if (slow->nev == 2)
        got = 0; /* only the snapshot (seq 0) arrived */
    assert_contiguous(slow, 1, 1);
    char hdr[64];
    snprintf(hdr, sizeof hdr, "Last-Event-ID: %lld\r\n", got);
    hc *r = sh_sse(&h, "700", tok, hdr);
    SH_RUN_UNTIL(&h, r->nev == (size_t)(total - got), 5000);
    assert_int_equal(r->nev, total - got);
    assert_contiguous(r, 0, got + 1);
    hc_free(slow);
    slow = NULL;
    SH_RUN_FOR(&h, 50);
    streams_get_stats(h.st, &st);
    assert_int_equal(st.overflows, 1);
    assert_int_equal(st.clients, 2);
    /* Built once per stream entry for the live clients together (fast and slow shared each
     * message); the resumed client's replay built its own. */
    assert_true(st.msgs_built <= (uint64_t)(2 * total - got));
    assert_true(st.pushes >= (uint64_t)(total + (total - got)));
    hc_free(r);
    hc_free(slow);
    hc_free(fast);
    free(tok);
    sh_stop(&h);
}

/* A client resuming far behind (20 MB of missed events, 32 KiB allowed unsent) is fed in chunks
 * as it reads, never cut as a slow consumer, and gets every event once. */
static void test_sse_large_backlog_resume_is_paced(void **state)
{
    sh h;
    (void)state;
    sh_start(&h, &(sh_opts){.stream_max_queued = 32 * 1024});
    char *tok = sh_subscribe(&h, "/v1/agents/710/subscriptions", "sup-tok", NULL, 201);
    publish(&h, "710", 10000, 2000);
    hc *c = sh_sse(&h, "710", tok, "Last-Event-ID: 0\r\n");
    SH_RUN_UNTIL(&h, c->status == 200, 2000);
    uv_read_stop((uv_stream_t *)&c->tcp); /* a slow start: the daemon must wait, not drop */
    SH_RUN_FOR(&h, 300);
    streams_stats st;
    streams_get_stats(h.st, &st);
    assert_int_equal(st.overflows, 0);
    uv_read_start((uv_stream_t *)&c->tcp, hc_alloc, hc_on_read);
    SH_RUN_UNTIL(&h, c->nev == 10000, 20000);
    assert_int_equal(c->nev, 10000);
    assert_contiguous(c, 0, 1);
    publish(&h, "710", 5, 10); /* and then it is live */
    SH_RUN_UNTIL(&h, c->nev == 10005, 2000);
    assert_contiguous(c, 0, 1);
    streams_get_stats(h.st, &st);
    assert_int_equal(st.overflows, 0);
    assert_int_equal(st.resumes, 1);
    assert_int_equal(st.snapshots, 0);
    hc_free(c);
    free(tok);
    sh_stop(&h);
}

static int status_of(sh *h, const char *method, const char *path, const char *headers,
                     const char *body)
{
    hc *c = hc_open(h, method, path, headers, body);
    SH_RUN_UNTIL(h, c->status != 0, 3000);
    int st = c->status;
    hc_free(c);
    return st;
}

/* Who may subscribe and open which stream, and when a stream token stops working. */
static void test_stream_token_scope_and_expiry(void **state)
{
    sh h;
    char path[256];
    (void)state;
    sh_start(&h, &(sh_opts){.token_ttl_ms = 60000});
    /* Subscriptions: no token 401, unknown 401, another agent 403, own agent / service /
     * supervisor / admin 201; the supervisor stream only for supervisor and admin. */
    assert_null(sh_subscribe(&h, "/v1/agents/502/subscriptions", NULL, NULL, 401));
    assert_null(sh_subscribe(&h, "/v1/agents/502/subscriptions", "nope", NULL, 401));
    assert_null(sh_subscribe(&h, "/v1/agents/502/subscriptions", "agent-501", NULL, 403));
    assert_null(sh_subscribe(&h, "/v1/subscriptions", "agent-501", NULL, 403));
    assert_null(sh_subscribe(&h, "/v1/subscriptions", "svc-tok", NULL, 403));
    assert_null(sh_subscribe(&h, "/v1/agents/502/subscriptions", "svc-tok", "{\"queues\":3}", 400));
    assert_null(
        sh_subscribe(&h, "/v1/agents/502/subscriptions", "svc-tok", "{\"queues\":[\"\"]}", 400));
    assert_null(sh_subscribe(&h, "/v1/agents/502/subscriptions", "svc-tok", "{bad", 400));
    assert_null(sh_subscribe(&h, "/v1/agents/50%202/subscriptions", "svc-tok", NULL, 400));
    char *t501 = sh_subscribe(&h, "/v1/agents/501/subscriptions", "agent-501", NULL, 201);
    char *t502 = sh_subscribe(&h, "/v1/agents/502/subscriptions", "svc-tok", NULL, 201);
    char *tsup = sh_subscribe(&h, "/v1/subscriptions", "sup-tok", NULL, 201);
    free(sh_subscribe(&h, "/v1/subscriptions", "admin-tok", NULL, 201));
    assert_non_null(t501);
    assert_non_null(t502);
    assert_non_null(tsup);
    assert_int_equal(strlen(t501), 43);
    assert_string_not_equal(t501, t502);

    /* The answer names the three URLs with the token. */
    hc *c = hc_open(&h, "POST", "/v1/agents/501/subscriptions",
                    "Authorization: Bearer admin-tok\r\n", "{\"queues\":[\"sales\",\"support\"]}");
    hc_wait_eof(c, 3000);
    assert_int_equal(c->status, 201);
    json_t *j = json_loads(hc_body(c), 0, NULL);
    assert_non_null(j);
    const char *tok = json_string_value(json_object_get(j, "token"));
    json_t *urls = json_object_get(j, "urls");
    snprintf(path, sizeof path, "http://127.0.0.1:1/v1/agents/501/stream?token=%s", tok);
    assert_string_equal(json_string_value(json_object_get(urls, "sse")), path);
    snprintf(path, sizeof path, "ws://127.0.0.1:1/v1/agents/501/stream/ws?token=%s", tok);
    assert_string_equal(json_string_value(json_object_get(urls, "websocket")), path);
    snprintf(path, sizeof path, "http://127.0.0.1:1/v1/agents/501/stream/poll?token=%s", tok);
    assert_string_equal(json_string_value(json_object_get(urls, "longPoll")), path);
    assert_string_equal(json_string_value(json_object_get(j, "extension")), "501");
    assert_int_equal(json_array_size(json_object_get(j, "queues")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "expiresIn")), 60);
    json_decref(j);
    hc_free(c);

    /* Streams: 501's token opens 501's stream only. */
    snprintf(path, sizeof path, "/v1/agents/502/stream?token=%s", t501);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 403);
    snprintf(path, sizeof path, "/v1/agents/502/stream/ws?token=%s", t501);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 403);
    snprintf(path, sizeof path, "/v1/agents/502/stream/poll?token=%s", t501);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 403);
    snprintf(path, sizeof path, "/v1/stream?token=%s", t501);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 403);
    snprintf(path, sizeof path, "/v1/agents/501/stream?token=%s", tsup);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 403);
    assert_int_equal(status_of(&h, "GET", "/v1/agents/501/stream", NULL, NULL), 401);
    assert_int_equal(
        status_of(&h, "GET",
                  "/v1/agents/501/stream?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL,
                  NULL),
        401);
    snprintf(path, sizeof path, "/v1/agents/501/stream/poll?token=%s&timeout=0", t501);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 200);
    snprintf(path, sizeof path, "/v1/stream/poll?token=%s&timeout=0", tsup);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 200);
    /* Bearer API tokens work on the streams too (non-browser clients). */
    assert_int_equal(status_of(&h, "GET", "/v1/agents/501/stream/poll?timeout=0",
                               "Authorization: Bearer agent-501\r\n", NULL),
                     200);
    assert_int_equal(status_of(&h, "GET", "/v1/agents/502/stream/poll?timeout=0",
                               "Authorization: Bearer agent-501\r\n", NULL),
                     403);
    assert_int_equal(status_of(&h, "GET", "/v1/stream/poll?timeout=0",
                               "Authorization: Bearer agent-501\r\n", NULL),
                     403);
    assert_int_equal(status_of(&h, "GET", "/v1/stream/poll?timeout=0",
                               "Authorization: Bearer sup-tok\r\n", NULL),
                     200);

    /* Expiry (fake clock): a connected client keeps its token alive; ttl after the last client
     * left, and ttl after issue for a token never used, it no longer opens anything. */
    h.fake_now = 1000000000000;
    char *t1 = sh_subscribe(&h, "/v1/agents/501/subscriptions", "agent-501", NULL, 201);
    char *t2 = sh_subscribe(&h, "/v1/agents/501/subscriptions", "agent-501", NULL, 201);
    hc *live = sh_sse(&h, "501", t1, NULL);
    assert_true(wait_type(live, 0, "snapshot", 2000) == 0);
    h.fake_now += 60001;
    snprintf(path, sizeof path, "/v1/agents/501/stream/poll?token=%s&timeout=0", t2);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 401); /* never used: expired */
    snprintf(path, sizeof path, "/v1/agents/501/stream/poll?token=%s&timeout=0", t1);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 200); /* in use: alive */
    hc_free(live);
    SH_RUN_FOR(&h, 20);
    h.fake_now += 59000;
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 200); /* reconnect in time */
    h.fake_now += 60001;
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 401); /* too late */
    streams_stats st;
    streams_get_stats(h.st, &st);
    assert_int_equal(st.tokens_issued, 7);
    assert_true(h.bearer_calls > 0);
    free(t1);
    free(t2);
    free(t501);
    free(t502);
    free(tsup);
    sh_stop(&h);
}

/* Live tokens are bounded (503 past max_tokens); expired ones are swept to make room. */
static void test_stream_tokens_bounded_and_swept(void **state)
{
    sh h;
    (void)state;
    sh_start(&h, &(sh_opts){.max_tokens = 3, .token_ttl_ms = 1000});
    h.fake_now = 2000000000000;
    char *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = sh_subscribe(&h, "/v1/agents/501/subscriptions", "svc-tok", NULL, 201);
        assert_non_null(t[i]);
    }
    assert_null(sh_subscribe(&h, "/v1/agents/501/subscriptions", "svc-tok", NULL, 503));
    h.fake_now += 1001;
    char *t4 = sh_subscribe(&h, "/v1/agents/502/subscriptions", "svc-tok", NULL, 201);
    assert_non_null(t4);
    streams_stats st;
    streams_get_stats(h.st, &st);
    assert_int_equal(st.tokens_live, 1);
    assert_int_equal(st.tokens_issued, 4);
    char path[128];
    snprintf(path, sizeof path, "/v1/agents/501/stream/poll?token=%s&timeout=0", t[0]);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 401);
    snprintf(path, sizeof path, "/v1/agents/502/stream/poll?token=%s&timeout=0", t4);
    assert_int_equal(status_of(&h, "GET", path, NULL, NULL), 200);
    for (int i = 0; i < 3; i++)
        free(t[i]);
    free(t4);
    sh_stop(&h);
}

/* The supervisor stream sees every event (here: the call events nobody's agent stream has). */
static void test_supervisor_stream(void **state)
{
    sh h;
    (void)state;
    sh_start(&h, &(sh_opts){0});
    char *tok = sh_subscribe(&h, "/v1/subscriptions", "sup-tok", NULL, 201);
    hc *c = sh_sse(&h, NULL, tok, NULL);
    assert_true(wait_type(c, 0, "snapshot", 2000) == 0);
    json_t *j = json_loads(c->ev[0].data, 0, NULL);
    assert_non_null(json_object_get(json_object_get(j, "details"), "queues"));
    json_decref(j);
    assert_int_equal(pbxsim_play(h.sim, "queue-call-answered", NULL), 0);
    SH_RUN_UNTIL(&h, call_done(c), 5000);
    assert_true(hc_find(c, 1, "call.started") > 0);
    assert_true(hc_find(c, 1, "call.answered") > 0);
    assert_contiguous(c, 1, hc_seq(&c->ev[0]) + 1);
    hc_free(c);
    free(tok);
    sh_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_golden_queue_call),
        cmocka_unit_test(test_sse_drop_and_resume),
        cmocka_unit_test(test_sse_resume_across_ami_reconnect),
        cmocka_unit_test(test_sse_beyond_window_resync),
        cmocka_unit_test(test_sse_slow_client_dropped_and_resumes),
        cmocka_unit_test(test_sse_large_backlog_resume_is_paced),
        cmocka_unit_test(test_stream_token_scope_and_expiry),
        cmocka_unit_test(test_stream_tokens_bounded_and_swept),
        cmocka_unit_test(test_supervisor_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
