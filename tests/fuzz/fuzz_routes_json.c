/* fuzz_routes_json.c: libFuzzer target for the JSON form of route files (PUT /v1/routes with
 * application/json, src/api/routes_json.c).
 *
 * Properties: whatever JSON arrives, the file written from it has exactly one section per JSON
 * section, with the JSON's names in the JSON's order (no value or name can smuggle a line or a
 * section into the file); and when the file parses, its JSON form written back parses to the same
 * JSON form (GET then PUT changes nothing). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The names of the JSON's sections in file order: routes with their rules, ivrs, cidmaps. */
static size_t json_names(json_t *j, const char **names, size_t max)
{
    static const char *const lists[] = {"routes", "ivrs", "cidmaps"};
    size_t n = 0, i, k;
    json_t *o, *ro;
    for (size_t l = 0; l < 3; l++) {
        json_array_foreach(json_object_get(j, lists[l]), i, o)
        {
            if (n < max)
                names[n] = json_string_value(json_object_get(o, "name"));
            n++;
            json_array_foreach(l == 0 ? json_object_get(o, "rules") : NULL, k, ro)
            {
                if (n < max)
                    names[n] = json_string_value(json_object_get(ro, "name"));
                n++;
            }
        }
    }
    return n;
}

/* The JSON form of text, or NULL when it does not parse. */
static json_t *form_of(const char *text, size_t len, route_db **out)
{
    char err[512];
    if (route_db_parse(text, len, "fuzz", out, err, sizeof err) != 0)
        return NULL;
    return api_routes_db_json(*out, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    const char *names[256];
    route_db *db = NULL, *db2 = NULL;
    json_t *j = json_loadb((const char *)data, size, 0, NULL), *f1 = NULL, *f2 = NULL;
    sb_buf t1, t2;
    sb_buf_init(&t1, 1u << 20);
    sb_buf_init(&t2, 1u << 20);
    if (!j || api_routes_json_to_text(j, &t1, err, sizeof err) != 0)
        goto out;
    size_t n = json_names(j, names, 256);
    if (!(f1 = form_of(t1.data, t1.len, &db)))
        goto out;
    if (db->nsections != n)
        abort(); /* a section was smuggled in or lost */
    for (size_t i = 0; i < n && i < 256; i++)
        if (!names[i] || strcmp(names[i], db->sections[i].name) != 0)
            abort();
    if (api_routes_json_to_text(f1, &t2, err, sizeof err) != 0)
        abort(); /* GET's form must be accepted by PUT */
    if (!(f2 = form_of(t2.data, t2.len, &db2)))
        abort();
    if (!json_equal(f1, f2))
        abort();
out:
    json_decref(f2);
    json_decref(f1);
    json_decref(j);
    route_db_free(db2);
    route_db_free(db);
    sb_buf_free(&t2);
    sb_buf_free(&t1);
    return 0;
}
