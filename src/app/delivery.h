/* delivery.h (app): the `delivery` subsystem of the daemon: the durable outbox (src/outbox/) in the
 * store's file, one outbound HTTP client, and every [sink NAME] of the configuration
 * (src/sinks/factory.h). It subscribes to the bus's global stream: each normalized event that at
 * least one sink's filter wants is appended to the outbox (committed before any delivery attempt).
 * The outbox's size watch becomes a log line, a counter and an `alert` event on the bus
 * (docs/events.md, "alert"). docs/delivery.md describes the whole path.
 *
 * Test-only event source: when the environment variable SWITCHBOARD_SYNTHETIC_EVENTS is
 * "N[@RATE]", the subsystem publishes N fixture-shaped call events on the bus at RATE events/s
 * (default 10000), with deterministic ids, so a restarted daemon re-publishes the same set (the
 * outbox drops the ids it already stored). The chaos test uses it (tests/integration/chaos.sh).
 */
#ifndef SB_APP_DELIVERY_H
#define SB_APP_DELIVERY_H

#include "app/app.h"

#include <stdint.h>

/* Events per call of the synthetic source, and their types in order. */
#define APP_SYNTHETIC_PER_CALL 5
/* Calls in progress at once in the synthetic source (their events interleave). */
#define APP_SYNTHETIC_CONCURRENT 50

int app_delivery_init(sb_app *app);
int app_delivery_start(sb_app *app);
void app_delivery_stop(sb_app *app);
void app_delivery_free(sb_app *app);

/* Counters of the subsystem (metrics and tests). */
typedef struct app_delivery_stats {
    uint64_t seen;      /* events seen on the bus */
    uint64_t appended;  /* handed to the outbox */
    uint64_t skipped;   /* no sink wants them */
    uint64_t refused;   /* outbox_append refused (full, over size_max, closing) */
    uint64_t failed;    /* appended but not stored */
    uint64_t alerts;    /* store size alerts raised (warn or max crossed upwards) */
    uint64_t synthetic; /* synthetic events published */
    int sinks;          /* sinks added */
} app_delivery_stats;

/* Fills st; all zero when the subsystem is not running. */
void app_delivery_stats_get(const sb_app *app, app_delivery_stats *st);

/* The running outbox (borrowed until the subsystem stops), for the HTTP API's /v1/outbox routes;
 * NULL when delivery is not running (no [sink] configured, not started, or stopping). */
struct outbox;
struct outbox *app_delivery_outbox(const sb_app *app);
/* The store size thresholds in force ([store] size_warn, size_max, defaults applied); 0 when the
 * subsystem does not exist. */
void app_delivery_size_limits(const sb_app *app, int64_t *warn_bytes, int64_t *max_bytes);

#endif
