// stream.js: one event stream over a switchable transport — Server-Sent Events, WebSocket or
// long-poll (docs/streams.md) — with resume from the last sequence number, reconnects with
// backoff, de-duplication by `seq`, and a status the connection indicator shows.
//
// The server sends a `snapshot` first on every fresh connection and a `resync` when the client
// was away longer than the replay window; both carry the full state, so whatever happens the
// console's state is rebuilt without a gap. Events with a seq at or below the last one seen are
// dropped (exactly once, even if a transport replays an overlap).

export const TRANSPORTS = ['sse', 'ws', 'longpoll'];
export const TRANSPORT_NAMES = { sse: 'Server-Sent Events', ws: 'WebSocket', longpoll: 'Long-poll' };

// Every event name the server may put in an SSE `event:` line (EventSource only hands named
// events to listeners registered for that name).
const SSE_EVENT_NAMES = [
  'message', 'snapshot', 'resync', 'hello',
  'queueMemberStatus', 'queueCount', 'extensionStatus', 'phoneNumber', 'agentComplete',
  'originateFailed', 'call.started', 'call.ringing', 'call.answered', 'call.bridged',
  'call.transferred', 'call.ended',
];

const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
const LONGPOLL_TIMEOUT_S = 25;

/** Adds query parameters to a (possibly relative) URL. */
function withQuery(url, params) {
  const u = new URL(url, location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') u.searchParams.set(k, String(v));
  }
  return u;
}

/**
 * Pulls the three stream URLs and the stream token out of a subscription answer. Accepts
 * {token, urls: {sse, ws, longpoll}} and flat {sse, ws, longpoll} forms, relative or absolute.
 */
export function endpointsFrom(sub) {
  const urls = sub.urls || sub.streams || sub;
  const pick = (...names) => {
    for (const n of names) if (urls[n]) return urls[n];
    return null;
  };
  return {
    token: sub.token || sub.streamToken || sub.stream_token || null,
    sse: pick('sse', 'eventsource', 'events'),
    ws: pick('websocket', 'ws'),
    longpoll: pick('longpoll', 'longPoll', 'long_poll', 'poll'),
  };
}

