/* runner.c: one routed call as a chain of AGI commands (see runner.h).
 *
 * Each step sends one command and names the step that handles its reply (c->next), so a call
 * is a small struct and no stack is held while Asterisk plays a prompt or rings a phone. Every
 * path ends in call_end(): the decision is reported once (route.decided), then the transport is
 * told to let the call go. call_end() is always the last thing a step does, because the
 * transport may free the call from inside it.
 */
#include "routing/runner.h"

#include "core/error.h"
#include "core/log.h"
#include "core/strmap.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUB "routing"
#define MAX_HOPS 16 /* actions chained by IVR menus and decide, per call */

typedef struct db_ref {
    route_db *db;
    unsigned refs;
} db_ref;

typedef struct pin_fail {
    unsigned fails;
    uint64_t first_ms;
    uint64_t locked_until_ms;
} pin_fail;

#define PIN_FAIL_MAX_CALLERS 10000

struct route_engine {
    route_engine_config cfg;
    char pbx[64];
    db_ref *cur;
    size_t active;
    sb_strmap pin_fails; /* caller number -> pin_fail */
};

typedef void (*step_fn)(route_call *c, int status, const agi_reply *r);

/* A PIN check on the thread pool (argon2id takes tens of milliseconds on purpose). */
typedef struct pin_job {
    uv_work_t req;
    route_call *c;
    char hash[256];
    char pin[40];
    bool is_ok;
} pin_job;

struct route_call {
    route_engine *e;
    db_ref *dbr;
    const route_chan_ops *ops;
    void *chan;
    step_fn next;
    bool is_gone, is_done, is_hung_up, is_answered, is_emitted, is_async;
    bool used_fallback;
    const route_set *set;
    route_decision d;
    const route_action *act;
    route_action decided; /* an action a decide endpoint returned */
    const route_menu *menu;
    unsigned menu_tries, hops, pin_tries;
    size_t var_idx;
    uint64_t t0_ns;
    sb_buf line;
    pin_job *pw;
    char script[64], caller[64], caller_name[96], dialed[96], channel[160], uniqueid[64];
    char pbx[64], detail[200];
};

static const route_action hangup_action = {.kind = ROUTE_ACT_HANGUP, .text = "hangup"};

/* ---- engine ---- */

int route_engine_new(const route_engine_config *cfg, route_engine **out)
{
    route_engine *e = calloc(1, sizeof *e);
    if (!e || sodium_init() < 0) {
        free(e);
        return SB_ENOMEM;
    }
    e->cfg = *cfg;
    snprintf(e->pbx, sizeof e->pbx, "%s", cfg->pbx ? cfg->pbx : "");
    e->cfg.pbx = e->pbx;
    if (!e->cfg.command_timeout_ms)
        e->cfg.command_timeout_ms = 10000;
    if (!e->cfg.pin_fail_limit)
        e->cfg.pin_fail_limit = 5;
    if (!e->cfg.pin_lock_ms)
        e->cfg.pin_lock_ms = 15 * 60 * 1000;
    sb_strmap_init(&e->pin_fails);
    *out = e;
    return 0;
}

static void dbr_release(db_ref *r)
{
    if (r && --r->refs == 0) {
        route_db_free(r->db);
        free(r);
    }
}

void route_engine_set_db(route_engine *e, route_db *db)
{
    db_ref *r = NULL;
    if (db) {
        r = malloc(sizeof *r);
        if (!r) {
            SB_ERROR(SUB, "out of memory installing routes; keeping the old ones");
            route_db_free(db);
            return;
        }
        r->db = db;
        r->refs = 1;
    }
    dbr_release(e->cur);
    e->cur = r;
}

size_t route_engine_active(const route_engine *e)
{
    return e->active;
}

void route_engine_free(route_engine *e)
{
    if (!e)
        return;
    dbr_release(e->cur);
    sb_strmap_iter it;
    const char *k;
    void *v;
    sb_strmap_iter_init(&it, &e->pin_fails);
    while (sb_strmap_iter_next(&it, &k, &v))
        free(v);
    sb_strmap_free(&e->pin_fails);
    free(e);
}

