// console-state.test.mjs: the console's logic without a browser (node --test): ConsoleState fed
// with every golden event file of the model (tests/golden/*.jsonl, the events.md contract) ends
// with no live call and no waiting caller and keeps what the views show (who is on the line, the
// last completed call, pause reasons); EventStream drops duplicates, counts gaps and restarts
// from snapshots. Run by tests/integration/console_state.sh.

import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ConsoleState, describe } from '../../web/js/state.js';
import { EventStream, endpointsFrom } from '../../web/js/stream.js';
import { fmtDuration, since, statusTone, statusWord, party } from '../../web/js/dom.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const goldenDir = path.join(root, 'tests/golden');
const load = (name) =>
  fs
    .readFileSync(path.join(goldenDir, name), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l, i) => ({ seq: i + 1, ...JSON.parse(l) }));

const goldens = fs.readdirSync(goldenDir).filter((f) => f.endsWith('.jsonl'));

test('there are golden files to replay', () => {
  assert.ok(goldens.length >= 8, `only ${goldens.length} golden files`);
});

for (const name of goldens) {
  test(`${name}: every call ends, no caller waits, every event is described`, () => {
    const st = new ConsoleState();
    let changes = 0;
    st.subscribe(() => changes++);
    const evs = load(name);
    let maxCalls = 0;
    for (const ev of evs) {
      st.apply(ev);
      maxCalls = Math.max(maxCalls, st.calls.size);
      const text = describe(ev);
      assert.equal(typeof text, 'string');
      assert.ok(text.length > 0 && !text.includes('undefined'), `${ev.type}: "${text}"`);
    }
    assert.equal(changes, evs.length, 'one change notification per event');
    assert.ok(maxCalls >= 1, 'a call was live at some point');
    assert.equal(st.calls.size, 0, `calls left: ${[...st.calls.keys()]}`);
    for (const q of st.queues.values()) {
      assert.equal(q.waiting, 0, `queue ${q.name} still has ${q.waiting} waiting`);
      assert.equal(q.joins.length, 0);
    }
    for (const a of st.agents.values()) assert.equal(a.phoneNumber, null, `agent ${a.extension} still on the line`);
  });
}

test('07: agent 502 takes the queue call; the views get its number, summary and talk time', () => {
  const st = new ConsoleState();
  const evs = load('07-queue-call-answered-agent-complete.jsonl');
  let sawNumber = null;
  let sawWaiting = 0;
  for (const ev of evs) {
    st.apply(ev);
    const pn = st.agents.get('502') && st.agents.get('502').phoneNumber;
    if (pn) sawNumber = pn.number;
    if (st.queues.get('sales')) sawWaiting = Math.max(sawWaiting, st.queues.get('sales').waiting);
  }
  assert.equal(sawNumber, '34600111222');
  assert.equal(sawWaiting, 1);
  const ben = st.agents.get('502');
  assert.equal(ben.name, 'Agent Ben');
  assert.equal(ben.lastCall.callId, '1795478344.10');
  assert.equal(ben.lastCall.disposition, 'ANSWERED');
  assert.equal(ben.lastComplete.callId, ben.lastCall.callId);
  assert.equal(ben.lastComplete.talkTime, 4);
  assert.equal(ben.queues.get('sales').callsTaken, 1);
  assert.equal(st.agents.get('501').lastCall, null, 'the call Ann did not take is not her last call');
  assert.equal(st.recent[0].type, evs[evs.length - 1].type, 'recent events are newest first');
  assert.ok(st.recent.length <= 30);
});

test('06: click-to-dial failures reach the agent with the reason in words', () => {
  const st = new ConsoleState();
  for (const ev of load('06-originate-failures.jsonl')) st.apply(ev);
  const failed = [...st.agents.values()].filter((a) => a.lastOriginateFailed);
  assert.ok(failed.length >= 1);
  for (const a of failed) assert.match(a.lastOriginateFailed.reason, /\w/);
});

test('snapshot: queues, members, waiting callers and the longest wait', () => {
  const st = new ConsoleState();
  const joined = '2026-11-25T10:00:00.000Z';
  st.apply({
    seq: 7,
    type: 'snapshot',
    time: '2026-11-25T10:00:30.000Z',
    details: {
      calls: [{ callId: 'c1', state: 'bridged', from: '600', to: '200', start: joined }],
      queues: [
        {
          name: 'sales',
          waiting: 2,
          callers: [
            { uniqueId: 'u2', joined: '2026-11-25T10:00:20.000Z' },
            { uniqueId: 'u1', joined },
          ],
          members: [{ queue: 'sales', interface: 'Local/501@agents/n', agent: '501', memberName: 'Ann', status: 'notInUse', paused: true, pausedReason: 'lunch', loggedIn: true }],
        },
      ],
      agents: [{ extension: '501', extensionStatus: null, queues: [], phoneNumber: { number: '600', name: null, callId: 'c1' }, lastCall: null }],
    },
  });
  const q = st.queues.get('sales');
  assert.equal(q.waiting, 2);
  assert.equal(st.longestWaitSince(q), joined, 'the oldest caller gives the longest wait');
  assert.equal(st.agents.get('501').queues.get('sales').pausedReason, 'lunch');
  assert.equal(st.agents.get('501').phoneNumber.number, '600');
  assert.equal(st.calls.size, 1);
  // A caller leaves: the oldest goes first; the next join starts at the event's time.
  st.apply({ seq: 8, type: 'queueCount', time: '2026-11-25T10:00:40.000Z', details: { queue: 'sales', count: 1 } });
  assert.equal(st.longestWaitSince(q), '2026-11-25T10:00:20.000Z');
  st.apply({ seq: 9, type: 'queueCount', time: '2026-11-25T10:00:50.000Z', details: { queue: 'sales', count: 2 } });
  assert.deepEqual(q.joins, ['2026-11-25T10:00:20.000Z', '2026-11-25T10:00:50.000Z']);
  // Removal of the member: gone from the queue and from the agent.
  st.apply({ seq: 10, type: 'queueMemberStatus', agent: '501', details: { queue: 'sales', interface: 'Local/501@agents/n', agent: '501', loggedIn: false } });
  assert.equal(q.members.size, 0);
  assert.equal(st.agents.get('501').queues.size, 0);
  // A resync replaces everything but keeps the counters and the recent list.
  const recent = st.recent.length;
  st.apply({ seq: 20, type: 'resync', time: '2026-11-25T10:05:00.000Z', details: { calls: [], queues: [], agents: [] } });
  assert.equal(st.calls.size, 0);
  assert.equal(st.queues.size, 0);
  assert.equal(st.resyncs, 1);
  assert.equal(st.snapshots, 1);
  st.apply({ type: 'snapshot', preload: true, details: { agents: [{ extension: '777', queues: [] }] } });
  assert.equal(st.snapshots, 1, 'the REST preload is not a stream snapshot');
  assert.ok(st.agents.has('777'));
  assert.equal(st.recent.length, recent);
});

