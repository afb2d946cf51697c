/* ami_ingest.c: how fast the AMI client takes in events, next to the ceiling of this machine.
 *
 * A child process runs the PBX simulator; it streams N events of the fixture mix (PbxsimStream)
 * to each session that asks. First a raw reader that only counts packet terminators ("\r\n\r\n")
 * takes the stream: that is the ceiling (socket + simulator). Then switchboard's AMI client takes
 * the same stream through the codec and dispatches every event to a no-op handler. The figures
 * and the client process's peak RSS are printed. Usage: bench_ami_ingest [EVENTS] (default 2e6).
 */
#include "ami/client.h"
#include "core/error.h"
#include "pbxsim.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The simulator in a child process, so the parent's RSS is the client side alone. */
static pid_t start_simulator(int *port)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        uv_loop_t loop;
        pbxsim_config cfg;
        pbxsim *sim = NULL;
        uv_loop_init(&loop);
        pbxsim_config_default(&cfg);
        if (pbxsim_new(&loop, &cfg, &sim) != 0 || pbxsim_start(sim) != 0)
            _exit(1);
        int p = pbxsim_port(sim);
        if (write(fds[1], &p, sizeof p) != (ssize_t)sizeof p)
            _exit(1);
        close(fds[1]);
        uv_run(&loop, UV_RUN_DEFAULT);
        _exit(0);
    }
    close(fds[1]);
    if (pid < 0 || read(fds[0], port, sizeof *port) != (ssize_t)sizeof *port) {
        close(fds[0]);
        return -1;
    }
    close(fds[0]);
    return pid;
}

static int send_all(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = write(fd, s + off, len - off);
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

/* The ceiling: read the stream and count packet terminators, nothing else. */
static double raw_ceiling(int port, uint64_t events)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "Action: Login\r\nUsername: admin\r\nSecret: admin-secret\r\nEvents: on\r\n\r\n"
             "Action: PbxsimStream\r\nCount: %llu\r\n\r\n",
             (unsigned long long)events);
    if (send_all(fd, cmd) != 0)
        return -1;
    static char buf[1 << 16];
    uint64_t seen = 0;
    bool prev_blank_pending = false; /* the previous chunk ended with "\r\n" or "\r\n\r" */
    char tail[3] = {0, 0, 0};
    double t0 = 0;
    while (seen < events) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        if (t0 == 0)
            t0 = now_s();
        /* Terminators that straddle two reads: check the joint with the last 3 bytes. */
        if (prev_blank_pending) {
            char joint[6];
            memcpy(joint, tail, 3);
            memcpy(joint + 3, buf, n < 3 ? (size_t)n : 3);
            for (int k = 0; k < 3 && k + 4 <= 3 + (n < 3 ? n : 3); k++)
                if (memcmp(joint + k, "\r\n\r\n", 4) == 0)
                    seen++;
        }
        const char *p = buf, *end = buf + n;
        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            if (p + 2 < end && p[1] == '\r' && p[2] == '\n' && p > buf && p[-1] == '\r')
                seen++;
            p++;
        }
        if (n >= 3) {
            memcpy(tail, end - 3, 3);
            prev_blank_pending = true;
        }
    }
    double dt = now_s() - t0;
    close(fd);
    return seen >= events ? (double)seen / dt : -1;
}

typedef struct bench_state {
    uint64_t want, seen;
    double t0, t1;
    int failed;
} bench_state;

static void on_event(ami_client *c, const ami_packet *ev, void *ud)
{
    bench_state *b = ud;
    if (b->seen == 0)
        b->t0 = now_s();
    if (++b->seen == b->want) {
        b->t1 = now_s();
        ami_client_stop(c);
    }
}

static void on_stream_started(ami_client *c, const ami_result *r, void *ud)
{
    bench_state *b = ud;
    if (r->status != 0) {
        fprintf(stderr, "PbxsimStream failed: %s\n", sb_strerror(r->status));
        b->failed = 1;
        ami_client_stop(c);
    }
}

