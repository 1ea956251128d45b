// The Raft consensus core: one server's state and its public API (Figure 2). Pure and
// deterministic: input arrives through tick(), step(), propose() and readIndex(); output leaves
// only through ready() (see `Ready` in types.ts for the order in which the runtime MUST persist,
// send, apply and advance()). The rules live a file per concept, as functions of this state:
// roles.ts (§5.2), election.ts (§5.2, §5.4.1, thesis §9.6), follower.ts (the AppendEntries and
// InstallSnapshot receivers, §5.3, §7), leader.ts (§5.3, §5.4.2, thesis §3.10, §4.3, §6.2),
// replication.ts (sending AppendEntries, heartbeats and ReadIndex rounds, thesis §6.4),
// membership.ts and config-history.ts (the configuration in force, thesis §4.1), outbox.ts
// (which messages may leave before their Ready's sync) and validate.ts (what a received message
// must look like before it may change anything). The log (log.ts) keeps its own stable and
// unstable cursors.
import { applyChanges, transitionTo, type ConfigChange } from './confchange.js';
import { ConfigHistory } from './config-history.js';
import { isJoint, isVoter } from './configuration.js';
import { handleRequestVote, startElection, tickElection } from './election.js';
import { ChangeInProgressError, NotLeaderError, ProposalDroppedError } from './errors.js';
import { answerStaleRequest, commitFromDurableCopies, stepCandidate, stepFollower } from './follower.js';
import { afterCommitAdvanced, appendConfig, maybeCommit, sendTimeoutNow, stepLeader, tickLeader } from './leader.js';
import { RaftLog } from './log.js';
import { configAt, lastConfigIndex, noteConfigEntry, voterIds, type Departure } from './membership.js';
import type { Progress, ProgressState } from './progress.js';
import { committedIndex } from './quorum.js';
import { EMPTY_ENTRIES, ReadIndexQueue } from './read-index.js';
import { ROUND_HISTORY, broadcastAppend, broadcastHeartbeat, readPoint, releaseConfirmedReads, sendAppend, startRound } from './replication.js';
import { afterLeaderAppend, becomeFollower, inLease } from './roles.js';
import { isWellFormed, refusal, type DropReason } from './validate.js';
import {
  MAX_INDEX,
  type Configuration,
  type Entry,
  type HardState,
  type InitialState,
  type Message,
  type NodeId,
  type ReadState,
  type RemovedNotice,
  type Ready,
  type Role,
  type Snapshot,
  type SnapshotMeta,
  type SoftState,
} from './types.js';

export interface RaftOptions {
  id: NodeId;
  /** Injected randomness in [0, 1): a seeded generator makes every run replayable. */
  random: () => number;
  /** @default 10 — the election timeout is drawn from [electionTicks, 2 × electionTicks). */
  electionTicks?: number;
  /** @default 1 */
  heartbeatTicks?: number;
  /** @default true — thesis §9.6 */
  preVote?: boolean;
  /** @default true — thesis §6.2 */
  checkQuorum?: boolean;
  /** @default 256 — unacknowledged AppendEntries per replicating follower */
  maxInflightMessages?: number;
  /** @default 1 MiB — entry bytes per AppendEntries */
  maxBytesPerMessage?: number;
  /**
   * @default 16 MiB — unacknowledged entry bytes per replicating follower (at most
   * maxBytesPerMessage × maxInflightMessages). A follower far behind is sent a window at once:
   * this bounds what one round of its catch-up encodes and queues.
   */
  maxInflightBytes?: number;
  /**
   * @default 512 KiB — committed entry bytes handed out per Ready. A restart replays the log
   * since its snapshot (up to a tenth of the state: ~30 MB at 1M keys); in one Ready that was one
   * synchronous apply of seconds, with no tick and no message handled, so the election waited
   * for the replay instead of running beside it. 512 KiB of 300-byte writes apply in ~8 ms:
   * ticks are not lost and a pre-vote is answered within a part (4 MiB parts held the loop
   * ~60–90 ms each; bench:scale's restart A/B, docs/benchmarks.md "Ninth session").
   */
  maxCommittedBytesPerReady?: number;
  /**
   * @default false — the state was read back from stable storage after a crash or restart (not
   * bootstrapped, not an empty joiner). With CheckQuorum the server then refuses to help elect a
   * leader for its first election timeout: it may have been part of a leader's lease (§6.4.1).
   */
  restarted?: boolean;
  /**
   * @default 0 — ticks known to have passed since this server's previous run stopped (at least
   * the time a restart spent reading its state back). They count toward the restart's lease
   * window (§6.4.1) and advance its first election timeout, as etcd's election tick advance does:
   * a cluster restarted whole elects a leader once the lease windows are over, not a full
   * randomized timeout after that. Only for a restart (`restarted`); a host that cannot know
   * (a node stopped and started within one process) leaves it 0.
   */
  downTicks?: number;
  /**
   * @default new Uint8Array(bytes) — where the log copies the entries it keeps (entry-arena.ts):
   * a host may give its own byte arrays (a Node host: Buffers, so that entries read back from
   * the log are Buffers too). Called with slab sizes (1 MiB) and with the size of a large entry.
   */
  allocateEntryBytes?: (bytes: number) => Uint8Array;
}

