/* auth.c: the API's token cache and the router auth hook (api.h): who the caller is (the token's
 * role and extension) and whether the route lets that role in (docs/api.md, "Roles"). */
#include "api/internal.h"

#include "core/error.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[API_ROLE_COUNT] = {"admin", "supervisor", "agent", "service"};

const char *api_role_name(api_role r)
{
    return (unsigned)r < API_ROLE_COUNT ? role_names[r] : "?";
}

int api_role_parse(const char *s, api_role *out)
{
    for (int i = 0; s && i < API_ROLE_COUNT; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (api_role)i;
            return 0;
        }
    }
    return SB_EINVAL;
}

static void hash_hex(const uint8_t hash[API_TOKEN_HASH], char hex[2 * API_TOKEN_HASH + 1])
{
    sodium_bin2hex(hex, 2 * API_TOKEN_HASH + 1, hash, API_TOKEN_HASH);
}

void api_token_map_clear(sb_strmap *m)
{
    sb_strmap_iter it;
    const char *k;
    void *v;
    sb_strmap_iter_init(&it, m);
    while (sb_strmap_iter_next(&it, &k, &v))
        free(v);
    sb_strmap_free(m);
    sb_strmap_init(m);
}

static int load_row(const api_token_row *row, void *ud)
{
    sb_strmap *m = ud;
    char hex[2 * API_TOKEN_HASH + 1];
    api_role role;
    if (api_role_parse(row->role, &role) < 0)
        return 0; /* a role this build does not know grants nothing */
    api_token_entry *e = calloc(1, sizeof *e);
    if (!e)
        return SB_ENOMEM;
    e->pr.token_id = row->id;
    e->pr.role = role;
    snprintf(e->pr.extension, sizeof e->pr.extension, "%s", row->extension);
    snprintf(e->pr.name, sizeof e->pr.name, "%s", row->name);
    hash_hex(row->hash, hex);
    if (sb_strmap_put(m, sb_slice_cstr(hex), e) < 0) {
        free(e);
        return SB_ENOMEM;
    }
    return 0;
}

int api_token_map_load(const char *path, sb_strmap *m)
{
    int rc = api_token_list(path, false, load_row, m);
    if (rc != 0)
        api_token_map_clear(m);
    return rc;
}

const api_principal *api_principal_of(const http_request *req)
{
    return http_request_user(req);
}

bool api_interface_extension(const char *iface, char *buf, size_t size)
{
    const char *slash = iface ? strchr(iface, '/') : NULL;
    if (!slash || size == 0)
        return false;
    const char *s = slash + 1;
    size_t n = strcspn(s, "@-/;");
    if (n == 0 || n >= size)
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    return true;
}

bool api_may_act_for(const api_principal *pr, const char *ext)
{
    if (!pr)
        return false;
    if (pr->role != API_ROLE_AGENT)
        return true;
    return ext && pr->extension[0] && strcmp(pr->extension, ext) == 0;
}

static void free_principal(void *p)
{
    free(p);
}

int api_route_auth(http_request *req, sb_slice token, void *auth_ud)
{
    const api_perm *perm = auth_ud;
    uint8_t hash[API_TOKEN_HASH];
    char hex[2 * API_TOKEN_HASH + 1];
    /* A real token is 43 characters; anything far longer is refused before hashing. */
    if (!token.ptr || token.len == 0 || token.len > 256)
        return SB_EAUTH;
    api_token_hash(token, hash);
    hash_hex(hash, hex);
    const api_token_entry *e = sb_strmap_get(&perm->owner->tokens, sb_slice_cstr(hex));
    if (!e)
        return SB_EAUTH;
    api_principal *pr = malloc(sizeof *pr);
    if (!pr)
        return SB_ENOMEM;
    *pr = e->pr;
    http_request_set_user(req, pr, free_principal);
    if (!(perm->roles & API_R(pr->role)))
        return SB_EDENIED;
    if (pr->role == API_ROLE_AGENT && perm->scope) {
        char buf[64], ext[32];
        sb_slice v = http_request_param(req, perm->scope);
        if (!v.ptr || v.len >= sizeof buf)
            return SB_EDENIED;
        memcpy(buf, v.ptr, v.len);
        buf[v.len] = 0;
        if (strcmp(perm->scope, "interface") == 0) {
            if (!api_interface_extension(buf, ext, sizeof ext))
                return SB_EDENIED;
            return api_may_act_for(pr, ext) ? 0 : SB_EDENIED;
        }
        return api_may_act_for(pr, buf) ? 0 : SB_EDENIED;
    }
    return 0;
}
