/* sink.c: the pieces every sink kind shares (sink.h): filters, AWS credentials, the HTTP verdict
 * rule and JSON string quoting. */
#include "sinks/sink.h"

#include "core/buf.h"
#include "core/error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void list_free(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* Splits a comma list into trimmed, owned items. */
static int list_parse(const char *s, char ***out, size_t *n)
{
    char **l = NULL;
    size_t k = 0;
    *out = NULL;
    *n = 0;
    if (!s || !*s)
        return 0;
    while (1) {
        const char *end = strchr(s, ','), *b = s, *e;
        char **nl, *item;
        if (!end)
            end = s + strlen(s);
        e = end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e == b) {
            list_free(l, k);
            return SB_EINVAL;
        }
        nl = realloc(l, (k + 1) * sizeof *l);
        item = malloc((size_t)(e - b) + 1);
        if (!nl || !item) {
            free(item);
            list_free(nl ? nl : l, k);
            return SB_ENOMEM;
        }
        l = nl;
        memcpy(item, b, (size_t)(e - b));
        item[e - b] = '\0';
        l[k++] = item;
        if (!*end)
            break;
        s = end + 1;
    }
    *out = l;
    *n = k;
    return 0;
}

int sink_filter_parse(sink_filter *f, const sink_filter_spec *spec)
{
    int rc;
    memset(f, 0, sizeof *f);
    if (!spec)
        return 0;
    if ((rc = list_parse(spec->types, &f->types, &f->ntypes)) ||
        (rc = list_parse(spec->pbxs, &f->pbxs, &f->npbxs)) ||
        (rc = list_parse(spec->queues, &f->queues, &f->nqueues)))
        sink_filter_free(f);
    return rc;
}

void sink_filter_free(sink_filter *f)
{
    list_free(f->types, f->ntypes);
    list_free(f->pbxs, f->npbxs);
    list_free(f->queues, f->nqueues);
    memset(f, 0, sizeof *f);
}

static bool type_match(const char *pat, const char *type)
{
    size_t n = strlen(pat);
    if (n && pat[n - 1] == '*')
        return strncmp(pat, type, n - 1) == 0;
    return strcmp(pat, type) == 0;
}

bool sink_filter_match(const sink_filter *f, const outbox_event *ev)
{
    bool ok;
    size_t i;
    if (f->ntypes) {
        for (ok = false, i = 0; i < f->ntypes && !ok; i++)
            ok = type_match(f->types[i], ev->type ? ev->type : "");
        if (!ok)
            return false;
    }
    if (f->npbxs) {
        for (ok = false, i = 0; i < f->npbxs && !ok; i++)
            ok = ev->pbx && strcmp(f->pbxs[i], ev->pbx) == 0;
        if (!ok)
            return false;
    }
    if (f->nqueues) {
        /* Only sinks with a queue filter pay for parsing the payload. */
        json_t *root = json_loadb(ev->payload, ev->payload_len, 0, NULL);
        const char *q = json_string_value(json_object_get(root, "queue"));
        for (ok = false, i = 0; q && i < f->nqueues && !ok; i++)
            ok = strcmp(f->queues[i], q) == 0;
        json_decref(root);
        if (!ok)
            return false;
    }
    return true;
}

bool sink_wants(void *impl, const outbox_event *ev)
{
    return sink_filter_match(&((sink_base *)impl)->filter, ev);
}

static int dup_or_env(char **out, const char *given, const char *env1, const char *env2)
{
    const char *v = given && *given ? given : NULL;
    if (!v && env1)
        v = getenv(env1);
    if ((!v || !*v) && env2)
        v = getenv(env2);
    *out = NULL;
    if (!v || !*v)
        return 0;
    *out = strdup(v);
    return *out ? 0 : SB_ENOMEM;
}

