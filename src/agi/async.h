/* async.h: AsyncAGI over AMI: calls that run AGI(agi:async[,SCRIPT]) are routed by the same
 * engine as FastAGI, through the AMI connection the daemon already has.
 *
 * The owner of each ami_client passes every event to agi_async_on_event(). On AsyncAGIStart
 * the URL-decoded Env is parsed as an agi_* header (agi_url_decode + agi_header_feed) and a
 * route_call starts; each command goes out as `Action: AGI` (Channel, Command, CommandID) and
 * its result is the AsyncAGIExec event with that CommandId (Result URL-decoded and parsed like a
 * FastAGI reply). The call ends with `ASYNCAGI BREAK` (the dialplan continues) or when
 * AsyncAGIEnd arrives (the channel hung up). Fixture: 11-asyncagi.ami.
 */
#ifndef SB_AGI_ASYNC_H
#define SB_AGI_ASYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "ami/client.h"
#include "routing/runner.h"

typedef struct agi_async agi_async;

/* Creates the AsyncAGI front on loop for engine (both borrowed; the engine must outlive it).
 * Returns 0 and owned *out (agi_async_free), or SB_ENOMEM. */
int agi_async_new(uv_loop_t *loop, route_engine *engine, agi_async **out);

/* Feeds one AMI event of client c (borrowed for the call). Returns true when the event was an
 * AsyncAGI one (AsyncAGIStart, AsyncAGIExec, AsyncAGIEnd). */
bool agi_async_on_event(agi_async *a, ami_client *c, const ami_packet *ev);

/* The connection of c is gone: its calls end (the runner sees SB_EDISCONN). */
void agi_async_client_lost(agi_async *a, ami_client *c);

/* Calls in progress. */
size_t agi_async_active(const agi_async *a);

/* Ends every call and frees. Stop the AMI clients first (their pending action callbacks refer
 * to this object); run the loop afterwards so the timers close. NULL is fine. */
void agi_async_free(agi_async *a);

#endif
