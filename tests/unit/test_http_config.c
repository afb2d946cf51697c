/* test_http_config.c: the [http] section read into the server configuration: every key, the
 * defaults, and an error naming the line for an unknown key or a bad value. */
#include "testutil.h"

#include "core/config.h"
#include "core/error.h"
#include "http/config.h"

#include <string.h>

static sb_config *parse(const char *text)
{
    sb_config *cfg = NULL;
    char err[256];
    int rc = sb_config_parse(text, strlen(text), "test.conf", &cfg, err, sizeof(err));
    if (rc)
        fail_msg("config: %s", err);
    return cfg;
}

static void test_every_key(void **state)
{
    sb_config *cfg = parse("[http]\n"
                           "bind = 0.0.0.0\n"
                           "port = 9090\n"
                           "web_root = /srv/web\n"
                           "max_url_bytes = 2048\n"
                           "max_header_bytes = 8k\n"
                           "max_headers = 32\n"
                           "max_body_bytes = 2m\n"
                           "max_connections = 100\n"
                           "idle_timeout = 5s\n"
                           "request_timeout = 1500ms\n"
                           "stream_max_queued = 128k\n"
                           "stream_flush = 0ms\n"
                           "heartbeat = 1m\n"
                           "ws_max_message = 1k\n"
                           "linger = 3\n");
    http_config hc;
    char err[128];
    (void)state;
    assert_int_equal(
        http_config_from_section(sb_config_section_find(cfg, "http", NULL), &hc, err, sizeof(err)),
        0);
    assert_string_equal(hc.server.host, "0.0.0.0");
    assert_int_equal(hc.server.port, 9090);
    assert_string_equal(hc.web_root, "/srv/web");
    assert_int_equal(hc.server.max_url_bytes, 2048);
    assert_int_equal(hc.server.max_header_bytes, 8192);
    assert_int_equal(hc.server.max_headers, 32);
    assert_int_equal(hc.server.max_body_bytes, 2 * 1024 * 1024);
    assert_int_equal(hc.server.max_connections, 100);
    assert_int_equal(hc.server.idle_timeout_ms, 5000);
    assert_int_equal(hc.server.request_timeout_ms, 1500);
    assert_int_equal(hc.server.stream_max_queued, 128 * 1024);
    assert_int_equal(hc.server.stream_flush_ms, 0);
    assert_int_equal(hc.server.heartbeat_ms, 60000);
    assert_int_equal(hc.server.ws_max_message, 1024);
    assert_int_equal(hc.server.linger_ms, 3000);
    assert_null(hc.server.handler);
    sb_config_free(cfg);
}

static void test_defaults_without_a_section(void **state)
{
    http_config hc;
    char err[128];
    (void)state;
    assert_int_equal(http_config_from_section(NULL, &hc, err, sizeof(err)), 0);
    assert_string_equal(hc.server.host, "127.0.0.1");
    assert_int_equal(hc.server.port, 8080);
    assert_null(hc.web_root);
    assert_int_equal(hc.server.max_body_bytes, 0); /* 0: the server's default */
}

static void test_bad_values_name_their_line(void **state)
{
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"[http]\nport = 8080\nlisten = x\n", "line 3: [http] listen: unknown key"},
        {"[http]\nport = 70000\n", "line 2: [http] port: not a port"},
        {"[http]\nmax_body_bytes = lots\n", "line 2: [http] max_body_bytes: not a size"},
        {"[http]\nmax_body_bytes = 0\n", "line 2: [http] max_body_bytes: not a size"},
        {"[http]\nidle_timeout = soon\n", "line 2: [http] idle_timeout: not a duration"},
        {"[http]\nheartbeat = 0s\n", "line 2: [http] heartbeat: must be more than 0"},
        {"[http]\nbind =\n", "line 2: [http] bind: must not be empty"},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sb_config *cfg = parse(cases[i].text);
        http_config hc;
        char err[128];
        assert_int_equal(http_config_from_section(sb_config_section_find(cfg, "http", NULL), &hc,
                                                  err, sizeof(err)),
                         SB_ECONFIG);
        if (strncmp(err, cases[i].expect, strlen(cases[i].expect)))
            fail_msg("case %zu: got '%s'", i, err);
        sb_config_free(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_defaults_without_a_section),
        cmocka_unit_test(test_bad_values_name_their_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
