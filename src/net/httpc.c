/* httpc.c: libcurl's multi-socket interface on the libuv loop (curl's docs/examples/multi-uv.c
 * pattern). curl tells us which sockets to watch (socket callback -> one uv_poll_t per socket)
 * and when to wake it (timer callback -> one uv_timer_t); we hand readiness back with
 * curl_multi_socket_action() and collect finished transfers with curl_multi_info_read().
 *
 * Requests beyond max_inflight wait in a FIFO queue of our own (rather than curl's pending list)
 * so that a request's timeout counts from httpc_request() and a queued request can expire. User
 * callbacks only ever run from libuv callbacks, outside any curl call, so they may start new
 * requests or free the client; freeing from inside a callback is deferred to the end of the
 * outermost libuv callback (`depth`).
 */
#include "net/httpc.h"

#include "core/buf.h"
#include "core/error.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef SB_VERSION
#define SB_VERSION "0"
#endif

typedef struct httpc_sock httpc_sock;
typedef struct httpc_xfer httpc_xfer;

struct httpc_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    httpc *c;
    httpc_sock *prev, *next;
};

struct httpc_xfer {
    httpc *c;
    CURL *easy;
    struct curl_slist *hdrs;
    char *url;
    char *body;
    size_t body_len;
    char *sigv4;
    char *user;
    char *pass;
    httpc_cb cb;
    void *ud;
    uint64_t start_ns;    /* uv_hrtime at httpc_request */
    uint64_t deadline_ms; /* uv_now scale */
    size_t max_body;
    sb_buf rbody;
    sb_buf rhdrs;
    bool truncated;
    bool running;
    char errbuf[CURL_ERROR_SIZE];
    httpc_xfer *prev, *next;
};

typedef struct httpc_list {
    httpc_xfer *head, *tail;
    size_t n;
} httpc_list;

struct httpc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;  /* curl's timeout */
    uv_timer_t qtimer; /* earliest deadline among queued requests */
    uint64_t qdue;     /* what qtimer is armed for (UINT64_MAX: idle) */
    httpc_opts o;
    char *user_agent;
    httpc_list running;
    httpc_list queued;
    httpc_sock *socks;
    int open_handles; /* libuv handles not yet closed; the struct lives until 0 */
    int depth;        /* nesting of our libuv callbacks */
    bool freeing;
    bool torn_down;
    unsigned long long n_requests, n_responses, n_errors, n_timeouts;
};

static pthread_once_t httpc_curl_once = PTHREAD_ONCE_INIT;
static CURLcode httpc_curl_init_rc = CURLE_FAILED_INIT;

static void httpc_curl_init(void)
{
    httpc_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void list_push(httpc_list *l, httpc_xfer *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail)
        l->tail->next = x;
    else
        l->head = x;
    l->tail = x;
    l->n++;
}

static void list_unlink(httpc_list *l, httpc_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        l->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        l->tail = x->prev;
    x->prev = x->next = NULL;
    l->n--;
}

static void xfer_free(httpc_xfer *x)
{
    if (!x)
        return;
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    free(x->url);
    free(x->body);
    free(x->sigv4);
    if (x->pass)
        OPENSSL_cleanse(x->pass, strlen(x->pass));
    free(x->user);
    free(x->pass);
    sb_buf_free(&x->rbody);
    sb_buf_free(&x->rhdrs);
    free(x);
}

static int map_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return SB_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return SB_ENOTFOUND;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return SB_EINVAL;
    case CURLE_OUT_OF_MEMORY:
        return SB_ENOMEM;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return SB_EAUTH;
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return SB_EDISCONN;
    case CURLE_WEIRD_SERVER_REPLY:
        return SB_EPROTO;
    default:
        return SB_EIO;
    }
}

