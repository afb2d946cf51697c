/* store.h: the persistent store (SQLite today, PostgreSQL later) behind a small, SQL-free API.
 *
 * A store_conn is one connection. It is NOT thread-safe: exactly one thread uses a connection at
 * a time (the writer thread owns the write connection, see store/writer.h; read connections are
 * used by one thread-pool job at a time). Every call here may block on disk: never call them on
 * the libuv loop thread except at start-up (store_open) and shutdown.
 *
 * Opening a connection with STORE_OPEN_WRITE applies the schema migrations (store_migrations.c)
 * in one transaction each and records them in the schema_version table. Times are milliseconds
 * since the Unix epoch (UTC). Sequence numbers (seq) are assigned by the outbox in commit order,
 * start at 1, never repeat and never go backwards, even after every event has been pruned.
 */
#ifndef SB_STORE_STORE_H
#define SB_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store_conn store_conn;

enum {
    STORE_OPEN_READ = 0,  /* a reader: no migrations, queries only */
    STORE_OPEN_WRITE = 1, /* the writer: creates the file and applies the migrations */
};

typedef enum store_sync {
    STORE_SYNC_FULL = 0, /* default: a commit survives power loss (docs/decisions/0005) */
    STORE_SYNC_NORMAL,   /* a commit survives a process crash, not always a power loss */
} store_sync;

typedef struct store_options {
    store_sync sync;
    int busy_timeout_ms; /* how long a statement waits for a lock; 0 = 5000 */
} store_options;

/* One outbox event as stored. String fields are NUL-terminated. In values handed to a store
 * function they are borrowed for the call; in values a store function hands out they are borrowed
 * until the callback returns (copy what you keep). */
typedef struct store_event {
    int64_t seq;          /* outbox order; assigned by the writer */
    const char *id;       /* unique, stable across retries (receivers drop duplicates by it) */
    const char *type;     /* e.g. "call.ended" */
    const char *pbx;      /* which Asterisk; "" when none */
    const char *call_key; /* partition key (the Linkedid); "" when the event has no call */
    int64_t time_ms;      /* event time */
    const char *payload;  /* the whole event as JSON text */
    size_t payload_len;
} store_event;

/* Per-event retry state of one sink (the sink_attempts table). */
typedef struct store_attempt {
    int64_t seq;
    uint32_t attempts;
    int64_t first_ms; /* first failed attempt */
    int64_t next_ms;  /* not before */
    const char *last_error;
} store_attempt;

/* One dead letter (the dead_letters table); the event is copied, so pruning never loses it. */
typedef struct store_dead {
    store_event ev;
    uint32_t attempts;
    const char *last_error;
    int64_t dead_ms;
    bool is_retry_requested; /* `outbox retry` asked for another round of delivery */
} store_dead;

/* Per-sink counters for `switchboard outbox status`. */
typedef struct store_sink_status {
    int64_t cursor;            /* every event with seq <= cursor was delivered or dead-lettered */
    int64_t last_seq;          /* highest seq in the store */
    int64_t pending;           /* stored events with seq > cursor */
    int64_t oldest_pending_ms; /* time of the first event after the cursor; 0 when none */
    int64_t retrying;          /* rows in sink_attempts */
    int64_t dead;              /* dead letters not yet retried */
    int64_t updated_ms;        /* when the cursor last moved */
} store_sink_status;

/* Opens (creating if mode is STORE_OPEN_WRITE) the store at path. opt may be NULL for defaults.
 * Borrows path and opt. Returns 0 and *out (owned: store_close) or an SB_E* code. */
int store_open(const char *path, int mode, const store_options *opt, store_conn **out);
/* Closes the connection (NULL is fine). Any open transaction is rolled back. */
void store_close(store_conn *c);
/* The schema version applied to this store (the highest migration). */
int store_schema_version(store_conn *c, int *version);
/* The last migration this build knows about. */
int store_schema_latest(void);

/* Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK. 0 or SB_EIO. store_in_transaction is false
 * after a failed statement made the engine roll the whole transaction back (disk full, I/O). */
int store_begin(store_conn *c);
int store_commit(store_conn *c);
int store_rollback(store_conn *c);
bool store_in_transaction(store_conn *c);

/* --- events ------------------------------------------------------------------------------- */

