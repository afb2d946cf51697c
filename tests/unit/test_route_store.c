/* test_route_store.c: route files in the store: import validates and versions, load returns the
 * newest, a bad file is refused with its line and stores nothing. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "routing/route.h"
#include "routing/store.h"
#include "store/store.h"

static void test_route_store_import_and_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/sb-route-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/s.db", dir);
    char *text = NULL, err[300];
    size_t len = 0;
    int64_t v = 0;
    assert_int_equal(route_store_load(path, &text, &len, &v), SB_ENOTFOUND);

    const char *f1 = "[route route]\n[rule a]\nmatch = _3X\naction = dial PJSIP/${EXTEN}\n";
    const char *f2 = "[route route]\n[rule b]\nmatch = _2X\naction = hangup\n";
    const char *bad = "[route route]\n[rule b]\nmatch = _2X\naction = fly\n";
    assert_int_equal(route_store_import(path, f1, strlen(f1), "f1.conf", &v, err, sizeof err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(route_store_import(path, f2, strlen(f2), "f2.conf", &v, err, sizeof err), 0);
    assert_int_equal(v, 2);
    assert_int_equal(route_store_import(path, bad, strlen(bad), "bad.conf", &v, err, sizeof err),
                     SB_EINVAL);
    assert_non_null(strstr(err, "bad.conf:4: [rule b] action: unknown action 'fly'"));

    assert_int_equal(route_store_load(path, &text, &len, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(len, strlen(f2));
    assert_string_equal(text, f2);
    free(text);

    /* The store's own schema knows the migration. */
    store_conn *c = NULL;
    int ver = 0;
    assert_int_equal(store_open(path, STORE_OPEN_READ, NULL, &c), 0);
    assert_int_equal(store_schema_version(c, &ver), 0);
    assert_true(ver >= 2);
    store_close(c);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_store_import_and_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
