/* routes_json.c: the JSON side of /v1/routes (routes_internal.h): the JSON form of a route
 * file (GET answers it, PUT accepts it and writes it back as a file that cannot smuggle lines),
 * and the pieces of a POST /v1/routes/test answer (actions, trace, the `at` time). */
#include "api/routes_internal.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON <-> route file ---- */

/* A value of a section written as a JSON member: a string, or an array for repeated keys. */
static int kv_to_json(json_t *keys, const route_kv *kv)
{
    json_t *old = json_object_get(keys, kv->name);
    json_t *v = json_string(kv->value);
    if (!v)
        return SB_ENOMEM;
    if (!old)
        return json_object_set_new(keys, kv->name, v) == 0 ? 0 : SB_ENOMEM;
    if (json_is_array(old))
        return json_array_append_new(old, v) == 0 ? 0 : SB_ENOMEM;
    json_t *arr = json_array();
    if (!arr || json_array_append(arr, old) < 0 || json_array_append_new(arr, v) < 0 ||
        json_object_set_new(keys, kv->name, arr) < 0) {
        json_decref(arr);
        json_decref(v);
        return SB_ENOMEM;
    }
    return 0;
}

static json_t *section_json(const route_section *s, int line)
{
    json_t *keys = json_object();
    json_t *o = json_pack("{s:s,s:i}", "name", s->name, "line", line);
    if (!o || !keys)
        goto fail;
    for (size_t i = 0; i < s->nkv; i++)
        if (kv_to_json(keys, &s->kv[i]) < 0)
            goto fail;
    if (json_object_set_new(o, "keys", keys) < 0) {
        keys = NULL;
        goto fail;
    }
    return o;
fail:
    json_decref(keys);
    json_decref(o);
    return NULL;
}

static int rule_line(const route_set *set, const char *name)
{
    for (size_t i = 0; set && i < set->nrules; i++)
        if (strcmp(set->rules[i].name, name) == 0)
            return set->rules[i].line;
    return 0;
}

/* {"routes":[{name,line,keys,rules:[{name,line,keys}]}],"ivrs":[...],"cidmaps":[...]}; only
 * the set named only (when not NULL). Returns owned, or NULL when out of memory. */
json_t *api_routes_db_json(const route_db *db, const char *only)
{
    json_t *routes = json_array(), *ivrs = json_array(), *cidmaps = json_array();
    json_t *out = json_object(), *cur = NULL;
    const route_set *set = NULL;
    if (!routes || !ivrs || !cidmaps || !out)
        goto fail;
    for (size_t i = 0; db && i < db->nsections; i++) {
        const route_section *s = &db->sections[i];
        json_t *o = NULL;
        if (strcmp(s->kind, "route") == 0) {
            set = route_db_set(db, sb_slice_cstr(s->name));
            cur = NULL;
            if (only && strcmp(only, s->name) != 0)
                continue;
            if (!(o = section_json(s, set ? set->line : 0)) ||
                json_object_set_new(o, "rules", json_array()) < 0 ||
                json_array_append_new(routes, o) < 0)
                goto fail_o;
            cur = o;
        } else if (strcmp(s->kind, "rule") == 0) {
            if (!cur)
                continue;
            if (!(o = section_json(s, rule_line(set, s->name))) ||
                json_array_append_new(json_object_get(cur, "rules"), o) < 0)
                goto fail_o;
        } else if (!only && strcmp(s->kind, "ivr") == 0) {
            const route_menu *m = route_db_menu(db, s->name);
            if (!(o = section_json(s, m ? m->line : 0)) || json_array_append_new(ivrs, o) < 0)
                goto fail_o;
        } else if (!only && strcmp(s->kind, "cidmap") == 0) {
            const route_cidmap *m = route_db_cidmap(db, s->name);
            if (!(o = section_json(s, m ? m->line : 0)) || json_array_append_new(cidmaps, o) < 0)
                goto fail_o;
        }
        continue;
    fail_o:
        json_decref(o);
        goto fail;
    }
    /* json_object_set_new() takes the value even when it fails. */
    int bad = json_object_set_new(out, "routes", routes);
    if (!only) {
        bad |= json_object_set_new(out, "ivrs", ivrs);
        bad |= json_object_set_new(out, "cidmaps", cidmaps);
    } else {
        json_decref(ivrs);
        json_decref(cidmaps);
    }
    if (bad) {
        json_decref(out);
        return NULL;
    }
    return out;
fail:
    json_decref(routes);
    json_decref(ivrs);
    json_decref(cidmaps);
    json_decref(out);
    return NULL;
}