json_t *route_decided_json(const route_decided *d)
{
    /* The envelope of docs/events.md: id, type, time (RFC 3339, ms), pbx, details. */
    unsigned char r[16];
    char id[40], when[40];
    struct timespec ts;
    struct tm tm;
    randombytes_buf(r, sizeof r);
    snprintf(id, sizeof id, "%02x%02x%02x%02x-%02x%02x-4%x%02x-%x%x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6] & 15, r[7], 8 | (r[8] & 3), r[8] >> 4, r[9],
             r[10], r[11], r[12], r[13], r[14], r[15]);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, ts.tv_nsec / 1000000 % 1000);
    json_t *details = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I}", "script", d->script, "rule",
        d->rule, "action", d->action, "detail", d->detail, "outcome", d->outcome, "from", d->caller,
        "to", d->dialed, "channel", d->channel, "uniqueid", d->uniqueid, "closed", d->is_closed,
        "fallback", d->used_fallback, "took_us", (json_int_t)d->elapsed_us);
    if (!details)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id, "type", "route.decided", "time", when,
                     "pbx", d->pbx, "details", details);
}

/* ---- PIN failures per caller ---- */

static bool pin_is_locked(route_engine *e, const char *caller)
{
    pin_fail *f = sb_strmap_get(&e->pin_fails, sb_slice_cstr(caller));
    return f && f->locked_until_ms > uv_now(e->cfg.loop);
}

static void pin_record(route_engine *e, const char *caller, bool is_ok)
{
    sb_slice key = sb_slice_cstr(caller);
    uint64_t now = uv_now(e->cfg.loop);
    pin_fail *f = sb_strmap_get(&e->pin_fails, key);
    if (is_ok) {
        free(sb_strmap_del(&e->pin_fails, key));
        return;
    }
    if (!f) {
        if (sb_strmap_count(&e->pin_fails) >= PIN_FAIL_MAX_CALLERS) {
            /* Forget callers whose window is over; when every entry is live, the table is
             * full of attackers already locked out: counting one more gains nothing. */
            sb_strmap_iter it;
            const char *k;
            void *v;
            char *stale[64];
            size_t n = 0;
            sb_strmap_iter_init(&it, &e->pin_fails);
            while (n < 64 && sb_strmap_iter_next(&it, &k, &v)) {
                pin_fail *pf = v;
                if (pf->locked_until_ms <= now && pf->first_ms + e->cfg.pin_lock_ms <= now)
                    stale[n++] = strdup(k);
            }
            for (size_t i = 0; i < n; i++) {
                if (stale[i])
                    free(sb_strmap_del(&e->pin_fails, sb_slice_cstr(stale[i])));
                free(stale[i]);
            }
            if (sb_strmap_count(&e->pin_fails) >= PIN_FAIL_MAX_CALLERS)
                return;
        }
        f = calloc(1, sizeof *f);
        if (!f || sb_strmap_put(&e->pin_fails, key, f) < 0) {
            free(f);
            return;
        }
        f->first_ms = now;
    }
    if (f->first_ms + e->cfg.pin_lock_ms <= now) {
        f->fails = 0;
        f->first_ms = now;
    }
    if (++f->fails >= e->cfg.pin_fail_limit) {
        f->locked_until_ms = now + e->cfg.pin_lock_ms;
        SB_WARN(SUB, "caller %s locked out of PIN entry for %u s after %u wrong PINs", caller,
                e->cfg.pin_lock_ms / 1000, f->fails);
        f->fails = 0;
        f->first_ms = now;
    }
}

/* ---- call plumbing ---- */

static void call_free(route_call *c)
{
    c->e->active--;
    dbr_release(c->dbr);
    route_action_clear(&c->decided);
    sb_buf_free(&c->line);
    free(c->pw);
    free(c);
}

static void copy_var(const agi_request *req, const char *name, char *dst, size_t size)
{
    sb_slice v = {"", 0};
    agi_request_get(req, name, &v);
    sb_slice_copy(v, dst, size);
}

