/* internal.h: what the AMI client's files share, never included outside src/ami/.
 *
 * client.c owns the connection (connect, read path, keepalive, reconnect, lifecycle); login.c
 * runs the login sequence (Challenge/MD5, Login, Filters) up to READY; actions.c keeps the
 * in-flight actions (a hash table keyed by ActionID, so a response or list event finds its action
 * in O(1) whatever the number in flight, and a binary min-heap of deadlines served by one libuv
 * timer) and completes them from responses and events.
 */
#ifndef SB_AMI_INTERNAL_H
#define SB_AMI_INTERNAL_H

#include "ami/client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest ActionID the client generates, NUL included (client.h promises callers 24 bytes). */
#define AMI_ACTIONID_MAX 24
/* Cap on the events collected for one list action (a peer cannot make us allocate without bound).
 */
#define AMI_LIST_MAX_ITEMS 100000

typedef struct ami_pending {
    struct ami_pending *hnext; /* hash chain, and the list ami_pending_detach_all() returns */
    size_t heap_idx;           /* position in the deadline heap */
    uint64_t deadline;         /* uv_now() milliseconds */
    ami_action_kind kind;
    ami_result_cb cb;
    void *ud;
    bool internal;        /* login, filter or keepalive action of the client itself */
    bool items_overflow;  /* list longer than AMI_LIST_MAX_ITEMS, or out of memory */
    ami_packet *response; /* owned copy of the Response (lists and originates only) */
    ami_packet **items;   /* owned copies of the list events */
    size_t nitems, items_cap;
    size_t idlen;
    char id[AMI_ACTIONID_MAX];
} ami_pending;

typedef struct ami_pending_set {
    ami_pending **buckets; /* power-of-two count */
    size_t nbuckets;
    size_t count;
    ami_pending **heap; /* min-heap on deadline */
    size_t heap_len, heap_cap;
    size_t awaiting_events; /* LIST and ORIGINATE entries: events must be checked for ActionID */
} ami_pending_set;

/* Prepares an empty set; 0 or SB_ENOMEM. Free with ami_pending_set_free(). */
int ami_pending_set_init(ami_pending_set *s);
/* Releases the set and every entry still in it, without calling any callback. */
void ami_pending_set_free(ami_pending_set *s);
/* Adds p (the set borrows it until removed); 0 or SB_ENOMEM (p is then not in the set). */
int ami_pending_insert(ami_pending_set *s, ami_pending *p);
/* The entry whose ActionID equals id byte for byte, or NULL (borrowed). */
ami_pending *ami_pending_find(const ami_pending_set *s, sb_slice id);
/* Takes p out of the table and the heap; the caller owns it again. */
void ami_pending_remove(ami_pending_set *s, ami_pending *p);
/* The entry with the earliest deadline, or NULL (borrowed). */
ami_pending *ami_pending_earliest(const ami_pending_set *s);
/* Empties the set and returns every entry as a list chained through hnext (caller owns them). */
ami_pending *ami_pending_detach_all(ami_pending_set *s);
/* Frees p and the packets it holds. */
void ami_pending_release(ami_pending *p);
/* Appends an owned copy of ev to p's list items; 0, SB_ETOOBIG or SB_ENOMEM. */
int ami_pending_add_item(ami_pending *p, const ami_packet *ev);

/* ---- the client object (client.c) ---- */

#define AMI_MAX_ADDRS 8

typedef struct ami_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    ami_client *c;
    bool closing;
} ami_conn;

typedef struct ami_resolve {
    uv_getaddrinfo_t req;
    ami_client *c;
} ami_resolve;

struct ami_client {
    uv_loop_t *loop;
    ami_client_config cfg; /* strings below are owned copies */
    char *name, *host, *username, *secret, *events;
    char **filters;
    ami_client_callbacks cbs;

    ami_client_state state;
    char last_why[96];     /* last reason given to on_state (to report each change once) */
    char last_failure[96]; /* last connect failure logged at WARN (repeats go to DEBUG) */
    bool auth_failing;     /* in a streak of failed logins (logged once at ERROR) */
    bool ever_ready;       /* READY at least once since ami_client_start() */
    bool freeing;          /* ami_client_free() called */
    bool drop_requested;   /* a send failed: drop from the keepalive timer */
    unsigned handles;      /* open handles and requests; memory goes when 0 and freeing */

    ami_codec codec;
    ami_conn *conn; /* current connection, NULL between attempts */
    ami_resolve *resolving;
    struct sockaddr_storage addrs[AMI_MAX_ADDRS];
    size_t naddrs, addr_next;

    uv_timer_t conn_timer; /* connect/login deadline, or the back-off delay */
    uv_timer_t ka_timer;   /* keepalive Ping and stall detection */
    uv_timer_t act_timer;  /* earliest action deadline */
    uint64_t act_due;      /* when act_timer fires, UINT64_MAX when idle */

    ami_pending_set pending;
    uint64_t next_id;
    char id_prefix[16];
    char version[32];
    size_t filters_left;

    uint32_t backoff_attempt;
    uint64_t rng;
    uint64_t last_rx, last_ping;
    uint64_t codec_log_at;
    uint64_t codec_suppressed;
    bool codec_logged;

    ami_client_stats st;
};

/* Sends an action on the current connection (ami_client_send() without the READY check when
 * internal). sensitive: the serialized bytes are wiped after writing (Login). Same contract as
 * ami_client_send() otherwise: m is freed, cb never runs when this returns an error. */
int ami_client_send_action(ami_client *c, ami_msg *m, ami_action_kind kind, uint32_t timeout_ms,
                           ami_result_cb cb, void *ud, bool internal, bool sensitive,
                           char *action_id, size_t action_id_size);
/* A connection attempt failed before READY: logs (new reason at WARN, a repeat at DEBUG) and
 * drops with retry. */
void ami_client_attempt_failed(ami_client *c, const char *why);
/* Ends the connection or attempt; retry: back-off then reconnect (CONNECTING, pending actions
 * fail with SB_EDISCONN), else STOPPED (SB_ECANCELED). The caller has logged why. */
void ami_client_drop(ami_client *c, const char *why, bool retry);
/* Records the state and calls on_state when the state or the reason changed. */
void ami_client_set_state(ami_client *c, ami_client_state st, const char *why);
/* Arms the keepalive timer for the nearer of the next Ping and the stall deadline. */
void ami_client_ka_arm(ami_client *c);
/* Copies an untrusted slice into a short printable string (size > 0). */
void ami_reason_copy(sb_slice s, char *dst, size_t size);

/* ---- login.c ---- */

/* After the banner: Challenge + MD5 Login or plain Login, then Filters, then READY. */
void ami_login_start(ami_client *c);

/* ---- actions.c: completing actions ---- */

/* A Response packet: completes (or advances) the action whose ActionID it carries. */
void ami_actions_on_response(ami_client *c, const ami_packet *pkt);
/* An event: list items and OriginateResponse go to their action, the rest to on_event. */
void ami_actions_on_event(ami_client *c, const ami_packet *ev);
/* Fails every pending action with status (callbacks may send, stop or free). */
void ami_actions_fail_all(ami_client *c, int status);
/* Re-arms the action timer when the earliest deadline is earlier than the armed one. */
void ami_actions_timer_arm(ami_client *c);

#endif
