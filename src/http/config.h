/* config.h: the [http] section of switchboard.conf turned into the server's configuration.
 *
 *   [http]
 *   bind = 127.0.0.1          ; numeric address (0.0.0.0 or :: for all)
 *   port = 8080
 *   web_root = /usr/share/switchboard/web
 *   max_url_bytes = 4096      ; sizes take an optional k or m suffix (KiB, MiB)
 *   max_header_bytes = 16k
 *   max_headers = 64
 *   max_body_bytes = 1m
 *   max_connections = 4096
 *   idle_timeout = 60s        ; durations: 500ms, 10s, 2m (bare numbers are seconds)
 *   request_timeout = 30s
 *   stream_max_queued = 256k
 *   stream_flush = 0ms
 *   heartbeat = 15s
 *   ws_max_message = 64k
 *   linger = 2s
 *
 * Every key is optional; absent keys take the server's defaults (server.h).
 */
#ifndef SB_HTTP_CONFIG_H
#define SB_HTTP_CONFIG_H

#include "core/config.h"
#include "http/server.h"

#include <stddef.h>

typedef struct http_config {
    http_server_config server; /* handler and handler_ud left for the caller */
    const char *web_root;      /* borrowed from the section; NULL when not set */
} http_config;

/* Fills out from sec (borrowed; NULL = all defaults); strings in out are borrowed from sec.
 * Returns 0, or SB_ECONFIG with "line N: [http] key: problem" in err (errsize bytes). */
int http_config_from_section(const sb_config_section *sec, http_config *out, char *err,
                             size_t errsize);

#endif
