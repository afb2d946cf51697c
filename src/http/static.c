/* static.c: the web console's files (see static.h for the rules). Traversal is refused twice:
 * lexically ("..", "." segments, backslashes, NUL after decoding) and by resolving the final
 * path with realpath() and checking it still lies under the root, which also catches symlinks. */
#include "http/static.h"

#include "core/error.h"
#include "http/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_FILE_MAX (8 * 1024 * 1024)

struct http_static {
    char *root; /* realpath, owned */
    size_t root_len;
};

int http_static_init(http_static **out, const char *root)
{
    struct stat st;
    http_static *s;
    char *real = realpath(root, NULL);
    *out = NULL;
    if (!real)
        return SB_ENOTFOUND;
    if (stat(real, &st) || !S_ISDIR(st.st_mode)) {
        free(real);
        return SB_ENOTFOUND;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        free(real);
        return SB_ENOMEM;
    }
    s->root = real;
    s->root_len = strlen(real);
    *out = s;
    return 0;
}

void http_static_free(http_static *st)
{
    if (!st)
        return;
    free(st->root);
    free(st);
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    size_t i;
    if (dot && !strchr(dot, '/'))
        for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (!strcasecmp(dot, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}

/* Whether a decoded path is free of traversal tricks. */
static bool path_is_clean(sb_slice p)
{
    size_t i = 0;
    if (!p.len || p.ptr[0] != '/' || memchr(p.ptr, '\\', p.len) || memchr(p.ptr, '\0', p.len))
        return false;
    while (i < p.len) {
        size_t start = ++i, n;
        while (i < p.len && p.ptr[i] != '/')
            i++;
        n = i - start;
        if ((n == 1 && p.ptr[start] == '.') ||
            (n == 2 && p.ptr[start] == '.' && p.ptr[start + 1] == '.'))
            return false;
    }
    return true;
}

static bool under_root(const http_static *s, const char *real)
{
    return !strncmp(real, s->root, s->root_len) &&
           (real[s->root_len] == '/' || real[s->root_len] == '\0');
}

static int read_whole(const char *path, size_t size, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    char *buf;
    if (fd < 0)
        return SB_ENOTFOUND;
    buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return SB_ENOMEM;
    }
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != size) {
        free(buf);
        return SB_EIO;
    }
    *out = buf;
    return 0;
}

void http_static_handle(http_request *req, void *ud)
{
    http_static *s = ud;
    sb_slice method = http_request_method(req), path;
    char full[PATH_MAX], *real = NULL, *data = NULL, etag[64];
    struct stat st;
    int n, rc;
    if (!sb_slice_eq(method, SB_SLICE_LIT("GET")) && !sb_slice_eq(method, SB_SLICE_LIT("HEAD"))) {
        static const http_header allow[] = {{"Allow", "GET, HEAD"}};
        http_respond(req, 405, "application/json", allow, 1,
                     SB_SLICE_LIT("{\"error\":{\"code\":\"method_not_allowed\","
                                  "\"message\":\"static files are read-only\"}}"));
        return;
    }
    if (http_request_decode(req, http_request_path(req), false, &path) || !path_is_clean(path))
        goto not_found;
    n = snprintf(full, sizeof(full), "%s%.*s%s", s->root, (int)path.len, path.ptr,
                 path.ptr[path.len - 1] == '/' ? "index.html" : "");
    if (n < 0 || (size_t)n >= sizeof(full))
        goto not_found;
    real = realpath(full, NULL);
    if (!real || !under_root(s, real) || stat(real, &st))
        goto not_found;
    if (S_ISDIR(st.st_mode)) {
        char *idx;
        n = snprintf(full, sizeof(full), "%s/index.html", real);
        free(real);
        real = NULL;
        if (n < 0 || (size_t)n >= sizeof(full))
            goto not_found;
        idx = realpath(full, NULL);
        if (!idx || !under_root(s, idx) || stat(idx, &st)) {
            free(idx);
            goto not_found;
        }
        real = idx;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > STATIC_FILE_MAX)
        goto not_found;
    snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    {
        http_header h[] = {{"ETag", etag}, {"Cache-Control", "no-cache"}};
        sb_slice inm = http_request_header(req, "If-None-Match");
        if (sb_slice_eq(inm, sb_slice_cstr(etag))) {
            http_respond(req, 304, NULL, h, 2, (sb_slice){"", 0});
            goto out;
        }
        rc = read_whole(real, (size_t)st.st_size, &data);
        if (rc) {
            http_respond_error(req, 500, "internal", "cannot read the file");
            goto out;
        }
        http_respond(req, 200, content_type(real), h, 2, (sb_slice){data, (size_t)st.st_size});
    }
    goto out;
not_found:
    http_respond_error(req, 404, "not_found", "no such file");
out:
    free(real);
    free(data);
}
