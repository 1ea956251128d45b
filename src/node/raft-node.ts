// The runtime around the consensus core: real timers drive tick(), a single loop turns each Ready
// into disk writes, messages and applied entries: a leader's AppendEntries leave first, racing its
// own write (thesis §10.2.1, see handleReady); then the writes are queued and their sync started;
// messages that depend on them leave only AFTER the sync; committed entries are applied
// without waiting for that sync; advance() comes last. A commitIndex-only hard state is queued
// but not synced on its own. Proposals and reads become promises that settle when their entry is
// applied (or replaced by another leader's).
//
// A full disk is an alarm, not a crash (API.md, "Health and limits"): a Ready whose sync or
// snapshot install fails with NoSpaceError stays in flight (nothing advanced, nothing sent
// that depends on it) and is retried with backoff until it succeeds; an automatic snapshot
// that does not fit is skipped and retried later. Any other storage error stops the node.
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
  type Entry,
  type InitialState,
  type Message,
  type NodeId,
  type Ready,
  type Role,
  type Snapshot,
  type StateMachine,
} from '../raft/index.js';
import type { RaftStorage } from '../storage/types.js';
import { NO_SPACE_RETRY_MS, SNAPSHOT_RETRY_MS, SpaceAlarm, isNoSpace, nextBackoffMs } from './space-alarm.js';
import { isTracing, trace, traceMessage } from './trace.js';
import { Waiters } from './waiters.js';
import { DEFAULT_NODE_OPTIONS, SILENT_LOGGER, StoppedError, type Applied, type NodeLogger, type NodeStats, type PeerSender, type RaftNodeOptions } from './options.js';

/**
 * Events: `'role'` (role, leaderId) when either changes; `'removed'` (a RemovedNotice: who said
 * so, and the configuration entry) once this server learns it is out of the cluster, after which
 * its owner should stop it; `'no-space'` (active: boolean) whenever `isOutOfSpace` changes:
 * `true` when the disk is full (the storage's early warning, a Ready's write or snapshot install
 * retrying, an automatic snapshot that did not fit), `false` once all of that has cleared — the
 * node keeps running throughout, and its owner refuses writes meanwhile; `'fatal'` (Error) when
 * the Ready loop failed (a storage error other than a full disk) and the node stopped itself.
 * (`'advanced'`, after each handled Ready, is for its own waits.)
 */
export class RaftNode<R = unknown> extends EventEmitter {
  readonly id: NodeId;
  readonly core: Raft;
  readonly stats: NodeStats = { proposals: 0, appliedEntries: 0, syncs: 0, snapshotsTaken: 0, snapshotsInstalled: 0, syncDurationsMs: [] };
  private readonly storage: RaftStorage;
  private readonly sm: StateMachine<R>;
  private readonly transport: PeerSender;
  private readonly logger: NodeLogger;
  private readonly snapshotEntries: number;
  private readonly catchUpEntries: number;
  private readonly tickTimer: NodeJS.Timeout;
  private latestSnapshot: Snapshot | null;
  /**
   * What the state machine has really applied. The core's lastApplied can run ahead of it: a
   * snapshot stepped in while a Ready's sync is awaited moves it before the restore happens.
   */
  private applied: number;
  private readonly waiters = new Waiters<R>();
  private processing = false;
  private removalReported = false;
  private snapshotting: Promise<number> | null = null;
  private scheduled = false;
  private isMicrotaskScheduled = false;
  /** A Ready's own write is in flight and nothing else of that Ready is left but to wait for it. */
  private isAwaitingSync = false;
  private stopped = false;
  private failure: Error | null = null;
  private idle: Promise<void> = Promise.resolve();
  private idleResolve: (() => void) | null = null;
  private readonly spaceAlarm = new SpaceAlarm((isRaised) => this.emit('no-space', isRaised));
  /** Ends the current backoff wait at once (stop() uses it). */
  private wakeRetry: (() => void) | null = null;
  private snapshotRetryTimer: NodeJS.Timeout | null = null;
  private snapshotRetryMs = 0;

