/* api.c: the api object's life (token cache and its refresh on the thread pool), the /v1 route
 * table with the role of every route (the matrix of docs/api.md), and helpers the handlers
 * share. */
#include "api/internal.h"

#include "app/pbx.h"
#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "api"

/* ---- token refresh ---- */

static void refresh_work(uv_work_t *w)
{
    api_refresh *r = w->data;
    r->status = api_token_map_load(r->path, &r->tokens);
}

static void refresh_done(uv_work_t *w, int status)
{
    api_refresh *r = w->data;
    api *a = r->owner;
    if (a) {
        a->refreshing = NULL;
        if (status == 0 && r->status == 0) {
            api_token_map_clear(&a->tokens);
            a->tokens = r->tokens; /* moved: r's map is not freed below */
            sb_strmap_init(&r->tokens);
            a->reloads++;
        } else if (r->status < 0) {
            SB_WARN(SUB, "cannot reload the tokens from %s: %s (keeping the previous ones)",
                    r->path, sb_strerror(r->status));
        }
    }
    api_token_map_clear(&r->tokens);
    sb_strmap_free(&r->tokens);
    free(r->path);
    free(r);
}

static void on_refresh_timer(uv_timer_t *t)
{
    api *a = t->data;
    if (a->refreshing || !a->app->store_path)
        return;
    api_refresh *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->owner = a;
    r->path = strdup(a->app->store_path);
    sb_strmap_init(&r->tokens);
    r->work.data = r;
    if (!r->path || uv_queue_work(t->loop, &r->work, refresh_work, refresh_done) < 0) {
        free(r->path);
        free(r);
        return;
    }
    a->refreshing = r;
}

int api_tokens_reload(api *a)
{
    sb_strmap m;
    sb_strmap_init(&m);
    int rc = a->app->store_path ? api_token_map_load(a->app->store_path, &m) : 0;
    if (rc < 0)
        return rc;
    api_token_map_clear(&a->tokens);
    a->tokens = m;
    a->reloads++;
    return 0;
}

size_t api_token_count(const api *a)
{
    return sb_strmap_count(&a->tokens);
}

int api_new(sb_app *app, api **out)
{
    api *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a) {
        SB_ERROR(SUB, "out of memory");
        return SB_ENOMEM;
    }
    a->app = app;
    sb_strmap_init(&a->tokens);
    int rc = api_tokens_reload(a);
    if (rc < 0) {
        SB_ERROR(SUB, "cannot load the API tokens from %s: %s", app->store_path, sb_strerror(rc));
        sb_strmap_free(&a->tokens);
        free(a);
        return SB_EIO;
    }
    if (sb_strmap_count(&a->tokens) == 0)
        SB_WARN(SUB, "no API token yet: create one with `switchboard token create --role admin`");
    *out = a;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

int api_start(api *a)
{
    uv_timer_t *t = malloc(sizeof *t);
    if (!t)
        return SB_ENOMEM;
    int rc = uv_timer_init(a->app->loop, t);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->data = a;
    uv_timer_start(t, on_refresh_timer, API_TOKEN_REFRESH_MS, API_TOKEN_REFRESH_MS);
    a->timer = t;
    return 0;
}

void api_stop(api *a)
{
    if (!a)
        return;
    if (a->timer) {
        uv_close((uv_handle_t *)a->timer, on_timer_closed);
        a->timer = NULL;
    }
    if (a->refreshing) {
        a->refreshing->owner = NULL; /* finishes on the pool; its result is dropped */
        a->refreshing = NULL;
    }
}

void api_free(api *a)
{
    if (!a)
        return;
    api_stop(a);
    api_token_map_clear(&a->tokens);
    sb_strmap_free(&a->tokens);
    free(a);
}

/* ---- routes ---- */

#define R_ADMIN API_R(API_ROLE_ADMIN)
#define R_SUP API_R(API_ROLE_SUPERVISOR)
#define R_AGENT API_R(API_ROLE_AGENT)
#define R_SVC API_R(API_ROLE_SERVICE)

