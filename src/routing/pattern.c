/* pattern.c: compiling, matching and ordering Asterisk dial patterns (see pattern.h).
 *
 * A pattern compiles into a short array of elements (a literal byte, a digit range for X/Z/N, a
 * character set, `.` or `!`), each carrying Asterisk's sort key from ext_cmp_pattern_pos():
 * bits 0-7 the lowest character, bits 8-15 the set size, 0x18000 for `.`, 0x28000 for `!` and
 * 0x30000 for the end of the pattern. Ties on the key are broken by comparing the 256-bit
 * character sets, lowest characters first, as Asterisk does with its `bitwise` arrays.
 */
#include "routing/pattern.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { EL_LIT, EL_RANGE, EL_SET, EL_DOT, EL_BANG };

/* Sort keys from Asterisk's ext_cmp_pattern_pos(). */
#define KEY_DOT 0x18000u
#define KEY_BANG 0x28000u
#define KEY_END 0x30000u

/* A first element with more members than this is not indexed (see the tables section). */
#define INDEX_SET_MAX 32

typedef struct pat_elem {
    uint32_t key;
    uint8_t kind;
    uint8_t lo;  /* EL_LIT: the byte; EL_RANGE: first digit ('0', '1' or '2') */
    uint8_t set; /* EL_SET: index into sets */
} pat_elem;

struct route_pattern {
    bool is_pattern;
    size_t nel;
    pat_elem *el;        /* nel elements (patterns only) */
    uint8_t (*sets)[32]; /* character sets in Asterisk's bit layout */
    char *literal;       /* literal extensions: the text without '-' */
    size_t literal_len;
    char *text; /* NUL-terminated copy of the source text */
};

static void set_error(route_pattern_error *err, size_t offset, const char *msg)
{
    if (!err)
        return;
    err->offset = offset;
    snprintf(err->message, sizeof err->message, "%s", msg);
}

