// The key-value state machine's public surface.
export { KvStateMachine, DEFAULT_KV_STATE_MACHINE_OPTIONS, KV_RECORD_OVERHEAD_BYTES, LEASE_OVERHEAD_BYTES } from './state-machine.js';
export type { LeaseInfo } from './state-machine.js';
export type { HistoryEvent } from './history.js';
export { HISTORY_EVENT_OVERHEAD_BYTES } from './history.js';
export { IDEMPOTENCY_RECORD_OVERHEAD_BYTES } from './idempotency.js';
export type { KvStateMachineOptions, ListResult } from './state-machine.js';
export { encodeCommand, decodeCommand, COMMAND_TAG } from './codec.js';
export { validateCommand, validateLeaseId, COMPARE_OPS, COMPARE_TARGETS, MAX_LEASE_ID, MAX_LEASE_TTL_SECONDS } from './command.js';
export type {
  Command,
  CommandType,
  PutCommand,
  DeleteCommand,
  TxnCommand,
  CompactCommand,
  LeaseGrantCommand,
  LeaseRevokeCommand,
  TxnCompare,
  TxnOp,
  CompareOp,
  CompareTarget,
  NumericCompareTarget,
} from './command.js';
export type {
  KvRecord,
  KvResult,
  PutResult,
  DeleteResult,
  TxnResult,
  TxnResponse,
  CompareFailedResult,
  RejectedResult,
  CompactResult,
  LeaseGrantResult,
  LeaseRevokeResult,
} from './result.js';
export { KvError, KV_ERROR_CODES } from './errors.js';
export type { KvErrorCode } from './errors.js';
export {
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  MAX_TXN_OPS,
  MAX_LIST_LIMIT,
  MAX_IDEMPOTENCY_KEY_BYTES,
  DEFAULT_KV_LIMITS,
  DEFAULT_MAX_RESPONSE_BYTES,
  validateKey,
  validateValue,
  validateIdempotencyKey,
  validateListLimit,
  utf8Length,
  isWellFormed as isWellFormedKey,
} from './limits.js';
export type { KvLimits } from './limits.js';
export { compareKeys } from './sorted-keys.js';
export type { StoredRecord } from './stored-record.js';
export { SNAPSHOT_VERSION } from './snapshot.js';
export { txnFromJson, txnResultToJson, recordToJson, valueToJson, DEFAULT_RANGE_LIMIT } from './txn-json.js';
export { recordJsonBytes, listJsonBytes, txnResultJsonBytes, valueJsonBytes, jsonStringBytes } from './json-size.js';
export type { KvRecordJson, TxnResultJson, TxnResponseJson } from './txn-json.js';
export { encodeBase64, decodeBase64 } from './base64.js';
