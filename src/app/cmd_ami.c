/* cmd_ami.c: `switchboard ami tail` and `switchboard ami action`: one-shot AMI tools built on the
 * daemon's own client and configuration (docs/cli.md).
 *
 * Both load switchboard.conf (or, with --demo, start the simulator in-process), connect and then
 * either print every event or send one action and print its answer. A connection or login failure
 * before the first login ends the command at once with one line (the daemon would retry; a
 * command line tool should say what is wrong). Logging is off unless --log-level asks for it, so
 * that stdout carries only packets and stderr only the one line that explains a failure.
 */
#include "app/ami_print.h"
#include "app/cli.h"
#include "app/demo.h"
#include "app/pbx.h"

#include "ami/client.h"
#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT_MS 10000

/* Actions Asterisk answers with an event list (EventList: start ... Complete). */
static const char *const list_actions[] = {
    "QueueStatus",
    "CoreShowChannels",
    "Status",
    "QueueSummary",
    "ExtensionStateList",
    "DeviceStateList",
    "Agents",
    "BridgeList",
    "PJSIPShowEndpoints",
    "PJSIPShowContacts",
    "PJSIPShowAors",
    "PJSIPShowRegistrationsInbound",
    "SIPpeers",
    "IAXpeerlist",
    "ParkedCalls",
    "ConfbridgeList",
    "ConfbridgeListRooms",
    "ShowDialPlan",
    "CoreShowChannelMap",
    "PresenceStateList",
    "MailboxStatus",
    "VoicemailUsersList",
    "DBGetTree",
    NULL,
};

typedef struct ami_cmd ami_cmd;

typedef struct tail_conn {
    ami_cmd *x;
    ami_client *client;
    bool ever_ready;
} tail_conn;

struct ami_cmd {
    uv_loop_t loop;
    const char *cmd;    /* "switchboard ami tail" */
    const char *action; /* ami action: its name */
    sb_config *cfg;
    app_demo *demo;
    bool json;
    bool tail;
    /* tail */
    tail_conn *conns;
    size_t nconns;
    uint64_t count_max, count;
    bool multi;    /* several PBXs: tag the text form with Pbx:, and one down PBX is not fatal */
    size_t nready; /* connections that logged in at least once */
    uint64_t login_ms; /* the login deadline armed */
    /* action */
    ami_msg msg;
    bool msg_ready;
    ami_action_kind kind;
    uint32_t timeout_ms;
    bool sent;
    uv_timer_t deadline;
    uv_signal_t sig_int, sig_term;
    bool finished;
    int exit_code;
};

static const char *const tail_help =
    "usage: switchboard ami tail [-c FILE] [--pbx NAME] [--json] [--demo] [--count N]\n"
    "\n"
    "Prints every AMI event of the configured PBXs until interrupted.\n"
    "\n"
    "  -c, --config FILE   configuration file (default: $SWITCHBOARD_CONF, ./switchboard.conf,\n"
    "                      /etc/switchboard/switchboard.conf)\n"
    "  --pbx NAME          only this [pbx NAME] (default: every configured PBX)\n"
    "  --json              one JSON object per event and line: keys as AMI sends them, a\n"
    "                      repeated key as an array, plus \"pbx\"\n"
    "  --demo              run against the built-in PBX simulator, playing calls\n"
    "  --count N           exit after N events\n"
    "  --log-level L       log to stderr at level L (debug, info, warn, error); default off\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit status: 0 interrupted or --count reached, 2 bad usage or configuration, 3 cannot\n"
    "connect or log in.\n";

static const char *const action_help =
    "usage: switchboard ami action NAME [Key=Value ...] [-c FILE] [--pbx NAME] [--list] [--json]\n"
    "                              [--demo] [--timeout DURATION]\n"
    "\n"
    "Sends one AMI action and prints the answer: the Response, and for list actions every\n"
    "event of the list and its Complete event; for Originate with Async=true, the\n"
    "OriginateResponse event.\n"
    "\n"
    "  -c, --config FILE   configuration file (as for `ami tail`)\n"
    "  --pbx NAME          the [pbx NAME] to use (default: the first in the file)\n"
    "  --list              the answer is an event list (detected for QueueStatus, Status,\n"
    "                      CoreShowChannels, QueueSummary, ExtensionStateList, ...)\n"
    "  --json              each packet as one JSON object per line\n"
    "  --demo              send it to the built-in PBX simulator\n"
    "  --timeout DURATION  how long to wait for the answer (default 10s)\n"
    "  --log-level L       log to stderr at level L; default off\n"
    "  -h, --help          this text\n"
    "\n"
    "Example: switchboard ami action QueueStatus Queue=support --json\n"
    "Exit status: 0 Success, 1 Error (the message is printed), 2 bad usage or configuration,\n"
    "3 cannot connect or log in.\n";

