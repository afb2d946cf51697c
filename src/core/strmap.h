/* strmap.h: a string-keyed hash map (chained, owned key copies, borrowed values).
 *
 * Used wherever the daemon indexes live objects by an Asterisk name (Uniqueid, Linkedid, queue,
 * extension, device) and by subscriber keys. Lookups take a {ptr,len} slice so wire data never has
 * to be copied or NUL-terminated just to look something up. Values are opaque pointers: the map
 * never frees them. Deleting the entry an iterator stands on is safe (the iterator has already
 * moved past it); deleting others while iterating is not.
 */
#ifndef SB_CORE_STRMAP_H
#define SB_CORE_STRMAP_H

#include "core/slice.h"

#include <stddef.h>

typedef struct sb_strmap_entry sb_strmap_entry;

typedef struct sb_strmap {
    sb_strmap_entry **buckets;
    size_t nbuckets;
    size_t count;
} sb_strmap;

typedef struct sb_strmap_iter {
    const sb_strmap *map;
    size_t bucket;
    sb_strmap_entry *next;
} sb_strmap_iter;

/* Prepares an empty map; allocates nothing until the first put. */
void sb_strmap_init(sb_strmap *m);
/* Frees the entries and key copies (never the values); the map is empty and reusable. */
void sb_strmap_free(sb_strmap *m);
/* Value stored under key, or NULL. */
void *sb_strmap_get(const sb_strmap *m, sb_slice key);
/* Stores value under key (replacing an existing value). 0 or SB_ENOMEM. */
int sb_strmap_put(sb_strmap *m, sb_slice key, void *value);
/* Removes key; returns its value (for the caller to free) or NULL when absent. */
void *sb_strmap_del(sb_strmap *m, sb_slice key);
static inline size_t sb_strmap_count(const sb_strmap *m)
{
    return m->count;
}

/* Iteration in no particular order. */
void sb_strmap_iter_init(sb_strmap_iter *it, const sb_strmap *m);
/* Next entry: 1 with *key (borrowed, NUL-terminated, valid while the entry lives) and *value, or
 * 0 at the end. */
int sb_strmap_iter_next(sb_strmap_iter *it, const char **key, void **value);

#endif
