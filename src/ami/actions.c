/* actions.c: the AMI client's in-flight actions (see internal.h).
 *
 * A chained hash table on the ActionID answers "whose response is this?" in O(1), so a thousand
 * actions in flight cost no more per packet than one; a binary min-heap on the deadline lets one
 * libuv timer serve every action's timeout (insert and remove O(log n)). The second half turns
 * Responses and events into completions: simple actions end on their Response, lists on the
 * event with EventList: Complete (or cancelled), async Originates on OriginateResponse.
 */
#include "ami/internal.h"

#include "core/error.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 64
#define LOG_SUB "ami"

static uint64_t hash_id(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int ami_pending_set_init(ami_pending_set *s)
{
    memset(s, 0, sizeof *s);
    s->buckets = calloc(INITIAL_BUCKETS, sizeof *s->buckets);
    if (!s->buckets)
        return SB_ENOMEM;
    s->nbuckets = INITIAL_BUCKETS;
    return 0;
}

void ami_pending_set_free(ami_pending_set *s)
{
    ami_pending *p = ami_pending_detach_all(s);
    while (p) {
        ami_pending *next = p->hnext;
        ami_pending_release(p);
        p = next;
    }
    free(s->buckets);
    free(s->heap);
    memset(s, 0, sizeof *s);
}

/* Doubles the bucket array; on allocation failure the table keeps working, only slower. */
static void grow_buckets(ami_pending_set *s)
{
    size_t n = s->nbuckets * 2;
    ami_pending **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        ami_pending *p = s->buckets[i];
        while (p) {
            ami_pending *next = p->hnext;
            size_t k = hash_id(p->id, p->idlen) & (n - 1);
            p->hnext = b[k];
            b[k] = p;
            p = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

static void heap_swap(ami_pending_set *s, size_t i, size_t j)
{
    ami_pending *t = s->heap[i];
    s->heap[i] = s->heap[j];
    s->heap[j] = t;
    s->heap[i]->heap_idx = i;
    s->heap[j]->heap_idx = j;
}

static void heap_up(ami_pending_set *s, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent]->deadline <= s->heap[i]->deadline)
            break;
        heap_swap(s, i, parent);
        i = parent;
    }
}

static void heap_down(ami_pending_set *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_len && s->heap[l]->deadline < s->heap[m]->deadline)
            m = l;
        if (r < s->heap_len && s->heap[r]->deadline < s->heap[m]->deadline)
            m = r;
        if (m == i)
            break;
        heap_swap(s, i, m);
        i = m;
    }
}

int ami_pending_insert(ami_pending_set *s, ami_pending *p)
{
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        ami_pending **h = realloc(s->heap, cap * sizeof *h);
        if (!h)
            return SB_ENOMEM;
        s->heap = h;
        s->heap_cap = cap;
    }
    if (s->count >= s->nbuckets)
        grow_buckets(s);
    size_t k = hash_id(p->id, p->idlen) & (s->nbuckets - 1);
    p->hnext = s->buckets[k];
    s->buckets[k] = p;
    s->count++;
    p->heap_idx = s->heap_len;
    s->heap[s->heap_len++] = p;
    heap_up(s, p->heap_idx);
    if (p->kind != AMI_ACTION_SIMPLE)
        s->awaiting_events++;
    return 0;
}

ami_pending *ami_pending_find(const ami_pending_set *s, sb_slice id)
{
    if (id.len == 0 || id.len >= AMI_ACTIONID_MAX || s->count == 0)
        return NULL;
    size_t k = hash_id(id.ptr, id.len) & (s->nbuckets - 1);
    for (ami_pending *p = s->buckets[k]; p; p = p->hnext)
        if (p->idlen == id.len && memcmp(p->id, id.ptr, id.len) == 0)
            return p;
    return NULL;
}

