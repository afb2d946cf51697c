/* internal.h: what the files of src/http/ share: the connection and request structures and the
 * connection's write/close primitives. Never included from outside src/http/. */
#ifndef SB_HTTP_INTERNAL_H
#define SB_HTTP_INTERNAL_H

#include "core/buf.h"
#include "core/slice.h"
#include "http/server.h"
#include "http/stream.h"

#include <http_parser.h>
#include <stddef.h>
#include <time.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <wslay/wslay.h>

#define HTTP_MAX_PARAMS 8
#define HTTP_STREAM_BATCH 16 /* pushes gathered per client before a write */

typedef struct http_conn http_conn;

typedef struct http_kv {
    sb_slice key;
    sb_slice value;
} http_kv;

typedef struct http_hdr {
    size_t name_off, name_len, value_off, value_len; /* into http_request.head */
} http_hdr;

typedef enum http_req_state {
    REQ_PARSING,    /* bytes of it are arriving */
    REQ_DISPATCHED, /* inside the handler */
    REQ_HELD,       /* the handler returned; an answer will come later */
    REQ_RESPONDED,  /* answered; the connection moves on */
    REQ_STREAM,     /* became an SSE or WebSocket stream */
} http_req_state;

struct http_request {
    http_conn *conn; /* NULL when parsing outside a server (fuzzing) */
    const http_server_config *cfg;
    http_parser parser;
    bool is_started;     /* a byte of this request has been parsed */
    bool wants_continue; /* Expect: 100-continue was just seen */
    int error_status;    /* set by a parser callback that hit a limit */
    http_req_state state;
    unsigned method; /* enum http_method */
    bool is_head;
    bool keep_alive;
    sb_buf head; /* the URL then header names and values, copied as parsed */
    size_t url_len;
    size_t header_bytes;
    http_hdr *hdrs;
    size_t nhdrs, hdrs_cap;
    bool last_was_value;
    sb_buf body;
    /* Resolved once the headers are complete (slices into head / decoded). */
    sb_slice path, query_raw;
    char *decoded; /* arena for decoded query and params: never grows past 2x the URL */
    size_t decoded_len, decoded_cap;
    http_kv *query;
    size_t nquery;
    http_kv params[HTTP_MAX_PARAMS];
    size_t nparams;
    http_hold_cb hold_cb;
    void *hold_ud;
    void *user;
    void (*user_free)(void *);
};

typedef enum http_conn_phase {
    PH_IDLE,     /* waiting for the first byte of a request (idle timer) */
    PH_READING,  /* a request is arriving (request timer) */
    PH_HANDLING, /* the handler has it (hold timer, if any) */
    PH_STREAM,   /* SSE or WebSocket (heartbeat timer) */
    PH_DRAINING, /* final bytes queued; write side shut down, input discarded (linger timer) */
    PH_CLOSED,   /* uv_close under way */
} http_conn_phase;

struct http_stream {
    http_stream_kind kind;
    http_stream_callbacks cb;
    void *ud;
    void *user;
    wslay_event_context_ptr ws;
    sb_buf ws_out; /* bytes wslay produced during one wslay_event_send */
    int close_reason;
    /* Pushed messages not yet written: a loop iteration's pushes leave in one writev. */
    http_msg *pend[HTTP_STREAM_BATCH];
    unsigned npend;
    size_t pend_bytes;
    bool is_dirty;
    http_conn *dirty_prev, *dirty_next; /* the server's list of streams with pend */
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    http_server *srv;
    http_conn *prev, *next; /* the server's connection list */
    http_conn_phase phase;
    sb_buf in;       /* input not yet parsed */
    bool is_reading; /* uv_read_start active */
    bool in_dispatch;
    bool is_rejected; /* answered 503 at accept: not counted as a connection */
    bool is_stream;
    int close_reason;
    int open_handles;
    size_t pending_writes;
    http_request req;
    http_stream stream;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    http_server_config cfg;
    char host[64];
    int port;
    bool is_listening, is_stopping, is_freed, listener_open;
    int open_handles; /* listener and the flush handles: the server is freed after they close */
    uv_prepare_t flush_prepare; /* flush pushes made by timers, before the loop polls */
    uv_check_t flush_check;     /* flush pushes made by I/O callbacks, after the poll */
    uv_timer_t flush_timer;     /* or, with stream_flush_ms, after that delay */
    bool is_flush_armed;
    http_conn *dirty;
    time_t date_time; /* second the cached Date value was made for */
    char date[40];
    http_conn *conns;
    http_server_stats stats;
    uint32_t nrejecting;
    char rbuf[65536]; /* every read lands here, then is parsed or copied out at once */
};