/* Hands the result to the user and frees the transfer. x is already off both lists. */
static void xfer_finish(httpc_xfer *x, int err, const char *words)
{
    httpc_resp r;
    long status = 0;
    memset(&r, 0, sizeof r);
    if (x->easy)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    r.err = err;
    r.status = status;
    r.error = err == 0 ? "" : (words && *words ? words : sb_strerror(err));
    r.body = (sb_slice){x->rbody.data ? x->rbody.data : "", x->rbody.len};
    r.truncated = x->truncated;
    r.headers = (sb_slice){x->rhdrs.data ? x->rhdrs.data : "", x->rhdrs.len};
    r.total_s = (double)(uv_hrtime() - x->start_ns) / 1e9;
    if (err == 0)
        x->c->n_responses++;
    else
        x->c->n_errors++;
    if (err == SB_ETIMEDOUT)
        x->c->n_timeouts++;
    x->cb(&r, x->ud);
    xfer_free(x);
}

static void on_qtimer(uv_timer_t *t);

/* Arms the queue timer for the earliest deadline among queued requests (one O(n) scan: only
 * when the timer fires, never per request). */
static void qtimer_rearm(httpc *c)
{
    uint64_t now = uv_now(c->loop), first = UINT64_MAX;
    if (c->freeing)
        return;
    for (httpc_xfer *x = c->queued.head; x; x = x->next)
        if (x->deadline_ms < first)
            first = x->deadline_ms;
    c->qdue = first;
    if (first == UINT64_MAX)
        uv_timer_stop(&c->qtimer);
    else
        uv_timer_start(&c->qtimer, on_qtimer, first > now ? first - now : 0, 0);
}

/* A request joins the queue: move the timer earlier if its deadline is the new first. */
static void qtimer_note(httpc *c, uint64_t deadline)
{
    uint64_t now = uv_now(c->loop);
    if (deadline >= c->qdue)
        return;
    c->qdue = deadline;
    uv_timer_start(&c->qtimer, on_qtimer, deadline > now ? deadline - now : 0, 0);
}

/* Adds x to the multi handle. Returns 0 or an SB_* error (x untouched, still off the lists). */
static int xfer_start(httpc *c, httpc_xfer *x)
{
    uint64_t now = uv_now(c->loop);
    long left = x->deadline_ms > now ? (long)(x->deadline_ms - now) : 0;
    long ct = c->o.connect_timeout_ms;
    if (left <= 0)
        return SB_ETIMEDOUT;
    if (ct > left)
        ct = left;
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, left);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, ct);
    if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK)
        return SB_ENOMEM;
    x->running = true;
    list_push(&c->running, x);
    return 0;
}

/* Moves queued requests into free slots; expired ones complete with SB_ETIMEDOUT. */
static void start_queued(httpc *c)
{
    while (!c->freeing && c->queued.head && c->running.n < c->o.max_inflight) {
        httpc_xfer *x = c->queued.head;
        int rc;
        list_unlink(&c->queued, x);
        rc = xfer_start(c, x);
        if (rc)
            xfer_finish(x, rc,
                        rc == SB_ETIMEDOUT ? "timed out waiting for a free transfer slot"
                                           : "cannot add the transfer");
    }
    if (!c->queued.head && c->qdue != UINT64_MAX) {
        c->qdue = UINT64_MAX;
        uv_timer_stop(&c->qtimer);
    }
}

static void check_done(httpc *c)
{
    CURLMsg *msg;
    int left;
    while (!c->freeing && (msg = curl_multi_info_read(c->multi, &left))) {
        httpc_xfer *x = NULL;
        CURLcode rc;
        if (msg->msg != CURLMSG_DONE)
            continue;
        rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(c->multi, msg->easy_handle);
        list_unlink(&c->running, x);
        x->running = false;
        xfer_finish(x, map_curl_error(rc),
                    rc ? (x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc)) : NULL);
    }
    start_queued(c);
}

static void on_handle_closed(uv_handle_t *h);

