/* ami_print.h: AMI packets for people and scripts: the readable "Key: Value" form and one JSON
 * object per packet (keys as AMI sends them, a repeated key becomes an array of its values in
 * wire order, plus "pbx"). Used by `switchboard ami tail` and `ami action`. */
#ifndef SB_APP_AMI_PRINT_H
#define SB_APP_AMI_PRINT_H

#include "ami/codec.h"

#include <jansson.h>
#include <stdio.h>

/* Returns an owned JSON object (json_decref) for p (borrowed); pbx may be NULL (no "pbx" key).
 * Bytes that are not UTF-8 become '?'. NULL when out of memory. */
json_t *app_ami_packet_json(const ami_packet *p, const char *pbx);
/* Writes p to f: JSON on one line, or the "Key: Value" lines and a blank line. 0 or SB_EIO or
 * SB_ENOMEM. */
int app_ami_packet_print(FILE *f, const ami_packet *p, const char *pbx, int json);

#endif
