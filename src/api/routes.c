/* routes.c: /v1/routes, the routing engine's data over HTTP (admin only; docs/api.md "Routes").
 *
 * GET /v1/routes[/{set}] reads the store's newest route file (JSON, or the file text with
 * `Accept: text/plain`); PUT /v1/routes replaces everything with a route file or its JSON form,
 * validated by route_db_parse() (the line-precise errors of `switchboard route import`, answered
 * 422; nothing is stored then); DELETE /v1/routes/{set} stores a new version without that set;
 * POST /v1/routes/test explains a decision like `switchboard route test`. Every store access
 * blocks on disk, so it runs on libuv's thread pool while the request is held; a new version is
 * then handed to the running `agi` subsystem (app_routing_store_updated), which routes new calls
 * with it at once (calls in progress keep theirs). The decision itself (route_decide, time
 * zones) runs on the loop thread: route_tz_localtime() switches TZ, which only the loop may do.
 */
#include "api/internal.h"
#include "api/routes_internal.h"

#include "app/routing.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "routing/route.h"
#include "routing/store.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SUB "api"
#define MAX_FILE (4u << 20)
#define SOURCE "request" /* the file name in error messages: "request:12: [rule x] ..." */

typedef enum job_kind { JOB_GET, JOB_GET_SET, JOB_PUT, JOB_DELETE, JOB_TEST } job_kind;

/* One request's trip to the thread pool. Inputs are set on the loop, outputs on the pool; the
 * loop reads them in job_done. */
typedef struct routes_job {
    uv_work_t work;
    job_kind kind;
    sb_app *app;
    http_request *req; /* NULL once the client left or the server stops */
    char *path;        /* the store file (owned) */
    bool want_text;
    int64_t if_match; /* PUT, DELETE: the version the client replaces (If-Match), or -1 */
    char set[128];
    json_t *test; /* POST /v1/routes/test body (owned) */
    /* in (PUT) and out (GET: the stored text) */
    char *text;
    size_t len;
    /* out */
    int rc;
    char err[512];
    route_db *db;
    int64_t version;
} routes_job;

/* ---- the thread pool side ---- */

static int load_newest(routes_job *j)
{
    int rc = route_store_load(j->path, &j->text, &j->len, &j->version);
    if (rc < 0)
        return rc;
    return route_db_parse(j->text, j->len, "store", &j->db, j->err, sizeof j->err);
}

/* Writes the sections of db that belong to [route set] (is_in_set) or all the others (not
 * is_in_set; ivr and cidmap sections always go there) to out in the file format. 0,
 * SB_ENOTFOUND (no such set) or SB_ENOMEM. */
