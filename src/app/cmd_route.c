/* cmd_route.c: `switchboard route import|export|test|hash-pin`: route files in and out of the
 * store, a decision explained without a call, and PIN hashes for route files.
 */
#include "app/cli.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "routing/route.h"
#include "routing/store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const route_help =
    "usage: switchboard route COMMAND [OPTIONS]\n"
    "\n"
    "  import FILE             validate FILE and store it as the routes in use\n"
    "  export FILE             write the routes in use to FILE ('-': standard output)\n"
    "  test --from CALLER --to DIALED [--at TIME] [--pbx P] [--script NAME] [--file FILE]\n"
    "                          print the decision and why, without a call\n"
    "  hash-pin PIN            print the hash to put in a rule's `pin =` line\n"
    "\n"
    "  -c, --config FILE   configuration file (its [store] path; default ./switchboard.db)\n"
    "      --store PATH    the store file, overriding the configuration\n"
    "\n"
    "TIME: 2026-11-25T10:00 (in the route set's time zone), 2026-11-25T09:00Z or with +01:00.\n"
    "The file format: docs/routing.md. Exit status: 0 done, 1 no route / failure, 2 usage or "
    "invalid file.\n";

enum {
    OPT_CONFIG = 1,
    OPT_STORE,
    OPT_FROM,
    OPT_TO,
    OPT_AT,
    OPT_PBX,
    OPT_SCRIPT,
    OPT_FILE,
    OPT_HELP
};

static const cli_opt route_opts[] = {
    {"config", 'c', true, OPT_CONFIG}, {"store", 0, true, OPT_STORE},
    {"from", 0, true, OPT_FROM},       {"to", 0, true, OPT_TO},
    {"at", 0, true, OPT_AT},           {"pbx", 0, true, OPT_PBX},
    {"script", 0, true, OPT_SCRIPT},   {"file", 0, true, OPT_FILE},
    {"help", 'h', false, OPT_HELP},    {NULL, 0, false, 0},
};

typedef struct route_args {
    const char *config, *store, *from, *to, *at, *pbx, *script, *file;
    const char *pos[2];
    int npos;
} route_args;

/* Reads a whole file (at most 16 MiB); owned and NUL-terminated, or NULL. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    sb_buf b;
    char chunk[8192];
    size_t n;
    if (!f)
        return NULL;
    sb_buf_init(&b, 16u << 20);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (sb_buf_append(&b, chunk, n) < 0) {
            sb_buf_free(&b);
            break;
        }
    }
    bool bad = ferror(f) || (b.data == NULL && b.max == 0);
    if (f != stdin)
        fclose(f);
    if (bad) {
        sb_buf_free(&b);
        return NULL;
    }
    if (sb_buf_reserve(&b, 1) < 0) {
        sb_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    b.data[b.len] = 0;
    return sb_buf_steal(&b);
}

static int do_import(const route_args *a)
{
    static const char *cmd = "switchboard route import";
    int code;
    size_t len;
    char err[512];
    int64_t version;
    if (a->npos != 1)
        return cli_usage_error(cmd, "expected one FILE");
    const char *path = cli_store_path(a->store, a->config, cmd, &code);
    if (!path)
        return code;
    char *text = read_file(a->pos[0], &len);
    if (!text) {
        fprintf(stderr, "%s: cannot read %s\n", cmd, a->pos[0]);
        return CMD_USAGE;
    }
    int rc = route_store_import(path, text, len, a->pos[0], &version, err, sizeof err);
    free(text);
    if (rc == SB_EINVAL) {
        fprintf(stderr, "%s\n", err);
        return CMD_USAGE;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s (%s)\n", cmd, err[0] ? err : sb_strerror(rc), path);
        return CMD_FAILED;
    }
    printf("imported %s into %s as version %lld\n", a->pos[0], path, (long long)version);
    return CMD_OK;
}

static int load_db(const route_args *a, const char *cmd, route_db **db, int64_t *version)
{
    int code, rc;
    char err[512], *text = NULL;
    size_t len = 0;
    const char *src;
    *version = 0;
    if (a->file) {
        src = a->file;
        if (!(text = read_file(a->file, &len))) {
            fprintf(stderr, "%s: cannot read %s\n", cmd, a->file);
            return CMD_USAGE;
        }
    } else {
        src = cli_store_path(a->store, a->config, cmd, &code);
        if (!src)
            return code;
        rc = route_store_load(src, &text, &len, version);
        if (rc == SB_ENOTFOUND) {
            fprintf(stderr, "%s: no routes in %s (switchboard route import FILE)\n", cmd, src);
            return CMD_FAILED;
        }
        if (rc < 0) {
            fprintf(stderr, "%s: %s: %s\n", cmd, src, sb_strerror(rc));
            return CMD_FAILED;
        }
    }
    rc = route_db_parse(text, len, src, db, err, sizeof err);
    free(text);
    if (rc < 0) {
        fprintf(stderr, "%s\n", rc == SB_EINVAL ? err : sb_strerror(rc));
        return CMD_USAGE;
    }
    return CMD_OK;
}

static int do_export(const route_args *a)
{
    static const char *cmd = "switchboard route export";
    route_db *db = NULL;
    int64_t version;
    sb_buf out;
    if (a->npos != 1)
        return cli_usage_error(cmd, "expected one FILE ('-' for standard output)");
    int code = load_db(a, cmd, &db, &version);
    if (code != CMD_OK)
        return code;
    sb_buf_init(&out, 64u << 20);
    if (route_db_export(db, &out) < 0) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        code = CMD_FAILED;
        goto out;
    }
    FILE *f = strcmp(a->pos[0], "-") == 0 ? stdout : fopen(a->pos[0], "w");
    if (!f || fwrite(out.data, 1, out.len, f) != out.len) {
        fprintf(stderr, "%s: cannot write %s\n", cmd, a->pos[0]);
        code = CMD_FAILED;
    }
    if (f && f != stdout && fclose(f) != 0 && code == CMD_OK) {
        fprintf(stderr, "%s: cannot write %s\n", cmd, a->pos[0]);
        code = CMD_FAILED;
    }
    if (code == CMD_OK && f != stdout)
        fprintf(stderr, "exported version %lld to %s\n", (long long)version, a->pos[0]);
out:
    sb_buf_free(&out);
    route_db_free(db);
    return code;
}

/* "2026-11-25T10:00[:SS]" in tz, or with "Z" / "+HH:MM" / "-HH:MM". */
static int parse_at(const char *s, const char *tz, time_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec = 0, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d%n", &y, &mo, &d, &h, &mi, &used) != 5)
        return SB_EINVAL;
    const char *p = s + used;
    if (*p == ':') {
        int u2 = 0;
        if (sscanf(p, ":%2d%n", &sec, &u2) != 1)
            return SB_EINVAL;
        p += u2;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (*p == 'Z' && p[1] == 0) {
        *out = t;
        return 0;
    }
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = (p[1] - '0') * 10 + (p[2] - '0'), om = (p[4] - '0') * 10 + (p[5] - '0');
        long off = (oh * 60 + om) * 60L;
        *out = *p == '+' ? t - off : t + off;
        return 0;
    }
    if (*p)
        return SB_EINVAL;
    /* Local time in tz: subtract the offset, then correct once across a transition. */
    struct tm lt;
    if (route_tz_localtime(tz, t, &lt) < 0)
        return SB_EINVAL;
    time_t guess = t - lt.tm_gmtoff;
    if (route_tz_localtime(tz, guess, &lt) < 0)
        return SB_EINVAL;
    *out = t - lt.tm_gmtoff;
    return 0;
}

