/* store.c (routing): route files in the store, through the store's API (store/store.h:
 * store_route_file_insert / store_route_file_newest), so the routing code holds no SQL and a
 * PostgreSQL backend needs no change here.
 *
 * Each call opens a short-lived connection: import opens for writing (which applies the schema
 * migrations; route_files is migration 2), load opens a reader. These calls block on disk: the
 * CLI uses them, the daemon at start-up and reload, and the REST API on libuv's thread pool.
 */
#include "routing/store.h"

#include "core/error.h"
#include "routing/route.h"
#include "store/store.h"

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

int route_store_import(const char *path, const char *text, size_t len, const char *source,
                       int64_t *version, char *err, size_t errsize)
{
    route_db *rdb = NULL;
    store_conn *c = NULL;
    int rc = route_db_parse(text, len, source, &rdb, err, errsize);
    if (rc < 0)
        return rc;
    route_db_free(rdb);
    if ((rc = store_open(path, STORE_OPEN_WRITE, NULL, &c)) < 0) {
        snprintf(err, errsize, "%s: cannot open the store: %s", path, sb_strerror(rc));
        return rc;
    }
    rc = store_route_file_insert(c, text, len, source ? source : "", now_ms(), version);
    if (rc < 0)
        snprintf(err, errsize, "%s: cannot store the route file: %s", path, sb_strerror(rc));
    store_close(c);
    return rc;
}

int route_store_load(const char *path, char **text, size_t *len, int64_t *version)
{
    store_conn *c = NULL;
    /* No store file yet: nothing was ever imported (a reader does not create one). A
     * "postgres..." path names a server, not a file. */
    if (strncmp(path, "postgres", 8) != 0 && access(path, F_OK) != 0)
        return SB_ENOTFOUND;
    int rc = store_open(path, STORE_OPEN_READ, NULL, &c);
    if (rc < 0)
        return rc;
    rc = store_route_file_newest(c, text, len, version);
    store_close(c);
    return rc;
}
