/* lambda.c: the `lambda` sink (lambda.h). One invocation at a time, in order; a retryable failure
 * stops the delivery (the rest is RETRY, not sent), a dead one moves on to the next event. */
#include "sinks/lambda.h"

#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "lambda"
#define LB_WHY 192

struct sink_lambda {
    sink_base base; /* first: sink_wants() */
    char *target;   /* the full URL invoked */
    sink_aws aws;
    bool is_url, is_async, is_batch;
    long timeout_ms;
};

typedef struct lb_job {
    sink_lambda *l;
    outbox_delivery *d;
    outbox_done_cb done;
    const outbox_event *const *batch;
    size_t n;
    size_t pos;
    outbox_result *res;
    char (*why)[LB_WHY];
} lb_job;

static void set_res(lb_job *j, size_t i, outbox_verdict v, uint32_t after, const char *why)
{
    j->res[i] = (outbox_result){v, after, NULL};
    if (v != OUTBOX_OK) {
        snprintf(j->why[i], LB_WHY, "%s", why ? why : "");
        j->res[i].error = j->why[i];
    }
}

static void job_finish(lb_job *j)
{
    j->done(j->d, j->res);
    free(j->res);
    free(j->why);
    free(j);
}

static void send_next(lb_job *j);

static void on_resp(const httpc_resp *r, void *ud)
{
    lb_job *j = ud;
    outbox_result v;
    char why[LB_WHY];
    size_t first = j->l->is_batch ? 0 : j->pos, end = j->l->is_batch ? j->n : j->pos + 1;
    sb_slice ferr = httpc_resp_header(r, "X-Amz-Function-Error");
    sink_aws_verdict(r, &v, why, sizeof why);
    if (v.verdict == OUTBOX_OK && ferr.ptr) {
        /* the function ran and failed: 200 with X-Amz-Function-Error (Handled|Unhandled) */
        char ex[96];
        size_t k = 0;
        for (size_t i = 0; i < r->body.len && k + 1 < sizeof ex; i++)
            ex[k++] = (r->body.ptr[i] >= 0x20 && r->body.ptr[i] < 0x7f) ? r->body.ptr[i] : ' ';
        ex[k] = '\0';
        snprintf(why, sizeof why, "function error %.*s: %s", (int)ferr.len, ferr.ptr, ex);
        v.verdict = OUTBOX_RETRY;
        v.retry_after_ms = 0;
    }
    for (size_t i = first; i < end; i++)
        set_res(j, i, v.verdict, v.retry_after_ms, why);
    j->pos = end;
    if (v.verdict == OUTBOX_RETRY) {
        for (size_t i = end; i < j->n; i++)
            set_res(j, i, OUTBOX_RETRY, v.retry_after_ms, "not sent: an earlier event failed");
        j->pos = j->n;
    }
    if (j->pos >= j->n)
        job_finish(j);
    else
        send_next(j);
}

static void send_next(lb_job *j)
{
    sink_lambda *l = j->l;
    sb_buf body;
    httpc_aws a;
    const char *hdrs[4];
    size_t k = 0;
    const char *bp;
    size_t blen;
    int rc;
    char why[LB_WHY];
    sb_buf_init(&body, 6u * 1024 * 1024);
    if (l->base.is_canceled) {
        rc = SB_ECANCELED;
        goto fail;
    }
    hdrs[k++] = "Content-Type: application/json";
    if (!l->is_url)
        hdrs[k++] =
            l->is_async ? "X-Amz-Invocation-Type: Event" : "X-Amz-Invocation-Type: RequestResponse";
    hdrs[k] = NULL;
    if (l->is_batch) {
        rc = sb_buf_puts(&body, "{\"events\":[");
        for (size_t i = 0; !rc && i < j->n; i++) {
            if (i)
                rc = sb_buf_append(&body, ",", 1);
            if (!rc)
                rc = sb_buf_append(&body, j->batch[i]->payload, j->batch[i]->payload_len);
        }
        if (!rc)
            rc = sb_buf_puts(&body, "]}");
        if (rc)
            goto fail;
        bp = body.data;
        blen = body.len;
    } else {
        bp = j->batch[j->pos]->payload;
        blen = j->batch[j->pos]->payload_len;
    }
    rc = httpc_request(l->base.http,
                       &(httpc_req){.method = "POST",
                                    .url = l->target,
                                    .headers = hdrs,
                                    .body = {bp, blen},
                                    .timeout_ms = l->timeout_ms,
                                    .max_body = 8192,
                                    .aws = sink_aws_sign(&l->aws, "lambda", &a)},
                       on_resp, j);
    sb_buf_free(&body);
    if (rc == 0)
        return;
fail:
    sb_buf_free(&body);
    snprintf(why, sizeof why, "not sent: %s",
             rc == SB_ECANCELED ? "shutting down" : sb_strerror(rc));
    for (size_t i = l->is_batch ? 0 : j->pos; i < j->n; i++)
        set_res(j, i, OUTBOX_RETRY, 0, why);
    job_finish(j);
}

