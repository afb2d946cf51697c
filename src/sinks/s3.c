/* s3.c: the `s3` sink (s3.h): NDJSON objects of events and per-call CDR objects, PUT path-style
 * with SigV4.
 *
 * Batching by time: the outbox hands this sink one delivery at a time. A delivery smaller than
 * batch_events that arrives less than flush_interval after the previous write is held until the
 * interval is over; meanwhile the outbox keeps committing events, so the next delivery is larger.
 * Objects are thus written at most once per interval, or at once when a delivery is full. A
 * delivery larger than max_object_bytes is split into several objects. The verdict of an event is
 * the worst of its object's and its CDR's (RETRY over DEAD over OK).
 */
#include "sinks/s3.h"

#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUB "s3"
#define S3_WHY 192

struct sink_s3 {
    sink_base base; /* first: sink_wants() */
    uv_loop_t *loop;
    uv_timer_t timer;
    char *endpoint, *bucket, *prefix;
    sink_aws aws;
    size_t max_object_bytes;
    uint32_t batch_events, flush_interval_ms;
    bool is_cdr_disabled;
    long timeout_ms;
    uint64_t last_flush_ms; /* uv_now of the last write; 0 = never */
    struct s3_job *held;
};

typedef struct s3_job {
    sink_s3 *s;
    outbox_delivery *d;
    outbox_done_cb done;
    const outbox_event *const *batch;
    size_t n;
    outbox_result *res;
    char (*why)[S3_WHY];
    size_t puts_left;
} s3_job;

typedef struct s3_put {
    s3_job *j;
    size_t first, count; /* the events this object carries */
} s3_put;

int sink_s3_key(sb_buf *b, const char *prefix, bool is_cdr, int64_t time_ms, int64_t seq,
                const char *id)
{
    time_t t = (time_t)(time_ms / 1000);
    struct tm tm;
    char date[32];
    int rc;
    gmtime_r(&t, &tm);
    if (is_cdr)
        strftime(date, sizeof date, "cdr/%Y/%m/%d/", &tm);
    else
        strftime(date, sizeof date, "events/%Y/%m/%d/%H/", &tm);
    if ((rc = sb_buf_puts(b, prefix)) || (rc = sb_buf_puts(b, date)))
        return rc;
    if (is_cdr) {
        if ((rc = sink_url_escape(b, id, false)))
            return rc;
        return sb_buf_puts(b, ".json");
    }
    return sb_buf_printf(b, "%020lld.ndjson", (long long)seq);
}

static int rank(outbox_verdict v)
{
    return v == OUTBOX_OK ? 0 : v == OUTBOX_DEAD ? 1 : 2;
}

/* Merges a verdict into events [first, first+count): the worse one wins. */
static void merge(s3_job *j, size_t first, size_t count, const outbox_result *v)
{
    for (size_t i = first; i < first + count; i++) {
        if (rank(v->verdict) <= rank(j->res[i].verdict))
            continue;
        j->res[i] = *v;
        j->res[i].error = NULL;
        if (v->error) {
            snprintf(j->why[i], S3_WHY, "%s", v->error);
            j->res[i].error = j->why[i];
        }
    }
}

static void job_free(s3_job *j)
{
    free(j->res);
    free(j->why);
    free(j);
}

static void put_finished(s3_job *j)
{
    if (--j->puts_left == 0) {
        j->done(j->d, j->res);
        job_free(j);
    }
}

static void on_put(const httpc_resp *r, void *ud)
{
    s3_put *p = ud;
    s3_job *j = p->j;
    outbox_result v;
    char why[S3_WHY];
    sink_aws_verdict(r, &v, why, sizeof why);
    if (v.verdict != OUTBOX_OK)
        SB_DEBUG(SUB, "PUT of %zu events: %s", p->count, why);
    merge(j, p->first, p->count, &v);
    free(p);
    put_finished(j);
}

