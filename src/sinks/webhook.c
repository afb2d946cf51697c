/* webhook.c: the `webhook` sink (webhook.h): JSON POSTs signed with HMAC-SHA256.
 *
 * Order: in single mode the events of one delivery are sent in "lanes": one lane when the sink is
 * not partitioned (strictly one request at a time, in order), one lane per call key otherwise.
 * A lane moves to its next event after a 2xx or a dead letter, and stops at the first retry: the
 * rest of the lane is reported RETRY without being sent, so a receiver never sees event N+1 of a
 * call before event N has been accepted.

 */
#include "sinks/webhook.h"

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define SUB "webhook"
#define WH_WHY 192
#define WH_MAX_BATCH_BODY (64u * 1024 * 1024)
#define WH_OFFLOAD_BYTES (16u * 1024)

struct sink_webhook {
    sink_base base; /* first: sink_wants() */
    char *url;
    char *secret;
    EVP_MAC_CTX *mac; /* HMAC-SHA256 keyed with secret, copied per request; NULL: sign afresh */
    bool is_batch;
    bool is_partitioned;
    long timeout_ms;
    char **headers;
    size_t nheaders;
};

typedef struct wh_job {
    sink_webhook *w;
    outbox_delivery *d;
    outbox_done_cb done;
    const outbox_event *const *batch;
    size_t n;
    outbox_result *res;
    char (*why)[WH_WHY];
    int *next; /* next event of the same lane, -1 at its end */
    size_t lanes_left;
} wh_job;

typedef struct wh_req {
    wh_job *j;
    int idx; /* the event (single mode), -1 for the whole batch */
} wh_req;

/* A batch body being built and signed on the thread pool. */
typedef struct wh_prep {
    uv_work_t work;
    wh_job *j;
    EVP_MAC_CTX *mac; /* the worker's own copy of the sink's keyed context */
    long long ts;
    sb_buf body;
    char sig[80];
    int rc;
} wh_prep;

/* "v1=" + hex(HMAC(ts "." body)) into out (68 bytes) with ctx, keyed and not yet used (it is
 * consumed). 0 or SB_EIO. Thread-safe for distinct contexts. */
static int mac_sign(EVP_MAC_CTX *ctx, long long ts, const char *body, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    size_t mdlen = 0;
    char tsbuf[32];
    int n = snprintf(tsbuf, sizeof tsbuf, "%lld.", ts);
    if (!EVP_MAC_update(ctx, (const unsigned char *)tsbuf, (size_t)n) ||
        !EVP_MAC_update(ctx, (const unsigned char *)body, len) ||
        !EVP_MAC_final(ctx, md, &mdlen, sizeof md) || mdlen != 32)
        return SB_EIO;
    memcpy(out, "v1=", 3);
    for (size_t i = 0; i < 32; i++) {
        out[3 + 2 * i] = hex[md[i] >> 4];
        out[4 + 2 * i] = hex[md[i] & 15];
    }
    out[67] = '\0';
    return 0;
}

/* The keyed HMAC context for secret (the fetch and key set-up done once per sink), or NULL. */
static EVP_MAC_CTX *mac_keyed(const char *secret)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx && !EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params)) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    EVP_MAC_free(mac); /* the context keeps its own reference */
    return ctx;
}

int sink_webhook_sign(const char *secret, long long ts, const char *body, size_t len, char *out,
                      size_t outsize)
{
    if (outsize < 68)
        return SB_EINVAL;
    EVP_MAC_CTX *ctx = mac_keyed(secret);
    int rc = ctx ? mac_sign(ctx, ts, body, len, out) : SB_EIO;
    EVP_MAC_CTX_free(ctx);
    return rc;
}

