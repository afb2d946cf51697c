/* agi_client.h: the simulator's AGI side, as Asterisk 22 plays it (fixtures agi/01-*.agi and
 * 11-asyncagi.ami): a FastAGI client that connects to a server, sends the agi_* header and
 * answers each command like res_agi does (200/510/520 multi-line, 511 on a dead channel, the
 * inline HANGUP notification), keying the scenario's DTMF for GET DATA and WAIT FOR DIGIT; and
 * AsyncAGI channels on the simulator's AMI server (AsyncAGIStart, the AGI action, AsyncAGIExec,
 * AsyncAGIEnd).
 *
 * Everything runs on the caller's loop. Used by tests/integration/test_routing*.c and
 * bench/agi_routing.c.
 */
#ifndef PBXSIM_AGI_CLIENT_H
#define PBXSIM_AGI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/slice.h"

typedef struct pbxsim pbxsim;

/* One call as the dialplan hands it to AGI. Strings are borrowed until the done callback. */
typedef struct pbxsim_agi_call {
    const char *script;   /* agi_network_script, e.g. "route" or "inbound?pbx=main" */
    const char *channel;  /* NULL: "PJSIP/300-0000000N" (AsyncAGI: "Local/N@from-internal-...;2") */
    const char *callerid; /* agi_callerid and CALLERID(num); NULL: "300" */
    const char *calleridname; /* NULL: "Sim Caller" */
    const char *extension;    /* agi_extension; NULL: "100" */
    const char *const *vars;  /* channel variables "NAME=value" for GET VARIABLE */
    size_t nvars;
    const char *const *dtmf; /* what the caller keys at each GET DATA / WAIT FOR DIGIT, in order;
                                "" or running out: the prompt times out */
    size_t ndtmf;
    unsigned hangup_after; /* the caller hangs up when command N+1 arrives (0: never) */
    bool is_recording;     /* keep every command line for the result */
    unsigned stall_at;     /* command N gets no answer: the session stays open (0: never) */
} pbxsim_agi_call;

typedef struct pbxsim_agi_result {
    int status;      /* 0: the server ended the session (closed, or ASYNCAGI BREAK);
                        negative: connect/IO error or protocol error */
    char **commands; /* every command line received, without "\n" (is_recording) */
    size_t ncommands;
    unsigned count;      /* commands answered */
    bool is_hung_up;     /* the channel is hung up (HANGUP command or the caller) */
    uint64_t elapsed_ns; /* from connect (AsyncAGIStart) to the end */
} pbxsim_agi_result;

/* res is borrowed for the call. */
typedef void (*pbxsim_agi_done_cb)(const pbxsim_agi_result *res, void *ud);

/* Connects to host:port (numeric IPv4) and plays call. done runs exactly once, later, on the
 * loop, unless this returns an error. 0, SB_ENOMEM or a UV_* error. */
int pbxsim_agi_connect(uv_loop_t *loop, const char *host, int port, const pbxsim_agi_call *call,
                       pbxsim_agi_done_cb done, void *ud);

/* ---- the responder shared by FastAGI and AsyncAGI ---- */

typedef struct pbxsim_agi_chan {
    const pbxsim_agi_call *call;
    size_t dtmf_next;
    unsigned count;
    bool is_hung_up;     /* dead channel: most commands get 511 */
    bool is_hangup_told; /* the HANGUP notification was sent */
    bool is_break;       /* ASYNCAGI BREAK received */
    char **setvars;      /* SET VARIABLE values, "NAME=value" */
    size_t nsetvars;
    char **commands;
    size_t ncommands;
} pbxsim_agi_chan;

/* Answers one command line (without "\n") as Asterisk would, appending the reply lines (with a
 * leading "HANGUP\n" when the channel has just hung up) to out. */
int pbxsim_agi_respond(pbxsim_agi_chan *ch, sb_slice line, sb_buf *out);
void pbxsim_agi_chan_free(pbxsim_agi_chan *ch);

/* ---- AsyncAGI (asyncagi.c) ---- */

/* Starts a channel in AGI(agi:async) on the simulator's AMI server: AsyncAGIStart (Env is the
 * URL-encoded header), then every `Action: AGI` for that channel is answered ("Added AGI
 * command to queue") and its result sent as AsyncAGIExec with the action's CommandID; ASYNCAGI
 * BREAK or the caller hanging up ends it with AsyncAGIEnd. done runs once, later. 0 or
 * SB_ENOMEM. */
int pbxsim_asyncagi_start(pbxsim *sim, const pbxsim_agi_call *call, pbxsim_agi_done_cb done,
                          void *ud);

/* Channels in AsyncAGI now. */
size_t pbxsim_asyncagi_active(const pbxsim *sim);

#endif
