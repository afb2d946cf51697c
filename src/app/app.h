/* app.h: the daemon's context and the one lifecycle every subsystem follows.
 *
 * A subsystem is four calls (Kamailio's module exports, nginx's modules):
 *   init   prepare from the configuration; allocate; nothing runs on the loop yet
 *   start  begin running on the loop (listen, connect, arm timers)
 *   stop   stop running and close every handle (memory tied to handles goes in close callbacks)
 *   free   release what is left, after the loop has drained
 * plus an optional reload (SIGHUP: apply a freshly loaded configuration). main.c lists the
 * subsystems in ONE table; sb_app_run() calls init and start in table order, stop and free in
 * reverse order, so start-up and shutdown order are read in one place.
 */
#ifndef SB_APP_APP_H
#define SB_APP_APP_H

#include "bus/bus.h"
#include "core/config.h"
#include "core/log.h"
#include "http/router.h"
#include "http/server.h"
#include "model/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct sb_app sb_app;
typedef struct app_pbx_set app_pbx_set;
typedef struct app_demo app_demo;
typedef struct app_http app_http;
typedef struct api api;

typedef struct sb_subsystem {
    const char *name;
    /* init and start may be NULL; 0 or a negative error, after logging one clear line saying
     * what failed (the runner adds nothing): start-up is then unwound. */
    int (*init)(sb_app *app);
    int (*start)(sb_app *app);
    void (*stop)(sb_app *app); /* may be NULL; runs only when start succeeded */
    void (*free)(sb_app *app); /* may be NULL; runs only when init succeeded */
    /* may be NULL. next is the new configuration (not yet installed in app->cfg): a subsystem
     * may add to it (the demo adds its [pbx demo]) and applies it. 0, or an error that is logged
     * (the other subsystems still reload). */
    int (*reload)(sb_app *app, sb_config *next);
} sb_subsystem;

/* Options from the command line; they win over the configuration file. */
typedef struct sb_app_options {
    const char *config_path; /* -c FILE, or NULL: look in the default places */
    bool demo;               /* --demo */
    bool has_log_level;      /* --log-level given */
    sb_log_level log_level;
    bool log_json; /* --log-json */
} sb_app_options;

struct sb_app {
    uv_loop_t *loop;
    sb_app_options opt;
    const char *config_path; /* the file in use (borrowed from opt or a default), or NULL */
    sb_config *cfg;          /* owned; replaced on a successful reload */
    bool demo_active;        /* the simulator runs beside the daemon */
    app_demo *demo;          /* owned by the demo subsystem */
    app_pbx_set *pbx;        /* owned by the ami subsystem (pbx.h: app_pbx_client() etc.) */
    /* The event core (src/app/core.c), in table order. Every handle is owned by its subsystem
     * and valid from that subsystem's init until its free; later subsystems borrow them.
     *   store: store_path, the SQLite file ([store] path; migrated at init)
     *   bus:   every normalized event the model emits is published here (bus_global() = all)
     *   model: fed by every AMI event of every PBX; resynced after every (re)login
     *   http:  router (add routes in init or start, before requests arrive), server (listens in
     *          start), api (auth hook and the /v1 REST handlers, src/api/api.h) */
    char *store_path;
    bus *bus;
    uv_timer_t *bus_timer; /* bus window expiry */
    model *model;
    http_router *router;
    http_server *http;
    api *api;
    struct streams *streams;       /* event streams (src/api/streams.h), the "streams" subsystem */
    app_http *http_state;          /* the rest of the http subsystem (static files, config) */
    struct app_delivery *delivery; /* outbox + sinks (src/app/delivery.h), "delivery" */
    const sb_subsystem *table;
    size_t ntable;
    size_t ninited, nstarted; /* how many table entries got through init / start */
    uv_signal_t sig_term, sig_int, sig_hup;
    bool signals_open;
    bool stopping;
    int exit_code;
    unsigned reloads; /* successful reloads (tests and logs) */
};

/* Runs the daemon: init and start every subsystem of table (borrowed) in order, run the loop
 * until SIGTERM/SIGINT (clean stop, exit code 0) and reload on SIGHUP; then stop and free in
 * reverse. Returns the process exit code (0 clean; 1 when a subsystem failed to start). */
int sb_app_run(sb_app *app, const sb_subsystem *table, size_t ntable);
/* Asks the running daemon to stop (as SIGTERM does); exit_code becomes the process's. */
void sb_app_request_stop(sb_app *app, int exit_code);
/* Reloads the configuration file now (as SIGHUP does). Returns 0, or the load error (the old
 * configuration stays in force and one clear line is logged). */
int sb_app_reload(sb_app *app);

/* The configuration file to use: path when given, else $SWITCHBOARD_CONF, else
 * ./switchboard.conf, else /etc/switchboard/switchboard.conf when it exists; NULL when none. */
const char *sb_app_find_config(const char *path);

/* The subsystems that exist today, for main.c's table. */
int app_config_init(sb_app *app);
void app_config_free(sb_app *app);
int app_log_init(sb_app *app);
int app_log_reload(sb_app *app, sb_config *next);
int app_signals_start(sb_app *app);
void app_signals_stop(sb_app *app);

#endif
