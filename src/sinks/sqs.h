/* sqs.h: the `sqs` sink: events sent to an Amazon SQS queue with SendMessageBatch over the JSON
 * protocol (POST /, X-Amz-Target: AmazonSQS.SendMessageBatch, Content-Type
 * application/x-amz-json-1.0), SigV4 service "sqs".
 *
 * Up to 10 entries and max_request_bytes per request, requests one after the other in order.
 * Message body = the event JSON; message attributes `type` and `pbx`. FIFO queues (URL ending in
 * ".fifo"): MessageGroupId = the call key (Linkedid; the PBX name, or "switchboard", for events
 * without a call), MessageDeduplicationId = the event id. Per-entry failures of a 200 answer map
 * to per-event verdicts: SenderFault = dead letter, otherwise retry.
 */
#ifndef SB_SINKS_SQS_H
#define SB_SINKS_SQS_H

#include "sinks/sink.h"

typedef struct sink_sqs sink_sqs;

typedef struct sink_sqs_config {
    const char *queue_url;  /* required: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME */
    const char *endpoint;   /* where requests go; NULL = scheme://host of queue_url */
    const char *region;     /* NULL = AWS_REGION / AWS_DEFAULT_REGION */
    const char *access_key; /* NULL = AWS_ACCESS_KEY_ID ...; none at all = unsigned */
    const char *secret_key;
    const char *session_token;
    size_t max_request_bytes; /* 0 = 1 MiB (the SendMessageBatch total limit) */
    size_t max_message_bytes; /* larger events are dead letters; 0 = 256 KiB */
    long timeout_ms;          /* per request; 0 = 10000 */
    sink_filter_spec filter;
} sink_sqs_config;

extern const outbox_sink_ops sink_sqs_ops;

/* Returns 0 and *out (owned: outbox_add_sink with sink_sqs_ops, or sink_sqs_ops.free), or
 * SB_EINVAL, SB_ECONFIG (half a key pair, no region), SB_ENOMEM. Borrows cfg (copied). */
int sink_sqs_new(httpc *http, const sink_sqs_config *cfg, sink_sqs **out);

#endif
