/* config.c: the [store] section (docs/delivery.md). Every key is checked (an unknown key is an
 * error); errors read "FILE:LINE: [store] key: problem" like the rest of the configuration. The
 * outbox keys of a [sink NAME] section are read by src/sinks/factory.c with the sink's own keys.
 */
#include "outbox/outbox.h"

#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int outbox_parse_ms(const char *s, int64_t *ms)
{
    if (!s || !isdigit((unsigned char)*s))
        return SB_EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || v > (1ULL << 40))
        return SB_EINVAL;
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0) {
            *ms = (int64_t)v * units[i].ms;
            return 0;
        }
    return SB_EINVAL;
}

int outbox_parse_bytes(const char *s, int64_t *bytes)
{
    if (!s || !isdigit((unsigned char)*s))
        return SB_EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || v > (1ULL << 40))
        return SB_EINVAL;
    int64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024;
    else if (*end == 'M')
        mul = 1024 * 1024;
    else if (*end == 'G')
        mul = 1024LL * 1024 * 1024;
    else if (*end == 'T')
        mul = 1024LL * 1024 * 1024 * 1024;
    else if (*end)
        return SB_EINVAL;
    if (*end && end[1] && strcmp(end + 1, "B") != 0 && strcmp(end + 1, "iB") != 0)
        return SB_EINVAL;
    *bytes = (int64_t)v * mul;
    return 0;
}

int outbox_parse_from(const char *s, int64_t now_ms, int64_t *ms)
{
    int64_t d = 0;
    if (!s)
        return SB_EINVAL;
    if (strchr(s, 'T'))
        return outbox_parse_time(s, ms);
    if (outbox_parse_ms(s, &d))
        return SB_EINVAL;
    *ms = now_ms - d;
    return 0;
}

static int bad(const sb_config *cfg, const sb_config_section *sec, const sb_config_kv *kv,
               const char *problem, char *err, size_t errsize)
{
    char where[96];
    if (sec->name)
        snprintf(where, sizeof where, "[%s %s]", sec->kind, sec->name);
    else
        snprintf(where, sizeof where, "[%s]", sec->kind);
    snprintf(err, errsize, "%s:%d: %s %s: %s", cfg && cfg->path ? cfg->path : "<config>",
             kv ? kv->line : sec->line, where, kv ? kv->key : "", problem);
    return SB_ECONFIG;
}

static int parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!v || !*v)
        return SB_EINVAL;
    errno = 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < lo || n > hi)
        return SB_EINVAL;
    *out = n;
    return 0;
}

int outbox_options_from_config(const sb_config *cfg, outbox_options *opt, char *err, size_t errsize)
{
    memset(opt, 0, sizeof *opt);
    opt->path = "switchboard.db";
    const sb_config_section *sec = cfg ? sb_config_section_find(cfg, "store", NULL) : NULL;
    if (!sec)
        return 0;
    for (size_t i = 0; i < sec->nkv; i++) {
        const sb_config_kv *kv = &sec->kv[i];
        const char *k = kv->key, *v = kv->value;
        int64_t n = 0;
        if (!strcmp(k, "path")) {
            if (!*v)
                return bad(cfg, sec, kv, "must not be empty", err, errsize);
            opt->path = v;
        } else if (!strcmp(k, "synchronous")) {
            if (!strcasecmp(v, "full"))
                opt->store.sync = STORE_SYNC_FULL;
            else if (!strcasecmp(v, "normal"))
                opt->store.sync = STORE_SYNC_NORMAL;
            else
                return bad(cfg, sec, kv, "expected full or normal", err, errsize);
        } else if (!strcmp(k, "retention")) {
            if (outbox_parse_ms(v, &n) || n <= 0)
                return bad(cfg, sec, kv, "expected a duration like 7d, 12h, 30m", err, errsize);
            opt->retention_ms = n;
        } else if (!strcmp(k, "prune_interval")) {
            if (outbox_parse_ms(v, &n) || n < 1000)
                return bad(cfg, sec, kv, "expected a duration of at least 1s", err, errsize);
            opt->prune_interval_ms = n;
        } else if (!strcmp(k, "size_warn")) {
            if (outbox_parse_bytes(v, &n) || n <= 0)
                return bad(cfg, sec, kv, "expected a size like 512M or 2G", err, errsize);
            opt->size_warn_bytes = n;
        } else if (!strcmp(k, "size_max")) {
            if (outbox_parse_bytes(v, &n) || n <= 0)
                return bad(cfg, sec, kv, "expected a size like 4G", err, errsize);
            opt->size_max_bytes = n;
        } else if (!strcmp(k, "memory_tail")) {
            /* 0 or "off": sinks always read the store */
            if (!strcasecmp(v, "off"))
                n = 0;
            else if (outbox_parse_bytes(v, &n) || n > (16LL << 30))
                return bad(cfg, sec, kv, "expected a size like 64M (at most 16G), or off", err,
                           errsize);
            opt->tail_bytes = n ? n : -1;
        } else if (!strcmp(k, "batch_max")) {
            if (parse_int(v, 1, 1000000, &n))
                return bad(cfg, sec, kv, "expected 1..1000000", err, errsize);
            opt->writer.max_batch = (int)n;
        } else if (!strcmp(k, "queue_max")) {
            if (parse_int(v, 16, 100000000, &n))
                return bad(cfg, sec, kv, "expected 16..100000000", err, errsize);
            opt->writer.max_queued = (size_t)n;
        } else {
            return bad(cfg, sec, kv, "unknown key", err, errsize);
        }
    }
    if (opt->size_warn_bytes && opt->size_max_bytes && opt->size_warn_bytes >= opt->size_max_bytes)
        return bad(cfg, sec, NULL, "size_warn must be below size_max", err, errsize);
    return 0;
}
