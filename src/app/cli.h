/* cli.h: the command line's small option parser and the commands main.c dispatches to.
 *
 * Options are "--name VALUE", "--name=VALUE" or "-x VALUE"; "--" ends them; anything else is a
 * positional argument, wherever it stands. A problem is reported as ONE line on stderr naming the
 * command and the option, with the exit code CMD_USAGE.
 */
#ifndef SB_APP_CLI_H
#define SB_APP_CLI_H

#include "app/app.h"

#include <stdbool.h>
#include <stddef.h>

/* Process exit codes of every command (docs/cli.md). */
enum {
    CMD_OK = 0,      /* done; for `ami action`, Response: Success */
    CMD_FAILED = 1,  /* the PBX answered Error, denied it, or it timed out */
    CMD_USAGE = 2,   /* bad command line or bad configuration */
    CMD_CONNECT = 3, /* could not connect to or log in to the PBX */
};

typedef struct cli_opt {
    const char *name; /* long name without "--" */
    char short_name;  /* or 0 */
    bool has_arg;
    int id; /* returned by cli_next(); must be > 0 */
} cli_opt;

enum { CLI_END = 0, CLI_ARG = -1, CLI_ERROR = -2 };

typedef struct cli_parser {
    int argc;
    char **argv;
    int i;
    const char *cmd;     /* "switchboard serve": names the command in messages */
    const cli_opt *opts; /* terminated by an entry with name NULL */
    bool only_args;      /* after "--" */
} cli_parser;

/* Prepares p over argv[first..argc) (borrowed). */
void cli_init(cli_parser *p, int argc, char **argv, int first, const char *cmd,
              const cli_opt *opts);
/* Next item: an option id (with *arg its value, or NULL), CLI_ARG (*arg the argument), CLI_END, or
 * CLI_ERROR after printing one line to stderr. */
int cli_next(cli_parser *p, const char **arg);
/* Prints one line "CMD: message (try 'CMD --help')" to stderr; returns CMD_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The store a command works on: store (its --store) when given, else the [store] path of the
 * configuration (config: its --config, or the usual places, sb_app_find_config), else the
 * default. Returns a path valid until the next call, or NULL after printing "CMD: problem" to
 * stderr with *code = CMD_USAGE (a configuration that does not load). */
const char *cli_store_path(const char *store, const char *config, const char *cmd, int *code);

/* The commands (argv[0] is the command's own name, e.g. "serve"). */
int cmd_serve(int argc, char **argv, const sb_subsystem *table, size_t ntable);
int cmd_ami(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_route(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_outbox(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
