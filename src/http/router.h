/* router.h: maps method + path pattern to a handler, with path parameters and a per-route auth
 * hook.
 *
 * Patterns are literal segments and {name} parameters: "/v1/queues/{name}/members/{interface}".
 * A parameter matches one whole segment and is percent-decoded ("SIP%2F1001" -> "SIP/1001").
 * No match answers 404, a path match with the wrong method 405 with an Allow header, both as JSON
 * errors. HEAD is served by GET routes (the body is dropped). When a route declares an auth hook
 * it runs first, and its answer decides 401 (with WWW-Authenticate: Bearer) or 403.
 */
#ifndef SB_HTTP_ROUTER_H
#define SB_HTTP_ROUTER_H

#include "core/slice.h"
#include "http/server.h"

#include <stddef.h>

typedef struct http_router http_router;

/* Decides whether req may reach the route. token is the Bearer token ({NULL, 0} when the request
 * carries none; the hook may also look elsewhere, e.g. a stream token in the query, since browsers
 * cannot set headers on EventSource). Returns 0 to allow, SB_EAUTH (-> 401), SB_EDENIED (-> 403);
 * any other negative -> 500. The hook may attach the principal with http_request_set_user(). */
typedef int (*http_auth_fn)(http_request *req, sb_slice token, void *auth_ud);

typedef struct http_route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* see the file comment */
    http_handler_fn handler;
    void *ud;
    http_auth_fn auth; /* NULL: no authentication */
    void *auth_ud;
} http_route;

/* Returns 0 or SB_ENOMEM; *out owned (free with http_router_free). */
int http_router_init(http_router **out);
void http_router_free(http_router *r);
/* Adds a route (copied). Returns 0, SB_EINVAL (bad pattern, over 8 parameters), SB_EEXIST (same
 * method and pattern twice) or SB_ENOMEM. */
int http_router_add(http_router *r, const http_route *route);
/* Adds n routes; stops at the first error and returns it. */
int http_router_add_table(http_router *r, const http_route *routes, size_t n);
/* Handler for GET/HEAD requests no route matches (e.g. static files); without it they get 404. */
void http_router_set_fallback(http_router *r, http_handler_fn fn, void *ud);
/* The server handler: pass http_router_handle with the router as handler_ud. */
void http_router_handle(http_request *req, void *router);

#endif
