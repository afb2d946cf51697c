/* delivery.c (app): the `delivery` subsystem (delivery.h): outbox + sinks + the bus subscription,
 * the store size alert, and the test-only synthetic event source.
 *
 *   init   takes the store's lock (one daemon per store: outbox_control.h), reads [store]
 *          (outbox options) and counts the [sink NAME] sections
 *   start  opens the outbox in the store's file, creates the HTTP client, builds and adds every
 *          sink, subscribes to the bus's global stream (and starts the synthetic source if asked),
 *          and starts the poller of `switchboard outbox retry|replay` requests
 *   stop   stops the poller, unsubscribes, then outbox_close (cancels the sinks, waits for their
 *          in-flight deliveries, commits the cursors), then httpc_free from the close callback
 *   free   writes the poller's last outcomes, releases the rest and the lock (closing the outbox
 *          first if start never ran)
 *
 * With no [sink] section no outbox is opened (no event needs to be kept); the lock and the poller
 * still run, so the CLI gets "delivery is not running" instead of waiting in vain.
 */
#include "app/delivery.h"
#include "app/outbox_control.h"

#include "core/error.h"
#include "core/log.h"
#include "net/httpc.h"
#include "outbox/outbox.h"
#include "sinks/factory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_SUB "delivery"
#define DEFAULT_SIZE_WARN (1LL << 30)
#define DEFAULT_SIZE_MAX (4LL << 30)
#define MAX_SINKS 64
#define SYN_TICK_MS 10
#define SYN_DEFAULT_RATE 10000
#define SYN_MAX_BACKLOG 20000 /* the synthetic source waits while the writer has this many */
#define REFUSED_LOG_EVERY 1000

typedef struct sink_ref {
    const outbox_sink_ops *ops;
    void *impl; /* owned by the outbox once added */
} sink_ref;

typedef struct app_delivery {
    sb_app *app;
    outbox_options opt; /* strings borrow from app->cfg */
    int64_t size_warn, size_max;
    size_t nsections;
    outbox *ob;
    httpc *http;
    bus_sub *sub;
    sink_ref sinks[MAX_SINKS];
    size_t nsinks;
    bool is_closing;    /* outbox_close called, its callback not yet run */
    bool free_on_close; /* free() ran while closing: the close callback frees */
    int lock_fd;        /* the store's lock (app_store_lock), held from init to free */
    app_outbox_control *control;
    app_delivery_stats st;
    uint64_t alert_counter;
    uint64_t alert_id_hi;
    /* synthetic source */
    uv_timer_t *syn_timer;
    uint64_t syn_total, syn_next, syn_rate;
} app_delivery;

/* ---- small helpers ---- */

