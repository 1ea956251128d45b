// One simulated server: the real consensus core, the real key-value store (behind the hashing
// wrapper of state-machine.ts) and the in-memory storage twin, carried out by the SAME runtime
// RaftNode ships (node/runtime.ts, docs/runtime.md). This is the simulated host: its clock is
// the simulator's event queue, its storage port's sync completes on a scheduled event after a
// seeded disk latency (the core keeps being ticked and stepped meanwhile, and early apply runs),
// and its message port is the seeded network. The invariants hang on the runtime's hooks: every
// entry handed to storage, every hard state and entry made durable, every message as it leaves
// (and whether before its Ready's sync), every entry applied.
// A crash discards the core, the runtime, the state machine and everything queued but not synced.
import { LeaseKeeper } from '../server/leases.js';
import { encodeCommand } from '../kv/index.js';
import { Runtime, emptyRuntimeStats, type ClockPort, type Done, type MessagePort, type RuntimeHooks, type RuntimeStats, type StoragePort, type TakenSnapshot } from '../node/runtime.js';
import { Raft, type Entry, type HardState, type Message, type NodeId, type Snapshot } from '../raft/index.js';
import type { KvResult } from '../kv/index.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import type { InvariantSuite } from './invariants/suite.js';
import { InvariantViolation } from './invariants/violation.js';
import { TickClock } from '../node/tick-clock.js';
import { SimStateMachine, decodeSimSnapshot } from './state-machine.js';

/** What a node needs from the world around it. */
export interface NodeHost {
  readonly now: number;
  readonly invariants: InvariantSuite;
  /** Schedules this node's fsync completion (SimNode.syncDone) after a seeded disk latency. */
  scheduleSync(node: SimNode): void;
  /**
   * Calls `fire` after a seeded latency of a snapshot-sized write (a save's file or marker, an
   * install, a compaction), unless this incarnation is gone.
   */
  scheduleSnapshotIo(node: SimNode, fire: () => void): void;
  /**
   * A restarted node with a snapshot: how long its state machine's load takes beside the running
   * core (RuntimeOptions.restoring, as RaftNode does for `raftkv serve`), or null to load it
   * before the core starts (RaftNode without onCoreStarted). Both ship, so both are drawn.
   */
  restoreDelayMs(node: SimNode): number | null;
  /**
   * The invariants and the trace after one step of `node` that is part of a larger event (each
   * tick of a catch-up: a candidate may campaign twice in one, and each campaign is checked).
   */
  stepped(node: SimNode): void;
  /** This node's tick interval (its clock's rate, which drifts a little from the others'). */
  tickMsOf(node: SimNode): number;
  /** Calls `fire` after `ms` of simulated time unless this incarnation is gone; returns a cancel. */
  scheduleTimer(node: SimNode, ms: number, fire: () => void): () => void;
  /** Hands a message to the network; false if it was dropped at once (link down). */
  send(node: SimNode, m: Message): boolean;
  /** A new core's random stream for this node's incarnation. */
  coreRandom(slot: number, incarnation: number): () => number;
  /** Called for each applied entry (the client's acknowledgements). */
  applied(node: SimNode, entry: Entry): void;
  /** A linearizable read was served at applied index `servedAt`. */
  readServed(node: SimNode, requestId: number, servedAt: number): void;
  trace(line: string): void;
}

export interface NodeTiming {
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Applied entries between snapshots (the runtime's snapshotEntries). */
  snapshotEvery: number;
  /** Entries kept behind a snapshot for slightly slow followers (snapshotCatchUpEntries). */
  snapshotKeep: number;
  maxBytesPerMessage: number;
  maxInflightMessages: number;
}

/** Snapshot writers take small buffers here, so that a small store's snapshot spans many (production: 1 MiB). */
const SIM_STORAGE = { snapshotChunkBytes: 256 } as const;

export class SimNode {
  /** `n<slot+1>` for the founding members; a slot re-provisioned later gets a fresh id. */
  id: NodeId;
  storage = new MemoryStorage(SIM_STORAGE);
  /**
   * False for a spare slot of the pool: never started, or stopped for good after its removal
   * from the cluster committed. A spare never restarts; provisioning gives it a new id and an
   * empty disk (ids are never reused: a wiped server under its old id could vote twice in a term).
   */
  isProvisioned = false;
  runtime: Runtime<KvResult | undefined> | null = null;
  sm: SimStateMachine | null = null;
  /**
   * The lease keeper `raftkv serve` runs (src/server/leases.ts), on this node's clock: it decides
   * expiry while the node leads; the simulator ticks it, and confirms keep-alives by ReadIndex.
   */
  keeper: LeaseKeeper | null = null;
  /** Held (a pause fault) until this time, 0 if not: the simulator hands it nothing until it resumes. */
  pausedUntil = 0;

