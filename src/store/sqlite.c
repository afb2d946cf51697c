/* sqlite.c: the SQLite backend of the store (WAL mode, prepared statements cached per connection).
 *
 * Durability: journal_mode=WAL with synchronous=FULL by default, so COMMIT returns only after the
 * WAL is flushed to disk; the writer groups many events per commit to amortise the flush
 * (docs/decisions/0005-store-durability.md). Readers never block the writer in WAL mode.
 */
#include "store/internal.h"

#include "core/error.h"
#include "core/log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SUB "store"

enum {
    ST_LAST_SEQ,
    ST_SET_LAST_SEQ,
    ST_EVENT_INSERT,
    ST_EVENTS_SCAN,
    ST_SEQ_BEFORE_TIME,
    ST_EVENTS_PRUNE,
    ST_CURSOR_GET,
    ST_CURSOR_INSERT,
    ST_CURSOR_SET,
    ST_ATTEMPT_PUT,
    ST_ATTEMPT_CLEAR,
    ST_ATTEMPTS_SCAN,
    ST_DEAD_PUT,
    ST_DEAD_DELETE,
    ST_DEAD_RETRY,
    ST_DEAD_SCAN,
    ST_DEAD_SCAN_RETRY,
    ST_ROUTE_FILE_INSERT,
    ST_ROUTE_FILE_NEWEST,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_LAST_SEQ] = "SELECT max((SELECT value FROM meta WHERE key = 'last_seq'),"
                    " coalesce((SELECT max(seq) FROM events), 0))",
    [ST_SET_LAST_SEQ] = "UPDATE meta SET value = ?1 WHERE key = 'last_seq' AND value < ?1",
    [ST_EVENT_INSERT] = "INSERT INTO events (seq, id, type, pbx, call_key, time_ms, payload)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    [ST_EVENTS_SCAN] = "SELECT seq, id, type, pbx, call_key, time_ms, payload FROM events"
                       " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
    [ST_SEQ_BEFORE_TIME] = "SELECT min(seq) FROM events WHERE time_ms >= ?",
    [ST_EVENTS_PRUNE] = "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
                        " WHERE seq <= ?1 AND time_ms < ?2 ORDER BY seq LIMIT ?3)",
    [ST_CURSOR_GET] = "SELECT cursor FROM sink_cursors WHERE sink = ?",
    [ST_CURSOR_INSERT] = "INSERT INTO sink_cursors (sink, cursor, updated_ms) VALUES (?, ?, ?)"
                         " ON CONFLICT (sink) DO NOTHING",
    [ST_CURSOR_SET] = "INSERT INTO sink_cursors (sink, cursor, updated_ms) VALUES (?, ?, ?)"
                      " ON CONFLICT (sink) DO UPDATE SET cursor = excluded.cursor,"
                      " updated_ms = excluded.updated_ms",
    [ST_ATTEMPT_PUT] = "INSERT OR REPLACE INTO sink_attempts"
                       " (sink, seq, attempts, first_ms, next_ms, last_error)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
    [ST_ATTEMPT_CLEAR] = "DELETE FROM sink_attempts WHERE sink = ? AND seq = ?",
    [ST_ATTEMPTS_SCAN] = "SELECT seq, attempts, first_ms, next_ms, last_error FROM sink_attempts"
                         " WHERE sink = ? AND seq > ? ORDER BY seq",
    [ST_DEAD_PUT] = "INSERT OR REPLACE INTO dead_letters (sink, seq, id, type, pbx, call_key,"
                    " time_ms, payload, attempts, last_error, dead_ms, retry)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
    [ST_DEAD_DELETE] = "DELETE FROM dead_letters WHERE sink = ? AND seq = ?",
    [ST_DEAD_RETRY] =
        "UPDATE dead_letters SET retry = 1 WHERE sink = ? AND time_ms >= ? AND retry = 0",
    [ST_DEAD_SCAN] = "SELECT seq, id, type, pbx, call_key, time_ms, payload, attempts,"
                     " last_error, dead_ms, retry FROM dead_letters"
                     " WHERE sink = ? AND seq > ? ORDER BY seq LIMIT ?",
    [ST_DEAD_SCAN_RETRY] = "SELECT seq, id, type, pbx, call_key, time_ms, payload, attempts,"
                           " last_error, dead_ms, retry FROM dead_letters"
                           " WHERE sink = ? AND seq > ? AND retry = 1 ORDER BY seq LIMIT ?",
    [ST_ROUTE_FILE_INSERT] = "INSERT INTO route_files (text, source, imported_ms) VALUES (?, ?, ?)",
    [ST_ROUTE_FILE_NEWEST] = "SELECT version, text FROM route_files ORDER BY version DESC LIMIT 1",
};

