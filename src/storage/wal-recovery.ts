// WAL recovery: reads every segment in sequence order, verifies every checksum and replays the
// records into hard state and a contiguous log. Repairs only a torn tail of the LAST segment
// (a crash during an unsynced write); anything else throws StorageCorruptionError, because a
// record that was synced may hold a vote or an acknowledged entry (Figure 2, §5.4).
import { open, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
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
import { parseSegmentName, scanSegment } from './segment.js';

export interface StorageLogger {
  warn(message: string): void;
}

export interface SegmentInfo {
  readonly seq: number;
  readonly path: string;
  /** Bytes of valid records (the write position). */
  size: number;
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
 * Replays the WAL in `walDir`. With `repair`, a torn tail of the last segment is cut off (file
 * truncated and synced) with a warning; without it (a re-read while open) it is only ignored.
 */
export async function recoverWal(walDir: string, repair: boolean, logger: StorageLogger): Promise<RecoveredWal> {
  const segments = await listSegments(walDir, logger);
  const log: Entry[] = [];
  let hardState = INITIAL_HARD_STATE;
  let logStart = segments.length === 0 ? 1 : segments[0]!.firstIndex;
  let nextIndex = logStart;
  let markedSnapshotIndex = 0;
  const infos: SegmentInfo[] = [];

  for (let i = 0; i < segments.length; i++) {
    const { seq, firstIndex, path } = segments[i]!;
    if (i > 0 && seq !== segments[i - 1]!.seq + 1) {
      throw new StorageCorruptionError(path, 0, `segment ${segments[i - 1]!.seq + 1} is missing (sequence jumps from ${segments[i - 1]!.seq} to ${seq})`);
    }
    if (firstIndex !== nextIndex) {
      throw new StorageCorruptionError(path, 0, `segment starts at index ${firstIndex} but the log before it ends at ${nextIndex - 1}`);
    }
    const info: SegmentInfo = { seq, path, size: 0, maxIndex: 0 };
    infos.push(info);
    const buf = await readFile(path);
    const scan = scanSegment(buf, (type, start, end, offset) => {
      const fail = (reason: string): never => {
        throw new StorageCorruptionError(path, offset, reason);
      };
      switch (type) {
        case RECORD_TYPES.entries: {
          const first = firstEntryIndex(buf, start, end);
          if (first === 0) return;
          if (first !== nextIndex) fail(`entries start at index ${first}, expected ${nextIndex}`);
          const problem = decodeEntries(buf, start, end, log);
          if (problem !== null) fail(problem);
          nextIndex = log.length === 0 ? nextIndex : log[log.length - 1]!.index + 1;
          info.maxIndex = Math.max(info.maxIndex, nextIndex - 1);
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
          } else if (kind !== SNAPSHOT_MARKER_KINDS.taken) {
            fail(`unknown snapshot marker kind ${kind}`);
          }
          return;
        }
        default:
          fail(`unknown record type ${type}`);
      }
    });
    info.size = scan.validEnd;
    if (scan.damage === null) continue;
    const isLast = i === segments.length - 1;
    if (!isLast || !scan.damage.isTail) {
      const where = isLast ? 'valid records follow it' : 'not the last segment';
      throw new StorageCorruptionError(path, scan.damage.offset, `${scan.damage.reason} (${where})`);
    }
    const lost = buf.length - scan.validEnd;
    if (lost === 0) continue; // an empty segment created just before a crash: nothing to repair
    logger.warn(`raftkv storage: ${path}: torn write at byte offset ${scan.damage.offset} (${scan.damage.reason}); ` + `${repair ? 'cut off' : 'ignored'} ${lost} byte(s) that were never synced`);
    if (repair) await truncateFile(path, scan.validEnd);
  }

  if (log.length === 0) logStart = nextIndex;
  const firstFile = infos.find((s) => s.maxIndex >= logStart)?.path ?? null;
  return { segments: infos, hardState, log, logStart, nextIndex, markedSnapshotIndex, firstFile };
}

async function listSegments(walDir: string, logger: StorageLogger): Promise<{ seq: number; firstIndex: number; path: string }[]> {
  const out: { seq: number; firstIndex: number; path: string }[] = [];
  for (const name of await readdir(walDir)) {
    const parsed = parseSegmentName(name);
    if (parsed === null) logger.warn(`raftkv storage: ignoring ${join(walDir, name)}: not a WAL segment name`);
    else out.push({ ...parsed, path: join(walDir, name) });
  }
  return out.sort((a, b) => a.seq - b.seq);
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
