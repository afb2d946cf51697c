/* routing.c (app): the daemon's `agi` subsystem: reads [agi] (docs/routing.md), loads the routes
 * (the store's newest route file, or `routes = FILE`), and runs the FastAGI server whose calls
 * the routing engine drives. Without an [agi] section the subsystem stays off, so a daemon that
 * does no routing never listens on 4573.
 *
 * sb_app has no slot for this subsystem, so its state is one file-static pointer (the daemon runs
 * one app). Every decision is published on the bus as a `route.decided` event. AsyncAGI calls
 * arrive on the PBX connections: src/app/pbx.c hands every AMI event to app_routing_ami_event().
 */
#include "app/routing.h"

#include "agi/async.h"
#include "bus/bus.h"
#include "core/error.h"
#include "core/log.h"
#include "net/httpc.h"
#include "routing/fastagi.h"
#include "routing/route.h"
#include "routing/runner.h"
#include "routing/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "agi"
#define MAX_PEERS 32

typedef struct app_routing {
    sb_app *app;
    agi_async *async;
    route_engine *engine;
    route_fastagi *fa;
    httpc *http;
    char *peers[MAX_PEERS];
    size_t npeers;
    uint64_t decided;
    int64_t version;   /* store version of the routes in force (0: none, or a file) */
    bool is_from_file; /* [agi] routes = FILE: the store's versions are not used */
} app_routing;

static app_routing *g_routing;

static void on_decided(const route_decided *d, void *ud)
{
    app_routing *r = ud;
    r->decided++;
    if (!r->app->bus)
        return;
    json_t *j = route_decided_json(d);
    bus_event *ev = j ? bus_event_new(j) : NULL;
    if (!ev || bus_publish(r->app->bus, ev, NULL) < 0)
        SB_WARN(SUB, "bus out of memory: route.decided not published");
    bus_event_unref(ev);
}

void app_routing_ami_event(sb_app *app, ami_client *c, const ami_packet *ev)
{
    (void)app;
    if (g_routing && g_routing->async)
        agi_async_on_event(g_routing->async, c, ev);
}

static const char *store_path(const sb_config *cfg)
{
    const sb_config_section *s = sb_config_section_find(cfg, "store", NULL);
    const char *p = s ? sb_config_section_get(s, "path") : NULL;
    return p && *p ? p : "switchboard.db";
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    sb_buf b;
    char chunk[8192];
    size_t n;
    if (!f)
        return NULL;
    sb_buf_init(&b, 16u << 20);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (sb_buf_append(&b, chunk, n) < 0)
            break;
    bool bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad || sb_buf_reserve(&b, 1) < 0) {
        sb_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    b.data[b.len] = 0;
    return sb_buf_steal(&b);
}

/* Loads the routes for cfg: 0 and *out (NULL when none were ever imported) with *out_version (0
 * for a file), or an error after logging one line. */
static int load_routes(const sb_config *cfg, route_db **out, int64_t *out_version)
{
    const sb_config_section *s = sb_config_section_find(cfg, "agi", NULL);
    const char *file = s ? sb_config_section_get(s, "routes") : NULL;
    char *text = NULL, err[512];
    size_t len = 0;
    int64_t version = 0;
    int rc;
    *out = NULL;
    *out_version = 0;
    if (file && *file) {
        if (!(text = read_file(file, &len))) {
            SB_ERROR(SUB, "cannot read the route file %s", file);
            return SB_EIO;
        }
    } else {
        rc = route_store_load(store_path(cfg), &text, &len, &version);
        if (rc == SB_ENOTFOUND) {
            SB_WARN(SUB,
                    "no routes in %s yet (switchboard route import FILE): every call goes "
                    "back to the dialplan",
                    store_path(cfg));
            return 0;
        }
        if (rc < 0) {
            SB_ERROR(SUB, "cannot read routes from %s: %s", store_path(cfg), sb_strerror(rc));
            return rc;
        }
        file = store_path(cfg);
    }
    rc = route_db_parse(text, len, file, out, err, sizeof err);
    free(text);
    if (rc < 0) {
        SB_ERROR(SUB, "%s", rc == SB_EINVAL ? err : sb_strerror(rc));
        return rc;
    }
    SB_INFO(SUB, "routes loaded from %s%s: %zu route sets, %zu menus, %zu caller-ID maps", file,
            version ? " (store)" : "", (*out)->nsets, (*out)->nmenus, (*out)->ncidmaps);
    *out_version = version;
    return 0;
}

static bool has_route_file(const sb_config *cfg)
{
    const sb_config_section *s = sb_config_section_find(cfg, "agi", NULL);
    const char *file = s ? sb_config_section_get(s, "routes") : NULL;
    return file && *file;
}

static int bad_key(const sb_config *cfg, const sb_config_kv *kv, const char *what)
{
    SB_ERROR(SUB, "%s:%d: [agi] %s: %s", cfg->path, kv->line, kv->key, what);
    return SB_ECONFIG;
}

void app_routing_free(sb_app *app)
{
    (void)app;
    app_routing *r = g_routing;
    if (!r)
        return;
    route_fastagi_free(r->fa);
    agi_async_free(r->async);
    if (r->http)
        httpc_free(r->http);
    if (r->engine && route_engine_active(r->engine) == 0)
        route_engine_free(r->engine);
    for (size_t i = 0; i < r->npeers; i++)
        free(r->peers[i]);
    free(r);
    g_routing = NULL;
}

