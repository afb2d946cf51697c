/* test_http_static.c: the console's static files behind the router's fallback: content types,
 * index files, ETag/If-None-Match, HEAD, and every path traversal trick we know of (dot segments
 * raw and percent-encoded, encoded slashes, NUL, backslash, a symlink out of the root). */
#include "http_test_util.h"

#include "core/error.h"
#include "http/static.h"

#include <sys/stat.h>

static ht_fixture fx;
static char tmpdir[256], root[300];
static int n_api;

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void h_api(http_request *req, void *ud)
{
    (void)ud;
    n_api++;
    http_respond_json(req, 200, json_pack("{s:b}", "api", 1));
}

#define NREQ 16
typedef struct st_out {
    ht_resp r[NREQ + 2];
    char raw[3][2048];
    char etag[128];
} st_out;

static const char *const paths[NREQ] = {
    "/",                         /* 0: index.html */
    "/app.js",                   /* 1 */
    "/style.css",                /* 2 */
    "/sub/",                     /* 3: sub/index.html */
    "/sub",                      /* 4: the directory's index too */
    "/../secret.txt",            /* 5: dot-dot, raw */
    "/%2e%2e/secret.txt",        /* 6: dot-dot, encoded */
    "/sub/..%2f..%2fsecret.txt", /* 7: encoded slashes */
    "/link.txt",                 /* 8: symlink out of the root */
    "/missing.html",             /* 9 */
    "/app.js%00.html",           /* 10: NUL */
    "/..%5csecret.txt",          /* 11: backslash */
    "/v1/thing",                 /* 12: an API route wins over files */
    "/./app.js",                 /* 13: dot segment */
    "/sub/../app.js",            /* 14: dot-dot that stays inside: still refused */
    "/data.bin",                 /* 15: unknown type */
};

static void static_client(void *arg)
{
    st_out *o = arg;
    CURL *h = curl_easy_init();
    static char inm[200];
    const char *hdrs[] = {inm, NULL};
    const char *e;
    size_t i;
    for (i = 0; i < NREQ; i++)
        ht_curl(h, fx.port, "GET", paths[i], NULL, NULL, &o->r[i]);
    /* If-None-Match with the ETag just served: 304. */
    e = strstr(o->r[1].head, "ETag: ");
    if (e) {
        size_t n = strcspn(e + 6, "\r\n");
        snprintf(o->etag, sizeof(o->etag), "%.*s", (int)n, e + 6);
        snprintf(inm, sizeof(inm), "If-None-Match: %s", o->etag);
        ht_curl(h, fx.port, "GET", "/app.js", hdrs, NULL, &o->r[NREQ]);
    }
    ht_curl(h, fx.port, "HEAD", "/app.js", NULL, NULL, &o->r[NREQ + 1]);
    curl_easy_cleanup(h);
}

