/* internal.h: helpers shared by the AMI client's files, never included outside src/ami/.
 *
 * actions.c keeps the client's in-flight actions: a hash table keyed by ActionID (a response or
 * list event finds its action in O(1) whatever the number in flight) and a binary min-heap of
 * deadlines (one libuv timer serves every action's timeout). client.c owns the connection.
 */
#ifndef SB_AMI_INTERNAL_H
#define SB_AMI_INTERNAL_H

#include "ami/client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
