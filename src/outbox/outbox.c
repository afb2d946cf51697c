/* outbox.c: the outbox itself: opening the store, appending events, the writer jobs the sinks
 * need (cursor, retry state, dead letters), retention, the size watch, and the daemon-side
 * `outbox status|retry|replay` operations. One runner per sink lives in sink.c.
 */
#include "outbox/internal.h"

#include "core/error.h"
#include "core/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUB "outbox"

int64_t ob_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t ob_rand(outbox *ob, uint64_t n)
{
    uint64_t x = ob->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ob->rng = x;
    return x % n;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* --- writer jobs on behalf of sinks -------------------------------------------------------- */

enum { JOB_CURSOR, JOB_ATTEMPT_PUT, JOB_ATTEMPT_CLEAR, JOB_DEAD_PUT, JOB_DEAD_DELETE };

typedef struct ob_job {
    int op;
    outbox_sink *s; /* s->name is immutable: read on the writer thread */
    int64_t seq;
    store_attempt a;
    ob_ent *ent; /* JOB_DEAD_PUT: a reference */
    char error[256];
} ob_job;

static int job_run(store_conn *c, void *arg)
{
    ob_job *j = arg;
    const char *sink = j->s->name;
    int64_t now = ob_now_ms();
    switch (j->op) {
    case JOB_CURSOR:
        return store_sink_set_cursor(c, sink, j->seq, now);
    case JOB_ATTEMPT_PUT:
        return store_attempt_put(c, sink, &j->a);
    case JOB_ATTEMPT_CLEAR:
        return store_attempt_clear(c, sink, j->seq);
    case JOB_DEAD_DELETE:
        return store_dead_delete(c, sink, j->seq);
    case JOB_DEAD_PUT: {
        const outbox_event *e = &j->ent->ev;
        store_event ev = {e->seq,      e->id,      e->type,    e->pbx,
                          e->call_key, e->time_ms, e->payload, e->payload_len};
        int err = store_dead_put(c, sink, &ev, j->ent->attempts, j->error, now);
        if (!err && j->ent->attempts > 0)
            err = store_attempt_clear(c, sink, e->seq);
        return err;
    }
    }
    return SB_EINVAL;
}

static void job_done(int status, void *arg)
{
    ob_job *j = arg;
    outbox *ob = j->s->ob;
    if (status)
        SB_ERROR(SUB, "sink %s: store update %d failed: %s", j->s->name, j->op,
                 sb_strerror(status));
    if (j->ent)
        ob_ent_unref(j->ent);
    free(j);
    ob->pending_jobs--;
    ob_maybe_finish_close(ob);
}

static void job_submit(ob_job *j)
{
    outbox *ob = j->s->ob;
    /* Urgent: these refer to committed events only, and a cursor stuck behind a flood of appends
     * would mean many duplicates after a crash. */
    int err =
        ob->writer ? store_writer_submit_urgent(ob->writer, job_run, job_done, j) : SB_ECANCELED;
    if (err) {
        /* Only while stopping: the state is rebuilt from the store at the next start. */
        SB_WARN(SUB, "sink %s: store update dropped: %s", j->s->name, sb_strerror(err));
        if (j->ent)
            ob_ent_unref(j->ent);
        free(j);
        return;
    }
    ob->pending_jobs++;
}

static ob_job *job_new(outbox_sink *s, int op)
{
    ob_job *j = calloc(1, sizeof *j);
    if (!j) {
        SB_ERROR(SUB, "sink %s: out of memory for a store update", s->name);
        return NULL;
    }
    j->op = op;
    j->s = s;
    return j;
}

void ob_job_cursor(outbox_sink *s, int64_t cursor)
{
    ob_job *j = job_new(s, JOB_CURSOR);
    if (!j)
        return;
    j->seq = cursor;
    job_submit(j);
}

void ob_job_attempt_put(outbox_sink *s, const ob_ent *e, const char *error)
{
    ob_job *j = job_new(s, JOB_ATTEMPT_PUT);
    if (!j)
        return;
    snprintf(j->error, sizeof j->error, "%s", error ? error : "");
    j->a = (store_attempt){e->ev.seq, e->attempts, e->first_ms, e->next_ms, j->error};
    if (e->ev.seq > s->attempt_hi)
        s->attempt_hi = e->ev.seq; /* a later read of this seq must see the retry state */
    job_submit(j);
}

void ob_job_attempt_clear(outbox_sink *s, int64_t seq)
{
    ob_job *j = job_new(s, JOB_ATTEMPT_CLEAR);
    if (!j)
        return;
    j->seq = seq;
    job_submit(j);
}

void ob_job_dead_put(outbox_sink *s, ob_ent *e, const char *error)
{
    ob_job *j = job_new(s, JOB_DEAD_PUT);
    if (!j)
        return;
    snprintf(j->error, sizeof j->error, "%s", error ? error : "");
    e->refs++;
    j->ent = e;
    job_submit(j);
}

void ob_job_dead_delete(outbox_sink *s, int64_t seq)
{
    ob_job *j = job_new(s, JOB_DEAD_DELETE);
    if (!j)
        return;
    j->seq = seq;
    job_submit(j);
}

/* --- commits, appends ------------------------------------------------------------------------ */

static void on_commit(int64_t committed, void *ud)
{
    outbox *ob = ud;
    ob->last_committed = committed;
    for (outbox_sink *s = ob->sinks; s; s = s->next)
        ob_sink_pump(s);
}

/* --- the memory tail ------------------------------------------------------------------------- */

ob_rec *ob_tail_at(const outbox *ob, size_t i)
{
    return ob->tail[(ob->tail_head + i) & (ob->tail_cap - 1)];
}

static void tail_pop(outbox *ob)
{
    ob_rec *r = ob->tail[ob->tail_head];
    ob->tail_head = (ob->tail_head + 1) & (ob->tail_cap - 1);
    ob->tail_n--;
    ob->tail_bytes -= (int64_t)r->size;
    ob->tail_from = r->ev.seq + 1; /* the store alone has it now */
    ob_rec_unref(r);
}

static void tail_clear(outbox *ob)
{
    while (ob->tail_n)
        tail_pop(ob);
    ob->tail_from = INT64_MAX;
}

/* Takes r's reference. Durable events arrive in seq order; anything else empties the tail (then
 * it starts again from r), so the tail never claims an event it does not hold. */
static void tail_push(outbox *ob, ob_rec *r)
{
    if (ob->tail_n && ob_tail_at(ob, ob->tail_n - 1)->ev.seq >= r->ev.seq)
        tail_clear(ob);
    if (ob->tail_n == ob->tail_cap) {
        size_t cap = ob->tail_cap ? ob->tail_cap * 2 : 1024;
        ob_rec **t = malloc(cap * sizeof *t);
        if (!t) { /* out of memory: the sinks read the store */
            tail_clear(ob);
            ob_rec_unref(r);
            return;
        }
        for (size_t i = 0; i < ob->tail_n; i++)
            t[i] = ob_tail_at(ob, i);
        free(ob->tail);
        ob->tail = t;
        ob->tail_cap = cap;
        ob->tail_head = 0;
    }
    if (!ob->tail_n && ob->tail_from == INT64_MAX)
        ob->tail_from = r->ev.seq;
    ob->tail[(ob->tail_head + ob->tail_n) & (ob->tail_cap - 1)] = r;
    ob->tail_n++;
    ob->tail_bytes += (int64_t)r->size;
    while (ob->tail_bytes > ob->tail_max && ob->tail_n > 1)
        tail_pop(ob);
}

int64_t ob_read_limit(const outbox *ob)
{
    int64_t c = outbox_committed_seq(ob);
    if (!ob->recs_pending)
        return c;
    int64_t lim = ob->durable_seq > ob->seq_base ? ob->durable_seq : ob->seq_base;
    return lim < c ? lim : c;
}

static void rec_durable(int status, int64_t seq, void *ud)
{
    ob_rec *r = ud;
    outbox *ob = r->ob;
    outbox_durable_cb cb = r->cb;
    void *cud = r->ud;
    ob->recs_pending--;
    if (status == 0 && seq > ob->durable_seq)
        ob->durable_seq = seq;
    if (status == 0 && !ob->is_closing) {
        r->ev.seq = seq;
        tail_push(ob, r);
    } else {
        /* Not stored (or stored before: SB_EEXIST), or shutting down: not for the tail. */
        ob_rec_unref(r);
    }
    if (cb)
        cb(status, seq, cud);
}

int outbox_append(outbox *ob, const store_event *ev, outbox_durable_cb cb, void *ud)
{
    if (ob->is_closing)
        return SB_ECANCELED;
    if (ob->is_over_max) {
        ob->n_refused++;
        return SB_ETOOBIG;
    }
    int err;
    if (ob->tail_max > 0) {
        /* A copy for the tail, published when durable (rec_durable calls cb). */
        ob_rec *r = ob_rec_new(ob, ev);
        if (!r)
            return SB_ENOMEM;
        r->cb = cb;
        r->ud = ud;
        err = store_writer_append(ob->writer, ev, rec_durable, r);
        if (err)
            ob_rec_unref(r);
        else
            ob->recs_pending++;
    } else {
        err = store_writer_append(ob->writer, ev, cb, ud);
    }
    if (err == SB_ETOOBIG)
        ob->n_refused++;
    else if (!err)
        ob->n_appended++;
    return err;
}

void outbox_stats_get(const outbox *ob, outbox_stats *st)
{
    memset(st, 0, sizeof *st);
    st->appended = ob->n_appended;
    if (ob->writer) {
        store_writer_stats ws;
        store_writer_stats_get(ob->writer, &ws);
        st->durable = ws.events_ok;
        st->duplicates = ws.events_exist;
        st->failed = ws.events_failed;
    }
    st->refused = ob->n_refused;
    st->committed = outbox_committed_seq(ob);
    st->backlog = ob->writer ? store_writer_backlog(ob->writer) : 0;
    st->store_bytes = ob->store_bytes;
    st->is_over_warn = ob->is_over_warn;
    st->is_over_max = ob->is_over_max;
}

int64_t outbox_committed_seq(const outbox *ob)
{
    return ob->writer ? store_writer_committed_seq(ob->writer) : ob->last_committed;
}

/* --- retention and size ------------------------------------------------------------------ */

typedef struct prune_job {
    outbox *ob;
    int64_t upto, older_than;
    int64_t deleted, total, bytes;
    outbox_op_cb cb;
    void *ud;
} prune_job;

static int prune_run(store_conn *c, void *arg)
{
    prune_job *p = arg;
    int err = 0;
    p->deleted = 0;
    if (p->upto > 0)
        err = store_events_prune(c, p->upto, p->older_than, p->ob->opt.prune_chunk, &p->deleted);
    if (!err)
        err = store_size_bytes(c, &p->bytes);
    return err;
}

static void prune_done(int status, void *arg)
{
    prune_job *p = arg;
    outbox *ob = p->ob;
    p->total += p->deleted;
    if (!status && p->deleted >= ob->opt.prune_chunk && !ob->is_closing && ob->writer &&
        store_writer_submit(ob->writer, prune_run, prune_done, p) == 0)
        return; /* more to delete: the next step (still counted in pending_jobs) */
    if (!status) {
        bool is_warn = p->bytes >= ob->opt.size_warn_bytes;
        bool is_max = p->bytes >= ob->opt.size_max_bytes;
        if (p->total)
            SB_INFO(SUB, "pruned %lld delivered events", (long long)p->total);
        if (!ob->is_size_known || is_warn != ob->is_over_warn || is_max != ob->is_over_max) {
            if (is_warn || ob->is_size_known) {
                if (is_warn)
                    SB_WARN(SUB, "store %s uses %lld bytes (warn at %lld, refuse at %lld)",
                            ob->path, (long long)p->bytes, (long long)ob->opt.size_warn_bytes,
                            (long long)ob->opt.size_max_bytes);
                if (ob->opt.on_size)
                    ob->opt.on_size(p->bytes, is_warn, is_max, ob->opt.on_size_ud);
            }
        }
        ob->is_size_known = true;
        ob->store_bytes = p->bytes;
        ob->is_over_warn = is_warn;
        ob->is_over_max = is_max;
    } else {
        SB_ERROR(SUB, "retention/size check failed: %s", sb_strerror(status));
    }
    if (p->cb)
        p->cb(status, p->total, p->ud);
    free(p);
    ob->pending_jobs--;
    ob_maybe_finish_close(ob);
}

int outbox_prune_now(outbox *ob, outbox_op_cb cb, void *ud)
{
    if (ob->is_closing)
        return SB_ECANCELED;
    prune_job *p = calloc(1, sizeof *p);
    if (!p)
        return SB_ENOMEM;
    p->ob = ob;
    p->cb = cb;
    p->ud = ud;
    /* Only what every sink is done with; with no sink at all, retention alone decides. */
    int64_t upto = outbox_committed_seq(ob);
    for (outbox_sink *s = ob->sinks; s; s = s->next) {
        int64_t c = s->is_started ? s->saved_cursor : 0;
        if (c < upto)
            upto = c;
    }
    p->upto = upto;
    p->older_than = ob_now_ms() - ob->opt.retention_ms;
    int err = store_writer_submit(ob->writer, prune_run, prune_done, p);
    if (err) {
        free(p);
        return err;
    }
    ob->pending_jobs++;
    return 0;
}

static void on_prune_timer(uv_timer_t *t)
{
    outbox *ob = t->data;
    int err = outbox_prune_now(ob, NULL, NULL);
    if (err)
        SB_WARN(SUB, "retention check not started: %s", sb_strerror(err));
}

/* --- open, sinks, close ------------------------------------------------------------------- */

/* The hard cap: size_max plus 1/16 headroom for the sinks' bookkeeping. Appends are refused at
 * size_max by the periodic check; this stops a burst between two checks from filling the disk. */
static int cap_run(store_conn *c, void *arg)
{
    const outbox *ob = arg;
    return store_set_max_bytes(c, ob->opt.size_max_bytes + ob->opt.size_max_bytes / 16);
}

static void cap_done(int status, void *arg)
{
    outbox *ob = arg;
    if (status)
        SB_WARN(SUB, "cannot cap the store's size: %s", sb_strerror(status));
    ob->pending_jobs--;
    ob_maybe_finish_close(ob);
}

int outbox_open(uv_loop_t *loop, const outbox_options *opt, outbox **out)
{
    *out = NULL;
    if (!opt || !opt->path)
        return SB_EINVAL;
    outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        return SB_ENOMEM;
    ob->loop = loop;
    ob->opt = *opt;
    if (ob->opt.retention_ms <= 0)
        ob->opt.retention_ms = 7LL * 24 * 3600 * 1000;
    if (ob->opt.prune_interval_ms <= 0)
        ob->opt.prune_interval_ms = 60000;
    if (ob->opt.prune_chunk <= 0)
        ob->opt.prune_chunk = 20000;
    if (ob->opt.size_warn_bytes <= 0)
        ob->opt.size_warn_bytes = 1LL << 30;
    if (ob->opt.size_max_bytes <= 0)
        ob->opt.size_max_bytes = 4LL << 30;
    ob->tail_max = ob->opt.tail_bytes == 0 ? 64LL << 20 : ob->opt.tail_bytes;
    ob->tail_from = INT64_MAX;
    ob->rng = ((uint64_t)ob_now_ms() << 16) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ULL;
    int err = SB_ENOMEM;
    if (!(ob->path = dup_str(opt->path)))
        goto fail;
    ob->opt.path = ob->path;
    if ((err = store_writer_start(loop, ob->path, &ob->opt.store, &ob->opt.writer, &ob->writer)))
        goto fail;
    store_writer_on_commit(ob->writer, on_commit, ob);
    ob->seq_base = store_writer_committed_seq(ob->writer);
    if (store_writer_submit(ob->writer, cap_run, cap_done, ob) == 0)
        ob->pending_jobs++;
    uv_timer_init(loop, &ob->prune_timer);
    ob->prune_timer.data = ob;
    ob->handles_open++;
    /* The first check runs at once: a store already over its limit refuses appends early. */
    uv_timer_start(&ob->prune_timer, on_prune_timer, 0, (uint64_t)ob->opt.prune_interval_ms);
    *out = ob;
    return 0;
fail:
    free(ob->path);
    free(ob);
    return err;
}

static outbox_sink *find_sink(outbox *ob, const char *name)
{
    for (outbox_sink *s = ob->sinks; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

int outbox_add_sink(outbox *ob, const outbox_sink_config *cfg, const outbox_sink_ops *ops,
                    void *impl, outbox_sink **out)
{
    if (!cfg || !cfg->name || !*cfg->name || !ops || !ops->deliver)
        return SB_EINVAL;
    if (ob->is_closing)
        return SB_ECANCELED;
    if (find_sink(ob, cfg->name))
        return SB_EEXIST;
    outbox_sink *s = NULL;
    int err = ob_sink_create(ob, cfg, ops, impl, &s);
    if (err)
        return err;
    if ((err = ob_sink_start(s))) {
        s->impl = NULL; /* not taken */
        ob_sink_free(s);
        return err;
    }
    s->next = ob->sinks;
    ob->sinks = s;
    if (out)
        *out = s;
    return 0;
}

int outbox_sink_stats_get(outbox *ob, const char *name, outbox_sink_stats *st)
{
    outbox_sink *s = find_sink(ob, name);
    if (!s)
        return SB_ENOTFOUND;
    memset(st, 0, sizeof *st);
    st->cursor = s->cursor;
    st->read_pos = s->read_pos;
    st->committed = outbox_committed_seq(ob);
    st->window = s->n;
    st->inflight = s->inflight;
    st->waiting = s->waiting;
    st->delivered = s->delivered;
    st->retried = s->retried;
    st->dead = s->dead;
    st->from_tail = s->from_tail;
    st->from_store = s->from_store;
    snprintf(st->last_error, sizeof st->last_error, "%s", s->last_error);
    return 0;
}

json_t *outbox_status_json(const outbox *ob)
{
    outbox_stats os;
    outbox_stats_get(ob, &os);
    json_t *sinks = json_array();
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:I, s:I}", "committed",
                  (json_int_t)os.committed, "appended", (json_int_t)os.appended, "durable",
                  (json_int_t)os.durable, "duplicates", (json_int_t)os.duplicates, "failed",
                  (json_int_t)os.failed, "refused", (json_int_t)os.refused, "backlog",
                  (json_int_t)os.backlog, "storeBytes", (json_int_t)os.store_bytes, "overWarn",
                  os.is_over_warn, "overMax", os.is_over_max, "tailEvents", (json_int_t)ob->tail_n,
                  "tailBytes", (json_int_t)ob->tail_bytes);
    if (!o || !sinks || json_object_set(o, "sinks", sinks))
        goto fail;
    for (const outbox_sink *s = ob->sinks; s; s = s->next) {
        outbox_sink_stats st;
        if (outbox_sink_stats_get((outbox *)ob, s->name, &st))
            continue;
        json_t *j =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
                      "name", s->name, "kind", s->ops->kind ? s->ops->kind : "", "cursor",
                      (json_int_t)st.cursor, "readPos", (json_int_t)st.read_pos, "pending",
                      (json_int_t)(st.committed > st.cursor ? st.committed - st.cursor : 0),
                      "window", (json_int_t)st.window, "inflight", (json_int_t)st.inflight,
                      "waiting", (json_int_t)st.waiting, "delivered", (json_int_t)st.delivered,
                      "retried", (json_int_t)st.retried, "dead", (json_int_t)st.dead, "fromTail",
                      (json_int_t)st.from_tail, "fromStore", (json_int_t)st.from_store, "lastError",
                      st.last_error[0] ? json_string(st.last_error) : json_null());
        if (!j || json_array_append_new(sinks, j))
            goto fail;
    }
    json_decref(sinks);
    return o;
fail:
    json_decref(sinks);
    json_decref(o);
    return NULL;
}

