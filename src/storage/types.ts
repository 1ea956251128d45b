// The storage contract shared by the file-backed write-ahead log and its in-memory twin. The
// runtime drives it from each Ready: queue the writes, then sync; what may happen before and
// after the sync is the Ready contract's to say (raft/types.ts, `Ready`).
//
// WHAT MAY OVERLAP. A local snapshot is saved and the log compacted while the runtime goes on
// carrying out Readies (docs/runtime.md, "Snapshots and compaction"), so:
//   - append(), setHardState() and sync() MAY be called while a saveSnapshot() or a compact() is
//     in flight, and sync() while another sync() is (callers share flushes; each resolves only
//     once everything queued before its call is durable; a failure other than a full disk fails
//     every caller in flight or joined, and all later ones).
//   - saveSnapshot() writes the snapshot, then records it in the WAL behind whatever was queued
//     before it, and syncs: so it also makes those writes durable, and its record may follow
//     entries with higher indexes. Such a "taken" record changes no log: recovery keeps every
//     entry around it. (An "installed" one discards the log it follows, §7.)
//   - compact() MAY run while entries are appended and synced: it drops only whole segments
//     behind the active one, whose entries the newest durable snapshot covers.
//   - At most ONE snapshot store at a time: saveSnapshot() and installSnapshot() MUST NOT overlap
//     each other (nor themselves), and compact() MUST NOT overlap installSnapshot(). The runtime
//     makes a leader's snapshot wait for the local one in flight; it starts a local one only
//     between Readies, so never while an install is in flight.
//   - compact(i) MUST be called only once a snapshot covering i is durable (its saveSnapshot()
//     resolved): the storage clamps to its newest snapshot, and a snapshot still being written
//     is not yet that.
// A crash while a save is in flight leaves the snapshot (if its file was complete) or not, and
// the log as far as it was synced; the log always reaches the snapshot's index, because a local
// snapshot never covers entries not yet durable (it is taken between Readies). A log that ends
// before the snapshot, or holds another term at its index, restarts after it (§7).
import type { Entry, HardState, InitialState, Snapshot, SnapshotMeta, SnapshotSource, SnapshotWriter } from '../raft/types.js';

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
   * The same, read at once (blocking): what a host sends a follower in InstallSnapshot, so it
   * need not keep the bytes in memory (node/runtime.ts, StoragePort.readSnapshot). Optional.
   */
  readSnapshot?(): Snapshot | null;
  /**
   * The snapshot loadSnapshot() would return, its bytes read where they lie (through windows over
   * its file) instead of into memory: what a restart restores from, if the state machine can
   * (node/runtime.ts, RestoresThrough). Null if there is none, or if the
   * storage cannot (loadSnapshot() then). Optional.
   */
  openSnapshot?(): SnapshotSource | null;
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
   * directory sync, then its WAL record synced along with everything queued before it). The log
   * is left as it is; call compact() afterwards. Appends and syncs MAY go on meanwhile (above).
   */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /**
   * Optional, with saveWrittenSnapshot() and readSnapshot(): a writer a state machine writes a
   * local snapshot into as it serializes it (a temporary file), instead of into one buffer of its
   * whole size. Nothing of it is durable until saveWrittenSnapshot(); its abandon() deletes it.
   * The runtime makes one for its local snapshot in flight, so no install overlaps it (above).
   */
  snapshotWriter?(meta: SnapshotMeta): SnapshotWriter;
  /** saveSnapshot() of the snapshot a writer of this storage holds, once all of it is written. */
  saveWrittenSnapshot?(writer: SnapshotWriter): Promise<void>;
  /**
   * Durably installs a snapshot received from a leader (§7): saves it as saveSnapshot() does and
   * discards the whole log, which restarts after snapshot.meta.index.
   */
  installSnapshot(snapshot: Snapshot): Promise<void>;
  /**
   * Drops log entries up to and including `index` (whole segments), once a durable snapshot
   * covers them (clamped to the newest one). Appends and syncs MAY go on meanwhile.
   */
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