static bool bad_char(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

static void bm_set(uint8_t *bm, unsigned c)
{
    bm[c / 8] |= (uint8_t)(1u << (7 - c % 8));
}

static bool bm_has(const uint8_t *bm, unsigned c)
{
    return (bm[c / 8] & (1u << (7 - c % 8))) != 0;
}

/* Parses a `[...]` set starting at s[i] == '['. Returns the index after ']' or 0 on error. */
static size_t compile_set(const char *s, size_t len, size_t i, uint8_t *bm, uint32_t *key,
                          route_pattern_error *err)
{
    size_t end, j;
    unsigned count = 0, cmin = 0xff;
    for (end = i + 1; end < len && s[end] != ']'; end++)
        ;
    if (end >= len) {
        set_error(err, i, "unclosed '[' (missing ']')");
        return 0;
    }
    if (end == i + 1) {
        set_error(err, i, "empty character set '[]'");
        return 0;
    }
    memset(bm, 0, 32);
    /* As Asterisk reads a set: "a-c" is a range only when a character follows the '-' inside
     * the brackets, so a leading or trailing '-' is literal. */
    for (j = i + 1; j < end; j++) {
        unsigned c1 = (unsigned char)s[j], c2 = c1, c;
        if (j + 2 < end && s[j + 1] == '-') {
            c2 = (unsigned char)s[j + 2];
            if (c1 > c2) {
                set_error(err, j, "reversed range in character set");
                return 0;
            }
            if (bad_char((unsigned char)c2)) {
                set_error(err, j + 2, "invalid character (space or control) in pattern");
                return 0;
            }
            j += 2;
        }
        if (bad_char((unsigned char)c1)) {
            set_error(err, j, "invalid character (space or control) in pattern");
            return 0;
        }
        if (c1 < cmin)
            cmin = c1;
        for (c = c1; c <= c2; c++) {
            if (!bm_has(bm, c)) {
                bm_set(bm, c);
                count++;
            }
        }
    }
    *key = (count << 8) | cmin;
    return end + 1;
}

int route_pattern_compile(sb_slice text, route_pattern **out, route_pattern_error *err)
{
    pat_elem el[ROUTE_PATTERN_MAX];
    uint8_t sets[ROUTE_PATTERN_MAX / 3 + 1][32];
    char lit[ROUTE_PATTERN_MAX];
    size_t nel = 0, nsets = 0, nlit = 0, i, size;
    const char *s = text.ptr;
    bool is_pattern;
    route_pattern *p;
    char *mem;

    *out = NULL;
    if (text.len == 0) {
        set_error(err, 0, "empty pattern");
        return SB_EINVAL;
    }
    if (text.len > ROUTE_PATTERN_MAX) {
        set_error(err, ROUTE_PATTERN_MAX, "pattern longer than 80 characters");
        return SB_EINVAL;
    }
    is_pattern = s[0] == '_';
    for (i = is_pattern ? 1 : 0; i < text.len;) {
        unsigned char c = (unsigned char)s[i];
        if (bad_char(c)) {
            set_error(err, i, "invalid character (space or control) in pattern");
            return SB_EINVAL;
        }
        if (c == '/') {
            /* Asterisk reads "exten/callerid" as a caller-ID match; rules have their own caller
             * condition, so a '/' here is a mistake. */
            set_error(err, i, "'/' is not allowed (use the rule's caller condition)");
            return SB_EINVAL;
        }
        if (c == '-') { /* eye candy, as in NXX-XXX-XXXX */
            i++;
            continue;
        }
        if (!is_pattern) {
            lit[nlit++] = (char)c;
            i++;
            continue;
        }
        if (nel > 0 && (el[nel - 1].kind == EL_DOT || el[nel - 1].kind == EL_BANG)) {
            /* Asterisk stops matching at '.' or '!', silently ignoring the rest: refuse it. */
            set_error(err, i,
                      el[nel - 1].kind == EL_DOT ? "'.' must end the pattern"
                                                 : "'!' must end the pattern");
            return SB_EINVAL;
        }
        pat_elem *e = &el[nel];
        memset(e, 0, sizeof *e);
        switch (c) {
        case '[': {
            size_t next = compile_set(s, text.len, i, sets[nsets], &e->key, err);
            if (next == 0)
                return SB_EINVAL;
            e->kind = EL_SET;
            e->set = (uint8_t)nsets++;
            i = next;
            nel++;
            continue;
        }
        case ']':
            set_error(err, i, "']' without '['");
            return SB_EINVAL;
        case 'x':
        case 'X':
            e->kind = EL_RANGE;
            e->lo = '0';
            e->key = 0x0A00u | '0';
            break;
        case 'z':
        case 'Z':
            e->kind = EL_RANGE;
            e->lo = '1';
            e->key = 0x0900u | '1';
            break;
        case 'n':
        case 'N':
            e->kind = EL_RANGE;
            e->lo = '2';
            e->key = 0x0800u | '2';
            break;
        case '.':
            e->kind = EL_DOT;
            e->key = KEY_DOT;
            break;
        case '!':
            e->kind = EL_BANG;
            e->key = KEY_BANG;
            break;
        default:
            e->kind = EL_LIT;
            e->lo = c;
            e->key = 0x0100u | c;
            break;
        }
        nel++;
        i++;
    }
    if ((is_pattern && nel == 0) || (!is_pattern && nlit == 0)) {
        set_error(err, 0, "empty pattern");
        return SB_EINVAL;
    }

    size = sizeof *p + nel * sizeof(pat_elem) + nsets * 32 + (nlit + 1) + (text.len + 1);
    mem = malloc(size);
    if (!mem)
        return SB_ENOMEM;
    p = (route_pattern *)(void *)mem;
    mem += sizeof *p;
    p->is_pattern = is_pattern;
    p->nel = nel;
    p->el = (pat_elem *)(void *)mem;
    if (nel)
        memcpy(p->el, el, nel * sizeof(pat_elem));
    mem += nel * sizeof(pat_elem);
    p->sets = (uint8_t(*)[32])(void *)mem;
    if (nsets)
        memcpy(p->sets, sets, nsets * 32);
    mem += nsets * 32;
    p->literal = mem;
    p->literal_len = nlit;
    if (nlit)
        memcpy(p->literal, lit, nlit);
    p->literal[nlit] = '\0';
    mem += nlit + 1;
    p->text = mem;
    memcpy(p->text, text.ptr, text.len);
    p->text[text.len] = '\0';
    *out = p;
    return 0;
}

void route_pattern_free(route_pattern *p)
{
    free(p);
}

const char *route_pattern_text(const route_pattern *p)
{
    return p->text;
}

bool route_pattern_is_pattern(const route_pattern *p)
{
    return p->is_pattern;
}

static bool elem_accepts(const route_pattern *p, const pat_elem *e, unsigned char c)
{
    switch (e->kind) {
    case EL_LIT:
        return c == e->lo;
    case EL_RANGE:
        return c >= e->lo && c <= '9';
    case EL_SET:
        return bm_has(p->sets[e->set], c);
    default:
        return true;
    }
}

bool route_pattern_match(const route_pattern *p, sb_slice dialed)
{
    size_t i = 0, j = 0;
    if (!p->is_pattern) {
        for (; j < dialed.len; j++) {
            if (dialed.ptr[j] == '-')
                continue;
            if (i >= p->literal_len || dialed.ptr[j] != p->literal[i])
                return false;
            i++;
        }
        return i == p->literal_len;
    }
    /* _extension_match_core() in E_MATCH mode. */
    for (;;) {
        while (j < dialed.len && dialed.ptr[j] == '-')
            j++;
        if (j >= dialed.len || i >= p->nel)
            break;
        const pat_elem *e = &p->el[i];
        if (e->kind == EL_DOT || e->kind == EL_BANG)
            return true;
        if (!elem_accepts(p, e, (unsigned char)dialed.ptr[j]))
            return false;
        i++;
        j++;
    }
    if (j < dialed.len)
        return false; /* number longer than the pattern */
    if (i >= p->nel)
        return true;
    /* The number ran out: only '!' (zero or more) still matches; '.' needs one more. */
    return p->el[i].kind == EL_BANG;
}

static void elem_bitmap(const route_pattern *p, const pat_elem *e, uint8_t *bm)
{
    unsigned c;
    memset(bm, 0, 32);
    switch (e->kind) {
    case EL_LIT:
        bm_set(bm, e->lo);
        break;
    case EL_RANGE:
        for (c = e->lo; c <= '9'; c++)
            bm_set(bm, c);
        break;
    case EL_SET:
        memcpy(bm, p->sets[e->set], 32);
        break;
    default:
        break;
    }
}

static int sign(long v)
{
    return (v > 0) - (v < 0);
}

int route_pattern_cmp(const route_pattern *a, const route_pattern *b)
{
    size_t i;
    if (!a->is_pattern) {
        if (b->is_pattern)
            return -1; /* literal extensions come first */
        size_t n = a->literal_len < b->literal_len ? a->literal_len : b->literal_len;
        int c = n ? memcmp(a->literal, b->literal, n) : 0;
        if (c)
            return sign(c);
        return sign((long)a->literal_len - (long)b->literal_len);
    }
    if (!b->is_pattern)
        return 1;
    for (i = 0;; i++) {
        uint32_t ka = i < a->nel ? a->el[i].key : KEY_END;
        uint32_t kb = i < b->nel ? b->el[i].key : KEY_END;
        if (ka != kb)
            return ka < kb ? -1 : 1;
        if (ka == KEY_END)
            return 0;
        if (ka != KEY_DOT && ka != KEY_BANG) {
            uint8_t ba[32], bb[32];
            int c;
            elem_bitmap(a, &a->el[i], ba);
            elem_bitmap(b, &b->el[i], bb);
            /* Same size and lowest member: the set holding lower characters sorts first, which
             * is memcmp(right, left) in Asterisk's most-significant-bit-first layout. */
            c = memcmp(bb, ba, 32);
            if (c)
                return sign(c);
        }
    }
}

/* ---- tables ----
 *
 * Patterns are sorted once into Asterisk's order (their rank). A prefix trie over element
 * positions then narrows the candidates for a number: a node splits its patterns by the
 * character their element at that depth requires. Only single characters split (and, at the
 * root, sets of up to INDEX_SET_MAX characters such as X, N, Z, [1-5], which are copied into each
 * of their characters' children); a pattern whose element there is wider, `.`, `!`, or that
 * has ended, stays in the node's own list. A lookup walks down by the number's characters and
 * merges the lists it passed, in rank order, testing each candidate until one matches: the
 * first match is the one Asterisk's sorted walk would reach first.
 */

#define INDEX_LEAF_MAX 8 /* a node with this few patterns is not split further */
#define INDEX_DEPTH_MAX 12

typedef struct idx_node idx_node;
typedef struct idx_child {
    unsigned char c;
    idx_node *node;
} idx_child;

struct idx_node {
    uint32_t *ranks; /* tried at this node, ascending */
    size_t n;
    idx_child *kids; /* sorted by c */
    size_t nkids;
};

struct route_pattern_table {
    const route_pattern *const *pats;
    uint32_t *lits; /* indices of literal extensions, sorted by (text, index) */
    size_t nlits;
    uint32_t *order; /* indices of patterns, sorted by (Asterisk order, index); position = rank */
    size_t npat;
    idx_node root;
};

typedef struct sort_item {
    const route_pattern *p;
    uint32_t idx;
} sort_item;

static int cmp_items(const void *x, const void *y)
{
    const sort_item *a = x, *b = y;
    int c = route_pattern_cmp(a->p, b->p);
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Does p's element at depth split into children, and may c be one of them? */
static bool splits_on(const route_pattern *p, size_t depth, unsigned c)
{
    const pat_elem *e;
    if (depth >= p->nel)
        return false;
    e = &p->el[depth];
    if (e->kind == EL_DOT || e->kind == EL_BANG)
        return false;
    if (depth > 0 && (e->key >> 8) != 1)
        return false; /* below the root only single characters: no copies */
    if ((e->key >> 8) > INDEX_SET_MAX)
        return false;
    return elem_accepts(p, e, (unsigned char)c);
}

static bool splits(const route_pattern *p, size_t depth)
{
    const pat_elem *e;
    if (depth >= p->nel)
        return false;
    e = &p->el[depth];
    if (e->kind == EL_DOT || e->kind == EL_BANG)
        return false;
    return (e->key >> 8) <= (depth > 0 ? 1u : INDEX_SET_MAX);
}

static void free_node(idx_node *node)
{
    for (size_t i = 0; i < node->nkids; i++) {
        free_node(node->kids[i].node);
        free(node->kids[i].node);
    }
    free(node->kids);
    free(node->ranks);
}

static int build_node(const route_pattern_table *t, idx_node *node, const uint32_t *ranks, size_t n,
                      size_t depth)
{
    uint32_t counts[256] = {0};
    uint32_t *tmp = NULL;
    size_t nrest = 0, nkids = 0, i;
    unsigned c;

    if (n > INDEX_LEAF_MAX && depth < INDEX_DEPTH_MAX) {
        for (i = 0; i < n; i++) {
            const route_pattern *p = t->pats[t->order[ranks[i]]];
            if (!splits(p, depth)) {
                nrest++;
                continue;
            }
            for (c = 0; c < 256; c++)
                counts[c] += splits_on(p, depth, c);
        }
    } else {
        nrest = n;
    }
    for (c = 0; c < 256; c++)
        nkids += counts[c] != 0;
    if (nkids == 0)
        nrest = n;
    node->ranks = malloc((nrest ? nrest : 1) * sizeof(uint32_t));
    node->kids = nkids ? calloc(nkids, sizeof(idx_child)) : NULL;
    tmp = nkids ? malloc(n * sizeof(uint32_t)) : NULL;
    if (!node->ranks || (nkids && (!node->kids || !tmp)))
        goto nomem;
    for (i = 0; i < n; i++) {
        if (nkids == 0 || !splits(t->pats[t->order[ranks[i]]], depth))
            node->ranks[node->n++] = ranks[i];
    }
    for (c = 0; c < 256 && nkids; c++) {
        size_t m = 0;
        if (!counts[c])
            continue;
        for (i = 0; i < n; i++) {
            if (splits_on(t->pats[t->order[ranks[i]]], depth, c))
                tmp[m++] = ranks[i];
        }
        idx_child *k = &node->kids[node->nkids];
        k->c = (unsigned char)c;
        k->node = calloc(1, sizeof(idx_node));
        if (!k->node)
            goto nomem;
        node->nkids++;
        if (build_node(t, k->node, tmp, m, depth + 1) != 0)
            goto nomem;
    }
    free(tmp);
    return 0;
nomem:
    free(tmp);
    return SB_ENOMEM;
}

int route_pattern_table_new(const route_pattern *const *pats, size_t n, route_pattern_table **out)
{
    route_pattern_table *t = NULL;
    sort_item *items = NULL;
    uint32_t *ranks = NULL;
    size_t i, nl = 0, np = 0;
    int rc = SB_ENOMEM;

    *out = NULL;
    if (n > 1000000)
        return SB_EINVAL;
    for (i = 0; i < n; i++) {
        if (!pats[i])
            return SB_EINVAL;
    }
    t = calloc(1, sizeof *t);
    items = malloc((n ? n : 1) * sizeof *items);
    ranks = malloc((n ? n : 1) * sizeof *ranks);
    if (!t || !items || !ranks)
        goto fail;
    t->pats = pats;
    t->lits = malloc((n ? n : 1) * sizeof(uint32_t));
    t->order = malloc((n ? n : 1) * sizeof(uint32_t));
    if (!t->lits || !t->order)
        goto fail;

    /* Literals, sorted by text then index. */
    for (i = 0; i < n; i++) {
        if (!pats[i]->is_pattern)
            items[nl++] = (sort_item){pats[i], (uint32_t)i};
    }
    qsort(items, nl, sizeof *items, cmp_items);
    for (i = 0; i < nl; i++)
        t->lits[i] = items[i].idx;
    t->nlits = nl;

    /* Patterns, in Asterisk's order (stable by index). */
    for (i = 0; i < n; i++) {
        if (pats[i]->is_pattern)
            items[np++] = (sort_item){pats[i], (uint32_t)i};
    }
    qsort(items, np, sizeof *items, cmp_items);
    for (i = 0; i < np; i++) {
        t->order[i] = items[i].idx;
        ranks[i] = (uint32_t)i;
    }
    t->npat = np;
    if (build_node(t, &t->root, ranks, np, 0) != 0)
        goto fail;
    *out = t;
    t = NULL;
    rc = 0;
fail:
    free(items);
    free(ranks);
    route_pattern_table_free(t);
    return rc;
}

void route_pattern_table_free(route_pattern_table *t)
{
    if (!t)
        return;
    free_node(&t->root);
    free(t->lits);
    free(t->order);
    free(t);
}

/* Compares a literal extension with a number already stripped of '-'. */
static int cmp_literal(const route_pattern *p, const char *d, size_t dlen)
{
    size_t n = p->literal_len < dlen ? p->literal_len : dlen;
    int c = n ? memcmp(p->literal, d, n) : 0;
    if (c)
        return c;
    return (p->literal_len > dlen) - (p->literal_len < dlen);
}

static const idx_node *find_child(const idx_node *node, unsigned char c)
{
    size_t lo = 0, hi = node->nkids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (node->kids[mid].c < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < node->nkids && node->kids[lo].c == c ? node->kids[lo].node : NULL;
}

long route_pattern_table_best(const route_pattern_table *t, sb_slice dialed)
{
    char norm[ROUTE_PATTERN_MAX];
    const idx_node *path[INDEX_DEPTH_MAX + 1];
    size_t pos[INDEX_DEPTH_MAX + 1];
    size_t nlen = 0, j, lo, hi, k = 0;
    bool fits = true;

    /* 1. A literal extension always wins: binary search on the number without '-'. */
    for (j = 0; j < dialed.len; j++) {
        if (dialed.ptr[j] == '-')
            continue;
        if (nlen == sizeof norm) {
            fits = false;
            break;
        }
        norm[nlen++] = dialed.ptr[j];
    }
    if (fits && nlen > 0 && t->nlits > 0) {
        lo = 0;
        hi = t->nlits;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cmp_literal(t->pats[t->lits[mid]], norm, nlen) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < t->nlits && cmp_literal(t->pats[t->lits[lo]], norm, nlen) == 0)
            return (long)t->lits[lo];
    }

    /* 2. Patterns: walk the trie by the number's characters ('-' skipped), then merge the lists
     * of the nodes passed, in rank order, until a candidate matches. */
    const idx_node *node = &t->root;
    j = 0;
    for (;;) {
        path[k] = node;
        pos[k++] = 0;
        if (node->nkids == 0 || k > INDEX_DEPTH_MAX)
            break;
        while (j < dialed.len && dialed.ptr[j] == '-')
            j++;
        if (j >= dialed.len)
            break;
        node = find_child(node, (unsigned char)dialed.ptr[j++]);
        if (!node)
            break;
    }
    for (;;) {
        size_t best = k;
        uint32_t rank = UINT32_MAX;
        for (size_t q = 0; q < k; q++) {
            if (pos[q] < path[q]->n && path[q]->ranks[pos[q]] < rank) {
                rank = path[q]->ranks[pos[q]];
                best = q;
            }
        }
        if (best == k)
            return -1;
        pos[best]++;
        if (route_pattern_match(t->pats[t->order[rank]], dialed))
            return (long)t->order[rank];
    }
}
