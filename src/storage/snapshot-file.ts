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
import { close, closeSync, fchmodSync, fdatasync, fstatSync, fsync, openSync, readFileSync, readSync, unlink as unlinkCallback, write } from 'node:fs';
import { readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteWindow, Configuration, Snapshot, SnapshotMeta, SnapshotWriter } from '../raft/types.js';
import { StorageCorruptionError, StorageUsageError } from './errors.js';
import { FileWindow } from './file-window.js';
import { PRIVATE_FILE_MODE, openPrivateFile, readFilePieces, readWholeFile, syncDirectory, writeFully } from './fs-util.js';
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

/** The header and configuration of a snapshot file of `meta` with `dataLength` bytes of data. */
function fileHead(meta: SnapshotMeta, dataLength: number): Buffer {
  const config = Buffer.from(JSON.stringify(meta.config), 'utf8');
  const head = Buffer.alloc(HEADER_BYTES + config.length);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(VERSION, 8);
  head.writeUInt32LE(config.length, 12);
  writeU64(head, meta.index, 16);
  writeU64(head, meta.term, 24);
  writeU64(head, dataLength, 32);
  config.copy(head, HEADER_BYTES);
  return head;
}

/** Writes the snapshot durably: temp file, fsync, rename, directory fsync. */
export async function writeSnapshotFile(snapDir: string, snapshot: Snapshot): Promise<SnapshotFile> {
  const { index, term } = snapshot.meta;
  const head = fileHead(snapshot.meta, snapshot.data.length);

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

/** The buffers a SnapshotFileWriter takes: written as they fill, then handed back to be filled again. */
export const SNAPSHOT_WRITER_CHUNK_BYTES = 1 << 20;
/** Chunks waiting for the disk beyond which the writer is behind (its producer waits). */
const CHUNKS_AHEAD = 4;
/** Each writer's temporary file has a name of its own: one abandoned is deleted in the background. */
let temporaries = 0;

interface QueuedChunk {
  readonly buf: Uint8Array;
  readonly length: number;
  /** Where it goes in the file, and how much of it is written. */
  readonly at: number;
  done: number;
  /** Handed back once written (the file's header is not). */
  readonly isSpare: boolean;
}

/**
 * A snapshot file written as a state machine serializes it (SnapshotWriter, src/raft/types.ts):
 * each chunk is checksummed on the loop as it comes and written in the background, in order, a
 * write at a time, and made durable every SYNC_STEP_BYTES as writeSnapshotFile() does; the
 * buffers come back once written, so the whole snapshot is never in memory. It goes to a
 * temporary file of its own; finish() writes the checksum, fsyncs and renames it into place.
 * Nothing is durable before that; abandon() (or a failed finish()) deletes the temporary file.
 * A write that fails is thrown by isWritten(); a full disk as a NoSpaceError, after `onNoSpace`.
 */
export class SnapshotFileWriter implements SnapshotWriter {
  bytes = -1;
  readonly chunkBytes = SNAPSHOT_WRITER_CHUNK_BYTES;
  /** Where the file goes once finished, and where it is written until then. */
  readonly path: string;
  private readonly temporary: string;
  private head: Buffer | null = null;
  private fd: number | null = null;
  private crc = 0;
  /** The file's length once everything handed over is written. */
  private end = 0;
  private readonly queue: QueuedChunk[] = [];
  /** A write or a datasync in flight. */
  private isBusy = false;
  private unsynced = 0;
  private failure: Error | null = null;
  private readonly spares: Uint8Array[] = [];
  private state: 'writing' | 'finishing' | 'finished' | 'abandoned' = 'writing';

  constructor(
    private readonly snapDir: string,
    readonly meta: SnapshotMeta,
    private readonly wrapError: (error: unknown) => Error,
  ) {
    this.path = join(snapDir, snapshotFileName(meta.index, meta.term));
    this.temporary = `${this.path}.${process.pid}-${++temporaries}.tmp`;
  }

  /** False once a write failed: the producer then goes on, and its next write() throws that failure. */
  get isBehind(): boolean {
    return this.failure === null && this.queue.length > CHUNKS_AHEAD;
  }

  begin(bytes: number): void {
    if (this.bytes >= 0 || this.state !== 'writing') throw new StorageUsageError('begin() twice on a snapshot writer, or after it ended');
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`a snapshot of ${bytes} bytes`);
    const head = (this.head = fileHead(this.meta, bytes));
    let fd: number;
    try {
      fd = openSync(this.temporary, 'w', PRIVATE_FILE_MODE);
    } catch (error) {
      throw this.wrapError(error);
    }
    this.fd = fd;
    try {
      fchmodSync(fd, PRIVATE_FILE_MODE);
    } catch (error) {
      this.abandon();
      throw this.wrapError(error);
    }
    this.bytes = bytes;
    this.crc = crc32(head);
    this.enqueue(head, head.length, false);
  }

  write(buf: Uint8Array, length: number): void {
    if (this.failure !== null) throw this.failure;
    if (this.fd === null || this.state !== 'writing') throw new StorageUsageError('a snapshot writer written before begin() or after it ended');
    if (this.end + length > this.head!.length + this.bytes) {
      throw new StorageUsageError(`a snapshot writer given ${this.end + length - this.head!.length} bytes of the ${this.bytes} announced`);
    }
    // On the loop, a chunk at a time, just before its write (as writeSnapshotFile does).
    this.crc = crc32(buf.subarray(0, length), this.crc);
    this.enqueue(buf, length, true);
  }

  spare(): Uint8Array | null {
    return this.spares.pop() ?? null;
  }

  isWritten(): boolean {
    if (this.failure !== null) throw this.failure;
    return this.head !== null && !this.isBusy && this.queue.length === 0 && this.end === this.head.length + this.bytes;
  }

  window(start: number, length: number): ByteWindow {
    if (!this.isWritten() || this.state === 'abandoned') throw new StorageUsageError('a window on a snapshot not yet written');
    if (!(start >= 0 && length >= 0 && start + length <= this.bytes)) throw new RangeError(`bad window [${start}, +${length}) over a snapshot of ${this.bytes} bytes`);
    // Opened now, under the temporary name; it stays open across the rename.
    return new FileWindow(this.path, this.head!.length + start, length, this.state === 'finished' ? this.path : this.temporary);
  }

  /** Gives up a snapshot still being written (deleting its file); once finish() has begun, the file is the save's and this does nothing. */
  abandon(): void {
    if (this.state !== 'writing') return;
    this.state = 'abandoned';
    this.queue.length = 0;
    if (!this.isBusy) this.release();
  }

  /**
   * Makes the written file durable and puts it in place: the checksum after the data, fsync,
   * rename, directory fsync. On failure the temporary file is deleted and the error thrown.
   */
  async finish(): Promise<SnapshotFile> {
    if (!this.isWritten() || this.state !== 'writing') throw new StorageUsageError('a snapshot writer finished before all of it is written, or twice');
    this.state = 'finishing';
    const fd = this.fd!;
    this.fd = null;
    try {
      const trailer = Buffer.alloc(TRAILER_BYTES);
      trailer.writeUInt32LE(this.crc, 0);
      for (let done = 0; done < trailer.length; ) done += await new Promise<number>((resolve, reject) => write(fd, trailer, done, trailer.length - done, this.end + done, (err, n) => (err === null ? resolve(n) : reject(err))));
      await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err === null ? resolve() : reject(err))));
      await new Promise<void>((resolve, reject) => close(fd, (err) => (err === null ? resolve() : reject(err))));
      await rename(this.temporary, this.path);
    } catch (error) {
      this.state = 'abandoned';
      close(fd, () => undefined);
      await unlink(this.temporary).catch(() => undefined);
      throw this.wrapError(error);
    }
    this.state = 'finished';
    await syncDirectory(this.snapDir);
    return { index: this.meta.index, term: this.meta.term, path: this.path };
  }

  private enqueue(buf: Uint8Array, length: number, isSpare: boolean): void {
    this.queue.push({ buf, length, at: this.end, done: 0, isSpare });
    this.end += length;
    this.pump();
  }

  /** The next write, or the datasync due, unless one is in flight. */
  private pump(): void {
    if (this.isBusy || this.failure !== null) return;
    if (this.state === 'abandoned') {
      this.release();
      return;
    }
    const fd = this.fd;
    const chunk = this.queue[0];
    if (fd === null || chunk === undefined) return;
    this.isBusy = true;
    if (this.unsynced >= SYNC_STEP_BYTES) {
      fdatasync(fd, (err) => {
        this.isBusy = false;
        if (err !== null) return this.fail(err);
        this.unsynced = 0;
        this.pump();
      });
      return;
    }
    // A short write is not an error (the disk may fill up part way): the rest is written next.
    write(fd, chunk.buf, chunk.done, chunk.length - chunk.done, chunk.at + chunk.done, (err, n) => {
      this.isBusy = false;
      if (err !== null) return this.fail(err);
      chunk.done += n;
      this.unsynced += n;
      if (chunk.done === chunk.length && this.queue[0] === chunk) {
        this.queue.shift();
        if (chunk.isSpare) this.spares.push(chunk.buf);
      }
      this.pump();
    });
  }

  private fail(error: unknown): void {
    this.failure = this.wrapError(error);
    if (this.state === 'abandoned') this.release();
  }

  /** Closes and deletes the temporary file, in the background. */
  private release(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) close(fd, () => unlinkCallback(this.temporary, () => undefined));
  }
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

