/* cmd_outbox.c: `switchboard outbox status|retry|replay`: the durable outbox's sink cursors and
 * dead letters.
 *
 * status reads the store (WAL readers: works while the daemon runs). retry and replay look at the
 * store's lock (app/outbox_control.h): when it is free no daemon runs, and the command works on
 * the store itself with the outbox admin functions while HOLDING the lock (no daemon can start
 * half-way); when a daemon holds it, the command queues a request in the store for that daemon
 * and waits (--wait, default 10 s) for its outcome. A request the daemon has not taken when the
 * wait ends is canceled, so nothing happens behind the operator's back later.
 */
#include "app/cli.h"
#include "app/core.h"
#include "app/outbox_control.h"

#include "core/config.h"
#include "core/error.h"
#include "outbox/outbox.h"
#include "store/store.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const outbox_help =
    "usage: switchboard outbox COMMAND [OPTIONS]\n"
    "\n"
    "  status [--sink S] [--json]   every sink's cursor, pending events, retrying events and\n"
    "                               dead letters (works while the daemon runs)\n"
    "  retry --sink S [--from TIME] put S's dead letters (events at or after TIME; default all)\n"
    "                               back into delivery with fresh attempts\n"
    "  replay --sink S --from TIME  deliver S's events again from TIME\n"
    "\n"
    "retry and replay work whether or not the daemon runs. Running (it holds STORE.lock): the\n"
    "request goes to the daemon, which does it at once; the command waits for the outcome (at\n"
    "most --wait seconds; a request the daemon has not taken by then is canceled). Stopped: the\n"
    "command changes the store itself and the daemon delivers when it starts.\n"
    "\n"
    "TIME: an RFC 3339 UTC time (2026-11-25T02:00:00Z) or a duration back from now (90m, 2h, 1d).\n"
    "\n"
    "  -c, --config FILE   configuration file (its [store] path; default ./switchboard.db)\n"
    "      --store PATH    the store file, overriding the configuration\n"
    "      --sink S        the sink's name (its [sink S] section)\n"
    "      --from TIME     see above\n"
    "      --json          status: one JSON object per sink, one per line\n"
    "      --wait SECONDS  retry, replay: how long to wait for a running daemon (default 10)\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit status: 0 done, 1 failure (no such sink, store error, the daemon did not answer in\n"
    "time), 2 usage.\n";

enum { OPT_CONFIG = 1, OPT_STORE, OPT_SINK, OPT_FROM, OPT_JSON, OPT_WAIT, OPT_HELP };

#define DEFAULT_WAIT_S 10
#define MAX_WAIT_S 3600
#define POLL_MS 100

static const cli_opt outbox_opts[] = {
    {"config", 'c', true, OPT_CONFIG}, {"store", 0, true, OPT_STORE}, {"sink", 0, true, OPT_SINK},
    {"from", 0, true, OPT_FROM},       {"json", 0, false, OPT_JSON},  {"wait", 0, true, OPT_WAIT},
    {"help", 'h', false, OPT_HELP},    {NULL, 0, false, 0},
};

typedef struct outbox_args {
    const char *config, *store, *sink, *from, *wait;
    bool json;
    const char *pos[2];
    int npos;
} outbox_args;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fmt_time(int64_t ms, char *buf, size_t n)
{
    if (ms <= 0) {
        snprintf(buf, n, "-");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Sink names with a cursor in the store, collected by store_sinks_list. */
typedef struct name_list {
    char *names[256];
    size_t n;
} name_list;

static int collect_name(const char *name, void *ud)
{
    name_list *l = ud;
    if (l->n >= sizeof l->names / sizeof l->names[0])
        return 1;
    l->names[l->n] = strdup(name);
    if (!l->names[l->n])
        return SB_ENOMEM;
    l->n++;
    return 0;
}

static void name_list_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    l->n = 0;
}

/* Fills l with the sinks known to the store at path. 0 or an SB_E* code (message printed). */
static int list_sinks(const char *cmd, const char *path, name_list *l)
{
    store_conn *c = NULL;
    int rc = store_open(path, STORE_OPEN_READ, NULL, &c);
    if (!rc) {
        rc = store_sinks_list(c, collect_name, l);
        if (rc > 0)
            rc = 0; /* more than 256 sinks: the first ones */
    }
    store_close(c);
    if (rc < 0)
        fprintf(stderr, "%s: cannot read the store %s: %s\n", cmd, path, sb_strerror(rc));
    return rc;
}

static bool has_sink(const name_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], name))
            return true;
    return false;
}

