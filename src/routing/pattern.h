/* pattern.h: Asterisk dial patterns (`100`, `_NXXNXXXXXX`, `_9[1-5]X.`, `_X!`), compiled once,
 * matched against a dialed number, and ordered exactly as Asterisk orders extensions.
 *
 * The syntax and the ordering follow Asterisk's main/pbx.c (ext_cmp, ext_cmp_pattern_pos,
 * _extension_match_core): a literal extension beats every pattern; patterns compare element by
 * element, smaller character sets first, then `.`, then `!`, then end of pattern. A table of
 * patterns is sorted once so that finding the winner for a dialed number is a scan of a few
 * candidates (see docs/routing.md).
 */
#ifndef SB_ROUTING_PATTERN_H
#define SB_ROUTING_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/slice.h"

/* Longest accepted pattern text in bytes (Asterisk's AST_MAX_EXTENSION). */
#define ROUTE_PATTERN_MAX 80

typedef struct route_pattern route_pattern;
typedef struct route_pattern_table route_pattern_table;

/* Why a pattern was rejected: a byte offset into the text and a human-readable message. */
typedef struct route_pattern_error {
    size_t offset;
    char message[96];
} route_pattern_error;

/* Compiles text (borrowed, not NUL-terminated). On success *out is owned (free with
 * route_pattern_free()) and 0 is returned; otherwise SB_EINVAL (with *err filled when err is not
 * NULL: empty pattern, unclosed `[`, empty or reversed set, text after `.` or `!`, `/`, spaces or
 * control characters, longer than ROUTE_PATTERN_MAX) or SB_ENOMEM. */
int route_pattern_compile(sb_slice text, route_pattern **out, route_pattern_error *err);

/* Releases a pattern (NULL is fine). */
void route_pattern_free(route_pattern *p);

/* The pattern text as given to compile (borrowed, NUL-terminated, valid until freed). */
const char *route_pattern_text(const route_pattern *p);

/* True for `_` patterns, false for literal extensions. */
bool route_pattern_is_pattern(const route_pattern *p);

/* Does dialed (borrowed) match p, as Asterisk's ast_extension_match() decides? `-` in either is
 * ignored; X, Z, N are case-insensitive, every other character is compared exactly. */
bool route_pattern_match(const route_pattern *p, sb_slice dialed);

/* Asterisk's extension order: <0 when a wins over b, >0 when b wins, 0 when Asterisk would call
 * them the same extension (e.g. `_1-2` and `_12`). */
int route_pattern_cmp(const route_pattern *a, const route_pattern *b);

/* Builds a lookup table over pats[0..n-1] (borrowed: the patterns must outlive the table).
 * Returns 0 and an owned *out (free with route_pattern_table_free()), SB_EINVAL when n is too big
 * (more than 1,000,000) or a pattern is NULL, or SB_ENOMEM. */
int route_pattern_table_new(const route_pattern *const *pats, size_t n, route_pattern_table **out);

/* Releases a table (NULL is fine). */
void route_pattern_table_free(route_pattern_table *t);

/* The index (into the array given to route_pattern_table_new) of the pattern Asterisk would
 * pick for dialed, or -1 when none matches. Patterns that compare equal are taken in array
 * order. */
long route_pattern_table_best(const route_pattern_table *t, sb_slice dialed);

#endif
