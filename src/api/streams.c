/* streams.c: the stream routes (docs/streams.md): subscriptions that hand out stream tokens, and
 * one agent's (or the supervisor's) stream over SSE, WebSocket and long-poll.
 *
 * Every transport starts the same way (docs/bus.md): a new client gets a "snapshot" event whose
 * seq is the stream's last sequence number and then follows the stream from there; a client that
 * names a seq (Last-Event-ID, ?lastEventId=, ?after=, or a WebSocket {"resume":SEQ}) gets every
 * event after it from the replay window, or a "resync" event (the full state) when the window no
 * longer reaches back that far. bus_subscribe_from() joins the replay and the live flow with no
 * hole and no duplicate. Live events are framed once per stream (stream_hub_msg) and pushed by
 * reference; a client whose unsent bytes pass the server's stream_max_queued is dropped by the
 * HTTP layer with a visible reason and may resume from its last seq.
 */
#include "api/streams_internal.h"

#include "core/error.h"
#include "core/log.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_QUEUES 64
#define MAX_QUEUE_NAME 128

/* ---- principals ---- */

/* What the auth hook of a stream route found; attached to the request. */
typedef struct stream_auth {
    stream_token *tok; /* NULL when a Bearer API token was used */
    char ext[STREAM_EXT_MAX];
    streams_role role;
} stream_auth;

static bool ext_ok(sb_slice e)
{
    if (e.len == 0 || e.len >= STREAM_EXT_MAX)
        return false;
    for (size_t i = 0; i < e.len; i++) {
        char c = e.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-' || c == '.' || c == '+' || c == '*' || c == '#'))
            return false;
    }
    return true;
}

static int bearer_role(streams *s, http_request *req, sb_slice token, stream_auth *a)
{
    int rc;
    if (!token.len)
        return SB_EAUTH;
    rc = s->cfg.bearer(s->cfg.bearer_ud, req, token, &a->role, a->ext, sizeof a->ext);
    if (rc < 0)
        return rc == SB_EDENIED ? SB_EDENIED : SB_EAUTH;
    return 0;
}

/* POST /v1/agents/{ext}/subscriptions: admin, supervisor, service, or that extension's agent. */
static int auth_subscribe_agent(http_request *req, sb_slice token, void *ud)
{
    stream_auth a = {0};
    sb_slice ext = http_request_param(req, "ext");
    int rc = bearer_role(ud, req, token, &a);
    if (rc < 0)
        return rc;
    if (a.role == STREAMS_ROLE_ADMIN || a.role == STREAMS_ROLE_SUPERVISOR ||
        a.role == STREAMS_ROLE_SERVICE)
        return 0;
    if (a.role == STREAMS_ROLE_AGENT && sb_slice_eq(ext, sb_slice_cstr(a.ext)))
        return 0;
    return SB_EDENIED;
}

/* POST /v1/subscriptions: the supervisor stream, admin and supervisor only. */
static int auth_subscribe_global(http_request *req, sb_slice token, void *ud)
{
    stream_auth a = {0};
    int rc = bearer_role(ud, req, token, &a);
    if (rc < 0)
        return rc;
    return (a.role == STREAMS_ROLE_ADMIN || a.role == STREAMS_ROLE_SUPERVISOR) ? 0 : SB_EDENIED;
}

/* A stream route: ?token= (a stream token, what browsers use) or Authorization: Bearer. */
static int auth_stream(http_request *req, sb_slice bearer, streams *s, bool global)
{
    stream_auth *a;
    sb_slice qtok = http_request_query(req, "token");
    sb_slice ext = http_request_param(req, "ext");
    int rc = 0;
    if (!global && !ext_ok(ext))
        return SB_EDENIED;
    a = calloc(1, sizeof *a);
    if (!a)
        return SB_ENOMEM;
    if (qtok.len) {
        a->tok = stream_token_find(s, qtok);
        if (!a->tok) {
            rc = SB_EAUTH; /* unknown or expired */
        } else if (global != (a->tok->hub->key[0] == '\0') ||
                   (!global && !sb_slice_eq(ext, sb_slice_cstr(a->tok->hub->key)))) {
            rc = SB_EDENIED; /* a token of another stream */
        }
    } else {
        rc = bearer_role(s, req, bearer, a);
        if (rc == 0) {
            bool ok = a->role == STREAMS_ROLE_ADMIN || a->role == STREAMS_ROLE_SUPERVISOR;
            if (!global)
                ok = ok || a->role == STREAMS_ROLE_SERVICE ||
                     (a->role == STREAMS_ROLE_AGENT && sb_slice_eq(ext, sb_slice_cstr(a->ext)));
            rc = ok ? 0 : SB_EDENIED;
        }
    }
    if (rc < 0) {
        free(a);
        return rc;
    }
    http_request_set_user(req, a, free);
    return 0;
}

