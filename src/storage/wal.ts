// The write-ahead log: segmented, preallocated, checksummed, with group commit. It holds the
// state Figure 2 requires on stable storage (currentTerm, votedFor, log[]) plus commitIndex.
//
// ON-DISK FORMAT (version 2; a contract: change it only with a new version number)
//
// Directory `<dir>/wal/` holds segment files named `SSSSSSSSSSSSSSSS-IIIIIIIIIIIIIIII.wal`: S is
// the segment's sequence number and I the index the next log entry had when the segment was
// created, both decimal, zero-padded to 16 digits. Sequence numbers are consecutive; a gap
// means a segment is missing. Recovery checks that each segment's I equals the index the log
// before it ends at + 1. A file `next-segment.wal.tmp` may sit beside them: the next segment,
// being zero-filled ahead of time. It holds nothing and recovery deletes it.
//
// A segment is a 16-byte header followed by records, back to back, then zeros:
//   header:  magic "RAFTKVWL" (8) | version u32 = 2 | CRC32 of the 12 bytes before it u32
//   record:  length u32 | type u8 | CRC32(payload) u32 | CRC32(the 9 bytes before it) u32 |
//            payload (length bytes)
// All integers little-endian; a u64 is two u32 halves, low first (values stay below 2^53).
// Record types and payloads:
//   1 entries    count u32, then per entry: index u64 | term u64 | type u8 (0 normal,
//                1 config) | data length u32 | data. One record per append() batch; the
//                indexes are contiguous and start at the log's last index + 1.
//   2 hard state currentTerm u64 | commitIndex u64 | vote length u32 (0xFFFFFFFF = null) |
//                votedFor as UTF-8. The last one wins.
//   3 truncate   fromIndex u64: entries from fromIndex on are removed (§5.3); the next entries
//                record starts at fromIndex.
//   4 snapshot   kind u8 (1 taken, 2 installed) | index u64 | term u64. "installed" means the
//                whole log was discarded and restarts at index + 1 (§7).
// Every segment starts with a hard state record (the one durable when it was created), so
// dropping older segments never loses the vote.
//
// PREALLOCATION (what version 2 adds). A segment is created full size: `segmentBytes` of zeros,
// written and fdatasynced while the previous segment is still in use, then records overwrite
// it in place. An fdatasync then has no file size or extent to journal: on ext4 here that is
// ~0.1 ms instead of ~1-4 ms per sync. So in version 2 the records end where only zeros are
// left in the file: the zero tail is unused space, not damage (no record is all zeros: its type
// byte and header CRC are not). A segment may run past `segmentBytes` by its last batch.
// A version 2 writer also writes at most 4 MiB (MAX_WRITE_BYTES) per synced write, splitting a
// larger flush at record boundaries (a larger record alone), so a torn write reaches at most
// that far, or the damaged record's length, past the last valid record. Version 1 segments (no
// preallocation; the file ends at the last record, and zeros after it are a torn write) are
// still read; writing always continues in a new version 2 segment.
//
// WRITES AND DURABILITY. append()/setHardState() only encode into memory (only the newest hard
// state queued is written). sync() writes everything queued with one positional writev on a
// file opened O_DSYNC (the write returns once the data is on stable storage: one thread-pool
// round trip per group commit); callers that arrive while a sync is in flight share the next
// one. Nothing is acknowledged before that write returns. A new segment is started, at a sync,
// once the active one has reached `segmentBytes`: the prepared file gets the header, the hard
// state and the batch, and only AFTER they are durable is it renamed to its segment name and
// the directory fsynced, BEFORE that sync resolves. A failed write is sticky: every later call
// throws, because after a failed fsync the kernel may have dropped the dirty pages, and
// retrying would report success for lost data.
//
// A FULL DISK is the one exception, because nothing about it is lost or half-known. ENOSPC (or
// EDQUOT) comes mostly from zero-filling the next segment, since records overwrite space that
// preallocation already allocated; otherwise from a batch that runs past the end of a segment,
// or from a copy-on-write file system. Every byte the failed write was to put down lies after
// the last acknowledged record, and the retry writes the SAME bytes at the SAME position again
// (re-dirtying any page whose writeback failed, rather than trusting an fsync to report on it):
// so a positional rewrite is idempotent, and a NoSpaceError leaves the WAL usable with the
// batch queued again in front of anything queued since. If the retry ends short of where the
// failed write reached (its hard state record is shorter), zeros go over the rest, so no
// stale record can lie past the log's end. A failure to prepare the next segment is reported
// (`onSpaceChange`) while the active segment still has room, and retried with backoff. Once a
// prepared segment has been renamed to its segment name, a failure is sticky again: only a
// reopen knows what the directory holds.
//
// TORN WRITES AND REPAIR. A crash during a write leaves, at the end of the records of the LAST
// segment only, a partial record or garbage (including a partial segment header), usually
// followed by zeros. Recovery recognises it as damage after which no valid record follows,
// zeroes it again (version 1: truncates the file to the last valid record), syncs and warns.
// Damage followed by a valid record, non-zero bytes further past the last valid record than
// one write reaches, or damage in any earlier segment, hit data that was synced (or is not a
// torn write at all): recovery refuses to start with a StorageCorruptionError naming the file and byte
// offset. So does a missing segment, or a record whose indexes do not continue the log. (Out-of-
// order page writeback inside the one unsynced batch could in theory look like the second
// case; refusing is the safe answer.) A last segment with no header yet (empty, all zeros, or a
// torn header) holds nothing and is replaced by a prepared one at the next sync.
import { constants } from 'node:fs';
import { open, rename, statfs, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Entry, HardState } from '../raft/types.js';
import { NoSpaceError, StorageFailedError, isNoSpaceCode } from './errors.js';
import { openPrivateFile, syncDirectory } from './fs-util.js';
import { validateAppend } from './log-rules.js';
import { encodeEntries, encodeHardState, encodeSnapshotMarker, encodeTruncate } from './record.js';
import type { SnapshotMarkerKind } from './record.js';
import { MAX_WRITE_BYTES, PREPARED_SEGMENT_NAME, WAL_VERSION, encodeSegmentHeader, segmentName, zeros } from './segment.js';
import type { EntryArena } from '../raft/entry-arena.js';
import { recoverWal } from './wal-recovery.js';
import type { RecoveredWal, SegmentInfo, StorageLogger } from './wal-recovery.js';

