/* stream_tokens.c: stream tokens and per-stream hubs (see streams_internal.h).
 *
 * A stream token is 32 random bytes (libsodium) sent once, base64url; only its BLAKE2b hash is
 * kept, as the key of a map, so a lookup is a hash and a map probe and a leaked memory dump holds
 * no usable token. Tokens live in memory only: they are short-lived by design, and a daemon
 * restart also restarts every stream's numbering, so an old token would be of no use anyway.
 */
#include "api/streams_internal.h"

#include "core/error.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t streams_now(const streams *s)
{
    struct timespec ts;
    if (s->cfg.now_ms)
        return s->cfg.now_ms(s->cfg.clock_ud);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- hubs ---- */

int stream_hub_get(streams *s, const char *key, stream_hub **out)
{
    stream_hub *h = sb_strmap_get(&s->hubs, sb_slice_cstr(key));
    *out = NULL;
    if (!h) {
        h = calloc(1, sizeof *h);
        if (!h)
            return SB_ENOMEM;
        h->owner = s;
        h->key = strdup(key);
        if (!h->key)
            goto nomem;
        if (*key) {
            if (bus_stream_open(s->cfg.bus, key, &h->bs) < 0)
                goto nomem;
        } else {
            h->bs = bus_global(s->cfg.bus);
        }
        if (sb_strmap_put(&s->hubs, sb_slice_cstr(key), h) < 0) {
            if (*key)
                bus_stream_close(h->bs);
            goto nomem;
        }
    }
    h->refs++;
    *out = h;
    return 0;
nomem:
    free(h->key);
    free(h);
    return SB_ENOMEM;
}

static void hub_destroy(stream_hub *h)
{
    sb_strmap_del(&h->owner->hubs, sb_slice_cstr(h->key));
    stream_hub_live_release(h);
    if (*h->key)
        bus_stream_close(h->bs);
    http_msg_unref(h->cache);
    free(h->key);
    free(h);
}

void stream_hub_put(stream_hub *h)
{
    if (!h || h->refs == 0)
        return;
    /* The hub (and so the bus stream and its window) outlives its last user by token_ttl_ms, so a
     * client that reconnects in that time still finds the events it missed. */
    if (--h->refs == 0)
        h->linger_until = streams_now(h->owner) + h->owner->cfg.token_ttl_ms;
}

http_msg *stream_hub_msg(stream_hub *h, const bus_entry *entry)
{
    sb_buf b;
    char id[24];
    int n;
    http_msg *m;
    if (h->cache && h->cache_seq == entry->seq)
        return h->cache;
    sb_buf_init(&b, 4u << 20);
    if (bus_entry_format(entry, &b) < 0) {
        sb_buf_free(&b);
        return NULL;
    }
    n = snprintf(id, sizeof id, "%llu", (unsigned long long)entry->seq);
    m = http_msg_new((sb_slice){id, (size_t)n}, (sb_slice){NULL, 0}, (sb_slice){b.data, b.len});
    sb_buf_free(&b);
    if (!m)
        return NULL;
    http_msg_unref(h->cache);
    h->cache = m;
    h->cache_seq = entry->seq;
    h->owner->st.msgs_built++;
    return m;
}

/* ---- tokens ---- */

static void token_key(sb_slice text, char key[STREAM_TOKEN_KEY])
{
    unsigned char hash[32];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)text.ptr, text.len, NULL, 0);
    sodium_bin2hex(key, STREAM_TOKEN_KEY, hash, sizeof hash);
}

int stream_token_issue(streams *s, const char *ext, const char *const *queues, size_t nqueues,
                       char out[STREAM_TOKEN_CHARS + 1], int64_t *expires_ms)
{
    unsigned char raw[32];
    stream_token *t = NULL;
    int rc;
    if (sb_strmap_count(&s->tokens) >= s->cfg.max_tokens) {
        stream_sweep(s);
        if (sb_strmap_count(&s->tokens) >= s->cfg.max_tokens)
            return SB_ETOOBIG;
    }
    t = calloc(1, sizeof *t);
    if (!t)
        return SB_ENOMEM;
    rc = stream_hub_get(s, ext ? ext : "", &t->hub);
    if (rc < 0)
        goto fail;
    /* Queues of interest are watched by the agent's stream itself: two subscriptions of one agent
     * with different queues share the union (the stream's numbering must stay one sequence). */
    for (size_t i = 0; ext && i < nqueues; i++) {
        rc = bus_stream_watch_queue(t->hub->bs, queues[i]);
        if (rc < 0)
            goto fail;
    }
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, STREAM_TOKEN_CHARS + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    token_key((sb_slice){out, STREAM_TOKEN_CHARS}, t->key);
    t->expires_ms = streams_now(s) + s->cfg.token_ttl_ms;
    rc = sb_strmap_put(&s->tokens, sb_slice_cstr(t->key), t);
    if (rc < 0)
        goto fail;
    *expires_ms = t->expires_ms;
    s->st.tokens_issued++;
    return 0;
fail:
    stream_hub_put(t->hub);
    free(t);
    return rc;
}

stream_token *stream_token_find(streams *s, sb_slice text)
{
    char key[STREAM_TOKEN_KEY];
    stream_token *t;
    if (text.len != STREAM_TOKEN_CHARS)
        return NULL;
    token_key(text, key);
    t = sb_strmap_get(&s->tokens, sb_slice_cstr(key));
    if (!t || (t->users == 0 && streams_now(s) > t->expires_ms))
        return NULL;
    return t;
}

void stream_token_attach(stream_token *t)
{
    t->users++;
}

void stream_token_detach(streams *s, stream_token *t)
{
    int64_t until = streams_now(s) + s->cfg.token_ttl_ms;
    if (t->users)
        t->users--;
    if (until > t->expires_ms)
        t->expires_ms = until;
}

void stream_sweep(streams *s)
{
    sb_strmap_iter it;
    void *v;
    int64_t now = streams_now(s);
    size_t n = 0, cap = sb_strmap_count(&s->tokens) + sb_strmap_count(&s->hubs);
    void **dead = cap ? malloc(cap * sizeof *dead) : NULL;
    /* A map may not change while iterated: collect first, then free. */
    if (!dead)
        goto out;
    sb_strmap_iter_init(&it, &s->tokens);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        stream_token *t = v;
        if (t->users == 0 && now > t->expires_ms)
            dead[n++] = t;
    }
    for (size_t i = 0; i < n; i++) {
        stream_token *t = dead[i];
        sb_strmap_del(&s->tokens, sb_slice_cstr(t->key));
        stream_hub_put(t->hub);
        free(t);
    }
    n = 0;
    now = streams_now(s);
    sb_strmap_iter_init(&it, &s->hubs);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        stream_hub *h = v;
        if (h->refs == 0 && now >= h->linger_until)
            dead[n++] = h;
    }
    for (size_t i = 0; i < n; i++)
        hub_destroy(dead[i]);
out:
    free(dead);
    s->st.tokens_live = (uint32_t)sb_strmap_count(&s->tokens);
}

void stream_tokens_free_all(streams *s)
{
    sb_strmap_iter it;
    void *v;
    sb_strmap_iter_init(&it, &s->tokens);
    while (sb_strmap_iter_next(&it, NULL, &v))
        free(v);
    sb_strmap_free(&s->tokens);
    sb_strmap_iter_init(&it, &s->hubs);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        stream_hub *h = v;
        stream_hub_live_release(h);
        if (*h->key)
            bus_stream_close(h->bs);
        http_msg_unref(h->cache);
        free(h->key);
        free(h);
    }
    sb_strmap_free(&s->hubs);
}
