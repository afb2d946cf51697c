/* proto.h: the AGI wire protocol without sockets: the agi_* header parser, the reply parser and
 * command formatting with res_agi's quoting rules.
 *
 * Both parsers are incremental: bytes go in as they arrive, in any chunk sizes, and complete
 * items come out. Every input is capped (header bytes, variable count, reply bytes). The ground
 * truth is ../shared/fixtures/asterisk-22.10.1/agi/ (see docs/agi.md).
 */
#ifndef SB_AGI_PROTO_H
#define SB_AGI_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/slice.h"

/* Results of the incremental calls (errors are negative SB_* codes). */
enum {
    AGI_NEED_MORE = 0, /* feed more bytes */
    AGI_DONE = 1,      /* header: complete */
    AGI_REPLY = 1,     /* reply parser: a reply is in *out */
    AGI_HANGUP = 2,    /* reply parser: a `HANGUP` notification line (not a reply) */
};

#define AGI_HEADER_MAX_DEFAULT 8192 /* a real header is about 600 bytes */
#define AGI_VARS_MAX_DEFAULT 128
#define AGI_REPLY_MAX_DEFAULT 8192
#define AGI_COMMAND_MAX 2048 /* res_agi reads commands into AGI_BUF_LEN (2048) bytes */

/* ---- header ---- */

typedef struct agi_var {
    sb_slice name;
    sb_slice value;
} agi_var;

/* A parsed agi_* header. Every slice points into memory the request owns. */
typedef struct agi_request {
    agi_var *vars; /* every `name: value` line, in order */
    size_t nvars;
    sb_slice *args; /* agi_arg_1..agi_arg_N as args[0..N-1]; a missing one is empty */
    size_t nargs;
    sb_slice script; /* agi_network_script before `?`, URL-decoded; empty when absent */
    agi_var *params; /* its query parameters, URL-decoded (`+` stays `+`: phone numbers) */
    size_t nparams;
    char *raw; /* owned: the header bytes */
    void *mem; /* owned: the arrays and decoded strings */
} agi_request;

typedef struct agi_header_parser {
    sb_buf buf;
    size_t max_vars;
    size_t line_start;
    size_t nlines;
    int state; /* 0 reading, 1 done, <0 failed with that error */
} agi_header_parser;

/* Prepares a parser that accepts at most max_bytes of header and max_vars lines (0 = defaults). */
void agi_header_init(agi_header_parser *p, size_t max_bytes, size_t max_vars);

/* Feeds bytes (borrowed). Sets *consumed to the bytes used: after AGI_DONE the rest of data
 * belongs to the reply stream. Returns AGI_NEED_MORE, AGI_DONE (then *out is filled and owned by
 * the caller: free with agi_request_free()), SB_ETOOBIG (a limit), SB_EPROTO (a line without
 * ':', a NUL byte or an empty header), SB_ENOMEM, or SB_EINVAL when called again after the end. */
int agi_header_feed(agi_header_parser *p, const char *data, size_t len, size_t *consumed,
                    agi_request *out);

/* Releases the parser's buffer. */
void agi_header_free(agi_header_parser *p);

/* Releases what a request owns and zeroes it (an already zeroed request is fine). */
void agi_request_free(agi_request *r);

/* Looks a variable up by exact name (e.g. "agi_channel"); true and *value when present. */
bool agi_request_get(const agi_request *r, const char *name, sb_slice *value);

/* Looks a query parameter of agi_network_script up by exact name. */
bool agi_request_param(const agi_request *r, const char *name, sb_slice *value);

/* ---- replies ---- */

/* One reply. Slices point into the parser's buffer: valid until the next agi_reply_feed() or
 * agi_reply_free(). */
typedef struct agi_reply {
    int code;             /* 200, 510, 511, 520, ... */
    sb_slice text;        /* everything after "NNN " (multi-line: after "NNN-" to the end) */
    sb_slice result_text; /* the token after "result=", possibly empty (`200 result= (timeout)`) */
    bool has_result;      /* result_text is an integer, stored in result */
    long long result;
    bool has_data; /* a "(...)" followed result */
    sb_slice data;
    sb_slice extra;  /* the key=value pairs after result and data, e.g. "endpos=11360" */
    bool has_endpos; /* endpos=N was among them */
    long long endpos;
    bool is_multiline; /* a 520- style reply */
} agi_reply;

typedef struct agi_reply_parser {
    sb_buf buf;
    size_t pos; /* first byte not yet returned */
    int state;  /* 0 fine, <0 failed with that error */
} agi_reply_parser;

/* Prepares a parser buffering at most max_bytes of unparsed replies (0 = default). */
void agi_reply_init(agi_reply_parser *p, size_t max_bytes);

/* Buffers bytes (borrowed). 0, SB_ETOOBIG when an unfinished reply outgrows the cap, SB_EPROTO
 * for a NUL byte, SB_ENOMEM. The parser stays failed after an error. */
int agi_reply_feed(agi_reply_parser *p, const char *data, size_t len);

/* Takes the next item: AGI_NEED_MORE, AGI_REPLY (*out filled), AGI_HANGUP (the notification
 * line), or SB_EPROTO (a line that is neither a reply nor HANGUP; the parser stays failed). */
int agi_reply_next(agi_reply_parser *p, agi_reply *out);

/* Releases the parser's buffer. */
void agi_reply_free(agi_reply_parser *p);

/* Finds key=value in reply->extra (e.g. "digit", "endpos"); true and *value when present. */
bool agi_reply_get(const agi_reply *r, const char *key, sb_slice *value);

/* ---- AsyncAGI ---- */

/* Percent-decodes an AsyncAGI value that Asterisk ast_uri_encode()d (AsyncAGIStart `Env`,
 * AsyncAGIExec `Result`), appending to out; the result feeds agi_header_feed() or
 * agi_reply_feed() unchanged. `+` stays `+`; a malformed escape and %00 stay as text. Returns 0,
 * SB_ETOOBIG (out's cap must leave room for in.len bytes) or SB_ENOMEM; out is unchanged on
 * error. */
int agi_url_decode(sb_slice in, sb_buf *out);

/* ---- commands ---- */

/* Appends one command line to out: the verb words as given ("GET VARIABLE", "EXEC"), then each
 * argument, double-quoted when empty or holding a space, tab, `"` or `\` (with `"` and `\`
 * backslash-escaped, as res_agi's parse_args() reads them), then "\n". Returns 0, SB_EINVAL
 * (empty verb, CR, LF or NUL anywhere, quotes in the verb), SB_ETOOBIG (longer than
 * AGI_COMMAND_MAX) or SB_ENOMEM; out is unchanged on error. */
int agi_command_format(sb_buf *out, const char *verb, const sb_slice *args, size_t nargs);

/* The same with NUL-terminated arguments, the list ending with NULL. */
int agi_command_formatl(sb_buf *out, const char *verb, ...) __attribute__((sentinel));

#endif
