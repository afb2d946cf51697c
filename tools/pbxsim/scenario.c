/* scenario.c: loads scenario files (tools/pbxsim/scenarios/NAME.scn, format in docs/pbxsim.md)
 * and plays instances of them on the loop: event blocks copied from the fixtures with
 * ${PLACEHOLDERS} filled per instance (fresh Uniqueids, channel sequence numbers, bridge ids,
 * times), delays scaled by the time scale, and %member lines that update a queue member and emit
 * its QueueMemberStatus from the state.
 */
#include "internal.h"

#include "core/error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define SCN_MAX_FILE (1024 * 1024)
#define SCN_MAX_STEPS 4096

const char *const pbxsim_scenarios[] = {
    "internal-call",
    "originate-app",
    "queue-call-answered",
    "queue-call-abandoned",
    "inbound-trunk-queue",
    "originate-busy",
    "originate-nocontext",
    "register-phone",
    "originate-phone",
    "long-call",
    NULL,
};

/* The raw stream's mix: every scenario, including those only an action starts. */
static const char *const stream_mix[] = {
    "internal-call",
    "originate-app",
    "queue-call-answered",
    "queue-call-abandoned",
    "inbound-trunk-queue",
    "originate-busy",
    "originate-nocontext",
    "originate-unregistered",
    "register-phone",
    "originate-phone",
    "long-call",
    "long-call-redirect",
    NULL,
};

static void scenario_free(scenario *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nsteps; i++) {
        free(s->steps[i].text);
        free(s->steps[i].cond);
    }
    for (size_t i = 0; i < s->ndefaults; i++)
        free(s->defaults[i]);
    free(s->defaults);
    free(s->steps);
    free(s->name);
    free(s);
}

void sim_scenarios_free(pbxsim *sim)
{
    while (sim->scenarios) {
        scenario *next = sim->scenarios->next;
        scenario_free(sim->scenarios);
        sim->scenarios = next;
    }
}

