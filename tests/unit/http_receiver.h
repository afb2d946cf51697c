/* http_receiver.h: a tiny HTTP/1.1 server on the test's own libuv loop, for the httpc and sink
 * tests (a test helper, header-only so each test program includes it; not product code).
 *
 * It listens on 127.0.0.1 port 0, parses requests with http_parser, records a copy of each one
 * and asks the test's handler what to do: answer (status, extra header lines, body), hold the
 * answer until rx_release() (to prove many requests are in flight at once), stall forever, or
 * close the connection without answering. Connections are kept alive between requests.
 */
#ifndef TEST_HTTP_RECEIVER_H
#define TEST_HTTP_RECEIVER_H

#include <http_parser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define RX_FN static __attribute__((unused))
#define RX_MAX_REQS 4096
#define RX_MAX_BODY (8 * 1024 * 1024)

typedef struct rx_request {
    char method[16];
    char url[1024];
    char *headers; /* "name: value\n" lines, NUL-terminated */
    size_t headers_len;
    char *body; /* NUL-terminated */
    size_t body_len;
} rx_request;

typedef enum rx_action {
    RX_REPLY, /* answer now */
    RX_HOLD,  /* answer when the test calls rx_release() */
    RX_STALL, /* never answer */
    RX_CLOSE, /* close the connection without answering */
} rx_action;

typedef struct rx_reply {
    rx_action action;
    int status;        /* default 200 */
    char headers[512]; /* extra "Name: value\r\n" lines */
    const char *body;  /* default "" (copied when sent) */
} rx_reply;

typedef struct rx_server rx_server;
typedef void (*rx_handler)(rx_server *s, const rx_request *req, rx_reply *reply, void *ud);

typedef struct rx_conn {
    uv_tcp_t tcp;
    rx_server *srv;
    http_parser parser;
    rx_request cur;
    size_t hcap, bcap;
    bool last_was_value;
    bool held;
    rx_reply held_reply;
    bool closing;
    struct rx_conn *next;
} rx_conn;

struct rx_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    rx_handler handler;
    void *ud;
    rx_conn *conns;
    rx_request reqs[RX_MAX_REQS]; /* copies of the first RX_MAX_REQS requests */
    size_t nreqs;                 /* every request seen (may exceed RX_MAX_REQS) */
    size_t nheld;
    size_t nconns_total;
    http_parser_settings settings;
    char url_base[64]; /* "http://127.0.0.1:PORT" */
};

RX_FN void rx_grow(char **p, size_t *len, size_t *cap, const char *d, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 256;
        while (nc < *len + n + 1)
            nc *= 2;
        *p = realloc(*p, nc);
        if (!*p)
            abort();
        *cap = nc;
    }
    memcpy(*p + *len, d, n);
    *len += n;
    (*p)[*len] = '\0';
}

RX_FN void rx_req_reset(rx_conn *c)
{
    free(c->cur.headers);
    free(c->cur.body);
    memset(&c->cur, 0, sizeof c->cur);
    c->hcap = c->bcap = 0;
    c->last_was_value = false;
}

/* Looks up a request header (case-insensitive name); copies its value into out. */
RX_FN bool rx_header(const rx_request *r, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    const char *p = r->headers;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > n + 1 && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t vl;
            while (*v == ' ')
                v++;
            vl = (size_t)(p + ll - v);
            if (vl >= size)
                vl = size - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        p = eol ? eol + 1 : p + ll;
    }
    return false;
}

RX_FN void rx_on_closed(uv_handle_t *h)
{
    rx_conn *c = h->data;
    rx_req_reset(c);
    free(c);
}

RX_FN void rx_conn_close(rx_conn *c)
{
    rx_conn **pp;
    if (c->closing)
        return;
    c->closing = true;
    if (c->held)
        c->srv->nheld--;
    for (pp = &c->srv->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    uv_close((uv_handle_t *)&c->tcp, rx_on_closed);
}

RX_FN void rx_on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

RX_FN void rx_send(rx_conn *c, const rx_reply *r)
{
    const char *body = r->body ? r->body : "";
    size_t blen = strlen(body), cap = blen + sizeof r->headers + 256;
    char *out = malloc(cap);
    int n;
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t b;
    if (!out || !w)
        abort();
    n = snprintf(out, cap, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n",
                 r->status ? r->status : 200, blen, r->headers);
    memcpy(out + n, body, blen);
    b = uv_buf_init(out, (unsigned)(n + (int)blen));
    w->data = out;
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, rx_on_written) != 0) {
        free(out);
        free(w);
    }
}

RX_FN int rx_on_url(http_parser *p, const char *at, size_t len)
{
    rx_conn *c = p->data;
    size_t have = strlen(c->cur.url);
    if (have + len < sizeof c->cur.url) {
        memcpy(c->cur.url + have, at, len);
        c->cur.url[have + len] = '\0';
    }
    return 0;
}

