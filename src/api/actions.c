/* actions.c: the /v1 handlers that act on the PBX: click-to-dial (POST /v1/calls) and queue
 * membership (add, remove, pause, unpause). Each sends one AMI action, holds the request until the
 * PBX answers it (the client's action timeout bounds the wait), and maps the answer to an HTTP
 * status (docs/api.md "Errors"). An Originate is sent with Async: true as a simple action: the
 * answer is Asterisk's "Originate successfully queued" (or an error), and the OriginateResponse
 * that follows reaches the model as an ordinary event, where model_expect_originate() has
 * already tied its ActionID to the agent (originateFailed goes to that agent's stream). */
#include "api/internal.h"

#include "app/pbx.h"
#include "core/error.h"
#include "core/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "api"
#define ORIGINATE_DEFAULT_CONTEXT "from-internal"
#define ORIGINATE_DEFAULT_TIMEOUT_S 30
#define MAX_VARIABLES 16

typedef enum act_kind { ACT_ORIGINATE, ACT_ADD, ACT_REMOVE, ACT_PAUSE, ACT_UNPAUSE } act_kind;

/* One action in flight. Freed by the AMI callback, which runs exactly once after a successful
 * send; req is NULL once the request died (client gone, server stopping). */
typedef struct act_ctx {
    api *a;
    http_request *req;
    act_kind kind;
    char action_id[48];
    char pbx[128];
    char queue[128];
    char iface[160];
    char agent[32];
    char channel_id[48];
    bool paused;
} act_ctx;

static void on_hold(http_request *req, int reason, void *ud)
{
    act_ctx *x = ud;
    if (reason == SB_ETIMEDOUT) {
        http_respond_error(req, 504, "pbx_timeout", "the PBX did not answer in time");
    }
    x->req = NULL;
}

/* Maps the message of a queue action's Error answer (texts of fixtures 04, 08, 09) to a status. */
static void respond_queue_error(http_request *req, const char *msg)
{
    char text[256];
    snprintf(text, sizeof text, "the PBX answered: %s", msg);
    if (strstr(msg, "No such queue"))
        http_respond_error(req, 404, "unknown_queue", text);
    else if (strstr(msg, "Already there"))
        http_respond_error(req, 409, "already_member", text);
    else if (strstr(msg, "Not there") || strstr(msg, "Interface not found"))
        http_respond_error(req, 404, "unknown_member", text);
    else if (strstr(msg, "not dynamic"))
        http_respond_error(req, 409, "member_not_dynamic", text);
    else
        http_respond_error(req, 502, "pbx_error", text);
}

static void on_answer(ami_client *c, const ami_result *r, void *ud)
{
    act_ctx *x = ud;
    char msg[200] = "";
    (void)c;
    if (r->response) {
        sb_slice m = ami_packet_value(r->response, "Message");
        snprintf(msg, sizeof msg, "%.*s", (int)m.len, m.ptr ? m.ptr : "");
    }
    http_request *req = x->req;
    if (req) {
        if (r->status == 0) {
            json_t *o = NULL;
            if (x->kind == ACT_ORIGINATE) {
                o = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "actionId", x->action_id, "pbx", x->pbx,
                              "channelId", x->channel_id, "agent", x->agent[0] ? x->agent : NULL,
                              "message", msg);
                http_respond_json(req, 202, o);
            } else {
                o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "actionId", x->action_id, "pbx", x->pbx,
                              "queue", x->queue, "interface", x->iface, "message", msg);
                http_respond_json(req, x->kind == ACT_ADD ? 201 : 200, o);
            }
        } else if (r->status == SB_EFAILED && x->kind != ACT_ORIGINATE) {
            respond_queue_error(req, msg);
        } else {
            api_respond_ami_error(req, r->status, msg);
        }
        x->req = NULL;
    }
    free(x);
}