  static async start<R>(options: RaftNodeOptions<R>): Promise<RaftNode<R>> {
    let state: InitialState = await options.storage.load();
    const isEmpty = state.hardState.currentTerm === 0 && state.entries.length === 0 && state.snapshot === null;
    if (isEmpty && options.initialCluster !== undefined) {
      state = bootstrapState(options.initialCluster);
      options.storage.append(state.entries);
      options.storage.setHardState(state.hardState);
      await options.storage.sync();
    }
    const snapshot = await options.storage.loadSnapshot();
    if (snapshot !== null) options.stateMachine.restore(snapshot.data);
    const applied = snapshot?.meta.index ?? 0;
    return new RaftNode(options, { ...state, applied }, snapshot, !isEmpty);
  }

  private constructor(options: RaftNodeOptions<R>, state: InitialState, snapshot: Snapshot | null, restarted: boolean) {
    super();
    this.id = options.id;
    this.storage = options.storage;
    this.sm = options.stateMachine;
    this.transport = options.transport;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.snapshotEntries = options.snapshotEntries ?? DEFAULT_NODE_OPTIONS.snapshotEntries;
    this.catchUpEntries = options.snapshotCatchUpEntries ?? DEFAULT_NODE_OPTIONS.snapshotCatchUpEntries;
    this.latestSnapshot = snapshot;
    this.applied = state.applied;
    // Already raised at start: nobody listens yet, so owners read isOutOfSpace after start().
    const isStorageFull = options.storage.watchSpace?.((isFull) => this.spaceAlarm.set('storage', isFull)) ?? false;
    this.spaceAlarm.set('storage', isStorageFull);
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_NODE_OPTIONS.heartbeatMs;
    const electionMs = options.electionMs ?? DEFAULT_NODE_OPTIONS.electionMs;
    if (!(heartbeatMs > 0) || !(electionMs > heartbeatMs)) throw new Error('need 0 < heartbeatMs < electionMs');
    // Two ticks per heartbeat gives the randomized election timeout a finer grain.
    const tickMs = heartbeatMs / 2;
    this.core = new Raft(
      {
        id: options.id,
        random: options.random ?? Math.random,
        heartbeatTicks: 2,
        electionTicks: Math.max(3, Math.round(electionMs / tickMs)),
        restarted,
      },
      state,
    );
    this.tickTimer = setInterval(() => {
      this.core.tick();
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
    return this.applied;
  }

  get isLeader(): boolean {
    return this.core.role === 'leader';
  }

  /**
   * True while the disk is full: the storage warns ahead of a write, a Ready's write waits for
   * space, or an automatic snapshot did not fit. The node keeps running; its owner should
   * refuse writes (507 NO_SPACE) until this is false again. Changes are emitted as 'no-space';
   * read it once after start(), when the disk may already be full.
   */
  get isOutOfSpace(): boolean {
    return this.spaceAlarm.isRaised;
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
    await this.waitUntil(() => !isJoint(this.core.config) && this.applied >= this.core.configIndex, deadlineMs);
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
        reject(new ProposalDroppedError('not completed within the deadline; the outcome is unknown'));
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
    if (this.applied >= index) return Promise.resolve(index);
    this.assertRunning();
    return this.waiters.waitApplied(index);
  }

  /** A message from a peer (the transport calls this). */
  receive(m: Message): void {
    if (this.stopped) return;
    if (isTracing) traceMessage('recv', m);
    this.core.step(m);
    if (this.isAwaitingSync) this.applyCommittedEarly();
    this.schedule(true);
    if (this.core.removed !== null && !this.removalReported) this.reportRemoval();
  }

  /**
   * The core learned this server is out of the cluster: the leader said so once the entry that
   * removed it was committed, or, as leader, it committed a configuration without itself. Emits
   * 'removed' once; the node keeps running until its owner stops it.
   */
  private reportRemoval(): void {
    const notice = this.core.removed!;
    this.removalReported = true;
    this.logger.warn('removed from the cluster', { by: notice.by, configIndex: notice.configIndex });
    this.emit('removed', notice);
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
  async snapshotNow(): Promise<number> {
    await this.whenIdle();
    return this.takeSnapshot();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.tickTimer);
    if (this.snapshotRetryTimer !== null) clearTimeout(this.snapshotRetryTimer);
    this.wakeRetry?.();
    await this.whenIdle();
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

  // ---- the Ready loop --------------------------------------------------------------------------

  /**
   * Runs the Ready loop soon. A peer's message (`isMessage`) is taken in a microtask, at the end
   * of its socket chunk's frames: one loop turn less per step of a write, with batching intact
   * (a chunk is already a batch, and while a Ready is in flight everything waits for the next).
   * Proposals and ticks wait for setImmediate instead, so that every request the current poll
   * phase delivers (many clients at once) lands in one Ready and one sync.
   */
  private schedule(isMessage = false): void {
    if (this.processing || this.stopped) return;
    if (isMessage) {
      if (this.isMicrotaskScheduled) return;
      this.isMicrotaskScheduled = true;
      queueMicrotask(() => {
        this.isMicrotaskScheduled = false;
        void this.process();
      });
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.process();
    });
  }

  private whenIdle(): Promise<void> {
    return this.processing ? this.idle : Promise.resolve();
  }

  private async process(): Promise<void> {
    if (this.processing || this.failure !== null) return;
    this.processing = true;
    this.idle = new Promise((resolve) => (this.idleResolve = resolve));
    try {
      while (!this.stopped && this.core.hasReady()) {
        if (isTracing) trace('process', -1);
        await this.handleReady(this.core.ready());
        if (isTracing) trace('handled', -1);
        this.core.advance();
        this.emit('advanced');
        // While a snapshot that did not fit waits for its retry timer, the log just grows.
        if (!this.spaceAlarm.has('snapshot') && this.applied - this.core.snapshotIndex >= this.snapshotEntries + this.catchUpEntries) {
          await this.takeSnapshot().catch((err: unknown) => {
            if (!isNoSpace(err)) throw err;
          });
        }
      }
    } catch (err) {
      // stop() ended a wait for space: the Ready stays unhandled, as a crash would leave it.
      if (!(this.stopped && (err instanceof StoppedError || isNoSpace(err)))) this.failStop(err);
    } finally {
      this.processing = false;
      this.idleResolve?.();
    }
    if (!this.stopped && this.core.hasReady()) this.schedule();
  }

  /** Fail-stop: a node that cannot write its disk must not keep acting as if it had. */
  private failStop(err: unknown): void {
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.logger.error('storage failure; the node stops', { error: this.failure.message });
    this.stopped = true;
    clearInterval(this.tickTimer);
    if (this.snapshotRetryTimer !== null) clearTimeout(this.snapshotRetryTimer);
    this.emit('fatal', this.failure);
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (isTracing) {
      if (rd.entries.length > 0) trace('ready-entries', rd.entries[rd.entries.length - 1]!.index);
      if (rd.committedEntries.length > 0) trace('ready-commit', rd.committedEntries[rd.committedEntries.length - 1]!.index);
    }
    const snapshot = rd.snapshot;
    if (snapshot !== null) await this.untilSpace(() => this.storage.installSnapshot(snapshot));
    const needsSync = rd.mustSync;
    // 1. What the core says may leave before the sync (raft/types.ts, Ready steps 1–3): a
    // leader's AppendEntries race its own write (thesis §10.2.1). They leave first, flushed at
    // once, because a follower's sync, not ours, is usually the slower half of a commit.
    for (const m of rd.messages) this.sendMessage(m);
    if (rd.messages.length > 0) this.transport.flush?.();
    let held: readonly Message[] | null = null;
    if (!needsSync) {
      for (const m of rd.messagesAfterSync) this.sendMessage(m);
    } else if (rd.messagesAfterSync.length > 0) {
      held = rd.messagesAfterSync;
    }
    // 2. Persist: entries and hard state, one synced write for all of it (group commit).
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState !== null) {
      this.storage.setHardState(rd.hardState);
    }
    // On a full disk the storage keeps everything queued: the same sync is retried, and the
    // Ready stays in flight until it succeeds (the messages held below wait for it).
    const synced = needsSync ? this.untilSpace(() => this.syncTimed()) : null;
    // Awaited below; should applying throw first, a failed sync must not go unhandled meanwhile.
    synced?.catch(() => undefined);
    // 3. Apply. Committed entries are durable on a majority already: they need not wait for the
    // sync of this Ready's new entries.
    if (rd.snapshot !== null) {
      this.sm.restore(rd.snapshot.data);
      this.applied = rd.snapshot.meta.index;
      this.latestSnapshot = rd.snapshot;
      this.stats.snapshotsInstalled++;
      this.logger.info('installed snapshot', { index: rd.snapshot.meta.index, term: rd.snapshot.meta.term });
      this.waiters.rejectProposalsUpTo(rd.snapshot.meta.index);
    }
    for (const e of rd.committedEntries) {
      // applyCommittedEarly() may have applied it while the previous Ready's write was in flight.
      if (e.index > this.applied) this.applyEntry(e);
    }
    // 4. Reads whose leadership round is confirmed wait for the state machine to catch up.
    this.waiters.confirmed(rd.readStates);
    this.waiters.release(this.applied);
    if (rd.softState !== null) {
      if (rd.softState.role !== 'leader') this.waiters.failUnconfirmedReads(new NotLeaderError(rd.softState.leaderId));
      this.emit('role', rd.softState.role, rd.softState.leaderId);
      this.logger.info('role changed', { role: rd.softState.role, leader: rd.softState.leaderId, term: this.core.currentTerm });
    }
    if (this.core.removed !== null && !this.removalReported) this.reportRemoval();
    // 5. Only once the write is durable may what depends on it leave, and advance() follow.
    if (synced !== null) {
      this.isAwaitingSync = true;
      try {
        await synced;
      } finally {
        this.isAwaitingSync = false;
      }
    }
    if (isTracing && synced !== null && rd.entries.length > 0) trace('synced', rd.entries[rd.entries.length - 1]!.index);
    if (held !== null) {
      for (const m of held) this.sendMessage(m);
      // A follower's acknowledgement is the slow half of a commit: out at once.
      this.transport.flush?.();
    }
  }

  private sendMessage(m: Message): void {
    if (isTracing) traceMessage('send', m);
    this.transport.send(this.attachSnapshot(m));
  }

  /**
   * Runs `write` until it succeeds, retrying with backoff (NO_SPACE_RETRY_MS) while it fails
   * for want of space, with the alarm raised meanwhile. Nothing waits on a failed attempt but
   * this loop: the caller's Ready is neither advanced nor its dependent messages sent BEFORE
   * the write has succeeded. Any other error, or stop(), ends it.
   */
  private async untilSpace(write: () => Promise<void>): Promise<void> {
    let delayMs = 0;
    for (;;) {
      try {
        await write();
        if (delayMs > 0) {
          this.logger.info('disk space is back: the write went through');
          this.spaceAlarm.set('write', false);
        }
        return;
      } catch (err) {
        if (!isNoSpace(err) || this.stopped) throw err;
        if (delayMs === 0) {
          this.logger.warn('disk full: a write waits for space; retrying', { error: (err as Error).message });
          this.spaceAlarm.set('write', true);
        }
        delayMs = nextBackoffMs(delayMs, NO_SPACE_RETRY_MS);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(wake, delayMs);
          function wake(): void {
            clearTimeout(timer);
            resolve();
          }
          this.wakeRetry = wake;
        });
        this.wakeRetry = null;
        if (this.stopped) throw new StoppedError();
      }
    }
  }

  private async syncTimed(): Promise<void> {
    const t0 = performance.now();
    await this.storage.sync();
    this.stats.syncs++;
    const durations = this.stats.syncDurationsMs;
    if (durations.length < 10_000) durations.push(performance.now() - t0);
  }

  /**
   * Thesis §10.2.1: an entry is committed once a majority has it durably, with or without the
   * leader. The core counts that (its own copy only once stable), but hands out no Ready before
   * advance(), so a commit that two followers' acknowledgements made while our own write is in
   * flight would wait for that write. Apply it now instead, straight from the core's log: every
   * entry up to commitIndex is committed (Log Matching, §5.3). The next Ready repeats these
   * entries in committedEntries; handleReady skips them.
   */
  private applyCommittedEarly(): void {
    const to = Math.min(this.core.commitIndex, this.core.lastIndex);
    if (to <= this.applied) return;
    for (let index = this.applied + 1; index <= to; index++) {
      const e = this.core.entryAt(index);
      // Compacted under a snapshot that is about to be installed: the next Ready handles it.
      if (e === undefined) break;
      this.applyEntry(e);
    }
    this.waiters.release(this.applied);
  }

  private applyEntry(e: Entry): void {
    const result = this.sm.apply(e);
    this.applied = e.index;
    if (isTracing) trace('applied', e.index);
    this.stats.appliedEntries++;
    if (this.waiters.applied(e, result) && isTracing) trace('resolve', e.index);
  }

  /** The core sends InstallSnapshot without bytes; attach our newest saved snapshot (its own meta). */
  private attachSnapshot(m: Message): Message {
    if (m.type !== 'InstallSnapshot' || m.snapshot.data.length > 0) return m;
    const snap = this.latestSnapshot;
    if (snap === null || snap.meta.index < m.snapshot.meta.index) {
      throw new Error(`no saved snapshot covers index ${m.snapshot.meta.index}`);
    }
    return { ...m, snapshot: snap };
  }

  private takeSnapshot(): Promise<number> {
    // One snapshot at a time: the Ready loop, snapshotNow() and the retry timer may all ask.
    this.snapshotting ??= this.writeSnapshot()
      .then(
        (index) => {
          this.snapshotFitted();
          return index;
        },
        (err: unknown) => {
          if (isNoSpace(err)) this.snapshotDidNotFit(err);
          throw err;
        },
      )
      .finally(() => (this.snapshotting = null));
    return this.snapshotting;
  }

  /** Raises the alarm and retries later, with backoff (SNAPSHOT_RETRY_MS), on a timer of its own. */
  private snapshotDidNotFit(err: unknown): void {
    if (this.stopped) return;
    if (!this.spaceAlarm.has('snapshot')) this.logger.warn('disk full: the snapshot did not fit; retrying later', { error: (err as Error).message });
    this.spaceAlarm.set('snapshot', true);
    this.snapshotRetryMs = nextBackoffMs(this.snapshotRetryMs, SNAPSHOT_RETRY_MS);
    if (this.snapshotRetryTimer !== null) clearTimeout(this.snapshotRetryTimer);
    this.snapshotRetryTimer = setTimeout(() => {
      this.snapshotRetryTimer = null;
      if (this.stopped) return;
      this.snapshotNow().catch((retryErr: unknown) => {
        // Still no space: snapshotDidNotFit() has set the next try. Anything else is fatal,
        // as it would have been in the Ready loop.
        if (!isNoSpace(retryErr) && !this.stopped) this.failStop(retryErr);
      });
    }, this.snapshotRetryMs);
    this.snapshotRetryTimer.unref();
  }

  private snapshotFitted(): void {
    if (!this.spaceAlarm.has('snapshot')) return;
    this.snapshotRetryMs = 0;
    this.logger.info('disk space is back: the snapshot was taken');
    this.spaceAlarm.set('snapshot', false);
  }

  private async writeSnapshot(): Promise<number> {
    const applied = this.applied;
    // Nothing new, or a snapshot from the leader is about to replace our state: not now.
    // Also not while entries applied early are still ahead of what the core handed out.
    if (applied <= (this.latestSnapshot?.meta.index ?? 0) || applied < this.core.snapshotIndex || applied > this.core.lastApplied) {
      return this.latestSnapshot?.meta.index ?? 0;
    }
    const snapshot: Snapshot = { meta: this.core.snapshotMetaAt(applied), data: this.sm.snapshot() };
    await this.storage.saveSnapshot(snapshot);
    this.latestSnapshot = snapshot;
    this.stats.snapshotsTaken++;
    // Keep some entries behind the snapshot so a follower a little behind needs no snapshot.
    const compactTo = Math.max(this.core.snapshotIndex, applied - this.catchUpEntries);
    if (compactTo > this.core.snapshotIndex) {
      this.core.compact(compactTo);
      // A segment that cannot be deleted for want of space (copy-on-write file systems) is
      // deleted by a later compaction: the storage keeps its list.
      await this.storage.compact(compactTo).catch((err: unknown) => {
        if (!isNoSpace(err)) throw err;
        this.logger.warn('compaction deferred: no space to delete WAL segments', { error: (err as Error).message });
      });
    }
    this.logger.info('snapshot taken', { index: applied, compactedTo: compactTo });
    return applied;
  }

  private assertRunning(): void {
    if (this.failure !== null) throw this.failure;
    if (this.stopped) throw new StoppedError();
  }
}
