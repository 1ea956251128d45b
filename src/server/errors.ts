// Errors the HTTP API answers with, and the one table that maps error codes to statuses.
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  BAD_KEY: 400,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CHANGE_IN_PROGRESS: 409,
  COMPARE_FAILED: 412,
  KEY_TOO_LARGE: 413,
  VALUE_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  INTERNAL: 500,
  NO_LEADER: 503,
  NO_QUORUM: 503,
  OVERLOADED: 503,
  TIMEOUT: 504,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  /** Seconds, for 503s: when a retry has a chance. */
  readonly retryAfter: number | undefined;
  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; retryAfter?: number } = {}) {
    super(message);
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = options.details;
    this.retryAfter = options.retryAfter ?? (this.status === 503 ? 1 : undefined);
  }
}
