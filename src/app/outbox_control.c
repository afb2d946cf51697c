/* outbox_control.c (app): the store lock and the daemon's poller of operator requests
 * (outbox_control.h).
 *
 * The poller runs ONE job at a time on libuv's thread pool with its own store connection (the
 * outbox's writer thread is private to src/outbox/; SQLite's busy timeout makes the two writers
 * take turns, and either one holds the write lock for a single short statement). A job writes
 * the outcomes gathered since the last one, then claims the queued requests (queued -> running).
 * Back on the loop each claimed request goes to the outbox; its callback turns it into an outcome
 * and starts the next job at once, so the requester learns it without waiting for the next tick.
 */
#include "app/outbox_control.h"

#include "core/error.h"
#include "core/log.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define SUB "delivery"
#define CLAIM_MAX 16                 /* requests claimed per job */
#define PRUNE_EVERY 60               /* jobs between two prunes (about a minute) */
#define KEEP_MS (24LL * 3600 * 1000) /* finished requests kept this long */
#define ABANDONED "the daemon stopped before finishing the request"

/* ---- the lock ---- */

int app_store_lock(const char *store_path, int *fd)
{
    char path[4096];
    *fd = -1;
    int n = snprintf(path, sizeof path, "%s.lock", store_path);
    if (n < 0 || (size_t)n >= sizeof path) {
        SB_ERROR(SUB, "store path too long for its lock file: %s", store_path);
        return SB_EIO;
    }
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) {
        SB_ERROR(SUB, "cannot open the store lock %s: %s", path, strerror(errno));
        return SB_EIO;
    }
    if (flock(f, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(f);
        if (e == EWOULDBLOCK)
            return SB_EEXIST;
        SB_ERROR(SUB, "cannot lock %s: %s", path, strerror(e));
        return SB_EIO;
    }
    *fd = f;
    return 0;
}

void app_store_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing the only descriptor releases the flock */
}

/* ---- the poller ---- */

typedef struct ctl_req {
    struct ctl_req *next;
    struct app_outbox_control *oc;
    int64_t id;
    store_request_op op;
    char *sink;
    int64_t from_ms, deadline_ms;
    /* the outcome */
    int status;
    int64_t result;
    char error[256];
} ctl_req;

typedef struct ctl_job {
    uv_work_t work;
    struct app_outbox_control *oc;
    ctl_req *write;   /* outcomes to write (owned by the job) */
    ctl_req *claimed; /* requests claimed by the job (handed to the loop) */
    bool is_prune;
    int rc;
} ctl_job;

