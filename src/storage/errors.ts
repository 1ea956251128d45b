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

/** A write or sync failed earlier; the storage refuses all further use (fsync errors are sticky). */
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
