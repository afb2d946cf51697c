/* streams_app.c: the "streams" subsystem (see streams_app.h). Stream settings take their
 * defaults (docs/streams.md); the replay window is the bus's (10 minutes / 10,000 events). */
#include "api/streams_app.h"

#include "api/api.h"
#include "api/streams.h"
#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

/* Any valid API token passes here; streams.c decides what each role may open. */
static int api_bearer(void *ud, http_request *req, sb_slice token, streams_role *role, char *ext,
                      size_t ext_size)
{
    sb_app *app = ud;
    api_perm perm = {.owner = app->api, .roles = API_ALL_ROLES, .scope = NULL};
    const api_principal *pr;
    int rc = api_route_auth(req, token, &perm);
    if (rc < 0)
        return rc;
    pr = api_principal_of(req);
    if (!pr)
        return SB_EAUTH;
    switch (pr->role) {
    case API_ROLE_ADMIN:
        *role = STREAMS_ROLE_ADMIN;
        break;
    case API_ROLE_SUPERVISOR:
        *role = STREAMS_ROLE_SUPERVISOR;
        break;
    case API_ROLE_SERVICE:
        *role = STREAMS_ROLE_SERVICE;
        break;
    case API_ROLE_AGENT:
        *role = STREAMS_ROLE_AGENT;
        break;
    default:
        return SB_EDENIED;
    }
    snprintf(ext, ext_size, "%s", pr->extension);
    return 0;
}

int app_streams_init(sb_app *app)
{
    int rc;
    if (!app->bus || !app->model || !app->router || !app->api) {
        SB_ERROR("streams", "needs the bus, model and http subsystems before it");
        return SB_EINVAL;
    }
    streams_config sc = {.loop = app->loop,
                         .bus = app->bus,
                         .model = app->model,
                         .bearer = api_bearer,
                         .bearer_ud = app};
    rc = streams_new(&sc, &app->streams);
    if (rc < 0) {
        SB_ERROR("streams", "cannot start: %s", sb_strerror(rc));
        return rc;
    }
    rc = streams_add_routes(app->streams, app->router);
    if (rc < 0) {
        SB_ERROR("streams", "cannot add the stream routes: %s", sb_strerror(rc));
        return rc;
    }
    return 0;
}

void app_streams_stop(sb_app *app)
{
    streams_stop(app->streams);
}

void app_streams_free(sb_app *app)
{
    streams_free(app->streams);
    app->streams = NULL;
}
