/* internal.h: the model's private types and the helpers its files share (never included from
 * outside src/model/).
 *
 * Ownership: a model_pbx owns its maps and everything in them. A channel points at its call and
 * bridge (borrowed); a call lists its channels through chan->call_next; a bridge holds an array
 * of borrowed channel pointers. Freeing a channel always detaches it from both first.
 */
#ifndef SB_MODEL_INTERNAL_H
#define SB_MODEL_INTERNAL_H

#include "core/strmap.h"
#include "model/model.h"

#include <stdbool.h>

/* Asterisk ChannelState values (protocol-facts.md §1.10). */
enum { CH_DOWN = 0, CH_RING = 4, CH_RINGING = 5, CH_UP = 6, CH_BUSY = 7 };

/* How far a call got; events announce each step once. */
enum { CALL_STARTED = 0, CALL_RINGING, CALL_ANSWERED, CALL_BRIDGED };

typedef struct mcall mcall;
typedef struct mbridge mbridge;

typedef struct mchan {
    char *uniqueid, *linkedid, *name;
    char *device; /* name without the -XXXXXXXX;N suffix: PJSIP/1001, Local/502@agents */
    char *agent;  /* extension of the agent this device belongs to, or NULL */
    int state;
    char *cid_num, *cid_name, *conn_num, *conn_name;
    char *context, *exten;
    char *recording;
    bool is_trunk;
    bool seen; /* confirmed by the running resync */
    int64_t created_ms, answered_ms, hold_start_ms;
    mcall *call;
    struct mchan *call_next;
    mbridge *bridge;
} mchan;

struct mcall {
    char *id; /* Linkedid */
    mchan *chans;
    int nchans;
    int step;
    char *from, *from_name, *to;
    bool has_trunk_leg, master_is_trunk, busy, dialed, abandoned, transferred, restored;
    bool lost; /* its channels vanished while the AMI connection was down */
    char *queue, *agent, *recording, *cdr_disposition;
    char *cause_text;     /* Hangup Cause-txt of the first channel */
    int cause;            /* its Cause; -1 unknown */
    char *bridged_key;    /* the parties last announced by call.bridged */
    char *agents_seen[8]; /* agents that had a channel in the call (targets of call.ended) */
    size_t nagents_seen;
    long hold_time, talk_time; /* app_queue's, seconds; -1 unknown */
    int64_t start_ms, answer_ms, on_hold_ms;
};

struct mbridge {
    char *id;
    mchan **chans;
    size_t n, cap;
};

typedef struct mmember {
    char *interface, *name, *state_interface, *membership;
    char *agent; /* extension derived from the interface */
    int status, penalty;
    bool paused, in_call, announced, seen;
    char *reason;
    long calls_taken;
    long long last_call;
} mmember;

typedef struct mcaller {
    char *uniqueid, *channel, *cid_num, *cid_name;
    int position;
    int64_t joined_ms;
    bool seen;
} mcaller;

typedef struct mqueue {
    char *name, *strategy;
    sb_strmap members;    /* interface -> mmember */
    sb_strmap callers;    /* uniqueid -> mcaller */
    long announced_count; /* last queueCount told (a new queue starts at 0) */
    long completed, abandoned, holdtime, talktime, max;
    bool seen;
} mqueue;

typedef struct magent {
    char *ext;
    char *remote_num, *remote_name, *remote_call; /* current phoneNumber */
    bool has_remote;
    json_t *last_call; /* owned summary of the last completed call */
} magent;

typedef struct mhint {
    char *exten, *context, *hint;
    int status; /* INT_MIN: unknown */
    bool seen;
} mhint;

typedef struct mdevice {
    char *name, *state;
    bool seen;
} mdevice;

typedef struct model_pbx {
    char *name;
    sb_strmap channels;   /* Uniqueid -> mchan */
    sb_strmap calls;      /* Linkedid -> mcall */
    sb_strmap bridges;    /* BridgeUniqueid -> mbridge */
    sb_strmap queues;     /* name -> mqueue */
    sb_strmap agents;     /* extension -> magent */
    sb_strmap hints;      /* exten@context -> mhint */
    sb_strmap devices;    /* device -> mdevice */
    sb_strmap devagent;   /* device or interface -> magent (borrowed) */
    sb_strmap originates; /* ActionID -> owned agent extension */
    char *orig_ring[1024];
    size_t orig_head;
    /* The last 1024 Uniqueids hung up: a CoreShowChannel item racing with its channel's Hangup
     * must not bring the channel back. */
    sb_strmap gone;
    char *gone_ring[1024];
    size_t gone_head;
    char **trunks;
    size_t ntrunks;
    bool trunks_set;
    /* Resync bookkeeping. */
    bool resyncing, got_channels, got_queues, got_hints, got_devices;
} model_pbx;

struct model {
    model_config cfg;
    model_pbx **pbxs;
    size_t npbx;
    uint64_t id_hi, id_counter;
    int64_t ev_time; /* time of the AMI event being handled */
    model_stats stats;
};