static void print_action(const route_db *db, const route_action *a, const route_vars *v, int depth)
{
    const char *app;
    sb_buf data;
    sb_buf_init(&data, 1 << 16);
    printf("%*s%s", depth * 2, "", a->text);
    if (route_action_app(a, v, &app, &data) == 0)
        printf("  =>  EXEC %s %s%s", app, data.data ? data.data : "",
               a->kind == ROUTE_ACT_PLAYBACK ? ", then HANGUP" : "");
    printf("\n");
    sb_buf_free(&data);
    if (a->kind == ROUTE_ACT_IVR && depth < 4) {
        const route_menu *m = route_db_menu(db, a->args[0]);
        printf("%*s  menu %s: prompt %s, %u s per try, %u retries\n", depth * 2, "", m->name,
               m->prompt, m->timeout_ms / 1000, m->retries);
        for (size_t i = 0; i < m->nentries; i++) {
            printf("%*s  digit %c: ", depth * 2, "", m->entries[i].digit);
            print_action(db, &m->entries[i].action, v, 0);
        }
    } else if (a->kind == ROUTE_ACT_CIDMAP) {
        const route_cidmap *m = route_db_cidmap(db, a->args[0]);
        const char *dest = route_cidmap_lookup(m, v->caller);
        bool hit = false;
        for (size_t i = 0; i < m->nmap; i++)
            hit |= sb_slice_eq(sb_slice_cstr(m->map[i].name), v->caller);
        if (!dest) {
            printf("%*s  caller %.*s not in map %s and no default: hang up\n", depth * 2, "",
                   (int)v->caller.len, v->caller.ptr, m->name);
        } else {
            sb_buf t;
            sb_buf_init(&t, 4096);
            route_vars v2 = *v;
            v2.dest = sb_slice_cstr(dest);
            route_expand(m->target, &v2, &t);
            printf("%*s  caller %.*s %s: extension %s  =>  EXEC Dial %s\n", depth * 2, "",
                   (int)v->caller.len, v->caller.ptr, hit ? "is in the map" : "uses the default",
                   dest, t.data ? t.data : "");
            sb_buf_free(&t);
        }
    }
}

