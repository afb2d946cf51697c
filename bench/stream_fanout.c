/* stream_fanout.c: N concurrent SSE subscribers of the daemon's event streams, fed by the PBX
 * simulator at a call rate (issue 3 §5). Three processes, so that each figure belongs to one:
 *   - the simulator (pbxsim on its own thread, commands through a pipe);
 *   - the daemon's event path: AMI client -> model (state restore after login) -> bus -> HTTP
 *     server + streams (src/api/streams.c), exactly as `switchboard serve` wires them;
 *   - this process: N raw non-blocking SSE clients on one epoll loop.
 * Every round (the baseline with 1 subscriber first, then each N) prints delivered events/s,
 * p50/p99/max latency from the AMI read to the client's receipt, the daemon's RSS idle with N
 * clients and under load, and the memory per subscriber over the baseline.
 *
 * Latency: an event's "time" is stamped by the model (CLOCK_REALTIME, milliseconds) while it
 * handles the AMI packet, in the same loop callback that read the packet from the socket (the
 * simulator sends no Timestamp header, which the model would prefer). The client takes
 * CLOCK_REALTIME when its read returns and subtracts. Same machine, same clock; resolution 1 ms.
 * A sample of the clients (at most 256, spread evenly) parses every message for its time, on a
 * thread and epoll of its own (see sampler_main); the others count messages only, on the main
 * thread, which keeps the receiving side cheap.
 *
 * Usage: bench_stream_fanout [-n 1000,10000] [-r 200] [-s SECONDS] [-w WARMUP] [-f FLUSH_MS]
 *                            [-c SCENARIO] [-a | -A]
 *   -a: agent streams 501/502/503 instead of the supervisor stream (each carries ~45% of all
 *       the traffic: every recorded call rings 501/502);
 *   -A: one agent per subscriber, the realistic case: subscriber i opens agent (10000 + i)'s
 *       stream and the load is `load RATE S queue-call-agent AGENTS=10000-(10000+N-1)`, so the
 *       calls are spread over exactly those agents (call k answered by 10000 + k%N, also ringing
 *       the next one; docs/pbxsim.md). The baseline round (N = 1) therefore sends every call to
 *       its one agent. "stream events/s" is then the busiest sampled agent stream's seq rate.
 */
#define _GNU_SOURCE /* memmem, timegm */

#include "ami/client.h"
#include "api/streams.h"
#include "bus/bus.h"
#include "core/error.h"
#include "core/log.h"
#include "http/router.h"
#include "http/server.h"
#include "model/model.h"
#include "pbxsim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLED 256
#define MAX_LAT (8u << 20)

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the simulator process: pbxsim on a thread, one command per line on stdin ---- */

static pid_t start_sim(int *port, int *cmd_fd)
{
    int up[2], down[2];
    if (pipe(up) || pipe(down))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        pbxsim_config cfg;
        pbxsim_thread *t;
        pbxsim_config_default(&cfg);
        cfg.time_scale = 0.2; /* calls last ~1.2 s: the load reaches its steady state sooner */
        if (pbxsim_thread_start(&cfg, &t) != 0)
            _exit(1);
        int p = pbxsim_thread_port(t);
        if (write_all(up[1], &p, sizeof p))
            _exit(1);
        FILE *in = fdopen(down[0], "r");
        char line[256];
        while (in && fgets(line, sizeof line, in)) {
            line[strcspn(line, "\n")] = '\0';
            pbxsim_thread_command(t, line);
        }
        pbxsim_thread_stop(t);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    if (pid < 0 || read(up[0], port, sizeof *port) != (ssize_t)sizeof *port)
        return -1;
    close(up[0]);
    *cmd_fd = down[1];
    return pid;
}

/* ---- the daemon process ---- */

typedef struct daemon_ctx {
    uv_loop_t *loop;
    model *m;
    bus *b;
    int lists_pending;
} daemon_ctx;

