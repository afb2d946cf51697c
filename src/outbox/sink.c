/* sink.c: one runner per sink: keeps committed events ahead of its cursor (read by load.c),
 * hands them to the sink in batches, applies the verdicts (retry with back-off and jitter, dead
 * letters), moves and persists the cursor.
 *
 * The window is the list of loaded events not yet behind the cursor, in seq order. An event may be
 * sent when no earlier unfinished event of the same order key is outstanding elsewhere; the key is
 * the Linkedid for a partitioned sink and one constant for the others, so a non-partitioned sink is
 * strictly ordered and a partitioned one only waits for its own call. When a batch comes back with
 * a retry for key K, later events of K in the same batch are sent again after it (even if the sink
 * took them), so the last delivery a receiver sees is always in order.
 */
#include "outbox/internal.h"

#include "core/error.h"
#include "core/log.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "outbox"
#define WINDOW_HELD_FACTOR 4
/* At most this many batches per store read: a first read of a whole window would leave the sink
 * idle until it is done; smaller reads overlap with the delivery of what was read before. */
#define LOAD_BATCHES 16
/* While batches are in flight a moved cursor is handed to the writer at most this often (each
 * write is a commit): more redeliveries after a crash, never a lost event. With nothing in flight
 * it is written at once. */
#define CURSOR_SAVE_MS 200

static void pump(outbox_sink *s);

/* --- the per-scan key set --------------------------------------------------------------------- */

static void set_begin(outbox_sink *s)
{
    s->set_n = 0;
    if (++s->stamp == 0) { /* wrapped: stale stamps could match again */
        memset(s->set, 0, s->set_cap * sizeof *s->set);
        s->stamp = 1;
    }
}

static ob_slot *set_find(outbox_sink *s, uint64_t h, bool *found)
{
    size_t mask = s->set_cap - 1;
    for (size_t i = (size_t)(h ^ (h >> 29)) & mask;; i = (i + 1) & mask) {
        ob_slot *sl = &s->set[i];
        if (sl->stamp != s->stamp) {
            *found = false;
            return sl;
        }
        if (sl->hash == h) {
            *found = true;
            return sl;
        }
    }
}

static bool set_has(outbox_sink *s, uint64_t h)
{
    if (s->set_n == 0)
        return false; /* the common case: no random access into a table of window size */
    bool found;
    set_find(s, h, &found);
    return found;
}

static void set_add(outbox_sink *s, uint64_t h)
{
    bool found;
    ob_slot *sl = set_find(s, h, &found);
    sl->hash = h;
    sl->stamp = s->stamp;
    s->set_n += !found;
}

/* --- the keys in flight (a multiset: linear probing, backward-shift deletion) ----------------- */

static size_t fly_home(const outbox_sink *s, uint64_t h)
{
    return (size_t)(h ^ (h >> 29)) & (s->fly_cap - 1);
}

static bool fly_has(const outbox_sink *s, uint64_t h)
{
    size_t mask = s->fly_cap - 1;
    for (size_t i = fly_home(s, h);; i = (i + 1) & mask) {
        if (!s->fly[i].count)
            return false;
        if (s->fly[i].hash == h)
            return true;
    }
}

/* The table has room for every entry that can be in flight at once (ob_sink_create). */
static void fly_add(outbox_sink *s, uint64_t h)
{
    size_t mask = s->fly_cap - 1;
    for (size_t i = fly_home(s, h);; i = (i + 1) & mask) {
        ob_kcount *k = &s->fly[i];
        if (!k->count) {
            k->hash = h;
            k->count = 1;
            return;
        }
        if (k->hash == h) {
            k->count++;
            return;
        }
    }
}

static void fly_del(outbox_sink *s, uint64_t h)
{
    size_t mask = s->fly_cap - 1, i = fly_home(s, h);
    while (s->fly[i].count && s->fly[i].hash != h)
        i = (i + 1) & mask;
    assert(s->fly[i].count > 0);
    if (!s->fly[i].count || --s->fly[i].count > 0)
        return;
    /* Backward shift: pull later members of the probe run into the hole when the hole lies on
     * their way from their home slot. */
    for (size_t j = (i + 1) & mask; s->fly[j].count; j = (j + 1) & mask) {
        size_t home = fly_home(s, s->fly[j].hash);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->fly[i] = s->fly[j];
            s->fly[j].count = 0;
            i = j;
        }
    }
    s->fly[i].count = 0;
}