typedef struct sq_conn {
    store_conn base; /* first: store.c dispatches through base.be */
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[ST_COUNT];
} sq_conn;

static sq_conn *sq(store_conn *c)
{
    return (sq_conn *)c;
}

static int sq_fail(sq_conn *s, const char *what, int rc)
{
    /* A full store is reported by the caller (the writer logs when it starts and stops). */
    if (rc != SQLITE_FULL)
        sb_log(SB_LOG_ERROR, SUB, "%s: %s (%s)", what, sqlite3_errstr(rc), sqlite3_errmsg(s->db));
    if (rc == SQLITE_NOMEM)
        return SB_ENOMEM;
    if (rc == SQLITE_FULL)
        return SB_ETOOBIG;
    return SB_EIO;
}

/* Returns the cached statement i, reset and with bindings cleared, or NULL (logged). */
static sqlite3_stmt *sq_stmt(sq_conn *s, int i)
{
    if (!s->st[i]) {
        int rc =
            sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            sq_fail(s, "prepare", rc);
            return NULL;
        }
    } else {
        sqlite3_reset(s->st[i]);
        sqlite3_clear_bindings(s->st[i]);
    }
    return s->st[i];
}

/* Runs a statement that returns no rows; resets it afterwards. */
static int sq_done(sq_conn *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s, what, rc);
    return 0;
}

static int sq_exec(sq_conn *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        sb_log(SB_LOG_ERROR, SUB, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc == SQLITE_FULL ? SB_ETOOBIG : SB_EIO;
    }
    return 0;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

static int sq_schema_version(store_conn *c, int *version)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s, "schema version", rc);
    rc = sqlite3_step(st);
    *version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(s, "schema version", rc);
}

/* Applies every migration newer than the store, each in its own transaction. */
static int sq_migrate(sq_conn *s)
{
    int err = sq_exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                         " name TEXT NOT NULL, applied_ms INTEGER NOT NULL)");
    if (err)
        return err;
    int have = 0;
    if ((err = sq_schema_version(&s->base, &have)))
        return err;
    if (have > store_schema_latest()) {
        sb_log(SB_LOG_ERROR, SUB, "%s has schema version %d, newer than this build's %d", s->path,
               have, store_schema_latest());
        return SB_ECONFIG;
    }
    for (int i = 0; i < store_migrations_count; i++) {
        const store_migration *m = &store_migrations[i];
        if (m->version <= have)
            continue;
        if ((err = sq_exec(s, "BEGIN IMMEDIATE")))
            return err;
        err = sq_exec(s, m->sqlite_sql);
        if (!err) {
            char sql[256];
            snprintf(sql, sizeof sql,
                     "INSERT INTO schema_version (version, name, applied_ms) VALUES"
                     " (%d, '%s', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
                     m->version, m->name);
            err = sq_exec(s, sql);
        }
        if (!err)
            err = sq_exec(s, "COMMIT");
        if (err) {
            sq_exec(s, "ROLLBACK");
            sb_log(SB_LOG_ERROR, SUB, "migration %d (%s) failed", m->version, m->name);
            return err;
        }
        sb_log(SB_LOG_INFO, SUB, "%s: applied migration %d (%s)", s->path, m->version, m->name);
    }
    return 0;
}

