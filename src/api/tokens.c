/* tokens.c: API tokens in the store's SQLite file (tokens.h). store_open(STORE_OPEN_WRITE)
 * applies the migrations (api_tokens is migration 3); this file then reads and writes that one
 * table with a short-lived SQLite connection of its own, as routing does for route_files: the
 * store's public API has no place for token rows. */
#include "api/tokens.h"

#include "core/error.h"
#include "store/store.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void api_token_hash(sb_slice token, uint8_t out[API_TOKEN_HASH])
{
    crypto_hash_sha256(out, (const unsigned char *)token.ptr, token.len);
}

static int open_db(const char *path, bool is_write, sqlite3 **db)
{
    int rc;
    *db = NULL;
    if (is_write) {
        store_conn *c = NULL;
        if ((rc = store_open(path, STORE_OPEN_WRITE, NULL, &c)) < 0)
            return rc;
        store_close(c);
    } else if (access(path, F_OK) != 0) {
        return SB_ENOTFOUND;
    }
    int flags = is_write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        sqlite3_close(*db);
        *db = NULL;
        return SB_EIO;
    }
    sqlite3_busy_timeout(*db, 5000);
    return 0;
}

static bool is_role(const char *r)
{
    return r && (!strcmp(r, "admin") || !strcmp(r, "supervisor") || !strcmp(r, "agent") ||
                 !strcmp(r, "service"));
}

/* Extensions are dialplan extensions: letters, digits and + * # _ . - only. */
static bool is_extension(const char *e)
{
    size_t n = e ? strlen(e) : 0;
    if (n == 0 || n >= sizeof(((api_token_row *)0)->extension))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = e[i];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z') || strchr("+*#_.-", ch) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

int api_token_create(const char *path, const char *role, const char *extension, const char *name,
                     char token[API_TOKEN_TEXT], int64_t *id, char *err, size_t errsize)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    uint8_t raw[API_TOKEN_BYTES], hash[API_TOKEN_HASH];
    int rc;
    if (!is_role(role)) {
        snprintf(err, errsize, "role must be admin, supervisor, agent or service");
        return SB_EINVAL;
    }
    bool is_agent = strcmp(role, "agent") == 0;
    if (is_agent && !is_extension(extension)) {
        snprintf(err, errsize, "an agent token needs --extension (letters, digits, + * # _ . -)");
        return SB_EINVAL;
    }
    if (!is_agent && extension && *extension) {
        snprintf(err, errsize, "--extension is for agent tokens only");
        return SB_EINVAL;
    }
    if (name && strlen(name) >= sizeof(((api_token_row *)0)->name)) {
        snprintf(err, errsize, "name longer than 63 bytes");
        return SB_EINVAL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errsize, "libsodium failed to initialize");
        return SB_EIO;
    }
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(token, API_TOKEN_TEXT, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    api_token_hash(sb_slice_cstr(token), hash);
    if ((rc = open_db(path, true, &db)) < 0) {
        snprintf(err, errsize, "%s: cannot open the store: %s", path, sb_strerror(rc));
        goto out;
    }
    rc = SB_EIO;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO api_tokens (hash, role, extension, name, created_ms) "
                           "VALUES (?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto db_err;
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, is_agent ? extension : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, name ? name : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        goto db_err;
    *id = sqlite3_last_insert_rowid(db);
    rc = 0;
    goto out;
db_err:
    snprintf(err, errsize, "%s: %s", path, sqlite3_errmsg(db));
out:
    if (rc < 0)
        sodium_memzero(token, API_TOKEN_TEXT);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static void copy_text(char *dst, size_t size, const unsigned char *src)
{
    snprintf(dst, size, "%s", src ? (const char *)src : "");
}

int api_token_list(const char *path, bool include_revoked, api_token_cb cb, void *ud)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = open_db(path, false, &db);
    if (rc == SB_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    rc = SB_EIO;
    const char *sql = include_revoked
                          ? "SELECT id, hash, role, extension, name, created_ms, "
                            "COALESCE(revoked_ms, 0) FROM api_tokens ORDER BY id"
                          : "SELECT id, hash, role, extension, name, created_ms, 0 FROM api_tokens "
                            "WHERE revoked_ms IS NULL ORDER BY id";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        /* An old store that was never migrated to api_tokens has no tokens. */
        rc = strstr(sqlite3_errmsg(db), "no such table") ? 0 : SB_EIO;
        goto out;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        api_token_row row;
        memset(&row, 0, sizeof row);
        row.id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) == API_TOKEN_HASH)
            memcpy(row.hash, sqlite3_column_blob(st, 1), API_TOKEN_HASH);
        copy_text(row.role, sizeof row.role, sqlite3_column_text(st, 2));
        copy_text(row.extension, sizeof row.extension, sqlite3_column_text(st, 3));
        copy_text(row.name, sizeof row.name, sqlite3_column_text(st, 4));
        row.created_ms = sqlite3_column_int64(st, 5);
        row.revoked_ms = sqlite3_column_int64(st, 6);
        int r = cb(&row, ud);
        if (r != 0) {
            rc = r;
            goto out;
        }
    }
    rc = step == SQLITE_DONE ? 0 : SB_EIO;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int api_token_revoke(const char *path, int64_t id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = open_db(path, true, &db);
    if (rc < 0)
        return rc;
    rc = SB_EIO;
    if (sqlite3_prepare_v2(
            db, "UPDATE api_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL", -1, &st,
            NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_int64(st, 2, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = sqlite3_changes(db) == 1 ? 0 : SB_ENOTFOUND;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