/* Writes len bytes of data. owned (may be NULL) is freed and msg (may be NULL) unreferenced once
 * the write is done; data must stay valid until then. Returns 0 or a UV_* / SB_* error (in which
 * case owned and msg are released already). Never blocks. */
int http_conn_write(http_conn *c, const char *data, size_t len, char *owned, http_msg *msg);
/* The same for several buffers (bufs may be modified); takes ownership of owned and of one
 * reference on each of msgs. */
int http_conn_writev(http_conn *c, uv_buf_t *bufs, unsigned nbufs, char *owned, http_msg **msgs,
                     unsigned nmsgs);
/* Frees the server once it is freed, connection-less and its handles are closed. */
void http_server_maybe_free(http_server *s);
/* Stream flushing (stream.c): writes a stream's pending pushes now; sets up and closes the
 * server's flush handles; takes a closing connection off the dirty list. */
void http_stream_flush(http_conn *c);
void http_streams_init(http_server *s);
void http_streams_close(http_server *s);
void http_stream_unlink(http_conn *c);
/* (Re)starts the connection's one-shot phase timer (hold deadline, linger). */
void http_conn_set_timer(http_conn *c, uint64_t ms);
/* Starts stream mode: phase, stats, heartbeat timer (stream.c). */
void http_stream_begin(http_conn *c, http_stream_kind kind, const http_stream_callbacks *cb,
                       void *ud);
/* Processes a WebSocket client's pending input from the loop, then resumes heartbeats. */
void http_stream_kick(http_conn *c);
/* Unsent bytes queued on the socket. */
size_t http_conn_queued(const http_conn *c);
/* Lets queued bytes leave, then closes (shutdown, input discarded, linger timer). */
void http_conn_finish(http_conn *c, int reason);
/* Closes now; idempotent. */
void http_conn_close(http_conn *c, int reason);
/* The request was answered: the connection moves to the next request or finishes. */
void http_conn_request_done(http_conn *c);
/* Feeds bytes that arrived on a stream connection (WebSocket input). */
void http_ws_on_input(http_conn *c);
/* The stream's heartbeat timer fired. */
void http_stream_heartbeat(http_conn *c);
/* Frees the WebSocket context and buffers of a stream; called when the connection is freed. */
void http_stream_release(http_conn *c);

/* WebSocket specifics (ws.c), called by stream.c for WS streams. */
int http_ws_send_text(http_conn *c, sb_slice text);
void http_ws_close(http_conn *c, uint16_t code, const char *reason);
void http_ws_ping(http_conn *c);
void http_ws_release(http_conn *c);
/* Whether no more frames may be sent (our close frame is out). */
bool http_ws_is_closing(http_conn *c);
/* Drops a stream client that exceeded its buffer (stream.c). */
void http_stream_overflow(http_conn *c);
#define HTTP_CONN_OF_STREAM(s) ((http_conn *)(void *)((char *)(s)-offsetof(http_conn, stream)))

/* Request lifecycle (request.c). */
void http_request_init(http_request *req, http_conn *c, const http_server_config *cfg);
void http_request_reset(http_request *req);
void http_request_release(http_request *req);
/* Feeds bytes to the request's parser. Returns 0 (all consumed, need more), HTTP_PARSE_READY
 * (a whole request is in req; *consumed bytes were used and parsing is paused until
 * http_request_reset) or an HTTP error status (400, 413, 414, 431, 500). Parsers never touch
 * sockets: this is the whole of request parsing, and what the fuzz target drives. */
#define HTTP_PARSE_READY 1
int http_request_parse(http_request *req, const char *data, size_t len, size_t *consumed);
/* Decodes %XX (and '+' as space when plus_is_space) from src into the request's arena; returns 0
 * or -1 on a bad escape, a NUL byte or no room. */
int http_request_decode(http_request *req, sb_slice src, bool plus_is_space, sb_slice *out);
/* Sets the router's parameters: names borrowed (route lifetime), raw values decoded here. */
int http_request_set_params(http_request *req, const char *const *names, const sb_slice *raw,
                            size_t n);

/* Response framing (response.c): the status line and fixed headers. */
const char *http_status_text(int status);
/* Sends an error answer and closes the connection after it (limits, malformed input). */
void http_conn_reject(http_conn *c, int status, const char *code, const char *message);

#endif
