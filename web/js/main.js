// main.js: sign-in, view routing (#/agent, #/wallboard), the transport switch and the
// connection indicator. Wires Api, EventStream, ConsoleState and the two views together.
//
// The token lives in sessionStorage (gone when the tab closes); the chosen transport in
// localStorage. `?transport=sse|ws|longpoll` in the page URL overrides it (pbxis-style links).
// window.sbConsole exposes the live objects for debugging and the end-to-end tests.

import { Api, ApiError } from './api.js';
import { EventStream, endpointsFrom, TRANSPORTS, TRANSPORT_NAMES } from './stream.js';
import { ConsoleState } from './state.js';
import { AgentView } from './agent.js';
import { Wallboard } from './wallboard.js';
import { setText } from './dom.js';

const $ = (id) => document.getElementById(id);

const session = {
  get token() {
    return sessionStorage.getItem('sb.token');
  },
  get ext() {
    return sessionStorage.getItem('sb.ext');
  },
  get role() {
    return sessionStorage.getItem('sb.role');
  },
  save(token, ext, role) {
    sessionStorage.setItem('sb.token', token);
    if (ext) sessionStorage.setItem('sb.ext', ext);
    else sessionStorage.removeItem('sb.ext');
    if (role) sessionStorage.setItem('sb.role', role);
    else sessionStorage.removeItem('sb.role');
  },
  clear() {
    sessionStorage.removeItem('sb.token');
    sessionStorage.removeItem('sb.ext');
    sessionStorage.removeItem('sb.role');
  },
};

let current = null; // {view, stream, state, api, kind, timer, unsub}

function initialTransport() {
  const fromUrl = new URLSearchParams(location.search).get('transport');
  if (TRANSPORTS.includes(fromUrl)) return fromUrl;
  const saved = localStorage.getItem('sb.transport');
  return TRANSPORTS.includes(saved) ? saved : 'sse';
}

function showOnly(id) {
  for (const v of ['login-view', 'agent-view', 'wallboard-view']) $(v).hidden = v !== id;
  const signedIn = id !== 'login-view';
  $('nav').hidden = !signedIn;
  $('transport-box').hidden = !signedIn;
  $('conn').hidden = !signedIn;
  $('logout').hidden = !signedIn;
  // An agent-scoped token cannot open the wallboard: do not offer it.
  $('nav-wallboard').hidden = session.role === 'agent';
  $('nav-agent').hidden = !session.ext;
  for (const a of document.querySelectorAll('#nav a')) {
    const on = a.getAttribute('href') === `#/${id.replace('-view', '')}`;
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.body.dataset.view = id.replace('-view', '');
}

const STATE_WORDS = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline — retrying',
  closed: 'Disconnected',
};

function showStatus(s) {
  const box = $('conn');
  box.className = `conn state-${s.state}`;
  box.dataset.state = s.state;
  box.dataset.transport = s.transport;
  box.dataset.reconnects = String(s.reconnects);
  box.dataset.seq = String(s.lastSeq);
  box.dataset.events = String(s.events);
  setText($('conn-state'), `${STATE_WORDS[s.state] || s.state} · ${TRANSPORT_NAMES[s.transport]}`);
  setText($('conn-reconnects'), s.reconnects);
  setText($('conn-seq'), s.lastSeq);
  box.title = s.error ? `Last problem: ${s.error}` : '';
  // Figures on screen may be stale while the stream is down: say so, and grey them out.
  const down = s.state === 'reconnecting' || s.state === 'offline';
  document.body.dataset.conn = s.state;
  $('stale').hidden = !down || $('login-view').hidden === false;
}

function stopCurrent() {
  if (!current) return;
  current.stream.stop();
  clearInterval(current.timer);
  current.unsub();
  current.view.destroy();
  current = null;
}