static void test_static_files_and_traversal(void **state)
{
    static st_out o;
    static const http_route api = {"GET", "/v1/thing", h_api, NULL, NULL, NULL};
    http_server_config cfg = {0};
    http_static *st;
    char link[600], target[600];
    size_t i;
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sb_static_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(root, sizeof(root), "%s/web", tmpdir);
    assert_int_equal(mkdir(root, 0755), 0);
    snprintf(link, sizeof(link), "%s/sub", root);
    assert_int_equal(mkdir(link, 0755), 0);
    write_file(tmpdir, "secret.txt", "TOP SECRET");
    write_file(root, "index.html", "<h1>console</h1>");
    write_file(root, "app.js", "export const x = 1;");
    write_file(root, "style.css", "body{}");
    write_file(root, "data.bin", "\x01\x02");
    write_file(link, "index.html", "<h1>sub</h1>");
    snprintf(link, sizeof(link), "%s/link.txt", root);
    snprintf(target, sizeof(target), "%s/secret.txt", tmpdir);
    assert_int_equal(symlink(target, link), 0);

    assert_int_equal(http_static_init(&st, "/nonexistent/dir"), SB_ENOTFOUND);
    assert_int_equal(http_static_init(&st, root), 0);
    ht_start(&fx, &cfg);
    assert_int_equal(http_router_add(fx.router, &api), 0);
    http_router_set_fallback(fx.router, http_static_handle, st);
    n_api = 0;
    ht_run_client(&fx, static_client, &o);

    assert_int_equal(o.r[0].status, 200);
    assert_string_equal(o.r[0].body, "<h1>console</h1>");
    assert_non_null(strstr(o.r[0].head, "Content-Type: text/html; charset=utf-8\r\n"));
    assert_int_equal(o.r[NREQ].status, 304);
    assert_int_equal(o.r[NREQ].body_len, 0);
    assert_non_null(strstr(o.r[NREQ].head, o.etag));
    assert_int_equal(o.r[1].status, 200);
    assert_string_equal(o.r[1].body, "export const x = 1;");
    assert_non_null(strstr(o.r[1].head, "Content-Type: text/javascript; charset=utf-8\r\n"));
    assert_non_null(strstr(o.r[1].head, "Cache-Control: no-cache\r\n"));
    assert_true(strlen(o.etag) > 4);
    assert_int_equal(o.r[2].status, 200);
    assert_non_null(strstr(o.r[2].head, "Content-Type: text/css"));
    assert_int_equal(o.r[3].status, 200);
    assert_string_equal(o.r[3].body, "<h1>sub</h1>");
    assert_non_null(strstr(o.r[3].head, "Content-Type: text/html"));
    assert_int_equal(o.r[4].status, 200);
    assert_string_equal(o.r[4].body, "<h1>sub</h1>");
    assert_int_equal(o.r[NREQ + 1].status, 200); /* HEAD /app.js */
    assert_int_equal(o.r[NREQ + 1].body_len, 0);
    assert_non_null(strstr(o.r[NREQ + 1].head, "Content-Length: 19\r\n"));
    for (i = 5; i <= 11; i++) {
        if (o.r[i].status != 404 || strstr(o.r[i].body, "SECRET"))
            fail_msg("%s: expected 404, got %ld %s", paths[i], o.r[i].status, o.r[i].body);
        assert_non_null(strstr(o.r[i].body, "\"not_found\""));
    }
    assert_int_equal(o.r[12].status, 200);
    assert_string_equal(o.r[12].body, "{\"api\":true}");
    assert_int_equal(n_api, 1);
    assert_int_equal(o.r[13].status, 404);
    assert_int_equal(o.r[14].status, 404);
    assert_int_equal(o.r[15].status, 200);
    assert_non_null(strstr(o.r[15].head, "Content-Type: application/octet-stream"));
    ht_stop(&fx);
    http_static_free(st);
    /* Clean up the tree. */
    unlink(link);
    write_file(tmpdir, "x", "");
    {
        const char *names[] = {"index.html", "app.js", "style.css", "data.bin"};
        char p[600];
        for (i = 0; i < 4; i++) {
            snprintf(p, sizeof(p), "%s/%s", root, names[i]);
            unlink(p);
        }
        snprintf(p, sizeof(p), "%s/sub/index.html", root);
        unlink(p);
        snprintf(p, sizeof(p), "%s/sub", root);
        rmdir(p);
        rmdir(root);
        snprintf(p, sizeof(p), "%s/secret.txt", tmpdir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/x", tmpdir);
        unlink(p);
        rmdir(tmpdir);
    }
}

/* The raw "/../" never reaches the file system even when a client does not normalise it. */
static void raw_client(void *arg)
{
    st_out *o = arg;
    int fd = ht_connect(fx.port, 0);
    ht_sends(fd, "GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ht_recv_all(fd, o->raw[0], sizeof(o->raw[0]));
    close(fd);
    fd = ht_connect(fx.port, 0);
    ht_sends(fd, "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n");
    ht_recv_all(fd, o->raw[1], sizeof(o->raw[1]));
    close(fd);
}

static void test_static_as_server_handler(void **state)
{
    static st_out o;
    http_server_config cfg = {0};
    http_static *st;
    (void)state;
    assert_int_equal(http_static_init(&st, "/etc"), 0);
    cfg.handler = http_static_handle;
    cfg.handler_ud = st;
    ht_start(&fx, &cfg);
    ht_run_client(&fx, raw_client, &o);
    assert_int_equal(ht_status(o.raw[0]), 404);
    assert_null(strstr(o.raw[0], "root:"));
    assert_int_equal(ht_status(o.raw[1]), 405);
    assert_non_null(strstr(o.raw[1], "Allow: GET, HEAD\r\n"));
    ht_stop(&fx);
    http_static_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_files_and_traversal),
        cmocka_unit_test(test_static_as_server_handler),
    };
    int rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
