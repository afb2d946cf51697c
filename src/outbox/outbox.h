/* outbox.h: durable, at-least-once, ordered delivery of events to sinks (issue 5, section 1).
 *
 * An event is appended on the loop (outbox_append); the store's writer thread commits it in a
 * group and the caller's callback learns it is durable. Only committed events are ever handed to
 * a sink. Each sink has its own cursor (every event with seq <= cursor is delivered or
 * dead-lettered), its own read-ahead window and its own retry timers, so a sink that is down
 * holds back nobody else. Order: per sink, or per call key (Linkedid) when the sink is
 * partitioned. Failures: retry with exponential back-off and jitter, then the dead-letter table.
 * After a crash, delivery resumes from the committed cursors (duplicates possible, never loss).
 * docs/delivery.md explains the guarantees; docs/store.md the tables.
 *
 * Everything here runs on the loop thread and never blocks it, except outbox_open (start-up: opens
 * the store and applies migrations) and the outbox_admin_* functions (for the CLI process).
 */
#ifndef SB_OUTBOX_OUTBOX_H
#define SB_OUTBOX_OUTBOX_H

#include "core/config.h"
#include "store/store.h"
#include "store/writer.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct outbox outbox;
typedef struct outbox_sink outbox_sink;
typedef struct outbox_delivery outbox_delivery;

/* An event as a sink sees it. Every field is borrowed until the sink calls the done callback. */
typedef struct outbox_event {
    int64_t seq;
    const char *id; /* stable across retries: the receiver's idempotency key */
    const char *type;
    const char *pbx;
    const char *call_key; /* Linkedid; "" when none */
    int64_t time_ms;
    const char *payload; /* the event as JSON text (NUL-terminated) */
    size_t payload_len;
    uint32_t attempt; /* 1 for the first try */
} outbox_event;

typedef enum outbox_verdict {
    OUTBOX_OK,    /* delivered */
    OUTBOX_RETRY, /* try again later (after retry_after_ms, or the back-off when 0) */
    OUTBOX_DEAD,  /* never deliverable (e.g. HTTP 400): straight to the dead letters */
} outbox_verdict;

typedef struct outbox_result {
    outbox_verdict verdict;
    uint32_t retry_after_ms; /* OUTBOX_RETRY: the receiver's Retry-After; 0 = use the back-off */
    const char *error;       /* why (RETRY/DEAD); borrowed, copied by the outbox; may be NULL */
} outbox_result;

/* The sink reports a batch: results[i] is the verdict for batch[i]. Call exactly once per
 * successful deliver(), on the loop thread, at any time (even before deliver returns). */
typedef void (*outbox_done_cb)(outbox_delivery *d, const outbox_result *results);

/* A sink kind (webhook, S3, SQS, NATS, ... and the tests' sink). */
typedef struct outbox_sink_ops {
    const char *kind;
    /* Whether this sink subscribes to ev (its filter: types, PBXs, queues). NULL = every event.
     * Events it does not want are skipped (the cursor moves past them). */
    bool (*wants)(void *impl, const outbox_event *ev);
    /* Starts delivering n (>= 1) events, in order. Returns 0 and later calls done(d, results)
     * once, or returns an SB_E* code (done is then never called; the batch is retried later). */
    int (*deliver)(void *impl, const outbox_event *const *batch, size_t n, outbox_done_cb done,
                   outbox_delivery *d);
    /* Shutdown: finish or fail in-flight deliveries soon (may be NULL). */
    void (*cancel)(void *impl);
    /* Frees impl after the last delivery finished (may be NULL). */
    void (*free)(void *impl);
} outbox_sink_ops;

typedef struct outbox_sink_config {
    const char *name;         /* unique; the cursor's key in the store */
    bool is_partitioned;      /* order per call key (Linkedid) instead of per sink */
    bool is_start_at_end;     /* a NEW sink starts after the last stored event (default: oldest) */
    int batch_max;            /* events per deliver(); 0 = 100 */
    int max_inflight;         /* batches in flight (partitioned sinks); 0 = 1 */
    int window;               /* events read ahead of the cursor; 0 = 4096 */
    uint32_t max_attempts;    /* then dead letter; 0 = 10 */
    int64_t max_age_ms;       /* since the first failure, then dead letter; 0 = 24 h */
    uint32_t backoff_base_ms; /* first retry delay; 0 = 500 ms; doubles each attempt */
    uint32_t backoff_max_ms;  /* 0 = 5 min */
} outbox_sink_config;

