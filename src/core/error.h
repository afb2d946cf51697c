/* error.h: the project's error codes. Functions return 0 or one of these (negative);
 * sb_strerror() turns one into words. libuv errors (UV_*) pass through unchanged and are
 * also understood by sb_strerror(). */
#ifndef SB_CORE_ERROR_H
#define SB_CORE_ERROR_H

enum {
    SB_OK = 0,
    SB_ENOMEM = -10001,    /* out of memory */
    SB_EINVAL = -10002,    /* invalid argument or value */
    SB_ETOOBIG = -10003,   /* input exceeds a configured limit */
    SB_EPROTO = -10004,    /* peer broke the protocol */
    SB_ETIMEDOUT = -10005, /* no answer in time */
    SB_EDISCONN = -10006,  /* connection lost before the answer */
    SB_EAUTH = -10007,     /* authentication failed */
    SB_EDENIED = -10008,   /* permission denied by the peer */
    SB_ENOTFOUND = -10009, /* no such object */
    SB_EFAILED = -10010,   /* the peer answered with an error */
    SB_ECANCELED = -10011, /* cancelled (stop or shutdown) */
    SB_EEXIST = -10012,    /* already exists */
    SB_ECONFIG = -10013,   /* bad configuration */
    SB_EIO = -10014,       /* input/output error */
};

/* Returns a static description of err (an SB_* or UV_* code). */
const char *sb_strerror(int err);

#endif