static bool valid_name(const char *name)
{
    if (!name[0] || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    return true;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(SCN_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, SCN_MAX_FILE + 1, f) : 0;
    fclose(f);
    if (!buf || n > SCN_MAX_FILE) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int add_step(scenario *s, scn_step st)
{
    if (s->nsteps == SCN_MAX_STEPS)
        return SB_ETOOBIG;
    scn_step *n = realloc(s->steps, (s->nsteps + 1) * sizeof *n);
    if (!n)
        return SB_ENOMEM;
    s->steps = n;
    s->steps[s->nsteps++] = st;
    return 0;
}

/* Parses a scenario file. Lines: "# comment", "%set NAME value", "%delay MS", "%if COND...",
 * "%each VARIABLE", "%each-reverse VARIABLE", "%member QUEUE IFACE k=v...", and event blocks
 * ("Key: value" lines ended by a blank line). %if and %each apply to the next step. */
static int scenario_parse(scenario *s, char *text)
{
    char *cond = NULL;
    int each = 0;
    sb_buf block;
    sb_buf_init(&block, SCN_MAX_FILE);
    int rc = 0;
    char *save = NULL;
    char *line = text;
    bool done = false;
    (void)save;
    while (!done) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        else
            done = true;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        bool blank = l == 0;
        if ((blank || done) && block.len) {
            if (!blank && line[0] != '#' && line[0] != '%') {
                if ((rc = sb_buf_puts(&block, line)) < 0)
                    goto out;
            }
            scn_step st = {
                .kind = SCN_EVENT, .text = sb_buf_steal(&block), .cond = cond, .each = each};
            cond = NULL;
            each = 0;
            if (!st.text || (rc = add_step(s, st)) < 0) {
                free(st.text);
                rc = rc ? rc : SB_ENOMEM;
                goto out;
            }
        } else if (blank || line[0] == '#') {
            /* nothing */
        } else if (line[0] == '%') {
            if (block.len) {
                rc = SB_EPROTO; /* a directive inside an event block */
                goto out;
            }
            if (strncmp(line, "%set ", 5) == 0) {
                char *name = line + 5;
                char *sp = strchr(name, ' ');
                const char *value = sp ? sp + 1 : "";
                if (sp)
                    *sp = '\0';
                char **d = realloc(s->defaults, (s->ndefaults + 1) * sizeof *d);
                if (!d) {
                    rc = SB_ENOMEM;
                    goto out;
                }
                s->defaults = d;
                size_t need = strlen(name) + strlen(value) + 2;
                d[s->ndefaults] = malloc(need);
                if (!d[s->ndefaults]) {
                    rc = SB_ENOMEM;
                    goto out;
                }
                snprintf(d[s->ndefaults++], need, "%s=%s", name, value);
            } else if (strncmp(line, "%delay ", 7) == 0) {
                char *end;
                unsigned long long ms = strtoull(line + 7, &end, 10);
                if (*end) {
                    rc = SB_EPROTO;
                    goto out;
                }
                scn_step st = {.kind = SCN_DELAY, .ms = ms};
                if ((rc = add_step(s, st)) < 0)
                    goto out;
            } else if (strncmp(line, "%if ", 4) == 0) {
                free(cond);
                cond = strdup(line + 4);
                if (!cond) {
                    rc = SB_ENOMEM;
                    goto out;
                }
            } else if (strcmp(line, "%each VARIABLE") == 0) {
                each = 1;
            } else if (strcmp(line, "%each-reverse VARIABLE") == 0) {
                each = 2;
            } else if (strncmp(line, "%member ", 8) == 0) {
                scn_step st = {.kind = SCN_MEMBER, .text = strdup(line + 8), .cond = cond};
                cond = NULL;
                if (!st.text || (rc = add_step(s, st)) < 0) {
                    free(st.text);
                    rc = rc ? rc : SB_ENOMEM;
                    goto out;
                }
            } else {
                rc = SB_EPROTO;
                goto out;
            }
        } else {
            if (!strchr(line, ':')) {
                rc = SB_EPROTO;
                goto out;
            }
            if (block.len && (rc = sb_buf_puts(&block, "\n")) < 0)
                goto out;
            if ((rc = sb_buf_puts(&block, line)) < 0)
                goto out;
        }
        if (nl)
            line = nl + 1;
    }
out:
    free(cond);
    sb_buf_free(&block);
    return rc;
}

const scenario *sim_scenario_get(pbxsim *sim, const char *name, int *err)
{
    *err = 0;
    for (scenario *s = sim->scenarios; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    if (!valid_name(name)) {
        *err = SB_EINVAL;
        return NULL;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.scn", sim->scenario_dir, name);
    size_t len = 0;
    char *text = read_all(path, &len);
    if (!text) {
        *err = SB_ENOTFOUND;
        return NULL;
    }
    scenario *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name))) {
        free(text);
        scenario_free(s);
        *err = SB_ENOMEM;
        return NULL;
    }
    int rc = scenario_parse(s, text);
    free(text);
    if (rc < 0) {
        scenario_free(s);
        *err = rc;
        return NULL;
    }
    s->next = sim->scenarios;
    sim->scenarios = s;
    return s;
}

/* ---- variables ---- */

static const char *var_get(const sim_call *c, const char *name, size_t nlen)
{
    for (size_t i = c->nvars; i-- > 0;)
        if (strlen(c->vars[i].name) == nlen && memcmp(c->vars[i].name, name, nlen) == 0)
            return c->vars[i].value;
    for (size_t i = 0; i < c->scn->ndefaults; i++) {
        const char *d = c->scn->defaults[i];
        if (strncmp(d, name, nlen) == 0 && d[nlen] == '=')
            return d + nlen + 1;
    }
    return NULL;
}

