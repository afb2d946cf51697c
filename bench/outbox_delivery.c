/* bench/outbox_delivery.c: delivered events per second through the durable outbox to a local
 * webhook receiver that acknowledges at once, against the baseline of the SAME receiver fed
 * directly by a plain client, measured in the same run (issue 5 §3: delivery >= 50% of baseline).
 *
 *   receiver   the daemon's own HTTP server (src/http) on a thread and loop of its own, answering
 *              200 to every POST and counting X-Switchboard-Batch-Size events per request
 *   baseline   httpc (curl multi on libuv) POSTing the same JSON batches of B events, K requests
 *              in flight, no store, no signature: the ceiling of the HTTP path
 *   end-to-end outbox_append of every event -> group commit (synchronous=FULL) -> the webhook
 *              sink (batch mode, signed HMAC-SHA256, partitioned, K batches in flight) -> the
 *              receiver's 200; timed from the first append to the last event acknowledged
 *   delivery   the same sink added after every event is already committed: delivery alone,
 *              once from the outbox's memory tail (the normal path of a sink that keeps up) and
 *              once from the store (no tail: the path of a sink far behind)
 *
 * Usage: bench_outbox_delivery [events] [batch] [inflight] [url]   (defaults 100000, 100, 8)
 *   url: an external receiver instead of the in-process one (e.g. tests/integration/receiver.py,
 *   which parses every body and appends ids to a file: a slower, more realistic receiver). Events
 *   are then counted from the 2xx answers (baseline) and the sink's delivered counter (outbox).
 */
#include "core/error.h"
#include "core/log.h"
#include "http/server.h"
#include "net/httpc.h"
#include "outbox/outbox.h"
#include "sinks/webhook.h"

