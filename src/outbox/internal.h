/* internal.h: what outbox.c (the outbox, its writer jobs, retention) and sink.c (one runner per
 * sink: window, batches, retries, cursor) share. */
#ifndef SB_OUTBOX_INTERNAL_H
#define SB_OUTBOX_INTERNAL_H

#include "outbox/outbox.h"

enum { ENT_READY, ENT_INFLIGHT, ENT_WAITING, ENT_DONE };

struct ob_chunk;

/* A committed event in the outbox's memory tail (outbox.c), shared by the tail and by the window
 * entries made from it; strings in data[], immutable once durable. Loop thread only. */
typedef struct ob_rec {
    outbox_event ev;        /* seq set when durable; attempt unused */
    struct ob_chunk *chunk; /* the block it lives in */
    outbox *ob;
    uint32_t refs;
    uint64_t key_hash;    /* FNV-1a of call_key */
    size_t size;          /* bytes counted against the tail */
    outbox_durable_cb cb; /* the appender's, until durable */
    void *ud;
    char data[];
} ob_rec;

/* One loaded event in a sink's window: strings in data[] (read from the store) or in rec (taken
 * from the tail). Reference-counted: the window holds one reference, a pending dead-letter write
 * another. */
typedef struct ob_ent {
    outbox_event ev;
    struct ob_chunk *chunk; /* the block the entry lives in; NULL: its own allocation */
    ob_rec *rec;            /* the strings' owner (one reference), or NULL: data[] */
    uint64_t key_hash;      /* 0 for every event of a sink that is not partitioned */
    int state;
    int refs;
    bool is_dead_retry; /* a dead letter put back by `outbox retry`: not part of the cursor */
    uint32_t attempts;  /* failed attempts so far */
    int64_t first_ms;   /* first failure (wall clock) */
    int64_t next_ms;    /* ENT_WAITING: not before (wall clock) */
    char data[];
} ob_ent;

typedef struct ob_slot {
    uint64_t hash;
    uint32_t stamp;
} ob_slot;

/* A key of the in-flight multiset: count > 0 marks a used slot. */
typedef struct ob_kcount {
    uint64_t hash;
    uint32_t count;
} ob_kcount;

struct outbox_delivery {
    outbox_sink *s;
    size_t n;
    ob_ent **ents;
    const outbox_event **evs;
};

struct outbox_sink {
    outbox *ob;
    outbox_sink *next;
    char *name;
    outbox_sink_config cfg;
    const outbox_sink_ops *ops;
    void *impl;

    bool is_started; /* cursor known */
    bool is_loading; /* a load is on the thread pool */
    bool is_dead_retry_wanted;
    bool is_replay_pending;
    bool is_replay_running;     /* the replay's writer job is queued */
    bool is_pumping, is_repump; /* pump() is re-entered by sinks that answer at once */
    int64_t replay_from_ms;
    outbox_op_cb replay_cb;
    void *replay_ud;

    int64_t cursor;          /* every stream event <= cursor is done */
    int64_t saved_cursor;    /* last cursor handed to the writer */
    int64_t read_pos;        /* highest stream seq loaded */
    int64_t dead_read_pos;   /* highest dead-letter seq loaded for retry */
    int64_t load_not_before; /* after a failed store read (wall clock ms) */

    ob_ent **win; /* sorted by seq: dead-letter retries first, then stream events */
    size_t n, cap;
    size_t win_off; /* slots dropped before win: the allocation is win - win_off, cap slots long
                     * (compact advances win instead of moving the window down every batch) */
    size_t held;    /* finished entries kept because an earlier one is not (cursor order) */
    size_t n_done;  /* entries in the window in state ENT_DONE (compact's fast path) */
    size_t n_dead_retry; /* dead-letter retries in the window (none: compact's fast path) */
    size_t inflight;
    size_t waiting;

    ob_slot *set; /* per-scan set of blocked keys (stamped, never cleared) */
    size_t set_cap;
    size_t set_n; /* keys in the set since set_begin */
    uint32_t stamp;
    ob_kcount *fly; /* keys of the entries in state ENT_INFLIGHT, with their counts */
    size_t fly_cap;
    size_t scan_from;         /* every entry before this window index is in flight or done */
    int64_t attempt_hi;       /* highest seq with a retry state written by this process: reads
                               * at or below it go to the store (the tail knows no retry state) */
    struct ob_chunk *echunk;  /* block the entries taken from the tail are cut from */
    uint64_t cursor_saved_at; /* loop time (ms) the cursor was last handed to the writer */

    uv_timer_t timer;  /* next retry */
    int64_t timer_due; /* wall-clock ms the timer is armed for; 0 = idle */
    uv_work_t work;
    store_conn *rconn; /* read connection, used only by the thread-pool load */
    bool is_handle_closed;

    uint64_t delivered, retried, dead;
    uint64_t from_tail, from_store;
    char last_error[256];
};

