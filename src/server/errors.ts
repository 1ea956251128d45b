// Errors the HTTP API answers with, the one table that maps error codes to statuses, and the one
// that maps the core's and the node's errors to them (toApiError).
import { ChangeInProgressError, InvalidConfigChangeError, NotLeaderError, ProposalDroppedError, RaftError } from '../raft/index.js';
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  BAD_KEY: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  /** A lease that does not exist (never granted, revoked, or expired). */
  LEASE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CHANGE_IN_PROGRESS: 409,
  /** A leadership transfer did not happen: the target did not win, or another server did. */
  TRANSFER_FAILED: 409,
  LEASE_EXISTS: 409,
  /** A lock or election held by another contender (at once with wait=false, or at the deadline). */
  LOCK_HELD: 409,
  /** A read or watch at a revision older than the last compaction: that history is gone. */
  COMPACTED: 410,
  /** A read at a revision the store has not reached. */
  FUTURE_REVISION: 400,
  COMPARE_FAILED: 412,
  KEY_TOO_LARGE: 413,
  VALUE_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  /** The answer would exceed --max-response-bytes; nothing was applied. */
  REPLY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INTERNAL: 500,
  NO_LEADER: 503,
  NO_QUORUM: 503,
  NOT_READY: 503,
  OVERLOADED: 503,
  STARTING: 503,
  TIMEOUT: 504,
  /** The store is at --quota-bytes, or the disk is full: writes are refused, reads and deletes work. */
  NO_SPACE: 507,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  /** Seconds, for 503s: when a retry has a chance. */
  readonly retryAfter: number | undefined;
  /** Response headers the error calls for (WWW-Authenticate on a 401). */
  readonly headers: Readonly<Record<string, string>> | undefined;
  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; retryAfter?: number; headers?: Record<string, string> } = {}) {
    super(message);
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = options.details;
    this.retryAfter = options.retryAfter ?? (this.status === 503 ? 1 : undefined);
    this.headers = options.headers;
  }
}

/**
 * The core's and the node's errors as API errors. Whether a write may yet apply is decided by
 * the error's type and `outcome`, never by its wording: 503 promises "not applied, retry
 * anywhere"; 504 says "may have committed: retry with the same Idempotency-Key, or look".
 */
export function toApiError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  if (err instanceof NotLeaderError) return new ApiError('NO_LEADER', err.message);
  if (err instanceof ChangeInProgressError) return new ApiError('CHANGE_IN_PROGRESS', err.message);
  if (err instanceof InvalidConfigChangeError) return new ApiError('BAD_REQUEST', err.message);
  if (err instanceof ProposalDroppedError) return err.outcome === 'unknown' ? outcomeUnknown(err.message) : new ApiError('NO_LEADER', err.message);
  // A node that stops with the request in flight cannot say whether it was (or will be)
  // committed: that is an unknown outcome, never a 503.
  if (err instanceof RaftError && err.code === 'STOPPED') return outcomeUnknown(err.message);
  return err;
}

function outcomeUnknown(message: string): ApiError {
  return new ApiError('TIMEOUT', `${message}; the outcome is unknown`);
}