/* THE role matrix (docs/api.md "Roles" mirrors it). scope: see api_perm. */
static const api_route_def route_table[] = {
    {"GET", "/v1/openapi.json", api_get_openapi, API_ALL_ROLES, NULL},
    {"GET", "/v1/pbxs", api_get_pbxs, R_ADMIN | R_SUP | R_SVC, NULL},
    {"GET", "/v1/calls", api_get_calls, R_ADMIN | R_SUP | R_SVC, NULL},
    {"GET", "/v1/calls/{id}", api_get_call, R_ADMIN | R_SUP | R_SVC, NULL},
    {"POST", "/v1/calls", api_post_calls, API_ALL_ROLES, NULL}, /* agent: checked on the body */
    {"GET", "/v1/queues", api_get_queues, API_ALL_ROLES, NULL},
    {"GET", "/v1/queues/{name}", api_get_queue, API_ALL_ROLES, NULL},
    {"POST", "/v1/queues/{name}/members/{interface}", api_member_add, R_ADMIN | R_SUP, NULL},
    {"DELETE", "/v1/queues/{name}/members/{interface}", api_member_remove, R_ADMIN | R_SUP, NULL},
    {"POST", "/v1/queues/{name}/members/{interface}/pause", api_member_pause,
     R_ADMIN | R_SUP | R_AGENT, "interface"},
    {"POST", "/v1/queues/{name}/members/{interface}/unpause", api_member_unpause,
     R_ADMIN | R_SUP | R_AGENT, "interface"},
    {"GET", "/v1/agents/{extension}", api_get_agent, API_ALL_ROLES, "extension"},
};

int api_add_table(api *a, http_router *r, const api_route_def *t, size_t n)
{
    if (a->nperms + n > sizeof a->perms / sizeof a->perms[0])
        return SB_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        api_perm *p = &a->perms[a->nperms];
        p->owner = a;
        p->roles = t[i].roles;
        p->scope = t[i].scope;
        http_route route = {t[i].method, t[i].pattern, t[i].fn, a, api_route_auth, p};
        int rc = http_router_add(r, &route);
        if (rc < 0)
            return rc;
        a->nperms++;
    }
    return 0;
}

int api_add_routes(api *a, http_router *r)
{
    a->nperms = 0;
    int rc = api_add_table(a, r, route_table, sizeof route_table / sizeof route_table[0]);
    if (rc >= 0)
        rc = api_routes_add(a, r);
    return rc < 0 ? rc : api_outbox_routes_add(a, r);
}

/* ---- helpers ---- */

bool api_is_header_safe(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

const char *api_pick_pbx(api *a, http_request *req, json_t *body, bool is_optional, char *buf,
                         size_t size)
{
    sb_slice q = http_request_query(req, "pbx");
    const char *name = NULL;
    if (q.ptr) {
        if (q.len == 0 || q.len >= size) {
            http_respond_error(req, 404, "unknown_pbx", "no such PBX");
            return NULL;
        }
        memcpy(buf, q.ptr, q.len);
        buf[q.len] = 0;
        name = buf;
    } else if (body && json_object_get(body, "pbx")) {
        name = json_string_value(json_object_get(body, "pbx"));
        if (!name) {
            http_respond_error(req, 400, "bad_request", "pbx must be a string");
            return NULL;
        }
    }
    if (name) {
        if (!app_pbx_client(a->app, name)) {
            char msg[160];
            snprintf(msg, sizeof msg, "no PBX named '%.100s'", name);
            http_respond_error(req, 404, "unknown_pbx", msg);
            return NULL;
        }
        return name;
    }
    if (is_optional)
        return "";
    size_t n = app_ami_count(a->app);
    if (n == 0) {
        http_respond_error(req, 503, "no_pbx", "no PBX is configured");
        return NULL;
    }
    if (n > 1) {
        http_respond_error(req, 400, "pbx_required",
                           "several PBXs are configured: say which one with pbx");
        return NULL;
    }
    return ami_client_name(app_pbx_client(a->app, NULL));
}

void api_respond_ami_error(http_request *req, int status, const char *message)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s%s%s", message && *message ? "the PBX answered: " : "",
             message && *message ? message : sb_strerror(status), "");
    switch (status) {
    case SB_EDENIED:
        http_respond_error(req, 502, "pbx_permission_denied", msg);
        break;
    case SB_ETIMEDOUT:
        http_respond_error(req, 504, "pbx_timeout", "the PBX did not answer in time");
        break;
    case SB_EDISCONN:
    case SB_ECANCELED:
        http_respond_error(req, 503, "pbx_unavailable", "the PBX is not connected");
        break;
    default:
        http_respond_error(req, 502, "pbx_error", msg);
        break;
    }
}