struct app_outbox_control {
    uv_loop_t *loop;
    char *path;
    store_conn *conn; /* used by one pool job at a time, or by the loop at start and free */
    app_outbox_get_fn get;
    void *get_ud;
    uv_timer_t *timer;
    ctl_job *job;      /* in flight, or NULL */
    ctl_req *running;  /* handed to the outbox, outcome not yet known */
    ctl_req *finished; /* outcomes waiting for the next job */
    bool is_kicked;    /* an outcome arrived while a job was in flight */
    bool is_stopping;
    bool free_after_job; /* free ran while a job was in flight: the job's end frees */
    uint64_t jobs, finished_count;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void req_free(ctl_req *r)
{
    if (r) {
        free(r->sink);
        free(r);
    }
}

static void req_list_free(ctl_req *r)
{
    while (r) {
        ctl_req *next = r->next;
        req_free(r);
        r = next;
    }
}

static const char *op_word(store_request_op op)
{
    return op == STORE_REQ_REPLAY ? "replay" : "retry";
}

/* Writes every outcome of list to the store (pool thread, or the loop at free). */
static void write_outcomes(store_conn *c, ctl_req *list)
{
    int64_t now = wall_ms();
    for (ctl_req *r = list; r; r = r->next) {
        int rc = store_request_finish(c, r->id, r->status, r->result, r->error, now);
        if (rc < 0 && rc != SB_ENOTFOUND)
            SB_WARN(SUB, "request %" PRId64 ": cannot record its outcome: %s", r->id,
                    sb_strerror(rc));
    }
}

static int on_queued(const store_request *sr, void *ud)
{
    ctl_job *j = ud;
    ctl_req *r = calloc(1, sizeof *r);
    if (!r || !(r->sink = strdup(sr->sink))) {
        free(r);
        return SB_ENOMEM;
    }
    r->oc = j->oc;
    r->id = sr->id;
    r->op = sr->op;
    r->from_ms = sr->from_ms;
    r->deadline_ms = sr->deadline_ms;
    r->next = j->claimed;
    j->claimed = r;
    return 0;
}

static void job_work(uv_work_t *w)
{
    ctl_job *j = w->data;
    app_outbox_control *oc = j->oc;
    store_conn *c = oc->conn;
    int64_t now = wall_ms();
    write_outcomes(c, j->write);
    if (j->is_prune)
        store_requests_prune(c, now - KEEP_MS, NULL);
    ctl_req *found = NULL;
    j->rc = store_requests_queued(c, CLAIM_MAX, on_queued, j);
    /* on_queued prepended: claim in id order, keep only what this job won. */
    for (ctl_req *r = j->claimed; r;) {
        ctl_req *next = r->next;
        r->next = found;
        found = r;
        r = next;
    }
    j->claimed = NULL;
    ctl_req **tail = &j->claimed;
    for (ctl_req *r = found; r;) {
        ctl_req *next = r->next;
        r->next = NULL;
        if (store_request_start(c, r->id, now) == 0) {
            *tail = r;
            tail = &r->next;
        } else {
            req_free(r); /* canceled by its requester meanwhile */
        }
        r = next;
    }
}

static void job_start(app_outbox_control *oc);

/* An outcome is known: keep it for the next job and start that job now. */
static void finish(ctl_req *r)
{
    app_outbox_control *oc = r->oc;
    for (ctl_req **p = &oc->running; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    if (r->status < 0)
        SB_WARN(SUB, "outbox %s of sink %s (request %" PRId64 "): %s", op_word(r->op), r->sink,
                r->id, r->error);
    else if (r->op == STORE_REQ_REPLAY)
        SB_INFO(SUB,
                "outbox replay of sink %s (request %" PRId64 "): cursor moved back to %" PRId64,
                r->sink, r->id, r->result);
    else
        SB_INFO(SUB,
                "outbox retry of sink %s (request %" PRId64 "): %" PRId64
                " dead letter(s) back in delivery",
                r->sink, r->id, r->result);
    r->next = oc->finished;
    oc->finished = r;
    oc->finished_count++;
    if (oc->job)
        oc->is_kicked = true;
    else
        job_start(oc);
}

static void fail(ctl_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(ctl_req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->status = status;
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    finish(r);
}

static void on_op_done(int status, int64_t count, void *ud)
{
    ctl_req *r = ud;
    if (status < 0) {
        fail(r, status, "%s", sb_strerror(status));
        return;
    }
    r->status = 0;
    r->result = count;
    finish(r);
}

/* Hands a claimed request to the outbox (loop thread). */
static void run_request(app_outbox_control *oc, ctl_req *r)
{
    r->next = oc->running;
    oc->running = r;
    if (wall_ms() > r->deadline_ms) {
        fail(r, SB_ETIMEDOUT, "%s", "expired: its requester had stopped waiting");
        return;
    }
    outbox *ob = oc->is_stopping ? NULL : oc->get(oc->get_ud);
    if (!ob) {
        fail(r, SB_ECANCELED, "%s",
             "delivery is not running in the daemon (no [sink] configured, or stopping)");
        return;
    }
    int rc = r->op == STORE_REQ_REPLAY ? outbox_replay(ob, r->sink, r->from_ms, on_op_done, r)
                                       : outbox_retry(ob, r->sink, r->from_ms, on_op_done, r);
    if (rc == SB_ENOTFOUND)
        fail(r, rc, "the running daemon has no sink '%.200s'", r->sink);
    else if (rc == SB_EINVAL && r->op == STORE_REQ_REPLAY)
        fail(r, SB_EEXIST, "a replay of sink '%.200s' is already in progress", r->sink);
    else if (rc < 0)
        fail(r, rc, "%s", sb_strerror(rc));
}

static void job_after(uv_work_t *w, int status)
{
    ctl_job *j = w->data;
    app_outbox_control *oc = j->oc;
    (void)status;
    oc->job = NULL;
    req_list_free(j->write);
    if (j->rc < 0)
        SB_WARN(SUB, "cannot read the outbox requests: %s", sb_strerror(j->rc));
    ctl_req *claimed = j->claimed;
    free(j);
    if (oc->free_after_job) {
        req_list_free(claimed); /* left running in the store: the next start fails them */
        app_outbox_control_free(oc);
        return;
    }
    while (claimed) {
        ctl_req *next = claimed->next;
        run_request(oc, claimed); /* may finish it at once (and start the next job) */
        claimed = next;
    }
    if (oc->is_kicked && !oc->job && oc->finished && !oc->is_stopping) {
        oc->is_kicked = false;
        job_start(oc);
    }
}

static void job_start(app_outbox_control *oc)
{
    if (oc->job || oc->is_stopping)
        return;
    ctl_job *j = calloc(1, sizeof *j);
    if (!j)
        return; /* the next tick tries again */
    j->oc = oc;
    j->work.data = j;
    j->write = oc->finished;
    j->is_prune = oc->jobs % PRUNE_EVERY == 0;
    if (uv_queue_work(oc->loop, &j->work, job_work, job_after) < 0) {
        free(j);
        return;
    }
    oc->finished = NULL;
    oc->is_kicked = false;
    oc->job = j;
    oc->jobs++;
}

static void on_tick(uv_timer_t *t)
{
    job_start(t->data);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

int app_outbox_control_start(uv_loop_t *loop, const char *store_path, app_outbox_get_fn get,
                             void *ud, app_outbox_control **out)
{
    int rc = SB_ENOMEM;
    int64_t n = 0;
    app_outbox_control *oc = calloc(1, sizeof *oc);
    *out = NULL;
    if (!oc || !(oc->path = strdup(store_path)) || !(oc->timer = malloc(sizeof *oc->timer))) {
        SB_ERROR(SUB, "out of memory");
        goto fail;
    }
    oc->loop = loop;
    oc->get = get;
    oc->get_ud = ud;
    if ((rc = store_open(store_path, STORE_OPEN_WRITE, NULL, &oc->conn)) < 0) {
        SB_ERROR(SUB, "cannot open the store %s for outbox requests: %s", store_path,
                 sb_strerror(rc));
        goto fail;
    }
    if (store_requests_abandon(oc->conn, ABANDONED, wall_ms(), &n) == 0 && n > 0)
        SB_WARN(SUB, "%" PRId64 " outbox request(s) of a previous run were never finished: failed",
                n);
    if ((rc = uv_timer_init(loop, oc->timer)) < 0) {
        SB_ERROR(SUB, "cannot create the outbox request timer: %s", uv_strerror(rc));
        goto fail;
    }
    oc->timer->data = oc;
    uv_timer_start(oc->timer, on_tick, APP_OUTBOX_CONTROL_POLL_MS, APP_OUTBOX_CONTROL_POLL_MS);
    *out = oc;
    return 0;
fail:
    if (oc) {
        free(oc->timer);
        store_close(oc->conn);
        free(oc->path);
        free(oc);
    }
    return rc;
}

void app_outbox_control_stop(app_outbox_control *oc)
{
    if (!oc || oc->is_stopping)
        return;
    oc->is_stopping = true;
    uv_close((uv_handle_t *)oc->timer, on_timer_closed);
    oc->timer = NULL;
}

void app_outbox_control_free(app_outbox_control *oc)
{
    if (!oc)
        return;
    if (!oc->is_stopping)
        app_outbox_control_stop(oc);
    if (oc->job) {
        oc->free_after_job = true; /* the connection is in use on the pool */
        return;
    }
    int64_t now = wall_ms();
    write_outcomes(oc->conn, oc->finished);
    req_list_free(oc->finished);
    oc->finished = NULL;
    /* Nothing should be left running (closing the outbox ran every callback); if anything is,
     * its requester must not wait for it forever. */
    if (oc->running && store_requests_abandon(oc->conn, ABANDONED, now, NULL) < 0)
        SB_WARN(SUB, "cannot fail the unfinished outbox requests");
    req_list_free(oc->running);
    store_close(oc->conn);
    free(oc->path);
    free(oc);
}

uint64_t app_outbox_control_finished(const app_outbox_control *oc)
{
    return oc ? oc->finished_count : 0;
}