struct outbox {
    uv_loop_t *loop;
    store_writer *writer;
    outbox_options opt;
    char *path;
    outbox_sink *sinks;
    uv_timer_t prune_timer;
    uint64_t rng;
    bool is_closing;
    bool is_over_warn, is_over_max;
    bool is_size_known;
    int pending_jobs; /* writer jobs of ours not yet done */
    uint64_t n_appended, n_refused;
    int64_t last_committed; /* for after the writer stopped */
    int64_t store_bytes;
    int handles_open;
    struct ob_chunk *spare; /* load blocks for reuse (load.c) */
    size_t n_spare;
    /* The memory tail: the newest committed events, oldest first (a ring). Every stored event
     * with seq >= tail_from is in it (INT64_MAX: none yet): only this outbox appends. */
    ob_rec **tail;
    size_t tail_cap, tail_head, tail_n;
    int64_t tail_bytes, tail_max, tail_from;
    size_t recs_pending;     /* appended records whose durable callback has not run */
    int64_t durable_seq;     /* highest seq whose durable callback ran */
    int64_t seq_base;        /* the last stored seq at open */
    struct ob_chunk *rchunk; /* block records are cut from */
    void (*closed_cb)(void *);
    void *closed_ud;
};

/* Wall clock in ms. */
int64_t ob_now_ms(void);
/* Uniform random number in [0, n) (n > 0). */
uint64_t ob_rand(outbox *ob, uint64_t n);

/* load.c */
/* Reads up to room events after s->read_pos (and dead letters marked for retry) on the thread
 * pool; merges them into the window when done, then pumps. */
void ob_load_start(outbox_sink *s, int64_t committed, int room);

/* sink.c */
/* Drops finished entries from the window, moves and persists the cursor. */
void ob_sink_compact(outbox_sink *s);
/* Pumps again in delay_ms (>= 1: a 0 ms timer re-armed from a timer callback would spin). */
void ob_sink_wake_in(outbox_sink *s, uint64_t delay_ms);
int ob_sink_create(outbox *ob, const outbox_sink_config *cfg, const outbox_sink_ops *ops,
                   void *impl, outbox_sink **out);
/* Loads and delivers what it can (new commits, retries due). */
void ob_sink_pump(outbox_sink *s);
/* Starts the sink (submits the cursor read). */
int ob_sink_start(outbox_sink *s);
/* True when nothing of the sink is in flight (batches, loads, replay). */
bool ob_sink_is_idle(const outbox_sink *s);
/* Frees the sink (its handles must be closed: ob_sink_close_handles, then a loop turn). */
void ob_sink_free(outbox_sink *s);
/* Closes the timer (ob->handles_open counts it until closed). */
void ob_sink_close_handles(outbox_sink *s);
/* Starts a replay (see outbox_replay). */
int ob_sink_replay(outbox_sink *s, int64_t from_ms, outbox_op_cb cb, void *ud);
void ob_sink_request_dead_retry(outbox_sink *s);

/* outbox.c: writer jobs on behalf of a sink; each one counts in ob->pending_jobs. */
void ob_job_cursor(outbox_sink *s, int64_t cursor);
void ob_job_attempt_put(outbox_sink *s, const ob_ent *e, const char *error);
void ob_job_attempt_clear(outbox_sink *s, int64_t seq);
void ob_job_dead_put(outbox_sink *s, ob_ent *e, const char *error);
void ob_job_dead_delete(outbox_sink *s, int64_t seq);
/* One of the outbox's or its sinks' handles finished closing; the last one frees everything. */
void ob_handle_closed(outbox *ob);
/* Checks whether the close can finish (everything idle) and finishes it. */
void ob_maybe_finish_close(outbox *ob);
void ob_ent_unref(ob_ent *e);
/* load.c: frees the spare load blocks (at the outbox's end). */
void ob_spares_free(outbox *ob);
/* load.c: a record of ev (copied; refs 1) cut from the outbox's record block, or NULL. */
ob_rec *ob_rec_new(outbox *ob, const store_event *ev);
void ob_rec_unref(ob_rec *r);
/* load.c: drops a block reference held by the outbox or a sink (NULL: nothing). */
void ob_chunk_release(struct ob_chunk *c);
/* load.c: moves up to room committed events after s->read_pos from the tail into the window when
 * the tail holds them (and nothing needs the store: retry state, dead letters); returns how many
 * (0: read from the store instead). */
int ob_tail_take(outbox_sink *s, int64_t committed, int room);
/* outbox.c: how far sinks may read now: the committed seq, but while the writer's callbacks are
 * running (a commit's events reach the tail one by one) only as far as they reached, so that a
 * sink pumped in between does not read from the store what the tail gets a moment later. */
int64_t ob_read_limit(const outbox *ob);
/* outbox.c: the tail's i-th record (0 = oldest). */
ob_rec *ob_tail_at(const outbox *ob, size_t i);

#endif