static int export_set(const route_db *db, const char *set, bool is_in_set, sb_buf *out)
{
    if (!route_db_set(db, sb_slice_cstr(set)))
        return SB_ENOTFOUND;
    route_section *keep = calloc(db->nsections, sizeof *keep);
    if (!keep)
        return SB_ENOMEM;
    route_db view = *db;
    bool is_in = false;
    view.nsections = 0;
    for (size_t i = 0; i < db->nsections; i++) {
        const route_section *s = &db->sections[i];
        if (strcmp(s->kind, "route") == 0)
            is_in = strcmp(s->name, set) == 0;
        bool is_set_part = is_in && (strcmp(s->kind, "route") == 0 || strcmp(s->kind, "rule") == 0);
        if (is_set_part == is_in_set)
            keep[view.nsections++] = *s;
    }
    view.sections = keep;
    int rc = route_db_export(&view, out) < 0 ? SB_ENOMEM : 0;
    free(keep);
    return rc;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* PUT and DELETE: one write transaction (BEGIN IMMEDIATE holds the store's write lock), so a
 * DELETE never drops what another writer stored meanwhile and If-Match compares with the
 * version really replaced. Keeps the new version's parsed db in j->db. SB_EINVAL (the file, in
 * j->err), SB_ENOTFOUND (DELETE: no such set), SB_EEXIST (If-Match differs; j->version is the
 * newest) or a store error. */
static int write_version(routes_job *j)
{
    store_conn *c = NULL;
    route_db *db = NULL, *old = NULL;
    char *cur = NULL;
    size_t curlen = 0;
    int64_t curver = 0;
    const char *text = j->text;
    size_t len = j->len;
    sb_buf out;
    sb_buf_init(&out, MAX_FILE);
    int rc;
    /* A PUT's file is checked before the store is touched. */
    if (j->kind == JOB_PUT && (rc = route_db_parse(text, len, SOURCE, &db, j->err, sizeof j->err)))
        goto out;
    if ((rc = store_open(j->path, STORE_OPEN_WRITE, NULL, &c)) < 0 || (rc = store_begin(c)) < 0)
        goto out;
    rc = store_route_file_newest(c, &cur, &curlen, &curver);
    if (rc == SB_ENOTFOUND)
        rc = 0;
    if (rc < 0)
        goto out;
    if (j->if_match >= 0 && j->if_match != curver) {
        j->version = curver;
        rc = SB_EEXIST;
        goto out;
    }
    if (j->kind == JOB_DELETE) {
        if (!cur) {
            rc = SB_ENOTFOUND;
            goto out;
        }
        if ((rc = route_db_parse(cur, curlen, "store", &old, j->err, sizeof j->err)) < 0 ||
            (rc = export_set(old, j->set, false, &out)) < 0)
            goto out;
        text = out.data ? out.data : "";
        len = out.len;
        if ((rc = route_db_parse(text, len, SOURCE, &db, j->err, sizeof j->err)) < 0)
            goto out;
    }
    char source[200];
    snprintf(source, sizeof source, "%s /v1/routes%s%.128s", j->kind == JOB_PUT ? "PUT" : "DELETE",
             j->kind == JOB_PUT ? "" : "/", j->kind == JOB_PUT ? "" : j->set);
    if ((rc = store_route_file_insert(c, text, len, source, wall_ms(), &j->version)) < 0 ||
        (rc = store_commit(c)) < 0)
        goto out;
    j->db = db;
    db = NULL;
out:
    if (rc < 0 && rc != SB_EINVAL && rc != SB_ENOTFOUND && rc != SB_EEXIST && !j->err[0])
        snprintf(j->err, sizeof j->err, "%s: %s", j->path, sb_strerror(rc));
    if (c && store_in_transaction(c))
        store_rollback(c);
    store_close(c);
    route_db_free(db);
    route_db_free(old);
    free(cur);
    sb_buf_free(&out);
    return rc;
}

static void job_work(uv_work_t *w)
{
    routes_job *j = w->data;
    switch (j->kind) {
    case JOB_GET:
    case JOB_GET_SET:
    case JOB_TEST:
        j->rc = load_newest(j);
        break;
    case JOB_PUT:
    case JOB_DELETE:
        j->rc = write_version(j);
        break;
    }
}

/* ---- the loop side ---- */

static void job_free(routes_job *j)
{
    route_db_free(j->db);
    json_decref(j->test);
    free(j->text);
    free(j->path);
    free(j);
}

/* "request:12: [rule x] match: ..." -> 12 (0 when the message names no line). */
static long error_line(const char *msg)
{
    const char *p = strchr(msg, ':');
    if (!p || p[1] < '0' || p[1] > '9')
        return 0;
    return strtol(p + 1, NULL, 10);
}

static void respond_invalid(http_request *req, const char *msg)
{
    json_t *e = json_pack("{s:i,s:s}", "line", (json_int_t)error_line(msg), "message", msg);
    json_t *body = json_pack("{s:{s:s,s:s,s:[o]}}", "error", "code", "invalid_routes", "message",
                             msg, "errors", e);
    http_respond_json(req, 422, body);
}

static void respond_store_error(http_request *req, int rc, const char *err)
{
    char msg[640];
    snprintf(msg, sizeof msg, "the store: %s", err && *err ? err : sb_strerror(rc));
    if (rc == SB_EINVAL) /* the stored file no longer parses (a newer version wrote it?) */
        http_respond_error(req, 500, "invalid_stored_routes", msg);
    else
        http_respond_error(req, 500, "store_error", msg);
}

static void respond_unknown_set(http_request *req, const char *set)
{
    char msg[200];
    snprintf(msg, sizeof msg, "no route set '%.128s'", set);
    http_respond_error(req, 404, "unknown_route_set", msg);
}

static void respond_get(routes_job *j)
{
    http_request *req = j->req;
    if (j->rc == SB_ENOTFOUND && j->kind == JOB_GET_SET) {
        respond_unknown_set(req, j->set);
        return;
    }
    if (j->rc < 0 && j->rc != SB_ENOTFOUND) {
        respond_store_error(req, j->rc, j->err);
        return;
    }
    /* SB_ENOTFOUND: nothing imported yet, an empty file (version 0). */
    if (j->kind == JOB_GET_SET && (!j->db || !route_db_set(j->db, sb_slice_cstr(j->set)))) {
        respond_unknown_set(req, j->set);
        return;
    }
    char etag[32];
    snprintf(etag, sizeof etag, "\"%lld\"", (long long)j->version);
    http_header h = {"ETag", etag};
    if (j->want_text) {
        sb_buf out;
        sb_buf_init(&out, MAX_FILE);
        if (j->kind == JOB_GET)
            http_respond(req, 200, "text/plain; charset=utf-8", &h, 1,
                         (sb_slice){j->text ? j->text : "", j->len});
        else if (export_set(j->db, j->set, true, &out) < 0)
            http_respond_error(req, 500, "internal", "out of memory");
        else
            http_respond(req, 200, "text/plain; charset=utf-8", &h, 1,
                         (sb_slice){out.data, out.len});
        sb_buf_free(&out);
        return;
    }
    json_t *body = api_routes_db_json(j->db, j->kind == JOB_GET_SET ? j->set : NULL);
    if (body && j->kind == JOB_GET_SET) {
        json_t *one = json_incref(json_array_get(json_object_get(body, "routes"), 0));
        json_decref(body);
        body = one;
    }
    char *text = NULL;
    if (body && json_object_set_new(body, "version", json_integer(j->version)) == 0)
        text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text)
        http_respond(req, 200, "application/json", &h, 1, sb_slice_cstr(text));
    else
        http_respond_error(req, 500, "internal", "out of memory");
    free(text);
}

