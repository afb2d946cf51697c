/* test_api_tokens.c: API tokens in the store (src/api/tokens.h) and the pure helpers of the auth
 * hook (roles, agent scope, interface -> extension). The hook itself runs in
 * tests/integration/test_api.c against a live server. */
#include "api/api.h"
#include "api/tokens.h"
#include "core/error.h"
#include "testutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct listed {
    int n;
    int64_t ids[16];
    char roles[16][16];
    char exts[16][32];
    int64_t revoked[16];
    uint8_t hash[16][API_TOKEN_HASH];
} listed;

static int on_row(const api_token_row *r, void *ud)
{
    listed *l = ud;
    if (l->n < 16) {
        l->ids[l->n] = r->id;
        snprintf(l->roles[l->n], sizeof l->roles[0], "%s", r->role);
        snprintf(l->exts[l->n], sizeof l->exts[0], "%s", r->extension);
        l->revoked[l->n] = r->revoked_ms;
        memcpy(l->hash[l->n], r->hash, API_TOKEN_HASH);
    }
    l->n++;
    return 0;
}

static int stop_at_first(const api_token_row *r, void *ud)
{
    (void)r;
    (*(int *)ud)++;
    return 7;
}

static void tmp_store(char *dir, size_t dsize, char *path, size_t psize)
{
    snprintf(dir, dsize, "/tmp/sb-test-tokens-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, psize, "%s/store.db", dir);
}

static void rm_dir(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_create_list_revoke(void **state)
{
    (void)state;
    char dir[64], path[128], err[256], t1[API_TOKEN_TEXT], t2[API_TOKEN_TEXT];
    int64_t id1 = 0, id2 = 0;
    listed l;
    tmp_store(dir, sizeof dir, path, sizeof path);

    /* No store yet: no tokens, no error, and the file is not created by listing. */
    memset(&l, 0, sizeof l);
    assert_int_equal(api_token_list(path, true, on_row, &l), 0);
    assert_int_equal(l.n, 0);

    assert_int_equal(api_token_create(path, "admin", NULL, "ops", t1, &id1, err, sizeof err), 0);
    assert_int_equal(api_token_create(path, "agent", "1001", NULL, t2, &id2, err, sizeof err), 0);
    assert_true(id2 > id1);
    /* 32 random bytes in unpadded base64url: 43 characters of [A-Za-z0-9_-]. */
    assert_int_equal(strlen(t1), 43);
    assert_int_equal(strspn(t1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     43);
    assert_string_not_equal(t1, t2);

    memset(&l, 0, sizeof l);
    assert_int_equal(api_token_list(path, false, on_row, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.roles[0], "admin");
    assert_string_equal(l.exts[0], "");
    assert_string_equal(l.roles[1], "agent");
    assert_string_equal(l.exts[1], "1001");
    /* Only the hash is stored, and it is the SHA-256 of the token. */
    uint8_t h[API_TOKEN_HASH], want[API_TOKEN_HASH];
    api_token_hash(sb_slice_cstr(t1), h);
    crypto_hash_sha256(want, (const unsigned char *)t1, strlen(t1));
    assert_memory_equal(h, want, sizeof h);
    assert_memory_equal(l.hash[0], h, sizeof h);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -q '%s' '%s'", t1, path);
    assert_int_not_equal(system(cmd), 0); /* the token text is nowhere in the file */

    /* A callback's non-zero answer stops the listing and is returned. */
    int calls = 0;
    assert_int_equal(api_token_list(path, false, stop_at_first, &calls), 7);
    assert_int_equal(calls, 1);

    assert_int_equal(api_token_revoke(path, id1), 0);
    assert_int_equal(api_token_revoke(path, id1), SB_ENOTFOUND);
    assert_int_equal(api_token_revoke(path, 9999), SB_ENOTFOUND);
    memset(&l, 0, sizeof l);
    assert_int_equal(api_token_list(path, false, on_row, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], id2);
    memset(&l, 0, sizeof l);
    assert_int_equal(api_token_list(path, true, on_row, &l), 0);
    assert_int_equal(l.n, 2);
    assert_true(l.revoked[0] > 0);
    assert_int_equal(l.revoked[1], 0);
    rm_dir(dir);
}

static void test_create_refuses(void **state)
{
    (void)state;
    char dir[64], path[128], err[256], t[API_TOKEN_TEXT];
    int64_t id;
    listed l;
    tmp_store(dir, sizeof dir, path, sizeof path);
    assert_int_equal(api_token_create(path, "root", NULL, NULL, t, &id, err, sizeof err),
                     SB_EINVAL);
    assert_non_null(strstr(err, "role"));
    assert_int_equal(api_token_create(path, "agent", NULL, NULL, t, &id, err, sizeof err),
                     SB_EINVAL);
    assert_non_null(strstr(err, "--extension"));
    assert_int_equal(api_token_create(path, "agent", "10 01", NULL, t, &id, err, sizeof err),
                     SB_EINVAL);
    assert_int_equal(api_token_create(path, "admin", "1001", NULL, t, &id, err, sizeof err),
                     SB_EINVAL);
    char longname[100];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(api_token_create(path, "service", NULL, longname, t, &id, err, sizeof err),
                     SB_EINVAL);
    memset(&l, 0, sizeof l);
    assert_int_equal(api_token_list(path, true, on_row, &l), 0);
    assert_int_equal(l.n, 0);
    rm_dir(dir);
}

static void test_roles_and_scope(void **state)
{
    (void)state;
    api_role r;
    const char *names[] = {"admin", "supervisor", "agent", "service"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(api_role_parse(names[i], &r), 0);
        assert_int_equal((int)r, i);
        assert_string_equal(api_role_name(r), names[i]);
    }
    assert_int_equal(api_role_parse("Admin", &r), SB_EINVAL);
    assert_int_equal(api_role_parse(NULL, &r), SB_EINVAL);

    char ext[32];
    assert_true(api_interface_extension("PJSIP/1001", ext, sizeof ext));
    assert_string_equal(ext, "1001");
    assert_true(api_interface_extension("Local/501@agents/n", ext, sizeof ext));
    assert_string_equal(ext, "501");
    assert_true(api_interface_extension("SIP/1002-0000000a", ext, sizeof ext));
    assert_string_equal(ext, "1002");
    assert_false(api_interface_extension("1001", ext, sizeof ext));
    assert_false(api_interface_extension("PJSIP/", ext, sizeof ext));
    assert_false(api_interface_extension("PJSIP/123456789", ext, 4));

    api_principal agent = {.role = API_ROLE_AGENT, .extension = "1001"};
    api_principal sup = {.role = API_ROLE_SUPERVISOR};
    api_principal noext = {.role = API_ROLE_AGENT};
    assert_true(api_may_act_for(&agent, "1001"));
    assert_false(api_may_act_for(&agent, "1002"));
    assert_false(api_may_act_for(&agent, "10011"));
    assert_false(api_may_act_for(&agent, NULL));
    assert_true(api_may_act_for(&sup, "1002"));
    assert_false(api_may_act_for(&noext, ""));
    assert_false(api_may_act_for(NULL, "1001"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_list_revoke),
        cmocka_unit_test(test_create_refuses),
        cmocka_unit_test(test_roles_and_scope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
