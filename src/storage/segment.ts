// WAL segment files: names, the 16-byte header, and the record walk that tells a torn tail
// (repairable) from damage to data that was once synced (fatal). Format in wal.ts's header.
import { crc32 } from 'node:zlib';
import { RECORD_HEADER_BYTES, checkRecord, isValidRecordAt, recordEnd } from './record.js';

export const SEGMENT_HEADER_BYTES = 16;
export const WAL_VERSION = 1;
const MAGIC = Buffer.from('RAFTKVWL', 'latin1');
const NAME_PATTERN = /^(\d{16})-(\d{16})\.wal$/;

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

function checkSegmentHeader(buf: Buffer): string | null {
  if (buf.length < SEGMENT_HEADER_BYTES) return 'incomplete segment header';
  if (!buf.subarray(0, 8).equals(MAGIC)) return 'not a WAL segment (bad magic)';
  if (crc32(buf.subarray(0, 12)) !== buf.readUInt32LE(12)) return 'segment header checksum mismatch';
  const version = buf.readUInt32LE(8);
  if (version !== WAL_VERSION) return `unsupported WAL version ${version}`;
  return null;
}

export interface SegmentDamage {
  readonly offset: number;
  readonly reason: string;
  /**
   * True when no valid record follows the damage: what a crash during an unsynced write leaves
   * (a partial record, a zero-filled or garbage tail). False means something after it was
   * written and checksummed, so the damage hit data that had been synced.
   */
  readonly isTail: boolean;
}

export interface SegmentScan {
  /** Bytes up to the end of the last valid record (0 if even the header is damaged). */
  readonly validEnd: number;
  readonly damage: SegmentDamage | null;
}

export type RecordVisitor = (type: number, payloadStart: number, payloadEnd: number, offset: number) => void;

/** Visits every valid record in order and stops at the first damaged one. */
export function scanSegment(buf: Buffer, visit: RecordVisitor): SegmentScan {
  const headerProblem = checkSegmentHeader(buf);
  if (headerProblem !== null) {
    return { validEnd: 0, damage: { offset: 0, reason: headerProblem, isTail: !anyValidRecordFrom(buf, 0, -1) } };
  }
  let at = SEGMENT_HEADER_BYTES;
  while (at < buf.length) {
    const problem = checkRecord(buf, at);
    if (problem !== null) {
      // A payload that fails its checksum under an intact header most likely had a bit flip:
      // try the next record boundary first, then every byte after the damage.
      const next = problem === 'record payload checksum mismatch' ? recordEnd(buf, at) : -1;
      return { validEnd: at, damage: { offset: at, reason: problem, isTail: !anyValidRecordFrom(buf, at + 1, next) } };
    }
    const end = recordEnd(buf, at);
    visit(buf[at + 4]!, at + RECORD_HEADER_BYTES, end, at);
    at = end;
  }
  return { validEnd: at, damage: null };
}

function anyValidRecordFrom(buf: Buffer, from: number, likely: number): boolean {
  if (likely >= from && isValidRecordAt(buf, likely)) return true;
  for (let at = from; at + RECORD_HEADER_BYTES <= buf.length; at++) {
    if (isValidRecordAt(buf, at)) return true;
  }
  return false;
}
