/* buf.h: a growable byte buffer with a hard cap (curl's dynbuf). Every buffer that grows from
 * network input has a cap, so a peer can never make the daemon allocate without bound. */
#ifndef SB_CORE_BUF_H
#define SB_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sb_buf {
    char *data; /* owned; always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /* appends that would exceed max fail with SB_ETOOBIG */
} sb_buf;

/* Prepares an empty buffer that may grow to max bytes. Allocates nothing yet. */
void sb_buf_init(sb_buf *b, size_t max);
/* Releases the memory; the buffer is empty and reusable afterwards. */
void sb_buf_free(sb_buf *b);
/* Empties the buffer, keeping its memory. */
void sb_buf_reset(sb_buf *b);
/* Ensures room for n more bytes; 0, SB_ENOMEM or SB_ETOOBIG. */
int sb_buf_reserve(sb_buf *b, size_t n);
/* Appends n bytes; 0, SB_ENOMEM or SB_ETOOBIG (the buffer is unchanged on error). */
int sb_buf_append(sb_buf *b, const void *p, size_t n);
/* Appends a NUL-terminated string. */
int sb_buf_puts(sb_buf *b, const char *s);
/* Appends formatted text. */
int sb_buf_printf(sb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sb_buf_vprintf(sb_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (n <= len). */
void sb_buf_consume(sb_buf *b, size_t n);
/* Returns owned data (free with free()) and leaves the buffer empty. NULL when empty. */
char *sb_buf_steal(sb_buf *b);

#endif
