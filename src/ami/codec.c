/* codec.c: incremental AMI framing and parsing, and action serializing (see codec.h).
 *
 * The buffer holds [start, end): start is the first byte of the packet being parsed, scan the
 * first byte not yet split into lines. Lines are split once each, however the bytes arrive, so a
 * packet fed one byte at a time costs the same as one fed whole. Headers point into the buffer;
 * when ami_codec_space() compacts it, the pending headers are moved along with the bytes.
 */
#include "ami/codec.h"

#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for one read on top of the largest packet, so a full buffer always means "too big". */
#define AMI_READ_ROOM 16384

int ami_codec_init(ami_codec *c, ami_limits lim, bool expect_banner)
{
    memset(c, 0, sizeof *c);
    if (lim.max_packet == 0 || lim.max_headers == 0 || lim.max_line == 0)
        return SB_EINVAL;
    c->lim = lim;
    c->cap = lim.max_packet + AMI_READ_ROOM;
    c->buf = malloc(c->cap);
    c->hdrs = malloc(lim.max_headers * sizeof *c->hdrs);
    if (!c->buf || !c->hdrs) {
        ami_codec_free(c);
        return SB_ENOMEM;
    }
    c->expect_banner = expect_banner;
    return 0;
}

void ami_codec_free(ami_codec *c)
{
    free(c->buf);
    free(c->hdrs);
    c->buf = NULL;
    c->hdrs = NULL;
    c->cap = 0;
}

static void packet_restart(ami_codec *c, size_t at)
{
    c->start = c->scan = at;
    c->nhdrs = 0;
    c->follows = false;
    c->follows_done = false;
}

void ami_codec_reset(ami_codec *c, bool expect_banner)
{
    packet_restart(c, 0);
    c->end = 0;
    c->discarding = false;
    c->midline = false;
    c->expect_banner = expect_banner;
}

void ami_codec_space(ami_codec *c, char **ptr, size_t *len)
{
    if (c->start == c->end) {
        /* Nothing pending: start over at the front for free. */
        c->start = c->scan = c->end = 0;
    } else if (c->start > 0 && c->cap - c->end < AMI_READ_ROOM) {
        size_t delta = c->start;
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        for (size_t i = 0; i < c->nhdrs; i++) {
            c->hdrs[i].key.ptr -= delta;
            c->hdrs[i].value.ptr -= delta;
        }
        c->start = 0;
        c->scan -= delta;
        c->end -= delta;
    }
    *ptr = c->buf + c->end;
    *len = c->cap - c->end;
}

void ami_codec_commit(ami_codec *c, size_t n)
{
    if (n > c->cap - c->end)
        n = c->cap - c->end;
    c->end += n;
    c->stats.bytes += n;
}

size_t ami_codec_feed(ami_codec *c, const char *data, size_t len)
{
    char *p;
    size_t room;
    ami_codec_space(c, &p, &room);
    if (len > room)
        len = room;
    if (len) {
        memcpy(p, data, len);
        ami_codec_commit(c, len);
    }
    return len;
}

/* Drops the packet under way and skips to the next blank line. */
static int fail_packet(ami_codec *c, size_t resume_at, bool midline, int err)
{
    packet_restart(c, resume_at);
    c->discarding = true;
    c->midline = midline;
    if (err == SB_ETOOBIG)
        c->stats.too_big++;
    else
        c->stats.syntax++;
    return err;
}

static void emit(ami_codec *c, ami_packet *out)
{
    const ami_header *first = &c->hdrs[0];
    out->headers = c->hdrs;
    out->count = c->nhdrs;
    out->name = first->value;
    if (sb_slice_eq_ci(first->key, "Event"))
        out->kind = AMI_PACKET_EVENT;
    else if (sb_slice_eq_ci(first->key, "Response"))
        out->kind = AMI_PACKET_RESPONSE;
    else if (sb_slice_eq_ci(first->key, "Action"))
        out->kind = AMI_PACKET_ACTION;
    else
        out->kind = AMI_PACKET_OTHER;
    c->stats.packets++;
}

static const char end_command[] = "--END COMMAND--";

