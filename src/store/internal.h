/* internal.h: what the store's files share: the backend table and the migration list.
 *
 * store.c forwards every public call through the backend of the connection, so a PostgreSQL
 * backend (libpq) is one more table like store_sqlite_backend, with its own migration SQL; callers
 * never see SQL.
 */
#ifndef SB_STORE_INTERNAL_H
#define SB_STORE_INTERNAL_H

#include "store/store.h"

typedef struct store_backend {
    const char *name;
    int (*open)(const char *path, int mode, const store_options *opt, store_conn **out);
    void (*close)(store_conn *c);
    int (*schema_version)(store_conn *c, int *version);
    int (*begin)(store_conn *c);
    int (*commit)(store_conn *c);
    int (*rollback)(store_conn *c);
    bool (*in_transaction)(store_conn *c);
    int (*last_seq)(store_conn *c, int64_t *seq);
    int (*set_last_seq)(store_conn *c, int64_t seq);
    int (*event_insert)(store_conn *c, const store_event *ev);
    int (*events_scan)(store_conn *c, int64_t after, int64_t upto, int limit, store_event_cb cb,
                       void *ud);
    int (*seq_before_time)(store_conn *c, int64_t time_ms, int64_t *seq);
    int (*events_prune)(store_conn *c, int64_t upto, int64_t older_than_ms, int limit,
                        int64_t *deleted);
    int (*sink_cursor)(store_conn *c, const char *sink, int64_t start_seq, int64_t *cursor);
    int (*sink_set_cursor)(store_conn *c, const char *sink, int64_t cursor, int64_t now_ms);
    int (*sink_status)(store_conn *c, const char *sink, store_sink_status *st);
    int (*sinks_list)(store_conn *c, store_name_cb cb, void *ud);
    int (*attempt_put)(store_conn *c, const char *sink, const store_attempt *a);
    int (*attempt_clear)(store_conn *c, const char *sink, int64_t seq);
    int (*attempts_scan)(store_conn *c, const char *sink, int64_t after, store_attempt_cb cb,
                         void *ud);
    int (*dead_put)(store_conn *c, const char *sink, const store_event *ev, uint32_t attempts,
                    const char *last_error, int64_t now_ms);
    int (*dead_delete)(store_conn *c, const char *sink, int64_t seq);
    int (*dead_request_retry)(store_conn *c, const char *sink, int64_t from_ms, int64_t *count);
    int (*dead_scan)(store_conn *c, const char *sink, int64_t after, bool is_retry_only, int limit,
                     store_dead_cb cb, void *ud);
    int (*size_bytes)(store_conn *c, int64_t *bytes);
    int (*checkpoint)(store_conn *c);
    int (*set_max_bytes)(store_conn *c, int64_t bytes);
    int (*route_file_insert)(store_conn *c, const char *text, size_t len, const char *source,
                             int64_t now_ms, int64_t *version);
    int (*route_file_newest)(store_conn *c, char **text, size_t *len, int64_t *version);
    int (*request_add)(store_conn *c, store_request_op op, const char *sink, int64_t from_ms,
                       int64_t now_ms, int64_t deadline_ms, int64_t *id);
    int (*request_get)(store_conn *c, int64_t id, store_request_cb cb, void *ud);
    int (*requests_queued)(store_conn *c, int limit, store_request_cb cb, void *ud);
    int (*request_start)(store_conn *c, int64_t id, int64_t now_ms);
    int (*request_finish)(store_conn *c, int64_t id, int status, int64_t result, const char *error,
                          int64_t now_ms);
    int (*request_cancel)(store_conn *c, int64_t id, int64_t now_ms);
    int (*requests_abandon)(store_conn *c, const char *error, int64_t now_ms, int64_t *count);
    int (*requests_prune)(store_conn *c, int64_t older_than_ms, int64_t *deleted);
} store_backend;

/* Every connection starts with a pointer to its backend, so store.c can dispatch. */
struct store_conn {
    const store_backend *be;
};

/* One schema step. Steps run in order, each in its own transaction, exactly once per store. */
typedef struct store_migration {
    int version;
    const char *name;
    const char *sqlite_sql; /* several statements, run with sqlite3_exec */
} store_migration;

extern const store_migration store_migrations[];
extern const int store_migrations_count;

extern const store_backend store_sqlite_backend;

/* The SQLite backend's outbox_requests functions (sqlite_requests.c), in the table above. */
struct sqlite3;
struct sqlite3 *store_sqlite_db(store_conn *c);
int store_sqlite_fail(store_conn *c, const char *what, int rc);
int store_sqlite_request_add(store_conn *c, store_request_op op, const char *sink, int64_t from_ms,
                             int64_t now_ms, int64_t deadline_ms, int64_t *id);
int store_sqlite_request_get(store_conn *c, int64_t id, store_request_cb cb, void *ud);
int store_sqlite_requests_queued(store_conn *c, int limit, store_request_cb cb, void *ud);
int store_sqlite_request_start(store_conn *c, int64_t id, int64_t now_ms);
int store_sqlite_request_finish(store_conn *c, int64_t id, int status, int64_t result,
                                const char *error, int64_t now_ms);
int store_sqlite_request_cancel(store_conn *c, int64_t id, int64_t now_ms);
int store_sqlite_requests_abandon(store_conn *c, const char *error, int64_t now_ms, int64_t *count);
int store_sqlite_requests_prune(store_conn *c, int64_t older_than_ms, int64_t *deleted);

#endif