/* Closes every libuv handle and the multi handle; the struct goes with the last close. */
static void teardown(httpc *c)
{
    httpc_sock *s, *next;
    if (c->torn_down)
        return;
    c->torn_down = true;
    for (s = c->socks; s; s = next) {
        next = s->next;
        curl_multi_assign(c->multi, s->fd, NULL);
        uv_poll_stop(&s->poll);
        uv_close((uv_handle_t *)&s->poll, on_handle_closed);
    }
    c->socks = NULL;
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->qtimer, on_handle_closed);
}

static void leave(httpc *c)
{
    if (--c->depth == 0 && c->freeing)
        teardown(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    httpc *c = h->data;
    if (h->type == UV_POLL)
        free(h); /* the poll is the first member of httpc_sock */
    if (--c->open_handles == 0 && c->torn_down) {
        free(c->user_agent);
        free(c);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    httpc_sock *s = (httpc_sock *)h;
    httpc *c = s->c;
    int flags = 0, running = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    c->depth++;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_done(c);
    leave(c);
}

static void on_timer(uv_timer_t *t)
{
    httpc *c = t->data;
    int running = 0;
    c->depth++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
    leave(c);
}

static void on_qtimer(uv_timer_t *t)
{
    httpc *c = t->data;
    uint64_t now = uv_now(c->loop);
    httpc_list expired = {0};
    httpc_xfer *x, *next;
    c->depth++;
    for (x = c->queued.head; x; x = next) {
        next = x->next;
        if (x->deadline_ms <= now) {
            list_unlink(&c->queued, x);
            list_push(&expired, x);
        }
    }
    while ((x = expired.head)) {
        list_unlink(&expired, x);
        if (c->freeing)
            xfer_finish(x, SB_ECANCELED, "client freed");
        else
            xfer_finish(x, SB_ETIMEDOUT, "timed out waiting for a free transfer slot");
    }
    start_queued(c);
    qtimer_rearm(c);
    leave(c);
}

/* curl: watch (or stop watching) socket fd. */
static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    httpc *c = userp;
    httpc_sock *s = socketp;
    int events = 0;
    (void)e;
    if (c->torn_down)
        return 0;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            if (s->prev)
                s->prev->next = s->next;
            else
                c->socks = s->next;
            if (s->next)
                s->next->prev = s->prev;
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_handle_closed);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->poll.data = c;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* curl: wake me in timeout_ms (-1: never). Never calls back into curl from here. */
static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    httpc *c = userp;
    (void)m;
    if (c->torn_down)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    httpc_xfer *x = ud;
    size_t len = size * n, room = x->max_body - x->rbody.len, take = len < room ? len : room;
    if (take && sb_buf_append(&x->rbody, p, take) != 0)
        return 0; /* out of memory: abort the transfer */
    if (take < len)
        x->truncated = true;
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    httpc_xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new response (after 100 Continue or an informational one): keep only the last. */
        sb_buf_reset(&x->rhdrs);
        x->truncated = false;
        return len;
    }
    if (len <= 2)
        return len; /* the blank line ending the block */
    if (x->rhdrs.len + len <= x->rhdrs.max)
        sb_buf_append(&x->rhdrs, p, len); /* a header beyond the cap is dropped */
    return len;
}

static bool header_line_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return false;
    return strpbrk(h, "\r\n") == NULL;
}

static bool has_header(const char *const *hs, const char *name)
{
    size_t n = strlen(name);
    for (; hs && *hs; hs++)
        if (strncasecmp(*hs, name, n) == 0 && (*hs)[n] == ':')
            return true;
    return false;
}

static int add_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *t = curl_slist_append(*l, line);
    if (!t)
        return SB_ENOMEM;
    *l = t;
    return 0;
}

