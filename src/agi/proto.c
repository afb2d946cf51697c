/* proto.c: AGI header and reply parsers and command formatting (see proto.h).
 *
 * Asterisk writes the header as `name: value\n` lines ended by an empty line (res_agi setup_env:
 * LF only, exactly one space after the colon, so a value may itself start with a space and
 * `agi_accountcode: ` has an empty value). Replies are `NNN text\n`, or `NNN-...` lines up to a
 * line starting `NNN `; a `HANGUP\n` line may come before any reply.
 */
#include "agi/proto.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define ARG_PREFIX "agi_arg_"

/* ---- header ---- */

void agi_header_init(agi_header_parser *p, size_t max_bytes, size_t max_vars)
{
    sb_buf_init(&p->buf, max_bytes ? max_bytes : AGI_HEADER_MAX_DEFAULT);
    p->max_vars = max_vars ? max_vars : AGI_VARS_MAX_DEFAULT;
    p->line_start = 0;
    p->nlines = 0;
    p->state = 0;
}

void agi_header_free(agi_header_parser *p)
{
    sb_buf_free(&p->buf);
}

void agi_request_free(agi_request *r)
{
    free(r->raw);
    free(r->mem);
    memset(r, 0, sizeof *r);
}

static bool find_var(const agi_var *v, size_t n, const char *name, sb_slice *value)
{
    sb_slice want = sb_slice_cstr(name);
    for (size_t i = 0; i < n; i++) {
        if (sb_slice_eq(v[i].name, want)) {
            if (value)
                *value = v[i].value;
            return true;
        }
    }
    return false;
}

bool agi_request_get(const agi_request *r, const char *name, sb_slice *value)
{
    return find_var(r->vars, r->nvars, name, value);
}

bool agi_request_param(const agi_request *r, const char *name, sb_slice *value)
{
    return find_var(r->params, r->nparams, name, value);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s into dst (room for s.len bytes); returns the slice written. A malformed
 * escape and %00 are kept as text, so a decoded value never holds a NUL. */
static sb_slice url_decode(sb_slice s, char *dst)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '%' && i + 2 < s.len && hexval(s.ptr[i + 1]) >= 0 &&
            hexval(s.ptr[i + 2]) >= 0) {
            int v = hexval(s.ptr[i + 1]) * 16 + hexval(s.ptr[i + 2]);
            if (v != 0) {
                dst[n++] = (char)v;
                i += 2;
                continue;
            }
        }
        dst[n++] = s.ptr[i];
    }
    return (sb_slice){dst, n};
}

/* Splits agi_network_script ("route?to=100&x=a%20b") into r->script and r->params. */
static void split_script(agi_request *r, sb_slice v, char *dec)
{
    const char *q = memchr(v.ptr, '?', v.len);
    size_t name_len = q ? (size_t)(q - v.ptr) : v.len;
    r->script = url_decode((sb_slice){v.ptr, name_len}, dec);
    dec += r->script.len;
    if (!q)
        return;
    size_t i = name_len + 1;
    while (i <= v.len) {
        const char *amp = memchr(v.ptr + i, '&', v.len - i);
        size_t end = amp ? (size_t)(amp - v.ptr) : v.len;
        if (end > i) {
            sb_slice kv = {v.ptr + i, end - i};
            const char *eq = memchr(kv.ptr, '=', kv.len);
            size_t klen = eq ? (size_t)(eq - kv.ptr) : kv.len;
            agi_var *pv = &r->params[r->nparams++];
            pv->name = url_decode((sb_slice){kv.ptr, klen}, dec);
            dec += pv->name.len;
            if (eq) {
                pv->value = url_decode((sb_slice){eq + 1, kv.len - klen - 1}, dec);
                dec += pv->value.len;
            } else {
                pv->value = (sb_slice){dec, 0};
            }
        }
        i = end + 1;
    }
}

/* Reads the header line at raw[*pos]: false at the empty line or the end; SB_EPROTO via *rc for a
 * line without a name and ':'. */
static bool read_var(const char *raw, size_t raw_len, size_t *pos, agi_var *v, int *rc)
{
    const char *nl = memchr(raw + *pos, '\n', raw_len - *pos);
    size_t end = nl ? (size_t)(nl - raw) : raw_len;
    size_t len = end - *pos;
    const char *line = raw + *pos;
    if (len > 0 && line[len - 1] == '\r')
        len--; /* tolerate CRLF from non-Asterisk clients */
    if (len == 0)
        return false;
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) {
        *rc = SB_EPROTO;
        return false;
    }
    v->name = (sb_slice){line, (size_t)(colon - line)};
    const char *val = colon + 1;
    if (val < line + len && *val == ' ')
        val++; /* exactly one space: a value may itself start with a space */
    v->value = (sb_slice){val, (size_t)(line + len - val)};
    *pos = end + 1;
    return true;
}

