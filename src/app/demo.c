/* demo.c: the simulator beside the daemon (see demo.h). */
#include "app/demo.h"

#include "core/error.h"
#include "core/log.h"
/* The simulator is a tool beside the daemon (tools/pbxsim); the switchboard program links
 * pbxsim_lib for the demo, so only this file of libsb depends on it. */
#include "../../tools/pbxsim/pbxsim.h"

#include <stdlib.h>
#include <string.h>

#define LOG_SUB "demo"

struct app_demo {
    pbxsim *sim;
    uv_timer_t timer;
    bool playing;
    size_t next; /* index into the play order */
    uint64_t calls;
    int port;
};

/* Queue calls first: they show the most (agents, queue events), then everything else. */
static const char *pick_scenario(app_demo *d)
{
    size_t n = 0;
    while (pbxsim_scenarios[n])
        n++;
    if (n == 0)
        return NULL;
    size_t k = d->next++ % n;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            bool is_queue = strstr(pbxsim_scenarios[i], "queue") != NULL;
            if (is_queue != (pass == 0))
                continue;
            if (k == 0)
                return pbxsim_scenarios[i];
            k--;
        }
    }
    return NULL;
}

static void on_timer(uv_timer_t *t)
{
    app_demo *d = t->data;
    const char *name = pick_scenario(d);
    if (!name)
        return;
    int rc = pbxsim_play(d->sim, name, NULL);
    if (rc < 0) {
        SB_WARN(LOG_SUB, "cannot play scenario %s: %s", name, sb_strerror(rc));
        return;
    }
    d->calls++;
    SB_DEBUG(LOG_SUB, "playing scenario %s", name);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

int app_demo_open(uv_loop_t *loop, bool play, app_demo **out)
{
    pbxsim_config cfg;
    int rc = SB_ENOMEM;
    app_demo *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d)
        goto fail;
    pbxsim_config_default(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    rc = pbxsim_new(loop, &cfg, &d->sim);
    if (rc < 0)
        goto fail;
    rc = pbxsim_start(d->sim);
    if (rc < 0)
        goto fail;
    d->port = pbxsim_port(d->sim);
    rc = uv_timer_init(loop, &d->timer);
    if (rc < 0)
        goto fail;
    d->timer.data = d;
    if (play) {
        d->playing = true;
        /* The first call soon after the client has logged in, then one every interval. */
        uv_timer_start(&d->timer, on_timer, 500, APP_DEMO_INTERVAL_MS);
    }
    SB_INFO(LOG_SUB, "PBX simulator listening on 127.0.0.1:%d (user admin)%s", d->port,
            play ? "; playing a call every few seconds" : "");
    *out = d;
    return 0;
fail:
    SB_ERROR(LOG_SUB, "cannot start the PBX simulator: %s", sb_strerror(rc));
    if (d && d->sim)
        pbxsim_free(d->sim);
    free(d);
    return rc;
}

int app_demo_port(const app_demo *d)
{
    return d->port;
}

uint64_t app_demo_calls(const app_demo *d)
{
    return d->calls;
}

void app_demo_pbx(const app_demo *d, sb_config_pbx *p)
{
    sb_config_pbx_defaults(p);
    p->name = (char *)APP_DEMO_PBX;
    p->host = (char *)"127.0.0.1";
    p->port = d->port;
    p->username = (char *)"admin";
    p->secret = (char *)"admin-secret";
    p->reconnect_min_ms = 200;
    p->reconnect_max_ms = 2000;
}

void app_demo_close(app_demo *d)
{
    if (!d)
        return;
    pbxsim_stop(d->sim);
    pbxsim_free(d->sim);
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

/* ---- subsystem ---- */

int app_demo_init(sb_app *app)
{
    app->demo_active = app->opt.demo || app->cfg->npbx == 0;
    if (!app->demo_active)
        return 0;
    if (sb_config_find_pbx(app->cfg, APP_DEMO_PBX)) {
        SB_ERROR(LOG_SUB, "--demo adds a [pbx %s], but the configuration already has one",
                 APP_DEMO_PBX);
        return SB_EEXIST;
    }
    if (!app->opt.demo)
        SB_INFO(LOG_SUB, "no [pbx] configured: starting the built-in PBX simulator (demo mode)");
    return 0;
}

/* Adds [pbx demo] to cfg. */
static int add_demo_pbx(sb_app *app, sb_config *cfg)
{
    sb_config_pbx p;
    app_demo_pbx(app->demo, &p);
    int rc = sb_config_add_pbx(cfg, &p);
    if (rc == SB_EEXIST)
        SB_ERROR(LOG_SUB, "the configuration has a [pbx %s], which the demo uses", APP_DEMO_PBX);
    else if (rc < 0)
        SB_ERROR(LOG_SUB, "out of memory");
    return rc;
}

int app_demo_start(sb_app *app)
{
    if (!app->demo_active)
        return 0;
    int rc = app_demo_open(app->loop, true, &app->demo);
    if (rc < 0)
        return rc;
    rc = add_demo_pbx(app, app->cfg);
    if (rc < 0) {
        app_demo_close(app->demo);
        app->demo = NULL;
    }
    return rc;
}

void app_demo_stop(sb_app *app)
{
    app_demo_close(app->demo);
    app->demo = NULL;
}

int app_demo_reload(sb_app *app, sb_config *next)
{
    if (!app->demo)
        return 0;
    return add_demo_pbx(app, next);
}
