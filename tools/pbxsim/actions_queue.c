/* actions_queue.c: the queue actions (QueueStatus, QueueSummary, QueueAdd, QueueRemove,
 * QueuePause) with the texts of fixtures 04, 08 and 09. Each change is emitted as the events
 * Asterisk sends (DeviceStateChange Queue:Q_pause_IFACE, QueueMember*), and the state follows
 * those events. */
#include "internal.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- queues ---- */

void sim_act_queuestatus(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    sb_slice only = ami_packet_value(p, "Queue");
    sb_slice member = ami_packet_value(p, "Member");
    sim_send_listack(s, p, "Queue status will follow");
    int n = 0;
    for (int qi = sim->state.nqueues; qi-- > 0;) {
        const sim_queue *q = &sim->state.queues[qi];
        if (only.len && !sb_slice_eq(only, sb_slice_cstr(q->name)))
            continue;
        ami_msg m;
        ami_msg_init(&m, "Event", "QueueParams");
        ami_msg_add(&m, "Queue", q->name);
        ami_msg_add(&m, "Max", "0");
        ami_msg_add(&m, "Strategy", q->strategy);
        ami_msg_addf(&m, "Calls", "%d", q->calls);
        ami_msg_addf(&m, "Holdtime", "%d", q->holdtime);
        ami_msg_addf(&m, "TalkTime", "%d", q->talktime);
        ami_msg_addf(&m, "Completed", "%d", q->completed);
        ami_msg_addf(&m, "Abandoned", "%d", q->abandoned);
        ami_msg_add(&m, "ServiceLevel", "0");
        ami_msg_add(&m, "ServicelevelPerf", "0.0");
        ami_msg_add(&m, "ServicelevelPerf2", "0.0");
        ami_msg_add(&m, "Weight", "0");
        sim_add_actionid(&m, p);
        sim_send_msg(s, &m);
        n++;
        for (int mi = q->nmembers; mi-- > 0;) {
            const sim_member *mb = &q->members[mi];
            if (member.len && !sb_slice_eq(member, sb_slice_cstr(mb->iface)) &&
                !sb_slice_eq(member, sb_slice_cstr(mb->name)))
                continue;
            ami_msg_init(&m, "Event", "QueueMember");
            ami_msg_add(&m, "Queue", q->name);
            ami_msg_add(&m, "Name", mb->name);
            ami_msg_add(&m, "Location", mb->iface);
            ami_msg_add(&m, "StateInterface", mb->state_iface);
            ami_msg_add(&m, "Membership", mb->dynamic ? "dynamic" : "static");
            ami_msg_addf(&m, "Penalty", "%d", mb->penalty);
            ami_msg_addf(&m, "CallsTaken", "%d", mb->calls_taken);
            ami_msg_addf(&m, "LastCall", "%lld", mb->last_call);
            ami_msg_addf(&m, "LastPause", "%lld", mb->last_pause);
            ami_msg_addf(&m, "LoginTime", "%lld", mb->login_time);
            ami_msg_addf(&m, "InCall", "%d", mb->in_call);
            ami_msg_addf(&m, "Status", "%d", mb->status);
            ami_msg_addf(&m, "Paused", "%d", mb->paused ? 1 : 0);
            ami_msg_add(&m, "PausedReason", mb->reason);
            ami_msg_add(&m, "Wrapuptime", "0");
            sim_add_actionid(&m, p);
            sim_send_msg(s, &m);
            n++;
        }
        for (int ci = 0; ci < q->ncallers; ci++) {
            const sim_caller *cl = &q->callers[ci];
            ami_msg_init(&m, "Event", "QueueEntry");
            ami_msg_add(&m, "Queue", q->name);
            ami_msg_addf(&m, "Position", "%d", ci + 1);
            ami_msg_add(&m, "Channel", cl->channel);
            ami_msg_add(&m, "Uniqueid", cl->uniqueid);
            ami_msg_add(&m, "CallerIDNum", cl->cid_num);
            ami_msg_add(&m, "CallerIDName", cl->cid_name);
            ami_msg_add(&m, "ConnectedLineNum", cl->conn_num);
            ami_msg_add(&m, "ConnectedLineName", cl->conn_name);
            ami_msg_addf(&m, "Wait", "%llu",
                         (unsigned long long)((sim_now_ms(sim) - cl->joined_ms) / 1000));
            ami_msg_add(&m, "Priority", "0");
            sim_add_actionid(&m, p);
            sim_send_msg(s, &m);
            n++;
        }
    }
    sim_send_list_complete(s, p, "QueueStatusComplete", n);
}

