/* sink_test_harness.h: what the AWS and webhook sink tests share — a loop with the in-test HTTP
 * receiver and an httpc client, and a fake outbox delivery that records one batch's results.
 * Include after http_receiver.h, with MAXEV defined (the most events one test delivers). */
#ifndef SB_SINK_TEST_HARNESS_H
#define SB_SINK_TEST_HARNESS_H

#include "http_receiver.h"
#include "net/httpc.h"
#include "outbox/outbox.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef MAXEV
#error "define MAXEV before including sink_test_harness.h"
#endif

static rx_server *srv;
static uv_loop_t loop;
static uv_timer_t guard;
static httpc *http;

/* Keeps the loop turning so run_until() always wakes up to check its deadline. */
static void guard_cb(uv_timer_t *t)
{
    (void)t;
}

/* cmocka setup: the receiver answers with h, the client is ready. */
static int sink_test_setup(rx_handler h)
{
    srv = calloc(1, sizeof *srv);
    if (!srv || uv_loop_init(&loop) != 0 || rx_start(srv, &loop, h, NULL) != 0)
        return -1;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, guard_cb, 5, 5);
    http = httpc_new(&loop, NULL);
    return http ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    httpc_free(http);
    rx_stop(srv);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(srv);
    return 0;
}

/* A fake outbox: one delivery's results, and how many times the sink answered. */
typedef struct fake_delivery {
    int calls;
    size_t n;
    outbox_result res[MAXEV];
    char why[MAXEV][256];
} fake_delivery;

static void on_done(outbox_delivery *d, const outbox_result *results)
{
    fake_delivery *f = (fake_delivery *)d;
    f->calls++;
    for (size_t i = 0; i < f->n; i++) {
        f->res[i] = results[i];
        snprintf(f->why[i], sizeof f->why[i], "%s", results[i].error ? results[i].error : "");
        /* error is borrowed: keep a copy, as the outbox does (NULL stays NULL) */
        f->res[i].error = results[i].error ? f->why[i] : NULL;
    }
}

/* Runs the loop until *count reaches want or limit_ms passes; true when it was reached. */
static bool run_until(const int *count, int want, uint64_t limit_ms)
{
    uint64_t end = uv_hrtime() + limit_ms * 1000000ull;
    while (*count < want && uv_hrtime() < end)
        uv_run(&loop, UV_RUN_ONCE);
    return *count >= want;
}

#endif
