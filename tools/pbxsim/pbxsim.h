/* pbxsim.h: a PBX simulator that speaks AMI like Asterisk 22 (as recorded in
 * fixtures/asterisk-22.10.1), for tests, benchmarks and `switchboard serve --demo`.
 *
 * Everything runs on the caller's libuv loop (a test may run an AMI client and the simulator on
 * one loop), or on a thread of its own through pbxsim_thread_* (benchmarks, the demo). Call flows
 * are data files (tools/pbxsim/scenarios/NAME.scn, format in docs/pbxsim.md) played with fresh
 * Uniqueids per instance; delays are multiplied by time_scale. The simulator keeps channels,
 * queues, members, device states and hints as a projection of the events it emits, so list
 * actions always agree with the event stream.
 *
 * Not thread-safe: every pbxsim_* call on a `pbxsim` happens on its loop's thread. From another
 * thread use pbxsim_thread_command().
 */
#ifndef PBXSIM_H
#define PBXSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct pbxsim pbxsim;

/* A manager.conf user. read/write are class lists as in manager.conf ("all", "call,agent",
 * "originate", "system,call,agent,..."). */
typedef struct pbxsim_user {
    const char *username;
    const char *secret;
    const char *read;
    const char *write;
} pbxsim_user;

typedef struct pbxsim_config {
    const char *host;         /* bind address; NULL = "127.0.0.1" */
    int port;                 /* 0 = ephemeral (read it back with pbxsim_port) */
    double time_scale;        /* delay multiplier: 1.0 real time, 0.01 = 100x faster; <=0 -> 1 */
    const pbxsim_user *users; /* NULL = the fixtures' users: admin/admin-secret (read/write all),
                                 limited/limited-secret (read call,agent; write originate) */
    size_t nusers;
    const char *scenario_dir; /* NULL = the source tree's tools/pbxsim/scenarios */
    /* Optional tap: called with every event the simulator emits (before per-session filtering),
     * one whole serialized packet. data is borrowed for the duration of the call. */
    void (*on_event)(void *arg, const char *data, size_t len);
    void *on_event_arg;
} pbxsim_config;

/* Fills cfg with the defaults described above. */
void pbxsim_config_default(pbxsim_config *cfg);

/* Creates a simulator on loop (borrowed; must outlive the simulator). cfg and its strings are
 * copied. Returns 0 and *out (owned: pbxsim_stop then pbxsim_free), SB_EINVAL, SB_ENOMEM. */
int pbxsim_new(uv_loop_t *loop, const pbxsim_config *cfg, pbxsim **out);
/* Binds and listens. Returns 0 or a negative UV_* / SB_* code. */
int pbxsim_start(pbxsim *sim);
/* The bound TCP port (after pbxsim_start), or 0. */
int pbxsim_port(const pbxsim *sim);
/* Closes the listener, every session and every timer; scenario instances stop. The handles
 * finish closing when the loop next runs. */
void pbxsim_stop(pbxsim *sim);
/* Releases the simulator (implies pbxsim_stop). When handles are still closing, the memory is
 * released by the last close callback: keep running the loop (uv_run until it returns). */
void pbxsim_free(pbxsim *sim);

/* Options for one scenario instance. */
typedef struct pbxsim_play_opts {
    /* Extra placeholder values, "NAME=value" strings, NULL-terminated (may be NULL): they
     * override the scenario's `set` defaults, e.g. "CALLER=5551234", "QUEUE=support". */
    const char *const *vars;
    /* Called once when the instance has played its last line (status 0) or was cancelled by
     * stop/restart (SB_ECANCELED). Never called when pbxsim_play returned an error. */
    void (*on_done)(void *arg, int status);
    void *arg;
} pbxsim_play_opts;

/* Starts one instance of scenario NAME (file NAME.scn in the scenario directory). opts may be
 * NULL. Returns 0, SB_ENOTFOUND (no such scenario), SB_EPROTO (bad scenario file), SB_ENOMEM. */
int pbxsim_play(pbxsim *sim, const char *name, const pbxsim_play_opts *opts);
/* Names of the shipped scenarios that make sense on their own (NULL-terminated), for --help and
 * the demo. originate-unregistered and long-call-redirect exist too: Originate and Redirect
 * start them. */
extern const char *const pbxsim_scenarios[];

/* Load mode: starts calls_per_second instances of scenario NAME per second for duration_ms,
 * rate x duration calls in all. A loop that runs late catches up at most 100 ms worth of calls
 * per tick, so a load above what the simulator sustains runs longer instead of starving its
 * sockets (pbxsim_stats.load_behind). A new call replaces a running load.
 * Returns 0, SB_EINVAL, SB_ENOTFOUND. */