static int auth_stream_agent(http_request *req, sb_slice bearer, void *ud)
{
    return auth_stream(req, bearer, ud, false);
}

static int auth_stream_global(http_request *req, sb_slice bearer, void *ud)
{
    return auth_stream(req, bearer, ud, true);
}

/* ---- messages ---- */

static void fmt_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* {"seq":at,"type":"snapshot"|"resync","time":...,"details":state}: the seq is the stream's last
 * one, so a client that resumes from it continues right after the state it holds. Returns owned
 * text (free) or NULL. */
char *stream_state_event(streams *s, stream_hub *h, const char *type, uint64_t at)
{
    char t[32];
    json_t *o, *snap;
    char *text;
    snap = s->cfg.model ? model_snapshot_json(s->cfg.model, *h->key ? h->key : NULL) : NULL;
    if (!snap)
        snap = json_object();
    fmt_time(streams_now(s), t);
    o = json_pack("{s:I,s:s,s:s,s:o}", "seq", (json_int_t)at, "type", type, "time", t, "details",
                  snap);
    if (!o)
        return NULL;
    if (strcmp(type, "resync") == 0)
        json_object_set_new(o, "reason", json_string("beyond the replay window"));
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

/* ---- SSE and WebSocket clients ---- */

/* A resuming client may be far behind (a supervisor stream carries thousands of events a second
 * and keeps 10,000). Its backlog is handed to the transport in chunks of catchup_chunk_bytes, the
 * next one only once the kernel took the last, so a resume never trips the slow-consumer limit;
 * once at most CATCHUP_LIVE events remain, bus_subscribe_from() replays those and follows live. */
#define CATCHUP_LIVE 64

typedef struct client {
    streams *s;
    stream_hub *hub;
    stream_token *tok;
    http_stream *hs;
    uint64_t last;     /* last seq pushed (or the snapshot's) */
    size_t budget;     /* bytes left in the current catch-up chunk */
    bool started;      /* snapshot or resume point decided */
    bool closed;       /* on_close ran */
    bool failed;       /* a push failed: on_close follows */
    uv_timer_t *timer; /* WebSocket resume wait, then catch-up pacing */
    bool is_live;      /* on hub->live: gets the hub's gathered events */
    struct client *live_prev, *live_next;
} client;

struct stream_pend {
    uint64_t seq;
    http_msg *m;
};

static void client_push_failed(client *c, int rc)
{
    /* Dropped (slow consumer: the client sees "slow consumer" and on_close follows) or gone. */
    if (rc == SB_ETOOBIG)
        c->s->st.overflows++;
    else if (rc == SB_ENOMEM)
        http_stream_close(c->hs, 1011, "out of memory");
    c->failed = true;
}

/* ---- live fan-out: one bus subscription per hub, one message per client per flush ---- */

static void live_unlink(client *c)
{
    stream_hub *h = c->hub;
    if (!c->is_live)
        return;
    if (h->cursor == c)
        h->cursor = c->live_next;
    if (c->live_prev)
        c->live_prev->live_next = c->live_next;
    else
        h->live = c->live_next;
    if (c->live_next)
        c->live_next->live_prev = c->live_prev;
    c->live_prev = c->live_next = NULL;
    c->is_live = false;
}

static void hub_drop_pend(stream_hub *h)
{
    size_t i;
    for (i = 0; i < h->npend; i++)
        http_msg_unref(h->pend[i].m);
    h->npend = 0;
}

/* Clients handed their events per slice: one slice of a 10,000-client sweep is ~5 ms of writes
 * on a 2-core box, so AMI reads (and everything else on the loop) wait at most that long. */
#define SWEEP_SLICE 512

/* The message carrying pend[i0..npend): built once per (i0, end) and shared by every client at
 * that position (all the caught-up ones). Borrowed (h->batch); NULL when out of memory. */
static http_msg *hub_batch(stream_hub *h, size_t i0)
{
    uint64_t from = h->pend[i0].seq, to = h->pend[h->npend - 1].seq;
    http_msg **msgs;
    size_t i, n = h->npend - i0;
    if (h->batch && h->batch_from == from && h->batch_to == to)
        return h->batch;
    http_msg_unref(h->batch);
    h->batch = NULL;
    if (n == 1) {
        h->batch = http_msg_ref(h->pend[i0].m);
    } else {
        msgs = malloc(n * sizeof *msgs);
        if (!msgs)
            return NULL;
        for (i = 0; i < n; i++)
            msgs[i] = h->pend[i0 + i].m;
        h->batch = http_msg_concat(msgs, n);
        free(msgs);
        if (!h->batch)
            return NULL;
    }
    h->batch_from = from;
    h->batch_to = to;
    h->owner->st.batches++;
    return h->batch;
}

/* Everything gathered past c's position, as one message. */
static void client_send_pending(stream_hub *h, client *c)
{
    uint64_t newest = h->pend[h->npend - 1].seq;
    http_msg *m;
    int rc;
    if (c->last >= newest)
        return;
    /* The join replayed up to flushed_seq, so c->last >= flushed_seq: pend holds the rest. */
    m = hub_batch(h, (size_t)(c->last - h->flushed_seq));
    rc = m ? http_stream_push(c->hs, m) : SB_ENOMEM;
    if (rc == 0) {
        h->owner->st.pushes += newest - c->last;
        c->last = newest;
        return;
    }
    client_push_failed(c, rc);
    live_unlink(c);
}

/* End of a pass over the live list: drops the events every live client has; true when none is
 * left (the hub is idle). */
static bool hub_trim(stream_hub *h)
{
    uint64_t min = h->npend ? h->pend[h->npend - 1].seq : h->flushed_seq;
    size_t k, i;
    for (client *c = h->live; c; c = c->live_next)
        if (!c->failed && !c->closed && c->last < min)
            min = c->last;
    if (min < h->flushed_seq) /* cannot happen: a client joins at flushed_seq or later */
        min = h->flushed_seq;
    k = (size_t)(min - h->flushed_seq);
    for (i = 0; i < k; i++)
        http_msg_unref(h->pend[i].m);
    if (k && h->npend > k)
        memmove(h->pend, h->pend + k, (h->npend - k) * sizeof *h->pend);
    h->npend -= k;
    h->flushed_seq = min;
    return h->npend == 0;
}

/* Hands the gathered events to at most budget live clients, going on from where the last slice
 * stopped (a rolling sweep: a client gets everything up to the newest event when its turn comes,
 * so an event that arrives mid-sweep reaches the rest of this pass and the start of the next).
 * Returns the clients visited; *done when the hub has nothing left to send. */
static size_t hub_sweep(stream_hub *h, size_t budget, bool *done)
{
    size_t visited = 0;
    *done = false;
    if (!h->npend) {
        *done = true;
        return 0;
    }
    if (!h->sweeping) {
        h->sweeping = true;
        h->cursor = h->live;
    }
    while (h->cursor && visited < budget) {
        client *c = h->cursor;
        h->cursor = c->live_next;
        visited++;
        if (c->failed || c->closed) {
            live_unlink(c);
            continue;
        }
        client_send_pending(h, c);
    }
    if (!h->cursor) { /* a pass ended */
        h->sweeping = false;
        *done = hub_trim(h);
    }
    return visited;
}

static void flush_stop(streams *s)
{
    s->flush_armed = false;
    uv_prepare_stop(&s->flush_prepare);
    uv_check_stop(&s->flush_check);
    uv_timer_stop(&s->flush_timer);
    uv_idle_stop(&s->flush_idle);
}

static void on_flush_idle(uv_idle_t *i);

/* One slice over the dirty hubs (budget clients in all); unlimited when budget is 0. Keeps the
 * loop turning (idle handle) while work remains. */
static void flush_hubs(streams *s, size_t budget)
{
    stream_hub **pp = &s->dirty;
    size_t left = budget ? budget : SIZE_MAX;
    for (;;) {
        while (*pp && left) {
            stream_hub *h = *pp;
            bool done;
            left -= hub_sweep(h, left, &done);
            if (done) {
                *pp = h->dirty_next;
                h->dirty_next = NULL;
                h->is_dirty = false;
                http_msg_unref(h->batch);
                h->batch = NULL;
            } else {
                pp = &h->dirty_next;
            }
        }
        if (budget || !s->dirty)
            break;
        pp = &s->dirty; /* unlimited (stopping): until every hub is done */
    }
    /* Round robin: the hubs served in this slice go to the back, the next slice starts with the
     * first one not served. */
    if (*pp && pp != &s->dirty) {
        stream_hub *rest = *pp, *t = rest;
        *pp = NULL;
        while (t->dirty_next)
            t = t->dirty_next;
        t->dirty_next = s->dirty;
        s->dirty = rest;
    }
    if (!s->dirty) {
        flush_stop(s);
    } else if (s->flush_open) {
        uv_prepare_stop(&s->flush_prepare);
        uv_check_stop(&s->flush_check);
        uv_idle_start(&s->flush_idle, on_flush_idle);
    }
}

static void on_flush_idle(uv_idle_t *i)
{
    flush_hubs(i->data, ((streams *)i->data)->cfg.live_slice_clients);
}

static void on_flush_timer(uv_timer_t *t)
{
    flush_hubs(t->data, ((streams *)t->data)->cfg.live_slice_clients);
}

static void on_flush_prepare(uv_prepare_t *p)
{
    flush_hubs(p->data, ((streams *)p->data)->cfg.live_slice_clients);
}

static void on_flush_check(uv_check_t *c)
{
    flush_hubs(c->data, ((streams *)c->data)->cfg.live_slice_clients);
}

static void hub_entry(void *ud, const bus_entry *e)
{
    stream_hub *h = ud;
    streams *s = h->owner;
    http_msg *m;
    if (h->npend == h->pend_cap) {
        size_t cap = h->pend_cap ? h->pend_cap * 2 : 64;
        struct stream_pend *np = realloc(h->pend, cap * sizeof *np);
        if (!np)
            goto nomem;
        h->pend = np;
        h->pend_cap = cap;
    }
    m = stream_hub_msg(h, e);
    if (!m)
        goto nomem;
    h->pend[h->npend].seq = e->seq;
    h->pend[h->npend].m = http_msg_ref(m);
    h->npend++;
    if (!h->is_dirty) {
        h->is_dirty = true;
        h->dirty_next = s->dirty;
        s->dirty = h;
    }
    if (!s->flush_open) {
        flush_hubs(s, 0); /* no loop handles (stopping): deliver now */
    } else if (!s->flush_armed) {
        s->flush_armed = true;
        if (s->cfg.live_flush_ms) {
            uv_timer_start(&s->flush_timer, on_flush_timer, s->cfg.live_flush_ms, 0);
        } else {
            uv_prepare_start(&s->flush_prepare, on_flush_prepare);
            uv_check_start(&s->flush_check, on_flush_check);
        }
    }
    return;
nomem:
    /* Out of memory: every live client is cut (they resume from their last seq). */
    for (client *c = h->live, *next; c; c = next) {
        next = c->live_next;
        http_stream_close(c->hs, 1011, "out of memory");
        c->failed = true;
        live_unlink(c);
    }
    hub_trim(h);
}

/* Events after c->last up to the hub's flushed_seq, pushed one by one (a joining client). */
static void client_join_entry(void *ud, const bus_entry *e)
{
    client *c = ud;
    http_msg *m;
    int rc;
    if (c->failed || e->seq <= c->last || e->seq > c->hub->flushed_seq)
        return;
    m = stream_hub_msg(c->hub, e);
    rc = m ? http_stream_push(c->hs, m) : SB_ENOMEM;
    c->s->st.pushes++;
    if (rc == 0)
        c->last = e->seq;
    else
        client_push_failed(c, rc);
}

static int send_state(client *c, const char *type, uint64_t at);

/* Puts a client that is at most CATCHUP_LIVE events behind on the hub's live list. */
static int client_go_live(client *c)
{
    stream_hub *h = c->hub;
    bus_stream *bs = h->bs;
    int rc;
    if (!h->live_sub) {
        h->live_sub = bus_subscribe(bs, hub_entry, h);
        if (!h->live_sub)
            return SB_ENOMEM;
        h->flushed_seq = bus_stream_last_seq(bs);
        hub_drop_pend(h);
    }
    if (c->last < h->flushed_seq) {
        rc = bus_replay(bs, c->last, client_join_entry, c);
        if (rc == BUS_GAP) { /* the window moved past us while we caught up */
            if (send_state(c, "resync", bus_stream_last_seq(bs)) < 0)
                return 0;
        } else if (rc < 0) {
            return rc;
        }
        if (c->failed)
            return 0;
    }
    c->is_live = true;
    c->live_prev = NULL;
    c->live_next = h->live;
    if (h->live)
        h->live->live_prev = c;
    h->live = c;
    return 0;
}

void stream_hub_live_release(stream_hub *h)
{
    streams *s = h->owner;
    stream_hub **pp;
    bus_unsubscribe(h->live_sub);
    h->live_sub = NULL;
    hub_drop_pend(h);
    http_msg_unref(h->batch);
    h->batch = NULL;
    h->cursor = NULL;
    h->sweeping = false;
    free(h->pend);
    h->pend = NULL;
    h->pend_cap = 0;
    for (pp = &s->dirty; *pp; pp = &(*pp)->dirty_next) {
        if (*pp == h) {
            *pp = h->dirty_next;
            break;
        }
    }
    h->is_dirty = false;
}

/* One entry of a catch-up chunk (built for this client: the hub caches live entries). */
static void client_replay_entry(void *ud, const bus_entry *e)
{
    client *c = ud;
    sb_buf b;
    char id[24];
    int n, rc;
    http_msg *m = NULL;
    if (c->budget == 0 || c->failed)
        return;
    sb_buf_init(&b, 4u << 20);
    n = snprintf(id, sizeof id, "%" PRIu64, e->seq);
    if (bus_entry_format(e, &b) == 0)
        m = http_msg_new((sb_slice){id, (size_t)n}, (sb_slice){NULL, 0}, (sb_slice){b.data, b.len});
    sb_buf_free(&b);
    rc = m ? http_stream_push(c->hs, m) : SB_ENOMEM;
    c->s->st.pushes++;
    if (rc == 0) {
        size_t len = http_msg_framing(m, http_stream_get_kind(c->hs)).len;
        c->last = e->seq;
        c->budget = len >= c->budget ? 0 : c->budget - len;
    } else {
        if (rc == SB_ETOOBIG)
            c->s->st.overflows++;
        else if (rc == SB_ENOMEM)
            http_stream_close(c->hs, 1011, "out of memory");
        c->failed = true;
    }
    http_msg_unref(m);
}

static int send_state(client *c, const char *type, uint64_t at)
{
    char id[24];
    int n = snprintf(id, sizeof id, "%" PRIu64, at);
    char *text = stream_state_event(c->s, c->hub, type, at);
    http_msg *m;
    int rc;
    if (!text)
        return SB_ENOMEM;
    m = http_msg_new((sb_slice){id, (size_t)n}, (sb_slice){NULL, 0}, sb_slice_cstr(text));
    free(text);
    if (!m)
        return SB_ENOMEM;
    rc = http_stream_push(c->hs, m);
    http_msg_unref(m);
    if (rc == 0) {
        c->last = at;
        if (type[0] == 's')
            c->s->st.snapshots++;
        else
            c->s->st.resyncs++;
    } else {
        c->failed = true;
    }
    return rc;
}

static void on_catch_up(uv_timer_t *t);

/* Moves the client towards the live flow (see CATCHUP_CHUNK). */
static void client_catch_up(client *c)
{
    bus_stream *bs = c->hub->bs;
    int rc;
    if (c->closed || c->failed || c->is_live)
        return;
    if (bus_stream_last_seq(bs) - c->last <= CATCHUP_LIVE) {
        if (client_go_live(c) < 0)
            http_stream_close(c->hs, 1011, "cannot follow the stream");
        return;
    }
    if (http_stream_queued(c->hs) > 0) {
        uv_timer_start(c->timer, on_catch_up, 2, 0); /* the kernel has not taken the last chunk */
        return;
    }
    c->budget = c->s->cfg.catchup_chunk_bytes;
    rc = bus_replay(bs, c->last, client_replay_entry, c);
    if (rc == BUS_GAP && send_state(c, "resync", bus_stream_last_seq(bs)) < 0)
        return;
    uv_timer_start(c->timer, on_catch_up, 0, 0); /* after this iteration's flush */
}

static void on_catch_up(uv_timer_t *t)
{
    client_catch_up(t->data);
}

/* Decides where the client starts: after == NULL -> snapshot; else after *after, or a resync
 * when *after is outside the window. Then catches up and follows live. */
static void client_begin(client *c, const uint64_t *after)
{
    bus_stream *bs = c->hub->bs;
    uint64_t last = bus_stream_last_seq(bs);
    c->started = true;
    uv_timer_stop(c->timer);
    if (after && *after <= last && *after + 1 >= bus_stream_first_seq(bs)) {
        c->last = *after;
        c->s->st.resumes++;
    } else if (send_state(c, after ? "resync" : "snapshot", last) < 0) {
        return;
    }
    client_catch_up(c);
}

static void client_free(client *c)
{
    free(c->timer);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    client_free(h->data);
}

static void client_on_close(http_stream *hs, int reason, void *ud)
{
    client *c = ud;
    (void)hs;
    (void)reason;
    c->closed = true;
    live_unlink(c);
    if (!c->hub->live && c->hub->live_sub) { /* nobody follows live: the hub stops listening */
        hub_trim(c->hub);                    /* no live client: drops everything gathered */
        c->hub->sweeping = false;
        bus_unsubscribe(c->hub->live_sub);
        c->hub->live_sub = NULL;
    }
    if (c->tok)
        stream_token_detach(c->s, c->tok);
    stream_hub_put(c->hub);
    if (c->s->st.clients)
        c->s->st.clients--;
    uv_close((uv_handle_t *)c->timer, on_timer_closed);
}

static void on_resume_wait(uv_timer_t *t)
{
    client *c = t->data;
    if (!c->started && !c->closed)
        client_begin(c, NULL);
}

/* A WebSocket client's message: {"resume":SEQ} (or {"resume":null}: start with a snapshot) before
 * the flow began; anything else is ignored. */
static void client_on_message(http_stream *hs, sb_slice text, void *ud)
{
    client *c = ud;
    json_t *j, *r;
    (void)hs;
    if (c->started || c->closed)
        return;
    j = json_loadb(text.ptr, text.len, 0, NULL);
    r = j ? json_object_get(j, "resume") : NULL;
    if (r && json_is_integer(r) && json_integer_value(r) >= 0) {
        uint64_t after = (uint64_t)json_integer_value(r);
        client_begin(c, &after);
    } else if (r && json_is_null(r)) {
        client_begin(c, NULL);
    }
    json_decref(j);
}

/* The resume point of a request: Last-Event-ID, ?lastEventId=, ?after=. 1 found, 0 none,
 * SB_EINVAL malformed. */
int stream_resume_point(http_request *req, bool sse, uint64_t *out)
{
    sb_slice v = sse ? http_request_last_event_id(req) : (sb_slice){NULL, 0};
    long long n;
    if (!v.len && sse)
        v = http_request_query(req, "lastEventId");
    if (!v.len)
        v = http_request_query(req, "after");
    if (!v.len)
        return 0;
    if (sb_slice_to_ll(v, &n) < 0 || n < 0)
        return SB_EINVAL;
    *out = (uint64_t)n;
    return 1;
}

/* Finds (or, for a Bearer client, opens) the hub of a stream request, and holds hub and token. */
int stream_request_hub(streams *s, http_request *req, bool global, stream_hub **hub,
                       stream_token **tok)
{
    stream_auth *a = http_request_user(req);
    char ext[STREAM_EXT_MAX] = "";
    int rc;
    *tok = a ? a->tok : NULL;
    if (*tok) {
        *hub = (*tok)->hub;
        (*hub)->refs++;
        stream_token_attach(*tok);
        return 0;
    }
    if (!global)
        sb_slice_copy(http_request_param(req, "ext"), ext, sizeof ext);
    rc = stream_hub_get(s, ext, hub);
    return rc;
}

void stream_release_hub(streams *s, stream_hub *hub, stream_token *tok)
{
    if (tok)
        stream_token_detach(s, tok);
    stream_hub_put(hub);
}

static void handle_stream(http_request *req, streams *s, bool global, bool ws)
{
    static const http_stream_callbacks cbs = {client_on_message, client_on_close};
    uint64_t after = 0;
    int has_after = stream_resume_point(req, !ws, &after);
    client *c;
    if (has_after < 0) {
        http_respond_error(req, 400, "bad_request", "the resume point must be a sequence number");
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c || stream_request_hub(s, req, global, &c->hub, &c->tok) < 0) {
        free(c);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    c->s = s;
    c->timer = malloc(sizeof *c->timer);
    if (!c->timer || uv_timer_init(s->cfg.loop, c->timer) < 0) {
        stream_release_hub(s, c->hub, c->tok);
        client_free(c);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    c->timer->data = c;
    c->hs = ws ? http_ws_accept(req, &cbs, c) : http_sse_start(req, &cbs, c);
    if (!c->hs) { /* answered already; no callback will run */
        stream_release_hub(s, c->hub, c->tok);
        uv_close((uv_handle_t *)c->timer, on_timer_closed);
        return;
    }
    s->st.clients++;
    if (has_after)
        client_begin(c, &after);
    else if (ws)
        uv_timer_start(c->timer, on_resume_wait, s->cfg.ws_resume_wait_ms, 0);
    else
        client_begin(c, NULL);
}

static void h_sse_agent(http_request *req, void *ud)
{
    handle_stream(req, ud, false, false);
}
static void h_sse_global(http_request *req, void *ud)
{
    handle_stream(req, ud, true, false);
}
static void h_ws_agent(http_request *req, void *ud)
{
    handle_stream(req, ud, false, true);
}
static void h_ws_global(http_request *req, void *ud)
{
    handle_stream(req, ud, true, true);
}

static void h_poll_agent(http_request *req, void *ud)
{
    stream_poll_handle(req, ud, false);
}
static void h_poll_global(http_request *req, void *ud)
{
    stream_poll_handle(req, ud, true);
}

/* ---- subscriptions ---- */

/* Appends base_url (http -> ws for WebSocket) and the path. */
static json_t *url(streams *s, bool ws, const char *path, const char *token)
{
    sb_buf b;
    json_t *j;
    const char *base = s->base_url ? s->base_url : "";
    sb_buf_init(&b, 4096);
    if (ws && strncmp(base, "http", 4) == 0)
        sb_buf_printf(&b, "ws%s", base + 4);
    else
        sb_buf_puts(&b, base);
    sb_buf_printf(&b, "%s?token=%s", path, token);
    j = b.data ? json_string(b.data) : NULL;
    sb_buf_free(&b);
    return j;
}

static void subscribe(http_request *req, streams *s, bool global)
{
    char ext[STREAM_EXT_MAX] = "", token[STREAM_TOKEN_CHARS + 1], t[32], path[160];
    const char *queues[MAX_QUEUES];
    size_t nq = 0;
    int64_t expires;
    json_t *body = NULL, *q, *out = NULL, *qa;
    int rc;
    if (!global) {
        sb_slice e = http_request_param(req, "ext");
        if (!ext_ok(e)) {
            http_respond_error(req, 400, "bad_request", "not an extension");
            return;
        }
        sb_slice_copy(e, ext, sizeof ext);
    }
    if (http_request_body(req).len) {
        body = http_request_json(req);
        if (!body)
            return; /* answered 400 */
        q = json_object_get(body, "queues");
        if (!json_is_object(body) || (q && !json_is_array(q) && !json_is_null(q)) ||
            json_array_size(q) > MAX_QUEUES) {
            http_respond_error(req, 400, "bad_request",
                               "the body is {\"queues\":[names]} with at most 64 queues");
            goto out;
        }
        for (size_t i = 0; i < json_array_size(q); i++) {
            const char *name = json_string_value(json_array_get(q, i));
            if (!name || !*name || strlen(name) > MAX_QUEUE_NAME) {
                http_respond_error(req, 400, "bad_request", "a queue name is a non-empty string");
                goto out;
            }
            queues[nq++] = name;
        }
        if (global && nq) {
            http_respond_error(req, 400, "bad_request",
                               "the supervisor stream has every queue already");
            goto out;
        }
    }
    rc = stream_token_issue(s, global ? NULL : ext, queues, nq, token, &expires);
    if (rc == SB_ETOOBIG) {
        http_respond_error(req, 503, "unavailable", "too many stream tokens");
        goto out;
    }
    if (rc < 0) {
        http_respond_error(req, 500, "internal", "out of memory");
        goto out;
    }
    fmt_time(expires, t);
    qa = json_array();
    for (size_t i = 0; i < nq; i++)
        json_array_append_new(qa, json_string(queues[i]));
    if (global)
        snprintf(path, sizeof path, "/v1/stream");
    else
        snprintf(path, sizeof path, "/v1/agents/%s/stream", ext);
    out = json_pack("{s:s,s:s,s:I,s:o*,s:o}", "token", token, "expiresAt", t, "expiresIn",
                    (json_int_t)(s->cfg.token_ttl_ms / 1000), "extension",
                    global ? json_null() : json_string(ext), "queues", qa);
    if (out) {
        char wpath[176], ppath[176];
        snprintf(wpath, sizeof wpath, "%s/ws", path);
        snprintf(ppath, sizeof ppath, "%s/poll", path);
        json_object_set_new(out, "urls",
                            json_pack("{s:o,s:o,s:o}", "sse", url(s, false, path, token),
                                      "websocket", url(s, true, wpath, token), "longPoll",
                                      url(s, false, ppath, token)));
    }
    sodium_memzero(token, sizeof token);
    http_respond_json(req, 201, out);
out:
    json_decref(body);
}

static void h_subscribe_agent(http_request *req, void *ud)
{
    subscribe(req, ud, false);
}
static void h_subscribe_global(http_request *req, void *ud)
{
    subscribe(req, ud, true);
}

/* ---- lifecycle ---- */

static void on_sweep(uv_timer_t *t)
{
    stream_sweep(t->data);
}

int streams_new(const streams_config *cfg, streams **out)
{
    streams *s;
    *out = NULL;
    if (!cfg || !cfg->loop || !cfg->bus || !cfg->model || !cfg->bearer)
        return SB_EINVAL;
    if (sodium_init() < 0)
        return SB_ENOMEM;
    s = calloc(1, sizeof *s);
    if (!s)
        return SB_ENOMEM;
    s->cfg = *cfg;
    if (!s->cfg.token_ttl_ms)
        s->cfg.token_ttl_ms = 300000;
    if (!s->cfg.ws_resume_wait_ms)
        s->cfg.ws_resume_wait_ms = 1000;
    if (!s->cfg.poll_max_timeout_ms)
        s->cfg.poll_max_timeout_ms = 60000;
    if (!s->cfg.poll_max_events)
        s->cfg.poll_max_events = 1000;
    if (!s->cfg.catchup_chunk_bytes)
        s->cfg.catchup_chunk_bytes = 64 * 1024;
    if (!s->cfg.live_slice_clients)
        s->cfg.live_slice_clients = SWEEP_SLICE;
    if (!s->cfg.max_tokens)
        s->cfg.max_tokens = 100000;
    if (cfg->base_url) {
        s->base_url = strdup(cfg->base_url);
        if (!s->base_url) {
            free(s);
            return SB_ENOMEM;
        }
    }
    s->cfg.base_url = s->base_url;
    sb_strmap_init(&s->hubs);
    sb_strmap_init(&s->tokens);
    if (uv_timer_init(cfg->loop, &s->sweep) == 0) {
        s->timer_open = true;
        s->sweep.data = s;
        uv_timer_start(&s->sweep, on_sweep, 10000, 10000);
        uv_unref((uv_handle_t *)&s->sweep);
    }
    /* prepare, check and timer init cannot fail on a live loop (libuv only fills them in). */
    uv_prepare_init(cfg->loop, &s->flush_prepare);
    uv_check_init(cfg->loop, &s->flush_check);
    uv_timer_init(cfg->loop, &s->flush_timer);
    uv_idle_init(cfg->loop, &s->flush_idle);
    s->flush_idle.data = s;
    uv_unref((uv_handle_t *)&s->flush_idle);
    s->flush_open = true;
    s->flush_prepare.data = s;
    s->flush_check.data = s;
    s->flush_timer.data = s;
    uv_unref((uv_handle_t *)&s->flush_prepare);
    uv_unref((uv_handle_t *)&s->flush_check);
    uv_unref((uv_handle_t *)&s->flush_timer);
    *out = s;
    return 0;
}

int streams_add_routes(streams *s, http_router *r)
{
    const http_route routes[] = {
        {"POST", "/v1/agents/{ext}/subscriptions", h_subscribe_agent, s, auth_subscribe_agent, s},
        {"POST", "/v1/subscriptions", h_subscribe_global, s, auth_subscribe_global, s},
        {"GET", "/v1/agents/{ext}/stream", h_sse_agent, s, auth_stream_agent, s},
        {"GET", "/v1/agents/{ext}/stream/ws", h_ws_agent, s, auth_stream_agent, s},
        {"GET", "/v1/agents/{ext}/stream/poll", h_poll_agent, s, auth_stream_agent, s},
        {"GET", "/v1/stream", h_sse_global, s, auth_stream_global, s},
        {"GET", "/v1/stream/ws", h_ws_global, s, auth_stream_global, s},
        {"GET", "/v1/stream/poll", h_poll_global, s, auth_stream_global, s},
    };
    return http_router_add_table(r, routes, sizeof routes / sizeof routes[0]);
}

static void on_sweep_closed(uv_handle_t *h)
{
    (void)h;
}

void streams_stop(streams *s)
{
    if (s && s->timer_open) {
        s->timer_open = false;
        uv_close((uv_handle_t *)&s->sweep, on_sweep_closed);
    }
    if (s && s->flush_open) {
        s->flush_open = false;
        flush_hubs(s, 0);
        uv_close((uv_handle_t *)&s->flush_prepare, on_sweep_closed);
        uv_close((uv_handle_t *)&s->flush_check, on_sweep_closed);
        uv_close((uv_handle_t *)&s->flush_timer, on_sweep_closed);
        uv_close((uv_handle_t *)&s->flush_idle, on_sweep_closed);
    }
}

void streams_free(streams *s)
{
    if (!s)
        return;
    stream_tokens_free_all(s);
    free(s->base_url);
    free(s);
}

void streams_get_stats(const streams *s, streams_stats *out)
{
    *out = s->st;
    out->tokens_live = (uint32_t)sb_strmap_count(&s->tokens);
}
