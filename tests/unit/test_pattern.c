/* test_pattern.c: Asterisk dial patterns: syntax, matching, Asterisk's ordering, tables. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "routing/pattern.h"

static route_pattern *compile_ok(const char *text)
{
    route_pattern *p = NULL;
    route_pattern_error err = {0};
    int rc = route_pattern_compile(sb_slice_cstr(text), &p, &err);
    if (rc != 0)
        fail_msg("'%s' rejected: %s at %zu", text, err.message, err.offset);
    assert_non_null(p);
    return p;
}

static bool matches(const char *pattern, const char *dialed)
{
    route_pattern *p = compile_ok(pattern);
    bool m = route_pattern_match(p, sb_slice_cstr(dialed));
    route_pattern_free(p);
    return m;
}

static int cmp(const char *a, const char *b)
{
    route_pattern *pa = compile_ok(a), *pb = compile_ok(b);
    int c = route_pattern_cmp(pa, pb);
    int r = route_pattern_cmp(pb, pa);
    assert_int_equal(c, -r); /* antisymmetric */
    route_pattern_free(pa);
    route_pattern_free(pb);
    return c;
}

static void test_pattern_literal_extensions(void **state)
{
    assert_true(matches("100", "100"));
    assert_false(matches("100", "1000"));
    assert_false(matches("100", "10"));
    assert_true(matches("1-00", "100")); /* '-' is eye candy on both sides */
    assert_true(matches("100", "1-0-0"));
    assert_false(matches("abc", "ABC")); /* literals are case-sensitive */
    assert_true(matches("*98", "*98"));
    assert_true(matches("X", "X")); /* no '_': X is just a letter */
    assert_false(matches("X", "5"));
}

static void test_pattern_x_z_n(void **state)
{
    for (char d = '0'; d <= '9'; d++) {
        char s[2] = {d, 0};
        assert_true(matches("_X", s));
        assert_int_equal(matches("_Z", s), d >= '1');
        assert_int_equal(matches("_N", s), d >= '2');
        assert_true(matches("_x", s)); /* X, Z, N are case-insensitive */
        assert_int_equal(matches("_z", s), d >= '1');
        assert_int_equal(matches("_n", s), d >= '2');
    }
    assert_false(matches("_X", "a"));
    assert_false(matches("_X", "*"));
    assert_false(matches("_X", ""));
    assert_false(matches("_X", "12"));
    assert_true(matches("_NXXNXXXXXX", "2125551234"));
    assert_false(matches("_NXXNXXXXXX", "1125551234"));
    assert_false(matches("_NXXNXXXXXX", "212555123"));
    assert_true(matches("_1-800-NXX-XXXX", "18005551234"));
    assert_true(matches("_1-800-NXX-XXXX", "1-800-555-1234"));
}

static void test_pattern_sets_and_ranges(void **state)
{
    assert_true(matches("_[1-5]", "1"));
    assert_true(matches("_[1-5]", "5"));
    assert_false(matches("_[1-5]", "6"));
    assert_false(matches("_[1-5]", "0"));
    assert_true(matches("_[135]", "3"));
    assert_false(matches("_[135]", "2"));
    assert_true(matches("_[a-c]X", "b7"));
    assert_false(matches("_[a-c]X", "B7")); /* set members compare exactly */
    assert_true(matches("_[1-35-7]", "6"));
    assert_false(matches("_[1-35-7]", "4"));
    /* A leading or trailing '-' in a set is a member, but a '-' in the number is always
     * skipped as eye candy, so such a set only ever matches its other members. */
    assert_true(matches("_[-1]", "1"));
    assert_false(matches("_[-1]", "-"));
    assert_true(matches("_[1-]", "1"));
    assert_true(matches("_9[*#]", "9#"));
    assert_true(matches("_[x]", "x")); /* inside a set, x is a letter */
    assert_false(matches("_[x]", "5"));
    assert_true(matches("_[X]", "X"));
}

static void test_pattern_literal_characters_in_patterns(void **state)
{
    assert_true(matches("_9011.", "901144"));
    assert_false(matches("_9011.", "9012444"));
    assert_true(matches("_+34X.", "+34911"));
    assert_true(matches("_*72X.", "*721001"));
    assert_true(matches("_#X", "#1"));
    assert_false(matches("_a", "A")); /* ordinary letters keep their case */
    assert_true(matches("_a", "a"));
    assert_true(matches("_b", "b")); /* only X, Z, N are special */
}

