/* test_agi_proto.c: the AGI header parser, reply parser and command quoting, replaying the
 * recorded Asterisk 22 FastAGI dialogues byte for byte in random chunk sizes. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agi/proto.h"
#include "core/error.h"

/* A fixture split into the header, Asterisk's reply bytes and the commands sent. */
typedef struct transcript {
    char *file;
    size_t header_len; /* the header is file[0..header_len) */
    sb_buf replies;    /* every line from Asterisk after the header */
    char *commands[64];
    size_t ncommands;
} transcript;

static void load(transcript *t, const char *name)
{
    size_t len = 0, pos;
    char path[256];
    snprintf(path, sizeof path, "agi/%s", name);
    memset(t, 0, sizeof *t);
    t->file = tu_read_file(tu_fixture(path), &len);
    assert_non_null(t->file);
    char *end = strstr(t->file, "\n\n");
    assert_non_null(end);
    t->header_len = (size_t)(end - t->file) + 2;
    sb_buf_init(&t->replies, 1 << 20);
    for (pos = t->header_len; pos < len;) {
        char *nl = memchr(t->file + pos, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - (t->file + pos)) + 1 : len - pos;
        if (strncmp(t->file + pos, ">>> ", 4) == 0) {
            t->commands[t->ncommands] = strndup(t->file + pos + 4, l - 4);
            t->ncommands++;
        } else if (strncmp(t->file + pos, "<<< ", 4) != 0) {
            assert_int_equal(sb_buf_append(&t->replies, t->file + pos, l), 0);
        }
        pos += l;
    }
}

static void unload(transcript *t)
{
    for (size_t i = 0; i < t->ncommands; i++)
        free(t->commands[i]);
    sb_buf_free(&t->replies);
    free(t->file);
}

static bool var_is(const agi_request *r, const char *name, const char *want)
{
    sb_slice v;
    return agi_request_get(r, name, &v) && sb_slice_eq(v, sb_slice_cstr(want));
}

/* Feeds data in random chunks of 1..maxchunk bytes; returns bytes consumed at AGI_DONE. */
static size_t parse_header_chunked(const char *data, size_t len, size_t maxchunk, agi_request *r)
{
    agi_header_parser p;
    size_t pos = 0;
    int rc = AGI_NEED_MORE;
    agi_header_init(&p, 0, 0);
    while (pos < len) {
        size_t n = 1 + tu_rand() % maxchunk, used = 0;
        if (n > len - pos)
            n = len - pos;
        rc = agi_header_feed(&p, data + pos, n, &used, r);
        assert_true(used <= n);
        pos += used;
        if (rc != AGI_NEED_MORE)
            break;
        assert_int_equal(used, n); /* nothing is held back while reading */
    }
    assert_int_equal(rc, AGI_DONE);
    size_t u2 = 99;
    assert_int_equal(agi_header_feed(&p, "x", 1, &u2, r), SB_EINVAL); /* over and done */
    assert_int_equal(u2, 0);
    agi_header_free(&p);
    return pos;
}

