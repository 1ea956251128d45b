// The one runtime around the consensus core: it carries out each Ready in the order the Ready
// contract prescribes (raft/types.ts, `Ready`; docs/runtime.md) through four injected ports —
// storage, a message sender, the state machine and a clock — and is hosted twice: by RaftNode
// (real timers, FileStorage, TCP) and by the simulator's SimNode (an event queue, the memory
// twin, a seeded network). What the simulator checks is therefore the loop that ships.
//
// Callback style, not promises: every port reports completion through `done`, which a host may
// call at once or from its own event queue, so the simulator decides deterministically when a
// sync completes and nothing here waits on a microtask it does not control. Beyond the order of
// steps the runtime owns: sending `messages` at once and `messagesAfterSync` only after the sync;
// applying committed entries while a sync is in flight (early apply); taking snapshots and
// compacting, beside the Readies (a snapshot is captured between two Readies; its serialization,
// a slice per clock turn if the state machine can, its save and the compaction behind it overlap
// the Readies that follow; a leader's snapshot waits for it); a full disk (a Ready stays in flight and its write is retried with backoff under
// the NO_SPACE alarm; a snapshot that does not fit is retried later); fail-stop on any other
// storage error; reads waiting for the state machine; and noticing this server's removal.
import type { Configuration, Entry, HardState, Message, NodeId, Raft, ReadState, Ready, RemovedNotice, Snapshot, SnapshotBytesSource, SnapshotMeta, SnapshotSource, SnapshotWriter, SoftState, StateMachine } from '../raft/index.js';
import { NO_SPACE_RETRY_MS, SNAPSHOT_RETRY_MS, SpaceAlarm, isNoSpace, nextBackoffMs } from './space-alarm.js';
import { SILENT_LOGGER, type NodeLogger } from './options.js';

/** A port's completion: null on success. */
export type Done = (err: Error | null) => void;

/**
 * Stable storage as the runtime drives it (storage/types.ts states what each operation means;
 * this is its callback face). append() and setHardState() only queue.
 */
export interface StoragePort {
  append(entries: readonly Entry[]): void;
  setHardState(state: HardState): void;
  /** Makes everything queued durable. A NoSpaceError leaves it all queued, to be retried. */
  sync(done: Done): void;
  /** Durably installs a leader's snapshot; the stored log restarts after it (§7). */
  installSnapshot(snapshot: Snapshot, done: Done): void;
  /** Durably stores a snapshot of the local state machine. */
  saveSnapshot(snapshot: Snapshot, done: Done): void;
  /** Drops stored log entries up to `index`, which the newest snapshot covers. */
  compact(index: number, done: Done): void;
  /**
   * The newest durable snapshot, read back (and checked) now; null if none. A storage that
   * offers it spares the runtime keeping a snapshot's bytes in memory between the rare
   * InstallSnapshot messages that need them (a 1M-key store: ~270 MB). Throws if what is
   * stored is damaged.
   */
  readSnapshot?(): Snapshot | null;
  /**
   * Optional, with saveWrittenSnapshot() and readSnapshot(): a writer for a local snapshot, which
   * a state machine that can (SlicedSnapshots) writes straight into storage (a file) instead of
   * into one buffer of its whole size; what it wrote is not durable, nor the snapshot, until
   * saveWrittenSnapshot(). The writer's abandon() gives it up.
   */
  snapshotWriter?(meta: SnapshotMeta): SnapshotWriter;
  /** Durably stores the snapshot a writer holds (all of it written), as saveSnapshot() does. */
  saveWrittenSnapshot?(writer: SnapshotWriter, done: Done): void;
}

/** Where messages go: the TCP transport, the simulated network, a test's queue. */
export interface MessagePort {
  /** Queues a message; the sender may batch what it queues within one turn. */
  send(m: Message): void;
  /** Writes what send() queued now: for messages on a write's critical path. */
  flush?(): void;
}

/**
 * A snapshot a state machine writes in slices while it goes on applying (what the runtime asks
 * of one that offers beginSnapshot(), as KvStateMachine does): each step() writes about
 * `maxBytes` more and returns the bytes once complete, which are those snapshot() would have
 * returned when it began; abandon() gives it up.
 */
export interface SnapshotInProgress {
  /** The bytes once complete; 'written' once complete in the writer beginSnapshot() was given. */
  step(maxBytes: number): Uint8Array | 'written' | null;
  abandon(): void;
}

/**
 * A state machine that can snapshot in slices: the runtime serializes one slice per clock turn.
 * Given a `writer` (the storage offers one: StoragePort.snapshotWriter), it may write the
 * snapshot there; a step that finds the writer behind the disk returns null and is tried again.
 */
export interface SlicedSnapshots {
  beginSnapshot(writer?: SnapshotWriter | null): SnapshotInProgress;
}

/** A local snapshot once serialized: its bytes, or null where the state machine wrote them into storage (SnapshotWriter). */
export interface TakenSnapshot {
  readonly meta: SnapshotMeta;
  readonly bytes: number;
  readonly data: Uint8Array | null;
}

function hasSlicedSnapshots(sm: object): sm is SlicedSnapshots {
  return typeof (sm as Partial<SlicedSnapshots>).beginSnapshot === 'function';
}

/**
 * A restore a state machine carries out in slices (what beginRestore() returns): each step()
 * decodes a slice and returns true once the state machine holds the snapshot, replaced at once
 * by the last step; abandon() drops it, the state machine untouched.
 */
export interface RestoreInProgress {
  step(): boolean;
  abandon(): void;
}

/** A state machine that can restore in slices (KvStateMachine can): the host runs one per turn. */
export interface SlicedRestores {
  beginRestore(data: Uint8Array): RestoreInProgress;
}

/**
 * A state machine that restores (in slices) from a snapshot read where it lies (storage's
 * openSnapshot: its file) rather than from bytes in memory: it reads through windows what it
 * needs, and may keep reading through them (KvStateMachine keeps its base there).
 */
export interface RestoresThrough {
  beginRestoreThrough(source: SnapshotBytesSource): RestoreInProgress;
}

/** Whether `sm` restores from a snapshot read where it lies (RestoresThrough). */
export function canRestoreThrough(sm: object): sm is RestoresThrough {
  return typeof (sm as Partial<RestoresThrough>).beginRestoreThrough === 'function';
}

/** All of `source`'s bytes, read into memory: for a state machine that restores only from bytes. */
export function readWholeSource(source: SnapshotBytesSource): Uint8Array {
  return readSourceRange(source, 0, source.bytes);
}

/** A copy of `source`'s bytes [start, end). */
export function readSourceRange(source: SnapshotBytesSource, start: number, end: number): Uint8Array {
  const window = source.window(start, end - start);
  try {
    const at = window.load(0, end - start);
    return window.buf.slice(at, at + end - start);
  } finally {
    window.close();
  }
}

/** `source`'s bytes from `offset` on, as a source of their own (a wrapper's header skipped). */
export function sourceFrom(source: SnapshotBytesSource, offset: number): SnapshotBytesSource {
  if (!(offset >= 0 && offset <= source.bytes)) throw new RangeError(`offset ${offset} is outside the snapshot's ${source.bytes} bytes`);
  return { bytes: source.bytes - offset, window: (start, length) => source.window(offset + start, length) };
}

function hasSlicedRestores(sm: object): sm is SlicedRestores {
  return typeof (sm as Partial<SlicedRestores>).beginRestore === 'function';
}

/**
 * A state machine whose restore in slices leaves work for after it (KvStateMachine leaves its
 * history encoded and serves meanwhile): loadInBackground() does a slice of it, true once none
 * is left; whatever reads the part not loaded yet loads it at once. The runtime paces it
 * (Runtime.loadInBackground).
 */
export interface BackgroundLoads {
  readonly isLoadingInBackground: boolean;
  loadInBackground(): boolean;
}

/**
 * How long after a restore the background load waits before it begins, unless a snapshot needs
 * it first: a restart's first seconds (an election, the replay, the first writes) go first. The
 * members of a test or a laptop share a machine, and three loads beside a leader's replay were
 * most of a full-cluster restart (docs/runtime.md).
 */
export const BACKGROUND_LOAD_DELAY_MS = 5000;
/** Once begun, longest a background load waits for a turn with no committed entry left to apply. */
export const BACKGROUND_LOAD_MAX_WAIT_MS = 50;
/** How often the host asks again while the load waits for the replay. */
const BACKGROUND_LOAD_POLL_MS = 5;

