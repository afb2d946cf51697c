/* config.c: loading and checking switchboard.conf (see config.h and docs/configuration.md).
 *
 * libinih does the INI syntax. Debian's build calls the handler without a line number and never
 * for an empty section, so the file is fed to ini_parse_stream() through our own line reader: it
 * counts lines, rejects lines longer than inih's fixed 200-byte buffer (inih would silently cut
 * them), and sees every section header before inih does, so sections are opened and checked here
 * with their line number even when they hold no keys.
 */
#include "core/config.h"

#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Defaults of a [pbx] section (also documented in docs/configuration.md). */
#define PBX_DEFAULT_PORT 5038
#define PBX_DEFAULT_PING_MS 10000
#define PBX_DEFAULT_STALL_MS 30000
#define PBX_DEFAULT_RECONNECT_MIN_MS 500
#define PBX_DEFAULT_RECONNECT_MAX_MS 30000
#define PBX_DEFAULT_ACTION_MS 10000
#define PBX_DEFAULT_CONNECT_MS 5000
#define MAX_FILTERS 64
#define MAX_SECTION_KEYS 256

typedef enum sec_kind { SEC_NONE, SEC_GENERAL, SEC_PBX, SEC_KEPT } sec_kind;

/* Sections kept for later modules: kind, and whether it takes a NAME. */
static const struct {
    const char *kind;
    bool named;
} kept_sections[] = {
    {"http", false},    {"agi", false},    {"store", false},   {"sink", true},
    {"hubspot", false}, {"dialer", false}, {"streams", false},
};

static const char *const event_classes[] = {
    "system", "call", "log",       "verbose",  "command",  "agent",     "user",
    "config", "dtmf", "reporting", "cdr",      "dialplan", "originate", "agi",
    "cc",     "aoc",  "test",      "security", "message",  "all",
};

/* Bit per non-repeatable key of a [pbx] section, to catch duplicates. */
typedef struct pbx_seen {
    int line[16];
} pbx_seen;

typedef struct parse_ctx {
    sb_config *cfg;
    const char *fname;
    const char *text;
    size_t len, pos;
    int line;                             /* number of the line last handed to inih */
    sec_kind kind;                        /* section being read */
    char section[SB_CONFIG_MAX_LINE + 1]; /* its header text for messages: "pbx main" */
    int section_line;
    sb_config_pbx *pbx; /* when kind == SEC_PBX */
    pbx_seen seen;
    sb_config_section *kept; /* when kind == SEC_KEPT */
    int general_seen[2];
    int err; /* first error (0 = none) */
    int err_line;
    char *errbuf;
    size_t errsize;
} parse_ctx;

static void set_err(parse_ctx *x, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Keeps the first error only: later ones are usually consequences of it. */
static void set_err(parse_ctx *x, int line, int code, const char *fmt, ...)
{
    va_list ap;
    if (x->err)
        return;
    x->err = code;
    x->err_line = line;
    if (!x->errbuf || x->errsize == 0)
        return;
    int n = snprintf(x->errbuf, x->errsize, "%s:%d: ", x->fname, line);
    if (n < 0 || (size_t)n >= x->errsize)
        return;
    va_start(ap, fmt);
    vsnprintf(x->errbuf + n, x->errsize - (size_t)n, fmt, ap);
    va_end(ap);
    /* Quoted input may hold control characters (a stray CR, an escape sequence): the message
     * stays one printable line. */
    for (char *p = x->errbuf; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    size_t i = 0;
    while (s[i] && isspace((unsigned char)s[i]))
        i++;
    if (i)
        memmove(s, s + i, n - i + 1);
}

static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    }
    return true;
}

int sb_config_parse_duration(const char *s, uint32_t *ms)
{
    char *end;
    unsigned long long mult = 1000;
    if (!s || !isdigit((unsigned char)*s))
        return SB_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return SB_EINVAL;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return SB_EINVAL;
    if (v > UINT32_MAX / mult)
        return SB_EINVAL;
    *ms = (uint32_t)(v * mult);
    return 0;
}

