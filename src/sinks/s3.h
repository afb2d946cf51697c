/* s3.h: the `s3` sink: events as NDJSON objects in a bucket, batched by time and size under a
 * dated key prefix, plus one JSON object per finished call (the CDR: each call.ended event).
 *
 * Keys (docs/sinks.md):  PREFIX events/YYYY/MM/DD/HH/<first seq, 20 digits>.ndjson
 *                        PREFIX cdr/YYYY/MM/DD/<Linkedid>.json
 * dated by the (first) event's UTC time. A retried batch writes the same key again, so a write
 * whose answer was lost is overwritten rather than duplicated. Requests are path-style
 * (ENDPOINT/BUCKET/KEY) and SigV4-signed (service "s3") when credentials exist, so any
 * S3-compatible server works.
 */
#ifndef SB_SINKS_S3_H
#define SB_SINKS_S3_H

#include "sinks/sink.h"

#include <stdint.h>

typedef struct sink_s3 sink_s3;

typedef struct sink_s3_config {
    const char *bucket;     /* required */
    const char *endpoint;   /* "scheme://host[:port]"; NULL = https://s3.REGION.amazonaws.com */
    const char *prefix;     /* key prefix; NULL = "switchboard/" ("" = none) */
    const char *region;     /* NULL = AWS_REGION / AWS_DEFAULT_REGION */
    const char *access_key; /* NULL = AWS_ACCESS_KEY_ID ...; none at all = unsigned */
    const char *secret_key;
    const char *session_token;
    size_t max_object_bytes;    /* an event object never grows past this; 0 = 8 MiB */
    uint32_t batch_events;      /* a delivery of this many events is written at once; 0 = 1000
                                   (set it to the outbox sink's batch_max) */
    uint32_t flush_interval_ms; /* otherwise at most one event object per interval: a small
                                   delivery waits for it (0 = 10 s) while the outbox gathers the
                                   next, larger one */
    bool is_cdr_disabled;       /* no per-call CDR objects */
    long timeout_ms;            /* per PUT; 0 = 30000 */
    sink_filter_spec filter;
} sink_s3_config;

extern const outbox_sink_ops sink_s3_ops;

/* Returns 0 and *out (owned: outbox_add_sink with sink_s3_ops, or sink_s3_ops.free), or
 * SB_EINVAL (no bucket, bad endpoint or filter), SB_ECONFIG (half a key pair, no region),
 * SB_ENOMEM. Borrows cfg (copied); loop and http must outlive the sink. The sink's timer is closed
 * by ops.free: run the loop afterwards. */
int sink_s3_new(uv_loop_t *loop, httpc *http, const sink_s3_config *cfg, sink_s3 **out);

/* The event object key for a batch starting at seq at time_ms, or the CDR key (is_cdr: id is the
 * call key). Appended to b. Exposed for tests and the docs. */
int sink_s3_key(sb_buf *b, const char *prefix, bool is_cdr, int64_t time_ms, int64_t seq,
                const char *id);

#endif
