/* cmd_serve.c: `switchboard serve`, the daemon: options, then main.c's subsystem table run by
 * sb_app_run() (app.h). */
#include "app/cli.h"

#include "core/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char *const serve_help =
    "usage: switchboard serve [-c FILE] [--demo] [--log-level L] [--log-json]\n"
    "\n"
    "Runs the daemon: connects to every [pbx NAME] of the configuration, keeps the live call\n"
    "model, serves the HTTP API (default http://127.0.0.1:8080/v1, [http] bind and port; tokens\n"
    "from `switchboard token create`), reloads the configuration on SIGHUP and stops cleanly on\n"
    "SIGTERM or SIGINT. The store is [store] path (default ./switchboard.db).\n"
    "\n"
    "  -c, --config FILE   configuration file (default: $SWITCHBOARD_CONF, ./switchboard.conf,\n"
    "                      /etc/switchboard/switchboard.conf; none: defaults)\n"
    "  --demo              start the built-in PBX simulator beside the daemon and play calls\n"
    "                      (also done when no [pbx] is configured)\n"
    "  --log-level L       debug, info, warn or error (overrides [general] log_level)\n"
    "  --log-json          one JSON object per log line (overrides [general] log_format)\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit status: 0 after a clean stop, 1 when start-up failed.\n";

enum { OPT_CONFIG = 1, OPT_DEMO, OPT_LOG_LEVEL, OPT_LOG_JSON, OPT_HELP };

static const cli_opt serve_opts[] = {
    {"config", 'c', true, OPT_CONFIG},     {"demo", 0, false, OPT_DEMO},
    {"log-level", 0, true, OPT_LOG_LEVEL}, {"log-json", 0, false, OPT_LOG_JSON},
    {"help", 'h', false, OPT_HELP},        {NULL, 0, false, 0},
};

int cmd_serve(int argc, char **argv, const sb_subsystem *table, size_t ntable)
{
    static const char *cmd = "switchboard serve";
    sb_app app;
    uv_loop_t loop;
    cli_parser cp;
    const char *arg;
    int opt;

    memset(&app, 0, sizeof app);
    cli_init(&cp, argc, argv, 1, cmd, serve_opts);
    while ((opt = cli_next(&cp, &arg)) != CLI_END) {
        switch (opt) {
        case CLI_ERROR:
            return CMD_USAGE;
        case CLI_ARG:
            return cli_usage_error(cmd, "unexpected argument '%s'", arg);
        case OPT_HELP:
            fputs(serve_help, stdout);
            return CMD_OK;
        case OPT_CONFIG:
            app.opt.config_path = arg;
            break;
        case OPT_DEMO:
            app.opt.demo = true;
            break;
        case OPT_LOG_LEVEL:
            if (sb_log_level_parse(arg, &app.opt.log_level) < 0)
                return cli_usage_error(cmd, "--log-level: '%s' is not debug, info, warn or error",
                                       arg);
            app.opt.has_log_level = true;
            break;
        case OPT_LOG_JSON:
            app.opt.log_json = true;
            break;
        }
    }
    /* Until [general] is read, log with what the command line says. */
    sb_log_setup(app.opt.has_log_level ? app.opt.log_level : SB_LOG_INFO, app.opt.log_json);
    if (uv_loop_init(&loop) < 0) {
        fprintf(stderr, "%s: cannot create the event loop\n", cmd);
        return 1;
    }
    app.loop = &loop;
    return sb_app_run(&app, table, ntable);
}
