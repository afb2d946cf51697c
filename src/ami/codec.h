/* codec.h: AMI framing, parsing and serializing. Bytes in, packets out; never touches a socket.
 *
 * Reading: the owner of the socket asks for free space (ami_codec_space), reads into it, commits
 * the byte count, then calls ami_codec_next() until it answers AMI_NEED_MORE. A packet's slices
 * point into the codec's buffer and stay valid until the next call to ami_codec_next(),
 * ami_codec_space(), ami_codec_feed() or ami_codec_free(): a consumer that keeps a packet copies
 * it with ami_packet_dup(). Correct whatever the chunk boundaries (a packet split at any byte,
 * hundreds of packets in one read). The banner line (no blank line after it) is the first packet
 * when the codec was told to expect one.
 *
 * Limits: a packet larger than max_packet, a line longer than max_line or more than max_headers
 * headers is reported once as a negative error; the codec then skips to the next blank line and
 * carries on (it resynchronizes instead of dying). A line without a colon at the start of a packet
 * (stray bytes between packets) is dropped and reported as SB_EPROTO; in the middle of a packet it
 * ends that packet the same way as a limit does.
 *
 * Command output: Asterisk 14+ answers the Command action with `Output:` headers; the pre-14 form
 * `Response: Follows` ... `--END COMMAND--` is turned into the same `Output` headers.
 */
#ifndef SB_AMI_CODEC_H
#define SB_AMI_CODEC_H

#include "core/buf.h"
#include "core/slice.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum ami_packet_kind {
    AMI_PACKET_BANNER,   /* "Asterisk Call Manager/11.0.0": name holds the whole line */
    AMI_PACKET_EVENT,    /* first header Event: name is the event name */
    AMI_PACKET_RESPONSE, /* first header Response: name is Success, Error, Goodbye, Follows */
    AMI_PACKET_ACTION,   /* first header Action: name is the action name (server side) */
    AMI_PACKET_OTHER,    /* any other first header */
} ami_packet_kind;

typedef struct ami_header {
    sb_slice key;
    sb_slice value;
} ami_header;

typedef struct ami_packet {
    ami_packet_kind kind;
    sb_slice name;             /* value of the first header, or the banner line */
    const ami_header *headers; /* in wire order, duplicates included */
    size_t count;
} ami_packet;

typedef struct ami_limits {
    size_t max_packet;  /* bytes in one packet, terminator included */
    size_t max_headers; /* headers in one packet */
    size_t max_line;    /* bytes in one line */
} ami_limits;

/* Defaults: 64 KiB packets, 1024 headers, 8 KiB lines (docs/ami.md explains the choice). */
#define AMI_LIMITS_DEFAULT ((ami_limits){65536, 1024, 8192})

typedef struct ami_codec_stats {
    uint64_t packets; /* packets handed out */
    uint64_t bytes;   /* bytes committed */
    uint64_t too_big; /* packets dropped for a limit */
    uint64_t syntax;  /* lines or packets dropped as malformed */
} ami_codec_stats;

/* Returned by ami_codec_next() */
enum { AMI_NEED_MORE = 0, AMI_PACKET = 1 };

typedef struct ami_codec {
    ami_limits lim;
    char *buf; /* owned, cap bytes */
    size_t cap;
    size_t start;     /* first byte of the packet being parsed */
    size_t scan;      /* next byte not yet split into lines */
    size_t end;       /* end of data */
    ami_header *hdrs; /* owned, lim.max_headers entries */
    size_t nhdrs;
    bool expect_banner;
    bool discarding;   /* skipping to the next blank line after an error */
    bool midline;      /* while discarding: the dropped bytes ended inside a line */
    bool follows;      /* inside a legacy "Response: Follows" packet */
    bool follows_done; /* saw --END COMMAND-- */
    ami_codec_stats stats;
} ami_codec;

/* Prepares a codec. expect_banner: the first line is the server's banner (client side).
 * Returns 0, SB_EINVAL (a limit is zero) or SB_ENOMEM. Free with ami_codec_free(). */
int ami_codec_init(ami_codec *c, ami_limits lim, bool expect_banner);
void ami_codec_free(ami_codec *c);
/* Forgets buffered bytes and state (after a reconnect); expect_banner as for init. */
void ami_codec_reset(ami_codec *c, bool expect_banner);

/* Hands out the free space at the end of the buffer (never less than 1 byte after next() has
 * answered AMI_NEED_MORE). Borrowed until the next codec call. */
void ami_codec_space(ami_codec *c, char **ptr, size_t *len);
/* Declares that n bytes were written into the space. */
void ami_codec_commit(ami_codec *c, size_t n);
/* Copies up to len bytes into the buffer; returns how many were taken (0 only when the buffer
 * is full: call ami_codec_next() to drain it). */
size_t ami_codec_feed(ami_codec *c, const char *data, size_t len);

/* Parses the next packet into *out (borrowed as described above). Returns AMI_PACKET,
 * AMI_NEED_MORE, or a negative error (SB_ETOOBIG, SB_EPROTO) after which parsing continues. */
int ami_codec_next(ami_codec *c, ami_packet *out);

/* First header named key (ASCII case-insensitive), or NULL. */
const sb_slice *ami_packet_get(const ami_packet *p, const char *key);
/* True when header key exists and its value equals val case-insensitively. */
bool ami_packet_is(const ami_packet *p, const char *key, const char *val);
/* Value of header key, or an empty slice when absent. */
sb_slice ami_packet_value(const ami_packet *p, const char *key);

/* Returns an owned deep copy in one allocation (free with ami_packet_free()), or NULL. */
ami_packet *ami_packet_dup(const ami_packet *p);
void ami_packet_free(ami_packet *p);

/* Serializing one action (or, in the simulator, a response or event). The first error is sticky
 * and reported by ami_msg_finish(): a key with ':', CR or LF, or a value with CR or LF is
 * SB_EINVAL and nothing is ever sent for it. */
typedef struct ami_msg {
    sb_buf buf;
    int err;
} ami_msg;

/* Starts a message whose first header is first_key: first_value (e.g. "Action", "Ping"). */
void ami_msg_init(ami_msg *m, const char *first_key, const char *first_value);
void ami_msg_add(ami_msg *m, const char *key, const char *value);
void ami_msg_addn(ami_msg *m, const char *key, sb_slice value);
void ami_msg_addf(ami_msg *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends the message (blank line). Returns 0 with *data and *len borrowed from m, or the first error.
 */
int ami_msg_finish(ami_msg *m, const char **data, size_t *len);
void ami_msg_free(ami_msg *m);

#endif
