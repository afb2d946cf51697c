/* nats.c: the `nats` sink (nats.h): JetStream publishes with Nats-Msg-Id = event id.
 *
 * Threads: the loop thread queues each delivery (a job) to the sink's worker thread and never
 * blocks. The worker owns the libnats connection: it connects (libnats keeps reconnecting in its
 * own threads), makes sure the stream exists, publishes the batch with js_PublishMsgAsync (at most
 * max_pending unacknowledged at once) and waits for the acks, which libnats hands to ack_handler on
 * one of its threads. The finished job goes back to the loop through a uv_async_t, and only there
 * is the outbox's done callback called. docs/decisions/0012-nats-sink-threading.md says why.
 *
 * Order: events are published in batch order. After the first event that must be retried, the
 * rest of the batch is not sent (reported RETRY), so only publishes already in flight can land
 * ahead of a retried event; max_pending = 1 makes the order strict.
 */
#include "sinks/nats.h"

#include "core/error.h"
#include "core/log.h"

#include <nats/nats.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "nats"
#define NJ_WHY 192
#define NJ_SUBJECT_MAX 512

typedef struct nj_slot {
    const natsMsg *msg;
    size_t idx;
} nj_slot;

typedef struct nj_job {
    struct nj_job *next;
    outbox_delivery *d;
    outbox_done_cb done;
    const outbox_event *const *batch;
    size_t n;
    outbox_result *res;
    char (*why)[NJ_WHY];
    natsMsg **msgs;    /* created by the worker; msgs[i] NULL when never built */
    nj_slot *slots;    /* msgs sorted by address: the ack handler's lookup */
    size_t nslots;     /* built messages */
    bool *is_answered; /* an ack, an error or a reclaim decided res[i] */
    bool *is_owned;    /* the worker must destroy msgs[i] */
    size_t sent, answered;
    bool has_retry; /* an event of this job must be retried: send no more */
} nj_job;

struct sink_nats {
    sink_base base; /* first: sink_wants() */
    uv_loop_t *loop;
    char *url, *prefix, *stream, *user, *password, *token, *creds, *ca_file;
    char **subjects;
    size_t nsubjects;
    bool is_memory_storage, is_create_disabled;
    int64_t dup_window_ms, max_age_ms, max_bytes;
    int32_t max_msg_size;
    int replicas, max_pending;
    long timeout_ms;

    /* shared between the loop and the worker (mu) */
    uv_mutex_t mu;
    uv_cond_t cv;
    nj_job *todo_head, *todo_tail; /* loop -> worker */
    nj_job *done_head, *done_tail; /* worker -> loop */
    nj_job *cur;                   /* the job whose acks are awaited (ack_handler) */
    bool is_stopping;
    atomic_bool is_canceled;
    atomic_bool needs_stream_check; /* set on every (re)connect */

    /* loop thread */
    bool is_started; /* mu, cv, async and the thread exist */
    uv_async_t async;
    uv_thread_t thread;

    /* worker thread */
    natsConnection *nc;
    jsCtx *js;
    bool is_stream_ok;
};

/* --- subjects ----------------------------------------------------------------------------- */

static bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Appends s as subject tokens (dots kept when is_dotted) to out at *k. false when out is full. */
static bool put_tokens(char *out, size_t outsize, size_t *k, const char *s, bool is_dotted)
{
    bool is_empty = true;
    for (;; s++) {
        char c = *s;
        if (c == '\0' || (is_dotted && c == '.')) {
            if (is_empty) {
                if (*k + 1 >= outsize)
                    return false;
                out[(*k)++] = '_';
            }
            if (c == '\0')
                return true;
            if (*k + 1 >= outsize)
                return false;
            out[(*k)++] = '.';
            is_empty = true;
            continue;
        }
        if (*k + 1 >= outsize)
            return false;
        out[(*k)++] = is_token_char(c) ? c : '_';
        is_empty = false;
    }
}

