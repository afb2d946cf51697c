/* cmd_config.c: `switchboard config check` and `switchboard version`. */
#include "app/cli.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

static const char *const config_help =
    "usage: switchboard config check [-c FILE]\n"
    "\n"
    "Reads and checks the configuration file and prints a summary, secrets masked.\n"
    "\n"
    "  -c, --config FILE   configuration file (default: $SWITCHBOARD_CONF, ./switchboard.conf,\n"
    "                      /etc/switchboard/switchboard.conf)\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit status: 0 valid, 2 invalid (one line names file:line, section and key).\n";

enum { OPT_CONFIG = 1, OPT_HELP };

static const cli_opt check_opts[] = {
    {"config", 'c', true, OPT_CONFIG},
    {"help", 'h', false, OPT_HELP},
    {NULL, 0, false, 0},
};

static int config_check(int argc, char **argv)
{
    static const char *cmd = "switchboard config check";
    cli_parser cp;
    const char *arg, *path = NULL;
    char err[512];
    int opt, code = CMD_OK;
    sb_config *cfg = NULL;
    sb_buf out;

    cli_init(&cp, argc, argv, 1, cmd, check_opts);
    while ((opt = cli_next(&cp, &arg)) != CLI_END) {
        switch (opt) {
        case CLI_ERROR:
            return CMD_USAGE;
        case CLI_ARG:
            return cli_usage_error(cmd, "unexpected argument '%s'", arg);
        case OPT_HELP:
            fputs(config_help, stdout);
            return CMD_OK;
        case OPT_CONFIG:
            path = arg;
            break;
        }
    }
    const char *file = sb_app_find_config(path);
    if (!file) {
        fprintf(stderr,
                "%s: no configuration file (looked for $SWITCHBOARD_CONF, ./switchboard.conf, "
                "/etc/switchboard/switchboard.conf); use -c FILE\n",
                cmd);
        return CMD_USAGE;
    }
    if (sb_config_load(file, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return CMD_USAGE;
    }
    sb_buf_init(&out, 1 << 20);
    if (sb_config_describe(cfg, &out) < 0) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        code = 1;
        goto out;
    }
    fputs(out.data, stdout);
    printf("configuration OK\n");
out:
    sb_buf_free(&out);
    sb_config_free(cfg);
    return code;
}

int cmd_config(int argc, char **argv)
{
    static const char *const help = "usage: switchboard config check [-c FILE]\n";
    if (argc < 2) {
        fputs(help, stderr);
        return CMD_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(config_help, stdout);
        return CMD_OK;
    }
    if (strcmp(argv[1], "check") == 0)
        return config_check(argc - 1, argv + 1);
    return cli_usage_error("switchboard config", "unknown command '%s' (check)", argv[1]);
}

int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: switchboard version\n\nPrints the version and those of the libraries.\n");
        return CMD_OK;
    }
    if (argc > 1)
        return cli_usage_error("switchboard version", "unexpected argument '%s'", argv[1]);
    printf("switchboard %s (libuv %s, jansson %s)\n", SB_VERSION, uv_version_string(),
           JANSSON_VERSION);
    return CMD_OK;
}
