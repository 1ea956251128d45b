// Adapts the key-value state machine (src/kv/) to the service: builds and validates commands
// before they are proposed (bad input is refused before it reaches the log), and turns apply
// results into answers or typed API errors.
import {
  KvError,
  KvStateMachine,
  decodeCommand,
  encodeCommand,
  recordToJson,
  txnFromJson,
  txnResultToJson,
  validateCommand,
  validateKey,
  validateValue,
  DEFAULT_KV_LIMITS,
  type Command,
  type KvLimits,
  type KvResult,
} from '../kv/index.js';
import { ApiError, type ErrorCode } from './errors.js';
import type { WriteConditions } from './http-api.js';
import type { KvBackend } from './service.js';
import { commandActions } from './access.js';

export interface KvBackendOptions {
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
}

export function createKvBackend(options: KvBackendOptions): { stateMachine: KvStateMachine; backend: KvBackend<KvResult> } {
  const limits: KvLimits = { ...DEFAULT_KV_LIMITS, maxKeyBytes: options.maxKeyBytes, maxValueBytes: options.maxValueBytes };
  const sm = new KvStateMachine({ limits });

  const encode = (cmd: Command): Uint8Array => {
    guard(() => validateCommand(cmd, limits));
    return encodeCommand(cmd);
  };
  const withMeta = (time: number, idempotencyKey: string | undefined): { time: number; idempotencyKey?: string } =>
    idempotencyKey === undefined ? { time } : { time, idempotencyKey };

  const backend: KvBackend<KvResult> = {
    encodePut: (key, value, cond, time, idem) => encode({ type: 'put', key, value, ...conditions(cond), ...withMeta(time, idem) }),
    encodeDelete: (key, cond, time, idem) => {
      const { prevValue, prevIndex } = conditions(cond);
      return encode({ type: 'delete', key, ...(prevValue ? { prevValue } : {}), ...(prevIndex !== undefined ? { prevIndex } : {}), ...withMeta(time, idem) });
    },
    encodeTxn: (body, time, idem, maxReplyBytes) => {
      // The reply limit travels in the command: every replica refuses an oversized reply the
      // same way, before any write of it (src/kv/state-machine.ts).
      const txn = { ...guard(() => txnFromJson(body, time, idem, limits)), replyLimit: maxReplyBytes };
      return { data: encode(txn), grows: [...txn.success, ...txn.failure].some((op) => op.type === 'put') };
    },
    checkEncoded: (data) => {
      // Another member's encoding: decoded and checked as if the request had come here.
      const cmd = guard(() => decodeCommand(data));
      guard(() => validateCommand(cmd, limits));
      return { grows: cmd.type === 'put' || (cmd.type === 'txn' && [...cmd.success, ...cmd.failure].some((op) => op.type === 'put')), actions: commandActions(cmd) };
    },
    sizeBytes: () => sm.sizeBytes,
    putResult: (r) => {
      const ok = settle(r);
      if (ok.type !== 'put') throw unexpected(ok);
      return { index: ok.index, revision: ok.revision };
    },
    deleteResult: (r) => {
      const ok = settle(r);
      if (ok.type !== 'delete') throw unexpected(ok);
      return { index: ok.index, deleted: ok.deleted, revision: ok.revision };
    },
    txnResult: (r) => {
      const ok = settle(r);
      if (ok.type !== 'txn') throw unexpected(ok);
      return txnResultToJson(ok);
    },
    get: (key, revision) => guard(() => sm.get(key, revision)),
    list: (prefix, limit, maxBytes, revision) => guard(() => sm.list(prefix, limit, maxBytes, revision)),
    revision: () => sm.revision,
    validateKey: (key) => guard(() => validateKey(key, limits.maxKeyBytes)),
    validateValue: (value) => guard(() => validateValue(value, limits.maxValueBytes)),
  };
  return { stateMachine: sm, backend };
}

function conditions(cond: WriteConditions): { prevValue?: Uint8Array; prevIndex?: number; prevExist?: boolean; lease?: number } {
  const out: { prevValue?: Uint8Array; prevIndex?: number; prevExist?: boolean; lease?: number } = {};
  if (cond.prevValue !== undefined) out.prevValue = cond.prevValue;
  if (cond.prevIndex !== undefined) out.prevIndex = cond.prevIndex;
  if (cond.prevExist !== undefined) out.prevExist = cond.prevExist;
  if (cond.lease !== undefined && cond.lease !== 0) out.lease = cond.lease;
  return out;
}

/** Encodes a coordination command (compaction, leases) after the proposal-time checks; ApiError when invalid. */
export function encodeChecked(sm: KvStateMachine, cmd: Command): Uint8Array {
  guard(() => sm.validate(cmd));
  return encodeCommand(cmd);
}

/** The store's refusals that clients act on, as API errors (kv/state-machine.ts). */
const REJECTED_TO_API: Record<string, ErrorCode> = {
  LEASE_NOT_FOUND: 'LEASE_NOT_FOUND',
  LEASE_EXISTS: 'LEASE_EXISTS',
  COMPACTED: 'COMPACTED',
  FUTURE_REVISION: 'FUTURE_REVISION',
};

/** Compare failures and rejected commands become typed API errors; the rest is a success. */
export function settle(r: KvResult | undefined): Exclude<KvResult, { type: 'compareFailed' } | { type: 'rejected' }> {
  if (r === undefined) throw new ApiError('INTERNAL', 'the state machine returned no result');
  if (r.type === 'compareFailed') {
    throw new ApiError('COMPARE_FAILED', `the ${r.op}'s condition does not hold`, {
      details: { index: r.index, current: r.current === null ? null : recordToJson(r.current) },
    });
  }
  if (r.type === 'rejected') {
    if (r.error === 'REPLY_TOO_LARGE') throw new ApiError('REPLY_TOO_LARGE', `${r.message}; nothing was applied: read less per transaction (smaller range limits)`);
    const code = REJECTED_TO_API[r.error];
    if (code !== undefined) throw new ApiError(code, r.message);
    throw new ApiError('BAD_REQUEST', `the command was rejected: ${r.message}`);
  }
  return r;
}

export function unexpected(r: KvResult): ApiError {
  return new ApiError('INTERNAL', `unexpected result type ${r.type}`);
}

const KV_TO_API: Record<string, ErrorCode> = {
  BAD_KEY: 'BAD_KEY',
  KEY_TOO_LARGE: 'KEY_TOO_LARGE',
  VALUE_TOO_LARGE: 'VALUE_TOO_LARGE',
  BAD_REQUEST: 'BAD_REQUEST',
  BAD_COMMAND: 'BAD_REQUEST',
  COMPACTED: 'COMPACTED',
  FUTURE_REVISION: 'FUTURE_REVISION',
};

function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof KvError) throw new ApiError(KV_TO_API[err.code] ?? 'BAD_REQUEST', err.message);
    throw err;
  }
}
