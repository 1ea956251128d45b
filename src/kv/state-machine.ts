// The replicated key-value state machine (§5.3 "apply log[lastApplied] to state machine"): keys
// with their create/mod indexes and versions, compare-and-set, transactions, the idempotency table
// of dissertation §6.3, and snapshot/restore (§7). Deterministic: it reads no clock and no
// randomness; time comes from the commands (log-carried time), so every replica applying the
// same entries reaches the same state and returns the same results. Nothing a committed entry
// holds can make apply() throw: what cannot be applied is answered with a `rejected` result.
import type { Entry } from '../raft/types.js';
import type { StateMachine } from '../raft/state-machine.js';
import { decodeCommand } from './codec.js';
import { validateCommand, type Command, type DeleteCommand, type PutCommand, type TxnCommand, type TxnOp } from './command.js';
import { compareHolds, hasWriteConditions, writeConditionsHold } from './conditions.js';
import { KvError } from './errors.js';
import { IdempotencyTable } from './idempotency.js';
import {
  DELETE_RESPONSE_FIXED_BYTES,
  GET_RESPONSE_FIXED_BYTES,
  LIST_ENVELOPE_BYTES,
  PUT_RESPONSE_FIXED_BYTES,
  RANGE_RESPONSE_FIXED_BYTES,
  TXN_RESULT_FIXED_BYTES,
  jsonStringBytes,
  putRecordJsonBytesBound,
  recordJsonBytes,
  valueJsonBytes,
} from './json-size.js';
import { DEFAULT_KV_LIMITS, utf8Length, type KvLimits } from './limits.js';
import type { KvRecord, KvResult, TxnResponse } from './result.js';
import { SnapshotEncoder, decodeSnapshot } from './snapshot.js';
import { SortedKeys } from './sorted-keys.js';
import { StoredRecord, storedRecordSize } from './stored-record.js';

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

/**
 * What a key costs in `sizeBytes` beyond its key's UTF-8 bytes and its value's bytes: its
 * indexes and version, and its slots in the map and the sorted index.
 */
export const KV_RECORD_OVERHEAD_BYTES = 64;

export interface ListResult {
  readonly items: KvRecord[];
  /** More keys with the prefix exist beyond those returned: `limit` or `maxBytes` stopped the listing. */
  readonly more: boolean;
  /**
   * Set only when `maxBytes` stopped the listing at its very first record: that record's JSON
   * alone exceeds maxBytes, so `items` is empty and `more` is true. This names it, so a client
   * is not left with an empty page it cannot get past: it can read the record alone (its value
   * as raw bytes, `GET /v1/kv/{key}?raw`, is smaller than its JSON).
   */
  readonly oversizedKey?: string;
}

const boolBytes = (b: boolean): number => (b ? 4 : 5);

/**
 * A snapshot being written while the store goes on applying (beginSnapshot()): step() writes a
 * slice of it, and returns the bytes once it is complete. The same shape as the runtime's
 * `SnapshotInProgress` (node/runtime.ts), which hosts use.
 */
export interface KvSnapshotInProgress {
  step(maxBytes: number): Uint8Array | null;
  abandon(): void;
}

export class KvStateMachine implements StateMachine<KvResult | undefined> {
  readonly limits: KvLimits;
  /** Records as the store keeps them (stored-record.ts); they leave it as KvRecords. */
  private data = new Map<string, StoredRecord>();
  private keys = new SortedKeys();
  private idempotency: IdempotencyTable;
  private applied = 0;
  /** Σ over keys of the bytes a snapshot writes for the key's record: its exact size up front. */
  private recordBytes = 0;
  /**
   * While a snapshot is being written (beginSnapshot()): the record each key had when it began,
   * for every key changed since (undefined: it did not exist). Copy-on-write: the rest are read
   * from the store itself.
   */
  private preserved: Map<string, StoredRecord | undefined> | null = null;
  /** Σ over keys of utf8Length(key) + value.length + KV_RECORD_OVERHEAD_BYTES. */
  private dataBytes = 0;
  /** recordJsonBytes of records already measured: records never change, and values may be large. */
  private readonly jsonSizes = new WeakMap<StoredRecord, number>();

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

