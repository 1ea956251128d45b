// A restore in slices (beginRestore, what a restarting node runs) leaves the history and the
// idempotency table in the snapshot's bytes and serves at once: the history is decoded later, a
// slice per turn (loadInBackground), or at once by whatever reads it; an idempotency record is
// decoded when it is looked up, and most are evicted by newer ones without ever being decoded.
// These tests hold it to the store a restore() that decodes everything at once makes: the same
// answers, sizes and events all along, byte-identical snapshots, and the same refusals of a
// damaged snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvError, KvStateMachine, type Command, type HistoryEvent } from '../../src/kv/index.js';
import { bytes, commandArb, entryOf } from './helpers.js';

const OPTIONS = { idempotencyMaxRecords: 4, idempotencyTtlMs: 500_000 };

function restoredInSlices(data: Uint8Array, slice: number, options = OPTIONS): KvStateMachine {
  const sm = new KvStateMachine(options);
  const task = sm.beginRestore(data, slice);
  while (!task.step()) {
    // to the end
  }
  return sm;
}

function eventOf(ev: HistoryEvent): unknown {
  return { revision: ev.revision, key: ev.key, record: ev.record?.toRecord() ?? null, prev: ev.prev?.toRecord() ?? null };
}

/** Which events share a record object with which: event i's record is event j's prev. */
function sharing(events: readonly HistoryEvent[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < events.length; i++) {
    for (let j = i + 1; j < events.length; j++) if (events[i]!.record !== null && events[i]!.record === events[j]!.prev) out.push(`${i}->${j}`);
  }
  return out;
}

/** Compactions across the whole range of revisions, so that some fall inside a history still pending. */
const laterCommandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: commandArb },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('compact' as const), time: fc.nat({ max: 2_000_000 }), revision: fc.integer({ min: 1, max: 120 }) }, { noNullPrototype: true }) },
);

test('§7 property: a store restored with its history left encoded answers, sizes and snapshots as one restored at once, however the decode interleaves', () => {
  let pendingRuns = 0;
  fc.assert(
    fc.property(
      fc.array(commandArb, { minLength: 1, maxLength: 60 }),
      fc.array(fc.tuple(laterCommandArb, fc.nat({ max: 3 }), fc.boolean()), { maxLength: 60 }),
      fc.integer({ min: 1, max: 64 }),
      (before, after, slice) => {
        const source = new KvStateMachine(OPTIONS);
        before.forEach((cmd, i) => source.apply(entryOf(i + 1, cmd)));
        // A few changes last, so that most snapshots hold some history past their compaction.
        ['a', 'b/1', 'é'].forEach((key, i) => source.apply(entryOf(before.length + i + 1, { type: 'put', key, value: bytes(key), time: 2_000_000 })));
        const data = source.snapshot();
        const whole = new KvStateMachine(OPTIONS);
        whole.restore(data);
        const lazy = restoredInSlices(data, slice);
        assert.equal(whole.isLoadingInBackground, false, 'restore() decodes everything');
        assert.equal(lazy.isLoadingInBackground, whole.eventCount > 0, 'beginRestore leaves the history encoded');
        if (lazy.isLoadingInBackground) pendingRuns++;
        const same = (what: string): void => {
          assert.equal(lazy.revision, whole.revision, `${what}: revision`);
          assert.equal(lazy.compactRevision, whole.compactRevision, `${what}: compact revision`);
          assert.equal(lazy.eventCount, whole.eventCount, `${what}: event count`);
          assert.equal(lazy.historyBytes, whole.historyBytes, `${what}: history bytes`);
          assert.equal(lazy.sizeBytes, whole.sizeBytes, `${what}: size`);
          assert.equal(lazy.idempotencyRecords, whole.idempotencyRecords, `${what}: idempotency records`);
        };
        same('restored');
        let index = source.appliedIndex;
        for (const [cmd, slices, readsPast] of after) {
          index++;
          const revision = whole.revision;
          // The results of both, and the events each command adds, read as a watch hub reads them.
          assert.deepEqual(lazy.apply(entryOf(index, cmd)), whole.apply(entryOf(index, cmd)), `result of ${cmd.type} at ${index}`);
          const added = (sm: KvStateMachine): unknown[] => {
            const { events, index: from } = sm.eventsFrom(revision + 1);
            return events.slice(from).map(eventOf);
          };
          assert.deepEqual(added(lazy), added(whole), `events of ${index}`);
          same(`after ${index}`);
          for (let i = 0; i < slices; i++) lazy.loadInBackground();
          if (readsPast && whole.compactRevision <= 1) {
            // A read at a past revision decodes what is left at once.
            assert.deepEqual(lazy.list('', 100, Infinity, 1), whole.list('', 100, Infinity, 1), 'list at revision 1');
            assert.equal(lazy.isLoadingInBackground, false);
          }
        }
        for (let rev = Math.max(1, whole.compactRevision); rev <= whole.revision; rev++) {
          assert.deepEqual(lazy.list('', 100, Infinity, rev), whole.list('', 100, Infinity, rev), `list at ${rev}`);
        }
        assert.deepEqual(lazy.events.map(eventOf), whole.events.map(eventOf), 'the same history');
        assert.deepEqual(sharing(lazy.events), sharing(whole.events), 'the same records shared between events');
        assert.deepEqual(Buffer.from(lazy.snapshot()), Buffer.from(whole.snapshot()), 'byte-identical snapshots');
        assert.equal(lazy.isLoadingInBackground, false);
      },
    ),
    { numRuns: 400, seed: 1205 },
  );
  assert.ok(pendingRuns === 400, `only ${pendingRuns} runs of 400 had a history left encoded`);
});

