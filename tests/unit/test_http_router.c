/* test_http_router.c: routing over a live server: path parameters percent-decoded, query and
 * case-insensitive headers, 404 and 405 (with Allow) as JSON errors, HEAD through GET routes, the
 * per-route auth hook's 401/403 paths, and the table's own checks. */
#include "http_test_util.h"

#include "core/error.h"

#include <jansson.h>

static ht_fixture fx;
static int n_member, n_queues, n_auth, n_secret, n_post;
static char seen_name[64], seen_iface[64], seen_after[64], seen_hdr[64], seen_user[32];

static void copy(char *dst, size_t size, sb_slice s)
{
    sb_slice_copy(s, dst, size);
}

static void h_member(http_request *req, void *ud)
{
    (void)ud;
    n_member++;
    copy(seen_name, sizeof(seen_name), http_request_param(req, "name"));
    copy(seen_iface, sizeof(seen_iface), http_request_param(req, "interface"));
    copy(seen_after, sizeof(seen_after), http_request_query(req, "after"));
    copy(seen_hdr, sizeof(seen_hdr), http_request_header(req, "x-custom-header"));
    http_respond_json(req, 201,
                      json_pack("{s:s%,s:s%}", "queue", http_request_param(req, "name").ptr,
                                http_request_param(req, "name").len, "interface",
                                http_request_param(req, "interface").ptr,
                                http_request_param(req, "interface").len));
}

static void h_queues(http_request *req, void *ud)
{
    (void)ud;
    n_queues++;
    http_respond_json(req, 200, json_pack("[]"));
}

static void h_post(http_request *req, void *ud)
{
    (void)ud;
    n_post++;
    http_respond(req, 204, NULL, NULL, 0, (sb_slice){"", 0});
}

static int n_json;
static long long seen_limit;
static int seen_limit_rc[4], seen_missing_rc, seen_bad_rc[4];

static void h_json(http_request *req, void *ud)
{
    long long dummy;
    json_t *j;
    (void)ud;
    seen_limit_rc[n_json] = http_request_query_ll(req, "limit", &seen_limit);
    seen_missing_rc = http_request_query_ll(req, "absent", &dummy);
    seen_bad_rc[n_json] = http_request_query_ll(req, "word", &dummy);
    n_json++;
    j = http_request_json(req);
    if (!j)
        return; /* answered 400 already */
    http_respond_json(req, 200, json_pack("{s:O}", "got", j));
    json_decref(j);
}

static void h_secret(http_request *req, void *ud)
{
    (void)ud;
    n_secret++;
    copy(seen_user, sizeof(seen_user), sb_slice_cstr(http_request_user(req)));
    http_respond(req, 200, "text/plain", NULL, 0, SB_SLICE_LIT("secret"));
}

static void free_str(void *p)
{
    free(p);
}

/* Tokens: "good" is an admin, "agent" may not, anything else (or none) is unknown. */
static int auth_hook(http_request *req, sb_slice token, void *ud)
{
    (void)ud;
    n_auth++;
    if (sb_slice_eq(token, SB_SLICE_LIT("good"))) {
        http_request_set_user(req, sb_slice_dup(SB_SLICE_LIT("admin")), free_str);
        return 0;
    }
    if (sb_slice_eq(token, SB_SLICE_LIT("agent")))
        return SB_EDENIED;
    return SB_EAUTH;
}

static void start(void)
{
    static const http_route routes[] = {
        {"POST", "/v1/queues/{name}/members/{interface}", h_member, NULL, NULL, NULL},
        {"DELETE", "/v1/queues/{name}/members/{interface}", h_member, NULL, NULL, NULL},
        {"GET", "/v1/queues", h_queues, NULL, NULL, NULL},
        {"POST", "/v1/queues", h_post, NULL, NULL, NULL},
        {"GET", "/v1/secret", h_secret, NULL, auth_hook, NULL},
        {"POST", "/v1/json", h_json, NULL, NULL, NULL},
    };
    http_server_config cfg = {0};
    n_member = n_queues = n_auth = n_secret = n_post = 0;
    memset(seen_name, 0, sizeof(seen_name));
    ht_start(&fx, &cfg);
    assert_int_equal(http_router_add_table(fx.router, routes, 6), 0);
}

typedef struct rt_results {
    ht_resp r[15];
} rt_results;

static void routes_client(void *arg)
{
    rt_results *o = arg;
    static const char *const hdrs[] = {"X-CUSTOM-HEADER: Value 1", NULL};
    static const char *const good[] = {"Authorization: Bearer good", NULL};
    static const char *const agent[] = {"Authorization: Bearer agent", NULL};
    static const char *const wrong[] = {"Authorization: Bearer nope", NULL};
    static const char *const basic[] = {"Authorization: Basic Z29vZA==", NULL};
    CURL *h = curl_easy_init();
    ht_curl(h, fx.port, "POST", "/v1/queues/sales%20team/members/SIP%2F1001?after=12%2B1&x=a+b",
            hdrs, "", &o->r[0]);
    ht_curl(h, fx.port, "GET", "/v1/nothing", NULL, NULL, &o->r[1]);
    ht_curl(h, fx.port, "PUT", "/v1/queues/sales/members/SIP%2F1001", NULL, "", &o->r[2]);
    ht_curl(h, fx.port, "DELETE", "/v1/queues", NULL, NULL, &o->r[3]);
    ht_curl(h, fx.port, "HEAD", "/v1/queues", NULL, NULL, &o->r[4]);
    ht_curl(h, fx.port, "GET", "/v1/secret", NULL, NULL, &o->r[5]);
    ht_curl(h, fx.port, "GET", "/v1/secret", wrong, NULL, &o->r[6]);
    ht_curl(h, fx.port, "GET", "/v1/secret", agent, NULL, &o->r[7]);
    ht_curl(h, fx.port, "GET", "/v1/secret", good, NULL, &o->r[8]);
    ht_curl(h, fx.port, "GET", "/v1/secret", basic, NULL, &o->r[9]);
    ht_curl(h, fx.port, "POST", "/v1/queues/bad%zz/members/x", NULL, "", &o->r[10]);
    ht_curl(h, fx.port, "POST", "/v1/queues//members/x", NULL, "", &o->r[11]);
    ht_curl(h, fx.port, "POST", "/v1/json?limit=25&word=abc", NULL, "{\"a\":[1,2]}", &o->r[12]);
    ht_curl(h, fx.port, "POST", "/v1/json", NULL, "{\"a\":", &o->r[13]);
    ht_curl(h, fx.port, "POST", "/v1/json", NULL, "", &o->r[14]);
    curl_easy_cleanup(h);
}