/* sink_webhook_sign() with the sink's keyed context: the same "v1=<hex>" for the same input. */
static int wh_sign(const sink_webhook *w, long long ts, const char *body, size_t len, char *out,
                   size_t outsize)
{
    if (!w->mac)
        return sink_webhook_sign(w->secret, ts, body, len, out, outsize);
    if (outsize < 68)
        return SB_EINVAL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(w->mac);
    int rc = ctx ? mac_sign(ctx, ts, body, len, out) : SB_EIO;
    EVP_MAC_CTX_free(ctx);
    return rc;
}

static void job_free(wh_job *j)
{
    free(j->res);
    free(j->why);
    free(j->next);
    free(j);
}

static void lane_finished(wh_job *j)
{
    if (--j->lanes_left == 0) {
        j->done(j->d, j->res);
        job_free(j);
    }
}

/* Marks idx and the rest of its lane RETRY without sending, with why and retry_after. */
static void lane_skip(wh_job *j, int idx, const char *why, uint32_t retry_after_ms)
{
    for (; idx >= 0; idx = j->next[idx]) {
        snprintf(j->why[idx], WH_WHY, "%s", why);
        j->res[idx] = (outbox_result){OUTBOX_RETRY, retry_after_ms, j->why[idx]};
    }
}

static void on_resp(const httpc_resp *r, void *ud);

/* The JSON array of the batch's payloads (one allocation). Thread-safe: reads the events only. */
static size_t batch_body_len(const wh_job *j)
{
    size_t need = j->n + 1; /* brackets and commas */
    for (size_t i = 0; i < j->n; i++)
        need += j->batch[i]->payload_len;
    return need;
}

static int batch_body(const wh_job *j, sb_buf *body)
{
    int rc = sb_buf_reserve(body, batch_body_len(j));
    if (!rc)
        rc = sb_buf_append(body, "[", 1);
    for (size_t i = 0; !rc && i < j->n; i++) {
        if (i)
            rc = sb_buf_append(body, ",", 1);
        if (!rc)
            rc = sb_buf_append(body, j->batch[i]->payload, j->batch[i]->payload_len);
    }
    if (!rc)
        rc = sb_buf_append(body, "]", 1);
    return rc;
}

/* POSTs body for event idx (single mode) or the batch (idx < 0): the headers first[0..nfirst),
 * then the content type, the timestamp, the signature when sig, the sink's own headers. A body
 * with is_given is a malloc'd buffer taken over (freed by httpc, also on error). 0, or an SB_E*
 * code (nothing sent). */
static int post(wh_job *j, int idx, const char *const *first, size_t nfirst, sb_slice body,
                bool is_given, long long ts, const char *sig)
{
    sink_webhook *w = j->w;
    const char *hdrs[16 + 8];
    char ts_h[64], sig_h[128];
    size_t k = 0;
    for (size_t i = 0; i < nfirst; i++)
        hdrs[k++] = first[i];
    hdrs[k++] = "Content-Type: application/json";
    snprintf(ts_h, sizeof ts_h, "X-Switchboard-Timestamp: %lld", ts);
    hdrs[k++] = ts_h;
    if (sig) {
        snprintf(sig_h, sizeof sig_h, "X-Switchboard-Signature: %s", sig);
        hdrs[k++] = sig_h;
    }
    for (size_t i = 0; i < w->nheaders && k < sizeof hdrs / sizeof hdrs[0] - 1; i++)
        hdrs[k++] = w->headers[i];
    hdrs[k] = NULL;
    wh_req *rq = malloc(sizeof *rq);
    if (!rq) {
        if (is_given)
            free((char *)body.ptr);
        return SB_ENOMEM;
    }
    rq->j = j;
    rq->idx = idx;
    int rc = httpc_request(w->base.http,
                           &(httpc_req){.method = "POST",
                                        .url = w->url,
                                        .headers = hdrs,
                                        .body = body,
                                        .is_body_given = is_given,
                                        .timeout_ms = w->timeout_ms,
                                        .max_body = 4096},
                           on_resp, rq);
    if (rc)
        free(rq);
    return rc;
}