function backgroundLoadsOf(sm: object): BackgroundLoads | null {
  const b = sm as Partial<BackgroundLoads>;
  return typeof b.loadInBackground === 'function' ? (b as BackgroundLoads) : null;
}

/** A slice of `sm`'s background load, if it has one (BackgroundLoads); true once nothing is left. */
export function loadInBackground(sm: object): boolean {
  return backgroundLoadsOf(sm)?.loadInBackground() ?? true;
}

/** Whether `sm` has a background load under way (BackgroundLoads). */
export function isLoadingInBackground(sm: object): boolean {
  return backgroundLoadsOf(sm)?.isLoadingInBackground ?? false;
}

/**
 * `sm`'s restore of `data` in slices: its own (SlicedRestores), or one step that restores it
 * whole. From a source (bytes read where they lie), through it if `sm` can, else from its bytes
 * read whole.
 */
export function restoreSlices<R>(sm: StateMachine<R>, data: Uint8Array | SnapshotBytesSource): RestoreInProgress {
  if (!(data instanceof Uint8Array)) {
    if (canRestoreThrough(sm)) return sm.beginRestoreThrough(data);
    data = readWholeSource(data);
  }
  const bytes = data;
  return hasSlicedRestores(sm) ? sm.beginRestore(bytes) : { step: () => (sm.restore(bytes), true), abandon: () => undefined };
}

/** `task`, with `then` run right after the last step has replaced the state (a wrapper adopting its own part with it). */
export function thenRestored(task: RestoreInProgress, then: () => void): RestoreInProgress {
  return {
    step: () => {
      if (!task.step()) return false;
      then();
      return true;
    },
    abandon: () => task.abandon(),
  };
}

/** The host's handle on a load beside the core (Runtime.beginRestore): step() once per turn until it returns true. */
export interface RestoreSteps {
  step(): boolean;
}

/**
 * Parts of a backlog (each `maxCommittedBytesPerReady`) early apply takes while one Ready is in
 * flight (applyCommittedEarly): enough that a replay goes on beside a sync, few enough that the
 * sync's completion waits for at most ~4 parts (~30 ms alone, ~150 ms on a shared core).
 */
const EARLY_PARTS_PER_READY = 4;

const NOTHING_TO_RESTORE: RestoreSteps = { step: () => true };

/**
 * Bytes of snapshot a state machine writes per slice: ~1 ms of work on a quiet machine, so a
 * snapshot of hundreds of MB never holds the loop for long; between slices, Readies go on.
 */
export const SNAPSHOT_SLICE_BYTES = 1 << 20;

/** Time, for retries: real timers in RaftNode, the event queue in the simulator. */
export interface ClockPort {
  /** Milliseconds on the host's clock (any origin). */
  now(): number;
  /** Calls `fire` once after `ms`; returns a function that cancels it. */
  setTimer(ms: number, fire: () => void): () => void;
}

/**
 * Optional callbacks through which a host sees each step: RaftNode settles its waiting callers
 * and emits events from them, the simulator hangs its invariants on them. Each is called at the
 * moment the step happens, before the runtime goes on.
 */
export interface RuntimeHooks<R> {
  /**
   * A peer's AppendEntries or InstallSnapshot of a current term disagreed with entries this
   * server knows committed, and the core dropped it (`contradicts-committed`). Its sender leads
   * without every committed entry (§5.4.3 Leader Completeness): between correct servers this
   * never happens, so a host raises it as an alarm (RaftNode logs a warning; the simulator
   * fails the run).
   */
  contradicted?(m: Message): void;
  /** A Ready was taken from the core; nothing of it has been carried out yet. */
  readyTaken?(rd: Ready): void;
  /**
   * pump() stopped after a Ready that applied a whole part of a long backlog of committed
   * entries (a restart's replay, a follower far behind: `maxCommittedBytesPerReady` of them),
   * with more to come, so that the host's timers and messages run between parts: ticks advance
   * and the election runs beside the replay. The host MUST call pump() again soon (RaftNode:
   * setImmediate). Without this hook pump() applies the whole backlog before it returns.
   */
  yielded?(): void;
  /** A Ready's entries are handed to storage (queued, not yet durable). */
  persisting?(entries: readonly Entry[]): void;
  /**
   * The Ready commits entries (`rd.committedEntries`) that another member waits for (it took the
   * write and forwarded it here): the new commit index leaves at once, before this member applies
   * them, instead of with the turn's batch after its own answers.
   */
  isCommitAwaited?(rd: Ready): boolean;
  /**
   * Leader, after each advance(): which members wait for an entry this member now holds durably
   * but has not committed (`stableIndex` ≥ the entry > `commitIndex`)? The core announces its
   * durable index to them at once (Raft.announceStable), so each can count the leader's copy
   * with its own and commit without the commit index's round trip. Null or empty: none.
   */
  stableAwaitedBy?(stableIndex: number, commitIndex: number): readonly NodeId[] | null;
  /**
   * A sync completed: the Ready's `entries`, and `hardState` (the newest queued since the last
   * sync, or null if none was), are durable now.
   */
  synced?(entries: readonly Entry[], hardState: HardState | null): void;
  /** A leader's snapshot is durably installed: the stored log restarts after it (§7). */
  installed?(snapshot: Snapshot): void;
  /** `m` leaves now; `isBeforeSync`: its Ready's writes are not durable yet (Ready steps 1–3). */
  sent?(m: Message, isBeforeSync: boolean): void;
  /** The state machine applied `entry`, with `result`. */
  applied?(entry: Entry, result: R): void;
  /**
   * The state machine was replaced by a snapshot: a leader's, or (after `restoring`) the
   * node's own, loaded by beginRestore() (from its bytes, or through its file: a SnapshotSource).
   */
  restored?(snapshot: Snapshot | SnapshotSource): void;
  /** A local snapshot was saved, and the log compacted up to `compactedTo`. */
  snapshotTaken?(snapshot: TakenSnapshot, compactedTo: number): void;
  /** The core confirmed these reads (thesis §6.4); each is served once applied reaches its index. */
  readsConfirmed?(readStates: readonly ReadState[]): void;
  /** Read `requestId` may be served now: the state machine has applied its `index`. */
  readReady?(requestId: number, index: number): void;
  /** The role or the known leader changed. */
  softState?(state: SoftState): void;
  /** A Ready is done: durable, its messages sent, advance() called. */
  advanced?(): void;
  /** This server learned it is out of the cluster; reported once. */
  removed?(notice: RemovedNotice): void;
  /** The runtime stopped itself: a storage failure other than a full disk, or fail(). */
  fatal?(err: Error): void;
  /** The NO_SPACE alarm rose (true) or cleared (false). */
  spaceAlarm?(isRaised: boolean): void;
}

/** Counters a host may read (RaftNode's stats include them; the simulator sums them). */
export interface RuntimeStats {
  appliedEntries: number;
  snapshotsTaken: number;
  /** Of snapshotsTaken, those an idle member took (snapshotIdleTicks). */
  idleSnapshots: number;
  snapshotsInstalled: number;
  /** Messages that left before their Ready's sync had completed (Ready steps 1–3). */
  sentBeforeSync: number;
  /** Readies whose new commit index was flushed before applying, since another member waited for it (hook isCommitAwaited). */
  commitsSentAtOnce: number;
  /** Leader: durable indexes announced at once, since another member waited (hook stableAwaitedBy). */
  stableAnnounced: number;
  /** Times pump() stopped between parts of a long backlog of committed entries (hook yielded). */
  yieldsInBacklog: number;
  /** Committed entries applied while their own Ready's sync was still in flight (step 5). */
  appliedBeforeSync: number;
  /** Committed entries applied straight from the core's log, before any Ready handed them out. */
  appliedEarly: number;
  /** Readies taken while a local snapshot was being saved or the log compacted behind it. */
  readiesBesideSnapshot: number;
  /** Leader's snapshots whose install waited for a local snapshot in flight. */
  installsWaited: number;
  /** Entries applied while a snapshot was being serialized in slices (the state machine kept the snapshot's state aside). */
  appliedWhileSerializing: number;
  /** Snapshots read back from storage to send to a follower (StoragePort.readSnapshot). */
  snapshotsReadBack: number;
  /** State machines loaded beside the running core (RuntimeOptions.restoring, beginRestore()). */
  restoredBeside: number;
  /** Of those, the ones restored through the snapshot where storage keeps it (a SnapshotSource), not from its bytes. */
  restoredInPlace: number;
  /** Loads beside the core that a leader's snapshot made unnecessary (it arrived first). */
  restoresSuperseded: number;
}

