/* streams_app.h: the event streams as a daemon subsystem ("streams" in main.c's table, after
 * "http"): init creates the streams object on app->loop with app->bus and app->model, checks
 * bearer tokens with the API's (api_route_auth, any role; the streams apply their own rules) and
 * adds the stream routes to app->router; stop closes its timer; free releases it. */
#ifndef SB_API_STREAMS_APP_H
#define SB_API_STREAMS_APP_H

#include "app/app.h"

int app_streams_init(sb_app *app);
void app_streams_stop(sb_app *app);
void app_streams_free(sb_app *app);

#endif