/* --- window -------------------------------------------------------------------------------- */

/* Persists a moved cursor (at most every CURSOR_SAVE_MS while batches are in flight); after
 * nothing loaded is unfinished the cursor may first jump to what was read (skipped ids). */
static void cursor_update(outbox_sink *s, bool is_blocked)
{
    if (!is_blocked && s->read_pos > s->cursor)
        s->cursor = s->read_pos;
    if (s->cursor == s->saved_cursor)
        return;
    uint64_t now = uv_now(s->ob->loop);
    if (s->inflight > 0 && now - s->cursor_saved_at < CURSOR_SAVE_MS)
        return; /* an answer of a batch in flight calls again */
    s->cursor_saved_at = now;
    s->saved_cursor = s->cursor;
    ob_job_cursor(s, s->cursor);
}

/* Drops finished entries: every finished dead-letter retry, and the finished stream events before
 * the first unfinished one (that prefix moves the cursor). Persists a moved cursor.
 *
 * Without dead-letter retries in the window only the finished prefix goes, and the counters give
 * the rest: the cost is the prefix dropped, not the window (which may hold thousands of entries,
 * each a cache miss, on every batch answered). */
void ob_sink_compact(outbox_sink *s)
{
    if (s->n_dead_retry == 0) {
        size_t k = 0;
        while (k < s->n && s->win[k]->state == ENT_DONE) {
            ob_ent *e = s->win[k++];
            if (e->ev.seq > s->cursor)
                s->cursor = e->ev.seq;
            ob_ent_unref(e);
        }
        if (k) {
            s->win += k; /* win_reserve moves the window down when it needs the room */
            s->win_off += k;
            s->n -= k;
            s->n_done -= k;
            s->scan_from = s->scan_from > k ? s->scan_from - k : 0;
        }
        s->held = s->n_done;
#ifndef NDEBUG
        size_t done = 0;
        for (size_t i = 0; i < s->n; i++) {
            assert(!s->win[i]->is_dead_retry);
            done += s->win[i]->state == ENT_DONE;
        }
        assert(done == s->n_done);
#endif
        cursor_update(s, s->n > 0);
        return;
    }
    bool is_blocked = false;
    size_t j = 0, held = 0, dead_retry = 0;
    for (size_t i = 0; i < s->n; i++) {
        ob_ent *e = s->win[i];
        bool is_drop = false;
        if (e->is_dead_retry) {
            is_drop = e->state == ENT_DONE;
        } else if (!is_blocked && e->state == ENT_DONE) {
            if (e->ev.seq > s->cursor)
                s->cursor = e->ev.seq;
            is_drop = true;
        } else if (e->state != ENT_DONE) {
            is_blocked = true;
        }
        if (is_drop) {
            ob_ent_unref(e);
        } else {
            held += e->state == ENT_DONE;
            dead_retry += e->is_dead_retry;
            s->win[j++] = e;
        }
    }
    s->n = j;
    s->scan_from = 0;
    s->held = held;
    s->n_done = held; /* every finished entry left is a held stream event */
    s->n_dead_retry = dead_retry;
    cursor_update(s, is_blocked);
}

static void win_clear(outbox_sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        ob_ent_unref(s->win[i]);
    s->n = 0;
    s->scan_from = 0;
    s->win -= s->win_off;
    s->win_off = 0;
    s->held = 0;
    s->n_done = 0;
    s->n_dead_retry = 0;
    s->waiting = 0;
}

/* --- delivery -------------------------------------------------------------------------------- */

static uint32_t backoff_ms(outbox_sink *s, uint32_t attempts)
{
    uint64_t d = s->cfg.backoff_base_ms;
    for (uint32_t i = 1; i < attempts && d < s->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > s->cfg.backoff_max_ms)
        d = s->cfg.backoff_max_ms;
    /* "Equal jitter": half fixed, half random, so retries of many events spread out. */
    return (uint32_t)(d / 2 + ob_rand(s->ob, d / 2 + 1));
}