export function emptyRuntimeStats(): RuntimeStats {
  return { appliedEntries: 0, snapshotsTaken: 0, idleSnapshots: 0, snapshotsInstalled: 0, sentBeforeSync: 0, commitsSentAtOnce: 0, stableAnnounced: 0, yieldsInBacklog: 0, appliedBeforeSync: 0, appliedEarly: 0, readiesBesideSnapshot: 0, installsWaited: 0, appliedWhileSerializing: 0, snapshotsReadBack: 0, restoredBeside: 0, restoredInPlace: 0, restoresSuperseded: 0 };
}

export interface RuntimeOptions<R> {
  readonly core: Raft;
  readonly storage: StoragePort;
  readonly transport: MessagePort;
  readonly stateMachine: StateMachine<R>;
  readonly clock: ClockPort;
  /** The index the state machine has applied (its snapshot's, after a restart). */
  readonly applied: number;
  /**
   * The newest durable snapshot, if any: InstallSnapshot messages carry it. A source (its bytes
   * left in storage) needs a storage that reads them back (StoragePort.readSnapshot).
   */
  readonly latestSnapshot: Snapshot | SnapshotSource | null;
  /**
   * The state machine is not at `applied` yet: the host loads it from `latestSnapshot` beside
   * the running core and runs beginRestore() when it may (a restart: the core answers votes and
   * appends while the state is decoded). Until then nothing is applied, no read is released and
   * no snapshot is taken; a leader's snapshot installed meanwhile restores the state machine
   * itself, and makes the load a no-op.
   */
  readonly restoring?: boolean;
  /** @default 100000 — applied entries between automatic snapshots (fewer once the log holds snapshotLogBytes) */
  readonly snapshotEntries?: number;
  /**
   * @default 64 MiB — a snapshot is also due once the entries applied since the last one hold
   * this many bytes, however few they are, so large values do not keep snapshotEntries of them
   * in memory. See DEFAULT_RUNTIME_OPTIONS.
   */
  readonly snapshotLogBytes?: number;
  /** @default 5000 — entries kept behind a snapshot so slightly slow followers need no snapshot */
  readonly snapshotCatchUpEntries?: number;
  /**
   * @default 10 — and a snapshot waits until the entries applied since the last one hold at
   * least this percentage of its size in bytes; 0: entries alone decide. See DEFAULT_RUNTIME_OPTIONS.
   */
  readonly snapshotLogPercent?: number;
  /**
   * @default 0 (off) — a snapshot is also due once no entry has been applied for this many ticks
   * and the log since the last one holds a quarter of what snapshotEntries and snapshotLogPercent
   * ask: a member that goes idle after a burst compacts its log then, so a restart does not
   * replay the burst (up to ~100,000 entries, ~0.6–1.5 s at 1M keys), and the entries leave
   * memory. The quarter bounds how often: at most four times the count's own rate.
   */
  readonly snapshotIdleTicks?: number;
  /**
   * @default false — members apart: after a snapshot the count and byte rules did not ask for (the
   * first after a start, an idle or asked one, a leader's installed), the next one by those rules
   * waits for 1 + slot/n times what they ask, where slot is this member's place among the n
   * members of its configuration in id order. Members apply the same entries, so without it every
   * member snapshots at the same index: at 1M keys each rewrites ~320 MB at once, and for the
   * seconds it takes the whole cluster writes at half speed. Apart, at most one member in a
   * quorum of the rest is snapshotting at a time; each keeps its own rhythm after that.
   */
  readonly snapshotStagger?: boolean;
  readonly hooks?: RuntimeHooks<R>;
  readonly logger?: NodeLogger;
  /** Counters to update (a host may pass its own object); a fresh one by default. */
  readonly stats?: RuntimeStats;
}

export const DEFAULT_RUNTIME_OPTIONS = {
  /**
   * etcd's default (`--snapshot-count`). A snapshot rewrites the whole state, including the
   * history and the idempotency table, which a small store's snapshot is mostly made of: at
   * 10,000 keys (a ~40 MB state) a snapshot every 10,000 entries was a quarter of every
   * member's CPU at 256 clients. The log this keeps is bounded by snapshotLogBytes.
   */
  snapshotEntries: 100_000,
  /** The log's bound in bytes for large entries: 100,000 entries of 64 KiB would be 6.4 GB. */
  snapshotLogBytes: 64 * 1024 * 1024,
  snapshotCatchUpEntries: 5_000,
  /**
   * Snapshot work proportional to what is written: a snapshot rewrites the whole state, so one
   * every N entries costs O(state) per N writes, and a large store (1M keys: ~290 MB) would be
   * snapshotting all the time. Waiting for the log since the last one to reach a tenth of its
   * size bounds the snapshot bytes written to 10× the log's, and the log kept (memory, and what
   * a restart replays) to a tenth of the state: at 1M keys ~100,000 writes, what etcd keeps
   * (a fixed 100,000 entries). It was a quarter while a snapshot decoded and re-encoded every
   * record; now unchanged records are copied as bytes (src/kv/base-table.ts).
   */
  snapshotLogPercent: 10,
  snapshotIdleTicks: 0,
} as const;

type SnapshotDone = (err: Error | null, index: number) => void;

/** The local snapshot in flight: serialized (in slices, if the state machine can), then saved, then the log compacted behind it. */
interface LocalSnapshot {
  readonly meta: SnapshotMeta;
  /** Still being serialized in slices; null once the bytes are there. */
  inProgress: SnapshotInProgress | null;
  cancelSlice: (() => void) | null;
  /** Where the state machine writes it, while it does (StoragePort.snapshotWriter); the save's once saved. */
  writer: SnapshotWriter | null;
  /** Once serialized: being saved, then compacted behind. */
  snapshot: TakenSnapshot | null;
  /** Why it was taken: asked for (takeSnapshot, a retry), the log's size, or an idle member's. */
  readonly trigger: 'asked' | 'log' | 'idle';
  readonly startedAt: number;
  /** Time on the loop spent serializing, and the longest slice of it. */
  serializeMs: number;
  longestSliceMs: number;
}

const NO_HOOKS: RuntimeHooks<never> = {};

export class Runtime<R = unknown> {
  readonly core: Raft;
  readonly stats: RuntimeStats;
  private readonly storage: StoragePort;
  private readonly transport: MessagePort;
  private readonly sm: StateMachine<R>;
  private readonly clock: ClockPort;
  private readonly hooks: RuntimeHooks<R>;
  private readonly logger: NodeLogger;
  private readonly snapshotEntries: number;
  private readonly catchUpEntries: number;
  private readonly snapshotLogPercent: number;
  private readonly snapshotLogBytes: number;
  private readonly snapshotIdleTicks: number;
  private readonly snapshotStagger: boolean;
  /** The next snapshot by the count and byte rules waits its stretch (snapshotStagger): none since a start, or the last was not theirs. */
  private isStaggerDue = true;
  /** The stretch (staggerStretch) for this configuration, worked out when it changes. */
  private staggerConfig: Configuration | null = null;
  private staggerFactor = 1;
  /** Ticks since an entry was last applied (or the state machine restored). */
  private idleTicks = 0;
  /** Bytes of entry data applied since start, and that count when the latest snapshot was taken or installed. */
  private appliedBytes = 0;
  private appliedBytesAtSnapshot = 0;
  private readonly alarm: SpaceAlarm;

