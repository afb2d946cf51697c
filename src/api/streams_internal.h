/* streams_internal.h: what streams.c (transports) and stream_tokens.c (tokens, per-stream hubs)
 * share. Not a public header: include streams.h from outside src/api/streams*.c.
 *
 * A hub is one bus stream as the HTTP side sees it (one per agent extension, "" for the global
 * stream): it holds the bus stream open, so events keep being recorded for resuming clients, and
 * caches the last message it built so every client of the stream pushes the same http_msg. A
 * token names a hub; clients and held polls hold the hub and the token while they live.
 */
#ifndef SB_API_STREAMS_INTERNAL_H
#define SB_API_STREAMS_INTERNAL_H

#include "api/streams.h"
#include "core/strmap.h"
#include "http/stream.h"

#include <stdbool.h>

#define STREAM_TOKEN_CHARS 43 /* 32 random bytes, base64url without padding */
#define STREAM_TOKEN_KEY 65   /* hex of the 32-byte BLAKE2b hash, plus NUL */
#define STREAM_EXT_MAX 64

typedef struct stream_hub {
    streams *owner;
    char *key; /* extension, or "" for the global stream */
    bus_stream *bs;
    unsigned refs;        /* tokens + clients + polls holding it */
    int64_t linger_until; /* refs == 0: freed by the sweep after this */
    uint64_t cache_seq;   /* seq of cache (0: none) */
    http_msg *cache;
    /* Live fan-out (streams.c): while clients follow the live flow the hub alone subscribes to
     * the bus; the events of one loop iteration are gathered and leave as ONE message (built
     * once, shared by reference) per client at the end of the iteration. */
    bus_sub *live_sub;
    struct client *live;      /* clients following live (intrusive list) */
    uint64_t flushed_seq;     /* last seq handed to the live clients */
    struct stream_pend *pend; /* events since then */
    size_t npend, pend_cap;
    struct client *cursor; /* next client of the current sweep pass */
    bool sweeping;         /* a pass over the live list is under way */
    http_msg *batch;       /* the last batch built, pend seqs batch_from..batch_to */
    uint64_t batch_from, batch_to;
    struct stream_hub *dirty_next; /* on streams.dirty while npend > 0 */
    bool is_dirty;
} stream_hub;

typedef struct stream_token {
    char key[STREAM_TOKEN_KEY]; /* hash of the token: the token itself is never kept */
    stream_hub *hub;
    unsigned users;     /* connected clients and held polls */
    int64_t expires_ms; /* unusable after this once users == 0 */
} stream_token;

struct streams {
    streams_config cfg;
    char *base_url;
    uv_timer_t sweep;
    bool timer_open;
    sb_strmap hubs;   /* key -> stream_hub* */
    sb_strmap tokens; /* hash hex -> stream_token* */
    streams_stats st;
    uv_prepare_t flush_prepare; /* hub flushes: events published by timers, before the poll */
    uv_check_t flush_check;     /* ... and by I/O callbacks (AMI reads), after it */
    uv_timer_t flush_timer;     /* or, with live_flush_ms, after that delay */
    uv_idle_t flush_idle;       /* keeps the loop turning while a sweep is cut in slices */
    bool flush_open, flush_armed;
    stream_hub *dirty; /* hubs with gathered events */
};

int64_t streams_now(const streams *s);

/* Hubs: get (creating; refs + 1) and put (refs - 1; lingers token_ttl_ms at zero). */
int stream_hub_get(streams *s, const char *key, stream_hub **out);
void stream_hub_put(stream_hub *h);
/* The message of entry on h's stream (built once, cached by seq). Borrowed until the next call on
 * h; NULL when out of memory. */
http_msg *stream_hub_msg(stream_hub *h, const bus_entry *entry);
/* Before a hub is freed (streams.c): drops its live subscription and gathered events. */
void stream_hub_live_release(stream_hub *h);

/* Issues a token for ext (NULL: the global stream) watching queues (borrowed, may be NULL): the
 * token text (STREAM_TOKEN_CHARS + NUL) goes to out. 0, SB_ETOOBIG (max_tokens), SB_ENOMEM. */
int stream_token_issue(streams *s, const char *ext, const char *const *queues, size_t nqueues,
                       char out[STREAM_TOKEN_CHARS + 1], int64_t *expires_ms);
/* The live token matching text, or NULL (unknown or expired). Borrowed while a user holds it or
 * until control returns to the loop. */
stream_token *stream_token_find(streams *s, sb_slice text);
void stream_token_attach(stream_token *t);
/* One user left: the token stays usable token_ttl_ms from now. */
void stream_token_detach(streams *s, stream_token *t);
/* Frees expired tokens and lingering hubs. */
void stream_sweep(streams *s);
void stream_tokens_free_all(streams *s);

/* Shared by the transports (streams.c, stream_poll.c). */
/* {"seq":at,"type":type,"time":now,"details":snapshot} for h's agent (or everything); returns
 * owned text (free) or NULL. */
char *stream_state_event(streams *s, stream_hub *h, const char *type, uint64_t at);
/* The resume point of a request: Last-Event-ID (sse), ?lastEventId= (sse), ?after=. 1 found,
 * 0 none, SB_EINVAL malformed. */
int stream_resume_point(http_request *req, bool sse, uint64_t *out);
/* The hub of an authorized stream request (the token's, or the Bearer caller's stream), held
 * (hub and token) until stream_release_hub. 0 or SB_ENOMEM. */
int stream_request_hub(streams *s, http_request *req, bool global, stream_hub **hub,
                       stream_token **tok);
void stream_release_hub(streams *s, stream_hub *hub, stream_token *tok);
/* The long-poll handler (stream_poll.c). */
void stream_poll_handle(http_request *req, streams *s, bool global);

#endif