/** Every write to a segment is durable when it returns (the fdatasync is part of the write). */
const SEGMENT_OPEN_FLAGS = constants.O_RDWR | constants.O_DSYNC;

/**
 * Backoff of the retries to prepare the next segment after ENOSPC. Short at first (space may
 * come back at once: a deleted file), capped so that a disk freed later is noticed within
 * seconds; a retry first asks statfs, so polling a full disk writes nothing.
 */
const PREPARE_RETRY_MS = { first: 100, max: 2000 } as const;

export interface WalOptions {
  readonly segmentBytes: number;
  readonly logger: StorageLogger;
  /** Called whenever `isOutOfSpace` may have changed. */
  readonly onSpaceChange: () => void;
  /** Entries below this index are recovered as SKIPPED_ENTRY (recoverWal's `decodeFloor`). */
  readonly decodeFloor?: number;
  /** Where recovered entries' bytes are copied (recoverWal's `arena`); views into the segments without. */
  readonly entryArena?: EntryArena;
}

export class Wal {
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly logger: StorageLogger;
  private readonly onSpaceChange: () => void;
  private readonly segments: SegmentInfo[];
  /** The active segment, or null until the first sync writes one (new dir, version 1, no header). */
  private handle: FileHandle | null;
  /** The next segment being zero-filled (resolves to its path), or null if not started. */
  private prepared: Promise<string> | null = null;
  private queue: Buffer[] = [];
  private queuedMaxIndex = 0;
  private queuedHardState: HardState | null = null;
  /** The log's last index as seen through the queue. */
  private lastIndex: number;
  private durableNextIndex: number;
  private durableHardState: HardState;
  private inFlight: Promise<void> | null = null;
  private nextSync: Promise<void> | null = null;
  private compaction: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private isClosed = false;
  private syncs = 0;
  private isFlushing = false;
  /**
   * The active segment may hold bytes of a write that failed (ENOSPC) up to here, past its
   * last record: the next write there covers them with its records or with zeros.
   */
  private dirtyEnd = 0;
  /** The last preparation of the next segment failed for want of space. */
  private isPrepareOutOfSpace = false;
  /** The last flush failed for want of space; what it held is queued again. */
  private isWriteOutOfSpace = false;
  private prepareRetryTimer: NodeJS.Timeout | null = null;
  private prepareRetryMs = 0;

