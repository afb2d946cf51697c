/* slice.c: conversions out of borrowed byte slices (see slice.h). */
#include "core/slice.h"

#include <limits.h>
#include <stdlib.h>

int sb_slice_to_ll(sb_slice s, long long *out)
{
    size_t i = 0;
    bool neg = false;
    unsigned long long v = 0;
    if (s.len == 0)
        return -1;
    if (s.ptr[0] == '-') {
        neg = true;
        i = 1;
        if (s.len == 1)
            return -1;
    }
    for (; i < s.len; i++) {
        unsigned d = (unsigned char)s.ptr[i] - '0';
        if (d > 9)
            return -1;
        if (v > ((unsigned long long)LLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

char *sb_slice_copy(sb_slice s, char *dst, size_t size)
{
    size_t n;
    if (size == 0)
        return dst;
    n = s.len < size - 1 ? s.len : size - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
    return dst;
}

char *sb_slice_dup(sb_slice s)
{
    char *p = malloc(s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}
