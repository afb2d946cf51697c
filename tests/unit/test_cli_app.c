/* test_cli_app.c: the daemon's lifecycle runner (src/app/app.c) over a table of recording
 * subsystems: init/start in table order, stop/free in reverse, SIGHUP reloads through every
 * subsystem's reload hook with the new configuration, a bad file on reload keeps the old one,
 * SIGTERM stops cleanly with exit code 0, and a failed start unwinds only what started. */
#include "testutil.h"

#include "app/app.h"
#include "core/error.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char trace[1024];
static char conf_path[256];
static int fail_start_of_b;
static int reload_saw_warn;
static int driver_step;
static uv_timer_t driver_timer;

static void rec(const char *what)
{
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "%s ", what);
}

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int a_init(sb_app *app)
{
    (void)app;
    rec("init:a");
    return 0;
}
static int a_start(sb_app *app)
{
    (void)app;
    rec("start:a");
    return 0;
}
static void a_stop(sb_app *app)
{
    (void)app;
    rec("stop:a");
}
static void a_free(sb_app *app)
{
    (void)app;
    rec("free:a");
}
static int a_reload(sb_app *app, sb_config *next)
{
    /* The hook sees the new file while app->cfg is still the old one. */
    rec("reload:a");
    if (next->log_level == SB_LOG_WARN && app->cfg->log_level == SB_LOG_INFO)
        reload_saw_warn++;
    return 0;
}
static int b_init(sb_app *app)
{
    (void)app;
    rec("init:b");
    return 0;
}
static int b_start(sb_app *app)
{
    (void)app;
    rec("start:b");
    return fail_start_of_b ? SB_EIO : 0;
}
static void b_stop(sb_app *app)
{
    (void)app;
    rec("stop:b");
}
static void b_free(sb_app *app)
{
    (void)app;
    rec("free:b");
}
static int b_reload(sb_app *app, sb_config *next)
{
    (void)app;
    (void)next;
    rec("reload:b");
    return 0;
}

/* The driver plays the operator: a bad reload, a good one, then SIGTERM. */
static void on_driver(uv_timer_t *t)
{
    sb_app *app = t->data;
    switch (driver_step++) {
    case 0:
        write_conf("[general]\nlog_level = loud\n");
        raise(SIGHUP);
        break;
    case 1:
        assert_int_equal(app->reloads, 0); /* refused */
        assert_int_equal(app->cfg->log_level, SB_LOG_INFO);
        write_conf("[general]\nlog_level = warn\n");
        rec("hup");
        raise(SIGHUP);
        break;
    case 2:
        assert_int_equal(app->reloads, 1);
        assert_int_equal(app->cfg->log_level, SB_LOG_WARN);
        rec("term");
        raise(SIGTERM);
        break;
    default:
        break;
    }
}
static int driver_start(sb_app *app)
{
    uv_timer_init(app->loop, &driver_timer);
    driver_timer.data = app;
    uv_timer_start(&driver_timer, on_driver, 20, 50);
    return 0;
}
static void driver_stop(sb_app *app)
{
    (void)app;
    rec("stop:driver");
    uv_close((uv_handle_t *)&driver_timer, NULL);
}

static const sb_subsystem table[] = {
    {"config", app_config_init, NULL, NULL, app_config_free, NULL},
    {"log", app_log_init, NULL, NULL, NULL, app_log_reload},
    {"a", a_init, a_start, a_stop, a_free, a_reload},
    {"b", b_init, b_start, b_stop, b_free, b_reload},
    {"driver", NULL, driver_start, driver_stop, NULL, NULL},
    {"signals", NULL, app_signals_start, app_signals_stop, NULL, NULL},
};

static int run_table(void)
{
    sb_app app;
    uv_loop_t loop;
    memset(&app, 0, sizeof app);
    assert_int_equal(uv_loop_init(&loop), 0);
    app.loop = &loop;
    app.opt.config_path = conf_path;
    return sb_app_run(&app, table, sizeof table / sizeof table[0]);
}

static void test_app_order_reload_and_clean_stop(void **state)
{
    (void)state;
    snprintf(conf_path, sizeof conf_path, "/tmp/sb_test_app_%d.conf", (int)getpid());
    write_conf("[general]\nlog_level = info\n");
    trace[0] = '\0';
    fail_start_of_b = 0;
    driver_step = 0;
    reload_saw_warn = 0;
    assert_int_equal(run_table(), 0);
    assert_string_equal(trace, "init:a init:b start:a start:b hup reload:a reload:b term "
                               "stop:driver stop:b stop:a free:b free:a ");
    assert_int_equal(reload_saw_warn, 1);
    assert_int_equal(driver_step, 3);
    unlink(conf_path);
    sb_log_setup(SB_LOG_INFO, 0);
}

static void test_app_failed_start_unwinds(void **state)
{
    (void)state;
    snprintf(conf_path, sizeof conf_path, "/tmp/sb_test_app_%d.conf", (int)getpid());
    write_conf("[general]\n");
    trace[0] = '\0';
    fail_start_of_b = 1;
    driver_step = 0;
    assert_int_equal(run_table(), 1);
    /* b's start failed: only a is stopped; everything that got through init is freed. */
    assert_string_equal(trace, "init:a init:b start:a start:b stop:a free:b free:a ");
    assert_int_equal(driver_step, 0);
    unlink(conf_path);
}

static void test_app_bad_config_stops_before_anything(void **state)
{
    (void)state;
    snprintf(conf_path, sizeof conf_path, "/tmp/sb_test_app_%d.conf", (int)getpid());
    write_conf("[pbx x]\nport = 1\n");
    trace[0] = '\0';
    fail_start_of_b = 0;
    assert_int_equal(run_table(), 1);
    assert_string_equal(trace, "");
    unlink(conf_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_order_reload_and_clean_stop),
        cmocka_unit_test(test_app_failed_start_unwinds),
        cmocka_unit_test(test_app_bad_config_stops_before_anything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