static int var_set(sim_call *c, const char *name, size_t nlen, const char *value)
{
    if (c->nvars == c->capvars) {
        size_t cap = c->capvars ? c->capvars * 2 : 16;
        sim_var *n = realloc(c->vars, cap * sizeof *n);
        if (!n)
            return SB_ENOMEM;
        c->vars = n;
        c->capvars = cap;
    }
    char *k = malloc(nlen + 1);
    char *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return SB_ENOMEM;
    }
    memcpy(k, name, nlen);
    k[nlen] = '\0';
    c->vars[c->nvars++] = (sim_var){k, v};
    return 0;
}

static int var_set_kv(sim_call *c, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq)
        return SB_EINVAL;
    return var_set(c, kv, (size_t)(eq - kv), eq + 1);
}

static bool starts_num(const char *name, size_t nlen, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (nlen <= pl || memcmp(name, prefix, pl) != 0)
        return false;
    for (size_t i = pl; i < nlen; i++)
        if (!isdigit((unsigned char)name[i]))
            return false;
    return true;
}

typedef struct each_ctx {
    const char *name;
    size_t nlen;
    const char *value;
} each_ctx;

/* Value of one placeholder, allocating ids on first use. Returns a pointer valid until the
 * next var_set, or "" for unknown names. */
static const char *resolve(sim_call *c, const char *name, size_t nlen, const each_ctx *each,
                           char *tmp, size_t tsize)
{
    pbxsim *sim = c->sim;
    if (each && nlen == 7 && memcmp(name, "VARNAME", 7) == 0) {
        snprintf(tmp, tsize, "%.*s", (int)each->nlen, each->name);
        return tmp;
    }
    if (each && nlen == 8 && memcmp(name, "VARVALUE", 8) == 0)
        return each->value;
    const char *v = var_get(c, name, nlen);
    if (v)
        return v;
    struct timeval tv;
    gettimeofday(&tv, NULL);
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
    if (IS("NOW_TV")) {
        sim_fmt_tv(tv.tv_sec, (long)(tv.tv_usec / 1000), tmp, tsize);
        return tmp;
    }
    if (IS("NOW_CDR")) {
        sim_fmt_cdr(tv.tv_sec, tmp, tsize);
        return tmp;
    }
    if (IS("START_CDR")) {
        sim_fmt_cdr(c->start, tmp, tsize);
        return tmp;
    }
    if (IS("EPOCH")) {
        snprintf(tmp, tsize, "%ld", (long)tv.tv_sec);
        return tmp;
    }
    if (IS("TS")) {
        snprintf(tmp, tsize, "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
        return tmp;
    }
    if (IS("ELAPSED")) {
        snprintf(tmp, tsize, "%ld", (long)(tv.tv_sec - c->start));
        return tmp;
    }
#undef IS
    char fresh[64];
    fresh[0] = '\0';
    if (starts_num(name, nlen, "UID")) {
        sim_new_uniqueid(sim, fresh, sizeof fresh);
    } else if (starts_num(name, nlen, "SEQ")) {
        snprintf(fresh, sizeof fresh, "%08llx", (unsigned long long)sim->seq_counter++);
    } else if (starts_num(name, nlen, "BRIDGE")) {
        unsigned r[4];
        for (int i = 0; i < 4; i++)
            r[i] = (unsigned)random();
        snprintf(fresh, sizeof fresh, "%08x-%04x-4%03x-%04x-%08x%04x", r[0], r[1] & 0xffff,
                 r[2] & 0xfff, (r[2] >> 16 & 0x3fff) | 0x8000, r[3], r[1] >> 16 & 0xffff);
    } else {
        return "";
    }
    if (var_set(c, name, nlen, fresh) < 0)
        return "";
    return c->vars[c->nvars - 1].value;
}

/* Renders a template (lines joined by '\n') into out as a CRLF packet. An "ActionID:" line
 * whose value renders empty is left out (no ActionID was given). */
static int render(sim_call *c, const char *tpl, const each_ctx *each, sb_buf *out, bool packet)
{
    int rc = 0;
    const char *p = tpl;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        size_t line_start = out->len;
        size_t i = 0;
        while (i < l) {
            if (p[i] == '$' && i + 1 < l && p[i + 1] == '{') {
                const char *close = memchr(p + i + 2, '}', l - i - 2);
                if (close) {
                    char tmp[128];
                    const char *v =
                        resolve(c, p + i + 2, (size_t)(close - (p + i + 2)), each, tmp, sizeof tmp);
                    if ((rc = sb_buf_puts(out, v)) < 0)
                        return rc;
                    i = (size_t)(close - p) + 1;
                    continue;
                }
            }
            if ((rc = sb_buf_append(out, p + i, 1)) < 0)
                return rc;
            i++;
        }
        if (packet && out->len - line_start == strlen("ActionID: ") &&
            memcmp(out->data + line_start, "ActionID: ", 10) == 0) {
            out->len = line_start;
            out->data[out->len] = '\0';
        } else if ((rc = sb_buf_puts(out, packet ? "\r\n" : "\n")) < 0) {
            return rc;
        }
        p = eol ? eol + 1 : p + l;
    }
    if (packet)
        rc = sb_buf_puts(out, "\r\n");
    return rc;
}

