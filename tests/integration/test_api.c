/* test_api.c: the daemon's REST API end to end: the real subsystems (store, bus, model, ami, http)
 * run by sb_app_run() on the test's loop against the PBX simulator on its own thread, and a client
 * thread speaking HTTP with libcurl.
 *
 * The client thread cannot use cmocka's asserts (they longjmp), so it records failures with
 * CHECK() and the main thread asserts their count once the daemon stopped. Every wait is a
 * bounded poll. What is covered: every route without a token, with a bad token and with a
 * wrong-scope token; click-to-dial reaching the simulator (the Originate it received, as echoed in
 * its OriginateResponse) and the resulting events on the bus; originateFailed mapped to the agent
 * by action id; the inverse originate into a queue; queue add / pause / unpause / remove visible
 * in GET /v1/queues/{name}; the AMI error answers; unknown PBX, queue, call and agent; malformed
 * JSON; an oversized body; revocation taking effect.
 */
#include "api/api.h"
#include "api/tokens.h"
#include "app/app.h"
#include "app/core.h"
#include "app/pbx.h"
#include "core/error.h"
#include "pbxsim.h"
#include "testutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RECORDED 8192

typedef struct recorder {
    pthread_mutex_t mu;
    char *items[MAX_RECORDED];
    size_t n;
} recorder;

static void rec_add(recorder *r, const char *data, size_t len)
{
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_RECORDED) {
        char *s = malloc(len + 1);
        if (s) {
            memcpy(s, data, len);
            s[len] = 0;
            r->items[r->n++] = s;
        }
    }
    pthread_mutex_unlock(&r->mu);
}

/* Counts the recorded items holding every one of the (up to 3) needles (NULL = unused). */
static size_t rec_count(recorder *r, const char *a, const char *b, const char *c)
{
    size_t k = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++) {
        const char *s = r->items[i];
        if ((!a || strstr(s, a)) && (!b || strstr(s, b)) && (!c || strstr(s, c)))
            k++;
    }
    pthread_mutex_unlock(&r->mu);
    return k;
}

static void rec_free(recorder *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->items[i]);
    r->n = 0;
}

typedef struct fixture {
    char dir[256], conf[300], store[300];
    char tok_admin[API_TOKEN_TEXT], tok_sup[API_TOKEN_TEXT], tok_svc[API_TOKEN_TEXT];
    char tok_agent[API_TOKEN_TEXT], tok_agent501[API_TOKEN_TEXT], tok_revoked[API_TOKEN_TEXT];
    int64_t revoked_id;
    pbxsim_thread *sim;
    sb_app app;
    uv_loop_t loop;
    uv_async_t stop_async;
    bus_sub *sub;
    pthread_t client;
    bool client_started;
    int port;
    recorder bus_events; /* every event published on the bus (global stream) */
    recorder sim_events; /* every event the simulator emitted */
    int failures;
    int checks;
    bool done;
    bool two_pbxs;                      /* a second PBX, [pbx dead], that never answers */
    void (*script)(struct fixture *fx); /* what the client thread does once the daemon is ready */
} fixture;

static fixture *g_fx; /* the subsystem callbacks get only the app */

