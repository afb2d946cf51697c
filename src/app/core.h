/* core.h: the daemon's event-core subsystems (store, bus, model, http) for main.c's table; their
 * handles are in sb_app (app.h). */
#ifndef SB_APP_CORE_H
#define SB_APP_CORE_H

#include "app/app.h"

/* Defaults when [store] path, [http] bind or [http] port are not configured. */
#define APP_STORE_DEFAULT_PATH "switchboard.db"
#define APP_HTTP_DEFAULT_BIND "127.0.0.1"
#define APP_HTTP_DEFAULT_PORT 8080
/* The web console's files when [http] web_root is not set (if they are installed there). */
#define APP_HTTP_DEFAULT_WEB_ROOT "/usr/share/switchboard/web"

/* [store] path of cfg (borrowed; cfg may be NULL), or APP_STORE_DEFAULT_PATH. */
const char *app_store_path(const sb_config *cfg);

int app_store_init(sb_app *app);
void app_store_free(sb_app *app);
int app_bus_init(sb_app *app);
int app_bus_start(sb_app *app);
void app_bus_stop(sb_app *app);
void app_bus_free(sb_app *app);
int app_model_init(sb_app *app);
void app_model_free(sb_app *app);
int app_http_init(sb_app *app);
int app_http_start(sb_app *app);
void app_http_stop(sb_app *app);
void app_http_free(sb_app *app);
/* SIGHUP: [http] and [store] are applied at start-up only; a change is logged as needing a
 * restart. Returns 0. */
int app_http_reload(sb_app *app, sb_config *next);

/* The API's bound port, or -1 before start. */
int app_http_port(const sb_app *app);

#endif