/* agi_arg_N -> N (1..max), or 0. */
static size_t arg_number(sb_slice name, size_t max)
{
    size_t pl = strlen(ARG_PREFIX);
    long long n;
    if (name.len <= pl || memcmp(name.ptr, ARG_PREFIX, pl) != 0)
        return 0;
    if (sb_slice_to_ll((sb_slice){name.ptr + pl, name.len - pl}, &n) != 0 || n < 1 ||
        (unsigned long long)n > max)
        return 0;
    return (size_t)n;
}

/* Builds the request from the complete header (takes ownership of raw). */
static int build_request(char *raw, size_t raw_len, size_t max_vars, agi_request *out)
{
    agi_request r;
    agi_var v;
    size_t pos = 0, nvars = 0, nargs = 0, nparams = 0;
    sb_slice script = {NULL, 0};
    int rc = 0;
    char *m;

    memset(&r, 0, sizeof r);
    /* First pass: count, so that one block holds every array and decoded string. */
    while (read_var(raw, raw_len, &pos, &v, &rc)) {
        size_t n = arg_number(v.name, max_vars);
        nvars++;
        if (n > nargs)
            nargs = n;
        if (sb_slice_eq(v.name, SB_SLICE_LIT("agi_network_script")))
            script = v.value;
    }
    if (rc == 0 && nvars == 0)
        rc = SB_EPROTO;
    if (rc) {
        free(raw);
        return rc;
    }
    for (size_t i = 0; i < script.len; i++)
        nparams += script.ptr[i] == '&' || script.ptr[i] == '?';
    m = malloc(nvars * sizeof(agi_var) + nargs * sizeof(sb_slice) + nparams * sizeof(agi_var) +
               script.len + 1);
    if (!m) {
        free(raw);
        return SB_ENOMEM;
    }
    r.raw = raw;
    r.mem = m;
    r.vars = (agi_var *)(void *)m;
    r.args = (sb_slice *)(void *)(m + nvars * sizeof(agi_var));
    r.params = (agi_var *)(void *)(m + nvars * sizeof(agi_var) + nargs * sizeof(sb_slice));
    r.nargs = nargs;
    for (size_t i = 0; i < nargs; i++)
        r.args[i] = (sb_slice){"", 0};
    pos = 0;
    while (read_var(raw, raw_len, &pos, &v, &rc)) {
        size_t n = arg_number(v.name, max_vars);
        r.vars[r.nvars++] = v;
        if (n)
            r.args[n - 1] = v.value;
    }
    r.script = (sb_slice){"", 0};
    if (script.ptr)
        split_script(&r, script,
                     m + nvars * sizeof(agi_var) + nargs * sizeof(sb_slice) +
                         nparams * sizeof(agi_var));
    *out = r;
    return 0;
}

int agi_header_feed(agi_header_parser *p, const char *data, size_t len, size_t *consumed,
                    agi_request *out)
{
    size_t used = 0;
    int rc;

    *consumed = 0;
    if (p->state == 1)
        return SB_EINVAL;
    if (p->state < 0)
        return p->state;
    while (used < len) {
        const char *nl = memchr(data + used, '\n', len - used);
        size_t chunk = nl ? (size_t)(nl - (data + used)) + 1 : len - used;
        if (memchr(data + used, '\0', chunk)) {
            rc = SB_EPROTO; /* Asterisk never sends NUL; values must stay C-string safe */
            goto fail;
        }
        rc = sb_buf_append(&p->buf, data + used, chunk);
        if (rc)
            goto fail;
        used += chunk;
        if (!nl)
            break;
        size_t line_len = p->buf.len - p->line_start - 1;
        const char *line = p->buf.data + p->line_start;
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        if (line_len == 0) {
            size_t raw_len = p->buf.len;
            char *raw = sb_buf_steal(&p->buf);
            p->state = 1;
            *consumed = used;
            rc = build_request(raw, raw_len, p->max_vars, out);
            if (rc) {
                p->state = rc;
                return rc;
            }
            return AGI_DONE;
        }
        if (!memchr(line, ':', line_len)) {
            rc = SB_EPROTO;
            goto fail;
        }
        if (++p->nlines > p->max_vars) {
            rc = SB_ETOOBIG;
            goto fail;
        }
        p->line_start = p->buf.len;
    }
    *consumed = used;
    return AGI_NEED_MORE;
fail:
    *consumed = used;
    p->state = rc;
    return rc;
}

