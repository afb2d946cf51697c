// mock-server.mjs: a stand-in for the daemon's HTTP side (docs/api.md, docs/streams.md) for
// working on the console without a build: serves web/, the REST routes the console calls, and
// the three stream transports with seq numbers, replay and snapshots. It plays the events of
// tests/golden/07-queue-call-answered-agent-complete.jsonl (times moved to now) every few
// seconds. Not the product: the end-to-end test (run.mjs via tests/integration/e2e.sh) runs
// against the real daemon.
//
//   node tests/e2e/mock-server.mjs [--port N] [--every MS]     prints "listening http://..."
//   bearer tokens: "agent-EXT" (an agent token for EXT) and "sup" (a supervisor).

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const webRoot = path.join(root, 'web');
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const port = Number(arg('--port', 0));
const every = Number(arg('--every', 6000));

const golden = fs
  .readFileSync(path.join(root, 'tests/golden/07-queue-call-answered-agent-complete.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l));

// ---- model (just enough for snapshots) ----
const member = (queue, ext, name) => ({
  queue, interface: `Local/${ext}@agents/n`, memberName: name, agent: ext, status: 'notInUse', statusCode: 1,
  paused: false, pausedReason: null, penalty: 0, callsTaken: 0, inCall: false, loggedIn: true, membership: 'static', lastCall: 0,
});
const model = {
  queues: {
    sales: { name: 'sales', pbx: 'demo', strategy: 'ringall', waiting: 0, callers: [], members: [member('sales', '501', 'Agent Ann'), member('sales', '502', 'Agent Ben')] },
    support: { name: 'support', pbx: 'demo', strategy: 'ringall', waiting: 0, callers: [], members: [member('support', '503', 'Agent Cid')] },
  },
  calls: {},
  agents: {},
};
for (const q of Object.values(model.queues))
  for (const m of q.members)
    model.agents[m.agent] = { extension: m.agent, pbx: 'demo', extensionStatus: null, phoneNumber: null, calls: [], lastCall: null };

function agentJson(ext) {
  const a = model.agents[ext];
  if (!a) return null;
  const queues = [];
  for (const q of Object.values(model.queues))
    for (const m of q.members) if (m.agent === ext) queues.push({ ...m, waiting: q.waiting });
  return { ...a, queues };
}
function snapshot(ext) {
  const calls = Object.values(model.calls).filter((c) => !ext || c.agent === ext || (c._agents || []).includes(ext));
  return {
    calls: calls.map(({ _agents, ...c }) => c),
    queues: Object.values(model.queues),
    agents: ext ? [agentJson(ext)].filter(Boolean) : Object.keys(model.agents).map(agentJson),
  };
}
function applyModel(ev) {
  const d = ev.details;
  if (ev.type === 'queueMemberStatus') {
    const q = model.queues[d.queue];
    const i = q.members.findIndex((m) => m.interface === d.interface);
    if (i >= 0) q.members[i] = { ...d };
  } else if (ev.type === 'queueCount') model.queues[d.queue].waiting = d.count;
  else if (ev.type === 'phoneNumber') model.agents[ev.agent].phoneNumber = d.number ? d : null;
  else if (ev.type === 'call.ended') {
    delete model.calls[d.callId];
    if (d.agent && model.agents[d.agent]) model.agents[d.agent].lastCall = d;
  } else if (ev.type.startsWith('call.')) model.calls[d.callId] = { ...(model.calls[d.callId] || {}), ...d, _agents: ev._agents };
}

// ---- streams: '' = global, else an extension ----
const streams = new Map();
function stream(key) {
  let s = streams.get(key);
  if (!s) streams.set(key, (s = { seq: 0, log: [], clients: new Set(), polls: new Set() }));
  return s;
}
function targets(ev) {
  const keys = new Set(['']);
  for (const a of ev._agents || []) keys.add(a);
  if (ev.agent) keys.add(ev.agent);
  if (ev.type === 'queueCount')
    for (const m of model.queues[ev.details.queue].members) keys.add(m.agent);
  return keys;
}
function publish(ev) {
  applyModel(ev);
  const { _agents, _queue, ...clean } = ev;
  clean.id = crypto.randomUUID();
  for (const key of targets(ev)) {
    const s = stream(key);
    const text = JSON.stringify({ seq: ++s.seq, ...clean });
    s.log.push({ seq: s.seq, text });
    if (s.log.length > 1000) s.log.shift();
    for (const c of s.clients) c.send(s.seq, text);
    for (const p of s.polls) p.wake();
  }
}

let callNo = 0;
function playQueueCall() {
  const id = `${1795478000 + ++callNo}.${callNo * 10}`;
  const t0 = Date.now();
  const base = Date.parse(golden[0].time);
  golden.forEach((g, i) => {
    // The golden times are 10 ms per AMI packet; stretch them so a person sees each step.
    const at = (Date.parse(g.time) - base) * 2;
    setTimeout(() => {
      const ev = structuredClone(g);
      ev.time = new Date().toISOString();
      ev.pbx = 'demo';
      if (ev.details.callId) ev.details.callId = id;
      if (ev.type === 'queueMemberStatus') {
        // The PBX reports the member's real pause state, not the recording's.
        const cur = model.queues[ev.details.queue].members.find((m) => m.interface === ev.details.interface);
        if (cur) Object.assign(ev.details, { paused: cur.paused, pausedReason: cur.pausedReason });
      }
      for (const k of ['start', 'answer', 'end']) if (ev.details[k]) ev.details[k] = new Date(t0 + (Date.parse(ev.details[k]) - base) * 2).toISOString();
      publish(ev);
    }, at + i);
  });
}

function stateEvent(key, type) {
  return JSON.stringify({ seq: stream(key).seq, type, time: new Date().toISOString(), details: snapshot(key || null) });
}

// ---- tokens ----
const streamTokens = new Map(); // token -> key
function principal(req) {
  const h = req.headers.authorization || '';
  const t = h.startsWith('Bearer ') ? h.slice(7) : '';
  if (!t) return null;
  if (t.startsWith('agent-')) return { role: 'agent', extension: t.slice(6) };
  if (t === 'sup') return { role: 'supervisor', extension: '' };
  return null;
}

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(text);
}
const err = (res, status, code, message) => json(res, status, { error: { code, message } });

async function readBody(req) {
  let s = '';
  for await (const c of req) s += c;
  return s ? JSON.parse(s) : {};
}

function serveStatic(req, res, pathname) {
  let p = decodeURIComponent(pathname);
  if (p.endsWith('/')) p += 'index.html';
  const file = path.join(webRoot, path.normalize(p));
  if (!file.startsWith(webRoot)) return err(res, 404, 'not_found', 'no such file');
  fs.readFile(file, (e, data) => {
    if (e) return err(res, 404, 'not_found', 'no such file');
    const type = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' }[path.extname(file)] || 'application/octet-stream';
    res.writeHead(200, { 'Content-Type': `${type}; charset=utf-8`, 'Cache-Control': 'no-cache' });
    res.end(data);
  });
}

function streamKey(pathname) {
  const m = pathname.match(/^\/v1\/(?:agents\/([^/]+)\/)?stream(\/ws|\/poll)?$/);
  return m ? { key: m[1] ? decodeURIComponent(m[1]) : '', kind: m[2] ? m[2].slice(1) : 'sse' } : null;
}

function resumeFrom(s, after) {
  if (after === null) return null;
  if (after > s.seq) return 'gap';
  const first = s.log.length ? s.log[0].seq : s.seq + 1;
  if (after < first - 1) return 'gap';
  return s.log.filter((e) => e.seq > after);
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const sk = streamKey(p);
  if (sk) {
    const key = streamTokens.get(url.searchParams.get('token'));
    if (key === undefined) return err(res, 401, 'unauthorized', 'unknown stream token');
    if (key !== sk.key) return err(res, 403, 'forbidden', 'a token of another stream');
    const s = stream(key);
    const afterRaw = req.headers['last-event-id'] || url.searchParams.get('lastEventId') || url.searchParams.get('after');
    const after = afterRaw ? Number(afterRaw) : null;
    if (sk.kind === 'sse') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'close' });
      const client = { send: (seq, text) => res.write(`id: ${seq}\ndata: ${text}\n\n`) };
      const r = resumeFrom(s, after);
      if (r === null) client.send(s.seq, stateEvent(key, 'snapshot'));
      else if (r === 'gap') client.send(s.seq, stateEvent(key, 'resync'));
      else for (const e of r) client.send(e.seq, e.text);
      s.clients.add(client);
      req.on('close', () => s.clients.delete(client));
      return;
    }
    if (sk.kind === 'poll') {
      const collect = () => {
        const r = resumeFrom(s, after);
        if (r === null || r === 'gap') return { events: [JSON.parse(stateEvent(key, r === null ? 'snapshot' : 'resync'))], last: s.seq };
        return { events: r.map((e) => JSON.parse(e.text)), last: r.length ? r[r.length - 1].seq : after };
      };
      const first = collect();
      if (first.events.length) return json(res, 200, first);
      const timeout = Math.min(Number(url.searchParams.get('timeout') || 25), 60) * 1000;
      const poll = {
        wake: () => {
          s.polls.delete(poll);
          clearTimeout(poll.t);
          json(res, 200, collect());
        },
      };
      poll.t = setTimeout(() => {
        s.polls.delete(poll);
        json(res, 200, { events: [], last: after });
      }, timeout);
      s.polls.add(poll);
      req.on('close', () => {
        s.polls.delete(poll);
        clearTimeout(poll.t);
      });
      return;
    }
    return err(res, 426, 'upgrade_required', 'WebSocket only');
  }

  if (p.startsWith('/v1/')) {
    const who = principal(req);
    if (!who) return err(res, 401, 'unauthorized', 'a bearer token is required');
    const body = req.method === 'POST' ? await readBody(req).catch(() => null) : null;
    if (req.method === 'POST' && body === null) return err(res, 400, 'malformed_json', 'bad JSON');
    let m;
    if (req.method === 'GET' && p === '/v1/queues') return json(res, 200, { queues: Object.values(model.queues) });
    if (req.method === 'GET' && p === '/v1/calls') {
      if (who.role === 'agent') return err(res, 403, 'forbidden', 'not for agents');
      return json(res, 200, { calls: snapshot(null).calls });
    }
    if (req.method === 'GET' && (m = p.match(/^\/v1\/agents\/([^/]+)$/))) {
      const ext = decodeURIComponent(m[1]);
      if (who.role === 'agent' && who.extension !== ext) return err(res, 403, 'forbidden', 'not your extension');
      const a = agentJson(ext);
      return a ? json(res, 200, a) : err(res, 404, 'not_found', 'no such agent');
    }
    if (req.method === 'POST' && (m = p.match(/^\/v1\/agents\/([^/]+)\/subscriptions$/))) {
      const ext = decodeURIComponent(m[1]);
      if (who.role === 'agent' && who.extension !== ext) return err(res, 403, 'forbidden', 'not your extension');
      const token = crypto.randomBytes(16).toString('base64url');
      streamTokens.set(token, ext);
      const b = `/v1/agents/${ext}/stream`;
      return json(res, 201, { token, expiresIn: 300, extension: ext, queues: [], urls: { sse: `${b}?token=${token}`, websocket: `${b}/ws?token=${token}`, longPoll: `${b}/poll?token=${token}` } });
    }
    if (req.method === 'POST' && p === '/v1/subscriptions') {
      if (who.role === 'agent') return err(res, 403, 'forbidden', 'supervisors only');
      const token = crypto.randomBytes(16).toString('base64url');
      streamTokens.set(token, '');
      return json(res, 201, { token, expiresIn: 300, extension: null, queues: [], urls: { sse: `/v1/stream?token=${token}`, websocket: `/v1/stream/ws?token=${token}`, longPoll: `/v1/stream/poll?token=${token}` } });
    }
    if (req.method === 'POST' && (m = p.match(/^\/v1\/queues\/([^/]+)\/members\/([^/]+)\/(pause|unpause)$/))) {
      const q = model.queues[decodeURIComponent(m[1])];
      const iface = decodeURIComponent(m[2]);
      const mem = q && q.members.find((x) => x.interface === iface);
      if (!mem) return err(res, 404, 'not_found', 'no such member');
      const paused = m[3] === 'pause';
      setTimeout(() => publish({ type: 'queueMemberStatus', time: new Date().toISOString(), pbx: 'demo', agent: mem.agent, details: { ...mem, paused, pausedReason: paused ? body.reason || null : null }, _agents: [mem.agent] }), 50);
      return json(res, 200, { actionId: `mock-${Date.now()}`, message: paused ? 'Interface paused successfully' : 'Interface unpaused successfully' });
    }
    if (req.method === 'POST' && p === '/v1/calls') {
      const ext = body.agent || who.extension;
      const actionId = `mock-dial-${Date.now()}`;
      const id = `${Date.now() / 1000}`;
      const call = { callId: id, from: ext, fromName: 'Click2Dial', to: body.number, direction: 'outbound', start: new Date().toISOString(), answer: null, queue: null, agent: ext, recording: null };
      const step = (type, extra, ms) => setTimeout(() => publish({ type, time: new Date().toISOString(), pbx: 'demo', details: { ...call, ...extra }, _agents: [ext] }), ms);
      step('call.started', { state: 'started' }, 100);
      step('call.ringing', { state: 'ringing' }, 400);
      step('call.answered', { state: 'answered', answer: new Date(Date.now() + 800).toISOString() }, 800);
      step('call.ended', { end: new Date(Date.now() + 2500).toISOString(), duration: 2, billableSeconds: 1, disposition: 'ANSWERED' }, 2500);
      return json(res, 202, { actionId });
    }
    return err(res, 404, 'not_found', 'no such route');
  }
  if (req.method === 'GET' || req.method === 'HEAD') return serveStatic(req, res, p);
  err(res, 405, 'method_not_allowed', 'no');
});