/* PUTs body under key for events [first, first+count); failures to start count as RETRY. */
static void put_object(s3_job *j, const char *key, const char *ctype, const char *body, size_t len,
                       size_t first, size_t count)
{
    sink_s3 *s = j->s;
    sb_buf url;
    httpc_aws a;
    char ct[96];
    const char *hdrs[2] = {ct, NULL};
    s3_put *p = malloc(sizeof *p);
    int rc = SB_ENOMEM;
    sb_buf_init(&url, 4096);
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    j->puts_left++;
    if (!p)
        goto fail;
    *p = (s3_put){j, first, count};
    if ((rc = sb_buf_printf(&url, "%s/", s->endpoint)) ||
        (rc = sink_url_escape(&url, s->bucket, false)) || (rc = sb_buf_puts(&url, "/")) ||
        (rc = sink_url_escape(&url, key, true)))
        goto fail;
    rc = httpc_request(s->base.http,
                       &(httpc_req){.method = "PUT",
                                    .url = url.data,
                                    .headers = hdrs,
                                    .body = {body, len},
                                    .timeout_ms = s->timeout_ms,
                                    .max_body = 4096,
                                    .aws = sink_aws_sign(&s->aws, "s3", &a)},
                       on_put, p);
    if (rc)
        goto fail;
    sb_buf_free(&url);
    return;
fail : {
    char why[S3_WHY];
    outbox_result v = {OUTBOX_RETRY, 0, why};
    snprintf(why, sizeof why, "PUT not sent: %s", sb_strerror(rc));
    merge(j, first, count, &v);
}
    free(p);
    sb_buf_free(&url);
    put_finished(j);
}

/* PUTs events [first, end) as one NDJSON object. */
static void put_events(s3_job *j, sb_buf *key, const sb_buf *body, size_t first, size_t end)
{
    const outbox_event *e0 = j->batch[first];
    sb_buf_reset(key);
    if (sink_s3_key(key, j->s->prefix, false, e0->time_ms, e0->seq, NULL) == 0)
        put_object(j, key->data, "application/x-ndjson", body->data, body->len, first, end - first);
    else
        merge(j, first, end - first,
              &(outbox_result){OUTBOX_RETRY, 0, "cannot build the object key"});
}

static void flush(s3_job *j)
{
    sink_s3 *s = j->s;
    sb_buf body, key;
    size_t first = 0, biggest = 0;
    s->last_flush_ms = uv_now(s->loop);
    if (!s->last_flush_ms)
        s->last_flush_ms = 1;
    for (size_t i = 0; i < j->n; i++)
        if (j->batch[i]->payload_len > biggest)
            biggest = j->batch[i]->payload_len;
    /* room for a full object plus one event: an event larger than the limit gets its own */
    sb_buf_init(&body, s->max_object_bytes + biggest + 1);
    sb_buf_init(&key, 4096);
    j->puts_left = 1; /* held while the PUTs start */
    for (size_t i = 0; i < j->n; i++) {
        const outbox_event *e = j->batch[i];
        if (body.len && body.len + e->payload_len + 1 > s->max_object_bytes) {
            put_events(j, &key, &body, first, i);
            sb_buf_reset(&body);
            first = i;
        }
        if (sb_buf_reserve(&body, e->payload_len + 1) != 0) {
            if (i > first) /* out of memory: write what we have, retry the rest */
                put_events(j, &key, &body, first, i);
            merge(j, i, j->n - i, &(outbox_result){OUTBOX_RETRY, 0, "out of memory"});
            first = j->n;
            break;
        }
        sb_buf_append(&body, e->payload, e->payload_len);
        sb_buf_append(&body, "\n", 1);
    }
    if (first < j->n)
        put_events(j, &key, &body, first, j->n);
    if (!s->is_cdr_disabled) {
        for (size_t i = 0; i < j->n; i++) {
            const outbox_event *e = j->batch[i];
            if (strcmp(e->type, "call.ended") != 0)
                continue;
            sb_buf_reset(&key);
            if (sink_s3_key(&key, s->prefix, true, e->time_ms, e->seq,
                            e->call_key[0] ? e->call_key : e->id) == 0)
                put_object(j, key.data, "application/json", e->payload, e->payload_len, i, 1);
        }
    }
    sb_buf_free(&body);
    sb_buf_free(&key);
    put_finished(j);
}

static void on_timer(uv_timer_t *t)
{
    sink_s3 *s = t->data;
    s3_job *j = s->held;
    s->held = NULL;
    if (j)
        flush(j);
}

