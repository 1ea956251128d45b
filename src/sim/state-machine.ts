// The state machine the simulator runs: the real key-value store (src/kv/, the one `raftkv serve`
// runs) behind a hashing wrapper (§5.3 "apply log[lastApplied]"). The wrapper folds every applied
// entry's (index, term, data) and the store's size after it into a running hash, so two replicas
// with equal hashes at an index applied the same sequence and hold stores of the same shape:
// State Machine Safety is checkable in O(1) per entry, and a restored snapshot can be checked
// against the cluster's history. Its snapshot is a fixed header (index, term, hash, commands)
// followed by the store's own snapshot bytes. Snapshots are written in slices, as the store
// writes them for the runtime in production (beginSnapshot), while entries go on being applied;
// each is checked against the one the store would have written at once when it began.
import { readSourceRange, readWholeSource, sourceFrom, thenRestored, type BackgroundLoads, type RestoreInProgress, type SlicedRestores, type SlicedSnapshots, type SnapshotInProgress } from '../node/runtime.js';
import type { Entry, SnapshotBytesSource, SnapshotWriter, StateMachine } from '../raft/index.js';
import { InvariantViolation } from './invariants/violation.js';
import { KvStateMachine, type KvResult, type KvStateMachineOptions } from '../kv/index.js';
import { HASH_SEED, bytesEqual, foldNumber, hashBytes } from './hash.js';

const HEADER_BYTES = 32;
/** Records or events a restore decodes per slice in the simulator: small, so a load spans several turns. */
const RESTORE_SLICE = 16;
/** What a restore through a source reads at a time: a few records, so that many straddle reads. */
const RESTORE_READ_BYTES = 96;

/**
 * A small idempotency table, so that the simulator's runs also exercise eviction; equal on every
 * node, as the store requires.
 */
export const SIM_KV_OPTIONS: KvStateMachineOptions = { idempotencyMaxRecords: 256 };

export interface SimMachineState {
  readonly index: number;
  readonly term: number;
  readonly hash: number;
  readonly commands: number;
}

/** The running hash after applying `entry` on top of `previous`. */
export function chainHash(previous: number, entry: Entry): number {
  let h = foldNumber(previous, entry.index);
  h = foldNumber(h, entry.term);
  if (entry.type === 'config') return foldNumber(h, 1);
  return foldNumber(h, entry.data.length === 0 ? 0 : hashBytes(entry.data));
}

export class SimStateMachine implements StateMachine<KvResult | undefined>, SlicedSnapshots, SlicedRestores, BackgroundLoads {
  index = 0;
  term = 0;
  hash = HASH_SEED;
  /** Non-empty normal entries applied: the "commands" a client sees. */
  commands = 0;
  private kv = new KvStateMachine(SIM_KV_OPTIONS);
  /** Hears each applied result (the node's lease keeper follows grants and revokes by it, as in `raftkv serve`). */
  onApplied: ((result: KvResult | undefined) => void) | null = null;

  /** The store, for reads and checks. */
  get store(): KvStateMachine {
    return this.kv;
  }

  apply(entry: Entry): KvResult | undefined {
    if (entry.index !== this.index + 1) {
      // The runtime contract: each index exactly once, in order. A gap or repeat is a bug.
      throw new Error(`state machine at ${this.index} was handed entry ${entry.index}`);
    }
    // The events this entry adds, read without decoding a restored history still pending (as
    // a node's watch hub reads them): the simulator's loads run that path too.
    const revisionBefore = this.kv.revision;
    const result = this.kv.apply(entry);
    this.index = entry.index;
    this.term = entry.term;
    // The store's size after each entry: replicas that applied the same commands but reached
    // different stores (a nondeterministic apply) part ways here.
    let h = foldNumber(foldNumber(chainHash(this.hash, entry), this.kv.size), this.kv.sizeBytes);
    // And the history (what watches are served from): the revision, the compaction, and every
    // event this entry added, so every replica's event stream is the same sequence.
    h = foldNumber(foldNumber(foldNumber(h, this.kv.revision), this.kv.compactRevision), this.kv.eventCount);
    const { events, index } = this.kv.eventsFrom(revisionBefore + 1);
    for (let i = index; i < events.length; i++) {
      const ev = events[i]!;
      h = foldNumber(foldNumber(foldNumber(h, ev.revision), ev.key.length), ev.record === null ? -1 : ev.record.version);
    }
    this.hash = h;
    if (entry.type === 'normal' && entry.data.length > 0) this.commands++;
    if (this.onApplied !== null) this.onApplied(result);
    return result;
  }