/* ---- model.c ---- */
model_pbx *model_pbx_get(model *m, const char *pbx, bool create);
char *mdup(sb_slice s);                   /* owned copy, NULL for empty */
char *mdup_cid(sb_slice s);               /* as mdup, NULL for "<unknown>" too */
bool mset(char **dst, sb_slice s);        /* replaces *dst when different; true when changed */
bool mset_cid(char **dst, sb_slice s);    /* as mset with mdup_cid semantics */
bool mset_str(char **dst, const char *s); /* from a C string (NULL allowed) */
long mget_long(const ami_packet *ev, const char *key, long dflt);
const char *mstr_or_null(const char *s);

/* ---- event.c: the normalized event builder ---- */
/* Builds {id,type,time,pbx,[agent],details} (takes ownership of details), targets it at agent
 * (and extra_agents), tags it with queue, and hands it to the emit callback. */
void mev_emit(model *m, model_pbx *p, const char *type, const char *agent, const char *queue,
              json_t *details);
/* Same, with a list of agents to target besides the main one. */
void mev_emit_multi(model *m, model_pbx *p, const char *type, const char *agent, const char *queue,
                    const char *const *agents, size_t nagents, json_t *details);
/* RFC 3339 UTC with milliseconds into buf (>= 32 bytes); returns buf. */
char *mev_time(int64_t ms, char *buf, size_t size);
json_t *mev_time_json(int64_t ms); /* null for 0 */

/* ---- channels.c ---- */
void chan_handle(model *m, model_pbx *p, const ami_packet *ev, sb_slice name);
mchan *chan_new_from(model *m, model_pbx *p, const ami_packet *ev, int64_t created_ms);
void chan_hangup(model *m, model_pbx *p, mchan *c, bool lost);
void chan_free(mchan *c);
void chan_remember_gone(model_pbx *p, const char *uniqueid);
char *chan_device_of(sb_slice name);
json_t *chan_json(const mchan *c);

/* ---- calls.c ---- */
mcall *call_attach(model *m, model_pbx *p, mchan *c);
void call_detach(model *m, model_pbx *p, mchan *c);
void call_on_state(model *m, model_pbx *p, mchan *c);
void call_on_dial(model *m, model_pbx *p, mcall *call, mchan *dest, sb_slice dialstring);
void call_on_bridge(model *m, model_pbx *p, mbridge *b);
void call_transferred(model *m, model_pbx *p, mcall *call, json_t *details);
void call_free(mcall *call);
void call_note_agent(mcall *call, const char *agent);
json_t *call_json(const mcall *call, bool with_channels);
json_t *call_summary_json(model *m, const mcall *call, int64_t end_ms);
void call_emit(model *m, model_pbx *p, mcall *call, const char *type, json_t *extra);

/* ---- bridges.c ---- */
void bridge_handle(model *m, model_pbx *p, const ami_packet *ev, sb_slice name);
void bridge_enter(model *m, model_pbx *p, mbridge *b, mchan *c);
void bridge_leave(model *m, model_pbx *p, mchan *c);
mbridge *bridge_get(model_pbx *p, sb_slice id, bool create);
void bridge_free(mbridge *b);

/* ---- queues.c ---- */
void queue_handle(model *m, model_pbx *p, const ami_packet *ev, sb_slice name);
void queue_free(mqueue *q);
void queue_announce_count(model *m, model_pbx *p, mqueue *q);
void queue_member_remove(model *m, model_pbx *p, mqueue *q, mmember *mb);
void queue_caller_remove(model_pbx *p, mqueue *q, mcaller *c);
json_t *queue_json(const mqueue *q, bool with_members);
json_t *member_json(const mmember *mb, const char *queue);
/* Agent extensions that are members of q (borrowed pointers, owned array; free() it). */
const char **queue_member_agents(const mqueue *q, size_t *n);

/* ---- agents.c ---- */
magent *agent_get(model_pbx *p, const char *ext, bool create);
char *agent_ext_from_interface(sb_slice iface); /* owned or NULL */
void agent_map_device(model_pbx *p, sb_slice device, magent *a);
magent *agent_of_device(model_pbx *p, const char *device);
void agent_set_remote(model *m, model_pbx *p, magent *a, const char *num, const char *name,
                      const char *call_id, const char *queue);
void agent_clear_remote(model *m, model_pbx *p, magent *a, const char *call_id);
void agent_call_completed(magent *a, json_t *summary);
void agent_free(magent *a);
json_t *agent_json(model_pbx *p, const magent *a);
void agent_handle_originate(model *m, model_pbx *p, const ami_packet *ev);

/* ---- devices.c ---- */
void device_handle(model *m, model_pbx *p, const ami_packet *ev, sb_slice name);
void device_free(mdevice *d);
void hint_free(mhint *h);
const char *hint_status_text(int status);
json_t *hint_json(const mhint *h);

/* ---- resync.c ---- */
void resync_list_complete(model_pbx *p, sb_slice name);
int64_t model_clock(const model *m);

#endif