/* Posts the batch body (taken: *body is left empty) with its timestamp and signature (NULL:
 * unsigned). 0, or an SB_E* code (nothing sent). */
static int post_batch(wh_job *j, sb_buf *body, long long ts, const char *sig)
{
    char size_h[64];
    snprintf(size_h, sizeof size_h, "X-Switchboard-Batch-Size: %zu", j->n);
    const char *first[] = {size_h};
    sb_slice b = {body->data, body->len};
    (void)sb_buf_steal(body); /* post takes it, whatever it returns */
    return post(j, -1, first, 1, b, true, ts, sig);
}

/* Builds, signs and posts the batch. 0, or an SB_E* code (nothing sent). */
static int send_batch_now(wh_job *j)
{
    sink_webhook *w = j->w;
    long long ts = (long long)time(NULL);
    char sig[80];
    sb_buf body;
    int rc;
    sb_buf_init(&body, WH_MAX_BATCH_BODY);
    if ((rc = batch_body(j, &body)) ||
        (w->secret && (rc = wh_sign(w, ts, body.data, body.len, sig, sizeof sig)))) {
        sb_buf_free(&body);
        return rc;
    }
    return post_batch(j, &body, ts, w->secret ? sig : NULL);
}

/* Every event of the batch: RETRY with why; then the delivery is done. */
static void batch_fail(wh_job *j, const char *why)
{
    snprintf(j->why[0], WH_WHY, "%s", why);
    for (size_t i = 0; i < j->n; i++)
        j->res[i] = (outbox_result){OUTBOX_RETRY, 0, j->why[0]};
    lane_finished(j);
}

static void prep_work(uv_work_t *wk)
{
    wh_prep *p = wk->data;
    if (!(p->rc = batch_body(p->j, &p->body)))
        p->rc = mac_sign(p->mac, p->ts, p->body.data, p->body.len, p->sig);
}

static void prep_after(uv_work_t *wk, int status)
{
    wh_prep *p = wk->data;
    wh_job *j = p->j;
    int rc = status ? SB_ECANCELED : p->rc;
    EVP_MAC_CTX_free(p->mac);
    if (!rc && j->w->base.is_canceled)
        rc = SB_ECANCELED;
    if (!rc)
        rc = post_batch(j, &p->body, p->ts, p->sig);
    sb_buf_free(&p->body);
    free(p);
    if (rc) {
        char why[WH_WHY];
        snprintf(why, sizeof why, "not sent: %s",
                 rc == SB_ECANCELED ? "shutting down" : sb_strerror(rc));
        batch_fail(j, why);
    }
}

/* Sends the batch: a signed body of WH_OFFLOAD_BYTES or more is built and signed on the thread
 * pool. 0, or an SB_E* code (nothing sent, nothing pending). */
static int send_batch(wh_job *j)
{
    sink_webhook *w = j->w;
    wh_prep *p;
    if (!w->secret || !w->mac || batch_body_len(j) < WH_OFFLOAD_BYTES ||
        !(p = calloc(1, sizeof *p)))
        return send_batch_now(j);
    p->j = j;
    p->ts = (long long)time(NULL);
    p->mac = EVP_MAC_CTX_dup(w->mac); /* on the loop: the worker never touches w */
    sb_buf_init(&p->body, WH_MAX_BATCH_BODY);
    p->work.data = p;
    if (!p->mac || uv_queue_work(httpc_loop(w->base.http), &p->work, prep_work, prep_after) != 0) {
        EVP_MAC_CTX_free(p->mac);
        free(p);
        return send_batch_now(j);
    }
    return 0;
}