int sink_nats_subject(const char *prefix, const char *pbx, const char *type, char *out,
                      size_t outsize)
{
    size_t k = 0, plen = strlen(prefix);
    if (outsize < plen + 2)
        return SB_ETOOBIG;
    memcpy(out, prefix, plen);
    k = plen;
    out[k++] = '.';
    if (!put_tokens(out, outsize, &k, pbx ? pbx : "", false) || k + 1 >= outsize)
        return SB_ETOOBIG;
    out[k++] = '.';
    if (!put_tokens(out, outsize, &k, type ? type : "", true))
        return SB_ETOOBIG;
    out[k] = '\0';
    return 0;
}

/* A subject prefix or stream subject: dot-separated non-empty tokens without spaces. */
static bool is_valid_subject(const char *s, bool is_wildcard_ok)
{
    bool is_empty = true;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s == '.') {
            if (is_empty)
                return false;
            is_empty = true;
            continue;
        }
        if ((unsigned char)*s <= ' ' || *s == 0x7f || (!is_wildcard_ok && (*s == '*' || *s == '>')))
            return false;
        is_empty = false;
    }
    return !is_empty;
}

/* --- the worker: connection and stream ---------------------------------------------------- */

static void on_reconnected(natsConnection *nc, void *closure)
{
    sink_nats *s = closure;
    (void)nc;
    atomic_store(&s->needs_stream_check, true);
}

static void ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

/* The comma-separated url list as the connection's server pool. */
static natsStatus set_servers(natsOptions *o, const char *list)
{
    const char *urls[16];
    char *copy = strdup(list), *save = NULL;
    int n = 0;
    natsStatus st;
    if (!copy)
        return NATS_NO_MEMORY;
    for (char *t = strtok_r(copy, ", \t", &save); t && n < 16; t = strtok_r(NULL, ", \t", &save))
        urls[n++] = t;
    st = n ? natsOptions_SetServers(o, urls, n) : NATS_INVALID_ARG;
    free(copy); /* libnats copied the strings */
    return st;
}

/* Connects (once; libnats then reconnects on its own). 0 or SB_EDISCONN with why filled. */
static int worker_connect(sink_nats *s, char *why, size_t whysize)
{
    natsOptions *o = NULL;
    jsOptions jo;
    natsStatus st;
    int rc = SB_EDISCONN;
    if (s->js)
        return 0;
    if (!s->nc) {
        st = natsOptions_Create(&o);
        if (st == NATS_OK)
            st = set_servers(o, s->url);
        if (st == NATS_OK && !strncmp(s->url, "tls://", 6))
            st = natsOptions_SetSecure(o, true); /* not covered by the tests */
        if (st == NATS_OK && s->ca_file)
            st = natsOptions_LoadCATrustedCertificates(o, s->ca_file);
        if (st == NATS_OK)
            st = natsOptions_SetName(o, "switchboard");
        if (st == NATS_OK)
            st = natsOptions_SetTimeout(o, s->timeout_ms);
        /* One publish at a time waits for libnats' flusher thread (about 1 ms a message
         * measured); send at once instead. Pipelined batches are better served by buffering. */
        if (st == NATS_OK && s->max_pending == 1)
            st = natsOptions_SetSendAsap(o, true);
        if (st == NATS_OK)
            st = natsOptions_SetMaxReconnect(o, -1);
        if (st == NATS_OK)
            st = natsOptions_SetReconnectWait(o, 250);
        if (st == NATS_OK)
            st = natsOptions_SetReconnectedCB(o, on_reconnected, s);
        if (st == NATS_OK)
            st = natsOptions_SetRetryOnFailedConnect(o, true, on_reconnected, s);
        if (st == NATS_OK && (s->user || s->password))
            st = natsOptions_SetUserInfo(o, s->user, s->password);
        if (st == NATS_OK && s->token)
            st = natsOptions_SetToken(o, s->token);
        if (st == NATS_OK && s->creds)
            st = natsOptions_SetUserCredentialsFromFiles(o, s->creds, NULL);
        if (st == NATS_OK) {
            st = natsConnection_Connect(&s->nc, o);
            if (st == NATS_NOT_YET_CONNECTED)
                st = NATS_OK; /* connects in the background */
        }
        natsOptions_Destroy(o);
        if (st != NATS_OK) {
            snprintf(why, whysize, "cannot connect to %s: %s", s->url, natsStatus_GetText(st));
            s->nc = NULL;
            goto out;
        }
    }
    jsOptions_Init(&jo);
    jo.Wait = s->timeout_ms;
    jo.PublishAsync.AckHandler = ack_handler;
    jo.PublishAsync.AckHandlerClosure = s;
    jo.PublishAsync.MaxPending = s->max_pending + 1; /* the worker itself keeps below it */
    st = natsConnection_JetStream(&s->js, s->nc, &jo);
    if (st != NATS_OK) {
        snprintf(why, whysize, "JetStream context: %s", natsStatus_GetText(st));
        s->js = NULL;
        goto out;
    }
    rc = 0;
out:
    return rc;
}