route_call *route_call_new(route_engine *e, const route_chan_ops *ops, void *chan,
                           const agi_request *req)
{
    route_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->e = e;
    c->ops = ops;
    c->chan = chan;
    c->t0_ns = uv_hrtime();
    c->dbr = e->cur;
    if (c->dbr)
        c->dbr->refs++;
    sb_buf_init(&c->line, AGI_COMMAND_MAX + 1);
    sb_slice_copy(req->script, c->script, sizeof c->script);
    copy_var(req, "agi_callerid", c->caller, sizeof c->caller);
    copy_var(req, "agi_calleridname", c->caller_name, sizeof c->caller_name);
    copy_var(req, "agi_extension", c->dialed, sizeof c->dialed);
    copy_var(req, "agi_channel", c->channel, sizeof c->channel);
    copy_var(req, "agi_uniqueid", c->uniqueid, sizeof c->uniqueid);
    sb_slice pbx;
    if (agi_request_param(req, "pbx", &pbx))
        sb_slice_copy(pbx, c->pbx, sizeof c->pbx);
    else
        snprintf(c->pbx, sizeof c->pbx, "%s", e->pbx);
    if (!c->script[0]) {
        /* AsyncAGI has no script: the first AGI() argument names the route set
         * (AGI(agi:async,route)), else "route". */
        if (req->nargs && req->args[0].len)
            sb_slice_copy(req->args[0], c->script, sizeof c->script);
        else
            snprintf(c->script, sizeof c->script, "route");
    }
    if (strcmp(c->caller, "unknown") == 0)
        c->caller[0] = 0;
    e->active++;
    return c;
}

void route_call_set_pbx(route_call *c, const char *pbx)
{
    snprintf(c->pbx, sizeof c->pbx, "%s", pbx ? pbx : "");
}

static void emit(route_call *c, const char *outcome)
{
    if (c->is_emitted)
        return;
    c->is_emitted = true;
    route_decided d = {
        .script = c->script,
        .rule = c->d.rule ? c->d.rule->name : "",
        .action = c->act && c->act->text ? c->act->text : "",
        .detail = c->detail,
        .outcome = outcome,
        .caller = c->caller,
        .dialed = c->dialed,
        .channel = c->channel,
        .uniqueid = c->uniqueid,
        .pbx = c->pbx,
        .is_closed = c->d.is_closed,
        .used_fallback = c->used_fallback,
        .elapsed_us = (int64_t)((uv_hrtime() - c->t0_ns) / 1000),
    };
    if (sb_log_enabled(SB_LOG_INFO))
        SB_INFO(SUB, "%s: %s -> %s: rule %s, %s%s%s (%s, %lld us)", c->script, c->caller, c->dialed,
                d.rule[0] ? d.rule : "-", d.action[0] ? d.action : "no action",
                c->detail[0] ? ": " : "", c->detail, outcome, (long long)d.elapsed_us);
    if (c->e->cfg.on_decided)
        c->e->cfg.on_decided(&d, c->e->cfg.ud);
}

/* Reports the decision (if not yet) and lets the call go. MUST be the caller's last action. */
static void call_end(route_call *c, const char *outcome)
{
    emit(c, outcome);
    if (c->is_done)
        return;
    c->is_done = true;
    if (!c->is_gone)
        c->ops->finish(c->chan);
}

static void send_line(route_call *c, step_fn next, unsigned timeout_ms, const char *verb, ...)
{
    va_list ap;
    const char *a[8];
    sb_slice args[8];
    size_t n = 0;
    va_start(ap, verb);
    while (n < 8 && (a[n] = va_arg(ap, const char *)) != NULL) {
        args[n] = sb_slice_cstr(a[n]);
        n++;
    }
    va_end(ap);
    sb_buf_reset(&c->line);
    int rc = agi_command_format(&c->line, verb, args, n);
    if (rc == 0) {
        c->next = next;
        rc = c->ops->send(c->chan, c, (sb_slice){c->line.data, c->line.len},
                          timeout_ms ? timeout_ms : c->e->cfg.command_timeout_ms);
    }
    if (rc < 0) {
        SB_WARN(SUB, "%s: cannot send %s: %s", c->channel, verb, sb_strerror(rc));
        snprintf(c->detail, sizeof c->detail, "cannot send %s: %s", verb, sb_strerror(rc));
        call_end(c, "error");
    }
}

void route_call_hangup(route_call *c)
{
    c->is_hung_up = true;
}

void route_call_gone(route_call *c)
{
    c->is_gone = true;
    c->is_done = true;
    if (!c->is_emitted)
        emit(c, c->is_hung_up ? "hangup" : "error");
    if (!c->is_async)
        call_free(c);
}