/* Size report: bytes on disk and whether they cross the thresholds. Called when a check crosses
 * a threshold in either direction (and at open when over one). The daemon logs, counts a metric
 * and emits an alert event. */
typedef void (*outbox_size_cb)(int64_t bytes, bool is_over_warn, bool is_over_max, void *ud);

typedef struct outbox_options {
    const char *path;            /* SQLite file */
    store_options store;         /* durability (default synchronous=FULL) */
    store_writer_options writer; /* group size and queue caps */
    int64_t retention_ms;        /* delivered events kept this long; 0 = 7 days */
    int64_t prune_interval_ms;   /* retention and size checks; 0 = 60 s */
    int prune_chunk;         /* events deleted per writer transaction (appends never wait behind one
                              * huge DELETE); 0 = 20000 */
    int64_t size_warn_bytes; /* 0 = 1 GiB */
    int64_t size_max_bytes;  /* appends refused above (SB_ETOOBIG); 0 = 4 GiB; the database file
                              * is also capped hard at size_max + 1/16 (writes fail past it) */
    outbox_size_cb on_size;
    void *on_size_ud;
    int64_t tail_bytes; /* the newest committed events kept in memory, so that sinks that keep up
                         * read them without going back to the store; 0 = 64 MiB, < 0 = none */
} outbox_options;

/* Opens the store (blocking, start-up) and starts the writer. Borrows opt. Returns 0 and *out
 * (owned: outbox_close) or an SB_E* code. */
int outbox_open(uv_loop_t *loop, const outbox_options *opt, outbox **out);

/* Registers a sink and starts delivering to it (its cursor is read asynchronously). Borrows cfg
 * and ops (ops must outlive the outbox); takes ownership of impl (ops->free at close). Returns 0
 * and *out (borrowed, valid until close) or SB_EEXIST / SB_EINVAL / SB_ENOMEM (impl not taken). */
int outbox_add_sink(outbox *ob, const outbox_sink_config *cfg, const outbox_sink_ops *ops,
                    void *impl, outbox_sink **out);

/* Called on the loop when the appended event is durable (0), was already stored (SB_EEXIST: an
 * event with the same id; still durable) or could not be stored (other SB_E*). */
typedef void (*outbox_durable_cb)(int status, int64_t seq, void *ud);

/* Appends ev (borrowed; copied; ev->seq ignored). Returns 0 (cb runs exactly once; cb may be
 * NULL), or SB_ETOOBIG (queue full or store over its size limit), SB_EINVAL, SB_ECANCELED
 * (closing): cb does not run. */
int outbox_append(outbox *ob, const store_event *ev, outbox_durable_cb cb, void *ud);

/* Fills *out from a normalized event (docs/events.md): id, type, pbx, time (RFC 3339 to ms) from
 * the envelope, the order key from details.callId (the Linkedid; "" when none), payload = text.
 * Borrows obj and text: *out points into them (pass it to outbox_append, which copies). Returns 0
 * or SB_EINVAL (no id or type, or a time that is not RFC 3339 UTC). */
int outbox_event_from_json(const json_t *obj, const char *text, size_t len, store_event *out);
/* Parses "2026-11-23T23:58:41.150Z" into ms since the epoch; 0 or SB_EINVAL. */
int outbox_parse_time(const char *s, int64_t *ms);

/* Highest committed seq. */
int64_t outbox_committed_seq(const outbox *ob);

/* Outbox-wide counters for metrics (non-blocking). */
typedef struct outbox_stats {
    uint64_t appended;   /* accepted by outbox_append */
    uint64_t durable;    /* committed (status 0) */
    uint64_t duplicates; /* already stored (SB_EEXIST) */
    uint64_t failed;     /* not stored (commit errors) */
    uint64_t refused;    /* outbox_append said SB_ETOOBIG (queue full or store over size_max) */
    int64_t committed;   /* highest committed seq */
    size_t backlog;      /* appends and jobs waiting for the writer */
    int64_t store_bytes; /* at the last size check */
    bool is_over_warn, is_over_max;
} outbox_stats;
void outbox_stats_get(const outbox *ob, outbox_stats *st);

/* In-memory counters of a running sink (non-blocking). */
typedef struct outbox_sink_stats {
    int64_t cursor;    /* delivered or dead up to here (in memory; persisted shortly after) */
    int64_t read_pos;  /* loaded up to here */
    int64_t committed; /* outbox_committed_seq */
    size_t window;     /* events loaded and not yet behind the cursor */
    size_t inflight;   /* batches at the sink */
    size_t waiting;    /* events waiting for a retry */
    uint64_t delivered, retried, dead; /* since start */
    uint64_t from_tail, from_store;    /* events read from the memory tail / the store */
    char last_error[256];
} outbox_sink_stats;
/* Fills st for the sink named name; 0 or SB_ENOTFOUND. */
int outbox_sink_stats_get(outbox *ob, const char *name, outbox_sink_stats *st);

