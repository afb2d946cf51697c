/* test_agi_server.c: the FastAGI server against an in-test "Asterisk" on libuv that connects,
 * sends a recorded header and answers each command with the recorded reply (fixtures
 * agi/01-route.agi and agi/01-inbound.agi), plus rejection, timeouts, disconnects, stop and a
 * thousand concurrent sessions. Everything runs on 127.0.0.1 with an ephemeral port. */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agi/server.h"
#include "agi/session.h"
#include "core/error.h"

/* ---- the recorded dialogues ---- */

typedef struct step {
    char *expect; /* the command line the server must send, with "\n" */
    sb_buf reply; /* Asterisk's bytes in answer (may start with "HANGUP\n") */
    int code;     /* the reply's code */
} step;

typedef struct transcript {
    char *file;
    size_t header_len;
    step steps[64];
    size_t nsteps;
} transcript;

static void load(transcript *t, const char *name)
{
    size_t len = 0, pos;
    char path[256];
    snprintf(path, sizeof path, "agi/%s", name);
    memset(t, 0, sizeof *t);
    t->file = tu_read_file(tu_fixture(path), &len);
    assert_non_null(t->file);
    t->header_len = (size_t)(strstr(t->file, "\n\n") - t->file) + 2;
    for (pos = t->header_len; pos < len;) {
        char *nl = memchr(t->file + pos, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - (t->file + pos)) + 1 : len - pos;
        const char *line = t->file + pos;
        if (strncmp(line, ">>> ", 4) == 0) {
            step *s = &t->steps[t->nsteps++];
            s->expect = strndup(line + 4, l - 4);
            sb_buf_init(&s->reply, 4096);
        } else if (strncmp(line, "<<< ", 4) != 0) {
            step *s = &t->steps[t->nsteps - 1];
            assert_int_equal(sb_buf_append(&s->reply, line, l), 0);
            if (s->code == 0 && strncmp(line, "HANGUP", 6) != 0)
                s->code = atoi(line);
        }
        pos += l;
    }
}

static void unload(transcript *t)
{
    for (size_t i = 0; i < t->nsteps; i++) {
        free(t->steps[i].expect);
        sb_buf_free(&t->steps[i].reply);
    }
    free(t->file);
}

/* ---- the fake Asterisk ---- */

enum { FAKE_SCRIPT, FAKE_GENERIC, FAKE_SILENT, FAKE_CLOSE_AT, FAKE_CANNED };

typedef struct fake {
    uv_tcp_t tcp;
    uv_connect_t conn;
    int mode;
    const transcript *t;
    const char *header;
    const char *canned; /* FAKE_CANNED: the answer to every command */
    size_t header_len;
    size_t next;      /* FAKE_SCRIPT: next step */
    bool close_after; /* close once the script is done */
    size_t close_at;  /* FAKE_CLOSE_AT: close on receiving command number close_at */
    sb_buf in;
    size_t commands;
    int mismatches;
    int eof; /* the server closed the connection */
    bool closed;
    int *closed_count;
} fake;

typedef struct wreq {
    uv_write_t req;
    char data[];
} wreq;

static void on_fake_written(uv_write_t *req, int status)
{
    free(req);
}

static void fake_write(fake *f, const char *data, size_t len)
{
    wreq *w = malloc(sizeof *w + len);
    assert_non_null(w);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    assert_int_equal(uv_write(&w->req, (uv_stream_t *)&f->tcp, &b, 1, on_fake_written), 0);
}

static void on_fake_closed(uv_handle_t *h)
{
    fake *f = h->data;
    sb_buf_free(&f->in);
    if (f->closed_count)
        (*f->closed_count)++;
}

static void fake_close(fake *f)
{
    if (f->closed)
        return;
    f->closed = true;
    uv_close((uv_handle_t *)&f->tcp, on_fake_closed);
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char mem[65536];
    buf->base = mem;
    buf->len = sizeof mem;
}

