/* file.c: the route file: an INI dialect Asterisk administrators already read (extensions.conf
 * style sections, `key = value` lines, `;` comments), parsed into a route_db with every value
 * checked and every problem reported as "FILE:LINE: [section] key: problem"; and the export
 * that writes a db back in the same format. The format is documented in docs/routing.md.
 */
#include "routing/route.h"

#include "core/config.h"
#include "core/error.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_FILE_MAX_LINE 4096
#define ROUTE_MAX_ITEMS 100000

typedef struct pkv {
    char *key, *val;
    int line;
} pkv;

typedef struct psec {
    char *kind, *name;
    int line;
    pkv *kv;
    size_t nkv;
} psec;

typedef struct pctx {
    const char *file;
    char *err;
    size_t errsize;
    route_db *db;
} pctx;

static int perr(pctx *c, int line, const psec *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int perr(pctx *c, int line, const psec *s, const char *key, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->err && c->errsize) {
        if (s && key)
            snprintf(c->err, c->errsize, "%s:%d: [%s %s] %s: %s", c->file, line, s->kind, s->name,
                     key, msg);
        else if (s)
            snprintf(c->err, c->errsize, "%s:%d: [%s %s] %s", c->file, line, s->kind, s->name, msg);
        else
            snprintf(c->err, c->errsize, "%s:%d: %s", c->file, line, msg);
    }
    return SB_EINVAL;
}

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static void trim(const char **p, size_t *n)
{
    while (*n && isspace((unsigned char)**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*p)[*n - 1]))
        (*n)--;
}

static void psecs_free(psec *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < s[i].nkv; j++) {
            free(s[i].kv[j].key);
            free(s[i].kv[j].val);
        }
        free(s[i].kv);
        free(s[i].kind);
        free(s[i].name);
    }
    free(s);
}

/* Pass 1: lines into sections of key/value pairs. */
static int split_sections(pctx *c, const char *text, size_t len, psec **out, size_t *nout)
{
    psec *secs = NULL;
    size_t nsecs = 0;
    int line = 0, rc = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line++;
        const char *p = text + pos;
        size_t n = end - pos;
        pos = end + 1;
        if (n > ROUTE_FILE_MAX_LINE) {
            rc = perr(c, line, NULL, NULL, "line longer than %d bytes", ROUTE_FILE_MAX_LINE);
            goto fail;
        }
        if (line == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3;
            n -= 3;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)p[i];
            if (ch == 0 || (ch < 0x20 && ch != '\t' && ch != '\r')) {
                rc = perr(c, line, NULL, NULL, "control character 0x%02x", ch);
                goto fail;
            }
            /* A comment starts with ; at the start of the line or after a blank (# is a digit key).
             */
            if (ch == ';' && (i == 0 || isspace((unsigned char)p[i - 1]))) {
                n = i;
                break;
            }
        }
        trim(&p, &n);
        if (n == 0)
            continue;
        if (p[0] == '[') {
            if (p[n - 1] != ']') {
                rc = perr(c, line, NULL, NULL, "section header without ']'");
                goto fail;
            }
            const char *q = p + 1;
            size_t m = n - 2;
            trim(&q, &m);
            size_t k = 0;
            while (k < m && !isspace((unsigned char)q[k]))
                k++;
            const char *nm = q + k;
            size_t nn = m - k;
            trim(&nm, &nn);
            if (k == 0 || nn == 0) {
                rc = perr(c, line, NULL, NULL,
                          "section header must be [KIND NAME] (route, rule, ivr, cidmap)");
                goto fail;
            }
            for (size_t i = 0; i < nn; i++) {
                char ch = nm[i];
                if (!(isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '.')) {
                    rc = perr(c, line, NULL, NULL,
                              "section name may hold letters, digits, '_', '-', '.' only");
                    goto fail;
                }
            }
            if (nsecs >= ROUTE_MAX_ITEMS) {
                rc = perr(c, line, NULL, NULL, "too many sections");
                goto fail;
            }
            psec *ns = realloc(secs, (nsecs + 1) * sizeof *secs);
            if (!ns) {
                rc = SB_ENOMEM;
                goto fail;
            }
            secs = ns;
            psec *s = &secs[nsecs++];
            memset(s, 0, sizeof *s);
            s->kind = dupn(q, k);
            s->name = dupn(nm, nn);
            s->line = line;
            if (!s->kind || !s->name) {
                rc = SB_ENOMEM;
                goto fail;
            }
            continue;
        }
        const char *eq = memchr(p, '=', n);
        if (!eq) {
            rc = perr(c, line, nsecs ? &secs[nsecs - 1] : NULL, NULL, "expected 'key = value'");
            goto fail;
        }
        if (!nsecs) {
            rc = perr(c, line, NULL, NULL, "'key = value' before the first [section]");
            goto fail;
        }
        const char *k = p, *v = eq + 1;
        size_t kn = (size_t)(eq - p), vn = n - kn - 1;
        trim(&k, &kn);
        trim(&v, &vn);
        /* `key =; note` is a comment too (the export writes "key = value"). */
        if (vn && v[0] == ';')
            vn = 0;
        if (kn == 0) {
            rc = perr(c, line, &secs[nsecs - 1], NULL, "empty key");
            goto fail;
        }
        psec *s = &secs[nsecs - 1];
        if (s->nkv >= ROUTE_MAX_ITEMS) {
            rc = perr(c, line, s, NULL, "too many keys");
            goto fail;
        }
        pkv *nk = realloc(s->kv, (s->nkv + 1) * sizeof *nk);
        if (!nk) {
            rc = SB_ENOMEM;
            goto fail;
        }
        s->kv = nk;
        pkv *kv = &s->kv[s->nkv++];
        kv->key = dupn(k, kn);
        kv->val = dupn(v, vn);
        kv->line = line;
        if (!kv->key || !kv->val) {
            rc = SB_ENOMEM;
            goto fail;
        }
    }
    *out = secs;
    *nout = nsecs;
    return 0;