typedef struct retry_job {
    outbox_sink *s;
    int64_t from_ms, count;
    outbox_op_cb cb;
    void *ud;
} retry_job;

static int retry_run(store_conn *c, void *arg)
{
    retry_job *r = arg;
    return store_dead_request_retry(c, r->s->name, r->from_ms, &r->count);
}

static void retry_done(int status, void *arg)
{
    retry_job *r = arg;
    outbox *ob = r->s->ob;
    if (!status && r->count > 0 && !ob->is_closing) {
        ob_sink_request_dead_retry(r->s);
        ob_sink_pump(r->s);
    }
    if (r->cb)
        r->cb(status, r->count, r->ud);
    free(r);
    ob->pending_jobs--;
    ob_maybe_finish_close(ob);
}

int outbox_retry(outbox *ob, const char *sink, int64_t from_ms, outbox_op_cb cb, void *ud)
{
    outbox_sink *s = find_sink(ob, sink);
    if (!s)
        return SB_ENOTFOUND;
    if (ob->is_closing)
        return SB_ECANCELED;
    retry_job *r = calloc(1, sizeof *r);
    if (!r)
        return SB_ENOMEM;
    *r = (retry_job){s, from_ms, 0, cb, ud};
    int err = store_writer_submit(ob->writer, retry_run, retry_done, r);
    if (err) {
        free(r);
        return err;
    }
    ob->pending_jobs++;
    return 0;
}

