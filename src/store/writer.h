/* writer.h: the store's writer thread: the one owner of the write connection.
 *
 * The loop thread never waits on the disk. It enqueues work (store_writer_append for events,
 * store_writer_submit for anything else); the writer thread takes everything queued (up to
 * max_batch jobs), runs it in ONE transaction and commits (group commit: one WAL flush for the
 * whole group), then hands the results back to the loop through a uv_async. Callbacks run on the
 * loop thread, in enqueue order, after the commit that made the work durable.
 *
 *     store_writer *w;
 *     store_writer_start(loop, "/var/lib/switchboard/store.db", NULL, NULL, &w);
 *     store_writer_append(w, &ev, on_durable, ctx);   // on_durable(0, seq, ctx) once committed
 *     ...
 *     store_writer_stop(w);   // commits what is queued, joins the thread; memory freed by the loop
 */
#ifndef SB_STORE_WRITER_H
#define SB_STORE_WRITER_H

#include "store/store.h"

#include <uv.h>

typedef struct store_writer store_writer;

typedef struct store_writer_options {
    int max_batch;           /* jobs per transaction; 0 = 8192 */
    size_t max_queued;       /* jobs waiting at most; more fail with SB_ETOOBIG; 0 = 262144 */
    size_t max_queued_bytes; /* bytes of queued events at most; 0 = 256 MiB */
} store_writer_options;

/* Called on the loop once the event is durable (status 0, seq its outbox seq), or when it was
 * already stored (SB_EEXIST, seq 0: durable from before), or not stored (another SB_E* code). */
typedef void (*store_writer_event_cb)(int status, int64_t seq, void *ud);
/* Runs on the WRITER thread inside the group's transaction; returns 0 or an SB_E* code. It must
 * touch only c and arg (no loop, no handles). On error it should leave no partial writes. */
typedef int (*store_writer_fn)(store_conn *c, void *arg);
/* Called on the loop after the group holding the job committed (status: fn's result, or the
 * commit's error, which also undoes fn's writes). */
typedef void (*store_writer_done_cb)(int status, void *arg);
/* Called on the loop after each group's callbacks, with the highest committed seq. */
typedef void (*store_writer_commit_cb)(int64_t committed_seq, void *ud);

/* Opens path for writing (applies migrations: blocks, start-up only) and starts the thread.
 * Borrows path and the options. Returns 0 and *out, or an SB_E* code (nothing started). */
int store_writer_start(uv_loop_t *loop, const char *path, const store_options *sopt,
                       const store_writer_options *wopt, store_writer **out);
/* Sets the callback run after each committed group (NULL to remove). */
void store_writer_on_commit(store_writer *w, store_writer_commit_cb cb, void *ud);
/* Queues ev for insertion (ev->seq is ignored: the writer assigns it). Copies ev. Returns 0 (cb
 * will run exactly once) or SB_ETOOBIG when the queue is full / SB_ECANCELED when stopping
 * (cb will not run). */
int store_writer_append(store_writer *w, const store_event *ev, store_writer_event_cb cb, void *ud);
/* Queues fn(conn, arg) for the next group; done(status, arg) runs on the loop afterwards (done may
 * be NULL). Returns 0, or SB_ENOMEM / SB_ECANCELED (neither fn nor done will run). arg is borrowed
 * until done runs. */
int store_writer_submit(store_writer *w, store_writer_fn fn, store_writer_done_cb done, void *arg);
/* Like store_writer_submit, but the job goes ahead of the queued events (after the urgent jobs
 * already queued): for small updates that must not wait behind a flood of appends, like a sink's
 * cursor. Only for jobs whose effect does not depend on the events queued before them. */
int store_writer_submit_urgent(store_writer *w, store_writer_fn fn, store_writer_done_cb done,
                               void *arg);
/* Counters (loop thread view) for metrics. */
typedef struct store_writer_stats {
    uint64_t events_ok, events_exist, events_failed; /* appended events by outcome */
    uint64_t groups;                                 /* transactions committed or failed */
} store_writer_stats;
void store_writer_stats_get(const store_writer *w, store_writer_stats *st);
/* Highest seq committed so far (loop thread view: updated before the commit callback). */
int64_t store_writer_committed_seq(const store_writer *w);
/* Jobs queued or running, not yet reported back (loop thread view). */
size_t store_writer_backlog(const store_writer *w);
/* Commits everything queued, joins the thread and runs the remaining callbacks (blocks: shutdown
 * only), then closes the async handle; the memory is freed when the loop runs the close. */
void store_writer_stop(store_writer *w);

#endif
