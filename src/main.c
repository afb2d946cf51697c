/* main.c: the switchboard program: command dispatch, and the daemon's subsystem table.
 *
 * THE TABLE below is the daemon's whole start-up and shutdown order: `serve` runs init then start
 * top to bottom, and on SIGTERM stop then free bottom to top (app.h states the contract of each
 * call). A new module adds one line in its place; nothing else needs to know about it.
 */
#include "api/streams_app.h"
#include "app/app.h"
#include "app/cli.h"
#include "app/core.h"
#include "app/delivery.h"
#include "app/demo.h"
#include "app/pbx.h"
#include "app/routing.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const sb_subsystem subsystems[] = {
    /* name      init             start              stop              free             reload */
    {"config", app_config_init, NULL, NULL, app_config_free, NULL},
    {"log", app_log_init, NULL, NULL, NULL, app_log_reload},
    {"store", app_store_init, NULL, NULL, app_store_free, NULL},
    {"bus", app_bus_init, app_bus_start, app_bus_stop, app_bus_free, NULL},
    {"model", app_model_init, NULL, NULL, app_model_free, NULL},
    /* delivery: outbox + sinks, subscribed to the bus before any PBX produces events */
    {"delivery", app_delivery_init, app_delivery_start, app_delivery_stop, app_delivery_free, NULL},
    {"demo", app_demo_init, app_demo_start, app_demo_stop, NULL, app_demo_reload},
    {"ami", app_ami_init, app_ami_start, app_ami_stop, app_ami_free, app_ami_reload},
    {"agi", app_routing_init, app_routing_start, app_routing_stop, app_routing_free,
     app_routing_reload},
    /* http: REST API (src/api) and the server; streams add their routes after it */
    {"http", app_http_init, app_http_start, app_http_stop, app_http_free, app_http_reload},
    {"streams", app_streams_init, NULL, app_streams_stop, app_streams_free, NULL},
    /* later: crm, dialer */
    {"signals", NULL, app_signals_start, app_signals_stop, NULL, NULL},
};

static const char *const usage =
    "usage: switchboard COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  serve                     run the daemon (switchboard serve --help)\n"
    "  ami tail                  print every AMI event\n"
    "  ami action NAME [K=V ...] send one AMI action and print the answer\n"
    "  config check              check the configuration file, print a summary\n"
    "  route import|export|test  route files in the store; explain a decision\n"
    "  token create|list|revoke  bearer tokens of the HTTP API\n"
    "  outbox status|retry|replay  durable delivery: sink cursors, dead letters\n"
    "  version                   print the version\n"
    "\n"
    "Every command takes --help. Documentation: docs/cli.md, docs/configuration.md.\n";

int main(int argc, char **argv)
{
    /* A peer that closes while we write must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fputs(usage, stderr);
        return CMD_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return CMD_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1, subsystems, sizeof subsystems / sizeof subsystems[0]);
    if (strcmp(cmd, "ami") == 0)
        return cmd_ami(argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(cmd, "route") == 0)
        return cmd_route(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - 1, argv + 1);
    if (strcmp(cmd, "outbox") == 0)
        return cmd_outbox(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return cli_usage_error("switchboard", "unknown option '%s'", cmd);
    return cli_usage_error("switchboard", "unknown command '%s'", cmd);
}