  /**
   * What the state machine has really applied. The core's lastApplied can run behind it (early
   * apply) or ahead of it (a snapshot stepped in while a sync is in flight, not yet restored).
   */
  private applied: number;
  /** When loadInBackground() last ran a slice (or the runtime began). */
  private backgroundSliceAt: number;
  /** Before this (the clock's), a background load waits unless a snapshot does (BACKGROUND_LOAD_DELAY_MS after a restore). */
  private backgroundLoadFrom: number;
  /** A snapshot is due or asked for, and waits for the state machine's background load. */
  private isSnapshotWaitingForLoad = false;
  /**
   * The newest durable snapshot: its meta and size, and its bytes only when the storage cannot
   * read them back (StoragePort.readSnapshot).
   */
  private latest: { readonly meta: SnapshotMeta; readonly bytes: number; readonly data: Uint8Array | null } | null = null;
  /** The Ready being carried out; no other is taken until it is done. */
  private current: Ready | null = null;
  /** The current Ready's writes are durable (or it had nothing to sync). */
  private isSynced = false;
  /** The current Ready is applied; only its sync is awaited (early apply runs meanwhile). */
  private isAwaitingSync = false;
  /** Bytes of committed entries applied early while the current Ready is in flight (applyCommittedEarly). */
  private earlyBytes = 0;
  /** The newest hard state queued since the last sync began, and the one that sync carries. */
  private unsyncedHardState: HardState | null = null;
  private syncingHardState: HardState | null = null;
  /**
   * The local snapshot in flight: being serialized, saved, then the log compacted behind it (§7).
   * Readies go on meanwhile (see "Snapshots and compaction" in docs/runtime.md for what may
   * overlap).
   */
  private local: LocalSnapshot | null = null;
  /** takeSnapshot() requests the snapshot in flight answers; later ones wait for the next. */
  private savingRequests: SnapshotDone[] = [];
  /** takeSnapshot() requests not started yet. */
  private readonly snapshotRequests: SnapshotDone[] = [];
  /**
   * The current Ready holds a leader's snapshot to install, and it waits: a local snapshot is in
   * flight, and the storage stores one snapshot at a time (storage/types.ts).
   */
  private isInstallWaiting = false;
  private isSnapshotRetryDue = false;
  private snapshotRetryMs = 0;
  private cancelSnapshotRetry: (() => void) | null = null;
  private writeRetryMs = 0;
  private cancelWriteRetry: (() => void) | null = null;
  private spaceWaitStartedAt = 0;
  /** The state machine is still to be loaded from the snapshot at `applied` (RuntimeOptions.restoring). */
  private isRestoring = false;
  /** The load in slices under way (beginRestore), if any. */
  private restoreTask: RestoreInProgress | null = null;
  /** Confirmed reads waiting for the state machine to reach their index. */
  private waitingReads: ReadState[] = [];
  private isRemovalReported = false;
  private isStopped = false;
  private failure: Error | null = null;
  private readonly idleWaiters: (() => void)[] = [];
  private isDriving = false;
  private isDriveAgain = false;
  /** Inside carryOut(): a port that completes at once must not start the next Ready from there. */
  private isInCarryOut = false;
  /** The last advance() announced the leader's durable index (stableAwaitedBy): the next Ready's messages leave at once. */
  private isStableAnnounced = false;

  constructor(options: RuntimeOptions<R>) {
    this.core = options.core;
    this.storage = options.storage;
    this.transport = options.transport;
    this.sm = options.stateMachine;
    this.clock = options.clock;
    this.backgroundSliceAt = this.clock.now();
    this.backgroundLoadFrom = this.backgroundSliceAt + BACKGROUND_LOAD_DELAY_MS;
    this.hooks = (options.hooks ?? NO_HOOKS) as RuntimeHooks<R>;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.stats = options.stats ?? emptyRuntimeStats();
    this.snapshotEntries = options.snapshotEntries ?? DEFAULT_RUNTIME_OPTIONS.snapshotEntries;
    this.snapshotLogPercent = options.snapshotLogPercent ?? DEFAULT_RUNTIME_OPTIONS.snapshotLogPercent;
    this.snapshotLogBytes = options.snapshotLogBytes ?? DEFAULT_RUNTIME_OPTIONS.snapshotLogBytes;
    this.catchUpEntries = options.snapshotCatchUpEntries ?? DEFAULT_RUNTIME_OPTIONS.snapshotCatchUpEntries;
    this.snapshotIdleTicks = options.snapshotIdleTicks ?? DEFAULT_RUNTIME_OPTIONS.snapshotIdleTicks;
    this.snapshotStagger = options.snapshotStagger ?? false;
    if (!Number.isSafeInteger(this.snapshotIdleTicks) || this.snapshotIdleTicks < 0) throw new Error(`snapshotIdleTicks must be a whole number ≥ 0, got ${this.snapshotIdleTicks}`);
    this.applied = options.applied;
    this.setLatest(options.latestSnapshot);
    if (options.restoring === true) {
      if (options.latestSnapshot === null || options.latestSnapshot.meta.index !== options.applied) {
        throw new Error('runtime contract: restoring needs the snapshot at the applied index');
      }
      this.isRestoring = true;
      this.core.holdApply();
    }
    this.alarm = new SpaceAlarm((isRaised) => this.hooks.spaceAlarm?.(isRaised));
  }

  // ---- what a host reads ---------------------------------------------------------------------

  /** The index the state machine has applied up to. */
  get appliedIndex(): number {
    return this.applied;
  }

  /** The newest durable snapshot's meta (its bytes are in storage, or kept here if it cannot read them back). */
  get latestSnapshotMeta(): SnapshotMeta | null {
    return this.latest?.meta ?? null;
  }

  private setLatest(snapshot: Snapshot | TakenSnapshot | SnapshotSource | null): void {
    if (snapshot === null) {
      this.latest = null;
      return;
    }
    const data = 'data' in snapshot ? snapshot.data : null;
    if (data === null && this.storage.readSnapshot === undefined) throw new Error('runtime contract: a snapshot without its bytes needs a storage that reads them back (readSnapshot)');
    this.latest = { meta: snapshot.meta, bytes: 'bytes' in snapshot ? snapshot.bytes : snapshot.data.length, data: this.storage.readSnapshot === undefined ? data : null };
  }

  /** The state machine is still to be loaded (RuntimeOptions.restoring): nothing is applied until it is loaded (beginRestore). */
  get isStateRestoring(): boolean {
    return this.isRestoring;
  }

  /** The NO_SPACE alarm: a write waits for space, a snapshot did not fit, or the storage warned. */
  get isOutOfSpace(): boolean {
    return this.alarm.isRaised;
  }

  /**
   * The local snapshot in flight, for diagnostics: whether it is still being serialized or
   * being saved (and the log compacted behind it), and how long ago it began; null when none is.
   */
  get snapshotInFlight(): { readonly phase: 'serializing' | 'saving'; readonly sinceMs: number } | null {
    const local = this.local;
    if (local === null) return null;
    return { phase: local.inProgress !== null ? 'serializing' : 'saving', sinceMs: Math.round(this.clock.now() - local.startedAt) };
  }

  /** No Ready or snapshot in flight. */
  get isIdle(): boolean {
    return this.current === null && this.local === null;
  }

  /**
   * A Ready is being carried out: the runtime takes the next one by itself when it is done. A
   * local snapshot in flight does not count: Readies go on beside it, so a host pumps as usual.
   */
  get isReadyInFlight(): boolean {
    return this.current !== null;
  }

  /** Set when the runtime stopped itself (fail-stop); every later operation should throw it. */
  get failed(): Error | null {
    return this.failure;
  }

  // ---- inputs --------------------------------------------------------------------------------

  /** A message from a peer. The host calls pump() when it sees fit (at once, or batched). */
  receive(m: Message): void {
    const alarms = this.core.droppedMessages['contradicts-committed'];
    this.core.step(m);
    if (this.core.droppedMessages['contradicts-committed'] !== alarms) this.hooks.contradicted?.(m);
    if (this.isAwaitingSync) this.applyCommittedEarly();
    this.checkRemoved();
  }

  tick(): void {
    this.core.tick();
    this.idleTicks++;
  }

  /** The storage's own early warning that the disk is full (RaftStorage.watchSpace). */
  setStorageFull(isFull: boolean): void {
    this.alarm.set('storage', isFull);
  }

  /**
   * Loads the state machine from `snapshot`, the one at the applied index this runtime was
   * started with (RuntimeOptions.restoring), spread over turns of the host's loop: the host calls
   * step() once per turn (a slice of the decode, if the state machine restores in slices) until
   * it returns true, which it also does at once if nothing is left to load (a leader's snapshot
   * replaced the load, or the runtime stopped). The state machine is replaced by the last step,
   * all at once; committed entries are applied after it (the host pumps).
   */
  beginRestore(snapshot: Snapshot | SnapshotSource): RestoreSteps {
    if (!this.isRestoring || this.isStopped) return NOTHING_TO_RESTORE;
    if (snapshot.meta.index !== this.applied) {
      throw new Error(`runtime contract: restoring from the snapshot at ${snapshot.meta.index}, but the state machine is to start at ${this.applied}`);
    }
    if (this.restoreTask !== null) throw new Error('runtime contract: beginRestore() while a restore is under way');
    const task = restoreSlices(this.sm, 'data' in snapshot ? snapshot.data : snapshot);
    this.restoreTask = task;
    return {
      step: () => {
        // Replaced by a leader's snapshot, or stopped: nothing left to load.
        if (this.restoreTask !== task) return true;
        if (!task.step()) return false;
        this.restoreTask = null;
        this.endRestoring();
        this.stats.restoredBeside++;
        if (!('data' in snapshot)) this.stats.restoredInPlace++;
        // inPlace: restored through the snapshot where it lies (its file), not from its bytes in memory.
        this.logger.info('state machine loaded', { index: snapshot.meta.index, term: snapshot.meta.term, inPlace: !('data' in snapshot) });
        this.hooks.restored?.(snapshot);
        this.releaseReads();
        return true;
      },
    };
  }

