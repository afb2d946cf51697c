/* test_api_openapi.c: the OpenAPI document served at GET /v1/openapi.json (src/api/openapi.c,
 * generated) says exactly what web/openapi.json says, is OpenAPI 3.1, and describes every /v1
 * route of the API with its roles and the JSON error schema. */
#include "api/api.h"
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_embedded_matches_file(void **state)
{
    (void)state;
    size_t len, flen;
    const char *t = api_openapi_text(&len);
    char *file = tu_read_file(SB_SOURCE_DIR "/web/openapi.json", &flen);
    assert_non_null(file);
    json_error_t e;
    json_t *a = json_loadb(t, len, 0, &e);
    json_t *b = json_loads(file, 0, &e);
    assert_non_null(a);
    assert_non_null(b);
    /* Regenerate with: python3 src/api/gen_openapi.py web/openapi.json src/api/openapi.c */
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    free(file);
}

static void test_every_route_described(void **state)
{
    (void)state;
    static const char *const ops[][2] = {
        {"/v1/openapi.json", "get"},
        {"/v1/pbxs", "get"},
        {"/v1/calls", "get"},
        {"/v1/calls", "post"},
        {"/v1/calls/{id}", "get"},
        {"/v1/queues", "get"},
        {"/v1/queues/{name}", "get"},
        {"/v1/queues/{name}/members/{interface}", "post"},
        {"/v1/queues/{name}/members/{interface}", "delete"},
        {"/v1/queues/{name}/members/{interface}/pause", "post"},
        {"/v1/queues/{name}/members/{interface}/unpause", "post"},
        {"/v1/agents/{extension}", "get"},
        {"/v1/routes", "get"},
        {"/v1/routes", "put"},
        {"/v1/routes/test", "post"},
        {"/v1/routes/{set}", "get"},
        {"/v1/routes/{set}", "delete"},
        {"/v1/outbox", "get"},
        {"/v1/outbox/sinks/{sink}/retry", "post"},
        {"/v1/outbox/sinks/{sink}/replay", "post"},
    };
    size_t len;
    const char *t = api_openapi_text(&len);
    json_t *doc = json_loadb(t, len, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        json_t *op = json_object_get(json_object_get(paths, ops[i][0]), ops[i][1]);
        if (!op)
            fail_msg("%s %s is not described", ops[i][1], ops[i][0]);
        json_t *resp = json_object_get(op, "responses");
        assert_non_null(json_object_get(resp, "401"));
        assert_true(json_array_size(json_object_get(op, "x-roles")) >= 1);
    }
    json_t *err =
        json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "Error");
    assert_non_null(err);
    assert_non_null(json_object_get(json_object_get(err, "properties"), "error"));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_matches_file),
        cmocka_unit_test(test_every_route_described),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
