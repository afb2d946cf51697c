/* session.h: one FastAGI call on the loop: send AGI commands one at a time and get their parsed
 * replies; learn about hang-up; end cleanly.
 *
 * Commands are queued and written one at a time, as AGI requires (a reply carries no id, so the
 * next command is written only when the previous reply is in). Each has its own timeout. The
 * session ends when Asterisk closes the socket, when a command gets 511 (dead channel), when a
 * command times out (the stream can no longer be trusted), on a protocol error, or when the
 * application calls agi_session_close(). on_end runs exactly once, after which the session
 * pointer must not be used.
 */
#ifndef SB_AGI_SESSION_H
#define SB_AGI_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "agi/proto.h"
#include "agi/server.h"

/* A command's outcome. status is 0 for a 2xx reply; SB_EFAILED for 510, 511, 520 and other
 * error codes (reply holds code and text); with reply NULL: SB_ETIMEDOUT, SB_EDISCONN (Asterisk
 * closed first), SB_ECANCELED (the session ended before the command ran), or a UV_* write
 * error. The reply is borrowed for the duration of the call. */
typedef void (*agi_reply_cb)(agi_session *s, int status, const agi_reply *reply, void *user);

/* The channel hung up: Asterisk sent the HANGUP notification. Commands may still run (most will
 * get 511). */
typedef void (*agi_hangup_cb)(agi_session *s, void *user);

/* The session is over. reason: 0 when Asterisk or the application closed it, SB_EFAILED after a
 * 511, SB_ETIMEDOUT, SB_EPROTO, SB_ETOOBIG, SB_ECANCELED (server stopped) or a UV_* error. */
typedef void (*agi_end_cb)(agi_session *s, int reason, void *user);

/* Sets the callbacks and their user pointer (any may be NULL). Call it from on_session. */
void agi_session_set_handlers(agi_session *s, agi_hangup_cb on_hangup, agi_end_cb on_end,
                              void *user);

/* The parsed header (borrowed, valid until on_end returns). */
const agi_request *agi_session_request(const agi_session *s);

/* Most commands one session may have queued or in flight. */
#define AGI_SESSION_QUEUE_MAX 64

/* Queues a command line (borrowed; copied) that ends with the single "\n", as built by
 * agi_command_format(). timeout_ms 0 means no timeout. Returns 0 (cb will run exactly once),
 * SB_EINVAL (not one line), SB_ETOOBIG (AGI_SESSION_QUEUE_MAX already pending), SB_ECANCELED
 * (the session is ending) or SB_ENOMEM; on an error cb will not run. */
int agi_session_send(agi_session *s, sb_slice line, unsigned timeout_ms, agi_reply_cb cb,
                     void *user);

/* Formats (agi_command_format()) and queues a command. Same returns, plus its SB_EINVAL and
 * SB_ETOOBIG. */
int agi_session_command(agi_session *s, unsigned timeout_ms, agi_reply_cb cb, void *user,
                        const char *verb, const sb_slice *args, size_t nargs);

/* Has Asterisk sent HANGUP on this session? */
bool agi_session_is_hung_up(const agi_session *s);

/* Commands queued or in flight. */
size_t agi_session_pending(const agi_session *s);

/* Ends the session: queued commands get SB_ECANCELED, on_end runs with reason 0, the socket is
 * closed (Asterisk then continues the dialplan). Safe to call from any callback and twice. */
void agi_session_close(agi_session *s);

#endif
