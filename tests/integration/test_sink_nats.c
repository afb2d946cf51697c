/* test_sink_nats.c: the nats sink against a real nats-server with JetStream on 127.0.0.1 (a free
 * port found by binding port 0, a temporary store directory). Proves: the stream is created when
 * missing (with the configured subjects, storage and duplicate window), every event id arrives
 * once and in order (read back with an ordered JetStream consumer), re-sent ids are dropped by
 * JetStream, a stopped server makes deliveries retry and a restarted one lets them complete,
 * permanent refusals are dead letters, and the [sink NAME] section is checked. Skipped when
 * nats-server is not installed. */
#include "testutil.h"

#include "core/config.h"
#include "core/error.h"
#include "outbox/outbox.h"
#include "sinks/factory.h"
#include "sinks/nats.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define NEV 300

static uv_loop_t loop;
static uv_timer_t guard;
static pid_t srv_pid = -1;
static int srv_port;
static char srv_dir[64];
static char srv_url[64];

/* --- nats-server ---------------------------------------------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static bool port_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts nats-server -js on srv_port with store srv_dir; waits (at most 5 s) until it listens. */
static int server_start(void)
{
    char port[16], log[128];
    snprintf(port, sizeof port, "%d", srv_port);
    snprintf(log, sizeof log, "%s/server.log", srv_dir);
    srv_pid = fork();
    if (srv_pid < 0)
        return -1;
    if (srv_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port, "-sd", srv_dir,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 250; i++) {
        int st;
        if (waitpid(srv_pid, &st, WNOHANG) == srv_pid) {
            srv_pid = -1;
            return -1;
        }
        if (port_open(srv_port))
            return 0;
        usleep(20000);
    }
    return -1;
}

/* SIGTERM, then SIGKILL after 5 s; always reaps. */
static void server_stop(void)
{
    int st;
    if (srv_pid <= 0)
        return;
    kill(srv_pid, SIGCONT); /* in case a failed test left it stopped */
    kill(srv_pid, SIGTERM);
    for (int i = 0; i < 250; i++) {
        if (waitpid(srv_pid, &st, WNOHANG) == srv_pid) {
            srv_pid = -1;
            return;
        }
        usleep(20000);
    }
    kill(srv_pid, SIGKILL);
    waitpid(srv_pid, &st, 0);
    srv_pid = -1;
}

/* Waits (at most 2 s) until /proc says pid is stopped, then 50 ms more for its threads. */
static void wait_stopped(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        const char *p;
        if (f)
            fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (p && p[1] == ' ' && p[2] == 'T')
            break;
        usleep(20000);
    }
    usleep(50000);
}

static bool has_nats_server(void)
{
    return system("nats-server --version >/dev/null 2>&1") == 0;
}

static void guard_cb(uv_timer_t *t)
{
    (void)t;
}

static int group_setup(void **state)
{
    (void)state;
    if (!has_nats_server())
        return 0;
    snprintf(srv_dir, sizeof srv_dir, "/tmp/sb-nats-XXXXXX");
    if (!mkdtemp(srv_dir) || (srv_port = free_port()) <= 0)
        return -1;
    snprintf(srv_url, sizeof srv_url, "nats://127.0.0.1:%d", srv_port);
    if (server_start() != 0)
        return -1;
    if (uv_loop_init(&loop) != 0)
        return -1;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, guard_cb, 5, 5);
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[128];
    (void)state;
    if (!srv_dir[0])
        return 0;
    server_stop();
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", srv_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define SKIP_WITHOUT_SERVER()                                                                      \
    do {                                                                                           \
        if (!srv_dir[0])                                                                           \
            skip();                                                                                \
    } while (0)

/* --- events and deliveries ----------------------------------------------------------------- */

typedef struct evset {
    outbox_event ev[NEV];
    const outbox_event *ptr[NEV];
    char id[NEV][48];
    char body[NEV][160];
    char *big; /* for the dead-letter test */
} evset;

static void evset_fill(evset *e, const char *tag, int n)
{
    for (int i = 0; i < n; i++) {
        snprintf(e->id[i], sizeof e->id[i], "%s-%05d", tag, i);
        int len = snprintf(e->body[i], sizeof e->body[i],
                           "{\"id\":\"%s\",\"type\":\"call.ended\",\"pbx\":\"pbx.1\",\"n\":%d}",
                           e->id[i], i);
        e->ev[i] = (outbox_event){.seq = i + 1,
                                  .id = e->id[i],
                                  .type = i % 2 ? "call.ended" : "call.started",
                                  .pbx = "pbx.1",
                                  .call_key = i % 3 ? "1700000000.42" : "",
                                  .time_ms = 1700000000000LL + i,
                                  .payload = e->body[i],
                                  .payload_len = (size_t)len,
                                  .attempt = 1};
        e->ptr[i] = &e->ev[i];
    }
}

