// One simulated server: the real consensus core, the in-memory storage twin and the simulator's
// state machine, driven by the runtime loop of the Ready contract (raft/types.ts):
//   ready() → install snapshot, append entries, set hard state (queued) → fsync takes a seeded
//   disk latency, during which the core keeps being ticked and stepped → at completion: sync,
//   THEN send, THEN restore/apply, answer reads, maybe snapshot, advance().
// A crash discards the core, the state machine and everything queued but not synced.
import { Raft, type Entry, type HardState, type Message, type NodeId, type Ready, type Snapshot } from '../raft/index.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import type { InvariantSuite } from './invariants/suite.js';
import { InvariantViolation } from './invariants/violation.js';
import { SimStateMachine, decodeSimSnapshot } from './state-machine.js';

/** What a node needs from the world around it. */
export interface NodeHost {
  readonly now: number;
  readonly invariants: InvariantSuite;
  /** Schedules this node's fsync completion after a seeded disk latency. */
  scheduleSync(node: SimNode): void;
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
  /** Take a snapshot every this many applied entries. */
  snapshotEvery: number;
  /** Entries kept behind a snapshot for slightly slow followers. */
  snapshotKeep: number;
  maxBytesPerMessage: number;
  maxInflightMessages: number;
}

export class SimNode {
  /** `n<slot+1>` for the founding members; a slot re-provisioned later gets a fresh id. */
  id: NodeId;
  storage = new MemoryStorage();
  /**
   * False for a spare slot of the pool: never started, or stopped for good after its removal
   * from the cluster committed. A spare never restarts; provisioning gives it a new id and an
   * empty disk (ids are never reused: a wiped server under its old id could vote twice in a term).
   */
  isProvisioned = false;
  core: Raft | null = null;
  sm: SimStateMachine | null = null;
  /** Bumped at every crash and restart; events of an earlier life are ignored. */
  incarnation = 0;
  /** The Ready whose fsync is in flight. */
  private inFlight: Ready | null = null;
  /** The hard state on stable storage (as the runtime knows it). */
  durable: HardState = { currentTerm: 0, votedFor: null, commitIndex: 0 };
  private lastSnapshotIndex = 0;
  /** Read states waiting for the state machine to catch up to their index. */
  private waitingReads: { requestId: number; index: number }[] = [];
  /** Client proposals accepted by this incarnation while leader: index → payload. */
  readonly pending = new Map<number, Uint8Array>();
  snapshotsTaken = 0;
  snapshotsInstalled = 0;

  constructor(
    readonly slot: number,
    private readonly host: NodeHost,
    private readonly timing: NodeTiming,
  ) {
    this.id = `n${slot + 1}`;
  }

  get isUp(): boolean {
    return this.core !== null;
  }

  /** Writes the founding state (thesis §4.1) to storage and starts the node. */
  bootstrap(initial: { entries: readonly Entry[]; hardState: HardState }): void {
    this.storage.append(initial.entries);
    this.storage.setHardState(initial.hardState);
    this.storage.syncNow();
    this.isProvisioned = true;
    this.start(false);
  }

  /**
   * A new server joins the pool under `id` with an empty disk: no log, term 0, no configuration
   * (so it cannot campaign). It learns everything from the leader that adds it (thesis §4.2.1).
   */
  provision(id: NodeId): void {
    this.id = id;
    this.storage = new MemoryStorage();
    this.lastSnapshotIndex = 0;
    this.snapshotsTaken = 0;
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
  start(isRestart: boolean): void {
    this.incarnation++;
    const state = this.storage.loadNow();
    const snapshot = this.storage.loadSnapshotNow();
    const sm = new SimStateMachine();
    if (snapshot !== null) {
      sm.restore(snapshot.data);
      this.host.invariants.restore(this.id, sm.index, sm.hash);
    }
    if (sm.index !== state.applied) {
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
      },
      state,
    );
    this.core = core;
    this.sm = sm;
    this.durable = state.hardState;
    this.lastSnapshotIndex = sm.index;
    if (isRestart) this.host.invariants.restart(this.slot, core, state.hardState, state.entries);
    else this.host.invariants.durable(this.slot, this.id, state.hardState);
  }

  /** The core, the state machine and everything waiting on them are gone (a stop or a crash). */
  private loseVolatileState(): void {
    this.core = null;
    this.sm = null;
    this.inFlight = null;
    this.waitingReads = [];
    this.pending.clear();
  }

  /** Power loss: the core, state machine and unsynced writes are gone. */
  crash(): void {
    this.loseVolatileState();
    this.storage.crash();
    this.incarnation++;
    this.host.invariants.crash(this.slot);
  }