static void fake_on_line(fake *f, const char *line, size_t len)
{
    size_t n = f->commands++;
    switch (f->mode) {
    case FAKE_SILENT:
        break;
    case FAKE_CANNED:
        fake_write(f, f->canned, strlen(f->canned));
        break;
    case FAKE_CLOSE_AT:
        if (n == f->close_at) {
            fake_close(f);
            return;
        }
        /* fall through */
    case FAKE_GENERIC:
        fake_write(f, "200 result=1\n", 13);
        break;
    case FAKE_SCRIPT: {
        const step *s = &f->t->steps[f->next];
        if (f->next >= f->t->nsteps || strlen(s->expect) != len ||
            memcmp(s->expect, line, len) != 0) {
            f->mismatches++;
            return;
        }
        fake_write(f, s->reply.data, s->reply.len);
        f->next++;
        if (f->next == f->t->nsteps && f->close_after)
            fake_close(f);
        break;
    }
    }
}

static void fake_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    fake *f = st->data;
    if (nread < 0) {
        f->eof++;
        fake_close(f);
        return;
    }
    assert_int_equal(sb_buf_append(&f->in, buf->base, (size_t)nread), 0);
    for (;;) {
        char *nl = f->in.len ? memchr(f->in.data, '\n', f->in.len) : NULL;
        if (!nl || f->closed)
            break;
        size_t l = (size_t)(nl - f->in.data) + 1;
        fake_on_line(f, f->in.data, l);
        if (f->closed)
            break;
        sb_buf_consume(&f->in, l);
    }
}

static void fake_connected(uv_connect_t *req, int status)
{
    fake *f = req->data;
    assert_int_equal(status, 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&f->tcp, fake_alloc, fake_read), 0);
    /* The header goes out in small pieces, as a loaded Asterisk may write it. */
    for (size_t pos = 0; pos < f->header_len; pos += 100) {
        size_t n = f->header_len - pos < 100 ? f->header_len - pos : 100;
        fake_write(f, f->header + pos, n);
    }
}

static void fake_start(uv_loop_t *loop, fake *f, int port)
{
    struct sockaddr_in addr;
    sb_buf_init(&f->in, 1 << 16);
    assert_int_equal(uv_tcp_init(loop, &f->tcp), 0);
    f->tcp.data = f;
    f->conn.data = f;
    assert_int_equal(uv_ip4_addr("127.0.0.1", port, &addr), 0);
    assert_int_equal(
        uv_tcp_connect(&f->conn, &f->tcp, (const struct sockaddr *)&addr, fake_connected), 0);
}

/* ---- the application side ---- */

typedef struct app {
    transcript *t;
    int sessions;
    int ends;
    int end_reason;
    int hangups;
    int hangup_after; /* replies seen when HANGUP arrived */
    int replies;
    int ok, failed, timedout, disconn, canceled;
    int wrong;
    int mode;
    unsigned timeout_ms;
    uint64_t end_order[4];
    int nend_order;
    agi_server *srv;
    uv_loop_t *loop;
} app;

enum { APP_SCRIPT, APP_ROUTE, APP_ONE_SLOW };

static void on_hangup(agi_session *s, void *user)
{
    app *a = user;
    a->hangups++;
    a->hangup_after = a->replies;
    assert_true(agi_session_is_hung_up(s));
}

static void on_end(agi_session *s, int reason, void *user)
{
    app *a = user;
    a->ends++;
    a->end_reason = reason;
}

/* Replies for the transcript: in order, with the recorded codes. */
static void on_script_reply(agi_session *s, int status, const agi_reply *r, void *user)
{
    app *a = user;
    size_t i = (size_t)a->replies++;
    if (status == SB_ECANCELED) {
        a->canceled++;
        return;
    }
    assert_non_null(r);
    if (r->code != a->t->steps[i].code)
        a->wrong++;
    if (status == 0)
        a->ok++;
    else if (status == SB_EFAILED)
        a->failed++;
    else
        a->wrong++;
}