static void go_dead(outbox_sink *s, ob_ent *e, const char *reason)
{
    if (e->state == ENT_WAITING)
        s->waiting--;
    e->state = ENT_DONE;
    s->n_done++;
    s->dead++;
    snprintf(s->last_error, sizeof s->last_error, "%s", reason);
    SB_WARN(SUB, "sink %s: event %s (seq %lld) dead after %u attempts: %s", s->name, e->ev.id,
            (long long)e->ev.seq, e->attempts, reason);
    ob_job_dead_put(s, e, reason);
}

static void on_delivered(outbox_delivery *d, const outbox_result *results)
{
    outbox_sink *s = d->s;
    int64_t now = ob_now_ms();
    s->inflight--;
    set_begin(s); /* keys that failed in this batch */
    for (size_t i = 0; i < d->n; i++)
        fly_del(s, d->ents[i]->key_hash);
    for (size_t i = 0; i < d->n; i++) {
        ob_ent *e = d->ents[i];
        const outbox_result *r = &results[i];
        const char *why = r->error && *r->error ? r->error : "no reason given";
        if (set_has(s, e->key_hash)) {
            e->state = ENT_READY; /* sent again after the earlier one of its key */
            s->scan_from = 0;     /* sendable again: the next scan looks at the whole window */
            continue;
        }
        if (r->verdict == OUTBOX_OK) {
            e->state = ENT_DONE;
            s->n_done++;
            s->delivered++;
            if (e->is_dead_retry)
                ob_job_dead_delete(s, e->ev.seq);
            else if (e->attempts > 0)
                ob_job_attempt_clear(s, e->ev.seq);
        } else if (r->verdict == OUTBOX_DEAD) {
            e->attempts++;
            go_dead(s, e, why);
        } else {
            s->retried++;
            e->attempts++;
            if (!e->first_ms)
                e->first_ms = now;
            snprintf(s->last_error, sizeof s->last_error, "%s", why);
            if (e->attempts >= s->cfg.max_attempts || now - e->first_ms >= s->cfg.max_age_ms) {
                char reason[256];
                snprintf(reason, sizeof reason, "gave up after %u attempts: %s", e->attempts, why);
                go_dead(s, e, reason);
            } else {
                uint32_t delay = r->retry_after_ms ? r->retry_after_ms : backoff_ms(s, e->attempts);
                e->next_ms = now + delay;
                e->state = ENT_WAITING;
                s->waiting++;
                s->scan_from = 0; /* a retry to come: the next scan looks at the whole window */
                set_add(s, e->key_hash);
                if (!e->is_dead_retry)
                    ob_job_attempt_put(s, e, why);
            }
        }
    }
    free(d);
    ob_sink_compact(s);
    if (s->ob->is_closing)
        ob_maybe_finish_close(s->ob);
    else
        pump(s);
}

/* Picks the next batch and hands it to the sink; false when nothing can be sent now.
 *
 * An entry may go when no earlier unfinished entry of its key is outstanding (in flight, or
 * waiting for a retry that is not due). The scan walks the window from its start and blocks the
 * keys of such entries as it meets them. Without dead-letter retries in the window (the normal
 * case) the in-flight entries of a key always come before its other unfinished ones (a batch takes
 * a key's sendable entries in window order and a failure puts every later entry of that key in
 * the batch back), so the scan starts after the in-flight prefix (scan_from) and blocks in-flight
 * keys by the multiset instead: the same choice, without walking the batches in flight every
 * time. A dead-letter retry sits before the stream events of its call and is not blocked by them:
 * with retries loaded the scan walks the whole window as it always did. */
