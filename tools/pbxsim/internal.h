/* internal.h: the simulator's private types, shared by its files (never by callers).
 *
 * pbxsim.c owns the lifecycle, the listener and the sessions' I/O; actions.c answers actions;
 * state.c keeps channels, queues, devices and hints as a projection of the emitted events;
 * scenario.c loads scenario files and plays instances of them.
 */
#ifndef PBXSIM_INTERNAL_H
#define PBXSIM_INTERNAL_H

#include "pbxsim.h"

#include "ami/codec.h"
#include "core/buf.h"
#include "core/slice.h"

#include <regex.h>
#include <string.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Manager event classes (manager.conf read=/write=), as bits. */
enum {
    SIM_CLASS_SYSTEM = 1 << 0,
    SIM_CLASS_CALL = 1 << 1,
    SIM_CLASS_LOG = 1 << 2,
    SIM_CLASS_VERBOSE = 1 << 3,
    SIM_CLASS_COMMAND = 1 << 4,
    SIM_CLASS_AGENT = 1 << 5,
    SIM_CLASS_USER = 1 << 6,
    SIM_CLASS_CONFIG = 1 << 7,
    SIM_CLASS_DTMF = 1 << 8,
    SIM_CLASS_REPORTING = 1 << 9,
    SIM_CLASS_CDR = 1 << 10,
    SIM_CLASS_DIALPLAN = 1 << 11,
    SIM_CLASS_ORIGINATE = 1 << 12,
    SIM_CLASS_AGI = 1 << 13,
    SIM_CLASS_CC = 1 << 14,
    SIM_CLASS_AOC = 1 << 15,
    SIM_CLASS_TEST = 1 << 16,
    SIM_CLASS_SECURITY = 1 << 17,
    SIM_CLASS_MESSAGE = 1 << 18,
    SIM_CLASS_ALL = (1 << 19) - 1,
};

