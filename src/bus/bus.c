/* bus.c: streams with sequence numbers, ring-buffer replay windows and live subscribers
 * (see bus.h).
 *
 * Each stream keeps a ring of entries that grows by doubling up to window_events, so thousands of
 * quiet agent streams cost a few bytes each, not a full window. A publish first reserves room in
 * every target stream and only then appends, so it either reaches all of them or none.
 * Subscribers live in a list per stream; unsubscribing during a delivery only marks the entry,
 * and the list is swept once the delivery loop is done.
 */
#include "bus/bus.h"

#include "core/error.h"
#include "core/strmap.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUS_DEFAULT_EVENTS 10000
#define BUS_DEFAULT_MS (10 * 60 * 1000)

struct bus_event {
    atomic_uint refs;
    bool published;
    char *text; /* the only form kept: a window holds many events, a json_t costs ~4x more */
    size_t len;
    char *type;
    char **agents;
    size_t nagents;
    char *queue;
};

struct bus_sub {
    bus_stream *s;
    bus_deliver_cb cb;
    void *ud;
    uint64_t last; /* highest seq delivered or skipped */
    bool dead;
    bool replaying; /* inside bus_subscribe_from: live delivery waits */
    bus_sub *prev, *next;
};

struct bus_stream {
    bus *b;
    char *agent; /* NULL: global */
    unsigned opens;
    uint64_t last_seq;
    bus_entry *ring;
    size_t cap, head, count;
    bus_sub *subs_head, *subs_tail;
    unsigned delivering;
    bool has_dead;
    uint64_t mark; /* publish round that last selected this stream */
    char **queues;
    size_t nqueues;
};

typedef struct watchers {
    bus_stream **v;
    size_t n, cap;
} watchers;

struct bus {
    bus_config cfg;
    bus_stream global;
    sb_strmap agents;  /* agent -> bus_stream* */
    sb_strmap watches; /* queue -> watchers* */
    uint64_t round;
};

/* ---- events ---- */

bus_event *bus_event_new(json_t *obj)
{
    bus_event *ev = NULL;
    const char *type;
    if (!json_is_object(obj))
        goto fail;
    type = json_string_value(json_object_get(obj, "type"));
    if (!type)
        goto fail;
    ev = calloc(1, sizeof *ev);
    if (!ev)
        goto fail;
    ev->type = strdup(type);
    ev->text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!ev->type || !ev->text || ev->text[0] != '{')
        goto fail;
    ev->len = strlen(ev->text);
    atomic_init(&ev->refs, 1);
    json_decref(obj);
    return ev;
fail:
    if (ev) {
        free(ev->text);
        free(ev->type);
    }
    free(ev);
    json_decref(obj);
    return NULL;
}

int bus_event_add_agent(bus_event *ev, const char *agent)
{
    char **v;
    if (ev->published || !agent || !*agent)
        return SB_EINVAL;
    for (size_t i = 0; i < ev->nagents; i++)
        if (strcmp(ev->agents[i], agent) == 0)
            return 0;
    v = realloc(ev->agents, (ev->nagents + 1) * sizeof *v);
    if (!v)
        return SB_ENOMEM;
    ev->agents = v;
    v[ev->nagents] = strdup(agent);
    if (!v[ev->nagents])
        return SB_ENOMEM;
    ev->nagents++;
    return 0;
}

int bus_event_set_queue(bus_event *ev, const char *queue)
{
    char *q;
    if (ev->published || !queue || !*queue)
        return SB_EINVAL;
    q = strdup(queue);
    if (!q)
        return SB_ENOMEM;
    free(ev->queue);
    ev->queue = q;
    return 0;
}

bus_event *bus_event_ref(bus_event *ev)
{
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
    return ev;
}

void bus_event_unref(bus_event *ev)
{
    if (!ev || atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ev->nagents; i++)
        free(ev->agents[i]);
    free(ev->agents);
    free(ev->queue);
    free(ev->text);
    free(ev->type);
    free(ev);
}

