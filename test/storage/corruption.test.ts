// Recovery from damaged files: torn tails are repaired with a warning, everything else refuses to
// start with a StorageCorruptionError naming the file and byte offset. Tiny segments throughout.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileStorage, StorageCorruptionError } from '../../src/storage/index.js';
import { range, snapshotAt } from './conformance.js';
import { RecordingLogger, TempDirs } from './helpers.js';

const temp = new TempDirs();
const copies = new TempDirs();
after(() => {
  temp.removeAll();
  copies.removeAll();
});
const SEGMENT_BYTES = 4096;
const HARD_STATE_RECORD_BYTES = 13 + 20; // a hard state with votedFor null

interface Batch {
  readonly segment: string;
  readonly lastIndex: number;
  /** Offset in `segment` where this batch's entries record ends, and where the batch ends. */
  readonly entriesEnd: number;
  readonly end: number;
}

/** Writes `count` synced batches (entries, then a hard state whose commitIndex is the batch's last). */
async function writeBatches(dir: string, count: number, seed: number, segmentBytes = SEGMENT_BYTES): Promise<Batch[]> {
  const storage = await FileStorage.open(dir, { segmentBytes, logger: new RecordingLogger() });
  const batches: Batch[] = [];
  let next = 1;
  for (let b = 0; b < count; b++) {
    const size = 1 + ((b * 7919 + seed) % 5);
    const entries = range(next, next + size - 1, 1, 10 + ((b * 131 + seed) % 200));
    storage.append(entries);
    storage.setHardState({ currentTerm: 1, votedFor: null, commitIndex: next + size - 1 });
    await storage.sync();
    next += size;
    const segment = lastSegment(dir);
    const end = statSync(segment).size;
    batches.push({ segment, lastIndex: next - 1, entriesEnd: end - HARD_STATE_RECORD_BYTES, end });
  }
  await storage.close();
  return batches;
}

function walFiles(dir: string): string[] {
  return readdirSync(join(dir, 'wal')).sort().map((name) => join(dir, 'wal', name));
}

function lastSegment(dir: string): string {
  return walFiles(dir).at(-1)!;
}

/** Offsets of the records in a segment, by walking the length fields (format in wal.ts). */
function recordOffsets(buf: Buffer): number[] {
  const out: number[] = [];
  for (let at = 16; at + 13 <= buf.length; at += 13 + buf.readUInt32LE(at)) out.push(at);
  return out;
}

async function openAndLoad(dir: string, logger = new RecordingLogger()) {
  const storage = await FileStorage.open(dir, { segmentBytes: SEGMENT_BYTES, logger });
  const state = await storage.load();
  return { storage, state, logger };
}

async function assertRefuses(dir: string, file: string, offset: number, reason: RegExp): Promise<void> {
  await assert.rejects(openAndLoad(dir), (error: unknown) => {
    assert.ok(error instanceof StorageCorruptionError, `expected StorageCorruptionError, got ${String(error)}`);
    assert.equal(error.code, 'STORAGE_CORRUPT');
    assert.equal(error.file, file);
    assert.equal(error.offset, offset);
    assert.match(error.message, reason);
    assert.ok(error.message.includes(file) && error.message.includes(`offset ${offset}`));
    assert.ok(!error.message.includes('\n'), 'one line');
    return true;
  });
}

function expectedAfterCut(batches: readonly Batch[], segment: string, cut: number): { lastIndex: number; commitIndex: number } {
  let lastIndex = 0;
  let commitIndex = 0;
  for (const batch of batches) {
    const inEarlierSegment = batch.segment < segment;
    if (inEarlierSegment || (batch.segment === segment && batch.entriesEnd <= cut)) lastIndex = batch.lastIndex;
    if (inEarlierSegment || (batch.segment === segment && batch.end <= cut)) commitIndex = batch.lastIndex;
  }
  return { lastIndex, commitIndex };
}