#define CHECK(fx, cond, ...)                                                                       \
    do {                                                                                           \
        (fx)->checks++;                                                                            \
        if (!(cond)) {                                                                             \
            (fx)->failures++;                                                                      \
            fprintf(stderr, "CHECK FAILED line %d: %s: ", __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* ---- HTTP client (runs on the client thread) ---- */

typedef struct resp {
    long status;
    char body[256 * 1024];
    size_t len;
    char www_auth[128];
} resp;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = size * n;
    if (r->len + len >= sizeof r->body)
        len = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = 0;
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = size * n;
    if (len > 17 && strncasecmp(p, "WWW-Authenticate:", 17) == 0)
        snprintf(r->www_auth, sizeof r->www_auth, "%.*s", (int)(len - 17), p + 17);
    return len;
}

/* One request; token and body may be NULL. Returns the status (0 when the transfer failed). */
static long http(fixture *fx, const char *method, const char *path, const char *token,
                 const char *body, resp *r)
{
    char url[512], auth[256];
    struct curl_slist *h = NULL;
    CURL *c = curl_easy_init();
    r->status = 0;
    r->len = 0;
    r->body[0] = 0;
    r->www_auth[0] = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx->port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r->status;
}

/* A string value, or "" when v is not a string. */
static const char *sv(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

/* The error code of a JSON error body, into buf ("" when it is not one). */
static const char *err_code(const resp *r, char *buf, size_t size)
{
    json_t *j = json_loads(r->body, 0, NULL);
    const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(buf, size, "%s", code ? code : "");
    json_decref(j);
    return buf;
}

static void expect_error(fixture *fx, const char *what, resp *r, long status, const char *code)
{
    char c[64];
    CHECK(fx, r->status == status, "%s: status %ld, wanted %ld (%s)", what, r->status, status,
          r->body);
    CHECK(fx, strcmp(err_code(r, c, sizeof c), code) == 0, "%s: code '%s', wanted '%s'", what, c,
          code);
}

/* Polls GET path until the body holds needle (or, with is_absent, no longer does); <= 5 s. */
static bool wait_body(fixture *fx, const char *path, const char *needle, bool is_absent, resp *r)
{
    for (int i = 0; i < 100; i++) {
        http(fx, "GET", path, fx->tok_admin, NULL, r);
        bool has = r->status == 200 && strstr(r->body, needle) != NULL;
        if (has != is_absent)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

static bool wait_rec(recorder *rc, const char *a, const char *b, const char *c)
{
    for (int i = 0; i < 100; i++) {
        if (rec_count(rc, a, b, c) > 0)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

/* The value of a string member of the JSON body. */
static void json_member(const resp *r, const char *key, char *buf, size_t size)
{
    json_t *j = json_loads(r->body, 0, NULL);
    const char *v = json_string_value(json_object_get(j, key));
    snprintf(buf, size, "%s", v ? v : "");
    json_decref(j);
}

/* ---- the client's script ---- */

typedef struct route_case {
    const char *method, *path, *body;
    int wrong; /* which token has the wrong role or scope: 0 none (every role may), 1 agent 1001,
                  2 service, 3 agent 501 */
} route_case;

/* Every /v1 route (api.c's table), with concrete parameters. */
static const route_case routes[] = {
    {"GET", "/v1/openapi.json", NULL, 0},
    {"GET", "/v1/pbxs", NULL, 1},
    {"GET", "/v1/calls", NULL, 1},
    {"GET", "/v1/calls/1234.5", NULL, 1},
    {"POST", "/v1/calls", "{\"agent\":\"501\",\"number\":\"100\"}", 1},
    {"GET", "/v1/queues", NULL, 0},
    {"GET", "/v1/queues/sales", NULL, 0},
    {"POST", "/v1/queues/sales/members/PJSIP%2F1009", "{}", 1},
    {"DELETE", "/v1/queues/sales/members/PJSIP%2F1009", NULL, 2},
    {"POST", "/v1/queues/sales/members/Local%2F502%40agents%2Fn/pause", "{}", 3},
    {"POST", "/v1/queues/sales/members/Local%2F502%40agents%2Fn/unpause", "{}", 2},
    {"GET", "/v1/agents/502", NULL, 1},
};

static void walk_routes(fixture *fx)
{
    resp *r = malloc(sizeof *r);
    size_t n = sizeof routes / sizeof routes[0];
    for (size_t i = 0; i < n; i++) {
        const route_case *rc = &routes[i];
        char what[160];
        snprintf(what, sizeof what, "%s %s without a token", rc->method, rc->path);
        http(fx, rc->method, rc->path, NULL, rc->body, r);
        expect_error(fx, what, r, 401, "unauthorized");
        CHECK(fx, strstr(r->www_auth, "Bearer") != NULL, "%s: WWW-Authenticate '%s'", what,
              r->www_auth);
        snprintf(what, sizeof what, "%s %s with an unknown token", rc->method, rc->path);
        http(fx, rc->method, rc->path, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", rc->body, r);
        expect_error(fx, what, r, 401, "unauthorized");
        if (rc->wrong) {
            const char *tok = rc->wrong == 1   ? fx->tok_agent
                              : rc->wrong == 2 ? fx->tok_svc
                                               : fx->tok_agent501;
            snprintf(what, sizeof what, "%s %s with a wrong-scope token", rc->method, rc->path);
            http(fx, rc->method, rc->path, tok, rc->body, r);
            expect_error(fx, what, r, 403, "forbidden");
        }
    }
    /* Scope inside the body: an agent may click-to-dial only from its own extension. */
    http(fx, "POST", "/v1/calls", fx->tok_agent, "{\"extension\":\"502\",\"number\":\"100\"}", r);
    expect_error(fx, "agent dials into another extension", r, 403, "forbidden");
    http(fx, "POST", "/v1/calls", fx->tok_agent, "{\"queue\":\"sales\",\"number\":\"100\"}", r);
    expect_error(fx, "agent dials into a queue", r, 403, "forbidden");
    /* The right scope passes. */
    http(fx, "GET", "/v1/queues", fx->tok_agent, NULL, r);
    CHECK(fx, r->status == 200, "agent GET /v1/queues: %ld", r->status);
    http(fx, "GET", "/v1/agents/501", fx->tok_agent501, NULL, r);
    CHECK(fx, r->status == 200, "agent 501 GET its own agent: %ld %s", r->status, r->body);
    http(fx, "GET", "/v1/pbxs", fx->tok_svc, NULL, r);
    CHECK(fx, r->status == 200, "service GET /v1/pbxs: %ld", r->status);
    http(fx, "GET", "/v1/calls", fx->tok_sup, NULL, r);
    CHECK(fx, r->status == 200, "supervisor GET /v1/calls: %ld", r->status);
    free(r);
}

static void check_reads(fixture *fx)
{
    resp *r = malloc(sizeof *r);
    http(fx, "GET", "/v1/openapi.json", fx->tok_agent, NULL, r);
    json_t *j = json_loads(r->body, 0, NULL);
    CHECK(fx, r->status == 200 && j, "openapi: %ld", r->status);
    CHECK(fx, strcmp(sv(json_object_get(j, "openapi")), "3.1.0") == 0, "openapi version");
    CHECK(fx, json_object_get(json_object_get(j, "paths"), "/v1/queues/{name}/members/{interface}"),
          "openapi lists the member route");
    json_decref(j);

    http(fx, "GET", "/v1/pbxs", fx->tok_admin, NULL, r);
    j = json_loads(r->body, 0, NULL);
    json_t *p0 = json_array_get(json_object_get(j, "pbxs"), 0);
    CHECK(fx, json_array_size(json_object_get(j, "pbxs")) == 1, "one pbx: %s", r->body);
    CHECK(fx, strcmp(sv(json_object_get(p0, "name")), "sim") == 0, "name");
    CHECK(fx, json_is_true(json_object_get(p0, "connected")), "connected: %s", r->body);
    CHECK(fx, strcmp(sv(json_object_get(p0, "amiState")), "ready") == 0, "amiState");
    CHECK(fx, json_string_value(json_object_get(p0, "amiVersion")) != NULL, "amiVersion");
    CHECK(fx, json_integer_value(json_object_get(json_object_get(p0, "counters"), "events")) > 0,
          "events counted: %s", r->body);
    CHECK(fx, json_integer_value(json_object_get(p0, "stateRestores")) >= 1, "state restored");
    /* The state restore found the simulator's queues. */
    CHECK(fx, json_integer_value(json_object_get(json_object_get(p0, "model"), "queues")) == 2,
          "model knows 2 queues: %s", r->body);
    json_decref(j);

    http(fx, "GET", "/v1/queues", fx->tok_admin, NULL, r);
    CHECK(fx, r->status == 200 && strstr(r->body, "\"sales\"") && strstr(r->body, "\"support\""),
          "queues: %s", r->body);
    http(fx, "GET", "/v1/queues?pbx=sim", fx->tok_admin, NULL, r);
    CHECK(fx, r->status == 200 && strstr(r->body, "\"sales\""), "queues?pbx=sim");
    http(fx, "GET", "/v1/queues/sales", fx->tok_admin, NULL, r);
    CHECK(fx, r->status == 200 && strstr(r->body, "Local/501@agents/n"), "sales: %s", r->body);
    http(fx, "GET", "/v1/calls", fx->tok_admin, NULL, r);
    CHECK(fx, r->status == 200 && strstr(r->body, "\"calls\":["), "calls: %s", r->body);
    http(fx, "GET", "/v1/agents/501", fx->tok_admin, NULL, r);
    CHECK(fx, r->status == 200 && strstr(r->body, "\"extension\":\"501\""), "agent: %s", r->body);
    free(r);
}

static void check_errors(fixture *fx)
{
    resp *r = malloc(sizeof *r);
    http(fx, "GET", "/v1/queues?pbx=nope", fx->tok_admin, NULL, r);
    expect_error(fx, "GET queues of an unknown pbx", r, 404, "unknown_pbx");
    http(fx, "GET", "/v1/calls?pbx=nope", fx->tok_admin, NULL, r);
    expect_error(fx, "GET calls of an unknown pbx", r, 404, "unknown_pbx");
    http(fx, "POST", "/v1/calls", fx->tok_admin,
         "{\"pbx\":\"nope\",\"agent\":\"1001\",\"number\":\"100\"}", r);
    expect_error(fx, "click-to-dial on an unknown pbx", r, 404, "unknown_pbx");
    http(fx, "POST", "/v1/queues/sales/members/PJSIP%2F1002/pause?pbx=nope", fx->tok_admin, NULL,
         r);
    expect_error(fx, "pause on an unknown pbx", r, 404, "unknown_pbx");
    http(fx, "GET", "/v1/queues/nope", fx->tok_admin, NULL, r);
    expect_error(fx, "GET an unknown queue", r, 404, "unknown_queue");
    http(fx, "POST", "/v1/queues/nope/members/PJSIP%2F1002", fx->tok_admin, NULL, r);
    expect_error(fx, "add to an unknown queue", r, 404, "unknown_queue");
    http(fx, "POST", "/v1/queues/nope/members/PJSIP%2F1002/pause", fx->tok_admin, NULL, r);
    expect_error(fx, "pause in an unknown queue", r, 404, "unknown_queue");
    http(fx, "GET", "/v1/calls/no.such.call", fx->tok_admin, NULL, r);
    expect_error(fx, "GET an unknown call", r, 404, "unknown_call");
    http(fx, "GET", "/v1/agents/9999", fx->tok_admin, NULL, r);
    expect_error(fx, "GET an unknown agent", r, 404, "unknown_agent");
    http(fx, "POST", "/v1/calls", fx->tok_admin, "{\"agent\": \"1001\", \"number\": ", r);
    expect_error(fx, "malformed JSON", r, 400, "malformed_json");
    http(fx, "POST", "/v1/queues/sales/members/PJSIP%2F1002/pause", fx->tok_admin, "{reason", r);
    expect_error(fx, "malformed JSON on pause", r, 400, "malformed_json");
    http(fx, "POST", "/v1/calls", fx->tok_admin, "[1,2]", r);
    expect_error(fx, "a body that is not an object", r, 400, "bad_request");
    http(fx, "POST", "/v1/calls", fx->tok_admin, "{\"agent\":\"1001\"}", r);
    expect_error(fx, "click-to-dial without a number", r, 400, "bad_request");
    http(fx, "POST", "/v1/calls", fx->tok_admin, "{\"agent\":\"1001\",\"number\":\"1\\r\\nX: y\"}",
         r);
    expect_error(fx, "a number with CR LF", r, 400, "bad_request");
    http(fx, "POST", "/v1/calls", fx->tok_admin,
         "{\"agent\":\"1001\",\"queue\":\"sales\",\"number\":\"100\"}", r);
    expect_error(fx, "two targets", r, 400, "bad_request");
    http(fx, "POST", "/v1/queues/sales/members/PJSIP%2F1002/pause", fx->tok_admin,
         "{\"reason\":\"a\\nb\"}", r);
    expect_error(fx, "a reason with LF", r, 400, "bad_request");
    /* [http] max_body_bytes = 4k in this test's configuration. */
    size_t big = 8192;
    char *body = malloc(big + 64);
    int off = snprintf(body, big + 64, "{\"agent\":\"1001\",\"number\":\"100\",\"x\":\"");
    memset(body + off, 'a', big);
    memcpy(body + off + big, "\"}", 3);
    http(fx, "POST", "/v1/calls", fx->tok_admin, body, r);
    free(body);
    expect_error(fx, "oversized body", r, 413, "payload_too_large");
    http(fx, "GET", "/v1/nothing", fx->tok_admin, NULL, r);
    CHECK(fx, r->status == 404, "unknown route: %ld", r->status);
    http(fx, "PUT", "/v1/queues", fx->tok_admin, "{}", r);
    CHECK(fx, r->status == 405, "wrong method: %ld", r->status);
    free(r);
}

static void check_members(fixture *fx)
{
    resp *r = malloc(sizeof *r);
    char c[64];
    const char *q = "/v1/queues/sales";
    const char *m = "/v1/queues/sales/members/PJSIP%2F1002";
    http(fx, "POST", m, fx->tok_sup, "{\"memberName\":\"Dora\",\"penalty\":2}", r);
    CHECK(fx, r->status == 201, "add: %ld %s", r->status, r->body);
    CHECK(fx, strstr(r->body, "\"actionId\":\"") != NULL, "add answers the action id: %s", r->body);
    CHECK(fx, wait_body(fx, q, "\"interface\":\"PJSIP/1002\"", false, r), "member visible: %s",
          r->body);
    CHECK(fx, strstr(r->body, "\"memberName\":\"Dora\""), "member name: %s", r->body);
    CHECK(fx,
          rec_count(&fx->sim_events, "Event: QueueMemberAdded", "Interface: PJSIP/1002",
                    "Penalty: 2") == 1,
          "the simulator added PJSIP/1002 with penalty 2");
    http(fx, "POST", m, fx->tok_admin, NULL, r);
    expect_error(fx, "adding twice", r, 409, "already_member");
    CHECK(fx, strstr(r->body, "Already there") != NULL, "the PBX's words: %s", r->body);

    http(fx, "POST", "/v1/queues/sales/members/PJSIP%2F1002/pause", fx->tok_admin,
         "{\"reason\":\"lunch\"}", r);
    CHECK(fx, r->status == 200, "pause: %ld %s", r->status, r->body);
    CHECK(fx, wait_body(fx, q, "\"pausedReason\":\"lunch\"", false, r), "paused visible: %s",
          r->body);
    json_t *j = json_loads(r->body, 0, NULL);
    json_t *mem;
    size_t i;
    bool paused = false;
    json_array_foreach(json_object_get(j, "members"), i, mem)
    {
        if (strcmp(sv(json_object_get(mem, "interface")), "PJSIP/1002") == 0)
            paused = json_is_true(json_object_get(mem, "paused"));
    }
    json_decref(j);
    CHECK(fx, paused, "PJSIP/1002 paused");
    http(fx, "POST", "/v1/queues/sales/members/PJSIP%2F1002/unpause", fx->tok_admin, NULL, r);
    CHECK(fx, r->status == 200, "unpause: %ld %s", r->status, r->body);
    CHECK(fx, wait_body(fx, q, "\"pausedReason\":\"lunch\"", true, r), "unpaused visible: %s",
          r->body);

    /* An agent pauses its own membership. */
    http(fx, "POST", "/v1/queues/sales/members/Local%2F501%40agents%2Fn/pause", fx->tok_agent501,
         "{\"reason\":\"break\"}", r);
    CHECK(fx, r->status == 200, "agent pauses itself: %ld %s", r->status, r->body);
    CHECK(fx, wait_body(fx, "/v1/agents/501", "\"pausedReason\":\"break\"", false, r),
          "agent view shows the pause: %s", r->body);
    http(fx, "POST", "/v1/queues/sales/members/Local%2F501%40agents%2Fn/unpause", fx->tok_agent501,
         NULL, r);
    CHECK(fx, r->status == 200, "agent unpauses itself: %ld", r->status);

    http(fx, "DELETE", m, fx->tok_admin, NULL, r);
    CHECK(fx, r->status == 200, "remove: %ld %s", r->status, r->body);
    CHECK(fx, wait_body(fx, q, "PJSIP/1002", true, r), "member gone: %s", r->body);
    http(fx, "DELETE", m, fx->tok_admin, NULL, r);
    expect_error(fx, "removing twice", r, 404, "unknown_member");
    http(fx, "POST", "/v1/queues/sales/members/PJSIP%2F1077/pause", fx->tok_admin, NULL, r);
    expect_error(fx, "pausing a non-member", r, 404, "unknown_member");
    (void)c;
    free(r);
}

static void check_originate(fixture *fx)
{
    resp *r = malloc(sizeof *r);
    char aid[64], cid[64], needle[128];
    /* Phone 1001 registers, then click-to-dial rings it and dials 34600111222. */
    pbxsim_thread_command(fx->sim, "play register-phone ENDPOINT=1001");
    CHECK(fx, wait_rec(&fx->sim_events, "Event: DeviceStateChange", "Device: PJSIP/1001", NULL),
          "phone 1001 registered");
    usleep(100 * 1000);
    http(fx, "POST", "/v1/calls", fx->tok_agent,
         "{\"agent\":\"1001\",\"number\":\"34600111222\",\"variables\":{\"CRM_ID\":\"42\"}}", r);
    CHECK(fx, r->status == 202, "click-to-dial: %ld %s", r->status, r->body);
    json_member(r, "actionId", aid, sizeof aid);
    json_member(r, "channelId", cid, sizeof cid);
    CHECK(fx, aid[0] && cid[0], "action and channel ids: %s", r->body);
    /* The simulator echoes the Originate it received in its OriginateResponse. */
    snprintf(needle, sizeof needle, "ActionID: %s\r\n", aid);
    CHECK(fx, wait_rec(&fx->sim_events, "Event: OriginateResponse", needle, "Response: Success"),
          "OriginateResponse Success for %s", aid);
    CHECK(fx,
          rec_count(&fx->sim_events, needle, "Exten: 34600111222", "Context: from-internal") == 1,
          "the Originate asked for 34600111222 in from-internal");
    CHECK(fx,
          rec_count(&fx->sim_events, needle, "Channel: PJSIP/1001-", "CallerIDNum: 34600111222") ==
              1,
          "it rang PJSIP/1001 showing the number");
    /* The resulting call reaches the model, and its events the bus, for agent 1001. */
    CHECK(fx, wait_rec(&fx->bus_events, "\"type\":\"call.started\"", "\"1001\"", NULL),
          "call.started for agent 1001");
    CHECK(fx, rec_count(&fx->bus_events, "originateFailed", aid, NULL) == 0,
          "no originateFailed for a successful originate");

    /* Phone 1003 is not registered: the failure arrives as originateFailed for the agent the
     * request named (7001, whose device is PJSIP/1003): the model maps it by action id, not by
     * the dialled device. */
    http(fx, "POST", "/v1/calls", fx->tok_admin,
         "{\"agent\":\"7001\",\"device\":\"PJSIP/1003\",\"number\":\"100\"}", r);
    CHECK(fx, r->status == 202, "click-to-dial to an unregistered phone: %ld %s", r->status,
          r->body);
    json_member(r, "actionId", aid, sizeof aid);
    snprintf(needle, sizeof needle, "\"actionId\":\"%s\"", aid);
    CHECK(fx,
          wait_rec(&fx->bus_events, "\"type\":\"originateFailed\"", needle, "\"agent\":\"7001\""),
          "originateFailed for %s reaches agent 7001", aid);
    CHECK(fx, rec_count(&fx->bus_events, "originateFailed", needle, "could not be created") == 1,
          "the reason in words");
    CHECK(fx, rec_count(&fx->bus_events, "originateFailed", needle, "\"agent\":\"1003\"") == 0,
          "not for the owner of the dialled device");

    /* The inverse: dial a number and put it into the queue. */
    http(fx, "POST", "/v1/calls", fx->tok_svc, "{\"number\":\"100\",\"queue\":\"sales\"}", r);
    CHECK(fx, r->status == 202, "dial into a queue: %ld %s", r->status, r->body);
    json_member(r, "actionId", aid, sizeof aid);
    snprintf(needle, sizeof needle, "ActionID: %s\r\n", aid);
    CHECK(fx, wait_rec(&fx->sim_events, "Event: OriginateResponse", needle, "Application: Queue"),
          "the Originate ran Queue(sales)");
    CHECK(fx, rec_count(&fx->sim_events, needle, "Data: sales", NULL) == 1, "with Data: sales");

    /* The inverse into an extension: Local/100@from-internal, then from-internal,1002,1. */
    http(fx, "POST", "/v1/calls", fx->tok_sup, "{\"number\":\"100\",\"extension\":\"1002\"}", r);
    CHECK(fx, r->status == 202, "dial into an extension: %ld %s", r->status, r->body);
    json_member(r, "actionId", aid, sizeof aid);
    snprintf(needle, sizeof needle, "ActionID: %s\r\n", aid);
    CHECK(fx, wait_rec(&fx->sim_events, "Event: OriginateResponse", needle, "Exten: 1002"),
          "the Originate connects to 1002");
    CHECK(fx, rec_count(&fx->sim_events, needle, "Channel: Local/100@from-internal", NULL) == 1,
          "through Local/100@from-internal");
    free(r);
}

static void check_revoke(fixture *fx)
{
    resp *r = malloc(sizeof *r);
    http(fx, "GET", "/v1/queues", fx->tok_revoked, NULL, r);
    CHECK(fx, r->status == 200, "token works before revocation: %ld", r->status);
    CHECK(fx, api_token_revoke(fx->store, fx->revoked_id) == 0, "revoke");
    bool refused = false;
    for (int i = 0; i < 60 && !refused; i++) {
        usleep(50 * 1000);
        refused = http(fx, "GET", "/v1/queues", fx->tok_revoked, NULL, r) == 401;
    }
    CHECK(fx, refused, "a revoked token is refused within 3 s");
    free(r);
}

static void script_one_pbx(fixture *fx)
{
    walk_routes(fx);
    check_reads(fx);
    check_errors(fx);
    check_members(fx);
    check_originate(fx);
    check_revoke(fx);
}

/* With [pbx dead] (connection refused) and [pbx lim] (the simulator as a user without the agent
 * write class) beside the simulator: the pbx field is required for actions, a PBX that is down
 * answers 503, an AMI "Permission denied" 502, a reconnect of the simulator runs another state
 * restore, and a stalled PBX answers 504 after its action timeout (1 s here). */
static void script_two_pbxs(fixture *fx)
{
    resp *r = malloc(sizeof *r);
    /* Both simulator sessions (sim and lim) logged in and restored state. */
    for (int k = 0; k < 100; k++) {
        http(fx, "GET", "/v1/pbxs", fx->tok_admin, NULL, r);
        const char *a = strstr(r->body, "\"stateRestores\":1");
        if (a && strstr(a + 1, "\"stateRestores\":1"))
            break;
        usleep(50 * 1000);
    }
    json_t *j = json_loads(r->body, 0, NULL);
    json_t *pbxs = json_object_get(j, "pbxs");
    CHECK(fx, json_array_size(pbxs) == 3, "three pbxs: %s", r->body);
    size_t i;
    json_t *p;
    int seen = 0;
    json_array_foreach(pbxs, i, p)
    {
        if (strcmp(sv(json_object_get(p, "name")), "dead") == 0) {
            seen++;
            CHECK(fx, json_is_false(json_object_get(p, "connected")), "dead is not connected");
            CHECK(fx, strcmp(sv(json_object_get(p, "amiState")), "connecting") == 0,
                  "dead is connecting: %s", r->body);
        }
    }
    CHECK(fx, seen == 1, "dead listed");
    json_decref(j);

    const char *pause = "/v1/queues/sales/members/Local%2F501%40agents%2Fn/pause";
    http(fx, "POST", pause, fx->tok_admin, NULL, r);
    expect_error(fx, "an action without pbx when there are two", r, 400, "pbx_required");
    char path[256];
    snprintf(path, sizeof path, "%s?pbx=dead", pause);
    http(fx, "POST", path, fx->tok_admin, NULL, r);
    expect_error(fx, "an action on a PBX that is down", r, 503, "pbx_unavailable");
    http(fx, "POST", "/v1/calls", fx->tok_admin,
         "{\"pbx\":\"dead\",\"agent\":\"1001\",\"number\":\"100\"}", r);
    expect_error(fx, "click-to-dial on a PBX that is down", r, 503, "pbx_unavailable");
    http(fx, "POST", "/v1/calls", fx->tok_admin, "{\"agent\":\"1001\",\"number\":\"100\"}", r);
    expect_error(fx, "click-to-dial without pbx when there are two", r, 400, "pbx_required");
    http(fx, "GET", "/v1/queues", fx->tok_admin, NULL, r);
    CHECK(fx, r->status == 200 && strstr(r->body, "\"pbx\":\"sim\""), "lists cover every PBX");
    http(fx, "GET", "/v1/queues/sales?pbx=dead", fx->tok_admin, NULL, r);
    expect_error(fx, "a queue of the PBX that has none", r, 404, "unknown_queue");
    snprintf(path, sizeof path, "%s?pbx=sim", pause);
    http(fx, "POST", path, fx->tok_admin, "{\"reason\":\"meeting\"}", r);
    CHECK(fx, r->status == 200, "pause on the named PBX: %ld %s", r->status, r->body);
    /* The AMI user of lim may not change queues: Asterisk says "Permission denied". */
    http(fx, "POST", "/v1/queues/sales/members/PJSIP%2F1004?pbx=lim", fx->tok_admin, NULL, r);
    expect_error(fx, "an action the AMI user may not do", r, 502, "pbx_permission_denied");
    /* ... but it may originate. */
    http(fx, "POST", "/v1/calls", fx->tok_admin,
         "{\"pbx\":\"lim\",\"number\":\"100\",\"queue\":\"sales\"}", r);
    CHECK(fx, r->status == 202, "originate through lim: %ld %s", r->status, r->body);

    /* The simulator drops the connection: the client reconnects and restores state again. */
    pbxsim_thread_command(fx->sim, "fault drop");
    bool restored = false;
    for (int k = 0; k < 100 && !restored; k++) {
        usleep(50 * 1000);
        http(fx, "GET", "/v1/pbxs", fx->tok_admin, NULL, r);
        restored = strstr(r->body, "\"stateRestores\":2") != NULL;
    }
    CHECK(fx, restored, "a second state restore after the drop: %s", r->body);
    CHECK(fx, strstr(r->body, "\"reconnects\":1") != NULL, "one reconnect counted: %s", r->body);
    /* What the restore rebuilt: the member is still paused with its reason. */
    http(fx, "GET", "/v1/queues/sales?pbx=sim", fx->tok_admin, NULL, r);
    CHECK(fx, strstr(r->body, "\"pausedReason\":\"meeting\""), "pause survives the restore: %s",
          r->body);

    /* A stalled PBX: the action times out after [pbx sim] action_timeout = 1s. */
    pbxsim_thread_command(fx->sim, "fault stall 2500");
    usleep(100 * 1000);
    snprintf(path, sizeof path,
             "/v1/queues/sales/members/Local%%2F501%%40agents%%2Fn/unpause?pbx=sim");
    http(fx, "POST", path, fx->tok_admin, NULL, r);
    expect_error(fx, "an action the PBX never answers", r, 504, "pbx_timeout");
    free(r);
}

static void *client_main(void *arg)
{
    fixture *fx = arg;
    resp *r = malloc(sizeof *r);
    /* Wait for the login and the first state restore. */
    bool ready = false;
    for (int i = 0; i < 100 && !ready; i++) {
        http(fx, "GET", "/v1/pbxs", fx->tok_admin, NULL, r);
        ready = strstr(r->body, "\"stateRestores\":1") != NULL;
        if (!ready)
            usleep(50 * 1000);
    }
    CHECK(fx, ready, "the daemon logged in and restored state: %s", r->body);
    free(r);
    if (ready)
        fx->script(fx);
    fx->done = true;
    uv_async_send(&fx->stop_async);
    return NULL;
}

/* ---- the test subsystem: records the bus, starts the client, stops the daemon ---- */

static void on_bus(void *ud, const bus_entry *e)
{
    fixture *fx = ud;
    size_t len;
    const char *t = bus_event_text(e->ev, &len);
    rec_add(&fx->bus_events, t, len);
}

static void on_stop_async(uv_async_t *a)
{
    fixture *fx = a->data;
    sb_app_request_stop(&fx->app, 0);
}

static int test_start(sb_app *app)
{
    fixture *fx = g_fx;
    fx->port = app_http_port(app);
    fx->sub = bus_subscribe(bus_global(app->bus), on_bus, fx);
    if (fx->port <= 0 || !fx->sub)
        return SB_EINVAL;
    uv_async_init(app->loop, &fx->stop_async, on_stop_async);
    fx->stop_async.data = fx;
    if (pthread_create(&fx->client, NULL, client_main, fx) != 0)
        return SB_ENOMEM;
    fx->client_started = true;
    return 0;
}

static void test_stop(sb_app *app)
{
    fixture *fx = g_fx;
    (void)app;
    bus_unsubscribe(fx->sub);
    fx->sub = NULL;
    uv_close((uv_handle_t *)&fx->stop_async, NULL);
}

static const sb_subsystem table[] = {
    {"config", app_config_init, NULL, NULL, app_config_free, NULL},
    {"log", app_log_init, NULL, NULL, NULL, NULL},
    {"store", app_store_init, NULL, NULL, app_store_free, NULL},
    {"bus", app_bus_init, app_bus_start, app_bus_stop, app_bus_free, NULL},
    {"model", app_model_init, NULL, NULL, app_model_free, NULL},
    {"ami", app_ami_init, app_ami_start, app_ami_stop, app_ami_free, NULL},
    {"http", app_http_init, app_http_start, app_http_stop, app_http_free, NULL},
    {"test", NULL, test_start, test_stop, NULL, NULL},
};

static void on_sim_event(void *arg, const char *data, size_t len)
{
    fixture *fx = arg;
    rec_add(&fx->sim_events, data, len);
}

static void make_token(fixture *fx, const char *role, const char *ext, char *tok, int64_t *id)
{
    char err[256];
    int64_t tid = 0;
    int rc = api_token_create(fx->store, role, ext, "test", tok, &tid, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "token: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(tok), 43);
    if (id)
        *id = tid;
}

static void run_daemon(bool two_pbxs, void (*script)(fixture *fx), int min_checks)
{
    fixture *fx = calloc(1, sizeof *fx);
    g_fx = fx;
    fx->two_pbxs = two_pbxs;
    fx->script = script;
    pthread_mutex_init(&fx->bus_events.mu, NULL);
    pthread_mutex_init(&fx->sim_events.mu, NULL);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sb-test-api-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->conf, sizeof fx->conf, "%s/switchboard.conf", fx->dir);
    snprintf(fx->store, sizeof fx->store, "%s/store.db", fx->dir);

    pbxsim_config sc;
    pbxsim_config_default(&sc);
    sc.time_scale = 0.05;
    sc.on_event = on_sim_event;
    sc.on_event_arg = fx;
    assert_int_equal(pbxsim_thread_start(&sc, &fx->sim), 0);

    make_token(fx, "admin", NULL, fx->tok_admin, NULL);
    make_token(fx, "supervisor", NULL, fx->tok_sup, NULL);
    make_token(fx, "service", NULL, fx->tok_svc, NULL);
    make_token(fx, "agent", "1001", fx->tok_agent, NULL);
    make_token(fx, "agent", "501", fx->tok_agent501, NULL);
    make_token(fx, "service", NULL, fx->tok_revoked, &fx->revoked_id);

    FILE *f = fopen(fx->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[general]\nlog_level = warn\n\n"
            "[pbx sim]\nhost = 127.0.0.1\nport = %d\nusername = admin\nsecret = admin-secret\n"
            "reconnect_min = 100ms\n%s\n"
            "[http]\nbind = 127.0.0.1\nport = 0\nmax_body_bytes = 4k\n\n"
            "[store]\npath = %s\n",
            pbxsim_thread_port(fx->sim), two_pbxs ? "action_timeout = 1s\n" : "", fx->store);
    /* Port 1: nobody listens, the connection is refused; retried every 5 s at most. */
    /* [pbx lim]: the simulator again, as the fixtures' user that may originate but not change
     * queues. */
    if (two_pbxs)
        fprintf(f,
                "\n[pbx dead]\nhost = 127.0.0.1\nport = 1\nusername = admin\nsecret = x\n"
                "reconnect_min = 5s\n\n[pbx lim]\nhost = 127.0.0.1\nport = %d\n"
                "username = limited\nsecret = limited-secret\nreconnect_min = 100ms\n",
                pbxsim_thread_port(fx->sim));
    fclose(f);

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->app.loop = &fx->loop;
    fx->app.opt.config_path = fx->conf;
    int code = sb_app_run(&fx->app, table, sizeof table / sizeof table[0]);
    if (fx->client_started)
        pthread_join(fx->client, NULL);
    pbxsim_thread_stop(fx->sim);

    fprintf(stderr, "test_api: %d checks, %d failed\n", fx->checks, fx->failures);
    assert_int_equal(code, 0);
    assert_true(fx->done);
    assert_true(fx->checks >= min_checks);
    assert_int_equal(fx->failures, 0);

    rec_free(&fx->bus_events);
    rec_free(&fx->sim_events);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
}

static void test_api_end_to_end(void **state)
{
    (void)state;
    run_daemon(false, script_one_pbx, 150);
}

static void test_api_two_pbxs(void **state)
{
    (void)state;
    run_daemon(true, script_two_pbxs, 20);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_end_to_end),
        cmocka_unit_test(test_api_two_pbxs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
