/* migrations.c: the store's schema, as an ordered list of steps applied at open.
 *
 * Never edit a step that has shipped: add a new one with the next version. Each step runs in its
 * own transaction and is recorded in schema_version, so a store opened by a newer build is
 * upgraded in place and a crash mid-upgrade leaves it at the last whole step. Planned next steps
 * (other issues): users, calls (CDR), dialer jobs.
 */
#include "store/internal.h"

const store_migration store_migrations[] = {
    {1, "outbox",
     /* meta: small key/value facts, e.g. last_seq, the highest outbox seq ever assigned (so seq
      * never restarts after every event was pruned). */
     "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
     "INSERT INTO meta (key, value) VALUES ('last_seq', 0);"
     /* events: the durable outbox. seq is the commit order; call_key (the Linkedid) partitions
      * delivery for sinks that keep order per call. No index on time_ms on purpose: it would
      * slow every insert, and only replay/prune look events up by time. */
     "CREATE TABLE events ("
     " seq INTEGER PRIMARY KEY,"
     " id TEXT NOT NULL UNIQUE,"
     " type TEXT NOT NULL,"
     " pbx TEXT NOT NULL,"
     " call_key TEXT NOT NULL,"
     " time_ms INTEGER NOT NULL,"
     " payload TEXT NOT NULL);"
     /* sink_cursors: every event with seq <= cursor was delivered (or dead-lettered). */
     "CREATE TABLE sink_cursors ("
     " sink TEXT PRIMARY KEY,"
     " cursor INTEGER NOT NULL,"
     " updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
     /* sink_attempts: events a sink failed to deliver and will retry (only failures get rows). */
     "CREATE TABLE sink_attempts ("
     " sink TEXT NOT NULL,"
     " seq INTEGER NOT NULL,"
     " attempts INTEGER NOT NULL,"
     " first_ms INTEGER NOT NULL,"
     " next_ms INTEGER NOT NULL,"
     " last_error TEXT NOT NULL,"
     " PRIMARY KEY (sink, seq)) WITHOUT ROWID;"
     /* dead_letters: a copy of the event (pruning events never loses one) and the last error. */
     "CREATE TABLE dead_letters ("
     " sink TEXT NOT NULL,"
     " seq INTEGER NOT NULL,"
     " id TEXT NOT NULL,"
     " type TEXT NOT NULL,"
     " pbx TEXT NOT NULL,"
     " call_key TEXT NOT NULL,"
     " time_ms INTEGER NOT NULL,"
     " payload TEXT NOT NULL,"
     " attempts INTEGER NOT NULL,"
     " last_error TEXT NOT NULL,"
     " dead_ms INTEGER NOT NULL,"
     " retry INTEGER NOT NULL DEFAULT 0,"
     " PRIMARY KEY (sink, seq)) WITHOUT ROWID;"},
    {2, "routes",
     /* route_files: every imported route file (docs/routing.md), kept whole and validated; the
      * daemon routes with the newest. Older versions stay for audit and rollback (routing's
      * src/routing/store.c reads and writes this table). */
     "CREATE TABLE route_files ("
     " version INTEGER PRIMARY KEY,"
     " text TEXT NOT NULL,"
     " source TEXT NOT NULL,"
     " imported_ms INTEGER NOT NULL);"},
    {3, "api_tokens",
     /* api_tokens: bearer tokens of the HTTP API (docs/api.md). Only the SHA-256 of a token is
      * kept (docs/decisions/0014); revoked rows stay for audit (src/api/tokens.c reads and writes
      * this table). */
     "CREATE TABLE api_tokens ("
     " id INTEGER PRIMARY KEY,"
     " hash BLOB NOT NULL UNIQUE,"
     " role TEXT NOT NULL,"
     " extension TEXT NOT NULL,"
     " name TEXT NOT NULL,"
     " created_ms INTEGER NOT NULL,"
     " revoked_ms INTEGER);"},
    {4, "outbox_requests",
     /* outbox_requests: `switchboard outbox retry|replay` asking the RUNNING daemon to do it
      * (docs/delivery.md "Operations"). The CLI inserts a queued row and polls it; the daemon
      * claims it (running), calls the outbox and writes the outcome back (done or failed, with
      * result = dead letters put back / the new cursor). A request not started by deadline_ms is
      * failed as expired; the CLI cancels its own request when it gives up waiting. */
     "CREATE TABLE outbox_requests ("
     " id INTEGER PRIMARY KEY,"
     " op TEXT NOT NULL,"
     " sink TEXT NOT NULL,"
     " from_ms INTEGER NOT NULL,"
     " created_ms INTEGER NOT NULL,"
     " deadline_ms INTEGER NOT NULL,"
     " state TEXT NOT NULL DEFAULT 'queued',"
     " done_ms INTEGER NOT NULL DEFAULT 0,"
     " status INTEGER NOT NULL DEFAULT 0,"
     " result INTEGER NOT NULL DEFAULT 0,"
     " error TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX outbox_requests_state ON outbox_requests (state, id);"},
};

const int store_migrations_count = (int)(sizeof(store_migrations) / sizeof(store_migrations[0]));