/* Copies a C string into dst (size bytes), truncating; always NUL-terminates. */
static inline void sim_copy(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Parses a class list ("call,agent", "all", "on", "off", "none"); unknown names are ignored. */
uint32_t sim_class_parse(sb_slice s);

#define SIM_MAX_FILTERS 16
#define SIM_OUT_MAX (64u * 1024 * 1024) /* a session further behind than this is dropped */

typedef struct sim_user {
    char *username;
    char *secret;
    uint32_t read;
    uint32_t write;
} sim_user;

typedef struct sim_session {
    pbxsim *sim;
    uv_tcp_t tcp;
    uv_timer_t stall_timer;
    struct sim_session *prev, *next;
    uint64_t id;
    ami_codec codec;
    int open_handles;
    bool closing;
    bool authed;
    bool stalled;
    bool reading;
    bool close_after_drain; /* Logoff, failed login: close once the answer is written */
    const sim_user *user;
    uint32_t event_mask; /* classes asked for with Login Events: / the Events action */
    char challenge[16];
    char remote[64];
    int peer_port; /* the client's TCP port (pbxsim_inject_peer) */
    char session_tv[40];
    regex_t filters[SIM_MAX_FILTERS];
    bool filter_exclude[SIM_MAX_FILTERS];
    int nfilters;
    sb_buf out;  /* bytes waiting to be written */
    sb_buf wbuf; /* bytes of the write in flight */
    bool writing;
    bool write_is_stream; /* the write in flight points into the pre-rendered stream */
    uv_write_t wreq;
    uint64_t stream_left; /* events still to stream (raw streaming mode) */
    size_t stream_pos;    /* event index into the pre-rendered stream */
} sim_session;

/* A live channel, as the emitted events describe it. */
typedef struct sim_channel {
    char name[96];
    int state;
    char cid_num[64], cid_name[64], conn_num[64], conn_name[64];
    char context[64], exten[64];
    int priority;
    char uniqueid[32], linkedid[32];
    char app[32], appdata[128];
    char bridge[40];
    uint64_t created_ms;
    uint64_t owner_id; /* id of the scenario instance that created it (sim_call_find), or 0 */
    size_t slot;       /* its index in sim_state.chans */
    uint32_t hash;     /* of name (sim_state's index) */
    struct sim_channel *hnext; /* next in its hash bucket */
} sim_channel;

typedef struct sim_member {
    char name[64];
    char iface[96];
    char state_iface[96];
    bool dynamic;
    int penalty;
    int calls_taken;
    long long last_call, last_pause, login_time;
    int in_call;
    int status;
    bool paused;
    char reason[64];
    int ringinuse;
} sim_member;

#define SIM_MAX_MEMBERS 32
#define SIM_MAX_CALLERS 64

/* A caller waiting in a queue (QueueCallerJoin until QueueCallerLeave/Abandon). */
typedef struct sim_caller {
    char channel[96];
    char uniqueid[32];
    char cid_num[64], cid_name[64], conn_num[64], conn_name[64];
    uint64_t joined_ms;
} sim_caller;

typedef struct sim_queue {
    char name[32];
    char strategy[16];
    int calls;
    int holdtime, talktime;
    int completed, abandoned;
    sim_member members[SIM_MAX_MEMBERS];
    int nmembers;
    sim_caller callers[SIM_MAX_CALLERS]; /* in queue position order */
    int ncallers;
} sim_queue;

#define SIM_MAX_QUEUES 4
#define SIM_MAX_DEVICES 64
#define SIM_MAX_HINTS 8

typedef struct sim_device {
    char name[96];
    char state[24];
} sim_device;

typedef struct sim_hint {
    char exten[16];
    char context[32];
    char device[32];
    int status;
} sim_hint;

/* Channels are kept in creation order (the list actions answer newest first) AND indexed by name,
 * so that every event costs O(1) whatever the number of live channels: `chans` holds one pointer
 * per slot in creation order, NULL where a channel was removed (holes are compacted once they
 * outnumber the live channels); iterate with `for (i = nslots; i-- > 0;) if (chans[i]) ...`. */
typedef struct sim_state {
    sim_channel **chans; /* nslots used, creation order; NULL = removed */
    size_t nslots, capslots;
    size_t nchans;         /* live channels */
    sim_channel **buckets; /* name hash index: nbuckets (a power of two) chains */
    size_t nbuckets;
    sim_queue queues[SIM_MAX_QUEUES];
    int nqueues;
    sim_device devices[SIM_MAX_DEVICES];
    int ndevices;
    sim_hint hints[SIM_MAX_HINTS];
    int nhints;
} sim_state;

/* One step of a scenario file. */
typedef enum scn_kind { SCN_EVENT, SCN_DELAY, SCN_MEMBER } scn_kind;

typedef struct scn_step {
    scn_kind kind;
    char *text;  /* SCN_EVENT: template lines joined by '\n'; SCN_MEMBER: "QUEUE IFACE k=v.." */
    uint64_t ms; /* SCN_DELAY */
    char *cond;  /* "%if" words for this step ("ASYNC !APP"), or NULL */
    int each;    /* 0, 1: once per originate Variable, 2: the same in reverse */
} scn_step;

typedef struct scenario {
    char *name;
    scn_step *steps;
    size_t nsteps;
    char **defaults; /* "NAME=value" from %set lines */
    size_t ndefaults;
    struct scenario *next;
} scenario;

typedef struct sim_var {
    char *name;
    char *value;
} sim_var;

/* One playing instance of a scenario. */
typedef struct sim_call {
    pbxsim *sim;
    const scenario *scn;
    size_t pc;
    uv_timer_t timer;
    bool timer_open;
    bool done;
    struct sim_call *prev, *next;
    uint64_t id; /* 1, 2, ... (sim_channel.owner_id) */
    sim_var *vars;
    size_t nvars, capvars;
    char **orig_vars; /* originate Variable: values, "NAME=value" */
    size_t norig_vars;
    time_t start;
    uint64_t start_ms;
    void (*on_done)(void *arg, int status);
    void *arg;
} sim_call;

typedef struct sim_load {
    uv_timer_t timer;
    bool open;
    bool active;
    char *scenario;
    double rate;
    uint64_t end_ms;
    uint64_t started_ms;
    uint64_t calls;
    uint32_t agent_lo; /* AGENTS=LO-HI: call k sets AGENT=LO+k%n, AGENT2=LO+(k+1)%n; */
    uint32_t agent_n;  /* agent_n 0 = no range */
} sim_load;

struct pbxsim {
    uv_loop_t *loop;
    char *host;
    int port;
    double time_scale;
    sim_user *users;
    size_t nusers;
    char *scenario_dir;
    void (*on_event)(void *arg, const char *data, size_t len);
    void *on_event_arg;

    uv_tcp_t listener;
    bool listening;
    bool listener_open;
    bool stopped;
    bool free_requested;
    int open_handles; /* handles of the simulator itself still to close */

    sim_session *sessions;
    uint64_t next_session_id;
    sim_call *calls;
    uint64_t next_call_id;
    scenario *scenarios;
    sim_load load;
    sim_state state;

    time_t started;
    long long uid_epoch_floor;
    uint64_t uid_counter;
    uint64_t seq_counter;
    struct sim_call *emitting; /* instance whose event is being emitted (channel ownership) */

    char *stream_data; /* pre-rendered events for the raw streaming mode */
    size_t stream_len;
    size_t *stream_offs; /* start of each event, plus the end */
    size_t stream_count;

    pbxsim_stats stats;
};

/* pbxsim.c */
/* Emits one event (CRLF-terminated packet, borrowed): projects it into the state, taps it, and
 * queues it on every session whose classes and filters accept it. */
void sim_emit(pbxsim *sim, const char *data, size_t len);
/* Queues bytes (a response) on one session. */
void sim_send(sim_session *s, const char *data, size_t len);
/* Closes a session (after what is queued has been written when graceful). */
void sim_session_close(sim_session *s, bool graceful);
/* Milliseconds on the loop clock. */
uint64_t sim_now_ms(const pbxsim *sim);
/* A fresh Uniqueid "<epoch>.<counter>" into buf. */
void sim_new_uniqueid(pbxsim *sim, char *buf, size_t size);
/* Starts streaming count pre-rendered events to one session. */
int sim_session_stream(sim_session *s, uint64_t count);
/* Formats times as Asterisk does. */
void sim_fmt_tv(time_t t, long ms, char *buf, size_t size); /* 2026-11-23T23:58:41.262+0000 */
void sim_fmt_cdr(time_t t, char *buf, size_t size);         /* 2026-11-23 23:58:42 */

/* actions.c */
/* Answers one action packet received on session s. */
void sim_action(sim_session *s, const ami_packet *p);

/* actions.c: message helpers shared by the action files. p is the action being answered. */
void sim_copy_value(const ami_packet *p, const char *key, char *dst, size_t size);
bool sim_has_value(const ami_packet *p, const char *key);
/* Appends "ActionID: X" when the action carried a non-empty one. */
void sim_add_actionid(ami_msg *m, const ami_packet *p);
/* Starts "Response: status" with the ActionID echoed right after it. */
void sim_resp_begin(ami_msg *m, const ami_packet *p, const char *status);
/* Finishes m, queues it on s (send) or emits it to every session (emit), and frees it. */
void sim_send_msg(sim_session *s, ami_msg *m);
void sim_emit_msg(pbxsim *sim, ami_msg *m);
void sim_send_simple(sim_session *s, const ami_packet *p, const char *status, const char *msg);
void sim_send_error(sim_session *s, const ami_packet *p, const char *msg);
void sim_send_ack(sim_session *s, const ami_packet *p, const char *msg);
/* "EventList: start" answer and the closing "...Complete" event of a list action. */
void sim_send_listack(sim_session *s, const ami_packet *p, const char *msg);
void sim_send_list_complete(sim_session *s, const ami_packet *p, const char *event, int items);
bool sim_truthy(sb_slice v);
/* Seconds since a channel was created. */
uint64_t sim_chan_age(const pbxsim *sim, const sim_channel *c);

/* asyncagi.c: Action: AGI on a channel in AsyncAGI (routing's file). */
void sim_act_agi(sim_session *s, const ami_packet *p);

/* actions_queue.c */
void sim_act_queuestatus(sim_session *s, const ami_packet *p);
void sim_act_queuesummary(sim_session *s, const ami_packet *p);
void sim_act_queueadd(sim_session *s, const ami_packet *p);
void sim_act_queueremove(sim_session *s, const ami_packet *p);
void sim_act_queuepause(sim_session *s, const ami_packet *p);

/* actions_call.c */
void sim_act_extensionstatelist(sim_session *s, const ami_packet *p);
void sim_act_extensionstate(sim_session *s, const ami_packet *p);
void sim_act_devicestatelist(sim_session *s, const ami_packet *p);
void sim_act_pjsipshowendpoints(sim_session *s, const ami_packet *p);
void sim_act_getvar(sim_session *s, const ami_packet *p);
void sim_act_originate(sim_session *s, const ami_packet *p);
void sim_act_redirect(sim_session *s, const ami_packet *p);
void sim_act_hangup(sim_session *s, const ami_packet *p);

/* state.c */
void sim_state_init(sim_state *st, time_t now);
void sim_state_free(sim_state *st);
/* Applies one emitted event (parsed headers) to the state. */
void sim_state_apply(pbxsim *sim, const ami_header *h, size_t n);
/* The live channel called name, or NULL: O(1) (hash index). */
sim_channel *sim_state_channel(sim_state *st, sb_slice name);
sim_queue *sim_state_queue(sim_state *st, sb_slice name);
sim_member *sim_queue_member(sim_queue *q, sb_slice iface);
sim_device *sim_state_device(sim_state *st, const char *name);
/* Appends the 14 standard channel snapshot headers (Channel ... Linkedid) with prefix. */
void sim_msg_channel(ami_msg *m, const sim_channel *c, const char *prefix);
/* Appends the member headers as QueueMemberStatus/Added/Pause/Removed carry them. */
void sim_msg_member(ami_msg *m, const sim_queue *q, const sim_member *mb);
const char *sim_state_desc(int state);

/* scenario.c */
/* Finds (loading on first use) scenario name; NULL when missing or malformed (*err says which). */
const scenario *sim_scenario_get(pbxsim *sim, const char *name, int *err);
void sim_scenarios_free(pbxsim *sim);
/* Starts an instance with extra vars ("NAME=value", n of them) and originate variables. */
int sim_call_start(pbxsim *sim, const scenario *scn, const char *const *vars, size_t nvars,
                   const char *const *orig_vars, size_t norig, sim_call **out);
/* The running instance with this id (sim_channel.owner_id), or NULL (finished, or id 0). */
sim_call *sim_call_find(pbxsim *sim, uint64_t id);
/* Cancels an instance: no more steps; on_done(SB_ECANCELED). */
void sim_call_cancel(sim_call *c);
/* Moves a running instance to another scenario, keeping its variables (Redirect). */
void sim_call_switch(sim_call *c, const scenario *scn, const char *const *vars, size_t nvars);
/* Renders every scenario's events once (fixed values) for the raw streaming mode. */
int sim_stream_prepare(pbxsim *sim);

#endif
