/* pbx.c: the "ami" subsystem of the daemon: one ami_client per [pbx NAME] (see pbx.h).
 *
 * Every event goes to the model (app->model) and is counted and logged at debug level (at info
 * level in demo mode, so that a new user sees the calls flowing). After every (re)login the four
 * list actions CoreShowChannels, QueueStatus, ExtensionStateList and DeviceStateList run between
 * model_begin_resync() and model_end_resync(): their items and Complete events are handed to the
 * model as events, so it can tell what changed while the connection was down. */
#include "app/pbx.h"
#include "app/routing.h"

#include "core/error.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define LOG_SUB "pbx"

typedef struct app_pbx {
    struct app_pbx *next;
    char *name;
    ami_client *client;
    sb_app *app;
    ami_client_state last; /* last state logged at info level */
    /* State restore: the generation of the resync under way and how many of its list actions
     * have not answered yet; an answer of an older generation is ignored. */
    uint64_t resync_gen;
    int resync_pending;
    uint64_t resyncs_done;
} app_pbx;

/* One list action of a resync, freed by its callback. The pbx outlives it: stopping a client
 * completes its pending actions from inside ami_client_stop(). */
typedef struct resync_job {
    app_pbx *p;
    uint64_t gen;
} resync_job;

struct app_pbx_set {
    app_pbx *head;
    size_t count;
    uint64_t events;
    bool started;
};

void app_pbx_client_config(const sb_config_pbx *p, ami_client_config *out)
{
    memset(out, 0, sizeof *out);
    out->name = p->name;
    out->host = p->host;
    out->port = p->port;
    out->username = p->username;
    out->secret = p->secret;
    out->md5 = p->md5;
    out->events = p->events;
    out->filters = (const char *const *)p->filters;
    out->nfilters = p->nfilters;
    out->ping_interval_ms = p->ping_interval_ms;
    out->stall_timeout_ms = p->stall_timeout_ms;
    out->connect_timeout_ms = p->connect_timeout_ms;
    out->action_timeout_ms = p->action_timeout_ms;
    out->reconnect_min_ms = p->reconnect_min_ms;
    out->reconnect_max_ms = p->reconnect_max_ms;
}

/* Every change of state at info level; repeats of a state (each retry while the PBX is down)
 * at debug level, since the client already reports each new failure once. */
static void on_state(ami_client *c, ami_client_state st, const char *why, void *ud)
{
    app_pbx *p = ud;
    sb_log_level lvl = st == p->last ? SB_LOG_DEBUG : SB_LOG_INFO;
    p->last = st;
    if (sb_log_enabled(lvl))
        sb_log(lvl, LOG_SUB, "%s: %s (%s)", ami_client_name(c), ami_client_state_name(st), why);
}

static void on_event(ami_client *c, const ami_packet *ev, void *ud)
{
    app_pbx *p = ud;
    p->app->pbx->events++;
    app_routing_ami_event(p->app, c, ev); /* AsyncAGI calls (routing) */
    if (p->app->model && model_handle_event(p->app->model, p->name, ev) < 0)
        SB_WARN(LOG_SUB, "%s: model out of memory, event %.*s lost", p->name, (int)ev->name.len,
                ev->name.ptr);
    sb_log_level lvl = p->app->demo_active ? SB_LOG_INFO : SB_LOG_DEBUG;
    if (!sb_log_enabled(lvl))
        return;
    /* A few identifying fields; events never carry secrets. */
    sb_slice chan = ami_packet_value(ev, "Channel");
    sb_slice queue = ami_packet_value(ev, "Queue");
    sb_slice uid = ami_packet_value(ev, "Uniqueid");
    sb_log(lvl, LOG_SUB, "%s: event %.*s%s%.*s%s%.*s%s%.*s", ami_client_name(c), (int)ev->name.len,
           ev->name.ptr, chan.len ? " Channel=" : "", (int)chan.len, chan.ptr,
           queue.len ? " Queue=" : "", (int)queue.len, queue.ptr, uid.len ? " Uniqueid=" : "",
           (int)uid.len, uid.ptr);
}

