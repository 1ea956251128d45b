// Locks and elections (src/server/locks.ts) over a real key-value state machine, with the log
// stood in by a writer that applies each command at the next index: mutual exclusion, fencing
// tokens that only grow per name, waiting until the holder's key goes (released, or its lease
// ended), withdrawal of an attempt the client gave up on, and elections' leader, proclaim and
// resign. The same routes run on real clusters in test/cluster/locks.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine, encodeCommand, type Command, type KvResult } from '../../src/kv/index.js';
import { lockRoutes } from '../../src/server/locks.js';
import type { Reply } from '../../src/server/http-util.js';
import { routeCaller } from './lock-route-helper.js';

function store(): { kv: KvStateMachine; apply: (cmd: Command) => KvResult; route: (method: string, path: string, body?: unknown, query?: string, timeoutMs?: number) => Promise<Reply> } {
  const kv = new KvStateMachine();
  let index = 0;
  const applyBytes = (data: Uint8Array): KvResult => kv.apply({ index: ++index, term: 1, type: 'normal', data })!;
  const routes = lockRoutes({ service: { write: async (data) => applyBytes(data) }, kv, maxKeyBytes: 4096 });
  const route = routeCaller(routes, 2000);
  return { kv, apply: (cmd) => applyBytes(encodeCommand(cmd)), route };
}

const grant = (s: ReturnType<typeof store>, id: number): void => void s.apply({ type: 'leaseGrant', id, ttlSeconds: 30, time: 1 });
const json = (r: Reply): Record<string, unknown> => r.json as Record<string, unknown>;

test('a lock is held by one contender at a time; the next waits, and takes it with a larger fencing token when it is released', async () => {
  const s = store();
  grant(s, 1);
  grant(s, 2);
  const first = await s.route('POST', '/v1/locks/job', { lease: 1 });
  assert.equal(first.status, 200, JSON.stringify(first.json));
  const { key, revision } = json(first) as { key: string; revision: number };
  assert.equal(key, 'job/1');
  const waiting = s.route('POST', '/v1/locks/job', { lease: 2 }, '', 5000);
  let settled = false;
  void waiting.then(() => (settled = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(settled, false, 'the second contender waits while the first holds the lock');
  const released = await s.route('DELETE', `/v1/locks/job/${encodeURIComponent(key)}`);
  assert.deepEqual([released.status, json(released)['released']], [200, true]);
  const second = await waiting;
  assert.equal(second.status, 200);
  assert.ok((json(second)['revision'] as number) > revision, 'fencing tokens only grow');
});

test('wait=false answers 409 LOCK_HELD at once, naming the holder, and leaves no key behind', async () => {
  const s = store();
  grant(s, 1);
  grant(s, 2);
  await s.route('POST', '/v1/locks/job', { lease: 1 });
  const r = await s.route('POST', '/v1/locks/job', { lease: 2 }, 'wait=false');
  assert.equal(r.status, 409);
  const error = (r.json as { error: { code: string; holder: { key: string } } }).error;
  assert.deepEqual([error.code, error.holder.key], ['LOCK_HELD', 'job/1']);
  assert.equal(s.kv.get('job/2'), null, 'the attempt was withdrawn');
});

test('an attempt that reaches its deadline is withdrawn: it never takes the lock after the client gave up', async () => {
  const s = store();
  grant(s, 1);
  grant(s, 2);
  await s.route('POST', '/v1/locks/job', { lease: 1 });
  const r = await s.route('POST', '/v1/locks/job', { lease: 2 }, '', 100);
  assert.equal(r.status, 409);
  assert.equal(s.kv.get('job/2'), null);
  s.apply({ type: 'leaseRevoke', id: 1, time: 2 });
  assert.deepEqual(s.kv.list('job/', 10).items, [], 'nobody holds it once the holder goes');
});

test("the end of the holder's lease releases the lock to the next in line", async () => {
  const s = store();
  grant(s, 1);
  grant(s, 2);
  await s.route('POST', '/v1/locks/job', { lease: 1 });
  const waiting = s.route('POST', '/v1/locks/job', { lease: 2 }, '', 5000);
  await new Promise((r) => setTimeout(r, 20));
  s.apply({ type: 'leaseRevoke', id: 1, expired: true, time: 2 });
  const got = await waiting;
  assert.equal(got.status, 200);
  assert.equal(json(got)['key'], 'job/2');
});

test('a waiter whose own lease ends is told so (404 LEASE_NOT_FOUND), and a lock with a lease that does not exist is refused', async () => {
  const s = store();
  grant(s, 1);
  grant(s, 2);
  await s.route('POST', '/v1/locks/job', { lease: 1 });
  const waiting = s.route('POST', '/v1/locks/job', { lease: 2 }, '', 5000);
  await new Promise((r) => setTimeout(r, 20));
  s.apply({ type: 'leaseRevoke', id: 2, time: 2 });
  assert.equal((await waiting).status, 404);
  const none = await s.route('POST', '/v1/locks/other', { lease: 99 });
  assert.deepEqual([none.status, (none.json as { error: { code: string } }).error.code], [404, 'LEASE_NOT_FOUND']);
});

test('property: under many contenders, holders never overlap and tokens only grow', async () => {
  const s = store();
  for (let id = 1; id <= 8; id++) grant(s, id);
  let holding = 0;
  let maxHolding = 0;
  const tokens: number[] = [];
  await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      for (let round = 0; round < 3; round++) {
        const got = await s.route('POST', '/v1/locks/crit', { lease: i + 1 }, '', 10_000);
        assert.equal(got.status, 200, JSON.stringify(got.json));
        holding++;
        maxHolding = Math.max(maxHolding, holding);
        tokens.push(json(got)['revision'] as number);
        await new Promise((r) => setTimeout(r, 1));
        holding--;
        await s.route('DELETE', `/v1/locks/crit/${encodeURIComponent(json(got)['key'] as string)}`);
      }
    }),
  );
  assert.equal(maxHolding, 1);
  assert.deepEqual(tokens, [...tokens].sort((a, b) => a - b));
  assert.equal(new Set(tokens).size, tokens.length);
});

