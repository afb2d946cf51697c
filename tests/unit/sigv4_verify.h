/* sigv4_verify.h: an independent AWS Signature Version 4 check for the tests (header-only test
 * helper). It rebuilds the canonical request from what the receiver got on the wire and recomputes
 * the signature with OpenSSL, as AWS does, so a test proves the request would be accepted rather
 * than that some Authorization header is present.
 * Reference: docs.aws.amazon.com, "Create a signed AWS API request" (SigV4 steps 1-4).
 */
#ifndef TEST_SIGV4_VERIFY_H
#define TEST_SIGV4_VERIFY_H

#include "http_receiver.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

typedef struct sigv4_info {
    char access_key[128];
    char date[16];
    char region[64];
    char service[64];
    char signed_headers[512];
    char signature[65];
    char amz_date[32];
    char why[128]; /* why verification failed */
} sigv4_info;

RX_FN void sv_hex(const unsigned char *d, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * n] = '\0';
}

RX_FN void sv_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int l = 0;
    EVP_Digest(p, n, md, &l, EVP_sha256(), NULL);
    sv_hex(md, 32, out);
}

RX_FN void sv_hmac(const void *k, size_t kl, const char *d, unsigned char out[32])
{
    unsigned int l = 32;
    HMAC(EVP_sha256(), k, (int)kl, (const unsigned char *)d, strlen(d), out, &l);
}

static int sv_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parses the Authorization header and checks the signature with secret. Returns true when it
 * matches; fills *info either way (info->why says what failed). */
RX_FN bool sigv4_verify(const rx_request *r, const char *secret, sigv4_info *info)
{
    char auth[1024], canon[16384], sts[1024], path[1024], query[1024], hv[2048], bodyhash[65];
    char crhash[65], *qparts[32], key[256], sig[65];
    unsigned char k1[32], k2[32], k3[32], k4[32], sg[32];
    size_t nq = 0, off = 0;
    const char *p, *q;
    memset(info, 0, sizeof *info);
    if (!rx_header(r, "Authorization", auth, sizeof auth)) {
        snprintf(info->why, sizeof info->why, "no Authorization header");
        return false;
    }
    if (sscanf(auth,
               "AWS4-HMAC-SHA256 Credential=%127[^/]/%15[^/]/%63[^/]/%63[^/]/aws4_request, "
               "SignedHeaders=%511[^,], Signature=%64[0-9a-f]",
               info->access_key, info->date, info->region, info->service, info->signed_headers,
               info->signature) != 6 ||
        strlen(info->signature) != 64) {
        snprintf(info->why, sizeof info->why, "malformed Authorization: %.90s", auth);
        return false;
    }
    if (!rx_header(r, "X-Amz-Date", info->amz_date, sizeof info->amz_date) ||
        strlen(info->amz_date) != 16 || info->amz_date[8] != 'T' || info->amz_date[15] != 'Z' ||
        strncmp(info->amz_date, info->date, 8) != 0) {
        snprintf(info->why, sizeof info->why, "bad X-Amz-Date");
        return false;
    }
    /* Canonical URI and query string (pairs sorted; our URLs are already encoded). */
    q = strchr(r->url, '?');
    snprintf(path, sizeof path, "%.*s", q ? (int)(q - r->url) : (int)strlen(r->url), r->url);
    query[0] = '\0';
    if (q) {
        char tmp[1024], *save = NULL, *tok;
        snprintf(tmp, sizeof tmp, "%s", q + 1);
        for (tok = strtok_r(tmp, "&", &save); tok && nq < 32; tok = strtok_r(NULL, "&", &save))
            qparts[nq++] = strdup(tok);
        qsort(qparts, nq, sizeof qparts[0], sv_cmp);
        for (size_t i = 0; i < nq; i++) {
            size_t l = strlen(query);
            snprintf(query + l, sizeof query - l, "%s%s%s", i ? "&" : "", qparts[i],
                     strchr(qparts[i], '=') ? "" : "=");
            free(qparts[i]);
        }
    }
    off = (size_t)snprintf(canon, sizeof canon, "%s\n%s\n%s\n", r->method, path, query);
    /* Canonical headers in SignedHeaders order (already sorted by the signer). */
    p = info->signed_headers;
    while (*p) {
        const char *semi = strchr(p, ';');
        size_t nl = semi ? (size_t)(semi - p) : strlen(p);
        char name[128], *v, *w;
        snprintf(name, sizeof name, "%.*s", (int)nl, p);
        if (!rx_header(r, name, hv, sizeof hv)) {
            snprintf(info->why, sizeof info->why, "signed header %.60s missing", name);
            return false;
        }
        /* trim and collapse runs of spaces */
        for (v = hv, w = hv; *v; v++)
            if (!(*v == ' ' && (w == hv || w[-1] == ' ')))
                *w++ = *v;
        while (w > hv && w[-1] == ' ')
            w--;
        *w = '\0';
        off += (size_t)snprintf(canon + off, sizeof canon - off, "%s:%s\n", name, hv);
        p += nl + (semi ? 1 : 0);
    }
    if (!rx_header(r, "x-amz-content-sha256", bodyhash, sizeof bodyhash))
        sv_sha256_hex(r->body, r->body_len, bodyhash);
    snprintf(canon + off, sizeof canon - off, "\n%s\n%s", info->signed_headers, bodyhash);
    sv_sha256_hex(canon, strlen(canon), crhash);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", info->amz_date,
             info->date, info->region, info->service, crhash);
    snprintf(key, sizeof key, "AWS4%s", secret);
    sv_hmac(key, strlen(key), info->date, k1);
    sv_hmac(k1, 32, info->region, k2);
    sv_hmac(k2, 32, info->service, k3);
    sv_hmac(k3, 32, "aws4_request", k4);
    sv_hmac(k4, 32, sts, sg);
    sv_hex(sg, 32, sig);
    if (strcmp(sig, info->signature) != 0) {
        snprintf(info->why, sizeof info->why, "signature mismatch");
        return false;
    }
    return true;
}

#endif
