/* pbx.h: the daemon's AMI connections: one ami_client per [pbx NAME], started and stopped with the
 * daemon, every state change logged, and on SIGHUP the set follows the new configuration (new
 * sections connect, removed ones disconnect, changed ones restart, unchanged ones stay up). */
#ifndef SB_APP_PBX_H
#define SB_APP_PBX_H

#include "ami/client.h"
#include "app/app.h"
#include "core/config.h"

/* Fills out from p for ami_client_new(); the strings and the filter array stay borrowed from p
 * (ami_client_new copies them). */
void app_pbx_client_config(const sb_config_pbx *p, ami_client_config *out);

/* Subsystem "ami": one client per configured PBX. */
int app_ami_init(sb_app *app);
int app_ami_start(sb_app *app);
void app_ami_stop(sb_app *app);
void app_ami_free(sb_app *app);
int app_ami_reload(sb_app *app, sb_config *next);

/* How many clients run now and how many events they delivered (tests, status). */
size_t app_ami_count(const sb_app *app);
uint64_t app_ami_events(const sb_app *app);

/* The client of PBX name (borrowed, valid until the next reload or stop), or NULL when no such
 * PBX is configured. name NULL: the first one (use with app_ami_count() == 1). */
ami_client *app_pbx_client(const sb_app *app, const char *name);
/* Fills out with up to max clients (borrowed, newest configured first); returns how many exist. */
size_t app_pbx_list(const sb_app *app, ami_client **out, size_t max);
/* How many state restores of PBX name completed (all four lists answered). */
uint64_t app_pbx_resyncs(const sb_app *app, const char *name);

#endif
