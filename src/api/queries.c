/* queries.c: the read-only /v1 handlers: PBXs, calls, queues and agents, answered from the live
 * model (model.h's query functions; shapes in docs/events.md "State queries") and the PBX clients.
 * A ?pbx=NAME query narrows a list to one PBX (unknown name: 404); without it lists cover every
 * PBX and a single object is looked up in each PBX in turn. */
#include "api/internal.h"

#include "app/pbx.h"
#include "core/error.h"

#include <stdio.h>
#include <string.h>

#define MAX_PBX 64

/* Copies a path parameter into buf; false (after answering 400) when it is too long. */
static bool param(http_request *req, const char *name, char *buf, size_t size)
{
    sb_slice v = http_request_param(req, name);
    if (!v.ptr || v.len == 0 || v.len >= size) {
        http_respond_error(req, 400, "bad_request", "path parameter missing or too long");
        return false;
    }
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = 0;
    return true;
}

/* Wraps a list: {"key": array} (takes ownership of arr; NULL answers 500). */
static void respond_list(http_request *req, const char *key, json_t *arr)
{
    if (!arr) {
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    http_respond_json(req, 200, json_pack("{s:o}", key, arr));
}

static const char *pbx_or_null(const char *p)
{
    return p && *p ? p : NULL;
}

static json_t *client_json(api *a, ami_client *c, json_t *model_pbxs)
{
    ami_client_stats st;
    const char *name = ami_client_name(c);
    ami_client_get_stats(c, &st);
    json_t *m = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(model_pbxs, i, v)
    {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && strcmp(n, name) == 0)
            m = v;
    }
    ami_client_state s = ami_client_get_state(c);
    return json_pack(
        "{s:s, s:s, s:b, s:s?, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:b}, "
        "s:I}",
        "name", name, "amiState", ami_client_state_name(s), "connected", s == AMI_STATE_READY,
        "amiVersion", *ami_client_ami_version(c) ? ami_client_ami_version(c) : NULL, "counters",
        "events", (json_int_t)st.events, "actionsSent", (json_int_t)st.actions_sent,
        "actionsFailed", (json_int_t)st.actions_failed, "reconnects", (json_int_t)st.reconnects,
        "loginsFailed", (json_int_t)st.logins_failed, "stalls", (json_int_t)st.stalls, "pending",
        (json_int_t)st.pending, "model", "channels",
        (json_int_t)json_integer_value(json_object_get(m, "channels")), "calls",
        (json_int_t)json_integer_value(json_object_get(m, "calls")), "queues",
        (json_int_t)json_integer_value(json_object_get(m, "queues")), "agents",
        (json_int_t)json_integer_value(json_object_get(m, "agents")), "resyncing",
        json_is_true(json_object_get(m, "resyncing")), "stateRestores",
        (json_int_t)app_pbx_resyncs(a->app, name));
}

void api_get_pbxs(http_request *req, void *ud)
{
    api *a = ud;
    ami_client *cs[MAX_PBX];
    size_t n = app_pbx_list(a->app, cs, MAX_PBX);
    if (n > MAX_PBX)
        n = MAX_PBX;
    json_t *mp = a->app->model ? model_pbxs_json(a->app->model) : json_array();
    json_t *arr = json_array();
    /* app_pbx_list gives the newest first; answer in configuration order. */
    for (size_t i = n; arr && i-- > 0;)
        json_array_append_new(arr, client_json(a, cs[i], mp));
    json_decref(mp);
    respond_list(req, "pbxs", arr);
}

void api_get_calls(http_request *req, void *ud)
{
    api *a = ud;
    char pbx[128];
    const char *p = api_pick_pbx(a, req, NULL, true, pbx, sizeof pbx);
    if (!p)
        return;
    respond_list(req, "calls", model_calls_json(a->app->model, pbx_or_null(p)));
}

void api_get_call(http_request *req, void *ud)
{
    api *a = ud;
    char pbx[128], id[256];
    const char *p = api_pick_pbx(a, req, NULL, true, pbx, sizeof pbx);
    if (!p || !param(req, "id", id, sizeof id))
        return;
    json_t *o = model_call_json(a->app->model, pbx_or_null(p), id);
    if (!o) {
        http_respond_error(req, 404, "unknown_call", "no live call with this id");
        return;
    }
    http_respond_json(req, 200, o);
}

void api_get_queues(http_request *req, void *ud)
{
    api *a = ud;
    char pbx[128];
    const char *p = api_pick_pbx(a, req, NULL, true, pbx, sizeof pbx);
    if (!p)
        return;
    respond_list(req, "queues", model_queues_json(a->app->model, pbx_or_null(p)));
}

void api_get_queue(http_request *req, void *ud)
{
    api *a = ud;
    char pbx[128], name[256];
    const char *p = api_pick_pbx(a, req, NULL, true, pbx, sizeof pbx);
    if (!p || !param(req, "name", name, sizeof name))
        return;
    json_t *o = model_queue_json(a->app->model, pbx_or_null(p), name);
    if (!o) {
        http_respond_error(req, 404, "unknown_queue", "no such queue");
        return;
    }
    http_respond_json(req, 200, o);
}

void api_get_agent(http_request *req, void *ud)
{
    api *a = ud;
    char pbx[128], ext[64];
    const char *p = api_pick_pbx(a, req, NULL, true, pbx, sizeof pbx);
    if (!p || !param(req, "extension", ext, sizeof ext))
        return;
    json_t *o = model_agent_json(a->app->model, pbx_or_null(p), ext);
    if (!o) {
        http_respond_error(req, 404, "unknown_agent", "no agent with this extension is known");
        return;
    }
    http_respond_json(req, 200, o);
}
