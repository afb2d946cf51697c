/* main.c: the `pbxsim` program — the PBX simulator on its own, for scripted tests and demos.
 *
 * Prints "listening HOST:PORT" as its first stdout line, then reads control commands from stdin
 * (one per line, see pbxsim_command(): play, load, stream, fault ..., plus "stats" and "quit"),
 * answering each with "ok", "error: WHY" or, for stats, one line of counters.
 */
#include "pbxsim.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct app {
    uv_loop_t *loop;
    pbxsim *sim;
    uv_pipe_t in_pipe;
    uv_tty_t in_tty;
    uv_stream_t *in;
    uv_signal_t sigint, sigterm;
    char line[1024];
    size_t len;
    char rbuf[4096];
    bool quitting;
} app;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pbxsim [--host H] [--port N] [--time-scale X]\n"
            "              [--scenario NAME --rate CALLS_PER_SECOND --duration SECONDS]\n"
            "              [--scenario-dir DIR] [--help]\n"
            "An AMI server that behaves like Asterisk 22 (users admin/admin-secret and\n"
            "limited/limited-secret). Prints \"listening HOST:PORT\" first, then reads commands\n"
            "on stdin, one per line:\n"
            "  play NAME [VAR=value ...]   start one scenario instance\n"
            "  load RATE SECONDS NAME      RATE calls per second for SECONDS\n"
            "  load RATE SECONDS NAME AGENTS=LO-HI   the same, calls spread over agents LO..HI\n"
            "  stream COUNT                send COUNT pre-rendered events to every session\n"
            "  fault drop | fault stall MS | fault garbage | fault restart\n"
            "  stats | quit\n"
            "Scenarios:");
    for (const char *const *n = pbxsim_scenarios; *n; n++)
        fprintf(f, " %s", *n);
    fprintf(f, "\n");
}