/* ---- POST /v1/routes/test ---- */
static const char *member(json_t *body, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(body, key));
    return s ? s : dflt;
}

static void respond_test(routes_job *j)
{
    http_request *req = j->req;
    json_t *b = j->test;
    const char *from = member(b, "from", NULL), *to = member(b, "to", NULL);
    const char *script = member(b, "script", "route"), *pbx = member(b, "pbx", "");
    const char *at = member(b, "at", NULL);
    if (j->rc < 0 && j->rc != SB_ENOTFOUND) {
        respond_store_error(req, j->rc, j->err);
        return;
    }
    const route_set *set = j->db ? route_db_set(j->db, sb_slice_cstr(script)) : NULL;
    if (!set) {
        respond_unknown_set(req, script);
        return;
    }
    time_t now = time(NULL);
    if (at && api_routes_parse_at(at, set->tz, &now) < 0) {
        http_respond_error(req, 400, "bad_request",
                           "at: expected 2026-11-25T10:00 (in the set's zone), ...Z or ...+01:00");
        return;
    }
    route_facts f = {sb_slice_cstr(to), sb_slice_cstr(from), sb_slice_cstr(pbx), now};
    route_decision d;
    sb_buf trace;
    sb_buf_init(&trace, 1u << 20);
    int rc = route_decide(set, &f, &d, &trace);
    char when[32];
    struct tm ut;
    gmtime_r(&now, &ut);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &ut);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b,s:o}", "script", set->name, "from", from,
                          "to", to, "pbx", pbx, "at", when, "version", (json_int_t)j->version,
                          "matched", rc == 0, "trace", api_routes_trace_json(&trace));
    sb_buf_free(&trace);
    if (o && rc == 0) {
        const route_rule *r = d.rule;
        route_vars v = {sb_slice_cstr(to), sb_slice_cstr(from), sb_slice_cstr(""),
                        sb_slice_cstr("")};
        json_t *vars = json_object();
        for (size_t i = 0; vars && i < r->nset; i++)
            json_object_set_new(vars, r->set[i].name, json_string(r->set[i].value));
        json_object_set_new(o, "rule",
                            json_pack("{s:s,s:s,s:i}", "name", r->name, "match",
                                      route_pattern_text(r->match), "line", r->line));
        json_object_set_new(o, "closed", json_boolean(d.is_closed));
        json_object_set_new(o, "needsPin", json_boolean(d.needs_pin));
        json_object_set_new(o, "denied", json_boolean(d.is_denied));
        json_object_set_new(o, "set", vars);
        json_object_set_new(o, "action", api_routes_action_json(j->db, d.action, &v));
        if (d.action->kind == ROUTE_ACT_DECIDE)
            json_object_set_new(o, "fallback",
                                r->fallback.kind
                                    ? api_routes_action_json(j->db, &r->fallback, &v)
                                    : json_pack("{s:s,s:s}", "text", "hangup", "kind", "hangup"));
    }
    http_respond_json(req, 200, o);
}

