/* routing_fixture.h: what the routing integration tests share (a test helper, header-only): a
 * loop with the routing engine, its FastAGI server, an HTTP client for `decide`, a tiny HTTP
 * server playing the decide endpoint, the route file of the tests, and the decisions reported. */
#ifndef TEST_ROUTING_FIXTURE_H
#define TEST_ROUTING_FIXTURE_H

#include "testutil.h"

#include "../unit/http_receiver.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agi_client.h"
#include "core/error.h"
#include "core/log.h"
#include "net/httpc.h"
#include "routing/fastagi.h"
#include "routing/route.h"
#include "routing/runner.h"

#define RF_FN static __attribute__((unused))
#define RF_MAX_DECIDED 64

typedef struct rf_decided {
    char rule[64], action[160], detail[200], outcome[32], caller[32];
    bool is_closed, used_fallback;
    int64_t elapsed_us;
} rf_decided;

typedef struct rf {
    uv_loop_t loop;
    route_engine *engine;
    route_fastagi *fa;
    httpc *http;
    rx_server *rx;
    rf_decided decided[RF_MAX_DECIDED];
    size_t ndecided;
    /* the last call played */
    bool is_done;
    int status;
    char *cmds[64];
    size_t ncmds;
    bool is_hung_up;
} rf;

RF_FN void rf_on_decided(const route_decided *d, void *ud)
{
    rf *f = ud;
    if (f->ndecided >= RF_MAX_DECIDED)
        return;
    rf_decided *o = &f->decided[f->ndecided++];
    snprintf(o->rule, sizeof o->rule, "%s", d->rule);
    snprintf(o->action, sizeof o->action, "%s", d->action);
    snprintf(o->detail, sizeof o->detail, "%s", d->detail);
    snprintf(o->outcome, sizeof o->outcome, "%s", d->outcome);
    snprintf(o->caller, sizeof o->caller, "%s", d->caller);
    o->is_closed = d->is_closed;
    o->used_fallback = d->used_fallback;
    o->elapsed_us = d->elapsed_us;
    /* The event JSON is built from the same facts. */
    json_t *j = route_decided_json(d);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "route.decided");
    assert_non_null(json_string_value(json_object_get(j, "id")));
    assert_non_null(json_string_value(json_object_get(j, "time")));
    assert_string_equal(json_string_value(json_object_get(j, "pbx")), d->pbx);
    json_t *det = json_object_get(j, "details");
    assert_string_equal(json_string_value(json_object_get(det, "rule")), d->rule);
    assert_string_equal(json_string_value(json_object_get(det, "outcome")), d->outcome);
    assert_int_equal(json_integer_value(json_object_get(det, "took_us")), d->elapsed_us);
    json_decref(j);
}

/* The decide endpoint: /ok answers an action, /slow never answers, /junk answers garbage. */
RF_FN void rf_http(rx_server *s, const rx_request *req, rx_reply *reply, void *ud)
{
    (void)s;
    (void)ud;
    if (strcmp(req->url, "/ok") == 0) {
        reply->body = "{\"action\": \"dial PJSIP/sales-${EXTEN} timeout=15\"}";
    } else if (strcmp(req->url, "/slow") == 0) {
        reply->action = RX_STALL;
    } else if (strcmp(req->url, "/junk") == 0) {
        reply->body = "<html>not json</html>";
    } else {
        reply->status = 404;
    }
}

/* The routes of the tests. pin is the hash of 4321; today (UTC) is a holiday of rule
 * `holiday`. */