static void quit(app *a)
{
    if (a->quitting)
        return;
    a->quitting = true;
    pbxsim_free(a->sim);
    a->sim = NULL;
    if (a->in) {
        uv_read_stop(a->in);
        uv_close((uv_handle_t *)a->in, NULL);
    }
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static void run_line(app *a, const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (!*line || *line == '#')
        return;
    if (strcmp(line, "quit") == 0) {
        printf("ok\n");
        fflush(stdout);
        quit(a);
        return;
    }
    if (strcmp(line, "stats") == 0) {
        pbxsim_stats st;
        pbxsim_get_stats(a->sim, &st);
        printf("sessions_open=%u sessions_accepted=%llu logins_ok=%llu logins_failed=%llu "
               "actions=%llu denied=%llu events_emitted=%llu events_sent=%llu bytes_sent=%llu "
               "calls_started=%llu calls_active=%u channels=%u load_behind=%llu\n",
               st.sessions_open, (unsigned long long)st.sessions_accepted,
               (unsigned long long)st.logins_ok, (unsigned long long)st.logins_failed,
               (unsigned long long)st.actions, (unsigned long long)st.denied,
               (unsigned long long)st.events_emitted, (unsigned long long)st.events_sent,
               (unsigned long long)st.bytes_sent, (unsigned long long)st.calls_started,
               st.calls_active, st.channels, (unsigned long long)st.load_behind);
        fflush(stdout);
        return;
    }
    int rc = pbxsim_command(a->sim, line);
    if (rc < 0)
        printf("error: %s\n", sb_strerror(rc));
    else
        printf("ok\n");
    fflush(stdout);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    app *a = h->data;
    *buf = uv_buf_init(a->rbuf, sizeof a->rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    app *a = s->data;
    if (n < 0) {
        /* stdin closed: keep serving (a demo may run with </dev/null); stop reading */
        uv_read_stop(s);
        return;
    }
    for (ssize_t i = 0; i < n && !a->quitting; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            a->line[a->len] = '\0';
            if (a->len && a->line[a->len - 1] == '\r')
                a->line[a->len - 1] = '\0';
            run_line(a, a->line);
            a->len = 0;
        } else if (a->len + 1 < sizeof a->line) {
            a->line[a->len++] = ch;
        }
    }
}

static void on_signal(uv_signal_t *sig, int signum)
{
    quit(sig->data);
}

int main(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    pbxsim_config cfg;
    pbxsim_config_default(&cfg);
    const char *scenario = NULL;
    double rate = 0, duration = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (!val) {
            fprintf(stderr, "pbxsim: unknown option or missing value: %s (see --help)\n", arg);
            return 2;
        }
        i++;
        if (strcmp(arg, "--port") == 0) {
            long p = strtol(val, &end, 10);
            if (*end || p < 0 || p > 65535) {
                fprintf(stderr, "pbxsim: --port: not a port number: %s\n", val);
                return 2;
            }
            cfg.port = (int)p;
        } else if (strcmp(arg, "--host") == 0) {
            cfg.host = val;
        } else if (strcmp(arg, "--time-scale") == 0) {
            cfg.time_scale = strtod(val, &end);
            if (*end || cfg.time_scale <= 0) {
                fprintf(stderr, "pbxsim: --time-scale: not a positive number: %s\n", val);
                return 2;
            }
        } else if (strcmp(arg, "--scenario") == 0) {
            scenario = val;
        } else if (strcmp(arg, "--scenario-dir") == 0) {
            cfg.scenario_dir = val;
        } else if (strcmp(arg, "--rate") == 0) {
            rate = strtod(val, &end);
            if (*end || rate <= 0) {
                fprintf(stderr, "pbxsim: --rate: not a positive number: %s\n", val);
                return 2;
            }
        } else if (strcmp(arg, "--duration") == 0) {
            duration = strtod(val, &end);
            if (*end || duration <= 0) {
                fprintf(stderr, "pbxsim: --duration: not a positive number: %s\n", val);
                return 2;
            }
        } else {
            fprintf(stderr, "pbxsim: unknown option: %s (see --help)\n", arg);
            return 2;
        }
    }
    a.loop = uv_default_loop();
    int rc = pbxsim_new(a.loop, &cfg, &a.sim);
    if (rc == 0)
        rc = pbxsim_start(a.sim);
    if (rc < 0) {
        fprintf(stderr, "pbxsim: cannot listen on %s:%d: %s\n", cfg.host, cfg.port,
                sb_strerror(rc));
        pbxsim_free(a.sim);
        uv_run(a.loop, UV_RUN_DEFAULT);
        return 1;
    }
    printf("listening %s:%d\n", cfg.host, pbxsim_port(a.sim));
    fflush(stdout);
    if (scenario) {
        if (rate <= 0)
            rc = pbxsim_play(a.sim, scenario, NULL);
        else
            rc = pbxsim_load(a.sim, rate, (uint64_t)((duration > 0 ? duration : 10) * 1000),
                             scenario);
        if (rc < 0) {
            fprintf(stderr, "pbxsim: scenario %s: %s\n", scenario, sb_strerror(rc));
            pbxsim_free(a.sim);
            uv_run(a.loop, UV_RUN_DEFAULT);
            return 1;
        }
    }
    uv_signal_init(a.loop, &a.sigint);
    uv_signal_init(a.loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_handle_type t = uv_guess_handle(0);
    if (t == UV_TTY && uv_tty_init(a.loop, &a.in_tty, 0, 1) == 0) {
        a.in = (uv_stream_t *)&a.in_tty;
    } else if (t == UV_NAMED_PIPE || t == UV_FILE || t == UV_TCP) {
        if (uv_pipe_init(a.loop, &a.in_pipe, 0) == 0) {
            if (uv_pipe_open(&a.in_pipe, 0) == 0)
                a.in = (uv_stream_t *)&a.in_pipe;
            else
                uv_close((uv_handle_t *)&a.in_pipe, NULL);
        }
    }
    if (a.in) {
        a.in->data = &a;
        uv_read_start(a.in, alloc_cb, read_cb);
    }
    uv_run(a.loop, UV_RUN_DEFAULT);
    uv_loop_close(a.loop);
    return 0;
}
