/* test_s3_sink.c: the S3 sink against a real S3-compatible server (the npm package s3rver,
 * started on 127.0.0.1 port 0 by tests/integration/s3rver.js). 500 events go out in deliveries
 * of 100 with objects capped at 4 KiB; the test then lists the bucket (ListObjectsV2, SigV4),
 * reads every object back and checks that every event id is there exactly once and in order,
 * that each finished call has its CDR object, and that delivering a batch again overwrites its
 * object instead of adding one. s3rver checks the access key but not SigV4 signatures (its V4
 * support is incomplete); tests/unit/test_sink_s3.c verifies the signatures independently.
 * Skipped when node or node_modules/s3rver is missing (run `npm ci` at the repo root). */
#include "testutil.h"

#include "core/error.h"
#include "sinks/s3.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NEV 500
#define BATCH 100
#define NCALLS 25

static uv_loop_t loop;
static uv_timer_t guard;
static httpc *http;
static pid_t s3pid = -1;
static int s3stdin = -1;
static int port;
static char dir[64];

static void guard_cb(uv_timer_t *t)
{
    (void)t;
}

/* Starts node tests/integration/s3rver.js DIR events; reads "PORT n". */
static int start_s3rver(void)
{
    int in[2], out[2];
    char script[512], modpath[512], line[64];
    FILE *f;
    snprintf(script, sizeof script, "%s/tests/integration/s3rver.js", SB_SOURCE_DIR);
    snprintf(modpath, sizeof modpath, "%s/node_modules/s3rver/package.json", SB_SOURCE_DIR);
    if (access(modpath, R_OK) != 0 || system("command -v node >/dev/null 2>&1") != 0)
        return 1;
    snprintf(dir, sizeof dir, "/tmp/sb_s3rver_XXXXXX");
    if (!mkdtemp(dir) || pipe(in) != 0 || pipe(out) != 0)
        return -1;
    s3pid = fork();
    if (s3pid < 0)
        return -1;
    if (s3pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execlp("node", "node", script, dir, "events", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s3stdin = in[1];
    f = fdopen(out[0], "r");
    if (!f || !fgets(line, sizeof line, f) || sscanf(line, "PORT %d", &port) != 1) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static void stop_s3rver(void)
{
    char cmd[128];
    if (s3pid > 0) {
        close(s3stdin);
        kill(s3pid, SIGTERM);
        waitpid(s3pid, NULL, 0);
        s3pid = -1;
    }
    if (dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
}

typedef struct fake_delivery {
    int calls;
    size_t n;
    int ok;
    char why[256];
} fake_delivery;

static void on_done(outbox_delivery *d, const outbox_result *results)
{
    fake_delivery *f = (fake_delivery *)d;
    f->calls++;
    for (size_t i = 0; i < f->n; i++) {
        if (results[i].verdict == OUTBOX_OK)
            f->ok++;
        else if (results[i].error)
            snprintf(f->why, sizeof f->why, "%s", results[i].error);
    }
}

static bool run_until(const int *count, int want, uint64_t limit_ms)
{
    uint64_t end = uv_hrtime() + limit_ms * 1000000ull;
    while (*count < want && uv_hrtime() < end)
        uv_run(&loop, UV_RUN_ONCE);
    return *count >= want;
}

/* A signed GET; returns the owned body (NULL on failure) and the status. */
typedef struct get_result {
    int calls;
    long status;
    char *body;
} get_result;

static void on_get(const httpc_resp *r, void *ud)
{
    get_result *g = ud;
    g->calls++;
    g->status = r->status;
    g->body = sb_slice_dup(r->body);
}

static char *s3_get(const char *path, long *status)
{
    char url[1024];
    get_result g = {0};
    httpc_aws a = {
        .region = "us-east-1", .service = "s3", .access_key = "S3RVER", .secret_key = "S3RVER"};
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    assert_int_equal(
        httpc_request(http, &(httpc_req){.url = url, .aws = &a, .max_body = 4 << 20}, on_get, &g),
        0);
    assert_true(run_until(&g.calls, 1, 10000));
    *status = g.status;
    return g.body;
}

/* Collects <Key>...</Key> values of a ListObjectsV2 answer. */
static size_t list_keys(const char *prefix, char keys[][160], size_t max)
{
    char path[256];
    long status;
    size_t n = 0;
    char *xml, *p;
    snprintf(path, sizeof path, "/events?list-type=2&max-keys=1000&prefix=%s", prefix);
    xml = s3_get(path, &status);
    assert_int_equal(status, 200);
    for (p = xml; (p = strstr(p, "<Key>")) && n < max; n++) {
        char *e = strstr(p, "</Key>");
        assert_non_null(e);
        snprintf(keys[n], 160, "%.*s", (int)(e - p - 5), p + 5);
        p = e;
    }
    assert_null(strstr(xml, "<IsTruncated>true"));
    free(xml);
    return n;
}

static char payloads[NEV][160], ids[NEV][32], keys_of_call[NCALLS][32];
static outbox_event evs[NEV];
static const outbox_event *ptrs[NEV];
static char listed[2 * NEV][160];

static void test_s3rver_round_trip(void **state)
{
    sink_s3 *k = NULL;
    size_t nobj, ncdr, seen = 0, nended = 0;
    long status;
    (void)state;
    int rc = start_s3rver();
    if (rc == 1)
        skip();
    assert_int_equal(rc, 0);

    for (int i = 0; i < NCALLS; i++)
        snprintf(keys_of_call[i], sizeof keys_of_call[i], "1764000000.%d", i);
    for (int i = 0; i < NEV; i++) {
        int call = i % NCALLS;
        const char *type = i >= NEV - NCALLS ? "call.ended" : "call.progress";
        snprintf(ids[i], sizeof ids[i], "ev-%04d", i);
        snprintf(payloads[i], sizeof payloads[i],
                 "{\"id\":\"%s\",\"seq\":%d,\"type\":\"%s\",\"linkedid\":\"%s\"}", ids[i], i + 1,
                 type, keys_of_call[call]);
        evs[i] = (outbox_event){.seq = i + 1,
                                .id = ids[i],
                                .type = type,
                                .pbx = "pbx1",
                                .call_key = keys_of_call[call],
                                .time_ms = 1764000000000LL + i * 10,
                                .payload = payloads[i],
                                .payload_len = strlen(payloads[i]),
                                .attempt = 1};
        ptrs[i] = &evs[i];
        nended += strcmp(type, "call.ended") == 0;
    }
    {
        char ep[64];
        snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
        assert_int_equal(sink_s3_new(&loop, http,
                                     &(sink_s3_config){.bucket = "events",
                                                       .endpoint = ep,
                                                       .prefix = "sb/",
                                                       .region = "us-east-1",
                                                       .access_key = "S3RVER",
                                                       .secret_key = "S3RVER",
                                                       .max_object_bytes = 4096,
                                                       .batch_events = BATCH,
                                                       .flush_interval_ms = 50},
                                     &k),
                         0);
    }
    for (int b = 0; b < NEV / BATCH; b++) {
        fake_delivery f = {.n = BATCH};
        assert_int_equal(
            sink_s3_ops.deliver(k, &ptrs[b * BATCH], BATCH, on_done, (outbox_delivery *)&f), 0);
        assert_true(run_until(&f.calls, 1, 10000));
        if (f.ok != BATCH)
            fail_msg("batch %d: %d ok: %s", b, f.ok, f.why);
    }

    nobj = list_keys("sb/events/", listed, 2 * NEV);
    assert_true(nobj >= NEV * 70 / 4096); /* split by size: many objects */
    for (size_t o = 0; o < nobj; o++) {
        char path[256], want[48];
        char *body, *p;
        long long first;
        assert_memory_equal(listed[o], "sb/events/2025/11/24/16/", 24);
        snprintf(path, sizeof path, "/events/%s", listed[o]);
        body = s3_get(path, &status);
        assert_int_equal(status, 200);
        assert_true(strlen(body) <= 4096);
        first = atoll(strrchr(listed[o], '/') + 1);
        /* keys list in seq order, lines in seq order, no gap, no repeat */
        assert_int_equal(first, (long long)seen + 1);
        for (p = body; *p; p = strchr(p, '\n') + 1) {
            snprintf(want, sizeof want, "{\"id\":\"%s\"", ids[seen]);
            assert_memory_equal(p, want, strlen(want));
            seen++;
        }
        free(body);
    }
    assert_int_equal(seen, NEV);

    ncdr = list_keys("sb/cdr/", listed, 2 * NEV);
    assert_int_equal(ncdr, nended);
    {
        char path[256];
        char *body;
        snprintf(path, sizeof path, "/events/sb/cdr/2025/11/24/%s.json", keys_of_call[3]);
        body = s3_get(path, &status);
        assert_int_equal(status, 200);
        assert_non_null(strstr(body, "\"type\":\"call.ended\""));
        assert_non_null(strstr(body, keys_of_call[3]));
        free(body);
    }

    /* a batch delivered again (its answer was lost) lands on the same keys */
    {
        fake_delivery f = {.n = BATCH};
        usleep(60 * 1000);
        assert_int_equal(sink_s3_ops.deliver(k, &ptrs[0], BATCH, on_done, (outbox_delivery *)&f),
                         0);
        assert_true(run_until(&f.calls, 1, 10000));
        assert_int_equal(f.ok, BATCH);
        assert_int_equal(list_keys("sb/events/", listed, 2 * NEV), nobj);
    }
    printf("s3rver: %d events in %zu NDJSON objects, %zu CDR objects\n", NEV, nobj, ncdr);
    sink_s3_ops.free(k);
}

static int setup(void **state)
{
    (void)state;
    if (uv_loop_init(&loop) != 0)
        return -1;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, guard_cb, 5, 5);
    http = httpc_new(&loop, NULL);
    return http ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    stop_s3rver();
    httpc_free(http);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_s3rver_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