void sb_config_pbx_defaults(sb_config_pbx *p)
{
    memset(p, 0, sizeof *p);
    p->host = (char *)"127.0.0.1";
    p->port = PBX_DEFAULT_PORT;
    p->events = (char *)"on";
    p->ping_interval_ms = PBX_DEFAULT_PING_MS;
    p->stall_timeout_ms = PBX_DEFAULT_STALL_MS;
    p->reconnect_min_ms = PBX_DEFAULT_RECONNECT_MIN_MS;
    p->reconnect_max_ms = PBX_DEFAULT_RECONNECT_MAX_MS;
    p->action_timeout_ms = PBX_DEFAULT_ACTION_MS;
    p->connect_timeout_ms = PBX_DEFAULT_CONNECT_MS;
}

static void pbx_free_fields(sb_config_pbx *p)
{
    free(p->name);
    free(p->host);
    free(p->username);
    if (p->secret) {
        /* Do not leave the secret lying in freed heap memory. */
        volatile char *v = p->secret;
        for (size_t i = 0; v[i]; i++)
            v[i] = 0;
    }
    free(p->secret);
    free(p->secret_ref);
    free(p->events);
    for (size_t i = 0; i < p->nfilters; i++)
        free(p->filters[i]);
    free(p->filters);
}

static void section_free_fields(sb_config_section *s)
{
    free(s->kind);
    free(s->name);
    for (size_t i = 0; i < s->nkv; i++) {
        free(s->kv[i].key);
        free(s->kv[i].value);
    }
    free(s->kv);
}

void sb_config_free(sb_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->npbx; i++)
        pbx_free_fields(&cfg->pbx[i]);
    free(cfg->pbx);
    for (size_t i = 0; i < cfg->nsections; i++)
        section_free_fields(&cfg->sections[i]);
    free(cfg->sections);
    free(cfg->path);
    free(cfg);
}

sb_config *sb_config_new_default(void)
{
    sb_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->log_level = SB_LOG_INFO;
    return cfg;
}

const sb_config_pbx *sb_config_find_pbx(const sb_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npbx; i++) {
        if (strcmp(cfg->pbx[i].name, name) == 0)
            return &cfg->pbx[i];
    }
    return NULL;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool sb_config_pbx_equal(const sb_config_pbx *a, const sb_config_pbx *b)
{
    if (!str_eq(a->name, b->name) || !str_eq(a->host, b->host) || a->port != b->port ||
        !str_eq(a->username, b->username) || !str_eq(a->secret, b->secret) || a->md5 != b->md5 ||
        !str_eq(a->events, b->events) || a->nfilters != b->nfilters ||
        a->ping_interval_ms != b->ping_interval_ms || a->stall_timeout_ms != b->stall_timeout_ms ||
        a->reconnect_min_ms != b->reconnect_min_ms || a->reconnect_max_ms != b->reconnect_max_ms ||
        a->action_timeout_ms != b->action_timeout_ms ||
        a->connect_timeout_ms != b->connect_timeout_ms)
        return false;
    for (size_t i = 0; i < a->nfilters; i++) {
        if (!str_eq(a->filters[i], b->filters[i]))
            return false;
    }
    return true;
}

/* Deep copy of p into dst (dst's old contents are not freed). */
static int pbx_copy(sb_config_pbx *dst, const sb_config_pbx *p)
{
    *dst = *p;
    dst->name = xstrdup(p->name);
    dst->host = xstrdup(p->host);
    dst->username = xstrdup(p->username);
    dst->secret = xstrdup(p->secret);
    dst->secret_ref = xstrdup(p->secret_ref);
    dst->events = xstrdup(p->events);
    dst->filters = p->nfilters ? calloc(p->nfilters, sizeof *dst->filters) : NULL;
    bool bad = (p->name && !dst->name) || (p->host && !dst->host) ||
               (p->username && !dst->username) || (p->secret && !dst->secret) ||
               (p->secret_ref && !dst->secret_ref) || (p->events && !dst->events) ||
               (p->nfilters && !dst->filters);
    for (size_t i = 0; !bad && i < p->nfilters; i++) {
        dst->filters[i] = strdup(p->filters[i]);
        bad = !dst->filters[i];
    }
    if (bad) {
        pbx_free_fields(dst);
        memset(dst, 0, sizeof *dst);
        return SB_ENOMEM;
    }
    return 0;
}