const char *bus_event_text(const bus_event *ev, size_t *len)
{
    if (len)
        *len = ev->len;
    return ev->text;
}

json_t *bus_event_parse(const bus_event *ev)
{
    return json_loadb(ev->text, ev->len, 0, NULL);
}

const char *bus_event_type(const bus_event *ev)
{
    return ev->type;
}

size_t bus_event_agent_count(const bus_event *ev)
{
    return ev->nagents;
}

const char *bus_event_agent(const bus_event *ev, size_t i)
{
    return i < ev->nagents ? ev->agents[i] : NULL;
}

const char *bus_event_queue(const bus_event *ev)
{
    return ev->queue;
}

unsigned bus_event_refcount(const bus_event *ev)
{
    return atomic_load_explicit(&ev->refs, memory_order_relaxed);
}

int bus_entry_format(const bus_entry *e, sb_buf *out)
{
    size_t before = out->len;
    int rc;
    const char *rest = e->ev->text + 1; /* after '{' */
    bool empty = rest[0] == '}';
    rc = sb_buf_printf(out, "{\"seq\":%llu%s", (unsigned long long)e->seq, empty ? "" : ",");
    if (rc == 0)
        rc = sb_buf_append(out, rest, e->ev->len - 1);
    if (rc < 0) {
        out->len = before;
        if (out->data)
            out->data[before] = '\0';
    }
    return rc;
}

/* ---- streams ---- */

static int64_t now_ms(const bus *b)
{
    struct timespec ts;
    if (b->cfg.now_ms)
        return b->cfg.now_ms(b->cfg.clock_ud);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bus_entry *ring_at(bus_stream *s, size_t i)
{
    return &s->ring[(s->head + i) % s->cap];
}

static void ring_drop_oldest(bus_stream *s)
{
    bus_entry *e = ring_at(s, 0);
    bus_event_unref(e->ev);
    e->ev = NULL;
    s->head = (s->head + 1) % s->cap;
    s->count--;
}

static void stream_expire(bus_stream *s, int64_t now)
{
    while (s->count > 0 && now - ring_at(s, 0)->time_ms > s->b->cfg.window_ms)
        ring_drop_oldest(s);
}

/* Makes room for one more entry (growing the ring, or planning to drop the oldest). */
static int ring_reserve(bus_stream *s)
{
    size_t max = s->b->cfg.window_events;
    size_t ncap;
    bus_entry *r;
    if (s->count < s->cap || s->cap >= max)
        return 0;
    ncap = s->cap ? s->cap * 2 : 8;
    if (ncap > max)
        ncap = max;
    r = malloc(ncap * sizeof *r);
    if (!r)
        return SB_ENOMEM;
    for (size_t i = 0; i < s->count; i++)
        r[i] = *ring_at(s, i);
    free(s->ring);
    s->ring = r;
    s->cap = ncap;
    s->head = 0;
    return 0;
}

static void ring_push(bus_stream *s, bus_event *ev, int64_t now)
{
    if (s->count == s->cap)
        ring_drop_oldest(s);
    bus_entry *e = ring_at(s, s->count);
    e->seq = ++s->last_seq;
    e->time_ms = now;
    e->ev = bus_event_ref(ev);
    s->count++;
}

static void subs_sweep(bus_stream *s)
{
    bus_sub *sub = s->subs_head;
    if (s->delivering || !s->has_dead)
        return;
    while (sub) {
        bus_sub *next = sub->next;
        if (sub->dead) {
            if (sub->prev)
                sub->prev->next = sub->next;
            else
                s->subs_head = sub->next;
            if (sub->next)
                sub->next->prev = sub->prev;
            else
                s->subs_tail = sub->prev;
            free(sub);
        }
        sub = next;
    }
    s->has_dead = false;
}

static void watchers_remove(bus *b, const char *queue, bus_stream *s)
{
    watchers *w = sb_strmap_get(&b->watches, sb_slice_cstr(queue));
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        if (w->v[i] == s) {
            w->v[i] = w->v[--w->n];
            break;
        }
    }
    if (w->n == 0) {
        sb_strmap_del(&b->watches, sb_slice_cstr(queue));
        free(w->v);
        free(w);
    }
}

