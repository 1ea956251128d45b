// §7 snapshots written in slices while the store goes on applying (KvStateMachine.beginSnapshot,
// issue 11: a large store's snapshot must not hold the event loop for its whole length): the
// bytes are exactly those snapshot() returned when it began, whatever is applied between slices,
// and readable by the one decoder there is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvError, KvStateMachine } from '../../src/kv/index.js';
import type { Command } from '../../src/kv/index.js';
import { bytes, commandArb, entryOf, keyArb, valueArb } from './helpers.js';

/** Mostly plain puts and deletes of the few keys there are: every slice has keys to change under it. */
const changeArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ type: fc.constant('put' as const), key: keyArb, value: valueArb, time: fc.nat({ max: 100 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('delete' as const), key: keyArb, time: fc.nat({ max: 100 }) }) },
  { weight: 1, arbitrary: commandArb },
);

test('§7 property: a snapshot written in slices, with commands applied between them, is the snapshot of the moment it began', () => {
  fc.assert(
    fc.property(fc.array(changeArb, { maxLength: 40 }), fc.array(changeArb, { maxLength: 40 }), fc.integer({ min: 1, max: 64 }), (before, during, sliceBytes) => {
      const sm = new KvStateMachine({ idempotencyMaxRecords: 2 });
      let index = 0;
      for (const cmd of before) sm.apply(entryOf(++index, cmd));
      const expected = sm.snapshot();
      const inProgress = sm.beginSnapshot();
      let out: Uint8Array | null = null;
      for (let i = 0; out === null; i++) {
        out = inProgress.step(sliceBytes);
        const cmd = during[i];
        if (cmd !== undefined) sm.apply(entryOf(++index, cmd));
      }
      for (const cmd of during.slice(Math.min(during.length, index - before.length))) sm.apply(entryOf(++index, cmd));
      assert.deepEqual(Buffer.from(out), Buffer.from(expected));
      const replica = new KvStateMachine({ idempotencyMaxRecords: 2 });
      replica.restore(out);
      assert.deepEqual(Buffer.from(replica.snapshot()), Buffer.from(expected), 'it restores to the state it was taken of');
      // And the store that went on applying snapshots its own, newer state.
      const fresh = new KvStateMachine({ idempotencyMaxRecords: 2 });
      for (let i = 1; i <= index; i++) fresh.apply(entryOf(i, i <= before.length ? before[i - 1]! : during[i - before.length - 1]!));
      assert.deepEqual(Buffer.from(sm.snapshot()), Buffer.from(fresh.snapshot()));
    }),
    { numRuns: 500 },
  );
});

test('a snapshot in slices: one at a time; restore() abandons it; so does abandon()', () => {
  const sm = new KvStateMachine();
  for (let i = 1; i <= 50; i++) sm.apply(entryOf(i, { type: 'put', key: `k${String(i).padStart(3, '0')}`, value: bytes('v'.repeat(i)), time: i }));
  const first = sm.beginSnapshot();
  assert.throws(() => sm.beginSnapshot(), /already being written/);
  assert.equal(first.step(16), null);
  const data = sm.snapshot.call(new KvStateMachine());
  sm.restore(data);
  assert.throws(() => first.step(16), /abandoned/);
  const second = sm.beginSnapshot();
  second.abandon();
  assert.throws(() => second.step(16), /abandoned/);
  assert.ok(sm.beginSnapshot().step(Number.POSITIVE_INFINITY) !== null, 'a new one can begin');
});

test("a wrapper's header goes in front of a snapshot without a copy of it: prefix + the snapshot's bytes", () => {
  const sm = new KvStateMachine();
  for (let i = 1; i <= 20; i++) sm.apply(entryOf(i, { type: 'put', key: `k${i}`, value: bytes('v'.repeat(i)), time: i }));
  const prefix = new Uint8Array([9, 8, 7]);
  const out = sm.beginSnapshot(prefix).step(Number.POSITIVE_INFINITY)!;
  assert.deepEqual(Buffer.from(out), Buffer.concat([Buffer.from(prefix), Buffer.from(sm.snapshot())]));
});

test('§7 property: a restore in slices (beginRestore) ends in the state restore() makes, and the store is untouched until its last step', () => {
  fc.assert(
    fc.property(fc.array(commandArb, { maxLength: 40 }), fc.array(changeArb, { maxLength: 10 }), fc.integer({ min: 1, max: 8 }), (cmds, mine, slice) => {
      const options = { idempotencyMaxRecords: 3, idempotencyTtlMs: 500_000 };
      const source = new KvStateMachine(options);
      cmds.forEach((cmd, i) => source.apply(entryOf(i + 1, cmd)));
      const data = source.snapshot();
      const whole = new KvStateMachine(options);
      whole.restore(data);
      const target = new KvStateMachine(options);
      mine.forEach((cmd, i) => target.apply(entryOf(i + 1, cmd)));
      const before = target.snapshot();
      const task = target.beginRestore(data, slice);
      while (!task.step()) {
        assert.deepEqual(Buffer.from(target.snapshot()), Buffer.from(before), 'untouched between slices');
      }
      assert.deepEqual(Buffer.from(target.snapshot()), Buffer.from(whole.snapshot()), 'the state restore() makes');
      assert.equal(target.appliedIndex, whole.appliedIndex);
    }),
    { numRuns: 300 },
  );
});