typedef struct result_box {
    int calls;
    size_t n;
    outbox_result res[NEV];
    char why[NEV][200];
} result_box;

static uv_thread_t loop_thread;
static int off_loop_calls; /* done callbacks that ran on another thread: must stay 0 */

static void on_done(outbox_delivery *d, const outbox_result *r)
{
    result_box *b = (result_box *)d;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &loop_thread))
        off_loop_calls++;
    b->calls++;
    for (size_t i = 0; i < b->n; i++) {
        b->res[i] = r[i];
        snprintf(b->why[i], sizeof b->why[i], "%s", r[i].error ? r[i].error : "");
    }
}

/* Runs the loop until every box has been answered once, at most ms. */
static void run_until(result_box **boxes, int nb, int ms)
{
    uint64_t end = uv_now(&loop) + (uint64_t)ms;
    for (;;) {
        int left = 0;
        for (int i = 0; i < nb; i++)
            left += boxes[i]->calls == 0;
        if (!left || uv_now(&loop) > end)
            return;
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static int deliver(sink_nats *s, const outbox_event *const *batch, size_t n, result_box *b)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    return sink_nats_ops.deliver(s, batch, n, on_done, (outbox_delivery *)b);
}

static size_t count_verdict(const result_box *b, outbox_verdict v)
{
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        k += b->res[i].verdict == v;
    return k;
}

static void free_sink(sink_nats *s)
{
    sink_nats_ops.cancel(s);
    sink_nats_ops.free(s);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

/* --- reading back ---------------------------------------------------------------------------- */

typedef struct reader {
    natsConnection *nc;
    jsCtx *js;
} reader;

static void reader_open(reader *r)
{
    natsOptions *o = NULL;
    assert_int_equal(natsOptions_Create(&o), NATS_OK);
    assert_int_equal(natsOptions_SetURL(o, srv_url), NATS_OK);
    assert_int_equal(natsOptions_SetTimeout(o, 2000), NATS_OK);
    assert_int_equal(natsConnection_Connect(&r->nc, o), NATS_OK);
    natsOptions_Destroy(o);
    assert_int_equal(natsConnection_JetStream(&r->js, r->nc, NULL), NATS_OK);
}

static void reader_close(reader *r)
{
    jsCtx_Destroy(r->js);
    natsConnection_Destroy(r->nc);
}

/* The stream's info (owned: jsStreamInfo_Destroy) or NULL when it does not exist. */
static jsStreamInfo *stream_info(reader *r, const char *name)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetStreamInfo(&si, r->js, name, NULL, &jerr);
    if (st == NATS_NOT_FOUND)
        return NULL;
    assert_int_equal(st, NATS_OK);
    return si;
}

/* Reads every message of the stream with an ordered consumer: ids[] gets Nats-Msg-Id in stream
 * order; subj0 the first subject. Returns the count (stops 500 ms after the last message). */
static int read_stream(reader *r, const char *stream, const char *filter, char (*ids)[48], int max,
                       char *subj0, size_t subj0size)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    int n = 0;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    assert_int_equal(js_SubscribeSync(&sub, r->js, filter, NULL, &so, &jerr), NATS_OK);
    for (int spins = 0; spins < 10 * NEV; spins++) {
        natsMsg *m = NULL;
        const char *id = NULL;
        if (natsSubscription_NextMsg(&m, sub, 500) != NATS_OK)
            break;
        assert_int_equal(natsMsgHeader_Get(m, "Nats-Msg-Id", &id), NATS_OK);
        if (n == 0 && subj0)
            snprintf(subj0, subj0size, "%s", natsMsg_GetSubject(m));
        if (n < max)
            snprintf(ids[n], 48, "%s", id);
        n++;
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sub);
    return n;
}

static sink_nats *new_sink(const char *stream, const char *prefix, int64_t dup_ms, int32_t max_msg,
                           bool no_create)
{
    sink_nats *s = NULL;
    sink_nats_config c = {.url = srv_url,
                          .subject_prefix = prefix,
                          .stream = stream,
                          .duplicate_window_ms = dup_ms,
                          .stream_max_msg_size = max_msg,
                          .is_create_disabled = no_create,
                          .timeout_ms = 1000};
    assert_int_equal(sink_nats_new(&loop, &c, &s), 0);
    return s;
}

/* --- tests ----------------------------------------------------------------------------------- */