int sb_config_add_pbx(sb_config *cfg, const sb_config_pbx *p)
{
    if (sb_config_find_pbx(cfg, p->name))
        return SB_EEXIST;
    sb_config_pbx *n = realloc(cfg->pbx, (cfg->npbx + 1) * sizeof *n);
    if (!n)
        return SB_ENOMEM;
    cfg->pbx = n;
    int rc = pbx_copy(&cfg->pbx[cfg->npbx], p);
    if (rc == 0)
        cfg->npbx++;
    return rc;
}

const sb_config_section *sb_config_section_find(const sb_config *cfg, const char *kind,
                                                const char *name)
{
    for (size_t i = 0; i < cfg->nsections; i++) {
        const sb_config_section *s = &cfg->sections[i];
        if (strcmp(s->kind, kind) == 0 && str_eq(s->name, name))
            return s;
    }
    return NULL;
}

const char *sb_config_section_get(const sb_config_section *s, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; s && i < s->nkv; i++) {
        if (strcasecmp(s->kv[i].key, key) == 0)
            v = s->kv[i].value;
    }
    return v;
}

/* ---- section headers (seen by the reader) ---- */

static int finish_pbx(parse_ctx *x);

/* Closes the section being read: a [pbx] section is checked here, at the end of its lines. */
static void section_end(parse_ctx *x)
{
    if (x->kind == SEC_PBX)
        finish_pbx(x);
    x->kind = SEC_NONE;
    x->pbx = NULL;
    x->kept = NULL;
}

static void section_begin(parse_ctx *x, char *hdr, int line)
{
    sb_config *cfg = x->cfg;
    char *name = NULL;
    section_end(x);
    trim(hdr);
    snprintf(x->section, sizeof x->section, "%s", hdr);
    x->section_line = line;
    for (char *p = hdr; *p; p++) {
        if (isspace((unsigned char)*p)) {
            *p = '\0';
            name = p + 1;
            trim(name);
            break;
        }
    }
    if (strcasecmp(hdr, "general") == 0) {
        if (name) {
            set_err(x, line, SB_ECONFIG, "[%s] section [general] takes no name", x->section);
            return;
        }
        x->kind = SEC_GENERAL;
        return;
    }
    if (strcasecmp(hdr, "pbx") == 0) {
        if (!name) {
            set_err(x, line, SB_ECONFIG, "[pbx] needs a name: [pbx NAME]");
            return;
        }
        if (!valid_name(name)) {
            set_err(x, line, SB_ECONFIG,
                    "[%s] bad PBX name '%s' (use letters, digits, '_', '-', '.')", x->section,
                    name);
            return;
        }
        const sb_config_pbx *dup = sb_config_find_pbx(cfg, name);
        if (dup) {
            set_err(x, line, SB_ECONFIG, "[%s] PBX '%s' already defined at line %d", x->section,
                    name, dup->line);
            return;
        }
        sb_config_pbx *n = realloc(cfg->pbx, (cfg->npbx + 1) * sizeof *n);
        if (!n)
            goto nomem;
        cfg->pbx = n;
        sb_config_pbx *p = &cfg->pbx[cfg->npbx];
        sb_config_pbx_defaults(p);
        p->host = strdup(p->host);
        p->events = strdup(p->events);
        p->name = strdup(name);
        p->line = line;
        cfg->npbx++;
        if (!p->host || !p->events || !p->name)
            goto nomem;
        memset(&x->seen, 0, sizeof x->seen);
        x->pbx = p;
        x->kind = SEC_PBX;
        return;
    }
    for (size_t i = 0; i < sizeof kept_sections / sizeof kept_sections[0]; i++) {
        if (strcasecmp(hdr, kept_sections[i].kind) != 0)
            continue;
        if (kept_sections[i].named && !name) {
            set_err(x, line, SB_ECONFIG, "[%s] needs a name: [%s NAME]", x->section,
                    kept_sections[i].kind);
            return;
        }
        if (!kept_sections[i].named && name) {
            set_err(x, line, SB_ECONFIG, "[%s] section [%s] takes no name", x->section,
                    kept_sections[i].kind);
            return;
        }
        if (name && !valid_name(name)) {
            set_err(x, line, SB_ECONFIG, "[%s] bad name '%s' (use letters, digits, '_', '-', '.')",
                    x->section, name);
            return;
        }
        const sb_config_section *dup = sb_config_section_find(cfg, kept_sections[i].kind, name);
        if (dup) {
            set_err(x, line, SB_ECONFIG, "[%s] section already defined at line %d", x->section,
                    dup->line);
            return;
        }
        sb_config_section *n = realloc(cfg->sections, (cfg->nsections + 1) * sizeof *n);
        if (!n)
            goto nomem;
        cfg->sections = n;
        sb_config_section *s = &cfg->sections[cfg->nsections++];
        memset(s, 0, sizeof *s);
        s->kind = strdup(kept_sections[i].kind);
        s->name = xstrdup(name);
        s->line = line;
        if (!s->kind || (name && !s->name))
            goto nomem;
        x->kept = s;
        x->kind = SEC_KEPT;
        return;
    }
    set_err(x, line, SB_ECONFIG,
            "[%s] unknown section (known: general, pbx NAME, http, agi, store, sink NAME, "
            "hubspot, dialer)",
            x->section);
    return;
nomem:
    set_err(x, line, SB_ENOMEM, "out of memory");
}

