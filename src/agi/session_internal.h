/* session_internal.h: what server.c and session.c share about a FastAGI session and server.
 * Not part of the public API (see server.h and session.h). */
#ifndef SB_AGI_SESSION_INTERNAL_H
#define SB_AGI_SESSION_INTERNAL_H

#include <stdbool.h>
#include <uv.h>

#include "agi/proto.h"
#include "agi/server.h"
#include "agi/session.h"

enum { SESSION_HEADER, SESSION_RUNNING, SESSION_ENDING };

typedef struct agi_cmd {
    struct agi_cmd *next;
    agi_reply_cb cb;
    void *user;
    unsigned timeout_ms;
    size_t len;
    char line[];
} agi_cmd;

typedef struct allowed_addr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
} allowed_addr;

struct agi_session {
    uv_tcp_t tcp;
    uv_timer_t timer;
    agi_server *srv;
    agi_session *prev, *next; /* the server's list of open sessions */
    int phase;
    int open_handles;
    agi_header_parser hp;
    agi_request req;
    agi_reply_parser rp;
    agi_cmd *head, *tail;
    size_t pending;
    bool inflight;
    bool hung_up;
    agi_hangup_cb on_hangup;
    agi_end_cb on_end;
    void *user;
};

struct agi_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listener_open; /* initialised and not yet closed */
    bool stopping;
    bool free_requested;
    size_t open_handles; /* the listener plus every session not yet released */
    char *bind_host;
    int port;
    allowed_addr *allowed;
    size_t nallowed;
    size_t max_sessions, header_max, vars_max, reply_max;
    unsigned header_timeout_ms;
    agi_session_cb on_session;
    void *user;
    agi_session *sessions;
    agi_server_stats stats;
    char readbuf[65536]; /* shared: libuv reads one stream at a time on this loop */
};

/* Starts a session on an accepted, allowed connection (server.c calls it). 0 or an error. */
int agi_session_start(agi_server *srv, agi_session *s);

/* Ends a session: the in-flight command gets inflight_status, queued ones SB_ECANCELED, on_end
 * gets reason (only if on_session ran), then the handles close. Idempotent. */
void agi_session_end(agi_session *s, int reason, int inflight_status);

/* A session's handles are closed: server.c unlinks and releases it. */
void agi_server_session_released(agi_server *srv, agi_session *s);

#endif