  get isPaused(): boolean {
    return this.pausedUntil > 0;
  }
  /** The ticks its core is given, by the simulated clock (as RaftNode's, by performance.now()). */
  private ticks: TickClock | null = null;
  /** Bumped at every crash and restart; events of an earlier life are ignored. */
  incarnation = 0;
  /** Loads beside the core begun by this slot: every other one restores through storage's windows. */
  private loadsBeside = 0;
  /** The hard state on stable storage (as the runtime knows it). */
  durable: HardState = { currentTerm: 0, votedFor: null, commitIndex: 0 };
  /** Client proposals accepted by this incarnation while leader: index → payload. */
  readonly pending = new Map<number, Uint8Array>();
  /** The runtime's counters, summed over every incarnation of this slot. */
  readonly stats: RuntimeStats = emptyRuntimeStats();
  /** The completion of the sync in flight, called at its scheduled event. */
  private syncInFlight: Done | null = null;
  /** The snapshot being stored, and whether a compaction is in flight: the storage contract's overlap rules. */
  private storing: 'save' | 'install' | null = null;
  private isCompacting = false;
  /** The save in flight has its snapshot durable, its marker not yet synced. */
  private isSaveHalfDone = false;
  /** Crashes that fell while a local snapshot was being saved, and those between its two halves. */
  crashesDuringSave = 0;
  private earlierFollowerCommits = 0;
  /** Commits this slot's cores made as followers by their own count (follower.ts, commitFromDurableCopies), over all incarnations. */
  get followerCommits(): number {
    return this.earlierFollowerCommits + (this.core?.commitsCountedAsFollower ?? 0);
  }
  crashesBetweenSaveHalves = 0;
  private readonly hooks: RuntimeHooks<KvResult | undefined>;
  private readonly storagePort: StoragePort;
  private readonly messagePort: MessagePort;
  private readonly clock: ClockPort;

  constructor(
    readonly slot: number,
    private readonly host: NodeHost,
    private readonly timing: NodeTiming,
  ) {
    this.id = `n${slot + 1}`;
    this.storagePort = this.makeStoragePort();
    this.messagePort = { send: (m) => this.deliver(m) };
    this.clock = { now: () => host.now, setTimer: (ms, fire) => host.scheduleTimer(this, ms, fire) };
    this.hooks = this.makeHooks();
  }

  get core(): Raft | null {
    return this.runtime?.core ?? null;
  }

  get isUp(): boolean {
    return this.runtime !== null;
  }

  /** Writes the founding state (thesis §4.1) to storage and starts the node. */
  bootstrap(initial: { entries: readonly Entry[]; hardState: HardState }): void {
    this.storage.append(initial.entries);
    this.storage.setHardState(initial.hardState);
    // The twin's sync takes effect when called (memory-storage.ts).
    void this.storage.sync();
    this.isProvisioned = true;
    this.start(false);
  }

  /**
   * A new server joins the pool under `id` with an empty disk: no log, term 0, no configuration
   * (so it cannot campaign). It learns everything from the leader that adds it (thesis §4.2.1).
   */
  provision(id: NodeId): void {
    this.id = id;
    this.storage = new MemoryStorage(SIM_STORAGE);
    this.isProvisioned = true;
    this.start(false);
  }

  /** Shut down for good (a removed server decommissioned): the slot becomes a spare. */
  stop(): void {
    this.loseVolatileState();
    this.isProvisioned = false;
    this.incarnation++;
    this.id = `spare${this.slot + 1}`;
  }

