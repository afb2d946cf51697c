/* writer.c: the writer thread: group commit of queued jobs, results back to the loop by uv_async.
 *
 * Two lists guarded by one mutex: `queue` (loop -> writer) and `done` (writer -> loop). The
 * writer takes up to max_batch jobs, runs them in one BEGIN IMMEDIATE ... COMMIT, then moves them
 * to `done` and wakes the loop. Batching is natural: while one group is being flushed the next one
 * piles up, so the group size grows with the load and the fsync cost per event shrinks.
 */
#include "store/writer.h"

#include "core/error.h"
#include "core/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SUB "store"

enum { JOB_EVENT, JOB_FN };

typedef struct wjob {
    struct wjob *next;
    int kind;
    int status;
    void *ud;
    size_t bytes;
    union {
        struct {
            store_event ev; /* strings point into data[] */
            store_writer_event_cb cb;
        } e;
        struct {
            store_writer_fn fn;
            store_writer_done_cb done;
        } f;
    } u;
    char data[];
} wjob;

struct store_writer {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_t thread;
    bool is_thread_started;
    store_conn *conn;
    store_writer_options opt;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    wjob *q_head, *q_tail;   /* guarded by mu */
    wjob *q_prio_tail;       /* guarded by mu: last urgent job queued (urgent jobs lead) */
    wjob *d_head, *d_tail;   /* guarded by mu */
    size_t q_count, q_bytes; /* guarded by mu */
    bool is_waiting;         /* guarded by mu: the writer sleeps on cond */
    bool is_stopping;        /* guarded by mu */
    int64_t writer_last_seq; /* writer thread only */
    int failing_err;         /* writer thread only: the error of the last group, 0 when it worked */
    int64_t done_seq;        /* guarded by mu: highest committed */
    uint64_t groups_done;    /* guarded by mu */

    /* loop thread only */
    int64_t committed_seq;
    size_t backlog;
    bool is_closed;
    store_writer_stats stats;
    store_writer_commit_cb on_commit;
    void *on_commit_ud;
};

static void list_push(wjob **head, wjob **tail, wjob *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

/* Runs one group in one transaction. Writer thread only. */
static void run_group(store_writer *w, wjob *first)
{
    int64_t saved = w->writer_last_seq;
    int64_t last = saved;
    int err = store_begin(w->conn);
    for (wjob *j = first; j; j = j->next) {
        if (err) {
            j->status = err;
            continue;
        }
        if (j->kind == JOB_EVENT) {
            j->u.e.ev.seq = last + 1;
            j->status = store_event_insert(w->conn, &j->u.e.ev);
            if (j->status == 0)
                last++;
            else
                j->u.e.ev.seq = 0;
        } else {
            j->status = j->u.f.fn(w->conn, j->ud);
        }
        /* Disk full and I/O errors make SQLite roll the whole transaction back. */
        if (j->status && j->status != SB_EEXIST && !store_in_transaction(w->conn))
            err = j->status;
    }
    if (!err && last != saved)
        err = store_set_last_seq(w->conn, last);
    if (!err)
        err = store_commit(w->conn);
    if (err) {
        store_rollback(w->conn);
        last = saved;
        for (wjob *j = first; j; j = j->next) {
            if (j->status == 0 || j->status == SB_EEXIST)
                j->status = err;
            if (j->kind == JOB_EVENT)
                j->u.e.ev.seq = 0;
        }
    }
    /* Log transitions only: a full disk fails every group until there is room again. */
    if (err && err != w->failing_err)
        sb_log(SB_LOG_ERROR, SUB, "commits fail: %s (events are refused until this clears)",
               sb_strerror(err));
    else if (!err && w->failing_err)
        sb_log(SB_LOG_INFO, SUB, "commits work again");
    w->failing_err = err;
    w->writer_last_seq = last;
}

static void *writer_main(void *arg)
{
    store_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->q_head && !w->is_stopping) {
            w->is_waiting = true;
            pthread_cond_wait(&w->cond, &w->mu);
            w->is_waiting = false;
        }
        if (!w->q_head)
            break; /* stopping and drained */
        wjob *first = w->q_head, *last = first;
        int n = 1;
        while (last->next && n < w->opt.max_batch) {
            if (last == w->q_prio_tail)
                w->q_prio_tail = NULL;
            last = last->next;
            n++;
        }
        if (last == w->q_prio_tail)
            w->q_prio_tail = NULL;
        w->q_head = last->next;
        if (!w->q_head)
            w->q_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&w->mu);

        run_group(w, first);

        pthread_mutex_lock(&w->mu);
        for (wjob *j = first; j; j = j->next) {
            w->q_count--;
            w->q_bytes -= j->bytes;
        }
        if (w->d_tail)
            w->d_tail->next = first;
        else
            w->d_head = first;
        w->d_tail = last;
        w->done_seq = w->writer_last_seq;
        w->groups_done++;
        pthread_mutex_unlock(&w->mu);
        uv_async_send(&w->async);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Loop thread: runs the callbacks of every finished job, in order. */
