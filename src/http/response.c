/* response.c: formatting and sending answers: the status line, the server's own headers
 * (Content-Length, Connection), JSON bodies and the {"error":{"code","message"}} shape every
 * error uses. */
#include "http/internal.h"

#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#define HEAD_MAX 16384 /* status line and headers of one answer */

const char *http_status_text(int status)
{
    return http_status_str((enum http_status)status);
}

static bool has_no_body(int status)
{
    return status == 204 || status == 304 || (status >= 100 && status < 200);
}

/* Formats a whole answer into out (owned by the caller). */
/* The Date header (RFC 9110 6.6.1), formatted once per second per server. */
static const char *date_now(http_server *s)
{
    time_t now = time(NULL);
    if (now != s->date_time) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_time = now;
    }
    return s->date;
}

static int format_answer(http_server *s, sb_buf *out, int status, const char *content_type,
                         const http_header *headers, size_t nheaders, sb_slice body,
                         bool keep_alive, bool head_only)
{
    size_t i;
    int rc;
    bool bodyless = has_no_body(status);
    /* A CR or LF in a header would let a value start a header (or a body) of its own. */
    for (i = 0; i < nheaders; i++)
        if (strpbrk(headers[i].name, "\r\n:") || strpbrk(headers[i].value, "\r\n"))
            return SB_EINVAL;
    if (content_type && strpbrk(content_type, "\r\n"))
        return SB_EINVAL;
    sb_buf_init(out, HEAD_MAX + body.len);
    rc = sb_buf_printf(out, "HTTP/1.1 %d %s\r\nServer: switchboard\r\nDate: %s\r\n", status,
                       http_status_text(status), date_now(s));
    if (!rc && content_type && !bodyless)
        rc = sb_buf_printf(out, "Content-Type: %s\r\n", content_type);
    if (!rc && !bodyless)
        rc = sb_buf_printf(out, "Content-Length: %zu\r\n", body.len);
    for (i = 0; !rc && i < nheaders; i++)
        rc = sb_buf_printf(out, "%s: %s\r\n", headers[i].name, headers[i].value);
    if (!rc)
        rc = sb_buf_puts(out, keep_alive ? "Connection: keep-alive\r\n\r\n"
                                         : "Connection: close\r\n\r\n");
    if (!rc && !head_only && !bodyless && body.len)
        rc = sb_buf_append(out, body.ptr, body.len);
    if (rc)
        sb_buf_free(out);
    return rc;
}

int http_respond(http_request *req, int status, const char *content_type,
                 const http_header *headers, size_t nheaders, sb_slice body)
{
    http_conn *c = req->conn;
    sb_buf out;
    int rc;
    if (req->state != REQ_DISPATCHED && req->state != REQ_HELD)
        return SB_EINVAL;
    if (c->phase != PH_HANDLING)
        return SB_EDISCONN;
    req->keep_alive = req->keep_alive && !req->parser.upgrade && !c->srv->is_stopping;
    rc = format_answer(c->srv, &out, status, content_type, headers, nheaders, body, req->keep_alive,
                       req->is_head);
    if (rc)
        return rc;
    SB_DEBUG("http", "%s %.*s -> %d (%zu bytes)", http_method_str((enum http_method)req->method),
             (int)req->path.len, req->path.ptr, status, body.len);
    req->state = REQ_RESPONDED;
    rc = http_conn_write(c, out.data, out.len, out.data, NULL);
    if (rc) {
        http_conn_close(c, SB_EDISCONN);
        return rc;
    }
    http_conn_request_done(c);
    return 0;
}

int http_respond_json(http_request *req, int status, json_t *body)
{
    char *text;
    int rc;
    if (!body)
        return http_respond_error(req, 500, "internal", "out of memory");
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return http_respond_error(req, 500, "internal", "out of memory");
    rc = http_respond(req, status, "application/json", NULL, 0, sb_slice_cstr(text));
    free(text);
    return rc;
}

static char *error_body(const char *code, const char *message)
{
    json_t *j =
        json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message ? message : "");
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

int http_respond_error(http_request *req, int status, const char *code, const char *message)
{
    static const http_header bearer[] = {{"WWW-Authenticate", "Bearer"}};
    char *text = error_body(code, message);
    int rc;
    if (!text)
        return http_respond(req, 500, NULL, NULL, 0, (sb_slice){"", 0});
    rc = http_respond(req, status, "application/json", status == 401 ? bearer : NULL,
                      status == 401 ? 1 : 0, sb_slice_cstr(text));
    free(text);
    return rc;
}

json_t *http_request_json(http_request *req)
{
    sb_slice body = http_request_body(req);
    json_error_t jerr;
    json_t *j = json_loadb(body.ptr, body.len, JSON_REJECT_DUPLICATES, &jerr);
    char msg[200];
    if (j)
        return j;
    if (!body.len)
        snprintf(msg, sizeof(msg), "a JSON body is required");
    else
        snprintf(msg, sizeof(msg), "malformed JSON at line %d column %d: %s", jerr.line,
                 jerr.column, jerr.text);
    http_respond_error(req, 400, "malformed_json", msg);
    return NULL;
}

void http_conn_reject(http_conn *c, int status, const char *code, const char *message)
{
    static const http_header retry[] = {{"Retry-After", "1"}};
    char *text = error_body(code, message);
    sb_buf out;
    int rc;
    if (c->phase == PH_CLOSED || c->phase == PH_DRAINING)
        goto out;
    rc = format_answer(c->srv, &out, status, "application/json", status == 503 ? retry : NULL,
                       status == 503 ? 1 : 0, sb_slice_cstr(text ? text : ""), false, false);
    if (rc) {
        http_conn_close(c, SB_ENOMEM);
        goto out;
    }
    if (http_conn_write(c, out.data, out.len, out.data, NULL)) {
        http_conn_close(c, SB_EDISCONN);
        goto out;
    }
    http_conn_finish(c, status == 408 ? SB_ETIMEDOUT : SB_EPROTO);
out:
    free(text);
}
