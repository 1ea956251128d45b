// The in-memory twin of FileStorage, with crash semantics, for the deterministic simulator and
// tests. One face: the storage contract (RaftStorage), with one documented property FileStorage
// lacks, which lets an event loop that never awaits drive it: EVERY OPERATION TAKES EFFECT WHEN
// IT IS CALLED, and the promise it returns is already settled (it rejects only on a caller's
// bug). So sync() makes the queue durable the moment it is called — the simulator calls it when
// its seeded disk latency has passed — and saveSnapshot(), installSnapshot() and compact() are
// durable on return, as FileStorage's are once their promises resolve.
//
// Two more hooks give the twin its crash semantics: crash() forgets what Figure 2 says must not
// be relied on (writes queued since the last sync), and recover() reads back, synchronously,
// what a restart would load.
//
// A LOCAL SNAPSHOT IN TWO HALVES, as FileStorage saves one: first the snapshot file becomes
// durable, then its WAL marker is synced, which makes every write queued before it durable too.
// saveSnapshot() does both at once; a host that lets Readies run while a save is in flight (the
// simulator) calls writeSnapshot() for the first half and sync() for the second, when it sees
// fit, so that a crash can fall between them: the snapshot survives, the queue does not. While
// it is in flight appends, hard states, syncs and compactions go on as usual (storage/types.ts
// says what may overlap).
import type { ByteWindow, Entry, HardState, InitialState, Snapshot, SnapshotMeta, SnapshotSource, SnapshotWriter } from '../raft/types.js';
import { StorageCorruptionError, StorageUsageError } from './errors.js';
import { validateAppend } from './log-rules.js';
import type { RaftStorage } from './types.js';

type QueuedOp =
  | { readonly kind: 'append'; readonly entries: readonly Entry[] }
  | { readonly kind: 'hardState'; readonly state: HardState };

const INITIAL_HARD_STATE: HardState = { currentTerm: 0, votedFor: null, commitIndex: 0 };

/**
 * The twin of FileStorage's snapshot writer (snapshot-file.ts, SnapshotFileWriter): the chunks are
 * copied into one buffer at once, never behind; saveWrittenSnapshot() then saves it.
 */
export class MemorySnapshotWriter implements SnapshotWriter {
  bytes = -1;
  readonly isBehind = false;
  private data: Uint8Array | null = null;
  private at = 0;
  private readonly spares: Uint8Array[] = [];
  private isAbandoned = false;

  constructor(
    readonly meta: SnapshotMeta,
    readonly chunkBytes: number,
  ) {}

  begin(bytes: number): void {
    if (this.bytes >= 0) throw new StorageUsageError('begin() twice on a snapshot writer');
    this.bytes = bytes;
    this.data = new Uint8Array(bytes);
  }

  write(buf: Uint8Array, length: number): void {
    const data = this.data;
    if (data === null || this.isAbandoned) throw new StorageUsageError('a snapshot writer written before begin() or after abandon()');
    if (this.at + length > data.length) throw new StorageUsageError(`a snapshot writer given ${this.at + length} bytes of the ${data.length} announced`);
    data.set(buf.subarray(0, length), this.at);
    this.at += length;
    this.spares.push(buf);
  }

  spare(): Uint8Array | null {
    return this.spares.pop() ?? null;
  }

  isWritten(): boolean {
    return this.data !== null && this.at === this.data.length;
  }

  window(start: number, length: number): ByteWindow {
    const data = this.data;
    if (data === null || !this.isWritten()) throw new StorageUsageError('a window on a snapshot not yet written');
    return memoryWindow(data, start, length);
  }

  abandon(): void {
    this.isAbandoned = true;
    this.data = null;
  }

  /** The snapshot written. */
  get snapshot(): Snapshot {
    if (!this.isWritten() || this.isAbandoned) throw new StorageUsageError('a snapshot writer saved before all of it is written');
    return { meta: this.meta, data: this.data! };
  }
}

