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

/** 400 or 415: the request itself is wrong (bad key, bad parameter, bad member id); retrying will not help. */
export class BadRequestError extends RaftKvClientError {}

/**
 * 401 UNAUTHENTICATED: the node wants a bearer token (`token`) and got none or one it does not
 * know. Every node checks the same auth file, so the client does not try the others.
 */
export class UnauthenticatedError extends RaftKvClientError {}

/** 403 PERMISSION_DENIED: the token is valid but its permissions do not cover this request. */
export class PermissionDeniedError extends RaftKvClientError {}

/** 404 where absence is an error (a member, an endpoint the server does not have yet). */
export class NotFoundError extends RaftKvClientError {}

/** 409: another membership change is still in progress (thesis §4.3); retry later. */
export class ChangeInProgressError extends RaftKvClientError {}

/**
 * TRANSFER_FAILED: a leadership transfer did not happen (the target did not take over in time;
 * the old leader resumed). Nothing changed, so calling `transferLeader` again may succeed.
 */
export class TransferFailedError extends RaftKvClientError {}

/** 412: a compare-and-set or delete condition did not hold; nothing was written. */
export class CompareFailedError extends RaftKvClientError {}

/** 413: the key, the value, or the reply the request would make (REPLY_TOO_LARGE) is over the server's limit. */
export class TooLargeError extends RaftKvClientError {}

/**
 * 507 NO_SPACE: the cluster is over its quota or out of disk and refuses writes until space is
 * freed (reads and deletes still work). The write was not applied; retrying soon will not help.
 */
export class NoSpaceError extends RaftKvClientError {}

/**
 * The TLS connection failed in a way retrying cannot fix: the node's certificate is not trusted
 * (wrong or missing `ca`, wrong host name, expired), the node refused our client certificate (or
 * the lack of one), or the endpoint does not speak TLS. No request got past the node's TLS layer. Like a
 * 401 it is final: a node whose identity cannot be checked is not routed around silently.
 */
export class TlsError extends RaftKvClientError {
  /** Which side gave up: the client on the node's certificate, or the node on ours; or no TLS at all. */
  readonly failure: TlsFailure;
  constructor(failure: TlsFailure, message: string, options: { endpoint?: string; cause?: unknown } = {}) {
    super('TLS_FAILED', message, null, options);
    this.failure = failure;
  }
}

export const TLS_FAILURES = ['untrusted-certificate', 'certificate-refused', 'not-tls'] as const;
/**
 * `untrusted-certificate`: the node's certificate did not verify against `ca` (or its name does
 * not match the endpoint); `certificate-refused`: the node ended the handshake, typically for a
 * missing or unknown client certificate; `not-tls`: the endpoint speaks plain HTTP.
 */
export type TlsFailure = (typeof TLS_FAILURES)[number];

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
/** A lease grant named an id that another lease already has (409 LEASE_EXISTS). */
export class LeaseExistsError extends RaftKvClientError {}

/** A lock or election is held by another contender (409 LOCK_HELD): at once with wait=false, or it was not acquired in time. */
export class LockHeldError extends RaftKvClientError {}

/** A read or watch at a revision older than the last compaction (410 COMPACTED). */
export class CompactedError extends RaftKvClientError {}

/** The caller abandoned the request (its AbortSignal fired) before an answer; nothing was left applied by it, or OutcomeUnknownError says otherwise. */
export class AbortedError extends RaftKvClientError {}

export class OutcomeUnknownError extends RaftKvClientError {
  readonly idempotencyKey: string;
  constructor(message: string, status: number | null, idempotencyKey: string, options: { endpoint?: string; cause?: unknown } = {}) {
    super('OUTCOME_UNKNOWN', message, status, options);
    this.idempotencyKey = idempotencyKey;
  }
}

// Codes whose meaning does not depend on the status they come with (a server may pick a different
// status for them over time); checked before the status.
const BY_CODE: Readonly<Record<string, typeof RaftKvClientError>> = {
  UNAUTHENTICATED: UnauthenticatedError,
  PERMISSION_DENIED: PermissionDeniedError,
  TRANSFER_FAILED: TransferFailedError,
  NO_SPACE: NoSpaceError,
  LEASE_EXISTS: LeaseExistsError,
  LOCK_HELD: LockHeldError,
  COMPACTED: CompactedError,
};

const BY_STATUS: Readonly<Record<number, typeof RaftKvClientError>> = {
  400: BadRequestError,
  401: UnauthenticatedError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ChangeInProgressError,
  412: CompareFailedError,
  410: CompactedError,
  413: TooLargeError,
  415: BadRequestError,
  503: UnavailableError,
  507: NoSpaceError,
};

/** Codes that are final whatever their status: retrying on another node cannot change the answer. */
export function isFinalCode(code: string): boolean {
  return Object.hasOwn(BY_CODE, code);
}

/** The typed error for a non-2xx answer that retrying cannot fix. */
export function errorFromResponse(status: number, code: string, message: string, endpoint: string): RaftKvClientError {
  const Class = (Object.hasOwn(BY_CODE, code) ? BY_CODE[code] : BY_STATUS[status]) ?? RaftKvClientError;
  return new Class(code, message, status, { endpoint });
}
