// FileStorage: the conformance suite on a real directory, with tiny segments so that rolling,
// compaction and cross-segment recovery are exercised by every case.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStorage, StorageCorruptionError } from '../../src/storage/index.js';
import type { RaftStorage } from '../../src/storage/types.js';
import type { Entry } from '../../src/raft/types.js';
import { SKIPPED_ENTRY, decodeEntries, encodeEntries } from '../../src/storage/record.js';
import { recoverWal } from '../../src/storage/wal-recovery.js';
import { snapshotFileName } from '../../src/storage/snapshot-file.js';
import { plain, range, runConformance, snapshotAt } from './conformance.js';
import { RecordingLogger, TempDirs } from './helpers.js';

const temp = new TempDirs();
after(() => temp.removeAll());
const dirs = new WeakMap<RaftStorage, string>();
const logger = new RecordingLogger();

/** Segment files only: the next segment, prepared ahead of time, is not one. */
function segmentFiles(dir: string): string[] {
  return readdirSync(join(dir, 'wal')).filter((name) => name.endsWith('.wal'));
}

async function openAt(dir: string): Promise<FileStorage> {
  const storage = await FileStorage.open(dir, { segmentBytes: 2048, logger });
  dirs.set(storage, dir);
  return storage;
}

runConformance({
  name: 'FileStorage',
  crashLosesUnsynced: false,
  create: async () => openAt(temp.make()),
  reopen: async (s) => {
    await s.close();
    return openAt(dirs.get(s)!);
  },
  crash: async (s) => {
    await (s as FileStorage).abandon();
    return openAt(dirs.get(s)!);
  },
  dispose: async () => {
    assert.deepEqual(logger.warnings, [], 'a clean run must not warn');
    temp.removeAll();
  },
});

test('FileStorage: segments roll past segmentBytes and carry the hard state across compaction', async () => {
  const dir = temp.make();
  let s = await openAt(dir);
  s.setHardState({ currentTerm: 7, votedFor: 'n3', commitIndex: 0 });
  for (let i = 1; i <= 400; i += 20) {
    s.append(range(i, i + 19, 7, 100));
    await s.sync();
  }
  assert.ok(s.segmentCount > 5, `expected several segments, got ${s.segmentCount}`);
  await s.saveSnapshot(snapshotAt(390, 7));
  await s.compact(390);
  assert.equal(s.segmentCount, 2);
  s = await (async () => {
    await s.close();
    return openAt(dir);
  })();
  const state = await s.load();
  assert.deepEqual(state.hardState, { currentTerm: 7, votedFor: 'n3', commitIndex: 0 });
  assert.deepEqual(state.entries.map((e) => e.index), range(391, 400, 7).map((e) => e.index));
  assert.ok(segmentFiles(dir).length === 2);
  await s.close();
});

test('FileStorage: a second load() re-reads what is durable', async () => {
  const s = await openAt(temp.make());
  assert.deepEqual((await s.load()).entries, []);
  s.append(range(1, 3, 1));
  await s.sync();
  assert.deepEqual((await s.load()).entries.map((e) => e.index), [1, 2, 3]);
  await s.close();
});

/** A closed data dir whose WAL holds entries 1..100 (term 2, 40 bytes each), beside a snapshot at 60 (not compacted). */
async function walOf100WithSnapshotAt60(): Promise<string> {
  const dir = temp.make();
  const s = await openAt(dir);
  s.setHardState({ currentTerm: 2, votedFor: null, commitIndex: 100 });
  for (let i = 1; i <= 100; i += 10) {
    s.append(range(i, i + 9, 2, 40));
    await s.sync();
  }
  await s.saveSnapshot(snapshotAt(60, 2));
  await s.close();
  return dir;
}

test('FileStorage: a restart builds no entry the newest snapshot covers, and reads the rest exactly', async () => {
  const dir = await walOf100WithSnapshotAt60();
  // What open() asks of the WAL: a floor at the newest snapshot's index.
  const recovered = await recoverWal(join(dir, 'wal'), false, logger, 60);
  assert.equal(recovered.logStart, 1);
  assert.equal(recovered.nextIndex, 101);
  assert.equal(recovered.log.length, 100);
  assert.ok(recovered.log.slice(0, 59).every((e) => e === SKIPPED_ENTRY), 'entries 1..59 are not built');
  assert.deepEqual(plain(recovered.log.slice(59)), plain(range(60, 100, 2, 40)));
  const s = await openAt(dir);
  const state = await s.load();
  assert.equal(state.snapshot?.index, 60);
  assert.deepEqual(plain(state.entries), plain(range(61, 100, 2, 40)));
  await s.close();
});