static void d_emit(void *ud, bus_event *ev)
{
    daemon_ctx *d = ud;
    bus_publish(d->b, ev, NULL);
}

static void d_on_event(ami_client *c, const ami_packet *ev, void *ud)
{
    daemon_ctx *d = ud;
    (void)c;
    model_handle_event(d->m, "pbx1", ev);
}

static void d_on_list(ami_client *c, const ami_result *r, void *ud)
{
    daemon_ctx *d = ud;
    (void)c;
    for (size_t i = 0; i < r->nitems; i++)
        model_handle_event(d->m, "pbx1", r->items[i]);
    if (r->complete)
        model_handle_event(d->m, "pbx1", r->complete);
    if (--d->lists_pending == 0)
        model_end_resync(d->m, "pbx1");
}

static void d_on_ready(ami_client *c, bool reconnected, void *ud)
{
    static const char *const lists[] = {"CoreShowChannels", "QueueStatus", "ExtensionStateList",
                                        "DeviceStateList"};
    daemon_ctx *d = ud;
    (void)reconnected;
    model_begin_resync(d->m, "pbx1");
    d->lists_pending = 4;
    for (int i = 0; i < 4; i++) {
        ami_msg msg;
        ami_msg_init(&msg, "Action", lists[i]);
        if (ami_client_send(c, &msg, AMI_ACTION_LIST, 10000, d_on_list, d, NULL, 0) < 0)
            d->lists_pending--;
    }
}

/* Every bearer token is a supervisor's here. */
static int d_bearer(void *ud, http_request *req, sb_slice token, streams_role *role, char *ext,
                    size_t ext_size)
{
    (void)ud, (void)req, (void)token;
    *role = STREAMS_ROLE_SUPERVISOR;
    if (ext_size)
        ext[0] = '\0';
    return 0;
}

static void d_expire(uv_timer_t *t)
{
    bus_expire(((daemon_ctx *)t->data)->b);
}

/* BENCH_DEBUG=1: the daemon prints its AMI intake and model output every second. */
static void d_debug(uv_timer_t *t)
{
    daemon_ctx *d = t->data;
    static uint64_t in0, out0;
    model_stats ms;
    model_stats_get(d->m, &ms);
    fprintf(stderr, "daemon: %llu AMI events/s in, %llu events/s out, %zu calls live\n",
            (unsigned long long)(ms.events_in - in0), (unsigned long long)(ms.events_out - out0),
            ms.calls);
    in0 = ms.events_in;
    out0 = ms.events_out;
}

static pid_t start_daemon(int sim_port, unsigned max_conns, uint32_t flush_ms, int *http_port)
{
    int up[2];
    if (pipe(up))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(up[0]);
        sb_log_setup(SB_LOG_WARN, 0);
        uv_loop_t loop;
        daemon_ctx d = {.loop = &loop};
        uv_loop_init(&loop);
        d.b = bus_new(NULL);
        d.m = model_new(&(model_config){.emit = d_emit, .emit_ud = &d});
        ami_client *ami;
        ami_client_config ac = {.name = "pbx1",
                                .host = "127.0.0.1",
                                .port = sim_port,
                                .username = "admin",
                                .secret = "admin-secret"};
        ami_client_callbacks cb = {d_on_event, NULL, d_on_ready, &d};
        http_router *r;
        streams *st;
        http_server *srv;
        streams_config sc = {
            .loop = &loop, .bus = d.b, .model = d.m, .bearer = d_bearer, .live_flush_ms = flush_ms};
        http_server_config hc = {
            .host = "127.0.0.1", .port = 0, .max_connections = max_conns, .heartbeat_ms = 600000};
        if (!d.b || !d.m || ami_client_new(&loop, &ac, &cb, &ami) || ami_client_start(ami) ||
            http_router_init(&r) || streams_new(&sc, &st) || streams_add_routes(st, r))
            _exit(1);
        hc.handler = http_router_handle;
        hc.handler_ud = r;
        if (http_server_init(&srv, &loop, &hc) || http_server_start(srv))
            _exit(1);
        uv_timer_t expire;
        uv_timer_init(&loop, &expire);
        expire.data = &d;
        uv_timer_start(&expire, d_expire, 10000, 10000);
        uv_timer_t dbg;
        uv_timer_init(&loop, &dbg);
        dbg.data = &d;
        if (getenv("BENCH_DEBUG"))
            uv_timer_start(&dbg, d_debug, 1000, 1000);
        int p = http_server_port(srv);
        if (write_all(up[1], &p, sizeof p))
            _exit(1);
        close(up[1]);
        uv_run(&loop, UV_RUN_DEFAULT); /* until SIGKILL */
        _exit(0);
    }
    close(up[1]);
    if (pid < 0 || read(up[0], http_port, sizeof *http_port) != (ssize_t)sizeof *http_port)
        return -1;
    close(up[0]);
    return pid;
}

