// state.js: the console's picture of the PBX, built from a snapshot and kept current by the
// normalized events of docs/events.md. The views only read it.

import { statusWord } from './dom.js';

const RECENT_MAX = 30;

/** An array from an array, a {key: object} map, a single object with `keyField`, or nothing. */
function listOf(x, keyField) {
  if (!x) return [];
  if (Array.isArray(x)) return x;
  if (typeof x === 'object') {
    if (keyField && x[keyField] !== undefined) return [x];
    return Object.values(x).filter((v) => v && typeof v === 'object');
  }
  return [];
}

export class ConsoleState {
  constructor() {
    this.reset();
    this.listeners = new Set();
  }

  reset() {
    this.calls = new Map(); // callId -> call details (+pbx, updated)
    this.queues = new Map(); // name -> {name, pbx, waiting, joins[], members: Map iface -> member, ...}
    this.agents = new Map(); // extension -> {extension, extensionStatus, queues: Map, phoneNumber, lastCall, lastComplete, lastOriginateFailed}
    this.recent = []; // last events, newest first: {seq, type, time, text}
    this.snapshots = 0;
    this.resyncs = 0;
    this.counts = {}; // events seen per type
    this.lastEndedNoAgent = null;
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed(ev) {
    for (const fn of this.listeners) fn(ev);
  }

  queue(name) {
    let q = this.queues.get(name);
    if (!q) {
      q = {
        name,
        pbx: null,
        strategy: null,
        waiting: 0,
        joins: [],
        members: new Map(),
        completed: null,
        abandoned: null,
      };
      this.queues.set(name, q);
    }
    return q;
  }

  agent(ext) {
    let a = this.agents.get(ext);
    if (!a) {
      a = {
        extension: ext,
        name: null,
        extensionStatus: null,
        queues: new Map(),
        phoneNumber: null,
        lastCall: null,
        lastComplete: null,
        lastOriginateFailed: null,
      };
      this.agents.set(ext, a);
    }
    return a;
  }

  /** Oldest waiting caller's join time (RFC 3339) or null. */
  longestWaitSince(q) {
    return q.joins.length ? q.joins[0] : null;
  }

  /** The full state: `details` of a snapshot or resync event ({calls, queues, agents}). */
  loadSnapshot(d, time = null) {
    const keepRecent = this.recent;
    const keepCounts = this.counts;
    const snaps = this.snapshots;
    const resyncs = this.resyncs;
    this.reset();
    this.recent = keepRecent;
    this.counts = keepCounts;
    this.snapshots = snaps;
    this.resyncs = resyncs;
    if (!d) return;
    for (const c of listOf(d.calls, 'callId')) if (c.callId) this.calls.set(c.callId, { ...c });
    for (const qd of listOf(d.queues, 'name')) {
      if (!qd.name) continue;
      const q = this.queue(qd.name);
      q.pbx = qd.pbx ?? null;
      q.strategy = qd.strategy ?? null;
      q.completed = qd.completed ?? null;
      q.abandoned = qd.abandoned ?? null;
      q.waiting = qd.waiting ?? listOf(qd.callers).length;
      const callers = listOf(qd.callers);
      q.joins = callers
        .map((c) => c.joined)
        .filter(Boolean)
        .sort();
      if (!q.joins.length && q.waiting > 0 && qd.longestWaitSince) q.joins = [qd.longestWaitSince];
      // Callers without a join time waited at least since the snapshot was taken.
      while (q.joins.length < q.waiting) q.joins.push(q.joins[q.joins.length - 1] || time || new Date().toISOString());
      for (const m of listOf(qd.members, 'interface')) this.applyMember(m);
    }
    const agents = d.agents !== undefined ? d.agents : d.agent;
    for (const ad of listOf(agents, 'extension')) {
      if (!ad.extension) continue;
      const a = this.agent(ad.extension);
      a.extensionStatus = ad.extensionStatus || null;
      a.phoneNumber = ad.phoneNumber && ad.phoneNumber.number ? ad.phoneNumber : null;
      a.lastCall = ad.lastCall || null;
      for (const m of listOf(ad.queues, 'queue')) {
        this.applyMember({ ...m, agent: m.agent || ad.extension });
        if (m.queue && Number.isInteger(m.waiting)) {
          const q = this.queue(m.queue);
          if (!q.joins.length || q.waiting !== m.waiting) this.setWaiting(q, m.waiting, time || new Date().toISOString());
        }
      }
    }
  }

  applyMember(m) {
    if (!m || !m.queue) return;
    const q = this.queue(m.queue);
    const key = m.interface || m.agent;
    const ext = m.agent;
    if (m.loggedIn === false) {
      q.members.delete(key);
      if (ext && this.agents.has(ext)) this.agents.get(ext).queues.delete(m.queue);
      return;
    }
    q.members.set(key, { ...m });
    if (ext) {
      const a = this.agent(ext);
      a.queues.set(m.queue, { ...m });
      if (m.memberName) a.name = m.memberName;
    }
  }

  setWaiting(q, count, time) {
    const n = Math.max(0, count | 0);
    // Callers mostly leave in arrival order: a FIFO of join times gives the longest wait.
    while (q.joins.length < n) q.joins.push(time);
    while (q.joins.length > n) q.joins.shift();
    q.waiting = n;
  }

  /** Applies one event (or snapshot/resync) and tells the listeners. */
  apply(ev) {
    const d = ev.details || {};
    this.counts[ev.type] = (this.counts[ev.type] || 0) + 1;
    switch (ev.type) {
      case 'snapshot':
        // The REST preload (ev.preload) is shown until the stream's own snapshot arrives.
        if (!ev.preload) this.snapshots++;
        this.loadSnapshot(d, ev.time);
        break;
      case 'resync':
        this.resyncs++;
        this.loadSnapshot(d, ev.time);
        break;
      case 'queueMemberStatus':
        this.applyMember({ ...d, agent: d.agent || ev.agent });
        break;
      case 'queueCount': {
        const q = this.queue(d.queue);
        this.setWaiting(q, d.count, ev.time || new Date().toISOString());
        break;
      }
      case 'extensionStatus':
        if (ev.agent || d.extension) this.agent(ev.agent || d.extension).extensionStatus = d;
        break;
      case 'phoneNumber':
        if (ev.agent) this.agent(ev.agent).phoneNumber = d.number ? { ...d, since: ev.time } : null;
        break;
      case 'agentComplete':
        if (ev.agent) this.agent(ev.agent).lastComplete = { ...d, time: ev.time };
        break;
      case 'originateFailed':
        if (ev.agent) this.agent(ev.agent).lastOriginateFailed = { ...d, time: ev.time };
        break;
      case 'call.ended': {
        const prev = this.calls.get(d.callId);
        this.calls.delete(d.callId);
        const who = d.agent || (prev && prev.agent);
        if (who) this.agent(who).lastCall = { ...d };
        // A call with no agent (e.g. click-to-dial) on an agent's stream is still that agent's.
        if (!who) this.lastEndedNoAgent = { ...d };
        break;
      }
      default:
        if (ev.type.startsWith('call.') && d.callId) {
          const prev = this.calls.get(d.callId) || {};
          this.calls.set(d.callId, { ...prev, ...d, pbx: ev.pbx, updated: ev.time });
        }
    }
    if (ev.type !== 'snapshot' && ev.type !== 'resync') {
      this.recent.unshift({ seq: ev.seq ?? null, type: ev.type, time: ev.time, text: describe(ev) });
      if (this.recent.length > RECENT_MAX) this.recent.length = RECENT_MAX;
    }
    this.changed(ev);
  }
}

/** One line of words for the recent-events list. */
export function describe(ev) {
  const d = ev.details || {};
  switch (ev.type) {
    case 'queueMemberStatus':
      if (d.loggedIn === false) return `${d.memberName || ev.agent} left ${d.queue}`;
      return `${d.memberName || ev.agent} in ${d.queue}: ${statusWord(d.status)}${d.paused ? ' (paused' + (d.pausedReason ? ': ' + d.pausedReason : '') + ')' : ''}`;
    case 'queueCount':
      return `${d.queue}: ${d.count} waiting`;
    case 'extensionStatus':
      return `extension ${d.extension || ev.agent}: ${statusWord(d.status)}`;
    case 'phoneNumber':
      return d.number ? `${ev.agent} talking to ${d.number}` : `${ev.agent}: call left`;
    case 'agentComplete':
      return `${ev.agent} completed a ${d.queue} call (talk ${d.talkTime}s, hold ${d.holdTime}s)`;
    case 'originateFailed':
      return `dial failed: ${d.reason}`;
    case 'call.ended':
      return `call ${d.from || '?'} → ${d.to || '?'} ended (${d.disposition || '?'}, ${d.duration ?? '?'}s)`;
    default:
      if (ev.type.startsWith('call.')) return `call ${d.from || '?'} → ${d.to || '?'}: ${ev.type.slice(5)}`;
      return ev.type;
  }
}
