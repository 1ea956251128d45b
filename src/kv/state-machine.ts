// The replicated key-value state machine (§5.3 "apply log[lastApplied] to state machine"): keys
// with their create/mod indexes, revisions and versions, compare-and-set, transactions, the
// store's revision and history (MVCC: reads at a past revision, compaction; history.ts), leases
// (granted and revoked through the log; when one ends its keys go), the idempotency table of
// dissertation §6.3, and snapshot/restore (§7). Deterministic: it reads no clock and no
// randomness; time comes from the commands (log-carried time), so every replica applying the
// same entries reaches the same state and returns the same results. Nothing a committed entry
// holds can make apply() throw: what cannot be applied is answered with a `rejected` result.
import type { ByteWindow, Entry, SnapshotBytesSource, SnapshotWriter } from '../raft/types.js';
import { BaseTable, KeyBytes, SCAN_READ_BYTES } from './base-table.js';
import type { StateMachine } from '../raft/state-machine.js';
import { decodeCommand } from './codec.js';
import {
  MAX_LEASE_TTL_SECONDS,
  validateCommand,
  type Command,
  type CompactCommand,
  type DeleteCommand,
  type LeaseGrantCommand,
  type LeaseRevokeCommand,
  type PutCommand,
  type TxnCommand,
  type TxnOp,
} from './command.js';
import { compareHolds, hasWriteConditions, writeConditionsHold } from './conditions.js';
import { KvError } from './errors.js';
import { History, type HistoryEvent, type PendingEvents } from './history.js';
import { IdempotencyTable } from './idempotency.js';
import {
  DELETE_RESPONSE_FIXED_BYTES,
  DELETE_RANGE_RESPONSE_FIXED_BYTES,
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
import { SnapshotEncoder, decodeEncodedHistory, decodeSnapshot, decodeSnapshotInSlices, type EncodedHistory, type RecordCursor, type SnapshotState } from './snapshot.js';
import { CHUNK_LOAD, SortedKeys, compareKeys } from './sorted-keys.js';
import { StoredRecord, storedRecordSize, writeStoredRecord } from './stored-record.js';

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

/** A RecordWindow its store closes when it is done with it (readBaseThrough, a SnapshotWriter's window). */
export type ClosableRecordWindow = ByteWindow;

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

/** A restore's slice (beginRestore), in base records' worth of decoding (snapshot.ts weighs the costlier items): ~3 ms alone. */
export const RESTORE_SLICE_ITEMS = 32_768;

/** What a lease costs in `sizeBytes`, beyond its keys' names. */
export const LEASE_OVERHEAD_BYTES = 64;

/** A lease as the store holds it: its TTL and the keys attached to it. */
export interface LeaseInfo {
  readonly id: number;
  readonly ttlSeconds: number;
  /** In key order. */
  readonly keys: string[];
}

interface LeaseState {
  readonly ttlSeconds: number;
  readonly keys: Set<string>;
}

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

/** What trimming one overlay key costs, in a slice's bytes (SNAPSHOT_SLICE_BYTES): ~4,000 keys a 1 MiB slice, a few ms. */
const TRIM_COST_BYTES = 256;

/** A pending overlay trim (KvStateMachine.adopt): the overlay's keys when the base changed, and the next to look at. */
interface OverlayTrim {
  /** The store's revision when the snapshot began: records up to it are in the new base. */
  readonly revision: number;
  /**
   * Keys added since are changes after the snapshot, which stay: the trim looks at these alone,
   * so it ends however fast keys come.
   */
  readonly keys: readonly string[];
  next: number;
}

/**
 * A snapshot being written while the store goes on applying (beginSnapshot()): step() writes a
 * slice of it, and returns the bytes once it is complete ('written' if it went to a
 * SnapshotWriter). The same shape as the runtime's `SnapshotInProgress` (node/runtime.ts), which
 * hosts use.
 */
export interface KvSnapshotInProgress<Output = Uint8Array> {
  step(maxBytes: number): Output | null;
  abandon(): void;
}

export class KvStateMachine implements StateMachine<KvResult | undefined> {
  readonly limits: KvLimits;
  /**
   * The records are in two tiers. The base: those of the last snapshot written or restored, left
   * in its bytes (base-table.ts), never changed. The overlay (`data`, indexed in order by `keys`):
   * every key changed since, with its record (stored-record.ts), or null where a key the base
   * holds was deleted. A finished snapshot becomes the next base and the overlay shrinks to what
   * changed while it was written (adopt()), so at most about the log since the last snapshot is
   * held as objects. Records leave the store as KvRecords.
   */
  private base = BaseTable.EMPTY;
  /** The window the base reads through (readBaseThrough), if any. */
  private baseWindow: ByteWindow | null = null;
  /** The snapshot bytes the base's records are in, while they are read from memory. */
  private baseBytes: Uint8Array | null = null;
  private data = new Map<string, StoredRecord | null>();
  private keys = new SortedKeys();
  /** Keys in the store, both tiers together. */
  private count = 0;
  /** The key being looked up in the base. */
  private readonly probe = new KeyBytes();
  private idempotency: IdempotencyTable;
  private applied = 0;
  /** The store revision: 1 when empty (as etcd's), raised by one by each command that changes keys. */
  private rev = 1;
  private readonly history = new History();
  /**
   * While a restored history is pending (beginRestore leaves it encoded): for each key changed
   * since the restore, its record before the first change. A pending event that refers to a
   * key's current record as of the snapshot gets this same object, as the eager decode would.
   */
  private changedSinceRestore: Map<string, StoredRecord> | null = null;
  /** The revision of the last restore (what changedSinceRestore is since). */
  private restoredRevision = 0;
  private leases = new Map<number, LeaseState>();
  private leaseBytes = 0;
  /** Raised by every grant, revoke and restore: lets a lease keeper skip rescans when nothing changed. */
  private leaseSetVersion = 0;
  /** Called after each applied command and each restore (watch hubs, lease keepers). */
  private readonly listeners: (() => void)[] = [];
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
  /** The overlay trim a finished snapshot left to do (adopt, trimOverlay); null when none. */
  private trim: OverlayTrim | null = null;
  /** Raised by every restore: a snapshot begun before one is abandoned. */
  private restores = 0;
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
    return this.count;
  }

  /** Keys the overlay holds as objects (changed since the base, deleted, or the history's): for tests and diagnostics. */
  get overlayKeys(): number {
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
    return this.dataBytes + this.idempotency.bytes + this.history.bytes + this.leaseBytes;
  }

  /** The part of sizeBytes the history takes (history.ts, historyEventBytes). */
  get historyBytes(): number {
    return this.history.bytes;
  }

  /** The store's revision: that of the last change (1 before any). */
  get revision(): number {
    return this.rev;
  }

  /** Reads and watches before this revision answer COMPACTED; 0 before any compaction. */
  get compactRevision(): number {
    return this.history.compactRevision;
  }

  /**
   * The history from the compact revision on, in revision order. The array is never edited in
   * place: it only grows until a compaction replaces it, so a reader may hold it and an index.
   */
  get events(): readonly HistoryEvent[] {
    return this.history.events;
  }

  /** Position of the first event at or after `revision` in `events` (or in an array it returned earlier). */
  eventIndexFrom(revision: number, events: readonly HistoryEvent[] = this.history.events): number {
    return this.history.lowerBound(revision, events);
  }

  /**
   * The events from `revision` on (`events[index]` the first of them, to the end), without
   * decoding a restored history that is still pending unless some of them are in it: what a
   * reader of new events only (a watch hub's flush) takes instead of `events`.
   */
  eventsFrom(revision: number): { events: readonly HistoryEvent[]; index: number } {
    return this.history.from(revision);
  }

  /** How many events the history holds, decoded or not. */
  get eventCount(): number {
    return this.history.length;
  }

  /** A restore in slices left part of the state (the history) to loadInBackground(). */
  get isLoadingInBackground(): boolean {
    return this.history.isPending;
  }

  /**
   * A restore in slices (beginRestore) leaves the history encoded and serves meanwhile: this
   * decodes a slice of it (~a few ms), true once it is all decoded. The host calls it when the
   * runtime says (Runtime.loadInBackground); a reader of `events` (a watch from the past, a read
   * at a past revision, a snapshot) decodes what is left at once.
   */
  loadInBackground(): boolean {
    if (!this.history.loadSlice()) return false;
    this.changedSinceRestore = null;
    return true;
  }

  /**
   * Calls `listener` after every command applied and every restore, once the state reflects it
   * (events, revision and leases included). It must not throw and should only note the change
   * (e.g. schedule work): it runs inside apply. Returns the function that removes it.
   */
  onChange(listener: () => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** Lease ids in increasing order. */
  leaseIds(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  /** How many leases exist. */
  get leaseCount(): number {
    return this.leases.size;
  }

  /**
   * Changes whenever the set of leases may have changed (a grant, a revoke, a restore); a lease
   * keeper compares it with the one it last saw instead of rescanning every lease per command.
   */
  get leaseVersion(): number {
    return this.leaseSetVersion;
  }

  /** The lease's TTL, or null if it does not exist; unlike lease(), without listing its keys. */
  leaseTtlSeconds(id: number): number | null {
    return this.leases.get(id)?.ttlSeconds ?? null;
  }

  /** The lease, or null if it does not exist (never granted, revoked or expired). */
  lease(id: number): LeaseInfo | null {
    const l = this.leases.get(id);
    return l === undefined ? null : { id, ttlSeconds: l.ttlSeconds, keys: [...l.keys].sort(compareKeys) };
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
      case 'compact':
        result = this.applyCompact(cmd, entry.index);
        break;
      case 'leaseGrant':
        result = this.applyLeaseGrant(cmd, entry.index);
        break;
      case 'leaseRevoke':
        result = this.applyLeaseRevoke(cmd, entry.index);
        break;
    }
    if (idempotencyKey !== undefined) this.idempotency.remember(idempotencyKey, result);
    if (this.listeners.length > 0) this.changed();
    return result;
  }

  /**
   * The key's record, with its own copy of the value; null if the key does not exist. At
   * `revision`: as it was then (throws KvError COMPACTED or FUTURE_REVISION, checkRevision()).
   */
  get(key: string, revision?: number): KvRecord | null {
    const current = this.lookup(key) ?? null;
    if (revision === undefined || revision === this.rev) return current?.toRecord() ?? null;
    this.checkRevision(revision);
    return this.history.recordAt(key, revision, current)?.toRecord() ?? null;
  }

  /** Throws KvError unless the store can be read as of `revision`: compactRevision ≤ revision ≤ revision. */
  checkRevision(revision: number): void {
    if (revision > this.rev) throw new KvError('FUTURE_REVISION', `revision ${revision} is in the future; the store is at ${this.rev}`);
    if (revision < this.history.compactRevision) {
      throw new KvError('COMPACTED', `revision ${revision} has been compacted; the oldest readable revision is ${this.history.compactRevision}`);
    }
  }

  /**
   * Keys starting with `prefix`, in UTF-8 byte order: at most `limit` of them, and no more than
   * fit in `maxBytes` of reply, where the reply is `JSON.stringify({ items: items.map(recordToJson),
   * more })` (listJsonBytes). The listing stops early with `more: true` at the first record that
   * would not fit; if that is the first record, `items` is empty and `oversizedKey` names it.
   * Each record is measured once (recordJsonBytes), never serialized here.
   */
  list(prefix: string, limit: number, maxBytes: number = Number.POSITIVE_INFINITY, revision?: number): ListResult {
    const items: KvRecord[] = [];
    let more = false;
    let oversizedKey: string | undefined;
    const bounded = maxBytes !== Number.POSITIVE_INFINITY;
    // Counted with `"more":false`, the longer of the two endings.
    let bytes = LIST_ENVELOPE_BYTES;
    const add = (rec: StoredRecord): boolean => {
      if (items.length >= limit) {
        more = true;
        return false;
      }
      if (bounded) {
        bytes += this.recordJsonSize(rec) + (items.length > 0 ? 1 : 0);
        if (bytes > maxBytes) {
          more = true;
          if (items.length === 0) oversizedKey = rec.key;
          return false;
        }
      }
      items.push(rec.toRecord());
      return true;
    };
    if (revision === undefined || revision === this.rev) {
      this.forEachRecord(prefix, (key, rec) => key.startsWith(prefix) && add(rec));
    } else {
      this.checkRevision(revision);
      // The keys as of `revision`: today's, less those changed since, merged in key order with
      // those changed since as they were then.
      const changed = this.history.changesAfter(revision, prefix);
      const then: StoredRecord[] = [];
      for (const rec of changed.values()) if (rec !== null) then.push(rec);
      then.sort((x, y) => compareKeys(x.key, y.key));
      let j = 0;
      let going = true;
      this.forEachRecord(prefix, (key, rec) => {
        if (!key.startsWith(prefix)) return false;
        while (j < then.length && compareKeys(then[j]!.key, key) <= 0) if (!(going = add(then[j++]!))) return false;
        if (changed.has(key)) return true;
        return (going = add(rec));
      });
      while (going && j < then.length) going = add(then[j++]!);
    }
    return oversizedKey === undefined ? { items, more } : { items, more, oversizedKey };
  }

  /**
   * Visits the records of the keys in [start, end) (end null: no upper bound), in UTF-8 byte
   * order, as of `revision` (default: now; COMPACTED / FUTURE_REVISION as get()), until `visit`
   * returns false. The records are the store's own (immutable; no copy of the value is made), for
   * the etcd API's ranges, counts and sorts.
   */
  scan(start: string, end: string | null, visit: (rec: StoredRecord) => boolean, revision?: number): void {
    const below = (key: string): boolean => end === null || compareKeys(key, end) < 0;
    if (revision === undefined || revision === this.rev) {
      this.forEachRecord(start, (key, rec) => below(key) && visit(rec));
      return;
    }
    this.checkRevision(revision);
    const changed = this.history.changesAfterWhere(revision, (key) => compareKeys(key, start) >= 0 && below(key));
    const then: StoredRecord[] = [];
    for (const rec of changed.values()) if (rec !== null) then.push(rec);
    then.sort((x, y) => compareKeys(x.key, y.key));
    let j = 0;
    let going = true;
    this.forEachRecord(start, (key, rec) => {
      if (!below(key)) return false;
      while (j < then.length && compareKeys(then[j]!.key, key) <= 0) if (!(going = visit(then[j++]!))) return false;
      if (changed.has(key)) return true;
      return (going = visit(rec));
    });
    while (going && j < then.length) going = visit(then[j++]!);
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
   * written in front of the snapshot (the wrapper's restore() takes it off again). `sink`: where
   * to write it instead of into memory (a file; docs/storage.md): step() then returns 'written'
   * once the sink has written it all, and the store reads its new base back through the sink's
   * window. A write that failed throws from step(); abandon() then leaves the store as it was.
   */
  beginSnapshot(prefix?: Uint8Array | null): KvSnapshotInProgress;
  beginSnapshot(prefix: Uint8Array | null, sink: SnapshotWriter | null): KvSnapshotInProgress<Uint8Array | 'written'>;
  beginSnapshot(prefix: Uint8Array | null = null, sink: SnapshotWriter | null = null): KvSnapshotInProgress<Uint8Array | 'written'> {
    if (this.preserved !== null) throw new Error('a snapshot is already being written');
    // The last snapshot's overlay trim, if its slices have not finished it: the key order below
    // must not hold keys that go.
    this.trimOverlay(Number.POSITIVE_INFINITY);
    const preserved = new Map<string, StoredRecord | undefined>();
    const data = this.data;
    // A key's record as things stood: preserved holds it if the key has changed since (undefined:
    // it did not exist), else the overlay (null: deleted) or, for keys it does not hold, the base.
    const atStart = (key: string): StoredRecord | undefined => (preserved.has(key) ? preserved.get(key) : (data.get(key) ?? undefined));
    const idempotency = this.idempotency.capture();
    const events = this.history.events;
    // Let go of once finished: its source reads the old base, which must not outlive the snapshot
    // that replaced it (hundreds of MB at 1M keys) for as long as the caller keeps this object.
    let encoder: SnapshotEncoder | null = new SnapshotEncoder(
      {
        appliedIndex: this.applied,
        logClock: this.idempotency.clock,
        revision: this.rev,
        compactRevision: this.history.compactRevision,
        keyCount: this.count,
        records: mergedRecords(this.base, this.keys.toArray(), atStart),
        isCurrent: (rec) => atStart(rec.key) === rec,
        recordBytes: this.recordBytes,
        leases: this.leaseIds().map((id) => [id, this.leases.get(id)!.ttlSeconds] as const),
        events,
        eventCount: events.length,
        idemKeys: idempotency.keys,
        idemTimes: idempotency.times,
        idemResult: idempotency.resultOf,
      },
      prefix,
      sink,
    );
    this.preserved = preserved;
    const revision = this.rev;
    const restores = this.restores;
    let isOver = false;
    let output: Uint8Array | 'written' | null = null;
    let trim: OverlayTrim | null = null;
    const endCapture = (): void => {
      idempotency.end();
      if (this.preserved === preserved) this.preserved = null;
    };
    return {
      step: (maxBytes) => {
        if (isOver || this.restores !== restores) throw new Error('the snapshot was abandoned');
        if (encoder !== null) {
          if (this.preserved !== preserved) throw new Error('the snapshot was abandoned');
          if (!encoder.step(maxBytes)) return null;
          const bytes = encoder.bytes;
          const base = encoder.base();
          encoder = null;
          output = bytes ?? 'written';
          endCapture();
          trim = this.adopt(base.table, bytes, base.window, preserved, revision);
          // The overlay is trimmed in the slices that follow: at 1M keys it holds ~200,000 keys,
          // a walk of ~0.2 s that would otherwise be one slice.
          if (maxBytes !== Number.POSITIVE_INFINITY) return null;
        }
        // A later snapshot may have finished this trim already (beginSnapshot).
        if (this.trim === trim && !this.trimOverlay(maxBytes / TRIM_COST_BYTES)) return null;
        isOver = true;
        const bytes = output!;
        output = null;
        return bytes;
      },
      abandon: () => {
        if (isOver) return;
        isOver = true;
        output = null;
        // Still encoding: the capture ends. A trim begun stays the store's: the next snapshot
        // finishes it first.
        if (encoder !== null) endCapture();
        encoder = null;
      },
    };
  }

  /** Replaces the whole state. On a bad snapshot throws KvError BAD_SNAPSHOT and keeps the old state. */
  restore(bytes: Uint8Array): void {
    this.adoptDecoded(decodeSnapshot(bytes), bytes);
  }

  /**
   * restore() in slices (node/runtime.ts, SlicedRestores): each step() decodes about `slice`
   * more records or events (~a few ms at the default) and returns true once the state is
   * replaced, at once, by the last. Until then the store is untouched and goes on as it was;
   * abandon() drops what was decoded. A bad snapshot throws from a step, the old state kept.
   */
  beginRestore(bytes: Uint8Array, slice = RESTORE_SLICE_ITEMS): { step(): boolean; abandon(): void } {
    const steps = decodeSnapshotInSlices(bytes, slice, true);
    let isOver = false;
    return {
      step: () => {
        if (isOver) throw new Error('the restore is over');
        const r = steps.next();
        if (r.done !== true) return false;
        isOver = true;
        this.adoptDecoded(r.value, bytes, slice);
        return true;
      },
      abandon: () => {
        if (isOver) return;
        isOver = true;
        steps.return(undefined as never);
      },
    };
  }

  /**
   * beginRestore() from a snapshot read where it lies (its file) rather than from bytes in memory
   * (node/runtime.ts, RestoresThrough): the records are scanned a piece at a
   * time through a window and stay there as the base, which reads them through that window from
   * then on (with a filter of their keys, key-filter.ts); only what follows them (leases,
   * history, idempotency table) is read into memory. At 1M keys a restart touches ~300 MB less
   * fresh memory (~0.5 s of CPU on this VM) and holds it at no point.
   */
  beginRestoreThrough(source: SnapshotBytesSource, slice = RESTORE_SLICE_ITEMS, readBytes = SCAN_READ_BYTES): { step(): boolean; abandon(): void } {
    const window = source.window(0, source.bytes);
    const steps = decodeSnapshotInSlices({ window, length: source.bytes, readBytes }, slice, true);
    let isOver = false;
    const end = (): void => {
      isOver = true;
      window.close();
    };
    return {
      step: () => {
        if (isOver) throw new Error('the restore is over');
        let r: IteratorResult<void, SnapshotState>;
        try {
          r = steps.next();
        } catch (err) {
          end();
          throw err;
        }
        if (r.done !== true) return false;
        isOver = true;
        try {
          this.adoptDecoded(r.value, null, slice, window);
        } catch (err) {
          if (this.baseWindow !== window) window.close();
          throw err;
        }
        return true;
      },
      abandon: () => {
        if (isOver) return;
        steps.return(undefined as never);
        end();
      },
    };
  }

  private adoptDecoded(state: SnapshotState, bytes: Uint8Array | null, slice = RESTORE_SLICE_ITEMS, window: ByteWindow | null = null): void {
    // A snapshot being written describes the state being replaced: it ends here, and so does
    // what it left to trim (the overlay is replaced).
    this.preserved = null;
    this.trim = null;
    this.restores++;
    let leaseBytes = 0;
    const leases = new Map<number, LeaseState>();
    for (const [id, ttlSeconds] of state.leases) {
      leases.set(id, { ttlSeconds, keys: new Set() });
      leaseBytes += LEASE_OVERHEAD_BYTES;
    }
    for (const [key, id] of state.leased) {
      const lease = leases.get(id);
      if (lease === undefined) throw new KvError('BAD_SNAPSHOT', `key ${JSON.stringify(key)} is attached to lease ${id}, which the snapshot does not hold`);
      lease.keys.add(key);
      leaseBytes += utf8Length(key);
    }
    // The history's current records go in the overlay, so the store hands out the same objects.
    this.setBase(state.base, bytes, window);
    // Decoded for this store alone: taken as it is, not copied.
    this.data = state.current;
    this.keys = SortedKeys.fromSorted(state.currentKeys, CHUNK_LOAD, true)!;
    this.count = state.base.count;
    this.dataBytes = state.keyValueBytes + state.base.count * KV_RECORD_OVERHEAD_BYTES;
    this.recordBytes = state.base.recordBytes;
    this.applied = state.appliedIndex;
    this.rev = state.revision;
    if (state.encodedHistory === null) {
      this.changedSinceRestore = null;
      this.history.reset(state.events, state.compactRevision);
    } else {
      this.changedSinceRestore = new Map();
      this.restoredRevision = state.revision;
      this.history.resetPending(this.pendingEvents(state.encodedHistory, slice), state.compactRevision);
    }
    this.leases = leases;
    this.leaseBytes = leaseBytes;
    this.leaseSetVersion++;
    if (state.encodedIdempotency === null) this.idempotency.adopt(state.logClock, state.idempotency, state.idempotencyTimes);
    else this.idempotency.adoptEncoded(state.logClock, state.encodedIdempotency);
    this.changed();
  }

  /**
   * The restored history's events, decoded later in slices. An event marked current refers to
   * the key's record as of the snapshot: the record before the key's first change since, if it
   * changed (the `prev` of that change), else its current record, which goes in the overlay so
   * that the store hands out the history's object (as a restore decoded at once leaves it).
   */
  private pendingEvents(h: EncodedHistory, slice: number): PendingEvents {
    const base = this.base;
    const probe = new KeyBytes();
    const resolveCurrent = (key: string): StoredRecord | null => {
      const changed = this.changedSinceRestore?.get(key);
      if (changed !== undefined) return changed;
      const held = this.data.get(key);
      if (held !== undefined) return held;
      const at = base.indexOf(probe.set(key));
      if (at < 0) return null;
      const rec = base.recordAt(at);
      this.data.set(key, rec);
      this.keys.add(key);
      return rec;
    };
    const steps = decodeEncodedHistory(h, resolveCurrent, slice);
    return {
      count: h.count,
      revisions: h.revisions,
      costs: h.costs,
      step: () => {
        const r = steps.next();
        return r.done === true ? r.value : null;
      },
    };
  }

  /**
   * A key changes while the restored history is pending: its record as of the snapshot is kept
   * if this is its first change since. Only a record from before the restore can be one a
   * pending event refers to; a key created since (most writes of a replay) costs nothing.
   */
  private noteChangeSinceRestore(key: string, current: StoredRecord | undefined): void {
    if (!this.history.isPending) {
      // Decoded (by a reader, or compacted away) without loadInBackground(): nothing to note.
      this.changedSinceRestore = null;
      return;
    }
    if (current === undefined || current.modRevision > this.restoredRevision) return;
    const changed = this.changedSinceRestore!;
    if (!changed.has(key)) changed.set(key, current);
  }

  private applyPut(cmd: PutCommand, index: number): KvResult {
    const lease = cmd.lease ?? 0;
    if (lease !== 0 && !this.leases.has(lease)) return leaseNotFound(lease, index);
    if (hasWriteConditions(cmd)) {
      const current = this.lookup(cmd.key)?.toRecord();
      if (!writeConditionsHold(cmd, current)) return { type: 'compareFailed', error: 'COMPARE_FAILED', op: 'put', index, revision: this.rev, current: current ?? null };
    }
    this.write(cmd.key, cmd.value, index, this.rev + 1, lease);
    this.rev++;
    return { type: 'put', index, revision: this.rev };
  }

  private applyDelete(cmd: DeleteCommand, index: number): KvResult {
    if (hasWriteConditions(cmd)) {
      const current = this.lookup(cmd.key)?.toRecord();
      if (!writeConditionsHold(cmd, current)) return { type: 'compareFailed', error: 'COMPARE_FAILED', op: 'delete', index, revision: this.rev, current: current ?? null };
    }
    const deleted = this.remove(cmd.key, this.rev + 1);
    if (deleted) this.rev++;
    return { type: 'delete', index, revision: this.rev, deleted };
  }

  /** etcd's rule: compacting at or below the last compaction, or beyond the store, is refused. */
  private applyCompact(cmd: CompactCommand, index: number): KvResult {
    if (cmd.revision > this.rev) {
      return { type: 'rejected', error: 'FUTURE_REVISION', message: `revision ${cmd.revision} is in the future; the store is at ${this.rev}`, index };
    }
    if (cmd.revision <= this.history.compactRevision) {
      return { type: 'rejected', error: 'COMPACTED', message: `revision ${cmd.revision} is already compacted (at ${this.history.compactRevision})`, index };
    }
    this.history.compact(cmd.revision);
    return { type: 'compact', index, revision: this.rev, compactRevision: cmd.revision };
  }

  private applyLeaseGrant(cmd: LeaseGrantCommand, index: number): KvResult {
    // The codec reads any varint; what validate() refuses at proposal is refused here too.
    if (cmd.id < 1 || cmd.ttlSeconds < 1 || cmd.ttlSeconds > MAX_LEASE_TTL_SECONDS) {
      return { type: 'rejected', error: 'BAD_COMMAND', message: `lease ${cmd.id} with a TTL of ${cmd.ttlSeconds} s is out of range`, index };
    }
    if (this.leases.has(cmd.id)) return { type: 'rejected', error: 'LEASE_EXISTS', message: `lease ${cmd.id} already exists`, index };
    this.leases.set(cmd.id, { ttlSeconds: cmd.ttlSeconds, keys: new Set() });
    this.leaseBytes += LEASE_OVERHEAD_BYTES;
    this.leaseSetVersion++;
    return { type: 'leaseGrant', index, revision: this.rev, id: cmd.id, ttlSeconds: cmd.ttlSeconds };
  }

  /** The lease's keys go in key order (every replica the same), all at one revision. */
  private applyLeaseRevoke(cmd: LeaseRevokeCommand, index: number): KvResult {
    const lease = this.leases.get(cmd.id);
    if (lease === undefined) return leaseNotFound(cmd.id, index);
    const keys = [...lease.keys].sort(compareKeys);
    const rev = this.rev + 1;
    for (const key of keys) this.remove(key, rev);
    if (keys.length > 0) this.rev = rev;
    this.leases.delete(cmd.id);
    this.leaseBytes -= LEASE_OVERHEAD_BYTES;
    this.leaseSetVersion++;
    return { type: 'leaseRevoke', index, revision: this.rev, id: cmd.id, deleted: keys.length };
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
      if (!compareHolds(c, this.lookup(c.key)?.toRecord())) {
        succeeded = false;
        break;
      }
    }
    const ops = succeeded ? cmd.success : cmd.failure;
    for (const op of ops) {
      if (op.type === 'put' && op.lease !== undefined && op.lease !== 0 && !this.leases.has(op.lease)) return leaseNotFound(op.lease, index);
    }
    if (cmd.replyLimit !== undefined && this.replyMayExceed(ops, succeeded, index, cmd.replyLimit)) {
      return { type: 'rejected', error: 'REPLY_TOO_LARGE', message: `the transaction's reply could exceed ${cmd.replyLimit} bytes`, index };
    }
    // Every change of the transaction is at one revision, raised once if anything changed.
    const rev = this.rev + 1;
    const before = this.history.length;
    const responses: TxnResponse[] = [];
    for (const op of ops) responses.push(this.applyTxnOp(op, index, rev));
    if (this.history.length !== before) this.rev = rev;
    return { type: 'txn', index, revision: this.rev, succeeded, responses };
  }

  private applyTxnOp(op: TxnOp, index: number, rev: number): TxnResponse {
    switch (op.type) {
      case 'put':
        this.write(op.key, op.value, index, rev, op.lease ?? 0);
        return { type: 'put', key: op.key };
      case 'delete':
        return { type: 'delete', key: op.key, deleted: this.remove(op.key, rev) };
      case 'get':
        return { type: 'get', key: op.key, record: this.get(op.key) };
      case 'range': {
        const { items, more } = this.list(op.prefix, op.limit);
        return { type: 'range', prefix: op.prefix, items, more };
      }
      case 'deleteRange': {
        const doomed: string[] = [];
        this.forEachRecord(op.start, (key) => {
          if (op.end !== null && compareKeys(key, op.end) >= 0) return false;
          doomed.push(key);
          return true;
        });
        let deleted = 0;
        for (const key of doomed) if (this.remove(key, rev)) deleted++;
        return { type: 'deleteRange', start: op.start, end: op.end, deleted };
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
   *   - a delete range answers a count; the keys it removes are skipped by a later range's walk
   *     (they cannot be answered), so the keys after them are counted in their place.
   * Stops as soon as the bound passes `limit`, so the work is bounded by the limit, not by the
   * store.
   */
  private replyMayExceed(ops: readonly TxnOp[], succeeded: boolean, index: number, limit: number): boolean {
    const rev = this.rev + 1;
    let bound = TXN_RESULT_FIXED_BYTES + boolBytes(succeeded) + String(index).length + String(rev).length + Math.max(0, ops.length - 1);
    if (bound > limit) return true;
    const puts: { key: string; value: Uint8Array; bytes: number }[] = [];
    const putBytes = (p: { key: string; value: Uint8Array; bytes: number }): number => {
      if (p.bytes < 0) p.bytes = putRecordJsonBytesBound(p.key, valueJsonBytes(p.value), index, rev);
      return p.bytes;
    };
    const deleted: string[] = [];
    // Keys a delete range of the branch removes are not answered by a later range: the walk
    // skips them (a put that re-creates one is counted with the puts).
    const deletedRanges: { start: string; end: string | null }[] = [];
    /** The deleted range holding `key`, if any. */
    const deletedRangeOf = (key: string): { start: string; end: string | null } | undefined =>
      deletedRanges.find((d) => compareKeys(key, d.start) >= 0 && (d.end === null || compareKeys(key, d.end) < 0));
    for (const op of ops) {
      switch (op.type) {
        case 'deleteRange':
          bound += DELETE_RANGE_RESPONSE_FIXED_BYTES + jsonStringBytes(op.start) + (op.end === null ? 4 : jsonStringBytes(op.end)) + 16;
          deletedRanges.push({ start: op.start, end: op.end });
          break;
        case 'put':
          bound += PUT_RESPONSE_FIXED_BYTES + jsonStringBytes(op.key);
          puts.push({ key: op.key, value: op.value, bytes: -1 });
          break;
        case 'delete':
          bound += DELETE_RESPONSE_FIXED_BYTES + jsonStringBytes(op.key) + boolBytes(false);
          deleted.push(op.key);
          break;
        case 'get': {
          const current = this.lookup(op.key);
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
          // A key in a deleted range is skipped by jumping to the range's end: the walk costs the
          // keys it counts, not the keys the branch deletes.
          let from: string | null = prefix;
          while (from !== null && bound <= limit) {
            let next: string | null = null;
            this.forEachRecord(from, (key, rec) => {
              if (take <= 0 || !key.startsWith(prefix)) return false;
              const deleted = deletedRanges.length > 0 ? deletedRangeOf(key) : undefined;
              if (deleted !== undefined) {
                next = deleted.end;
                return false;
              }
              take--;
              bound += this.recordJsonSize(rec) + 1;
              return bound <= limit;
            });
            from = next;
          }
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

  private write(key: string, value: Uint8Array, index: number, rev: number, lease: number): void {
    // StoredRecord copies the value: the decoded one is a view into the entry's bytes, which
    // may sit inside a larger network frame or WAL buffer this record would otherwise keep alive.
    const current = this.lookup(key);
    if (this.preserved !== null && !this.preserved.has(key)) this.preserved.set(key, current);
    if (this.changedSinceRestore !== null) this.noteChangeSinceRestore(key, current);
    let rec: StoredRecord;
    if (current === undefined) {
      rec = StoredRecord.of(key, value, index, index, 1, rev, rev, lease);
      this.count++;
      this.dataBytes += utf8Length(key) + value.length + KV_RECORD_OVERHEAD_BYTES;
      this.recordBytes += storedRecordSize(rec);
    } else {
      rec = StoredRecord.of(key, value, current.createIndex, index, current.version + 1, current.createRevision, rev, lease);
      this.dataBytes += value.length - current.valueLength;
      this.recordBytes += storedRecordSize(rec) - storedRecordSize(current);
      if (current.lease !== lease) this.detach(key, current.lease);
    }
    if (!this.data.has(key)) this.keys.add(key);
    this.data.set(key, rec);
    if (lease !== 0 && current?.lease !== lease) {
      this.leases.get(lease)!.keys.add(key);
      this.leaseBytes += utf8Length(key);
    }
    this.history.push({ revision: rev, key, record: rec, prev: current ?? null });
  }

  private remove(key: string, rev: number): boolean {
    const current = this.lookup(key);
    if (current === undefined) return false;
    if (this.preserved !== null && !this.preserved.has(key)) this.preserved.set(key, current);
    if (this.changedSinceRestore !== null) this.noteChangeSinceRestore(key, current);
    this.recordBytes -= storedRecordSize(current);
    this.count--;
    // Over a key the base holds, the overlay keeps the deletion; otherwise the key just goes.
    if (this.base.count > 0 && this.base.indexOf(this.probe.set(key)) >= 0) {
      if (!this.data.has(key)) this.keys.add(key);
      this.data.set(key, null);
    } else {
      this.data.delete(key);
      this.keys.delete(key);
    }
    this.dataBytes -= utf8Length(key) + current.valueLength + KV_RECORD_OVERHEAD_BYTES;
    this.detach(key, current.lease);
    this.history.push({ revision: rev, key, record: null, prev: current });
    return true;
  }

  /** The key's current record: the overlay's, else the base's (decoded anew on each call). */
  private lookup(key: string): StoredRecord | undefined {
    const rec = this.data.get(key);
    if (rec !== undefined) return rec ?? undefined;
    if (this.base.count === 0) return undefined;
    const at = this.base.indexOf(this.probe.set(key));
    return at < 0 ? undefined : this.base.recordAt(at);
  }

  /**
   * Visits the current records of the keys ≥ start, in order (the base's and the overlay's
   * merged, the overlay's winning), until `visit` returns false. Nothing may change the store
   * during the walk.
   */
  private forEachRecord(start: string, visit: (key: string, rec: StoredRecord) => boolean): void {
    const base = this.base;
    let i = base.count === 0 ? 0 : base.lowerBound(this.probe.set(start));
    let baseKey = i < base.count ? base.keyAt(i) : null;
    let going = true;
    this.keys.forEachFrom(start, (key) => {
      while (baseKey !== null && compareKeys(baseKey, key) < 0) {
        if (!visit(baseKey, base.recordAt(i))) return (going = false);
        baseKey = ++i < base.count ? base.keyAt(i) : null;
      }
      if (baseKey === key) baseKey = ++i < base.count ? base.keyAt(i) : null;
      const rec = this.data.get(key)!;
      return rec === null || (going = visit(key, rec));
    });
    while (going && baseKey !== null) {
      if (!visit(baseKey, base.recordAt(i))) return;
      baseKey = ++i < base.count ? base.keyAt(i) : null;
    }
  }

  /**
   * A snapshot of the whole state is written (as of `revision`, the store's when it began): its
   * records become the base now, and the overlay is trimmed to what changed while it was written
   * plus the current records the history refers to (the store and the history share them, and a
   * next snapshot writes such a record once by that sharing). The trim walks the whole overlay,
   * so it is returned to be done in slices (trimOverlay); until it is done the overlay holds
   * keys it could drop, each with the record the new base holds too, which reads the same.
   */
  private adopt(base: BaseTable, bytes: Uint8Array | null, window: ByteWindow | null, preserved: ReadonlyMap<string, StoredRecord | undefined>, revision: number): OverlayTrim {
    // Keys that existed when the snapshot began and were deleted since without a trace in the
    // overlay (it held them, the old base did not): the new base holds them, so they need one
    // before it is read.
    for (const [key, then] of preserved) {
      if (then !== undefined && !this.data.has(key)) {
        this.data.set(key, null);
        this.keys.add(key);
      }
    }
    this.setBase(base, bytes, window);
    this.trim = { revision, keys: this.keys.toArray(), next: 0 };
    return this.trim;
  }

  /**
   * `base` becomes the base: over the snapshot `bytes` in memory, or read through `window`; a
   * window the old one read through is closed.
   */
  private setBase(base: BaseTable, bytes: Uint8Array | null, window: ByteWindow | null = null): void {
    const old = this.baseBytes;
    this.baseWindow?.close();
    this.baseWindow = window;
    this.base = base;
    this.baseBytes = bytes;
    if (old !== null && old.buffer !== bytes?.buffer) this.onBaseReleased?.(old.buffer.byteLength);
  }

  /**
   * Told the size of the snapshot buffer the store lets go of when its base moves on from bytes
   * in memory (to a newer snapshot, or to the same records read from a file): hundreds of MB at
   * 1M keys, which V8 frees only at a major collection (src/server/memory-release.ts). Not told
   * when a base read from a file is replaced: that let go of no memory.
   */
  onBaseReleased: ((bytes: number) => void) | null = null;

  /** The base tier: how many records it holds, and whether it reads them through a window (a file) rather than memory. */
  get baseTier(): { readonly records: number; readonly windowed: boolean } {
    return { records: this.base.count, windowed: this.base.isWindowed };
  }

  /**
   * If the base is still records of the snapshot `bytes` held in memory (a wrapper's snapshot
   * may carry the store's behind a header of its own: then the part of `bytes` that is the
   * store's), it reads them through the window `open(offset, length)` returns from now on: the
   * bytes [offset, offset + length) of `bytes`, as saved in a file. The store then no longer
   * holds them. Returns whether it did; a window it did not take is closed. Checked first: the
   * window shows the same first and last records.
   */
  readBaseThrough(bytes: Uint8Array, open: (offset: number, length: number) => ClosableRecordWindow): boolean {
    const own = this.baseBytes;
    if (own === null || this.base.count === 0 || own.buffer !== bytes.buffer) return false;
    const offset = own.byteOffset - bytes.byteOffset;
    if (offset < 0 || offset + own.length > bytes.length) return false;
    const window = open(offset, own.length);
    const windowed = this.base.throughWindow(window);
    const last = this.base.count - 1;
    if (!sameBytes(windowed.rawAt(0), this.base.rawAt(0)) || !sameBytes(windowed.rawAt(last), this.base.rawAt(last))) {
      window.close();
      return false;
    }
    this.base = windowed;
    this.baseWindow = window;
    this.baseBytes = null;
    // A restored table's records left in the snapshot's bytes would hold all of them.
    this.idempotency.detachEncoded();
    this.onBaseReleased?.(own.buffer.byteLength);
    return true;
  }

  /**
   * Up to `maxKeys` more of the pending overlay trim (adopt); true once none is pending. A key
   * goes when the base says the same: a deletion of a key the base does not hold, or a record
   * unchanged since the snapshot began (so the base holds its bytes) that no event of the
   * history can refer to (older than the oldest event: keeping every newer record, a superset of
   * those shared, keeps the sharing exact at O(overlay)). Whatever changed since is newer than
   * `revision`, or a deletion of a key the base holds, and stays.
   */
  private trimOverlay(maxKeys: number): boolean {
    const t = this.trim;
    if (t === null) return true;
    const end = Math.min(t.keys.length, t.next + Math.max(1, maxKeys));
    const oldest = this.history.firstRevision;
    const base = this.base;
    for (; t.next < end; t.next++) {
      const key = t.keys[t.next]!;
      const rec = this.data.get(key);
      // Gone from the overlay since (deleted where the base does not hold it): nothing to trim.
      if (rec === undefined) continue;
      const isSame = rec === null ? base.indexOf(this.probe.set(key)) < 0 : rec.modRevision <= t.revision && rec.modRevision < oldest;
      if (isSame) {
        this.data.delete(key);
        this.keys.delete(key);
      }
    }
    if (t.next < t.keys.length) return false;
    this.trim = null;
    return true;
  }

  private detach(key: string, lease: number): void {
    if (lease !== 0 && this.leases.get(lease)?.keys.delete(key) === true) this.leaseBytes -= utf8Length(key);
  }
}

/**
 * The records of `base` and of the overlay's keys (in order, as they stood: `atStart`) merged in
 * key order, the overlay's winning; a base record is copied as it is encoded.
 */
function mergedRecords(base: BaseTable, overlayKeys: readonly string[], atStart: (key: string) => StoredRecord | undefined): RecordCursor {
  let i = 0;
  let j = 0;
  const probe = new KeyBytes();
  let overlayKey: KeyBytes | null = null;
  return {
    writeNext(w, keys) {
      for (;;) {
        if (j < overlayKeys.length && overlayKey === null) overlayKey = probe.set(overlayKeys[j]!);
        const order = i >= base.count ? 1 : overlayKey === null ? -1 : base.compareAt(i, overlayKey);
        if (order < 0) {
          const raw = base.rawAt(i++);
          keys?.addRecord(raw);
          w.raw(raw);
          return true;
        }
        if (overlayKey === null) return false;
        if (order === 0) i++;
        const rec = atStart(overlayKeys[j++]!);
        overlayKey = null;
        if (rec !== undefined) {
          keys?.add(probe.bytes, 0, probe.length);
          writeStoredRecord(w, rec);
          return true;
        }
      }
    },
  };
}

function leaseNotFound(id: number, index: number): KvResult {
  return { type: 'rejected', error: 'LEASE_NOT_FOUND', message: `lease ${id} does not exist`, index };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
