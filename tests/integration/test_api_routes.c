/* test_api_routes.c: /v1/routes end to end through the running daemon: the subsystems of
 * `switchboard serve` (config, log, store, bus, model, ami, agi, http, as in main.c's table) run
 * by sb_app_run() on the test's loop, the PBX simulator on the same loop (its AMI server for the
 * daemon's [pbx sim], its FastAGI client and its AsyncAGI channels for routed calls), and a client
 * thread speaking HTTP with libcurl.
 *
 * The client thread cannot use cmocka's asserts (they longjmp), so it records failures with
 * CHECK() and the main thread asserts their count once the daemon stopped. Calls are started on
 * the loop thread through a uv_async (the simulator is not thread-safe) and their result (every
 * AGI command the simulator received) handed back under a mutex. Every wait is bounded.
 *
 * Covered: every /v1/routes route without a token (401) and with each non-admin role (403); a
 * FastAGI call on the imported routes, then a PUT of a route file and a FastAGI call taking the
 * NEW route at once; GET as JSON and as text (the file as sent); GET of one set; an invalid file
 * refused with its line (422) and nothing changed (version, text, calls); a PUT of the JSON form;
 * POST /v1/routes/test (match, closed hours, IVR, caller-ID map, no match, errors); DELETE of a
 * set (its calls then go back to the dialplan); the same route over AsyncAGI through the
 * daemon's AMI connection; route.decided events on the bus.
 */
#include "api/api.h"
#include "api/tokens.h"
#include "app/app.h"
#include "app/core.h"
#include "app/pbx.h"
#include "app/routing.h"
#include "core/error.h"
#include "pbxsim.h"
#include "routing/store.h"
#include "testutil.h"

#include "agi_client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RECORDED 4096

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

static size_t rec_count(recorder *r, const char *a, const char *b)
{
    size_t k = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++)
        if ((!a || strstr(r->items[i], a)) && (!b || strstr(r->items[i], b)))
            k++;
    pthread_mutex_unlock(&r->mu);
    return k;
}

static void rec_free(recorder *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->items[i]);
    r->n = 0;
}

/* One routed call the client thread asks the loop to play. */
typedef struct agi_job {
    bool is_async; /* AsyncAGI on the simulator's AMI server; else FastAGI to the daemon */
    const char *script, *caller, *dialed;
    pbxsim_agi_call call;
    /* result, under the fixture's mutex */
    bool is_done;
    int status;
    char commands[4096]; /* every command line, each followed by "\n" */
    unsigned ncommands;
} agi_job;

typedef struct fixture {
    char dir[256], conf[300], store[300];
    char tok_admin[API_TOKEN_TEXT], tok_sup[API_TOKEN_TEXT], tok_svc[API_TOKEN_TEXT];
    char tok_agent[API_TOKEN_TEXT];
    pbxsim *sim;
    sb_app app;
    uv_loop_t loop;
    uv_async_t stop_async, call_async;
    pthread_mutex_t mu;
    agi_job *job; /* the call to start (under mu) */
    bus_sub *sub;
    pthread_t client;
    bool client_started;
    int http_port, agi_port;
    recorder bus_events;
    int failures, checks, calls_started, calls_done;
    bool done;
    bool has_agi; /* the daemon routes ([agi]); without it, the API only edits the store */
} fixture;

static fixture *g_fx;

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

/* ---- routes files ---- */

static const char routes_v1[] = "[route route]\n"
                                "\n"
                                "[rule sip]\n"
                                "match = _3X\n"
                                "action = dial PJSIP/${EXTEN}\n";

static const char routes_v2[] = "; routes put over HTTP\n"
                                "[route route]\n"
                                "tz = Europe/Madrid\n"
                                "\n"
                                "[rule sip]\n"
                                "match = _3X\n"
                                "set = CDR(userfield)=api\n"
                                "action = dial PJSIP/${EXTEN}@newtrunk timeout=20\n"
                                "\n"
                                "[rule shop]\n"
                                "match = _5XX\n"
                                "hours = mon-fri 09:00-18:00\n"
                                "closed = playback closed-message\n"
                                "action = ivr main\n"
                                "\n"
                                "[rule vip]\n"
                                "match = 900\n"
                                "action = cidmap vip\n"
                                "\n"
                                "[route inbound]\n"
                                "\n"
                                "[rule all]\n"
                                "match = _X.\n"
                                "action = queue sales\n"
                                "\n"
                                "[ivr main]\n"
                                "prompt = welcome\n"
                                "1 = queue sales timeout=20\n"
                                "\n"
                                "[cidmap vip]\n"
                                "5551234 = 201\n"
                                "default = 300\n";

/* A bad pattern on line 4. */
static const char routes_bad[] = "[route route]\n"
                                 "\n"
                                 "[rule sip]\n"
                                 "match = _3[X\n"
                                 "action = hangup\n";

