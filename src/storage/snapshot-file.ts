// Snapshot files (§7, thesis §5.1). `<dir>/snap/IIIIIIIIIIIIIIII-TTTTTTTTTTTTTTTT.snap`, index and
// term zero-padded to 16 digits. Written as a temporary `.snap.tmp`, fsynced, renamed into place,
// then the directory fsynced: a reader sees a whole snapshot or none, and a crash leaves at
// worst a `.tmp` that the next open deletes (a failed save deletes its own). Files are 0600.
//
// FORMAT (version 1, little-endian, u64 as two u32 halves, low first):
//   magic "RAFTKVSN" (8) | version u32 = 1 | config JSON length C u32 | index u64 | term u64 |
//   data length D u64 | configuration as JSON (C bytes) | data (D bytes) |
//   CRC32 of every byte before it u32
import { crc32 } from 'node:zlib';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Configuration, Snapshot } from '../raft/types.js';
import { StorageCorruptionError } from './errors.js';
import { openPrivateFile, readWholeFile, syncDirectory, writeFully } from './fs-util.js';
import { readU64, writeU64 } from './record.js';

const MAGIC = Buffer.from('RAFTKVSN', 'latin1');
const VERSION = 1;
const HEADER_BYTES = 40;
const TRAILER_BYTES = 4;
/**
 * The data is checksummed and written this much at a time: the CRC of a snapshot of hundreds of
 * MB runs on the event loop, so it is computed a chunk at a time, each just before its write.
 */
const WRITE_CHUNK_BYTES = 4 << 20;
/**
 * Written data is made durable this much at a time, not all at the end: one fsync of a 290 MB
 * file (1M keys) flushed it in one burst, and the WAL's syncs, on the same disk, waited behind
 * it; under load every snapshot was a dip in throughput. In steps, a WAL sync waits for one
 * step's flush at most, and the snapshot's writing follows the disk's pace.
 */
const SYNC_STEP_BYTES = 16 << 20;
const NAME_PATTERN = /^(\d{16})-(\d{16})\.snap$/;

export interface SnapshotFile {
  readonly index: number;
  readonly term: number;
  readonly path: string;
}

export function snapshotFileName(index: number, term: number): string {
  return `${String(index).padStart(16, '0')}-${String(term).padStart(16, '0')}.snap`;
}

/**
 * Snapshot files newest (highest index) first. With `removeTemporaries` (only at open, when no
 * save can be in progress) leftovers of a crash mid-save are deleted.
 */
export async function listSnapshotFiles(snapDir: string, removeTemporaries = false): Promise<SnapshotFile[]> {
  const out: SnapshotFile[] = [];
  for (const name of await readdir(snapDir)) {
    if (removeTemporaries && name.endsWith('.tmp')) {
      await unlink(join(snapDir, name));
      continue;
    }
    const match = NAME_PATTERN.exec(name);
    if (match !== null) out.push({ index: Number(match[1]), term: Number(match[2]), path: join(snapDir, name) });
  }
  return out.sort((a, b) => b.index - a.index || b.term - a.term);
}

