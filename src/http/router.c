/* router.c: a linear table of routes matched segment by segment. Tens of routes make a table
 * walk cheaper than any tree to build or read; literal segments compare byte for byte against the
 * raw path, parameters are decoded only for the route that matched. */
#include "http/router.h"

#include "core/error.h"
#include "http/internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENTS 32

typedef struct route_entry {
    http_route r;   /* method and pattern point at the copies below */
    char *method;   /* owned */
    char *pattern;  /* owned */
    char **segs;    /* owned: literal text, or the parameter name */
    bool *is_param; /* owned */
    size_t nsegs;
    const char *param_names[HTTP_MAX_PARAMS];
    size_t nparams;
} route_entry;

struct http_router {
    route_entry *routes;
    size_t n, cap;
    http_handler_fn fallback;
    void *fallback_ud;
};

int http_router_init(http_router **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : SB_ENOMEM;
}

static void entry_free(route_entry *e)
{
    size_t i;
    for (i = 0; i < e->nsegs; i++)
        free(e->segs[i]);
    free(e->segs);
    free(e->is_param);
    free(e->method);
    free(e->pattern);
}

void http_router_free(http_router *r)
{
    size_t i;
    if (!r)
        return;
    for (i = 0; i < r->n; i++)
        entry_free(&r->routes[i]);
    free(r->routes);
    free(r);
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Splits a pattern into e's segments; returns 0, SB_EINVAL or SB_ENOMEM. */
static int parse_pattern(route_entry *e, const char *pattern)
{
    const char *p = pattern + 1;
    if (pattern[0] != '/')
        return SB_EINVAL;
    e->segs = calloc(MAX_SEGMENTS, sizeof(*e->segs));
    e->is_param = calloc(MAX_SEGMENTS, sizeof(*e->is_param));
    if (!e->segs || !e->is_param)
        return SB_ENOMEM;
    if (!*p)
        return 0; /* "/" has no segments */
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        bool param = n >= 3 && p[0] == '{' && p[n - 1] == '}';
        char *seg;
        if (e->nsegs == MAX_SEGMENTS)
            return SB_EINVAL;
        if (memchr(p, '{', n) && !param)
            return SB_EINVAL;
        seg = malloc(n + 1);
        if (!seg)
            return SB_ENOMEM;
        if (param) {
            memcpy(seg, p + 1, n - 2);
            seg[n - 2] = '\0';
            if (e->nparams == HTTP_MAX_PARAMS) {
                free(seg);
                return SB_EINVAL;
            }
            e->param_names[e->nparams++] = seg;
        } else {
            memcpy(seg, p, n);
            seg[n] = '\0';
        }
        e->is_param[e->nsegs] = param;
        e->segs[e->nsegs++] = seg;
        if (!slash)
            break;
        p = slash + 1;
    }
    return 0;
}

int http_router_add(http_router *r, const http_route *route)
{
    route_entry e;
    size_t i;
    int rc;
    if (!route->method || !route->pattern || !route->handler)
        return SB_EINVAL;
    for (i = 0; i < r->n; i++)
        if (!strcmp(r->routes[i].method, route->method) &&
            !strcmp(r->routes[i].pattern, route->pattern))
            return SB_EEXIST;
    memset(&e, 0, sizeof(e));
    e.r = *route;
    e.method = dupstr(route->method);
    e.pattern = dupstr(route->pattern);
    rc = (e.method && e.pattern) ? parse_pattern(&e, route->pattern) : SB_ENOMEM;
    if (rc)
        goto fail;
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 16;
        route_entry *n = realloc(r->routes, ncap * sizeof(*n));
        if (!n) {
            rc = SB_ENOMEM;
            goto fail;
        }
        r->routes = n;
        r->cap = ncap;
    }
    e.r.method = e.method;
    e.r.pattern = e.pattern;
    r->routes[r->n++] = e;
    return 0;
fail:
    entry_free(&e);
    return rc;
}

int http_router_add_table(http_router *r, const http_route *routes, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int rc = http_router_add(r, &routes[i]);
        if (rc)
            return rc;
    }
    return 0;
}

void http_router_set_fallback(http_router *r, http_handler_fn fn, void *ud)
{
    r->fallback = fn;
    r->fallback_ud = ud;
}

