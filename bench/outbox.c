/* bench/outbox.c: durable events per second, from outbox_append on the loop to the callback that
 * says the event is committed (group commit on the writer thread), with the baselines measured in
 * the same run:
 *   - baseline A: raw inserts through the store API in ONE transaction on the calling thread (the
 *     ceiling of the SQLite insert path, no durability per event, no thread hand-off);
 *   - baseline B: the enqueue alone (copying events into the writer queue, nothing committed).
 * Also: outbox delivery to an in-process sink that acknowledges at once (the outbox's own cost per
 * delivered event; webhook figures come with the sinks).
 *
 * Usage: bench_outbox [events] [dir]   (defaults: 200000, a fresh directory under /tmp)
 */
#include "core/error.h"
#include "core/log.h"
#include "outbox/outbox.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A realistic event: ~330 bytes of JSON. */
static store_event make_event(int i, char *id, size_t idsz, char *key, size_t keysz, char *payload,
                              size_t psz)
{
    snprintf(id, idsz, "01J%010d-%08x", i, (unsigned)i * 2654435761u);
    snprintf(key, keysz, "1732500000.%d", i / 6);
    int n =
        snprintf(payload, psz,
                 "{\"id\":\"%s\",\"seq\":%d,\"type\":\"call.answered\",\"time\":"
                 "\"2026-11-25T02:00:00.000Z\",\"pbx\":\"pbx1\",\"call\":{\"linkedid\":\"%s\","
                 "\"from\":\"+441234567890\",\"to\":\"+441098765432\",\"direction\":\"inbound\","
                 "\"queue\":\"support\",\"agent\":\"PJSIP/1001\",\"start\":"
                 "\"2026-11-25T01:59:50.000Z\",\"answer\":\"2026-11-25T02:00:00.000Z\"}}",
                 id, i, key);
    return (store_event){0,       id,       "call.answered", "pbx1", key, 1764036000000LL + i,
                         payload, (size_t)n};
}

typedef struct run {
    uv_loop_t *loop;
    outbox *ob;
    int total, next, durable, errors;
    double t0, t_end;
    uv_idle_t feed;
} run;

static void on_durable(int status, int64_t seq, void *ud)
{
    run *r = ud;
    if (status)
        r->errors++;
    if (++r->durable == r->total)
        r->t_end = now_s();
}

/* Feeds as much as the writer queue takes, each loop turn, like a busy model would. */
static void on_feed(uv_idle_t *h)
{
    run *r = h->data;
    char id[64], key[64], payload[1024];
    while (r->next < r->total) {
        store_event ev =
            make_event(r->next, id, sizeof id, key, sizeof key, payload, sizeof payload);
        int err = outbox_append(r->ob, &ev, on_durable, r);
        if (err == SB_ETOOBIG)
            return; /* queue full: come back next turn */
        if (err) {
            fprintf(stderr, "append: %s\n", sb_strerror(err));
            exit(1);
        }
        r->next++;
    }
    uv_idle_stop(h);
}

typedef struct nsink {
    int delivered, want;
    double t_end;
} nsink;

static int nsink_deliver(void *impl, const outbox_event *const *batch, size_t n,
                         outbox_done_cb done, outbox_delivery *d)
{
    nsink *s = impl;
    static outbox_result ok[1024];
    if (n > 1024)
        return SB_EINVAL;
    s->delivered += (int)n;
    if (s->delivered >= s->want && s->t_end == 0)
        s->t_end = now_s();
    done(d, ok);
    return 0;
}

static const outbox_sink_ops nsink_ops = {"null", NULL, nsink_deliver, NULL, NULL};

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

static void cleanup(const char *db)
{
    char p[512];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db, suffix[i]);
        unlink(p);
    }
}

/* Appends total events and waits for every durable callback; returns events/s. With a sink,
 * also waits until the sink had them all and reports its rate in *deliver_rate. */