/* Makes sure the stream exists (creating it when allowed). 0 or SB_EFAILED with why filled. */
static int worker_ensure_stream(sink_nats *s, char *why, size_t whysize)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    jsStreamConfig sc;
    natsStatus st;
    if (atomic_exchange(&s->needs_stream_check, false))
        s->is_stream_ok = false;
    if (s->is_stream_ok)
        return 0;
    st = js_GetStreamInfo(&si, s->js, s->stream, NULL, &jerr);
    if (st == NATS_OK) {
        jsStreamInfo_Destroy(si);
        s->is_stream_ok = true;
        return 0;
    }
    if (st != NATS_NOT_FOUND) {
        snprintf(why, whysize, "stream %s: %s (%d)", s->stream, natsStatus_GetText(st), (int)jerr);
        return SB_EFAILED;
    }
    if (s->is_create_disabled) {
        snprintf(why, whysize, "stream %s does not exist (create_stream = no)", s->stream);
        return SB_EFAILED;
    }
    jsStreamConfig_Init(&sc);
    sc.Name = s->stream;
    sc.Subjects = (const char **)s->subjects;
    sc.SubjectsLen = (int)s->nsubjects;
    sc.Storage = s->is_memory_storage ? js_MemoryStorage : js_FileStorage;
    sc.Duplicates = s->dup_window_ms * 1000000;
    sc.MaxAge = s->max_age_ms * 1000000;
    sc.MaxBytes = s->max_bytes ? s->max_bytes : -1;
    sc.MaxMsgSize = s->max_msg_size ? s->max_msg_size : -1;
    sc.Replicas = s->replicas;
    jerr = 0;
    st = js_AddStream(NULL, s->js, &sc, NULL, &jerr);
    if (st != NATS_OK && jerr != JSStreamNameExistErr) { /* another node may have won the race */
        snprintf(why, whysize, "cannot create stream %s: %s (%d)", s->stream,
                 natsStatus_GetText(st), (int)jerr);
        return SB_EFAILED;
    }
    if (st == NATS_OK)
        SB_INFO(SUB, "created JetStream stream %s (%s, duplicate window %lld ms)", s->stream,
                s->is_memory_storage ? "memory" : "file", (long long)s->dup_window_ms);
    s->is_stream_ok = true;
    return 0;
}

/* --- the worker: publishing --------------------------------------------------------------- */

static int slot_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const nj_slot *)a)->msg, y = (uintptr_t)((const nj_slot *)b)->msg;
    return x < y ? -1 : x > y;
}

/* The event index of msg in job, or -1. Called with mu held. */
static long job_find(const nj_job *j, const natsMsg *msg)
{
    nj_slot key = {msg, 0};
    const nj_slot *hit;
    if (!j || !j->nslots)
        return -1;
    hit = bsearch(&key, j->slots, j->nslots, sizeof key, slot_cmp);
    return hit ? (long)hit->idx : -1;
}

/* Sets the verdict of event i to OK (mu held). */
static void job_ok(nj_job *j, size_t i)
{
    j->res[i] = (outbox_result){OUTBOX_OK, 0, NULL};
}

