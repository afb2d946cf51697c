/* static.h: serves the web console's files from one directory.
 *
 * "/" and any directory map to its index.html. Paths are percent-decoded, then refused (404) when
 * they hold "..", a NUL, a backslash or resolve (symlinks included) outside the root. Answers carry
 * a Content-Type from the extension, an ETag (size and mtime) and Cache-Control: no-cache; a
 * matching If-None-Match answers 304. Files are read whole (console assets are small; the cap is
 * 8 MiB) with plain blocking reads, which stay in the page cache after the first request.
 */
#ifndef SB_HTTP_STATIC_H
#define SB_HTTP_STATIC_H

#include "http/server.h"

typedef struct http_static http_static;

/* Serves files under root (resolved once with realpath). Returns 0, SB_ENOTFOUND (no such
 * directory) or SB_ENOMEM; *out owned (free with http_static_free). */
int http_static_init(http_static **out, const char *root);
void http_static_free(http_static *st);
/* Handler (ud = the http_static): GET and HEAD only, others 405. */
void http_static_handle(http_request *req, void *st);

#endif