test('EventStream: duplicates dropped, gaps counted, snapshot and long-poll "last" move the position', () => {
  const got = [];
  const statuses = [];
  const es = new EventStream({ transport: 'ws', getEndpoints: async () => ({}), onEvent: (e) => got.push(e), onStatus: (s) => statuses.push(s) });
  const msg = (o) => JSON.stringify(o);
  es.receive(msg({ seq: 10, type: 'snapshot', details: {} }));
  assert.equal(es.lastSeq, 10);
  es.receive(msg({ seq: 11, type: 'queueCount', details: {} }));
  es.receive(msg({ seq: 11, type: 'queueCount', details: {} })); // duplicate
  es.receive(msg({ seq: 9, type: 'queueCount', details: {} })); // older
  assert.equal(es.duplicates, 2);
  assert.equal(es.gaps, 0);
  es.receive(msg({ seq: 14, type: 'phoneNumber', details: {} })); // 12, 13 missing
  assert.equal(es.gaps, 1);
  // A long-poll answer: several events and "last".
  es.receive(msg({ events: [{ seq: 15, type: 'call.started', details: {} }, { seq: 16, type: 'call.ended', details: {} }], last: 16 }));
  es.receive(msg({ events: [], last: 16 }));
  assert.equal(es.lastSeq, 16);
  // A resync (beyond the window) restarts from its seq without counting a gap.
  es.receive(msg({ seq: 40, type: 'resync', details: {} }));
  es.receive(msg({ seq: 41, type: 'queueCount', details: {} }));
  assert.equal(es.gaps, 1);
  assert.deepEqual(got.map((e) => e.seq), [10, 11, 14, 15, 16, 40, 41]);
  assert.equal(es.events, 5, 'snapshots and resyncs are not counted as events');
  // SSE: the id line gives the seq when the data has none; garbage is ignored.
  es.receive('{"type":"queueCount","details":{}}', '42');
  es.receive('not json');
  es.receive('{"seq":43}'); // no type
  assert.equal(es.lastSeq, 42);
  assert.ok(statuses.length > 0 && statuses.at(-1).lastSeq === 42);
});

test('EventStream: a snapshot of an empty stream (seq 0) is a position, not "no position"', () => {
  const es = new EventStream({ getEndpoints: async () => ({}), onEvent: () => {} });
  assert.equal(es.positioned, false, 'before anything: ask for a snapshot');
  es.receive(JSON.stringify({ events: [{ seq: 0, type: 'snapshot', details: {} }], last: 0 }));
  assert.equal(es.positioned, true);
  assert.equal(es.lastSeq, 0);
  es.receive(JSON.stringify({ seq: 1, type: 'queueCount', details: {} }));
  assert.equal(es.gaps, 0);
  es.receive(JSON.stringify({ seq: 3, type: 'queueCount', details: {} }));
  assert.equal(es.gaps, 1, 'from a position of 0, a jump to 3 is a gap');
});

test('endpointsFrom: the subscription answer of docs/streams.md', () => {
  const ep = endpointsFrom({
    token: 't1',
    urls: { sse: '/v1/agents/502/stream?token=t1', websocket: '/v1/agents/502/stream/ws?token=t1', longPoll: '/v1/agents/502/stream/poll?token=t1' },
  });
  assert.deepEqual(ep, { token: 't1', sse: '/v1/agents/502/stream?token=t1', ws: '/v1/agents/502/stream/ws?token=t1', longpoll: '/v1/agents/502/stream/poll?token=t1' });
});

test('formatting helpers', () => {
  assert.equal(fmtDuration(0), '0:00');
  assert.equal(fmtDuration(65), '1:05');
  assert.equal(fmtDuration(3725), '1:02:05');
  assert.equal(fmtDuration(null), '–');
  assert.equal(since('2026-11-25T10:00:00Z', Date.parse('2026-11-25T10:00:05Z')), 5);
  assert.equal(since(null), null);
  assert.equal(statusWord('notInUse'), 'Available');
  assert.equal(statusTone('ringing'), 'ring');
  assert.equal(statusTone('inUse'), 'busy');
  assert.equal(party('600', 'Ann'), '600 (Ann)');
  assert.equal(party(null, null), '–');
});