export const DEFAULT_RAFT_OPTIONS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  maxInflightMessages: 256,
  maxBytesPerMessage: 1 << 20,
  maxInflightBytes: 16 << 20,
  maxCommittedBytesPerReady: 512 << 10,
  restarted: false,
  downTicks: 0,
} as const satisfies Omit<Required<RaftOptions>, 'id' | 'random' | 'allocateEntryBytes'>;

/**
 * Thesis §6.4.1: a leader lease lasts this fraction of the election timeout from the start of a
 * heartbeat round a majority acknowledged. The remainder absorbs clock drift: leases are safe as
 * long as no server's clock runs more than 10% fast relative to the leader's.
 */
export const LEASE_FRACTION = 0.9;

const EMPTY_MESSAGES: readonly Message[] = Object.freeze([]);
const EMPTY_READ_STATES: readonly ReadState[] = Object.freeze([]);

export interface ProgressView {
  readonly matchIndex: number;
  readonly nextIndex: number;
  readonly state: ProgressState;
}

/**
 * One Raft server. Members marked `@internal` are its state, shared with the step functions of
 * the files named at the top; they are not part of the API, which is everything unmarked.
 */
export class Raft {
  readonly id: NodeId;
  /** @internal */ readonly opts: Required<Omit<RaftOptions, 'id' | 'random' | 'allocateEntryBytes'>>;
  /** @internal */ readonly random: () => number;

  // Persistent state on all servers (Figure 2); the log itself is `log`.
  /** @internal */ term: number;
  /** @internal */ vote: NodeId | null;
  /** @internal */ readonly log: RaftLog;
  // Volatile state.
  /** @internal */ commit: number;
  /** @internal */ applied: number;
  /**
   * The host's state machine is not loaded yet (a restart that restores it beside the running
   * core): Readies hand out no committed entry until releaseApply(). Everything else (votes,
   * appends, commits, a leader's snapshot) goes on; none of it needs the state machine.
   */
  private applyHeld = false;
  /** @internal */ currentRole: Role = 'follower';
  /** @internal */ leader: NodeId | null = null;

  /** @internal */ electionElapsed = 0;
  /** @internal */ heartbeatElapsed = 0;
  /** @internal */ randomizedElectionTimeout = 0;
  /** @internal */ readonly votes = new Map<NodeId, boolean>();
  /** @internal */ readonly progresses = new Map<NodeId, Progress>();
  /** @internal Leader round, carried by every AppendEntries and echoed back; ReadIndex counts echoes. */
  seq = 0;
  /** @internal */ readonly reads = new ReadIndexQueue();
  /** @internal Logical clock (ticks since start) and the tick at which each recent round began. */
  ticks = 0;
  /** @internal */ readonly roundStartTick = new Array<number>(ROUND_HISTORY).fill(-1);

  /** @internal Configuration history (thesis §4.1): the latest config entry in the log is in force. */
  readonly configs: ConfigHistory;

