/* fuzz_config.c: libFuzzer target for the switchboard.conf loader (core/config.c over libinih).
 *
 * Any bytes: the parser must either return a configuration (then described, to walk every field)
 * or fail with a one-line message free of control characters, never crash or leak. Relative
 * secret_file paths resolve under a directory that does not exist; an absolute one may be opened
 * (only its first line is read, and never printed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    sb_config *cfg = NULL;
    int rc = sb_config_parse((const char *)data, size, "/nonexistent-fuzz-dir/fuzz.conf", &cfg, err,
                             sizeof err);
    if (rc == 0) {
        sb_buf out;
        sb_buf_init(&out, 1 << 20);
        sb_config_describe(cfg, &out);
        sb_buf_free(&out);
        sb_config_free(cfg);
    } else {
        for (const char *p = err; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                abort(); /* an error message is one printable line */
        }
    }
    return 0;
}
