// MVCC revisions (API.md "Coordination"; etcd's semantics): one store revision per write request
// that changes something, records with createRevision, modRevision, version and lease, reads at
// any revision back to the last compaction, and the history of changes those reads and watches
// are answered from. A model keeps every revision's whole state and checks the store against it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvError, KvStateMachine, compareKeys, type Command, type KvRecord } from '../../src/kv/index.js';
import { Driver, bytes, commandArb, entryOf } from './helpers.js';

test('the revision starts at 1 and rises by one per write request that changes something', () => {
  const d = new Driver();
  assert.equal(d.sm.revision, 1);
  d.put('a', '1');
  assert.equal(d.sm.revision, 2);
  d.del('missing');
  assert.equal(d.sm.revision, 2, 'deleting a missing key changes nothing');
  d.put('a', '2', { prevValue: bytes('nope') });
  assert.equal(d.sm.revision, 2, 'a failed compare changes nothing');
  const r = d.apply({ type: 'txn', compare: [], success: [{ type: 'put', key: 'b', value: bytes('x') }, { type: 'put', key: 'c', value: bytes('y') }, { type: 'delete', key: 'a' }], failure: [] });
  assert.equal(r.type === 'txn' && r.revision, 3, 'a transaction counts once');
  assert.deepEqual(
    d.sm.events.slice(-3).map((e) => [e.revision, e.key, e.record === null ? 'delete' : 'put']),
    [[3, 'b', 'put'], [3, 'c', 'put'], [3, 'a', 'delete']],
  );
  d.apply({ type: 'txn', compare: [], success: [{ type: 'get', key: 'b' }], failure: [] });
  assert.equal(d.sm.revision, 3, 'a read-only transaction changes nothing');
  d.apply({ type: 'leaseGrant', id: 7, ttlSeconds: 10 });
  assert.equal(d.sm.revision, 3, 'granting a lease changes no key');
  d.put('b', 'x');
  assert.equal(d.sm.revision, 4, 'a put always changes the key, even to the same value');
});

test('createRevision, modRevision and version follow a key across updates, delete and re-creation', () => {
  const d = new Driver();
  d.put('k', 'a'); // rev 2
  d.put('other', 'x'); // rev 3
  d.put('k', 'b'); // rev 4
  assert.deepEqual(pick(d.sm.get('k')!), { createRevision: 2, modRevision: 4, version: 2, lease: 0 });
  d.del('k'); // rev 5
  d.put('k', 'c'); // rev 6
  assert.deepEqual(pick(d.sm.get('k')!), { createRevision: 6, modRevision: 6, version: 1, lease: 0 });
});

test('a read at a past revision sees the store as it was; COMPACTED before the compaction, FUTURE_REVISION after now', () => {
  const d = new Driver();
  d.put('a', '1'); // 2
  d.put('b', '1'); // 3
  d.put('a', '2'); // 4
  d.del('b'); // 5
  d.put('c', '1'); // 6
  assert.equal(d.sm.get('a', 3)?.value.toString(), bytes('1').toString());
  assert.equal(d.sm.get('b', 4)?.modRevision, 3);
  assert.equal(d.sm.get('b', 5), null);
  assert.equal(d.sm.get('c', 5), null);
  assert.deepEqual(d.sm.list('', 10, Infinity, 4).items.map((r) => [r.key, r.modRevision]), [['a', 4], ['b', 3]]);
  assert.deepEqual(d.sm.list('', 10, Infinity, 1).items, [], 'revision 1: the empty store');
  assert.deepEqual(d.sm.list('', 1, Infinity, 4), { items: [d.sm.get('a', 4)!], more: true });
  assert.throws(() => d.sm.get('a', 7), (e: unknown) => e instanceof KvError && e.code === 'FUTURE_REVISION');
  assert.equal(d.apply({ type: 'compact', revision: 4 }).type, 'compact');
  assert.equal(d.sm.compactRevision, 4);
  assert.equal(d.sm.get('b', 4)?.modRevision, 3, 'the compact revision itself stays readable');
  assert.throws(() => d.sm.get('a', 3), (e: unknown) => e instanceof KvError && e.code === 'COMPACTED' && /oldest readable revision is 4/.test(e.message));
  assert.throws(() => d.sm.list('', 10, Infinity, 2), (e: unknown) => e instanceof KvError && e.code === 'COMPACTED');
  const again = d.apply({ type: 'compact', revision: 4 });
  assert.equal(again.type === 'rejected' && again.error, 'COMPACTED', 'compacting at or below the last compaction is refused');
  const future = d.apply({ type: 'compact', revision: 99 });
  assert.equal(future.type === 'rejected' && future.error, 'FUTURE_REVISION');
  assert.deepEqual(d.sm.events.map((e) => e.revision), [4, 5, 6], 'events before the compact revision are gone');
});