fail:
    psecs_free(secs, nsecs);
    return rc;
}

/* ---- actions ---- */

const char *route_action_kind_name(route_action_kind k)
{
    static const char *const names[] = {"none",      "dial",       "queue",    "ivr",
                                        "voicemail", "conference", "playback", "hangup",
                                        "set",       "decide",     "cidmap"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

void route_action_clear(route_action *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nargs; i++)
        free(a->args[i]);
    free(a->args);
    free(a->options);
    free(a->text);
    memset(a, 0, sizeof *a);
}

static int add_arg(route_action *a, const char *p, size_t n)
{
    char **na = realloc(a->args, (a->nargs + 1) * sizeof *na);
    if (!na)
        return SB_ENOMEM;
    a->args = na;
    if (!(a->args[a->nargs] = dupn(p, n)))
        return SB_ENOMEM;
    a->nargs++;
    return 0;
}

int route_action_parse(const char *text, route_action *out, char *err, size_t errsize)
{
    route_action a = {0};
    int rc = SB_EINVAL;
    const char *p = text;
    char word[32];
    size_t n = 0;
    while (*p && isspace((unsigned char)*p))
        p++;
    while (p[n] && !isspace((unsigned char)p[n]))
        n++;
    if (n == 0 || n >= sizeof word) {
        snprintf(err, errsize, "empty or unknown action");
        goto fail;
    }
    memcpy(word, p, n);
    word[n] = 0;
    p += n;
    static const struct {
        const char *name;
        route_action_kind kind;
    } kinds[] = {{"dial", ROUTE_ACT_DIAL},
                 {"queue", ROUTE_ACT_QUEUE},
                 {"ivr", ROUTE_ACT_IVR},
                 {"voicemail", ROUTE_ACT_VOICEMAIL},
                 {"conference", ROUTE_ACT_CONFERENCE},
                 {"playback", ROUTE_ACT_PLAYBACK},
                 {"hangup", ROUTE_ACT_HANGUP},
                 {"set", ROUTE_ACT_SET},
                 {"decide", ROUTE_ACT_DECIDE},
                 {"cidmap", ROUTE_ACT_CIDMAP}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(word, kinds[i].name) == 0)
            a.kind = kinds[i].kind;
    if (a.kind == ROUTE_ACT_NONE) {
        snprintf(err, errsize,
                 "unknown action '%s' (dial, queue, ivr, voicemail, conference, playback, "
                 "hangup, set, decide, cidmap)",
                 word);
        goto fail;
    }
    if (a.kind == ROUTE_ACT_DECIDE)
        a.timeout_ms = 1000;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        n = 0;
        while (p[n] && !isspace((unsigned char)p[n]))
            n++;
        if (n == 0)
            break;
        bool is_opt = false;
        if (a.kind != ROUTE_ACT_SET && n > 8 && strncmp(p, "timeout=", 8) == 0) {
            char tmp[32];
            uint32_t ms;
            if (n - 8 >= sizeof tmp || a.kind == ROUTE_ACT_IVR || a.kind == ROUTE_ACT_HANGUP ||
                a.kind == ROUTE_ACT_PLAYBACK) {
                snprintf(err, errsize, "%s takes no timeout", word);
                goto fail;
            }
            memcpy(tmp, p + 8, n - 8);
            tmp[n - 8] = 0;
            if (sb_config_parse_duration(tmp, &ms) < 0 || ms > 24u * 3600 * 1000) {
                snprintf(err, errsize, "bad timeout '%s' (e.g. 20s, 500ms, 2m)", tmp);
                goto fail;
            }
            a.timeout_ms = ms;
            is_opt = true;
        } else if (a.kind != ROUTE_ACT_SET && n > 8 && strncmp(p, "options=", 8) == 0) {
            if (a.kind != ROUTE_ACT_DIAL && a.kind != ROUTE_ACT_VOICEMAIL &&
                a.kind != ROUTE_ACT_QUEUE && a.kind != ROUTE_ACT_CONFERENCE) {
                snprintf(err, errsize, "%s takes no options", word);
                goto fail;
            }
            free(a.options);
            if (!(a.options = dupn(p + 8, n - 8))) {
                rc = SB_ENOMEM;
                goto fail;
            }
            is_opt = true;
        }
        if (!is_opt) {
            if (a.kind == ROUTE_ACT_SET) {
                const char *eq = memchr(p, '=', n);
                if (!eq || eq == p) {
                    snprintf(err, errsize, "set takes NAME=VALUE words");
                    goto fail;
                }
            }
            if (a.nargs >= 64) {
                snprintf(err, errsize, "too many arguments");
                goto fail;
            }
            if ((rc = add_arg(&a, p, n)) < 0)
                goto fail;
            rc = SB_EINVAL;
        }
        p += n;
    }
    switch (a.kind) {
    case ROUTE_ACT_HANGUP:
        if (a.nargs) {
            snprintf(err, errsize, "hangup takes no arguments");
            goto fail;
        }
        break;
    case ROUTE_ACT_DIAL:
    case ROUTE_ACT_PLAYBACK:
    case ROUTE_ACT_SET:
        if (!a.nargs) {
            snprintf(err, errsize, "%s needs at least one argument", word);
            goto fail;
        }
        break;
    default:
        if (a.nargs != 1) {
            snprintf(err, errsize, "%s takes exactly one argument", word);
            goto fail;
        }
        if (a.kind == ROUTE_ACT_DECIDE && strncmp(a.args[0], "http://", 7) != 0 &&
            strncmp(a.args[0], "https://", 8) != 0) {
            snprintf(err, errsize, "decide needs an http:// or https:// URL");
            goto fail;
        }
        break;
    }
    for (size_t i = 0; i < a.nargs; i++) {
        for (const char *q = a.args[i]; *q; q++) {
            /* These would end the application's argument in the dialplan, or the command. */
            if (a.kind != ROUTE_ACT_DECIDE && a.kind != ROUTE_ACT_SET &&
                (*q == ',' || *q == '|' || *q == '"' || *q == '\\')) {
                snprintf(err, errsize, "'%c' is not allowed in '%s'", *q, a.args[i]);
                goto fail;
            }
        }
    }
    for (size_t i = 0; i < a.nargs; i++) {
        if (a.kind != ROUTE_ACT_DECIDE && route_template_check(a.args[i]) < 0) {
            snprintf(err, errsize,
                     "bad template '%s' (known: ${EXTEN}, ${CALLERID(num)}, ${CALLERID(name)}, "
                     "${DEST}, with :offset[:length])",
                     a.args[i]);
            goto fail;
        }
    }
    const char *t = text;
    while (*t && isspace((unsigned char)*t))
        t++;
    if (!(a.text = strdup(t))) {
        rc = SB_ENOMEM;
        goto fail;
    }
    *out = a;
    return 0;
fail:
    route_action_clear(&a);
    return rc;
}