test('a torn tail cut at many offsets of the last segment loads a valid prefix of synced batches, with a warning', async () => {
  const source = temp.make();
  const batches = await writeBatches(source, 80, 3);
  const segment = lastSegment(source);
  const size = statSync(segment).size;
  assert.ok(walFiles(source).length >= 3, 'the log spans several segments');
  const boundaries = new Set(batches.filter((b) => b.segment === segment).flatMap((b) => [b.entriesEnd, b.end]));
  let seed = 12345;
  const cuts = new Set<number>([0, 1, 15, 16, 17, size - 1]);
  while (cuts.size < 60) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    cuts.add(seed % size);
  }
  for (const cut of cuts) {
    const dir = copies.make();
    cpSync(source, dir, { recursive: true });
    const copy = join(dir, 'wal', segment.slice(segment.lastIndexOf('/') + 1));
    truncateSync(copy, cut);
    const { storage, state, logger } = await openAndLoad(dir);
    const expected = expectedAfterCut(batches, segment, Math.max(cut, 16));
    assert.deepEqual(state.entries.map((e) => e.index), range(1, expected.lastIndex, 1).map((e) => e.index), `cut at ${cut}`);
    assert.equal(state.hardState.commitIndex, expected.commitIndex, `cut at ${cut}`);
    const atBoundary = boundaries.has(cut) || cut === 16 || cut === 0; // 0: an empty segment, nothing lost
    assert.equal(logger.warnings.length, atBoundary ? 0 : 1, `cut at ${cut}: ${logger.warnings.join(' | ')}`);
    if (!atBoundary) assert.match(logger.warnings[0]!, /torn write/);
    // The repair is durable and the log goes on from where it was cut.
    storage.append(range(expected.lastIndex + 1, expected.lastIndex + 2, 2));
    await storage.sync();
    await storage.close();
    const reopened = await openAndLoad(dir);
    assert.deepEqual(reopened.logger.warnings, []);
    assert.equal(reopened.state.entries.at(-1)!.index, expected.lastIndex + 2);
    await reopened.storage.close();
    copies.removeAll();
  }
});

test('a zero-filled tail, and a last batch half written then zeroed, are repaired', async () => {
  const source = temp.make();
  const batches = await writeBatches(source, 30, 5);
  const segment = lastSegment(source);
  const last = batches.at(-1)!;
  const previous = batches.at(-2)!;

  let dir = temp.make();
  cpSync(source, dir, { recursive: true });
  const copy = (d: string): string => join(d, 'wal', segment.slice(segment.lastIndexOf('/') + 1));
  writeFileSync(copy(dir), Buffer.concat([readFileSync(copy(dir)), Buffer.alloc(5000)]));
  let loaded = await openAndLoad(dir);
  assert.equal(loaded.state.entries.at(-1)!.index, last.lastIndex);
  assert.equal(loaded.logger.warnings.length, 1);
  assert.equal(statSync(copy(dir)).size, last.end, 'the zeros are cut off');
  await loaded.storage.close();

  dir = temp.make();
  cpSync(source, dir, { recursive: true });
  const bytes = readFileSync(copy(dir));
  const start = last.segment === previous.segment ? previous.end : 16;
  bytes.fill(0, start + 7);
  writeFileSync(copy(dir), bytes);
  loaded = await openAndLoad(dir);
  assert.equal(loaded.state.entries.at(-1)!.index, previous.lastIndex);
  assert.equal(loaded.state.hardState.commitIndex, previous.lastIndex);
  assert.equal(loaded.logger.warnings.length, 1);
  await loaded.storage.close();
});

test('a bit flip in a record of a non-last segment refuses to start, naming the file and the record offset', async () => {
  const source = temp.make();
  await writeBatches(source, 60, 7);
  const files = walFiles(source);
  assert.ok(files.length >= 3);
  const victim = files[1]!;
  const offsets = recordOffsets(readFileSync(victim));
  for (const flipAt of [offsets[1]! + 2, offsets[2]! + 11, offsets[2]! + 40, statSync(victim).size - 1]) {
    const dir = temp.make();
    cpSync(source, dir, { recursive: true });
    const file = join(dir, 'wal', victim.slice(victim.lastIndexOf('/') + 1));
    const bytes = readFileSync(file);
    bytes[flipAt] = bytes[flipAt]! ^ 0x10;
    writeFileSync(file, bytes);
    const recordAt = offsets.filter((o) => o <= flipAt).at(-1)!;
    await assertRefuses(dir, file, recordAt, /checksum mismatch/);
  }
});

test('a bit flip in the last segment that valid records follow refuses to start', async () => {
  const source = temp.make();
  await writeBatches(source, 60, 11, 1 << 20);
  const segment = lastSegment(source);
  const offsets = recordOffsets(readFileSync(segment));
  assert.ok(offsets.length >= 4, 'enough records in the last segment');
  const bytes = readFileSync(segment);
  const flipAt = offsets[1]! + 20;
  bytes[flipAt] = bytes[flipAt]! ^ 0x01;
  writeFileSync(segment, bytes);
  await assertRefuses(source, segment, offsets[1]!, /payload checksum mismatch \(valid records follow it\)/);
});

test('a missing middle segment refuses to start', async () => {
  const dir = temp.make();
  await writeBatches(dir, 60, 13);
  const files = walFiles(dir);
  unlinkSync(files[2]!);
  await assertRefuses(dir, files[3]!, 0, /segment \d+ is missing/);
});