static bool deliver_one(outbox_sink *s, int64_t now)
{
    size_t max = (size_t)s->cfg.batch_max, n = 0;
    outbox_delivery *d = malloc(sizeof *d + max * (sizeof(ob_ent *) + sizeof(outbox_event *)));
    if (!d)
        return false;
    d->s = s;
    d->ents = (ob_ent **)(d + 1);
    d->evs = (const outbox_event **)(d->ents + max);
    bool is_fast = s->n_dead_retry == 0;
    size_t i = 0;
    if (is_fast) {
        while (s->scan_from < s->n && (s->win[s->scan_from]->state == ENT_INFLIGHT ||
                                       s->win[s->scan_from]->state == ENT_DONE))
            s->scan_from++;
        i = s->scan_from;
    }
    set_begin(s); /* keys with an earlier event outstanding elsewhere */
    for (; i < s->n && n < max; i++) {
        ob_ent *e = s->win[i];
        if (e->state == ENT_DONE || set_has(s, e->key_hash))
            continue;
        if (is_fast && (e->state == ENT_INFLIGHT || fly_has(s, e->key_hash)))
            continue;
        if (e->state == ENT_READY || (e->state == ENT_WAITING && e->next_ms <= now)) {
            d->ents[n] = e;
            d->evs[n] = &e->ev;
            n++;
        } else {
            set_add(s, e->key_hash);
        }
    }
    if (n == 0) {
        free(d);
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        ob_ent *e = d->ents[k];
        if (e->state == ENT_WAITING)
            s->waiting--;
        e->state = ENT_INFLIGHT;
        e->ev.attempt = e->attempts + 1;
        fly_add(s, e->key_hash);
    }
    d->n = n;
    s->inflight++;
    int err = s->ops->deliver(s->impl, d->evs, n, on_delivered, d);
    if (err) {
        /* The sink could not even start: every event of the batch failed this attempt. */
        outbox_result *res = calloc(n, sizeof *res);
        if (!res) {
            for (size_t k = 0; k < n; k++) {
                d->ents[k]->state = ENT_READY;
                fly_del(s, d->ents[k]->key_hash);
            }
            s->scan_from = 0;
            s->inflight--;
            free(d);
            return false;
        }
        for (size_t k = 0; k < n; k++)
            res[k] = (outbox_result){OUTBOX_RETRY, 0, sb_strerror(err)};
        on_delivered(d, res);
        free(res);
        return false;
    }
    return true;
}

static void on_timer(uv_timer_t *t)
{
    outbox_sink *s = t->data;
    s->timer_due = 0;
    pump(s);
}

void ob_sink_wake_in(outbox_sink *s, uint64_t delay_ms)
{
    s->timer_due = ob_now_ms() + (int64_t)delay_ms;
    uv_timer_start(&s->timer, on_timer, delay_ms, 0);
}

/* Arms the timer for the earliest retry (or the store-read retry). */
static void arm_timer(outbox_sink *s, int64_t now)
{
    int64_t due = 0;
    /* Only future retries: one already due was not sent because an earlier event of its key is
     * at the sink (its answer pumps again) or every batch slot is taken (likewise). Arming a 0 ms
     * timer for it would spin: libuv runs a timer re-armed from its callback at once. */
    if (s->waiting) {
        for (size_t i = 0; i < s->n; i++) {
            ob_ent *e = s->win[i];
            if (e->state == ENT_WAITING && e->next_ms > now && (!due || e->next_ms < due))
                due = e->next_ms;
        }
    }
    if (!due || due == s->timer_due)
        return;
    s->timer_due = due;
    uv_timer_start(&s->timer, on_timer, (uint64_t)(due - now), 0);
}

typedef struct replay_job {
    outbox_sink *s;
    int64_t from_ms, cursor, seq;
} replay_job;

static int replay_run(store_conn *c, void *arg)
{
    replay_job *j = arg;
    int err = store_seq_before_time(c, j->from_ms, &j->seq);
    if (err)
        return err;
    if (j->seq > j->cursor)
        j->seq = j->cursor; /* never forwards: that would skip events */
    return store_sink_set_cursor(c, j->s->name, j->seq, ob_now_ms());
}

static void replay_done(int status, void *arg)
{
    replay_job *j = arg;
    outbox_sink *s = j->s;
    outbox_op_cb cb = s->replay_cb;
    void *ud = s->replay_ud;
    s->is_replay_pending = s->is_replay_running = false;
    s->replay_cb = NULL;
    if (!status) {
        win_clear(s);
        s->cursor = s->saved_cursor = s->read_pos = j->seq;
        s->dead_read_pos = 0;
        s->is_dead_retry_wanted = true;
        SB_INFO(SUB, "sink %s: replaying after seq %lld", s->name, (long long)j->seq);
    }
    int64_t seq = j->seq;
    free(j);
    s->ob->pending_jobs--;
    if (cb)
        cb(status, seq, ud);
    if (s->ob->is_closing)
        ob_maybe_finish_close(s->ob);
    else
        pump(s);
}