static void drain_done(store_writer *w)
{
    pthread_mutex_lock(&w->mu);
    wjob *j = w->d_head;
    w->d_head = w->d_tail = NULL;
    int64_t seq = w->done_seq;
    w->stats.groups = w->groups_done;
    pthread_mutex_unlock(&w->mu);
    if (!j)
        return;
    w->committed_seq = seq;
    while (j) {
        wjob *next = j->next;
        w->backlog--;
        if (j->kind == JOB_EVENT) {
            if (j->status == 0)
                w->stats.events_ok++;
            else if (j->status == SB_EEXIST)
                w->stats.events_exist++;
            else
                w->stats.events_failed++;
            if (j->u.e.cb)
                j->u.e.cb(j->status, j->u.e.ev.seq, j->ud);
        } else if (j->u.f.done) {
            j->u.f.done(j->status, j->ud);
        }
        free(j);
        j = next;
    }
    if (w->on_commit)
        w->on_commit(w->committed_seq, w->on_commit_ud);
}

static void on_async(uv_async_t *a)
{
    drain_done(a->data);
}

static void on_close(uv_handle_t *h)
{
    store_writer *w = h->data;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    free(w);
}

int store_writer_start(uv_loop_t *loop, const char *path, const store_options *sopt,
                       const store_writer_options *wopt, store_writer **out)
{
    *out = NULL;
    store_writer *w = calloc(1, sizeof *w);
    if (!w)
        return SB_ENOMEM;
    if (wopt)
        w->opt = *wopt;
    if (w->opt.max_batch <= 0)
        w->opt.max_batch = 8192;
    if (!w->opt.max_queued)
        w->opt.max_queued = 262144;
    if (!w->opt.max_queued_bytes)
        w->opt.max_queued_bytes = (size_t)256 << 20;
    w->loop = loop;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    int err = store_open(path, STORE_OPEN_WRITE, sopt, &w->conn);
    if (!err)
        err = store_last_seq(w->conn, &w->writer_last_seq);
    if (err)
        goto fail;
    w->committed_seq = w->done_seq = w->writer_last_seq;
    if ((err = uv_async_init(loop, &w->async, on_async)))
        goto fail;
    w->async.data = w;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        uv_close((uv_handle_t *)&w->async, on_close);
        store_close(w->conn);
        return SB_ENOMEM;
    }
    w->is_thread_started = true;
    *out = w;
    return 0;
fail:
    store_close(w->conn);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    free(w);
    return err;
}

void store_writer_on_commit(store_writer *w, store_writer_commit_cb cb, void *ud)
{
    w->on_commit = cb;
    w->on_commit_ud = ud;
}

/* Queues j (after the urgent jobs already queued when is_urgent, else last); 0, or an error (j
 * not queued, caller frees it). */