static const char *const ami_help =
    "usage: switchboard ami COMMAND ...\n"
    "\n"
    "  tail      print every event (switchboard ami tail --help)\n"
    "  action    send one action and print the answer (switchboard ami action --help)\n";

enum {
    OPT_CONFIG = 1,
    OPT_PBX,
    OPT_JSON,
    OPT_DEMO,
    OPT_COUNT,
    OPT_LIST,
    OPT_TIMEOUT,
    OPT_LOG_LEVEL,
    OPT_HELP,
};

static const cli_opt tail_opts[] = {
    {"config", 'c', true, OPT_CONFIG}, {"pbx", 0, true, OPT_PBX},
    {"json", 0, false, OPT_JSON},      {"demo", 0, false, OPT_DEMO},
    {"count", 0, true, OPT_COUNT},     {"log-level", 0, true, OPT_LOG_LEVEL},
    {"help", 'h', false, OPT_HELP},    {NULL, 0, false, 0},
};

static const cli_opt action_opts[] = {
    {"config", 'c', true, OPT_CONFIG},
    {"pbx", 0, true, OPT_PBX},
    {"json", 0, false, OPT_JSON},
    {"demo", 0, false, OPT_DEMO},
    {"list", 0, false, OPT_LIST},
    {"timeout", 0, true, OPT_TIMEOUT},
    {"log-level", 0, true, OPT_LOG_LEVEL},
    {"help", 'h', false, OPT_HELP},
    {NULL, 0, false, 0},
};

static void on_closed_noop(uv_handle_t *h)
{
    (void)h;
}