/* Sends m for the request and holds it; on failure answers at once. Takes ownership of x. */
static void send_action(act_ctx *x, ami_msg *m)
{
    http_request *req = x->req;
    ami_client *c = app_pbx_client(x->a->app, x->pbx);
    int rc = c ? ami_client_send(c, m, AMI_ACTION_SIMPLE, 0, on_answer, x, x->action_id,
                                 sizeof x->action_id)
               : SB_EDISCONN;
    if (rc < 0) {
        if (!c)
            ami_msg_free(m);
        api_respond_ami_error(req, rc, NULL);
        free(x);
        return;
    }
    if (x->kind == ACT_ORIGINATE && x->agent[0] && x->a->app->model)
        model_expect_originate(x->a->app->model, x->pbx, x->action_id, x->agent);
    /* No timer: the client's action timeout answers (SB_ETIMEDOUT -> 504). */
    if (http_request_hold(req, 0, on_hold, x) < 0) {
        http_respond_error(req, 500, "internal", "cannot hold the request");
        x->req = NULL;
    }
}

static bool copy_param(http_request *req, const char *name, char *buf, size_t size)
{
    sb_slice v = http_request_param(req, name);
    if (!v.ptr || v.len == 0 || v.len >= size) {
        http_respond_error(req, 400, "bad_request", "path parameter missing or too long");
        return false;
    }
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = 0;
    if (!api_is_header_safe(buf, size - 1)) {
        http_respond_error(req, 400, "bad_request", "control characters in a path parameter");
        return false;
    }
    return true;
}

/* Parses the body when there is one; *body NULL for an empty body. false after answering. */
static bool optional_body(http_request *req, json_t **body)
{
    *body = NULL;
    if (http_request_body(req).len == 0)
        return true;
    *body = http_request_json(req);
    if (!*body)
        return false;
    if (!json_is_object(*body)) {
        json_decref(*body);
        *body = NULL;
        http_respond_error(req, 400, "bad_request", "the body must be a JSON object");
        return false;
    }
    return true;
}

/* A string member of body: NULL when absent; *bad set (after answering 400) when it is not a
 * safe string of at most max bytes. */
static const char *str_member(http_request *req, json_t *body, const char *key, size_t max,
                              bool *bad)
{
    json_t *v = body ? json_object_get(body, key) : NULL;
    if (*bad || !v || json_is_null(v))
        return NULL;
    const char *s = json_string_value(v);
    if (!s || !api_is_header_safe(s, max)) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "%s must be a string of 1 to %zu characters without control "
                 "characters",
                 key, max);
        http_respond_error(req, 400, "bad_request", msg);
        *bad = true;
        return NULL;
    }
    return s;
}

/* ---- queue members ---- */

