// A local snapshot written straight into its file as the state machine serializes it
// (SnapshotFileWriter, src/storage/snapshot-file.ts; docs/storage.md, "Snapshots written straight
// to their file"): chunks are checksummed and written in the background, in order; the buffers
// come back; the file is put in place only by saveWrittenSnapshot(); an abandoned or failed one
// leaves nothing behind; a full disk is a NoSpaceError the storage survives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FileStorage, NoSpaceError, StorageUsageError } from '../../src/storage/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { SNAPSHOT_WRITER_CHUNK_BYTES, type SnapshotFileWriter } from '../../src/storage/snapshot-file.js';
import type { SnapshotMeta } from '../../src/raft/types.js';
import { range } from './conformance.js';
import { RecordingLogger, TempDirs } from './helpers.js';
import { withFullDisk } from './tmpfs.js';

const temp = new TempDirs();
test.after(() => temp.removeAll());

const META: SnapshotMeta = { index: 10, term: 2, config: { voters: ['n1', 'n2', 'n3'], votersOutgoing: [], learners: [] } };

function pattern(bytes: number, seed = 7): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + seed + (i >> 9)) & 0xff;
  return out;
}

async function until(what: string, probe: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Hands `data` to `writer` as a state machine would: chunks of `chunk` bytes, in its spare buffers when it has some. */
async function writeAll(writer: SnapshotFileWriter, data: Uint8Array, chunk: number): Promise<{ spares: number; behind: number }> {
  writer.begin(data.length);
  let spares = 0;
  let behind = 0;
  for (let at = 0; at < data.length; at += chunk) {
    while (writer.isBehind) {
      behind++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const part = data.subarray(at, Math.min(data.length, at + chunk));
    const spare = writer.spare();
    if (spare !== null) spares++;
    const buf = spare !== null && spare.length >= part.length ? spare : new Uint8Array(Math.max(chunk, part.length));
    buf.set(part);
    writer.write(buf, part.length);
  }
  await until('everything written', () => writer.isWritten());
  return { spares, behind };
}

test('a snapshot written chunk by chunk is saved, read back, verified, and survives a restart; its buffers come back', async () => {
  const dir = temp.make();
  const storage = await FileStorage.open(dir, { logger: new RecordingLogger() });
  storage.append(range(1, 12, 2));
  await storage.sync();
  const data = pattern(9 * SNAPSHOT_WRITER_CHUNK_BYTES + 12_345);
  const writer = storage.snapshotWriter(META);
  assert.equal(writer.chunkBytes, SNAPSHOT_WRITER_CHUNK_BYTES);
  const { spares } = await writeAll(writer, data, SNAPSHOT_WRITER_CHUNK_BYTES);
  assert.ok(spares >= 4, `buffers came back to be filled again (${spares} of 10)`);
  // Readable before the save, under the temporary name, and after it, under the file's.
  const before = writer.window(5, data.length - 5);
  const first = before.load(0, 100);
  assert.deepEqual(before.buf.subarray(first, first + 100), data.subarray(5, 105));
  assert.deepEqual(readdirSync(join(dir, 'snap')).filter((n) => n.endsWith('.snap')), [], 'not in place before the save');
  await storage.saveWrittenSnapshot(writer);
  const last = data.length - 64;
  const at = before.load(last - 5, last - 5 + 64);
  assert.deepEqual(before.buf.subarray(at, at + 64), data.subarray(last, last + 64), 'a window opened before the save reads on after the rename');
  before.close();
  assert.deepEqual(readdirSync(join(dir, 'snap')), ['0000000000000010-0000000000000002.snap'], 'in place, no temporary left');
  const back = storage.readSnapshot()!;
  assert.deepEqual(back.meta, META);
  assert.ok(Buffer.from(back.data).equals(Buffer.from(data)), 'the bytes read back (checksum verified) are those written');
  await storage.compact(10);
  await storage.close();

  const reopened = await FileStorage.open(dir, { logger: new RecordingLogger() });
  try {
    const state = await reopened.load();
    assert.equal(state.applied, 10);
    assert.ok(Buffer.from((await reopened.loadSnapshot())!.data).equals(Buffer.from(data)));
  } finally {
    await reopened.close();
  }
});

test('a writer is behind while chunks wait for the disk, and a chunk larger than its buffers is written whole', async () => {
  const dir = temp.make();
  const storage = await FileStorage.open(dir, { logger: new RecordingLogger() });
  try {
    const writer = storage.snapshotWriter(META);
    const data = pattern(12 * SNAPSHOT_WRITER_CHUNK_BYTES, 3);
    writer.begin(data.length);
    // Handed over at once, without waiting: more than a few are queued.
    const big = 3 * SNAPSHOT_WRITER_CHUNK_BYTES;
    writer.write(data.slice(0, big), big);
    let sawBehind = false;
    for (let at = big; at < data.length; at += SNAPSHOT_WRITER_CHUNK_BYTES) {
      writer.write(data.slice(at, at + SNAPSHOT_WRITER_CHUNK_BYTES), SNAPSHOT_WRITER_CHUNK_BYTES);
      sawBehind ||= writer.isBehind;
    }
    assert.ok(sawBehind, 'behind with ten chunks queued');
    assert.equal(writer.isWritten(), false);
    await until('written', () => writer.isWritten());
    assert.equal(writer.isBehind, false);
    await storage.saveWrittenSnapshot(writer);
    assert.ok(Buffer.from(storage.readSnapshot()!.data).equals(Buffer.from(data)));
  } finally {
    await storage.close();
  }
});

test('an abandoned writer leaves no file, while writing or after; its misuse is refused', async () => {
  const dir = temp.make();
  const storage = await FileStorage.open(dir, { logger: new RecordingLogger() });
  try {
    const snapDir = join(dir, 'snap');
    const midway = storage.snapshotWriter(META);
    midway.begin(8 * SNAPSHOT_WRITER_CHUNK_BYTES);
    for (let i = 0; i < 6; i++) midway.write(pattern(SNAPSHOT_WRITER_CHUNK_BYTES, i), SNAPSHOT_WRITER_CHUNK_BYTES);
    assert.equal(readdirSync(snapDir).length, 1, 'a temporary file while it writes');
    midway.abandon();
    await until('the temporary file deleted', () => readdirSync(snapDir).length === 0);
    assert.throws(() => midway.write(new Uint8Array(1), 1), StorageUsageError);

    // Abandoned once its save has begun: the save's, not deleted.
    const saving = storage.snapshotWriter({ ...META, index: 9 });
    await writeAll(saving, pattern(1000), 300);
    const save = storage.saveWrittenSnapshot(saving);
    saving.abandon();
    await save;
    assert.deepEqual(readdirSync(snapDir), ['0000000000000009-0000000000000002.snap']);
    assert.equal(storage.readSnapshot()!.data.length, 1000);

    const written = storage.snapshotWriter(META);
    await writeAll(written, pattern(1000), 300);
    written.abandon();
    await until('the temporary file deleted', () => readdirSync(snapDir).length === 1);
    await assert.rejects(storage.saveWrittenSnapshot(written), StorageUsageError);

    const misused = storage.snapshotWriter(META);
    assert.throws(() => misused.write(new Uint8Array(1), 1), StorageUsageError, 'a write before begin()');
    misused.begin(10);
    assert.throws(() => misused.begin(10), StorageUsageError, 'begin() twice');
    assert.throws(() => misused.write(new Uint8Array(11), 11), StorageUsageError, 'more than announced');
    assert.throws(() => misused.window(0, 10), StorageUsageError, 'a window before it is written');
    await assert.rejects(storage.saveWrittenSnapshot(misused), StorageUsageError, 'saved before it is written');
    misused.abandon();
    await assert.rejects(storage.saveWrittenSnapshot(new MemoryStorage().snapshotWriter(META)), StorageUsageError, "another storage's writer");
    await until('the temporary files deleted', () => readdirSync(snapDir).length === 1);
    assert.equal(storage.readSnapshot()!.meta.index, 9, 'nothing else was saved');
  } finally {
    await storage.close();
  }
});

test('ENOSPC on a real tmpfs: a snapshot written into a full disk fails with NoSpaceError, leaves no file, raises the alarm, and fits once space is back', { timeout: 30_000 }, async (t) => {
  await withFullDisk(t, async (storage, filler, dir) => {
    const data = pattern(200 * 1024);
    const full = storage.snapshotWriter(META);
    await assert.rejects(writeAll(full, data, 16 * 1024), (err: unknown) => err instanceof NoSpaceError && err.code === 'NO_SPACE');
    assert.ok(storage.isOutOfSpace, 'the alarm is raised');
    full.abandon();
    await until('the partial temporary file deleted', () => readdirSync(join(dir, 'snap')).length === 0);
    // The WAL still works: the active segment has room.
    storage.append(range(21, 22, 2, 1024));
    await storage.sync();

    filler.remove();
    const fits = storage.snapshotWriter(META);
    await writeAll(fits, data, 16 * 1024);
    await storage.saveWrittenSnapshot(fits);
    assert.equal(storage.isOutOfSpace, false, 'cleared by a snapshot that fits');
    assert.ok(Buffer.from(storage.readSnapshot()!.data).equals(Buffer.from(data)));
    await storage.close();
  });
});
