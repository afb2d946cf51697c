/* test_config.c: switchboard.conf loading: a good file, defaults, every kind of bad line with its
 * exact "file:line: ..." message, secrets from a file and the environment (and never in output),
 * repeated and comma-listed filters, kept sections for later modules. */
#include "testutil.h"

#include "core/config.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sb_test_config_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void write_file(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static int teardown_dir(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Loads text written as tmpdir/name; returns the code, the message in err. */
static int load_text(const char *name, const char *text, sb_config **cfg, char *err, size_t size)
{
    char path[512];
    write_file(name, text, path, sizeof path);
    return sb_config_load(path, cfg, err, size);
}

/* Expects text to fail with exactly "TMPDIR/bad.conf:<msg>". */
static void expect_error(const char *text, const char *msg)
{
    char err[512], want[1024];
    sb_config *cfg = (sb_config *)1;
    int rc = load_text("bad.conf", text, &cfg, err, sizeof err);
    assert_int_equal(rc, SB_ECONFIG);
    assert_null(cfg);
    snprintf(want, sizeof want, "%s/bad.conf:%s", tmpdir, msg);
    assert_string_equal(err, want);
    assert_null(strchr(err, '\n'));
}

static void test_config_good_file_every_key(void **state)
{
    (void)state;
    char err[512];
    sb_config *cfg = NULL;
    const char *text = "; a comment\n"
                       "# another\n"
                       "[general]\n"
                       "log_level = debug\n"
                       "log_format = json\n"
                       "\n"
                       "[pbx main]\n"
                       "host = 10.0.0.5\n"
                       "port = 5039\n"
                       "username = switchboard\n"
                       "secret = s3cr3t-inline\n"
                       "auth = md5\n"
                       "events = call,agent\n"
                       "filter = Event: Newchannel\n"
                       "filter = Event: Hangup, !Channel: Local/\n"
                       "ping_interval = 5s\n"
                       "stall_timeout = 1m\n"
                       "reconnect_min = 250ms\n"
                       "reconnect_max = 60\n"
                       "action_timeout = 3s\n"
                       "connect_timeout = 2s\n"
                       "[pbx backup]\n"
                       "username = other\n"
                       "secret = x\n"
                       "[http]\n"
                       "listen = 127.0.0.1:8080\n"
                       "[sink hook1]\n"
                       "kind = webhook\n"
                       "url = https://example.com/a\n"
                       "url = https://example.com/b\n"
                       "[agi]\n[store]\n[hubspot]\n[dialer]\n";
    assert_int_equal(load_text("good.conf", text, &cfg, err, sizeof err), 0);
    assert_non_null(cfg);
    assert_int_equal(cfg->log_level, SB_LOG_DEBUG);
    assert_true(cfg->log_json);
    assert_int_equal(cfg->npbx, 2);
    const sb_config_pbx *p = sb_config_find_pbx(cfg, "main");
    assert_non_null(p);
    assert_int_equal(p->line, 7);
    assert_string_equal(p->host, "10.0.0.5");
    assert_int_equal(p->port, 5039);
    assert_string_equal(p->username, "switchboard");
    assert_string_equal(p->secret, "s3cr3t-inline");
    assert_int_equal(p->secret_source, SB_SECRET_INLINE);
    assert_true(p->md5);
    assert_string_equal(p->events, "call,agent");
    assert_int_equal(p->nfilters, 3);
    assert_string_equal(p->filters[0], "Event: Newchannel");
    assert_string_equal(p->filters[1], "Event: Hangup");
    assert_string_equal(p->filters[2], "!Channel: Local/");
    assert_int_equal(p->ping_interval_ms, 5000);
    assert_int_equal(p->stall_timeout_ms, 60000);
    assert_int_equal(p->reconnect_min_ms, 250);
    assert_int_equal(p->reconnect_max_ms, 60000);
    assert_int_equal(p->action_timeout_ms, 3000);
    assert_int_equal(p->connect_timeout_ms, 2000);
    assert_null(sb_config_find_pbx(cfg, "nope"));

    /* Kept sections, in file order, with their keys in order. */
    assert_int_equal(cfg->nsections, 6);
    const sb_config_section *s = sb_config_section_find(cfg, "sink", "hook1");
    assert_non_null(s);
    assert_int_equal(s->nkv, 3);
    assert_int_equal(s->line, 27);
    assert_string_equal(s->kv[1].key, "url");
    assert_int_equal(s->kv[1].line, 29);
    assert_string_equal(sb_config_section_get(s, "url"), "https://example.com/b");
    assert_string_equal(sb_config_section_get(s, "KIND"), "webhook");
    assert_null(sb_config_section_get(s, "nope"));
    s = sb_config_section_find(cfg, "http", NULL);
    assert_string_equal(sb_config_section_get(s, "listen"), "127.0.0.1:8080");
    assert_non_null(sb_config_section_find(cfg, "dialer", NULL));
    assert_null(sb_config_section_find(cfg, "sink", "other"));
    sb_config_free(cfg);
}

