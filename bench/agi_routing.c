/* agi_routing.c: FastAGI routing throughput, latency and memory, next to a baseline server.
 *
 * The parent process runs two FastAGI servers on one loop: switchboard (the routing engine with
 * a 500-rule route set: 100 extensions, 300 `_00<cc>X.`, 95 `_0<area>XXXXXX`, 5 catch-alls) and
 * a baseline that sends the same commands with no logic at all (ANSWER, GET VARIABLE x2, SET
 * VARIABLE, EXEC Dial: the ceiling of this machine's AGI stack). A child process runs the
 * simulator's FastAGI client at concurrency 50 and 1,000 against each (the same run), then holds
 * 1,000 sessions open at EXEC Dial against each server while the parent measures its heap
 * (glibc mallinfo2, bytes in use) per open session.
 * Usage: bench_agi_routing [SESSIONS_PER_RUN] (default 20000).
 */
#include "agi/server.h"
#include "agi/session.h"
#include "agi_client.h"
#include "core/error.h"
#include "core/log.h"
#include "routing/fastagi.h"
#include "routing/route.h"
#include "routing/runner.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOLD 1000

/* ---- the route set ---- */

static char *make_routes(void)
{
    sb_buf b;
    sb_buf_init(&b, 1 << 22);
    sb_buf_puts(&b, "[route bench]\nanswer = yes\n");
    for (int i = 0; i < 100; i++)
        sb_buf_printf(&b, "[rule ext%d]\nmatch = %d\naction = dial PJSIP/${EXTEN} timeout=20\n", i,
                      2000 + i);
    for (int i = 0; i < 300; i++)
        sb_buf_printf(&b, "[rule cc%d]\nmatch = _00%dX.\naction = dial PJSIP/${EXTEN:2}@intl%d\n",
                      i, i + 1, i % 4);
    for (int i = 0; i < 95; i++)
        sb_buf_printf(&b, "[rule area%d]\nmatch = _0%dXXXXXX\naction = dial PJSIP/${EXTEN}@nat\n",
                      i, 10 + i);
    static const char *const catch_all[] = {"_X.", "_NXXNXXXXXX", "_1NXXNXXXXXX", "_*X.", "_+X."};
    for (int i = 0; i < 5; i++)
        sb_buf_printf(&b, "[rule any%d]\nmatch = %s\naction = dial PJSIP/${EXTEN}@default\n", i,
                      catch_all[i]);
    return sb_buf_steal(&b);
}

static void dialed_for(unsigned i, char *buf, size_t size)
{
    unsigned r = i * 2654435761u;
    switch (i % 4) {
    case 0:
        snprintf(buf, size, "%u", 2000 + r % 100);
        break;
    case 1:
        snprintf(buf, size, "00%u%07u", 1 + r % 300, r % 10000000);
        break;
    case 2:
        snprintf(buf, size, "0%u%06u", 10 + r % 95, r % 1000000);
        break;
    default:
        snprintf(buf, size, "%010u", 2000000000u + r % 1000000000u);
        break;
    }
}

/* ---- parent: the servers ---- */

typedef struct parent {
    uv_loop_t loop;
    route_engine *engine;
    route_fastagi *fa;
    agi_server *base;
    uint64_t decided, base_exec;
    int to_child, from_child;
    pid_t child;
    uv_timer_t timer;
    int phase; /* 0 idle, 1 waiting for HOLD switchboard sessions, 2 for HOLD baseline */
    size_t before;
    uint64_t mark;
} parent;

static void on_decided(const route_decided *d, void *ud)
{
    parent *p = ud;
    (void)d;
    p->decided++;
}

static void base_last(agi_session *s, int status, const agi_reply *r, void *ud)
{
    (void)status;
    (void)r;
    (void)ud;
    agi_session_close(s);
}

static void base_cmd_sent(agi_session *s, int status, const agi_reply *r, void *ud)
{
    (void)s;
    (void)status;
    (void)r;
    (void)ud;
}

