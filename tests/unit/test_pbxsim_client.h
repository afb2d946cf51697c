/* test_pbxsim_client.h: a small AMI test client on libuv (raw TCP + the project's codec) for the
 * simulator's tests: it runs on the same loop as the simulator, keeps every packet it receives
 * (owned copies) and offers bounded waits. Header-only (static inline) so that each test program
 * includes what it uses. */
#ifndef TEST_PBXSIM_CLIENT_H
#define TEST_PBXSIM_CLIENT_H

#include "ami/codec.h"
#include "core/slice.h"
#include "pbxsim.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tclient {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t conn;
    ami_codec codec;
    ami_packet **pkts;
    size_t n, cap;
    int connected; /* connect callbacks with status 0 */
    int closed;    /* EOF or error seen */
    int handle_closed;
    int errors; /* codec errors (garbage) */
} tclient;

static inline void tc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    tclient *c = h->data;
    char *p;
    size_t n;
    ami_codec_space(&c->codec, &p, &n);
    *buf = uv_buf_init(p, (unsigned)n);
}

static inline void tc_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tclient *c = s->data;
    if (nread < 0) {
        c->closed++;
        uv_read_stop(s);
        return;
    }
    ami_codec_commit(&c->codec, (size_t)nread);
    for (;;) {
        ami_packet p;
        int rc = ami_codec_next(&c->codec, &p);
        if (rc == AMI_NEED_MORE)
            break;
        if (rc < 0) {
            c->errors++;
            continue;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 256;
            c->pkts = realloc(c->pkts, c->cap * sizeof *c->pkts);
        }
        c->pkts[c->n++] = ami_packet_dup(&p);
    }
}

static inline void tc_connected(uv_connect_t *req, int status)
{
    tclient *c = req->data;
    if (status == 0) {
        c->connected++;
        uv_read_start((uv_stream_t *)&c->tcp, tc_alloc, tc_read);
    } else {
        c->closed++;
    }
}

static inline void tc_tick(uv_timer_t *t) {}

/* Runs the loop until *flag (if given) becomes true or ms pass. Returns the flag's value. */
static inline bool tc_run_until(uv_loop_t *loop, bool (*done)(void *), void *arg, int ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tc_tick, 2, 2);
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + (uint64_t)ms;
    bool ok = false;
    while (uv_now(loop) < end) {
        if (done && done(arg)) {
            ok = true;
            break;
        }
        uv_run(loop, UV_RUN_ONCE);
    }
    if (!ok && done)
        ok = done(arg);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static inline bool tc_is_connected(void *arg)
{
    tclient *c = arg;
    return c->connected > 0 && c->n > 0; /* banner received */
}

static inline void tc_connect(tclient *c, uv_loop_t *loop, int port)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    ami_codec_init(&c->codec, AMI_LIMITS_DEFAULT, true);
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->conn.data = c;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_connect(&c->conn, &c->tcp, (const struct sockaddr *)&addr, tc_connected);
    tc_run_until(loop, tc_is_connected, c, 2000);
}

static inline void tc_write_done(uv_write_t *w, int status)
{
    free(w);
}

/* Sends text, turning "\n" into "\r\n". */
static inline void tc_send(tclient *c, const char *text)
{
    size_t n = strlen(text);
    uv_write_t *w = malloc(sizeof *w + 2 * n);
    char *out = (char *)(w + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n')
            out[k++] = '\r';
        out[k++] = text[i];
    }
    uv_buf_t b = uv_buf_init(out, (unsigned)k);
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, tc_write_done);
}

static inline void tc_closed_cb(uv_handle_t *h)
{
    tclient *c = h->data;
    c->handle_closed++;
}

static inline void tc_free(tclient *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, tc_closed_cb);
    uv_run(c->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < c->n; i++)
        ami_packet_free(c->pkts[i]);
    free(c->pkts);
    c->pkts = NULL;
    c->n = c->cap = 0;
    ami_codec_free(&c->codec);
}