static void test_config_defaults(void **state)
{
    (void)state;
    char err[512];
    sb_config *cfg = NULL;
    assert_int_equal(
        load_text("d.conf", "[pbx a]\nusername = u\nsecret = p\n", &cfg, err, sizeof err), 0);
    assert_int_equal(cfg->log_level, SB_LOG_INFO);
    assert_false(cfg->log_json);
    const sb_config_pbx *p = &cfg->pbx[0];
    assert_string_equal(p->name, "a");
    assert_string_equal(p->host, "127.0.0.1");
    assert_int_equal(p->port, 5038);
    assert_false(p->md5);
    assert_string_equal(p->events, "on");
    assert_int_equal(p->nfilters, 0);
    assert_int_equal(p->ping_interval_ms, 10000);
    assert_int_equal(p->stall_timeout_ms, 30000);
    assert_int_equal(p->reconnect_min_ms, 500);
    assert_int_equal(p->reconnect_max_ms, 30000);
    assert_int_equal(p->action_timeout_ms, 10000);
    assert_int_equal(p->connect_timeout_ms, 5000);
    sb_config_free(cfg);

    /* An empty file is a valid configuration with no PBX. */
    assert_int_equal(load_text("e.conf", "", &cfg, err, sizeof err), 0);
    assert_int_equal(cfg->npbx, 0);
    assert_int_equal(cfg->nsections, 0);
    sb_config_free(cfg);
    /* A UTF-8 byte order mark before the first section is fine. */
    assert_int_equal(load_text("bom.conf", "\xEF\xBB\xBF[pbx a]\nusername = u\nsecret = p\n", &cfg,
                               err, sizeof err),
                     0);
    assert_string_equal(cfg->pbx[0].name, "a");
    sb_config_free(cfg);
    /* CRLF line ends are fine. */
    assert_int_equal(
        load_text("crlf.conf", "[pbx a]\r\nusername = u\r\nsecret = p\r\n", &cfg, err, sizeof err),
        0);
    assert_string_equal(cfg->pbx[0].secret, "p");
    sb_config_free(cfg);
}

