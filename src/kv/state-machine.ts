// The replicated key-value state machine (§5.3 "apply log[lastApplied] to state machine"): keys
// with their create/mod indexes and versions, compare-and-set, transactions, the idempotency table
// of dissertation §6.3, and snapshot/restore (§7). Deterministic: it reads no clock and no
// randomness; time comes from the commands (log-carried time), so every replica applying the
// same entries reaches the same state and returns the same results.
import type { Entry } from '../raft/types.js';
import type { StateMachine } from '../raft/state-machine.js';
import { decodeCommand } from './codec.js';
import { validateCommand, type Command, type DeleteCommand, type PutCommand, type TxnCommand, type TxnOp } from './command.js';
import { compareHolds, hasWriteConditions, writeConditionsHold } from './conditions.js';
import { KvError } from './errors.js';
import { IdempotencyTable } from './idempotency.js';
import { DEFAULT_KV_LIMITS, type KvLimits } from './limits.js';
import type { KvRecord, KvResult, TxnResponse } from './result.js';
import { decodeSnapshot, encodeSnapshot } from './snapshot.js';
import { SortedKeys } from './sorted-keys.js';

export interface KvStateMachineOptions {
  /**
   * Idempotency records kept at most; the oldest are evicted first. MUST be equal on every node
   * (it shapes which retries are recognized). @default 100000
   */
  readonly idempotencyMaxRecords?: number;
  /** Age in log-carried time after which a record expires. MUST be equal on every node. @default 600000 */
  readonly idempotencyTtlMs?: number;
  /** Proposal-time limits (validate()); apply() never enforces them. @default DEFAULT_KV_LIMITS */
  readonly limits?: KvLimits;
}

export const DEFAULT_KV_STATE_MACHINE_OPTIONS = {
  idempotencyMaxRecords: 100_000,
  idempotencyTtlMs: 10 * 60 * 1000,
  limits: DEFAULT_KV_LIMITS,
} as const;

export interface ListResult {
  readonly items: KvRecord[];
  /** More keys with the prefix exist beyond `limit`. */
  readonly more: boolean;
}

export class KvStateMachine implements StateMachine<KvResult | undefined> {
  readonly limits: KvLimits;
  private data = new Map<string, KvRecord>();
  private keys = new SortedKeys();
  private idempotency: IdempotencyTable;
  private applied = 0;

  constructor(options: KvStateMachineOptions = {}) {
    this.limits = options.limits ?? DEFAULT_KV_STATE_MACHINE_OPTIONS.limits;
    this.idempotency = new IdempotencyTable(
      options.idempotencyMaxRecords ?? DEFAULT_KV_STATE_MACHINE_OPTIONS.idempotencyMaxRecords,
      options.idempotencyTtlMs ?? DEFAULT_KV_STATE_MACHINE_OPTIONS.idempotencyTtlMs,
    );
  }

  /** Index of the last entry handed to apply() (or covered by the restored snapshot). */
  get appliedIndex(): number {
    return this.applied;
  }

  /** Number of keys. */
  get size(): number {
    return this.data.size;
  }

  get idempotencyRecords(): number {
    return this.idempotency.size;
  }

  /** The log-carried clock: the largest command time applied. */
  get logClock(): number {
    return this.idempotency.clock;
  }

  /** The proposal-time checks with this machine's limits. Throws KvError. */
  validate(cmd: Command): void {
    validateCommand(cmd, this.limits);
  }

  /**
   * No-ops (empty data) and config entries change nothing and return undefined. A command that
   * does not decode is answered with a `rejected` result rather than thrown: it is committed on
   * every replica, and each must step past it the same way.
   */
  apply(entry: Entry): KvResult | undefined {
    if (entry.index <= this.applied) {
      // Applying an index twice would double its writes; the runtime contract forbids it.
      throw new Error(`kv state machine at ${this.applied} was handed entry ${entry.index} again`);
    }
    this.applied = entry.index;
    if (entry.type !== 'normal' || entry.data.length === 0) return undefined;
    let cmd: Command;
    try {
      cmd = decodeCommand(entry.data);
    } catch (err) {
      if (!(err instanceof KvError)) throw err;
      return { type: 'rejected', error: err.code, message: err.message, index: entry.index };
    }
    this.idempotency.observe(cmd.time);
    const idempotencyKey = cmd.idempotencyKey;
    if (idempotencyKey !== undefined) {
      const first = this.idempotency.lookup(idempotencyKey);
      if (first !== undefined) return first;
    }
    let result: KvResult;
    switch (cmd.type) {
      case 'put':
        result = this.applyPut(cmd, entry.index);
        break;
      case 'delete':
        result = this.applyDelete(cmd, entry.index);
        break;
      case 'txn':
        result = this.applyTxn(cmd, entry.index);
        break;
    }
    if (idempotencyKey !== undefined) this.idempotency.remember(idempotencyKey, result);
    return result;
  }

