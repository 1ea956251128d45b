// The coordination benchmark's checks can fail: an in-memory target that breaks one promise at a
// time (a lock that lets two hold at once, fencing tokens that go backwards, a watch that drops or
// repeats an event) must be caught, and a faithful one must pass. No servers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CoordinationTarget, LockSession, WatchCallbacks } from '../../bench/lib/coordination-target.js';
import { runLockHandoffs, runWatchFanout } from '../../bench/lib/coordination.js';

interface Faults {
  /** Lock grants without waiting for the holder to release. */
  readonly isLockShared?: boolean;
  /** Tokens count down instead of up. */
  readonly isTokenBackwards?: boolean;
  /** Watcher 0 never sees the write with this index. */
  readonly dropWrite?: number;
  /** Watcher 1 sees the write with this index twice. */
  readonly repeatWrite?: number;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function fakeTarget(f: Faults): CoordinationTarget {
  const watchers: WatchCallbacks[] = [];
  let holder = false;
  const queue: (() => void)[] = [];
  let token = f.isTokenBackwards === true ? 1_000_000 : 0;
  let leases = 0;
  const lockSession = (): LockSession => ({
    async lock() {
      await tick();
      if (f.isLockShared !== true && holder) await new Promise<void>((r) => queue.push(r));
      holder = true;
      token += f.isTokenBackwards === true ? -1 : 1;
      return { key: `k${token}`, token: BigInt(token) };
    },
    async unlock() {
      await tick();
      holder = false;
      queue.shift()?.();
    },
    close: () => undefined,
  });
  return {
    system: 'raftkv',
    memberNames: ['a', 'b', 'c'],
    leaderIndex: 0,
    notes: { watch: 'fake', keepAlive: 'fake', lock: 'fake' },
    revision: () => Promise.resolve(0),
    writer: () => ({
      async put(key) {
        await tick();
        const index = Number(key.slice(key.lastIndexOf('/') + 1));
        watchers.forEach((w, i) => {
          if (i === 0 && index === f.dropWrite) return;
          w.onPut(key);
          if (i === 1 && index === f.repeatWrite) w.onPut(key);
        });
      },
      close: () => undefined,
    }),
    watch(_member, _prefix, _from, callbacks) {
      watchers.push(callbacks);
      return Promise.resolve({ close: () => undefined });
    },
    grantLease: () => Promise.resolve(String(++leases)),
    revokeLease: () => Promise.resolve(),
    keepAliveSession: () => ({ keepAlive: () => tick(), close: () => undefined }),
    lockSession,
    close: () => undefined,
  };
}

const lockRun = (f: Faults) => runLockHandoffs(fakeTarget(f), { contenders: 4, routing: 'spread', ttlSeconds: 60, warmupMs: 0, durationMs: 100 });
const watchRun = (f: Faults) => runWatchFanout(fakeTarget(f), { watchers: 3, warmupMs: 0, durationMs: 100, valueBytes: 4, rate: 0, drainMs: 100 });

test('a faithful lock: handoffs counted, no overlap, tokens grow', async () => {
  const r = await lockRun({});
  assert.ok(r.acquisitions > 10, `only ${r.acquisitions} acquisitions`);
  assert.deepEqual([r.overlaps, r.fencingViolations, r.errors, r.firstProblem], [0, 0, 0, null]);
});

test('a lock that lets two hold at once is caught as overlaps', async () => {
  const r = await lockRun({ isLockShared: true });
  assert.ok(r.overlaps > 0, 'no overlap counted');
  assert.match(r.firstProblem ?? '', /while contender \d+ held the lock/);
});

test('fencing tokens that go backwards are caught', async () => {
  const r = await lockRun({ isTokenBackwards: true });
  assert.ok(r.fencingViolations > 0);
  assert.equal(r.overlaps, 0);
});

test('a faithful watch: every watcher gets every write once, in order', async () => {
  const r = await watchRun({});
  assert.ok(r.expected > 3);
  assert.deepEqual([r.delivered, r.outOfOrder, r.watchEnded, r.firstProblem], [r.expected, 0, 0, null]);
  assert.ok(r.eventsPerSecond > 0);
});

test('a dropped event and a repeated one are caught', async () => {
  const dropped = await watchRun({ dropWrite: 2 });
  assert.equal(dropped.delivered, dropped.expected - 1);
  assert.ok(dropped.outOfOrder > 0);
  const repeated = await watchRun({ repeatWrite: 2 });
  assert.equal(repeated.delivered, repeated.expected + 1);
  assert.ok(repeated.outOfOrder > 0);
});