/** A snapshot file checked whole (verifySnapshotFile), its data left in the file. */
export interface VerifiedSnapshotFile {
  readonly meta: SnapshotMeta;
  readonly range: SnapshotDataRange;
}

/**
 * Checks a snapshot file as readSnapshotFile() does (header, lengths, checksum, configuration)
 * without holding its data: the file is read through a few buffers reused (readFilePieces), and
 * its data is left there, to be read through windows (file-window.ts). A restart at 1M keys
 * touches ~300 MB less fresh memory. Throws StorageCorruptionError naming the file and offset.
 */
export async function verifySnapshotFile(path: string): Promise<VerifiedSnapshotFile> {
  let crc = 0;
  let size = 0;
  const head = Buffer.alloc(HEADER_BYTES);
  const trailer = Buffer.alloc(TRAILER_BYTES);
  // The configuration's bytes, once the header says how many (it is in the first piece read).
  let config: Buffer | null = null;
  const read = await readFilePieces(path, (part, offset, fileBytes) => {
    size = fileBytes;
    const bodyEnd = fileBytes - TRAILER_BYTES;
    const end = Math.min(part.length, bodyEnd - offset);
    if (end > 0) crc = crc32(part.subarray(0, end), crc);
    copyOverlap(part, offset, head, 0);
    if (config === null && offset + part.length >= HEADER_BYTES) {
      const configLength = head.readUInt32LE(12);
      config = configLength <= fileBytes ? Buffer.alloc(configLength) : Buffer.alloc(0);
    }
    if (config !== null) copyOverlap(part, offset, config, HEADER_BYTES);
    copyOverlap(part, offset, trailer, bodyEnd);
  });
  if (read !== size) throw new StorageCorruptionError(path, read, `the file ends here, before the ${size} bytes it had when opened`);
  const header = parseHeader(head.subarray(0, Math.min(size, HEADER_BYTES)), size);
  const checked = checkSnapshot(path, header, crc, trailer.readUInt32LE(0), config ?? Buffer.alloc(0));
  return { meta: checked.meta, range: { path, start: checked.dataStart, length: checked.dataLength } };
}

