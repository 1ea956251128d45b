// Peers' answers to the dashboard's state query (GET /v1/internal/ui-node over the peer channel,
// src/server/ui-hub.ts parseUiNodeState) are input like any other: malformed, huge or mistyped
// answers are refused field by field and never shown as is, unknown fields are dropped, and the
// hub goes on serving views over a real SSE connection, its leader not taken over by a member
// that claims to lead at a huge term in a malformed answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { UiHub, parseUiNodeState } from '../../src/server/ui-hub.js';
import type { UiNodeState } from '../../src/server/ui-types.js';
import type { ParsedRequest } from '../../src/server/api-types.js';
import { freePort } from '../../src/transport/free-ports.js';
import { SseReader } from './sse-reader.js';

function state(id: string, role: UiNodeState['role'], term: number): UiNodeState {
  return {
    id,
    role,
    term,
    votedFor: null,
    leader: role === 'leader' ? id : null,
    commitIndex: 10,
    appliedIndex: 10,
    lastIndex: 11,
    snapshotIndex: 0,
    log: [
      [10, term],
      [11, term],
    ],
    config: { voters: ['n1', 'n2', 'n3'], votersOutgoing: [], learners: [] },
    configIndex: 1,
    isChangePending: false,
    progress: [],
    alarms: [],
    requestsPerSecond: 1.5,
    writesPerSecond: 0,
    latencyMs: { p50: 1, p99: 2 },
    uptimeSeconds: 3,
  };
}

/** A valid answer with one field replaced (or, with `undefined`, taken away). */
function withField(field: string, value: unknown): unknown {
  const s: Record<string, unknown> = JSON.parse(JSON.stringify(state('n2', 'follower', 3)));
  if (value === undefined) delete s[field];
  else s[field] = value;
  return s;
}

const HOSTILE: [string, unknown][] = [
  ['null', null],
  ['a string', 'leader'],
  ['a number', 42],
  ['an array', [state('n2', 'leader', 9)]],
  ['no id', withField('id', undefined)],
  ['an id that is not a string', withField('id', { toString: 'n2' })],
  ['an id of 1 MB', withField('id', 'x'.repeat(1 << 20))],
  ['an unknown role', withField('role', 'dictator')],
  ['a role from the prototype', withField('role', 'constructor')],
  ['a negative term', withField('term', -1)],
  ['a term past 2^53', withField('term', 2 ** 60)],
  ['a fractional term', withField('term', 1.5)],
  ['a term as a string', withField('term', '7')],
  ['NaN commit index (as null after JSON)', withField('commitIndex', null)],
  ['a log of 100,000 entries', withField('log', Array.from({ length: 100_000 }, (_, i) => [i, 1]))],
  ['a log entry of three numbers', withField('log', [[1, 1, 1]])],
  ['a log entry that is an object', withField('log', [{ index: 1, term: 1 }])],
  ['config not an object', withField('config', ['n1'])],
  ['voters not strings', withField('config', { voters: [1, 2], votersOutgoing: [], learners: [] })],
  ['65 voters', withField('config', { voters: Array.from({ length: 65 }, (_, i) => `n${i}`), votersOutgoing: [], learners: [] })],
  ['progress entries not objects', withField('progress', ['n2'])],
  ['an infinite rate', withField('requestsPerSecond', Infinity)],
  ['a negative rate', withField('writesPerSecond', -3)],
  ['latency quantiles as strings', withField('latencyMs', { p50: '1', p99: '2' })],
  ['alarms of 10 KB strings', withField('alarms', ['x'.repeat(10_000)])],
];

test('parseUiNodeState refuses every malformed, huge or mistyped answer with a clear error, and keeps only known fields of a valid one', () => {
  for (const [what, x] of HOSTILE) {
    assert.throws(() => parseUiNodeState(x), /a member answered a malformed /, `${what} is refused`);
  }
  const extra = JSON.parse(JSON.stringify({ ...state('n2', 'follower', 3), script: '<script>alert(1)</script>', blob: 'x'.repeat(1 << 20) }));
  Object.defineProperty(extra, '__proto__', { value: { role: 'leader' }, enumerable: true });
  const parsed = parseUiNodeState(extra);
  assert.deepEqual(parsed, state('n2', 'follower', 3), 'unknown fields are dropped, nothing else changes');
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
  // A null vote, leader and latency are valid.
  assert.equal(parseUiNodeState(JSON.parse(JSON.stringify({ ...state('n3', 'candidate', 4), latencyMs: null }))).latencyMs, null);
});

test('a hub whose peers answer garbage goes on serving views: a bad answer keeps the last good state (marked), and cannot crown a leader', async () => {
  let n2Asks = 0;
  let n3Asks = 0;
  const hub = new UiHub({
    self: 'n1',
    local: () => state('n1', 'leader', 5),
    members: () => ['n1', 'n2', 'n3'].map((id) => ({ id, clientUrl: null, peerAddr: null })),
    askPeer: async (id) => {
      if (id === 'n2') {
        // First a good answer, then every hostile one in turn.
        const k = n2Asks++;
        return k === 0 ? JSON.parse(JSON.stringify(state('n2', 'follower', 5))) : HOSTILE[(k - 1) % HOSTILE.length]![1];
      }
      // n3 claims to lead at the highest term, in an answer with one bad field; or throws oddly.
      if (n3Asks++ % 2 === 1) throw 'not an Error';
      return { ...(withField('votedFor', 12) as object), role: 'leader', term: Number.MAX_SAFE_INTEGER };
    },
    clusterId: () => 'c1',
    intervalMs: 20,
    peerTimeoutMs: 100,
  });
  const port = await freePort();
  const server = createServer((req, res) => {
    const r: ParsedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', query: new URLSearchParams(), headers: {}, body: new Uint8Array(0), deadline: Date.now() + 5000, principal: null };
    void hub.route(r)!.then((reply) => reply.stream!(res, {}));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  try {
    const reader = await SseReader.open(`http://127.0.0.1:${port}`, '/v1/ui/events');
    assert.equal(reader.status, 200);
    // Enough views to go through every hostile answer at least once.
    let views = await reader.take(1, 5000);
    while (n2Asks < HOSTILE.length + 3) views = await reader.take(1, 5000);
    const view = views[0]!.json as { leader: string | null; term: number; members: { id: string; state: UiNodeState | null; error: string | null }[] };
    assert.equal(view.leader, 'n1', 'a malformed claim to lead is not believed');
    assert.equal(view.term, 5, 'nor its term');
    const [n1, n2, n3] = view.members;
    assert.equal(n1!.error, null);
    assert.equal(n2!.state?.term, 5, 'n2 shows its last good state');
    assert.match(n2!.error ?? '', /malformed|not an Error|no answer/);
    assert.equal(n3!.state, null, 'n3 never answered well: nothing of it is shown');
    assert.match(n3!.error ?? '', /malformed|no answer/);
    assert.ok((n3!.error ?? '').length <= 200);
    reader.req.destroy();
  } finally {
    hub.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
