/* strmap.c: chained hash map with FNV-1a hashing (see strmap.h). The table doubles when the
 * load passes 1 and never shrinks below its largest size; entries carry their key inline. */
#include "core/strmap.h"

#include "core/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sb_strmap_entry {
    sb_strmap_entry *next;
    uint64_t hash;
    void *value;
    size_t klen;
    char key[];
};

static uint64_t hash_slice(sb_slice s)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < s.len; i++) {
        h ^= (unsigned char)s.ptr[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void sb_strmap_init(sb_strmap *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void sb_strmap_free(sb_strmap *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        sb_strmap_entry *e = m->buckets[i];
        while (e) {
            sb_strmap_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    sb_strmap_init(m);
}

static sb_strmap_entry **find(const sb_strmap *m, sb_slice key, uint64_t h)
{
    sb_strmap_entry **pe = &m->buckets[h & (m->nbuckets - 1)];
    for (; *pe; pe = &(*pe)->next) {
        sb_strmap_entry *e = *pe;
        if (e->hash == h && e->klen == key.len &&
            (key.len == 0 || memcmp(e->key, key.ptr, key.len) == 0))
            return pe;
    }
    return pe;
}

void *sb_strmap_get(const sb_strmap *m, sb_slice key)
{
    if (m->count == 0)
        return NULL;
    sb_strmap_entry **pe = find(m, key, hash_slice(key));
    return *pe ? (*pe)->value : NULL;
}

static int grow(sb_strmap *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
    sb_strmap_entry **b = calloc(n, sizeof *b);
    if (!b)
        return SB_ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        sb_strmap_entry *e = m->buckets[i];
        while (e) {
            sb_strmap_entry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

int sb_strmap_put(sb_strmap *m, sb_slice key, void *value)
{
    uint64_t h = hash_slice(key);
    if (m->count >= m->nbuckets && grow(m) < 0)
        return SB_ENOMEM;
    sb_strmap_entry **pe = find(m, key, h);
    if (*pe) {
        (*pe)->value = value;
        return 0;
    }
    sb_strmap_entry *e = malloc(sizeof *e + key.len + 1);
    if (!e)
        return SB_ENOMEM;
    e->next = NULL;
    e->hash = h;
    e->value = value;
    e->klen = key.len;
    if (key.len)
        memcpy(e->key, key.ptr, key.len);
    e->key[key.len] = '\0';
    *pe = e;
    m->count++;
    return 0;
}

void *sb_strmap_del(sb_strmap *m, sb_slice key)
{
    if (m->count == 0)
        return NULL;
    sb_strmap_entry **pe = find(m, key, hash_slice(key));
    sb_strmap_entry *e = *pe;
    if (!e)
        return NULL;
    void *v = e->value;
    *pe = e->next;
    free(e);
    m->count--;
    return v;
}

void sb_strmap_iter_init(sb_strmap_iter *it, const sb_strmap *m)
{
    it->map = m;
    it->bucket = 0;
    it->next = NULL;
}

int sb_strmap_iter_next(sb_strmap_iter *it, const char **key, void **value)
{
    while (!it->next) {
        if (it->bucket >= it->map->nbuckets)
            return 0;
        it->next = it->map->buckets[it->bucket++];
    }
    sb_strmap_entry *e = it->next;
    it->next = e->next;
    if (key)
        *key = e->key;
    if (value)
        *value = e->value;
    return 1;
}
