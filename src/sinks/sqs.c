/* sqs.c: the `sqs` sink (sqs.h): SendMessageBatch over the JSON protocol.
 *
 * A delivery is cut into chunks (10 entries, max_request_bytes) sent one after the other, so a
 * FIFO group sees its messages in order. A chunk answered with a retryable error stops the
 * delivery (the rest is RETRY, not sent). A chunk refused as a whole for a reason that a retry will
 * not cure (400 InvalidMessageContents, ...) is sent again one entry per request, so that only the
 * culprit goes to the dead letters.
 */
#include "sinks/sqs.h"

#include "core/error.h"
#include "core/log.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "sqs"
#define SQS_WHY 192
#define SQS_MAX_ENTRIES 10

struct sink_sqs {
    sink_base base; /* first: sink_wants() */
    char *queue_url, *endpoint;
    sink_aws aws;
    bool is_fifo;
    size_t max_request_bytes, max_message_bytes;
    long timeout_ms;
    bool is_size_known;      /* configured, or asked already */
    bool is_asking;          /* GetQueueAttributes in flight */
    bool is_freed;           /* ops.free came while it was: the answer frees */
    struct sqs_job *waiting; /* the first delivery, waiting for the answer */
};

typedef struct sqs_job {
    sink_sqs *q;
    outbox_delivery *d;
    outbox_done_cb done;
    const outbox_event *const *batch;
    size_t n;
    outbox_result *res;
    char (*why)[SQS_WHY];
    size_t pos;     /* first event of the chunk in flight */
    size_t count;   /* events in it */
    size_t max_per; /* entries per request: 10, or 1 after a whole-chunk refusal */
} sqs_job;

static void set_res(sqs_job *j, size_t i, outbox_verdict v, uint32_t after, const char *why)
{
    j->res[i] = (outbox_result){v, after, NULL};
    if (v != OUTBOX_OK) {
        snprintf(j->why[i], SQS_WHY, "%s", why ? why : "");
        j->res[i].error = j->why[i];
    }
}

static void job_finish(sqs_job *j)
{
    j->done(j->d, j->res);
    free(j->res);
    free(j->why);
    free(j);
}