static void test_agi_header_route_fixture_every_chunking(void **state)
{
    transcript t;
    load(&t, "01-route.agi");
    tu_seed(7);
    for (int round = 0; round < 200; round++) {
        agi_request r;
        size_t maxchunk = round < 50 ? 1 + (size_t)round : 1 + tu_rand() % 700;
        /* Feed the header and the first reply together: the parser must stop at the end. */
        size_t used = parse_header_chunked(t.file, t.header_len + 13, maxchunk, &r);
        assert_int_equal(used, t.header_len);
        assert_int_equal(r.nvars, 24);
        assert_true(var_is(&r, "agi_network", "yes"));
        assert_true(var_is(&r, "agi_request", "agi://127.0.0.1:4573/route"));
        assert_true(var_is(&r, "agi_channel", "Local/300@from-internal-0000000b;2"));
        assert_true(var_is(&r, "agi_calleridname", "Agi Caller"));
        assert_true(var_is(&r, "agi_accountcode", "")); /* "agi_accountcode: " */
        assert_true(var_is(&r, "agi_threadid", "140650091730624"));
        assert_true(var_is(&r, "agi_uniqueid", "1795478383.23"));
        assert_false(agi_request_get(&r, "agi_nonexistent", NULL));
        assert_int_equal(r.nargs, 2);
        assert_true(sb_slice_eq(r.args[0], SB_SLICE_LIT("arg1")));
        assert_true(sb_slice_eq(r.args[1], SB_SLICE_LIT("arg two")));
        assert_true(sb_slice_eq(r.script, SB_SLICE_LIT("route")));
        assert_int_equal(r.nparams, 0);
        /* Variables keep their order. */
        assert_true(sb_slice_eq(r.vars[0].name, SB_SLICE_LIT("agi_network")));
        assert_true(sb_slice_eq(r.vars[23].name, SB_SLICE_LIT("agi_arg_2")));
        agi_request_free(&r);
        assert_null(r.raw);
    }
    unload(&t);
}

static void test_agi_header_inbound_fixture(void **state)
{
    transcript t;
    agi_request r;
    load(&t, "01-inbound.agi");
    tu_seed(8);
    assert_int_equal(parse_header_chunked(t.file, t.header_len, 5, &r), t.header_len);
    assert_true(var_is(&r, "agi_dnid", "34911222333"));
    assert_true(var_is(&r, "agi_type", "PJSIP"));
    assert_true(var_is(&r, "agi_context", "from-trunk"));
    assert_true(sb_slice_eq(r.script, SB_SLICE_LIT("inbound")));
    assert_int_equal(r.nargs, 0);
    agi_request_free(&r);
    unload(&t);
}

static void test_agi_header_script_query_parameters(void **state)
{
    static const char h[] = "agi_network: yes\n"
                            "agi_network_script: sales%2Feu?to=%2B34911&name=Ann%20Lee&flag&"
                            "plus=+1&bad=%zz&nul=%00&&empty=\n"
                            "agi_arg_3: third\n"
                            "agi_arg_1:  leading space\n"
                            "\n";
    agi_request r;
    tu_seed(9);
    parse_header_chunked(h, sizeof h - 1, 3, &r);
    assert_true(sb_slice_eq(r.script, SB_SLICE_LIT("sales/eu")));
    assert_int_equal(r.nparams, 7);
    sb_slice v;
    assert_true(agi_request_param(&r, "to", &v));
    assert_true(sb_slice_eq(v, SB_SLICE_LIT("+34911")));
    assert_true(agi_request_param(&r, "name", &v));
    assert_true(sb_slice_eq(v, SB_SLICE_LIT("Ann Lee")));
    assert_true(agi_request_param(&r, "flag", &v));
    assert_int_equal(v.len, 0);
    assert_true(agi_request_param(&r, "plus", &v));
    assert_true(sb_slice_eq(v, SB_SLICE_LIT("+1"))); /* '+' is not a space: phone numbers */
    assert_true(agi_request_param(&r, "bad", &v));
    assert_true(sb_slice_eq(v, SB_SLICE_LIT("%zz")));
    assert_true(agi_request_param(&r, "nul", &v));
    assert_true(sb_slice_eq(v, SB_SLICE_LIT("%00"))); /* never a NUL byte */
    assert_true(agi_request_param(&r, "empty", &v));
    assert_int_equal(v.len, 0);
    assert_false(agi_request_param(&r, "missing", NULL));
    /* agi_arg_2 missing: an empty slot; one space after the colon is the separator. */
    assert_int_equal(r.nargs, 3);
    assert_true(sb_slice_eq(r.args[0], SB_SLICE_LIT(" leading space")));
    assert_int_equal(r.args[1].len, 0);
    assert_true(sb_slice_eq(r.args[2], SB_SLICE_LIT("third")));
    agi_request_free(&r);
}