#include <stdatomic.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define REPS 7

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the whole process (every thread: the receiver's too), user + system. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- the receiver (own thread) ---- */

typedef struct receiver {
    uv_thread_t thread;
    uv_loop_t loop;
    http_server *srv;
    uv_async_t stop;
    uv_sem_t ready;
    int port;
    atomic_long events, requests;
} receiver;

static void on_request(http_request *req, void *ud)
{
    receiver *r = ud;
    sb_slice n = http_request_header(req, "X-Switchboard-Batch-Size");
    long count = 1;
    if (n.ptr && n.len < 16) {
        char tmp[16];
        memcpy(tmp, n.ptr, n.len);
        tmp[n.len] = '\0';
        count = atol(tmp);
    }
    atomic_fetch_add(&r->events, count);
    atomic_fetch_add(&r->requests, 1);
    http_respond(req, 200, "text/plain", NULL, 0, (sb_slice){"ok", 2});
}

static void on_stop(uv_async_t *a)
{
    receiver *r = a->data;
    http_server_stop(r->srv);
    uv_close((uv_handle_t *)a, NULL);
}

static void receiver_main(void *arg)
{
    receiver *r = arg;
    http_server_config cfg = {.host = "127.0.0.1",
                              .port = 0,
                              .handler = on_request,
                              .handler_ud = r,
                              .max_body_bytes = 8u << 20};
    uv_loop_init(&r->loop);
    if (http_server_init(&r->srv, &r->loop, &cfg) || http_server_start(r->srv)) {
        fprintf(stderr, "receiver: cannot listen\n");
        exit(1);
    }
    r->port = http_server_port(r->srv);
    uv_async_init(&r->loop, &r->stop, on_stop);
    r->stop.data = r;
    uv_sem_post(&r->ready);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    http_server_free(r->srv);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
}

/* ---- events ---- */

static int make_payload(int i, char *buf, size_t n, char *id, size_t idn, char *key, size_t keyn)
{
    snprintf(id, idn, "01J%010d-%08x", i, (unsigned)i * 2654435761u);
    snprintf(key, keyn, "1732500000.%d", i / 6);
    return snprintf(buf, n,
                    "{\"id\":\"%s\",\"type\":\"call.answered\",\"time\":"
                    "\"2026-11-25T02:00:00.000Z\",\"pbx\":\"pbx1\",\"details\":{\"callId\":\"%s\","
                    "\"state\":\"answered\",\"from\":\"+441234567890\",\"to\":\"+441098765432\","
                    "\"direction\":\"inbound\",\"queue\":\"support\",\"agent\":\"1001\",\"start\":"
                    "\"2026-11-25T01:59:50.000Z\",\"answer\":\"2026-11-25T02:00:00.000Z\"}}",
                    id, key);
}

/* ---- baseline: the plain client ---- */

typedef struct baseline {
    httpc *http;
    char url[64];
    char **bodies;
    size_t *lens;
    int nbodies, next, done, batch, errors;
} baseline;

static void base_send(baseline *b);

static void on_base_resp(const httpc_resp *resp, void *ud)
{
    baseline *b = ud;
    if (resp->err || resp->status != 200)
        b->errors++;
    b->done++;
    base_send(b);
}

static void base_send(baseline *b)
{
    if (b->next >= b->nbodies)
        return;
    char hdr[64];
    snprintf(hdr, sizeof hdr, "X-Switchboard-Batch-Size: %d", b->batch);
    const char *headers[] = {"Content-Type: application/json", hdr, NULL};
    httpc_req req = {.method = "POST",
                     .url = b->url,
                     .headers = headers,
                     .body = {b->bodies[b->next], b->lens[b->next]}};
    if (httpc_request(b->http, &req, on_base_resp, b) == 0)
        b->next++;
    else
        b->errors++;
}

static const char *ext_url; /* argv[4], or NULL: the in-process receiver */

static void receiver_url(const receiver *rcv, char *url, size_t n)
{
    if (ext_url)
        snprintf(url, n, "%s", ext_url);
    else
        snprintf(url, n, "http://127.0.0.1:%d/hook", rcv->port);
}

static double run_baseline(receiver *rcv, int total, int batch, int inflight, double *cpu_us)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    baseline b = {.batch = batch, .nbodies = (total + batch - 1) / batch};
    b.http = httpc_new(&loop, &(httpc_opts){.max_inflight = (unsigned)inflight});
    receiver_url(rcv, b.url, sizeof b.url);
    b.bodies = calloc((size_t)b.nbodies, sizeof *b.bodies);
    b.lens = calloc((size_t)b.nbodies, sizeof *b.lens);
    char id[64], key[64], ev[1024];
    for (int k = 0; k < b.nbodies; k++) {
        size_t cap = (size_t)batch * 1024 + 2, len = 0;
        char *s = malloc(cap);
        s[len++] = '[';
        for (int i = k * batch; i < (k + 1) * batch && i < total; i++) {
            int n = make_payload(i, ev, sizeof ev, id, sizeof id, key, sizeof key);
            if (i > k * batch)
                s[len++] = ',';
            memcpy(s + len, ev, (size_t)n);
            len += (size_t)n;
        }
        s[len++] = ']';
        b.bodies[k] = s;
        b.lens[k] = len;
    }
    long start = atomic_load(&rcv->events);
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < inflight; i++)
        base_send(&b);
    while (b.done < b.nbodies)
        uv_run(&loop, UV_RUN_ONCE);
    double dt = now_s() - t0;
    *cpu_us = (cpu_s() - c0) * 1e6 / total;
    if (getenv("SB_BENCH_ONLY")) /* CLOCK_MONOTONIC: perf record -k CLOCK_MONOTONIC, --time */
        fprintf(stderr, "timed phase: %.6f,%.6f\n", t0, t0 + dt);
    long got = ext_url ? (long)(b.done - b.errors) * batch : atomic_load(&rcv->events) - start;
    if (b.errors || got < (long)b.nbodies * batch - batch)
        fprintf(stderr, "baseline: %d errors, %ld events received\n", b.errors, got);
    httpc_free(b.http);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    for (int k = 0; k < b.nbodies; k++)
        free(b.bodies[k]);
    free(b.bodies);
    free(b.lens);
    return total / dt;
}

/* ---- through the outbox ---- */

typedef struct feed {
    outbox *ob;
    int total, next, durable, errors;
    uv_idle_t idle;
} feed;

static void on_durable(int status, int64_t seq, void *ud)
{
    (void)seq;
    feed *f = ud;
    if (status)
        f->errors++;
    f->durable++;
}

static void on_feed(uv_idle_t *h)
{
    feed *f = h->data;
    char id[64], key[64], payload[1024];
    while (f->next < f->total) {
        int n = make_payload(f->next, payload, sizeof payload, id, sizeof id, key, sizeof key);
        store_event ev = {
            0, id, "call.answered", "pbx1", key, 1764036000000LL + f->next, payload, (size_t)n};
        int err = outbox_append(f->ob, &ev, on_durable, f);
        if (err == SB_ETOOBIG)
            return; /* writer queue full: next turn */
        if (err) {
            fprintf(stderr, "append: %s\n", sb_strerror(err));
            exit(1);
        }
        f->next++;
    }
    uv_idle_stop(h);
}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