/* The packet whose first header is Response and whose ActionID is id, or NULL. */
static inline const ami_packet *tc_response(const tclient *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->pkts[i]->kind == AMI_PACKET_RESPONSE && ami_packet_is(c->pkts[i], "ActionID", id))
            return c->pkts[i];
    return NULL;
}

/* The first event named name whose header key equals val (key may be NULL), from index from. */
static inline const ami_packet *tc_event(const tclient *c, const char *name, const char *key,
                                         const char *val)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->pkts[i]->kind == AMI_PACKET_EVENT && sb_slice_eq_ci(c->pkts[i]->name, name) &&
            (!key || ami_packet_is(c->pkts[i], key, val)))
            return c->pkts[i];
    return NULL;
}

static inline size_t tc_count(const tclient *c, const char *name, const char *key, const char *val)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->pkts[i]->kind == AMI_PACKET_EVENT && sb_slice_eq_ci(c->pkts[i]->name, name) &&
            (!key || ami_packet_is(c->pkts[i], key, val)))
            n++;
    return n;
}

typedef struct tc_wait_arg {
    tclient *c;
    const char *id;
    const char *event;
    const char *key;
    const char *val;
    size_t count;
} tc_wait_arg;

static inline bool tc_has_response(void *arg)
{
    tc_wait_arg *a = arg;
    return tc_response(a->c, a->id) != NULL;
}

static inline bool tc_has_events(void *arg)
{
    tc_wait_arg *a = arg;
    return tc_count(a->c, a->event, a->key, a->val) >= (a->count ? a->count : 1);
}

static inline bool tc_has_closed(void *arg)
{
    tclient *c = arg;
    return c->closed > 0;
}

/* Waits (bounded) for the response to ActionID id. */
static inline const ami_packet *tc_wait_response(tclient *c, const char *id, int ms)
{
    tc_wait_arg a = {.c = c, .id = id};
    tc_run_until(c->loop, tc_has_response, &a, ms);
    return tc_response(c, id);
}

/* Waits (bounded) until count events named name (with key: val) arrived. */
static inline bool tc_wait_events(tclient *c, const char *name, const char *key, const char *val,
                                  size_t count, int ms)
{
    tc_wait_arg a = {.c = c, .event = name, .key = key, .val = val, .count = count};
    return tc_run_until(c->loop, tc_has_events, &a, ms);
}

/* Copies header key of p into a static buffer (for assertions). */
static inline const char *tc_val(const ami_packet *p, const char *key)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    if (!p)
        return "(no packet)";
    const sb_slice *v = ami_packet_get(p, key);
    if (!v)
        return "(absent)";
    sb_slice_copy(*v, buf[k], sizeof buf[k]);
    return buf[k];
}

/* Logs in as admin (Events: events); waits for the answer. */
static inline const ami_packet *tc_login(tclient *c, const char *user, const char *secret,
                                         const char *events)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             "Action: Login\nActionID: login-1\nUsername: %s\nSecret: %s\nEvents: %s\n\n", user,
             secret, events);
    tc_send(c, buf);
    return tc_wait_response(c, "login-1", 2000);
}

/* A simulator on loop with a fast clock; asserts it started. */
static inline pbxsim *tc_sim(uv_loop_t *loop, double scale)
{
    pbxsim_config cfg;
    pbxsim_config_default(&cfg);
    cfg.time_scale = scale;
    pbxsim *sim = NULL;
    if (pbxsim_new(loop, &cfg, &sim) != 0 || pbxsim_start(sim) != 0) {
        fprintf(stderr, "cannot start the simulator\n");
        abort();
    }
    return sim;
}

/* Frees the simulator and runs the loop until every handle is closed (bounded). */
static inline void tc_sim_free(uv_loop_t *loop, pbxsim *sim)
{
    pbxsim_free(sim);
    for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ;
}

#endif
