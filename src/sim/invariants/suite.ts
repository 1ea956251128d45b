// All invariant checkers behind the few hooks the simulated runtime calls. `step` runs after
// every event that touched a node and costs O(1) per checker (amortized over the entries a step
// adds); the rest run when the matching thing happens (persist, sync, send, apply, restart).
import type { Configuration, Entry, HardState, Message, NodeId, SnapshotMeta } from '../../raft/index.js';
import { ApplyOnlyCommitted } from './apply-only-committed.js';
import { PersistBeforeSend } from './persist-before-send.js';
import { commitIndexMonotonic, termMonotonic, type Monotonic } from './monotonic.js';
import { CommittedLog } from './committed-log.js';
import { Durability } from './durability.js';
import { ElectionSafety } from './election-safety.js';
import { LeaderAppendOnly } from './leader-append-only.js';
import { LeaderCompleteness } from './leader-completeness.js';
import { LinearizableReads } from './linearizable-reads.js';
import { Liveness } from './liveness.js';
import { LogMatching } from './log-matching.js';
import { SingleVote } from './single-vote.js';
import { StateMachineSafety } from './state-machine-safety.js';
import { ConfigChangeOneAtATime } from './config-change-one-at-a-time.js';
import { ConfigOnAppend } from './config-on-append.js';
import { LeavingLeaderStepsDown } from './leaving-leader-steps-down.js';
import { VoterQuorum } from './voter-quorum.js';
import { RemovalNotice } from './removal-notice.js';
import { VoteLease } from './vote-lease.js';
import { CountedCommit, type CountingView } from './counted-commit.js';
import { DurableMajority } from './durable-majority.js';
import type { MemberView, NodeView } from './violation.js';

export class InvariantSuite {
  readonly electionSafety = new ElectionSafety();
  readonly leaderAppendOnly: LeaderAppendOnly;
  readonly logMatching = new LogMatching();
  readonly committed: CommittedLog;
  readonly leaderCompleteness: LeaderCompleteness;
  readonly stateMachineSafety = new StateMachineSafety();
  readonly commitIndex: Monotonic;
  readonly term: Monotonic;
  readonly vote: SingleVote;
  readonly durability = new Durability();
  readonly liveness = new Liveness();
  readonly reads = new LinearizableReads();
  readonly configOneAtATime: ConfigChangeOneAtATime;
  readonly configOnAppend = new ConfigOnAppend();
  readonly leavingLeader: LeavingLeaderStepsDown;
  readonly voterQuorum: VoterQuorum;
  readonly removalNotice: RemovalNotice;
  readonly persistBeforeSend: PersistBeforeSend;
  readonly applyOnlyCommitted = new ApplyOnlyCommitted();
  readonly countedCommit: CountedCommit;
  readonly durableMajority: DurableMajority;
  /** Null when the core runs without CheckQuorum, which is what gives servers the lease. */
  readonly voteLease: VoteLease | null;

  /**
   * `nodes` slots (the pool); a leader outside its committed configuration may lead `graceMs`
   * more; a follower that heard its leader less than `leaseMs` ago ignores vote requests (0: no
   * such lease, CheckQuorum off).
   */
  constructor(nodes: number, graceMs: number, leaseMs = 0) {
    this.voteLease = leaseMs > 0 ? new VoteLease(nodes, leaseMs) : null;
    this.leaderAppendOnly = new LeaderAppendOnly(nodes);
    this.committed = new CommittedLog(nodes);
    this.leaderCompleteness = new LeaderCompleteness(nodes, this.committed);
    this.commitIndex = commitIndexMonotonic(nodes);
    this.term = termMonotonic(nodes);
    this.vote = new SingleVote(nodes);
    this.configOneAtATime = new ConfigChangeOneAtATime(nodes, this.committed);
    this.leavingLeader = new LeavingLeaderStepsDown(nodes, graceMs);
    this.voterQuorum = new VoterQuorum(nodes);
    this.removalNotice = new RemovalNotice(this.committed);
    this.persistBeforeSend = new PersistBeforeSend(nodes);
    this.countedCommit = new CountedCommit(nodes);
    this.durableMajority = new DurableMajority(nodes, this.countedCommit.logs);
  }

  /** After every event that touched node `slot`, at simulated time `now`. */
  step(slot: number, node: MemberView & Partial<CountingView>, now: number): void {
    this.term.observe(slot, node);
    this.vote.observe(slot, node);
    this.commitIndex.observe(slot, node);
    this.committed.observe(slot, node);
    this.electionSafety.observe(node);
    this.leaderCompleteness.observe(slot, node);
    this.leaderAppendOnly.observe(slot, node);
    this.voterQuorum.observe(slot, node);
    this.configOneAtATime.observe(slot, node);
    this.leavingLeader.observe(slot, node, now);
    this.removalNotice.observe(node);
    this.countedCommit.observe(slot, node);
    this.durableMajority.observe(slot, node);
  }

