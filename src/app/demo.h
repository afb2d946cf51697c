/* demo.h: the PBX simulator beside the daemon (`serve --demo`, `ami tail --demo`).
 *
 * The simulator (tools/pbxsim) runs on the daemon's own loop, listens on 127.0.0.1 with an
 * ephemeral port and accepts the fixtures' manager user admin/admin-secret; a [pbx demo] entry
 * points at it. When asked to, it plays call scenarios continuously (one every few seconds,
 * cycling through the shipped ones, queue calls first) so that a new user sees events at once.
 */
#ifndef SB_APP_DEMO_H
#define SB_APP_DEMO_H

#include "app/app.h"
#include "core/config.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Name of the PBX entry the demo adds. */
#define APP_DEMO_PBX "demo"
/* Delay between two demo calls. */
#define APP_DEMO_INTERVAL_MS 4000

/* Creates and starts a simulator on loop (borrowed). play: start calls continuously.
 * Returns 0 and *out (owned: app_demo_close()), or a negative error (logged). */
int app_demo_open(uv_loop_t *loop, bool play, app_demo **out);
/* The simulator's TCP port. */
int app_demo_port(const app_demo *d);
/* Fills p with the [pbx demo] entry pointing at the simulator (strings static, borrowed). */
void app_demo_pbx(const app_demo *d, sb_config_pbx *p);
/* Scenarios played so far. */
uint64_t app_demo_calls(const app_demo *d);
/* Stops the simulator and its timer; the memory goes once the loop has run the close callbacks. */
void app_demo_close(app_demo *d);

/* Subsystem "demo": active with --demo or when no [pbx] is configured. */
int app_demo_init(sb_app *app);
int app_demo_start(sb_app *app);
void app_demo_stop(sb_app *app);
int app_demo_reload(sb_app *app, sb_config *next);

#endif