static void test_config_bad_lines_exact_messages(void **state)
{
    (void)state;
    expect_error("[general]\nlog_level = loud\n",
                 "2: [general] log_level: 'loud' is not debug, info, warn or error");
    expect_error("[general]\nlog_format = xml\n",
                 "2: [general] log_format: 'xml' is not text or json");
    expect_error("[general]\ncolour = red\n",
                 "2: [general] unknown key 'colour' (known: log_level, log_format)");
    expect_error("[general]\nlog_level = info\nlog_level = warn\n",
                 "3: [general] key 'log_level' already set at line 2");
    expect_error("log_level = info\n",
                 "1: key 'log_level' outside any section (start with [general] or [pbx NAME])");
    expect_error("[general]\nthis is not a key\n",
                 "2: syntax error: expected '[section]' or 'key = value'");
    expect_error("[general\n", "1: syntax error: expected '[section]' or 'key = value'");
    expect_error("\n\n[bogus]\n",
                 "3: [bogus] unknown section (known: general, pbx NAME, http, agi, store, sink "
                 "NAME, hubspot, dialer)");
    expect_error("[pbx]\nusername = u\n", "1: [pbx] needs a name: [pbx NAME]");
    expect_error("[pbx a b]\n", "1: [pbx a b] bad PBX name 'a b' (use letters, digits, '_', '-', "
                                "'.')");
    expect_error("[general x]\n", "1: [general x] section [general] takes no name");
    expect_error("[sink]\n", "1: [sink] needs a name: [sink NAME]");
    expect_error("[http main]\n", "1: [http main] section [http] takes no name");
    expect_error("[http]\n[http]\n", "2: [http] section already defined at line 1");
    expect_error("[pbx a]\nusername=u\nsecret=p\n[pbx a]\nusername=u\nsecret=p\n",
                 "4: [pbx a] PBX 'a' already defined at line 1");
    expect_error("[pbx a]\nusername = u\nsecret = p\nhots = x\n",
                 "4: [pbx a] unknown key 'hots' (known: host, port, username, secret, secret_file, "
                 "secret_env, auth, events, filter, ping_interval, stall_timeout, reconnect_min, "
                 "reconnect_max, action_timeout, connect_timeout)");
    expect_error("[pbx a]\nusername = u\nsecret = p\nport = 70000\n",
                 "4: [pbx a] port: '70000' is not a port number (1-65535)");
    expect_error("[pbx a]\nusername = u\nsecret = p\nport = 50x\n",
                 "4: [pbx a] port: '50x' is not a port number (1-65535)");
    expect_error("[pbx a]\nusername = u\nsecret = p\nauth = sha1\n",
                 "4: [pbx a] auth: 'sha1' is not plain or md5");
    expect_error("[pbx a]\nusername = u\nsecret = p\nevents = call,bogus\n",
                 "4: [pbx a] events: 'call,bogus' is not on, off or a list of event classes "
                 "(system, call, agent, user, ...)");
    expect_error("[pbx a]\nusername = u\nsecret = p\nping_interval = soon\n",
                 "4: [pbx a] ping_interval: 'soon' is not a duration (e.g. 500ms, 10s, 2m; a bare "
                 "number is seconds)");
    expect_error("[pbx a]\nusername = u\nsecret = p\nstall_timeout = 0\n",
                 "4: [pbx a] stall_timeout: must be more than 0");
    expect_error("[pbx a]\nusername = u\nsecret = p\nreconnect_min = 10s\nreconnect_max = 1s\n",
                 "4: [pbx a] reconnect_min: larger than reconnect_max");
    expect_error("[pbx a]\nusername = u\nhost = x\nhost = y\nsecret = p\n",
                 "4: [pbx a] key 'host' already set at line 3");
    expect_error("[pbx a]\nusername =\nsecret = p\n", "2: [pbx a] key 'username' has an empty "
                                                      "value");
    expect_error("[pbx a]\nsecret = p\n", "1: [pbx a] missing key 'username'");
    expect_error("[pbx a]\nusername = u\n[http]\n",
                 "1: [pbx a] missing key 'secret' (or secret_file, secret_env)");
    expect_error("[pbx a]\nusername = u\nsecret = p\nsecret_env = X\n",
                 "4: [pbx a] secret_env: only one of secret, secret_file, secret_env may be set "
                 "(secret at line 3)");
    expect_error("[pbx a]\nusername = u\nsecret_env = SB_TEST_SURELY_UNSET_VAR\n",
                 "3: [pbx a] secret_env: environment variable 'SB_TEST_SURELY_UNSET_VAR' is not "
                 "set or empty");

    /* A line longer than inih's buffer is an error, never silently cut. */
    char longline[400];
    memset(longline, 'a', sizeof longline);
    memcpy(longline, "[http]\nx = ", 11);
    longline[sizeof longline - 2] = '\n';
    longline[sizeof longline - 1] = '\0';
    expect_error(longline, "2: line too long (at most 196 bytes)");
    /* A NUL byte is refused with its line. */
    {
        char err[256];
        sb_config *c = NULL;
        const char t[] = "[http]\nx = a\0b\n";
        assert_int_equal(sb_config_parse(t, sizeof t - 1, "n.conf", &c, err, sizeof err),
                         SB_ECONFIG);
        assert_null(c);
        assert_string_equal(err, "n.conf:2: NUL byte in the file");
    }
    /* The first error wins, even when a syntax error comes later. */
    expect_error("[pbx a]\nport = 0\nbroken line\n",
                 "2: [pbx a] port: '0' is not a port number (1-65535)");
}