/* ---- HTTP client (client thread) ---- */

typedef struct resp {
    long status;
    char body[128 * 1024];
    size_t len;
    char content_type[128];
    char etag[64];
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
    if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0)
        snprintf(r->content_type, sizeof r->content_type, "%.*s", (int)(len - 13), p + 13);
    if (len > 5 && strncasecmp(p, "ETag:", 5) == 0)
        snprintf(r->etag, sizeof r->etag, "%.*s", (int)strcspn(p + 5, "\r\n"), p + 5);
    return len;
}

/* One request; token, body, content_type and accept may be NULL; accept holding a ':' is a whole
 * header line instead ("If-Match: \"2\""). Returns the status. */
static long http(fixture *fx, const char *method, const char *path, const char *token,
                 const char *body, const char *content_type, const char *accept, resp *r)
{
    char url[512], h1[256], h2[128], h3[128];
    struct curl_slist *h = NULL;
    CURL *c = curl_easy_init();
    r->status = 0;
    r->len = 0;
    r->body[0] = 0;
    r->content_type[0] = 0;
    r->etag[0] = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx->http_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (token) {
        snprintf(h1, sizeof h1, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, h1);
    }
    if (accept) {
        snprintf(h2, sizeof h2, "%s%s", strchr(accept, ':') ? "" : "Accept: ", accept);
        h = curl_slist_append(h, h2);
    }
    if (body) {
        snprintf(h3, sizeof h3, "Content-Type: %s",
                 content_type ? content_type : "application/json");
        h = curl_slist_append(h, h3);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r->status;
}

static const char *sv(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

static void expect_error(fixture *fx, const char *what, resp *r, long status, const char *code)
{
    json_t *j = json_loads(r->body, 0, NULL);
    const char *c = sv(json_object_get(json_object_get(j, "error"), "code"));
    CHECK(fx, r->status == status, "%s: status %ld, wanted %ld (%s)", what, r->status, status,
          r->body);
    CHECK(fx, strcmp(c, code) == 0, "%s: code '%s', wanted '%s'", what, c, code);
    json_decref(j);
}

/* ---- routed calls: asked by the client thread, played on the loop ---- */

static void on_call_done(const pbxsim_agi_result *res, void *ud)
{
    fixture *fx = g_fx;
    agi_job *j = ud;
    pthread_mutex_lock(&fx->mu);
    size_t off = 0;
    for (size_t i = 0; i < res->ncommands; i++) {
        int n = snprintf(j->commands + off, sizeof j->commands - off, "%s\n", res->commands[i]);
        if (n < 0 || (size_t)n >= sizeof j->commands - off)
            break;
        off += (size_t)n;
    }
    j->ncommands = (unsigned)res->ncommands;
    j->status = res->status;
    j->is_done = true;
    fx->calls_done++;
    pthread_mutex_unlock(&fx->mu);
}

static void on_call_async(uv_async_t *a)
{
    fixture *fx = a->data;
    pthread_mutex_lock(&fx->mu);
    agi_job *j = fx->job;
    fx->job = NULL;
    pthread_mutex_unlock(&fx->mu);
    if (!j)
        return;
    int rc;
    if (j->is_async)
        rc = pbxsim_asyncagi_start(fx->sim, &j->call, on_call_done, j);
    else
        rc = pbxsim_agi_connect(&fx->loop, "127.0.0.1", fx->agi_port, &j->call, on_call_done, j);
    fx->calls_started++;
    if (rc < 0) {
        pthread_mutex_lock(&fx->mu);
        j->status = rc;
        j->is_done = true;
        pthread_mutex_unlock(&fx->mu);
    }
}

/* Plays one call and waits (<= 5 s) for its end; j->commands then holds what the PBX got. */
static bool play_call(fixture *fx, agi_job *j, bool is_async, const char *script,
                      const char *caller, const char *dialed)
{
    memset(j, 0, sizeof *j);
    j->is_async = is_async;
    j->call = (pbxsim_agi_call){
        .script = script, .callerid = caller, .extension = dialed, .is_recording = true};
    pthread_mutex_lock(&fx->mu);
    fx->job = j;
    pthread_mutex_unlock(&fx->mu);
    uv_async_send(&fx->call_async);
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&fx->mu);
        bool is_done = j->is_done;
        pthread_mutex_unlock(&fx->mu);
        if (is_done)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static bool has_command(const agi_job *j, const char *line)
{
    char needle[256];
    snprintf(needle, sizeof needle, "%s\n", line);
    const char *p = j->commands;
    size_t n = strlen(needle);
    /* a whole line: at the start or after a newline */
    while ((p = strstr(p, needle)) != NULL) {
        if (p == j->commands || p[-1] == '\n')
            return true;
        p += n;
    }
    return false;
}

/* ---- the client's script ---- */

static const struct {
    const char *method, *path, *body;
} routes[] = {
    {"GET", "/v1/routes", NULL},
    {"PUT", "/v1/routes", "{\"routes\":[]}"},
    {"POST", "/v1/routes/test", "{\"from\":\"300\",\"to\":\"31\"}"},
    {"GET", "/v1/routes/route", NULL},
    {"DELETE", "/v1/routes/route", NULL},
};

static void walk_routes(fixture *fx, resp *r)
{
    const char *wrong[] = {fx->tok_sup, fx->tok_svc, fx->tok_agent};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s %s without a token", routes[i].method, routes[i].path);
        http(fx, routes[i].method, routes[i].path, NULL, routes[i].body, NULL, NULL, r);
        expect_error(fx, what, r, 401, "unauthorized");
        for (size_t k = 0; k < 3; k++) {
            snprintf(what, sizeof what, "%s %s with a non-admin token (%zu)", routes[i].method,
                     routes[i].path, k);
            http(fx, routes[i].method, routes[i].path, wrong[k], routes[i].body, NULL, NULL, r);
            expect_error(fx, what, r, 403, "forbidden");
        }
    }
}

/* The version of GET /v1/routes (JSON), or -1. */
static long long routes_version(fixture *fx, resp *r)
{
    http(fx, "GET", "/v1/routes", fx->tok_admin, NULL, NULL, NULL, r);
    json_t *j = json_loads(r->body, 0, NULL);
    long long v = json_is_integer(json_object_get(j, "version"))
                      ? (long long)json_integer_value(json_object_get(j, "version"))
                      : -1;
    json_decref(j);
    return v;
}

static void check_put_get(fixture *fx, resp *r, agi_job *call)
{
    /* The imported routes route 31 to PJSIP/31. */
    CHECK(fx, play_call(fx, call, false, "route", "300", "31"), "FastAGI call on v1 ended");
    CHECK(fx, has_command(call, "EXEC Dial PJSIP/31"), "v1 route: %s", call->commands);
    CHECK(fx, routes_version(fx, r) == 1, "version 1: %s", r->body);

    /* PUT a route file: the next call takes the new route. */
    http(fx, "PUT", "/v1/routes", fx->tok_admin, routes_v2, "text/plain", NULL, r);
    CHECK(fx, r->status == 200, "PUT text: %ld %s", r->status, r->body);
    CHECK(fx, strstr(r->body, "\"version\":2") && strstr(r->body, "\"applied\":true"),
          "PUT answers version 2, applied: %s", r->body);
    CHECK(fx, play_call(fx, call, false, "route", "300", "31"), "FastAGI call on v2 ended");
    CHECK(fx, has_command(call, "EXEC Dial PJSIP/31@newtrunk,20"), "the NEW route: %s",
          call->commands);
    CHECK(fx, has_command(call, "SET VARIABLE CDR(userfield) api"), "the new set: %s",
          call->commands);
    CHECK(fx, !has_command(call, "EXEC Dial PJSIP/31"), "not the old route: %s", call->commands);
    CHECK(fx, play_call(fx, call, false, "inbound", "5550000", "123"), "inbound call ended");
    CHECK(fx, has_command(call, "EXEC Queue sales"), "the new set inbound: %s", call->commands);

    /* GET as text: the file exactly as sent. */
    http(fx, "GET", "/v1/routes", fx->tok_admin, NULL, NULL, "text/plain", r);
    CHECK(fx, r->status == 200 && strcmp(r->body, routes_v2) == 0, "GET text round trip: %s",
          r->body);
    CHECK(fx, strstr(r->content_type, "text/plain") != NULL, "text content type: %s",
          r->content_type);
    /* GET as JSON. */
    http(fx, "GET", "/v1/routes", fx->tok_admin, NULL, NULL, NULL, r);
    json_t *j = json_loads(r->body, 0, NULL);
    json_t *sets = json_object_get(j, "routes");
    json_t *r0 = json_array_get(sets, 0);
    json_t *rules = json_object_get(r0, "rules");
    json_t *sip = json_array_get(rules, 0);
    CHECK(fx, r->status == 200 && json_array_size(sets) == 2, "two sets: %s", r->body);
    CHECK(fx, strcmp(sv(json_object_get(r0, "name")), "route") == 0, "set route first");
    CHECK(fx, strcmp(sv(json_object_get(json_object_get(r0, "keys"), "tz")), "Europe/Madrid") == 0,
          "set keys");
    CHECK(fx, json_array_size(rules) == 3, "three rules in route: %s", r->body);
    CHECK(fx, strcmp(sv(json_object_get(sip, "name")), "sip") == 0, "rule sip");
    CHECK(fx, json_integer_value(json_object_get(sip, "line")) == 5, "rule sip on line 5");
    CHECK(fx, strcmp(sv(json_object_get(json_object_get(sip, "keys"), "match")), "_3X") == 0,
          "match _3X");
    CHECK(fx,
          strcmp(sv(json_object_get(
                     json_object_get(json_array_get(json_object_get(j, "cidmaps"), 0), "keys"),
                     "5551234")),
                 "201") == 0,
          "cidmap entry: %s", r->body);
    CHECK(fx, json_array_size(json_object_get(j, "ivrs")) == 1, "one ivr");
    CHECK(fx, json_integer_value(json_object_get(j, "version")) == 2, "version 2");
    json_decref(j);
    /* One set. */
    http(fx, "GET", "/v1/routes/inbound", fx->tok_admin, NULL, NULL, NULL, r);
    j = json_loads(r->body, 0, NULL);
    CHECK(fx,
          r->status == 200 && strcmp(sv(json_object_get(j, "name")), "inbound") == 0 &&
              json_array_size(json_object_get(j, "rules")) == 1,
          "GET one set: %s", r->body);
    json_decref(j);
    http(fx, "GET", "/v1/routes/inbound", fx->tok_admin, NULL, NULL, "text/plain", r);
    CHECK(fx,
          r->status == 200 && strstr(r->body, "[route inbound]") && strstr(r->body, "[rule all]") &&
              !strstr(r->body, "[rule sip]"),
          "GET one set as text: %s", r->body);
    http(fx, "GET", "/v1/routes/nope", fx->tok_admin, NULL, NULL, NULL, r);
    expect_error(fx, "GET an unknown set", r, 404, "unknown_route_set");
}

static void check_invalid(fixture *fx, resp *r, agi_job *call)
{
    http(fx, "PUT", "/v1/routes", fx->tok_admin, routes_bad, "text/plain", NULL, r);
    expect_error(fx, "PUT an invalid file", r, 422, "invalid_routes");
    json_t *j = json_loads(r->body, 0, NULL);
    json_t *e0 = json_array_get(json_object_get(json_object_get(j, "error"), "errors"), 0);
    CHECK(fx, json_integer_value(json_object_get(e0, "line")) == 4, "error on line 4: %s", r->body);
    CHECK(fx, strncmp(sv(json_object_get(e0, "message")), "request:4: [rule sip] match:", 28) == 0,
          "line-precise message: %s", r->body);
    json_decref(j);
    /* Another kind of mistake: a reference to a missing menu. */
    http(fx, "PUT", "/v1/routes", fx->tok_admin,
         "[route route]\n[rule a]\nmatch = 1\naction = ivr nothere\n", "text/plain", NULL, r);
    expect_error(fx, "PUT a file naming a missing menu", r, 422, "invalid_routes");
    CHECK(fx, strstr(r->body, "\"line\":4") != NULL, "missing menu on line 4: %s", r->body);
    /* JSON of the wrong shape, a newline smuggled into a value, an empty body. */
    http(fx, "PUT", "/v1/routes", fx->tok_admin, "{\"routes\":{}}", NULL, NULL, r);
    expect_error(fx, "PUT JSON routes not an array", r, 400, "bad_request");
    http(fx, "PUT", "/v1/routes", fx->tok_admin,
         "{\"routes\":[{\"name\":\"route\",\"keys\":{\"tz\":\"UTC\\n[rule x]\"}}]}", NULL, NULL, r);
    expect_error(fx, "PUT JSON with a newline in a value", r, 400, "bad_request");
    /* A value the file would cut at a comment (found by fuzz_routes_json). */
    http(fx, "PUT", "/v1/routes", fx->tok_admin,
         "{\"routes\":[{\"name\":\"route\",\"keys\":{\"tz\":\";UTC\"}}]}", NULL, NULL, r);
    expect_error(fx, "PUT JSON with a value starting with ;", r, 400, "bad_request");
    http(fx, "PUT", "/v1/routes", fx->tok_admin,
         "{\"routes\":[{\"name\":\"route\",\"rules\":[{\"name\":\"a\",\"keys\":{\"match\":"
         "\"1\",\"action\":\"hangup ;x\"}}]}]}",
         NULL, NULL, r);
    expect_error(fx, "PUT JSON with ' ;' in a value", r, 400, "bad_request");
    http(fx, "PUT", "/v1/routes", fx->tok_admin, "{\"routes\":", NULL, NULL, r);
    expect_error(fx, "PUT malformed JSON", r, 400, "malformed_json");
    http(fx, "PUT", "/v1/routes", fx->tok_admin, "", "text/plain", NULL, r);
    expect_error(fx, "PUT nothing", r, 400, "bad_request");
    /* A PUT or DELETE conditional on an older version is refused (another admin changed it). */
    http(fx, "PUT", "/v1/routes", fx->tok_admin, routes_v1, "text/plain", "If-Match: \"1\"", r);
    expect_error(fx, "PUT on version 1 when 2 is newest", r, 412, "version_mismatch");
    http(fx, "DELETE", "/v1/routes/inbound", fx->tok_admin, NULL, NULL, "If-Match: 1", r);
    expect_error(fx, "DELETE on version 1 when 2 is newest", r, 412, "version_mismatch");
    http(fx, "PUT", "/v1/routes", fx->tok_admin, routes_v1, "text/plain", "If-Match: two", r);
    expect_error(fx, "If-Match that is not a version", r, 400, "bad_request");
    /* Nothing changed. */
    CHECK(fx, routes_version(fx, r) == 2, "still version 2: %s", r->body);
    CHECK(fx, strcmp(r->etag, " \"2\"") == 0, "ETag \"2\": '%s'", r->etag);
    http(fx, "GET", "/v1/routes", fx->tok_admin, NULL, NULL, "text/plain", r);
    CHECK(fx, strcmp(r->body, routes_v2) == 0, "the text is unchanged: %s", r->body);
    CHECK(fx, play_call(fx, call, false, "route", "300", "31"), "call after the refusal ended");
    CHECK(fx, has_command(call, "EXEC Dial PJSIP/31@newtrunk,20"), "calls unchanged: %s",
          call->commands);
}

static void check_put_json(fixture *fx, resp *r, agi_job *call)
{
    http(fx, "GET", "/v1/routes", fx->tok_admin, NULL, NULL, NULL, r);
    json_t *j = json_loads(r->body, 0, NULL);
    json_t *sip = json_array_get(
        json_object_get(json_array_get(json_object_get(j, "routes"), 0), "rules"), 0);
    json_object_set_new(json_object_get(sip, "keys"), "action",
                        json_string("dial PJSIP/${EXTEN}@jsontrunk"));
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    http(fx, "PUT", "/v1/routes", fx->tok_admin, body, NULL, "If-Match: \"2\"", r);
    free(body);
    CHECK(fx, r->status == 200 && strstr(r->body, "\"version\":3"), "PUT JSON: %ld %s", r->status,
          r->body);
    CHECK(fx, play_call(fx, call, false, "route", "300", "31"), "call after PUT JSON ended");
    CHECK(fx, has_command(call, "EXEC Dial PJSIP/31@jsontrunk"), "the JSON route: %s",
          call->commands);
    http(fx, "GET", "/v1/routes", fx->tok_admin, NULL, NULL, "text/plain", r);
    CHECK(fx,
          strstr(r->body, "[rule sip]\nmatch = _3X\nset = CDR(userfield)=api\naction = dial "
                          "PJSIP/${EXTEN}@jsontrunk\n") &&
              strstr(r->body, "[cidmap vip]\n5551234 = 201\ndefault = 300\n") &&
              strstr(r->body, "[route inbound]\n"),
          "the JSON became this file: %s", r->body);
}

/* POST /v1/routes/test with body; returns the parsed answer (owned) or NULL. */
static json_t *route_test(fixture *fx, resp *r, const char *body)
{
    http(fx, "POST", "/v1/routes/test", fx->tok_admin, body, NULL, NULL, r);
    return r->status == 200 ? json_loads(r->body, 0, NULL) : NULL;
}

static void check_route_test(fixture *fx, resp *r)
{
    json_t *j = route_test(fx, r, "{\"from\":\"300\",\"to\":\"31\"}");
    json_t *act = json_object_get(j, "action");
    CHECK(fx, j && json_is_true(json_object_get(j, "matched")), "31 matched: %s", r->body);
    CHECK(fx, strcmp(sv(json_object_get(json_object_get(j, "rule"), "name")), "sip") == 0,
          "rule sip: %s", r->body);
    CHECK(fx,
          strcmp(sv(json_object_get(act, "app")), "Dial") == 0 &&
              strcmp(sv(json_object_get(act, "data")), "PJSIP/31@jsontrunk") == 0,
          "Dial PJSIP/31@jsontrunk: %s", r->body);
    CHECK(fx, strcmp(sv(json_object_get(json_object_get(j, "set"), "CDR(userfield)")), "api") == 0,
          "set: %s", r->body);
    CHECK(fx, json_array_size(json_object_get(j, "trace")) >= 1, "trace: %s", r->body);
    json_decref(j);
    /* Saturday noon in Madrid: the shop is closed. */
    j = route_test(fx, r, "{\"from\":\"300\",\"to\":\"512\",\"at\":\"2026-11-28T12:00\"}");
    CHECK(fx, j && json_is_true(json_object_get(j, "closed")), "closed on Saturday: %s", r->body);
    CHECK(fx, strcmp(sv(json_object_get(json_object_get(j, "action"), "kind")), "playback") == 0,
          "closed action: %s", r->body);
    CHECK(fx, strcmp(sv(json_object_get(j, "at")), "2026-11-28T11:00:00Z") == 0,
          "at in the set's zone: %s", r->body);
    json_decref(j);
    j = route_test(fx, r, "{\"from\":\"300\",\"to\":\"512\",\"at\":\"2026-11-25T10:00\"}");
    act = json_object_get(j, "action");
    CHECK(fx, j && json_is_false(json_object_get(j, "closed")), "open on Wednesday: %s", r->body);
    CHECK(fx, strcmp(sv(json_object_get(json_object_get(act, "menu"), "name")), "main") == 0,
          "the IVR menu: %s", r->body);
    json_decref(j);
    j = route_test(fx, r, "{\"from\":\"5551234\",\"to\":\"900\"}");
    json_t *cm = json_object_get(json_object_get(j, "action"), "cidmap");
    CHECK(fx,
          json_is_true(json_object_get(cm, "hit")) &&
              strcmp(sv(json_object_get(cm, "data")), "PJSIP/201") == 0,
          "caller-ID map hit: %s", r->body);
    json_decref(j);
    j = route_test(fx, r, "{\"from\":\"999\",\"to\":\"900\"}");
    cm = json_object_get(json_object_get(j, "action"), "cidmap");
    CHECK(fx,
          json_is_false(json_object_get(cm, "hit")) &&
              strcmp(sv(json_object_get(cm, "extension")), "300") == 0,
          "caller-ID map default: %s", r->body);
    json_decref(j);
    j = route_test(fx, r, "{\"from\":\"300\",\"to\":\"999\"}");
    CHECK(fx, j && json_is_false(json_object_get(j, "matched")) && !json_object_get(j, "rule"),
          "999 matches nothing: %s", r->body);
    json_decref(j);
    j = route_test(fx, r, "{\"from\":\"300\",\"to\":\"77\",\"script\":\"inbound\"}");
    CHECK(fx, strcmp(sv(json_object_get(json_object_get(j, "rule"), "name")), "all") == 0,
          "script inbound: %s", r->body);
    json_decref(j);
    route_test(fx, r, "{\"from\":\"300\",\"to\":\"31\",\"script\":\"nope\"}");
    expect_error(fx, "route test of an unknown set", r, 404, "unknown_route_set");
    route_test(fx, r, "{\"to\":\"31\"}");
    expect_error(fx, "route test without from", r, 400, "bad_request");
    route_test(fx, r, "{\"from\":\"300\",\"to\":\"31\",\"at\":\"yesterday\"}");
    expect_error(fx, "route test with a bad time", r, 400, "bad_request");
}

static void check_delete(fixture *fx, resp *r, agi_job *call)
{
    http(fx, "DELETE", "/v1/routes/inbound", fx->tok_admin, NULL, NULL, NULL, r);
    CHECK(fx, r->status == 200 && strstr(r->body, "\"version\":4"), "DELETE: %ld %s", r->status,
          r->body);
    http(fx, "GET", "/v1/routes/inbound", fx->tok_admin, NULL, NULL, NULL, r);
    expect_error(fx, "GET a deleted set", r, 404, "unknown_route_set");
    http(fx, "DELETE", "/v1/routes/inbound", fx->tok_admin, NULL, NULL, NULL, r);
    expect_error(fx, "DELETE twice", r, 404, "unknown_route_set");
    http(fx, "GET", "/v1/routes", fx->tok_admin, NULL, NULL, "text/plain", r);
    CHECK(fx,
          !strstr(r->body, "inbound") && strstr(r->body, "[ivr main]") &&
              strstr(r->body, "[rule vip]"),
          "the rest stays: %s", r->body);
    /* Calls to the deleted set go back to the dialplan: no application runs. */
    CHECK(fx, play_call(fx, call, false, "inbound", "5550000", "123"), "inbound call ended");
    CHECK(fx, call->status == 0 && !strstr(call->commands, "EXEC"), "no route for inbound: %s",
          call->commands);
    CHECK(fx, play_call(fx, call, false, "route", "300", "31"), "route call ended");
    CHECK(fx, has_command(call, "EXEC Dial PJSIP/31@jsontrunk"), "route still routes: %s",
          call->commands);
}

static void check_async(fixture *fx, agi_job *call)
{
    /* A channel in AGI(agi:async,route) on the simulator: the daemon's AMI connection hands the
     * AsyncAGI events to the agi subsystem, which routes with the newest routes. */
    CHECK(fx, play_call(fx, call, true, "route", "300", "31"), "AsyncAGI call ended");
    CHECK(fx, call->status == 0, "AsyncAGI status %d", call->status);
    CHECK(fx, has_command(call, "GET VARIABLE CALLERID(num)"), "async dialogue: %s",
          call->commands);
    CHECK(fx, has_command(call, "SET VARIABLE CDR(userfield) api"), "async set: %s",
          call->commands);
    CHECK(fx, has_command(call, "EXEC Dial PJSIP/31@jsontrunk"), "async route: %s", call->commands);
    CHECK(fx, has_command(call, "ASYNCAGI BREAK"), "async break: %s", call->commands);
    CHECK(fx, play_call(fx, call, true, "route", "5551234", "900"), "AsyncAGI cidmap call ended");
    CHECK(fx, has_command(call, "EXEC Dial PJSIP/201"), "async cidmap: %s", call->commands);
}

static void check_events(fixture *fx)
{
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        seen = rec_count(&fx->bus_events, "\"route.decided\"", "jsontrunk") >= 3;
        if (!seen)
            usleep(20 * 1000);
    }
    CHECK(fx, seen, "route.decided for the JSON route (FastAGI and AsyncAGI)");
    CHECK(fx, rec_count(&fx->bus_events, "\"route.decided\"", "newtrunk") >= 2,
          "route.decided for the PUT route");
    CHECK(fx, rec_count(&fx->bus_events, "\"route.decided\"", "\"no-route\"") >= 1,
          "route.decided no-route for the deleted set");
}

