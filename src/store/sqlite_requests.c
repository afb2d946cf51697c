/* sqlite_requests.c: the SQLite backend's outbox_requests functions (store.h, "operator requests
 * to the running daemon"; migration 4). Kept apart from sqlite.c, which holds the hot outbox
 * paths with their cached statements: these run a few times a second at most, so each prepares
 * its statement per call.
 */
#include "store/internal.h"

#include "core/error.h"

#include <sqlite3.h>
#include <string.h>

static const char *const state_names[] = {[STORE_REQ_QUEUED] = "queued",
                                          [STORE_REQ_RUNNING] = "running",
                                          [STORE_REQ_DONE] = "done",
                                          [STORE_REQ_FAILED] = "failed",
                                          [STORE_REQ_CANCELED] = "canceled"};

static store_request_state state_parse(const char *s)
{
    for (size_t i = 0; i < sizeof state_names / sizeof state_names[0]; i++)
        if (!strcmp(s, state_names[i]))
            return (store_request_state)i;
    return STORE_REQ_FAILED; /* cannot happen: only this file writes the column */
}

static const char *op_name(store_request_op op)
{
    return op == STORE_REQ_REPLAY ? "replay" : "retry";
}

/* Prepares sql on c; NULL after logging. */
static sqlite3_stmt *prepare(store_conn *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(store_sqlite_db(c), sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        store_sqlite_fail(c, "prepare request statement", rc);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* Steps a statement that returns no rows and finalizes it; *changes gets the rows it changed. */
static int run(store_conn *c, sqlite3_stmt *st, const char *what, int64_t *changes)
{
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_DONE ? 0 : store_sqlite_fail(c, what, rc);
    if (!err && changes)
        *changes = sqlite3_changes64(store_sqlite_db(c));
    sqlite3_finalize(st);
    return err;
}

#define REQUEST_COLUMNS                                                                            \
    "id, op, sink, from_ms, created_ms, deadline_ms, state, done_ms, status, result, error"

/* Calls cb for every row of st (columns REQUEST_COLUMNS) and finalizes it. */
static int scan(store_conn *c, sqlite3_stmt *st, store_request_cb cb, void *ud, bool *is_any)
{
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_request r = {
            .id = sqlite3_column_int64(st, 0),
            .op = !strcmp(col_text(st, 1), "replay") ? STORE_REQ_REPLAY : STORE_REQ_RETRY,
            .sink = col_text(st, 2),
            .from_ms = sqlite3_column_int64(st, 3),
            .created_ms = sqlite3_column_int64(st, 4),
            .deadline_ms = sqlite3_column_int64(st, 5),
            .state = state_parse(col_text(st, 6)),
            .done_ms = sqlite3_column_int64(st, 7),
            .status = sqlite3_column_int(st, 8),
            .result = sqlite3_column_int64(st, 9),
            .error = col_text(st, 10),
        };
        if (is_any)
            *is_any = true;
        if ((ret = cb(&r, ud)))
            break;
    }
    if (!ret && rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = store_sqlite_fail(c, "scan requests", rc);
    sqlite3_finalize(st);
    return ret;
}

int store_sqlite_request_add(store_conn *c, store_request_op op, const char *sink, int64_t from_ms,
                             int64_t now_ms, int64_t deadline_ms, int64_t *id)
{
    sqlite3_stmt *st = prepare(c, "INSERT INTO outbox_requests (op, sink, from_ms, created_ms,"
                                  " deadline_ms) VALUES (?, ?, ?, ?, ?)");
    if (!st)
        return SB_EIO;
    bind_text(st, 1, op_name(op));
    bind_text(st, 2, sink);
    sqlite3_bind_int64(st, 3, from_ms);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_int64(st, 5, deadline_ms);
    int err = run(c, st, "add request", NULL);
    if (!err && id)
        *id = sqlite3_last_insert_rowid(store_sqlite_db(c));
    return err;
}

int store_sqlite_request_get(store_conn *c, int64_t id, store_request_cb cb, void *ud)
{
    bool is_any = false;
    sqlite3_stmt *st = prepare(c, "SELECT " REQUEST_COLUMNS " FROM outbox_requests WHERE id = ?");
    if (!st)
        return SB_EIO;
    sqlite3_bind_int64(st, 1, id);
    int err = scan(c, st, cb, ud, &is_any);
    return err ? err : is_any ? 0 : SB_ENOTFOUND;
}

int store_sqlite_requests_queued(store_conn *c, int limit, store_request_cb cb, void *ud)
{
    sqlite3_stmt *st = prepare(c, "SELECT " REQUEST_COLUMNS " FROM outbox_requests"
                                  " WHERE state = 'queued' ORDER BY id LIMIT ?");
    if (!st)
        return SB_EIO;
    sqlite3_bind_int(st, 1, limit > 0 ? limit : -1);
    return scan(c, st, cb, ud, NULL);
}

int store_sqlite_request_start(store_conn *c, int64_t id, int64_t now_ms)
{
    (void)now_ms;
    int64_t n = 0;
    sqlite3_stmt *st = prepare(c, "UPDATE outbox_requests SET state = 'running'"
                                  " WHERE id = ? AND state = 'queued'");
    if (!st)
        return SB_EIO;
    sqlite3_bind_int64(st, 1, id);
    int err = run(c, st, "start request", &n);
    return err ? err : n ? 0 : SB_ENOTFOUND;
}

int store_sqlite_request_finish(store_conn *c, int64_t id, int status, int64_t result,
                                const char *error, int64_t now_ms)
{
    int64_t n = 0;
    sqlite3_stmt *st = prepare(c, "UPDATE outbox_requests SET state = ?, done_ms = ?, status = ?,"
                                  " result = ?, error = ?"
                                  " WHERE id = ? AND state IN ('queued', 'running')");
    if (!st)
        return SB_EIO;
    bind_text(st, 1, status < 0 ? "failed" : "done");
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int(st, 3, status < 0 ? status : 0);
    sqlite3_bind_int64(st, 4, result);
    bind_text(st, 5, status < 0 ? error : "");
    sqlite3_bind_int64(st, 6, id);
    int err = run(c, st, "finish request", &n);
    return err ? err : n ? 0 : SB_ENOTFOUND;
}

int store_sqlite_request_cancel(store_conn *c, int64_t id, int64_t now_ms)
{
    int64_t n = 0;
    sqlite3_stmt *st = prepare(c, "UPDATE outbox_requests SET state = 'canceled', done_ms = ?"
                                  " WHERE id = ? AND state = 'queued'");
    if (!st)
        return SB_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, id);
    int err = run(c, st, "cancel request", &n);
    return err ? err : n ? 0 : SB_ENOTFOUND;
}

int store_sqlite_requests_abandon(store_conn *c, const char *error, int64_t now_ms, int64_t *count)
{
    sqlite3_stmt *st = prepare(c, "UPDATE outbox_requests SET state = 'failed', done_ms = ?,"
                                  " status = ?, error = ? WHERE state = 'running'");
    if (!st)
        return SB_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, SB_ECANCELED);
    bind_text(st, 3, error);
    return run(c, st, "abandon requests", count);
}

int store_sqlite_requests_prune(store_conn *c, int64_t older_than_ms, int64_t *deleted)
{
    sqlite3_stmt *st = prepare(c, "DELETE FROM outbox_requests WHERE state IN ('done', 'failed',"
                                  " 'canceled') AND done_ms < ?");
    if (!st)
        return SB_EIO;
    sqlite3_bind_int64(st, 1, older_than_ms);
    return run(c, st, "prune requests", deleted);
}
