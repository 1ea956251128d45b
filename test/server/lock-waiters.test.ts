// Many lock waiters on one node cost apply one store listener, not one each (src/server/lock-lines.ts):
// 2,000 waiters on one name and on 2,000 names, a release wakes exactly the next in line, a write
// under no watched name wakes nobody, and the number of kv.onChange listeners stays at one. Waiting
// HTTP requests are capped (503 OVERLOADED, nothing written). Store and routes are real; the log is
// stood in by a writer that applies each command at the next index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine, encodeCommand, type Command, type KvResult } from '../../src/kv/index.js';
import { lockRoutes } from '../../src/server/locks.js';
import { lineHubOf } from '../../src/server/lock-lines.js';
import type { Reply } from '../../src/server/http-util.js';
import { routeCaller } from './lock-route-helper.js';

interface Store {
  kv: KvStateMachine;
  apply: (cmd: Command) => KvResult;
  route: (method: string, path: string, body?: unknown, query?: string, timeoutMs?: number) => Promise<Reply>;
  /** kv.onChange listeners registered now (every one apply calls per command). */
  listeners: () => number;
}

function store(maxWaiters?: number): Store {
  const kv = new KvStateMachine();
  let listeners = 0;
  const onChange = kv.onChange.bind(kv);
  kv.onChange = (listener) => {
    listeners++;
    const off = onChange(listener);
    let isOn = true;
    return () => {
      if (isOn) listeners--;
      isOn = false;
      off();
    };
  };
  let index = 0;
  let time = 1;
  const applyBytes = (data: Uint8Array): KvResult => kv.apply({ index: ++index, term: 1, type: 'normal', data })!;
  const routes = lockRoutes({ service: { write: async (data) => applyBytes(data) }, kv, maxKeyBytes: 4096, ...(maxWaiters === undefined ? {} : { maxWaiters }) });
  const route = routeCaller(routes, 60_000);
  return { kv, apply: (cmd) => applyBytes(encodeCommand({ ...cmd, time: time++ } as Command)), route, listeners: () => listeners };
}

const json = (r: Reply): Record<string, unknown> => r.json as Record<string, unknown>;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
async function settleTurns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await turn();
}

/** Tracks which of many pending replies have settled. */
function tracked(replies: Promise<Reply>[]): { settled: Map<number, Reply> } {
  const settled = new Map<number, Reply>();
  replies.forEach((p, i) => void p.then((r) => settled.set(i, r)));
  return { settled };
}

test('2,000 waiters on one name: one store listener; a release wakes exactly the next in line, the others sleep on', async () => {
  const s = store();
  const WAITERS = 2000;
  for (let id = 1; id <= WAITERS + 1; id++) s.apply({ type: 'leaseGrant', id, ttlSeconds: 600, time: 0 });
  const holder = await s.route('POST', '/v1/locks/job', { lease: 1 });
  assert.equal(holder.status, 200);
  const waiting: Promise<Reply>[] = [];
  for (let id = 2; id <= WAITERS + 1; id++) {
    waiting.push(s.route('POST', '/v1/locks/job', { lease: id }));
    await turn(); // each takes its place in line in order (its key is written before the next's)
  }
  await settleTurns();
  const { settled } = tracked(waiting);
  const hub = lineHubOf(s.kv);
  assert.equal(s.listeners(), 1, 'all waiters share one kv.onChange listener');
  assert.equal(hub.waiting, WAITERS);
  assert.equal(s.kv.list('job/', WAITERS + 10).items.length, WAITERS + 1);

  // A write elsewhere wakes nobody.
  const before = hub.wakeups;
  s.apply({ type: 'put', key: 'jobs-elsewhere', value: new Uint8Array([1]), time: 0 });
  await settleTurns();
  assert.equal(hub.wakeups, before, 'a key under no watched name wakes no waiter');

  // The holder releases: the next in line (lease 2) holds it, and it alone was woken.
  const released = await s.route('DELETE', `/v1/locks/job/${encodeURIComponent(json(holder)['key'] as string)}`);
  assert.equal(json(released)['released'], true);
  await settleTurns();
  assert.equal(hub.wakeups, before + 1, 'one release wakes one waiter');
  assert.deepEqual([...settled.keys()], [0]);
  assert.equal(json(settled.get(0)!)['key'], 'job/2');

  // The next holder's lease ends: lease 3 takes over, again the only one woken.
  s.apply({ type: 'leaseRevoke', id: 2, time: 0 });
  await settleTurns();
  assert.equal(hub.wakeups, before + 2);
  assert.deepEqual([...settled.keys()].sort((a, b) => a - b), [0, 1]);
  assert.equal(json(settled.get(1)!)['key'], 'job/3');
  assert.ok((json(settled.get(1)!)['revision'] as number) > (json(settled.get(0)!)['revision'] as number), 'fencing tokens grow');

  // Every other waiter's lease ends: each hears of its own key alone (404), and the store's
  // listener goes once nobody waits.
  for (let id = WAITERS + 1; id >= 4; id--) s.apply({ type: 'leaseRevoke', id, time: 0 });
  await Promise.all(waiting);
  await settleTurns();
  for (let i = 2; i < WAITERS; i++) assert.equal(settled.get(i)?.status, 404, `waiter ${i} was told its lease ended`);
  assert.equal(hub.waiting, 0);
  assert.equal(s.listeners(), 0, 'no listener is left on the store once nobody waits');
});

