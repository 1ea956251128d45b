// WAL recovery: reads every segment in sequence order, verifies every checksum and replays the
// records into hard state and a contiguous log. A zero tail is the preallocated, unused rest of
// a segment (format version 2) and ends it cleanly. Repairs only a torn tail of the LAST segment
// (a crash during an unsynced write); anything else throws StorageCorruptionError, because a
// record that was synced may hold a vote or an acknowledged entry (Figure 2, §5.4).
import { open, readdir, unlink } from 'node:fs/promises';
import { readWholeFile } from './fs-util.js';
import { join } from 'node:path';
import type { EntryArena } from '../raft/entry-arena.js';
import type { Entry, HardState } from '../raft/types.js';
import { StorageCorruptionError } from './errors.js';
import {
  RECORD_TYPES,
  SNAPSHOT_MARKER_KINDS,
  decodeEntries,
  decodeHardState,
  firstEntryIndex,
  readU64,
} from './record.js';
import { PREPARED_SEGMENT_NAME, SEGMENT_HEADER_BYTES, parseSegmentName, scanSegment, zeros } from './segment.js';

export interface StorageLogger {
  warn(message: string): void;
}

export interface SegmentInfo {
  readonly seq: number;
  readonly path: string;
  /** Bytes of valid records (the write position). */
  size: number;
  /** Format version of the segment's header; null for a segment with no valid header yet. */
  readonly version: number | null;
  /** Highest entry index still live in the segment; 0 if none. Compaction reads it. */
  maxIndex: number;
}

export interface RecoveredWal {
  /** Oldest first; the last one is where writing resumes. Empty for a new directory. */
  readonly segments: SegmentInfo[];
  readonly hardState: HardState;
  /** The replayed log, contiguous, starting at logStart. */
  readonly log: Entry[];
  readonly logStart: number;
  /** The index the next entry must have (lastIndex + 1). */
  readonly nextIndex: number;
  /** Highest snapshot the WAL says was taken or installed (0 if none). */
  readonly markedSnapshotIndex: number;
  /** Where the replayed log's first entry was read, for error messages. */
  readonly firstFile: string | null;
}

export const INITIAL_HARD_STATE: HardState = { currentTerm: 0, votedFor: null, commitIndex: 0 };

/**
 * Replays the WAL in `walDir`. With `repair`, a torn tail of the last segment is cut off (zeroed
 * in a preallocated segment, truncated in a version 1 one, and synced) with a warning, and a
 * leftover prepared segment is deleted; without it (a re-read while open) both are only ignored.
 *
 * Entries below `decodeFloor` are checked as all others (checksums, framing, contiguity) but left
 * in the log as SKIPPED_ENTRY: a caller that will restore a snapshot at that index reads none of
 * them, and a restart at 1M keys would otherwise build ~125,000 objects only to drop them. The
 * caller must not read a log position below the floor.
 *
 * With `arena`, the entries built are copied into its slabs as they are decoded (and keep no
 * segment's buffer alive); the log the core builds from them keeps those slabs as they are.
 * Without it, they are views into the segments' buffers (a re-read while open).
 */
