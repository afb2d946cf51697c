/* ami_fake_server.h: an in-test fake Asterisk AMI server on libuv, shared by the
 * test_ami_client*.c programs (header-only: every function is static).
 *
 * It listens on 127.0.0.1 with an ephemeral port, sends the banner, parses the client's actions
 * with the real codec and answers them: either by replaying a recorded fixture (responses and
 * events in recorded order, "rec-N" ActionIDs rewritten to the ActionID of the client's N-th
 * action on the connection), or through a per-test handler. It records every action it received
 * (copies) so tests can check exactly what the client sent.
 *
 * Also here: the client-side test context (callback counters), a bounded run-until helper and a
 * stderr capture used to prove that secrets never reach the log.
 */
#ifndef AMI_FAKE_SERVER_H
#define AMI_FAKE_SERVER_H

#include "testutil.h"

#include "ami/client.h"
#include "ami/codec.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FS_MAX_GOT 8192

typedef struct fs_pkt {
    const char *p; /* into fake_srv.fx */
    size_t len;
    int rec; /* N of "ActionID: rec-N", 0 when none */
    bool is_event;
} fs_pkt;

typedef struct fake_srv fake_srv;
typedef struct fs_conn fs_conn;
/* A per-test answer to an action the standard handler does not know (or every action when
 * fake_srv.raw is set). idx is the 1-based index of the action on its connection. */
typedef void (*fs_action_fn)(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx);

struct fs_conn {
    uv_tcp_t tcp;
    fake_srv *srv;
    fs_conn *next;
    ami_codec codec;
    int nactions;
    char ids[FS_MAX_GOT][32]; /* ActionIDs received, by index - 1 */
    size_t replay_pos;
    bool closing;
    bool logged_in;
};

struct fake_srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    int accepts;
    int handles;    /* open handles (listener + connections) */
    fs_conn *conns; /* open connections, newest first */
    /* Behaviour */
    const char *banner;     /* line without CRLF; NULL: the fixture's, or Asterisk 22's */
    const char *secret;     /* expected secret (plain or MD5); NULL accepts anything */
    const char *challenge;  /* Challenge answer; default "120265474" (fixture 03) */
    bool ignore_ping;       /* never answer Ping (stall tests) */
    bool deny_filter;       /* answer Filter with "Permission denied" */
    bool raw;               /* every action goes to on_action (replay tests) */
    bool no_banner;         /* accept, then say nothing (connect/login timeout tests) */
    fs_action_fn on_action; /* other actions; NULL: "Invalid/unknown command" */
    void *ud;
    /* Fixture replay */
    char *fx;
    size_t fxlen;
    sb_slice fx_banner;
    fs_pkt *pk;
    size_t npk;
    bool close_after_replay;
    /* Record */
    ami_packet *got[FS_MAX_GOT]; /* every action received, all connections */
    size_t ngot;
    int pings, logins, challenges, filters;
};

/* ---- sending ----------------------------------------------------------------------------- */

typedef struct fs_wreq {
    uv_write_t req;
    char data[];
} fs_wreq;

static inline void fs_write_done(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static inline void fs_send(fs_conn *fc, const char *data, size_t len)
{
    if (fc->closing || len == 0)
        return;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&fc->tcp, &b, 1);
    if (n >= 0 && (size_t)n == len)
        return;
    size_t done = n > 0 ? (size_t)n : 0;
    fs_wreq *w = malloc(sizeof *w + len - done);
    assert_non_null(w);
    memcpy(w->data, data + done, len - done);
    b = uv_buf_init(w->data, (unsigned)(len - done));
    if (uv_write(&w->req, (uv_stream_t *)&fc->tcp, &b, 1, fs_write_done) < 0)
        free(w);
}