static void test_config_missing_file(void **state)
{
    (void)state;
    char err[512];
    sb_config *cfg = (sb_config *)1;
    assert_int_equal(sb_config_load("/nonexistent/sb.conf", &cfg, err, sizeof err), SB_EIO);
    assert_null(cfg);
    assert_string_equal(err, "/nonexistent/sb.conf: cannot open: No such file or directory");
}

static void test_config_secret_from_file_and_env(void **state)
{
    (void)state;
    char err[512], path[512];
    sb_config *cfg = NULL;
    write_file("ami.secret", "file-secret-123\nsecond line ignored\n", path, sizeof path);
    setenv("SB_TEST_AMI_SECRET", "env-secret-456", 1);
    /* secret_file relative to the config file's directory. */
    assert_int_equal(load_text("s.conf",
                               "[pbx f]\nusername = u\nsecret_file = ami.secret\n"
                               "[pbx e]\nusername = u\nsecret_env = SB_TEST_AMI_SECRET\n",
                               &cfg, err, sizeof err),
                     0);
    const sb_config_pbx *f = sb_config_find_pbx(cfg, "f");
    const sb_config_pbx *e = sb_config_find_pbx(cfg, "e");
    assert_string_equal(f->secret, "file-secret-123");
    assert_int_equal(f->secret_source, SB_SECRET_FILE);
    assert_string_equal(f->secret_ref, "ami.secret");
    assert_string_equal(e->secret, "env-secret-456");
    assert_int_equal(e->secret_source, SB_SECRET_ENV);

    /* The summary masks every secret. */
    sb_buf out;
    sb_buf_init(&out, 1 << 16);
    assert_int_equal(sb_config_describe(cfg, &out), 0);
    assert_non_null(strstr(out.data, "[pbx f] 127.0.0.1:5038 username=u secret=******** (file "
                                     "ami.secret)"));
    assert_non_null(strstr(out.data, "(env SB_TEST_AMI_SECRET)"));
    assert_null(strstr(out.data, "file-secret-123"));
    assert_null(strstr(out.data, "env-secret-456"));
    sb_buf_free(&out);
    sb_config_free(cfg);

    /* Unreadable and empty secret files; the message never quotes the contents. */
    char want[1024];
    expect_error("[pbx a]\nusername = u\nsecret_file = /nonexistent/x\n",
                 "3: [pbx a] secret_file: cannot read '/nonexistent/x': No such file or directory");
    write_file("empty.secret", "\n", path, sizeof path);
    snprintf(want, sizeof want, "3: [pbx a] secret_file: '%s/empty.secret' is empty", tmpdir);
    expect_error("[pbx a]\nusername = u\nsecret_file = empty.secret\n", want);

    /* Inline secrets never appear in an error message either. */
    sb_config *bad = NULL;
    assert_int_equal(load_text("b.conf", "[pbx a]\nsecret = TopSecretValue\nport = nope\n", &bad,
                               err, sizeof err),
                     SB_ECONFIG);
    assert_null(strstr(err, "TopSecretValue"));
    unsetenv("SB_TEST_AMI_SECRET");
}

static void test_config_repeated_filters(void **state)
{
    (void)state;
    char err[512];
    sb_config *cfg = NULL;
    assert_int_equal(load_text("f.conf",
                               "[pbx a]\nusername = u\nsecret = p\n"
                               "filter = Event: Newchannel\n"
                               "filter = Event: (Hangup|Newstate), Channel: PJSIP/[0-9]{3,4}\n"
                               "filter = ,\n"
                               "filter = !Event: Newexten\n",
                               &cfg, err, sizeof err),
                     0);
    const sb_config_pbx *p = &cfg->pbx[0];
    assert_int_equal(p->nfilters, 4);
    assert_string_equal(p->filters[0], "Event: Newchannel");
    assert_string_equal(p->filters[1], "Event: (Hangup|Newstate)");
    assert_string_equal(p->filters[2], "Channel: PJSIP/[0-9]{3,4}");
    assert_string_equal(p->filters[3], "!Event: Newexten");
    sb_config_free(cfg);
}