  /** @internal Index of the last configuration entry this leader appended (thesis §4.3: one at a time). */
  pendingConfigIndex = 0;
  /** @internal Thesis §3.10: the server leadership is being handed to, and ticks since the handoff began. */
  transferee: NodeId | null = null;
  /** @internal */ transferElapsed = 0;
  /** @internal Servers the leader's configuration dropped, still replicated to until told (membership.ts). */
  readonly departing = new Map<NodeId, Departure>();
  /** @internal Set once this server learns it is out of the cluster. */
  removedNotice: RemovedNotice | null = null;
  /** @internal Follower: its log matches the current leader's up to here (Log Matching, §5.3). */
  leaderMatch = 0;
  /** @internal Follower: the highest durable index the current leader announced (AppendEntries.leaderStable). */
  leaderStable = 0;
  /** @internal Leader: the stable index announceStable() last sent. */
  announcedStable = 0;
  /**
   * @internal Leader: the highest `leaderStable` any AppendEntries of this term carried. A
   * follower may count an entry up to it committed, and answer a write, before this leader has
   * heard of the commit (follower.ts, commitFromDurableCopies): reads must cover it (readPoint).
   */
  stableSentMax = 0;
  /** @internal Times this server, as follower, moved its commit index by its own count (commitFromDurableCopies). */
  followerCommits = 0;
  /** @internal The index the latest of those moves committed. */
  countedCommit = 0;

  // Ready bookkeeping.
  /** @internal Messages that may leave before the next Ready's sync (outbox.ts decides). */
  messages: Message[] = [];
  /** @internal Messages that MUST wait until the next Ready's writes are durable. */
  messagesAfterSync: Message[] = [];
  /** @internal */ readStates: ReadState[] = [];
  private lastHardState: HardState;
  private lastSoftState: SoftState;
  /** @internal */ snapshotToInstall: Snapshot | null = null;
  /** @internal New entries on the leader not yet offered to followers: one broadcast per Ready batches them. */
  hasUnsentEntries = false;
  private readyInFlight: { lastIndex: number; lastTerm: number } | null = null;
  private readonly drops: Record<DropReason, number> = { invalid: 0, 'not-leader': 0, 'stale-sender': 0, misaddressed: 0, 'contradicts-committed': 0 };
  /** @internal Counts a received message dropped for `reason`. */
  countDrop(reason: DropReason): void {
    this.drops[reason]++;
  }

  constructor(options: RaftOptions, state: InitialState) {
    this.id = options.id;
    this.random = options.random;
    this.opts = {
      electionTicks: options.electionTicks ?? DEFAULT_RAFT_OPTIONS.electionTicks,
      heartbeatTicks: options.heartbeatTicks ?? DEFAULT_RAFT_OPTIONS.heartbeatTicks,
      preVote: options.preVote ?? DEFAULT_RAFT_OPTIONS.preVote,
      checkQuorum: options.checkQuorum ?? DEFAULT_RAFT_OPTIONS.checkQuorum,
      maxInflightMessages: options.maxInflightMessages ?? DEFAULT_RAFT_OPTIONS.maxInflightMessages,
      maxBytesPerMessage: options.maxBytesPerMessage ?? DEFAULT_RAFT_OPTIONS.maxBytesPerMessage,
      maxInflightBytes: options.maxInflightBytes ?? DEFAULT_RAFT_OPTIONS.maxInflightBytes,
      maxCommittedBytesPerReady: options.maxCommittedBytesPerReady ?? DEFAULT_RAFT_OPTIONS.maxCommittedBytesPerReady,
      restarted: options.restarted ?? DEFAULT_RAFT_OPTIONS.restarted,
      downTicks: options.restarted === true ? wholeTicks(options.downTicks) : 0,
    };
    if (this.opts.heartbeatTicks >= this.opts.electionTicks) {
      throw new Error('heartbeatTicks must be smaller than electionTicks');
    }
    this.term = state.hardState.currentTerm;
    this.vote = state.hardState.votedFor;
    this.log = new RaftLog(state.snapshot, state.entries, options.allocateEntryBytes === undefined ? {} : { allocate: options.allocateEntryBytes });
    this.configs = new ConfigHistory(state.snapshot?.config ?? { voters: [], votersOutgoing: [], learners: [] });
    for (const e of state.entries) noteConfigEntry(this, e);
    this.applied = Math.max(state.applied, this.log.snapshotIndex);
    this.commit = Math.min(Math.max(state.hardState.commitIndex, this.applied), this.log.lastIndex);
    this.lastHardState = { currentTerm: this.term, votedFor: this.vote, commitIndex: this.commit };
    this.lastSoftState = { role: 'follower', leaderId: null };
    becomeFollower(this, this.term, null);
    // The time it was down counts as time without hearing from a leader, up to one tick short of
    // an election timeout: the first campaign still comes at a randomized point, in [1, E] ticks
    // when the restart took at least E (split votes stay rare when a whole cluster restarts).
    this.electionElapsed = Math.min(this.opts.downTicks, this.opts.electionTicks - 1);
  }

