/* routing.h (app): the `agi` subsystem of the daemon: the FastAGI server and the routing engine,
 * configured by the [agi] section, routes from the store (or a file), reloaded on SIGHUP. */
#ifndef SB_APP_ROUTING_H
#define SB_APP_ROUTING_H

#include "ami/client.h"
#include "app/app.h"

int app_routing_init(sb_app *app);
int app_routing_start(sb_app *app);
void app_routing_stop(sb_app *app);
void app_routing_free(sb_app *app);
int app_routing_reload(sb_app *app, sb_config *next);

/* Every AMI event of every PBX connection (src/app/pbx.c): AsyncAGI events start and drive
 * routed calls; others are ignored. Borrows c and ev for the call. */
void app_routing_ami_event(sb_app *app, ami_client *c, const ami_packet *ev);

#endif
