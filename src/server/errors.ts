// Errors the HTTP API answers with, and the one table that maps error codes to statuses.
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  BAD_KEY: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CHANGE_IN_PROGRESS: 409,
  /** A leadership transfer did not happen: the target did not win, or another server did. */
  TRANSFER_FAILED: 409,
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
