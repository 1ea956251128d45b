// The storage conformance suite: one set of behaviours every RaftStorage MUST show, run against
// both FileStorage and MemoryStorage (Figure 2's persistent state, §5.3 truncation, §7 snapshots).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Configuration, Entry, EntryType, Snapshot } from '../../src/raft/types.js';
import type { RaftStorage } from '../../src/storage/types.js';

export interface StorageHarness {
  readonly name: string;
  /** True when a crash is guaranteed to forget writes that were never synced. */
  readonly crashLosesUnsynced: boolean;
  /** A fresh, empty storage. */
  create(): Promise<RaftStorage>;
  /** A clean shutdown (close) and restart over the same durable state. */
  reopen(storage: RaftStorage): Promise<RaftStorage>;
  /** Power loss and restart: nothing queued is flushed. */
  crash(storage: RaftStorage): Promise<RaftStorage>;
  /** Releases everything create() made. */
  dispose(): Promise<void>;
}

const CONFIG: Configuration = { voters: ['n1', 'n2', 'n3'], votersOutgoing: [], learners: [] };

export function entry(index: number, term: number, size = 8, type: EntryType = 'normal'): Entry {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { index, term, type, data };
}

export function range(from: number, to: number, term: number, size = 8): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, size));
  return out;
}

/** Entries compared by value, whatever view class their bytes arrive in. */
export function plain(entries: readonly Entry[]): unknown[] {
  return entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Buffer.from(e.data).toString('hex') }));
}

export function snapshotAt(index: number, term: number, size = 32): Snapshot {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index + i) & 0xff;
  return { meta: { index, term, config: CONFIG }, data };
}