/* The highest seq ever assigned (0 for a new store). */
int store_last_seq(store_conn *c, int64_t *seq);
/* Records the highest seq assigned, so seq never restarts after pruning. Call inside the
 * transaction that inserted the events. */
int store_set_last_seq(store_conn *c, int64_t seq);
/* Inserts ev (borrowed) with ev->seq already set. Returns 0, or SB_EEXIST when an event with the
 * same id is already stored (nothing written), or SB_EIO. */
int store_event_insert(store_conn *c, const store_event *ev);
/* Calls cb for each event with after < seq <= upto in seq order, at most limit of them. The event
 * is borrowed until cb returns; cb returns 0 to go on or non-zero to stop (that value is returned).
 * Returns 0 or an SB_E* code. */
typedef int (*store_event_cb)(const store_event *ev, void *ud);
int store_events_scan(store_conn *c, int64_t after, int64_t upto, int limit, store_event_cb cb,
                      void *ud);
/* The seq just before the first event at or after time_ms (so replay from there starts with it).
 * When no event is that recent, *seq is the last seq. */
int store_seq_before_time(store_conn *c, int64_t time_ms, int64_t *seq);
/* Deletes the oldest events with seq <= upto and time < older_than_ms, at most limit of them (0 =
 * no limit, so one call never holds the writer long); *deleted (may be NULL) gets the count. */
int store_events_prune(store_conn *c, int64_t upto, int64_t older_than_ms, int limit,
                       int64_t *deleted);

/* --- per-sink cursors ------------------------------------------------------------------------ */

/* The sink's cursor; a sink never seen before starts at start_seq (and is recorded). */
int store_sink_cursor(store_conn *c, const char *sink, int64_t start_seq, int64_t *cursor);
/* Moves the sink's cursor (forwards or backwards: replay moves it back). */
int store_sink_set_cursor(store_conn *c, const char *sink, int64_t cursor, int64_t now_ms);
/* Counters for status (the sink must exist: SB_ENOTFOUND otherwise). */
int store_sink_status_get(store_conn *c, const char *sink, store_sink_status *st);
/* Names of every sink with a cursor, one cb call each (borrowed name). */
typedef int (*store_name_cb)(const char *name, void *ud);
int store_sinks_list(store_conn *c, store_name_cb cb, void *ud);

/* --- per-sink retry state ------------------------------------------------------------------- */

/* Inserts or replaces the retry state of (sink, a->seq). Borrows a. */
int store_attempt_put(store_conn *c, const char *sink, const store_attempt *a);
/* Forgets the retry state of (sink, seq); no row is fine. */
int store_attempt_clear(store_conn *c, const char *sink, int64_t seq);
/* Calls cb for every retry state of sink with seq > after, in seq order (borrowed). */
typedef int (*store_attempt_cb)(const store_attempt *a, void *ud);
int store_attempts_scan(store_conn *c, const char *sink, int64_t after, store_attempt_cb cb,
                        void *ud);

/* --- dead letters ------------------------------------------------------------------------------
 */

/* Records ev as dead for sink (replacing an earlier dead letter of the same event). */
int store_dead_put(store_conn *c, const char *sink, const store_event *ev, uint32_t attempts,
                   const char *last_error, int64_t now_ms);
/* Removes the dead letter (sink, seq); no row is fine. */
int store_dead_delete(store_conn *c, const char *sink, int64_t seq);
/* Marks every dead letter of sink whose event time is >= from_ms for another round of delivery;
 * *count (may be NULL) gets how many. */
int store_dead_request_retry(store_conn *c, const char *sink, int64_t from_ms, int64_t *count);
/* Calls cb for dead letters of sink with seq > after in seq order, at most limit (0 = no limit);
 * only those marked for retry when is_retry_only. Borrowed until cb returns. */
typedef int (*store_dead_cb)(const store_dead *d, void *ud);
int store_dead_scan(store_conn *c, const char *sink, int64_t after, bool is_retry_only, int limit,
                    store_dead_cb cb, void *ud);

/* --- size ------------------------------------------------------------------------------------- */

/* Bytes the store occupies on disk (database file plus write-ahead log). */
int store_size_bytes(store_conn *c, int64_t *bytes);
/* Caps the database file at about bytes (0 = no cap): past it, writes fail with SB_ETOOBIG
 * (SQLite's "database or disk is full") instead of filling the disk. Deletes still work. */
int store_set_max_bytes(store_conn *c, int64_t bytes);
/* Checkpoints the write-ahead log into the database and truncates it (writer only). */
int store_checkpoint(store_conn *c);

