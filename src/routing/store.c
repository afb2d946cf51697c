/* store.c (routing): route files in the store's SQLite file.
 *
 * store_open(STORE_OPEN_WRITE) applies the schema migrations (route_files is migration 2), then
 * this file reads and writes the one table with its own short-lived SQLite connection: the
 * store's public API has no place for route data yet, and the table is private to routing.
 * A PostgreSQL backend will need these two statements ported (docs/routing.md).
 */
#include "routing/store.h"

#include "core/error.h"
#include "routing/route.h"
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int open_db(const char *path, bool is_write, sqlite3 **db)
{
    int rc;
    if (is_write) {
        store_conn *c = NULL;
        if ((rc = store_open(path, STORE_OPEN_WRITE, NULL, &c)) < 0)
            return rc;
        store_close(c);
    }
    int flags = is_write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        sqlite3_close(*db);
        *db = NULL;
        return is_write ? SB_EIO : SB_ENOTFOUND;
    }
    sqlite3_busy_timeout(*db, 5000);
    return 0;
}

int route_store_import(const char *path, const char *text, size_t len, const char *source,
                       int64_t *version, char *err, size_t errsize)
{
    route_db *rdb = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = route_db_parse(text, len, source, &rdb, err, errsize);
    if (rc < 0)
        return rc;
    route_db_free(rdb);
    if ((rc = open_db(path, true, &db)) < 0) {
        snprintf(err, errsize, "%s: cannot open the store", path);
        goto out;
    }
    rc = SB_EIO;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO route_files (text, source, imported_ms) VALUES (?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto sqlerr;
    sqlite3_bind_text(st, 1, text, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, source ? source : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        goto sqlerr;
    *version = sqlite3_last_insert_rowid(db);
    rc = 0;
    goto out;
sqlerr:
    snprintf(err, errsize, "%s: %s", path, sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int route_store_load(const char *path, char **text, size_t *len, int64_t *version)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = open_db(path, false, &db);
    if (rc < 0)
        return rc;
    rc = SB_EIO;
    if (sqlite3_prepare_v2(db,
                           "SELECT version, text FROM route_files ORDER BY version DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        /* A store made before migration 2 has no table: nothing imported yet. */
        rc = SB_ENOTFOUND;
        goto out;
    }
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        rc = SB_ENOTFOUND;
        goto out;
    }
    if (s != SQLITE_ROW)
        goto out;
    const unsigned char *t = sqlite3_column_text(st, 1);
    int n = sqlite3_column_bytes(st, 1);
    char *copy = malloc((size_t)n + 1);
    if (!copy) {
        rc = SB_ENOMEM;
        goto out;
    }
    memcpy(copy, t ? (const char *)t : "", (size_t)n);
    copy[n] = 0;
    *text = copy;
    *len = (size_t)n;
    *version = sqlite3_column_int64(st, 0);
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
