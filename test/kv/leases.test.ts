// Leases in the state machine (API.md "Coordination"; etcd's semantics): granted and revoked
// through the log, keys attached by a put and detached by a put without one or a delete, and
// every attached key deleted, at one revision, when the lease ends. When a lease ends is the
// leader's to decide (src/server/leases.ts); the store only applies the decision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine } from '../../src/kv/index.js';
import { Driver, bytes } from './helpers.js';

test('a put naming a lease that does not exist is refused and writes nothing', () => {
  const d = new Driver();
  const r = d.put('k', 'v', { lease: 42 });
  assert.equal(r.type === 'rejected' && r.error, 'LEASE_NOT_FOUND');
  assert.equal(d.sm.get('k'), null);
  assert.equal(d.sm.revision, 1);
  const t = d.apply({ type: 'txn', compare: [], success: [{ type: 'put', key: 'a', value: bytes('1') }, { type: 'put', key: 'b', value: bytes('2'), lease: 42 }], failure: [] });
  assert.equal(t.type === 'rejected' && t.error, 'LEASE_NOT_FOUND', 'the whole transaction, not just its second put');
  assert.equal(d.sm.get('a'), null);
});

test('grant, attach, detach by a put without the lease and by a delete, revoke deletes the rest at one revision', () => {
  const d = new Driver();
  assert.deepEqual(d.apply({ type: 'leaseGrant', id: 5, ttlSeconds: 30 }), { type: 'leaseGrant', index: 1, revision: 1, id: 5, ttlSeconds: 30 });
  const dup = d.apply({ type: 'leaseGrant', id: 5, ttlSeconds: 9 });
  assert.equal(dup.type === 'rejected' && dup.error, 'LEASE_EXISTS');
  for (const k of ['s/b', 's/a', 's/c', 'kept', 'gone']) d.put(k, 'v', { lease: 5 });
  assert.equal(d.sm.get('s/a')?.lease, 5);
  d.put('kept', 'v2'); // no lease: detached
  d.del('gone');
  assert.deepEqual(d.sm.lease(5), { id: 5, ttlSeconds: 30, keys: ['s/a', 's/b', 's/c'] });
  const rev = d.sm.revision;
  const r = d.apply({ type: 'leaseRevoke', id: 5, expired: true });
  assert.deepEqual(r, { type: 'leaseRevoke', index: d.index, revision: rev + 1, id: 5, deleted: 3 });
  assert.deepEqual(d.sm.list('s/', 10).items, []);
  assert.equal(d.sm.get('kept')?.lease, 0);
  assert.deepEqual(d.sm.events.filter((e) => e.revision === rev + 1).map((e) => [e.key, e.record]), [['s/a', null], ['s/b', null], ['s/c', null]], 'in key order, one revision');
  assert.equal(d.sm.lease(5), null);
  const again = d.apply({ type: 'leaseRevoke', id: 5 });
  assert.equal(again.type === 'rejected' && again.error, 'LEASE_NOT_FOUND');
  assert.equal(d.sm.revision, rev + 1);
});

test('a lease with no keys ends without a revision; moving a key between leases detaches it from the first', () => {
  const d = new Driver();
  d.apply({ type: 'leaseGrant', id: 1, ttlSeconds: 10 });
  d.apply({ type: 'leaseGrant', id: 2, ttlSeconds: 10 });
  d.put('k', 'v', { lease: 1 });
  d.put('k', 'v', { lease: 2 });
  assert.deepEqual(d.sm.lease(1)?.keys, []);
  assert.deepEqual(d.sm.lease(2)?.keys, ['k']);
  const rev = d.sm.revision;
  d.apply({ type: 'leaseRevoke', id: 1 });
  assert.equal(d.sm.revision, rev);
  assert.ok(d.sm.get('k') !== null);
});

test('leases and their keys survive snapshot and restore, and a restored store revokes the same', () => {
  const d = new Driver();
  d.apply({ type: 'leaseGrant', id: 3, ttlSeconds: 60 });
  d.apply({ type: 'leaseGrant', id: 9, ttlSeconds: 5 });
  d.put('x', '1', { lease: 3 });
  d.put('y', '1', { lease: 9 });
  const r = new KvStateMachine();
  r.restore(d.sm.snapshot());
  assert.deepEqual(r.leaseIds(), [3, 9]);
  assert.deepEqual(r.lease(3), { id: 3, ttlSeconds: 60, keys: ['x'] });
  const restored = new Driver();
  restored.sm.restore(d.sm.snapshot());
  restored.index = d.index;
  assert.deepEqual(restored.apply({ type: 'leaseRevoke', id: 9 }), d.apply({ type: 'leaseRevoke', id: 9 }));
  assert.deepEqual(restored.sm.snapshot(), d.sm.snapshot());
});

test('lease ids and TTLs out of range are refused at proposal and at apply', () => {
  const d = new Driver();
  assert.throws(() => d.sm.validate({ type: 'leaseGrant', id: 0, ttlSeconds: 5, time: 1 }), /lease id/);
  assert.throws(() => d.sm.validate({ type: 'leaseGrant', id: 1, ttlSeconds: 0, time: 1 }), /ttlSeconds/);
  assert.throws(() => d.sm.validate({ type: 'put', key: 'k', value: bytes('v'), lease: -1, time: 1 }), /lease id/);
  const r = d.apply({ type: 'leaseGrant', id: 1, ttlSeconds: 0 });
  assert.equal(r.type === 'rejected' && r.error, 'BAD_COMMAND');
});

test('leaseVersion changes with every grant, revoke and restore (and nothing else); leaseTtlSeconds and leaseCount read without the keys', () => {
  const d = new Driver();
  const v0 = d.sm.leaseVersion;
  d.apply({ type: 'leaseGrant', id: 1, ttlSeconds: 10 });
  const v1 = d.sm.leaseVersion;
  assert.notEqual(v1, v0);
  d.put('k', 'v', { lease: 1 });
  d.put('k2', 'v');
  assert.equal(d.sm.leaseVersion, v1, 'attaching a key changes no lease');
  assert.equal(d.sm.leaseTtlSeconds(1), 10);
  assert.equal(d.sm.leaseTtlSeconds(2), null);
  assert.equal(d.sm.leaseCount, 1);
  d.apply({ type: 'leaseGrant', id: 1, ttlSeconds: 10 }); // refused: LEASE_EXISTS
  assert.equal(d.sm.leaseVersion, v1);
  d.apply({ type: 'leaseRevoke', id: 1 });
  assert.notEqual(d.sm.leaseVersion, v1);
  assert.equal(d.sm.leaseCount, 0);
  const v2 = d.sm.leaseVersion;
  d.sm.restore(new KvStateMachine().snapshot());
  assert.notEqual(d.sm.leaseVersion, v2);
});