static long proc_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    long v = -1;
    size_t fl = strlen(field);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = atol(line + fl + 1);
    if (f)
        fclose(f);
    return v;
}

/* CPU seconds (user + system) the process has used. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* fields after the command name */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the clients ---- */

typedef enum { C_CONNECTING, C_HEAD, C_STREAM, C_DEAD } cstate;

typedef struct client {
    int fd;
    cstate st;
    bool sampled;
    bool nl;       /* the last byte read was '\n' */
    uint64_t msgs; /* messages (blank-line terminated) since the head */
    char *carry;   /* sampled clients: bytes of an unfinished message */
    size_t carry_len;
    char head[512];
    size_t head_len;
} client;

typedef struct round_stats {
    uint64_t max_seq; /* highest seq a sampled client saw (the stream's progress) */
    uint64_t events;  /* messages received during the window */
    uint32_t *lat;    /* ms, sampled clients, during the window */
    size_t nlat;
    unsigned dropped; /* connections that ended during the round */
    bool measuring;
} round_stats;

static int64_t parse_time(const char *msg, size_t len)
{
    const char *k = memmem(msg, len, "\"time\":\"", 8);
    struct tm tm = {0};
    int ms = 0;
    if (!k || (size_t)(msg + len - k) < 8 + 24)
        return -1;
    k += 8;
    if (sscanf(k, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Sampled clients: every complete message gives one latency sample (snapshots excepted). */
static void sample(client *c, const char *p, size_t n, int64_t now, round_stats *rs)
{
    char *nc = realloc(c->carry, c->carry_len + n);
    if (!nc)
        return;
    c->carry = nc;
    memcpy(c->carry + c->carry_len, p, n);
    c->carry_len += n;
    size_t off = 0;
    for (;;) {
        char *e = memmem(c->carry + off, c->carry_len - off, "\n\n", 2);
        if (!e)
            break;
        size_t mlen = (size_t)(e - (c->carry + off));
        const char *m = c->carry + off;
        if (mlen > 4 && memcmp(m, "id: ", 4) == 0) {
            uint64_t seq = strtoull(m + 4, NULL, 10);
            if (seq > rs->max_seq)
                rs->max_seq = seq;
        }
        if (rs->measuring && !memmem(m, mlen, "\"type\":\"snapshot\"", 17)) {
            int64_t t = parse_time(m, mlen);
            if (t > 0 && rs->nlat < MAX_LAT)
                rs->lat[rs->nlat++] = (uint32_t)(now > t ? now - t : 0);
        }
        off += mlen + 2;
    }
    memmove(c->carry, c->carry + off, c->carry_len - off);
    c->carry_len -= off;
}

static uint64_t count_msgs(client *c, const char *p, size_t n)
{
    uint64_t k = 0;
    const char *end = p + n;
    if (n && c->nl && p[0] == '\n')
        k++;
    for (const char *q = p; q < end;) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        if (!nl)
            break;
        if (nl + 1 < end && nl[1] == '\n') {
            k++;
            q = nl + 2;
        } else {
            q = nl + 1;
        }
    }
    c->nl = n && p[n - 1] == '\n' && !(n >= 2 && p[n - 2] == '\n');
    return k;
}

static int connect_client(client *c, int port, int ep, int idx)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        return -1;
    c->st = C_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)idx};
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

