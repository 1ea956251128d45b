// Typed errors of the storage layer. A StorageCorruptionError means the node MUST NOT start:
// durable state is damaged somewhere other than an unsynced tail, and guessing could forget a
// vote or an acknowledged entry (Figure 2's "persistent state on all servers").
import { RaftError } from '../raft/errors.js';

export class StorageError extends RaftError {}

/** Damage that recovery refuses to repair. The message is one line naming the file and offset. */
export class StorageCorruptionError extends StorageError {
  readonly file: string;
  readonly offset: number;
  readonly reason: string;
  constructor(file: string, offset: number, reason: string) {
    super('STORAGE_CORRUPT', `storage corrupt: ${file} at byte offset ${offset}: ${reason}`);
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}

/**
 * A write or sync failed earlier; the storage refuses all further use (fsync errors are sticky).
 * Never raised for a full disk: that is a NoSpaceError, and the storage stays usable.
 */
export class StorageFailedError extends StorageError {
  constructor(cause: unknown) {
    super('STORAGE_FAILED', `storage failed earlier and must be reopened: ${String(cause)}`);
  }
}

/** The caller broke the append contract (a gap, or entries out of order). */
export class StorageUsageError extends StorageError {
  constructor(message: string) {
    super('STORAGE_USAGE', message);
  }
}

/**
 * The file system is full (ENOSPC, or EDQUOT: a quota is full). Unlike a failed write or fsync
 * this is not sticky: the operation failed BEFORE anything it wrote was acknowledged, the storage
 * stays usable, whatever was queued stays queued, and the same call succeeds once space is back.
 */
export class NoSpaceError extends StorageError {
  /** The operating system's error (its `code` is ENOSPC or EDQUOT). */
  override readonly cause: unknown;
  constructor(cause: unknown, what: string) {
    super('NO_SPACE', `no space left on the device: ${what} failed (${describe(cause)}); it is retried once space is freed`);
    this.cause = cause;
  }
}

/** Error codes that mean "the file system is full", and nothing worse. */
const NO_SPACE_CODES: readonly string[] = ['ENOSPC', 'EDQUOT'];

/** True for an operating-system error that says the disk (or the user's quota) is full. */
export function isNoSpaceCode(error: unknown): boolean {
  if (error instanceof NoSpaceError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NO_SPACE_CODES.includes(code);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