RF_FN char *rf_routes(const char *url_base)
{
    static char hash[crypto_pwhash_STRBYTES];
    if (sodium_init() < 0 ||
        crypto_pwhash_str_alg(hash, "4321", 4, crypto_pwhash_OPSLIMIT_MIN,
                              crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return NULL;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    sb_buf b;
    sb_buf_init(&b, 1 << 20);
    sb_buf_printf(
        &b,
        "[route route]\n"
        "[rule sip]\nmatch = _3X\naction = dial PJSIP/${EXTEN} timeout=20\n"
        "[rule iax]\nmatch = _2X\naction = dial IAX2/${EXTEN}\n"
        "[rule trunk]\nmatch = _XXXXXXXX\nset = CDR(userfield)=trunk\n"
        "action = dial PJSIP/${EXTEN:1}@carrier\n"
        "[rule vm]\nmatch = 66\nset = GREETING=say \"hi\" now\n"
        "action = voicemail 66@default\n"
        "[rule conf]\nmatch = _7X\naction = conference room${EXTEN}\n"
        "[rule intl]\nmatch = _00X.\nallow = _3XX\npin = %s\n"
        "action = dial PJSIP/${EXTEN}@carrier\n"
        "[rule holiday]\nmatch = 500\nholidays = %04d-%02d-%02d\n"
        "closed = playback closed-today\naction = queue sales\n"
        "[rule open]\nmatch = 501\nhours = sun-sat 00:00-24:00\n"
        "closed = playback closed-today\naction = queue support\n"
        "[rule menu]\nmatch = 800\naction = ivr main\n"
        "[rule premium]\nmatch = 909\nallow = _3XX\naction = dial PJSIP/premium\n"
        "[rule loop]\nmatch = 808\naction = ivr loop\n"
        "[rule madrid-only]\nmatch = 600\npbx = madrid\naction = dial PJSIP/madrid\n"
        "[rule any-600]\nmatch = 600\naction = dial PJSIP/elsewhere\n"
        "[rule vip]\nmatch = 900\naction = cidmap vip\n"
        "[rule ask]\nmatch = 901\naction = decide %s/ok timeout=500ms\n"
        "fallback = dial PJSIP/operator\n"
        "[rule slow]\nmatch = 902\naction = decide %s/slow timeout=300ms\n"
        "fallback = dial PJSIP/operator\n"
        "[rule junk]\nmatch = 903\naction = decide %s/junk\n"
        "fallback = dial PJSIP/operator\n"
        "[ivr main]\nprompt = welcome\ntimeout = 2s\nretries = 2\ninvalid = no-such-option\n"
        "1 = queue sales timeout=20\n2 = ivr sub\n"
        "[ivr sub]\nprompt = sub-menu\n1 = voicemail 200@default\n"
        "[ivr loop]\nprompt = again\n1 = ivr loop\n"
        "[cidmap vip]\n5551234 = 201\ndefault = 300\n",
        hash, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, url_base, url_base, url_base);
    return sb_buf_steal(&b);
}

RF_FN void rf_setup(rf *f)
{
    signal(SIGPIPE, SIG_IGN);
    sb_log_setup(SB_LOG_WARN, 0);
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->rx = calloc(1, sizeof *f->rx);
    assert_non_null(f->rx);
    assert_int_equal(rx_start(f->rx, &f->loop, rf_http, f), 0);
    f->http = httpc_new(&f->loop, NULL);
    assert_non_null(f->http);
    route_engine_config ec = {.loop = &f->loop,
                              .http = f->http,
                              .pbx = "main",
                              .pin_fail_limit = 5,
                              .on_decided = rf_on_decided,
                              .ud = f};
    assert_int_equal(route_engine_new(&ec, &f->engine), 0);
    char *text = rf_routes(f->rx->url_base);
    assert_non_null(text);
    route_db *db = NULL;
    char err[300];
    if (route_db_parse(text, strlen(text), "test", &db, err, sizeof err) != 0)
        fail_msg("%s", err);
    free(text);
    route_engine_set_db(f->engine, db);
    agi_server_config sc = {.port = 0};
    assert_int_equal(route_fastagi_new(&f->loop, &sc, f->engine, &f->fa), 0);
    assert_int_equal(route_fastagi_start(f->fa), 0);
}

RF_FN void rf_clear_call(rf *f)
{
    for (size_t i = 0; i < f->ncmds; i++)
        free(f->cmds[i]);
    f->ncmds = 0;
    f->is_done = false;
}

RF_FN void rf_teardown(rf *f)
{
    rf_clear_call(f);
    route_fastagi_stop(f->fa);
    route_fastagi_free(f->fa);
    httpc_free(f->http);
    rx_stop(f->rx);
    for (int i = 0; i < 100 && uv_run(&f->loop, UV_RUN_NOWAIT); i++)
        ;
    assert_int_equal(route_engine_active(f->engine), 0);
    route_engine_free(f->engine);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f->rx);
}

RF_FN void rf_call_done(const pbxsim_agi_result *res, void *ud)
{
    rf *f = ud;
    f->is_done = true;
    f->status = res->status;
    f->is_hung_up = res->is_hung_up;
    for (size_t i = 0; i < res->ncommands && f->ncmds < 64; i++)
        f->cmds[f->ncmds++] = strdup(res->commands[i]);
}

/* Runs the loop until cond or 5 s. */
RF_FN void rf_run_until(rf *f, bool *cond)
{
    uint64_t t0 = uv_hrtime();
    while (!*cond && uv_hrtime() - t0 < 5000000000ull)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(*cond);
}

/* Plays one FastAGI call to the end; returns the decisions reported so far. */
static const char *rf_script = "route"; /* agi_network_script of the next rf_call */

RF_FN void rf_call(rf *f, const char *caller, const char *dialed, const char *const *dtmf,
                   size_t ndtmf, unsigned hangup_after)
{
    rf_clear_call(f);
    pbxsim_agi_call call = {.script = rf_script,
                            .callerid = caller,
                            .extension = dialed,
                            .dtmf = dtmf,
                            .ndtmf = ndtmf,
                            .hangup_after = hangup_after,
                            .is_recording = true};
    assert_int_equal(pbxsim_agi_connect(&f->loop, "127.0.0.1", route_fastagi_port(f->fa), &call,
                                        rf_call_done, f),
                     0);
    rf_run_until(f, &f->is_done);
    assert_int_equal(f->status, 0);
    /* The session is over on our side too. */
    for (int i = 0; i < 20 && route_engine_active(f->engine); i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Asserts the commands of the last call, in order. */
RF_FN void rf_expect(rf *f, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < f->ncmds; i++)
        if (strcmp(f->cmds[i], want[i]) != 0)
            fail_msg("command %zu: got '%s', want '%s'", i, f->cmds[i], want[i]);
    if (f->ncmds != n) {
        for (size_t i = 0; i < f->ncmds; i++)
            fprintf(stderr, "  got[%zu] %s\n", i, f->cmds[i]);
        fail_msg("%zu commands, want %zu", f->ncmds, n);
    }
}

#define RF_EXPECT(f, ...)                                                                          \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        rf_expect((f), want_, sizeof want_ / sizeof want_[0]);                                     \
    } while (0)

RF_FN const rf_decided *rf_last(rf *f)
{
    assert_true(f->ndecided > 0);
    return &f->decided[f->ndecided - 1];
}

#endif