void route_call_reply(route_call *c, int status, const agi_reply *r)
{
    step_fn next = c->next;
    c->next = NULL;
    if (c->is_done || !next)
        return;
    if (status != 0 && !(status == SB_EFAILED && r && r->code != 511)) {
        /* 511 (dead channel), time-out, disconnect: the dialogue is over. */
        if (!c->detail[0])
            snprintf(c->detail, sizeof c->detail, "%s",
                     r ? "channel hung up (511)" : sb_strerror(status));
        call_end(c, r && r->code == 511 ? "hangup" : c->is_hung_up ? "hangup" : "error");
        return;
    }
    if (c->is_hung_up) {
        snprintf(c->detail, sizeof c->detail, "caller hung up");
        call_end(c, "hangup");
        return;
    }
    next(c, status, r);
}

/* ---- steps ---- */

static void run_action(route_call *c, const route_action *a);
static void after_vars(route_call *c);

static void step_finish(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    call_end(c, "routed");
}

static void step_hungup_done(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    call_end(c, c->act && c->act->kind == ROUTE_ACT_HANGUP ? "routed" : "hangup");
}

static void step_send_hangup(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    send_line(c, step_hungup_done, 0, "HANGUP", NULL);
}

/* Answer first when the set wants audio paths up (answer = yes/auto) and we have not yet. */
static void with_answer(route_call *c, step_fn then)
{
    if (c->is_answered || c->set->answer == 0) {
        then(c, 0, NULL);
        return;
    }
    c->is_answered = true;
    send_line(c, then, 0, "ANSWER", NULL);
}

static void goodbye_play(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    send_line(c, step_send_hangup, 0, "STREAM FILE", c->set->pin_goodbye, "", NULL);
}

static void goodbye(route_call *c, const char *outcome, const char *detail)
{
    snprintf(c->detail, sizeof c->detail, "%s", detail);
    emit(c, outcome);
    with_answer(c, goodbye_play);
}

/* -- PIN -- */

static void pin_ask(route_call *c, int status, const agi_reply *r);

static void pin_checked(route_call *c, bool is_ok)
{
    if (is_ok) {
        pin_record(c->e, c->caller, true);
        snprintf(c->detail, sizeof c->detail, "PIN accepted on try %u; ", c->pin_tries + 1);
        after_vars(c);
        return;
    }
    pin_record(c->e, c->caller, false);
    c->pin_tries++;
    send_line(c, c->pin_tries >= c->set->pin_tries ? goodbye_play : pin_ask, 0, "STREAM FILE",
              c->set->pin_wrong, "", NULL);
    if (c->pin_tries >= c->set->pin_tries && !c->is_emitted) {
        snprintf(c->detail, sizeof c->detail, "%u wrong PINs", c->pin_tries);
        emit(c, "pin-failed");
    }
}

static void pin_job_after(uv_work_t *req, int status)
{
    pin_job *j = req->data;
    route_call *c = j->c;
    bool is_ok = status == 0 && j->is_ok;
    c->is_async = false;
    if (c->is_gone) {
        call_free(c);
        return;
    }
    pin_checked(c, is_ok);
}

static void pin_job_work(uv_work_t *req)
{
    pin_job *j = req->data;
    size_t n = strlen(j->pin);
    j->is_ok = n > 0 && crypto_pwhash_str_verify(j->hash, j->pin, n) == 0;
    sodium_memzero(j->pin, sizeof j->pin);
}

static void pin_got_digits(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    pin_job *j = c->pw;
    if (!j && !(j = c->pw = calloc(1, sizeof *j))) {
        call_end(c, "error");
        return;
    }
    j->c = c;
    j->req.data = j;
    j->pin[0] = 0;
    if (r && r->result_text.len < sizeof j->pin)
        sb_slice_copy(r->result_text, j->pin, sizeof j->pin);
    if (strspn(j->pin, "0123456789") != strlen(j->pin))
        j->pin[0] = 0;
    if (!j->pin[0]) {
        pin_checked(c, false);
        return;
    }
    snprintf(j->hash, sizeof j->hash, "%s", c->d.rule->pin_hash);
    c->is_async = true;
    if (uv_queue_work(c->e->cfg.loop, &j->req, pin_job_work, pin_job_after) != 0) {
        c->is_async = false;
        call_end(c, "error");
    }
}

