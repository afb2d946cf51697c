/* streams_app.c: the "streams" subsystem (see streams_app.h), configured by the optional
 * [streams] section (docs/streams.md); the replay window is the bus's (10 minutes / 10,000
 * events). */
#include "api/streams_app.h"

#include "api/api.h"
#include "api/streams.h"
#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
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

/* Reads [streams] into sc (base_url borrowed from the configuration). 0 or SB_ECONFIG after
 * logging "line N: [streams] key: problem". */
static int read_section(const sb_config_section *sec, streams_config *sc)
{
    for (size_t i = 0; sec && i < sec->nkv; i++) {
        const sb_config_kv *kv = &sec->kv[i];
        uint32_t ms = 0;
        const char *problem = NULL;
        if (strcmp(kv->key, "public_url") == 0) {
            if (strncmp(kv->value, "http://", 7) != 0 && strncmp(kv->value, "https://", 8) != 0)
                problem = "must start with http:// or https://";
            else
                sc->base_url = kv->value;
        } else if (strcmp(kv->key, "token_ttl") == 0 || strcmp(kv->key, "ws_resume_wait") == 0 ||
                   strcmp(kv->key, "poll_max_timeout") == 0) {
            if (sb_config_parse_duration(kv->value, &ms) < 0 || ms == 0)
                problem = "not a duration (500ms, 10s, 5m)";
            else if (kv->key[0] == 't')
                sc->token_ttl_ms = ms;
            else if (kv->key[0] == 'w')
                sc->ws_resume_wait_ms = ms;
            else
                sc->poll_max_timeout_ms = ms;
        } else if (strcmp(kv->key, "max_tokens") == 0) {
            char *end;
            unsigned long n = strtoul(kv->value, &end, 10);
            if (*end || n == 0 || n > 10000000)
                problem = "not a count between 1 and 10000000";
            else
                sc->max_tokens = n;
        } else {
            problem = "unknown key";
        }
        if (problem) {
            SB_ERROR("streams", "line %d: [streams] %s: %s", kv->line, kv->key, problem);
            return SB_ECONFIG;
        }
    }
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
    rc = read_section(sb_config_section_find(app->cfg, "streams", NULL), &sc);
    if (rc < 0)
        return rc;
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