static void remove_db(const char *db)
{
    char p[600];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db, suffix[i]);
        unlink(p);
    }
}

/* prefill: commit every event first, then add the sink (delivery alone). */
/* tail_bytes: the outbox's memory tail (outbox_options.tail_bytes; -1 = none, delivery reads
 * the store). *from_store: events the sink read back from the store. */
static double run_outbox(receiver *rcv, const char *db, int total, int batch, int inflight,
                         bool prefill, int64_t tail_bytes, double *cpu_us, uint64_t *from_store)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    remove_db(db);
    feed f = {.total = total};
    outbox_options o = {.path = db, .store = {.sync = STORE_SYNC_FULL}, .tail_bytes = tail_bytes};
    if (outbox_open(&loop, &o, &f.ob)) {
        fprintf(stderr, "cannot open %s\n", db);
        exit(1);
    }
    httpc *http = httpc_new(&loop, &(httpc_opts){.max_inflight = (unsigned)inflight});
    char url[256];
    receiver_url(rcv, url, sizeof url);
    sink_webhook_config wc = {.url = url, .secret = "bench-secret", .is_batch = true};
    sink_webhook *wh = NULL;
    if (sink_webhook_new(http, &wc, &wh)) {
        fprintf(stderr, "cannot create the webhook sink\n");
        exit(1);
    }
    outbox_sink_config sc = {.name = "hook",
                             .is_partitioned = true,
                             .batch_max = batch,
                             .max_inflight = inflight,
                             .window = 16384};
    uv_idle_init(&loop, &f.idle);
    f.idle.data = &f;
    long start = atomic_load(&rcv->events);
    double t0 = now_s(), c0 = cpu_s();
    if (prefill) {
        uv_idle_start(&f.idle, on_feed);
        while (f.durable < total)
            uv_run(&loop, UV_RUN_ONCE);
        t0 = now_s();
        c0 = cpu_s();
        outbox_add_sink(f.ob, &sc, &sink_webhook_ops, wh, NULL);
    } else {
        outbox_add_sink(f.ob, &sc, &sink_webhook_ops, wh, NULL);
        uv_idle_start(&f.idle, on_feed);
    }
    /* The receiver counts on its own thread: poll the counter every loop turn (the loop wakes
     * for every HTTP answer anyway). */
    double deadline = t0 + 300;
    outbox_sink_stats st;
    long got = 0;
    while (got < total && now_s() < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        if (ext_url)
            got = outbox_sink_stats_get(f.ob, "hook", &st) == 0 ? (long)st.delivered : 0;
        else
            got = atomic_load(&rcv->events) - start;
    }
    double dt = now_s() - t0;
    *cpu_us = (cpu_s() - c0) * 1e6 / total;
    *from_store = outbox_sink_stats_get(f.ob, "hook", &st) == 0 ? st.from_store : 0;
    if (getenv("SB_BENCH_ONLY")) /* CLOCK_MONOTONIC: perf record -k CLOCK_MONOTONIC, --time */
        fprintf(stderr, "timed phase: %.6f,%.6f\n", t0, t0 + dt);
    if (f.errors || got < total)
        fprintf(stderr, "outbox: %d append errors, %ld of %d events received\n", f.errors, got,
                total);
    int closed = 0;
    outbox_close(f.ob, on_closed, &closed);
    uv_close((uv_handle_t *)&f.idle, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    httpc_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    remove_db(db);
    return got / dt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, REPS, sizeof *v, cmp_double);
    return v[REPS / 2];
}

