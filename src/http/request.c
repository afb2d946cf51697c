/* request.c: the request object: collecting the URL and headers from the parser callbacks under
 * the configured limits, splitting path and query (http_parser_parse_url), percent-decoding, and
 * the accessors handlers use. */
#include "http/internal.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QUERY_MAX_PAIRS 64

void http_request_init(http_request *req, http_conn *c, const http_server_config *cfg)
{
    memset(req, 0, sizeof(*req));
    req->conn = c;
    req->cfg = cfg;
    http_parser_init(&req->parser, HTTP_REQUEST);
    req->parser.data = req;
    /* The limits are enforced by the callbacks with the right status; the buffer caps are only a
     * backstop, a little above them. */
    sb_buf_init(&req->head, cfg->max_url_bytes + cfg->max_header_bytes + 64);
    sb_buf_init(&req->body, cfg->max_body_bytes);
}

void http_request_reset(http_request *req)
{
    if (req->user_free && req->user)
        req->user_free(req->user);
    req->user = NULL;
    req->user_free = NULL;
    sb_buf_reset(&req->head);
    sb_buf_reset(&req->body);
    /* A large body's memory is not kept for the next request on this connection. */
    if (req->body.cap > 16384)
        sb_buf_free(&req->body);
    req->state = REQ_PARSING;
    req->is_started = false;
    req->wants_continue = false;
    req->error_status = 0;
    /* Only a paused parser may be resumed (libhttp-parser asserts); after a parse error the
     * connection is closing and the parser is never used again. */
    if (HTTP_PARSER_ERRNO(&req->parser) == HPE_PAUSED)
        http_parser_pause(&req->parser, 0);
    req->method = 0;
    req->is_head = false;
    req->keep_alive = false;
    req->url_len = 0;
    req->header_bytes = 0;
    req->nhdrs = 0;
    req->last_was_value = false;
    req->path = (sb_slice){NULL, 0};
    req->query_raw = (sb_slice){NULL, 0};
    free(req->decoded);
    req->decoded = NULL;
    req->decoded_len = req->decoded_cap = 0;
    free(req->query);
    req->query = NULL;
    req->nquery = 0;
    req->nparams = 0;
    req->hold_cb = NULL;
    req->hold_ud = NULL;
}

void http_request_release(http_request *req)
{
    http_request_reset(req);
    sb_buf_free(&req->head);
    sb_buf_free(&req->body);
    free(req->hdrs);
    req->hdrs = NULL;
    req->hdrs_cap = 0;
}

static int http_request_add_url(http_request *req, const char *at, size_t len, size_t max_url)
{
    if (req->url_len + len > max_url)
        return 414;
    if (sb_buf_append(&req->head, at, len))
        return 414;
    req->url_len += len;
    return 0;
}

static int http_request_add_header_field(http_request *req, const char *at, size_t len,
                                         const http_server_config *cfg)
{
    http_hdr *h;
    if (req->path.ptr) /* trailers of a chunked body: ignored, the slices are taken */
        return 0;
    /* A field chunk after a value chunk starts a new header; the parser may split one name over
     * several calls when it arrives in several reads, and the chunks land back to back. */
    if (req->nhdrs == 0 || req->last_was_value) {
        if (req->nhdrs >= cfg->max_headers)
            return 431;
        if (req->nhdrs == req->hdrs_cap) {
            size_t ncap = req->hdrs_cap ? req->hdrs_cap * 2 : 16;
            http_hdr *n = realloc(req->hdrs, ncap * sizeof(*n));
            if (!n)
                return 500;
            req->hdrs = n;
            req->hdrs_cap = ncap;
        }
        h = &req->hdrs[req->nhdrs++];
        h->name_off = req->head.len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        req->header_bytes += 4; /* ": " and CRLF */
        req->last_was_value = false;
    }
    req->header_bytes += len;
    if (req->header_bytes > cfg->max_header_bytes)
        return 431;
    if (sb_buf_append(&req->head, at, len))
        return 431;
    req->hdrs[req->nhdrs - 1].name_len += len;
    return 0;
}