static void stream_clear(bus_stream *s)
{
    while (s->count)
        ring_drop_oldest(s);
    free(s->ring);
    s->ring = NULL;
    s->cap = s->head = 0;
    bus_sub *sub = s->subs_head;
    while (sub) {
        bus_sub *next = sub->next;
        free(sub);
        sub = next;
    }
    s->subs_head = s->subs_tail = NULL;
    for (size_t i = 0; i < s->nqueues; i++)
        free(s->queues[i]);
    free(s->queues);
    s->queues = NULL;
    s->nqueues = 0;
}

static void stream_destroy(bus_stream *s)
{
    bus *b = s->b;
    for (size_t i = 0; i < s->nqueues; i++)
        watchers_remove(b, s->queues[i], s);
    sb_strmap_del(&b->agents, sb_slice_cstr(s->agent));
    stream_clear(s);
    free(s->agent);
    free(s);
}

static void stream_release(bus_stream *s)
{
    if (!s->agent)
        return;
    if (--s->opens == 0)
        stream_destroy(s);
}

bus *bus_new(const bus_config *cfg)
{
    bus *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    if (cfg)
        b->cfg = *cfg;
    if (b->cfg.window_events == 0)
        b->cfg.window_events = BUS_DEFAULT_EVENTS;
    if (b->cfg.window_ms <= 0)
        b->cfg.window_ms = BUS_DEFAULT_MS;
    b->global.b = b;
    b->global.opens = 1;
    sb_strmap_init(&b->agents);
    sb_strmap_init(&b->watches);
    return b;
}

void bus_free(bus *b)
{
    sb_strmap_iter it;
    void *v;
    if (!b)
        return;
    sb_strmap_iter_init(&it, &b->agents);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        bus_stream *s = v;
        stream_clear(s);
        free(s->agent);
        free(s);
    }
    sb_strmap_free(&b->agents);
    sb_strmap_iter_init(&it, &b->watches);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        watchers *w = v;
        free(w->v);
        free(w);
    }
    sb_strmap_free(&b->watches);
    stream_clear(&b->global);
    free(b);
}

bus_stream *bus_global(bus *b)
{
    return &b->global;
}

int bus_stream_open(bus *b, const char *agent, bus_stream **out)
{
    bus_stream *s;
    *out = NULL;
    if (!agent || !*agent)
        return SB_EINVAL;
    s = sb_strmap_get(&b->agents, sb_slice_cstr(agent));
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return SB_ENOMEM;
        s->b = b;
        s->agent = strdup(agent);
        if (!s->agent || sb_strmap_put(&b->agents, sb_slice_cstr(agent), s) < 0) {
            free(s->agent);
            free(s);
            return SB_ENOMEM;
        }
    }
    s->opens++;
    *out = s;
    return 0;
}

void bus_stream_close(bus_stream *s)
{
    if (s)
        stream_release(s);
}

int bus_stream_watch_queue(bus_stream *s, const char *queue)
{
    bus *b = s->b;
    watchers *w;
    char **qs;
    if (!s->agent || !queue || !*queue)
        return SB_EINVAL;
    for (size_t i = 0; i < s->nqueues; i++)
        if (strcmp(s->queues[i], queue) == 0)
            return 0;
    w = sb_strmap_get(&b->watches, sb_slice_cstr(queue));
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w || sb_strmap_put(&b->watches, sb_slice_cstr(queue), w) < 0) {
            free(w);
            return SB_ENOMEM;
        }
    }
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 4;
        bus_stream **v = realloc(w->v, ncap * sizeof *v);
        if (!v)
            goto nomem;
        w->v = v;
        w->cap = ncap;
    }
    qs = realloc(s->queues, (s->nqueues + 1) * sizeof *qs);
    if (!qs)
        goto nomem;
    s->queues = qs;
    qs[s->nqueues] = strdup(queue);
    if (!qs[s->nqueues])
        goto nomem;
    s->nqueues++;
    w->v[w->n++] = s;
    return 0;
