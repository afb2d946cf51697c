/* error.c: words for the error codes of error.h. */
#include "core/error.h"

#include <uv.h>

const char *sb_strerror(int err)
{
    switch (err) {
    case SB_OK:
        return "success";
    case SB_ENOMEM:
        return "out of memory";
    case SB_EINVAL:
        return "invalid argument";
    case SB_ETOOBIG:
        return "input exceeds a limit";
    case SB_EPROTO:
        return "protocol error";
    case SB_ETIMEDOUT:
        return "timed out";
    case SB_EDISCONN:
        return "disconnected";
    case SB_EAUTH:
        return "authentication failed";
    case SB_EDENIED:
        return "permission denied";
    case SB_ENOTFOUND:
        return "not found";
    case SB_EFAILED:
        return "request failed";
    case SB_ECANCELED:
        return "canceled";
    case SB_EEXIST:
        return "already exists";
    case SB_ECONFIG:
        return "configuration error";
    case SB_EIO:
        return "input/output error";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return uv_strerror(err);
    return "unknown error";
}
