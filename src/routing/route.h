/* route.h: the routing model: route sets (named by the FastAGI script, e.g. `route`,
 * `inbound`) holding ordered rules, IVR menus and caller-ID maps; the route file format
 * (docs/routing.md) with line-precise validation; and the pure decision: which rule takes a call
 * and why.
 *
 * A route_db is immutable once loaded: the runner (runner.h) and `switchboard route test` only
 * read it, and a reload swaps in a new one. Which of several matching rules wins is Asterisk's
 * extension order of their `match` patterns (pattern.h); rules with equal patterns go in file
 * order; a rule whose conditions (caller, PBX, hours) fail passes the call to the next one.
 */
#ifndef SB_ROUTING_ROUTE_H
#define SB_ROUTING_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/slice.h"
#include "routing/pattern.h"

typedef enum route_action_kind {
    ROUTE_ACT_NONE = 0,
    ROUTE_ACT_DIAL,       /* dial T1 [T2 ...] [timeout=S] [options=O]: Dial(T1&T2,S,O) */
    ROUTE_ACT_QUEUE,      /* queue NAME [timeout=S]: Queue(NAME,,,,S) */
    ROUTE_ACT_IVR,        /* ivr MENU */
    ROUTE_ACT_VOICEMAIL,  /* voicemail BOX[@CONTEXT] [options=O]: VoiceMail(BOX,O) */
    ROUTE_ACT_CONFERENCE, /* conference NAME: ConfBridge(NAME) */
    ROUTE_ACT_PLAYBACK,   /* playback PROMPT [PROMPT ...]: Playback(P1&P2), then hang up */
    ROUTE_ACT_HANGUP,     /* hangup */
    ROUTE_ACT_SET,    /* set NAME=VALUE [...]: set variables, give the call back to the dialplan */
    ROUTE_ACT_DECIDE, /* decide URL [timeout=S]: ask an HTTP endpoint; the rule's fallback */
    ROUTE_ACT_CIDMAP, /* cidmap MAP: caller number -> extension, dialed with the map's target */
} route_action_kind;

/* One action. Every string is owned by the route_db (templates are expanded at run time). */
typedef struct route_action {
    route_action_kind kind;
    char **args; /* targets, prompts, NAME=VALUE pairs, or the one name / URL */
    size_t nargs;
    unsigned timeout_ms; /* dial/queue ring time (0: none), decide timeout (default 1000) */
    char *options;       /* dial / voicemail options, or NULL */
    char *text;          /* the action as written (export, logs) */
    int line;            /* where it was written (0 when not from a file) */
} route_action;

typedef struct route_kv {
    char *name;
    char *value;
} route_kv;

/* A weekly range: days is a bit set (bit 0 Sunday .. bit 6 Saturday), minutes since midnight. */
typedef struct route_hours {
    uint8_t days;
    uint16_t from_min, to_min; /* [from, to) */
} route_hours;

typedef struct route_rule {
    char *name;
    int line;
    route_pattern *match;
    route_pattern **callers; /* caller number must match one of them (none: any caller) */
    size_t ncallers;
    char **pbx; /* the call's PBX must be one of them (none: any) */
    size_t npbx;
    char *tz;           /* time zone for hours/holidays (NULL: the set's, else UTC) */
    route_hours *hours; /* open hours; none: always open */
    size_t nhours;
    uint32_t *holidays; /* YYYYMMDD, or MMDD for every year: closed all day */
    size_t nholidays;
    route_action closed;   /* taken when closed; ROUTE_ACT_NONE: the rule does not apply then */
    route_pattern **allow; /* calling extensions allowed without a PIN (none: everybody) */
    size_t nallow;
    char *pin_hash; /* libsodium crypto_pwhash_str() of the PIN, or NULL */
    route_kv *set;  /* variables set before the action */
    size_t nset;
    route_action action;
    route_action fallback; /* decide: on timeout, error or garbage (default hangup) */
    size_t order;          /* file order within its set */
} route_rule;

typedef struct route_set {
    char *name;
    int line;
    char *tz;
    int answer; /* 1 yes, 0 no, -1 auto (answer before audio: PIN, IVR, playback) */
    char *pin_prompt, *pin_wrong, *pin_goodbye;
    unsigned pin_tries, pin_max_digits, pin_timeout_ms;
    route_rule *rules;
    size_t nrules;
    size_t *rank;               /* rule indexes in Asterisk's order (stable) */
    route_pattern_table *table; /* over the rules' match patterns */
    const route_pattern **pats; /* the table's array (the table borrows it) */
    bool has_conditions;        /* some rule has caller/pbx/hours/holidays conditions */
} route_set;

typedef struct route_menu_entry {
    char digit; /* 0-9 * # */
    route_action action;
} route_menu_entry;

typedef struct route_menu {
    char *name;
    int line;
    char *prompt;
    char *invalid_prompt;
    unsigned timeout_ms;
    unsigned retries;
    route_menu_entry *entries;
    size_t nentries;
    route_action fail; /* after the retries (default hangup) */
} route_menu;