static inline void fs_sendf(fs_conn *fc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void fs_sendf(fs_conn *fc, const char *fmt, ...)
{
    sb_buf b;
    va_list ap;
    sb_buf_init(&b, 1 << 20);
    va_start(ap, fmt);
    assert_int_equal(sb_buf_vprintf(&b, fmt, ap), 0);
    va_end(ap);
    fs_send(fc, b.data, b.len);
    sb_buf_free(&b);
}

/* Answers action a: "Response: <resp>", its ActionID (if any), then extra (CRLF-separated
 * header lines, may be ""), then the blank line. */
static inline void fs_respond(fs_conn *fc, const ami_packet *a, const char *resp, const char *extra)
{
    sb_slice id = ami_packet_value(a, "ActionID");
    if (id.len)
        fs_sendf(fc, "Response: %s\r\nActionID: %.*s\r\n%s\r\n", resp, (int)id.len, id.ptr, extra);
    else
        fs_sendf(fc, "Response: %s\r\n%s\r\n", resp, extra);
}

static inline void fs_conn_closed(uv_handle_t *h)
{
    fs_conn *fc = h->data;
    fake_srv *s = fc->srv;
    for (fs_conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
        if (*pp == fc) {
            *pp = fc->next;
            break;
        }
    }
    ami_codec_free(&fc->codec);
    free(fc);
    s->handles--;
}

static inline void fs_close(fs_conn *fc)
{
    if (fc->closing)
        return;
    fc->closing = true;
    uv_read_stop((uv_stream_t *)&fc->tcp);
    uv_close((uv_handle_t *)&fc->tcp, fs_conn_closed);
}

/* Closes every open connection (the "Asterisk restarted / network dropped" fault). */
static inline void fs_drop_all(fake_srv *s)
{
    for (fs_conn *fc = s->conns; fc; fc = fc->next)
        fs_close(fc);
}

static inline fs_conn *fs_current(fake_srv *s)
{
    for (fs_conn *fc = s->conns; fc; fc = fc->next)
        if (!fc->closing)
            return fc;
    return NULL;
}

/* ---- fixture replay ---------------------------------------------------------------------- */

/* Loads a recorded .ami transcript and splits it into the banner line and packets. */
static inline void fs_load_fixture(fake_srv *s, const char *name)
{
    s->fx = tu_read_file(tu_fixture(name), &s->fxlen);
    assert_non_null(s->fx);
    const char *p = s->fx, *end = s->fx + s->fxlen;
    const char *nl = strstr(p, "\r\n");
    assert_non_null(nl);
    s->fx_banner = (sb_slice){p, (size_t)(nl - p)};
    p = nl + 2;
    size_t cap = 16;
    s->pk = calloc(cap, sizeof *s->pk);
    while (p < end) {
        const char *e = strstr(p, "\r\n\r\n");
        size_t len = e ? (size_t)(e + 4 - p) : (size_t)(end - p);
        if (s->npk == cap) {
            cap *= 2;
            s->pk = realloc(s->pk, cap * sizeof *s->pk);
        }
        fs_pkt *k = &s->pk[s->npk++];
        k->p = p;
        k->len = len;
        k->rec = 0;
        k->is_event = len > 7 && memcmp(p, "Event: ", 7) == 0;
        for (const char *q = p; q + 14 < p + len; q++) {
            if (memcmp(q, "ActionID: rec-", 14) == 0) {
                k->rec = atoi(q + 14);
                break;
            }
        }
        p += len;
    }
}

/* Sends fixture packet k with "rec-N" replaced by the client's N-th ActionID. */
static inline void fs_send_rewritten(fs_conn *fc, const fs_pkt *k)
{
    const char *q = k->p, *end = k->p + k->len;
    sb_buf b;
    sb_buf_init(&b, 1 << 20);
    while (q < end) {
        const char *m = NULL;
        for (const char *x = q; x + 14 <= end; x++) {
            if (memcmp(x, "ActionID: rec-", 14) == 0) {
                m = x;
                break;
            }
        }
        if (!m) {
            sb_buf_append(&b, q, (size_t)(end - q));
            break;
        }
        sb_buf_append(&b, q, (size_t)(m - q) + 10);
        int n = atoi(m + 14);
        const char *x = m + 14;
        while (x < end && *x >= '0' && *x <= '9')
            x++;
        if (n >= 1 && n <= fc->nactions)
            sb_buf_puts(&b, fc->ids[n - 1]);
        else
            sb_buf_append(&b, m + 10, (size_t)(x - (m + 10)));
        q = x;
    }
    fs_send(fc, b.data, b.len);
    sb_buf_free(&b);
}

/* On the client's idx-th action: sends the recorded packets up to (not including) the first one
 * that answers a later action. */
static inline void fs_replay(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    (void)a;
    while (fc->replay_pos < s->npk && s->pk[fc->replay_pos].rec <= idx) {
        fs_send_rewritten(fc, &s->pk[fc->replay_pos]);
        fc->replay_pos++;
    }
    if (fc->replay_pos == s->npk && s->close_after_replay)
        fs_close(fc);
}

/* ---- standard answers -------------------------------------------------------------------- */

static inline void fs_md5_hex(const char *a, const char *b, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    EVP_DigestUpdate(ctx, a, strlen(a));
    EVP_DigestUpdate(ctx, b, strlen(b));
    EVP_DigestFinal_ex(ctx, md, &n);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static inline void fs_std_action(fake_srv *s, fs_conn *fc, const ami_packet *a, int idx)
{
    const char *chal = s->challenge ? s->challenge : "120265474";
    if (sb_slice_eq_ci(a->name, "Challenge")) {
        char extra[64];
        s->challenges++;
        snprintf(extra, sizeof extra, "Challenge: %s\r\n", chal);
        fs_respond(fc, a, "Success", extra);
    } else if (sb_slice_eq_ci(a->name, "Login")) {
        bool ok = true;
        s->logins++;
        if (s->secret) {
            if (ami_packet_is(a, "AuthType", "MD5")) {
                char key[33];
                fs_md5_hex(chal, s->secret, key);
                ok = ami_packet_is(a, "Key", key);
            } else {
                ok = ami_packet_is(a, "Secret", s->secret);
            }
        }
        if (ok) {
            fc->logged_in = true;
            fs_respond(fc, a, "Success", "Message: Authentication accepted\r\n");
        } else {
            fs_respond(fc, a, "Error", "Message: Authentication failed\r\n");
            fs_close(fc); /* Asterisk closes the session (fixture 02) */
        }
    } else if (!fc->logged_in) {
        fs_respond(fc, a, "Error", "Message: Permission denied\r\n");
    } else if (sb_slice_eq_ci(a->name, "Ping")) {
        s->pings++;
        if (!s->ignore_ping)
            fs_respond(fc, a, "Success", "Ping: Pong\r\nTimestamp: 1795478312.241080\r\n");
    } else if (sb_slice_eq_ci(a->name, "Filter")) {
        s->filters++;
        if (s->deny_filter)
            fs_respond(fc, a, "Error", "Message: Permission denied\r\n");
        else
            fs_respond(fc, a, "Success", "");
    } else if (s->on_action) {
        s->on_action(s, fc, a, idx);
    } else {
        fs_respond(fc, a, "Error", "Message: Invalid/unknown command\r\n");
    }
}

/* ---- reading and accepting --------------------------------------------------------------- */

static inline void fs_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    fs_conn *fc = h->data;
    char *p;
    size_t n;
    (void)sz;
    ami_codec_space(&fc->codec, &p, &n);
    *buf = uv_buf_init(p, (unsigned)n);
}

static inline void fs_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    fs_conn *fc = st->data;
    fake_srv *s = fc->srv;
    ami_packet pkt;
    (void)buf;
    if (nread < 0) {
        fs_close(fc);
        return;
    }
    ami_codec_commit(&fc->codec, (size_t)nread);
    for (;;) {
        int r = ami_codec_next(&fc->codec, &pkt);
        if (r == AMI_NEED_MORE)
            break;
        if (r < 0)
            continue;
        if (s->ngot < FS_MAX_GOT)
            s->got[s->ngot++] = ami_packet_dup(&pkt);
        int idx = ++fc->nactions;
        if (idx <= FS_MAX_GOT)
            sb_slice_copy(ami_packet_value(&pkt, "ActionID"), fc->ids[idx - 1], sizeof fc->ids[0]);
        if (s->raw && s->on_action)
            s->on_action(s, fc, &pkt, idx);
        else
            fs_std_action(s, fc, &pkt, idx);
        if (fc->closing)
            break;
    }
}