static void pin_ask(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    char ms[16], max[16];
    snprintf(ms, sizeof ms, "%u", c->set->pin_timeout_ms);
    snprintf(max, sizeof max, "%u", c->set->pin_max_digits);
    send_line(c, pin_got_digits, c->set->pin_timeout_ms + c->e->cfg.command_timeout_ms, "GET DATA",
              c->set->pin_prompt, ms, max, NULL);
}

/* -- variables, then the action -- */

static void vars_next(route_call *c, int status, const agi_reply *r);

static void vars_next(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    const route_rule *rule = c->d.rule;
    route_vars v = {
        sb_slice_cstr(c->dialed), sb_slice_cstr(c->caller), sb_slice_cstr(c->caller_name), {"", 0}};
    if (c->var_idx < rule->nset) {
        const route_kv *kv = &rule->set[c->var_idx++];
        sb_buf val;
        sb_buf_init(&val, 1024);
        route_expand(kv->value, &v, &val);
        send_line(c, vars_next, 0, "SET VARIABLE", kv->name, val.data ? val.data : "", NULL);
        sb_buf_free(&val);
        return;
    }
    if (c->var_idx == rule->nset) {
        c->var_idx++;
        send_line(c, vars_next, 0, "SET VARIABLE", "__SB_ROUTE", rule->name, NULL);
        return;
    }
    run_action(c, c->d.action);
}

static void after_vars(route_call *c)
{
    c->var_idx = 0;
    vars_next(c, 0, NULL);
}

/* -- IVR -- */

static void menu_play(route_call *c, int status, const agi_reply *r);

static void menu_failed(route_call *c)
{
    const route_menu *m = c->menu;
    run_action(c, m->fail.kind ? &m->fail : &hangup_action);
}

static void menu_digit(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    const route_menu *m = c->menu;
    char digit = r && r->result_text.len >= 1 ? r->result_text.ptr[0] : 0;
    if (digit) {
        for (size_t i = 0; i < m->nentries; i++) {
            if (m->entries[i].digit == digit) {
                size_t off = strlen(c->detail);
                snprintf(c->detail + off, sizeof c->detail - off, "%s:%c ", m->name, digit);
                run_action(c, &m->entries[i].action);
                return;
            }
        }
    }
    if (++c->menu_tries > m->retries) {
        menu_failed(c);
        return;
    }
    if (digit)
        send_line(c, menu_play, 0, "STREAM FILE", m->invalid_prompt, "", NULL);
    else
        menu_play(c, 0, NULL);
}

static void menu_play(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    char ms[16];
    snprintf(ms, sizeof ms, "%u", c->menu->timeout_ms);
    send_line(c, menu_digit, c->menu->timeout_ms + c->e->cfg.command_timeout_ms, "GET DATA",
              c->menu->prompt, ms, "1", NULL);
}

/* -- decide -- */

static void decide_fallback(route_call *c, const char *why)
{
    const route_rule *r = c->d.rule;
    size_t off = strlen(c->detail);
    snprintf(c->detail + off, sizeof c->detail - off, "decide: %s, fallback; ", why);
    c->used_fallback = true;
    run_action(c, r && r->fallback.kind ? &r->fallback : &hangup_action);
}

