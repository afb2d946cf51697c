/* pbxsim.c: the simulator's lifecycle, its AMI listener and the sessions' I/O (reading actions
 * through the project's codec, coalesced writes with a cap, event fan-out with per-session class
 * masks and Filter regexes), faults, load mode and the raw streaming mode.
 *
 * Writes: each session gathers what it must send in `out`; one uv_write is in flight at a time
 * (`wbuf`), so a burst of events becomes one large write. In the raw streaming mode the write
 * points straight into the pre-rendered event block (no copy) and the next chunk is queued from
 * the write callback, which is how libuv's backpressure is respected.
 */
#include "internal.h"

#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define SUB "pbxsim"
#define STREAM_CHUNK (256u * 1024)

static const pbxsim_user default_users[] = {
    {"admin", "admin-secret", "all", "all"},
    {"limited", "limited-secret", "call,agent", "originate"},
};

static const char *const class_names[] = {
    "system", "call", "log",       "verbose",  "command",  "agent",     "user",
    "config", "dtmf", "reporting", "cdr",      "dialplan", "originate", "agi",
    "cc",     "aoc",  "test",      "security", "message",
};

static uint32_t class_parse(sb_slice s, bool all_means_all)
{
    uint32_t mask = 0;
    size_t i = 0;
    while (i < s.len) {
        size_t j = i;
        while (j < s.len && s.ptr[j] != ',')
            j++;
        sb_slice w = {s.ptr + i, j - i};
        while (w.len && w.ptr[0] == ' ') {
            w.ptr++;
            w.len--;
        }
        while (w.len && w.ptr[w.len - 1] == ' ')
            w.len--;
        if (all_means_all && (sb_slice_eq_ci(w, "all") || sb_slice_eq_ci(w, "on")))
            mask |= SIM_CLASS_ALL;
        for (size_t k = 0; k < sizeof class_names / sizeof class_names[0]; k++)
            if (sb_slice_eq_ci(w, class_names[k]))
                mask |= 1u << k;
        i = j + 1;
    }
    return mask;
}

uint32_t sim_class_parse(sb_slice s)
{
    return class_parse(s, true);
}

/* An event's Privilege lists its classes followed by "all" ("call,all"), which marks it as
 * part of "all" and does not widen it. */
static uint32_t privilege_parse(sb_slice s)
{
    return class_parse(s, false);
}

void pbxsim_config_default(pbxsim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->time_scale = 1.0;
}

uint64_t sim_now_ms(const pbxsim *sim)
{
    return uv_now(sim->loop);
}

void sim_fmt_tv(time_t t, long ms, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char d[32];
    strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03ld+0000", d, ms);
}

void sim_fmt_cdr(time_t t, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Asterisk's Uniqueid is "<time of creation>.<counter since start>". After a restart the counter
 * starts again, so the epoch part never goes back below the floor set at restart: ids never
 * repeat across restarts. */
void sim_new_uniqueid(pbxsim *sim, char *buf, size_t size)
{
    long long now = (long long)time(NULL);
    if (now < sim->uid_epoch_floor)
        now = sim->uid_epoch_floor;
    snprintf(buf, size, "%lld.%llu", now, (unsigned long long)sim->uid_counter++);
}

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s ? s : dflt);
}