export class EventStream {
  /**
   * opts.getEndpoints: async () => {token, sse, ws, longpoll} (a fresh subscription).
   * opts.onEvent(ev): every event, snapshot and resync, in order, once.
   * opts.onStatus(status): {state, transport, reconnects, lastSeq, error, events, duplicates}.
   */
  constructor({ transport = 'sse', getEndpoints, onEvent, onStatus }) {
    this.transport = TRANSPORTS.includes(transport) ? transport : 'sse';
    this.getEndpoints = getEndpoints;
    this.onEvent = onEvent;
    this.onStatus = onStatus || (() => {});
    this.endpoints = null;
    this.lastSeq = 0;
    this.positioned = false; // a snapshot or an event gave a position (0 is one: an empty stream)
    this.reconnects = 0;
    this.events = 0;
    this.duplicates = 0;
    this.gaps = 0;
    this.state = 'idle';
    this.error = null;
    this.conn = null; // {close()} of the live transport
    this.generation = 0; // bumps on every (re)connect; stale callbacks compare against it
    this.failures = 0; // connection attempts in a row that never opened
    this.wasOpen = false; // a connection was up before: the next open counts as a reconnect
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.timer);
    if (this.conn) this.conn.close();
    this.conn = null;
    this.setState('closed');
  }

  /** Switches the transport, resuming from the last sequence (not counted as a reconnect). */
  setTransport(t) {
    if (!TRANSPORTS.includes(t) || t === this.transport) return;
    this.transport = t;
    this.wasOpen = false;
    if (!this.stopped) {
      clearTimeout(this.timer);
      this.connect();
    }
  }

  /** Cuts the connection as a network failure would (the reconnect logic takes over). */
  drop() {
    if (this.conn) this.conn.close();
    this.conn = null;
    this.lost(new Error('connection dropped by the user'));
  }

  status() {
    return {
      state: this.state,
      transport: this.transport,
      reconnects: this.reconnects,
      lastSeq: this.lastSeq,
      events: this.events,
      duplicates: this.duplicates,
      gaps: this.gaps,
      error: this.error,
    };
  }

  setState(state, error = null) {
    this.state = state;
    this.error = error ? error.message || String(error) : null;
    this.onStatus(this.status());
  }

  async connect() {
    const gen = ++this.generation;
    if (this.conn) this.conn.close();
    this.conn = null;
    this.setState(this.wasOpen ? 'reconnecting' : 'connecting');
    try {
      // A fresh subscription when there is none yet or the last attempts never got through
      // (stream tokens are short-lived).
      if (!this.endpoints || this.failures > 0) this.endpoints = await this.getEndpoints();
    } catch (e) {
      if (gen !== this.generation) return;
      this.lost(e);
      return;
    }
    if (gen !== this.generation || this.stopped) return;
    const ep = this.endpoints;
    const handlers = {
      open: () => gen === this.generation && this.opened(),
      text: (text, id) => gen === this.generation && this.receive(text, id),
      lost: (err) => gen === this.generation && this.lost(err),
    };
    try {
      // The resume point: null asks for a snapshot; 0 is a real position (a stream that had no
      // event yet), so a long-poll on a quiet stream waits instead of fetching snapshots in a loop.
      const at = () => (this.positioned ? this.lastSeq : null);
      if (this.transport === 'sse') this.conn = openSse(ep, at(), handlers);
      else if (this.transport === 'ws') this.conn = openWs(ep, at(), handlers);
      else this.conn = openLongPoll(ep, at, handlers);
    } catch (e) {
      this.lost(e);
    }
  }

  opened() {
    if (this.state === 'live') return;
    if (this.wasOpen) this.reconnects++;
    this.wasOpen = true;
    this.failures = 0;
    this.setState('live');
  }

  lost(err) {
    if (this.stopped) return;
    const gen = ++this.generation;
    if (this.conn) this.conn.close();
    this.conn = null;
    if (this.state !== 'live') this.failures++;
    const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
    this.setState(this.wasOpen ? 'reconnecting' : 'offline', err);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (gen === this.generation && !this.stopped) this.connect();
    }, delay);
  }

  /** One transport message: an event object, an array of them, or {events: [...]}. */
  receive(text, sseId) {
    let msg;
    try {
      msg = typeof text === 'string' ? JSON.parse(text) : text;
    } catch {
      return;
    }
    if (msg === null || typeof msg !== 'object') return;
    const list = Array.isArray(msg) ? msg : Array.isArray(msg.events) ? msg.events : [msg];
    for (const ev of list) this.deliver(ev, list.length === 1 ? sseId : undefined);
    // A long-poll answer says where to continue ({"events":[...],"last":N}).
    if (!Array.isArray(msg) && Number.isInteger(msg.last) && Array.isArray(msg.events)) {
      if (msg.last > this.lastSeq) this.lastSeq = msg.last;
      this.positioned = true;
    }
  }

  deliver(ev, sseId) {
    if (!ev || typeof ev !== 'object' || !ev.type) return;
    if (this.state !== 'live') this.opened();
    let seq = Number.isInteger(ev.seq) ? ev.seq : sseId ? parseInt(sseId, 10) : NaN;
    if (ev.type === 'snapshot' || ev.type === 'resync') {
      // The state as of `seq` (or as of now): what follows continues from there.
      if (Number.isInteger(seq)) this.lastSeq = seq;
      else if (Number.isInteger(ev.lastSeq)) this.lastSeq = ev.lastSeq;
      this.positioned = Number.isInteger(seq) || Number.isInteger(ev.lastSeq);
      this.onEvent(ev);
      this.onStatus(this.status());
      return;
    }
    if (ev.type === 'close') return; // the server's reason for closing; the socket ends next
    if (Number.isInteger(seq)) {
      if (seq <= this.lastSeq) {
        this.duplicates++;
        return;
      }
      if (this.positioned && seq !== this.lastSeq + 1) this.gaps++; // the server lost events
      this.lastSeq = seq;
      this.positioned = true;
    }
    this.events++;
    this.onEvent(ev);
    this.onStatus(this.status());
  }
}

