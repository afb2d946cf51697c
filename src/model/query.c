/* query.c: the model's current state as JSON for the HTTP layer and stream snapshots (see
 * model.h). Each answer is built fresh and owned by the caller; nothing in it points back into
 * the model. */
#include "model/internal.h"

#include <string.h>

static void each_pbx(model *m, const char *pbx, void (*fn)(model_pbx *, json_t *, const void *),
                     json_t *out, const void *arg)
{
    for (size_t i = 0; i < m->npbx; i++)
        if (!pbx || strcmp(m->pbxs[i]->name, pbx) == 0)
            fn(m->pbxs[i], out, arg);
}

static void add_calls(model_pbx *p, json_t *out, const void *agent)
{
    sb_strmap_iter it;
    void *v;
    sb_strmap_iter_init(&it, &p->calls);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        const mcall *call = v;
        bool mine = !agent || (call->agent && strcmp(call->agent, agent) == 0);
        for (const mchan *c = call->chans; !mine && c; c = c->call_next)
            mine = c->agent && strcmp(c->agent, agent) == 0;
        if (!mine)
            continue;
        json_t *j = call_json(call, true);
        if (j)
            json_object_set_new(j, "pbx", json_string(p->name));
        json_array_append_new(out, j);
    }
}

json_t *model_calls_json(model *m, const char *pbx)
{
    json_t *a = json_array();
    if (a)
        each_pbx(m, pbx, add_calls, a, NULL);
    return a;
}

json_t *model_call_json(model *m, const char *pbx, const char *call_id)
{
    for (size_t i = 0; call_id && i < m->npbx; i++) {
        model_pbx *p = m->pbxs[i];
        if (pbx && strcmp(p->name, pbx) != 0)
            continue;
        mcall *call = sb_strmap_get(&p->calls, sb_slice_cstr(call_id));
        if (call) {
            json_t *j = call_json(call, true);
            if (j)
                json_object_set_new(j, "pbx", json_string(p->name));
            return j;
        }
    }
    return NULL;
}

static void add_queues(model_pbx *p, json_t *out, const void *only)
{
    sb_strmap_iter it;
    void *v;
    sb_strmap_iter_init(&it, &p->queues);
    while (sb_strmap_iter_next(&it, NULL, &v)) {
        const mqueue *q = v;
        if (only && strcmp(q->name, only) != 0)
            continue;
        json_t *j = queue_json(q, true);
        if (j)
            json_object_set_new(j, "pbx", json_string(p->name));
        json_array_append_new(out, j);
    }
}

json_t *model_queues_json(model *m, const char *pbx)
{
    json_t *a = json_array();
    if (a)
        each_pbx(m, pbx, add_queues, a, NULL);
    return a;
}

json_t *model_queue_json(model *m, const char *pbx, const char *queue)
{
    json_t *a = json_array(), *j = NULL;
    if (!a || !queue)
        goto out;
    each_pbx(m, pbx, add_queues, a, queue);
    j = json_incref(json_array_get(a, 0));
out:
    json_decref(a);
    return j;
}

json_t *model_agent_json(model *m, const char *pbx, const char *extension)
{
    for (size_t i = 0; extension && i < m->npbx; i++) {
        model_pbx *p = m->pbxs[i];
        if (pbx && strcmp(p->name, pbx) != 0)
            continue;
        magent *a = agent_get(p, extension, false);
        if (a)
            return agent_json(p, a);
    }
    return NULL;
}

static void add_agents(model_pbx *p, json_t *out, const void *unused)
{
    sb_strmap_iter it;
    void *v;
    (void)unused;
    sb_strmap_iter_init(&it, &p->agents);
    while (sb_strmap_iter_next(&it, NULL, &v))
        json_array_append_new(out, agent_json(p, v));
}

json_t *model_agents_json(model *m, const char *pbx)
{
    json_t *a = json_array();
    if (a)
        each_pbx(m, pbx, add_agents, a, NULL);
    return a;
}

json_t *model_pbxs_json(model *m)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < m->npbx; i++) {
        const model_pbx *p = m->pbxs[i];
        json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "name", p->name,
                                           "channels", (json_int_t)sb_strmap_count(&p->channels),
                                           "calls", (json_int_t)sb_strmap_count(&p->calls),
                                           "queues", (json_int_t)sb_strmap_count(&p->queues),
                                           "agents", (json_int_t)sb_strmap_count(&p->agents),
                                           "resyncing", p->resyncing));
    }
    return a;
}

json_t *model_snapshot_json(model *m, const char *agent)
{
    json_t *o = json_object(), *calls = json_array(), *agents = json_array();
    if (!o || !calls || !agents) {
        json_decref(o);
        json_decref(calls);
        json_decref(agents);
        return NULL;
    }
    for (size_t i = 0; i < m->npbx; i++) {
        model_pbx *p = m->pbxs[i];
        add_calls(p, calls, agent);
        if (agent) {
            magent *a = agent_get(p, agent, false);
            if (a)
                json_array_append_new(agents, agent_json(p, a));
        } else {
            add_agents(p, agents, NULL);
        }
    }
    json_object_set_new(o, "calls", calls);
    json_object_set_new(o, "queues", model_queues_json(m, NULL));
    json_object_set_new(o, "agents", agents);
    return o;
}