static bool cond_true(sim_call *c, const char *cond)
{
    if (!cond)
        return true;
    char buf[256];
    sim_copy(buf, sizeof buf, cond);
    char *save = NULL;
    for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        bool neg = w[0] == '!';
        const char *name = w + (neg ? 1 : 0);
        const char *v = var_get(c, name, strlen(name));
        bool set = v && v[0];
        if (set == neg)
            return false;
    }
    return true;
}

/* %member QUEUE IFACE key=value...: applies the changes to the member and emits its
 * QueueMemberStatus from the state. CallsTaken=+1 increments. */
static void run_member(sim_call *c, const char *spec, bool emit, sb_buf *collect)
{
    pbxsim *sim = c->sim;
    sb_buf line;
    sb_buf_init(&line, 4096);
    if (render(c, spec, NULL, &line, false) < 0 || !line.data)
        goto out;
    char *save = NULL;
    char *qname = strtok_r(line.data, " \t\n", &save);
    char *iface = strtok_r(NULL, " \t\n", &save);
    if (!qname || !iface)
        goto out;
    sim_queue *q = sim_state_queue(&sim->state, sb_slice_cstr(qname));
    sim_member *cur = q ? sim_queue_member(q, sb_slice_cstr(iface)) : NULL;
    if (!cur)
        goto out;
    sim_member mb = *cur;
    for (char *kv = strtok_r(NULL, " \t\n", &save); kv; kv = strtok_r(NULL, " \t\n", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *v = eq + 1;
        long long n = strtoll(v, NULL, 10);
        if (strcmp(kv, "InCall") == 0)
            mb.in_call = (int)n;
        else if (strcmp(kv, "Status") == 0)
            mb.status = (int)n;
        else if (strcmp(kv, "CallsTaken") == 0)
            mb.calls_taken = v[0] == '+' ? mb.calls_taken + (int)n : (int)n;
        else if (strcmp(kv, "LastCall") == 0)
            mb.last_call = n;
        else if (strcmp(kv, "Paused") == 0)
            mb.paused = n != 0;
    }
    ami_msg m;
    ami_msg_init(&m, "Event", "QueueMemberStatus");
    ami_msg_add(&m, "Privilege", "agent,all");
    sim_msg_member(&m, q, &mb);
    const char *data;
    size_t len;
    if (ami_msg_finish(&m, &data, &len) == 0) {
        if (emit)
            sim_emit(sim, data, len);
        else if (collect)
            sb_buf_append(collect, data, len);
    }
    ami_msg_free(&m);
out:
    sb_buf_free(&line);
}

static void emit_rendered(sim_call *c, sb_buf *b)
{
    pbxsim *sim = c->sim;
    sim_call *prev = sim->emitting;
    sim->emitting = c;
    sim_emit(sim, b->data, b->len);
    sim->emitting = prev;
}

/* Renders one event step (once, or once per originate variable) and emits it. */
static void run_event(sim_call *c, const scn_step *st, bool emit, sb_buf *collect)
{
    sb_buf b;
    sb_buf_init(&b, 1024 * 1024);
    if (!st->each) {
        if (render(c, st->text, NULL, &b, true) == 0 && b.len) {
            if (emit)
                emit_rendered(c, &b);
            else
                sb_buf_append(collect, b.data, b.len);
        }
        sb_buf_free(&b);
        return;
    }
    for (size_t k = 0; k < c->norig_vars; k++) {
        size_t i = st->each == 2 ? c->norig_vars - 1 - k : k;
        const char *kv = c->orig_vars[i];
        const char *eq = strchr(kv, '=');
        each_ctx e = {kv, eq ? (size_t)(eq - kv) : strlen(kv), eq ? eq + 1 : ""};
        sb_buf_reset(&b);
        if (render(c, st->text, &e, &b, true) == 0 && b.len) {
            if (emit)
                emit_rendered(c, &b);
            else
                sb_buf_append(collect, b.data, b.len);
        }
    }
    sb_buf_free(&b);
}

/* ---- instances ---- */

static void call_timer_closed(uv_handle_t *h)
{
    sim_call *c = h->data;
    pbxsim *sim = c->sim;
    for (size_t i = 0; i < c->nvars; i++) {
        free(c->vars[i].name);
        free(c->vars[i].value);
    }
    free(c->vars);
    for (size_t i = 0; i < c->norig_vars; i++)
        free(c->orig_vars[i]);
    free(c->orig_vars);
    free(c);
    sim->open_handles--;
    /* pbxsim_free may be waiting for this handle */
    if (sim->free_requested && sim->open_handles == 0)
        pbxsim_free(sim);
}

static void call_finish(sim_call *c, int status)
{
    pbxsim *sim = c->sim;
    if (c->done)
        return;
    c->done = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        sim->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (sim->emitting == c)
        sim->emitting = NULL;
    uv_timer_stop(&c->timer);
    if (c->on_done)
        c->on_done(c->arg, status);
    uv_close((uv_handle_t *)&c->timer, call_timer_closed);
}

static void call_run(uv_timer_t *t)
{
    sim_call *c = t->data;
    pbxsim *sim = c->sim;
    while (!c->done && c->pc < c->scn->nsteps) {
        const scn_step *st = &c->scn->steps[c->pc++];
        if (st->kind == SCN_DELAY) {
            double ms = (double)st->ms * sim->time_scale;
            uint64_t wait = (uint64_t)(ms + 0.5);
            if (wait > 0) {
                uv_timer_start(&c->timer, call_run, wait, 0);
                return;
            }
            continue;
        }
        if (!cond_true(c, st->cond))
            continue;
        if (st->kind == SCN_MEMBER)
            run_member(c, st->text, true, NULL);
        else
            run_event(c, st, true, NULL);
    }
    if (!c->done)
        call_finish(c, 0);
}

int sim_call_start(pbxsim *sim, const scenario *scn, const char *const *vars, size_t nvars,
                   const char *const *orig_vars, size_t norig, sim_call **out)
{
    int rc = SB_ENOMEM;
    sim_call *c = calloc(1, sizeof *c);
    if (!c)
        return SB_ENOMEM;
    c->sim = sim;
    c->scn = scn;
    c->id = ++sim->next_call_id;
    c->start = time(NULL);
    c->start_ms = sim_now_ms(sim);
    for (size_t i = 0; i < nvars; i++)
        if (vars[i] && (rc = var_set_kv(c, vars[i])) < 0 && rc != SB_EINVAL)
            goto fail;
    if (norig) {
        c->orig_vars = calloc(norig, sizeof *c->orig_vars);
        if (!c->orig_vars)
            goto fail;
        for (size_t i = 0; i < norig; i++) {
            c->orig_vars[i] = strdup(orig_vars[i]);
            if (!c->orig_vars[i])
                goto fail;
            c->norig_vars = i + 1;
        }
    }
    uv_timer_init(sim->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    sim->open_handles++;
    c->next = sim->calls;
    if (sim->calls)
        sim->calls->prev = c;
    sim->calls = c;
    sim->stats.calls_started++;
    /* first step on the next loop turn: an action's answer goes out before its events */
    uv_timer_start(&c->timer, call_run, 0, 0);
    if (out)
        *out = c;
    return 0;
fail:
    for (size_t i = 0; i < c->nvars; i++) {
        free(c->vars[i].name);
        free(c->vars[i].value);
    }
    free(c->vars);
    for (size_t i = 0; i < c->norig_vars; i++)
        free(c->orig_vars[i]);
    free(c->orig_vars);
    free(c);
    return rc;
}

sim_call *sim_call_find(pbxsim *sim, uint64_t id)
{
    if (!id)
        return NULL;
    for (sim_call *c = sim->calls; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

void sim_call_cancel(sim_call *c)
{
    call_finish(c, SB_ECANCELED);
}

void sim_call_switch(sim_call *c, const scenario *scn, const char *const *vars, size_t nvars)
{
    if (c->done)
        return;
    for (size_t i = 0; i < nvars; i++)
        var_set_kv(c, vars[i]);
    c->scn = scn;
    c->pc = 0;
    uv_timer_start(&c->timer, call_run, 0, 0);
}

/* ---- raw streaming mode ---- */

int sim_stream_prepare(pbxsim *sim)
{
    if (sim->stream_data)
        return 0;
    sb_buf all;
    sb_buf_init(&all, 64u * 1024 * 1024);
    size_t cap = 1024, n = 0;
    size_t *offs = malloc(cap * sizeof *offs);
    if (!offs)
        return SB_ENOMEM;
    uint64_t saved_uid = sim->uid_counter, saved_seq = sim->seq_counter;
    int rc = 0;
    for (int round = 0; round < 4 && rc == 0; round++) {
        for (const char *const *name = stream_mix; *name && rc == 0; name++) {
            int err = 0;
            const scenario *scn = sim_scenario_get(sim, *name, &err);
            if (!scn)
                continue;
            sim_call c;
            memset(&c, 0, sizeof c);
            c.sim = sim;
            c.scn = scn;
            c.start = time(NULL);
            static const char *const demo[] = {"CALLERNUM=34600111222", "CALLERNAME=Customer",
                                               "CALLERID=1", "ASYNC=1", "ACTIONID="};
            for (size_t i = 0; i < sizeof demo / sizeof demo[0]; i++)
                var_set_kv(&c, demo[i]);
            for (size_t i = 0; i < scn->nsteps && rc == 0; i++) {
                const scn_step *st = &scn->steps[i];
                if (st->kind == SCN_DELAY || !cond_true(&c, st->cond))
                    continue;
                size_t before = all.len;
                if (st->kind == SCN_MEMBER)
                    run_member(&c, st->text, false, &all);
                else
                    run_event(&c, st, false, &all);
                /* one event per step: record where it starts */
                if (all.len > before) {
                    if (n + 2 > cap) {
                        size_t *o = realloc(offs, cap * 2 * sizeof *o);
                        if (!o) {
                            rc = SB_ENOMEM;
                            break;
                        }
                        offs = o;
                        cap *= 2;
                    }
                    offs[n++] = before;
                }
            }
            for (size_t i = 0; i < c.nvars; i++) {
                free(c.vars[i].name);
                free(c.vars[i].value);
            }
            free(c.vars);
        }
    }
    sim->uid_counter = saved_uid;
    sim->seq_counter = saved_seq;
    if (rc < 0 || n == 0) {
        free(offs);
        sb_buf_free(&all);
        return rc < 0 ? rc : SB_ENOTFOUND;
    }
    offs[n] = all.len;
    sim->stream_offs = offs;
    sim->stream_count = n;
    sim->stream_len = all.len;
    sim->stream_data = sb_buf_steal(&all);
    return 0;
}