static void sq_close(store_conn *c)
{
    sq_conn *s = sq(c);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

static int sq_open(const char *path, int mode, const store_options *opt, store_conn **out)
{
    int err = SB_ENOMEM;
    sq_conn *s = calloc(1, sizeof *s);
    if (!s)
        return SB_ENOMEM;
    s->base.be = &store_sqlite_backend;
    size_t n = strlen(path);
    if (!(s->path = malloc(n + 1)))
        goto fail;
    memcpy(s->path, path, n + 1);
    int flags =
        SQLITE_OPEN_NOMUTEX | (mode == STORE_OPEN_WRITE ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                                        : SQLITE_OPEN_READWRITE);
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        err = s->db ? sq_fail(s, path, rc) : SB_ENOMEM;
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 0);
    sqlite3_busy_timeout(s->db, opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 5000);
    /* WAL: readers (delivery, status) never block the writer and the writer never blocks them. */
    if ((err = sq_exec(s, "PRAGMA journal_mode=WAL")))
        goto fail;
    if ((err = sq_exec(s, opt && opt->sync == STORE_SYNC_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                                : "PRAGMA synchronous=FULL")))
        goto fail;
    if ((err = sq_exec(s, "PRAGMA foreign_keys=ON")))
        goto fail;
    if (mode == STORE_OPEN_WRITE) {
        if ((err = sq_exec(s, "PRAGMA cache_size=-16000")))
            goto fail;
        /* After a checkpoint the WAL file is cut back to 64 MiB, so a burst does not leave a huge
         * file behind (the size watch counts the WAL). */
        if ((err = sq_exec(s, "PRAGMA journal_size_limit=67108864")))
            goto fail;
        if ((err = sq_migrate(s)))
            goto fail;
    } else {
        int v = 0;
        if ((err = sq_schema_version(&s->base, &v)))
            goto fail;
        if (v < store_schema_latest()) {
            sb_log(SB_LOG_ERROR, SUB,
                   "%s: schema version %d, expected %d (open it for writing"
                   " first)",
                   path, v, store_schema_latest());
            err = SB_ECONFIG;
            goto fail;
        }
    }
    *out = &s->base;
    return 0;
fail:
    sq_close(&s->base);
    return err;
}

static int sq_begin(store_conn *c)
{
    return sq_exec(sq(c), "BEGIN IMMEDIATE");
}

static int sq_commit(store_conn *c)
{
    return sq_exec(sq(c), "COMMIT");
}

static int sq_rollback(store_conn *c)
{
    if (sqlite3_get_autocommit(sq(c)->db))
        return 0; /* the engine already rolled back */
    return sq_exec(sq(c), "ROLLBACK");
}

static bool sq_in_transaction(store_conn *c)
{
    return !sqlite3_get_autocommit(sq(c)->db);
}

/* Runs a single-row, single-integer query; *out is 0 when the value is NULL. */
static int sq_int_query(sq_conn *s, sqlite3_stmt *st, const char *what, int64_t *out, bool *is_null)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (is_null)
            *is_null = sqlite3_column_type(st, 0) == SQLITE_NULL;
        *out = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        if (is_null)
            *is_null = true;
        *out = 0;
        return 0;
    }
    return sq_fail(s, what, rc);
}

static int sq_last_seq(store_conn *c, int64_t *seq)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_LAST_SEQ);
    if (!st)
        return SB_EIO;
    return sq_int_query(s, st, "last seq", seq, NULL);
}

static int sq_set_last_seq(store_conn *c, int64_t seq)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_SET_LAST_SEQ);
    if (!st)
        return SB_EIO;
    sqlite3_bind_int64(st, 1, seq);
    return sq_done(s, st, "set last seq");
}

static void bind_event(sqlite3_stmt *st, int first, const store_event *ev)
{
    sqlite3_bind_int64(st, first, ev->seq);
    bind_text(st, first + 1, ev->id);
    bind_text(st, first + 2, ev->type);
    bind_text(st, first + 3, ev->pbx);
    bind_text(st, first + 4, ev->call_key);
    sqlite3_bind_int64(st, first + 5, ev->time_ms);
    sqlite3_bind_text(st, first + 6, ev->payload ? ev->payload : "", (int)ev->payload_len,
                      SQLITE_STATIC);
}

static void read_event(sqlite3_stmt *st, int first, store_event *ev)
{
    ev->seq = sqlite3_column_int64(st, first);
    ev->id = col_text(st, first + 1);
    ev->type = col_text(st, first + 2);
    ev->pbx = col_text(st, first + 3);
    ev->call_key = col_text(st, first + 4);
    ev->time_ms = sqlite3_column_int64(st, first + 5);
    ev->payload = col_text(st, first + 6);
    ev->payload_len = (size_t)sqlite3_column_bytes(st, first + 6);
}

static int sq_event_insert(store_conn *c, const store_event *ev)
{
    sq_conn *s = sq(c);
    if (ev->payload_len > 0x7fffffff)
        return SB_ETOOBIG;
    sqlite3_stmt *st = sq_stmt(s, ST_EVENT_INSERT);
    if (!st)
        return SB_EIO;
    bind_event(st, 1, ev);
    int err = sq_done(s, st, "insert event");
    if (err)
        return err;
    return sqlite3_changes(s->db) == 1 ? 0 : SB_EEXIST;
}