/* Text that cannot break the file's line structure: no control characters, at most max bytes
 * (0: no limit), none of the characters of bad. */
bool api_routes_is_clean(const char *s, size_t max, const char *bad)
{
    size_t n = strlen(s);
    if (n == 0 || (max && n > max))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || strchr(bad, s[i]))
            return false;
    return true;
}

/* A value the file format keeps as it is: one line (no control character), and no `;` where the
 * parser starts a comment (first, or after a blank). Empty is fine (`key =`). Found by
 * fuzz_routes_json: `";x"` came back as "". */
static bool is_value_ok(const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == ';' && (i == 0 || s[i - 1] == ' '))
            return false;
    }
    return true;
}

/* Appends one JSON section ({name, keys}) as "[kind name]" and "key = value" lines. 0, or
 * SB_EINVAL with the problem in err. */
static int section_text(json_t *o, const char *kind, sb_buf *out, char *err, size_t errsize)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    json_t *keys = json_object_get(o, "keys"), *v;
    const char *k;
    if (!json_is_object(o) || !name || !api_routes_is_clean(name, 128, "[] \t;=")) {
        snprintf(err, errsize, "a %s needs a name (1-128 characters, no spaces, brackets, ; or =)",
                 kind);
        return SB_EINVAL;
    }
    if (keys && !json_is_object(keys)) {
        snprintf(err, errsize, "[%s %s] keys: expected an object", kind, name);
        return SB_EINVAL;
    }
    int rc = sb_buf_printf(out, "\n[%s %s]\n", kind, name);
    json_object_foreach(keys, k, v)
    {
        if (!api_routes_is_clean(k, 256, "=[;") || k[0] == ' ') {
            snprintf(err, errsize, "[%s %s] key '%.64s': not a key", kind, name, k);
            return SB_EINVAL;
        }
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
            char num[32];
            const char *s = json_string_value(item);
            if (json_is_integer(item)) {
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(item));
                s = num;
            }
            if (!s || !is_value_ok(s)) {
                snprintf(err, errsize,
                         "[%s %s] %s: expected a string on one line, without a ; that the file "
                         "would read as a comment (at the start or after a blank)",
                         kind, name, k);
                return SB_EINVAL;
            }
            rc = sb_buf_printf(out, "%s = %s\n", k, s);
        }
    }
    return rc < 0 ? SB_ENOMEM : 0;
}

/* The route file of the JSON form api_routes_db_json() writes (lines and unknown members ignored).
 * 0 and out filled, or SB_EINVAL with the problem in err. */
int api_routes_json_to_text(json_t *j, sb_buf *out, char *err, size_t errsize)
{
    static const char *const lists[] = {"routes", "ivrs", "cidmaps"};
    static const char *const kinds[] = {"route", "ivr", "cidmap"};
    int rc = 0;
    if (!json_is_object(j)) {
        snprintf(err, errsize, "expected an object with routes, ivrs and cidmaps");
        return SB_EINVAL;
    }
    if (sb_buf_puts(out, "; switchboard routes (PUT /v1/routes as JSON)\n") < 0)
        return SB_ENOMEM;
    for (size_t l = 0; rc == 0 && l < 3; l++) {
        json_t *arr = json_object_get(j, lists[l]), *o;
        size_t i;
        if (arr && !json_is_array(arr)) {
            snprintf(err, errsize, "%s: expected an array", lists[l]);
            return SB_EINVAL;
        }
        json_array_foreach(arr, i, o)
        {
            if ((rc = section_text(o, kinds[l], out, err, errsize)) < 0)
                return rc;
            json_t *rules = json_object_get(o, "rules"), *ro;
            size_t k;
            if (l == 0 && rules && !json_is_array(rules)) {
                snprintf(err, errsize, "[route %s] rules: expected an array",
                         json_string_value(json_object_get(o, "name")));
                return SB_EINVAL;
            }
            json_array_foreach(l == 0 ? rules : NULL, k, ro)
            {
                if ((rc = section_text(ro, "rule", out, err, errsize)) < 0)
                    return rc;
            }
        }
    }
    return rc;
}

