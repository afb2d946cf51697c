// wallboard.js: the supervisor view — queues with waiting callers and longest wait, agents and
// their states, calls in progress — drawn from ConsoleState, large enough for a wall screen.

import { el, setText, reconcile, fmtDuration, since, statusWord, statusTone, setBadge, party } from './dom.js';
import { renderEvents, memberDeviceState } from './agent.js';

const $ = (id) => document.getElementById(id);

const BUSY = new Set(['inUse', 'busy', 'ringInUse', 'onHold']);

export class Wallboard {
  constructor(state) {
    this.state = state;
  }

  destroy() {}

  render(now = Date.now()) {
    const st = this.state;
    const queues = Array.from(st.queues.values()).sort((a, b) => a.name.localeCompare(b.name));
    const agents = Array.from(st.agents.values()).sort((a, b) => a.extension.localeCompare(b.extension, undefined, { numeric: true }));
    const calls = Array.from(st.calls.values()).sort((a, b) => String(a.start).localeCompare(String(b.start)));

    // Totals
    let waiting = 0;
    let longest = null;
    for (const q of queues) {
      waiting += q.waiting;
      const s = since(st.longestWaitSince(q), now);
      if (s !== null && (longest === null || s > longest)) longest = s;
    }
    const available = agents.filter((a) => isAvailable(a)).length;
    setText($('t-waiting'), waiting);
    $('t-waiting').closest('.tile').classList.toggle('hot', waiting > 0);
    setText($('t-longest'), waiting > 0 ? fmtDuration(longest) : '–');
    setText($('t-calls'), calls.length);
    setText($('t-avail'), available);

    // Queues
    reconcile(
      $('wb-queues').querySelector('tbody'),
      queues,
      (q) => q.name,
      () =>
        el('tr', {},
          el('th', { scope: 'row', class: 'q-name' }),
          el('td', { class: 'q-waiting num' }),
          el('td', { class: 'q-longest num' }),
          el('td', { class: 'q-avail num' }),
          el('td', { class: 'q-busy num' }),
          el('td', { class: 'q-paused num' })),
      (tr, q) => {
        const members = Array.from(q.members.values());
        const paused = members.filter((m) => m.paused).length;
        const busy = members.filter((m) => !m.paused && (m.inCall || BUSY.has(m.status))).length;
        const avail = members.filter((m) => !m.paused && !m.inCall && m.status === 'notInUse').length;
        setText(tr.querySelector('.q-name'), q.name);
        const w = tr.querySelector('.q-waiting');
        setText(w, q.waiting);
        w.classList.toggle('hot', q.waiting > 0);
        setText(tr.querySelector('.q-longest'), q.waiting > 0 ? fmtDuration(since(st.longestWaitSince(q), now)) : '–');
        setText(tr.querySelector('.q-avail'), avail);
        setText(tr.querySelector('.q-busy'), busy);
        setText(tr.querySelector('.q-paused'), paused);
        tr.dataset.queue = q.name;
        tr.dataset.waiting = String(q.waiting);
      },
    );
    $('wb-queues-empty').hidden = queues.length > 0;

    // Agents
    reconcile(
      $('wb-agents').querySelector('tbody'),
      agents,
      (a) => a.extension,
      () =>
        el('tr', {},
          el('th', { scope: 'row', class: 'a-name' }),
          el('td', { class: 'a-phone' }, el('span', { class: 'badge' })),
          el('td', { class: 'a-queues' }),
          el('td', { class: 'a-line' })),
      (tr, a) => {
        setText(tr.querySelector('.a-name'), a.name ? `${a.extension} · ${a.name}` : a.extension);
        const status = agentStatus(a);
        setBadge(tr.querySelector('.a-phone .badge'), statusWord(status), statusTone(status));
        const qs = Array.from(a.queues.values()).sort((x, y) => x.queue.localeCompare(y.queue));
        const cell = tr.querySelector('.a-queues');
        const sig = JSON.stringify(qs.map((m) => [m.queue, m.status, m.paused, m.pausedReason]));
        if (cell.dataset.sig !== sig) {
          cell.replaceChildren(
            ...qs.map((m) =>
              el('span', { class: `chip ${m.paused ? 'tone-paused' : 'tone-' + statusTone(m.status)}` },
                m.paused ? `${m.queue}: paused${m.pausedReason ? ' (' + m.pausedReason + ')' : ''}` : `${m.queue}: ${statusWord(m.status)}`)),
          );
          cell.dataset.sig = sig;
        }
        setText(tr.querySelector('.a-line'), a.phoneNumber ? party(a.phoneNumber.number, a.phoneNumber.name) : '–');
        tr.dataset.agent = a.extension;
        tr.dataset.status = status || '';
      },
    );
    $('wb-agents-empty').hidden = agents.length > 0;

    // Calls in progress
    reconcile(
      $('wb-calls').querySelector('tbody'),
      calls,
      (c) => c.callId,
      () =>
        el('tr', {},
          el('td', { class: 'c-from' }),
          el('td', { class: 'c-to' }),
          el('td', { class: 'c-dir' }),
          el('td', { class: 'c-state' }, el('span', { class: 'badge' })),
          el('td', { class: 'c-queue' }),
          el('td', { class: 'c-agent' }),
          el('td', { class: 'c-dur num' })),
      (tr, c) => {
        setText(tr.querySelector('.c-from'), party(c.from, c.fromName));
        setText(tr.querySelector('.c-to'), c.to || '–');
        setText(tr.querySelector('.c-dir'), c.direction || '–');
        setBadge(tr.querySelector('.c-state .badge'), c.state || 'started', c.state === 'ringing' ? 'ring' : c.state === 'started' ? 'off' : 'busy');
        setText(tr.querySelector('.c-queue'), c.queue || '–');
        setText(tr.querySelector('.c-agent'), c.agent || c.ringingAgent || '–');
        setText(tr.querySelector('.c-dur'), fmtDuration(since(c.start, now)));
        tr.dataset.callId = c.callId;
        tr.dataset.state = c.state || '';
      },
    );
    $('wb-calls').hidden = calls.length === 0;
    $('wb-calls-empty').hidden = calls.length > 0;

    renderEvents($('wb-events'), st.recent);
  }
}

/** The agent's phone state: the hint when known, else the busiest of its queue member states. */
function agentStatus(a) {
  if (a.extensionStatus && a.extensionStatus.status) return a.extensionStatus.status;
  return memberDeviceState(a);
}

function isAvailable(a) {
  const qs = Array.from(a.queues.values());
  if (!qs.length) return agentStatus(a) === 'idle';
  return qs.some((m) => !m.paused && !m.inCall && m.status === 'notInUse');
}