/* The line reader handed to ini_parse_stream(): one line per call, like fgets. */
static char *reader(char *str, int num, void *stream)
{
    parse_ctx *x = stream;
    if (x->pos >= x->len)
        return NULL;
    const char *start = x->text + x->pos;
    const char *nl = memchr(start, '\n', x->len - x->pos);
    size_t n = nl ? (size_t)(nl - start) + 1 : x->len - x->pos;
    x->pos += n;
    x->line++;
    size_t content = n - (nl ? 1 : 0);
    /* A UTF-8 byte order mark is dropped here, so the first line can be a section header. */
    if (x->line == 1 && content >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) {
        start += 3;
        content -= 3;
        n -= 3;
    }
    if (content > 0 && start[content - 1] == '\r')
        content--;
    if (memchr(start, '\0', n)) {
        set_err(x, x->line, SB_ECONFIG, "NUL byte in the file");
        content = 0;
    }
    if (content > (size_t)num - 3 || content > SB_CONFIG_MAX_LINE) {
        set_err(x, x->line, SB_ECONFIG, "line too long (at most %d bytes)", SB_CONFIG_MAX_LINE);
        content = 0;
    }
    memcpy(str, start, content);
    str[content] = '\n';
    str[content + 1] = '\0';

    /* A section header: open it here, where its line number is known. */
    const char *p = str;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close) {
            char hdr[SB_CONFIG_MAX_LINE + 1];
            size_t hl = (size_t)(close - p - 1);
            memcpy(hdr, p + 1, hl);
            hdr[hl] = '\0';
            section_begin(x, hdr, x->line);
        }
    }
    return str;
}

/* ---- keys ---- */

enum {
    K_HOST,
    K_PORT,
    K_USERNAME,
    K_SECRET,
    K_SECRET_FILE,
    K_SECRET_ENV,
    K_AUTH,
    K_EVENTS,
    K_PING,
    K_STALL,
    K_RMIN,
    K_RMAX,
    K_ACTION,
    K_CONNECT,
    K_FILTER,
    K_COUNT
};

static const char *const pbx_keys[K_COUNT] = {
    "host",          "port",          "username",       "secret",          "secret_file",
    "secret_env",    "auth",          "events",         "ping_interval",   "stall_timeout",
    "reconnect_min", "reconnect_max", "action_timeout", "connect_timeout", "filter",
};

static bool valid_events(const char *v)
{
    if (strcasecmp(v, "on") == 0 || strcasecmp(v, "off") == 0)
        return true;
    char tmp[SB_CONFIG_MAX_LINE + 1];
    snprintf(tmp, sizeof tmp, "%s", v);
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        trim(tok);
        bool ok = false;
        for (size_t i = 0; i < sizeof event_classes / sizeof event_classes[0]; i++)
            ok = ok || strcasecmp(tok, event_classes[i]) == 0;
        if (!ok)
            return false;
        n++;
    }
    return n > 0;
}