static void test_creates_stream_and_delivers_each_id_once_in_order(void **state)
{
    static evset e;
    static result_box b1, b2, b3;
    static char ids[NEV + 10][48];
    result_box *boxes[] = {&b1, &b2, &b3};
    char subj[128] = "";
    reader r;
    jsStreamInfo *si;
    sink_nats *s;
    (void)state;
    SKIP_WITHOUT_SERVER();
    reader_open(&r);
    assert_null(stream_info(&r, "T1")); /* missing before */
    evset_fill(&e, "t1", NEV);
    s = new_sink("T1", "t1", 90000, 0, false);
    /* three deliveries queued at once: served in order */
    assert_int_equal(deliver(s, e.ptr, 100, &b1), 0);
    assert_int_equal(deliver(s, e.ptr + 100, 100, &b2), 0);
    assert_int_equal(deliver(s, e.ptr + 200, 100, &b3), 0);
    run_until(boxes, 3, 10000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(boxes[i]->calls, 1);
        assert_int_equal(count_verdict(boxes[i], OUTBOX_OK), 100);
    }
    /* the stream now exists with the configured subjects, storage and duplicate window */
    si = stream_info(&r, "T1");
    assert_non_null(si);
    assert_int_equal(si->Config->SubjectsLen, 1);
    assert_string_equal(si->Config->Subjects[0], "t1.>");
    assert_int_equal(si->Config->Storage, js_FileStorage);
    assert_int_equal(si->Config->Duplicates, 90000LL * 1000000);
    assert_int_equal(si->State.Msgs, NEV);
    jsStreamInfo_Destroy(si);
    /* every id once, in order, on PREFIX.<pbx>.<type> */
    assert_int_equal(read_stream(&r, "T1", "t1.>", ids, NEV + 10, subj, sizeof subj), NEV);
    for (int i = 0; i < NEV; i++)
        assert_string_equal(ids[i], e.id[i]);
    assert_string_equal(subj, "t1.pbx_1.call.started");
    /* no callback ran twice after more loop turns */
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 3; i++)
        assert_int_equal(boxes[i]->calls, 1);
    assert_int_equal(off_loop_calls, 0);
    free_sink(s);
    reader_close(&r);
}