int outbox_replay(outbox *ob, const char *sink, int64_t from_ms, outbox_op_cb cb, void *ud)
{
    outbox_sink *s = find_sink(ob, sink);
    if (!s)
        return SB_ENOTFOUND;
    if (ob->is_closing)
        return SB_ECANCELED;
    return ob_sink_replay(s, from_ms, cb, ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    ob_handle_closed(h->data);
}

void ob_handle_closed(outbox *ob)
{
    ob->handles_open--;
    if (ob->handles_open > 0)
        return;
    while (ob->sinks) {
        outbox_sink *s = ob->sinks;
        ob->sinks = s->next;
        ob_sink_free(s);
    }
    void (*cb)(void *) = ob->closed_cb;
    void *ud = ob->closed_ud;
    tail_clear(ob);
    free(ob->tail);
    ob_chunk_release(ob->rchunk);
    ob_spares_free(ob);
    free(ob->path);
    free(ob);
    if (cb)
        cb(ud);
}

void ob_maybe_finish_close(outbox *ob)
{
    if (!ob->is_closing || !ob->writer)
        return;
    for (outbox_sink *s = ob->sinks; s; s = s->next)
        if (!ob_sink_is_idle(s))
            return;
    /* Every sink is idle: persist the final cursors, then drain and stop the writer. */
    for (outbox_sink *s = ob->sinks; s; s = s->next)
        if (s->is_started && s->cursor != s->saved_cursor) {
            s->saved_cursor = s->cursor;
            ob_job_cursor(s, s->cursor);
        }
    store_writer *w = ob->writer;
    ob->writer = NULL;
    store_writer_stop(w); /* runs the remaining job callbacks (pending_jobs reaches 0) */
    uv_close((uv_handle_t *)&ob->prune_timer, on_handle_closed);
    for (outbox_sink *s = ob->sinks; s; s = s->next)
        ob_sink_close_handles(s);
}

void outbox_close(outbox *ob, void (*closed)(void *ud), void *ud)
{
    if (ob->is_closing)
        return;
    ob->is_closing = true;
    ob->closed_cb = closed;
    ob->closed_ud = ud;
    uv_timer_stop(&ob->prune_timer);
    for (outbox_sink *s = ob->sinks; s; s = s->next) {
        uv_timer_stop(&s->timer);
        if (s->ops->cancel && s->inflight)
            s->ops->cancel(s->impl);
    }
    ob_maybe_finish_close(ob);
}

/* --- offline administration ------------------------------------------------------------------ */

int outbox_admin_status(const char *path, const char *sink, store_sink_status *st)
{
    store_conn *c = NULL;
    int err = store_open(path, STORE_OPEN_READ, NULL, &c);
    if (!err)
        err = store_sink_status_get(c, sink, st);
    store_close(c);
    return err;
}

int outbox_admin_retry(const char *path, const char *sink, int64_t from_ms, int64_t *count)
{
    store_conn *c = NULL;
    int err = store_open(path, STORE_OPEN_WRITE, NULL, &c);
    if (!err)
        err = store_dead_request_retry(c, sink, from_ms, count);
    store_close(c);
    return err;
}

int outbox_admin_replay(const char *path, const char *sink, int64_t from_ms, int64_t *cursor)
{
    store_conn *c = NULL;
    int64_t seq = 0, old = 0;
    int err = store_open(path, STORE_OPEN_WRITE, NULL, &c);
    if (err)
        goto out;
    if ((err = store_begin(c)))
        goto out;
    if (!(err = store_sink_cursor(c, sink, 0, &old)) &&
        !(err = store_seq_before_time(c, from_ms, &seq))) {
        /* Replay never moves a cursor forward: that would skip events. */
        if (seq > old)
            seq = old;
        err = store_sink_set_cursor(c, sink, seq, ob_now_ms());
    }
    if (err)
        store_rollback(c);
    else
        err = store_commit(c);
    if (!err && cursor)
        *cursor = seq;
out:
    store_close(c);
    return err;
}