/* ---- values ---- */

static int parse_u(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    if (!isdigit((unsigned char)v[0]))
        return SB_EINVAL;
    unsigned long x = strtoul(v, &end, 10);
    if (*end || x < lo || x > hi)
        return SB_EINVAL;
    *out = (unsigned)x;
    return 0;
}

static int parse_ms(const char *v, unsigned *out)
{
    uint32_t ms;
    if (sb_config_parse_duration(v, &ms) < 0 || ms > 3600u * 1000)
        return SB_EINVAL;
    *out = ms;
    return 0;
}

/* Splits a comma list, calling fn for each trimmed item. */
typedef int (*item_fn)(const char *p, size_t n, void *ud, char *err, size_t errsize);
static int each_item(const char *v, item_fn fn, void *ud, char *err, size_t errsize)
{
    const char *p = v;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        const char *q = p;
        trim(&q, &n);
        if (n == 0) {
            snprintf(err, errsize, "empty item in list");
            return SB_EINVAL;
        }
        int rc = fn(q, n, ud, err, errsize);
        if (rc < 0)
            return rc;
        if (!c)
            return 0;
        p = c + 1;
    }
}

typedef struct plist {
    route_pattern ***arr;
    size_t *n;
} plist;

static int add_pattern(const char *p, size_t n, void *ud, char *err, size_t errsize)
{
    plist *l = ud;
    route_pattern *pat;
    route_pattern_error pe;
    int rc = route_pattern_compile((sb_slice){p, n}, &pat, &pe);
    if (rc == SB_EINVAL) {
        snprintf(err, errsize, "'%.*s': %s at offset %zu", (int)n, p, pe.message, pe.offset);
        return rc;
    }
    if (rc < 0)
        return rc;
    route_pattern **na = realloc(*l->arr, (*l->n + 1) * sizeof *na);
    if (!na) {
        route_pattern_free(pat);
        return SB_ENOMEM;
    }
    *l->arr = na;
    na[(*l->n)++] = pat;
    return 0;
}

typedef struct slist {
    char ***arr;
    size_t *n;
} slist;

static int add_str(const char *p, size_t n, void *ud, char *err, size_t errsize)
{
    slist *l = ud;
    (void)err;
    (void)errsize;
    char **na = realloc(*l->arr, (*l->n + 1) * sizeof *na);
    if (!na)
        return SB_ENOMEM;
    *l->arr = na;
    if (!(na[*l->n] = dupn(p, n)))
        return SB_ENOMEM;
    (*l->n)++;
    return 0;
}