/* Sets a RETRY or DEAD verdict of event i with its reason (mu held, or before publishing). */
static void job_set(nj_job *j, size_t i, outbox_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void job_set(nj_job *j, size_t i, outbox_verdict v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why[i], NJ_WHY, fmt, ap);
    va_end(ap);
    j->res[i] = (outbox_result){v, 0, j->why[i]};
    if (v == OUTBOX_RETRY)
        j->has_retry = true;
}

/* A server's refusal that retrying cannot fix. */
static bool is_permanent(natsStatus st, jsErrCode code)
{
    if (st == NATS_MAX_PAYLOAD || st == NATS_INVALID_SUBJECT || st == NATS_INVALID_ARG)
        return true;
    switch ((int)code) {
    case JSStreamMessageExceedsMaximumErr: /* 10054: larger than the stream's max_msg_size */
    case 10097:                            /* JSStreamHeaderExceedsMaximumErr */
    case 10173:                            /* JSMessageTTLInvalidErr (newer servers) */
        return true;
    default:
        return false; /* store full, no quorum, no responders, timeouts: try again later */
    }
}

/* libnats thread: one publish answered (ack, server error, or its MaxWait timed out). */
static void ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    sink_nats *s = closure;
    nj_job *j;
    long i;
    (void)js;
    uv_mutex_lock(&s->mu);
    j = s->cur;
    i = job_find(j, msg);
    if (i < 0 || j->is_answered[i]) {
        uv_mutex_unlock(&s->mu);
        natsMsg_Destroy(msg); /* a job that gave up on it: ours to free */
        return;
    }
    j->is_answered[i] = true;
    j->is_owned[i] = true;
    j->answered++;
    if (pa)
        job_ok(j, (size_t)i);
    else {
        char text[NJ_WHY - 32];
        natsStatus st = pae ? pae->Err : NATS_ERR;
        jsErrCode code = pae ? pae->ErrCode : 0;
        snprintf(text, sizeof text, "%s%s%s (%d)", natsStatus_GetText(st),
                 pae && pae->ErrText ? ": " : "", pae && pae->ErrText ? pae->ErrText : "",
                 (int)code);
        if (st == NATS_NO_RESPONDERS) {
            /* the stream may be gone (a server restarted without its store), or its subjects
             * do not cover this one: the next delivery checks it again */
            atomic_store(&s->needs_stream_check, true);
            job_set(j, (size_t)i, OUTBOX_RETRY, "no stream takes %.80s (stream %.40s missing?)",
                    natsMsg_GetSubject(msg), s->stream);
            goto out;
        }
        job_set(j, (size_t)i, is_permanent(st, code) ? OUTBOX_DEAD : OUTBOX_RETRY, "%s%s",
                st == NATS_TIMEOUT ? "no publish ack in time: " : "publish refused: ", text);
    }
out:
    uv_cond_broadcast(&s->cv);
    uv_mutex_unlock(&s->mu);
}

/* Builds the messages of j. 0 or SB_ENOMEM; events that cannot form a message are DEAD. */
static int job_build(sink_nats *s, nj_job *j)
{
    char subject[NJ_SUBJECT_MAX];
    for (size_t i = 0; i < j->n; i++) {
        const outbox_event *ev = j->batch[i];
        natsMsg *m = NULL;
        natsStatus st;
        if (sink_nats_subject(s->prefix, ev->pbx, ev->type, subject, sizeof subject) != 0) {
            job_set(j, i, OUTBOX_DEAD, "subject too long for %s", ev->type);
            j->is_answered[i] = true;
            continue;
        }
        if (ev->payload_len > INT32_MAX) {
            job_set(j, i, OUTBOX_DEAD, "event too large");
            j->is_answered[i] = true;
            continue;
        }
        st = natsMsg_Create(&m, subject, NULL, ev->payload, (int)ev->payload_len);
        if (st == NATS_OK)
            st = natsMsgHeader_Set(m, "Nats-Msg-Id", ev->id);
        if (st == NATS_OK)
            st = natsMsgHeader_Set(m, "Switchboard-Type", ev->type);
        if (st == NATS_OK && ev->call_key && *ev->call_key)
            st = natsMsgHeader_Set(m, "Switchboard-Call", ev->call_key);
        if (st == NATS_NO_MEMORY) {
            natsMsg_Destroy(m);
            return SB_ENOMEM;
        }
        if (st != NATS_OK) {
            natsMsg_Destroy(m);
            job_set(j, i, OUTBOX_DEAD, "cannot build the message: %s", natsStatus_GetText(st));
            j->is_answered[i] = true;
            continue;
        }
        j->msgs[i] = m;
        j->is_owned[i] = true;
        j->slots[j->nslots++] = (nj_slot){m, i};
    }
    qsort(j->slots, j->nslots, sizeof *j->slots, slot_cmp);
    return 0;
}

