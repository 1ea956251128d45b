// RaftNode: the real-time host of the runtime (runtime.ts, docs/runtime.md). It owns what only a
// process has: timers that drive tick(), the storage port over the Promise-based RaftStorage
// (FileStorage), the transport, the callers waiting on proposals, reads, membership changes and
// transfers, and the events its owner listens to. The order of a Ready's steps, early apply,
// snapshots, the full-disk alarm and fail-stop are the runtime's, the same code the simulator
// runs.
//
// A full disk is an alarm, not a crash (API.md, "Health and limits"): a Ready whose sync or
// snapshot install fails with NoSpaceError stays in flight and is retried with backoff until it
// succeeds; an automatic snapshot that does not fit is retried later. Any other storage error
// stops the node.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import {
  isJoint,
  NotLeaderError,
  ProposalDroppedError,
  Raft,
  bootstrapState,
  type ConfigChange,
  type Configuration,
  type ProgressView,
  type Entry,
  type InitialState,
  type Message,
  type NodeId,
  type ReadState,
  type Ready,
  type RemovedNotice,
  type Role,
  type Snapshot,
  type SnapshotMeta,
  type SnapshotSource,
  type SnapshotWriter,
  type SoftState,
} from '../raft/index.js';
import type { RaftStorage } from '../storage/types.js';
import { Runtime, canRestoreThrough, emptyRuntimeStats, readWholeSource, type ClockPort, type Done, type RuntimeHooks, type StoragePort, type TakenSnapshot } from './runtime.js';
import { LogLimiter } from '../transport/log-limiter.js';
import { isNoSpace } from './space-alarm.js';
import { TickClock } from './tick-clock.js';
import { isTracing, trace, traceMessage } from './trace.js';
import { RecentlyApplied, Waiters } from './waiters.js';
import { DEFAULT_NODE_OPTIONS, LEADER_COMPLETENESS_ALARM, SILENT_LOGGER, StoppedError, type Applied, type NodeLogger, type NodeStats, type NodeStatus, type RaftNodeOptions } from './options.js';
import { processCpuMs } from './process-cpu.js';

/** Real time: retries of writes and snapshots on a full disk. */
const REAL_CLOCK: ClockPort = {
  now: () => performance.now(),
  setTimer(ms: number, fire: () => void): () => void {
    const timer = setTimeout(fire, ms);
    return () => clearTimeout(timer);
  },
};

/** The log's entry slabs (RaftOptions.allocateEntryBytes): zeroed, never from Buffer's shared pool. */
function allocateEntrySlab(bytes: number): Uint8Array {
  return Buffer.alloc(bytes);
}

/**
 * Events: `'role'` (role, leaderId) when either changes; `'removed'` (a RemovedNotice: who said
 * so, and the configuration entry) once this server learns it is out of the cluster, after which
 * its owner should stop it; `'no-space'` (active: boolean) whenever `isOutOfSpace` changes:
 * `true` when the disk is full (the storage's early warning, a Ready's write or snapshot install
 * retrying, an automatic snapshot that did not fit), `false` once all of that has cleared — the
 * node keeps running throughout, and its owner refuses writes meanwhile; `'fatal'` (Error) when
 * the Ready loop failed (a storage error other than a full disk) and the node stopped itself;
 * `'snapshot'` (bytes: number, snapshot: TakenSnapshot | Snapshot | SnapshotSource, how: 'taken' |
 * 'restored') when a snapshot of that size was taken and saved here, or installed or loaded at a
 * restart, replacing the one before (its bytes in memory, or not: a snapshot written straight
 * into storage, or a restart's restored through its file). (`'advanced'`, after each handled Ready, is for its own waits.)
 */
