/* http_test_util.h: helpers for the test_http_* programs: a server on 127.0.0.1 port 0 with the
 * loop on the test's thread, a client function run on a second thread (libcurl easy API or raw
 * sockets) while the loop serves it, and raw-socket read helpers. Client threads never call cmocka
 * asserts (they would longjmp across threads): they record results that the test checks after
 * the thread has been joined. */
#ifndef HTTP_TEST_UTIL_H
#define HTTP_TEST_UTIL_H

#include "testutil.h"

#include "http/router.h"
#include "http/server.h"
#include "http/stream.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

typedef struct ht_fixture {
    uv_loop_t loop;
    http_server *srv;
    http_router *router;
    int port;
} ht_fixture;

/* Starts a server whose handler is f->router (unless cfg names another). */
static void __attribute__((unused)) ht_start(ht_fixture *f, const http_server_config *cfg_in)
{
    http_server_config cfg = *cfg_in;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(http_router_init(&f->router), 0);
    if (!cfg.handler) {
        cfg.handler = http_router_handle;
        cfg.handler_ud = f->router;
    }
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    assert_int_equal(http_server_init(&f->srv, &f->loop, &cfg), 0);
    assert_int_equal(http_server_start(f->srv), 0);
    f->port = http_server_port(f->srv);
    assert_true(f->port > 0);
}

static void __attribute__((unused)) ht_stop(ht_fixture *f)
{
    http_server_free(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    http_router_free(f->router);
}

typedef struct ht_run {
    uv_async_t async;
    uv_timer_t guard;
    void (*fn)(void *);
    void *arg;
    int timed_out;
} ht_run;

static void ht_client_thread(void *p)
{
    ht_run *r = p;
    r->fn(r->arg);
    uv_async_send(&r->async);
}

static void ht_async_cb(uv_async_t *a)
{
    uv_stop(a->loop);
}

static void ht_guard_cb(uv_timer_t *t)
{
    ht_run *r = t->data;
    r->timed_out = 1;
    uv_stop(t->loop);
}

static void ht_noop_close(uv_handle_t *h)
{
    (void)h;
}

/* Runs fn(arg) on a client thread while the loop serves; fails after 20 s. */
static void __attribute__((unused)) ht_run_client(ht_fixture *f, void (*fn)(void *), void *arg)
{
    ht_run r;
    uv_thread_t th;
    memset(&r, 0, sizeof(r));
    r.fn = fn;
    r.arg = arg;
    assert_int_equal(uv_async_init(&f->loop, &r.async, ht_async_cb), 0);
    uv_timer_init(&f->loop, &r.guard);
    r.guard.data = &r;
    uv_timer_start(&r.guard, ht_guard_cb, 20000, 0);
    assert_int_equal(uv_thread_create(&th, ht_client_thread, &r), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    if (r.timed_out)
        fail_msg("client thread did not finish in 20 s");
    uv_thread_join(&th);
    uv_close((uv_handle_t *)&r.async, ht_noop_close);
    uv_close((uv_handle_t *)&r.guard, ht_noop_close);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Runs the loop for ms milliseconds (lets timers and closes happen). */
static void ht_stop_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void __attribute__((unused)) ht_spin(ht_fixture *f, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    uv_timer_start(&t, ht_stop_cb, ms, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, ht_noop_close);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static uint64_t __attribute__((unused)) ht_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- raw sockets (client thread) ---- */

static int __attribute__((unused)) ht_connect(int port, int rcvbuf)
{
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        close(fd);
        return -1;
    }
    return fd;
}

static int __attribute__((unused)) ht_send(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int __attribute__((unused)) ht_sends(int fd, const char *s)
{
    return ht_send(fd, s, strlen(s));
}

/* Reads until EOF, error or timeout; returns bytes read (buf NUL-terminated). */
static size_t __attribute__((unused)) ht_recv_all(int fd, char *buf, size_t size)
{
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

/* Reads one response with a Content-Length (or none: then up to the blank line); returns its
 * length, or 0 when the connection ended first. Bytes past it are lost, so callers pipeline only
 * where each response is read whole before the next is sent, or use ht_recv_all. */
static size_t __attribute__((unused)) ht_recv_response(int fd, char *buf, size_t size)
{
    size_t got = 0;
    while (got + 1 < size) {
        char *end;
        ssize_t n;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end) {
            const char *cl = strstr(buf, "\r\nContent-Length:");
            size_t need = (size_t)(end + 4 - buf);
            if (cl && cl < end)
                need += (size_t)strtoul(cl + 17, NULL, 10);
            if (got >= need) {
                buf[need] = '\0';
                return need;
            }
        }
        n = recv(fd, buf + got, size - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return 0;
}

static int __attribute__((unused)) ht_status(const char *resp)
{
    if (strncmp(resp, "HTTP/1.1 ", 9))
        return -1;
    return atoi(resp + 9);
}

/* ---- libcurl (client thread) ---- */

typedef struct ht_resp {
    long status;
    long connects;
    char body[65536];
    size_t body_len;
    char head[8192];
    size_t head_len;
    CURLcode rc;
} ht_resp;

static size_t ht_body_cb(char *p, size_t sz, size_t n, void *ud)
{
    ht_resp *r = ud;
    size_t len = sz * n, room = sizeof(r->body) - 1 - r->body_len;
    if (len > room)
        len = room;
    memcpy(r->body + r->body_len, p, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return sz * n;
}

static size_t ht_head_cb(char *p, size_t sz, size_t n, void *ud)
{
    ht_resp *r = ud;
    size_t len = sz * n, room = sizeof(r->head) - 1 - r->head_len;
    if (len > room)
        len = room;
    memcpy(r->head + r->head_len, p, len);
    r->head_len += len;
    r->head[r->head_len] = '\0';
    return sz * n;
}

/* One request on handle h (reuse h to reuse the connection). headers: NULL-terminated or NULL. */
static void __attribute__((unused))
ht_curl(CURL *h, int port, const char *method, const char *path, const char *const *headers,
        const char *body, ht_resp *r)
{
    char url[4096];
    struct curl_slist *sl = NULL;
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ht_body_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, ht_head_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    for (; headers && *headers; headers++)
        sl = curl_slist_append(sl, *headers);
    if (sl)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_slist_free_all(sl);
}

#endif
