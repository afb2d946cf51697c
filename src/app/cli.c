/* cli.c: the option parser of cli.h. */
#include "app/cli.h"

#include "app/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cli_init(cli_parser *p, int argc, char **argv, int first, const char *cmd, const cli_opt *opts)
{
    p->argc = argc;
    p->argv = argv;
    p->i = first;
    p->cmd = cmd;
    p->opts = opts;
    p->only_args = false;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try '%s --help')\n", cmd);
    return 2;
}

int cli_next(cli_parser *p, const char **arg)
{
    *arg = NULL;
    if (p->i >= p->argc)
        return CLI_END;
    const char *a = p->argv[p->i++];
    if (p->only_args || a[0] != '-' || a[1] == '\0') {
        *arg = a;
        return CLI_ARG;
    }
    if (strcmp(a, "--") == 0) {
        p->only_args = true;
        return cli_next(p, arg);
    }
    const cli_opt *o = NULL;
    const char *inline_val = NULL;
    if (a[1] == '-') {
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        for (const cli_opt *c = p->opts; c->name && !o; c++) {
            if (strlen(c->name) == n && strncmp(c->name, name, n) == 0)
                o = c;
        }
        if (o && eq)
            inline_val = eq + 1;
    } else if (a[2] == '\0') {
        for (const cli_opt *c = p->opts; c->name && !o; c++) {
            if (c->short_name && c->short_name == a[1])
                o = c;
        }
    }
    if (!o) {
        cli_usage_error(p->cmd, "unknown option '%s'", a);
        return CLI_ERROR;
    }
    if (!o->has_arg) {
        if (inline_val) {
            cli_usage_error(p->cmd, "option '--%s' takes no value", o->name);
            return CLI_ERROR;
        }
        return o->id;
    }
    if (inline_val) {
        *arg = inline_val;
        return o->id;
    }
    if (p->i >= p->argc) {
        cli_usage_error(p->cmd, "option '%s' needs a value", a);
        return CLI_ERROR;
    }
    *arg = p->argv[p->i++];
    return o->id;
}

const char *cli_store_path(const char *store, const char *config, const char *cmd, int *code)
{
    static char path[4096];
    char err[512];
    sb_config *cfg = NULL;
    *code = CMD_OK;
    if (store)
        return store;
    const char *file = sb_app_find_config(config);
    if (file && sb_config_load(file, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        *code = CMD_USAGE;
        return NULL;
    }
    snprintf(path, sizeof path, "%s", app_store_path(cfg)); /* the default without a file */
    sb_config_free(cfg);
    return path;
}
