/* outbox_test_sink.h: a scriptable sink for the outbox tests (header-only, static functions).
 *
 * It records every delivery attempt and every accepted event, and answers each event with the
 * verdict its `decide` function returns, either at once (inside deliver) or on a later loop turn.
 */
#ifndef SB_OUTBOX_TEST_SINK_H
#define SB_OUTBOX_TEST_SINK_H

#include "core/error.h"
#include "outbox/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define TS_MAX 200000

typedef struct tsink tsink;
typedef outbox_result (*ts_decide_fn)(tsink *t, const outbox_event *ev);

typedef struct ts_pending {
    outbox_delivery *d;
    outbox_done_cb done;
    size_t n;
    outbox_result *res;
    struct ts_pending *next;
} ts_pending;

struct tsink {
    uv_loop_t *loop;
    ts_decide_fn decide;
    bool is_async;
    void *user;
    int deliver_calls, free_calls, cancel_calls;
    int attempts;       /* events offered, all attempts */
    int ok;             /* events accepted */
    int64_t *ok_seq;    /* accepted seqs in the order accepted */
    char (*ok_key)[16]; /* their call keys */
    int64_t *att_seq;   /* every offered seq */
    uint32_t *att_no;   /* its attempt number */
    uint64_t *att_ms;   /* loop time of the offer */
    int max_batch_seen;
    ts_pending *pending;
    uv_timer_t timer;
    int flush_ms;           /* async answers come this late (default 1) */
    int fail_deliver_calls; /* the first N deliver() calls fail outright */
    int fd;                 /* when >= 0, accepted "seq id\n" lines are written here (crash test) */
};

static outbox_result ts_ok(tsink *t, const outbox_event *ev)
{
    return (outbox_result){OUTBOX_OK, 0, NULL};
}

static void ts_flush(uv_timer_t *h)
{
    tsink *t = h->data;
    ts_pending *p = t->pending;
    t->pending = NULL;
    while (p) {
        ts_pending *next = p->next;
        p->done(p->d, p->res);
        free(p->res);
        free(p);
        p = next;
    }
}

static int ts_deliver(void *impl, const outbox_event *const *batch, size_t n, outbox_done_cb done,
                      outbox_delivery *d)
{
    tsink *t = impl;
    t->deliver_calls++;
    if (t->fail_deliver_calls > 0) {
        t->fail_deliver_calls--;
        return SB_EDISCONN;
    }
    if ((int)n > t->max_batch_seen)
        t->max_batch_seen = (int)n;
    outbox_result *res = calloc(n, sizeof *res);
    if (!res)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const outbox_event *ev = batch[i];
        if (t->attempts < TS_MAX) {
            t->att_seq[t->attempts] = ev->seq;
            t->att_no[t->attempts] = ev->attempt;
            t->att_ms[t->attempts] = uv_now(t->loop);
        }
        t->attempts++;
        res[i] = t->decide(t, ev);
        if (res[i].verdict == OUTBOX_OK) {
            if (t->ok < TS_MAX) {
                t->ok_seq[t->ok] = ev->seq;
                snprintf(t->ok_key[t->ok], sizeof t->ok_key[0], "%s", ev->call_key);
            }
            t->ok++;
            if (t->fd >= 0) {
                char line[256];
                int len = snprintf(line, sizeof line, "%lld %s %s\n", (long long)ev->seq, ev->id,
                                   ev->call_key[0] ? ev->call_key : "-");
                if (write(t->fd, line, (size_t)len) != len)
                    abort();
            }
        }
    }
    if (!t->is_async) {
        done(d, res);
        free(res);
        return 0;
    }
    ts_pending *p = calloc(1, sizeof *p);
    *p = (ts_pending){d, done, n, res, NULL};
    ts_pending **tail = &t->pending;
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
    if (!uv_is_active((uv_handle_t *)&t->timer))
        uv_timer_start(&t->timer, ts_flush, (uint64_t)(t->flush_ms ? t->flush_ms : 1), 0);
    return 0;
}

static void ts_cancel(void *impl)
{
    tsink *t = impl;
    t->cancel_calls++;
}

static void ts_free(void *impl)
{
    tsink *t = impl;
    t->free_calls++;
}

static const outbox_sink_ops ts_ops = {"test", NULL, ts_deliver, ts_cancel, ts_free};

static void ts_init(tsink *t, uv_loop_t *loop, ts_decide_fn decide)
{
    memset(t, 0, sizeof *t);
    t->loop = loop;
    t->decide = decide ? decide : ts_ok;
    t->ok_seq = calloc(TS_MAX, sizeof *t->ok_seq);
    t->ok_key = calloc(TS_MAX, sizeof *t->ok_key);
    t->att_seq = calloc(TS_MAX, sizeof *t->att_seq);
    t->att_no = calloc(TS_MAX, sizeof *t->att_no);
    t->att_ms = calloc(TS_MAX, sizeof *t->att_ms);
    t->fd = -1;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
}

/* Closes the timer; run the loop afterwards. */
static void ts_fini(tsink *t)
{
    uv_close((uv_handle_t *)&t->timer, NULL);
    free(t->ok_seq);
    free(t->ok_key);
    free(t->att_seq);
    free(t->att_no);
    free(t->att_ms);
}

#endif