static inline void fs_on_connection(uv_stream_t *l, int status)
{
    fake_srv *s = l->data;
    if (status < 0)
        return;
    fs_conn *fc = calloc(1, sizeof *fc);
    assert_non_null(fc);
    fc->srv = s;
    assert_int_equal(ami_codec_init(&fc->codec, AMI_LIMITS_DEFAULT, false), 0);
    uv_tcp_init(s->loop, &fc->tcp);
    fc->tcp.data = fc;
    s->handles++;
    fc->next = s->conns;
    s->conns = fc;
    if (uv_accept(l, (uv_stream_t *)&fc->tcp) < 0) {
        fs_close(fc);
        return;
    }
    s->accepts++;
    if (s->no_banner) {
        /* say nothing */
    } else if (s->banner) {
        fs_sendf(fc, "%s\r\n", s->banner);
    } else if (s->fx) {
        fs_sendf(fc, "%.*s\r\n", (int)s->fx_banner.len, s->fx_banner.ptr);
    } else {
        fs_sendf(fc, "Asterisk Call Manager/11.0.0\r\n");
    }
    uv_read_start((uv_stream_t *)&fc->tcp, fs_alloc, fs_read);
}

static inline void fs_start(fake_srv *s, uv_loop_t *loop)
{
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    s->loop = loop;
    assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
    s->listener.data = s;
    s->handles++;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 128, fs_on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len), 0);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static inline void fs_listener_closed(uv_handle_t *h)
{
    fake_srv *s = h->data;
    s->handles--;
}