void sim_act_queuesummary(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    sb_slice only = ami_packet_value(p, "Queue");
    sim_send_listack(s, p, "Queue summary will follow");
    int n = 0;
    for (int qi = sim->state.nqueues; qi-- > 0;) {
        const sim_queue *q = &sim->state.queues[qi];
        if (only.len && !sb_slice_eq(only, sb_slice_cstr(q->name)))
            continue;
        int logged = 0, avail = 0;
        for (int i = 0; i < q->nmembers; i++) {
            const sim_member *mb = &q->members[i];
            if (mb->status != 5 && mb->status != 4) { /* not unavailable / invalid */
                logged++;
                if (!mb->paused && (mb->status == 1 || mb->status == 0))
                    avail++;
            }
        }
        ami_msg m;
        ami_msg_init(&m, "Event", "QueueSummary");
        ami_msg_add(&m, "Queue", q->name);
        ami_msg_addf(&m, "LoggedIn", "%d", logged);
        ami_msg_addf(&m, "Available", "%d", avail);
        ami_msg_addf(&m, "Callers", "%d", q->calls);
        ami_msg_addf(&m, "HoldTime", "%d", q->holdtime);
        ami_msg_addf(&m, "TalkTime", "%d", q->talktime);
        uint64_t longest = 0;
        for (int ci = 0; ci < q->ncallers; ci++) {
            uint64_t w = (sim_now_ms(sim) - q->callers[ci].joined_ms) / 1000;
            if (w > longest)
                longest = w;
        }
        ami_msg_addf(&m, "LongestHoldTime", "%llu", (unsigned long long)longest);
        sim_add_actionid(&m, p);
        sim_send_msg(s, &m);
        n++;
    }
    sim_send_list_complete(s, p, "QueueSummaryComplete", n);
}

static void emit_member_event(pbxsim *sim, const char *event, const sim_queue *q,
                              const sim_member *mb)
{
    ami_msg m;
    ami_msg_init(&m, "Event", event);
    ami_msg_add(&m, "Privilege", "agent,all");
    sim_msg_member(&m, q, mb);
    sim_emit_msg(sim, &m);
}

static void emit_device(pbxsim *sim, const char *device, const char *state)
{
    ami_msg m;
    ami_msg_init(&m, "Event", "DeviceStateChange");
    ami_msg_add(&m, "Privilege", "call,all");
    ami_msg_add(&m, "Device", device);
    ami_msg_add(&m, "State", state);
    sim_emit_msg(sim, &m);
}

