/* fastagi.h: the FastAGI front of the routing engine: an agi_server whose every session is
 * routed by a route_engine (agi://host:4573/SCRIPT runs the route set named SCRIPT).
 */
#ifndef SB_ROUTING_FASTAGI_H
#define SB_ROUTING_FASTAGI_H

#include "agi/server.h"
#include "routing/runner.h"

typedef struct route_fastagi route_fastagi;

/* Creates the server (cfg copied by agi_server_new; engine borrowed and must outlive it).
 * 0 and owned *out, or agi_server_new()'s errors. */
int route_fastagi_new(uv_loop_t *loop, const agi_server_config *cfg, route_engine *engine,
                      route_fastagi **out);
/* Binds and listens (agi_server_start()). */
int route_fastagi_start(route_fastagi *f);
int route_fastagi_port(const route_fastagi *f);
/* Stops listening and ends every session (agi_server_stop()). */
void route_fastagi_stop(route_fastagi *f);
/* Releases it; run the loop afterwards until the server's handles are closed. */
void route_fastagi_free(route_fastagi *f);
agi_server *route_fastagi_server(route_fastagi *f);

#endif