/* Deadline helper: nanoseconds from now for uv_cond_timedwait. */
static uint64_t ns_left(uint64_t deadline)
{
    uint64_t now = uv_hrtime();
    return deadline > now ? deadline - now : 0;
}

/* Publishes j and waits for its acks. Every res[] is set when it returns. */
static void job_publish(sink_nats *s, nj_job *j)
{
    jsPubOptions po;
    uint64_t deadline;
    char why[NJ_WHY];
    int rc;

    for (size_t i = 0; i < j->n; i++)
        job_set(j, i, OUTBOX_RETRY, "not sent");
    j->has_retry = false;
    if ((rc = worker_connect(s, why, sizeof why)) == 0 &&
        natsConnection_Status(s->nc) != NATS_CONN_STATUS_CONNECTED) {
        snprintf(why, sizeof why, "not connected to %s", s->url);
        rc = SB_EDISCONN;
    }
    if (rc == 0)
        rc = worker_ensure_stream(s, why, sizeof why);
    if (rc == 0)
        rc = job_build(s, j);
    if (rc != 0) {
        if (rc == SB_ENOMEM)
            snprintf(why, sizeof why, "out of memory");
        for (size_t i = 0; i < j->n; i++)
            if (!j->is_answered[i])
                job_set(j, i, OUTBOX_RETRY, "%s", why);
        return;
    }

    jsPubOptions_Init(&po);
    po.MaxWait = s->timeout_ms;
    uv_mutex_lock(&s->mu);
    s->cur = j;
    for (size_t i = 0; i < j->n; i++) {
        natsMsg *m = j->msgs[i];
        natsStatus st;
        if (!m)
            continue; /* DEAD already */
        deadline = uv_hrtime() + (uint64_t)s->timeout_ms * 1000000;
        while (j->sent - j->answered >= (size_t)s->max_pending && !j->has_retry &&
               !atomic_load(&s->is_canceled) && ns_left(deadline) > 0)
            (void)uv_cond_timedwait(&s->cv, &s->mu, ns_left(deadline));
        if (j->has_retry || atomic_load(&s->is_canceled) ||
            j->sent - j->answered >= (size_t)s->max_pending) {
            const char *what = atomic_load(&s->is_canceled) ? "shutting down"
                               : j->has_retry               ? "an earlier event of the batch failed"
                                                            : "no publish ack in time";
            for (size_t k = i; k < j->n; k++)
                if (!j->is_answered[k])
                    job_set(j, k, OUTBOX_RETRY, "not sent: %s", what);
            break;
        }
        /* libnats may answer on its threads before js_PublishMsgAsync returns: unlock. */
        j->is_owned[i] = false;
        uv_mutex_unlock(&s->mu);
        st = js_PublishMsgAsync(s->js, &m, &po);
        uv_mutex_lock(&s->mu);
        if (st == NATS_OK) {
            j->sent++;
            continue;
        }
        /* not taken: ours again */
        j->is_owned[i] = true;
        j->is_answered[i] = true;
        if (st == NATS_NO_RESPONDERS)
            atomic_store(&s->needs_stream_check, true);
        job_set(j, i, is_permanent(st, 0) ? OUTBOX_DEAD : OUTBOX_RETRY, "cannot publish: %s",
                natsStatus_GetText(st));
    }

    /* Wait for the acks; each publish has its own MaxWait, plus a margin for libnats' timer. */
    deadline = uv_hrtime() + ((uint64_t)s->timeout_ms + 2000) * 1000000;
    while (j->answered < j->sent && !atomic_load(&s->is_canceled) && ns_left(deadline) > 0)
        (void)uv_cond_timedwait(&s->cv, &s->mu, ns_left(deadline));
    if (j->answered < j->sent) {
        natsMsgList pl = {NULL, 0};
        const char *what = atomic_load(&s->is_canceled) ? "no publish ack: shutting down"
                                                        : "no publish ack in time";
        uv_mutex_unlock(&s->mu);
        if (js_PublishAsyncGetPendingList(&pl, s->js) != NATS_OK)
            pl = (natsMsgList){NULL, 0};
        uv_mutex_lock(&s->mu);
        for (int k = 0; k < pl.Count; k++) {
            long i = job_find(j, pl.Msgs[k]);
            if (i < 0 || j->is_answered[i])
                continue;
            j->is_answered[i] = true;
            j->answered++;
            job_set(j, (size_t)i, OUTBOX_RETRY, "%s", what); /* natsMsgList_Destroy frees it */
        }
        /* an ack being handled while the list was taken: wait for it, briefly */
        deadline = uv_hrtime() + 1000ull * 1000000;
        while (j->answered < j->sent && ns_left(deadline) > 0)
            (void)uv_cond_timedwait(&s->cv, &s->mu, ns_left(deadline));
        for (size_t i = 0; i < j->n; i++)
            if (j->msgs[i] && !j->is_answered[i] && !j->is_owned[i]) {
                j->is_answered[i] = true; /* a late handler call frees it (not found) */
                job_set(j, i, OUTBOX_RETRY, "%s", what);
            }
        s->cur = NULL;
        uv_mutex_unlock(&s->mu);
        natsMsgList_Destroy(&pl);
        uv_mutex_lock(&s->mu);
    }
    s->cur = NULL;
    uv_mutex_unlock(&s->mu);
    for (size_t i = 0; i < j->n; i++)
        if (j->msgs[i] && j->is_owned[i])
            natsMsg_Destroy(j->msgs[i]);
}

