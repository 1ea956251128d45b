// Errors as etcd's gRPC API answers them: etcd's status codes, and etcd's exact messages where its
// clients act on the text (clientv3 and the npm etcd3 package match on messages like "etcdserver:
// mvcc: required revision has been compacted"; rpctypes in etcd's api/v3rpc). raftkv's own
// errors (ApiError, src/server/errors.ts) map through one table.
import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { ApiError, toApiError, type ErrorCode } from '../server/errors.js';

export class EtcdError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/** etcd's own errors, by the name rpctypes gives them. */
export const ETCD_ERRORS = {
  emptyKey: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  keyNotFound: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: key not found'),
  valueProvided: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: value is provided'),
  leaseProvided: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: lease is provided'),
  tooManyOps: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
  duplicateKey: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'),
  compacted: () => new EtcdError(status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'),
  futureRevision: () => new EtcdError(status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'),
  noSpace: () => new EtcdError(status.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'),
  leaseNotFound: () => new EtcdError(status.NOT_FOUND, 'etcdserver: requested lease not found'),
  /** The same, from v3lock and v3election, whose sessions hand the error on without a status. */
  sessionLeaseNotFound: () => new EtcdError(status.UNKNOWN, 'etcdserver: requested lease not found'),
  leaseExists: () => new EtcdError(status.FAILED_PRECONDITION, 'etcdserver: lease already exists'),
  leaseTtlTooLarge: () => new EtcdError(status.OUT_OF_RANGE, 'etcdserver: too large lease TTL'),
  permissionDenied: () => new EtcdError(status.PERMISSION_DENIED, 'etcdserver: permission denied'),
  invalidAuthToken: () => new EtcdError(status.UNAUTHENTICATED, 'etcdserver: invalid auth token'),
  userEmpty: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: user name is empty'),
  noLeader: () => new EtcdError(status.UNAVAILABLE, 'etcdserver: no leader'),
  requestTooLarge: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: request is too large'),
  timeout: () => new EtcdError(status.UNAVAILABLE, 'etcdserver: request timed out'),
  tooManyRequests: () => new EtcdError(status.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'),
  electionNoLeader: () => new EtcdError(status.UNKNOWN, 'election: no leader'),
  electionNotLeader: () => new EtcdError(status.UNKNOWN, 'election: not leader'),
} as const;

/** raftkv's error codes as etcd's errors; a bare status code keeps raftkv's message (prefixed "raftkv: "). */
const FROM_API: Record<ErrorCode, (() => EtcdError) | status> = {
  BAD_REQUEST: status.INVALID_ARGUMENT,
  BAD_KEY: status.INVALID_ARGUMENT,
  UNAUTHENTICATED: ETCD_ERRORS.invalidAuthToken,
  PERMISSION_DENIED: ETCD_ERRORS.permissionDenied,
  NOT_FOUND: status.NOT_FOUND,
  LEASE_NOT_FOUND: ETCD_ERRORS.leaseNotFound,
  METHOD_NOT_ALLOWED: status.UNIMPLEMENTED,
  CHANGE_IN_PROGRESS: status.FAILED_PRECONDITION,
  TRANSFER_FAILED: status.FAILED_PRECONDITION,
  LEASE_EXISTS: ETCD_ERRORS.leaseExists,
  LOCK_HELD: status.DEADLINE_EXCEEDED,
  COMPACTED: ETCD_ERRORS.compacted,
  FUTURE_REVISION: ETCD_ERRORS.futureRevision,
  COMPARE_FAILED: status.FAILED_PRECONDITION,
  KEY_TOO_LARGE: ETCD_ERRORS.requestTooLarge,
  VALUE_TOO_LARGE: ETCD_ERRORS.requestTooLarge,
  BODY_TOO_LARGE: ETCD_ERRORS.requestTooLarge,
  REPLY_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  UNSUPPORTED_MEDIA_TYPE: status.INVALID_ARGUMENT,
  INTERNAL: status.INTERNAL,
  NO_LEADER: ETCD_ERRORS.noLeader,
  NO_QUORUM: ETCD_ERRORS.noLeader,
  NOT_READY: status.UNAVAILABLE,
  OVERLOADED: ETCD_ERRORS.tooManyRequests,
  STARTING: status.UNAVAILABLE,
  TIMEOUT: ETCD_ERRORS.timeout,
  NO_SPACE: ETCD_ERRORS.noSpace,
};

/** Any error a handler met, as the EtcdError to answer with. */
export function toEtcdError(err: unknown): EtcdError {
  if (err instanceof EtcdError) return err;
  const api = toApiError(err);
  if (api instanceof ApiError) {
    const to = FROM_API[api.code];
    return typeof to === 'function' ? to() : new EtcdError(to, `raftkv: ${api.message}`);
  }
  return new EtcdError(status.INTERNAL, `raftkv: ${err instanceof Error ? err.message : String(err)}`);
}

/** The error object grpc-js sends as a status. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const e = toEtcdError(err);
  return { code: e.code, details: e.message, metadata: new Metadata() };
}