/* ---- replies ---- */

void agi_reply_init(agi_reply_parser *p, size_t max_bytes)
{
    sb_buf_init(&p->buf, max_bytes ? max_bytes : AGI_REPLY_MAX_DEFAULT);
    p->pos = 0;
    p->state = 0;
}

void agi_reply_free(agi_reply_parser *p)
{
    sb_buf_free(&p->buf);
}

int agi_reply_feed(agi_reply_parser *p, const char *data, size_t len)
{
    if (p->state < 0)
        return p->state;
    if (p->pos > 0) {
        sb_buf_consume(&p->buf, p->pos);
        p->pos = 0;
    }
    /* Asterisk never sends NUL; refusing it keeps every value C-string safe. */
    int rc = memchr(data, '\0', len) ? SB_EPROTO : sb_buf_append(&p->buf, data, len);
    if (rc)
        p->state = rc;
    return rc;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Is s a run of " key=value" tokens (possibly empty)? */
static bool is_kv_tail(sb_slice s)
{
    size_t i = 0;
    while (i < s.len) {
        if (s.ptr[i] != ' ')
            return false;
        while (i < s.len && s.ptr[i] == ' ')
            i++;
        size_t start = i;
        bool eq = false;
        while (i < s.len && s.ptr[i] != ' ') {
            if (s.ptr[i] == '=' && i > start)
                eq = true;
            i++;
        }
        if (start < s.len && !eq)
            return false;
    }
    return true;
}

static sb_slice trim_spaces(sb_slice s)
{
    while (s.len && s.ptr[0] == ' ') {
        s.ptr++;
        s.len--;
    }
    while (s.len && s.ptr[s.len - 1] == ' ')
        s.len--;
    return s;
}

bool agi_reply_get(const agi_reply *r, const char *key, sb_slice *value)
{
    size_t klen = strlen(key), i = 0;
    sb_slice s = r->extra;
    while (i < s.len) {
        while (i < s.len && s.ptr[i] == ' ')
            i++;
        size_t start = i;
        while (i < s.len && s.ptr[i] != ' ')
            i++;
        if (i - start > klen && s.ptr[start + klen] == '=' &&
            memcmp(s.ptr + start, key, klen) == 0) {
            if (value)
                *value = (sb_slice){s.ptr + start + klen + 1, i - start - klen - 1};
            return true;
        }
    }
    return false;
}

/* Fills result, data and extra from the text of a single-line reply. */
static void parse_fields(agi_reply *r, sb_slice t)
{
    static const char res[] = "result=";
    size_t i;
    if (t.len < sizeof res - 1 || memcmp(t.ptr, res, sizeof res - 1) != 0)
        return;
    i = sizeof res - 1;
    size_t start = i;
    while (i < t.len && t.ptr[i] != ' ')
        i++;
    r->result_text = (sb_slice){t.ptr + start, i - start};
    r->has_result = sb_slice_to_ll(r->result_text, &r->result) == 0;
    sb_slice rest = {t.ptr + i, t.len - i};
    if (rest.len >= 2 && rest.ptr[0] == ' ' && rest.ptr[1] == '(') {
        /* The data may itself hold ')' (a variable's value): take the last ')' after which only
         * key=value tokens follow. */
        for (size_t k = rest.len; k-- > 2;) {
            if (rest.ptr[k] != ')')
                continue;
            sb_slice tail = {rest.ptr + k + 1, rest.len - k - 1};
            if (is_kv_tail(tail)) {
                r->has_data = true;
                r->data = (sb_slice){rest.ptr + 2, k - 2};
                rest = tail;
                break;
            }
        }
    }
    r->extra = trim_spaces(rest);
    sb_slice ep;
    if (agi_reply_get(r, "endpos", &ep) && sb_slice_to_ll(ep, &r->endpos) == 0)
        r->has_endpos = true;
}

/* The line at [pos, ...) in the buffer: its length without "\r\n" and the position after it. */
static bool next_line(const agi_reply_parser *p, size_t pos, size_t *len, size_t *after)
{
    const char *nl = memchr(p->buf.data + pos, '\n', p->buf.len - pos);
    if (!nl)
        return false;
    *after = (size_t)(nl - p->buf.data) + 1;
    *len = (size_t)(nl - (p->buf.data + pos));
    if (*len > 0 && p->buf.data[pos + *len - 1] == '\r')
        (*len)--;
    return true;
}

int agi_reply_next(agi_reply_parser *p, agi_reply *out)
{
    size_t len, after;
    const char *line;

    if (p->state < 0)
        return p->state;
    if (!p->buf.data || p->pos >= p->buf.len || !next_line(p, p->pos, &len, &after))
        return AGI_NEED_MORE;
    line = p->buf.data + p->pos;
    memset(out, 0, sizeof *out);
    if (len == 6 && memcmp(line, "HANGUP", 6) == 0) {
        p->pos = after;
        return AGI_HANGUP;
    }
    if (len < 4 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
        (line[3] != ' ' && line[3] != '-')) {
        p->state = SB_EPROTO;
        return SB_EPROTO;
    }
    out->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (line[3] == ' ') {
        out->text = (sb_slice){line + 4, len - 4};
        parse_fields(out, out->text);
        p->pos = after;
        return AGI_REPLY;
    }
    /* "520-...": continuation lines until one that starts with the same code and a space. */
    size_t pos = after;
    for (;;) {
        size_t l2, a2;
        if (!next_line(p, pos, &l2, &a2))
            return AGI_NEED_MORE;
        const char *ln = p->buf.data + pos;
        if (l2 >= 4 && memcmp(ln, line, 3) == 0 && ln[3] == ' ') {
            out->is_multiline = true;
            out->text = (sb_slice){line + 4, (size_t)(ln + l2 - (line + 4))};
            p->pos = a2;
            return AGI_REPLY;
        }
        pos = a2;
    }
}

/* ---- AsyncAGI ---- */

int agi_url_decode(sb_slice in, sb_buf *out)
{
    int rc = sb_buf_reserve(out, in.len);
    if (rc)
        return rc;
    sb_slice d = url_decode(in, out->data + out->len);
    out->len += d.len;
    out->data[out->len] = '\0';
    return 0;
}

/* ---- commands ---- */

static bool needs_quotes(sb_slice a)
{
    if (a.len == 0)
        return true;
    for (size_t i = 0; i < a.len; i++) {
        char c = a.ptr[i];
        if (c == ' ' || c == '\t' || c == '"' || c == '\\')
            return true;
    }
    return false;
}

static bool has_line_break(sb_slice a)
{
    for (size_t i = 0; i < a.len; i++) {
        if (a.ptr[i] == '\r' || a.ptr[i] == '\n' || a.ptr[i] == '\0')
            return true;
    }
    return false;
}

int agi_command_format(sb_buf *out, const char *verb, const sb_slice *args, size_t nargs)
{
    size_t orig = out->len;
    sb_slice v = sb_slice_cstr(verb);
    int rc = 0;

    if (v.len == 0 || has_line_break(v) || memchr(v.ptr, '"', v.len) || memchr(v.ptr, '\\', v.len))
        return SB_EINVAL;
    for (size_t i = 0; i < nargs; i++) {
        if (has_line_break(args[i]))
            return SB_EINVAL;
    }
    rc = sb_buf_append(out, v.ptr, v.len);
    for (size_t i = 0; rc == 0 && i < nargs; i++) {
        sb_slice a = args[i];
        rc = sb_buf_append(out, " ", 1);
        if (rc)
            break;
        if (!needs_quotes(a)) {
            rc = sb_buf_append(out, a.ptr, a.len);
            continue;
        }
        rc = sb_buf_append(out, "\"", 1);
        for (size_t k = 0; rc == 0 && k < a.len; k++) {
            if (a.ptr[k] == '"' || a.ptr[k] == '\\')
                rc = sb_buf_append(out, "\\", 1);
            if (rc == 0)
                rc = sb_buf_append(out, &a.ptr[k], 1);
        }
        if (rc == 0)
            rc = sb_buf_append(out, "\"", 1);
    }
    if (rc == 0)
        rc = sb_buf_append(out, "\n", 1);
    if (rc == 0 && out->len - orig > AGI_COMMAND_MAX)
        rc = SB_ETOOBIG;
    if (rc) {
        out->len = orig;
        if (out->data)
            out->data[orig] = '\0';
    }
    return rc;
}

int agi_command_formatl(sb_buf *out, const char *verb, ...)
{
    sb_slice args[32];
    size_t n = 0;
    const char *a;
    va_list ap;
    va_start(ap, verb);
    while ((a = va_arg(ap, const char *)) != NULL) {
        if (n == sizeof args / sizeof args[0]) {
            va_end(ap);
            return SB_EINVAL;
        }
        args[n++] = sb_slice_cstr(a);
    }
    va_end(ap);
    return agi_command_format(out, verb, args, n);
}
