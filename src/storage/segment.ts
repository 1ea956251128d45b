// WAL segment files: names, the 16-byte header, the preallocated zero tail, and the record walk
// that tells a torn tail (repairable) from damage to data that was once synced (fatal). Format
// in wal.ts's header.
import { crc32 } from 'node:zlib';
import { RECORD_HEADER_BYTES, checkRecord, isValidRecordAt, recordEnd } from './record.js';

export const SEGMENT_HEADER_BYTES = 16;
/** Written into every new segment. Version 1 segments (no preallocation) are still read. */
export const WAL_VERSION = 2;
const READABLE_VERSIONS: readonly number[] = [1, 2];
const MAGIC = Buffer.from('RAFTKVWL', 'latin1');
const NAME_PATTERN = /^(\d{16})-(\d{16})\.wal$/;
/**
 * Version 2 writers write at most this many bytes per synced write (a single larger record is
 * written alone). So a torn write damages at most this much after the last valid record, or
 * the damaged record's own length: damage spread wider than that is not a torn write.
 */
export const MAX_WRITE_BYTES = 4 << 20;
/** The next segment being zero-filled ahead of time; never a segment until renamed. */
export const PREPARED_SEGMENT_NAME = 'next-segment.wal.tmp';

export function segmentName(seq: number, firstIndex: number): string {
  return `${String(seq).padStart(16, '0')}-${String(firstIndex).padStart(16, '0')}.wal`;
}

export function parseSegmentName(name: string): { seq: number; firstIndex: number } | null {
  const match = NAME_PATTERN.exec(name);
  return match === null ? null : { seq: Number(match[1]), firstIndex: Number(match[2]) };
}

export function encodeSegmentHeader(): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  MAGIC.copy(buf, 0);
  buf.writeUInt32LE(WAL_VERSION, 8);
  buf.writeUInt32LE(crc32(buf.subarray(0, 12)), 12);
  return buf;
}

/** The header's version, or why the header cannot be trusted. */
function checkSegmentHeader(buf: Buffer): number | string {
  if (buf.length < SEGMENT_HEADER_BYTES) return 'incomplete segment header';
  if (!buf.subarray(0, 8).equals(MAGIC)) return 'not a WAL segment (bad magic)';
  if (crc32(buf.subarray(0, 12)) !== buf.readUInt32LE(12)) return 'segment header checksum mismatch';
  const version = buf.readUInt32LE(8);
  if (!READABLE_VERSIONS.includes(version)) return `unsupported WAL version ${version}`;
  return version;
}

let zeroChunk: Buffer | null = null;

/** A shared, never-written buffer of zeros (1 MiB) for preallocation and zero checks. */
export function zeros(): Buffer {
  zeroChunk ??= Buffer.alloc(1 << 20);
  return zeroChunk;
}

/** One past the last non-zero byte of `buf` (0 if it is all zeros). Compares in native chunks. */
export function nonZeroEnd(buf: Buffer): number {
  const chunk = zeros();
  let end = buf.length;
  while (end > 0) {
    const start = Math.max(0, end - 65536);
    if (chunk.compare(buf, start, end, 0, end - start) !== 0) break;
    end = start;
  }
  while (end > 0 && buf[end - 1] === 0) end--;
  return end;
}

export interface SegmentDamage {
  readonly offset: number;
  readonly reason: string;
  /**
   * True when no valid record follows the damage: what a crash during an unsynced write leaves
   * (a partial record, garbage). False means something after it was written and checksummed,
   * so the damage hit data that had been synced.
   */
  readonly isTail: boolean;
}

export interface SegmentScan {
  /** Bytes up to the end of the last valid record (0 if even the header is damaged). */
  readonly validEnd: number;
  /**
   * Where the segment's bytes end: for version 2, one past the last non-zero byte (what follows
   * is the preallocated zero tail); for version 1, the file's length.
   */
  readonly dataEnd: number;
  /** The header's version; null when the header is missing (an all-zero file) or damaged. */
  readonly version: number | null;
  readonly damage: SegmentDamage | null;
}

export type RecordVisitor = (type: number, payloadStart: number, payloadEnd: number, offset: number) => void;

/**
 * Visits every valid record in order and stops at the first damaged one. In a version 2 segment
 * the log ends where only zeros are left: a record is never all zeros (its header CRC is not),
 * so a zero tail is the unused, preallocated rest of the file and not damage. A record's own
 * trailing bytes may be zero; they are read from the full buffer.
 */
export function scanSegment(buf: Buffer, visit: RecordVisitor): SegmentScan {
  const nonZero = nonZeroEnd(buf);
  if (nonZero === 0) return { validEnd: 0, dataEnd: 0, version: null, damage: null };
  const header = checkSegmentHeader(buf);
  if (typeof header === 'string') {
    return { validEnd: 0, dataEnd: nonZero, version: null, damage: { offset: 0, reason: header, isTail: !anyValidRecordFrom(buf, 0, -1, nonZero) } };
  }
  // Version 1 had no preallocation: zeros after the last record were a torn write.
  const dataEnd = header === 1 ? buf.length : nonZero;
  let at = SEGMENT_HEADER_BYTES;
  while (at < dataEnd) {
    const problem = checkRecord(buf, at);
    if (problem !== null) {
      // A payload that fails its checksum under an intact header most likely had a bit flip:
      // try the next record boundary first, then every byte after the damage.
      const next = problem === 'record payload checksum mismatch' ? recordEnd(buf, at) : -1;
      let isTail = !anyValidRecordFrom(buf, at + 1, next, dataEnd);
      let reason = problem;
      if (isTail && header !== 1 && dataEnd - at > tornWriteBound(buf, at)) {
        isTail = false;
        reason = `${problem}; non-zero bytes reach ${dataEnd - at} bytes past it, more than one write`;
      }
      return { validEnd: at, dataEnd, version: header, damage: { offset: at, reason, isTail } };
    }
    const end = recordEnd(buf, at);
    visit(buf[at + 4]!, at + RECORD_HEADER_BYTES, end, at);
    at = end;
  }
  return { validEnd: at, dataEnd, version: header, damage: null };
}

/** How far past `at` one torn write can reach: MAX_WRITE_BYTES, or the record there if its header holds. */
function tornWriteBound(buf: Buffer, at: number): number {
  const hasHeader = buf.length - at >= RECORD_HEADER_BYTES && crc32(buf.subarray(at, at + 9)) === buf.readUInt32LE(at + 9);
  return hasHeader ? Math.max(MAX_WRITE_BYTES, RECORD_HEADER_BYTES + buf.readUInt32LE(at)) : MAX_WRITE_BYTES;
}

/** Does a valid record start anywhere in [from, limit)? (None can start in a zero tail.) */
function anyValidRecordFrom(buf: Buffer, from: number, likely: number, limit: number): boolean {
  if (likely >= from && likely < limit && isValidRecordAt(buf, likely)) return true;
  for (let at = from; at < limit && at + RECORD_HEADER_BYTES <= buf.length; at++) {
    if (isValidRecordAt(buf, at)) return true;
  }
  return false;
}