static void on_session_script(agi_session *s, const agi_request *req, void *user)
{
    app *a = user;
    sb_slice v;
    a->sessions++;
    agi_session_set_handlers(s, on_hangup, on_end, a);
    if (!agi_request_get(req, "agi_network", &v) || !sb_slice_eq(v, SB_SLICE_LIT("yes")))
        a->wrong++;
    /* Queue every command at once: the session must still send them one at a time. */
    for (size_t i = 0; i < a->t->nsteps; i++) {
        sb_slice line = sb_slice_cstr(a->t->steps[i].expect);
        assert_int_equal(agi_session_send(s, line, 2000, on_script_reply, a), 0);
    }
    assert_int_equal(agi_session_pending(s), a->t->nsteps);
}

static void guard_fired(uv_timer_t *t)
{
    fail_msg("test loop still running after 20 s");
}

static void run_loop(uv_loop_t *loop)
{
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, guard_fired, 20000, 0);
    uv_unref((uv_handle_t *)&guard);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}

static agi_server *server_up(uv_loop_t *loop, app *a, agi_session_cb cb,
                             const agi_server_config *cfg_in)
{
    agi_server_config cfg = {0};
    agi_server *srv = NULL;
    if (cfg_in)
        cfg = *cfg_in;
    cfg.port = 0;
    assert_int_equal(agi_server_new(loop, &cfg, cb, a, &srv), 0);
    assert_int_equal(agi_server_start(srv), 0);
    assert_true(agi_server_port(srv) > 0);
    a->srv = srv;
    a->loop = loop;
    return srv;
}

