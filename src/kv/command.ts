// The commands the key-value state machine applies: what a client asked for, stamped by the
// leader with the time it proposed (log-carried time: the only clock the replicated state may
// read) and optionally the client's idempotency key (Raft dissertation §6.3).
import { KvError } from './errors.js';
import { DEFAULT_KV_LIMITS, validateIdempotencyKey, validateKey, validateListLimit, validateValue, type KvLimits } from './limits.js';

interface CommandBase {
  /** Milliseconds since the epoch, from the proposing leader's clock. */
  readonly time: number;
  /** `<client>/<seq>`: a retry with the same key is applied at most once. */
  readonly idempotencyKey?: string;
}

/** Writes `value` if every given condition holds (they are conjunctive). */
export interface PutCommand extends CommandBase {
  readonly type: 'put';
  readonly key: string;
  readonly value: Uint8Array;
  /** The current value must equal these bytes. */
  readonly prevValue?: Uint8Array;
  /** The key's modIndex must equal this. */
  readonly prevIndex?: number;
  /** false: the key must not exist (create); true: it must exist (update). */
  readonly prevExist?: boolean;
  /**
   * Attach the key to this lease (it goes when the lease ends); absent or 0: no lease, which
   * detaches a key that had one (etcd's semantics). A lease that does not exist when the put
   * is applied rejects it (LEASE_NOT_FOUND), nothing written.
   */
  readonly lease?: number;
}

export interface DeleteCommand extends CommandBase {
  readonly type: 'delete';
  readonly key: string;
  readonly prevValue?: Uint8Array;
  readonly prevIndex?: number;
}

export const COMPARE_OPS = ['=', '!=', '<', '>'] as const;
export type CompareOp = (typeof COMPARE_OPS)[number];
export const COMPARE_TARGETS = ['value', 'version', 'createIndex', 'modIndex', 'createRevision', 'modRevision', 'lease'] as const;
export type CompareTarget = (typeof COMPARE_TARGETS)[number];
export type NumericCompareTarget = Exclude<CompareTarget, 'value'>;

/**
 * One condition of a transaction. A missing key has version, indexes, revisions and lease 0, and
 * no value: every `value` comparison against a missing key is false (test absence with
 * `version = 0`).
 */
export type TxnCompare =
  | { readonly key: string; readonly target: 'value'; readonly op: CompareOp; readonly value: Uint8Array }
  | { readonly key: string; readonly target: NumericCompareTarget; readonly op: CompareOp; readonly value: number };

export type TxnOp =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array; readonly lease?: number }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'get'; readonly key: string }
  /** Up to `limit` keys starting with `prefix`, in key order. */
  | { readonly type: 'range'; readonly prefix: string; readonly limit: number }
  /**
   * Deletes every key from `start` (inclusive) to `end` (exclusive; null: no upper bound), in key
   * order, at the transaction's revision: etcd's DeleteRange. Answers how many it deleted.
   */
  | { readonly type: 'deleteRange'; readonly start: string; readonly end: string | null };

/** etcd-style: if every compare holds, run `success`, else `failure`; atomically, in order. */
export interface TxnCommand extends CommandBase {
  readonly type: 'txn';
  readonly compare: readonly TxnCompare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
  /**
   * The proposing leader's --max-response-bytes: a transaction whose reply's JSON could exceed
   * it is refused at apply (REPLY_TOO_LARGE) before any of its writes, the same way on every
   * replica. Absent in commands older than the field: those run unbounded, as they first did.
   */
  readonly replyLimit?: number;
}

/**
 * Drops the history before `revision` (reads at older revisions and watches from them answer
 * COMPACTED). The revision must not be in the future, and must be above the last compaction.
 */
export interface CompactCommand extends CommandBase {
  readonly type: 'compact';
  readonly revision: number;
}

/** A lease with its TTL; the id is chosen by the proposer (the leader, or the client). */
export interface LeaseGrantCommand extends CommandBase {
  readonly type: 'leaseGrant';
  readonly id: number;
  readonly ttlSeconds: number;
}

/**
 * Ends a lease and deletes its keys, in one revision. `expired`: the leader decided it ran out
 * (its keepalives stopped), rather than a client revoking it; the state machine treats both the
 * same, the flag is for the record.
 */
export interface LeaseRevokeCommand extends CommandBase {
  readonly type: 'leaseRevoke';
  readonly id: number;
  readonly expired?: boolean;
}

export type Command = PutCommand | DeleteCommand | TxnCommand | CompactCommand | LeaseGrantCommand | LeaseRevokeCommand;

/** Lease ids: positive safe integers (the codec's varints, and etcd's int64 ids that JSON can carry exactly). */
export const MAX_LEASE_ID = Number.MAX_SAFE_INTEGER;
/** etcd's largest TTL. */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;
export type CommandType = Command['type'];

/**
 * The checks the HTTP layer runs on a command before proposing it: keys, values, sizes, the
 * idempotency key's shape and the transaction's op count. Throws KvError.
 */
