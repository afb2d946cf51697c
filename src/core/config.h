/* config.h: switchboard.conf, the daemon's INI configuration file (docs/configuration.md).
 *
 * The file is parsed with libinih into an sb_config: [general] and every [pbx NAME] are checked
 * key by key (an unknown key, a bad value, a duplicate or a missing key is an error naming
 * file:line, section and key); the sections that later modules own ([http], [agi], [store],
 * [sink NAME], [hubspot], [dialer]) are kept as ordered key/value lists for those modules to read.
 * Secrets (secret, the contents of secret_file, the value of secret_env) are resolved at load time
 * and never appear in an error message or in sb_config_describe()'s output.
 */
#ifndef SB_CORE_CONFIG_H
#define SB_CORE_CONFIG_H

#include "core/buf.h"
#include "core/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest line libinih (Debian's build) reads whole; longer lines are an error. */
#define SB_CONFIG_MAX_LINE 196
/* The largest configuration file or secret_file accepted. */
#define SB_CONFIG_MAX_FILE (1024 * 1024)
#define SB_CONFIG_MAX_SECRET 1024

/* Where a PBX secret came from (shown masked in summaries, never the value). */
typedef enum sb_secret_source {
    SB_SECRET_INLINE, /* secret = ... */
    SB_SECRET_FILE,   /* secret_file = PATH (first line of the file) */
    SB_SECRET_ENV,    /* secret_env = NAME (environment variable) */
} sb_secret_source;

typedef struct sb_config_pbx {
    char *name;     /* from [pbx NAME]: letters, digits, '_', '-', '.' */
    int line;       /* line of the section header */
    char *host;     /* default "127.0.0.1" */
    int port;       /* default 5038 */
    char *username; /* required */
    char *secret;   /* required (from one of the three sources); NEVER print it */
    sb_secret_source secret_source;
    char *secret_ref; /* the file path or variable name (NULL for inline) */
    bool md5;         /* auth = md5 (Challenge + MD5 key); default plain */
    char *events;     /* "on", "off" or a comma list of classes; default "on" */
    char **filters;   /* Filter expressions in file order */
    size_t nfilters;
    uint32_t ping_interval_ms, stall_timeout_ms, reconnect_min_ms, reconnect_max_ms;
    uint32_t action_timeout_ms, connect_timeout_ms;
} sb_config_pbx;

/* One key = value line of a section kept for a later module. */
typedef struct sb_config_kv {
    char *key;
    char *value;
    int line;
} sb_config_kv;

/* A section kept verbatim: [http], [agi], [store], [sink NAME], [hubspot], [dialer]. */
typedef struct sb_config_section {
    char *kind; /* "http", "sink", ... */
    char *name; /* [sink NAME]: the name; NULL for sections without one */
    int line;
    sb_config_kv *kv;
    size_t nkv;
} sb_config_section;

typedef struct sb_config {
    char *path;             /* the file it was read from ("<string>" for sb_config_parse()) */
    sb_log_level log_level; /* [general] log_level, default info */
    bool log_json;          /* [general] log_format = json */
    sb_config_pbx *pbx;
    size_t npbx;
    sb_config_section *sections;
    size_t nsections;
} sb_config;

/* Reads and checks the file at path (borrowed). Returns 0 and *out (owned: free with
 * sb_config_free()), or SB_EIO (cannot read), SB_ECONFIG (bad content) or SB_ENOMEM, with one line
 * "FILE:LINE: [section] key: problem" in err (errsize bytes). Secrets never appear in err. */
int sb_config_load(const char *path, sb_config **out, char *err, size_t errsize);
/* The same for text in memory (borrowed); name stands for the file in messages and is the base for
 * relative secret_file paths (its directory). */
int sb_config_parse(const char *text, size_t len, const char *name, sb_config **out, char *err,
                    size_t errsize);
/* An empty configuration (no file): defaults only. Returns owned, or NULL when out of memory. */
sb_config *sb_config_new_default(void);
void sb_config_free(sb_config *cfg);

/* Returns a PBX by name (borrowed from cfg), or NULL. */
const sb_config_pbx *sb_config_find_pbx(const sb_config *cfg, const char *name);
/* True when two PBX entries would produce the same connection (secrets compared too). */
bool sb_config_pbx_equal(const sb_config_pbx *a, const sb_config_pbx *b);
/* Adds a PBX entry built by the caller (demo mode); every string is copied. Returns 0, SB_EEXIST
 * (the name is taken) or SB_ENOMEM. */
int sb_config_add_pbx(sb_config *cfg, const sb_config_pbx *p);
/* Fills p with the defaults of a [pbx] section (strings borrowed from static storage). */
void sb_config_pbx_defaults(sb_config_pbx *p);

/* Finds a kept section by kind and name (name NULL for unnamed ones); borrowed, or NULL. */
const sb_config_section *sb_config_section_find(const sb_config *cfg, const char *kind,
                                                const char *name);
/* Value of the last key in a kept section (borrowed), or NULL. */
const char *sb_config_section_get(const sb_config_section *s, const char *key);

/* Appends a human summary (one item per line, secrets masked) to out. 0 or SB_ENOMEM/SB_ETOOBIG. */
int sb_config_describe(const sb_config *cfg, sb_buf *out);

/* Parses a duration: "250ms", "10s", "2m", "1h" or a bare number of seconds. 0 or SB_EINVAL. */
int sb_config_parse_duration(const char *s, uint32_t *ms);

#endif