typedef struct bench_opts {
    int rate;
    int seconds, warmup;
    uint32_t flush_ms;
    const char *scenario;
    bool agents;
    bool own_agents; /* -A */
} bench_opts;

enum { OWN_AGENT_BASE = 10000 };

static void close_client(client *c, int ep)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->st = C_DEAD;
}

/* Handles one readiness event of client i. Returns 1 when it just got its stream head. */
static int on_ready(client *cl, int i, uint32_t events, int ep, const char *request, char *buf,
                    size_t bufsize, round_stats *rs)
{
    client *c = &cl[i];
    int ready = 0;
    if (c->st == C_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || write(c->fd, request, strlen(request)) != (ssize_t)strlen(request)) {
            close_client(c, ep);
            rs->dropped++;
            return 0;
        }
        c->st = C_HEAD;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return 0;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return 0;
    for (int k = 0; k < 4; k++) {
        ssize_t n = read(c->fd, buf, bufsize);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0) {
            close_client(c, ep);
            rs->dropped++;
            return 0;
        }
        int64_t now = wall_ms();
        const char *p = buf;
        size_t len = (size_t)n;
        if (c->st == C_HEAD) {
            size_t take =
                len < sizeof c->head - 1 - c->head_len ? len : sizeof c->head - 1 - c->head_len;
            memcpy(c->head + c->head_len, p, take);
            c->head_len += take;
            c->head[c->head_len] = '\0';
            char *e = strstr(c->head, "\r\n\r\n");
            if (!e) {
                if (c->head_len >= sizeof c->head - 1) {
                    close_client(c, ep);
                    rs->dropped++;
                    return 0;
                }
                continue;
            }
            if (strncmp(c->head, "HTTP/1.1 200", 12) != 0) {
                close_client(c, ep);
                rs->dropped++;
                return 0;
            }
            size_t body = (size_t)(e + 4 - c->head) - (c->head_len - take);
            p += body;
            len -= body;
            c->st = C_STREAM;
            ready = 1;
        }
        uint64_t m = count_msgs(c, p, len);
        c->msgs += m;
        if (rs->measuring)
            rs->events += m;
        if (c->sampled)
            sample(c, p, len, now, rs);
        if ((size_t)n < bufsize)
            break;
    }
    return ready;
}

/* The sampled clients are read by a thread of their own (their own epoll), so that their
 * latency is not the time this process takes to read the other 9,744 sockets first: a real
 * subscriber is a browser on its own machine. The main thread reads the rest (counting only). */
typedef struct sampler {
    int ep;
    client *cl;
    const char *const *req;
    round_stats rs;
    _Atomic bool measuring, stop;
    _Atomic uint64_t max_seq;
} sampler;

static void *sampler_main(void *arg)
{
    sampler *sp = arg;
    size_t bufsize = 256 * 1024;
    char *buf = malloc(bufsize);
    struct epoll_event evs[256];
    while (buf && !atomic_load(&sp->stop)) {
        bool m = atomic_load(&sp->measuring);
        if (m && !sp->rs.measuring)
            sp->rs.events = 0;
        sp->rs.measuring = m;
        int k = epoll_wait(sp->ep, evs, 256, 10);
        for (int e = 0; e < k; e++) {
            int i = (int)evs[e].data.u32;
            on_ready(sp->cl, i, evs[e].events, sp->ep, sp->req[i], buf, bufsize, &sp->rs);
        }
        atomic_store(&sp->max_seq, sp->rs.max_seq);
    }
    free(buf);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    unsigned n, connected;
    double events_s, per_client_s;
    uint32_t p50, p99, pmax;
    size_t samples;
    long rss_idle, rss_load, hwm;
    double cpu;       /* daemon CPU share during the window (1.0 = one core) */
    double sim_cpu;   /* the simulator's */
    double cli_cpu;   /* the clients' (this process) */
    double offered_s; /* events/s the daemon put on the stream (seq progress seen by clients) */
    unsigned dropped;
    double connect_s;
} result;

