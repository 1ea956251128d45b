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

test('MemoryStorage: queued writes are invisible until syncNow, and crash() forgets them', () => {
  const s = new MemoryStorage();
  s.append(range(1, 3, 1));
  s.setHardState({ currentTerm: 1, votedFor: 'n1', commitIndex: 0 });
  assert.deepEqual(s.loadNow().entries, []);
  assert.equal(s.loadNow().hardState.currentTerm, 0);
  s.syncNow();
  assert.equal(s.loadNow().entries.length, 3);
  s.append(range(2, 5, 2));
  s.setHardState({ currentTerm: 2, votedFor: null, commitIndex: 1 });
  s.crash();
  const state = s.loadNow();
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
  s.syncNow();
  assert.deepEqual(s.loadNow().entries.map((e) => `${e.index}/${e.term}`), ['1/1', '2/1', '3/2', '4/3']);
});

test('MemoryStorage: entries and snapshot bytes are shared, not copied', () => {
  const s = new MemoryStorage();
  const e = entry(1, 1, 16);
  s.append([e]);
  s.syncNow();
  assert.equal(s.loadNow().entries[0], e);
  const snap = snapshotAt(1, 1);
  s.saveSnapshotNow(snap);
  assert.equal(s.loadSnapshotNow(), snap);
});

test('MemoryStorage: snapshots and compaction are durable at once and survive crash()', () => {
  const s = new MemoryStorage();
  s.append(range(1, 10, 1));
  s.syncNow();
  s.saveSnapshotNow(snapshotAt(6, 1));
  s.compactNow(6);
  s.append(range(11, 12, 1));
  s.crash();
  let state = s.loadNow();
  assert.equal(state.applied, 6);
  assert.deepEqual(state.entries.map((e) => e.index), [7, 8, 9, 10]);
  s.installSnapshotNow(snapshotAt(20, 2));
  s.crash();
  state = s.loadNow();
  assert.equal(state.snapshot?.index, 20);
  assert.deepEqual(state.entries, []);
  s.append(range(21, 21, 2));
  s.syncNow();
  assert.deepEqual(s.loadNow().entries.map((e) => e.index), [21]);
});