/* Ends the command: stops the clients and the simulator; uv_run then returns. */
static void finish(ami_cmd *x, int code)
{
    if (x->finished)
        return;
    x->finished = true;
    x->exit_code = code;
    fflush(stdout);
    for (size_t i = 0; i < x->nconns; i++) {
        if (x->conns[i].client) {
            ami_client_stop(x->conns[i].client);
            ami_client_free(x->conns[i].client);
            x->conns[i].client = NULL;
        }
    }
    app_demo_close(x->demo);
    x->demo = NULL;
    uv_close((uv_handle_t *)&x->deadline, on_closed_noop);
    uv_close((uv_handle_t *)&x->sig_int, on_closed_noop);
    uv_close((uv_handle_t *)&x->sig_term, on_closed_noop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    finish(h->data, CMD_OK);
}

static void on_deadline(uv_timer_t *t)
{
    ami_cmd *x = t->data;
    if (!x->sent) {
        fprintf(stderr, "%s: not logged in within %llu ms\n", x->cmd,
                (unsigned long long)x->login_ms);
        finish(x, CMD_CONNECT);
        return;
    }
    /* The client's own action timeout answers first; this is the backstop. */
    fprintf(stderr, "%s: no answer within %u ms\n", x->cmd, x->timeout_ms);
    finish(x, CMD_FAILED);
}

static void on_state(ami_client *c, ami_client_state st, const char *why, void *ud)
{
    tail_conn *tc = ud;
    ami_cmd *x = tc->x;
    if (x->finished || st != AMI_STATE_CONNECTING || strcmp(why, "connecting") == 0)
        return;
    /* An attempt failed. Before the first login that ends the command; afterwards (a tail that
     * lost its PBX) the client reconnects by itself. */
    if (!tc->ever_ready && !x->multi) {
        fprintf(stderr, "%s: pbx %s: %s\n", x->cmd, ami_client_name(c), why);
        finish(x, CMD_CONNECT);
    } else if (!tc->ever_ready) {
        fprintf(stderr, "%s: pbx %s: %s (retrying)\n", x->cmd, ami_client_name(c), why);
    } else {
        fprintf(stderr, "%s: pbx %s: connection lost (%s), reconnecting\n", x->cmd,
                ami_client_name(c), why);
    }
}

static void print_packet(ami_cmd *x, const ami_packet *p, const char *pbx)
{
    if (app_ami_packet_print(stdout, p, pbx, x->json) < 0 || fflush(stdout) == EOF)
        finish(x, CMD_OK); /* stdout closed (e.g. piped into head): nothing more to do */
}

static void on_event(ami_client *c, const ami_packet *ev, void *ud)
{
    tail_conn *tc = ud;
    ami_cmd *x = tc->x;
    if (!x->tail || x->finished)
        return;
    print_packet(x, ev, x->json || x->multi ? ami_client_name(c) : NULL);
    if (x->count_max && ++x->count >= x->count_max)
        finish(x, CMD_OK);
}

static const char *originate_reason(long long reason)
{
    switch (reason) {
    case 0:
        return "the channel could not be created or reached";
    case 1:
        return "hung up or rejected";
    case 3:
        return "rang, not answered";
    case 5:
        return "busy";
    case 8:
        return "congestion";
    default:
        return "failed";
    }
}

static void on_result(ami_client *c, const ami_result *r, void *ud)
{
    ami_cmd *x = ud;
    if (x->finished)
        return;
    const char *pbx = x->json ? ami_client_name(c) : NULL;
    if (r->response)
        print_packet(x, r->response, pbx);
    for (size_t i = 0; i < r->nitems && !x->finished; i++)
        print_packet(x, r->items[i], pbx);
    if (r->complete && !x->finished)
        print_packet(x, r->complete, pbx);
    if (r->status == 0) {
        finish(x, CMD_OK);
        return;
    }
    char msg[256] = "";
    if (r->complete && ami_packet_is(r->complete, "Event", "OriginateResponse")) {
        /* The action was queued; the call itself failed. Reason is the last control frame of
         * the dialled channel (reference/protocol-facts.md 1.9). */
        long long reason = -1;
        sb_slice_to_ll(ami_packet_value(r->complete, "Reason"), &reason);
        snprintf(msg, sizeof msg, "OriginateResponse: Failure, Reason %lld (%s)", reason,
                 originate_reason(reason));
    } else if (r->response) {
        sb_slice_copy(ami_packet_value(r->response, "Message"), msg, sizeof msg);
    }
    fprintf(stderr, "%s: %s: %s\n", x->cmd, x->action, msg[0] ? msg : sb_strerror(r->status));
    finish(x, r->status == SB_EDISCONN ? CMD_CONNECT : CMD_FAILED);
}

static void on_ready(ami_client *c, bool reconnected, void *ud)
{
    tail_conn *tc = ud;
    ami_cmd *x = tc->x;
    (void)reconnected;
    if (!tc->ever_ready)
        x->nready++;
    tc->ever_ready = true;
    if (x->finished)
        return;
    if (x->tail) {
        uv_timer_stop(&x->deadline); /* one PBX is up: the tail runs until interrupted */
        return;
    }
    if (x->sent)
        return;
    int rc = ami_client_send(c, &x->msg, x->kind, x->timeout_ms, on_result, x, NULL, 0);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot send the action: %s\n", x->cmd, sb_strerror(rc));
        finish(x, rc == SB_EINVAL ? CMD_USAGE : CMD_FAILED);
        return;
    }
    x->sent = true;
    /* Backstop a little after the client's own action timeout. */
    uv_timer_start(&x->deadline, on_deadline, (uint64_t)x->timeout_ms + 2000, 0);
}

static bool is_list_action(const char *name)
{
    for (size_t i = 0; list_actions[i]; i++) {
        if (strcasecmp(name, list_actions[i]) == 0)
            return true;
    }
    return false;
}

static bool is_true(const char *v)
{
    return strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0 ||
           strcasecmp(v, "on") == 0;
}

/* Creates and starts a client for p with x's callbacks. */
static int open_conn(ami_cmd *x, const sb_config_pbx *p, tail_conn *tc)
{
    ami_client_config cc;
    app_pbx_client_config(p, &cc);
    tc->x = x;
    ami_client_callbacks cbs = {
        .on_event = on_event, .on_state = on_state, .on_ready = on_ready, .ud = tc};
    int rc = ami_client_new(&x->loop, &cc, &cbs, &tc->client);
    if (rc == 0 && (rc = ami_client_start(tc->client)) < 0) {
        ami_client_free(tc->client);
        tc->client = NULL;
    }
    if (rc < 0)
        fprintf(stderr, "%s: pbx %s: %s\n", x->cmd, p->name, sb_strerror(rc));
    return rc;
}