test('FileStorage: a snapshot file renamed to a later index than it holds (a careless copy) sets the decode floor too high: recovery reads the WAL again and loses nothing', async () => {
  const dir = await walOf100WithSnapshotAt60();
  const snap = join(dir, 'snap');
  const [name] = readdirSync(snap).filter((n) => n.endsWith('.snap'));
  renameSync(join(snap, name!), join(snap, snapshotFileName(500, 2)));
  const s = await openAt(dir);
  const state = await s.load();
  assert.equal(state.snapshot?.index, 60, 'the file says what it holds; its name only chose it');
  assert.deepEqual(plain(state.entries), plain(range(61, 100, 2, 40)));
  s.append(range(101, 101, 2, 40));
  await s.sync();
  await s.close();
});

test('FileStorage: entries below the decode floor are checked as strictly as the rest', () => {
  const payload = (entries: Entry[]): Buffer => encodeEntries(entries).subarray(13);
  const gap = payload([range(5, 5, 1)[0]!, range(7, 7, 1)[0]!]);
  assert.equal(decodeEntries(gap, 0, gap.length, [], 100), 'entries not contiguous at index 7');
  const badType = Buffer.from(payload(range(5, 6, 1)));
  badType[4 + 16] = 9; // the first entry's type byte
  assert.equal(decodeEntries(badType, 0, badType.length, [], 100), 'unknown entry type 9');
  const short = payload(range(5, 6, 1)).subarray(0, -3);
  assert.equal(decodeEntries(short, 0, short.length, [], 100), 'entry data runs past its record');
  const out: Entry[] = [];
  const fine = payload(range(5, 8, 1));
  assert.equal(decodeEntries(fine, 0, fine.length, out, 7), null);
  assert.deepEqual(out.slice(0, 2), [SKIPPED_ENTRY, SKIPPED_ENTRY]);
  assert.deepEqual(plain(out.slice(2)), plain(range(7, 8, 1)));
});

test('FileStorage: group commit — concurrent sync() calls share fdatasyncs, late callers wait for the next', async () => {
  const dir = temp.make();
  let s = await openAt(dir);
  const before = s.fdatasyncCount;
  s.append(range(1, 10, 1));
  const first = s.sync();
  // Arrives while the first is in flight: its entries are not in that write, so it waits.
  s.append(range(11, 20, 1));
  const late = [s.sync(), s.sync(), s.sync(), s.sync()];
  await Promise.all([first, ...late]);
  assert.equal(s.fdatasyncCount - before, 2, 'one fdatasync for the first, one shared by the four late callers');
  await s.sync();
  assert.equal(s.fdatasyncCount - before, 2, 'nothing queued: no fdatasync');
  await s.abandon();
  s = await openAt(dir);
  assert.deepEqual((await s.load()).entries.map((e) => e.index), range(1, 20, 1).map((e) => e.index));
  await s.close();
});

test('FileStorage: compaction under load keeps the number of segment files bounded', async () => {
  const dir = temp.make();
  let s = await openAt(dir);
  let maxSegments = 0;
  for (let i = 1; i <= 3000; i += 15) {
    s.append(range(i, i + 14, 1, 64));
    s.setHardState({ currentTerm: 1, votedFor: 'n1', commitIndex: i + 14 });
    await s.sync();
    if ((i - 1) % 150 === 0 && i > 100) {
      await s.saveSnapshot(snapshotAt(i - 50, 1));
      await s.compact(i - 50);
    }
    maxSegments = Math.max(maxSegments, s.segmentCount, segmentFiles(dir).length);
  }
  assert.ok(maxSegments <= 12, `segments stayed bounded: at most ${maxSegments}`);
  assert.ok(readdirSync(join(dir, 'snap')).length <= 3, 'the newest snapshot and two older ones are kept');
  await s.close();
  s = await openAt(dir);
  const state = await s.load();
  assert.equal(state.entries.at(-1)!.index, 3000);
  assert.equal(state.entries[0]!.index, state.applied + 1);
  assert.deepEqual(state.hardState, { currentTerm: 1, votedFor: 'n1', commitIndex: 3000 });
  await s.close();
});

