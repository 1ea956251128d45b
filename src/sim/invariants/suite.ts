// All invariant checkers behind the few hooks the simulated runtime calls. `step` runs after
// every event that touched a node and costs O(1) per checker (amortized over the entries a step
// adds); the rest run when the matching thing happens (persist, sync, send, apply, restart).
import type { Entry, HardState, Message, NodeId } from '../../raft/index.js';
import { CommitIndexMonotonic } from './commit-index-monotonic.js';
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
import { TermMonotonic } from './term-monotonic.js';
import type { NodeView } from './violation.js';

export class InvariantSuite {
  readonly electionSafety = new ElectionSafety();
  readonly leaderAppendOnly: LeaderAppendOnly;
  readonly logMatching = new LogMatching();
  readonly committed: CommittedLog;
  readonly leaderCompleteness: LeaderCompleteness;
  readonly stateMachineSafety = new StateMachineSafety();
  readonly commitIndex: CommitIndexMonotonic;
  readonly term: TermMonotonic;
  readonly vote: SingleVote;
  readonly durability = new Durability();
  readonly liveness = new Liveness();
  readonly reads = new LinearizableReads();

  constructor(nodes: number) {
    this.leaderAppendOnly = new LeaderAppendOnly(nodes);
    this.committed = new CommittedLog(nodes);
    this.leaderCompleteness = new LeaderCompleteness(nodes, this.committed);
    this.commitIndex = new CommitIndexMonotonic(nodes);
    this.term = new TermMonotonic(nodes);
    this.vote = new SingleVote(nodes);
  }

  /** After every event that touched node `slot`. */
  step(slot: number, node: NodeView): void {
    this.term.observe(slot, node);
    this.vote.observe(slot, node);
    this.commitIndex.observe(slot, node);
    this.committed.observe(slot, node);
    this.electionSafety.observe(node);
    this.leaderCompleteness.observe(slot, node);
    this.leaderAppendOnly.observe(slot, node);
  }

  /** A Ready's entries are handed to storage (they are in `node`'s log now). */
  persist(slot: number, node: NodeView, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const prevTerm = node.termAt(entries[0]!.index - 1) ?? 0;
    this.logMatching.observe(node.id, entries, prevTerm);
    this.leaderAppendOnly.persist(slot, node, entries);
  }

  /** A hard state reached stable storage. */
  durable(slot: number, nodeId: NodeId, hs: HardState): void {
    this.term.durable(slot, nodeId, hs);
    this.vote.durable(slot, nodeId, hs);
    this.commitIndex.durable(slot, nodeId, hs);
  }

  /** A message leaves node `slot`, whose durable hard state is `durable`. */
  send(slot: number, m: Message, durable: HardState): void {
    if (m.type === 'RequestVoteResponse') this.vote.send(slot, m, durable);
  }

  apply(nodeId: NodeId, entry: Entry, hash: number): void {
    this.stateMachineSafety.apply(nodeId, entry, hash);
  }

  restore(nodeId: NodeId, index: number, hash: number): void {
    this.stateMachineSafety.restore(nodeId, index, hash);
  }

  crash(slot: number): void {
    this.leaderAppendOnly.crash(slot);
    this.vote.crash(slot);
  }

  /** Node `slot` restarted from durable `hs`; its new core starts at `node`. */
  restart(slot: number, node: NodeView, hs: HardState, entries: readonly Entry[]): void {
    // What storage hands back must be what was handed to it: re-check the loaded log.
    if (entries.length > 0) this.logMatching.observe(node.id, entries, node.termAt(entries[0]!.index - 1) ?? 0);
    this.term.restart(slot, node.id, hs);
    this.vote.restart(slot, node.id, hs);
    this.commitIndex.restart(slot, node.id, hs, node.commitIndex);
    this.committed.restart(slot, node.commitIndex);
  }

  /** The periodic whole-log checks over the live nodes. */
  fullCheck(nodes: readonly (NodeView | null)[]): void {
    for (let a = 0; a < nodes.length; a++) {
      const x = nodes[a];
      if (x === null || x === undefined) continue;
      this.leaderAppendOnly.fullCheck(a, x);
      for (let b = a + 1; b < nodes.length; b++) {
        const y = nodes[b];
        if (y === null || y === undefined) continue;
        LogMatching.compare(x.id, x, y.id, y);
      }
    }
  }
}