  /**
   * After a restore: a slice of what the state machine loads in the background (BackgroundLoads),
   * when it is time. Returns null once nothing is left (at once if the state machine has nothing
   * to load, or the runtime stopped), else the milliseconds until the host should call again (0:
   * its next turn). The load begins BACKGROUND_LOAD_DELAY_MS after the restore, or as soon as a
   * snapshot is due (the snapshot waits for it: its first slice would otherwise load it all at
   * once); then it takes a turn with no committed entry left to apply, or one in
   * BACKGROUND_LOAD_MAX_WAIT_MS at least, so the replay goes first and the load always ends.
   */
  loadInBackground(): number | null {
    if (this.isStopped || !isLoadingInBackground(this.sm)) return this.backgroundLoadEnded();
    const now = this.clock.now();
    // Asked again every BACKGROUND_LOAD_MAX_WAIT_MS meanwhile, so a snapshot that comes due is not kept waiting.
    if (!this.isSnapshotWaitingForLoad && now < this.backgroundLoadFrom) return Math.min(this.backgroundLoadFrom - now, BACKGROUND_LOAD_MAX_WAIT_MS);
    if (this.core.commitIndex > this.applied && now - this.backgroundSliceAt < BACKGROUND_LOAD_MAX_WAIT_MS) return BACKGROUND_LOAD_POLL_MS;
    this.backgroundSliceAt = now;
    const done = this.backgroundSlice();
    return done === false ? 0 : done === true ? this.backgroundLoadEnded() : null;
  }

  /** A slice of the state machine's background load: true once it is all loaded, null if it failed (the runtime fails with it). */
  private backgroundSlice(): boolean | null {
    try {
      return loadInBackground(this.sm);
    } catch (err) {
      // What the restore left is the state machine's own state: a node that cannot load it
      // cannot trust what it serves.
      this.fail(err);
      return null;
    }
  }

  private backgroundLoadEnded(): null {
    if (this.isSnapshotWaitingForLoad) {
      this.isSnapshotWaitingForLoad = false;
      this.pump();
    }
    return null;
  }

  private endRestoring(): void {
    if (!this.isRestoring) return;
    this.backgroundLoadFrom = this.clock.now() + BACKGROUND_LOAD_DELAY_MS;
    this.isRestoring = false;
    this.core.releaseApply();
    this.abandonRestore();
  }

  /** Drops the load in slices under way, if any: its state machine was never touched. */
  private abandonRestore(): void {
    const task = this.restoreTask;
    if (task === null) return;
    this.restoreTask = null;
    task.abandon();
  }

  /** Serves read `requestId` (hook readReady) once the state machine has applied `index`. */
  awaitApplied(requestId: number, index: number): void {
    if (index <= this.applied && !this.isRestoring) {
      this.hooks.readReady?.(requestId, index);
      return;
    }
    this.waitingReads.push({ requestId, index });
  }

  /**
   * Takes a snapshot at the applied index as soon as no Ready and no other snapshot is in flight;
   * `done` gets its index once it is durable and the log compacted behind it.
   */
  takeSnapshot(done: SnapshotDone): void {
    if (this.failure !== null || this.isStopped) {
      done(this.failure ?? new Error('the runtime is stopped'), this.latest?.meta.index ?? 0);
      return;
    }
    this.snapshotRequests.push(done);
    this.pump();
  }

  /**
   * No more Readies. A Ready waiting for space is abandoned at once (as a crash would leave it);
   * `done` is called once nothing is in flight any more.
   */
  stop(done?: () => void): void {
    this.isStopped = true;
    this.cancelSnapshotRetry?.();
    this.cancelSnapshotRetry = null;
    if (this.cancelWriteRetry !== null) {
      this.cancelWriteRetry();
      this.cancelWriteRetry = null;
      this.current = null;
      this.isAwaitingSync = false;
    }
    if (this.isInstallWaiting) {
      // Nothing of it was written yet: abandoned, as a crash would leave it.
      this.isInstallWaiting = false;
      this.current = null;
    }
    const stopped = new Error('the runtime is stopped');
    // A snapshot still being serialized has written nothing: given up at once. One being saved
    // settles its own.
    if (this.local?.inProgress != null) {
      this.abandonLocal();
      for (const ask of this.savingRequests.splice(0)) ask(stopped, this.latest?.meta.index ?? 0);
    }
    // Snapshots asked for and not started never will be.
    for (const ask of this.snapshotRequests.splice(0)) ask(stopped, this.latest?.meta.index ?? 0);
    // A load beside the core has changed nothing yet: given up.
    this.abandonRestore();
    if (done !== undefined) this.idleWaiters.push(done);
    this.settleIfIdle();
  }

  /** Fail-stop: a node that cannot trust its disk, or its own state, must not keep acting. */
  fail(err: unknown): void {
    if (this.failure !== null) return;
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.isStopped = true;
    this.cancelSnapshotRetry?.();
    this.cancelWriteRetry?.();
    this.cancelSnapshotRetry = null;
    this.cancelWriteRetry = null;
    this.current = null;
    this.isAwaitingSync = false;
    this.isInstallWaiting = false;
    // Completions still to come find nothing of theirs in flight, and do nothing.
    this.abandonLocal();
    this.abandonRestore();
    this.logger.error('storage failure; the node stops', { error: this.failure.message });
    this.hooks.fatal?.(this.failure);
    for (const done of this.savingRequests.splice(0)) done(this.failure, this.latest?.meta.index ?? 0);
    for (const done of this.snapshotRequests.splice(0)) done(this.failure, this.latest?.meta.index ?? 0);
    this.settleIfIdle();
  }

  // ---- the loop --------------------------------------------------------------------------------

  /**
   * Takes Readies while none is in flight, and starts a snapshot when one is due and none is in
   * flight; the snapshot's save and compaction then run beside the Readies that follow. A port
   * that completes at once calls back into the runtime from inside this loop; that call only
   * marks the loop to go round again, so completions never nest.
   */
  pump(): void {
    if (this.isDriving) {
      this.isDriveAgain = true;
      return;
    }
    this.isDriving = true;
    let isYielding = false;
    try {
      do {
        this.isDriveAgain = false;
        while (this.current === null && !this.isStopped) {
          // A snapshot first: under steady load there is always another Ready. It starts only
          // between Readies, so everything it covers is durable here already (see canSnapshot).
          if (this.local === null) this.startSnapshotIfDue();
          if (this.isStopped || !this.core.hasReady()) break;
          const rd = this.core.ready();
          this.carryOut(rd);
          if (this.hooks.yielded !== undefined && this.current === null && rd.committedEntries.length > 0 && this.isBacklogLeft()) {
            isYielding = true;
            break;
          }
        }
      } while (this.isDriveAgain && !isYielding);
    } finally {
      this.isDriving = false;
    }
    if (isYielding) {
      this.stats.yieldsInBacklog++;
      this.hooks.yielded?.();
    }
  }

  /**
   * The core holds committed entries no Ready has handed out yet: the last one stopped at its
   * byte bound (`maxCommittedBytesPerReady`), so a backlog is being applied part by part.
   */
  private isBacklogLeft(): boolean {
    const core = this.core;
    return core.lastApplied < Math.min(core.commitIndex, core.lastIndex);
  }

  /**
   * Carries out one Ready the host took itself (a test that inspects it first); pump() does this
   * for every Ready it takes. Only while no other Ready is in flight (a snapshot may be).
   */
  carryOut(rd: Ready): void {
    if (this.current !== null) throw new Error('carryOut() while a Ready is in flight');
    this.current = rd;
    this.earlyBytes = 0;
    if (this.local !== null) this.stats.readiesBesideSnapshot++;
    this.isSynced = false;
    this.isAwaitingSync = false;
    this.isInCarryOut = true;
    try {
      this.carryOutSteps(rd);
    } finally {
      this.isInCarryOut = false;
    }
  }