int pbxsim_new(uv_loop_t *loop, const pbxsim_config *cfg, pbxsim **out)
{
    int rc = SB_ENOMEM;
    pbxsim_config dflt;
    if (!loop || !out)
        return SB_EINVAL;
    if (!cfg) {
        pbxsim_config_default(&dflt);
        cfg = &dflt;
    }
    if (cfg->port < 0 || cfg->port > 65535)
        return SB_EINVAL;
    /* A server must not die because a client went away while it was writing: like Asterisk
     * and like switchboard's own main(), the simulator ignores SIGPIPE (libuv then reports
     * EPIPE on the write). Tests and benchmarks embed it, so it does this itself. */
    signal(SIGPIPE, SIG_IGN);
    pbxsim *sim = calloc(1, sizeof *sim);
    if (!sim)
        return SB_ENOMEM;
    sim->loop = loop;
    sim->port = cfg->port;
    sim->time_scale = cfg->time_scale > 0 ? cfg->time_scale : 1.0;
    sim->on_event = cfg->on_event;
    sim->on_event_arg = cfg->on_event_arg;
    sim->host = dup_or(cfg->host, "127.0.0.1");
    sim->scenario_dir = dup_or(cfg->scenario_dir, PBXSIM_SCENARIO_DIR);
    if (!sim->host || !sim->scenario_dir)
        goto fail;
    const pbxsim_user *users = cfg->users ? cfg->users : default_users;
    size_t nusers = cfg->users ? cfg->nusers : sizeof default_users / sizeof default_users[0];
    sim->users = calloc(nusers ? nusers : 1, sizeof *sim->users);
    if (!sim->users)
        goto fail;
    for (size_t i = 0; i < nusers; i++) {
        if (!users[i].username || !users[i].secret) {
            rc = SB_EINVAL;
            goto fail;
        }
        sim->users[i].username = strdup(users[i].username);
        sim->users[i].secret = strdup(users[i].secret);
        sim->nusers = i + 1;
        if (!sim->users[i].username || !sim->users[i].secret)
            goto fail;
        sim->users[i].read = sim_class_parse(sb_slice_cstr(users[i].read ? users[i].read : ""));
        sim->users[i].write = sim_class_parse(sb_slice_cstr(users[i].write ? users[i].write : ""));
    }
    sim->started = time(NULL);
    sim->uid_epoch_floor = (long long)sim->started;
    /* Asterisk has made a few channels at boot; start at 1 like the recordings do. */
    sim->uid_counter = 1;
    sim->seq_counter = 1;
    sim_state_init(&sim->state, sim->started);
    *out = sim;
    return 0;
fail:
    pbxsim_free(sim);
    return rc;
}

static void maybe_release(pbxsim *sim);

static void sim_handle_closed(uv_handle_t *h)
{
    pbxsim *sim = h->data;
    sim->open_handles--;
    maybe_release(sim);
}

/* ---- sessions ---- */

static void session_flush(sim_session *s);
static void session_read_start(sim_session *s);

static void session_handle_closed(uv_handle_t *h)
{
    sim_session *s = h->data;
    if (--s->open_handles > 0)
        return;
    pbxsim *sim = s->sim;
    for (int i = 0; i < s->nfilters; i++)
        regfree(&s->filters[i]);
    ami_codec_free(&s->codec);
    sb_buf_free(&s->out);
    sb_buf_free(&s->wbuf);
    free(s);
    sim->open_handles--;
    maybe_release(sim);
}

void sim_session_close(sim_session *s, bool graceful)
{
    if (s->closing)
        return;
    if (graceful && (s->writing || s->out.len)) {
        /* closed by session_flush once everything queued is written */
        s->close_after_drain = true;
        s->stream_left = 0;
        s->authed = false;
        if (s->reading)
            uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = false;
        return;
    }
    pbxsim *sim = s->sim;
    s->closing = true;
    if (s->prev)
        s->prev->next = s->next;
    else
        sim->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (sim->stats.sessions_open)
        sim->stats.sessions_open--;
    s->open_handles = 2;
    uv_close((uv_handle_t *)&s->tcp, session_handle_closed);
    uv_close((uv_handle_t *)&s->stall_timer, session_handle_closed);
}

static void session_write_cb(uv_write_t *req, int status)
{
    sim_session *s = req->data;
    s->writing = false;
    if (!s->write_is_stream)
        sb_buf_reset(&s->wbuf);
    s->write_is_stream = false;
    if (s->closing)
        return;
    if (status < 0) {
        sim_session_close(s, false);
        return;
    }
    session_flush(s);
}

/* Writes what is queued; in streaming mode, the next chunk of the pre-rendered block. */
static void session_flush(sim_session *s)
{
    pbxsim *sim = s->sim;
    if (s->writing || s->closing || s->stalled)
        return;
    uv_buf_t b;
    if (s->out.len) {
        sb_buf tmp = s->wbuf;
        s->wbuf = s->out;
        s->out = tmp;
        b = uv_buf_init(s->wbuf.data, (unsigned)s->wbuf.len);
        s->write_is_stream = false;
    } else if (s->stream_left && sim->stream_count) {
        size_t first = s->stream_pos;
        size_t last = first;
        size_t start = sim->stream_offs[first];
        while (last < sim->stream_count && (uint64_t)(last - first) < s->stream_left &&
               sim->stream_offs[last + 1] - start <= STREAM_CHUNK)
            last++;
        if (last == first)
            last = first + 1;
        size_t n = last - first;
        b = uv_buf_init(sim->stream_data + start, (unsigned)(sim->stream_offs[last] - start));
        s->stream_left -= n;
        s->stream_pos = last == sim->stream_count ? 0 : last;
        sim->stats.events_sent += n;
        s->write_is_stream = true;
    } else {
        if (s->close_after_drain)
            sim_session_close(s, false);
        return;
    }
    sim->stats.bytes_sent += b.len;
    s->wreq.data = s;
    int rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, session_write_cb);
    if (rc < 0) {
        s->write_is_stream = false;
        sim_session_close(s, false);
        return;
    }
    s->writing = true;
}