static void test_agi_header_limits_and_errors(void **state)
{
    agi_header_parser p;
    agi_request r;
    size_t used;
    char big[300];

    /* Too many variables. */
    agi_header_init(&p, 0, 2);
    assert_int_equal(agi_header_feed(&p, "a: 1\nb: 2\nc: 3\n\n", 16, &used, &r), SB_ETOOBIG);
    assert_int_equal(agi_header_feed(&p, "\n", 1, &used, &r), SB_ETOOBIG); /* stays failed */
    agi_header_free(&p);
    /* Too many bytes, even without a newline. */
    agi_header_init(&p, 256, 0);
    memset(big, 'a', sizeof big);
    assert_int_equal(agi_header_feed(&p, big, sizeof big, &used, &r), SB_ETOOBIG);
    agi_header_free(&p);
    /* A line without a colon. */
    agi_header_init(&p, 0, 0);
    assert_int_equal(agi_header_feed(&p, "agi_network: yes\nGARBAGE\n", 25, &used, &r), SB_EPROTO);
    agi_header_free(&p);
    /* An empty header. */
    agi_header_init(&p, 0, 0);
    assert_int_equal(agi_header_feed(&p, "\n", 1, &used, &r), SB_EPROTO);
    agi_header_free(&p);
    /* A NUL byte (found by fuzz_agi_header: it reached a decoded parameter). */
    agi_header_init(&p, 0, 0);
    assert_int_equal(agi_header_feed(&p, "agi_network_script: a?b=c\0d\n\n", 29, &used, &r),
                     SB_EPROTO);
    agi_header_free(&p);
    /* CRLF tolerated (clients other than Asterisk). */
    agi_header_init(&p, 0, 0);
    assert_int_equal(agi_header_feed(&p, "agi_x: y\r\n\r\nZ", 13, &used, &r), AGI_DONE);
    assert_int_equal(used, 12);
    assert_true(var_is(&r, "agi_x", "y"));
    agi_request_free(&r);
    agi_header_free(&p);
}

/* Expected items from Asterisk's side of 01-route.agi, in order. */
typedef struct want {
    int kind; /* AGI_REPLY or AGI_HANGUP */
    int code;
    const char *result_text;
    const char *data; /* NULL: no data */
    long long endpos; /* -1: none */
} want;

static const want route_wants[] = {
    {AGI_REPLY, 200, "0", NULL, -1},      /* ANSWER */
    {AGI_REPLY, 200, "1", "5551234", -1}, /* GET VARIABLE */
    {AGI_REPLY, 200, "1", "Agi Caller-300", -1},
    {AGI_REPLY, 200, "0", NULL, 11360},   /* STREAM FILE */
    {AGI_REPLY, 200, "1", NULL, -1},      /* SET VARIABLE */
    {AGI_REPLY, 200, "", "timeout", -1},  /* GET DATA */
    {AGI_REPLY, 200, "0", NULL, -1},      /* WAIT FOR DIGIT */
    {AGI_REPLY, 200, "1", NULL, -1},      /* DATABASE PUT */
    {AGI_REPLY, 200, "1", "value1", -1},  /* DATABASE GET */
    {AGI_REPLY, 200, "6", NULL, -1},      /* CHANNEL STATUS */
    {AGI_REPLY, 200, "0", NULL, -1},      /* EXEC NoOp */
    {AGI_REPLY, 510, NULL, NULL, -1},     /* NOSUCHCOMMAND */
    {AGI_REPLY, 520, NULL, NULL, -1},     /* SET VARIABLE (usage) */
    {AGI_REPLY, 200, "1", NULL, -1},      /* VERBOSE */
    {AGI_REPLY, 200, "0", NULL, -1},      /* EXEC Wait */
    {AGI_REPLY, 200, "1", NULL, -1},      /* HANGUP */
    {AGI_HANGUP, 0, NULL, NULL, -1},      /* the notification */
    {AGI_REPLY, 200, "1", "5551234", -1}, /* GET VARIABLE after hangup */
    {AGI_REPLY, 511, NULL, NULL, -1},     /* ANSWER on a dead channel */
};