/* A daemon without [agi] and a store without routes: the API edits the store all the same,
 * says the routes were not applied, and route test reads what was stored. */
static void check_without_agi(fixture *fx, resp *r)
{
    http(fx, "GET", "/v1/routes", fx->tok_admin, NULL, NULL, NULL, r);
    CHECK(fx,
          r->status == 200 &&
              strcmp(r->body, "{\"routes\":[],\"ivrs\":[],\"cidmaps\":[],\"version\":0}") == 0,
          "nothing stored yet: %ld %s", r->status, r->body);
    CHECK(fx, strcmp(r->etag, " \"0\"") == 0, "ETag 0: '%s'", r->etag);
    http(fx, "GET", "/v1/routes", fx->tok_admin, NULL, NULL, "text/plain", r);
    CHECK(fx, r->status == 200 && r->len == 0, "an empty file: %ld '%s'", r->status, r->body);
    http(fx, "GET", "/v1/routes/route", fx->tok_admin, NULL, NULL, NULL, r);
    expect_error(fx, "GET a set of an empty store", r, 404, "unknown_route_set");
    http(fx, "POST", "/v1/routes/test", fx->tok_admin, "{\"from\":\"300\",\"to\":\"31\"}", NULL,
         NULL, r);
    expect_error(fx, "route test on an empty store", r, 404, "unknown_route_set");
    http(fx, "DELETE", "/v1/routes/route", fx->tok_admin, NULL, NULL, NULL, r);
    expect_error(fx, "DELETE in an empty store", r, 404, "unknown_route_set");
    http(fx, "PUT", "/v1/routes", fx->tok_admin, routes_v1, "text/plain", "If-Match: \"0\"", r);
    CHECK(fx,
          r->status == 200 && strstr(r->body, "\"version\":1") &&
              strstr(r->body, "\"applied\":false"),
          "PUT without [agi]: stored, not applied: %ld %s", r->status, r->body);
    http(fx, "POST", "/v1/routes/test", fx->tok_admin, "{\"from\":\"300\",\"to\":\"31\"}", NULL,
         NULL, r);
    CHECK(fx, r->status == 200 && strstr(r->body, "\"data\":\"PJSIP/31\""),
          "route test reads the stored file: %s", r->body);
    CHECK(fx, rec_count(&fx->bus_events, "\"route.decided\"", NULL) == 0,
          "no decision without calls");
}

