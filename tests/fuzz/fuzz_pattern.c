/* fuzz_pattern.c: libFuzzer target for the dial-pattern compiler, matcher and table.
 *
 * Input: NUL-separated fields; the last is the dialed number, the others are patterns. Checks
 * that the table's winner equals the brute-force winner and that the order is antisymmetric. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routing/pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    route_pattern *pats[16];
    size_t n = 0, start = 0;
    sb_slice dialed = {(const char *)data, 0};
    route_pattern_table *t = NULL;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != 0)
            continue;
        sb_slice field = {(const char *)data + start, i - start};
        if (i == size) {
            dialed = field;
        } else if (n < 16) {
            route_pattern_error err;
            if (route_pattern_compile(field, &pats[n], &err) == 0)
                n++;
        }
        start = i + 1;
    }
    long brute = -1;
    for (size_t i = 0; i < n; i++) {
        (void)route_pattern_text(pats[i]);
        for (size_t j = 0; j < n; j++) {
            if (route_pattern_cmp(pats[i], pats[j]) != -route_pattern_cmp(pats[j], pats[i]))
                abort();
        }
        if (route_pattern_match(pats[i], dialed) &&
            (brute < 0 || route_pattern_cmp(pats[i], pats[brute]) < 0))
            brute = (long)i;
    }
    if (route_pattern_table_new((const route_pattern *const *)pats, n, &t) == 0) {
        if (route_pattern_table_best(t, dialed) != brute)
            abort();
        route_pattern_table_free(t);
    }
    for (size_t i = 0; i < n; i++)
        route_pattern_free(pats[i]);
    return 0;
}
