// A snapshot file is read in one pass, its CRC computed chunk by chunk as the reads come in
// (readWholeFile, 8 MiB per read, several under way): the bytes must come back exactly at every size around a chunk
// boundary, and a byte damaged in any chunk, the trailer or the header, or a file cut short,
// must still be refused, naming the file and the byte offset.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { StorageCorruptionError } from '../../src/storage/index.js';
import { readWholeFile } from '../../src/storage/fs-util.js';
import { readSnapshotFile, readSnapshotFileSync, writeSnapshotFile } from '../../src/storage/snapshot-file.js';
import { snapshotAt } from './conformance.js';
import { TempDirs } from './helpers.js';

const temp = new TempDirs();
after(() => temp.removeAll());
const CHUNK = 8 << 20;

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed + (i >>> 13)) & 0xff;
  return b;
}

test('readWholeFile returns every byte, in chunks that tile the file, at sizes around a chunk boundary', async () => {
  const dir = temp.make();
  for (const size of [0, 1, 4095, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 12345]) {
    const path = join(dir, `f-${size}`);
    const bytes = pattern(size, size);
    writeFileSync(path, bytes);
    const parts: { offset: number; length: number; fileBytes: number; crc: number }[] = [];
    const read = await readWholeFile(path, (part, offset, fileBytes) => parts.push({ offset, length: part.length, fileBytes, crc: crc32(part) }));
    assert.equal(read.length, size);
    assert.ok(read.equals(bytes), `size ${size}: bytes differ`);
    let at = 0;
    for (const p of parts) {
      assert.equal(p.offset, at, `size ${size}: parts in order, no gap`);
      assert.equal(p.fileBytes, size);
      assert.ok(p.length > 0 && p.length <= CHUNK);
      assert.equal(p.crc, crc32(bytes.subarray(p.offset, p.offset + p.length)), `size ${size}: a part is the bytes at its offset`);
      at += p.length;
    }
    assert.equal(at, size);
  }
});

test('readWholeFile stops at the first chunk whose callback throws, and rejects with its error', async () => {
  const dir = temp.make();
  const path = join(dir, 'f');
  writeFileSync(path, pattern(3 * CHUNK, 7));
  let calls = 0;
  await assert.rejects(readWholeFile(path, () => {
    calls++;
    throw new Error('stop here');
  }), /stop here/);
  assert.equal(calls, 1);
});

test('readWholeFile reads a file cut short while it reads as far as it goes, with its reads under way', async () => {
  const dir = temp.make();
  const path = join(dir, 'shrinks');
  const bytes = pattern(6 * CHUNK, 9);
  writeFileSync(path, bytes);
  const cutAt = 5 * CHUNK + CHUNK / 2;
  const parts: { offset: number; length: number; crc: number }[] = [];
  const read = await readWholeFile(path, (part, offset, fileBytes) => {
    assert.equal(fileBytes, 6 * CHUNK, 'the size at open');
    if (offset === 0) truncateSync(path, cutAt);
    parts.push({ offset, length: part.length, crc: crc32(part) });
  });
  assert.equal(read.length, cutAt);
  assert.ok(read.equals(bytes.subarray(0, cutAt)));
  assert.deepEqual(parts.map((p) => p.offset), [0, 1, 2, 3, 4, 5].map((k) => k * CHUNK), 'every part, in order, the short one last');
  assert.equal(parts.at(-1)!.length, CHUNK / 2);
  for (const p of parts) assert.equal(p.crc, crc32(bytes.subarray(p.offset, p.offset + p.length)));
});

