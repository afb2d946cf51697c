/* outbox_control.h (app): how `switchboard outbox retry|replay` reaches a RUNNING daemon.
 *
 * One daemon per store: the delivery subsystem holds an exclusive flock(2) on "<store>.lock" for
 * its whole life (app_store_lock), so a second `serve` on the same store is refused and the CLI
 * can tell whether a daemon runs. When the lock is free the CLI works on the store itself (holding
 * the lock, so no daemon starts half-way); when it is held, the CLI queues a request in the
 * store's outbox_requests table (store.h) and waits. The daemon's poller (app_outbox_control_*)
 * looks at that table about once a second on libuv's thread pool (never on the loop), hands each
 * request to the outbox (outbox_retry / outbox_replay) and writes the outcome back.
 * docs/delivery.md ("Operations") describes the whole exchange.
 */
#ifndef SB_APP_OUTBOX_CONTROL_H
#define SB_APP_OUTBOX_CONTROL_H

#include "outbox/outbox.h"

#include <stdint.h>
#include <uv.h>

/* How often the daemon looks for requests. */
#define APP_OUTBOX_CONTROL_POLL_MS 1000

/* Takes the exclusive, non-blocking lock of the store at store_path (borrowed): the file
 * "<store_path>.lock", created when missing and never removed. Returns 0 and *fd (release with
 * app_store_unlock), SB_EEXIST when another process holds it (a daemon runs on this store), or
 * SB_EIO (cannot create or lock the file; errno-free: see the log line it wrote). Blocks briefly
 * on open(2): start-up and CLI only. */
int app_store_lock(const char *store_path, int *fd);
/* Releases the lock (fd < 0 is fine). */
void app_store_unlock(int fd);

typedef struct app_outbox_control app_outbox_control;

/* The outbox of the running daemon, or NULL when delivery is not running (no sink, closing). */
typedef outbox *(*app_outbox_get_fn)(void *ud);

/* Opens the store at store_path (borrowed; blocks: start-up), fails the requests a previous run
 * took and never finished, and starts polling for queued requests every
 * APP_OUTBOX_CONTROL_POLL_MS. get(ud) is asked for the outbox each time a request runs. Returns 0
 * and *out (owned: app_outbox_control_free) or an SB_E* code after logging one line. */
int app_outbox_control_start(uv_loop_t *loop, const char *store_path, app_outbox_get_fn get,
                             void *ud, app_outbox_control **out);
/* Stops polling (closes the timer). Outcomes that arrive afterwards (an outbox closing cancels a
 * replay) are kept for app_outbox_control_free. */
void app_outbox_control_stop(app_outbox_control *oc);
/* After the loop drained (the outbox is closed): writes the outcomes not yet written, fails the
 * requests still running, closes the store (blocks: shutdown) and frees oc (NULL is fine). */
void app_outbox_control_free(app_outbox_control *oc);

/* Requests finished (done or failed) by this daemon, for tests and metrics. */
uint64_t app_outbox_control_finished(const app_outbox_control *oc);

#endif