static void test_pattern_dot_and_bang(void **state)
{
    assert_true(matches("_1.", "12"));
    assert_true(matches("_1.", "1234567890"));
    assert_false(matches("_1.", "1")); /* '.' is one or more */
    assert_true(matches("_1!", "1"));  /* '!' is zero or more */
    assert_true(matches("_1!", "12345"));
    assert_false(matches("_1!", "2"));
    assert_true(matches("_!", ""));
    assert_true(matches("_!", "anything"));
    assert_false(matches("_.", ""));
    assert_true(matches("_.", "x"));
    assert_true(matches("_X.", "1"
                               "-2"));
    assert_false(matches("_XX.", "1"));
}

static void test_pattern_asterisk_order(void **state)
{
    /* A literal extension beats any pattern. */
    assert_true(cmp("100", "_1XX") < 0);
    assert_true(cmp("_X", "5") > 0);
    /* More specific elements first, position by position. */
    assert_true(cmp("_12X", "_1X.") < 0);
    assert_true(cmp("_1X.", "_X.") < 0);
    assert_true(cmp("_12X", "_X.") < 0);
    assert_true(cmp("_XX", "_X.") < 0);
    /* Sets are ordered by size: a 5-member set beats N (8), Z (9), X (10). */
    assert_true(cmp("_[1-5]", "_X") < 0);
    assert_true(cmp("_[1-5]", "_N") < 0);
    assert_true(cmp("_N", "_Z") < 0);
    assert_true(cmp("_Z", "_X") < 0);
    assert_true(cmp("_1", "_[12]") < 0);
    /* Same size: the lower lowest character first, then the lower members. */
    assert_true(cmp("_[12]", "_[23]") < 0);
    assert_true(cmp("_[12]", "_[13]") < 0);
    assert_true(cmp("_[1-3]", "_[124]") < 0);
    /* '.' beats '!', and both beat the end of the pattern (Asterisk's 0x18000 < 0x28000 <
     * 0x30000), so "_X!" wins over "_X" for a one-digit number. */
    assert_true(cmp("_X.", "_X!") < 0);
    assert_true(cmp("_X!", "_X") < 0);
    assert_true(cmp("_X.", "_X") < 0);
    /* Equal as far as Asterisk is concerned. */
    assert_int_equal(cmp("_[0-9]", "_X"), 0);
    assert_int_equal(cmp("_1-2", "_12"), 0);
    assert_int_equal(cmp("_[21]", "_[12]"), 0);
    assert_int_equal(cmp("_x", "_X"), 0);
    assert_int_equal(cmp("1-00", "100"), 0);
    assert_true(cmp("100", "101") < 0);
    assert_true(cmp("10", "100") < 0);
}

static void test_pattern_rejects_invalid(void **state)
{
    static const struct {
        const char *text;
        size_t offset;
        const char *words;
    } bad[] = {
        {"", 0, "empty"},
        {"_", 0, "empty"},
        {"_--", 0, "empty"},
        {"-", 0, "empty"},
        {"_[12", 1, "unclosed"},
        {"_9[", 2, "unclosed"},
        {"_[]", 1, "empty character set"},
        {"_[5-1]", 2, "reversed"},
        {"_1.2", 3, "'.' must end"},
        {"_1!X", 3, "'!' must end"},
        {"_1 2", 2, "invalid character"},
        {"_[1 ]", 3, "invalid character"},
        {"10\t0", 2, "invalid character"},
        {"_1/2", 2, "'/'"},
        {"_1]", 2, "without '['"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        route_pattern *p = (route_pattern *)&p; /* must be reset to NULL */
        route_pattern_error err = {0};
        int rc = route_pattern_compile(sb_slice_cstr(bad[i].text), &p, &err);
        assert_int_equal(rc, SB_EINVAL);
        assert_null(p);
        if (!strstr(err.message, bad[i].words))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].text, err.message, bad[i].words);
        assert_int_equal(err.offset, bad[i].offset);
    }
    char longp[ROUTE_PATTERN_MAX + 2];
    memset(longp, 'X', sizeof longp);
    longp[0] = '_';
    longp[ROUTE_PATTERN_MAX + 1] = 0;
    route_pattern *p = NULL;
    assert_int_equal(route_pattern_compile(sb_slice_cstr(longp), &p, NULL), SB_EINVAL);
    longp[ROUTE_PATTERN_MAX] = 0; /* exactly 80 is fine */
    p = compile_ok(longp);
    assert_string_equal(route_pattern_text(p), longp);
    route_pattern_free(p);
}

/* The winner by brute force: the lowest in Asterisk's order among the matching, ties by index. */
static long brute_best(route_pattern **pats, size_t n, const char *dialed)
{
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        if (!route_pattern_match(pats[i], sb_slice_cstr(dialed)))
            continue;
        if (best < 0 || route_pattern_cmp(pats[i], pats[best]) < 0)
            best = (long)i;
    }
    return best;
}

