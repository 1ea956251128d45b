// Snapshot and restore (§7): restore(snapshot()) reproduces the state exactly, snapshot at any
// point plus replay of the rest equals applying everything, and damaged snapshots are refused
// without touching the current state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvError, KvStateMachine, type Command } from '../../src/kv/index.js';
import { Driver, bytes, commandArb, entryOf } from './helpers.js';

function applyAll(sm: KvStateMachine, cmds: readonly Command[], from: number): unknown[] {
  return cmds.map((cmd, i) => sm.apply(entryOf(from + i, cmd)));
}

function stateOf(sm: KvStateMachine): unknown {
  return {
    items: sm.list('', 100_000),
    applied: sm.appliedIndex,
    clock: sm.logClock,
    idem: sm.idempotencyRecords,
    revision: sm.revision,
    compactRevision: sm.compactRevision,
    history: sm.events.map((ev) => ({ revision: ev.revision, key: ev.key, record: ev.record?.toRecord() ?? null, prev: ev.prev?.toRecord() ?? null })),
    leases: sm.leaseIds().map((id) => sm.lease(id)),
    size: sm.sizeBytes,
  };
}

test('restore(snapshot()) reproduces keys, indexes, versions, applied index and log clock', () => {
  const d = new Driver();
  d.put('a', 'x');
  d.put('b', new Uint8Array([0, 255, 1]));
  d.put('a', 'y');
  d.del('b');
  d.put('c/😀', 'z', { idempotencyKey: 'cl/1' });
  const sm = new KvStateMachine();
  sm.restore(d.sm.snapshot());
  assert.deepEqual(stateOf(sm), stateOf(d.sm));
  assert.deepEqual(sm.get('a'), { key: 'a', value: bytes('y'), createIndex: 1, modIndex: 3, version: 2, createRevision: 2, modRevision: 4, lease: 0 });
  assert.deepEqual(sm.snapshot(), d.sm.snapshot(), 'equal states encode to identical bytes');
});

test('restore replaces the whole state, including keys the snapshot does not have', () => {
  const d = new Driver();
  d.put('old', '1');
  const empty = new KvStateMachine().snapshot();
  d.sm.restore(empty);
  assert.equal(d.sm.get('old'), null);
  assert.equal(d.sm.size, 0);
  assert.equal(d.sm.appliedIndex, 0);
});

test('property: snapshot at a random point + replay of the rest equals applying everything', () => {
  fc.assert(
    fc.property(fc.array(commandArb, { maxLength: 40 }), fc.nat(), (cmds, cut) => {
      const at = cmds.length === 0 ? 0 : cut % (cmds.length + 1);
      const options = { idempotencyMaxRecords: 3, idempotencyTtlMs: 500_000 };
      const whole = new KvStateMachine(options);
      const wholeResults = applyAll(whole, cmds, 1);

      const prefix = new KvStateMachine(options);
      const prefixResults = applyAll(prefix, cmds.slice(0, at), 1);
      const replica = new KvStateMachine(options);
      replica.restore(prefix.snapshot());
      const restResults = applyAll(replica, cmds.slice(at), at + 1);

      assert.deepEqual([...prefixResults, ...restResults], wholeResults, 'same results');
      assert.deepEqual(stateOf(replica), stateOf(whole), 'same state');
      assert.deepEqual(replica.snapshot(), whole.snapshot(), 'byte-identical snapshots');
    }),
    { numRuns: 300 },
  );
});

test('a snapshot keeps results with records (txn responses, compare failures) byte-exactly', () => {
  const d = new Driver();
  d.put('k', new Uint8Array([1, 2, 3]));
  d.put('k', 'no', { prevExist: false, idempotencyKey: 'c/1' });
  d.apply({ type: 'txn', idempotencyKey: 'c/2', compare: [], success: [{ type: 'get', key: 'k' }, { type: 'range', prefix: '', limit: 5 }, { type: 'delete', key: 'q' }], failure: [] });
  d.sm.apply({ index: ++d.index, term: 1, type: 'normal', data: new Uint8Array([0x42]) });
  const replica = new KvStateMachine();
  replica.restore(d.sm.snapshot());
  const again = new Driver();
  again.sm.restore(d.sm.snapshot());
  again.index = d.index;
  assert.deepEqual(again.put('k', 'no', { prevExist: false, idempotencyKey: 'c/1' }), d.put('k', 'no', { prevExist: false, idempotencyKey: 'c/1' }));
  const txn = { type: 'txn' as const, idempotencyKey: 'c/2', compare: [], success: [], failure: [] };
  assert.deepEqual(again.apply(txn), d.apply(txn));
  assert.equal(replica.idempotencyRecords, 2);
});

