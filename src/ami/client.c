/* client.c: one AMI connection to one Asterisk, on the libuv loop (see client.h).
 *
 * Life of a connection: resolve (only for host names) -> TCP connect -> banner -> [Challenge]
 * -> Login -> Filter actions -> READY (the login steps are in login.c). One timer bounds that
 * whole path (connect_timeout_ms) and, between attempts, waits out the back-off; a second timer
 * does keepalive and stall detection; a third serves every action's deadline (actions.c keeps
 * them in a heap and completes them). Any failure drops the connection, fails the pending actions
 * with SB_EDISCONN and schedules the next attempt.
 *
 * The read path allocates nothing per packet: libuv reads straight into the codec's free space
 * and events are dispatched from the codec's own packet. Only actions that must outlive one read
 * (list items, the Response of a list or an originate) are copied.
 *
 * Re-entrancy: every user callback may call ami_client_send(), _stop() or _free(). After a
 * callback the code checks whether its connection is still the current one before going on, and
 * the client's memory is released only from the last close callback, never inside a callback.
 */
#include "ami/client.h"

#include "ami/internal.h"
#include "core/error.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_SUB "ami"
/* Bytes queued for writing beyond which ami_client_send() refuses (the peer is not reading). */
#define WRITE_QUEUE_MAX (16u * 1024 * 1024)
typedef struct ami_wreq {
    uv_write_t req;
    ami_client *c;
    ami_conn *conn;
    size_t len;
    bool sensitive;
    char data[];
} ami_wreq;

static void attempt_start(ami_client *c);
void ami_client_drop(ami_client *c, const char *why, bool retry);
static void on_ka_timer(uv_timer_t *t);

/* ---- small helpers ----------------------------------------------------------------------- */