nomem:
    if (w->n == 0) {
        sb_strmap_del(&b->watches, sb_slice_cstr(queue));
        free(w->v);
        free(w);
    }
    return SB_ENOMEM;
}

uint64_t bus_stream_last_seq(const bus_stream *s)
{
    return s->last_seq;
}

uint64_t bus_stream_first_seq(bus_stream *s)
{
    stream_expire(s, now_ms(s->b));
    return s->last_seq - s->count + 1;
}

size_t bus_stream_window_count(bus_stream *s)
{
    stream_expire(s, now_ms(s->b));
    return s->count;
}

const char *bus_stream_agent(const bus_stream *s)
{
    return s->agent;
}

/* ---- publish and deliver ---- */

/* Index of seq in the ring, or -1. */
static long ring_find(bus_stream *s, uint64_t seq)
{
    uint64_t first = s->last_seq - s->count + 1;
    if (s->count == 0 || seq < first || seq > s->last_seq)
        return -1;
    return (long)(seq - first);
}

/* Brings every live subscriber of s up to the stream's last seq. Catching up (rather than
 * handing out one entry) keeps order and completeness even when a callback publishes: the
 * nested publish delivers the outer entry first, and the outer loop then finds nothing left. */
static void deliver(bus_stream *s)
{
    s->delivering++;
    for (bus_sub *sub = s->subs_head; sub; sub = sub->next) {
        while (!sub->dead && !sub->replaying && sub->last < s->last_seq) {
            long i = ring_find(s, sub->last + 1);
            if (i < 0) {
                /* Only if callbacks published more than a whole window meanwhile. */
                sub->last = s->last_seq - s->count;
                continue;
            }
            bus_entry e = *ring_at(s, (size_t)i);
            sub->last = e.seq;
            bus_event_ref(e.ev);
            sub->cb(sub->ud, &e);
            bus_event_unref(e.ev);
        }
    }
    s->delivering--;
    subs_sweep(s);
}

static int add_target(bus_stream ***v, size_t *n, size_t *cap, bus_stream *s, uint64_t round)
{
    if (s->mark == round)
        return 0;
    if (*n == *cap) {
        size_t ncap = *cap * 2;
        bus_stream **nv = realloc(*v, ncap * sizeof *nv);
        if (!nv)
            return SB_ENOMEM;
        *v = nv;
        *cap = ncap;
    }
    s->mark = round;
    (*v)[(*n)++] = s;
    return 0;
}

int bus_publish(bus *b, bus_event *ev, uint64_t *seq_out)
{
    size_t n = 0, cap = 8;
    bus_stream **targets = malloc(cap * sizeof *targets);
    int64_t now = now_ms(b);
    uint64_t round = ++b->round;
    int rc = SB_ENOMEM;
    if (!targets)
        return SB_ENOMEM;
    if (add_target(&targets, &n, &cap, &b->global, round) < 0)
        goto out;
    for (size_t i = 0; i < ev->nagents; i++) {
        bus_stream *s = sb_strmap_get(&b->agents, sb_slice_cstr(ev->agents[i]));
        if (s && add_target(&targets, &n, &cap, s, round) < 0)
            goto out;
    }
    if (ev->queue) {
        watchers *w = sb_strmap_get(&b->watches, sb_slice_cstr(ev->queue));
        for (size_t i = 0; w && i < w->n; i++)
            if (add_target(&targets, &n, &cap, w->v[i], round) < 0)
                goto out;
    }
    for (size_t i = 0; i < n; i++) {
        stream_expire(targets[i], now);
        if (ring_reserve(targets[i]) < 0)
            goto out;
    }
    ev->published = true;
    for (size_t i = 0; i < n; i++) {
        if (targets[i]->agent)
            targets[i]->opens++; /* a subscriber may close the stream while we deliver */
        ring_push(targets[i], ev, now);
    }
    if (seq_out)
        *seq_out = b->global.last_seq;
    for (size_t i = 0; i < n; i++) {
        deliver(targets[i]);
        stream_release(targets[i]);
    }
    rc = 0;
out:
    free(targets);
    return rc;
}

