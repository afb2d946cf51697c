/* test_store_route_files.c: the store API's route file calls (store_route_file_insert /
 * store_route_file_newest) that src/routing/store.c uses instead of SQL of its own: versions
 * increase, the newest wins, the text comes back byte for byte and NUL-terminated, an empty store
 * says SB_ENOTFOUND, a reader sees what the writer stored, and route_store_load answers
 * SB_ENOTFOUND for a store file that does not exist without creating it. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "routing/store.h"
#include "store/store.h"

static void test_store_route_files_versions(void **state)
{
    (void)state;
    char dir[] = "/tmp/sb-store-routes-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/s.db", dir);

    char *text = NULL;
    size_t len = 99;
    int64_t v = -1;
    assert_int_equal(route_store_load(path, &text, &len, &v), SB_ENOTFOUND);
    assert_int_equal(access(path, F_OK), -1); /* a reader never creates the file */

    store_conn *w = NULL, *r = NULL;
    assert_int_equal(store_open(path, STORE_OPEN_WRITE, NULL, &w), 0);
    assert_int_equal(store_route_file_newest(w, &text, &len, &v), SB_ENOTFOUND);
    assert_null(text);

    /* The text is stored with its length: bytes after it in the buffer are not. */
    const char buf[] = "[route route]\n; ünïcode comment\nXXXX";
    size_t n1 = sizeof buf - 1 - 4;
    int64_t v1 = 0, v2 = 0;
    assert_int_equal(store_route_file_insert(w, buf, n1, "a.conf", 1000, &v1), 0);
    assert_int_equal(store_route_file_insert(w, "", 0, NULL, 2000, &v2), 0);
    assert_true(v2 > v1 && v1 >= 1);

    assert_int_equal(store_open(path, STORE_OPEN_READ, NULL, &r), 0);
    assert_int_equal(store_route_file_newest(r, &text, &len, &v), 0);
    assert_int_equal(v, v2);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    text = NULL;

    int64_t v3 = 0;
    assert_int_equal(store_route_file_insert(w, buf, n1, "a.conf", 3000, &v3), 0);
    assert_int_equal(v3, v2 + 1);
    assert_int_equal(store_route_file_newest(r, &text, &len, &v), 0);
    assert_int_equal(v, v3);
    assert_int_equal(len, n1);
    assert_memory_equal(text, buf, n1);
    assert_int_equal(text[n1], 0);
    free(text);
    text = NULL;
    store_close(r);
    store_close(w);

    /* The routing side reads the same newest version through the same calls. */
    assert_int_equal(route_store_load(path, &text, &len, &v), 0);
    assert_int_equal(v, v3);
    assert_int_equal(len, n1);
    free(text);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_route_files_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