export function runConformance(harness: StorageHarness): void {
  const named = (title: string, body: () => Promise<void>): void => {
    test(`${harness.name}: ${title}`, async () => {
      try {
        await body();
      } finally {
        await harness.dispose();
      }
    });
  };

  named('an empty storage loads the initial state', async () => {
    const s = await harness.create();
    const state = await s.load();
    assert.deepEqual(state.hardState, { currentTerm: 0, votedFor: null, commitIndex: 0 });
    assert.equal(state.snapshot, null);
    assert.deepEqual(state.entries, []);
    assert.equal(state.applied, 0);
    assert.equal(await s.loadSnapshot(), null);
    await s.close();
  });

  named('synced entries and hard state survive a restart (Figure 2)', async () => {
    let s = await harness.create();
    const first = [entry(1, 1, 0), entry(2, 1, 100, 'config'), entry(3, 1, 5)];
    s.append(first);
    s.setHardState({ currentTerm: 1, votedFor: 'n1', commitIndex: 2 });
    await s.sync();
    s.append(range(4, 9, 2, 300));
    s.setHardState({ currentTerm: 2, votedFor: 'nødé-ünïcode', commitIndex: 7 });
    await s.sync();
    s = await harness.reopen(s);
    const state = await s.load();
    assert.deepEqual(plain(state.entries), plain([...first, ...range(4, 9, 2, 300)]));
    assert.deepEqual(state.hardState, { currentTerm: 2, votedFor: 'nødé-ünïcode', commitIndex: 7 });
    assert.equal(state.applied, 0);
    await s.close();
  });

  named('the last hard state wins, and a null vote round-trips', async () => {
    let s = await harness.create();
    s.setHardState({ currentTerm: 3, votedFor: 'n2', commitIndex: 0 });
    s.setHardState({ currentTerm: 4, votedFor: null, commitIndex: 0 });
    await s.sync();
    s = await harness.reopen(s);
    assert.deepEqual((await s.load()).hardState, { currentTerm: 4, votedFor: null, commitIndex: 0 });
    await s.close();
  });

  named('§5.3 an append at or below the last index removes the conflicting suffix', async () => {
    let s = await harness.create();
    s.append(range(1, 5, 1));
    await s.sync();
    s.append(range(3, 4, 2));
    await s.sync();
    s.append(range(2, 2, 3));
    s.append(range(3, 6, 3));
    await s.sync();
    s = await harness.reopen(s);
    assert.deepEqual(plain((await s.load()).entries), plain([...range(1, 1, 1), ...range(2, 6, 3)]));
    s.append(range(7, 7, 3));
    await s.sync();
    s = await harness.reopen(s);
    assert.deepEqual((await s.load()).entries.map((e) => e.index), [1, 2, 3, 4, 5, 6, 7]);
    await s.close();
  });

  named('an append that would leave a gap or is not contiguous throws', async () => {
    const s = await harness.create();
    s.append(range(1, 3, 1));
    assert.throws(() => s.append(range(5, 6, 1)), /gap/);
    assert.throws(() => s.append([entry(4, 1), entry(6, 1)]), /contiguous/);
    s.append(range(4, 4, 1));
    await s.sync();
    const reopened = await harness.reopen(s);
    assert.deepEqual((await reopened.load()).entries.map((e) => e.index), [1, 2, 3, 4]);
    await reopened.close();
  });

  named('many batches of many sizes round-trip in order', async () => {
    let s = await harness.create();
    const expected: Entry[] = [];
    let next = 1;
    for (let batch = 0; batch < 120; batch++) {
      const size = (batch * 37) % 700;
      const count = 1 + (batch % 9);
      const entries = range(next, next + count - 1, 1 + (batch >> 4), size);
      s.append(entries);
      expected.push(...entries);
      next += count;
      if (batch % 3 === 2) await s.sync();
    }
    await s.sync();
    s = await harness.reopen(s);
    assert.deepEqual(plain((await s.load()).entries), plain(expected));
    await s.close();
  });

  named('§7 a saved snapshot and compaction leave the log after the snapshot', async () => {
    let s = await harness.create();
    for (let i = 1; i <= 100; i += 10) {
      s.append(range(i, i + 9, 1, 64));
      await s.sync();
    }
    const snap = snapshotAt(60, 1, 500);
    await s.saveSnapshot(snap);
    await s.compact(60);
    s = await harness.reopen(s);
    const state = await s.load();
    assert.deepEqual(state.snapshot, snap.meta);
    assert.equal(state.applied, 60);
    assert.deepEqual(plain(state.entries), plain(range(61, 100, 1, 64)));
    const loaded = await s.loadSnapshot();
    assert.ok(loaded);
    assert.deepEqual(loaded.meta, snap.meta);
    assert.deepEqual(Buffer.from(loaded.data), Buffer.from(snap.data));
    s.append(range(101, 105, 2));
    await s.sync();
    s = await harness.reopen(s);
    assert.deepEqual((await s.load()).entries.map((e) => e.index).slice(-6), [100, 101, 102, 103, 104, 105]);
    await s.close();
  });

  named('§7 a snapshot saved while entries are appended and synced, then compaction beside more: the log around it is kept', async () => {
    let s = await harness.create();
    for (let i = 1; i <= 100; i += 10) {
      s.append(range(i, i + 9, 1, 64));
      await s.sync();
    }
    // The runtime goes on with Readies while the save is in flight: its record in the WAL comes
    // after entries with higher indexes, and a "taken" record discards nothing.
    const saved = s.saveSnapshot(snapshotAt(60, 1, 700));
    const syncs: Promise<void>[] = [];
    for (let i = 101; i <= 160; i += 10) {
      s.append(range(i, i + 9, 1, 64));
      syncs.push(s.sync());
    }
    await Promise.all([saved, ...syncs]);
    const compacted = s.compact(60);
    for (let i = 161; i <= 200; i += 10) {
      s.append(range(i, i + 9, 1, 64));
      syncs.push(s.sync());
    }
    await Promise.all([compacted, ...syncs]);
    s = await harness.reopen(s);
    const state = await s.load();
    assert.deepEqual(state.snapshot, snapshotAt(60, 1).meta);
    assert.deepEqual(plain(state.entries), plain(range(61, 200, 1, 64)));
    await s.close();
  });

  named('compaction never drops what the newest snapshot does not cover', async () => {
    let s = await harness.create();
    for (let i = 1; i <= 200; i += 20) {
      s.append(range(i, i + 19, 1, 100));
      await s.sync();
    }
    await s.saveSnapshot(snapshotAt(30, 1));
    await s.compact(180);
    s = await harness.reopen(s);
    const state = await s.load();
    assert.equal(state.applied, 30);
    assert.deepEqual(plain(state.entries), plain(range(31, 200, 1, 100)));
    await s.close();
  });

  named('a newer snapshot replaces an older one', async () => {
    let s = await harness.create();
    s.append(range(1, 40, 1));
    await s.sync();
    await s.saveSnapshot(snapshotAt(10, 1));
    await s.saveSnapshot(snapshotAt(20, 1));
    await s.saveSnapshot(snapshotAt(30, 1));
    s = await harness.reopen(s);
    const state = await s.load();
    assert.equal(state.snapshot?.index, 30);
    assert.deepEqual(state.entries.map((e) => e.index), range(31, 40, 1).map((e) => e.index));
    assert.equal((await s.loadSnapshot())?.meta.index, 30);
    await s.close();
  });

  named('§7 installSnapshot discards the whole log, which restarts after the snapshot', async () => {
    let s = await harness.create();
    s.append(range(1, 10, 1));
    await s.sync();
    await s.installSnapshot(snapshotAt(25, 3));
    s = await harness.reopen(s);
    let state = await s.load();
    assert.equal(state.snapshot?.index, 25);
    assert.equal(state.applied, 25);
    assert.deepEqual(state.entries, []);
    assert.throws(() => s.append(range(27, 27, 3)), /gap/);
    s.append(range(26, 30, 3));
    s.setHardState({ currentTerm: 3, votedFor: null, commitIndex: 28 });
    await s.sync();
    s = await harness.reopen(s);
    state = await s.load();
    assert.deepEqual(plain(state.entries), plain(range(26, 30, 3)));
    assert.equal(state.hardState.commitIndex, 28);
    await s.close();
  });

  named('installSnapshot below the last index also discards the suffix', async () => {
    let s = await harness.create();
    s.append(range(1, 20, 1));
    await s.sync();
    await s.installSnapshot(snapshotAt(12, 2));
    s.append(range(13, 14, 2));
    await s.sync();
    s = await harness.reopen(s);
    const state = await s.load();
    assert.equal(state.applied, 12);
    assert.deepEqual(plain(state.entries), plain(range(13, 14, 2)));
    await s.close();
  });

  named('synced writes survive a crash; unsynced ones are lost or kept whole', async () => {
    let s = await harness.create();
    s.append(range(1, 5, 1));
    s.setHardState({ currentTerm: 1, votedFor: 'n1', commitIndex: 3 });
    await s.sync();
    s.append(range(6, 8, 1));
    s.setHardState({ currentTerm: 2, votedFor: 'n2', commitIndex: 5 });
    s = await harness.crash(s);
    const state = await s.load();
    const indexes = state.entries.map((e) => e.index);
    if (harness.crashLosesUnsynced) {
      assert.deepEqual(indexes, [1, 2, 3, 4, 5]);
      assert.deepEqual(state.hardState, { currentTerm: 1, votedFor: 'n1', commitIndex: 3 });
    } else {
      assert.ok(indexes.length === 5 || indexes.length === 8, `got ${indexes.join(',')}`);
      assert.deepEqual(indexes, range(1, indexes.length, 1).map((e) => e.index));
    }
    // After the crash the storage accepts the log as recovered, without a gap.
    const next = indexes.length + 1;
    s.append(range(next, next + 1, 2));
    await s.sync();
    s = await harness.crash(s);
    assert.deepEqual((await s.load()).entries.map((e) => e.index).slice(-2), [next, next + 1]);
    await s.close();
  });
}