static void start_replay(outbox_sink *s)
{
    replay_job *j = calloc(1, sizeof *j);
    int err = SB_ENOMEM;
    if (j) {
        *j = (replay_job){s, s->replay_from_ms, s->cursor, 0};
        err = store_writer_submit(s->ob->writer, replay_run, replay_done, j);
    }
    if (err) {
        free(j);
        outbox_op_cb cb = s->replay_cb;
        s->is_replay_pending = false;
        s->replay_cb = NULL;
        if (cb)
            cb(err, 0, s->replay_ud);
        return;
    }
    s->ob->pending_jobs++;
    s->is_replay_running = true;
}

static void pump_once(outbox_sink *s)
{
    if (!s->is_started || s->ob->is_closing)
        return;
    if (s->is_replay_pending) {
        if (!s->inflight && !s->is_loading && !s->is_replay_running)
            start_replay(s);
        return; /* nothing new goes out until the cursor moved back */
    }
    int64_t committed = ob_read_limit(s->ob);
    /* Finished events held behind an unfinished one do not count against the window, so the other
     * calls of a partitioned sink flow on while one call waits for its retries, up to a hard
     * limit of WINDOW_HELD_FACTOR windows in memory. */
    int room = s->cfg.window - (int)(s->n - s->held);
    if (s->n + (size_t)s->cfg.batch_max > WINDOW_HELD_FACTOR * (size_t)s->cfg.window)
        room = 0;
    int64_t now = ob_now_ms();
    /* Events still in the outbox's memory tail are taken from there, on the loop and at once.
     * Store reads come in chunks of up to LOAD_BATCHES batches: a full window would otherwise
     * start a read of one batch every time one batch finished (each read has a fixed cost: a
     * thread-pool round trip, two queries). A smaller read only when the window is running low. */
    int most = LOAD_BATCHES * s->cfg.batch_max;
    int chunk = most < s->cfg.window / 2 ? most : s->cfg.window / 2;
    bool is_low = s->n - s->n_done < 2 * (size_t)s->cfg.max_inflight * (size_t)s->cfg.batch_max;
    bool is_wanted = !s->is_loading && room >= s->cfg.batch_max && now >= s->load_not_before &&
                     (s->read_pos < committed || s->is_dead_retry_wanted);
    if (is_wanted && ob_tail_take(s, committed, room < most ? room : most) > 0)
        ob_sink_compact(s); /* filtered-out events may move the cursor */
    else if (is_wanted && (room >= chunk || is_low))
        ob_load_start(s, committed, room < most ? room : most);
    while (s->inflight < (size_t)s->cfg.max_inflight && deliver_one(s, now))
        ;
    arm_timer(s, now);
}

static void pump(outbox_sink *s)
{
    if (s->is_pumping) {
        s->is_repump = true;
        return;
    }
    s->is_pumping = true;
    do {
        s->is_repump = false;
        pump_once(s);
    } while (s->is_repump);
    s->is_pumping = false;
}