void ami_pending_remove(ami_pending_set *s, ami_pending *p)
{
    size_t k = hash_id(p->id, p->idlen) & (s->nbuckets - 1);
    for (ami_pending **pp = &s->buckets[k]; *pp; pp = &(*pp)->hnext) {
        if (*pp == p) {
            *pp = p->hnext;
            break;
        }
    }
    p->hnext = NULL;
    s->count--;
    size_t i = p->heap_idx;
    s->heap_len--;
    if (i != s->heap_len) {
        s->heap[i] = s->heap[s->heap_len];
        s->heap[i]->heap_idx = i;
        heap_down(s, i);
        heap_up(s, i);
    }
    if (p->kind != AMI_ACTION_SIMPLE)
        s->awaiting_events--;
}

ami_pending *ami_pending_earliest(const ami_pending_set *s)
{
    return s->heap_len ? s->heap[0] : NULL;
}

ami_pending *ami_pending_detach_all(ami_pending_set *s)
{
    ami_pending *list = NULL, **tail = &list;
    /* Heap order is deadline order: the oldest actions fail first. */
    for (size_t i = 0; i < s->heap_len; i++) {
        *tail = s->heap[i];
        tail = &s->heap[i]->hnext;
    }
    *tail = NULL;
    if (s->buckets)
        memset(s->buckets, 0, s->nbuckets * sizeof *s->buckets);
    s->count = 0;
    s->heap_len = 0;
    s->awaiting_events = 0;
    return list;
}

void ami_pending_release(ami_pending *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nitems; i++)
        ami_packet_free(p->items[i]);
    free(p->items);
    ami_packet_free(p->response);
    free(p);
}

int ami_pending_add_item(ami_pending *p, const ami_packet *ev)
{
    if (p->nitems >= AMI_LIST_MAX_ITEMS)
        return SB_ETOOBIG;
    if (p->nitems == p->items_cap) {
        size_t cap = p->items_cap ? p->items_cap * 2 : 16;
        ami_packet **it = realloc(p->items, cap * sizeof *it);
        if (!it)
            return SB_ENOMEM;
        p->items = it;
        p->items_cap = cap;
    }
    ami_packet *copy = ami_packet_dup(ev);
    if (!copy)
        return SB_ENOMEM;
    p->items[p->nitems++] = copy;
    return 0;
}

/* ---- completing actions ---------------------------------------------------------------- */

/* Runs p's callback once and frees p. p must already be out of the set. */
static void complete(ami_client *c, ami_pending *p, int status, const ami_packet *response,
                     const ami_packet *complete_ev)
{
    ami_result r = {
        .status = status,
        .response = response,
        .items = (const ami_packet *const *)p->items,
        .nitems = p->nitems,
        .complete = complete_ev,
    };
    if (!p->internal && status != 0)
        c->st.actions_failed++;
    p->cb(c, &r, p->ud);
    ami_pending_release(p);
}

/* Fails every pending action with status (disconnect or stop). The set is emptied first, so a
 * callback that sends or stops sees a consistent client. */
void ami_actions_fail_all(ami_client *c, int status)
{
    ami_pending *p = ami_pending_detach_all(&c->pending);
    uv_timer_stop(&c->act_timer);
    c->act_due = UINT64_MAX;
    while (p) {
        ami_pending *next = p->hnext;
        p->hnext = NULL;
        complete(c, p, status, p->response, NULL);
        p = next;
    }
}

static void on_act_timer(uv_timer_t *t)
{
    ami_client *c = t->data;
    uint64_t now = uv_now(c->loop);
    ami_pending *p;
    c->act_due = UINT64_MAX;
    while ((p = ami_pending_earliest(&c->pending)) && p->deadline <= now) {
        ami_pending_remove(&c->pending, p);
        SB_DEBUG(LOG_SUB, "pbx %s: action %s timed out", c->name, p->id);
        complete(c, p, SB_ETIMEDOUT, p->response, NULL);
    }
    ami_actions_timer_arm(c);
}

