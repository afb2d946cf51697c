/* app.c: the lifecycle runner (init, start, run, stop, free over main.c's table), reload on
 * SIGHUP, clean stop on SIGTERM/SIGINT, and the small subsystems every daemon has: the
 * configuration file, the logger settings and the signal handlers. */
#include "app/app.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_SUB "main"

const char *sb_app_find_config(const char *path)
{
    static const char *const defaults[] = {"switchboard.conf", "/etc/switchboard/switchboard.conf"};
    if (path)
        return path;
    const char *env = getenv("SWITCHBOARD_CONF");
    if (env && *env)
        return env;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        if (access(defaults[i], F_OK) == 0)
            return defaults[i];
    }
    return NULL;
}

/* ---- subsystem: config ---- */

int app_config_init(sb_app *app)
{
    char err[512];
    app->config_path = sb_app_find_config(app->opt.config_path);
    if (!app->config_path) {
        app->cfg = sb_config_new_default();
        if (!app->cfg) {
            SB_ERROR("config", "out of memory");
            return SB_ENOMEM;
        }
        SB_INFO("config", "no configuration file (looked for $SWITCHBOARD_CONF, ./switchboard.conf "
                          "and /etc/switchboard/switchboard.conf): using defaults");
        return 0;
    }
    int rc = sb_config_load(app->config_path, &app->cfg, err, sizeof err);
    if (rc < 0) {
        SB_ERROR("config", "%s", err);
        return rc;
    }
    SB_INFO("config", "loaded %s: %zu pbx, %zu other sections", app->config_path, app->cfg->npbx,
            app->cfg->nsections);
    return 0;
}

void app_config_free(sb_app *app)
{
    sb_config_free(app->cfg);
    app->cfg = NULL;
}

/* ---- subsystem: log ---- */

static void log_apply(const sb_app *app, const sb_config *cfg)
{
    sb_log_level lvl = app->opt.has_log_level ? app->opt.log_level : cfg->log_level;
    sb_log_setup(lvl, app->opt.log_json || cfg->log_json);
}

int app_log_init(sb_app *app)
{
    log_apply(app, app->cfg);
    return 0;
}

int app_log_reload(sb_app *app, sb_config *next)
{
    log_apply(app, next);
    return 0;
}

/* ---- subsystem: signals ---- */

static void on_signal(uv_signal_t *h, int signum)
{
    sb_app *app = h->data;
    if (signum == SIGHUP) {
        SB_INFO(LOG_SUB, "SIGHUP: reloading the configuration");
        sb_app_reload(app);
        return;
    }
    SB_INFO(LOG_SUB, "%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sb_app_request_stop(app, 0);
}

int app_signals_start(sb_app *app)
{
    uv_signal_t *hs[] = {&app->sig_term, &app->sig_int, &app->sig_hup};
    const int nums[] = {SIGTERM, SIGINT, SIGHUP};
    size_t opened = 0;
    int rc = 0;
    for (size_t i = 0; i < 3; i++) {
        rc = uv_signal_init(app->loop, hs[i]);
        if (rc < 0)
            goto fail;
        opened++;
        hs[i]->data = app;
        rc = uv_signal_start(hs[i], on_signal, nums[i]);
        if (rc < 0)
            goto fail;
    }
    app->signals_open = true;
    return 0;
fail:
    SB_ERROR(LOG_SUB, "cannot install signal handlers: %s", uv_strerror(rc));
    for (size_t i = 0; i < opened; i++)
        uv_close((uv_handle_t *)hs[i], NULL);
    return rc;
}

void app_signals_stop(sb_app *app)
{
    if (!app->signals_open)
        return;
    app->signals_open = false;
    uv_close((uv_handle_t *)&app->sig_term, NULL);
    uv_close((uv_handle_t *)&app->sig_int, NULL);
    uv_close((uv_handle_t *)&app->sig_hup, NULL);
}

/* ---- the runner ---- */

static void stop_started(sb_app *app)
{
    while (app->nstarted > 0) {
        const sb_subsystem *s = &app->table[--app->nstarted];
        if (s->stop) {
            SB_DEBUG(LOG_SUB, "stopping %s", s->name);
            s->stop(app);
        }
    }
}

void sb_app_request_stop(sb_app *app, int exit_code)
{
    if (app->stopping)
        return;
    app->stopping = true;
    app->exit_code = exit_code;
    stop_started(app);
}

int sb_app_reload(sb_app *app)
{
    char err[512];
    sb_config *next = NULL;
    if (!app->config_path) {
        SB_WARN("config", "reload: no configuration file in use, nothing to reload");
        return 0;
    }
    int rc = sb_config_load(app->config_path, &next, err, sizeof err);
    if (rc < 0) {
        SB_ERROR("config", "reload failed, keeping the running configuration: %s", err);
        return rc;
    }
    for (size_t i = 0; i < app->ntable; i++) {
        const sb_subsystem *s = &app->table[i];
        if (!s->reload)
            continue;
        int r = s->reload(app, next);
        if (r < 0)
            SB_ERROR(LOG_SUB, "reload of %s failed: %s", s->name, sb_strerror(r));
    }
    sb_config_free(app->cfg);
    app->cfg = next;
    app->reloads++;
    SB_INFO("config", "reloaded %s", app->config_path);
    return 0;
}

static void walk_open(uv_handle_t *h, void *arg)
{
    (void)arg;
    SB_WARN(LOG_SUB, "handle still open at exit: %s%s", uv_handle_type_name(h->type),
            uv_is_closing(h) ? " (closing)" : "");
}

int sb_app_run(sb_app *app, const sb_subsystem *table, size_t ntable)
{
    int rc = 0;
    app->table = table;
    app->ntable = ntable;
    app->ninited = app->nstarted = 0;
    for (size_t i = 0; i < ntable; i++) {
        if (table[i].init && (rc = table[i].init(app)) < 0)
            goto unwind;
        app->ninited++;
    }
    for (size_t i = 0; i < ntable; i++) {
        if (table[i].start && (rc = table[i].start(app)) < 0)
            goto unwind;
        app->nstarted++;
    }
    SB_INFO(LOG_SUB, "switchboard %s running (pid %d)", SB_VERSION, (int)getpid());
    uv_run(app->loop, UV_RUN_DEFAULT);
    goto done;
unwind:
    app->exit_code = 1;
    app->stopping = true;
    stop_started(app);
    uv_run(app->loop, UV_RUN_DEFAULT); /* let the closed handles finish */
done:
    while (app->ninited > 0) {
        const sb_subsystem *s = &table[--app->ninited];
        if (s->free)
            s->free(app);
    }
    /* Whatever the frees closed still needs one turn of the loop. */
    uv_run(app->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(app->loop) == UV_EBUSY) {
        uv_walk(app->loop, walk_open, NULL);
        if (app->exit_code == 0)
            app->exit_code = 1;
    }
    if (app->exit_code == 0)
        SB_INFO(LOG_SUB, "stopped cleanly");
    return app->exit_code;
}