void sim_send(sim_session *s, const char *data, size_t len)
{
    if (s->closing || s->close_after_drain)
        return;
    if (sb_buf_append(&s->out, data, len) < 0) {
        SB_WARN(SUB, "session %llu too far behind, dropping it", (unsigned long long)s->id);
        sim_session_close(s, false);
        return;
    }
    session_flush(s);
}

int sim_session_stream(sim_session *s, uint64_t count)
{
    int rc = sim_stream_prepare(s->sim);
    if (rc < 0)
        return rc;
    s->stream_left += count;
    session_flush(s);
    return 0;
}

static void session_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    sim_session *s = h->data;
    char *p;
    size_t n;
    ami_codec_space(&s->codec, &p, &n);
    *buf = uv_buf_init(p, (unsigned)n);
}

/* Answers the actions already buffered, unless the session is stalled or closing. */
static void session_drain(sim_session *s)
{
    for (int guard = 0; guard < 100000; guard++) {
        if (s->closing || s->stalled || s->close_after_drain)
            break;
        ami_packet p;
        int rc = ami_codec_next(&s->codec, &p);
        if (rc == AMI_NEED_MORE)
            break;
        if (rc < 0)
            continue;
        if (p.kind == AMI_PACKET_ACTION || p.kind == AMI_PACKET_OTHER) {
            s->sim->stats.actions++;
            sim_action(s, &p);
        }
    }
}

static void session_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sim_session *s = stream->data;
    if (nread < 0) {
        sim_session_close(s, false);
        return;
    }
    if (nread == 0)
        return;
    ami_codec_commit(&s->codec, (size_t)nread);
    session_drain(s);
}

static void session_read_start(sim_session *s)
{
    if (s->reading || s->closing)
        return;
    if (uv_read_start((uv_stream_t *)&s->tcp, session_alloc_cb, session_read_cb) == 0)
        s->reading = true;
}

static void on_connection(uv_stream_t *server, int status)
{
    pbxsim *sim = server->data;
    if (status < 0)
        return;
    sim_session *s = calloc(1, sizeof *s);
    if (!s)
        return;
    s->sim = sim;
    s->id = ++sim->next_session_id;
    sb_buf_init(&s->out, SIM_OUT_MAX);
    sb_buf_init(&s->wbuf, SIM_OUT_MAX);
    if (ami_codec_init(&s->codec, AMI_LIMITS_DEFAULT, false) < 0) {
        free(s);
        return;
    }
    uv_tcp_init(sim->loop, &s->tcp);
    uv_timer_init(sim->loop, &s->stall_timer);
    s->tcp.data = s;
    s->stall_timer.data = s;
    sim->open_handles++;
    s->next = sim->sessions;
    if (sim->sessions)
        sim->sessions->prev = s;
    sim->sessions = s;
    sim->stats.sessions_accepted++;
    sim->stats.sessions_open++;
    if (uv_accept(server, (uv_stream_t *)&s->tcp) < 0) {
        sim_session_close(s, false);
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET) {
        char ip[48];
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        uv_ip4_name(in, ip, sizeof ip);
        s->peer_port = ntohs(in->sin_port);
        snprintf(s->remote, sizeof s->remote, "IPV4/TCP/%s/%d", ip, s->peer_port);
    } else {
        snprintf(s->remote, sizeof s->remote, "IPV4/TCP/127.0.0.1/0");
    }
    static const char banner[] = "Asterisk Call Manager/11.0.0\r\n";
    sim_send(s, banner, sizeof banner - 1);
    session_read_start(s);
}