export interface MemoryStorageOptions {
  /** The buffers its snapshot writers take (MemorySnapshotWriter.chunkBytes). @default 1 MiB, as FileStorage's */
  readonly snapshotChunkBytes?: number;
}

export class MemoryStorage implements RaftStorage {
  private readonly snapshotChunkBytes: number;

  constructor(options: MemoryStorageOptions = {}) {
    this.snapshotChunkBytes = options.snapshotChunkBytes ?? 1 << 20;
  }

  // ---- durable state: survives crash() ----
  private hardState: HardState = INITIAL_HARD_STATE;
  private snapshot: Snapshot | null = null;
  /** Durable log; log[0] has index logStart. Entries are shared, never copied. */
  private log: Entry[] = [];
  private logStart = 1;

  // ---- volatile: lost by crash() ----
  /** Writes in the order they were made, replayed onto the durable state at sync. */
  private queue: QueuedOp[] = [];
  /** Last index as seen through the queue, so append() can refuse gaps at once. */
  private queuedLastIndex = 0;

  // ---- crash semantics ----

  /** Power loss: every append and setHardState queued since the last sync is forgotten. */
  crash(): void {
    this.queue = [];
    this.queuedLastIndex = this.logStart + this.log.length - 1;
  }

  /**
   * What a restart loads: load() and loadSnapshot() at once, without a promise. Reconciled as
   * FileStorage reconciles its files: a log that ends before the snapshot, or holds another term
   * at its index, restarts after it (§7).
   */
  recover(): { readonly state: InitialState; readonly snapshot: Snapshot | null } {
    const snapshotIndex = this.snapshot?.meta.index ?? 0;
    if (this.logStart > snapshotIndex + 1) {
      // Unreachable through the API: compaction is clamped to the snapshot, install resets both.
      throw new StorageCorruptionError('memory', 0, `log starts at ${this.logStart} past snapshot ${snapshotIndex}`);
    }
    const lastIndex = this.logStart + this.log.length - 1;
    const atSnapshot = this.log[snapshotIndex - this.logStart];
    if (this.snapshot !== null && (lastIndex < snapshotIndex || (atSnapshot !== undefined && atSnapshot.term !== this.snapshot.meta.term))) {
      this.log = [];
      this.logStart = snapshotIndex + 1;
      this.queuedLastIndex = Math.max(this.queuedLastIndex, snapshotIndex);
    }
    const state: InitialState = {
      hardState: this.hardState,
      snapshot: this.snapshot?.meta ?? null,
      entries: this.log.slice(Math.max(0, snapshotIndex + 1 - this.logStart)),
      applied: snapshotIndex,
    };
    return { state, snapshot: this.snapshot };
  }