/** Writes the snapshot durably: temp file, fsync, rename, directory fsync. */
export async function writeSnapshotFile(snapDir: string, snapshot: Snapshot): Promise<SnapshotFile> {
  const { index, term } = snapshot.meta;
  const config = Buffer.from(JSON.stringify(snapshot.meta.config), 'utf8');
  const head = Buffer.alloc(HEADER_BYTES + config.length);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(VERSION, 8);
  head.writeUInt32LE(config.length, 12);
  writeU64(head, index, 16);
  writeU64(head, term, 24);
  writeU64(head, snapshot.data.length, 32);
  config.copy(head, HEADER_BYTES);

  const path = join(snapDir, snapshotFileName(index, term));
  const temporary = `${path}.tmp`;
  try {
    const handle = await openPrivateFile(temporary);
    try {
      // A short write is not an error (the disk may fill up part way): write on until done or
      // until the error comes, so that a partial file is never renamed into place.
      await writeFully(handle, head, 0);
      let at = head.length;
      let crc = crc32(head);
      const data = snapshot.data;
      let unsynced = 0;
      for (let from = 0; from < data.length; from += WRITE_CHUNK_BYTES) {
        const part = data.subarray(from, Math.min(data.length, from + WRITE_CHUNK_BYTES));
        crc = crc32(part, crc);
        await writeFully(handle, part, at);
        at += part.length;
        unsynced += part.length;
        if (unsynced >= SYNC_STEP_BYTES && at < head.length + data.length) {
          await handle.datasync();
          unsynced = 0;
        }
      }
      const trailer = Buffer.alloc(TRAILER_BYTES);
      trailer.writeUInt32LE(crc, 0);
      await writeFully(handle, trailer, at);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    // Give the space back at once (a full disk is the likely cause); nothing refers to the file.
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncDirectory(snapDir);
  return { index, term, path };
}

interface Header {
  readonly index: number;
  readonly term: number;
  readonly configLength: number;
  readonly dataLength: number;
}

function parseHeader(buf: Buffer, fileBytes: number): Header | { offset: number; reason: string } {
  if (fileBytes < HEADER_BYTES + TRAILER_BYTES) return { offset: 0, reason: 'snapshot file too short' };
  if (!buf.subarray(0, 8).equals(MAGIC)) return { offset: 0, reason: 'not a snapshot file (bad magic)' };
  const version = buf.readUInt32LE(8);
  if (version !== VERSION) return { offset: 8, reason: `unsupported snapshot version ${version}` };
  const header = { configLength: buf.readUInt32LE(12), index: readU64(buf, 16), term: readU64(buf, 24), dataLength: readU64(buf, 32) };
  if (HEADER_BYTES + header.configLength + header.dataLength + TRAILER_BYTES !== fileBytes) {
    return { offset: 12, reason: `lengths in the header do not match the file size ${fileBytes}` };
  }
  return header;
}

function parseConfig(buf: Buffer): Configuration | null {
  try {
    const value: unknown = JSON.parse(buf.toString('utf8'));
    const isIds = (v: unknown): v is string[] => Array.isArray(v) && v.every((id) => typeof id === 'string');
    if (typeof value !== 'object' || value === null) return null;
    const { voters, votersOutgoing, learners } = value as Record<string, unknown>;
    return isIds(voters) && isIds(votersOutgoing) && isIds(learners) ? { voters, votersOutgoing, learners } : null;
  } catch {
    return null;
  }
}

/**
 * Reads and verifies a whole snapshot; its data is a view into the one buffer read. The CRC is
 * computed chunk by chunk as the file is read (readWholeFile), not in a pass of its own after.
 */
export async function readSnapshotFile(path: string): Promise<Snapshot> {
  let crc = 0;
  let bodyEnd = 0;
  const buf = await readWholeFile(path, (part, offset, fileBytes) => {
    bodyEnd = fileBytes - TRAILER_BYTES;
    const end = Math.min(part.length, bodyEnd - offset);
    if (end > 0) crc = crc32(part.subarray(0, end), crc);
  });
  // A file that ended before its size at open has its CRC computed again, over what was read
  // (its header's lengths refuse it first anyway).
  return parseSnapshotFile(path, buf, buf.length === bodyEnd + TRAILER_BYTES ? crc : undefined);
}

/** Where a snapshot file keeps its data: `length` bytes from `start`. */
export interface SnapshotDataRange {
  readonly path: string;
  readonly start: number;
  readonly length: number;
}

/**
 * Where the data of the snapshot file `path` lies, from its header (the file's checksum is not
 * read: a file this process wrote or verified). Throws StorageCorruptionError for a header that
 * is not one.
 */
export function snapshotDataRange(path: string): SnapshotDataRange {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(HEADER_BYTES);
    const n = readSync(fd, head, 0, HEADER_BYTES, 0);
    const header = parseHeader(head.subarray(0, n), fstatSync(fd).size);
    if ('reason' in header) throw new StorageCorruptionError(path, header.offset, header.reason);
    return { path, start: HEADER_BYTES + header.configLength, length: header.dataLength };
  } finally {
    closeSync(fd);
  }
}

/** readSnapshotFile(), blocking: for a host that sends a snapshot it does not keep in memory. */
export function readSnapshotFileSync(path: string): Snapshot {
  return parseSnapshotFile(path, readFileSync(path));
}

/**
 * Verifies and parses a whole snapshot file already in memory (`path` names it in errors).
 * `bodyCrc`, when given, is the CRC32 of every byte but the trailer, computed as they were read.
 */
export function parseSnapshotFile(path: string, buf: Buffer, bodyCrc?: number): Snapshot {
  const header = parseHeader(buf, buf.length);
  if ('reason' in header) throw new StorageCorruptionError(path, header.offset, header.reason);
  const bodyEnd = buf.length - TRAILER_BYTES;
  if ((bodyCrc ?? crc32(buf.subarray(0, bodyEnd))) !== buf.readUInt32LE(bodyEnd)) {
    throw new StorageCorruptionError(path, bodyEnd, 'snapshot checksum mismatch');
  }
  const dataStart = HEADER_BYTES + header.configLength;
  const config = parseConfig(buf.subarray(HEADER_BYTES, dataStart));
  if (config === null) throw new StorageCorruptionError(path, HEADER_BYTES, 'snapshot configuration is not valid');
  return {
    meta: { index: header.index, term: header.term, config },
    data: new Uint8Array(buf.buffer, buf.byteOffset + dataStart, header.dataLength),
  };
}