static void format_time(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", base, (int)(ms % 1000));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the bus subscription: events to the outbox ---- */

static void on_durable(int status, int64_t seq, void *ud)
{
    (void)seq;
    app_delivery *d = ud;
    if (status < 0 && status != SB_EEXIST) {
        d->st.failed++;
        SB_WARN(LOG_SUB, "an event could not be stored: %s", sb_strerror(status));
    }
}

static bool any_sink_wants(app_delivery *d, const store_event *se)
{
    outbox_event ev = {.seq = 0,
                       .id = se->id,
                       .type = se->type,
                       .pbx = se->pbx,
                       .call_key = se->call_key,
                       .time_ms = se->time_ms,
                       .payload = se->payload,
                       .payload_len = se->payload_len,
                       .attempt = 0};
    for (size_t i = 0; i < d->nsinks; i++)
        if (!d->sinks[i].ops->wants || d->sinks[i].ops->wants(d->sinks[i].impl, &ev))
            return true;
    return false;
}

static void on_bus_event(void *ud, const bus_entry *entry)
{
    app_delivery *d = ud;
    size_t len = 0;
    const char *text = bus_event_text(entry->ev, &len);
    json_t *obj = bus_event_parse(entry->ev);
    store_event se;
    d->st.seen++;
    if (!obj) {
        d->st.refused++;
        SB_WARN(LOG_SUB, "out of memory: event %s not stored", bus_event_type(entry->ev));
        return;
    }
    if (outbox_event_from_json(obj, text, len, &se) < 0) {
        SB_WARN(LOG_SUB, "event %s has no id, type or valid time: not stored",
                bus_event_type(entry->ev));
        d->st.refused++;
        goto out;
    }
    if (!any_sink_wants(d, &se)) {
        d->st.skipped++;
        goto out;
    }
    int rc = outbox_append(d->ob, &se, on_durable, d);
    if (rc < 0) {
        if (d->st.refused++ % REFUSED_LOG_EVERY == 0)
            SB_WARN(LOG_SUB, "outbox refused event %s (%s); %" PRIu64 " refused so far", se.id,
                    sb_strerror(rc), d->st.refused);
        goto out;
    }
    d->st.appended++;
out:
    json_decref(obj);
}

/* ---- the size watch: log + counter + alert event ---- */

static void publish_alert(app_delivery *d, const char *level, int64_t bytes, const char *message)
{
    if (!d->app->bus)
        return;
    char id[64], when[40];
    snprintf(id, sizeof id, "%016" PRIx64 "-alert-%" PRIu64, d->alert_id_hi, ++d->alert_counter);
    format_time(now_ms(), when, sizeof when);
    json_t *obj =
        json_pack("{s:s, s:s, s:s, s:n, s:{s:s, s:s, s:I, s:I, s:I, s:s}}", "id", id, "type",
                  "alert", "time", when, "pbx", "details", "alert", "store.size", "level", level,
                  "bytes", (json_int_t)bytes, "warnBytes", (json_int_t)d->size_warn, "maxBytes",
                  (json_int_t)d->size_max, "message", message);
    bus_event *ev = obj ? bus_event_new(obj) : NULL;
    if (!ev || bus_publish(d->app->bus, ev, NULL) < 0)
        SB_WARN(LOG_SUB, "out of memory: alert event not published");
    if (ev)
        bus_event_unref(ev);
}

static void on_size(int64_t bytes, bool is_over_warn, bool is_over_max, void *ud)
{
    app_delivery *d = ud;
    char msg[256];
    double mib = (double)bytes / (1024.0 * 1024.0);
    if (is_over_max) {
        d->st.alerts++;
        snprintf(msg, sizeof msg,
                 "store is %.1f MiB, over size_max (%.1f MiB): new events are refused until "
                 "retention or delivery frees space",
                 mib, (double)d->size_max / (1024.0 * 1024.0));
        SB_ERROR(LOG_SUB, "%s", msg);
        publish_alert(d, "critical", bytes, msg);
    } else if (is_over_warn) {
        d->st.alerts++;
        snprintf(msg, sizeof msg,
                 "store is %.1f MiB, over size_warn (%.1f MiB; refusing at %.1f MiB): a sink is "
                 "probably down or retention is too long",
                 mib, (double)d->size_warn / (1024.0 * 1024.0),
                 (double)d->size_max / (1024.0 * 1024.0));
        SB_WARN(LOG_SUB, "%s", msg);
        publish_alert(d, "warning", bytes, msg);
    } else {
        snprintf(msg, sizeof msg, "store is %.1f MiB, back under size_warn (%.1f MiB)", mib,
                 (double)d->size_warn / (1024.0 * 1024.0));
        SB_INFO(LOG_SUB, "%s", msg);
        publish_alert(d, "cleared", bytes, msg);
    }
}

/* ---- synthetic source (tests only) ---- */

static const char *const syn_types[APP_SYNTHETIC_PER_CALL] = {
    "call.started", "call.ringing", "call.answered", "call.bridged", "call.ended"};
static const char *const syn_states[APP_SYNTHETIC_PER_CALL] = {"started", "ringing", "answered",
                                                               "bridged", "bridged"};

/* Event j of the synthetic flow: calls run APP_SYNTHETIC_CONCURRENT at a time, their events
 * interleaved, so per-call order differs from the global order. */
static void syn_index(uint64_t j, uint64_t *call, unsigned *k)
{
    const uint64_t c = APP_SYNTHETIC_CONCURRENT, block = c * APP_SYNTHETIC_PER_CALL;
    uint64_t r = j % block;
    *call = (j / block) * c + r % c;
    *k = (unsigned)(r / c);
}

static int syn_publish(app_delivery *d, uint64_t j)
{
    uint64_t call;
    unsigned k;
    char id[64], call_id[48], from[24], when[40];
    syn_index(j, &call, &k);
    snprintf(id, sizeof id, "syn-%08" PRIu64 "-%u", call, k);
    snprintf(call_id, sizeof call_id, "syn.%" PRIu64, call);
    snprintf(from, sizeof from, "1%06" PRIu64, call % 1000000);
    format_time(now_ms(), when, sizeof when);
    json_t *obj =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:n, s:s, s:s, s:s, s:n, s:n, s:n, s:n}}",
                  "id", id, "type", syn_types[k], "time", when, "pbx", "synthetic", "details",
                  "callId", call_id, "state", syn_states[k], "from", from, "fromName", "to", "2000",
                  "direction", "internal", "start", when, "answer", "queue", "agent", "recording");
    bus_event *ev = obj ? bus_event_new(obj) : NULL;
    int rc = ev ? bus_publish(d->app->bus, ev, NULL) : SB_ENOMEM;
    if (ev)
        bus_event_unref(ev);
    return rc;
}

