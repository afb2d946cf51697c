/* agi_client.c: the simulator's FastAGI client and the Asterisk-like command responder (see
 * agi_client.h). Replies follow res_agi in Asterisk 22.10.1 as recorded in
 * fixtures/asterisk-22.10.1/agi/01-route.agi: `200 result=1 (value)`, `200 result= (timeout)`,
 * `510 Invalid or unknown command`, the 520 multi-line usage, `511 Command Not Permitted on a
 * dead channel or intercept routine`, and the `HANGUP` line before the reply to the command in
 * flight when the channel hangs up.
 */
#include "agi_client.h"

#include "core/error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 16
#define LINE_MAX_BYTES 4096

/* ---- responder ---- */

/* res_agi's parse_args(): blanks split words, `"` toggles quoting, `\` takes the next byte. */
static size_t split_words(sb_slice line, char *store, size_t size, char **words)
{
    size_t nw = 0, o = 0;
    bool in_word = false, quoted = false, escaped = false;
    for (size_t i = 0; i < line.len && o + 1 < size; i++) {
        char ch = line.ptr[i];
        if (escaped) {
            escaped = false;
        } else if (ch == '\\') {
            escaped = true;
            if (!in_word && nw < MAX_WORDS) {
                words[nw++] = store + o;
                in_word = true;
            }
            continue;
        } else if (ch == '"') {
            quoted = !quoted;
            if (!in_word && nw < MAX_WORDS) {
                words[nw++] = store + o;
                in_word = true;
            }
            continue;
        } else if (!quoted && (ch == ' ' || ch == '\t')) {
            if (in_word) {
                store[o++] = 0;
                in_word = false;
            }
            continue;
        }
        if (!in_word) {
            if (nw == MAX_WORDS)
                break;
            words[nw++] = store + o;
            in_word = true;
        }
        store[o++] = ch;
    }
    store[o] = 0;
    return nw;
}

static const char *var_get(pbxsim_agi_chan *ch, const char *name)
{
    const pbxsim_agi_call *c = ch->call;
    size_t n = strlen(name);
    for (size_t i = ch->nsetvars; i-- > 0;)
        if (strncmp(ch->setvars[i], name, n) == 0 && ch->setvars[i][n] == '=')
            return ch->setvars[i] + n + 1;
    for (size_t i = 0; i < c->nvars; i++)
        if (strncmp(c->vars[i], name, n) == 0 && c->vars[i][n] == '=')
            return c->vars[i] + n + 1;
    if (strcmp(name, "CALLERID(num)") == 0)
        return c->callerid ? c->callerid : "300";
    if (strcmp(name, "CALLERID(name)") == 0)
        return c->calleridname ? c->calleridname : "Sim Caller";
    if (strcmp(name, "EXTEN") == 0)
        return c->extension ? c->extension : "100";
    return NULL;
}

static const char *next_dtmf(pbxsim_agi_chan *ch)
{
    if (ch->dtmf_next >= ch->call->ndtmf)
        return "";
    return ch->call->dtmf[ch->dtmf_next++];
}

static bool word_is(char *const *w, size_t nw, const char *a, const char *b, const char *c)
{
    if (nw < 1 || strcasecmp(w[0], a) != 0)
        return false;
    if (b && (nw < 2 || strcasecmp(w[1], b) != 0))
        return false;
    if (c && (nw < 3 || strcasecmp(w[2], c) != 0))
        return false;
    return true;
}

void pbxsim_agi_chan_free(pbxsim_agi_chan *ch)
{
    for (size_t i = 0; i < ch->nsetvars; i++)
        free(ch->setvars[i]);
    free(ch->setvars);
    for (size_t i = 0; i < ch->ncommands; i++)
        free(ch->commands[i]);
    free(ch->commands);
    ch->setvars = ch->commands = NULL;
    ch->nsetvars = ch->ncommands = 0;
}

static int push(char ***arr, size_t *n, const char *p, size_t len)
{
    char **na = realloc(*arr, (*n + 1) * sizeof *na);
    if (!na)
        return SB_ENOMEM;
    *arr = na;
    if (!(na[*n] = malloc(len + 1)))
        return SB_ENOMEM;
    memcpy(na[*n], p, len);
    na[*n][len] = 0;
    (*n)++;
    return 0;
}