int pbxsim_start(pbxsim *sim)
{
    struct sockaddr_in addr;
    int rc = uv_ip4_addr(sim->host, sim->port, &addr);
    if (rc < 0)
        return rc;
    rc = uv_tcp_init(sim->loop, &sim->listener);
    if (rc < 0)
        return rc;
    sim->listener.data = sim;
    sim->listener_open = true;
    sim->open_handles++;
    rc = uv_tcp_bind(&sim->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&sim->listener, 128, on_connection);
    if (rc < 0) {
        sim->listener_open = false;
        uv_close((uv_handle_t *)&sim->listener, sim_handle_closed);
        return rc;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&sim->listener, (struct sockaddr *)&ss, &len);
    sim->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    sim->listening = true;
    if (!sim->load.open) {
        uv_timer_init(sim->loop, &sim->load.timer);
        sim->load.timer.data = sim;
        sim->load.open = true;
        sim->open_handles++;
    }
    return 0;
}

int pbxsim_port(const pbxsim *sim)
{
    return sim->listening ? sim->port : 0;
}

static void drop_all_sessions(pbxsim *sim)
{
    while (sim->sessions)
        sim_session_close(sim->sessions, false);
}

static void cancel_all_calls(pbxsim *sim)
{
    while (sim->calls)
        sim_call_cancel(sim->calls);
}

void pbxsim_stop(pbxsim *sim)
{
    if (!sim || sim->stopped)
        return;
    sim->stopped = true;
    cancel_all_calls(sim);
    drop_all_sessions(sim);
    if (sim->listener_open) {
        sim->listener_open = false;
        sim->listening = false;
        uv_close((uv_handle_t *)&sim->listener, sim_handle_closed);
    }
    if (sim->load.open) {
        sim->load.open = false;
        sim->load.active = false;
        uv_close((uv_handle_t *)&sim->load.timer, sim_handle_closed);
    }
}

static void release(pbxsim *sim)
{
    for (size_t i = 0; i < sim->nusers; i++) {
        free(sim->users[i].username);
        free(sim->users[i].secret);
    }
    free(sim->users);
    free(sim->host);
    free(sim->scenario_dir);
    free(sim->load.scenario);
    free(sim->stream_data);
    free(sim->stream_offs);
    sim_scenarios_free(sim);
    sim_state_free(&sim->state);
    free(sim);
}

static void maybe_release(pbxsim *sim)
{
    if (sim->free_requested && sim->open_handles == 0)
        release(sim);
}

void pbxsim_free(pbxsim *sim)
{
    if (!sim)
        return;
    pbxsim_stop(sim);
    sim->free_requested = true;
    maybe_release(sim);
}

/* ---- events ---- */

#define MAX_EVENT_HEADERS 128

/* Splits our own rendered packet into headers (it is well formed: we made it). */
static size_t split_headers(const char *data, size_t len, ami_header *h, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len && n < max) {
        size_t j = i;
        while (j + 1 < len && !(data[j] == '\r' && data[j + 1] == '\n'))
            j++;
        if (j + 1 >= len || j == i)
            break;
        const char *colon = memchr(data + i, ':', j - i);
        if (colon) {
            h[n].key = (sb_slice){data + i, (size_t)(colon - (data + i))};
            const char *v = colon + 1;
            if (v < data + j && *v == ' ')
                v++;
            h[n].value = (sb_slice){v, (size_t)(data + j - v)};
            n++;
        }
        i = j + 2;
    }
    return n;
}

static bool session_wants(const sim_session *s, uint32_t privilege, const char *text)
{
    if (!s->authed || s->closing || s->close_after_drain || !s->user)
        return false;
    if (!(privilege & s->user->read & s->event_mask))
        return false;
    if (s->nfilters == 0)
        return true;
    /* Legacy filters (manager.conf eventfilter / the Filter action): regexes over the whole
     * event; with includes only, an event must match one; excludes then remove matches. */
    bool has_include = false, included = false;
    for (int i = 0; i < s->nfilters; i++) {
        bool match = regexec(&s->filters[i], text, 0, NULL, 0) == 0;
        if (s->filter_exclude[i]) {
            if (match)
                return false;
        } else {
            has_include = true;
            if (match)
                included = true;
        }
    }
    return !has_include || included;
}