  private carryOutSteps(rd: Ready): void {
    this.hooks.readyTaken?.(rd);
    // Steps 1–3: what the core let leave before the sync leaves now. Racing a sync, it is
    // flushed at once: a follower's sync, not ours, is usually the slower half of a commit
    // (thesis §10.2.1). Otherwise it joins the sender's batch for this turn.
    const early = rd.messages;
    if (early.length > 0) {
      for (let i = 0; i < early.length; i++) this.send(early[i]!, rd.mustSync);
      if (rd.mustSync) {
        this.stats.sentBeforeSync += early.length;
        this.transport.flush?.();
      } else if (rd.committedEntries.length > 0 && this.hooks.isCommitAwaited?.(rd) === true) {
        this.stats.commitsSentAtOnce++;
        this.transport.flush?.();
      } else if (this.isStableAnnounced) {
        this.transport.flush?.();
      }
    }
    this.isStableAnnounced = false;
    if (rd.snapshot === null) this.persist(rd);
    // The storage stores one snapshot at a time (storage/types.ts): a leader's waits for the
    // local one in flight to be saved and compacted behind, then goes on (snapshotEnded()).
    else if (this.local !== null) {
      this.isInstallWaiting = true;
      this.stats.installsWaited++;
    }
    else this.installSnapshot(rd.snapshot);
  }

  private installSnapshot(snapshot: Snapshot): void {
    this.storage.installSnapshot(snapshot, this.onInstalled);
  }

  private readonly onInstalled = (err: Error | null): void => {
    const rd = this.current;
    if (rd === null) return;
    if (this.isStopped) {
      this.abandon();
      return;
    }
    if (err !== null) {
      this.writeFailed(err, () => this.installSnapshot(rd.snapshot!));
      return;
    }
    this.writeSucceeded();
    this.setLatest(rd.snapshot);
    this.hooks.installed?.(rd.snapshot!);
    this.persist(rd);
    this.continue();
  };

  /** Step 4, then 5–6 while the sync is in flight, then (once it is durable) the rest. */
  private persist(rd: Ready): void {
    if (rd.entries.length > 0) {
      this.hooks.persisting?.(rd.entries);
      this.storage.append(rd.entries);
    }
    if (rd.hardState !== null) {
      this.storage.setHardState(rd.hardState);
      this.unsyncedHardState = rd.hardState;
    }
    if (rd.mustSync) {
      this.syncingHardState = this.unsyncedHardState;
      this.unsyncedHardState = null;
      this.startSync();
      if (this.current !== rd) return; // the sync failed for good: fail-stop
    } else {
      // A commitIndex-only hard state stays queued: it rides along with the next sync.
      this.isSynced = true;
    }
    this.apply(rd);
    if (this.isSynced) this.finish(rd);
    else this.isAwaitingSync = true;
  }

  private startSync(): void {
    this.storage.sync(this.onSynced);
  }

  private readonly onSynced = (err: Error | null): void => {
    const rd = this.current;
    if (rd === null) return;
    if (this.isStopped) {
      this.abandon();
      return;
    }
    if (err !== null) {
      this.writeFailed(err, () => this.startSync());
      return;
    }
    this.writeSucceeded();
    this.isSynced = true;
    this.hooks.synced?.(rd.entries, this.syncingHardState);
    this.syncingHardState = null;
    if (!this.isAwaitingSync) return; // completed at once, inside persist(): it finishes the Ready
    this.isAwaitingSync = false;
    this.finish(rd);
    this.continue();
  };

  /** After a completion: take the next Ready, unless carryOut() is still on the stack. */
  private continue(): void {
    if (!this.isInCarryOut) this.pump();
  }

  /** Stopped while a write was in flight: the Ready stays unfinished, as a crash would leave it. */
  private abandon(): void {
    this.current = null;
    this.isAwaitingSync = false;
    this.settleIfIdle();
  }

  /** Steps 5–6: restore, apply, and release reads. Committed entries need not wait for the sync. */
  private apply(rd: Ready): void {
    const snapshot = rd.snapshot;
    if (snapshot !== null) {
      this.sm.restore(snapshot.data);
      // A leader's snapshot replaces a state machine still to be loaded: nothing is left to load.
      if (this.isRestoring) this.stats.restoresSuperseded++;
      this.endRestoring();
      this.applied = snapshot.meta.index;
      this.idleTicks = 0;
      this.appliedBytesAtSnapshot = this.appliedBytes;
      this.isStaggerDue = true;
      this.stats.snapshotsInstalled++;
      this.logger.info('installed snapshot', { index: snapshot.meta.index, term: snapshot.meta.term });
      this.hooks.restored?.(snapshot);
    }
    const committed = rd.committedEntries;
    const before = this.applied;
    for (let i = 0; i < committed.length; i++) {
      const e = committed[i]!;
      // Early apply may have applied it while the previous Ready's sync was in flight.
      if (e.index > this.applied) this.applyEntry(e);
    }
    if (!this.isSynced) this.stats.appliedBeforeSync += this.applied - before;
    if (rd.readStates.length > 0) {
      this.hooks.readsConfirmed?.(rd.readStates);
      for (const rs of rd.readStates) this.waitingReads.push(rs);
    }
    this.releaseReads();
    if (rd.softState !== null) this.hooks.softState?.(rd.softState);
    this.checkRemoved();
  }

  /** Step 7 and 8: what waited for the sync leaves, then advance(). */
  private finish(rd: Ready): void {
    const after = rd.messagesAfterSync;
    if (after.length > 0) {
      for (let i = 0; i < after.length; i++) this.send(after[i]!, false);
      // An acknowledgement is the slow half of a commit: out at once.
      if (rd.mustSync) this.transport.flush?.();
    }
    this.current = null;
    this.core.advance();
    const core = this.core;
    const awaiting = core.role === 'leader' ? this.hooks.stableAwaitedBy?.(core.stableIndex, core.commitIndex) : null;
    if (awaiting !== undefined && awaiting !== null && awaiting.length > 0) {
      if (core.announceStable(awaiting)) {
        this.stats.stableAnnounced++;
        this.isStableAnnounced = true;
      }
    }
    this.hooks.advanced?.();
    this.settleIfIdle();
  }

  /**
   * Thesis §10.2.1: an entry is committed once a majority has it durably, with or without the
   * leader. The core counts that (its own copy only once stable), but hands out no Ready before
   * advance(), so a commit that followers' acknowledgements made while our own sync is in flight
   * would wait for that sync. Apply it now instead, straight from the core's log: every entry up
   * to commitIndex is committed (Log Matching, §5.3). The next Ready repeats these entries in
   * committedEntries, and apply() skips them.
   *
   * Each call takes at most a Ready's part (`maxCommittedBytesPerReady`), and all calls while
   * one Ready is in flight EARLY_PARTS_PER_READY parts: one turn of the loop can bring a burst
   * of messages (a leader's acknowledgements and heartbeat answers), and with a long backlog (a
   * restart's replay) a part per message held a replaying leader's loop for 0.5–0.75 s, its
   * sync's completion waiting behind them, and with it its next Ready and every write forwarded
   * to it (docs/benchmarks.md, twenty-sixth session).
   */
  private applyCommittedEarly(): void {
    if (this.isRestoring) return;
    const to = Math.min(this.core.commitIndex, this.core.lastIndex);
    if (to <= this.applied) return;
    const part = this.core.opts.maxCommittedBytesPerReady;
    const budget = Math.min(part, EARLY_PARTS_PER_READY * part - this.earlyBytes);
    if (budget <= 0) return;
    const from = this.applied;
    let bytes = 0;
    for (let index = from + 1; index <= to; index++) {
      const e = this.core.entryAt(index);
      // Compacted under a snapshot stepped in meanwhile: the next Ready installs it.
      if (e === undefined) break;
      this.applyEntry(e);
      bytes += e.data.length;
      if (bytes >= budget) break;
    }
    this.earlyBytes += bytes;
    this.stats.appliedEarly += this.applied - from;
    this.releaseReads();
  }

  private applyEntry(e: Entry): void {
    // Figure 2: lastApplied moves one entry at a time; a gap or a repeat is a runtime bug.
    if (e.index !== this.applied + 1) throw new Error(`runtime contract: applying entry ${e.index} after ${this.applied}`);
    const result = this.sm.apply(e);
    this.applied = e.index;
    this.idleTicks = 0;
    this.appliedBytes += e.data.length;
    this.stats.appliedEntries++;
    if (this.local !== null && this.local.inProgress !== null) this.stats.appliedWhileSerializing++;
    this.hooks.applied?.(e, result);
  }