static void *client_main(void *arg)
{
    fixture *fx = arg;
    resp *r = malloc(sizeof *r);
    agi_job *call = malloc(sizeof *call);
    bool ready = false;
    for (int i = 0; i < 100 && !ready; i++) {
        http(fx, "GET", "/v1/pbxs", fx->tok_admin, NULL, NULL, NULL, r);
        ready = strstr(r->body, "\"stateRestores\":1") != NULL;
        if (!ready)
            usleep(50 * 1000);
    }
    CHECK(fx, ready, "the daemon logged in: %s", r->body);
    if (!fx->has_agi) {
        CHECK(fx, fx->agi_port == -1, "no FastAGI port without [agi]: %d", fx->agi_port);
        if (ready)
            check_without_agi(fx, r);
    } else if (ready && fx->agi_port > 0) {
        walk_routes(fx, r);
        check_put_get(fx, r, call);
        check_invalid(fx, r, call);
        check_put_json(fx, r, call);
        check_route_test(fx, r);
        check_delete(fx, r, call);
        check_async(fx, call);
        check_events(fx);
    }
    free(call);
    free(r);
    fx->done = true;
    uv_async_send(&fx->stop_async);
    return NULL;
}

/* ---- subsystems of the test ---- */

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
    fx->http_port = app_http_port(app);
    fx->agi_port = app_routing_fastagi_port(app);
    fx->sub = bus_subscribe(bus_global(app->bus), on_bus, fx);
    if (fx->http_port <= 0 || !fx->sub)
        return SB_EINVAL;
    uv_async_init(app->loop, &fx->stop_async, on_stop_async);
    fx->stop_async.data = fx;
    uv_async_init(app->loop, &fx->call_async, on_call_async);
    fx->call_async.data = fx;
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
    uv_close((uv_handle_t *)&fx->call_async, NULL);
}

