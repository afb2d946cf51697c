/* model_feed.h: helpers shared by the model tests (header-only: each test is its own program).
 * Feeds a fixture transcript through the real AMI codec into a model with a fake clock, and
 * records the normalized events it emits. */
#ifndef SB_TEST_MODEL_FEED_H
#define SB_TEST_MODEL_FEED_H

#include "testutil.h"

#include "ami/codec.h"
#include "bus/bus.h"
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

/* The fake clock starts at 2026-11-23T23:58:40Z and moves 10 ms per AMI packet, so times in
 * the golden files are synthetic but deterministic. */
#define FEED_T0 1795478320000LL
#define FEED_STEP 10

typedef struct feed {
    model *m;
    int64_t now;
    bus_event **evs;
    json_t **json; /* evs[i] parsed back, owned */
    size_t n, cap;
} feed;

static inline int64_t feed_clock(void *ud)
{
    return ((feed *)ud)->now;
}

static inline void feed_emit(void *ud, bus_event *ev)
{
    feed *f = ud;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->evs = realloc(f->evs, f->cap * sizeof *f->evs);
        f->json = realloc(f->json, f->cap * sizeof *f->json);
        assert_non_null(f->evs);
        assert_non_null(f->json);
    }
    f->json[f->n] = bus_event_parse(ev);
    assert_non_null(f->json[f->n]);
    f->evs[f->n++] = bus_event_ref(ev);
}

static inline void feed_init(feed *f)
{
    memset(f, 0, sizeof *f);
    f->now = FEED_T0;
    model_config cfg = {.emit = feed_emit,
                        .emit_ud = f,
                        .now_ms = feed_clock,
                        .clock_ud = f,
                        .id_seed = 0x5b5b5b5b5b5b5b5bULL};
    f->m = model_new(&cfg);
    assert_non_null(f->m);
}

static inline void feed_clear(feed *f)
{
    for (size_t i = 0; i < f->n; i++) {
        bus_event_unref(f->evs[i]);
        json_decref(f->json[i]);
    }
    f->n = 0;
}

static inline void feed_free(feed *f)
{
    feed_clear(f);
    free(f->evs);
    free(f->json);
    model_free(f->m);
}

/* Feeds every packet of a text (a fixture) into the model; returns the number of events. */
static inline size_t feed_text(feed *f, const char *pbx, const char *data, size_t len, bool banner)
{
    ami_codec c;
    ami_packet pkt;
    size_t off = 0, nev = 0;
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, banner), 0);
    while (off < len) {
        size_t took = ami_codec_feed(&c, data + off, len - off);
        off += took;
        int rc;
        while ((rc = ami_codec_next(&c, &pkt)) != AMI_NEED_MORE) {
            if (rc != AMI_PACKET)
                continue;
            f->now += FEED_STEP;
            if (pkt.kind == AMI_PACKET_EVENT)
                nev++;
            assert_int_equal(model_handle_event(f->m, pbx, &pkt), 0);
        }
    }
    ami_codec_free(&c);
    return nev;
}

static inline void feed_fixture(feed *f, const char *pbx, const char *name)
{
    size_t len;
    char *data = tu_read_file(tu_fixture(name), &len);
    assert_non_null(data);
    feed_text(f, pbx, data, len, true);
    free(data);
}

/* Index of the first recorded event of type at or after from, or -1. */
static inline long feed_find(const feed *f, const char *type, size_t from)
{
    for (size_t i = from; i < f->n; i++)
        if (strcmp(bus_event_type(f->evs[i]), type) == 0)
            return (long)i;
    return -1;
}

static inline size_t feed_count(const feed *f, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(bus_event_type(f->evs[i]), type) == 0)
            n++;
    return n;
}

static inline const json_t *feed_details(const feed *f, size_t i)
{
    return json_object_get(f->json[i], "details");
}

static inline const char *feed_str(const feed *f, size_t i, const char *key)
{
    return json_string_value(json_object_get(feed_details(f, i), key));
}

#endif