test('a restore in slices: abandon() leaves the store as it was; a damaged snapshot throws from a step, the store kept', () => {
  const source = new KvStateMachine();
  for (let i = 1; i <= 50; i++) source.apply(entryOf(i, { type: 'put', key: `k${String(i).padStart(3, '0')}`, value: bytes('v'.repeat(i)), time: i }));
  const data = source.snapshot();
  const target = new KvStateMachine();
  target.apply(entryOf(1, { type: 'put', key: 'mine', value: bytes('stays'), time: 1 }));
  const abandoned = target.beginRestore(data, 4);
  assert.equal(abandoned.step(), false);
  abandoned.abandon();
  assert.throws(() => abandoned.step(), /over/);
  assert.deepEqual(target.get('mine')?.value, bytes('stays'));
  assert.equal(target.get('k001'), null);
  const truncated = target.beginRestore(data.subarray(0, data.length - 1), 4);
  assert.throws(() => {
    while (!truncated.step()) {
      // until it finds the damage
    }
  }, (err: unknown) => err instanceof KvError && err.code === 'BAD_SNAPSHOT');
  assert.deepEqual(target.get('mine')?.value, bytes('stays'), 'the old state kept');
  const good = target.beginRestore(data, 4);
  while (!good.step()) {
    // to the end
  }
  assert.equal(target.get('mine'), null);
  assert.deepEqual(target.get('k050')?.value, bytes('v'.repeat(50)));
});

test('a finished snapshot trims the overlay in the slices after it, to what a snapshot at once leaves; writes meanwhile stay; it ends however fast keys come; the next snapshot finishes a trim left over', () => {
  const build = (): { sm: KvStateMachine; index: number } => {
    const sm = new KvStateMachine();
    let index = 0;
    const key = (i: number): string => `k${String(i).padStart(4, '0')}`;
    for (let i = 0; i < 2000; i++) sm.apply(entryOf(++index, { type: 'put', key: key(i), value: bytes(`v${i}`), time: index }));
    sm.apply(entryOf(++index, { type: 'compact', revision: sm.revision, time: index }));
    sm.snapshot();
    // 600 keys changed since the base, the history compacted past all but the last 50 changes:
    // the overlay holds 600 records, of which a trim keeps the 50 the history refers to.
    for (let i = 0; i < 600; i++) sm.apply(entryOf(++index, { type: 'put', key: key(i * 3), value: bytes(`w${i}`), time: index }));
    sm.apply(entryOf(++index, { type: 'compact', revision: sm.revision - 49, time: index }));
    return { sm, index };
  };
  const eager = build().sm;
  const before = eager.overlayKeys;
  assert.ok(before >= 600, `${before}`);
  const expected = eager.snapshot();
  const kept = eager.overlayKeys;
  assert.ok(kept >= 50 && kept <= 51, `a snapshot at once trims at once to what the history refers to: ${kept}`);

  const { sm, index: at } = build();
  let index = at;
  const inProgress = sm.beginSnapshot();
  const sizes: number[] = [];
  let out: Uint8Array | null = null;
  while (out === null) {
    out = inProgress.step(256 * 100); // 100 keys a slice once the records are written
    sizes.push(sm.overlayKeys);
  }
  assert.deepEqual(Buffer.from(out), Buffer.from(expected));
  const trimming = sizes.filter((n, i) => i > 0 && n < sizes[i - 1]!);
  assert.ok(trimming.length >= 5, `the trim took several slices: ${sizes.join(' ')}`);
  assert.equal(sm.overlayKeys, kept);

  // Changes between the slices of a trim: a new record and a deleted base key stay as they are.
  const again = build().sm;
  index = at;
  const second = again.beginSnapshot();
  let steps = 0;
  let done: Uint8Array | null = null;
  while (done === null) {
    done = second.step(256 * 100);
    if (++steps === 8) {
      again.apply(entryOf(++index, { type: 'put', key: 'k0003', value: bytes('new'), time: index }));
      again.apply(entryOf(++index, { type: 'delete', key: 'k1999', time: index }));
      // The history let go of both changes: only the revision tells the new record from the base's.
      again.apply(entryOf(++index, { type: 'compact', revision: again.revision, time: index }));
    }
  }
  assert.ok(steps > 8, 'the changes came during the snapshot');
  assert.equal(Buffer.from(again.get('k0003')!.value).toString(), 'new');
  assert.equal(again.get('k1999'), null);
  const restored = new KvStateMachine();
  restored.restore(again.snapshot());
  assert.equal(Buffer.from(restored.get('k0003')!.value).toString(), 'new');
  assert.equal(restored.get('k1999'), null);
  assert.equal(restored.size, 1999);

  // Keys created as fast as the trim goes (one a slice, a slice trimming one key): it still ends,
  // after the keys the overlay held when the base changed.
  const racing = build();
  const fourth = racing.sm.beginSnapshot();
  let racingIndex = racing.index;
  let slices = 0;
  let racingOut: Uint8Array | null = null;
  while (racingOut === null) {
    assert.ok(++slices < 5000, `the trim ends: ${racing.sm.overlayKeys} keys in the overlay`);
    racingOut = fourth.step(256);
    racing.sm.apply(entryOf(++racingIndex, { type: 'put', key: `new${slices}`, value: bytes('n'), time: racingIndex }));
  }
  assert.deepEqual(Buffer.from(racingOut), Buffer.from(expected));

  // Abandoned during its trim: the next snapshot finishes the trim before it begins.
  const left = build().sm;
  const third = left.beginSnapshot();
  while (left.overlayKeys === before) assert.equal(third.step(256 * 100), null);
  third.abandon();
  assert.ok(left.overlayKeys > kept, 'abandoned mid-trim');
  left.beginSnapshot().abandon();
  assert.equal(left.overlayKeys, kept);
});