export class RaftNode<R = unknown> extends EventEmitter {
  readonly id: NodeId;
  private readonly core: Raft;
  readonly stats: NodeStats = { proposals: 0, syncs: 0, syncDurationsMs: [], ...emptyRuntimeStats() };
  private readonly runtime: Runtime<R>;
  private readonly storage: RaftStorage;
  private readonly logger: NodeLogger;
  private readonly tickTimer: NodeJS.Timeout;
  private readonly waiters = new Waiters<R>();
  /** Held while proposals this node forwarded are unanswered (awaitForwarded()). */
  private readonly recentlyApplied = new RecentlyApplied<R>();
  private forwardsUnanswered = 0;
  /** The Leader Completeness alarm's lines: one a second, the rest counted in a summary line. */
  private readonly alarmLog: LogLimiter;
  /**
   * Leader: the newest index of each batch other members forwarded (proposeForwarded), oldest
   * first, until committed: the Ready that commits one sends the commit index before applying
   * (RuntimeHooks.isCommitAwaited), since the member that took the write answers only then.
   */
  private forwardedIndexes: number[] = [];
  /** The member that forwarded each batch in forwardedIndexes (same positions). */
  private forwardedBy: NodeId[] = [];
  private forwardedHead = 0;
  private scheduled = false;
  /** The core's ticks, by performance.now() (catchUpTicks). */
  private readonly ticks: TickClock;
  private isMicrotaskScheduled = false;
  private stopped = false;
  /** A restart: the commit index the core started with, until the state machine has applied it (then 0). */
  private replayTo = 0;
  private readonly startedAt = performance.now();

  static async start<R>(options: RaftNodeOptions<R>): Promise<RaftNode<R>> {
    let state: InitialState = await options.storage.load();
    const isEmpty = state.hardState.currentTerm === 0 && state.entries.length === 0 && state.snapshot === null;
    if (isEmpty && options.initialCluster !== undefined) {
      state = bootstrapState(options.initialCluster);
      options.storage.append(state.entries);
      options.storage.setHardState(state.hardState);
      await options.storage.sync();
    }
    const onCoreStarted = options.onCoreStarted;
    const storage = options.storage;
    // A state machine loaded beside the core that can restore through the snapshot's file does,
    // from the file open() checked: its bytes are never read into memory whole (docs/storage.md,
    // "Restored through the file"). The runtime reads them back to send them (readSnapshot).
    const source =
      onCoreStarted !== undefined && storage.openSnapshot !== undefined && storage.readSnapshot !== undefined && canRestoreThrough(options.stateMachine) ? storage.openSnapshot() : null;
    const snapshot: Snapshot | SnapshotSource | null = source ?? (await storage.loadSnapshot());
    const applied = snapshot?.meta.index ?? 0;
    // With onCoreStarted the core starts first, on the log alone: it answers votes and appends
    // while the state machine is decoded (a 1M-key store: ~0.5 s of decode, then the replay).
    const isLoadedBeside = snapshot !== null && onCoreStarted !== undefined;
    if (snapshot !== null && !isLoadedBeside) options.stateMachine.restore('data' in snapshot ? snapshot.data : readWholeSource(snapshot));
    const node = new RaftNode(options, { ...state, applied }, snapshot, !isEmpty, isLoadedBeside);
    if (onCoreStarted === undefined) return node;
    node.logger.info('core started', { term: node.core.currentTerm, snapshotIndex: applied, lastIndex: node.core.lastIndex, commitIndex: node.core.commitIndex, cpuMs: processCpuMs() });
    try {
      onCoreStarted(node);
      if (isLoadedBeside) {
        // A slice of the decode per turn of the loop (~1–14 ms): ticks, votes and appends go on
        // between slices. The state machine is replaced by the last one, at once.
        const steps = node.runtime.beginRestore(snapshot);
        do await new Promise<void>((resolve) => setImmediate(resolve));
        while (!steps.step());
        node.schedule();
        // What the state machine left for later (its history), a slice per turn while it serves.
        void node.loadInBackground();
      }
    } catch (err) {
      await node.stop();
      throw err;
    }
    return node;
  }