/* Everything above as JSON for the API and `switchboard outbox status`:
 * {"committed":N,"appended":N,"durable":N,"duplicates":N,"failed":N,"refused":N,"backlog":N,
 *  "storeBytes":N,"overWarn":B,"overMax":B,"sinks":[{"name":S,"kind":S,"cursor":N,"readPos":N,
 *  "pending":N,"window":N,"inflight":N,"waiting":N,"delivered":N,"retried":N,"dead":N,
 *  "fromTail":N,"fromStore":N,"lastError":S|null}, ...],"tailEvents":N,"tailBytes":N} ("pending" =
 * committed - cursor, an upper bound). Returns owned (json_decref), or NULL when out of memory. */
json_t *outbox_status_json(const outbox *ob);

/* `outbox retry --sink S [--from TIME]` in the daemon: puts the sink's dead letters whose event
 * time is >= from_ms (0 = all) back into delivery with fresh attempts, ahead of newer events of
 * the same order key. cb(status, count, ud) runs on the loop. Returns 0 or SB_ENOTFOUND. */
typedef void (*outbox_op_cb)(int status, int64_t count, void *ud);
int outbox_retry(outbox *ob, const char *sink, int64_t from_ms, outbox_op_cb cb, void *ud);

/* `outbox replay --sink S --from TIME` in the daemon: waits for the sink's in-flight batches,
 * moves its cursor back to just before the first stored event at or after from_ms and delivers
 * again from there (events older than the retention are gone). cb gets the new cursor as count.
 * Returns 0 or SB_ENOTFOUND / SB_EINVAL (a replay already pending). */
int outbox_replay(outbox *ob, const char *sink, int64_t from_ms, outbox_op_cb cb, void *ud);

/* Runs the retention and size check now (also runs every prune_interval_ms). cb gets the number
 * of events pruned. */
int outbox_prune_now(outbox *ob, outbox_op_cb cb, void *ud);

/* Stops deliveries (ops->cancel), waits for in-flight batches and loads, commits the final
 * cursors, stops the writer, frees every sink (ops->free), then calls closed(ud) on the loop and
 * frees ob. Appends are refused from now on. */
void outbox_close(outbox *ob, void (*closed)(void *ud), void *ud);

/* --- configuration ([store]; the [sink NAME] keys are read by src/sinks/factory.c)
 * ---------------- */

/* Fills opt from cfg's [store] section (defaults when there is none; path "switchboard.db").
 * Strings in opt borrow from cfg. Returns 0, or SB_ECONFIG with "FILE:LINE: [store] key: problem"
 * in err. */
int outbox_options_from_config(const sb_config *cfg, outbox_options *opt, char *err,
                               size_t errsize);
/* "500ms", "30s", "5m", "12h", "7d" or a bare number of seconds, to ms. 0 or SB_EINVAL. */
int outbox_parse_ms(const char *s, int64_t *ms);
/* The --from of `outbox retry|replay`: an RFC 3339 UTC time ("2026-11-25T02:00:00Z") or a duration
 * back from now_ms ("90m", "2h", "1d"). 0 or SB_EINVAL. */
int outbox_parse_from(const char *s, int64_t now_ms, int64_t *ms);
/* "1048576", "512K", "64M", "2G", "1T" (optionally followed by B or iB), to bytes. 0 or SB_EINVAL.
 */
int outbox_parse_bytes(const char *s, int64_t *bytes);

/* --- offline administration (the CLI process; blocks; borrows its arguments) ---------------- */

/* Status of one sink straight from the store (works while the daemon runs: WAL readers). */
int outbox_admin_status(const char *path, const char *sink, store_sink_status *st);
/* Marks dead letters for retry; only while no daemon runs on the store (the CLI holds the store's
 * lock; a running daemon is asked through outbox_requests instead, src/app/outbox_control.h). The
 * daemon delivers them when it starts. *count gets how many. */
int outbox_admin_retry(const char *path, const char *sink, int64_t from_ms, int64_t *count);
/* Moves the sink's cursor back to replay from from_ms; only while the daemon is stopped (a running
 * daemon would overwrite the cursor: use outbox_replay there). *cursor gets the new cursor. */
int outbox_admin_replay(const char *path, const char *sink, int64_t from_ms, int64_t *cursor);

#endif