static void test_config_pbx_equal_and_add(void **state)
{
    (void)state;
    char err[512];
    sb_config *a = NULL, *b = NULL;
    const char *t1 = "[pbx a]\nusername = u\nsecret = p\nfilter = Event: X\n";
    const char *t2 = "[pbx a]\nusername = u\nsecret = q\nfilter = Event: X\n";
    assert_int_equal(sb_config_parse(t1, strlen(t1), "t1", &a, err, sizeof err), 0);
    assert_int_equal(sb_config_parse(t2, strlen(t2), "t2", &b, err, sizeof err), 0);
    assert_true(sb_config_pbx_equal(&a->pbx[0], &a->pbx[0]));
    assert_false(sb_config_pbx_equal(&a->pbx[0], &b->pbx[0])); /* the secret changed */

    sb_config_pbx d;
    sb_config_pbx_defaults(&d);
    d.name = (char *)"demo";
    d.username = (char *)"admin";
    d.secret = (char *)"admin-secret";
    assert_int_equal(sb_config_add_pbx(a, &d), 0);
    assert_int_equal(sb_config_add_pbx(a, &d), SB_EEXIST);
    const sb_config_pbx *got = sb_config_find_pbx(a, "demo");
    assert_non_null(got);
    assert_true(got->secret != d.secret);
    assert_true(sb_config_pbx_equal(got, &d));
    sb_config_free(a);
    sb_config_free(b);
}

static void test_config_durations(void **state)
{
    (void)state;
    uint32_t ms = 0;
    assert_int_equal(sb_config_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(sb_config_parse_duration("7", &ms), 0);
    assert_int_equal(ms, 7000);
    assert_int_equal(sb_config_parse_duration("2m", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(sb_config_parse_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(sb_config_parse_duration("-1", &ms), SB_EINVAL);
    assert_int_equal(sb_config_parse_duration("1.5s", &ms), SB_EINVAL);
    assert_int_equal(sb_config_parse_duration("5000h", &ms), SB_EINVAL); /* overflows 32 bits */
    assert_int_equal(sb_config_parse_duration("", &ms), SB_EINVAL);
}

/* The shipped example is valid and says what the defaults are. */
static void test_config_example_file_is_valid(void **state)
{
    (void)state;
    char err[512];
    sb_config *cfg = NULL;
    setenv("SWITCHBOARD_AMI_SECRET", "example-secret", 1);
    assert_int_equal(
        sb_config_load(SB_SOURCE_DIR "/switchboard.conf.example", &cfg, err, sizeof err), 0);
    assert_int_equal(cfg->npbx, 1);
    const sb_config_pbx *p = sb_config_find_pbx(cfg, "main");
    sb_config_pbx d;
    sb_config_pbx_defaults(&d);
    assert_int_equal(p->port, d.port);
    assert_int_equal(p->ping_interval_ms, d.ping_interval_ms);
    assert_int_equal(p->stall_timeout_ms, d.stall_timeout_ms);
    assert_int_equal(p->reconnect_min_ms, d.reconnect_min_ms);
    assert_int_equal(p->reconnect_max_ms, d.reconnect_max_ms);
    assert_int_equal(p->action_timeout_ms, d.action_timeout_ms);
    assert_int_equal(p->connect_timeout_ms, d.connect_timeout_ms);
    assert_true(p->md5);
    assert_string_equal(p->secret, "example-secret");
    assert_int_equal(p->nfilters, 1);
    sb_config_free(cfg);
    unsetenv("SWITCHBOARD_AMI_SECRET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_good_file_every_key),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_bad_lines_exact_messages),
        cmocka_unit_test(test_config_missing_file),
        cmocka_unit_test(test_config_secret_from_file_and_env),
        cmocka_unit_test(test_config_repeated_filters),
        cmocka_unit_test(test_config_pbx_equal_and_add),
        cmocka_unit_test(test_config_durations),
        cmocka_unit_test(test_config_example_file_is_valid),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