static void worker_main(void *arg)
{
    sink_nats *s = arg;
    uv_mutex_lock(&s->mu);
    for (;;) {
        nj_job *j;
        while (!s->todo_head && !s->is_stopping)
            uv_cond_wait(&s->cv, &s->mu);
        if (!s->todo_head)
            break; /* stopping and nothing left */
        j = s->todo_head;
        s->todo_head = j->next;
        if (!s->todo_head)
            s->todo_tail = NULL;
        j->next = NULL;
        uv_mutex_unlock(&s->mu);
        if (atomic_load(&s->is_canceled)) {
            for (size_t i = 0; i < j->n; i++)
                job_set(j, i, OUTBOX_RETRY, "not sent: shutting down");
        } else
            job_publish(s, j);
        uv_mutex_lock(&s->mu);
        if (s->done_tail)
            s->done_tail->next = j;
        else
            s->done_head = j;
        s->done_tail = j;
        uv_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
        uv_mutex_lock(&s->mu);
    }
    uv_mutex_unlock(&s->mu);
    if (s->js)
        jsCtx_Destroy(s->js);
    if (s->nc) {
        natsConnection_Close(s->nc);
        natsConnection_Destroy(s->nc);
    }
    s->js = NULL;
    s->nc = NULL;
}

/* --- the loop side ------------------------------------------------------------------------ */

static void job_free(nj_job *j)
{
    free(j->res);
    free(j->why);
    free(j->msgs);
    free(j->slots);
    free(j->is_answered);
    free(j->is_owned);
    free(j);
}

static void on_async(uv_async_t *h)
{
    sink_nats *s = h->data;
    nj_job *j;
    uv_mutex_lock(&s->mu);
    j = s->done_head;
    s->done_head = s->done_tail = NULL;
    uv_mutex_unlock(&s->mu);
    while (j) {
        nj_job *next = j->next;
        j->done(j->d, j->res);
        job_free(j);
        j = next;
    }
}