  /**
   * An estimate of the store's size in bytes, for --quota-bytes: every key's UTF-8 bytes and
   * value bytes plus KV_RECORD_OVERHEAD_BYTES, and the idempotency table (each record's key,
   * its result as a snapshot encodes it, plus IDEMPOTENCY_RECORD_OVERHEAD_BYTES). Close to the
   * size of a snapshot. Kept up to date on every write, delete, eviction and restore, so reading
   * it costs nothing; equal on every replica at the same applied index.
   */
  get sizeBytes(): number {
    return this.dataBytes + this.idempotency.bytes;
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

  /** The key's record, with its own copy of the value; null if the key does not exist. */
  get(key: string): KvRecord | null {
    return this.data.get(key)?.toRecord() ?? null;
  }

  /**
   * Keys starting with `prefix`, in UTF-8 byte order: at most `limit` of them, and no more than
   * fit in `maxBytes` of reply, where the reply is `JSON.stringify({ items: items.map(recordToJson),
   * more })` (listJsonBytes). The listing stops early with `more: true` at the first record that
   * would not fit; if that is the first record, `items` is empty and `oversizedKey` names it.
   * Each record is measured once (recordJsonBytes), never serialized here.
   */
  list(prefix: string, limit: number, maxBytes: number = Number.POSITIVE_INFINITY): ListResult {
    const items: KvRecord[] = [];
    let more = false;
    let oversizedKey: string | undefined;
    const bounded = maxBytes !== Number.POSITIVE_INFINITY;
    // Counted with `"more":false`, the longer of the two endings.
    let bytes = LIST_ENVELOPE_BYTES;
    this.keys.forEachFrom(prefix, (key) => {
      if (!key.startsWith(prefix)) return false;
      if (items.length >= limit) {
        more = true;
        return false;
      }
      const rec = this.data.get(key)!;
      if (bounded) {
        bytes += this.recordJsonSize(rec) + (items.length > 0 ? 1 : 0);
        if (bytes > maxBytes) {
          more = true;
          if (items.length === 0) oversizedKey = key;
          return false;
        }
      }
      items.push(rec.toRecord());
      return true;
    });
    return oversizedKey === undefined ? { items, more } : { items, more, oversizedKey };
  }

  snapshot(): Uint8Array {
    const inProgress = this.beginSnapshot();
    return inProgress.step(Number.POSITIVE_INFINITY)!;
  }

  /**
   * Begins a snapshot of the state as of now, written in slices by step() while apply() goes on:
   * what apply() changes meanwhile is preserved copy-on-write, so the bytes are those snapshot()
   * would have returned now. One at a time; restore() abandons it. Costs O(keys) pointers now
   * (the key order), and then each slice its share of the records. `prefix`: a wrapper's header,
   * written in front of the snapshot (the wrapper's restore() takes it off again).
   */
  beginSnapshot(prefix: Uint8Array | null = null): KvSnapshotInProgress {
    if (this.preserved !== null) throw new Error('a snapshot is already being written');
    const keys = this.keys.toArray();
    const preserved = new Map<string, StoredRecord | undefined>();
    const data = this.data;
    const idempotency = this.idempotency.capture();
    const encoder = new SnapshotEncoder(
      this.applied,
      this.idempotency.clock,
      keys,
      // A key in the order existed when the snapshot began: preserved holds its record then, if
      // it has changed since (a key preserved as undefined was created since, and is not here).
      (key) => (preserved.size === 0 ? undefined : preserved.get(key)) ?? data.get(key)!,
      idempotency.keys,
      idempotency.recordOf,
      this.recordBytes,
      prefix,
    );
    this.preserved = preserved;
    let isOver = false;
    const end = (): void => {
      isOver = true;
      idempotency.end();
      if (this.preserved === preserved) this.preserved = null;
    };
    return {
      step: (maxBytes) => {
        if (isOver || this.preserved !== preserved) throw new Error('the snapshot was abandoned');
        if (!encoder.step(maxBytes)) return null;
        end();
        return encoder.bytes;
      },
      abandon: end,
    };
  }

  /** Replaces the whole state. On a bad snapshot throws KvError BAD_SNAPSHOT and keeps the old state. */
  restore(bytes: Uint8Array): void {
    const state = decodeSnapshot(bytes);
    // A snapshot being written describes the state being replaced: it ends here.
    this.preserved = null;
    const keys = new Array<string>(state.records.length);
    const data = new Map<string, StoredRecord>();
    for (let i = 0; i < state.records.length; i++) {
      const rec = state.records[i]!;
      keys[i] = rec.key;
      data.set(rec.key, rec);
    }
    const sorted = SortedKeys.fromSorted(keys);
    if (sorted === null) throw new KvError('BAD_SNAPSHOT', 'snapshot keys are not in strictly increasing order');
    let dataBytes = 0;
    let recordBytes = 0;
    for (const rec of state.records) {
      dataBytes += utf8Length(rec.key) + rec.valueLength + KV_RECORD_OVERHEAD_BYTES;
      recordBytes += storedRecordSize(rec);
    }
    this.data = data;
    this.keys = sorted;
    this.dataBytes = dataBytes;
    this.recordBytes = recordBytes;
    this.applied = state.appliedIndex;
    this.idempotency.reset(state.logClock, state.idempotency);
  }

  private applyPut(cmd: PutCommand, index: number): KvResult {
    if (hasWriteConditions(cmd)) {
      const current = this.data.get(cmd.key)?.toRecord();
      if (!writeConditionsHold(cmd, current)) return { type: 'compareFailed', error: 'COMPARE_FAILED', op: 'put', index, current: current ?? null };
    }
    this.write(cmd.key, cmd.value, index);
    return { type: 'put', index };
  }

  private applyDelete(cmd: DeleteCommand, index: number): KvResult {
    if (hasWriteConditions(cmd)) {
      const current = this.data.get(cmd.key)?.toRecord();
      if (!writeConditionsHold(cmd, current)) return { type: 'compareFailed', error: 'COMPARE_FAILED', op: 'delete', index, current: current ?? null };
    }
    return { type: 'delete', index, deleted: this.remove(cmd.key) };
  }

  /**
   * Compares are all evaluated against the state before any op runs; the chosen branch's ops
   * then run in order, each seeing the ones before it. No op can fail once decoded, and nothing
   * else runs between them, so the branch is atomic. A branch whose reply could exceed the
   * command's replyLimit is refused whole BEFORE its first op: the reply is bounded from the
   * state before the branch, the same on every replica.
   */
  private applyTxn(cmd: TxnCommand, index: number): KvResult {
    let succeeded = true;
    for (const c of cmd.compare) {
      if (!compareHolds(c, this.data.get(c.key)?.toRecord())) {
        succeeded = false;
        break;
      }
    }
    const ops = succeeded ? cmd.success : cmd.failure;
    if (cmd.replyLimit !== undefined && this.replyMayExceed(ops, succeeded, index, cmd.replyLimit)) {
      return { type: 'rejected', error: 'REPLY_TOO_LARGE', message: `the transaction's reply could exceed ${cmd.replyLimit} bytes`, index };
    }
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

  /**
   * Could the JSON reply of running `ops` (txnResultJsonBytes of the result) exceed `limit`?
   * An upper bound from the state before the branch runs, since reads see the branch's earlier
   * writes:
   *   - a get answers the key's current record, or the record an earlier put of the branch
   *     writes (counted at its widest, putRecordJsonBytesBound): the larger of the two;
   *   - a range answers at most `limit` keys, each either written by an earlier put of the
   *     branch (all such puts under the prefix are counted) or present before the branch and
   *     not overwritten. A key of the second kind is among the first `limit + d` keys under the
   *     prefix before the branch, d being the branch's earlier deletes under the prefix: only
   *     those can fall out ahead of it. So those records are counted too.
   * Stops as soon as the bound passes `limit`, so the work is bounded by the limit, not by the
   * store.
   */
  private replyMayExceed(ops: readonly TxnOp[], succeeded: boolean, index: number, limit: number): boolean {
    let bound = TXN_RESULT_FIXED_BYTES + boolBytes(succeeded) + String(index).length + Math.max(0, ops.length - 1);
    if (bound > limit) return true;
    const puts: { key: string; value: Uint8Array; bytes: number }[] = [];
    const putBytes = (p: { key: string; value: Uint8Array; bytes: number }): number => {
      if (p.bytes < 0) p.bytes = putRecordJsonBytesBound(p.key, valueJsonBytes(p.value), index);
      return p.bytes;
    };
    const deleted: string[] = [];
    for (const op of ops) {
      switch (op.type) {
        case 'put':
          bound += PUT_RESPONSE_FIXED_BYTES + jsonStringBytes(op.key);
          puts.push({ key: op.key, value: op.value, bytes: -1 });
          break;
        case 'delete':
          bound += DELETE_RESPONSE_FIXED_BYTES + jsonStringBytes(op.key) + boolBytes(false);
          deleted.push(op.key);
          break;
        case 'get': {
          const current = this.data.get(op.key);
          let record = current === undefined ? 4 : this.recordJsonSize(current);
          for (const p of puts) if (p.key === op.key) record = Math.max(record, putBytes(p));
          bound += GET_RESPONSE_FIXED_BYTES + jsonStringBytes(op.key) + record;
          break;
        }
        case 'range': {
          const prefix = op.prefix;
          bound += RANGE_RESPONSE_FIXED_BYTES + jsonStringBytes(prefix) + boolBytes(false);
          for (const p of puts) if (p.key.startsWith(prefix)) bound += putBytes(p) + 1;
          let take = op.limit;
          for (const k of deleted) if (k.startsWith(prefix)) take++;
          if (bound > limit) return true;
          this.keys.forEachFrom(prefix, (key) => {
            if (take <= 0 || !key.startsWith(prefix)) return false;
            take--;
            bound += this.recordJsonSize(this.data.get(key)!) + 1;
            return bound <= limit;
          });
          break;
        }
      }
      if (bound > limit) return true;
    }
    return false;
  }

  private recordJsonSize(rec: StoredRecord): number {
    let n = this.jsonSizes.get(rec);
    if (n === undefined) {
      n = recordJsonBytes(rec.toRecord());
      this.jsonSizes.set(rec, n);
    }
    return n;
  }

  private write(key: string, value: Uint8Array, index: number): void {
    // StoredRecord copies the value: the decoded one is a view into the entry's bytes, which
    // may sit inside a larger network frame or WAL buffer this record would otherwise keep alive.
    const current = this.data.get(key);
    if (this.preserved !== null && !this.preserved.has(key)) this.preserved.set(key, current);
    if (current === undefined) {
      const rec = StoredRecord.of(key, value, index, index, 1);
      this.data.set(key, rec);
      this.keys.insert(key);
      this.dataBytes += utf8Length(key) + value.length + KV_RECORD_OVERHEAD_BYTES;
      this.recordBytes += storedRecordSize(rec);
    } else {
      const rec = StoredRecord.of(key, value, current.createIndex, index, current.version + 1);
      this.data.set(key, rec);
      this.dataBytes += value.length - current.valueLength;
      this.recordBytes += storedRecordSize(rec) - storedRecordSize(current);
    }
  }

  private remove(key: string): boolean {
    const current = this.data.get(key);
    if (current === undefined) return false;
    if (this.preserved !== null && !this.preserved.has(key)) this.preserved.set(key, current);
    this.recordBytes -= storedRecordSize(current);
    this.data.delete(key);
    this.keys.delete(key);
    this.dataBytes -= utf8Length(key) + current.valueLength + KV_RECORD_OVERHEAD_BYTES;
    return true;
  }
}
