// run.mjs: end-to-end test of the web console (issue 3 §4) in Debian's headless Chromium,
// driven by playwright-core, against a running daemon (tests/integration/e2e.sh starts it with
// --demo, so the simulator plays a call every few seconds, queue calls first).
//
// Steps (each bounded in time; a failed check is reported and the run goes on where it can):
//   1. sign in with an agent token; the agent view is live over SSE
//   2. a simulated queue call: the queue shows a waiting caller (the agent's phone rings), the
//      caller's number shows as patched through, then the call completes: "On the line" empties
//      and "Last completed call" shows it
//   3. pause with a reason and unpause, seen back from the stream
//   4. click-to-dial: POST /v1/calls answers with an action id; the outcome (call events or an
//      originateFailed) shows in the view
//   5. transports: WebSocket, then long-poll, then SSE again; events keep arriving on each, the
//      sequence numbers have no gap and no duplicate
//   6. "Test reconnect" cuts the stream: the indicator counts one reconnect and events resume
//   0. (first) the wallboard with a supervisor token shows a live call within seconds of the
//      daemon's start; later: queues, agents, a waiting caller with the longest wait, WebSocket
//   8. (when e2e.sh gives SB_DAEMON_PID and friends) the daemon restarts on the same port: the
//      agent view shows the outage, asks for a new stream token, gets a resync or snapshot (the
//      new daemon's numbering starts again) and pause/unpause events arrive again
// Screenshots of each view go to SB_ARTIFACTS.
//
// Env: SB_URL (http://127.0.0.1:PORT/), SB_AGENT_TOKEN, SB_AGENT_EXT, SB_SUP_TOKEN,
//      SB_ARTIFACTS (directory), SB_CHROMIUM (default /usr/bin/chromium), SB_DIAL (number),
//      SB_DAEMON_START_MS (when the daemon was started: the time to the first live call).
// Exit status: 0 all checks passed, 1 a check failed, 2 setup failed.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (k, d) => process.env[k] || d;
const BASE = env('SB_URL');
const AGENT_TOKEN = env('SB_AGENT_TOKEN');
const EXT = env('SB_AGENT_EXT', '502');
const SUP_TOKEN = env('SB_SUP_TOKEN');
const ART = env('SB_ARTIFACTS', path.join(os.tmpdir(), 'sb-e2e-artifacts'));
const CHROMIUM = env('SB_CHROMIUM', '/usr/bin/chromium');
const DIAL = env('SB_DIAL', '34600555000');
const QUEUE = env('SB_QUEUE', 'sales');
const DAEMON_START = Number(env('SB_DAEMON_START_MS', '0')); // ms since the epoch, from e2e.sh
// Restart step (optional): the daemon's pid, the program, a config with the same port and store,
// where to write the new daemon's pid and log.
const RESTART = {
  pid: Number(env('SB_DAEMON_PID', '0')),
  bin: env('SB_SWITCHBOARD'),
  conf: env('SB_RESTART_CONF'),
  pidfile: env('SB_RESTART_PIDFILE'),
  log: env('SB_RESTART_LOG'),
};

if (!BASE || !AGENT_TOKEN || !SUP_TOKEN) {
  console.error('run.mjs: SB_URL, SB_AGENT_TOKEN and SB_SUP_TOKEN are required');
  process.exit(2);
}
fs.mkdirSync(ART, { recursive: true });

let checks = 0;
let failures = 0;
const t0 = Date.now();
const stamp = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
function ok(what) {
  checks++;
  console.log(`ok ${checks} - ${what} (${stamp()})`);
}
function notOk(what, why) {
  checks++;
  failures++;
  console.log(`not ok ${checks} - ${what} (${stamp()})\n    ${String(why).split('\n').join('\n    ')}`);
}
/** Runs fn; a throw is a failed check named `what`. Returns fn's value or undefined. */
async function check(what, fn) {
  try {
    const v = await fn();
    ok(what);
    return v;
  } catch (e) {
    notOk(what, e && e.message ? e.message : e);
    return undefined;
  }
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-e2e-chromium-'));
let ctx;
try {
  ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1400, height: 1000 },
    timeout: 30000,
  });
} catch (e) {
  console.error(`run.mjs: cannot start ${CHROMIUM}: ${e.message}`);
  fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(2);
}

