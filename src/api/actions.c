/* actions.c: the /v1 handlers that act on the PBX: click-to-dial (POST /v1/calls) and queue
 * membership (add, remove, pause, unpause). Each sends one AMI action, holds the request until
 * the PBX answers, and maps the answer to an HTTP status (docs/api.md "Errors"). */
#include "api/internal.h"

#include "app/pbx.h"
#include "core/error.h"

void api_post_calls(http_request *req, void *ud)
{
    (void)ud;
    http_respond_error(req, 501, "not_implemented", "not yet");
}

void api_member_add(http_request *req, void *ud)
{
    (void)ud;
    http_respond_error(req, 501, "not_implemented", "not yet");
}

void api_member_remove(http_request *req, void *ud)
{
    (void)ud;
    http_respond_error(req, 501, "not_implemented", "not yet");
}

void api_member_pause(http_request *req, void *ud)
{
    (void)ud;
    http_respond_error(req, 501, "not_implemented", "not yet");
}

void api_member_unpause(http_request *req, void *ud)
{
    (void)ud;
    http_respond_error(req, 501, "not_implemented", "not yet");
}

void api_get_openapi(http_request *req, void *ud)
{
    (void)ud;
    http_respond_error(req, 501, "not_implemented", "not yet");
}
