/* ws.c: WebSocket (RFC 6455): the opening handshake (Sec-WebSocket-Accept = base64(SHA-1(key +
 * GUID)) with OpenSSL) and framing with libwslay's event API. wslay parses client frames
 * (unmasking, fragments, control frames, the size cap), answers pings and close frames itself, and
 * frames what we send one message at a time; our send callback takes every byte at once into a
 * buffer that is then written as one piece, so a frame is never left half-sent and the pre-built
 * frames of broadcast messages (stream.c) can follow directly. */
#include "http/internal.h"

#include "core/error.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Whether a comma-separated header value holds tok (case-insensitive). */
static bool has_token(sb_slice v, const char *tok)
{
    size_t n = strlen(tok), i = 0;
    while (i < v.len) {
        size_t start, end;
        while (i < v.len && (v.ptr[i] == ' ' || v.ptr[i] == '\t' || v.ptr[i] == ','))
            i++;
        start = i;
        while (i < v.len && v.ptr[i] != ',')
            i++;
        end = i;
        while (end > start && (v.ptr[end - 1] == ' ' || v.ptr[end - 1] == '\t'))
            end--;
        if (end - start == n && strncasecmp(v.ptr + start, tok, n) == 0)
            return true;
    }
    return false;
}

/* Computes the accept value for a valid key (24 base64 characters naming 16 bytes) into out
 * (29 bytes); returns 0 or -1 when the key is malformed. */
static int ws_accept_value(sb_slice key, char out[29])
{
    unsigned char raw[24], digest[SHA_DIGEST_LENGTH], buf[24 + sizeof(WS_GUID)];
    if (key.len != 24 || key.ptr[22] != '=' || key.ptr[23] != '=')
        return -1;
    if (EVP_DecodeBlock(raw, (const unsigned char *)key.ptr, 24) != 18)
        return -1;
    memcpy(buf, key.ptr, 24);
    memcpy(buf + 24, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1(buf, 24 + sizeof(WS_GUID) - 1, digest);
    if (EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH) != 28)
        return -1;
    return 0;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *ud)
{
    http_conn *c = ud;
    size_t n = c->in.len < len ? c->in.len : len;
    (void)flags;
    if (!n) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, c->in.data, n);
    sb_buf_consume(&c->in, n);
    return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *ud)
{
    http_conn *c = ud;
    (void)flags;
    if (sb_buf_append(&c->stream.ws_out, data, len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *ud)
{
    http_conn *c = ud;
    http_stream *s = &c->stream;
    if (c->phase != PH_STREAM)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        if (s->cb.on_message)
            s->cb.on_message(s, (sb_slice){(const char *)arg->msg, arg->msg_length}, s->ud);
    } else if (arg->opcode == WSLAY_BINARY_FRAME) {
        static const char why[] = "text messages only";
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, (const uint8_t *)why,
                                sizeof(why) - 1);
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv_cb,
    .send_callback = ws_send_cb,
    .on_msg_recv_callback = ws_msg_cb,
};

/* Sends what wslay has queued; finishes the connection once our close frame is out. */
static void ws_flush(http_conn *c)
{
    http_stream *s = &c->stream;
    int r = wslay_event_send(s->ws);
    if (s->ws_out.len) {
        size_t len = s->ws_out.len;
        char *data = sb_buf_steal(&s->ws_out);
        if (http_conn_write(c, data, len, data, NULL)) {
            http_conn_close(c, SB_EDISCONN);
            return;
        }
    }
    if (r) {
        if (!s->close_reason)
            s->close_reason = SB_EPROTO;
        http_conn_close(c, SB_EPROTO);
        return;
    }
    if (wslay_event_get_close_sent(s->ws) && c->phase == PH_STREAM) {
        uint16_t code = wslay_event_get_status_code_sent(s->ws);
        if (!s->close_reason && !wslay_event_get_close_received(s->ws) &&
            (code == WSLAY_CODE_PROTOCOL_ERROR || code == WSLAY_CODE_UNSUPPORTED_DATA ||
             code == WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA || code == WSLAY_CODE_MESSAGE_TOO_BIG))
            s->close_reason = SB_EPROTO;
        http_conn_finish(c, s->close_reason);
    }
}

void http_ws_on_input(http_conn *c)
{
    if (c->phase != PH_STREAM)
        return;
    if (wslay_event_recv(c->stream.ws)) {
        c->stream.close_reason = SB_EPROTO;
        http_conn_close(c, SB_EPROTO);
        return;
    }
    if (c->phase == PH_STREAM)
        ws_flush(c);
}

int http_ws_send_text(http_conn *c, sb_slice text)
{
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)text.ptr, text.len};
    if (wslay_event_queue_msg(c->stream.ws, &msg))
        return SB_EDISCONN;
    ws_flush(c);
    return c->phase == PH_STREAM ? 0 : SB_EDISCONN;
}