static int nats_start(sink_nats *s)
{
    if (s->is_started)
        return 0;
    if (uv_mutex_init(&s->mu) != 0)
        return SB_ENOMEM;
    if (uv_cond_init(&s->cv) != 0) {
        uv_mutex_destroy(&s->mu);
        return SB_ENOMEM;
    }
    s->is_stopping = false;
    if (uv_thread_create(&s->thread, worker_main, s) != 0)
        goto fail_thread;
    /* The worker touches the async handle only for a job, and there is none yet. */
    if (uv_async_init(s->loop, &s->async, on_async) != 0)
        goto fail_async;
    s->async.data = s;
    s->is_started = true;
    return 0;
fail_async:
    uv_mutex_lock(&s->mu);
    s->is_stopping = true;
    uv_cond_broadcast(&s->cv);
    uv_mutex_unlock(&s->mu);
    uv_thread_join(&s->thread);
fail_thread:
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    return SB_ENOMEM;
}

static int nats_deliver(void *impl, const outbox_event *const *batch, size_t n, outbox_done_cb done,
                        outbox_delivery *d)
{
    sink_nats *s = impl;
    nj_job *j;
    int rc;
    if ((rc = nats_start(s)) != 0)
        return rc;
    j = calloc(1, sizeof *j);
    if (!j)
        return SB_ENOMEM;
    j->d = d;
    j->done = done;
    j->batch = batch;
    j->n = n;
    j->res = calloc(n, sizeof *j->res);
    j->why = calloc(n, sizeof *j->why);
    j->msgs = calloc(n, sizeof *j->msgs);
    j->slots = calloc(n, sizeof *j->slots);
    j->is_answered = calloc(n, sizeof *j->is_answered);
    j->is_owned = calloc(n, sizeof *j->is_owned);
    if (!j->res || !j->why || !j->msgs || !j->slots || !j->is_answered || !j->is_owned) {
        job_free(j);
        return SB_ENOMEM;
    }
    uv_mutex_lock(&s->mu);
    if (s->todo_tail)
        s->todo_tail->next = j;
    else
        s->todo_head = j;
    s->todo_tail = j;
    uv_cond_broadcast(&s->cv);
    uv_mutex_unlock(&s->mu);
    return 0;
}

static void nats_cancel(void *impl)
{
    sink_nats *s = impl;
    s->base.is_canceled = true;
    atomic_store(&s->is_canceled, true);
    if (s->is_started) {
        uv_mutex_lock(&s->mu);
        uv_cond_broadcast(&s->cv);
        uv_mutex_unlock(&s->mu);
    }
}

static void free_fields(sink_nats *s)
{
    sink_filter_free(&s->base.filter);
    free(s->url);
    free(s->prefix);
    free(s->stream);
    free(s->user);
    if (s->password)
        memset(s->password, 0, strlen(s->password));
    free(s->password);
    if (s->token)
        memset(s->token, 0, strlen(s->token));
    free(s->token);
    free(s->creds);
    free(s->ca_file);
    for (size_t i = 0; i < s->nsubjects; i++)
        free(s->subjects[i]);
    free(s->subjects);
    free(s);
}

static void on_async_closed(uv_handle_t *h)
{
    free_fields(h->data);
}

/* Called after the last delivery finished: stops the worker (closing the connection) and frees
 * the sink once the async handle is closed (the loop must run on, as at every outbox_close). */
