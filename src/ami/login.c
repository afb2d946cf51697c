/* login.c: the AMI client's login sequence, from the banner to READY (see internal.h).
 *
 * Plain: Login with Username, Secret, Events. MD5: Challenge (AuthType: MD5), then Login with
 * AuthType: MD5 and Key = lower-case hex MD5(challenge + secret) (protocol-facts §1.3, fixture 03).
 * Then one Filter action per configured filter, each answered before READY. A refused login is
 * reported once per attempt and logged once per streak; the client retries with back-off.
 */
#include "ami/internal.h"

#include "core/error.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define LOG_SUB "ami"

static void become_ready(ami_client *c);

static void login_failed(ami_client *c, const ami_result *r)
{
    char why[96] = "authentication failed";
    c->st.logins_failed++;
    if (r->response && !ami_packet_is(r->response, "Message", "Authentication failed")) {
        sb_slice msg = ami_packet_value(r->response, "Message");
        if (msg.len) {
            char m[80];
            ami_reason_copy(msg, m, sizeof m);
            snprintf(why, sizeof why, "login refused: %s", m);
        }
    }
    if (!c->auth_failing)
        SB_ERROR(LOG_SUB,
                 "pbx %s: login as \"%s\" failed: %s; retrying with back-off (repeats are "
                 "logged at debug level)",
                 c->name, c->username, why);
    else
        SB_DEBUG(LOG_SUB, "pbx %s: login as \"%s\" failed again: %s", c->name, c->username, why);
    c->auth_failing = true;
    ami_client_drop(c, why, true);
}

static bool login_aborted(ami_client *c, const ami_result *r)
{
    if (r->status == SB_EDISCONN || r->status == SB_ECANCELED)
        return true; /* the drop that caused this is being handled */
    if (r->status == SB_ETIMEDOUT) {
        ami_client_attempt_failed(c, "login timed out");
        return true;
    }
    return false;
}

static void on_filter_result(ami_client *c, const ami_result *r, void *ud)
{
    size_t i = (size_t)(uintptr_t)ud;
    if (r->status == SB_EDISCONN || r->status == SB_ECANCELED)
        return;
    if (r->status != 0) {
        char m[80] = "";
        if (r->response)
            ami_reason_copy(ami_packet_value(r->response, "Message"), m, sizeof m);
        SB_WARN(LOG_SUB, "pbx %s: Filter \"%s\" not installed: %s %s", c->name, c->filters[i],
                sb_strerror(r->status), m);
    }
    if (c->filters_left > 0 && --c->filters_left == 0)
        become_ready(c);
}

static void become_ready(ami_client *c)
{
    bool reconnected = c->ever_ready;
    uv_timer_stop(&c->conn_timer);
    c->ever_ready = true;
    c->last_failure[0] = '\0';
    c->last_rx = uv_now(c->loop);
    c->last_ping = c->last_rx;
    ami_client_ka_arm(c);
    SB_INFO(LOG_SUB, "pbx %s: logged in to %s:%d as \"%s\" (AMI %s)%s", c->name, c->host,
            c->cfg.port, c->username, c->version[0] ? c->version : "?",
            reconnected ? ", reconnected" : "");
    ami_conn *conn = c->conn;
    ami_client_set_state(c, AMI_STATE_READY, "logged in");
    if (c->state == AMI_STATE_READY && c->conn == conn && c->cbs.on_ready && !c->freeing)
        c->cbs.on_ready(c, reconnected, c->cbs.ud);
}

static void on_login_result(ami_client *c, const ami_result *r, void *ud)
{
    (void)ud;
    if (login_aborted(c, r))
        return;
    if (r->status != 0) {
        login_failed(c, r);
        return;
    }
    c->auth_failing = false;
    c->backoff_attempt = 0;
    c->filters_left = 0;
    for (size_t i = 0; i < c->cfg.nfilters; i++) {
        ami_msg m;
        ami_msg_init(&m, "Action", "Filter");
        ami_msg_add(&m, "Operation", "Add");
        ami_msg_add(&m, "Filter", c->filters[i]);
        int rc = ami_client_send_action(c, &m, AMI_ACTION_SIMPLE, 0, on_filter_result,
                                        (void *)(uintptr_t)i, true, false, NULL, 0);
        if (rc == SB_EDISCONN) {
            ami_client_attempt_failed(c, "write failed");
            return;
        }
        if (rc < 0)
            SB_WARN(LOG_SUB, "pbx %s: Filter \"%s\" not sent: %s", c->name, c->filters[i],
                    sb_strerror(rc));
        else
            c->filters_left++;
    }
    if (c->filters_left == 0)
        become_ready(c);
}

static void send_login(ami_client *c, const char *key_hex)
{
    ami_msg m;
    ami_msg_init(&m, "Action", "Login");
    ami_msg_add(&m, "Username", c->username);
    if (key_hex) {
        ami_msg_add(&m, "AuthType", "MD5");
        ami_msg_add(&m, "Key", key_hex);
    } else {
        ami_msg_add(&m, "Secret", c->secret);
    }
    ami_msg_add(&m, "Events", c->events);
    int rc = ami_client_send_action(c, &m, AMI_ACTION_SIMPLE, 0, on_login_result, NULL, true, true,
                                    NULL, 0);
    if (rc < 0)
        ami_client_attempt_failed(c, rc == SB_EINVAL ? "user name or secret not sendable"
                                                     : "write failed");
}

/* Key = lower-case hex MD5(challenge + secret) (protocol-facts §1.3, fixture 03). */
static int md5_key(sb_slice challenge, const char *secret, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = SB_EIO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return SB_ENOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, challenge.ptr, challenge.len) != 1 ||
        EVP_DigestUpdate(ctx, secret, strlen(secret)) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 16)
        goto out;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[32] = '\0';
    rc = 0;
out:
    OPENSSL_cleanse(md, sizeof md);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static void on_challenge_result(ami_client *c, const ami_result *r, void *ud)
{
    char key[33];
    (void)ud;
    if (login_aborted(c, r))
        return;
    const sb_slice *ch = r->response ? ami_packet_get(r->response, "Challenge") : NULL;
    if (r->status != 0 || !ch || ch->len == 0) {
        login_failed(c, r);
        return;
    }
    if (md5_key(*ch, c->secret, key) < 0) {
        ami_client_attempt_failed(c, "MD5 unavailable");
        return;
    }
    send_login(c, key);
    OPENSSL_cleanse(key, sizeof key);
}

void ami_login_start(ami_client *c)
{
    if (!c->cfg.md5) {
        send_login(c, NULL);
        return;
    }
    ami_msg m;
    ami_msg_init(&m, "Action", "Challenge");
    ami_msg_add(&m, "AuthType", "MD5");
    if (ami_client_send_action(c, &m, AMI_ACTION_SIMPLE, 0, on_challenge_result, NULL, true, false,
                               NULL, 0) < 0)
        ami_client_attempt_failed(c, "write failed");
}