  /** Rebuilds the node from what its storage made durable. */
  start(isRestart: boolean, downTicks = 0): void {
    this.incarnation++;
    const { state, snapshot } = this.storage.recover();
    const sm = new SimStateMachine();
    const restoreDelayMs = snapshot !== null && isRestart ? this.host.restoreDelayMs(this) : null;
    if (snapshot !== null && restoreDelayMs === null) {
      sm.restore(snapshot.data);
      this.host.invariants.restore(this.id, sm.index, sm.hash);
    }
    if (restoreDelayMs === null ? sm.index !== state.applied : snapshot!.meta.index !== state.applied) {
      throw new InvariantViolation('Runtime Contract', `${this.id}: storage says applied ${state.applied} but its snapshot holds ${sm.index}`);
    }
    const core = new Raft(
      {
        id: this.id,
        random: this.host.coreRandom(this.slot, this.incarnation),
        electionTicks: this.timing.electionTicks,
        heartbeatTicks: this.timing.heartbeatTicks,
        preVote: this.timing.preVote,
        checkQuorum: this.timing.checkQuorum,
        maxBytesPerMessage: this.timing.maxBytesPerMessage,
        maxInflightMessages: this.timing.maxInflightMessages,
        restarted: isRestart,
        downTicks,
      },
      state,
    );
    this.sm = sm;
    this.ticks = new TickClock(this.host.tickMsOf(this), this.timing.electionTicks, this.host.now);
    this.durable = state.hardState;
    this.runtime = new Runtime({
      core,
      storage: this.storagePort,
      transport: this.messagePort,
      stateMachine: sm,
      clock: this.clock,
      applied: state.applied,
      latestSnapshot: snapshot,
      restoring: restoreDelayMs !== null,
      snapshotEntries: this.timing.snapshotEvery,
      snapshotCatchUpEntries: this.timing.snapshotKeep,
      // The seeded schedule decides alone: a few KB of state would otherwise space snapshots out.
      snapshotLogPercent: 0,
      // As a server's members do (2 s there): a member idle for two election timeouts compacts
      // a log a quarter of the way to the next snapshot, between faults as well as after them.
      snapshotIdleTicks: 2 * this.timing.electionTicks,
      // As a server's members do: each member's first snapshot by count after a start or an idle
      // one waits its place's stretch.
      snapshotStagger: true,
      hooks: this.hooks,
      stats: this.stats,
    });
    const runtime = this.runtime;
    if (restoreDelayMs !== null) {
      // The load starts after the drawn delay, then takes a slice per turn (as RaftNode does,
      // one per setImmediate), with messages, ticks and syncs between slices.
      this.host.scheduleTimer(this, restoreDelayMs, () => {
        // Every other incarnation restores through the snapshot where storage keeps it (its
        // openSnapshot: a server's restart, reading the store's records through windows), the
        // rest from its bytes.
        const source = this.loadsBeside++ % 2 === 0 ? this.storage.openSnapshot() : null;
        const steps = runtime.beginRestore(source ?? snapshot!);
        // Then what the store left for later (its history), a slice per turn while it serves.
        const background = (): void => {
          const wait = runtime.loadInBackground();
          if (wait !== null) this.host.scheduleTimer(this, wait, background);
        };
        const next = (): void => {
          if (!steps.step()) this.host.scheduleTimer(this, 0, next);
          else this.host.scheduleTimer(this, 0, background);
        };
        next();
      });
    }
    this.keeper = new LeaseKeeper({
      // `raftkv serve` starts its keeper once the state machine is loaded (node-server.ts).
      leadership: () => ({ isLeader: core.role === 'leader' && !runtime.isStateRestoring, term: core.currentTerm, hasCommittedInTerm: core.termAt(core.commitIndex) === core.currentTerm }),
      confirmLeadership: () => Promise.reject(new Error('the simulator confirms keep-alives by ReadIndex (beginKeepAlive, finishKeepAlive)')),
      // Through `sm.store`, which follows a restore (it replaces the store inside the wrapper).
      leases: {
        leaseIds: () => sm.store.leaseIds(),
        leaseTtlSeconds: (id) => sm.store.leaseTtlSeconds(id),
        get leaseVersion() {
          return sm.store.leaseVersion;
        },
        get leaseCount() {
          return sm.store.leaseCount;
        },
      },
      // Proposed at once; the simulator runs no promise callbacks mid-run, so the answer is never
      // awaited (a lease whose expiry was lost is not retried by this incarnation: liveness only).
      propose: (cmd) => {
        try {
          core.propose(encodeCommand(cmd));
        } catch (err) {
          return Promise.reject(err);
        }
        return new Promise<never>(() => undefined);
      },
      now: () => this.host.now,
    });
    const keeper = this.keeper;
    sm.onApplied = (result) => keeper.noteApplied(result);
    if (isRestart) this.host.invariants.restart(this.slot, core, state.hardState, state.entries);
    else this.host.invariants.started(this.slot, this.id, state.hardState, core.lastIndex);
  }

  /**
   * The tick event (or a resume): gives the core every tick due by the clock since the last
   * (TickClock: all of a pause's at once, as RaftNode does after a held loop).
   */
  tick(): void {
    const runtime = this.runtime;
    if (runtime === null || this.ticks === null) return;
    const n = this.ticks.take(this.host.now);
    for (let i = 0; i < n; i++) {
      runtime.tick();
      this.keeper?.tick();
      if (n > 1) this.host.stepped(this);
    }
  }

