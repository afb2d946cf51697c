/* store.c: the public store API, forwarded to the connection's backend (internal.h).
 *
 * Only SQLite exists today; store_open picks it. A "postgresql://" path will pick the libpq
 * backend once it exists.
 */
#include "store/internal.h"

#include "core/error.h"

#include <string.h>

int store_open(const char *path, int mode, const store_options *opt, store_conn **out)
{
    if (!path || !out)
        return SB_EINVAL;
    *out = NULL;
    if (strncmp(path, "postgres", 8) == 0)
        return SB_ECONFIG; /* no PostgreSQL backend yet */
    return store_sqlite_backend.open(path, mode, opt, out);
}

void store_close(store_conn *c)
{
    if (c)
        c->be->close(c);
}

int store_schema_version(store_conn *c, int *version)
{
    return c->be->schema_version(c, version);
}

int store_schema_latest(void)
{
    return store_migrations[store_migrations_count - 1].version;
}

int store_begin(store_conn *c)
{
    return c->be->begin(c);
}

int store_commit(store_conn *c)
{
    return c->be->commit(c);
}

int store_rollback(store_conn *c)
{
    return c->be->rollback(c);
}

bool store_in_transaction(store_conn *c)
{
    return c->be->in_transaction(c);
}

int store_last_seq(store_conn *c, int64_t *seq)
{
    return c->be->last_seq(c, seq);
}

int store_set_last_seq(store_conn *c, int64_t seq)
{
    return c->be->set_last_seq(c, seq);
}

int store_event_insert(store_conn *c, const store_event *ev)
{
    return c->be->event_insert(c, ev);
}

int store_events_scan(store_conn *c, int64_t after, int64_t upto, int limit, store_event_cb cb,
                      void *ud)
{
    return c->be->events_scan(c, after, upto, limit, cb, ud);
}

int store_seq_before_time(store_conn *c, int64_t time_ms, int64_t *seq)
{
    return c->be->seq_before_time(c, time_ms, seq);
}

int store_events_prune(store_conn *c, int64_t upto, int64_t older_than_ms, int limit,
                       int64_t *deleted)
{
    return c->be->events_prune(c, upto, older_than_ms, limit, deleted);
}

int store_sink_cursor(store_conn *c, const char *sink, int64_t start_seq, int64_t *cursor)
{
    return c->be->sink_cursor(c, sink, start_seq, cursor);
}

int store_sink_set_cursor(store_conn *c, const char *sink, int64_t cursor, int64_t now_ms)
{
    return c->be->sink_set_cursor(c, sink, cursor, now_ms);
}

int store_sink_status_get(store_conn *c, const char *sink, store_sink_status *st)
{
    return c->be->sink_status(c, sink, st);
}

int store_sinks_list(store_conn *c, store_name_cb cb, void *ud)
{
    return c->be->sinks_list(c, cb, ud);
}

int store_attempt_put(store_conn *c, const char *sink, const store_attempt *a)
{
    return c->be->attempt_put(c, sink, a);
}

int store_attempt_clear(store_conn *c, const char *sink, int64_t seq)
{
    return c->be->attempt_clear(c, sink, seq);
}

int store_attempts_scan(store_conn *c, const char *sink, int64_t after, store_attempt_cb cb,
                        void *ud)
{
    return c->be->attempts_scan(c, sink, after, cb, ud);
}

int store_dead_put(store_conn *c, const char *sink, const store_event *ev, uint32_t attempts,
                   const char *last_error, int64_t now_ms)
{
    return c->be->dead_put(c, sink, ev, attempts, last_error, now_ms);
}

int store_dead_delete(store_conn *c, const char *sink, int64_t seq)
{
    return c->be->dead_delete(c, sink, seq);
}

int store_dead_request_retry(store_conn *c, const char *sink, int64_t from_ms, int64_t *count)
{
    return c->be->dead_request_retry(c, sink, from_ms, count);
}

int store_dead_scan(store_conn *c, const char *sink, int64_t after, bool is_retry_only, int limit,
                    store_dead_cb cb, void *ud)
{
    return c->be->dead_scan(c, sink, after, is_retry_only, limit, cb, ud);
}

int store_size_bytes(store_conn *c, int64_t *bytes)
{
    return c->be->size_bytes(c, bytes);
}

int store_set_max_bytes(store_conn *c, int64_t bytes)
{
    return c->be->set_max_bytes(c, bytes);
}

int store_checkpoint(store_conn *c)
{
    return c->be->checkpoint(c);
}

int store_route_file_insert(store_conn *c, const char *text, size_t len, const char *source,
                            int64_t now_ms, int64_t *version)
{
    return c->be->route_file_insert(c, text, len, source, now_ms, version);
}

int store_route_file_newest(store_conn *c, char **text, size_t *len, int64_t *version)
{
    return c->be->route_file_newest(c, text, len, version);
}

int store_request_add(store_conn *c, store_request_op op, const char *sink, int64_t from_ms,
                      int64_t now_ms, int64_t deadline_ms, int64_t *id)
{
    return c->be->request_add(c, op, sink, from_ms, now_ms, deadline_ms, id);
}

int store_request_get(store_conn *c, int64_t id, store_request_cb cb, void *ud)
{
    return c->be->request_get(c, id, cb, ud);
}

int store_requests_queued(store_conn *c, int limit, store_request_cb cb, void *ud)
{
    return c->be->requests_queued(c, limit, cb, ud);
}

int store_request_start(store_conn *c, int64_t id, int64_t now_ms)
{
    return c->be->request_start(c, id, now_ms);
}

int store_request_finish(store_conn *c, int64_t id, int status, int64_t result, const char *error,
                         int64_t now_ms)
{
    return c->be->request_finish(c, id, status, result, error, now_ms);
}

int store_request_cancel(store_conn *c, int64_t id, int64_t now_ms)
{
    return c->be->request_cancel(c, id, now_ms);
}

int store_requests_abandon(store_conn *c, const char *error, int64_t now_ms, int64_t *count)
{
    return c->be->requests_abandon(c, error, now_ms, count);
}

int store_requests_prune(store_conn *c, int64_t older_than_ms, int64_t *deleted)
{
    return c->be->requests_prune(c, older_than_ms, deleted);
}