test('loadInBackground decodes a slice per call and ends; a store restored at once has nothing to load', () => {
  const source = new KvStateMachine();
  for (let i = 1; i <= 200; i++) source.apply(entryOf(i, { type: 'put', key: `k${i % 50}`, value: bytes(`v${i}`), time: i }));
  const data = source.snapshot();
  const lazy = new KvStateMachine();
  const task = lazy.beginRestore(data, 64);
  while (!task.step()) {
    // to the end
  }
  assert.equal(lazy.isLoadingInBackground, true);
  let calls = 0;
  while (!lazy.loadInBackground()) calls++;
  assert.ok(calls >= 5, `${calls} slices for 200 events at 64 per slice's worth`);
  assert.equal(lazy.isLoadingInBackground, false);
  assert.equal(lazy.loadInBackground(), true);
  assert.deepEqual(lazy.events.map(eventOf), source.events.map(eventOf));
  const whole = new KvStateMachine();
  whole.restore(data);
  assert.equal(whole.loadInBackground(), true);
});

test("a damaged history is refused by the restore in slices itself, as restore() refuses it: nothing is left to fail later", () => {
  const source = new KvStateMachine();
  const keys = ['a', 'b', 'c', 'é', 'd/1'];
  for (let i = 1; i <= 40; i++) {
    const key = keys[i % keys.length]!;
    if (i % 7 === 0) source.apply(entryOf(i, { type: 'delete', key, time: i }));
    else source.apply(entryOf(i, { type: 'put', key, value: bytes(`value ${i}`), time: i, idempotencyKey: `c/${i}` }));
  }
  source.apply(entryOf(41, { type: 'compact', revision: 5, time: 41 }));
  const good = source.snapshot();
  let refused = 0;
  for (let at = 5; at < good.length; at++) {
    for (const flip of [0x01, 0x10, 0x80]) {
      const bad = good.slice();
      bad[at]! ^= flip;
      let wholeError: string | null = null;
      const whole = new KvStateMachine();
      try {
        whole.restore(bad);
      } catch (err) {
        assert.ok(err instanceof KvError && err.code === 'BAD_SNAPSHOT', `byte ${at} ^ ${flip}: ${String(err)}`);
        wholeError = err.message;
      }
      const lazy = new KvStateMachine();
      let lazyError: string | null = null;
      try {
        const task = lazy.beginRestore(bad, 16);
        while (!task.step()) {
          // to the end
        }
      } catch (err) {
        assert.ok(err instanceof KvError && err.code === 'BAD_SNAPSHOT', `byte ${at} ^ ${flip}: ${String(err)}`);
        lazyError = err.message;
      }
      assert.equal(lazyError, wholeError, `byte ${at} ^ ${flip}`);
      if (wholeError !== null) {
        refused++;
        continue;
      }
      // Accepted by both: the history decodes later without fail, to the same store.
      while (!lazy.loadInBackground()) {
        // to the end
      }
      assert.deepEqual(Buffer.from(lazy.snapshot()), Buffer.from(whole.snapshot()), `byte ${at} ^ ${flip}`);
    }
  }
  assert.ok(refused > good.length, `${refused} of ${3 * (good.length - 5)} damaged copies refused`);
});