/* The simulator runs on the daemon's loop; it stops after the AMI client (table order). */
static void sim_stop(sb_app *app)
{
    (void)app;
    pbxsim_stop(g_fx->sim);
}

static void sim_free(sb_app *app)
{
    (void)app;
    pbxsim_free(g_fx->sim);
    g_fx->sim = NULL;
}

static const sb_subsystem table[] = {
    {"sim", NULL, NULL, sim_stop, sim_free, NULL},
    {"config", app_config_init, NULL, NULL, app_config_free, NULL},
    {"log", app_log_init, NULL, NULL, NULL, NULL},
    {"store", app_store_init, NULL, NULL, app_store_free, NULL},
    {"bus", app_bus_init, app_bus_start, app_bus_stop, app_bus_free, NULL},
    {"model", app_model_init, NULL, NULL, app_model_free, NULL},
    {"ami", app_ami_init, app_ami_start, app_ami_stop, app_ami_free, NULL},
    {"agi", app_routing_init, app_routing_start, app_routing_stop, app_routing_free, NULL},
    {"http", app_http_init, app_http_start, app_http_stop, app_http_free, NULL},
    {"test", NULL, test_start, test_stop, NULL, NULL},
};

static void make_token(fixture *fx, const char *role, const char *ext, char *tok)
{
    char err[256];
    int64_t id = 0;
    int rc = api_token_create(fx->store, role, ext, "test", tok, &id, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "token: %s\n", err);
    assert_int_equal(rc, 0);
}