test('a damaged snapshot is refused with BAD_SNAPSHOT and the current state is kept', () => {
  const d = new Driver();
  for (let i = 0; i < 20; i++) d.put(`key${i}`, `value${i}`, { idempotencyKey: `c/${i}` });
  const good = d.sm.snapshot();
  const target = new Driver();
  target.put('mine', 'stays');
  const refuse = (bad: Uint8Array, why: string): void => {
    assert.throws(() => target.sm.restore(bad), (err: unknown) => err instanceof KvError && err.code === 'BAD_SNAPSHOT', why);
    assert.deepEqual(target.sm.get('mine')?.value, bytes('stays'), `${why}: state kept`);
  };
  refuse(good.subarray(0, good.length - 1), 'truncated');
  refuse(new Uint8Array([...good, 0]), 'trailing byte');
  refuse(new Uint8Array(0), 'empty');
  const badVersion = good.slice();
  badVersion[4] = 99;
  refuse(badVersion, 'unknown version');
  const badMagic = good.slice();
  badMagic[0] = 0;
  refuse(badMagic, 'bad magic');
  for (let cut = 5; cut < good.length; cut += 37) refuse(good.subarray(0, cut), `truncated at ${cut}`);
});

test('a snapshot whose keys are out of order is refused', () => {
  const a = new Driver();
  a.put('b', '1');
  a.put('a', '1');
  const snap = a.sm.snapshot();
  // Swap the two one-byte keys in place: the records stay well-formed but the order breaks.
  const text = Buffer.from(snap);
  const ia = text.indexOf(Buffer.from([1, 0x61]));
  const ib = text.indexOf(Buffer.from([1, 0x62]));
  assert.ok(ia > 0 && ib > ia);
  text[ia + 1] = 0x62;
  text[ib + 1] = 0x61;
  assert.throws(() => new KvStateMachine().restore(new Uint8Array(text)), /strictly increasing/);
});

test('restore copies values out of the snapshot bytes', () => {
  const d = new Driver();
  d.put('k', 'value');
  const snap = d.sm.snapshot();
  const sm = new KvStateMachine();
  sm.restore(snap);
  snap.fill(0);
  assert.deepEqual(sm.get('k')?.value, bytes('value'));
});

test('restore accepts a view with a byte offset (a snapshot inside a larger buffer)', () => {
  const d = new Driver();
  d.put('k', 'v');
  const snap = d.sm.snapshot();
  const outer = new Uint8Array(snap.length + 10);
  outer.set(snap, 7);
  const sm = new KvStateMachine();
  sm.restore(outer.subarray(7, 7 + snap.length));
  assert.deepEqual(sm.get('k')?.value, bytes('v'));
});

test('a snapshot whose idempotency section names a key twice is refused, and the store keeps its state', () => {
  const a = new Driver();
  a.put('k', '1', { idempotencyKey: 'cl/1' });
  a.put('k', '2', { idempotencyKey: 'cl/2' });
  const snap = Buffer.from(a.sm.snapshot());
  // The idempotency keys are the snapshot's last strings: make the second one the first's twin.
  const second = snap.lastIndexOf(Buffer.from('cl/2'));
  assert.ok(second > snap.indexOf(Buffer.from('cl/1')));
  snap[second + 3] = 0x31;
  const target = new Driver();
  target.put('other', 'kept', { idempotencyKey: 'x/1' });
  const before = stateOf(target.sm);
  assert.throws(() => target.sm.restore(new Uint8Array(snap)), (e: unknown) => e instanceof KvError && e.code === 'BAD_SNAPSHOT' && /idempotency record 1 is duplicated/.test(e.message));
  assert.deepEqual(stateOf(target.sm), before);
  // The undamaged snapshot restores, and its table answers a retry with its first result.
  target.sm.restore(a.sm.snapshot());
  target.index = a.index;
  assert.equal(target.sm.idempotencyRecords, 2);
  assert.deepEqual(target.put('k', '3', { idempotencyKey: 'cl/2' }), { type: 'put', index: 2, revision: 3 });
  assert.equal(target.sm.get('k')?.version, 2);
});