static void check_reply(const want *w, int rc, const agi_reply *r)
{
    assert_int_equal(rc, w->kind);
    if (rc != AGI_REPLY)
        return;
    assert_int_equal(r->code, w->code);
    if (w->result_text) {
        assert_true(sb_slice_eq(r->result_text, sb_slice_cstr(w->result_text)));
        assert_int_equal(r->has_result, w->result_text[0] != 0);
        if (r->has_result)
            assert_int_equal(r->result, atoll(w->result_text));
    } else {
        assert_false(r->has_result);
    }
    assert_int_equal(r->has_data, w->data != NULL);
    if (w->data)
        assert_true(sb_slice_eq(r->data, sb_slice_cstr(w->data)));
    assert_int_equal(r->has_endpos, w->endpos >= 0);
    if (w->endpos >= 0)
        assert_int_equal(r->endpos, w->endpos);
    if (w->code == 510)
        assert_true(sb_slice_eq(r->text, SB_SLICE_LIT("Invalid or unknown command")));
    if (w->code == 511)
        assert_true(sb_slice_eq(
            r->text, SB_SLICE_LIT("Command Not Permitted on a dead channel or intercept routine")));
    if (w->code == 520) {
        assert_true(r->is_multiline);
        assert_true(sb_slice_eq(r->text, SB_SLICE_LIT("Invalid command syntax.  Proper usage "
                                                      "follows:\nSets a variable to the current "
                                                      "channel.\n520 End of proper usage.")));
    }
}

static void test_agi_reply_route_fixture_random_chunks(void **state)
{
    transcript t;
    load(&t, "01-route.agi");
    size_t nwant = sizeof route_wants / sizeof route_wants[0];
    tu_seed(11);
    for (int round = 0; round < 300; round++) {
        agi_reply_parser p;
        agi_reply r;
        size_t pos = 0, got = 0, maxchunk = 1 + (size_t)(round % 40) * (round % 7 + 1);
        agi_reply_init(&p, 0);
        while (pos < t.replies.len) {
            size_t n = 1 + tu_rand() % maxchunk;
            if (n > t.replies.len - pos)
                n = t.replies.len - pos;
            assert_int_equal(agi_reply_feed(&p, t.replies.data + pos, n), 0);
            pos += n;
            int rc;
            while ((rc = agi_reply_next(&p, &r)) != AGI_NEED_MORE) {
                assert_true(got < nwant);
                check_reply(&route_wants[got], rc, &r);
                got++;
            }
        }
        assert_int_equal(got, nwant);
        agi_reply_free(&p);
    }
    unload(&t);
}

static void test_agi_reply_inbound_fixture(void **state)
{
    transcript t;
    agi_reply_parser p;
    agi_reply r;
    static const char *results[] = {"0", "1", "1", "1", "-1", "0", "1"};
    load(&t, "01-inbound.agi");
    agi_reply_init(&p, 0);
    assert_int_equal(agi_reply_feed(&p, t.replies.data, t.replies.len), 0);
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(agi_reply_next(&p, &r), AGI_REPLY);
        assert_int_equal(r.code, 200);
        assert_true(r.has_result);
        assert_int_equal(r.result, atoll(results[i]));
    }
    assert_int_equal(agi_reply_next(&p, &r), AGI_NEED_MORE);
    assert_int_equal(t.ncommands, 7);
    agi_reply_free(&p);
    unload(&t);
}

static int one_reply(const char *line, agi_reply *r, agi_reply_parser *p)
{
    agi_reply_init(p, 0);
    assert_int_equal(agi_reply_feed(p, line, strlen(line)), 0);
    return agi_reply_next(p, r);
}