const pageErrors = [];
function watch(page, name) {
  page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    // The browser's own network messages (a refused connection while the daemon restarts, a
    // 401 on purpose) are not script errors.
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection to .* failed/.test(m.text())) pageErrors.push(`${name}: console: ${m.text()}`);
  });
}
const shot = async (page, name) => {
  const file = path.join(ART, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot ${file}`);
};

/** The connection indicator's data: state, transport, reconnects, seq, events. */
const conn = (page) =>
  page.evaluate(() => {
    const d = document.getElementById('conn').dataset;
    const s = window.sbConsole ? window.sbConsole.stream.status() : {};
    return { state: d.state, transport: d.transport, reconnects: +d.reconnects, seq: +d.seq, events: +d.events, gaps: s.gaps || 0, duplicates: s.duplicates || 0 };
  });

/** Waits until the stream has delivered more events than `before` on the current transport. */
async function eventsArrive(page, before, timeout = 20000) {
  await page.waitForFunction((n) => +document.getElementById('conn').dataset.events > n, before, { timeout });
}

try {
  // ---- 0. the wallboard first: live calls within seconds of the daemon's start -----------------
  const wall = await ctx.newPage();
  watch(wall, 'wallboard');
  await check('sign in with a supervisor token: the wallboard', async () => {
    await wall.goto(BASE, { waitUntil: 'load', timeout: 15000 });
    await wall.fill('#login-token', SUP_TOKEN);
    await wall.check('input[name=view][value=wallboard]');
    await wall.click('#login-submit');
    await wall.waitForSelector('#wallboard-view', { state: 'visible', timeout: 10000 });
    await wall.waitForFunction(() => document.getElementById('conn').dataset.state === 'live', null, { timeout: 10000 });
  });
  await check('serve --demo: a live call shows on the wallboard within seconds of the start', async () => {
    await wall.waitForSelector('#wb-calls tbody tr', { timeout: 20000 });
    if (DAEMON_START) {
      const s = (Date.now() - DAEMON_START) / 1000;
      console.log(`# first live call on the wallboard ${s.toFixed(1)} s after the daemon was started`);
      if (s > 30) throw new Error(`${s.toFixed(1)} s (browser start included; bound 30 s for loaded machines)`);
    }
    await shot(wall, '00-wallboard-first-call');
  });

  // ---- 1. sign in as an agent ----------------------------------------------------------------
  const agent = await ctx.newPage();
  watch(agent, 'agent');
  await check('console page loads (index.html, CSS, modules)', async () => {
    const res = await agent.goto(BASE, { waitUntil: 'load', timeout: 15000 });
    if (!res || !res.ok()) throw new Error(`GET / answered ${res && res.status()}`);
    await agent.waitForSelector('#login-form', { state: 'visible', timeout: 5000 });
    const title = await agent.title();
    if (!/Switchboard/.test(title)) throw new Error(`title "${title}"`);
  });
  await shot(agent, '01-login');

  await check('a wrong token is refused with a message', async () => {
    await agent.fill('#login-token', 'not-a-token');
    await agent.fill('#login-ext', EXT);
    await agent.click('#login-submit');
    await agent.waitForFunction(() => document.getElementById('login-error').textContent.length > 0, null, { timeout: 5000 });
    if (!(await agent.isVisible('#login-form'))) throw new Error('the form went away');
  });

  await check(`sign in with an agent token for ${EXT}`, async () => {
    await agent.fill('#login-token', AGENT_TOKEN);
    await agent.fill('#login-ext', EXT);
    await agent.click('#login-submit');
    await agent.waitForSelector('#agent-view', { state: 'visible', timeout: 10000 });
    const shown = await agent.textContent('#agent-ext');
    if (shown.trim() !== EXT) throw new Error(`agent view shows extension "${shown}"`);
    if (await agent.isVisible('#nav-wallboard')) throw new Error('an agent token is offered the wallboard');
  });

  await check('the agent stream is live over Server-Sent Events with a snapshot', async () => {
    await agent.waitForFunction(() => document.getElementById('conn').dataset.state === 'live', null, { timeout: 10000 });
    const c = await conn(agent);
    if (c.transport !== 'sse') throw new Error(`transport ${c.transport}`);
    const snaps = await agent.evaluate(() => window.sbConsole.state.snapshots);
    if (snaps < 1) throw new Error('no snapshot event received');
  });

  await check(`the agent is shown as a member of queue ${QUEUE}`, async () => {
    await agent.waitForSelector(`#agent-queues tr[data-queue="${QUEUE}"]`, { timeout: 10000 });
  });

  // ---- 2. a queue call rings, is answered, completes ---------------------------------------
  // The demo plays its queue calls first in each round of scenarios (about 12 s of queue calls
  // every ~50 s), so the waits below allow a full round.
  await agent.evaluate(() => {
    window.__events = [];
    window.sbConsole.state.subscribe((ev) => {
      const d = ev.details || {};
      window.__events.push({ type: ev.type, seq: ev.seq, callId: d.callId || null, number: d.number, queue: d.queue, count: d.count });
    });
  });
  const waitingCell = `#agent-queues tr[data-queue="${QUEUE}"] .q-waiting`;
  await check(`a queue call rings: ${QUEUE} shows a waiting caller (queueCount)`, async () => {
    await agent.waitForFunction(
      ([sel, q]) => +(document.querySelector(sel) || {}).textContent > 0 && window.__events.some((e) => e.type === 'queueCount' && e.queue === q && e.count > 0),
      [waitingCell, QUEUE],
      { timeout: 70000 },
    );
    await shot(agent, '02-agent-queue-ringing');
  });
  let callId = null;
  await check('the caller is patched through: "On the line" shows the number (phoneNumber)', async () => {
    // The number is the caller id: digits for the fixture's customer, "sipp" for the trunk call.
    await agent.waitForFunction(() => document.getElementById('agent-phone-number').classList.contains('active'), null, { timeout: 20000 });
    callId = await agent.evaluate((ext) => {
      const pn = window.sbConsole.state.agent(ext).phoneNumber;
      return pn ? pn.callId : null;
    }, EXT);
    if (!callId) throw new Error('no callId on the phoneNumber event');
    await shot(agent, '03-agent-on-call');
  });
  await check('the call completes: "On the line" empties and "Last completed call" shows that call', async () => {
    if (!callId) throw new Error('no call to follow');
    await agent.waitForFunction(
      (id) => {
        // agentComplete may fill the panel a moment before call.ended completes it.
        const last = document.getElementById('agent-last');
        return document.getElementById('agent-phone-number').textContent === 'No one' && last.dataset.callId === id && /ANSWERED/.test(last.textContent);
      },
      callId,
      { timeout: 20000 },
    );
    const facts = await agent.textContent('#agent-last');
    if (!/Caller/.test(facts) || !/ANSWERED/.test(facts)) throw new Error(`last call panel: "${facts}"`);
    const evs = await agent.evaluate(() => window.__events);
    const mine = evs.filter((e) => e.callId === callId).map((e) => e.type);
    for (const t of ['phoneNumber', 'call.ended'])
      if (!mine.includes(t)) throw new Error(`no ${t} for call ${callId} (saw ${mine.join(', ')})`);
    if (!mine.includes('agentComplete')) throw new Error(`no agentComplete for call ${callId} (saw ${mine.join(', ')})`);
    if (!/Talk time/.test(facts)) throw new Error('the talk time of agentComplete is not shown');
  });
  await shot(agent, '04-agent-call-completed');

  // ---- 3. pause and unpause ---------------------------------------------------------------
  const row = `#agent-queues tr[data-queue="${QUEUE}"]`;
  await check(`pause in ${QUEUE} with a reason`, async () => {
    const already = await agent.getAttribute(row, 'data-paused');
    if (already === 'true') {
      await agent.click(`${row} button.unpause`);
      await agent.waitForSelector(`${row}[data-paused="false"]`, { timeout: 10000 });
    }
    await agent.fill(`${row} input.reason`, 'Lunch');
    await agent.click(`${row} button.pause`);
    await agent.waitForSelector(`${row}[data-paused="true"]`, { timeout: 10000 });
    const txt = await agent.textContent(`${row} .q-paused`);
    if (!/Lunch/.test(txt)) throw new Error(`paused text "${txt}" has no reason`);
    const err = await agent.textContent('#pause-error');
    if (err) throw new Error(err);
  });
  await shot(agent, '05-agent-paused');
  await check(`unpause in ${QUEUE}`, async () => {
    await agent.click(`${row} button.unpause`);
    await agent.waitForSelector(`${row}[data-paused="false"]`, { timeout: 10000 });
    const err = await agent.textContent('#pause-error');
    if (err) throw new Error(err);
  });

  // ---- 4. click-to-dial -------------------------------------------------------------------
  await check(`click-to-dial ${DIAL}: the API answers with an action id`, async () => {
    await agent.evaluate(() => {
      window.__dialSeq = window.sbConsole.stream.lastSeq;
    });
    await agent.fill('#dial-number', DIAL);
    await agent.click('#dial-submit');
    // The answer sets data-action-id; an originateFailed may already have replaced the words.
    await agent.waitForFunction(
      () => document.getElementById('dial-status').dataset.actionId || /Could not dial/.test(document.getElementById('dial-error').textContent),
      null,
      { timeout: 15000 },
    );
    const err = await agent.textContent('#dial-error');
    if (/Could not dial/.test(err)) throw new Error(err);
    const id = await agent.getAttribute('#dial-status', 'data-action-id');
    if (!id) throw new Error('no action id in the answer');
  });
  await check('click-to-dial: the outcome arrives on the stream (a call or originateFailed)', async () => {
    await agent.waitForFunction(
      () => {
        const counts = window.sbConsole.state.counts;
        return counts.originateFailed > 0 || window.__events.some((e) => e.type.startsWith('call.') && e.callId && e.seq > window.__dialSeq) || /failed/.test(document.getElementById('dial-error').textContent);
      },
      null,
      { timeout: 20000 },
    );
  });
  await shot(agent, '06-agent-click-to-dial');

  // ---- 5. transports ----------------------------------------------------------------------
  // Pausing and unpausing makes events on the agent's stream at once (queueMemberStatus), so
  // each transport is checked with events that must arrive, whatever the demo plays.
  const pauseRoundTrip = async (reason) => {
    const before = await conn(agent);
    await agent.fill(`${row} input.reason`, reason);
    await agent.click(`${row} button.pause`);
    await agent.waitForFunction(
      ([sel, r]) => {
        const tr = document.querySelector(sel);
        return tr && tr.dataset.paused === 'true' && tr.querySelector('.q-paused').textContent.includes(r);
      },
      [row, reason],
      { timeout: 10000 },
    );
    await agent.click(`${row} button.unpause`);
    await agent.waitForSelector(`${row}[data-paused="false"]`, { timeout: 10000 });
    const after = await conn(agent);
    if (after.events < before.events + 2) throw new Error(`only ${after.events - before.events} event(s) arrived`);
    if (after.seq <= before.seq) throw new Error(`seq did not advance (${before.seq} -> ${after.seq})`);
    return { before, after };
  };
  for (const t of ['ws', 'longpoll', 'sse']) {
    await check(`switch to ${t}: live, and events still arrive`, async () => {
      const before = await conn(agent);
      await agent.selectOption('#transport', t);
      await agent.waitForFunction((want) => {
        const d = document.getElementById('conn').dataset;
        return d.transport === want && d.state === 'live';
      }, t, { timeout: 10000 });
      await pauseRoundTrip(`via ${t}`);
      const after = await conn(agent);
      if (after.reconnects !== before.reconnects) throw new Error('a transport switch counted as a reconnect');
    });
  }
  await shot(agent, '07-agent-transports');

  // ---- 6. reconnect -----------------------------------------------------------------------
  await check('a cut connection reconnects, the indicator counts it, events resume', async () => {
    const before = await conn(agent);
    await agent.click('#conn-drop');
    await agent.waitForFunction((n) => +document.getElementById('conn').dataset.reconnects === n + 1 && document.getElementById('conn').dataset.state === 'live', before.reconnects, { timeout: 15000 });
    await pauseRoundTrip('after reconnect');
    const text = await agent.textContent('#conn');
    if (!/reconnects\s*1/.test(text.replace(/\s+/g, ' '))) throw new Error(`indicator text: "${text.trim()}"`);
  });
  await check('no sequence gap and no duplicate over every switch and reconnect', async () => {
    const c = await conn(agent);
    if (c.gaps) throw new Error(`${c.gaps} gap(s) in the sequence numbers`);
    if (c.duplicates) throw new Error(`${c.duplicates} duplicate event(s) dropped`);
  });
  await shot(agent, '08-agent-reconnected');

  // ---- 7. wallboard -----------------------------------------------------------------------
  await check('the wallboard lists the queues and the agents', async () => {
    await wall.waitForSelector(`#wb-queues tr[data-queue="${QUEUE}"]`, { timeout: 10000 });
    await wall.waitForSelector(`#wb-agents tr[data-agent="${EXT}"]`, { timeout: 10000 });
  });
  await check('the wallboard shows a call in progress, live', async () => {
    await wall.waitForSelector('#wb-calls tbody tr', { timeout: 60000 });
    await shot(wall, '09-wallboard-call');
  });
  await check('the wallboard shows a waiting caller and the longest wait', async () => {
    // Read together: a caller may wait only a second, so the two are checked in one go.
    const seen = await wall.waitForFunction(
      () => {
        const w = +document.getElementById('t-waiting').textContent;
        const l = document.getElementById('t-longest').textContent;
        return w > 0 ? { w, l } : null;
      },
      null,
      { timeout: 70000 },
    );
    const { l } = await seen.jsonValue();
    if (!/^\d+:\d\d$/.test(l)) throw new Error(`longest wait shows "${l}" while a caller waits`);
    await shot(wall, '10-wallboard-waiting');
  });
  await check("the wallboard shows an agent's pause and unpause live", async () => {
    const cell = `#wb-agents tr[data-agent="${EXT}"] .a-queues`;
    await agent.fill(`${row} input.reason`, 'Coffee');
    await agent.click(`${row} button.pause`);
    await wall.waitForFunction((sel) => (document.querySelector(sel) || {}).textContent?.includes('paused (Coffee)'), cell, { timeout: 10000 });
    await agent.waitForSelector(`${row}[data-paused="true"]`, { timeout: 10000 });
    await agent.click(`${row} button.unpause`);
    await wall.waitForFunction((sel) => !(document.querySelector(sel) || {}).textContent?.includes('paused'), cell, { timeout: 10000 });
  });
  await check('the wallboard shows an agent on a call, live', async () => {
    await wall.waitForFunction(
      (ext) => {
        const tr = document.querySelector(`#wb-agents tr[data-agent="${ext}"]`);
        return tr && tr.dataset.status === 'inUse' && tr.querySelector('.a-line').textContent !== '–';
      },
      EXT,
      { timeout: 70000 },
    );
    await shot(wall, '10b-wallboard-agent-on-call');
  });
  await check('the wallboard follows the stream over WebSocket too', async () => {
    await wall.selectOption('#transport', 'ws');
    await wall.waitForFunction(() => document.getElementById('conn').dataset.transport === 'ws' && document.getElementById('conn').dataset.state === 'live', null, { timeout: 10000 });
    const before = await conn(wall);
    await eventsArrive(wall, before.events, 25000);
  });
  await shot(wall, '11-wallboard-websocket');

  // ---- 8. the daemon restarts ----------------------------------------------------------------
  if (RESTART.pid && RESTART.bin && RESTART.conf && RESTART.pidfile) {
    // Running, not a zombie (the daemon is e2e.sh's child: it stays a zombie until reaped).
    const alive = (pid) => {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
      } catch {
        return false;
      }
    };
    await check('daemon restart: the agent view shows the outage, then resumes with fresh state', async () => {
      const before = await conn(agent);
      const fresh = await agent.evaluate(() => window.sbConsole.state.snapshots + window.sbConsole.state.resyncs);
      process.kill(RESTART.pid, 'SIGTERM');
      for (let i = 0; i < 100 && alive(RESTART.pid); i++) await new Promise((r) => setTimeout(r, 100));
      if (alive(RESTART.pid)) throw new Error('the daemon did not stop on SIGTERM');
      await agent.waitForFunction(() => document.getElementById('conn').dataset.state !== 'live', null, { timeout: 10000 });
      const outage = await agent.textContent('#conn-state');
      if (!(await agent.isVisible('#stale'))) throw new Error('no "connection lost" notice during the outage');
      await shot(agent, '12-agent-daemon-down');
      const out = fs.openSync(RESTART.log, 'a');
      const child = spawn(RESTART.bin, ['serve', '-c', RESTART.conf, '--demo', '--log-level', 'info'], { stdio: ['ignore', out, out], detached: true });
      fs.writeFileSync(RESTART.pidfile, String(child.pid));
      child.unref();
      await agent.waitForFunction(
        (n) => document.getElementById('conn').dataset.state === 'live' && +document.getElementById('conn').dataset.reconnects > n,
        before.reconnects,
        { timeout: 30000 },
      );
      const after = await agent.evaluate(() => window.sbConsole.state.snapshots + window.sbConsole.state.resyncs);
      if (after <= fresh) throw new Error('no snapshot or resync after the restart');
      if (await agent.isVisible('#stale')) throw new Error('the "connection lost" notice stayed after the reconnect');
      if (!/Reconnecting|Offline/.test(outage)) throw new Error(`the indicator said "${outage}" during the outage`);
      await agent.waitForSelector(`${row}`, { timeout: 10000 });
      await pauseRoundTrip('after restart');
      await shot(agent, '13-agent-after-restart');
    });
  }

  await check('long-poll on a quiet stream holds the poll (no request loop)', async () => {
    // A supervisor may open any agent's view; 1003 is a phone the demo leaves alone.
    const quiet = await ctx.newPage();
    watch(quiet, 'quiet');
    let polls = 0;
    quiet.on('request', (r) => {
      if (r.url().includes('/stream/poll')) polls++;
    });
    await quiet.goto(new URL('?transport=longpoll', BASE).href, { waitUntil: 'load', timeout: 15000 });
    await quiet.fill('#login-token', SUP_TOKEN);
    await quiet.fill('#login-ext', '1003');
    await quiet.click('#login-submit');
    await quiet.waitForFunction(() => document.getElementById('conn').dataset.state === 'live', null, { timeout: 10000 });
    await quiet.waitForTimeout(3000);
    const c = await conn(quiet);
    await quiet.close();
    if (c.transport !== 'longpoll') throw new Error(`?transport=longpoll gave ${c.transport}`);
    if (polls > 3 + c.events) throw new Error(`${polls} polls in 3 s for ${c.events} events`);
  });

  await check('every control of both views has an accessible name', async () => {
    const unnamed = [];
    for (const [name, page] of [['agent', agent], ['wallboard', wall]]) {
      const list = await page.evaluate(() => {
        const out = [];
        for (const n of document.querySelectorAll('input:not([type=hidden]), select, button, [role=status], table')) {
          if (n.closest('[hidden]')) continue;
          const labelled =
            n.getAttribute('aria-label') ||
            n.getAttribute('aria-labelledby') ||
            (n.labels && n.labels.length) ||
            (n.tagName === 'BUTTON' && n.textContent.trim()) ||
            (n.tagName === 'TABLE' && n.closest('section[aria-labelledby]')) ||
            (n.getAttribute('role') === 'status');
          if (!labelled) out.push(n.outerHTML.slice(0, 80));
        }
        return out;
      });
      for (const u of list) unnamed.push(`${name}: ${u}`);
    }
    if (unnamed.length) throw new Error(unnamed.join('\n'));
  });
  await check('a revoked session returns to the sign-in form', async () => {
    // A token the server does not know, as after `switchboard token revoke`.
    await wall.evaluate(() => sessionStorage.setItem('sb.token', 'revoked-token'));
    await wall.reload({ waitUntil: 'load' });
    await wall.waitForSelector('#login-form', { state: 'visible', timeout: 15000 });
    const msg = await wall.textContent('#login-error');
    if (!/sign in again|not accepted/i.test(msg)) throw new Error(`message "${msg}"`);
  });

  await check('no script errors in the pages', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
} catch (e) {
  notOk('the run stopped early', e.stack || e);
} finally {
  await ctx.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}

console.log(`# ${checks - failures}/${checks} checks passed in ${stamp()}; screenshots in ${ART}`);
process.exit(failures ? 1 : 0);