static int do_test(const route_args *a)
{
    static const char *cmd = "switchboard route test";
    route_db *db = NULL;
    int64_t version;
    if (!a->from || !a->to)
        return cli_usage_error(cmd, "--from CALLER and --to DIALED are required");
    int code = load_db(a, cmd, &db, &version);
    if (code != CMD_OK)
        return code;
    const char *script = a->script ? a->script : "route";
    const route_set *set = route_db_set(db, sb_slice_cstr(script));
    if (!set) {
        fprintf(stderr, "%s: no [route %s] in the routes\n", cmd, script);
        code = CMD_FAILED;
        goto out;
    }
    time_t now = time(NULL);
    if (a->at && parse_at(a->at, set->tz, &now) < 0) {
        code = cli_usage_error(cmd, "--at: expected 2026-11-25T10:00, ...Z or ...+01:00");
        goto out;
    }
    struct tm lt;
    route_tz_localtime(set->tz, now, &lt);
    char when[64];
    strftime(when, sizeof when, "%a %Y-%m-%d %H:%M", &lt);
    printf("route set %s (%zu rules), from %s to %s, pbx %s, at %s %s\n", set->name, set->nrules,
           a->from, a->to, a->pbx ? a->pbx : "-", when, set->tz ? set->tz : "UTC");
    route_facts f = {sb_slice_cstr(a->to), sb_slice_cstr(a->from),
                     sb_slice_cstr(a->pbx ? a->pbx : ""), now};
    route_decision d;
    sb_buf trace;
    sb_buf_init(&trace, 16u << 20);
    int rc = route_decide(set, &f, &d, &trace);
    printf("rules in Asterisk's order:\n%s", trace.data ? trace.data : "");
    sb_buf_free(&trace);
    if (rc < 0) {
        printf("decision: no rule matches %s: the call is handed back to the dialplan\n", a->to);
        code = CMD_FAILED;
        goto out;
    }
    const route_rule *r = d.rule;
    printf("decision: rule %s (match %s, line %d)%s\n", r->name, route_pattern_text(r->match),
           r->line, d.is_closed ? ", CLOSED now" : "");
    for (size_t i = 0; i < r->nset; i++)
        printf("  set %s=%s\n", r->set[i].name, r->set[i].value);
    if (d.is_denied)
        printf("  caller %s is not allowed and the rule has no PIN: hang up\n", a->from);
    if (d.needs_pin)
        printf("  caller %s is not allowed: PIN asked (%u tries, prompt %s)\n", a->from,
               set->pin_tries, set->pin_prompt);
    route_vars v = {sb_slice_cstr(a->to), sb_slice_cstr(a->from), sb_slice_cstr(""),
                    sb_slice_cstr("")};
    printf("  action: ");
    print_action(db, d.action, &v, 0);
    if (d.action->kind == ROUTE_ACT_DECIDE) {
        printf("  on timeout (%u ms), error or garbage: ", d.action->timeout_ms);
        if (r->fallback.kind)
            print_action(db, &r->fallback, &v, 0);
        else
            printf("hangup\n");
    }
out:
    route_db_free(db);
    return code;
}

static int do_hash_pin(const route_args *a)
{
    static const char *cmd = "switchboard route hash-pin";
    char hash[crypto_pwhash_STRBYTES];
    if (a->npos != 1)
        return cli_usage_error(cmd, "expected one PIN");
    const char *pin = a->pos[0];
    size_t n = strlen(pin);
    if (n == 0 || n > 32 || strspn(pin, "0123456789") != n)
        return cli_usage_error(cmd, "a PIN is 1 to 32 digits");
    if (sodium_init() < 0 || crypto_pwhash_str_alg(hash, pin, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                                   crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                                   crypto_pwhash_ALG_ARGON2ID13) != 0) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        return CMD_FAILED;
    }
    printf("%s\n", hash);
    return CMD_OK;
}

int cmd_route(int argc, char **argv)
{
    static const char *cmd = "switchboard route";
    cli_parser cp;
    const char *arg, *sub = NULL;
    route_args a = {0};
    int opt;
    cli_init(&cp, argc, argv, 1, cmd, route_opts);
    while ((opt = cli_next(&cp, &arg)) != CLI_END) {
        switch (opt) {
        case CLI_ERROR:
            return CMD_USAGE;
        case CLI_ARG:
            if (!sub)
                sub = arg;
            else if (a.npos < 2)
                a.pos[a.npos++] = arg;
            else
                return cli_usage_error(cmd, "unexpected argument '%s'", arg);
            break;
        case OPT_HELP:
            fputs(route_help, stdout);
            return CMD_OK;
        case OPT_CONFIG:
            a.config = arg;
            break;
        case OPT_STORE:
            a.store = arg;
            break;
        case OPT_FROM:
            a.from = arg;
            break;
        case OPT_TO:
            a.to = arg;
            break;
        case OPT_AT:
            a.at = arg;
            break;
        case OPT_PBX:
            a.pbx = arg;
            break;
        case OPT_SCRIPT:
            a.script = arg;
            break;
        case OPT_FILE:
            a.file = arg;
            break;
        }
    }
    if (!sub)
        return cli_usage_error(cmd, "expected import, export, test or hash-pin");
    if (strcmp(sub, "import") == 0)
        return do_import(&a);
    if (strcmp(sub, "export") == 0)
        return do_export(&a);
    if (strcmp(sub, "test") == 0)
        return do_test(&a);
    if (strcmp(sub, "hash-pin") == 0)
        return do_hash_pin(&a);
    return cli_usage_error(cmd, "unknown subcommand '%s'", sub);
}
