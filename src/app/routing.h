/* routing.h (app): the `agi` subsystem of the daemon: the FastAGI server and the routing engine,
 * configured by the [agi] section, routes from the store (or a file), reloaded on SIGHUP. */
#ifndef SB_APP_ROUTING_H
#define SB_APP_ROUTING_H

#include "ami/client.h"
#include "app/app.h"
#include "routing/route.h"

#include <stdbool.h>
#include <stdint.h>

int app_routing_init(sb_app *app);
int app_routing_start(sb_app *app);
void app_routing_stop(sb_app *app);
void app_routing_free(sb_app *app);
int app_routing_reload(sb_app *app, sb_config *next);

/* Every AMI event of every PBX connection (src/app/pbx.c): AsyncAGI events start and drive
 * routed calls; others are ignored. Borrows c and ev for the call. */
void app_routing_ami_event(sb_app *app, ami_client *c, const ami_packet *ev);

/* The store holds a new route file, version `version` (the REST API wrote it, src/api/routes.c):
 * installs db for new calls (calls in progress keep theirs) when the subsystem routes from the
 * store and version is newer than the routes in force. Takes ownership of db (freed when not
 * installed). Returns true when installed. Loop thread. */
bool app_routing_store_updated(sb_app *app, route_db *db, int64_t version);

/* The FastAGI port the subsystem listens on, or -1 (off, or not started). */
int app_routing_fastagi_port(const sb_app *app);

#endif