static int run_round(unsigned n, const bench_opts *o, result *res)
{
    int sim_port, cmd_fd, http_port;
    memset(res, 0, sizeof *res);
    res->n = n;
    pid_t sim = start_sim(&sim_port, &cmd_fd);
    if (sim < 0)
        return -1;
    pid_t dmn = start_daemon(sim_port, n + 64, o->flush_ms, &http_port);
    if (dmn < 0)
        return -1;
    usleep(300000); /* AMI login and state restore */

    int ep = epoll_create1(0);
    client *cl = calloc(n, sizeof *cl);
    size_t bufsize = 256 * 1024;
    char *buf = malloc(bufsize);
    round_stats rs = {.lat = malloc(MAX_LAT * sizeof(uint32_t))};
    struct epoll_event evs[1024];
    char req[3][160];
    /* Client i's request: one of req[] (i % 3), or its own agent's with -A. */
    char **reqv = calloc(n, sizeof *reqv);
    char *own = o->own_agents ? calloc(n, 128) : NULL;
    if (!reqv || (o->own_agents && !own))
        return -1;
    static const char *const agents[3] = {"501", "502", "503"};
    for (int a = 0; a < 3; a++) {
        if (o->agents)
            snprintf(req[a], sizeof req[a],
                     "GET /v1/agents/%s/stream HTTP/1.1\r\nHost: b\r\n"
                     "Authorization: Bearer bench\r\n\r\n",
                     agents[a]);
        else
            snprintf(req[a], sizeof req[a],
                     "GET /v1/stream HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer bench\r\n\r\n");
    }
    for (unsigned i = 0; i < n; i++) {
        reqv[i] = req[i % 3];
        if (own) {
            reqv[i] = own + (size_t)i * 128;
            snprintf(reqv[i], 128,
                     "GET /v1/agents/%u/stream HTTP/1.1\r\nHost: b\r\n"
                     "Authorization: Bearer bench\r\n\r\n",
                     OWN_AGENT_BASE + i);
        }
    }
    unsigned step = n > MAX_SAMPLED ? n / MAX_SAMPLED : 1;
    for (unsigned i = 0; i < n; i++) {
        cl[i].fd = -1;
        cl[i].sampled = i % step == 0;
    }

    /* Connect, at most 256 handshakes in flight. */
    double t0 = mono_s();
    unsigned started = 0, inflight = 0, up = 0;
    while ((up + rs.dropped < n) && mono_s() - t0 < 120) {
        while (started < n && inflight < 256) {
            if (connect_client(&cl[started], http_port, ep, (int)started) < 0) {
                fprintf(stderr, "connect %u: %s\n", started, strerror(errno));
                close_client(&cl[started], ep);
                rs.dropped++;
            } else {
                inflight++;
            }
            started++;
        }
        int k = epoll_wait(ep, evs, 1024, 100);
        for (int e = 0; e < k; e++) {
            int i = (int)evs[e].data.u32;
            cstate before = cl[i].st;
            int r = on_ready(cl, i, evs[e].events, ep, reqv[i], buf, bufsize, &rs);
            if (r) {
                up++;
                inflight--;
            } else if (before != C_DEAD && cl[i].st == C_DEAD && before != C_STREAM) {
                inflight--;
            }
        }
    }
    res->connect_s = mono_s() - t0;
    res->connected = up;
    /* Idle RSS with every subscriber connected. */
    usleep(200000);
    res->rss_idle = proc_kib(dmn, "VmRSS");

    /* Hand the sampled clients (all connected by now) to the sampler thread. */
    sampler sp = {.ep = epoll_create1(0), .cl = cl, .req = (const char *const *)reqv};
    sp.rs.lat = rs.lat;
    sp.rs.max_seq = rs.max_seq;
    atomic_store(&sp.max_seq, rs.max_seq);
    for (unsigned i = 0; i < n; i++) {
        if (!cl[i].sampled || cl[i].fd < 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_DEL, cl[i].fd, NULL);
        epoll_ctl(sp.ep, EPOLL_CTL_ADD, cl[i].fd, &ev);
    }
    pthread_t sth;
    if (pthread_create(&sth, NULL, sampler_main, &sp) != 0)
        return -1;

    char cmd[128];
    if (o->own_agents)
        snprintf(cmd, sizeof cmd, "load %d %d %s AGENTS=%u-%u\n", o->rate,
                 o->seconds + o->warmup + 1, o->scenario, OWN_AGENT_BASE, OWN_AGENT_BASE + n - 1);
    else
        snprintf(cmd, sizeof cmd, "load %d %d %s\n", o->rate, o->seconds + o->warmup + 1,
                 o->scenario);
    write_all(cmd_fd, cmd, strlen(cmd));
    double start = mono_s(), mstart = 0, cpu0 = 0, sim0 = 0, cli0 = 0;
    uint64_t seq0 = 0;
    while (mono_s() - start < o->warmup + o->seconds) {
        if (!rs.measuring && mono_s() - start >= o->warmup) {
            rs.measuring = true;
            rs.events = 0;
            mstart = mono_s();
            cpu0 = proc_cpu_s(dmn);
            sim0 = proc_cpu_s(sim);
            cli0 = proc_cpu_s(getpid());
            seq0 = atomic_load(&sp.max_seq);
            atomic_store(&sp.measuring, true);
        }
        int k = epoll_wait(ep, evs, 1024, 50);
        for (int e = 0; e < k; e++) {
            int i = (int)evs[e].data.u32;
            on_ready(cl, i, evs[e].events, ep, reqv[i], buf, bufsize, &rs);
        }
    }
    atomic_store(&sp.stop, true);
    pthread_join(sth, NULL);
    close(sp.ep);
    rs.events += sp.rs.events;
    rs.max_seq = sp.rs.max_seq;
    rs.nlat = sp.rs.nlat;
    rs.dropped += sp.rs.dropped;
    double window = mono_s() - mstart;
    res->cpu = (proc_cpu_s(dmn) - cpu0) / window;
    res->sim_cpu = (proc_cpu_s(sim) - sim0) / window;
    res->cli_cpu = (proc_cpu_s(getpid()) - cli0) / window;
    res->offered_s = (double)(rs.max_seq - seq0) / window;
    res->rss_load = proc_kib(dmn, "VmRSS");
    res->hwm = proc_kib(dmn, "VmHWM");
    res->events_s = (double)rs.events / window;
    unsigned alive = 0;
    for (unsigned i = 0; i < n; i++)
        alive += cl[i].st == C_STREAM;
    res->per_client_s = alive ? res->events_s / alive : 0;
    res->dropped = rs.dropped;
    if (rs.nlat) {
        qsort(rs.lat, rs.nlat, sizeof *rs.lat, cmp_u32);
        res->p50 = rs.lat[rs.nlat / 2];
        res->p99 = rs.lat[(size_t)((double)rs.nlat * 0.99)];
        res->pmax = rs.lat[rs.nlat - 1];
    }
    res->samples = rs.nlat;

    kill(dmn, SIGKILL);
    waitpid(dmn, NULL, 0);
    close(cmd_fd); /* the simulator stops at the end of its input */
    waitpid(sim, NULL, 0);
    for (unsigned i = 0; i < n; i++) {
        if (cl[i].fd >= 0)
            close(cl[i].fd);
        free(cl[i].carry);
    }
    close(ep);
    free(cl);
    free(reqv);
    free(own);
    free(buf);
    free(rs.lat);
    return 0;
}

