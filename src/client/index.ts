// The raftkv client library: a typed client of the HTTP API (docs/api.md) that follows the
// leader, retries within a deadline, and makes retried writes safe with idempotency keys.
export { RaftKvClient } from './client.js';
export {
  RaftKvClientError,
  BadRequestError,
  UnauthenticatedError,
  PermissionDeniedError,
  NotFoundError,
  ChangeInProgressError,
  TransferFailedError,
  CompareFailedError,
  TooLargeError,
  NoSpaceError,
  TlsError,
  UnavailableError,
  OutcomeUnknownError,
  AbortedError,
  LeaseExistsError,
  LockHeldError,
  CompactedError,
  TLS_FAILURES,
} from './errors.js';
export { LeaseLostError } from './leases.js';
export type { Contender, HeldLock, Leadership, LockOptions } from './locks.js';
export type { GrantLeaseOptions, KeepLeaseOptions, KeptLease, LeaseGrant, LeaseList, LeaseTimeToLive } from './leases.js';
export type { TlsFailure } from './errors.js';
export { normalizeEndpoint } from './endpoint-selector.js';
export { SseParser, watchEventFromJson } from './watch.js';
export type { SseMessage, WatchCompactedEvent, WatchDeleteEvent, WatchEvent, WatchOptions, WatchProgressEvent, WatchPutEvent, WatchTarget } from './watch.js';
export { CONSISTENCY_LEVELS, DEFAULT_CLIENT_OPTIONS } from './types.js';
export type {
  AddMemberRequest,
  ClientOptions,
  ConfigurationStatus,
  Consistency,
  DeleteOptions,
  EndpointReadiness,
  EndpointStatus,
  KvRecord,
  WriteResult,
  ListResult,
  Member,
  MemberRole,
  NodeStatus,
  PutOptions,
  ReadOptions,
  ReadyStatus,
  TxnCompare,
  TxnCompareOp,
  TxnCompareTarget,
  TxnOp,
  TxnRequest,
  TxnResult,
  Value,
  WriteOptions,
} from './types.js';