// Minimal RFC 6455 server side: handshake, unmasked text frames out, masked frames in.
server.on('upgrade', (req, socket) => {
  const url = new URL(req.url, 'http://x');
  const sk = streamKey(url.pathname);
  const key = streamTokens.get(url.searchParams.get('token'));
  if (!sk || sk.kind !== 'ws' || key === undefined || key !== sk.key) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const frame = (text) => {
    const data = Buffer.from(text);
    const n = data.length;
    const head = n < 126 ? Buffer.from([0x81, n]) : n < 65536 ? Buffer.from([0x81, 126, n >> 8, n & 255]) : null;
    if (!head) return;
    socket.write(Buffer.concat([head, data]));
  };
  const s = stream(key);
  const client = { send: (seq, text) => frame(text) };
  let started = false;
  const begin = (after) => {
    if (started) return;
    started = true;
    const r = resumeFrom(s, after);
    if (r === null) frame(stateEvent(key, 'snapshot'));
    else if (r === 'gap') frame(stateEvent(key, 'resync'));
    else for (const e of r) frame(e.text);
    s.clients.add(client);
  };
  const wait = setTimeout(() => begin(null), 1000);
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 6) {
      const op = buf[0] & 15;
      let len = buf[1] & 127;
      let off = 2;
      if (len === 126) {
        len = buf.readUInt16BE(2);
        off = 4;
      }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
      buf = buf.subarray(off + 4 + len);
      if (op === 8) {
        socket.end(Buffer.from([0x88, 0]));
        return;
      }
      if (op === 1 && !started) {
        try {
          const msg = JSON.parse(payload.toString());
          if ('resume' in msg) {
            clearTimeout(wait);
            begin(Number.isInteger(msg.resume) ? msg.resume : null);
          }
        } catch {
          /* ignored */
        }
      }
    }
  });
  socket.on('close', () => {
    clearTimeout(wait);
    s.clients.delete(client);
  });
  socket.on('error', () => {});
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port}/`);
  playQueueCall();
  setInterval(playQueueCall, every);
});