void sim_emit(pbxsim *sim, const char *data, size_t len)
{
    ami_header h[MAX_EVENT_HEADERS];
    size_t n = split_headers(data, len, h, MAX_EVENT_HEADERS);
    uint32_t privilege = 0;
    for (size_t i = 0; i < n; i++)
        if (sb_slice_eq_ci(h[i].key, "Privilege")) {
            privilege = privilege_parse(h[i].value);
            break;
        }
    sim_state_apply(sim, h, n);
    sim->stats.events_emitted++;
    if (sim->on_event)
        sim->on_event(sim->on_event_arg, data, len);
    /* regexec needs a C string: the rendered text never contains NUL */
    char stackbuf[8192];
    char *text = len < sizeof stackbuf ? stackbuf : malloc(len + 1);
    if (!text)
        return;
    memcpy(text, data, len);
    text[len] = '\0';
    for (sim_session *s = sim->sessions, *next; s; s = next) {
        next = s->next;
        if (session_wants(s, privilege, text)) {
            sim->stats.events_sent++;
            sim_send(s, data, len);
        }
    }
    if (text != stackbuf)
        free(text);
}

/* ---- faults ---- */

static void stall_done(uv_timer_t *t)
{
    sim_session *s = t->data;
    if (s->closing)
        return;
    s->stalled = false;
    session_read_start(s);
    session_flush(s);
    /* actions that arrived before the stall and were not yet answered */
    session_drain(s);
}

/* Applies a session fault to s. */
static void session_fault(sim_session *s, pbxsim_fault fault, uint64_t ms)
{
    static const char garbage[] = "\x80\xfe\x01 pbxsim garbage, not AMI \x7f\r\n\r\n";
    if (s->closing)
        return;
    switch (fault) {
    case PBXSIM_FAULT_DROP:
        sim_session_close(s, false);
        break;
    case PBXSIM_FAULT_STALL:
        s->stalled = true;
        if (s->reading)
            uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = false;
        uv_timer_start(&s->stall_timer, stall_done, ms, 0);
        break;
    case PBXSIM_FAULT_GARBAGE:
        sim_send(s, garbage, sizeof garbage - 1);
        break;
    case PBXSIM_FAULT_RESTART:
        break;
    }
}

int pbxsim_inject(pbxsim *sim, pbxsim_fault fault, uint64_t ms)
{
    if (fault == PBXSIM_FAULT_RESTART) {
        drop_all_sessions(sim);
        cancel_all_calls(sim);
        if (sim->load.open)
            uv_timer_stop(&sim->load.timer);
        sim->load.active = false;
        long long now = (long long)time(NULL);
        long long floor = sim->uid_epoch_floor + 1;
        sim->uid_epoch_floor = now > floor ? now : floor;
        sim->uid_counter = 1;
        sim->seq_counter = 1;
        sim->started = time(NULL);
        sim_state_free(&sim->state);
        sim_state_init(&sim->state, sim->started);
        return 0;
    }
    if (fault != PBXSIM_FAULT_DROP && fault != PBXSIM_FAULT_STALL && fault != PBXSIM_FAULT_GARBAGE)
        return SB_EINVAL;
    for (sim_session *s = sim->sessions, *next; s; s = next) {
        next = s->next;
        session_fault(s, fault, ms);
    }
    return 0;
}

int pbxsim_inject_peer(pbxsim *sim, pbxsim_fault fault, uint64_t ms, int peer_port)
{
    if (fault != PBXSIM_FAULT_DROP && fault != PBXSIM_FAULT_STALL && fault != PBXSIM_FAULT_GARBAGE)
        return SB_EINVAL;
    for (sim_session *s = sim->sessions; s; s = s->next)
        if (!s->closing && s->peer_port == peer_port) {
            session_fault(s, fault, ms);
            return 0;
        }
    return SB_ENOTFOUND;
}

/* ---- scenarios, load and streaming ---- */

int pbxsim_play(pbxsim *sim, const char *name, const pbxsim_play_opts *opts)
{
    int err = 0;
    if (!name || sim->stopped)
        return SB_EINVAL;
    const scenario *scn = sim_scenario_get(sim, name, &err);
    if (!scn)
        return err;
    size_t nvars = 0;
    if (opts && opts->vars)
        while (opts->vars[nvars])
            nvars++;
    sim_call *c;
    int rc = sim_call_start(sim, scn, opts ? opts->vars : NULL, nvars, NULL, 0, &c);
    if (rc < 0)
        return rc;
    if (opts) {
        c->on_done = opts->on_done;
        c->arg = opts->arg;
    }
    return 0;
}

/* Calls due by now (the first at once), never more than the load's total. */
static uint64_t load_due(const sim_load *ld, uint64_t now)
{
    uint64_t total = (uint64_t)((double)(ld->end_ms - ld->started_ms) * ld->rate / 1000.0);
    if (now >= ld->end_ms)
        return total;
    uint64_t due = (uint64_t)((double)(now - ld->started_ms) * ld->rate / 1000.0) + 1;
    return due < total ? due : total;
}