/* Sends event idx (single mode). 0, or an SB_E* code (nothing sent). */
static int send_one(wh_job *j, int idx)
{
    sink_webhook *w = j->w;
    const outbox_event *ev = j->batch[idx];
    char idem_h[320], id_h[320], type_h[200], att_h[64], sig[80];
    long long ts = (long long)time(NULL);
    int rc;
    snprintf(idem_h, sizeof idem_h, "Idempotency-Key: %s", ev->id);
    snprintf(id_h, sizeof id_h, "X-Switchboard-Event-Id: %s", ev->id);
    snprintf(type_h, sizeof type_h, "X-Switchboard-Event-Type: %s", ev->type);
    snprintf(att_h, sizeof att_h, "X-Switchboard-Attempt: %u", ev->attempt);
    const char *first[] = {idem_h, id_h, type_h, att_h};
    if (w->secret && (rc = wh_sign(w, ts, ev->payload, ev->payload_len, sig, sizeof sig)))
        return rc;
    return post(j, idx, first, 4, (sb_slice){ev->payload, ev->payload_len}, false, ts,
                w->secret ? sig : NULL);
}

/* Sends idx, or walks down the lane while sending fails. */
static void lane_run(wh_job *j, int idx)
{
    while (idx >= 0) {
        int rc;
        if (j->w->base.is_canceled) {
            lane_skip(j, idx, "not sent: shutting down", 0);
            break;
        }
        rc = send_one(j, idx);
        if (rc == 0)
            return; /* on_resp continues the lane */
        if (rc == SB_EINVAL) {
            /* the event itself cannot form a request (a header value): never deliverable */
            snprintf(j->why[idx], WH_WHY, "cannot build the request: %s", sb_strerror(rc));
            j->res[idx] = (outbox_result){OUTBOX_DEAD, 0, j->why[idx]};
            idx = j->next[idx];
            continue;
        }
        {
            char why[WH_WHY];
            snprintf(why, sizeof why, "not sent: %s", sb_strerror(rc));
            lane_skip(j, idx, why, 0);
        }
        break;
    }
    lane_finished(j);
}

static void on_resp(const httpc_resp *r, void *ud)
{
    wh_req *rq = ud;
    wh_job *j = rq->j;
    int idx = rq->idx;
    outbox_result v;
    char why[WH_WHY];
    free(rq);
    sink_http_verdict(r, &v, why, sizeof why);
    if (idx < 0) {
        /* One answer for the whole batch: every result shares its reason (j->why has 1 row). */
        snprintf(j->why[0], WH_WHY, "%s", why);
        for (size_t i = 0; i < j->n; i++) {
            j->res[i] = v;
            j->res[i].error = v.error ? j->why[0] : NULL;
        }
        if (v.verdict != OUTBOX_OK)
            SB_DEBUG(SUB, "batch of %zu: %s", j->n, why);
        lane_finished(j);
        return;
    }
    snprintf(j->why[idx], WH_WHY, "%s", why);
    j->res[idx] = v;
    j->res[idx].error = v.error ? j->why[idx] : NULL;
    if (v.verdict == OUTBOX_RETRY) {
        char skip[WH_WHY];
        snprintf(skip, sizeof skip, "not sent: an earlier event of its order failed (%.100s)", why);
        if (j->next[idx] >= 0)
            lane_skip(j, j->next[idx], skip, v.retry_after_ms);
        lane_finished(j);
        return;
    }
    lane_run(j, j->next[idx]);
}

