// The Raft consensus core: one server's state and the rules of Figure 2, §5–§8 of the paper and
// thesis §3.10, §4, §6.2, §6.4, §9.6. Pure and deterministic: input arrives through tick(),
// step(), propose() and readIndex(); output leaves only through ready() (see `Ready` in
// types.ts for the order in which the runtime MUST persist, send, apply and advance()).
import { applyChanges, leaveJoint, transitionTo, type ConfigChange } from './confchange.js';
import { decodeConfiguration, encodeConfiguration, isJoint, isVoter, members } from './configuration.js';
import { ChangeInProgressError, NotLeaderError, ProposalDroppedError } from './errors.js';
import { RaftLog, entryBytes } from './log.js';
import { Progress, type ProgressState } from './progress.js';
import { committedIndex, hasQuorum, voteResult } from './quorum.js';
import type {
  AppendEntries,
  AppendEntriesResponse,
  Configuration,
  Entry,
  HardState,
  InitialState,
  InstallSnapshot,
  InstallSnapshotResponse,
  Message,
  NodeId,
  ReadState,
  Ready,
  RequestVote,
  RequestVoteResponse,
  Role,
  Snapshot,
  SnapshotMeta,
  SoftState,
} from './types.js';
import { EMPTY_ENTRIES, ReadIndexQueue } from './read-index.js';

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
  /** @default 64 MiB — committed entry bytes handed out per Ready */
  maxCommittedBytesPerReady?: number;
}

export const DEFAULT_RAFT_OPTIONS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  maxInflightMessages: 256,
  maxBytesPerMessage: 1 << 20,
  maxCommittedBytesPerReady: 64 << 20,
} as const satisfies Omit<Required<RaftOptions>, 'id' | 'random'>;

/** Heartbeat rounds a replicating follower may go without progress before we re-probe it. */
const STALL_HEARTBEATS = 3;
/**
 * Thesis §6.4.1: a leader lease lasts this fraction of the election timeout from the start of a
 * heartbeat round a majority acknowledged. The remainder absorbs clock drift: leases are safe as
 * long as no server's clock runs more than 10% fast relative to the leader's.
 */
export const LEASE_FRACTION = 0.9;
const ROUND_HISTORY = 256;
/** Election timeouts to wait for an InstallSnapshot's answer before sending it again. */
const SNAPSHOT_TIMEOUT_ELECTIONS = 5;
const EMPTY_DATA = new Uint8Array(0);

export interface ProgressView {
  readonly matchIndex: number;
  readonly nextIndex: number;
  readonly state: ProgressState;
}

export class Raft {
  readonly id: NodeId;
  private readonly opts: Required<Omit<RaftOptions, 'id' | 'random'>>;
  private readonly random: () => number;

  // Persistent state on all servers (Figure 2); the log itself is `log`.
  private term: number;
  private vote: NodeId | null;
  private readonly log: RaftLog;
  // Volatile state.
  private commit: number;
  private applied: number;
  private currentRole: Role = 'follower';
  private leader: NodeId | null = null;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly votes = new Map<NodeId, boolean>();
  private readonly progresses = new Map<NodeId, Progress>();
  /** Leader round, carried by every AppendEntries and echoed back; ReadIndex counts echoes. */
  private seq = 0;
  private readonly reads = new ReadIndexQueue();
  /** Logical clock (ticks since start) and the tick at which each recent round began. */
  private ticks = 0;
  private readonly roundStartTick = new Array<number>(ROUND_HISTORY).fill(-1);

  // Configuration (thesis §4.1): the latest config entry in the log is in force.
  private configuration: Configuration;
  private snapshotConfiguration: Configuration;
  private readonly configEntries: { index: number; config: Configuration }[] = [];

  /** Index of the last configuration entry this leader appended (thesis §4.3: one at a time). */
  private pendingConfigIndex = 0;
  /** Thesis §3.10: the server leadership is being handed to, and ticks since the handoff began. */
  private transferee: NodeId | null = null;
  private transferElapsed = 0;