static int sq_events_scan(store_conn *c, int64_t after, int64_t upto, int limit, store_event_cb cb,
                          void *ud)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_EVENTS_SCAN);
    if (!st)
        return SB_EIO;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, upto);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_event ev;
        read_event(st, 0, &ev);
        if ((ret = cb(&ev, ud)))
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_fail(s, "scan events", rc);
    sqlite3_reset(st);
    return ret;
}

static int sq_seq_before_time(store_conn *c, int64_t time_ms, int64_t *seq)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_SEQ_BEFORE_TIME);
    if (!st)
        return SB_EIO;
    sqlite3_bind_int64(st, 1, time_ms);
    bool is_null = false;
    int64_t first = 0;
    int err = sq_int_query(s, st, "seq by time", &first, &is_null);
    if (err)
        return err;
    if (is_null)
        return sq_last_seq(c, seq);
    *seq = first - 1;
    return 0;
}

static int sq_events_prune(store_conn *c, int64_t upto, int64_t older_than_ms, int limit,
                           int64_t *deleted)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_EVENTS_PRUNE);
    if (!st)
        return SB_EIO;
    sqlite3_bind_int64(st, 1, upto);
    sqlite3_bind_int64(st, 2, older_than_ms);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    int err = sq_done(s, st, "prune events");
    if (!err && deleted)
        *deleted = sqlite3_changes64(s->db);
    return err;
}

static int sq_sink_cursor(store_conn *c, const char *sink, int64_t start_seq, int64_t *cursor)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_CURSOR_GET);
    if (!st)
        return SB_EIO;
    bind_text(st, 1, sink);
    bool is_null = false;
    int err = sq_int_query(s, st, "get cursor", cursor, &is_null);
    if (err || !is_null)
        return err;
    /* A new sink: record where it starts so a restart does not move it. */
    if (!(st = sq_stmt(s, ST_CURSOR_INSERT)))
        return SB_EIO;
    bind_text(st, 1, sink);
    sqlite3_bind_int64(st, 2, start_seq);
    sqlite3_bind_int64(st, 3, 0);
    *cursor = start_seq;
    return sq_done(s, st, "insert cursor");
}

static int sq_sink_set_cursor(store_conn *c, const char *sink, int64_t cursor, int64_t now_ms)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_CURSOR_SET);
    if (!st)
        return SB_EIO;
    bind_text(st, 1, sink);
    sqlite3_bind_int64(st, 2, cursor);
    sqlite3_bind_int64(st, 3, now_ms);
    return sq_done(s, st, "set cursor");
}

/* Runs an ad-hoc single-integer query with up to two bindings (status is rare: not cached). */
static int sq_count(sq_conn *s, const char *sql, const char *sink, int64_t arg, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s, "status", rc);
    int np = sqlite3_bind_parameter_count(st);
    int i = 1;
    if (sink && i <= np)
        bind_text(st, i++, sink);
    if (i <= np)
        sqlite3_bind_int64(st, i, arg);
    int err = sq_int_query(s, st, "status", out, NULL);
    sqlite3_finalize(st);
    return err;
}

static int sq_sink_status(store_conn *c, const char *sink, store_sink_status *st)
{
    sq_conn *s = sq(c);
    memset(st, 0, sizeof *st);
    int err =
        sq_count(s, "SELECT count(*) FROM sink_cursors WHERE sink = ?", sink, 0, &st->pending);
    if (err)
        return err;
    if (st->pending == 0)
        return SB_ENOTFOUND;
    if ((err = sq_count(s, "SELECT cursor FROM sink_cursors WHERE sink = ?", sink, 0, &st->cursor)))
        return err;
    if ((err = sq_count(s, "SELECT updated_ms FROM sink_cursors WHERE sink = ?", sink, 0,
                        &st->updated_ms)))
        return err;
    if ((err = sq_last_seq(c, &st->last_seq)))
        return err;
    if ((err = sq_count(s, "SELECT count(*) FROM events WHERE seq > ?", NULL, st->cursor,
                        &st->pending)))
        return err;
    if ((err = sq_count(s,
                        "SELECT coalesce((SELECT time_ms FROM events WHERE seq > ?"
                        " ORDER BY seq LIMIT 1), 0)",
                        NULL, st->cursor, &st->oldest_pending_ms)))
        return err;
    if ((err = sq_count(s, "SELECT count(*) FROM sink_attempts WHERE sink = ?", sink, 0,
                        &st->retrying)))
        return err;
    return sq_count(s, "SELECT count(*) FROM dead_letters WHERE sink = ? AND retry = 0", sink, 0,
                    &st->dead);
}