  /** Takes Readys while there is one and no fsync is in flight. */
  pump(): void {
    const core = this.core;
    if (core === null) return;
    while (this.inFlight === null && core.hasReady()) {
      const rd = core.ready();
      if (rd.snapshot !== null) this.storage.installSnapshotNow(rd.snapshot);
      if (rd.entries.length > 0) {
        this.host.invariants.persist(this.slot, core, rd.entries);
        this.storage.append(rd.entries);
      }
      if (rd.hardState !== null) this.storage.setHardState(rd.hardState);
      if (rd.snapshot !== null || rd.entries.length > 0 || rd.hardState !== null) {
        this.inFlight = rd;
        this.host.scheduleSync(this);
        return;
      }
      // Nothing to persist: what the messages depend on is already durable.
      this.complete(rd);
    }
  }

  /** The fsync of the in-flight Ready finished. */
  syncDone(): void {
    const rd = this.inFlight;
    if (rd === null || this.core === null) return;
    this.inFlight = null;
    this.complete(rd);
    this.pump();
  }

  private complete(rd: Ready): void {
    const core = this.core!;
    const sm = this.sm!;
    const inv = this.host.invariants;
    this.storage.syncNow();
    if (rd.hardState !== null) {
      this.durable = rd.hardState;
      inv.durable(this.slot, this.id, rd.hardState);
    }
    // Only now, with the Ready durable, may its messages leave (Figure 2).
    const messages = rd.messages;
    for (let i = 0; i < messages.length; i++) this.sendOne(core, messages[i]!);
    const afterSync = rd.messagesAfterSync;
    for (let i = 0; i < afterSync.length; i++) this.sendOne(core, afterSync[i]!);
    if (rd.snapshot !== null) {
      sm.restore(rd.snapshot.data);
      inv.restore(this.id, sm.index, sm.hash);
      this.lastSnapshotIndex = sm.index;
      this.snapshotsInstalled++;
      this.host.trace(`${this.id} installed snapshot (${rd.snapshot.meta.index}, term ${rd.snapshot.meta.term})`);
    }
    const committed = rd.committedEntries;
    for (let i = 0; i < committed.length; i++) {
      const e = committed[i]!;
      const hash = sm.apply(e);
      inv.apply(this.id, e, hash);
      this.host.applied(this, e);
    }
    for (const rs of rd.readStates) this.waitingReads.push({ requestId: rs.requestId, index: rs.index });
    if (this.waitingReads.length > 0) this.serveReads(sm.index);
    if (sm.index - this.lastSnapshotIndex >= this.timing.snapshotEvery) this.takeSnapshot(core, sm);
    core.advance();
  }

  /** Serves read `requestId` once the state machine has applied `index` (a lease read). */
  awaitRead(requestId: number, index: number): void {
    this.waitingReads.push({ requestId, index });
    if (this.sm !== null) this.serveReads(this.sm.index);
  }

  private sendOne(core: Raft, m: Message): void {
    this.host.invariants.send(this.slot, m, this.durable, core);
    if (m.type === 'InstallSnapshot' && m.snapshot.data.length === 0) {
      // The core never holds snapshot bytes: attach our newest saved snapshot (its own meta).
      const saved = this.storage.loadSnapshotNow();
      if (saved === null || saved.meta.index < m.snapshot.meta.index) {
        core.reportSnapshot(m.to, false);
        return;
      }
      const full: Message = { ...m, snapshot: saved };
      if (!this.host.send(this, full)) core.reportSnapshot(m.to, false);
      return;
    }
    if (!this.host.send(this, m)) core.reportUnreachable(m.to);
  }

  private serveReads(applied: number): void {
    let kept = 0;
    const reads = this.waitingReads;
    for (let i = 0; i < reads.length; i++) {
      const r = reads[i]!;
      if (r.index <= applied) this.host.readServed(this, r.requestId, applied);
      else reads[kept++] = r;
    }
    reads.length = kept;
  }

  private takeSnapshot(core: Raft, sm: SimStateMachine): void {
    const index = sm.index;
    // A snapshot install may be pending in the core (stepped during our fsync): not now, then.
    if (index <= core.snapshotIndex || index > core.lastApplied) return;
    const snapshot: Snapshot = { meta: core.snapshotMetaAt(index), data: sm.snapshot() };
    const decoded = decodeSimSnapshot(snapshot.data);
    if (decoded.index !== snapshot.meta.index || decoded.term !== snapshot.meta.term) {
      throw new InvariantViolation('Runtime Contract', `${this.id}: snapshot meta (${snapshot.meta.index}, ${snapshot.meta.term}) but state at (${decoded.index}, ${decoded.term})`);
    }
    this.storage.saveSnapshotNow(snapshot);
    this.lastSnapshotIndex = index;
    this.snapshotsTaken++;
    const compactTo = index - this.timing.snapshotKeep;
    if (compactTo > core.snapshotIndex) {
      core.compact(compactTo);
      this.storage.compactNow(compactTo);
    }
  }
}
