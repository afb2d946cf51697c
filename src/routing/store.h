/* store.h (routing): route files kept in the store (table route_files, store migration 2).
 *
 * Every import is a new version holding the whole validated file; the daemon and `route
 * export` use the newest. Storage goes through the store's API (store_route_file_*), never SQL.
 * These calls block on disk: the CLI uses them, the daemon at start-up and reload, and the REST
 * API (src/api/routes.c) on libuv's thread pool; never on a call's path.
 */
#ifndef SB_ROUTING_STORE_H
#define SB_ROUTING_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Validates text (borrowed) with route_db_parse() and stores it as a new version. path is the
 * store file (created and migrated when needed); source names the file in messages and in the
 * row. Returns 0 and *version, SB_EINVAL with the line-precise error in err, SB_EIO, SB_ECONFIG
 * or SB_ENOMEM. */
int route_store_import(const char *path, const char *text, size_t len, const char *source,
                       int64_t *version, char *err, size_t errsize);

/* The newest route file: 0 with *text owned (free()), *len and *version; SB_ENOTFOUND when no
 * file was ever imported; SB_EIO. */
int route_store_load(const char *path, char **text, size_t *len, int64_t *version);

#endif
