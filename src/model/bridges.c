/* bridges.c: bridges by BridgeUniqueid (BridgeCreate, BridgeEnter, BridgeLeave, BridgeDestroy).
 * A channel is in at most one bridge. When a bridge holds two or more channels the calls in it
 * are told (call.bridged, phoneNumber for agents). A bridge emptied by BridgeLeave lives until
 * BridgeDestroy, as in Asterisk; a Hangup always comes after the channel's BridgeLeave, but the
 * model also copes with a missing BridgeLeave. */
#include "model/internal.h"

#include <stdlib.h>
#include <string.h>

void bridge_free(mbridge *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        b->chans[i]->bridge = NULL;
    free(b->chans);
    free(b->id);
    free(b);
}

mbridge *bridge_get(model_pbx *p, sb_slice id, bool create)
{
    mbridge *b = sb_strmap_get(&p->bridges, id);
    if (b || !create || id.len == 0)
        return b;
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->id = mdup(id);
    if (!b->id || sb_strmap_put(&p->bridges, id, b) < 0) {
        free(b->id);
        free(b);
        return NULL;
    }
    return b;
}

void bridge_leave(model *m, model_pbx *p, mchan *c)
{
    mbridge *b = c->bridge;
    (void)m;
    (void)p;
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        if (b->chans[i] == c) {
            memmove(&b->chans[i], &b->chans[i + 1], (b->n - i - 1) * sizeof b->chans[0]);
            b->n--;
            break;
        }
    }
    c->bridge = NULL;
}

void bridge_enter(model *m, model_pbx *p, mbridge *b, mchan *c)
{
    if (c->bridge == b)
        return;
    if (c->bridge)
        bridge_leave(m, p, c);
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 4;
        mchan **v = realloc(b->chans, ncap * sizeof *v);
        if (!v)
            return;
        b->chans = v;
        b->cap = ncap;
    }
    b->chans[b->n++] = c;
    c->bridge = b;
    if (b->n >= 2)
        call_on_bridge(m, p, b);
}

void bridge_handle(model *m, model_pbx *p, const ami_packet *ev, sb_slice name)
{
    sb_slice id = ami_packet_value(ev, "BridgeUniqueid");
    mbridge *b;
    mchan *c;
    if (id.len == 0)
        return;
    if (sb_slice_eq_ci(name, "BridgeCreate")) {
        bridge_get(p, id, true);
    } else if (sb_slice_eq_ci(name, "BridgeEnter")) {
        c = sb_strmap_get(&p->channels, ami_packet_value(ev, "Uniqueid"));
        b = bridge_get(p, id, true);
        if (c && b)
            bridge_enter(m, p, b, c);
    } else if (sb_slice_eq_ci(name, "BridgeLeave")) {
        c = sb_strmap_get(&p->channels, ami_packet_value(ev, "Uniqueid"));
        if (c && c->bridge && sb_slice_eq(sb_slice_cstr(c->bridge->id), id))
            bridge_leave(m, p, c);
    } else if (sb_slice_eq_ci(name, "BridgeDestroy")) {
        b = sb_strmap_del(&p->bridges, id);
        bridge_free(b);
    }
}
