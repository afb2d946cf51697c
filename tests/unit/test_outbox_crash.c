/* test_outbox_crash.c: kill -9 mid-stream, twice, then reopen: nothing acknowledged as durable is
 * lost, delivery resumes from the committed cursor, order per sink holds (duplicates allowed).
 *
 * A forked child appends events as fast as it can and delivers them to two sinks that log every
 * accepted event to a file: "hook" (strict order, answers at once) and "part" (partitioned by call,
 * four batches in flight, answers a turn later, asks for a retry of every 37th offer). Each durable
 * acknowledgement goes to the parent over a pipe. The parent kills the child with SIGKILL once
 * enough acknowledgements arrived, starts a second child on the same store, kills it too, then
 * finishes delivery itself and checks the store and both logs.
 */
#include "testutil.h"

#include "core/error.h"
#include "outbox/outbox.h"
#include "outbox_test_sink.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

typedef struct child {
    uv_loop_t loop;
    outbox *ob;
    int ack_fd;
    int round;
    int next;
    uv_timer_t feed;
} child;

static void child_durable(int status, int64_t seq, void *ud)
{
    child *c = ud;
    if (status)
        _exit(3);
    char line[64];
    int n = snprintf(line, sizeof line, "%lld\n", (long long)seq);
    if (write(c->ack_fd, line, (size_t)n) != n)
        _exit(4);
}

static void child_feed(uv_timer_t *t)
{
    child *c = t->data;
    char id[32], key[16], payload[96];
    for (int i = 0; i < 500; i++, c->next++) {
        snprintf(id, sizeof id, "c%d-%d", c->round, c->next);
        snprintf(key, sizeof key, "k%d", c->next % 7);
        int n = snprintf(payload, sizeof payload, "{\"id\":\"%s\"}", id);
        store_event ev = {0, id, "call.started", "pbx1", key, 1000 + c->next, payload, (size_t)n};
        if (outbox_append(c->ob, &ev, child_durable, c) != 0)
            break; /* queue full: next tick */
    }
}

static void on_child_deadline(uv_timer_t *t)
{
    _exit(5); /* never reached when the parent kills us in time */
}

/* The partitioned sink's receiver: every 37th offer fails (retry in 1 ms). */
static outbox_result flaky(tsink *t, const outbox_event *ev)
{
    if (t->attempts % 37 == 0)
        return (outbox_result){OUTBOX_RETRY, 1, "flaky"};
    return (outbox_result){OUTBOX_OK, 0, NULL};
}

static const outbox_sink_config hook_cfg = {.name = "hook", .batch_max = 64};
static const outbox_sink_config part_cfg = {
    .name = "part", .is_partitioned = true, .batch_max = 32, .max_inflight = 4};

static void child_main(const char *db, int ack_fd, int log_fd, int plog_fd, int round)
{
    child c = {.ack_fd = ack_fd, .round = round};
    alarm(60); /* a hard deadline, whatever happens to the loop */
    uv_loop_init(&c.loop);
    outbox_options o = {.path = db};
    if (outbox_open(&c.loop, &o, &c.ob))
        _exit(2);
    tsink t, tp;
    ts_init(&t, &c.loop, NULL);
    t.fd = log_fd;
    ts_init(&tp, &c.loop, flaky);
    tp.fd = plog_fd;
    tp.is_async = true;
    if (outbox_add_sink(c.ob, &hook_cfg, &ts_ops, &t, NULL) ||
        outbox_add_sink(c.ob, &part_cfg, &ts_ops, &tp, NULL))
        _exit(2);
    uv_timer_init(&c.loop, &c.feed);
    c.feed.data = &c;
    uv_timer_start(&c.feed, child_feed, 0, 1);
    uv_timer_t deadline;
    uv_timer_init(&c.loop, &deadline);
    uv_timer_start(&deadline, on_child_deadline, 30000, 0);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    _exit(6);
}

