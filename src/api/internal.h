/* internal.h: what the API's files share: the api object, the route handlers and helpers. */
#ifndef SB_API_INTERNAL_H
#define SB_API_INTERNAL_H

#include "api/api.h"
#include "api/tokens.h"
#include "core/strmap.h"

#include <uv.h>

/* One cached token: the key of the map is the hex of its hash. */
typedef struct api_token_entry {
    api_principal pr;
} api_token_entry;

/* A reload running on the thread pool. */
typedef struct api_refresh {
    uv_work_t work;
    api *owner; /* NULL once the api is stopping: the result is dropped */
    char *path;
    sb_strmap tokens;
    int status;
} api_refresh;

struct api {
    sb_app *app;
    sb_strmap tokens; /* hex hash -> api_token_entry* */
    uv_timer_t *timer;
    api_refresh *refreshing;
    api_perm perms[32];
    size_t nperms;
    uint64_t reloads;
};

/* Token cache (auth.c). */
void api_token_map_clear(sb_strmap *m);
int api_token_map_load(const char *path, sb_strmap *m);

/* Answers with the JSON error of an SB_E* code from the AMI (what the PBX said in message, may
 * be NULL). */
void api_respond_ami_error(http_request *req, int status, const char *message);

/* Chooses the PBX of a request: name from ?pbx= (query) or the "pbx" member of body (may be
 * NULL). Answers 404 unknown_pbx / 400 bad_request / 400 pbx_required / 503 no_pbx itself and
 * returns NULL then. With is_optional, no pbx given means every PBX: returns "" (not an error).
 * Otherwise the only configured PBX is the default. The name returned is borrowed (from the
 * request, body or client) until the request is answered. */
const char *api_pick_pbx(api *a, http_request *req, json_t *body, bool is_optional, char *buf,
                         size_t size);

/* true when s is safe in an AMI header value: 1..max bytes, no control characters. */
bool api_is_header_safe(const char *s, size_t max);

/* Handlers (ud = the api). */
void api_get_openapi(http_request *req, void *ud);
void api_get_pbxs(http_request *req, void *ud);
void api_get_calls(http_request *req, void *ud);
void api_get_call(http_request *req, void *ud);
void api_post_calls(http_request *req, void *ud);
void api_get_queues(http_request *req, void *ud);
void api_get_queue(http_request *req, void *ud);
void api_member_add(http_request *req, void *ud);
void api_member_remove(http_request *req, void *ud);
void api_member_pause(http_request *req, void *ud);
void api_member_unpause(http_request *req, void *ud);
void api_get_agent(http_request *req, void *ud);
/* One route and who may use it (scope: see api_perm). */
typedef struct api_route_def {
    const char *method, *pattern;
    http_handler_fn fn;
    unsigned roles;
    const char *scope;
} api_route_def;
/* Registers t[0..n) with api_route_auth, each with its own permission after those already taken
 * (api.c). 0, SB_ETOOBIG (no permission slot left) or the router's error. */
int api_add_table(api *a, http_router *r, const api_route_def *t, size_t n);
/* Adds the admin-only /v1/routes routes after the table's (routes.c). 0 or the router's error. */
int api_routes_add(api *a, http_router *r);
/* Adds the admin-only /v1/outbox routes (outbox_routes.c). 0 or the router's error. */
int api_outbox_routes_add(api *a, http_router *r);

#endif
