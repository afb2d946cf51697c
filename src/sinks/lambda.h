/* lambda.h: the `lambda` sink: events handed to an AWS Lambda function, through the Invoke API
 * (POST /2015-03-31/functions/NAME/invocations[?Qualifier=Q] on lambda.REGION.amazonaws.com) or a
 * function URL (https://ID.lambda-url.REGION.on.aws/), signed with SigV4 (service "lambda") when
 * credentials exist (a function URL with AuthType NONE needs none).
 *
 * Payload: the event JSON, or {"events":[...]} in batch mode. Invocations run one after the other
 * in order. Invoke API: 200/202/204 = delivered unless X-Amz-Function-Error is set (the function
 * failed: retried); errors follow the AWS rule of sink.h (429, 5xx, 401/403/404 retried, other 4xx
 * such as 413 RequestTooLarge dead).
 */
#ifndef SB_SINKS_LAMBDA_H
#define SB_SINKS_LAMBDA_H

#include "sinks/sink.h"

typedef struct sink_lambda sink_lambda;

typedef struct sink_lambda_config {
    const char *function;   /* name or ARN for the Invoke API; or NULL with url */
    const char *url;        /* a function URL instead of the Invoke API */
    const char *qualifier;  /* version or alias (Invoke API); NULL = $LATEST */
    const char *endpoint;   /* Invoke API endpoint; NULL = https://lambda.REGION.amazonaws.com */
    bool is_async;          /* InvocationType Event (202: queued by Lambda, which retries
                               itself) instead of RequestResponse */
    bool is_batch;          /* one invocation per delivery: {"events":[...]} */
    const char *region;     /* NULL = AWS_REGION / AWS_DEFAULT_REGION */
    const char *access_key; /* NULL = AWS_ACCESS_KEY_ID ...; none at all = unsigned */
    const char *secret_key;
    const char *session_token;
    long timeout_ms; /* per invocation; 0 = 60000 */
    sink_filter_spec filter;
} sink_lambda_config;

extern const outbox_sink_ops sink_lambda_ops;

/* Returns 0 and *out (owned: outbox_add_sink with sink_lambda_ops, or sink_lambda_ops.free), or
 * SB_EINVAL (neither or both of function/url, a function with ':', bad URL), SB_ECONFIG (half a key
 * pair, no region for the Invoke API or for signing), SB_ENOMEM. Borrows cfg (copied). */
int sink_lambda_new(httpc *http, const sink_lambda_config *cfg, sink_lambda **out);

#endif