  // ---- read-only views ---------------------------------------------------------------------

  get role(): Role { return this.currentRole; }
  get currentTerm(): number { return this.term; }
  get votedFor(): NodeId | null { return this.vote; }
  get leaderId(): NodeId | null { return this.leader; }
  get commitIndex(): number { return this.commit; }
  get lastApplied(): number { return this.applied; }
  get lastIndex(): number { return this.log.lastIndex; }
  get lastTerm(): number { return this.log.lastTerm; }
  get snapshotIndex(): number { return this.log.snapshotIndex; }
  get snapshotTerm(): number { return this.log.snapshotTerm; }
  get config(): Configuration { return this.configs.inForce; }
  /** @internal The configuration in force (thesis §4.1), for the step functions. */
  get configuration(): Configuration { return this.configs.inForce; }
  get leadTransferee(): NodeId | null { return this.transferee; }
  /**
   * Set once this server knows it is out of the cluster: the leader told it (a `Removed` message),
   * or, as leader, it committed a configuration without itself. The runtime may then stop it.
   */
  get removed(): RemovedNotice | null { return this.removedNotice; }
  /** Index of the entry that holds the configuration in force (its snapshot's, if compacted). */
  get configIndex(): number { return lastConfigIndex(this); }
  /**
   * Received messages dropped without changing anything, by reason (validate.ts), since this
   * core was built. Live counters: read them, never write them.
   */
  get droppedMessages(): Readonly<Record<DropReason, number>> { return this.drops; }
  /** Times this server, as a follower, committed by counting the leader's durable copy with its own (follower.ts). */
  get commitsCountedAsFollower(): number { return this.followerCommits; }
  /** The index this server's latest commit by its own count reached (0: none yet). */
  get lastCountedCommit(): number { return this.countedCommit; }
  termAt(index: number): number | undefined { return this.log.termAt(index); }
  entryAt(index: number): Entry | undefined { return this.log.entryAt(index); }

  progress(id: NodeId): ProgressView | undefined {
    if (this.currentRole !== 'leader') return undefined;
    if (id === this.id) return { matchIndex: this.log.stableIndex, nextIndex: this.log.lastIndex + 1, state: 'replicate' };
    const pr = this.progresses.get(id);
    return pr === undefined ? undefined : { matchIndex: pr.matchIndex, nextIndex: pr.nextIndex, state: pr.state };
  }

  // ---- inputs --------------------------------------------------------------------------------

  tick(): void {
    this.ticks++;
    if (this.currentRole === 'leader') tickLeader(this);
    else tickElection(this);
  }

  /** Starts an election now, as if the election timeout had elapsed (§5.2). */
  campaign(): void {
    startElection(this, this.opts.preVote ? 'pre-vote' : 'vote', false);
  }

  propose(data: Uint8Array): number {
    return this.proposeBatch([data]);
  }

  /** §5.3: the leader appends the commands to its log; returns the first new index. */
  proposeBatch(data: readonly Uint8Array[]): number {
    this.assertCanPropose(data.length);
    const first = this.log.lastIndex + 1;
    const term = this.term;
    for (let i = 0; i < data.length; i++) {
      this.log.appendOne({ index: first + i, term, type: 'normal', data: data[i]! });
    }
    afterLeaderAppend(this);
    return first;
  }

  /**
   * Thesis §6.4: records the commit index as the read index (or further: readPoint) and confirms
   * leadership with a heartbeat round; a ReadState follows once a majority has answered that round.
   */
  readIndex(requestId: number): void {
    if (this.currentRole !== 'leader') throw new NotLeaderError(this.leader);
    // Until the leader commits an entry of its own term it does not know the commit point (§8).
    if (this.log.termAt(this.commit) !== this.term) {
      this.reads.deferUntilCommit(requestId);
      return;
    }
    startRound(this);
    this.reads.add(requestId, readPoint(this), this.seq);
    broadcastHeartbeat(this);
    releaseConfirmedReads(this);
  }