static void run_daemon(bool has_agi, int min_checks, int calls)
{
    fixture *fx = calloc(1, sizeof *fx);
    g_fx = fx;
    fx->has_agi = has_agi;
    pthread_mutex_init(&fx->mu, NULL);
    pthread_mutex_init(&fx->bus_events.mu, NULL);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sb-test-api-routes-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->conf, sizeof fx->conf, "%s/switchboard.conf", fx->dir);
    snprintf(fx->store, sizeof fx->store, "%s/store.db", fx->dir);

    make_token(fx, "admin", NULL, fx->tok_admin);
    make_token(fx, "supervisor", NULL, fx->tok_sup);
    make_token(fx, "service", NULL, fx->tok_svc);
    make_token(fx, "agent", "1001", fx->tok_agent);
    char err[512];
    int64_t version = 0;
    if (has_agi) {
        assert_int_equal(route_store_import(fx->store, routes_v1, strlen(routes_v1), "v1.conf",
                                            &version, err, sizeof err),
                         0);
        assert_int_equal(version, 1);
    }

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    pbxsim_config sc;
    pbxsim_config_default(&sc);
    sc.port = 0;
    sc.time_scale = 0.05;
    assert_int_equal(pbxsim_new(&fx->loop, &sc, &fx->sim), 0);
    assert_int_equal(pbxsim_start(fx->sim), 0);

    FILE *f = fopen(fx->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[general]\nlog_level = warn\n\n"
            "[pbx sim]\nhost = 127.0.0.1\nport = %d\nusername = admin\nsecret = admin-secret\n\n"
            "[http]\nbind = 127.0.0.1\nport = 0\n\n"
            "[store]\npath = %s\n\n"
            "%s",
            pbxsim_port(fx->sim), fx->store,
            has_agi ? "[agi]\nbind = 127.0.0.1\nport = 0\nallowed = 127.0.0.1\n" : "");
    fclose(f);

    fx->app.loop = &fx->loop;
    fx->app.opt.config_path = fx->conf;
    int code = sb_app_run(&fx->app, table, sizeof table / sizeof table[0]);
    if (fx->client_started)
        pthread_join(fx->client, NULL);

    fprintf(stderr, "test_api_routes: %d checks, %d failed, %d calls\n", fx->checks, fx->failures,
            fx->calls_done);
    assert_int_equal(code, 0);
    assert_true(fx->done);
    assert_true(fx->checks >= min_checks);
    assert_int_equal(fx->failures, 0);
    assert_int_equal(fx->calls_done, fx->calls_started);
    assert_int_equal(fx->calls_done, calls);

    rec_free(&fx->bus_events);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
}

static void test_api_routes_end_to_end(void **state)
{
    (void)state;
    run_daemon(true, 130, 9);
}

static void test_api_routes_without_agi(void **state)
{
    (void)state;
    run_daemon(false, 12, 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_routes_end_to_end),
        cmocka_unit_test(test_api_routes_without_agi),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