/* Reads acknowledged seqs until want of them arrived (or EOF after the kill). */
static int read_acks(int fd, char *acked, int64_t cap, int want, int timeout_ms)
{
    static char buf[1 << 16];
    static size_t have;
    int got = 0;
    for (int waited = 0; want < 0 || got < want;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 50);
        if (r == 0) {
            waited += 50;
            if (waited > timeout_ms)
                break;
            continue;
        }
        ssize_t n = read(fd, buf + have, sizeof buf - have - 1);
        if (n <= 0)
            break;
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have; i++) {
            if (buf[i] != '\n')
                continue;
            buf[i] = '\0';
            long long s = atoll(buf + start);
            if (s > 0 && s < cap) {
                acked[s] = 1;
                got++;
            }
            start = i + 1;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
    }
    return got;
}

static int run_child_and_kill(const char *db, int log_fd, int plog_fd, int round, char *acked,
                              int64_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_main(db, p[1], log_fd, plog_fd, round);
    }
    close(p[1]);
    int got = read_acks(p[0], acked, cap, 20000, 20000);
    assert_int_equal(kill(pid, SIGKILL), 0); /* before any assert: never leave a child behind */
    assert_true(got >= 20000);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    got += read_acks(p[0], acked, cap, -1, 1000); /* acks written before it died */
    close(p[0]);
    return got;
}

static void on_tick(uv_timer_t *t) {}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

static int collect_ids(const store_event *ev, void *ud)
{
    char **ids = ud;
    ids[ev->seq] = strdup(ev->id);
    return 0;
}

static bool is_caught_up(outbox *ob, const char *name)
{
    outbox_sink_stats st = {0};
    return outbox_sink_stats_get(ob, name, &st) == 0 && st.cursor > 0 && st.cursor == st.committed;
}

/* Checks one sink's log against the stored ids. Both kinds: each process resumed at or before
 * where the previous stopped (no gap) and every stored event was delivered. Strict: each process
 * delivered in seq order with nothing skipped. Partitioned: the LAST acceptance of each event (over
 * all processes) comes after the last acceptances of the earlier events of its call: what a
 * receiver that keeps the latest copy of each id ends with is in per-call order. (Within a process
 * that was killed this need not hold: the copies it meant to send again died with it.) Returns
 * the number of duplicate deliveries; *lines_out gets all deliveries. */
static int check_log(const char *path, char **ids, int64_t last, bool is_strict, int *lines_out)
{
    size_t len = 0;
    char *log = tu_read_file(path, &len);
    assert_non_null(log);
    char *delivered = calloc((size_t)last + 1, 1);
    size_t cap = 8 * (size_t)last + 64;
    int64_t *line_seq = calloc(cap, sizeof *line_seq); /* every accepted seq, in log order */
    int *line_key = calloc(cap, sizeof *line_key);
    int64_t *last_at = calloc((size_t)last + 1, sizeof *last_at); /* index+1 of last acceptance */
    size_t n = 0;
    int64_t prev = 0, max_so_far = 0;
    int segments = 1, dups = 0;
    bool is_segment_start = true;
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strcmp(line, "---") == 0) {
            segments++;
            is_segment_start = true;
            continue;
        }
        char idbuf[64], key[64];
        long long s = 0;
        int k = -1;
        assert_int_equal(sscanf(line, "%lld %63s %63s", &s, idbuf, key), 3);
        assert_true(s >= 1 && s <= last);
        assert_non_null(ids[s]);
        assert_string_equal(idbuf, ids[s]);
        assert_int_equal(sscanf(key, "k%d", &k), 1);
        assert_true(k >= 0 && k < 7);
        if (is_segment_start) {
            assert_true(s <= max_so_far + 1); /* resumed from the cursor: no gap */
            is_segment_start = false;
        } else if (is_strict) {
            assert_true(s == prev + 1); /* in order, nothing skipped */
        }
        if (delivered[s])
            dups++;
        delivered[s] = 1;
        if (s > max_so_far)
            max_so_far = s;
        prev = s;
        assert_true(n < cap);
        line_seq[n] = s;
        line_key[n] = k;
        last_at[s] = (int64_t)++n;
    }
    assert_int_equal(segments, 3);
    for (int64_t s = 1; s <= last; s++)
        assert_true(delivered[s]);
    if (!is_strict) {
        int64_t key_last[7] = {0};
        for (size_t i = 0; i < n; i++) {
            int64_t q = line_seq[i];
            if (last_at[q] != (int64_t)i + 1)
                continue; /* a copy sent again later */
            int k = line_key[i];
            if (q <= key_last[k])
                print_message("%s: delivery %zu: seq %lld (k%d) after %lld\n", path, i,
                              (long long)q, k, (long long)key_last[k]);
            assert_true(q > key_last[k]);
            key_last[k] = q;
        }
    }
    free(line_seq);
    free(line_key);
    free(last_at);
    free(delivered);
    free(log);
    *lines_out = (int)n;
    return dups;
}

