/* core.c: the daemon's event core as four subsystems of main.c's table (see app.h):
 *
 *   store  [store] path (default ./switchboard.db): opened once at init so the migrations run
 *          before anything reads the file; modules open their own connections to it
 *   bus    publish/subscribe of normalized events, with a timer that ages out replay windows
 *   model  the live call model; its events are published on the bus
 *   http   [http] (default 127.0.0.1:8080): the router, the /v1 REST API (src/api) with its
 *          token auth, static files from web_root (default: the installed console, else the
 *          source tree's web/), and the server (listening from start)
 *
 * The handles live in sb_app (app->store_path, bus, model, router, http, api) so that modules
 * that come later in the table (the event streams) borrow them.
 */
#include "app/core.h"

#include "api/api.h"
#include "core/error.h"
#include "core/log.h"
#include "http/config.h"
#include "http/static.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUS_EXPIRE_MS 1000

struct app_http {
    http_static *web;
    http_server_config server; /* as given to http_server_init (strings borrowed from the cfg) */
    bool is_default_port;      /* [http] port not configured */
};

const char *app_store_path(const sb_config *cfg)
{
    const sb_config_section *s = cfg ? sb_config_section_find(cfg, "store", NULL) : NULL;
    const char *p = s ? sb_config_section_get(s, "path") : NULL;
    return p && *p ? p : APP_STORE_DEFAULT_PATH;
}

/* ---- store ---- */

int app_store_init(sb_app *app)
{
    const char *path = app_store_path(app->cfg);
    store_conn *c = NULL;
    int rc = store_open(path, STORE_OPEN_WRITE, NULL, &c);
    if (rc < 0) {
        SB_ERROR("store", "cannot open the store %s: %s", path, sb_strerror(rc));
        return rc;
    }
    store_close(c);
    app->store_path = strdup(path);
    if (!app->store_path) {
        SB_ERROR("store", "out of memory");
        return SB_ENOMEM;
    }
    SB_INFO("store", "store %s", path);
    return 0;
}

void app_store_free(sb_app *app)
{
    free(app->store_path);
    app->store_path = NULL;
}

/* ---- bus ---- */

static void on_expire(uv_timer_t *t)
{
    sb_app *app = t->data;
    if (app->bus)
        bus_expire(app->bus);
}

int app_bus_init(sb_app *app)
{
    app->bus = bus_new(NULL);
    if (!app->bus) {
        SB_ERROR("bus", "out of memory");
        return SB_ENOMEM;
    }
    return 0;
}

int app_bus_start(sb_app *app)
{
    uv_timer_t *t = malloc(sizeof *t);
    int rc = t ? uv_timer_init(app->loop, t) : SB_ENOMEM;
    if (rc < 0) {
        free(t);
        SB_ERROR("bus", "cannot create the expiry timer: %s", sb_strerror(rc));
        return rc;
    }
    t->data = app;
    uv_timer_start(t, on_expire, BUS_EXPIRE_MS, BUS_EXPIRE_MS);
    app->bus_timer = t;
    return 0;
}

static void on_bus_timer_closed(uv_handle_t *h)
{
    free(h);
}

void app_bus_stop(sb_app *app)
{
    if (app->bus_timer) {
        uv_close((uv_handle_t *)app->bus_timer, on_bus_timer_closed);
        app->bus_timer = NULL;
    }
}

void app_bus_free(sb_app *app)
{
    bus_free(app->bus);
    app->bus = NULL;
}

/* ---- model ---- */

static void on_model_event(void *ud, bus_event *ev)
{
    sb_app *app = ud;
    if (app->bus && bus_publish(app->bus, ev, NULL) < 0)
        SB_WARN("model", "bus out of memory: event %s not published", bus_event_type(ev));
}

int app_model_init(sb_app *app)
{
    model_config mc = {.emit = on_model_event, .emit_ud = app};
    app->model = model_new(&mc);
    if (!app->model) {
        SB_ERROR("model", "out of memory");
        return SB_ENOMEM;
    }
    return 0;
}

void app_model_free(sb_app *app)
{
    model_free(app->model);
    app->model = NULL;
}

/* ---- http ---- */

/* Without [http] web_root: the installed console, else the source tree's (a development build),
 * else none. */
static const char *default_web_root(void)
{
    static const char *const dirs[] = {APP_HTTP_DEFAULT_WEB_ROOT, SB_SOURCE_DIR "/web"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char index[512];
        snprintf(index, sizeof index, "%s/index.html", dirs[i]);
        if (access(index, R_OK) == 0)
            return dirs[i];
    }
    return NULL;
}

