// The storage contract shared by the file-backed write-ahead log and its in-memory twin. The
// runtime drives it from each Ready: queue the writes, then sync; what may happen before and
// after the sync is the Ready contract's to say (raft/types.ts, `Ready`).
import type { Entry, HardState, InitialState, Snapshot } from '../raft/types.js';

export interface RaftStorage {
  /**
   * Rebuilds what was durable: hard state, newest valid snapshot's metadata, and the log after
   * it. A torn record at the very end of the last segment is cut off with a warning; any other
   * damage throws StorageCorruptionError naming the file and byte offset.
   */
  load(): Promise<InitialState>;
  /** The newest durable snapshot (metadata and bytes), or null. */
  loadSnapshot(): Promise<Snapshot | null>;
  /**
   * Queues entries. If entries[0].index is at or below the stored last index, the stored log is
   * first truncated from that index (a conflicting suffix removed, §5.3). Not durable until sync().
   */
  append(entries: readonly Entry[]): void;
  /** Queues a hard state. Not durable until sync(). */
  setHardState(state: HardState): void;
  /**
   * Makes everything queued durable with one fdatasync where possible (group commit). Rejects
   * with NoSpaceError when the disk is full: nothing queued was written durably or is lost, it
   * stays queued, and a later sync() writes it all. Any other failure is final
   * (StorageFailedError).
   */
  sync(): Promise<void>;
  /**
   * Durably stores a snapshot the local state machine produced (temporary file, sync, rename,
   * directory sync). The log is left as it is; call compact() afterwards.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /**
   * Durably installs a snapshot received from a leader (§7): saves it as saveSnapshot() does and
   * discards the whole log, which restarts after snapshot.meta.index.
   */
  installSnapshot(snapshot: Snapshot): Promise<void>;
  /** Drops log entries up to and including `index` (whole segments), once a snapshot covers them. */
  compact(index: number): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional: an early warning that the disk is full, before a write fails (the next WAL
   * segment cannot be prepared, a snapshot did not fit). `listener(true)` when raised,
   * `listener(false)` when cleared; returns whether it is raised now. saveSnapshot(),
   * installSnapshot() and compact() also reject with NoSpaceError, leaving the storage usable.
   */
  watchSpace?(listener: (isOutOfSpace: boolean) => void): boolean;
}