  private releaseReads(): void {
    const reads = this.waitingReads;
    if (reads.length === 0 || this.isRestoring) return;
    let kept = 0;
    for (let i = 0; i < reads.length; i++) {
      const r = reads[i]!;
      if (r.index <= this.applied) this.hooks.readReady?.(r.requestId, r.index);
      else reads[kept++] = r;
    }
    reads.length = kept;
  }

  private send(m: Message, isBeforeSync: boolean): void {
    const out = m.type === 'InstallSnapshot' && m.snapshot.data.length === 0 ? this.attachSnapshot(m) : m;
    this.hooks.sent?.(out, isBeforeSync);
    this.transport.send(out);
  }

  /** The core sends InstallSnapshot without bytes; attach our newest saved snapshot (its own meta). */
  private attachSnapshot(m: Extract<Message, { type: 'InstallSnapshot' }>): Message {
    const latest = this.latest;
    if (latest === null || latest.meta.index < m.snapshot.meta.index) {
      throw new Error(`runtime contract: no saved snapshot covers index ${m.snapshot.meta.index}`);
    }
    if (latest.data !== null) return { ...m, snapshot: { meta: latest.meta, data: latest.data } };
    // Read back from storage: a blocking read of the whole snapshot, paid only when a follower
    // is too far behind for the log, instead of its bytes held in memory all the time.
    const stored = this.storage.readSnapshot!();
    if (stored === null || stored.meta.index < m.snapshot.meta.index) {
      throw new Error(`runtime contract: the storage holds no snapshot covering index ${m.snapshot.meta.index} (it has ${stored?.meta.index ?? 'none'})`);
    }
    this.stats.snapshotsReadBack++;
    return { ...m, snapshot: stored };
  }

  private checkRemoved(): void {
    const notice = this.core.removed;
    if (notice === null || this.isRemovalReported) return;
    this.isRemovalReported = true;
    this.logger.warn('removed from the cluster', { by: notice.by, configIndex: notice.configIndex });
    this.hooks.removed?.(notice);
  }

  // ---- a full disk -------------------------------------------------------------------------------

  /**
   * A write of the current Ready failed. For want of space: the storage keeps everything queued,
   * the Ready stays in flight (nothing advanced, nothing sent that depends on it) and `retry`
   * runs after a backoff (NO_SPACE_RETRY_MS) under the alarm. Anything else: fail-stop.
   */
  private writeFailed(err: Error, retry: () => void): void {
    if (!isNoSpace(err)) {
      this.fail(err);
      return;
    }
    if (this.writeRetryMs === 0) {
      this.logger.warn('disk full: a write waits for space; retrying', { error: err.message });
      this.spaceWaitStartedAt = this.clock.now();
      this.alarm.set('write', true);
    }
    this.writeRetryMs = nextBackoffMs(this.writeRetryMs, NO_SPACE_RETRY_MS);
    this.cancelWriteRetry = this.clock.setTimer(this.writeRetryMs, () => {
      this.cancelWriteRetry = null;
      if (this.isStopped) return;
      retry();
    });
  }

  private writeSucceeded(): void {
    if (this.writeRetryMs === 0) return;
    this.writeRetryMs = 0;
    this.logger.info('disk space is back: the write went through', { waitedMs: Math.round(this.clock.now() - this.spaceWaitStartedAt) });
    this.alarm.set('write', false);
  }

  // ---- snapshots (§7) ------------------------------------------------------------------------------

  /** The log since the latest snapshot holds snapshotLogPercent of its size (DEFAULT_RUNTIME_OPTIONS), or `share` of that. */
  private hasLogOutgrownSnapshot(share = 1): boolean {
    const size = this.latest?.bytes ?? 0;
    return this.appliedBytes - this.appliedBytesAtSnapshot >= (size * this.snapshotLogPercent * share) / 100;
  }

  /**
   * Nothing applied for snapshotIdleTicks, and the log since the latest snapshot holds a quarter
   * of what a snapshot by count asks (entries and bytes): an idle member compacts it now.
   */
  private isIdleSnapshotDue(): boolean {
    if (this.snapshotIdleTicks === 0 || this.idleTicks < this.snapshotIdleTicks) return false;
    const since = this.applied - (this.latest?.meta.index ?? 0);
    return since >= this.snapshotEntries / 4 && this.hasLogOutgrownSnapshot(1 / 4) && !this.isMemberBehind();
  }

  /**
   * As leader: a member's log ends more than snapshotCatchUpEntries behind the applied index (it
   * was down, or cut off, during the writes). Compacting now would cost it a whole snapshot where
   * the log would have done, so the idle rule waits; the count and byte rules do not.
   */
  private isMemberBehind(): boolean {
    const core = this.core;
    if (core.role !== 'leader') return false;
    const floor = this.applied - this.catchUpEntries;
    const c = core.configuration;
    for (const ids of [c.voters, c.votersOutgoing, c.learners]) {
      for (const id of ids) {
        if (id === core.id) continue;
        const pr = core.progress(id);
        if (pr !== undefined && pr.matchIndex < floor) return true;
      }
    }
    return false;
  }

  /**
   * What the count and byte rules are multiplied by for the next snapshot (snapshotStagger): 1 +
   * slot/n while a stretch is due, slot this member's place among the n members of its
   * configuration (voters, outgoing voters and learners) in id order; else 1.
   */
  private staggerStretch(): number {
    if (!this.snapshotStagger || !this.isStaggerDue) return 1;
    const c = this.core.configuration;
    if (this.staggerConfig !== c) {
      const ids = [...new Set([...c.voters, ...c.votersOutgoing, ...c.learners])].sort();
      const slot = ids.indexOf(this.core.id);
      this.staggerConfig = c;
      this.staggerFactor = slot <= 0 ? 1 : 1 + slot / ids.length;
    }
    return this.staggerFactor;
  }

  /**
   * Starts a snapshot if one is asked for or due (none is in flight), of the state machine at the
   * applied index, between Readies. A state machine that can (SlicedSnapshots) captures its state
   * now and serializes it a slice per clock turn while Readies go on; any other serializes it
   * here at once. Saving and compacting run beside the Readies that follow.
   */
  private startSnapshotIfDue(): void {
    const isAsked = this.snapshotRequests.length > 0 || this.isSnapshotRetryDue;
    // While a snapshot that did not fit waits for its retry timer, the log just grows.
    const stretch = this.staggerStretch();
    const isDueByCount =
      (this.applied - this.core.snapshotIndex >= this.snapshotEntries * stretch + this.catchUpEntries ||
        (this.appliedBytes - this.appliedBytesAtSnapshot >= this.snapshotLogBytes * stretch && this.applied > (this.latest?.meta.index ?? 0))) &&
      this.hasLogOutgrownSnapshot(stretch);
    const isDue = !this.alarm.has('snapshot') && (isDueByCount || this.isIdleSnapshotDue());
    if (!isAsked && !isDue) return;
    if (isLoadingInBackground(this.sm)) {
      // Its first slice would load at once what the restore left (a history: ~0.5 s at 1M
      // keys): the load goes first, a slice per turn (loadInBackground, and one here per pump
      // should no host be running it), then this runs again.
      this.isSnapshotWaitingForLoad = true;
      if (this.backgroundSlice() !== true) return;
      this.isSnapshotWaitingForLoad = false;
    }
    if (!this.canSnapshot()) {
      if (!isAsked) return;
      // Nothing new to snapshot: what was asked for is already there.
      const index = this.latest?.meta.index ?? 0;
      if (this.isSnapshotRetryDue) this.snapshotFitted();
      for (const done of this.snapshotRequests.splice(0)) done(null, index);
      return;
    }
    this.isSnapshotRetryDue = false;
    this.appliedBytesAtSnapshot = this.appliedBytes;
    this.savingRequests = this.snapshotRequests.splice(0);
    const startedAt = this.clock.now();
    const local: LocalSnapshot = {
      meta: this.core.snapshotMetaAt(this.applied),
      inProgress: null,
      cancelSlice: null,
      writer: null,
      snapshot: null,
      trigger: isAsked ? 'asked' : isDueByCount ? 'log' : 'idle',
      startedAt,
      serializeMs: 0,
      longestSliceMs: 0,
    };
    this.local = local;
    const sm = this.sm;
    if (hasSlicedSnapshots(sm)) {
      const storage = this.storage;
      // Written straight into storage where it can be: no buffer of the snapshot's size (hundreds
      // of MB at 1M keys) and none of its first-touch cost. Only where the storage can read it
      // back, as InstallSnapshot needs.
      const writesDirect = storage.snapshotWriter !== undefined && storage.saveWrittenSnapshot !== undefined && storage.readSnapshot !== undefined;
      local.writer = writesDirect ? storage.snapshotWriter!(local.meta) : null;
      local.inProgress = sm.beginSnapshot(local.writer);
      this.serializeSlice(local, startedAt);
      return;
    }
    const data = sm.snapshot();
    local.serializeMs = local.longestSliceMs = this.clock.now() - startedAt;
    this.save(local, { meta: local.meta, data });
  }

