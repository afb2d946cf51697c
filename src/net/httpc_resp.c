/* httpc_resp.c: reading what a server answered, apart from the transport (httpc.c): header
 * lookup in the raw header block and Retry-After (delta-seconds or an HTTP-date, RFC 9110
 * section 10.2.3). Pure functions over bytes; fuzzed by tests/fuzz/fuzz_httpc_headers.c. */
#include "net/httpc.h"

#include "core/error.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HTTPC_DAY_MS (24L * 3600L * 1000L)

sb_slice httpc_resp_header(const httpc_resp *resp, const char *name)
{
    const char *p = resp->headers.ptr, *end = p + resp->headers.len;
    size_t n = strlen(name);
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if ((size_t)(le - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            const char *v = p + n + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            while (le > v && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
                le--;
            return (sb_slice){v, (size_t)(le - v)};
        }
        p = eol ? eol + 1 : end;
    }
    return (sb_slice){NULL, 0};
}

int httpc_parse_retry_after(sb_slice v, time_t now, long *ms)
{
    char tmp[64];
    long long secs;
    time_t t;
    while (v.len && (*v.ptr == ' ' || *v.ptr == '\t')) {
        v.ptr++;
        v.len--;
    }
    while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
        v.len--;
    if (!v.len || v.len >= sizeof tmp)
        return SB_EINVAL;
    if (v.ptr[0] >= '0' && v.ptr[0] <= '9') {
        if (sb_slice_to_ll(v, &secs) != 0 || secs < 0)
            return SB_EINVAL;
        *ms = secs > HTTPC_DAY_MS / 1000 ? HTTPC_DAY_MS : (long)secs * 1000;
        return 0;
    }
    sb_slice_copy(v, tmp, sizeof tmp);
    t = curl_getdate(tmp, NULL); /* IMF-fixdate, RFC 850 and asctime, as RFC 9110 asks */
    if (t == (time_t)-1)
        return SB_EINVAL;
    if (t <= now)
        *ms = 0;
    else if (t - now > HTTPC_DAY_MS / 1000)
        *ms = HTTPC_DAY_MS;
    else
        *ms = (long)(t - now) * 1000;
    return 0;
}

long httpc_retry_after_ms(const httpc_resp *resp)
{
    long ms;
    sb_slice v = httpc_resp_header(resp, "Retry-After");
    if (!v.ptr || httpc_parse_retry_after(v, time(NULL), &ms) != 0)
        return -1;
    return ms;
}
