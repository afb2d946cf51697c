/* model.c: the model's lifecycle, per-PBX state, event dispatch, string helpers and stats
 * (see model.h). Each kind of AMI event is handed to the file that owns the idea: channels.c,
 * bridges.c, queues.c, devices.c, agents.c; calls.c is driven by channels and bridges. */
#include "model/internal.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- helpers ---- */

char *mdup(sb_slice s)
{
    if (s.len == 0)
        return NULL;
    return sb_slice_dup(s);
}

static bool is_unknown(sb_slice s)
{
    return s.len == 0 || sb_slice_eq(s, SB_SLICE_LIT("<unknown>"));
}

char *mdup_cid(sb_slice s)
{
    return is_unknown(s) ? NULL : sb_slice_dup(s);
}

static bool same(const char *cur, sb_slice s)
{
    if (!cur)
        return s.len == 0;
    return strlen(cur) == s.len && (s.len == 0 || memcmp(cur, s.ptr, s.len) == 0);
}

bool mset(char **dst, sb_slice s)
{
    if (same(*dst, s))
        return false;
    free(*dst);
    *dst = mdup(s);
    return true;
}

bool mset_cid(char **dst, sb_slice s)
{
    if (is_unknown(s))
        s.len = 0;
    return mset(dst, s);
}

bool mset_str(char **dst, const char *s)
{
    return mset(dst, s ? sb_slice_cstr(s) : (sb_slice){NULL, 0});
}

long mget_long(const ami_packet *ev, const char *key, long dflt)
{
    long long v;
    const sb_slice *s = ami_packet_get(ev, key);
    if (!s || sb_slice_to_ll(*s, &v) < 0)
        return dflt;
    return (long)v;
}

const char *mstr_or_null(const char *s)
{
    return s && *s ? s : NULL;
}

/* ---- lifecycle ---- */

int64_t model_clock(const model *m)
{
    struct timespec ts;
    if (m->cfg.now_ms)
        return m->cfg.now_ms(m->cfg.clock_ud);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

model *model_new(const model_config *cfg)
{
    model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (cfg)
        m->cfg = *cfg;
    m->id_hi = m->cfg.id_seed;
    while (m->id_hi == 0) {
        if (getrandom(&m->id_hi, sizeof m->id_hi, 0) != sizeof m->id_hi)
            m->id_hi = (uint64_t)model_clock(m) * 6364136223846793005ULL + (uint64_t)(uintptr_t)m;
    }
    return m;
}

static void free_map(sb_strmap *map, void (*fn)(void *))
{
    sb_strmap_iter it;
    void *v;
    sb_strmap_iter_init(&it, map);
    while (sb_strmap_iter_next(&it, NULL, &v))
        if (fn)
            fn(v);
    sb_strmap_free(map);
}

static void chan_free_v(void *v)
{
    chan_free(v);
}
static void call_free_v(void *v)
{
    call_free(v);
}
static void bridge_free_v(void *v)
{
    bridge_free(v);
}
static void queue_free_v(void *v)
{
    queue_free(v);
}
static void agent_free_v(void *v)
{
    agent_free(v);
}
static void hint_free_v(void *v)
{
    hint_free(v);
}
static void device_free_v(void *v)
{
    device_free(v);
}

static void pbx_free(model_pbx *p)
{
    /* Bridges first: bridge_free() clears the bridge pointer of each channel it holds. */
    free_map(&p->bridges, bridge_free_v);
    free_map(&p->channels, chan_free_v);
    free_map(&p->calls, call_free_v);
    free_map(&p->queues, queue_free_v);
    free_map(&p->agents, agent_free_v);
    free_map(&p->hints, hint_free_v);
    free_map(&p->devices, device_free_v);
    free_map(&p->devagent, NULL);
    free_map(&p->originates, free);
    for (size_t i = 0; i < sizeof p->orig_ring / sizeof p->orig_ring[0]; i++)
        free(p->orig_ring[i]);
    free_map(&p->gone, NULL);
    for (size_t i = 0; i < sizeof p->gone_ring / sizeof p->gone_ring[0]; i++)
        free(p->gone_ring[i]);
    for (size_t i = 0; i < p->ntrunks; i++)
        free(p->trunks[i]);
    free(p->trunks);
    free(p->name);
    free(p);
}

void model_free(model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->npbx; i++)
        pbx_free(m->pbxs[i]);
    free(m->pbxs);
    free(m);
}

model_pbx *model_pbx_get(model *m, const char *pbx, bool create)
{
    model_pbx *p, **v;
    if (!pbx)
        pbx = "";
    for (size_t i = 0; i < m->npbx; i++)
        if (strcmp(m->pbxs[i]->name, pbx) == 0)
            return m->pbxs[i];
    if (!create)
        return NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->name = strdup(pbx);
    v = realloc(m->pbxs, (m->npbx + 1) * sizeof *v);
    if (!p->name || !v) {
        free(p->name);
        free(p);
        if (v)
            m->pbxs = v;
        return NULL;
    }
    m->pbxs = v;
    m->pbxs[m->npbx++] = p;
    return p;
}