static int sq_sinks_list(store_conn *c, store_name_cb cb, void *ud)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_prepare_v2(s->db, "SELECT sink FROM sink_cursors ORDER BY sink", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s, "list sinks", rc);
    int ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((ret = cb(col_text(st, 0), ud)))
            break;
    if (!ret && rc != SQLITE_DONE)
        ret = sq_fail(s, "list sinks", rc);
    sqlite3_finalize(st);
    return ret;
}

static int sq_attempt_put(store_conn *c, const char *sink, const store_attempt *a)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_ATTEMPT_PUT);
    if (!st)
        return SB_EIO;
    bind_text(st, 1, sink);
    sqlite3_bind_int64(st, 2, a->seq);
    sqlite3_bind_int64(st, 3, a->attempts);
    sqlite3_bind_int64(st, 4, a->first_ms);
    sqlite3_bind_int64(st, 5, a->next_ms);
    bind_text(st, 6, a->last_error);
    return sq_done(s, st, "put attempt");
}

static int sq_attempt_clear(store_conn *c, const char *sink, int64_t seq)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_ATTEMPT_CLEAR);
    if (!st)
        return SB_EIO;
    bind_text(st, 1, sink);
    sqlite3_bind_int64(st, 2, seq);
    return sq_done(s, st, "clear attempt");
}

static int sq_attempts_scan(store_conn *c, const char *sink, int64_t after, store_attempt_cb cb,
                            void *ud)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_ATTEMPTS_SCAN);
    if (!st)
        return SB_EIO;
    bind_text(st, 1, sink);
    sqlite3_bind_int64(st, 2, after);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_attempt a = {
            .seq = sqlite3_column_int64(st, 0),
            .attempts = (uint32_t)sqlite3_column_int64(st, 1),
            .first_ms = sqlite3_column_int64(st, 2),
            .next_ms = sqlite3_column_int64(st, 3),
            .last_error = col_text(st, 4),
        };
        if ((ret = cb(&a, ud)))
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_fail(s, "scan attempts", rc);
    sqlite3_reset(st);
    return ret;
}

static int sq_dead_put(store_conn *c, const char *sink, const store_event *ev, uint32_t attempts,
                       const char *last_error, int64_t now_ms)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_DEAD_PUT);
    if (!st)
        return SB_EIO;
    bind_text(st, 1, sink);
    bind_event(st, 2, ev);
    sqlite3_bind_int64(st, 9, attempts);
    bind_text(st, 10, last_error);
    sqlite3_bind_int64(st, 11, now_ms);
    return sq_done(s, st, "put dead letter");
}

static int sq_dead_delete(store_conn *c, const char *sink, int64_t seq)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_DEAD_DELETE);
    if (!st)
        return SB_EIO;
    bind_text(st, 1, sink);
    sqlite3_bind_int64(st, 2, seq);
    return sq_done(s, st, "delete dead letter");
}

static int sq_dead_request_retry(store_conn *c, const char *sink, int64_t from_ms, int64_t *count)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_DEAD_RETRY);
    if (!st)
        return SB_EIO;
    bind_text(st, 1, sink);
    sqlite3_bind_int64(st, 2, from_ms);
    int err = sq_done(s, st, "retry dead letters");
    if (!err && count)
        *count = sqlite3_changes64(s->db);
    return err;
}

static int sq_dead_scan(store_conn *c, const char *sink, int64_t after, bool is_retry_only,
                        int limit, store_dead_cb cb, void *ud)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, is_retry_only ? ST_DEAD_SCAN_RETRY : ST_DEAD_SCAN);
    if (!st)
        return SB_EIO;
    bind_text(st, 1, sink);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_dead d;
        read_event(st, 0, &d.ev);
        d.attempts = (uint32_t)sqlite3_column_int64(st, 7);
        d.last_error = col_text(st, 8);
        d.dead_ms = sqlite3_column_int64(st, 9);
        d.is_retry_requested = sqlite3_column_int(st, 10) != 0;
        if ((ret = cb(&d, ud)))
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_fail(s, "scan dead letters", rc);
    sqlite3_reset(st);
    return ret;
}