/* Splits the raw path at '/'; returns the count, or -1 when there are too many segments. */
static int split_path(sb_slice path, sb_slice *segs)
{
    size_t i = 1, n = 0;
    if (path.len <= 1)
        return 0;
    for (;;) {
        const char *slash = memchr(path.ptr + i, '/', path.len - i);
        size_t end = slash ? (size_t)(slash - path.ptr) : path.len;
        if (n == MAX_SEGMENTS)
            return -1;
        segs[n++] = (sb_slice){path.ptr + i, end - i};
        if (!slash)
            break;
        i = end + 1;
    }
    return (int)n;
}

/* Whether e matches the path; fills the raw parameter values. */
static bool entry_match(const route_entry *e, const sb_slice *segs, size_t nsegs, sb_slice *raw)
{
    size_t i, np = 0;
    if (e->nsegs != nsegs)
        return false;
    for (i = 0; i < nsegs; i++) {
        if (e->is_param[i]) {
            if (!segs[i].len)
                return false;
            raw[np++] = segs[i];
        } else if (!sb_slice_eq(segs[i], sb_slice_cstr(e->segs[i]))) {
            return false;
        }
    }
    return true;
}

static void allow_add(char *allow, size_t size, const char *method)
{
    size_t len = strlen(allow), n = strlen(method);
    const char *p = allow;
    while ((p = strstr(p, method)) != NULL) {
        if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
            return; /* listed already */
        p += n;
    }
    if (len + n + 3 > size)
        return;
    if (len) {
        memcpy(allow + len, ", ", 2);
        len += 2;
    }
    memcpy(allow + len, method, n + 1);
}

void http_router_handle(http_request *req, void *router)
{
    http_router *r = router;
    sb_slice segs[MAX_SEGMENTS], raw[HTTP_MAX_PARAMS];
    sb_slice method = http_request_method(req);
    const route_entry *found = NULL;
    char allow[128] = "";
    bool is_get =
        sb_slice_eq(method, SB_SLICE_LIT("GET")) || sb_slice_eq(method, SB_SLICE_LIT("HEAD"));
    int nsegs = split_path(http_request_path(req), segs);
    size_t i;
    int rc;
    for (i = 0; nsegs >= 0 && i < r->n; i++) {
        const route_entry *e = &r->routes[i];
        sb_slice rm = sb_slice_cstr(e->method);
        sb_slice tmp[HTTP_MAX_PARAMS];
        if (!entry_match(e, segs, (size_t)nsegs, tmp))
            continue;
        allow_add(allow, sizeof(allow), e->method);
        if (!strcmp(e->method, "GET"))
            allow_add(allow, sizeof(allow), "HEAD");
        if (!found && (sb_slice_eq(rm, method) ||
                       (sb_slice_eq(method, SB_SLICE_LIT("HEAD")) && !strcmp(e->method, "GET")))) {
            found = e;
            memcpy(raw, tmp, sizeof(tmp));
        }
    }
    if (!found) {
        if (allow[0]) {
            http_header h = {"Allow", allow};
            char *body = NULL;
            json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", "method_not_allowed", "message",
                                  "method not allowed here");
            body = j ? json_dumps(j, JSON_COMPACT) : NULL;
            json_decref(j);
            http_respond(req, 405, "application/json", &h, 1, sb_slice_cstr(body ? body : ""));
            free(body);
        } else if (r->fallback && is_get) {
            r->fallback(req, r->fallback_ud);
        } else {
            http_respond_error(req, 404, "not_found", "no such resource");
        }
        return;
    }
    if (http_request_set_params(req, found->param_names, raw, found->nparams)) {
        http_respond_error(req, 400, "bad_request", "bad percent-encoding in the path");
        return;
    }
    if (found->r.auth) {
        rc = found->r.auth(req, http_request_bearer(req), found->r.auth_ud);
        if (rc == SB_EAUTH) {
            http_respond_error(req, 401, "unauthorized", "a valid bearer token is required");
            return;
        }
        if (rc == SB_EDENIED) {
            http_respond_error(req, 403, "forbidden", "this token may not do that");
            return;
        }
        if (rc) {
            http_respond_error(req, 500, "internal", "authorization failed");
            return;
        }
    }
    found->r.handler(req, found->r.ud);
}