static void decide_done(const httpc_resp *resp, void *ud)
{
    route_call *c = ud;
    char why[160] = "";
    c->is_async = false;
    if (c->is_gone) {
        call_free(c);
        return;
    }
    if (resp->err) {
        snprintf(why, sizeof why, "%s", sb_strerror(resp->err));
        decide_fallback(c, why);
        return;
    }
    if (resp->status < 200 || resp->status > 299) {
        snprintf(why, sizeof why, "HTTP %ld", resp->status);
        decide_fallback(c, why);
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(resp->body.ptr, resp->body.len, JSON_REJECT_DUPLICATES, &jerr);
    const char *text = doc ? json_string_value(json_object_get(doc, "action")) : NULL;
    route_action a = {0};
    char msg[160];
    if (!text || route_action_parse(text, &a, msg, sizeof msg) < 0) {
        json_decref(doc);
        decide_fallback(c, "answer is not {\"action\": \"...\"}");
        return;
    }
    json_decref(doc);
    if (a.kind == ROUTE_ACT_DECIDE ||
        (a.kind == ROUTE_ACT_IVR && !route_db_menu(c->dbr->db, a.args[0])) ||
        (a.kind == ROUTE_ACT_CIDMAP && !route_db_cidmap(c->dbr->db, a.args[0]))) {
        route_action_clear(&a);
        decide_fallback(c, "answer names an action that cannot run here");
        return;
    }
    route_action_clear(&c->decided);
    c->decided = a;
    size_t off = strlen(c->detail);
    snprintf(c->detail + off, sizeof c->detail - off, "decide: %s; ", a.text);
    run_action(c, &c->decided);
}

static void decide_start(route_call *c, const route_action *a)
{
    if (!c->e->cfg.http) {
        decide_fallback(c, "no HTTP client");
        return;
    }
    time_t now = time(NULL);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "script", c->script,
                             "from", c->caller, "caller_name", c->caller_name, "to", c->dialed,
                             "channel", c->channel, "uniqueid", c->uniqueid, "pbx", c->pbx, "rule",
                             c->d.rule ? c->d.rule->name : "", "time", (json_int_t)now);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        decide_fallback(c, "out of memory");
        return;
    }
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    httpc_req req = {.method = "POST",
                     .url = a->args[0],
                     .headers = headers,
                     .body = sb_slice_cstr(text),
                     .timeout_ms = a->timeout_ms ? a->timeout_ms : 1000,
                     .max_body = 16384};
    int rc = httpc_request(c->e->cfg.http, &req, decide_done, c);
    free(text);
    if (rc < 0) {
        decide_fallback(c, sb_strerror(rc));
        return;
    }
    c->is_async = true;
}

/* -- actions -- */

static void exec_app(route_call *c, const route_action *a, const route_vars *v, step_fn then)
{
    const char *app;
    sb_buf data;
    sb_buf_init(&data, AGI_COMMAND_MAX);
    if (route_action_app(a, v, &app, &data) < 0) {
        sb_buf_free(&data);
        snprintf(c->detail, sizeof c->detail, "cannot build the application of '%s'", a->text);
        call_end(c, "error");
        return;
    }
    size_t off = strlen(c->detail);
    snprintf(c->detail + off, sizeof c->detail - off, "%s %s", app, data.data ? data.data : "");
    emit(c, "routed");
    send_line(c, then, c->e->cfg.exec_timeout_ms, "EXEC", app, data.data ? data.data : "", NULL);
    sb_buf_free(&data);
}

static void answered_exec(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    route_vars v = {
        sb_slice_cstr(c->dialed), sb_slice_cstr(c->caller), sb_slice_cstr(c->caller_name), {"", 0}};
    /* Playback hangs up afterwards; a conference ends when the caller leaves it. */
    exec_app(c, c->act, &v, c->act->kind == ROUTE_ACT_PLAYBACK ? step_send_hangup : step_finish);
}

static void menu_enter(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    menu_play(c, 0, NULL);
}

static void set_next(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    const route_action *a = c->act;
    if (c->var_idx >= a->nargs) {
        call_end(c, "routed");
        return;
    }
    const char *arg = a->args[c->var_idx++];
    const char *eq = strchr(arg, '=');
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    route_vars v = {
        sb_slice_cstr(c->dialed), sb_slice_cstr(c->caller), sb_slice_cstr(c->caller_name), {"", 0}};
    sb_buf val;
    sb_buf_init(&val, 1024);
    route_expand(eq + 1, &v, &val);
    send_line(c, set_next, 0, "SET VARIABLE", name, val.data ? val.data : "", NULL);
    sb_buf_free(&val);
}

