/* test_cli_json.c: AMI packets as `ami tail --json` prints them: keys as sent, repeated keys as
 * arrays in wire order, "pbx" added, odd bytes replaced; and the readable text form. */
#include "testutil.h"

#include "ami/codec.h"
#include "app/ami_print.h"

#include <stdlib.h>
#include <string.h>

/* Parses one packet from wire text and checks it printed as want (JSON, pbx "main"). */
static void expect_json(const char *wire, const char *want)
{
    ami_codec c;
    ami_packet p;
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, false), 0);
    assert_int_equal(ami_codec_feed(&c, wire, strlen(wire)), strlen(wire));
    assert_int_equal(ami_codec_next(&c, &p), AMI_PACKET);
    json_t *o = app_ami_packet_json(&p, "main");
    assert_non_null(o);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, want);
    free(s);
    json_decref(o);
    ami_codec_free(&c);
}

static void test_cli_json_keys_arrays_pbx(void **state)
{
    (void)state;
    expect_json("Event: Newchannel\r\nChannel: PJSIP/201-00000001\r\nUniqueid: 1.1\r\n\r\n",
                "{\"Event\":\"Newchannel\",\"Channel\":\"PJSIP/201-00000001\",\"Uniqueid\":"
                "\"1.1\",\"pbx\":\"main\"}");
    /* Duplicates become an array in wire order; the first value keeps its position. */
    expect_json("Event: VarSet\r\nVariable: a=1\r\nX: y\r\nVariable: b=2\r\nVariable: c=3\r\n\r\n",
                "{\"Event\":\"VarSet\",\"Variable\":[\"a=1\",\"b=2\",\"c=3\"],\"X\":\"y\","
                "\"pbx\":\"main\"}");
    /* Empty values, values with ':' and a byte that is not UTF-8. */
    expect_json("Event: E\r\nEmpty: \r\nTime: 12:34:56\r\nName: A\xff"
                "B\r\n\r\n",
                "{\"Event\":\"E\",\"Empty\":\"\",\"Time\":\"12:34:56\",\"Name\":\"A?B\","
                "\"pbx\":\"main\"}");
}

static void test_cli_text_form(void **state)
{
    (void)state;
    const char *wire = "Response: Success\r\nPing: Pong\r\n\r\n";
    ami_codec c;
    ami_packet p;
    char buf[256] = "";
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, false), 0);
    ami_codec_feed(&c, wire, strlen(wire));
    assert_int_equal(ami_codec_next(&c, &p), AMI_PACKET);
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_non_null(f);
    assert_int_equal(app_ami_packet_print(f, &p, NULL, 0), 0);
    assert_int_equal(app_ami_packet_print(f, &p, "two", 0), 0);
    assert_int_equal(app_ami_packet_print(f, &p, "two", 1), 0);
    fclose(f);
    assert_string_equal(buf, "Response: Success\nPing: Pong\n\n"
                             "Response: Success\nPing: Pong\nPbx: two\n\n"
                             "{\"Response\":\"Success\",\"Ping\":\"Pong\",\"pbx\":\"two\"}\n");
    ami_codec_free(&c);

    /* Control characters never reach the terminal in the text form. */
    const char *esc = "Event: E\r\nCallerIDName: A\x1b[2JB\tC\r\n\r\n";
    char buf2[128] = "";
    assert_int_equal(ami_codec_init(&c, AMI_LIMITS_DEFAULT, false), 0);
    ami_codec_feed(&c, esc, strlen(esc));
    assert_int_equal(ami_codec_next(&c, &p), AMI_PACKET);
    f = fmemopen(buf2, sizeof buf2, "w");
    assert_int_equal(app_ami_packet_print(f, &p, NULL, 0), 0);
    fclose(f);
    assert_string_equal(buf2, "Event: E\nCallerIDName: A?[2JB\tC\n\n");
    ami_codec_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_json_keys_arrays_pbx),
        cmocka_unit_test(test_cli_text_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