/* Loads the configuration (or starts the demo). Returns CMD_OK or an exit code. */
static int load_config(ami_cmd *x, const char *path, bool demo)
{
    char err[512];
    if (demo) {
        x->cfg = sb_config_new_default();
        if (!x->cfg)
            return CMD_FAILED;
        if (app_demo_open(&x->loop, x->tail, &x->demo) < 0) {
            fprintf(stderr, "%s: cannot start the PBX simulator\n", x->cmd);
            return CMD_FAILED;
        }
        sb_config_pbx p;
        app_demo_pbx(x->demo, &p);
        return sb_config_add_pbx(x->cfg, &p) == 0 ? CMD_OK : CMD_FAILED;
    }
    const char *file = sb_app_find_config(path);
    if (!file) {
        fprintf(stderr,
                "%s: no configuration file (looked for $SWITCHBOARD_CONF, ./switchboard.conf, "
                "/etc/switchboard/switchboard.conf); use -c FILE or --demo\n",
                x->cmd);
        return CMD_USAGE;
    }
    if (sb_config_load(file, &x->cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", x->cmd, err);
        return CMD_USAGE;
    }
    if (x->cfg->npbx == 0) {
        fprintf(stderr, "%s: %s: no [pbx NAME] section (or use --demo)\n", x->cmd, file);
        return CMD_USAGE;
    }
    return CMD_OK;
}

static int run(int argc, char **argv, bool tail)
{
    ami_cmd x;
    cli_parser cp;
    const char *config = NULL, *pbx_name = NULL, *arg;
    const char *action = NULL;
    bool demo = false, force_list = false;
    int code = CMD_OK, opt;
    char **kv = NULL;
    size_t nkv = 0;
    sb_log_level lvl = SB_LOG_ERROR;
    bool logging = false;

    memset(&x, 0, sizeof x);
    x.tail = tail;
    x.cmd = tail ? "switchboard ami tail" : "switchboard ami action";
    x.timeout_ms = DEFAULT_TIMEOUT_MS;
    kv = calloc((size_t)argc, sizeof *kv);
    if (!kv)
        return CMD_FAILED;
    cli_init(&cp, argc, argv, 1, x.cmd, tail ? tail_opts : action_opts);
    while ((opt = cli_next(&cp, &arg)) != CLI_END) {
        switch (opt) {
        case CLI_ERROR:
            code = CMD_USAGE;
            goto out;
        case OPT_HELP:
            fputs(tail ? tail_help : action_help, stdout);
            goto out;
        case OPT_CONFIG:
            config = arg;
            break;
        case OPT_PBX:
            pbx_name = arg;
            break;
        case OPT_JSON:
            x.json = true;
            break;
        case OPT_DEMO:
            demo = true;
            break;
        case OPT_LIST:
            force_list = true;
            break;
        case OPT_COUNT: {
            char *end;
            long long n = strtoll(arg, &end, 10);
            if (*end || n <= 0) {
                code = cli_usage_error(x.cmd, "--count: '%s' is not a positive number", arg);
                goto out;
            }
            x.count_max = (uint64_t)n;
            break;
        }
        case OPT_TIMEOUT:
            if (sb_config_parse_duration(arg, &x.timeout_ms) < 0 || x.timeout_ms == 0) {
                code = cli_usage_error(x.cmd, "--timeout: '%s' is not a duration (e.g. 5s)", arg);
                goto out;
            }
            break;
        case OPT_LOG_LEVEL:
            if (sb_log_level_parse(arg, &lvl) < 0) {
                code = cli_usage_error(x.cmd,
                                       "--log-level: '%s' is not debug, info, warn or "
                                       "error",
                                       arg);
                goto out;
            }
            logging = true;
            break;
        case CLI_ARG:
            if (tail) {
                code = cli_usage_error(x.cmd, "unexpected argument '%s'", arg);
                goto out;
            }
            if (!action)
                x.action = action = arg;
            else
                kv[nkv++] = (char *)arg;
            break;
        }
    }
    if (!tail && !action) {
        code = cli_usage_error(x.cmd, "missing the action NAME");
        goto out;
    }
    /* Logging stays off unless asked for: stdout is for packets, stderr for the one line. */
    sb_log_setup(logging ? lvl : (sb_log_level)(SB_LOG_ERROR + 1), 0);

    if (!tail) {
        /* Build the action before connecting, so a bad argument never opens a connection. */
        ami_msg_init(&x.msg, "Action", action);
        x.msg_ready = true;
        bool async = false;
        for (size_t i = 0; i < nkv; i++) {
            char *eq = strchr(kv[i], '=');
            if (!eq || eq == kv[i]) {
                code = cli_usage_error(x.cmd, "argument '%s' is not Key=Value", kv[i]);
                goto out;
            }
            *eq = '\0';
            const char *k = kv[i], *v = eq + 1;
            if (strcasecmp(k, "ActionID") == 0 || strcasecmp(k, "Action") == 0) {
                code = cli_usage_error(x.cmd, "'%s' is set by switchboard itself", k);
                goto out;
            }
            if (strcasecmp(k, "Async") == 0 && is_true(v))
                async = true;
            ami_msg_add(&x.msg, k, v);
            if (x.msg.err) {
                code = cli_usage_error(x.cmd,
                                       "argument '%s': a key may not hold ':' and no part may "
                                       "hold CR or LF",
                                       k);
                goto out;
            }
        }
        x.kind = force_list || is_list_action(action)            ? AMI_ACTION_LIST
                 : async && strcasecmp(action, "Originate") == 0 ? AMI_ACTION_ORIGINATE
                                                                 : AMI_ACTION_SIMPLE;
    }

    if (uv_loop_init(&x.loop) < 0) {
        code = CMD_FAILED;
        goto out;
    }
    uv_timer_init(&x.loop, &x.deadline);
    uv_signal_init(&x.loop, &x.sig_int);
    uv_signal_init(&x.loop, &x.sig_term);
    x.deadline.data = x.sig_int.data = x.sig_term.data = &x;
    uv_signal_start(&x.sig_int, on_signal, SIGINT);
    uv_signal_start(&x.sig_term, on_signal, SIGTERM);

    code = load_config(&x, config, demo);
    if (code != CMD_OK)
        goto run_out;
    const sb_config_pbx *chosen = NULL;
    if (pbx_name) {
        chosen = sb_config_find_pbx(x.cfg, pbx_name);
        if (!chosen) {
            fprintf(stderr, "%s: no [pbx %s] in %s\n", x.cmd, pbx_name, x.cfg->path);
            code = CMD_USAGE;
            goto run_out;
        }
    }
    size_t n = chosen || !tail ? 1 : x.cfg->npbx;
    x.conns = calloc(n, sizeof *x.conns);
    if (!x.conns) {
        code = CMD_FAILED;
        goto run_out;
    }
    x.multi = n > 1;
    for (size_t i = 0; i < n; i++) {
        const sb_config_pbx *p = chosen ? chosen : &x.cfg->pbx[i];
        x.nconns++;
        if (open_conn(&x, p, &x.conns[i]) < 0) {
            code = CMD_CONNECT;
            goto run_out;
        }
        /* Login deadline: the connect timeout of the slowest PBX, and at least a few seconds. */
        uint64_t due = (uint64_t)p->connect_timeout_ms + 2000;
        if (due > x.login_ms) {
            x.login_ms = due;
            uv_timer_start(&x.deadline, on_deadline, due, 0);
        }
    }
    uv_run(&x.loop, UV_RUN_DEFAULT);
    code = x.exit_code;
    goto done;
run_out:
    finish(&x, code);
    uv_run(&x.loop, UV_RUN_DEFAULT);
done:
    if (uv_loop_close(&x.loop) < 0 && code == CMD_OK)
        code = CMD_FAILED;
out:
    if (x.msg_ready)
        ami_msg_free(&x.msg);
    free(x.conns);
    sb_config_free(x.cfg);
    free(kv);
    return code;
}

int cmd_ami(int argc, char **argv)
{
    if (argc < 2) {
        fputs(ami_help, stderr);
        return CMD_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(ami_help, stdout);
        return CMD_OK;
    }
    if (strcmp(argv[1], "tail") == 0)
        return run(argc - 1, argv + 1, true);
    if (strcmp(argv[1], "action") == 0)
        return run(argc - 1, argv + 1, false);
    return cli_usage_error("switchboard ami", "unknown command '%s' (tail, action)", argv[1]);
}