static int http_request_add_header_value(http_request *req, const char *at, size_t len,
                                         const http_server_config *cfg)
{
    http_hdr *h;
    if (req->path.ptr)
        return 0;
    if (req->nhdrs == 0)
        return 400;
    h = &req->hdrs[req->nhdrs - 1];
    if (!req->last_was_value) {
        h->value_off = req->head.len;
        h->value_len = 0;
        req->last_was_value = true;
    }
    req->header_bytes += len;
    if (req->header_bytes > cfg->max_header_bytes)
        return 431;
    if (sb_buf_append(&req->head, at, len))
        return 431;
    h->value_len += len;
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int http_request_decode(http_request *req, sb_slice src, bool plus_is_space, sb_slice *out)
{
    char *dst;
    size_t i;
    if (req->decoded_cap - req->decoded_len < src.len)
        return -1;
    dst = req->decoded + req->decoded_len;
    out->ptr = dst;
    for (i = 0; i < src.len; i++) {
        char ch = src.ptr[i];
        if (ch == '%') {
            int hi, lo;
            if (src.len - i < 3)
                return -1;
            hi = hexval(src.ptr[i + 1]);
            lo = hexval(src.ptr[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            if (ch == '\0')
                return -1;
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        *dst++ = ch;
    }
    out->len = (size_t)(dst - out->ptr);
    req->decoded_len += out->len;
    return 0;
}

static int parse_query(http_request *req)
{
    const char *p = req->query_raw.ptr, *end = p + req->query_raw.len;
    size_t n = 0;
    if (!req->query_raw.len)
        return 0;
    req->query = calloc(QUERY_MAX_PAIRS, sizeof(*req->query));
    if (!req->query)
        return 500;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        sb_slice k = {p, (size_t)((eq ? eq : pe) - p)};
        sb_slice v = eq ? (sb_slice){eq + 1, (size_t)(pe - eq - 1)} : (sb_slice){p, 0};
        if (k.len) {
            if (n == QUERY_MAX_PAIRS)
                return 414;
            if (http_request_decode(req, k, true, &req->query[n].key) ||
                http_request_decode(req, v, true, &req->query[n].value))
                return 400;
            n++;
        }
        p = amp ? amp + 1 : end;
    }
    req->nquery = n;
    return 0;
}

static int http_request_headers_done(http_request *req)
{
    struct http_parser_url u;
    const char *url = req->head.data;
    size_t i;
    if (!req->url_len || !url)
        return 400;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, req->url_len, 0, &u))
        return 400;
    /* Only origin-form targets ("/path?query") are served; absolute-form would name a proxy. */
    if (!(u.field_set & (1 << UF_PATH)) || (u.field_set & (1 << UF_HOST)) ||
        url[u.field_data[UF_PATH].off] != '/')
        return 400;
    req->path = (sb_slice){url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len};
    if (u.field_set & (1 << UF_QUERY))
        req->query_raw = (sb_slice){url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len};
    /* Trailing blanks are not part of a header value (RFC 9110 5.5). */
    for (i = 0; i < req->nhdrs; i++) {
        http_hdr *h = &req->hdrs[i];
        while (h->value_len && (url[h->value_off + h->value_len - 1] == ' ' ||
                                url[h->value_off + h->value_len - 1] == '\t'))
            h->value_len--;
    }
    req->decoded_cap = 2 * req->url_len + 16;
    req->decoded = malloc(req->decoded_cap);
    if (!req->decoded)
        return 500;
    return parse_query(req);
}

int http_request_set_params(http_request *req, const char *const *names, const sb_slice *raw,
                            size_t n)
{
    size_t i;
    if (n > HTTP_MAX_PARAMS)
        return SB_EINVAL;
    req->nparams = 0;
    for (i = 0; i < n; i++) {
        req->params[i].key = sb_slice_cstr(names[i]);
        if (http_request_decode(req, raw[i], false, &req->params[i].value))
            return SB_EPROTO;
        req->nparams = i + 1;
    }
    return 0;
}

sb_slice http_request_method(const http_request *req)
{
    return sb_slice_cstr(http_method_str((enum http_method)req->method));
}

sb_slice http_request_path(const http_request *req)
{
    return req->path;
}

sb_slice http_request_header(const http_request *req, const char *name)
{
    size_t i, n = strlen(name);
    for (i = 0; i < req->nhdrs; i++) {
        const http_hdr *h = &req->hdrs[i];
        if (h->name_len == n && strncasecmp(req->head.data + h->name_off, name, n) == 0)
            return (sb_slice){req->head.data + h->value_off, h->value_len};
    }
    return (sb_slice){NULL, 0};
}

sb_slice http_request_query(const http_request *req, const char *name)
{
    size_t i;
    for (i = 0; i < req->nquery; i++)
        if (sb_slice_eq(req->query[i].key, sb_slice_cstr(name)))
            return req->query[i].value;
    return (sb_slice){NULL, 0};
}

sb_slice http_request_param(const http_request *req, const char *name)
{
    size_t i;
    for (i = 0; i < req->nparams; i++)
        if (sb_slice_eq(req->params[i].key, sb_slice_cstr(name)))
            return req->params[i].value;
    return (sb_slice){NULL, 0};
}

sb_slice http_request_body(const http_request *req)
{
    return (sb_slice){req->body.data ? req->body.data : "", req->body.len};
}

int http_request_query_ll(const http_request *req, const char *name, long long *out)
{
    sb_slice v = http_request_query(req, name);
    if (!v.ptr)
        return SB_ENOTFOUND;
    return sb_slice_to_ll(v, out) ? SB_EINVAL : 0;
}

sb_slice http_request_bearer(const http_request *req)
{
    sb_slice v = http_request_header(req, "Authorization");
    if (v.len <= 7 || strncasecmp(v.ptr, "Bearer ", 7) != 0)
        return (sb_slice){NULL, 0};
    v.ptr += 7;
    v.len -= 7;
    while (v.len && *v.ptr == ' ') {
        v.ptr++;
        v.len--;
    }
    return v.len ? v : (sb_slice){NULL, 0};
}

sb_slice http_request_last_event_id(const http_request *req)
{
    return http_request_header(req, "Last-Event-ID");
}

int http_request_peer(const http_request *req, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss), rc;
    if (!req->conn)
        return UV_ENOTCONN;
    rc = uv_tcp_getpeername(&req->conn->tcp, (struct sockaddr *)&ss, &len);
    if (rc)
        return rc;
    return uv_ip_name((const struct sockaddr *)&ss, buf, size);
}