static void on_syn_tick(uv_timer_t *t)
{
    app_delivery *d = t->data;
    if (d->ob) {
        outbox_stats os;
        outbox_stats_get(d->ob, &os);
        if (os.backlog > SYN_MAX_BACKLOG)
            return; /* back-pressure: let the writer catch up */
    }
    uint64_t n = d->syn_rate * SYN_TICK_MS / 1000;
    if (n == 0)
        n = 1;
    for (uint64_t i = 0; i < n && d->syn_next < d->syn_total; i++) {
        if (syn_publish(d, d->syn_next) < 0)
            return; /* out of memory: try again next tick */
        d->syn_next++;
        d->st.synthetic++;
    }
    if (d->syn_next >= d->syn_total) {
        SB_WARN(LOG_SUB, "synthetic: %" PRIu64 " events published", d->syn_total);
        uv_timer_stop(t);
    }
}

/* SWITCHBOARD_SYNTHETIC_EVENTS = "N[@RATE]"; 0 when unset, SB_EINVAL when malformed. */
static int syn_parse(const char *s, uint64_t *total, uint64_t *rate)
{
    char *end = NULL;
    *total = 0;
    *rate = SYN_DEFAULT_RATE;
    if (!s || !*s)
        return 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (end == s || n == 0 || n > 100000000ULL)
        return SB_EINVAL;
    if (*end == '@') {
        const char *r = end + 1;
        unsigned long long v = strtoull(r, &end, 10);
        if (end == r || v == 0 || v > 10000000ULL)
            return SB_EINVAL;
        *rate = v;
    }
    if (*end)
        return SB_EINVAL;
    *total = n;
    return 0;
}

static void on_syn_timer_closed(uv_handle_t *h)
{
    free(h);
}