static int lb_deliver(void *impl, const outbox_event *const *batch, size_t n, outbox_done_cb done,
                      outbox_delivery *d)
{
    lb_job *j = calloc(1, sizeof *j);
    if (!j)
        return SB_ENOMEM;
    *j = (lb_job){.l = impl, .d = d, .done = done, .batch = batch, .n = n};
    j->res = calloc(n, sizeof *j->res);
    j->why = calloc(n, sizeof *j->why);
    if (!j->res || !j->why) {
        free(j->res);
        free(j->why);
        free(j);
        return SB_ENOMEM;
    }
    send_next(j);
    return 0;
}

static void lb_cancel(void *impl)
{
    ((sink_lambda *)impl)->base.is_canceled = true;
}

static void lb_free(void *impl)
{
    sink_lambda *l = impl;
    if (!l)
        return;
    sink_filter_free(&l->base.filter);
    sink_aws_free(&l->aws);
    free(l->target);
    free(l);
}

const outbox_sink_ops sink_lambda_ops = {
    .kind = "lambda",
    .wants = sink_wants,
    .deliver = lb_deliver,
    .cancel = lb_cancel,
    .free = lb_free,
};

int sink_lambda_new(httpc *http, const sink_lambda_config *cfg, sink_lambda **out)
{
    sink_lambda *l;
    sb_buf t;
    int rc;
    *out = NULL;
    if (!http || !cfg || !cfg->function == !cfg->url || (cfg->function && !*cfg->function))
        return SB_EINVAL;
    /* A name only: an ARN (or NAME:QUALIFIER) puts ':' in the path, which the Lambda API signs
     * double-encoded while curl 7.88 signs the path as sent, so every call would be refused. */
    if (cfg->function && strchr(cfg->function, ':'))
        return SB_EINVAL;
    if (cfg->url && strncmp(cfg->url, "https://", 8) != 0 && strncmp(cfg->url, "http://", 7) != 0)
        return SB_EINVAL;
    if (cfg->endpoint && strncmp(cfg->endpoint, "http", 4) != 0)
        return SB_EINVAL;
    l = calloc(1, sizeof *l);
    if (!l)
        return SB_ENOMEM;
    sb_buf_init(&t, 4096);
    l->base.kind = "lambda";
    l->base.http = http;
    if ((rc = sink_filter_parse(&l->base.filter, &cfg->filter)) ||
        (rc = sink_aws_resolve(&l->aws, cfg->region, cfg->access_key, cfg->secret_key,
                               cfg->session_token)))
        goto fail;
    l->is_url = cfg->url != NULL;
    l->is_async = cfg->is_async;
    l->is_batch = cfg->is_batch;
    l->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    if (l->is_url) {
        rc = sb_buf_puts(&t, cfg->url);
    } else {
        if (!cfg->endpoint && !l->aws.region) {
            rc = SB_ECONFIG;
            goto fail;
        }
        rc = cfg->endpoint ? sb_buf_puts(&t, cfg->endpoint)
                           : sb_buf_printf(&t, "https://lambda.%s.amazonaws.com", l->aws.region);
        while (!rc && t.len && t.data[t.len - 1] == '/')
            t.data[--t.len] = '\0';
        if (!rc && !(rc = sb_buf_puts(&t, "/2015-03-31/functions/")))
            rc = sink_url_escape(&t, cfg->function, false);
        if (!rc)
            rc = sb_buf_puts(&t, "/invocations");
        if (!rc && cfg->qualifier && *cfg->qualifier && !(rc = sb_buf_puts(&t, "?Qualifier=")))
            rc = sink_url_escape(&t, cfg->qualifier, false);
    }
    if (rc)
        goto fail;
    l->target = sb_buf_steal(&t);
    *out = l;
    return 0;
fail:
    sb_buf_free(&t);
    lb_free(l);
    return rc;
}