/* ---- state restore ---- */

static void on_list(ami_client *c, const ami_result *r, void *ud)
{
    resync_job *j = ud;
    app_pbx *p = j->p;
    bool is_current = j->gen == p->resync_gen;
    (void)c;
    free(j);
    if (!is_current)
        return;
    model *m = p->app->model;
    if (r->status < 0)
        SB_WARN(LOG_SUB, "%s: state restore: a list action failed (%s); not swept", p->name,
                sb_strerror(r->status));
    /* The items and the Complete event are part of the action's answer, so the client does not
     * hand them to on_event: the model gets them here. Only a list that completed is swept. */
    for (size_t i = 0; m && i < r->nitems; i++)
        model_handle_event(m, p->name, r->items[i]);
    if (m && r->complete && r->status == 0)
        model_handle_event(m, p->name, r->complete);
    if (--p->resync_pending == 0) {
        if (m)
            model_end_resync(m, p->name);
        p->resyncs_done++;
        SB_DEBUG(LOG_SUB, "%s: state restored", p->name);
    }
}

static void on_ready(ami_client *c, bool reconnected, void *ud)
{
    static const char *const lists[] = {"CoreShowChannels", "QueueStatus", "ExtensionStateList",
                                        "DeviceStateList"};
    app_pbx *p = ud;
    model *m = p->app->model;
    p->resync_gen++;
    p->resync_pending = 0;
    if (m)
        model_begin_resync(m, p->name);
    SB_DEBUG(LOG_SUB, "%s: state restore started (%s)", p->name,
             reconnected ? "after a reconnect" : "first login");
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        ami_msg msg;
        resync_job *j = calloc(1, sizeof *j);
        if (!j) {
            SB_WARN(LOG_SUB, "%s: state restore: out of memory", p->name);
            break;
        }
        j->p = p;
        j->gen = p->resync_gen;
        ami_msg_init(&msg, "Action", lists[i]);
        int rc = ami_client_send(c, &msg, AMI_ACTION_LIST, 0, on_list, j, NULL, 0);
        if (rc < 0) {
            SB_WARN(LOG_SUB, "%s: state restore: cannot send %s: %s", p->name, lists[i],
                    sb_strerror(rc));
            free(j);
            continue;
        }
        p->resync_pending++;
    }
    if (p->resync_pending == 0 && m)
        model_end_resync(m, p->name);
}

static int pbx_add(sb_app *app, const sb_config_pbx *cp)
{
    ami_client_config cc;
    int rc = SB_ENOMEM;
    app_pbx *p = calloc(1, sizeof *p);
    if (!p)
        goto fail;
    p->app = app;
    p->last = AMI_STATE_STOPPED;
    p->name = strdup(cp->name);
    if (!p->name)
        goto fail;
    app_pbx_client_config(cp, &cc);
    ami_client_callbacks cbs = {
        .on_event = on_event, .on_state = on_state, .on_ready = on_ready, .ud = p};
    rc = ami_client_new(app->loop, &cc, &cbs, &p->client);
    if (rc < 0)
        goto fail;
    p->next = app->pbx->head;
    app->pbx->head = p;
    app->pbx->count++;
    return 0;
fail:
    SB_ERROR(LOG_SUB, "%s: cannot create the AMI client: %s", cp->name, sb_strerror(rc));
    if (p)
        free(p->name);
    free(p);
    return rc;
}

/* Stops and releases one client (its memory goes in the loop's close callbacks). */
static void pbx_remove(sb_app *app, app_pbx *p)
{
    app_pbx **pp = &app->pbx->head;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    app->pbx->count--;
    /* Stopping completes the pending list actions (SB_ECANCELED) from inside the call: a new
     * generation makes their callbacks ignore them. */
    p->resync_gen++;
    ami_client_stop(p->client);
    ami_client_free(p->client);
    free(p->name);
    free(p);
}