  private constructor(options: RaftNodeOptions<R>, state: InitialState, snapshot: Snapshot | SnapshotSource | null, restarted: boolean, restoring: boolean) {
    super();
    this.id = options.id;
    this.storage = options.storage;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.alarmLog = new LogLimiter(this.logger, 1);
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_NODE_OPTIONS.heartbeatMs;
    const electionMs = options.electionMs ?? DEFAULT_NODE_OPTIONS.electionMs;
    if (!(heartbeatMs > 0) || !(electionMs > heartbeatMs)) throw new Error('need 0 < heartbeatMs < electionMs');
    const snapshotIdleMs = options.snapshotIdleMs ?? DEFAULT_NODE_OPTIONS.snapshotIdleMs;
    if (!(snapshotIdleMs >= 0) || !Number.isFinite(snapshotIdleMs)) throw new Error(`snapshotIdleMs must be a finite number ≥ 0, got ${snapshotIdleMs}`);
    // Two ticks per heartbeat gives the randomized election timeout a finer grain.
    const tickMs = heartbeatMs / 2;
    this.core = new Raft(
      {
        id: options.id,
        random: options.random ?? Math.random,
        heartbeatTicks: 2,
        electionTicks: Math.max(3, Math.round(electionMs / tickMs)),
        restarted,
        downTicks: options.downSinceMs === undefined ? 0 : (performance.now() - options.downSinceMs) / tickMs,
        // Buffers, so an entry the state machine applies is a Buffer view, as it came off the
        // wire: its value becomes a string natively (kv/bytes.ts bytesToLatin1).
        allocateEntryBytes: allocateEntrySlab,
      },
      state,
    );
    this.runtime = new Runtime<R>({
      core: this.core,
      storage: this.storagePort(),
      transport: options.transport,
      stateMachine: options.stateMachine,
      clock: REAL_CLOCK,
      applied: state.applied,
      latestSnapshot: snapshot,
      restoring,
      snapshotEntries: options.snapshotEntries ?? DEFAULT_NODE_OPTIONS.snapshotEntries,
      snapshotLogBytes: options.snapshotLogBytes ?? DEFAULT_NODE_OPTIONS.snapshotLogBytes,
      snapshotCatchUpEntries: options.snapshotCatchUpEntries ?? DEFAULT_NODE_OPTIONS.snapshotCatchUpEntries,
      snapshotLogPercent: options.snapshotLogPercent ?? DEFAULT_NODE_OPTIONS.snapshotLogPercent,
      snapshotIdleTicks: Math.ceil(snapshotIdleMs / tickMs),
      snapshotStagger: options.snapshotStagger ?? DEFAULT_NODE_OPTIONS.snapshotStagger,
      hooks: this.hooks(),
      logger: this.logger,
      stats: this.stats,
    });
    // Already raised at start: nobody listens yet, so owners read isOutOfSpace after start().
    const isStorageFull = options.storage.watchSpace?.((isFull) => this.runtime.setStorageFull(isFull)) ?? false;
    this.runtime.setStorageFull(isStorageFull);
    this.ticks = new TickClock(tickMs, this.core.opts.electionTicks, performance.now());
    if (restarted && this.core.commitIndex > state.applied) this.replayTo = this.core.commitIndex;
    // A timer due every tickMs that ran this much later was held: the loop was busy, or the
    // process was not given the CPU. Half an election timeout is when it starts to cost
    // leadership: a leader held that long sends no heartbeats, and at its next tick its CheckQuorum
    // counts the silence before it reads the answers waiting in its sockets.
    const heldWarnMs = (this.core.opts.electionTicks * tickMs) / 2;
    // The process's CPU time over the same span tells the two apart: near the held time (or
    // above it, counting GC and I/O threads) the process was busy; far below it, it was waiting
    // for a core.
    let lastTimerAt = performance.now();
    let lastCpu = process.cpuUsage();
    this.tickTimer = setInterval(() => {
      const now = performance.now();
      const cpu = process.cpuUsage();
      if (now - lastTimerAt >= heldWarnMs) {
        const cpuMs = Math.round((cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000);
        // A snapshot in flight is the usual suspect: say where it was (it is where it is now).
        const snapshot = this.runtime.snapshotInFlight;
        this.alarmLog.log('loop-held', 'warn', 'event loop held', { ms: Math.round(now - lastTimerAt), cpuMs, role: this.core.role, term: this.core.currentTerm, electionMs: this.core.opts.electionTicks * tickMs, ...(snapshot !== null ? { snapshot: snapshot.phase, snapshotSinceMs: snapshot.sinceMs } : {}) });
      }
      lastTimerAt = now;
      lastCpu = cpu;
      this.catchUpTicks();
      this.schedule();
    }, tickMs);
    this.tickTimer.unref();
    this.schedule();
  }

  // ---- client-facing operations --------------------------------------------------------------

  get role(): Role {
    return this.core.role;
  }

  get leaderId(): NodeId | null {
    return this.core.leaderId;
  }

  /** The index the state machine has applied up to. */
  get appliedIndex(): number {
    return this.runtime.appliedIndex;
  }

  /** Figure 2's currentTerm, without the copy status() makes. */
  get currentTerm(): number {
    return this.core.currentTerm;
  }

  get isLeader(): boolean {
    return this.core.role === 'leader';
  }

  /** §8: whether an entry of the current term is committed (before that a new leader does not know what is). */
  get hasCommittedInTerm(): boolean {
    return this.core.termAt(this.core.commitIndex) === this.core.currentTerm;
  }

  /** The configuration in force (thesis §4.1): an immutable value, cheap to read per message. */
  get config(): Configuration {
    return this.core.config;
  }

  /** A copy of what this node knows of itself and the cluster, for status pages and decisions. */
  status(): NodeStatus {
    const core = this.core;
    const config = core.config;
    return {
      id: this.id,
      role: core.role,
      currentTerm: core.currentTerm,
      votedFor: core.votedFor,
      leaderId: core.leaderId,
      commitIndex: core.commitIndex,
      appliedIndex: this.runtime.appliedIndex,
      lastIndex: core.lastIndex,
      snapshotIndex: core.snapshotIndex,
      config,
      configIndex: core.configIndex,
      isJoint: isJoint(config),
      // The configuration entry is not yet known committed: a change is in progress (thesis §4.3).
      isChangePending: isJoint(config) || core.configIndex > core.commitIndex,
      leadTransferee: core.leadTransferee,
      hasCommittedInTerm: this.hasCommittedInTerm,
      isOutOfSpace: this.runtime.isOutOfSpace,
      droppedMessages: { ...core.droppedMessages },
    };
  }

  private clearForwarded(): void {
    this.forwardedIndexes = [];
    this.forwardedBy = [];
    this.forwardedHead = 0;
  }

  /** Times this node, as a follower, committed by counting the leader's announced durable copy with its own. */
  get followerCommits(): number {
    return this.core.commitsCountedAsFollower;
  }

  /** The newest `count` entries of the log as [index, term] pairs, oldest first (for the dashboard). */
  logTail(count: number): [number, number][] {
    const core = this.core;
    const out: [number, number][] = [];
    for (let i = Math.max(core.snapshotIndex + 1, core.lastIndex - count + 1); i <= core.lastIndex; i++) out.push([i, core.termAt(i) ?? 0]);
    return out;
  }

  /** The leader's view of a peer's replication (Figure 2's matchIndex, nextIndex); undefined unless leader. */
  progress(id: NodeId): ProgressView | undefined {
    return this.core.progress(id);
  }

  /** Thesis §6.4.1: the index a lease read may be served at now, or null (not leader, or the lease lapsed). */
  leaseReadIndex(): number | null {
    // The clock, not the last tick: a loop held past the lease may not have run its timer yet.
    if (this.catchUpTicks()) this.schedule();
    return this.core.leaseReadIndex();
  }

  /**
   * Gives the core every tick the monotonic clock says is due (TickClock), not one per timer
   * callback, which would lose those of a loop held meanwhile; true if it gave any.
   */
  private catchUpTicks(): boolean {
    const n = this.ticks.take(performance.now());
    for (let i = 0; i < n; i++) this.runtime.tick();
    return n > 0;
  }

  /**
   * True while the disk is full: the storage warns ahead of a write, a Ready's write waits for
   * space, or an automatic snapshot did not fit. The node keeps running; its owner should
   * refuse writes (507 NO_SPACE) until this is false again. Changes are emitted as 'no-space';
   * read it once after start(), when the disk may already be full.
   */
  get isOutOfSpace(): boolean {
    return this.runtime.isOutOfSpace;
  }

  /** Proposes a command; settles once it is committed and applied here (§5.3). Leader only. */
  propose(data: Uint8Array): Promise<Applied<R>> {
    this.assertRunning();
    const index = this.core.propose(data);
    if (isTracing) trace('propose', index);
    this.stats.proposals++;
    const term = this.core.currentTerm;
    const settled = this.waiters.proposal(index, term);
    this.schedule();
    return settled;
  }

  /**
   * Leader only: appends a command another member forwarded (etcd's MsgProp) and answers where it
   * went. Nobody waits here: the member that took the request, `from`, waits with
   * awaitForwarded().
   */
  proposeForwarded(data: Uint8Array, from: NodeId): { index: number; term: number } {
    this.assertRunning();
    const index = this.core.propose(data);
    if (isTracing) trace('propose', index);
    this.stats.proposals++;
    const n = this.forwardedIndexes.length;
    // A batch of forwarded commands comes in one turn: its newest index stands for all of them.
    if (n > this.forwardedHead && this.forwardedIndexes[n - 1] === index - 1 && this.forwardedBy[n - 1] === from) this.forwardedIndexes[n - 1] = index;
    else {
      this.forwardedIndexes.push(index);
      this.forwardedBy.push(from);
    }
    this.schedule();
    return { index, term: this.core.currentTerm };
  }

  /**
   * A proposal is about to be forwarded to the leader: until forwardAnswered(), applied results
   * are kept, so the entry can be matched even if it is applied before the leader's answer comes.
   */
  forwarding(count: number): void {
    this.forwardsUnanswered += count;
  }

  /** The leader answered (or did not) `count` proposals announced with forwarding(). */
  forwardAnswered(count: number): void {
    this.forwardsUnanswered -= count;
  }

  /**
   * Settles when the entry the leader appended at `index` in `term` for this node (see
   * proposeForwarded()) is applied here: with its result, or ProposalDroppedError if another
   * entry took its place. Call it before forwardAnswered() for the same proposal.
   */
  awaitForwarded(index: number, term: number): Promise<Applied<R>> {
    this.assertRunning();
    if (index > this.runtime.appliedIndex) return this.waiters.proposal(index, term);
    const hit = this.recentlyApplied.get(index);
    // Applied so long ago (or under a snapshot) that its result is gone: it may have applied.
    if (hit === undefined) return Promise.reject(new ProposalDroppedError(`entry ${index} was applied before the leader's answer arrived and its result is no longer held`, 'unknown'));
    if (hit.term !== term) return Promise.reject(new ProposalDroppedError(`entry ${index} was replaced by a newer leader's`));
    return Promise.resolve({ index, result: hit.result });
  }

  /**
   * Thesis §4.3: changes the membership and resolves once the change is complete, that is, the
   * joint configuration and then C_new are committed and applied here. Leader only.
   */
  async changeMembership(changes: readonly ConfigChange[], deadlineMs: number): Promise<Configuration> {
    this.assertRunning();
    const index = this.core.proposeConfigChange(changes);
    const term = this.core.currentTerm;
    const applied = this.waiters.proposal(index, term);
    this.schedule();
    await applied;
    // The leader appends C_new itself once C_old,new commits; wait for that too.
    await this.waitUntil(() => !isJoint(this.core.config) && this.runtime.appliedIndex >= this.core.configIndex, deadlineMs);
    return this.core.config;
  }

  /**
   * Thesis §3.10: hands leadership to `to` (or the most up-to-date voter) and resolves with the
   * new leader's id once it leads; rejects if the target has not won within an election timeout.
   */
  async transferLeadership(to: NodeId | null, deadlineMs: number): Promise<NodeId> {
    this.assertRunning();
    const target = this.core.transferLeadership(to);
    this.schedule();
    if (target === this.id) return target;
    await this.waitUntil(() => {
      if (this.core.leaderId === target && this.core.role !== 'leader') return true;
      // Another server won the election the transfer caused: the answer is known now.
      const winner = this.core.leaderId;
      if (this.core.role !== 'leader' && winner !== null && winner !== this.id) throw new ProposalDroppedError(`${winner} took over, not ${target}`);
      if (this.core.role === 'leader' && this.core.leadTransferee === null) throw new ProposalDroppedError(`${target} did not take over within an election timeout; ${this.id} still leads`);
      return false;
    }, deadlineMs);
    return target;
  }

  /** Resolves when `done()` holds after some Ready (or at once); rejects past the deadline. */
  private waitUntil(done: () => boolean, deadlineMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): boolean => {
        try {
          if (!done()) return false;
          resolve();
        } catch (err) {
          reject(err);
        }
        return true;
      };
      if (check()) return;
      const timer = setTimeout(() => {
        this.off('advanced', onAdvance);
        reject(new ProposalDroppedError('not completed within the deadline', 'unknown'));
      }, Math.max(0, deadlineMs - Date.now()));
      const onAdvance = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.off('advanced', onAdvance);
      };
      this.on('advanced', onAdvance);
    });
  }

  /**
   * Thesis §6.4: resolves with a read index once leadership is confirmed and this node has
   * applied up to it; a read of the state machine after that is linearizable. Leader only.
   */
  readIndex(): Promise<number> {
    this.assertRunning();
    const { id, settled } = this.waiters.read();
    try {
      this.core.readIndex(id);
    } catch (err) {
      this.waiters.dropRead(id);
      throw err;
    }
    this.schedule();
    return settled;
  }

  /** Resolves once this node's state machine has applied `index`. */
  waitApplied(index: number): Promise<number> {
    if (this.runtime.appliedIndex >= index) return Promise.resolve(index);
    this.assertRunning();
    const { id, settled } = this.waiters.waitApplied();
    this.runtime.awaitApplied(id, index);
    return settled;
  }

  /** A message from a peer (the transport calls this). */
  receive(m: Message): void {
    if (this.stopped) return;
    if (isTracing) traceMessage('recv', m);
    this.guard(() => this.runtime.receive(m));
    this.schedule(true);
  }

  reportUnreachable(id: NodeId): void {
    this.core.reportUnreachable(id);
    this.schedule();
  }

  reportSnapshot(id: NodeId, success: boolean): void {
    this.core.reportSnapshot(id, success);
    this.schedule();
  }

  /** Campaigns at once (tests, demos); normally elections start on their own. */
  campaign(): void {
    this.core.campaign();
    this.schedule();
  }

  /** Takes a snapshot now (the log before it is compacted); resolves with its index. */
  snapshotNow(): Promise<number> {
    return new Promise<number>((resolve, reject) => this.runtime.takeSnapshot((err, index) => (err === null ? resolve(index) : reject(err))));
  }

  /** After each Ready: the restart's replay is done once the commit index it started with is applied. */
  private checkReplayed(): void {
    if (this.runtime.appliedIndex < this.replayTo) return;
    this.logger.info('replayed', { index: this.replayTo, ms: Math.round(performance.now() - this.startedAt), cpuMs: processCpuMs() });
    this.replayTo = 0;
  }

  /** Runs the runtime's background load (Runtime.loadInBackground) when it says, to its end. */
  private async loadInBackground(): Promise<void> {
    const started = performance.now();
    for (let wait = this.runtime.loadInBackground(); wait !== null; wait = this.runtime.loadInBackground()) {
      // Unref'd: a load still waiting does not keep a stopping process alive.
      await new Promise<void>((resolve) => (wait === 0 ? setImmediate(resolve) : setTimeout(resolve, wait).unref()));
    }
    if (!this.stopped) this.logger.info('background load done', { ms: Math.round(performance.now() - started) });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.tickTimer);
    this.alarmLog.close();
    // A write in flight finishes first; one waiting for space is abandoned, as a crash would.
    await new Promise<void>((resolve) => this.runtime.stop(resolve));
    this.waiters.failAll(new StoppedError());
    try {
      await this.storage.close();
    } catch (err) {
      // What close() could not write for want of space was never acknowledged: losing it is
      // what a crash would do, and recovery is built for that.
      if (!isNoSpace(err)) throw err;
      this.logger.warn('stopped with writes that did not fit on the disk; they were never acknowledged', { error: (err as Error).message });
    }
  }

  // ---- hosting the runtime -----------------------------------------------------------------

  /**
   * Runs the runtime soon. A peer's message (`isMessage`) is taken in a microtask, at the end
   * of its socket chunk's frames: one loop turn less per step of a write, with batching intact
   * (a chunk is already a batch, and while a Ready is in flight everything waits for the next).
   * Proposals and ticks wait for setImmediate instead, so that every request the current poll
   * phase delivers (many clients at once) lands in one Ready and one sync. Nothing is scheduled
   * while a Ready is in flight: everything waits for the next one anyway.
   */
  private schedule(isMessage = false): void {
    // While a Ready is in flight the runtime pumps by itself when it completes. A snapshot in
    // flight does not hold Readies back: they go on beside it.
    if (this.stopped || this.runtime.isReadyInFlight) return;
    if (isMessage) {
      if (this.isMicrotaskScheduled) return;
      this.isMicrotaskScheduled = true;
      queueMicrotask(this.pumpFromMicrotask);
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.pumpFromImmediate);
  }

  private readonly pumpFromMicrotask = (): void => {
    this.isMicrotaskScheduled = false;
    this.pump();
  };

  private readonly pumpFromImmediate = (): void => {
    this.scheduled = false;
    this.pump();
  };

  private pump(): void {
    if (this.stopped) return;
    this.guard(() => this.runtime.pump());
  }

  /** Anything the runtime throws (a state machine that throws, a broken invariant) stops the node. */
  private guard(run: () => void): void {
    try {
      run();
    } catch (err) {
      this.runtime.fail(err);
    }
  }

  /** A port's completion, from a settled promise: whatever it runs next is guarded too. */
  private complete(done: Done, err: unknown): void {
    this.guard(() => done(err === null ? null : err instanceof Error ? err : new Error(String(err))));
  }

  private settle(write: Promise<void>, done: Done): void {
    write.then(
      () => this.complete(done, null),
      (err: unknown) => this.complete(done, err),
    );
  }

  /** The storage port: RaftStorage's promises as completions. */
  private storagePort(): StoragePort {
    const storage = this.storage;
    return {
      append: (entries) => storage.append(entries),
      setHardState: (state) => storage.setHardState(state),
      sync: (done) => this.settle(this.syncTimed(), done),
      installSnapshot: (snapshot, done) => this.settle(storage.installSnapshot(snapshot), done),
      saveSnapshot: (snapshot, done) => this.settle(storage.saveSnapshot(snapshot), done),
      compact: (index, done) => this.settle(storage.compact(index), done),
      ...(storage.readSnapshot !== undefined ? { readSnapshot: () => storage.readSnapshot!() } : {}),
      ...(storage.snapshotWriter !== undefined && storage.saveWrittenSnapshot !== undefined
        ? {
            snapshotWriter: (meta: SnapshotMeta) => storage.snapshotWriter!(meta),
            saveWrittenSnapshot: (writer: SnapshotWriter, done: Done) => this.settle(storage.saveWrittenSnapshot!(writer), done),
          }
        : {}),
    };
  }

  private async syncTimed(): Promise<void> {
    const t0 = performance.now();
    await this.storage.sync();
    this.stats.syncs++;
    const durations = this.stats.syncDurationsMs;
    if (durations.length < 10_000) durations.push(performance.now() - t0);
  }

  /**
   * Logs the Leader Completeness alarm (RuntimeHooks.contradicted) through the rate limit, so a
   * peer cannot flood the log with it; `refusals` is the core's count so far.
   */
  private raiseContradiction(m: Message): void {
    const refusals = this.core.droppedMessages['contradicts-committed'];
    this.alarmLog.log('leader-completeness', 'warn', LEADER_COMPLETENESS_ALARM, { from: m.from, term: m.term, type: m.type, commitIndex: this.core.commitIndex, refusals });
  }

  /** What RaftNode does at each of the runtime's steps: settle its callers, emit its events. */
  private hooks(): RuntimeHooks<R> {
    const waiters = this.waiters;
    return {
      contradicted: (m: Message) => this.raiseContradiction(m),
      applied: (e: Entry, result: R) => {
        if (isTracing) trace('applied', e.index);
        if (this.forwardsUnanswered > 0) this.recentlyApplied.record(e, result);
        if (waiters.applied(e, result) && isTracing) trace('resolve', e.index);
      },
      restored: (snapshot: Snapshot | SnapshotSource) => {
        waiters.rejectProposalsUpTo(snapshot.meta.index);
        this.emit('snapshot', 'data' in snapshot ? snapshot.data.length : snapshot.bytes, snapshot, 'restored');
      },
      // Its bytes are null when the state machine wrote them straight into storage.
      snapshotTaken: (snapshot: TakenSnapshot) => this.emit('snapshot', snapshot.bytes, snapshot, 'taken'),
      readsConfirmed: (readStates: readonly ReadState[]) => waiters.confirmed(readStates),
      readReady: (id: number, index: number) => waiters.resolveRead(id, index),
      isCommitAwaited: (rd: Ready) => {
        const idx = this.forwardedIndexes;
        if (this.forwardedHead === idx.length) return false;
        const last = rd.committedEntries[rd.committedEntries.length - 1]!.index;
        if (idx[this.forwardedHead]! > last) return false;
        while (this.forwardedHead < idx.length && idx[this.forwardedHead]! <= last) this.forwardedHead++;
        if (this.forwardedHead === idx.length) this.clearForwarded();
        return true;
      },
      stableAwaitedBy: (stableIndex: number, commitIndex: number) => {
        // The members whose forwarded batches are durable here now but not yet committed: each
        // can count our copy with its own.
        const idx = this.forwardedIndexes;
        let awaiting: NodeId[] | null = null;
        for (let i = this.forwardedHead; i < idx.length && idx[i]! <= stableIndex; i++) {
          if (idx[i]! <= commitIndex) continue;
          const by = this.forwardedBy[i]!;
          if (awaiting === null) awaiting = [by];
          else if (!awaiting.includes(by)) awaiting.push(by);
        }
        return awaiting;
      },
      softState: (soft: SoftState) => {
        if (soft.role !== 'leader') {
          this.clearForwarded();
          waiters.failUnconfirmedReads(new NotLeaderError(soft.leaderId));
        }
        this.emit('role', soft.role, soft.leaderId);
        this.logger.info('role changed', { role: soft.role, leader: soft.leaderId, term: this.core.currentTerm });
      },
      advanced: () => {
        if (this.replayTo !== 0) this.checkReplayed();
        this.emit('advanced');
      },
      // Between parts of a replay, timers (ticks) and peers' messages run: the election goes on
      // beside it instead of after it.
      yielded: () => this.schedule(),
      removed: (notice: RemovedNotice) => this.emit('removed', notice),
      fatal: (err: Error) => {
        this.stopped = true;
        clearInterval(this.tickTimer);
        this.emit('fatal', err);
      },
      spaceAlarm: (isRaised: boolean) => this.emit('no-space', isRaised),
      ...(isTracing ? TRACE_HOOKS : {}),
    };
  }

  private assertRunning(): void {
    const failure = this.runtime.failed;
    if (failure !== null) throw failure;
    if (this.stopped) throw new StoppedError();
  }
}

/** RAFTKV_TRACE_DIR: the points along a write's path (docs/benchmarks.md). */
const TRACE_HOOKS: RuntimeHooks<unknown> = {
  readyTaken(rd: Ready): void {
    trace('process', -1);
    if (rd.entries.length > 0) trace('ready-entries', rd.entries[rd.entries.length - 1]!.index);
    if (rd.committedEntries.length > 0) trace('ready-commit', rd.committedEntries[rd.committedEntries.length - 1]!.index);
  },
  synced(entries: readonly Entry[]): void {
    if (entries.length > 0) trace('synced', entries[entries.length - 1]!.index);
  },
  sent(m: Message): void {
    traceMessage('send', m);
  },
};