test('FileStorage: producers looping append → sync concurrently never overlap flushes, across segment rolls', async () => {
  const dir = temp.make();
  let s = await openAt(dir);
  let next = 1;
  let calls = 0;
  const producer = async (): Promise<void> => {
    while (next <= 3000) {
      const count = 1 + (next % 37);
      s.append(range(next, next + count - 1, 1, 50));
      next += count;
      calls++;
      await s.sync();
    }
  };
  await Promise.all([producer(), producer(), producer(), producer()]);
  assert.ok(s.fdatasyncCount < calls, `group commit coalesced ${calls} calls into ${s.fdatasyncCount} fdatasyncs`);
  assert.ok(s.segmentCount > 10);
  await s.close();
  s = await openAt(dir);
  const indexes = (await s.load()).entries.map((e) => e.index);
  assert.equal(indexes.length, next - 1);
  assert.ok(indexes.every((index, i) => index === i + 1));
  await s.close();
});

test('FileStorage: one snapshot store at a time; no compaction beside an install (storage/types.ts)', async () => {
  const dir = temp.make();
  const s = await openAt(dir);
  s.append(range(1, 40, 1));
  await s.sync();
  const saving = s.saveSnapshot(snapshotAt(10, 1));
  await assert.rejects(s.saveSnapshot(snapshotAt(20, 1)), /one at a time/);
  await assert.rejects(s.installSnapshot(snapshotAt(50, 2)), /one at a time/);
  await saving;
  const installing = s.installSnapshot(snapshotAt(50, 2));
  await assert.rejects(s.compact(10), /while a snapshot is being installed/);
  await installing;
  const compacting = s.compact(50);
  await assert.rejects(s.installSnapshot(snapshotAt(60, 2)), /while the log is being compacted/);
  await compacting;
  await s.installSnapshot(snapshotAt(60, 2));
  await s.close();
  const reopened = await openAt(dir);
  assert.equal((await reopened.load()).snapshot?.index, 60);
  await reopened.close();
});

test('FileStorage: a snapshot larger than one write chunk (checksummed a chunk at a time) round-trips and verifies', async () => {
  const dir = temp.make();
  const s = await openAt(dir);
  s.append(range(1, 5, 1));
  await s.sync();
  const data = new Uint8Array(9 * 1024 * 1024 + 17);
  for (let i = 0; i < data.length; i += 4093) data[i] = (i >>> 12) & 0xff;
  await s.saveSnapshot({ meta: snapshotAt(5, 1).meta, data });
  await s.close();
  const reopened = await openAt(dir);
  assert.equal((await reopened.load()).snapshot?.index, 5, 'the checksum over all chunks verifies at recovery');
  const loaded = await reopened.loadSnapshot();
  assert.ok(loaded !== null && Buffer.from(loaded.data).equals(Buffer.from(data)));
  await reopened.close();
});

test('FileStorage: readSnapshot() reads the newest snapshot back at once, and refuses a damaged file by name and offset', async () => {
  const dir = temp.make();
  const s = await openAt(dir);
  assert.equal(s.readSnapshot(), null, 'none yet');
  s.append(range(1, 8, 1));
  await s.sync();
  await s.saveSnapshot(snapshotAt(5, 1));
  await s.saveSnapshot(snapshotAt(8, 1));
  const read = s.readSnapshot();
  const loaded = await s.loadSnapshot();
  assert.equal(read?.meta.index, 8, 'the newest');
  assert.deepEqual(read, loaded, 'as loadSnapshot() reads it');
  // Flip a byte of the data: the checksum refuses it, naming the file.
  const file = readdirSync(dir, { recursive: true }).map(String).find((f) => f.includes('snap') && f.includes('8'));
  assert.ok(file !== undefined, `a snapshot file: ${readdirSync(dir, { recursive: true }).join(', ')}`);
  const path = join(dir, file);
  const bytes = readFileSync(path);
  bytes[bytes.length - 10] ^= 0xff;
  writeFileSync(path, bytes);
  assert.throws(() => s.readSnapshot(), (err: Error) => err instanceof StorageCorruptionError && err.message.includes(path));
  await s.close();
});