test('2,000 waiters on 2,000 names: one store listener; a release under one name wakes only that name\'s next', async () => {
  const s = store();
  const NAMES = 2000;
  for (let id = 1; id <= 2 * NAMES; id++) s.apply({ type: 'leaseGrant', id, ttlSeconds: 600, time: 0 });
  const holders: string[] = [];
  for (let i = 0; i < NAMES; i++) {
    const h = await s.route('POST', `/v1/locks/${encodeURIComponent(`app/lock-${i}`)}`, { lease: 1 + i });
    holders.push(json(h)['key'] as string);
  }
  const waiting: Promise<Reply>[] = [];
  for (let i = 0; i < NAMES; i++) waiting.push(s.route('POST', `/v1/locks/${encodeURIComponent(`app/lock-${i}`)}`, { lease: 1 + NAMES + i }));
  await settleTurns(10);
  const { settled } = tracked(waiting);
  const hub = lineHubOf(s.kv);
  assert.equal(s.listeners(), 1, 'all waiters share one kv.onChange listener');
  assert.equal(hub.waiting, NAMES);
  const before = hub.wakeups;
  // A key under the shared parent "app/" but in no line: nobody wakes.
  s.apply({ type: 'put', key: 'app/other', value: new Uint8Array([1]), time: 0 });
  await settleTurns();
  assert.equal(hub.wakeups, before);
  await s.route('DELETE', `/v1/locks/${encodeURIComponent('app/lock-1234')}/${encodeURIComponent(holders[1234]!)}`);
  await settleTurns();
  assert.equal(hub.wakeups, before + 1);
  assert.deepEqual([...settled.keys()], [1234]);
  assert.equal(json(settled.get(1234)!)['key'], `app/lock-1234/${(1 + NAMES + 1234).toString(16)}`);
  for (let i = 0; i < NAMES; i++) s.apply({ type: 'leaseRevoke', id: 1 + NAMES + i, time: 0 });
  await Promise.all(waiting);
  assert.equal(s.listeners(), 0);
});

test('a name with "/" in it: its line is every key under NAME/, and the enclosing name\'s line sees them too', async () => {
  const s = store();
  for (let id = 1; id <= 3; id++) s.apply({ type: 'leaseGrant', id, ttlSeconds: 600, time: 0 });
  const inner = await s.route('POST', `/v1/locks/${encodeURIComponent('a/b')}`, { lease: 1 });
  assert.equal(json(inner)['key'], 'a/b/1');
  // "a/b/1" is under "a/" too: a waiter on "a" waits for it, as etcd's prefix line does.
  const outer = s.route('POST', '/v1/locks/a', { lease: 2 });
  const next = s.route('POST', `/v1/locks/${encodeURIComponent('a/b')}`, { lease: 3 });
  await settleTurns();
  const { settled } = tracked([outer, next]);
  await settleTurns();
  assert.equal(settled.size, 0);
  s.apply({ type: 'leaseRevoke', id: 1, time: 0 });
  // "a/2" was created before "a/b/3": the waiter on "a" holds now; "a/b/3" heads its own line.
  const [o, n] = await Promise.all([outer, next]);
  assert.deepEqual([o.status, json(o)['key'], n.status, json(n)['key']], [200, 'a/2', 200, 'a/b/3']);
  assert.equal(s.listeners(), 0);
});

test('waiting lock and campaign requests are capped per node: beyond it 503 OVERLOADED, with nothing written', async () => {
  const s = store(3);
  for (let id = 1; id <= 6; id++) s.apply({ type: 'leaseGrant', id, ttlSeconds: 600, time: 0 });
  const holder = await s.route('POST', '/v1/locks/job', { lease: 1 });
  assert.equal(holder.status, 200);
  // The holder's request has answered: it no longer counts. Three wait now.
  const waiting = [2, 3, 4].map((lease) => s.route('POST', '/v1/locks/job', { lease }));
  await settleTurns();
  const over = await s.route('POST', '/v1/locks/job', { lease: 5 });
  assert.equal(over.status, 503);
  const error = (over.json as { error: { code: string; message: string } }).error;
  assert.equal(error.code, 'OVERLOADED');
  assert.match(error.message, /3 lock and campaign requests waiting/);
  assert.equal(over.retryAfter, 1, 'Retry-After tells when to ask again');
  assert.equal(s.kv.get('job/5'), null, 'the refused request wrote no key');
  const campaign = await s.route('POST', '/v1/elections/e/campaign', { lease: 5, value: 'v' });
  assert.equal(campaign.status, 503, 'campaigns count against the same cap');
  // wait=false never waits, so it is not refused by the cap.
  const now = await s.route('POST', '/v1/locks/job', { lease: 6 }, 'wait=false');
  assert.equal(now.status, 409);
  // Once one has its answer, another may wait.
  s.apply({ type: 'leaseRevoke', id: 1, time: 0 });
  assert.equal((await waiting[0]!).status, 200);
  const again = s.route('POST', '/v1/locks/job', { lease: 5 });
  await settleTurns();
  s.apply({ type: 'leaseRevoke', id: 2, time: 0 });
  s.apply({ type: 'leaseRevoke', id: 3, time: 0 });
  s.apply({ type: 'leaseRevoke', id: 4, time: 0 });
  assert.deepEqual([(await waiting[1]!).status, (await waiting[2]!).status, (await again).status], [404, 404, 200]);
});