  // Ready bookkeeping.
  private messages: Message[] = [];
  private readStates: ReadState[] = [];
  /** First index not yet handed to storage in a Ready. */
  private unstableFrom: number;
  /** Highest index known to be on this server's stable storage (the leader counts only these). */
  private stableIndex: number;
  private lastHardState: HardState;
  private lastSoftState: SoftState;
  private snapshotToInstall: Snapshot | null = null;
  /** New entries on the leader not yet offered to followers: one broadcast per Ready batches them. */
  private hasUnsentEntries = false;
  private readyInFlight: { lastIndex: number; lastTerm: number } | null = null;

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
      maxCommittedBytesPerReady: options.maxCommittedBytesPerReady ?? DEFAULT_RAFT_OPTIONS.maxCommittedBytesPerReady,
    };
    if (this.opts.heartbeatTicks >= this.opts.electionTicks) {
      throw new Error('heartbeatTicks must be smaller than electionTicks');
    }
    this.term = state.hardState.currentTerm;
    this.vote = state.hardState.votedFor;
    this.log = new RaftLog(state.snapshot, state.entries);
    this.snapshotConfiguration = state.snapshot?.config ?? { voters: [], votersOutgoing: [], learners: [] };
    this.configuration = this.snapshotConfiguration;
    for (const e of state.entries) this.noteConfigEntry(e);
    this.applied = Math.max(state.applied, this.log.snapshotIndex);
    this.commit = Math.min(Math.max(state.hardState.commitIndex, this.applied), this.log.lastIndex);
    this.unstableFrom = this.log.lastIndex + 1;
    this.stableIndex = this.log.lastIndex;
    this.lastHardState = { currentTerm: this.term, votedFor: this.vote, commitIndex: this.commit };
    this.lastSoftState = { role: 'follower', leaderId: null };
    this.becomeFollower(this.term, null);
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
  get config(): Configuration { return this.configuration; }
  get leadTransferee(): NodeId | null { return this.transferee; }
  /** Index of the entry that holds the configuration in force (its snapshot's, if compacted). */
  get configIndex(): number { return this.lastConfigIndex(); }
  termAt(index: number): number | undefined { return this.log.termAt(index); }
  entryAt(index: number): Entry | undefined { return this.log.entryAt(index); }

  progress(id: NodeId): ProgressView | undefined {
    if (this.currentRole !== 'leader') return undefined;
    if (id === this.id) return { matchIndex: this.stableIndex, nextIndex: this.log.lastIndex + 1, state: 'replicate' };
    const pr = this.progresses.get(id);
    return pr === undefined ? undefined : { matchIndex: pr.matchIndex, nextIndex: pr.nextIndex, state: pr.state };
  }

  // ---- inputs --------------------------------------------------------------------------------

  tick(): void {
    this.ticks++;
    if (this.currentRole === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Starts an election now, as if the election timeout had elapsed (§5.2). */
  campaign(): void {
    this.startElection(this.opts.preVote ? 'pre-vote' : 'vote', false);
  }

  propose(data: Uint8Array): number {
    return this.proposeBatch([data]);
  }

  /** §5.3: the leader appends the commands to its log; returns the first new index. */
  proposeBatch(data: readonly Uint8Array[]): number {
    this.assertCanPropose();
    const first = this.log.lastIndex + 1;
    const term = this.term;
    for (let i = 0; i < data.length; i++) {
      this.log.appendOne({ index: first + i, term, type: 'normal', data: data[i]! });
    }
    this.afterLeaderAppend();
    return first;
  }

  /**
   * Thesis §6.4: records the commit index as the read index and confirms leadership with a
   * heartbeat round; a ReadState follows once a majority has answered that round.
   */
  readIndex(requestId: number): void {
    if (this.currentRole !== 'leader') throw new NotLeaderError(this.leader);
    // Until the leader commits an entry of its own term it does not know the commit point (§8).
    if (this.log.termAt(this.commit) !== this.term) {
      this.reads.deferUntilCommit(requestId);
      return;
    }
    this.startRound();
    this.reads.add(requestId, this.commit, this.seq);
    this.broadcastHeartbeat();
    this.releaseConfirmedReads();
  }

  /**
   * Thesis §4.3: proposes a membership change; returns the index of its configuration entry.
   * One change at a time; and, after Ongaro's 2015 correction, not before this leader has
   * committed an entry of its own term (else a change by a deposed leader could be lost while a
   * conflicting one commits).
   */
  proposeConfigChange(changes: readonly ConfigChange[]): number {
    this.assertCanPropose();
    if (this.log.termAt(this.commit) !== this.term) {
      throw new ProposalDroppedError('this leader has not yet committed an entry of its term; retry shortly');
    }
    if (isJoint(this.configuration) || this.pendingConfigIndex > this.commit) throw new ChangeInProgressError();
    const next = applyChanges(this.configuration, changes);
    return this.appendConfig(transitionTo(this.configuration, next));
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
      for (const id of this.voterIds()) {
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
    if (pr.matchIndex === this.log.lastIndex) this.sendTimeoutNow(target);
    else this.sendAppend(pr, false);
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
    return this.commit;
  }

  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.term) {
      if (m.type === 'RequestVote' && !m.transfer && this.inLease()) {
        // Thesis §4.2.3 / §6.2: a server that heard from a leader within the minimum election
        // timeout neither updates its term nor grants a vote, so removed or partitioned servers
        // cannot depose a healthy leader.
        return;
      }
      const keepsTerm =
        (m.type === 'RequestVote' && m.preVote) || (m.type === 'RequestVoteResponse' && m.preVote && m.voteGranted);
      if (!keepsTerm) {
        // §5.1: a higher term makes us a follower of that term.
        const leader = m.type === 'AppendEntries' || m.type === 'InstallSnapshot' ? m.from : null;
        this.becomeFollower(m.term, leader);
      }
    } else if (m.term < this.term) {
      this.answerStaleRequest(m);
      return;
    }

    if (m.type === 'RequestVote') {
      this.handleRequestVote(m);
      return;
    }
    switch (this.currentRole) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
      default: {
        const never: never = this.currentRole;
        throw new Error(`unknown role ${String(never)}`);
      }
    }
  }

  // ---- Ready / advance -------------------------------------------------------------------------

  hasReady(): boolean {
    if (this.readyInFlight !== null) return false;
    return (
      this.hasUnsentEntries ||
      this.messages.length > 0 ||
      this.unstableFrom <= this.log.lastIndex ||
      this.snapshotToInstall !== null ||
      this.applied < Math.min(this.commit, this.log.lastIndex) ||
      this.readStates.length > 0 ||
      this.hardStateChanged() ||
      this.softStateChanged()
    );
  }

  ready(): Ready {
    if (this.readyInFlight !== null) throw new Error('ready() called again before advance()');
    if (this.hasUnsentEntries) {
      this.hasUnsentEntries = false;
      if (this.currentRole === 'leader') this.broadcastAppend();
    }
    const lastIndex = this.log.lastIndex;
    const entries = this.unstableFrom <= lastIndex ? this.log.slice(this.unstableFrom, lastIndex + 1) : EMPTY_ENTRIES;
    const applyTo = Math.min(this.commit, lastIndex);
    const committedEntries =
      this.applied < applyTo ? this.log.slice(this.applied + 1, applyTo + 1, this.opts.maxCommittedBytesPerReady) : EMPTY_ENTRIES;
    const hardState = this.hardStateChanged() ? { currentTerm: this.term, votedFor: this.vote, commitIndex: this.commit } : null;
    const softState = this.softStateChanged() ? { role: this.currentRole, leaderId: this.leader } : null;
    const rd: Ready = {
      softState,
      hardState,
      snapshot: this.snapshotToInstall,
      entries,
      messages: this.messages,
      committedEntries,
      readStates: this.readStates,
    };
    if (hardState !== null) this.lastHardState = hardState;
    if (softState !== null) this.lastSoftState = softState;
    if (committedEntries.length > 0) this.applied = committedEntries[committedEntries.length - 1]!.index;
    this.snapshotToInstall = null;
    this.messages = [];
    this.readStates = [];
    this.unstableFrom = lastIndex + 1;
    this.readyInFlight = { lastIndex, lastTerm: this.log.lastTerm };
    return rd;
  }

  advance(): void {
    const done = this.readyInFlight;
    if (done === null) throw new Error('advance() without a ready()');
    this.readyInFlight = null;
    // Entries count as stable only if nothing replaced them while they were being written.
    if (done.lastIndex > this.stableIndex && this.log.termAt(done.lastIndex) === done.lastTerm) {
      this.stableIndex = done.lastIndex;
    }
    if (this.currentRole === 'leader' && this.maybeCommit()) this.afterCommitAdvanced();
  }

  // ---- snapshots (§7) ----------------------------------------------------------------------------

  snapshotMetaAt(index: number): SnapshotMeta {
    if (index < this.log.snapshotIndex || index > this.applied) {
      throw new Error(`no snapshot can be taken at ${index}: valid range is [${this.log.snapshotIndex}, ${this.applied}]`);
    }
    return { index, term: this.log.termAt(index)!, config: this.configAt(index) };
  }

  /** The runtime saved a snapshot at `index`: the log before it can go (§7). */
  compact(index: number): void {
    if (index <= this.log.snapshotIndex) return;
    if (index > this.applied) throw new Error(`cannot compact to ${index}: only applied up to ${this.applied}`);
    this.snapshotConfiguration = this.configAt(index);
    this.log.compact(index, this.log.termAt(index)!);
    while (this.configEntries.length > 0 && this.configEntries[0]!.index <= index) this.configEntries.shift();
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

  // ---- roles (§5.2) --------------------------------------------------------------------------

  private becomeFollower(term: number, leader: NodeId | null): void {
    if (term > this.term) {
      this.term = term;
      this.vote = null;
    }
    this.currentRole = 'follower';
    this.leader = leader;
    this.transferee = null;
    this.resetTimers();
    this.reads.clear();
  }

  private becomePreCandidate(): void {
    // Thesis §9.6: a pre-candidate keeps its term; only a won pre-vote lets it bump the term.
    this.currentRole = 'pre-candidate';
    this.leader = null;
    this.resetTimers();
  }

  private becomeCandidate(): void {
    this.term++;
    this.vote = this.id;
    this.currentRole = 'candidate';
    this.leader = null;
    this.resetTimers();
  }

  private becomeLeader(): void {
    this.currentRole = 'leader';
    this.leader = this.id;
    this.transferee = null;
    this.resetTimers();
    this.progresses.clear();
    this.syncProgresses();
    // A configuration entry of an earlier term may still be uncommitted: treat it as in flight.
    this.pendingConfigIndex = this.lastConfigIndex();
    // §8: a no-op entry of the new term lets the leader learn, and commit, everything before it.
    this.log.appendOne({ index: this.log.lastIndex + 1, term: this.term, type: 'normal', data: EMPTY_DATA });
    this.afterLeaderAppend();
  }

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.votes.clear();
    // §5.2: randomized in [electionTicks, 2 × electionTicks) so split votes are rare.
    this.randomizedElectionTimeout = this.opts.electionTicks + Math.floor(this.random() * this.opts.electionTicks);
  }

  private inLease(): boolean {
    return this.opts.checkQuorum && this.leader !== null && this.electionElapsed < this.opts.electionTicks;
  }

  // ---- elections (§5.2, §5.4.1, thesis §9.6) -----------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout && isVoter(this.configuration, this.id)) {
      this.campaign();
    }
  }

  private startElection(kind: 'pre-vote' | 'vote', transfer: boolean): void {
    if (!isVoter(this.configuration, this.id)) return;
    if (kind === 'pre-vote') this.becomePreCandidate();
    else this.becomeCandidate();
    const preVote = kind === 'pre-vote';
    const term = preVote ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (this.countVotes()) return;
    const lastLogIndex = this.log.lastIndex;
    const lastLogTerm = this.log.lastTerm;
    for (const id of this.voterIds()) {
      if (id === this.id) continue;
      const rv: RequestVote = { type: 'RequestVote', from: this.id, to: id, term, preVote, lastLogIndex, lastLogTerm, transfer };
      this.messages.push(rv);
    }
  }

  /** Tallies votes; on a decision acts on it and returns true. */
  private countVotes(): boolean {
    const result = voteResult(this.configuration, this.votes);
    if (result === 'won') {
      if (this.currentRole === 'pre-candidate') this.startElection('vote', false);
      else this.becomeLeader();
      return true;
    }
    if (result === 'lost') {
      this.becomeFollower(this.term, null);
      return true;
    }
    return false;
  }

  /** Figure 2, RequestVote receiver; thesis §9.6 for pre-votes. */
  private handleRequestVote(m: RequestVote): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.leader === null) ||
      (m.preVote && m.term > this.term);
    const grant = canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    const response: RequestVoteResponse = {
      type: 'RequestVoteResponse',
      from: this.id,
      to: m.from,
      // A grant carries the term asked about, so a pre-candidate can tell it from stale grants.
      term: grant ? m.term : this.term,
      preVote: m.preVote,
      voteGranted: grant,
    };
    if (grant && !m.preVote) {
      // One vote per term: recorded in hardState, which is durable BEFORE this response leaves.
      this.vote = m.from;
      this.electionElapsed = 0;
    }
    this.messages.push(response);
  }

  private stepCandidate(m: Exclude<Message, RequestVote>): void {
    switch (m.type) {
      case 'AppendEntries':
        // §5.2: a leader of this term exists; step down and follow it.
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'InstallSnapshot':
        this.becomeFollower(m.term, m.from);
        this.handleInstallSnapshot(m);
        return;
      case 'RequestVoteResponse': {
        const isPre = this.currentRole === 'pre-candidate';
        if (m.preVote !== isPre) return;
        if (isPre && m.voteGranted && m.term !== this.term + 1) return;
        this.votes.set(m.from, m.voteGranted);
        this.countVotes();
        return;
      }
      case 'AppendEntriesResponse':
      case 'InstallSnapshotResponse':
      case 'TimeoutNow':
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  private stepFollower(m: Exclude<Message, RequestVote>): void {
    switch (m.type) {
      case 'AppendEntries':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppendEntries(m);
        return;
      case 'InstallSnapshot':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleInstallSnapshot(m);
        return;
      case 'TimeoutNow':
        // Thesis §3.10: the leader chose us; campaign at once, skipping pre-vote and the lease.
        this.startElection('vote', true);
        return;
      case 'RequestVoteResponse':
      case 'AppendEntriesResponse':
      case 'InstallSnapshotResponse':
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  /** §5.1: "If a server receives a request with a stale term number, it rejects the request." */
  private answerStaleRequest(m: Message): void {
    switch (m.type) {
      case 'AppendEntries':
      case 'InstallSnapshot':
        // The answer carries our newer term, which makes a stale leader step down. It MUST NOT
        // echo the request's round (seq 0 acknowledges none): if the sender leads our newer
        // term by the time it arrives — say, restarted, with its round count back at 0 — it
        // would take the echo as an acknowledgement of its own round and confirm ReadIndex
        // reads and leases no majority ever answered (thesis §6.4, §6.4.1).
        this.messages.push(this.appendResponse(m.from, false, 0, 0, 0, 0, 0));
        return;
      case 'RequestVote':
        this.messages.push({ type: 'RequestVoteResponse', from: this.id, to: m.from, term: this.term, preVote: m.preVote, voteGranted: false });
        return;
      default:
        return;
    }
  }

  // ---- the follower side of replication (Figure 2, AppendEntries receiver; §7) -----------------

  private handleAppendEntries(m: AppendEntries): void {
    let prevLogIndex = m.prevLogIndex;
    let prevLogTerm = m.prevLogTerm;
    let entries = m.entries;
    if (prevLogIndex < this.commit) {
      // Everything up to our commitIndex is committed, hence in every later leader's log (§5.4):
      // skip what we already hold and check consistency at the commit point instead.
      const skip = this.commit - prevLogIndex;
      if (skip >= entries.length) {
        this.messages.push(this.appendResponse(m.from, true, this.commit, 0, 0, 0, m.seq));
        return;
      }
      prevLogTerm = entries[skip - 1]!.term;
      prevLogIndex = this.commit;
      entries = entries.slice(skip);
    }
    const localTerm = this.log.termAt(prevLogIndex);
    if (localTerm !== prevLogTerm) {
      // §5.3: reject, with a hint that lets the leader skip a whole term at a time.
      const conflictTerm = localTerm ?? 0;
      const conflictIndex = localTerm === undefined ? this.log.lastIndex + 1 : this.log.firstIndexOfTerm(localTerm, prevLogIndex);
      this.messages.push(this.appendResponse(m.from, false, 0, m.prevLogIndex, conflictTerm, conflictIndex, m.seq));
      return;
    }
    // §5.3: delete a conflicting entry and all that follow it, but never a matching prefix: a
    // stale, shorter AppendEntries must not undo what a later one appended.
    let i = 0;
    for (; i < entries.length; i++) {
      const e = entries[i]!;
      const t = this.log.termAt(e.index);
      if (t === undefined) break;
      if (t !== e.term) {
        if (e.index <= this.commit) throw new Error(`leader ${m.from} conflicts with committed entry ${e.index}`);
        this.truncateFrom(e.index);
        break;
      }
    }
    if (i < entries.length) {
      for (; i < entries.length; i++) {
        const e = entries[i]!;
        this.log.appendOne(e);
        if (e.type === 'config') this.noteConfigEntry(e);
      }
    }
    const lastNew = prevLogIndex + entries.length;
    // Figure 2: commitIndex = min(leaderCommit, index of last new entry).
    const newCommit = Math.min(m.leaderCommit, lastNew);
    if (newCommit > this.commit) this.commit = newCommit;
    this.messages.push(this.appendResponse(m.from, true, lastNew, 0, 0, 0, m.seq));
  }

  private handleInstallSnapshot(m: InstallSnapshot): void {
    const meta = m.snapshot.meta;
    if (meta.index <= this.commit) {
      // Older than what we know is committed: nothing to do but say where we are.
      this.messages.push(this.snapshotResponse(m.from, this.commit, m.seq));
      return;
    }
    if (this.log.termAt(meta.index) === meta.term) {
      // §7: we already hold the snapshot's last entry; keep the log that follows it.
      this.commit = meta.index;
      this.messages.push(this.snapshotResponse(m.from, meta.index, m.seq));
      return;
    }
    // §7: discard the entire log and take the snapshot's state and configuration.
    this.log.restore(meta.index, meta.term);
    this.configEntries.length = 0;
    this.snapshotConfiguration = meta.config;
    this.configuration = meta.config;
    this.commit = meta.index;
    this.applied = meta.index;
    this.unstableFrom = meta.index + 1;
    this.stableIndex = Math.min(this.stableIndex, meta.index);
    this.snapshotToInstall = m.snapshot;
    this.messages.push(this.snapshotResponse(m.from, meta.index, m.seq));
  }

  private appendResponse(to: NodeId, success: boolean, matchIndex: number, rejectedIndex: number, conflictTerm: number, conflictIndex: number, seq: number): AppendEntriesResponse {
    return { type: 'AppendEntriesResponse', from: this.id, to, term: this.term, success, matchIndex, rejectedIndex, conflictTerm, conflictIndex, seq };
  }

  private snapshotResponse(to: NodeId, matchIndex: number, seq: number): InstallSnapshotResponse {
    return { type: 'InstallSnapshotResponse', from: this.id, to, term: this.term, matchIndex, seq };
  }

  private truncateFrom(index: number): void {
    this.log.truncateFrom(index);
    if (this.unstableFrom > index) this.unstableFrom = index;
    if (this.stableIndex >= index) this.stableIndex = index - 1;
    // A configuration takes effect when appended, so removing its entry reverts it (thesis §4.1).
    let changed = false;
    while (this.configEntries.length > 0 && this.configEntries[this.configEntries.length - 1]!.index >= index) {
      this.configEntries.pop();
      changed = true;
    }
    if (changed) this.configuration = this.configEntries.at(-1)?.config ?? this.snapshotConfiguration;
  }

  // ---- the leader side of replication (§5.3, §5.4.2) -------------------------------------------

  private stepLeader(m: Exclude<Message, RequestVote>): void {
    switch (m.type) {
      case 'AppendEntriesResponse':
        this.handleAppendResponse(m);
        return;
      case 'InstallSnapshotResponse':
        this.handleSnapshotResponse(m);
        return;
      case 'AppendEntries':
      case 'InstallSnapshot':
      case 'RequestVoteResponse':
      case 'TimeoutNow':
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.transferee !== null && ++this.transferElapsed >= this.opts.electionTicks) {
      // Thesis §3.10: the target did not win within an election timeout; resume as leader,
      // and finish a joint configuration whose C_new waited for the transfer.
      this.transferee = null;
      if (isJoint(this.configuration) && this.commit >= this.lastConfigIndex()) this.afterCommitAdvanced();
    }
    if (this.electionElapsed >= this.opts.electionTicks) {
      this.electionElapsed = 0;
      if (this.opts.checkQuorum) {
        // Thesis §6.2: a leader that cannot hear a majority steps down, so clients go elsewhere.
        const active = hasQuorum(this.configuration, (id) => id === this.id || this.progresses.get(id)?.recentActive === true);
        for (const pr of this.progresses.values()) pr.recentActive = false;
        if (!active) {
          this.becomeFollower(this.term, null);
          return;
        }
      }
    }
    for (const pr of this.progresses.values()) {
      if (pr.state === 'snapshot' && ++pr.snapshotTicks > SNAPSHOT_TIMEOUT_ELECTIONS * this.opts.electionTicks) {
        pr.pendingSnapshot = 0;
        pr.becomeProbe();
      }
    }
    if (this.heartbeatElapsed >= this.opts.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.startRound();
      this.broadcastHeartbeat();
    }
  }

  private handleAppendResponse(m: AppendEntriesResponse): void {
    const pr = this.progresses.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.seq > pr.ackedSeq) {
      pr.ackedSeq = m.seq;
      this.releaseConfirmedReads();
    }
    if (!m.success) {
      this.handleRejection(pr, m);
      return;
    }
    if (!pr.maybeUpdate(m.matchIndex)) {
      if (pr.state === 'probe' && pr.matchIndex < this.log.lastIndex) {
        pr.probeSent = false;
        this.sendAppend(pr, false);
      }
      return;
    }
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.matchIndex >= pr.pendingSnapshot) pr.becomeProbe();
    else if (pr.state === 'replicate') pr.inflights.freeUpTo(pr.matchIndex);
    if (m.from === this.transferee && pr.matchIndex === this.log.lastIndex) this.sendTimeoutNow(m.from);
    if (this.maybeCommit()) this.afterCommitAdvanced();
    else this.sendAppend(pr, false);
  }

  private handleRejection(pr: Progress, m: AppendEntriesResponse): void {
    // A rejection of something at or below the known match point, or of a probe we no longer
    // wait for, is stale (reordered or duplicated) and says nothing new.
    if (m.rejectedIndex <= pr.matchIndex) return;
    if (pr.state === 'probe' && m.rejectedIndex !== pr.nextIndex - 1) return;
    if (pr.state === 'snapshot') return;
    // §5.3 optimisation: if we hold entries of the follower's conflicting term, resume after our
    // last one of that term; otherwise skip the follower's whole term.
    let next = m.conflictIndex;
    if (m.conflictTerm > 0) {
      const last = this.log.lastIndexOfTerm(m.conflictTerm, m.rejectedIndex);
      if (last > 0) next = last + 1;
    }
    next = Math.max(Math.min(next, m.rejectedIndex), pr.matchIndex + 1);
    pr.becomeProbe();
    pr.nextIndex = next;
    this.sendAppend(pr, false);
  }

  private handleSnapshotResponse(m: InstallSnapshotResponse): void {
    const pr = this.progresses.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.seq > pr.ackedSeq) {
      pr.ackedSeq = m.seq;
      this.releaseConfirmedReads();
    }
    pr.maybeUpdate(m.matchIndex);
    if (pr.state === 'snapshot') pr.becomeProbe();
    if (this.maybeCommit()) this.afterCommitAdvanced();
    else this.sendAppend(pr, false);
  }

  /** Figure 2 / §5.4.2: commit the highest index a majority stores, if it is of our term. */
  private maybeCommit(): boolean {
    const index = committedIndex(this.configuration, (id) => (id === this.id ? this.stableIndex : this.progresses.get(id)?.matchIndex ?? 0));
    // Figure 8: an entry of an earlier term is never committed by counting replicas; it is
    // committed indirectly once an entry of the current term above it is.
    if (index <= this.commit || this.log.termAt(index) !== this.term) return false;
    const firstInTerm = this.log.termAt(this.commit) !== this.term;
    this.commit = index;
    if (firstInTerm) this.promoteDeferredReads();
    return true;
  }

  /** Tells followers the new commit point and carries joint consensus forward (thesis §4.3). */
  private afterCommitAdvanced(): void {
    const configIndex = this.lastConfigIndex();
    if (this.commit >= configIndex) {
      if (isJoint(this.configuration)) {
        // C_old,new is committed: now C_new alone. Not during a transfer (thesis §3.10: the
        // leader appends nothing then, or the target's log falls behind and it cannot win);
        // the new leader, or this one when the transfer lapses, appends C_new.
        if (this.transferee === null) {
          this.appendConfig(leaveJoint(this.configuration));
          return;
        }
      }
      if (!isVoter(this.configuration, this.id)) {
        // A leader outside C_new manages the change to its end, then steps down.
        this.broadcastAppend();
        this.becomeFollower(this.term, null);
        return;
      }
    }
    this.broadcastAppend();
  }

  private appendConfig(config: Configuration): number {
    const entry: Entry = { index: this.log.lastIndex + 1, term: this.term, type: 'config', data: encodeConfiguration(config) };
    this.log.appendOne(entry);
    this.noteConfigEntry(entry);
    this.pendingConfigIndex = entry.index;
    this.afterLeaderAppend();
    return entry.index;
  }

  private lastConfigIndex(): number {
    return this.configEntries.at(-1)?.index ?? this.log.snapshotIndex;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.messages.push({ type: 'TimeoutNow', from: this.id, to, term: this.term });
  }

  private afterLeaderAppend(): void {
    // Proposals between two Readies leave in one AppendEntries per follower, not one each.
    this.hasUnsentEntries = true;
  }

  private assertCanPropose(): void {
    if (this.currentRole !== 'leader') throw new NotLeaderError(this.leader);
    if (this.transferee !== null) throw new ProposalDroppedError(`leadership is being transferred to ${this.transferee}`);
    if (!isVoter(this.configuration, this.id)) throw new ProposalDroppedError('this leader is leaving the cluster');
  }

  private broadcastAppend(): void {
    for (const pr of this.progresses.values()) this.sendAppend(pr, true);
  }

  /**
   * Heartbeats are empty AppendEntries (§5.2) anchored at the follower's match point, which its
   * log is known to hold, so they never conflict; they carry the round number for ReadIndex.
   */
  private broadcastHeartbeat(): void {
    for (const pr of this.progresses.values()) {
      if (pr.state === 'probe') {
        // A probe answers for the heartbeat too, and replaces one that may have been lost.
        pr.probeSent = false;
        this.sendAppend(pr, true);
        continue;
      }
      if (pr.state === 'replicate') {
        if (pr.inflights.count > 0 && pr.matchIndex === pr.matchAtLastHeartbeat) {
          // No progress for several rounds with messages outstanding: some were lost; re-probe.
          if (++pr.stalledHeartbeats >= STALL_HEARTBEATS) {
            pr.becomeProbe();
            this.sendAppend(pr, true);
            continue;
          }
        } else {
          pr.stalledHeartbeats = 0;
        }
        pr.matchAtLastHeartbeat = pr.matchIndex;
      }
      const term = this.log.termAt(pr.matchIndex);
      const prevLogIndex = term === undefined ? 0 : pr.matchIndex;
      const hb: AppendEntries = {
        type: 'AppendEntries', from: this.id, to: pr.id, term: this.term,
        prevLogIndex, prevLogTerm: term ?? 0, entries: EMPTY_ENTRIES,
        leaderCommit: Math.min(this.commit, prevLogIndex), seq: this.seq,
      };
      this.messages.push(hb);
    }
  }

  private sendAppend(pr: Progress, sendIfEmpty: boolean): void {
    if (pr.isPaused()) return;
    const prevLogIndex = pr.nextIndex - 1;
    const prevLogTerm = this.log.termAt(prevLogIndex);
    if (prevLogTerm === undefined) {
      this.sendSnapshot(pr);
      return;
    }
    const lastIndex = this.log.lastIndex;
    const entries = pr.nextIndex <= lastIndex ? this.log.slice(pr.nextIndex, lastIndex + 1, this.opts.maxBytesPerMessage) : EMPTY_ENTRIES;
    if (entries.length === 0 && !sendIfEmpty) return;
    const ae: AppendEntries = {
      type: 'AppendEntries', from: this.id, to: pr.id, term: this.term,
      prevLogIndex, prevLogTerm, entries, leaderCommit: this.commit, seq: this.seq,
    };
    this.messages.push(ae);
    if (pr.state === 'replicate') {
      if (entries.length > 0) {
        let bytes = 0;
        for (let i = 0; i < entries.length; i++) bytes += entryBytes(entries[i]!);
        const last = entries[entries.length - 1]!.index;
        pr.nextIndex = last + 1;
        pr.inflights.add(last, bytes);
      }
    } else {
      pr.probeSent = true;
    }
  }

  private sendSnapshot(pr: Progress): void {
    const meta: SnapshotMeta = { index: this.log.snapshotIndex, term: this.log.snapshotTerm, config: this.snapshotConfiguration };
    // The core never holds snapshot bytes: the runtime attaches its newest saved snapshot.
    const msg: InstallSnapshot = {
      type: 'InstallSnapshot', from: this.id, to: pr.id, term: this.term,
      snapshot: { meta, data: EMPTY_DATA }, seq: this.seq,
    };
    this.messages.push(msg);
    pr.becomeSnapshot(meta.index);
  }

  /** Begins a new heartbeat round; its start tick bounds the lease it can confirm. */
  private startRound(): void {
    this.seq++;
    this.roundStartTick[this.seq % ROUND_HISTORY] = this.ticks;
  }

  private releaseConfirmedReads(): void {
    this.reads.release(
      (seq) => hasQuorum(this.configuration, (id) => id === this.id || (this.progresses.get(id)?.ackedSeq ?? 0) >= seq),
      this.readStates,
    );
  }

  private promoteDeferredReads(): void {
    if (!this.reads.hasDeferred()) return;
    this.startRound();
    this.reads.promoteDeferred(this.commit, this.seq);
    this.broadcastHeartbeat();
    this.releaseConfirmedReads();
  }

  // ---- configuration (thesis §4.1) ---------------------------------------------------------------

  private noteConfigEntry(e: Entry): void {
    if (e.type !== 'config') return;
    const config = decodeConfiguration(e.data);
    this.configEntries.push({ index: e.index, config });
    this.configuration = config;
    if (this.currentRole === 'leader') this.syncProgresses();
  }

  private configAt(index: number): Configuration {
    let config = this.snapshotConfiguration;
    for (const c of this.configEntries) {
      if (c.index > index) break;
      config = c.config;
    }
    return config;
  }

  private voterIds(): NodeId[] {
    const ids = new Set<NodeId>([...this.configuration.voters, ...this.configuration.votersOutgoing]);
    return [...ids];
  }

  /** Keeps one Progress per member other than this server (learners included). */
  private syncProgresses(): void {
    const wanted = new Set(members(this.configuration));
    wanted.delete(this.id);
    for (const id of [...this.progresses.keys()]) if (!wanted.has(id)) this.progresses.delete(id);
    for (const id of wanted) {
      if (!this.progresses.has(id)) {
        const pr = new Progress(id, this.log.lastIndex + 1, this.opts.maxInflightMessages, this.opts.maxBytesPerMessage * this.opts.maxInflightMessages);
        pr.recentActive = true;
        this.progresses.set(id, pr);
      }
    }
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
