/* webhook.h: the `webhook` sink: events as JSON POSTs to one URL, signed with HMAC-SHA256.
 *
 * Single mode sends one event per request (body = the event JSON, Idempotency-Key = event id);
 * batch mode sends one JSON array per outbox batch. Every request carries
 * X-Switchboard-Timestamp (Unix seconds) and, when a secret is set,
 * X-Switchboard-Signature: v1=hex(HMAC-SHA256(secret, timestamp + "." + body)); docs/sinks.md
 * shows how a receiver verifies it. 2xx = delivered; 4xx other than 408/429 = dead letter;
 * anything else (and network errors, timeouts) = retry, honouring Retry-After.
 */
#ifndef SB_SINKS_WEBHOOK_H
#define SB_SINKS_WEBHOOK_H

#include "sinks/sink.h"

typedef struct sink_webhook sink_webhook;

typedef struct sink_webhook_config {
    const char *url;            /* http:// or https:// */
    const char *secret;         /* HMAC key; NULL/"" = requests are not signed */
    bool is_batch;              /* one JSON array per outbox batch instead of one POST per event */
    bool is_partitioned;        /* single mode: events of different calls go out concurrently
                                   (set it when the outbox sink is partitioned); otherwise one
                                   request at a time, in order */
    long timeout_ms;            /* per request; 0 = 10000 */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated (copied) */
    sink_filter_spec filter;
} sink_webhook_config;

/* The outbox vtable of the webhook kind. */
extern const outbox_sink_ops sink_webhook_ops;

/* Returns 0 and *out (owned: hand it to outbox_add_sink with sink_webhook_ops, or free it with
 * sink_webhook_ops.free), or SB_EINVAL (no URL, bad filter or header), SB_ENOMEM. Borrows cfg
 * (copied) and http (must outlive the sink). */
int sink_webhook_new(httpc *http, const sink_webhook_config *cfg, sink_webhook **out);

/* The signature header value for body sent at timestamp ts: "v1=" + 64 hex digits, written to
 * out (at least 68 bytes). Exposed for tests and tools. 0 or SB_EIO. */
int sink_webhook_sign(const char *secret, long long ts, const char *body, size_t len, char *out,
                      size_t outsize);

#endif
