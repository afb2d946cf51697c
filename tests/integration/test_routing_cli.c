/* test_routing_cli.c: `switchboard route import|export|test|hash-pin` as an administrator runs
 * them: a file goes into a fresh store, a bad file is refused with FILE:LINE and stores nothing,
 * export gives back the same routes, and `route test` explains the decision. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* Runs a shell command line, returns its exit status and its stdout+stderr (owned). */
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...)
{
    char cmd[2048], line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof cmd, "cd %s && ", dir);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t len = 0, cap = 1;
    char *buf = calloc(1, 1);
    while (fgets(line, sizeof line, p)) {
        size_t l = strlen(line);
        buf = realloc(buf, cap + l);
        memcpy(buf + len, line, l + 1);
        len += l;
        cap += l;
    }
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#define SB SB_BINARY_DIR "/switchboard"

static void test_routing_cli_import_test_export(void **state)
{
    (void)state;
    char *out;
    snprintf(dir, sizeof dir, "/tmp/sb-route-cli-XXXXXX");
    assert_non_null(mkdtemp(dir));
    write_file("routes.conf", "[route route]\ntz = Europe/Madrid\n"
                              "[rule sip]\nmatch = _3X\naction = dial PJSIP/${EXTEN} timeout=20\n"
                              "[rule trunk]\nmatch = _XXXXXXXX\ncaller = _3XX\n"
                              "action = dial PJSIP/${EXTEN:1}@carrier\n"
                              "[rule shop]\nmatch = _5XX\nhours = mon-fri 09:00-18:00\n"
                              "closed = playback closed\naction = queue sales timeout=20\n");
    write_file("bad.conf", "[route route]\n[rule x]\nmatch = _3X\naction = dial PJSIP/${EXTEN\n");

    assert_int_equal(run(&out, SB " route import routes.conf --store s.db"), 0);
    assert_non_null(strstr(out, "as version 1"));
    free(out);
    assert_int_equal(run(&out, SB " route import bad.conf --store s.db"), 2);
    assert_non_null(strstr(out, "bad.conf:4: [rule x] action: bad template"));
    free(out);

    assert_int_equal(run(&out, SB " route test --store s.db --from 300 --to 91234567 --at "
                                  "2026-11-25T10:00"),
                     0);
    assert_non_null(strstr(out, "rule sip"));
    assert_non_null(strstr(out, "does not match"));
    assert_non_null(strstr(out, "decision: rule trunk"));
    assert_non_null(strstr(out, "EXEC Dial PJSIP/1234567@carrier"));
    free(out);
    /* A caller outside `caller = _3XX`: the rule is passed over and nothing else matches. */
    assert_int_equal(run(&out, SB " route test --store s.db --from 555 --to 91234567"), 1);
    assert_non_null(strstr(out, "caller does not match"));
    assert_non_null(strstr(out, "no rule matches"));
    free(out);
    /* 20:00 in Madrid is closed; 10:00Z is 11:00 there, open. */
    assert_int_equal(run(&out, SB " route test --store s.db --from 300 --to 500 --at "
                                  "2026-11-25T20:00"),
                     0);
    assert_non_null(strstr(out, "CLOSED now"));
    assert_non_null(strstr(out, "EXEC Playback closed, then HANGUP"));
    free(out);
    assert_int_equal(run(&out, SB " route test --store s.db --from 300 --to 500 --at "
                                  "2026-11-25T10:00Z"),
                     0);
    assert_null(strstr(out, "CLOSED"));
    assert_non_null(strstr(out, "EXEC Queue sales,,,,20"));
    free(out);

    assert_int_equal(run(&out, SB " route export out.conf --store s.db && " SB
                                  " route import out.conf --store s.db"),
                     0);
    assert_non_null(strstr(out, "as version 2"));
    free(out);
    assert_int_equal(run(&out, SB " route export - --store s.db"), 0);
    assert_non_null(strstr(out, "[rule shop]\nmatch = _5XX\n"));
    free(out);

    assert_int_equal(run(&out, SB " route hash-pin 4321"), 0);
    assert_non_null(strstr(out, "$argon2id$"));
    free(out);
    assert_int_equal(run(&out, SB " route hash-pin 12ab"), 2);
    free(out);
    assert_int_equal(run(&out, "rm -rf %s", dir), 0);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_cli_import_test_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