static int enqueue(store_writer *w, wjob *j, bool is_urgent)
{
    int err = 0;
    pthread_mutex_lock(&w->mu);
    if (w->is_stopping || w->is_closed) {
        err = SB_ECANCELED;
    } else if (j->kind == JOB_EVENT && (w->q_count >= w->opt.max_queued ||
                                        w->q_bytes + j->bytes > w->opt.max_queued_bytes)) {
        err = SB_ETOOBIG;
    } else if (is_urgent) {
        wjob **at = w->q_prio_tail ? &w->q_prio_tail->next : &w->q_head;
        j->next = *at;
        *at = j;
        if (!j->next)
            w->q_tail = j;
        w->q_prio_tail = j;
        w->q_count++;
        if (w->is_waiting)
            pthread_cond_signal(&w->cond);
    } else {
        list_push(&w->q_head, &w->q_tail, j);
        w->q_count++;
        w->q_bytes += j->bytes;
        if (w->is_waiting)
            pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->mu);
    if (!err)
        w->backlog++;
    return err;
}

/* Copies s (NUL-terminated, may be NULL) to *p and returns where it was put. */
static const char *put_str(char **p, const char *s, size_t n)
{
    char *dst = *p;
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
    *p += n + 1;
    return dst;
}

int store_writer_append(store_writer *w, const store_event *ev, store_writer_event_cb cb, void *ud)
{
    if (!ev || !ev->id || !ev->type)
        return SB_EINVAL;
    size_t l_id = strlen(ev->id), l_type = strlen(ev->type);
    size_t l_pbx = ev->pbx ? strlen(ev->pbx) : 0, l_key = ev->call_key ? strlen(ev->call_key) : 0;
    size_t l_pl = ev->payload ? ev->payload_len : 0;
    size_t extra = l_id + l_type + l_pbx + l_key + l_pl + 5;
    wjob *j = malloc(sizeof *j + extra);
    if (!j)
        return SB_ENOMEM;
    j->kind = JOB_EVENT;
    j->status = 0;
    j->ud = ud;
    j->bytes = sizeof *j + extra;
    j->u.e.cb = cb;
    char *p = j->data;
    store_event *c = &j->u.e.ev;
    c->seq = 0;
    c->id = put_str(&p, ev->id, l_id);
    c->type = put_str(&p, ev->type, l_type);
    c->pbx = put_str(&p, ev->pbx, l_pbx);
    c->call_key = put_str(&p, ev->call_key, l_key);
    c->time_ms = ev->time_ms;
    c->payload = put_str(&p, ev->payload, l_pl);
    c->payload_len = l_pl;
    int err = enqueue(w, j, false);
    if (err)
        free(j);
    return err;
}

static int submit(store_writer *w, store_writer_fn fn, store_writer_done_cb done, void *arg,
                  bool is_urgent)
{
    if (!fn)
        return SB_EINVAL;
    wjob *j = malloc(sizeof *j);
    if (!j)
        return SB_ENOMEM;
    j->kind = JOB_FN;
    j->status = 0;
    j->ud = arg;
    j->bytes = 0;
    j->u.f.fn = fn;
    j->u.f.done = done;
    int err = enqueue(w, j, is_urgent);
    if (err)
        free(j);
    return err;
}

int store_writer_submit(store_writer *w, store_writer_fn fn, store_writer_done_cb done, void *arg)
{
    return submit(w, fn, done, arg, false);
}

int store_writer_submit_urgent(store_writer *w, store_writer_fn fn, store_writer_done_cb done,
                               void *arg)
{
    return submit(w, fn, done, arg, true);
}

int64_t store_writer_committed_seq(const store_writer *w)
{
    return w->committed_seq;
}

void store_writer_stats_get(const store_writer *w, store_writer_stats *st)
{
    *st = w->stats;
}

size_t store_writer_backlog(const store_writer *w)
{
    return w->backlog;
}

void store_writer_stop(store_writer *w)
{
    if (!w || w->is_closed)
        return;
    pthread_mutex_lock(&w->mu);
    w->is_stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    if (w->is_thread_started)
        pthread_join(w->thread, NULL);
    /* Callbacks may enqueue more work: it is refused (SB_ECANCELED) since we are stopping. */
    drain_done(w);
    store_close(w->conn);
    w->conn = NULL;
    w->is_closed = true;
    uv_close((uv_handle_t *)&w->async, on_close);
}
