/* client.h: one AMI connection to one Asterisk, on the libuv loop.
 *
 * The client connects, reads the banner, logs in (plain, or Challenge + MD5 key), installs the
 * configured event filters, then delivers events and correlates every action's answer by ActionID.
 * It keeps the connection alive with Ping, drops a silent or stalled connection, and reconnects
 * with exponential back-off and jitter. After every successful (re)login the on_ready callback runs
 * so that the model can re-query state. Pending actions fail with SB_EDISCONN when the connection
 * drops; they never hang (each also has a timeout).
 */
#ifndef SB_AMI_CLIENT_H
#define SB_AMI_CLIENT_H

#include "ami/codec.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct ami_client ami_client;

typedef enum ami_client_state {
    AMI_STATE_STOPPED,
    AMI_STATE_CONNECTING, /* TCP connect in progress, or waiting to retry */
    AMI_STATE_LOGGING_IN, /* banner read, login (and filters) under way */
    AMI_STATE_READY,      /* logged in: events flow, actions may be sent */
} ami_client_state;

typedef struct ami_client_config {
    const char *name; /* the PBX name events are tagged with (default: host) */
    const char *host; /* address to connect to (numeric IPv4/IPv6 or a host name) */
    int port;         /* default 5038 */
    const char *username;
    const char *secret; /* never logged */
    bool md5;           /* log in through Challenge + MD5 key instead of a plain secret */
    const char *events; /* Login Events: value: "on", "off" or a class list; default "on" */
    const char *const
        *filters; /* Filter action expressions sent after login (e.g. "Event: Hangup") */
    size_t nfilters;
    uint32_t ping_interval_ms; /* send Ping after this long without traffic; default 10000 */
    uint32_t
        stall_timeout_ms; /* drop the connection when nothing arrives this long; default 30000 */
    uint32_t connect_timeout_ms; /* bounds connect + banner + login + filters; default 5000 */
    uint32_t action_timeout_ms;  /* default per action; default 10000 */
    uint32_t reconnect_min_ms;   /* first back-off delay; default 500 */
    uint32_t reconnect_max_ms;   /* back-off ceiling; default 30000 */
    ami_limits limits;           /* codec limits; zero fields take the defaults */
} ami_client_config;

/* How an action ended, handed to its completion callback. */
typedef struct ami_result {
    int status;                     /* 0 = Response: Success (and, for lists, Complete; for
                                       Originate, OriginateResponse with Response: Success); or
                                       SB_EFAILED (Response: Error, a cancelled list, an
                                       OriginateResponse Failure), SB_EDENIED (permission denied),
                                       SB_ETOOBIG (list longer than the item cap),
                                       SB_ETIMEDOUT, SB_EDISCONN, SB_ECANCELED */
    const ami_packet *response;     /* the Response packet, or NULL (timeout, disconnect) */
    const ami_packet *const *items; /* list actions: every list event except the Complete one */
    size_t nitems;
    const ami_packet
        *complete; /* list actions: the ...Complete event; Originate: OriginateResponse */
} ami_result;

/* Everything in ami_result is borrowed for the duration of the callback. */
typedef void (*ami_result_cb)(ami_client *c, const ami_result *r, void *ud);
/* An event (not part of any action's list): borrowed for the duration of the callback. */
typedef void (*ami_event_cb)(ami_client *c, const ami_packet *ev, void *ud);
/* A state change, with a short reason in words ("connection refused", "authentication failed").
 * Runs when the state or the reason changes: once per failed login attempt, not once per retry
 * of the same refused connect. */
typedef void (*ami_state_cb)(ami_client *c, ami_client_state st, const char *why, void *ud);
/* After every successful (re)login and filter setup: the place to re-query state. */
typedef void (*ami_ready_cb)(ami_client *c, bool reconnected, void *ud);

typedef struct ami_client_callbacks {
    ami_event_cb on_event;
    ami_state_cb on_state;
    ami_ready_cb on_ready;
    void *ud;
} ami_client_callbacks;

/* How an action is answered. */
typedef enum ami_action_kind {
    AMI_ACTION_SIMPLE,    /* one Response packet */
    AMI_ACTION_LIST,      /* Response (EventList: start), list events, ...Complete event */
    AMI_ACTION_ORIGINATE, /* Async Originate: completes on the OriginateResponse event (an
                             Originate without "Async: true" is treated as SIMPLE: Asterisk
                             sends no OriginateResponse for it, fixture 06) */
} ami_action_kind;

/* Creates a client (not yet connecting). cfg and the strings it points to are copied.
 * Returns 0 and *out (free with ami_client_free()), or SB_EINVAL / SB_ENOMEM. */
int ami_client_new(uv_loop_t *loop, const ami_client_config *cfg, const ami_client_callbacks *cbs,
                   ami_client **out);
/* Starts connecting (and reconnecting until stopped). */
int ami_client_start(ami_client *c);
/* Closes the connection and stops retrying; pending actions complete with SB_ECANCELED (from
 * inside this call). May be called from any callback. */
void ami_client_stop(ami_client *c);
/* Frees a stopped client once its handles are closed (safe to call right after stop; the
 * memory is released from the loop's close callbacks). */
void ami_client_free(ami_client *c);

/* Sends an action built with ami_msg_init(m, "Action", NAME) (not finished: the client adds
 * ActionID and finishes it). Takes ownership of m's contents: m is freed (ami_msg_free) on every
 * path, left empty and reusable with ami_msg_init. cb runs exactly once, unless this returns an
 * error (SB_EDISCONN when not ready; SB_EINVAL for a bad or empty message, a bad kind or a too
 * small action_id buffer; SB_ETOOBIG when the peer is not reading and 16 MiB are queued;
 * SB_ENOMEM), in which case it never runs. cb may run from any later loop callback, never from
 * inside this call. timeout_ms 0 means the configured default. action_id (may be NULL) receives
 * the ActionID (at least 24 bytes). */
int ami_client_send(ami_client *c, ami_msg *m, ami_action_kind kind, uint32_t timeout_ms,
                    ami_result_cb cb, void *ud, char *action_id, size_t action_id_size);

ami_client_state ami_client_get_state(const ami_client *c);
const char *ami_client_name(const ami_client *c);
/* The banner's version ("11.0.0"), or "" before the first banner. */
const char *ami_client_ami_version(const ami_client *c);

typedef struct ami_client_stats {
    uint64_t events, actions_sent, actions_failed, reconnects, logins_failed, stalls;
    uint64_t pending; /* actions awaiting an answer now */
    ami_codec_stats codec;
} ami_client_stats;
void ami_client_get_stats(const ami_client *c, ami_client_stats *out);

/* Words for a state. */
const char *ami_client_state_name(ami_client_state st);

#endif
