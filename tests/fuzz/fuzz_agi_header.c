/* fuzz_agi_header.c: libFuzzer target for the agi_* header parser.
 *
 * The first byte picks a chunk size, so splits at every position are explored; a parsed request
 * is walked (every slice read) to let ASan check its bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agi/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t touch(sb_slice s)
{
    size_t h = 0;
    for (size_t i = 0; i < s.len; i++)
        h += (unsigned char)s.ptr[i];
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agi_header_parser p;
    agi_request r;
    size_t chunk, pos = 1, h = 0;
    int rc = AGI_NEED_MORE;
    if (size < 1)
        return 0;
    chunk = 1 + data[0] % 64;
    agi_header_init(&p, 2048, 32);
    while (pos < size && rc == AGI_NEED_MORE) {
        size_t n = size - pos < chunk ? size - pos : chunk, used = 0;
        rc = agi_header_feed(&p, (const char *)data + pos, n, &used, &r);
        if (used > n)
            abort();
        pos += used;
    }
    if (rc == AGI_DONE) {
        for (size_t i = 0; i < r.nvars; i++)
            h += touch(r.vars[i].name) + touch(r.vars[i].value);
        for (size_t i = 0; i < r.nargs; i++)
            h += touch(r.args[i]);
        for (size_t i = 0; i < r.nparams; i++) {
            h += touch(r.params[i].name) + touch(r.params[i].value);
            if (memchr(r.params[i].value.ptr, 0, r.params[i].value.len))
                abort(); /* decoding never yields NUL */
        }
        h += touch(r.script);
        agi_request_free(&r);
    }
    agi_header_free(&p);
    return (int)(h & 0);
}
