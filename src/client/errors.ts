// Typed errors of the raftkv client. Callers branch on the class (or `code`); `status` is the HTTP
// status that produced the error, or null when no node answered at all.

/** Base of every error the client raises. */
export class RaftKvClientError extends Error {
  /** The server's error code (`COMPARE_FAILED`, `NO_LEADER`, ...) or a client-side one. */
  readonly code: string;
  /** HTTP status of the answer behind the error; null when no answer arrived. */
  readonly status: number | null;
  /** The node that gave the final answer (or was last tried), when known. */
  readonly endpoint: string | undefined;
  constructor(code: string, message: string, status: number | null, options: { endpoint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.endpoint = options.endpoint;
  }
}

/** 400: the request itself is wrong (bad key, bad parameter); retrying will not help. */
export class BadRequestError extends RaftKvClientError {}

/** 404 where absence is an error (a member, an endpoint the server does not have yet). */
export class NotFoundError extends RaftKvClientError {}

/** 409: another membership change is still in progress (thesis §4.3); retry later. */
export class ChangeInProgressError extends RaftKvClientError {}

/** 412: a compare-and-set or delete condition did not hold; nothing was written. */
export class CompareFailedError extends RaftKvClientError {}

/** 413: the key or the value is over the server's limit. */
export class TooLargeError extends RaftKvClientError {}

/**
 * 503 (no leader, no quorum, overloaded) or no endpoint reachable, after every retry the
 * deadline allowed. For a write this means it was NOT applied: every attempt was refused
 * before it was proposed, or never reached a node.
 */
export class UnavailableError extends RaftKvClientError {
  /** The last Retry-After the cluster asked for, in milliseconds, if any. */
  readonly retryAfterMs: number | undefined;
  constructor(code: string, message: string, status: number | null, options: { endpoint?: string; cause?: unknown; retryAfterMs?: number } = {}) {
    super(code, message, status, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * A write whose outcome is unknown: some attempt timed out (504, or no answer after the request
 * was sent) and the retries with the same Idempotency-Key ran out before one gave a definite
 * answer. The write may or may not have been applied; it was applied AT MOST once. Retrying it
 * with the same `idempotencyKey` (see `this.idempotencyKey`) is safe.
 */
export class OutcomeUnknownError extends RaftKvClientError {
  readonly idempotencyKey: string;
  constructor(message: string, status: number | null, idempotencyKey: string, options: { endpoint?: string; cause?: unknown } = {}) {
    super('OUTCOME_UNKNOWN', message, status, options);
    this.idempotencyKey = idempotencyKey;
  }
}

/** The typed error for a non-2xx answer that retrying cannot fix. */
export function errorFromResponse(status: number, code: string, message: string, endpoint: string): RaftKvClientError {
  const options = { endpoint };
  if (status === 400) return new BadRequestError(code, message, status, options);
  if (status === 404) return new NotFoundError(code, message, status, options);
  if (status === 409) return new ChangeInProgressError(code, message, status, options);
  if (status === 412) return new CompareFailedError(code, message, status, options);
  if (status === 413) return new TooLargeError(code, message, status, options);
  if (status === 503) return new UnavailableError(code, message, status, options);
  return new RaftKvClientError(code, message, status, options);
}
