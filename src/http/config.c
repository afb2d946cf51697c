/* config.c: reading the [http] section (config.h) key by key; an unknown key or a bad value is
 * an error naming its line, as for the sections core/config.c checks itself. */
#include "http/config.h"

#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_STR, K_PORT, K_SIZE, K_COUNT, K_MS };

#define OFF(f) offsetof(http_server_config, f)

static const struct key {
    const char *name;
    enum kind kind;
    size_t off; /* into http_server_config; unused for web_root */
} keys[] = {
    {"bind", K_STR, OFF(host)},
    {"port", K_PORT, OFF(port)},
    {"web_root", K_STR, 0},
    {"max_url_bytes", K_SIZE, OFF(max_url_bytes)},
    {"max_header_bytes", K_SIZE, OFF(max_header_bytes)},
    {"max_headers", K_SIZE, OFF(max_headers)},
    {"max_body_bytes", K_SIZE, OFF(max_body_bytes)},
    {"stream_max_queued", K_SIZE, OFF(stream_max_queued)},
    {"ws_max_message", K_SIZE, OFF(ws_max_message)},
    {"max_connections", K_COUNT, OFF(max_connections)},
    {"idle_timeout", K_MS, OFF(idle_timeout_ms)},
    {"request_timeout", K_MS, OFF(request_timeout_ms)},
    {"heartbeat", K_MS, OFF(heartbeat_ms)},
    {"linger", K_MS, OFF(linger_ms)},
    {"stream_flush", K_MS, OFF(stream_flush_ms)},
};

/* A positive size with an optional k/m suffix (KiB/MiB), at most 1 GiB. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v, mult = 1;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    if (!strcmp(end, "k") || !strcmp(end, "K"))
        mult = 1024;
    else if (!strcmp(end, "m") || !strcmp(end, "M"))
        mult = 1024 * 1024;
    else if (*end)
        return -1;
    if (v == 0 || v > (1ull << 30) / mult)
        return -1;
    *out = (size_t)(v * mult);
    return 0;
}

int http_config_from_section(const sb_config_section *sec, http_config *out, char *err,
                             size_t errsize)
{
    size_t i, k;
    memset(out, 0, sizeof(*out));
    out->server.host = "127.0.0.1";
    out->server.port = 8080;
    if (err && errsize)
        err[0] = '\0';
    for (i = 0; sec && i < sec->nkv; i++) {
        const sb_config_kv *kv = &sec->kv[i];
        char *base = (char *)&out->server;
        const char *problem = NULL;
        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if (!strcmp(kv->key, keys[k].name))
                break;
        if (k == sizeof(keys) / sizeof(keys[0])) {
            problem = "unknown key";
            goto bad;
        }
        switch (keys[k].kind) {
        case K_STR:
            if (!*kv->value) {
                problem = "must not be empty";
                goto bad;
            }
            if (!strcmp(keys[k].name, "web_root"))
                out->web_root = kv->value;
            else
                out->server.host = kv->value;
            break;
        case K_PORT: {
            char *end;
            long v = strtol(kv->value, &end, 10);
            if (!isdigit((unsigned char)*kv->value) || *end || v < 0 || v > 65535) {
                problem = "not a port (0-65535)";
                goto bad;
            }
            out->server.port = (int)v;
            break;
        }
        case K_SIZE: {
            size_t v;
            if (parse_size(kv->value, &v)) {
                problem = "not a size (e.g. 4096, 16k, 1m)";
                goto bad;
            }
            memcpy(base + keys[k].off, &v, sizeof(v));
            break;
        }
        case K_COUNT: {
            size_t v;
            uint32_t c;
            if (parse_size(kv->value, &v) || v > UINT32_MAX) {
                problem = "not a positive number";
                goto bad;
            }
            c = (uint32_t)v;
            memcpy(base + keys[k].off, &c, sizeof(c));
            break;
        }
        case K_MS: {
            uint32_t ms;
            if (sb_config_parse_duration(kv->value, &ms)) {
                problem = "not a duration (e.g. 500ms, 10s, 2m)";
                goto bad;
            }
            /* 0 would mean "the default" to the server: only stream_flush may be 0. */
            if (!ms && keys[k].off != OFF(stream_flush_ms)) {
                problem = "must be more than 0";
                goto bad;
            }
            memcpy(base + keys[k].off, &ms, sizeof(ms));
            break;
        }
        }
        continue;
    bad:
        if (err && errsize)
            snprintf(err, errsize, "line %d: [http] %s: %s", kv->line, kv->key, problem);
        return SB_ECONFIG;
    }
    return 0;
}