/* Splits a filter value at commas outside (), [] and {} (regex groups, classes and
 * quantifiers like {1,3} keep their commas) and appends each non-empty part. */
static int add_filters(parse_ctx *x, const char *v, int line)
{
    sb_config_pbx *p = x->pbx;
    size_t i = 0, start = 0, len = strlen(v);
    int depth = 0;
    for (i = 0; i <= len; i++) {
        char c = v[i];
        if (c == '\\' && i + 1 < len) {
            i++;
            continue;
        }
        if (c == '(' || c == '[' || c == '{')
            depth++;
        else if ((c == ')' || c == ']' || c == '}') && depth > 0)
            depth--;
        if (c != '\0' && (c != ',' || depth > 0))
            continue;
        char part[SB_CONFIG_MAX_LINE + 1];
        size_t n = i - start;
        memcpy(part, v + start, n);
        part[n] = '\0';
        trim(part);
        start = i + 1;
        if (!*part)
            continue;
        if (p->nfilters >= MAX_FILTERS) {
            set_err(x, line, SB_ECONFIG, "[%s] filter: more than %d filters", x->section,
                    MAX_FILTERS);
            return SB_ECONFIG;
        }
        char **nf = realloc(p->filters, (p->nfilters + 1) * sizeof *nf);
        if (!nf)
            return SB_ENOMEM;
        p->filters = nf;
        if (!(p->filters[p->nfilters] = strdup(part)))
            return SB_ENOMEM;
        p->nfilters++;
    }
    return 0;
}

static int replace_str(char **dst, const char *v)
{
    char *n = strdup(v);
    if (!n)
        return SB_ENOMEM;
    free(*dst);
    *dst = n;
    return 0;
}

static void pbx_key(parse_ctx *x, const char *key, const char *val, int line)
{
    sb_config_pbx *p = x->pbx;
    int k;
    int rc = 0;
    for (k = 0; k < K_COUNT; k++) {
        if (strcasecmp(key, pbx_keys[k]) == 0)
            break;
    }
    if (k == K_COUNT) {
        set_err(x, line, SB_ECONFIG,
                "[%s] unknown key '%s' (known: host, port, username, secret, secret_file, "
                "secret_env, auth, events, filter, ping_interval, stall_timeout, reconnect_min, "
                "reconnect_max, action_timeout, connect_timeout)",
                x->section, key);
        return;
    }
    if (k != K_FILTER) {
        if (x->seen.line[k]) {
            set_err(x, line, SB_ECONFIG, "[%s] key '%s' already set at line %d", x->section,
                    pbx_keys[k], x->seen.line[k]);
            return;
        }
        x->seen.line[k] = line;
        if (!*val && k != K_EVENTS) {
            set_err(x, line, SB_ECONFIG, "[%s] key '%s' has an empty value", x->section,
                    pbx_keys[k]);
            return;
        }
    }
    switch (k) {
    case K_HOST:
        rc = replace_str(&p->host, val);
        break;
    case K_PORT: {
        char *end;
        long v = strtol(val, &end, 10);
        if (*end || v < 1 || v > 65535) {
            set_err(x, line, SB_ECONFIG, "[%s] port: '%s' is not a port number (1-65535)",
                    x->section, val);
            return;
        }
        p->port = (int)v;
        break;
    }
    case K_USERNAME:
        rc = replace_str(&p->username, val);
        break;
    case K_SECRET:
    case K_SECRET_FILE:
    case K_SECRET_ENV:
        for (int o = K_SECRET; o <= K_SECRET_ENV; o++) {
            if (o != k && x->seen.line[o]) {
                set_err(x, line, SB_ECONFIG,
                        "[%s] %s: only one of secret, secret_file, secret_env may be set (%s at "
                        "line %d)",
                        x->section, pbx_keys[k], pbx_keys[o], x->seen.line[o]);
                return;
            }
        }
        p->secret_source = k == K_SECRET        ? SB_SECRET_INLINE
                           : k == K_SECRET_FILE ? SB_SECRET_FILE
                                                : SB_SECRET_ENV;
        /* Inline: the value itself. File and env: resolved when the section ends. */
        if (k == K_SECRET)
            rc = replace_str(&p->secret, val);
        else
            rc = replace_str(&p->secret_ref, val);
        break;
    case K_AUTH:
        if (strcasecmp(val, "plain") == 0)
            p->md5 = false;
        else if (strcasecmp(val, "md5") == 0)
            p->md5 = true;
        else {
            set_err(x, line, SB_ECONFIG, "[%s] auth: '%s' is not plain or md5", x->section, val);
            return;
        }
        break;
    case K_EVENTS:
        if (!valid_events(val)) {
            set_err(x, line, SB_ECONFIG,
                    "[%s] events: '%s' is not on, off or a list of event classes (system, call, "
                    "agent, user, ...)",
                    x->section, val);
            return;
        }
        rc = replace_str(&p->events, val);
        break;
    case K_FILTER:
        rc = add_filters(x, val, line);
        break;
    default: {
        uint32_t ms;
        uint32_t *dst = k == K_PING     ? &p->ping_interval_ms
                        : k == K_STALL  ? &p->stall_timeout_ms
                        : k == K_RMIN   ? &p->reconnect_min_ms
                        : k == K_RMAX   ? &p->reconnect_max_ms
                        : k == K_ACTION ? &p->action_timeout_ms
                                        : &p->connect_timeout_ms;
        if (sb_config_parse_duration(val, &ms) != 0) {
            set_err(x, line, SB_ECONFIG,
                    "[%s] %s: '%s' is not a duration (e.g. 500ms, 10s, 2m; a bare number is "
                    "seconds)",
                    x->section, pbx_keys[k], val);
            return;
        }
        if (ms == 0 && k != K_PING) {
            set_err(x, line, SB_ECONFIG, "[%s] %s: must be more than 0", x->section, pbx_keys[k]);
            return;
        }
        *dst = ms;
        break;
    }
    }
    if (rc == SB_ENOMEM)
        set_err(x, line, SB_ENOMEM, "out of memory");
}