int app_routing_init(sb_app *app)
{
    const sb_config *cfg = app->cfg;
    const sb_config_section *s = cfg ? sb_config_section_find(cfg, "agi", NULL) : NULL;
    if (!s)
        return 0;
    app_routing *r = calloc(1, sizeof *r);
    route_db *db = NULL;
    int rc = SB_ENOMEM;
    if (!r) {
        SB_ERROR(SUB, "out of memory");
        return rc;
    }
    g_routing = r;
    r->app = app;
    agi_server_config sc = {.port = -1};
    route_engine_config ec = {.loop = app->loop, .on_decided = on_decided, .ud = r};
    for (size_t i = 0; i < s->nkv; i++) {
        const sb_config_kv *kv = &s->kv[i];
        uint32_t ms;
        char *end;
        if (strcmp(kv->key, "bind") == 0) {
            sc.bind_host = kv->value;
        } else if (strcmp(kv->key, "port") == 0) {
            long p = strtol(kv->value, &end, 10);
            if (*end || p < 0 || p > 65535) {
                rc = bad_key(cfg, kv, "expected a port 1-65535 (0: any free port)");
                goto fail;
            }
            sc.port = (int)p;
        } else if (strcmp(kv->key, "allowed") == 0) {
            char *copy = strdup(kv->value), *save = NULL;
            for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t;
                 t = strtok_r(NULL, ", ", &save))
                if (r->npeers < MAX_PEERS)
                    r->peers[r->npeers++] = strdup(t);
            free(copy);
        } else if (strcmp(kv->key, "pbx") == 0) {
            ec.pbx = kv->value;
        } else if (strcmp(kv->key, "command_timeout") == 0) {
            if (sb_config_parse_duration(kv->value, &ms) < 0 || ms == 0) {
                rc = bad_key(cfg, kv, "expected a duration such as 10s");
                goto fail;
            }
            ec.command_timeout_ms = ms;
        } else if (strcmp(kv->key, "pin_fail_limit") == 0) {
            long n = strtol(kv->value, &end, 10);
            if (*end || n < 1 || n > 1000) {
                rc = bad_key(cfg, kv, "expected 1 to 1000");
                goto fail;
            }
            ec.pin_fail_limit = (unsigned)n;
        } else if (strcmp(kv->key, "pin_lockout") == 0) {
            if (sb_config_parse_duration(kv->value, &ms) < 0 || ms == 0) {
                rc = bad_key(cfg, kv, "expected a duration such as 15m");
                goto fail;
            }
            ec.pin_lock_ms = ms;
        } else if (strcmp(kv->key, "routes") != 0) {
            rc = bad_key(cfg, kv,
                         "unknown key (bind, port, allowed, pbx, routes, command_timeout, "
                         "pin_fail_limit, pin_lockout)");
            goto fail;
        }
    }
    sc.allowed_peers = (const char *const *)r->peers;
    sc.nallowed = r->npeers;
    if (!(r->http = httpc_new(app->loop, NULL))) {
        SB_ERROR(SUB, "cannot create the HTTP client for decide actions");
        rc = SB_ENOMEM;
        goto fail;
    }
    ec.http = r->http;
    if ((rc = route_engine_new(&ec, &r->engine)) < 0) {
        SB_ERROR(SUB, "out of memory");
        goto fail;
    }
    if ((rc = load_routes(cfg, &db, &r->version)) < 0)
        goto fail;
    r->is_from_file = has_route_file(cfg);
    route_engine_set_db(r->engine, db);
    if ((rc = agi_async_new(app->loop, r->engine, &r->async)) < 0) {
        SB_ERROR(SUB, "out of memory");
        goto fail;
    }
    if ((rc = route_fastagi_new(app->loop, &sc, r->engine, &r->fa)) < 0) {
        SB_ERROR(SUB, "[agi] allowed: not an IP address list (%s)", sb_strerror(rc));
        goto fail;
    }
    return 0;
fail:
    app_routing_free(app);
    return rc;
}

int app_routing_start(sb_app *app)
{
    (void)app;
    if (!g_routing)
        return 0;
    int rc = route_fastagi_start(g_routing->fa);
    if (rc < 0) {
        SB_ERROR(SUB, "cannot listen for FastAGI: %s", sb_strerror(rc));
        return rc;
    }
    SB_INFO(SUB, "FastAGI listening on port %d", route_fastagi_port(g_routing->fa));
    return 0;
}

void app_routing_stop(sb_app *app)
{
    (void)app;
    if (!g_routing)
        return;
    /* Sessions end first, then pending decide requests are cancelled: their calls are freed
     * while the loop drains, before app_routing_free(). */
    route_fastagi_stop(g_routing->fa);
    /* AsyncAGI calls go back to the dialplan (ASYNCAGI BREAK) while AMI is still up. */
    agi_async_client_lost(g_routing->async, NULL);
    httpc_free(g_routing->http);
    g_routing->http = NULL;
}

int app_routing_reload(sb_app *app, sb_config *next)
{
    (void)app;
    route_db *db = NULL;
    if (!g_routing)
        return 0;
    int64_t version = 0;
    int rc = load_routes(next, &db, &version);
    if (rc < 0)
        return rc; /* the routes in force stay */
    g_routing->version = version;
    g_routing->is_from_file = has_route_file(next);
    route_engine_set_db(g_routing->engine, db);
    return 0;
}

bool app_routing_store_updated(sb_app *app, route_db *db, int64_t version)
{
    (void)app;
    app_routing *r = g_routing;
    if (!r || r->is_from_file || version <= r->version) {
        route_db_free(db);
        return false;
    }
    r->version = version;
    route_engine_set_db(r->engine, db);
    SB_INFO(SUB, "routes of store version %lld in force for new calls", (long long)version);
    return true;
}

int app_routing_fastagi_port(const sb_app *app)
{
    (void)app;
    return g_routing && g_routing->fa ? route_fastagi_port(g_routing->fa) : -1;
}