int pbxsim_agi_respond(pbxsim_agi_chan *ch, sb_slice line, sb_buf *out)
{
    char store[LINE_MAX_BYTES];
    char *w[MAX_WORDS];
    int rc;
    if (ch->call->is_recording && (rc = push(&ch->commands, &ch->ncommands, line.ptr, line.len)))
        return rc;
    size_t nw = split_words(line, store, sizeof store, w);
    ch->count++;
    if (ch->call->hangup_after && ch->count > ch->call->hangup_after && !ch->is_hung_up)
        ch->is_hung_up = true;
    if (ch->is_hung_up && !ch->is_hangup_told) {
        ch->is_hangup_told = true;
        if ((rc = sb_buf_puts(out, "HANGUP\n")) < 0)
            return rc;
    }
    /* On a dead channel only the commands that need no channel run (res_agi's dead flag). */
    bool dead_ok = word_is(w, nw, "GET", "VARIABLE", NULL) ||
                   word_is(w, nw, "GET", "FULL", "VARIABLE") ||
                   word_is(w, nw, "SET", "VARIABLE", NULL) ||
                   word_is(w, nw, "VERBOSE", NULL, NULL) || word_is(w, nw, "HANGUP", NULL, NULL) ||
                   word_is(w, nw, "NOOP", NULL, NULL) || word_is(w, nw, "ASYNCAGI", "BREAK", NULL);
    if (ch->is_hung_up && !dead_ok)
        return sb_buf_puts(out,
                           "511 Command Not Permitted on a dead channel or intercept routine\n");
    if (word_is(w, nw, "ANSWER", NULL, NULL))
        return sb_buf_puts(out, "200 result=0\n");
    if (word_is(w, nw, "HANGUP", NULL, NULL)) {
        ch->is_hung_up = true;
        /* The channel hangs up now; the notification comes with the next reply (fixture). */
        return sb_buf_puts(out, "200 result=1\n");
    }
    if (word_is(w, nw, "GET", "VARIABLE", NULL) || word_is(w, nw, "GET", "FULL", "VARIABLE")) {
        size_t at = strcasecmp(w[1], "FULL") == 0 ? 3 : 2;
        if (nw != at + 1)
            return sb_buf_puts(out, "520-Invalid command syntax.  Proper usage follows:\n"
                                    "Usage: GET VARIABLE <variablename>\n"
                                    "520 End of proper usage.\n");
        const char *v = var_get(ch, w[at]);
        return v ? sb_buf_printf(out, "200 result=1 (%s)\n", v)
                 : sb_buf_puts(out, "200 result=0\n");
    }
    if (word_is(w, nw, "SET", "VARIABLE", NULL)) {
        if (nw != 4)
            return sb_buf_puts(out, "520-Invalid command syntax.  Proper usage follows:\n"
                                    "Sets a variable to the current channel.\n"
                                    "520 End of proper usage.\n");
        char kv[LINE_MAX_BYTES];
        int n = snprintf(kv, sizeof kv, "%s=%s", w[2], w[3]);
        if ((rc = push(&ch->setvars, &ch->nsetvars, kv, (size_t)n)) < 0)
            return rc;
        return sb_buf_puts(out, "200 result=1\n");
    }
    if (word_is(w, nw, "STREAM", "FILE", NULL)) {
        if (nw < 4)
            return sb_buf_puts(out, "520-Invalid command syntax.  Proper usage follows:\n"
                                    "Usage: STREAM FILE <filename> <escape_digits>\n"
                                    "520 End of proper usage.\n");
        return sb_buf_puts(out, "200 result=0 endpos=11360\n");
    }
    if (word_is(w, nw, "GET", "DATA", NULL)) {
        if (nw < 3)
            return sb_buf_puts(out, "520-Invalid command syntax.  Proper usage follows:\n"
                                    "Usage: GET DATA <file to be streamed> [timeout] [maxdigits]\n"
                                    "520 End of proper usage.\n");
        const char *d = next_dtmf(ch);
        return d[0] ? sb_buf_printf(out, "200 result=%s\n", d)
                    : sb_buf_puts(out, "200 result= (timeout)\n");
    }
    if (word_is(w, nw, "WAIT", "FOR", "DIGIT")) {
        const char *d = next_dtmf(ch);
        return sb_buf_printf(out, "200 result=%d\n", d[0] ? (unsigned char)d[0] : 0);
    }
    if (word_is(w, nw, "EXEC", NULL, NULL)) {
        if (nw < 2)
            return sb_buf_puts(out, "520-Invalid command syntax.  Proper usage follows:\n"
                                    "Usage: EXEC <application> <options>\n"
                                    "520 End of proper usage.\n");
        return sb_buf_puts(out, "200 result=0\n");
    }
    if (word_is(w, nw, "VERBOSE", NULL, NULL) || word_is(w, nw, "NOOP", NULL, NULL))
        return sb_buf_puts(out, "200 result=1\n");
    if (word_is(w, nw, "CHANNEL", "STATUS", NULL))
        return sb_buf_puts(out, ch->is_hung_up ? "200 result=0\n" : "200 result=6\n");
    if (word_is(w, nw, "ASYNCAGI", "BREAK", NULL)) {
        ch->is_break = true;
        return sb_buf_puts(out, "200 result=0\n");
    }
    return sb_buf_puts(out, "510 Invalid or unknown command\n");
}

/* ---- FastAGI client ---- */

typedef struct agi_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    pbxsim_agi_call call;
    pbxsim_agi_chan ch;
    pbxsim_agi_done_cb done;
    void *ud;
    uint64_t t0;
    char rbuf[8192];
    size_t rlen;
    sb_buf out;
    int status;
    bool is_done;
    int port;
} agi_conn;

