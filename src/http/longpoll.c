/* longpoll.c: holding a request open after its handler returned (long-poll, or any answer that
 * waits on something else such as an AMI action). The connection's timer carries the deadline;
 * server.c calls the hold callback on timeout, disconnect or stop. */
#include "http/internal.h"

#include "core/error.h"

int http_request_hold(http_request *req, uint32_t timeout_ms, http_hold_cb cb, void *ud)
{
    http_conn *c = req->conn;
    if (!cb || req->state != REQ_DISPATCHED || c->phase != PH_HANDLING)
        return SB_EINVAL;
    req->state = REQ_HELD;
    req->hold_cb = cb;
    req->hold_ud = ud;
    if (timeout_ms)
        http_conn_set_timer(c, timeout_ms);
    return 0;
}