const char *ami_client_state_name(ami_client_state st)
{
    switch (st) {
    case AMI_STATE_STOPPED:
        return "stopped";
    case AMI_STATE_CONNECTING:
        return "connecting";
    case AMI_STATE_LOGGING_IN:
        return "logging-in";
    case AMI_STATE_READY:
        return "ready";
    }
    return "unknown";
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void ami_client_set_state(ami_client *c, ami_client_state st, const char *why)
{
    bool same = st == c->state && strcmp(why, c->last_why) == 0;
    c->state = st;
    snprintf(c->last_why, sizeof c->last_why, "%s", why);
    if (!same && !c->freeing && c->cbs.on_state)
        c->cbs.on_state(c, st, why, c->cbs.ud);
}

static uint32_t rng_next(ami_client *c)
{
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return (uint32_t)(x >> 32);
}

/* Exponential back-off with "equal jitter": a delay in [base/2, base], base doubling from
 * reconnect_min_ms to reconnect_max_ms, never below the minimum. Jitter keeps a fleet of clients
 * from hammering an Asterisk that just restarted all at the same instant. */
static uint32_t backoff_next(ami_client *c)
{
    uint64_t base = (uint64_t)c->cfg.reconnect_min_ms
                    << (c->backoff_attempt < 31 ? c->backoff_attempt : 31);
    if (base > c->cfg.reconnect_max_ms)
        base = c->cfg.reconnect_max_ms;
    uint64_t d = base / 2 + rng_next(c) % (base / 2 + 1);
    if (d < c->cfg.reconnect_min_ms)
        d = c->cfg.reconnect_min_ms;
    if (c->backoff_attempt < 31)
        c->backoff_attempt++;
    return (uint32_t)d;
}

/* Copies an untrusted slice into a short printable reason string. */
void ami_reason_copy(sb_slice s, char *dst, size_t size)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        dst[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    dst[n] = '\0';
}

static void maybe_release(ami_client *c)
{
    if (!c->freeing || c->handles > 0)
        return;
    ami_pending_set_free(&c->pending);
    ami_codec_free(&c->codec);
    free(c->name);
    free(c->host);
    free(c->username);
    if (c->secret) {
        OPENSSL_cleanse(c->secret, strlen(c->secret));
        free(c->secret);
    }
    free(c->events);
    for (size_t i = 0; i < c->cfg.nfilters; i++)
        free(c->filters[i]);
    free(c->filters);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    ami_client *c = h->data;
    c->handles--;
    maybe_release(c);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void on_write_done(uv_write_t *req, int status)
{
    ami_wreq *w = (ami_wreq *)req;
    ami_client *c = w->c;
    if (w->sensitive)
        OPENSSL_cleanse(w->data, w->len);
    if (status < 0 && w->conn == c->conn && !w->conn->closing) {
        SB_WARN(LOG_SUB, "pbx %s: write failed: %s", c->name, uv_strerror(status));
        ami_client_drop(c, "write failed", true);
    }
    free(w);
}

/* Writes len bytes on the current connection: straight away when the socket takes them,
 * otherwise a copy is queued. Returns 0 or a negative code (the connection is then unusable). */
static int conn_write(ami_client *c, const char *data, size_t len, bool sensitive)
{
    ami_conn *conn = c->conn;
    if (!conn || conn->closing)
        return SB_EDISCONN;
    uv_stream_t *s = (uv_stream_t *)&conn->tcp;
    if (uv_stream_get_write_queue_size(s) > WRITE_QUEUE_MAX)
        return SB_ETOOBIG;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(s, &b, 1);
    if (n >= 0 && (size_t)n == len)
        return 0;
    if (n < 0 && n != UV_EAGAIN)
        return n;
    size_t done = n > 0 ? (size_t)n : 0;
    ami_wreq *w = malloc(sizeof *w + (len - done));
    if (!w)
        return SB_ENOMEM;
    w->c = c;
    w->conn = conn;
    w->len = len - done;
    w->sensitive = sensitive;
    memcpy(w->data, data + done, len - done);
    b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, s, &b, 1, on_write_done);
    if (rc < 0) {
        if (sensitive)
            OPENSSL_cleanse(w->data, w->len);
        free(w);
        return rc;
    }
    return 0;
}

/* True when the serialized action has an "Async" header with a true value. A synchronous
 * Originate never sends OriginateResponse (fixture 06, rec-5): waiting for one would only end in
 * a timeout, so such an action is treated as SIMPLE. */
static bool msg_is_async(const char *data, size_t len)
{
    static const char key[] = "\r\nasync:";
    size_t kl = sizeof key - 1;
    for (size_t i = 0; i + kl <= len; i++) {
        if (strncasecmp(data + i, key, kl) != 0)
            continue;
        size_t j = i + kl;
        while (j < len && data[j] == ' ')
            j++;
        size_t e = j;
        while (e < len && data[e] != '\r')
            e++;
        sb_slice v = {data + j, e - j};
        return sb_slice_eq_ci(v, "true") || sb_slice_eq_ci(v, "yes") || sb_slice_eq_ci(v, "1");
    }
    return false;
}

int ami_client_send_action(ami_client *c, ami_msg *m, ami_action_kind kind, uint32_t timeout_ms,
                           ami_result_cb cb, void *ud, bool internal, bool sensitive,
                           char *action_id, size_t action_id_size)
{
    ami_pending *p = NULL;
    const char *data;
    size_t len;
    int rc;

    if (kind != AMI_ACTION_SIMPLE && kind != AMI_ACTION_LIST && kind != AMI_ACTION_ORIGINATE) {
        rc = SB_EINVAL;
        goto out;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        rc = SB_ENOMEM;
        goto out;
    }
    int n = snprintf(p->id, sizeof p->id, "%s%llu", c->id_prefix, (unsigned long long)++c->next_id);
    if (n < 0 || (size_t)n >= sizeof p->id) {
        rc = SB_EINVAL;
        goto out;
    }
    p->idlen = (size_t)n;
    if (action_id && action_id_size <= p->idlen) {
        rc = SB_EINVAL;
        goto out;
    }
    ami_msg_add(m, "ActionID", p->id);
    rc = ami_msg_finish(m, &data, &len);
    if (rc < 0) {
        rc = SB_EINVAL;
        goto out;
    }
    if (kind == AMI_ACTION_ORIGINATE && !msg_is_async(data, len))
        kind = AMI_ACTION_SIMPLE;
    p->kind = kind;
    p->cb = cb;
    p->ud = ud;
    p->internal = internal;
    p->deadline = uv_now(c->loop) + (timeout_ms ? timeout_ms : c->cfg.action_timeout_ms);
    rc = conn_write(c, data, len, sensitive);
    if (sensitive)
        OPENSSL_cleanse(m->buf.data, m->buf.len);
    if (rc < 0) {
        if (rc != SB_ETOOBIG && rc != SB_ENOMEM) {
            /* The socket is broken: drop it from the loop, not under the caller's feet. */
            c->drop_requested = true;
            uv_timer_start(&c->ka_timer, on_ka_timer, 0, 0);
            rc = SB_EDISCONN;
        }
        goto out;
    }
    rc = ami_pending_insert(&c->pending, p);
    if (rc < 0) {
        /* Written but untracked: its answer will be ignored as unknown. */
        goto out;
    }
    if (action_id)
        memcpy(action_id, p->id, p->idlen + 1);
    if (!internal)
        c->st.actions_sent++;
    p = NULL;
    ami_actions_timer_arm(c);
out:
    ami_pending_release(p);
    ami_msg_free(m);
    return rc;
}

int ami_client_send(ami_client *c, ami_msg *m, ami_action_kind kind, uint32_t timeout_ms,
                    ami_result_cb cb, void *ud, char *action_id, size_t action_id_size)
{
    if (!c || !m || !cb || m->buf.len == 0) { /* an empty m was never initialized or was sent */
        if (m)
            ami_msg_free(m);
        return SB_EINVAL;
    }
    if (c->state != AMI_STATE_READY || c->drop_requested) {
        ami_msg_free(m);
        return SB_EDISCONN;
    }
    return ami_client_send_action(c, m, kind, timeout_ms, cb, ud, false, false, action_id,
                                  action_id_size);
}

/* ---- keepalive --------------------------------------------------------------------------- */

static void on_ping_result(ami_client *c, const ami_result *r, void *ud)
{
    (void)ud;
    if (r->status != 0 && r->status != SB_EDISCONN && r->status != SB_ECANCELED)
        SB_DEBUG(LOG_SUB, "pbx %s: keepalive Ping: %s", c->name, sb_strerror(r->status));
}

void ami_client_ka_arm(ami_client *c)
{
    uint64_t now = uv_now(c->loop);
    uint64_t since = c->last_rx > c->last_ping ? c->last_rx : c->last_ping;
    uint64_t due_ping = since + c->cfg.ping_interval_ms;
    uint64_t due_stall = c->last_rx + c->cfg.stall_timeout_ms;
    uint64_t due = due_ping < due_stall ? due_ping : due_stall;
    uv_timer_start(&c->ka_timer, on_ka_timer, due > now ? due - now : 0, 0);
}

static void on_ka_timer(uv_timer_t *t)
{
    ami_client *c = t->data;
    if (c->drop_requested) {
        c->drop_requested = false;
        if (c->conn) {
            SB_WARN(LOG_SUB, "pbx %s: write failed; dropping the connection", c->name);
            ami_client_drop(c, "write failed", true);
        }
        return;
    }
    if (c->state != AMI_STATE_READY)
        return;
    uint64_t now = uv_now(c->loop);
    if (now - c->last_rx >= c->cfg.stall_timeout_ms) {
        char why[96];
        c->st.stalls++;
        snprintf(why, sizeof why, "stalled: nothing received for %llu ms",
                 (unsigned long long)(now - c->last_rx));
        SB_WARN(LOG_SUB, "pbx %s: %s; dropping the connection", c->name, why);
        ami_client_drop(c, why, true);
        return;
    }
    uint64_t since = c->last_rx > c->last_ping ? c->last_rx : c->last_ping;
    if (now - since >= c->cfg.ping_interval_ms) {
        ami_msg m;
        c->last_ping = now;
        ami_msg_init(&m, "Action", "Ping");
        if (ami_client_send_action(c, &m, AMI_ACTION_SIMPLE, 0, on_ping_result, NULL, true, false,
                                   NULL, 0) < 0)
            return; /* drop_requested re-armed the timer */
    }
    ami_client_ka_arm(c);
}

/* ---- connection life --------------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    ami_conn *conn = h->data;
    ami_client *c = conn->c;
    free(conn);
    c->handles--;
    maybe_release(c);
}

/* Closes the transport of the current attempt (connection and resolver), without callbacks. */
static void transport_close(ami_client *c)
{
    if (c->resolving) {
        uv_cancel((uv_req_t *)&c->resolving->req); /* its callback still runs and frees it */
        c->resolving = NULL;
    }
    if (c->conn) {
        ami_conn *conn = c->conn;
        c->conn = NULL;
        conn->closing = true;
        uv_read_stop((uv_stream_t *)&conn->tcp);
        uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
    }
}

static void on_retry_timer(uv_timer_t *t)
{
    ami_client *c = t->data;
    if (c->state == AMI_STATE_STOPPED)
        return;
    c->st.reconnects++;
    attempt_start(c);
}

/* Ends the current attempt or session. retry: schedule the next attempt after the back-off (state
 * CONNECTING), otherwise the client stops. Pending actions fail with SB_EDISCONN (SB_ECANCELED
 * when stopping). The caller has logged why. */
void ami_client_drop(ami_client *c, const char *why, bool retry)
{
    transport_close(c);
    uv_timer_stop(&c->ka_timer);
    uv_timer_stop(&c->conn_timer);
    c->drop_requested = false;
    if (retry && !c->freeing) {
        uint32_t delay = backoff_next(c);
        SB_DEBUG(LOG_SUB, "pbx %s: next attempt in %u ms", c->name, delay);
        uv_timer_start(&c->conn_timer, on_retry_timer, delay, 0);
        ami_client_set_state(c, AMI_STATE_CONNECTING, why);
        ami_actions_fail_all(c, SB_EDISCONN);
    } else {
        ami_client_set_state(c, AMI_STATE_STOPPED, why);
        ami_actions_fail_all(c, SB_ECANCELED);
    }
}

/* A connection attempt failed before login: log a new reason at WARN, a repeated one at DEBUG. */
void ami_client_attempt_failed(ami_client *c, const char *why)
{
    if (strcmp(why, c->last_failure) != 0) {
        SB_WARN(LOG_SUB, "pbx %s: cannot connect to %s:%d: %s; retrying with back-off", c->name,
                c->host, c->cfg.port, why);
        snprintf(c->last_failure, sizeof c->last_failure, "%s", why);
    } else {
        SB_DEBUG(LOG_SUB, "pbx %s: cannot connect to %s:%d: %s", c->name, c->host, c->cfg.port,
                 why);
    }
    ami_client_drop(c, why, true);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ami_conn *conn = h->data;
    char *p;
    size_t n;
    (void)suggested;
    ami_codec_space(&conn->c->codec, &p, &n);
    *buf = uv_buf_init(p, (unsigned)n);
}

static void codec_error(ami_client *c, int err)
{
    uint64_t now = uv_now(c->loop);
    if (!c->codec_logged || now - c->codec_log_at >= 1000) {
        SB_WARN(LOG_SUB, "pbx %s: bad AMI input dropped: %s (%llu more since the last report)",
                c->name, sb_strerror(err), (unsigned long long)c->codec_suppressed);
        c->codec_logged = true;
        c->codec_log_at = now;
        c->codec_suppressed = 0;
    } else {
        c->codec_suppressed++;
    }
}

static void on_banner(ami_client *c, const ami_packet *pkt)
{
    static const char prefix[] = "Asterisk Call Manager/";
    sb_slice line = pkt->name;
    size_t pl = sizeof prefix - 1;
    if (line.len >= pl && memcmp(line.ptr, prefix, pl) == 0) {
        ami_reason_copy((sb_slice){line.ptr + pl, line.len - pl}, c->version, sizeof c->version);
    } else {
        /* Forks rebrand the prefix (protocol-facts §1.2): log it and carry on. */
        char shown[96];
        const char *slash = memchr(line.ptr, '/', line.len);
        ami_reason_copy(line, shown, sizeof shown);
        SB_INFO(LOG_SUB, "pbx %s: unexpected banner \"%s\"; continuing", c->name, shown);
        if (slash)
            ami_reason_copy((sb_slice){slash + 1, line.len - (size_t)(slash + 1 - line.ptr)},
                            c->version, sizeof c->version);
    }
    SB_DEBUG(LOG_SUB, "pbx %s: AMI version %s", c->name, c->version);
    ami_client_set_state(c, AMI_STATE_LOGGING_IN, "logging in");
    ami_login_start(c);
}

static void dispatch(ami_client *c, const ami_packet *pkt)
{
    switch (pkt->kind) {
    case AMI_PACKET_EVENT:
        ami_actions_on_event(c, pkt);
        break;
    case AMI_PACKET_RESPONSE:
        ami_actions_on_response(c, pkt);
        break;
    case AMI_PACKET_BANNER:
        on_banner(c, pkt);
        break;
    default:
        SB_DEBUG(LOG_SUB, "pbx %s: unexpected packet ignored", c->name);
        break;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ami_conn *conn = s->data;
    ami_client *c = conn->c;
    ami_packet pkt;
    (void)buf;
    if (conn != c->conn)
        return;
    if (nread < 0) {
        const char *why =
            nread == UV_EOF ? "connection closed by the server" : uv_strerror((int)nread);
        if (c->state == AMI_STATE_READY)
            SB_WARN(LOG_SUB, "pbx %s: connection lost: %s", c->name, why);
        if (c->state == AMI_STATE_READY)
            ami_client_drop(c, why, true);
        else
            ami_client_attempt_failed(c, why);
        return;
    }
    if (nread == 0)
        return;
    ami_codec_commit(&c->codec, (size_t)nread);
    c->last_rx = uv_now(c->loop);
    for (;;) {
        int r = ami_codec_next(&c->codec, &pkt);
        if (r == AMI_NEED_MORE)
            break;
        if (r < 0) {
            codec_error(c, r);
            continue;
        }
        dispatch(c, &pkt);
        if (conn != c->conn || conn->closing)
            break; /* dropped or stopped from a callback: the rest belongs to no one */
    }
}

static void start_connect(ami_client *c);

static void on_connect(uv_connect_t *req, int status)
{
    ami_conn *conn = req->data;
    ami_client *c = conn->c;
    if (conn != c->conn || conn->closing)
        return;
    if (status < 0) {
        transport_close(c);
        if (c->addr_next < c->naddrs) {
            start_connect(c); /* try the host's next address */
            return;
        }
        ami_client_attempt_failed(c, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    ami_codec_reset(&c->codec, true);
    c->last_rx = uv_now(c->loop);
    int rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    if (rc < 0)
        ami_client_attempt_failed(c, uv_strerror(rc));
}

static void start_connect(ami_client *c)
{
    ami_conn *conn = calloc(1, sizeof *conn);
    int rc;
    if (!conn) {
        ami_client_attempt_failed(c, "out of memory");
        return;
    }
    conn->c = c;
    rc = uv_tcp_init(c->loop, &conn->tcp);
    if (rc < 0) {
        free(conn);
        ami_client_attempt_failed(c, uv_strerror(rc));
        return;
    }
    conn->tcp.data = conn;
    conn->creq.data = conn;
    c->handles++;
    c->conn = conn;
    const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[c->addr_next++];
    rc = uv_tcp_connect(&conn->creq, &conn->tcp, sa, on_connect);
    if (rc < 0) {
        transport_close(c);
        ami_client_attempt_failed(c, uv_strerror(rc));
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ami_resolve *r = (ami_resolve *)req;
    ami_client *c = r->c;
    bool current = c->resolving == r;
    free(r);
    c->handles--;
    if (!current) {
        uv_freeaddrinfo(res);
        maybe_release(c);
        return;
    }
    c->resolving = NULL;
    if (status < 0) {
        uv_freeaddrinfo(res);
        ami_client_attempt_failed(c, uv_strerror(status));
        return;
    }
    c->naddrs = 0;
    c->addr_next = 0;
    for (struct addrinfo *ai = res; ai && c->naddrs < AMI_MAX_ADDRS; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof c->addrs[0])
            continue;
        memcpy(&c->addrs[c->naddrs++], ai->ai_addr, ai->ai_addrlen);
    }
    uv_freeaddrinfo(res);
    if (c->naddrs == 0) {
        ami_client_attempt_failed(c, "host name has no address");
        return;
    }
    start_connect(c);
}

static void on_conn_deadline(uv_timer_t *t)
{
    ami_client *c = t->data;
    char why[64];
    snprintf(why, sizeof why, "%s timed out after %u ms",
             c->state == AMI_STATE_LOGGING_IN ? "login" : "connect", c->cfg.connect_timeout_ms);
    ami_client_attempt_failed(c, why);
}

static void attempt_start(ami_client *c)
{
    char port[16];
    struct sockaddr_in *s4 = (struct sockaddr_in *)&c->addrs[0];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->addrs[0];
    uv_timer_start(&c->conn_timer, on_conn_deadline, c->cfg.connect_timeout_ms, 0);
    c->naddrs = 0;
    c->addr_next = 0;
    if (uv_ip4_addr(c->host, c->cfg.port, s4) == 0 || uv_ip6_addr(c->host, c->cfg.port, s6) == 0) {
        c->naddrs = 1;
        start_connect(c);
        return;
    }
    ami_resolve *r = calloc(1, sizeof *r);
    if (!r) {
        ami_client_attempt_failed(c, "out of memory");
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    snprintf(port, sizeof port, "%d", c->cfg.port);
    r->c = c;
    int rc = uv_getaddrinfo(c->loop, &r->req, on_resolved, c->host, port, &hints);
    if (rc < 0) {
        free(r);
        ami_client_attempt_failed(c, uv_strerror(rc));
        return;
    }
    c->handles++;
    c->resolving = r;
}

/* ---- public lifecycle -------------------------------------------------------------------- */

int ami_client_new(uv_loop_t *loop, const ami_client_config *cfg, const ami_client_callbacks *cbs,
                   ami_client **out)
{
    ami_client *c = NULL;
    int rc = SB_EINVAL;
    if (!loop || !cfg || !out || !cfg->host || !*cfg->host || !cfg->username || !cfg->secret ||
        (cfg->nfilters && !cfg->filters) || cfg->port < 0 || cfg->port > 65535)
        goto fail;
    rc = SB_ENOMEM;
    c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    c->loop = loop;
    c->cfg = *cfg;
    if (cbs)
        c->cbs = *cbs;
    c->name = strdup(cfg->name && *cfg->name ? cfg->name : cfg->host);
    c->host = strdup(cfg->host);
    c->username = strdup(cfg->username);
    c->secret = strdup(cfg->secret);
    c->events = strdup(cfg->events && *cfg->events ? cfg->events : "on");
    c->filters = cfg->nfilters ? calloc(cfg->nfilters, sizeof *c->filters) : NULL;
    if (!c->name || !c->host || !c->username || !c->secret || !c->events ||
        (cfg->nfilters && !c->filters))
        goto fail_free;
    for (size_t i = 0; i < cfg->nfilters; i++)
        if (!(c->filters[i] = dup_or_null(cfg->filters[i] ? cfg->filters[i] : "")))
            goto fail_free;
    c->cfg.name = c->name;
    c->cfg.host = c->host;
    c->cfg.username = c->username;
    c->cfg.secret = c->secret;
    c->cfg.events = c->events;
    c->cfg.filters = (const char *const *)c->filters;
    if (!c->cfg.port)
        c->cfg.port = 5038;
    if (!c->cfg.ping_interval_ms)
        c->cfg.ping_interval_ms = 10000;
    if (!c->cfg.stall_timeout_ms)
        c->cfg.stall_timeout_ms = 30000;
    if (!c->cfg.connect_timeout_ms)
        c->cfg.connect_timeout_ms = 5000;
    if (!c->cfg.action_timeout_ms)
        c->cfg.action_timeout_ms = 10000;
    if (!c->cfg.reconnect_min_ms)
        c->cfg.reconnect_min_ms = 500;
    if (!c->cfg.reconnect_max_ms)
        c->cfg.reconnect_max_ms = 30000;
    if (c->cfg.reconnect_max_ms < c->cfg.reconnect_min_ms)
        c->cfg.reconnect_max_ms = c->cfg.reconnect_min_ms;
    ami_limits def = AMI_LIMITS_DEFAULT;
    if (!c->cfg.limits.max_packet)
        c->cfg.limits.max_packet = def.max_packet;
    if (!c->cfg.limits.max_headers)
        c->cfg.limits.max_headers = def.max_headers;
    if (!c->cfg.limits.max_line)
        c->cfg.limits.max_line = def.max_line;

    /* ActionID prefix "sb-<name>-": the name (at most 8 safe characters) makes a capture
     * readable; the counter alone makes the ID unique on this connection. */
    size_t k = 0;
    k += (size_t)snprintf(c->id_prefix, sizeof c->id_prefix, "sb-");
    for (const char *s = c->name; *s && k < 11; s++) {
        char ch = *s;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        c->id_prefix[k++] = ok ? ch : '_';
    }
    c->id_prefix[k++] = '-';
    c->id_prefix[k] = '\0';

    c->rng = (uv_hrtime() ^ (uint64_t)(uintptr_t)c) | 1;
    c->act_due = UINT64_MAX;
    if (ami_pending_set_init(&c->pending) < 0)
        goto fail_free;
    if (ami_codec_init(&c->codec, c->cfg.limits, true) < 0) {
        ami_pending_set_free(&c->pending);
        rc = SB_EINVAL;
        goto fail_free;
    }
    uv_timer_init(loop, &c->conn_timer);
    uv_timer_init(loop, &c->ka_timer);
    uv_timer_init(loop, &c->act_timer);
    c->conn_timer.data = c->ka_timer.data = c->act_timer.data = c;
    c->handles = 3;
    *out = c;
    return 0;

fail_free:
    free(c->name);
    free(c->host);
    free(c->username);
    free(c->secret);
    free(c->events);
    if (c->filters)
        for (size_t i = 0; i < cfg->nfilters; i++)
            free(c->filters[i]);
    free(c->filters);
    free(c);
fail:
    return rc;
}

int ami_client_start(ami_client *c)
{
    if (!c || c->freeing)
        return SB_EINVAL;
    if (c->state != AMI_STATE_STOPPED)
        return 0;
    c->ever_ready = false;
    c->auth_failing = false;
    c->backoff_attempt = 0;
    c->last_failure[0] = '\0';
    ami_client_set_state(c, AMI_STATE_CONNECTING, "connecting");
    attempt_start(c);
    return 0;
}

void ami_client_stop(ami_client *c)
{
    if (!c || (c->state == AMI_STATE_STOPPED && !c->conn && !c->resolving))
        return;
    SB_INFO(LOG_SUB, "pbx %s: stopped", c->name);
    ami_client_drop(c, "stopped", false);
}

void ami_client_free(ami_client *c)
{
    if (!c || c->freeing)
        return;
    ami_client_stop(c);
    c->freeing = true;
    uv_close((uv_handle_t *)&c->conn_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->ka_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->act_timer, on_handle_closed);
}

ami_client_state ami_client_get_state(const ami_client *c)
{
    return c->state;
}

const char *ami_client_name(const ami_client *c)
{
    return c->name;
}

const char *ami_client_ami_version(const ami_client *c)
{
    return c->version;
}

void ami_client_get_stats(const ami_client *c, ami_client_stats *out)
{
    *out = c->st;
    out->pending = c->pending.count;
    out->codec = c->codec.stats;
}