static inline void fs_stop(fake_srv *s)
{
    fs_drop_all(s);
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, fs_listener_closed);
}

static inline void fs_free(fake_srv *s)
{
    for (size_t i = 0; i < s->ngot; i++)
        ami_packet_free(s->got[i]);
    s->ngot = 0;
    free(s->pk);
    free(s->fx);
}

/* The i-th recorded action named name (0-based among those), or NULL. */
static inline const ami_packet *fs_got(const fake_srv *s, const char *name, int i)
{
    for (size_t k = 0; k < s->ngot; k++)
        if (sb_slice_eq_ci(s->got[k]->name, name) && i-- == 0)
            return s->got[k];
    return NULL;
}

static inline int fs_count(const fake_srv *s, const char *name)
{
    int n = 0;
    for (size_t k = 0; k < s->ngot; k++)
        n += sb_slice_eq_ci(s->got[k]->name, name);
    return n;
}

/* ---- client-side test context ------------------------------------------------------------ */

typedef struct tc {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps uv_run(ONCE) from blocking for long */
    fake_srv srv;
    ami_client *c;
    int ready, ready_reconnected;
    int state_calls, nstate[4];
    int auth_failed_reports;
    char last_why[128];
    int events;
    char last_event[64];
    void (*on_event_hook)(struct tc *t, const ami_packet *ev);
    void (*on_ready_hook)(struct tc *t, bool reconnected);
} tc;

static inline void tc_on_state(ami_client *c, ami_client_state st, const char *why, void *ud)
{
    tc *t = ud;
    (void)c;
    t->state_calls++;
    t->nstate[st]++;
    snprintf(t->last_why, sizeof t->last_why, "%s", why);
    if (strstr(why, "authentication failed"))
        t->auth_failed_reports++;
}

static inline void tc_on_ready(ami_client *c, bool reconnected, void *ud)
{
    tc *t = ud;
    assert_int_equal(ami_client_get_state(c), AMI_STATE_READY);
    t->ready++;
    t->ready_reconnected += reconnected;
    if (t->on_ready_hook)
        t->on_ready_hook(t, reconnected);
}

static inline void tc_on_event(ami_client *c, const ami_packet *ev, void *ud)
{
    tc *t = ud;
    (void)c;
    t->events++;
    sb_slice_copy(ev->name, t->last_event, sizeof t->last_event);
    if (t->on_event_hook)
        t->on_event_hook(t, ev);
}

static inline void tc_tick(uv_timer_t *h)
{
    (void)h;
}

static inline void tc_init(tc *t)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    uv_timer_init(&t->loop, &t->tick);
    uv_timer_start(&t->tick, tc_tick, 2, 2);
    fs_start(&t->srv, &t->loop);
}

/* A configuration for the fake server with short timers. */
static inline ami_client_config tc_config(tc *t)
{
    ami_client_config cfg = {0};
    cfg.name = "pbx1";
    cfg.host = "127.0.0.1";
    cfg.port = t->srv.port;
    cfg.username = "admin";
    cfg.secret = "admin-secret";
    cfg.events = "on";
    cfg.ping_interval_ms = 10000;
    cfg.stall_timeout_ms = 30000;
    cfg.connect_timeout_ms = 3000;
    cfg.action_timeout_ms = 5000;
    cfg.reconnect_min_ms = 20;
    cfg.reconnect_max_ms = 200;
    return cfg;
}