static void test_agi_server_replays_route_fixture(void **state)
{
    uv_loop_t loop;
    transcript t;
    app a = {0};
    fake f = {0};
    int closed = 0;
    load(&t, "01-route.agi");
    a.t = &t;
    uv_loop_init(&loop);
    agi_server *srv = server_up(&loop, &a, on_session_script, NULL);
    f.mode = FAKE_SCRIPT;
    f.t = &t;
    f.header = t.file;
    f.header_len = t.header_len;
    f.closed_count = &closed;
    fake_start(&loop, &f, agi_server_port(srv));
    /* Stop the server once the session is over, so the loop ends. */
    while (a.ends == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    agi_server_free(srv);
    run_loop(&loop);

    assert_int_equal(t.nsteps, 18);
    assert_int_equal(f.mismatches, 0);
    assert_int_equal(f.next, 18); /* every command arrived, in order, byte for byte */
    assert_int_equal(f.eof, 1);   /* the server closed after the 511 */
    assert_int_equal(a.sessions, 1);
    assert_int_equal(a.replies, 18);
    assert_int_equal(a.wrong, 0);
    assert_int_equal(a.ok, 15);    /* every 200 */
    assert_int_equal(a.failed, 3); /* 510, 520 (multi-line), 511 */
    assert_int_equal(a.hangups, 1);
    assert_int_equal(a.hangup_after, 16); /* before the reply of the 17th command */
    assert_int_equal(a.ends, 1);
    assert_int_equal(a.end_reason, SB_EFAILED);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(&t);
}

static void test_agi_server_asterisk_closes_after_inbound_fixture(void **state)
{
    uv_loop_t loop;
    transcript t;
    app a = {0};
    fake f = {0};
    load(&t, "01-inbound.agi");
    a.t = &t;
    uv_loop_init(&loop);
    agi_server *srv = server_up(&loop, &a, on_session_script, NULL);
    f.mode = FAKE_SCRIPT;
    f.t = &t;
    f.header = t.file;
    f.header_len = t.header_len;
    f.close_after = true;
    fake_start(&loop, &f, agi_server_port(srv));
    while (a.ends == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    agi_server_stats st = agi_server_get_stats(srv);
    agi_server_free(srv);
    run_loop(&loop);
    assert_int_equal(f.mismatches, 0);
    assert_int_equal(a.replies, 7);
    assert_int_equal(a.ok, 7);
    assert_int_equal(a.hangups, 0);
    assert_int_equal(a.ends, 1);
    assert_int_equal(a.end_reason, 0); /* Asterisk closed: a normal end */
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(&t);
}

/* Counts outcomes by status for the generic tests. */
static void on_count(agi_session *s, int status, const agi_reply *r, void *user)
{
    app *a = user;
    a->replies++;
    if (status == 0)
        a->ok++;
    else if (status == SB_ETIMEDOUT)
        a->timedout++;
    else if (status == SB_EDISCONN)
        a->disconn++;
    else if (status == SB_ECANCELED)
        a->canceled++;
    else
        a->wrong++;
    if (status != 0 && r != NULL)
        a->wrong++; /* errors without a reply carry none */
}

static void on_session_four(agi_session *s, const agi_request *req, void *user)
{
    app *a = user;
    a->sessions++;
    agi_session_set_handlers(s, on_hangup, on_end, a);
    for (int i = 0; i < 4; i++) {
        sb_slice arg = SB_SLICE_LIT("CALLERID(num)");
        assert_int_equal(
            agi_session_command(s, a->timeout_ms, on_count, a, "GET VARIABLE", &arg, 1), 0);
    }
}

static void test_agi_server_disconnect_mid_command(void **state)
{
    uv_loop_t loop;
    transcript t;
    app a = {0};
    fake f = {0};
    load(&t, "01-inbound.agi");
    uv_loop_init(&loop);
    agi_server *srv = server_up(&loop, &a, on_session_four, NULL);
    f.mode = FAKE_CLOSE_AT;
    f.close_at = 1; /* answers the first command, hangs up on the second */
    f.header = t.file;
    f.header_len = t.header_len;
    fake_start(&loop, &f, agi_server_port(srv));
    while (a.ends == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    agi_server_free(srv);
    run_loop(&loop);
    assert_int_equal(a.ok, 1);
    assert_int_equal(a.disconn, 1);  /* the command in flight */
    assert_int_equal(a.canceled, 2); /* the two still queued */
    assert_int_equal(a.wrong, 0);
    assert_int_equal(a.ends, 1);
    assert_int_equal(a.end_reason, 0);
    assert_int_equal(f.commands, 2); /* never a command before the previous reply */
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(&t);
}

static void on_end_order(agi_session *s, int reason, void *user)
{
    app *a = user;
    a->ends++;
    a->end_reason = reason;
    a->end_order[a->nend_order++] = uv_now(a->loop);
    if (a->ends == 2)
        agi_server_stop(a->srv);
}

static void on_count_close(agi_session *s, int status, const agi_reply *r, void *user);

static void on_session_timeout(agi_session *s, const agi_request *req, void *user)
{
    app *a = user;
    sb_slice dnid;
    a->sessions++;
    agi_session_set_handlers(s, on_hangup, on_end_order, a);
    assert_true(agi_request_get(req, "agi_dnid", &dnid));
    /* The silent peer is told apart by its header (agi_dnid 34911222333 vs unknown). */
    bool slow = sb_slice_eq(dnid, SB_SLICE_LIT("34911222333"));
    agi_reply_cb cb = slow ? on_count : on_count_close;
    assert_int_equal(agi_session_command(s, slow ? 300 : 5000, cb, a, "ANSWER", NULL, 0), 0);
    assert_int_equal(agi_session_command(s, 5000, cb, a, "HANGUP", NULL, 0), 0);
}

static void test_agi_server_command_timeout_and_slow_peer_isolation(void **state)
{
    uv_loop_t loop;
    transcript slow_t, fast_t;
    app a = {0};
    fake slow = {0}, fast = {0};
    load(&slow_t, "01-inbound.agi");
    load(&fast_t, "01-route.agi");
    uv_loop_init(&loop);
    agi_server *srv = server_up(&loop, &a, on_session_timeout, NULL);
    slow.mode = FAKE_SILENT;
    slow.header = slow_t.file;
    slow.header_len = slow_t.header_len;
    fast.mode = FAKE_GENERIC;
    fast.header = fast_t.file;
    fast.header_len = fast_t.header_len;
    uint64_t t0 = uv_now(&loop);
    fake_start(&loop, &slow, agi_server_port(srv));
    fake_start(&loop, &fast, agi_server_port(srv));
    while (a.ends < 2 && uv_run(&loop, UV_RUN_ONCE))
        ;
    /* The fast session finishes while the slow one waits; it is closed by the app here. */
    agi_server_free(srv);
    run_loop(&loop);
    assert_int_equal(a.sessions, 2);
    assert_int_equal(a.timedout, 1);
    assert_int_equal(a.canceled, 1);
    assert_int_equal(a.ok, 2);
    assert_int_equal(a.ends, 2);
    assert_int_equal(a.end_reason, SB_ETIMEDOUT); /* the last to end is the slow one */
    uint64_t slow_end = a.end_order[1] - t0;
    assert_true(slow_end >= 250 && slow_end < 2000);
    assert_int_equal(slow.eof, 1);
    assert_int_equal(slow.commands, 1); /* the second command was never written */
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(&slow_t);
    unload(&fast_t);
}

/* The fast peer's session: close after both replies (the GENERIC fake waits for us). */
static void on_count_close(agi_session *s, int status, const agi_reply *r, void *user)
{
    on_count(s, status, r, user);
    if (agi_session_pending(s) == 0)
        agi_session_close(s);
}

static void on_session_never(agi_session *s, const agi_request *req, void *user)
{
    app *a = user;
    a->sessions++;
}

static void test_agi_server_rejects_unlisted_peer_and_bad_headers(void **state)
{
    uv_loop_t loop;
    app a = {0};
    fake f1 = {0}, f2 = {0}, f3 = {0};
    static const char *const only[] = {"10.9.9.9", "2001:db8::1"};
    agi_server_config cfg = {.allowed_peers = only, .nallowed = 2};
    uv_loop_init(&loop);
    agi_server *srv = server_up(&loop, &a, on_session_never, &cfg);
    f1.mode = FAKE_GENERIC;
    f1.header = "agi_network: yes\n\n";
    f1.header_len = strlen(f1.header);
    fake_start(&loop, &f1, agi_server_port(srv));
    while (f1.eof == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    agi_server_stats st = agi_server_get_stats(srv);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.accepted, 0);
    agi_server_free(srv);
    run_loop(&loop);

    /* Loopback is the default; a header without ':' and a header that never ends fail. */
    agi_server_config cfg2 = {.header_timeout_ms = 200};
    srv = server_up(&loop, &a, on_session_never, &cfg2);
    f2.mode = FAKE_GENERIC;
    f2.header = "agi_network: yes\nnot a header line\n\n";
    f2.header_len = strlen(f2.header);
    f3.mode = FAKE_GENERIC;
    f3.header = "agi_network: yes\nagi_request: agi://x/y\n";
    f3.header_len = strlen(f3.header);
    fake_start(&loop, &f2, agi_server_port(srv));
    fake_start(&loop, &f3, agi_server_port(srv));
    while ((f2.eof == 0 || f3.eof == 0) && uv_run(&loop, UV_RUN_ONCE))
        ;
    st = agi_server_get_stats(srv);
    assert_int_equal(st.failed, 2);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.active, 0);
    agi_server_free(srv);
    run_loop(&loop);
    assert_int_equal(a.sessions, 0);
    assert_int_equal(f1.commands + f2.commands + f3.commands, 0);

    agi_server *bad = NULL;
    static const char *const junk[] = {"not-an-ip"};
    agi_server_config cfg3 = {.allowed_peers = junk, .nallowed = 1};
    assert_int_equal(agi_server_new(&loop, &cfg3, on_session_never, &a, &bad), SB_EINVAL);
    assert_null(bad);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_session_hold(agi_session *s, const agi_request *req, void *user)
{
    app *a = user;
    a->sessions++;
    agi_session_set_handlers(s, on_hangup, on_end, a);
    assert_int_equal(agi_session_command(s, 0, on_count, a, "ANSWER", NULL, 0), 0);
    assert_int_equal(agi_session_command(s, 0, on_count, a, "HANGUP", NULL, 0), 0);
    if (a->sessions == 3)
        agi_server_stop(a->srv);
}

static void test_agi_server_stop_ends_open_sessions(void **state)
{
    uv_loop_t loop;
    transcript t;
    app a = {0};
    fake f[3];
    memset(f, 0, sizeof f);
    load(&t, "01-inbound.agi");
    uv_loop_init(&loop);
    agi_server *srv = server_up(&loop, &a, on_session_hold, NULL);
    for (int i = 0; i < 3; i++) {
        f[i].mode = FAKE_SILENT;
        f[i].header = t.file;
        f[i].header_len = t.header_len;
        fake_start(&loop, &f[i], agi_server_port(srv));
    }
    run_loop(&loop); /* stop() ends all three; then only closed handles remain */
    assert_int_equal(a.sessions, 3);
    assert_int_equal(a.ends, 3);
    assert_int_equal(a.end_reason, SB_ECANCELED);
    assert_int_equal(a.canceled, 6);
    assert_int_equal(a.replies, 6);
    assert_int_equal(agi_server_get_stats(srv).active, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f[i].eof, 1);
    assert_int_equal(agi_server_port(srv), -1);
    agi_server_free(srv);
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(&t);
}

/* A typical route: ANSWER, 2 GET VARIABLE, SET VARIABLE, EXEC Dial, then close. */
static void on_route_reply(agi_session *s, int status, const agi_reply *r, void *user)
{
    app *a = user;
    a->replies++;
    if (status == 0)
        a->ok++;
    else
        a->wrong++;
    if (agi_session_pending(s) == 0)
        agi_session_close(s);
}

static void on_session_route(agi_session *s, const agi_request *req, void *user)
{
    app *a = user;
    sb_slice v1 = SB_SLICE_LIT("CALLERID(num)"), v2 = SB_SLICE_LIT("CALLERID(name)");
    sb_slice set[2] = {SB_SLICE_LIT("ROUTE_TARGET"), SB_SLICE_LIT("PJSIP/1002")};
    sb_slice dial[2] = {SB_SLICE_LIT("Dial"), SB_SLICE_LIT("PJSIP/1002,30")};
    a->sessions++;
    agi_session_set_handlers(s, on_hangup, on_end, a);
    agi_session_command(s, 5000, on_route_reply, a, "ANSWER", NULL, 0);
    agi_session_command(s, 5000, on_route_reply, a, "GET VARIABLE", &v1, 1);
    agi_session_command(s, 5000, on_route_reply, a, "GET VARIABLE", &v2, 1);
    agi_session_command(s, 5000, on_route_reply, a, "SET VARIABLE", set, 2);
    agi_session_command(s, 5000, on_route_reply, a, "EXEC", dial, 2);
}

static void test_agi_server_two_thousand_concurrent_sessions(void **state)
{
    enum { N = 2000 };
    uv_loop_t loop;
    transcript t;
    app a = {0};
    fake *f = calloc(N, sizeof *f);
    int closed = 0;
    load(&t, "01-inbound.agi");
    uv_loop_init(&loop);
    agi_server *srv = server_up(&loop, &a, on_session_route, NULL);
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < N; i++) {
        f[i].mode = FAKE_GENERIC;
        f[i].header = t.file;
        f[i].header_len = t.header_len;
        f[i].closed_count = &closed;
        fake_start(&loop, &f[i], agi_server_port(srv));
    }
    while (closed < N && uv_run(&loop, UV_RUN_ONCE))
        ;
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    agi_server_stats st = agi_server_get_stats(srv);
    agi_server_free(srv);
    run_loop(&loop);
    printf("%d concurrent FastAGI sessions (5 commands each, client in the same loop) in %.3f s: "
           "%.0f sessions/s\n",
           N, secs, N / secs);
    assert_int_equal(a.sessions, N);
    assert_int_equal(a.ends, N);
    assert_int_equal(a.end_reason, 0);
    assert_int_equal(a.ok, 5 * N);
    assert_int_equal(a.wrong, 0);
    assert_int_equal(st.accepted, N);
    assert_int_equal(st.rejected + st.failed, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(f[i].commands, 5);
        assert_int_equal(f[i].eof, 1);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    unload(&t);
}

static void on_end_try_send(agi_session *s, int reason, void *user)
{
    app *a = user;
    a->ends++;
    a->end_reason = reason;
    /* Too late for commands: refused, and the callback must never run. */
    assert_int_equal(agi_session_command(s, 0, on_count, a, "ANSWER", NULL, 0), SB_ECANCELED);
}

static void on_session_bad_peer(agi_session *s, const agi_request *req, void *user)
{
    app *a = user;
    a->sessions++;
    agi_session_set_handlers(s, on_hangup, on_end_try_send, a);
    /* Lines that are not one command are refused before anything is queued. */
    assert_int_equal(agi_session_send(s, SB_SLICE_LIT("ANSWER"), 0, on_count, a), SB_EINVAL);
    assert_int_equal(agi_session_send(s, SB_SLICE_LIT("ANSWER\nHANGUP\n"), 0, on_count, a),
                     SB_EINVAL);
    assert_int_equal(agi_session_send(s, SB_SLICE_LIT("ANSWER\r\n"), 0, on_count, a), SB_EINVAL);
    assert_int_equal(agi_session_pending(s), 0);
    assert_int_equal(agi_session_send(s, SB_SLICE_LIT("ANSWER\n"), 1000, on_count, a), 0);
    assert_int_equal(agi_session_send(s, SB_SLICE_LIT("HANGUP\n"), 1000, on_count, a), 0);
}

static void on_session_flood(agi_session *s, const agi_request *req, void *user)
{
    app *a = user;
    a->sessions++;
    agi_session_set_handlers(s, on_hangup, on_end, a);
    for (int i = 0; i < AGI_SESSION_QUEUE_MAX; i++)
        assert_int_equal(agi_session_send(s, SB_SLICE_LIT("NOOP\n"), 5000, on_count_close, a), 0);
    /* The queue is bounded: one more is refused and its callback never runs. */
    assert_int_equal(agi_session_send(s, SB_SLICE_LIT("NOOP\n"), 5000, on_count_close, a),
                     SB_ETOOBIG);
}

static void test_agi_server_queue_is_bounded_and_ipv6_works(void **state)
{
    uv_loop_t loop;
    transcript t;
    app a = {0};
    fake f = {0};
    struct sockaddr_in6 addr;
    agi_server_config cfg = {.bind_host = "::1"}; /* default peers: loopback, ::1 included */
    load(&t, "01-inbound.agi");
    uv_loop_init(&loop);
    agi_server *srv = NULL;
    cfg.port = 0;
    assert_int_equal(agi_server_new(&loop, &cfg, on_session_flood, &a, &srv), 0);
    if (agi_server_start(srv) != 0) { /* no IPv6 on this machine */
        agi_server_free(srv);
        run_loop(&loop);
        uv_loop_close(&loop);
        unload(&t);
        skip();
    }
    f.mode = FAKE_GENERIC;
    f.header = t.file;
    f.header_len = t.header_len;
    sb_buf_init(&f.in, 1 << 16);
    assert_int_equal(uv_tcp_init(&loop, &f.tcp), 0);
    f.tcp.data = f.conn.data = &f;
    assert_int_equal(uv_ip6_addr("::1", agi_server_port(srv), &addr), 0);
    assert_int_equal(
        uv_tcp_connect(&f.conn, &f.tcp, (const struct sockaddr *)&addr, fake_connected), 0);
    while (a.ends == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    agi_server_free(srv);
    run_loop(&loop);
    assert_int_equal(a.sessions, 1);
    assert_int_equal(a.ok, AGI_SESSION_QUEUE_MAX);
    assert_int_equal(a.replies, AGI_SESSION_QUEUE_MAX);
    assert_int_equal(f.commands, AGI_SESSION_QUEUE_MAX);
    assert_int_equal(a.ends, 1);
    assert_int_equal(a.end_reason, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(&t);
}

/* The in-flight command gets the protocol error; the queued one is cancelled. */
static void run_bad_peer(const char *canned, size_t reply_max, int want_status)
{
    uv_loop_t loop;
    transcript t;
    app a = {0};
    fake f = {0};
    agi_server_config cfg = {.reply_max = reply_max};
    load(&t, "01-inbound.agi");
    uv_loop_init(&loop);
    agi_server *srv = server_up(&loop, &a, on_session_bad_peer, &cfg);
    f.mode = FAKE_CANNED;
    f.canned = canned;
    f.header = t.file;
    f.header_len = t.header_len;
    fake_start(&loop, &f, agi_server_port(srv));
    while (a.ends == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    agi_server_free(srv);
    run_loop(&loop);
    assert_int_equal(a.sessions, 1);
    assert_int_equal(a.ends, 1);
    assert_int_equal(a.end_reason, want_status);
    assert_int_equal(a.replies, 2);
    assert_int_equal(a.canceled, 1);
    assert_int_equal(a.wrong, 1); /* the in-flight one, with want_status */
    assert_int_equal(a.ok + a.timedout + a.disconn, 0);
    assert_int_equal(f.eof, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(&t);
}

static void test_agi_server_protocol_errors_end_the_session(void **state)
{
    run_bad_peer("hello there\n", 0, SB_EPROTO);
    /* A reply larger than the cap: no newline in sight within reply_max bytes. */
    static char big[600];
    memset(big, 'x', sizeof big - 1);
    memcpy(big, "200 result=1 (", 14);
    run_bad_peer(big, 256, SB_ETOOBIG);
}

static void test_agi_server_listed_peer_and_session_cap(void **state)
{
    uv_loop_t loop;
    transcript t;
    app a = {0};
    fake f1 = {0}, f2 = {0};
    static const char *const peers[] = {"10.9.9.9", "127.0.0.1"};
    agi_server_config cfg = {.allowed_peers = peers, .nallowed = 2, .max_sessions = 1};
    load(&t, "01-inbound.agi");
    uv_loop_init(&loop);
    agi_server *srv = server_up(&loop, &a, on_session_hold, &cfg);
    a.sessions = 10; /* on_session_hold stops the server at its third session: not here */
    f1.mode = f2.mode = FAKE_SILENT;
    f1.header = f2.header = t.file;
    f1.header_len = f2.header_len = t.header_len;
    fake_start(&loop, &f1, agi_server_port(srv));
    while (a.sessions < 11 && uv_run(&loop, UV_RUN_ONCE))
        ;
    fake_start(&loop, &f2, agi_server_port(srv)); /* over max_sessions: refused */
    while (f2.eof == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    agi_server_stats st = agi_server_get_stats(srv);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.active, 1);
    assert_int_equal(f2.commands, 0);
    agi_server_free(srv); /* ends the open session */
    run_loop(&loop);
    assert_int_equal(a.ends, 1);
    assert_int_equal(a.end_reason, SB_ECANCELED);
    assert_int_equal(f1.commands, 1);
    assert_int_equal(f1.eof, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(&t);
}

int main(void)
{
    /* As in src/main.c: a peer that closed first must not kill the process with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agi_server_replays_route_fixture),
        cmocka_unit_test(test_agi_server_asterisk_closes_after_inbound_fixture),
        cmocka_unit_test(test_agi_server_disconnect_mid_command),
        cmocka_unit_test(test_agi_server_command_timeout_and_slow_peer_isolation),
        cmocka_unit_test(test_agi_server_rejects_unlisted_peer_and_bad_headers),
        cmocka_unit_test(test_agi_server_stop_ends_open_sessions),
        cmocka_unit_test(test_agi_server_protocol_errors_end_the_session),
        cmocka_unit_test(test_agi_server_listed_peer_and_session_cap),
        cmocka_unit_test(test_agi_server_queue_is_bounded_and_ipv6_works),
        cmocka_unit_test(test_agi_server_two_thousand_concurrent_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
