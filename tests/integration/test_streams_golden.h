/* test_streams_golden.h: normalizing the events a stream client received and comparing them with
 * tests/golden/streams-*.jsonl. Normalized means: "id" and every time field removed, Uniqueids,
 * Linkedids and bridge ids replaced by U1, U2, ... in order of first appearance, and the
 * per-instance channel suffix (-0000001a) replaced by -N: what is left is what must not change.
 *
 * Regenerate after an intended change: SB_UPDATE_GOLDEN=1 ctest -R test_streams, then review
 * `git diff tests/golden/streams-*` (docs/streams.md).
 */
#ifndef TEST_STREAMS_GOLDEN_H
#define TEST_STREAMS_GOLDEN_H

#include "test_streams_harness.h"

#include <ctype.h>
#include <regex.h>

typedef struct norm {
    char *orig[256];
    size_t n;
} norm;

static const char *norm_id(norm *nm, const char *v, char *buf, size_t size)
{
    size_t i;
    for (i = 0; i < nm->n; i++)
        if (strcmp(nm->orig[i], v) == 0)
            break;
    if (i == nm->n && nm->n < 256)
        nm->orig[nm->n++] = strdup(v);
    snprintf(buf, size, "U%zu", i + 1);
    return buf;
}

/* "Local/502@agents-0000000f;1" -> "Local/502@agents-N;1" (owned). */
static char *norm_channel(const char *s)
{
    regex_t re;
    regmatch_t mt;
    sb_buf b;
    sb_buf_init(&b, 1 << 16);
    assert_int_equal(regcomp(&re, "-[0-9a-f]{8}", REG_EXTENDED), 0);
    while (regexec(&re, s, 1, &mt, 0) == 0) {
        sb_buf_append(&b, s, (size_t)mt.rm_so);
        sb_buf_puts(&b, "-N");
        s += mt.rm_eo;
    }
    sb_buf_puts(&b, s);
    regfree(&re);
    char *out = sb_buf_steal(&b);
    return out ? out : strdup("");
}

static bool is_time_key(const char *k)
{
    static const char *const keys[] = {
        "id",       "time",     "start",     "answer",          "end",
        "duration", "lastCall", "waitSince", "billableSeconds", "since"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static bool is_uid_key(const char *k)
{
    return strcmp(k, "callId") == 0 || strcmp(k, "uniqueId") == 0 || strcmp(k, "linkedId") == 0 ||
           strcmp(k, "bridgeId") == 0;
}

static void norm_json(norm *nm, json_t *j)
{
    const char *k;
    json_t *v;
    void *tmp;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach_safe(j, tmp, k, v)
        {
            char buf[32];
            if (is_time_key(k) && !json_is_null(v) && !json_is_object(v) && !json_is_array(v)) {
                json_object_set_new(j, k, json_string("T"));
            } else if (is_uid_key(k) && json_is_string(v)) {
                json_object_set_new(
                    j, k, json_string(norm_id(nm, json_string_value(v), buf, sizeof buf)));
            } else if (json_is_string(v)) {
                char *c = norm_channel(json_string_value(v));
                json_object_set_new(j, k, json_string(c));
                free(c);
            } else {
                norm_json(nm, v);
            }
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            if (json_is_string(v)) {
                char *c = norm_channel(json_string_value(v));
                json_array_set_new(j, i, json_string(c));
                free(c);
            } else {
                norm_json(nm, v);
            }
        }
    }
}

/* The normalized events of c from index from (owned text, one JSON per line). */
static char *norm_events(const hc *c, size_t from)
{
    norm nm = {0};
    sb_buf out;
    sb_buf_init(&out, 16 << 20);
    for (size_t i = from; i < c->nev; i++) {
        json_t *j = json_loads(c->ev[i].data, 0, NULL);
        assert_non_null(j);
        norm_json(&nm, j);
        char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        sb_buf_puts(&out, line);
        sb_buf_puts(&out, "\n");
        free(line);
        json_decref(j);
    }
    for (size_t i = 0; i < nm.n; i++)
        free(nm.orig[i]);
    char *s = sb_buf_steal(&out);
    return s ? s : strdup("");
}

static void golden_check(const char *name, const char *got)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/%s.jsonl", SB_SOURCE_DIR, name);
    if (getenv("SB_UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(got, f);
        fclose(f);
        return;
    }
    char *want = tu_read_file(path, NULL);
    if (!want)
        fail_msg("missing %s (SB_UPDATE_GOLDEN=1 creates it)", path);
    if (strcmp(want, got) != 0) {
        size_t line = 1;
        const char *w = want, *g = got;
        while (*w && *g && *w == *g) {
            if (*w == '\n')
                line++;
            w++, g++;
        }
        fprintf(stderr, "%s differs at line %zu\n--- got:\n%s", name, line, got);
        free(want);
        fail_msg("golden mismatch for %s (SB_UPDATE_GOLDEN=1 regenerates; review the diff)", name);
    }
    free(want);
}

#endif
