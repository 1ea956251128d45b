// MemoryStorage: the conformance suite, plus the crash semantics the simulator relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../../src/storage/index.js';
import type { RaftStorage } from '../../src/storage/types.js';
import { entry, range, runConformance, snapshotAt } from './conformance.js';

runConformance({
  name: 'MemoryStorage',
  crashLosesUnsynced: true,
  create: async () => new MemoryStorage(),
  reopen: async (s: RaftStorage) => {
    await s.close();
    return s;
  },
  crash: async (s: RaftStorage) => {
    (s as MemoryStorage).crash();
    return s;
  },
  dispose: async () => {},
});

const entriesOf = (s: MemoryStorage): string[] => s.recover().state.entries.map((e) => `${e.index}/${e.term}`);

test('MemoryStorage: queued writes are invisible until sync(), and crash() forgets them', () => {
  const s = new MemoryStorage();
  s.append(range(1, 3, 1));
  s.setHardState({ currentTerm: 1, votedFor: 'n1', commitIndex: 0 });
  assert.deepEqual(s.recover().state.entries, []);
  assert.equal(s.recover().state.hardState.currentTerm, 0);
  void s.sync();
  assert.equal(s.recover().state.entries.length, 3, 'sync() takes effect when called, not when its promise settles');
  s.append(range(2, 5, 2));
  s.setHardState({ currentTerm: 2, votedFor: null, commitIndex: 1 });
  s.crash();
  const { state } = s.recover();
  assert.deepEqual(state.entries.map((e) => `${e.index}/${e.term}`), ['1/1', '2/1', '3/1']);
  assert.deepEqual(state.hardState, { currentTerm: 1, votedFor: 'n1', commitIndex: 0 });
  // The gap check follows the durable log after a crash, not the forgotten queue.
  assert.throws(() => s.append(range(5, 5, 2)), /gap/);
  s.append(range(4, 4, 2));
});

test('MemoryStorage: queued operations replay in order (truncate, then append, then truncate again)', () => {
  const s = new MemoryStorage();
  s.append(range(1, 5, 1));
  s.append(range(3, 6, 2));
  s.append(range(4, 4, 3));
  void s.sync();
  assert.deepEqual(entriesOf(s), ['1/1', '2/1', '3/2', '4/3']);
});

test('MemoryStorage: entries and snapshot bytes are shared, not copied', () => {
  const s = new MemoryStorage();
  const e = entry(1, 1, 16);
  s.append([e]);
  void s.sync();
  assert.equal(s.recover().state.entries[0], e);
  const snap = snapshotAt(1, 1);
  void s.saveSnapshot(snap);
  assert.equal(s.recover().snapshot, snap);
});

test('MemoryStorage: snapshots and compaction are durable when called and survive crash()', () => {
  const s = new MemoryStorage();
  s.append(range(1, 10, 1));
  void s.sync();
  void s.saveSnapshot(snapshotAt(6, 1));
  void s.compact(6);
  s.append(range(11, 12, 1));
  s.crash();
  let state = s.recover().state;
  assert.equal(state.applied, 6);
  assert.deepEqual(state.entries.map((e) => e.index), [7, 8, 9, 10]);
  void s.installSnapshot(snapshotAt(20, 2));
  s.crash();
  state = s.recover().state;
  assert.equal(state.snapshot?.index, 20);
  assert.deepEqual(state.entries, []);
  s.append(range(21, 21, 2));
  void s.sync();
  assert.deepEqual(entriesOf(s), ['21/2']);
});

test('MemoryStorage: every promise it returns is already settled when the call returns', async () => {
  const s = new MemoryStorage();
  const settled: string[] = [];
  const track = (name: string, p: Promise<unknown>): void => void p.then(() => settled.push(name));
  s.append(range(1, 4, 1));
  track('sync', s.sync());
  track('saveSnapshot', s.saveSnapshot(snapshotAt(2, 1)));
  track('compact', s.compact(2));
  track('installSnapshot', s.installSnapshot(snapshotAt(9, 2)));
  // One microtask turn: nothing any of them waits for is still pending.
  await Promise.resolve();
  assert.deepEqual(settled, ['sync', 'saveSnapshot', 'compact', 'installSnapshot']);
});

test("MemoryStorage: a save in FileStorage's two halves (the simulator's); a crash between them keeps the snapshot and loses the queue", () => {
  const s = new MemoryStorage();
  s.append(range(1, 10, 1));
  void s.sync();
  // A Ready's write queued beside the save, then the snapshot file becomes durable.
  s.append(range(11, 12, 1));
  s.writeSnapshot(snapshotAt(8, 1));
  assert.equal(s.snapshotIndex, 8);
  s.crash();
  let state = s.recover().state;
  assert.equal(state.applied, 8);
  assert.deepEqual(state.entries.map((e) => e.index), [9, 10], 'the log after the snapshot is kept; the queued write is lost');
  // The second half (the WAL marker's sync) makes what was queued before it durable.
  s.append(range(11, 12, 1));
  s.writeSnapshot(snapshotAt(10, 1));
  void s.sync();
  s.crash();
  state = s.recover().state;
  assert.equal(state.applied, 10);
  assert.deepEqual(state.entries.map((e) => e.index), [11, 12]);
});

test('MemoryStorage: recovery restarts the log after a snapshot it disagrees with or does not reach, as FileStorage does (§7)', () => {
  const s = new MemoryStorage();
  s.append(range(1, 8, 1));
  void s.sync();
  s.writeSnapshot(snapshotAt(8, 2));
  assert.deepEqual(s.recover().state.entries, []);
  s.append(range(9, 10, 2));
  void s.sync();
  assert.deepEqual(entriesOf(s), ['9/2', '10/2'], 'the entry of another term at the snapshot index is gone for good');
  s.writeSnapshot(snapshotAt(20, 2));
  assert.deepEqual(s.recover().state.entries, []);
  s.append(range(21, 21, 2));
  void s.sync();
  assert.deepEqual(entriesOf(s), ['21/2']);
});