static int syn_start(app_delivery *d)
{
    const char *env = getenv("SWITCHBOARD_SYNTHETIC_EVENTS");
    uint64_t total, rate;
    if (syn_parse(env, &total, &rate) < 0) {
        SB_ERROR(LOG_SUB, "SWITCHBOARD_SYNTHETIC_EVENTS='%s': expected N or N@RATE", env);
        return SB_EINVAL;
    }
    if (total == 0)
        return 0;
    uv_timer_t *t = malloc(sizeof *t);
    if (!t || uv_timer_init(d->app->loop, t) < 0) {
        free(t);
        SB_ERROR(LOG_SUB, "synthetic: cannot create the timer");
        return SB_ENOMEM;
    }
    t->data = d;
    d->syn_timer = t;
    d->syn_total = total;
    d->syn_rate = rate;
    d->syn_next = 0;
    uv_timer_start(t, on_syn_tick, SYN_TICK_MS, SYN_TICK_MS);
    SB_WARN(LOG_SUB, "synthetic: TEST event source on: %" PRIu64 " events at %" PRIu64 " events/s",
            total, rate);
    return 0;
}

/* ---- sinks ---- */

static int add_sinks(app_delivery *d)
{
    char err[512];
    const sb_config *cfg = d->app->cfg;
    for (size_t i = 0; cfg && i < cfg->nsections; i++) {
        const sb_config_section *sec = &cfg->sections[i];
        sink_built b;
        if (strcmp(sec->kind, "sink") != 0)
            continue;
        if (d->nsinks >= MAX_SINKS) {
            SB_ERROR(LOG_SUB, "too many [sink] sections (at most %d)", MAX_SINKS);
            return SB_ECONFIG;
        }
        int rc = sink_from_section(d->app->loop, d->http, cfg, sec, &b, err, sizeof err);
        if (rc < 0) {
            SB_ERROR(LOG_SUB, "%s", err);
            return rc;
        }
        rc = outbox_add_sink(d->ob, &b.ocfg, b.ops, b.impl, NULL);
        if (rc < 0) {
            b.ops->free(b.impl); /* not taken on error */
            SB_ERROR(LOG_SUB, "%s:%d: [sink %s]: cannot add the sink: %s",
                     cfg->path ? cfg->path : "<config>", sec->line, sec->name, sb_strerror(rc));
            return rc;
        }
        d->sinks[d->nsinks++] = (sink_ref){b.ops, b.impl};
        SB_INFO(LOG_SUB, "sink %s (%s)%s", sec->name, b.ops->kind,
                b.ocfg.is_partitioned ? ", partitioned per call" : "");
    }
    d->st.sinks = (int)d->nsinks;
    return 0;
}

/* ---- the subsystem ---- */

int app_delivery_init(sb_app *app)
{
    char err[512];
    app_delivery *d = calloc(1, sizeof *d);
    if (!d) {
        SB_ERROR(LOG_SUB, "out of memory");
        return SB_ENOMEM;
    }
    d->app = app;
    d->lock_fd = -1;
    int rc = outbox_options_from_config(app->cfg, &d->opt, err, sizeof err);
    if (rc < 0) {
        SB_ERROR(LOG_SUB, "%s", err);
        free(d);
        return rc;
    }
    if (app->store_path)
        d->opt.path = app->store_path;
    rc = app_store_lock(d->opt.path, &d->lock_fd);
    if (rc == SB_EEXIST)
        SB_ERROR(LOG_SUB,
                 "another switchboard daemon is already running on the store %s (%s.lock "
                 "is locked)",
                 d->opt.path, d->opt.path);
    if (rc < 0) {
        free(d);
        return rc;
    }
    d->size_warn = d->opt.size_warn_bytes > 0 ? d->opt.size_warn_bytes : DEFAULT_SIZE_WARN;
    d->size_max = d->opt.size_max_bytes > 0 ? d->opt.size_max_bytes : DEFAULT_SIZE_MAX;
    d->opt.on_size = on_size;
    d->opt.on_size_ud = d;
    for (size_t i = 0; app->cfg && i < app->cfg->nsections; i++)
        if (!strcmp(app->cfg->sections[i].kind, "sink"))
            d->nsections++;
    uint64_t hi = 0;
    if (uv_random(NULL, NULL, &hi, sizeof hi, 0, NULL) < 0)
        hi = (uint64_t)now_ms();
    d->alert_id_hi = hi;
    app->delivery = d;
    return 0;
}

