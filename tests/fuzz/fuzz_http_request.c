/* fuzz_http_request.c: HTTP request parsing (libhttp-parser driven by request.c's callbacks, the
 * limits, path/query split and percent-decoding) on arbitrary bytes, fed in two pieces split at
 * a point chosen by the input so that callbacks see headers and URLs cut anywhere. */
#include "http/internal.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void poke(http_request *req)
{
    static const char *const names[1] = {"p"};
    sb_slice path = http_request_path(req);
    (void)http_request_header(req, "Host");
    (void)http_request_query(req, "after");
    (void)http_request_body(req);
    (void)http_request_bearer(req);
    (void)http_request_method(req);
    if (http_request_set_params(req, names, &path, 1) == 0)
        (void)http_request_param(req, "p");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_server_config cfg = {
        .max_url_bytes = 512, .max_header_bytes = 2048, .max_headers = 16, .max_body_bytes = 4096};
    http_request req;
    size_t split = size ? data[0] % (size + 1) : 0;
    size_t off = 0, end = split;
    int rounds = 0;
    http_request_init(&req, NULL, &cfg);
    while (rounds++ < 256) {
        size_t n = 0;
        int st;
        if (off == end) {
            if (end == size)
                break;
            end = size;
            continue;
        }
        st = http_request_parse(&req, (const char *)data + off, end - off, &n);
        off += n;
        if (st == HTTP_PARSE_READY) {
            poke(&req);
            http_request_reset(&req);
        } else if (st != 0 || n == 0) {
            break;
        }
    }
    http_request_release(&req);
    return 0;
}
