// Recovery from damaged files: torn tails are repaired with a warning, everything else refuses to
// start with a StorageCorruptionError naming the file and byte offset. Tiny segments throughout.
// Segments are preallocated (format version 2): records are followed by a zero tail, which is
// the end of the log and not damage.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { FileStorage, StorageCorruptionError } from '../../src/storage/index.js';
import { plain, range, snapshotAt } from './conformance.js';
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
  /** Offset in `segment` where this batch's hard state record ends (the WAL writes it first), and where the batch ends. */
  readonly hardStateEnd: number;
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
    const previous = batches.at(-1);
    await storage.sync();
    next += size;
    const segment = lastSegment(dir);
    const end = dataEnd(readFileSync(segment));
    // A new segment starts with its header and the hard state durable before it.
    const start = previous?.segment === segment ? previous.end : 16 + HARD_STATE_RECORD_BYTES;
    batches.push({ segment, lastIndex: next - 1, hardStateEnd: start + HARD_STATE_RECORD_BYTES, end });
  }
  await storage.close();
  return batches;
}

function walFiles(dir: string): string[] {
  return readdirSync(join(dir, 'wal')).filter((name) => name.endsWith('.wal')).sort().map((name) => join(dir, 'wal', name));
}

/** Where a segment's records end: the preallocated zeros after them are not records. */
function dataEnd(buf: Buffer): number {
  let at = 16;
  while (at + 13 <= buf.length && buf[at + 4] !== 0) at += 13 + buf.readUInt32LE(at);
  return Math.min(at, buf.length);
}

function lastSegment(dir: string): string {
  return walFiles(dir).at(-1)!;
}

/** Offsets of the records in a segment, by walking the length fields (format in wal.ts). */
function recordOffsets(buf: Buffer): number[] {
  const out: number[] = [];
  for (let at = 16; at + 13 <= buf.length && buf[at + 4] !== 0; at += 13 + buf.readUInt32LE(at)) out.push(at);
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
    if (inEarlierSegment || (batch.segment === segment && batch.end <= cut)) lastIndex = batch.lastIndex;
    if (inEarlierSegment || (batch.segment === segment && batch.hardStateEnd <= cut)) commitIndex = batch.lastIndex;
  }
  return { lastIndex, commitIndex };
}

test('a torn tail cut at many offsets of the last segment loads a valid prefix of synced batches, with a warning', async () => {
  const source = temp.make();
  const batches = await writeBatches(source, 80, 3);
  const segment = lastSegment(source);
  const original = readFileSync(segment);
  const size = dataEnd(original);
  assert.ok(original.length >= SEGMENT_BYTES && size < original.length, 'the segment is preallocated: zeros follow the records');
  assert.ok(walFiles(source).length >= 3, 'the log spans several segments');
  const boundaries = [0, 16, ...recordOffsets(original).map((at) => at + 13 + original.readUInt32LE(at))];
  let seed = 12345;
  const cuts = new Set<number>([0, 1, 15, 16, 17, size - 1]);
  while (cuts.size < 60) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    cuts.add(seed % size);
  }
  // Two shapes of a torn write: the file ends at the cut (version 1 style), or the bytes after
  // the cut are zeros and the file keeps its preallocated length.
  for (const shape of ['truncated', 'zeroed'] as const) {
    for (const cut of cuts) {
      const dir = copies.make();
      cpSync(source, dir, { recursive: true });
      const copy = join(dir, 'wal', segment.slice(segment.lastIndexOf('/') + 1));
      if (shape === 'truncated') truncateSync(copy, cut);
      else writeFileSync(copy, Buffer.from(original).fill(0, cut));
      const { storage, state, logger } = await openAndLoad(dir);
      const expected = expectedAfterCut(batches, segment, Math.max(cut, 16));
      const context = `${shape} at ${cut}`;
      assert.deepEqual(state.entries.map((e) => e.index), range(1, expected.lastIndex, 1).map((e) => e.index), context);
      assert.equal(state.hardState.commitIndex, expected.commitIndex, context);
      // Nothing is torn when the cut falls on a record boundary, or when the partial record's
      // bytes happen to be all zeros (indistinguishable from the preallocated tail).
      const boundary = boundaries.filter((b) => b <= cut).at(-1)!;
      const isTorn = original.subarray(boundary, cut).some((byte) => byte !== 0);
      assert.equal(logger.warnings.length, isTorn ? 1 : 0, `${context}: ${logger.warnings.join(' | ')}`);
      if (isTorn) assert.match(logger.warnings[0]!, /torn write/);
      if (shape === 'zeroed' && cut >= 16) assert.equal(statSync(copy).size, original.length, `${context}: repaired in place`);
      // The repair is durable and the log goes on from where it was cut.
      storage.append(range(expected.lastIndex + 1, expected.lastIndex + 2, 2));
      await storage.sync();
      await storage.close();
      const reopened = await openAndLoad(dir);
      assert.deepEqual(reopened.logger.warnings, [], context);
      assert.equal(reopened.state.entries.at(-1)!.index, expected.lastIndex + 2, context);
      await reopened.storage.close();
      copies.removeAll();
    }
  }
});