static long table_best(const char *const *texts, size_t n, const char *dialed)
{
    route_pattern *pats[32];
    route_pattern_table *t = NULL;
    assert_true(n <= 32);
    for (size_t i = 0; i < n; i++)
        pats[i] = compile_ok(texts[i]);
    assert_int_equal(route_pattern_table_new((const route_pattern *const *)pats, n, &t), 0);
    long r = route_pattern_table_best(t, sb_slice_cstr(dialed));
    assert_int_equal(r, brute_best(pats, n, dialed));
    route_pattern_table_free(t);
    for (size_t i = 0; i < n; i++)
        route_pattern_free(pats[i]);
    return r;
}

static void test_pattern_table_classic_router(void **state)
{
    /* The router of the issue: _3X, _2X, _XXXXXXXX to a trunk, 66 voicemail, _7X conference. */
    const char *t[] = {"_XXXXXXXX", "_3X", "_2X", "66", "_7X", "_X.", "_X!"};
    size_t n = sizeof t / sizeof t[0];
    assert_int_equal(table_best(t, n, "31"), 1);
    assert_int_equal(table_best(t, n, "25"), 2);
    assert_int_equal(table_best(t, n, "66"), 3); /* literal beats _X. and _X! */
    assert_int_equal(table_best(t, n, "71"), 4);
    assert_int_equal(table_best(t, n, "91222333"), 0);
    assert_int_equal(table_best(t, n, "912223334"), 5); /* nine digits: only _X. and _X! */
    assert_int_equal(table_best(t, n, "5"), 6);         /* one digit: _X. needs two */
    assert_int_equal(table_best(t, n, ""), -1);         /* _X! still needs its X */
    assert_int_equal(table_best(t, n, "a"), -1);
    const char *bang[] = {"_1X", "_!"};
    assert_int_equal(table_best(bang, 2, ""), 1); /* a leading '!' matches the empty number */
    assert_int_equal(table_best(bang, 2, "12"), 0);
    assert_int_equal(table_best(bang, 2, "-"), 1);
    const char *u[] = {"_X.", "_1X.", "_12X"};
    assert_int_equal(table_best(u, 3, "123"), 2);
    assert_int_equal(table_best(u, 3, "1234"), 1);
    assert_int_equal(table_best(u, 3, "2234"), 0);
    const char *v[] = {"_X", "_[1-5]", "_N", "_Z", "_X!"};
    assert_int_equal(table_best(v, 5, "3"), 1);
    assert_int_equal(table_best(v, 5, "7"), 2);
    assert_int_equal(table_best(v, 5, "1"), 1);
    assert_int_equal(table_best(v, 5, "0"), 4); /* _X! sorts before _X */
    const char *w[] = {"_12", "_1-2", "100"};
    assert_int_equal(table_best(w, 3, "12"), 0); /* equal patterns: first in the table */
    assert_int_equal(table_best(w, 3, "99"), -1);
}

static void random_text(char *out, size_t cap, bool pattern)
{
    static const char *atoms[] = {"X",     "Z",     "N", "1",     "2", "3", "0", "[1-5]",
                                  "[135]", "[0-2]", "-", "[a-c]", "a", "*", "9"};
    size_t len = 0;
    unsigned n = 1 + tu_rand() % 6;
    if (pattern)
        out[len++] = '_';
    for (unsigned i = 0; i < n; i++) {
        const char *a = pattern ? atoms[tu_rand() % 15] : atoms[3 + tu_rand() % 4];
        size_t al = strlen(a);
        if (len + al + 2 >= cap)
            break;
        memcpy(out + len, a, al);
        len += al;
    }
    if (pattern && tu_rand() % 4 == 0)
        out[len++] = tu_rand() % 2 ? '.' : '!';
    if (len == 1 && pattern)
        out[len++] = 'X';
    out[len] = 0;
}