  /** Thesis §6.4.1: the lease read index now, as RaftNode.leaseReadIndex gives it (the clock's ticks first). */
  leaseReadIndex(): number | null {
    if (this.runtime === null) return null;
    this.tick();
    return this.runtime.core.leaseReadIndex();
  }

  /** The core, the runtime, the state machine and everything waiting on them are gone. */
  private loseVolatileState(): void {
    this.earlierFollowerCommits += this.core?.commitsCountedAsFollower ?? 0;
    this.runtime = null;
    this.keeper = null;
    this.sm = null;
    this.ticks = null;
    this.pausedUntil = 0;
    this.syncInFlight = null;
    this.storing = null;
    this.isCompacting = false;
    this.isSaveHalfDone = false;
    this.pending.clear();
  }

  /** Power loss: the core, state machine and unsynced writes are gone. */
  crash(): void {
    if (this.storing === 'save') this.crashesDuringSave++;
    if (this.isSaveHalfDone) this.crashesBetweenSaveHalves++;
    this.loseVolatileState();
    this.storage.crash();
    this.incarnation++;
    this.host.invariants.crash(this.slot);
  }

  /** A peer's message arrives (the caller pumps afterwards). */
  receive(m: Message): void {
    this.runtime?.receive(m);
  }

  /** Carries out Readies while there are some and no sync is in flight. */
  pump(): void {
    this.runtime?.pump();
  }

  /** The simulated fsync of the Ready in flight completes: the queue becomes durable now. */
  syncDone(): void {
    const done = this.syncInFlight;
    if (done === null) return;
    this.syncInFlight = null;
    void this.storage.sync();
    done(null);
  }

  /** Serves read `requestId` once the state machine has applied `index` (a lease read). */
  awaitRead(requestId: number, index: number): void {
    this.runtime?.awaitApplied(requestId, index);
  }

  /**
   * Every write completes at a scheduled event, after a seeded disk latency, and takes effect in
   * the twin then (memory-storage.ts). A local snapshot is saved as FileStorage saves it, in two
   * halves with an event each (the file durable, then its WAL marker synced, which makes every
   * write queued before it durable too), so Readies run beside it and a crash can fall between.
   * The storage contract's overlap rules (storage/types.ts) are checked as the runtime calls.
   */
  private makeStoragePort(): StoragePort {
    const host = this.host;
    // The two halves of a local snapshot's save; `snapshot` reads what a writer holds at the first.
    const saveInHalves = (index: number, snapshot: () => Snapshot, done: Done): void => {
      this.beginStore('save', index);
      host.scheduleSnapshotIo(this, () => {
        this.storage.writeSnapshot(snapshot());
        this.isSaveHalfDone = true;
        host.scheduleSnapshotIo(this, () => {
          void this.storage.sync();
          this.isSaveHalfDone = false;
          this.storing = null;
          done(null);
        });
      });
    };
    return {
      append: (entries) => this.storage.append(entries),
      setHardState: (state) => this.storage.setHardState(state),
      sync: (done) => {
        this.syncInFlight = done;
        host.scheduleSync(this);
      },
      installSnapshot: (snapshot, done) => {
        this.beginStore('install', snapshot.meta.index);
        host.scheduleSnapshotIo(this, () => {
          void this.storage.installSnapshot(snapshot);
          this.storing = null;
          done(null);
        });
      },
      saveSnapshot: (snapshot, done) => saveInHalves(snapshot.meta.index, () => snapshot, done),
      // Written into the twin as the state machine serializes it, as into FileStorage's file;
      // saved in the same two halves.
      snapshotWriter: (meta) => this.storage.snapshotWriter(meta),
      saveWrittenSnapshot: (writer, done) => saveInHalves(writer.meta.index, () => MemoryStorage.written(writer), done),
      // The newest durable snapshot, as FileStorage reads its file back: the runtime keeps no bytes.
      readSnapshot: () => this.storage.readSnapshot(),
      compact: (index, done) => {
        // §7: only what a durable snapshot covers may go. The twin clamps as FileStorage does,
        // which would hide a runtime that compacts before its save is durable: check it here.
        if (index > this.storage.snapshotIndex) {
          throw new InvariantViolation('Runtime Contract', `${this.id}: compacts the log to ${index} while its newest durable snapshot is at ${this.storage.snapshotIndex}`);
        }
        if (this.storing === 'install') this.overlap('compact', index);
        this.isCompacting = true;
        host.scheduleSnapshotIo(this, () => {
          void this.storage.compact(index);
          this.isCompacting = false;
          done(null);
        });
      },
    };
  }

  /** One snapshot store at a time, and no install beside a compaction (storage/types.ts, "What may overlap"). */
  private beginStore(kind: 'save' | 'install', index: number): void {
    if (this.storing !== null || (kind === 'install' && this.isCompacting)) this.overlap(kind, index);
    this.storing = kind;
  }