static int day_index(const char *p, size_t n)
{
    static const char *const d[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    if (n != 3)
        return -1;
    for (int i = 0; i < 7; i++)
        if (strncasecmp(p, d[i], 3) == 0)
            return i;
    return -1;
}

static int parse_hhmm(const char *p, size_t n, uint16_t *out)
{
    if (n != 5 || !isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2] != ':' ||
        !isdigit((unsigned char)p[3]) || !isdigit((unsigned char)p[4]))
        return SB_EINVAL;
    int h = (p[0] - '0') * 10 + (p[1] - '0'), m = (p[3] - '0') * 10 + (p[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return SB_EINVAL;
    *out = (uint16_t)(h * 60 + m);
    return 0;
}

typedef struct hlist {
    route_hours **arr;
    size_t *n;
} hlist;

/* "mon-fri 09:00-18:00", "sat 10:00-14:00", "sun-sat 00:00-24:00". */
static int add_hours(const char *p, size_t n, void *ud, char *err, size_t errsize)
{
    hlist *l = ud;
    const char *sp = memchr(p, ' ', n);
    route_hours h = {0};
    if (!sp)
        goto bad;
    size_t dn = (size_t)(sp - p);
    const char *tp = sp;
    size_t tn = n - dn;
    trim(&tp, &tn);
    const char *dash = memchr(p, '-', dn);
    int d1 = day_index(p, dash ? (size_t)(dash - p) : dn);
    int d2 = dash ? day_index(dash + 1, dn - (size_t)(dash - p) - 1) : d1;
    if (d1 < 0 || d2 < 0)
        goto bad;
    for (int d = d1;; d = (d + 1) % 7) {
        h.days |= (uint8_t)(1u << d);
        if (d == d2)
            break;
    }
    const char *td = memchr(tp, '-', tn);
    if (!td || parse_hhmm(tp, (size_t)(td - tp), &h.from_min) < 0 ||
        parse_hhmm(td + 1, tn - (size_t)(td - tp) - 1, &h.to_min) < 0 || h.from_min >= h.to_min)
        goto bad;
    route_hours *na = realloc(*l->arr, (*l->n + 1) * sizeof *na);
    if (!na)
        return SB_ENOMEM;
    *l->arr = na;
    na[(*l->n)++] = h;
    return 0;
bad:
    snprintf(err, errsize,
             "'%.*s': expected DAY[-DAY] HH:MM-HH:MM (e.g. mon-fri 09:00-18:00), start before end",
             (int)n, p);
    return SB_EINVAL;
}

typedef struct dlist {
    uint32_t **arr;
    size_t *n;
} dlist;

/* "2026-12-25" (that day) or "12-25" (every year). */
static int add_holiday(const char *p, size_t n, void *ud, char *err, size_t errsize)
{
    dlist *l = ud;
    unsigned y = 0, m, d;
    char tmp[16];
    int used = 0;
    if (n >= sizeof tmp)
        goto bad;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    if (n == 10 && sscanf(tmp, "%4u-%2u-%2u%n", &y, &m, &d, &used) == 3 && used == 10) {
        if (y < 1970 || y > 9999)
            goto bad;
    } else if (n == 5 && sscanf(tmp, "%2u-%2u%n", &m, &d, &used) == 2 && used == 5) {
        y = 0;
    } else {
        goto bad;
    }
    if (m < 1 || m > 12 || d < 1 || d > 31)
        goto bad;
    uint32_t *na = realloc(*l->arr, (*l->n + 1) * sizeof *na);
    if (!na)
        return SB_ENOMEM;
    *l->arr = na;
    na[(*l->n)++] = y * 10000 + m * 100 + d;
    return 0;
bad:
    snprintf(err, errsize, "'%.*s': expected YYYY-MM-DD or MM-DD (every year)", (int)n, p);
    return SB_EINVAL;
}

/* ---- sections ---- */

static const pkv *find_dup(const psec *s, size_t upto, const char *key)
{
    for (size_t i = 0; i < upto; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return &s->kv[i];
    return NULL;
}

static int parse_action_kv(pctx *c, const psec *s, const pkv *kv, route_action *a)
{
    char msg[200];
    if (a->kind != ROUTE_ACT_NONE)
        return perr(c, kv->line, s, kv->key, "given twice");
    int rc = route_action_parse(kv->val, a, msg, sizeof msg);
    if (rc == SB_EINVAL)
        return perr(c, kv->line, s, kv->key, "%s", msg);
    a->line = kv->line;
    return rc;
}

static int build_set(pctx *c, const psec *s, route_set *set)
{
    set->answer = -1;
    set->pin_tries = 3;
    set->pin_max_digits = 10;
    set->pin_timeout_ms = 5000;
    if (!(set->name = strdup(s->name)))
        return SB_ENOMEM;
    set->line = s->line;
    for (size_t i = 0; i < s->nkv; i++) {
        const pkv *kv = &s->kv[i];
        const char *k = kv->key, *v = kv->val;
        char **str = NULL;
        if (find_dup(s, i, k))
            return perr(c, kv->line, s, k, "given twice");
        if (strcmp(k, "tz") == 0) {
            if (!route_tz_is_valid(v))
                return perr(c, kv->line, s, k, "unknown time zone '%s'", v);
            str = &set->tz;
        } else if (strcmp(k, "answer") == 0) {
            if (strcmp(v, "yes") == 0)
                set->answer = 1;
            else if (strcmp(v, "no") == 0)
                set->answer = 0;
            else if (strcmp(v, "auto") == 0)
                set->answer = -1;
            else
                return perr(c, kv->line, s, k, "expected yes, no or auto");
        } else if (strcmp(k, "pin_prompt") == 0) {
            str = &set->pin_prompt;
        } else if (strcmp(k, "pin_wrong") == 0) {
            str = &set->pin_wrong;
        } else if (strcmp(k, "pin_goodbye") == 0) {
            str = &set->pin_goodbye;
        } else if (strcmp(k, "pin_tries") == 0) {
            if (parse_u(v, 1, 10, &set->pin_tries) < 0)
                return perr(c, kv->line, s, k, "expected 1 to 10");
        } else if (strcmp(k, "pin_max_digits") == 0) {
            if (parse_u(v, 1, 32, &set->pin_max_digits) < 0)
                return perr(c, kv->line, s, k, "expected 1 to 32");
        } else if (strcmp(k, "pin_timeout") == 0) {
            if (parse_ms(v, &set->pin_timeout_ms) < 0 || set->pin_timeout_ms == 0)
                return perr(c, kv->line, s, k, "expected a duration such as 5s");
        } else {
            return perr(c, kv->line, s, k,
                        "unknown key (tz, answer, pin_prompt, pin_wrong, pin_goodbye, pin_tries, "
                        "pin_max_digits, pin_timeout)");
        }
        if (str) {
            if (strpbrk(v, " \t,\"\\"))
                return perr(c, kv->line, s, k, "no blanks, commas or quotes allowed");
            if (!(*str = strdup(v)))
                return SB_ENOMEM;
        }
    }
    if (!set->pin_prompt && !(set->pin_prompt = strdup("agent-pass")))
        return SB_ENOMEM;
    if (!set->pin_wrong && !(set->pin_wrong = strdup("auth-incorrect")))
        return SB_ENOMEM;
    if (!set->pin_goodbye && !(set->pin_goodbye = strdup("vm-goodbye")))
        return SB_ENOMEM;
    return 0;
}

static int build_rule(pctx *c, const psec *s, route_rule *r)
{
    char msg[200];
    int rc;
    if (!(r->name = strdup(s->name)))
        return SB_ENOMEM;
    r->line = s->line;
    for (size_t i = 0; i < s->nkv; i++) {
        const pkv *kv = &s->kv[i];
        const char *k = kv->key, *v = kv->val;
        if (strcmp(k, "set") != 0 && find_dup(s, i, k))
            return perr(c, kv->line, s, k, "given twice");
        rc = 0;
        if (strcmp(k, "match") == 0) {
            route_pattern_error pe;
            rc = route_pattern_compile(sb_slice_cstr(v), &r->match, &pe);
            if (rc == SB_EINVAL)
                return perr(c, kv->line, s, k, "'%s': %s at offset %zu", v, pe.message, pe.offset);
        } else if (strcmp(k, "caller") == 0) {
            plist l = {&r->callers, &r->ncallers};
            rc = each_item(v, add_pattern, &l, msg, sizeof msg);
        } else if (strcmp(k, "allow") == 0) {
            plist l = {&r->allow, &r->nallow};
            rc = each_item(v, add_pattern, &l, msg, sizeof msg);
        } else if (strcmp(k, "pbx") == 0) {
            slist l = {&r->pbx, &r->npbx};
            rc = each_item(v, add_str, &l, msg, sizeof msg);
        } else if (strcmp(k, "tz") == 0) {
            if (!route_tz_is_valid(v))
                return perr(c, kv->line, s, k, "unknown time zone '%s'", v);
            if (!(r->tz = strdup(v)))
                return SB_ENOMEM;
        } else if (strcmp(k, "hours") == 0) {
            hlist l = {&r->hours, &r->nhours};
            rc = each_item(v, add_hours, &l, msg, sizeof msg);
        } else if (strcmp(k, "holidays") == 0) {
            dlist l = {&r->holidays, &r->nholidays};
            rc = each_item(v, add_holiday, &l, msg, sizeof msg);
        } else if (strcmp(k, "closed") == 0) {
            rc = parse_action_kv(c, s, kv, &r->closed);
            if (rc < 0)
                return rc;
        } else if (strcmp(k, "action") == 0) {
            rc = parse_action_kv(c, s, kv, &r->action);
            if (rc < 0)
                return rc;
        } else if (strcmp(k, "fallback") == 0) {
            rc = parse_action_kv(c, s, kv, &r->fallback);
            if (rc < 0)
                return rc;
            if (r->fallback.kind == ROUTE_ACT_DECIDE)
                return perr(c, kv->line, s, k, "a fallback cannot be another decide");
        } else if (strcmp(k, "pin") == 0) {
            if (strncmp(v, "$argon2", 7) != 0 || strlen(v) > 200 || strpbrk(v, " \t"))
                return perr(c, kv->line, s, k,
                            "expected a hash from `switchboard route hash-pin` ($argon2id$...)");
            if (!(r->pin_hash = strdup(v)))
                return SB_ENOMEM;
        } else if (strcmp(k, "set") == 0) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                return perr(c, kv->line, s, k, "expected NAME=VALUE");
            size_t nl = (size_t)(eq - v);
            const char *nm = v;
            trim(&nm, &nl);
            for (size_t j = 0; j < nl; j++)
                if (!(isalnum((unsigned char)nm[j]) || nm[j] == '_' || nm[j] == '(' ||
                      nm[j] == ')'))
                    return perr(c, kv->line, s, k, "bad variable name '%.*s'", (int)nl, nm);
            route_kv *nk = realloc(r->set, (r->nset + 1) * sizeof *nk);
            if (!nk)
                return SB_ENOMEM;
            r->set = nk;
            const char *val = eq + 1;
            size_t vl = strlen(val);
            trim(&val, &vl);
            nk[r->nset].name = dupn(nm, nl);
            nk[r->nset].value = dupn(val, vl);
            r->nset++;
            if (!nk[r->nset - 1].name || !nk[r->nset - 1].value)
                return SB_ENOMEM;
        } else {
            return perr(c, kv->line, s, k,
                        "unknown key (match, caller, pbx, tz, hours, holidays, closed, allow, pin, "
                        "set, action, fallback)");
        }
        if (rc == SB_EINVAL)
            return perr(c, kv->line, s, k, "%s", msg);
        if (rc < 0)
            return rc;
    }
    if (!r->match)
        return perr(c, s->line, s, NULL, "missing 'match'");
    if (r->action.kind == ROUTE_ACT_NONE)
        return perr(c, s->line, s, NULL, "missing 'action'");
    if (r->fallback.kind != ROUTE_ACT_NONE && r->action.kind != ROUTE_ACT_DECIDE)
        return perr(c, s->line, s, NULL, "'fallback' is for a decide action only");
    if (r->closed.kind != ROUTE_ACT_NONE && !r->nhours && !r->nholidays)
        return perr(c, s->line, s, NULL, "'closed' needs 'hours' or 'holidays'");
    return 0;
}

static int build_menu(pctx *c, const psec *s, route_menu *m)
{
    if (!(m->name = strdup(s->name)))
        return SB_ENOMEM;
    m->line = s->line;
    m->timeout_ms = 5000;
    m->retries = 3;
    for (size_t i = 0; i < s->nkv; i++) {
        const pkv *kv = &s->kv[i];
        const char *k = kv->key, *v = kv->val;
        if (find_dup(s, i, k))
            return perr(c, kv->line, s, k, "given twice");
        if (strcmp(k, "prompt") == 0 || strcmp(k, "invalid") == 0) {
            if (strpbrk(v, " \t,\"\\"))
                return perr(c, kv->line, s, k, "no blanks, commas or quotes allowed");
            char **dst = k[0] == 'p' ? &m->prompt : &m->invalid_prompt;
            if (!(*dst = strdup(v)))
                return SB_ENOMEM;
        } else if (strcmp(k, "timeout") == 0) {
            if (parse_ms(v, &m->timeout_ms) < 0 || m->timeout_ms == 0)
                return perr(c, kv->line, s, k, "expected a duration such as 5s");
        } else if (strcmp(k, "retries") == 0) {
            if (parse_u(v, 0, 10, &m->retries) < 0)
                return perr(c, kv->line, s, k, "expected 0 to 10");
        } else if (strcmp(k, "fail") == 0) {
            int rc = parse_action_kv(c, s, kv, &m->fail);
            if (rc < 0)
                return rc;
        } else if (strlen(k) == 1 && (isdigit((unsigned char)k[0]) || k[0] == '*' || k[0] == '#')) {
            route_menu_entry *ne = realloc(m->entries, (m->nentries + 1) * sizeof *ne);
            if (!ne)
                return SB_ENOMEM;
            m->entries = ne;
            memset(&ne[m->nentries], 0, sizeof ne[0]);
            ne[m->nentries].digit = k[0];
            m->nentries++;
            int rc = parse_action_kv(c, s, kv, &ne[m->nentries - 1].action);
            if (rc < 0)
                return rc;
        } else {
            return perr(
                c, kv->line, s, k,
                "unknown key (prompt, invalid, timeout, retries, fail, or a digit 0-9 * #)");
        }
    }
    if (!m->prompt)
        return perr(c, s->line, s, NULL, "missing 'prompt'");
    if (!m->nentries)
        return perr(c, s->line, s, NULL, "no digit is mapped to an action");
    if (!m->invalid_prompt && !(m->invalid_prompt = strdup("option-is-invalid")))
        return SB_ENOMEM;
    return 0;
}

static int build_cidmap(pctx *c, const psec *s, route_cidmap *m)
{
    if (!(m->name = strdup(s->name)))
        return SB_ENOMEM;
    m->line = s->line;
    for (size_t i = 0; i < s->nkv; i++) {
        const pkv *kv = &s->kv[i];
        const char *k = kv->key, *v = kv->val;
        if (find_dup(s, i, k))
            return perr(c, kv->line, s, k, "given twice");
        if (strpbrk(v, " \t,\"\\|"))
            return perr(c, kv->line, s, k, "no blanks, commas or quotes allowed");
        if (strcmp(k, "target") == 0) {
            if (route_template_check(v) < 0)
                return perr(c, kv->line, s, k, "bad template '%s'", v);
            if (!(m->target = strdup(v)))
                return SB_ENOMEM;
        } else if (strcmp(k, "default") == 0) {
            if (!(m->def = strdup(v)))
                return SB_ENOMEM;
        } else if (strcmp(k, "timeout") == 0) {
            if (parse_ms(v, &m->timeout_ms) < 0)
                return perr(c, kv->line, s, k, "expected a duration such as 20s");
        } else {
            for (const char *q = k; *q; q++)
                if (!(isdigit((unsigned char)*q) || *q == '+' || *q == '*' || *q == '#'))
                    return perr(c, kv->line, s, k,
                                "unknown key (target, default, timeout, or a caller number)");
            route_kv *nk = realloc(m->map, (m->nmap + 1) * sizeof *nk);
            if (!nk)
                return SB_ENOMEM;
            m->map = nk;
            nk[m->nmap].name = strdup(k);
            nk[m->nmap].value = strdup(v);
            m->nmap++;
            if (!nk[m->nmap - 1].name || !nk[m->nmap - 1].value)
                return SB_ENOMEM;
        }
    }
    if (!m->target && !(m->target = strdup("PJSIP/${DEST}")))
        return SB_ENOMEM;
    return 0;
}

/* References to menus and maps must resolve. */
static int check_ref(pctx *c, const route_action *a, const char *kind, const char *name)
{
    if (a->kind == ROUTE_ACT_IVR && !route_db_menu(c->db, a->args[0])) {
        if (c->err && c->errsize)
            snprintf(c->err, c->errsize, "%s:%d: [%s %s] no [ivr %s] in the file", c->file, a->line,
                     kind, name, a->args[0]);
        return SB_EINVAL;
    }
    if (a->kind == ROUTE_ACT_CIDMAP && !route_db_cidmap(c->db, a->args[0])) {
        if (c->err && c->errsize)
            snprintf(c->err, c->errsize, "%s:%d: [%s %s] no [cidmap %s] in the file", c->file,
                     a->line, kind, name, a->args[0]);
        return SB_EINVAL;
    }
    return 0;
}

static int set_finish(route_set *set)
{
    const route_pattern **pats = malloc((set->nrules ? set->nrules : 1) * sizeof *pats);
    set->rank = malloc((set->nrules ? set->nrules : 1) * sizeof *set->rank);
    if (!pats || !set->rank) {
        free(pats);
        return SB_ENOMEM;
    }
    for (size_t i = 0; i < set->nrules; i++) {
        pats[i] = set->rules[i].match;
        set->rank[i] = i;
        set->rules[i].order = i;
        route_rule *r = &set->rules[i];
        if (r->ncallers || r->npbx || r->nhours || r->nholidays || r->nallow || r->pin_hash)
            set->has_conditions = true;
    }
    /* Insertion sort is stable; the tables are small enough (and this runs once per load). For
     * large sets a merge would do; 500 rules cost about 60,000 comparisons here. */
    for (size_t i = 1; i < set->nrules; i++) {
        size_t x = set->rank[i], j = i;
        while (j > 0 &&
               route_pattern_cmp(set->rules[set->rank[j - 1]].match, set->rules[x].match) > 0) {
            set->rank[j] = set->rank[j - 1];
            j--;
        }
        set->rank[j] = x;
    }
    set->pats = pats;
    return route_pattern_table_new(pats, set->nrules, &set->table);
}

int route_db_parse(const char *text, size_t len, const char *name, route_db **out, char *err,
                   size_t errsize)
{
    pctx c = {name ? name : "<routes>", err, errsize, NULL};
    psec *secs = NULL;
    size_t nsecs = 0;
    int rc;
    if (err && errsize)
        err[0] = 0;
    route_db *db = calloc(1, sizeof *db);
    if (!db)
        return SB_ENOMEM;
    c.db = db;
    if ((rc = split_sections(&c, text, len, &secs, &nsecs)) < 0)
        goto fail;
    /* Count first so arrays never move while rules point into them. */
    size_t nset = 0, nmenu = 0, ncid = 0;
    for (size_t i = 0; i < nsecs; i++) {
        const psec *s = &secs[i];
        if (strcmp(s->kind, "route") == 0)
            nset++;
        else if (strcmp(s->kind, "ivr") == 0)
            nmenu++;
        else if (strcmp(s->kind, "cidmap") == 0)
            ncid++;
        else if (strcmp(s->kind, "rule") != 0) {
            rc = perr(&c, s->line, NULL, NULL,
                      "unknown section kind '%s' (route, rule, ivr, cidmap)", s->kind);
            goto fail;
        }
    }
    db->sets = calloc(nset ? nset : 1, sizeof *db->sets);
    db->menus = calloc(nmenu ? nmenu : 1, sizeof *db->menus);
    db->cidmaps = calloc(ncid ? ncid : 1, sizeof *db->cidmaps);
    db->sections = calloc(nsecs ? nsecs : 1, sizeof *db->sections);
    if (!db->sets || !db->menus || !db->cidmaps || !db->sections) {
        rc = SB_ENOMEM;
        goto fail;
    }
    /* Rules per set, so each set's rule array is allocated once. */
    for (size_t i = 0; i < nsecs; i++) {
        const psec *s = &secs[i];
        route_section *rs = &db->sections[db->nsections++];
        rs->kind = strdup(s->kind);
        rs->name = strdup(s->name);
        rs->kv = calloc(s->nkv ? s->nkv : 1, sizeof *rs->kv);
        if (!rs->kind || !rs->name || !rs->kv) {
            rc = SB_ENOMEM;
            goto fail;
        }
        for (size_t j = 0; j < s->nkv; j++) {
            rs->kv[j].name = strdup(s->kv[j].key);
            rs->kv[j].value = strdup(s->kv[j].val);
            rs->nkv++;
            if (!rs->kv[j].name || !rs->kv[j].value) {
                rc = SB_ENOMEM;
                goto fail;
            }
        }
    }
    route_set *cur = NULL;
    for (size_t i = 0; i < nsecs; i++) {
        const psec *s = &secs[i];
        if (strcmp(s->kind, "route") == 0) {
            for (size_t j = 0; j < db->nsets; j++)
                if (strcmp(db->sets[j].name, s->name) == 0) {
                    rc = perr(&c, s->line, s, NULL, "route set defined twice (line %d)",
                              db->sets[j].line);
                    goto fail;
                }
            cur = &db->sets[db->nsets++];
            if ((rc = build_set(&c, s, cur)) < 0)
                goto fail;
            size_t nr = 0;
            for (size_t j = i + 1; j < nsecs && strcmp(secs[j].kind, "route") != 0; j++)
                if (strcmp(secs[j].kind, "rule") == 0)
                    nr++;
            cur->rules = calloc(nr ? nr : 1, sizeof *cur->rules);
            if (!cur->rules) {
                rc = SB_ENOMEM;
                goto fail;
            }
        } else if (strcmp(s->kind, "rule") == 0) {
            if (!cur) {
                rc = perr(&c, s->line, s, NULL,
                          "a [rule] must follow the [route NAME] it belongs to");
                goto fail;
            }
            for (size_t j = 0; j < cur->nrules; j++)
                if (strcmp(cur->rules[j].name, s->name) == 0) {
                    rc = perr(&c, s->line, s, NULL, "rule defined twice in [route %s] (line %d)",
                              cur->name, cur->rules[j].line);
                    goto fail;
                }
            route_rule *r = &cur->rules[cur->nrules++];
            if ((rc = build_rule(&c, s, r)) < 0)
                goto fail;
        } else if (strcmp(s->kind, "ivr") == 0) {
            if (route_db_menu(db, s->name)) {
                rc = perr(&c, s->line, s, NULL, "menu defined twice");
                goto fail;
            }
            if ((rc = build_menu(&c, s, &db->menus[db->nmenus++])) < 0)
                goto fail;
        } else {
            if (route_db_cidmap(db, s->name)) {
                rc = perr(&c, s->line, s, NULL, "caller-ID map defined twice");
                goto fail;
            }
            if ((rc = build_cidmap(&c, s, &db->cidmaps[db->ncidmaps++])) < 0)
                goto fail;
        }
    }
    for (size_t i = 0; i < db->nsets; i++) {
        route_set *set = &db->sets[i];
        for (size_t j = 0; j < set->nrules; j++) {
            route_rule *r = &set->rules[j];
            if ((rc = check_ref(&c, &r->action, "rule", r->name)) < 0 ||
                (rc = check_ref(&c, &r->closed, "rule", r->name)) < 0 ||
                (rc = check_ref(&c, &r->fallback, "rule", r->name)) < 0)
                goto fail;
        }
        if ((rc = set_finish(set)) < 0)
            goto fail;
    }
    for (size_t i = 0; i < db->nmenus; i++) {
        route_menu *m = &db->menus[i];
        for (size_t j = 0; j < m->nentries; j++)
            if ((rc = check_ref(&c, &m->entries[j].action, "ivr", m->name)) < 0)
                goto fail;
        if ((rc = check_ref(&c, &m->fail, "ivr", m->name)) < 0)
            goto fail;
    }
    psecs_free(secs, nsecs);
    *out = db;
    return 0;
fail:
    if (rc == SB_ENOMEM && err && errsize)
        snprintf(err, errsize, "%s: out of memory", c.file);
    psecs_free(secs, nsecs);
    route_db_free(db);
    return rc;
}

int route_db_export(const route_db *db, sb_buf *out)
{
    int rc = sb_buf_puts(out, "; switchboard routes (docs/routing.md)\n");
    for (size_t i = 0; rc == 0 && i < db->nsections; i++) {
        const route_section *s = &db->sections[i];
        rc = sb_buf_printf(out, "\n[%s %s]\n", s->kind, s->name);
        for (size_t j = 0; rc == 0 && j < s->nkv; j++)
            rc = sb_buf_printf(out, "%s = %s\n", s->kv[j].name, s->kv[j].value);
    }
    return rc;
}
