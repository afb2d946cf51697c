/* model.h: the live call model. AMI events in, normalized events out, current state on demand.
 *
 * The model keeps, per PBX, the channels (by Uniqueid), calls (by Linkedid), bridges, queues
 * (waiting callers, members with status, pause and reason, penalty, calls taken), agents (by
 * extension), devices and extension hints, fed by model_handle_event() with every AMI event of a
 * connection. It never touches the network: tests feed it the fixture transcripts.
 *
 * Each change worth telling is turned into one normalized event (docs/events.md is the contract)
 * and handed to the emit callback as a bus_event (src/bus/bus.h): built once, targeted at the
 * agents it concerns. Unchanged states are not re-announced. Finished calls leave the model at
 * once (they live on in the call.ended event), so memory follows the number of live calls.
 *
 * After a (re)connect the client runs the list actions between model_begin_resync() and
 * model_end_resync(); the model emits exactly the events that describe what changed meanwhile.
 * Single-threaded: call everything from the loop thread.
 */
#ifndef SB_MODEL_MODEL_H
#define SB_MODEL_MODEL_H

#include "ami/codec.h"
#include "bus/bus.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct model model;

/* Receives every normalized event, in order. Borrows ev for the call (bus_event_ref() it to keep
 * it; publishing it on a bus does that). */
typedef void (*model_emit_cb)(void *ud, bus_event *ev);

typedef struct model_config {
    model_emit_cb emit; /* may be NULL (state only) */
    void *emit_ud;
    /* Clock in ms since the UNIX epoch; NULL = CLOCK_REALTIME. An event carrying a Timestamp
     * header (manager.conf timestampevents=yes) uses that instead. */
    int64_t (*now_ms)(void *ud);
    void *clock_ud;
    /* Seed of the upper half of every event id (a UUIDv8, docs/events.md); 0 = random at
     * model_new(). Tests fix it. */
    uint64_t id_seed;
} model_config;

typedef struct model_stats {
    size_t pbxs, channels, calls, bridges, queues, members, callers, agents, devices, hints;
    uint64_t events_in;  /* AMI events handled */
    uint64_t events_out; /* normalized events emitted */
} model_stats;

/* Returns owned (free with model_free()) or NULL when out of memory. cfg may be NULL. */
model *model_new(const model_config *cfg);
void model_free(model *m);

/* Declares the trunk endpoints of a PBX (e.g. "carrier" for PJSIP/carrier), used to tell
 * inbound and outbound calls from internal ones. Borrows the strings. Without this call the
 * model guesses: a SIP-like endpoint whose name is not all digits is a trunk. 0 or SB_ENOMEM. */
int model_set_trunks(model *m, const char *pbx, const char *const *trunks, size_t n);

/* Digests one AMI packet received from pbx (borrowed for the call; nothing is kept pointing into
 * it). Responses, unknown events and events about unknown channels are ignored. Returns 0 or
 * SB_ENOMEM (the model stays consistent; the event may be lost). */
int model_handle_event(model *m, const char *pbx, const ami_packet *ev);

/* Remembers that the Originate with action_id was made for agent (extension), so its
 * originateFailed goes to that agent's stream. Borrows the strings. Keeps the last 1024. */
int model_expect_originate(model *m, const char *pbx, const char *action_id, const char *agent);

/* State restore: begin marks everything of pbx unconfirmed; the list events that follow
 * (CoreShowChannel, QueueParams/QueueMember/QueueEntry, ExtensionStatus and DeviceStateChange
 * items, and their ...Complete events) confirm or update it; end removes what a completed list
 * did not confirm (channels hang up, calls end, members leave, callers leave, devices vanish),
 * emitting the matching events. A list whose Complete event never came is not swept. */
int model_begin_resync(model *m, const char *pbx);
int model_end_resync(model *m, const char *pbx);

/* Queries for the HTTP layer. pbx NULL means every PBX. Each returns owned JSON (json_decref)
 * or NULL when not found / out of memory. Shapes are in docs/events.md ("State queries"). */
json_t *model_calls_json(model *m, const char *pbx);
json_t *model_call_json(model *m, const char *pbx, const char *call_id);
json_t *model_queues_json(model *m, const char *pbx);
json_t *model_queue_json(model *m, const char *pbx, const char *queue);
json_t *model_agent_json(model *m, const char *pbx, const char *extension);
json_t *model_agents_json(model *m, const char *pbx); /* every known agent, as above */
json_t *model_pbxs_json(model *m);
/* Everything of interest to one agent (agent != NULL) or a supervisor: the snapshot a stream
 * client receives first, and the payload of a resync. */
json_t *model_snapshot_json(model *m, const char *agent);

void model_stats_get(const model *m, model_stats *out);

#endif
