/* fuzz_agi_reply.c: libFuzzer target for the AGI reply parser.
 *
 * The first byte picks a chunk size; every item is read back and its slices walked, and the
 * parser must never report more items than there are lines. */
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
    agi_reply_parser p;
    agi_reply r;
    size_t chunk, pos = 1, items = 0, lines = 0, h = 0;
    if (size < 1)
        return 0;
    chunk = 1 + data[0] % 64;
    for (size_t i = 1; i < size; i++)
        lines += data[i] == '\n';
    agi_reply_init(&p, 1024);
    while (pos < size) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        if (agi_reply_feed(&p, (const char *)data + pos, n) != 0)
            break;
        pos += n;
        int rc;
        while ((rc = agi_reply_next(&p, &r)) > 0) {
            items++;
            if (rc == AGI_REPLY) {
                sb_slice v;
                h += touch(r.text) + touch(r.result_text) + touch(r.data) + touch(r.extra);
                if (agi_reply_get(&r, "endpos", &v))
                    h += touch(v);
                if (r.code < 0 || r.code > 999)
                    abort();
            }
        }
        if (rc < 0)
            break;
    }
    if (items > lines)
        abort();
    agi_reply_free(&p);
    return (int)(h & 0);
}