static void nats_free(void *impl)
{
    sink_nats *s = impl;
    if (!s)
        return;
    if (!s->is_started) {
        free_fields(s);
        return;
    }
    atomic_store(&s->is_canceled, true);
    uv_mutex_lock(&s->mu);
    s->is_stopping = true;
    uv_cond_broadcast(&s->cv);
    uv_mutex_unlock(&s->mu);
    uv_thread_join(&s->thread);
    /* jobs finished after the outbox stopped listening are dropped unreported */
    for (nj_job *j = s->done_head, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    s->done_head = s->done_tail = NULL;
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    uv_close((uv_handle_t *)&s->async, on_async_closed);
}

const outbox_sink_ops sink_nats_ops = {
    .kind = "nats",
    .wants = sink_wants,
    .deliver = nats_deliver,
    .cancel = nats_cancel,
    .free = nats_free,
};

/* --- construction ------------------------------------------------------------------------- */

static int dup_opt(char **dst, const char *src)
{
    if (!src || !*src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : SB_ENOMEM;
}

/* Splits a comma list into s->subjects (trimmed). 0, SB_EINVAL or SB_ENOMEM. */
static int split_subjects(sink_nats *s, const char *list)
{
    const char *p = list;
    size_t cap = 1;
    for (const char *q = list; *q; q++)
        cap += *q == ',';
    s->subjects = calloc(cap, sizeof *s->subjects);
    if (!s->subjects)
        return SB_ENOMEM;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len;
        if (!e)
            e = p + strlen(p);
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        len = (size_t)(e - p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (!(s->subjects[s->nsubjects] = strndup(p, len)))
            return SB_ENOMEM;
        if (!is_valid_subject(s->subjects[s->nsubjects++], true))
            return SB_EINVAL;
        p = *e ? e + 1 : e;
    }
    return s->nsubjects ? 0 : SB_EINVAL;
}

int sink_nats_new(uv_loop_t *loop, const sink_nats_config *cfg, sink_nats **out)
{
    sink_nats *s;
    char subj[NJ_SUBJECT_MAX];
    int rc = SB_ENOMEM;
    *out = NULL;
    if (!loop || !cfg)
        return SB_EINVAL;
    if (cfg->subject_prefix && !is_valid_subject(cfg->subject_prefix, false))
        return SB_EINVAL;
    if (cfg->stream && (!*cfg->stream || strpbrk(cfg->stream, " \t.*>/\\")))
        return SB_EINVAL;
    s = calloc(1, sizeof *s);
    if (!s)
        return SB_ENOMEM;
    s->base.kind = "nats";
    s->loop = loop;
    atomic_init(&s->is_canceled, false);
    atomic_init(&s->needs_stream_check, false);
    if ((rc = sink_filter_parse(&s->base.filter, &cfg->filter)))
        goto fail;
    rc = SB_ENOMEM;
    if (dup_opt(&s->url, cfg->url ? cfg->url : "nats://127.0.0.1:4222") ||
        dup_opt(&s->prefix, cfg->subject_prefix ? cfg->subject_prefix : "switchboard") ||
        dup_opt(&s->stream, cfg->stream ? cfg->stream : "SWITCHBOARD") ||
        dup_opt(&s->user, cfg->user) || dup_opt(&s->password, cfg->password) ||
        dup_opt(&s->token, cfg->token) || dup_opt(&s->creds, cfg->creds) ||
        dup_opt(&s->ca_file, cfg->ca_file))
        goto fail;
    snprintf(subj, sizeof subj, "%s.>", s->prefix);
    if ((rc = split_subjects(s, cfg->stream_subjects && *cfg->stream_subjects ? cfg->stream_subjects
                                                                              : subj)))
        goto fail;
    s->is_memory_storage = cfg->is_memory_storage;
    s->is_create_disabled = cfg->is_create_disabled;
    s->dup_window_ms = cfg->duplicate_window_ms > 0 ? cfg->duplicate_window_ms : 120000;
    s->max_age_ms = cfg->stream_max_age_ms > 0 ? cfg->stream_max_age_ms : 0;
    s->max_bytes = cfg->stream_max_bytes > 0 ? cfg->stream_max_bytes : 0;
    s->max_msg_size = cfg->stream_max_msg_size > 0 ? cfg->stream_max_msg_size : 0;
    s->replicas = cfg->replicas > 0 ? cfg->replicas : 1;
    s->max_pending = cfg->max_pending > 0 ? cfg->max_pending : 256;
    s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    *out = s;
    return 0;
fail:
    free_fields(s);
    return rc;
}