/** Opens a view: preloads the state over REST, then follows the stream. */
async function openView(kind) {
  const token = session.token;
  if (!token) return showLogin();
  if (kind === 'agent' && !session.ext) kind = 'wallboard';
  if (kind === 'wallboard' && session.role === 'agent') kind = 'agent';
  if (current && current.kind === kind) return;
  stopCurrent();
  const api = new Api(token);
  const state = new ConsoleState();
  let view;
  let getEndpoints;
  if (kind === 'agent') {
    const ext = session.ext;
    view = new AgentView(api, ext, state);
    getEndpoints = async () => endpointsFrom(await api.subscribeAgent(ext));
    api
      .agent(ext)
      .then((a) => {
        if (a && !state.snapshots) state.apply({ type: 'snapshot', details: { agents: [a] }, preload: true });
      })
      .catch((e) => authFailed(e));
  } else {
    view = new Wallboard(state);
    getEndpoints = async () => endpointsFrom(await api.subscribeAll());
    Promise.all([api.queues(), api.calls().catch(() => [])])
      .then(([queues, calls]) => {
        if (!state.snapshots) state.apply({ type: 'snapshot', details: { queues: unwrap(queues, 'queues'), calls: unwrap(calls, 'calls') }, preload: true });
      })
      .catch((e) => authFailed(e));
  }
  showOnly(`${kind}-view`);
  let scheduled = false;
  const draw = () => {
    scheduled = false;
    view.render();
  };
  const unsub = state.subscribe(() => {
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(draw);
    }
  });
  const stream = new EventStream({
    transport: $('transport').value,
    // A revoked or expired API token ends the session instead of retrying for ever.
    getEndpoints: async () => {
      try {
        return await getEndpoints();
      } catch (e) {
        authFailed(e);
        throw e;
      }
    },
    onEvent: (ev) => state.apply(ev),
    onStatus: showStatus,
  });
  const timer = setInterval(() => view.render(), 1000); // durations and waits tick
  current = { kind, api, state, view, stream, timer, unsub };
  window.sbConsole = current;
  view.render();
  stream.start();
}

function unwrap(x, key) {
  if (x && !Array.isArray(x) && Array.isArray(x[key])) return x[key];
  return x;
}

function authFailed(e) {
  if (!(e instanceof ApiError)) return;
  if (e.status === 401) {
    session.clear();
    showLogin('The token is no longer valid: sign in again.');
  } else if (e.status === 403 && current && current.kind === 'wallboard' && session.ext) {
    // An agent token on the wallboard: back to the agent view, without the wallboard link.
    sessionStorage.setItem('sb.role', 'agent');
    location.hash = '#/agent';
  }
}

function showLogin(message = '') {
  stopCurrent();
  showOnly('login-view');
  setText($('login-error'), message);
  $('login-token').focus();
}

async function signIn(e) {
  e.preventDefault();
  const token = $('login-token').value.trim();
  let ext = $('login-ext').value.trim();
  let view = new FormData($('login-form')).get('view') || 'agent';
  setText($('login-error'), '');
  if (!token) {
    setText($('login-error'), 'Enter a token.');
    return;
  }
  const api = new Api(token);
  const btn = $('login-submit');
  btn.disabled = true;
  try {
    let role = null;
    const me = await api.me();
    if (me) {
      role = me.role || null;
      if (me.extension && (role === 'agent' || !ext)) ext = String(me.extension);
      if (role === 'agent') view = 'agent';
    }
    if (view === 'agent') {
      if (!ext) throw new ApiError(400, 'missing_extension', 'Enter your extension.');
      await api.agent(ext);
      // Without GET /v1/me: a token that may not list calls is an agent token (no wallboard).
      if (!role) role = await api.calls().then(() => null, (e) => (e.status === 403 ? 'agent' : null));
    } else {
      await api.calls(); // supervisor, admin or service only: an agent token gets 403 here
    }
    session.save(token, ext || null, role);
    $('login-token').value = '';
    location.hash = `#/${view}`;
    await openView(view);
  } catch (err) {
    const msg =
      err.status === 401
        ? 'That token was not accepted.'
        : err.status === 403
          ? `This token may not open that view (${err.message}).`
          : err.message;
    setText($('login-error'), msg);
  } finally {
    btn.disabled = false;
  }
}

function route() {
  if (!session.token) return showLogin();
  const kind = location.hash.startsWith('#/wallboard') ? 'wallboard' : location.hash.startsWith('#/agent') ? 'agent' : session.ext ? 'agent' : 'wallboard';
  openView(kind);
}

function init() {
  const sel = $('transport');
  sel.value = initialTransport();
  sel.addEventListener('change', () => {
    localStorage.setItem('sb.transport', sel.value);
    if (current) current.stream.setTransport(sel.value);
  });
  $('login-form').addEventListener('submit', signIn);
  for (const r of document.querySelectorAll('input[name=view]')) {
    r.addEventListener('change', () => {
      $('login-ext-field').hidden = new FormData($('login-form')).get('view') !== 'agent';
    });
  }
  $('logout').addEventListener('click', () => {
    session.clear();
    location.hash = '';
    showLogin();
  });
  $('conn-drop').addEventListener('click', () => current && current.stream.drop());
  $('wb-fullscreen').addEventListener('click', () => {
    const root = document.documentElement;
    if (root.requestFullscreen) root.requestFullscreen().catch(() => {});
  });
  window.addEventListener('hashchange', route);
  route();
}

init();
