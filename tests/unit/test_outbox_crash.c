/* test_outbox_crash.c: kill -9 mid-stream, twice, then reopen: nothing acknowledged as durable is
 * lost, delivery resumes from the committed cursor, order per sink holds (duplicates allowed).
 *
 * A forked child appends events as fast as it can and delivers them to a sink that logs every
 * accepted event to a file; each durable acknowledgement goes to the parent over a pipe. The
 * parent kills the child with SIGKILL once enough acknowledgements arrived, starts a second child
 * on the same store, kills it too, then finishes delivery itself and checks the store and the log.
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

static void child_main(const char *db, int ack_fd, int log_fd, int round)
{
    child c = {.ack_fd = ack_fd, .round = round};
    uv_loop_init(&c.loop);
    outbox_options o = {.path = db};
    if (outbox_open(&c.loop, &o, &c.ob))
        _exit(2);
    tsink t;
    ts_init(&t, &c.loop, NULL);
    t.fd = log_fd;
    outbox_sink_config cfg = {.name = "hook", .batch_max = 64};
    if (outbox_add_sink(c.ob, &cfg, &ts_ops, &t, NULL))
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

static int run_child_and_kill(const char *db, int log_fd, int round, char *acked, int64_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_main(db, p[1], log_fd, round);
    }
    close(p[1]);
    int got = read_acks(p[0], acked, cap, 20000, 20000);
    assert_true(got >= 20000);
    assert_int_equal(kill(pid, SIGKILL), 0);
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

static void test_outbox_survives_sigkill_twice(void **state)
{
    char dir[64], db[128], logp[128];
    snprintf(dir, sizeof dir, "/tmp/sb-crash-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(logp, sizeof logp, "%s/delivered.log", dir);
    int log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(log_fd >= 0);
    enum { CAP = 1 << 21 };
    char *acked = calloc(CAP, 1);
    int acks = 0;
    for (int round = 1; round <= 2; round++) {
        acks += run_child_and_kill(db, log_fd, round, acked, CAP);
        assert_int_equal(write(log_fd, "---\n", 4), 4);
    }

    /* Reopen in this process and let the sink catch up. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    outbox *ob = NULL;
    outbox_options o = {.path = db};
    assert_int_equal(outbox_open(&loop, &o, &ob), 0);
    tsink t;
    ts_init(&t, &loop, NULL);
    t.fd = log_fd;
    outbox_sink_config cfg = {.name = "hook", .batch_max = 64};
    assert_int_equal(outbox_add_sink(ob, &cfg, &ts_ops, &t, NULL), 0);
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 2, 2);
    outbox_sink_stats st = {0};
    uint64_t end = uv_now(&loop) + 20000;
    do {
        uv_run(&loop, UV_RUN_ONCE);
        outbox_sink_stats_get(ob, "hook", &st);
    } while ((st.cursor == 0 || st.cursor < st.committed) && uv_now(&loop) < end);
    assert_int_equal(st.cursor, st.committed);
    int64_t last = st.committed;
    assert_true(last > 0 && last < CAP);
    int closed = 0;
    outbox_close(ob, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    ts_fini(&t);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(log_fd);

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

    /* 2. The log: each process delivered in strictly increasing order; each one resumed at or
     * before where the previous stopped (no gap); together every stored event was delivered. */
    size_t len = 0;
    char *log = tu_read_file(logp, &len);
    assert_non_null(log);
    char *delivered = calloc((size_t)last + 1, 1);
    int64_t prev = 0, max_so_far = 0;
    int segments = 1, dups = 0, lines = 0;
    bool is_segment_start = true;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        if (strcmp(line, "---") == 0) {
            segments++;
            is_segment_start = true;
            continue;
        }
        char idbuf[64];
        long long s = 0;
        assert_int_equal(sscanf(line, "%lld %63s", &s, idbuf), 2);
        assert_true(s >= 1 && s <= last);
        assert_non_null(ids[s]);
        assert_string_equal(idbuf, ids[s]);
        if (is_segment_start) {
            assert_true(s <= max_so_far + 1); /* resumed from the cursor: no gap */
            is_segment_start = false;
        } else {
            assert_true(s == prev + 1); /* in order, nothing skipped */
        }
        if (delivered[s])
            dups++;
        delivered[s] = 1;
        if (s > max_so_far)
            max_so_far = s;
        prev = s;
        lines++;
    }
    assert_int_equal(segments, 3);
    for (int64_t s = 1; s <= last; s++)
        assert_true(delivered[s]);
    print_message("crash test: %d acknowledged, %lld stored, %d deliveries, %d duplicates\n", acks,
                  (long long)last, lines, dups);
    for (int64_t s = 0; s <= last; s++)
        free(ids[s]);
    free(ids);
    free(delivered);
    free(log);
    free(acked);
    const char *files[] = {"store.db", "store.db-wal", "store.db-shm", "delivered.log"};
    char p[192];
    for (size_t i = 0; i < 4; i++) {
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