  /**
   * Thesis §4.3: proposes a membership change; returns the index of its configuration entry.
   * One change at a time; and, after Ongaro's 2015 correction, not before this leader has
   * committed an entry of its own term (else a change by a deposed leader could be lost while a
   * conflicting one commits).
   */
  proposeConfigChange(changes: readonly ConfigChange[]): number {
    // Room for C_old,new and the C_new that ends it (thesis §4.3).
    this.assertCanPropose(2);
    if (this.log.termAt(this.commit) !== this.term) {
      throw new ProposalDroppedError('this leader has not yet committed an entry of its term; retry shortly');
    }
    if (isJoint(this.configuration) || this.pendingConfigIndex > this.commit) throw new ChangeInProgressError();
    const next = applyChanges(this.configuration, changes);
    return appendConfig(this, transitionTo(this.configuration, next));
  }

  /**
   * Thesis §3.10: hands leadership to `to` (or, if null, the voter with the longest log): stop
   * taking proposals, bring the target up to date, then tell it to campaign at once. If it has
   * not won within an election timeout, this leader carries on.
   */
  transferLeadership(to: NodeId | null): NodeId {
    if (this.currentRole !== 'leader') throw new NotLeaderError(this.leader);
    let target = to;
    if (target === null) {
      let best = -1;
      for (const id of voterIds(this)) {
        const pr = this.progresses.get(id);
        if (id !== this.id && pr !== undefined && pr.matchIndex > best) {
          best = pr.matchIndex;
          target = id;
        }
      }
      if (target === null) throw new ProposalDroppedError('there is no other voter to hand leadership to');
    }
    if (target === this.id) return target;
    if (!isVoter(this.configuration, target) || !this.progresses.has(target)) {
      throw new ProposalDroppedError(`${target} is not a voter of this cluster`);
    }
    if (this.transferee === target) return target;
    this.transferee = target;
    this.transferElapsed = 0;
    const pr = this.progresses.get(target)!;
    if (pr.matchIndex === this.log.lastIndex) sendTimeoutNow(this, target);
    else sendAppend(this, pr, false);
    return target;
  }

  /**
   * Thesis §6.4.1: the index a lease read may be served at, with no round trip, or null when
   * the lease has lapsed (or this server is not a leader that has committed in its term).
   * Followers ignore vote requests for an election timeout after hearing from the leader
   * (CheckQuorum), so no other leader can exist before the lease ends.
   */
  leaseReadIndex(): number | null {
    // During a transfer the target may win without waiting out anyone's lease.
    if (this.currentRole !== 'leader' || !this.opts.checkQuorum || this.transferee !== null) return null;
    if (this.log.termAt(this.commit) !== this.term) return null;
    const quorumSeq = committedIndex(this.configuration, (id) => (id === this.id ? this.seq : this.progresses.get(id)?.ackedSeq ?? 0));
    if (this.seq - quorumSeq >= ROUND_HISTORY) return null;
    const started = this.roundStartTick[quorumSeq % ROUND_HISTORY]!;
    if (started < 0 || this.ticks >= started + Math.floor(this.opts.electionTicks * LEASE_FRACTION)) return null;
    return readPoint(this);
  }

  /**
   * Receives one message. Every message is checked BEFORE it may change anything: one that is
   * malformed, out of bounds, or that no correct server could have sent to this one in its
   * state is dropped and counted in `droppedMessages`, never thrown on (only a bug may stop a
   * node, never input).
   */
  step(m: Message): void {
    const refused = m.to !== this.id ? 'misaddressed' : isWellFormed(m, this.id) ? refusal(this, m) : 'invalid';
    if (refused !== null) {
      this.countDrop(refused);
      return;
    }
    if (m.term > this.term) {
      if (m.type === 'RequestVote' && !m.transfer && inLease(this)) {
        // Thesis §4.2.3 / §6.2: a server that heard from a leader within the minimum election
        // timeout neither updates its term nor grants a vote, so removed or partitioned servers
        // cannot depose a healthy leader.
        return;
      }
      const keepsTerm =
        (m.type === 'RequestVote' && m.preVote) || (m.type === 'RequestVoteResponse' && m.preVote && m.voteGranted);
      if (!keepsTerm) {
        // §5.1: a higher term makes us a follower of that term.
        const leader = m.type === 'AppendEntries' || m.type === 'InstallSnapshot' || m.type === 'Removed' ? m.from : null;
        becomeFollower(this, m.term, leader);
      }
    } else if (m.term < this.term) {
      answerStaleRequest(this, m);
      return;
    }

    if (m.type === 'RequestVote') {
      handleRequestVote(this, m);
      return;
    }
    switch (this.currentRole) {
      case 'leader':
        stepLeader(this, m);
        break;
      case 'candidate':
      case 'pre-candidate':
        stepCandidate(this, m);
        break;
      case 'follower':
        stepFollower(this, m);
        break;
      default: {
        const never: never = this.currentRole;
        throw new Error(`unknown role ${String(never)}`);
      }
    }
  }

