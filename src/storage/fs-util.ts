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
 * Reads the whole file into one Buffer, `READ_CHUNK_BYTES` per read, calling `onChunk` with each
 * part read (its offset, and the file's size at open) in order, while the next read is already
 * under way: a checksum of the file costs no pass of its own. A file that ends sooner than its
 * size at open (truncated meanwhile) is read as far as it goes; one that grew, to that size.
 *
 * With `into` at least the file's size, the file is read into it (the result is a view of it)
 * instead of a new Buffer: a caller that reads several files one after the other and keeps no
 * view of the last one reuses memory it has already touched. A fresh buffer costs a page fault
 * per 4 KiB page on first touch, which is most of a 64 MiB segment's read on a virtual machine
 * (docs/benchmarks.md, "Twelfth session").
 */
export async function readWholeFile(path: string, onChunk?: (part: Buffer, offset: number, fileBytes: number) => void, into?: Buffer): Promise<Buffer> {
  const handle = await open(path, 'r');
  let reading: Promise<{ bytesRead: number }> | null = null;
  try {
    const size = (await handle.stat()).size;
    const buf = into !== undefined && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
    let at = 0;
    reading = size > 0 ? handle.read(buf, 0, Math.min(READ_CHUNK_BYTES, size), 0) : null;
    while (reading !== null) {
      const { bytesRead } = await reading;
      const from = at;
      at += bytesRead;
      reading = bytesRead > 0 && at < size ? handle.read(buf, at, Math.min(READ_CHUNK_BYTES, size - at), at) : null;
      if (bytesRead > 0) onChunk?.(buf.subarray(from, at), from, size);
    }
    return at === size ? buf : buf.subarray(0, at);
  } finally {
    // onChunk threw: the read under way still writes into buf; the handle closes after it.
    if (reading !== null) await reading.catch(() => undefined);
    await handle.close();
  }
}