export async function recoverWal(walDir: string, repair: boolean, logger: StorageLogger, decodeFloor = 0, arena: EntryArena | null = null): Promise<RecoveredWal> {
  const segments = await listSegments(walDir, repair, logger);
  const log: Entry[] = [];
  let hardState = INITIAL_HARD_STATE;
  let logStart = segments.length === 0 ? 1 : segments[0]!.firstIndex;
  let nextIndex = logStart;
  let markedSnapshotIndex = 0;
  const infos: SegmentInfo[] = [];
  // With an arena, nothing recovered keeps a view of a segment's bytes (entries are copied into
  // its slabs, a vote is a string): every segment is read into the largest buffer read so far.
  let scratch: Buffer | undefined;

  for (let i = 0; i < segments.length; i++) {
    const { seq, firstIndex, path } = segments[i]!;
    if (i > 0 && seq !== segments[i - 1]!.seq + 1) {
      throw new StorageCorruptionError(path, 0, `segment ${segments[i - 1]!.seq + 1} is missing (sequence jumps from ${segments[i - 1]!.seq} to ${seq})`);
    }
    if (firstIndex !== nextIndex) {
      throw new StorageCorruptionError(path, 0, `segment starts at index ${firstIndex} but the log before it ends at ${nextIndex - 1}`);
    }
    let buf: Buffer = await readWholeFile(path, undefined, scratch);
    if (arena !== null && (scratch === undefined || buf.buffer !== scratch.buffer)) scratch = buf;
    const logLengthBefore = log.length;
    let maxIndex = 0;
    const scan = scanSegment(buf, (type, start, end, offset) => {
      const fail = (reason: string): never => {
        throw new StorageCorruptionError(path, offset, reason);
      };
      switch (type) {
        case RECORD_TYPES.entries: {
          const first = firstEntryIndex(buf, start, end);
          if (first === 0) return;
          if (first !== nextIndex) fail(`entries start at index ${first}, expected ${nextIndex}`);
          const problem = decodeEntries(buf, start, end, log, decodeFloor, arena);
          if (problem !== null) fail(problem);
          // The log is contiguous from logStart (skipped entries hold their places).
          nextIndex = logStart + log.length;
          maxIndex = Math.max(maxIndex, nextIndex - 1);
          return;
        }
        case RECORD_TYPES.hardState: {
          const decoded = decodeHardState(buf, start, end);
          if (typeof decoded === 'string') fail(decoded);
          else hardState = decoded;
          return;
        }
        case RECORD_TYPES.truncate: {
          const from = readU64(buf, start);
          if (from > nextIndex || from < 1) fail(`truncation from ${from} past the log's end ${nextIndex - 1}`);
          if (from < logStart) {
            log.length = 0;
            logStart = from;
          } else {
            log.length = from - logStart;
          }
          nextIndex = from;
          return;
        }
        case RECORD_TYPES.snapshot: {
          const kind = buf[start]!;
          const index = readU64(buf, start + 1);
          markedSnapshotIndex = Math.max(markedSnapshotIndex, index);
          if (kind === SNAPSHOT_MARKER_KINDS.installed) {
            // §7: the whole log is discarded; nothing before the marker is live any more.
            log.length = 0;
            logStart = index + 1;
            nextIndex = index + 1;
            for (const earlier of infos) earlier.maxIndex = Math.min(earlier.maxIndex, index);
            maxIndex = Math.min(maxIndex, index);
          } else if (kind !== SNAPSHOT_MARKER_KINDS.taken) {
            fail(`unknown snapshot marker kind ${kind}`);
          }
          return;
        }
        default:
          fail(`unknown record type ${type}`);
      }
    });
    const info: SegmentInfo = { seq, path, size: scan.validEnd, maxIndex, version: scan.version };
    infos.push(info);
    if (scan.damage === null) {
      // Entries are views into `buf`; do not let a mostly empty preallocated segment keep its
      // whole buffer alive: move the live prefix into a buffer of its own.
      if (arena === null && buf.length > 2 * scan.validEnd + (1 << 20)) buf = rebase(buf, scan.validEnd, log, logLengthBefore);
      continue;
    }
    const isLast = i === segments.length - 1;
    if (!isLast || !scan.damage.isTail) {
      const where = !isLast ? 'not the last segment' : scan.damage.reason.endsWith('more than one write') ? 'not a torn write' : 'valid records follow it';
      throw new StorageCorruptionError(path, scan.damage.offset, `${scan.damage.reason} (${where})`);
    }
    const lost = scan.dataEnd - scan.validEnd;
    logger.warn(`raftkv storage: ${path}: torn write at byte offset ${scan.damage.offset} (${scan.damage.reason}); ` + `${repair ? 'cut off' : 'ignored'} ${lost} byte(s) that were never synced`);
    if (!repair) continue;
    // A preallocated segment keeps its length: the torn bytes become zeros again, so the file
    // stays overwritten in place. A version 1 segment (or one without a header) is truncated.
    if (scan.version === 2 && scan.validEnd >= SEGMENT_HEADER_BYTES) await zeroRange(path, scan.validEnd, scan.dataEnd);
    else await truncateFile(path, scan.validEnd);
  }

  if (log.length === 0) logStart = nextIndex;
  const firstFile = infos.find((s) => s.maxIndex >= logStart)?.path ?? null;
  return { segments: infos, hardState, log, logStart, nextIndex, markedSnapshotIndex, firstFile };
}

async function listSegments(walDir: string, repair: boolean, logger: StorageLogger): Promise<{ seq: number; firstIndex: number; path: string }[]> {
  const out: { seq: number; firstIndex: number; path: string }[] = [];
  for (const name of await readdir(walDir)) {
    if (name === PREPARED_SEGMENT_NAME) {
      // A segment being zero-filled ahead of time holds no record until it is renamed.
      if (repair) await unlink(join(walDir, name));
      continue;
    }
    const parsed = parseSegmentName(name);
    if (parsed === null) logger.warn(`raftkv storage: ignoring ${join(walDir, name)}: not a WAL segment name`);
    else out.push({ ...parsed, path: join(walDir, name) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** Copies buf[0, length) and re-points the entries decoded from `buf` (a suffix of the log) at it. */
function rebase(buf: Buffer, length: number, log: Entry[], from: number): Buffer {
  const copy = Buffer.from(buf.subarray(0, length));
  const shift = copy.byteOffset - buf.byteOffset;
  for (let k = log.length - 1; k >= from && log[k]!.data.buffer === buf.buffer; k--) {
    const e = log[k]!;
    log[k] = { index: e.index, term: e.term, type: e.type, data: new Uint8Array(copy.buffer, e.data.byteOffset + shift, e.data.length) };
  }
  return copy;
}

async function zeroRange(path: string, from: number, to: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const chunk = zeros();
    for (let at = from; at < to; ) {
      const { bytesWritten } = await handle.write(chunk, 0, Math.min(chunk.length, to - at), at);
      at += bytesWritten;
    }
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function truncateFile(path: string, length: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
