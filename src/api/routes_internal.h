/* routes_internal.h: what routes.c (the /v1/routes handlers) and routes_json.c (the JSON form of
 * route files, the pieces of a route test answer) share. */
#ifndef SB_API_ROUTES_INTERNAL_H
#define SB_API_ROUTES_INTERNAL_H

#include "core/buf.h"
#include "routing/route.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* {"routes":[{name,line,keys,rules:[{name,line,keys}]}],"ivrs":[...],"cidmaps":[...]} of db
 * (borrowed; NULL: empty lists); with only, just that set ("routes" of one). Returns owned, or
 * NULL when out of memory. */
json_t *api_routes_db_json(const route_db *db, const char *only);

/* The route file of the JSON form above (lines and unknown members ignored) appended to out. 0,
 * SB_EINVAL with the problem in err (wrong shape, a name or value that would break a line), or
 * SB_ENOMEM. j borrowed. */
int api_routes_json_to_text(json_t *j, sb_buf *out, char *err, size_t errsize);

/* true when s is 1..max bytes (max 0: no limit) with no control character and none of bad. */
bool api_routes_is_clean(const char *s, size_t max, const char *bad);

/* {text, kind, app?, data?, menu? | cidmap?} of an action for the facts in v. Returns owned or
 * NULL. db, a and v borrowed. */
json_t *api_routes_action_json(const route_db *db, const route_action *a, const route_vars *v);

/* The lines of a route_decide() trace as an array of strings. Returns owned or NULL. */
json_t *api_routes_trace_json(const sb_buf *trace);

/* "2026-11-25T10:00[:SS]" in zone tz, or ending in "Z" / "+HH:MM" / "-HH:MM" (as `switchboard
 * route test --at`). 0 and *out, or SB_EINVAL. Loop thread (time zones switch TZ). */
int api_routes_parse_at(const char *s, const char *tz, time_t *out);

#endif