  // ---- RaftStorage ----

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    validateAppend(entries, this.queuedLastIndex);
    this.queue.push({ kind: 'append', entries });
    this.queuedLastIndex = entries[entries.length - 1]!.index;
  }

  setHardState(state: HardState): void {
    // Consecutive hard states: only the last one can matter (a runtime may queue several
    // commitIndex-only changes between syncs).
    const last = this.queue.length - 1;
    if (last >= 0 && this.queue[last]!.kind === 'hardState') this.queue[last] = { kind: 'hardState', state };
    else this.queue.push({ kind: 'hardState', state });
  }

  async load(): Promise<InitialState> {
    return this.recover().state;
  }

  async loadSnapshot(): Promise<Snapshot | null> {
    return this.snapshot;
  }

  readSnapshot(): Snapshot | null {
    return this.snapshot;
  }

  /** The newest snapshot read through windows over its bytes, as FileStorage's over its file (RaftStorage.openSnapshot). */
  openSnapshot(): SnapshotSource | null {
    const snapshot = this.snapshot;
    if (snapshot === null) return null;
    return { meta: snapshot.meta, bytes: snapshot.data.length, window: (start, length) => memoryWindow(snapshot.data, start, length) };
  }

  async sync(): Promise<void> {
    this.flush();
  }

  /**
   * Durable at once. Like FileStorage, whose snapshot marker travels through the WAL, this also
   * makes every write queued before it durable.
   */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.save(snapshot);
  }

  snapshotWriter(meta: SnapshotMeta): MemorySnapshotWriter {
    return new MemorySnapshotWriter(meta, this.snapshotChunkBytes);
  }

  /** saveSnapshot() of what `writer` (one of this storage's) holds. */
  async saveWrittenSnapshot(writer: SnapshotWriter): Promise<void> {
    this.save(MemoryStorage.written(writer));
  }

  /** The snapshot a writer of this storage holds, complete. */
  static written(writer: SnapshotWriter): Snapshot {
    if (!(writer instanceof MemorySnapshotWriter)) throw new StorageUsageError('a snapshot writer saved by another storage than the one that made it');
    return writer.snapshot;
  }

  /**
   * The first half of saveSnapshot(): the snapshot is durable now, writes queued before it are
   * not (FileStorage: the file is in place, its WAL marker not yet synced). sync() is the
   * second half.
   */
  writeSnapshot(snapshot: Snapshot): void {
    if (this.snapshot === null || snapshot.meta.index >= this.snapshot.meta.index) this.snapshot = snapshot;
  }

  /** The index of the newest durable snapshot (0 if none): what compact() may drop up to. */
  get snapshotIndex(): number {
    return this.snapshot?.meta.index ?? 0;
  }

  /** Durable at once; the whole log is discarded and restarts after snapshot.meta.index (§7). */
  async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.save(snapshot);
    this.log = [];
    this.logStart = snapshot.meta.index + 1;
    this.queuedLastIndex = snapshot.meta.index;
  }

  /** Durable at once. Only what the newest snapshot covers is dropped, as FileStorage does. */
  async compact(index: number): Promise<void> {
    const lastIndex = this.logStart + this.log.length - 1;
    const upTo = Math.min(index, this.snapshot?.meta.index ?? 0, lastIndex);
    if (upTo < this.logStart) return;
    this.log = this.log.slice(upTo - this.logStart + 1);
    this.logStart = upTo + 1;
  }

  /** Flushes like FileStorage.close(); the twin stays usable, which stands for a reopen. */
  async close(): Promise<void> {
    this.flush();
  }

  private flush(): void {
    for (const op of this.queue) {
      if (op.kind === 'append') this.applyAppend(op.entries);
      else this.hardState = op.state;
    }
    this.queue = [];
  }

  private save(snapshot: Snapshot): void {
    this.writeSnapshot(snapshot);
    this.flush();
  }

  private applyAppend(entries: readonly Entry[]): void {
    const first = entries[0]!.index;
    if (first < this.logStart) {
      // Overwrites everything kept, including entries a snapshot already covers.
      this.log = [];
      this.logStart = first;
    } else {
      this.log.length = first - this.logStart;
    }
    for (const entry of entries) this.log.push(entry);
  }
}

/** A window over `data`'s bytes [start, start + length) (ByteWindow), as a file's would show them; reads throw once it is closed. */
function memoryWindow(data: Uint8Array, start: number, length: number): ByteWindow {
  if (!(start >= 0 && length >= 0 && start + length <= data.length)) throw new RangeError(`bad window [${start}, +${length}) over ${data.length} bytes`);
  const buf = data.subarray(start, start + length);
  let isOpen = true;
  return {
    buf,
    load: (from, to) => {
      if (!isOpen) throw new Error('the window is closed');
      if (!(from >= 0 && from <= to && to <= length)) throw new RangeError(`[${from}, ${to}) is outside the window of ${length} bytes`);
      return from;
    },
    close: () => {
      isOpen = false;
    },
  };
}