static void member_action(http_request *req, api *a, act_kind kind)
{
    json_t *body = NULL;
    char pbxbuf[128];
    bool bad = false;
    act_ctx *x = calloc(1, sizeof *x);
    if (!x) {
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    x->a = a;
    x->req = req;
    x->kind = kind;
    if (!copy_param(req, "name", x->queue, sizeof x->queue) ||
        !copy_param(req, "interface", x->iface, sizeof x->iface) || !optional_body(req, &body))
        goto fail;
    const char *pbx = api_pick_pbx(a, req, body, false, pbxbuf, sizeof pbxbuf);
    if (!pbx)
        goto fail;
    snprintf(x->pbx, sizeof x->pbx, "%s", pbx);
    /* Once the PBX's queues are known (a state restore completed), an unknown queue is answered
     * here without asking the PBX. */
    if (a->app->model && app_pbx_resyncs(a->app, x->pbx) > 0) {
        json_t *q = model_queue_json(a->app->model, x->pbx, x->queue);
        if (!q) {
            http_respond_error(req, 404, "unknown_queue", "no such queue");
            goto fail;
        }
        json_decref(q);
    }
    ami_msg m;
    switch (kind) {
    case ACT_ADD: {
        const char *mname = str_member(req, body, "memberName", 80, &bad);
        const char *sif = str_member(req, body, "stateInterface", 128, &bad);
        json_t *pen = body ? json_object_get(body, "penalty") : NULL;
        json_t *paused = body ? json_object_get(body, "paused") : NULL;
        if (!bad && pen &&
            (!json_is_integer(pen) || json_integer_value(pen) < 0 ||
             json_integer_value(pen) > 1000000)) {
            http_respond_error(req, 400, "bad_request", "penalty must be an integer >= 0");
            bad = true;
        }
        if (!bad && paused && !json_is_boolean(paused)) {
            http_respond_error(req, 400, "bad_request", "paused must be true or false");
            bad = true;
        }
        if (bad)
            goto fail;
        ami_msg_init(&m, "Action", "QueueAdd");
        ami_msg_add(&m, "Queue", x->queue);
        ami_msg_add(&m, "Interface", x->iface);
        if (pen)
            ami_msg_addf(&m, "Penalty", "%lld", (long long)json_integer_value(pen));
        if (paused)
            ami_msg_add(&m, "Paused", json_is_true(paused) ? "true" : "false");
        if (mname)
            ami_msg_add(&m, "MemberName", mname);
        if (sif)
            ami_msg_add(&m, "StateInterface", sif);
        break;
    }
    case ACT_REMOVE:
        ami_msg_init(&m, "Action", "QueueRemove");
        ami_msg_add(&m, "Queue", x->queue);
        ami_msg_add(&m, "Interface", x->iface);
        break;
    default: {
        const char *reason = str_member(req, body, "reason", 80, &bad);
        if (bad)
            goto fail;
        x->paused = kind == ACT_PAUSE;
        ami_msg_init(&m, "Action", "QueuePause");
        ami_msg_add(&m, "Interface", x->iface);
        ami_msg_add(&m, "Paused", x->paused ? "true" : "false");
        ami_msg_add(&m, "Queue", x->queue);
        if (reason)
            ami_msg_add(&m, "Reason", reason);
        break;
    }
    }
    json_decref(body);
    send_action(x, &m);
    return;
fail:
    json_decref(body);
    free(x);
}

void api_member_add(http_request *req, void *ud)
{
    member_action(req, ud, ACT_ADD);
}

void api_member_remove(http_request *req, void *ud)
{
    member_action(req, ud, ACT_REMOVE);
}

void api_member_pause(http_request *req, void *ud)
{
    member_action(req, ud, ACT_PAUSE);
}

void api_member_unpause(http_request *req, void *ud)
{
    member_action(req, ud, ACT_UNPAUSE);
}

/* ---- click-to-dial ---- */

/* Numbers and extensions go into Exten and channel names: dialplan characters only. */
static bool is_dialable(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z') || strchr("+*#_.-", ch) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

static bool is_var_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '_'))
            return false;
    }
    return true;
}

static bool bad_field(http_request *req, const char *msg)
{
    http_respond_error(req, 400, "bad_request", msg);
    return false;
}