static void test_pattern_table_agrees_with_brute_force(void **state)
{
    enum { N = 500, LOOKUPS = 20000 };
    route_pattern **pats = calloc(N, sizeof *pats);
    route_pattern_table *t = NULL;
    char text[64];
    size_t n = 0, hits = 0;
    tu_seed(42);
    while (n < N) {
        random_text(text, sizeof text, tu_rand() % 5 != 0);
        if (route_pattern_compile(sb_slice_cstr(text), &pats[n], NULL) == 0)
            n++;
    }
    assert_int_equal(route_pattern_table_new((const route_pattern *const *)pats, N, &t), 0);
    for (int i = 0; i < LOOKUPS; i++) {
        char d[16];
        unsigned len = tu_rand() % 8;
        for (unsigned k = 0; k < len; k++)
            d[k] = "0123456789abc*-"[tu_rand() % 15];
        d[len] = 0;
        long got = route_pattern_table_best(t, sb_slice_cstr(d));
        long want = brute_best(pats, N, d);
        if (got != want)
            fail_msg("'%s': table %ld (%s), brute force %ld (%s)", d, got,
                     got >= 0 ? route_pattern_text(pats[got]) : "-", want,
                     want >= 0 ? route_pattern_text(pats[want]) : "-");
        hits += got >= 0;
    }
    assert_true(hits > LOOKUPS / 4); /* the test exercises matches, not only misses */

    /* Timing, reported for the record (not asserted): a 500-rule table lookup. */
    struct timespec a, b;
    long sink = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 200000; i++) {
        char d[12];
        snprintf(d, sizeof d, "%u", tu_rand() % 100000000u);
        sink += route_pattern_table_best(t, sb_slice_cstr(d));
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 200000;
    printf("500-rule table: %.0f ns per lookup (sink %ld)\n", ns, sink);
    route_pattern_table_free(t);
    for (size_t i = 0; i < N; i++)
        route_pattern_free(pats[i]);
    free(pats);
}

/* ---- an oracle: Asterisk's algorithms on the raw text, re-implemented from main/pbx.c ---- */

static int ora_pos(const char **p, unsigned char *bits)
{
    unsigned char c;
    int count;
    unsigned cmin = 0xff;
    const char *end;
    do {
        do {
            c = (unsigned char)*(*p)++;
        } while (c == '-');
        switch (c) {
        default:
            bits[c / 8] = (unsigned char)(1 << (7 - c % 8));
            return 0x0100 | c;
        case 'n':
        case 'N':
            bits[6] = 0x3f;
            bits[7] = 0xc0;
            return 0x0800 | '2';
        case 'x':
        case 'X':
            bits[6] = 0xff;
            bits[7] = 0xc0;
            return 0x0A00 | '0';
        case 'z':
        case 'Z':
            bits[6] = 0x7f;
            bits[7] = 0xc0;
            return 0x0900 | '1';
        case '.':
            return 0x18000;
        case '!':
            return 0x28000;
        case '\0':
            *p = NULL;
            return 0x30000;
        case '[':
            break;
        }
        end = strchr(*p, ']');
        if (!end)
            return 0x40000;
        count = 0;
        cmin = 0xff;
        for (; *p < end; ++*p) {
            unsigned c1 = (unsigned char)(*p)[0], c2 = c1;
            if (*p + 2 < end && (*p)[1] == '-') {
                c2 = (unsigned char)(*p)[2];
                *p += 2;
            }
            if (c1 < cmin)
                cmin = c1;
            for (; c1 <= c2; ++c1) {
                unsigned char mask = (unsigned char)(1 << (7 - c1 % 8));
                if (!(bits[c1 / 8] & mask)) {
                    bits[c1 / 8] |= mask;
                    count += 0x100;
                }
            }
        }
        ++*p;
    } while (!count);
    return count | (int)cmin;
}

static int ora_cmp(const char *left, const char *right)
{
    if (left[0] != '_') {
        if (right[0] == '_')
            return -1;
        for (;;) { /* ext_cmp_exten */
            while (*left == '-')
                left++;
            while (*right == '-')
                right++;
            int c = (unsigned char)*left - (unsigned char)*right;
            if (c || !*left)
                return c;
            left++;
            right++;
        }
    }
    if (right[0] != '_')
        return 1;
    left++;
    right++;
    for (;;) { /* ext_cmp_pattern */
        unsigned char lb[32] = {0}, rb[32] = {0};
        int cmp = ora_pos(&left, lb) - ora_pos(&right, rb);
        if (!cmp)
            cmp = memcmp(rb, lb, 32);
        if (cmp || !left)
            return cmp;
    }
}