int pbxsim_load(pbxsim *sim, double calls_per_second, uint64_t duration_ms, const char *name);
/* Load mode spreading the calls over the agents agent_lo..agent_hi (inclusive): the k-th call
 * (from 0) is played with AGENT=agent_lo+k%n and AGENT2=agent_lo+(k+1)%n (n = hi-lo+1; with
 * n == 1 both are agent_lo), for scenarios that name their agents by those variables
 * (queue-call-agent.scn). Control command: `load RATE SECONDS NAME AGENTS=LO-HI`.
 * Returns 0, SB_EINVAL (also hi < lo or hi > 999999999), SB_ENOTFOUND. */
int pbxsim_load_agents(pbxsim *sim, double calls_per_second, uint64_t duration_ms, const char *name,
                       uint32_t agent_lo, uint32_t agent_hi);

/* Raw streaming mode for benchmarks: sends count events of the fixture mix (pre-rendered once,
 * written in large chunks, respecting write backpressure) to every logged-in session, as fast as
 * the socket takes them. A client can ask for the same thing itself with the simulator-only
 * action `Action: PbxsimStream` / `Count: N` (answered Success, then the events).
 * Returns 0 or SB_ENOMEM. */
int pbxsim_stream(pbxsim *sim, uint64_t count);

typedef enum pbxsim_fault {
    PBXSIM_FAULT_DROP,    /* close every session's connection abruptly */
    PBXSIM_FAULT_STALL,   /* sessions stop sending and answering for ms milliseconds */
    PBXSIM_FAULT_GARBAGE, /* send non-AMI garbage bytes mid-stream (between packets) */
    PBXSIM_FAULT_RESTART, /* drop all sessions, fresh state, new Uniqueid base; keeps listening */
} pbxsim_fault;

/* Applies a fault to every connected session. ms is used by PBXSIM_FAULT_STALL only (real
 * milliseconds, not scaled). Returns 0 or SB_EINVAL. */
int pbxsim_inject(pbxsim *sim, pbxsim_fault fault, uint64_t ms);
/* The same for the one session whose client uses local TCP port peer_port (a test reads it with
 * uv_tcp_getsockname). DROP, STALL and GARBAGE only. Returns 0, SB_EINVAL or SB_ENOTFOUND. */
int pbxsim_inject_peer(pbxsim *sim, pbxsim_fault fault, uint64_t ms, int peer_port);

/* Runs one control command, the same language as the `pbxsim` program's stdin:
 *   play NAME [VAR=value ...] | load RATE SECONDS NAME [AGENTS=LO-HI] | stream COUNT | fault drop |
 *   fault stall MS | fault garbage | fault restart
 * Returns 0, SB_EINVAL (unknown command or bad argument) or the error of the call it maps to. */
int pbxsim_command(pbxsim *sim, const char *line);

typedef struct pbxsim_stats {
    uint64_t sessions_accepted; /* connections accepted since start */
    uint32_t sessions_open;     /* connections open now */
    uint64_t logins_ok;
    uint64_t logins_failed;
    uint64_t actions;        /* actions received (all sessions) */
    uint64_t denied;         /* actions answered "Permission denied" */
    uint64_t events_emitted; /* events produced by scenarios (before per-session filtering) */
    uint64_t events_sent;    /* events written to sessions (after filtering, incl. stream) */
    uint64_t bytes_sent;
    uint64_t calls_started; /* scenario instances started */
    uint32_t calls_active;  /* scenario instances still playing */
    uint32_t channels;      /* live channels in the simulated state */
    uint64_t load_behind;   /* calls of the running load due by now but not started yet (lag) */
} pbxsim_stats;

/* Copies the counters into *out. */
void pbxsim_get_stats(const pbxsim *sim, pbxsim_stats *out);

/* The simulator on its own thread and loop (benchmarks, --demo). */
typedef struct pbxsim_thread pbxsim_thread;

/* Creates, starts and runs a simulator on a new thread; returns once it listens (or failed).
 * Returns 0 and *out (owned: pbxsim_thread_stop), or the error of pbxsim_new/pbxsim_start. */
int pbxsim_thread_start(const pbxsim_config *cfg, pbxsim_thread **out);
/* The bound port. */
int pbxsim_thread_port(const pbxsim_thread *t);
/* Queues a control command (see pbxsim_command) for the simulator's thread; thread-safe.
 * Returns 0 once queued (the command's own result is logged, not returned), SB_ENOMEM. */
int pbxsim_thread_command(pbxsim_thread *t, const char *line);
/* Copies the counters (thread-safe snapshot, taken under a lock). */
void pbxsim_thread_stats(pbxsim_thread *t, pbxsim_stats *out);
/* Stops the simulator, joins the thread and frees everything. */
void pbxsim_thread_stop(pbxsim_thread *t);

#endif