static int sha256_hex(const char *s, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int l = 0;
    if (!EVP_Digest(s, strlen(s), md, &l, EVP_sha256(), NULL))
        return SB_EIO;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

/* Appends one entry; Id "e<index in the chunk>". */
static int add_entry(sink_sqs *q, sb_buf *b, size_t k, const outbox_event *ev)
{
    int rc;
    const char *group;
    char dedup[65];
    if ((rc = sb_buf_printf(b, "%s{\"Id\":\"e%zu\",\"MessageBody\":", k ? "," : "", k)))
        return rc;
    {
        /* the payload is NUL-terminated JSON text: quote it as a string */
        if ((rc = sink_json_str(b, ev->payload)))
            return rc;
    }
    if ((rc = sb_buf_puts(b, ",\"MessageAttributes\":{\"type\":{\"DataType\":\"String\","
                             "\"StringValue\":")) ||
        (rc = sink_json_str(b, ev->type[0] ? ev->type : "unknown")) || (rc = sb_buf_puts(b, "}")))
        return rc;
    if (ev->pbx[0] &&
        ((rc = sb_buf_puts(b, ",\"pbx\":{\"DataType\":\"String\",\"StringValue\":")) ||
         (rc = sink_json_str(b, ev->pbx)) || (rc = sb_buf_puts(b, "}"))))
        return rc;
    if ((rc = sb_buf_puts(b, "}")))
        return rc;
    if (q->is_fifo) {
        group = ev->call_key[0] ? ev->call_key : ev->pbx[0] ? ev->pbx : "switchboard";
        /* both ids are limited to 128 characters: a longer one is replaced by its SHA-256 */
        if (strlen(ev->id) > 128) {
            if ((rc = sha256_hex(ev->id, dedup)))
                return rc;
        } else {
            snprintf(dedup, sizeof dedup, "%s", "");
        }
        if ((rc = sb_buf_puts(b, ",\"MessageGroupId\":")))
            return rc;
        if (strlen(group) > 128) {
            char gh[65];
            if ((rc = sha256_hex(group, gh)) || (rc = sink_json_str(b, gh)))
                return rc;
        } else if ((rc = sink_json_str(b, group))) {
            return rc;
        }
        if ((rc = sb_buf_puts(b, ",\"MessageDeduplicationId\":")) ||
            (rc = sink_json_str(b, dedup[0] ? dedup : ev->id)))
            return rc;
    }
    return sb_buf_puts(b, "}");
}

static void send_next(sqs_job *j);

static const char *str_or(const json_t *v, const char *dflt)
{
    const char *s = json_string_value(v);
    return s ? s : dflt;
}

/* Whole-request errors a retry may cure (throttling, credentials, a queue being created). */
static bool is_retryable_type(const char *type)
{
    static const char *const words[] = {
        "Throttl",         "RequestThrottled",     "QueueDoesNotExist", "NonExistentQueue",
        "AccessDenied",    "InvalidClientTokenId", "ExpiredToken",      "SignatureDoesNotMatch",
        "InvalidSecurity", "KmsThrottled",         "KmsAccessDenied",   "ServiceUnavailable",
        "InternalError",   "Unavailable"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(type, words[i]))
            return true;
    return false;
}

static void on_resp(const httpc_resp *r, void *ud)
{
    sqs_job *j = ud;
    outbox_result v;
    char why[SQS_WHY];
    json_t *root = NULL;
    size_t pos = j->pos, count = j->count;

    if (r->err == 0 && r->status == 200) {
        json_t *ok, *failed, *e;
        size_t i;
        bool seen[SQS_MAX_ENTRIES] = {false}, stop = false;
        root = json_loadb(r->body.ptr, r->body.len, 0, NULL);
        ok = json_object_get(root, "Successful");
        failed = json_object_get(root, "Failed");
        json_array_foreach(ok, i, e)
        {
            const char *id = json_string_value(json_object_get(e, "Id"));
            long k = id && id[0] == 'e' ? strtol(id + 1, NULL, 10) : -1;
            if (k >= 0 && (size_t)k < count && !seen[k]) {
                seen[k] = true;
                set_res(j, pos + (size_t)k, OUTBOX_OK, 0, NULL);
            }
        }
        json_array_foreach(failed, i, e)
        {
            const char *id = json_string_value(json_object_get(e, "Id"));
            long k = id && id[0] == 'e' ? strtol(id + 1, NULL, 10) : -1;
            bool sender = json_is_true(json_object_get(e, "SenderFault"));
            if (k < 0 || (size_t)k >= count || seen[k])
                continue;
            seen[k] = true;
            snprintf(why, sizeof why, "SQS %s: %s", str_or(json_object_get(e, "Code"), "error"),
                     str_or(json_object_get(e, "Message"), ""));
            set_res(j, pos + (size_t)k, sender ? OUTBOX_DEAD : OUTBOX_RETRY, 0, why);
            if (!sender)
                stop = true;
        }
        for (size_t k = 0; k < count; k++)
            if (!seen[k]) {
                set_res(j, pos + k, OUTBOX_RETRY, 0, "missing from the SendMessageBatch answer");
                stop = true;
            }
        json_decref(root);
        j->pos += count;
        if (stop)
            for (size_t k = j->pos; k < j->n; k++)
                set_res(j, k, OUTBOX_RETRY, 0, "not sent: an earlier message failed");
        if (stop || j->pos >= j->n)
            job_finish(j);
        else
            send_next(j);
        return;
    }

    sink_aws_verdict(r, &v, why, sizeof why);
    if (r->err == 0 && r->status >= 400 && r->status < 500) {
        const char *type;
        root = json_loadb(r->body.ptr, r->body.len, 0, NULL);
        type = json_string_value(json_object_get(root, "__type"));
        if (!type)
            type = json_string_value(json_object_get(root, "code"));
        if (type) {
            const char *msg = json_string_value(json_object_get(root, "message"));
            snprintf(why, sizeof why, "HTTP %ld %s: %s", r->status, type, msg ? msg : "");
            v.verdict = is_retryable_type(type) || r->status == 429 ? OUTBOX_RETRY : OUTBOX_DEAD;
        }
        json_decref(root);
    }
    if (v.verdict == OUTBOX_DEAD && count > 1) {
        /* refused as a whole: find the culprit one message at a time */
        SB_DEBUG(SUB, "chunk of %zu refused (%s): sending one by one", count, why);
        j->max_per = 1;
        send_next(j);
        return;
    }
    for (size_t k = pos; k < pos + count; k++)
        set_res(j, k, v.verdict, v.retry_after_ms, why);
    j->pos += count;
    if (v.verdict == OUTBOX_RETRY) {
        for (size_t k = j->pos; k < j->n; k++)
            set_res(j, k, OUTBOX_RETRY, v.retry_after_ms, "not sent: an earlier message failed");
        j->pos = j->n;
    }
    if (j->pos >= j->n)
        job_finish(j);
    else
        send_next(j);
}

/* Sends the next chunk from j->pos; finishes the job when nothing is left to send. */
static void send_next(sqs_job *j)
{
    sink_sqs *q = j->q;
    sb_buf body;
    httpc_aws a;
    const char *hdrs[] = {"X-Amz-Target: AmazonSQS.SendMessageBatch",
                          "Content-Type: application/x-amz-json-1.0", NULL};
    int rc = 0;
    char why[SQS_WHY];

    while (j->pos < j->n && !q->base.is_canceled) {
        size_t k = 0, mark;
        sb_buf_init(&body, q->max_request_bytes + 4096);
        if ((rc = sb_buf_puts(&body, "{\"QueueUrl\":")) ||
            (rc = sink_json_str(&body, q->queue_url)) ||
            (rc = sb_buf_puts(&body, ",\"Entries\":[")))
            goto fail;
        while (j->pos + k < j->n && k < j->max_per) {
            const outbox_event *ev = j->batch[j->pos + k];
            if (ev->payload_len > q->max_message_bytes) {
                if (k > 0)
                    break; /* send what we have; this one is judged alone next */
                snprintf(why, sizeof why, "event of %zu bytes exceeds the %zu-byte message limit",
                         ev->payload_len, q->max_message_bytes);
                set_res(j, j->pos, OUTBOX_DEAD, 0, why);
                j->pos++;
                continue;
            }
            mark = body.len;
            rc = add_entry(q, &body, k, ev);
            if (rc != 0 || body.len + 2 > q->max_request_bytes) {
                body.len = mark; /* does not fit: next request */
                body.data[mark] = '\0';
                if (k > 0)
                    break;
                if (rc && rc != SB_ETOOBIG)
                    goto fail;
                rc = 0;
                set_res(j, j->pos, OUTBOX_DEAD, 0, "message does not fit in a request");
                j->pos++;
                continue;
            }
            k++;
        }
        if (k == 0) {
            sb_buf_free(&body);
            continue; /* only dead letters so far */
        }
        if ((rc = sb_buf_puts(&body, "]}")))
            goto fail;
        j->count = k;
        rc = httpc_request(q->base.http,
                           &(httpc_req){.method = "POST",
                                        .url = q->endpoint,
                                        .headers = hdrs,
                                        .body = {body.data, body.len},
                                        .timeout_ms = q->timeout_ms,
                                        .max_body = 256 * 1024,
                                        .aws = sink_aws_sign(&q->aws, "sqs", &a)},
                           on_resp, j);
        sb_buf_free(&body);
        if (rc)
            goto fail_sent;
        return;
    }
    for (size_t k = j->pos; k < j->n; k++)
        set_res(j, k, OUTBOX_RETRY, 0, "not sent: shutting down");
    job_finish(j);
    return;
fail:
    sb_buf_free(&body);
fail_sent:
    snprintf(why, sizeof why, "not sent: %s", sb_strerror(rc));
    for (size_t k = j->pos; k < j->n; k++)
        set_res(j, k, OUTBOX_RETRY, 0, why);
    job_finish(j);
}

static void sqs_free(void *impl);

/* The queue's MaximumMessageSize (a string in the JSON answer), asked once, by the first
 * delivery, which then goes on. */
static void on_attributes(const httpc_resp *r, void *ud)
{
    sink_sqs *q = ud;
    sqs_job *j = q->waiting;
    q->is_asking = false;
    q->waiting = NULL;
    if (q->is_freed) {
        sqs_free(q);
        return;
    }
    if (r->err == 0 && r->status == 200) {
        json_t *root = json_loadb(r->body.ptr, r->body.len, 0, NULL);
        const char *v = json_string_value(
            json_object_get(json_object_get(root, "Attributes"), "MaximumMessageSize"));
        long long n = v ? strtoll(v, NULL, 10) : 0;
        if (n >= 1024 && n <= 1024 * 1024) {
            q->max_message_bytes = (size_t)n;
            SB_DEBUG(SUB, "%s: MaximumMessageSize %lld", q->queue_url, n);
        }
        json_decref(root);
    } else {
        SB_WARN(SUB, "%s: GetQueueAttributes failed (%s): assuming %zu-byte messages", q->queue_url,
                r->err ? r->error : "HTTP error", q->max_message_bytes);
    }
    if (j)
        send_next(j);
}

static void ask_attributes(sink_sqs *q)
{
    sb_buf body;
    httpc_aws a;
    const char *hdrs[] = {"X-Amz-Target: AmazonSQS.GetQueueAttributes",
                          "Content-Type: application/x-amz-json-1.0", NULL};
    sb_buf_init(&body, 8192);
    if (sb_buf_puts(&body, "{\"QueueUrl\":") == 0 && sink_json_str(&body, q->queue_url) == 0 &&
        sb_buf_puts(&body, ",\"AttributeNames\":[\"MaximumMessageSize\"]}") == 0 &&
        httpc_request(q->base.http,
                      &(httpc_req){.method = "POST",
                                   .url = q->endpoint,
                                   .headers = hdrs,
                                   .body = {body.data, body.len},
                                   .timeout_ms = q->timeout_ms,
                                   .max_body = 16384,
                                   .aws = sink_aws_sign(&q->aws, "sqs", &a)},
                      on_attributes, q) == 0)
        q->is_asking = true;
    sb_buf_free(&body);
}

static int sqs_deliver(void *impl, const outbox_event *const *batch, size_t n, outbox_done_cb done,
                       outbox_delivery *d)
{
    sink_sqs *q = impl;
    sqs_job *j = calloc(1, sizeof *j);
    if (!j)
        return SB_ENOMEM;
    *j =
        (sqs_job){.q = q, .d = d, .done = done, .batch = batch, .n = n, .max_per = SQS_MAX_ENTRIES};
    j->res = calloc(n, sizeof *j->res);
    j->why = calloc(n, sizeof *j->why);
    if (!j->res || !j->why) {
        free(j->res);
        free(j->why);
        free(j);
        return SB_ENOMEM;
    }
    if (!q->is_size_known && !q->is_asking) {
        /* the first delivery waits for the queue's message size (asked once) */
        q->is_size_known = true;
        ask_attributes(q);
        if (q->is_asking) {
            q->waiting = j;
            return 0;
        }
    }
    send_next(j);
    return 0;
}

static void sqs_cancel(void *impl)
{
    ((sink_sqs *)impl)->base.is_canceled = true;
}

static void sqs_free(void *impl)
{
    sink_sqs *q = impl;
    if (!q)
        return;
    if (q->is_asking) {
        q->is_freed = true; /* on_attributes frees */
        return;
    }
    sink_filter_free(&q->base.filter);
    sink_aws_free(&q->aws);
    free(q->queue_url);
    free(q->endpoint);
    free(q);
}

const outbox_sink_ops sink_sqs_ops = {
    .kind = "sqs",
    .wants = sink_wants,
    .deliver = sqs_deliver,
    .cancel = sqs_cancel,
    .free = sqs_free,
};

int sink_sqs_new(httpc *http, const sink_sqs_config *cfg, sink_sqs **out)
{
    sink_sqs *q;
    const char *u, *host, *slash;
    size_t ul;
    int rc;
    *out = NULL;
    if (!http || !cfg || !(u = cfg->queue_url))
        return SB_EINVAL;
    if (strncmp(u, "https://", 8) == 0)
        host = u + 8;
    else if (strncmp(u, "http://", 7) == 0)
        host = u + 7;
    else
        return SB_EINVAL;
    slash = strchr(host, '/');
    if (!slash || slash == host || (cfg->endpoint && strncmp(cfg->endpoint, "http", 4) != 0))
        return SB_EINVAL;
    q = calloc(1, sizeof *q);
    if (!q)
        return SB_ENOMEM;
    q->base.kind = "sqs";
    q->base.http = http;
    if ((rc = sink_filter_parse(&q->base.filter, &cfg->filter)) ||
        (rc = sink_aws_resolve(&q->aws, cfg->region, cfg->access_key, cfg->secret_key,
                               cfg->session_token)))
        goto fail;
    rc = SB_ENOMEM;
    q->queue_url = strdup(u);
    if (cfg->endpoint) {
        q->endpoint = strdup(cfg->endpoint);
    } else if ((q->endpoint = malloc((size_t)(slash - u) + 2))) {
        memcpy(q->endpoint, u, (size_t)(slash - u));
        memcpy(q->endpoint + (slash - u), "/", 2);
    }
    if (!q->queue_url || !q->endpoint)
        goto fail;
    ul = strlen(u);
    q->is_fifo = ul > 5 && strcmp(u + ul - 5, ".fifo") == 0;
    q->max_request_bytes = cfg->max_request_bytes ? cfg->max_request_bytes : 1024 * 1024;
    q->max_message_bytes = cfg->max_message_bytes ? cfg->max_message_bytes : 256 * 1024;
    q->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    q->is_size_known = cfg->max_message_bytes != 0;
    *out = q;
    return 0;
fail:
    sqs_free(q);
    return rc;
}