static void job_done(uv_work_t *w, int status)
{
    routes_job *j = w->data;
    (void)status;
    /* A new version is in the store: route new calls with it, whether or not the client is still
     * there to hear about it. */
    bool is_applied = false;
    if ((j->kind == JOB_PUT || j->kind == JOB_DELETE) && j->rc == 0) {
        route_db *db = j->db;
        j->db = NULL;
        is_applied = app_routing_store_updated(j->app, db, j->version);
    }
    http_request *req = j->req;
    if (!req)
        goto out;
    switch (j->kind) {
    case JOB_GET:
    case JOB_GET_SET:
        respond_get(j);
        break;
    case JOB_TEST:
        respond_test(j);
        break;
    case JOB_PUT:
    case JOB_DELETE:
        if (j->rc == SB_EEXIST) {
            char msg[160];
            snprintf(msg, sizeof msg, "If-Match: the routes are at version %lld now",
                     (long long)j->version);
            http_respond_error(req, 412, "version_mismatch", msg);
        } else if (j->rc == SB_EINVAL)
            respond_invalid(req, j->err);
        else if (j->rc == SB_ENOTFOUND && j->kind == JOB_DELETE)
            respond_unknown_set(req, j->set);
        else if (j->rc < 0)
            respond_store_error(req, j->rc, j->err);
        else
            http_respond_json(
                req, 200,
                json_pack("{s:I,s:b}", "version", (json_int_t)j->version, "applied", is_applied));
        break;
    }
out:
    job_free(j);
}

static void on_hold(http_request *req, int reason, void *ud)
{
    routes_job *j = ud;
    (void)req;
    (void)reason; /* no timer: only SB_EDISCONN or SB_ECANCELED; the job finishes alone */
    j->req = NULL;
}

/* Queues j for the pool and holds its request; answers 500 itself on failure. Takes j. */
static void job_start(routes_job *j)
{
    http_request *req = j->req;
    j->work.data = j;
    if (!j->path) {
        http_respond_error(req, 500, "internal", "out of memory");
        job_free(j);
        return;
    }
    if (uv_queue_work(j->app->loop, &j->work, job_work, job_done) < 0) {
        http_respond_error(req, 500, "internal", "cannot queue the store access");
        job_free(j);
        return;
    }
    if (http_request_hold(req, 0, on_hold, j) < 0)
        SB_WARN(SUB, "cannot hold a /v1/routes request"); /* cannot happen inside the handler */
}

static routes_job *job_new(http_request *req, api *a, job_kind kind)
{
    routes_job *j = calloc(1, sizeof *j);
    if (!j) {
        http_respond_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    j->kind = kind;
    j->app = a->app;
    j->req = req;
    j->path = strdup(a->app->store_path ? a->app->store_path : "switchboard.db");
    j->if_match = -1;
    return j;
}

/* If-Match: "N" (or N, or W/"N") into j->if_match; answers 400 itself when it is not a version.
 * "*" and no header: no condition. */
static bool read_if_match(http_request *req, routes_job *j)
{
    sb_slice v = http_request_header(req, "If-Match");
    char buf[32];
    if (!v.ptr || (v.len == 1 && v.ptr[0] == '*'))
        return true;
    if (v.len >= 2 && v.ptr[0] == 'W' && v.ptr[1] == '/') {
        v.ptr += 2;
        v.len -= 2;
    }
    if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
        v.ptr++;
        v.len -= 2;
    }
    bool ok = v.len > 0 && v.len < sizeof buf;
    for (size_t i = 0; ok && i < v.len; i++)
        ok = v.ptr[i] >= '0' && v.ptr[i] <= '9';
    if (!ok) {
        http_respond_error(req, 400, "bad_request", "If-Match: expected a version such as \"3\"");
        return false;
    }
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = 0;
    j->if_match = strtoll(buf, NULL, 10);
    return true;
}

static bool wants_text(http_request *req)
{
    sb_slice acc = http_request_header(req, "Accept");
    sb_slice fmt = http_request_query(req, "format");
    if (fmt.ptr)
        return sb_slice_eq(fmt, SB_SLICE_LIT("text"));
    for (size_t i = 0; acc.ptr && i + 10 <= acc.len; i++)
        if (strncasecmp(acc.ptr + i, "text/plain", 10) == 0)
            return true;
    return false;
}

static bool copy_set(http_request *req, char *buf, size_t size)
{
    sb_slice s = http_request_param(req, "set");
    if (!s.ptr || s.len == 0 || s.len >= size) {
        http_respond_error(req, 404, "unknown_route_set", "no such route set");
        return false;
    }
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = 0;
    return true;
}