static void test_outbox_survives_sigkill_twice(void **state)
{
    char dir[64], db[128], logp[128], plogp[128];
    snprintf(dir, sizeof dir, "/tmp/sb-crash-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(logp, sizeof logp, "%s/delivered.log", dir);
    snprintf(plogp, sizeof plogp, "%s/partitioned.log", dir);
    int log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int plog_fd = open(plogp, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(log_fd >= 0 && plog_fd >= 0);
    enum { CAP = 1 << 21 };
    char *acked = calloc(CAP, 1);
    int acks = 0;
    for (int round = 1; round <= 2; round++) {
        acks += run_child_and_kill(db, log_fd, plog_fd, round, acked, CAP);
        assert_int_equal(write(log_fd, "---\n", 4), 4);
        assert_int_equal(write(plog_fd, "---\n", 4), 4);
    }

    /* Reopen in this process and let both sinks catch up. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    outbox *ob = NULL;
    outbox_options o = {.path = db};
    assert_int_equal(outbox_open(&loop, &o, &ob), 0);
    tsink t, tp;
    ts_init(&t, &loop, NULL);
    t.fd = log_fd;
    ts_init(&tp, &loop, flaky);
    tp.fd = plog_fd;
    tp.is_async = true;
    assert_int_equal(outbox_add_sink(ob, &hook_cfg, &ts_ops, &t, NULL), 0);
    assert_int_equal(outbox_add_sink(ob, &part_cfg, &ts_ops, &tp, NULL), 0);
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 2, 2);
    uint64_t end = uv_now(&loop) + 30000;
    while (!(is_caught_up(ob, "hook") && is_caught_up(ob, "part")) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(is_caught_up(ob, "hook"));
    assert_true(is_caught_up(ob, "part"));
    int64_t last = outbox_committed_seq(ob);
    assert_true(last > 0 && last < CAP);
    int closed = 0;
    outbox_close(ob, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    ts_fini(&t);
    ts_fini(&tp);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(log_fd);
    close(plog_fd);

    /* 1. Every acknowledged event is in the store. */
    char **ids = calloc((size_t)last + 1, sizeof *ids);
    store_conn *c = NULL;
    assert_int_equal(store_open(db, STORE_OPEN_READ, NULL, &c), 0);
    assert_int_equal(store_events_scan(c, 0, last, 0, collect_ids, ids), 0);
    store_close(c);
    int lost = 0, acked_n = 0;
    for (int64_t s = 1; s < CAP; s++) {
        if (!acked[s])
            continue;
        acked_n++;
        if (s > last || !ids[s])
            lost++;
    }
    assert_int_equal(lost, 0);
    assert_int_equal(acked_n, acks);

    /* 2. The logs: order, resumption without gaps, everything delivered. */
    int lines = 0, plines = 0;
    int dups = check_log(logp, ids, last, true, &lines);
    int pdups = check_log(plogp, ids, last, false, &plines);
    print_message("crash test: %d acknowledged, %lld stored; strict sink %d deliveries (%d "
                  "duplicates), partitioned sink %d deliveries (%d duplicates)\n",
                  acks, (long long)last, lines, dups, plines, pdups);
    for (int64_t s = 0; s <= last; s++)
        free(ids[s]);
    free(ids);
    free(acked);
    const char *files[] = {"store.db", "store.db-wal", "store.db-shm", "delivered.log",
                           "partitioned.log"};
    char p[192];
    for (size_t i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox_survives_sigkill_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
