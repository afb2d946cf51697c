/* load.c: how events reach a sink's window (sink.c): reads of the store on the libuv thread pool
 * with the sink's own read connection (committed events after its read position, with their stored
 * retry state, and the dead letters marked for retry, merged back on the loop), or takes from the
 * outbox's memory tail on the loop (ob_tail_take; the records are made here, ob_rec_new). Also the
 * 64 KiB blocks all of them are cut from.
 */
#include "outbox/internal.h"

#include "core/error.h"
#include "core/log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "outbox"

/* A block that window entries and tail records are cut from, so a load (or a run of appends)
 * makes a few allocations instead of one per event. Reference-counted by the pieces cut from it
 * and by its holder while it is being filled (a load, the outbox's record block, a sink's block
 * for tail entries). A load's block is touched by the loop thread only once the load has handed it
 * over (the load never drops a block's last reference: the entries it made still hold theirs).
 * A block whose last piece is freed goes back to its outbox's spares (loop thread), and the next
 * cut takes a spare before it allocates: no page faults on fresh memory for every load. */
typedef struct ob_chunk {
    struct ob_chunk *next; /* in a spare list */
    outbox *ob;
    size_t refs, used, cap;
    max_align_t mem[];
} ob_chunk;

enum { CHUNK_BYTES = 64 * 1024 };
/* Spare blocks an outbox keeps (2 MiB), and at most this many handed to one load. */
enum { SPARES_MAX = 32, SPARES_PER_LOAD = 24 };

/* Loop thread. */
static void chunk_unref(ob_chunk *c)
{
    if (!c || --c->refs > 0)
        return;
    outbox *ob = c->ob;
    if (c->cap == CHUNK_BYTES && ob->n_spare < SPARES_MAX) {
        c->next = ob->spare;
        ob->spare = c;
        ob->n_spare++;
        return;
    }
    free(c);
}

void ob_spares_free(outbox *ob)
{
    while (ob->spare) {
        ob_chunk *c = ob->spare;
        ob->spare = c->next;
        free(c);
    }
    ob->n_spare = 0;
}

void ob_chunk_release(ob_chunk *c)
{
    chunk_unref(c);
}

void ob_rec_unref(ob_rec *r)
{
    if (--r->refs == 0)
        chunk_unref(r->chunk);
}

void ob_ent_unref(ob_ent *e)
{
    if (--e->refs == 0) {
        if (e->rec)
            ob_rec_unref(e->rec);
        if (e->chunk)
            chunk_unref(e->chunk);
        else
            free(e);
    }
}

