// The backup file that `raftkv snapshot save` writes and `raftkv snapshot restore` reads: one of
// the node's own snapshot files (storage/snapshot-file.ts: the whole state machine, i.e. the
// key-value store with its history, leases and idempotency table, plus the member registry, and
// the Raft configuration at its index, under its own CRC32) in an envelope that says where it
// came from and carries a SHA-256 over everything, so a file damaged anywhere, cut short or not
// a backup at all is refused with the offset where it goes wrong.
//
// FORMAT (version 1, little-endian):
//   magic "RKVBACKP" (8) | version u32 = 1 | header length H u32 | header JSON (H bytes) |
//   snapshot file (header.snapshotBytes bytes) | SHA-256 of every byte before it (32)
//   header JSON = {"clusterId": string|null, "node": id, "index": N, "term": N,
//                  "snapshotBytes": N, "createdAt": ISO-8601}
// The server streams it as it reads the snapshot file (GET /v1/snapshot), so neither side holds
// the whole backup in memory to write it.
import { createHash, type Hash } from 'node:crypto';
import { parseSnapshotFile } from '../storage/index.js';
import type { Snapshot } from '../raft/index.js';

export const BACKUP_MAGIC = Buffer.from('RKVBACKP', 'latin1');
export const BACKUP_VERSION = 1;
/** Magic, version and header length. */
export const BACKUP_PREAMBLE_BYTES = 16;
export const BACKUP_TRAILER_BYTES = 32;
/** A header is a few hundred bytes; more is not a backup of ours. */
const MAX_HEADER_BYTES = 64 * 1024;

export interface BackupHeader {
  /** The source cluster's id (null if it had none committed yet). */
  readonly clusterId: string | null;
  /** The member that wrote the snapshot. */
  readonly node: string;
  /** The snapshot's last included index and term. */
  readonly index: number;
  readonly term: number;
  readonly snapshotBytes: number;
  readonly createdAt: string;
}

/** A backup that fails a check: one line naming the file and the byte offset. */
export class BackupFileError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${file}: ${reason} (at byte offset ${offset})`);
  }
}

/** The bytes before the snapshot file: preamble and header. */
export function encodeBackupHead(header: BackupHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.alloc(BACKUP_PREAMBLE_BYTES + json.length);
  BACKUP_MAGIC.copy(head, 0);
  head.writeUInt32LE(BACKUP_VERSION, 8);
  head.writeUInt32LE(json.length, 12);
  json.copy(head, BACKUP_PREAMBLE_BYTES);
  return head;
}

export function backupHash(): Hash {
  return createHash('sha256');
}

/**
 * Reads the preamble and header from the first bytes of a backup (at least as many as it needs:
 * returns 'more' if `buf` is too short yet). `fileBytes`: the whole backup's size, when known.
 */
export function parseBackupHead(file: string, buf: Buffer, fileBytes: number | null): { header: BackupHeader; headBytes: number } | 'more' {
  if (buf.length < BACKUP_PREAMBLE_BYTES) {
    if (fileBytes !== null && fileBytes < BACKUP_PREAMBLE_BYTES + BACKUP_TRAILER_BYTES) throw new BackupFileError(file, fileBytes, `truncated: ${fileBytes} bytes is shorter than any backup`);
    return 'more';
  }
  if (!buf.subarray(0, 8).equals(BACKUP_MAGIC)) throw new BackupFileError(file, 0, 'not a raftkv backup (bad magic)');
  const version = buf.readUInt32LE(8);
  if (version !== BACKUP_VERSION) throw new BackupFileError(file, 8, `unsupported backup version ${version}`);
  const headerBytes = buf.readUInt32LE(12);
  if (headerBytes > MAX_HEADER_BYTES) throw new BackupFileError(file, 12, `header length ${headerBytes} is beyond any backup's`);
  const headBytes = BACKUP_PREAMBLE_BYTES + headerBytes;
  if (buf.length < headBytes) {
    if (fileBytes !== null) throw new BackupFileError(file, buf.length, `truncated inside the header (${headBytes} bytes expected)`);
    return 'more';
  }
  let raw: unknown;
  try {
    raw = JSON.parse(buf.subarray(BACKUP_PREAMBLE_BYTES, headBytes).toString('utf8'));
  } catch {
    throw new BackupFileError(file, BACKUP_PREAMBLE_BYTES, 'the header is not JSON');
  }
  const h = raw as Record<string, unknown>;
  const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (
    typeof raw !== 'object' || raw === null || Array.isArray(raw) ||
    !(h['clusterId'] === null || typeof h['clusterId'] === 'string') || typeof h['node'] !== 'string' ||
    !isCount(h['index']) || !isCount(h['term']) || !isCount(h['snapshotBytes']) || typeof h['createdAt'] !== 'string'
  ) {
    throw new BackupFileError(file, BACKUP_PREAMBLE_BYTES, 'the header lacks a field or has one of the wrong type');
  }
  const header: BackupHeader = { clusterId: h['clusterId'] as string | null, node: h['node'] as string, index: h['index'] as number, term: h['term'] as number, snapshotBytes: h['snapshotBytes'] as number, createdAt: h['createdAt'] as string };
  if (fileBytes !== null) {
    const expected = headBytes + header.snapshotBytes + BACKUP_TRAILER_BYTES;
    if (fileBytes < expected) throw new BackupFileError(file, fileBytes, `truncated: the header promises ${expected} bytes, the file has ${fileBytes}`);
    if (fileBytes > expected) throw new BackupFileError(file, expected, `${fileBytes - expected} bytes after the end the header gives`);
  }
  return { header, headBytes };
}

export interface VerifiedBackup {
  readonly header: BackupHeader;
  /** The snapshot inside, checked (its CRC32 and configuration); data is a view into the file's bytes. */
  readonly snapshot: Snapshot;
  /** The SHA-256 of the backup (its trailer), hex. */
  readonly sha256: string;
}

/** Checks a whole backup in memory: envelope, lengths, SHA-256, then the snapshot file inside. */
export function verifyBackup(file: string, buf: Buffer): VerifiedBackup {
  const head = parseBackupHead(file, buf, buf.length);
  if (head === 'more') throw new BackupFileError(file, buf.length, 'truncated');
  const { header, headBytes } = head;
  const bodyEnd = headBytes + header.snapshotBytes;
  const sha = createHash('sha256').update(buf.subarray(0, bodyEnd)).digest();
  if (!sha.equals(buf.subarray(bodyEnd, bodyEnd + BACKUP_TRAILER_BYTES))) {
    throw new BackupFileError(file, bodyEnd, 'SHA-256 checksum mismatch: the file is damaged');
  }
  const inner = buf.subarray(headBytes, bodyEnd);
  let snapshot: Snapshot;
  try {
    snapshot = parseSnapshotFile(file, inner);
  } catch (err) {
    const offset = headBytes + ((err as { offset?: number }).offset ?? 0);
    throw new BackupFileError(file, offset, `the snapshot inside is damaged: ${(err as { reason?: string }).reason ?? (err as Error).message}`);
  }
  if (snapshot.meta.index !== header.index || snapshot.meta.term !== header.term) {
    throw new BackupFileError(file, headBytes, `the header says index ${header.index} term ${header.term}, the snapshot inside ${snapshot.meta.index} term ${snapshot.meta.term}`);
  }
  return { header, snapshot, sha256: sha.toString('hex') };
}