static int wh_deliver(void *impl, const outbox_event *const *batch, size_t n, outbox_done_cb done,
                      outbox_delivery *d)
{
    sink_webhook *w = impl;
    wh_job *j = calloc(1, sizeof *j);
    int *heads = NULL, *tails = NULL;
    size_t nlanes = 0;
    if (!j)
        return SB_ENOMEM;
    j->w = w;
    j->d = d;
    j->done = done;
    j->batch = batch;
    j->n = n;
    j->res = calloc(n, sizeof *j->res);
    j->why = calloc(w->is_batch ? 1 : n, sizeof *j->why); /* batch mode: one shared reason */
    j->next = malloc(n * sizeof *j->next);
    heads = malloc(n * sizeof *heads);
    tails = malloc(n * sizeof *tails);
    if (!j->res || !j->why || !j->next || !heads || !tails) {
        free(heads);
        free(tails);
        job_free(j);
        return SB_ENOMEM;
    }
    if (w->is_batch) {
        j->lanes_left = 1;
        free(heads);
        free(tails);
        int rc = send_batch(j);
        if (rc != 0) {
            job_free(j);
            return rc;
        }
        return 0;
    }
    /* Build the lanes: linked lists of indices in batch order. */
    for (size_t i = 0; i < n; i++) {
        size_t l = 0;
        j->next[i] = -1;
        if (w->is_partitioned)
            for (l = 0; l < nlanes; l++)
                if (strcmp(batch[heads[l]]->call_key, batch[i]->call_key) == 0)
                    break;
        if (l == nlanes) {
            heads[nlanes] = tails[nlanes] = (int)i;
            nlanes++;
        } else {
            j->next[tails[l]] = (int)i;
            tails[l] = (int)i;
        }
    }
    /* One extra count held while starting the lanes, so done() cannot run in the middle. */
    j->lanes_left = nlanes + 1;
    for (size_t l = 0; l < nlanes; l++)
        lane_run(j, heads[l]);
    free(heads);
    free(tails);
    lane_finished(j);
    return 0;
}

static void wh_cancel(void *impl)
{
    ((sink_webhook *)impl)->base.is_canceled = true;
}

static void wh_free(void *impl)
{
    sink_webhook *w = impl;
    if (!w)
        return;
    sink_filter_free(&w->base.filter);
    free(w->url);
    EVP_MAC_CTX_free(w->mac);
    if (w->secret)
        memset(w->secret, 0, strlen(w->secret));
    free(w->secret);
    for (size_t i = 0; i < w->nheaders; i++)
        free(w->headers[i]);
    free(w->headers);
    free(w);
}

const outbox_sink_ops sink_webhook_ops = {
    .kind = "webhook",
    .wants = sink_wants,
    .deliver = wh_deliver,
    .cancel = wh_cancel,
    .free = wh_free,
};

int sink_webhook_new(httpc *http, const sink_webhook_config *cfg, sink_webhook **out)
{
    sink_webhook *w;
    int rc = SB_ENOMEM;
    size_t nh = 0;
    *out = NULL;
    if (!http || !cfg || !cfg->url ||
        (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0))
        return SB_EINVAL;
    for (const char *const *h = cfg->headers; h && *h; h++, nh++)
        if (!strchr(*h, ':') || strpbrk(*h, "\r\n") || nh >= 16)
            return SB_EINVAL;
    w = calloc(1, sizeof *w);
    if (!w)
        return SB_ENOMEM;
    w->base.kind = "webhook";
    w->base.http = http;
    if ((rc = sink_filter_parse(&w->base.filter, &cfg->filter)))
        goto fail;
    rc = SB_ENOMEM;
    w->url = strdup(cfg->url);
    if (!w->url)
        goto fail;
    if (cfg->secret && *cfg->secret && !(w->secret = strdup(cfg->secret)))
        goto fail;
    if (w->secret)
        w->mac = mac_keyed(w->secret); /* NULL (out of memory): each request signs afresh */
    w->is_batch = cfg->is_batch;
    w->is_partitioned = cfg->is_partitioned;
    w->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    if (nh) {
        w->headers = calloc(nh, sizeof *w->headers);
        if (!w->headers)
            goto fail;
        for (size_t i = 0; i < nh; i++, w->nheaders++)
            if (!(w->headers[i] = strdup(cfg->headers[i])))
                goto fail;
    }
    if (!w->secret)
        SB_WARN(SUB, "webhook %s: no secret set, requests are not signed", w->url);
    *out = w;
    return 0;
fail:
    wh_free(w);
    return rc;
}