static void assert_error(const ht_resp *r, long status, const char *code)
{
    json_error_t err;
    json_t *j = json_loads(r->body, 0, &err);
    const char *c = NULL, *m = NULL;
    if (r->status != status)
        fail_msg("expected %ld, got %ld: %s", status, r->status, r->body);
    assert_non_null(j);
    assert_int_equal(json_unpack(j, "{s:{s:s,s:s}}", "error", "code", &c, "message", &m), 0);
    assert_string_equal(c, code);
    assert_true(strlen(m) > 0);
    assert_non_null(strstr(r->head, "Content-Type: application/json"));
    json_decref(j);
}

static void test_routes_params_and_errors(void **state)
{
    static rt_results o;
    (void)state;
    start();
    ht_run_client(&fx, routes_client, &o);
    /* Parameters decoded per segment: %2F stays inside its segment. */
    assert_int_equal(o.r[0].status, 201);
    assert_string_equal(seen_name, "sales team");
    assert_string_equal(seen_iface, "SIP/1001");
    assert_string_equal(seen_after, "12+1");
    assert_string_equal(seen_hdr, "Value 1");
    assert_string_equal(o.r[0].body, "{\"queue\":\"sales team\",\"interface\":\"SIP/1001\"}");
    assert_error(&o.r[1], 404, "not_found");
    assert_error(&o.r[2], 405, "method_not_allowed");
    assert_non_null(strstr(o.r[2].head, "Allow: POST, DELETE\r\n"));
    assert_error(&o.r[3], 405, "method_not_allowed");
    assert_non_null(strstr(o.r[3].head, "Allow: GET, HEAD, POST\r\n"));
    assert_int_equal(o.r[4].status, 200); /* HEAD served by the GET route */
    assert_int_equal(o.r[4].body_len, 0);
    assert_error(&o.r[5], 401, "unauthorized");
    assert_non_null(strstr(o.r[5].head, "WWW-Authenticate: Bearer"));
    assert_error(&o.r[6], 401, "unauthorized");
    assert_error(&o.r[7], 403, "forbidden");
    assert_int_equal(o.r[8].status, 200);
    assert_string_equal(o.r[8].body, "secret");
    assert_string_equal(seen_user, "admin");
    assert_error(&o.r[9], 401, "unauthorized"); /* not a bearer token */
    assert_error(&o.r[10], 400, "bad_request");
    assert_error(&o.r[11], 404, "not_found"); /* an empty segment is no parameter */
    assert_int_equal(o.r[12].status, 200);
    assert_string_equal(o.r[12].body, "{\"got\":{\"a\":[1,2]}}");
    assert_error(&o.r[13], 400, "malformed_json");
    assert_non_null(strstr(o.r[13].body, "line 1"));
    assert_error(&o.r[14], 400, "malformed_json");
    assert_int_equal(n_json, 3);
    assert_int_equal(seen_limit_rc[0], 0);
    assert_int_equal(seen_limit, 25);
    assert_int_equal(seen_bad_rc[0], SB_EINVAL);
    assert_int_equal(seen_limit_rc[1], SB_ENOTFOUND);
    assert_int_equal(seen_missing_rc, SB_ENOTFOUND);
    assert_int_equal(n_member, 1);
    assert_int_equal(n_queues, 1);
    assert_int_equal(n_post, 0);
    assert_int_equal(n_auth, 5);   /* the hook runs for every request to its route */
    assert_int_equal(n_secret, 1); /* and the handler only when it allowed */
    ht_stop(&fx);
}

static void test_table_checks(void **state)
{
    http_router *r;
    http_route ok = {"GET", "/a/{x}", h_queues, NULL, NULL, NULL};
    http_route bad1 = {"GET", "no-slash", h_queues, NULL, NULL, NULL};
    http_route bad2 = {"GET", "/a{x}", h_queues, NULL, NULL, NULL};
    http_route many = {"GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h_queues, NULL, NULL, NULL};
    http_route nohandler = {"GET", "/b", NULL, NULL, NULL, NULL};
    (void)state;
    assert_int_equal(http_router_init(&r), 0);
    assert_int_equal(http_router_add(r, &ok), 0);
    assert_int_equal(http_router_add(r, &ok), SB_EEXIST);
    assert_int_equal(http_router_add(r, &bad1), SB_EINVAL);
    assert_int_equal(http_router_add(r, &bad2), SB_EINVAL);
    assert_int_equal(http_router_add(r, &many), SB_EINVAL);
    assert_int_equal(http_router_add(r, &nohandler), SB_EINVAL);
    http_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_params_and_errors),
        cmocka_unit_test(test_table_checks),
    };
    int rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