  private overlap(kind: string, index: number): never {
    const inFlight = this.storing !== null ? `a snapshot ${this.storing}` : 'a compaction';
    throw new InvariantViolation('Runtime Contract', `${this.id}: ${kind} at ${index} while ${inFlight} is in flight (storage/types.ts: one snapshot store at a time)`);
  }

  /** A message dropped at once (link down) is reported to the core, as a failed TCP connection would be. */
  private deliver(m: Message): void {
    if (this.host.send(this, m)) return;
    const core = this.core!;
    if (m.type === 'InstallSnapshot') core.reportSnapshot(m.to, false);
    else core.reportUnreachable(m.to);
  }

  private makeHooks(): RuntimeHooks<KvResult | undefined> {
    const inv = this.host.invariants;
    return {
      // Nothing in the simulated network forges a message, so a refusal for contradicting the
      // committed prefix means some leader lacks a committed entry.
      contradicted: (m) => {
        throw new InvariantViolation('Leader Completeness', `${this.id} refused ${m.type} of term ${m.term} from ${m.from}: it contradicts entries ${this.id} knows committed (to ${this.core!.commitIndex})`);
      },
      persisting: (entries) => inv.persist(this.slot, this.core!, entries),
      synced: (entries, hardState) => {
        inv.synced(this.slot, entries);
        if (hardState === null) return;
        this.durable = hardState;
        inv.durable(this.slot, this.id, hardState);
      },
      installed: (snapshot) => inv.installed(this.slot, snapshot.meta),
      // Simulated clients write to the leader, so no member awaits a forwarded entry; announce
      // the leader's durable index to every member whenever it is ahead of the commit point
      // instead, so that followers count it (follower.ts, commitFromDurableCopies) as often as
      // a run allows.
      stableAwaitedBy: (stableIndex, commitIndex) => {
        if (stableIndex <= commitIndex) return null;
        const config = this.core!.config;
        return [...config.voters, ...config.votersOutgoing, ...config.learners].filter((id) => id !== this.id);
      },
      sent: (m, isBeforeSync) => inv.send(this.slot, m, this.durable, this.core!, isBeforeSync),
      applied: (e) => {
        inv.apply(this.id, e, this.sm!.hash, this.core!.commitIndex);
        this.host.applied(this, e);
      },
      restored: (snapshot) => {
        const sm = this.sm!;
        if (sm.index !== snapshot.meta.index) {
          throw new InvariantViolation('Runtime Contract', `${this.id}: restored the snapshot at ${snapshot.meta.index} but its state machine holds ${sm.index}`);
        }
        inv.restore(this.id, sm.index, sm.hash);
        this.host.trace(`${this.id} restored snapshot (${snapshot.meta.index}, term ${snapshot.meta.term})`);
      },
      snapshotTaken: (snapshot, compactedTo) => {
        this.checkSnapshot(snapshot);
        this.host.trace(`${this.id} took snapshot (${snapshot.meta.index}, term ${snapshot.meta.term}), log compacted to ${compactedTo}`);
      },
      // What the state machine holds, not what the runtime counts: a read released before the
      // state machine was loaded (RuntimeOptions.restoring) is served at 0.
      readReady: (requestId) => this.host.readServed(this, requestId, this.sm!.index),
      // The twin never fails a write, so a runtime that stops itself met a bug (a state machine
      // that threw, a broken contract): a finding, not a fault to ride out.
      fatal: (err) => {
        throw err instanceof InvariantViolation ? err : new InvariantViolation('Runtime Contract', `${this.id}: the runtime stopped itself: ${err.stack ?? err.message}`);
      },
    };
  }

  /** A snapshot written straight into storage (SnapshotWriter) is read back from it, as saved. */
  private checkSnapshot(snapshot: TakenSnapshot): void {
    const data = snapshot.data ?? this.storage.readSnapshot()?.data;
    if (data === undefined || data.length !== snapshot.bytes) {
      throw new InvariantViolation('Runtime Contract', `${this.id}: took a snapshot of ${snapshot.bytes} bytes at ${snapshot.meta.index}, but storage holds ${data?.length ?? 'none'}`);
    }
    const state = decodeSimSnapshot(data);
    if (state.index !== snapshot.meta.index || state.term !== snapshot.meta.term) {
      throw new InvariantViolation('Runtime Contract', `${this.id}: snapshot meta (${snapshot.meta.index}, ${snapshot.meta.term}) but state at (${state.index}, ${state.term})`);
    }
  }
}