/** The state as of every revision: the model a store must agree with. */
class Model {
  states: Map<string, KvRecord>[] = [new Map(), new Map()]; // revisions 0 (unused) and 1
  compact = 0;
  observe(sm: KvStateMachine): void {
    while (this.states.length <= sm.revision) {
      const state = new Map<string, KvRecord>();
      for (const rec of sm.list('', 1_000_000).items) state.set(rec.key, rec);
      this.states.push(state);
    }
    this.compact = sm.compactRevision;
  }
}

test('property: reads at every revision since the compaction equal the store as it was then, across compactions, leases and snapshots', () => {
  fc.assert(
    fc.property(fc.array(commandArb, { minLength: 1, maxLength: 60 }), fc.nat(), (cmds, cut) => {
      let sm = new KvStateMachine();
      const model = new Model();
      const at = cut % cmds.length;
      cmds.forEach((cmd: Command, i) => {
        if (i === at) {
          // A replica that restores a snapshot here must answer the same from then on.
          const restored = new KvStateMachine();
          restored.restore(sm.snapshot());
          sm = restored;
        }
        const before = sm.revision;
        sm.apply(entryOf(i + 1, cmd));
        assert.ok(sm.revision === before || sm.revision === before + 1, 'at most one revision per command');
        model.observe(sm);
      });
      for (let rev = 1; rev <= sm.revision; rev++) {
        if (rev < model.compact) {
          assert.throws(() => sm.list('', 1000, Infinity, rev), (e: unknown) => e instanceof KvError && e.code === 'COMPACTED');
          continue;
        }
        const expected = [...model.states[rev]!.values()].sort((x, y) => compareKeys(x.key, y.key));
        assert.deepEqual(sm.list('', 1000, Infinity, rev).items.map(pickAll), expected.map(pickAll), `list at ${rev}`);
        for (const key of ['a', 'ab', 'b/1', 'z', 'never']) {
          const want = model.states[rev]!.get(key);
          assert.deepEqual(sm.get(key, rev) === null ? null : pickAll(sm.get(key, rev)!), want === undefined ? null : pickAll(want), `get ${key} at ${rev}`);
        }
        assert.deepEqual(sm.list('b/', 1000, Infinity, rev).items.map((r) => r.key), expected.filter((r) => r.key.startsWith('b/')).map((r) => r.key));
      }
      // The history is the sequence of changes between consecutive states.
      for (const ev of sm.events) {
        const before = model.states[ev.revision - 1]!;
        const after = model.states[ev.revision]!;
        if (ev.record === null) assert.ok(!after.has(ev.key) || after.get(ev.key)!.modRevision !== ev.revision);
        else assert.equal(ev.record.modRevision, ev.revision);
        const first = sm.events.find((e) => e.revision === ev.revision && e.key === ev.key)!;
        if (first === ev) assert.deepEqual(ev.prev === null ? null : pickAll(ev.prev.toRecord()), before.has(ev.key) ? pickAll(before.get(ev.key)!) : null);
      }
    }),
    { numRuns: 400, seed: 1212 },
  );
});

test('a snapshot writes each record once: the history refers to current records and earlier events', () => {
  const d = new Driver();
  const value = new Uint8Array(1000).fill(7);
  for (let i = 0; i < 50; i++) d.put(`k${i}`, value);
  const fresh = d.sm.snapshot().length;
  assert.ok(fresh < 50 * 1000 + 50 * 60, `${fresh} bytes for 50 keys of 1000 bytes and their creation events`);
  for (let i = 0; i < 50; i++) d.put(`k${i}`, value);
  const twice = d.sm.snapshot().length;
  // Each key now has a superseded record (kept for reads at old revisions) and a current one.
  assert.ok(twice < 100 * 1000 + 100 * 80, `${twice} bytes`);
  d.apply({ type: 'compact', revision: d.sm.revision });
  assert.ok(d.sm.snapshot().length < 50 * 1000 + 50 * 60 + 1100, 'compaction drops the superseded records from snapshots');
});

function pick(r: KvRecord): Pick<KvRecord, 'createRevision' | 'modRevision' | 'version' | 'lease'> {
  return { createRevision: r.createRevision, modRevision: r.modRevision, version: r.version, lease: r.lease };
}

function pickAll(r: KvRecord): unknown {
  return { ...r, value: [...r.value] };
}