static void test_agi_reply_shapes(void **state)
{
    agi_reply_parser p;
    agi_reply r;
    sb_slice v;

    assert_int_equal(one_reply("200 result=1 (digit) digit=* endpos=998877660\n", &r, &p),
                     AGI_REPLY);
    assert_true(r.has_data && sb_slice_eq(r.data, SB_SLICE_LIT("digit")));
    assert_true(agi_reply_get(&r, "digit", &v) && sb_slice_eq(v, SB_SLICE_LIT("*")));
    assert_true(r.has_endpos);
    assert_int_equal(r.endpos, 998877660);
    assert_false(agi_reply_get(&r, "dig", NULL));
    agi_reply_free(&p);

    /* A value holding parentheses and spaces. */
    assert_int_equal(one_reply("200 result=1 (a (b) c) x)\n", &r, &p), AGI_REPLY);
    assert_true(sb_slice_eq(r.data, SB_SLICE_LIT("a (b) c) x")));
    assert_int_equal(r.extra.len, 0);
    agi_reply_free(&p);

    /* GET DATA digits and a partial entry on timeout. */
    assert_int_equal(one_reply("200 result=12 (timeout)\n", &r, &p), AGI_REPLY);
    assert_int_equal(r.result, 12);
    assert_true(sb_slice_eq(r.data, SB_SLICE_LIT("timeout")));
    agi_reply_free(&p);
    assert_int_equal(one_reply("200 result=*1#\n", &r, &p), AGI_REPLY);
    assert_false(r.has_result);
    assert_true(sb_slice_eq(r.result_text, SB_SLICE_LIT("*1#")));
    agi_reply_free(&p);

    assert_int_equal(one_reply("503 result=-2 Memory allocation failure\n", &r, &p), AGI_REPLY);
    assert_int_equal(r.code, 503);
    assert_int_equal(r.result, -2);
    agi_reply_free(&p);

    assert_int_equal(
        one_reply("520 Invalid command syntax.  Proper usage not available.\n", &r, &p), AGI_REPLY);
    assert_int_equal(r.code, 520);
    assert_false(r.is_multiline);
    agi_reply_free(&p);

    /* An unfinished multi-line reply waits; garbage fails and stays failed. */
    assert_int_equal(
        one_reply("520-Invalid command syntax.  Proper usage follows:\nUsage\n", &r, &p),
        AGI_NEED_MORE);
    assert_int_equal(agi_reply_feed(&p, "520 End of proper usage.\n", 25), 0);
    assert_int_equal(agi_reply_next(&p, &r), AGI_REPLY);
    assert_true(r.is_multiline);
    agi_reply_free(&p);

    assert_int_equal(one_reply("hello\n", &r, &p), SB_EPROTO);
    assert_int_equal(agi_reply_next(&p, &r), SB_EPROTO);
    assert_int_equal(agi_reply_feed(&p, "200 result=1\n", 13), SB_EPROTO);
    agi_reply_free(&p);
    assert_int_equal(one_reply("20 result=1\n", &r, &p), SB_EPROTO);
    agi_reply_free(&p);
    agi_reply_init(&p, 0);
    assert_int_equal(agi_reply_feed(&p, "200 result=1 (a\0b)\n", 19), SB_EPROTO);
    assert_int_equal(agi_reply_next(&p, &r), SB_EPROTO);
    agi_reply_free(&p);

    /* A reply larger than the cap. */
    agi_reply_init(&p, 64);
    char big[100];
    memset(big, 'x', sizeof big);
    assert_int_equal(agi_reply_feed(&p, big, sizeof big), SB_ETOOBIG);
    agi_reply_free(&p);
}