int model_set_trunks(model *m, const char *pbx, const char *const *trunks, size_t n)
{
    model_pbx *p = model_pbx_get(m, pbx, true);
    char **v;
    if (!p)
        return SB_ENOMEM;
    v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return SB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = strdup(trunks[i]);
        if (!v[i]) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return SB_ENOMEM;
        }
    }
    for (size_t i = 0; i < p->ntrunks; i++)
        free(p->trunks[i]);
    free(p->trunks);
    p->trunks = v;
    p->ntrunks = n;
    p->trunks_set = true;
    return 0;
}

int model_expect_originate(model *m, const char *pbx, const char *action_id, const char *agent)
{
    model_pbx *p = model_pbx_get(m, pbx, true);
    char *key, *val;
    size_t slot;
    if (!p || !action_id || !agent)
        return p ? SB_EINVAL : SB_ENOMEM;
    val = strdup(agent);
    key = strdup(action_id);
    if (!val || !key)
        goto nomem;
    slot = p->orig_head++ % (sizeof p->orig_ring / sizeof p->orig_ring[0]);
    if (p->orig_ring[slot]) {
        free(sb_strmap_del(&p->originates, sb_slice_cstr(p->orig_ring[slot])));
        free(p->orig_ring[slot]);
    }
    free(sb_strmap_del(&p->originates, sb_slice_cstr(key)));
    if (sb_strmap_put(&p->originates, sb_slice_cstr(key), val) < 0) {
        p->orig_ring[slot] = NULL;
        goto nomem;
    }
    p->orig_ring[slot] = key;
    return 0;
nomem:
    free(key);
    free(val);
    return SB_ENOMEM;
}

/* ---- dispatch ---- */

/* Event time: the Timestamp header (epoch seconds with a fraction) when the PBX sends one. */
static int64_t event_time(const model *m, const ami_packet *ev)
{
    const sb_slice *ts = ami_packet_get(ev, "Timestamp");
    if (ts && ts->len > 0 && ts->len < 32) {
        char buf[32];
        char *end;
        sb_slice_copy(*ts, buf, sizeof buf);
        double d = strtod(buf, &end);
        if (*end == '\0' && d > 0)
            return (int64_t)(d * 1000.0 + 0.5);
    }
    return model_clock(m);
}

static bool name_is(sb_slice name, const char *s)
{
    return sb_slice_eq_ci(name, s);
}

static bool starts_with(sb_slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && strncasecmp(s.ptr, prefix, n) == 0;
}

int model_handle_event(model *m, const char *pbx, const ami_packet *ev)
{
    model_pbx *p;
    sb_slice name = ev->name;
    if (ev->kind != AMI_PACKET_EVENT)
        return 0;
    p = model_pbx_get(m, pbx, true);
    if (!p)
        return SB_ENOMEM;
    m->stats.events_in++;
    m->ev_time = event_time(m, ev);

    if (name.len > 8 && sb_slice_eq_ci((sb_slice){name.ptr + name.len - 8, 8}, "Complete") &&
        !name_is(name, "AgentComplete"))
        resync_list_complete(p, name); /* CoreShowChannelsComplete, QueueStatusComplete, ... */
    else if (starts_with(name, "Queue") || starts_with(name, "Agent"))
        queue_handle(m, p, ev, name);
    else if (starts_with(name, "Bridge"))
        bridge_handle(m, p, ev, name);
    else if (name_is(name, "DeviceStateChange") || name_is(name, "ExtensionStatus"))
        device_handle(m, p, ev, name);
    else if (name_is(name, "OriginateResponse"))
        agent_handle_originate(m, p, ev);
    else
        chan_handle(m, p, ev, name);
    return 0;
}

/* ---- stats ---- */

void model_stats_get(const model *m, model_stats *out)
{
    *out = m->stats;
    out->pbxs = m->npbx;
    out->channels = out->calls = out->bridges = out->queues = out->members = out->callers = 0;
    out->agents = out->devices = out->hints = 0;
    for (size_t i = 0; i < m->npbx; i++) {
        const model_pbx *p = m->pbxs[i];
        sb_strmap_iter it;
        void *v;
        out->channels += sb_strmap_count(&p->channels);
        out->calls += sb_strmap_count(&p->calls);
        out->bridges += sb_strmap_count(&p->bridges);
        out->queues += sb_strmap_count(&p->queues);
        out->agents += sb_strmap_count(&p->agents);
        out->devices += sb_strmap_count(&p->devices);
        out->hints += sb_strmap_count(&p->hints);
        sb_strmap_iter_init(&it, &p->queues);
        while (sb_strmap_iter_next(&it, NULL, &v)) {
            const mqueue *q = v;
            out->members += sb_strmap_count(&q->members);
            out->callers += sb_strmap_count(&q->callers);
        }
    }
}