test('FileStorage: a restart checks the newest snapshot once at open, without holding it, and openSnapshot() reads it through its file', async () => {
  const dir = temp.make();
  const s = await openAt(dir);
  s.append(range(1, 5, 1));
  await s.sync();
  const data = new Uint8Array(5 << 20).map((_, i) => (i * 131 + (i >> 12)) & 0xff);
  await s.saveSnapshot({ meta: snapshotAt(5, 1).meta, data });
  await s.close();
  const reopened = await openAt(dir);
  assert.equal(reopened.openStats.snapshotBytes, data.length, 'checked at open');
  const source = reopened.openSnapshot();
  assert.ok(source !== null);
  assert.deepEqual(source.meta, snapshotAt(5, 1).meta);
  assert.equal(source.bytes, data.length);
  const whole = source.window(0, source.bytes);
  const part = source.window(3 << 20, 1000);
  // A window keeps its file open: a later snapshot deleting the name does not cut it off.
  const file = readdirSync(join(dir, 'snap')).find((f) => f.endsWith('.snap'))!;
  const saved = readFileSync(join(dir, 'snap', file));
  rmSync(join(dir, 'snap', file));
  const at = whole.load(0, data.length);
  assert.deepEqual(whole.buf.subarray(at, at + data.length), data);
  const p = part.load(10, 20);
  assert.deepEqual(part.buf.subarray(p, p + 10), data.subarray((3 << 20) + 10, (3 << 20) + 20));
  assert.throws(() => part.load(990, 1001), RangeError, 'a window shows its range only');
  assert.throws(() => source.window(data.length - 10, 11), RangeError, 'a window within the snapshot only');
  whole.close();
  part.close();
  // Given out once: then loadSnapshot() reads the file (here: gone, so it fails loudly).
  assert.equal(reopened.openSnapshot(), null);
  await assert.rejects(reopened.loadSnapshot(), /ENOENT/);
  writeFileSync(join(dir, 'snap', file), saved);
  assert.deepEqual((await reopened.loadSnapshot())?.data, data);
  await reopened.close();
  // A snapshot saved after open() is the newest: what open() checked is not given out.
  const again = await openAt(dir);
  again.append(range(6, 8, 1));
  await again.sync();
  await again.saveSnapshot(snapshotAt(8, 1));
  assert.equal(again.openSnapshot(), null);
  await again.close();
});

test('FileStorage: open() refuses a snapshot whose data was damaged anywhere in its pieces, naming the file and the checksum\'s offset, and falls back on the log', async () => {
  const dir = temp.make();
  const s = await openAt(dir);
  s.append(range(1, 5, 1));
  await s.sync();
  const data = new Uint8Array(7 << 20).map((_, i) => (i * 7) & 0xff);
  await s.saveSnapshot({ meta: snapshotAt(5, 1).meta, data });
  await s.close();
  const file = join(dir, 'snap', readdirSync(join(dir, 'snap')).find((f) => f.endsWith('.snap'))!);
  const good = readFileSync(file);
  // Across the 2 MiB pieces open() reads it in: the first, a boundary, the last.
  for (const at of [100, (2 << 20) - 1, 2 << 20, (6 << 20) + 5, good.length - 6]) {
    const bad = Buffer.from(good);
    bad[at] ^= 0x40;
    writeFileSync(file, bad);
    const logger = new RecordingLogger();
    const reopened = await FileStorage.open(dir, { logger });
    // The log covers the snapshot: it is skipped, with a warning naming the file and offset.
    assert.equal(reopened.openSnapshot(), null, `damage at ${at}: not given out`);
    assert.ok(logger.warnings.some((w) => w.includes(file) && w.includes('checksum')), `damage at ${at}: ${logger.warnings.join(' | ')}`);
    await reopened.close();
    renameSync(`${file}.corrupt`, file);
  }
  writeFileSync(file, good);
  const reopened = await openAt(dir);
  assert.equal(reopened.openSnapshot()?.meta.index, 5);
  await reopened.close();
});

test('snapshotDataRange: where the newest snapshot\'s data lies in its file, for that snapshot only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-data-range-'));
  try {
    const storage = await FileStorage.open(dir);
    const data = new Uint8Array(10_000).map((_, i) => (i * 31) & 0xff);
    const config = { voters: ['n1', 'n2'], votersOutgoing: [], learners: ['n3'] };
    await storage.installSnapshot({ meta: { index: 40, term: 3, config }, data });
    const range = storage.snapshotDataRange(40, 3);
    assert.ok(range !== null);
    assert.equal(range.length, data.length);
    assert.deepEqual(new Uint8Array(readFileSync(range.path).subarray(range.start, range.start + range.length)), data);
    assert.equal(storage.snapshotDataRange(40, 2), null);
    assert.equal(storage.snapshotDataRange(39, 3), null);
    await storage.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