int app_http_init(sb_app *app)
{
    char err[256];
    http_config hc;
    int rc;
    const sb_config_section *sec = sb_config_section_find(app->cfg, "http", NULL);
    rc = http_config_from_section(sec, &hc, err, sizeof err);
    if (rc < 0) {
        SB_ERROR("http", "%s", err);
        return rc;
    }
    if (!sec || !sb_config_section_get(sec, "port"))
        hc.server.port = APP_HTTP_DEFAULT_PORT;
    if (!sec || !sb_config_section_get(sec, "bind"))
        hc.server.host = APP_HTTP_DEFAULT_BIND;
    app->http_state = calloc(1, sizeof *app->http_state);
    if (!app->http_state || http_router_init(&app->router) < 0) {
        SB_ERROR("http", "out of memory");
        return SB_ENOMEM;
    }
    if ((rc = api_new(app, &app->api)) < 0)
        return rc;
    if ((rc = api_add_routes(app->api, app->router)) < 0) {
        SB_ERROR("http", "cannot add the API routes: %s", sb_strerror(rc));
        return rc;
    }
    if (!hc.web_root)
        hc.web_root = default_web_root();
    if (hc.web_root) {
        rc = http_static_init(&app->http_state->web, hc.web_root);
        if (rc < 0) {
            SB_ERROR("http", "web_root %s: %s", hc.web_root, sb_strerror(rc));
            return rc;
        }
        http_router_set_fallback(app->router, http_static_handle, app->http_state->web);
        SB_INFO("http", "web console from %s", hc.web_root);
    }
    hc.server.handler = http_router_handle;
    hc.server.handler_ud = app->router;
    app->http_state->server = hc.server;
    app->http_state->is_default_port = !sec || !sb_config_section_get(sec, "port");
    rc = http_server_init(&app->http, app->loop, &hc.server);
    if (rc < 0) {
        SB_ERROR("http", "cannot create the server: %s", sb_strerror(rc));
        return rc;
    }
    return 0;
}

int app_http_start(sb_app *app)
{
    int rc = http_server_start(app->http);
    if (rc == UV_EADDRINUSE && app->demo_active && app->http_state->is_default_port) {
        /* The demo is for trying things out: another program (or another demo) on 8080 must not
         * stop it. A configured port is never replaced. */
        http_server_config alt = app->http_state->server;
        alt.port = 0;
        http_server_free(app->http);
        app->http = NULL;
        rc = http_server_init(&app->http, app->loop, &alt);
        if (rc == 0)
            rc = http_server_start(app->http);
        if (rc == 0)
            SB_WARN("http", "port %d is in use: the demo serves on port %d instead",
                    APP_HTTP_DEFAULT_PORT, http_server_port(app->http));
    }
    if (rc < 0) {
        SB_ERROR("http", "cannot listen: %s", sb_strerror(rc));
        return rc;
    }
    if ((rc = api_start(app->api)) < 0) {
        SB_ERROR("http", "cannot start the token refresh: %s", sb_strerror(rc));
        http_server_stop(app->http);
        return rc;
    }
    SB_INFO("http", "API listening on port %d (GET /v1/openapi.json)", http_server_port(app->http));
    return 0;
}

void app_http_stop(sb_app *app)
{
    api_stop(app->api);
    http_server_stop(app->http);
}

void app_http_free(sb_app *app)
{
    if (app->http)
        http_server_free(app->http);
    app->http = NULL;
    if (app->router)
        http_router_free(app->router);
    app->router = NULL;
    if (app->api)
        api_free(app->api);
    app->api = NULL;
    if (app->http_state) {
        if (app->http_state->web)
            http_static_free(app->http_state->web);
        free(app->http_state);
    }
    app->http_state = NULL;
}

static bool section_equal(const sb_config_section *a, const sb_config_section *b)
{
    if (!a || !b)
        return a == b;
    if (a->nkv != b->nkv)
        return false;
    for (size_t i = 0; i < a->nkv; i++)
        if (strcmp(a->kv[i].key, b->kv[i].key) != 0 || strcmp(a->kv[i].value, b->kv[i].value) != 0)
            return false;
    return true;
}

int app_http_reload(sb_app *app, sb_config *next)
{
    /* The listening socket, its limits and the store path stay as they are: rebinding under
     * running streams is not worth it. Say so instead of ignoring the change silently. */
    if (!section_equal(sb_config_section_find(app->cfg, "http", NULL),
                       sb_config_section_find(next, "http", NULL)))
        SB_WARN("http", "[http] changed: the change takes effect when the daemon restarts");
    if (strcmp(app_store_path(app->cfg), app_store_path(next)) != 0)
        SB_WARN("store", "[store] path changed: the change takes effect when the daemon restarts");
    return 0;
}

int app_http_port(const sb_app *app)
{
    return app->http ? http_server_port(app->http) : -1;
}