/* A line of a legacy "Response: Follows" packet: a few known headers, otherwise output. */
static void follows_line(ami_codec *c, const char *line, size_t len)
{
    static const char *const keys[] = {"ActionID", "Privilege", "Message"};
    size_t n = sizeof end_command - 1;
    if (len >= n && memcmp(line + len - n, end_command, n) == 0) {
        c->follows_done = true;
        len -= n;
        if (len == 0)
            return;
    }
    const char *colon = memchr(line, ':', len);
    if (colon && !c->follows_done) {
        sb_slice key = {line, (size_t)(colon - line)};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            if (sb_slice_eq_ci(key, keys[i])) {
                const char *v = colon + 1;
                if (v < line + len && *v == ' ')
                    v++;
                c->hdrs[c->nhdrs++] = (ami_header){key, {v, (size_t)(line + len - v)}};
                return;
            }
        }
    }
    c->hdrs[c->nhdrs++] = (ami_header){SB_SLICE_LIT("Output"), {line, len}};
}

int ami_codec_next(ami_codec *c, ami_packet *out)
{
    for (;;) {
        const char *base = c->buf;
        const char *nl = memchr(base + c->scan, '\n', c->end - c->scan);
        if (!nl) {
            if (c->discarding) {
                /* Keep a short partial line (it may be the blank line we look for); drop a
                 * long one and remember that we are inside it. */
                if (c->end - c->scan > c->lim.max_line) {
                    packet_restart(c, c->end);
                    c->midline = true;
                }
                return AMI_NEED_MORE;
            }
            if (c->end - c->scan > c->lim.max_line)
                return fail_packet(c, c->end, true, SB_ETOOBIG);
            if (c->end - c->start > c->lim.max_packet)
                return fail_packet(c, c->end, true, SB_ETOOBIG);
            return AMI_NEED_MORE;
        }
        size_t next = (size_t)(nl - base) + 1;
        const char *line = base + c->scan;
        size_t len = (size_t)(nl - line);
        if (len && line[len - 1] == '\r')
            len--;

        if (c->discarding) {
            bool blank = len == 0 && !c->midline;
            packet_restart(c, next);
            c->midline = false;
            if (blank)
                c->discarding = false;
            continue;
        }
        if (len > c->lim.max_line)
            return fail_packet(c, next, false, SB_ETOOBIG);
        if (next - c->start > c->lim.max_packet)
            return fail_packet(c, next, false, SB_ETOOBIG);

        if (c->expect_banner) {
            /* The banner is one line with no blank line after it (fixtures, every .ami). */
            c->expect_banner = false;
            out->kind = AMI_PACKET_BANNER;
            out->name = (sb_slice){line, len};
            out->headers = NULL;
            out->count = 0;
            packet_restart(c, next);
            c->stats.packets++;
            return AMI_PACKET;
        }
        if (len == 0) {
            if (c->nhdrs == 0) { /* a stray blank line between packets */
                packet_restart(c, next);
                continue;
            }
            if (c->follows && !c->follows_done) {
                if (c->nhdrs == c->lim.max_headers)
                    return fail_packet(c, next, false, SB_ETOOBIG);
                c->hdrs[c->nhdrs++] = (ami_header){SB_SLICE_LIT("Output"), {line, 0}};
                c->scan = next;
                continue;
            }
            emit(c, out);
            packet_restart(c, next);
            return AMI_PACKET;
        }
        if (c->nhdrs == c->lim.max_headers)
            return fail_packet(c, next, false, SB_ETOOBIG);
        if (c->follows) {
            follows_line(c, line, len);
            c->scan = next;
            continue;
        }
        const char *colon = memchr(line, ':', len);
        if (!colon || colon == line) {
            if (c->nhdrs == 0) {
                /* Stray bytes between packets: drop this line only. */
                packet_restart(c, next);
                c->stats.syntax++;
                return SB_EPROTO;
            }
            return fail_packet(c, next, false, SB_EPROTO);
        }
        const char *v = colon + 1;
        if (v < line + len && *v == ' ')
            v++;
        ami_header *h = &c->hdrs[c->nhdrs++];
        h->key = (sb_slice){line, (size_t)(colon - line)};
        h->value = (sb_slice){v, (size_t)(line + len - v)};
        if (c->nhdrs == 1 && sb_slice_eq_ci(h->key, "Response") &&
            sb_slice_eq_ci(h->value, "Follows"))
            c->follows = true;
        c->scan = next;
    }
}