/* --- operator requests to the running daemon (the outbox_requests table) ----------------------
 * `switchboard outbox retry|replay` cannot touch a running daemon's outbox directly, so it queues
 * a request here and waits; the daemon polls, carries it out and writes the outcome back
 * (src/app/outbox_control.c). Life: queued -> running -> done | failed, or queued -> canceled. */

typedef enum store_request_op {
    STORE_REQ_RETRY = 1,  /* put the sink's dead letters back into delivery */
    STORE_REQ_REPLAY = 2, /* move the sink's cursor back and deliver again */
} store_request_op;

typedef enum store_request_state {
    STORE_REQ_QUEUED = 0, /* waiting for the daemon */
    STORE_REQ_RUNNING,    /* the daemon took it */
    STORE_REQ_DONE,       /* finished: result holds the outcome */
    STORE_REQ_FAILED,     /* finished with status < 0 and error */
    STORE_REQ_CANCELED,   /* the requester gave up before the daemon took it */
} store_request_state;

/* One request. In values a store function hands out the strings are borrowed until the callback
 * returns. */
typedef struct store_request {
    int64_t id;
    store_request_op op;
    const char *sink;
    int64_t from_ms;     /* events (retry: dead letters) at or after this time; 0 = all */
    int64_t created_ms;  /* queued at */
    int64_t deadline_ms; /* not started by then: the daemon fails it as expired */
    store_request_state state;
    int64_t done_ms;   /* finished or canceled at; 0 before */
    int status;        /* 0, or the SB_E* code it failed with */
    int64_t result;    /* retry: dead letters put back; replay: the new cursor */
    const char *error; /* why it failed; "" otherwise */
} store_request;

typedef int (*store_request_cb)(const store_request *r, void *ud);

/* Queues a request (sink borrowed); *id gets its id. 0 or SB_EIO / SB_ETOOBIG. */
int store_request_add(store_conn *c, store_request_op op, const char *sink, int64_t from_ms,
                      int64_t now_ms, int64_t deadline_ms, int64_t *id);
/* Calls cb once with request id; SB_ENOTFOUND when there is none. Returns cb's non-zero value. */
int store_request_get(store_conn *c, int64_t id, store_request_cb cb, void *ud);
/* Calls cb for the queued requests, oldest first, at most limit (0 = no limit). */
int store_requests_queued(store_conn *c, int limit, store_request_cb cb, void *ud);
/* Claims a queued request (queued -> running). SB_ENOTFOUND when it is not queued any more
 * (canceled, or taken). */
int store_request_start(store_conn *c, int64_t id, int64_t now_ms);
/* Records the outcome of a queued or running request: done when status is 0, else failed with
 * error (borrowed; may be NULL). SB_ENOTFOUND when it is neither queued nor running. */
int store_request_finish(store_conn *c, int64_t id, int status, int64_t result, const char *error,
                         int64_t now_ms);
/* Cancels a request that is still queued (queued -> canceled). SB_ENOTFOUND when it is not
 * queued any more (the daemon took it, or it finished). */
int store_request_cancel(store_conn *c, int64_t id, int64_t now_ms);
/* Fails every running request with error (borrowed): a daemon starting or stopping calls this for
 * the requests a previous run took and never finished. *count (may be NULL) gets how many. */
int store_requests_abandon(store_conn *c, const char *error, int64_t now_ms, int64_t *count);
/* Deletes finished and canceled requests older than older_than_ms; *deleted may be NULL. */
int store_requests_prune(store_conn *c, int64_t older_than_ms, int64_t *deleted);

/* --- route files (the routing engine's data, src/routing/store.c) ---------------------------- */

/* Stores a whole route file (text borrowed, len bytes; source says where it came from, "" when
 * unknown) as a new version; *version gets its number, higher than every earlier one. 0,
 * SB_EIO or SB_ETOOBIG (store full). */
int store_route_file_insert(store_conn *c, const char *text, size_t len, const char *source,
                            int64_t now_ms, int64_t *version);
/* The newest route file: 0 with *text (returns owned, NUL-terminated: free()), *len and
 * *version; SB_ENOTFOUND when none was ever stored; SB_EIO or SB_ENOMEM. */
int store_route_file_newest(store_conn *c, char **text, size_t *len, int64_t *version);

#endif