/* Builds the Originate of body into m (initialized here on success). false after answering. */
static bool build_originate(http_request *req, api *a, json_t *body, act_ctx *x, ami_msg *m)
{
    const api_principal *pr = api_principal_of(req);
    bool bad = false;
    const char *agent = str_member(req, body, "agent", 31, &bad);
    const char *number = str_member(req, body, "number", 64, &bad);
    const char *device = str_member(req, body, "device", 128, &bad);
    const char *context = str_member(req, body, "context", 80, &bad);
    const char *callerid = str_member(req, body, "callerId", 128, &bad);
    const char *queue = str_member(req, body, "queue", 127, &bad);
    const char *ext = str_member(req, body, "extension", 31, &bad);
    json_t *timeout = json_object_get(body, "timeout");
    json_t *vars = json_object_get(body, "variables");
    (void)a;
    if (bad)
        return false;
    if (!number || !is_dialable(number, 64))
        return bad_field(req, "number is required: digits, letters and + * # _ . - only");
    if (!context)
        context = ORIGINATE_DEFAULT_CONTEXT;
    if (!is_dialable(context, 80))
        return bad_field(req, "context: letters, digits and + * # _ . - only");
    int targets = (agent != NULL) + (queue != NULL) + (ext != NULL);
    if (targets != 1)
        return bad_field(req, "say exactly one of agent (ring the agent, then dial number), queue "
                              "or extension (dial number, then connect it there)");
    if ((agent && !is_dialable(agent, 31)) || (ext && !is_dialable(ext, 31)))
        return bad_field(req, "agent and extension: digits, letters and + * # _ . - only");
    if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 1 ||
                    json_integer_value(timeout) > 600))
        return bad_field(req, "timeout must be an integer number of seconds, 1 to 600");
    if (vars && !json_is_object(vars))
        return bad_field(req, "variables must be an object of strings");
    if (vars && json_object_size(vars) > MAX_VARIABLES)
        return bad_field(req, "at most 16 variables");
    const char *key;
    json_t *v;
    json_object_foreach(vars, key, v)
    {
        if (!is_var_name(key) || !json_is_string(v) ||
            !api_is_header_safe(json_string_value(v), 256))
            return bad_field(req, "variables: names of letters, digits and _; values strings of "
                                  "1 to 256 characters without control characters");
    }
    /* An agent token acts for its own extension only: ringing it, or connecting a number to it. */
    const char *for_ext = agent ? agent : ext;
    if (pr && pr->role == API_ROLE_AGENT && (queue || !api_may_act_for(pr, for_ext))) {
        http_respond_error(req, 403, "forbidden", "an agent token acts for its own extension only");
        return false;
    }
    uint8_t rnd[8];
    char hex[17];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(x->channel_id, sizeof x->channel_id, "c2d-%s", hex);
    snprintf(x->agent, sizeof x->agent, "%s", for_ext ? for_ext : "");
    long tmo = timeout ? (long)json_integer_value(timeout) : ORIGINATE_DEFAULT_TIMEOUT_S;

    ami_msg_init(m, "Action", "Originate");
    if (agent) {
        /* Ring the agent's phone; once answered, the dialplan dials number. */
        if (device)
            ami_msg_add(m, "Channel", device);
        else
            ami_msg_addf(m, "Channel", "PJSIP/%s", agent);
        ami_msg_add(m, "Context", context);
        ami_msg_add(m, "Exten", number);
        ami_msg_add(m, "Priority", "1");
        if (callerid)
            ami_msg_add(m, "CallerID", callerid);
        else
            ami_msg_addf(m, "CallerID", "\"%s\" <%s>", number, number);
    } else {
        /* Dial number through the dialplan; once answered, connect it to the queue or extension. */
        ami_msg_addf(m, "Channel", "Local/%s@%s", number, context);
        if (queue) {
            ami_msg_add(m, "Application", "Queue");
            ami_msg_add(m, "Data", queue);
        } else {
            ami_msg_add(m, "Context", context);
            ami_msg_add(m, "Exten", ext);
            ami_msg_add(m, "Priority", "1");
        }
        if (callerid)
            ami_msg_add(m, "CallerID", callerid);
    }
    ami_msg_addf(m, "Timeout", "%ld", tmo * 1000);
    ami_msg_add(m, "ChannelId", x->channel_id);
    ami_msg_add(m, "Async", "true");
    if (x->agent[0])
        ami_msg_addf(m, "Variable", "SB_AGENT=%s", x->agent);
    json_object_foreach(vars, key, v)
    {
        ami_msg_addf(m, "Variable", "%s=%s", key, json_string_value(v));
    }
    return true;
}

void api_post_calls(http_request *req, void *ud)
{
    api *a = ud;
    char pbxbuf[128];
    json_t *body = http_request_json(req);
    if (!body)
        return;
    act_ctx *x = NULL;
    if (!json_is_object(body)) {
        http_respond_error(req, 400, "bad_request", "the body must be a JSON object");
        goto out;
    }
    const char *pbx = api_pick_pbx(a, req, body, false, pbxbuf, sizeof pbxbuf);
    if (!pbx)
        goto out;
    x = calloc(1, sizeof *x);
    if (!x) {
        http_respond_error(req, 500, "internal", "out of memory");
        goto out;
    }
    x->a = a;
    x->req = req;
    x->kind = ACT_ORIGINATE;
    snprintf(x->pbx, sizeof x->pbx, "%s", pbx);
    ami_msg m;
    if (!build_originate(req, a, body, x, &m)) {
        free(x);
        goto out;
    }
    json_decref(body);
    send_action(x, &m);
    return;
out:
    json_decref(body);
}