static void run_action(route_call *c, const route_action *a)
{
    route_vars v = {
        sb_slice_cstr(c->dialed), sb_slice_cstr(c->caller), sb_slice_cstr(c->caller_name), {"", 0}};
    c->act = a;
    if (++c->hops > MAX_HOPS) {
        snprintf(c->detail, sizeof c->detail, "more than %d chained actions", MAX_HOPS);
        emit(c, "error");
        send_line(c, step_hungup_done, 0, "HANGUP", NULL);
        return;
    }
    switch (a->kind) {
    case ROUTE_ACT_DIAL:
    case ROUTE_ACT_QUEUE:
    case ROUTE_ACT_VOICEMAIL:
        exec_app(c, a, &v, step_finish);
        return;
    case ROUTE_ACT_CONFERENCE:
    case ROUTE_ACT_PLAYBACK:
        with_answer(c, answered_exec);
        return;
    case ROUTE_ACT_HANGUP:
        emit(c, "routed");
        send_line(c, step_hungup_done, 0, "HANGUP", NULL);
        return;
    case ROUTE_ACT_SET:
        emit(c, "routed");
        c->var_idx = 0;
        set_next(c, 0, NULL);
        return;
    case ROUTE_ACT_IVR:
        c->menu = route_db_menu(c->dbr->db, a->args[0]);
        c->menu_tries = 0;
        with_answer(c, menu_enter);
        return;
    case ROUTE_ACT_DECIDE:
        decide_start(c, a);
        return;
    case ROUTE_ACT_CIDMAP: {
        const route_cidmap *m = route_db_cidmap(c->dbr->db, a->args[0]);
        const char *dest = route_cidmap_lookup(m, v.caller);
        if (!dest) {
            snprintf(c->detail, sizeof c->detail, "caller not in map %s, no default", m->name);
            emit(c, "routed");
            send_line(c, step_hungup_done, 0, "HANGUP", NULL);
            return;
        }
        v.dest = sb_slice_cstr(dest);
        char *target[1] = {m->target};
        size_t off = strlen(c->detail);
        snprintf(c->detail + off, sizeof c->detail - off, "map %s: %s; ", m->name, dest);
        route_action dial = {.kind = ROUTE_ACT_DIAL,
                             .args = target,
                             .nargs = 1,
                             .timeout_ms = m->timeout_ms,
                             .text = a->text};
        exec_app(c, &dial, &v, step_finish);
        return;
    }
    case ROUTE_ACT_NONE:
        break;
    }
    call_end(c, "error");
}

/* -- start -- */

static void step_decide(route_call *c)
{
    route_facts f = {sb_slice_cstr(c->dialed), sb_slice_cstr(c->caller), sb_slice_cstr(c->pbx),
                     time(NULL)};
    if (route_decide(c->set, &f, &c->d, NULL) < 0) {
        snprintf(c->detail, sizeof c->detail, "no rule matches %s", c->dialed);
        call_end(c, "no-route");
        return;
    }
    if (c->d.is_denied) {
        c->act = &hangup_action;
        goodbye(c, "denied", "caller not allowed by the rule");
        return;
    }
    if (c->d.needs_pin) {
        if (pin_is_locked(c->e, c->caller)) {
            c->act = &hangup_action;
            goodbye(c, "pin-locked", "caller locked out after repeated wrong PINs");
            return;
        }
        c->pin_tries = 0;
        with_answer(c, pin_ask);
        return;
    }
    after_vars(c);
}

static void got_cid_name(route_call *c, int status, const agi_reply *r)
{
    if (status == 0 && r && r->has_result && r->result == 1 && r->has_data)
        sb_slice_copy(r->data, c->caller_name, sizeof c->caller_name);
    step_decide(c);
}

static void got_cid_num(route_call *c, int status, const agi_reply *r)
{
    if (status == 0 && r && r->has_result && r->result == 1 && r->has_data)
        sb_slice_copy(r->data, c->caller, sizeof c->caller);
    send_line(c, got_cid_name, 0, "GET VARIABLE", "CALLERID(name)", NULL);
}

static void step_fetch(route_call *c, int status, const agi_reply *r)
{
    (void)status;
    (void)r;
    send_line(c, got_cid_num, 0, "GET VARIABLE", "CALLERID(num)", NULL);
}

void route_call_run(route_call *c)
{
    c->set = c->dbr ? route_db_set(c->dbr->db, sb_slice_cstr(c->script)) : NULL;
    if (!c->set) {
        snprintf(c->detail, sizeof c->detail, "no route set '%s'", c->script);
        call_end(c, "no-route");
        return;
    }
    if (c->set->answer == 1) {
        c->is_answered = true;
        send_line(c, step_fetch, 0, "ANSWER", NULL);
        return;
    }
    step_fetch(c, 0, NULL);
}