/* res_agi's parse_args(), re-implemented from its description, to check our quoting. */
static size_t res_agi_parse_args(const char *s, char out[][128], size_t max)
{
    size_t x = 0, len = 0;
    int quoted = 0, escaped = 0, whitespace = 1;
    for (; *s; s++) {
        char c = *s;
        if (c == '"' && !escaped) {
            quoted = !quoted;
            if (quoted && whitespace) {
                out[x][0] = 0;
                len = 0;
                x++;
                whitespace = 0;
            }
            continue;
        }
        if ((c == ' ' || c == '\t') && !quoted && !escaped) {
            whitespace = 1;
            continue;
        }
        if (c == '\\' && !escaped) {
            escaped = 1;
            continue;
        }
        if (whitespace) {
            assert_true(x < max);
            len = 0;
            x++;
            whitespace = 0;
        }
        out[x - 1][len++] = c;
        out[x - 1][len] = 0;
        escaped = 0;
    }
    return x;
}

static void test_agi_command_quoting_round_trips(void **state)
{
    sb_buf b;
    transcript t;
    sb_buf_init(&b, 4096);

    /* The commands of the recorded dialogue, rebuilt. */
    load(&t, "01-route.agi");
    assert_int_equal(agi_command_formatl(&b, "STREAM FILE", "hello-world", "", NULL), 0);
    assert_string_equal(b.data, t.commands[3]);
    sb_buf_reset(&b);
    assert_int_equal(agi_command_formatl(&b, "VERBOSE", "routing done", "1", NULL), 0);
    assert_string_equal(b.data, t.commands[13]);
    sb_buf_reset(&b);
    assert_int_equal(
        agi_command_formatl(&b, "GET FULL VARIABLE", "${CALLERID(name)}-${EXTEN}", NULL), 0);
    assert_string_equal(b.data, t.commands[2]);
    sb_buf_reset(&b);
    assert_int_equal(agi_command_formatl(&b, "ANSWER", NULL), 0);
    assert_string_equal(b.data, t.commands[0]);
    sb_buf_reset(&b);
    unload(&t);

    assert_int_equal(agi_command_formatl(&b, "SET VARIABLE", "NAME", "say \"hi\" \\o/", NULL), 0);
    assert_string_equal(b.data, "SET VARIABLE NAME \"say \\\"hi\\\" \\\\o/\"\n");
    sb_buf_reset(&b);

    /* Random arguments survive Asterisk's parser. */
    tu_seed(5);
    for (int round = 0; round < 2000; round++) {
        char args[4][32];
        sb_slice sl[4];
        char parsed[16][128];
        size_t n = 1 + tu_rand() % 4;
        for (size_t i = 0; i < n; i++) {
            size_t l = tu_rand() % 8;
            for (size_t k = 0; k < l; k++)
                args[i][k] = "ab \"\\\t9$,|"[tu_rand() % 10];
            args[i][l] = 0;
            sl[i] = sb_slice_cstr(args[i]);
        }
        sb_buf_reset(&b);
        assert_int_equal(agi_command_format(&b, "SET VARIABLE", sl, n), 0);
        assert_int_equal(b.data[b.len - 1], '\n');
        b.data[b.len - 1] = 0;
        size_t got = res_agi_parse_args(b.data, parsed, 16);
        assert_int_equal(got, n + 2);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(parsed[i + 2], args[i]);
    }

    /* CR, LF and NUL are refused and leave the buffer as it was. */
    sb_buf_reset(&b);
    assert_int_equal(sb_buf_puts(&b, "keep"), 0);
    assert_int_equal(agi_command_formatl(&b, "EXEC", "Dial", "PJSIP/1\r\nHANGUP", NULL), SB_EINVAL);
    assert_int_equal(agi_command_formatl(&b, "EXEC\n", NULL), SB_EINVAL);
    assert_int_equal(agi_command_formatl(&b, "", NULL), SB_EINVAL);
    assert_int_equal(agi_command_formatl(&b, "VERBOSE \"x\"", NULL), SB_EINVAL);
    sb_slice nul = {"a\0b", 3};
    assert_int_equal(agi_command_format(&b, "VERBOSE", &nul, 1), SB_EINVAL);
    char huge[AGI_COMMAND_MAX + 1];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    assert_int_equal(agi_command_formatl(&b, "VERBOSE", huge, NULL), SB_ETOOBIG);
    assert_string_equal(b.data, "keep");
    assert_int_equal(b.len, 4);
    sb_buf_free(&b);
}