test('an election: the first campaigner leads with its value, proclaim changes it, resign hands over', async () => {
  const s = store();
  grant(s, 1);
  grant(s, 2);
  assert.equal((await s.route('GET', '/v1/elections/svc')).status, 404);
  const a = await s.route('POST', '/v1/elections/svc/campaign', { lease: 1, value: 'a:1' });
  assert.equal(a.status, 200);
  const b = s.route('POST', '/v1/elections/svc/campaign', { lease: 2, value: 'b:2' }, '', 5000);
  const leader = json(await s.route('GET', '/v1/elections/svc'));
  assert.deepEqual([leader['key'], leader['value']], ['svc/1', 'a:1']);
  assert.equal((await s.route('POST', '/v1/elections/svc/proclaim', { key: 'svc/1', value: 'a:2' })).status, 200);
  assert.equal(json(await s.route('GET', '/v1/elections/svc'))['value'], 'a:2');
  assert.equal((await s.route('POST', '/v1/elections/svc/proclaim', { key: 'svc/2', value: 'b:x' })).status, 409, 'only the leader proclaims');
  await s.route('DELETE', '/v1/elections/svc/svc%2F1');
  const next = json(await b);
  assert.deepEqual([next['key'], next['value']], ['svc/2', 'b:2']);
  assert.equal(json(await s.route('GET', '/v1/elections/svc'))['key'], 'svc/2');
});

test('bad input is refused with 400 before anything is written', async () => {
  const s = store();
  const before = s.kv.revision;
  for (const [method, path, body, query] of [
    ['POST', '/v1/locks/job', { lease: 0 }, ''],
    ['POST', '/v1/locks/job', { lease: '1' }, ''],
    ['POST', '/v1/locks/job', { lease: 1, extra: true }, ''],
    ['POST', '/v1/locks/job', { lease: 1 }, 'wait=maybe'],
    ['POST', '/v1/locks/%E0%A4%A', { lease: 1 }, ''],
    ['DELETE', '/v1/locks/job/other%2F1', undefined, ''],
    ['POST', '/v1/elections/svc/campaign', { lease: 1 }, ''],
  ] as const) {
    const r = await s.route(method, path, body, query);
    assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
  }
  assert.equal((await s.route('GET', '/v1/locks/job')).status, 405);
  assert.equal(s.kv.revision, before);
});