/* Directory part of the config file name, for relative secret_file paths. */
static void resolve_path(const char *fname, const char *path, char *out, size_t size)
{
    const char *slash = strrchr(fname, '/');
    if (path[0] == '/' || !slash) {
        snprintf(out, size, "%s", path);
        return;
    }
    snprintf(out, size, "%.*s/%s", (int)(slash - fname), fname, path);
}

/* Reads the first line of a secret file. The message never quotes the file's contents. */
static int read_secret_file(parse_ctx *x, const char *path, int line, char **out)
{
    char full[4096];
    char buf[SB_CONFIG_MAX_SECRET + 2];
    resolve_path(x->fname, path, full, sizeof full);
    FILE *f = fopen(full, "rb");
    if (!f) {
        set_err(x, line, SB_ECONFIG, "[%s] secret_file: cannot read '%s': %s", x->section, full,
                strerror(errno));
        return SB_ECONFIG;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t end = strcspn(buf, "\r\n");
    if (end > SB_CONFIG_MAX_SECRET) {
        set_err(x, line, SB_ECONFIG, "[%s] secret_file: '%s' holds more than %d bytes", x->section,
                full, SB_CONFIG_MAX_SECRET);
        return SB_ECONFIG;
    }
    buf[end] = '\0';
    if (end == 0) {
        set_err(x, line, SB_ECONFIG, "[%s] secret_file: '%s' is empty", x->section, full);
        return SB_ECONFIG;
    }
    *out = strdup(buf);
    memset(buf, 0, sizeof buf);
    return *out ? 0 : SB_ENOMEM;
}

/* Checks a [pbx] section once all its lines are read and resolves its secret. */
static int finish_pbx(parse_ctx *x)
{
    sb_config_pbx *p = x->pbx;
    int line = x->section_line;
    if (x->err)
        return x->err;
    if (!p->username) {
        set_err(x, line, SB_ECONFIG, "[%s] missing key 'username'", x->section);
        return SB_ECONFIG;
    }
    if (!x->seen.line[K_SECRET] && !x->seen.line[K_SECRET_FILE] && !x->seen.line[K_SECRET_ENV]) {
        set_err(x, line, SB_ECONFIG, "[%s] missing key 'secret' (or secret_file, secret_env)",
                x->section);
        return SB_ECONFIG;
    }
    if (p->reconnect_min_ms > p->reconnect_max_ms) {
        set_err(x, x->seen.line[K_RMIN] ? x->seen.line[K_RMIN] : x->seen.line[K_RMAX], SB_ECONFIG,
                "[%s] reconnect_min: larger than reconnect_max", x->section);
        return SB_ECONFIG;
    }
    if (p->secret_source == SB_SECRET_FILE) {
        if (read_secret_file(x, p->secret_ref, x->seen.line[K_SECRET_FILE], &p->secret) != 0)
            return x->err ? x->err : SB_ENOMEM;
    } else if (p->secret_source == SB_SECRET_ENV) {
        const char *v = getenv(p->secret_ref);
        if (!v || !*v) {
            set_err(x, x->seen.line[K_SECRET_ENV], SB_ECONFIG,
                    "[%s] secret_env: environment variable '%s' is not set or empty", x->section,
                    p->secret_ref);
            return SB_ECONFIG;
        }
        if (!(p->secret = strdup(v))) {
            set_err(x, line, SB_ENOMEM, "out of memory");
            return SB_ENOMEM;
        }
    }
    return 0;
}

static void general_key(parse_ctx *x, const char *key, const char *val, int line)
{
    int k;
    if (strcasecmp(key, "log_level") == 0)
        k = 0;
    else if (strcasecmp(key, "log_format") == 0)
        k = 1;
    else {
        set_err(x, line, SB_ECONFIG, "[general] unknown key '%s' (known: log_level, log_format)",
                key);
        return;
    }
    if (x->general_seen[k]) {
        set_err(x, line, SB_ECONFIG, "[general] key '%s' already set at line %d", key,
                x->general_seen[k]);
        return;
    }
    x->general_seen[k] = line;
    if (k == 0) {
        if (sb_log_level_parse(val, &x->cfg->log_level) != 0)
            set_err(x, line, SB_ECONFIG,
                    "[general] log_level: '%s' is not debug, info, warn or error", val);
    } else if (strcasecmp(val, "text") == 0) {
        x->cfg->log_json = false;
    } else if (strcasecmp(val, "json") == 0) {
        x->cfg->log_json = true;
    } else {
        set_err(x, line, SB_ECONFIG, "[general] log_format: '%s' is not text or json", val);
    }
}

static void kept_key(parse_ctx *x, const char *key, const char *val, int line)
{
    sb_config_section *s = x->kept;
    if (s->nkv >= MAX_SECTION_KEYS) {
        set_err(x, line, SB_ECONFIG, "[%s] more than %d keys", x->section, MAX_SECTION_KEYS);
        return;
    }
    sb_config_kv *n = realloc(s->kv, (s->nkv + 1) * sizeof *n);
    if (!n)
        goto nomem;
    s->kv = n;
    n[s->nkv].key = strdup(key);
    n[s->nkv].value = strdup(val);
    n[s->nkv].line = line;
    s->nkv++;
    if (!n[s->nkv - 1].key || !n[s->nkv - 1].value)
        goto nomem;
    return;
nomem:
    set_err(x, line, SB_ENOMEM, "out of memory");
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *x = user;
    (void)section; /* the reader tracks the section, with its line */
    if (x->err)
        return 1;
    switch (x->kind) {
    case SEC_NONE:
        set_err(x, x->line, SB_ECONFIG,
                "key '%s' outside any section (start with [general] or "
                "[pbx NAME])",
                name);
        break;
    case SEC_GENERAL:
        general_key(x, name, value, x->line);
        break;
    case SEC_PBX:
        pbx_key(x, name, value, x->line);
        break;
    case SEC_KEPT:
        kept_key(x, name, value, x->line);
        break;
    }
    return 1;
}

int sb_config_parse(const char *text, size_t len, const char *name, sb_config **out, char *err,
                    size_t errsize)
{
    parse_ctx x;
    int rc;
    memset(&x, 0, sizeof x);
    if (err && errsize)
        err[0] = '\0';
    *out = NULL;
    x.cfg = sb_config_new_default();
    if (!x.cfg)
        return SB_ENOMEM;
    x.fname = name;
    x.text = text;
    x.len = len;
    x.errbuf = err;
    x.errsize = errsize;
    x.cfg->path = strdup(name);
    if (!x.cfg->path) {
        rc = SB_ENOMEM;
        goto fail;
    }
    /* Continuation lines would turn an indented key into part of the previous value; the
     * library global is set the same way every time, so this is safe to repeat. */
    ini_allow_multiline = false;
    int r = ini_parse_stream(reader, &x, handler, &x);
    if (r > 0 && (!x.err || r < x.err_line)) {
        x.err = 0;
        set_err(&x, r, SB_ECONFIG, "syntax error: expected '[section]' or 'key = value'");
    } else if (r < 0 && !x.err) {
        set_err(&x, 0, SB_ENOMEM, "out of memory");
    }
    section_end(&x);
    if (x.err) {
        rc = x.err;
        goto fail;
    }
    *out = x.cfg;
    return 0;
fail:
    sb_config_free(x.cfg);
    return rc;
}

int sb_config_load(const char *path, sb_config **out, char *err, size_t errsize)
{
    int rc;
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsize, "%s: cannot open: %s", path, strerror(errno));
        return SB_EIO;
    }
    text = malloc(SB_CONFIG_MAX_FILE + 1);
    if (!text) {
        rc = SB_ENOMEM;
        snprintf(err, errsize, "%s: out of memory", path);
        goto out;
    }
    len = fread(text, 1, SB_CONFIG_MAX_FILE + 1, f);
    if (ferror(f)) {
        snprintf(err, errsize, "%s: cannot read: %s", path, strerror(errno));
        rc = SB_EIO;
        goto out;
    }
    if (len > SB_CONFIG_MAX_FILE) {
        snprintf(err, errsize, "%s: larger than %d bytes", path, SB_CONFIG_MAX_FILE);
        rc = SB_ECONFIG;
        goto out;
    }
    rc = sb_config_parse(text, len, path, out, err, errsize);