const sb_slice *ami_packet_get(const ami_packet *p, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < p->count; i++) {
        const sb_slice *k = &p->headers[i].key;
        if (k->len == n && strncasecmp(k->ptr, key, n) == 0)
            return &p->headers[i].value;
    }
    return NULL;
}

bool ami_packet_is(const ami_packet *p, const char *key, const char *val)
{
    const sb_slice *v = ami_packet_get(p, key);
    return v && sb_slice_eq_ci(*v, val);
}

sb_slice ami_packet_value(const ami_packet *p, const char *key)
{
    const sb_slice *v = ami_packet_get(p, key);
    return v ? *v : (sb_slice){"", 0};
}

ami_packet *ami_packet_dup(const ami_packet *p)
{
    size_t bytes = sizeof(ami_packet) + p->count * sizeof(ami_header) + p->name.len;
    for (size_t i = 0; i < p->count; i++)
        bytes += p->headers[i].key.len + p->headers[i].value.len;
    ami_packet *d = malloc(bytes ? bytes : 1);
    if (!d)
        return NULL;
    ami_header *h = (ami_header *)(d + 1);
    char *s = (char *)(h + p->count);
    d->kind = p->kind;
    d->count = p->count;
    d->headers = h;
    for (size_t i = 0; i < p->count; i++) {
        const ami_header *src = &p->headers[i];
        memcpy(s, src->key.ptr, src->key.len);
        h[i].key = (sb_slice){s, src->key.len};
        s += src->key.len;
        if (src->value.len)
            memcpy(s, src->value.ptr, src->value.len);
        h[i].value = (sb_slice){s, src->value.len};
        s += src->value.len;
    }
    if (p->name.len)
        memcpy(s, p->name.ptr, p->name.len);
    d->name = (sb_slice){s, p->name.len};
    return d;
}

void ami_packet_free(ami_packet *p)
{
    free(p);
}

/* One message may not exceed this (an Originate with many variables stays far below). */
#define AMI_MSG_MAX (1024 * 1024)

static bool has_crlf(const char *p, size_t n)
{
    return memchr(p, '\r', n) || memchr(p, '\n', n);
}

void ami_msg_init(ami_msg *m, const char *first_key, const char *first_value)
{
    sb_buf_init(&m->buf, AMI_MSG_MAX);
    m->err = 0;
    ami_msg_add(m, first_key, first_value);
}

void ami_msg_addn(ami_msg *m, const char *key, sb_slice value)
{
    size_t klen = strlen(key);
    if (m->err)
        return;
    if (klen == 0 || memchr(key, ':', klen) || has_crlf(key, klen) ||
        (value.len && has_crlf(value.ptr, value.len))) {
        m->err = SB_EINVAL;
        return;
    }
    int rc = sb_buf_reserve(&m->buf, klen + value.len + 4);
    if (rc) {
        m->err = rc;
        return;
    }
    sb_buf_append(&m->buf, key, klen);
    sb_buf_append(&m->buf, ": ", 2);
    sb_buf_append(&m->buf, value.ptr, value.len);
    sb_buf_append(&m->buf, "\r\n", 2);
}

void ami_msg_add(ami_msg *m, const char *key, const char *value)
{
    ami_msg_addn(m, key, sb_slice_cstr(value ? value : ""));
}

void ami_msg_addf(ami_msg *m, const char *key, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        if (!m->err)
            m->err = SB_ETOOBIG;
        return;
    }
    ami_msg_addn(m, key, (sb_slice){tmp, (size_t)n});
}

int ami_msg_finish(ami_msg *m, const char **data, size_t *len)
{
    if (m->err)
        return m->err;
    int rc = sb_buf_append(&m->buf, "\r\n", 2);
    if (rc)
        return m->err = rc;
    *data = m->buf.data;
    *len = m->buf.len;
    return 0;
}

void ami_msg_free(ami_msg *m)
{
    sb_buf_free(&m->buf);
    m->err = 0;
}
