/* route.c: the decision (which rule of a route set takes a call, and why), its conditions
 * (caller, PBX, open hours, holidays, allowed extensions), target templates, and the db's
 * lookups and release.
 */
#include "routing/route.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pats_free(route_pattern **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        route_pattern_free(p[i]);
    free(p);
}

static void strs_free(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

static void kvs_free(route_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

void route_db_free(route_db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->nsections; i++) {
        free(db->sections[i].kind);
        free(db->sections[i].name);
        kvs_free(db->sections[i].kv, db->sections[i].nkv);
    }
    free(db->sections);
    for (size_t i = 0; i < db->nsets; i++) {
        route_set *s = &db->sets[i];
        for (size_t j = 0; j < s->nrules; j++) {
            route_rule *r = &s->rules[j];
            free(r->name);
            route_pattern_free(r->match);
            pats_free(r->callers, r->ncallers);
            pats_free(r->allow, r->nallow);
            strs_free(r->pbx, r->npbx);
            free(r->tz);
            free(r->hours);
            free(r->holidays);
            route_action_clear(&r->closed);
            route_action_clear(&r->action);
            route_action_clear(&r->fallback);
            free(r->pin_hash);
            kvs_free(r->set, r->nset);
        }
        free(s->rules);
        free(s->rank);
        route_pattern_table_free(s->table);
        free(s->pats);
        free(s->name);
        free(s->tz);
        free(s->pin_prompt);
        free(s->pin_wrong);
        free(s->pin_goodbye);
    }
    free(db->sets);
    for (size_t i = 0; i < db->nmenus; i++) {
        route_menu *m = &db->menus[i];
        free(m->name);
        free(m->prompt);
        free(m->invalid_prompt);
        for (size_t j = 0; j < m->nentries; j++)
            route_action_clear(&m->entries[j].action);
        free(m->entries);
        route_action_clear(&m->fail);
    }
    free(db->menus);
    for (size_t i = 0; i < db->ncidmaps; i++) {
        route_cidmap *m = &db->cidmaps[i];
        free(m->name);
        free(m->target);
        free(m->def);
        kvs_free(m->map, m->nmap);
    }
    free(db->cidmaps);
    free(db);
}

const route_set *route_db_set(const route_db *db, sb_slice name)
{
    for (size_t i = 0; db && i < db->nsets; i++)
        if (sb_slice_eq(sb_slice_cstr(db->sets[i].name), name))
            return &db->sets[i];
    return NULL;
}

const route_menu *route_db_menu(const route_db *db, const char *name)
{
    for (size_t i = 0; db && i < db->nmenus; i++)
        if (db->menus[i].name && strcmp(db->menus[i].name, name) == 0)
            return &db->menus[i];
    return NULL;
}

const route_cidmap *route_db_cidmap(const route_db *db, const char *name)
{
    for (size_t i = 0; db && i < db->ncidmaps; i++)
        if (db->cidmaps[i].name && strcmp(db->cidmaps[i].name, name) == 0)
            return &db->cidmaps[i];
    return NULL;
}

bool route_rule_is_open(const route_set *set, const route_rule *r, time_t t)
{
    if (!r->nhours && !r->nholidays)
        return true;
    struct tm tm;
    const char *tz = r->tz ? r->tz : set->tz;
    if (route_tz_localtime(tz, t, &tm) < 0)
        return false;
    uint32_t ymd = (uint32_t)(tm.tm_year + 1900) * 10000 + (uint32_t)(tm.tm_mon + 1) * 100 +
                   (uint32_t)tm.tm_mday;
    uint32_t md = ymd % 10000;
    for (size_t i = 0; i < r->nholidays; i++)
        if (r->holidays[i] == ymd || r->holidays[i] == md)
            return false;
    if (!r->nhours)
        return true;
    unsigned minute = (unsigned)(tm.tm_hour * 60 + tm.tm_min);
    for (size_t i = 0; i < r->nhours; i++) {
        const route_hours *h = &r->hours[i];
        if ((h->days & (1u << tm.tm_wday)) && minute >= h->from_min && minute < h->to_min)
            return true;
    }
    return false;
}

static bool any_match(route_pattern *const *p, size_t n, sb_slice s)
{
    for (size_t i = 0; i < n; i++)
        if (route_pattern_match(p[i], s))
            return true;
    return false;
}

/* Conditions that pass a call on to the next rule: caller, PBX, hours without a closed action.
 * Returns NULL when the rule applies, or why not. */
static const char *rule_rejects(const route_set *set, const route_rule *r, const route_facts *f,
                                bool *closed)
{
    *closed = false;
    if (r->ncallers && !any_match(r->callers, r->ncallers, f->caller))
        return "caller does not match";
    if (r->npbx) {
        bool ok = false;
        for (size_t i = 0; i < r->npbx && !ok; i++)
            ok = sb_slice_eq(sb_slice_cstr(r->pbx[i]), f->pbx);
        if (!ok)
            return "other PBX";
    }
    if (!route_rule_is_open(set, r, f->now)) {
        if (r->closed.kind == ROUTE_ACT_NONE)
            return "closed (no closed action)";
        *closed = true;
    }
    return NULL;
}

static void fill(const route_rule *r, const route_facts *f, bool closed, route_decision *d)
{
    d->rule = r;
    d->is_closed = closed;
    d->action = closed ? &r->closed : &r->action;
    if (!closed && (r->nallow || r->pin_hash) &&
        !(r->nallow && any_match(r->allow, r->nallow, f->caller))) {
        if (r->pin_hash)
            d->needs_pin = true;
        else
            d->is_denied = true;
    }
}

int route_decide(const route_set *set, const route_facts *f, route_decision *d, sb_buf *trace)
{
    memset(d, 0, sizeof *d);
    bool closed;
    if (!trace) {
        /* Fast path: the best pattern; its conditions usually hold. */
        long best = route_pattern_table_best(set->table, f->dialed);
        if (best < 0) {
            d->tried = 0;
            return SB_ENOTFOUND;
        }
        const route_rule *r = &set->rules[best];
        d->tried = 1;
        if (!rule_rejects(set, r, f, &closed)) {
            fill(r, f, closed, d);
            return 0;
        }
        if (!set->has_conditions)
            return SB_ENOTFOUND;
    }
    for (size_t i = 0; i < set->nrules; i++) {
        const route_rule *r = &set->rules[set->rank[i]];
        if (!route_pattern_match(r->match, f->dialed)) {
            if (trace)
                sb_buf_printf(trace, "  rule %-16s %-14s no: %.*s does not match\n", r->name,
                              route_pattern_text(r->match), (int)f->dialed.len, f->dialed.ptr);
            continue;
        }
        d->tried++;
        const char *why = rule_rejects(set, r, f, &closed);
        if (why) {
            if (trace)
                sb_buf_printf(trace, "  rule %-16s %-14s no: %s\n", r->name,
                              route_pattern_text(r->match), why);
            continue;
        }
        fill(r, f, closed, d);
        if (trace) {
            sb_buf_printf(trace, "  rule %-16s %-14s YES%s%s%s\n", r->name,
                          route_pattern_text(r->match), closed ? " (closed now)" : "",
                          d->needs_pin ? " (caller not allowed: PIN asked)" : "",
                          d->is_denied ? " (caller not allowed: refused)" : "");
            for (size_t j = i + 1; j < set->nrules; j++) {
                const route_rule *o = &set->rules[set->rank[j]];
                sb_buf_printf(trace, "  rule %-16s %-14s not tried\n", o->name,
                              route_pattern_text(o->match));
            }
        }
        return 0;
    }
    return SB_ENOTFOUND;
}

/* ---- templates ---- */

static int lookup_var(const char *name, size_t n, const route_vars *v, sb_slice *out)
{
    static const char *const names[] = {"EXTEN", "CALLERID(num)", "CALLERID(name)", "DEST"};
    for (size_t i = 0; i < 4; i++) {
        if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0) {
            if (v)
                *out = i == 0 ? v->exten : i == 1 ? v->caller : i == 2 ? v->caller_name : v->dest;
            return 0;
        }
    }
    return SB_EINVAL;
}