int main(int argc, char **argv)
{
    int total = argc > 1 ? atoi(argv[1]) : 100000;
    int batch = argc > 2 ? atoi(argv[2]) : 100;
    int inflight = argc > 3 ? atoi(argv[3]) : 8;
    ext_url = argc > 4 ? argv[4] : NULL;
    if (total <= 0 || batch <= 0 || batch > 1000 || inflight <= 0 || inflight > 256) {
        fprintf(stderr, "usage: bench_outbox_delivery [events] [batch 1..1000] [inflight]\n");
        return 2;
    }
    char dir[] = "/tmp/sb-bench-delivery-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char db[600];
    snprintf(db, sizeof db, "%s/bench.db", dir);
    sb_log_setup(SB_LOG_WARN, 0);

    receiver rcv;
    memset(&rcv, 0, sizeof rcv);
    uv_sem_init(&rcv.ready, 0);
    uv_thread_create(&rcv.thread, receiver_main, &rcv);
    uv_sem_wait(&rcv.ready);

    printf("bench_outbox_delivery: %d events of ~400 bytes, batches of %d, %d in flight, receiver "
           "%s; median of %d runs\n",
           total, batch, inflight, ext_url ? ext_url : "in-process (own thread)", REPS);
    /* Phases: the baseline; end to end; delivery alone with the outbox as shipped (its default
     * 64 MiB memory tail holds 100,000 such events: the path of a sink that keeps up, or catches
     * up after a short outage; the line says how many it read back from the store); delivery
     * alone from the store (memory tail off: the path of a sink far behind). */
    enum { P_BASE, P_E2E, P_TAIL, P_STORE, NP };
    static const char *const names[NP] = {"baseline", "e2e", "tail", "store"};
    double v[NP][REPS], c[NP][REPS], ratio[2][REPS];
    uint64_t fs[NP][REPS];
    memset(v, 0, sizeof v);
    memset(c, 0, sizeof c);
    memset(fs, 0, sizeof fs);
    /* SB_BENCH_ONLY=baseline|e2e|tail|store runs one phase (for a profiler); the others print 0. */
    const char *only = getenv("SB_BENCH_ONLY");
    for (int i = 0; i < REPS; i++) {
        for (int p = 0; p < NP; p++) {
            if (only && strcmp(only, names[p]) != 0)
                continue;
            if (p == P_BASE)
                v[p][i] = run_baseline(&rcv, total, batch, inflight, &c[p][i]);
            else
                v[p][i] = run_outbox(&rcv, db, total, batch, inflight, p != P_E2E,
                                     p == P_STORE ? -1 : 0, &c[p][i], &fs[p][i]);
        }
        ratio[0][i] = v[P_BASE][i] > 0 ? v[P_TAIL][i] / v[P_BASE][i] : 0;
        ratio[1][i] = v[P_BASE][i] > 0 ? v[P_STORE][i] / v[P_BASE][i] : 0;
        fprintf(stderr,
                "run %d: baseline %.0f/s %.2f us CPU | end to end %.0f/s %.2f us | delivery from "
                "the tail %.0f/s %.2f us (%llu read from the store) | from the store %.0f/s %.2f "
                "us (%llu)\n",
                i + 1, v[P_BASE][i], c[P_BASE][i], v[P_E2E][i], c[P_E2E][i], v[P_TAIL][i],
                c[P_TAIL][i], (unsigned long long)fs[P_TAIL][i], v[P_STORE][i], c[P_STORE][i],
                (unsigned long long)fs[P_STORE][i]);
    }
    double m[NP], mc[NP];
    for (int p = 0; p < NP; p++) {
        m[p] = median(v[p]);
        mc[p] = median(c[p]);
    }
    double base = m[P_BASE] > 0 ? m[P_BASE] : 1;
    printf("baseline    plain client -> receiver (no store, no signature)     : %9.0f events/s, "
           "%.2f us CPU/event\n",
           m[P_BASE], mc[P_BASE]);
    printf("outbox      append -> commit (FULL) -> signed webhook -> receiver : %9.0f events/s "
           "(%3.0f%%), %.2f us\n",
           m[P_E2E], 100.0 * m[P_E2E] / base, mc[P_E2E]);
    printf("delivery    committed events, read from the memory tail          : %9.0f events/s "
           "(%3.0f%%), %.2f us\n",
           m[P_TAIL], 100.0 * m[P_TAIL] / base, mc[P_TAIL]);
    printf("delivery    committed events, read from the store (no tail)      : %9.0f events/s "
           "(%3.0f%%), %.2f us\n",
           m[P_STORE], 100.0 * m[P_STORE] / base, mc[P_STORE]);
    printf("median of the per-run ratios (each against the baseline of its run): from the tail "
           "%.0f%%, from the store %.0f%%\n",
           100.0 * median(ratio[0]), 100.0 * median(ratio[1]));
    /* The verdict compares each run with its own baseline (the median of the paired ratios):
     * other load on the machine moves both figures of a run together. */
    printf("target (delivery >= 50%% of baseline, paired): from the tail %s, from the store %s, "
           "end to end %s\n",
           median(ratio[0]) >= 0.5 ? "met" : "NOT met", median(ratio[1]) >= 0.5 ? "met" : "NOT met",
           m[P_E2E] >= 0.5 * base ? "met" : "NOT met");

    uv_async_send(&rcv.stop);
    uv_thread_join(&rcv.thread);
    uv_sem_destroy(&rcv.ready);
    rmdir(dir);
    return 0;
}