static int s3_deliver(void *impl, const outbox_event *const *batch, size_t n, outbox_done_cb done,
                      outbox_delivery *d)
{
    sink_s3 *s = impl;
    s3_job *j = calloc(1, sizeof *j);
    uint64_t now = uv_now(s->loop), due;
    size_t bytes = 0;
    if (!j)
        return SB_ENOMEM;
    *j = (s3_job){.s = s, .d = d, .done = done, .batch = batch, .n = n};
    j->res = calloc(n, sizeof *j->res);
    j->why = calloc(n, sizeof *j->why);
    if (!j->res || !j->why) {
        job_free(j);
        return SB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        bytes += batch[i]->payload_len + 1;
    due = s->last_flush_ms + s->flush_interval_ms;
    if (s->held) { /* a second delivery at once (never with one in flight): write both now */
        s3_job *h = s->held;
        s->held = NULL;
        uv_timer_stop(&s->timer);
        flush(h);
    }
    if (s->base.is_canceled || !s->last_flush_ms || n >= s->batch_events ||
        bytes >= s->max_object_bytes || now >= due) {
        flush(j);
    } else {
        s->held = j;
        uv_timer_start(&s->timer, on_timer, due - now, 0);
    }
    return 0;
}

static void s3_cancel(void *impl)
{
    sink_s3 *s = impl;
    s->base.is_canceled = true;
    if (s->held) {
        uv_timer_stop(&s->timer);
        on_timer(&s->timer);
    }
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void s3_free(void *impl)
{
    sink_s3 *s = impl;
    if (!s)
        return;
    sink_filter_free(&s->base.filter);
    sink_aws_free(&s->aws);
    free(s->endpoint);
    free(s->bucket);
    free(s->prefix);
    uv_close((uv_handle_t *)&s->timer, on_closed);
}

const outbox_sink_ops sink_s3_ops = {
    .kind = "s3",
    .wants = sink_wants,
    .deliver = s3_deliver,
    .cancel = s3_cancel,
    .free = s3_free,
};

int sink_s3_new(uv_loop_t *loop, httpc *http, const sink_s3_config *cfg, sink_s3 **out)
{
    sink_s3 *s;
    int rc;
    sb_buf ep;
    *out = NULL;
    if (!loop || !http || !cfg || !cfg->bucket || !*cfg->bucket || strchr(cfg->bucket, '/') ||
        (cfg->endpoint && strncmp(cfg->endpoint, "http://", 7) != 0 &&
         strncmp(cfg->endpoint, "https://", 8) != 0))
        return SB_EINVAL;
    s = calloc(1, sizeof *s);
    if (!s)
        return SB_ENOMEM;
    s->base.kind = "s3";
    s->base.http = http;
    s->loop = loop;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    sb_buf_init(&ep, 1024);
    if ((rc = sink_filter_parse(&s->base.filter, &cfg->filter)) ||
        (rc = sink_aws_resolve(&s->aws, cfg->region, cfg->access_key, cfg->secret_key,
                               cfg->session_token)))
        goto fail;
    if (!cfg->endpoint && !s->aws.region) {
        rc = SB_ECONFIG; /* the AWS endpoint needs a region */
        goto fail;
    }
    if (!s->aws.region && s->aws.access_key) {
        rc = SB_ECONFIG;
        goto fail;
    }
    rc = cfg->endpoint ? sb_buf_puts(&ep, cfg->endpoint)
                       : sb_buf_printf(&ep, "https://s3.%s.amazonaws.com", s->aws.region);
    if (rc)
        goto fail;
    while (ep.len && ep.data[ep.len - 1] == '/')
        ep.data[--ep.len] = '\0';
    rc = SB_ENOMEM;
    s->endpoint = sb_buf_steal(&ep);
    s->bucket = strdup(cfg->bucket);
    s->prefix = strdup(cfg->prefix ? cfg->prefix : "switchboard/");
    if (!s->endpoint || !s->bucket || !s->prefix)
        goto fail;
    s->max_object_bytes = cfg->max_object_bytes ? cfg->max_object_bytes : 8u * 1024 * 1024;
    s->batch_events = cfg->batch_events ? cfg->batch_events : 1000;
    s->flush_interval_ms = cfg->flush_interval_ms ? cfg->flush_interval_ms : 10000;
    s->is_cdr_disabled = cfg->is_cdr_disabled;
    s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    *out = s;
    return 0;
fail:
    sb_buf_free(&ep);
    s3_free(s);
    return rc;
}
