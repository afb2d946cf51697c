/* fuzz_route_file.c: libFuzzer target for the route file parser (src/routing/file.c).
 *
 * Any input either fails with a message naming a line, or parses; a parsed file exports to text
 * that parses again and exports identically, and the decision runs on each route set for a few
 * numbers (the fast and the traced path must agree). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "routing/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    route_db *db = NULL, *db2 = NULL;
    char err[512];
    sb_buf a, b, tr;
    if (size > 65536)
        return 0;
    int rc = route_db_parse((const char *)data, size, "f", &db, err, sizeof err);
    if (rc != 0) {
        if (rc == SB_EINVAL && strncmp(err, "f:", 2) != 0)
            abort(); /* every refusal names the line */
        return 0;
    }
    sb_buf_init(&a, 1 << 22);
    sb_buf_init(&b, 1 << 22);
    sb_buf_init(&tr, 1 << 22);
    if (route_db_export(db, &a) != 0 ||
        route_db_parse(a.data, a.len, "e", &db2, err, sizeof err) != 0 ||
        route_db_export(db2, &b) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        abort();
    static const char *const numbers[] = {"31", "0044123456", "66", "", "*98", "+3491"};
    for (size_t i = 0; i < db->nsets; i++) {
        for (size_t j = 0; j < sizeof numbers / sizeof numbers[0]; j++) {
            route_facts f = {sb_slice_cstr(numbers[j]), sb_slice_cstr("300"), sb_slice_cstr(""),
                             1795478383};
            route_decision d1, d2;
            int r1 = route_decide(&db->sets[i], &f, &d1, NULL);
            sb_buf_reset(&tr);
            int r2 = route_decide(&db->sets[i], &f, &d2, &tr);
            if (r1 != r2 || d1.rule != d2.rule || d1.action != d2.action)
                abort();
        }
    }
    sb_buf_free(&a);
    sb_buf_free(&b);
    sb_buf_free(&tr);
    route_db_free(db);
    route_db_free(db2);
    return 0;
}
