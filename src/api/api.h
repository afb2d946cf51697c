/* api.h: the authenticated JSON REST API under /v1 (docs/api.md, GET /v1/openapi.json).
 *
 * The api object belongs to the daemon's http subsystem (src/app/core.c). It keeps an in-memory
 * copy of the bearer tokens of the store (table api_tokens, hashed; docs/decisions/0014), reloaded
 * from the store every API_TOKEN_REFRESH_MS on the thread pool so that `switchboard token create`
 * and `token revoke` in another process take effect within that time, and it adds the /v1 routes
 * to a router. Every route requires a token; api_route_auth() is the router's auth hook, so
 * other modules (the event streams) protect their routes with the same tokens and roles.
 * Everything runs on the loop thread.
 */
#ifndef SB_API_API_H
#define SB_API_API_H

#include "app/app.h"
#include "http/router.h"
#include "http/server.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How often the token cache is reloaded from the store. */
#define API_TOKEN_REFRESH_MS 1000

typedef enum api_role {
    API_ROLE_ADMIN = 0,
    API_ROLE_SUPERVISOR,
    API_ROLE_AGENT, /* scoped to its own extension */
    API_ROLE_SERVICE,
    API_ROLE_COUNT
} api_role;

/* Bit masks of roles for api_perm.roles. */
#define API_R(role) (1u << (role))
#define API_ALL_ROLES                                                                              \
    (API_R(API_ROLE_ADMIN) | API_R(API_ROLE_SUPERVISOR) | API_R(API_ROLE_AGENT) |                  \
     API_R(API_ROLE_SERVICE))

/* Who is calling: attached to the request by the auth hook (http_request_user()). */
typedef struct api_principal {
    int64_t token_id;
    api_role role;
    char extension[32]; /* agent tokens: the extension it may act for; "" otherwise */
    char name[64];
} api_principal;

/* What a route asks of the caller: one of roles; for an agent token, scope names the path
 * parameter that must be its own extension ("extension"), or an interface that must be its own
 * ("interface": PJSIP/1001, Local/1001@agents/n), or NULL when the handler checks the body. */
typedef struct api_perm {
    api *owner;
    unsigned roles;
    const char *scope;
} api_perm;

/* Creates the API of app (borrowed; the api reads app->model, app->bus, app->store_path and the
 * PBX clients when requests arrive). Loads the tokens once (blocking: start-up). Returns 0 or
 * SB_ENOMEM / SB_EIO after logging one line; *out owned (api_free). */
int api_new(sb_app *app, api **out);
/* Starts the token refresh timer. 0 or a UV_* error. */
int api_start(api *a);
/* Stops the timer; a refresh running on the pool finishes and is dropped. */
void api_stop(api *a);
/* Frees what is left (after the loop ran the close callbacks of api_stop). */
void api_free(api *a);
/* Adds every /v1 route to r. 0 or the router's error. */
int api_add_routes(api *a, http_router *r);

/* The router auth hook: auth_ud is an api_perm (borrowed for the route's life). Returns 0 (the
 * principal attached to req), SB_EAUTH (no token, unknown or revoked) or SB_EDENIED (role or
 * scope). */
int api_route_auth(http_request *req, sb_slice token, void *auth_ud);
/* The caller of a request that passed api_route_auth (borrowed), or NULL. */
const api_principal *api_principal_of(const http_request *req);
/* true when an agent principal may act for extension ext (always true for other roles). */
bool api_may_act_for(const api_principal *pr, const char *ext);
/* The extension an interface belongs to ("PJSIP/1001" -> "1001", "Local/501@agents/n" ->
 * "501", "SIP/1001-0000a" -> "1001") into buf; false when it names none. */
bool api_interface_extension(const char *iface, char *buf, size_t size);

/* Reloads the token cache now, synchronously (tests; blocks on the store). 0 or SB_EIO. */
int api_tokens_reload(api *a);
/* Tokens in the cache (tests). */
size_t api_token_count(const api *a);

/* The OpenAPI 3.1 document served at GET /v1/openapi.json (static text, *len bytes). */
const char *api_openapi_text(size_t *len);

/* Role names: "admin", "supervisor", "agent", "service". */
const char *api_role_name(api_role r);
/* 0 and *out, or SB_EINVAL. */
int api_role_parse(const char *s, api_role *out);

#endif
