/* runner.h: drives one routed call with AGI commands: the route set named by the script
 * decides, then the runner answers when needed, reads the caller ID, asks for a PIN, plays IVR
 * menus, asks a `decide` HTTP endpoint, sets variables and EXECs Dial/Queue/VoiceMail/
 * ConfBridge/Playback, or hangs up.
 *
 * The runner does not know the transport: a FastAGI session (route_fastagi_*, fastagi.c) and
 * an AsyncAGI channel on AMI (agi/async.h) both implement route_chan_ops and feed replies back
 * with route_call_reply(). One command is in flight per call at a time. Everything runs on the
 * loop thread; PIN hashes are checked on libuv's thread pool (argon2id is slow on purpose).
 */
#ifndef SB_ROUTING_RUNNER_H
#define SB_ROUTING_RUNNER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agi/proto.h"
#include "net/httpc.h"
#include "routing/route.h"

typedef struct route_engine route_engine;
typedef struct route_call route_call;

/* A finished decision, for the log and the `route.decided` event. Strings borrowed for the
 * callback. */
typedef struct route_decided {
    const char *script;  /* the route set */
    const char *rule;    /* "" when no rule matched */
    const char *action;  /* the action taken, as written ("dial PJSIP/${EXTEN}") */
    const char *detail;  /* what ran, e.g. "Dial PJSIP/31,20", "pin ok after 2 tries" */
    const char *outcome; /* "routed", "no-route", "pin-failed", "denied", "hangup", "error" */
    const char *caller, *dialed, *channel, *uniqueid, *pbx;
    bool is_closed;     /* the rule's closed action ran */
    bool used_fallback; /* decide fell back (timeout, error, garbage) */
    int64_t elapsed_us; /* from the start of the call to the decision */
} route_decided;

typedef void (*route_decided_cb)(const route_decided *d, void *ud);

typedef struct route_engine_config {
    uv_loop_t *loop;
    httpc *http;                 /* borrowed; NULL: every decide takes its fallback at once */
    const char *pbx;             /* the PBX calls come from when the header does not say */
    unsigned command_timeout_ms; /* per AGI command except EXEC; 0: 10 s */
    unsigned exec_timeout_ms;    /* per EXEC (Dial can ring a long time); 0: none */
    unsigned pin_fail_limit;     /* wrong PINs from one caller before a lock-out; 0: 5 */
    unsigned pin_lock_ms;        /* lock-out and counting window; 0: 15 minutes */
    route_decided_cb on_decided; /* may be NULL */
    void *ud;
} route_engine_config;

/* Creates an engine (cfg copied). Returns 0 and owned *out (route_engine_free), or SB_ENOMEM. */
int route_engine_new(const route_engine_config *cfg, route_engine **out);

/* Installs the routes (takes ownership; NULL: none). Calls in progress keep the db they
 * started with; it is freed when the last of them ends. */
void route_engine_set_db(route_engine *e, route_db *db);

/* Frees the engine. Calls must have ended (route_engine_active() == 0). */
void route_engine_free(route_engine *e);

size_t route_engine_active(const route_engine *e);

/* A decision as the `route.decided` event of docs/events.md: {id, type, time, pbx, details:
 * {script, rule, action, detail, outcome, from, to, channel, uniqueid, closed, fallback,
 * took_us}}. Returns owned, or NULL when out of memory. */
json_t *route_decided_json(const route_decided *d);

/* ---- transports ---- */

typedef struct route_chan_ops {
    /* Send one command line (ends with "\n"); its reply comes back through route_call_reply().
     * Returns 0 or an error (then no reply will come). */
    int (*send)(void *chan, route_call *c, sb_slice line, unsigned timeout_ms);
    /* The runner is done with the call: give it back (FastAGI: close; AsyncAGI: ASYNCAGI
     * BREAK). The transport then calls route_call_gone(), possibly from inside this call. */
    void (*finish)(void *chan);
} route_chan_ops;

/* Prepares routing a call: req is the agi_* header (borrowed for this call only). Returns an
 * owned call (ended by route_call_gone()), or NULL when out of memory (the transport should
 * let the call go). Nothing is sent yet: the transport wires its callbacks to the call, then
 * calls route_call_run(). */
route_call *route_call_new(route_engine *e, const route_chan_ops *ops, void *chan,
                           const agi_request *req);

/* Names the PBX the call comes from (AsyncAGI: the AMI connection's name); before run. */
void route_call_set_pbx(route_call *c, const char *pbx);

/* Sends the first command (or finishes at once when the script has no route set). */
void route_call_run(route_call *c);

/* The reply to the command in flight: status 0 (2xx) or an error as agi_reply_cb describes. */
void route_call_reply(route_call *c, int status, const agi_reply *r);

/* Asterisk sent HANGUP (the caller hung up): the dialogue stops at the next reply. */
void route_call_hangup(route_call *c);

/* The transport is gone: no more commands may be sent. The call is freed (now, or once its
 * pending HTTP request or PIN check completes). */
void route_call_gone(route_call *c);

#endif
