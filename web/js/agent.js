// agent.js: the agent view — extension status, queues with pause/unpause, the caller now on the
// line, click-to-dial, calls in progress, last completed call — drawn from ConsoleState.

import {
  el, setText, reconcile, fmtDuration, since, fmtClock, statusWord, statusTone, setBadge, party,
} from './dom.js';

const $ = (id) => document.getElementById(id);

export class AgentView {
  /** api: Api; ext: the agent's extension; state: ConsoleState. */
  constructor(api, ext, state) {
    this.api = api;
    this.ext = ext;
    this.state = state;
    this.pending = null; // {actionId, number, at} of the last click-to-dial
    this.onDial = (e) => this.dial(e);
    $('dial-form').addEventListener('submit', this.onDial);
    setText($('agent-ext'), ext);
    setText($('dial-status'), '');
    setText($('dial-error'), '');
    setText($('pause-error'), '');
  }

  destroy() {
    $('dial-form').removeEventListener('submit', this.onDial);
  }

  me() {
    return this.state.agent(this.ext);
  }

  async dial(e) {
    e.preventDefault();
    const input = $('dial-number');
    const number = input.value.trim();
    setText($('dial-error'), '');
    if (!/^[0-9+*#]+$/.test(number)) {
      setText($('dial-error'), 'Enter a phone number (digits, +, * or #).');
      input.focus();
      return;
    }
    const btn = $('dial-submit');
    btn.disabled = true;
    $('dial-status').dataset.actionId = '';
    setText($('dial-status'), `Calling your phone, then ${number}…`);
    try {
      const res = (await this.api.dial(this.ext, number)) || {};
      const actionId = res.actionId || res.action_id || res.id || null;
      this.pending = { actionId, number, at: Date.now() };
      setText($('dial-status'), `Dialling ${number}: pick up your phone.${actionId ? ` (action ${actionId})` : ''}`);
      $('dial-status').dataset.actionId = actionId || '';
    } catch (err) {
      setText($('dial-status'), '');
      setText($('dial-error'), `Could not dial ${number}: ${err.message}`);
    } finally {
      btn.disabled = false;
    }
  }

  async pause(queue, iface, reasonInput) {
    setText($('pause-error'), '');
    const reason = reasonInput.value.trim();
    try {
      await this.api.pause(queue, iface, reason);
    } catch (err) {
      setText($('pause-error'), `Could not pause in ${queue}: ${err.message}`);
    }
  }

  async unpause(queue, iface) {
    setText($('pause-error'), '');
    try {
      await this.api.unpause(queue, iface);
    } catch (err) {
      setText($('pause-error'), `Could not unpause in ${queue}: ${err.message}`);
    }
  }

  render(now = Date.now()) {
    const me = this.me();
    const st = this.state;
    setText($('agent-name'), me.name ? `· ${me.name}` : '');

    // Phone (extension hint)
    // The hint's state when the extension has one; else the device state its queue memberships
    // report (a Local/ member has no hint).
    const es = me.extensionStatus;
    const phone = es ? es.status : memberDeviceState(me);
    setBadge($('agent-ext-status'), statusWord(phone), statusTone(phone));
    setText(
      $('agent-hint'),
      es ? `${es.hint || ''}${es.context ? ' · ' + es.context : ''}` : phone ? 'From the queue membership (no hint for this extension).' : 'No hint known for this extension.',
    );

    // On the line
    const pn = me.phoneNumber;
    const line = $('agent-phone-number');
    setText(line, pn ? pn.number : 'No one');
    line.classList.toggle('active', !!pn);
    setText(
      $('agent-phone-detail'),
      pn ? [pn.name, pn.queue ? `queue ${pn.queue}` : null, pn.since ? `for ${fmtDuration(since(pn.since, now))}` : null].filter(Boolean).join(' · ') : '',
    );

    // Queues
    const queues = Array.from(me.queues.values()).sort((a, b) => a.queue.localeCompare(b.queue));
    const tbody = $('agent-queues').querySelector('tbody');
    reconcile(tbody, queues, (m) => m.queue, (m) => this.queueRow(m), (row, m) => this.updateQueueRow(row, m));
    $('agent-queues').hidden = queues.length === 0;
    $('agent-queues-empty').hidden = queues.length > 0;

    // Calls in progress (the agent stream only carries this agent's calls)
    const calls = Array.from(st.calls.values()).sort((a, b) => String(a.start).localeCompare(String(b.start)));
    reconcile(
      $('agent-calls'),
      calls,
      (c) => c.callId,
      () => el('li', { class: 'call' }, el('span', { class: 'who' }), el('span', { class: 'badge' }), el('span', { class: 'dur' })),
      (li, c) => {
        const [who, state, dur] = li.children;
        setText(who, `${party(c.from, c.fromName)} → ${c.to || '?'}`);
        setBadge(state, c.state || 'started', c.state === 'ringing' ? 'ring' : c.state === 'started' ? 'off' : 'busy');
        setText(dur, fmtDuration(since(c.answer || c.start, now)));
        li.dataset.state = c.state || '';
      },
    );
    $('agent-calls-empty').hidden = calls.length > 0;

    // Last completed call: call.ended taken by me (or without an agent, e.g. click-to-dial),
    // with app_queue's talk and hold time from agentComplete when it is the same call.
    let last = me.lastCall;
    const other = st.lastEndedNoAgent;
    if (other && (!last || String(other.end) > String(last.end))) last = other;
    const comp = me.lastComplete;
    const facts = [];
    if (last) {
      facts.push(['Caller', party(last.from, last.fromName)], ['Dialled', last.to || '–']);
      facts.push(['Direction', last.direction || '–'], ['Result', last.disposition || '–']);
      facts.push(['Duration', fmtDuration(last.duration)], ['Talked', fmtDuration(last.billableSeconds)]);
      if (last.queue) facts.push(['Queue', last.queue]);
      if (comp && comp.callId === last.callId) {
        facts.push(['Waited in queue', fmtDuration(comp.holdTime)], ['Talk time (queue)', fmtDuration(comp.talkTime)]);
        if (comp.reason) facts.push(['Hung up by', comp.reason]);
      }
      if (last.recording) facts.push(['Recording', last.recording]);
      facts.push(['Ended', fmtClock(last.end)]);
    } else if (comp) {
      facts.push(['Caller', comp.callerIdNum || '–'], ['Queue', comp.queue]);
      facts.push(['Waited in queue', fmtDuration(comp.holdTime)], ['Talk time', fmtDuration(comp.talkTime)]);
      facts.push(['Ended', fmtClock(comp.time)]);
    }
    const dl = $('agent-last');
    const sig = JSON.stringify(facts);
    if (dl.dataset.sig !== sig) {
      dl.replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
      dl.dataset.sig = sig;
      dl.dataset.callId = last ? last.callId : comp ? comp.callId : '';
    }
    $('agent-last-empty').hidden = facts.length > 0;

    // Click-to-dial failures arrive on the stream as originateFailed.
    const of = me.lastOriginateFailed;
    if (of && this.pending && of.time && Date.parse(of.time) >= this.pending.at - 5000 && !this.pending.failedShown) {
      if (!this.pending.actionId || !of.actionId || of.actionId === this.pending.actionId) {
        this.pending.failedShown = true;
        setText($('dial-status'), '');
        setText($('dial-error'), `The call to ${this.pending.number} did not go through: ${String(of.reason || 'unknown reason').replace(/^failed:\s*/, '')}.`);
      }
    }

    renderEvents($('agent-events'), st.recent);
  }

  queueRow(m) {
    const reasonId = `pause-reason-${m.queue}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const reason = el('input', {
      id: reasonId,
      type: 'text',
      class: 'reason',
      placeholder: 'Reason (optional)',
      'aria-label': `Pause reason for queue ${m.queue}`,
      list: 'pause-reasons',
      autocomplete: 'off',
    });
    const pauseBtn = el('button', { type: 'button', class: 'pause', 'aria-label': `Pause in queue ${m.queue}`, text: 'Pause' });
    const unpauseBtn = el('button', { type: 'button', class: 'unpause secondary', 'aria-label': `Unpause in queue ${m.queue}`, text: 'Unpause' });
    const row = el(
      'tr',
      { dataset: { queue: m.queue } },
      el('th', { scope: 'row', class: 'q-name' }),
      el('td', { class: 'q-waiting num' }),
      el('td', { class: 'q-status' }, el('span', { class: 'badge' }), el('span', { class: 'q-paused' })),
      el('td', { class: 'q-taken num' }),
      el('td', { class: 'q-actions' }, reason, pauseBtn, unpauseBtn),
    );
    pauseBtn.addEventListener('click', () => {
      const cur = this.me().queues.get(m.queue);
      this.pause(m.queue, (cur || m).interface, reason);
    });
    unpauseBtn.addEventListener('click', () => {
      const cur = this.me().queues.get(m.queue);
      this.unpause(m.queue, (cur || m).interface);
    });
    return row;
  }

  updateQueueRow(row, m) {
    const q = this.state.queues.get(m.queue);
    const waiting = q ? q.waiting : m.waiting ?? 0;
    setText(row.querySelector('.q-name'), m.queue);
    const w = row.querySelector('.q-waiting');
    setText(w, waiting);
    w.classList.toggle('hot', waiting > 0);
    setBadge(row.querySelector('.q-status .badge'), statusWord(m.status), statusTone(m.status));
    setText(row.querySelector('.q-paused'), m.paused ? `Paused${m.pausedReason ? ': ' + m.pausedReason : ''}` : '');
    row.querySelector('.q-paused').className = m.paused ? 'q-paused badge tone-paused' : 'q-paused';
    setText(row.querySelector('.q-taken'), m.callsTaken ?? '–');
    row.dataset.paused = m.paused ? 'true' : 'false';
    row.dataset.status = m.status || '';
    row.querySelector('button.pause').disabled = !!m.paused;
    row.querySelector('button.unpause').disabled = !m.paused;
  }
}

/** The busiest device state among an agent's queue memberships, or null. */
export function memberDeviceState(agent) {
  const rank = { ringing: 6, ringInUse: 6, inUse: 5, busy: 5, onHold: 4, notInUse: 3, unavailable: 2, invalid: 1, unknown: 0 };
  let best = null;
  for (const m of agent.queues.values()) {
    if (m.status && (best === null || (rank[m.status] ?? 0) > (rank[best] ?? 0))) best = m.status;
  }
  return best;
}

/** The recent-events list (newest first), shared by both views. */
export function renderEvents(ol, recent) {
  reconcile(
    ol,
    recent.slice(0, 15),
    (r) => `${r.seq}-${r.type}-${r.time}`,
    (r) =>
      el('li', { dataset: { type: r.type } }, el('time', { datetime: r.time || '', text: fmtClock(r.time) }), ' ', el('span', { class: 'etype', text: r.type }), ' ', el('span', { text: r.text })),
    () => {},
  );
}