export function validateCommand(cmd: Command, limits: KvLimits = DEFAULT_KV_LIMITS): void {
  if (!Number.isFinite(cmd.time)) throw new KvError('BAD_REQUEST', 'the command time must be a finite number');
  if (cmd.idempotencyKey !== undefined) validateIdempotencyKey(cmd.idempotencyKey);
  switch (cmd.type) {
    case 'put':
      validateKey(cmd.key, limits.maxKeyBytes);
      validateValue(cmd.value, limits.maxValueBytes);
      if (cmd.prevValue !== undefined) validateValue(cmd.prevValue, limits.maxValueBytes);
      if (cmd.prevIndex !== undefined) validateIndex(cmd.prevIndex, 'prevIndex');
      if (cmd.lease !== undefined) validateLeaseRef(cmd.lease);
      return;
    case 'delete':
      validateKey(cmd.key, limits.maxKeyBytes);
      if (cmd.prevValue !== undefined) validateValue(cmd.prevValue, limits.maxValueBytes);
      if (cmd.prevIndex !== undefined) validateIndex(cmd.prevIndex, 'prevIndex');
      return;
    case 'txn': {
      if (cmd.replyLimit !== undefined) validateIndex(cmd.replyLimit, 'replyLimit');
      const count = cmd.compare.length + cmd.success.length + cmd.failure.length;
      if (count > limits.maxTxnOps) throw new KvError('BAD_REQUEST', `the transaction has ${count} compares and operations; the limit is ${limits.maxTxnOps}`);
      for (const c of cmd.compare) {
        validateKey(c.key, limits.maxKeyBytes);
        if (!COMPARE_OPS.includes(c.op)) throw new KvError('BAD_REQUEST', `unknown compare op ${String(c.op)}`);
        if (c.target === 'value') validateValue(c.value, limits.maxValueBytes);
        else if (COMPARE_TARGETS.includes(c.target)) validateIndex(c.value, c.target);
        else throw new KvError('BAD_REQUEST', `unknown compare target ${String((c as { target: unknown }).target)}`);
      }
      for (const op of cmd.success) validateTxnOp(op, limits);
      for (const op of cmd.failure) validateTxnOp(op, limits);
      return;
    }
    case 'compact':
      validateIndex(cmd.revision, 'revision');
      if (cmd.revision < 1) throw new KvError('BAD_REQUEST', 'revision must be at least 1');
      return;
    case 'leaseGrant':
      validateLeaseId(cmd.id);
      if (!Number.isSafeInteger(cmd.ttlSeconds) || cmd.ttlSeconds < 1 || cmd.ttlSeconds > MAX_LEASE_TTL_SECONDS) {
        throw new KvError('BAD_REQUEST', `ttlSeconds must be an integer from 1 to ${MAX_LEASE_TTL_SECONDS}`);
      }
      return;
    case 'leaseRevoke':
      validateLeaseId(cmd.id);
      return;
    default: {
      const never: never = cmd;
      throw new KvError('BAD_REQUEST', `unknown command ${String((never as { type: unknown }).type)}`);
    }
  }
}

function validateTxnOp(op: TxnOp, limits: KvLimits): void {
  switch (op.type) {
    case 'put':
      validateKey(op.key, limits.maxKeyBytes);
      validateValue(op.value, limits.maxValueBytes);
      if (op.lease !== undefined) validateLeaseRef(op.lease);
      return;
    case 'delete':
    case 'get':
      validateKey(op.key, limits.maxKeyBytes);
      return;
    case 'deleteRange':
      if (typeof op.start !== 'string' || (op.end !== null && typeof op.end !== 'string')) throw new KvError('BAD_REQUEST', 'a delete range needs a string start and a string or null end');
      if (op.start.length > 0) validateKey(op.start, limits.maxKeyBytes);
      if (op.end !== null) validateKey(op.end, limits.maxKeyBytes);
      return;
    case 'range':
      // An empty prefix ranges over every key: allowed, the limit bounds the answer.
      if (typeof op.prefix !== 'string') throw new KvError('BAD_REQUEST', 'a range needs a string prefix');
      if (op.prefix.length > 0) validateKey(op.prefix, limits.maxKeyBytes);
      validateListLimit(op.limit);
      return;
    default: {
      const never: never = op;
      throw new KvError('BAD_REQUEST', `unknown transaction op ${String((never as { type: unknown }).type)}`);
    }
  }
}

/** A lease id: 1 ≤ id ≤ MAX_LEASE_ID. */
export function validateLeaseId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 1) throw new KvError('BAD_REQUEST', `a lease id must be an integer from 1 to ${MAX_LEASE_ID}`);
}

/** A put's lease: 0 (none) or a lease id. */
function validateLeaseRef(id: number): void {
  if (id !== 0) validateLeaseId(id);
}

function validateIndex(n: number, name: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new KvError('BAD_REQUEST', `${name} must be a non-negative integer`);
}
