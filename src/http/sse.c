/* sse.c: turning a request into a Server-Sent Events stream (text/event-stream, WHATWG HTML
 * 9.2). The message framing is built once per message in stream.c; this file only answers the
 * request. The answer has no length and no chunking: the event stream ends when the connection
 * does, so it says "Connection: close". */
#include "http/internal.h"

#include "core/error.h"

http_stream *http_sse_start(http_request *req, const http_stream_callbacks *cb, void *ud)
{
    static const char head[] = "HTTP/1.1 200 OK\r\n"
                               "Server: switchboard\r\n"
                               "Content-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\n"
                               "X-Accel-Buffering: no\r\n"
                               /* streams are opened with a token in the URL, never cookies, from
                                  pages of any origin the application serves */
                               "Access-Control-Allow-Origin: *\r\n"
                               "Connection: close\r\n"
                               "\r\n";
    http_conn *c = req->conn;
    if ((req->state != REQ_DISPATCHED && req->state != REQ_HELD) || c->phase != PH_HANDLING)
        return NULL;
    if (req->is_head) {
        http_respond(req, 200, "text/event-stream", NULL, 0, (sb_slice){"", 0});
        return NULL;
    }
    uv_timer_stop(&c->timer);
    req->hold_cb = NULL;
    /* Input after the request (pipelined bytes) means nothing on an event stream. */
    sb_buf_free(&c->in);
    http_stream_begin(c, HTTP_STREAM_SSE, cb, ud);
    if (http_conn_write(c, head, sizeof(head) - 1, NULL, NULL)) {
        /* on_close still runs (from the loop): the stream did start. */
        http_conn_close(c, SB_EDISCONN);
    }
    return &c->stream;
}
