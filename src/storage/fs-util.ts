// Small file-system helpers for durability and privacy. On Linux a new or renamed file's
// directory entry is durable only once the directory itself is fsynced (the file's own fsync
// does not cover it). Everything raftkv writes is private to its user: directories 0700, files
// 0600, whatever the process's umask (a umask can only clear bits, so every file created here is
// also chmod-ed explicitly: a umask of 0 must not leave a file world-readable, and one of 0277
// must not leave it unwritable).
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Mode of every directory raftkv creates in a data dir. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of every file raftkv creates in a data dir. */
export const PRIVATE_FILE_MODE = 0o600;

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Opens `path` for writing with mode 0600 regardless of the umask: created (`exclusive`: it MUST
 * NOT exist yet) or truncated, and chmod-ed to 0600 in both cases.
 */
export async function openPrivateFile(path: string, exclusive = false): Promise<FileHandle> {
  const handle = await open(path, exclusive ? 'wx' : 'w', PRIVATE_FILE_MODE);
  try {
    await handle.chmod(PRIVATE_FILE_MODE);
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
  return handle;
}

/** Writes every byte of `data` at `position`, continuing after short writes (a write returns a short count when the disk fills up part way). */
export async function writeFully(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Replaces `path` atomically and durably with `data`, private to this user: a temporary file
 * beside it (mode 0600), fsynced, renamed over `path`, then the directory fsynced. A reader (or a
 * crash) sees the old content or the new one, never a mix; on failure the temporary file is
 * removed and `path` is left as it was. For a server's own small files (`cluster.json`).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  // A unique name: two writers of the same file never share (and truncate) one temporary.
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await openPrivateFile(temporary, true);
    try {
      await writeFully(handle, bytes, 0);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dirname(path));
}

/**
 * What readWholeFile() reads per call: fs/promises' readFile reads 512 KiB per round trip to
 * the thread pool, ~550 of them for a 290 MB snapshot at 1M keys (about a quarter of a second
 * of a restart spent waiting between them); 8 MiB takes ~35.
 */
const READ_CHUNK_BYTES = 8 << 20;
/**
 * Reads readWholeFile() keeps in flight, each a thread-pool job (libuv has 4 by default): one
 * at a time, a 265 MB snapshot took 130–520 ms on a 2-core VM (each of ~33 round trips waits
 * for a wake-up of the loop before the next read is asked for), four at a time 75–80 ms.
 */
const READS_IN_FLIGHT = 4;

/**
 * Reads the whole file into one Buffer, `READ_CHUNK_BYTES` per read with `READS_IN_FLIGHT`
 * under way at once, calling `onChunk` with each part read (its offset, and the file's size at
 * open) in order: a checksum of the file costs no pass of its own. A file that ends sooner than
 * its size at open (truncated meanwhile) is read as far as its first short read; one that grew,
 * to its size at open.
 *
 * With `into` at least the file's size, the file is read into it (the result is a view of it)
 * instead of a new Buffer: a caller that reads several files one after the other and keeps no
 * view of the last one reuses memory it has already touched. A fresh buffer costs a page fault
 * per 4 KiB page on first touch, which is most of a 64 MiB segment's read on a virtual machine
 * (docs/benchmarks.md, "Twelfth session").
 */
export async function readWholeFile(path: string, onChunk?: (part: Buffer, offset: number, fileBytes: number) => void, into?: Buffer): Promise<Buffer> {
  let buf: Buffer = Buffer.alloc(0);
  const at = await readInParts(path, READ_CHUNK_BYTES, (size) => {
    buf = into !== undefined && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
    return (offset) => [buf, offset];
  }, onChunk);
  return at === buf.length ? buf : buf.subarray(0, at);
}

/** What readFilePieces() reads per call, into buffers it reuses. */
const PIECE_BYTES = 2 << 20;

/**
 * Reads the file through, as readWholeFile() does, but into a few buffers it reuses (READS_IN_FLIGHT
 * + 1 of PIECE_BYTES): `onPiece` gets each part in order and must be done with it when it
 * returns. Checks a file of hundreds of MB without holding it, or touching that much fresh
 * memory. Returns the bytes read (fewer than the file's size at open if it was cut meanwhile).
 */
export async function readFilePieces(path: string, onPiece: (part: Buffer, offset: number, fileBytes: number) => void): Promise<number> {
  return readInParts(
    path,
    PIECE_BYTES,
    (size) => {
      const pool = Array.from({ length: Math.min(READS_IN_FLIGHT + 1, Math.ceil(size / PIECE_BYTES)) }, () => Buffer.allocUnsafe(Math.min(PIECE_BYTES, size)));
      // The piece being handed to onPiece and the READS_IN_FLIGHT read meanwhile each have their own.
      return (offset) => [pool[(offset / PIECE_BYTES) % pool.length]!, 0];
    },
    onPiece,
  );
}

/**
 * The reads of readWholeFile() and readFilePieces(): `chunkBytes` per read, READS_IN_FLIGHT under
 * way, the chunk at each offset read into where `targets(size)` says ([buffer, position]), and
 * handed to `onChunk` in order. Returns the bytes read.
 */
async function readInParts(path: string, chunkBytes: number, targets: (size: number) => (offset: number) => readonly [Buffer, number], onChunk?: (part: Buffer, offset: number, fileBytes: number) => void): Promise<number> {
  const handle = await open(path, 'r');
  // Reads under way, oldest first: each is for the chunk at its offset, into buf from pos.
  const reading: { readonly at: number; readonly length: number; readonly buf: Buffer; readonly pos: number; readonly read: Promise<{ bytesRead: number }> }[] = [];
  try {
    const size = (await handle.stat()).size;
    const targetOf = targets(size);
    let asked = 0;
    const ask = (): void => {
      const length = Math.min(chunkBytes, size - asked);
      const [buf, pos] = targetOf(asked);
      reading.push({ at: asked, length, buf, pos, read: handle.read(buf, pos, length, asked) });
      asked += length;
    };
    while (asked < size && reading.length < READS_IN_FLIGHT) ask();
    let at = 0;
    while (reading.length > 0) {
      const next = reading.shift()!;
      const end = next.at + next.length;
      let { bytesRead } = await next.read;
      at += bytesRead;
      // A short read: the rest of the chunk, until it is whole or the file ends (a read of 0).
      while (bytesRead > 0 && at < end) {
        bytesRead = (await handle.read(next.buf, next.pos + at - next.at, end - at, at)).bytesRead;
        at += bytesRead;
      }
      if (at === end && asked < size) ask();
      if (at > next.at) onChunk?.(next.buf.subarray(next.pos, next.pos + at - next.at), next.at, size);
      if (at < end) break; // the file is shorter now: what follows is not there
    }
    return at;
  } finally {
    // onChunk threw, or the file was cut short: the reads under way still write into their
    // buffers; the handle closes after them.
    await Promise.all(reading.map((r) => r.read.catch(() => undefined)));
    await handle.close();
  }
}