test('idempotency records left in the snapshot answer a retry as the decoded table does, hit or miss, across evictions', () => {
  const options = { idempotencyMaxRecords: 3000, idempotencyTtlMs: 500_000 };
  const source = new KvStateMachine(options);
  let index = 0;
  for (let i = 0; i < 5000; i++) {
    const key = `k${i % 700}`;
    const cmd: Command = i % 5 === 0 ? { type: 'delete', key, time: 1000 + i, idempotencyKey: `client-${i % 17}/${i}` } : { type: 'put', key, value: bytes(`v${i}`), time: 1000 + i, idempotencyKey: `client-${i % 17}/${i}` };
    source.apply(entryOf(++index, cmd));
  }
  const data = source.snapshot();
  const whole = new KvStateMachine(options);
  whole.restore(data);
  const lazy = restoredInSlices(data, 4096, options);
  assert.equal(lazy.idempotencyRecords, 3000);
  // Retries of records in the table (the newest 3000), of evicted ones, and new keys, interleaved
  // with new records that evict the encoded ones from the oldest on.
  for (let i = 0; i < 6000; i++) {
    const seq = i % 3 === 0 ? 4999 - (i % 3000) : i % 3 === 1 ? i % 2000 : 10_000 + i;
    const cmd: Command = { type: 'put', key: `k${seq % 700}`, value: bytes(`again ${i}`), time: 7000 + i, idempotencyKey: `client-${seq % 17}/${seq}` };
    index++;
    assert.deepEqual(lazy.apply(entryOf(index, cmd)), whole.apply(entryOf(index, cmd)), `retry ${i} (seq ${seq})`);
  }
  assert.equal(lazy.idempotencyRecords, whole.idempotencyRecords);
  assert.equal(lazy.sizeBytes, whole.sizeBytes);
  assert.deepEqual(Buffer.from(lazy.snapshot()), Buffer.from(whole.snapshot()));
});

test('a key length written in a longer varint than it needs is read the same in place as by the decoder', () => {
  const source = new KvStateMachine();
  source.apply(entryOf(1, { type: 'put', key: 'k', value: bytes('v'), time: 1, idempotencyKey: 'cq/1' }));
  const good = source.snapshot();
  // The idempotency record's key, length 4 then "cq/1": its length as 0x84 0x00 instead of 0x04.
  const at = Buffer.from(good).lastIndexOf(Buffer.from([0x04, ...bytes('cq/1')]));
  assert.ok(at > 0);
  const padded = new Uint8Array([...good.subarray(0, at), 0x84, 0x00, ...good.subarray(at + 1)]);
  const whole = new KvStateMachine();
  whole.restore(padded);
  const lazy = restoredInSlices(padded, 16);
  const retry = entryOf(2, { type: 'put', key: 'k', value: bytes('again'), time: 2, idempotencyKey: 'cq/1' });
  assert.deepEqual(lazy.apply(retry), whole.apply(retry), 'the retry is found');
  assert.equal(whole.get('k')?.value.length, 1, 'and not applied again');
  assert.deepEqual(Buffer.from(lazy.snapshot()), Buffer.from(whole.snapshot()));
});
