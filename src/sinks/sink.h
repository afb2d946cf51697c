/* sink.h: what every sink kind (webhook.c, s3.c, sqs.c, lambda.c) shares: the event filter of a
 * [sink NAME] section (types, PBXs, queues), AWS credentials (static keys or the standard AWS
 * environment variables), and the mapping of an HTTP answer to an outbox verdict.
 *
 * Every sink's impl struct starts with a sink_base, so sink_wants() serves as the outbox's
 * `wants` for all of them.
 */
#ifndef SB_SINKS_SINK_H
#define SB_SINKS_SINK_H

#include "core/buf.h"
#include "net/httpc.h"
#include "outbox/outbox.h"

#include <stdbool.h>
#include <stddef.h>

/* A filter as written in the configuration: comma-separated lists; NULL or "" = any. A type
 * ending in '*' matches by prefix ("call.*"). Queues match the event's top-level "queue" field
 * (events without one never match a queue filter). */
typedef struct sink_filter_spec {
    const char *types;
    const char *pbxs;
    const char *queues;
} sink_filter_spec;

typedef struct sink_filter {
    char **types, **pbxs, **queues;
    size_t ntypes, npbxs, nqueues;
} sink_filter;

/* The first member of every sink's impl. */
typedef struct sink_base {
    const char *kind; /* "webhook", "s3", ... */
    sink_filter filter;
    httpc *http; /* borrowed: outlives the sink */
    bool is_canceled;
} sink_base;

/* Parses spec (borrowed) into f (owned: sink_filter_free). 0, SB_EINVAL (empty item) or
 * SB_ENOMEM. */
int sink_filter_parse(sink_filter *f, const sink_filter_spec *spec);
void sink_filter_free(sink_filter *f);
bool sink_filter_match(const sink_filter *f, const outbox_event *ev);

/* outbox_sink_ops.wants for every sink whose impl starts with a sink_base. */
bool sink_wants(void *impl, const outbox_event *ev);

/* AWS credentials and region, owned strings (sink_aws_free). */
typedef struct sink_aws {
    char *region;
    char *access_key;
    char *secret_key;    /* never logged */
    char *session_token; /* NULL when none */
} sink_aws;

/* Fills a from the given values (borrowed; NULL/"" = not given), falling back to the environment:
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION then
 * AWS_DEFAULT_REGION. Returns 0 with a->access_key NULL when no credentials exist at all
 * (unsigned requests: function URLs with AuthType NONE, test servers), SB_ECONFIG when only half
 * of a key pair or no region is found, or SB_ENOMEM. */
int sink_aws_resolve(sink_aws *a, const char *region, const char *access_key,
                     const char *secret_key, const char *session_token);
void sink_aws_free(sink_aws *a);
/* The httpc signing parameters for service, or NULL when a has no credentials. Borrows a. */
const httpc_aws *sink_aws_sign(const sink_aws *a, const char *service, httpc_aws *out);

/* The webhook rule for an HTTP answer: 2xx = OK; 408, 429, other statuses and transport errors =
 * RETRY (honouring Retry-After); other 4xx = DEAD. Writes the reason into why (n bytes) and points
 * out->error at it. */
void sink_http_verdict(const httpc_resp *r, outbox_result *out, char *why, size_t n);

/* The rule for AWS APIs (S3, SQS, Lambda): 2xx = OK; 5xx, 408, 429, 401, 403 and 404 (throttling,
 * expired or rotated credentials, a bucket, queue or function being created) and transport errors
 * = RETRY, so that a configuration fix loses nothing; other 4xx (a request AWS will never accept:
 * too large, malformed) = DEAD. */
void sink_aws_verdict(const httpc_resp *r, outbox_result *out, char *why, size_t n);

/* Appends to b the percent-encoding of s (RFC 3986 unreserved kept; '/' kept when keep_slash). */
int sink_url_escape(sb_buf *b, const char *s, bool keep_slash);

/* Appends s to b as a JSON string literal (quotes included). 0, SB_ETOOBIG or SB_ENOMEM. */
int sink_json_str(sb_buf *b, const char *s);

#endif