  private constructor(dir: string, options: WalOptions, recovered: RecoveredWal, handle: FileHandle | null) {
    this.dir = dir;
    this.segmentBytes = options.segmentBytes;
    this.logger = options.logger;
    this.onSpaceChange = options.onSpaceChange;
    this.segments = recovered.segments;
    this.handle = handle;
    this.lastIndex = recovered.nextIndex - 1;
    this.durableNextIndex = recovered.nextIndex;
    this.durableHardState = recovered.hardState;
  }

  /** Recovers `dir` (repairing a torn tail) and opens its last segment for writing in place. */
  static async open(dir: string, options: WalOptions): Promise<{ wal: Wal; recovered: RecoveredWal }> {
    const recovered = await recoverWal(dir, true, options.logger, options.decodeFloor ?? 0, options.entryArena ?? null);
    const last = recovered.segments.at(-1);
    // Writing resumes in place only in a version 2 segment that has its header; otherwise the
    // first sync starts a prepared segment.
    const isReusable = last !== undefined && last.size > 0 && last.version === WAL_VERSION;
    const handle = isReusable ? await open(last.path, SEGMENT_OPEN_FLAGS) : null;
    const wal = new Wal(dir, options, recovered, handle);
    wal.maybePrepareNext();
    return { wal, recovered };
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** True while the next segment cannot be prepared, or the last write failed, for want of space. */
  get isOutOfSpace(): boolean {
    return this.isPrepareOutOfSpace || this.isWriteOutOfSpace;
  }

  /** Synced writes (each an fdatasync) made so far: with group commit, far fewer than sync() calls. */
  get fdatasyncCount(): number {
    return this.syncs;
  }

  append(entries: readonly Entry[]): void {
    this.check();
    if (entries.length === 0) return;
    validateAppend(entries, this.lastIndex);
    const first = entries[0]!.index;
    if (first <= this.lastIndex) this.queue.push(encodeTruncate(first));
    this.queue.push(encodeEntries(entries));
    this.lastIndex = entries[entries.length - 1]!.index;
    this.queuedMaxIndex = Math.max(this.queuedMaxIndex, this.lastIndex);
  }

  /** Queues a hard state; only the newest one queued is written (the last one wins anyway). */
  setHardState(state: HardState): void {
    this.check();
    this.queuedHardState = state;
  }

  /** Queues a snapshot marker; "installed" discards the whole log (§7). Durable at the next sync. */
  markSnapshot(kind: SnapshotMarkerKind, index: number, term: number): void {
    this.check();
    this.queue.push(encodeSnapshotMarker(kind, index, term));
    if (kind === 'installed') {
      this.lastIndex = index;
      this.queuedMaxIndex = Math.min(this.queuedMaxIndex, index);
      for (const segment of this.segments) segment.maxIndex = Math.min(segment.maxIndex, index);
    }
  }

  /** Group commit: one synced write for everything queued; concurrent callers coalesce. */
  sync(): Promise<void> {
    if (this.failure !== null) return Promise.reject(new StorageFailedError(this.failure));
    // A follow-up flush that has not started yet takes everything queued so far: join it. It
    // stays set until it starts, so a caller resuming between the end of the in-flight flush
    // and the start of the follow-up cannot start a second, concurrent flush.
    if (this.nextSync !== null) return this.nextSync;
    if (this.inFlight === null) return this.startFlush();
    const after = (): Promise<void> => {
      this.nextSync = null;
      return this.startFlush();
    };
    this.nextSync = this.inFlight.then(after, after);
    return this.nextSync;
  }

  /** Resolves once no flush is in flight or scheduled (whatever their outcome). */
  async settled(): Promise<void> {
    while (this.inFlight !== null || this.nextSync !== null) {
      await (this.nextSync ?? this.inFlight)!.catch(() => undefined);
    }
  }

  /** Deletes whole segments, oldest first, whose live entries are all <= upTo; never the active one. */
  compact(upTo: number): Promise<void> {
    const run = async (): Promise<void> => {
      while (this.segments.length > 1 && this.segments[0]!.maxIndex <= upTo) {
        // Already gone if an earlier attempt failed after the unlink: go on from there.
        await unlink(this.segments[0]!.path).catch((error: unknown) => {
          if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
        });
        // One directory sync per deletion keeps deletions in order: a crash can leave a prefix
        // removed, never a hole in the sequence.
        await syncDirectory(this.dir);
        this.segments.shift();
      }
    };
    const result = this.compaction.then(run, run);
    // Later compactions queue behind this one whatever its outcome; only its caller hears of it.
    this.compaction = result.catch(() => undefined);
    return result.catch((error: unknown) => {
      // Nothing was acknowledged by a deletion: a full disk (possible on copy-on-write file
      // systems) leaves the segment for the next compaction.
      throw isNoSpaceCode(error) ? new NoSpaceError(error, 'deleting a compacted WAL segment') : error;
    });
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    try {
      if (this.failure === null) await this.sync();
      await this.compaction;
    } finally {
      this.isClosed = true;
      this.stopPrepareRetries();
      await this.prepared?.catch(() => undefined);
      await this.handle?.close();
    }
  }

  /** Test hook standing for a crash: closes the file without writing what is queued. */
  async abandon(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
    await this.compaction.catch(() => undefined);
    await this.prepared?.catch(() => undefined);
    this.queue = [];
    this.queuedHardState = null;
    this.isClosed = true;
    this.stopPrepareRetries();
    await this.handle?.close();
  }

  private check(): void {
    if (this.isClosed) throw new StorageFailedError('the WAL is closed');
    if (this.failure !== null) throw new StorageFailedError(this.failure);
  }

  private startFlush(): Promise<void> {
    const flush = this.flush();
    this.inFlight = flush;
    const clear = (): void => {
      if (this.inFlight === flush) this.inFlight = null;
    };
    flush.then(clear, clear);
    return flush;
  }

  private async flush(): Promise<void> {
    // A caller that joined while the flush before failed for good gets that failure: writing on
    // past a failed write would acknowledge data behind bytes the kernel may have dropped.
    if (this.failure !== null) throw new StorageFailedError(this.failure);
    if (this.queue.length === 0 && this.queuedHardState === null) return;
    if (this.isClosed) throw new StorageFailedError('the WAL is closed');
    if (this.isFlushing) throw new Error('internal: two WAL flushes at once');
    this.isFlushing = true;
    const records = this.queue;
    const maxIndex = this.queuedMaxIndex;
    const hardState = this.queuedHardState;
    const nextIndex = this.lastIndex + 1;
    this.queue = [];
    this.queuedMaxIndex = 0;
    this.queuedHardState = null;
    // The hard state goes first: if a large flush is split, any durable prefix holds it.
    const buffers = hardState === null ? records : [encodeHardState(hardState), ...records];
    let segment = this.segments.at(-1);
    const isRolling = this.handle === null || segment === undefined || segment.size >= this.segmentBytes;
    try {
      if (isRolling) {
        segment = await this.roll(buffers);
      } else {
        const end = segment!.size + byteLength(buffers);
        // Bytes of an earlier failed write beyond our end are covered with zeros: past the
        // last record, only zeros may lie (see the header).
        const pad = this.dirtyEnd > end ? zeroBuffers(this.dirtyEnd - end) : [];
        this.dirtyEnd = Math.max(this.dirtyEnd, end);
        await writeAll(this.handle!, pad.length === 0 ? buffers : [...buffers, ...pad], segment!.size);
        this.dirtyEnd = 0;
        segment!.size = end;
      }
      this.syncs++;
      segment!.maxIndex = Math.max(segment!.maxIndex, maxIndex);
      if (hardState !== null) this.durableHardState = hardState;
      this.durableNextIndex = nextIndex;
      this.setWriteOutOfSpace(false);
      this.maybePrepareNext();
    } catch (error) {
      if (this.failure === null && isNoSpaceCode(error)) {
        // Nothing of this batch was acknowledged: queue it again, in front of what came since,
        // so that the next sync writes the same bytes at the same place (see the header). A
        // newer hard state queued meanwhile wins, as it would have anyway.
        this.queue = this.queue.length === 0 ? records : [...records, ...this.queue];
        this.queuedMaxIndex = Math.max(this.queuedMaxIndex, maxIndex);
        this.queuedHardState ??= hardState;
        this.setWriteOutOfSpace(true);
        throw error instanceof NoSpaceError ? error : new NoSpaceError(error, isRolling ? 'starting a new WAL segment' : 'a WAL write');
      }
      this.failure = error;
      throw new StorageFailedError(error);
    } finally {
      this.isFlushing = false;
    }
  }

  /**
   * Starts a new segment with `batch` as its first records: the prepared file gets the header,
   * the durable hard state and the batch, synced, and only then its segment name (rename, then
   * a directory sync). A crash before the rename leaves a prepared file recovery deletes; the
   * batch in it was never acknowledged. A last segment without a header is replaced (same name).
   * A failure before the rename discards the prepared file (it holds nothing acknowledged); one
   * after it is sticky.
   */
  private async roll(batch: readonly Buffer[]): Promise<SegmentInfo> {
    const last = this.segments.at(-1);
    const isReplacing = last !== undefined && last.size === 0;
    const seq = last === undefined ? 1 : isReplacing ? last.seq : last.seq + 1;
    const buffers = [encodeSegmentHeader(), encodeHardState(this.durableHardState), ...batch];
    if (this.prepared === null) this.prepareNext();
    const preparedPath = await this.prepared!;
    this.prepared = null;
    let handle: FileHandle | null = null;
    let isNamed = false;
    try {
      handle = await open(preparedPath, SEGMENT_OPEN_FLAGS);
      await writeAll(handle, buffers, 0);
      const path = join(this.dir, segmentName(seq, this.durableNextIndex));
      await rename(preparedPath, path);
      isNamed = true;
      await syncDirectory(this.dir);
      const segment: SegmentInfo = { seq, path, size: byteLength(buffers), maxIndex: 0, version: WAL_VERSION };
      if (isReplacing) this.segments.pop();
      this.segments.push(segment);
      const previous = this.handle;
      this.handle = handle;
      this.dirtyEnd = 0;
      await previous?.close();
      return segment;
    } catch (error) {
      if (handle !== null && this.handle !== handle) await handle.close().catch(() => undefined);
      if (isNamed) this.failure = error;
      else await unlink(preparedPath).catch(() => undefined);
      throw error;
    }
  }

  /** Prepares the next segment once the active one is half full, so it is ready when needed. */
  private maybePrepareNext(): void {
    if (this.prepared !== null || this.prepareRetryTimer !== null || this.isClosed || this.failure !== null) return;
    const active = this.segments.at(-1);
    if (this.handle === null || active === undefined || active.size >= this.segmentBytes / 2) this.prepareNext();
  }

  /**
   * Zero-fills `segmentBytes` into the prepared file (mode 0600) and fdatasyncs it, off the
   * write path. For want of space the attempt deletes what it wrote, raises the alarm while the
   * active segment still has room, and is retried with backoff; any other failure stays in
   * `prepared` for the roll that needs the file to report.
   */
  private prepareNext(): void {
    const path = join(this.dir, PREPARED_SEGMENT_NAME);
    const size = this.segmentBytes;
    const prepare = async (): Promise<string> => {
      // After a failure for want of space, ask first: zero-filling a full disk to find out
      // would take the last free blocks from everything else on it, again and again.
      if (this.isPrepareOutOfSpace) await assertFreeBytes(this.dir, size);
      const handle = await openPrivateFile(path);
      try {
        const chunk = zeros();
        for (let at = 0; at < size; ) {
          const { bytesWritten } = await handle.write(chunk, 0, Math.min(chunk.length, size - at), at);
          at += bytesWritten;
        }
        await handle.datasync();
      } finally {
        await handle.close();
      }
      return path;
    };
    const attempt = prepare().then(
      (prepared) => {
        this.prepareRetryMs = 0;
        this.setPrepareOutOfSpace(false);
        return prepared;
      },
      async (error: unknown) => {
        if (!isNoSpaceCode(error)) throw error;
        // The file holds nothing: give its blocks back at once.
        await unlink(path).catch(() => undefined);
        if (this.prepared === attempt) this.prepared = null;
        this.setPrepareOutOfSpace(true);
        this.schedulePrepareRetry();
        throw error instanceof NoSpaceError ? error : new NoSpaceError(error, 'preparing the next WAL segment');
      },
    );
    this.prepared = attempt;
    // A failure surfaces at the roll that needs the file; until then it must not go unhandled.
    attempt.catch(() => undefined);
  }

  private schedulePrepareRetry(): void {
    if (this.isClosed || this.prepareRetryTimer !== null) return;
    this.prepareRetryMs = Math.min(PREPARE_RETRY_MS.max, Math.max(PREPARE_RETRY_MS.first, this.prepareRetryMs * 2));
    this.prepareRetryTimer = setTimeout(() => {
      this.prepareRetryTimer = null;
      this.maybePrepareNext();
    }, this.prepareRetryMs);
    // Background work: it must not keep a process alive that has nothing else to do.
    this.prepareRetryTimer.unref();
  }

  private stopPrepareRetries(): void {
    if (this.prepareRetryTimer !== null) clearTimeout(this.prepareRetryTimer);
    this.prepareRetryTimer = null;
  }

  private setPrepareOutOfSpace(value: boolean): void {
    if (this.isPrepareOutOfSpace === value) return;
    const before = this.isOutOfSpace;
    this.isPrepareOutOfSpace = value;
    if (value) this.logger.warn(`raftkv storage: ${this.dir}: no space for the next WAL segment (${this.segmentBytes} bytes); writes continue in the current one while it has room`);
    else this.logger.warn(`raftkv storage: ${this.dir}: the next WAL segment is prepared again; space is back`);
    if (this.isOutOfSpace !== before) this.onSpaceChange();
  }

  private setWriteOutOfSpace(value: boolean): void {
    if (this.isWriteOutOfSpace === value) return;
    const before = this.isOutOfSpace;
    this.isWriteOutOfSpace = value;
    if (this.isOutOfSpace !== before) this.onSpaceChange();
  }
}

/**
 * Rejects with ENOSPC unless the file system of `dir` has `bytes` free for this process (root
 * may also use the blocks reserved for it). Where statfs is not available, it lets the write
 * itself find out.
 */
async function assertFreeBytes(dir: string, bytes: number): Promise<void> {
  let free: number;
  try {
    const stats = await statfs(dir);
    free = (process.getuid?.() === 0 ? stats.bfree : stats.bavail) * stats.bsize;
  } catch {
    return;
  }
  if (free < bytes) {
    throw Object.assign(new Error(`ENOSPC: ${free} bytes free in ${dir}, the next WAL segment needs ${bytes}`), { code: 'ENOSPC' });
  }
}

/** Zeros of total length `n`, as views of the shared zero chunk. */
function zeroBuffers(n: number): Buffer[] {
  const chunk = zeros();
  const out: Buffer[] = [];
  for (let left = n; left > 0; left -= chunk.length) out.push(chunk.subarray(0, Math.min(chunk.length, left)));
  return out;
}

function byteLength(buffers: readonly Buffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.length;
  return n;
}

/**
 * Writes records back to back from `position`, in synced writes of at most MAX_WRITE_BYTES (a
 * larger record alone): recovery relies on that bound to tell a torn write from damage. One
 * writev in the common case.
 */
async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < buffers.length; i++) {
    const size = buffers[i]!.length;
    if (i > start && bytes + size > MAX_WRITE_BYTES) {
      await writeChunk(handle, buffers.slice(start, i), position);
      position += bytes;
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  await writeChunk(handle, start === 0 ? buffers : buffers.slice(start), position);
}

/** One writev; continues after a short write (the file is O_DSYNC). */
async function writeChunk(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  const total = byteLength(buffers);
  let { bytesWritten } = await handle.writev(buffers, position);
  if (bytesWritten === total) return;
  const data = Buffer.concat(buffers);
  while (bytesWritten < total) {
    const result = await handle.write(data, bytesWritten, total - bytesWritten, position + bytesWritten);
    bytesWritten += result.bytesWritten;
  }
}
