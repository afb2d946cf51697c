/* factory.c: [sink NAME] sections to sinks (factory.h). Every key is checked against the kind's
 * list; an unknown key, a bad value or a missing key is an error naming file:line. Secrets (the
 * webhook `secret`, the AWS `secret_key`) may also come from `<key>_file` (first line) or
 * `<key>_env` (an environment variable), as for [pbx] secrets, and never appear in a message.
 */
#include "sinks/factory.h"

#include "core/error.h"
#include "sinks/lambda.h"
#include "sinks/nats.h"
#include "sinks/s3.h"
#include "sinks/sqs.h"
#include "sinks/webhook.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 16

typedef struct fx {
    const sb_config *cfg;
    const sb_config_section *sec;
    char *err;
    size_t errsize;
    int rc;
    char *secrets[2]; /* resolved secrets, wiped and freed at the end */
} fx;

static void fx_err(fx *x, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fx_err(fx *x, int line, const char *key, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    if (x->rc)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(x->err, x->errsize, "%s:%d: [sink %s]%s%s: %s",
             x->cfg && x->cfg->path ? x->cfg->path : "<config>", line,
             x->sec->name ? x->sec->name : "", key ? " " : "", key ? key : "", msg);
    x->rc = SB_ECONFIG;
}

static const sb_config_kv *find(const fx *x, const char *key)
{
    const sb_config_kv *hit = NULL;
    for (size_t i = 0; i < x->sec->nkv; i++)
        if (strcmp(x->sec->kv[i].key, key) == 0)
            hit = &x->sec->kv[i];
    return hit;
}

static const char *get(const fx *x, const char *key)
{
    const sb_config_kv *kv = find(x, key);
    return kv ? kv->value : NULL;
}

static bool get_bool(fx *x, const char *key, bool dflt)
{
    const sb_config_kv *kv = find(x, key);
    if (!kv)
        return dflt;
    if (!strcmp(kv->value, "yes") || !strcmp(kv->value, "true") || !strcmp(kv->value, "on") ||
        !strcmp(kv->value, "1"))
        return true;
    if (!strcmp(kv->value, "no") || !strcmp(kv->value, "false") || !strcmp(kv->value, "off") ||
        !strcmp(kv->value, "0"))
        return false;
    fx_err(x, kv->line, key, "'%s' is not yes or no", kv->value);
    return dflt;
}

static uint32_t get_ms(fx *x, const char *key, uint32_t dflt)
{
    const sb_config_kv *kv = find(x, key);
    uint32_t ms;
    if (!kv)
        return dflt;
    if (sb_config_parse_duration(kv->value, &ms) != 0 || ms == 0) {
        fx_err(x, kv->line, key, "'%s' is not a duration (e.g. 500ms, 10s, 2m)", kv->value);
        return dflt;
    }
    return ms;
}

static long long get_num(fx *x, const char *key, long long dflt, long long min, long long max)
{
    const sb_config_kv *kv = find(x, key);
    char *end;
    long long v;
    if (!kv)
        return dflt;
    v = strtoll(kv->value, &end, 10);
    if (end == kv->value || v < min || v > max) {
        fx_err(x, kv->line, key, "'%s' is not a number from %lld to %lld", kv->value, min, max);
        return dflt;
    }
    if (*end) {
        fx_err(x, kv->line, key, "'%s' is not a number", kv->value);
        return dflt;
    }
    return v;
}

/* A long duration ("7d" too), parsed like the [store] keys. */
static int64_t get_ms64(fx *x, const char *key, int64_t dflt)
{
    const sb_config_kv *kv = find(x, key);
    int64_t ms;
    if (!kv)
        return dflt;
    if (outbox_parse_ms(kv->value, &ms) != 0 || ms <= 0) {
        fx_err(x, kv->line, key, "'%s' is not a duration (e.g. 30s, 2h, 7d)", kv->value);
        return dflt;
    }
    return ms;
}

/* A size in bytes ("256k", "8M", "8MiB"), parsed like the [store] keys, within [min, max]. */
static int64_t get_bytes(fx *x, const char *key, int64_t min, int64_t max)
{
    const sb_config_kv *kv = find(x, key);
    int64_t v;
    if (!kv)
        return 0;
    if (outbox_parse_bytes(kv->value, &v) != 0 || v < min || v > max) {
        fx_err(x, kv->line, key, "'%s' is not a size from %lld to %lld bytes (e.g. 256k, 8M)",
               kv->value, (long long)min, (long long)max);
        return 0;
    }
    return v;
}

/* A secret from `key`, `key_file` (first line) or `key_env`; owned by x (slot). */
static const char *get_secret(fx *x, const char *key, int slot)
{
    char k_file[64], k_env[64];
    const sb_config_kv *kv = find(x, key), *kf, *ke;
    snprintf(k_file, sizeof k_file, "%s_file", key);
    snprintf(k_env, sizeof k_env, "%s_env", key);
    kf = find(x, k_file);
    ke = find(x, k_env);
    if ((kv != NULL) + (kf != NULL) + (ke != NULL) > 1) {
        const sb_config_kv *second = kv && kf ? kf : ke;
        fx_err(x, second->line, second->key, "give only one of %s, %s, %s", key, k_file, k_env);
        return NULL;
    }
    if (kv)
        return kv->value;
    if (ke) {
        const char *v = getenv(ke->value);
        if (!v || !*v) {
            fx_err(x, ke->line, ke->key, "environment variable %s is not set", ke->value);
            return NULL;
        }
        return v;
    }
    if (kf) {
        char line[1024];
        FILE *f = fopen(kf->value, "r");
        if (!f || !fgets(line, sizeof line, f)) {
            if (f)
                fclose(f);
            fx_err(x, kf->line, kf->key, "cannot read %s", kf->value);
            return NULL;
        }
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        x->secrets[slot] = strdup(line);
        memset(line, 0, sizeof line);
        if (!x->secrets[slot])
            x->rc = SB_ENOMEM;
        return x->secrets[slot];
    }
    return NULL;
}

static const char *const common_keys[] = {
    "kind",         "types",   "pbxs",         "queues",      "batch_max",   "max_inflight",
    "max_attempts", "max_age", "backoff_base", "backoff_max", "partitioned", "start_at_end",
    "timeout",      NULL};
static const char *const aws_keys[] = {
    "region",         "access_key",    "secret_key", "secret_key_file",
    "secret_key_env", "session_token", "endpoint",   NULL};
static const char *const webhook_keys[] = {"url",   "secret", "secret_file", "secret_env",
                                           "batch", "header", NULL};
static const char *const s3_keys[] = {"bucket",         "prefix", "max_object_size",
                                      "flush_interval", "cdr",    NULL};
static const char *const sqs_keys[] = {"queue_url", "max_message_size", NULL};
static const char *const lambda_keys[] = {"function",   "url",   "qualifier",
                                          "invocation", "batch", NULL};

static bool in(const char *const *list, const char *k)
{
    for (; list && *list; list++)
        if (!strcmp(*list, k))
            return true;
    return false;
}

static void check_keys(fx *x, const char *const *kind_keys, bool is_aws)
{
    for (size_t i = 0; i < x->sec->nkv && !x->rc; i++) {
        const sb_config_kv *kv = &x->sec->kv[i];
        if (!in(common_keys, kv->key) && !in(kind_keys, kv->key) &&
            !(is_aws && in(aws_keys, kv->key)))
            fx_err(x, kv->line, kv->key, "unknown key for this kind of sink");
    }
}

static const char *require(fx *x, const char *key)
{
    const char *v = get(x, key);
    if (!v || !*v)
        fx_err(x, x->sec->line, key, "missing (required for kind %s)", get(x, "kind"));
    return v;
}

/* Reports a constructor failure in words. */
static void built(fx *x, int rc, const char *what)
{
    if (!rc || x->rc)
        return;
    if (rc == SB_ENOMEM) {
        x->rc = rc;
        snprintf(x->err, x->errsize, "out of memory");
        return;
    }
    fx_err(x, x->sec->line, NULL, "%s",
           rc == SB_ECONFIG ? "AWS credentials need both access_key and secret_key (or "
                              "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and a region"
                            : what);
}

int sink_from_section(uv_loop_t *loop, httpc *http, const sb_config *cfg,
                      const sb_config_section *sec, sink_built *out, char *err, size_t errsize)
{
    fx x = {.cfg = cfg, .sec = sec, .err = err, .errsize = errsize};
    const char *kind = NULL;
    sink_filter_spec filter;
    sink_built b;
    long timeout;
    memset(&b, 0, sizeof b);
    if (errsize)
        err[0] = '\0';
    if (!sec || strcmp(sec->kind, "sink") != 0 || !sec->name)
        return SB_EINVAL;
    kind = get(&x, "kind");
    if (!kind) {
        fx_err(&x, sec->line, "kind", "missing (webhook, s3, sqs, lambda or nats)");
        return x.rc;
    }
    filter = (sink_filter_spec){get(&x, "types"), get(&x, "pbxs"), get(&x, "queues")};
    b.ocfg.name = sec->name;
    b.ocfg.is_partitioned = get_bool(&x, "partitioned", false);
    b.ocfg.is_start_at_end = get_bool(&x, "start_at_end", false);
    b.ocfg.batch_max = (int)get_num(&x, "batch_max", 0, 1, 100000);
    b.ocfg.max_inflight = (int)get_num(&x, "max_inflight", 0, 1, 1024);
    b.ocfg.max_attempts = (uint32_t)get_num(&x, "max_attempts", 0, 1, 1000000);
    b.ocfg.max_age_ms = get_ms64(&x, "max_age", 0);
    b.ocfg.backoff_base_ms = get_ms(&x, "backoff_base", 0);
    b.ocfg.backoff_max_ms = get_ms(&x, "backoff_max", 0);
    timeout = (long)get_ms(&x, "timeout", 0);

    if (!strcmp(kind, "webhook")) {
        const char *headers[MAX_HEADERS + 1];
        size_t nh = 0;
        sink_webhook *w = NULL;
        check_keys(&x, webhook_keys, false);
        for (size_t i = 0; i < sec->nkv && !x.rc; i++)
            if (!strcmp(sec->kv[i].key, "header")) {
                if (nh == MAX_HEADERS || !strchr(sec->kv[i].value, ':'))
                    fx_err(&x, sec->kv[i].line, "header",
                           nh == MAX_HEADERS ? "at most 16 headers" : "expected 'Name: value'");
                else
                    headers[nh++] = sec->kv[i].value;
            }
        headers[nh] = NULL;
        sink_webhook_config wc = {.url = require(&x, "url"),
                                  .secret = get_secret(&x, "secret", 0),
                                  .is_batch = get_bool(&x, "batch", false),
                                  .is_partitioned = b.ocfg.is_partitioned,
                                  .timeout_ms = timeout,
                                  .headers = headers,
                                  .filter = filter};
        if (!b.ocfg.is_partitioned && b.ocfg.max_inflight > 1)
            fx_err(&x, sec->line, "max_inflight", "needs partitioned = yes");
        if (!x.rc)
            built(&x, sink_webhook_new(http, &wc, &w),
                  "bad url (http:// or https://), header or filter");
        b.ops = &sink_webhook_ops;
        b.impl = w;
    } else if (!strcmp(kind, "s3")) {
        sink_s3 *s = NULL;
        check_keys(&x, s3_keys, true);
        sink_s3_config sc = {.bucket = require(&x, "bucket"),
                             .endpoint = get(&x, "endpoint"),
                             .prefix = get(&x, "prefix"),
                             .region = get(&x, "region"),
                             .access_key = get(&x, "access_key"),
                             .secret_key = get_secret(&x, "secret_key", 1),
                             .session_token = get(&x, "session_token"),
                             .max_object_bytes = (size_t)get_bytes(&x, "max_object_size", 1024,
                                                                   5LL * 1024 * 1024 * 1024),
                             .batch_events = (uint32_t)b.ocfg.batch_max,
                             .flush_interval_ms = get_ms(&x, "flush_interval", 0),
                             .is_cdr_disabled = !get_bool(&x, "cdr", true),
                             .timeout_ms = timeout,
                             .filter = filter};
        if (!x.rc)
            built(&x, sink_s3_new(loop, http, &sc, &s), "bad bucket, endpoint or filter");
        b.ops = &sink_s3_ops;
        b.impl = s;
        if (!b.ocfg.batch_max)
            b.ocfg.batch_max = 1000;
    } else if (!strcmp(kind, "sqs")) {
        sink_sqs *q = NULL;
        check_keys(&x, sqs_keys, true);
        sink_sqs_config qc = {.queue_url = require(&x, "queue_url"),
                              .endpoint = get(&x, "endpoint"),
                              .region = get(&x, "region"),
                              .access_key = get(&x, "access_key"),
                              .secret_key = get_secret(&x, "secret_key", 1),
                              .session_token = get(&x, "session_token"),
                              .max_message_bytes =
                                  (size_t)get_bytes(&x, "max_message_size", 1024, 1024 * 1024),
                              .timeout_ms = timeout,
                              .filter = filter};
        if (!x.rc)
            built(&x, sink_sqs_new(http, &qc, &q), "bad queue_url, endpoint or filter");
        b.ops = &sink_sqs_ops;
        b.impl = q;
    } else if (!strcmp(kind, "lambda")) {
        sink_lambda *l = NULL;
        const char *inv = get(&x, "invocation");
        check_keys(&x, lambda_keys, true);
        if (inv && strcmp(inv, "sync") != 0 && strcmp(inv, "async") != 0)
            fx_err(&x, find(&x, "invocation")->line, "invocation", "'%s' is not sync or async",
                   inv);
        if (!get(&x, "function") == !get(&x, "url"))
            fx_err(&x, sec->line, "function", "give exactly one of function and url");
        sink_lambda_config lc = {.function = get(&x, "function"),
                                 .url = get(&x, "url"),
                                 .qualifier = get(&x, "qualifier"),
                                 .endpoint = get(&x, "endpoint"),
                                 .is_async = inv && !strcmp(inv, "async"),
                                 .is_batch = get_bool(&x, "batch", false),
                                 .region = get(&x, "region"),
                                 .access_key = get(&x, "access_key"),
                                 .secret_key = get_secret(&x, "secret_key", 1),
                                 .session_token = get(&x, "session_token"),
                                 .timeout_ms = timeout,
                                 .filter = filter};
        if (!x.rc)
            built(&x, sink_lambda_new(http, &lc, &l),
                  "bad function (a name, not an ARN: use qualifier for a version or alias), url, "
                  "endpoint or filter");
        b.ops = &sink_lambda_ops;
        b.impl = l;
    } else if (!strcmp(kind, "nats")) {
        sink_nats *n = NULL;
        check_keys(&x, sink_nats_keys, false);
        if (!x.rc)
            x.rc = sink_nats_from_section(loop, cfg, sec, timeout, filter, &n, err, errsize);
        b.ops = &sink_nats_ops;
        b.impl = n;
    } else {
        fx_err(&x, find(&x, "kind")->line, "kind", "'%s' is not webhook, s3, sqs, lambda or nats",
               kind);
    }
    for (int i = 0; i < 2; i++) {
        if (x.secrets[i])
            memset(x.secrets[i], 0, strlen(x.secrets[i]));
        free(x.secrets[i]);
    }
    if (x.rc) {
        if (b.impl)
            b.ops->free(b.impl);
        return x.rc;
    }
    *out = b;
    return 0;
}

int sink_add_all(uv_loop_t *loop, httpc *http, const sb_config *cfg, outbox *ob, size_t *nother,
                 char *err, size_t errsize)
{
    size_t other = 0;
    int rc = 0;
    for (size_t i = 0; cfg && i < cfg->nsections && !rc; i++) {
        const sb_config_section *sec = &cfg->sections[i];
        sink_built b;
        if (strcmp(sec->kind, "sink") != 0)
            continue;
        rc = sink_from_section(loop, http, cfg, sec, &b, err, errsize);
        if (rc == SB_ENOTFOUND) {
            other++;
            rc = 0;
            continue;
        }
        if (rc)
            break;
        if (!ob) {
            b.ops->free(b.impl);
            continue;
        }
        rc = outbox_add_sink(ob, &b.ocfg, b.ops, b.impl, NULL);
        if (rc) {
            b.ops->free(b.impl); /* not taken on error */
            snprintf(err, errsize, "%s:%d: [sink %s]: cannot add the sink: %s",
                     cfg->path ? cfg->path : "<config>", sec->line, sec->name, sb_strerror(rc));
        }
    }
    if (nother)
        *nother = other;
    return rc;
}