static int print_status(const char *cmd, const char *path, const char *name, bool json,
                        bool *header)
{
    store_sink_status st;
    char pend[32], upd[32];
    int rc = outbox_admin_status(path, name, &st);
    if (rc < 0) {
        fprintf(stderr, "%s: sink %s: %s\n", cmd, name, sb_strerror(rc));
        return rc;
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "sink", name, "cursor",
                              (json_int_t)st.cursor, "lastSeq", (json_int_t)st.last_seq, "pending",
                              (json_int_t)st.pending, "oldestPendingMs",
                              (json_int_t)st.oldest_pending_ms, "retrying", (json_int_t)st.retrying,
                              "dead", (json_int_t)st.dead, "updatedMs", (json_int_t)st.updated_ms);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
        return s ? 0 : SB_ENOMEM;
    }
    if (!*header) {
        printf("%-20s %12s %12s %10s %9s %8s  %-20s %-20s\n", "SINK", "CURSOR", "LAST", "PENDING",
               "RETRYING", "DEAD", "OLDEST PENDING", "CURSOR MOVED");
        *header = true;
    }
    fmt_time(st.oldest_pending_ms, pend, sizeof pend);
    fmt_time(st.updated_ms, upd, sizeof upd);
    printf("%-20s %12" PRId64 " %12" PRId64 " %10" PRId64 " %9" PRId64 " %8" PRId64
           "  %-20s %-20s\n",
           name, st.cursor, st.last_seq, st.pending, st.retrying, st.dead, pend, upd);
    return 0;
}

static int do_status(const outbox_args *a, const char *path)
{
    static const char *cmd = "switchboard outbox status";
    name_list l = {.n = 0};
    bool header = false;
    int code = CMD_OK;
    if (a->npos > 1)
        return cli_usage_error(cmd, "unexpected argument '%s'", a->pos[1]);
    if (a->from)
        return cli_usage_error(cmd, "--from is for retry and replay");
    if (a->wait)
        return cli_usage_error(cmd, "--wait is for retry and replay");
    if (list_sinks(cmd, path, &l) < 0)
        return CMD_FAILED;
    if (a->sink) {
        if (!has_sink(&l, a->sink)) {
            fprintf(stderr, "%s: no sink '%s' in %s\n", cmd, a->sink, path);
            code = CMD_FAILED;
        } else if (print_status(cmd, path, a->sink, a->json, &header) < 0) {
            code = CMD_FAILED;
        }
    } else if (l.n == 0 && !a->json) {
        printf("no sink has delivered from %s yet\n", path);
    } else {
        for (size_t i = 0; i < l.n; i++)
            if (print_status(cmd, path, l.names[i], a->json, &header) < 0)
                code = CMD_FAILED;
    }
    name_list_free(&l);
    return code;
}

static void print_outcome(const char *sink, bool replay, int64_t n, bool is_daemon)
{
    if (replay && is_daemon)
        printf("sink %s: cursor moved back to %" PRId64 "; the running daemon delivers again "
               "from there\n",
               sink, n);
    else if (replay)
        printf("sink %s: cursor moved back to %" PRId64 "; delivery starts again after it when "
               "the daemon starts\n",
               sink, n);
    else if (is_daemon)
        printf("sink %s: %" PRId64 " dead letter(s) marked for retry; the running daemon is "
               "delivering them\n",
               sink, n);
    else
        printf("sink %s: %" PRId64 " dead letter(s) marked for retry; the daemon delivers them "
               "at its next start\n",
               sink, n);
}