static void print_result(const result *r, const result *base)
{
    printf("%6u subs (%u connected in %.1f s): stream %.0f events/s, %9.0f events/s delivered "
           "(%.0f per client), "
           "latency p50 %u ms p99 %u ms max %u ms (%zu samples), daemon RSS idle %.1f MiB, "
           "under load %.1f MiB (peak %.1f MiB), daemon CPU %.0f%% (%.2f us per delivered event), "
           "simulator CPU %.0f%%, clients CPU %.0f%%, dropped %u",
           r->n, r->connected, r->connect_s, r->offered_s, r->events_s, r->per_client_s, r->p50,
           r->p99, r->pmax, r->samples, r->rss_idle / 1024.0, r->rss_load / 1024.0, r->hwm / 1024.0,
           r->cpu * 100, r->events_s > 0 ? r->cpu * 1e6 / r->events_s : 0, r->sim_cpu * 100,
           r->cli_cpu * 100, r->dropped);
    if (base && r->n > base->n) {
        printf(", per subscriber over baseline: %.1f KiB idle, %.1f KiB at peak",
               (double)(r->rss_idle - base->rss_idle) / (r->n - base->n),
               (double)(r->hwm - base->hwm) / (r->n - base->n));
    }
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    bench_opts o = {.rate = 200, .seconds = 5, .warmup = 2, .scenario = "queue-call-answered"};
    char nlist[256] = "1000,10000";
    int opt;
    while ((opt = getopt(argc, argv, "n:r:s:w:f:c:aAh")) != -1) {
        switch (opt) {
        case 'n':
            snprintf(nlist, sizeof nlist, "%s", optarg);
            break;
        case 'r':
            o.rate = atoi(optarg);
            break;
        case 's':
            o.seconds = atoi(optarg);
            break;
        case 'w':
            o.warmup = atoi(optarg);
            break;
        case 'f':
            o.flush_ms = (uint32_t)atoi(optarg);
            break;
        case 'c':
            o.scenario = optarg;
            break;
        case 'a':
            o.agents = true;
            break;
        case 'A':
            o.own_agents = true;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-n 1000,10000] [-r CALLS_PER_S] [-s SECONDS] [-w WARMUP] "
                    "[-f FLUSH_MS] [-c SCENARIO] [-a | -A]\n",
                    argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (o.own_agents && o.agents) {
        fprintf(stderr, "-a and -A exclude each other\n");
        return 2;
    }
    if (o.own_agents && strcmp(o.scenario, "queue-call-answered") == 0)
        o.scenario = "queue-call-agent";
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    printf("stream_fanout: %d calls/s of %s, %s stream, %d s measured after %d s warm-up, "
           "live flush %u ms, RLIMIT_NOFILE %llu\n",
           o.rate, o.scenario,
           o.own_agents ? "own agent (one per subscriber, 10000+i)"
           : o.agents   ? "agent (501/502/503)"
                        : "supervisor",
           o.seconds, o.warmup, o.flush_ms, (unsigned long long)rl.rlim_cur);
    result base;
    if (run_round(1, &o, &base) < 0) {
        fprintf(stderr, "baseline round failed\n");
        return 1;
    }
    printf("baseline ");
    print_result(&base, NULL);
    for (char *tok = strtok(nlist, ","); tok; tok = strtok(NULL, ",")) {
        unsigned n = (unsigned)atoi(tok);
        result r;
        if (n + 64 > rl.rlim_cur) {
            printf("%u subscribers: skipped (RLIMIT_NOFILE %llu)\n", n,
                   (unsigned long long)rl.rlim_cur);
            continue;
        }
        if (run_round(n, &o, &r) < 0) {
            fprintf(stderr, "round %u failed\n", n);
            return 1;
        }
        print_result(&r, &base);
    }
    return 0;
}
