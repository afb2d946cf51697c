/* cmd_token.c: `switchboard token create|list|revoke`: the HTTP API's bearer tokens in the store
 * (src/api/tokens.h; roles in docs/api.md). A token is printed once, at creation: the store
 * keeps only its hash. */
#include "api/tokens.h"
#include "app/cli.h"
#include "app/core.h"

#include "core/config.h"
#include "core/error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const token_help =
    "usage: switchboard token COMMAND [OPTIONS]\n"
    "\n"
    "  create --role ROLE [--extension EXT] [--name NAME]\n"
    "                      create a token and print it (once: only its hash is stored)\n"
    "                      ROLE: admin, supervisor, agent (needs --extension) or service\n"
    "  list [--all]        list the tokens (id, role, extension, name, created; --all: revoked\n"
    "                      ones too); never the tokens themselves\n"
    "  revoke ID           revoke token ID (the daemon refuses it within a second)\n"
    "\n"
    "  -c, --config FILE   configuration file (its [store] path; default ./switchboard.db)\n"
    "      --store PATH    the store file, overriding the configuration\n"
    "      --json          list: one JSON object per line\n"
    "\n"
    "Exit status: 0 done, 1 failure (no such token, store error), 2 usage.\n";

enum { OPT_CONFIG = 1, OPT_STORE, OPT_ROLE, OPT_EXT, OPT_NAME, OPT_ALL, OPT_JSON, OPT_HELP };

static const cli_opt token_opts[] = {
    {"config", 'c', true, OPT_CONFIG}, {"store", 0, true, OPT_STORE},  {"role", 0, true, OPT_ROLE},
    {"extension", 0, true, OPT_EXT},   {"name", 0, true, OPT_NAME},    {"all", 0, false, OPT_ALL},
    {"json", 0, false, OPT_JSON},      {"help", 'h', false, OPT_HELP}, {NULL, 0, false, 0},
};

typedef struct token_args {
    const char *config, *store, *role, *ext, *name;
    bool all, json;
    const char *pos[2];
    int npos;
} token_args;

static int do_create(const token_args *a)
{
    static const char *cmd = "switchboard token create";
    char token[API_TOKEN_TEXT], err[256];
    int64_t id = 0;
    int code;
    if (!a->role)
        return cli_usage_error(cmd, "--role is required (admin, supervisor, agent, service)");
    if (a->npos > 1)
        return cli_usage_error(cmd, "unexpected argument '%s'", a->pos[1]);
    const char *path = cli_store_path(a->store, a->config, cmd, &code);
    if (!path)
        return code;
    int rc = api_token_create(path, a->role, a->ext, a->name, token, &id, err, sizeof err);
    if (rc == SB_EINVAL)
        return cli_usage_error(cmd, "%s", err);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return CMD_FAILED;
    }
    printf("%s\n", token);
    fprintf(stderr, "token %lld created (role %s%s%s); it is shown only this once\n", (long long)id,
            a->role, a->ext ? ", extension " : "", a->ext ? a->ext : "");
    return CMD_OK;
}

static void fmt_time(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int print_row(const api_token_row *r, void *ud)
{
    const token_args *a = ud;
    char created[32], revoked[32] = "";
    fmt_time(r->created_ms, created, sizeof created);
    if (r->revoked_ms)
        fmt_time(r->revoked_ms, revoked, sizeof revoked);
    if (a->json) {
        json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s?}", "id", (json_int_t)r->id, "role",
                              r->role, "extension", r->extension, "name", r->name, "created",
                              created, "revoked", r->revoked_ms ? revoked : NULL);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
        return 0;
    }
    printf("%-6lld %-10s %-10s %-24s %s%s%s\n", (long long)r->id, r->role,
           r->extension[0] ? r->extension : "-", r->name[0] ? r->name : "-", created,
           r->revoked_ms ? "  revoked " : "", revoked);
    return 0;
}

static int do_list(const token_args *a)
{
    static const char *cmd = "switchboard token list";
    int code;
    if (a->npos > 1)
        return cli_usage_error(cmd, "unexpected argument '%s'", a->pos[1]);
    const char *path = cli_store_path(a->store, a->config, cmd, &code);
    if (!path)
        return code;
    if (!a->json)
        printf("%-6s %-10s %-10s %-24s %s\n", "ID", "ROLE", "EXTENSION", "NAME", "CREATED");
    int rc = api_token_list(path, a->all, print_row, (void *)a);
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", cmd, path, sb_strerror(rc));
        return CMD_FAILED;
    }
    return CMD_OK;
}

static int do_revoke(const token_args *a)
{
    static const char *cmd = "switchboard token revoke";
    int code;
    char *end = NULL;
    if (a->npos != 2)
        return cli_usage_error(cmd, "give the ID of the token to revoke (see token list)");
    long long id = strtoll(a->pos[1], &end, 10);
    if (!*a->pos[1] || *end || id <= 0)
        return cli_usage_error(cmd, "'%s' is not a token ID", a->pos[1]);
    const char *path = cli_store_path(a->store, a->config, cmd, &code);
    if (!path)
        return code;
    int rc = api_token_revoke(path, id);
    if (rc == SB_ENOTFOUND) {
        fprintf(stderr, "%s: no active token %lld\n", cmd, id);
        return CMD_FAILED;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", cmd, path, sb_strerror(rc));
        return CMD_FAILED;
    }
    fprintf(stderr, "token %lld revoked\n", id);
    return CMD_OK;
}

int cmd_token(int argc, char **argv)
{
    static const char *cmd = "switchboard token";
    token_args a;
    cli_parser cp;
    const char *arg;
    int opt;
    memset(&a, 0, sizeof a);
    cli_init(&cp, argc, argv, 1, cmd, token_opts);
    while ((opt = cli_next(&cp, &arg)) != CLI_END) {
        switch (opt) {
        case CLI_ERROR:
            return CMD_USAGE;
        case CLI_ARG:
            if (a.npos == 2)
                return cli_usage_error(cmd, "unexpected argument '%s'", arg);
            a.pos[a.npos++] = arg;
            break;
        case OPT_HELP:
            fputs(token_help, stdout);
            return CMD_OK;
        case OPT_CONFIG:
            a.config = arg;
            break;
        case OPT_STORE:
            a.store = arg;
            break;
        case OPT_ROLE:
            a.role = arg;
            break;
        case OPT_EXT:
            a.ext = arg;
            break;
        case OPT_NAME:
            a.name = arg;
            break;
        case OPT_ALL:
            a.all = true;
            break;
        case OPT_JSON:
            a.json = true;
            break;
        }
    }
    if (a.npos == 0)
        return cli_usage_error(cmd, "missing command: create, list or revoke");
    if (strcmp(a.pos[0], "create") == 0)
        return do_create(&a);
    if (strcmp(a.pos[0], "list") == 0)
        return do_list(&a);
    if (strcmp(a.pos[0], "revoke") == 0)
        return do_revoke(&a);
    return cli_usage_error(cmd, "unknown command '%s' (create, list, revoke)", a.pos[0]);
}
