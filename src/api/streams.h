/* streams.h: the event streams of the API (issue 3 §3): stream tokens handed out by
 * POST /v1/agents/{ext}/subscriptions and POST /v1/subscriptions, and the same stream over three
 * transports (Server-Sent Events, WebSocket, long-poll) for one agent or for a supervisor.
 *
 * A client first receives a "snapshot" event (the model's current state) whose seq is the
 * stream's last sequence number; a client resuming within the bus's replay window receives every
 * event it missed, in order, exactly once; beyond the window it receives a "resync" event carrying
 * the full current state. Messages are built once per stream entry and shared by every client of
 * that stream. docs/streams.md has the routes, the wire formats and the resume rules.
 *
 * Everything runs on the loop thread. Shutdown order: http_server_stop (closes every stream and
 * held poll), then streams_stop, run the loop until it returns, then streams_free.
 */
#ifndef SB_API_STREAMS_H
#define SB_API_STREAMS_H

#include "bus/bus.h"
#include "core/slice.h"
#include "http/router.h"
#include "model/model.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct streams streams;

typedef enum streams_role {
    STREAMS_ROLE_NONE = 0,
    STREAMS_ROLE_ADMIN,
    STREAMS_ROLE_SUPERVISOR,
    STREAMS_ROLE_SERVICE,
    STREAMS_ROLE_AGENT,
} streams_role;

/* Resolves the API bearer token of req (token borrowed for the call; never empty) to its role
 * and, for an agent token, its extension (written NUL-terminated into ext, ext_size >= 64).
 * Returns 0, SB_EAUTH (unknown or revoked token) or another negative error. Synchronous; it may
 * attach data to req (http_request_set_user), which the streams code then replaces. */
typedef int (*streams_bearer_fn)(void *ud, http_request *req, sb_slice token, streams_role *role,
                                 char *ext, size_t ext_size);

typedef struct streams_config {
    uv_loop_t *loop;          /* borrowed for the life of the object */
    bus *bus;                 /* borrowed */
    model *model;             /* borrowed: snapshots and resyncs */
    streams_bearer_fn bearer; /* required for POST .../subscriptions and Bearer on streams */
    void *bearer_ud;
    uint32_t token_ttl_ms;        /* a stream token must be used within this; it stays valid while a
                                     client is connected and this long after the last one left;
                                     default 300000 (5 min) */
    uint32_t ws_resume_wait_ms;   /* how long a WebSocket without ?after= may take to send
                                     {"resume":SEQ} before it gets a snapshot; default 1000 */
    uint32_t poll_max_timeout_ms; /* cap on long-poll ?timeout=S; default 60000 */
    size_t poll_max_events;       /* events per long-poll answer; default 1000 */
    size_t max_tokens;            /* live stream tokens; default 100000 (then 503) */
    size_t catchup_chunk_bytes;   /* a resuming client's backlog is sent in chunks this big, each
                                     once the kernel took the last; keep it at most the server's
                                     stream_max_queued; default 64 KiB */
    uint32_t live_flush_ms;       /* 0: live events leave at the end of the loop iteration that
                                     published them; N: gathered N ms, then one write per client
                                     (fewer writes when thousands follow a busy stream) */
    size_t live_slice_clients;    /* live clients written per loop iteration (the rest in the
                                     next ones); default 512 */
    const char *base_url;         /* prefix of the URLs in a subscription answer ("http://h:8080");
                                     NULL = relative URLs ("/v1/..."); copied */
    /* Clock in ms since the UNIX epoch for token expiry and event times; NULL = CLOCK_REALTIME. */
    int64_t (*now_ms)(void *ud);
    void *clock_ud;
} streams_config;

typedef struct streams_stats {
    uint64_t tokens_issued;
    uint32_t tokens_live;
    uint32_t clients;    /* SSE + WebSocket clients now */
    uint32_t polls_held; /* long-polls waiting now */
    uint64_t snapshots;  /* snapshot events sent */
    uint64_t resyncs;    /* resync events sent */
    uint64_t resumes;    /* clients resumed within the window */
    uint64_t overflows;  /* clients dropped as slow consumers */
    uint64_t msgs_built; /* stream messages built (shared by the clients of a stream) */
    uint64_t pushes;     /* events pushed to clients (a live batch counts its events) */
    uint64_t batches; /* live batches built: the events of one flush, shared by a hub's clients */
} streams_stats;

/* Creates the streams object; cfg and base_url are copied. Returns 0 with *out owned (free with
 * streams_free), SB_EINVAL (no loop, bus, model or bearer) or SB_ENOMEM. Arms a sweep timer
 * (expired tokens) on the loop. */
int streams_new(const streams_config *cfg, streams **out);
/* Adds the stream routes (docs/streams.md) to r. Returns 0 or the router's error. The routes
 * borrow s: the router must not outlive it. */
int streams_add_routes(streams *s, http_router *r);
/* Closes the sweep timer (the memory stays until streams_free). Call after http_server_stop. */
void streams_stop(streams *s);
/* Frees tokens and the per-stream state; call once the loop has run after streams_stop and the
 * HTTP server has closed every stream (their on_close already ran). NULL is ignored. */
void streams_free(streams *s);
void streams_get_stats(const streams *s, streams_stats *out);

#endif