  /**
   * Hands out no committed entry until releaseApply(): the host restores its state machine from
   * the snapshot beside the running core (a restart), and applies nothing before it is loaded.
   */
  holdApply(): void {
    this.applyHeld = true;
  }

  /** The state machine is loaded (or was replaced by a leader's snapshot): committed entries flow again. */
  releaseApply(): void {
    this.applyHeld = false;
  }

  get isApplyHeld(): boolean {
    return this.applyHeld;
  }

  // ---- Ready / advance -------------------------------------------------------------------------

  hasReady(): boolean {
    if (this.readyInFlight !== null) return false;
    return (
      this.hasUnsentEntries ||
      this.messages.length > 0 ||
      this.messagesAfterSync.length > 0 ||
      this.log.hasUnstable ||
      this.snapshotToInstall !== null ||
      (!this.applyHeld && this.applied < Math.min(this.commit, this.log.lastIndex)) ||
      this.readStates.length > 0 ||
      this.hardStateChanged() ||
      this.softStateChanged()
    );
  }

  ready(): Ready {
    if (this.readyInFlight !== null) throw new Error('ready() called again before advance()');
    if (this.hasUnsentEntries) {
      this.hasUnsentEntries = false;
      if (this.currentRole === 'leader') broadcastAppend(this);
    }
    const lastIndex = this.log.lastIndex;
    const entries = this.log.hasUnstable ? this.log.takeUnstable() : EMPTY_ENTRIES;
    const applyTo = Math.min(this.commit, lastIndex);
    const committedEntries =
      !this.applyHeld && this.applied < applyTo ? this.log.slice(this.applied + 1, applyTo + 1, this.opts.maxCommittedBytesPerReady) : EMPTY_ENTRIES;
    const hardState = this.hardStateChanged() ? { currentTerm: this.term, votedFor: this.vote, commitIndex: this.commit } : null;
    const softState = this.softStateChanged() ? { role: this.currentRole, leaderId: this.leader } : null;
    const changesTermOrVote = this.hasUnsyncedTermOrVote();
    let messages: readonly Message[] = this.messages.length > 0 ? this.messages : EMPTY_MESSAGES;
    let messagesAfterSync: readonly Message[] = this.messagesAfterSync.length > 0 ? this.messagesAfterSync : EMPTY_MESSAGES;
    if (changesTermOrVote && messages.length > 0) {
      // Made before the change, in the term that was durable then, these would be safe to send;
      // but the contract stays one sentence: a Ready that changes term or vote sends nothing
      // before its sync.
      messagesAfterSync = messages.concat(messagesAfterSync);
      messages = EMPTY_MESSAGES;
    }
    const snapshot = this.snapshotToInstall;
    const rd: Ready = {
      softState,
      hardState,
      snapshot,
      entries,
      messages,
      messagesAfterSync,
      committedEntries,
      readStates: this.readStates.length > 0 ? this.readStates : EMPTY_READ_STATES,
      // A commitIndex-only hard state need not be synced on its own: commitIndex is not needed
      // for safety (types.ts HardState), so it rides along with the next sync.
      mustSync: entries.length > 0 || snapshot !== null || changesTermOrVote,
    };
    if (hardState !== null) this.lastHardState = hardState;
    if (softState !== null) this.lastSoftState = softState;
    if (committedEntries.length > 0) this.applied = committedEntries[committedEntries.length - 1]!.index;
    this.snapshotToInstall = null;
    if (this.messages.length > 0) this.messages = [];
    if (this.messagesAfterSync.length > 0) this.messagesAfterSync = [];
    if (this.readStates.length > 0) this.readStates = [];
    this.readyInFlight = { lastIndex, lastTerm: this.log.lastTerm };
    return rd;
  }

