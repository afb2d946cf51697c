/* tokens.h: API bearer tokens in the store (table api_tokens, store migration 3).
 *
 * A token is 32 random bytes (libsodium randombytes_buf) in unpadded base64url: 43 characters,
 * shown once by `switchboard token create`. The store keeps only its SHA-256 (decision 0014):
 * tokens carry 256 bits of entropy, so a fast hash is safe to check on every request and a slow
 * password hash would only cost CPU. Every call here blocks on disk: the CLI uses them, the
 * daemon only at start-up and on the thread pool.
 */
#ifndef SB_API_TOKENS_H
#define SB_API_TOKENS_H

#include "core/slice.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_TOKEN_BYTES 32
#define API_TOKEN_TEXT 44 /* 43 characters and the NUL */
#define API_TOKEN_HASH 32

/* One stored token (never the token itself). Strings are NUL-terminated. */
typedef struct api_token_row {
    int64_t id;
    uint8_t hash[API_TOKEN_HASH];
    char role[16];
    char extension[32];
    char name[64];
    int64_t created_ms;
    int64_t revoked_ms; /* 0 = active */
} api_token_row;

/* SHA-256 of the token text. */
void api_token_hash(sb_slice token, uint8_t out[API_TOKEN_HASH]);

/* Creates a token for role ("admin", "supervisor", "agent", "service"; an agent needs extension,
 * other roles take none) named name (may be NULL or ""). path is the store file (created and
 * migrated when needed). Returns 0 with the token text in token (API_TOKEN_TEXT bytes) and *id,
 * SB_EINVAL (bad role, extension or name: a line in err), SB_EIO or SB_ENOMEM. */
int api_token_create(const char *path, const char *role, const char *extension, const char *name,
                     char token[API_TOKEN_TEXT], int64_t *id, char *err, size_t errsize);
/* Calls cb for every token (revoked ones too when include_revoked), by id. cb returns 0 to go on.
 * Returns 0, cb's non-zero value, SB_EIO. A store that does not exist yet has no tokens. */
typedef int (*api_token_cb)(const api_token_row *row, void *ud);
int api_token_list(const char *path, bool include_revoked, api_token_cb cb, void *ud);
/* Revokes token id. 0, SB_ENOTFOUND (no such active token), SB_EIO. */
int api_token_revoke(const char *path, int64_t id);

#endif
