/* nats.h: the `nats` sink: events published to NATS JetStream, one subject per PBX and type.
 *
 * Each event goes to SUBJECT_PREFIX.<pbx>.<type> (e.g. switchboard.pbx1.call.ended) with the
 * header Nats-Msg-Id = event id, so the stream drops a re-sent event within its duplicate window,
 * and is delivered only when the stream's publish ack arrives. The stream is created when missing
 * (name, subjects, storage, duplicate window from the config). libnats runs its own threads: the
 * sink talks to it from one worker thread per sink and hands every result back to the loop through
 * a uv_async_t, so the outbox's callbacks only ever run on the loop thread
 * (docs/decisions/0012-nats-sink-threading.md). docs/delivery.md ("NATS JetStream") has the
 * configuration.
 */
#ifndef SB_SINKS_NATS_H
#define SB_SINKS_NATS_H

#include "core/config.h"
#include "sinks/sink.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct sink_nats sink_nats;

typedef struct sink_nats_config {
    const char *url;             /* "nats://host:port", comma-separated for a cluster; NULL =
                                    nats://127.0.0.1:4222 */
    const char *subject_prefix;  /* NULL = "switchboard" */
    const char *stream;          /* NULL = "SWITCHBOARD" */
    const char *stream_subjects; /* comma list used when creating the stream; NULL = "PREFIX.>" */
    bool is_memory_storage;      /* create the stream in memory instead of on disk */
    int64_t duplicate_window_ms; /* 0 = 2 minutes (JetStream's default) */
    int64_t stream_max_age_ms;   /* 0 = unlimited */
    int64_t stream_max_bytes;    /* 0 = unlimited */
    int32_t stream_max_msg_size; /* 0 = the server's limit */
    int replicas;                /* 0 = 1 */
    bool is_create_disabled;     /* never create the stream (it must exist) */
    int max_pending;             /* publishes awaiting their ack at once; 0 = 256, 1 = strict */
    long timeout_ms;             /* per publish ack and per JetStream API call; 0 = 5000 */
    const char *user, *password, *token; /* NULL = none */
    const char *creds;                   /* a .creds file (JWT + NKey seed); NULL = none */
    const char *ca_file;                 /* CA certificates for tls:// URLs; NULL = none */
    sink_filter_spec filter;
} sink_nats_config;

/* The outbox vtable of the nats kind. */
extern const outbox_sink_ops sink_nats_ops;

/* The keys of a [sink NAME] section of kind nats (besides the ones every sink takes). */
extern const char *const sink_nats_keys[];

/* Returns 0 and *out (owned: hand it to outbox_add_sink with sink_nats_ops, or free it with
 * sink_nats_ops.free), or SB_EINVAL (bad prefix, stream name or filter), SB_ENOMEM. Borrows cfg
 * (copied) and loop (must outlive the sink). Nothing connects until the first delivery. */
int sink_nats_new(uv_loop_t *loop, const sink_nats_config *cfg, sink_nats **out);

/* Builds a nats sink from a [sink NAME] section (nats_config.c; the factory checked the key
 * names). timeout_ms is the section's `timeout` (0 = default); filter borrows from cfg. Returns 0
 * and *out (owned, as above) or SB_ECONFIG with "FILE:LINE: [sink NAME] key: problem" in err, or
 * SB_ENOMEM. */
int sink_nats_from_section(uv_loop_t *loop, const sb_config *cfg, const sb_config_section *sec,
                           long timeout_ms, sink_filter_spec filter, sink_nats **out, char *err,
                           size_t errsize);

/* The subject an event goes to: PREFIX.<pbx>.<type>, every character outside [A-Za-z0-9_-] of
 * the PBX name and of each dot-separated token of the type replaced by '_' (an empty one becomes
 * "_"). Written to out; 0 or SB_ETOOBIG. Exposed for tests and docs. */
int sink_nats_subject(const char *prefix, const char *pbx, const char *type, char *out,
                      size_t outsize);

#endif