  advance(): void {
    const done = this.readyInFlight;
    if (done === null) throw new Error('advance() without a ready()');
    this.readyInFlight = null;
    this.log.stableTo(done.lastIndex, done.lastTerm);
    if (this.currentRole === 'leader') {
      if (maybeCommit(this)) afterCommitAdvanced(this);
    } else if (this.currentRole === 'follower') {
      commitFromDurableCopies(this);
    }
  }

  /** The last index of this server's log that is durable (a leader counts its own copy up to here). */
  get stableIndex(): number {
    return this.log.stableIndex;
  }

  /**
   * Leader: tells the followers `to` (those replicating) this server's durable index now (an empty
   * AppendEntries carrying `leaderStable`), instead of with the next entries. A follower whose
   * own copy is durable can then count both toward a majority (follower.ts,
   * commitFromDurableCopies) one message sooner than the commit index would reach it: what a
   * member that forwarded a write waits for (RuntimeHooks.stableAwaitedBy). Does nothing when
   * new entries are about to go out anyway (they carry it), or when this index was announced
   * already. Returns whether it sent anything.
   */
  announceStable(to: readonly NodeId[]): boolean {
    const stable = this.log.stableIndex;
    if (this.currentRole !== 'leader' || this.hasUnsentEntries || stable <= this.announcedStable) return false;
    this.announcedStable = stable;
    let sent = false;
    for (const id of to) {
      const pr = this.progresses.get(id);
      if (pr === undefined || pr.state !== 'replicate' || pr.isPaused()) continue;
      sendAppend(this, pr, true);
      sent = true;
    }
    return sent;
  }

  // ---- snapshots (§7) ----------------------------------------------------------------------------

  snapshotMetaAt(index: number): SnapshotMeta {
    if (index < this.log.snapshotIndex || index > this.applied) {
      throw new Error(`no snapshot can be taken at ${index}: valid range is [${this.log.snapshotIndex}, ${this.applied}]`);
    }
    return { index, term: this.log.termAt(index)!, config: configAt(this, index) };
  }

  /** The runtime saved a snapshot at `index`: the log before it can go (§7). */
  compact(index: number): void {
    if (index <= this.log.snapshotIndex) return;
    if (index > this.applied) throw new Error(`cannot compact to ${index}: only applied up to ${this.applied}`);
    this.configs.compact(index);
    this.log.compact(index, this.log.termAt(index)!);
  }

  reportUnreachable(id: NodeId): void {
    const pr = this.progresses.get(id);
    if (this.currentRole === 'leader' && pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, success: boolean): void {
    const pr = this.progresses.get(id);
    if (this.currentRole !== 'leader' || pr === undefined || pr.state !== 'snapshot') return;
    if (!success) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat) before probing.
    pr.probeSent = success;
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private assertCanPropose(count: number): void {
    if (this.currentRole !== 'leader') throw new NotLeaderError(this.leader);
    // Past MAX_INDEX no follower would accept the entries (validate.ts).
    if (this.log.lastIndex + count > MAX_INDEX) throw new ProposalDroppedError('the log has reached its largest index');
    if (this.transferee !== null) throw new ProposalDroppedError(`leadership is being transferred to ${this.transferee}`);
    if (!isVoter(this.configuration, this.id)) throw new ProposalDroppedError('this leader is leaving the cluster');
  }

  /** @internal currentTerm or votedFor changed since the last Ready handed the hard state to storage. */
  hasUnsyncedTermOrVote(): boolean {
    const h = this.lastHardState;
    return h.currentTerm !== this.term || h.votedFor !== this.vote;
  }

  private hardStateChanged(): boolean {
    const h = this.lastHardState;
    return h.currentTerm !== this.term || h.votedFor !== this.vote || h.commitIndex !== this.commit;
  }

  private softStateChanged(): boolean {
    const s = this.lastSoftState;
    return s.role !== this.currentRole || s.leaderId !== this.leader;
  }
}

/** A tick count a host gave: a whole number of ticks, 0 for anything that is not one. */
function wholeTicks(n: number | undefined): number {
  return n !== undefined && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}