int app_ami_init(sb_app *app)
{
    app->pbx = calloc(1, sizeof *app->pbx);
    if (!app->pbx) {
        SB_ERROR(LOG_SUB, "out of memory");
        return SB_ENOMEM;
    }
    return 0;
}

int app_ami_start(sb_app *app)
{
    /* Clients are created here, not in init: the demo's [pbx demo] exists only once the
     * simulator has started and knows its port. */
    for (size_t i = 0; i < app->cfg->npbx; i++) {
        int rc = pbx_add(app, &app->cfg->pbx[i]);
        if (rc < 0)
            return rc;
    }
    app->pbx->started = true;
    for (app_pbx *p = app->pbx->head; p; p = p->next) {
        int rc = ami_client_start(p->client);
        if (rc < 0) {
            SB_ERROR(LOG_SUB, "%s: cannot start: %s", p->name, sb_strerror(rc));
            return rc;
        }
    }
    if (app->pbx->count == 0)
        SB_WARN(LOG_SUB, "no PBX to connect to");
    return 0;
}

void app_ami_stop(sb_app *app)
{
    app->pbx->started = false;
    while (app->pbx->head)
        pbx_remove(app, app->pbx->head);
}

void app_ami_free(sb_app *app)
{
    if (!app->pbx)
        return;
    /* init succeeded but start never ran, or stop already emptied the list. */
    while (app->pbx->head)
        pbx_remove(app, app->pbx->head);
    free(app->pbx);
    app->pbx = NULL;
}

int app_ami_reload(sb_app *app, sb_config *next)
{
    int rc = 0;
    /* Remove what is gone or changed. */
    app_pbx *p = app->pbx->head;
    while (p) {
        app_pbx *following = p->next;
        const sb_config_pbx *was = sb_config_find_pbx(app->cfg, p->name);
        const sb_config_pbx *now = sb_config_find_pbx(next, p->name);
        if (!now) {
            SB_INFO(LOG_SUB, "%s: removed from the configuration, disconnecting", p->name);
            pbx_remove(app, p);
        } else if (!was || !sb_config_pbx_equal(was, now)) {
            SB_INFO(LOG_SUB, "%s: configuration changed, reconnecting", p->name);
            pbx_remove(app, p);
        }
        p = following;
    }
    /* Add what is new (including the ones just removed for a change). */
    for (size_t i = 0; i < next->npbx; i++) {
        const sb_config_pbx *cp = &next->pbx[i];
        bool running = false;
        for (p = app->pbx->head; p && !running; p = p->next)
            running = strcmp(p->name, cp->name) == 0;
        if (running)
            continue;
        int r = pbx_add(app, cp);
        if (r == 0 && app->pbx->started) {
            r = ami_client_start(app->pbx->head->client);
            if (r == 0 && !sb_config_find_pbx(app->cfg, cp->name))
                SB_INFO(LOG_SUB, "%s: added, connecting to %s:%d", cp->name, cp->host, cp->port);
        }
        if (r < 0)
            rc = r;
    }
    return rc;
}

size_t app_ami_count(const sb_app *app)
{
    return app->pbx ? app->pbx->count : 0;
}

uint64_t app_ami_events(const sb_app *app)
{
    return app->pbx ? app->pbx->events : 0;
}

ami_client *app_pbx_client(const sb_app *app, const char *name)
{
    if (!app->pbx)
        return NULL;
    for (app_pbx *p = app->pbx->head; p; p = p->next)
        if (!name || strcmp(p->name, name) == 0)
            return p->client;
    return NULL;
}

size_t app_pbx_list(const sb_app *app, ami_client **out, size_t max)
{
    size_t n = 0;
    if (!app->pbx)
        return 0;
    for (app_pbx *p = app->pbx->head; p; p = p->next) {
        if (n < max)
            out[n] = p->client;
        n++;
    }
    return n;
}

uint64_t app_pbx_resyncs(const sb_app *app, const char *name)
{
    if (!app->pbx)
        return 0;
    for (app_pbx *p = app->pbx->head; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p->resyncs_done;
    return 0;
}