  /** One slice of a sliced snapshot; the next one on a later clock turn, the save once complete. */
  private serializeSlice(local: LocalSnapshot, startedAt = this.clock.now()): void {
    local.cancelSlice = null;
    if (this.local !== local || local.inProgress === null) return;
    let data: Uint8Array | 'written' | null;
    try {
      data = local.inProgress.step(SNAPSHOT_SLICE_BYTES);
    } catch (err) {
      // The writer found the disk full: given up, and tried again later, as a save that did not fit.
      if (local.writer !== null && isNoSpace(err)) {
        this.abandonLocal();
        this.snapshotNoSpace(err as Error);
        return;
      }
      // A state machine that throws cannot be trusted with the next entry either (fail-stop).
      this.fail(err);
      return;
    }
    const ms = this.clock.now() - startedAt;
    local.serializeMs += ms;
    local.longestSliceMs = Math.max(local.longestSliceMs, ms);
    if (data === null) {
      local.cancelSlice = this.clock.setTimer(0, () => this.serializeSlice(local));
      return;
    }
    local.inProgress = null;
    const writer = local.writer;
    local.writer = null;
    if (data === 'written') {
      if (writer === null) {
        this.fail(new Error('the state machine says its snapshot is written, but it was given no writer'));
        return;
      }
      local.snapshot = { meta: local.meta, bytes: writer.bytes, data: null };
      this.storage.saveWrittenSnapshot!(writer, (err) => this.onSnapshotSaved(err, local));
      return;
    }
    // The state machine did not use the writer: nothing of it is kept.
    writer?.abandon();
    this.save(local, { meta: local.meta, data });
  }

  private save(local: LocalSnapshot, snapshot: Snapshot): void {
    local.snapshot = { meta: snapshot.meta, bytes: snapshot.data.length, data: snapshot.data };
    this.storage.saveSnapshot(snapshot, (err) => this.onSnapshotSaved(err, local));
  }

  /** Forgets the local snapshot in flight; one still being serialized is given up. */
  private abandonLocal(): void {
    const local = this.local;
    if (local === null) return;
    this.local = null;
    local.cancelSlice?.();
    local.cancelSlice = null;
    local.inProgress?.abandon();
    local.inProgress = null;
    // Only while it is being written: once handed to the save, the writer is the storage's.
    local.writer?.abandon();
    local.writer = null;
  }

  /**
   * Nothing new since the newest snapshot, or a leader's snapshot is about to replace our state,
   * or entries applied early are still ahead of what the core handed out (it can describe and
   * compact only up to its lastApplied): not now. Called only between Readies, so every entry
   * up to the applied index is durable in the local log: the snapshot never runs ahead of it,
   * and a crash while it is saved recovers it or the log it came from, both intact.
   */
  private canSnapshot(): boolean {
    const applied = this.applied;
    return applied > (this.latest?.meta.index ?? 0) && applied >= this.core.snapshotIndex && applied <= this.core.lastApplied;
  }

  private onSnapshotSaved(err: Error | null, local: LocalSnapshot): void {
    if (this.local !== local) return; // fail-stop meanwhile
    const snapshot = local.snapshot!;
    if (err === null && this.isStopped) {
      // Stopped meanwhile: the snapshot is durable; compaction can wait for the next start.
      this.setLatest(snapshot);
      this.snapshotDone(snapshot, this.core.snapshotIndex);
      return;
    }
    if (err !== null) {
      if (!isNoSpace(err)) {
        this.fail(err);
        return;
      }
      this.snapshotNoSpace(err);
      return;
    }
    // No install can have come between (it waits for this one), so this is the newest snapshot.
    this.setLatest(snapshot);
    this.stats.snapshotsTaken++;
    // One the count and byte rules asked for keeps this member's place in the rhythm; any other
    // (idle, asked) came at the same index on every member, and the next one moves apart again.
    this.isStaggerDue = local.trigger !== 'log';
    this.snapshotFitted();
    const index = snapshot.meta.index;
    // Keep some entries behind the snapshot so a follower a little behind needs no snapshot.
    // The core's own log may be compacted further already: a leader's snapshot stepped in.
    const compactTo = Math.max(this.core.snapshotIndex, index - this.catchUpEntries);
    if (compactTo <= this.core.snapshotIndex) {
      this.snapshotDone(snapshot, this.core.snapshotIndex);
      return;
    }
    // §7: only AFTER the snapshot is durable may the log behind it go, on disk and in the core.
    // A Ready in flight is unaffected: it covers entries from the core's lastApplied on, and
    // compactTo is at most that.
    this.core.compact(compactTo);
    this.storage.compact(compactTo, (compactErr) => {
      if (this.local !== local) return;
      if (compactErr !== null) {
        if (!isNoSpace(compactErr)) {
          this.fail(compactErr);
          return;
        }
        // A segment that cannot be deleted for want of space (copy-on-write file systems) is
        // deleted by a later compaction: the storage keeps its list.
        this.logger.warn('compaction deferred: no space to delete WAL segments', { error: compactErr.message });
      }
      this.snapshotDone(snapshot, compactTo);
    });
  }

  /** The local snapshot in flight did not fit: it ends, is answered with `err`, and is tried again later. */
  private snapshotNoSpace(err: Error): void {
    this.snapshotDidNotFit(err);
    const index = this.latest?.meta.index ?? 0;
    for (const done of this.savingRequests.splice(0)) done(err, index);
    for (const done of this.snapshotRequests.splice(0)) done(err, index);
    this.snapshotEnded();
  }

  private snapshotDone(snapshot: TakenSnapshot, compactedTo: number): void {
    const local = this.local!;
    this.logger.info('snapshot taken', {
      index: snapshot.meta.index,
      compactedTo,
      bytes: snapshot.bytes,
      writtenDirect: snapshot.data === null,
      // On the loop: serializing in all, and its longest slice. The rest (saving, compacting) was not.
      serializeMs: Math.round(local.serializeMs),
      longestSliceMs: Math.round(local.longestSliceMs),
      totalMs: Math.round(this.clock.now() - local.startedAt),
      trigger: local.trigger,
    });
    if (local.trigger === 'idle') this.stats.idleSnapshots++;
    this.hooks.snapshotTaken?.(snapshot, compactedTo);
    for (const done of this.savingRequests.splice(0)) done(null, snapshot.meta.index);
    this.snapshotEnded();
  }

  /** Nothing of the local snapshot is in flight any more: a leader's snapshot that waited goes on. */
  private snapshotEnded(): void {
    this.local = null;
    if (this.isInstallWaiting) {
      this.isInstallWaiting = false;
      this.installSnapshot(this.current!.snapshot!);
    }
    this.settleIfIdle();
    this.continue();
  }

  /** Raises the alarm and retries later, with backoff (SNAPSHOT_RETRY_MS). */
  private snapshotDidNotFit(err: Error): void {
    if (this.isStopped) return;
    if (!this.alarm.has('snapshot')) this.logger.warn('disk full: the snapshot did not fit; retrying later', { error: err.message });
    this.alarm.set('snapshot', true);
    this.snapshotRetryMs = nextBackoffMs(this.snapshotRetryMs, SNAPSHOT_RETRY_MS);
    this.cancelSnapshotRetry?.();
    this.cancelSnapshotRetry = this.clock.setTimer(this.snapshotRetryMs, () => {
      this.cancelSnapshotRetry = null;
      if (this.isStopped) return;
      this.isSnapshotRetryDue = true;
      this.pump();
    });
  }

  private snapshotFitted(): void {
    if (!this.alarm.has('snapshot')) return;
    this.snapshotRetryMs = 0;
    this.isSnapshotRetryDue = false;
    this.logger.info('disk space is back: the snapshot was taken');
    this.alarm.set('snapshot', false);
  }

  private settleIfIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle) return;
    for (const done of this.idleWaiters.splice(0)) done();
  }
}