static int replay_check(bus_stream *s, uint64_t after_seq)
{
    uint64_t first;
    stream_expire(s, now_ms(s->b));
    first = s->last_seq - s->count + 1;
    if (after_seq > s->last_seq || after_seq + 1 < first)
        return BUS_GAP;
    return 0;
}

int bus_replay(bus_stream *s, uint64_t after_seq, bus_deliver_cb cb, void *ud)
{
    uint64_t last;
    int rc = replay_check(s, after_seq);
    if (rc)
        return rc;
    last = s->last_seq;
    if (s->agent)
        s->opens++;
    for (uint64_t seq = after_seq + 1; seq <= last; seq++) {
        long i = ring_find(s, seq);
        if (i < 0)
            break; /* evicted by a publish made from inside cb */
        bus_entry e = *ring_at(s, (size_t)i);
        bus_event_ref(e.ev);
        cb(ud, &e);
        bus_event_unref(e.ev);
    }
    if (s->agent)
        stream_release(s);
    return 0;
}

bus_sub *bus_subscribe(bus_stream *s, bus_deliver_cb cb, void *ud)
{
    bus_sub *sub = calloc(1, sizeof *sub);
    if (!sub)
        return NULL;
    sub->s = s;
    sub->cb = cb;
    sub->ud = ud;
    sub->last = s->last_seq;
    sub->prev = s->subs_tail;
    if (s->subs_tail)
        s->subs_tail->next = sub;
    else
        s->subs_head = sub;
    s->subs_tail = sub;
    if (s->agent)
        s->opens++;
    return sub;
}

int bus_subscribe_from(bus_stream *s, uint64_t after_seq, bus_deliver_cb cb, void *ud,
                       bus_sub **out)
{
    int rc;
    bool dead;
    *out = NULL;
    rc = replay_check(s, after_seq);
    if (rc)
        return rc;
    bus_sub *sub = bus_subscribe(s, cb, ud);
    if (!sub)
        return SB_ENOMEM;
    /* While replaying, live delivery skips this subscriber (a callback may publish); the loop
     * runs until it has caught up with the stream, so nothing is lost or doubled. Frees are
     * deferred: cb may unsubscribe (sub stays readable) or close the stream. */
    sub->replaying = true;
    sub->last = after_seq;
    *out = sub;
    if (s->agent)
        s->opens++;
    s->delivering++;
    for (uint64_t seq = after_seq + 1; seq <= s->last_seq && !sub->dead; seq++) {
        long i = ring_find(s, seq);
        if (i < 0)
            break;
        bus_entry e = *ring_at(s, (size_t)i);
        sub->last = seq;
        bus_event_ref(e.ev);
        cb(ud, &e);
        bus_event_unref(e.ev);
    }
    sub->replaying = false;
    dead = sub->dead;
    s->delivering--;
    subs_sweep(s);
    stream_release(s);
    *out = dead ? NULL : sub;
    return 0;
}

void bus_unsubscribe(bus_sub *sub)
{
    bus_stream *s;
    if (!sub || sub->dead)
        return;
    s = sub->s;
    sub->dead = true;
    s->has_dead = true;
    if (s->agent)
        s->opens++; /* keep s alive across the sweep */
    subs_sweep(s);
    stream_release(s); /* the subscription's open */
    stream_release(s); /* ours */
}

void bus_expire(bus *b)
{
    sb_strmap_iter it;
    void *v;
    int64_t now = now_ms(b);
    stream_expire(&b->global, now);
    sb_strmap_iter_init(&it, &b->agents);
    while (sb_strmap_iter_next(&it, NULL, &v))
        stream_expire(v, now);
}