out:
    /* The text may hold an inline secret. */
    if (text)
        memset(text, 0, len);
    free(text);
    fclose(f);
    return rc;
}

static const char *source_name(const sb_config_pbx *p)
{
    switch (p->secret_source) {
    case SB_SECRET_FILE:
        return "file";
    case SB_SECRET_ENV:
        return "env";
    default:
        return "inline";
    }
}

int sb_config_describe(const sb_config *cfg, sb_buf *out)
{
    static const char *const lv[] = {"debug", "info", "warn", "error"};
    int rc = sb_buf_printf(out, "config: %s\n[general] log_level=%s log_format=%s\n", cfg->path,
                           lv[cfg->log_level], cfg->log_json ? "json" : "text");
    for (size_t i = 0; rc == 0 && i < cfg->npbx; i++) {
        const sb_config_pbx *p = &cfg->pbx[i];
        rc = sb_buf_printf(
            out,
            "[pbx %s] %s:%d username=%s secret=******** (%s%s%s) auth=%s "
            "events=%s filters=%zu ping=%ums stall=%ums reconnect=%u..%ums "
            "action_timeout=%ums connect_timeout=%ums\n",
            p->name, p->host, p->port, p->username ? p->username : "", source_name(p),
            p->secret_ref ? " " : "", p->secret_ref ? p->secret_ref : "", p->md5 ? "md5" : "plain",
            p->events, p->nfilters, p->ping_interval_ms, p->stall_timeout_ms, p->reconnect_min_ms,
            p->reconnect_max_ms, p->action_timeout_ms, p->connect_timeout_ms);
        for (size_t f = 0; rc == 0 && f < p->nfilters; f++)
            rc = sb_buf_printf(out, "  filter: %s\n", p->filters[f]);
    }
    for (size_t i = 0; rc == 0 && i < cfg->nsections; i++) {
        const sb_config_section *s = &cfg->sections[i];
        rc = sb_buf_printf(out, "[%s%s%s] %zu keys (read by its module)\n", s->kind,
                           s->name ? " " : "", s->name ? s->name : "", s->nkv);
    }
    if (rc == 0 && cfg->npbx == 0)
        rc = sb_buf_puts(out, "no [pbx] configured: `serve` starts the built-in simulator\n");
    return rc;
}
