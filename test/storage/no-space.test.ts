// A full disk is an alarm, not a crash (API.md, "Health and limits"). On a REAL small file
// system (a tmpfs of 1 MiB): the alarm is raised while the active WAL segment still has room,
// a write that needs a new segment fails with NoSpaceError and leaves the storage usable with
// its queue intact, acknowledged writes survive a crash on the full disk, and once space is
// back the alarm clears and everything queued is written. Plus the rule that stays: any other
// write error (EIO) is sticky, checked by making one FileHandle method fail on purpose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStorage, NoSpaceError, StorageFailedError } from '../../src/storage/index.js';
import { entry, plain, range, snapshotAt } from './conformance.js';
import { RecordingLogger, TempDirs } from './helpers.js';
import { Filler, mountTmpfs, withFullDisk } from './tmpfs.js';

const SEGMENT_BYTES = 128 * 1024;
const ENTRY_BYTES = 1024;

async function waitFor(what: string, probe: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function isNoSpace(error: unknown): boolean {
  return error instanceof NoSpaceError && error.code === 'NO_SPACE';
}

test('ENOSPC on a real tmpfs: alarm while the segment has room, NoSpaceError without loss, recovery on the full disk, writes resume once space is back', { timeout: 60_000 }, async (t) => {
  const fs = mountTmpfs(1024 * 1024);
  if (typeof fs === 'string') {
    t.skip(fs);
    return;
  }
  const dir = join(fs.dir, 'data');
  const filler = new Filler(fs.dir);
  const alarms: boolean[] = [];
  const logger = new RecordingLogger();
  const openStorage = (): Promise<FileStorage> => FileStorage.open(dir, { segmentBytes: SEGMENT_BYTES, logger, onNoSpace: (active) => alarms.push(active) });
  let storage: FileStorage | null = null;
  try {
    storage = await openStorage();
    storage.setHardState({ currentTerm: 1, votedFor: 'n1', commitIndex: 0 });
    storage.append(range(1, 4, 1, ENTRY_BYTES));
    await storage.sync();
    let acknowledged = 4;
    // Leave less than a segment free: the next one cannot be prepared, the active one has room.
    filler.fill();
    filler.giveBack(SEGMENT_BYTES / 2);

    // 1. The early alarm: raised while syncs still succeed in the active segment.
    let syncsAfterAlarm = 0;
    let failure: unknown = null;
    while (failure === null) {
      storage.append(range(acknowledged + 1, acknowledged + 4, 1, ENTRY_BYTES));
      try {
        await storage.sync();
        acknowledged += 4;
        if (storage.isOutOfSpace) syncsAfterAlarm++;
        // Give the background preparation time to run into the full disk.
        if (storage.isOutOfSpace === false) await new Promise((resolve) => setTimeout(resolve, 5));
      } catch (error) {
        failure = error;
      }
      assert.ok(acknowledged < 1000, 'the WAL never ran out of space');
    }
    assert.ok(syncsAfterAlarm > 0, 'the alarm came before the first write failed, while the active segment had room');
    assert.deepEqual(alarms, [true], 'one alarm, through onNoSpace');
    assert.ok(logger.warnings.some((w) => /no space for the next WAL segment/.test(w)));

    // 2. The write that needs a new segment fails with NoSpaceError, and the storage stays usable.
    assert.ok(isNoSpace(failure), `expected NoSpaceError, got ${String(failure)}`);
    const queuedFrom = acknowledged + 1;
    storage.append(range(acknowledged + 5, acknowledged + 8, 1, ENTRY_BYTES));
    await assert.rejects(storage.sync(), isNoSpace, 'still full: the same NoSpaceError, not a sticky failure');
    assert.ok(storage.isOutOfSpace);

    // 3. A crash on the full disk: recovery opens it, and every acknowledged write is there.
    await storage.abandon();
    storage = null;
    storage = await openStorage();
    const recovered = await storage.load();
    assert.equal(recovered.entries.at(-1)!.index, acknowledged, 'acknowledged entries survive; unacknowledged ones were never written');
    assert.deepEqual(plain(recovered.entries), plain(range(1, acknowledged, 1, ENTRY_BYTES)));
    assert.deepEqual(recovered.hardState, { currentTerm: 1, votedFor: 'n1', commitIndex: 0 });
    await waitFor('the reopened storage to see the full disk', () => storage!.isOutOfSpace);

    // 4. Writes queue up and fail with NoSpaceError meanwhile; once space is back one sync
    // writes all of it, and the alarm clears.
    storage.append(range(queuedFrom, queuedFrom + 7, 1, ENTRY_BYTES));
    storage.setHardState({ currentTerm: 1, votedFor: 'n1', commitIndex: queuedFrom + 7 });
    await assert.rejects(storage.sync(), isNoSpace);
    const alarmsBefore = alarms.length;
    filler.remove();
    await storage.sync();
    acknowledged = queuedFrom + 7;
    assert.equal(storage.isOutOfSpace, false);
    assert.deepEqual(alarms.slice(alarmsBefore), [false]);
    storage.append(range(acknowledged + 1, acknowledged + 200, 1, ENTRY_BYTES));
    await storage.sync();
    acknowledged += 200;
    await storage.close();
    storage = null;

    storage = await openStorage();
    const final = await storage.load();
    assert.deepEqual(plain(final.entries), plain(range(1, acknowledged, 1, ENTRY_BYTES)), 'every entry once, intact, in order');
    assert.equal(final.hardState.commitIndex, queuedFrom + 7);
    assert.deepEqual(logger.warnings.filter((w) => /torn write|corrupt/.test(w)), [], 'no repair was needed');
    await storage.close();
    storage = null;
  } finally {
    await storage?.abandon().catch(() => undefined);
    filler.remove();
    fs.unmount();
  }
});

test('ENOSPC on a real tmpfs: the early alarm clears by itself once space is back, with no write needed', { timeout: 30_000 }, async (t) => {
  const fs = mountTmpfs(1024 * 1024);
  if (typeof fs === 'string') {
    t.skip(fs);
    return;
  }
  const filler = new Filler(fs.dir);
  const alarms: boolean[] = [];
  let storage: FileStorage | null = null;
  try {
    storage = await FileStorage.open(join(fs.dir, 'data'), { segmentBytes: SEGMENT_BYTES, logger: new RecordingLogger(), onNoSpace: (active) => alarms.push(active) });
    storage.append(range(1, 4, 1, ENTRY_BYTES));
    await storage.sync();
    filler.fill();
    filler.giveBack(SEGMENT_BYTES / 2);
    // Past half the segment, its successor is prepared: that runs into the full disk.
    storage.append(range(5, 70, 1, ENTRY_BYTES));
    await storage.sync();
    await waitFor('the alarm', () => storage!.isOutOfSpace);
    filler.remove();
    await waitFor('the alarm to clear', () => !storage!.isOutOfSpace);
    assert.deepEqual(alarms, [true, false]);
    assert.ok(existsSync(join(fs.dir, 'data', 'wal', 'next-segment.wal.tmp')), 'the next segment is prepared');
    await storage.close();
    storage = null;
  } finally {
    await storage?.abandon().catch(() => undefined);
    filler.remove();
    fs.unmount();
  }
});

test('ENOSPC on a real tmpfs: a snapshot that does not fit fails with NoSpaceError, leaves no file behind, and fits once space is back', { timeout: 30_000 }, async (t) => {
  await withFullDisk(t, async (full, filler, dir) => {
    let storage = full;
    const big = snapshotAt(10, 1, 200 * 1024);
    await assert.rejects(storage.saveSnapshot(big), isNoSpace);
    assert.deepEqual(readdirSync(join(dir, 'snap')), [], 'the partial temporary file was deleted');
    assert.ok(storage.isOutOfSpace, 'a snapshot that does not fit raises the alarm');
    // The WAL still works: the active segment has room.
    storage.append(range(21, 22, 1, ENTRY_BYTES));
    await storage.sync();

    filler.remove();
    await storage.saveSnapshot(big);
    assert.equal(storage.isOutOfSpace, false);
    await storage.compact(10);
    await storage.close();
    storage = await FileStorage.open(dir, { segmentBytes: 64 * 1024, logger: new RecordingLogger() });
    try {
      const state = await storage.load();
      assert.equal(state.applied, 10);
      assert.equal(state.entries.at(-1)!.index, 22);
    } finally {
      await storage.close();
    }
  });
});

// ---- the rule for other errors, and the retry's exact bytes, with one FileHandle method broken ----

const temp = new TempDirs();

type Writev = (buffers: NodeJS.ArrayBufferView[], position?: number) => Promise<{ bytesWritten: number; buffers: NodeJS.ArrayBufferView[] }>;

/** Replaces FileHandle.prototype.writev (what the WAL writes records with) until restore(). */
async function breakWritev(dir: string, replacement: (original: Writev, self: unknown, buffers: NodeJS.ArrayBufferView[], position?: number) => Promise<unknown>): Promise<() => void> {
  const probe = await open(join(dir, 'probe'), 'w');
  const prototype = Object.getPrototypeOf(probe) as { writev: Writev };
  await probe.close();
  const original = prototype.writev;
  prototype.writev = function (this: unknown, buffers: NodeJS.ArrayBufferView[], position?: number) {
    return replacement(original, this, buffers, position) as ReturnType<Writev>;
  };
  return () => {
    prototype.writev = original;
  };
}

function osError(code: string): Error {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

test('ENOSPC from a WAL write is retried with the same bytes; a retry that ends short zeroes what the failed write left', async () => {
  const dir = temp.make();
  const logger = new RecordingLogger();
  try {
    let storage = await FileStorage.open(dir, { segmentBytes: 64 * 1024, logger });
    storage.setHardState({ currentTerm: 3, votedFor: 'a-long-node-name', commitIndex: 0 });
    storage.append(range(1, 5, 3, 100));
    await storage.sync();
    // The failed write reaches the disk whole (the worst case for what it leaves behind) and
    // then reports ENOSPC: it was not acknowledged.
    storage.setHardState({ currentTerm: 4, votedFor: 'another-long-node-name', commitIndex: 5 });
    storage.append(range(6, 10, 4, 100));
    let restore = await breakWritev(dir, async (original, self, buffers, position) => {
      await original.call(self, buffers, position);
      throw osError('ENOSPC');
    });
    await assert.rejects(storage.sync(), isNoSpace);
    restore();
    // The retry's hard state record is shorter: it ends before the failed write did. Reopened
    // at once, so that nothing written later covers what the failed write left.
    storage.setHardState({ currentTerm: 4, votedFor: null, commitIndex: 5 });
    await storage.sync();
    await storage.close();
    storage = await FileStorage.open(dir, { segmentBytes: 64 * 1024, logger });
    assert.deepEqual(logger.warnings, [], 'nothing of the failed write is left past the log: no torn write to repair');
    storage.append(range(11, 12, 4, 100));
    restore = await breakWritev(dir, () => Promise.reject(osError('EDQUOT')));
    await assert.rejects(storage.sync(), isNoSpace, 'EDQUOT (a full quota) is a full disk too');
    restore();
    await storage.sync();
    await storage.close();

    storage = await FileStorage.open(dir, { segmentBytes: 64 * 1024, logger });
    const state = await storage.load();
    assert.deepEqual(plain(state.entries), plain([...range(1, 5, 3, 100), ...range(6, 12, 4, 100)]));
    assert.deepEqual(state.hardState, { currentTerm: 4, votedFor: null, commitIndex: 5 });
    assert.deepEqual(logger.warnings, [], 'nothing of the failed write is left past the log: no torn write to repair');
    await storage.close();
  } finally {
    temp.removeAll();
  }
});

test('ENOSPC while starting a new segment discards the prepared file and is retried', async () => {
  const dir = temp.make();
  try {
    let storage = await FileStorage.open(dir, { segmentBytes: 4096, logger: new RecordingLogger() });
    // One batch larger than a segment: whichever segment it lands in is full, so the next sync
    // starts a new one.
    storage.append(range(1, 50, 1, 100));
    await storage.sync();
    let next = 51;
    const segments = storage.segmentCount;
    let calls = 0;
    // Each failed attempt reaches the disk whole, then reports ENOSPC.
    const restore = await breakWritev(dir, async (original, self, buffers, position) => {
      calls++;
      await original.call(self, buffers, position);
      throw osError('ENOSPC');
    });
    storage.setHardState({ currentTerm: 1, votedFor: 'a-long-node-name', commitIndex: 0 });
    storage.append(range(next, next + 3, 1, 100));
    try {
      for (let i = 0; i < 3; i++) await assert.rejects(storage.sync(), isNoSpace);
    } finally {
      restore();
    }
    assert.ok(calls >= 3);
    // A shorter retry: in a reused prepared file, the failed attempt's tail would show past it.
    storage.setHardState({ currentTerm: 1, votedFor: null, commitIndex: 0 });
    await storage.sync();
    next += 4;
    assert.ok(storage.segmentCount > segments, 'the retry started the new segment');
    await storage.close();
    const logger = new RecordingLogger();
    storage = await FileStorage.open(dir, { segmentBytes: 4096, logger });
    assert.deepEqual(plain((await storage.load()).entries), plain(range(1, next - 1, 1, 100)));
    assert.deepEqual(logger.warnings, [], 'the new segment holds nothing of the failed attempts');
    await storage.close();
  } finally {
    temp.removeAll();
  }
});

test('EIO from a WAL write stays sticky and fatal: after a failed fsync a retry could report lost data as durable', async () => {
  const dir = temp.make();
  try {
    const storage = await FileStorage.open(dir, { segmentBytes: 64 * 1024, logger: new RecordingLogger() });
    storage.append(range(1, 3, 1));
    await storage.sync();
    storage.append(range(4, 6, 1));
    const restore = await breakWritev(dir, () => Promise.reject(osError('EIO')));
    let failure: unknown;
    try {
      await storage.sync();
    } catch (error) {
      failure = error;
    } finally {
      restore();
    }
    assert.ok(failure instanceof StorageFailedError, `expected StorageFailedError, got ${String(failure)}`);
    assert.ok(!(failure instanceof NoSpaceError));
    // The disk works again, but the storage does not trust it: every later call fails.
    await assert.rejects(storage.sync(), StorageFailedError);
    assert.throws(() => storage.append([entry(7, 1)]), StorageFailedError);
    assert.equal(storage.isOutOfSpace, false, 'an I/O error is no full disk');
    await storage.abandon();
  } finally {
    temp.removeAll();
  }
});

test('EIO: a sync that joined while the failing write was in flight (a snapshot marker beside a Ready) fails too, and writes nothing after it', async () => {
  const dir = temp.make();
  try {
    const storage = await FileStorage.open(dir, { segmentBytes: 64 * 1024, logger: new RecordingLogger() });
    storage.append(range(1, 3, 1));
    await storage.sync();
    storage.append(range(4, 6, 1));
    let writes = 0;
    const restore = await breakWritev(dir, () => {
      writes++;
      return new Promise((_resolve, reject) => setTimeout(() => reject(osError('EIO')), 20));
    });
    try {
      const first = storage.sync();
      // Queued while the first write is in flight, as FileStorage queues a snapshot marker:
      // this caller joins the next flush, which must not start after the failure.
      storage.append(range(7, 8, 1));
      const joined = storage.sync();
      const [a, b] = await Promise.allSettled([first, joined]);
      assert.equal(a.status, 'rejected');
      assert.equal(b.status, 'rejected');
      assert.ok(b.status === 'rejected' && b.reason instanceof StorageFailedError, `expected StorageFailedError, got ${b.status === 'rejected' ? String(b.reason) : 'success'}`);
      assert.equal(writes, 1, 'nothing was written past the failed write');
    } finally {
      restore();
    }
    await storage.abandon();
  } finally {
    temp.removeAll();
  }
});

test('FileStorage refuses a segmentBytes outside its limits', async () => {
  const dir = temp.make();
  try {
    for (const segmentBytes of [0, 512, 1536.5, 2 ** 31, Number.NaN]) {
      await assert.rejects(FileStorage.open(dir, { segmentBytes }), /segmentBytes must be an integer from 1024 to 1073741824/);
    }
    assert.equal(existsSync(join(dir, 'wal')), false, 'refused before anything was created');
  } finally {
    temp.removeAll();
  }
});