RX_FN int rx_on_hfield(http_parser *p, const char *at, size_t len)
{
    rx_conn *c = p->data;
    if (c->last_was_value)
        rx_grow(&c->cur.headers, &c->cur.headers_len, &c->hcap, "\n", 1);
    c->last_was_value = false;
    rx_grow(&c->cur.headers, &c->cur.headers_len, &c->hcap, at, len);
    return 0;
}

RX_FN int rx_on_hvalue(http_parser *p, const char *at, size_t len)
{
    rx_conn *c = p->data;
    if (!c->last_was_value)
        rx_grow(&c->cur.headers, &c->cur.headers_len, &c->hcap, ": ", 2);
    c->last_was_value = true;
    rx_grow(&c->cur.headers, &c->cur.headers_len, &c->hcap, at, len);
    return 0;
}

RX_FN int rx_on_body(http_parser *p, const char *at, size_t len)
{
    rx_conn *c = p->data;
    if (c->cur.body_len + len > RX_MAX_BODY)
        return 1;
    rx_grow(&c->cur.body, &c->cur.body_len, &c->bcap, at, len);
    return 0;
}

RX_FN int rx_on_complete(http_parser *p)
{
    rx_conn *c = p->data;
    rx_server *s = c->srv;
    rx_reply r;
    memset(&r, 0, sizeof r);
    r.status = 200;
    if (c->last_was_value)
        rx_grow(&c->cur.headers, &c->cur.headers_len, &c->hcap, "\n", 1);
    snprintf(c->cur.method, sizeof c->cur.method, "%s", http_method_str(p->method));
    if (!c->cur.body)
        rx_grow(&c->cur.body, &c->cur.body_len, &c->bcap, "", 0);
    if (!c->cur.headers)
        rx_grow(&c->cur.headers, &c->cur.headers_len, &c->hcap, "", 0);
    if (s->handler)
        s->handler(s, &c->cur, &r, s->ud);
    if (s->nreqs < RX_MAX_REQS) {
        s->reqs[s->nreqs] = c->cur; /* the copy takes the buffers */
        memset(&c->cur, 0, sizeof c->cur);
        c->hcap = c->bcap = 0;
    }
    s->nreqs++;
    rx_req_reset(c);
    switch (r.action) {
    case RX_REPLY:
        rx_send(c, &r);
        break;
    case RX_HOLD:
        c->held = true;
        c->held_reply = r;
        s->nheld++;
        break;
    case RX_STALL:
        break;
    case RX_CLOSE:
        rx_conn_close(c);
        return 1; /* stop parsing */
    }
    return 0;
}

RX_FN void rx_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = b->base ? sz : 0;
}

RX_FN void rx_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    rx_conn *c = st->data;
    if (n < 0) {
        rx_conn_close(c);
    } else if (n > 0 && !c->closing) {
        size_t used = http_parser_execute(&c->parser, &c->srv->settings, b->base, (size_t)n);
        if (!c->closing && (used != (size_t)n || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK))
            rx_conn_close(c);
    }
    free(b->base);
}

RX_FN void rx_on_conn(uv_stream_t *l, int status)
{
    rx_server *s = l->data;
    rx_conn *c;
    if (status < 0)
        return;
    c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, rx_on_closed);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = s->conns;
    s->conns = c;
    s->nconns_total++;
    uv_read_start((uv_stream_t *)&c->tcp, rx_alloc, rx_on_read);
}

/* Starts listening on 127.0.0.1:0; the port is in s->port, the base URL in s->url_base. */
RX_FN int rx_start(rx_server *s, uv_loop_t *loop, rx_handler h, void *ud)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got, rc;
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->handler = h;
    s->ud = ud;
    s->settings.on_url = rx_on_url;
    s->settings.on_header_field = rx_on_hfield;
    s->settings.on_header_value = rx_on_hvalue;
    s->settings.on_body = rx_on_body;
    s->settings.on_message_complete = rx_on_complete;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    if ((rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0)) != 0)
        return rc;
    if ((rc = uv_listen((uv_stream_t *)&s->listener, 1024, rx_on_conn)) != 0)
        return rc;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    snprintf(s->url_base, sizeof s->url_base, "http://127.0.0.1:%d", s->port);
    return 0;
}

/* Sends every held answer. */
RX_FN void rx_release(rx_server *s)
{
    for (rx_conn *c = s->conns; c; c = c->next)
        if (c->held) {
            c->held = false;
            s->nheld--;
            rx_send(c, &c->held_reply);
        }
}

/* Closes the listener and every connection; run the loop afterwards to finish closing. */
RX_FN void rx_stop(rx_server *s)
{
    while (s->conns)
        rx_conn_close(s->conns);
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, NULL);
    for (size_t i = 0; i < s->nreqs && i < RX_MAX_REQS; i++) {
        free(s->reqs[i].headers);
        free(s->reqs[i].body);
    }
    s->nreqs = 0;
}

#endif
