/* slice.h: a borrowed {ptr, len} view of bytes, used for everything read off the wire.
 *
 * Slices never own memory and are never NUL-terminated: compare them with these helpers, never
 * with strlen/strcmp. Their lifetime is that of the buffer they point into, stated by whoever
 * hands them out.
 */
#ifndef SB_CORE_SLICE_H
#define SB_CORE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct sb_slice {
    const char *ptr;
    size_t len;
} sb_slice;

#define SB_SLICE_LIT(s) ((sb_slice){(s), sizeof(s) - 1})

/* A slice over a NUL-terminated C string (borrows s). */
static inline sb_slice sb_slice_cstr(const char *s)
{
    return (sb_slice){s, s ? strlen(s) : 0};
}

/* Byte-exact equality. */
static inline bool sb_slice_eq(sb_slice a, sb_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ASCII case-insensitive equality with a C string (AMI keys are case-insensitive). */
static inline bool sb_slice_eq_ci(sb_slice a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && (n == 0 || strncasecmp(a.ptr, s, n) == 0);
}

/* Parses a decimal integer (optional leading '-'); returns 0 or -1 when the slice is not one. */
int sb_slice_to_ll(sb_slice s, long long *out);

/* Copies the slice into dst (size bytes, NUL-terminated, truncating); returns dst. */
char *sb_slice_copy(sb_slice s, char *dst, size_t size);

/* Returns owned NUL-terminated copy (free with free()), or NULL when out of memory. */
char *sb_slice_dup(sb_slice s);

#endif