  snapshot(): Uint8Array {
    return this.kv.beginSnapshot(this.header(this)).step(Number.POSITIVE_INFINITY)!;
  }

  /**
   * The store's snapshot in slices, behind this wrapper's header as of now. The store is small
   * here, so its snapshot at once is taken first, and the sliced one must equal it: what apply()
   * changes meanwhile must not reach it (copy-on-write). Into the runtime's `writer` if it gives
   * one (the storage twin's, as FileStorage's in production): then read back through it.
   */
  beginSnapshot(writer: SnapshotWriter | null = null): SnapshotInProgress {
    const expected = this.snapshot();
    const inProgress = this.kv.beginSnapshot(this.header(this), writer);
    return {
      step: (maxBytes) => {
        // Small slices, so that entries are applied between them even in a small store.
        const out = inProgress.step(Math.min(maxBytes, 64));
        if (out === null) return null;
        const bytes = out === 'written' ? readWholeSource(writer!) : out;
        if (!bytesEqual(bytes, expected)) {
          throw new InvariantViolation('Runtime Contract', `the snapshot at ${decodeSimSnapshot(expected).index} written in slices differs from the one the store held when it began`);
        }
        return out;
      },
      abandon: () => inProgress.abandon(),
    };
  }

  /** The wrapper's header, written in front of the store's snapshot (no copy of the store's bytes). */
  private header(state: SimMachineState): Uint8Array {
    const bytes = new Uint8Array(HEADER_BYTES);
    const view = new DataView(bytes.buffer);
    view.setFloat64(0, state.index);
    view.setFloat64(8, state.term);
    view.setUint32(16, state.hash);
    view.setFloat64(20, state.commands);
    return bytes;
  }

  restore(data: Uint8Array): void {
    const task = this.beginRestore(data);
    while (!task.step()) {
      // in one go
    }
    // All of it, as KvStateMachine.restore() decodes all: what a restore in slices leaves for
    // later is the host's to drive, and only a restart's load beside the core has one that does.
    while (!this.kv.loadInBackground()) {
      // in one go
    }
  }

  /**
   * restore() in slices of RESTORE_SLICE records or events (a few per snapshot here, so that a
   * load beside the core spans several of the simulator's turns); the wrapper is replaced by the
   * last step, with the store.
   */
  beginRestore(data: Uint8Array): RestoreInProgress {
    const s = decodeSimSnapshot(data);
    const kv = new KvStateMachine(SIM_KV_OPTIONS);
    return thenRestored(kv.beginRestore(data.subarray(HEADER_BYTES), RESTORE_SLICE), () => this.adopt(s, kv));
  }

  /**
   * beginRestore() through a source (storage's openSnapshot), as a server's restart restores: the
   * store reads its records through windows RESTORE_READ_BYTES at a time (so records straddle
   * reads) and keeps its base there, with its key filter.
   */
  beginRestoreThrough(source: SnapshotBytesSource): RestoreInProgress {
    const s = decodeSimSnapshot(readSourceRange(source, 0, Math.min(source.bytes, HEADER_BYTES)));
    const kv = new KvStateMachine(SIM_KV_OPTIONS);
    return thenRestored(kv.beginRestoreThrough(sourceFrom(source, HEADER_BYTES), RESTORE_SLICE, RESTORE_READ_BYTES), () => this.adopt(s, kv));
  }

  /** The store's background load (its history, left encoded by a restore in slices). */
  get isLoadingInBackground(): boolean {
    return this.kv.isLoadingInBackground;
  }

  loadInBackground(): boolean {
    return this.kv.loadInBackground();
  }

  private adopt(s: SimMachineState, kv: KvStateMachine): void {
    if (kv.appliedIndex !== s.index) throw new Error(`sim snapshot at ${s.index} holds a store at ${kv.appliedIndex}`);
    this.kv = kv;
    this.index = s.index;
    this.term = s.term;
    this.hash = s.hash;
    this.commands = s.commands;
  }
}

/** The wrapper's header of a snapshot: where the state machine stood. */
export function decodeSimSnapshot(data: Uint8Array): SimMachineState {
  if (data.length < HEADER_BYTES) throw new Error(`sim snapshot has ${data.length} bytes, fewer than its ${HEADER_BYTES}-byte header`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { index: view.getFloat64(0), term: view.getFloat64(8), hash: view.getUint32(16), commands: view.getFloat64(20) };
}