test('the preallocated zero tail ends the log cleanly; a torn record followed by zeros is repaired in place', async () => {
  const source = temp.make();
  const batches = await writeBatches(source, 30, 5);
  const segment = lastSegment(source);
  const last = batches.at(-1)!;
  const previous = batches.at(-2)!;
  const copy = (d: string): string => join(d, 'wal', segment.slice(segment.lastIndexOf('/') + 1));

  // Untouched: zeros after the last record, no warning.
  let dir = temp.make();
  cpSync(source, dir, { recursive: true });
  const length = statSync(copy(dir)).size;
  assert.ok(length > last.end, 'zeros follow the last record');
  let loaded = await openAndLoad(dir);
  assert.equal(loaded.state.entries.at(-1)!.index, last.lastIndex);
  assert.deepEqual(loaded.logger.warnings, []);
  await loaded.storage.close();

  // The last batch half written, then zeros (a crash in its write): repaired by zeroing it again.
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
  assert.match(loaded.logger.warnings[0]!, /torn write at byte offset \d+/);
  await loaded.storage.close();
  const repaired = readFileSync(copy(dir));
  assert.equal(repaired.length, length, 'the segment keeps its preallocated length');
  assert.ok(repaired.subarray(start, start + 7).every((byte) => byte === 0), 'the torn bytes are zeros again');
  loaded = await openAndLoad(dir);
  assert.deepEqual(loaded.logger.warnings, []);
  loaded.storage.append(range(previous.lastIndex + 1, previous.lastIndex + 3, 4));
  await loaded.storage.sync();
  await loaded.storage.close();
  loaded = await openAndLoad(dir);
  assert.equal(loaded.state.entries.at(-1)!.index, previous.lastIndex + 3);
  assert.deepEqual(loaded.logger.warnings, []);
  await loaded.storage.close();

  // Garbage after the records, then zeros: torn as well.
  dir = temp.make();
  cpSync(source, dir, { recursive: true });
  const garbage = readFileSync(copy(dir));
  garbage.fill(0xa5, last.end, last.end + 40);
  writeFileSync(copy(dir), garbage);
  loaded = await openAndLoad(dir);
  assert.equal(loaded.state.entries.at(-1)!.index, last.lastIndex);
  assert.equal(loaded.logger.warnings.length, 1);
  await loaded.storage.close();
});

test('zeros over synced records that valid records follow refuse to start', async () => {
  const source = temp.make();
  await writeBatches(source, 60, 17);
  const files = walFiles(source);
  for (const victim of [files[1]!, files.at(-1)!]) {
    const dir = temp.make();
    cpSync(source, dir, { recursive: true });
    const file = join(dir, 'wal', victim.slice(victim.lastIndexOf('/') + 1));
    const bytes = readFileSync(file);
    const offsets = recordOffsets(bytes);
    assert.ok(offsets.length >= 4);
    bytes.fill(0, offsets[1]!, offsets[2]!);
    writeFileSync(file, bytes);
    await assertRefuses(dir, file, offsets[1]!, /record header checksum mismatch/);
  }
});

test('a zero tail in a non-last segment is clean; a non-zero byte in it refuses to start', async () => {
  // Segments roll once full, so an earlier segment rarely has a tail; give one a longer one.
  const source = temp.make();
  const batches = await writeBatches(source, 60, 19);
  const victim = walFiles(source)[1]!;
  const end = dataEnd(readFileSync(victim));
  writeFileSync(victim, Buffer.concat([readFileSync(victim).subarray(0, end), Buffer.alloc(200)]));
  const loaded = await openAndLoad(source);
  assert.deepEqual(loaded.logger.warnings, []);
  assert.equal(loaded.state.entries.at(-1)!.index, batches.at(-1)!.lastIndex);
  await loaded.storage.close();
  const bytes = readFileSync(victim);
  bytes[end + 10] = 1;
  writeFileSync(victim, bytes);
  await assertRefuses(source, victim, end, /not the last segment/);
});