typedef struct agi_write {
    uv_write_t req;
    char data[];
} agi_write;

static unsigned long long agi_conn_seq;

static void conn_closed(uv_handle_t *h)
{
    agi_conn *c = h->data;
    pbxsim_agi_result res = {
        .status = c->status,
        .commands = c->ch.commands,
        .ncommands = c->ch.ncommands,
        .count = c->ch.count,
        .is_hung_up = c->ch.is_hung_up,
        .elapsed_ns = uv_hrtime() - c->t0,
    };
    c->done(&res, c->ud);
    pbxsim_agi_chan_free(&c->ch);
    sb_buf_free(&c->out);
    free(c);
}

static void conn_end(agi_conn *c, int status)
{
    if (c->is_done)
        return;
    c->is_done = true;
    c->status = status;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    agi_write *w = (agi_write *)req;
    (void)status;
    free(w);
}

static void conn_write(agi_conn *c, const char *data, size_t len)
{
    if (c->is_done || len == 0)
        return;
    agi_write *w = malloc(sizeof *w + len);
    if (!w) {
        conn_end(c, SB_ENOMEM);
        return;
    }
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        free(w);
        conn_end(c, SB_EIO);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    agi_conn *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(sizeof c->rbuf - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    agi_conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        conn_end(c, nread == UV_EOF || nread == UV_ECONNRESET ? 0 : (int)nread);
        return;
    }
    c->rlen += (size_t)nread;
    size_t start = 0;
    sb_buf_reset(&c->out);
    for (size_t i = 0; i < c->rlen; i++) {
        if (c->rbuf[i] != '\n')
            continue;
        size_t n = i - start;
        if (n && c->rbuf[start + n - 1] == '\r')
            n--;
        if (c->call.stall_at && c->ch.count + 1 >= c->call.stall_at) {
            /* Like a Dial that rings on: no answer, the session stays open. */
            c->ch.count++;
            start = i + 1;
            continue;
        }
        if (pbxsim_agi_respond(&c->ch, (sb_slice){c->rbuf + start, n}, &c->out) < 0) {
            conn_end(c, SB_ENOMEM);
            return;
        }
        start = i + 1;
    }
    memmove(c->rbuf, c->rbuf + start, c->rlen - start);
    c->rlen -= start;
    if (c->rlen == sizeof c->rbuf) {
        conn_end(c, SB_EPROTO);
        return;
    }
    conn_write(c, c->out.data, c->out.len);
}

static void on_connect(uv_connect_t *req, int status)
{
    agi_conn *c = req->data;
    if (status < 0) {
        conn_end(c, status);
        return;
    }
    const pbxsim_agi_call *k = &c->call;
    const char *script = k->script ? k->script : "route";
    unsigned long long n = ++agi_conn_seq;
    char chan[96];
    snprintf(chan, sizeof chan, "PJSIP/%s-%08llx", k->callerid ? k->callerid : "300", n);
    sb_buf h;
    sb_buf_init(&h, 8192);
    int rc = sb_buf_printf(
        &h,
        "agi_network: yes\nagi_network_script: %s\nagi_request: agi://127.0.0.1:%d/%s\n"
        "agi_channel: %s\nagi_language: en\nagi_type: PJSIP\nagi_uniqueid: 1795478383.%llu\n"
        "agi_version: 22.10.1\nagi_callerid: %s\nagi_calleridname: %s\nagi_callingpres: 0\n"
        "agi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: %s\n"
        "agi_rdnis: unknown\nagi_context: from-internal\nagi_extension: %s\nagi_priority: 1\n"
        "agi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 140650091730624\n\n",
        script, c->port, script, k->channel ? k->channel : chan, n,
        k->callerid ? k->callerid : "300", k->calleridname ? k->calleridname : "Sim Caller",
        k->extension ? k->extension : "100", k->extension ? k->extension : "100");
    if (rc < 0) {
        sb_buf_free(&h);
        conn_end(c, rc);
        return;
    }
    conn_write(c, h.data, h.len);
    sb_buf_free(&h);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int pbxsim_agi_connect(uv_loop_t *loop, const char *host, int port, const pbxsim_agi_call *call,
                       pbxsim_agi_done_cb done, void *ud)
{
    struct sockaddr_in addr;
    int rc = uv_ip4_addr(host, port, &addr);
    if (rc < 0)
        return rc;
    agi_conn *c = calloc(1, sizeof *c);
    if (!c)
        return SB_ENOMEM;
    c->call = *call;
    c->ch.call = &c->call;
    c->done = done;
    c->ud = ud;
    c->port = port;
    c->t0 = uv_hrtime();
    sb_buf_init(&c->out, 1 << 16);
    if ((rc = uv_tcp_init(loop, &c->tcp)) < 0) {
        free(c);
        return rc;
    }
    c->tcp.data = c;
    c->connect.data = c;
    if ((rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, on_connect)) <
        0) {
        /* The handle is initialised: close it, and report through done like any failure. */
        conn_end(c, rc);
        return 0;
    }
    return 0;
}
