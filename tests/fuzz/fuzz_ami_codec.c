/* fuzz_ami_codec.c: the AMI codec on arbitrary bytes in arbitrary chunks, with small limits so the
 * error and resync paths are reached often. The first byte picks the chunk size and the banner. */
#include "ami/codec.h"
#include "core/error.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ami_codec c;
    ami_packet p;
    if (size < 1)
        return 0;
    size_t chunk = 1 + (data[0] & 0x3f);
    bool banner = data[0] & 0x40;
    ami_limits lim = (data[0] & 0x80) ? (ami_limits){512, 8, 128} : AMI_LIMITS_DEFAULT;
    data++;
    size--;
    if (ami_codec_init(&c, lim, banner) != 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        size_t want = chunk < size - off ? chunk : size - off;
        size_t took = ami_codec_feed(&c, (const char *)data + off, want);
        off += took;
        int rc;
        while ((rc = ami_codec_next(&c, &p)) != AMI_NEED_MORE) {
            if (rc < 0) {
                if (rc != SB_ETOOBIG && rc != SB_EPROTO)
                    abort();
                continue;
            }
            if (p.count > lim.max_headers)
                abort();
            for (size_t i = 0; i < p.count; i++)
                if (p.headers[i].key.len + p.headers[i].value.len > lim.max_line)
                    abort();
            ami_packet *d = ami_packet_dup(&p);
            if (d && p.count && ami_packet_get(d, "Event") == NULL &&
                ami_packet_is(&p, "Event", ""))
                abort();
            ami_packet_free(d);
        }
        if (took == 0 && want > 0)
            abort(); /* after NEED_MORE there is always room */
    }
    ami_codec_free(&c);
    return 0;
}
