/* test_cli_parse.c: the command line's option parser: long, short and --opt=value forms,
 * positional arguments anywhere, "--", and one-line errors for unknown options, missing values
 * and values given to flags. */
#include "testutil.h"

#include "app/cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { O_CONFIG = 1, O_JSON, O_PBX };

static const cli_opt opts[] = {
    {"config", 'c', true, O_CONFIG},
    {"json", 0, false, O_JSON},
    {"pbx", 0, true, O_PBX},
    {NULL, 0, false, 0},
};

/* Runs the parser over argv and renders what it returned as "id=value;..." */
static int parse(int argc, char **argv, char *out, size_t size)
{
    cli_parser p;
    const char *arg;
    int r, n = 0;
    out[0] = '\0';
    cli_init(&p, argc, argv, 1, "sb test", opts);
    while ((r = cli_next(&p, &arg)) != CLI_END) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%d=%s;", r, arg ? arg : "-");
        n++;
        if (r == CLI_ERROR)
            break;
    }
    return n;
}

static void test_cli_parses_every_form(void **state)
{
    (void)state;
    char out[256];
    char *argv[] = {"cmd",        "Ping",     "-c",     "a.conf", "--json", "Key=V",
                    "--pbx=main", "--config", "b.conf", "--",     "--json", "-"};
    assert_int_equal(parse(12, argv, out, sizeof out), 8);
    assert_string_equal(out, "-1=Ping;1=a.conf;2=-;-1=Key=V;3=main;1=b.conf;-1=--json;-1=-;");
}

/* Captures what cli_next prints on stderr for argv. */
static void expect_error(int argc, char **argv, const char *line)
{
    char out[256], err[512] = "";
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    int n = parse(argc, argv, out, sizeof out);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t got = fread(err, 1, sizeof err - 1, tmp);
    err[got] = '\0';
    fclose(tmp);
    assert_int_equal(n, 1);
    assert_string_equal(out, "-2=-;");
    assert_string_equal(err, line);
}

static void test_cli_errors_are_one_line(void **state)
{
    (void)state;
    char *a1[] = {"cmd", "--bogus"};
    expect_error(2, a1, "sb test: unknown option '--bogus' (try 'sb test --help')\n");
    char *a2[] = {"cmd", "-x"};
    expect_error(2, a2, "sb test: unknown option '-x' (try 'sb test --help')\n");
    char *a3[] = {"cmd", "--pbx"};
    expect_error(2, a3, "sb test: option '--pbx' needs a value (try 'sb test --help')\n");
    char *a4[] = {"cmd", "--json=yes"};
    expect_error(2, a4, "sb test: option '--json' takes no value (try 'sb test --help')\n");
    char *a5[] = {"cmd", "--jsonx"}; /* a prefix is not a match */
    expect_error(2, a5, "sb test: unknown option '--jsonx' (try 'sb test --help')\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_parses_every_form),
        cmocka_unit_test(test_cli_errors_are_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
