/* fuzz_httpc_headers.c: libFuzzer target for what httpc reads from a server besides the body:
 * the header lookup over a raw header block and the Retry-After parser (seconds or HTTP-date).
 * Checks that a found value lies inside the block and that a parsed delay is within [0, 24 h]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/httpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    httpc_resp r;
    sb_slice v;
    long ms = -1;
    memset(&r, 0, sizeof r);
    r.headers = (sb_slice){(const char *)data, size};
    r.body = (sb_slice){"", 0};
    r.error = "";
    v = httpc_resp_header(&r, "Retry-After");
    if (v.ptr && (v.ptr < r.headers.ptr || v.ptr + v.len > r.headers.ptr + r.headers.len))
        abort();
    if (httpc_parse_retry_after((sb_slice){(const char *)data, size}, 1445412480, &ms) == 0 &&
        (ms < 0 || ms > 24L * 3600 * 1000))
        abort();
    ms = httpc_retry_after_ms(&r);
    if (ms < -1 || ms > 24L * 3600 * 1000)
        abort();
    return 0;
}
