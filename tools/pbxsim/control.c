/* control.c: the simulator's control language (pbxsim_command: the `pbxsim` program's stdin,
 * pbxsim_thread_command) and the simulator on a thread of its own, driven through a locked
 * command queue and a uv_async wake-up. */
#include "internal.h"

#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "pbxsim"

/* ---- control commands ---- */

#define MAX_WORDS 24

int pbxsim_command(pbxsim *sim, const char *line)
{
    char buf[1024];
    char *w[MAX_WORDS];
    int n = 0;
    if (!line || strlen(line) >= sizeof buf)
        return SB_EINVAL;
    memcpy(buf, line, strlen(line) + 1);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t\r\n", &save); tok && n < MAX_WORDS;
         tok = strtok_r(NULL, " \t\r\n", &save))
        w[n++] = tok;
    if (n == 0)
        return 0;
    if (strcmp(w[0], "play") == 0 && n >= 2) {
        const char *vars[MAX_WORDS];
        int nv = 0;
        for (int i = 2; i < n; i++)
            vars[nv++] = w[i];
        vars[nv] = NULL;
        pbxsim_play_opts o = {.vars = vars};
        return pbxsim_play(sim, w[1], &o);
    }
    if (strcmp(w[0], "load") == 0 && n == 5 && strncmp(w[4], "AGENTS=", 7) == 0) {
        char *end;
        double rate = strtod(w[1], &end);
        if (*end)
            return SB_EINVAL;
        double secs = strtod(w[2], &end);
        if (*end || secs < 0)
            return SB_EINVAL;
        const char *r = w[4] + 7;
        if (*r < '0' || *r > '9')
            return SB_EINVAL;
        unsigned long lo = strtoul(r, &end, 10);
        if (*end != '-' || end[1] < '0' || end[1] > '9')
            return SB_EINVAL;
        unsigned long hi = strtoul(end + 1, &end, 10);
        if (*end || lo > 999999999ul || hi > 999999999ul)
            return SB_EINVAL;
        return pbxsim_load_agents(sim, rate, (uint64_t)(secs * 1000.0), w[3], (uint32_t)lo,
                                  (uint32_t)hi);
    }
    if (strcmp(w[0], "load") == 0 && n == 4) {
        char *end;
        double rate = strtod(w[1], &end);
        if (*end)
            return SB_EINVAL;
        double secs = strtod(w[2], &end);
        if (*end || secs < 0)
            return SB_EINVAL;
        return pbxsim_load(sim, rate, (uint64_t)(secs * 1000.0), w[3]);
    }
    if (strcmp(w[0], "stream") == 0 && n == 2) {
        char *end;
        unsigned long long count = strtoull(w[1], &end, 10);
        if (*end)
            return SB_EINVAL;
        return pbxsim_stream(sim, count);
    }
    if (strcmp(w[0], "fault") == 0 && n >= 2) {
        if (strcmp(w[1], "drop") == 0)
            return pbxsim_inject(sim, PBXSIM_FAULT_DROP, 0);
        if (strcmp(w[1], "garbage") == 0)
            return pbxsim_inject(sim, PBXSIM_FAULT_GARBAGE, 0);
        if (strcmp(w[1], "restart") == 0)
            return pbxsim_inject(sim, PBXSIM_FAULT_RESTART, 0);
        if (strcmp(w[1], "stall") == 0 && n == 3) {
            char *end;
            unsigned long long ms = strtoull(w[2], &end, 10);
            if (*end)
                return SB_EINVAL;
            return pbxsim_inject(sim, PBXSIM_FAULT_STALL, ms);
        }
    }
    return SB_EINVAL;
}

/* ---- the simulator on its own thread ---- */

typedef struct cmd_node {
    struct cmd_node *next;
    char line[];
} cmd_node;

struct pbxsim_thread {
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    uv_mutex_t lock;
    uv_sem_t ready;
    pbxsim *sim;
    pbxsim_config cfg;
    int start_rc;
    int port;
    bool stop;
    cmd_node *head, *tail;
    pbxsim_stats stats;
};