http_server *http_request_server(const http_request *req)
{
    return req->conn->srv;
}

void http_request_set_user(http_request *req, void *user, void (*free_fn)(void *))
{
    if (req->user_free && req->user && req->user != user)
        req->user_free(req->user);
    req->user = user;
    req->user_free = free_fn;
}

void *http_request_user(const http_request *req)
{
    return req->user;
}

/* ---- the parser's callbacks: collect the request, stop at the first limit hit ---- */

static int fail(http_request *req, int status)
{
    req->error_status = status;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    http_request *req = p->data;
    req->is_started = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_request *req = p->data;
    int st = http_request_add_url(req, at, len, req->cfg->max_url_bytes);
    return st ? fail(req, st) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_request *req = p->data;
    int st = http_request_add_header_field(req, at, len, req->cfg);
    return st ? fail(req, st) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_request *req = p->data;
    int st = http_request_add_header_value(req, at, len, req->cfg);
    return st ? fail(req, st) : 0;
}

static int on_headers_complete(http_parser *p)
{
    http_request *req = p->data;
    sb_slice expect;
    int st;
    req->method = p->method;
    req->is_head = p->method == HTTP_HEAD;
    st = http_request_headers_done(req);
    if (st)
        return fail(req, st);
    /* A declared length over the limit is refused before a byte of the body is read. */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > req->cfg->max_body_bytes)
        return fail(req, 413);
    expect = http_request_header(req, "Expect");
    if (expect.len && sb_slice_eq_ci(expect, "100-continue") && p->http_major == 1 &&
        p->http_minor >= 1)
        req->wants_continue = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_request *req = p->data;
    int rc = sb_buf_append(&req->body, at, len);
    if (rc == SB_ETOOBIG)
        return fail(req, 413);
    return rc ? fail(req, 500) : 0;
}

static int on_message_complete(http_parser *p)
{
    http_request *req = p->data;
    req->keep_alive = http_should_keep_alive(p) != 0;
    /* Stop here: the next pipelined request waits until this one is answered. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int http_request_parse(http_request *req, const char *data, size_t len, size_t *consumed)
{
    size_t n = http_parser_execute(&req->parser, &parser_settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&req->parser);
    *consumed = n;
    if (req->error_status)
        return req->error_status;
    if (err == HPE_PAUSED)
        return HTTP_PARSE_READY;
    if (err != HPE_OK)
        return 400;
    return 0;
}