/* Starts the calls that are due. A loop that was late catches up, but at most LOAD_BURST_MS worth
 * of calls per tick: starting every overdue call at once made a late loop later still (each call
 * then plays its first steps in the same turn), so a simulator offered more than it can play
 * starved its own sockets — no accept, no answers — for as long as the load lasted. Capped, the
 * calls start at the rate the loop sustains, the loop keeps serving I/O between ticks, and the
 * load simply ends later: every one of its calls is still played (load_behind counts the lag). */
#define LOAD_BURST_MS 100

static void load_tick(uv_timer_t *t)
{
    pbxsim *sim = t->data;
    sim_load *ld = &sim->load;
    if (!ld->active)
        return;
    uint64_t now = sim_now_ms(sim);
    uint64_t due = load_due(ld, now);
    uint64_t burst = (uint64_t)(ld->rate * LOAD_BURST_MS / 1000.0) + 1;
    if (due > ld->calls + burst)
        due = ld->calls + burst;
    uint64_t total = load_due(ld, ld->end_ms);
    while (ld->calls < due) {
        char agent[24], agent2[24];
        const char *vars[3] = {agent, agent2, NULL};
        pbxsim_play_opts o = {.vars = vars};
        if (ld->agent_n) {
            snprintf(agent, sizeof agent, "AGENT=%llu",
                     (unsigned long long)ld->agent_lo + ld->calls % ld->agent_n);
            snprintf(agent2, sizeof agent2, "AGENT2=%llu",
                     (unsigned long long)ld->agent_lo + (ld->calls + 1) % ld->agent_n);
        }
        if (pbxsim_play(sim, ld->scenario, ld->agent_n ? &o : NULL) < 0) {
            ld->calls = total; /* cannot play: give the load up rather than retry forever */
            break;
        }
        ld->calls++;
    }
    if (now >= ld->end_ms && ld->calls >= total) {
        ld->active = false;
        uv_timer_stop(t);
    }
}

int pbxsim_load(pbxsim *sim, double calls_per_second, uint64_t duration_ms, const char *name)
{
    int err = 0;
    if (!name || calls_per_second <= 0 || calls_per_second > 100000 || !sim->load.open)
        return SB_EINVAL;
    if (!sim_scenario_get(sim, name, &err))
        return err;
    char *copy = strdup(name);
    if (!copy)
        return SB_ENOMEM;
    free(sim->load.scenario);
    sim->load.scenario = copy;
    sim->load.rate = calls_per_second;
    sim->load.started_ms = sim_now_ms(sim);
    sim->load.end_ms = sim->load.started_ms + duration_ms;
    sim->load.calls = 0;
    sim->load.agent_lo = 0;
    sim->load.agent_n = 0;
    sim->load.active = true;
    uint64_t period = (uint64_t)(1000.0 / calls_per_second);
    if (period < 1)
        period = 1;
    if (period > 100)
        period = 100;
    uv_timer_start(&sim->load.timer, load_tick, 0, period);
    return 0;
}

int pbxsim_load_agents(pbxsim *sim, double calls_per_second, uint64_t duration_ms, const char *name,
                       uint32_t agent_lo, uint32_t agent_hi)
{
    if (agent_hi < agent_lo || agent_hi > 999999999u)
        return SB_EINVAL;
    int rc = pbxsim_load(sim, calls_per_second, duration_ms, name);
    if (rc < 0)
        return rc;
    sim->load.agent_lo = agent_lo;
    sim->load.agent_n = agent_hi - agent_lo + 1;
    return 0;
}

int pbxsim_stream(pbxsim *sim, uint64_t count)
{
    for (sim_session *s = sim->sessions; s; s = s->next)
        if (s->authed && !s->closing) {
            int rc = sim_session_stream(s, count);
            if (rc < 0)
                return rc;
        }
    return 0;
}

void pbxsim_get_stats(const pbxsim *sim, pbxsim_stats *out)
{
    *out = sim->stats;
    out->channels = (uint32_t)sim->state.nchans;
    out->load_behind = 0;
    if (sim->load.active) {
        uint64_t due = load_due(&sim->load, sim_now_ms(sim));
        out->load_behind = due > sim->load.calls ? due - sim->load.calls : 0;
    }
    uint32_t active = 0;
    for (const sim_call *c = sim->calls; c; c = c->next)
        active++;
    out->calls_active = active;
}
