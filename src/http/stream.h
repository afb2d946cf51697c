/* stream.h: long-lived stream clients (Server-Sent Events and WebSocket) and the shared messages
 * pushed to them.
 *
 * A handler turns its request into a stream with http_sse_start() or http_ws_accept(). The event
 * layer then builds each event once as an http_msg (reference-counted; its SSE and WebSocket
 * framings are made once at creation) and pushes the same msg to every client: a push costs one
 * non-blocking write attempt and, only when the socket is full, a queued write holding a
 * reference. Each client may hold at most stream_max_queued unsent bytes (server config); a push
 * beyond that drops the client with a reason (SSE: a final "event: close"; WebSocket: a close
 * frame 1008 "slow consumer") and returns SB_ETOOBIG. The loop never blocks on a client.
 *
 * on_close runs exactly once per started stream, always from the loop (never inside a call made
 * by the caller), after which the stream pointer is invalid.
 */
#ifndef SB_HTTP_STREAM_H
#define SB_HTTP_STREAM_H

#include "core/slice.h"
#include "http/server.h"

#include <stddef.h>
#include <stdint.h>

typedef struct http_stream http_stream;
typedef struct http_msg http_msg;

typedef enum http_stream_kind {
    HTTP_STREAM_SSE,
    HTTP_STREAM_WS,
} http_stream_kind;

typedef struct http_stream_callbacks {
    /* A complete text message from a WebSocket client (never called for SSE); text is borrowed for
     * the call. May be NULL. */
    void (*on_message)(http_stream *s, sb_slice text, void *ud);
    /* The stream ended: reason 0 (closed normally by either side), SB_ETOOBIG (slow consumer),
     * SB_EDISCONN (connection lost), SB_EPROTO (WebSocket protocol error), SB_ECANCELED (server
     * stopping). s is invalid after this returns. May be NULL. */
    void (*on_close)(http_stream *s, int reason, void *ud);
} http_stream_callbacks;

/* Builds a message: id and event (either may be empty) and data (may contain newlines; SSE sends
 * one "data:" line per line). Returns owned (refcount 1, release with http_msg_unref) or NULL. */
http_msg *http_msg_new(sb_slice id, sb_slice event, sb_slice data);
/* One message carrying msgs[0..n) back to back (each framing concatenated; the data is empty):
 * what a client that follows the live flow gets once per flush instead of n pushes. Borrows msgs;
 * returns owned (refcount 1) or NULL (out of memory, or n == 0). */
http_msg *http_msg_concat(http_msg *const *msgs, size_t n);
/* Adds a reference; returns m. */
http_msg *http_msg_ref(http_msg *m);
/* Drops a reference; frees at zero. NULL is ignored. */
void http_msg_unref(http_msg *m);
/* The data the message was built with (borrowed for the msg's life). */
sb_slice http_msg_data(const http_msg *m);
/* The exact bytes a push sends to a kind of stream (borrowed for the msg's life). */
sb_slice http_msg_framing(const http_msg *m, http_stream_kind kind);

/* Answers req with 200 text/event-stream and makes it a stream. The request stays readable (its
 * headers, params, Last-Event-ID via http_request_last_event_id) until on_close. Returns the stream
 * (borrowed until on_close) or NULL, having then answered the request with an error itself, in
 * which case no callback ever runs. cb is copied. */
http_stream *http_sse_start(http_request *req, const http_stream_callbacks *cb, void *ud);
/* Validates the WebSocket handshake (GET, Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Version: 13, a 16-byte Sec-WebSocket-Key), answers 101 with Sec-WebSocket-Accept
 * and makes req a stream. On a bad handshake answers 400 (426 for another version) and returns
 * NULL; no callback ever runs then. */
http_stream *http_ws_accept(http_request *req, const http_stream_callbacks *cb, void *ud);
/* The SSE resume point: the Last-Event-ID header, or {NULL, 0}. */
sb_slice http_request_last_event_id(const http_request *req);

/* Queues m (the SSE or WebSocket framing, as fits s) without copying it. Returns 0; SB_ETOOBIG
 * when the client exceeded its buffer (it is being disconnected, on_close follows); SB_EDISCONN
 * when the stream is already closing. Borrows m (holds its own reference while queued). */
int http_stream_push(http_stream *s, http_msg *m);
/* Sends one text (copied): an SSE "data:" event or a WebSocket text message. Same returns. */
int http_stream_send_text(http_stream *s, sb_slice text);
/* Ends the stream with a reason: SSE gets "event: close" with {"code":code,"reason":reason},
 * WebSocket a close frame (code, reason). on_close follows with reason 0. */
void http_stream_close(http_stream *s, uint16_t code, const char *reason);

http_stream_kind http_stream_get_kind(const http_stream *s);
/* The request the stream was started from (borrowed until on_close). */
http_request *http_stream_request(http_stream *s);
/* Bytes written to the stream but not yet accepted by the kernel. */
size_t http_stream_queued(const http_stream *s);
void http_stream_set_user(http_stream *s, void *ud);
void *http_stream_user(const http_stream *s);

#endif