static inline void tc_client(tc *t, const ami_client_config *cfg)
{
    ami_client_callbacks cbs = {tc_on_event, tc_on_state, tc_on_ready, t};
    assert_int_equal(ami_client_new(&t->loop, cfg, &cbs, &t->c), 0);
    assert_int_equal(ami_client_start(t->c), 0);
}

#define RUN_UNTIL(t, cond, ms)                                                                     \
    do {                                                                                           \
        uv_update_time(&(t)->loop);                                                                \
        uint64_t end_ = uv_now(&(t)->loop) + (ms);                                                 \
        while (!(cond) && uv_now(&(t)->loop) < end_)                                               \
            uv_run(&(t)->loop, UV_RUN_ONCE);                                                       \
    } while (0)

#define RUN_FOR(t, ms) RUN_UNTIL(t, 0, ms)

static inline void tc_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "handle still open: type %d\n", (int)h->type);
}

/* Frees the client and the server and proves that every handle closed. */
static inline void tc_fini(tc *t)
{
    if (t->c)
        ami_client_free(t->c);
    t->c = NULL;
    fs_stop(&t->srv);
    uv_close((uv_handle_t *)&t->tick, NULL);
    for (int i = 0; i < 1000 && uv_run(&t->loop, UV_RUN_NOWAIT); i++)
        usleep(1000);
    int rc = uv_loop_close(&t->loop);
    if (rc)
        uv_walk(&t->loop, tc_close_walk, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(t->srv.handles, 0);
    fs_free(&t->srv);
}

/* ---- action results ---------------------------------------------------------------------- */

typedef struct res {
    int calls;
    int status;
    bool has_response, has_complete;
    size_t nitems;
    char response_msg[128];
    char response_id[32];
    char complete_name[64];
    char complete_reason[16];
    char first_item[64];
    char value[128]; /* value of res.want in the response, when set */
    const char *want;
} res;

static inline void res_cb(ami_client *c, const ami_result *r, void *ud)
{
    res *x = ud;
    (void)c;
    x->calls++;
    x->status = r->status;
    x->has_response = r->response != NULL;
    x->has_complete = r->complete != NULL;
    x->nitems = r->nitems;
    if (r->response) {
        sb_slice_copy(ami_packet_value(r->response, "Message"), x->response_msg,
                      sizeof x->response_msg);
        sb_slice_copy(ami_packet_value(r->response, "ActionID"), x->response_id,
                      sizeof x->response_id);
        if (x->want)
            sb_slice_copy(ami_packet_value(r->response, x->want), x->value, sizeof x->value);
    }
    if (r->complete) {
        sb_slice_copy(r->complete->name, x->complete_name, sizeof x->complete_name);
        sb_slice_copy(ami_packet_value(r->complete, "Reason"), x->complete_reason,
                      sizeof x->complete_reason);
    }
    if (r->nitems)
        sb_slice_copy(r->items[0]->name, x->first_item, sizeof x->first_item);
}

/* Sends action NAME with optional "Key", "Value" pairs (NULL-terminated). */
static inline int tc_send(tc *t, const char *name, ami_action_kind kind, uint32_t timeout, res *x,
                          char *id, ...)
{
    ami_msg m;
    va_list ap;
    ami_msg_init(&m, "Action", name);
    va_start(ap, id);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        ami_msg_add(&m, k, v);
    }
    va_end(ap);
    int rc = ami_client_send(t->c, &m, kind, timeout, res_cb, x, id, id ? 32 : 0);
    ami_msg_free(&m);
    return rc;
}

/* ---- stderr capture ---------------------------------------------------------------------- */

typedef struct capture {
    int saved;
    int fd;
    char path[64];
} capture;

static inline void capture_begin(capture *cp)
{
    fflush(stderr);
    snprintf(cp->path, sizeof cp->path, "/tmp/sb-ami-test-XXXXXX");
    cp->fd = mkstemp(cp->path);
    assert_true(cp->fd >= 0);
    cp->saved = dup(2);
    dup2(cp->fd, 2);
}

/* Returns owned text written to stderr since capture_begin (free with free()). */
static inline char *capture_end(capture *cp)
{
    size_t n = 0;
    fflush(stderr);
    dup2(cp->saved, 2);
    close(cp->saved);
    close(cp->fd);
    char *text = tu_read_file(cp->path, &n);
    unlink(cp->path);
    assert_non_null(text);
    fputs(text, stderr); /* still visible in the test output */
    return text;
}

static inline int count_substr(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#endif