static double bench_outbox(const char *db, int total, store_sync sync, bool with_sink,
                           double *deliver_rate, int64_t *groups_out)
{
    cleanup(db);
    uv_loop_t loop;
    uv_loop_init(&loop);
    run r = {.loop = &loop, .total = total};
    outbox_options o = {.path = db, .store = {.sync = sync}};
    if (outbox_open(&loop, &o, &r.ob)) {
        fprintf(stderr, "cannot open %s\n", db);
        exit(1);
    }
    nsink ns = {.want = total};
    if (with_sink) {
        outbox_sink_config cfg = {.name = "null", .batch_max = 1000, .window = 16384};
        outbox_add_sink(r.ob, &cfg, &nsink_ops, &ns, NULL);
    }
    uv_run(&loop, UV_RUN_NOWAIT); /* let the sink read its cursor */
    uv_idle_init(&loop, &r.feed);
    r.feed.data = &r;
    r.t0 = now_s();
    uv_idle_start(&r.feed, on_feed);
    while (r.durable < total || (with_sink && ns.delivered < total))
        uv_run(&loop, UV_RUN_ONCE);
    if (r.errors)
        fprintf(stderr, "%d append errors\n", r.errors);
    if (with_sink)
        *deliver_rate = total / (ns.t_end - r.t0);
    (void)groups_out;
    int closed = 0;
    outbox_close(r.ob, on_closed, &closed);
    uv_close((uv_handle_t *)&r.feed, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return total / (r.t_end - r.t0);
}

static double bench_raw_inserts(const char *db, int total)
{
    cleanup(db);
    store_conn *c = NULL;
    if (store_open(db, STORE_OPEN_WRITE, NULL, &c))
        exit(1);
    char id[64], key[64], payload[1024];
    double t0 = now_s();
    store_begin(c);
    for (int i = 0; i < total; i++) {
        store_event ev = make_event(i, id, sizeof id, key, sizeof key, payload, sizeof payload);
        ev.seq = i + 1;
        if (store_event_insert(c, &ev))
            exit(1);
    }
    store_set_last_seq(c, total);
    store_commit(c);
    double rate = total / (now_s() - t0);
    store_close(c);
    return rate;
}

/* The enqueue alone: copy into the writer queue with the writer blocked behind a slow job. */
static int block_fn(store_conn *c, void *arg)
{
    volatile int *go = arg;
    while (!*go)
        usleep(1000);
    return 0;
}

static double bench_enqueue_only(const char *db, int total)
{
    cleanup(db);
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_writer *w = NULL;
    store_writer_options wo = {.max_queued = (size_t)total + 16,
                               .max_queued_bytes = (size_t)1 << 31};
    if (store_writer_start(&loop, db, NULL, &wo, &w))
        exit(1);
    volatile int go = 0;
    store_writer_submit(w, block_fn, NULL, (void *)&go);
    char id[64], key[64], payload[1024];
    double t0 = now_s();
    for (int i = 0; i < total; i++) {
        store_event ev = make_event(i, id, sizeof id, key, sizeof key, payload, sizeof payload);
        if (store_writer_append(w, &ev, NULL, NULL))
            exit(1);
    }
    double rate = total / (now_s() - t0);
    go = 1;
    store_writer_stop(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rate;
}

#define REPS 3

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
    int total = argc > 1 ? atoi(argv[1]) : 200000;
    char dir[256];
    if (argc > 2) {
        snprintf(dir, sizeof dir, "%s", argv[2]);
    } else {
        snprintf(dir, sizeof dir, "/tmp/sb-bench-outbox-XXXXXX");
        if (!mkdtemp(dir))
            return 1;
    }
    char db[512];
    snprintf(db, sizeof db, "%s/bench.db", dir);
    sb_log_setup(SB_LOG_WARN, 0);

    printf(
        "bench_outbox: %d events of ~330 bytes, store %s; each figure is the median of %d runs\n",
        total, db, REPS);
    double raw_v[REPS], enq_v[REPS], full_v[REPS], normal_v[REPS], sink_v[REPS], deliver_v[REPS];
    for (int i = 0; i < REPS; i++) {
        raw_v[i] = bench_raw_inserts(db, total);
        enq_v[i] = bench_enqueue_only(db, total);
        full_v[i] = bench_outbox(db, total, STORE_SYNC_FULL, false, NULL, NULL);
        normal_v[i] = bench_outbox(db, total, STORE_SYNC_NORMAL, false, NULL, NULL);
        sink_v[i] = bench_outbox(db, total, STORE_SYNC_FULL, true, &deliver_v[i], NULL);
    }
    double raw = median(raw_v), enq = median(enq_v), full = median(full_v);
    double normal = median(normal_v), with_sink = median(sink_v), deliver = median(deliver_v);
    printf("baseline A  raw SQLite inserts, one transaction, caller's thread : %10.0f events/s\n",
           raw);
    printf("baseline B  enqueue only (copy into the writer queue, no commit)  : %10.0f events/s\n",
           enq);
    printf("outbox      durable (append -> committed), synchronous=FULL      : %10.0f events/s\n",
           full);
    printf("outbox      durable (append -> committed), synchronous=NORMAL    : %10.0f events/s\n",
           normal);
    printf("outbox      durable with one no-op sink attached (FULL)          : %10.0f events/s\n",
           with_sink);
    printf("outbox      delivered to the no-op sink (append -> acknowledged) : %10.0f events/s\n",
           deliver);
    printf("durable FULL = %.0f%% of baseline A; target >= 100000 events/s: %s\n",
           100.0 * full / raw, full >= 100000 ? "met" : "NOT met");
    cleanup(db);
    if (argc <= 2)
        rmdir(dir);
    return 0;
}