test('readWholeFile reads into a buffer it is given when the file fits, and into a new one when it does not', async () => {
  const dir = temp.make();
  const into = Buffer.alloc(CHUNK + 100, 0xee);
  for (const size of [0, 10, CHUNK + 1, CHUNK + 100]) {
    const path = join(dir, `fits-${size}`);
    const bytes = pattern(size, 3);
    writeFileSync(path, bytes);
    const read = await readWholeFile(path, undefined, into);
    assert.ok(read.equals(bytes), `size ${size}: bytes differ`);
    if (size > 0) assert.equal(read.buffer, into.buffer, `size ${size}: read into the buffer given`);
  }
  const larger = join(dir, 'larger');
  const bytes = pattern(CHUNK + 101, 4);
  writeFileSync(larger, bytes);
  const read = await readWholeFile(larger, undefined, into);
  assert.ok(read.equals(bytes));
  assert.notEqual(read.buffer, into.buffer, 'a file larger than the buffer given gets one of its own');
  assert.ok(into.equals(pattern(CHUNK + 100, 3)), 'the buffer given still holds the last file that fit: a larger one is not read into it');
});

test('a snapshot of several chunks reads back byte for byte, as the blocking read does', async () => {
  const dir = temp.make();
  const data = pattern(2 * CHUNK + 777, 3);
  const file = await writeSnapshotFile(dir, { ...snapshotAt(42, 3), data });
  const read = await readSnapshotFile(file.path);
  assert.deepEqual(read.meta, snapshotAt(42, 3).meta);
  assert.ok(Buffer.from(read.data.buffer, read.data.byteOffset, read.data.byteLength).equals(data));
  const sync = readSnapshotFileSync(file.path);
  assert.ok(Buffer.from(sync.data.buffer, sync.data.byteOffset, sync.data.byteLength).equals(data));
});

test('a snapshot damaged in any chunk, its trailer or its header is refused naming the file and offset', async () => {
  const dir = temp.make();
  const data = pattern(2 * CHUNK + 777, 5);
  const file = await writeSnapshotFile(dir, { ...snapshotAt(7, 1), data });
  const original = readFileSync(file.path);
  const trailerAt = original.length - 4;
  const cases: { at: number; offset: number; reason: RegExp }[] = [
    { at: 100, offset: trailerAt, reason: /snapshot checksum mismatch/ }, // first chunk (configuration JSON or data)
    { at: CHUNK - 1, offset: trailerAt, reason: /snapshot checksum mismatch/ }, // last byte of the first chunk
    { at: CHUNK, offset: trailerAt, reason: /snapshot checksum mismatch/ }, // first byte of the second
    { at: 2 * CHUNK + 5, offset: trailerAt, reason: /snapshot checksum mismatch/ }, // the last, short chunk
    { at: trailerAt - 1, offset: trailerAt, reason: /snapshot checksum mismatch/ }, // last byte the CRC covers
    { at: trailerAt + 2, offset: trailerAt, reason: /snapshot checksum mismatch/ }, // the CRC itself
    { at: 3, offset: 0, reason: /bad magic/ },
    { at: 35, offset: 12, reason: /lengths in the header do not match/ }, // data length
  ];
  for (const c of cases) {
    const damaged = Buffer.from(original);
    damaged[c.at] = damaged[c.at]! ^ 0x40;
    writeFileSync(file.path, damaged);
    for (const read of [() => readSnapshotFile(file.path), async () => readSnapshotFileSync(file.path)]) {
      await assert.rejects(read(), (err: unknown) => {
        assert.ok(err instanceof StorageCorruptionError, `byte ${c.at}: ${String(err)}`);
        assert.equal(err.file, file.path);
        assert.equal(err.offset, c.offset, `byte ${c.at}`);
        assert.match(err.reason, c.reason);
        return true;
      });
    }
  }
  // Cut short inside the second chunk: its header's lengths no longer match the file.
  writeFileSync(file.path, original);
  truncateSync(file.path, CHUNK + 10);
  await assert.rejects(readSnapshotFile(file.path), (err: unknown) => err instanceof StorageCorruptionError && err.file === file.path && err.offset === 12);
  // Restored, it reads again: the refusals were the damage, not the reader.
  writeFileSync(file.path, original);
  assert.equal((await readSnapshotFile(file.path)).data.length, data.length);
});
