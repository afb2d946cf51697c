/* event.c: the normalized event builder. Every event the model emits passes through here, so
 * the envelope (id, type, time, pbx, agent, details) is written in one place.
 *
 * Ids are UUIDs (version 8, RFC 9562 "custom"): the upper 64 bits are a per-model value drawn
 * at random when the model starts (fixed in tests), the lower bits a counter. So an id is unique
 * across restarts and PBXs, assigned once when the event is built and carried unchanged through
 * the bus, the outbox and every retry.
 */
#include "model/internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

char *mev_time(int64_t ms, char *buf, size_t size)
{
    struct tm tm;
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

json_t *mev_time_json(int64_t ms)
{
    char buf[40];
    if (ms <= 0)
        return json_null();
    return json_string(mev_time(ms, buf, sizeof buf));
}

static void make_id(model *m, char *buf, size_t size)
{
    uint64_t hi = m->id_hi, lo = ++m->id_counter;
    snprintf(buf, size, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
             (unsigned)((hi >> 16) & 0xffff), (unsigned)(0x8000 | (hi & 0x0fff)),
             (unsigned)(0x8000 | ((lo >> 48) & 0x3fff)),
             (unsigned long long)(lo & 0xffffffffffffULL));
}

void mev_emit_multi(model *m, model_pbx *p, const char *type, const char *agent, const char *queue,
                    const char *const *agents, size_t nagents, json_t *details)
{
    char id[40], when[40];
    json_t *o;
    bus_event *ev;
    if (!details)
        return;
    if (!m->cfg.emit) {
        json_decref(details);
        return;
    }
    make_id(m, id, sizeof id);
    o = json_object();
    if (!o) {
        json_decref(details);
        return;
    }
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "time", json_string(mev_time(m->ev_time, when, sizeof when)));
    json_object_set_new(o, "pbx", json_string(p->name));
    if (agent)
        json_object_set_new(o, "agent", json_string(agent));
    json_object_set_new(o, "details", details);
    ev = bus_event_new(o);
    if (!ev)
        return;
    if (agent)
        bus_event_add_agent(ev, agent);
    for (size_t i = 0; i < nagents; i++)
        if (agents[i])
            bus_event_add_agent(ev, agents[i]);
    if (queue)
        bus_event_set_queue(ev, queue);
    m->stats.events_out++;
    m->cfg.emit(m->cfg.emit_ud, ev);
    bus_event_unref(ev);
}

void mev_emit(model *m, model_pbx *p, const char *type, const char *agent, const char *queue,
              json_t *details)
{
    mev_emit_multi(m, p, type, agent, queue, NULL, 0, details);
}