/* AsyncAGI: the Env of AsyncAGIStart and the Result of AsyncAGIExec (fixture 11-asyncagi.ami)
 * decode into the same header and replies as FastAGI. */
static void test_agi_asyncagi_env_and_results_decode(void **state)
{
    size_t len = 0, nresults = 0;
    char *file = tu_read_file(tu_fixture("11-asyncagi.ami"), &len);
    const char *env = NULL;
    agi_reply_parser rp;
    assert_non_null(file);
    agi_reply_init(&rp, 0);
    for (char *line = file; line && *line;) {
        char *end = strstr(line, "\r\n");
        size_t l = end ? (size_t)(end - line) : strlen(line);
        if (!env && strncmp(line, "Env: ", 5) == 0) {
            env = line;
            sb_buf dec;
            agi_header_parser hp;
            agi_request r;
            size_t used = 0;
            sb_buf_init(&dec, 8192);
            assert_int_equal(agi_url_decode((sb_slice){line + 5, l - 5}, &dec), 0);
            agi_header_init(&hp, 0, 0);
            assert_int_equal(agi_header_feed(&hp, dec.data, dec.len, &used, &r), AGI_DONE);
            assert_int_equal(used, dec.len);
            assert_true(var_is(&r, "agi_request", "async"));
            assert_true(var_is(&r, "agi_channel", "Local/301@from-internal-0000000a;2"));
            assert_true(var_is(&r, "agi_calleridname", "Async Caller"));
            assert_true(var_is(&r, "agi_accountcode", ""));
            assert_int_equal(r.nvars, 20);
            agi_request_free(&r);
            agi_header_free(&hp);
            sb_buf_free(&dec);
        } else if (strncmp(line, "Result: 200", 11) == 0) {
            sb_buf dec;
            agi_reply rep;
            sb_buf_init(&dec, 8192);
            assert_int_equal(agi_url_decode((sb_slice){line + 8, l - 8}, &dec), 0);
            assert_int_equal(agi_reply_feed(&rp, dec.data, dec.len), 0);
            assert_int_equal(agi_reply_next(&rp, &rep), AGI_REPLY);
            assert_int_equal(rep.code, 200);
            if (nresults == 0)
                assert_true(rep.has_data && sb_slice_eq(rep.data, SB_SLICE_LIT("5557777")));
            if (nresults == 1)
                assert_true(rep.has_endpos && rep.endpos == 11360);
            nresults++;
            sb_buf_free(&dec);
        }
        line = end ? end + 2 : NULL;
    }
    assert_non_null(env);
    assert_true(nresults >= 3);
    agi_reply_free(&rp);

    /* Decoding rules and the cap. */
    sb_buf b;
    sb_buf_init(&b, 16); /* room is checked against the encoded length */
    assert_int_equal(agi_url_decode(SB_SLICE_LIT("a%20b+c%zz"), &b), 0);
    assert_string_equal(b.data, "a b+c%zz");
    assert_int_equal(agi_url_decode(SB_SLICE_LIT("0123456789"), &b), SB_ETOOBIG);
    assert_string_equal(b.data, "a b+c%zz");
    sb_buf_free(&b);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agi_header_route_fixture_every_chunking),
        cmocka_unit_test(test_agi_header_inbound_fixture),
        cmocka_unit_test(test_agi_header_script_query_parameters),
        cmocka_unit_test(test_agi_header_limits_and_errors),
        cmocka_unit_test(test_agi_reply_route_fixture_random_chunks),
        cmocka_unit_test(test_agi_reply_inbound_fixture),
        cmocka_unit_test(test_agi_reply_shapes),
        cmocka_unit_test(test_agi_command_quoting_round_trips),
        cmocka_unit_test(test_agi_asyncagi_env_and_results_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