void ami_actions_timer_arm(ami_client *c)
{
    ami_pending *p = ami_pending_earliest(&c->pending);
    if (!p || p->deadline >= c->act_due)
        return;
    uint64_t now = uv_now(c->loop);
    c->act_due = p->deadline;
    uv_timer_start(&c->act_timer, on_act_timer, p->deadline > now ? p->deadline - now : 0, 0);
}

static int response_status(const ami_packet *r)
{
    if (sb_slice_eq_ci(r->name, "Success") || sb_slice_eq_ci(r->name, "Goodbye") ||
        sb_slice_eq_ci(r->name, "Follows"))
        return 0;
    if (ami_packet_is(r, "Message", "Permission denied"))
        return SB_EDENIED;
    return SB_EFAILED;
}

void ami_actions_on_response(ami_client *c, const ami_packet *pkt)
{
    const sb_slice *aid = ami_packet_get(pkt, "ActionID");
    if (!aid) {
        /* A Ping sent without ActionID (fixture 04) or another client's habit: nobody waits. */
        SB_DEBUG(LOG_SUB, "pbx %s: response without ActionID ignored", c->name);
        return;
    }
    ami_pending *p = ami_pending_find(&c->pending, *aid);
    if (!p) {
        SB_DEBUG(LOG_SUB, "pbx %s: response to an unknown or expired action ignored", c->name);
        return;
    }
    int status = response_status(pkt);
    if (status == 0 && p->kind == AMI_ACTION_LIST) {
        const sb_slice *el = ami_packet_get(pkt, "EventList");
        if (el && sb_slice_eq_ci(*el, "start")) {
            if (!p->response)
                p->response = ami_packet_dup(pkt);
            return;
        }
        /* Success without a list: nothing will follow. */
    } else if (status == 0 && p->kind == AMI_ACTION_ORIGINATE) {
        if (!p->response)
            p->response = ami_packet_dup(pkt);
        return; /* completes on OriginateResponse */
    }
    ami_pending_remove(&c->pending, p);
    complete(c, p, status, pkt, NULL);
}

/* An event carrying the ActionID of a pending list or originate. Returns true when consumed. */
static bool on_action_event(ami_client *c, ami_pending *p, const ami_packet *ev)
{
    if (p->kind == AMI_ACTION_ORIGINATE) {
        if (!sb_slice_eq_ci(ev->name, "OriginateResponse"))
            return false;
        ami_pending_remove(&c->pending, p);
        complete(c, p, ami_packet_is(ev, "Response", "Success") ? 0 : SB_EFAILED, p->response, ev);
        return true;
    }
    const sb_slice *el = ami_packet_get(ev, "EventList");
    if (el && (sb_slice_eq_ci(*el, "Complete") || sb_slice_eq_ci(*el, "cancelled"))) {
        int status = sb_slice_eq_ci(*el, "Complete") ? 0 : SB_EFAILED;
        if (status == 0 && p->items_overflow)
            status = SB_ETOOBIG;
        ami_pending_remove(&c->pending, p);
        complete(c, p, status, p->response, ev);
        return true;
    }
    if (!p->items_overflow && ami_pending_add_item(p, ev) < 0) {
        SB_WARN(LOG_SUB, "pbx %s: list %s too long or out of memory; items dropped", c->name,
                p->id);
        p->items_overflow = true;
    }
    return true;
}

void ami_actions_on_event(ami_client *c, const ami_packet *ev)
{
    c->st.events++;
    if (c->pending.awaiting_events > 0) {
        const sb_slice *aid = ami_packet_get(ev, "ActionID");
        ami_pending *p = aid ? ami_pending_find(&c->pending, *aid) : NULL;
        if (p && p->kind != AMI_ACTION_SIMPLE && on_action_event(c, p, ev))
            return;
    }
    if (c->cbs.on_event)
        c->cbs.on_event(c, ev, c->cbs.ud);
}