static uint64_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static size_t align_up(size_t sz)
{
    return (sz + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
}

/* Cuts sz bytes from *cur (the holder's block, one reference held by the holder), starting a new
 * block when it is full: from *spares first (counted in *nspare when not NULL), else malloc. The
 * piece holds a reference to its block, returned in *which. is_loop: the full block's holder
 * reference is dropped with chunk_unref (loop thread: the block may be free now); else it is only
 * decremented (a load on the thread pool: the entries it cut still hold theirs). NULL when out of
 * memory. */
static void *chunk_cut(outbox *ob, ob_chunk **cur, ob_chunk **spares, size_t *nspare, bool is_loop,
                       size_t sz, ob_chunk **which)
{
    sz = align_up(sz);
    ob_chunk *c = *cur;
    if (!c || c->cap - c->used < sz) {
        ob_chunk *nc;
        if (sz <= CHUNK_BYTES && spares && *spares) {
            nc = *spares;
            *spares = nc->next;
            if (nspare)
                (*nspare)--;
        } else {
            size_t cap = sz > CHUNK_BYTES ? sz : CHUNK_BYTES;
            if (!(nc = malloc(sizeof *nc + cap)))
                return NULL;
            nc->cap = cap;
        }
        nc->next = NULL;
        nc->ob = ob;
        nc->refs = 1; /* the holder's */
        nc->used = 0;
        if (is_loop)
            chunk_unref(c);
        else if (c)
            c->refs--;
        *cur = c = nc;
    }
    void *p = (char *)c->mem + c->used;
    c->used += sz;
    c->refs++;
    *which = c;
    return p;
}

static void *loop_cut(outbox *ob, ob_chunk **cur, size_t sz, ob_chunk **which)
{
    return chunk_cut(ob, cur, &ob->spare, &ob->n_spare, true, sz, which);
}

/* Bytes the strings of ev take as ev_copy lays them out. */
static size_t ev_size(const store_event *ev)
{
    return strlen(ev->id) + strlen(ev->type) + strlen(ev->pbx) + strlen(ev->call_key) +
           ev->payload_len + 5;
}

/* Copies ev into dst, its strings (NUL-terminated) into data (ev_size(ev) bytes). */
static void ev_copy(outbox_event *dst, char *data, const store_event *ev)
{
    const char *src[5] = {ev->id, ev->type, ev->pbx, ev->call_key, ev->payload};
    const char **field[5] = {&dst->id, &dst->type, &dst->pbx, &dst->call_key, &dst->payload};
    for (int i = 0; i < 5; i++) {
        size_t n = i == 4 ? ev->payload_len : strlen(src[i]);
        memcpy(data, src[i], n);
        data[n] = '\0';
        *field[i] = data;
        data += n + 1;
    }
    dst->seq = ev->seq;
    dst->time_ms = ev->time_ms;
    dst->payload_len = ev->payload_len;
}

ob_rec *ob_rec_new(outbox *ob, const store_event *ev)
{
    size_t sz = sizeof(ob_rec) + ev_size(ev);
    ob_chunk *c = NULL;
    ob_rec *r = loop_cut(ob, &ob->rchunk, sz, &c);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    ev_copy(&r->ev, r->data, ev);
    r->chunk = c;
    r->ob = ob;
    r->refs = 1;
    r->key_hash = key_hash(r->ev.call_key);
    r->size = align_up(sz);
    return r;
}

/* A window entry for r (refs 1; r gets a reference). Loop thread. */
static ob_ent *ent_from_rec(outbox_sink *s, ob_rec *r)
{
    ob_chunk *c = NULL;
    ob_ent *e = loop_cut(s->ob, &s->echunk, sizeof *e, &c);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->ev = r->ev;
    e->chunk = c;
    e->rec = r;
    r->refs++;
    e->key_hash = s->cfg.is_partitioned ? r->key_hash : 0;
    e->refs = 1;
    e->state = ENT_READY;
    return e;
}

/* Copies a stored event into a new entry (refs 1, key_hash set when is_partitioned): in
 * *chunkp's block when chunkp is given (starting a new block when it is full, taken from *spares
 * first; *chunkp holds the caller's reference; ob: the blocks' owner), else in its own allocation.
 * Thread-safe (used by the load job: *spares belongs to the load). */
static ob_ent *ent_new(const store_event *ev, ob_chunk **chunkp, ob_chunk **spares, outbox *ob,
                       bool is_partitioned)
{
    size_t sz = sizeof(ob_ent) + ev_size(ev);
    ob_ent *e;
    if (chunkp) {
        ob_chunk *c = NULL;
        if (!(e = chunk_cut(ob, chunkp, spares, NULL, false, sz, &c)))
            return NULL;
        memset(e, 0, sizeof *e);
        e->chunk = c;
    } else {
        e = malloc(sz);
        if (!e)
            return NULL;
        memset(e, 0, sizeof *e);
    }
    ev_copy(&e->ev, e->data, ev);
    e->refs = 1;
    e->state = ENT_READY;
    e->key_hash = is_partitioned ? key_hash(e->ev.call_key) : 0;
    return e;
}

/* --- window -------------------------------------------------------------------------------- */

/* Makes room for more entries after the window. Compaction only advances s->win; the window is
 * moved back to the start of the allocation here, when the free tail is used up, and only when
 * that frees at least half of it (otherwise the allocation doubles), so the move is amortised. */
static int win_reserve(outbox_sink *s, size_t more)
{
    if (s->win_off + s->n + more <= s->cap)
        return 0;
    ob_ent **base = s->win - s->win_off;
    if (s->win_off > 0 && (s->n + more) * 2 <= s->cap) {
        memmove(base, s->win, s->n * sizeof *base);
        s->win = base;
        s->win_off = 0;
        return 0;
    }
    size_t cap = s->cap ? s->cap : 64;
    while (cap < 2 * (s->n + more))
        cap *= 2;
    ob_ent **w = malloc(cap * sizeof *w);
    if (!w)
        return SB_ENOMEM;
    if (s->n)
        memcpy(w, s->win, s->n * sizeof *w);
    free(base);
    s->win = w;
    s->win_off = 0;
    s->cap = cap;
    return 0;
}

/* Whether the stream events after s->read_pos are the tail's to give: it holds every stored event
 * from there on, and none of them has a retry state written by this process. */
static bool tail_covers(const outbox_sink *s)
{
    const outbox *ob = s->ob;
    return ob->tail_n > 0 && s->read_pos + 1 >= ob->tail_from && s->read_pos >= s->attempt_hi;
}

/* --- loading (thread pool) ---------------------------------------------------------------------
 */

typedef struct ent_list {
    ob_ent **v;
    size_t n, cap;
} ent_list;

typedef struct load_req {
    outbox_sink *s;
    const char *path, *name;
    int64_t after, upto;
    int limit;
    bool want_dead;
    bool is_dead_only; /* the stream events are in the tail: read only the dead letters */
    int64_t dead_after;
    ent_list evs, dead;
    ob_chunk *chunk;  /* the block being filled (the load's reference) */
    ob_chunk *spares; /* spare blocks handed to the load (returned by load_after) */
    outbox *ob;
    bool is_partitioned;
    store_attempt *atts;
    size_t an, acap;
    int err;
} load_req;

static int list_add(ent_list *l, ob_ent *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        ob_ent **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return SB_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = e;
    return 0;
}

static void list_free(ent_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i])
            ob_ent_unref(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int load_event_cb(const store_event *ev, void *ud)
{
    load_req *r = ud;
    ob_ent *e = ent_new(ev, &r->chunk, &r->spares, r->ob, r->is_partitioned);
    if (!e)
        return SB_ENOMEM;
    if (list_add(&r->evs, e)) {
        ob_ent_unref(e);
        return SB_ENOMEM;
    }
    return 0;
}

static int load_dead_cb(const store_dead *d, void *ud)
{
    load_req *r = ud;
    ob_ent *e = ent_new(&d->ev, NULL, NULL, r->ob, r->is_partitioned);
    if (!e || list_add(&r->dead, e)) {
        free(e);
        return SB_ENOMEM;
    }
    e->is_dead_retry = true;
    return 0;
}

static int load_attempt_cb(const store_attempt *a, void *ud)
{
    load_req *r = ud;
    if (r->an == r->acap) {
        size_t cap = r->acap ? r->acap * 2 : 16;
        store_attempt *v = realloc(r->atts, cap * sizeof *v);
        if (!v)
            return SB_ENOMEM;
        r->atts = v;
        r->acap = cap;
    }
    r->atts[r->an] = *a;
    r->atts[r->an].last_error = NULL; /* not kept: borrowed from the statement */
    r->an++;
    return 0;
}

static void load_work(uv_work_t *w)
{
    load_req *r = w->data;
    outbox_sink *s = r->s; /* only s->rconn is touched: no other thread uses it meanwhile */
    if (!s->rconn && (r->err = store_open(r->path, STORE_OPEN_READ, NULL, &s->rconn)))
        return;
    if (r->want_dead && (r->err = store_dead_scan(s->rconn, r->name, r->dead_after, true, r->limit,
                                                  load_dead_cb, r)))
        return;
    int limit = r->limit - (int)r->dead.n;
    if (limit > 0 && r->upto > r->after && !r->is_dead_only) {
        if ((r->err = store_events_scan(s->rconn, r->after, r->upto, limit, load_event_cb, r)))
            return;
        if (r->evs.n > 0)
            r->err = store_attempts_scan(s->rconn, r->name, r->after, load_attempt_cb, r);
    }
}

static void merge_dead(outbox_sink *s, load_req *r)
{
    for (size_t i = 0; i < r->dead.n; i++) {
        ob_ent *e = r->dead.v[i];
        r->dead.v[i] = NULL;
        size_t pos = 0;
        bool is_dup = false;
        while (pos < s->n && s->win[pos]->ev.seq < e->ev.seq)
            pos++;
        for (size_t k = pos; k < s->n && s->win[k]->ev.seq == e->ev.seq; k++)
            if (s->win[k]->is_dead_retry)
                is_dup = true;
        if (!is_dup && win_reserve(s, 1)) {
            ob_ent_unref(e); /* out of memory: dead_read_pos stays, it is read again */
            return;
        }
        if (e->ev.seq > s->dead_read_pos)
            s->dead_read_pos = e->ev.seq;
        if (is_dup) {
            ob_ent_unref(e);
            continue;
        }
        memmove(&s->win[pos + 1], &s->win[pos], (s->n - pos) * sizeof *s->win);
        s->win[pos] = e;
        s->scan_from = 0;
        s->n++;
        s->n_dead_retry++;
    }
    if ((int)r->dead.n < r->limit)
        s->is_dead_retry_wanted = false;
}

static void merge_events(outbox_sink *s, load_req *r)
{
    int64_t now = ob_now_ms();
    size_t a = 0;
    int64_t last = 0;
    if (win_reserve(s, r->evs.n)) {
        SB_ERROR(SUB, "sink %s: out of memory for the window", s->name);
        return; /* read_pos unchanged: loaded again later */
    }
    for (size_t i = 0; i < r->evs.n; i++) {
        ob_ent *e = r->evs.v[i];
        r->evs.v[i] = NULL;
        while (a < r->an && r->atts[a].seq < e->ev.seq)
            a++;
        if (a < r->an && r->atts[a].seq == e->ev.seq) {
            e->attempts = r->atts[a].attempts;
            e->first_ms = r->atts[a].first_ms;
            e->next_ms = r->atts[a].next_ms;
            if (e->next_ms > now) {
                e->state = ENT_WAITING;
                s->waiting++;
            }
        }
        if (s->ops->wants && !s->ops->wants(s->impl, &e->ev)) {
            if (e->state == ENT_WAITING)
                s->waiting--;
            e->state = ENT_DONE;
        }
        if (e->state == ENT_DONE)
            s->n_done++;
        last = e->ev.seq;
        s->win[s->n++] = e;
    }
    s->from_store += r->evs.n;
    if (r->is_dead_only)
        return; /* no stream event was read: read_pos stays */
    /* Fewer rows than asked: nothing else is stored up to r->upto (ids that were duplicates). */
    int limit = r->limit - (int)r->dead.n;
    if (limit <= 0)
        return; /* dead-letter retries took the room: no event was read */
    if (r->evs.n > 0 && (int)r->evs.n >= limit)
        s->read_pos = last;
    else if (r->upto > s->read_pos)
        s->read_pos = r->upto;
}

static void load_after(uv_work_t *w, int status)
{
    load_req *r = w->data;
    outbox_sink *s = r->s;
    s->is_loading = false;
    if (status == 0 && r->err == 0) {
        merge_dead(s, r);
        merge_events(s, r);
        ob_sink_compact(s);
    } else {
        SB_ERROR(SUB, "sink %s: reading the store failed: %s", s->name,
                 sb_strerror(status ? status : r->err));
        snprintf(s->last_error, sizeof s->last_error, "store read: %s",
                 sb_strerror(status ? status : r->err));
        /* Try again in a second (the timer pumps), not in a tight loop. */
        if (!s->ob->is_closing) {
            s->load_not_before = ob_now_ms() + 1000;
            ob_sink_wake_in(s, 1000);
        }
    }
    list_free(&r->evs);
    list_free(&r->dead);
    chunk_unref(r->chunk);
    while (r->spares) { /* not used by the load */
        ob_chunk *c = r->spares;
        r->spares = c->next;
        c->refs = 1;
        chunk_unref(c);
    }
    free(r->atts);
    free(r);
    if (s->ob->is_closing)
        ob_maybe_finish_close(s->ob);
    else
        ob_sink_pump(s);
}

void ob_load_start(outbox_sink *s, int64_t committed, int room)
{
    load_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->s = s;
    r->path = s->ob->path;
    r->name = s->name;
    r->after = s->read_pos;
    r->upto = committed;
    r->limit = room;
    r->want_dead = s->is_dead_retry_wanted;
    r->is_dead_only = r->want_dead && tail_covers(s);
    r->dead_after = s->dead_read_pos;
    r->ob = s->ob;
    r->is_partitioned = s->cfg.is_partitioned;
    for (int i = 0; i < SPARES_PER_LOAD && s->ob->spare; i++) {
        ob_chunk *c = s->ob->spare;
        s->ob->spare = c->next;
        s->ob->n_spare--;
        c->next = r->spares;
        r->spares = c;
    }
    s->work.data = r;
    int err = uv_queue_work(s->ob->loop, &s->work, load_work, load_after);
    if (err) {
        SB_ERROR(SUB, "sink %s: cannot queue a store read: %s", s->name, uv_strerror(err));
        while (r->spares) {
            ob_chunk *c = r->spares;
            r->spares = c->next;
            c->refs = 1;
            chunk_unref(c);
        }
        free(r);
        return;
    }
    s->is_loading = true;
}

/* --- the memory tail -------------------------------------------------------------------------- */

int ob_tail_take(outbox_sink *s, int64_t committed, int room)
{
    outbox *ob = s->ob;
    if (!tail_covers(s) || s->is_dead_retry_wanted || s->is_loading || room <= 0)
        return 0;
    /* The first record after read_pos (seqs grow along the tail). */
    size_t lo = 0, hi = ob->tail_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ob_tail_at(ob, mid)->ev.seq <= s->read_pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == ob->tail_n || ob_tail_at(ob, lo)->ev.seq > committed)
        return 0;
    if (win_reserve(s, (size_t)room))
        return 0;
    int taken = 0;
    int64_t last = s->read_pos;
    for (size_t i = lo; i < ob->tail_n && taken < room; i++) {
        ob_rec *r = ob_tail_at(ob, i);
        if (i + 8 < ob->tail_n) /* records of a sink behind are cold: fetch ahead */
            __builtin_prefetch(ob_tail_at(ob, i + 8), 1);
        if (r->ev.seq > committed)
            break;
        ob_ent *e = ent_from_rec(s, r);
        if (!e)
            break; /* out of memory: the rest is taken (or read) later */
        if (s->ops->wants && !s->ops->wants(s->impl, &e->ev)) {
            e->state = ENT_DONE;
            s->n_done++;
        }
        s->win[s->n++] = e;
        last = r->ev.seq;
        taken++;
    }
    s->from_tail += (uint64_t)taken;
    s->read_pos = last;
    return taken;
}
