/* httpc.h: the daemon's one outbound HTTP client, on the libuv loop.
 *
 * libcurl's multi-socket API driven by uv_poll_t/uv_timer_t (curl's "multi-uv" pattern): every
 * transfer is non-blocking on the loop thread, no thread per request. Used by the sinks (webhook,
 * S3, SQS, Lambda), the routing `decide` action and the CRM sync. Each accepted request gets
 * exactly one callback, on the loop, never from inside httpc_request(); httpc_free() completes
 * every pending request with SB_ECANCELED. Limits: concurrent transfers (the rest wait in a
 * bounded FIFO queue), response body and header sizes, a timeout per request.
 */
#ifndef SB_NET_HTTPC_H
#define SB_NET_HTTPC_H

#include "core/slice.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <uv.h>

typedef struct httpc httpc;

typedef struct httpc_opts {
    unsigned max_inflight;   /* transfers running at once; default 64 */
    unsigned max_queued;     /* requests waiting for a slot; beyond it httpc_request fails with
                                SB_ETOOBIG; default 10000 */
    long timeout_ms;         /* default per request; default 10000 */
    long connect_timeout_ms; /* default 5000 (capped by the request's timeout) */
    size_t max_body;         /* response body bytes kept; the rest is dropped (truncated=true);
                                default 1 MiB */
    size_t max_headers;      /* response header bytes kept; default 16 KiB */
    unsigned max_host_conns; /* connections per host; 0 = no limit beyond max_inflight */
    const char *user_agent;  /* default "switchboard/VERSION" (copied) */
} httpc_opts;

/* AWS Signature Version 4 by libcurl (CURLOPT_AWS_SIGV4 "aws:amz:REGION:SERVICE"). All strings
 * are borrowed for the duration of httpc_request() only. */
typedef struct httpc_aws {
    const char *region;  /* e.g. "eu-west-1" */
    const char *service; /* "s3", "sqs", "lambda" */
    const char *access_key;
    const char *secret_key;    /* never logged */
    const char *session_token; /* NULL, or an STS token sent as X-Amz-Security-Token */
} httpc_aws;

typedef struct httpc_req {
    const char *method;         /* "GET", "POST", "PUT", "DELETE", "HEAD"...; NULL = GET, or
                                   POST when the body is not empty */
    const char *url;            /* http:// or https:// only */
    const char *const *headers; /* "Name: value" lines, NULL-terminated, or NULL */
    sb_slice body;              /* request body; COPIED by httpc_request, unless: */
    bool is_body_given;         /* body.ptr is a malloc'd buffer that httpc_request takes over
                                   (no copy; freed by httpc, also when httpc_request fails) */
    long timeout_ms;            /* whole request, counted from httpc_request (queueing
                                   included); 0 = the client's default */
    size_t max_body;            /* response body cap; 0 = the client's default */
    const httpc_aws *aws;       /* NULL = unsigned */
} httpc_req;

typedef struct httpc_resp {
    int err;           /* 0 when a complete HTTP response arrived (whatever its status);
                          SB_ETIMEDOUT, SB_EDISCONN (refused, reset, closed early),
                          SB_ENOTFOUND (name not resolved), SB_EINVAL (bad URL), SB_EAUTH (TLS),
                          SB_ENOMEM, SB_EIO, or SB_ECANCELED (httpc_free) */
    long status;       /* HTTP status of the last response, 0 when none arrived */
    const char *error; /* what went wrong, in words ("" when err == 0); never NULL */
    sb_slice body;     /* at most max_body bytes of the response body */
    bool truncated;    /* the body was longer than max_body */
    sb_slice headers;  /* the last response's raw header block (status line excluded),
                          "Name: value\r\n" lines; look up with httpc_resp_header() */
    double total_s;    /* time from httpc_request to completion, seconds */
} httpc_resp;

/* Runs once per accepted request, on the loop thread. resp and everything it points to are
 * borrowed until the callback returns. The callback may call httpc_request() and httpc_free(). */
typedef void (*httpc_cb)(const httpc_resp *resp, void *ud);

/* Returns owned client bound to loop (free with httpc_free()), or NULL when out of memory or
 * libcurl fails to initialise. opts may be NULL; zero fields take the defaults. */
httpc *httpc_new(uv_loop_t *loop, const httpc_opts *opts);

/* Cancels every pending request (each callback runs once, synchronously, with SB_ECANCELED) and
 * releases the client. The last memory is released by libuv close callbacks: run the loop after
 * this call (uv_run) before closing the loop. Safe to call from inside a request callback. */
void httpc_free(httpc *c);

/* Starts a request. req and everything it points to are borrowed for this call only (URL,
 * headers, body and credentials are copied; a body with is_body_given is taken instead). Returns 0
 * (cb will run exactly once, later, on the loop) or SB_EINVAL (no URL, bad header line), SB_ETOOBIG
 * (queue full), SB_ENOMEM, SB_ECANCELED (client being freed); on error cb never runs. */
int httpc_request(httpc *c, const httpc_req *req, httpc_cb cb, void *ud);

/* The loop the client runs on (borrowed). */
uv_loop_t *httpc_loop(const httpc *c);

/* Requests accepted and not yet completed (running + queued). */
size_t httpc_pending(const httpc *c);

/* Counters since httpc_new, for metrics. */
typedef struct httpc_stats {
    size_t running, queued;       /* now */
    unsigned long long requests;  /* accepted by httpc_request */
    unsigned long long responses; /* completed with an HTTP response (any status) */
    unsigned long long errors;    /* completed without one (err != 0), cancellations included */
    unsigned long long timeouts;  /* of those, SB_ETIMEDOUT */
} httpc_stats;
void httpc_stats_get(const httpc *c, httpc_stats *st);

/* Finds a response header by name (ASCII case-insensitive); returns its value, trimmed, borrowed
 * from resp, or a slice with ptr == NULL when absent. */
sb_slice httpc_resp_header(const httpc_resp *resp, const char *name);

/* Parses a Retry-After value: delta-seconds or an HTTP-date (compared with now). Returns 0 and
 * *ms (>= 0, capped at 24 h), or SB_EINVAL. */
int httpc_parse_retry_after(sb_slice value, time_t now, long *ms);

/* Retry-After of a response in milliseconds, or -1 when absent or unreadable. */
long httpc_retry_after_ms(const httpc_resp *resp);

#endif