/* ---- pieces of a POST /v1/routes/test answer ---- */

/* "2026-11-25T10:00[:SS]" in tz, or with "Z" / "+HH:MM" / "-HH:MM" (as `route test --at`). */
int api_routes_parse_at(const char *s, const char *tz, time_t *out)
{
    struct tm tm = {0}, lt;
    int y, mo, d, h, mi, sec = 0, used = 0, u2 = 0;
    if (sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d%n", &y, &mo, &d, &h, &mi, &used) != 5)
        return SB_EINVAL;
    const char *p = s + used;
    if (*p == ':') {
        if (sscanf(p, ":%2d%n", &sec, &u2) != 1)
            return SB_EINVAL;
        p += u2;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (*p == 'Z' && p[1] == 0) {
        *out = t;
        return 0;
    }
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        long off =
            (((p[1] - '0') * 10 + (p[2] - '0')) * 60 + (p[4] - '0') * 10 + (p[5] - '0')) * 60L;
        *out = *p == '+' ? t - off : t + off;
        return 0;
    }
    if (*p)
        return SB_EINVAL;
    /* Local time in tz: subtract the offset, then correct once across a transition. */
    if (route_tz_localtime(tz, t, &lt) < 0 || route_tz_localtime(tz, t - lt.tm_gmtoff, &lt) < 0)
        return SB_EINVAL;
    *out = t - lt.tm_gmtoff;
    return 0;
}

/* {text, kind, app?, data?} of an action, with the IVR menu or caller-ID map it leads to. */
json_t *api_routes_action_json(const route_db *db, const route_action *a, const route_vars *v)
{
    json_t *o = json_pack("{s:s,s:s}", "text", a->text ? a->text : "", "kind",
                          route_action_kind_name(a->kind));
    const char *app;
    sb_buf data;
    sb_buf_init(&data, 1 << 16);
    if (o && route_action_app(a, v, &app, &data) == 0) {
        json_object_set_new(o, "app", json_string(app));
        json_object_set_new(o, "data", json_string(data.data ? data.data : ""));
    }
    sb_buf_free(&data);
    if (o && a->kind == ROUTE_ACT_IVR) {
        const route_menu *m = route_db_menu(db, a->args[0]);
        json_t *digits = json_object();
        for (size_t i = 0; m && digits && i < m->nentries; i++) {
            char k[2] = {m->entries[i].digit, 0};
            json_object_set_new(digits, k, json_string(m->entries[i].action.text));
        }
        json_object_set_new(o, "menu",
                            json_pack("{s:s,s:s,s:i,s:i,s:o*}", "name", m->name, "prompt",
                                      m->prompt ? m->prompt : "", "timeoutMs",
                                      (json_int_t)m->timeout_ms, "retries", (json_int_t)m->retries,
                                      "digits", digits));
    } else if (o && a->kind == ROUTE_ACT_CIDMAP) {
        const route_cidmap *m = route_db_cidmap(db, a->args[0]);
        const char *dest = route_cidmap_lookup(m, v->caller);
        bool is_hit = false;
        for (size_t i = 0; i < m->nmap; i++)
            is_hit |= sb_slice_eq(sb_slice_cstr(m->map[i].name), v->caller);
        json_t *c = json_pack("{s:s,s:b,s:s?}", "name", m->name, "hit", is_hit, "extension", dest);
        if (c && dest) {
            sb_buf t;
            sb_buf_init(&t, 4096);
            route_vars v2 = *v;
            v2.dest = sb_slice_cstr(dest);
            if (route_expand(m->target, &v2, &t) == 0) {
                json_object_set_new(c, "app", json_string("Dial"));
                json_object_set_new(c, "data", json_string(t.data ? t.data : ""));
            }
            sb_buf_free(&t);
        }
        json_object_set_new(o, "cidmap", c);
    }
    return o;
}

/* Splits trace into an array of its lines. */
json_t *api_routes_trace_json(const sb_buf *trace)
{
    json_t *arr = json_array();
    const char *p = trace->data ? trace->data : "";
    while (arr && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_array_append_new(arr, json_stringn(p, n));
        p += n + (nl ? 1 : 0);
    }
    return arr;
}