  /** A Ready's entries are handed to storage (they are in `node`'s log now). */
  persist(slot: number, node: MemberView, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const prevTerm = node.termAt(entries[0]!.index - 1) ?? 0;
    this.logMatching.observe(node.id, entries, prevTerm);
    this.leaderAppendOnly.persist(slot, node, entries);
    this.configOnAppend.persist(node, entries);
  }

  /** A hard state reached stable storage. */
  durable(slot: number, nodeId: NodeId, hs: HardState): void {
    this.term.durable(slot, nodeId, hs);
    this.vote.durable(slot, nodeId, hs);
    this.commitIndex.durable(slot, nodeId, hs);
  }

  /** Node `slot` started afresh (founded, or provisioned empty) from `hs`, its log ending at `lastIndex`. */
  started(slot: number, nodeId: NodeId, hs: HardState, lastIndex: number): void {
    this.durable(slot, nodeId, hs);
    this.persistBeforeSend.restart(slot, lastIndex);
    this.countedCommit.restart(slot, 0, []);
    this.durableMajority.reset(slot);
  }

  /** A sync of node `slot` made `entries` durable. */
  synced(slot: number, entries: readonly Entry[]): void {
    this.persistBeforeSend.synced(slot, entries);
    this.countedCommit.synced(slot, entries);
  }

  /** Node `slot` durably installed a leader's snapshot. */
  installed(slot: number, meta: SnapshotMeta): void {
    this.persistBeforeSend.installed(slot, meta);
    this.countedCommit.installed(slot, meta);
  }

  /**
   * A message leaves node `slot` (whose core is `node`), whose durable hard state is `durable`;
   * `isBeforeSync`: its Ready's writes are not durable yet.
   */
  send(slot: number, m: Message, durable: HardState, node: MemberView, isBeforeSync: boolean): void {
    this.persistBeforeSend.send(slot, m, durable, isBeforeSync);
    if (m.type === 'RequestVoteResponse') {
      this.vote.send(slot, m, durable);
      this.voterQuorum.grant(m);
    } else if (m.type === 'RequestVote') {
      this.voterQuorum.request(slot, m, node);
    }
  }

  /** `nodeId`, whose commitIndex is `commitIndex`, applied `entry`; its state hash is now `hash`. */
  apply(nodeId: NodeId, entry: Entry, hash: number, commitIndex: number): void {
    this.applyOnlyCommitted.apply(nodeId, entry, commitIndex);
    this.stateMachineSafety.apply(nodeId, entry, hash);
  }

  restore(nodeId: NodeId, index: number, hash: number): void {
    this.stateMachineSafety.restore(nodeId, index, hash);
  }

  crash(slot: number): void {
    this.voteLease?.reset(slot);
    this.leaderAppendOnly.crash(slot);
    this.vote.crash(slot);
  }

  /** Node `slot` restarted from durable `hs`; its new core starts at `node`. */
  restart(slot: number, node: NodeView, hs: HardState, entries: readonly Entry[]): void {
    // What storage hands back must be what was handed to it: re-check the loaded log.
    if (entries.length > 0) this.logMatching.observe(node.id, entries, node.termAt(entries[0]!.index - 1) ?? 0);
    this.persistBeforeSend.restart(slot, node.lastIndex);
    this.term.restart(slot, node.id, hs, node.currentTerm);
    this.vote.restart(slot, node.id, hs);
    this.commitIndex.restart(slot, node.id, hs, node.commitIndex);
    this.committed.restart(slot, node.commitIndex);
    this.countedCommit.restart(slot, node.snapshotIndex, entries);
    this.durableMajority.reset(slot);
  }

  /**
   * Slot `slot` of the pool is about to host a new server (a fresh id, an empty disk): forget
   * what the per-slot checkers knew of the server it held before. Checkers keyed by id or by
   * term (Election Safety, Log Matching, State Machine Safety) keep all of history.
   */
  reprovision(slot: number): void {
    this.leaderAppendOnly.reset(slot);
    this.committed.reset(slot);
    this.leaderCompleteness.reset(slot);
    this.commitIndex.reset(slot);
    this.term.reset(slot);
    this.vote.reset(slot);
    this.voterQuorum.reset(slot);
    this.voteLease?.reset(slot);
    this.configOneAtATime.reset(slot);
    this.leavingLeader.reset(slot);
    this.persistBeforeSend.reset(slot);
    this.countedCommit.reprovision(slot);
    this.durableMajority.reset(slot);
  }

  /**
   * The periodic whole-log checks over the live nodes at simulated time `now`; `snapshotConfig`
   * gives a node's configuration as of its snapshot.
   */
  fullCheck(nodes: readonly (MemberView | null)[], now: number, snapshotConfig: (slot: number) => Configuration | null): void {
    for (let a = 0; a < nodes.length; a++) {
      const x = nodes[a];
      if (x === null || x === undefined) continue;
      this.leaderAppendOnly.fullCheck(a, x);
      this.configOnAppend.fullCheck(x, snapshotConfig(a));
      this.leavingLeader.poll(a, x, now);
      for (let b = a + 1; b < nodes.length; b++) {
        const y = nodes[b];
        if (y === null || y === undefined) continue;
        LogMatching.compare(x.id, x, y.id, y);
      }
    }
  }
}