typedef struct route_cidmap {
    char *name;
    int line;
    char *target;  /* template, ${DEST} is the mapped extension; default PJSIP/${DEST} */
    char *def;     /* extension for callers not in the map, or NULL (then hang up) */
    route_kv *map; /* caller number -> extension */
    size_t nmap;
    unsigned timeout_ms;
} route_cidmap;

/* A section as written, kept for export (key order and text preserved). */
typedef struct route_section {
    char *kind; /* "route", "rule", "ivr", "cidmap" */
    char *name;
    route_kv *kv;
    size_t nkv;
} route_section;

typedef struct route_db {
    route_section *sections;
    size_t nsections;
    route_set *sets;
    size_t nsets;
    route_menu *menus;
    size_t nmenus;
    route_cidmap *cidmaps;
    size_t ncidmaps;
} route_db;

/* Parses a route file (text borrowed; name is used in messages). Returns 0 and an owned *out
 * (free with route_db_free()), or SB_EINVAL with one line "NAME:LINE: [section] key: problem" in
 * err, or SB_ENOMEM. Every reference (ivr, cidmap names), pattern, time zone, hour range and
 * action is checked. */
int route_db_parse(const char *text, size_t len, const char *name, route_db **out, char *err,
                   size_t errsize);

/* Writes db in the file format (parses back to the same db). 0 or an sb_buf error. */
int route_db_export(const route_db *db, sb_buf *out);

void route_db_free(route_db *db);

/* Lookups by name; borrowed from db, or NULL. */
const route_set *route_db_set(const route_db *db, sb_slice name);
const route_menu *route_db_menu(const route_db *db, const char *name);
const route_cidmap *route_db_cidmap(const route_db *db, const char *name);

/* Parses one action text ("dial PJSIP/${EXTEN} timeout=20"). 0, SB_EINVAL with a message in err,
 * or SB_ENOMEM. The caller frees with route_action_clear(). */
int route_action_parse(const char *text, route_action *out, char *err, size_t errsize);
void route_action_clear(route_action *a);
const char *route_action_kind_name(route_action_kind k);

/* The facts a decision is made on. Slices are borrowed for the call. */
typedef struct route_facts {
    sb_slice dialed;
    sb_slice caller;
    sb_slice pbx;
    time_t now;
} route_facts;

/* The outcome of route_decide(). Pointers borrow from the db. */
typedef struct route_decision {
    const route_rule *rule;     /* NULL: no rule matched */
    const route_action *action; /* the action to run (the rule's, or its closed action) */
    bool is_closed;             /* outside the rule's hours or on a holiday */
    bool needs_pin;             /* the caller is not in the rule's allow list and a PIN is set */
    bool is_denied;             /* not allowed, and no PIN to offer: hang up */
    unsigned tried;             /* rules looked at */
} route_decision;

/* Decides which rule of set takes the call. When trace is not NULL, one line per rule looked at
 * is appended ("rule NAME (_3X): no: caller 555 not in _2XX"). 0, or SB_ENOTFOUND when no rule
 * matched (d->rule NULL). */
int route_decide(const route_set *set, const route_facts *f, route_decision *d, sb_buf *trace);

/* Is the rule open at time t (hours and holidays in its zone)? */
bool route_rule_is_open(const route_set *set, const route_rule *r, time_t t);

/* Local broken-down time of t in the IANA zone tz (NULL or "" = UTC). 0, or SB_EINVAL for an
 * unknown zone. Thread-safe; uses the system tz database (see docs/routing.md). */
int route_tz_localtime(const char *tz, time_t t, struct tm *out);

/* Is tz a zone of the system tz database? */
bool route_tz_is_valid(const char *tz);

/* Values a template may use: ${EXTEN}, ${CALLERID(num)}, ${CALLERID(name)}, ${DEST} (the
 * caller-ID map's extension), with Asterisk's substring syntax ${VAR:offset} and
 * ${VAR:offset:length} (a negative offset counts from the end). Slices borrowed for the call. */
typedef struct route_vars {
    sb_slice exten;
    sb_slice caller;
    sb_slice caller_name;
    sb_slice dest;
} route_vars;

/* Appends tpl with every ${...} replaced. 0, SB_EINVAL (unknown variable, unclosed ${), or an
 * sb_buf error. route_template_check() validates a template without values. */
int route_expand(const char *tpl, const route_vars *v, sb_buf *out);
int route_template_check(const char *tpl);

/* The dialplan application an action runs and its argument, templates expanded: Dial
 * "T1&T2[,secs[,options]]", Queue "NAME,,,,secs", VoiceMail "BOX[,options]", ConfBridge "NAME",
 * Playback "P1&P2". *app is static text. 0, SB_ENOTFOUND (ivr, hangup, set, decide, cidmap: no
 * application), SB_EINVAL (a template) or an sb_buf error. */
int route_action_app(const route_action *a, const route_vars *v, const char **app, sb_buf *data);

/* The extension a caller-ID map gives caller: the mapped one, else the default, else NULL.
 * Borrowed from the map. */
const char *route_cidmap_lookup(const route_cidmap *m, sb_slice caller);

#endif
