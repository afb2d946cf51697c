/* server.h: the HTTP/1.1 server on the libuv loop, and the request/response API handlers use.
 *
 * Requests are parsed by libhttp-parser (never by hand). Every connection carries one request at
 * a time: pipelined requests wait in the connection's input buffer until the previous response is
 * written, so responses always leave in order. Each limit answers with its own status and closes:
 * header bytes or count 431, URL 414, body 413, slow request 408, malformed 400, too many
 * connections 503; an idle keep-alive connection is closed silently.
 *
 * A handler (usually http_router_handle, see router.h) receives the request and must, before it
 * returns, either respond (http_respond*), hold the request for later (http_request_hold: long-poll
 * or any asynchronous answer), or turn the connection into a stream (http_sse_start,
 * http_ws_accept in stream.h). A handler that does none of these gets a 500 sent for it.
 */
#ifndef SB_HTTP_SERVER_H
#define SB_HTTP_SERVER_H

#include "core/slice.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_server http_server;
typedef struct http_request http_request;

/* Called once per request; req is borrowed until it is responded to (see the file comment). */
typedef void (*http_handler_fn)(http_request *req, void *ud);

typedef struct http_server_config {
    const char *host;            /* numeric bind address; default "127.0.0.1" (copied) */
    int port;                    /* 0 = ephemeral; read it back with http_server_port() */
    size_t max_url_bytes;        /* request-target length; default 4096 -> 414 */
    size_t max_header_bytes;     /* sum of header names and values; default 16384 -> 431 */
    size_t max_headers;          /* header count; default 64 -> 431 */
    size_t max_body_bytes;       /* default 1 MiB -> 413 */
    uint32_t max_connections;    /* open connections (streams included); default 4096 -> 503 */
    uint32_t idle_timeout_ms;    /* keep-alive connection without a request; default 60000 */
    uint32_t request_timeout_ms; /* first byte to last byte of one request; default 30000 -> 408 */
    size_t stream_max_queued;    /* per stream client unsent bytes; default 256 KiB */
    uint32_t stream_flush_ms;    /* 0: pushes leave at the end of the loop iteration; N: gathered
                                    for N ms, then one write per client (fewer syscalls) */
    uint32_t heartbeat_ms;       /* SSE comment / WebSocket ping interval; default 15000 */
    size_t ws_max_message;       /* largest WebSocket message accepted; default 64 KiB -> 1009 */
    uint32_t linger_ms;          /* how long a closing connection may flush; default 2000 */
    http_handler_fn handler;     /* required */
    void *handler_ud;
} http_server_config;

/* Creates a server on loop (borrowed for the server's life); cfg is copied. Returns 0,
 * SB_EINVAL or SB_ENOMEM; *out is owned (free with http_server_free). */
int http_server_init(http_server **out, uv_loop_t *loop, const http_server_config *cfg);
/* Binds and listens. Returns 0 or a UV_* / SB_* error. */
int http_server_start(http_server *s);
/* The bound port (useful with port 0), or -1 before a successful start. */
int http_server_port(const http_server *s);
/* Stops listening and closes every connection: held requests get their hold callback with
 * SB_ECANCELED, streams their on_close. Completes as the loop runs. */
void http_server_stop(http_server *s);
/* Stops (if needed) and releases the server once its handles have closed; the caller keeps
 * running the loop until then (uv_run returns when they have). */
void http_server_free(http_server *s);

typedef struct http_server_stats {
    uint32_t connections;      /* open, counting streams */
    uint32_t streams;          /* open SSE and WebSocket clients */
    uint64_t accepted;         /* connections accepted since start */
    uint64_t rejected_busy;    /* connections answered 503 at accept */
    uint64_t requests;         /* requests dispatched to the handler */
    uint64_t stream_overflows; /* stream clients dropped for exceeding stream_max_queued */
} http_server_stats;
void http_server_get_stats(const http_server *s, http_server_stats *out);

/* ---- the request (every slice is borrowed until the request is answered) ---- */

/* "GET", "POST", ... (HEAD requests report "HEAD"; the router serves them with GET routes). */
sb_slice http_request_method(const http_request *req);
/* The path as sent (not decoded), without the query. */
sb_slice http_request_path(const http_request *req);
/* Header value by case-insensitive name; {NULL, 0} when absent. */
sb_slice http_request_header(const http_request *req, const char *name);
/* Query parameter (percent- and '+'-decoded) by exact name; {NULL, 0} when absent. */
sb_slice http_request_query(const http_request *req, const char *name);
/* Path parameter set by the router ({name} in the pattern), percent-decoded; {NULL, 0} if none. */
sb_slice http_request_param(const http_request *req, const char *name);
/* The request body (may be empty). */
sb_slice http_request_body(const http_request *req);
/* Query parameter as a decimal integer: 0 with *out set, SB_ENOTFOUND when absent, SB_EINVAL when
 * it is not one. */
int http_request_query_ll(const http_request *req, const char *name, long long *out);
/* Parses the body as JSON (an object or array, nesting bounded by jansson). Returns owned JSON
 * (json_decref), or NULL after answering 400 {"error":{"code":"malformed_json",...}} itself, with
 * jansson's line/column in the message: the request is then gone. */
json_t *http_request_json(http_request *req);
/* The token of "Authorization: Bearer TOKEN", or {NULL, 0}. */
sb_slice http_request_bearer(const http_request *req);
/* The client's address as text ("127.0.0.1", "::1") into buf; 0 or a UV_* error. */
int http_request_peer(const http_request *req, char *buf, size_t size);
/* The server this request arrived on. */
http_server *http_request_server(const http_request *req);
/* Attaches caller data (e.g. the principal the auth hook found); free_fn (may be NULL) runs when
 * the request ends. Replaces (and frees) any previous value. */
void http_request_set_user(http_request *req, void *user, void (*free_fn)(void *));
void *http_request_user(const http_request *req);

/* ---- responses ---- */

typedef struct http_header {
    const char *name;
    const char *value;
} http_header;

/* Sends a complete response. content_type may be NULL (no Content-Type); headers (borrowed, may be
 * NULL) are added as given; body is copied. Content-Length, Connection, Date and Server are added
 * by the server. Returns 0, SB_EINVAL (already answered, or a header holding CR or LF: nothing is
 * sent then) or SB_ENOMEM. After a 0 return the request is gone. */
int http_respond(http_request *req, int status, const char *content_type,
                 const http_header *headers, size_t nheaders, sb_slice body);
/* Sends body (takes ownership; NULL answers 500) as application/json. */
int http_respond_json(http_request *req, int status, json_t *body);
/* Sends {"error":{"code":code,"message":message}} with status. */
int http_respond_error(http_request *req, int status, const char *code, const char *message);

/* ---- long-poll and asynchronous answers ---- */

/* Called once when a held request ends without an answer:
 *  - reason SB_ETIMEDOUT: the hold timed out; the request is still valid and the callback should
 *    respond now (if it does not, the server answers 204 No Content);
 *  - reason SB_EDISCONN (client went away) or SB_ECANCELED (server stopping): the request dies
 *    when the callback returns; do not respond. */
typedef void (*http_hold_cb)(http_request *req, int reason, void *ud);
/* Keeps req open after the handler returns, for up to timeout_ms (0 = no timer); the holder later
 * responds with http_respond*. Returns 0, or SB_EINVAL when req is not in its handler or held. */
int http_request_hold(http_request *req, uint32_t timeout_ms, http_hold_cb cb, void *ud);

#endif
