/* outbox_routes.c: /v1/outbox, the durable outbox over HTTP (admin only; docs/api.md "Outbox").
 *
 * GET /v1/outbox answers outbox_status_json() of the running daemon (counters, store size and
 * its thresholds, every sink's cursor and counts). POST /v1/outbox/sinks/{sink}/retry and
 * .../replay do what `switchboard outbox retry|replay` does, in the daemon itself: the outbox
 * runs the operation on its writer thread and calls back on the loop, so the request is held
 * until then and answered with the number of dead letters put back / the new cursor. Nothing here
 * blocks the loop. Delivery not running (no [sink] configured, or the daemon stopping) is 503.
 */
#include "api/internal.h"

#include "app/delivery.h"
#include "core/error.h"
#include "core/log.h"
#include "outbox/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUB "api"
#define MAX_SINK_NAME 128

/* One held retry/replay: the outbox's callback answers it, or only frees it when the client left
 * (the operation still happens: it is not undone by a closed connection). */
typedef struct outbox_job {
    http_request *req; /* NULL once the client left or the server stops */
    bool is_replay;
    char sink[MAX_SINK_NAME];
} outbox_job;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void respond_not_running(http_request *req)
{
    http_respond_error(req, 503, "delivery_not_running",
                       "delivery is not running (no [sink] configured, or the daemon is stopping)");
}

static void get_outbox(http_request *req, void *ud)
{
    api *a = ud;
    outbox *ob = app_delivery_outbox(a->app);
    if (!ob) {
        respond_not_running(req);
        return;
    }
    json_t *o = outbox_status_json(ob);
    int64_t warn = 0, max = 0;
    app_delivery_size_limits(a->app, &warn, &max);
    if (o && (json_object_set_new(o, "warnBytes", json_integer(warn)) ||
              json_object_set_new(o, "maxBytes", json_integer(max)))) {
        json_decref(o);
        o = NULL;
    }
    http_respond_json(req, 200, o); /* NULL: 500 */
}

static void on_op_done(int status, int64_t count, void *ud)
{
    outbox_job *j = ud;
    http_request *req = j->req;
    if (!req) {
        free(j);
        return;
    }
    j->req = NULL;
    if (status == 0)
        http_respond_json(req, 200,
                          json_pack("{s:s, s:I}", "sink", j->sink,
                                    j->is_replay ? "cursor" : "retried", (json_int_t)count));
    else if (status == SB_ECANCELED)
        respond_not_running(req);
    else
        http_respond_error(req, 500, "store_error", sb_strerror(status));
    free(j);
}

static void on_hold(http_request *req, int reason, void *ud)
{
    outbox_job *j = ud;
    (void)req;
    (void)reason; /* no timer: the client left or the server stops; the outbox still calls back */
    j->req = NULL;
}

/* The optional {"from": TIME} body into *from_ms (0 when absent). false after answering 400. */
static bool read_from(http_request *req, bool is_required, int64_t *from_ms)
{
    sb_slice body = http_request_body(req);
    const char *from = NULL;
    json_t *j = NULL;
    bool ok = false;
    *from_ms = 0;
    if (body.len > 0) {
        if (!(j = http_request_json(req)))
            return false; /* answered 400 malformed_json */
        json_t *f = json_object_get(j, "from");
        if (!json_is_object(j) || (f && !json_is_string(f))) {
            http_respond_error(req, 400, "bad_request", "the body is {\"from\": TIME} (a string)");
            goto out;
        }
        from = json_string_value(f);
    }
    if (!from) {
        if (is_required)
            http_respond_error(
                req, 400, "bad_request",
                "from is required: an RFC 3339 UTC time or a duration (90m, 2h, 1d)");
        ok = !is_required;
        goto out;
    }
    if (outbox_parse_from(from, wall_ms(), from_ms) < 0) {
        http_respond_error(req, 400, "bad_from",
                           "from: not an RFC 3339 UTC time (2026-11-25T02:00:00Z) or a duration "
                           "back from now (90m, 2h, 1d)");
        goto out;
    }
    ok = true;
out:
    json_decref(j);
    return ok;
}

static void post_op(http_request *req, api *a, bool is_replay)
{
    sb_slice name = http_request_param(req, "sink");
    int64_t from_ms = 0;
    char msg[MAX_SINK_NAME + 64];
    if (!name.ptr || name.len == 0 || name.len >= MAX_SINK_NAME || memchr(name.ptr, 0, name.len)) {
        http_respond_error(req, 404, "unknown_sink", "no such sink");
        return;
    }
    if (!read_from(req, is_replay, &from_ms))
        return;
    outbox *ob = app_delivery_outbox(a->app);
    if (!ob) {
        respond_not_running(req);
        return;
    }
    outbox_job *j = calloc(1, sizeof *j);
    if (!j) {
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    j->is_replay = is_replay;
    memcpy(j->sink, name.ptr, name.len);
    j->sink[name.len] = 0;
    /* Hold first: the outbox may call back before outbox_retry/replay returns (it does not
     * today, but its contract allows any time on the loop). */
    j->req = req;
    if (http_request_hold(req, 0, on_hold, j) < 0) {
        http_respond_error(req, 500, "internal", "cannot hold the request");
        free(j);
        return;
    }
    int rc = is_replay ? outbox_replay(ob, j->sink, from_ms, on_op_done, j)
                       : outbox_retry(ob, j->sink, from_ms, on_op_done, j);
    if (rc == 0)
        return;
    /* The callback will not run: answer here. */
    j->req = NULL;
    if (rc == SB_ENOTFOUND) {
        snprintf(msg, sizeof msg, "no sink named '%s' in the running daemon", j->sink);
        http_respond_error(req, 404, "unknown_sink", msg);
    } else if (rc == SB_EINVAL && is_replay) {
        snprintf(msg, sizeof msg, "a replay of sink '%s' is already in progress", j->sink);
        http_respond_error(req, 409, "replay_in_progress", msg);
    } else if (rc == SB_ECANCELED) {
        respond_not_running(req);
    } else {
        http_respond_error(req, 500, "internal", sb_strerror(rc));
    }
    free(j);
}

static void post_retry(http_request *req, void *ud)
{
    post_op(req, ud, false);
}

static void post_replay(http_request *req, void *ud)
{
    post_op(req, ud, true);
}

static const api_route_def outbox_table[] = {
    {"GET", "/v1/outbox", get_outbox, API_R(API_ROLE_ADMIN), NULL},
    {"POST", "/v1/outbox/sinks/{sink}/retry", post_retry, API_R(API_ROLE_ADMIN), NULL},
    {"POST", "/v1/outbox/sinks/{sink}/replay", post_replay, API_R(API_ROLE_ADMIN), NULL},
};

int api_outbox_routes_add(api *a, http_router *r)
{
    return api_add_table(a, r, outbox_table, sizeof outbox_table / sizeof outbox_table[0]);
}