static void on_ready(ami_client *c, bool reconnected, void *ud)
{
    bench_state *b = ud;
    ami_msg m;
    ami_msg_init(&m, "Action", "PbxsimStream");
    ami_msg_addf(&m, "Count", "%llu", (unsigned long long)b->want);
    if (reconnected ||
        ami_client_send(c, &m, AMI_ACTION_SIMPLE, 600000, on_stream_started, b, NULL, 0) != 0) {
        b->failed = 1;
        ami_client_stop(c);
    }
    ami_msg_free(&m);
}

static double client_rate(int port, uint64_t events)
{
    uv_loop_t loop;
    ami_client *c = NULL;
    bench_state b = {.want = events};
    ami_client_config cfg = {
        .name = "bench",
        .host = "127.0.0.1",
        .port = port,
        .username = "admin",
        .secret = "admin-secret",
        .events = "on",
        .stall_timeout_ms = 60000,
    };
    ami_client_callbacks cbs = {.on_event = on_event, .on_ready = on_ready, .ud = &b};
    uv_loop_init(&loop);
    if (ami_client_new(&loop, &cfg, &cbs, &c) != 0 || ami_client_start(c) != 0)
        return -1;
    uv_run(&loop, UV_RUN_DEFAULT);
    ami_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (b.failed || b.seen < events)
        return -1;
    return (double)b.seen / (b.t1 - b.t0);
}

typedef struct run_result {
    double rate;     /* events/s, or <= 0 when the run failed */
    long maxrss_kib; /* peak RSS of the process that ran it */
} run_result;

/* Runs one reader in a child process of its own, so each peak RSS is that reader's alone. */
static run_result in_child(double (*fn)(int, uint64_t), int port, uint64_t events)
{
    run_result r = {-1, 0};
    int fds[2];
    if (pipe(fds) != 0)
        return r;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        run_result mine = {fn(port, events), 0};
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        mine.maxrss_kib = ru.ru_maxrss;
        ssize_t w = write(fds[1], &mine, sizeof mine);
        _exit(w == (ssize_t)sizeof mine ? 0 : 1);
    }
    close(fds[1]);
    if (pid > 0 && read(fds[0], &r, sizeof r) != (ssize_t)sizeof r)
        r.rate = -1;
    close(fds[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return r;
}

int main(int argc, char **argv)
{
    uint64_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    int port = 0;
    signal(SIGPIPE, SIG_IGN);
    pid_t sim = start_simulator(&port);
    if (sim < 0) {
        fprintf(stderr, "ami_ingest: could not start the simulator\n");
        return 1;
    }
    /* A short warm-up stream, so that neither measured run pays for the simulator's first
     * rendering of the event mix. Then each reader twice, interleaved; the best run counts. */
    in_child(raw_ceiling, port, 10000);
    run_result ceiling = {-1, 0}, client = {-1, 0};
    for (int i = 0; i < 2; i++) {
        run_result a = in_child(raw_ceiling, port, events);
        run_result b = in_child(client_rate, port, events);
        if (a.rate > ceiling.rate)
            ceiling = a;
        if (b.rate > client.rate)
            client = b;
    }
    kill(sim, SIGTERM);
    waitpid(sim, NULL, 0);
    if (ceiling.rate <= 0 || client.rate <= 0) {
        fprintf(stderr, "ami_ingest: a run did not complete (ceiling %.0f, client %.0f)\n",
                ceiling.rate, client.rate);
        return 1;
    }
    printf("ami_ingest: %llu events of the fixture mix over loopback (best of 2 runs each)\n",
           (unsigned long long)events);
    printf("  switchboard (codec + client + no-op handler): %10.0f events/s, peak RSS %.1f MiB\n",
           client.rate, (double)client.maxrss_kib / 1024.0);
    printf("  ceiling (count terminators only):             %10.0f events/s, peak RSS %.1f MiB\n",
           ceiling.rate, (double)ceiling.maxrss_kib / 1024.0);
    printf("  switchboard reaches %.1f%% of the ceiling (targets: >= 40%%, >= 1,000,000 events/s, "
           "RSS < 16 MiB)\n",
           100.0 * client.rate / ceiling.rate);
    return 0;
}
