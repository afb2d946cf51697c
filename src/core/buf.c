/* buf.c: the capped growable buffer of buf.h. */
#include "core/buf.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_buf_init(sb_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void sb_buf_free(sb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sb_buf_reset(sb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int sb_buf_reserve(sb_buf *b, size_t n)
{
    size_t need, ncap;
    char *p;
    if (n > b->max || b->len > b->max - n)
        return SB_ETOOBIG;
    need = b->len + n + 1; /* room for the terminating NUL */
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap *= 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    p = realloc(b->data, ncap);
    if (!p)
        return SB_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int sb_buf_append(sb_buf *b, const void *p, size_t n)
{
    int rc = sb_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sb_buf_puts(sb_buf *b, const char *s)
{
    return sb_buf_append(b, s, strlen(s));
}

int sb_buf_vprintf(sb_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    int n, rc;
    va_copy(cp, ap);
    n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return SB_EINVAL;
    rc = sb_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sb_buf_printf(sb_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = sb_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void sb_buf_consume(sb_buf *b, size_t n)
{
    if (n >= b->len) {
        sb_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *sb_buf_steal(sb_buf *b)
{
    char *p = b->data;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