static void test_resent_ids_are_dropped_by_jetstream(void **state)
{
    static evset e;
    static result_box b;
    static char ids[NEV + 10][48];
    result_box *boxes[] = {&b};
    reader r;
    jsStreamInfo *si;
    sink_nats *s;
    (void)state;
    SKIP_WITHOUT_SERVER();
    reader_open(&r);
    evset_fill(&e, "t2", 100);
    s = new_sink("T2", "t2", 0, 0, false);
    assert_int_equal(deliver(s, e.ptr, 100, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(count_verdict(&b, OUTBOX_OK), 100);
    /* the same ids again (a retry after a lost ack, or a second node): acked, not stored */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(deliver(s, e.ptr + round * 50, 50, &b), 0);
        run_until(boxes, 1, 10000);
        assert_int_equal(b.calls, 1);
        assert_int_equal(count_verdict(&b, OUTBOX_OK), 50);
    }
    /* another sink (a second switchboard node) publishing the same ids */
    {
        sink_nats *s2 = new_sink("T2", "t2", 0, 0, false);
        assert_int_equal(deliver(s2, e.ptr, 100, &b), 0);
        run_until(boxes, 1, 10000);
        assert_int_equal(count_verdict(&b, OUTBOX_OK), 100);
        free_sink(s2);
    }
    si = stream_info(&r, "T2");
    assert_non_null(si);
    assert_int_equal(si->State.Msgs, 100);
    assert_int_equal(si->Config->Duplicates, 120000LL * 1000000); /* the default window */
    jsStreamInfo_Destroy(si);
    assert_int_equal(read_stream(&r, "T2", "t2.>", ids, NEV + 10, NULL, 0), 100);
    for (int i = 0; i < 100; i++)
        assert_string_equal(ids[i], e.id[i]);
    /* the stream deleted under a connected sink: the next publishes find no stream (RETRY),
     * the delivery after that creates it again */
    assert_int_equal(js_DeleteStream(r.js, "T2", NULL, NULL), NATS_OK);
    assert_int_equal(deliver(s, e.ptr, 10, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(count_verdict(&b, OUTBOX_RETRY), 10);
    assert_non_null(strstr(b.why[0], "no stream takes t2.pbx_1.call.started"));
    assert_int_equal(deliver(s, e.ptr, 10, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(count_verdict(&b, OUTBOX_OK), 10);
    si = stream_info(&r, "T2");
    assert_non_null(si);
    assert_int_equal(si->State.Msgs, 10);
    jsStreamInfo_Destroy(si);
    free_sink(s);
    reader_close(&r);
}

static void test_stopped_server_retries_and_restart_completes(void **state)
{
    static evset e;
    static result_box b;
    static char ids[NEV + 10][48];
    result_box *boxes[] = {&b};
    reader r;
    sink_nats *s;
    uint64_t t0;
    int attempts = 0;
    (void)state;
    SKIP_WITHOUT_SERVER();
    evset_fill(&e, "t3", 200);
    s = new_sink("T3", "t3", 0, 0, false);
    assert_int_equal(deliver(s, e.ptr, 100, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(count_verdict(&b, OUTBOX_OK), 100);

    server_stop();
    /* every delivery while the server is down: all RETRY, answered within the timeout */
    for (int k = 0; k < 2; k++) {
        t0 = uv_hrtime();
        assert_int_equal(deliver(s, e.ptr + 100, 100, &b), 0);
        run_until(boxes, 1, 10000);
        assert_int_equal(b.calls, 1);
        assert_int_equal(count_verdict(&b, OUTBOX_RETRY), 100);
        assert_non_null(b.res[0].error);
        assert_true((uv_hrtime() - t0) / 1000000 < 5000);
    }

    assert_int_equal(server_start(), 0);
    /* the outbox would retry with back-off; here every 200 ms, at most 50 times */
    do {
        usleep(200000);
        assert_int_equal(deliver(s, e.ptr + 100, 100, &b), 0);
        run_until(boxes, 1, 10000);
        assert_int_equal(b.calls, 1);
        attempts++;
    } while (count_verdict(&b, OUTBOX_OK) != 100 && attempts < 50);
    assert_int_equal(count_verdict(&b, OUTBOX_OK), 100);

    reader_open(&r);
    assert_int_equal(read_stream(&r, "T3", "t3.>", ids, NEV + 10, NULL, 0), 200);
    for (int i = 0; i < 200; i++)
        assert_string_equal(ids[i], e.id[i]);
    reader_close(&r);
    free_sink(s);
}

static void test_permanent_refusals_are_dead_letters(void **state)
{
    static evset e;
    static result_box b;
    result_box *boxes[] = {&b};
    const outbox_event *batch[4];
    outbox_event big = {0}, huge = {0};
    char *big_body = malloc(4000), *huge_body = malloc(2 * 1024 * 1024);
    sink_nats *s;
    reader r;
    jsStreamInfo *si;
    (void)state;
    SKIP_WITHOUT_SERVER();
    assert_non_null(big_body);
    assert_non_null(huge_body);
    memset(big_body, 'x', 4000);
    memset(huge_body, 'y', 2 * 1024 * 1024);
    evset_fill(&e, "t4", 2);
    big = e.ev[0];
    big.id = "t4-big";
    big.payload = big_body;
    big.payload_len = 4000;
    huge = e.ev[0];
    huge.id = "t4-huge";
    huge.payload = huge_body;
    huge.payload_len = 2 * 1024 * 1024;
    batch[0] = e.ptr[0];
    batch[1] = &big;  /* above the stream's max_msg_size: refused by the stream */
    batch[2] = &huge; /* above the server's max_payload (1 MiB): refused by the client */
    batch[3] = e.ptr[1];
    s = new_sink("T4", "t4", 0, 2048, false);
    assert_int_equal(deliver(s, batch, 4, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.res[0].verdict, OUTBOX_OK);
    assert_int_equal(b.res[1].verdict, OUTBOX_DEAD);
    assert_non_null(strstr(b.why[1], "10054"));
    assert_int_equal(b.res[2].verdict, OUTBOX_DEAD);
    assert_int_equal(b.res[3].verdict, OUTBOX_OK); /* a dead letter does not stop the batch */
    reader_open(&r);
    si = stream_info(&r, "T4");
    assert_non_null(si);
    assert_int_equal(si->State.Msgs, 2);
    jsStreamInfo_Destroy(si);
    reader_close(&r);
    free_sink(s);
    free(big_body);
    free(huge_body);
}

static void test_missing_stream_not_created_when_disabled(void **state)
{
    static evset e;
    static result_box b;
    result_box *boxes[] = {&b};
    sink_nats *s;
    reader r;
    (void)state;
    SKIP_WITHOUT_SERVER();
    evset_fill(&e, "t5", 3);
    s = new_sink("T5", "t5", 0, 0, true);
    assert_int_equal(deliver(s, e.ptr, 3, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(b.calls, 1);
    assert_int_equal(count_verdict(&b, OUTBOX_RETRY), 3);
    assert_non_null(strstr(b.why[0], "does not exist"));
    reader_open(&r);
    assert_null(stream_info(&r, "T5"));
    reader_close(&r);
    free_sink(s);
}

static void test_unreachable_server_retries_quickly(void **state)
{
    static evset e;
    static result_box b;
    result_box *boxes[] = {&b};
    sink_nats *s = NULL;
    char url[64];
    int port = free_port(); /* nobody listens there */
    uint64_t t0 = uv_hrtime();
    (void)state;
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    evset_fill(&e, "t6", 5);
    if (!srv_dir[0]) {
        assert_int_equal(uv_loop_init(&loop), 0);
    }
    assert_int_equal(sink_nats_new(&loop, &(sink_nats_config){.url = url, .timeout_ms = 500}, &s),
                     0);
    assert_int_equal(deliver(s, e.ptr, 5, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(b.calls, 1);
    assert_int_equal(count_verdict(&b, OUTBOX_RETRY), 5);
    assert_true((uv_hrtime() - t0) / 1000000 < 5000);
    free_sink(s);
    if (!srv_dir[0]) {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
}

/* SIGSTOP: the server holds the connection but answers nothing. Acks time out (RETRY), a cancel
 * answers a waiting delivery at once, and after SIGCONT the re-sent events are stored once. */
static void test_stalled_server_times_out_then_dedups(void **state)
{
    static evset e;
    static result_box b;
    static char ids[NEV + 10][48];
    result_box *boxes[] = {&b};
    reader r;
    sink_nats *s;
    uint64_t t0;
    int attempts = 0;
    (void)state;
    SKIP_WITHOUT_SERVER();
    evset_fill(&e, "t8", 50);
    s = new_sink("T8", "t8", 0, 0, false); /* timeout 1 s */
    assert_int_equal(deliver(s, e.ptr, 10, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(count_verdict(&b, OUTBOX_OK), 10);

    /* a second sink, connected before the stall, for the cancel below */
    static result_box b2;
    result_box *boxes2[] = {&b2};
    sink_nats *s2 = new_sink("T8", "t8", 0, 0, false);
    assert_int_equal(deliver(s2, e.ptr, 10, &b2), 0);
    run_until(boxes2, 1, 10000);
    assert_int_equal(count_verdict(&b2, OUTBOX_OK), 10);

    assert_int_equal(kill(srv_pid, SIGSTOP), 0);
    wait_stopped(srv_pid); /* every thread of the server stopped before we publish */
    t0 = uv_hrtime();
    assert_int_equal(deliver(s, e.ptr + 10, 40, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(b.calls, 1);
    assert_int_equal(count_verdict(&b, OUTBOX_RETRY), 40);
    assert_non_null(strstr(b.why[0], "no publish ack"));
    assert_true((uv_hrtime() - t0) / 1000000 >= 900); /* waited for the ack timeout */
    assert_true((uv_hrtime() - t0) / 1000000 < 5000); /* and not much longer */

    /* cancel while a delivery waits for its acks: answered well before the timeout */
    assert_int_equal(deliver(s2, e.ptr + 10, 40, &b2), 0);
    usleep(100000);
    t0 = uv_hrtime();
    sink_nats_ops.cancel(s2);
    run_until(boxes2, 1, 10000);
    assert_int_equal(b2.calls, 1);
    assert_int_equal(count_verdict(&b2, OUTBOX_RETRY), 40);
    assert_non_null(strstr(b2.why[0], "shutting down"));
    assert_true((uv_hrtime() - t0) / 1000000 < 500);
    /* a cancelled sink answers new deliveries at once, unsent */
    assert_int_equal(deliver(s2, e.ptr, 5, &b2), 0);
    run_until(boxes2, 1, 10000);
    assert_int_equal(count_verdict(&b2, OUTBOX_RETRY), 5);
    assert_string_equal(b2.why[0], "not sent: shutting down");

    assert_int_equal(kill(srv_pid, SIGCONT), 0);
    t0 = uv_hrtime();
    sink_nats_ops.free(s2); /* closes its connection: quick once the server answers again */
    assert_true((uv_hrtime() - t0) / 1000000 < 3000);
    do {
        if (attempts)
            usleep(200000);
        assert_int_equal(deliver(s, e.ptr + 10, 40, &b), 0);
        run_until(boxes, 1, 10000);
        attempts++;
    } while (count_verdict(&b, OUTBOX_OK) != 40 && attempts < 30);
    assert_int_equal(count_verdict(&b, OUTBOX_OK), 40);
    /* the stalled publishes may have been stored after SIGCONT: the re-sent ones were dropped */
    reader_open(&r);
    assert_int_equal(read_stream(&r, "T8", "t8.>", ids, NEV + 10, NULL, 0), 50);
    for (int i = 0; i < 50; i++)
        assert_string_equal(ids[i], e.id[i]);
    reader_close(&r);
    assert_int_equal(off_loop_calls, 0);
    free_sink(s);
}

/* --- through the real outbox ----------------------------------------------------------------- */

static int ob_durable, ob_closed;

static void on_durable(int status, int64_t seq, void *ud)
{
    (void)seq;
    (void)ud;
    if (status == 0)
        ob_durable++;
}

static void on_ob_closed(void *ud)
{
    (void)ud;
    ob_closed = 1;
}

static void ob_append(outbox *ob, int from, int to)
{
    char id[32], key[32], payload[200];
    for (int i = from; i < to; i++) {
        int len;
        snprintf(id, sizeof id, "t7-%05d", i);
        snprintf(key, sizeof key, "call-%d", i % 7);
        len =
            snprintf(payload, sizeof payload,
                     "{\"id\":\"%s\",\"type\":\"call.started\",\"pbx\":\"pbx1\",\"n\":%d}", id, i);
        store_event ev = {0,       id,         "call.started", "pbx1", key, 1764000000000LL + i,
                          payload, (size_t)len};
        assert_int_equal(outbox_append(ob, &ev, on_durable, NULL), 0);
    }
}

/* Runs the loop until the sink's cursor reaches want (at most ms); returns the stats. */
static outbox_sink_stats wait_cursor(outbox *ob, int64_t want, int ms)
{
    outbox_sink_stats st;
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000;
    do
        uv_run(&loop, UV_RUN_ONCE);
    while (outbox_sink_stats_get(ob, "bus", &st) == 0 && st.cursor < want && uv_hrtime() < end);
    return st;
}

static void test_outbox_delivers_through_nats_across_a_restart(void **state)
{
    static char ids[12000][48];
    const int n1 = 10000, n2 = 1000;
    char text[512], err[256], db[128];
    sb_config *cfg = NULL;
    outbox *ob = NULL;
    outbox_sink_stats st;
    uint64_t t0, t1;
    reader r;
    int n;
    (void)state;
    SKIP_WITHOUT_SERVER();
    snprintf(text, sizeof text,
             "[sink bus]\nkind = nats\nurl = %s\nstream = T7\nsubject_prefix = t7\n"
             "storage = memory\nbatch_max = 500\nbackoff_base = 100ms\nbackoff_max = 300ms\n"
             "timeout = 1s\nmax_attempts = 1000\n",
             srv_url);
    snprintf(db, sizeof db, "%s/outbox.db", srv_dir);
    assert_int_equal(sb_config_parse(text, strlen(text), "sb.conf", &cfg, err, sizeof err), 0);
    assert_int_equal(outbox_open(&loop, &(outbox_options){.path = db}, &ob), 0);
    assert_int_equal(sink_add_all(&loop, NULL, cfg, ob, NULL, err, sizeof err), 0);

    t0 = uv_hrtime();
    ob_append(ob, 0, n1);
    st = wait_cursor(ob, n1, 30000);
    t1 = uv_hrtime();
    assert_int_equal(st.cursor, n1);
    assert_int_equal(st.delivered, n1);
    assert_int_equal(st.dead, 0);
    printf("nats sink: %d events committed and published (acked) through the outbox in %.3f s "
           "(%.0f events/s)\n",
           n1, (double)(t1 - t0) / 1e9, n1 / ((double)(t1 - t0) / 1e9));

    /* server down: the cursor stops, the outbox retries */
    server_stop();
    ob_append(ob, n1, n1 + n2);
    st = wait_cursor(ob, n1 + n2, 1500);
    assert_true(st.cursor < n1 + n2);
    assert_true(st.retried > 0);
    assert_non_null(strstr(st.last_error, "not connected"));
    /* back (memory storage: the stream is gone and is created again) */
    assert_int_equal(server_start(), 0);
    st = wait_cursor(ob, n1 + n2, 20000);
    assert_int_equal(st.cursor, n1 + n2);
    assert_int_equal(st.dead, 0);

    reader_open(&r);
    n = read_stream(&r, "T7", "t7.>", ids, 12000, NULL, 0);
    assert_true(n >= n2 && n <= n2 + 500); /* the events since the restart (one batch resent) */
    {
        int first = atoi(ids[0] + 3);
        for (int i = 0; i < n; i++) {
            char want[48];
            snprintf(want, sizeof want, "t7-%05d", first + i);
            assert_string_equal(ids[i], want);
        }
        assert_int_equal(first + n, n1 + n2);
    }
    reader_close(&r);

    outbox_close(ob, on_ob_closed, NULL);
    for (uint64_t end = uv_hrtime() + 5000000000ull; !ob_closed && uv_hrtime() < end;)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(ob_closed, 1);
    assert_int_equal(ob_durable, n1 + n2);
    assert_int_equal(off_loop_calls, 0);
    sb_config_free(cfg);
}

/* An existing stream is used as it is; when its subjects do not cover the sink's, nothing takes
 * the publishes and they are retried with a reason that says so. */
static void test_existing_stream_with_other_subjects_retries(void **state)
{
    static evset e;
    static result_box b;
    result_box *boxes[] = {&b};
    const char *subjects[] = {"elsewhere.>"};
    jsStreamConfig sc;
    jsErrCode jerr = 0;
    jsStreamInfo *si;
    sink_nats *s;
    reader r;
    (void)state;
    SKIP_WITHOUT_SERVER();
    reader_open(&r);
    jsStreamConfig_Init(&sc);
    sc.Name = "T9";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_MemoryStorage;
    assert_int_equal(js_AddStream(NULL, r.js, &sc, NULL, &jerr), NATS_OK);
    evset_fill(&e, "t9", 3);
    s = new_sink("T9", "t9", 0, 0, false);
    assert_int_equal(deliver(s, e.ptr, 3, &b), 0);
    run_until(boxes, 1, 10000);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.res[0].verdict, OUTBOX_RETRY);
    assert_non_null(strstr(b.why[0], "no stream takes t9.pbx_1.call.started"));
    si = stream_info(&r, "T9"); /* left as it was */
    assert_non_null(si);
    assert_string_equal(si->Config->Subjects[0], "elsewhere.>");
    assert_int_equal(si->State.Msgs, 0);
    jsStreamInfo_Destroy(si);
    reader_close(&r);
    free_sink(s);
}

/* A list of servers: a dead one first does not stop the sink from using the live one. */
static void test_server_list(void **state)
{
    static evset e;
    static result_box b;
    result_box *boxes[] = {&b};
    sink_nats *s = NULL;
    char urls[160];
    int attempts = 0;
    (void)state;
    SKIP_WITHOUT_SERVER();
    snprintf(urls, sizeof urls, "nats://127.0.0.1:%d, %s", free_port(), srv_url);
    evset_fill(&e, "t10", 3);
    assert_int_equal(sink_nats_new(&loop,
                                   &(sink_nats_config){.url = urls,
                                                       .stream = "T10",
                                                       .subject_prefix = "t10",
                                                       .timeout_ms = 1000},
                                   &s),
                     0);
    do {
        if (attempts)
            usleep(100000);
        assert_int_equal(deliver(s, e.ptr, 3, &b), 0);
        run_until(boxes, 1, 10000);
        attempts++;
    } while (count_verdict(&b, OUTBOX_OK) != 3 && attempts < 30);
    assert_int_equal(count_verdict(&b, OUTBOX_OK), 3);
    free_sink(s);
}

/* Publish rate straight into the sink (no outbox), pipelined and strict (max_pending = 1). */
static void test_rate_pipelined_and_strict(void **state)
{
    static evset e;
    static result_box b;
    result_box *boxes[] = {&b};
    const int rounds = 20; /* 20 x 250 = 5000 events per mode */
    (void)state;
    SKIP_WITHOUT_SERVER();
    evset_fill(&e, "t11", 250);
    for (int mode = 0; mode < 2; mode++) {
        sink_nats *s = NULL;
        uint64_t t0;
        double secs;
        char tag[16];
        snprintf(tag, sizeof tag, "t11m%d", mode);
        for (int i = 0; i < 250; i++)
            snprintf(e.id[i], sizeof e.id[i], "%s-%05d", tag, i);
        assert_int_equal(sink_nats_new(&loop,
                                       &(sink_nats_config){.url = srv_url,
                                                           .stream = "T11",
                                                           .subject_prefix = "t11",
                                                           .is_memory_storage = true,
                                                           .max_pending = mode ? 1 : 0},
                                       &s),
                         0);
        t0 = uv_hrtime();
        for (int r = 0; r < rounds; r++) {
            /* fresh ids each round, or JetStream would drop them as duplicates */
            for (int i = 0; i < 250; i++)
                snprintf(e.id[i], sizeof e.id[i], "%s-%02d-%05d", tag, r, i);
            assert_int_equal(deliver(s, e.ptr, 250, &b), 0);
            run_until(boxes, 1, 10000);
            assert_int_equal(count_verdict(&b, OUTBOX_OK), 250);
        }
        secs = (double)(uv_hrtime() - t0) / 1e9;
        printf("nats sink, %s: %d events acked in %.3f s (%.0f events/s)\n",
               mode ? "max_pending = 1" : "max_pending = 256", rounds * 250, secs,
               rounds * 250 / secs);
        free_sink(s);
    }
}

static void test_subject_names(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(sink_nats_subject("switchboard", "pbx1", "call.ended", out, sizeof out), 0);
    assert_string_equal(out, "switchboard.pbx1.call.ended");
    assert_int_equal(sink_nats_subject("a.b", "p x.*>", "queue..member status", out, sizeof out),
                     0);
    assert_string_equal(out, "a.b.p_x___.queue._.member_status");
    assert_int_equal(sink_nats_subject("p", "", "", out, sizeof out), 0);
    assert_string_equal(out, "p._._");
    assert_int_equal(sink_nats_subject("p", "pbx1", "call.ended", out, 12), SB_ETOOBIG);
}

static int build(const char *text, sink_built *b, char *err, size_t n)
{
    sb_config *cfg = NULL;
    int rc;
    if (sb_config_parse(text, strlen(text), "sb.conf", &cfg, err, n) != 0)
        return -999;
    rc = sink_from_section(&loop, NULL, cfg, sb_config_section_find(cfg, "sink", "bus"), b, err, n);
    sb_config_free(cfg);
    return rc;
}

static void test_config_section(void **state)
{
    sink_built b;
    char err[256];
    bool is_own_loop = !srv_dir[0];
    (void)state;
    if (is_own_loop)
        assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(build("[sink bus]\nkind = nats\nurl = nats://a:4222,nats://b:4222\n"
                           "subject_prefix = sb.events\nstream = EVENTS\nstorage = memory\n"
                           "duplicate_window = 10m\nstream_max_age = 7d\nreplicas = 3\n"
                           "max_pending = 1\ncreate_stream = no\ntypes = call.*\nbatch_max = 500\n"
                           "timeout = 3s\n",
                           &b, err, sizeof err),
                     0);
    assert_ptr_equal(b.ops, &sink_nats_ops);
    assert_int_equal(b.ocfg.batch_max, 500);
    b.ops->free(b.impl); /* never started: freed at once */
    assert_int_equal(build("[sink bus]\nkind = nats\n", &b, err, sizeof err), 0);
    b.ops->free(b.impl);
    assert_int_equal(build("[sink bus]\nkind = nats\nstorage = tape\n", &b, err, sizeof err),
                     SB_ECONFIG);
    assert_string_equal(err, "sb.conf:3: [sink bus] storage: not file or memory");
    assert_int_equal(build("[sink bus]\nkind = nats\nbucket = x\n", &b, err, sizeof err),
                     SB_ECONFIG);
    assert_string_equal(err, "sb.conf:3: [sink bus] bucket: unknown key for this kind of sink");
    assert_int_equal(build("[sink bus]\nkind = nats\nurl = http://x\n", &b, err, sizeof err),
                     SB_ECONFIG);
    assert_non_null(strstr(err, "sb.conf:3: [sink bus] url: expected nats://"));
    assert_int_equal(build("[sink bus]\nkind = nats\nsubject_prefix = a..b\n", &b, err, sizeof err),
                     SB_ECONFIG);
    assert_string_equal(err, "sb.conf:1: [sink bus]: bad subject_prefix, stream, stream_subjects "
                             "or filter");
    assert_int_equal(
        build("[sink bus]\nkind = nats\nduplicate_window = soon\n", &b, err, sizeof err),
        SB_ECONFIG);
    assert_string_equal(err, "sb.conf:3: [sink bus] duplicate_window: not a duration (e.g. 2m, "
                             "1h, 7d)");
    if (is_own_loop) {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_names),
        cmocka_unit_test(test_config_section),
        cmocka_unit_test(test_unreachable_server_retries_quickly),
        cmocka_unit_test(test_creates_stream_and_delivers_each_id_once_in_order),
        cmocka_unit_test(test_resent_ids_are_dropped_by_jetstream),
        cmocka_unit_test(test_permanent_refusals_are_dead_letters),
        cmocka_unit_test(test_missing_stream_not_created_when_disabled),
        cmocka_unit_test(test_existing_stream_with_other_subjects_retries),
        cmocka_unit_test(test_server_list),
        cmocka_unit_test(test_rate_pipelined_and_strict),
        cmocka_unit_test(test_stalled_server_times_out_then_dedups),
        cmocka_unit_test(test_stopped_server_retries_and_restart_completes),
        cmocka_unit_test(test_outbox_delivers_through_nats_across_a_restart),
    };
    signal(SIGPIPE, SIG_IGN);
    loop_thread = uv_thread_self();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