/* The last of the subsystem: the poller's outcomes are written, then the lock goes. */
static void release(app_delivery *d)
{
    app_outbox_control_free(d->control);
    d->control = NULL;
    app_store_unlock(d->lock_fd);
    d->lock_fd = -1;
    free(d);
}

static void on_outbox_closed(void *ud)
{
    app_delivery *d = ud;
    d->ob = NULL;
    d->is_closing = false;
    if (d->http)
        httpc_free(d->http);
    d->http = NULL;
    if (d->free_on_close)
        release(d);
}

static outbox *get_outbox(void *ud)
{
    app_delivery *d = ud;
    return d->ob && !d->is_closing ? d->ob : NULL;
}

static void close_all(app_delivery *d)
{
    app_outbox_control_stop(d->control);
    if (d->sub) {
        bus_unsubscribe(d->sub);
        d->sub = NULL;
    }
    if (d->syn_timer) {
        uv_close((uv_handle_t *)d->syn_timer, on_syn_timer_closed);
        d->syn_timer = NULL;
    }
    if (d->ob && !d->is_closing) {
        d->is_closing = true;
        outbox_close(d->ob, on_outbox_closed, d);
    } else if (!d->ob && d->http) {
        httpc_free(d->http);
        d->http = NULL;
    }
}

int app_delivery_start(sb_app *app)
{
    app_delivery *d = app->delivery;
    int rc = app_outbox_control_start(app->loop, d->opt.path, get_outbox, d, &d->control);
    if (rc < 0)
        return rc;
    if (d->nsections == 0) {
        SB_INFO(LOG_SUB, "no [sink] configured: events are not kept for delivery");
        if ((rc = syn_start(d)) < 0)
            goto fail;
        return 0;
    }
    rc = outbox_open(app->loop, &d->opt, &d->ob);
    if (rc < 0) {
        SB_ERROR(LOG_SUB, "cannot open the outbox in %s: %s", d->opt.path, sb_strerror(rc));
        d->ob = NULL;
        return rc;
    }
    d->http = httpc_new(app->loop, NULL);
    if (!d->http) {
        SB_ERROR(LOG_SUB, "cannot create the HTTP client");
        rc = SB_ENOMEM;
        goto fail;
    }
    if ((rc = add_sinks(d)) < 0)
        goto fail;
    d->sub = bus_subscribe(bus_global(app->bus), on_bus_event, d);
    if (!d->sub) {
        SB_ERROR(LOG_SUB, "out of memory");
        rc = SB_ENOMEM;
        goto fail;
    }
    if ((rc = syn_start(d)) < 0)
        goto fail;
    SB_INFO(LOG_SUB, "outbox %s: %zu sink(s), events committed from seq %" PRId64, d->opt.path,
            d->nsinks, outbox_committed_seq(d->ob));
    return 0;
fail:
    close_all(d);
    return rc;
}

void app_delivery_stop(sb_app *app)
{
    if (app->delivery)
        close_all(app->delivery);
}

void app_delivery_free(sb_app *app)
{
    app_delivery *d = app->delivery;
    if (!d)
        return;
    app->delivery = NULL;
    close_all(d);
    if (d->is_closing)
        d->free_on_close = true; /* on_outbox_closed frees */
    else
        release(d);
}

outbox *app_delivery_outbox(const sb_app *app)
{
    return app->delivery ? get_outbox(app->delivery) : NULL;
}

void app_delivery_stats_get(const sb_app *app, app_delivery_stats *st)
{
    memset(st, 0, sizeof *st);
    if (app->delivery)
        *st = app->delivery->st;
}

void app_delivery_size_limits(const sb_app *app, int64_t *warn_bytes, int64_t *max_bytes)
{
    const app_delivery *d = app->delivery;
    *warn_bytes = d ? d->size_warn : 0;
    *max_bytes = d ? d->size_max : 0;
}