test('a corrupt newest snapshot is skipped only when an older one and the log cover it', async () => {
  const dir = temp.make();
  let storage = await FileStorage.open(dir, { segmentBytes: SEGMENT_BYTES, logger: new RecordingLogger() });
  for (let i = 1; i <= 200; i += 10) {
    storage.append(range(i, i + 9, 1, 200));
    await storage.sync();
  }
  await storage.saveSnapshot(snapshotAt(50, 1, 1000));
  await storage.saveSnapshot(snapshotAt(120, 1, 1000));
  await storage.close();
  const newest = join(dir, 'snap', readdirSync(join(dir, 'snap')).sort().at(-1)!);
  const bytes = readFileSync(newest);
  bytes[500] = bytes[500]! ^ 0xff;
  writeFileSync(newest, bytes);

  const loaded = await openAndLoad(dir);
  assert.equal(loaded.state.applied, 50);
  assert.equal(loaded.state.entries[0]!.index, 51);
  assert.equal(loaded.state.entries.at(-1)!.index, 200);
  assert.equal(loaded.logger.warnings.length, 2, loaded.logger.warnings.join(' | '));
  assert.match(loaded.logger.warnings[0]!, /skipping corrupt snapshot/);
  // Compacting up to the surviving snapshot then leaves the log joined to it.
  await loaded.storage.compact(200);
  await loaded.storage.close();

  // Now lose the older snapshot as well: what the log dropped cannot be rebuilt.
  storage = (await openAndLoad(dir)).storage;
  await storage.close();
  for (const name of readdirSync(join(dir, 'snap'))) unlinkSync(join(dir, 'snap', name));
  await assert.rejects(openAndLoad(dir), (error: unknown) => {
    assert.ok(error instanceof StorageCorruptionError);
    assert.match(error.message, /the log starts at index \d+ but the newest valid snapshot ends at 0/);
    return true;
  });
});

test('a corrupt newest snapshot with the log compacted past the older one refuses to start', async () => {
  const dir = temp.make();
  const storage = await FileStorage.open(dir, { segmentBytes: SEGMENT_BYTES, logger: new RecordingLogger() });
  for (let i = 1; i <= 200; i += 10) {
    storage.append(range(i, i + 9, 1, 200));
    await storage.sync();
  }
  await storage.saveSnapshot(snapshotAt(20, 1));
  await storage.saveSnapshot(snapshotAt(150, 1));
  await storage.compact(150);
  await storage.close();
  const newest = join(dir, 'snap', readdirSync(join(dir, 'snap')).sort().at(-1)!);
  const bytes = readFileSync(newest);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x04;
  writeFileSync(newest, bytes);
  await assertRefuses(dir, newest, bytes.length - 4, /snapshot checksum mismatch, and no older snapshot plus the log covers index 150/);
});

test('§7 an install interrupted before its WAL marker: the log after a snapshot it disagrees with is discarded', async () => {
  const { writeSnapshotFile } = await import('../../src/storage/snapshot-file.js');
  // The snapshot at 8 has term 2; the old log has term 1 there: it is another history.
  let dir = temp.make();
  let storage = await FileStorage.open(dir, { segmentBytes: SEGMENT_BYTES, logger: new RecordingLogger() });
  storage.append(range(1, 12, 1));
  await storage.sync();
  await storage.close();
  await writeSnapshotFile(join(dir, 'snap'), snapshotAt(8, 2));
  let loaded = await openAndLoad(dir);
  assert.equal(loaded.state.applied, 8);
  assert.deepEqual(loaded.state.entries, []);
  assert.match(loaded.logger.warnings.join(' | '), /discarding the log after it/);
  loaded.storage.append(range(9, 9, 2));
  await loaded.storage.sync();
  await loaded.storage.close();
  loaded = await openAndLoad(dir);
  assert.deepEqual(loaded.state.entries.map((e) => `${e.index}/${e.term}`), ['9/2']);
  await loaded.storage.close();

  // The same term at the snapshot's index: the entries after it are kept.
  dir = temp.make();
  storage = await FileStorage.open(dir, { segmentBytes: SEGMENT_BYTES, logger: new RecordingLogger() });
  storage.append(range(1, 12, 1));
  await storage.sync();
  await storage.close();
  await writeSnapshotFile(join(dir, 'snap'), snapshotAt(8, 1));
  loaded = await openAndLoad(dir);
  assert.deepEqual(loaded.state.entries.map((e) => e.index), [9, 10, 11, 12]);
  await loaded.storage.close();

  // A log that ends before the snapshot restarts after it.
  dir = temp.make();
  storage = await FileStorage.open(dir, { segmentBytes: SEGMENT_BYTES, logger: new RecordingLogger() });
  storage.append(range(1, 3, 1));
  await storage.sync();
  await storage.close();
  await writeSnapshotFile(join(dir, 'snap'), snapshotAt(20, 3));
  loaded = await openAndLoad(dir);
  assert.equal(loaded.state.applied, 20);
  loaded.storage.append(range(21, 21, 3));
  await loaded.storage.sync();
  await loaded.storage.close();
  loaded = await openAndLoad(dir);
  assert.deepEqual(loaded.state.entries.map((e) => e.index), [21]);
  await loaded.storage.close();
});