void ob_sink_pump(outbox_sink *s)
{
    pump(s);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

int ob_sink_create(outbox *ob, const outbox_sink_config *cfg, const outbox_sink_ops *ops,
                   void *impl, outbox_sink **out)
{
    outbox_sink *s = calloc(1, sizeof *s);
    if (!s)
        return SB_ENOMEM;
    size_t n = strlen(cfg->name);
    if (!(s->name = malloc(n + 1))) {
        free(s);
        return SB_ENOMEM;
    }
    memcpy(s->name, cfg->name, n + 1);
    s->ob = ob;
    s->cfg = *cfg;
    s->cfg.name = s->name;
    if (s->cfg.batch_max <= 0)
        s->cfg.batch_max = 100;
    if (s->cfg.max_inflight <= 0)
        s->cfg.max_inflight = 1;
    if (s->cfg.window <= 0)
        s->cfg.window = 4096;
    if (s->cfg.window < s->cfg.batch_max)
        s->cfg.window = s->cfg.batch_max;
    if (!s->cfg.max_attempts)
        s->cfg.max_attempts = 10;
    if (s->cfg.max_age_ms <= 0)
        s->cfg.max_age_ms = 24LL * 3600 * 1000;
    if (!s->cfg.backoff_base_ms)
        s->cfg.backoff_base_ms = 500;
    if (!s->cfg.backoff_max_ms)
        s->cfg.backoff_max_ms = 300000;
    s->ops = ops;
    s->impl = impl;
    s->set_cap = 16;
    while (s->set_cap < 2 * ((size_t)s->cfg.window + (size_t)s->cfg.batch_max))
        s->set_cap *= 2;
    s->fly_cap = 16;
    while (s->fly_cap < 2 * (size_t)s->cfg.max_inflight * (size_t)s->cfg.batch_max)
        s->fly_cap *= 2;
    s->set = calloc(s->set_cap, sizeof *s->set);
    s->fly = calloc(s->fly_cap, sizeof *s->fly);
    if (!s->set || !s->fly) {
        free(s->set);
        free(s->fly);
        free(s->name);
        free(s);
        return SB_ENOMEM;
    }
    *out = s;
    return 0;
}

typedef struct start_job {
    outbox_sink *s;
    int64_t cursor;
} start_job;

static int start_run(store_conn *c, void *arg)
{
    start_job *j = arg;
    int64_t start = 0;
    int err = 0;
    if (j->s->cfg.is_start_at_end)
        err = store_last_seq(c, &start);
    if (!err)
        err = store_sink_cursor(c, j->s->name, start, &j->cursor);
    return err;
}

static void start_done(int status, void *arg)
{
    start_job *j = arg;
    outbox_sink *s = j->s;
    s->ob->pending_jobs--;
    if (status) {
        SB_ERROR(SUB, "sink %s: cannot read its cursor: %s", s->name, sb_strerror(status));
        snprintf(s->last_error, sizeof s->last_error, "cursor: %s", sb_strerror(status));
    } else {
        s->cursor = s->saved_cursor = s->read_pos = j->cursor;
        s->is_started = true;
        s->is_dead_retry_wanted = true; /* dead letters marked for retry while we were down */
        SB_INFO(SUB, "sink %s (%s) starts after seq %lld", s->name, s->ops->kind,
                (long long)s->cursor);
    }
    free(j);
    if (s->ob->is_closing)
        ob_maybe_finish_close(s->ob);
    else
        pump(s);
}

int ob_sink_start(outbox_sink *s)
{
    start_job *j = calloc(1, sizeof *j);
    if (!j)
        return SB_ENOMEM;
    j->s = s;
    int err = store_writer_submit(s->ob->writer, start_run, start_done, j);
    if (err) {
        free(j);
        return err;
    }
    s->ob->pending_jobs++;
    uv_timer_init(s->ob->loop, &s->timer);
    s->timer.data = s;
    return 0;
}

bool ob_sink_is_idle(const outbox_sink *s)
{
    return !s->inflight && !s->is_loading && !s->is_replay_running;
}

void ob_sink_request_dead_retry(outbox_sink *s)
{
    s->is_dead_retry_wanted = true;
}

int ob_sink_replay(outbox_sink *s, int64_t from_ms, outbox_op_cb cb, void *ud)
{
    if (s->is_replay_pending)
        return SB_EINVAL;
    s->is_replay_pending = true;
    s->replay_from_ms = from_ms;
    s->replay_cb = cb;
    s->replay_ud = ud;
    pump(s);
    return 0;
}

static void on_sink_timer_closed(uv_handle_t *h)
{
    outbox_sink *s = h->data;
    s->is_handle_closed = true;
    ob_handle_closed(s->ob);
}

void ob_sink_close_handles(outbox_sink *s)
{
    s->ob->handles_open++;
    s->timer.data = s;
    uv_close((uv_handle_t *)&s->timer, on_sink_timer_closed);
}

void ob_sink_free(outbox_sink *s)
{
    if (s->is_replay_pending && s->replay_cb)
        s->replay_cb(SB_ECANCELED, 0, s->replay_ud);
    win_clear(s);
    ob_chunk_release(s->echunk);
    free(s->win); /* win_clear moved it back to the start of the allocation */
    free(s->set);
    free(s->fly);
    store_close(s->rconn);
    if (s->ops->free && s->impl)
        s->ops->free(s->impl);
    free(s->name);
    free(s);
}