/* No daemon runs (the caller holds the store's lock): change the store directly. */
static int offline(const char *cmd, const outbox_args *a, const char *path, bool replay,
                   int64_t from)
{
    name_list l = {.n = 0};
    int64_t n = 0;
    int code = CMD_OK, rc;
    if (list_sinks(cmd, path, &l) < 0)
        return CMD_FAILED;
    if (!has_sink(&l, a->sink)) {
        fprintf(stderr, "%s: no sink '%s' in %s\n", cmd, a->sink, path);
        code = CMD_FAILED;
        goto out;
    }
    rc = replay ? outbox_admin_replay(path, a->sink, from, &n)
                : outbox_admin_retry(path, a->sink, from, &n);
    if (rc < 0) {
        fprintf(stderr, "%s: sink %s: %s\n", cmd, a->sink, sb_strerror(rc));
        code = CMD_FAILED;
        goto out;
    }
    print_outcome(a->sink, replay, n, false);
out:
    name_list_free(&l);
    return code;
}

/* A copy of the request row the CLI waits on. */
typedef struct req_view {
    store_request_state state;
    int64_t result;
    char error[256];
} req_view;

static int on_request(const store_request *r, void *ud)
{
    req_view *v = ud;
    v->state = r->state;
    v->result = r->result;
    snprintf(v->error, sizeof v->error, "%s", r->error);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A daemon holds the lock: queue a request and wait for its outcome. *lock_fd gets the lock when
 * the daemon stops before taking the request (the caller then works offline: *is_offline). */
static int via_daemon(const char *cmd, const outbox_args *a, const char *path, bool replay,
                      int64_t from, int wait_s, int *lock_fd, bool *is_offline)
{
    store_conn *c = NULL;
    int64_t id = 0, start = wall_ms(), deadline = start + (int64_t)wait_s * 1000;
    req_view v = {.state = STORE_REQ_QUEUED};
    int code = CMD_FAILED, rc;
    *is_offline = false;
    if ((rc = store_open(path, STORE_OPEN_WRITE, NULL, &c)) < 0 ||
        (rc = store_request_add(c, replay ? STORE_REQ_REPLAY : STORE_REQ_RETRY, a->sink, from,
                                start, deadline, &id)) < 0) {
        fprintf(stderr, "%s: cannot queue the request in %s: %s\n", cmd, path, sb_strerror(rc));
        goto out;
    }
    for (;;) {
        sleep_ms(POLL_MS);
        if ((rc = store_request_get(c, id, on_request, &v)) < 0) {
            fprintf(stderr, "%s: cannot read request %" PRId64 ": %s\n", cmd, id, sb_strerror(rc));
            goto out;
        }
        if (v.state == STORE_REQ_DONE) {
            print_outcome(a->sink, replay, v.result, true);
            code = CMD_OK;
            goto out;
        }
        if (v.state == STORE_REQ_FAILED || v.state == STORE_REQ_CANCELED) {
            fprintf(stderr, "%s: sink %s: %s\n", cmd, a->sink,
                    v.state == STORE_REQ_CANCELED ? "the request was canceled" : v.error);
            goto out;
        }
        /* The daemon may have stopped meanwhile: then its lock is free. */
        if (app_store_lock(path, lock_fd) == 0) {
            if (store_request_cancel(c, id, wall_ms()) == 0) {
                *is_offline = true; /* never taken: do it here */
                code = CMD_OK;
            } else if (store_request_get(c, id, on_request, &v) == 0 && v.state == STORE_REQ_DONE) {
                print_outcome(a->sink, replay, v.result, true);
                code = CMD_OK;
            } else {
                fprintf(stderr,
                        "%s: sink %s: the daemon stopped while carrying out the request%s%s\n", cmd,
                        a->sink, v.error[0] ? ": " : "", v.error);
            }
            goto out;
        }
        if (wall_ms() >= deadline)
            break;
    }
    if (store_request_cancel(c, id, wall_ms()) == 0)
        fprintf(stderr,
                "%s: the running daemon did not take the request within %d s; it was canceled "
                "and nothing changed\n",
                cmd, wait_s);
    else
        fprintf(stderr,
                "%s: the running daemon took the request but did not finish within %d s; it "
                "carries on (see `switchboard outbox status`)\n",
                cmd, wait_s);
out:
    store_close(c);
    return code;
}

static int do_retry_replay(const outbox_args *a, const char *path, bool replay)
{
    const char *cmd = replay ? "switchboard outbox replay" : "switchboard outbox retry";
    int64_t from = 0;
    int code, rc, lock_fd = -1, wait_s = DEFAULT_WAIT_S;
    bool is_offline = true;
    if (a->npos > 1)
        return cli_usage_error(cmd, "unexpected argument '%s'", a->pos[1]);
    if (!a->sink)
        return cli_usage_error(cmd, "--sink is required");
    if (a->json)
        return cli_usage_error(cmd, "--json is for status");
    if (replay && !a->from)
        return cli_usage_error(cmd, "--from is required (a time or a duration back from now)");
    if (a->from && outbox_parse_from(a->from, wall_ms(), &from) < 0)
        return cli_usage_error(cmd, "--from: '%s' is not an RFC 3339 UTC time or a duration",
                               a->from);
    if (a->wait) {
        char *end = NULL;
        long w = strtol(a->wait, &end, 10);
        if (end == a->wait || *end || w < 1 || w > MAX_WAIT_S)
            return cli_usage_error(cmd, "--wait: '%s' is not a number of seconds (1-%d)", a->wait,
                                   MAX_WAIT_S);
        wait_s = (int)w;
    }
    rc = app_store_lock(path, &lock_fd);
    if (rc == SB_EEXIST) {
        code = via_daemon(cmd, a, path, replay, from, wait_s, &lock_fd, &is_offline);
        if (!is_offline)
            goto out;
    } else if (rc < 0) {
        fprintf(stderr, "%s: cannot lock the store %s: %s\n", cmd, path, sb_strerror(rc));
        return CMD_FAILED;
    }
    code = offline(cmd, a, path, replay, from);
out:
    app_store_unlock(lock_fd);
    return code;
}

int cmd_outbox(int argc, char **argv)
{
    static const char *cmd = "switchboard outbox";
    outbox_args a;
    cli_parser cp;
    const char *arg;
    int opt, code = CMD_OK;

    memset(&a, 0, sizeof a);
    cli_init(&cp, argc, argv, 1, cmd, outbox_opts);
    while ((opt = cli_next(&cp, &arg)) != CLI_END) {
        switch (opt) {
        case CLI_ERROR:
            return CMD_USAGE;
        case CLI_ARG:
            if (a.npos < 2)
                a.pos[a.npos] = arg;
            a.npos++;
            break;
        case OPT_HELP:
            fputs(outbox_help, stdout);
            return CMD_OK;
        case OPT_CONFIG:
            a.config = arg;
            break;
        case OPT_STORE:
            a.store = arg;
            break;
        case OPT_SINK:
            a.sink = arg;
            break;
        case OPT_FROM:
            a.from = arg;
            break;
        case OPT_JSON:
            a.json = true;
            break;
        case OPT_WAIT:
            a.wait = arg;
            break;
        }
    }
    if (a.npos == 0)
        return cli_usage_error(cmd, "a command is required: status, retry or replay");
    const char *sub = a.pos[0];
    if (strcmp(sub, "status") && strcmp(sub, "retry") && strcmp(sub, "replay"))
        return cli_usage_error(cmd, "unknown command '%s' (status, retry or replay)", sub);
    const char *path = cli_store_path(a.store, a.config, cmd, &code);
    if (!path)
        return code;
    if (!strcmp(sub, "status"))
        code = do_status(&a, path);
    else
        code = do_retry_replay(&a, path, !strcmp(sub, "replay"));
    return code;
}
