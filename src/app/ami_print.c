/* ami_print.c: AMI packets as text and JSON (see ami_print.h). */
#include "app/ami_print.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

/* A JSON string from a wire slice; invalid UTF-8 bytes are replaced so that one odd byte in a
 * CallerIDName never loses the whole event. */
static json_t *slice_string(sb_slice s)
{
    json_t *j = json_stringn(s.ptr ? s.ptr : "", s.len);
    if (j)
        return j;
    char *copy = malloc(s.len + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < s.len; i++)
        copy[i] = (unsigned char)s.ptr[i] < 0x80 && s.ptr[i] != '\0' ? s.ptr[i] : '?';
    j = json_stringn(copy, s.len);
    free(copy);
    return j;
}

/* Writes a wire slice for a terminal: control characters (an escape sequence in a caller name)
 * become '?', so a PBX can never drive the user's terminal. */
static int put_clean(FILE *f, sb_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (fputc((c < 0x20 && c != '\t') || c == 0x7f ? '?' : c, f) == EOF)
            return SB_EIO;
    }
    return 0;
}

json_t *app_ami_packet_json(const ami_packet *p, const char *pbx)
{
    json_t *o = json_object();
    char key[256];
    if (!o)
        return NULL;
    for (size_t i = 0; i < p->count; i++) {
        const ami_header *h = &p->headers[i];
        sb_slice_copy(h->key, key, sizeof key);
        /* Key names are ASCII in practice; a key jansson refuses is skipped, not fatal. */
        json_t *v = slice_string(h->value);
        if (!v)
            goto fail;
        json_t *old = json_object_get(o, key);
        /* The *_new calls take the reference even when they fail. */
        if (!old) {
            json_object_set_new(o, key, v);
            continue;
        }
        if (json_is_array(old)) {
            if (json_array_append_new(old, v) < 0)
                goto fail;
            continue;
        }
        json_t *arr = json_array();
        if (!arr || json_array_append(arr, old) < 0) {
            json_decref(v);
            json_decref(arr);
            goto fail;
        }
        if (json_array_append_new(arr, v) < 0) {
            json_decref(arr);
            goto fail;
        }
        if (json_object_set_new(o, key, arr) < 0)
            goto fail;
    }
    if (pbx && json_object_set_new(o, "pbx", json_string(pbx)) < 0)
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

int app_ami_packet_print(FILE *f, const ami_packet *p, const char *pbx, int json)
{
    if (json) {
        json_t *o = app_ami_packet_json(p, pbx);
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!s)
            return SB_ENOMEM;
        int rc = fprintf(f, "%s\n", s) < 0 ? SB_EIO : 0;
        free(s);
        return rc;
    }
    for (size_t i = 0; i < p->count; i++) {
        const ami_header *h = &p->headers[i];
        if (put_clean(f, h->key) < 0 || fputs(": ", f) == EOF || put_clean(f, h->value) < 0 ||
            fputc('\n', f) == EOF)
            return SB_EIO;
    }
    if (pbx && fprintf(f, "Pbx: %s\n", pbx) < 0)
        return SB_EIO;
    return fputc('\n', f) == EOF ? SB_EIO : 0;
}
