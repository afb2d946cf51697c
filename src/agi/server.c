/* server.c: the FastAGI listener: bind, accept, the allowed-peer gate and the session list
 * (see server.h; the per-connection protocol is in session.c).
 */
#include "agi/session_internal.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/error.h"
#include "core/log.h"

#define AGI_PORT_DEFAULT 4573 /* res_agi's AGI_PORT */

static void maybe_release(agi_server *srv)
{
    if (srv->free_requested && srv->open_handles == 0) {
        free(srv->bind_host);
        free(srv->allowed);
        free(srv);
    }
}

static int parse_addr(const char *text, allowed_addr *a)
{
    memset(a, 0, sizeof *a);
    if (uv_inet_pton(AF_INET, text, a->addr) == 0) {
        a->family = AF_INET;
        return 0;
    }
    if (uv_inet_pton(AF_INET6, text, a->addr) == 0) {
        a->family = AF_INET6;
        return 0;
    }
    return SB_EINVAL;
}

int agi_server_new(uv_loop_t *loop, const agi_server_config *cfg, agi_session_cb on_session,
                   void *user, agi_server **out)
{
    static const char *const loopback[] = {"127.0.0.1", "::1"};
    const char *const *peers = cfg->nallowed ? cfg->allowed_peers : loopback;
    size_t npeers = cfg->nallowed ? cfg->nallowed : 2;
    agi_server *srv;
    int rc = SB_ENOMEM;

    *out = NULL;
    if (cfg->nallowed && !cfg->allowed_peers)
        return SB_EINVAL;
    srv = calloc(1, sizeof *srv);
    if (!srv)
        return SB_ENOMEM;
    srv->loop = loop;
    srv->on_session = on_session;
    srv->user = user;
    srv->port = cfg->port < 0 ? AGI_PORT_DEFAULT : cfg->port;
    srv->max_sessions = cfg->max_sessions ? cfg->max_sessions : 10000;
    srv->header_max = cfg->header_max;
    srv->vars_max = cfg->vars_max;
    srv->reply_max = cfg->reply_max;
    srv->header_timeout_ms = cfg->header_timeout_ms ? cfg->header_timeout_ms : 5000;
    srv->bind_host = strdup(cfg->bind_host ? cfg->bind_host : "127.0.0.1");
    srv->allowed = calloc(npeers, sizeof *srv->allowed);
    if (!srv->bind_host || !srv->allowed)
        goto fail;
    for (size_t i = 0; i < npeers; i++) {
        if (!peers[i] || parse_addr(peers[i], &srv->allowed[i]) != 0) {
            rc = SB_EINVAL;
            goto fail;
        }
    }
    srv->nallowed = npeers;
    *out = srv;
    return 0;
fail:
    free(srv->bind_host);
    free(srv->allowed);
    free(srv);
    return rc;
}

static bool peer_allowed(const agi_server *srv, const struct sockaddr_storage *ss)
{
    int family = ss->ss_family;
    const unsigned char *bytes;
    unsigned char v4[4];
    if (family == AF_INET) {
        bytes = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
    } else if (family == AF_INET6) {
        const unsigned char *b6 =
            (const unsigned char *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        bytes = b6;
        if (memcmp(b6, mapped, 12) == 0) { /* ::ffff:a.b.c.d on a dual-stack socket */
            memcpy(v4, b6 + 12, 4);
            bytes = v4;
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < srv->nallowed; i++) {
        const allowed_addr *a = &srv->allowed[i];
        if (a->family == family && memcmp(a->addr, bytes, family == AF_INET ? 4 : 16) == 0)
            return true;
    }
    return false;
}

static void on_rejected_closed(uv_handle_t *h)
{
    agi_session *s = h->data;
    agi_server *srv = s->srv;
    free(s);
    srv->open_handles--;
    maybe_release(srv);
}

static void on_connection(uv_stream_t *listener, int status)
{
    agi_server *srv = listener->data;
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    agi_session *s;

    if (status < 0) {
        SB_WARN("agi", "accept failed: %s", uv_strerror(status));
        return;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        return; /* the connection waits in the backlog; the next accept may succeed */
    s->srv = srv;
    if (uv_tcp_init(srv->loop, &s->tcp) != 0) {
        free(s);
        return;
    }
    s->tcp.data = s;
    srv->open_handles++;
    if (uv_accept(listener, (uv_stream_t *)&s->tcp) != 0 ||
        uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &sslen) != 0 ||
        !peer_allowed(srv, &ss) || srv->stats.active >= srv->max_sessions || srv->stopping) {
        srv->stats.rejected++;
        uv_close((uv_handle_t *)&s->tcp, on_rejected_closed);
        return;
    }
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->stats.active++;
    if (agi_session_start(srv, s) != 0) {
        /* Only the TCP handle exists: close it alone. */
        if (s->next)
            s->next->prev = NULL;
        srv->sessions = s->next;
        srv->stats.active--;
        srv->stats.failed++;
        agi_header_free(&s->hp);
        agi_reply_free(&s->rp);
        uv_close((uv_handle_t *)&s->tcp, on_rejected_closed);
    }
}

void agi_server_session_released(agi_server *srv, agi_session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->stats.active--;
    free(s);
    srv->open_handles--;
    maybe_release(srv);
}

int agi_server_start(agi_server *srv)
{
    struct sockaddr_storage addr;
    int rc;
    if (srv->listener_open || srv->stopping)
        return SB_EINVAL;
    if (uv_ip4_addr(srv->bind_host, srv->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(srv->bind_host, srv->port, (struct sockaddr_in6 *)&addr) != 0)
        return SB_EINVAL;
    rc = uv_tcp_init(srv->loop, &srv->listener);
    if (rc)
        return rc;
    srv->listener.data = srv;
    srv->listener_open = true;
    srv->open_handles++;
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    /* A deep backlog: a burst of calls opens connections faster than one loop turn accepts
     * them, and a full queue costs the caller a one-second SYN retry (measured: 2,000
     * simultaneous connects took 1.2 s with 1024, 0.45 s with 4096; the kernel caps it at
     * net.core.somaxconn). */
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 4096, on_connection);
    if (rc) {
        agi_server_stop(srv);
        return rc;
    }
    return 0;
}

int agi_server_port(const agi_server *srv)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (!srv->listener_open ||
        uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void on_listener_closed(uv_handle_t *h)
{
    agi_server *srv = h->data;
    srv->open_handles--;
    maybe_release(srv);
}

void agi_server_stop(agi_server *srv)
{
    srv->stopping = true;
    if (srv->listener_open) {
        srv->listener_open = false;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    }
    /* Ending a session leaves it linked until its handles close; walk a snapshot of the list. */
    for (agi_session *s = srv->sessions; s; s = s->next)
        agi_session_end(s, SB_ECANCELED, SB_ECANCELED);
}

void agi_server_free(agi_server *srv)
{
    if (!srv)
        return;
    agi_server_stop(srv);
    srv->free_requested = true;
    maybe_release(srv);
}

agi_server_stats agi_server_get_stats(const agi_server *srv)
{
    return srv->stats;
}
