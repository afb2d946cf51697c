/* server.h: the FastAGI server: a TCP listener on the event loop (default 127.0.0.1:4573) that
 * accepts connections from the listed Asterisk addresses only, reads the agi_* header and hands
 * each call to on_session as an agi_session (see session.h).
 *
 * FastAGI has no authentication, so the allowed-peer list is the only gate: a connection from
 * any other address is closed at accept, before a byte is read. With no list, only loopback
 * (127.0.0.1, ::1) may connect.
 */
#ifndef SB_AGI_SERVER_H
#define SB_AGI_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agi/proto.h"

typedef struct agi_server agi_server;
typedef struct agi_session agi_session;

typedef struct agi_server_config {
    const char *bind_host;            /* NULL: "127.0.0.1" */
    int port;                         /* -1: 4573; 0: an ephemeral port (tests) */
    const char *const *allowed_peers; /* IPv4/IPv6 address strings; NULL/0: loopback only */
    size_t nallowed;
    size_t max_sessions;        /* 0: 10000 */
    size_t header_max;          /* 0: AGI_HEADER_MAX_DEFAULT */
    size_t vars_max;            /* 0: AGI_VARS_MAX_DEFAULT */
    size_t reply_max;           /* 0: AGI_REPLY_MAX_DEFAULT */
    unsigned header_timeout_ms; /* 0: 5000; the whole header must arrive in this time */
} agi_server_config;

/* A new call: the header is parsed and the session is ready for commands. The request is
 * borrowed from the session (valid until the session ends). */
typedef void (*agi_session_cb)(agi_session *s, const agi_request *req, void *user);

typedef struct agi_server_stats {
    uint64_t accepted; /* connections that became sessions */
    uint64_t rejected; /* refused at accept: peer not allowed or too many sessions */
    uint64_t failed;   /* closed before the header was complete (timeout, bad header) */
    size_t active;     /* open sessions now */
} agi_server_stats;

/* Creates a server on loop (borrowed). cfg and its strings are copied. Returns 0 and an owned
 * *out (free with agi_server_free()), SB_EINVAL (an allowed peer that is not an IP address),
 * or SB_ENOMEM. Nothing is bound yet. */
int agi_server_new(uv_loop_t *loop, const agi_server_config *cfg, agi_session_cb on_session,
                   void *user, agi_server **out);

/* Binds and listens. 0 or a UV_* error (e.g. UV_EADDRINUSE). */
int agi_server_start(agi_server *srv);

/* The bound port (after a successful start), or -1. */
int agi_server_port(const agi_server *srv);

/* Stops listening and ends every open session (their callbacks run with SB_ECANCELED).
 * Closing finishes on the loop; calling it twice is fine. */
void agi_server_stop(agi_server *srv);

/* Stops the server if needed and releases it once the loop has closed its handles: the caller
 * keeps running the loop until it has no more handles of this server. NULL is fine. */
void agi_server_free(agi_server *srv);

/* Counters, for metrics and tests. */
agi_server_stats agi_server_get_stats(const agi_server *srv);

#endif