static bool ora_match(const char *pattern, const char *data)
{
    if (pattern[0] != '_') {
        for (;;) {
            while (*pattern == '-')
                pattern++;
            while (*data == '-')
                data++;
            if (*pattern != *data)
                return false;
            if (!*pattern)
                return true;
            pattern++;
            data++;
        }
    }
    ++pattern;
    for (;;) {
        while (*data == '-')
            ++data;
        while (*pattern == '-')
            ++pattern;
        if (!*data || !*pattern)
            break;
        switch (*pattern) {
        case '[': {
            ++pattern;
            const char *end = strchr(pattern, ']');
            for (; pattern < end; ++pattern) {
                if (pattern + 2 < end && pattern[1] == '-') {
                    if (*data >= pattern[0] && *data <= pattern[2])
                        break;
                    pattern += 2;
                } else if (*data == pattern[0]) {
                    break;
                }
            }
            if (pattern >= end)
                return false;
            pattern = end;
            break;
        }
        case 'n':
        case 'N':
            if (*data < '2' || *data > '9')
                return false;
            break;
        case 'x':
        case 'X':
            if (*data < '0' || *data > '9')
                return false;
            break;
        case 'z':
        case 'Z':
            if (*data < '1' || *data > '9')
                return false;
            break;
        case '.':
            return true;
        case '!':
            return true;
        default:
            if (*data != *pattern)
                return false;
        }
        ++data;
        ++pattern;
    }
    if (*data)
        return false;
    return *pattern == '\0' || *pattern == '!';
}

/* A number the pattern should accept, roughly: often exact, sometimes not (the oracle decides). */
static void instantiate(const char *t, char *d, size_t cap)
{
    size_t n = 0;
    if (*t == '_')
        t++;
    for (; *t && n + 4 < cap; t++) {
        switch (*t) {
        case 'X':
            d[n++] = (char)('0' + tu_rand() % 10);
            break;
        case 'N':
            d[n++] = (char)('2' + tu_rand() % 8);
            break;
        case 'Z':
            d[n++] = (char)('1' + tu_rand() % 9);
            break;
        case '[':
            d[n++] = t[1 + tu_rand() % 2];
            t = strchr(t, ']');
            break;
        case '.':
        case '!':
            for (unsigned k = tu_rand() % 3; k > 0; k--)
                d[n++] = (char)('0' + tu_rand() % 10);
            break;
        default:
            d[n++] = *t;
        }
    }
    d[n] = 0;
}

static void test_pattern_agrees_with_asterisk_algorithms(void **state)
{
    enum { N = 400 };
    route_pattern *pats[N];
    char texts[N][64];
    size_t n = 0, matched = 0;
    tu_seed(99);
    while (n < N) {
        random_text(texts[n], sizeof texts[n], tu_rand() % 6 != 0);
        if (route_pattern_compile(sb_slice_cstr(texts[n]), &pats[n], NULL) == 0)
            n++;
    }
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < N; j++) {
            int want = ora_cmp(texts[i], texts[j]);
            int got = route_pattern_cmp(pats[i], pats[j]);
            if ((want > 0) - (want < 0) != got)
                fail_msg("cmp('%s', '%s'): Asterisk %d, ours %d", texts[i], texts[j], want, got);
        }
    }
    for (int k = 0; k < 20000; k++) {
        char d[64];
        size_t i = tu_rand() % N;
        unsigned len = tu_rand() % 8;
        for (unsigned q = 0; q < len; q++)
            d[q] = "0123456789abc*-#"[tu_rand() % 16];
        d[len] = 0;
        if (k % 2)
            instantiate(texts[i], d, sizeof d);
        bool want = ora_match(texts[i], d);
        if (want != route_pattern_match(pats[i], sb_slice_cstr(d)))
            fail_msg("match('%s', '%s'): Asterisk %d", texts[i], d, want);
        matched += want;
    }
    assert_true(matched > 2000); /* both outcomes are exercised */
    for (size_t i = 0; i < N; i++)
        route_pattern_free(pats[i]);
}

static void test_pattern_empty_table(void **state)
{
    route_pattern_table *t = NULL;
    assert_int_equal(route_pattern_table_new(NULL, 0, &t), 0);
    assert_int_equal(route_pattern_table_best(t, SB_SLICE_LIT("100")), -1);
    assert_int_equal(route_pattern_table_best(t, SB_SLICE_LIT("")), -1);
    route_pattern_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_literal_extensions),
        cmocka_unit_test(test_pattern_x_z_n),
        cmocka_unit_test(test_pattern_sets_and_ranges),
        cmocka_unit_test(test_pattern_literal_characters_in_patterns),
        cmocka_unit_test(test_pattern_dot_and_bang),
        cmocka_unit_test(test_pattern_asterisk_order),
        cmocka_unit_test(test_pattern_rejects_invalid),
        cmocka_unit_test(test_pattern_table_classic_router),
        cmocka_unit_test(test_pattern_table_agrees_with_brute_force),
        cmocka_unit_test(test_pattern_agrees_with_asterisk_algorithms),
        cmocka_unit_test(test_pattern_empty_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