int sink_aws_resolve(sink_aws *a, const char *region, const char *access_key,
                     const char *secret_key, const char *session_token)
{
    int rc;
    bool is_static = access_key && *access_key;
    memset(a, 0, sizeof *a);
    if ((rc = dup_or_env(&a->region, region, "AWS_REGION", "AWS_DEFAULT_REGION")))
        goto fail;
    /* Static keys win as a pair: never mix a configured key with an environment secret. */
    if (is_static) {
        if ((rc = dup_or_env(&a->access_key, access_key, NULL, NULL)) ||
            (rc = dup_or_env(&a->secret_key, secret_key, NULL, NULL)) ||
            (rc = dup_or_env(&a->session_token, session_token, NULL, NULL)))
            goto fail;
    } else {
        if ((rc = dup_or_env(&a->access_key, NULL, "AWS_ACCESS_KEY_ID", NULL)) ||
            (rc = dup_or_env(&a->secret_key, NULL, "AWS_SECRET_ACCESS_KEY", NULL)) ||
            (rc = dup_or_env(&a->session_token, NULL, "AWS_SESSION_TOKEN", NULL)))
            goto fail;
    }
    if (!a->access_key != !a->secret_key || (a->access_key && !a->region)) {
        rc = SB_ECONFIG;
        goto fail;
    }
    return 0;
fail:
    sink_aws_free(a);
    return rc;
}

void sink_aws_free(sink_aws *a)
{
    free(a->region);
    free(a->access_key);
    if (a->secret_key)
        memset(a->secret_key, 0, strlen(a->secret_key));
    free(a->secret_key);
    free(a->session_token);
    memset(a, 0, sizeof *a);
}

const httpc_aws *sink_aws_sign(const sink_aws *a, const char *service, httpc_aws *out)
{
    if (!a->access_key)
        return NULL;
    *out = (httpc_aws){.region = a->region,
                       .service = service,
                       .access_key = a->access_key,
                       .secret_key = a->secret_key,
                       .session_token = a->session_token};
    return out;
}

/* A short, printable excerpt of a response body for error messages. */
static void excerpt(sb_slice body, char *out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < body.len && k + 1 < n && k < 120; i++) {
        unsigned char ch = (unsigned char)body.ptr[i];
        out[k++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    out[k] = '\0';
}

void sink_http_verdict(const httpc_resp *r, outbox_result *out, char *why, size_t n)
{
    char ex[128];
    long ra;
    memset(out, 0, sizeof *out);
    out->error = why;
    why[0] = '\0';
    if (r->err) {
        out->verdict = OUTBOX_RETRY;
        snprintf(why, n, "%s", r->error);
        return;
    }
    if (r->status >= 200 && r->status < 300) {
        out->verdict = OUTBOX_OK;
        out->error = NULL;
        return;
    }
    excerpt(r->body, ex, sizeof ex);
    snprintf(why, n, "HTTP %ld%s%s", r->status, ex[0] ? ": " : "", ex);
    if (r->status >= 400 && r->status < 500 && r->status != 408 && r->status != 429) {
        out->verdict = OUTBOX_DEAD;
        return;
    }
    out->verdict = OUTBOX_RETRY;
    ra = httpc_retry_after_ms(r);
    if (ra > 0)
        out->retry_after_ms = (uint32_t)ra;
}

void sink_aws_verdict(const httpc_resp *r, outbox_result *out, char *why, size_t n)
{
    sink_http_verdict(r, out, why, n);
    if (out->verdict == OUTBOX_DEAD && (r->status == 401 || r->status == 403 || r->status == 404))
        out->verdict = OUTBOX_RETRY;
}

int sink_url_escape(sb_buf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
            rc = sb_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            rc = sb_buf_append(b, e, 3);
        }
    }
    return rc;
}

int sink_json_str(sb_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = sb_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        char esc[7];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            rc = sb_buf_append(b, esc, 2);
        } else if (*p < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            rc = sb_buf_append(b, esc, 6);
        } else {
            rc = sb_buf_append(b, p, 1);
        }
    }
    return rc ? rc : sb_buf_append(b, "\"", 1);
}