static int sq_size_bytes(store_conn *c, int64_t *bytes)
{
    sq_conn *s = sq(c);
    int64_t total = 0;
    struct stat sb;
    if (stat(s->path, &sb) == 0)
        total += (int64_t)sb.st_size;
    char wal[4096];
    int n = snprintf(wal, sizeof wal, "%s-wal", s->path);
    if (n > 0 && (size_t)n < sizeof wal && stat(wal, &sb) == 0)
        total += (int64_t)sb.st_size;
    *bytes = total;
    return 0;
}

static int sq_checkpoint(store_conn *c)
{
    sq_conn *s = sq(c);
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    /* BUSY means a reader still uses old pages: the next checkpoint finishes the job. */
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return sq_fail(s, "checkpoint", rc);
    return 0;
}

static int sq_set_max_bytes(store_conn *c, int64_t bytes)
{
    sq_conn *s = sq(c);
    int64_t page = 4096;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        page = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    /* SQLite's own ceiling (0xfffffffe pages) stands for "no cap". */
    int64_t pages = bytes > 0 ? bytes / (page > 0 ? page : 4096) : 0xfffffffeLL;
    if (pages < 2)
        pages = 2;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld", (long long)pages);
    return sq_exec(s, sql);
}

static int sq_route_file_insert(store_conn *c, const char *text, size_t len, const char *source,
                                int64_t now_ms, int64_t *version)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_ROUTE_FILE_INSERT);
    if (!st)
        return SB_EIO;
    if (len > (size_t)INT32_MAX)
        return SB_ETOOBIG;
    sqlite3_bind_text(st, 1, text, (int)len, SQLITE_STATIC);
    bind_text(st, 2, source);
    sqlite3_bind_int64(st, 3, now_ms);
    int rc = sq_done(s, st, "route file insert");
    if (rc == 0)
        *version = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int sq_route_file_newest(store_conn *c, char **text, size_t *len, int64_t *version)
{
    sq_conn *s = sq(c);
    sqlite3_stmt *st = sq_stmt(s, ST_ROUTE_FILE_NEWEST);
    if (!st)
        return SB_EIO;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? SB_ENOTFOUND : sq_fail(s, "route file", rc);
    }
    const unsigned char *t = sqlite3_column_text(st, 1);
    size_t n = (size_t)sqlite3_column_bytes(st, 1);
    char *copy = malloc(n + 1);
    if (!copy) {
        sqlite3_reset(st);
        return SB_ENOMEM;
    }
    memcpy(copy, t ? (const char *)t : "", t ? n : 0);
    copy[t ? n : 0] = 0;
    *text = copy;
    *len = t ? n : 0;
    *version = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

const store_backend store_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .in_transaction = sq_in_transaction,
    .last_seq = sq_last_seq,
    .set_last_seq = sq_set_last_seq,
    .event_insert = sq_event_insert,
    .events_scan = sq_events_scan,
    .seq_before_time = sq_seq_before_time,
    .events_prune = sq_events_prune,
    .sink_cursor = sq_sink_cursor,
    .sink_set_cursor = sq_sink_set_cursor,
    .sink_status = sq_sink_status,
    .sinks_list = sq_sinks_list,
    .attempt_put = sq_attempt_put,
    .attempt_clear = sq_attempt_clear,
    .attempts_scan = sq_attempts_scan,
    .dead_put = sq_dead_put,
    .dead_delete = sq_dead_delete,
    .dead_request_retry = sq_dead_request_retry,
    .dead_scan = sq_dead_scan,
    .size_bytes = sq_size_bytes,
    .checkpoint = sq_checkpoint,
    .set_max_bytes = sq_set_max_bytes,
    .route_file_insert = sq_route_file_insert,
    .route_file_newest = sq_route_file_newest,
    .request_add = store_sqlite_request_add,
    .request_get = store_sqlite_request_get,
    .requests_queued = store_sqlite_requests_queued,
    .request_start = store_sqlite_request_start,
    .request_finish = store_sqlite_request_finish,
    .request_cancel = store_sqlite_request_cancel,
    .requests_abandon = store_sqlite_requests_abandon,
    .requests_prune = store_sqlite_requests_prune,
};

struct sqlite3 *store_sqlite_db(store_conn *c)
{
    return sq(c)->db;
}

int store_sqlite_fail(store_conn *c, const char *what, int rc)
{
    return sq_fail(sq(c), what, rc);
}