static int sha256_hex(const char *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return SB_EIO;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* Builds the easy handle and copies everything the request borrows. */
static int xfer_setup(httpc *c, httpc_xfer *x, const httpc_req *req)
{
    const char *method = req->method;
    CURL *e;
    int rc;
    char line[256];

    if (!method)
        method = req->body.len ? "POST" : "GET";
    x->url = dup_str(req->url);
    if (!x->url)
        return SB_ENOMEM;
    if (req->body.len && !x->body) {
        x->body = malloc(req->body.len);
        if (!x->body)
            return SB_ENOMEM;
        memcpy(x->body, req->body.ptr, req->body.len);
        x->body_len = req->body.len;
    }
    for (const char *const *h = req->headers; h && *h; h++) {
        if (!header_line_ok(*h))
            return SB_EINVAL;
        if ((rc = add_header(&x->hdrs, *h)))
            return rc;
    }
    /* No "Expect: 100-continue" round trip: our bodies are small and receivers vary. Not for
     * SigV4: curl 7.88 signs the empty "expect" header that is never sent, and AWS would reject
     * the signature (curl adds Expect only above 1 MiB, after signing, which AWS accepts). */
    if (!req->aws && (rc = add_header(&x->hdrs, "Expect:")))
        return rc;
    if (x->body_len && !has_header(req->headers, "Content-Type") &&
        (rc = add_header(&x->hdrs, "Content-Type: application/octet-stream")))
        return rc;

    x->easy = e = curl_easy_init();
    if (!e)
        return SB_ENOMEM;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);

    if (strcmp(method, "GET") == 0 && !x->body_len) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (x->body_len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0) {
        /* POSTFIELDS, not a read callback: curl's SigV4 hashes POSTFIELDS only. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }

    if (req->aws) {
        const httpc_aws *a = req->aws;
        char hex[65];
        if (!a->region || !a->service || !a->access_key || !a->secret_key || !*a->region ||
            !*a->service || strchr(a->region, ':') || strchr(a->service, ':'))
            return SB_EINVAL;
        if (snprintf(line, sizeof line, "aws:amz:%s:%s", a->region, a->service) >= (int)sizeof line)
            return SB_EINVAL;
        x->sigv4 = dup_str(line);
        x->user = dup_str(a->access_key);
        x->pass = dup_str(a->secret_key);
        if (!x->sigv4 || !x->user || !x->pass)
            return SB_ENOMEM;
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, x->sigv4);
        curl_easy_setopt(e, CURLOPT_USERNAME, x->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, x->pass);
        if (a->session_token && *a->session_token) {
            struct curl_slist *t;
            sb_buf tok;
            sb_buf_init(&tok, 8192);
            if (strpbrk(a->session_token, "\r\n") ||
                sb_buf_printf(&tok, "X-Amz-Security-Token: %s", a->session_token) != 0) {
                sb_buf_free(&tok);
                return SB_EINVAL;
            }
            t = curl_slist_append(x->hdrs, tok.data);
            sb_buf_free(&tok);
            if (!t)
                return SB_ENOMEM;
            x->hdrs = t;
        }
        /* S3 requires x-amz-content-sha256; curl 7.88 does not add it, later versions do and
         * use ours when present. The hash covers exactly the POSTFIELDS bytes. */
        if (strcmp(a->service, "s3") == 0 && !has_header(req->headers, "x-amz-content-sha256")) {
            if ((rc = sha256_hex(x->body ? x->body : "", x->body_len, hex)))
                return rc;
            snprintf(line, sizeof line, "x-amz-content-sha256: %s", hex);
            if ((rc = add_header(&x->hdrs, line)))
                return rc;
        }
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    return 0;
}

httpc *httpc_new(uv_loop_t *loop, const httpc_opts *opts)
{
    httpc *c;
    char ua[64];
    pthread_once(&httpc_curl_once, httpc_curl_init);
    if (httpc_curl_init_rc != CURLE_OK || !loop)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    if (opts)
        c->o = *opts;
    if (!c->o.max_inflight)
        c->o.max_inflight = 64;
    if (!c->o.max_queued)
        c->o.max_queued = 10000;
    if (c->o.timeout_ms <= 0)
        c->o.timeout_ms = 10000;
    if (c->o.connect_timeout_ms <= 0)
        c->o.connect_timeout_ms = 5000;
    if (!c->o.max_body)
        c->o.max_body = 1024 * 1024;
    if (!c->o.max_headers)
        c->o.max_headers = 16 * 1024;
    snprintf(ua, sizeof ua, "switchboard/%s", SB_VERSION);
    c->user_agent = dup_str(c->o.user_agent ? c->o.user_agent : ua);
    c->o.user_agent = NULL;
    c->multi = curl_multi_init();
    if (!c->user_agent || !c->multi)
        goto fail;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->o.max_inflight);
    if (c->o.max_host_conns)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->o.max_host_conns);
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->qtimer);
    c->timer.data = c;
    c->qtimer.data = c;
    c->open_handles = 2;
    c->qdue = UINT64_MAX;
    return c;