  get(key: string): KvRecord | null {
    return this.data.get(key) ?? null;
  }

  /** Keys starting with `prefix`, in UTF-8 byte order, at most `limit` of them. */
  list(prefix: string, limit: number): ListResult {
    const items: KvRecord[] = [];
    let more = false;
    this.keys.forEachFrom(prefix, (key) => {
      if (!key.startsWith(prefix)) return false;
      if (items.length >= limit) {
        more = true;
        return false;
      }
      items.push(this.data.get(key)!);
      return true;
    });
    return { items, more };
  }

  snapshot(): Uint8Array {
    return encodeSnapshot(
      this.applied,
      this.idempotency.clock,
      this.data.size,
      (visit) =>
        this.keys.forEachFrom('', (key) => {
          visit(this.data.get(key)!);
          return true;
        }),
      this.idempotency.entries(),
    );
  }

  /** Replaces the whole state. On a bad snapshot throws KvError BAD_SNAPSHOT and keeps the old state. */
  restore(bytes: Uint8Array): void {
    const state = decodeSnapshot(bytes);
    const keys = new Array<string>(state.records.length);
    const data = new Map<string, KvRecord>();
    for (let i = 0; i < state.records.length; i++) {
      const rec = state.records[i]!;
      keys[i] = rec.key;
      data.set(rec.key, rec);
    }
    const sorted = SortedKeys.fromSorted(keys);
    if (sorted === null) throw new KvError('BAD_SNAPSHOT', 'snapshot keys are not in strictly increasing order');
    this.data = data;
    this.keys = sorted;
    this.applied = state.appliedIndex;
    this.idempotency.reset(state.logClock, state.idempotency);
  }

  private applyPut(cmd: PutCommand, index: number): KvResult {
    if (hasWriteConditions(cmd)) {
      const current = this.data.get(cmd.key);
      if (!writeConditionsHold(cmd, current)) return { type: 'compareFailed', error: 'COMPARE_FAILED', op: 'put', index, current: current ?? null };
    }
    this.write(cmd.key, cmd.value, index);
    return { type: 'put', index };
  }

  private applyDelete(cmd: DeleteCommand, index: number): KvResult {
    const current = this.data.get(cmd.key);
    if (hasWriteConditions(cmd) && !writeConditionsHold(cmd, current)) {
      return { type: 'compareFailed', error: 'COMPARE_FAILED', op: 'delete', index, current: current ?? null };
    }
    return { type: 'delete', index, deleted: this.remove(cmd.key) };
  }

  /**
   * Compares are all evaluated against the state before any op runs; the chosen branch's ops
   * then run in order, each seeing the ones before it. No op can fail once decoded, and nothing
   * else runs between them, so the branch is atomic.
   */
  private applyTxn(cmd: TxnCommand, index: number): KvResult {
    let succeeded = true;
    for (const c of cmd.compare) {
      if (!compareHolds(c, this.data.get(c.key))) {
        succeeded = false;
        break;
      }
    }
    const ops = succeeded ? cmd.success : cmd.failure;
    const responses: TxnResponse[] = [];
    for (const op of ops) responses.push(this.applyTxnOp(op, index));
    return { type: 'txn', index, succeeded, responses };
  }

  private applyTxnOp(op: TxnOp, index: number): TxnResponse {
    switch (op.type) {
      case 'put':
        this.write(op.key, op.value, index);
        return { type: 'put', key: op.key };
      case 'delete':
        return { type: 'delete', key: op.key, deleted: this.remove(op.key) };
      case 'get':
        return { type: 'get', key: op.key, record: this.get(op.key) };
      case 'range': {
        const { items, more } = this.list(op.prefix, op.limit);
        return { type: 'range', prefix: op.prefix, items, more };
      }
    }
  }

  private write(key: string, value: Uint8Array, index: number): void {
    // Copy: the decoded value is a view into the entry's bytes, which may sit inside a larger
    // network frame this record would otherwise keep alive.
    const copy = value.slice();
    const current = this.data.get(key);
    if (current === undefined) {
      this.data.set(key, { key, value: copy, createIndex: index, modIndex: index, version: 1 });
      this.keys.insert(key);
    } else {
      this.data.set(key, { key, value: copy, createIndex: current.createIndex, modIndex: index, version: current.version + 1 });
    }
  }

  private remove(key: string): boolean {
    if (!this.data.delete(key)) return false;
    this.keys.delete(key);
    return true;
  }
}
