// Typed errors of the key-value layer. The HTTP layer maps `code` to a status in its one table
// (src/server/errors.ts); the codes here are a subset of those it knows.

export const KV_ERROR_CODES = [
  'BAD_KEY',
  'KEY_TOO_LARGE',
  'VALUE_TOO_LARGE',
  'BAD_REQUEST',
  'BAD_COMMAND',
  'BAD_SNAPSHOT',
  /** A transaction whose reply could exceed its replyLimit: refused at apply, nothing written (API.md: 413). */
  'REPLY_TOO_LARGE',
  /** A read or watch at a revision older than the last compaction (API.md, "Coordination"). */
  'COMPACTED',
  /** A read at a revision the store has not reached. */
  'FUTURE_REVISION',
] as const;
export type KvErrorCode = (typeof KV_ERROR_CODES)[number];

export class KvError extends Error {
  readonly code: KvErrorCode;
  constructor(code: KvErrorCode, message: string) {
    super(message);
    this.name = 'KvError';
    this.code = code;
  }
}