void sim_act_queueadd(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    if (!sim_has_value(p, "Queue")) {
        sim_send_error(s, p, "'Queue' not specified.");
        return;
    }
    if (!sim_has_value(p, "Interface")) {
        sim_send_error(s, p, "'Interface' not specified.");
        return;
    }
    sim_queue *q = sim_state_queue(&sim->state, ami_packet_value(p, "Queue"));
    if (!q) {
        sim_send_error(s, p, "Unable to add interface to queue: No such queue");
        return;
    }
    if (sim_queue_member(q, ami_packet_value(p, "Interface"))) {
        sim_send_error(s, p, "Unable to add interface: Already there");
        return;
    }
    if (q->nmembers == SIM_MAX_MEMBERS) {
        sim_send_error(s, p, "Out of memory");
        return;
    }
    sim_member mb;
    memset(&mb, 0, sizeof mb);
    sim_copy_value(p, "Interface", mb.iface, sizeof mb.iface);
    sim_copy_value(p, "MemberName", mb.name, sizeof mb.name);
    if (!mb.name[0])
        sim_copy(mb.name, sizeof mb.name, mb.iface);
    sim_copy_value(p, "StateInterface", mb.state_iface, sizeof mb.state_iface);
    if (!mb.state_iface[0])
        sim_copy(mb.state_iface, sizeof mb.state_iface, mb.iface);
    long long pen = 0;
    sb_slice_to_ll(ami_packet_value(p, "Penalty"), &pen);
    mb.penalty = (int)pen;
    mb.dynamic = true;
    mb.status = 1;
    mb.paused = sim_truthy(ami_packet_value(p, "Paused"));
    mb.login_time = (long long)time(NULL);
    if (mb.paused) {
        mb.last_pause = mb.login_time;
        sim_copy_value(p, "Reason", mb.reason, sizeof mb.reason);
    }
    mb.ringinuse = q->nmembers ? q->members[0].ringinuse : 0;
    sim_send_ack(s, p, "Added interface to queue");
    char dev[160];
    snprintf(dev, sizeof dev, "Queue:%s_pause_%s", q->name, mb.iface);
    emit_device(sim, dev, mb.paused ? "INUSE" : "NOT_INUSE");
    emit_member_event(sim, "QueueMemberAdded", q, &mb);
}

void sim_act_queueremove(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    if (!sim_has_value(p, "Queue") || !sim_has_value(p, "Interface")) {
        sim_send_error(s, p, "Need 'Queue' and 'Interface' parameters.");
        return;
    }
    sim_queue *q = sim_state_queue(&sim->state, ami_packet_value(p, "Queue"));
    if (!q) {
        sim_send_error(s, p, "Unable to remove interface from queue: No such queue");
        return;
    }
    sim_member *mb = sim_queue_member(q, ami_packet_value(p, "Interface"));
    if (!mb) {
        sim_send_error(s, p, "Unable to remove interface: Not there");
        return;
    }
    if (!mb->dynamic) {
        sim_send_error(s, p, "Member not dynamic");
        return;
    }
    sim_member copy = *mb;
    sim_send_ack(s, p, "Removed interface from queue");
    emit_member_event(sim, "QueueMemberRemoved", q, &copy);
}

void sim_act_queuepause(sim_session *s, const ami_packet *p)
{
    pbxsim *sim = s->sim;
    if (!sim_has_value(p, "Interface") || !ami_packet_get(p, "Paused")) {
        sim_send_error(s, p, "Need 'Interface' and 'Paused' parameters.");
        return;
    }
    sb_slice only = ami_packet_value(p, "Queue");
    sb_slice iface = ami_packet_value(p, "Interface");
    bool paused = sim_truthy(ami_packet_value(p, "Paused"));
    int found = 0;
    for (int qi = 0; qi < sim->state.nqueues; qi++) {
        sim_queue *q = &sim->state.queues[qi];
        if (only.len && !sb_slice_eq(only, sb_slice_cstr(q->name)))
            continue;
        if (sim_queue_member(q, iface))
            found++;
    }
    if (!found) {
        sim_send_error(s, p, "Interface not found");
        return;
    }
    sim_send_ack(s, p,
                 paused ? "Interface paused successfully" : "Interface unpaused successfully");
    for (int qi = sim->state.nqueues; qi-- > 0;) {
        sim_queue *q = &sim->state.queues[qi];
        if (only.len && !sb_slice_eq(only, sb_slice_cstr(q->name)))
            continue;
        sim_member *cur = sim_queue_member(q, iface);
        if (!cur)
            continue;
        sim_member mb = *cur;
        mb.paused = paused;
        if (paused) {
            mb.last_pause = (long long)time(NULL);
            sim_copy_value(p, "Reason", mb.reason, sizeof mb.reason);
        } else {
            mb.reason[0] = '\0';
        }
        char dev[160];
        snprintf(dev, sizeof dev, "Queue:%s_pause_%s", q->name, mb.iface);
        emit_device(sim, dev, paused ? "INUSE" : "NOT_INUSE");
        emit_member_event(sim, "QueueMemberPause", q, &mb);
    }
}