static void thread_async(uv_async_t *a)
{
    pbxsim_thread *t = a->data;
    uv_mutex_lock(&t->lock);
    cmd_node *list = t->head;
    t->head = t->tail = NULL;
    bool stop = t->stop;
    uv_mutex_unlock(&t->lock);
    while (list) {
        cmd_node *next = list->next;
        int rc = pbxsim_command(t->sim, list->line);
        if (rc < 0)
            SB_WARN(SUB, "command \"%s\" failed: %s", list->line, sb_strerror(rc));
        free(list);
        list = next;
    }
    uv_mutex_lock(&t->lock);
    pbxsim_get_stats(t->sim, &t->stats);
    uv_mutex_unlock(&t->lock);
    if (stop) {
        pbxsim_free(t->sim);
        t->sim = NULL;
        uv_close((uv_handle_t *)&t->async, NULL);
    }
}

static void stats_tick(uv_timer_t *tm)
{
    pbxsim_thread *t = tm->data;
    if (!t->sim) {
        uv_close((uv_handle_t *)tm, NULL);
        return;
    }
    uv_mutex_lock(&t->lock);
    pbxsim_get_stats(t->sim, &t->stats);
    uv_mutex_unlock(&t->lock);
}

static void thread_main(void *arg)
{
    pbxsim_thread *t = arg;
    uv_timer_t stats_timer;
    t->start_rc = pbxsim_new(&t->loop, &t->cfg, &t->sim);
    if (t->start_rc == 0)
        t->start_rc = pbxsim_start(t->sim);
    if (t->start_rc < 0) {
        if (t->sim)
            pbxsim_free(t->sim);
        t->sim = NULL;
        uv_close((uv_handle_t *)&t->async, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_sem_post(&t->ready);
        return;
    }
    t->port = pbxsim_port(t->sim);
    uv_timer_init(&t->loop, &stats_timer);
    stats_timer.data = t;
    uv_timer_start(&stats_timer, stats_tick, 100, 100);
    uv_sem_post(&t->ready);
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

int pbxsim_thread_start(const pbxsim_config *cfg, pbxsim_thread **out)
{
    int rc;
    pbxsim_thread *t = calloc(1, sizeof *t);
    if (!t)
        return SB_ENOMEM;
    if (cfg)
        t->cfg = *cfg;
    else
        pbxsim_config_default(&t->cfg);
    rc = uv_loop_init(&t->loop);
    if (rc < 0)
        goto fail_free;
    uv_mutex_init(&t->lock);
    uv_sem_init(&t->ready, 0);
    uv_async_init(&t->loop, &t->async, thread_async);
    t->async.data = t;
    rc = uv_thread_create(&t->thread, thread_main, t);
    if (rc < 0) {
        uv_close((uv_handle_t *)&t->async, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        goto fail_loop;
    }
    uv_sem_wait(&t->ready);
    if (t->start_rc < 0) {
        rc = t->start_rc;
        uv_thread_join(&t->thread);
        goto fail_loop;
    }
    *out = t;
    return 0;
fail_loop:
    uv_loop_close(&t->loop);
    uv_sem_destroy(&t->ready);
    uv_mutex_destroy(&t->lock);
fail_free:
    free(t);
    return rc;
}

int pbxsim_thread_port(const pbxsim_thread *t)
{
    return t->port;
}

int pbxsim_thread_command(pbxsim_thread *t, const char *line)
{
    size_t n = strlen(line);
    cmd_node *c = malloc(sizeof *c + n + 1);
    if (!c)
        return SB_ENOMEM;
    c->next = NULL;
    memcpy(c->line, line, n + 1);
    uv_mutex_lock(&t->lock);
    if (t->tail)
        t->tail->next = c;
    else
        t->head = c;
    t->tail = c;
    uv_mutex_unlock(&t->lock);
    uv_async_send(&t->async);
    return 0;
}

void pbxsim_thread_stats(pbxsim_thread *t, pbxsim_stats *out)
{
    uv_mutex_lock(&t->lock);
    *out = t->stats;
    uv_mutex_unlock(&t->lock);
}

void pbxsim_thread_stop(pbxsim_thread *t)
{
    if (!t)
        return;
    uv_mutex_lock(&t->lock);
    t->stop = true;
    uv_mutex_unlock(&t->lock);
    uv_async_send(&t->async);
    uv_thread_join(&t->thread);
    cmd_node *c = t->head;
    while (c) {
        cmd_node *next = c->next;
        free(c);
        c = next;
    }
    uv_loop_close(&t->loop);
    uv_sem_destroy(&t->ready);
    uv_mutex_destroy(&t->lock);
    free(t);
}