static int parse_int(const char **p, const char *end, long *out)
{
    const char *q = *p;
    bool neg = false;
    long x = 0;
    if (q < end && *q == '-') {
        neg = true;
        q++;
    }
    if (q == end || *q < '0' || *q > '9')
        return SB_EINVAL;
    while (q < end && *q >= '0' && *q <= '9') {
        x = x * 10 + (*q - '0');
        if (x > 100000)
            return SB_EINVAL;
        q++;
    }
    *out = neg ? -x : x;
    *p = q;
    return 0;
}

static int expand(const char *tpl, const route_vars *v, sb_buf *out)
{
    const char *p = tpl;
    int rc = 0;
    while (*p && rc == 0) {
        const char *d = strstr(p, "${");
        if (!d) {
            if (out)
                rc = sb_buf_puts(out, p);
            break;
        }
        if (out && d > p)
            rc = sb_buf_append(out, p, (size_t)(d - p));
        const char *e = strchr(d + 2, '}');
        if (!e)
            return SB_EINVAL;
        const char *name = d + 2;
        /* The variable name ends at ':' (substring), but CALLERID(num) has no ':' inside. */
        const char *colon = memchr(name, ':', (size_t)(e - name));
        size_t nlen = (size_t)((colon ? colon : e) - name);
        sb_slice val = {"", 0};
        if (lookup_var(name, nlen, v, &val) < 0)
            return SB_EINVAL;
        if (colon) {
            const char *q = colon + 1;
            long off, len = -1;
            if (parse_int(&q, e, &off) < 0)
                return SB_EINVAL;
            if (q < e) {
                if (*q != ':')
                    return SB_EINVAL;
                q++;
                if (parse_int(&q, e, &len) < 0 || len < 0)
                    return SB_EINVAL;
            }
            if (q != e)
                return SB_EINVAL;
            size_t start = off >= 0 ? ((size_t)off > val.len ? val.len : (size_t)off)
                                    : ((size_t)-off > val.len ? 0 : val.len - (size_t)-off);
            size_t n = val.len - start;
            if (len >= 0 && (size_t)len < n)
                n = (size_t)len;
            val.ptr += start;
            val.len = n;
        }
        if (out && val.len)
            rc = sb_buf_append(out, val.ptr, val.len);
        p = e + 1;
    }
    return rc;
}

int route_expand(const char *tpl, const route_vars *v, sb_buf *out)
{
    size_t before = out->len;
    int rc = expand(tpl, v, out);
    if (rc < 0) {
        out->len = before;
        if (out->data)
            out->data[before] = 0;
    }
    return rc;
}

int route_template_check(const char *tpl)
{
    return expand(tpl, NULL, NULL);
}
