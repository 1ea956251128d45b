// The fault suite's coordination checks must be able to fail: fed histories with a second lock
// holder, a token granted to two leases, fenced writes out of token order, a lease that expired
// while kept alive, and watch streams that skip, repeat or reorder, each is reported; the
// legitimate cases (a holder whose lease surely lapsed, a lease re-asking for its own lock) are not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLeases, checkLocks, type LockGrant, type LockWorkloadResult } from '../../src/faults/coordination-workloads.js';
import { checkWatches, type WatchWorkloadResult } from '../../src/faults/watch-workload.js';

const grant = (client: number, lease: number, token: number, call: number, ret: number, releaseCall: number | null, acked: number[], ttlMs = 2000): LockGrant => ({ client, lease, token, call, ret, releaseCall, acked, ttlMs });
const locks = (grants: LockGrant[], fenced: { call: number; ret: number; value: number }[] = []): LockWorkloadResult => ({ grants, fenced, attempts: grants.length, refused: 0, refusals: new Map() });

test('locks: a grant inside a window in which another client surely held the lock is reported', () => {
  const a = grant(0, 1, 10, 0, 10, 1000, [0, 400, 800]);
  const b = grant(1, 2, 11, 500, 520, 600, [450]);
  assert.equal(checkLocks(locks([a, b])).length, 1);
  // The holder's renewals stopped more than a TTL before: its lease may have ended, no violation.
  const lapsed = grant(0, 1, 10, 0, 10, 5000, [0]);
  const later = grant(1, 2, 11, 2500, 2600, 2700, [2400]);
  assert.deepEqual(checkLocks(locks([lapsed, later])), []);
  // After the holder's release call, fine too.
  assert.deepEqual(checkLocks(locks([a, grant(1, 2, 11, 1001, 1010, 1100, [1000])])), []);
});

test('locks: one token for two leases, and fenced writes out of order, are reported; a lease re-asking is not', () => {
  assert.equal(checkLocks(locks([grant(0, 1, 10, 0, 10, 20, [0]), grant(1, 2, 10, 5000, 5010, 5020, [5000])])).length, 1);
  assert.deepEqual(checkLocks(locks([grant(0, 1, 10, 0, 10, 20, [0]), grant(0, 1, 10, 30, 40, 50, [0])])), []);
  const backwards = checkLocks(locks([], [{ call: 0, ret: 10, value: 12 }, { call: 20, ret: 30, value: 11 }]));
  assert.equal(backwards.length, 1);
  assert.deepEqual(checkLocks(locks([], [{ call: 0, ret: 10, value: 11 }, { call: 20, ret: 30, value: 12 }])), []);
  const internal = locks([]);
  internal.refusals.set('500 INTERNAL', 3);
  assert.equal(checkLocks(internal).length, 1, 'a node answering 500 is a bug');
});

test('leases: a key missing while its lease was surely renewed is reported; after renewals stop it may go', () => {
  const probe = { client: 0, lease: 7, key: 'k', acked: [0, 400, 800], ttlMs: 2000, stoppedAt: 900, reads: [{ call: 1000, ret: 1010, value: false }] };
  assert.equal(checkLeases({ probes: [probe] }).length, 1);
  assert.deepEqual(checkLeases({ probes: [{ ...probe, reads: [{ call: 3000, ret: 3010, value: false }] }] }), []);
});

test('watch: a skipped, repeated, reordered or changed event is reported', () => {
  const base = (events: { revision: number; type: string; key: string; value: string }[]): WatchWorkloadResult => ({
    prefix: 'w/',
    acked: new Map([['w/1', { revision: 5, value: 'v1' }], ['w/2', { revision: 6, value: 'v2' }]]),
    attempted: new Set(['v1', 'v2']),
    watchers: [{ id: 0, events, reconnects: 1, fatal: null }],
    startRevision: 4,
  });
  const e1 = { revision: 5, type: 'put', key: 'w/1', value: 'v1' };
  const e2 = { revision: 6, type: 'put', key: 'w/2', value: 'v2' };
  assert.deepEqual(checkWatches(base([e1, e2])), []);
  assert.equal(checkWatches(base([e1])).length, 1, 'skipped');
  assert.ok(checkWatches(base([e1, e1, e2])).length >= 1, 'repeated');
  assert.ok(checkWatches(base([e2, e1])).length >= 1, 'reordered');
  assert.ok(checkWatches(base([e1, { ...e2, value: 'v9' }])).length >= 1, 'changed');
});