fail:
    if (c->multi)
        curl_multi_cleanup(c->multi);
    free(c->user_agent);
    free(c);
    return NULL;
}

void httpc_free(httpc *c)
{
    httpc_xfer *x;
    if (!c || c->freeing)
        return;
    c->freeing = true;
    c->depth++;
    uv_timer_stop(&c->qtimer);
    while ((x = c->running.head)) {
        list_unlink(&c->running, x);
        curl_multi_remove_handle(c->multi, x->easy);
        x->running = false;
        xfer_finish(x, SB_ECANCELED, "client freed");
    }
    while ((x = c->queued.head)) {
        list_unlink(&c->queued, x);
        xfer_finish(x, SB_ECANCELED, "client freed");
    }
    leave(c);
}

int httpc_request(httpc *c, const httpc_req *req, httpc_cb cb, void *ud)
{
    httpc_xfer *x = NULL;
    long timeout;
    int rc = 0;
    char *given = req && req->is_body_given ? (char *)req->body.ptr : NULL;
    if (!c || !req || !req->url || !*req->url || !cb || (req->body.len && !req->body.ptr))
        rc = SB_EINVAL;
    else if (c->freeing)
        rc = SB_ECANCELED;
    else if (c->running.n >= c->o.max_inflight && c->queued.n >= c->o.max_queued)
        rc = SB_ETOOBIG;
    else if (!(x = calloc(1, sizeof *x)))
        rc = SB_ENOMEM;
    if (rc) {
        free(given);
        return rc;
    }
    if (given) { /* the transfer owns it from here on (xfer_free) */
        x->body = given;
        x->body_len = req->body.len;
    }
    x->c = c;
    x->cb = cb;
    x->ud = ud;
    x->max_body = req->max_body ? req->max_body : c->o.max_body;
    sb_buf_init(&x->rbody, x->max_body);
    sb_buf_init(&x->rhdrs, c->o.max_headers);
    timeout = req->timeout_ms > 0 ? req->timeout_ms : c->o.timeout_ms;
    x->start_ns = uv_hrtime();
    uv_update_time(c->loop);
    x->deadline_ms = uv_now(c->loop) + (uint64_t)timeout;
    if ((rc = xfer_setup(c, x, req)))
        goto fail;
    if (c->running.n < c->o.max_inflight && !c->queued.head) {
        if ((rc = xfer_start(c, x)))
            goto fail;
    } else {
        list_push(&c->queued, x);
        qtimer_note(c, x->deadline_ms);
    }
    c->n_requests++;
    return 0;
fail:
    xfer_free(x);
    return rc;
}

uv_loop_t *httpc_loop(const httpc *c)
{
    return c->loop;
}

size_t httpc_pending(const httpc *c)
{
    return c ? c->running.n + c->queued.n : 0;
}

void httpc_stats_get(const httpc *c, httpc_stats *st)
{
    *st = (httpc_stats){.running = c->running.n,
                        .queued = c->queued.n,
                        .requests = c->n_requests,
                        .responses = c->n_responses,
                        .errors = c->n_errors,
                        .timeouts = c->n_timeouts};
}
