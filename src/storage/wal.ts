// The write-ahead log: segmented, append-only, checksummed, with group commit. It holds the
// state Figure 2 requires on stable storage (currentTerm, votedFor, log[]) plus commitIndex.
//
// ON-DISK FORMAT (version 1; a contract: change it only with a new version number)
//
// Directory `<dir>/wal/` holds segment files named `SSSSSSSSSSSSSSSS-IIIIIIIIIIIIIIII.wal`: S is
// the segment's sequence number and I the index the next log entry had when the segment was
// created, both decimal, zero-padded to 16 digits. Sequence numbers are consecutive; a gap
// means a segment is missing. Recovery checks that each segment's I equals the index the log
// before it ends at + 1.
//
// A segment is a 16-byte header followed by records, back to back:
//   header:  magic "RAFTKVWL" (8) | version u32 = 1 | CRC32 of the 12 bytes before it u32
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
// WRITES AND DURABILITY. append()/setHardState() only encode into memory. sync() writes
// everything queued with one positional write and calls fdatasync ONCE for it (group commit);
// callers that arrive while a sync is in flight share the next one. Nothing is acknowledged
// before its fdatasync returns. A new segment is started, at a sync, once the active one has
// reached `segmentBytes`; its directory entry is fsynced BEFORE that sync resolves. A failed
// write or fdatasync is sticky: every later call throws, because after a failed fsync the
// kernel may have dropped the dirty pages, and retrying would report success for lost data.
//
// TORN WRITES AND REPAIR. A crash during a write leaves, at the end of the LAST segment only,
// a partial record, zeros, or garbage (including a partial or zeroed segment header).
// Recovery recognises it as damage after which no valid record follows anywhere in the file,
// truncates the file to the last valid record and warns. Damage followed by a valid record, or
// damage in any earlier segment, hit data that was synced: recovery refuses to start with a
// StorageCorruptionError naming the file and byte offset. So does a missing segment, or a
// record whose indexes do not continue the log. (Out-of-order page writeback inside the one
// unsynced batch could in theory look like the second case; refusing is the safe answer.)
import { open, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Entry, HardState } from '../raft/types.js';
import { StorageFailedError } from './errors.js';
import { syncDirectory } from './fs-util.js';
import { validateAppend } from './log-rules.js';
import { encodeEntries, encodeHardState, encodeSnapshotMarker, encodeTruncate } from './record.js';
import type { SnapshotMarkerKind } from './record.js';
import { encodeSegmentHeader, segmentName } from './segment.js';
import { recoverWal } from './wal-recovery.js';
import type { RecoveredWal, SegmentInfo, StorageLogger } from './wal-recovery.js';

export class Wal {
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly segments: SegmentInfo[];
  private handle: FileHandle;
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

  private constructor(dir: string, segmentBytes: number, recovered: RecoveredWal, handle: FileHandle) {
    this.dir = dir;
    this.segmentBytes = segmentBytes;
    this.segments = recovered.segments;
    this.handle = handle;
    this.lastIndex = recovered.nextIndex - 1;
    this.durableNextIndex = recovered.nextIndex;
    this.durableHardState = recovered.hardState;
  }

  /** Recovers `dir` (repairing a torn tail) and opens its last segment for appending. */
  static async open(dir: string, segmentBytes: number, logger: StorageLogger): Promise<{ wal: Wal; recovered: RecoveredWal }> {
    const recovered = await recoverWal(dir, true, logger);
    if (recovered.segments.length === 0) {
      const path = join(dir, segmentName(1, 1));
      recovered.segments.push({ seq: 1, path, size: 0, maxIndex: 0 });
      const handle = await open(path, 'wx');
      await syncDirectory(dir);
      return { wal: new Wal(dir, segmentBytes, recovered, handle), recovered };
    }
    const handle = await open(recovered.segments[recovered.segments.length - 1]!.path, 'r+');
    return { wal: new Wal(dir, segmentBytes, recovered, handle), recovered };
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** fdatasync calls made so far: with group commit, far fewer than sync() calls. */
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

  setHardState(state: HardState): void {
    this.check();
    this.queue.push(encodeHardState(state));
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

  /** Group commit: one write and one fdatasync for everything queued; concurrent callers coalesce. */
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
        await unlink(this.segments[0]!.path);
        // One directory sync per deletion keeps deletions in order: a crash can leave a prefix
        // removed, never a hole in the sequence.
        await syncDirectory(this.dir);
        this.segments.shift();
      }
    };
    this.compaction = this.compaction.then(run, run);
    return this.compaction;
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    try {
      if (this.failure === null) await this.sync();
      await this.compaction;
    } finally {
      this.isClosed = true;
      await this.handle.close();
    }
  }

  /** Test hook standing for a crash: closes the file without writing what is queued. */
  async abandon(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
    await this.compaction.catch(() => undefined);
    this.queue = [];
    this.isClosed = true;
    await this.handle.close();
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
    if (this.queue.length === 0) return;
    if (this.isClosed) throw new StorageFailedError('the WAL is closed');
    if (this.isFlushing) throw new Error('internal: two WAL flushes at once');
    this.isFlushing = true;
    const buffers = this.queue;
    const maxIndex = this.queuedMaxIndex;
    const hardState = this.queuedHardState;
    const nextIndex = this.lastIndex + 1;
    this.queue = [];
    this.queuedMaxIndex = 0;
    this.queuedHardState = null;
    try {
      let segment = this.segments[this.segments.length - 1]!;
      const isNewSegment = segment.size >= this.segmentBytes;
      if (isNewSegment) segment = await this.roll(segment.seq + 1);
      if (segment.size === 0) buffers.unshift(encodeSegmentHeader(), encodeHardState(this.durableHardState));
      const data = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers);
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await this.handle.write(data, written, data.length - written, segment.size + written);
        written += bytesWritten;
      }
      await this.handle.datasync();
      this.syncs++;
      if (isNewSegment) await syncDirectory(this.dir);
      segment.size += data.length;
      segment.maxIndex = Math.max(segment.maxIndex, maxIndex);
      if (hardState !== null) this.durableHardState = hardState;
      this.durableNextIndex = nextIndex;
    } catch (error) {
      this.failure = error;
      throw new StorageFailedError(error);
    } finally {
      this.isFlushing = false;
    }
  }

  private async roll(seq: number): Promise<SegmentInfo> {
    const path = join(this.dir, segmentName(seq, this.durableNextIndex));
    const handle = await open(path, 'wx');
    const previous = this.handle;
    this.handle = handle;
    const segment: SegmentInfo = { seq, path, size: 0, maxIndex: 0 };
    this.segments.push(segment);
    await previous.close();
    return segment;
  }
}