function openSse(ep, after, h) {
  if (!ep.sse) throw new Error('the server offered no SSE stream');
  const url = withQuery(ep.sse, { token: ep.token, after });
  const es = new EventSource(url);
  let closed = false;
  es.onopen = () => h.open();
  const onMsg = (e) => h.text(e.data, e.lastEventId);
  for (const name of SSE_EVENT_NAMES) es.addEventListener(name, onMsg);
  es.addEventListener('close', (e) => {
    // The server said why it closes (slow consumer, token expired...): reconnect from lastSeq.
    let reason = 'closed by the server';
    try {
      reason = JSON.parse(e.data).reason || reason;
    } catch {
      /* keep the default */
    }
    if (!closed) {
      closed = true;
      es.close();
      h.lost(new Error(reason));
    }
  });
  // We reconnect ourselves (fresh token, ?after=), so the browser's own retry is cut short.
  es.onerror = () => {
    if (closed) return;
    closed = true;
    es.close();
    h.lost(new Error('SSE connection lost'));
  };
  return {
    close() {
      closed = true;
      es.close();
    },
  };
}

function openWs(ep, after, h) {
  if (!ep.ws) throw new Error('the server offered no WebSocket stream');
  // The resume point goes in the first message ({"resume":SEQ}, or null for a snapshot), so
  // the server does not wait for it.
  const u = withQuery(ep.ws, { token: ep.token });
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  const ws = new WebSocket(u);
  let closed = false;
  ws.onopen = () => {
    ws.send(JSON.stringify({ resume: after }));
    h.open();
  };
  ws.onmessage = (e) => h.text(e.data);
  ws.onclose = (e) => {
    if (closed) return;
    closed = true;
    h.lost(new Error(`WebSocket closed (${e.code}${e.reason ? ' ' + e.reason : ''})`));
  };
  ws.onerror = () => {}; // onclose follows
  return {
    close() {
      closed = true;
      try {
        ws.close(1000, 'client');
      } catch {
        /* already closing */
      }
    },
  };
}

function openLongPoll(ep, lastSeq, h) {
  if (!ep.longpoll) throw new Error('the server offered no long-poll stream');
  const ctl = new AbortController();
  let closed = false;
  (async () => {
    // The first poll answers at once (timeout=0), so the indicator knows the stream is up; the
    // next ones wait for events.
    let first = true;
    while (!closed) {
      const url = withQuery(ep.longpoll, {
        token: ep.token,
        after: lastSeq(),
        timeout: first ? 0 : LONGPOLL_TIMEOUT_S,
      });
      first = false;
      let res;
      try {
        res = await fetch(url, {
          signal: ctl.signal,
          cache: 'no-store',
          headers: { Accept: 'application/json' },
        });
      } catch (e) {
        if (!closed) h.lost(new Error(`long-poll failed (${e.message})`));
        return;
      }
      if (closed) return;
      if (res.status === 204) {
        h.open();
        continue;
      }
      if (!res.ok) {
        h.lost(new Error(`long-poll answered ${res.status}`));
        return;
      }
      let text;
      try {
        text = await res.text();
      } catch (e) {
        if (!closed) h.lost(new Error(`long-poll read failed (${e.message})`));
        return;
      }
      if (closed) return;
      h.open();
      if (text) h.text(text);
    }
  })();
  return {
    close() {
      closed = true;
      ctl.abort();
    },
  };
}