bool http_ws_is_closing(http_conn *c)
{
    return !c->stream.ws || wslay_event_get_close_sent(c->stream.ws);
}

void http_ws_close(http_conn *c, uint16_t code, const char *reason)
{
    size_t n = reason ? strlen(reason) : 0;
    if (n > 123) /* a close frame's payload is at most 125 bytes, 2 of them the code */
        n = 123;
    wslay_event_queue_close(c->stream.ws, code, (const uint8_t *)reason, n);
    ws_flush(c);
}

void http_ws_ping(http_conn *c)
{
    struct wslay_event_msg msg = {WSLAY_PING, NULL, 0};
    if (http_conn_queued(c) > c->srv->cfg.stream_max_queued) {
        http_stream_overflow(c);
        return;
    }
    if (!wslay_event_queue_msg(c->stream.ws, &msg))
        ws_flush(c);
}

void http_ws_release(http_conn *c)
{
    if (c->stream.ws)
        wslay_event_context_free(c->stream.ws);
    c->stream.ws = NULL;
}

http_stream *http_ws_accept(http_request *req, const http_stream_callbacks *cb, void *ud)
{
    static const http_header version[] = {{"Sec-WebSocket-Version", "13"}};
    http_conn *c = req->conn;
    wslay_event_context_ptr ws = NULL;
    char accept[29], *head = NULL;
    int n;
    if ((req->state != REQ_DISPATCHED && req->state != REQ_HELD) || c->phase != PH_HANDLING)
        return NULL;
    if (req->method != HTTP_GET || req->parser.http_major != 1 || req->parser.http_minor < 1 ||
        !has_token(http_request_header(req, "Upgrade"), "websocket") ||
        !has_token(http_request_header(req, "Connection"), "upgrade")) {
        http_respond_error(req, 400, "bad_request", "not a WebSocket handshake");
        return NULL;
    }
    if (!sb_slice_eq(http_request_header(req, "Sec-WebSocket-Version"), SB_SLICE_LIT("13"))) {
        http_respond(req, 426, "application/json", version, 1,
                     SB_SLICE_LIT("{\"error\":{\"code\":\"upgrade_required\","
                                  "\"message\":\"WebSocket version 13 only\"}}"));
        return NULL;
    }
    if (ws_accept_value(http_request_header(req, "Sec-WebSocket-Key"), accept)) {
        http_respond_error(req, 400, "bad_request", "bad Sec-WebSocket-Key");
        return NULL;
    }
    head = malloc(256);
    if (!head || wslay_event_context_server_init(&ws, &ws_callbacks, c)) {
        free(head);
        http_respond_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(ws, c->srv->cfg.ws_max_message);
    n = snprintf(head, 256,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Server: switchboard\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n\r\n",
                 accept);
    req->hold_cb = NULL;
    http_stream_begin(c, HTTP_STREAM_WS, cb, ud);
    c->stream.ws = ws;
    if (http_conn_write(c, head, (size_t)n, head, NULL)) {
        http_conn_close(c, SB_EDISCONN);
        return &c->stream;
    }
    /* Frames the client sent right behind its handshake are read from the loop, not from inside
     * the handler that is accepting. */
    if (c->in.len)
        http_stream_kick(c);
    return &c->stream;
}