/** Copies what of `part` (the file's bytes from `offset`) lies in the file's [at, at + target.length) into target. */
function copyOverlap(part: Buffer, offset: number, target: Buffer, at: number): void {
  const from = Math.max(offset, at);
  const to = Math.min(offset + part.length, at + target.length);
  if (from < to) part.copy(target, from - at, from - offset, to - offset);
}

/**
 * A snapshot file's checks past reading it: its header (parsed), its checksum (`bodyCrc`
 * computed, `storedCrc` the trailer's) and its configuration. Throws StorageCorruptionError.
 */
function checkSnapshot(path: string, header: Header | { offset: number; reason: string }, bodyCrc: number, storedCrc: number, config: Buffer): { meta: SnapshotMeta; dataStart: number; dataLength: number } {
  if ('reason' in header) throw new StorageCorruptionError(path, header.offset, header.reason);
  const dataStart = HEADER_BYTES + header.configLength;
  if (bodyCrc !== storedCrc) throw new StorageCorruptionError(path, dataStart + header.dataLength, 'snapshot checksum mismatch');
  const parsed = parseConfig(config.subarray(0, header.configLength));
  if (parsed === null) throw new StorageCorruptionError(path, HEADER_BYTES, 'snapshot configuration is not valid');
  return { meta: { index: header.index, term: header.term, config: parsed }, dataStart, dataLength: header.dataLength };
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
  const dataStart = HEADER_BYTES + header.configLength;
  const { meta, dataLength } = checkSnapshot(path, header, bodyCrc ?? crc32(buf.subarray(0, bodyEnd)), buf.readUInt32LE(bodyEnd), buf.subarray(HEADER_BYTES, dataStart));
  return { meta, data: new Uint8Array(buf.buffer, buf.byteOffset + dataStart, dataLength) };
}