static void base_session(agi_session *s, const agi_request *req, void *ud)
{
    parent *p = ud;
    (void)req;
    static const sb_slice num = SB_SLICE_LIT("CALLERID(num)"),
                          name = SB_SLICE_LIT("CALLERID(name)");
    sb_slice set[2] = {SB_SLICE_LIT("__SB_ROUTE"), SB_SLICE_LIT("bench")};
    sb_slice dial[2] = {SB_SLICE_LIT("Dial"), SB_SLICE_LIT("PJSIP/2000,20")};
    agi_session_command(s, 10000, base_cmd_sent, p, "ANSWER", NULL, 0);
    agi_session_command(s, 10000, base_cmd_sent, p, "GET VARIABLE", &num, 1);
    agi_session_command(s, 10000, base_cmd_sent, p, "GET VARIABLE", &name, 1);
    agi_session_command(s, 10000, base_cmd_sent, p, "SET VARIABLE", set, 2);
    agi_session_command(s, 0, base_last, p, "EXEC", dial, 2);
    p->base_exec++;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void on_tick(uv_timer_t *t)
{
    parent *p = t->data;
    char c;
    if (p->phase == 0 && read(p->from_child, &c, 1) == 1) {
        malloc_trim(0);
        p->before = heap_in_use();
        p->mark = c == 'S' ? p->decided : p->base_exec;
        p->phase = c == 'S' ? 1 : 2;
        if (write(p->to_child, "a", 1) != 1)
            perror("write");
    } else if (p->phase == 1 && p->decided - p->mark >= HOLD &&
               route_engine_active(p->engine) >= HOLD) {
        size_t after = heap_in_use();
        printf("memory per open session (switchboard, %d held at EXEC Dial): %.0f bytes\n", HOLD,
               (double)(after - p->before) / HOLD);
        p->phase = 0;
        if (write(p->to_child, "a", 1) != 1)
            perror("write");
    } else if (p->phase == 2 && p->base_exec - p->mark >= HOLD &&
               agi_server_get_stats(p->base).active >= HOLD) {
        size_t after = heap_in_use();
        printf("memory per open session (baseline, %d held at EXEC Dial): %.0f bytes\n", HOLD,
               (double)(after - p->before) / HOLD);
        fflush(stdout);
        p->phase = 0;
        if (write(p->to_child, "a", 1) != 1)
            perror("write");
    }
    int st;
    if (waitpid(p->child, &st, WNOHANG) == p->child) {
        uv_timer_stop(t);
        route_fastagi_stop(p->fa);
        agi_server_stop(p->base);
        uv_close((uv_handle_t *)t, NULL);
    }
}

/* ---- child: the simulator's client ---- */

typedef struct run {
    uv_loop_t *loop;
    int port;
    const char *script;
    unsigned total, started, finished, failed, stall_at;
    double *times;
    char dialed[32];
} run;

static void start_one(run *r);

static void one_done(const pbxsim_agi_result *res, void *ud)
{
    run *r = ud;
    if (res->status != 0 || res->count != 5)
        r->failed++;
    r->times[r->finished++] = (double)res->elapsed_ns / 1e6;
    if (r->started < r->total)
        start_one(r);
}

static void start_one(run *r)
{
    dialed_for(r->started, r->dialed, sizeof r->dialed);
    pbxsim_agi_call call = {
        .script = r->script, .callerid = "2001", .extension = r->dialed, .stall_at = r->stall_at};
    r->started++;
    if (pbxsim_agi_connect(r->loop, "127.0.0.1", r->port, &call, one_done, r) < 0) {
        r->failed++;
        r->finished++;
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct figures {
    double rate, p50, p99;
    unsigned failed;
    double cpu_us; /* the server process's CPU time per session (load-independent) */
} figures;

/* CPU seconds (user + system) the parent (the servers) has used so far, from /proc. */
static double parent_cpu_s(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)getppid());
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static figures run_load(int port, const char *script, unsigned conc, unsigned total)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    run r = {.loop = &loop, .port = port, .script = script, .total = total};
    r.times = calloc(total, sizeof *r.times);
    double cpu0 = parent_cpu_s();
    uint64_t t0 = uv_hrtime();
    for (unsigned i = 0; i < conc && i < total; i++)
        start_one(&r);
    uv_run(&loop, UV_RUN_DEFAULT);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    qsort(r.times, r.finished, sizeof *r.times, cmp_d);
    figures f = {.rate = r.finished / secs,
                 .p50 = r.times[r.finished / 2],
                 .p99 = r.times[(size_t)(r.finished * 0.99)],
                 .failed = r.failed,
                 .cpu_us = (parent_cpu_s() - cpu0) * 1e6 / r.finished};
    free(r.times);
    uv_loop_close(&loop);
    return f;
}

static void wait_ack(int fd)
{
    char c;
    while (read(fd, &c, 1) != 1)
        ;
}

static void hold_sessions(uv_loop_t *loop, run *r, int port, const char *script, int to_parent,
                          int from_parent, char tag)
{
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->port = port;
    r->script = script;
    r->total = HOLD;
    r->stall_at = 5; /* EXEC Dial gets no answer */
    r->times = calloc(HOLD + 1, sizeof *r->times);
    if (write(to_parent, &tag, 1) != 1)
        perror("write");
    wait_ack(from_parent);
    for (unsigned i = 0; i < HOLD; i++)
        start_one(r);
    /* Run until the parent has measured. */
    int fl = fcntl(from_parent, F_GETFL);
    fcntl(from_parent, F_SETFL, fl | O_NONBLOCK);
    char c;
    while (read(from_parent, &c, 1) != 1)
        uv_run(loop, UV_RUN_NOWAIT);
    fcntl(from_parent, F_SETFL, fl);
}

static void child_main(int sb_port, int base_port, unsigned total, int to_parent, int from_parent)
{
    static const unsigned concs[] = {50, 1000};
    for (size_t i = 0; i < 2; i++) {
        /* Order matters on a loaded machine (sockets in TIME_WAIT pile up): run base, sb, sb,
         * base and average each pair. */
        figures b1 = run_load(base_port, "bench", concs[i], total / 2);
        figures s1 = run_load(sb_port, "bench", concs[i], total / 2);
        figures s2 = run_load(sb_port, "bench", concs[i], total / 2);
        figures b2 = run_load(base_port, "bench", concs[i], total / 2);
        figures s = {(s1.rate + s2.rate) / 2, (s1.p50 + s2.p50) / 2, (s1.p99 + s2.p99) / 2,
                     s1.failed + s2.failed, (s1.cpu_us + s2.cpu_us) / 2};
        figures b = {(b1.rate + b2.rate) / 2, (b1.p50 + b2.p50) / 2, (b1.p99 + b2.p99) / 2,
                     b1.failed + b2.failed, (b1.cpu_us + b2.cpu_us) / 2};
        printf("concurrency %4u: switchboard %8.0f sessions/s p50 %.3f ms p99 %.3f ms (failed "
               "%u) | baseline %8.0f sessions/s p50 %.3f ms p99 %.3f ms (failed %u) | ratio "
               "%.0f%%, p99 %.2fx | server CPU per session %.1f us vs %.1f us\n",
               concs[i], s.rate, s.p50, s.p99, s.failed, b.rate, b.p50, b.p99, b.failed,
               100.0 * s.rate / b.rate, s.p99 / b.p99, s.cpu_us, b.cpu_us);
        fflush(stdout);
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    run r1, r2;
    hold_sessions(&loop, &r1, sb_port, "bench", to_parent, from_parent, 'S');
    hold_sessions(&loop, &r2, base_port, "bench", to_parent, from_parent, 'B');
    _exit(0);
}

int main(int argc, char **argv)
{
    unsigned total = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 20000;
    signal(SIGPIPE, SIG_IGN);
    sb_log_setup(SB_LOG_ERROR, 0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    parent p = {0};
    uv_loop_init(&p.loop);
    route_engine_config ec = {.loop = &p.loop, .pbx = "bench", .on_decided = on_decided, .ud = &p};
    if (route_engine_new(&ec, &p.engine) < 0)
        return 1;
    char *text = make_routes(), err[300];
    route_db *db = NULL;
    if (route_db_parse(text, strlen(text), "bench", &db, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    free(text);
    route_engine_set_db(p.engine, db);
    agi_server_config sc = {.port = 0, .max_sessions = 5000};
    if (route_fastagi_new(&p.loop, &sc, p.engine, &p.fa) < 0 || route_fastagi_start(p.fa) < 0 ||
        agi_server_new(&p.loop, &sc, base_session, &p, &p.base) < 0 ||
        agi_server_start(p.base) < 0) {
        fprintf(stderr, "cannot start the servers\n");
        return 1;
    }
    int sb_port = route_fastagi_port(p.fa), base_port = agi_server_port(p.base);
    int up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0)
        return 1;
    printf("agi_routing: %u sessions per run, route set of 500 rules; servers in this process, "
           "the simulator's FastAGI client in a child\n",
           total);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        child_main(sb_port, base_port, total, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    p.child = pid;
    p.to_child = down[1];
    p.from_child = up[0];
    fcntl(p.from_child, F_SETFL, fcntl(p.from_child, F_GETFL) | O_NONBLOCK);
    uv_timer_init(&p.loop, &p.timer);
    p.timer.data = &p;
    uv_timer_start(&p.timer, on_tick, 20, 20);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    route_fastagi_free(p.fa);
    agi_server_free(p.base);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    route_engine_free(p.engine);
    uv_loop_close(&p.loop);
    return 0;
}