static void get_routes(http_request *req, void *ud)
{
    routes_job *j = job_new(req, ud, JOB_GET);
    if (!j)
        return;
    j->want_text = wants_text(req);
    job_start(j);
}

static void get_route_set(http_request *req, void *ud)
{
    routes_job *j = job_new(req, ud, JOB_GET_SET);
    if (!j)
        return;
    if (!copy_set(req, j->set, sizeof j->set)) {
        job_free(j);
        return;
    }
    j->want_text = wants_text(req);
    job_start(j);
}

static void delete_route_set(http_request *req, void *ud)
{
    routes_job *j = job_new(req, ud, JOB_DELETE);
    if (!j)
        return;
    if (!copy_set(req, j->set, sizeof j->set) || !read_if_match(req, j)) {
        job_free(j);
        return;
    }
    job_start(j);
}

static void put_routes(http_request *req, void *ud)
{
    sb_slice ct = http_request_header(req, "Content-Type");
    sb_slice body = http_request_body(req);
    bool is_json = ct.ptr && ct.len >= 16 && strncasecmp(ct.ptr, "application/json", 16) == 0;
    char err[512];
    sb_buf text;
    sb_buf_init(&text, MAX_FILE);
    if (is_json) {
        json_t *jb = http_request_json(req);
        if (!jb)
            goto out; /* answered 400 */
        int rc = api_routes_json_to_text(jb, &text, err, sizeof err);
        json_decref(jb);
        if (rc == SB_EINVAL) {
            http_respond_error(req, 400, "bad_request", err);
            goto out;
        }
        if (rc < 0) {
            http_respond_error(req, 500, "internal", "out of memory");
            goto out;
        }
    } else if (sb_buf_append(&text, body.ptr ? body.ptr : "", body.len) < 0) {
        http_respond_error(req, 413, "payload_too_large", "route file too large");
        goto out;
    }
    if (text.len == 0 || sb_buf_reserve(&text, 1) < 0) {
        http_respond_error(req, 400, "bad_request", "an empty body: send a route file or its JSON");
        goto out;
    }
    text.data[text.len] = 0;
    routes_job *j = job_new(req, ud, JOB_PUT);
    if (!j)
        goto out;
    if (!read_if_match(req, j)) {
        job_free(j);
        goto out;
    }
    j->len = text.len;
    j->text = sb_buf_steal(&text);
    job_start(j);
out:
    sb_buf_free(&text);
}

static void post_route_test(http_request *req, void *ud)
{
    json_t *b = http_request_json(req);
    if (!b)
        return; /* answered 400 */
    const char *need[] = {"from", "to"}, *opt[] = {"at", "pbx", "script"};
    for (size_t i = 0; i < 2; i++) {
        const char *s = json_string_value(json_object_get(b, need[i]));
        if (!s || !api_routes_is_clean(s, 80, "")) {
            char msg[96];
            snprintf(msg, sizeof msg, "%s: a number (1-80 characters) is required", need[i]);
            http_respond_error(req, 400, "bad_request", msg);
            json_decref(b);
            return;
        }
    }
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(b, opt[i]);
        if (v && (!json_is_string(v) || !api_routes_is_clean(json_string_value(v), 128, ""))) {
            char msg[96];
            snprintf(msg, sizeof msg, "%s: expected a non-empty string", opt[i]);
            http_respond_error(req, 400, "bad_request", msg);
            json_decref(b);
            return;
        }
    }
    routes_job *j = job_new(req, ud, JOB_TEST);
    if (!j) {
        json_decref(b);
        return;
    }
    j->test = b;
    job_start(j);
}

/* ---- registration ---- */

static const api_route_def routes_table[] = {
    {"GET", "/v1/routes", get_routes, API_R(API_ROLE_ADMIN), NULL},
    {"PUT", "/v1/routes", put_routes, API_R(API_ROLE_ADMIN), NULL},
    {"POST", "/v1/routes/test", post_route_test, API_R(API_ROLE_ADMIN), NULL},
    {"GET", "/v1/routes/{set}", get_route_set, API_R(API_ROLE_ADMIN), NULL},
    {"DELETE", "/v1/routes/{set}", delete_route_set, API_R(API_ROLE_ADMIN), NULL},
};

int api_routes_add(api *a, http_router *r)
{
    return api_add_table(a, r, routes_table, sizeof routes_table / sizeof routes_table[0]);
}