test('version 1 segments (not preallocated) are still read; writing goes on in a version 2 segment', async () => {
  const dir = temp.make();
  const batches = await writeBatches(dir, 30, 23);
  // Rewrite every segment as version 1 wrote it: version 1 in the header, no zero tail.
  for (const file of walFiles(dir)) {
    const bytes = readFileSync(file);
    const v1 = Buffer.from(bytes.subarray(0, dataEnd(bytes)));
    v1.writeUInt32LE(1, 8);
    v1.writeUInt32LE(crc32(v1.subarray(0, 12)), 12);
    writeFileSync(file, v1);
  }
  const before = walFiles(dir).length;
  let loaded = await openAndLoad(dir);
  assert.deepEqual(loaded.logger.warnings, []);
  const lastIndex = batches.at(-1)!.lastIndex;
  assert.deepEqual(loaded.state.entries.map((e) => e.index), range(1, lastIndex, 1).map((e) => e.index));
  loaded.storage.append(range(lastIndex + 1, lastIndex + 2, 1));
  await loaded.storage.sync();
  await loaded.storage.close();
  const files = walFiles(dir);
  assert.equal(files.length, before + 1, 'a new segment');
  assert.equal(readFileSync(files.at(-1)!).readUInt32LE(8), 2);
  loaded = await openAndLoad(dir);
  assert.deepEqual(loaded.logger.warnings, []);
  assert.equal(loaded.state.entries.at(-1)!.index, lastIndex + 2);
  await loaded.storage.close();

  // In a version 1 segment, zeros after the last record are still a torn write: cut off.
  const lastV1 = files.at(-2)!;
  const v1Length = statSync(lastV1).size;
  unlinkSync(files.at(-1)!);
  writeFileSync(lastV1, Buffer.concat([readFileSync(lastV1), Buffer.alloc(300)]));
  loaded = await openAndLoad(dir);
  assert.equal(loaded.logger.warnings.length, 1);
  assert.match(loaded.logger.warnings[0]!, /torn write/);
  assert.equal(statSync(lastV1).size, v1Length, 'truncated to the last record');
  assert.equal(loaded.state.entries.at(-1)!.index, lastIndex);
  await loaded.storage.close();
});

test('a non-zero byte further into the zero tail than one write reaches refuses to start', async () => {
  const dir = temp.make();
  const segmentBytes = 12 << 20;
  await writeBatches(dir, 5, 31, segmentBytes);
  const segment = lastSegment(dir);
  const bytes = readFileSync(segment);
  const end = dataEnd(bytes);
  // Near the records it may be what one torn write left: repaired. Far away it cannot be.
  const near = Buffer.from(bytes);
  near[end + 1000] = 0x42;
  writeFileSync(segment, near);
  let loaded = await openAndLoad(dir);
  assert.equal(loaded.logger.warnings.length, 1);
  await loaded.storage.close();
  const far = readFileSync(segment);
  assert.equal(far[end + 1000], 0, 'repaired');
  far[end + (6 << 20)] = 0x42;
  writeFileSync(segment, far);
  await assert.rejects(FileStorage.open(dir, { segmentBytes, logger: new RecordingLogger() }), (error: unknown) => {
    assert.ok(error instanceof StorageCorruptionError);
    assert.equal(error.file, segment);
    assert.equal(error.offset, end);
    assert.match(error.message, /more than one write \(not a torn write\)/);
    return true;
  });
  // A flush larger than one write is split, and reads back whole.
  far[end + (6 << 20)] = 0;
  writeFileSync(segment, far);
  loaded = await openAndLoad(dir);
  const next = loaded.state.entries.at(-1)!.index + 1;
  loaded.storage.append(range(next, next + 9, 1, 1 << 20));
  await loaded.storage.sync();
  await loaded.storage.close();
  loaded = await openAndLoad(dir);
  assert.deepEqual(loaded.logger.warnings, []);
  assert.equal(loaded.state.entries.at(-1)!.index, next + 9);
  assert.deepEqual(plain(loaded.state.entries.slice(-10)), plain(range(next, next + 9, 1, 1 << 20)));
  await loaded.storage.close();
});

test('a leftover prepared segment is not a segment: recovery deletes it without a warning', async () => {
  const dir = temp.make();
  const batches = await writeBatches(dir, 10, 29);
  writeFileSync(join(dir, 'wal', 'next-segment.wal.tmp'), Buffer.alloc(1000, 0x5a));
  const loaded = await openAndLoad(dir);
  assert.deepEqual(loaded.logger.warnings, []);
  assert.equal(loaded.state.entries.at(-1)!.index, batches.at(-1)!.lastIndex);
  await loaded.storage.close();
});

test('a bit flip in a record of a non-last segment refuses to start, naming the file and the record offset', async () => {
  const source = temp.make();
  await writeBatches(source, 60, 7);
  const files = walFiles(source);
  assert.ok(files.length >= 3);
  const victim = files[1]!;
  const offsets = recordOffsets(readFileSync(victim));
  for (const flipAt of [offsets[1]! + 2, offsets[2]! + 11, offsets[2]! + 40, dataEnd(readFileSync(victim)) - 1]) {
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

  // A log that ends AT the snapshot's index, with another term there: the entry at the index
  // is another history too. Kept, it would pass this start (nothing follows it) and discard,
  // at the next one, everything appended after the snapshot meanwhile.
  dir = temp.make();
  storage = await FileStorage.open(dir, { segmentBytes: SEGMENT_BYTES, logger: new RecordingLogger() });
  storage.append(range(1, 8, 1));
  await storage.sync();
  await storage.close();
  await writeSnapshotFile(join(dir, 'snap'), snapshotAt(8, 2));
  loaded = await openAndLoad(dir);
  assert.equal(loaded.state.applied, 8);
  loaded.storage.append(range(9, 10, 2));
  await loaded.storage.sync();
  await loaded.storage.close();
  loaded = await openAndLoad(dir);
  assert.deepEqual(loaded.state.entries.map((e) => `${e.index}/${e.term}`), ['9/2', '10/2']);
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
