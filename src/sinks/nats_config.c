/* nats_config.c: a [sink NAME] section of kind nats to a sink_nats_config (nats.h). The factory
 * (factory.c) has already checked the key names against sink_nats_keys and parsed the keys every
 * sink takes; this file reads the NATS ones and reports mistakes as "FILE:LINE: [sink NAME] key:
 * problem", like the factory.
 */
#include "sinks/nats.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- [sink NAME] kind = nats -------------------------------------------------------------- */

const char *const sink_nats_keys[] = {"url",
                                      "subject_prefix",
                                      "stream",
                                      "stream_subjects",
                                      "storage",
                                      "duplicate_window",
                                      "stream_max_age",
                                      "stream_max_bytes",
                                      "stream_max_msg_size",
                                      "replicas",
                                      "create_stream",
                                      "max_pending",
                                      "user",
                                      "password",
                                      "token",
                                      "creds",
                                      "ca_file",
                                      NULL};

typedef struct nx {
    const sb_config *cfg;
    const sb_config_section *sec;
    char *err;
    size_t errsize;
    int rc;
} nx;

static const sb_config_kv *nx_find(const nx *x, const char *key)
{
    const sb_config_kv *hit = NULL;
    for (size_t i = 0; i < x->sec->nkv; i++)
        if (!strcmp(x->sec->kv[i].key, key))
            hit = &x->sec->kv[i];
    return hit;
}

static void nx_err(nx *x, const sb_config_kv *kv, const char *problem)
{
    if (x->rc)
        return;
    snprintf(x->err, x->errsize, "%s:%d: [sink %s]%s%s: %s",
             x->cfg && x->cfg->path ? x->cfg->path : "<config>", kv ? kv->line : x->sec->line,
             x->sec->name ? x->sec->name : "", kv ? " " : "", kv ? kv->key : "", problem);
    x->rc = SB_ECONFIG;
}

static const char *nx_get(const nx *x, const char *key)
{
    const sb_config_kv *kv = nx_find(x, key);
    return kv ? kv->value : NULL;
}

static int64_t nx_ms(nx *x, const char *key)
{
    const sb_config_kv *kv = nx_find(x, key);
    int64_t ms = 0;
    if (kv && (outbox_parse_ms(kv->value, &ms) != 0 || ms <= 0))
        nx_err(x, kv, "not a duration (e.g. 2m, 1h, 7d)");
    return ms;
}

static int64_t nx_bytes(nx *x, const char *key, int64_t max)
{
    const sb_config_kv *kv = nx_find(x, key);
    int64_t v = 0;
    if (kv && (outbox_parse_bytes(kv->value, &v) != 0 || v <= 0 || v > max))
        nx_err(x, kv, "not a size (e.g. 64k, 10G)");
    return v;
}

static long nx_int(nx *x, const char *key, long min, long max)
{
    const sb_config_kv *kv = nx_find(x, key);
    char *end = NULL;
    long v;
    if (!kv)
        return 0;
    v = strtol(kv->value, &end, 10);
    if (end == kv->value || *end || v < min || v > max) {
        nx_err(x, kv, "not a number in range");
        return 0;
    }
    return v;
}

int sink_nats_from_section(uv_loop_t *loop, const sb_config *cfg, const sb_config_section *sec,
                           long timeout_ms, sink_filter_spec filter, sink_nats **out, char *err,
                           size_t errsize)
{
    nx x = {.cfg = cfg, .sec = sec, .err = err, .errsize = errsize};
    const sb_config_kv *kv;
    sink_nats_config nc = {0};
    int rc;
    *out = NULL;
    nc.url = nx_get(&x, "url");
    nc.subject_prefix = nx_get(&x, "subject_prefix");
    nc.stream = nx_get(&x, "stream");
    nc.stream_subjects = nx_get(&x, "stream_subjects");
    if ((kv = nx_find(&x, "storage"))) {
        if (!strcmp(kv->value, "memory"))
            nc.is_memory_storage = true;
        else if (strcmp(kv->value, "file") != 0)
            nx_err(&x, kv, "not file or memory");
    }
    if ((kv = nx_find(&x, "create_stream"))) {
        if (!strcmp(kv->value, "no") || !strcmp(kv->value, "false") || !strcmp(kv->value, "off") ||
            !strcmp(kv->value, "0"))
            nc.is_create_disabled = true;
        else if (strcmp(kv->value, "yes") && strcmp(kv->value, "true") && strcmp(kv->value, "on") &&
                 strcmp(kv->value, "1"))
            nx_err(&x, kv, "not yes or no");
    }
    nc.duplicate_window_ms = nx_ms(&x, "duplicate_window");
    nc.stream_max_age_ms = nx_ms(&x, "stream_max_age");
    nc.stream_max_bytes = nx_bytes(&x, "stream_max_bytes", INT64_MAX);
    nc.stream_max_msg_size = (int32_t)nx_bytes(&x, "stream_max_msg_size", INT32_MAX);
    nc.replicas = (int)nx_int(&x, "replicas", 1, 5);
    nc.max_pending = (int)nx_int(&x, "max_pending", 1, 65536);
    nc.user = nx_get(&x, "user");
    nc.password = nx_get(&x, "password");
    nc.token = nx_get(&x, "token");
    nc.creds = nx_get(&x, "creds");
    nc.ca_file = nx_get(&x, "ca_file");
    nc.timeout_ms = timeout_ms;
    nc.filter = filter;
    if (nc.url && strncmp(nc.url, "nats://", 7) && strncmp(nc.url, "tls://", 6))
        nx_err(&x, nx_find(&x, "url"), "expected nats://HOST:PORT (comma-separated for several)");
    if (x.rc)
        return x.rc;
    rc = sink_nats_new(loop, &nc, out);
    if (rc == SB_EINVAL)
        nx_err(&x, NULL, "bad subject_prefix, stream, stream_subjects or filter");
    else if (rc)
        return rc;
    return x.rc;
}
